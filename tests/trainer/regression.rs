//! The new estimators' own rules, beside their goldens: the scorer refusal, each class's defaults
//! in the `--json` report, the one-line flag checks and the continuous-target hint. The
//! byte-for-byte cases against scikit-learn 1.9.1 are `tests/golden/estimators.json`
//! (`golden::every_estimator_golden_case_matches_the_reference`).

use serde_json::Value;

use crate::util::{repo_root, run, stderr};

#[test]
fn a_scorer_that_cannot_score_a_regressor_is_refused_up_front() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    for scoring in ["accuracy", "roc_auc", "neg_log_loss"] {
        let o = run(
            &csv,
            &out,
            &["--estimator", "ExtraTreesRegressor", "--scoring", scoring],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{scoring}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("does not fit ExtraTreesRegressor"), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn each_estimator_has_its_own_defaults_and_the_report_names_them() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let json = dir.path().join("r.json");
    let json_arg = json.to_str().unwrap();
    let o = run(
        &csv,
        &out,
        &["--estimator", "ExtraTreesRegressor", "--json", json_arg],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let p = &v["parameters"];
    assert_eq!(p["estimator"], "ExtraTreesRegressor");
    assert_eq!(p["criterion"], "squared_error");
    assert_eq!(p["max_features"], "1.0");
    assert_eq!(p["bootstrap"], false);
    assert_eq!(p["scoring"], "r2");
    assert_eq!(v["fold_scores"].as_array().unwrap().len(), 5);
    let flags: Vec<String> = serde_json::from_value(v["flags"].clone()).unwrap();
    assert_eq!(flags[0], "--estimator=ExtraTreesRegressor");
    assert!(!flags.iter().any(|f| f.contains("bootstrap")), "{flags:?}");
    // Running with the report's flags gives the same bytes.
    let again = dir.path().join("again.txt");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let o = run(&csv, &again, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
    // --bootstrap turns it on, and the report says so with the flag.
    let o = run(
        &csv,
        &out,
        &[
            "--estimator",
            "ExtraTreesRegressor",
            "--bootstrap",
            "--json",
            json_arg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["parameters"]["bootstrap"], true);
    assert!(
        v["flags"]
            .as_array()
            .unwrap()
            .contains(&"--bootstrap".into())
    );
}

#[test]
fn estimator_flags_are_checked_in_one_line() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    for args in [
        &[
            "--estimator",
            "RandomForestRegressor",
            "--criterion",
            "gini",
        ][..],
        &["--criterion", "poisson"][..],
        &["--estimator", "GradientBoosting"][..],
        &["--bootstrap", "--no-bootstrap"][..],
    ] {
        let o = run(&csv, &out, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!out.exists());
    }
}

#[test]
fn a_classifier_on_a_continuous_target_points_to_the_regressor() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/make_regression.csv");
    let dir = tempfile::tempdir().unwrap();
    let o = run(&csv, &dir.path().join("out.txt"), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--estimator RandomForestRegressor"), "{err}");
}

#[test]
fn a_negative_poisson_target_is_named_by_its_file_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("counts.csv");
    // Header on line 1; the blank line 4 is skipped, so the negative target (the 4th data
    // row) is on line 6, column 4.
    let mut text = String::from(",a,b,y\n0,1.0,2.0,3\n1,2.0,1.0,0\n\n2,3.0,0.5,1\n3,4.0,1.5,-2\n");
    for i in 4..20 {
        text.push_str(&format!("{i},{i}.5,1.0,{}\n", i % 3));
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("out.txt");
    let o = run(
        &csv,
        &out,
        &[
            "--estimator",
            "RandomForestRegressor",
            "--criterion",
            "poisson",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 6, column 4: the target -2.0 is negative"),
        "{err}"
    );
    assert!(!out.exists());
}
