//! The Slurm command-line tools this backend uses (`sbatch`, `scontrol`, `squeue`, `scancel`)
//! and parsers for what they print. Nothing else in the crate runs them.
//!
//! The CLI rather than `slurmrestd`: every Slurm release has these commands with stable
//! `-o`/`--parsable` output, while the REST schema changes between releases.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Stdio;

use super::fail;
use crate::{Error, Result};

/// Runs a Slurm tool and returns its stdout, or an error quoting its stderr.
pub(super) async fn run(program: &str, args: &[OsString]) -> Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            fail(format!(
                "cannot run `{program}` ({e}); is Slurm installed and on PATH? \
                 (scripts/slurm-start.sh sets up a single-node cluster)"
            ))
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::backend(
            "slurm",
            CommandFailed {
                program: program.to_owned(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            },
        ))
    }
}

/// A Slurm tool ran and exited non-zero: the cause inside [`Error::Backend`], so callers can
/// tell an unknown job from a controller that is down without parsing the message.
#[derive(Debug, thiserror::Error)]
#[error("`{program}` failed ({status}): {stderr}")]
pub(super) struct CommandFailed {
    program: String,
    status: std::process::ExitStatus,
    stderr: String,
}

impl CommandFailed {
    /// Whether `scontrol`/`squeue` failed because the controller no longer knows the job
    /// (it ended more than `MinJobAge` seconds ago, or the controller lost its state).
    pub(super) fn is_unknown_job(&self) -> bool {
        is_unknown_job(&self.stderr)
    }
}

/// The job id printed by `sbatch --parsable` (`123` or `123;cluster`).
pub(super) fn parse_sbatch_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

/// One array task as `scontrol -o show job` reports it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TaskRecord {
    /// `JobState`, e.g. `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`.
    pub state: String,
    /// `Reason`, e.g. `NonZeroExitCode`, `JobArrayTaskLimit`, `None`.
    pub reason: String,
    /// `ExitCode=code:signal`.
    pub exit: Option<(i32, i32)>,
    /// `Restarts`: how often Slurm requeued this task (node failures).
    pub restarts: u32,
    /// `RunTime` in seconds.
    pub run_seconds: Option<f64>,
    /// `BatchHost`: the node the batch script was started on; absent until it starts.
    pub batch_host: Option<String>,
}

impl TaskRecord {
    /// Whether Slurm will not run this task (again) by itself.
    pub(super) fn is_terminal(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "PREEMPTED"
                | "SPECIAL_EXIT"
        )
    }

    /// Whether the task ever started on a node (a pending element that was cancelled did
    /// not; a requeued one did, even while it waits again).
    pub(super) fn has_started(&self) -> bool {
        self.restarts > 0
            || self.batch_host.is_some()
            || matches!(self.state.as_str(), "RUNNING" | "COMPLETING" | "SUSPENDED")
    }
}

/// What `scontrol -o show job ARRAY_JOB_ID` says about each array index.
///
/// Pending tasks that have not been split out yet share one record whose `ArrayTaskId` is an
/// index expression (`3-19%8`, `1,4,7-9`); every index in it gets that record.
pub(super) fn parse_show_job(stdout: &str) -> BTreeMap<u32, TaskRecord> {
    let mut tasks = BTreeMap::new();
    for line in stdout.lines() {
        let fields = fields(line);
        let (Some(ids), Some(state)) = (fields.get("ArrayTaskId"), fields.get("JobState")) else {
            continue;
        };
        let record = TaskRecord {
            state: (*state).to_owned(),
            reason: fields.get("Reason").copied().unwrap_or("None").to_owned(),
            exit: fields.get("ExitCode").and_then(|e| parse_exit_code(e)),
            restarts: fields
                .get("Restarts")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            run_seconds: fields.get("RunTime").and_then(|t| parse_duration(t)),
            batch_host: fields
                .get("BatchHost")
                .filter(|h| !h.is_empty() && **h != "(null)")
                .map(|h| (*h).to_owned()),
        };
        for idx in parse_index_list(ids) {
            tasks.insert(idx, record.clone());
        }
    }
    tasks
}

/// `Key=Value` tokens of one `-o` line. Values containing spaces (`Command=`, `Comment=`) are
/// cut short, which is harmless for the keys read here.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|token| token.split_once('='))
        .collect()
}

/// `ExitCode=7:0` → `(7, 0)`; `0:15` means killed by signal 15.
pub(super) fn parse_exit_code(value: &str) -> Option<(i32, i32)> {
    let (code, signal) = value.split_once(':')?;
    Some((code.parse().ok()?, signal.parse().ok()?))
}

/// Slurm's `[D-]HH:MM:SS` (also `MM:SS`) → seconds.
pub(super) fn parse_duration(value: &str) -> Option<f64> {
    let (days, rest) = match value.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, value),
    };
    let mut secs = 0u64;
    for part in rest.split(':') {
        secs = secs * 60 + part.parse::<u64>().ok()?;
    }
    Some((days * 86_400 + secs) as f64)
}

