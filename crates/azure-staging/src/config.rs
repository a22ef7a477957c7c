//! Where the storage account is and how we authenticate, read from the environment only.
//!
//! | variables | authentication |
//! |---|---|
//! | `AZURE_STORAGE_CONNECTION_STRING` (with `AccountKey=`, or `UseDevelopmentStorage=true`) | account key |
//! | `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY` | account key |
//! | `AZURE_STORAGE_ACCOUNT` alone | Microsoft Entra ID through [`EnvCredentialChain`] |
//!
//! `AZURE_STORAGE_BLOB_ENDPOINT` overrides the blob endpoint (default
//! `https://{account}.blob.core.windows.net`). Plain `http://` endpoints are accepted only on
//! loopback (the emulator); anything else must be `https://`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::Url;
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    WorkloadIdentityCredential,
};

use crate::error::{Error, Result};
use crate::redact::redact;
use crate::sas::AccountKey;
use crate::token::CachedCredential;

/// Azurite's well-known development account (public, documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, documented by Microsoft).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorised.
#[derive(Clone)]
pub enum Auth {
    /// Shared key: we sign an account SAS for our own calls and service SAS for the nodes.
    AccountKey(AccountKey),
    /// Microsoft Entra ID: bearer tokens for our calls, user delegation SAS for the nodes.
    Token(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::AccountKey(k) => write!(f, "AccountKey({:?})", k.account()),
            Auth::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// A blob endpoint and the way to authenticate against it.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// Blob service endpoint, e.g. `https://acct.blob.core.windows.net` or
    /// `http://127.0.0.1:10000/devstoreaccount1`. No query, no trailing slash.
    pub endpoint: Url,
    /// Account name (used in SAS canonical resources).
    pub account: String,
    /// Authentication.
    pub auth: Auth,
}

impl StorageConfig {
    /// Reads the process environment; see the module docs for the variables.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Same as [`StorageConfig::from_env`] with a custom variable lookup (for tests and callers
    /// that keep settings elsewhere).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let endpoint_override = var("AZURE_STORAGE_BLOB_ENDPOINT");
        if let Some(cs) = var("AZURE_STORAGE_CONNECTION_STRING") {
            return Self::from_connection_string(&cs, endpoint_override.as_deref());
        }
        let Some(account) = var("AZURE_STORAGE_ACCOUNT") else {
            return Err(Error::Config(
                "no storage account configured: set AZURE_STORAGE_CONNECTION_STRING, or \
                 AZURE_STORAGE_ACCOUNT (+ AZURE_STORAGE_KEY for an account key; without a key \
                 Microsoft Entra ID is used)"
                    .into(),
            ));
        };
        let endpoint = match endpoint_override {
            Some(e) => e,
            None => format!("https://{account}.blob.core.windows.net"),
        };
        let auth = match var("AZURE_STORAGE_KEY") {
            Some(key) => Auth::AccountKey(AccountKey::new(&account, &key)?),
            None => Auth::Token(Arc::new(CachedCredential::new(Arc::new(
                EnvCredentialChain::from_vars(&var)?,
            )))),
        };
        Self::new(&endpoint, account, auth)
    }

