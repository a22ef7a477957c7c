//! End to end: `orchestrator run ... --backend slurm` against a real single-node Slurm cluster.
//!
//! Every test first runs `scripts/slurm-start.sh` (idempotent: installs and starts the cluster
//! when needed, returns at once when it is up). A cluster that cannot start fails the tests
//! loudly; nothing here is skipped or faked. The trainer is the workspace's real binary, except
//! in the tests about retries and timeouts, which need a trainer that fails on purpose.

#[path = "slurm_util.rs"]
mod util;

#[path = "sweep_golden.rs"]
mod sweep_golden;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

#[test]
fn slurm_scores_match_local_backend_and_golden_outputs() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = root().join("input_files");
    let slurm_out = tmp.path().join("slurm-out");
    let out = output(run_cmd(&slurm_out, &inputs, &trainer(), &[]));
    assert_eq!(out.status.code(), Some(0), "slurm run succeeds");
    let slurm_run = run_dir(&slurm_out);
    let slurm_rows = rows(&slurm_run);
    assert_eq!(slurm_rows.len(), ALL_INPUTS.len());

    let local_out = tmp.path().join("local-out");
    let mut local = orchestrator(&local_out);
    local
        .arg("run")
        .arg(&inputs)
        .args(["--backend", "local", "--trainer"])
        .arg(trainer());
    let out = output(local);
    assert_eq!(out.status.code(), Some(0), "local run succeeds");
    let local_rows = rows(&run_dir(&local_out));

    let golden = read_json(&root().join("tests/golden/cases.json"));
    let golden: BTreeMap<String, String> = golden
        .as_array()
        .expect("golden cases")
        .iter()
        .filter(|c| {
            c["status"] == "ok"
                && c["args"].as_array().is_some_and(Vec::is_empty)
                && c["csv"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("input_files/"))
        })
        .map(|c| {
            let name = c["csv"]
                .as_str()
                .unwrap()
                .trim_start_matches("input_files/");
            (name.to_owned(), c["output"].as_str().unwrap().to_owned())
        })
        .collect();

    for (input, row) in &slurm_rows {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        assert_eq!(row["attempts"], 1, "{input}");
        assert_eq!(row["exit_code"], 0, "{input}");
        assert_eq!(
            row["score"], local_rows[input]["score"],
            "{input}: slurm vs local"
        );
        let expected = golden
            .get(input)
            .unwrap_or_else(|| panic!("{input} has a golden case"));
        assert_eq!(
            row["score"].as_str(),
            Some(score_of(expected).as_str()),
            "{input}"
        );
        // The collected output file is the trainer's, byte for byte.
        let task_dir = slurm_run
            .join("tasks")
            .join(row["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            *expected,
            "{input}"
        );
    }

    // One array job for the whole run; objects staged once, content-addressed.
    let state = read_json(&slurm_run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
    let objects = slurm_out.join("slurm-staging/objects");
    let listing = |dir: &Path| -> BTreeMap<String, std::time::SystemTime> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect()
    };
    let before = listing(&objects);
    assert_eq!(
        before.len(),
        ALL_INPUTS.len() + 1,
        "6 inputs and the trainer"
    );

    // The same command again: nothing is staged or submitted a second time.
    let out = output(run_cmd(&slurm_out, &inputs, &trainer(), &[]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(listing(&objects), before, "no object copied twice");
    let state = read_json(&slurm_run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
}

#[test]
fn slurm_bad_csv_fails_alone_with_its_stderr() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv"]);
    std::fs::copy(
        root().join("tests/fixtures/trainer/bad_non_numeric_cell.csv"),
        inputs.join("bad.csv"),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = output(run_cmd(&out_dir, &inputs, &trainer(), &[]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed task makes the run fail"
    );
    let run = run_dir(&out_dir);
    let rows = rows(&run);
    assert_eq!(rows["iris.csv"]["status"], "succeeded");
    let bad = &rows["bad.csv"];
    assert_eq!(bad["status"], "failed", "{bad}");
    assert_eq!(bad["exit_code"], 1, "trainer exit 1: bad input");
    assert_eq!(bad["attempts"], 1, "bad input is never retried");
    let tail = bad["stderr_tail"].as_str().unwrap();
    assert!(tail.contains("error"), "stderr in the report: {tail:?}");
    // The trainer names the user's file, not the staged object's digest.
    assert!(tail.contains("bad.csv"), "the input's name: {tail:?}");
    let stderr = std::fs::read_to_string(
        run.join("tasks")
            .join(bad["task_id"].as_str().unwrap())
            .join("stderr.txt"),
    )
    .unwrap();
    assert!(stderr.contains(tail.trim()), "{stderr:?} vs {tail:?}");
    // Bad input is not retried: a single array job.
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
}

#[test]
fn slurm_task_cancelled_with_scancel_is_reported_cancelled() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &ALL_INPUTS);
    let out_dir = tmp.path().join("out");
    // One task at a time (`%1`), so the last index is still pending when it is cancelled;
    // one input per array element, so that index is one task.
    let mut child = run_cmd(
        &out_dir,
        &inputs,
        &trainer(),
        &["--concurrency", "1", "--inputs-per-task", "1"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let (run, state) = wait_for_job(&out_dir, &mut child);
    let job = state["submissions"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tasks = state["submissions"][0]["tasks"].as_array().unwrap();
    let last = tasks.len() - 1;
    let cancelled_task = tasks[last]["task_id"].as_str().unwrap().to_owned();
    let status = Command::new("scancel")
        .arg(format!("{job}_{last}"))
        .status()
        .unwrap();
    assert!(status.success(), "scancel {job}_{last}");

    let status = wait_exit(&mut child, Duration::from_secs(240));
    assert_eq!(
        status.code(),
        Some(1),
        "a cancelled task makes the run fail"
    );
    let rows = rows(&run);
    for (input, row) in &rows {
        if row["task_id"] == cancelled_task.as_str() {
            assert_eq!(row["status"], "cancelled", "{input}: {row}");
        } else {
            assert_eq!(row["status"], "succeeded", "{input}: {row}");
        }
    }
    assert!(
        rows.values()
            .any(|r| r["task_id"] == cancelled_task.as_str()),
        "the cancelled task is in the report"
    );
    // A cancelled task is not resubmitted.
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
}

#[test]
fn slurm_resume_after_kill_finishes_without_rerunning() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &ALL_INPUTS);
    let out_dir = tmp.path().join("out");
    let mut child = run_cmd(&out_dir, &inputs, &trainer(), &["--concurrency", "1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (run, state) = wait_for_job(&out_dir, &mut child);
    let sub_dir = PathBuf::from(state["submissions"][0]["dir"].as_str().unwrap());
    // Kill it once some, but not all, tasks have finished on the cluster.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = (0..ALL_INPUTS.len())
            .filter(|i| sub_dir.join(format!("results/{i}/status")).is_file())
            .count();
        if done >= 2 {
            assert!(done < ALL_INPUTS.len(), "killed before the run finished");
            break;
        }
        assert!(Instant::now() < deadline, "no task finished within 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up or cancel
    child.wait().unwrap();

    let run_id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let mut resume = orchestrator(&out_dir);
    resume.args(["resume", &run_id]);
    let out = output(resume);
    assert_eq!(out.status.code(), Some(0), "resume finishes the run");
    let rows = rows(&run);
    assert_eq!(rows.len(), ALL_INPUTS.len(), "no task lost");
    for (input, row) in &rows {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        assert_eq!(row["attempts"], 1, "{input}: ran once");
    }
    // The wrapper logs every start: each task started exactly once, across both processes.
    let starts = std::fs::read_to_string(sub_dir.parent().unwrap().join("starts.log")).unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in starts.lines() {
        *counts.entry(line.split('\t').next().unwrap()).or_default() += 1;
    }
    assert_eq!(counts.len(), ALL_INPUTS.len(), "{starts}");
    assert!(
        counts.values().all(|&n| n == 1),
        "a task ran twice: {starts}"
    );
    // The resumed orchestrator adopted the running job instead of submitting another.
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
}

/// A stand-in trainer that fails with exit 2 (retryable) the first time it sees an input and
/// succeeds the second time; `FLAKY_DIR` (exported to the job by Slurm) holds its memory.
const FLAKY_TRAINER: &str = r#"#!/bin/bash
mark="$FLAKY_DIR/$(basename "$1")"
if [[ ! -e $mark ]]; then
    touch "$mark"
    echo "flaky: transient failure on $1" >&2
    exit 2
fi
printf 'The model score: 0.5' >"$2"
"#;

#[test]
fn slurm_transient_failures_are_resubmitted_as_a_new_array_job() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv", "wine.csv"]);
    let trainer = tmp.path().join("flaky-trainer");
    write_script(&trainer, FLAKY_TRAINER);
    let flaky = tmp.path().join("flaky");
    std::fs::create_dir(&flaky).unwrap();
    let out_dir = tmp.path().join("out");
    let mut cmd = run_cmd(&out_dir, &inputs, &trainer, &["--retries", "1"]);
    cmd.env("FLAKY_DIR", &flaky);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "the second attempt succeeds");
    let run = run_dir(&out_dir);
    for (input, row) in rows(&run) {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        assert_eq!(row["attempts"], 2, "{input}");
        assert_eq!(row["score"], "0.5", "{input}");
    }
    let state = read_json(&run.join("slurm.json"));
    let subs = state["submissions"].as_array().unwrap();
    // Failures seen in the same poll go out together; these may fail a poll apart.
    let retried: Vec<&Value> = subs[1..]
        .iter()
        .flat_map(|s| s["tasks"].as_array().unwrap())
        .collect();
    assert_eq!(retried.len(), 2, "each task resubmitted once: {state}");
    assert!(retried.iter().all(|t| t["attempt"] == 2), "{state}");
}

#[test]
fn slurm_timeout_is_reported_timed_out() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv"]);
    let trainer = tmp.path().join("slow-trainer");
    write_script(&trainer, "#!/bin/bash\nsleep 120\n");
    let out_dir = tmp.path().join("out");
    let started = Instant::now();
    let out = output(run_cmd(
        &out_dir,
        &inputs,
        &trainer,
        &["--timeout", "2s", "--retries", "0"],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "killed at the timeout"
    );
    let rows = rows(&run_dir(&out_dir));
    assert_eq!(
        rows["iris.csv"]["status"], "timed_out",
        "{}",
        rows["iris.csv"]
    );
}

#[test]
fn slurm_interrupt_cancels_the_array_job_and_resume_finishes() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv", "wine.csv", "digits.csv"]);
    // Hangs while `$HOLD` exists, then succeeds.
    let trainer = tmp.path().join("held-trainer");
    write_script(
        &trainer,
        "#!/bin/bash\nwhile [[ -e $HOLD ]]; do sleep 0.2; done\nprintf 'The model score: 0.75' >\"$2\"\n",
    );
    let hold = tmp.path().join("hold");
    std::fs::write(&hold, "").unwrap();
    let out_dir = tmp.path().join("out");
    let mut child = run_cmd(&out_dir, &inputs, &trainer, &["--concurrency", "1"])
        .env("HOLD", &hold)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (run, state) = wait_for_job(&out_dir, &mut child);
    let job_name = state["submissions"][0]["job_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub_dir = PathBuf::from(state["submissions"][0]["dir"].as_str().unwrap());
    // Wait until the first task runs, then Ctrl-C.
    wait_until_first_task_started(&sub_dir);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "interrupted");
    assert!(
        squeue_by_name(&job_name).is_empty(),
        "nothing of the run is left in Slurm's queue: {:?}",
        squeue_by_name(&job_name)
    );
    let interrupted = rows(&run);
    let first = interrupted
        .values()
        .find(|r| r["task_id"] == state["submissions"][0]["tasks"][0]["task_id"])
        .expect("first task in the report");
    assert_eq!(first["status"], "cancelled", "{first}");

    // Resume: the cancelled task gets a second attempt, the never-started ones their first.
    std::fs::remove_file(&hold).unwrap();
    let run_id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let mut resume = orchestrator(&out_dir);
    resume.args(["resume", &run_id]).env("HOLD", &hold);
    let out = output(resume);
    assert_eq!(out.status.code(), Some(0), "resume finishes the run");
    let first_id = state["submissions"][0]["tasks"][0]["task_id"].clone();
    for (input, row) in rows(&run) {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        let attempts = if row["task_id"] == first_id { 2 } else { 1 };
        assert_eq!(row["attempts"], attempts, "{input}: {row}");
    }
}

/// What Slurm does to a `--requeue` job whose node fails: kill element 0 and queue it again;
/// then the run must finish successfully.
fn requeue_element_0_and_finish(job: &str, child: &mut std::process::Child) {
    let status = Command::new("scontrol")
        .args(["requeue", &format!("{job}_0")])
        .status()
        .unwrap();
    assert!(status.success(), "scontrol requeue {job}_0");
    let status = wait_exit(child, Duration::from_secs(180));
    assert_eq!(status.code(), Some(0), "the requeued element completes");
}

#[test]
fn slurm_requeued_task_reruns_within_the_same_attempt() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    // Slow enough to be requeued while running.
    let RunningTask {
        mut child,
        run,
        job,
        sub_dir,
    } = start_one_running_task(
        tmp.path(),
        "#!/bin/bash\nsleep 3\nprintf 'The model score: 0.25' >\"$2\"\n",
    );
    requeue_element_0_and_finish(&job, &mut child);
    let rows = rows(&run);
    let row = &rows["iris.csv"];
    assert_eq!(row["status"], "succeeded", "{row}");
    assert_eq!(row["score"], "0.25");
    assert_eq!(
        row["attempts"], 1,
        "a requeue is Slurm's, not a new attempt"
    );
    let starts = std::fs::read_to_string(sub_dir.parent().unwrap().join("starts.log")).unwrap();
    let restarts: Vec<&str> = starts
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(
        restarts,
        ["0", "1"],
        "started, requeued, started again: {starts}"
    );
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
}

#[test]
fn slurm_options_reach_sbatch_and_cleanup_removes_staging() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv"]);
    let out_dir = tmp.path().join("out");
    let staging = tmp.path().join("shared staging");
    let mut cmd = run_cmd(
        &out_dir,
        &inputs,
        &trainer(),
        &[
            "--partition",
            "debug",
            "--time-limit",
            "5",
            "--cpus-per-task",
            "1",
            "--mem",
            "100M",
        ],
    );
    cmd.arg("--staging-dir").arg(&staging);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0));
    let run = run_dir(&out_dir);
    assert_eq!(rows(&run)["iris.csv"]["status"], "succeeded");

    let state = read_json(&run.join("slurm.json"));
    let job = state["submissions"][0]["job_id"].as_str().unwrap();
    let show = Command::new("scontrol")
        .args(["-o", "show", "job", job])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    for want in [
        "Partition=debug",
        "TimeLimit=00:05:00",
        "MinMemoryNode=100M",
        "Requeue=1",
    ] {
        assert!(show.contains(want), "{want} in {show}");
    }
    assert!(
        show.contains("CPUs/Task=1") || show.contains("MinCPUsNode=1"),
        "{show}"
    );

    let run_id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let run_stage = staging.join("runs").join(&run_id);
    assert!(run_stage.join("task.sh").is_file());
    let mut cleanup = orchestrator(&out_dir);
    cleanup
        .args(["cleanup", &run_id])
        .arg("--staging-dir")
        .arg(&staging);
    let out = output(cleanup);
    assert_eq!(out.status.code(), Some(0));
    assert!(!run_stage.exists(), "the run's staging directory is gone");
    assert!(
        staging.join("objects").read_dir().unwrap().count() == 2,
        "shared objects stay"
    );
    assert!(run.join("report.json").is_file(), "results stay");
}

