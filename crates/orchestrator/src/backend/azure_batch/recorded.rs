//! Real Azure Batch traffic, replayed. `tests/fixtures/azure-recordings/` holds exchanges that
//! Microsoft's SDK test suites recorded against the live service (sources and licence there).
//! Every recorded response goes through this backend's own parsing, the ones our calls read
//! are served back to those calls, and our requests are compared with the recorded requests of
//! the same operations. The stand-in answers in the spec's casing; these recordings are how
//! the service really answers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use reqwest::{Method, Url};
use serde_json::Value;

use super::client::{Auth, BatchClient, Call, RetryPolicy};
use super::model::{
    AllocationState, BatchErrorBody, JobState, JobView, Known, NodeView, Page, PoolState, PoolView,
    ResizeErrorCode, SupportedImage, TaskAddCollectionResult, TaskCountsResult,
    TaskExecutionResult, TaskState, TaskView,
};
use super::testserver::{self, Answer, Seen, Server};

/// How long a submission here may wait out Batch not answering (never, in these replays).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// One recorded request and its response.
#[derive(Debug, Clone)]
struct Exchange {
    /// `file#index`, for messages.
    at: String,
    method: String,
    uri: Url,
    request_headers: BTreeMap<String, String>,
    request_body: Value,
    status: u16,
    response_headers: BTreeMap<String, String>,
    response_body: Value,
}

impl Exchange {
    fn response_header(&self, name: &str) -> Option<&str> {
        header(&self.response_headers, name)
    }
}

fn header<'a>(headers: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/azure-recordings")
}

fn headers_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The exchanges of one recording file.
fn load(name: &str) -> Vec<Exchange> {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["sources"].as_array().is_some_and(|s| !s.is_empty()),
        "{name} must name its sources"
    );
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, e)| Exchange {
            at: format!("{name}#{i}"),
            method: e["RequestMethod"].as_str().unwrap().to_owned(),
            uri: Url::parse(e["RequestUri"].as_str().unwrap()).unwrap(),
            request_headers: headers_of(&e["RequestHeaders"]),
            request_body: e["RequestBody"].clone(),
            status: u16::try_from(e["StatusCode"].as_u64().unwrap()).unwrap(),
            response_headers: headers_of(&e["ResponseHeaders"]),
            response_body: e["ResponseBody"].clone(),
        })
        .collect()
}

/// Every Batch recording (the Blob Storage ones live in `storage/`).
fn all_batch_exchanges() -> Vec<Exchange> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "recordings missing: {names:?}");
    names.iter().flat_map(|n| load(n)).collect()
}

fn find(name: &str, method: &str, path_ends: &str) -> Vec<Exchange> {
    let found: Vec<Exchange> = load(name)
        .into_iter()
        .filter(|x| x.method == method && x.uri.path().ends_with(path_ends))
        .collect();
    assert!(!found.is_empty(), "{name} has no {method} …{path_ends}");
    found
}

/// A server answering the n-th request with the n-th exchange's recorded response. Absolute
/// URLs on the recorded account host (`odata.nextLink`) are rewritten to point back here.
async fn script(answers: Vec<Exchange>) -> Server {
    let url: Arc<OnceLock<String>> = Arc::default();
    let base = url.clone();
    let server = testserver::start(move |n, req| {
        let Some(x) = answers.get(n) else {
            panic!(
                "request {n} ({} {}) beyond the script",
                req.method, req.target
            );
        };
        assert_eq!(req.method, x.method, "{}: request {}", x.at, req.target);
        let mut body = match &x.response_body {
            Value::Null => String::new(),
            b => b.to_string(),
        };
        if let Some(host) = x.uri.host_str() {
            let origin = format!("{}://{host}", x.uri.scheme());
            body = body.replace(&origin, base.get().unwrap());
        }
        let mut headers = Vec::new();
        if let Some(ct) = x.response_header("Content-Type") {
            headers.push(("content-type", ct.to_owned()));
        }
        if let Some(id) = x.response_header("request-id") {
            headers.push(("request-id", id.to_owned()));
        }
        Answer::Reply(x.status, headers, body)
    })
    .await;
    url.set(server.url.clone()).unwrap();
    server
}

