//! The local backend: the trainer as child processes of this machine.
//!
//! Owns the content-addressed object store `OUT/objects/<digest>` (shared by every run under
//! the same `--out`), bounded concurrency, per-attempt timeout, retries with exponential
//! backoff, and killing children on shutdown. It knows nothing about manifests or reports.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::kit::pgroups::{self, ProcessGroups};
use super::kit::store::{ObjectStore, named_input};
use super::{Backend, OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::task::{RunContext, StagePlan, Staged, TaskEvent, TaskOutcome, TaskSpec, TaskStatus};
use crate::{Error, Result};

/// Runs tasks as child processes; see the module docs.
#[derive(Debug, Clone)]
pub struct Local {
    /// `OUT/objects`: staged trainer and inputs, named by digest.
    pub objects_dir: PathBuf,
    /// Delay before the first retry; doubled for each further retry, capped at
    /// [`Local::max_backoff`].
    pub backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
}

impl Local {
    /// A local backend whose object store is `out_dir/objects`.
    pub fn new(out_dir: &Path) -> Self {
        Self {
            objects_dir: out_dir.join("objects"),
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    fn store(&self) -> ObjectStore {
        ObjectStore::new(self.objects_dir.clone())
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn stage(&self, _run: &RunContext, plan: &StagePlan) -> Result<Staged> {
        self.store().stage_async(plan, "local").await
    }

    async fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        // Every input must be staged before any task starts, where this backend stages it
        // (the store, by digest): the dispatcher then derives each path as it starts the
        // task instead of holding one per task for the whole run.
        let store = self.store();
        for task in &tasks {
            let staged_at = staged.inputs.get(&task.input_digest);
            if staged_at.map(PathBuf::from) != Some(store.path(&task.input_digest)) {
                return Err(Error::backend(
                    "local",
                    format!(
                        "input {} of task {} was not staged in {}",
                        task.input_digest,
                        task.task_id,
                        self.objects_dir.display()
                    ),
                ));
            }
        }
        // Trainers an earlier orchestrator left running (it was killed with -9) die before
        // their tasks start again, so no task ever runs beside its orphan.
        let groups = ProcessGroups::new(&run.run_dir);
        let killer = groups.clone();
        tokio::task::spawn_blocking(move || killer.kill_leftovers())
            .await
            .map_err(|e| panicked("orphan kill", e))??;
        let policy = Arc::new(AttemptPolicy {
            groups,
            trainer: PathBuf::from(&staged.trainer),
            retries: run.retries,
            timeout: run.timeout,
            backoff: self.backoff,
            max_backoff: self.max_backoff,
        });
        // The dispatcher is a task of its own: the core polls `execute` together with its
        // event consumer, and a free slot must not wait while the consumer writes the manifest.
        let dispatcher = tokio::spawn(dispatch(
            tasks,
            store,
            run.clone(),
            policy,
            events,
            shutdown,
        ));
        let guard = AbortOnDrop(dispatcher.abort_handle());
        let res = dispatcher.await.map_err(|e| panicked("task runner", e))?;
        drop(guard);
        res
    }

    /// Removes the run's input links and the objects only this run uses; results stay.
    ///
    /// The object store is shared by every run under the same `--out`, so an object is deleted
    /// only when no other run's manifest names its digest.
    async fn cleanup(&self, run: &RunContext) -> Result<()> {
        let store = self.store();
        let run_dir = run.run_dir.clone();
        tokio::task::spawn_blocking(move || store.remove_unused(&run_dir))
            .await
            .map_err(|e| panicked("cleanup", e))?
    }

    fn task_command(&self, run: &RunContext, staged: &Staged, task: &TaskSpec) -> Vec<String> {
        let mut argv = vec![
            staged.trainer.clone(),
            path_string(&run.run_dir.join("inputs").join(&task.input_name)),
            path_string(&run.task_dir(&task.task_id).join(OUTPUT_FILE)),
        ];
        argv.extend(task.trainer_args.iter().cloned());
        argv
    }

    fn staged_locations(&self, _run: &RunContext, plan: &StagePlan) -> Staged {
        self.store().locations(plan)
    }
}

/// Hands out slots in task order and runs each task in its own tokio task.
async fn dispatch(
    tasks: Vec<TaskSpec>,
    store: ObjectStore,
    run: RunContext,
    policy: Arc<AttemptPolicy>,
    events: mpsc::UnboundedSender<TaskEvent>,
    shutdown: CancellationToken,
) -> Result<()> {
    let limit = Arc::new(Semaphore::new(run.concurrency.max(1)));
    let mut set = JoinSet::new();
    for task in tasks {
        // The task's files are made while earlier tasks run, so that a finished task's slot
        // goes to the next one without file-system work in between.
        let object = store.path(&task.input_digest);
        let input = named_input(&run.run_dir, &object, &task.input_name);
        let task_dir = run.task_dir(&task.task_id);
        let prepared = Some(prepare_attempt(&task_dir));
        // Slots are handed out here, in task order, so tasks start in the order of the inputs.
        // A task that never got a slot before shutdown gets no event at all: the core keeps it
        // pending for the next resume.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => permit.expect("semaphore never closed"),
        };
        let policy = Arc::clone(&policy);
        let events = events.clone();
        let shutdown = shutdown.clone();
        set.spawn(async move {
            let _permit = permit;
            let outcome = run_task(
                &policy, &task, &input, &task_dir, prepared, &events, &shutdown,
            )
            .await;
            let _ = events.send(TaskEvent::Finished(outcome));
        });
        // Reap finished runners as we go, so a panic surfaces early.
        while let Some(res) = set.try_join_next() {
            if let Err(e) = res {
                return Err(panicked("task runner", e));
            }
        }
    }
    drop(events);
    while let Some(res) = set.join_next().await {
        if let Err(e) = res {
            return Err(panicked("task runner", e));
        }
    }
    Ok(())
}

/// Aborts the dispatcher if `execute` is dropped before it finishes: its runner tasks are
/// dropped with it, and `kill_on_drop` ends their children.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A blocking or async helper of this backend (`what`) panicked; the join error is the cause.
fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn panicked(what: &str, e: tokio::task::JoinError) -> Error {
    tracing::debug!("local: the {what} task did not finish");
    Error::backend("local", e)
}

/// What every attempt of every task shares.
#[derive(Debug)]
struct AttemptPolicy {
    /// Where each running attempt's process group is recorded.
    groups: ProcessGroups,
    trainer: PathBuf,
    retries: u32,
    timeout: Option<Duration>,
    backoff: Duration,
    max_backoff: Duration,
}

/// How one attempt ended.
#[derive(Debug)]
enum AttemptEnd {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
    SpawnFailed(String),
}

/// Runs one task through all its attempts and says how it ended.
async fn run_task(
    policy: &AttemptPolicy,
    task: &TaskSpec,
    input: &Path,
    task_dir: &Path,
    mut prepared: Option<std::io::Result<AttemptFiles>>,
    events: &mpsc::UnboundedSender<TaskEvent>,
    shutdown: &CancellationToken,
) -> TaskOutcome {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let files = match prepared.take() {
            Some(Ok(files)) => Some(files),
            // Preparing ahead failed: try again now, and report it if it fails again.
            Some(Err(_)) | None => None,
        };
        let _ = events.send(TaskEvent::Started {
            task_id: task.task_id.clone(),
            attempt,
        });
        let started = Instant::now();
        let end = run_attempt(policy, task, input, task_dir, files, shutdown).await;
        let wall_seconds = started.elapsed().as_secs_f64();
        let (status, exit_code, failure, retryable) = classify(&end, task_dir);
        let outcome = TaskOutcome {
            task_id: task.task_id.clone(),
            status,
            exit_code,
            attempts: attempt,
            wall_seconds,
            failure,
            // This machine's processes are never moved elsewhere.
            requeues: 0,
        };
        if status == TaskStatus::Succeeded || !retryable || attempt > policy.retries {
            return outcome;
        }
        let delay = backoff(policy, attempt);
        tracing::debug!(
            "task {} attempt {attempt} failed ({}); retrying in {delay:?}",
            task.task_id,
            outcome.failure.as_deref().unwrap_or("non-zero exit")
        );
        tokio::select! {
            () = shutdown.cancelled() => {
                return TaskOutcome { status: TaskStatus::Cancelled, ..outcome };
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Exponential backoff: `backoff * 2^(attempt-1)`, capped.
fn backoff(policy: &AttemptPolicy, attempt: u32) -> Duration {
    let factor = 1u32 << (attempt - 1).min(16);
    policy
        .backoff
        .saturating_mul(factor)
        .min(policy.max_backoff)
}

/// Maps an attempt's end to (status, exit code, failure text, retryable).
///
/// Trainer exit 1 means bad input or parameters: the same bytes fail the same way, so it is
/// never retried. Exit 2, other codes, signals, timeouts and spawn failures may be transient.
fn classify(end: &AttemptEnd, task_dir: &Path) -> (TaskStatus, Option<i32>, Option<String>, bool) {
    match end {
        AttemptEnd::Exited(status) => match status.code() {
            Some(0) if task_dir.join(OUTPUT_FILE).is_file() => {
                (TaskStatus::Succeeded, Some(0), None, false)
            }
            Some(0) => (
                TaskStatus::Failed,
                Some(0),
                Some(format!("trainer exited 0 but wrote no {OUTPUT_FILE}")),
                true,
            ),
            Some(1) => (TaskStatus::Failed, Some(1), None, false),
            Some(code) => (TaskStatus::Failed, Some(code), None, true),
            None => (
                TaskStatus::Failed,
                None,
                Some(format!("trainer killed by {}", describe_signal(status))),
                true,
            ),
        },
        AttemptEnd::TimedOut => (
            TaskStatus::TimedOut,
            None,
            Some("attempt exceeded the timeout and was killed".into()),
            true,
        ),
        AttemptEnd::Cancelled => (
            TaskStatus::Cancelled,
            None,
            Some("cancelled by shutdown".into()),
            false,
        ),
        AttemptEnd::SpawnFailed(reason) => (TaskStatus::Failed, None, Some(reason.clone()), true),
    }
}

#[cfg(unix)]
fn describe_signal(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(sig) => format!("signal {sig}"),
        None => "an unknown cause".into(),
    }
}

#[cfg(not(unix))]
fn describe_signal(_status: &ExitStatus) -> String {
    "an unknown cause".into()
}

/// One attempt: spawn the trainer with stdout/stderr going to files, wait for it, the
/// timeout or shutdown, whichever comes first.
/// The stdout and stderr files of an attempt, created before it starts.
type AttemptFiles = (std::fs::File, std::fs::File);

/// Readies the task directory for an attempt: no previous output, fresh stdout and stderr.
fn prepare_attempt(task_dir: &Path) -> std::io::Result<AttemptFiles> {
    std::fs::create_dir_all(task_dir)?;
    // A previous attempt's output must not pass for this one's.
    match std::fs::remove_file(task_dir.join(OUTPUT_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok((
        std::fs::File::create(task_dir.join(STDOUT_FILE))?,
        std::fs::File::create(task_dir.join(STDERR_FILE))?,
    ))
}

/// One attempt; `prepared` are its files if [`prepare_attempt`] already ran for it.
async fn run_attempt(
    policy: &AttemptPolicy,
    task: &TaskSpec,
    input: &Path,
    task_dir: &Path,
    prepared: Option<AttemptFiles>,
    shutdown: &CancellationToken,
) -> AttemptEnd {
    let output = task_dir.join(OUTPUT_FILE);
    let (stdout, stderr) = match prepared.map_or_else(|| prepare_attempt(task_dir), Ok) {
        Ok(files) => files,
        Err(e) => {
            return AttemptEnd::SpawnFailed(format!(
                "cannot prepare task directory {}: {e}",
                task_dir.display()
            ));
        }
    };
    let mut cmd = tokio::process::Command::new(&policy.trainer);
    cmd.arg(input)
        .arg(&output)
        .args(&task.trainer_args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Dropping the handle (an orchestrator panic or error path) kills the child.
        .kill_on_drop(true);
    // Its own process group: the terminal's Ctrl-C reaches only the orchestrator, which then
    // kills each task's whole group (a wrapper script and its trainer alike) and records it.
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return AttemptEnd::SpawnFailed(format!(
                "cannot start {}: {e}",
                policy.trainer.display()
            ));
        }
    };
    let pid = child.id();
    if let Some(pid) = pid
        && let Err(e) = policy.groups.record(&task.task_id, pid)
    {
        // Only an orphan after a kill -9 depends on it; the attempt itself can go on.
        tracing::warn!(
            "cannot record the process group of task {}: {e}",
            task.task_id
        );
    }
    let end = wait_attempt(policy, &mut child, pid, shutdown).await;
    policy.groups.forget(&task.task_id);
    end
}

/// Waits for the attempt's trainer, the timeout or shutdown, whichever comes first.
async fn wait_attempt(
    policy: &AttemptPolicy,
    child: &mut tokio::process::Child,
    pid: Option<u32>,
    shutdown: &CancellationToken,
) -> AttemptEnd {
    let timeout = async {
        match policy.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => AttemptEnd::Exited(status),
            Err(e) => AttemptEnd::SpawnFailed(format!("cannot wait for the trainer: {e}")),
        },
        () = timeout => {
            kill_group(pid);
            let _ = child.wait().await;
            AttemptEnd::TimedOut
        }
        () = shutdown.cancelled() => {
            kill_group(pid);
            let _ = child.wait().await;
            AttemptEnd::Cancelled
        }
    }
}

/// SIGKILL to the child's process group (it is the group leader, so pgid == pid).
fn kill_group(pid: Option<u32>) {
    // ESRCH (already gone) is fine; anything else leaves kill_on_drop as the fallback.
    if let Some(pid) = pid {
        pgroups::kill_group(pid);
    }
}