#[test]
fn slurm_resume_retries_a_task_that_failed_transiently() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &["iris.csv"]);
    let trainer = tmp.path().join("flaky-trainer");
    write_script(&trainer, FLAKY_TRAINER);
    let flaky = tmp.path().join("flaky");
    std::fs::create_dir(&flaky).unwrap();
    let out_dir = tmp.path().join("out");
    let mut cmd = run_cmd(&out_dir, &inputs, &trainer, &["--retries", "0"]);
    cmd.env("FLAKY_DIR", &flaky);
    let out = output(cmd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no retries: the transient failure sticks"
    );
    let run = run_dir(&out_dir);
    let row = &rows(&run)["iris.csv"];
    assert_eq!(
        (row["status"].as_str(), row["exit_code"].as_i64()),
        (Some("failed"), Some(2))
    );
    assert!(
        row["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("transient failure"),
        "{row}"
    );

    // Resume asks for a new attempt of what may succeed now; the job is not adopted again.
    let run_id = run.file_name().unwrap().to_str().unwrap().to_owned();
    let mut resume = orchestrator(&out_dir);
    resume.args(["resume", &run_id]).env("FLAKY_DIR", &flaky);
    let out = output(resume);
    assert_eq!(out.status.code(), Some(0));
    let row = &rows(&run)["iris.csv"];
    assert_eq!(row["status"], "succeeded", "{row}");
    assert_eq!(row["attempts"], 2, "{row}");
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 2);
    assert_eq!(state["submissions"][1]["tasks"][0]["attempt"], 2);
}

