//! The in-memory account: pools with simulated nodes, jobs and their tasks,
//! and the JSON each renders to. Entities keep the validated create body and
//! add the server-side fields (state, times, ETag, execution info) on top.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::timefmt::{UNLIMITED_TEXT, rfc3339};

/// Everything the account holds, behind one mutex in `Shared`.
#[derive(Default)]
pub(crate) struct State {
    pub pools: BTreeMap<String, Pool>,
    pub jobs: BTreeMap<String, Job>,
    /// Tasks waiting for a slot, in submission order: (job id, task id).
    pub queue: VecDeque<(String, String)>,
    /// Task processes (or downloads) in flight.
    pub running: usize,
    pub peak_running: usize,
    /// Source of unique attempt numbers (see `Task::attempt`).
    pub next_attempt: u64,
    /// Process groups of running task processes, killed on shutdown.
    pub pgids: std::collections::HashSet<u32>,
    /// Resource-file downloads so far, by URL without its query (what a node fetched).
    pub downloads: std::collections::HashMap<String, u64>,
    /// Finished task directories still on their node, until their `retentionTime` passes.
    pub retained: Vec<Retained>,
    etag_counter: u64,
}

impl State {
    /// A fresh opaque ETag in the service's `0x8D...` style.
    pub(crate) fn etag(&mut self) -> String {
        self.etag_counter += 1;
        let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 100;
        format!(
            "0x8D{:011X}{:04X}",
            t & 0xFFF_FFFF_FFFF,
            self.etag_counter & 0xFFFF
        )
    }
}

pub(crate) struct Pool {
    pub id: String,
    pub spec: Value,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    pub etag: String,
    pub state: &'static str,
    pub state_time: OffsetDateTime,
    pub allocation_state: &'static str,
    pub allocation_time: OffsetDateTime,
    pub target_dedicated: u32,
    pub target_low: u32,
    pub slots_per_node: u32,
    pub resize_errors: Vec<Value>,
    pub nodes: Vec<Node>,
    /// Set for an auto pool: the job whose lifetime it follows.
    pub auto_for_job: Option<String>,
}

/// A finished task's directory kept on its node until `until` (the task's `retentionTime`).
pub(crate) struct Retained {
    pub until: Instant,
    pub pool_id: String,
    pub node_id: String,
    pub dir: PathBuf,
    pub bytes: u64,
}

/// A job preparation task's run on one node (`jobPreparationTaskExecutionInfo`).
#[derive(Clone)]
pub(crate) struct PrepRun {
    /// Done (exit 0, retries exhausted or a preprocessing error).
    pub completed: bool,
    pub success: bool,
    pub info: Value,
}

pub(crate) struct Node {
    pub id: String,
    /// Job preparation runs on this node, by job id: tasks of a job with a preparation task
    /// start here only after it succeeded (with `waitForSuccess`).
    pub job_prep: BTreeMap<String, PrepRun>,
    /// Bytes in this node's task directories and shared directory (see `Config::node_disk_bytes`).
    pub disk_used: u64,
    /// Bytes of the shared directory, counted in `disk_used`.
    pub shared_bytes: u64,
    /// Made unusable by a full disk (`disk_used` above `disk_budget`).
    pub failed_disk: bool,
    pub disk_budget: u64,
    /// `unusable` or `starttaskfailed` (a fault or a failed start task);
    /// such nodes get no tasks.
    pub failed: Option<String>,
    /// Running a start task with `waitForSuccess`: no tasks yet.
    pub starting: bool,
    /// `startTaskInfo` once the pool's start task ran here.
    pub start_info: Option<Value>,
    pub dedicated: bool,
    pub used_slots: u32,
    pub running_tasks: u32,
    pub total_run: u64,
    pub total_succeeded: u64,
    pub state_time: OffsetDateTime,
    pub created: OffsetDateTime,
}

impl Node {
    pub(crate) fn new(id: String, dedicated: bool, now: OffsetDateTime) -> Self {
        Self {
            id,
            job_prep: BTreeMap::new(),
            disk_used: 0,
            shared_bytes: 0,
            failed_disk: false,
            disk_budget: 0,
            failed: None,
            starting: false,
            start_info: None,
            dedicated,
            used_slots: 0,
            running_tasks: 0,
            total_run: 0,
            total_succeeded: 0,
            state_time: now,
            created: now,
        }
    }

    /// Adds `bytes` (or takes them back) and turns the node `unusable` once its disk is full,
    /// as a Batch node whose disk fills up does.
    pub(crate) fn account_disk(&mut self, add: u64, remove: u64, budget: Option<u64>) {
        self.disk_used = (self.disk_used + add).saturating_sub(remove);
        if let Some(b) = budget
            && self.disk_used > b
            && self.failed.is_none()
        {
            tracing::info!(node = %self.id, used = self.disk_used, budget = b, "node disk full: unusable");
            self.failed = Some("unusable".into());
            self.failed_disk = true;
            self.disk_budget = b;
            self.state_time = OffsetDateTime::now_utc();
        }
    }
}

