//! Sweeps on the local backend: every input x a grid of settings against scikit-learn's
//! scores, growing a grid, killing a sweep midway, grid files and samples, and every kind of
//! bad grid refused before anything is created.

#[path = "util.rs"]
mod util;

#[path = "sweep_golden.rs"]
mod sweep_golden;

use std::path::{Path, PathBuf};

use sweep_golden::{SWEEP_INPUTS, assert_sweep_matches_goldens, sweep_grid};
use util::{Scratch, manifest, report_json, show, trainer_bin};

fn sweep_inputs(s: &Scratch) {
    for name in SWEEP_INPUTS {
        s.copy_input(name, name);
    }
}

/// A trainer wrapper that logs each task it runs (input name and flags; `--check` calls are
/// not logged) and takes at least `delay` seconds per task.
fn logging_wrapper(s: &Scratch, delay: &str) -> PathBuf {
    let log = s.path().join("invocations.log");
    s.script(
        "logged-trainer.sh",
        &format!(
            "if [ \"$1\" != --check ]; then\n\
             flags=$(shift 2; printf '%s\\n' \"$@\" | grep -v -e '^--threads' -e '^[0-9]*$' | sort | tr '\\n' ' ')\n\
             echo \"$(basename \"$1\") $flags\" >> '{log}'\n\
             sleep {delay}\n\
             fi\n\
             exec '{t}' \"$@\"\n",
            log = log.display(),
            t = trainer_bin().display()
        ),
    )
}

fn args(v: &[String], extra: &[&str]) -> Vec<String> {
    v.iter()
        .cloned()
        .chain(extra.iter().map(|s| (*s).to_owned()))
        .collect()
}

#[test]
fn a_sweep_of_3_inputs_by_8_settings_scores_like_scikit_learn() {
    let s = Scratch::new();
    sweep_inputs(&s);
    let grid = sweep_grid("criterion=gini,entropy");
    let out = s.run(
        &trainer_bin(),
        &args(&grid, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run_dir = s.run_dir();
    assert_sweep_matches_goldens(&run_dir, "criterion");

    let csv = std::fs::read_to_string(run_dir.join("report.csv")).unwrap();
    assert!(
        csv.starts_with("input,n-estimators,max-depth,criterion,task_id,status,score,"),
        "{csv}"
    );
    assert!(csv.contains("\niris.csv,20,3,entropy,"), "{csv}");
    let best = std::fs::read_to_string(run_dir.join("best.csv")).unwrap();
    assert!(
        best.starts_with("input,n-estimators,max-depth,criterion,score,task_id\n"),
        "{best}"
    );
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("<h2>Best setting per input</h2>"), "{html}");
    assert_eq!(
        html.matches("<figure>").count(),
        3,
        "one chart per swept flag"
    );
    let report = report_json(&run_dir);
    assert_eq!(
        report["grid"]["flags"],
        serde_json::json!(["n-estimators", "max-depth", "criterion"])
    );
    let means = report["means"].as_array().unwrap();
    assert_eq!(means[0]["flag"], "n-estimators");
    assert_eq!(means[0]["values"][0]["value"], "5");
    assert_eq!(means[0]["values"][0]["scored"], 12);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 inputs x 8 settings, 24 succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("Best setting per input"), "{stdout}");
}

