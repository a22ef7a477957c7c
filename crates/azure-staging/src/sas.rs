//! Shared access signatures: the account-key signer, the SAS URL type and the expiry rule.
//!
//! `azure_storage_blob` 1.x cannot sign with an account key (Entra ID only, by design), so this
//! module signs service SAS (container `sr=c`, blob `sr=b`) and account SAS itself with
//! HMAC-SHA256. User delegation SAS (Entra) are built with `azure_storage_sas` in
//! [`crate::StagingClient`]. Everything here is pure: no I/O, no clock except where a function says so.
//!
//! Reference: <https://learn.microsoft.com/rest/api/storageservices/create-service-sas> and
//! `create-account-sas`; string-to-sign layouts below are the ones for sv 2020-12-06 and later.

use std::fmt;
use std::time::{Duration, SystemTime};

use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::redact::redact;

/// Service version our own signatures are computed for (accepted by Azure and Azurite 3.37).
pub const SAS_VERSION: &str = "2022-11-02";

/// How far back `st` is set, so a node whose clock runs a little behind can use a fresh SAS.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A storage account name with its shared key. The key never appears in `Debug`.
#[derive(Clone)]
pub struct AccountKey {
    account: String,
    key: Vec<u8>,
}

impl AccountKey {
    /// `key_base64` is the key as the portal shows it (base64).
    pub fn new(account: impl Into<String>, key_base64: &str) -> Result<Self> {
        let account = account.into();
        if account.is_empty() {
            return Err(Error::Config("storage account name is empty".into()));
        }
        let key = B64.decode(key_base64.trim()).map_err(|_| {
            Error::Config(format!(
                "the key for storage account {account:?} is not valid base64 (value not shown)"
            ))
        })?;
        if key.is_empty() {
            return Err(Error::Config(format!(
                "the key for storage account {account:?} is empty"
            )));
        }
        Ok(AccountKey { account, key })
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Base64 HMAC-SHA256 of `string_to_sign` under this key.
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Which schemes a SAS may be used over (`spr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `spr=https`: the only choice against real Azure.
    HttpsOnly,
    /// `spr=https,http`: only for a loopback emulator endpoint.
    HttpsAndHttp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpsOnly => "https",
            Protocol::HttpsAndHttp => "https,http",
        }
    }
}

/// Blob SAS permissions. Rendered in the canonical order `r a c w d l`, which the service
/// requires in the signed string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    /// `r`: read content, properties, metadata.
    pub read: bool,
    /// `a`: add (append blobs).
    pub add: bool,
    /// `c`: create a new blob.
    pub create: bool,
    /// `w`: write content (also overwrite).
    pub write: bool,
    /// `d`: delete.
    pub delete: bool,
    /// `l`: list (container or account only).
    pub list: bool,
}

impl Permissions {
    /// `r`: what an input needs.
    pub const READ: Permissions = Permissions {
        read: true,
        add: false,
        create: false,
        write: false,
        delete: false,
        list: false,
    };
    /// `rl`: read a whole prefix through `storageContainerUrl` + `blobPrefix`.
    pub const READ_LIST: Permissions = Permissions {
        list: true,
        ..Permissions::READ
    };
    /// `cw`: what Batch output upload needs on the output container, and nothing else.
    pub const CREATE_WRITE: Permissions = Permissions {
        read: false,
        add: false,
        create: true,
        write: true,
        delete: false,
        list: false,
    };
    /// `racwdl`: the orchestrator's own account SAS (containers, blobs, cleanup).
    pub const ALL: Permissions = Permissions {
        read: true,
        add: true,
        create: true,
        write: true,
        delete: true,
        list: true,
    };
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [
            (self.read, 'r'),
            (self.add, 'a'),
            (self.create, 'c'),
            (self.write, 'w'),
            (self.delete, 'd'),
            (self.list, 'l'),
        ] {
            if on {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// What a service SAS is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// `sr=c`: every blob in the container.
    Container(&'a str),
    /// `sr=b`: one blob.
    Blob(&'a str, &'a str),
}

/// `YYYY-MM-DDThh:mm:ssZ`, the form SAS fields take.
pub fn format_time(t: SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_time(s: &str) -> Option<SystemTime> {
    let t = azure_core::time::parse_rfc3339(s).ok()?;
    Some(SystemTime::from(t))
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fields shared by every SAS we sign.
#[derive(Debug, Clone, Copy)]
pub struct SasWindow {
    /// `st`, if any.
    pub start: Option<SystemTime>,
    /// `se`.
    pub expiry: SystemTime,
    /// `spr`.
    pub protocol: Protocol,
}

/// The string-to-sign of a service SAS (sv ≥ 2020-12-06: 16 fields).
pub fn service_string_to_sign(
    account: &str,
    resource: Resource<'_>,
    permissions: Permissions,
    window: &SasWindow,
) -> String {
    let (canonical, sr) = match resource {
        // The account appears in the canonical resource even with path-style (Azurite) URLs.
        Resource::Container(c) => (format!("/blob/{account}/{c}"), "c"),
        Resource::Blob(c, b) => (format!("/blob/{account}/{c}/{b}"), "b"),
    };
    [
        permissions.to_string(),
        window.start.map(format_time).unwrap_or_default(),
        format_time(window.expiry),
        canonical,
        String::new(), // si: no stored access policy
        String::new(), // sip: no IP restriction
        window.protocol.as_str().to_owned(),
        SAS_VERSION.to_owned(),
        sr.to_owned(),
        String::new(), // snapshot time
        String::new(), // ses: encryption scope
        String::new(), // rscc
        String::new(), // rscd
        String::new(), // rsce
        String::new(), // rscl
        String::new(), // rsct
    ]
    .join("\n")
}

/// Signs a service SAS and returns its query string (without `?`).
pub fn service_sas(
    key: &AccountKey,
    resource: Resource<'_>,
    permissions: Permissions,
    window: &SasWindow,
) -> String {
    let sts = service_string_to_sign(key.account(), resource, permissions, window);
    let sr = match resource {
        Resource::Container(_) => "c",
        Resource::Blob(..) => "b",
    };
    let mut q = format!("sv={SAS_VERSION}&sp={permissions}&sr={sr}");
    push_window_and_signature(&mut q, window, &key.sign(&sts));
    q
}

/// The end every SAS query shares: `st` (when set), `se`, `spr`, then `sig`.
fn push_window_and_signature(q: &mut String, window: &SasWindow, signature: &str) {
    if let Some(st) = window.start {
        q.push_str(&format!("&st={}", encode(&format_time(st))));
    }
    q.push_str(&format!(
        "&se={}&spr={}&sig={}",
        encode(&format_time(window.expiry)),
        encode(window.protocol.as_str()),
        encode(signature)
    ));
}

/// The string-to-sign of an account SAS for the blob service (sv ≥ 2020-12-06).
pub fn account_string_to_sign(
    account: &str,
    permissions: Permissions,
    resource_types: &str,
    window: &SasWindow,
) -> String {
    format!(
        "{account}\n{permissions}\nb\n{resource_types}\n{}\n{}\n\n{}\n{SAS_VERSION}\n\n",
        window.start.map(format_time).unwrap_or_default(),
        format_time(window.expiry),
        window.protocol.as_str(),
    )
}

/// Signs an account SAS (`ss=b`) and returns its query string (without `?`).
/// `resource_types` is a subset of `sco` (service, container, object).
pub fn account_sas(
    key: &AccountKey,
    permissions: Permissions,
    resource_types: &str,
    window: &SasWindow,
) -> String {
    let sts = account_string_to_sign(key.account(), permissions, resource_types, window);
    let mut q = format!("sv={SAS_VERSION}&ss=b&srt={resource_types}&sp={permissions}");
    push_window_and_signature(&mut q, window, &key.sign(&sts));
    q
}

/// A URL carrying a SAS. `Debug` and `Display` show it with the signature masked; only
/// [`SasUrl::expose`] returns the usable URL, for handing to Batch or an HTTP client.
#[derive(Clone)]
pub struct SasUrl {
    url: Url,
    expires_at: SystemTime,
    permissions: String,
}

impl SasUrl {
    /// Wraps `base` (a container or blob URL without query) and a SAS query string.
    pub(crate) fn new(
        mut base: Url,
        query: &str,
        expires_at: SystemTime,
        permissions: String,
    ) -> Self {
        base.set_query(Some(query));
        SasUrl {
            url: base,
            expires_at,
            permissions,
        }
    }

    /// Reads `se` and `sp` from an existing SAS URL (e.g. one stored in a run manifest).
    pub fn parse(url: &str) -> Result<Self> {
        let url = Url::parse(url)
            .map_err(|e| Error::InvalidArgument(format!("not a URL ({e}): {}", redact(url))))?;
        let mut expires_at = None;
        let mut permissions = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "se" => expires_at = parse_time(&v),
                "sp" => permissions = Some(v.into_owned()),
                _ => {}
            }
        }
        let (Some(expires_at), Some(permissions)) = (expires_at, permissions) else {
            return Err(Error::InvalidArgument(format!(
                "not a SAS URL (needs se= and sp=): {}",
                redact(url.as_str())
            )));
        };
        Ok(SasUrl {
            url,
            expires_at,
            permissions,
        })
    }

    /// The full URL including the signature. Treat it as a secret.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The same, as a parsed URL.
    pub fn expose_url(&self) -> &Url {
        &self.url
    }

    /// When the SAS stops working (`se`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The granted permissions (`sp`), e.g. `r` or `cw`.
    pub fn permissions(&self) -> &str {
        &self.permissions
    }

    /// Fails unless this SAS is still valid `time_limit` from now; see [`ensure_sas_covers`].
    pub fn ensure_covers(&self, time_limit: Duration) -> Result<()> {
        ensure_sas_covers(self.expires_at, time_limit)
    }
}

impl fmt::Display for SasUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.url.as_str()))
    }
}

impl fmt::Debug for SasUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SasUrl")
            .field("url", &redact(self.url.as_str()))
            .field("expires_at", &format_time(self.expires_at))
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// Default time added to a job's time limit when choosing a SAS expiry: covers queue wait,
/// node start-up and the final output upload, which the job's own limit does not count.
pub const DEFAULT_SAS_MARGIN: Duration = Duration::from_secs(2 * 60 * 60);

/// `now + time_limit + margin`: the expiry to give every SAS a job depends on.
pub fn sas_expiry_for(time_limit: Duration, margin: Duration) -> SystemTime {
    SystemTime::now() + time_limit + margin
}

/// The orchestrator's guard before submitting work: fails with
/// [`Error::SasExpiresTooSoon`] when a SAS expiring at `expires_at` would stop working before
/// `now + time_limit`, i.e. before the job could be finished.
pub fn ensure_sas_covers(expires_at: SystemTime, time_limit: Duration) -> Result<()> {
    let needed = SystemTime::now() + time_limit;
    if expires_at < needed {
        return Err(Error::SasExpiresTooSoon {
            expires: format_time(expires_at),
            needed: format_time(needed),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Published vector (Azure/azure-sdk-for-rust, `service_sas.rs` tests, sv 2022-11-02):
    /// the canonical resource is passed verbatim there, so the string is built by hand here.
    #[test]
    fn signer_matches_published_service_sas_vector() {
        let key = AccountKey::new(
            "STORAGE_ACCOUNT_NAME",
            "RZfi3m1W7eyQ5zD4ymSmGANVdJ2SDQmg4sE89SW104s=",
        )
        .unwrap();
        let sts = [
            "r",
            "",
            "1970-01-08T00:00:00Z",
            "/blob/STORAGE_ACCOUNT_NAME/CONTAINER_NAME/",
            "",
            "",
            "",
            "2022-11-02",
            "b",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        .join("\n");
        assert_eq!(
            key.sign(&sts),
            "VRZjVZ1c/Lz7IXCp17Sdx9+R9JDrnJdzE3NW56DMjNs="
        );
        assert_eq!(format_time(at(7 * 86_400)), "1970-01-08T00:00:00Z");
    }

    #[test]
    fn service_string_to_sign_has_sixteen_fields_in_order() {
        let w = SasWindow {
            start: Some(at(0)),
            expiry: at(3600),
            protocol: Protocol::HttpsOnly,
        };
        let s = service_string_to_sign(
            "acct",
            Resource::Container("cont"),
            Permissions::CREATE_WRITE,
            &w,
        );
        let fields: Vec<&str> = s.split('\n').collect();
        assert_eq!(fields.len(), 16);
        assert_eq!(
            &fields[..9],
            &[
                "cw",
                "1970-01-01T00:00:00Z",
                "1970-01-01T01:00:00Z",
                "/blob/acct/cont",
                "",
                "",
                "https",
                "2022-11-02",
                "c"
            ]
        );
        let s = service_string_to_sign("acct", Resource::Blob("c", "d/e"), Permissions::READ, &w);
        assert!(s.contains("\n/blob/acct/c/d/e\n"));
    }

    #[test]
    fn service_sas_query_is_least_privilege_and_https_only() {
        let key = AccountKey::new("acct", "a2V5").unwrap();
        let w = SasWindow {
            start: None,
            expiry: at(3600),
            protocol: Protocol::HttpsOnly,
        };
        let q = service_sas(&key, Resource::Blob("c", "b"), Permissions::READ, &w);
        assert!(
            q.starts_with("sv=2022-11-02&sp=r&sr=b&se=1970-01-01T01%3A00%3A00Z&spr=https&sig="),
            "{q}"
        );
        let q = service_sas(
            &key,
            Resource::Container("c"),
            Permissions::CREATE_WRITE,
            &w,
        );
        assert!(q.contains("&sp=cw&sr=c&"), "{q}");
    }

    #[test]
    fn account_string_to_sign_layout() {
        let w = SasWindow {
            start: None,
            expiry: at(60),
            protocol: Protocol::HttpsAndHttp,
        };
        assert_eq!(
            account_string_to_sign("a", Permissions::ALL, "sco", &w),
            "a\nracwdl\nb\nsco\n\n1970-01-01T00:01:00Z\n\nhttps,http\n2022-11-02\n\n"
        );
    }

    #[test]
    fn permissions_render_in_canonical_order() {
        assert_eq!(Permissions::ALL.to_string(), "racwdl");
        assert_eq!(Permissions::READ_LIST.to_string(), "rl");
        assert_eq!(Permissions::CREATE_WRITE.to_string(), "cw");
    }

    #[test]
    fn debug_and_display_hide_secrets() {
        let key = AccountKey::new("acct", "c2VjcmV0LWtleQ==").unwrap();
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
        let url = SasUrl::parse("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sr=b&se=2030-01-01T00%3A00%3A00Z&spr=https&sig=SECRETSIG%3D").unwrap();
        assert!(!format!("{url:?}").contains("SECRETSIG"));
        assert!(!url.to_string().contains("SECRETSIG"));
        assert!(url.expose().contains("SECRETSIG"));
        assert_eq!(url.permissions(), "r");
        assert_eq!(format_time(url.expires_at()), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn expiry_guard_refuses_sas_shorter_than_the_job() {
        let limit = Duration::from_secs(3600);
        let ok = sas_expiry_for(limit, Duration::from_secs(600));
        ensure_sas_covers(ok, limit).unwrap();
        let short = SystemTime::now() + Duration::from_secs(1800);
        let err = ensure_sas_covers(short, limit).unwrap_err();
        assert!(matches!(err, Error::SasExpiresTooSoon { .. }), "{err}");
        assert!(err.to_string().contains("refusing to submit"));
    }
}
