//! The local backend: the trainer as child processes of this machine.
//!
//! Owns the content-addressed object store `OUT/objects/<digest>` (shared by every run under
//! the same `--out`), bounded concurrency, per-attempt timeout, retries with exponential
//! backoff, and killing children on shutdown. It knows nothing about manifests or reports.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Backend, OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::job::{
    RunContext, StageObject, StagePlan, Staged, TaskEvent, TaskOutcome, TaskSpec, TaskStatus,
};
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

    fn object_path(&self, digest: &str) -> PathBuf {
        self.objects_dir.join(digest)
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn stage(&self, _run: &RunContext, plan: &StagePlan) -> Result<Staged> {
        let objects_dir = self.objects_dir.clone();
        let trainer = plan.trainer.clone();
        let inputs = plan.inputs.clone();
        // Copying and hashing are blocking file work.
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&objects_dir)
                .map_err(|e| Error::io("create", &objects_dir, e))?;
            let mut pending = Vec::new();
            let trainer_path = copy_object(&objects_dir, &trainer, true, &mut pending)?;
            // Small inputs cost a file creation each, which is kernel time: spread them over
            // the cores (nothing else runs yet).
            // One copy per digest, even if the plan lists a content twice.
            let mut seen = BTreeSet::new();
            let distinct: Vec<&StageObject> = inputs
                .iter()
                .filter(|o| seen.insert(o.digest.as_str()))
                .collect();
            let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = distinct.len().div_ceil(n_threads).max(1);
            let results: Vec<(Vec<PendingObject>, Result<()>)> = std::thread::scope(|scope| {
                let handles: Vec<_> = distinct
                    .chunks(chunk)
                    .map(|objects| {
                        let objects_dir = &objects_dir;
                        scope.spawn(move || {
                            let mut pending = Vec::new();
                            let res = objects.iter().try_for_each(|object| {
                                copy_object(objects_dir, object, false, &mut pending).map(drop)
                            });
                            (pending, res)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("staging thread does not panic"))
                    .collect()
            });
            let mut first_error = None;
            for (p, res) in results {
                pending.extend(p);
                if let Err(e) = res {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                for (tmp, _) in &pending {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
            publish(pending)?;
            let staged_inputs = inputs
                .iter()
                .map(|o| (o.digest.clone(), path_string(&objects_dir.join(&o.digest))))
                .collect();
            Ok(Staged {
                trainer: path_string(&trainer_path),
                inputs: staged_inputs,
            })
        })
        .await
        .map_err(|e| Error::Backend {
            backend: "local",
            message: format!("staging task panicked: {e}"),
        })?
    }

    async fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        // Every input must be staged before any task starts.
        let mut jobs = Vec::with_capacity(tasks.len());
        for task in tasks {
            let Some(input) = staged.inputs.get(&task.input_digest) else {
                return Err(Error::Backend {
                    backend: "local",
                    message: format!(
                        "input {} of task {} was not staged",
                        task.input_digest, task.task_id
                    ),
                });
            };
            let input = PathBuf::from(input);
            jobs.push((task, input));
        }
        let policy = Arc::new(AttemptPolicy {
            trainer: PathBuf::from(&staged.trainer),
            retries: run.retries,
            timeout: run.timeout,
            backoff: self.backoff,
            max_backoff: self.max_backoff,
        });
        // The dispatcher is a task of its own: the core polls `execute` together with its
        // event consumer, and a free slot must not wait while the consumer writes the manifest.
        let dispatcher = tokio::spawn(dispatch(jobs, run.clone(), policy, events, shutdown));
        let guard = AbortOnDrop(dispatcher.abort_handle());
        let res = dispatcher.await.map_err(|e| panicked(&e))?;
        drop(guard);
        res
    }

    /// Removes the run's input links and the objects only this run uses; results stay.
    ///
    /// The object store is shared by every run under the same `--out`, so an object is deleted
    /// only when no other run's manifest names its digest.
    async fn cleanup(&self, run: &RunContext) -> Result<()> {
        let objects_dir = self.objects_dir.clone();
        let run_dir = run.run_dir.clone();
        tokio::task::spawn_blocking(move || collect_garbage(&objects_dir, &run_dir))
            .await
            .map_err(|e| Error::Backend {
                backend: "local",
                message: format!("cleanup task panicked: {e}"),
            })?
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
        Staged {
            trainer: path_string(&self.object_path(&plan.trainer.digest)),
            inputs: plan
                .inputs
                .iter()
                .map(|o| (o.digest.clone(), path_string(&self.object_path(&o.digest))))
                .collect(),
        }
    }
}

/// Hands out slots in task order and runs each task in its own tokio task.
async fn dispatch(
    jobs: Vec<(TaskSpec, PathBuf)>,
    run: RunContext,
    policy: Arc<AttemptPolicy>,
    events: mpsc::UnboundedSender<TaskEvent>,
    shutdown: CancellationToken,
) -> Result<()> {
    let limit = Arc::new(Semaphore::new(run.concurrency.max(1)));
    let mut set = JoinSet::new();
    for (task, object) in jobs {
        // The task's files are made while earlier tasks run, so that a finished task's slot
        // goes to the next one without file-system work in between.
        let input = super::named_input(&run.run_dir, &object, &task.input_name);
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
                return Err(panicked(&e));
            }
        }
    }
    drop(events);
    while let Some(res) = set.join_next().await {
        if let Err(e) = res {
            return Err(panicked(&e));
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

fn panicked(e: &tokio::task::JoinError) -> Error {
    Error::Backend {
        backend: "local",
        message: format!("task runner panicked: {e}"),
    }
}

/// A copied, verified object waiting to be renamed into place: (temp path, final path).
type PendingObject = (PathBuf, PathBuf);

/// Copies one object next to its place in the store unless it is already there; returns
/// where it will be. [`publish`] renames the copies into place.
///
/// Copy, not hard link: a hard link would alias the user's file, and editing it in place would
/// silently change a "content-addressed" object. The copy is hashed as it is written and kept
/// only if the digest matches, so a file that changed since discovery is caught.
fn copy_object(
    objects_dir: &Path,
    object: &StageObject,
    executable: bool,
    pending: &mut Vec<PendingObject>,
) -> Result<PathBuf> {
    let dest = objects_dir.join(&object.digest);
    // An object is trusted only if its bytes still match its name: this catches a copy that a
    // power loss truncated (copies are not fsynced) and anything edited in the store.
    if crate::input::hash_file(&dest).is_ok_and(|o| o.digest == object.digest) {
        return Ok(dest);
    }
    if pending.iter().any(|(_, d)| *d == dest) {
        return Ok(dest);
    }
    // Unique per process and per call: two runs staging the same content never share a temp.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = objects_dir.join(format!(".{}.{}.{n}.tmp", object.digest, std::process::id()));
    let res = (|| {
        let mut src =
            std::fs::File::open(&object.path).map_err(|e| Error::io("open", &object.path, e))?;
        let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| Error::io("read", &object.path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("write", &tmp, e))?;
        }
        let digest = hex::encode(hasher.finalize());
        if digest != object.digest {
            return Err(Error::Input {
                path: object.path.clone(),
                reason: "its content no longer matches the digest this run recorded for it \
                         (it changed since it was hashed); run `orchestrator run` again to \
                         start a run with the new content"
                    .into(),
            });
        }
        set_read_only(&out, executable).map_err(|e| Error::io("chmod", &tmp, e))
        // `out` is closed here, before any rename: an executable still open for writing
        // cannot be run (ETXTBSY).
    })();
    match res {
        Ok(()) => {
            pending.push((tmp, dest.clone()));
            Ok(dest)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            for (tmp, _) in pending.drain(..) {
                let _ = std::fs::remove_file(tmp);
            }
            Err(e)
        }
    }
}

/// Renames every verified copy into place.
///
/// Copies are not fsynced one by one: a thousand small inputs took seconds that way. Instead
/// an object is re-hashed whenever a later run wants to reuse it (see [`copy_object`]), so a
/// copy lost or torn by a power failure is detected and made again, never trusted.
fn publish(pending: Vec<PendingObject>) -> Result<()> {
    for (tmp, dest) in &pending {
        if let Err(e) = std::fs::rename(tmp, dest) {
            for (tmp, _) in &pending {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(Error::io("rename", tmp, e));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_read_only(file: &std::fs::File, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o555 } else { 0o444 };
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_read_only(file: &std::fs::File, _executable: bool) -> std::io::Result<()> {
    let mut perms = file.metadata()?.permissions();
    perms.set_readonly(true);
    file.set_permissions(perms)
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Deletes objects referenced by `run_dir`'s manifest and by no other run's manifest.
fn collect_garbage(objects_dir: &Path, run_dir: &Path) -> Result<()> {
    // The run's named links to its inputs are scratch, not results.
    let inputs = run_dir.join("inputs");
    match std::fs::remove_dir_all(&inputs) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("remove", &inputs, e));
        }
        _ => {}
    }
    let this = referenced_digests(&run_dir.join("manifest.json"));
    let Some(out_dir) = run_dir.parent() else {
        return Ok(());
    };
    let mut others = BTreeSet::new();
    let entries = std::fs::read_dir(out_dir).map_err(|e| Error::io("list", out_dir, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path != run_dir && path != objects_dir {
            others.extend(referenced_digests(&path.join("manifest.json")));
        }
    }
    for digest in this.difference(&others) {
        let path = objects_dir.join(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("removed staged object {}", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// The digests a manifest stages, read loosely so that a newer or foreign manifest format
/// never makes cleanup delete something it should keep (unreadable means "keep everything").
fn referenced_digests(manifest: &Path) -> BTreeSet<String> {
    let Ok(bytes) = std::fs::read(manifest) else {
        return BTreeSet::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return BTreeSet::new();
    };
    let mut digests = BTreeSet::new();
    if let Some(d) = value.pointer("/trainer/digest").and_then(|d| d.as_str()) {
        digests.insert(d.to_owned());
    }
    if let Some(inputs) = value.get("inputs").and_then(|i| i.as_array()) {
        for input in inputs {
            if let Some(d) = input.get("digest").and_then(|d| d.as_str()) {
                digests.insert(d.to_owned());
            }
        }
    }
    digests
}

/// What every attempt of every task shares.
#[derive(Debug)]
struct AttemptPolicy {
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
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        // ESRCH (already gone) is fine; anything else leaves kill_on_drop as the fallback.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}