impl Pool {
    pub(crate) fn render(&self, base: &str) -> Value {
        let mut v = self.spec.clone();
        let o = obj(&mut v);
        stamp(
            o,
            &Stamp {
                url: format!("{base}/pools/{}", self.id),
                etag: &self.etag,
                last_modified: self.last_modified,
                created: self.created,
                state: self.state,
                state_time: self.state_time,
                previous: None,
            },
        );
        o.insert("allocationState".into(), json!(self.allocation_state));
        o.insert(
            "allocationStateTransitionTime".into(),
            json!(rfc3339(self.allocation_time)),
        );
        o.entry("resizeTimeout").or_insert(json!("PT15M"));
        o.insert("taskSlotsPerNode".into(), json!(self.slots_per_node));
        let (d, l) = self.current_nodes();
        o.insert("currentDedicatedNodes".into(), json!(d));
        o.insert("currentLowPriorityNodes".into(), json!(l));
        if !o
            .get("enableAutoScale")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            o.insert("targetDedicatedNodes".into(), json!(self.target_dedicated));
            o.insert("targetLowPriorityNodes".into(), json!(self.target_low));
        } else {
            o.insert(
                "autoScaleRun".into(),
                json!({"timestamp": rfc3339(self.allocation_time),
                       "results": format!("$TargetDedicatedNodes={};$TargetLowPriorityNodes={};$NodeDeallocationOption=requeue", self.target_dedicated, self.target_low)}),
            );
        }
        o.entry("enableAutoScale").or_insert(json!(false));
        if !self.resize_errors.is_empty() {
            o.insert(
                "resizeErrors".into(),
                Value::Array(self.resize_errors.clone()),
            );
        }
        crate::casing::echo_pool(o);
        v
    }

    pub(crate) fn current_nodes(&self) -> (usize, usize) {
        let d = self.nodes.iter().filter(|n| n.dedicated).count();
        (d, self.nodes.len() - d)
    }

    pub(crate) fn render_node(&self, node: &Node, base: &str) -> Value {
        let state = match &node.failed {
            Some(s) => s.as_str(),
            None if node.starting => "waitingforstarttask",
            None if node.running_tasks > 0 => "running",
            None => "idle",
        };
        let mut v = json!({
            "id": node.id,
            "url": format!("{base}/pools/{}/nodes/{}", self.id, node.id),
            "state": state,
            "schedulingState": "enabled",
            "stateTransitionTime": rfc3339(node.state_time),
            "lastBootTime": rfc3339(node.created),
            "allocationTime": rfc3339(node.created),
            "ipAddress": "127.0.0.1",
            "ipv6Address": "::1",
            "affinityId": format!("TVM:{}", node.id),
            "vmSize": self.spec["vmSize"],
            "totalTasksRun": node.total_run,
            "runningTasksCount": node.running_tasks,
            "runningTaskSlotsCount": node.used_slots,
            "totalTasksSucceeded": node.total_succeeded,
            "isDedicated": node.dedicated,
            "nodeAgentInfo": {"version": "1.0.0-standin", "lastUpdateTime": rfc3339(node.created)},
            "virtualMachineInfo": {"imageReference": self.spec["virtualMachineConfiguration"]["imageReference"]},
        });
        if let Some(info) = &node.start_info {
            v["startTaskInfo"] = info.clone();
        }
        match node.failed.as_deref() {
            Some("starttaskfailed") if node.start_info.is_some() => {}
            Some("starttaskfailed") => {
                v["startTaskInfo"] = json!({
                    "state": "completed", "startTime": rfc3339(node.created), "endTime": rfc3339(node.created),
                    "exitCode": 1, "retryCount": 0, "result": "failure",
                    "failureInfo": {"category": "UserError", "code": "FailureExitCode",
                                    "message": "The task process exited with an unexpected exit code"}});
            }
            Some(_) if node.disk_used > 0 && node.failed_disk => {
                v["errors"] = json!([{"code": "DiskFull",
                    "message": format!("The node ran out of disk space: {} bytes in task and shared directories exceed its disk of {} bytes.", node.disk_used, node.disk_budget),
                    "errorDetails": []}]);
            }
            Some(_) => {
                v["errors"] = json!([{"code": "NodeUnusable",
                    "message": "The node is unusable (fault injected by batch-standin).", "errorDetails": []}]);
            }
            None => {}
        }
        v
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum JobState {
    Active,
    Disabled,
    Terminating,
    Completed,
    Deleting,
}

impl JobState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Disabled => "disabled",
            JobState::Terminating => "terminating",
            JobState::Completed => "completed",
            JobState::Deleting => "deleting",
        }
    }
}

