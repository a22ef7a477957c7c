//! The Slurm backend: one array job per batch of tasks on a Slurm cluster, driven through
//! Slurm's command-line tools, with no accounting database needed.
//!
//! Owns the staging area on the cluster's shared filesystem (`--staging-dir`):
//!
//! ```text
//! STAGING/objects/<digest>                 trainer and inputs, content-addressed, shared by runs
//! STAGING/runs/<run-id>/task.sh            the wrapper every array task runs
//! STAGING/runs/<run-id>/starts.log         one line per task start (audit: nothing ran twice)
//! STAGING/runs/<run-id>/inputs/<name>      hard links to the input objects under their own
//!                                          names, so the trainer's messages name the input
//! STAGING/runs/<run-id>/sub-<n>/           one `sbatch --array` submission:
//!     manifest.tsv, flags/<set>, timeout     which inputs (slots) each element runs, and how
//!     results/<slot>/{output.txt,stdout.txt,stderr.txt,status}   one directory per input
//!     slurm-<job>_<element>.{out,err}      the wrapper's own output
//! ```
//!
//! Packing (`--inputs-per-task`, `kit::pack`): an array element runs a pack of consecutive
//! inputs, the trainer once per input, and leaves one result directory per input. Each input
//! is still its own task: it is reported when its status file appears (the element may run
//! on), a bad input fails alone, a retry resubmits only the inputs that failed, and an element
//! Slurm requeues skips the inputs that had finished.
//!
//! Mapping to [`Backend`]: `stage` copies objects into the staging area; `execute` submits one
//! array job for all tasks (`sbatch --parsable --array=0-N%M --requeue`), polls
//! `scontrol -o show job` until every index is final, reads each exit code from the status
//! file the wrapper writes (Slurm's `ExitCode` as fallback), resubmits retryable failures as a
//! new array job, copies results into the run directory, and `scancel`s on shutdown;
//! `cleanup` cancels leftovers and deletes the run's staging directory.
//! Node failures are Slurm's to handle: `--requeue` puts the task back in the queue, and the
//! requeued run is the same attempt.
//!
//! Resume: `OUT/<run-id>/slurm.json` (see `state.rs`) records every submission before and
//! after `sbatch`. A new `execute` for the same run adopts jobs that are still queued, running
//! or finished (their status files outlive Slurm's `MinJobAge`), so a task is never run again
//! after a success; only tasks whose failure or cancel was already reported get a new attempt.

mod args;
mod commands;
mod state;