/// `3`, `0-19%8`, `1,4,7-9` → the indices. Malformed parts are skipped.
pub(super) fn parse_index_list(value: &str) -> Vec<u32> {
    let list = value.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.push(i);
                }
            }
        }
    }
    out
}

/// See [`CommandFailed::is_unknown_job`].
fn is_unknown_job(message: &str) -> bool {
    message.contains("Invalid job id")
}

/// `MaxArraySize = 10001` from `scontrol show config`: array indices must stay below it.
pub(super) fn parse_max_array_size(stdout: &str) -> Option<usize> {
    stdout.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Total CPUs from `sinfo -h -o %C` lines (`allocated/idle/other/total`).
pub(super) fn parse_total_cpus(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|l| l.trim().rsplit('/').next()?.parse::<usize>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_id_with_and_without_cluster() {
        assert_eq!(parse_sbatch_id("123\n").as_deref(), Some("123"));
        assert_eq!(parse_sbatch_id("45;orchestrator\n").as_deref(), Some("45"));
        assert_eq!(parse_sbatch_id("Submitted batch job 3"), None);
        assert_eq!(parse_sbatch_id(""), None);
    }

    #[test]
    fn index_lists() {
        assert_eq!(parse_index_list("3"), vec![3]);
        assert_eq!(parse_index_list("0-3%2"), vec![0, 1, 2, 3]);
        assert_eq!(parse_index_list("1,4,7-9"), vec![1, 4, 7, 8, 9]);
        assert_eq!(parse_index_list("x,2"), vec![2]);
    }

    #[test]
    fn exit_codes_and_durations() {
        assert_eq!(parse_exit_code("7:0"), Some((7, 0)));
        assert_eq!(parse_exit_code("0:15"), Some((0, 15)));
        assert_eq!(parse_exit_code("junk"), None);
        assert_eq!(parse_duration("00:01:05"), Some(65.0));
        assert_eq!(parse_duration("1-00:00:01"), Some(86_401.0));
        assert_eq!(parse_duration("02:03"), Some(123.0));
        assert_eq!(parse_duration("INVALID"), None);
    }

    #[test]
    fn show_job_splits_array_records() {
        // Shapes captured from Slurm 22.05 `scontrol -o show job` (fields trimmed).
        let out = "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=orch JobState=FAILED \
                   Reason=NonZeroExitCode Dependency=(null) Restarts=0 ExitCode=1:0 \
                   RunTime=00:00:02 Command=/a b/task.sh\n\
                   JobId=11 ArrayJobId=10 ArrayTaskId=1 JobState=RUNNING Reason=None \
                   Restarts=1 ExitCode=0:0 RunTime=00:00:01\n\
                   JobId=10 ArrayJobId=10 ArrayTaskId=3-5%2 JobState=PENDING \
                   Reason=JobArrayTaskLimit Restarts=0 ExitCode=0:0 RunTime=00:00:00\n\
                   JobId=13 ArrayJobId=10 ArrayTaskId=0 JobState=CANCELLED Reason=None \
                   Restarts=0 ExitCode=0:15 RunTime=00:00:01 NodeList=localhost \
                   BatchHost=localhost\n\
                   JobId=14 ArrayJobId=10 ArrayTaskId=6 JobState=CANCELLED Reason=None \
                   Restarts=0 ExitCode=0:0 RunTime=00:00:00 NodeList= \n";
        let tasks = parse_show_job(out);
        assert_eq!(tasks.len(), 7);
        // Cancelled while running vs cancelled while pending.
        assert!(tasks[&0].has_started());
        assert!(!tasks[&6].has_started());
        let failed = &tasks[&2];
        assert_eq!(failed.state, "FAILED");
        assert_eq!(failed.exit, Some((1, 0)));
        assert!(failed.is_terminal());
        assert_eq!(failed.run_seconds, Some(2.0));
        assert!(tasks[&1].has_started());
        assert_eq!(tasks[&1].restarts, 1);
        assert!(!tasks[&4].has_started());
        assert_eq!(tasks[&5].reason, "JobArrayTaskLimit");
    }

    #[test]
    fn total_cpus() {
        assert_eq!(parse_total_cpus("0/2/0/2\n"), 2);
        assert_eq!(parse_total_cpus("4/4/0/8\n1/15/0/16\n"), 24);
        assert_eq!(parse_total_cpus(""), 0);
    }

    #[test]
    fn config_and_unknown_job() {
        let config =
            "Configuration data as of 2026-11-28T10:00:00\nMaxArraySize            = 10001\n";
        assert_eq!(parse_max_array_size(config), Some(10001));
        assert_eq!(parse_max_array_size("nothing"), None);
        assert!(is_unknown_job(
            "slurm_load_jobs error: Invalid job id specified"
        ));
    }
}
