//! HTTP to the Batch data plane: Shared Key or Entra ID auth, a `client-request-id` on every
//! call, retries with backoff and jitter, and errors that never carry a key or SAS signature.
//!
//! This file knows HTTP and Batch's auth scheme; it knows nothing about pools, jobs or tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};

use super::model::BatchErrorBody;

/// Batch's body content type; Shared Key signs it, so it must be exactly what is sent.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; odata=minimalmetadata";

/// Entra ID scope of the Batch data plane (the double slash is deliberate: v1 resource id
/// `https://batch.core.windows.net/` plus `/.default`).
pub(crate) const ENTRA_SCOPE: &str = "https://batch.core.windows.net//.default";

/// A failed Batch call, already stripped of secrets.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// HTTP status, when a response arrived.
    pub(crate) status: Option<u16>,
    /// Batch error code (`PoolExists`, `RequestBodyTooLarge`, ...).
    pub(crate) code: Option<String>,
    /// Human-readable cause (server message or transport error), redacted.
    pub(crate) message: String,
    /// `METHOD /path` of the call.
    pub(crate) call: String,
    /// The service's `request-id`, for support tickets.
    pub(crate) request_id: Option<String>,
}

impl ApiError {
    /// Whether Batch answered with error code `code` (compared ignoring ASCII case).
    pub(crate) fn is_code(&self, code: &str) -> bool {
        super::model::is_code(self.code.as_deref(), code)
    }

    /// Whether the failure says nothing about the request itself: no answer at all (network,
    /// DNS, a time-out, no token), throttling, or a server error. Waiting may cure it.
    pub(crate) fn is_transient(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 408 || s == 429 || s >= 500,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.call)?;
        if let Some(s) = self.status {
            write!(f, " -> HTTP {s}")?;
        }
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(r) = &self.request_id {
            write!(f, " (request-id {r})")?;
        }
        Ok(())
    }
}

/// How a request is authorised.
pub(crate) enum Auth {
    /// Batch Shared Key: account name and the base64-decoded account key.
    SharedKey { account: String, key: Vec<u8> },
    /// Microsoft Entra ID bearer tokens from a credential (which caches them).
    Entra(Arc<dyn azure_core::credentials::TokenCredential>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        match self {
            Auth::SharedKey { account, .. } => write!(f, "SharedKey({account})"),
            Auth::Entra(_) => write!(f, "EntraId"),
        }
    }
}

/// Retry timing. Defaults follow what long-running Batch clients use in practice.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Attempts for a retryable failure (408, 429, 5xx, I/O), including the first.
    pub(crate) max_attempts: u32,
    /// First backoff; doubles each attempt.
    pub(crate) base: Duration,
    /// Backoff cap (a server's Retry-After is honoured up to `max_retry_after`).
    pub(crate) max: Duration,
    /// Longest Retry-After we accept before treating it as `max_retry_after`.
    pub(crate) max_retry_after: Duration,
    /// Fixed wait on `ActiveJobAndScheduleQuotaReached`, and how many times.
    pub(crate) quota_wait: Duration,
    pub(crate) quota_attempts: u32,
    /// Per-attempt HTTP timeout.
    pub(crate) timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            quota_wait: Duration::from_secs(120),
            quota_attempts: 5,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One call to make: the path is relative to the account URL and already percent-encoded
/// where needed; query values are given decoded (Shared Key signs them decoded).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
    /// Extra `ocp-*` headers (e.g. `ocp-range`), signed with the rest.
    pub(crate) ocp_headers: Vec<(String, String)>,
    /// A full URL from `odata.nextLink`, followed verbatim instead of `path` + `query`.
    pub(crate) next_link: Option<Url>,
    /// Attempts for a transient failure, when not the policy's (a caller that polls anyway).
    pub(crate) max_attempts: Option<u32>,
}