#[test]
fn a_sweep_of_3_inputs_by_8_settings_on_slurm_scores_like_scikit_learn() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    for name in sweep_golden::SWEEP_INPUTS {
        std::fs::copy(root().join("input_files").join(name), inputs.join(name)).unwrap();
    }
    let out_dir = tmp.path().join("out");
    let grid = sweep_golden::sweep_grid("no-bootstrap=off,on");
    let grid: Vec<&str> = grid.iter().map(String::as_str).collect();
    let out = output(run_cmd(&out_dir, &inputs, &trainer(), &grid));
    assert_eq!(out.status.code(), Some(0), "the sweep succeeds");
    let run = run_dir(&out_dir);
    sweep_golden::assert_sweep_matches_goldens(&run, "no-bootstrap");
    // One array job for the 24 tasks; each input staged once.
    let state = read_json(&run.join("slurm.json"));
    assert_eq!(state["submissions"].as_array().unwrap().len(), 1);
    let objects = std::fs::read_dir(out_dir.join("slurm-staging/objects")).unwrap();
    assert_eq!(objects.count(), 4, "3 inputs and the trainer");
}

/// The golden score of each of `input_files/` (default flags).
fn golden_scores() -> BTreeMap<String, String> {
    read_json(&root().join("tests/golden/cases.json"))
        .as_array()
        .expect("golden cases")
        .iter()
        .filter(|c| c["status"] == "ok" && c["args"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|c| {
            let name = c["csv"].as_str()?.strip_prefix("input_files/")?;
            Some((name.to_owned(), score_of(c["output"].as_str()?)))
        })
        .collect()
}

/// How often each task id appears in the run's `starts.log` (one line per trainer start).
fn starts_per_task(sub_dir: &Path) -> BTreeMap<String, usize> {
    let starts = std::fs::read_to_string(sub_dir.parent().unwrap().join("starts.log")).unwrap();
    let mut counts = BTreeMap::new();
    for line in starts.lines() {
        *counts
            .entry(line.split('\t').next().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

#[test]
fn slurm_packs_run_the_trainer_once_per_input_and_a_bad_input_fails_alone() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(tmp.path(), &ALL_INPUTS);
    std::fs::copy(
        root().join("tests/fixtures/trainer/bad_non_numeric_cell.csv"),
        inputs.join("bad.csv"),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = output(run_cmd(
        &out_dir,
        &inputs,
        &trainer(),
        &["--inputs-per-task", "3"],
    ));
    assert_eq!(out.status.code(), Some(1), "the bad input fails the run");
    let run = run_dir(&out_dir);
    let rows = rows(&run);
    assert_eq!(rows.len(), ALL_INPUTS.len() + 1, "one row per input");
    let golden = golden_scores();
    for name in ALL_INPUTS {
        let row = &rows[name];
        assert_eq!(row["status"], "succeeded", "{name}: {row}");
        assert_eq!(row["attempts"], 1, "{name}");
        assert_eq!(row["score"].as_str(), Some(golden[name].as_str()), "{name}");
    }
    let bad = &rows["bad.csv"];
    assert_eq!(
        (bad["status"].as_str(), bad["exit_code"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert!(
        bad["stderr_tail"].as_str().unwrap().contains("bad.csv"),
        "{bad}"
    );

    // 7 inputs in packs of 3: one array job of 3 elements; each input ran exactly once.
    let state = read_json(&run.join("slurm.json"));
    let subs = state["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "bad input is never retried: {state}");
    assert_eq!(subs[0]["packs"], serde_json::json!([0, 3, 6]), "{state}");
    let sub_dir = PathBuf::from(subs[0]["dir"].as_str().unwrap());
    let starts = starts_per_task(&sub_dir);
    assert_eq!(starts.len(), ALL_INPUTS.len() + 1);
    assert!(starts.values().all(|&n| n == 1), "{starts:?}");
}

#[test]
fn slurm_pack_retry_reruns_only_the_inputs_that_failed() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = inputs(
        tmp.path(),
        &["iris.csv", "wine.csv", "digits.csv", "breast_cancer.csv"],
    );
    // Fails once (exit 2, retryable) on wine.csv only.
    let trainer = tmp.path().join("flaky-trainer");
    write_script(
        &trainer,
        &FLAKY_TRAINER.replace(
            "if [[ ! -e $mark ]]",
            "if [[ $1 == *wine.csv && ! -e $mark ]]",
        ),
    );
    let flaky = tmp.path().join("flaky");
    std::fs::create_dir(&flaky).unwrap();
    let out_dir = tmp.path().join("out");
    let mut cmd = run_cmd(
        &out_dir,
        &inputs,
        &trainer,
        &["--inputs-per-task", "4", "--retries", "1"],
    );
    cmd.env("FLAKY_DIR", &flaky);
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "the retry succeeds");
    let run = run_dir(&out_dir);
    for (input, row) in rows(&run) {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        let attempts = if input == "wine.csv" { 2 } else { 1 };
        assert_eq!(row["attempts"], attempts, "{input}: {row}");
    }
    let state = read_json(&run.join("slurm.json"));
    let subs = state["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{state}");
    assert_eq!(
        subs[0]["packs"],
        serde_json::json!([0]),
        "one pack of 4: {state}"
    );
    let retried = subs[1]["tasks"].as_array().unwrap();
    assert_eq!(
        retried.len(),
        1,
        "only the failed input runs again: {state}"
    );
    assert_eq!(retried[0]["attempt"], 2);
}

#[test]
fn slurm_requeued_pack_reruns_only_its_unfinished_inputs() {
    cluster();
    let tmp = tempfile::tempdir().unwrap();
    // iris.csv (the second of the pack) is slow enough to be requeued while it runs.
    let RunningTask {
        mut child,
        run,
        job,
        sub_dir,
    } = start_running_task(
        tmp.path(),
        &["breast_cancer.csv", "iris.csv", "wine.csv"],
        "#!/bin/bash\n[[ $1 == *iris.csv ]] && sleep 3\nprintf 'The model score: 0.25' >\"$2\"\n",
        &["--inputs-per-task", "3"],
        1,
    );
    let state = read_json(&run.join("slurm.json"));
    requeue_element_0_and_finish(&job, &mut child);
    for (input, row) in rows(&run) {
        assert_eq!(row["status"], "succeeded", "{input}: {row}");
        assert_eq!(
            row["attempts"], 1,
            "a requeue is not a new attempt: {input}"
        );
    }
    let tasks = state["submissions"][0]["tasks"].as_array().unwrap();
    let id = |slot: usize| tasks[slot]["task_id"].as_str().unwrap().to_owned();
    let starts = starts_per_task(&sub_dir);
    assert_eq!(
        starts[&id(0)],
        1,
        "the finished input is not run again: {starts:?}"
    );
    assert_eq!(
        starts[&id(1)],
        2,
        "the interrupted one runs again: {starts:?}"
    );
    assert_eq!(starts[&id(2)], 1, "{starts:?}");
}
