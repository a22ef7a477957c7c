//! The run manifest: everything needed to resume a run, and where each task stands. It is the
//! only state a run keeps between orchestrator processes, in two files of the run directory:
//!
//! - `manifest.json`, a **snapshot** of the whole [`Manifest`] (compact JSON), always replaced
//!   atomically (temp file, fsync, rename), so a crash leaves the previous or the next one;
//! - `manifest.journal`, the **journal**: one JSON line per task change since that snapshot,
//!   appended in batches with one `fdatasync` per batch ([`Journal`]). A change costs one line
//!   however large the run is; rewriting the whole manifest for every batch cost 75 MB per
//!   write at 100,000 inputs.
//!
//! Both carry a generation: the journal's first line names the snapshot it extends, and
//! [`Manifest::load`] replays a journal only onto that snapshot. Compaction writes the next
//! snapshot first and then a fresh journal, so a crash between the two leaves a journal of an
//! older generation, which is ignored (the snapshot already holds its changes). Each line
//! holds a task's changing fields absolutely, so replaying one twice changes nothing. A last
//! line cut short by a crash (no newline, or not JSON) is ignored and dropped at the next
//! compaction: it is a change that was never acknowledged, and losing it is safe.
//!
//! A task is recorded `succeeded` only after its output is in its task directory, so anything
//! a crash loses is a task that is simply run again; a recorded success is never re-run.
//! A manifest of format 1 (one pretty `manifest.json`, no journal) is read as a snapshot with
//! no journal, and the next session's first compaction rewrites it as format 2.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::sweep::Grid;
use crate::task::{StageObject, TaskOutcome, TaskSpec, TaskStatus};
use crate::{Error, Result};

/// File name of the manifest's snapshot inside the run directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the manifest's journal inside the run directory.
pub const JOURNAL_FILE: &str = "manifest.journal";
/// Bumped when the manifest's meaning changes incompatibly. Format 2 added the journal (an
/// orchestrator that reads only `manifest.json` would miss its changes, so it must refuse).
pub const FORMAT: u32 = 2;
/// The formats this orchestrator reads: format 1 is a snapshot without a journal.
const READABLE_FORMATS: [u32; 2] = [1, 2];

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
    /// Process id of the orchestrator that last worked on this run (for `status`).
    pub orchestrator_pid: Option<u32>,
    /// A sweep's grid as last given; `tasks` holds one task per distinct input x setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Grid>,
    /// Tasks of settings an earlier command of this sweep had and the last one dropped: kept,
    /// so that giving the setting again finds its result instead of running it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<TaskRecord>,
    /// The snapshot's generation: the journal whose first line names it extends this
    /// snapshot (0 for format 1, which has no journal).
    #[serde(default)]
    pub journal: u64,
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

    /// Reads a run's manifest: the snapshot, then the journal's changes since it.
    ///
    /// Takes no lock: while another orchestrator works on the run this is a recent state,
    /// never a torn one. Should that orchestrator compact between the two reads (the journal
    /// is then newer than the snapshot read), the snapshot is read again.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let path = Self::path(run_dir);
        for _ in 0..5 {
            let mut manifest = Self::load_snapshot(&path)?;
            if replay_journal(&mut manifest, run_dir)? != Replay::Newer {
                return Ok(manifest);
            }
        }
        Err(Error::Manifest {
            path,
            reason: "it keeps changing while being read (another orchestrator is compacting \
                     it); try again"
                .into(),
        })
    }

    fn load_snapshot(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let manifest: Self = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !READABLE_FORMATS.contains(&manifest.format) {
            return Err(Error::Manifest {
                path: path.to_path_buf(),
                reason: format!(
                    "format {} is not supported by this orchestrator (it reads {READABLE_FORMATS:?})",
                    manifest.format
                ),
            });
        }
        Ok(manifest)
    }

    /// Tasks by id, for lookups.
    pub fn task_index(&self) -> BTreeMap<String, usize> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task_id.clone(), i))
            .collect()
    }

    /// [`Manifest::task_index`] in about a tenth of the memory (a run holds it for as long as
    /// its tasks run: at 100,000 tasks the map of id strings alone was about 10 MB).
    pub fn compact_task_index(&self) -> TaskIndex {
        TaskIndex::from_tasks(&self.tasks)
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

/// Task positions by id. The ids this version derives are 16 lowercase hex digits, which
/// map one to one onto a `u64`; any other id (an older manifest's) is kept as a string.
#[derive(Debug, Default)]
pub struct TaskIndex {
    hex: std::collections::HashMap<u64, usize>,
    other: BTreeMap<String, usize>,
}

impl TaskIndex {
    /// The index of `tasks`, by position.
    pub fn from_tasks(tasks: &[TaskRecord]) -> Self {
        let mut index = Self::default();
        for (i, t) in tasks.iter().enumerate() {
            match Self::key(&t.task_id) {
                Some(key) => {
                    index.hex.insert(key, i);
                }
                None => {
                    index.other.insert(t.task_id.clone(), i);
                }
            }
        }
        index
    }

    /// The position of task `id`.
    pub fn get(&self, id: &str) -> Option<usize> {
        match Self::key(id) {
            Some(key) => self.hex.get(&key).copied(),
            None => self.other.get(id).copied(),
        }
    }

    /// `id` as a number when it is exactly 16 lowercase hex digits (so no two ids share one).
    fn key(id: &str) -> Option<u64> {
        let hex = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| u64::from_str_radix(id, 16).ok()).flatten()
    }
}

