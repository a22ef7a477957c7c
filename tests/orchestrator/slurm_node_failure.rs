//! End to end: the node dies under a running task (its `slurmd` and the task's `slurmstepd`
//! are killed), Slurm marks the node down and requeues the task (`--requeue`), the node comes
//! back, and the run still finishes with the task's one attempt.
//!
//! A test binary of its own: cargo runs test binaries one after another, so no other Slurm
//! test shares the node while it is down. It takes about a minute and a half, most of it
//! Slurm's own timers (`SlurmdTimeout=30` until the node is down, `cred_expire=15` before the
//! requeued task may start).

#[path = "slurm_util.rs"]
mod util;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

/// Restarts whatever the test killed, even when it fails half-way.
struct RestoreCluster;

impl Drop for RestoreCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/slurm-start.sh"))
            .status();
    }
}

fn slurm_dir() -> PathBuf {
    std::env::var_os("SLURM_DIR").map_or_else(
        || PathBuf::from("/var/lib/orchestrator-slurm"),
        PathBuf::from,
    )
}

fn scontrol_show(job: &str) -> String {
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", job])
        .output()
        .expect("scontrol runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn kill9(pid: &str) {
    let status = Command::new("kill").args(["-9", pid]).status().unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

#[test]
fn slurm_node_failure_requeues_the_task_and_the_run_finishes() {
    cluster();
    let _restore = RestoreCluster;
    let tmp = tempfile::tempdir().unwrap();
    let RunningTask {
        mut child,
        run,
        job: array_job,
        sub_dir,
    } = start_one_running_task(
        tmp.path(),
        "#!/bin/bash\nsleep 5\nprintf 'The model score: 0.5' >\"$2\"\n",
    );

    // The node dies: slurmd, the task's slurmstepd and the task's processes.
    let task = format!("{array_job}_0");
    let record = scontrol_show(&task);
    let job_id = field(&record, "JobId").expect("JobId").to_owned();
    let listed = Command::new("scontrol")
        .args(["listpids", &job_id])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let job_pids: Vec<&str> = listed
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!job_pids.is_empty(), "the task's processes: {listed}");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", job_pids[0])).unwrap();
    // Field 4 of /proc/PID/stat, after the parenthesised command name, is the parent pid.
    let stepd = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let stepd_cmd = std::fs::read_to_string(format!("/proc/{stepd}/cmdline")).unwrap();
    assert!(
        stepd_cmd.starts_with("slurmstepd"),
        "{stepd}: {stepd_cmd:?}"
    );
    let slurmd = std::fs::read_to_string(slurm_dir().join("run/slurmd.pid")).unwrap();
    kill9(slurmd.trim());
    kill9(&stepd);
    for pid in &job_pids {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }

    // Slurm notices (SlurmdTimeout), marks the node down and requeues the task.
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let record = scontrol_show(&task);
        if field(&record, "Restarts").is_some_and(|r| r != "0") {
            assert_eq!(field(&record, "JobState"), Some("PENDING"), "{record}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task not requeued within 150 s: {record}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the orchestrator must keep waiting"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // The node comes back; the requeued task runs again and the run finishes.
    let status = Command::new("bash")
        .arg(root().join("scripts/slurm-start.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "slurm-start.sh brings the node back");
    let status = wait_exit(&mut child, Duration::from_secs(180));
    assert_eq!(
        status.code(),
        Some(0),
        "the run finishes after the node failure"
    );
    let row = &rows(&run)["iris.csv"];
    assert_eq!(row["status"], "succeeded", "{row}");
    assert_eq!(
        row["attempts"], 1,
        "Slurm's requeue is not a new attempt: {row}"
    );
    assert_eq!(
        row["requeues"], 1,
        "the report counts Slurm's requeue: {row}"
    );
    let starts = std::fs::read_to_string(sub_dir.parent().unwrap().join("starts.log")).unwrap();
    let restarts: Vec<&str> = starts
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(restarts, ["0", "1"], "{starts}");
    assert_eq!(
        read_json(&run.join("slurm.json"))["submissions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no resubmission by the orchestrator"
    );
}
