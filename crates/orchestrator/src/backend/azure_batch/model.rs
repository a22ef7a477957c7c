//! Batch's JSON, and nothing else: the request bodies we send and the parts of responses we
//! read. Wire names follow `BatchService.json` (api-version 2025-06-01); optional fields are
//! skipped when unset so that nothing a newer api-version removed is ever sent.
//!
//! Every enum and code the service answers with is read case-insensitively: the real service
//! answers `"status": "Success"` where the spec says `success`, echoes `TaskCompletion` and
//! `Spread` for what was sent as `taskcompletion` and `spread`, and nothing promises states
//! stay lowercase. Recorded exchanges in `tests/fixtures/azure-recordings/` hold this file to it
//! (`recorded.rs`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Declares an enum the service answers with: the known values under the spec's spelling, read
/// whatever their case, and anything else kept as received in `Other` (empty when absent), so an
/// unknown value is never a parse error and never mistaken for a known one.
macro_rules! batch_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $wire:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) enum $name {
            $($variant,)+
            /// A value this code does not know, as received (empty when the field was absent).
            Other(String),
        }

        impl $name {
            /// The spec's spelling; for `Other`, the value as received.
            pub(crate) fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(s) => s,
                }
            }

            /// Reads a wire value, ignoring ASCII case.
            pub(crate) fn parse(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($wire) {
                    return Self::$variant;
                })+
                Self::Other(s.to_owned())
            }
        }

        #[cfg(test)]
        impl Known for $name {
            fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Option::<String>::deserialize(d)?;
                Ok(s.map_or_else(Self::default, |s| Self::parse(&s)))
            }
        }
    };
}

/// Tests ask whether an answer's enum value was recognised at all.
#[cfg(test)]
pub(crate) trait Known {
    fn is_known(&self) -> bool;
}

batch_enum! {
    /// `BatchTaskAddStatus`: the service writes `Success` / `ClientError` / `ServerError`.
    TaskAddStatus {
        Success = "success",
        ClientError = "clienterror",
        ServerError = "servererror",
    }
}

batch_enum! {
    /// `BatchTaskState`.
    TaskState {
        Active = "active",
        Preparing = "preparing",
        Running = "running",
        Completed = "completed",
    }
}

batch_enum! {
    /// `BatchTaskExecutionResult`.
    TaskExecutionResult {
        Success = "success",
        Failure = "failure",
    }
}

batch_enum! {
    /// `BatchErrorSourceCategory` (a task's `failureInfo.category`).
    ErrorCategory {
        UserError = "usererror",
        ServerError = "servererror",
    }
}

batch_enum! {
    /// `BatchJobState`.
    JobState {
        Active = "active",
        Disabling = "disabling",
        Disabled = "disabled",
        Enabling = "enabling",
        Terminating = "terminating",
        Completed = "completed",
        Deleting = "deleting",
    }
}

batch_enum! {
    /// `BatchPoolState`.
    PoolState {
        Active = "active",
        Deleting = "deleting",
    }
}

batch_enum! {
    /// `AllocationState`.
    AllocationState {
        Steady = "steady",
        Resizing = "resizing",
        Stopping = "stopping",
    }
}

batch_enum! {
    /// `BatchNodeState`.
    NodeState {
        Idle = "idle",
        Rebooting = "rebooting",
        Reimaging = "reimaging",
        Running = "running",
        Unusable = "unusable",
        Creating = "creating",
        Starting = "starting",
        WaitingForStartTask = "waitingforstarttask",
        StartTaskFailed = "starttaskfailed",
        Unknown = "unknown",
        LeavingPool = "leavingpool",
        Offline = "offline",
        Preempted = "preempted",
        UpgradingOs = "upgradingos",
        Deallocated = "deallocated",
        Deallocating = "deallocating",
    }
}

batch_enum! {
    /// `OSType` of a supported image.
    OsType {
        Linux = "linux",
        Windows = "windows",
    }
}

batch_enum! {
    /// `ImageVerificationType`.
    VerificationType {
        Verified = "verified",
        Unverified = "unverified",
    }
}

