//! Whole-process throughput of the stand-in: submit N tasks (`/bin/true`) in
//! `addtaskcollection` requests of 100 from 4 parallel submitters, then wait
//! until `taskcounts` says all completed. Prints per-run times and medians.
//!
//! `cargo run --release -p batch-standin --example throughput -- [TASKS] [RUNS] [MAX_CONCURRENT]`

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ACCOUNT: &str = "bench";
const KEY: &[u8] = b"throughput-bench-key";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let query = "api-version=2025-06-01.21.0";
        let raw = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let date = httpdate();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("ocp-date", date.parse().unwrap());
        if method != "GET" {
            headers.insert("content-length", raw.len().to_string().parse().unwrap());
        }
        if body.is_some() {
            headers.insert(
                "content-type",
                "application/json; odata=minimalmetadata".parse().unwrap(),
            );
        }
        let sts = batch_standin::string_to_sign(method, path, query, &headers, ACCOUNT);
        let auth = format!("SharedKey {ACCOUNT}:{}", batch_standin::sign(KEY, &sts));
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}?{query}", self.base),
            )
            .headers(headers)
            .header("authorization", auth);
        if method != "GET" {
            req = req.body(raw);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn httpdate() -> String {
    let t = time::OffsetDateTime::now_utc();
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).unwrap()
}

async fn one_run(tasks: usize, max_concurrent: usize) -> (Duration, Duration, usize) {
    let dir = std::env::temp_dir().join(format!("standin-bench-{}", std::process::id()));
    let mut config =
        batch_standin::Config::new("127.0.0.1:0".parse().unwrap(), ACCOUNT, dir.clone());
    config.credentials.account_key = Some(KEY.to_vec());
    config.max_concurrent_tasks = max_concurrent;
    config.allocation_delay = Duration::from_millis(10);
    let handle = batch_standin::serve(config).await.unwrap();
    let c = std::sync::Arc::new(Client {
        base: handle.url(),
        http: reqwest::Client::new(),
    });
    let pool = json!({"id": "p", "vmSize": "Standard_D2s_v3", "targetDedicatedNodes": 4, "taskSlotsPerNode": 4,
        "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                                        "nodeAgentSKUId": "batch.node.ubuntu 24.04"}});
    assert_eq!(c.call("POST", "/pools", Some(&pool)).await.0, 201);
    assert_eq!(
        c.call(
            "POST",
            "/jobs",
            Some(&json!({"id": "j", "poolInfo": {"poolId": "p"}}))
        )
        .await
        .0,
        201
    );
    let start = Instant::now();
    let chunks: Vec<Vec<Value>> = (0..tasks)
        .map(|i| json!({"id": format!("t{i:05}"), "commandLine": "/bin/true"}))
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[Value]>::to_vec)
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(chunks));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (c, queue) = (c.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(chunk) = queue.lock().unwrap().pop() else {
                    return;
                };
                let (status, body) = c
                    .call(
                        "POST",
                        "/jobs/j/addtaskcollection",
                        Some(&json!({"value": chunk})),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let submitted = start.elapsed();
    loop {
        let (_, counts) = c.call("GET", "/jobs/j/taskcounts", None).await;
        if counts["taskCounts"]["completed"].as_u64() == Some(tasks as u64) {
            assert_eq!(
                counts["taskCounts"]["succeeded"].as_u64(),
                Some(tasks as u64)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = start.elapsed();
    let peak = handle.peak_running();
    handle.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
    (submitted, total, peak)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tasks = args.first().copied().unwrap_or(2000);
    let runs = args.get(1).copied().unwrap_or(3);
    let max_concurrent = args.get(2).copied().unwrap_or(8);
    let mut subs = Vec::new();
    let mut totals = Vec::new();
    for run in 1..=runs {
        let (s, t, peak) = one_run(tasks, max_concurrent).await;
        println!(
            "run {run}: {tasks} tasks submitted in {s:.2?}, all completed in {t:.2?} (peak {peak} processes)"
        );
        subs.push(s);
        totals.push(t);
    }
    subs.sort();
    totals.sort();
    println!(
        "median of {runs}: submit {:.2?}, complete {:.2?} ({:.0} tasks/s)",
        subs[runs / 2],
        totals[runs / 2],
        tasks as f64 / totals[runs / 2].as_secs_f64()
    );
}
