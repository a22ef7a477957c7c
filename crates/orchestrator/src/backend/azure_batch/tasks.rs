//! Tasks: one `BatchTaskCreateOptions` per input, and bulk submission through
//! `addtaskcollection` (at most 100 tasks and under 500 kB a request, halving on
//! `RequestBodyTooLarge`, per-task server errors retried, `TaskExists` counted as success,
//! several submitters in parallel, Batch out of reach waited out).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;

use super::client::{ApiError, BatchClient, Call};
use super::model::{
    self, JobPreparationTask, OutputFile, OutputFileBlobContainerDestination,
    OutputFileDestination, OutputFileUploadConfig, ResourceFile, TaskAddCollectionResult,
    TaskAddStatus, TaskConstraints, TaskCreate,
};
use crate::backend::kit::redact::redact;
use crate::task::TaskSpec;

/// Service limits for one `addtaskcollection` request.
pub(crate) const MAX_TASKS_PER_REQUEST: usize = 100;
/// The documented limit is 1 MiB, but the service counts the body in UTF-16: a recorded
/// 528,963-byte ASCII body came back 413 `RequestBodyTooLarge` with `MaxLimit: 1048576`
/// (tests/fixtures/azure-recordings/errors.json). UTF-8 never has fewer bytes than UTF-16
/// has code units, so bodies under 524,288 bytes always fit; keep a margin below that.
pub(crate) const MAX_BODY_BYTES: usize = 500_000;
/// Attempts for a task that keeps getting per-task `servererror`.
const MAX_TASK_ATTEMPTS: u32 = 8;
/// Attempts for one `addtaskcollection` call; longer trouble pauses the submission instead
/// (see [`Outage`]), as the watch does.
const SUBMIT_CALL_ATTEMPTS: u32 = 4;
/// Wait between tries while Batch does not answer.
const OUTAGE_PAUSE: Duration = Duration::from_secs(2);

/// The trainer's file name in the job preparation task's working directory.
pub(crate) const TRAINER_FILE: &str = "trainer";
/// File names the task sees in its working directory.
pub(crate) const OUTPUT_FILE: &str = "output.txt";
/// Left by the command line when the trainer exits 1 (bad input); see [`build_task`].
pub(crate) const BAD_INPUT_FILE: &str = "bad-input.txt";

/// Characters a word of the command line may hold without quoting.
pub(crate) fn is_plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+=,:@%/-".contains(c))
}

/// Where the job preparation task leaves the trainer on every node: the node's shared
/// directory, keyed by the trainer's digest (jobs of other runs on a reused pool keep theirs).
pub(crate) fn node_trainer(digest: &str) -> String {
    format!("$AZ_BATCH_NODE_SHARED_DIR/orchestrator/trainer-{digest}")
}

/// The job preparation task: downloads the trainer once per node (not once per task, which
/// filled nodes' disks: a 2 MB binary kept for every task's retention) and moves it into the
/// node's shared directory under its digest. Runs again harmlessly (the second job on a node
/// finds it there). Tasks wait for it (`waitForSuccess`).
pub(crate) fn trainer_preparation(
    trainer_url: &str,
    digest: &str,
    retention: Duration,
) -> JobPreparationTask {
    let target = node_trainer(digest);
    let script = format!(
        "t=\"{target}\"; if [ -x \"$t\" ]; then rm -f {TRAINER_FILE}; else \
         mkdir -p \"$AZ_BATCH_NODE_SHARED_DIR/orchestrator\" && mv -f {TRAINER_FILE} \"$t.part.$$\" \
         && mv -f \"$t.part.$$\" \"$t\"; fi"
    );
    JobPreparationTask {
        id: "orchestrator-trainer".into(),
        command_line: format!("/bin/sh -c '{script}'"),
        resource_files: vec![ResourceFile {
            http_url: trainer_url.into(),
            file_path: TRAINER_FILE.into(),
            file_mode: Some("0755".into()),
        }],
        constraints: TaskConstraints {
            max_wall_clock_time: None,
            retention_time: model::iso_duration(retention),
            // A download can fail for passing reasons; three tries before the node is given up.
            max_task_retry_count: 2,
        },
        wait_for_success: true,
        rerun_on_node_reboot_after_success: true,
    }
}

