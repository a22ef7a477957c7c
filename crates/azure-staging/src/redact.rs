//! Removing secrets from text before it is logged, stored in an error or printed.
//!
//! Four kinds of secret can end up in a message: a SAS signature (`sig=` in a URL), an account
//! key (`AccountKey=` in a connection string), a bearer token and a Shared Key signature
//! (`SharedKey account:signature`, Batch's request signing). [`redact`] masks all of them, every
//! occurrence, so that an error from the SDK or a service (which may quote the request) is safe
//! to show. It is the workspace's only redactor: the orchestrator's backends use it too.

/// Replacement for a removed secret.
pub const REDACTED: &str = "REDACTED";

/// Returns `text` with SAS signatures, account keys and bearer tokens masked.
pub fn redact(text: &str) -> String {
    let mut out = mask_after(text, &["sig=", "sig%3d", "sig%3D"], |c| {
        matches!(
            c,
            '&' | ' ' | '"' | '\'' | ')' | '>' | '<' | '\n' | '\t' | ',' | ';'
        )
    });
    out = mask_after(
        &out,
        &["AccountKey=", "accountkey=", "SharedAccessSignature="],
        |c| matches!(c, ';' | ' ' | '"' | '\'' | '\n' | '\t'),
    );
    out = mask_after(
        &out,
        &["Bearer ", "bearer ", "SharedKey ", "sharedkey "],
        |c| matches!(c, ' ' | '"' | '\'' | '\n' | '\t' | ','),
    );
    out
}

/// Masks the value after each occurrence of a marker, up to the first `end` character.
fn mask_after(text: &str, markers: &[&str], end: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = markers
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, m.len())))
            .min_by_key(|&(i, _)| i);
        let Some((at, len)) = next else {
            out.push_str(rest);
            return out;
        };
        // A marker must start a parameter: `sig=` but not `xsig=`.
        let starts_param = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        if !starts_param {
            continue;
        }
        let value_len = rest.find(|c: char| end(c)).unwrap_or(rest.len());
        if value_len > 0 {
            out.push_str(REDACTED);
        }
        rest = &rest[value_len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_sas_signature_in_urls() {
        let url = "https://a.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=abc%2Bdef%3D&se=x";
        let r = redact(url);
        assert_eq!(
            r,
            "https://a.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=REDACTED&se=x"
        );
        assert_eq!(
            redact("(url: http://h/c?sig=xyz)"),
            "(url: http://h/c?sig=REDACTED)"
        );
        assert_eq!(redact("...?sig%3Dxyz&a=1"), "...?sig%3DREDACTED&a=1");
    }

    #[test]
    fn masks_account_keys_and_tokens() {
        let cs =
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy==;EndpointSuffix=x";
        assert_eq!(
            redact(cs),
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=REDACTED;EndpointSuffix=x"
        );
        assert_eq!(
            redact("Authorization: Bearer eyJ0.eyJ1.sig"),
            "Authorization: Bearer REDACTED"
        );
    }

    #[test]
    fn masks_every_shared_key_and_bearer_not_only_the_first() {
        let text = "SharedKey acct:SIG1== then SharedKey acct:SIG2== and Bearer T1, Bearer T2";
        let r = redact(text);
        for secret in ["SIG1", "SIG2", "T1", "T2"] {
            assert!(!r.contains(secret), "{r}");
        }
        assert_eq!(
            r,
            "SharedKey REDACTED then SharedKey REDACTED and Bearer REDACTED, Bearer REDACTED"
        );
    }

    #[test]
    fn leaves_lookalikes_and_plain_text_alone() {
        assert_eq!(redact("design=1&xsig=2"), "design=1&xsig=2");
        assert_eq!(redact("nothing secret here"), "nothing secret here");
        assert_eq!(redact("sig="), "sig=");
    }
}
