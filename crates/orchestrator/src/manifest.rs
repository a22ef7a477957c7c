//! The run manifest `OUT/<run-id>/manifest.json`: everything needed to resume a run, and
//! where each task stands. It is the only state a run keeps between orchestrator processes.
//!
//! Crash safety comes from two rules. The file is always replaced atomically (temp file,
//! fsync, rename), so a crash leaves the previous or the next version, never a torn one. And
//! a task is recorded `succeeded` only after its output is in its task directory, so anything
//! a crash loses is a task that is simply run again; a recorded success is never re-run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::job::{StageObject, Staged, TaskOutcome, TaskSpec, TaskStatus};
use crate::sweep::Grid;
use crate::{Error, Result};

/// File name of the manifest inside the run directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Bumped when the manifest's meaning changes incompatibly.
pub const FORMAT: u32 = 1;

/// The state of a run, as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// The run's id (its directory name).
    pub run_id: String,
    /// The engine the run uses.
    pub backend: BackendKind,
    /// The input directory as given.
    pub input_dir: PathBuf,
    /// The trainer executable as found, with its digest.
    pub trainer: StageObject,
    /// The user's trainer flags (they are part of every task id).
    pub trainer_args: Vec<String>,
    /// `--threads` added by the orchestrator, or `None` when the user chose it.
    pub threads: Option<usize>,
    /// Tasks at once.
    pub concurrency: usize,
    /// Extra attempts for retryable failures.
    pub retries: u32,
    /// Per-attempt time limit in seconds.
    pub timeout_seconds: Option<f64>,
    /// Every input, in discovery order.
    pub inputs: Vec<InputRecord>,
    /// Every distinct task (inputs with equal content share one), in first-input order.
    pub tasks: Vec<TaskRecord>,
    /// Where the backend staged the objects, once it has.
    pub staged: Option<Staged>,
    /// Process id of the orchestrator that last worked on this run (for `status`).
    pub orchestrator_pid: Option<u32>,
    /// A sweep's grid as last given; `tasks` holds one task per distinct input x setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Grid>,
    /// Tasks of settings an earlier command of this sweep had and the last one dropped: kept,
    /// so that giving the setting again finds its result instead of running it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<TaskRecord>,
}

/// One input file of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRecord {
    /// File name.
    pub name: String,
    /// Path as found (used to stage it again on resume if needed).
    pub path: PathBuf,
    /// SHA-256 of the content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The task that trains on this content.
    pub task_id: String,
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not started in this or a previous session.
    Pending,
    /// An attempt was started and has not been reported finished.
    Running,
    /// Finished with output collected.
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// The last attempt ran past the timeout.
    TimedOut,
    /// Stopped by Ctrl-C or the engine.
    Cancelled,
    /// Never started: the engine's job ended first.
    NotRun,
}

impl TaskState {
    /// The spelling used in reports and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::NotRun => "not_run",
        }
    }
}

impl From<TaskStatus> for TaskState {
    fn from(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Succeeded => Self::Succeeded,
            TaskStatus::Failed => Self::Failed,
            TaskStatus::TimedOut => Self::TimedOut,
            TaskStatus::Cancelled => Self::Cancelled,
            TaskStatus::NotRun => Self::NotRun,
        }
    }
}

/// One task's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Deterministic id (see `pipeline::task_id`).
    pub task_id: String,
    /// First input name with this content.
    pub input_name: String,
    /// Content digest of the input.
    pub input_digest: String,
    /// Where it stands.
    pub state: TaskState,
    /// Attempts made over every session of the run.
    pub attempts: u32,
    /// Exit code of the last finished attempt.
    pub exit_code: Option<i32>,
    /// Wall time of the last finished attempt.
    pub wall_seconds: Option<f64>,
    /// Engine-side reason for a failure without an exit code.
    pub failure: Option<String>,
    /// Engine requeues (lost or preempted nodes) over every session of the run.
    #[serde(default)]
    pub requeues: u32,
    /// In a sweep: the setting's canonical trainer flags, added after the run's fixed ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setting_args: Vec<String>,
}

impl TaskRecord {
    /// Whether a resume leaves this task alone.
    ///
    /// Success is final. So is exit code 1, the trainer's "bad input or parameters": the same
    /// bytes and flags fail the same way again. Anything else (timeouts, signals, exit 2,
    /// cancellation, a crash while running) is tried again.
    pub fn is_done(&self) -> bool {
        match self.state {
            TaskState::Succeeded => true,
            TaskState::Failed => self.exit_code == Some(1),
            _ => false,
        }
    }

