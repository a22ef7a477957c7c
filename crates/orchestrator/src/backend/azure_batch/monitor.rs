//! Watching a job: `taskcounts` decides when to look closer, a paged `$select`-ed task list
//! gives each task's state and the final verdict, and finished tasks' files are collected.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{ApiError, BatchClient, Call, next_call, parse_rfc3339};
use super::job;
use super::model::{
    AllocationState, JobState, JobView, Page, TASK_SELECT, TaskCounts, TaskCountsResult,
    TaskExecutionInfo, TaskExecutionResult, TaskState, TaskView,
};
use super::pool::{self, PoolHealth};
use super::storage::Storage;
use super::tasks::BAD_INPUT_FILE;
use crate::backend::kit::redact::redact;
use crate::backend::{OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::task::{RunContext, TaskEvent, TaskOutcome, TaskStatus};

/// Consecutive polls with every node of the pool broken before the run is stopped.
const BROKEN_POLLS_FATAL: u32 = 3;

/// How the watch ended.
#[derive(Debug)]
pub(crate) enum WatchEnd {
    /// Every task reached a final state and was reported.
    AllDone,
    /// `shutdown` fired first.
    Cancelled,
    /// The pool can never run the tasks (quota, allocation): the message says what to do.
    PoolFatal(String),
    /// The job ended (completed, terminated, deleted) before every task ran; the tasks that
    /// never ran were reported `not_run` with its reason.
    JobEnded,
}

/// The inputs of each pack being watched (packs of one are not listed: their Batch task id is
/// the core's task id).
#[derive(Debug, Default)]
pub(crate) struct Members {
    packs: HashMap<String, Vec<String>>,
}

impl Members {
    /// The packs of several inputs among `packs`, without the inputs refused before submission.
    pub(crate) fn of(packs: &[super::packs::Pack], refused: &[(String, String)]) -> Self {
        let refused: HashSet<&str> = refused.iter().map(|(id, _)| id.as_str()).collect();
        Self {
            packs: packs
                .iter()
                .filter(|p| !p.is_single())
                .map(|p| {
                    let m = p.members.iter().filter(|m| !refused.contains(m.as_str()));
                    (p.id.clone(), m.cloned().collect())
                })
                .collect(),
        }
    }

    /// The core's task ids that Batch task `id` stands for.
    pub(crate) fn of_task<'a>(&'a self, id: &'a str) -> Vec<&'a str> {
        match self.packs.get(id) {
            Some(m) => m.iter().map(String::as_str).collect(),
            None => vec![id],
        }
    }

    fn pack(&self, id: &str) -> Option<&[String]> {
        self.packs.get(id).map(Vec::as_slice)
    }
}

/// What the watcher needs.
pub(crate) struct Watch<'a> {
    pub(crate) client: &'a BatchClient,
    pub(crate) storage: &'a Storage,
    pub(crate) run: &'a RunContext,
    pub(crate) job_id: &'a str,
    /// The pool to watch (known up front for a named pool; learned from the job for an auto-pool).
    pub(crate) pool_id: Option<String>,
    pub(crate) poll: Duration,
    pub(crate) stall_warning: Duration,
    pub(crate) timeout: Option<Duration>,
    /// How long Batch may not answer before the watch gives up: the job's own cap.
    pub(crate) outage_limit: Duration,
    /// The inputs of the packs among the watched tasks.
    pub(crate) members: &'a Members,
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    started: u32,
    done: bool,
}

/// Attempts for one call of the watch: it polls again anyway, and rides out longer outages
/// itself (see [`Outage`]).
const WATCH_CALL_ATTEMPTS: u32 = 3;

/// How far each incremental task listing reaches back before the previous one began.
const LIST_OVERLAP: Duration = Duration::from_secs(10);

/// How often a long outage is logged again.
const OUTAGE_LOG_EVERY: Duration = Duration::from_secs(60);

/// A failed poll: transient ones (no answer, throttling, server errors) pause the watch.
struct PollError {
    message: String,
    transient: bool,
}

