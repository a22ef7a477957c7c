//! Resource bounds: an endless field, a sparse file, huge `--n-estimators` and `--threads`, and
//! a system that cannot start threads each end in one line and exit 1 or 2 (or a normal run),
//! never an abort.

use std::process::Command;

use crate::util::{BIN, csv_file, run, stderr};

/// 40 rows, two classes.
fn small_csv() -> String {
    let mut s = String::from(",a,b,label\n");
    for i in 0..40 {
        s.push_str(&format!("{i},{},{},{}\n", i % 7, (i * 5) % 11, i % 2));
    }
    s
}

/// Asserts one line on stderr, exit `code`, no output file, and that stderr contains `want`.
fn fails_with(o: &std::process::Output, out: &std::path::Path, code: i32, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_endless_field_is_refused_after_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let o = run(std::path::Path::new("/dev/zero"), &out, &[]);
    fails_with(
        &o,
        &out,
        1,
        "line 1: the row starting here is longer than 64 MiB",
    );
}

#[test]
fn a_sparse_file_reserves_nothing_for_its_hole() {
    // 40 rows, then a 64 GiB hole (NUL bytes that take no disk): the row estimate from the
    // file size was billions of rows, and reserving for them aborted.
    let (dir, input) = csv_file("sparse.csv", small_csv().as_bytes());
    std::fs::File::options()
        .write(true)
        .open(&input)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let out = dir.path().join("out.txt");
    let o = run(&input, &out, &[]);
    fails_with(
        &o,
        &out,
        1,
        "line 42: the row starting here is longer than 64 MiB",
    );
}

#[test]
fn a_forest_beyond_the_memory_is_refused() {
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let out = dir.path().join("out.txt");
    let o = run(&input, &out, &["--n-estimators", "100000000000"]);
    fails_with(&o, &out, 2, "--n-estimators 100000000000 needs 372.5 GiB");
    // sklearn's n_estimators is an int: `1e11` is a bad flag.
    let o = run(&input, &out, &["--n-estimators", "1e11"]);
    fails_with(&o, &out, 1, "invalid value '1e11'");
}

/// The score for `small_csv` with `args`, and the run's stderr.
fn score(args: &[&str], env: Option<(&str, &str)>) -> (String, String) {
    let (dir, input) = csv_file("in.csv", small_csv().as_bytes());
    let out = dir.path().join("out.txt");
    let mut cmd = Command::new(BIN);
    cmd.arg(&input).arg(&out).args(args);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    (std::fs::read_to_string(&out).unwrap(), stderr(&o))
}

#[test]
fn threads_above_the_cores_are_clamped() {
    let (want, _) = score(&[], None);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let (got, _) = score(
        &["--threads", "100000", "--json", json.to_str().unwrap()],
        None,
    );
    assert_eq!(got, want);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(report["threads"], cores);
}

#[test]
fn no_thread_to_start_means_one_thread() {
    // Every thread the trainer starts asks for a stack larger than any address space.
    let (want, _) = score(&[], None);
    let (got, err) = score(&[], Some(("RUST_MIN_STACK", "100000000000000")));
    assert_eq!(got, want);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("could not start") && err.contains("using one"),
        "{err}"
    );
}
