//! The HTTP side: accepts connections (hyper, HTTP/1.1), applies transport
//! faults, authenticates, routes by the spec, validates, dispatches to
//! `api.rs`, and adds the headers every Batch response carries.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::Shared;
use crate::faults::{Fault, HttpFault, status_code_name};
use crate::response::{BatchError, Reply};
use crate::spec::{Operation, Route};
use crate::timefmt;

/// Returned to hyper to close the connection without any response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

/// Serves `listener` until the stand-in shuts down or `stop` fires (an outage: the port
/// closes and open connections are cut, while tasks keep running).
pub(crate) async fn accept_loop(
    sh: Arc<Shared>,
    listener: tokio::net::TcpListener,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = sh.shutdown.cancelled() => return,
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (sh, stop) = (sh.clone(), stop.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(sh.clone(), req, peer));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                },
                () = stop.cancelled() => {}
            }
        });
    }
}

/// What a handler sees of a request.
pub(crate) struct Ctx {
    pub op: String,
    pub params: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: hyper::HeaderMap,
    pub body: Value,
    pub path: String,
}

impl Ctx {
    pub(crate) fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer of a `status` fault: Batch's error body with the status's usual code (or the
/// fault's), and `Retry-After` when the fault sets one.
fn injected_status(status: u16, code: Option<&str>, retry_after: Option<u64>) -> BatchError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut e = BatchError::new(
        status,
        code.unwrap_or_else(|| status_code_name(status.as_u16())),
        "The server is currently unable to handle the request (fault injected by batch-standin).",
    );
    if let Some(s) = retry_after {
        e = e.header("Retry-After", s.to_string());
    }
    e
}

/// An error as the service sends it: the BatchError JSON body, plus its headers.
fn error_reply(sh: &Shared, e: BatchError, request_id: &str, now: time::OffsetDateTime) -> Reply {
    let body = e.body(&sh.base_url, request_id, &timefmt::rfc3339(now));
    let mut r = Reply::json(e.status, &body);
    r.headers.extend(e.headers);
    r
}

async fn handle(
    sh: Arc<Shared>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let echo = req
        .headers()
        .get("return-client-request-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let client_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let mut drop_after = false;
    let result = if path.starts_with("/_standin/") {
        if peer.ip().is_loopback() {
            control(&sh, req).await
        } else {
            // The control API has no auth: only this machine may use it.
            Err(BatchError::new(
                StatusCode::FORBIDDEN,
                "AuthorizationFailure",
                "The control API only answers loopback clients.",
            ))
        }
    } else {
        match sh.faults.take_http(&method, &path) {
            Some(HttpFault::DropBefore) => {
                tracing::info!(%method, %path, "fault: dropping connection before handling");
                return Err(DropConnection);
            }
            Some(HttpFault::DropAfter) => {
                drop_after = true;
                batch_request(&sh, req).await
            }
            Some(HttpFault::Status {
                status,
                code,
                retry_after,
            }) => {
                tracing::info!(%method, %path, status, "fault: error status");
                Err(injected_status(status, code.as_deref(), retry_after))
            }
            None => batch_request(&sh, req).await,
        }
    };
    if drop_after {
        tracing::info!(%method, %path, "fault: dropping connection after handling");
        return Err(DropConnection);
    }
    let now = time::OffsetDateTime::now_utc();
    let reply = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() || e.status.as_u16() == 429 {
                tracing::debug!(code = %e.code, %path, "error answer");
            }
            error_reply(&sh, e, &request_id, now)
        }
    };
    let mut builder = Response::builder()
        .status(reply.status)
        .header("request-id", &request_id)
        .header("DataServiceVersion", "3.0")
        .header("Date", timefmt::rfc1123(now));
    if echo && let Some(id) = client_id {
        builder = builder.header("client-request-id", id);
    }
    for (k, v) in &reply.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    tracing::debug!(%method, %path, status = reply.status.as_u16(), %request_id, "request");
    Ok(builder
        .body(Full::new(reply.body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// Pool and job ids are case-insensitive on the service: a path naming one
/// in another case reaches the entity under its stored spelling.
fn canonical_ids(sh: &Shared, params: Vec<(String, String)>) -> Vec<(String, String)> {
    let st = sh.lock();
    params
        .into_iter()
        .map(|(k, v)| {
            let found = match k.as_str() {
                "poolId" => st
                    .pools
                    .keys()
                    .find(|p| p.eq_ignore_ascii_case(&v))
                    .cloned(),
                "jobId" => st.jobs.keys().find(|j| j.eq_ignore_ascii_case(&v)).cloned(),
                _ => None,
            };
            (k, found.unwrap_or(v))
        })
        .collect()
}

/// Percent-decodes one path segment (`+` stays a plus: this is a path, not
/// a form). Invalid escapes are kept as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One Batch call: authenticated, routed, its query, headers and body checked against the
/// spec, handled, and (with `check_responses`) its answer checked too.
async fn batch_request(sh: &Arc<Shared>, req: Request<Incoming>) -> Result<Reply, BatchError> {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    crate::auth::check(
        &sh.config.credentials,
        &method,
        &path,
        &raw_query,
        &parts.headers,
    )?;
    let (op, params) = route(sh, &method, &path)?;
    let params = canonical_ids(sh, params);
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    check_api_version(sh, &query)?;
    sh.spec.validate_query(op, &query)?;
    // A malformed $filter is a 400 before any lookup, as in the service.
    crate::odata::ListQuery::from_query(&query)?;
    sh.spec.validate_headers(op, &parts.headers)?;

    let raw = read_body(sh, &parts.headers, body).await?;
    let body = if sh.spec.takes_body(op) {
        if !raw.is_empty() {
            check_json_content_type(&parts.headers)?;
        }
        sh.spec.validate_body(op, &raw)?
    } else {
        Value::Null
    };
    let ctx = Ctx {
        op: op.id.clone(),
        params,
        query,
        headers: parts.headers,
        body,
        path,
    };
    let reply = crate::api::dispatch(sh, &ctx)?;
    if sh.config.check_responses {
        check_response(sh, op, &ctx, &reply)?;
    }
    Ok(reply)
}

/// A route's path parameters: (name, decoded value).
type PathParams = Vec<(String, String)>;

/// The operation `method` on `path` names, and its path parameters (decoded).
fn route<'s>(
    sh: &'s Shared,
    method: &str,
    path: &str,
) -> Result<(&'s Operation, PathParams), BatchError> {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    match sh.spec.route(method, &segs) {
        Route::Found(op, params) => Ok((op, params)),
        Route::WrongMethod => Err(BatchError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        )
        .value("HttpVerb", method)),
        Route::NotFound => Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            "The requested URI does not represent any resource on the server.",
        )
        .value("RequestUri", path)),
    }
}