impl From<ApiError> for PollError {
    fn from(e: ApiError) -> Self {
        Self {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

impl From<String> for PollError {
    fn from(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

/// What the watch keeps between polls.
struct WatchState {
    seen: HashMap<String, Seen>,
    remaining: usize,
    last_counts: Option<TaskCounts>,
    polls_since_list: u32,
    /// Lists after the first ask only for tasks whose state changed since this (`$filter`
    /// on `stateTransitionTime`, in the service's clock).
    changed_since: Option<std::time::SystemTime>,
    pool_id: Option<String>,
    last_warning: String,
    broken_polls: u32,
    started: Instant,
    last_node_seen: Instant,
}

/// Follows the job until every task in `ours` is final, sending events as tasks move.
///
/// Batch not answering (network, DNS, throttling, 5xx) pauses the watch: the job keeps running
/// on Batch, and the watch resumes when Batch answers again, for as long as the job may run
/// (`outage_limit`). The job is never given up on because of such an error.
pub(crate) async fn watch(
    w: Watch<'_>,
    ours: HashSet<String>,
    events: &mpsc::UnboundedSender<TaskEvent>,
    shutdown: &CancellationToken,
) -> Result<WatchEnd, String> {
    let mut st = WatchState {
        remaining: ours.len(),
        seen: ours.into_iter().map(|id| (id, Seen::default())).collect(),
        last_counts: None,
        polls_since_list: u32::MAX,
        changed_since: None,
        pool_id: w.pool_id.clone(),
        last_warning: String::new(),
        broken_polls: 0,
        started: Instant::now(),
        last_node_seen: Instant::now(),
    };
    let mut outage: Option<Outage> = None;
    let mut first_poll = true;
    while st.remaining > 0 {
        if !first_poll {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(WatchEnd::Cancelled),
                () = tokio::time::sleep(w.poll) => {}
            }
        }
        first_poll = false;
        let polled = poll(&w, &mut st, events).await;
        if polled.is_ok()
            && let Some(o) = outage.take()
        {
            o.ended();
        }
        match polled {
            Ok(Some(end)) => return Ok(end),
            Ok(None) => {}
            Err(e) if e.transient => match &mut outage {
                Some(o) => o.goes_on(&w, &e.message)?,
                None => outage = Some(Outage::begin(&w, &e.message)),
            },
            Err(e) => return Err(e.message),
        }
    }
    Ok(WatchEnd::AllDone)
}

/// Batch not answering, seen from the watch.
struct Outage {
    since: Instant,
    last_log: Instant,
}

impl Outage {
    fn begin(w: &Watch<'_>, error: &str) -> Self {
        tracing::warn!(
            job = %w.job_id,
            "Azure Batch does not answer ({error}); the watch is paused and resumes when it \
             answers (the job keeps running on Batch; the watch waits up to {:?}, the job's cap)",
            w.outage_limit
        );
        Self {
            since: Instant::now(),
            last_log: Instant::now(),
        }
    }

    /// Still no answer: an error once the outage outlasted the job's own cap.
    fn goes_on(&mut self, w: &Watch<'_>, error: &str) -> Result<(), String> {
        let down = self.since.elapsed();
        if down >= w.outage_limit {
            return Err(format!(
                "Azure Batch has not answered for {:.0} s, longer than the job may run ({:?}): {error}",
                down.as_secs_f64(),
                w.outage_limit
            ));
        }
        if self.last_log.elapsed() >= OUTAGE_LOG_EVERY {
            tracing::warn!(
                job = %w.job_id,
                "Azure Batch still does not answer after {:.0} s ({error}); still waiting",
                down.as_secs_f64()
            );
            self.last_log = Instant::now();
        }
        Ok(())
    }

    fn ended(self) {
        tracing::info!(
            "Azure Batch answers again after {:.0} s; the watch resumes",
            self.since.elapsed().as_secs_f64()
        );
    }
}

/// One poll: the job's state, the task counts, the task list when something changed, and the
/// pool watchdog while nothing runs. `Some` when the watch is over.
async fn poll(
    w: &Watch<'_>,
    st: &mut WatchState,
    events: &mpsc::UnboundedSender<TaskEvent>,
) -> Result<Option<WatchEnd>, PollError> {
    // The job first: a job seen completed has every task in its final state, so the list read
    // after it is the last word (tasks still active in a completed job never run).
    let job = read_job(w).await?;
    let ended = match &job {
        None => Some(format!("job `{}` was deleted", w.job_id)),
        Some(j) if j.state == JobState::Completed => Some(job_end_reason(j)),
        Some(_) => None,
    };
    if st.pool_id.is_none() {
        st.pool_id = job
            .as_ref()
            .and_then(|j| j.execution_info.as_ref())
            .and_then(|e| e.pool_id.clone());
    }
    let counts = match &ended {
        Some(_) => None,
        None => {
            let c: TaskCountsResult = w
                .client
                .send_json(
                    &Call::get(format!("/jobs/{}/taskcounts", w.job_id))
                        .attempts(WATCH_CALL_ATTEMPTS),
                )
                .await?;
            tracing::debug!(counts = ?c.task_counts, "task counts");
            Some(c.task_counts)
        }
    };
    // The counts may lag the truth, so they only decide *when* to list; every tenth poll
    // lists anyway so a stale count can never stall the run.
    st.polls_since_list = st.polls_since_list.saturating_add(1);
    let list =
        job.is_some() && (ended.is_some() || counts != st.last_counts || st.polls_since_list >= 10);
    if list {
        let (finished, listed_at) = scan(w, &mut st.seen, st.changed_since, events).await?;
        // Overlap the next listing by a margin: pages are read one after the other, and the
        // service's Date has whole seconds. Tasks seen again change nothing.
        if let Some(t) = listed_at {
            st.changed_since = Some(t - LIST_OVERLAP);
        }
        st.remaining -= finished.min(st.remaining);
        st.last_counts = counts;
        st.polls_since_list = 0;
    }
    if let Some(reason) = ended {
        if st.remaining == 0 {
            return Ok(Some(WatchEnd::AllDone));
        }
        report_not_run(w, st, &reason, events);
        return Ok(Some(WatchEnd::JobEnded));
    }
    if counts.is_some_and(|c| c.running == 0) && st.remaining > 0 {
        return Ok(watchdog(w, st).await);
    }
    Ok(None)
}

/// The job's state and execution info; `None` when the job is gone.
async fn read_job(w: &Watch<'_>) -> Result<Option<JobView>, PollError> {
    let call = Call::get(format!("/jobs/{}", w.job_id))
        .query("$select", "id,state,executionInfo")
        .attempts(WATCH_CALL_ATTEMPTS);
    match w.client.send_json::<JobView>(&call).await {
        Ok(j) => Ok(Some(j)),
        Err(e) if e.status == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Why a completed job ended, for the tasks it never ran.
fn job_end_reason(job: &JobView) -> String {
    let info = job.execution_info.as_ref();
    if let Some(e) = info.and_then(|i| i.scheduling_error.as_ref()) {
        let text = format!(
            "job `{}` could not start: schedulingError {} {}: {}",
            job.id,
            e.category,
            e.code.as_deref().unwrap_or(""),
            e.message.as_deref().unwrap_or("")
        );
        return redact(&text);
    }
    match info.and_then(|i| i.terminate_reason.as_deref()) {
        Some(r) if r.eq_ignore_ascii_case("MaxWallClockTimeExpiry") => format!(
            "job `{}` reached its time cap (--job-timeout; terminateReason {r})",
            job.id
        ),
        Some(r) => format!("job `{}` was terminated (terminateReason {r})", job.id),
        None => format!("job `{}` completed", job.id),
    }
}

/// Reports every task of ours that never reached a final state as `not_run`.
fn report_not_run(
    w: &Watch<'_>,
    st: &mut WatchState,
    reason: &str,
    events: &mpsc::UnboundedSender<TaskEvent>,
) {
    let mut n = 0;
    for (id, s) in st.seen.iter_mut().filter(|(_, s)| !s.done) {
        s.done = true;
        for m in w.members.of_task(id) {
            n += 1;
            let _ = events.send(TaskEvent::Finished(TaskOutcome {
                task_id: m.to_owned(),
                status: TaskStatus::NotRun,
                exit_code: None,
                attempts: 0,
                wall_seconds: 0.0,
                failure: Some(format!("never ran: {reason}")),
                requeues: 0,
            }));
        }
    }
    st.remaining = 0;
    tracing::warn!(
        job = %w.job_id,
        "{reason}; {n} task(s) never ran (reported not_run; `orchestrator resume` runs them)"
    );
}

/// The pool, looked at on every poll while nothing runs: fatal resize errors, no nodes for a
/// long time, every node broken. `Some` when the run must stop.
async fn watchdog(w: &Watch<'_>, st: &mut WatchState) -> Option<WatchEnd> {
    let pid = st.pool_id.clone()?;
    let mut nodes = None;
    match pool::get_pool(w.client, &pid).await {
        Ok(p) => {
            let n = p.current_dedicated_nodes + p.current_low_priority_nodes;
            if n > 0 {
                st.last_node_seen = Instant::now();
            }
            if p.allocation_state == AllocationState::Steady {
                nodes = Some(n as usize);
            }
            match pool::classify(&p) {
                PoolHealth::Fatal(m) => return Some(WatchEnd::PoolFatal(m)),
                PoolHealth::Warn(m) if m != st.last_warning => {
                    tracing::warn!("{m}");
                    st.last_warning = m;
                }
                _ => {}
            }
            if st.last_node_seen.elapsed() >= w.stall_warning
                && st.started.elapsed() >= w.stall_warning
            {
                tracing::warn!(
                    pool = %pid,
                    "the pool has had no nodes for {:?}; check the Batch account's core quotas and the pool's allocation state",
                    w.stall_warning
                );
                st.last_node_seen = Instant::now();
            }
        }
        Err(e) => tracing::debug!("watchdog could not read pool {pid}: {e}"),
    }
    // The job preparation task failed for good on every node: Batch will run none of the
    // job's tasks there, and they would wait, active, until the job's cap.
    if let Some(n) = nodes.filter(|&n| n > 0) {
        match job::failed_preparations(w.client, w.job_id).await {
            Ok(failed) if failed.len() >= n => {
                return Some(WatchEnd::PoolFatal(format!(
                    "the job preparation task, which puts the trainer on each node, failed on \
                     every node of pool `{pid}`, so no task can run: {}; check that the nodes \
                     can read the trainer's blob (the storage account's firewall, the SAS), \
                     then run the same command again to resume",
                    failed.join(" | ")
                )));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("watchdog could not read the job preparation tasks: {e}"),
        }
    }
    let problems = pool::node_problems(w.client, &pid).await.ok()?;
    // Every node of a steady pool broken, poll after poll: nothing will ever run, so stop
    // with the nodes' own errors rather than wait for the cap.
    if !problems.is_empty() && nodes == Some(problems.len()) {
        st.broken_polls += 1;
        if st.broken_polls >= BROKEN_POLLS_FATAL {
            return Some(WatchEnd::PoolFatal(format!(
                "every node of pool `{pid}` is unusable: {}",
                problems.join(" | ")
            )));
        }
    } else {
        st.broken_polls = 0;
    }
    for p in problems {
        if p != st.last_warning {
            tracing::warn!("{p}");
            st.last_warning = p;
        }
    }
    None
}

/// Lists the job's tasks and reports what changed; returns how many of ours became final.
/// A task counts as final only once the whole list was read, so a listing that fails halfway
/// loses nothing: the next poll lists again.
async fn scan(
    w: &Watch<'_>,
    seen: &mut HashMap<String, Seen>,
    since: Option<std::time::SystemTime>,
    events: &mpsc::UnboundedSender<TaskEvent>,
) -> Result<(usize, Option<std::time::SystemTime>), PollError> {
    let mut call = Call::get(format!("/jobs/{}/tasks", w.job_id))
        .query("$select", TASK_SELECT)
        .query("maxresults", "1000")
        .attempts(WATCH_CALL_ATTEMPTS);
    if let Some(t) = since {
        // Only tasks that left `active` since `t`, as the SDKs write it (the service's
        // "efficient list queries": `stateTransitionTime gt DateTime'...'`; `ge` here, with
        // the overlap).
        call = call.query("$filter", changed_filter(t));
    }
    let mut completed = Vec::new();
    let mut listed_at = None;
    loop {
        let (page, date): (Page<TaskView>, _) = w.client.send_json_dated(&call).await?;
        listed_at = listed_at.or(date);
        for t in page.value {
            let Some(s) = seen.get_mut(&t.id) else {
                continue;
            };
            if s.done {
                continue;
            }
            let info = t.execution_info.clone().unwrap_or_default();
            // Batch counts retries (non-zero exits) and requeues (preemption) separately;
            // both are another attempt of the same task.
            let attempt = 1 + info.retry_count + info.requeue_count;
            let running = matches!(
                t.state,
                TaskState::Preparing | TaskState::Running | TaskState::Completed
            );
            if running && s.started < attempt {
                let from = s.started + 1;
                for a in from..=attempt {
                    for m in w.members.of_task(&t.id) {
                        let _ = events.send(TaskEvent::Started {
                            task_id: m.to_owned(),
                            attempt: a,
                        });
                    }
                }
                s.started = attempt;
            }
            if t.state == TaskState::Completed {
                completed.push(t);
            }
        }
        match page.next_link {
            Some(n) => call = next_call(&n)?.attempts(WATCH_CALL_ATTEMPTS),
            None => break,
        }
    }
    for t in &completed {
        if let Some(s) = seen.get_mut(&t.id) {
            s.done = true;
        }
    }
    let n = completed.len();
    collect_all(w, completed, events).await;
    Ok((n, listed_at))
}

/// `$filter` for tasks out of `active` whose state changed at or after `t`.
fn changed_filter(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "state ne 'active' and stateTransitionTime ge DateTime'{}'",
        rfc3339_seconds(secs)
    )
}

/// `2026-12-08T00:20:01.0000000Z` for seconds since the epoch (RFC 3339 with the seven
/// fraction digits .NET's "o" format writes).
fn rfc3339_seconds(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = super::client::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.0000000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Downloads every completed task's files (bounded parallelism) and sends its outcome.
async fn collect_all(
    w: &Watch<'_>,
    done: Vec<TaskView>,
    events: &mpsc::UnboundedSender<TaskEvent>,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut futs = Vec::with_capacity(done.len());
    for t in done {
        let limit = limit.clone();
        futs.push(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore open");
            let outcomes = match w.members.pack(&t.id) {
                Some(members) => collect_pack(w, &t, members).await,
                None => vec![collect_one(w, &t).await],
            };
            for outcome in outcomes {
                let _ = events.send(TaskEvent::Finished(outcome));
            }
        });
    }
    join_all(futs).await;
}

/// Runs futures concurrently on this task (they borrow `w`, so no spawning).
async fn join_all<F: std::future::Future<Output = ()>>(futs: Vec<F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// A finished single task: its files brought home, Batch's record kept beside them, and the
/// outcome judged from both.
async fn collect_one(w: &Watch<'_>, t: &TaskView) -> TaskOutcome {
    let info = t.execution_info.clone().unwrap_or_default();
    let dir = w.run.task_dir(&t.id);
    let mut notes = Vec::new();
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        notes.push(format!("cannot create {}: {e}", dir.display()));
    }
    let files = download_task_files(w, t, &dir, &mut notes).await;
    let wall_seconds = wall_seconds(&info);
    // Keep Batch's own account of the task next to its files (retries, requeues, node).
    let record = serde_json::json!({
        "taskId": t.id, "state": t.state, "executionInfo": info, "nodeInfo": t.node_info,
    });
    let _ = write_atomic(
        &dir.join("batch-task.json"),
        &serde_json::to_vec_pretty(&record).unwrap_or_default(),
    )
    .await;
    let (status, exit_code, mut failure) = judge_one(&info, files, wall_seconds, w.timeout);
    if info.requeue_count > 0 && status != TaskStatus::Succeeded {
        let f = failure.get_or_insert_with(String::new);
        f.push_str(&format!(
            " (requeued {} time(s) after node preemption)",
            info.requeue_count
        ));
    }
    if !notes.is_empty() {
        let f = failure.get_or_insert_with(String::new);
        f.push_str(&format!(" [{}]", notes.join("; ")));
    }
    TaskOutcome {
        task_id: t.id.clone(),
        status,
        exit_code,
        attempts: 1 + info.retry_count + info.requeue_count,
        wall_seconds,
        failure: failure.map(|f| f.trim().to_owned()),
        requeues: info.requeue_count,
    }
}

/// Which of a single task's marker files came back from the output container.
#[derive(Debug, Clone, Copy)]
struct TaskFiles {
    /// `output.txt`: the trainer's score.
    output: bool,
    /// The command line's marker that the trainer refused the input.
    bad_input: bool,
}

/// Downloads a single task's output, marker, stdout and stderr into `dir`; a missing stdout
/// or stderr is fetched from the node instead. A failed download is noted in `notes`.
async fn download_task_files(
    w: &Watch<'_>,
    t: &TaskView,
    dir: &Path,
    notes: &mut Vec<String>,
) -> TaskFiles {
    let mut files = TaskFiles {
        output: false,
        bad_input: false,
    };
    for name in [OUTPUT_FILE, BAD_INPUT_FILE, STDOUT_FILE, STDERR_FILE] {
        let dest = dir.join(name);
        let blob = format!("{}/{name}", t.id);
        match w.storage.download(&w.run.run_id, &blob, &dest).await {
            Ok(true) => {
                files.output |= name == OUTPUT_FILE;
                files.bad_input |= name == BAD_INPUT_FILE;
            }
            Ok(false) if name != OUTPUT_FILE && name != BAD_INPUT_FILE => {
                // The upload may have failed (its error is in failureInfo); the node may still
                // have the file while the task's retention lasts.
                if let Err(e) = task_file_fallback(w.client, w.job_id, &t.id, name, &dest).await {
                    tracing::debug!(task = %t.id, "no {name}: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => notes.push(format!("downloading {name}: {e}")),
        }
    }
    files
}

/// Seconds between a task's start and end as Batch recorded them (0 when unknown).
fn wall_seconds(info: &TaskExecutionInfo) -> f64 {
    match (
        info.start_time.as_deref().and_then(parse_rfc3339),
        info.end_time.as_deref().and_then(parse_rfc3339),
    ) {
        (Some(a), Some(b)) if b >= a => b - a,
        _ => 0.0,
    }
}

/// A single task's status, exit code and failure text, from Batch's account of it and the
/// files that came back.
fn judge_one(
    info: &TaskExecutionInfo,
    files: TaskFiles,
    wall_seconds: f64,
    timeout: Option<Duration>,
) -> (TaskStatus, Option<i32>, Option<String>) {
    let failure_text = info.failure_info.as_ref().map(|f| {
        let mut s = format!("{} {}", f.category, f.code.as_deref().unwrap_or(""));
        if let Some(m) = &f.message {
            s.push_str(": ");
            s.push_str(m);
        }
        redact(s.trim())
    });
    let timed_out = info.failure_info.as_ref().is_some_and(|f| {
        let c = format!(
            "{} {}",
            f.code.as_deref().unwrap_or(""),
            f.message.as_deref().unwrap_or("")
        )
        .to_ascii_lowercase();
        c.contains("wallclock") || c.contains("timeout") || c.contains("timed out")
    }) || (info.exit_code != Some(0)
        && timeout
            .is_some_and(|limit| wall_seconds >= limit.as_secs_f64() && limit.as_secs_f64() > 0.0));
    let succeeded = info.result == Some(TaskExecutionResult::Success)
        || (info.result.is_none() && info.exit_code == Some(0) && info.failure_info.is_none());
    let have_output = files.output;
    // The command line's marker: the trainer exited 1 (bad input), reported to Batch as 0.
    let bad_input = succeeded && files.bad_input && !have_output;
    let exit_code = if bad_input { Some(1) } else { info.exit_code };
    let status = if bad_input {
        TaskStatus::Failed
    } else if succeeded && have_output {
        TaskStatus::Succeeded
    } else if timed_out {
        TaskStatus::TimedOut
    } else {
        TaskStatus::Failed
    };
    let failure = match status {
        TaskStatus::Succeeded => None,
        _ if bad_input => {
            Some("the trainer rejected the input (exit 1, not retried); see stderr_tail".to_owned())
        }
        _ if succeeded && !have_output => Some(
            "the task succeeded but its output.txt never reached the output container".to_owned(),
        ),
        _ => failure_text,
    };
    (status, exit_code, failure)
}

/// A finished pack: its `results.txt` (one GET) split into each input's files and outcome.
async fn collect_pack(w: &Watch<'_>, t: &TaskView, members: &[String]) -> Vec<TaskOutcome> {
    let info = t.execution_info.clone().unwrap_or_default();
    let dest =
        w.run
            .run_dir
            .join("azure-packs")
            .join(format!("{}.{}", t.id, super::packs::RESULTS_FILE));
    let name = format!("{}/{}", t.id, super::packs::RESULTS_FILE);
    let (results, note) = match w.storage.download(&w.run.run_id, &name, &dest).await {
        Ok(true) => match tokio::fs::read(&dest).await {
            Ok(b) => (super::packs::parse_results(&b), None),
            Err(e) => (Vec::new(), Some(format!("reading {}: {e}", dest.display()))),
        },
        Ok(false) => (Vec::new(), None),
        Err(e) => (Vec::new(), Some(format!("downloading {name}: {e}"))),
    };
    let by_id: HashMap<&str, &super::packs::MemberResult> =
        results.iter().map(|r| (r.task_id.as_str(), r)).collect();
    let pack_wall = wall_seconds(&info);
    // The pack's own account: retries happen per input inside it, requeues to all of them.
    let record = serde_json::json!({
        "taskId": t.id, "pack": members, "state": t.state, "executionInfo": info,
        "nodeInfo": t.node_info,
    });
    let record = serde_json::to_vec_pretty(&record).unwrap_or_default();
    let pack_failure = info.failure_info.as_ref().map(|f| {
        let m = f.message.as_deref().unwrap_or("");
        redact(&format!(
            "{} {}: {m}",
            f.category,
            f.code.as_deref().unwrap_or("")
        ))
    });
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let dir = w.run.task_dir(m);
        let mut notes: Vec<String> = note.iter().cloned().collect();
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            notes.push(format!("cannot create {}: {e}", dir.display()));
        }
        let _ = write_atomic(&dir.join("batch-task.json"), &record).await;
        let mut o = match by_id.get(m.as_str()) {
            Some(r) => member_outcome(&dir, m, r, &mut notes).await,
            None => TaskOutcome {
                task_id: m.clone(),
                status: TaskStatus::Failed,
                exit_code: None,
                attempts: 0,
                wall_seconds: 0.0,
                failure: Some(match &pack_failure {
                    Some(f) => format!("its pack {} failed before running it: {f}", t.id),
                    None => format!("its pack {} ended without a result for it", t.id),
                }),
                requeues: 0,
            },
        };
        o.attempts += info.requeue_count;
        o.requeues = info.requeue_count;
        // The input's own time when the pack loop measured it, else an even share.
        o.wall_seconds = by_id
            .get(m.as_str())
            .and_then(|r| r.wall_micros)
            .map_or(pack_wall / members.len().max(1) as f64, |us| {
                us as f64 / 1e6
            });
        if !notes.is_empty() {
            let f = o.failure.get_or_insert_with(String::new);
            f.push_str(&format!(" [{}]", notes.join("; ")));
            *f = f.trim().to_owned();
        }
        out.push(o);
    }
    out
}

/// One input's record from its pack: its files written, its outcome as the trainer's exit
/// code says (0 done, 1 bad input, 124 over `--timeout`, else failed after its retries).
async fn member_outcome(
    dir: &Path,
    task_id: &str,
    r: &super::packs::MemberResult,
    notes: &mut Vec<String>,
) -> TaskOutcome {
    let mut files = vec![(STDOUT_FILE, &r.stdout), (STDERR_FILE, &r.stderr)];
    let succeeded = r.exit_code == 0 && !r.output.is_empty();
    if succeeded {
        files.push((OUTPUT_FILE, &r.output));
    }
    for (name, bytes) in files {
        if let Err(e) = write_atomic(&dir.join(name), bytes).await {
            notes.push(e);
        }
    }
    let (status, failure) = match r.exit_code {
        0 if succeeded => (TaskStatus::Succeeded, None),
        0 => (
            TaskStatus::Failed,
            Some("the trainer exited 0 but wrote no output".to_owned()),
        ),
        1 => (
            TaskStatus::Failed,
            Some(
                "the trainer rejected the input (exit 1, not retried); see stderr_tail".to_owned(),
            ),
        ),
        _ if r.timed_out() => (
            TaskStatus::TimedOut,
            Some("ran past --timeout (stopped by timeout)".to_owned()),
        ),
        c => (
            TaskStatus::Failed,
            Some(format!(
                "the trainer exited {c} after {} attempt(s)",
                r.attempts
            )),
        ),
    };
    TaskOutcome {
        task_id: task_id.to_owned(),
        status,
        exit_code: Some(r.exit_code),
        attempts: r.attempts,
        wall_seconds: 0.0,
        failure,
        requeues: 0,
    }
}

/// `GET /jobs/{job}/tasks/{task}/files/{name}`: stdout/stderr straight from the node.
async fn task_file_fallback(
    client: &BatchClient,
    job: &str,
    task: &str,
    name: &str,
    dest: &Path,
) -> Result<(), String> {
    let reply = client
        .send(&Call::get(format!("/jobs/{job}/tasks/{task}/files/{name}")))
        .await
        .map_err(|e| e.to_string())?;
    write_atomic(dest, &reply.body).await
}

/// The workspace's one atomic write (random temp name, `create_new`, synced, a non-regular
/// target refused), off the async threads.
pub(crate) async fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), String> {
    let (dest, bytes) = (dest.to_path_buf(), bytes.to_vec());
    tokio::task::spawn_blocking(move || {
        fsutil::write_atomic(&dest, &bytes).map_err(|e| format!("write {}: {e}", dest.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::super::client::{Auth, RetryPolicy};
    use super::super::testserver::{self, Answer};
    use super::*;

    #[test]
    fn the_incremental_filter_is_written_as_the_sdks_write_it() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_688_001);
        assert_eq!(
            changed_filter(t),
            "state ne 'active' and stateTransitionTime ge DateTime'2026-12-08T00:00:01.0000000Z'"
        );
    }

    #[tokio::test]
    async fn logs_come_from_the_task_files_api_when_their_upload_is_missing() {
        let server = testserver::start(|_, req| {
            let t = req.target.as_str();
            if t.starts_with("/jobs/j/tasks/t1/files/stdout.txt") {
                Answer::Reply(200, vec![], "from the node: stdout".into())
            } else if t.starts_with("/jobs/j/tasks/t1/files/stderr.txt") {
                Answer::Reply(200, vec![], "from the node: stderr".into())
            } else {
                // Neither the output nor the logs reached the container.
                Answer::Reply(
                    404,
                    vec![("x-ms-error-code", "BlobNotFound".into())],
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code><Message>no</Message></Error>".into(),
                )
            }
        })
        .await;
        let auth = Auth::SharedKey {
            account: "a".into(),
            key: b"k".to_vec(),
        };
        let client =
            BatchClient::new(&server.url, "2025-06-01", auth, RetryPolicy::default()).unwrap();
        let storage = Storage::for_tests(&format!("{}/devstoreaccount1", server.url));
        let dir = tempfile::tempdir().unwrap();
        let run = RunContext {
            run_id: "run-1".into(),
            run_dir: dir.path().to_path_buf(),
            retries: 0,
            timeout: None,
            concurrency: 1,
        };
        let w = Watch {
            client: &client,
            storage: &storage,
            run: &run,
            job_id: "j",
            pool_id: None,
            poll: Duration::from_millis(10),
            stall_warning: Duration::from_secs(60),
            timeout: None,
            outage_limit: Duration::from_secs(60),
            members: &Members::default(),
        };
        let task: TaskView = serde_json::from_str(
            r#"{"id":"t1","state":"completed","executionInfo":{"retryCount":0,"requeueCount":0,"exitCode":0,
                "result":"failure","failureInfo":{"category":"usererror","code":"FileUploadMiscError",
                "message":"upload failed"},"startTime":"2026-11-28T10:00:00Z","endTime":"2026-11-28T10:00:02.5Z"}}"#,
        )
        .unwrap();
        let outcome = collect_one(&w, &task).await;
        assert_eq!(outcome.status, TaskStatus::Failed);
        assert_eq!(outcome.exit_code, Some(0));
        assert!((outcome.wall_seconds - 2.5).abs() < 1e-9);
        assert!(
            outcome
                .failure
                .as_deref()
                .unwrap()
                .contains("FileUploadMiscError"),
            "{outcome:?}"
        );
        let task_dir = run.task_dir("t1");
        assert_eq!(
            std::fs::read_to_string(task_dir.join(STDOUT_FILE)).unwrap(),
            "from the node: stdout"
        );
        assert_eq!(
            std::fs::read_to_string(task_dir.join(STDERR_FILE)).unwrap(),
            "from the node: stderr"
        );
        assert!(!task_dir.join(OUTPUT_FILE).exists());
        assert!(task_dir.join("batch-task.json").is_file());
    }
}