/// The first line of a journal: the snapshot generation it extends.
#[derive(Debug, Serialize, Deserialize)]
struct JournalHeader {
    journal: u64,
}

/// One journal line: a task's changing fields after a change, as absolute values.
#[derive(Debug, Serialize, Deserialize)]
struct TaskChange<'a> {
    id: std::borrow::Cow<'a, str>,
    state: TaskState,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wall_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    requeues: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> TaskChange<'a> {
    fn of(t: &'a TaskRecord) -> Self {
        Self {
            id: t.task_id.as_str().into(),
            state: t.state,
            attempts: t.attempts,
            exit_code: t.exit_code,
            wall_seconds: t.wall_seconds,
            failure: t.failure.as_deref().map(Into::into),
            requeues: t.requeues,
        }
    }

    fn apply(self, t: &mut TaskRecord) {
        t.state = self.state;
        t.attempts = self.attempts;
        t.exit_code = self.exit_code;
        t.wall_seconds = self.wall_seconds;
        t.failure = self.failure.map(std::borrow::Cow::into_owned);
        t.requeues = self.requeues;
    }
}

/// What [`replay_journal`] found.
#[derive(Debug, PartialEq, Eq)]
enum Replay {
    /// No journal, or one of an older generation (its changes are in the snapshot).
    Nothing,
    /// The journal's changes were applied.
    Applied,
    /// The journal is newer than the snapshot read: a compaction happened in between.
    Newer,
}

/// Applies the run's journal to `manifest`, its snapshot; see the module docs.
fn replay_journal(manifest: &mut Manifest, run_dir: &Path) -> Result<Replay> {
    let path = run_dir.join(JOURNAL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::Nothing),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    // Only newline-terminated lines are complete; what follows the last newline was cut
    // short by a crash.
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&[][..], |end| &bytes[..end]);
    let mut lines = complete.split(|&b| b == b'\n');
    let Some(header) = lines
        .next()
        .and_then(|l| serde_json::from_slice::<JournalHeader>(l).ok())
    else {
        // A journal is created whole with its header (temp file, rename), so a journal
        // without one is not ours to trust; its changes are lost, which is safe.
        tracing::warn!("{}: no header; ignored", path.display());
        return Ok(Replay::Nothing);
    };
    if header.journal < manifest.journal {
        return Ok(Replay::Nothing);
    }
    if header.journal > manifest.journal {
        return Ok(Replay::Newer);
    }
    let index: HashMap<&str, usize> = manifest
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task_id.as_str(), i))
        .collect();
    let mut updates = Vec::new();
    for (n, line) in lines.enumerate() {
        let Ok(change) = serde_json::from_slice::<TaskChange<'_>>(line) else {
            // Lines are written in order, so nothing after a damaged one can be trusted to
            // be newer than what it lost; stop, as at a torn end.
            tracing::warn!(
                "{}: line {} is damaged; it and the lines after it are ignored",
                path.display(),
                n + 2
            );
            break;
        };
        if let Some(&i) = index.get(change.id.as_ref()) {
            updates.push((i, change));
        }
    }
    drop(index);
    for (i, change) in updates {
        change.apply(&mut manifest.tasks[i]);
    }
    Ok(Replay::Applied)
}

/// Runs blocking file work that borrows from its caller: on a multi-thread runtime the worker
/// hands its other tasks to the other workers first (`block_in_place`); on a current-thread
/// runtime (tests) it simply runs.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Journal bytes below which a session never compacts in the middle of a run.
const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// The manifest's journal while a session runs: task changes are appended as lines and
/// made durable in batches; see the module docs.
#[derive(Debug)]
pub struct Journal {
    run_dir: PathBuf,
    file: Arc<std::fs::File>,
    /// Lines recorded since the last [`Journal::flush`].
    pending: Vec<u8>,
    /// Bytes in the journal file (flushed).
    written: u64,
    /// Bytes of the snapshot it extends.
    snapshot_bytes: u64,
}

