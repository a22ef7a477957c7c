//! The Azure Batch backend when things go wrong around the tasks (issue 12, items 3-6): jobs
//! that end with tasks still queued, failures at every step after the pool exists, Batch not
//! answering for a while, and Entra ID tokens. Helpers come from `azure.rs`.

use super::*;
use serde_json::json;

/// A signed `POST` to the stand-in (what `az batch job terminate` sends).
async fn standin_post(url: &str, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
    let date = httpdate_now();
    let query = "api-version=2025-06-01";
    let bytes = serde_json::to_vec(&body).unwrap();
    let content_type = "application/json; odata=minimalmetadata";
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("ocp-date", date.parse().unwrap());
    headers.insert("content-length", bytes.len().to_string().parse().unwrap());
    headers.insert("content-type", content_type.parse().unwrap());
    let sts = batch_standin::string_to_sign("POST", path, query, &headers, ACCOUNT);
    let auth = format!("SharedKey {ACCOUNT}:{}", batch_standin::sign(KEY, &sts));
    reqwest::Client::new()
        .post(format!("{url}{path}?{query}"))
        .header("ocp-date", date)
        .header("content-type", content_type)
        .header("authorization", auth)
        .body(bytes)
        .send()
        .await
        .unwrap()
        .status()
}

/// Waits until some task of `job` is running.
async fn wait_until_running(url: &str, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = standin_get(url, &format!("/jobs/{job}/tasks"), "id,state").await;
        if tasks["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["state"] == "running")
        {
            return;
        }
        assert!(Instant::now() < deadline, "no task started: {tasks}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every pool on the stand-in is being deleted (or gone), within a few seconds.
pub(super) async fn assert_pools_released(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pools = standin_get(url, "/pools", "id,state").await;
        let live: Vec<_> = pools["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] != "deleting")
            .cloned()
            .collect();
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "pools left running: {live:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const QUEUED: [&str; 3] = ["iris.csv", "wine.csv", "breast_cancer.csv"];

/// Three inputs on one task slot, each task 30 s long: the first runs, the others queue. The
/// orchestrator polls every `poll`.
async fn queued_run(poll: &str, extra: &[&str]) -> (Scratch, batch_standin::Handle, Command) {
    let (s, handle) = start(vec![]).await;
    for n in QUEUED {
        s.copy_input(n, n);
    }
    let trainer = slow_trainer(&s, 30);
    let mut cmd = orchestrator(&s, &handle.url());
    // One Batch task per input: one runs while the others queue.
    let mut args = run_args_with(
        &s,
        &trainer,
        &[
            "--nodes",
            "1",
            "--task-slots",
            "1",
            "--inputs-per-task",
            "1",
        ],
    );
    *args.iter_mut().find(|a| *a == "300ms").unwrap() = poll.to_owned();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    cmd.args(args);
    (s, handle, cmd)
}

/// The run failed (exit 1, not an orchestrator error), the queued tasks are `not_run` with
/// `why` in their failure, and the pool is being deleted.
async fn assert_queued_not_run(
    s: &Scratch,
    handle: &batch_standin::Handle,
    out: &Output,
    why: &str,
) {
    let text = show(out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let rows = rows(&s.run_dir());
    let not_run: Vec<_> = QUEUED
        .iter()
        .filter(|n| row(&rows, n)["status"] == "not_run")
        .collect();
    assert_eq!(not_run.len(), 2, "{rows:#?}");
    for n in not_run {
        assert_not_run(&rows, n, why);
    }
    assert_pools_released(&handle.url()).await;
}

fn assert_not_run(rows: &[serde_json::Value], input: &str, why: &str) {
    let r = row(rows, input);
    assert_eq!(r["status"], "not_run", "{input}: {r:#}");
    assert!(
        r["failure"].as_str().is_some_and(|f| f.contains(why)),
        "{input}: the failure names the job's reason `{why}`: {r:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_terminated_from_outside_ends_the_run_with_queued_tasks_not_run() {
    let poll = 1.0;
    let (s, handle, mut cmd) = queued_run("1s", &[]).await;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), 3).await;
    wait_until_running(&handle.url(), &job).await;
    // What `az batch job terminate --job-id ... --terminate-reason ...` sends.
    let status = standin_post(
        &handle.url(),
        &format!("/jobs/{job}/terminate"),
        serde_json::json!({"terminateReason": "OperatorStop"}),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    let t0 = Instant::now();
    let out = wait_output(child).await;
    assert!(
        t0.elapsed().as_secs_f64() < 2.0 * poll + 3.0,
        "the run must end within two polls of the job's end, took {:?}\n{}",
        t0.elapsed(),
        show(&out)
    );
    assert_queued_not_run(&s, &handle, &out, "OperatorStop").await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_past_its_wall_clock_cap_ends_the_run_with_queued_tasks_not_run() {
    let (s, handle, cmd) = queued_run("300ms", &["--job-timeout", "4s"]).await;
    let t0 = Instant::now();
    let out = output(cmd).await;
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    assert_queued_not_run(&s, &handle, &out, "MaxWallClockTimeExpiry").await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_auto_pool_that_cannot_be_created_ends_the_run_with_every_task_not_run() {
    let faults = vec![fault(serde_json::json!({"kind": "autoPoolFailure"}))];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let text = fails_fast(run_cmd(&s, &handle, &["--auto-pool"])).await;
    let rows = rows(&s.run_dir());
    for n in ["iris.csv", "wine.csv"] {
        assert_not_run(&rows, n, "AutoPoolCreationFailedWithQuotaReached");
    }
    assert!(text.contains("never ran"), "{text}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_at_any_step_after_the_pool_exists_still_releases_the_pool() {
    azurite();
    // Each step after the pool is created, failing for good (a status no retry can fix).
    let steps = [
        (
            "create the job",
            json!({"kind": "status", "status": 400, "code": "InvalidPropertyValue", "count": 50, "method": "POST", "pathContains": "/jobs"}),
        ),
        (
            "add the tasks",
            json!({"kind": "status", "status": 400, "code": "InvalidPropertyValue", "count": 50, "pathContains": "addtaskcollection"}),
        ),
        (
            "switch the job to terminatejob",
            json!({"kind": "status", "status": 400, "code": "InvalidPropertyValue", "count": 50, "method": "PATCH"}),
        ),
        (
            "watch the tasks",
            json!({"kind": "status", "status": 403, "code": "AuthenticationFailed", "count": 50, "pathContains": "/taskcounts"}),
        ),
    ];
    // The default auto-pool (Batch deletes it with the job) and a named pool (we delete it).
    for (step, f) in steps {
        for pool in [&[][..], &["--pool-id", "named-pool"][..]] {
            let s = Scratch::new();
            s.copy_input("iris.csv", "iris.csv");
            let handle = standin(s.path(), vec![fault(f.clone())]).await;
            let mut cmd = orchestrator(&s, &handle.url());
            cmd.args(run_args(&s, pool));
            let text = fails_fast(cmd).await;
            assert!(
                text.contains("InvalidPropertyValue") || text.contains("AuthenticationFailed"),
                "{step} {pool:?}: the error is reported\n{text}"
            );
            assert!(
                pool.is_empty() || text.contains("deleting pool"),
                "{step}: the named pool is released\n{text}"
            );
            assert_pools_released(&handle.url()).await;
            handle.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_all_finds_every_pool_job_and_container_without_a_manifest() {
    let (s, handle) = start(vec![]).await;
    s.copy_input("iris.csv", "iris.csv");
    // Azurite is shared with the tests running beside this one: a prefix of our own keeps
    // `cleanup --all` to this test's containers.
    let prefix = format!("ops{}", std::process::id());
    let orchestrator = |s: &Scratch, url: &str| {
        let mut c = orchestrator(s, url);
        c.env("ORCHESTRATOR_AZURE_CONTAINER_PREFIX", &prefix);
        c
    };
    // Two runs left behind: one kept its pool, one was killed outright mid-run.
    let mut kept = orchestrator(&s, &handle.url());
    kept.args(run_args(&s, &["--keep-pool"]));
    let out = output(kept).await;
    assert!(out.status.success(), "{}", show(&out));
    s.copy_input("wine.csv", "wine.csv");
    let trainer = slow_trainer(&s, 30);
    let mut killed = orchestrator(&s, &handle.url());
    killed
        .args(run_args_with(&s, &trainer, &[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = killed.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while standin_ids(&handle.url(), "/jobs").await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second run never created its job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Something this tool did not create stays.
    let foreign = standin_post(
        &handle.url(),
        "/pools",
        json!({"id": "someone-elses", "vmSize": "Standard_D2s_v3", "targetDedicatedNodes": 0,
               "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical",
               "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
               "nodeAgentSKUId": "batch.node.ubuntu 24.04"}}),
    )
    .await;
    assert_eq!(foreign, reqwest::StatusCode::CREATED);
    std::fs::remove_dir_all(s.out()).unwrap();

    let mut cleanup = orchestrator(&s, &handle.url());
    cleanup.arg("--out").arg(s.out()).args(["cleanup", "--all"]);
    let out = output(cleanup).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pools = standin_ids(&handle.url(), "/pools").await;
        let jobs = standin_ids(&handle.url(), "/jobs").await;
        if pools == ["someone-elses"] && jobs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left pools {pools:?}, jobs {jobs:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        text.contains("deleted 2 job(s), 2 pool(s) and the storage containers of 2 run(s)"),
        "both runs' jobs, pools and containers are found by their metadata:\n{text}"
    );
    let mut again = orchestrator(&s, &handle.url());
    again.arg("--out").arg(s.out()).args(["cleanup", "--all"]);
    let text = show(&output(again).await);
    assert!(
        text.contains("storage containers of 0 run(s)"),
        "nothing is left:\n{text}"
    );
    handle.shutdown().await;
}

/// How long Batch is unreachable in the outage test. The issue asks for 3 minutes; the default
/// here is 20 s to keep CI short. Both take the same path: the watch pauses at its first failed
/// poll (each watch call makes at most 3 quick attempts), well inside either outage.
/// `ORCH_TEST_OUTAGE_SECONDS=180` runs the 3-minute one.
fn outage() -> Duration {
    outage_or(20)
}

/// `ORCH_TEST_OUTAGE_SECONDS`, else `default` seconds.
fn outage_or(default: u64) -> Duration {
    let secs = std::env::var("ORCH_TEST_OUTAGE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Duration::from_secs(secs)
}

/// Waits until every task is in and the job was switched to end when they are done (the
/// submission is over; only the watch is left).
async fn wait_until_watching(url: &str, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = standin_get(url, &format!("/jobs/{job}"), "id,onAllTasksComplete").await;
        if j["onAllTasksComplete"]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case("terminatejob"))
        {
            return;
        }
        assert!(Instant::now() < deadline, "the job was never switched: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_unreachable_for_a_while_pauses_the_watch_and_the_run_completes() {
    let (s, mut handle) = start(vec![]).await;
    let golden = copy_all_inputs(&s);
    let trainer = slow_trainer(&s, 2);
    let mut cmd = orchestrator(&s, &handle.url());
    cmd.args(run_args_with(
        &s,
        &trainer,
        &[
            "--nodes",
            "1",
            "--task-slots",
            "2",
            "--inputs-per-task",
            "1",
        ],
    ))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let job = wait_for_tasks(&handle.url(), golden.len()).await;
    wait_until_watching(&handle.url(), &job).await;
    wait_until_running(&handle.url(), &job).await;
    // The endpoint goes away (connections refused) while the tasks go on running, as Batch's
    // do while a client cannot reach it; then it answers again on the same port and state.
    handle.stop_serving().await;
    tokio::time::sleep(outage()).await;
    handle.serve_again().await.unwrap();
    let out = wait_output(child).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Azure Batch does not answer") && text.contains("the watch resumes"),
        "the pause and the resumption are logged:\n{text}"
    );
    assert_golden_scores(&rows(&s.run_dir()), &golden, &text);
    let jobs = standin_ids(&handle.url(), "/jobs").await;
    assert_eq!(jobs, vec![job.clone()], "one job, never replaced");
    assert_no_task_ran_twice(&handle.url(), &job).await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_az_login_run_of_200_tasks_acquires_its_entra_token_once() {
    azurite();
    let s = Scratch::new();
    for i in 0..200 {
        s.write_input(&format!("in{i:03}.csv"), &format!("a,label\n{i},0\n"));
    }
    let trainer = s.script("fake-trainer", "printf 'The model score: 1.0' > \"$2\"\n");
    // `az` on PATH is a stand-in for the Azure CLI that counts token requests.
    const TOKEN: &str = "entra-test-token-not-a-secret";
    let calls = s.path().join("az-calls");
    let bin = s.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let az = s.script(
        "az",
        &format!(
            "echo \"$*\" >> '{}'\nexp=$(( $(date +%s) + 3600 ))\n\
             printf '{{\"accessToken\":\"{TOKEN}\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\
             \"expires_on\":%s,\"subscription\":\"s\",\"tenant\":\"t\",\"tokenType\":\"Bearer\"}}\\n' \"$exp\"\n",
            calls.display()
        ),
    );
    std::fs::rename(&az, bin.join("az")).unwrap();
    let mut c = batch_standin::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        ACCOUNT,
        s.path().join("standin"),
    );
    c.credentials.bearer_token = Some(TOKEN.into());
    let handle = batch_standin::serve(c).await.unwrap();
    let mut cmd = orchestrator(&s, &handle.url());
    for v in [
        "AZURE_BATCH_ACCOUNT_KEY",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "AZURE_BATCH_USE_MANAGED_IDENTITY",
    ] {
        cmd.env_remove(v);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", bin.display()));
    cmd.args(run_args_with(
        &s,
        &trainer,
        &["--nodes", "2", "--task-slots", "2"],
    ));
    let out = output(cmd).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    let rows = rows(&s.run_dir());
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{text}");
    let n = std::fs::read_to_string(&calls).unwrap().lines().count();
    assert!(
        (1..=2).contains(&n),
        "{n} token acquisitions for a run of 200 tasks"
    );
    assert!(!text.contains(TOKEN), "the token never reaches a log line");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_unreachable_when_the_job_is_switched_to_end_is_waited_out() {
    // More failures than the client's own attempts (10), answered at once (Retry-After: 0).
    let faults = vec![fault(json!({
        "kind": "status", "status": 503, "count": 12, "retryAfter": 0, "method": "PATCH"
    }))];
    let (s, handle) = start(faults).await;
    s.copy_input("iris.csv", "iris.csv");
    let text = run_ok(run_cmd(&s, &handle, &[])).await;
    assert!(text.contains("trying again to switch the job"), "{text}");
    assert_eq!(row(&rows(&s.run_dir()), "iris.csv")["status"], "succeeded");
    let job = standin_ids(&handle.url(), "/jobs").await.remove(0);
    let j = standin_get(&handle.url(), &format!("/jobs/{job}"), "id,executionInfo").await;
    assert_eq!(
        j["executionInfo"]["terminateReason"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("alltaskscomplete"),
        "the job ended with its tasks, not terminated: {j}"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_unreachable_while_tasks_are_added_pauses_the_submission_and_adds_each_task_once() {
    // Batch answers 503 to every `addtaskcollection` (more than one call's attempts), then
    // stops answering at all (connections refused), then answers again.
    let busy = fault(json!({
        "kind": "status", "status": 503, "count": 100_000, "retryAfter": 0,
        "pathContains": "addtaskcollection"
    }));
    let (s, mut handle) = start(vec![busy]).await;
    let golden = copy_all_inputs(&s);
    let mut cmd = orchestrator(&s, &handle.url());
    // One Batch task per input: the test counts them.
    cmd.args(run_args(&s, &["--inputs-per-task", "1"]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while standin_ids(&handle.url(), "/jobs").await.is_empty() {
        assert!(Instant::now() < deadline, "the run never created its job");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // 6 s in CI: the submission pauses at its first failed call (4 quick attempts), so a short
    // outage takes the same path as the 3-minute one `ORCH_TEST_OUTAGE_SECONDS=180` runs.
    handle.stop_serving().await;
    tokio::time::sleep(outage_or(6)).await;
    handle.clear_faults();
    // The first request after the outage is carried out but its answer is lost: the resend
    // must find the tasks there (TaskExists) and not add them again.
    handle.arm(fault(json!({
        "kind": "drop", "after": true, "count": 1, "pathContains": "addtaskcollection"
    })));
    handle.serve_again().await.unwrap();
    let out = wait_output(child).await;
    let text = show(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("adding tasks is paused").count(),
        1,
        "one line for the pause:\n{text}"
    );
    assert!(text.contains("adding tasks resumes"), "{text}");
    assert!(
        text.contains("existed=") && !text.contains("existed=0"),
        "the resent tasks were found already added:\n{text}"
    );
    assert_golden_scores(&rows(&s.run_dir()), &golden, &text);
    let jobs = standin_ids(&handle.url(), "/jobs").await;
    assert_eq!(jobs.len(), 1, "one job, never replaced: {jobs:?}");
    let tasks = standin_ids(&handle.url(), &format!("/jobs/{}/tasks", jobs[0])).await;
    assert_eq!(tasks.len(), golden.len(), "each task added once: {tasks:?}");
    assert_no_task_ran_twice(&handle.url(), &jobs[0]).await;
    handle.shutdown().await;
}