/// Everything one task body needs besides its spec.
pub(crate) struct TaskInputs<'a> {
    /// The trainer on the node ([`node_trainer`]).
    pub(crate) trainer_path: &'a str,
    /// Read SAS URL of this input's blob.
    pub(crate) input_url: &'a str,
    /// Output container URL with a create+write SAS.
    pub(crate) output_container_url: &'a str,
    /// Blob prefix for this task's files: `<run-id>/<task-id>`.
    pub(crate) output_prefix: &'a str,
    pub(crate) max_retries: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retention: Duration,
}

/// The task body: the input as a resource file, a `/bin/sh -c` command line running the
/// static trainer from the node's shared directory (no Python, no start task), result
/// uploaded on success and `../std*.txt` on completion.
///
/// Batch retries every non-zero exit (`maxTaskRetryCount`), but the trainer's exit 1 means bad
/// input, which no retry can fix. So the command line turns exit 1 into exit 0 plus a
/// [`BAD_INPUT_FILE`] marker (uploaded like the output), and the monitor reports such a task as
/// failed with exit code 1 after one attempt, as the local backend does.
pub(crate) fn build_task(spec: &TaskSpec, x: &TaskInputs<'_>) -> Result<TaskCreate, String> {
    // The input keeps its own name when it needs no quoting, so trainer errors name it.
    let input_file = if is_plain_word(&spec.input_name) && !spec.input_name.starts_with('-') {
        spec.input_name.clone()
    } else {
        "input.csv".to_owned()
    };
    if let Some(bad) = spec.trainer_args.iter().find(|a| !is_plain_word(a)) {
        return Err(format!(
            "trainer flag `{bad}` has characters the Batch command line would need to quote; \
             use only letters, digits and ._+=,:@%/-"
        ));
    }
    let mut script = format!("\"{}\" ./{input_file} ./{OUTPUT_FILE}", x.trainer_path);
    for a in &spec.trainer_args {
        script.push(' ');
        script.push_str(a);
    }
    script.push_str(&format!(
        "; rc=$?; if [ $rc -eq 1 ]; then echo 1 >./{BAD_INPUT_FILE}; exit 0; fi; exit $rc"
    ));
    let container = |path: String, pattern: &str, condition: &str| {
        output_file(x.output_container_url, pattern, path, condition)
    };
    Ok(TaskCreate {
        id: spec.task_id.clone(),
        display_name: spec.input_name.chars().take(1024).collect(),
        command_line: format!("/bin/sh -c '{script}'"),
        resource_files: vec![ResourceFile {
            http_url: x.input_url.into(),
            file_path: input_file,
            file_mode: None,
        }],
        output_files: vec![
            // One wildcard for the output and the bad-input marker: on success exactly one of
            // them exists, and a wildcard that matches one file of two is never an upload
            // error. Dot files (the trainer's temporary output) are not matched.
            container(x.output_prefix.to_owned(), "*.txt", "tasksuccess"),
            container(x.output_prefix.to_owned(), "../std*.txt", "taskcompletion"),
        ],
        constraints: TaskConstraints {
            max_wall_clock_time: x.timeout.map(model::iso_duration),
            retention_time: model::iso_duration(x.retention),
            max_task_retry_count: i32::try_from(x.max_retries).unwrap_or(i32::MAX),
        },
    })
}

/// Files matching `pattern` uploaded to the output container under `path` when `condition`
/// holds. A pattern without wildcards names the blob itself in `path`; with them, `path` is
/// the prefix (Batch's rule, and the stand-in's).
pub(crate) fn output_file(
    container_url: &str,
    pattern: &str,
    path: String,
    condition: &str,
) -> OutputFile {
    OutputFile {
        file_pattern: pattern.into(),
        destination: OutputFileDestination {
            container: OutputFileBlobContainerDestination {
                path,
                container_url: container_url.into(),
            },
        },
        upload_options: OutputFileUploadConfig {
            upload_condition: condition.into(),
        },
    }
}

