//! Backend-agnostic description of a run: what is staged, which tasks exist, what happened.
//!
//! These types are the contract between the core and every [`crate::backend::Backend`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything a backend needs to know about the run it is serving.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Stable id of the run (directory name under `--out`).
    pub run_id: String,
    /// `OUT/<run-id>`: manifest, report and one directory per task live here.
    pub run_dir: PathBuf,
    /// Extra attempts after a failed one (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Wall-clock limit for one attempt, if any.
    pub timeout: Option<Duration>,
    /// Upper bound on tasks running at once (backends may run fewer).
    pub concurrency: usize,
}

impl RunContext {
    /// Where a task's collected files go: `output.txt`, `stdout.txt`, `stderr.txt`.
    pub fn task_dir(&self, task_id: &str) -> PathBuf {
        self.run_dir.join("tasks").join(task_id)
    }
}

/// A local file to stage, named by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageObject {
    /// Path on the orchestrator's machine.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the content; the staged object's name.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// What `Backend::stage` must make reachable.
#[derive(Debug, Clone)]
pub struct StagePlan {
    /// The trainer executable.
    pub trainer: StageObject,
    /// Each distinct input content (several input names may share one digest).
    pub inputs: Vec<StageObject>,
}

/// Where staged objects landed, in the engine's own terms (a path, a URL).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Staged {
    /// Location of the trainer executable.
    pub trainer: String,
    /// Location of each input, by digest.
    pub inputs: BTreeMap<String, String>,
}

/// One unit of work: run the trainer on one input with the run's flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Deterministic id: derived from the input's digest and the trainer flags.
    pub task_id: String,
    /// The input's file name as found (already checked to be a plain name).
    pub input_name: String,
    /// The input's content digest (key into [`Staged::inputs`]).
    pub input_digest: String,
    /// Trainer flags placed after `INPUT OUTPUT`.
    pub trainer_args: Vec<String>,
    /// Attempts the core recorded for this task in earlier sessions. The core adds the
    /// attempts a backend reports to these; a backend that numbers attempts across sessions
    /// (Slurm) subtracts them, instead of reading the core's manifest.
    #[serde(default)]
    pub prior_attempts: u32,
}

/// Final state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// The trainer exited 0 and its output file was collected.
    Succeeded,
    /// Every attempt failed (non-zero exit, missing output, engine failure).
    Failed,
    /// The last attempt ran past the timeout.
    TimedOut,
    /// Cancelled by the user or the engine before finishing.
    Cancelled,
    /// Never started: the engine's job ended first (its time cap, someone terminating it, a
    /// pool that could not be created); the failure says why. A resume runs it.
    NotRun,
}

impl TaskStatus {
    /// The spelling used in reports and the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::NotRun => "not_run",
        }
    }
}

/// What a backend reports as a task moves.
#[derive(Debug, Clone)]
pub enum TaskEvent {
    /// An attempt started (attempt numbers start at 1).
    Started {
        /// The task.
        task_id: String,
        /// Which attempt.
        attempt: u32,
    },
    /// The task reached its final state; its files are in `RunContext::task_dir`.
    Finished(TaskOutcome),
}

/// The result of one task, as the backend saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The task.
    pub task_id: String,
    /// Final state.
    pub status: TaskStatus,
    /// Exit code of the last attempt, when the process got to exit.
    pub exit_code: Option<i32>,
    /// Attempts made, including the last.
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub wall_seconds: f64,
    /// Engine-side reason when there is no exit code to explain a failure.
    pub failure: Option<String>,
    /// Times the engine moved the task off a lost or preempted node and ran it again. These
    /// reruns are not the task's fault; they are counted in `attempts` too.
    #[serde(default)]
    pub requeues: u32,
}

/// Whether `name` is a plain file name that cannot escape a directory.
pub fn is_safe_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty()
        && p.components().count() == 1
        && matches!(p.components().next(), Some(std::path::Component::Normal(_)))
        && !name.contains(['/', '\\', '\0'])
}