impl Call {
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            ocp_headers: Vec::new(),
            next_link: None,
            max_attempts: None,
        }
    }
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }
    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }
    pub(crate) fn json(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
    /// At most `n` attempts for a transient failure (the caller has its own way to wait).
    pub(crate) fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }
    fn describe(&self) -> String {
        match &self.next_link {
            Some(u) => format!("{} {}", self.method, u.path()),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// A successful response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    /// The service's clock when it answered (`Date`), to one second.
    pub(crate) date: Option<SystemTime>,
}

/// The Batch data-plane client.
#[derive(Debug)]
pub(crate) struct BatchClient {
    http: reqwest::Client,
    base: Url,
    api_version: String,
    auth: Auth,
    retry: RetryPolicy,
}

impl BatchClient {
    pub(crate) fn new(
        account_url: &str,
        api_version: &str,
        auth: Auth,
        retry: RetryPolicy,
    ) -> Result<Self, ApiError> {
        let local = |message: String| ApiError {
            status: None,
            code: None,
            message,
            call: "client setup".into(),
            request_id: None,
        };
        let mut base = Url::parse(account_url).map_err(|e| {
            local(format!(
                "AZURE_BATCH_ACCOUNT_URL `{account_url}` is not a URL: {e}"
            ))
        })?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(local(format!(
                "AZURE_BATCH_ACCOUNT_URL `{account_url}` must be https://ACCOUNT.REGION.batch.azure.com"
            )));
        }
        // Paths are appended to the account URL; a trailing slash would double up.
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        let http = reqwest::Client::builder()
            .timeout(retry.timeout)
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| local(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            api_version: api_version.to_owned(),
            auth,
            retry,
        })
    }

    /// Sends `call`, retrying 408/429/5xx/I-O failures and waiting out the active-job quota.
    /// Any non-2xx status that is not retried comes back as an [`ApiError`] with Batch's code.
    pub(crate) async fn send(&self, call: &Call) -> Result<Reply, ApiError> {
        let client_request_id = new_guid();
        let what = call.describe();
        let mut attempt = 0u32;
        let mut quota_waits = 0u32;
        loop {
            attempt += 1;
            let outcome = self.send_once(call, &client_request_id).await;
            let (err, retry_after) = match outcome {
                Ok(reply) => return Ok(reply),
                Err(x) => x,
            };
            if err.is_code("ActiveJobAndScheduleQuotaReached")
                && quota_waits < self.retry.quota_attempts
            {
                quota_waits += 1;
                tracing::warn!(
                    call = %what,
                    "the Batch account's active job quota is full; waiting {:?} for jobs to finish \
                     ({quota_waits}/{})",
                    self.retry.quota_wait,
                    self.retry.quota_attempts
                );
                tokio::time::sleep(self.retry.quota_wait).await;
                attempt -= 1;
                continue;
            }
            // A transport error leaves the state unknown; the caller's ids make a retry safe.
            let max_attempts = call.max_attempts.unwrap_or(self.retry.max_attempts);
            if !err.is_transient() || attempt >= max_attempts {
                return Err(err);
            }
            let delay = self.retry.delay(attempt, retry_after);
            if call.max_attempts.is_some() {
                // A caller with its own attempt budget reports lasting trouble itself.
                tracing::debug!(call = %what, attempt, ?delay, error = %err, "retrying Batch call");
            } else {
                tracing::info!(call = %what, attempt, ?delay, error = %err, "retrying Batch call");
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends and decodes a JSON reply.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<T, ApiError> {
        self.send_json_dated(call).await.map(|(v, _)| v)
    }

    /// [`Self::send_json`], with the service's `Date`.
    pub(crate) async fn send_json_dated<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<(T, Option<SystemTime>), ApiError> {
        let reply = self.send(call).await?;
        let date = reply.date;
        serde_json::from_slice(&reply.body)
            .map(|v| (v, date))
            .map_err(|e| ApiError {
                status: Some(reply.status.as_u16()),
                code: None,
                message: format!("unexpected response body: {e}"),
                call: call.describe(),
                request_id: None,
            })
    }

    async fn send_once(
        &self,
        call: &Call,
        client_request_id: &str,
    ) -> Result<Reply, (ApiError, Option<Duration>)> {
        let url = self.url_for(call);
        let mut headers = HeaderMap::new();
        let date = rfc1123(SystemTime::now());
        let mut ocp: Vec<(String, String)> = vec![("ocp-date".into(), date)];
        ocp.extend(call.ocp_headers.iter().cloned());
        for (k, v) in &ocp {
            headers.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .expect("static ocp header name"),
                HeaderValue::from_str(v).expect("ocp header values are ASCII"),
            );
        }
        headers.insert(
            "client-request-id",
            HeaderValue::from_str(client_request_id).expect("guid"),
        );
        headers.insert("return-client-request-id", HeaderValue::from_static("true"));
        let has_body = call.body.is_some();
        let content_type = if has_body { JSON_CONTENT_TYPE } else { "" };
        let content_length = match (&call.body, &call.method) {
            (Some(b), _) => Some(b.len()),
            (None, m) if *m == Method::GET || *m == Method::HEAD => None,
            // Batch signs "0" for body-less writes, so the header must really say 0.
            (None, _) => Some(0),
        };
        if has_body {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static(JSON_CONTENT_TYPE),
            );
        }
        if let Some(n) = content_length {
            headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        let authz = match &self.auth {
            Auth::SharedKey { account, key } => {
                let signed_query: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let sts = string_to_sign(
                    call.method.as_str(),
                    content_length,
                    content_type,
                    &ocp,
                    account,
                    url.path(),
                    &signed_query,
                );
                format!("SharedKey {account}:{}", sign(key, &sts))
            }
            Auth::Entra(cred) => {
                let token = cred.get_token(&[ENTRA_SCOPE], None).await.map_err(|e| {
                    (
                        ApiError {
                            status: None,
                            code: Some("EntraTokenUnavailable".into()),
                            // The credential's error may quote a token request or a secret.
                            message: redact(&format!(
                                "could not get a Microsoft Entra ID token for {ENTRA_SCOPE}: {e}"
                            )),
                            call: call.describe(),
                            request_id: None,
                        },
                        None,
                    )
                })?;
                format!("Bearer {}", token.token.secret())
            }
        };
        let mut auth_value = HeaderValue::from_str(&authz).map_err(|_| {
            (
                ApiError {
                    status: None,
                    code: None,
                    message: "authorization header is not ASCII".into(),
                    call: call.describe(),
                    request_id: None,
                },
                None,
            )
        })?;
        auth_value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth_value);

        let mut req = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers);
        if let Some(b) = &call.body {
            req = req.body(b.clone());
        } else if content_length == Some(0) {
            req = req.body(Vec::new());
        }
        let transport = |e: reqwest::Error| {
            (
                ApiError {
                    status: None,
                    code: None,
                    // reqwest's error Display can include the URL; ours has no secrets in it
                    // (Batch URLs carry only ids and api-version), but strip it anyway.
                    message: redact(&e.without_url().to_string()),
                    call: call.describe(),
                    request_id: None,
                },
                None,
            )
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let request_id = resp
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_rfc1123);
        let body = resp.bytes().await.map_err(transport)?;
        tracing::debug!(
            call = %call.describe(),
            status = status.as_u16(),
            client_request_id,
            request_id = request_id.as_deref().unwrap_or("-"),
            "batch call"
        );
        if status.is_success() {
            return Ok(Reply {
                status,
                body: body.to_vec(),
                date,
            });
        }
        let parsed: Option<BatchErrorBody> = serde_json::from_slice(&body).ok();
        let (code, message) = match parsed {
            Some(b) => {
                let mut m = b.message.map(|m| m.value).unwrap_or_default();
                for kv in b.values {
                    if let (Some(k), Some(v)) = (kv.key, kv.value) {
                        m.push_str(&format!("; {k}: {v}"));
                    }
                }
                (b.code, m)
            }
            None => (
                None,
                String::from_utf8_lossy(&body).chars().take(300).collect(),
            ),
        };
        Err((
            ApiError {
                status: Some(status.as_u16()),
                code,
                message: {
                    let mut m = redact(message.trim());
                    if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
                        m.push_str(match &self.auth {
                            Auth::SharedKey { .. } => {
                                " (check AZURE_BATCH_ACCOUNT_NAME and AZURE_BATCH_ACCOUNT_KEY, and the machine's clock)"
                            }
                            Auth::Entra(_) => {
                                " (the identity needs the Azure Batch Data Contributor role on the Batch account)"
                            }
                        });
                    }
                    m
                },
                call: call.describe(),
                request_id,
            },
            retry_after,
        ))
    }

    fn url_for(&self, call: &Call) -> Url {
        if let Some(u) = &call.next_link {
            let mut u = u.clone();
            if !u.query_pairs().any(|(k, _)| k == "api-version") {
                u.query_pairs_mut()
                    .append_pair("api-version", &self.api_version);
            }
            return u;
        }
        let mut u = self.base.clone();
        // An account URL has no path ("/"); one with a path prefix keeps it. Never "//jobs".
        let path = format!("{}{}", self.base.path().trim_end_matches('/'), call.path);
        u.set_path(&path);
        let mut query = format!("api-version={}", encode_query(&self.api_version));
        for (k, v) in &call.query {
            query.push_str(&format!("&{}={}", encode_query(k), encode_query(v)));
        }
        u.set_query(Some(&query));
        u
    }
}