fn client(server: &Server) -> BatchClient {
    let auth = Auth::SharedKey {
        account: "acct".into(),
        key: b"recorded".to_vec(),
    };
    let retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    BatchClient::new(&server.url, "2025-06-01", auth, retry).unwrap()
}

fn parse<T: serde::de::DeserializeOwned>(x: &Exchange) -> T {
    serde_json::from_value(x.response_body.clone()).unwrap_or_else(|e| panic!("{}: {e}", x.at))
}

fn known<T: std::fmt::Debug>(at: &str, what: &str, value: &T, is_known: bool) {
    assert!(
        is_known,
        "{at}: {what} {value:?} was not recognised (compare case-insensitively)"
    );
}

/// What one recorded response parses as, by operation; `None` for what this backend never
/// reads (file contents, file lists, body-less answers).
fn check_one(x: &Exchange) -> Option<&'static str> {
    let p = x.uri.path().trim_end_matches('/').to_owned();
    let seg: Vec<&str> = p.split('/').skip(1).collect();
    let at = x.at.as_str();
    if x.status >= 400 {
        if x.response_body.is_null() {
            return None; // HEAD 404: no body, the status says it all
        }
        let e: BatchErrorBody = parse(x);
        assert!(e.code.is_some() && e.message.is_some(), "{at}: {e:?}");
        return Some("error");
    }
    if x.response_body.is_null() || seg.contains(&"files") {
        return None;
    }
    match (x.method.as_str(), seg.as_slice()) {
        ("GET", ["supportedimages"]) => {
            let page: Page<SupportedImage> = parse(x);
            for i in &page.value {
                known(at, "osType", &i.os_type, i.os_type.is_known());
                let v = &i.verification_type;
                known(at, "verificationType", v, v.is_known());
            }
            Some("supportedimages")
        }
        ("GET", ["pools"]) => {
            let page: Page<PoolView> = parse(x);
            page.value.iter().for_each(|p| check_pool(at, p));
            Some("pool list")
        }
        ("GET", ["pools", _]) => {
            check_pool(at, &parse(x));
            Some("pool")
        }
        ("GET", ["pools", _, "nodes"]) => {
            let page: Page<NodeView> = parse(x);
            for n in &page.value {
                known(at, "node state", &n.state, n.state.is_known());
            }
            Some("node list")
        }
        ("GET", ["jobs", _]) => {
            let j: JobView = parse(x);
            known(at, "job state", &j.state, j.state.is_known());
            Some("job")
        }
        ("GET", ["jobs", _, "taskcounts"]) => {
            let _: TaskCountsResult = parse(x);
            Some("taskcounts")
        }
        ("GET", ["jobs", _, "tasks"]) => {
            let page: Page<TaskView> = parse(x);
            page.value.iter().for_each(|t| check_task(at, t));
            Some("task list")
        }
        ("GET", ["jobs", _, "tasks", _]) => {
            check_task(at, &parse(x));
            Some("task")
        }
        ("POST", ["jobs", _, "addtaskcollection"]) => {
            let r: TaskAddCollectionResult = parse(x);
            for t in &r.value {
                let s = &t.status;
                known(at, "status", s, s.is_known());
            }
            Some("addtaskcollection")
        }
        _ => None,
    }
}

fn check_pool(at: &str, p: &PoolView) {
    known(at, "pool state", &p.state, p.state.is_known());
    if !matches!(&p.allocation_state, AllocationState::Other(s) if s.is_empty()) {
        let a = &p.allocation_state;
        known(at, "allocationState", a, a.is_known());
    }
}

fn check_task(at: &str, t: &TaskView) {
    known(at, "task state", &t.state, t.state.is_known());
    if let Some(r) = t.execution_info.as_ref().and_then(|e| e.result.as_ref()) {
        known(at, "result", r, r.is_known());
    }
}

