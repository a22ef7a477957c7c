//! Thread-count independence and the `--json` report.

use crate::util::{csv_file, run, stderr};

fn csv(rows: usize) -> String {
    let mut s = String::from(",a,b,c,d,label\n");
    for i in 0..rows {
        let x = (i * 37 % 101) as f64 / 7.0;
        s.push_str(&format!(
            "{i},{x},{},{},{},{}\n",
            (i * 11) % 17,
            if i % 9 == 0 {
                String::new()
            } else {
                format!("{}", (i % 5) as f64 * 0.25)
            },
            i % 4,
            ["cat", "dog", "emu"][(i * 7 + i / 3) % 3]
        ));
    }
    s
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let (dir, input) = csv_file("in.csv", csv(300).as_bytes());
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3", "8"] {
        let out = dir.path().join(format!("out{threads}.txt"));
        let o = run(
            &input,
            &out,
            &["--threads", threads, "--n-estimators", "12"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:?}");
}

#[test]
fn json_report_has_scores_parameters_and_timings() {
    let (dir, input) = csv_file("in.csv", csv(120).as_bytes());
    let out = dir.path().join("out.txt");
    let json = dir.path().join("report.json");
    let o = run(
        &input,
        &out,
        &[
            "--json",
            json.to_str().unwrap(),
            "--cv",
            "4",
            "--criterion",
            "log_loss",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["rows"], 120);
    assert_eq!(v["features"], 4);
    assert_eq!(v["classes"], serde_json::json!(["cat", "dog", "emu"]));
    assert_eq!(v["fold_scores"].as_array().unwrap().len(), 4);
    assert_eq!(v["parameters"]["criterion"], "entropy");
    assert_eq!(v["parameters"]["cv"], 4);
    assert_eq!(v["parameters"]["n_estimators"], 10);
    assert_eq!(v["parameters"]["max_features_per_split"], 2, "sqrt(4)");
    // The report names every setting as flags; running with them gives the same output.
    let flags: Vec<String> = serde_json::from_value(v["flags"].clone()).unwrap();
    assert_eq!(
        flags,
        [
            "--n-estimators=10",
            "--min-samples-split=2",
            "--min-samples-leaf=1",
            "--max-features=sqrt",
            "--criterion=entropy",
            "--random-state=0",
            "--cv=4"
        ]
    );
    let again = dir.path().join("again.txt");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let o = run(&input, &again, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&out).unwrap()
    );
    assert!(v["timings"]["total_s"].as_f64().unwrap() >= 0.0);
    assert!(v["trainer_version"].as_str().is_some());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(v["output_text"], text.as_str());
    let scores: Vec<f64> = v["fold_scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    let mean = (((scores[0] + scores[1]) + scores[2]) + scores[3]) / 4.0;
    assert_eq!(v["mean"].as_f64().unwrap(), mean);
}

#[test]
fn rare_class_warns_and_still_scores() {
    let mut s = csv(40);
    s.push_str("40,1,1,1,1,rare\n41,2,2,2,2,rare\n");
    let (dir, input) = csv_file("rare.csv", s.as_bytes());
    let out = dir.path().join("out.txt");
    let o = run(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(
        "The least populated class in y has only 2 members, which is less than n_splits=5."
    ));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("The model score: ")
    );
}
