//! A failed Batch call as the rest of the backend sees it: status, Batch's error code and a
//! message with every secret masked.

use reqwest::StatusCode;

use super::super::model::BatchErrorBody;
use crate::backend::kit::redact::redact;

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
    /// A failure before any answer arrived (setup, auth, transport): no status, no code.
    pub(super) fn local(call: &str, message: String) -> Self {
        Self {
            status: None,
            code: None,
            message,
            call: call.to_owned(),
            request_id: None,
        }
    }

    /// The error of a non-2xx answer: Batch's code, its message and detail values (or the
    /// body's first 300 characters when it is not Batch's error JSON), redacted, plus `hint`
    /// on 401/403.
    pub(super) fn from_answer(
        call: &str,
        status: StatusCode,
        body: &[u8],
        request_id: Option<String>,
        hint: &str,
    ) -> Self {
        let (code, message) = match serde_json::from_slice::<BatchErrorBody>(body) {
            Ok(b) => {
                let mut m = b.message.map(|m| m.value).unwrap_or_default();
                for kv in b.values {
                    if let (Some(k), Some(v)) = (kv.key, kv.value) {
                        m.push_str(&format!("; {k}: {v}"));
                    }
                }
                (b.code, m)
            }
            Err(_) => (
                None,
                String::from_utf8_lossy(body).chars().take(300).collect(),
            ),
        };
        let mut message = redact(message.trim());
        if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
            message.push_str(hint);
        }
        Self {
            status: Some(status.as_u16()),
            code,
            message,
            call: call.to_owned(),
            request_id,
        }
    }

    /// Whether Batch answered with error code `code` (compared ignoring ASCII case).
    pub(crate) fn is_code(&self, code: &str) -> bool {
        super::super::model::is_code(self.code.as_deref(), code)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