impl Journal {
    /// Compacts: writes `manifest` as the next snapshot, then a fresh journal for it, and
    /// returns that journal ready for appending.
    pub async fn compact(manifest: &mut Manifest, run_dir: &Path) -> Result<Self> {
        manifest.format = FORMAT;
        manifest.journal += 1;
        let m: &Manifest = manifest;
        blocking(|| Self::write_generation(run_dir, m))
    }

    /// The file work of [`Journal::compact`]: the snapshot, then the journal that names it.
    /// The snapshot is serialized straight into its file (at 100,000 tasks it is tens of MB,
    /// which would otherwise be held in memory beside the manifest).
    fn write_generation(run_dir: &Path, manifest: &Manifest) -> Result<Self> {
        let path = Manifest::path(run_dir);
        // Compact JSON: at 100,000 inputs pretty printing alone added a third.
        crate::backend::kit::write_atomic_with(&path, |w| {
            serde_json::to_writer(w, manifest).map_err(std::io::Error::other)
        })?;
        let snapshot_bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let generation = manifest.journal;
        let journal = run_dir.join(JOURNAL_FILE);
        let io = |e| Error::io("write", &journal, e);
        fsutil::check_replaceable(&journal).map_err(io)?;
        let (tmp, mut file) = fsutil::create_temp_beside(&journal).map_err(io)?;
        let mut header = serde_json::to_vec(&JournalHeader {
            journal: generation,
        })
        .expect("header serializes");
        header.push(b'\n');
        let res = file
            .write_all(&header)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &journal))
            .and_then(|()| fsutil::sync_dir(run_dir));
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        // The handle still names the renamed file: appends go to the journal itself.
        Ok(Self {
            run_dir: run_dir.to_path_buf(),
            file: Arc::new(file),
            pending: Vec::new(),
            written: header.len() as u64,
            snapshot_bytes,
        })
    }

    /// Records `task`'s state as it is now; durable after the next [`Journal::flush`].
    pub fn record(&mut self, task: &TaskRecord) {
        serde_json::to_writer(&mut self.pending, &TaskChange::of(task))
            .expect("a change serializes");
        self.pending.push(b'\n');
    }

    /// Appends the recorded lines with one write and makes them durable.
    pub async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        let file = Arc::clone(&self.file);
        let path = self.run_dir.join(JOURNAL_FILE);
        let len = bytes.len() as u64;
        tokio::task::spawn_blocking(move || {
            (&*file)
                .write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("write", &path, e))
        })
        .await
        .expect("a journal write does not panic")?;
        self.written += len;
        Ok(())
    }

    /// Whether the journal outgrew its snapshot enough that replaying it would cost more
    /// than writing a new snapshot: compacting then keeps both the bytes written per change
    /// and the time to load bounded, whatever the run's length.
    pub fn wants_compaction(&self) -> bool {
        self.written > COMPACT_MIN_BYTES.max(2 * self.snapshot_bytes)
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
    fn the_compact_task_index_finds_every_task_and_nothing_else() {
        let mut m_tasks = Vec::new();
        for id in [
            "0123456789abcdef",
            "0123456789ABCDEF",
            "t",
            "ffffffffffffffff",
        ] {
            let mut t = record(TaskState::Pending, None);
            t.task_id = id.into();
            m_tasks.push(t);
        }
        let index = TaskIndex::from_tasks(&m_tasks);
        for (i, t) in m_tasks.iter().enumerate() {
            assert_eq!(index.get(&t.task_id), Some(i), "{}", t.task_id);
        }
        assert_eq!(index.get("0123456789abcdee"), None);
        assert_eq!(index.get("T"), None);
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

    /// A format-2 manifest of two pending tasks, `a` and `b`.
    fn two_tasks() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "format": FORMAT, "run_id": "r", "backend": "local", "input_dir": "in",
            "trainer": {"path": "t", "digest": "d", "size": 1},
            "trainer_args": [], "threads": 1, "concurrency": 1, "retries": 0,
            "timeout_seconds": null, "inputs": [], "orchestrator_pid": null,
            "tasks": [
                {"task_id": "a", "input_name": "a", "input_digest": "a", "state": "pending",
                 "attempts": 0, "exit_code": null, "wall_seconds": null, "failure": null},
                {"task_id": "b", "input_name": "b", "input_digest": "b", "state": "pending",
                 "attempts": 0, "exit_code": null, "wall_seconds": null, "failure": null}
            ]
        }))
        .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_journal_replays_onto_its_snapshot_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = two_tasks();
        runtime().block_on(async {
            let mut journal = Journal::compact(&mut m, dir.path()).await.unwrap();
            m.tasks[0].state = TaskState::Running;
            m.tasks[0].attempts = 1;
            journal.record(&m.tasks[0]);
            m.tasks[0].state = TaskState::Succeeded;
            m.tasks[0].exit_code = Some(0);
            m.tasks[0].wall_seconds = Some(0.25);
            journal.record(&m.tasks[0]);
            journal.flush().await.unwrap();
        });
        // A crash in the middle of the next append: a line without its end.
        let path = dir.path().join(JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"id":"b","state":"succeeded","attem"#);
        std::fs::write(&path, &bytes).unwrap();

        let loaded = Manifest::load(dir.path()).unwrap();
        let a = &loaded.tasks[0];
        assert_eq!(
            (a.state, a.attempts, a.exit_code, a.wall_seconds),
            (TaskState::Succeeded, 1, Some(0), Some(0.25))
        );
        assert_eq!(
            loaded.tasks[1].state,
            TaskState::Pending,
            "the torn line is not trusted"
        );
        assert_eq!(loaded.journal, 1);
        assert_eq!(loaded.format, FORMAT);

        // Compacting again drops the torn line: the snapshot has it all, the journal nothing.
        let mut again = loaded;
        runtime()
            .block_on(Journal::compact(&mut again, dir.path()))
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"journal\":2}\n");
        let reloaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(reloaded.tasks[0].state, TaskState::Succeeded);
        assert_eq!(reloaded.tasks[1].state, TaskState::Pending);
    }

    #[test]
    fn a_journal_older_than_the_snapshot_is_ignored_and_a_damaged_line_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = two_tasks();
        let rt = runtime();
        let mut journal = rt.block_on(Journal::compact(&mut m, dir.path())).unwrap();
        m.tasks[1].state = TaskState::Failed;
        m.tasks[1].exit_code = Some(1);
        journal.record(&m.tasks[1]);
        rt.block_on(journal.flush()).unwrap();
        let old_journal = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        // A compaction that wrote its snapshot and crashed before the new journal: the old
        // journal (generation 1) must not be replayed onto snapshot 2, whose task b the next
        // session set running.
        m.tasks[1].state = TaskState::Running;
        rt.block_on(Journal::compact(&mut m, dir.path())).unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), &old_journal).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.tasks[1].state, TaskState::Running);

        // In the journal of the snapshot's own generation, lines after a damaged one are not
        // applied (they cannot be trusted to be newer than what was lost).
        let mut lines = String::from("{\"journal\":2}\n");
        lines.push_str("{\"id\":\"a\",\"state\":\"running\",\"attempts\":1}\n");
        lines.push_str("garbage\n");
        lines.push_str("{\"id\":\"b\",\"state\":\"succeeded\",\"attempts\":1}\n");
        std::fs::write(dir.path().join(JOURNAL_FILE), lines).unwrap();
        let loaded = Manifest::load(dir.path()).unwrap();
        assert_eq!(loaded.tasks[0].state, TaskState::Running);
        assert_eq!(loaded.tasks[1].state, TaskState::Running);
    }

    #[test]
    fn a_format_1_manifest_reads_as_a_snapshot_without_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(two_tasks()).unwrap();
        v["format"] = 1.into();
        v.as_object_mut().unwrap().remove("journal");
        v["staged"] = serde_json::json!({"trainer": "x", "inputs": {}});
        v["tasks"][0]["state"] = "succeeded".into();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            serde_json::to_vec_pretty(&v).unwrap(),
        )
        .unwrap();
        let mut m = Manifest::load(dir.path()).unwrap();
        assert_eq!((m.format, m.journal), (1, 0));
        assert_eq!(m.tasks[0].state, TaskState::Succeeded);
        runtime()
            .block_on(Journal::compact(&mut m, dir.path()))
            .unwrap();
        let migrated = Manifest::load(dir.path()).unwrap();
        assert_eq!((migrated.format, migrated.journal), (FORMAT, 1));
        assert_eq!(migrated.tasks[0].state, TaskState::Succeeded);

        v["format"] = 9.into();
        std::fs::write(dir.path().join(MANIFEST_FILE), v.to_string()).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("format 9 is not supported"), "{err}");
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
