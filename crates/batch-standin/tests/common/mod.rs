//! Test helpers: an in-process stand-in, a Batch client that signs Shared Key
//! on its own (written from the published scheme, not from the crate's code),
//! and a tiny blob store for resource and output files.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use sha2::Sha256;

pub const ACCOUNT: &str = "testacct";
pub const KEY_B64: &str = "c3RhbmQtaW4gdGVzdCBrZXkgLSBub3QgYSByZWFsIHNlY3JldA==";
pub const TOKEN: &str = "test-bearer-token";
pub const API: &str = "2025-06-01.21.0";

pub struct StandIn {
    pub handle: batch_standin::Handle,
    pub client: Client,
    _dir: tempfile::TempDir,
}

pub async fn start() -> StandIn {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut batch_standin::Config)) -> StandIn {
    let dir = tempfile::tempdir().unwrap();
    let mut config = batch_standin::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        ACCOUNT,
        dir.path().join("nodes"),
    );
    config.credentials.account_key = Some(STANDARD.decode(KEY_B64).unwrap());
    config.credentials.bearer_token = Some(TOKEN.into());
    config.allocation_delay = Duration::from_millis(50);
    adjust(&mut config);
    let handle = batch_standin::serve(config).await.unwrap();
    let client = Client::new(&handle.url(), ACCOUNT, KEY_B64);
    StandIn {
        handle,
        client,
        _dir: dir,
    }
}

