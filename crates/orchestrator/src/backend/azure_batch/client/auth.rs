//! How a Batch request is authorised: the Shared Key signature (Batch's own string-to-sign,
//! not Storage's) or a Microsoft Entra ID bearer token.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::HeaderValue;
use sha2::Sha256;

use super::ApiError;
use crate::backend::kit::redact::redact;

/// Batch's body content type; Shared Key signs it, so it must be exactly what is sent.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; odata=minimalmetadata";

/// Entra ID scope of the Batch data plane (the double slash is deliberate: v1 resource id
/// `https://batch.core.windows.net/` plus `/.default`).
pub(crate) const ENTRA_SCOPE: &str = "https://batch.core.windows.net//.default";

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

/// What a request sends that Shared Key signs, besides the URL.
pub(super) struct Signed<'a> {
    pub(super) method: &'a str,
    pub(super) content_length: Option<usize>,
    pub(super) content_type: &'a str,
    pub(super) ocp_headers: &'a [(String, String)],
}

impl Auth {
    /// The `Authorization` header for a request to `url`, marked sensitive. `call` names the
    /// call in an error.
    pub(super) async fn header(
        &self,
        url: &Url,
        signed: &Signed<'_>,
        call: &str,
    ) -> Result<HeaderValue, ApiError> {
        let authz = match self {
            Auth::SharedKey { account, key } => {
                let signed_query: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let sts = string_to_sign(
                    signed.method,
                    signed.content_length,
                    signed.content_type,
                    signed.ocp_headers,
                    account,
                    url.path(),
                    &signed_query,
                );
                format!("SharedKey {account}:{}", sign(key, &sts))
            }
            Auth::Entra(cred) => {
                let token = cred.get_token(&[ENTRA_SCOPE], None).await.map_err(|e| {
                    let mut err = ApiError::local(
                        call,
                        // The credential's error may quote a token request or a secret.
                        redact(&format!(
                            "could not get a Microsoft Entra ID token for {ENTRA_SCOPE}: {e}"
                        )),
                    );
                    err.code = Some("EntraTokenUnavailable".into());
                    err
                })?;
                format!("Bearer {}", token.token.secret())
            }
        };
        let mut value = HeaderValue::from_str(&authz)
            .map_err(|_| ApiError::local(call, "authorization header is not ASCII".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// What to check when Batch answers 401 or 403.
    pub(super) fn denied_hint(&self) -> &'static str {
        match self {
            Auth::SharedKey { .. } => {
                " (check AZURE_BATCH_ACCOUNT_NAME and AZURE_BATCH_ACCOUNT_KEY, and the machine's clock)"
            }
            Auth::Entra(_) => {
                " (the identity needs the Azure Batch Data Contributor role on the Batch account)"
            }
        }
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    // Key and signatures were computed independently with Python's hmac/hashlib/base64 from the
    // literal strings below, following Microsoft's reference policy (BatchSharedKeyAuthPolicy).
    pub(in super::super) const KEY_B64: &str =
        "b3JjaGVzdHJhdG9yLXRlc3Qta2V5LW5vdC1hLXNlY3JldC0wMTIzNDU2Nzg5";
    const DATE: &str = "Sat, 28 Nov 2026 10:00:00 GMT";

    /// The string-to-sign of a request to `myaccount` at `DATE`, and its signature.
    fn signed(
        method: &str,
        content_length: Option<usize>,
        content_type: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> (String, String) {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let ocp = [("ocp-date".to_owned(), DATE.to_owned())];
        let sts = string_to_sign(
            method,
            content_length,
            content_type,
            &ocp,
            "myaccount",
            path,
            &query,
        );
        let signature = sign(&decode_key(KEY_B64).unwrap(), &sts);
        (sts, signature)
    }

    #[test]
    fn post_with_body_signs_length_type_and_sorted_query() {
        let (sts, signature) = signed(
            "POST",
            Some(112),
            JSON_CONTENT_TYPE,
            "/jobs/orch-run1/addtaskcollection",
            &[("timeout", "30"), ("api-version", "2025-06-01")],
        );
        assert_eq!(
            sts,
            "POST\n\n\n112\n\napplication/json; odata=minimalmetadata\n\n\n\n\n\n\nocp-date:Sat, 28 Nov 2026 10:00:00 GMT\n/myaccount/jobs/orch-run1/addtaskcollection\napi-version:2025-06-01\ntimeout:30"
        );
        assert_eq!(signature, "u7EdeibEFuhAA3KMEXWJ3P8S4pKTKi9o0CSuCVZYycY=");
    }

    #[test]
    fn get_signs_decoded_odata_query_and_no_length() {
        let (_, signature) = signed(
            "GET",
            None,
            "",
            "/jobs/orch-run1/tasks",
            &[
                ("api-version", "2025-06-01"),
                ("$select", "id,state,executionInfo"),
                ("$filter", "state eq 'completed'"),
                ("empty", ""),
            ],
        );
        assert_eq!(signature, "8qxyJMytP5FhKsVSMulPhH/TpgcD7GUePdTJVDilwR0=");
    }

    #[test]
    fn bodyless_delete_signs_zero_length() {
        let (_, signature) = signed(
            "DELETE",
            Some(0),
            "",
            "/pools/orch-run1",
            &[("api-version", "2025-06-01")],
        );
        assert_eq!(signature, "poGXis5WrdKuQnDyYxDCbdhU5peiqEUiZseBRbgOVDE=");
    }
}