/// `api-version` is required and must be one the stand-in serves.
fn check_api_version(sh: &Shared, query: &[(String, String)]) -> Result<(), BatchError> {
    match query.iter().find(|(k, _)| k == "api-version") {
        None => Err(BatchError::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
        )
        .value("QueryParameterName", "api-version")),
        Some((_, v)) if !sh.config.api_versions.iter().any(|a| a == v) => {
            Err(crate::spec::bad_query(
                "api-version",
                v,
                &format!(
                    "The specified api version is not supported; use one of {}",
                    sh.config.api_versions.join(", ")
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// A request body must be sent as JSON.
fn check_json_content_type(headers: &hyper::HeaderMap) -> Result<(), BatchError> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Ok(());
    }
    Err(BatchError::new(
        StatusCode::BAD_REQUEST,
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
    )
    .value("HeaderName", "Content-Type")
    .value("HeaderValue", ct)
    .value(
        "Reason",
        "Request bodies must be application/json; odata=minimalmetadata",
    ))
}

/// Our own successful JSON answers must match the spec a client is written against; one
/// that does not is a stand-in bug, answered 500.
fn check_response(sh: &Shared, op: &Operation, ctx: &Ctx, reply: &Reply) -> Result<(), BatchError> {
    let json = reply
        .headers
        .iter()
        .any(|(k, v)| k == "Content-Type" && v.starts_with("application/json"));
    if !reply.status.is_success() || reply.body.is_empty() || !json {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let selected = ctx.query("$select").is_some();
    if let Err(e) = sh.spec.validate_response(op, &body, selected) {
        tracing::error!(op = %ctx.op, code = %e.code, values = ?e.values, "stand-in response does not match the spec");
        return Err(BatchError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "StandInResponseInvalid",
            format!("batch-standin built a {} response that does not match BatchService.json (a stand-in bug).", ctx.op),
        )
        .value("Reason", format!("{}: {:?}", e.code, e.values)));
    }
    Ok(())
}

/// Reads the request body under the size limit. A `bodyLimit` fault counts bytes; the
/// service's own limit (`MaxLimit` 1048576) is applied as the service applies it, to the
/// body's size in UTF-16: a recorded 528,963-byte ASCII body was refused with that limit.
async fn read_body(
    sh: &Shared,
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<Bytes, BatchError> {
    let fault = sh.faults.body_limit();
    let service = sh.config.max_body_bytes;
    let service_too_large = || {
        BatchError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
        .value("MaxLimit", service.to_string())
    };
    // UTF-16 takes at least two thirds of UTF-8's bytes, so more raw bytes never fit.
    let cap = fault.unwrap_or(service.saturating_mul(3) / 2);
    let too_large = |n: usize| match fault {
        Some(limit) => BatchError::body_too_large(format!(
            "The request body is {n} bytes; the limit is {limit} bytes."
        )),
        None => service_too_large(),
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > cap) {
        return Err(too_large(n));
    }
    let raw = Limited::new(body, cap)
        .collect()
        .await
        .map_err(|_| too_large(cap + 1))?
        .to_bytes();
    if fault.is_none() && 2 * String::from_utf8_lossy(&raw).encode_utf16().count() > service {
        return Err(service_too_large());
    }
    Ok(raw)
}

/// The test-only control API (no auth; bind to loopback):
/// `GET/POST/DELETE /_standin/faults`, `GET /_standin/stats`.
async fn control(sh: &Arc<Shared>, req: Request<Incoming>) -> Result<Reply, BatchError> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let list = |sh: &Shared| {
        Reply::json(
            StatusCode::OK,
            &serde_json::json!({"faults": sh.faults.list()}),
        )
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/_standin/faults") => Ok(list(sh)),
        ("DELETE", "/_standin/faults") => {
            sh.faults.clear();
            Ok(list(sh))
        }
        ("POST", "/_standin/faults") => {
            let v: Value = serde_json::from_slice(&raw)
                .map_err(|e| crate::spec::invalid_body(&format!("not JSON: {e}")))?;
            let items = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            let mut parsed = Vec::new();
            for item in items {
                let f: Fault = serde_json::from_value(item.clone())
                    .map_err(|e| crate::spec::invalid_body(&format!("bad fault {item}: {e}")))?;
                parsed.push(f);
            }
            for f in parsed {
                tracing::info!(fault = ?f, "fault armed");
                sh.faults.arm(f);
            }
            Ok(list(sh))
        }
        ("GET", "/_standin/stats") => {
            let st = sh.lock();
            let tasks: usize = st.jobs.values().map(|j| j.tasks.len()).sum();
            Ok(Reply::json(
                StatusCode::OK,
                &serde_json::json!({"pools": st.pools.len(), "jobs": st.jobs.len(), "tasks": tasks,
                                    "running": st.running, "peakRunning": st.peak_running}),
            ))
        }
        _ => Err(BatchError::new(
            StatusCode::NOT_FOUND,
            "InvalidUri",
            "unknown control endpoint",
        )
        .value(
            "Endpoints",
            "GET|POST|DELETE /_standin/faults, GET /_standin/stats",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_decode() {
        assert_eq!(super::decode("wd%2Fout%20put.txt"), "wd/out put.txt");
        assert_eq!(super::decode("a+b&c=d"), "a+b&c=d");
        assert_eq!(super::decode("100%"), "100%");
    }
}