pub use args::{SlurmArgs, SlurmConfig, SlurmOptions};
use args::{is_slurm_mem, is_slurm_time};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::commands::TaskRecord;
use self::state::{Entry, Reported, RunState, Status, Submission, io_error};
use super::kit::pack;
#[cfg(test)]
use super::kit::pack::InputsPerTask;
use super::kit::store::{ObjectStore, named_input};
use super::kit::write_atomic;
use super::{Backend, OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::task::{RunContext, StagePlan, Staged, TaskEvent, TaskOutcome, TaskSpec, TaskStatus};
use crate::{Error, Result};

/// The wrapper script each array task runs (see its header).
const TASK_SCRIPT: &str = include_str!("task.sh");

/// How long `scontrol` may keep failing (controller restarting, network) before the run
/// gives up instead of waiting forever.
const CONTROLLER_PATIENCE: Duration = Duration::from_secs(120);

/// How long shutdown waits for `scancel`led tasks to leave the node.
const CANCEL_WAIT: Duration = Duration::from_secs(20);

/// Runs tasks as Slurm array jobs; see the module docs.
#[derive(Debug, Clone)]
pub struct Slurm {
    config: SlurmConfig,
}

impl Slurm {
    /// Checks the settings; touches neither the filesystem nor the cluster.
    pub fn new(mut config: SlurmConfig) -> Result<Self> {
        config.staging_dir = std::path::absolute(&config.staging_dir)
            .map_err(|e| io_error("resolve", &config.staging_dir, e))?;
        if let Some(t) = &config.time_limit
            && !is_slurm_time(t)
        {
            return Err(fail(format!(
                "--time-limit `{t}` is not a Slurm time (use minutes `30`, `H:MM:SS` or \
                 `D-HH:MM:SS`)"
            )));
        }
        if let Some(m) = &config.mem
            && !is_slurm_mem(m)
        {
            return Err(fail(format!(
                "--mem `{m}` is not a Slurm memory size (use e.g. `500M`, `2G`)"
            )));
        }
        if let Some(p) = &config.partition
            && (p.is_empty() || p.contains(|c: char| c.is_whitespace() || c == ','))
        {
            return Err(fail(format!("--partition `{p}` is not a partition name")));
        }
        if config.cpus_per_task == Some(0) {
            return Err(fail("--cpus-per-task must be at least 1".into()));
        }
        if config.poll_interval.is_zero() {
            config.poll_interval = Duration::from_secs(1);
        }
        Ok(Self { config })
    }

    /// The settings in force.
    pub fn config(&self) -> &SlurmConfig {
        &self.config
    }

    /// `STAGING/objects`, shared by every run staged there.
    fn store(&self) -> ObjectStore {
        ObjectStore::new(self.config.staging_dir.join("objects"))
    }

    /// `STAGING/runs/<run-id>`: everything of one run on the cluster side.
    fn run_stage_dir(&self, run: &RunContext) -> PathBuf {
        self.config.staging_dir.join("runs").join(&run.run_id)
    }

    /// `--time` for each array element (a pack of up to `pack_len` inputs).
    fn time_arg(&self, run: &RunContext, pack_len: usize) -> Option<String> {
        if let Some(t) = &self.config.time_limit {
            return Some(t.clone());
        }
        // The wrapper enforces the exact timeout per input; Slurm's limit (minute
        // granularity) is a backstop for a wrapper that hangs, so it leaves room for the
        // wrapper's kill grace after every input of the pack.
        run.timeout
            .map(|t| {
                ((t.as_secs() + 5) * pack_len.max(1) as u64)
                    .div_ceil(60)
                    .max(1)
                    + 1
            })
            .map(|m| m.to_string())
    }

    /// Submits `batch` as one or more array jobs, in packs of inputs (`--inputs-per-task`) of
    /// at most `max_array` elements each, records them in `state` and starts tracking their
    /// tasks (one [`Tracked`] per input, whatever its pack).
    async fn submit(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        batch: Vec<(TaskSpec, u32)>,
        tracked: &mut Tracking,
    ) -> Result<()> {
        let mut named = Vec::with_capacity(batch.len());
        let mut sizes = Vec::with_capacity(batch.len());
        for (spec, _) in &batch {
            let input = ctx.staged.inputs.get(&spec.input_digest).ok_or_else(|| {
                fail(format!(
                    "input {} of task {} was not staged",
                    spec.input_digest, spec.task_id
                ))
            })?;
            sizes.push(std::fs::metadata(input).map_or(0, |m| m.len()));
            // The trainer's messages name the file it is given: give it the input's name
            // (a hard link in the run's staging directory, beside the objects).
            let link = named_input(&ctx.stage_dir, Path::new(input), &spec.input_name);
            named.push(path_string(&link));
        }
        let packs = pack::plan(
            &sizes,
            self.config.inputs_per_task,
            &pack::TrainerRate::MEASURED,
            ctx.run.concurrency.max(1),
        );
        for chunk in packs.chunks(ctx.max_array.max(1)) {
            let range = chunk[0].start..chunk[chunk.len() - 1].end;
            let starts: Vec<u32> = chunk
                .iter()
                .map(|p| (p.start - range.start) as u32)
                .collect();
            self.submit_one(
                ctx,
                state,
                &batch[range.clone()],
                &named[range],
                starts,
                tracked,
            )
            .await?;
        }
        Ok(())
    }

    /// One `sbatch --array` for `tasks`, whose element `e` runs the slots from `starts[e]`.
    async fn submit_one(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        tasks: &[(TaskSpec, u32)],
        named: &[String],
        starts: Vec<u32>,
        tracked: &mut Tracking,
    ) -> Result<()> {
        let seq = state.submissions.len() as u32;
        let dir = ctx.stage_dir.join(format!("sub-{seq}"));
        let job_name = format!("orch-{}-{seq}", job_name_part(&ctx.run.run_id));
        let mut sub = Submission {
            seq,
            job_name: job_name.clone(),
            job_id: None,
            dir: dir.clone(),
            tasks: tasks
                .iter()
                .map(|(spec, attempt)| Entry {
                    task_id: spec.task_id.clone(),
                    attempt: *attempt,
                })
                .collect(),
            // One input per element is recorded as before packing.
            packs: if starts.len() == tasks.len() {
                Vec::new()
            } else {
                starts
            },
        };
        let elements: Vec<u32> = (0..tasks.len() as u32).map(|i| sub.element_of(i)).collect();
        let files: Vec<(&TaskSpec, &str)> = tasks
            .iter()
            .zip(named)
            .map(|((spec, _), path)| (spec, path.as_str()))
            .collect();
        let timeout_secs = ctx.run.timeout.map_or(0, |t| t.as_secs().max(1));
        state::write_submission_files(&dir, &ctx.staged.trainer, &files, &elements, timeout_secs)?;
        let n_elements = elements.last().map_or(0, |&e| e as usize + 1);
        let longest = (0..n_elements as u32)
            .map(|e| sub.pack_len(e))
            .max()
            .unwrap_or(1);

        // Recorded before sbatch: if the orchestrator dies right after submitting, resume
        // finds the job by name instead of submitting its tasks again.
        state.submissions.push(sub.clone());
        state.save(&ctx.run.run_dir)?;

        let args = self.sbatch_args(ctx, &dir, &job_name, n_elements, longest);
        let job_id = self.sbatch(ctx, state, &args).await?;
        tracing::info!(
            "slurm: submitted array job {job_id} ({} tasks in {n_elements} elements) from {}",
            tasks.len(),
            dir.display()
        );
        sub.job_id = Some(job_id.clone());
        state.submissions[seq as usize].job_id = Some(job_id);
        state.save(&ctx.run.run_dir)?;
        for (slot, (spec, attempt)) in tasks.iter().enumerate() {
            tracked.insert(
                (seq as usize, elements[slot], slot as u32),
                Tracked {
                    spec: spec.clone(),
                    sub: seq as usize,
                    idx: slot as u32,
                    elem: elements[slot],
                    packed: sub.pack_len(elements[slot]) > 1,
                    attempt: *attempt,
                    started: false,
                    requeues: 0,
                },
            );
        }
        Ok(())
    }

    /// Runs `sbatch` for the submission just recorded last in `state`; forgets it again
    /// when `sbatch` fails, so nothing is adopted that never reached Slurm.
    async fn sbatch(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        args: &[OsString],
    ) -> Result<String> {
        let job_id = match commands::run("sbatch", args).await {
            Ok(out) => commands::parse_sbatch_id(&out).ok_or_else(|| {
                fail(format!(
                    "unexpected `sbatch --parsable` output: {}",
                    out.trim()
                ))
            }),
            Err(e) => Err(e),
        };
        if job_id.is_err() {
            state.submissions.pop();
            state.save(&ctx.run.run_dir)?;
        }
        job_id
    }

    fn sbatch_args(
        &self,
        ctx: &ExecCtx<'_>,
        dir: &Path,
        job_name: &str,
        n: usize,
        longest_pack: usize,
    ) -> Vec<OsString> {
        let mut array = format!("--array=0-{}", n - 1);
        if ctx.run.concurrency > 0 && ctx.run.concurrency < n {
            array.push_str(&format!("%{}", ctx.run.concurrency));
        }
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            array.into(),
            format!("--job-name={job_name}").into(),
            // Let Slurm put a task whose node died back in the queue.
            "--requeue".into(),
            "--chdir".into(),
            dir.into(),
            "--output".into(),
            dir.join("slurm-%A_%a.out").into(),
            "--error".into(),
            dir.join("slurm-%A_%a.err").into(),
        ];
        if let Some(p) = &self.config.partition {
            args.push(format!("--partition={p}").into());
        }
        if let Some(t) = self.time_arg(ctx.run, longest_pack) {
            args.push(format!("--time={t}").into());
        }
        if let Some(c) = self.config.cpus_per_task {
            args.push(format!("--cpus-per-task={c}").into());
        }
        if let Some(m) = &self.config.mem {
            args.push(format!("--mem={m}").into());
        }
        args.push(ctx.stage_dir.join("task.sh").into());
        args.push(dir.into());
        args
    }

    /// Looks up, by job name, a submission whose `sbatch` answer was never recorded.
    async fn recover_job_id(&self, sub: &Submission) -> Result<Option<String>> {
        let out = commands::run(
            "squeue",
            &[
                "-h".into(),
                "-t".into(),
                "all".into(),
                "--name".into(),
                sub.job_name.clone().into(),
                "-o".into(),
                "%F".into(),
            ],
        )
        .await?;
        Ok(out
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned))
    }

    /// `scancel`s every job of `subs` (an already-finished job is not an error).
    async fn cancel_jobs<'a>(&self, subs: impl IntoIterator<Item = &'a Submission>) {
        for sub in subs {
            if let Some(id) = &sub.job_id
                && let Err(e) = commands::run("scancel", &[id.into()]).await
            {
                tracing::warn!("slurm: scancel {id}: {e}");
            }
        }
    }
}