pub(crate) struct Job {
    pub id: String,
    pub spec: Value,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    pub etag: String,
    pub state: JobState,
    pub state_time: OffsetDateTime,
    pub previous: Option<(JobState, OffsetDateTime)>,
    pub pool_id: String,
    pub end_time: Option<OffsetDateTime>,
    pub terminate_reason: Option<String>,
    /// `executionInfo.schedulingError`: why the job could not start (an
    /// auto-pool that could not be created).
    pub scheduling_error: Option<Value>,
    pub tasks: BTreeMap<String, Task>,
    /// Cancelled when the job is terminated or deleted (stops its wall-clock timer).
    pub cancel: CancellationToken,
    /// The last `taskcounts` answer and when it was computed (see `Config::task_counts_lag`).
    pub counts: Option<(std::time::Instant, Value)>,
}

impl Job {
    pub(crate) fn set_state(&mut self, s: JobState) {
        let now = OffsetDateTime::now_utc();
        self.previous = Some((self.state, self.state_time));
        self.state = s;
        self.state_time = now;
    }

    pub(crate) fn render(&self, base: &str) -> Value {
        let mut v = self.spec.clone();
        let o = obj(&mut v);
        stamp(
            o,
            &Stamp {
                url: format!("{base}/jobs/{}", self.id),
                etag: &self.etag,
                last_modified: self.last_modified,
                created: self.created,
                state: self.state.as_str(),
                state_time: self.state_time,
                previous: self.previous.map(|(p, t)| (p.as_str(), t)),
            },
        );
        o.entry("priority").or_insert(json!(0));
        o.entry("maxParallelTasks").or_insert(json!(-1));
        o.entry("onAllTasksComplete").or_insert(json!("noaction"));
        o.entry("onTaskFailure").or_insert(json!("noaction"));
        o.entry("usesTaskDependencies").or_insert(json!(false));
        let c = o.entry("constraints").or_insert(json!({}));
        if let Some(c) = c.as_object_mut() {
            c.entry("maxWallClockTime").or_insert(json!(UNLIMITED_TEXT));
            c.entry("maxTaskRetryCount").or_insert(json!(0));
        }
        let mut exec = json!({"startTime": rfc3339(self.created), "poolId": self.pool_id});
        if let Some(e) = self.end_time {
            exec["endTime"] = json!(rfc3339(e));
        }
        if let Some(r) = &self.terminate_reason {
            exec["terminateReason"] = json!(r);
        }
        if let Some(e) = &self.scheduling_error {
            exec["schedulingError"] = e.clone();
        }
        o.insert("executionInfo".into(), exec);
        let auto_pool = o
            .get_mut("poolInfo")
            .and_then(|p| p.get_mut("autoPoolSpecification"))
            .and_then(|a| a.get_mut("pool"))
            .and_then(Value::as_object_mut);
        if let Some(pool) = auto_pool {
            crate::casing::echo_pool(pool);
        }
        v
    }

    pub(crate) fn on_all_tasks_complete(&self) -> &str {
        self.spec["onAllTasksComplete"]
            .as_str()
            .unwrap_or("noaction")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TaskState {
    Active,
    Preparing,
    Running,
    Completed,
}

impl TaskState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskState::Active => "active",
            TaskState::Preparing => "preparing",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
        }
    }
}

/// Why a running task is being stopped from outside.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum StopReason {
    /// Terminate task, terminate job, delete job: the task completes as ended.
    Terminated,
    /// Node preemption or pool deletion: the task goes back to the queue.
    Requeue,
}

#[derive(Default)]
pub(crate) struct ExecInfo {
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
    pub exit_code: Option<i32>,
    pub failure: Option<Value>,
    pub retry_count: u32,
    pub last_retry: Option<OffsetDateTime>,
    pub requeue_count: u32,
    pub last_requeue: Option<OffsetDateTime>,
    pub result: Option<&'static str>,
}

pub(crate) struct Task {
    pub id: String,
    pub spec: Value,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
    pub etag: String,
    pub state: TaskState,
    pub state_time: OffsetDateTime,
    pub previous: Option<(TaskState, OffsetDateTime)>,
    pub exec: ExecInfo,
    /// (pool id, node id) while preparing or running.
    pub node: Option<(String, String)>,
    pub task_dir: Option<PathBuf>,
    /// When the task first started; the wall-clock limit counts from here.
    pub first_start: Option<Instant>,
    /// Cancelled to stop the current attempt; the reason says what follows.
    pub cancel: Option<(
        CancellationToken,
        std::sync::Arc<std::sync::Mutex<Option<StopReason>>>,
    )>,
    /// Bumped every time the task is scheduled, so a stale runner can tell.
    pub attempt: u64,
}

