//! Inputs that already live in Blob Storage (`az://ACCOUNT/CONTAINER/PREFIX`, or the
//! `https://ACCOUNT.blob.core.windows.net/...` form), for the backends that run on files.
//!
//! The prefix is listed once; its `*.csv` blobs are named and checked like a directory's
//! files (the last segment of the blob name; blobs in "sub-directories" under the prefix are
//! not inputs, as sub-directories are not). Each blob is downloaded once into
//! `OUT/blob-inputs/<sha256>`, hashed while it streams and checked against its
//! `Content-MD5`, and recorded in `OUT/blob-inputs/index.json` with its ETag: a rerun whose
//! blobs did not change downloads nothing. From there an input is an ordinary local file: its
//! digest (SHA-256, so a task id does not depend on where the bytes came from) gives the task
//! id, and the backend stages it into its own content-addressed store, verified again.
//!
//! A backend whose workers read blobs themselves (Azure Batch: a read SAS per blob) gets the
//! inputs in place instead ([`discover_in_place`]): nothing is downloaded to keep, the digest
//! is `md5-<Content-MD5>` (streamed once and recorded in `index.json` for a blob that has
//! none), and the input's path is the blob's URL (no SAS).
//!
//! Nothing is written before the listing succeeded: a missing container, an empty prefix or
//! missing permission is one line, and no directory is created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_staging::{BlobPrefix, InputBlob, StagingClient};
use serde::{Deserialize, Serialize};

use super::{Input, check_name, has_csv_extension};
use crate::backend::kit::write_atomic;
use crate::task::StageObject;
use crate::{Error, Result};

/// Downloads at once: enough to hide a round trip per small blob.
const DOWNLOADS_IN_FLIGHT: usize = 8;

/// Where downloaded inputs are kept, under `--out`.
pub const CACHE_DIR: &str = "blob-inputs";

/// What was downloaded or hashed, in [`CACHE_DIR`].
const INDEX: &str = "index.json";

/// What `index.json` remembers of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Known {
    etag: Option<String>,
    size: u64,
    md5: String,
    sha256: String,
}

/// One line for a storage refusal, naming the URL as the user gave it.
fn refusal(shown: &str) -> impl Fn(azure_staging::Error) -> Error + '_ {
    move |e| Error::Input {
        path: PathBuf::from(shown),
        reason: match e {
            azure_staging::Error::InvalidArgument(m) => m,
            other => other.to_string(),
        },
    }
}

/// The client, the `*.csv` blobs under `prefix` with their names, and what `index.json`
/// recorded; nothing written.
#[allow(clippy::type_complexity)]
fn list(
    prefix: &BlobPrefix,
    shown: &str,
    out_dir: &Path,
) -> Result<(
    Arc<StagingClient>,
    Vec<(String, InputBlob)>,
    BTreeMap<String, Known>,
)> {
    let client = Arc::new(StagingClient::from_env().map_err(refusal(shown))?);
    let blobs = block_on(client.list_input_blobs(prefix)).map_err(refusal(shown))?;
    let named = name_inputs(prefix, shown, blobs)?;
    let index = std::fs::read(out_dir.join(CACHE_DIR).join(INDEX))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Ok((client, named, index))
}

/// `index.json`'s key for a blob.
fn key(prefix: &BlobPrefix, blob: &InputBlob) -> String {
    format!("{}/{}/{}", prefix.account, prefix.container, blob.name)
}

fn save_index(out_dir: &Path, index: &BTreeMap<String, Known>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(index).expect("the index serialises");
    write_atomic(&out_dir.join(CACHE_DIR).join(INDEX), &bytes)
}