pub struct Client {
    pub base: String,
    pub account: String,
    pub key: Vec<u8>,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

fn rfc1123_now() -> String {
    // Independent of the crate's formatter: build it from `time` by hand.
    let t = time::OffsetDateTime::now_utc();
    let wd = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [t.weekday().number_days_from_monday() as usize];
    let mo = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][u8::from(t.month()) as usize - 1];
    format!(
        "{wd}, {:02} {mo} {} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Batch Shared Key per learn.microsoft.com "Authenticate requests to the
/// Azure Batch service": 11 standard headers, `ocp-*` headers sorted,
/// `/account/path`, then lowercased query names with decoded values.
pub fn sign_request(
    account: &str,
    key: &[u8],
    method: &str,
    url: &url::Url,
    headers: &[(&str, String)],
) -> String {
    let h = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut s = format!("{method}\n");
    for name in [
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-MD5",
        "Content-Type",
        "Date",
        "If-Modified-Since",
        "If-Match",
        "If-None-Match",
        "If-Unmodified-Since",
        "Range",
    ] {
        s += &h(name);
        s += "\n";
    }
    let mut ocp: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.to_lowercase().starts_with("ocp-"))
        .map(|(n, v)| (n.to_lowercase(), v.clone()))
        .collect();
    ocp.sort();
    for (n, v) in ocp {
        s += &format!("{n}:{v}\n");
    }
    s += &format!("/{account}{}", url.path());
    let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        q.entry(k.to_lowercase()).or_default().push(v.into_owned());
    }
    for (k, mut v) in q {
        v.sort();
        s += &format!("\n{k}:{}", v.join(","));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(s.as_bytes());
    format!(
        "SharedKey {account}:{}",
        STANDARD.encode(mac.finalize().into_bytes())
    )
}

pub enum Auth<'a> {
    Key(&'a [u8]),
    Bearer(&'a str),
    None,
}

impl Client {
    pub fn new(base: &str, account: &str, key_b64: &str) -> Client {
        Client {
            base: base.to_owned(),
            account: account.to_owned(),
            key: STANDARD.decode(key_b64).unwrap(),
            http: reqwest::Client::new(),
        }
    }

    /// `path_query` like `/pools?maxresults=10` (api-version is appended
    /// unless the query already has one or `path_query` is a full URL).
    pub fn url(&self, path_query: &str) -> url::Url {
        if path_query.starts_with("http") {
            return url::Url::parse(path_query).unwrap();
        }
        let mut u = url::Url::parse(&format!("{}{}", self.base, path_query)).unwrap();
        if !u.query_pairs().any(|(k, _)| k == "api-version") {
            u.query_pairs_mut().append_pair("api-version", API);
        }
        u
    }

    pub async fn call(&self, method: &str, path_query: &str, body: Option<&Value>) -> Resp {
        self.call_as(
            Auth::Key(&self.key.clone()),
            method,
            &self.url(path_query),
            body,
            &[],
        )
        .await
        .unwrap()
    }

    pub async fn call_as(
        &self,
        auth: Auth<'_>,
        method: &str,
        url: &url::Url,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let raw = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let mut headers: Vec<(&str, String)> = vec![("ocp-date", rfc1123_now())];
        if body.is_some() {
            headers.push((
                "Content-Type",
                "application/json; odata=minimalmetadata".into(),
            ));
        }
        if method != "GET" && method != "HEAD" {
            headers.push(("Content-Length", raw.len().to_string()));
        }
        for (k, v) in extra {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
            headers.push((k, (*v).to_owned()));
        }
        match auth {
            Auth::Key(k) => {
                let a = sign_request(&self.account, k, method, url, &headers);
                headers.push(("Authorization", a));
            }
            Auth::Bearer(t) => headers.push(("Authorization", format!("Bearer {t}"))),
            Auth::None => {}
        }
        let mut req = self
            .http
            .request(method.parse().unwrap(), url.clone())
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .header("return-client-request-id", "true");
        // Content-Length goes out explicitly: reqwest omits it for an empty
        // body, and the signature covers the header as sent.
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        if method != "GET" && method != "HEAD" {
            req = req.body(raw);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await?;
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            body,
            raw,
        })
    }

    /// Polls `GET path` until `done(body)` or the timeout.
    pub async fn wait_for(&self, path: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.call("GET", path, None).await;
            if r.status == 200 && done(&r.body) {
                return r.body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "timed out waiting on {path}: {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn steady_pool(&self, id: &str, dedicated: u32, slots: u32) {
        let body = serde_json::json!({
            "id": id, "vmSize": "Standard_D2s_v3",
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                "nodeAgentSKUId": "batch.node.ubuntu 24.04"},
            "targetDedicatedNodes": dedicated, "taskSlotsPerNode": slots,
        });
        let r = self.call("POST", "/pools", Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        self.wait_for(&format!("/pools/{id}"), 10, |p| {
            p["allocationState"] == "steady"
        })
        .await;
    }
}

/// A minimal blob store: `GET` serves `files`, `PUT` (block blobs, SAS
/// required) stores into `blobs`. Paths are `/container/blob`.
#[derive(Clone, Default)]
pub struct BlobStore {
    pub files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub blobs: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub addr: Arc<Mutex<Option<std::net::SocketAddr>>>,
}

impl BlobStore {
    pub async fn start() -> BlobStore {
        let store = BlobStore::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *store.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let s = store.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let s = s.clone();
                            async move {
                                let path = req.uri().path().to_owned();
                                let has_sas = req.uri().query().is_some_and(|q| q.contains("sig="));
                                let method = req.method().clone();
                                let block = req
                                    .headers()
                                    .get("x-ms-blob-type")
                                    .is_some_and(|v| v == "BlockBlob");
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let (status, out) = if !has_sas {
                                    (403, Bytes::from_static(b"AuthenticationFailed"))
                                } else if method == hyper::Method::GET {
                                    match s.files.lock().unwrap().get(&path) {
                                        Some(b) => (200, Bytes::from(b.clone())),
                                        None => (404, Bytes::from_static(b"BlobNotFound")),
                                    }
                                } else if method == hyper::Method::PUT
                                    && block
                                    && path.starts_with("/out/")
                                {
                                    s.blobs.lock().unwrap().insert(path, body.to_vec());
                                    (201, Bytes::new())
                                } else if method == hyper::Method::PUT && block {
                                    (404, Bytes::from_static(b"ContainerNotFound"))
                                } else {
                                    (400, Bytes::from_static(b"bad request"))
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(out))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        store
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}?sv=2022-11-02&sp=r&sig=fake",
            self.addr.lock().unwrap().unwrap()
        )
    }

    pub fn container_url(&self, container: &str) -> String {
        format!(
            "http://{}/{container}?sv=2022-11-02&sr=c&sp=cw&sig=fake",
            self.addr.lock().unwrap().unwrap()
        )
    }

    pub fn put_file(&self, path: &str, data: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_owned(), data.to_vec());
    }

    pub fn blob(&self, path: &str) -> Option<String> {
        self.blobs
            .lock()
            .unwrap()
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}