batch_enum! {
    /// The `resizeErrors[].code` values the watchdog acts on (the spec leaves codes open).
    ResizeErrorCode {
        AccountCoreQuotaReached = "AccountCoreQuotaReached",
        AccountVmSeriesCoreQuotaReached = "AccountVMSeriesCoreQuotaReached",
        AccountLowPriorityCoreQuotaReached = "AccountLowPriorityCoreQuotaReached",
        AccountSpotCoreQuotaReached = "AccountSpotCoreQuotaReached",
        AllocationTimedout = "AllocationTimedout",
        AllocationFailed = "AllocationFailed",
        ResizeStopped = "ResizeStopped",
    }
}

/// Whether an error code the service sent is `want`. Codes are compared without regard to
/// ASCII case, like every other value the service answers with.
pub(crate) fn is_code(got: Option<&str>, want: &str) -> bool {
    got.is_some_and(|c| c.eq_ignore_ascii_case(want))
}

/// `{"name": .., "value": ..}` metadata and environment entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameValue {
    pub(crate) name: String,
    pub(crate) value: String,
}

impl NameValue {
    pub(crate) fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Metadata key that tags everything a run creates (found again by `cleanup`).
pub(crate) const RUN_METADATA_KEY: &str = "orchestrator-run";

/// Metadata entry on every pool and job this tool creates (found again by `cleanup --all`).
pub(crate) const CREATED_BY: (&str, &str) = ("created-by", "orchestrator");

/// The metadata every pool and job of run `run_id` carries.
pub(crate) fn run_metadata(run_id: &str) -> Vec<NameValue> {
    vec![
        NameValue::new(CREATED_BY.0, CREATED_BY.1),
        NameValue::new(RUN_METADATA_KEY, run_id),
    ]
}

/// Whether `metadata` has `name` = `value`.
pub(crate) fn has_tag(metadata: &[NameValue], name: &str, value: &str) -> bool {
    metadata.iter().any(|m| m.name == name && m.value == value)
}

// ---------------------------------------------------------------- requests

/// `BatchPoolCreateOptions` (`POST /pools`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolCreate {
    pub(crate) id: String,
    #[serde(flatten)]
    pub(crate) spec: PoolSpec,
}

/// `BatchPoolSpecification`: the pool fields shared by a named pool and an auto-pool.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolSpec {
    pub(crate) vm_size: String,
    pub(crate) virtual_machine_configuration: VirtualMachineConfiguration,
    pub(crate) task_slots_per_node: u32,
    pub(crate) task_scheduling_policy: TaskSchedulingPolicy,
    pub(crate) resize_timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_dedicated_nodes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_low_priority_nodes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enable_auto_scale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auto_scale_formula: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auto_scale_evaluation_interval: Option<String>,
    pub(crate) metadata: Vec<NameValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VirtualMachineConfiguration {
    pub(crate) image_reference: ImageReference,
    /// The REST spelling really is `nodeAgentSKUId` (ARM says `nodeAgentSkuId`).
    #[serde(rename = "nodeAgentSKUId")]
    pub(crate) node_agent_sku_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageReference {
    #[serde(default)]
    pub(crate) publisher: String,
    #[serde(default)]
    pub(crate) offer: String,
    #[serde(default)]
    pub(crate) sku: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) version: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskSchedulingPolicy {
    pub(crate) node_fill_type: String,
}

/// `BatchJobCreateOptions` (`POST /jobs`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobCreate {
    pub(crate) id: String,
    pub(crate) pool_info: PoolInfo,
    pub(crate) on_all_tasks_complete: String,
    pub(crate) on_task_failure: String,
    pub(crate) constraints: JobConstraints,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job_preparation_task: Option<JobPreparationTask>,
    pub(crate) metadata: Vec<NameValue>,
}

/// `BatchJobPreparationTask`: runs once on each node before the job's first task there.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobPreparationTask {
    pub(crate) id: String,
    pub(crate) command_line: String,
    pub(crate) resource_files: Vec<ResourceFile>,
    pub(crate) constraints: TaskConstraints,
    pub(crate) wait_for_success: bool,
    pub(crate) rerun_on_node_reboot_after_success: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub(crate) auto_pool_specification: Option<AutoPoolSpec>,
}

