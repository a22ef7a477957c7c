//! HTTP to the Batch data plane: a `client-request-id` on every call, retries with backoff and
//! jitter, and errors that never carry a key or SAS signature. Split by concern: `auth` signs
//! or fetches a token, `retry` decides when to try again, `error` maps a failed answer,
//! `clock` and `random` are the dates and ids the protocol needs.
//!
//! This module knows HTTP and Batch's auth scheme; it knows nothing about pools, jobs or tasks.

mod auth;
mod calls;
mod clock;
mod error;
mod random;
mod retry;

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use crate::backend::kit::redact::redact;

pub(crate) use auth::{Auth, JSON_CONTENT_TYPE, decode_key};
pub(crate) use calls::next_call;
pub(crate) use clock::{civil_from_days, parse_rfc1123, parse_rfc3339};
pub(crate) use error::ApiError;
pub(crate) use retry::RetryPolicy;

use auth::Signed;
use clock::rfc1123;
use random::new_guid;
use retry::parse_retry_after;

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
        let local = |message: String| ApiError::local("client setup", message);
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
            .map_err(|e| {
                let mut err =
                    ApiError::local(&call.describe(), format!("unexpected response body: {e}"));
                err.status = Some(reply.status.as_u16());
                err
            })
    }

    /// One attempt; a failure comes with the server's Retry-After, if any.
    async fn send_once(
        &self,
        call: &Call,
        client_request_id: &str,
    ) -> Result<Reply, (ApiError, Option<Duration>)> {
        let what = call.describe();
        let url = self.url_for(call);
        let content_length = match (&call.body, &call.method) {
            (Some(b), _) => Some(b.len()),
            (None, m) if *m == Method::GET || *m == Method::HEAD => None,
            // Batch signs "0" for body-less writes, so the header must really say 0.
            (None, _) => Some(0),
        };
        let mut ocp: Vec<(String, String)> = vec![("ocp-date".into(), rfc1123(SystemTime::now()))];
        ocp.extend(call.ocp_headers.iter().cloned());
        let signed = Signed {
            method: call.method.as_str(),
            content_length,
            content_type: if call.body.is_some() {
                JSON_CONTENT_TYPE
            } else {
                ""
            },
            ocp_headers: &ocp,
        };
        let mut headers = request_headers(&signed, client_request_id);
        let authorization = self.auth.header(&url, &signed, &what).await;
        headers.insert(
            reqwest::header::AUTHORIZATION,
            authorization.map_err(|e| (e, None))?,
        );
        let mut req = self.http.request(call.method.clone(), url).headers(headers);
        if let Some(b) = &call.body {
            req = req.body(b.clone());
        } else if content_length == Some(0) {
            req = req.body(Vec::new());
        }
        let transport = |e: reqwest::Error| {
            // reqwest's error Display can include the URL; ours has no secrets in it (Batch
            // URLs carry only ids and api-version), but strip it anyway.
            let message = redact(&e.without_url().to_string());
            (ApiError::local(&what, message), None)
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let request_id = header("request-id").map(str::to_owned);
        let retry_after = header(reqwest::header::RETRY_AFTER.as_str()).and_then(parse_retry_after);
        let date = header(reqwest::header::DATE.as_str()).and_then(parse_rfc1123);
        let body = resp.bytes().await.map_err(transport)?;
        tracing::debug!(
            call = %what,
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
        let hint = self.auth.denied_hint();
        let err = ApiError::from_answer(&what, status, &body, request_id, hint);
        Err((err, retry_after))
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

/// Every header but `Authorization`: the signed `ocp-*` headers, the request id (and the ask to
/// echo it), and the content type and length that Shared Key signs.
fn request_headers(signed: &Signed<'_>, client_request_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in signed.ocp_headers {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("static ocp header name"),
            HeaderValue::from_str(v).expect("ocp header values are ASCII"),
        );
    }
    headers.insert(
        "client-request-id",
        HeaderValue::from_str(client_request_id).expect("guid"),
    );
    headers.insert("return-client-request-id", HeaderValue::from_static("true"));
    if !signed.content_type.is_empty() {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
    }
    if let Some(n) = signed.content_length {
        headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    headers
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::auth::tests::KEY_B64;
    use super::auth::{sign, string_to_sign};
    use super::*;

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
}
