//! Crash-safe resume: kill -9 the orchestrator in the middle of a run, resume it, and get the
//! same report as an uninterrupted run, with no task lost and no recorded success run again.

#[path = "util.rs"]
mod util;

use std::collections::BTreeMap;
use std::path::Path;

use util::{Scratch, golden_default_outputs, manifest, rows, show, trainer_bin, wait_for_file};

const INPUTS: [&str; 6] = [
    "breast_cancer.csv",
    "digits.csv",
    "iris.csv",
    "iris_str.csv",
    "synth_1k_20.csv",
    "wine.csv",
];

/// A trainer wrapper that logs which input it was given and slows each task down, so that a
/// kill lands between tasks and during one deterministically enough.
fn logging_wrapper(s: &Scratch) -> std::path::PathBuf {
    let log = s.path().join("invocations.log");
    s.script(
        "logged-trainer.sh",
        &format!(
            "echo \"$(basename \"$1\")\" >> '{log}'\nsleep 0.4\nexec '{t}' \"$@\"\n",
            log = log.display(),
            t = trainer_bin().display()
        ),
    )
}

fn succeeded_inputs(run_dir: &Path) -> Vec<String> {
    let m = manifest(run_dir);
    m["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "succeeded")
        .map(|t| t["input_name"].as_str().unwrap().to_owned())
        .collect()
}

/// The columns that must not depend on whether the run was interrupted.
fn stable_columns(run_dir: &Path) -> Vec<(String, String, String, String, String)> {
    rows(run_dir)
        .iter()
        .map(|r| {
            (
                r["input"].to_string(),
                r["task_id"].to_string(),
                r["status"].to_string(),
                r["score"].to_string(),
                r["exit_code"].to_string(),
            )
        })
        .collect()
}

#[test]
fn kill_9_mid_run_then_resume_loses_no_task_and_reruns_no_success() {
    let s = Scratch::new();
    for name in INPUTS {
        s.copy_input(name, name);
    }
    let wrapper = logging_wrapper(&s);
    let mut child = s.spawn_run(&wrapper, &["--concurrency", "1"]);

    // Wait until two tasks are recorded done and another is running, then kill -9.
    let run_dir = s.wait_for_run("two tasks done and another running", |dir| {
        succeeded_inputs(dir).len() >= 2
            && manifest(dir)["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["state"] == "running")
    });
    child.kill().unwrap(); // SIGKILL: no cleanup, no final manifest write.
    child.wait().unwrap();
    assert!(
        !run_dir.join("report.json").exists(),
        "the orchestrator was killed before it could report"
    );
    let done_before = succeeded_inputs(&run_dir);
    assert!(
        done_before.len() < INPUTS.len(),
        "the kill landed after the run finished; nothing to resume"
    );

    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let status = s.out_command(&["status", &run_id]);
    assert!(status.status.success(), "{}", show(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("orchestrator resume"),
        "status says how to continue: {}",
        show(&status)
    );

    let resumed = s.out_command(&["resume", &run_id]);
    assert!(resumed.status.success(), "{}", show(&resumed));

    // No task lost: every input succeeded with its golden score.
    let rows = rows(&run_dir);
    assert_eq!(rows.len(), INPUTS.len());
    let goldens: BTreeMap<_, _> = golden_default_outputs().into_iter().collect();
    for r in &rows {
        let input = r["input"].as_str().unwrap();
        assert_eq!(r["status"], "succeeded", "{r:#}");
        let expected = goldens[input].strip_prefix("The model score: ").unwrap();
        assert_eq!(r["score"], expected, "{input}");
    }
    // None run twice after success; every input ran at least once.
    let counts = s.invocations();
    for input in &done_before {
        assert_eq!(counts.get(input), Some(&1), "{input} ran again: {counts:?}");
    }
    for input in INPUTS {
        assert!(counts.contains_key(input), "{input} never ran: {counts:?}");
    }

    // The same report as an uninterrupted run (same wrapper, so the same trainer digest and
    // task ids; its log lines come after the counts above were taken).
    let clean = Scratch::new();
    for name in INPUTS {
        clean.copy_input(name, name);
    }
    let out = clean.run(&wrapper, &["--concurrency", "2"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(stable_columns(&run_dir), stable_columns(&clean.run_dir()));
}

#[test]
fn resume_of_a_finished_run_runs_nothing() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let wrapper = logging_wrapper(&s);
    let out = s.run(&wrapper, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let run_id = s
        .run_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let again = s.out_command(&["resume", &run_id]);
    assert!(again.status.success(), "{}", show(&again));
    assert_eq!(s.invocations().get("iris.csv"), Some(&1));
}

#[test]
fn resume_of_an_unknown_run_is_a_clear_error() {
    let s = Scratch::new();
    let out = s.out_command(&["resume", "no-such-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run `no-such-run`"));
}

#[test]
fn a_second_orchestrator_on_the_same_run_is_refused() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let started = s.path().join("started");
    let slow = s.script(
        "slow-trainer.sh",
        &format!(
            "touch '{}'\nsleep 2\nexec '{}' \"$@\"\n",
            started.display(),
            trainer_bin().display()
        ),
    );
    let mut first = s.spawn_run(&slow, &[]);
    wait_for_file(&started, 20, "the first run never started its task");
    let second = s.run(&slow, &[]);
    assert_eq!(second.status.code(), Some(2), "{}", show(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another orchestrator is working"),
        "{}",
        show(&second)
    );
    let run_id = s
        .run_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let status = s.out_command(&["status", &run_id]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("in progress"),
        "{}",
        show(&status)
    );
    assert!(first.wait().unwrap().success());
}

/// The run lock is taken before the manifest is read: while another orchestrator holds it,
/// a second one is refused without reading (here: a manifest mid-change by its owner, which
/// the second used to read and plan from, or fail on).
#[cfg(unix)]
#[test]
fn the_run_lock_is_taken_before_the_manifest_is_read() {
    let s = Scratch::new();
    s.write_input("a.csv", ",x,y\n0,1,a\n");
    let trainer = s.script("fake.sh", "printf 'The model score: 0.5' > \"$2\"\n");
    let first = s.run(&trainer, &[]);
    assert!(first.status.success(), "{}", show(&first));
    let run_dir = s.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let lock = std::fs::File::open(run_dir.join("lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    std::fs::write(run_dir.join("manifest.json"), "{\"torn").unwrap();

    let again = s.run(&trainer, &[]);
    let resumed = s.out_command(&["resume", &run_id]);
    for o in [&again, &resumed] {
        assert_eq!(o.status.code(), Some(2), "{}", show(o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("another orchestrator is working"),
            "{}",
            show(o)
        );
    }
}

/// kill -9 of the orchestrator used to leave its trainers running, and the rerun started the
/// same task beside the orphan. The next session now kills recorded process groups first.
#[cfg(target_os = "linux")]
#[test]
fn kill_9_leaves_no_orphan_beside_the_rerun() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let pids = s.path().join("pids");
    let marker = s.path().join("slept");
    // The first attempt records its pid and hangs; later attempts train at once.
    let trainer = s.script(
        "hang-once.sh",
        &format!(
            "echo $$ >> '{pids}'\nif [ ! -e '{marker}' ]; then touch '{marker}'; sleep 60; fi\n\
             exec '{t}' \"$@\"\n",
            pids = pids.display(),
            marker = marker.display(),
            t = trainer_bin().display()
        ),
    );
    let mut child = s.spawn_run(&trainer, &[]);
    wait_for_file(&marker, 30, "the task never started");
    child.kill().unwrap();
    child.wait().unwrap();
    let orphan: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| !st.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
    };
    assert!(alive(orphan), "kill -9 leaves the trainer running");

    let rerun = s.run(&trainer, &[]);
    assert!(rerun.status.success(), "{}", show(&rerun));
    assert!(
        !alive(orphan),
        "the orphan was killed before the task ran again"
    );
    let rows = rows(&s.run_dir());
    assert_eq!(rows[0]["status"], "succeeded");
}

/// The ids of a run's tasks in `state`.
fn ids_in_state(run_dir: &Path, state: &str) -> Vec<String> {
    let m = manifest(run_dir);
    let tasks = m["tasks"].as_array().unwrap();
    let ids = tasks.iter().filter(|t| t["state"] == state);
    ids.map(|t| t["task_id"].as_str().unwrap().to_owned())
        .collect()
}

/// kill -9 in the middle of a journal append leaves a torn last line; resume trusts none of
/// it, loses no task and runs no recorded success again.
#[test]
fn kill_9_mid_append_leaves_a_torn_line_that_resume_ignores() {
    let s = Scratch::new();
    INPUTS.iter().for_each(|name| s.copy_input(name, name));
    let mut child = s.spawn_run(&logging_wrapper(&s), &["--concurrency", "1"]);
    let run_dir = s.wait_for_run("a task done and another running", |dir| {
        !ids_in_state(dir, "succeeded").is_empty() && !ids_in_state(dir, "running").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = succeeded_inputs(&run_dir);
    let running = ids_in_state(&run_dir, "running");
    assert!(!running.is_empty() && done_before.len() < INPUTS.len());
    // What a kill in the middle of appending the running task's success looks like: the
    // line's start, no end. (A kill -9 cannot cut one write(2) short; a power loss can.)
    let journal = run_dir.join("manifest.journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    assert!(bytes.ends_with(b"\n"), "the journal ends with a whole line");
    bytes.extend_from_slice(format!(r#"{{"id":"{}","state":"succ"#, running[0]).as_bytes());
    std::fs::write(&journal, &bytes).unwrap();
    assert_eq!(
        succeeded_inputs(&run_dir),
        done_before,
        "the torn line is not trusted"
    );

    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let resumed = s.out_command(&["resume", &run_id]);
    assert!(resumed.status.success(), "{}", show(&resumed));
    let goldens: BTreeMap<_, _> = golden_default_outputs().into_iter().collect();
    let rows = rows(&run_dir);
    assert_eq!(rows.len(), INPUTS.len());
    for r in &rows {
        let input = r["input"].as_str().unwrap();
        assert_eq!(r["status"], "succeeded", "{r:#}");
        assert_eq!(
            r["score"],
            goldens[input].strip_prefix("The model score: ").unwrap()
        );
    }
    let counts = s.invocations();
    for input in &done_before {
        assert_eq!(counts.get(input), Some(&1), "{input} ran again: {counts:?}");
    }
    // The session compacted: the torn line is gone, the snapshot holds every state.
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        1,
        "only the header is left"
    );
    let snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap();
    assert!(
        snapshot["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "succeeded")
    );
}

/// A run directory written by an orchestrator of manifest format 1 (one pretty
/// manifest.json, no journal, a `staged` section) resumes, and is rewritten as format 2.
#[test]
fn a_run_with_a_format_1_manifest_resumes_and_is_migrated() {
    let s = Scratch::new();
    for name in ["iris.csv", "wine.csv"] {
        s.copy_input(name, name);
    }
    let wrapper = logging_wrapper(&s);
    let out = s.run(&wrapper, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let run_dir = s.run_dir();
    let mut old = manifest(&run_dir);
    old["format"] = 1.into();
    old.as_object_mut().unwrap().remove("journal");
    old["staged"] = serde_json::json!({"trainer": "objects/x", "inputs": {}});
    let wine = old["tasks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["input_name"] == "wine.csv")
        .unwrap();
    wine["state"] = "running".into(); // It was running when that orchestrator died.
    std::fs::write(
        run_dir.join("manifest.json"),
        serde_json::to_vec_pretty(&old).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(run_dir.join("manifest.journal")).unwrap();

    let again = s.run(&wrapper, &[]);
    assert!(again.status.success(), "{}", show(&again));
    let counts = s.invocations();
    assert_eq!(
        (counts.get("iris.csv"), counts.get("wine.csv")),
        (Some(&1), Some(&2))
    );
    let migrated = manifest(&run_dir);
    assert_eq!(migrated["format"], 2);
    assert!(migrated.get("staged").is_none());
    assert!(rows(&run_dir).iter().all(|r| r["status"] == "succeeded"));
}