/// The inputs under `prefix`, in place: see the module docs.
pub fn discover_in_place(prefix: &BlobPrefix, shown: &str, out_dir: &Path) -> Result<Vec<Input>> {
    let (client, named, mut index) = list(prefix, shown, out_dir)?;
    let mut changed = false;
    let mut inputs = Vec::with_capacity(named.len());
    for (name, blob) in named {
        let recorded = index
            .get(&key(prefix, &blob))
            .filter(|k| k.size == blob.size && blob.etag.is_some() && k.etag == blob.etag)
            .map(|k| k.md5.clone());
        let md5 = match (blob.content_md5.clone(), recorded) {
            (Some(md5), _) | (None, Some(md5)) => md5,
            (None, None) => {
                // No Content-MD5 (a block upload): hash the bytes once, keep nothing of them.
                let got =
                    block_on(client.download_input(prefix, &blob, None)).map_err(refusal(shown))?;
                let known = Known {
                    etag: blob.etag.clone(),
                    size: got.size,
                    md5: got.md5.clone(),
                    sha256: String::new(),
                };
                index.insert(key(prefix, &blob), known);
                changed = true;
                got.md5
            }
        };
        inputs.push(Input {
            name,
            object: StageObject {
                path: PathBuf::from(client.input_blob_url(prefix, &blob.name)),
                digest: format!("md5-{md5}"),
                size: blob.size,
            },
        });
    }
    if changed {
        let cache = out_dir.join(CACHE_DIR);
        std::fs::create_dir_all(&cache).map_err(|e| Error::io("create", &cache, e))?;
        save_index(out_dir, &index)?;
    }
    Ok(inputs)
}

/// The inputs under `prefix`, downloaded (see the module docs); `shown` is the URL as the
/// user gave it.
pub fn discover(prefix: &BlobPrefix, shown: &str, out_dir: &Path) -> Result<Vec<Input>> {
    let (client, named, mut index) = list(prefix, shown, out_dir)?;
    let cache = out_dir.join(CACHE_DIR);
    let key = |blob: &InputBlob| key(prefix, blob);
    let missing: Vec<InputBlob> = named
        .iter()
        .map(|(_, b)| b)
        .filter(|b| cached(&cache, index.get(&key(b)), b).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() {
        std::fs::create_dir_all(&cache).map_err(|e| Error::io("create", &cache, e))?;
        tracing::info!("downloading {} input blob(s) from {shown}", missing.len());
        let got =
            block_on(download_all(client, prefix, missing, &cache)).map_err(refusal(shown))?;
        for (blob, known) in got {
            index.insert(key(&blob), known);
        }
        save_index(out_dir, &index)?;
    }
    Ok(named
        .into_iter()
        .map(|(name, blob)| {
            let known = cached(&cache, index.get(&key(&blob)), &blob).expect("downloaded");
            Input {
                name,
                object: StageObject {
                    path: cache.join(&known.sha256),
                    digest: known.sha256.clone(),
                    size: known.size,
                },
            }
        })
        .collect())
}

/// The inputs under `prefix` for `--dry-run`: one listing, nothing downloaded or written.
/// Each digest is the one the run would use when it is known without the bytes (an earlier
/// download recorded it; with `in_place`, as Azure Batch reads blobs, the blob's Content-MD5),
/// else a placeholder `unhashed-...`: then the plan's task ids and run id are those of a run
/// only once a run has hashed the inputs, which a warning says.
pub fn discover_listed(
    prefix: &BlobPrefix,
    shown: &str,
    out_dir: &Path,
    in_place: bool,
) -> Result<Vec<Input>> {
    use sha2::Digest as _;
    let (client, named, index) = list(prefix, shown, out_dir)?;
    let cache = out_dir.join(CACHE_DIR);
    let mut unknown = 0usize;
    let inputs: Vec<Input> = named
        .into_iter()
        .map(|(name, blob)| {
            let recorded = index
                .get(&key(prefix, &blob))
                .filter(|k| k.size == blob.size && blob.etag.is_some() && k.etag == blob.etag);
            let known = if in_place {
                let md5 = blob.content_md5.clone();
                md5.or_else(|| recorded.map(|k| k.md5.clone()))
                    .map(|m| format!("md5-{m}"))
            } else {
                recorded
                    .filter(|k| !k.sha256.is_empty())
                    .map(|k| k.sha256.clone())
            };
            let digest = known.unwrap_or_else(|| {
                unknown += 1;
                let id = format!("{}\n{:?}\n{}", key(prefix, &blob), blob.etag, blob.size);
                format!("unhashed-{}", &hex::encode(sha2::Sha256::digest(id))[..32])
            });
            let path = if in_place {
                PathBuf::from(client.input_blob_url(prefix, &blob.name))
            } else {
                cache.join(&digest)
            };
            let size = blob.size;
            Input {
                name,
                object: StageObject { path, digest, size },
            }
        })
        .collect();
    if unknown > 0 {
        tracing::warn!(
            "dry run: {unknown} input blob(s) under {shown} were listed, not downloaded; their \
             digests (and so the task ids and the run id shown) are known once a run hashes them"
        );
    }
    Ok(inputs)
}

/// The `*.csv` blobs directly under the prefix with their input names, byte-wise sorted.
fn name_inputs(
    prefix: &BlobPrefix,
    shown: &str,
    blobs: Vec<InputBlob>,
) -> Result<Vec<(String, InputBlob)>> {
    let mut named = Vec::new();
    for blob in blobs {
        let rest = blob.name[prefix.prefix.len()..].trim_start_matches('/');
        if rest.contains('/') || !has_csv_extension(rest.as_bytes()) {
            continue;
        }
        let name = blob.name.rsplit('/').next().unwrap_or_default().to_owned();
        check_name(&name).map_err(|reason| Error::Input {
            path: PathBuf::from(format!(
                "az://{}/{}/{}",
                prefix.account, prefix.container, blob.name
            )),
            reason,
        })?;
        named.push((name, blob));
    }
    named.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if named.is_empty() {
        return Err(Error::Input {
            path: PathBuf::from(shown),
            reason: "no *.csv blobs under this prefix (blobs in sub-folders of it are not \
                     inputs); check the container and prefix"
                .into(),
        });
    }
    Ok(named)
}

/// The recorded download of `blob`, if it is still the same blob and its file is there.
fn cached<'a>(cache: &Path, known: Option<&'a Known>, blob: &InputBlob) -> Option<&'a Known> {
    let known = known?;
    let same = known.size == blob.size
        && blob.etag.is_some()
        && known.etag == blob.etag
        && blob.content_md5.as_ref().is_none_or(|m| *m == known.md5);
    let file = std::fs::metadata(cache.join(&known.sha256)).ok()?;
    (same && file.is_file() && file.len() == known.size).then_some(known)
}

