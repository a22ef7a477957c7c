//! Retrying transient storage failures with exponential backoff.
//!
//! The SDK's own retry policy is switched off for our clients so that this is the one place
//! deciding what is retried and for how long: a multi-block upload must survive an emulator
//! (or network) outage of several seconds, longer than the SDK's default budget.

use std::future::Future;
use std::time::{Duration, Instant};

use azure_core::error::ErrorKind;

use crate::error::Error;
use crate::redact::redact;

/// How long and how often to retry one storage request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay; doubles each attempt.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// Whether a failed request may succeed if sent again: no connection, an I/O error mid-way,
/// or a status the service uses for throttling and temporary trouble.
pub(crate) fn is_transient(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::Connection | ErrorKind::Io => true,
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            matches!(u16::from(*status), 408 | 429 | 500 | 502 | 503 | 504)
                // Azure keeps a deleted container's name reserved for about 30 s; re-creating
                // it (a run deleted and started again) succeeds once that has passed.
                || error_code.as_deref() == Some("ContainerBeingDeleted")
        }
        _ => false,
    }
}

/// The SDK error with its causes, secrets removed.
pub(crate) fn describe(e: &azure_core::Error) -> String {
    let mut text = match e.kind() {
        ErrorKind::HttpResponse {
            error_code: Some(code),
            ..
        } => code.clone(),
        _ => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redact(&text)
}

/// Converts an SDK error into ours, naming the operation.
pub(crate) fn service_error(operation: &str, e: &azure_core::Error) -> Error {
    Error::Service {
        operation: operation.to_owned(),
        status: e.http_status().map(u16::from),
        message: describe(e),
    }
}

/// The service's error code (e.g. `BlobNotFound`), if it sent one.
pub(crate) fn error_code(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails permanently, or the time budget is spent.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        operation: &str,
        mut attempt: F,
    ) -> Result<T, azure_core::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, azure_core::Error>>,
    {
        let started = Instant::now();
        let mut delay = self.initial_delay;
        let mut tries = 1u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && started.elapsed() + delay < self.max_elapsed => {
                    tracing::warn!(
                        operation,
                        attempt = tries,
                        delay_ms = delay.as_millis() as u64,
                        error = %describe(&e),
                        "transient storage failure, retrying"
                    );
                    tokio::time::sleep(jitter(delay)).await;
                    delay = (delay * 2).min(self.max_delay);
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// 50-100 % of `d`, so that many concurrent uploads do not retry in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let frac = 0.5 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn retries_transient_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_elapsed: Duration::from_secs(5),
        };
        let v = policy
            .run("op", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(azure_core::Error::with_message(
                        ErrorKind::Connection,
                        "refused",
                    ))
                } else {
                    Ok(7)
                }
            })
            .await
            .unwrap();
        assert_eq!((v, calls.load(Ordering::SeqCst)), (7, 4));
    }

    fn http_error(status: u16, code: &str) -> azure_core::Error {
        azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: status.into(),
                error_code: Some(code.to_owned()),
                raw_response: None,
            },
            "test",
        )
    }

    #[test]
    fn classifies_statuses_and_codes() {
        assert!(is_transient(&http_error(503, "ServerBusy")));
        assert!(is_transient(&http_error(429, "TooManyRequests")));
        assert!(is_transient(&http_error(409, "ContainerBeingDeleted")));
        assert!(!is_transient(&http_error(409, "ContainerAlreadyExists")));
        assert!(!is_transient(&http_error(403, "AuthenticationFailed")));
        assert!(!is_transient(&http_error(404, "BlobNotFound")));
        assert_eq!(
            error_code(&http_error(404, "BlobNotFound")),
            Some("BlobNotFound")
        );
    }

    #[tokio::test]
    async fn does_not_retry_permanent_errors() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = RetryPolicy::default()
            .run("op", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(azure_core::Error::with_message(ErrorKind::Credential, "no"))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
