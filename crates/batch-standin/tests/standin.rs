//! End-to-end tests of the Batch stand-in over HTTP: auth, spec validation,
//! task execution with resource and output files, paging, and faults.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn task(id: &str, cmd: &str) -> Value {
    json!({"id": id, "commandLine": cmd})
}

/// `POST /jobs` of job `id` on pool `pool`, nothing else set.
async fn post_job(c: &Client, id: &str, pool: &str) -> Resp {
    let body = json!({"id": id, "poolInfo": {"poolId": pool}});
    c.call("POST", "/jobs", Some(&body)).await
}

/// Creating job `id` is refused: the account's active job quota is full.
async fn refused_for_job_quota(c: &Client, id: &str, pool: &str) {
    let r = post_job(c, id, pool).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "ActiveJobAndScheduleQuotaReached")
    );
}

async fn job(c: &Client, id: &str, pool: &str) {
    let r = c
        .call(
            "POST",
            "/jobs",
            Some(
                &json!({"id": id, "poolInfo": {"poolId": pool}, "onAllTasksComplete": "noaction"}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn add(c: &Client, job: &str, tasks: Vec<Value>) -> Vec<Value> {
    let r = c
        .call(
            "POST",
            &format!("/jobs/{job}/addtaskcollection"),
            Some(&json!({"value": tasks})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["value"].as_array().unwrap().clone()
}

async fn wait_task(c: &Client, job: &str, id: &str) -> Value {
    c.wait_for(&format!("/jobs/{job}/tasks/{id}"), 30, |t| {
        t["state"] == "completed"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_is_checked_like_the_service() {
    let s = start().await;
    let c = &s.client;
    // A filter with spaces and quotes: the signature covers decoded values.
    let url = c.url("/supportedimages?$filter=verificationType%20eq%20'verified'&maxresults=50");
    let ok = c
        .call_as(Auth::Key(&c.key), "GET", &url, None, &[])
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["verificationType"] == "verified")
    );
    assert!(ok.headers.get("request-id").is_some());
    assert!(
        ok.headers.get("client-request-id").is_some(),
        "client-request-id is echoed"
    );

    let wrong = c
        .call_as(Auth::Key(b"another key"), "GET", &url, None, &[])
        .await
        .unwrap();
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.code(), "AuthenticationFailed");
    assert_eq!(wrong.body["message"]["lang"], "en-US");
    assert_eq!(wrong.body["values"][0]["key"], "AuthenticationErrorDetail");

    let none = c.call_as(Auth::None, "GET", &url, None, &[]).await.unwrap();
    assert_eq!(none.status, 403);

    // The signature binds the query: a changed parameter fails.
    let signed_for = c.url("/pools?maxresults=5");
    let mut tampered = signed_for.clone();
    tampered.set_query(Some(&format!("api-version={API}&maxresults=6")));
    let auth = sign_request(
        ACCOUNT,
        &c.key,
        "GET",
        &signed_for,
        &[("ocp-date", "x".into())],
    );
    let r = c
        .call_as(
            Auth::None,
            "GET",
            &tampered,
            None,
            &[("Authorization", &auth)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // POST with a body signs Content-Length and Content-Type.
    let p = c
        .call(
            "POST",
            "/jobs",
            Some(&json!({"id": "j-auth", "poolInfo": {"poolId": "none"}})),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    // POST without a body signs Content-Length 0.
    let t = c.call("POST", "/jobs/j-auth/terminate", None).await;
    assert_eq!(t.status, 202, "{}", t.body);

    let stale = c
        .call_as(
            Auth::Key(&c.key),
            "GET",
            &url,
            None,
            &[("ocp-date", "Fri, 17 Feb 2017 00:00:00 GMT")],
        )
        .await
        .unwrap();
    assert_eq!(
        stale.status, 403,
        "requests older than 15 minutes are refused"
    );

    let bearer = c
        .call_as(Auth::Bearer(TOKEN), "GET", &url, None, &[])
        .await
        .unwrap();
    assert_eq!(bearer.status, 200);
    let bad_bearer = c
        .call_as(Auth::Bearer("guess"), "GET", &url, None, &[])
        .await
        .unwrap();
    assert_eq!(bad_bearer.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_validated_against_the_spec() {
    let s = start().await;
    let c = &s.client;
    let no_version = url::Url::parse(&format!("{}/pools", c.base)).unwrap();
    let r = c
        .call_as(Auth::Key(&c.key), "GET", &no_version, None, &[])
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "MissingRequiredQueryParameter"));
    let r = c
        .call("GET", "/pools?api-version=2099-01-01.99.0", None)
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidQueryParameterValue"));
    let r = c.call("GET", "/pools?maxresults=5000", None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidQueryParameterValue"));
    let r = c.call("GET", "/pools?$filer=x", None).await;
    assert_eq!((r.status, r.code()), (400, "InvalidQueryParameterValue"));
    let r = c
        .call("GET", "/jobs/x/tasks?$filter=state%20like%20'x'", None)
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidQueryParameterValue"));

    let vm = json!({"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                    "nodeAgentSKUId": "batch.node.ubuntu 24.04"});
    let r = c
        .call(
            "POST",
            "/pools",
            Some(&json!({"id": "p", "virtualMachineConfiguration": vm})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "MissingRequiredProperty"));
    assert_eq!(r.body["values"][0]["value"], "vmSize");
    let r = c
        .call("POST", "/pools", Some(&json!({"id": "p", "vmSize": "x", "virtualMachineConfiguration": {"imageReference": {}, "nodeAgentSkuId": "a"}})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidRequestBody"),
        "misspelt nodeAgentSKUId: {}",
        r.body
    );
    let r = c
        .call("POST", "/pools", Some(&json!({"id": "p", "vmSize": "x", "virtualMachineConfiguration": vm, "targetDedicatedNodes": "2"})))
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidPropertyValue"));
    let r = c
        .call("POST", "/pools", Some(&json!({"id": "p", "vmSize": "x", "virtualMachineConfiguration": vm, "enableAutoScale": true, "targetDedicatedNodes": 1, "autoScaleFormula": "$TargetDedicatedNodes=1;"})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidPropertyValue"),
        "targets with autoscale"
    );

    job(c, "j", "nopool").await;
    let bad_enum = json!({"id": "t", "commandLine": "true", "outputFiles": [{"filePattern": "a",
        "destination": {"container": {"containerUrl": "http://x/c"}}, "uploadOptions": {"uploadCondition": "onSuccess"}}]});
    let r = c.call("POST", "/jobs/j/tasks", Some(&bad_enum)).await;
    assert_eq!((r.status, r.code()), (400, "InvalidPropertyValue"));
    let escape = json!({"id": "t", "commandLine": "true", "resourceFiles": [{"httpUrl": "http://x/a", "filePath": "../../etc/x"}]});
    let r = c.call("POST", "/jobs/j/tasks", Some(&escape)).await;
    assert_eq!((r.status, r.code()), (400, "InvalidPropertyValue"));
    let bad_duration =
        json!({"id": "t", "commandLine": "true", "constraints": {"maxWallClockTime": "30m"}});
    let r = c.call("POST", "/jobs/j/tasks", Some(&bad_duration)).await;
    assert_eq!((r.status, r.code()), (400, "InvalidPropertyValue"));
    let url = c.url("/jobs/j/tasks");
    let r = c
        .call_as(Auth::Key(&c.key), "POST", &url, Some(&json!({})), &[])
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, "MissingRequiredProperty"));
    let r = c
        .call(
            "POST",
            "/jobs/j/tasks",
            Some(&json!({"id": "bad id!", "commandLine": "true"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "InvalidPropertyValue"));
    let r = c.call("PUT", "/supportedimages", None).await;
    assert_eq!(r.status, 405);
    let r = c.call("GET", "/jobs/missing", None).await;
    assert_eq!((r.status, r.code()), (404, "JobNotFound"));
    let r = c.call("HEAD", "/pools/missing", None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_with_resource_files_and_upload_outputs() {
    let store = BlobStore::start().await;
    store.put_file("/app/run.sh", b"#!/bin/sh\nset -e\necho \"job=$AZ_BATCH_JOB_ID task=$AZ_BATCH_TASK_ID wd=$(pwd)\"\ncat \"$1\" > result.txt\necho \"$2\" >&2\nexit \"${3:-0}\"\n");
    store.put_file("/in/a.txt", b"alpha");
    store.put_file("/in/b.txt", b"beta");
    let s = start().await;
    let c = &s.client;
    c.steady_pool("pool1", 2, 2).await;
    let nodes = c.call("GET", "/pools/pool1/nodes", None).await;
    assert_eq!(nodes.body["value"].as_array().unwrap().len(), 2);
    job(c, "job1", "pool1").await;
    let out = store.container_url("out");
    let mk = |id: &str, input: &str, exit: u32| {
        json!({
            "id": id,
            "commandLine": format!("/bin/sh -c './run.sh data.txt \"note for {id}\" {exit}'"),
            "resourceFiles": [
                {"httpUrl": store.url("/app/run.sh"), "filePath": "run.sh", "fileMode": "0755"},
                {"httpUrl": store.url(input), "filePath": "data.txt"}],
            "outputFiles": [
                {"filePattern": "result.txt", "destination": {"container": {"containerUrl": out, "path": format!("r1/{id}/result.txt")}},
                 "uploadOptions": {"uploadCondition": "tasksuccess"}},
                {"filePattern": "../std*.txt", "destination": {"container": {"containerUrl": out, "path": format!("r1/{id}/logs")}},
                 "uploadOptions": {"uploadCondition": "taskcompletion"}}],
            "constraints": {"maxTaskRetryCount": 1},
            "environmentSettings": [{"name": "EXTRA", "value": "1"}],
        })
    };
    let results = add(
        c,
        "job1",
        vec![
            mk("ta", "/in/a.txt", 0),
            mk("tb", "/in/b.txt", 0),
            mk("tfail", "/in/a.txt", 3),
        ],
    )
    .await;
    assert_eq!(results.len(), 3);
    assert!(
        // The service's casing, not the spec's `success`.
        results.iter().all(|r| r["status"] == "Success"),
        "{results:?}"
    );
    let missing = json!({"id": "tmissing", "commandLine": "/bin/true",
        "resourceFiles": [{"httpUrl": store.url("/in/none.txt"), "filePath": "x"}]});
    assert_eq!(
        c.call("POST", "/jobs/job1/tasks", Some(&missing))
            .await
            .status,
        201
    );

    let ta = wait_task(c, "job1", "ta").await;
    assert_eq!(ta["executionInfo"]["exitCode"], 0);
    assert_eq!(ta["executionInfo"]["result"], "success");
    assert_eq!(ta["executionInfo"]["retryCount"], 0);
    assert_eq!(ta["nodeInfo"]["poolId"], "pool1");
    assert!(
        ta["nodeInfo"]["nodeId"]
            .as_str()
            .unwrap()
            .starts_with("tvmps_")
    );
    assert!(
        ta["executionInfo"]["startTime"].is_string() && ta["executionInfo"]["endTime"].is_string()
    );
    assert_eq!(
        store.blob("/out/r1/ta/result.txt").as_deref(),
        Some("alpha")
    );
    wait_task(c, "job1", "tb").await;
    assert_eq!(store.blob("/out/r1/tb/result.txt").as_deref(), Some("beta"));
    let stdout = store.blob("/out/r1/ta/logs/stdout.txt").unwrap();
    assert!(stdout.starts_with("job=job1 task=ta wd="), "{stdout}");
    assert!(stdout.trim_end().ends_with("/wd"), "{stdout}");
    assert_eq!(
        store.blob("/out/r1/ta/logs/stderr.txt").as_deref(),
        Some("note for ta\n")
    );

    let tf = wait_task(c, "job1", "tfail").await;
    assert_eq!(tf["executionInfo"]["exitCode"], 3);
    assert_eq!(tf["executionInfo"]["retryCount"], 1, "retried once: {tf}");
    assert_eq!(tf["executionInfo"]["result"], "failure");
    assert_eq!(
        tf["executionInfo"]["failureInfo"]["code"],
        "FailureExitCode"
    );
    assert_eq!(tf["executionInfo"]["failureInfo"]["category"], "UserError");
    assert!(
        store.blob("/out/r1/tfail/result.txt").is_none(),
        "tasksuccess outputs skip failed tasks"
    );
    assert!(
        store.blob("/out/r1/tfail/logs/stderr.txt").is_some(),
        "taskcompletion outputs always upload"
    );

    let tm = wait_task(c, "job1", "tmissing").await;
    assert_eq!(tm["executionInfo"]["failureInfo"]["code"], "BlobNotFound");
    assert!(tm["executionInfo"]["exitCode"].is_null());

    // The task files API serves the node's files.
    let f = c
        .call("GET", "/jobs/job1/tasks/ta/files/wd/result.txt", None)
        .await;
    assert_eq!((f.status, &f.raw[..]), (200, &b"alpha"[..]));
    let h = c
        .call("HEAD", "/jobs/job1/tasks/ta/files/stdout.txt", None)
        .await;
    assert_eq!(h.status, 200);
    assert_eq!(h.headers["ocp-batch-file-isdirectory"], "false");
    let l = c
        .call("GET", "/jobs/job1/tasks/ta/files?recursive=true", None)
        .await;
    let names: Vec<&str> = l.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"wd/run.sh") && names.contains(&"stderr.txt"),
        "{names:?}"
    );
    let mode = c
        .call("HEAD", "/jobs/job1/tasks/ta/files/wd/run.sh", None)
        .await;
    assert_eq!(mode.headers["ocp-batch-file-mode"], "0100755");

    let counts = c.call("GET", "/jobs/job1/taskcounts", None).await.body;
    assert_eq!(
        counts["taskCounts"],
        json!({"active": 0, "running": 0, "completed": 4, "succeeded": 2, "failed": 2})
    );

    // Patching to terminatejob completes the job now that all tasks are done.
    let r = c
        .call(
            "PATCH",
            "/jobs/job1",
            Some(&json!({"onAllTasksComplete": "terminatejob"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = c
        .wait_for("/jobs/job1", 10, |j| j["state"] == "completed")
        .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "AllTasksComplete");
    let r = c
        .call("POST", "/jobs/job1/tasks", Some(&task("late", "true")))
        .await;
    assert_eq!((r.status, r.code()), (409, "JobCompleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_next_link_select_and_filter() {
    let s = start().await;
    let c = &s.client;
    job(c, "jp", "no-such-pool").await; // tasks stay active: nothing runs them
    for chunk in 0..3 {
        let tasks = (0..100)
            .map(|i| task(&format!("t{:03}", chunk * 100 + i), "true"))
            .take(if chunk == 2 { 50 } else { 100 })
            .collect();
        add(c, "jp", tasks).await;
    }
    let mut seen = Vec::new();
    let mut next = "/jobs/jp/tasks?maxresults=100&$select=id,state".to_owned();
    let mut pages = 0;
    loop {
        let r = c.call("GET", &next, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        for t in r.body["value"].as_array().unwrap() {
            assert_eq!(
                t.as_object().unwrap().len(),
                2,
                "only the selected fields: {t}"
            );
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match r.body["odata.nextLink"].as_str() {
            Some(n) => next = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let f = c
        .call(
            "GET",
            "/jobs/jp/tasks?$filter=state%20eq%20'completed'",
            None,
        )
        .await;
    assert_eq!(f.body["value"].as_array().unwrap().len(), 0);
    let f = c
        .call(
            "GET",
            "/jobs/jp/tasks?$filter=startswith(id,'t24')&$select=id",
            None,
        )
        .await;
    assert_eq!(f.body["value"].as_array().unwrap().len(), 10);
    let counts = c.call("GET", "/jobs/jp/taskcounts", None).await.body;
    assert_eq!(counts["taskCounts"]["active"], 250);

    // Resubmitting is idempotent by id: TaskExists per task, 409 singly.
    let again = add(
        c,
        "jp",
        vec![
            task("t000", "true"),
            task("T001", "true"),
            task("new1", "true"),
        ],
    )
    .await;
    let by_id = |id: &str| again.iter().find(|r| r["taskId"] == id).unwrap().clone();
    assert_eq!(by_id("t000")["status"], "ClientError");
    assert_eq!(by_id("t000")["error"]["code"], "TaskExists");
    assert_eq!(
        by_id("T001")["error"]["code"],
        "TaskExists",
        "ids are case-insensitive"
    );
    assert_eq!(by_id("new1")["status"], "Success");
    let r = c
        .call("POST", "/jobs/jp/tasks", Some(&task("t005", "true")))
        .await;
    assert_eq!((r.status, r.code()), (409, "TaskExists"));
    let too_many: Vec<Value> = (0..101).map(|i| task(&format!("x{i}"), "true")).collect();
    let r = c
        .call(
            "POST",
            "/jobs/jp/addtaskcollection",
            Some(&json!({"value": too_many})),
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "RequestBodyTooLarge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_fire_as_configured() {
    let s = start().await;
    let c = &s.client;
    let arm = |f: Value| async move {
        let r = reqwest::Client::new()
            .post(format!("{}/_standin/faults", c.base))
            .json(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let listed = arm(json!({"kind": "status", "status": 429, "count": 2, "retryAfter": 3, "pathContains": "/pools"})).await;
    assert_eq!(listed["faults"][0]["kind"], "status");
    let r = c.call("GET", "/jobs", None).await;
    assert_eq!(r.status, 200, "path filter leaves other paths alone");
    for _ in 0..2 {
        let r = c.call("GET", "/pools", None).await;
        assert_eq!((r.status, r.code()), (429, "TooManyRequests"));
        assert_eq!(r.headers["retry-after"], "3");
    }
    assert_eq!(
        c.call("GET", "/pools", None).await.status,
        200,
        "fault spent after count"
    );

    arm(json!({"kind": "status", "status": 503, "retryAfter": 1})).await;
    let r = c.call("GET", "/pools", None).await;
    assert_eq!((r.status, r.code()), (503, "ServerBusy"));

    arm(json!({"kind": "drop"})).await;
    let e = c
        .call_as(Auth::Key(&c.key), "GET", &c.url("/pools"), None, &[])
        .await;
    assert!(e.is_err(), "connection closed without a response");

    // Dropped after doing the work: the client cannot tell the job exists.
    arm(json!({"kind": "drop", "after": true, "method": "POST"})).await;
    let body = json!({"id": "jdrop", "poolInfo": {"poolId": "p"}});
    assert!(
        c.call_as(Auth::Key(&c.key), "POST", &c.url("/jobs"), Some(&body), &[])
            .await
            .is_err()
    );
    let r = c.call("POST", "/jobs", Some(&body)).await;
    assert_eq!((r.status, r.code()), (409, "JobExists"));

    arm(json!({"kind": "bodyLimit", "bytes": 300})).await;
    let big: Vec<Value> = (0..10).map(|i| task(&format!("b{i}"), "true")).collect();
    let r = c
        .call(
            "POST",
            "/jobs/jdrop/addtaskcollection",
            Some(&json!({"value": big})),
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "RequestBodyTooLarge"));
    let small: Vec<Value> = (0..2).map(|i| task(&format!("b{i}"), "true")).collect();
    assert_eq!(
        c.call(
            "POST",
            "/jobs/jdrop/addtaskcollection",
            Some(&json!({"value": small}))
        )
        .await
        .status,
        200
    );
    let cleared = reqwest::Client::new()
        .delete(format!("{}/_standin/faults", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);

    arm(json!({"kind": "taskServerError", "count": 1, "taskIdContains": "s1"})).await;
    let res = add(c, "jdrop", vec![task("s0", "true"), task("s1", "true")]).await;
    let s1 = res.iter().find(|r| r["taskId"] == "s1").unwrap();
    assert_eq!(s1["status"], "ServerError");
    let res = add(c, "jdrop", vec![task("s1", "true")]).await;
    assert_eq!(res[0]["status"], "Success", "the retried task is added");

    s.handle.arm(batch_standin::Fault::JobQuota { count: 1 });
    refused_for_job_quota(c, "jq", "p").await;
    assert_eq!(post_job(c, "jq", "p").await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_requeues_and_resize_errors_show_on_the_pool() {
    let s = start().await;
    let c = &s.client;
    c.steady_pool("pp", 1, 1).await;
    job(c, "jpre", "pp").await;
    s.handle.arm(batch_standin::Fault::Preempt {
        count: 1,
        delay_ms: 300,
        task_id_contains: None,
    });
    add(
        c,
        "jpre",
        vec![task("slow", "/bin/sh -c 'sleep 1; echo done'")],
    )
    .await;
    let t = wait_task(c, "jpre", "slow").await;
    assert_eq!(t["executionInfo"]["requeueCount"], 1, "{t}");
    assert_eq!(t["executionInfo"]["retryCount"], 0);
    assert_eq!(t["executionInfo"]["result"], "success");
    assert!(t["executionInfo"]["lastRequeueTime"].is_string());

    s.handle.arm(batch_standin::Fault::ResizeError {
        code: "AccountCoreQuotaReached".into(),
        message: None,
        pool_id: Some("pq".into()),
        count: 1,
    });
    let body = json!({"id": "pq", "vmSize": "Standard_D2s_v3", "targetDedicatedNodes": 4,
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 24.04"}});
    assert_eq!(c.call("POST", "/pools", Some(&body)).await.status, 201);
    let p = c
        .wait_for("/pools/pq", 10, |p| p["allocationState"] == "steady")
        .await;
    assert_eq!(p["resizeErrors"][0]["code"], "AccountCoreQuotaReached");
    assert!(
        p["resizeErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("quota")
    );
    assert_eq!(p["currentDedicatedNodes"], 0);
    assert_eq!(p["targetDedicatedNodes"], 4);
    let r = c.call("POST", "/pools", Some(&body)).await;
    assert_eq!((r.status, r.code()), (409, "PoolExists"));
    assert_eq!(c.call("DELETE", "/pools/pq", None).await.status, 202);
    c.wait_for("/pools", 10, |l| {
        l["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != "pq")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_limits_and_termination() {
    let s = start().await;
    let c = &s.client;
    c.steady_pool("pw", 1, 4).await;
    job(c, "jw", "pw").await;
    let limited = json!({"id": "limited", "commandLine": "/bin/sh -c 'sleep 30'", "constraints": {"maxWallClockTime": "PT1S"}});
    add(
        c,
        "jw",
        vec![limited, task("ended", "/bin/sh -c 'sleep 30'")],
    )
    .await;
    c.wait_for("/jobs/jw/tasks/ended", 10, |t| t["state"] == "running")
        .await;
    assert_eq!(
        c.call("POST", "/jobs/jw/tasks/ended/terminate", None)
            .await
            .status,
        204
    );
    let t = wait_task(c, "jw", "ended").await;
    assert_eq!(t["executionInfo"]["failureInfo"]["code"], "TaskEnded");
    let started = std::time::Instant::now();
    let t = wait_task(c, "jw", "limited").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        t["executionInfo"]["failureInfo"]["code"],
        "MaxWallClockTimeExceeded"
    );
    assert_eq!(t["executionInfo"]["result"], "failure");

    let r = c
        .call("POST", "/jobs", Some(&json!({"id": "jcap", "poolInfo": {"poolId": "pw"}, "constraints": {"maxWallClockTime": "PT1S"}})))
        .await;
    assert_eq!(r.status, 201);
    add(c, "jcap", vec![task("forever", "/bin/sh -c 'sleep 60'")]).await;
    let j = c
        .wait_for("/jobs/jcap", 15, |j| j["state"] == "completed")
        .await;
    assert_eq!(
        j["executionInfo"]["terminateReason"],
        "MaxWallClockTimeExpiry"
    );
    let t = wait_task(c, "jcap", "forever").await;
    assert_eq!(t["executionInfo"]["result"], "failure");
    assert_eq!(c.call("DELETE", "/jobs/jcap", None).await.status, 202);
    // Deletion takes a while, as on the service: the job is `deleting` and refuses changes.
    let deleting = c.call("GET", "/jobs/jcap", None).await;
    assert_eq!(deleting.body["state"], "deleting", "{}", deleting.body);
    let again = c.call("POST", "/jobs/jcap/terminate", None).await;
    assert_eq!((again.status, again.code()), (409, "JobBeingDeleted"));
    let start = std::time::Instant::now();
    while c.call("GET", "/jobs/jcap", None).await.status != 404 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the job never went"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_nodes_get_no_tasks_and_expose_startup_logs() {
    let s = start().await;
    let c = &s.client;
    let arm = json!({"kind": "nodeFailure", "state": "starttaskfailed", "nodes": 1, "poolId": "pn",
                     "stderr": "E: Unable to locate package python3-sklearn\n"});
    let r = reqwest::Client::new()
        .post(format!("{}/_standin/faults", c.base))
        .json(&arm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.steady_pool("pn", 2, 1).await;
    let nodes = c
        .call(
            "GET",
            "/pools/pn/nodes?$select=id,state,startTaskInfo",
            None,
        )
        .await
        .body;
    let nodes = nodes["value"].as_array().unwrap();
    let bad: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["state"] == "starttaskfailed")
        .collect();
    assert_eq!(bad.len(), 1, "{nodes:?}");
    assert_eq!(bad[0]["startTaskInfo"]["result"], "failure");
    let id = bad[0]["id"].as_str().unwrap();
    let f = c
        .call(
            "GET",
            &format!("/pools/pn/nodes/{id}/files/startup/stderr.txt"),
            None,
        )
        .await;
    assert_eq!(f.status, 200);
    assert_eq!(&f.raw[..], b"E: Unable to locate package python3-sklearn\n");

    job(c, "jn", "pn").await;
    add(
        c,
        "jn",
        (0..3)
            .map(|i| task(&format!("n{i}"), "/bin/sh -c 'echo $AZ_BATCH_NODE_ID'"))
            .collect(),
    )
    .await;
    for i in 0..3 {
        wait_task(c, "jn", &format!("n{i}")).await;
        let out = c
            .call(
                "GET",
                &format!("/jobs/jn/tasks/n{i}/files/stdout.txt"),
                None,
            )
            .await;
        assert_ne!(
            String::from_utf8_lossy(&out.raw).trim(),
            id,
            "no task runs on the failed node"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_with_a_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_batch-standin"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--print-url",
            "--account-name",
            ACCOUNT,
            "--work-dir",
        ])
        .arg(dir.path())
        .args([
            "--fault",
            r#"{"kind":"status","status":503,"count":1,"retryAfter":2}"#,
        ])
        .env("BATCH_STANDIN_ACCOUNT_KEY", KEY_B64)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(Duration::from_secs(20), out.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let c = Client::new(line.trim(), ACCOUNT, KEY_B64);
    let r = c.call("GET", "/supportedimages", None).await;
    assert_eq!(
        (r.status, r.code()),
        (503, "ServerBusy"),
        "the --fault flag is armed"
    );
    assert_eq!(r.headers["retry-after"], "2");
    let r = c.call("GET", "/supportedimages", None).await;
    assert_eq!(r.status, 200);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactivate_disable_enable_autoscale_and_node_counts() {
    // Outside any node directory: the rerun may land on another node.
    let marker = tempfile::tempdir().unwrap();
    let s = start().await;
    let c = &s.client;
    c.steady_pool("pa", 2, 1).await;
    job(c, "ja", "pa").await;
    add(
        c,
        "ja",
        vec![task(
            "flaky",
            &format!(
                "/bin/sh -c 'test -f {0} || {{ touch {0}; exit 4; }}'",
                marker.path().join("m").display()
            ),
        )],
    )
    .await;
    let t = wait_task(c, "ja", "flaky").await;
    assert_eq!(t["executionInfo"]["exitCode"], 4);
    assert_eq!(
        c.call("POST", "/jobs/ja/tasks/flaky/reactivate", None)
            .await
            .status,
        204
    );
    let t = wait_task(c, "ja", "flaky").await;
    assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    let r = c
        .call("POST", "/jobs/ja/tasks/flaky/reactivate", None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "OperationInvalidForCurrentState")
    );

    // A disabled job schedules nothing until enabled.
    let r = c
        .call(
            "POST",
            "/jobs/ja/disable",
            Some(&json!({"disableTasks": "wait"})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    add(c, "ja", vec![task("later", "true")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = c.call("GET", "/jobs/ja/tasks/later", None).await.body;
    assert_eq!(t["state"], "active");
    assert_eq!(
        c.call("GET", "/jobs/ja", None).await.body["state"],
        "disabled"
    );
    assert_eq!(c.call("POST", "/jobs/ja/enable", None).await.status, 202);
    wait_task(c, "ja", "later").await;

    let counts = c.call("GET", "/nodecounts", None).await;
    assert_eq!(counts.status, 200, "{}", counts.body);
    assert_eq!(counts.body["value"][0]["dedicated"]["total"], 2);

    let r = c.call("POST", "/pools/pa/enableautoscale", Some(&json!({"autoScaleFormula": "$TargetDedicatedNodes=3;", "autoScaleEvaluationInterval": "PT5M"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p = c
        .wait_for("/pools/pa", 10, |p| p["allocationState"] == "steady")
        .await;
    assert_eq!(p["enableAutoScale"], true);
    assert!(
        p["autoScaleRun"]["results"]
            .as_str()
            .unwrap()
            .contains("$TargetDedicatedNodes=")
    );
    let e = c
        .call(
            "POST",
            "/pools/pa/evaluateautoscale",
            Some(&json!({"autoScaleFormula": "$TargetDedicatedNodes=1;"})),
        )
        .await;
    assert_eq!(e.status, 200, "{}", e.body);
    let r = c
        .call(
            "POST",
            "/pools/pa/resize",
            Some(&json!({"targetDedicatedNodes": 1})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "AutoScalingEnabled"));
    assert_eq!(
        c.call("POST", "/pools/pa/disableautoscale", None)
            .await
            .status,
        200
    );

    let node = c.call("GET", "/pools/pa/nodes", None).await.body["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let files = c
        .call(
            "GET",
            &format!("/pools/pa/nodes/{node}/files?recursive=false"),
            None,
        )
        .await;
    assert_eq!(files.status, 200, "{}", files.body);
    assert!(
        files.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "workitems")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_tasks_gate_nodes_and_failures_leave_startup_logs() {
    let s = start().await;
    let c = &s.client;
    let vm = json!({"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                    "nodeAgentSKUId": "batch.node.ubuntu 24.04"});
    let pool = |id: &str, cmd: &str| {
        json!({"id": id, "vmSize": "Standard_D2s_v3", "virtualMachineConfiguration": vm, "targetDedicatedNodes": 1,
               "startTask": {"commandLine": cmd, "waitForSuccess": true, "maxTaskRetryCount": 1,
                             "environmentSettings": [{"name": "GREETING", "value": "hi"}]}})
    };
    let ok = pool(
        "pgood",
        "/bin/sh -c 'sleep 0.3; echo $GREETING > $AZ_BATCH_NODE_SHARED_DIR/ready'",
    );
    assert_eq!(c.call("POST", "/pools", Some(&ok)).await.status, 201);
    job(c, "js", "pgood").await;
    add(
        c,
        "js",
        vec![task(
            "after",
            "/bin/sh -c 'cat $AZ_BATCH_NODE_SHARED_DIR/ready'",
        )],
    )
    .await;
    let t = wait_task(c, "js", "after").await;
    assert_eq!(
        t["executionInfo"]["result"], "success",
        "the task ran after the start task: {t}"
    );
    let out = c
        .call("GET", "/jobs/js/tasks/after/files/stdout.txt", None)
        .await;
    assert_eq!(&out.raw[..], b"hi\n");
    let node = &c.call("GET", "/pools/pgood/nodes", None).await.body["value"][0];
    assert_eq!(node["startTaskInfo"]["result"], "success", "{node}");

    let bad = pool("pbad", "/bin/sh -c 'echo cannot install >&2; exit 7'");
    assert_eq!(c.call("POST", "/pools", Some(&bad)).await.status, 201);
    let nodes = c
        .wait_for("/pools/pbad/nodes", 10, |l| {
            l["value"][0]["state"] == "starttaskfailed"
        })
        .await;
    let n = &nodes["value"][0];
    assert_eq!(n["startTaskInfo"]["exitCode"], 7);
    assert_eq!(n["startTaskInfo"]["retryCount"], 1);
    let id = n["id"].as_str().unwrap();
    let err = c
        .call(
            "GET",
            &format!("/pools/pbad/nodes/{id}/files/startup/stderr.txt"),
            None,
        )
        .await;
    assert_eq!(&err.raw[..], b"cannot install\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_conditions_drive_the_job_action() {
    let s = start().await;
    let c = &s.client;
    c.steady_pool("pe", 1, 2).await;
    job(c, "jnoaction", "pe").await;
    let with_action = json!({"id": "x", "commandLine": "true",
        "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "none"}}]}});
    let r = c
        .call("POST", "/jobs/jnoaction/tasks", Some(&with_action))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidPropertyValue"),
        "jobAction needs performexitoptionsjobaction"
    );

    let r = c
        .call("POST", "/jobs", Some(&json!({"id": "je", "poolInfo": {"poolId": "pe"}, "onTaskFailure": "performexitoptionsjobaction"})))
        .await;
    assert_eq!(r.status, 201);
    let tolerated = json!({"id": "tolerated", "commandLine": "/bin/sh -c 'exit 3'",
        "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "none"}}]}});
    add(c, "je", vec![tolerated]).await;
    let t = wait_task(c, "je", "tolerated").await;
    assert_eq!(t["executionInfo"]["result"], "failure");
    assert_eq!(
        c.call("GET", "/jobs/je", None).await.body["state"],
        "active"
    );
    add(c, "je", vec![task("fatal", "/bin/sh -c 'exit 5'")]).await;
    let j = c
        .wait_for("/jobs/je", 10, |j| j["state"] == "completed")
        .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "TaskFailed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_job_quota_frees_up_when_jobs_complete() {
    let s = start_with(|c| c.max_active_jobs = 2).await;
    let c = &s.client;
    job(c, "q1", "none").await;
    job(c, "q2", "none").await;
    refused_for_job_quota(c, "q3", "none").await;
    assert_eq!(
        c.call(
            "POST",
            "/jobs/q1/terminate",
            Some(&json!({"terminateReason": "done"}))
        )
        .await
        .status,
        202
    );
    let j = c
        .wait_for("/jobs/q1", 10, |j| j["state"] == "completed")
        .await;
    assert_eq!(j["executionInfo"]["terminateReason"], "done");
    job(c, "q3", "none").await;
}

/// What the real service answers and the spec does not say (recorded exchanges in
/// tests/fixtures/azure-recordings/): `Success`, `odata.metadata`, echoed enums in PascalCase,
/// a lower-case vmSize, the body limit counted in UTF-16, lasting `terminating` state,
/// and task counts that lag when configured to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_the_services_casing_with_its_limits_and_delays() {
    let s = start_with(|c| c.task_counts_lag = Duration::from_secs(2)).await;
    let c = &s.client;
    c.steady_pool("pc", 1, 2).await;
    let pool = c.call("GET", "/pools/pc", None).await.body;
    assert_eq!(pool["vmSize"], "standard_d2s_v3", "{pool}");
    assert!(
        pool["odata.metadata"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#pools/@Element")
    );
    job(c, "jc", "pc").await;
    let counts = c.call("GET", "/jobs/jc/taskcounts", None).await.body;
    assert_eq!(counts["taskCounts"]["completed"], 0);
    assert!(
        counts["odata.metadata"]
            .as_str()
            .unwrap()
            .ends_with("#taskcountsresult/@Element")
    );
    let upload = json!({"filePattern": "../std*.txt",
        "destination": {"container": {"containerUrl": "http://127.0.0.1:1/c?sig=x"}},
        "uploadOptions": {"uploadCondition": "taskCompletion"}});
    let t = json!({"id": "echo", "commandLine": "/bin/true", "outputFiles": [upload]});
    let r = c
        .call(
            "POST",
            "/jobs/jc/addtaskcollection",
            Some(&json!({"value": [t]})),
        )
        .await;
    assert_eq!(r.body["value"][0]["status"], "Success", "{}", r.body);
    assert!(
        r.body["odata.metadata"]
            .as_str()
            .unwrap()
            .ends_with("#taskaddresult")
    );
    let done = wait_task(c, "jc", "echo").await;
    assert_eq!(
        done["outputFiles"][0]["uploadOptions"]["uploadCondition"],
        "TaskCompletion"
    );
    // The counts computed before the task ran are still served within the lag.
    let stale = c.call("GET", "/jobs/jc/taskcounts", None).await.body;
    assert_eq!(stale["taskCounts"]["completed"], 0, "{stale}");
    c.wait_for("/jobs/jc/taskcounts", 10, |v| {
        v["taskCounts"]["completed"] == 1
    })
    .await;

    // 1 MiB counted in UTF-16: 520,000 ASCII bytes fit, 530,000 do not.
    job(c, "jbig", "nopool").await;
    let add_sized = |n: usize| async move {
        let body = json!({"value": [{"id": format!("b{n}"), "commandLine": "x".repeat(n)}]});
        c.call("POST", "/jobs/jbig/addtaskcollection", Some(&body))
            .await
    };
    let ok = add_sized(520_000).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let big = add_sized(530_000).await;
    assert_eq!((big.status, big.code()), (413, "RequestBodyTooLarge"));
    assert_eq!(big.body["values"][0]["key"], "MaxLimit", "{}", big.body);
    assert_eq!(big.body["values"][0]["value"], "1048576");

    // Termination lasts a moment: meanwhile the job is `terminating`.
    let r = c.call("POST", "/jobs/jbig/terminate", None).await;
    assert_eq!(r.status, 202);
    let again = c.call("POST", "/jobs/jbig/terminate", None).await;
    assert_eq!((again.status, again.code()), (409, "JobBeingTerminated"));
    c.wait_for("/jobs/jbig", 10, |j| j["state"] == "completed")
        .await;
}

/// A job preparation task runs once per node, before the job's first task there (its
/// resource files downloaded once per node), and its state is listed per node; one that fails
/// leaves the job's tasks waiting on that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_preparation_runs_once_per_node_before_the_jobs_tasks() {
    let s = start().await;
    let c = &s.client;
    let store = BlobStore::start().await;
    store.put_file("/stage/tool", b"#!/bin/sh\necho tool ran\n");
    c.steady_pool("pprep", 2, 2).await;
    let prep = json!({"commandLine": "/bin/sh -c 'sleep 0.2; cp tool $AZ_BATCH_NODE_SHARED_DIR/tool && chmod 0755 $AZ_BATCH_NODE_SHARED_DIR/tool'",
                      "resourceFiles": [{"httpUrl": store.url("/stage/tool"), "filePath": "tool"}],
                      "waitForSuccess": true, "constraints": {"maxTaskRetryCount": 1}});
    let body = json!({"id": "jp", "poolInfo": {"poolId": "pprep"}, "jobPreparationTask": prep});
    let r = c.call("POST", "/jobs", Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let tasks: Vec<Value> = (0..8)
        .map(|i| {
            task(
                &format!("t{i}"),
                "/bin/sh -c '$AZ_BATCH_NODE_SHARED_DIR/tool'",
            )
        })
        .collect();
    add(c, "jp", tasks).await;
    for i in 0..8 {
        let t = wait_task(c, "jp", &format!("t{i}")).await;
        assert_eq!(t["executionInfo"]["result"], "success", "{t}");
    }
    let status = c
        .call("GET", "/jobs/jp/jobpreparationandreleasetaskstatus", None)
        .await;
    assert_eq!(status.status, 200, "{}", status.body);
    let entries = status.body["value"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() <= 2, "{}", status.body);
    for e in entries {
        let info = &e["jobPreparationTaskExecutionInfo"];
        assert_eq!(info["state"], "completed", "{e}");
        assert_eq!(info["result"], "success", "{e}");
        assert_eq!(info["exitCode"], 0, "{e}");
    }
    let downloads = s.handle.downloads();
    let n = downloads
        .iter()
        .find(|(k, _)| k.ends_with("/stage/tool"))
        .map(|(_, n)| *n);
    assert_eq!(
        n,
        Some(entries.len() as u64),
        "one download per node: {downloads:?}"
    );

    // A preparation task that fails: the job's tasks never start on that node.
    let bad = json!({"id": "jbad", "poolInfo": {"poolId": "pprep"},
                     "jobPreparationTask": {"commandLine": "/bin/sh -c 'echo no >&2; exit 3'"}});
    assert_eq!(c.call("POST", "/jobs", Some(&bad)).await.status, 201);
    add(c, "jbad", vec![task("never", "/bin/true")]).await;
    let st = c
        .wait_for("/jobs/jbad/jobpreparationandreleasetaskstatus", 10, |l| {
            l["value"].as_array().is_some_and(|v| {
                !v.is_empty()
                    && v.iter()
                        .all(|e| e["jobPreparationTaskExecutionInfo"]["state"] == "completed")
            })
        })
        .await;
    assert_eq!(
        st["value"][0]["jobPreparationTaskExecutionInfo"]["exitCode"], 3,
        "{st}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = c.call("GET", "/jobs/jbad/tasks/never", None).await;
    assert_eq!(t.body["state"], "active", "{}", t.body);
}

/// Task directories stay on the node for their retention time and count against its disk:
/// past the budget the node turns `unusable` (with a DiskFull error); short retention frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_disk_makes_the_node_unusable_until_retention_frees_it() {
    let s = start_with(|c| c.node_disk_bytes = Some(300_000)).await;
    let c = &s.client;
    c.steady_pool("pdisk", 1, 1).await;
    job(c, "jshort", "pdisk").await;
    let write = "/bin/sh -c 'head -c 100000 /dev/zero > big'";
    let short: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("s{i}"), "commandLine": write, "constraints": {"retentionTime": "PT1S"}}))
        .collect();
    for t in short {
        add(c, "jshort", vec![t.clone()]).await;
        let id = t["id"].as_str().unwrap();
        assert_eq!(
            wait_task(c, "jshort", id).await["executionInfo"]["result"],
            "success"
        );
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    let node = &c.call("GET", "/pools/pdisk/nodes", None).await.body["value"][0];
    assert_ne!(
        node["state"], "unusable",
        "short retention frees the disk: {node}"
    );

    job(c, "jlong", "pdisk").await;
    let long: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("l{i}"), "commandLine": write, "constraints": {"retentionTime": "PT1H"}}))
        .collect();
    add(c, "jlong", long).await;
    let nodes = c
        .wait_for("/pools/pdisk/nodes", 20, |l| {
            l["value"][0]["state"] == "unusable"
        })
        .await;
    assert_eq!(
        nodes["value"][0]["errors"][0]["code"], "DiskFull",
        "{nodes}"
    );
}