/// What `execute` shares with its helpers.
struct ExecCtx<'a> {
    run: &'a RunContext,
    staged: &'a Staged,
    stage_dir: PathBuf,
    max_array: usize,
}

/// Sends task events to the core, with attempt numbers counted the core's way.
///
/// The core adds the attempts a backend reports in one `execute` call to those it recorded in
/// earlier sessions. This backend numbers attempts across sessions (an adopted job keeps its
/// number), so it reports each number minus what the core had recorded when this session
/// began ([`TaskSpec::prior_attempts`]: exactly what the core has; this backend's own record,
/// [`RunState::reported`], can be one event ahead of the core's after a `kill -9`).
///
/// Events are held until [`Reporter::flush`] has saved the state that records them, so that
/// after a crash this backend never believes the core knows less than it does.
struct Reporter<'a> {
    events: &'a mpsc::UnboundedSender<TaskEvent>,
    base: BTreeMap<String, u32>,
    held: std::sync::Mutex<Vec<TaskEvent>>,
}

impl Reporter<'_> {
    fn relative(&self, task_id: &str, attempt: u32) -> u32 {
        attempt.saturating_sub(self.base.get(task_id).copied().unwrap_or(0))
    }

    fn started(&self, state: &mut RunState, task_id: &str, attempt: u32) {
        state.reported.insert(
            task_id.to_owned(),
            Reported {
                attempt,
                finished: false,
                settled: false,
            },
        );
        self.hold(TaskEvent::Started {
            task_id: task_id.to_owned(),
            attempt: self.relative(task_id, attempt),
        });
    }

    fn finished(&self, state: &mut RunState, mut outcome: TaskOutcome) {
        state.reported.insert(
            outcome.task_id.clone(),
            Reported {
                attempt: outcome.attempts,
                finished: true,
                settled: outcome.status == TaskStatus::Succeeded || outcome.exit_code == Some(1),
            },
        );
        outcome.attempts = self.relative(&outcome.task_id, outcome.attempts);
        self.hold(TaskEvent::Finished(outcome));
    }

    fn hold(&self, event: TaskEvent) {
        self.held.lock().expect("not poisoned").push(event);
    }

    /// Journals the changes of `state` behind the held events, then sends them. The files
    /// collected for them are made durable first, with one `syncfs` for all of them (see
    /// [`place`]); the journal is appended and synced once for the whole poll, so a poll's
    /// cost does not grow with the run's earlier reports.
    fn flush(&self, state: &RunState, run_dir: &Path) -> Result<()> {
        let held = std::mem::take(&mut *self.held.lock().expect("not poisoned"));
        if held.is_empty() {
            return Ok(());
        }
        sync_filesystem(run_dir)?;
        state.append_reported(
            run_dir,
            held.iter().map(|event| match event {
                TaskEvent::Started { task_id, .. } => task_id.as_str(),
                TaskEvent::Finished(outcome) => outcome.task_id.as_str(),
            }),
        )?;
        for event in held {
            let _ = self.events.send(event);
        }
        Ok(())
    }
}

/// Where a tracked task runs: (submission, array element, slot). Ordered so that a poll
/// visits an element's inputs in the order its wrapper runs them.
type SlotKey = (usize, u32, u32);

/// The tasks this `execute` call is watching, by where they run.
type Tracking = BTreeMap<SlotKey, Tracked>;

/// A task this `execute` call is watching.
#[derive(Debug, Clone)]
struct Tracked {
    spec: TaskSpec,
    /// Index into [`RunState::submissions`].
    sub: usize,
    /// Slot within that submission: its files are in `results/<idx>`.
    idx: u32,
    /// The array element (Slurm's index) whose pack runs this slot.
    elem: u32,
    /// That element runs other inputs too: the task's own files, not Slurm's record of the
    /// element, say when it started and ended.
    packed: bool,
    attempt: u32,
    /// A `Started` event was sent for this attempt.
    started: bool,
    /// Slurm's `Restarts` for this attempt as last seen (node-failure requeues).
    requeues: u32,
}

/// How Slurm saw an attempt end, when it has.
#[derive(Debug)]
enum SlurmEnd<'a> {
    /// A final state in `scontrol`.
    Record(&'a TaskRecord),
    /// The job is known but this index is gone (a pending element removed by `scancel`).
    Vanished,
    /// The controller no longer knows the job (older than `MinJobAge`, or state lost).
    UnknownJob,
}

/// The verdict on one ended attempt.
#[derive(Debug, PartialEq)]
struct Verdict {
    status: TaskStatus,
    exit_code: Option<i32>,
    failure: Option<String>,
    retryable: bool,
}

/// Decides how an attempt ended, from the wrapper's status file first and Slurm second.
///
/// Trainer exit 1 means bad input or parameters and is never retried; a task cancelled in
/// Slurm is reported cancelled; everything else (exit 2, signals, node failures, time limits,
/// lost records) may be transient and is retried while attempts remain.
fn judge(
    status: Option<Status>,
    end: &SlurmEnd<'_>,
    output_exists: bool,
    started: bool,
) -> Verdict {
    let v = Verdict::new;
    if let Some(s) = status {
        return from_status(&s, output_exists);
    }
    match end {
        SlurmEnd::Record(r) => from_record(r),
        SlurmEnd::Vanished if !started => v(
            TaskStatus::Cancelled,
            None,
            Some("removed from Slurm's queue before it started (scancel)".into()),
            false,
        ),
        SlurmEnd::Vanished => v(
            TaskStatus::Failed,
            None,
            Some("the task disappeared from Slurm's queue without a result".into()),
            true,
        ),
        SlurmEnd::UnknownJob => v(
            TaskStatus::Failed,
            None,
            Some("Slurm no longer knows the job and the task left no result".into()),
            true,
        ),
    }
}

impl Verdict {
    fn new(
        status: TaskStatus,
        exit_code: Option<i32>,
        failure: Option<String>,
        retryable: bool,
    ) -> Self {
        Self {
            status,
            exit_code,
            failure,
            retryable,
        }
    }
}

/// The verdict from the wrapper's status file: the trainer's own exit.
fn from_status(s: &Status, output_exists: bool) -> Verdict {
    let v = Verdict::new;
    match s.exit {
        _ if s.timed_out => v(
            TaskStatus::TimedOut,
            None,
            Some("attempt exceeded the timeout and was killed".into()),
            true,
        ),
        0 if output_exists => v(TaskStatus::Succeeded, Some(0), None, false),
        0 => v(
            TaskStatus::Failed,
            Some(0),
            Some(format!("trainer exited 0 but wrote no {OUTPUT_FILE}")),
            true,
        ),
        1 => v(TaskStatus::Failed, Some(1), None, false),
        code => v(TaskStatus::Failed, Some(code), None, true),
    }
}