/// One task ready to send: its id and serialised body.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) id: String,
    pub(crate) json: Arc<Vec<u8>>,
    attempts: u32,
}

impl Pending {
    pub(crate) fn new(task: &TaskCreate) -> Self {
        Self {
            id: task.id.clone(),
            json: Arc::new(model::to_body(task)),
            attempts: 0,
        }
    }

    /// A task with a given body (tests replaying recorded answers).
    #[cfg(test)]
    pub(crate) fn raw(id: &str, json: Vec<u8>) -> Self {
        Self {
            id: id.to_owned(),
            json: Arc::new(json),
            attempts: 0,
        }
    }
}

/// Submission result: tasks the service refused for good, with why.
#[derive(Debug, Default)]
pub(crate) struct Submitted {
    pub(crate) added: usize,
    pub(crate) already_existed: usize,
    pub(crate) rejected: Vec<(String, String)>,
    pub(crate) requests: usize,
    pub(crate) final_chunk_limit: usize,
}

struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    /// Tasks not yet resolved (queued or in flight).
    unresolved: AtomicUsize,
    /// Current chunk limit; only ever lowered.
    limit: AtomicUsize,
    result: Mutex<Submitted>,
    fatal: Mutex<Option<String>>,
    outage: Mutex<Outage>,
}

/// Batch not answering during submission: the tasks in flight are requeued (their ids make a
/// resend safe: one that did arrive comes back `TaskExists`) and every submitter waits, up to
/// `patience` (the job's own cap), instead of ending the run.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    patience: Duration,
}