/// `BatchAutoPoolSpecification`: Batch creates the pool with the job and deletes it after.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AutoPoolSpec {
    pub(crate) auto_pool_id_prefix: String,
    pub(crate) pool_lifetime_option: String,
    pub(crate) keep_alive: bool,
    pub(crate) pool: PoolSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobConstraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_wall_clock_time: Option<String>,
}

/// `BatchJobUpdateOptions` (`PATCH /jobs/{id}`), only what we change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobPatch {
    pub(crate) on_all_tasks_complete: String,
}

/// `BatchJobTerminateOptions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobTerminate {
    pub(crate) terminate_reason: String,
}

/// `BatchTaskCreateOptions`, one per input.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskCreate {
    pub(crate) id: String,
    pub(crate) display_name: String,
    pub(crate) command_line: String,
    pub(crate) resource_files: Vec<ResourceFile>,
    pub(crate) output_files: Vec<OutputFile>,
    pub(crate) constraints: TaskConstraints,
}

/// `BatchTaskGroup`: the body of `addtaskcollection` (the submitter writes the same shape from
/// pre-serialised tasks; this is for `--dry-run`).
#[derive(Debug, Serialize)]
pub(crate) struct TaskGroup<'a> {
    pub(crate) value: &'a [TaskCreate],
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceFile {
    pub(crate) http_url: String,
    pub(crate) file_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file_mode: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputFile {
    pub(crate) file_pattern: String,
    pub(crate) destination: OutputFileDestination,
    pub(crate) upload_options: OutputFileUploadConfig,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputFileDestination {
    pub(crate) container: OutputFileBlobContainerDestination,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputFileBlobContainerDestination {
    pub(crate) path: String,
    pub(crate) container_url: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutputFileUploadConfig {
    pub(crate) upload_condition: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskConstraints {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_wall_clock_time: Option<String>,
    pub(crate) retention_time: String,
    pub(crate) max_task_retry_count: i32,
}

// ---------------------------------------------------------------- responses

/// `BatchError`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct BatchErrorBody {
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<BatchErrorMessage>,
    #[serde(default)]
    pub(crate) values: Vec<BatchErrorDetail>,
}

impl BatchErrorBody {
    pub(crate) fn is_code(&self, want: &str) -> bool {
        is_code(self.code.as_deref(), want)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BatchErrorMessage {
    #[serde(default)]
    pub(crate) value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BatchErrorDetail {
    #[serde(default)]
    pub(crate) key: Option<String>,
    #[serde(default)]
    pub(crate) value: Option<String>,
}

/// `BatchCreateTaskCollectionResult`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaskAddCollectionResult {
    #[serde(default)]
    pub(crate) value: Vec<TaskAddResult>,
}

/// `BatchTaskCreateResult`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskAddResult {
    pub(crate) status: TaskAddStatus,
    pub(crate) task_id: String,
    #[serde(default)]
    pub(crate) error: Option<BatchErrorBody>,
}

/// `BatchTaskCountsResult`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskCountsResult {
    pub(crate) task_counts: TaskCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct TaskCounts {
    pub(crate) active: u64,
    pub(crate) running: u64,
    pub(crate) completed: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
}

/// A page of a list call.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub(crate) value: Vec<T>,
    #[serde(default, rename = "odata.nextLink")]
    pub(crate) next_link: Option<String>,
}

/// The `$select`-ed view of a `BatchTask` we read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskView {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) state: TaskState,
    #[serde(default)]
    pub(crate) execution_info: Option<TaskExecutionInfo>,
    #[serde(default)]
    pub(crate) node_info: Option<NodeInfo>,
}

/// `BatchTaskSelect` for the list calls: exactly the fields of [`TaskView`].
pub(crate) const TASK_SELECT: &str = "id,state,executionInfo,nodeInfo";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskExecutionInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i32>,
    #[serde(default)]
    pub(crate) retry_count: u32,
    #[serde(default)]
    pub(crate) requeue_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure_info: Option<FailureInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<TaskExecutionResult>,
}

/// One node's entry of `GET /jobs/{id}/jobpreparationandreleasetaskstatus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobPrepStatus {
    #[serde(default)]
    pub(crate) node_id: String,
    #[serde(default)]
    pub(crate) job_preparation_task_execution_info: Option<JobPrepInfo>,
}

/// `JobPreparationTaskExecutionInfo`: what the watchdog reads of it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobPrepInfo {
    #[serde(default)]
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) exit_code: Option<i32>,
    #[serde(default)]
    pub(crate) retry_count: u32,
    #[serde(default)]
    pub(crate) failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub(crate) result: Option<TaskExecutionResult>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FailureInfo {
    #[serde(default)]
    pub(crate) category: ErrorCategory,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node_id: Option<String>,
}