#[test]
fn a_grown_grid_or_sample_resumes_the_run_and_runs_only_new_settings() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let wrapper = logging_wrapper(&s, "0");
    let run = |extra: &[&str]| {
        let out = s.run(&wrapper, extra);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    };
    run(&[
        "--grid",
        "n-estimators=5",
        "--grid",
        "criterion=gini,entropy",
    ]);
    let run_dir = s.run_dir();
    assert_eq!(s.invocations().len(), 4);
    // Two more values: only their 2 x 2 x 2 tasks run, in the same run directory.
    run(&[
        "--grid",
        "n-estimators=5,10,20",
        "--grid",
        "criterion=gini,entropy",
    ]);
    assert_eq!(
        s.run_dir(),
        run_dir,
        "the run id does not depend on the values"
    );
    let seen = s.invocations();
    assert_eq!(seen.len(), 12, "{seen:#?}");
    assert!(
        seen.values().all(|&n| n == 1),
        "no task ran twice: {seen:#?}"
    );
    assert_eq!(report_json(&run_dir)["rows"].as_array().unwrap().len(), 12);
    // A smaller grid reports only its settings; the others come back without running.
    run(&[
        "--grid",
        "n-estimators=10",
        "--grid",
        "criterion=gini,entropy",
    ]);
    assert_eq!(report_json(&run_dir)["rows"].as_array().unwrap().len(), 4);
    assert_eq!(manifest(&run_dir)["retired"].as_array().unwrap().len(), 8);
    run(&[
        "--grid",
        "criterion=gini,entropy",
        "--grid",
        "n-estimators=5,10,20",
    ]);
    assert_eq!(
        s.invocations(),
        seen,
        "the order of --grid options changes no task"
    );
    // A sample of the grid, then a larger one with the same seed: a superset.
    let grid = [
        "--grid",
        "n-estimators=5,10,20",
        "--grid",
        "criterion=gini,entropy",
    ];
    run(&[&grid[..], &["--sample", "2", "--seed", "4"]].concat());
    assert_eq!(report_json(&run_dir)["rows"].as_array().unwrap().len(), 4);
    run(&[&grid[..], &["--sample", "5", "--seed", "4"]].concat());
    assert_eq!(report_json(&run_dir)["rows"].as_array().unwrap().len(), 10);
    assert_eq!(
        s.invocations(),
        seen,
        "every sampled setting was already done"
    );
    // A newly swept flag is another study: a new run.
    run(&["--grid", "n-estimators=5", "--grid", "max-depth=none,3"]);
    assert_eq!(s.run_dirs().len(), 2);
}

fn succeeded(run_dir: &Path) -> usize {
    manifest(run_dir)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "succeeded")
        .count()
}

#[test]
fn a_sweep_killed_midway_finishes_only_the_missing_tasks_when_run_again() {
    let s = Scratch::new();
    sweep_inputs(&s);
    let wrapper = logging_wrapper(&s, "0.3");
    let grid = ["--grid", "n-estimators=5,20", "--grid", "max-depth=none,3"];
    let run_args = [&grid[..], &["--concurrency", "1"]].concat();
    let mut child = s.spawn_run(&wrapper, &run_args);
    let run_dir = s.wait_for_run("3 tasks done", |dir| succeeded(dir) >= 3);
    child.kill().unwrap(); // SIGKILL: no cleanup, no final manifest write.
    child.wait().unwrap();
    let done_before = succeeded(&run_dir);
    assert!(done_before < 12, "the kill landed after the sweep finished");
    let before = s.invocations();

    let out = s.run(&wrapper, &run_args);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let after = s.invocations();
    assert_eq!(after.len(), 12, "every (input, setting) ran: {after:#?}");
    let again: Vec<_> = after.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.len() <= 1,
        "only the task running at the kill may run again: {again:?}"
    );
    let new_runs: usize = after.values().sum::<usize>() - before.values().sum::<usize>();
    assert!(
        new_runs <= 12 - done_before + 1,
        "{new_runs} tasks ran again, {done_before} were done: {after:#?}"
    );
    let report = report_json(&run_dir);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:#?}");
}

