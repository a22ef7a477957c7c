//! End to end on the Azure Batch backend, without Azure: Azurite (started through
//! `scripts/azurite.sh`) for Blob Storage and the project's Batch stand-in (in-process, port 0)
//! for the Batch REST API, with faults injected. The report's scores must equal the goldens.

#[path = "util.rs"]
mod util;

#[path = "azure_util.rs"]
mod azure_util;

/// Jobs that end early, failures after the pool exists, outages, tokens (issue 12, items 3-6).
#[path = "azure_ops.rs"]
mod ops;

#[path = "sweep_golden.rs"]
mod sweep_golden;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use azure_util::{ACCOUNT, KEY, azurite, azurite_connection, fault, standin, standin_with};
use base64::Engine as _;
use batch_standin::Fault;
use util::{Scratch, assert_golden_scores, golden_default_outputs, row, rows, show, trainer_bin};

/// The orchestrator pointed at the stand-in and Azurite.
fn orchestrator(s: &Scratch, url: &str) -> Command {
    let mut cmd = s.command();
    azure_util::standin_env(&mut cmd, url);
    cmd.env("RUST_LOG", "info");
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run orchestrator"))
        .await
        .unwrap()
}

/// Runs `cmd`, which must fail within a minute (a watchdog verdict, not a time-out), and
/// returns what it printed.
async fn fails_fast(cmd: Command) -> String {
    let t0 = Instant::now();
    let out = output(cmd).await;
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "must fail fast, took {:?}",
        t0.elapsed()
    );
    text
}