/// The parts of `BatchPool` the watchdog and cleanup read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolView {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) state: PoolState,
    #[serde(default)]
    pub(crate) allocation_state: AllocationState,
    #[serde(default)]
    pub(crate) vm_size: String,
    #[serde(default)]
    pub(crate) resize_errors: Vec<ResizeError>,
    #[serde(default)]
    pub(crate) current_dedicated_nodes: u32,
    #[serde(default)]
    pub(crate) current_low_priority_nodes: u32,
    #[serde(default)]
    pub(crate) target_dedicated_nodes: u32,
    #[serde(default)]
    pub(crate) enable_auto_scale: bool,
    #[serde(default)]
    pub(crate) metadata: Vec<NameValue>,
}

/// `ResizeError`: a code and a plain-string message.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResizeError {
    #[serde(default)]
    pub(crate) code: ResizeErrorCode,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// `BatchNodeError`: a code and a plain-string message.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct NodeError {
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// The parts of `BatchJob` we read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobView {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) state: JobState,
    #[serde(default)]
    pub(crate) execution_info: Option<JobExecutionInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobExecutionInfo {
    #[serde(default)]
    pub(crate) pool_id: Option<String>,
    /// Why the job ended (`MaxWallClockTimeExpiry`, `AllTasksComplete`, a user's reason).
    #[serde(default)]
    pub(crate) terminate_reason: Option<String>,
    /// Why the job could not start (e.g. its auto-pool could not be created).
    #[serde(default)]
    pub(crate) scheduling_error: Option<JobSchedulingError>,
}

/// `BatchJobSchedulingError`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct JobSchedulingError {
    #[serde(default)]
    pub(crate) category: ErrorCategory,
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// `BatchSupportedImage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SupportedImage {
    #[serde(rename = "nodeAgentSKUId")]
    pub(crate) node_agent_sku_id: String,
    pub(crate) image_reference: ImageReference,
    #[serde(default)]
    pub(crate) os_type: OsType,
    #[serde(default)]
    pub(crate) verification_type: VerificationType,
    #[serde(default)]
    pub(crate) batch_support_end_of_life: Option<String>,
}

/// The parts of `BatchNode` the watchdog reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeView {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) state: NodeState,
    #[serde(default)]
    pub(crate) errors: Vec<NodeError>,
}

/// ISO 8601 duration for Batch time spans (`PT1800S`).
pub(crate) fn iso_duration(d: Duration) -> String {
    format!("PT{}S", d.as_secs().max(1))
}

/// Serialises a body to bytes; our types always serialise.
pub(crate) fn to_body<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("Batch request types serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_examples() {
        let counts: TaskCountsResult = serde_json::from_str(
            r#"{"taskCounts":{"active":5,"running":7,"completed":4,"succeeded":2,"failed":2},
                "taskSlotCounts":{"active":5,"running":7,"completed":4,"succeeded":2,"failed":2}}"#,
        )
        .unwrap();
        assert_eq!(counts.task_counts.running, 7);
        let page: Page<TaskView> = serde_json::from_str(
            r#"{"value":[{"id":"t1","state":"completed","executionInfo":{"retryCount":1,"requeueCount":2,"exitCode":0,
                "result":"success","startTime":"2016-11-21T22:43:31.4733476Z"}}],
               "odata.nextLink":"https://a/jobs/j/tasks?$skiptoken=x"}"#,
        )
        .unwrap();
        assert_eq!(
            page.value[0].execution_info.as_ref().unwrap().requeue_count,
            2
        );
        assert!(page.next_link.is_some());
    }

    #[test]
    fn durations_are_iso8601() {
        assert_eq!(iso_duration(Duration::from_secs(1800)), "PT1800S");
        assert_eq!(iso_duration(Duration::from_millis(10)), "PT1S");
    }
}
