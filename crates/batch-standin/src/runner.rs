//! Runs tasks for real on this machine: the scheduler hands queued tasks to
//! free node slots, and each attempt downloads resource files, runs the
//! command line in the task's working directory with the `AZ_BATCH_*`
//! variables, enforces the wall-clock limit, retries non-zero exits up to
//! `maxTaskRetryCount`, uploads output files by their upload condition and
//! records the result. Also owns the lifecycle transitions shared with the
//! API: job completion and termination, pool allocation and deletion.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::files::{self, failure};
use crate::state::{Job, JobState, Node, Pool, State, StopReason, Task, TaskState};
use crate::timefmt;

type Reason = Arc<Mutex<Option<StopReason>>>;

/// One scheduled attempt of a task, with everything the runner needs so it
/// does not hold the state lock while working.
struct Launch {
    job_id: String,
    key: String,
    task_id: String,
    attempt: u64,
    spec: Value,
    job_env: Value,
    pool_id: String,
    node_id: String,
    dedicated: bool,
    slots: u32,
    node_root: PathBuf,
    task_dir: PathBuf,
    first_attempt: bool,
    wall_remaining: Option<Duration>,
    token: CancellationToken,
    reason: Reason,
}

enum Outcome {
    Exited(i32),
    Stopped(StopReason, Option<i32>),
    WallClock(i32),
    /// Resource files or the working directory failed: not retried.
    Preprocessing(Value),
}

pub(crate) async fn scheduler(sh: Arc<Shared>) {
    loop {
        tokio::select! {
            () = sh.shutdown.cancelled() => return,
            () = sh.wake.notified() => {}
        }
        let (launches, preps) = schedule(&sh);
        for p in preps {
            tokio::spawn(crate::starttask::run_job_prep(sh.clone(), p));
        }
        for l in launches {
            tokio::spawn(run(sh.clone(), l));
        }
    }
}

/// A job preparation task to run on a node before the job's first task there.
pub(crate) struct PrepLaunch {
    pub pool_id: String,
    pub node_id: String,
    pub job_id: String,
    pub task: Value,
}

/// Whether a node may run tasks of a job with preparation task `prep`: it succeeded there (or
/// is running, without `waitForSuccess`). A node that never ran it gets it started (`start`).
fn prep_allows(node: &mut Node, job_id: &str, prep: &Value, start: &mut bool) -> bool {
    if !prep.is_object() {
        return true;
    }
    let wait = prep["waitForSuccess"].as_bool().unwrap_or(true);
    match node.job_prep.get(job_id) {
        None => {
            node.job_prep.insert(
                job_id.to_owned(),
                crate::state::PrepRun {
                    completed: false,
                    success: false,
                    info: json!({"state": "running", "startTime": timefmt::rfc3339(OffsetDateTime::now_utc()), "retryCount": 0}),
                },
            );
            *start = true;
            !wait
        }
        // Failed for good: "Batch will not run Tasks of this Job on the Node".
        Some(r) if r.completed => r.success,
        Some(_) => !wait,
    }
}

/// Whether a pool has a node that could take a one-slot task now.
fn has_free_slot(p: &crate::state::Pool) -> bool {
    p.state == "active"
        && p.nodes
            .iter()
            .any(|n| n.failed.is_none() && !n.starting && n.used_slots < p.slots_per_node)
}

/// One scheduling pass, in queue order. It runs on every wake (each task added or finished),
/// so its cost must not grow with the queue: the pass ends as soon as no pool has a free slot
/// (the tasks behind stay queued, untouched), and a job whose task found no node is not tried
/// again in this pass for tasks needing as many slots.
fn schedule(sh: &Shared) -> (Vec<Launch>, Vec<PrepLaunch>) {
    let mut guard = sh.lock();
    let st = &mut *guard;
    let mut launches = Vec::new();
    let mut preps = Vec::new();
    let mut waiting = Vec::new();
    let mut open: std::collections::HashSet<String> = st
        .pools
        .values()
        .filter(|p| has_free_slot(p))
        .map(|p| p.id.clone())
        .collect();
    // Job id -> the fewest slots a task of it asked for and did not get this pass.
    let mut stuck: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    while !open.is_empty() && st.running < sh.config.max_concurrent_tasks {
        let Some((job_id, key)) = st.queue.pop_front() else {
            break;
        };
        let Some(j) = st.jobs.get_mut(&job_id) else {
            continue;
        };
        let Some(t) = j.tasks.get(&key) else { continue };
        // A completed job never starts its remaining active tasks (they stay active).
        if t.state != TaskState::Active || j.state == JobState::Completed {
            continue;
        }
        let slots = t.required_slots();
        let blocked = stuck.get(&job_id).is_some_and(|&s| slots >= s);
        if blocked || j.state != JobState::Active || !open.contains(&j.pool_id) {
            note_stuck(&mut stuck, &job_id, slots);
            waiting.push((job_id, key));
            continue;
        }
        if at_max_parallel(j) {
            stuck.insert(job_id.clone(), 1);
            waiting.push((job_id, key));
            continue;
        }
        let Some(pool) = st.pools.get_mut(&j.pool_id).filter(|p| p.state == "active") else {
            waiting.push((job_id, key));
            continue;
        };
        let prep = &j.spec["jobPreparationTask"];
        let pool_id = pool.id.clone();
        let node = pick_node(pool, &job_id, prep, slots, &mut preps);
        let Some(node) = node else {
            note_stuck(&mut stuck, &job_id, slots);
            waiting.push((job_id, key));
            continue;
        };
        let now = OffsetDateTime::now_utc();
        occupy(node, slots, now);
        let (node_id, dedicated) = (node.id.clone(), node.dedicated);
        let node_root = sh.node_root(&pool_id, &node_id);
        if !has_free_slot(pool) {
            open.remove(&pool_id);
        }
        st.next_attempt += 1;
        let t = j.tasks.get_mut(&key).expect("checked above");
        let at = Placement {
            pool_id,
            node_id,
            dedicated,
            slots,
            node_root,
            now,
        };
        let job_env = j.spec["commonEnvironmentSettings"].clone();
        launches.push(start_attempt(
            t,
            &job_id,
            &key,
            job_env,
            at,
            st.next_attempt,
        ));
        st.running += 1;
        st.peak_running = st.peak_running.max(st.running);
    }
    // What waited goes back in front, in its order; the rest of the queue was not touched.
    for w in waiting.into_iter().rev() {
        st.queue.push_front(w);
    }
    (launches, preps)
}

