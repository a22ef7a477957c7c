//! The one trait every execution engine implements, and nothing else.
//!
//! The core (`crate::run`) owns discovery, task ids, the manifest, progress and the report.
//! A backend owns only its engine: where staged bytes live, how a task is started, watched,
//! retried, cancelled and cleaned up. Only a backend's own module knows its engine exists.

use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::job::{RunContext, StagePlan, Staged, TaskEvent, TaskSpec};

/// A place that can run trainer tasks: this machine, an Azure Batch pool, a Slurm cluster.
///
/// The life of a run is `stage` → `execute` (→ `execute` again on resume) → `cleanup`.
/// Every method must be idempotent: a crashed orchestrator calls them again for the same run.
pub trait Backend: Send + Sync {
    /// Short engine name used in reports and logs (`local`, `azure-batch`, `slurm`).
    fn name(&self) -> &'static str;

    /// Make the trainer binary and every input reachable by the engine's workers.
    ///
    /// Content-addressed: an object whose digest is already staged is neither copied nor
    /// uploaded again. Returns where each object landed, for the task command lines.
    fn stage(
        &self,
        run: &RunContext,
        plan: &StagePlan,
    ) -> impl Future<Output = Result<Staged>> + Send;

    /// Run `tasks` to a final state, sending a [`TaskEvent`] for every state change.
    ///
    /// The backend owns retries (up to `run.retries` extra attempts), the per-task timeout and
    /// bringing each task's output, stdout and stderr into `run.task_dir(task_id)`. It returns
    /// when every task has finished, or soon after `shutdown` fires, having cancelled the
    /// engine's work for this run (killed children, `scancel`, terminated job).
    fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Delete what this run created on the engine (jobs, pools, staged blobs, scratch dirs).
    /// Results already collected under the run directory are never touched.
    fn cleanup(&self, run: &RunContext) -> impl Future<Output = Result<()>> + Send;
}
