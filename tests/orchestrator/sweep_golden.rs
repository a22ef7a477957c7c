//! The sweep every backend's test runs (3 inputs x 8 settings) and its check against
//! `tests/golden/sweep.json`, made by scikit-learn 1.9.1 (`scripts/oracle/sweep_golden.py`).
#![allow(dead_code, unreachable_pub)] // Each test target uses a different subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The inputs of the sweep, from `input_files/`.
pub const SWEEP_INPUTS: [&str; 3] = ["breast_cancer.csv", "iris.csv", "wine.csv"];

/// `--grid` options for 8 settings: n-estimators x max-depth x `third` (a flag with two
/// values in the goldens: `criterion=gini,entropy` or `no-bootstrap=off,on`).
pub fn sweep_grid(third: &str) -> Vec<String> {
    ["n-estimators=5,20", "max-depth=none,3", third]
        .iter()
        .flat_map(|g| ["--grid".to_owned(), (*g).to_owned()])
        .collect()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The golden output for an input under a setting (swept flag -> token); flags the setting
/// does not name are at the trainer's defaults (`none`, `off`, `gini`).
pub fn sweep_golden(input: &str, setting: &BTreeMap<String, String>) -> String {
    let path = workspace().join("tests/golden/sweep.json");
    let golden: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let default_of = |flag: &str| match flag {
        "no-bootstrap" => "off",
        "criterion" => "gini",
        _ => "none",
    };
    let found = golden.as_array().unwrap().iter().find(|e| {
        e["csv"] == input
            && e["setting"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(flag, token)| {
                    let want = setting.get(flag).map_or(default_of(flag), String::as_str);
                    token.as_str() == Some(want)
                })
    });
    found.unwrap_or_else(|| panic!("no golden for {input} {setting:?}"))["output"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Checks a finished sweep of [`SWEEP_INPUTS`] x [`sweep_grid`]: 24 succeeded rows whose
/// scores and output files equal scikit-learn's, and the best setting per input in
/// report.json and best.csv (ties to the first setting in grid order).
pub fn assert_sweep_matches_goldens(run_dir: &Path, third_flag: &str) {
    let report: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 24, "3 inputs x 8 settings: {rows:#?}");
    let mut best: BTreeMap<String, (f64, String, String)> = BTreeMap::new();
    for row in rows {
        let input = row["input"].as_str().unwrap();
        let setting: BTreeMap<String, String> =
            serde_json::from_value(row["setting"].clone()).unwrap();
        let mut flags = vec!["max-depth", "n-estimators", third_flag];
        flags.sort_unstable();
        assert_eq!(setting.keys().collect::<Vec<_>>(), flags, "{row}");
        let expected = sweep_golden(input, &setting);
        assert_eq!(row["status"], "succeeded", "{row:#}");
        let score = expected.trim_start_matches("The model score: ");
        assert_eq!(row["score"].as_str(), Some(score), "{input} {setting:?}");
        let task_dir = run_dir.join("tasks").join(row["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            expected,
            "{input} {setting:?}"
        );
        let value: f64 = score.parse().unwrap();
        // Rows come in grid order, so only a higher score replaces a best.
        if best.get(input).is_none_or(|(b, _, _)| value > *b) {
            let label = format!("{setting:?}");
            best.insert(input.to_owned(), (value, score.to_owned(), label));
        }
    }
    let reported = report["best"].as_array().unwrap();
    assert_eq!(reported.len(), 3);
    let best_csv = std::fs::read_to_string(run_dir.join("best.csv")).unwrap();
    for b in reported {
        let input = b["input"].as_str().unwrap();
        let setting: BTreeMap<String, String> =
            serde_json::from_value(b["setting"].clone()).unwrap();
        let (_, score, label) = &best[input];
        assert_eq!(b["score"].as_str(), Some(score.as_str()), "{b:#}");
        assert_eq!(&format!("{setting:?}"), label, "{b:#}");
        assert!(
            best_csv
                .lines()
                .any(|l| l.starts_with(input) && l.contains(score.as_str())),
            "{best_csv}"
        );
    }
}