/// Downloads `blobs` into `cache/<sha256>`, [`DOWNLOADS_IN_FLIGHT`] at a time.
async fn download_all(
    client: Arc<StagingClient>,
    prefix: &BlobPrefix,
    blobs: Vec<InputBlob>,
    cache: &Path,
) -> azure_staging::Result<Vec<(InputBlob, Known)>> {
    let mut done = Vec::with_capacity(blobs.len());
    let mut running = tokio::task::JoinSet::new();
    for (i, blob) in blobs.into_iter().enumerate() {
        if running.len() >= DOWNLOADS_IN_FLIGHT
            && let Some(joined) = running.join_next().await
        {
            done.push(joined.expect("download task does not panic")?);
        }
        let (client, prefix) = (client.clone(), prefix.clone());
        let tmp = cache.join(format!(".download-{}-{i}", std::process::id()));
        let cache = cache.to_path_buf();
        running.spawn(async move {
            let got = client.download_input(&prefix, &blob, Some(&tmp)).await?;
            let dest = cache.join(&got.sha256);
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(|e| azure_staging::Error::Io {
                    path: dest,
                    source: e,
                })?;
            let known = Known {
                etag: blob.etag.clone(),
                size: got.size,
                md5: got.md5,
                sha256: got.sha256,
            };
            Ok((blob, known))
        });
    }
    while let Some(joined) = running.join_next().await {
        done.push(joined.expect("download task does not panic")?);
    }
    Ok(done)
}

/// Runs `future` to completion from blocking code (planning runs in `spawn_blocking`).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(future),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the blob listing")
            .block_on(future),
    }
}