/// Whether job `j` already runs as many tasks at once as its `maxParallelTasks` allows.
fn at_max_parallel(j: &Job) -> bool {
    let max_parallel = j.spec["maxParallelTasks"].as_i64().unwrap_or(-1);
    max_parallel >= 0
        && j.tasks
            .values()
            .filter(|t| matches!(t.state, TaskState::Preparing | TaskState::Running))
            .count() as i64
            >= max_parallel
}

/// A task needing `slots` starts on `node` at `now`.
fn occupy(node: &mut Node, slots: u32, now: OffsetDateTime) {
    node.used_slots += slots;
    node.running_tasks += 1;
    node.total_run += 1;
    node.state_time = now;
}

/// Remembers that a task of `job_id` needing `slots` did not start this pass.
fn note_stuck(stuck: &mut std::collections::HashMap<String, u32>, job_id: &str, slots: u32) {
    let fewest = stuck.get(job_id).map_or(slots, |&s| slots.min(s));
    stuck.insert(job_id.to_owned(), fewest);
}

/// The node of `pool` a task of `job_id` needing `slots` starts on: usable, with room, and past
/// the job's preparation task there (a preparation task to start goes to `preps`); the fullest
/// such node under `nodeFillType: pack`, else the emptiest.
fn pick_node<'p>(
    pool: &'p mut Pool,
    job_id: &str,
    prep: &Value,
    slots: u32,
    preps: &mut Vec<PrepLaunch>,
) -> Option<&'p mut Node> {
    let per_node = pool.slots_per_node;
    let pack = pool.spec["taskSchedulingPolicy"]["nodeFillType"] == "pack";
    let pool_id = pool.id.clone();
    let mut allowed = vec![false; pool.nodes.len()];
    for (i, n) in pool.nodes.iter_mut().enumerate() {
        if n.failed.is_some() || n.starting || n.used_slots + slots > per_node {
            continue;
        }
        let mut start = false;
        allowed[i] = prep_allows(n, job_id, prep, &mut start);
        if start {
            preps.push(PrepLaunch {
                pool_id: pool_id.clone(),
                node_id: n.id.clone(),
                job_id: job_id.to_owned(),
                task: prep.clone(),
            });
        }
    }
    let candidates = pool
        .nodes
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| allowed[*i])
        .map(|(_, n)| n);
    if pack {
        candidates.max_by_key(|n| n.used_slots)
    } else {
        candidates.min_by_key(|n| n.used_slots)
    }
}

/// Where an attempt runs.
struct Placement {
    pool_id: String,
    node_id: String,
    dedicated: bool,
    slots: u32,
    node_root: PathBuf,
    now: OffsetDateTime,
}

/// Marks task `t` (queued as `key` in `job_id`) preparing at `at` as attempt `attempt`, and
/// returns what its runner needs.
fn start_attempt(
    t: &mut Task,
    job_id: &str,
    key: &str,
    job_env: Value,
    at: Placement,
    attempt: u64,
) -> Launch {
    let task_dir = at
        .node_root
        .join("workitems")
        .join(job_id)
        .join("job-1")
        .join(&t.id);
    let first_attempt = t.first_start.is_none();
    let started = *t.first_start.get_or_insert_with(Instant::now);
    let wall = t.spec["constraints"]["maxWallClockTime"]
        .as_str()
        .and_then(timefmt::parse_duration)
        .filter(|d| *d < timefmt::UNLIMITED)
        .map(|d| d.saturating_sub(started.elapsed()));
    let token = CancellationToken::new();
    let reason: Reason = Arc::new(Mutex::new(None));
    t.set_state(TaskState::Preparing);
    t.exec.start = Some(at.now);
    t.node = Some((at.pool_id.clone(), at.node_id.clone()));
    t.task_dir = Some(task_dir.clone());
    t.cancel = Some((token.clone(), reason.clone()));
    t.attempt = attempt;
    Launch {
        job_id: job_id.to_owned(),
        key: key.to_owned(),
        task_id: t.id.clone(),
        attempt,
        spec: t.spec.clone(),
        job_env,
        pool_id: at.pool_id,
        node_id: at.node_id,
        dedicated: at.dedicated,
        slots: at.slots,
        node_root: at.node_root,
        task_dir,
        first_attempt,
        wall_remaining: wall,
        token,
        reason,
    }
}

async fn run(sh: Arc<Shared>, l: Launch) {
    let outcome = execute(&sh, &l).await;
    finish(&sh, &l, outcome).await;
}

