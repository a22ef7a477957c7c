//! Inputs that already live in Blob Storage: `az://ACCOUNT/CONTAINER/PREFIX` or
//! `https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX`.
//!
//! What the orchestrator needs from such a prefix: the blobs under it (with their size,
//! `Content-MD5` and ETag, from one listing), each blob's bytes downloaded and hashed while
//! they stream (SHA-256 and MD5 at once, the MD5 checked against `Content-MD5`), the MD5 of a
//! blob that has none (streamed, nothing written), and a read SAS for one blob so that a
//! Batch task fetches it directly. Every refusal (missing container, no permission, a URL
//! that is not a blob prefix) is one line; the caller names the URL in front of it.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
use futures::{StreamExt, TryStreamExt};
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::client::StagingClient;
use crate::retry::{error_code, service_error};
use crate::sas::{Permissions, Resource, SasUrl};
use crate::{Error, Result};

/// A blob prefix given as a run's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPrefix {
    /// Storage account name.
    pub account: String,
    /// Container name.
    pub container: String,
    /// Blob name prefix (may be empty: the whole container).
    pub prefix: String,
}

impl fmt::Display for BlobPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "az://{}/{}/{}",
            self.account, self.container, self.prefix
        )
    }
}

impl BlobPrefix {
    /// `None` when `text` is not a cloud URL at all (a local directory); otherwise the
    /// prefix, or why the URL cannot be one.
    pub fn parse(text: &str) -> Option<Result<Self>> {
        // The caller names the URL (never echo a query: it may be a SAS signature).
        let bad = |why: &str| Some(Err(Error::InvalidArgument(why.to_owned())));
        let (account, rest) = if let Some(rest) = text.strip_prefix("az://") {
            match rest.split_once('/') {
                Some((account, rest)) => (account.to_owned(), rest),
                None => return bad("expected az://ACCOUNT/CONTAINER[/PREFIX]"),
            }
        } else if let Some(rest) = text.strip_prefix("https://") {
            let (host, rest) = rest.split_once('/').unwrap_or((rest, ""));
            match host.strip_suffix(".blob.core.windows.net") {
                Some(account) => (account.to_owned(), rest),
                None => {
                    return bad(
                        "only https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX] URLs \
                         are blob prefixes (set AZURE_STORAGE_BLOB_ENDPOINT for another \
                         endpoint and use az://ACCOUNT/CONTAINER/PREFIX)",
                    );
                }
            }
        } else {
            return None;
        };
        if text.contains(['?', '#']) {
            return bad(
                "a SAS or query in the URL is not accepted; credentials come from the \
                        environment (AZURE_STORAGE_*)",
            );
        }
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let name_ok = |s: &str, min: usize| {
            s.len() >= min
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !name_ok(&account, 3) || account.contains('-') {
            return bad("the account name must be 3-24 lowercase letters and digits");
        }
        if !name_ok(container, 3) || container.starts_with('-') || container.contains("--") {
            return bad("the container name must be 3-63 lowercase letters, digits and dashes");
        }
        Some(Ok(Self {
            account,
            container: container.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

/// One blob under an input prefix, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputBlob {
    /// The blob's full name in its container.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex of the blob's `Content-MD5`, when it has one.
    pub content_md5: Option<String>,
    /// The blob's ETag: changes whenever its content does.
    pub etag: Option<String>,
}

/// What a download of an input blob produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDownload {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// Lowercase hex MD5 of the bytes (equal to the blob's `Content-MD5` when it has one).
    pub md5: String,
    /// Bytes received.
    pub size: u64,
}

impl StagingClient {
    /// Every blob whose name starts with `input.prefix`, in the service's (byte-wise) order.
    /// The prefix's account must be this client's.
    pub async fn list_input_blobs(&self, input: &BlobPrefix) -> Result<Vec<InputBlob>> {
        self.check_account(input)?;
        let container = self.service()?.blob_container_client(&input.container);
        let op = format!("list {input}");
        let listed = self
            .retry
            .run(&op, || async {
                let options = BlobContainerClientListBlobsOptions {
                    prefix: (!input.prefix.is_empty()).then(|| input.prefix.clone()),
                    ..Default::default()
                };
                container
                    .list_blobs(Some(options))?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await
            .map_err(|e| refusal(input, &op, &e))?;
        Ok(listed
            .into_iter()
            .filter_map(|item| {
                let name = item.name?;
                let props = item.properties;
                Some(InputBlob {
                    name,
                    size: props.as_ref().and_then(|p| p.content_length).unwrap_or(0),
                    content_md5: props
                        .as_ref()
                        .and_then(|p| p.content_md5.as_ref())
                        .filter(|m| m.len() == 16)
                        .map(hex::encode),
                    etag: props.and_then(|p| p.etag).map(|e| e.to_string()),
                })
            })
            .collect())
    }

    /// Streams `blob` into `dest` (a temp file beside it, synced, then renamed), hashing the
    /// bytes as they arrive. A blob whose bytes do not match its `Content-MD5` is refused and
    /// nothing is left at `dest`. With `dest` = `None` the bytes are only hashed.
    pub async fn download_input(
        &self,
        input: &BlobPrefix,
        blob: &InputBlob,
        dest: Option<&Path>,
    ) -> Result<InputDownload> {
        self.check_account(input)?;
        let container = self.service()?.blob_container_client(&input.container);
        let client = container.blob_client(&blob.name);
        let op = format!(
            "download az://{}/{}/{}",
            input.account, input.container, blob.name
        );
        let tmp = dest.map(|d| {
            let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("input");
            d.with_file_name(format!(".{name}.part-{}", std::process::id()))
        });
        let result = self
            .retry
            .run(&op, || async {
                let mut body = client.download(None).await?.body;
                let io = |e: std::io::Error| {
                    azure_core::Error::with_message(
                        azure_core::error::ErrorKind::Other,
                        e.to_string(),
                    )
                };
                let mut file = match &tmp {
                    Some(t) => Some(tokio::fs::File::create(t).await.map_err(io)?),
                    None => None,
                };
                let (mut sha, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    sha.update(&chunk);
                    md5.update(&chunk);
                    size += chunk.len() as u64;
                    if let Some(f) = file.as_mut() {
                        f.write_all(&chunk).await.map_err(io)?;
                    }
                }
                if let Some(f) = file.as_mut() {
                    f.sync_all().await.map_err(io)?;
                }
                Ok(InputDownload {
                    sha256: hex::encode(sha.finalize()),
                    md5: hex::encode(md5.finalize()),
                    size,
                })
            })
            .await
            .map_err(|e| refusal(input, &op, &e));
        let finish = async {
            let got = result?;
            if let Some(expected) = &blob.content_md5
                && *expected != got.md5
            {
                return Err(Error::Corrupt {
                    container: input.container.clone(),
                    blob: blob.name.clone(),
                    expected: format!("Content-MD5 {expected}"),
                    actual: format!("MD5 {}", got.md5),
                });
            }
            if let (Some(t), Some(d)) = (&tmp, dest) {
                tokio::fs::rename(t, d).await.map_err(|e| Error::io(d, e))?;
            }
            Ok(got)
        };
        let outcome = finish.await;
        if outcome.is_err()
            && let Some(t) = &tmp
        {
            let _ = tokio::fs::remove_file(t).await;
        }
        outcome
    }

    /// A read-only (`sp=r`) SAS for one input blob, valid until `expires_at` (size it to the
    /// job with [`StagingClient::sas_expiry_for_job`]): what a Batch task needs to fetch its
    /// input directly, and nothing more.
    pub async fn input_read_sas(
        &self,
        input: &BlobPrefix,
        blob_name: &str,
        expires_at: SystemTime,
    ) -> Result<SasUrl> {
        self.check_account(input)?;
        self.sign(
            Resource::Blob(&input.container, blob_name),
            Permissions::READ,
            expires_at,
        )
        .await
    }

    /// The blob's URL at this client's endpoint, without a SAS (safe to log and record): the
    /// endpoint, the container and the blob name as they are, joined by `/`.
    pub fn input_blob_url(&self, input: &BlobPrefix, blob_name: &str) -> String {
        format!(
            "{}/{}/{blob_name}",
            self.config().endpoint.as_str().trim_end_matches('/'),
            input.container
        )
    }

    fn check_account(&self, input: &BlobPrefix) -> Result<()> {
        if input.account == self.config().account {
            return Ok(());
        }
        Err(Error::Config(format!(
            "it is in storage account `{}`, but the environment's credentials are for `{}`; \
             set AZURE_STORAGE_ACCOUNT (and its key or an Entra ID login) for `{}`",
            input.account,
            self.config().account,
            input.account
        )))
    }
}

/// A failed listing or download as one line a user can act on.
fn refusal(input: &BlobPrefix, op: &str, e: &azure_core::Error) -> Error {
    let what = match (error_code(e), e.http_status().map(u16::from)) {
        (Some("ContainerNotFound"), _) => format!(
            "container `{}` does not exist in storage account `{}`",
            input.container, input.account
        ),
        (Some("BlobNotFound"), _) => "the blob was deleted while the run was being planned".into(),
        (Some(code), Some(403)) | (Some(code @ "AuthorizationFailure"), _) => format!(
            "permission denied ({code}): the credentials in the environment may not read \
             container `{}` (a key, or an Entra ID role such as Storage Blob Data Reader)",
            input.container
        ),
        (_, Some(403)) => format!(
            "permission denied: the credentials in the environment may not read container `{}`",
            input.container
        ),
        _ => return service_error(op, e),
    };
    Error::InvalidArgument(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms_name_a_prefix() {
        let want = BlobPrefix {
            account: "acct1".into(),
            container: "data".into(),
            prefix: "runs/2026/".into(),
        };
        assert_eq!(
            BlobPrefix::parse("az://acct1/data/runs/2026/")
                .unwrap()
                .unwrap(),
            want
        );
        assert_eq!(
            BlobPrefix::parse("https://acct1.blob.core.windows.net/data/runs/2026/")
                .unwrap()
                .unwrap(),
            want
        );
        let whole = BlobPrefix::parse("az://acct1/data").unwrap().unwrap();
        assert_eq!(
            (whole.container.as_str(), whole.prefix.as_str()),
            ("data", "")
        );
        assert_eq!(whole.to_string(), "az://acct1/data/");
        assert!(BlobPrefix::parse("input_files").is_none());
        assert!(BlobPrefix::parse("/abs/dir").is_none());
    }

    #[test]
    fn bad_urls_are_one_line_each() {
        for bad in [
            "az://acct1",
            "az://Acct/data",
            "az://acct1/Da_ta/x",
            "az://acct1/data/x?sig=abc",
            "https://example.com/data/x",
            "az://a/data",
        ] {
            let err = BlobPrefix::parse(bad).unwrap().unwrap_err().to_string();
            assert!(err.contains("invalid argument"), "{bad}: {err}");
            assert!(!err.contains('\n'), "{err}");
            assert!(!err.contains("sig=abc"), "{err}");
        }
    }
}