impl Task {
    pub(crate) fn set_state(&mut self, s: TaskState) {
        let now = OffsetDateTime::now_utc();
        self.previous = Some((self.state, self.state_time));
        self.state = s;
        self.state_time = now;
        self.last_modified = now;
    }

    pub(crate) fn required_slots(&self) -> u32 {
        self.spec["requiredSlots"].as_u64().unwrap_or(1).max(1) as u32
    }

    pub(crate) fn render(&self, base: &str, job_id: &str, job_retry: i64) -> Value {
        let mut v = self.spec.clone();
        let o = obj(&mut v);
        stamp(
            o,
            &Stamp {
                url: format!("{base}/jobs/{job_id}/tasks/{}", self.id),
                etag: &self.etag,
                last_modified: self.last_modified,
                created: self.created,
                state: self.state.as_str(),
                state_time: self.state_time,
                previous: self.previous.map(|(p, t)| (p.as_str(), t)),
            },
        );
        o.entry("requiredSlots").or_insert(json!(1));
        let c = o.entry("constraints").or_insert(json!({}));
        if let Some(c) = c.as_object_mut() {
            c.entry("maxWallClockTime").or_insert(json!(UNLIMITED_TEXT));
            c.entry("retentionTime").or_insert(json!("P7D"));
            c.entry("maxTaskRetryCount").or_insert(json!(job_retry));
        }
        let e = &self.exec;
        let mut exec = json!({"retryCount": e.retry_count, "requeueCount": e.requeue_count});
        let x = obj(&mut exec);
        let mut put = |k: &str, t: Option<OffsetDateTime>| {
            if let Some(t) = t {
                x.insert(k.into(), json!(rfc3339(t)));
            }
        };
        put("startTime", e.start);
        put("endTime", e.end);
        put("lastRetryTime", e.last_retry);
        put("lastRequeueTime", e.last_requeue);
        if let Some(c) = e.exit_code {
            x.insert("exitCode".into(), json!(c));
        }
        if let Some(f) = &e.failure {
            x.insert("failureInfo".into(), f.clone());
        }
        if let Some(r) = e.result {
            x.insert("result".into(), json!(r));
        }
        o.insert("executionInfo".into(), exec);
        crate::casing::echo_task(o);
        if let Some((pool, node)) = &self.node {
            let node_url = format!("{base}/pools/{pool}/nodes/{node}");
            let root = format!("workitems/{job_id}/job-1/{}", self.id);
            o.insert(
                "nodeInfo".into(),
                json!({"affinityId": format!("TVM:{node}"), "nodeUrl": node_url, "poolId": pool, "nodeId": node,
                       "taskRootDirectory": root, "taskRootDirectoryUrl": format!("{node_url}/files/{root}")}),
            );
        }
        v
    }
}

/// What a rendered pool, job and task say alike: where it is, its version, times and state.
struct Stamp<'a> {
    url: String,
    etag: &'a str,
    last_modified: OffsetDateTime,
    created: OffsetDateTime,
    state: &'a str,
    state_time: OffsetDateTime,
    previous: Option<(&'a str, OffsetDateTime)>,
}

/// Writes `s` into a rendered entity, in the service's field order.
fn stamp(o: &mut Map<String, Value>, s: &Stamp<'_>) {
    o.insert("url".into(), json!(s.url));
    o.insert("eTag".into(), json!(s.etag));
    o.insert("lastModified".into(), json!(rfc3339(s.last_modified)));
    o.insert("creationTime".into(), json!(rfc3339(s.created)));
    o.insert("state".into(), json!(s.state));
    o.insert("stateTransitionTime".into(), json!(rfc3339(s.state_time)));
    if let Some((p, t)) = s.previous {
        o.insert("previousState".into(), json!(p));
        o.insert("previousStateTransitionTime".into(), json!(rfc3339(t)));
    }
}

pub(crate) fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("just made an object")
}

/// Counts for `GET /jobs/{id}/taskcounts`: preparing counts as running, as
/// in the service.
pub(crate) fn task_counts(job: &Job) -> Value {
    let mut c = [0u64; 5];
    let mut s = [0u64; 5];
    for t in job.tasks.values() {
        let slots = u64::from(t.required_slots());
        let mut bump = |i: usize| {
            c[i] += 1;
            s[i] += slots;
        };
        match t.state {
            TaskState::Active => bump(0),
            TaskState::Preparing | TaskState::Running => bump(1),
            TaskState::Completed => {
                bump(2);
                if t.exec.result == Some("success") {
                    bump(3);
                } else {
                    bump(4);
                }
            }
        }
    }
    let f = |a: [u64; 5]| json!({"active": a[0], "running": a[1], "completed": a[2], "succeeded": a[3], "failed": a[4]});
    json!({"taskCounts": f(c), "taskSlotCounts": f(s)})
}