#[test]
fn every_recorded_batch_response_parses_and_every_enum_is_recognised() {
    let mut read = BTreeMap::<&str, usize>::new();
    let mut skipped = Vec::new();
    for x in all_batch_exchanges() {
        match check_one(&x) {
            Some(kind) => *read.entry(kind).or_default() += 1,
            None => skipped.push(format!("{} {} {}", x.method, x.uri.path(), x.status)),
        }
    }
    for kind in [
        "error",
        "supportedimages",
        "pool list",
        "pool",
        "node list",
        "job",
        "taskcounts",
        "task list",
        "task",
        "addtaskcollection",
    ] {
        assert!(
            read.contains_key(kind),
            "no recorded {kind} was read: {read:?}"
        );
    }
    // Only body-less answers and the file API (which we read as raw bytes) are left.
    for s in &skipped {
        assert!(
            s.contains("/files") || !s.starts_with("GET"),
            "recorded response not read: {s}"
        );
    }
}

/// Real Batch answers `"status": "Success"`: every task of both recorded collections is added,
/// none refused.
#[tokio::test]
async fn recorded_addtaskcollection_answers_add_every_task() {
    for x in find("addtaskcollection.json", "POST", "/addtaskcollection") {
        let answer: TaskAddCollectionResult = parse(&x);
        let pending: Vec<super::tasks::Pending> = answer
            .value
            .iter()
            .map(|r| super::tasks::Pending::raw(&r.task_id, b"{}".to_vec()))
            .collect();
        let n = pending.len();
        let server = script(vec![x.clone()]).await;
        let client = Arc::new(client(&server));
        let out = super::tasks::submit_all(client, "job", pending, 1, PATIENCE)
            .await
            .unwrap();
        assert_eq!(out.added, n, "{}: {out:?}", x.at);
        assert!(out.rejected.is_empty(), "{}: {:?}", x.at, out.rejected);
    }
}

/// The recorded 413: a task too large alone is refused with a message, not retried forever.
#[tokio::test]
async fn recorded_request_body_too_large_refuses_a_lone_task() {
    let x = find("errors.json", "POST", "/addtaskcollection")
        .into_iter()
        .find(|x| x.status == 413)
        .unwrap();
    let server = script(vec![x]).await;
    let pending = vec![super::tasks::Pending::raw("t1", b"{}".to_vec())];
    let out = super::tasks::submit_all(Arc::new(client(&server)), "job", pending, 1, PATIENCE)
        .await
        .unwrap();
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0].1.contains("too large"), "{out:?}");
}