impl RetryPolicy {
    /// Backoff before attempt `attempt + 1`: the server's Retry-After when given (capped),
    /// else exponential from `base` with ±25% jitter, capped at `max`.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let jitter = 0.75 + 0.5 * unit_random();
        capped.mul_f64(jitter)
    }
}

/// A query name or value as the Azure SDKs send it: RFC 3986 percent-encoding of everything
/// but the unreserved characters and `$` (so `$filter=state%20eq%20%27completed%27`). Form
/// encoding would send a space as `+`, which an OData parser may keep as a plus sign, and
/// Shared Key signs the value the service decodes.
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Retry-After` is either delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_rfc1123(v)?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Batch Shared Key string-to-sign (not Storage's): eleven standard headers with
/// Content-Length signed as given, every `ocp-*` header sorted, `/account/path`, then the query
/// sorted by name with decoded values and empty values skipped.
pub(crate) fn string_to_sign(
    method: &str,
    content_length: Option<usize>,
    content_type: &str,
    ocp_headers: &[(String, String)],
    account: &str,
    path: &str,
    query: &[(String, String)],
) -> String {
    let cl = content_length.map(|n| n.to_string()).unwrap_or_default();
    // content-encoding, -language, -length, -md5, -type, date, if-modified-since, if-match,
    // if-none-match, if-unmodified-since, range: we only ever send length and type.
    let mut s = format!("{method}\n\n\n{cl}\n\n{content_type}\n\n\n\n\n\n\n");
    let mut ocp: Vec<(String, &str)> = ocp_headers
        .iter()
        .filter(|(k, v)| k.to_ascii_lowercase().contains("ocp-") && !v.is_empty())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    ocp.sort();
    for (k, v) in ocp {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push('/');
    s.push_str(account);
    s.push_str(path);
    // First value per name, as the reference implementation does.
    let mut q: Vec<(&str, &str)> = Vec::new();
    for (k, v) in query {
        if !q.iter().any(|(n, _)| *n == k.as_str()) {
            q.push((k, v));
        }
    }
    q.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in q {
        if !v.is_empty() {
            s.push_str(&format!("\n{k}:{v}"));
        }
    }
    s
}

/// base64(HMAC-SHA256(key, utf8(string_to_sign))).
pub(crate) fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Decodes an account key, naming the variable but never echoing its value.
pub(crate) fn decode_key(key: &str) -> Result<Vec<u8>, String> {
    B64.decode(key.trim())
        .map_err(|_| "AZURE_BATCH_ACCOUNT_KEY is not valid base64 (copy the key from the Batch account's Keys blade)".into())
}

/// The workspace's one redactor (every `sig=`/`sig%3d`, `AccountKey=`, `Bearer` and
/// `SharedKey` value), for text meant for logs or errors.
pub(crate) use crate::backend::kit::redact::redact;

/// A random GUID without braces (client-request-id). Randomness from hashing the clock, the
/// process id and a counter: unique per call, which is all the service needs.
pub(crate) fn new_guid() -> String {
    let h = random_bytes();
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

fn random_bytes() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut h = Sha256::new();
    h.update(t.to_le_bytes());
    h.update(n.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.finalize().into()
}

/// Uniform in [0, 1) for jitter.
fn unit_random() -> f64 {
    let b = random_bytes();
    let v = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    (v >> 11) as f64 / (1u64 << 53) as f64
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 1123 date in GMT (`ocp-date`).
pub(crate) fn rfc1123(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(crate) fn parse_rfc1123(s: &str) -> Option<SystemTime> {
    // "Sat, 28 Nov 2026 10:00:00 GMT"
    let mut it = s.split_whitespace().skip(1);
    let d: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    let y: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Seconds since the epoch of an RFC 3339 / ISO 8601 UTC timestamp as Batch writes them
/// (`2016-11-21T22:43:31.4733476Z`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut dp = date.split('-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let time = time.split(['+']).next()?;
    let mut tp = time.split(':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let sec: f64 = tp.next()?.parse().ok()?;
    Some((days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60) as f64 + sec)
}

// Howard Hinnant's civil-date algorithms.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key and signatures were computed independently with Python's hmac/hashlib/base64 from the
    // literal strings below, following Microsoft's reference policy (BatchSharedKeyAuthPolicy).
    const KEY_B64: &str = "b3JjaGVzdHJhdG9yLXRlc3Qta2V5LW5vdC1hLXNlY3JldC0wMTIzNDU2Nzg5";
    const DATE: &str = "Sat, 28 Nov 2026 10:00:00 GMT";

    fn ocp() -> Vec<(String, String)> {
        vec![("ocp-date".into(), DATE.into())]
    }

    #[test]
    fn post_with_body_signs_length_type_and_sorted_query() {
        let sts = string_to_sign(
            "POST",
            Some(112),
            JSON_CONTENT_TYPE,
            &ocp(),
            "myaccount",
            "/jobs/orch-run1/addtaskcollection",
            &[
                ("timeout".into(), "30".into()),
                ("api-version".into(), "2025-06-01".into()),
            ],
        );
        assert_eq!(
            sts,
            "POST\n\n\n112\n\napplication/json; odata=minimalmetadata\n\n\n\n\n\n\nocp-date:Sat, 28 Nov 2026 10:00:00 GMT\n/myaccount/jobs/orch-run1/addtaskcollection\napi-version:2025-06-01\ntimeout:30"
        );
        let key = decode_key(KEY_B64).unwrap();
        assert_eq!(
            sign(&key, &sts),
            "u7EdeibEFuhAA3KMEXWJ3P8S4pKTKi9o0CSuCVZYycY="
        );
    }

    #[test]
    fn get_signs_decoded_odata_query_and_no_length() {
        let sts = string_to_sign(
            "GET",
            None,
            "",
            &ocp(),
            "myaccount",
            "/jobs/orch-run1/tasks",
            &[
                ("api-version".into(), "2025-06-01".into()),
                ("$select".into(), "id,state,executionInfo".into()),
                ("$filter".into(), "state eq 'completed'".into()),
                ("empty".into(), String::new()),
            ],
        );
        let key = decode_key(KEY_B64).unwrap();
        assert_eq!(
            sign(&key, &sts),
            "8qxyJMytP5FhKsVSMulPhH/TpgcD7GUePdTJVDilwR0="
        );
    }

    #[test]
    fn bodyless_delete_signs_zero_length() {
        let sts = string_to_sign(
            "DELETE",
            Some(0),
            "",
            &ocp(),
            "myaccount",
            "/pools/orch-run1",
            &[("api-version".into(), "2025-06-01".into())],
        );
        let key = decode_key(KEY_B64).unwrap();
        assert_eq!(
            sign(&key, &sts),
            "poGXis5WrdKuQnDyYxDCbdhU5peiqEUiZseBRbgOVDE="
        );
    }

    #[test]
    fn rfc1123_and_back() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_860_000); // 2026-11-28 10:00:00 UTC
        assert_eq!(rfc1123(t), DATE);
        assert_eq!(parse_rfc1123(DATE), Some(t));
        assert_eq!(rfc1123(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn rfc3339_parses_batch_timestamps() {
        let a = parse_rfc3339("2016-11-21T22:43:31.4733476Z").unwrap();
        let b = parse_rfc3339("2016-11-21T22:43:32.1880389Z").unwrap();
        assert!((b - a - 0.7146913).abs() < 1e-6);
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86_400.0));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..12 {
            let d = p.delay(attempt, None);
            let nominal = p.base.saturating_mul(1 << (attempt - 1)).min(p.max);
            assert!(
                d >= nominal.mul_f64(0.75) && d <= nominal.mul_f64(1.25),
                "{attempt}: {d:?}"
            );
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
    }

    #[test]
    fn redaction_hides_signatures_and_credentials() {
        let s = redact(
            "GET https://a.blob.core.windows.net/c/b?sv=1&sig=abc%2Bdef&se=2 and \"sig=xyz\" SharedKey acct:SIGNATURE==",
        );
        assert!(
            !s.contains("abc") && !s.contains("xyz") && !s.contains("SIGNATURE"),
            "{s}"
        );
        assert!(s.contains("sig=REDACTED&se=2"));
    }

    /// The Batch client's own redactor masked only the first SharedKey/Bearer and missed
    /// `sig%3d` and `AccountKey=`; it is now the workspace's one redactor.
    #[test]
    fn redaction_masks_every_credential_form() {
        let s = redact(
            "SharedKey a:FIRST== SharedKey a:SECOND== Bearer T1 Bearer T2 \
             ?sv=1&sig%3dENCODED&x=1 AccountKey=KEYKEY;EndpointSuffix=core",
        );
        for secret in ["FIRST", "SECOND", "T1", "T2", "ENCODED", "KEYKEY"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
    }

    use super::super::testserver::{self, Answer, error_body};

    fn fast_retry() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            quota_wait: Duration::from_millis(30),
            quota_attempts: 2,
            timeout: Duration::from_secs(5),
            ..RetryPolicy::default()
        }
    }

    fn client(url: &str) -> BatchClient {
        let auth = Auth::SharedKey {
            account: "myaccount".into(),
            key: decode_key(KEY_B64).unwrap(),
        };
        BatchClient::new(url, "2025-06-01", auth, fast_retry()).unwrap()
    }

    /// Recomputes the signature the way the service would, from what arrived on the wire.
    fn verify_shared_key(seen: &testserver::Seen) {
        let url = Url::parse(&format!("http://x{}", seen.target)).unwrap();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let ocp: Vec<(String, String)> = seen
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("ocp-"))
            .cloned()
            .collect();
        let cl = seen
            .header("content-length")
            .map(|v| v.parse::<usize>().unwrap());
        let sts = string_to_sign(
            &seen.method,
            cl,
            seen.header("content-type").unwrap_or(""),
            &ocp,
            "myaccount",
            url.path(),
            &query,
        );
        let want = format!(
            "SharedKey myaccount:{}",
            sign(&decode_key(KEY_B64).unwrap(), &sts)
        );
        assert_eq!(
            seen.header("authorization"),
            Some(want.as_str()),
            "signature of {} {}",
            seen.method,
            seen.target
        );
    }

    #[tokio::test]
    async fn retries_throttling_server_errors_and_dropped_connections() {
        let server = testserver::start(|n, _| match n {
            0 => Answer::Reply(
                429,
                vec![("retry-after", "1".into())],
                error_body("TooManyRequests"),
            ),
            1 => Answer::Drop,
            2 => Answer::Reply(
                503,
                vec![("retry-after", "0".into())],
                error_body("ServerBusy"),
            ),
            _ => Answer::Reply(
                200,
                vec![("request-id", "rid-1".into())],
                r#"{"value":[]}"#.into(),
            ),
        })
        .await;
        let c = client(&server.url);
        let t0 = std::time::Instant::now();
        let call = Call::get("/jobs/j/tasks").query("$filter", "state eq 'completed'");
        let reply = c.send(&call).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            t0.elapsed() >= Duration::from_secs(1),
            "Retry-After: 1 must be honoured"
        );
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        let ids: Vec<_> = seen
            .iter()
            .map(|s| s.header("client-request-id").unwrap().to_owned())
            .collect();
        assert!(
            ids.iter().all(|i| *i == ids[0]),
            "one client-request-id per logical call"
        );
        for s in &seen {
            verify_shared_key(s);
            assert!(s.target.starts_with("/jobs/j/tasks?"), "{}", s.target);
            assert!(s.target.contains("api-version=2025-06-01"));
            assert!(s.header("ocp-date").is_some());
        }
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_keep_the_batch_code() {
        let server = testserver::start(|_, _| {
            Answer::Reply(
                409,
                vec![("request-id", "rid-9".into())],
                error_body("PoolExists"),
            )
        })
        .await;
        let c = client(&server.url);
        let err = c
            .send(&Call::new(Method::POST, "/pools").json(b"{}".to_vec()))
            .await
            .unwrap_err();
        assert!(err.is_code("PoolExists"));
        assert_eq!(err.status, Some(409));
        assert_eq!(err.request_id.as_deref(), Some("rid-9"));
        assert_eq!(server.seen.lock().unwrap().len(), 1);
        verify_shared_key(&server.seen.lock().unwrap()[0]);
    }

    #[tokio::test]
    async fn auth_failures_say_what_to_check() {
        let server = testserver::start(|_, _| {
            Answer::Reply(403, vec![], error_body("AuthenticationFailed"))
        })
        .await;
        let err = client(&server.url)
            .send(&Call::get("/pools"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AZURE_BATCH_ACCOUNT_KEY"), "{err}");
        assert_eq!(server.seen.lock().unwrap().len(), 1, "403 is not retried");
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let server =
            testserver::start(|_, _| Answer::Reply(500, vec![], error_body("InternalError"))).await;
        let err = client(&server.url)
            .send(&Call::get("/pools/p"))
            .await
            .unwrap_err();
        assert_eq!(err.status, Some(500));
        assert_eq!(server.seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn active_job_quota_waits_then_succeeds_and_bodyless_writes_send_length_zero() {
        let server = testserver::start(|n, _| match n {
            0 | 1 => Answer::Reply(409, vec![], error_body("ActiveJobAndScheduleQuotaReached")),
            _ => Answer::Reply(201, vec![], String::new()),
        })
        .await;
        let c = client(&server.url);
        let t0 = std::time::Instant::now();
        c.send(&Call::new(Method::POST, "/jobs").json(br#"{"id":"j"}"#.to_vec()))
            .await
            .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(60));
        c.send(&Call::new(Method::DELETE, "/jobs/j")).await.unwrap();
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[3].header("content-length"), Some("0"));
        verify_shared_key(&seen[0]);
        verify_shared_key(&seen[3]);
    }

    #[tokio::test]
    async fn errors_never_carry_sas_signatures() {
        let server = testserver::start(|_, _| {
            Answer::Reply(
                400,
                vec![],
                r#"{"code":"InvalidPropertyValue","message":{"value":"bad url https://a.blob.core.windows.net/c?sv=1&sig=SECRETSIG"}}"#.into(),
            )
        })
        .await;
        let err = client(&server.url)
            .send(&Call::new(Method::POST, "/jobs/j/tasks").json(b"{}".to_vec()))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("SECRETSIG"), "{text}");
    }

    /// A credential that hands out a fixed token and records the scopes it was asked for.
    #[derive(Debug, Default)]
    struct FixedToken(std::sync::Mutex<Vec<String>>);

    impl azure_core::credentials::TokenCredential for FixedToken {
        // The expansion of `#[async_trait]`, written out to avoid a dependency for one test.
        fn get_token<'a, 'b, 'c, 'd, 'x>(
            &'a self,
            scopes: &'b [&'c str],
            _options: Option<azure_core::credentials::TokenRequestOptions<'d>>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = azure_core::Result<azure_core::credentials::AccessToken>,
                    > + Send
                    + 'x,
            >,
        >
        where
            'a: 'x,
            'b: 'x,
            'c: 'x,
            'd: 'x,
            Self: 'x,
        {
            self.0
                .lock()
                .unwrap()
                .extend(scopes.iter().map(|s| (*s).to_owned()));
            Box::pin(async {
                Ok(azure_core::credentials::AccessToken::new(
                    "entra-token-123".to_owned(),
                    azure_core::time::OffsetDateTime::now_utc()
                        + azure_core::time::Duration::hours(1),
                ))
            })
        }
    }

    #[tokio::test]
    async fn entra_id_sends_a_bearer_token_for_the_batch_scope() {
        let server = testserver::start(|_, _| Answer::Reply(200, vec![], "{}".into())).await;
        let cred = Arc::new(FixedToken::default());
        let c = BatchClient::new(
            &server.url,
            "2025-06-01",
            Auth::Entra(cred.clone()),
            fast_retry(),
        )
        .unwrap();
        c.send(&Call::get("/pools")).await.unwrap();
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(
            seen[0].header("authorization"),
            Some("Bearer entra-token-123")
        );
        assert_eq!(
            cred.0.lock().unwrap().as_slice(),
            ["https://batch.core.windows.net//.default"]
        );
        assert!(!format!("{:?}", Auth::Entra(cred)).contains("entra-token"));
    }

    #[test]
    fn guids_are_well_formed_and_unique() {
        let a = new_guid();
        let b = new_guid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