#[test]
fn grid_files_in_csv_and_toml() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let csv = s.path().join("grid.csv");
    std::fs::write(
        &csv,
        "n-estimators,max-depth,criterion\n5,,gini\n20,3,entropy\n",
    )
    .unwrap();
    let out = s.run(&trainer_bin(), &["--grid-file", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report = report_json(&s.run_dir());
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let score = |i: usize| rows[i]["score"].as_str().unwrap().to_owned();
    // iris, n-estimators=5 (gini, unlimited depth) and 20/3/entropy, from sweep.json.
    assert_eq!(score(0), "0.9400000000000001");
    assert_eq!(score(1), "0.9533333333333334");
    assert_eq!(rows[1]["setting"]["max-depth"], "3");

    let toml = s.path().join("grid.toml");
    std::fs::write(
        &toml,
        "[[setting]]\nn-estimators = 5\nno-bootstrap = true\n\n[[setting]]\nn-estimators = 20\n",
    )
    .unwrap();
    let out = s.run(&trainer_bin(), &["--grid-file", toml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let dirs = s.run_dirs();
    assert_eq!(dirs.len(), 2, "other swept flags: another run");
    let run = dirs
        .iter()
        .find(|d| report_json(d)["grid"]["flags"][1] == "no-bootstrap")
        .unwrap();
    let rows = report_json(run)["rows"].as_array().unwrap().clone();
    assert_eq!(
        rows[0]["score"], "0.9733333333333334",
        "5 trees, no bootstrap"
    );
    assert_eq!(rows[1]["score"], "0.9533333333333334", "20 trees");
}

#[test]
fn a_bad_grid_is_one_line_exit_1_and_creates_nothing() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let empty = s.path().join("empty.csv");
    std::fs::write(&empty, "n-estimators,criterion\n").unwrap();
    let empty = empty.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &["--grid", "n-estimators-typo=1,2"],
            "setting 1 of 2 (n-estimators-typo=1): the trainer refuses it: unexpected argument '--n-estimators-typo' found",
        ),
        (
            &["--grid", "n-estimators=10,abc"],
            "setting 2 of 2 (n-estimators=abc): the trainer refuses it: invalid value 'abc' for '--n-estimators",
        ),
        (
            &["--grid", "max-features=sqrt,1.5"],
            "setting 2 of 2 (max-features=1.5): the trainer refuses it: invalid parameter: max_features as a fraction must be in (0, 1], got 1.5",
        ),
        (
            &["--grid", "no-bootstrap=on,yes"],
            "setting 2 of 2 (no-bootstrap=yes): the trainer refuses it",
        ),
        (
            &["--grid", "n-estimators=5,10", "--", "--n-estimators", "20"],
            "--n-estimators is given both as a fixed trainer flag (after --) and in the grid",
        ),
        (
            &["--grid", "n-estimators="],
            "--grid n-estimators=: no values, so the grid is empty",
        ),
        (
            &["--grid-file", empty],
            "has no settings, so the grid is empty",
        ),
        (
            &["--grid", "n-estimators=5,10", "--sample", "0"],
            "--sample 0 leaves the grid empty",
        ),
        (
            &["--grid", "n-estimators=5,10", "--sample", "3"],
            "--sample 3 is more than the grid's 2 settings",
        ),
    ];
    for (extra, expected) in cases {
        let out = s.run(&trainer_bin(), extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", show(&out));
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error: grid: ") && stderr.contains(expected),
            "{extra:?}: {stderr}"
        );
        assert!(!s.out().exists(), "{extra:?}: nothing may be created");
    }
}

#[test]
fn a_dry_run_sweep_prints_each_tasks_flags_and_creates_nothing() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let out = s.run(
        &trainer_bin(),
        &[
            "--dry-run",
            "--grid",
            "n-estimators=5,20",
            "--grid",
            "no-bootstrap=on,off",
            "--",
            "--cv",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("Tasks (4 for 1 inputs)"), "{plan}");
    let commands: Vec<&str> = plan.lines().filter(|l| l.contains("$ ")).collect();
    assert_eq!(commands.len(), 4, "{plan}");
    assert!(commands.iter().all(|c| c.contains(" --cv 3 ")), "{plan}");
    for ending in [
        " --n-estimators=5 --no-bootstrap",
        " --n-estimators=5",
        " --n-estimators=20 --no-bootstrap",
        " --n-estimators=20",
    ] {
        assert!(
            commands.iter().any(|c| c.ends_with(ending)),
            "{ending}: {plan}"
        );
    }
    assert!(!s.out().exists(), "a dry run creates nothing");
}