/// The verdict from Slurm's final state of an element that left no status file.
fn from_record(r: &TaskRecord) -> Verdict {
    let v = Verdict::new;
    match (r.state.as_str(), r.exit) {
        ("CANCELLED", _) => v(
            TaskStatus::Cancelled,
            None,
            Some("cancelled in Slurm (scancel)".into()),
            false,
        ),
        ("TIMEOUT", _) => v(
            TaskStatus::TimedOut,
            None,
            Some("Slurm's time limit (--time-limit) was reached".into()),
            true,
        ),
        ("FAILED", Some((0, sig))) if sig != 0 => v(
            TaskStatus::Failed,
            None,
            Some(format!("task killed by signal {sig} (Reason={})", r.reason)),
            true,
        ),
        ("FAILED", Some((code, _))) => v(
            TaskStatus::Failed,
            Some(code),
            Some(format!(
                "the task wrapper failed before the trainer finished (exit {code}); see \
                 its stderr"
            )),
            true,
        ),
        (state, _) => v(
            TaskStatus::Failed,
            None,
            Some(format!(
                "Slurm ended the task as {state} (Reason={}) without a result",
                r.reason
            )),
            true,
        ),
    }
}

impl Backend for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    async fn stage(&self, _run: &RunContext, plan: &StagePlan) -> Result<Staged> {
        self.store().stage_async(plan, "slurm").await
    }

    async fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let ctx = self.prepare(run, staged).await?;
        let mut state = RunState::load(&run.run_dir)?;
        let reporter = Reporter {
            events: &events,
            base: tasks
                .iter()
                .map(|t| (t.task_id.clone(), t.prior_attempts))
                .collect(),
            held: std::sync::Mutex::new(Vec::new()),
        };
        let (mut tracked, mut fresh) = sort_tasks(&state, tasks);
        self.adopt(&ctx, &mut state, &mut tracked, &mut fresh)
            .await?;
        self.submit(&ctx, &mut state, fresh, &mut tracked).await?;

        let mut last_contact = Instant::now();
        while !tracked.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => {
                    return self.shut_down(&ctx, &mut state, &mut tracked, &reporter).await;
                }
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
            let retry = self
                .poll(&ctx, &mut state, &mut tracked, &reporter, &mut last_contact)
                .await?;
            reporter.flush(&state, &run.run_dir)?;
            if !retry.is_empty() {
                self.submit(&ctx, &mut state, retry, &mut tracked).await?;
            }
        }
        Ok(())
    }

    fn staged_locations(&self, _run: &RunContext, plan: &StagePlan) -> Staged {
        self.store().locations(plan)
    }

    /// What an array task runs (through `task.sh`): `TRAINER INPUT OUTPUT FLAGS...`, with the
    /// output in the submission's results directory (submission and index are chosen when
    /// the array job is submitted, hence the placeholders).
    fn task_command(&self, run: &RunContext, staged: &Staged, task: &TaskSpec) -> Vec<String> {
        // `submit` links the staged object here, under the input's own name.
        let input = path_string(
            &self
                .run_stage_dir(run)
                .join("inputs")
                .join(&task.input_name),
        );
        let output = self
            .run_stage_dir(run)
            .join("sub-N/results/INDEX")
            .join(OUTPUT_FILE);
        let mut argv = vec![staged.trainer.clone(), input, path_string(&output)];
        argv.extend(task.trainer_args.iter().cloned());
        argv
    }

    /// The CPUs of the partition (`sinfo %C` total), so that the default concurrency fills
    /// the cluster with one-thread tasks; 1 when `sinfo` cannot tell. With `--cpus-per-task`,
    /// pass the trainer a matching `-- --threads N`.
    fn worker_cores(&self) -> usize {
        let mut cmd = std::process::Command::new("sinfo");
        cmd.args(["-h", "-o", "%C"]);
        if let Some(p) = &self.config.partition {
            cmd.args(["-p", p]);
        }
        cmd.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| commands::parse_total_cpus(&String::from_utf8_lossy(&o.stdout)))
            .filter(|&n| n > 0)
            .unwrap_or(1)
    }

    /// Cancels the run's jobs that are still queued or running and deletes its staging
    /// directory. Staged objects stay: other runs may share them (they are content-addressed);
    /// delete `STAGING/objects` to reclaim the space when no run is active.
    async fn cleanup(&self, run: &RunContext) -> Result<()> {
        let state = RunState::load(&run.run_dir)?;
        self.cancel_jobs(&state.submissions).await;
        let dir = self.run_stage_dir(run);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &dir, e)),
        }
    }
}

impl Slurm {
    /// Settles adopted tasks whose submission never got a job id: finds the job by name, or
    /// moves the tasks back to `fresh` when it never reached Slurm.
    async fn adopt(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        tracked: &mut Tracking,
        fresh: &mut Vec<(TaskSpec, u32)>,
    ) -> Result<()> {
        let orphaned: Vec<usize> = tracked_submissions(tracked)
            .into_iter()
            .filter(|&sub| state.submissions[sub].job_id.is_none())
            .collect();
        for sub in orphaned {
            match self.recover_job_id(&state.submissions[sub]).await? {
                Some(id) => {
                    tracing::info!("slurm: found unrecorded job {id} by name");
                    state.submissions[sub].job_id = Some(id);
                    state.save(&ctx.run.run_dir)?;
                }
                None => {
                    let keys: Vec<SlotKey> = submission_range(tracked, sub)
                        .map(|(&key, _)| key)
                        .collect();
                    for key in keys {
                        let t = tracked.remove(&key).expect("tracked slot");
                        // An attempt the core already counted (cancelled by our shutdown)
                        // is over; the next one gets the next number.
                        let reported = state.reported.get(&t.spec.task_id).map_or(0, |r| r.attempt);
                        let attempt = if reported >= t.attempt {
                            t.attempt + 1
                        } else {
                            t.attempt
                        };
                        fresh.push((t.spec, attempt));
                    }
                }
            }
        }
        Ok(())
    }