    /// Parses an Azure Storage connection string (only account-key forms are accepted: a
    /// SAS-only connection string cannot mint the SAS tokens Batch nodes need).
    pub fn from_connection_string(cs: &str, endpoint_override: Option<&str>) -> Result<Self> {
        let mut protocol = "https".to_owned();
        let (mut account, mut key, mut blob_endpoint, mut suffix) = (None, None, None, None);
        for part in cs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(Error::Config(
                    "AZURE_STORAGE_CONNECTION_STRING: a part is not key=value (value not shown)"
                        .into(),
                ));
            };
            match k.to_ascii_lowercase().as_str() {
                "defaultendpointsprotocol" => protocol = v.to_ascii_lowercase(),
                "accountname" => account = Some(v.to_owned()),
                "accountkey" => key = Some(v.to_owned()),
                "blobendpoint" => blob_endpoint = Some(v.trim_end_matches('/').to_owned()),
                "endpointsuffix" => suffix = Some(v.to_owned()),
                "usedevelopmentstorage" if v.eq_ignore_ascii_case("true") => {
                    account = Some(DEV_ACCOUNT.to_owned());
                    key = Some(DEV_ACCOUNT_KEY.to_owned());
                    blob_endpoint = Some(format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
                }
                "sharedaccesssignature" => {
                    return Err(Error::Config(
                        "AZURE_STORAGE_CONNECTION_STRING holds a SAS, not an account key: it cannot \
                         sign the SAS tokens for Batch nodes; give an AccountKey or use Entra ID"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
        let account = account.ok_or_else(|| {
            Error::Config("AZURE_STORAGE_CONNECTION_STRING has no AccountName".into())
        })?;
        let key = key.ok_or_else(|| {
            Error::Config("AZURE_STORAGE_CONNECTION_STRING has no AccountKey".into())
        })?;
        let endpoint = match (endpoint_override, blob_endpoint) {
            (Some(e), _) => e.to_owned(),
            (None, Some(e)) => e,
            (None, None) => format!(
                "{protocol}://{account}.blob.{}",
                suffix.as_deref().unwrap_or("core.windows.net")
            ),
        };
        let auth = Auth::AccountKey(AccountKey::new(&account, &key)?);
        Self::new(&endpoint, account, auth)
    }

    /// Checks the endpoint (https, or http on loopback only) and builds the config.
    pub fn new(endpoint: &str, account: impl Into<String>, auth: Auth) -> Result<Self> {
        let endpoint = Url::parse(endpoint.trim_end_matches('/')).map_err(|e| {
            Error::Config(format!(
                "blob endpoint {:?} is not a URL: {e}",
                redact(endpoint)
            ))
        })?;
        if endpoint.query().is_some() {
            return Err(Error::Config(
                "blob endpoint must not carry a query string (a SAS is minted here)".into(),
            ));
        }
        match endpoint.scheme() {
            "https" => {}
            "http" if is_loopback(&endpoint) => {}
            "http" => {
                return Err(Error::Config(format!(
                    "blob endpoint {endpoint} uses plain http: only https is allowed except for a \
                     loopback emulator"
                )));
            }
            other => {
                return Err(Error::Config(format!(
                    "blob endpoint scheme {other:?} unsupported"
                )));
            }
        }
        if matches!(auth, Auth::Token(_)) && endpoint.scheme() != "https" {
            return Err(Error::Config(format!(
                "blob endpoint {endpoint} uses plain http: Microsoft Entra ID tokens are only sent \
                 over https"
            )));
        }
        Ok(StorageConfig {
            endpoint,
            account: account.into(),
            auth,
        })
    }

    /// True for `127.0.0.0/8`, `::1` and `localhost`: the only hosts where http is allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.endpoint)
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// Microsoft Entra ID credentials tried in order, first success wins (the usual
/// "default credential" order): client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
/// `AZURE_CLIENT_SECRET`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`), Azure CLI / Azure
/// Developer CLI login, managed identity.
#[derive(Debug)]
pub struct EnvCredentialChain {
    sources: Vec<(&'static str, Arc<dyn TokenCredential>)>,
}

impl EnvCredentialChain {
    /// Builds the chain from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&|name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let cred_err = |what: &str, e: azure_core::Error| {
            Error::Config(format!("{what}: {}", redact(&e.to_string())))
        };
        let mut sources: Vec<(&'static str, Arc<dyn TokenCredential>)> = Vec::new();
        if let (Some(tenant), Some(client), Some(secret)) = (
            var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            var("AZURE_CLIENT_SECRET"),
        ) {
            let c = ClientSecretCredential::new(&tenant, client, Secret::new(secret), None)
                .map_err(|e| cred_err("client secret credential", e))?;
            sources.push(("client secret", c));
        }
        if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            let c = WorkloadIdentityCredential::new(None)
                .map_err(|e| cred_err("workload identity credential", e))?;
            sources.push(("workload identity", c));
        }
        let c = DeveloperToolsCredential::new(None)
            .map_err(|e| cred_err("developer tools credential", e))?;
        sources.push(("Azure CLI / Azure Developer CLI", c));
        let c = ManagedIdentityCredential::new(None)
            .map_err(|e| cred_err("managed identity credential", e))?;
        sources.push(("managed identity", c));
        Ok(EnvCredentialChain { sources })
    }
}

#[async_trait]
impl TokenCredential for EnvCredentialChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let mut failures = Vec::new();
        for (name, source) in &self.sources {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    tracing::debug!(credential = name, "Entra ID token acquired");
                    return Ok(token);
                }
                Err(e) => failures.push(format!("{name}: {}", redact(&e.to_string()))),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no Microsoft Entra ID credential worked ({}); log in with `az login`, or set \
                 AZURE_STORAGE_KEY / AZURE_STORAGE_CONNECTION_STRING",
                failures.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn connection_string_for_azurite() {
        let cs = format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};\
             BlobEndpoint=http://127.0.0.1:10000/{DEV_ACCOUNT};"
        );
        let c =
            StorageConfig::from_vars(vars(&[("AZURE_STORAGE_CONNECTION_STRING", &cs)])).unwrap();
        assert_eq!(
            c.endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(c.account, DEV_ACCOUNT);
        assert!(matches!(c.auth, Auth::AccountKey(_)));
        assert!(c.is_loopback());
        assert!(!format!("{c:?}").contains("Eby8"));
        let dev =
            StorageConfig::from_connection_string("UseDevelopmentStorage=true", None).unwrap();
        assert_eq!(
            dev.endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
    }

    #[test]
    fn connection_string_for_azure_builds_https_endpoint() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net";
        let c = StorageConfig::from_connection_string(cs, None).unwrap();
        assert_eq!(c.endpoint.as_str(), "https://acct.blob.core.windows.net/");
        assert!(!c.is_loopback());
    }

    #[test]
    fn account_and_key_variables() {
        let c = StorageConfig::from_vars(vars(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "a2V5"),
        ]))
        .unwrap();
        assert_eq!(c.endpoint.host_str(), Some("acct.blob.core.windows.net"));
    }