#[tokio::test]
async fn recorded_error_bodies_become_coded_errors() {
    let mut seen = 0;
    for x in load("errors.json") {
        let server = script(vec![x.clone()]).await;
        let method = Method::from_bytes(x.method.as_bytes()).unwrap();
        let mut call = Call::new(method, x.uri.path().to_owned());
        if x.response_body.is_null() {
            let e = client(&server).send(&call).await.unwrap_err();
            assert_eq!(e.status, Some(x.status), "{}", x.at);
            continue;
        }
        if x.method != "GET" && x.method != "HEAD" && x.method != "DELETE" {
            call = call.json(b"{}".to_vec());
        }
        let e = client(&server).send(&call).await.unwrap_err();
        let code = x.response_body["code"].as_str().unwrap();
        assert_eq!(e.status, Some(x.status), "{}", x.at);
        assert!(e.is_code(code), "{}: {e}", x.at);
        assert!(
            e.is_code(&code.to_ascii_lowercase()),
            "codes compare case-insensitively"
        );
        let first_line = x.response_body["message"]["value"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap();
        assert!(e.message.contains(first_line), "{}: {e}", x.at);
        for kv in x.response_body["values"].as_array().into_iter().flatten() {
            let k = kv["key"].as_str().unwrap();
            assert!(
                e.message.contains(&format!("{k}: ")),
                "{}: {e} lacks {k}",
                x.at
            );
        }
        assert_eq!(e.request_id.as_deref(), x.response_header("request-id"));
        seen += 1;
    }
    assert!(seen >= 7, "{seen} error bodies");
}

fn config(vm_size: &str) -> super::AzureBatchConfig {
    let mut c = super::AzureBatchConfig::from_lookup(|k| match k {
        "AZURE_BATCH_ACCOUNT_URL" => Some("http://127.0.0.1:1".into()),
        "AZURE_BATCH_ACCOUNT_NAME" => Some("acct".into()),
        _ => None,
    })
    .unwrap();
    c.vm_size = vm_size.into();
    c
}

#[tokio::test]
async fn recorded_supported_images_give_ubuntu_24_04_for_gen2_and_gen1_sizes() {
    let x = find("supportedimages.json", "GET", "/supportedimages");
    for (vm, sku) in [
        ("Standard_D2s_v3", "server"),
        ("Standard_A1_v2", "server-gen1"),
    ] {
        let server = script(x.clone()).await;
        let vmc = super::pool::resolve_image(&client(&server), &config(vm))
            .await
            .unwrap();
        assert_eq!(vmc.image_reference.offer, "ubuntu-24_04-lts");
        assert_eq!(vmc.image_reference.sku, sku);
        assert_eq!(vmc.node_agent_sku_id, "batch.node.ubuntu 24.04");
    }
}

#[tokio::test]
async fn recorded_pools_read_states_and_resize_errors() {
    use super::pool::{PoolHealth, classify, get_pool};
    let gets = find(
        "pool-add-get-resize-delete.json",
        "GET",
        "/pools/ResizePool",
    );
    let server = script(gets.clone()).await;
    let c = client(&server);
    let mut last = None;
    for _ in &gets {
        last = Some(get_pool(&c, "ResizePool").await.unwrap());
    }
    let pool = last.unwrap();
    assert_eq!(pool.state, PoolState::Active);
    assert_eq!(pool.allocation_state, AllocationState::Steady);
    assert_eq!(pool.resize_errors[0].code, ResizeErrorCode::ResizeStopped);
    // A stopped resize is worth a warning, not the end of the run.
    match classify(&pool) {
        PoolHealth::Warn(m) => assert!(m.contains("ResizeStopped"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The same pool out of quota, the code in another casing: nothing will ever run.
    let mut body = gets.last().unwrap().response_body.clone();
    body["resizeErrors"][0]["code"] = "accountcorequotareached".into();
    let quota: PoolView = serde_json::from_value(body).unwrap();
    match classify(&quota) {
        PoolHealth::Fatal(m) => assert!(m.contains("AccountCoreQuotaReached"), "{m}"),
        other => panic!("{other:?}"),
    }
    let list = find("pool-add-get-resize-delete.json", "GET", "/pools");
    let page: Page<PoolView> = parse(&list[0]);
    assert_eq!(page.value[0].state, PoolState::Deleting);
    assert_eq!(page.value[0].allocation_state, AllocationState::Resizing);
}

/// Pool and job lifecycle calls against their recorded answers (201/202/200 without bodies).
#[tokio::test]
async fn recorded_lifecycle_answers_are_success() {
    let pool_add = find("pool-add-get-resize-delete.json", "POST", "/pools");
    let server = script(pool_add).await;
    let body = recorded_pool_body();
    let origin = super::pool::ensure_pool(&client(&server), &body, "run-1", ms(10))
        .await
        .unwrap();
    assert_eq!(origin, super::pool::PoolOrigin::Created);

    let job = "job-add-get-terminate-delete.json";
    let mut answers = find(job, "POST", "/jobs");
    answers.extend(find(job, "POST", "/terminate"));
    answers.extend(find(job, "DELETE", "/jobs/terminateJob"));
    answers.extend(find(job, "DELETE", "/pools/PatchJob"));
    answers.extend(find(
        "job-create-get-patch-terminate-sharedkey.json",
        "PATCH",
        "/jobs/jssdkJob-Basic4caa",
    ));
    let server = script(answers).await;
    let c = client(&server);
    let jb = super::job::job_body(
        "run-1",
        "terminateJob",
        pool_info("PatchJob"),
        ms(60_000),
        None,
    );
    super::job::create_job(&c, &jb).await.unwrap();
    super::job::terminate_job(&c, "terminateJob", "UserTerminate")
        .await
        .unwrap();
    super::job::delete_job(&c, "terminateJob").await.unwrap();
    super::pool::delete_pool(&c, "PatchJob").await.unwrap();
    super::job::set_terminate_when_done(&c, "terminateJob", ms(0))
        .await
        .unwrap();
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

fn pool_info(pool: &str) -> super::model::PoolInfo {
    super::model::PoolInfo {
        pool_id: Some(pool.into()),
        auto_pool_specification: None,
    }
}

/// Our pool body for the run `run-1` (Ubuntu 24.04 Gen2 image, as resolved live).
fn recorded_pool_body() -> super::model::PoolCreate {
    let vm = super::model::VirtualMachineConfiguration {
        image_reference: super::model::ImageReference {
            publisher: "canonical".into(),
            offer: "ubuntu-24_04-lts".into(),
            sku: "server".into(),
            version: "latest".into(),
        },
        node_agent_sku_id: "batch.node.ubuntu 24.04".into(),
    };
    super::model::PoolCreate {
        id: "orch-run-1".into(),
        spec: super::pool::pool_spec(&config("Standard_D2s_v3"), vm, "run-1"),
    }
}

/// A completed job (terminated by a user) is not reused: the next `-rN` id is, once the
/// service says it does not exist.
#[tokio::test]
async fn recorded_job_states_steer_the_job_id() {
    let gets = find(
        "job-add-get-terminate-delete.json",
        "GET",
        "/jobs/terminateJob",
    );
    let active: JobView = parse(&gets[0]);
    assert_eq!(active.state, JobState::Active);
    let completed = gets.last().unwrap().clone();
    assert_eq!(parse::<JobView>(&completed).state, JobState::Completed);
    let not_found = find("errors.json", "GET", "/jobs/BatchUser-testOutputFilessync");
    let server = script(vec![completed, not_found[0].clone()]).await;
    let id = super::job::choose_job_id(&client(&server), "terminateJob")
        .await
        .unwrap();
    assert_eq!(id, "terminateJob-r1");

    let server = script(vec![gets[0].clone()]).await;
    let id = super::job::choose_job_id(&client(&server), "terminateJob")
        .await
        .unwrap();
    assert_eq!(id, "terminateJob", "an active job is the run's job");
}

#[test]
fn recorded_tasks_and_counts_read_as_the_monitor_needs() {
    let counts: TaskCountsResult =
        parse(&find("task-add-get-list-counts.json", "GET", "/taskcounts")[0]);
    assert_eq!(counts.task_counts.completed, 5);
    assert_eq!(counts.task_counts.succeeded, 2);
    assert_eq!(counts.task_counts.failed, 3);
    let gets = find(
        "linux-end-to-end-go.json",
        "GET",
        "/tasks/TestTaskHPlrDqi8LUOq1U4h",
    );
    let done: TaskView = parse(gets.last().unwrap());
    assert_eq!(done.state, TaskState::Completed);
    let info = done.execution_info.unwrap();
    assert_eq!(info.result, Some(TaskExecutionResult::Success));
    assert_eq!(
        (info.exit_code, info.retry_count, info.requeue_count),
        (Some(0), 0, 0)
    );
    let wall = super::client::parse_rfc3339(info.end_time.as_deref().unwrap()).unwrap()
        - super::client::parse_rfc3339(info.start_time.as_deref().unwrap()).unwrap();
    assert!((wall - 0.081_23).abs() < 1e-6, "{wall}");
    assert_eq!(
        done.node_info.unwrap().pool_id.as_deref(),
        Some("TestTaskeeJcCLFB8Tc080gA")
    );
    let first: TaskView = parse(&gets[0]);
    assert_eq!(first.state, TaskState::Active);
}

/// `succeeded_task_ids` over a recorded task list: tasks still active are not done.
#[tokio::test]
async fn recorded_task_list_has_no_succeeded_task_while_active() {
    let list = find("linux-end-to-end-go.json", "GET", "/tasks");
    let server = script(list).await;
    let ids = super::job::succeeded_task_ids(&client(&server), "TestTask1ZqqB6LbrA6ELZ3G")
        .await
        .unwrap();
    assert!(ids.is_empty(), "{ids:?}");
}

#[tokio::test]
async fn recorded_node_lists_have_no_broken_nodes() {
    for x in find("node-list.json", "GET", "/nodes") {
        let server = script(vec![x.clone()]).await;
        let problems = super::pool::node_problems(&client(&server), "2b751f41")
            .await
            .unwrap();
        assert!(problems.is_empty(), "{}: {problems:?}", x.at);
    }
}

/// `odata.nextLink` is followed verbatim (its `$skiptoken`, one api-version) to the next page.
#[tokio::test]
async fn recorded_next_link_is_followed() {
    let lists = find("list-select-filter-nextlink.json", "GET", "/pools");
    let first = lists[0].clone();
    let next = first.response_body["odata.nextLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = script(vec![first, lists[2].clone()]).await;
    let ours = super::pool::pools_tagged(&client(&server), &|m: &[super::model::NameValue]| {
        super::model::has_tag(m, super::model::RUN_METADATA_KEY, "run-1")
    })
    .await
    .unwrap();
    assert!(ours.is_empty(), "no recorded pool carries our run tag");
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "two pages");
    let want = Url::parse(&next).unwrap();
    let got = Url::parse(&format!("{}{}", server.url, seen[1].target)).unwrap();
    assert_eq!(got.path(), want.path());
    let pairs = |u: &Url| {
        let mut v: Vec<(String, String)> =
            u.query_pairs().map(|(a, b)| (a.into(), b.into())).collect();
        v.sort();
        v
    };
    assert_eq!(pairs(&got), pairs(&want), "{}", seen[1].target);
}

// ---------------------------------------------------------------- our requests

/// A JSON body as `path -> kind`; array items share the path `name[]`.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, &'static str>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(items) => {
                items.iter().for_each(|i| walk(i, format!("{path}[]"), out));
                "array"
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, p, out);
                }
                "object"
            }
        };
        if !path.is_empty() {
            out.insert(path, kind);
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// Every property both bodies carry has the same JSON kind, and `shared` are in both (so a
/// misspelt name such as `nodeAgentSkuId` cannot pass).
fn compare_bodies(ours: &Value, recorded: &Exchange, shared: &[&str]) {
    let (a, b) = (shape(ours), shape(&recorded.request_body));
    for (path, kind) in &a {
        if let Some(k) = b.get(path) {
            assert_eq!(kind, k, "{}: `{path}` is a {kind} in ours", recorded.at);
        }
    }
    for path in shared {
        assert!(
            a.contains_key(*path),
            "{}: we do not send `{path}`",
            recorded.at
        );
        assert!(
            b.contains_key(*path),
            "{}: recorded lacks `{path}`",
            recorded.at
        );
    }
}

/// Our headers against the recorded request's: the exact body content type, the length, the
/// request-id pair, and an RFC 1123 `ocp-date`.
fn compare_headers(ours: &Seen, recorded: &Exchange) {
    let at = &recorded.at;
    let want = |n: &str| header(&recorded.request_headers, n);
    if !ours.body.is_empty() {
        assert_eq!(ours.header("content-type"), want("Content-Type"), "{at}");
    }
    let len = ours.header("content-length").unwrap_or("0");
    assert_eq!(len, ours.body.len().to_string(), "{at}");
    if ours.body.is_empty() && ours.method != "GET" {
        assert_eq!(
            want("Content-Length"),
            Some("0"),
            "{at}: body-less as recorded"
        );
    }
    let id = ours.header("client-request-id").unwrap();
    assert!(id.len() == 36 && id.matches('-').count() == 4, "{at}: {id}");
    if let Some(v) = want("return-client-request-id") {
        assert_eq!(ours.header("return-client-request-id"), Some(v), "{at}");
    }
    let date = ours.header("ocp-date").unwrap();
    assert!(super::client::parse_rfc1123(date).is_some(), "{at}: {date}");
    if let Some(d) = want("ocp-date") {
        assert_eq!(date.len(), d.len(), "{at}: {date} vs {d}");
    }
    assert!(
        ours.header("authorization")
            .unwrap()
            .starts_with("SharedKey acct:")
    );
}

fn body_json(seen: &Seen) -> Value {
    serde_json::from_slice(&seen.body).unwrap()
}

/// Sends `f`'s calls to a server answering with `answers`, returning what it received.
async fn capture<F, Fut>(answers: Vec<Exchange>, f: F) -> Vec<Seen>
where
    F: FnOnce(Arc<BatchClient>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = script(answers).await;
    f(Arc::new(client(&server))).await;
    server.seen.lock().unwrap().clone()
}

#[tokio::test]
async fn pool_add_request_matches_the_recorded_ones() {
    let recorded = [
        find("pool-add-get-resize-delete.json", "POST", "/pools"),
        find("linux-end-to-end-go.json", "POST", "/pools"),
    ]
    .concat();
    let seen = capture(recorded[..1].to_vec(), |c| async move {
        let body = recorded_pool_body();
        super::pool::ensure_pool(&c, &body, "run-1", ms(10))
            .await
            .unwrap();
    })
    .await;
    let ours = body_json(&seen[0]);
    let image = "virtualMachineConfiguration.imageReference";
    let shared = [
        "id",
        "vmSize",
        "targetDedicatedNodes",
        "virtualMachineConfiguration.nodeAgentSKUId",
        &format!("{image}.publisher"),
        &format!("{image}.offer"),
        &format!("{image}.sku"),
    ]
    .map(str::to_owned);
    for r in &recorded {
        compare_headers(&seen[0], r);
        compare_bodies(
            &ours,
            r,
            &shared.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    compare_bodies(&ours, &recorded[1], &["taskSchedulingPolicy.nodeFillType"]);
}

#[tokio::test]
async fn job_requests_match_the_recorded_ones() {
    let add = [
        find("job-add-get-terminate-delete.json", "POST", "/jobs"),
        find(
            "job-create-get-patch-terminate-sharedkey.json",
            "POST",
            "/jobs",
        ),
        find("linux-end-to-end-go.json", "POST", "/jobs"),
    ]
    .concat();
    let patch = find(
        "job-create-get-patch-terminate-sharedkey.json",
        "PATCH",
        "/jobs/jssdkJob-Basic4caa",
    );
    let terminate = find(
        "job-create-get-patch-terminate-sharedkey.json",
        "POST",
        "/terminate",
    );
    let script_answers = vec![add[0].clone(), patch[0].clone(), terminate[0].clone()];
    let seen = capture(script_answers, |c| async move {
        let jb = super::job::job_body(
            "run-1",
            "orch-run-1",
            pool_info("orch-run-1"),
            ms(3_600_000),
            None,
        );
        super::job::create_job(&c, &jb).await.unwrap();
        super::job::set_terminate_when_done(&c, "orch-run-1", ms(0))
            .await
            .unwrap();
        super::job::terminate_job(&c, "orch-run-1", "cancelled")
            .await
            .unwrap();
    })
    .await;
    for r in &add {
        compare_headers(&seen[0], r);
        compare_bodies(&body_json(&seen[0]), r, &["id", "poolInfo.poolId"]);
    }
    compare_bodies(&body_json(&seen[0]), &add[2], &["onAllTasksComplete"]);
    compare_headers(&seen[1], &patch[0]);
    compare_headers(&seen[2], &terminate[0]);
}

fn our_task() -> super::model::TaskCreate {
    let spec = crate::task::TaskSpec {
        task_id: "t-0123456789abcdef".into(),
        input_name: "iris.csv".into(),
        input_digest: "d".repeat(64),
        trainer_args: vec!["--threads".into(), "1".into()],
        prior_attempts: 0,
    };
    let inputs = super::tasks::TaskInputs {
        trainer_path: "$AZ_BATCH_NODE_SHARED_DIR/orchestrator/trainer-abc",
        input_url: "https://acct.blob.core.windows.net/s/abc?sv=1&sig=S",
        output_container_url: "https://acct.blob.core.windows.net/o?sv=1&sig=S",
        output_prefix: "t-0123456789abcdef",
        max_retries: 2,
        timeout: None,
        retention: ms(86_400_000),
    };
    super::tasks::build_task(&spec, &inputs).unwrap()
}

#[tokio::test]
async fn task_requests_match_the_recorded_ones() {
    let collections = [
        find("addtaskcollection.json", "POST", "/addtaskcollection"),
        find("linux-end-to-end-go.json", "POST", "/addtaskcollection"),
    ]
    .concat();
    // Our task id in the recorded answer, so the submitter counts it added.
    let mut answer = collections[2].clone();
    answer.response_body["value"][0]["taskId"] = "t-0123456789abcdef".into();
    let seen = capture(vec![answer], |c| async move {
        let pending = vec![super::tasks::Pending::new(&our_task())];
        let out = super::tasks::submit_all(c, "job", pending, 1, PATIENCE)
            .await
            .unwrap();
        assert_eq!(out.added, 1);
    })
    .await;
    let ours = body_json(&seen[0]);
    for r in collections.iter().filter(|r| !r.request_body.is_null()) {
        compare_headers(&seen[0], r);
        compare_bodies(&ours, r, &["value[].id", "value[].commandLine"]);
    }
    // The single-task add with output files: the same names and shapes inside a task.
    let add = find(
        "task-add-get-list-counts.json",
        "POST",
        "/jssdkJob-Basic2dd7/tasks",
    );
    let task = Value::clone(&ours["value"][0]);
    let out = "outputFiles[].destination.container";
    compare_bodies(
        &task,
        &add[0],
        &[
            "id",
            "commandLine",
            "outputFiles[].filePattern",
            &format!("{out}.containerUrl"),
            &format!("{out}.path"),
            "outputFiles[].uploadOptions.uploadCondition",
        ],
    );
}

/// Query values are sent as the SDKs send them (RFC 3986: `%20` for a space, never `+`; `$`
/// literal in the names) and decode to what the recorded SDK requests decode to.
#[tokio::test]
async fn query_strings_are_encoded_as_the_sdks_send_them() {
    let select = find("list-select-filter-nextlink.json", "GET", "/tasks")[0].clone();
    let filter = find("list-select-filter-nextlink.json", "GET", "/pools")[1].clone();
    let recorded = [select.clone(), filter.clone()];
    let seen = capture(recorded.to_vec(), |c| async move {
        let calls = [
            Call::get(select.uri.path()).query("$select", "id,state"),
            Call::get("/pools")
                .query("$filter", "startswith(id,'jssdkPool-Basic2e14')")
                .query("$select", "id,state")
                .query("$expand", "stats"),
        ];
        for call in &calls {
            c.send(call).await.unwrap();
        }
    })
    .await;
    let pairs = |target: &str| {
        let u = Url::parse(&format!("http://h{target}")).unwrap();
        let mut v: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != "api-version")
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        v.sort();
        v
    };
    for (ours, r) in seen.iter().zip(&recorded) {
        let theirs = format!("{}?{}", r.uri.path(), r.uri.query().unwrap());
        assert_eq!(pairs(&ours.target), pairs(&theirs), "{}", r.at);
        assert!(
            !ours.target.contains('+') && !ours.target.contains("%24"),
            "{}",
            ours.target
        );
    }
    assert!(
        seen[0].target.contains("&$select=id%2Cstate"),
        "{}",
        seen[0].target
    );
    // A space, as in every `$filter` we send.
    let seen = capture(vec![filter], |c| async move {
        let call = Call::get("/pools").query("$filter", "state eq 'active'");
        c.send(&call).await.unwrap();
    })
    .await;
    assert!(
        seen[0]
            .target
            .ends_with("&$filter=state%20eq%20%27active%27"),
        "{}",
        seen[0].target
    );
}
