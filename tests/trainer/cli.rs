//! CLI behaviour on inline CSVs.

use crate::util::{csv_file, run, stderr};

/// 20 rows, 2 separable classes (10 each), one constant column and one NaN cell.
fn small_csv() -> String {
    let mut s = String::from(",a,b,const,label\n");
    for i in 0..20 {
        let a = if i % 2 == 0 {
            i as f64 * 0.5
        } else {
            10.0 + i as f64
        };
        let b = if i == 3 {
            "NA".to_owned()
        } else {
            format!("{}", (i * 7) % 5)
        };
        let label = if i % 2 == 0 { "no" } else { "yes" };
        s.push_str(&format!("{i},{a},{b},1,{label}\n"));
    }
    s
}

#[test]
fn writes_the_score_line_without_newline() {
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let out = dir.path().join("out.txt");
    let o = run(&input, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // main.py (scikit-learn 1.9.1) on the same CSV writes exactly this.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "The model score: 0.9"
    );
}

#[test]
fn bad_input_exits_1_with_one_line_and_leaves_output_alone() {
    let (dir, input) = csv_file("bad.csv", b",a,y\n0,1,x\n1,oops,y\n");
    let out = dir.path().join("out.txt");
    std::fs::write(&out, "previous").unwrap();
    let o = run(&input, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.csv") && err.contains("line 3, column 2"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    // No stray temporary file either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn bad_flags_exit_1_with_one_line() {
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let out = dir.path().join("out.txt");
    for args in [
        &["--criterion", "nope"][..],
        &["--n-estimators", "0"],
        &["--max-features", "x"],
        &["--cv", "1"],
        // sklearn raises InvalidParameterError before any fit for an unknown scorer name.
        &["--scoring", "roc_auc_ovo"],
    ] {
        let o = run(&input, &out, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        assert!(!out.exists());
    }
}

#[test]
fn missing_input_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&dir.path().join("nope.csv"), &dir.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.csv"));
}

/// OUTPUT that is not a regular file (here a FIFO, standing for `/dev/null`) is refused with
/// one line and exit 2; it used to be replaced by a regular file through the rename.
#[cfg(unix)]
#[test]
fn output_that_is_not_a_regular_file_is_refused_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let o = run(&input, &fifo, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO is still a FIFO");
}

#[test]
fn check_validates_flags_without_input_or_output() {
    let check = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trainer"))
            .arg("--check")
            .args(args)
            .output()
            .unwrap()
    };
    for ok in [
        &[][..],
        &["--n-estimators=50", "--max-depth", "8", "--no-bootstrap"],
        &[
            "--max-features=0.5",
            "--criterion=log_loss",
            "--threads",
            "2",
        ],
    ] {
        let o = check(ok);
        assert!(o.status.success(), "{ok:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{ok:?}");
    }
    for (bad, expected) in [
        (
            &["--n-estimators=abc"][..],
            "invalid value 'abc' for '--n-estimators",
        ),
        (
            &["--max-features=1.5"],
            "max_features as a fraction must be in (0, 1], got 1.5",
        ),
        (&["--no-such-flag"], "unexpected argument '--no-such-flag'"),
        (&["--no-bootstrap=yes"], "--no-bootstrap"),
        (&["in.csv"], "cannot be used with"),
    ] {
        let o = check(bad);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(
            err.starts_with("trainer: error: ") && err.contains(expected),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn json_report_names_the_scorer_and_keeps_failed_folds_as_null() {
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let out = dir.path().join("out.txt");
    let json = dir.path().join("report.json");
    let json_arg = json.to_str().unwrap();
    // Labels no/yes: f1's pos_label=1 is not a class, so every fold's scoring fails in
    // sklearn; main.py writes the nan line and exits 0.
    let o = run(&input, &out, &["--scoring", "f1", "--json", json_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "The model score: nan"
    );
    assert!(stderr(&o).contains("Scoring failed"), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["parameters"]["scoring"], "f1");
    assert!(
        report["flags"]
            .as_array()
            .unwrap()
            .contains(&"--scoring=f1".into())
    );
    assert_eq!(
        report["fold_scores"],
        serde_json::json!([null, null, null, null, null])
    );

    let o = run(&input, &out, &["--json", json_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["parameters"]["scoring"], "accuracy");
    assert_eq!(report["fold_scores"].as_array().unwrap().len(), 5);
}

#[test]
fn control_characters_from_a_header_stay_escaped_on_one_line() {
    // A quoted column name holding a newline, an escape sequence and a bidi override, on the
    // feature column whose text cell is refused.
    let csv = ",\"a\nb\u{1b}[31m\u{202e}x\",label\n0,1,p\n1,oops,q\n";
    let (dir, input) = csv_file("ctl.csv", csv.as_bytes());
    let out = dir.path().join("out.txt");
    let o = run(&input, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains("column 2 ('a\\nb\\u{1b}[31m\\u{202e}x')") && err.contains("\"oops\""),
        "{err:?}"
    );
    assert!(
        !err.trim_end_matches('\n')
            .chars()
            .any(|c| c.is_control() || c == '\u{202e}'),
        "{err:?}"
    );
}