    /// `scontrol -o show job` for one submission; `None` when Slurm no longer knows the job.
    async fn show_job(&self, sub: &Submission) -> Result<Option<BTreeMap<u32, TaskRecord>>> {
        let Some(id) = &sub.job_id else {
            return Ok(None);
        };
        match commands::run(
            "scontrol",
            &["-o".into(), "show".into(), "job".into(), id.into()],
        )
        .await
        {
            Ok(out) => Ok(Some(commands::parse_show_job(&out))),
            Err(Error::Backend { source, .. })
                if source
                    .downcast_ref::<commands::CommandFailed>()
                    .is_some_and(commands::CommandFailed::is_unknown_job) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Handles an ended attempt: the retry to submit, or the final outcome (files collected,
    /// `Finished` sent).
    fn finish(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        t: Tracked,
        end: &SlurmEnd<'_>,
        reporter: &Reporter<'_>,
    ) -> Result<Option<(TaskSpec, u32)>> {
        let results = results_dir(&state.submissions[t.sub], t.idx);
        let status = Status::read(&results.join("status"));
        let started = t.started
            || if t.packed {
                results.join(STDOUT_FILE).exists()
            } else {
                matches!(end, SlurmEnd::Record(r) if r.has_started())
            };
        let verdict = judge(status, end, results.join(OUTPUT_FILE).is_file(), started);
        // Each session has the run's retry budget, as with the other backends.
        if verdict.retryable
            && reporter.relative(&t.spec.task_id, t.attempt).max(1) <= ctx.run.retries
        {
            tracing::info!(
                "slurm: task {} attempt {} failed ({}); resubmitting",
                t.spec.task_id,
                t.attempt,
                verdict.failure.as_deref().unwrap_or("non-zero exit")
            );
            return Ok(Some((t.spec, t.attempt + 1)));
        }
        let wall_seconds = status.map(|s| s.wall).unwrap_or_else(|| match end {
            SlurmEnd::Record(r) => r.run_seconds.unwrap_or(0.0),
            _ => 0.0,
        });
        self.report(ctx, state, t, verdict, wall_seconds, reporter)?;
        Ok(None)
    }

    /// Ctrl-C: `scancel` everything still tracked, wait briefly for Slurm to stop it, then
    /// report what finished anyway, and report started tasks as cancelled. Tasks that never
    /// started get no event, so the core keeps them pending for a resume.
    async fn shut_down(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        tracked: &mut Tracking,
        reporter: &Reporter<'_>,
    ) -> Result<()> {
        let subs = tracked_submissions(tracked);
        let to_cancel: Vec<Submission> =
            subs.iter().map(|&s| state.submissions[s].clone()).collect();
        self.cancel_jobs(&to_cancel).await;
        let deadline = Instant::now() + CANCEL_WAIT;
        let mut last: BTreeMap<usize, Option<BTreeMap<u32, TaskRecord>>> = BTreeMap::new();
        loop {
            let mut busy = false;
            for &sub in &subs {
                let records = self.show_job(&state.submissions[sub]).await.unwrap_or(None);
                busy |= records.as_ref().is_some_and(|r| {
                    r.values()
                        .any(|rec| rec.has_started() && !rec.is_terminal())
                });
                last.insert(sub, records);
            }
            if !busy || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for t in std::mem::take(tracked).into_values() {
            let results = results_dir(&state.submissions[t.sub], t.idx);
            let record = last
                .get(&t.sub)
                .and_then(|r| r.as_ref())
                .and_then(|r| r.get(&t.elem));
            // In a pack, only the inputs the wrapper reached have started; the others stay
            // pending for a resume, as tasks of an element that never started do.
            let started = t.started
                || if t.packed {
                    results.join(STDOUT_FILE).exists()
                } else {
                    record.is_some_and(TaskRecord::has_started)
                };
            if let Some(status) = Status::read(&results.join("status")) {
                // Finished before the cancel reached it: a real result, reported as such.
                let verdict = judge(
                    Some(status),
                    &SlurmEnd::UnknownJob,
                    results.join(OUTPUT_FILE).is_file(),
                    true,
                );
                self.report(ctx, state, t, verdict, status.wall, reporter)?;
            } else if started {
                let verdict = Verdict {
                    status: TaskStatus::Cancelled,
                    exit_code: None,
                    failure: Some("cancelled by shutdown (scancel)".into()),
                    retryable: false,
                };
                let wall = record.and_then(|r| r.run_seconds).unwrap_or(0.0);
                self.report(ctx, state, t, verdict, wall, reporter)?;
            } else {
                tracing::debug!(
                    "slurm: task {} never started; left pending for resume",
                    t.spec.task_id
                );
            }
        }
        // A later resume must submit the cancelled tasks again rather than adopt them.
        for sub in subs {
            state.submissions[sub].job_id = None;
            state.submissions[sub].job_name.push_str("-cancelled");
        }
        state.save(&ctx.run.run_dir)?;
        reporter.flush(state, &ctx.run.run_dir)
    }

    /// Collects a task's files and reports its final outcome.
    fn report(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        t: Tracked,
        verdict: Verdict,
        wall_seconds: f64,
        reporter: &Reporter<'_>,
    ) -> Result<()> {
        let sub = &state.submissions[t.sub];
        let results = results_dir(sub, t.idx);
        collect(ctx, sub, t.elem, &results, &t.spec.task_id)?;
        if !t.started {
            reporter.started(state, &t.spec.task_id, t.attempt);
        }
        reporter.finished(
            state,
            TaskOutcome {
                task_id: t.spec.task_id,
                status: verdict.status,
                exit_code: verdict.exit_code,
                attempts: t.attempt,
                wall_seconds,
                failure: verdict.failure,
                requeues: t.requeues,
            },
        );
        Ok(())
    }
}

/// The tasks of one `execute` call: adopted from an earlier session's submissions (`tracked`),
/// or to submit now with their attempt numbers (`fresh`).
fn sort_tasks(state: &RunState, tasks: Vec<TaskSpec>) -> (Tracking, Vec<(TaskSpec, u32)>) {
    let mut tracked = Tracking::new();
    let mut fresh: Vec<(TaskSpec, u32)> = Vec::new();
    let latest = state.latest_slots();
    for spec in tasks {
        // Never submitted by an earlier orchestrator: a first attempt.
        let Some(&(sub, idx)) = latest.get(spec.task_id.as_str()) else {
            fresh.push((spec, 1));
            continue;
        };
        let attempt = state.submissions[sub].tasks[idx as usize].attempt;
        let elem = state.submissions[sub].element_of(idx);
        let packed = state.submissions[sub].pack_len(elem) > 1;
        // Its outcome was reported and the core still wants it (a retryable failure, a
        // timeout, a cancel): that is a request for a new attempt.
        if state
            .reported
            .get(&spec.task_id)
            .is_some_and(|r| r.finished && !r.settled && r.attempt >= attempt)
        {
            fresh.push((spec, attempt + 1));
            continue;
        }
        // Submitted by an earlier, interrupted orchestrator: adopt the job.
        tracked.insert(
            (sub, elem, idx),
            Tracked {
                spec,
                sub,
                idx,
                elem,
                packed,
                attempt,
                started: false,
                requeues: 0,
            },
        );
    }
    (tracked, fresh)
}

impl Slurm {
    /// Writes the run's wrapper script and reads the cluster's array size limit.
    async fn prepare<'a>(&self, run: &'a RunContext, staged: &'a Staged) -> Result<ExecCtx<'a>> {
        let stage_dir = self.run_stage_dir(run);
        std::fs::create_dir_all(&stage_dir).map_err(|e| io_error("create", &stage_dir, e))?;
        std::fs::create_dir_all(&run.run_dir).map_err(|e| io_error("create", &run.run_dir, e))?;
        let script = stage_dir.join("task.sh");
        write_atomic(&script, TASK_SCRIPT.as_bytes())?;
        set_mode(&script, 0o755)?;

        let config = commands::run("scontrol", &["show".into(), "config".into()]).await?;
        // Slurm's default MaxArraySize is 1001 (indices 0..=1000).
        let max_array = commands::parse_max_array_size(&config)
            .unwrap_or(1001)
            .saturating_sub(1)
            .max(1);
        Ok(ExecCtx {
            run,
            staged,
            stage_dir,
            max_array,
        })
    }

    /// One poll of every submission with tracked tasks: starts reported, ended attempts
    /// settled. Returns the retries to submit. A controller that stops answering is waited
    /// for up to [`CONTROLLER_PATIENCE`] since `last_contact`.
    async fn poll(
        &self,
        ctx: &ExecCtx<'_>,
        state: &mut RunState,
        tracked: &mut Tracking,
        reporter: &Reporter<'_>,
        last_contact: &mut Instant,
    ) -> Result<Vec<(TaskSpec, u32)>> {
        let mut retry = Vec::new();
        for sub in tracked_submissions(tracked) {
            let records = match self.show_job(&state.submissions[sub]).await {
                Ok(r) => {
                    *last_contact = Instant::now();
                    r
                }
                Err(e) if last_contact.elapsed() < CONTROLLER_PATIENCE => {
                    tracing::warn!("slurm: {e}; retrying");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut next = tracked.range((sub, 0, 0)..).next().map(|(&k, _)| k);
            while let Some((s, elem, _)) = next.filter(|k| k.0 == sub) {
                for key in element_ends(tracked, (s, elem), records.as_ref(), state, reporter) {
                    let t = tracked.remove(&key).expect("tracked slot");
                    let end = slurm_end(records.as_ref(), elem);
                    if let Some(again) = self.finish(ctx, state, t, &end, reporter)? {
                        retry.push(again);
                    }
                }
                next = tracked.range((sub, elem + 1, 0)..).next().map(|(&k, _)| k);
            }
        }
        Ok(retry)
    }
}

/// Where the wrapper leaves slot `slot`'s files.
fn results_dir(sub: &Submission, slot: u32) -> PathBuf {
    sub.dir.join("results").join(slot.to_string())
}

/// Flushes the filesystem holding `dir` (the run directory): what [`place`] linked there.
#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| io_error("open", dir, e))?;
    rustix::fs::syncfs(&d).map_err(|e| io_error("sync", dir, e.into()))
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(dir: &Path) -> Result<()> {
    super::kit::sync_dir(dir)
}

/// The submissions that still have tracked tasks, each once, in order (a lookup per
/// submission, not a pass over every tracked task).
fn tracked_submissions(tracked: &Tracking) -> Vec<usize> {
    let mut subs = Vec::new();
    let mut next = tracked.keys().next().map(|k| k.0);
    while let Some(sub) = next {
        subs.push(sub);
        next = tracked.range((sub + 1, 0, 0)..).next().map(|(k, _)| k.0);
    }
    subs
}

/// The tracked tasks of submission `sub`, in slot order.
fn submission_range(
    tracked: &Tracking,
    sub: usize,
) -> std::collections::btree_map::Range<'_, SlotKey, Tracked> {
    tracked.range((sub, 0, 0)..(sub + 1, 0, 0))
}

/// How Slurm saw element `elem` end, for a task whose attempt ended.
fn slurm_end(records: Option<&BTreeMap<u32, TaskRecord>>, elem: u32) -> SlurmEnd<'_> {
    match records {
        None => SlurmEnd::UnknownJob,
        Some(records) => records
            .get(&elem)
            .map_or(SlurmEnd::Vanished, SlurmEnd::Record),
    }
}

/// The tracked tasks of one array element whose attempts ended, in slot order; reports the
/// starts it sees on the way.
///
/// An element that Slurm still holds (pending, or running one input) costs nothing per input
/// it has not reached: its wrapper runs its inputs in slot order, each to its status file,
/// so the inputs are read in that order up to the first without a status (which has started
/// when its stdout file exists) and no further. An ended element (or one Slurm no longer
/// knows) ends every task it still has.
fn element_ends(
    tracked: &mut Tracking,
    (sub, elem): (usize, u32),
    records: Option<&BTreeMap<u32, TaskRecord>>,
    state: &mut RunState,
    reporter: &Reporter<'_>,
) -> Vec<SlotKey> {
    let range = (sub, elem, 0)..=(sub, elem, u32::MAX);
    let record = records.and_then(|r| r.get(&elem));
    let restarts = record.map_or(0, |r| r.restarts);
    let Some(r) = record.filter(|r| !r.is_terminal()) else {
        return tracked
            .range_mut(range)
            .map(|(&k, t)| {
                t.requeues = t.requeues.max(restarts);
                k
            })
            .collect();
    };
    if !r.has_started() {
        return Vec::new();
    }
    let mut ended = Vec::new();
    for (&key, t) in tracked.range_mut(range) {
        t.requeues = t.requeues.max(restarts);
        if !t.packed {
            if !t.started {
                t.started = true;
                reporter.started(state, &t.spec.task_id, t.attempt);
            }
            continue;
        }
        let results = results_dir(&state.submissions[t.sub], t.idx);
        if Status::read(&results.join("status")).is_some() {
            ended.push(key);
            continue;
        }
        if !t.started && results.join(STDOUT_FILE).exists() {
            t.started = true;
            reporter.started(state, &t.spec.task_id, t.attempt);
        }
        break;
    }
    ended
}

/// Copies an attempt's output, stdout and stderr into `run.task_dir(task_id)`.
///
/// A file the attempt did not produce is removed from the task directory, so nothing from an
/// older attempt is mistaken for this one's. When the wrapper never got to capture the
/// trainer's stderr, the wrapper's own stderr (Slurm's `--error` file) stands in for it.
fn collect(
    ctx: &ExecCtx<'_>,
    sub: &Submission,
    elem: u32,
    results: &Path,
    task_id: &str,
) -> Result<()> {
    let task_dir = ctx.run.task_dir(task_id);
    std::fs::create_dir_all(&task_dir).map_err(|e| io_error("create", &task_dir, e))?;
    for name in [OUTPUT_FILE, STDOUT_FILE, STDERR_FILE] {
        let mut src = results.join(name);
        if name == STDERR_FILE
            && !src.is_file()
            && let Some(job) = &sub.job_id
        {
            src = sub.dir.join(format!("slurm-{job}_{elem}.err"));
        }
        let dest = task_dir.join(name);
        if src.is_file() {
            place(&src, &dest)?;
        } else {
            match std::fs::remove_file(&dest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("remove", &dest, e)),
            }
        }
    }
    Ok(())
}

/// Puts `src` at `dest`: a hard link renamed over `dest` when both are on one filesystem (no
/// copy, and no fsync per file: [`Reporter::flush`] syncs the filesystem once per poll before
/// the outcomes are reported), else a copy written atomically.
fn place(src: &Path, dest: &Path) -> Result<()> {
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dest.with_file_name(format!(".{name}.collect-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_ok() {
        return std::fs::rename(&tmp, dest).map_err(|e| io_error("rename", &tmp, e));
    }
    let bytes = std::fs::read(src).map_err(|e| io_error("read", src, e))?;
    write_atomic(dest, &bytes)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_error("chmod", path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The run id as it may appear in a job name (Slurm shows names in fixed-width columns;
/// keep them to safe characters).
fn job_name_part(run_id: &str) -> String {
    run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn fail(message: String) -> Error {
    Error::backend("slurm", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, exit: (i32, i32), restarts: u32) -> TaskRecord {
        TaskRecord {
            state: state.into(),
            reason: "None".into(),
            exit: Some(exit),
            restarts,
            run_seconds: Some(1.0),
            batch_host: Some("localhost".into()),
        }
    }

    fn status(exit: i32, timed_out: bool) -> Option<Status> {
        Some(Status {
            exit,
            timed_out,
            wall: 0.5,
        })
    }

    #[test]
    fn status_file_decides_first() {
        let done = record("COMPLETED", (0, 0), 0);
        let end = SlurmEnd::Record(&done);
        assert_eq!(
            judge(status(0, false), &end, true, true).status,
            TaskStatus::Succeeded
        );
        let no_output = judge(status(0, false), &end, false, true);
        assert_eq!(
            (no_output.status, no_output.retryable),
            (TaskStatus::Failed, true)
        );
        let bad_input = judge(status(1, false), &end, false, true);
        assert_eq!(
            (bad_input.status, bad_input.exit_code, bad_input.retryable),
            (TaskStatus::Failed, Some(1), false)
        );
        let io = judge(status(2, false), &end, false, true);
        assert_eq!((io.exit_code, io.retryable), (Some(2), true));
        let slow = judge(status(124, true), &end, false, true);
        assert_eq!((slow.status, slow.retryable), (TaskStatus::TimedOut, true));
        // A result written just before a cancel arrived still counts.
        let cancelled = record("CANCELLED", (0, 15), 0);
        assert_eq!(
            judge(status(0, false), &SlurmEnd::Record(&cancelled), true, true).status,
            TaskStatus::Succeeded
        );
    }

    #[test]
    fn slurm_state_decides_without_status_file() {
        let cancelled = record("CANCELLED", (0, 15), 0);
        let v = judge(None, &SlurmEnd::Record(&cancelled), false, true);
        assert_eq!((v.status, v.retryable), (TaskStatus::Cancelled, false));
        let timeout = record("TIMEOUT", (0, 15), 0);
        assert_eq!(
            judge(None, &SlurmEnd::Record(&timeout), false, true).status,
            TaskStatus::TimedOut
        );
        let killed = record("FAILED", (0, 9), 0);
        let v = judge(None, &SlurmEnd::Record(&killed), false, true);
        assert_eq!((v.exit_code, v.retryable), (None, true));
        let wrapper = record("FAILED", (3, 0), 0);
        assert_eq!(
            judge(None, &SlurmEnd::Record(&wrapper), false, true).exit_code,
            Some(3)
        );
        let node = record("NODE_FAIL", (0, 0), 0);
        let v = judge(None, &SlurmEnd::Record(&node), false, true);
        assert!(v.failure.unwrap().contains("NODE_FAIL"));
        assert!(v.retryable);
    }

    #[test]
    fn vanished_and_unknown_jobs() {
        let v = judge(None, &SlurmEnd::Vanished, false, false);
        assert_eq!((v.status, v.retryable), (TaskStatus::Cancelled, false));
        let v = judge(None, &SlurmEnd::Vanished, false, true);
        assert_eq!((v.status, v.retryable), (TaskStatus::Failed, true));
        let v = judge(None, &SlurmEnd::UnknownJob, false, false);
        assert_eq!((v.status, v.retryable), (TaskStatus::Failed, true));
        // The status file outlives Slurm's record (MinJobAge): still a success.
        assert_eq!(
            judge(status(0, false), &SlurmEnd::UnknownJob, true, false).status,
            TaskStatus::Succeeded
        );
    }

    fn config(dir: &Path) -> SlurmConfig {
        SlurmConfig {
            staging_dir: dir.to_path_buf(),
            partition: None,
            time_limit: None,
            cpus_per_task: None,
            mem: None,
            poll_interval: Duration::from_millis(500),
            inputs_per_task: InputsPerTask::Fixed(1),
        }
    }

    #[test]
    fn options_are_checked() {
        let dir = Path::new("/tmp/x");
        assert!(Slurm::new(config(dir)).is_ok());
        for t in ["30", "1:00:00", "2-00:00:00", "2-12", "UNLIMITED"] {
            let c = SlurmConfig {
                time_limit: Some(t.into()),
                ..config(dir)
            };
            assert!(Slurm::new(c).is_ok(), "{t}");
        }
        for t in ["", "1h", "1:2:3:4", "-5"] {
            let c = SlurmConfig {
                time_limit: Some(t.into()),
                ..config(dir)
            };
            assert!(Slurm::new(c).is_err(), "{t}");
        }
        for (m, ok) in [("2G", true), ("500", true), ("1GB", false), ("G", false)] {
            let c = SlurmConfig {
                mem: Some(m.into()),
                ..config(dir)
            };
            assert_eq!(Slurm::new(c).is_ok(), ok, "{m}");
        }
        let c = SlurmConfig {
            partition: Some("a b".into()),
            ..config(dir)
        };
        assert!(Slurm::new(c).is_err());
        let c = SlurmConfig {
            cpus_per_task: Some(0),
            ..config(dir)
        };
        assert!(Slurm::new(c).is_err());
        let relative = Slurm::new(config(Path::new("rel"))).unwrap();
        assert!(relative.config().staging_dir.is_absolute());
    }

    fn run_ctx(dir: &Path, timeout: Option<Duration>, concurrency: usize) -> RunContext {
        RunContext {
            run_id: "r1".into(),
            run_dir: dir.join("out/r1"),
            retries: 1,
            timeout,
            concurrency,
        }
    }

    #[test]
    fn sbatch_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let slurm = Slurm::new(SlurmConfig {
            partition: Some("debug".into()),
            cpus_per_task: Some(2),
            mem: Some("1G".into()),
            ..config(dir.path())
        })
        .unwrap();
        let run = run_ctx(dir.path(), Some(Duration::from_secs(90)), 2);
        let staged = Staged::default();
        let ctx = ExecCtx {
            run: &run,
            staged: &staged,
            stage_dir: slurm.run_stage_dir(&run),
            max_array: 1000,
        };
        let sub = ctx.stage_dir.join("sub-0");
        let args: Vec<String> = slurm
            .sbatch_args(&ctx, &sub, "orch-r1-0", 5, 1)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            &args[..4],
            [
                "--parsable",
                "--array=0-4%2",
                "--job-name=orch-r1-0",
                "--requeue"
            ]
        );
        for want in [
            "--partition=debug",
            "--time=3",
            "--cpus-per-task=2",
            "--mem=1G",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert!(args[args.len() - 2].ends_with("runs/r1/task.sh"));
        assert!(args[args.len() - 1].ends_with("runs/r1/sub-0"));
        // No cap when everything may run at once; no --time without a timeout.
        let run = run_ctx(dir.path(), None, 8);
        let ctx = ExecCtx { run: &run, ..ctx };
        let args: Vec<String> = slurm
            .sbatch_args(&ctx, &sub, "orch-r1-0", 5, 1)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(args[1], "--array=0-4");
        assert!(!args.iter().any(|a| a.starts_with("--time")));
    }

    #[tokio::test]
    async fn staging_is_content_addressed_and_copies_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.csv");
        std::fs::write(&src, "a,b\n1,2\n").unwrap();
        let object = crate::input::hash_file(&src).unwrap();
        let digest = object.digest.clone();
        let slurm = Slurm::new(config(&dir.path().join("staging"))).unwrap();
        let plan = StagePlan {
            trainer: object.clone(),
            inputs: vec![object],
        };
        let run = run_ctx(dir.path(), None, 1);
        let staged = slurm.stage(&run, &plan).await.unwrap();
        let staged_input = PathBuf::from(&staged.inputs[&digest]);
        assert_eq!(
            staged_input,
            dir.path().join("staging/objects").join(&digest)
        );
        assert_eq!(std::fs::read(&staged_input).unwrap(), b"a,b\n1,2\n");
        let before = std::fs::metadata(&staged_input)
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        slurm.stage(&run, &plan).await.unwrap();
        let after = std::fs::metadata(&staged_input)
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            before, after,
            "an object already staged is not copied again"
        );
    }

    /// An input rewritten (same size) between planning and staging used to be copied without
    /// hashing and trained under the old digest; a same-size object with other bytes was
    /// reused forever. Both now go through the store's verification.
    #[tokio::test]
    async fn staging_verifies_digests_and_never_reuses_a_same_size_impostor() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.csv");
        std::fs::write(&src, "a,b\n1,2\n").unwrap();
        let object = crate::input::hash_file(&src).unwrap();
        let slurm = Slurm::new(config(&dir.path().join("staging"))).unwrap();
        let plan = StagePlan {
            trainer: object.clone(),
            inputs: vec![object.clone()],
        };
        let run = run_ctx(dir.path(), None, 1);

        std::fs::write(&src, "a,b\n6,6\n").unwrap();
        let err = slurm.stage(&run, &plan).await.unwrap_err();
        assert!(matches!(err, Error::Input { .. }), "{err}");

        // A poisoned object of the right size sits in the store; the true file is back.
        let objects = dir.path().join("staging/objects");
        std::fs::create_dir_all(&objects).unwrap();
        std::fs::write(objects.join(&object.digest), "a,b\n6,6\n").unwrap();
        std::fs::write(&src, "a,b\n1,2\n").unwrap();
        let staged = slurm.stage(&run, &plan).await.unwrap();
        assert_eq!(
            std::fs::read(&staged.inputs[&object.digest]).unwrap(),
            b"a,b\n1,2\n"
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let table: toml::Table =
            toml::from_str("partition = \"file\"\nmem = \"1G\"\npoll_interval = \"2s\"").unwrap();
        let flags = SlurmOptions {
            partition: Some("flag".into()),
            ..SlurmOptions::default()
        };
        let c = SlurmConfig::from_options(flags, Some(&table), Path::new("/o")).unwrap();
        assert_eq!(c.partition.as_deref(), Some("flag"));
        assert_eq!(c.mem.as_deref(), Some("1G"));
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.staging_dir, Path::new("/o/slurm-staging"));
        assert_eq!(c.inputs_per_task, InputsPerTask::Auto);
        let packed: toml::Table = toml::from_str("inputs_per_task = 50").unwrap();
        let c = SlurmConfig::from_options(SlurmOptions::default(), Some(&packed), Path::new("/o"))
            .unwrap();
        assert_eq!(c.inputs_per_task, InputsPerTask::Fixed(50));
        let flags = SlurmOptions {
            inputs_per_task: Some("auto".into()),
            ..SlurmOptions::default()
        };
        let c = SlurmConfig::from_options(flags, Some(&packed), Path::new("/o")).unwrap();
        assert_eq!(c.inputs_per_task, InputsPerTask::Auto);
        let zero: toml::Table = toml::from_str("inputs_per_task = 0").unwrap();
        let err = SlurmConfig::from_options(SlurmOptions::default(), Some(&zero), Path::new("/o"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("from 1 to 1000"), "{err}");
        let bad: toml::Table = toml::from_str("partiton = \"typo\"").unwrap();
        let err = SlurmConfig::from_options(SlurmOptions::default(), Some(&bad), Path::new("/o"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("partiton"), "{err}");
    }

    #[test]
    fn job_names_are_sanitised() {
        assert_eq!(job_name_part("2026-11-28_abc"), "2026-11-28_abc");
        assert_eq!(job_name_part("a b/c"), "a_b_c");
    }
}
