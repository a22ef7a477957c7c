//! Request authentication as the Batch service does it: its own Shared Key
//! scheme (not Storage's) or a Microsoft Entra bearer token.
//!
//! String to sign (learn.microsoft.com "Authenticate requests to the Azure
//! Batch service"):
//!
//! ```text
//! VERB \n Content-Encoding \n Content-Language \n Content-Length \n Content-MD5 \n
//! Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n
//! If-Unmodified-Since \n Range \n
//! ocp-* headers, lowercased names, sorted: "name:value\n" each
//! "/" account path  then per query parameter, names lowercased and sorted,
//! values URL-decoded: "\nname:value" (several values: sorted, comma-joined)
//! ```
//!
//! Header values are taken exactly as sent: a POST sent with
//! `Content-Length: 0` signs `0`, a GET without the header signs an empty line.
//! Empty query values and empty `ocp-*` headers are left out, as Microsoft's
//! own client (`azure-batch` for Python, `BatchSharedKeyAuthPolicy`) does.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hyper::{HeaderMap, StatusCode};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::response::BatchError;
use crate::timefmt;

/// How far a request's `ocp-date`/`Date` may be from now (the service's
/// documented 15-minute window).
const CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

/// The credentials the stand-in accepts.
#[derive(Clone)]
pub struct Credentials {
    pub account_name: String,
    /// The decoded account key; `None` disables Shared Key.
    pub account_key: Option<Vec<u8>>,
    /// A static bearer token to accept; `None` disables bearer auth.
    pub bearer_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, not even in debug output.
        f.debug_struct("Credentials")
            .field("account_name", &self.account_name)
            .field("account_key", &self.account_key.as_ref().map(|_| "<set>"))
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Builds Batch's Shared Key string to sign. `raw_query` is the query as
/// sent (percent-encoded); `path` is the percent-encoded path as sent.
pub fn string_to_sign(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    account: &str,
) -> String {
    const SIGNED: [&str; 11] = [
        "content-encoding",
        "content-language",
        "content-length",
        "content-md5",
        "content-type",
        "date",
        "if-modified-since",
        "if-match",
        "if-none-match",
        "if-unmodified-since",
        "range",
    ];
    let mut s = String::new();
    s.push_str(method);
    s.push('\n');
    for h in SIGNED {
        s.push_str(headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or(""));
        s.push('\n');
    }
    let mut ocp: Vec<(String, &str)> = headers
        .iter()
        .filter(|(n, v)| n.as_str().starts_with("ocp-") && !v.is_empty())
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("")))
        .collect();
    ocp.sort();
    for (n, v) in ocp {
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(account);
    s.push_str(path);
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        if !v.is_empty() {
            params
                .entry(k.to_lowercase())
                .or_default()
                .push(v.into_owned());
        }
    }
    for (k, mut vs) in params {
        vs.sort();
        s.push('\n');
        s.push_str(&k);
        s.push(':');
        s.push_str(&vs.join(","));
    }
    s
}

/// `base64(HMAC-SHA256(key, utf8(string_to_sign)))`.
pub fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn failed(detail: impl Into<String>) -> BatchError {
    BatchError::new(
        StatusCode::FORBIDDEN,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
    )
    .value("AuthenticationErrorDetail", detail)
}

/// Accepts or refuses a request.
pub(crate) fn check(
    creds: &Credentials,
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<(), BatchError> {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(failed("The Authorization header is missing."));
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return match &creds.bearer_token {
            Some(t) if constant_time_eq(t.as_bytes(), token.trim().as_bytes()) => Ok(()),
            Some(_) => Err(failed("The bearer token is not valid.")),
            None => Err(failed(
                "Bearer tokens are not accepted by this stand-in (start it with --bearer-token).",
            )),
        };
    }
    let Some(rest) = auth.strip_prefix("SharedKey ") else {
        return Err(failed(
            "The Authorization header scheme must be SharedKey or Bearer.",
        ));
    };
    let Some(key) = &creds.account_key else {
        return Err(failed(
            "Shared Key authentication is disabled on this stand-in.",
        ));
    };
    let Some((account, signature)) = rest.trim().split_once(':') else {
        return Err(failed(
            "The Authorization header must be 'SharedKey account:signature'.",
        ));
    };
    if account != creds.account_name {
        return Err(failed(format!(
            "The account name '{account}' in the Authorization header does not match this account."
        )));
    }
    let date = headers
        .get("ocp-date")
        .or_else(|| headers.get("date"))
        .and_then(|v| v.to_str().ok());
    let Some(date) = date else {
        return Err(failed(
            "The request must carry an ocp-date (or Date) header.",
        ));
    };
    match timefmt::parse_rfc1123(date) {
        Some(t) if (OffsetDateTime::now_utc() - t).abs() <= CLOCK_SKEW => {}
        Some(_) => {
            return Err(failed(
                "The request date is more than 15 minutes away from the server time.",
            ));
        }
        None => {
            return Err(failed(format!(
                "The date '{date}' is not an RFC 1123 date."
            )));
        }
    }
    let sts = string_to_sign(method, path, raw_query, headers, account);
    let expected = sign(key, &sts);
    if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(failed(format!(
            "The MAC signature found in the HTTP request '{signature}' is not the same as any computed signature. Server used following string to sign: '{sts}'."
        )))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed with Python's urllib/hmac/hashlib/base64 following
    // Microsoft's `BatchSharedKeyAuthPolicy` (azure-batch for Python).
    const KEY: &str = "c3RhbmQtaW4gdGVzdCBrZXkgLSBub3QgYSByZWFsIHNlY3JldA==";
    const DATE: &str = "Sat, 28 Nov 2026 10:00:00 GMT";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY).unwrap()
    }

    #[test]
    fn get_with_odata_query_matches_python() {
        let mut h = HeaderMap::new();
        h.insert("ocp-date", DATE.parse().unwrap());
        let q = "api-version=2025-06-01.21.0&%24filter=state%20eq%20%27completed%27&%24select=id,state&maxresults=100";
        let sts = string_to_sign("GET", "/jobs/job-1/tasks", q, &h, "acct");
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nocp-date:Sat, 28 Nov 2026 10:00:00 GMT\n/acct/jobs/job-1/tasks\n$filter:state eq 'completed'\n$select:id,state\napi-version:2025-06-01.21.0\nmaxresults:100"
        );
        assert_eq!(
            sign(&key(), &sts),
            "z6kHTNRjcrGYsDsJb+D6uOienv1d8thOCIpE2H9A2Is="
        );
    }

    #[test]
    fn bodyless_post_signs_the_zero_length_it_sends() {
        let mut h = HeaderMap::new();
        h.insert("ocp-date", DATE.parse().unwrap());
        h.insert("content-length", "0".parse().unwrap());
        let sts = string_to_sign(
            "POST",
            "/jobs/job-1/terminate",
            "api-version=2025-06-01.21.0",
            &h,
            "acct",
        );
        assert_eq!(
            sign(&key(), &sts),
            "/1ZnjbqIRTySpxWygqHPCzyu8eLRIGQqFFQixE06n3M="
        );
    }
}