impl Outage {
    /// A call failed for a transient reason; an error once the outage outlasted `patience`.
    fn failed(&mut self, job_id: &str, e: &ApiError) -> Result<(), String> {
        let Some(since) = self.since else {
            tracing::warn!(
                job = %job_id,
                "Azure Batch does not answer ({e}); adding tasks is paused and resumes when it \
                 answers (up to {:?}, the job's cap)",
                self.patience
            );
            self.since = Some(Instant::now());
            return Ok(());
        };
        if since.elapsed() >= self.patience {
            return Err(format!(
                "adding tasks to job `{job_id}` failed: Azure Batch has not answered for {:.0} s: {e}",
                since.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    }

    fn answered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                "Azure Batch answers again after {:.0} s; adding tasks resumes",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// Adds every task to `job_id` with `submitters` parallel workers, waiting out Batch being
/// out of reach for up to `patience`.
pub(crate) async fn submit_all(
    client: Arc<BatchClient>,
    job_id: &str,
    tasks: Vec<Pending>,
    submitters: usize,
    patience: Duration,
) -> Result<Submitted, String> {
    let shared = Arc::new(Shared {
        unresolved: AtomicUsize::new(tasks.len()),
        queue: Mutex::new(tasks.into()),
        limit: AtomicUsize::new(MAX_TASKS_PER_REQUEST),
        result: Mutex::new(Submitted::default()),
        fatal: Mutex::new(None),
        outage: Mutex::new(Outage {
            since: None,
            patience,
        }),
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..submitters.max(1) {
        let (client, shared, job) = (client.clone(), shared.clone(), job_id.to_owned());
        workers.spawn(async move { worker(&client, &shared, &job).await });
    }
    while let Some(r) = workers.join_next().await {
        r.map_err(|e| format!("task submitter crashed: {e}"))?;
    }
    if let Some(f) = shared.fatal.lock().expect("lock").take() {
        return Err(f);
    }
    let mut out = std::mem::take(&mut *shared.result.lock().expect("lock"));
    out.final_chunk_limit = shared.limit.load(Ordering::Relaxed);
    Ok(out)
}

/// Takes the next chunk: up to the current limit, and under the byte limit.
fn take_chunk(shared: &Shared) -> Vec<Pending> {
    let limit = shared.limit.load(Ordering::Relaxed);
    let mut q = shared.queue.lock().expect("lock");
    let mut chunk = Vec::new();
    let mut bytes = r#"{"value":[]}"#.len();
    while chunk.len() < limit {
        let Some(next) = q.front() else { break };
        let add = next.json.len() + usize::from(!chunk.is_empty());
        if !chunk.is_empty() && bytes + add >= MAX_BODY_BYTES {
            break;
        }
        bytes += add;
        chunk.push(q.pop_front().expect("front exists"));
    }
    chunk
}

fn body_of(chunk: &[Pending]) -> Vec<u8> {
    let mut body = Vec::with_capacity(chunk.iter().map(|p| p.json.len() + 1).sum::<usize>() + 12);
    body.extend_from_slice(br#"{"value":["#);
    for (i, p) in chunk.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&p.json);
    }
    body.extend_from_slice(b"]}");
    body
}

async fn worker(client: &BatchClient, shared: &Shared, job_id: &str) {
    loop {
        if shared.fatal.lock().expect("lock").is_some()
            || shared.unresolved.load(Ordering::Acquire) == 0
        {
            return;
        }
        let chunk = take_chunk(shared);
        if chunk.is_empty() {
            // Others hold the remaining tasks in flight; some may come back.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let call = Call::new(Method::POST, format!("/jobs/{job_id}/addtaskcollection"))
            .json(body_of(&chunk))
            .attempts(SUBMIT_CALL_ATTEMPTS);
        shared.result.lock().expect("lock").requests += 1;
        let sent = client.send_json::<TaskAddCollectionResult>(&call).await;
        if !sent.as_ref().is_err_and(ApiError::is_transient) {
            shared.outage.lock().expect("lock").answered();
        }
        match sent {
            Ok(res) => handle_results(shared, chunk, res),
            Err(e) if e.is_code("RequestBodyTooLarge") || e.status == Some(413) => {
                if chunk.len() == 1 {
                    let p = &chunk[0];
                    reject(
                        shared,
                        p,
                        format!(
                            "task body alone is too large for Batch ({} bytes)",
                            p.json.len()
                        ),
                    );
                } else {
                    let half = chunk.len() / 2;
                    let before = shared.limit.fetch_min(half, Ordering::AcqRel);
                    if half < before {
                        tracing::info!(
                            limit = half,
                            "Batch said RequestBodyTooLarge; halving tasks per request"
                        );
                    }
                    requeue(shared, chunk);
                }
            }
            Err(e) if e.is_transient() => {
                requeue(shared, chunk);
                let lasting = shared.outage.lock().expect("lock").failed(job_id, &e);
                if let Err(f) = lasting {
                    *shared.fatal.lock().expect("lock") = Some(f);
                    return;
                }
                tokio::time::sleep(OUTAGE_PAUSE).await;
            }
            Err(e) => {
                // Anything but no answer, throttling or a server error is not something more
                // attempts will fix.
                *shared.fatal.lock().expect("lock") =
                    Some(format!("adding tasks to job `{job_id}` failed: {e}"));
                return;
            }
        }
    }
}

fn handle_results(shared: &Shared, chunk: Vec<Pending>, res: TaskAddCollectionResult) {
    let mut by_id: std::collections::HashMap<String, Pending> =
        chunk.into_iter().map(|p| (p.id.clone(), p)).collect();
    let mut retry = Vec::new();
    for r in res.value {
        // Results come back in any order; match them by task id.
        let Some(mut p) = by_id.remove(&r.task_id) else {
            continue;
        };
        let code = r
            .error
            .as_ref()
            .and_then(|e| e.code.clone())
            .unwrap_or_default();
        let exists = r.error.as_ref().is_some_and(|e| e.is_code("TaskExists"));
        match r.status {
            TaskAddStatus::Success => resolve(shared, |s| s.added += 1),
            TaskAddStatus::ClientError if exists => resolve(shared, |s| s.already_existed += 1),
            TaskAddStatus::ServerError => {
                p.attempts += 1;
                if p.attempts >= MAX_TASK_ATTEMPTS {
                    reject(
                        shared,
                        &p,
                        format!("Batch kept answering ServerError ({code}) when adding the task"),
                    );
                } else {
                    retry.push(p);
                }
            }
            _ => {
                let msg = r
                    .error
                    .as_ref()
                    .and_then(|e| e.message.as_ref().map(|m| m.value.clone()))
                    .unwrap_or_default();
                reject(
                    shared,
                    &p,
                    redact(&format!("Batch refused the task: {code} {msg}")),
                );
            }
        }
    }
    // Tasks missing from the answer: state unknown, resend with the same ids.
    retry.extend(by_id.into_values());
    requeue(shared, retry);
}

fn resolve(shared: &Shared, f: impl FnOnce(&mut Submitted)) {
    f(&mut shared.result.lock().expect("lock"));
    shared.unresolved.fetch_sub(1, Ordering::AcqRel);
}

fn reject(shared: &Shared, p: &Pending, why: String) {
    tracing::warn!(task = %p.id, "{why}");
    resolve(shared, |s| s.rejected.push((p.id.clone(), why)));
}

fn requeue(shared: &Shared, items: Vec<Pending>) {
    let mut q = shared.queue.lock().expect("lock");
    for p in items.into_iter().rev() {
        q.push_front(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, args: &[&str]) -> TaskSpec {
        TaskSpec {
            task_id: "t-0123456789abcdef".into(),
            input_name: name.into(),
            input_digest: "d".repeat(64),
            trainer_args: args.iter().map(|s| (*s).to_owned()).collect(),
            prior_attempts: 0,
        }
    }

    fn inputs() -> TaskInputs<'static> {
        TaskInputs {
            trainer_path: "$AZ_BATCH_NODE_SHARED_DIR/orchestrator/trainer-abc",
            input_url: "https://acct.blob.core.windows.net/orch-stage/abc?sv=2022-11-02&sp=r&sig=SIG",
            output_container_url: "https://acct.blob.core.windows.net/orch-out?sv=2022-11-02&sp=cw&sig=SIG",
            output_prefix: "run-1/t-0123456789abcdef",
            max_retries: 2,
            timeout: Some(Duration::from_secs(1800)),
            retention: Duration::from_secs(600),
        }
    }

    #[test]
    fn task_body_snapshot() {
        let t = build_task(&spec("iris.csv", &["--threads", "1"]), &inputs()).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&model::to_body(&t)).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(include_str!("snapshots/task.json")).unwrap();
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    }

    #[test]
    fn odd_input_names_get_a_plain_file_name_and_odd_flags_are_refused() {
        let t = build_task(&spec("my data (1).csv", &[]), &inputs()).unwrap();
        assert_eq!(t.resource_files[0].file_path, "input.csv");
        assert!(t.command_line.contains("./input.csv"));
        assert!(build_task(&spec("a.csv", &["it's"]), &inputs()).is_err());
    }

    /// A fake `addtaskcollection` answering in the service's casing (`Success`, `ClientError`,
    /// `ServerError`): refuses bodies of more than 25 tasks, answers TaskExists for ids ending
    /// in 7, a per-task ServerError the first time an id ending in 3 arrives, a permanent
    /// ClientError for id t-13, and returns results in reverse order.
    #[tokio::test]
    async fn submission_halves_retries_and_counts_existing_tasks() {
        use super::super::client::{Auth, RetryPolicy};
        use super::super::testserver::{self, Answer, error_body};
        let tries: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
        let t2 = tries.clone();
        let server = testserver::start(move |_, req| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let tasks = body["value"].as_array().unwrap();
            if tasks.len() > 25 {
                return Answer::Reply(413, vec![], error_body("RequestBodyTooLarge"));
            }
            let mut results = Vec::new();
            for t in tasks.iter().rev() {
                let id = t["id"].as_str().unwrap().to_owned();
                let n = {
                    let mut m = t2.lock().unwrap();
                    let e = m.entry(id.clone()).or_insert(0);
                    *e += 1;
                    *e
                };
                let r = if id == "t-13" {
                    serde_json::json!({"status":"ClientError","taskId":id,"error":{"code":"InvalidPropertyValue","message":{"value":"bad"}}})
                } else if id.ends_with('7') {
                    serde_json::json!({"status":"ClientError","taskId":id,"error":{"code":"TaskExists","message":{"value":"exists"}}})
                } else if id.ends_with('3') && n == 1 {
                    serde_json::json!({"status":"ServerError","taskId":id,"error":{"code":"ServerBusy"}})
                } else {
                    serde_json::json!({"status":"Success","taskId":id})
                };
                results.push(r);
            }
            Answer::Reply(200, vec![], serde_json::json!({"value": results}).to_string())
        })
        .await;
        let auth = Auth::SharedKey {
            account: "a".into(),
            key: b"k".to_vec(),
        };
        let client = Arc::new(
            BatchClient::new(&server.url, "2025-06-01", auth, RetryPolicy::default()).unwrap(),
        );
        let pending: Vec<Pending> = (0..230)
            .map(|i| {
                let mut s = spec("x.csv", &[]);
                s.task_id = format!("t-{i}");
                Pending::new(&build_task(&s, &inputs()).unwrap())
            })
            .collect();
        let out = submit_all(client, "job", pending, 3, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(out.rejected[0].0, "t-13");
        assert_eq!(out.already_existed, 23);
        assert_eq!(out.added + out.already_existed + out.rejected.len(), 230);
        assert!(
            out.final_chunk_limit <= 25,
            "limit {}",
            out.final_chunk_limit
        );
        let tries = tries.lock().unwrap();
        assert_eq!(tries.len(), 230, "every task reached the service");
        assert_eq!(tries["t-3"], 2, "a per-task servererror is retried once");
        assert_eq!(tries["t-4"], 1, "a successful task is never resent");
    }

    /// Batch dropping every connection for longer than the job may run: the submission waits
    /// that long, then fails with how long it waited (it does not end at the first failure).
    #[tokio::test]
    async fn an_outage_longer_than_the_patience_ends_the_submission() {
        use super::super::client::{Auth, RetryPolicy};
        use super::super::testserver::{self, Answer};
        let server = testserver::start(|_, _| Answer::Drop).await;
        let auth = Auth::SharedKey {
            account: "a".into(),
            key: b"k".to_vec(),
        };
        let retry = RetryPolicy {
            base: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let client = Arc::new(BatchClient::new(&server.url, "2025-06-01", auth, retry).unwrap());
        let pending = vec![Pending::new(
            &build_task(&spec("x.csv", &[]), &inputs()).unwrap(),
        )];
        let t0 = Instant::now();
        let e = submit_all(client, "job", pending, 2, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(t0.elapsed() >= Duration::from_secs(3), "{:?}", t0.elapsed());
        assert!(e.contains("has not answered for"), "{e}");
        assert!(server.seen.lock().unwrap().len() > 2 * SUBMIT_CALL_ATTEMPTS as usize);
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let shared = Shared {
            queue: Mutex::new(VecDeque::new()),
            unresolved: AtomicUsize::new(0),
            limit: AtomicUsize::new(MAX_TASKS_PER_REQUEST),
            result: Mutex::new(Submitted::default()),
            fatal: Mutex::new(None),
            outage: Mutex::default(),
        };
        for i in 0..250 {
            shared.queue.lock().unwrap().push_back(Pending {
                id: format!("t{i}"),
                json: Arc::new(vec![b' '; 20_000]),
                attempts: 0,
            });
        }
        let c = take_chunk(&shared);
        assert_eq!(c.len(), 24, "24 x 20 kB + commas stays under 500 kB");
        assert!(body_of(&c).len() < MAX_BODY_BYTES);
        shared.limit.store(10, Ordering::Relaxed);
        assert_eq!(take_chunk(&shared).len(), 10);
    }
}