    /// Records a backend's final outcome; `base_attempts` are those of earlier sessions.
    pub fn finish(&mut self, outcome: &TaskOutcome, base_attempts: u32) {
        self.state = outcome.status.into();
        self.attempts = base_attempts + outcome.attempts;
        self.exit_code = outcome.exit_code;
        self.wall_seconds = Some(outcome.wall_seconds);
        self.failure = outcome.failure.clone();
        // One `Finished` per task and session, so requeues add up like attempts do.
        self.requeues += outcome.requeues;
    }

    /// The spec handed to a backend: the run's trainer flags, then this task's setting's.
    pub fn spec(&self, mut trainer_args: Vec<String>) -> TaskSpec {
        trainer_args.extend(self.setting_args.iter().cloned());
        TaskSpec {
            task_id: self.task_id.clone(),
            input_name: self.input_name.clone(),
            input_digest: self.input_digest.clone(),
            trainer_args,
            prior_attempts: self.attempts,
        }
    }
}

impl Manifest {
    /// The manifest's path for a run directory.
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(MANIFEST_FILE)
    }

    /// Reads a run's manifest.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let path = Self::path(run_dir);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let manifest: Self = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if manifest.format != FORMAT {
            return Err(Error::Manifest {
                path,
                reason: format!(
                    "format {} is not supported by this orchestrator (expects {FORMAT})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// The serialized form written to [`MANIFEST_FILE`].
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    /// Tasks by id, for lookups.
    pub fn task_index(&self) -> BTreeMap<String, usize> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.clone(), i))
            .collect()
    }

    /// The trainer flags every task of this run gets: the user's, plus `--threads` if the
    /// orchestrator chose it.
    pub fn task_args(&self) -> Vec<String> {
        let mut args = self.trainer_args.clone();
        if let Some(threads) = self.threads {
            args.push("--threads".into());
            args.push(threads.to_string());
        }
        args
    }
}

/// An exclusive lock on a run directory, held while one orchestrator works on the run, so
/// that two cannot interleave their manifest writes. The OS releases it when the process
/// ends, however it ends (kill -9 included), so a crashed run never stays locked.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// File name of the run lock inside the run directory.
pub const LOCK_FILE: &str = "lock";

/// Takes the run's lock, or says that another orchestrator holds it.
pub fn lock_run(run_dir: &Path) -> Result<RunLock> {
    let path = run_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    #[cfg(unix)]
    if let Err(e) = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        if e == rustix::io::Errno::WOULDBLOCK {
            return Err(busy(run_dir));
        }
        return Err(Error::io("lock", &path, e.into()));
    }
    Ok(RunLock { _file: file })
}

/// The error for a run another orchestrator holds the lock of.
pub fn busy(run_dir: &Path) -> Error {
    Error::Manifest {
        path: Manifest::path(run_dir),
        reason: "another orchestrator is working on this run right now; wait for it or stop \
                 it, then resume"
            .into(),
    }
}

/// Whether some orchestrator holds the run's lock right now.
pub fn run_is_locked(run_dir: &Path) -> bool {
    #[cfg(unix)]
    if let Ok(file) = std::fs::File::open(run_dir.join(LOCK_FILE)) {
        return rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared)
            .is_err_and(|e| e == rustix::io::Errno::WOULDBLOCK);
    }
    let _ = run_dir;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: TaskState, exit_code: Option<i32>) -> TaskRecord {
        TaskRecord {
            task_id: "t".into(),
            input_name: "a.csv".into(),
            input_digest: "d".into(),
            state,
            attempts: 1,
            exit_code,
            wall_seconds: None,
            failure: None,
            requeues: 0,
            setting_args: vec![],
        }
    }

    #[test]
    fn requeues_add_up_across_sessions_like_attempts() {
        let mut t = record(TaskState::Pending, None);
        let outcome = |status, requeues| TaskOutcome {
            task_id: "t".into(),
            status,
            exit_code: None,
            attempts: 1 + requeues,
            wall_seconds: 1.0,
            failure: None,
            requeues,
        };
        t.finish(&outcome(TaskStatus::Cancelled, 2), 0);
        assert_eq!((t.attempts, t.requeues), (3, 2));
        t.finish(&outcome(TaskStatus::Succeeded, 1), t.attempts);
        assert_eq!((t.attempts, t.requeues), (5, 3));
        assert!(t.is_done());
    }

    #[test]
    fn only_success_and_bad_input_are_final() {
        assert!(record(TaskState::Succeeded, Some(0)).is_done());
        assert!(record(TaskState::Failed, Some(1)).is_done());
        assert!(!record(TaskState::Failed, Some(2)).is_done());
        assert!(!record(TaskState::Failed, None).is_done());
        assert!(!record(TaskState::Running, None).is_done());
        assert!(!record(TaskState::TimedOut, None).is_done());
        assert!(!record(TaskState::Cancelled, None).is_done());
        assert!(!record(TaskState::Pending, None).is_done());
    }
}