fn run_args(s: &Scratch, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--out".into(),
        s.out().display().to_string(),
        "run".into(),
        s.inputs().display().to_string(),
        "--backend".into(),
        "azure-batch".into(),
        "--trainer".into(),
        trainer_bin().display().to_string(),
        "--batch-poll-interval".into(),
        "300ms".into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// What almost every test here starts from: Azurite up, a scratch directory, and the stand-in
/// (with `faults` armed) keeping its state in it.
async fn start(faults: Vec<Fault>) -> (Scratch, batch_standin::Handle) {
    azurite();
    let s = Scratch::new();
    let handle = standin(s.path(), faults).await;
    (s, handle)
}

/// `orchestrator run` of the scratch's inputs on the stand-in, with the real trainer, 300 ms
/// polls and `extra` flags; not started.
fn run_cmd(s: &Scratch, handle: &batch_standin::Handle, extra: &[&str]) -> Command {
    let mut cmd = orchestrator(s, &handle.url());
    cmd.args(run_args(s, extra));
    cmd
}

/// Waits for a spawned orchestrator (its output piped) without blocking the stand-in.
async fn wait_output(child: std::process::Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Runs `cmd`, which must succeed; returns what it printed.
async fn run_ok(cmd: Command) -> String {
    let out = output(cmd).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    text
}

/// Every task of `job` on the stand-in ran once: no retry, no requeue.
async fn assert_no_task_ran_twice(url: &str, job: &str) {
    let tasks = standin_get(url, &format!("/jobs/{job}/tasks"), "id,executionInfo").await;
    for t in tasks["value"].as_array().unwrap() {
        let e = &t["executionInfo"];
        assert_eq!(
            (e["retryCount"].as_u64(), e["requeueCount"].as_u64()),
            (Some(0), Some(0)),
            "no task ran twice: {t}"
        );
    }
}

fn copy_all_inputs(s: &Scratch) -> Vec<(String, String)> {
    let golden = golden_default_outputs();
    assert!(golden.len() >= 5, "goldens for input_files/: {golden:?}");
    for (name, _) in &golden {
        s.copy_input(name, name);
    }
    golden
}

/// No SAS signature or key may reach a log line or the report.
fn assert_no_secrets(text: &str) {
    for (i, _) in text.match_indices("sig=") {
        let tail = &text[i + 4..];
        assert!(
            tail.starts_with("REDACTED") || tail.starts_with('<'),
            "a SAS signature leaked: {}",
            &text[i..(i + 40).min(text.len())]
        );
    }
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    assert!(!text.contains(&key), "the Batch account key leaked");
}

/// Runs every input of `input_files/` with `faults` armed; checks the report against the
/// goldens and returns the orchestrator's log and the total requeue count.
async fn run_all_with_faults(faults: Vec<Fault>, slow_start: bool) -> (String, u64) {
    let (s, handle) = start(faults).await;
    let golden = copy_all_inputs(&s);
    let mut cmd = orchestrator(&s, &handle.url());
    if slow_start {
        // Each task idles a second first, so a preemption lands while it runs.
        let trainer = slow_trainer(&s, 1);
        cmd.args(run_args_with(&s, &trainer, &["--nodes", "3"]));
    } else {
        cmd.args(run_args(&s, &[]));
    }
    let t0 = Instant::now();
    let out = output(cmd).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "took {:?}",
        t0.elapsed()
    );
    let run_dir = s.run_dir();
    let rows = rows(&run_dir);
    assert_eq!(rows.len(), golden.len());
    assert_golden_scores(&rows, &golden, &text);
    let mut requeued = 0;
    let mut batch_tasks = std::collections::HashSet::new();
    for (name, line) in &golden {
        let r = row(&rows, name);
        let task_dir = run_dir.join("tasks").join(r["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            *line,
            "{name}"
        );
        let batch: serde_json::Value =
            serde_json::from_slice(&std::fs::read(task_dir.join("batch-task.json")).unwrap())
                .unwrap();
        let batch_requeues = batch["executionInfo"]["requeueCount"].as_u64().unwrap_or(0);
        // The run report carries Batch's requeue count for every task, succeeded ones too.
        assert_eq!(
            r["requeues"].as_u64(),
            Some(batch_requeues),
            "{name}: {r:#}"
        );
        // A pack's inputs share its Batch task (and its requeues): count each Batch task once.
        if batch_tasks.insert(batch["taskId"].as_str().unwrap_or(name).to_owned()) {
            requeued += batch_requeues;
        }
    }
    let report = std::fs::read_to_string(run_dir.join("report.json")).unwrap();
    assert_no_secrets(&text);
    assert_no_secrets(&report);
    handle.shutdown().await;
    (text, requeued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scores_equal_goldens_through_throttling_dropped_connections_and_preemption() {
    let (log, requeued) = run_all_with_faults(vec![
        // Throttling with Retry-After on the pool create and on task counts.
        fault(serde_json::json!({"kind": "status", "status": 503, "count": 1, "retryAfter": 1, "pathContains": "/pools", "method": "POST"})),
        fault(serde_json::json!({"kind": "status", "status": 429, "count": 2, "retryAfter": 1, "pathContains": "/taskcounts"})),
        // The task collection is added, then the connection drops: the retry with the same
        // task ids must come back as TaskExists and count as success.
        fault(serde_json::json!({"kind": "drop", "count": 1, "after": true, "pathContains": "addtaskcollection"})),
        // One per-task server error, and one preempted node (the task is requeued).
        fault(serde_json::json!({"kind": "taskServerError", "count": 1})),
        fault(serde_json::json!({"kind": "preempt", "count": 1, "delayMs": 300})),
    ], true)
    .await;
    assert_eq!(requeued, 1, "the preempted Batch task was requeued once");
    assert!(
        log.contains("existed=") && !log.contains("existed=0"),
        "the resubmitted tasks came back as TaskExists:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scores_equal_goldens_when_requests_must_be_halved() {
    // Six tasks do not fit one request under this limit: RequestBodyTooLarge, then halving.
    let (log, _) = run_all_with_faults(
        vec![fault(
            serde_json::json!({"kind": "bodyLimit", "bytes": 4000}),
        )],
        false,
    )
    .await;
    assert!(log.contains("halving"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fatal_pool_resize_error_fails_fast_with_the_quota_named() {
    let faults = vec![fault(
        serde_json::json!({"kind": "resizeError", "code": "AccountCoreQuotaReached", "message": "core quota reached"}),
    )];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    let text = fails_fast(run_cmd(&s, &handle, &[])).await;
    assert!(
        text.contains("AccountCoreQuotaReached") && text.contains("Quotas"),
        "{text}"
    );
    handle.shutdown().await;
}

/// A refused `addtaskcollection` ends the run with one `error:` line that gives Batch's answer
/// once (the backend error's own text holds its cause, and the chain used to repeat it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_task_collection_names_its_cause_once() {
    let faults = vec![fault(serde_json::json!({
        "kind": "status", "status": 400, "count": 100, "code": "InvalidPropertyValue",
        "pathContains": "addtaskcollection", "method": "POST"
    }))];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    let text = fails_fast(run_cmd(&s, &handle, &[])).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in\n{text}"));
    assert_eq!(line.matches("InvalidPropertyValue").count(), 1, "{line}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_prints_the_request_bodies_and_sends_nothing() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    // Nothing listens on port 9: any request would fail the run.
    let mut cmd = orchestrator(&s, "http://127.0.0.1:9");
    cmd.env("AZURE_STORAGE_CONNECTION_STRING", azurite_connection(9));
    cmd.args(run_args(
        &s,
        &[
            "--dry-run",
            "--spot-nodes",
            "3",
            "--vm-size",
            "Standard_D4s_v5",
            "--inputs-per-task",
            "2",
        ],
    ));
    let out = output(cmd).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        // The two tiny inputs of the pack come as one bundle blob, unpacked on the node.
        "\"filePath\": \"bundle.tar\"",
        "<sha256 of the bundle of 2 inputs>?<SAS sp=r, signature elided>",
        "tar -xf bundle.tar",
        // The default pool is an auto-pool: it lives and dies with the job.
        "\"autoPoolSpecification\"",
        "\"poolLifetimeOption\": \"job\"",
        "\"targetLowPriorityNodes\": 3",
        "\"targetDedicatedNodes\": 0",
        "\"nodeAgentSKUId\": \"batch.node.ubuntu 24.04\"",
        "POST /jobs",
        "\"onAllTasksComplete\": \"noaction\"",
        "addtaskcollection",
        "\"fileMode\": \"0755\"",
        "\"uploadCondition\": \"taskcompletion\"",
        "\"onAllTasksComplete\": \"terminatejob\"",
        // --concurrency does not apply to Batch, and the plan does not pretend it does.
        "concurrency: as many at once as the pool has task slots",
    ] {
        assert!(stdout.contains(needle), "missing {needle} in\n{stdout}");
    }
    assert_no_secrets(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arm64_vm_sizes_are_refused_before_anything_is_created() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let mut cmd = orchestrator(&s, "http://127.0.0.1:9");
    cmd.args(run_args(&s, &["--vm-size", "Standard_D2ps_v5"]));
    let out = output(cmd).await;
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("Arm64") && text.contains("x86_64"), "{text}");
}

/// `GET` on the stand-in, signed with Batch Shared Key (to look at what is left).
async fn standin_get(url: &str, path: &str, select: &str) -> serde_json::Value {
    let date = httpdate_now();
    let query = format!("api-version=2025-06-01&$select={select}");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("ocp-date", date.parse().unwrap());
    let sts = batch_standin::string_to_sign("GET", path, &query, &headers, ACCOUNT);
    let auth = format!("SharedKey {ACCOUNT}:{}", batch_standin::sign(KEY, &sts));
    let r = reqwest::Client::new()
        .get(format!("{url}{path}?{query}"))
        .header("ocp-date", date)
        .header("authorization", auth)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.unwrap()
}

/// `orchestrator resume` of the scratch's run (polling every 300 ms), which must succeed; the
/// text `show` makes of its output.
async fn resume_run(s: &Scratch, url: &str) -> String {
    let run_id = s
        .run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut resume = orchestrator(s, url);
    resume
        .arg("--out")
        .arg(s.out())
        .args(["resume", &run_id, "--batch-poll-interval", "300ms"]);
    let out = output(resume).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    text
}

async fn standin_ids(url: &str, path: &str) -> Vec<String> {
    let v = standin_get(url, path, "id").await;
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the stand-in has a job with `n` tasks; returns the job id.
async fn wait_for_tasks(url: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(job) = standin_ids(url, "/jobs").await.into_iter().next() {
            let tasks = standin_get(url, &format!("/jobs/{job}/tasks"), "id,state").await;
            if tasks["value"].as_array().is_some_and(|t| t.len() == n) {
                return job;
            }
        }
        assert!(Instant::now() < deadline, "no job with {n} tasks appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A "trainer" that takes `seconds` before running the real one (a long task).
fn slow_trainer(s: &Scratch, seconds: u32) -> std::path::PathBuf {
    s.script(
        "slow-trainer",
        &format!(
            "sleep {seconds}\nexec '{}' \"$@\"\n",
            trainer_bin().display()
        ),
    )
}

fn run_args_with(s: &Scratch, trainer: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = run_args(s, extra);
    let i = v.iter().position(|a| a == "--trainer").unwrap();
    v[i + 1] = trainer.display().to_string();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_terminates_the_job_and_deletes_the_pool() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let trainer = slow_trainer(&s, 30);
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(&s, &trainer, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let t0 = Instant::now();
    let out = wait_output(child).await;
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "shutdown took {:?}",
        t0.elapsed()
    );
    assert!(!out.status.success(), "a cancelled run is not a success");
    let state = standin_get(&handle.url(), &format!("/jobs/{job}"), "id,state").await;
    assert!(
        matches!(state["state"].as_str(), Some("terminating" | "completed")),
        "{state}"
    );
    // The run's auto-pool goes with the job once it has finished terminating.
    ops::assert_pools_released(&handle.url()).await;
    handle.shutdown().await;
}

/// Starts a run of every golden input with `flags` and a trainer that takes `seconds` per
/// input, SIGKILLs it once its `tasks` Batch tasks are in, resumes it, and checks the resume
/// reused the job and its Batch tasks, ran no task twice and scored every input right.
async fn kill_and_resume(flags: &[&str], seconds: u32, tasks: impl Fn(usize) -> usize) {
    let (s, handle) = start(vec![]).await;
    let golden = copy_all_inputs(&s);
    let trainer = slow_trainer(&s, seconds);
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(&s, &trainer, flags))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), tasks(golden.len())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap(); // SIGKILL: no cleanup at all, the job keeps running on Batch.
    child.wait().unwrap();

    let text = resume_run(&s, &handle.url()).await;
    assert_eq!(
        standin_ids(&handle.url(), "/jobs").await,
        vec![job.clone()],
        "resume reused the job"
    );
    let ids = standin_ids(&handle.url(), &format!("/jobs/{job}/tasks")).await;
    assert_eq!(
        ids.len(),
        tasks(golden.len()),
        "the same Batch tasks: {ids:?}"
    );
    assert_no_task_ran_twice(&handle.url(), &job).await;
    assert_golden_scores(&rows(&s.run_dir()), &golden, &text);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_run_resumes_on_the_same_job_without_rerunning_tasks() {
    // One Batch task per input: the test follows each input's Batch task.
    let flags = [
        "--nodes",
        "2",
        "--task-slots",
        "2",
        "--inputs-per-task",
        "1",
    ];
    kill_and_resume(&flags, 3, |n| n).await;
}

/// A killed packed run resumes on the same packs: the resume finds them in
/// `RUN/azure-packs.json` (not packed anew, so not submitted a second time under other ids),
/// re-adds them as `TaskExists`, and no input runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_packed_run_resumes_on_the_same_packs() {
    let flags = [
        "--nodes",
        "2",
        "--task-slots",
        "1",
        "--inputs-per-task",
        "3",
    ];
    kill_and_resume(&flags, 1, |n| n.div_ceil(3)).await;
}

fn httpdate_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_pool_then_cleanup_removes_job_pool_and_outputs() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    let out = output(run_cmd(&s, &handle, &["--keep-pool"])).await;
    assert!(out.status.success(), "{}", show(&out));
    let run_dir = s.run_dir();
    let run_id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let pools = standin_ids(&handle.url(), "/pools").await;
    assert!(
        pools.iter().any(|p| p.contains(&run_id)),
        "--keep-pool kept the pool: {pools:?}"
    );
    assert!(!standin_ids(&handle.url(), "/jobs").await.is_empty());

    let mut cleanup = orchestrator(&s, &handle.url());
    cleanup.arg("--out").arg(s.out()).args(["cleanup", &run_id]);
    let out = output(cleanup).await;
    assert!(out.status.success(), "{}", show(&out));
    // Deletion is asynchronous on Batch: pools and jobs linger in `deleting` for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pools = standin_ids(&handle.url(), "/pools").await;
        let jobs = standin_ids(&handle.url(), "/jobs").await;
        if !pools.iter().any(|p| p.contains(&run_id)) && jobs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cleanup left pools {pools:?} and jobs {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Results already collected stay.
    assert!(run_dir.join("report.json").is_file());
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_whose_nodes_all_fail_their_start_stops_with_their_stderr() {
    let faults = vec![fault(serde_json::json!({
        "kind": "nodeFailure", "state": "starttaskfailed", "nodes": 1,
        "stderr": "mount: /data: permission denied"
    }))];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    let text = fails_fast(run_cmd(&s, &handle, &["--nodes", "1"])).await;
    assert!(
        text.contains("starttaskfailed") && text.contains("permission denied"),
        "{text}"
    );
    handle.shutdown().await;
}

/// Storage refuses the trainer blob's SAS on every node: the job preparation task fails there
/// for good, no task can ever start, and the run stops at once with one line naming the
/// nodes, the preparation task's failureInfo (no signature in it) and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_preparation_task_failing_on_every_node_stops_the_run_with_its_failure() {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(trainer_bin()).unwrap()));
    let faults = vec![fault(serde_json::json!({
        "kind": "sasRefused", "urlContains": digest, "count": 100
    }))];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let text = fails_fast(run_cmd(&s, &handle, &["--nodes", "2"])).await;
    let line = text
        .lines()
        .find(|l| l.contains("job preparation task"))
        .unwrap_or_else(|| panic!("no line names the job preparation task:\n{text}"));
    for needle in [
        "failed on every node",
        "node ",
        "BlobAccessDenied",
        "attempt(s))",
        "trainer's blob",
        "run the same command again",
    ] {
        assert!(line.contains(needle), "missing {needle} in: {line}");
    }
    assert!(!line.contains("sig=refused"), "{line}");
    assert_no_secrets(&text);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_auto_pool_with_spot_nodes_runs_and_dies_with_the_job() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let text = run_ok(run_cmd(&s, &handle, &["--auto-pool", "--spot-nodes", "2"])).await;
    let golden: Vec<_> = golden_default_outputs()
        .into_iter()
        .filter(|(n, _)| n == "iris.csv" || n == "wine.csv")
        .collect();
    assert_golden_scores(&rows(&s.run_dir()), &golden, &text);
    // The job was switched to terminatejob, so it completed, and its auto-pool goes with it.
    ops::assert_pools_released(&handle.url()).await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_csv_fails_only_its_task_with_the_trainers_error_and_exit_code() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    s.write_input("broken.csv", "a,b,label\n1,2,x\n3,oops\n");
    let out = output(run_cmd(&s, &handle, &["--retries", "1"])).await;
    let text = show(&out);
    assert!(
        !out.status.success(),
        "a failed task makes the run fail: {text}"
    );
    let rows = rows(&s.run_dir());
    assert_eq!(row(&rows, "iris.csv")["status"], "succeeded", "{rows:#?}");
    let bad = row(&rows, "broken.csv");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert_eq!(bad["exit_code"], 1, "{bad:#}");
    // Bad input is never retried, although Batch retries every non-zero exit (--retries 1):
    // the command line reports exit 1 to Batch as success plus a marker.
    assert_eq!(bad["attempts"], 1, "{bad:#}");
    assert!(
        bad["failure"]
            .as_str()
            .is_some_and(|f| f.contains("rejected the input")),
        "{bad:#}"
    );
    assert!(
        bad["stderr_tail"]
            .as_str()
            .is_some_and(|t| t.contains("broken.csv")),
        "{bad:#}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_killed_after_its_job_finished_collects_instead_of_rerunning() {
    let (s, handle) = start(vec![]).await;
    let golden = copy_all_inputs(&s);
    let mut cmd = orchestrator(&s, &handle.url());
    // A long poll interval: the tasks finish and the job terminates while the orchestrator sleeps.
    // One Batch task per input: the test follows each input's Batch task.
    let mut args = run_args(
        &s,
        &[
            "--nodes",
            "3",
            "--task-slots",
            "2",
            "--inputs-per-task",
            "1",
        ],
    );
    let i = args.iter().position(|a| a == "300ms").unwrap();
    args[i] = "60s".into();
    cmd.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), golden.len()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = standin_get(&handle.url(), &format!("/jobs/{job}"), "id,state").await;
        if j["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "job never completed: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let text = resume_run(&s, &handle.url()).await;
    assert_eq!(
        standin_ids(&handle.url(), "/jobs").await,
        vec![job],
        "no second job was needed"
    );
    assert_golden_scores(&rows(&s.run_dir()), &golden, &text);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_run_resumes_on_a_new_job_and_finishes() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    let trainer = slow_trainer(&s, 8);
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(&s, &trainer, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
    // The terminated task must run again (the manifest still has the trainer wrapper; swap
    // its behaviour by making the wrapper fast now).
    std::fs::write(
        &trainer,
        format!("#!/bin/sh\nexec '{}' \"$@\"\n", trainer_bin().display()),
    )
    .unwrap();
    resume_run(&s, &handle.url()).await;
    let jobs = standin_ids(&handle.url(), "/jobs").await;
    assert!(
        jobs.contains(&job) && jobs.contains(&format!("{job}-r1")),
        "{jobs:?}"
    );
    assert_eq!(row(&rows(&s.run_dir()), "iris.csv")["status"], "succeeded");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_over_its_time_limit_is_reported_timed_out() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    let trainer = slow_trainer(&s, 60);
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(
        &s,
        &trainer,
        &["--timeout", "2s", "--retries", "0"],
    ));
    let t0 = Instant::now();
    let out = output(cmd).await;
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "took {:?}",
        t0.elapsed()
    );
    let r = row(&rows(&s.run_dir()), "iris.csv").clone();
    assert_eq!(r["status"], "timed_out", "{r:#}");
    handle.shutdown().await;
}

/// The stand-in answers as the real service does (`"status": "Success"`, PascalCase echoes,
/// `odata.metadata`, lower-case vmSize, lasting `terminating`/`deleting` states; see
/// tests/fixtures/azure-recordings/) and here its task counts also lag by more than a poll:
/// every input gets the same status, score, exit code and attempts as on the local backend,
/// and the bad CSV fails only its own task, once, with the trainer's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answered_like_azure_every_input_matches_the_local_backend() {
    azurite();
    let fill = |s: &Scratch| {
        copy_all_inputs(s);
        s.write_input("broken.csv", "a,b,label\n1,2,x\n3,oops\n");
    };
    let local = Scratch::new();
    fill(&local);
    let out = local.run(&trainer_bin(), &["--retries", "1"]);
    assert!(
        !out.status.success(),
        "the bad CSV fails the run: {}",
        show(&out)
    );
    let local_rows = rows(&local.run_dir());

    let s = Scratch::new();
    fill(&s);
    let mut c = batch_standin::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        ACCOUNT,
        s.path().join("standin"),
    );
    c.credentials.account_key = Some(KEY.to_vec());
    c.task_counts_lag = Duration::from_secs(1);
    let handle = batch_standin::serve(c)
        .await
        .expect("start the Batch stand-in");
    let out = output(run_cmd(&s, &handle, &["--retries", "1"])).await;
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    let azure_rows = rows(&s.run_dir());
    assert_eq!(azure_rows.len(), local_rows.len(), "{text}");
    for want in &local_rows {
        let name = want["input"].as_str().unwrap();
        let got = row(&azure_rows, name);
        for field in ["status", "score", "exit_code", "attempts"] {
            assert_eq!(
                got[field], want[field],
                "{name} {field}: {got:#}\nlocal: {want:#}\n{text}"
            );
        }
    }
    let bad = row(&azure_rows, "broken.csv");
    assert_eq!(
        (bad["status"].as_str(), bad["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    let trainer_line = |r: &serde_json::Value| {
        let tail = r["stderr_tail"].as_str().unwrap_or_default().to_owned();
        tail.split("broken.csv")
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    assert!(!trainer_line(bad).is_empty(), "{bad:#}");
    assert_eq!(
        trainer_line(bad),
        trainer_line(row(&local_rows, "broken.csv"))
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_of_3_inputs_by_8_settings_scores_like_scikit_learn() {
    let (s, handle) = start(vec![]).await;
    for name in sweep_golden::SWEEP_INPUTS {
        s.copy_input(name, name);
    }
    let grid = sweep_golden::sweep_grid("criterion=gini,entropy");
    let grid: Vec<&str> = grid.iter().map(String::as_str).collect();
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args(&s, &grid));
    let out = output(cmd).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    sweep_golden::assert_sweep_matches_goldens(&s.run_dir(), "criterion");
    assert_no_secrets(&text);
    handle.shutdown().await;
}

/// The trainer reaches each node once (a job preparation task puts it in the node's shared
/// directory) instead of once per task: 14 tasks on 2 nodes whose disks hold the trainer once
/// plus a little run without a node filling up, and the trainer blob is fetched once per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_trainer_is_downloaded_once_per_node_and_tasks_fit_a_small_disk() {
    azurite();
    let s = Scratch::new();
    let golden = copy_all_inputs(&s);
    for i in 0..8 {
        let mut csv = String::from(",a,b,label\n");
        for r in 0..30 {
            csv.push_str(&format!(
                "{r},{},{},{}\n",
                r * (i + 1),
                (r * 7 + i) % 11,
                r % 3
            ));
        }
        s.write_input(&format!("synth{i}.csv"), &csv);
    }
    let trainer_bytes = std::fs::metadata(trainer_bin()).unwrap().len();
    let handle = standin_with(s.path(), vec![], |c| {
        c.node_disk_bytes = Some(trainer_bytes + 4_000_000)
    })
    .await;
    let text = run_ok(run_cmd(&s, &handle, &["--nodes", "2", "--task-slots", "2"])).await;
    let rows = rows(&s.run_dir());
    assert_eq!(rows.len(), golden.len() + 8, "{rows:#?}");
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r:#}\n{text}");
    }
    assert_golden_scores(&rows, &golden, &text);
    let (trainer, inputs) = node_downloads(&handle, &trainer_bin());
    assert!(
        (1..=2).contains(&trainer),
        "the trainer is fetched once per node (2 nodes), not per task: {:#?}",
        handle.downloads()
    );
    // Packed (auto) tiny inputs come in one bundle per pack: one blob per Batch task.
    let job = standin_ids(&handle.url(), "/jobs").await.remove(0);
    let tasks = standin_ids(&handle.url(), &format!("/jobs/{job}/tasks")).await;
    assert!(tasks.len() > 1 && tasks.len() < rows.len(), "{tasks:?}");
    assert_eq!(
        inputs,
        tasks.len() as u64,
        "one bundle per pack: {:#?}",
        handle.downloads()
    );
    handle.shutdown().await;
}

/// Packed tasks (`--inputs-per-task 4`): 8 inputs in 2 Batch tasks, every score as the
/// goldens, a bad CSV fails alone (exit 1, never retried, its own stderr), and an input that
/// fails once with a transient error is retried alone: every other input ran exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packed_inputs_score_like_the_goldens_and_a_retry_reruns_only_the_failed_input() {
    azurite();
    let s = Scratch::new();
    let golden = copy_all_inputs(&s);
    s.write_input("broken.csv", "a,b,label\n1,2,x\n3,oops\n");
    s.copy_input("iris.csv", "zz_flaky.csv");
    // A distinct content, so it is its own task (identical inputs share one).
    let mut flaky = std::fs::read_to_string(s.inputs().join("zz_flaky.csv")).unwrap();
    flaky.push('\n');
    s.write_input("zz_flaky.csv", &flaky);
    let dir = s.path().display().to_string();
    let trainer = s.script(
        "flaky-trainer",
        &format!(
            "echo \"$(basename \"$1\")\" >>'{dir}/invocations.log'\n\
             case \"$1\" in *zz_flaky.csv) if [ ! -f '{dir}/flaked' ]; then : >'{dir}/flaked'; \
             echo transient >&2; exit 2; fi;; esac\nexec '{}' \"$@\"\n",
            trainer_bin().display()
        ),
    );
    let handle = standin(s.path(), vec![]).await;
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(
        &s,
        &trainer,
        &["--inputs-per-task", "4", "--retries", "2", "--nodes", "2"],
    ));
    let out = output(cmd).await;
    let text = show(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the bad CSV fails the run: {text}"
    );
    let run_dir = s.run_dir();
    let rows = rows(&run_dir);
    assert_eq!(rows.len(), golden.len() + 2, "{rows:#?}");
    for (name, line) in &golden {
        let r = row(&rows, name);
        assert_eq!(r["status"], "succeeded", "{name}: {r:#}\n{text}");
        let want = line.trim_start_matches("The model score: ");
        assert_eq!(r["score"].as_str(), Some(want), "{name}: {r:#}");
        assert_eq!(r["attempts"], 1, "{name}: {r:#}");
        let task_dir = run_dir.join("tasks").join(r["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            *line
        );
    }
    let bad = row(&rows, "broken.csv");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert_eq!(bad["exit_code"], 1, "{bad:#}");
    assert_eq!(bad["attempts"], 1, "bad input is never retried: {bad:#}");
    assert!(
        bad["stderr_tail"]
            .as_str()
            .is_some_and(|t| t.contains("broken.csv")),
        "{bad:#}"
    );
    let flaky = row(&rows, "zz_flaky.csv");
    assert_eq!(flaky["status"], "succeeded", "{flaky:#}");
    assert_eq!(flaky["attempts"], 2, "{flaky:#}");
    let runs = s.invocations();
    for (name, n) in &runs {
        let want = if name == "zz_flaky.csv" { 2 } else { 1 };
        assert_eq!(*n, want, "{name} ran {n} times: {runs:?}");
    }
    assert_eq!(runs.len(), golden.len() + 2, "{runs:?}");
    let job = standin_ids(&handle.url(), "/jobs").await.remove(0);
    let tasks = standin_ids(&handle.url(), &format!("/jobs/{job}/tasks")).await;
    assert_eq!(tasks.len(), 2, "8 inputs in packs of 4: {tasks:?}");
    // Each pack fetched its inputs as one bundle, the trainer once per node.
    let (trainer, inputs) = node_downloads(&handle, &trainer);
    assert!((1..=2).contains(&trainer), "{:#?}", handle.downloads());
    assert_eq!(inputs, 2, "one bundle per pack: {:#?}", handle.downloads());
    handle.shutdown().await;
}

/// The nodes' resource-file downloads: of the trainer (its blob is named by its SHA-256) and
/// of everything else (inputs, bundles).
fn node_downloads(handle: &batch_standin::Handle, trainer: &Path) -> (u64, u64) {
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(trainer).unwrap()));
    let downloads = handle.downloads();
    let trainer = downloads
        .iter()
        .filter(|(url, _)| url.ends_with(&digest))
        .map(|(_, n)| n)
        .sum();
    (trainer, downloads.values().sum::<u64>() - trainer)
}