fn stop_reason(l: &Launch) -> StopReason {
    l.reason
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or(StopReason::Terminated)
}

async fn execute(sh: &Arc<Shared>, l: &Launch) -> Outcome {
    let wd = l.task_dir.join("wd");
    if let Err(stopped) = prepare(sh, l, &wd).await {
        return stopped;
    }
    let mut child = match spawn_task(sh, l, &wd) {
        Ok(c) => c,
        Err(ended) => return ended,
    };
    let pgid = child.id();
    if let Some(p) = pgid {
        sh.lock().pgids.insert(p);
    }
    arm_preempt(sh, l);
    let wall = async {
        match l.wall_remaining {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        s = child.wait() => Outcome::Exited(s.map_or(-1, exit_code)),
        () = l.token.cancelled() => {
            kill_group(pgid);
            let code = child.wait().await.map_or(-1, exit_code);
            Outcome::Stopped(stop_reason(l), Some(code))
        }
        () = wall => {
            kill_group(pgid);
            Outcome::WallClock(child.wait().await.map_or(-1, exit_code))
        }
    };
    // Also reap anything the command left running in its process group.
    kill_group(pgid);
    if let Some(p) = pgid {
        sh.lock().pgids.remove(&p);
    }
    outcome
}

/// Before the command runs: a clean directory on a first attempt, the node's directories, the
/// resource files, and the task marked running. `Err` is how the task ended instead.
async fn prepare(sh: &Arc<Shared>, l: &Launch, wd: &Path) -> Result<(), Outcome> {
    if l.first_attempt {
        // A task id reused after its job was deleted starts from a clean directory.
        let _ = tokio::fs::remove_dir_all(&l.task_dir).await;
    }
    for d in [
        &wd.to_path_buf(),
        &l.node_root.join("shared"),
        &l.node_root.join("startup"),
    ] {
        if let Err(e) = tokio::fs::create_dir_all(d).await {
            return Err(Outcome::Preprocessing(failure(
                "servererror",
                "DiskFull",
                format!("failed to create {}: {e}", d.display()),
            )));
        }
    }
    for rf in l.spec["resourceFiles"].as_array().into_iter().flatten() {
        let sent = sh.faults.resource_file(rf);
        tokio::select! {
            r = files::download(&sh.http, wd, &sent) => match r {
                Err(f) => return Err(Outcome::Preprocessing(f)),
                Ok(()) => count_download(sh, rf),
            },
            () = l.token.cancelled() => return Err(Outcome::Stopped(stop_reason(l), None)),
        }
    }
    {
        let mut st = sh.lock();
        match current(&mut st, l) {
            Some(t) => t.set_state(TaskState::Running),
            None => return Err(Outcome::Stopped(StopReason::Terminated, None)),
        }
    }
    Ok(())
}

/// Starts the task's command line in `wd`, its output in the task's stdout.txt/stderr.txt.
/// `Err` is how the task ended instead (a command that cannot be executed exits 127).
fn spawn_task(sh: &Arc<Shared>, l: &Launch, wd: &Path) -> Result<tokio::process::Child, Outcome> {
    let command_line = l.spec["commandLine"].as_str().unwrap_or_default();
    let (stdout, stderr) = match (
        std::fs::File::create(l.task_dir.join("stdout.txt")),
        std::fs::File::create(l.task_dir.join("stderr.txt")),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Outcome::Preprocessing(failure(
                "servererror",
                "DiskFull",
                format!("failed to create stdout.txt/stderr.txt: {e}"),
            )));
        }
    };
    let argv = match files::split_command_line(command_line) {
        Ok(a) => a,
        Err(e) => {
            return Err(Outcome::Preprocessing(failure(
                "usererror",
                "CommandLineInvalid",
                format!("the command line cannot be parsed: {e}"),
            )));
        }
    };
    let mut cmd = node_command(&argv, wd, batch_env(sh, l), stdout, stderr);
    match cmd.spawn() {
        Ok(c) => Ok(c),
        Err(e) => {
            // What a node reports when the program cannot be executed: the
            // shell convention 127, with the reason in stderr.txt.
            let msg = format!("batch-standin: cannot execute {}: {e}\n", argv[0]);
            let _ = std::fs::write(l.task_dir.join("stderr.txt"), msg);
            Err(Outcome::Exited(127))
        }
    }
}

/// A `preempt` fault armed for this task: the node is preempted after its delay (requeue).
fn arm_preempt(sh: &Arc<Shared>, l: &Launch) {
    if let Some(delay) = sh.faults.take_preempt(&l.task_id) {
        let (token, reason) = (l.token.clone(), l.reason.clone());
        tracing::info!(task = %l.task_id, delay_ms = delay, "fault: preempting the node");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(StopReason::Requeue);
            token.cancel();
        });
    }
}

/// Counts a resource-file download by its URL without the query (the SAS).
pub(crate) fn count_download(sh: &Shared, rf: &Value) {
    let url = rf["httpUrl"].as_str().unwrap_or_default();
    let key = url.split('?').next().unwrap_or_default().to_owned();
    *sh.lock().downloads.entry(key).or_insert(0) += 1;
}