    #[test]
    fn refuses_plain_http_off_loopback_and_bad_keys_without_echoing_them() {
        let err = StorageConfig::from_vars(vars(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "a2V5"),
            (
                "AZURE_STORAGE_BLOB_ENDPOINT",
                "http://storage.example.com/acct",
            ),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("only https"), "{err}");
        let err = StorageConfig::from_vars(vars(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "not base64 !!secretvalue"),
        ]))
        .unwrap_err();
        assert!(!err.to_string().contains("secretvalue"), "{err}");
        let err =
            StorageConfig::from_connection_string("AccountName=a;AccountKey=!!secretvalue", None)
                .unwrap_err();
        assert!(!err.to_string().contains("secretvalue"), "{err}");
    }

    #[test]
    fn account_without_key_uses_the_entra_chain_in_order() {
        let c = StorageConfig::from_vars(vars(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "app"),
            ("AZURE_CLIENT_SECRET", "s3cr3t-value"),
        ]))
        .unwrap();
        assert!(matches!(c.auth, Auth::Token(_)));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let chain = EnvCredentialChain::from_vars(&|k: &str| match k {
            "AZURE_TENANT_ID" => Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
            "AZURE_CLIENT_ID" => Some("app".into()),
            "AZURE_CLIENT_SECRET" => Some("s3cr3t-value".into()),
            _ => None,
        })
        .unwrap();
        let names: Vec<_> = chain.sources.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "client secret",
                "Azure CLI / Azure Developer CLI",
                "managed identity"
            ]
        );
        assert!(!format!("{chain:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_configuration_says_what_to_set() {
        let err = StorageConfig::from_vars(vars(&[])).unwrap_err();
        assert!(
            err.to_string().contains("AZURE_STORAGE_CONNECTION_STRING"),
            "{err}"
        );
        let err = StorageConfig::from_connection_string(
            "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=x&sig=y",
            None,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("sig=y"), "{err}");
    }
}