/// Bytes of the regular files under `dir` (0 when it is missing).
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Keeps a finished task's directory on its node for the task's `retentionTime` (counted
/// against the node's disk), after which the reaper deletes it.
fn retain(sh: &Shared, l: &Launch) {
    let bytes = dir_size(&l.task_dir);
    let keep = l.spec["constraints"]["retentionTime"]
        .as_str()
        .and_then(timefmt::parse_duration)
        .unwrap_or(Duration::from_secs(7 * 86_400));
    let mut st = sh.lock();
    forget_dirs(&mut st, std::slice::from_ref(&l.task_dir));
    if let Some(n) = st
        .pools
        .get_mut(&l.pool_id)
        .and_then(|p| p.nodes.iter_mut().find(|n| n.id == l.node_id))
    {
        n.account_disk(bytes, 0, sh.config.node_disk_bytes);
    }
    st.retained.push(crate::state::Retained {
        until: Instant::now() + keep.min(Duration::from_secs(400 * 86_400)),
        pool_id: l.pool_id.clone(),
        node_id: l.node_id.clone(),
        dir: l.task_dir.clone(),
        bytes,
    });
}

/// Stops counting `dirs` against their nodes (deleted, or about to be).
fn forget_dirs(st: &mut State, dirs: &[PathBuf]) {
    let mut gone = Vec::new();
    st.retained.retain(|r| {
        let hit = dirs.contains(&r.dir);
        if hit {
            gone.push((r.pool_id.clone(), r.node_id.clone(), r.bytes));
        }
        !hit
    });
    for (pool, node, bytes) in gone {
        if let Some(n) = st
            .pools
            .get_mut(&pool)
            .and_then(|p| p.nodes.iter_mut().find(|n| n.id == node))
        {
            n.account_disk(0, bytes, None);
        }
    }
}

/// Deletes task directories whose retention passed, once a second.
pub(crate) async fn reaper(sh: Arc<Shared>) {
    loop {
        tokio::select! {
            () = sh.shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let due: Vec<PathBuf> = {
            let mut st = sh.lock();
            let now = Instant::now();
            let due: Vec<PathBuf> = st
                .retained
                .iter()
                .filter(|r| r.until <= now)
                .map(|r| r.dir.clone())
                .collect();
            forget_dirs(&mut st, &due);
            due
        };
        for d in due {
            let _ = tokio::fs::remove_dir_all(d).await;
        }
    }
}

pub(crate) fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

pub(crate) fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// A process as the node agent starts it: argv without a shell (a relative
/// program path resolves against the working directory), a clean
/// environment with `PATH` plus `env`, its own process group.
pub(crate) fn node_command(
    argv: &[String],
    wd: &std::path::Path,
    env: Vec<(String, String)>,
    stdout: std::fs::File,
    stderr: std::fs::File,
) -> tokio::process::Command {
    let mut program = PathBuf::from(&argv[0]);
    if argv[0].contains('/') && program.is_relative() {
        program = wd.join(program);
    }
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&argv[1..])
        .current_dir(wd)
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// The `AZ_BATCH_*` variables every process on a node gets (tasks, start and job preparation
/// tasks alike): the account, the pool, the node and its directories.
pub(crate) fn node_env(
    sh: &Shared,
    pool_id: &str,
    node_id: &str,
    root: &std::path::Path,
) -> Vec<(String, String)> {
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    vec![
        (
            "AZ_BATCH_ACCOUNT_NAME".into(),
            sh.config.credentials.account_name.clone(),
        ),
        ("AZ_BATCH_ACCOUNT_URL".into(), sh.base_url.clone()),
        ("AZ_BATCH_POOL_ID".into(), pool_id.to_owned()),
        ("AZ_BATCH_NODE_ID".into(), node_id.to_owned()),
        ("AZ_BATCH_NODE_ROOT_DIR".into(), p(root)),
        ("AZ_BATCH_NODE_SHARED_DIR".into(), p(&root.join("shared"))),
        ("AZ_BATCH_NODE_STARTUP_DIR".into(), p(&root.join("startup"))),
    ]
}

/// Appends a Batch `environmentSettings` list (`[{name, value}]`) to `env`; later entries win
/// when the process starts, so callers push the settings that must win last.
pub(crate) fn push_settings(env: &mut Vec<(String, String)>, settings: &Value) {
    for e in settings.as_array().into_iter().flatten() {
        if let Some(name) = e["name"].as_str() {
            env.push((
                name.to_owned(),
                e["value"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
}

/// The node's environment: `AZ_BATCH_*`, then the job's common settings,
/// then the task's own (which win).
fn batch_env(sh: &Shared, l: &Launch) -> Vec<(String, String)> {
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut env = node_env(sh, &l.pool_id, &l.node_id, &l.node_root);
    env.extend([
        ("AZ_BATCH_NODE_IS_DEDICATED".into(), l.dedicated.to_string()),
        ("AZ_BATCH_JOB_ID".into(), l.job_id.clone()),
        ("AZ_BATCH_TASK_ID".into(), l.task_id.clone()),
        ("AZ_BATCH_TASK_DIR".into(), p(&l.task_dir)),
        (
            "AZ_BATCH_TASK_WORKING_DIR".into(),
            p(&l.task_dir.join("wd")),
        ),
        ("AZ_BATCH_TASK_USER".into(), "_azbatch".into()),
        ("AZ_BATCH_HOST_LIST".into(), String::new()),
    ]);
    push_settings(&mut env, &l.job_env);
    push_settings(&mut env, &l.spec["environmentSettings"]);
    env
}

/// The task this launch belongs to, if it is still that attempt.
fn current<'a>(st: &'a mut State, l: &Launch) -> Option<&'a mut Task> {
    st.jobs
        .get_mut(&l.job_id)?
        .tasks
        .get_mut(&l.key)
        .filter(|t| t.attempt == l.attempt)
}

/// Gives the launch's slots back; called exactly once per launch.
fn release(st: &mut State, l: &Launch, success: bool) {
    if let Some(n) = st
        .pools
        .get_mut(&l.pool_id)
        .and_then(|p| p.nodes.iter_mut().find(|n| n.id == l.node_id))
    {
        n.used_slots = n.used_slots.saturating_sub(l.slots);
        n.running_tasks = n.running_tasks.saturating_sub(1);
        n.state_time = OffsetDateTime::now_utc();
        if success {
            n.total_succeeded += 1;
        }
    }
    st.running = st.running.saturating_sub(1);
}

fn retries_left(st: &State, l: &Launch, t: &Task) -> bool {
    let job_max = st
        .jobs
        .get(&l.job_id)
        .and_then(|j| j.spec["constraints"]["maxTaskRetryCount"].as_i64());
    let max = t.spec["constraints"]["maxTaskRetryCount"]
        .as_i64()
        .or(job_max)
        .unwrap_or(0);
    max == -1 || i64::from(t.exec.retry_count) < max
}

async fn finish(sh: &Arc<Shared>, l: &Launch, outcome: Outcome) {
    // Decide retry or requeue first: those skip output uploads.
    if requeue_or_retry(sh, l, &outcome) {
        sh.wake.notify_one();
        return;
    }
    let (exit, mut fail) = exit_and_failure(&outcome);
    let mut condition = match &outcome {
        Outcome::Preprocessing(_) => ExitCondition::PreProcessing,
        _ => ExitCondition::Code(exit),
    };
    if matches!(outcome, Outcome::Exited(_) | Outcome::WallClock(_))
        && let Some(f) = upload_outputs(sh, l, exit == Some(0)).await
    {
        // An upload failure fails the task even when the process succeeded.
        if fail.is_none() {
            condition = ExitCondition::FileUpload;
        }
        fail.get_or_insert(f);
    }
    let stopped = matches!(outcome, Outcome::Stopped(..));
    retain(sh, l);
    let mut guard = sh.lock();
    let st = &mut *guard;
    let success = fail.is_none();
    release(st, l, success);
    let etag = st.etag();
    if let Some(t) = current(st, l) {
        t.exec.end = Some(OffsetDateTime::now_utc());
        t.exec.exit_code = exit;
        t.exec.result = Some(if success { "success" } else { "failure" });
        t.exec.failure = fail;
        t.set_state(TaskState::Completed);
        // nodeInfo keeps naming the node the task last ran on.
        t.cancel = None;
        t.etag = etag;
    }
    if !stopped {
        apply_job_action(sh, st, l, condition);
    }
    maybe_complete_job(sh, st, &l.job_id);
    drop(guard);
    sh.wake.notify_one();
}

/// A requeued (preempted) task, or a failed one with retries left, goes back in the queue as
/// active, before any output is uploaded. Whether it did.
fn requeue_or_retry(sh: &Arc<Shared>, l: &Launch, outcome: &Outcome) -> bool {
    let mut guard = sh.lock();
    let st = &mut *guard;
    let now = OffsetDateTime::now_utc();
    let requeue = matches!(outcome, Outcome::Stopped(StopReason::Requeue, _));
    let retry = match &outcome {
        Outcome::Exited(c) if *c != 0 => st
            .jobs
            .get(&l.job_id)
            .and_then(|j| j.tasks.get(&l.key))
            .filter(|t| t.attempt == l.attempt)
            .is_some_and(|t| retries_left(st, l, t)),
        _ => false,
    };
    if requeue || retry {
        release(st, l, false);
        let etag = st.etag();
        if let Some(t) = current(st, l) {
            if requeue {
                t.exec.requeue_count += 1;
                t.exec.last_requeue = Some(now);
                t.first_start = None;
            } else {
                t.exec.retry_count += 1;
                t.exec.last_retry = Some(now);
            }
            t.set_state(TaskState::Active);
            t.node = None;
            t.cancel = None;
            t.etag = etag;
            st.queue.push_back((l.job_id.clone(), l.key.clone()));
        }
        return true;
    }
    false
}

/// The exit code and `failureInfo` an attempt's outcome gives the task.
fn exit_and_failure(outcome: &Outcome) -> (Option<i32>, Option<Value>) {
    match outcome {
        Outcome::Exited(0) => (Some(0), None),
        Outcome::Exited(c) => (
            Some(*c),
            Some(failure(
                "usererror",
                "FailureExitCode",
                "The task process exited with an unexpected exit code",
            )),
        ),
        Outcome::WallClock(c) => (
            Some(*c),
            Some(failure(
                "usererror",
                "MaxWallClockTimeExceeded",
                "The task ran longer than its maxWallClockTime and was terminated",
            )),
        ),
        Outcome::Stopped(_, c) => (
            *c,
            Some(failure(
                "usererror",
                "TaskEnded",
                "Task Was Ended by User Request",
            )),
        ),
        Outcome::Preprocessing(f) => (None, Some(f.clone())),
    }
}

/// How a task ended, for matching its `exitConditions`.
#[derive(Clone, Copy)]
enum ExitCondition {
    Code(Option<i32>),
    PreProcessing,
    FileUpload,
}

/// With the job's `onTaskFailure: performexitoptionsjobaction`, applies
/// the task's matching `exitOptions.jobAction` (default: none for exit code
/// 0, terminate otherwise): terminate (reason `TaskFailed`) or disable.
fn apply_job_action(sh: &Arc<Shared>, st: &mut State, l: &Launch, condition: ExitCondition) {
    let Some(j) = st.jobs.get(&l.job_id) else {
        return;
    };
    if j.spec["onTaskFailure"] != "performexitoptionsjobaction" || j.state != JobState::Active {
        return;
    }
    let ec = &l.spec["exitConditions"];
    let by_code = |c: i32| {
        let exact = ec["exitCodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["code"].as_i64() == Some(i64::from(c)));
        let ranged = || {
            ec["exitCodeRanges"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| {
                    let (a, b) = (
                        m["start"].as_i64().unwrap_or(0),
                        m["end"].as_i64().unwrap_or(-1),
                    );
                    (a..=b).contains(&i64::from(c))
                })
        };
        exact.or_else(ranged).map(|m| m["exitOptions"].clone())
    };
    let (options, success) = match condition {
        ExitCondition::Code(Some(c)) => (by_code(c), c == 0),
        ExitCondition::Code(None) => (None, false),
        ExitCondition::PreProcessing => (
            Some(ec["preProcessingError"].clone()).filter(|v| v.is_object()),
            false,
        ),
        ExitCondition::FileUpload => (
            Some(ec["fileUploadError"].clone()).filter(|v| v.is_object()),
            false,
        ),
    };
    let options = options.or_else(|| (!success).then(|| ec["default"].clone()));
    let default = if success { "none" } else { "terminate" };
    let action = options
        .as_ref()
        .and_then(|o| o["jobAction"].as_str())
        .unwrap_or(default)
        .to_owned();
    match action.as_str() {
        "terminate" => terminate_job(sh, st, &l.job_id, "TaskFailed"),
        "disable" => {
            if let Some(j) = st.jobs.get_mut(&l.job_id) {
                j.set_state(JobState::Disabled);
            }
        }
        _ => {}
    }
}

/// Uploads the output files whose condition matches; returns the first
/// failure. Diagnostics go to `fileuploadout.txt`/`fileuploaderr.txt`.
async fn upload_outputs(sh: &Shared, l: &Launch, success: bool) -> Option<Value> {
    let wd = l.task_dir.join("wd");
    let mut log = String::new();
    let mut errlog = String::new();
    let mut first_failure = None;
    for of in l.spec["outputFiles"].as_array().into_iter().flatten() {
        let cond = of["uploadOptions"]["uploadCondition"]
            .as_str()
            .unwrap_or("tasksuccess");
        let wanted = match cond {
            "tasksuccess" => success,
            "taskfailure" => !success,
            _ => true,
        };
        if !wanted {
            continue;
        }
        let pattern = of["filePattern"].as_str().unwrap_or_default();
        let dest = &of["destination"]["container"];
        let container = dest["containerUrl"].as_str().unwrap_or_default();
        let headers: Vec<(String, String)> = dest["uploadHeaders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| {
                Some((
                    h["name"].as_str()?.to_owned(),
                    h["value"].as_str().unwrap_or("").to_owned(),
                ))
            })
            .collect();
        let matches = files::match_output(&wd, pattern, dest["path"].as_str());
        if matches.is_empty() {
            errlog.push_str(&format!("no file matched pattern '{pattern}'\n"));
        }
        for (file, blob) in matches {
            match files::upload(&sh.http, container, &blob, &file, &headers).await {
                Ok(()) => log.push_str(&format!("uploaded {} to {blob}\n", file.display())),
                Err(f) => {
                    errlog.push_str(&format!(
                        "failed to upload {} to {blob}: {}\n",
                        file.display(),
                        f["message"]
                    ));
                    first_failure.get_or_insert(f);
                }
            }
        }
    }
    let _ = tokio::fs::write(l.task_dir.join("fileuploadout.txt"), log).await;
    if !errlog.is_empty() {
        let _ = tokio::fs::write(l.task_dir.join("fileuploaderr.txt"), errlog).await;
    }
    first_failure
}

// ------------------------------------------------------- lifecycle helpers

/// Stops a task: an active one completes as ended at once; a preparing or
/// running one is signalled and its runner records the outcome.
pub(crate) fn stop_task(st: &mut State, job_id: &str, key: &str, reason: StopReason) {
    let etag = st.etag();
    let Some(t) = st.jobs.get_mut(job_id).and_then(|j| j.tasks.get_mut(key)) else {
        return;
    };
    match t.state {
        TaskState::Completed => {}
        TaskState::Active => {
            if reason == StopReason::Terminated {
                t.exec.end = Some(OffsetDateTime::now_utc());
                t.exec.result = Some("failure");
                t.exec.failure = Some(failure(
                    "usererror",
                    "TaskEnded",
                    "Task Was Ended by User Request",
                ));
                t.set_state(TaskState::Completed);
                t.etag = etag;
            }
        }
        TaskState::Preparing | TaskState::Running => {
            if let Some((token, r)) = &t.cancel {
                r.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(reason);
                token.cancel();
            }
        }
    }
}

/// Completes the job when its tasks allow: `onAllTasksComplete:
/// terminatejob` with every task completed, or a terminating job whose
/// last running task has stopped.
pub(crate) fn maybe_complete_job(sh: &Arc<Shared>, st: &mut State, job_id: &str) {
    let Some(j) = st.jobs.get_mut(job_id) else {
        return;
    };
    // Called whenever a task ends: only `Terminating` needs the running check, and `all`
    // stops at the first task not completed, so neither scans the job each time.
    let all_done = || j.tasks.values().all(|t| t.state == TaskState::Completed);
    let none_running = || {
        !j.tasks
            .values()
            .any(|t| matches!(t.state, TaskState::Preparing | TaskState::Running))
    };
    let complete = match j.state {
        JobState::Active if j.on_all_tasks_complete() == "terminatejob" && all_done() => {
            j.terminate_reason = Some("AllTasksComplete".into());
            true
        }
        JobState::Terminating => {
            let lasted = OffsetDateTime::now_utc() - j.state_time;
            lasted >= sh.config.job_termination_delay && none_running()
        }
        _ => false,
    };
    if complete {
        complete_job(sh, st, job_id);
    }
}

fn complete_job(sh: &Arc<Shared>, st: &mut State, job_id: &str) {
    let etag = st.etag();
    let Some(j) = st.jobs.get_mut(job_id) else {
        return;
    };
    j.set_state(JobState::Completed);
    j.end_time = Some(OffsetDateTime::now_utc());
    j.last_modified = OffsetDateTime::now_utc();
    j.etag = etag;
    j.cancel.cancel();
    delete_auto_pools(sh, st, job_id);
}

fn delete_auto_pools(sh: &Arc<Shared>, st: &mut State, job_id: &str) {
    let owned: Vec<String> = st
        .pools
        .values()
        .filter(|p| p.auto_for_job.as_deref() == Some(job_id))
        .map(|p| p.id.clone())
        .collect();
    for p in owned {
        delete_pool(sh, st, &p);
    }
}

/// Terminates a job as the service does: running tasks are ended, and
/// "if there are any Tasks in the Job in the active state, they will remain
/// in the active state" (Terminate Job; the same for maxWallClockTime).
pub(crate) fn terminate_job(sh: &Arc<Shared>, st: &mut State, job_id: &str, reason: &str) {
    let Some(j) = st.jobs.get_mut(job_id) else {
        return;
    };
    j.set_state(JobState::Terminating);
    j.terminate_reason = Some(reason.to_owned());
    let keys: Vec<String> = j
        .tasks
        .iter()
        .filter(|(_, t)| t.state != TaskState::Active)
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        stop_task(st, job_id, &k, StopReason::Terminated);
    }
    maybe_complete_job(sh, st, job_id);
    // Termination takes a while on the service too: look again once the least time passed.
    let (sh, id) = (sh.clone(), job_id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(sh.config.job_termination_delay).await;
        let mut st = sh.lock();
        maybe_complete_job(&sh, &mut st, &id);
    });
}

pub(crate) fn delete_job(sh: &Arc<Shared>, st: &mut State, job_id: &str) {
    let Some(j) = st.jobs.get_mut(job_id) else {
        return;
    };
    j.set_state(JobState::Deleting);
    j.cancel.cancel();
    let keys: Vec<String> = j.tasks.keys().cloned().collect();
    let dirs: Vec<PathBuf> = j
        .tasks
        .values()
        .filter_map(|t| t.task_dir.clone())
        .collect();
    for k in keys {
        stop_task(st, job_id, &k, StopReason::Terminated);
    }
    delete_auto_pools(sh, st, job_id);
    // The job stays `deleting` for a while, as on the service, then is gone with its task
    // directories (by then the killed processes are reaped).
    let delay = sh.config.job_deletion_delay.max(Duration::from_millis(200));
    let (sh, id) = (sh.clone(), job_id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        {
            let mut st = sh.lock();
            st.jobs.remove(&id);
            forget_dirs(&mut st, &dirs);
            for n in st.pools.values_mut().flat_map(|p| p.nodes.iter_mut()) {
                n.job_prep.remove(&id);
            }
        }
        for d in dirs {
            let _ = tokio::fs::remove_dir_all(d).await;
        }
    });
}

/// Marks the pool deleting, requeues the tasks running on it (as the
/// service does) and removes it shortly after.
pub(crate) fn delete_pool(sh: &Arc<Shared>, st: &mut State, pool_id: &str) {
    let Some(p) = st.pools.get_mut(pool_id) else {
        return;
    };
    if p.state == "deleting" {
        return;
    }
    p.state = "deleting";
    p.state_time = OffsetDateTime::now_utc();
    requeue_tasks_on(st, pool_id, None);
    let (sh2, id) = (sh.clone(), pool_id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(sh2.config.allocation_delay).await;
        sh2.lock().pools.remove(&id);
    });
}

fn requeue_tasks_on(st: &mut State, pool_id: &str, nodes: Option<&[String]>) {
    let mut hits = Vec::new();
    for j in st.jobs.values() {
        for (k, t) in &j.tasks {
            if let Some((p, n)) = &t.node
                && p == pool_id
                && nodes.is_none_or(|ns| ns.contains(n))
            {
                hits.push((j.id.clone(), k.clone()));
            }
        }
    }
    for (j, k) in hits {
        stop_task(st, &j, &k, StopReason::Requeue);
    }
}

/// Finishes a pool's allocation after the configured delay: nodes appear
/// (or a `resizeError` fault leaves it with none) and it goes steady.
pub(crate) fn allocate_later(sh: Arc<Shared>, pool_id: String) {
    tokio::spawn(async move {
        tokio::time::sleep(sh.config.allocation_delay).await;
        let mut guard = sh.lock();
        let st = &mut *guard;
        let etag = st.etag();
        let Some(p) = st.pools.get_mut(&pool_id) else {
            return;
        };
        if p.state != "active" {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let mut removed = Vec::new();
        if let Some((code, message)) = sh.faults.take_resize_error(&pool_id) {
            let cores = (p.target_dedicated + p.target_low).max(1) * 2;
            let message = message.unwrap_or_else(|| {
                format!(
                    "The specified account has reached VM core quota. Quota: 0 cores, Target: {cores} cores ({} family)",
                    p.spec["vmSize"].as_str().unwrap_or("VM")
                )
            });
            p.resize_errors = vec![json!({"code": code, "message": message, "values": [
                {"name": "VmSize", "value": p.spec["vmSize"]}]})];
            removed = p.nodes.drain(..).map(|n| n.id).collect();
            tracing::info!(pool = %pool_id, %code, "fault: pool resize error");
        } else if p.allocation_state == "stopping" {
            p.resize_errors = vec![
                json!({"code": "ResizeStopped", "message": "The resize operation was stopped by the user."}),
            ];
        } else {
            removed = resize_nodes(p, now);
        }
        let mut started = Vec::new();
        if p.spec["startTask"].is_object() {
            let wait = p.spec["startTask"]["waitForSuccess"]
                .as_bool()
                .unwrap_or(true);
            for n in p.nodes.iter_mut().filter(|n| n.created == now) {
                n.starting = wait;
                started.push(n.id.clone());
            }
        }
        fail_nodes(&sh, p, &pool_id);
        p.allocation_state = "steady";
        p.allocation_time = now;
        p.etag = etag;
        p.last_modified = now;
        if !removed.is_empty() {
            requeue_tasks_on(st, &pool_id, Some(&removed));
        }
        let start_task = p_start_task(st, &pool_id);
        for node in started {
            tokio::spawn(crate::starttask::run(
                sh.clone(),
                pool_id.clone(),
                node,
                start_task.clone(),
            ));
        }
        drop(guard);
        sh.wake.notify_one();
    });
}

/// Adds or removes nodes until the pool has its target dedicated and low-priority counts; the
/// ids of the removed ones.
fn resize_nodes(p: &mut Pool, now: OffsetDateTime) -> Vec<String> {
    let mut removed = Vec::new();
    for (dedicated, want) in [
        (true, p.target_dedicated as usize),
        (false, p.target_low as usize),
    ] {
        let have = p.nodes.iter().filter(|n| n.dedicated == dedicated).count();
        for i in have..want {
            let id = format!("tvmps_{}_{:06}", if dedicated { "d" } else { "p" }, i);
            p.nodes.push(Node::new(id, dedicated, now));
        }
        while p.nodes.iter().filter(|n| n.dedicated == dedicated).count() > want {
            let idx = p
                .nodes
                .iter()
                .rposition(|n| n.dedicated == dedicated)
                .expect("counted above");
            removed.push(p.nodes.remove(idx).id);
        }
    }
    removed
}

/// A `nodeFailure` fault: the pool's first nodes become unusable, with a start task stderr that
/// says so.
fn fail_nodes(sh: &Shared, p: &mut Pool, pool_id: &str) {
    if let Some((state, n, stderr)) = sh.faults.take_node_failure(pool_id) {
        tracing::info!(pool = %pool_id, %state, nodes = n, "fault: failed nodes");
        for node in p.nodes.iter_mut().take(n as usize) {
            node.failed = Some(state.clone());
            let startup = sh.node_root(pool_id, &node.id).join("startup");
            let text = stderr.clone().unwrap_or_else(|| {
                format!(
                    "node {} is {state} (fault injected by batch-standin)\n",
                    node.id
                )
            });
            let _ = std::fs::create_dir_all(&startup)
                .and_then(|()| std::fs::write(startup.join("stderr.txt"), text))
                .and_then(|()| std::fs::write(startup.join("stdout.txt"), ""));
        }
    }
}

fn p_start_task(st: &State, pool_id: &str) -> Value {
    st.pools
        .get(pool_id)
        .map_or(Value::Null, |p| p.spec["startTask"].clone())
}

/// An auto-pool that could not be created: after the allocation delay the
/// job completes with `schedulingError`, its tasks left as they are.
pub(crate) fn fail_auto_pool_later(sh: Arc<Shared>, job_id: String, code: String, message: String) {
    tokio::spawn(async move {
        tokio::time::sleep(sh.config.allocation_delay).await;
        let mut guard = sh.lock();
        let st = &mut *guard;
        let Some(j) = st.jobs.get_mut(&job_id) else {
            return;
        };
        if j.state != JobState::Active {
            return;
        }
        tracing::info!(job = %job_id, %code, "fault: auto-pool creation failed");
        j.scheduling_error =
            Some(json!({"category": "UserError", "code": code, "message": message}));
        complete_job(&sh, st, &job_id);
    });
}

/// Terminates the job with `MaxWallClockTimeExpiry` when its cap passes.
pub(crate) fn job_wall_clock(
    sh: Arc<Shared>,
    job_id: String,
    wall: Duration,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(wall) => {
                let mut st = sh.lock();
                if st.jobs.get(&job_id).is_some_and(|j| matches!(j.state, JobState::Active | JobState::Disabled)) {
                    tracing::info!(job = %job_id, "job maxWallClockTime reached");
                    terminate_job(&sh, &mut st, &job_id, "MaxWallClockTimeExpiry");
                }
            }
        }
    });
}

/// Kills every task process group right now (shutdown path).
pub(crate) fn kill_all(sh: &Shared) {
    let mut st = sh.lock();
    for pgid in st.pgids.drain() {
        kill_group(Some(pgid));
    }
    for j in st.jobs.values() {
        for t in j.tasks.values() {
            if let Some((token, r)) = &t.cancel {
                r.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(StopReason::Terminated);
                token.cancel();
            }
        }
    }
}
