//! [`StagingClient`]: containers per run, content-addressed uploads, downloads, listing,
//! deletion and SAS minting, on top of `azure_storage_blob` 1.x.
//!
//! Our own requests authenticate either with an Entra ID token or, with an account key, with a
//! short-lived account SAS we sign and put in the service URL (the SDK has no shared-key
//! support). Nodes get narrower SAS tokens from the `*_sas` methods.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::num::NonZero;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_core::Bytes;
use azure_core::http::{
    ClientOptions, HttpClient, RequestContent, RetryOptions, Transport, Url, XmlFormat,
};
use azure_core::time::OffsetDateTime;
use azure_storage_blob::models::{
    BlobClientUploadOptions, BlobContainerClientCreateOptions, BlobContainerClientListBlobsOptions,
    BlobServiceClientListContainersOptions, BlockBlobClientCommitBlockListOptions, BlockListType,
    BlockLookupList, KeyInfo, ListBlobsIncludeItem, ListContainersIncludeType,
};
use azure_storage_blob::{BlobContainerClient, BlobServiceClient, BlobServiceClientOptions};
use azure_storage_common::models::UserDelegationKey;
use azure_storage_sas::{SasBuilder, SasProtocol};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::{Auth, StorageConfig};
use crate::error::{Error, Result};
use crate::naming::{RunContainers, validate_digest, validate_prefix};
use crate::progress::{Progress, ProgressEvent, ProgressFn};
use crate::retry::{RetryPolicy, error_code, service_error};
use crate::sas::{
    self, CLOCK_SKEW, DEFAULT_SAS_MARGIN, Permissions, Protocol, Resource, SasUrl, SasWindow,
};

/// Metadata key holding the lowercase hex SHA-256 of a staged blob's content.
pub const META_SHA256: &str = "sha256";
/// Metadata key holding the run id on the run's containers.
pub const META_RUN_ID: &str = "runid";

/// Default block size for Put Block uploads; files up to this size go in one Put Blob.
pub const DEFAULT_BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// Default number of requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Longest user delegation key (and so user delegation SAS) Azure issues.
pub const MAX_USER_DELEGATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Lifetime of the account SAS the client signs for its own requests.
const OWN_SAS_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A local file to stage, named by its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalObject {
    /// Path on this machine.
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the content (the blob name).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl LocalObject {
    /// Hashes `path` to build the object.
    pub async fn from_file(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let (digest, size) = hash_file(&path).await?;
        Ok(LocalObject { path, digest, size })
    }
}

/// Where an object was staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Container name.
    pub container: String,
    /// Blob name (the digest).
    pub name: String,
    /// Content digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Blob URL without any SAS: not usable by itself, safe to log.
    pub url: Url,
    /// False when the blob was already there with the same digest and nothing was sent.
    pub uploaded: bool,
}

/// One blob as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Blob name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The `sha256` metadata, when the blob has it.
    pub sha256: Option<String>,
}

/// A file written by a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Blob name.
    pub blob: String,
    /// Local path written.
    pub path: PathBuf,
    /// Bytes written.
    pub size: u64,
}

/// Builder for [`StagingClient`].
pub struct StagingClientBuilder {
    config: StorageConfig,
    prefix: String,
    concurrency: usize,
    block_size: usize,
    retry: RetryPolicy,
    transport: Option<Arc<dyn HttpClient>>,
    sas_margin: Duration,
}

impl StagingClientBuilder {
    /// Container name prefix (default `orch`); see [`crate::naming::validate_prefix`].
    pub fn container_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Requests in flight at once during uploads and downloads (default 8, at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Block size for large files (default 4 MiB; 64 KiB to 100 MiB).
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// Retry budget for transient failures.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// HTTP transport (default: one SDK reqwest client, built in [`Self::build`] and shared by
    /// every call). Tests use it to trust a test CA.
    pub fn transport(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.transport = Some(client);
        self
    }

    /// Margin added to a job's time limit by [`StagingClient::sas_expiry_for_job`].
    pub fn sas_margin(mut self, margin: Duration) -> Self {
        self.sas_margin = margin;
        self
    }

    /// Validates the settings and builds the client (no network access yet). Without a
    /// [`Self::transport`] it builds the one HTTP client every call shares: left to the SDK,
    /// each call would build its own and load the root certificates again (~40% of the
    /// orchestrator's CPU in a Batch run, measured before this was shared).
    pub fn build(self) -> Result<StagingClient> {
        validate_prefix(&self.prefix)?;
        if !(64 * 1024..=100 * 1024 * 1024).contains(&self.block_size) {
            return Err(Error::InvalidArgument(format!(
                "block size {} must be between 64 KiB and 100 MiB",
                self.block_size
            )));
        }
        Ok(StagingClient {
            config: self.config,
            prefix: self.prefix,
            concurrency: self.concurrency,
            block_size: self.block_size,
            retry: self.retry,
            transport: self
                .transport
                .unwrap_or_else(|| azure_core::http::new_http_client(None)),
            sas_margin: self.sas_margin,
            delegation_key: Mutex::new(None),
        })
    }
}

/// Staging client for one storage account. Cheap to share behind an `Arc`; every method is
/// idempotent so a resumed run can call them again.
pub struct StagingClient {
    config: StorageConfig,
    prefix: String,
    concurrency: usize,
    block_size: usize,
    pub(crate) retry: RetryPolicy,
    /// Shared by every service client this builds (connection pool, root certificates).
    transport: Arc<dyn HttpClient>,
    sas_margin: Duration,
    /// Cached user delegation key (Entra only) and its expiry.
    delegation_key: Mutex<Option<(UserDelegationKey, SystemTime)>>,
}

impl fmt::Debug for StagingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagingClient")
            .field("endpoint", &self.config.endpoint.as_str())
            .field("account", &self.config.account)
            .field("auth", &self.config.auth)
            .field("prefix", &self.prefix)
            .field("concurrency", &self.concurrency)
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl StagingClient {
    /// Configuration from the environment ([`StorageConfig::from_env`]) with default settings.
    pub fn from_env() -> Result<Self> {
        Self::builder(StorageConfig::from_env()?).build()
    }

    /// Starts a builder with default settings.
    pub fn builder(config: StorageConfig) -> StagingClientBuilder {
        StagingClientBuilder {
            config,
            prefix: "orch".to_owned(),
            concurrency: DEFAULT_CONCURRENCY,
            block_size: DEFAULT_BLOCK_SIZE,
            retry: RetryPolicy::default(),
            transport: None,
            sas_margin: DEFAULT_SAS_MARGIN,
        }
    }

    /// The storage configuration in use.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// The containers of `run_id` (pure; see [`RunContainers`]).
    pub fn containers(&self, run_id: &str) -> Result<RunContainers> {
        RunContainers::new(&self.prefix, run_id)
    }

    /// `now + time_limit + margin`: the expiry to request for a job's SAS tokens.
    pub fn sas_expiry_for_job(&self, time_limit: Duration) -> SystemTime {
        sas::sas_expiry_for(time_limit, self.sas_margin)
    }

    fn protocol(&self) -> Protocol {
        // Plain http only reaches a loopback emulator (checked in `StorageConfig::new`).
        if self.config.endpoint.scheme() == "http" {
            Protocol::HttpsAndHttp
        } else {
            Protocol::HttpsOnly
        }
    }

    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(self.transport.clone())),
            // Retries are ours (crate::retry), with a budget that outlasts a short outage.
            retry: RetryOptions::none(),
            ..Default::default()
        }
    }

    /// A service client authorised for our own requests.
    pub(crate) fn service(&self) -> Result<BlobServiceClient> {
        let options = BlobServiceClientOptions {
            client_options: self.client_options(),
            ..Default::default()
        };
        let result = match &self.config.auth {
            Auth::AccountKey(key) => {
                let now = SystemTime::now();
                let window = SasWindow {
                    start: Some(now - CLOCK_SKEW),
                    expiry: now + OWN_SAS_LIFETIME,
                    protocol: self.protocol(),
                };
                let mut url = self.config.endpoint.clone();
                url.set_query(Some(&sas::account_sas(
                    key,
                    Permissions::ALL,
                    "sco",
                    &window,
                )));
                BlobServiceClient::new(url, None, Some(options))
            }
            Auth::Token(cred) => BlobServiceClient::new(
                self.config.endpoint.clone(),
                Some(cred.clone()),
                Some(options),
            ),
        };
        result.map_err(|e| service_error("create client", &e))
    }

    /// A URL for `segments` under the endpoint, with no query (safe to log).
    fn resource_url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                for part in s.split('/') {
                    path.push(part);
                }
            }
        }
        url
    }

    /// Creates the run's containers if missing (tagged with the run id) and returns their names.
    pub async fn ensure_containers(&self, run_id: &str) -> Result<RunContainers> {
        let run = self.containers(run_id)?;
        let service = self.service()?;
        for name in [&run.inputs, &run.outputs] {
            let container = service.blob_container_client(name);
            let op = format!("create container {name}");
            let created = self
                .retry
                .run(&op, || {
                    let options = BlobContainerClientCreateOptions {
                        metadata: Some(HashMap::from([(
                            META_RUN_ID.to_owned(),
                            run_id.to_owned(),
                        )])),
                        ..Default::default()
                    };
                    let container = &container;
                    async move { container.create(Some(options)).await }
                })
                .await;
            match created {
                Ok(_) => tracing::info!(container = %name, run_id, "container created"),
                Err(e) if error_code(&e) == Some("ContainerAlreadyExists") => {
                    tracing::debug!(container = %name, "container already exists");
                }
                Err(e) => return Err(service_error(&op, &e)),
            }
        }
        Ok(run)
    }

    /// Uploads `objects` into the run's input container, named by digest.
    ///
    /// An object already present with the same digest (metadata `sha256`) and size is skipped.
    /// Files larger than the block size go up in blocks (Put Block / Put Block List); blocks
    /// already staged by an interrupted earlier call are reused, and blocks the service lost are
    /// sent again before the commit. At most `concurrency` requests are in flight. Results are
    /// in the order of `objects` (duplicates by digest are uploaded once).
    pub async fn upload_objects(
        &self,
        run: &RunContainers,
        objects: &[LocalObject],
        progress: Option<ProgressFn>,
    ) -> Result<Vec<BlobRef>> {
        for o in objects {
            validate_digest(&o.digest)?;
        }
        let service = self.service()?;
        let container = service.blob_container_client(&run.inputs);
        let mut seen = HashSet::new();
        let unique: Vec<&LocalObject> = objects.iter().filter(|o| seen.insert(&o.digest)).collect();
        let tracker = Tracker {
            state: Mutex::new((0, 0)),
            bytes_total: unique.iter().map(|o| o.size).sum(),
            objects_total: unique.len(),
            callback: progress,
        };
        // One listing of the container (a request per 5,000 blobs) tells which objects are
        // already there, instead of a HEAD per object: 100,000 inputs cost 20 requests, not
        // 100,000.
        let listed: HashMap<String, BlobInfo> = self
            .list_blobs(&run.inputs, "")
            .await?
            .into_iter()
            .map(|b| (b.name.clone(), b))
            .collect();
        let permits = Semaphore::new(self.concurrency);
        let ctx = UploadCtx {
            client: self,
            container: &container,
            container_name: &run.inputs,
            permits: &permits,
            tracker: &tracker,
            listed: &listed,
        };
        // Indices, not `&LocalObject` items: a closure taking a reference makes rustc unable
        // to prove this future `Send` ("FnOnce is not general enough", rust-lang/rust#89976).
        let refs: Vec<BlobRef> = futures::stream::iter(0..unique.len())
            .map(|i| ctx.upload_one(unique[i]))
            .buffered(self.concurrency)
            .try_collect()
            .await?;
        // One INFO line per call; each object is logged at DEBUG.
        tracing::info!(
            container = %run.inputs,
            objects = refs.len(),
            uploaded = refs.iter().filter(|r| r.uploaded).count(),
            bytes = refs.iter().filter(|r| r.uploaded).map(|r| r.size).sum::<u64>(),
            "staged objects"
        );
        let by_digest: HashMap<&str, &BlobRef> =
            refs.iter().map(|r| (r.digest.as_str(), r)).collect();
        Ok(objects
            .iter()
            .map(|o| by_digest[o.digest.as_str()].clone())
            .collect())
    }

    /// Lists blobs in `container` whose names start with `prefix`.
    pub async fn list_blobs(&self, container: &str, prefix: &str) -> Result<Vec<BlobInfo>> {
        let service = self.service()?;
        let container_client = service.blob_container_client(container);
        let op = format!("list {container}/{prefix}*");
        self.retry
            .run(&op, || async {
                let options = BlobContainerClientListBlobsOptions {
                    prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
                    include: Some(vec![ListBlobsIncludeItem::Metadata]),
                    ..Default::default()
                };
                let items: Vec<_> = container_client
                    .list_blobs(Some(options))?
                    .try_collect()
                    .await?;
                Ok(items
                    .into_iter()
                    .filter_map(|item| {
                        let name = item.name?;
                        let size = item.properties.and_then(|p| p.content_length).unwrap_or(0);
                        let sha256 = item
                            .metadata
                            .and_then(|m| m.values)
                            .and_then(|mut v| v.remove(META_SHA256));
                        Some(BlobInfo { name, size, sha256 })
                    })
                    .collect())
            })
            .await
            .map_err(|e| service_error(&op, &e))
    }

    /// Run ids that have containers under this client's prefix.
    pub async fn list_runs(&self) -> Result<Vec<String>> {
        let service = self.service()?;
        let op = "list containers";
        let prefix = format!("{}-", self.prefix);
        let items = self
            .retry
            .run(op, || async {
                let options = BlobServiceClientListContainersOptions {
                    prefix: Some(prefix.clone()),
                    include: Some(vec![ListContainersIncludeType::Metadata]),
                    ..Default::default()
                };
                service
                    .list_containers(Some(options))?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await
            .map_err(|e| service_error(op, &e))?;
        let mut runs: Vec<String> = items
            .into_iter()
            .filter_map(|c| c.metadata?.remove(META_RUN_ID))
            .collect();
        runs.sort();
        runs.dedup();
        Ok(runs)
    }

    /// Deletes both containers of `run_id` with everything in them. Missing containers are
    /// fine, so this is safe to call again.
    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        let run = self.containers(run_id)?;
        let service = self.service()?;
        for name in [&run.inputs, &run.outputs] {
            let container = service.blob_container_client(name);
            let op = format!("delete container {name}");
            match self.retry.run(&op, || container.delete(None)).await {
                Ok(_) => tracing::info!(container = %name, run_id, "container deleted"),
                Err(e) if error_code(&e) == Some("ContainerNotFound") => {}
                Err(e) => return Err(service_error(&op, &e)),
            }
        }
        Ok(())
    }

    /// Downloads one blob to `dest` (temp file + rename), checking its `sha256` metadata when
    /// present. Returns the byte count.
    pub async fn download_blob(&self, container: &str, blob: &str, dest: &Path) -> Result<u64> {
        let service = self.service()?;
        let container_client = service.blob_container_client(container);
        self.download_with(&container_client, container, blob, dest)
            .await
    }

    async fn download_with(
        &self,
        container_client: &BlobContainerClient,
        container: &str,
        blob: &str,
        dest: &Path,
    ) -> Result<u64> {
        let blob_client = container_client.blob_client(blob);
        let op = format!("download {container}/{blob}");
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.part-{}",
            dest.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("download"),
            std::process::id()
        ));
        let (size, digest, expected) = self
            .retry
            .run(&op, || async {
                let result = blob_client.download(None).await?;
                let expected = result.properties.metadata.get(META_SHA256).cloned();
                let mut body = result.body;
                let io = |e: std::io::Error| {
                    azure_core::Error::with_message(
                        azure_core::error::ErrorKind::Other,
                        e.to_string(),
                    )
                };
                let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
                let mut hasher = Sha256::new();
                let mut size = 0u64;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    file.write_all(&chunk).await.map_err(io)?;
                }
                file.sync_all().await.map_err(io)?;
                Ok((size, hex::encode(hasher.finalize()), expected))
            })
            .await
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                service_error(&op, &e)
            })?;
        if let Some(expected) = expected
            && expected != digest
        {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::Corrupt {
                container: container.to_owned(),
                blob: blob.to_owned(),
                expected,
                actual: digest,
            });
        }
        tokio::fs::rename(&tmp, dest)
            .await
            .map_err(|e| Error::io(dest, e))?;
        Ok(size)
    }

    /// Downloads every blob under `prefix` in `container` into `dest_dir`, keeping the part of
    /// the name after `prefix` as the relative path. A blob name that would escape `dest_dir`
    /// (`..`, absolute, backslash) is refused before anything is written.
    pub async fn download_prefix(
        &self,
        container: &str,
        prefix: &str,
        dest_dir: &Path,
    ) -> Result<Vec<Downloaded>> {
        let blobs = self.list_blobs(container, prefix).await?;
        let mut plan = Vec::with_capacity(blobs.len());
        for b in &blobs {
            let rel = b.name[prefix.len()..].trim_start_matches('/');
            plan.push((
                b.name.clone(),
                dest_dir.join(safe_relative(container, &b.name, rel)?),
            ));
        }
        let service = self.service()?;
        let container_client = service.blob_container_client(container);
        futures::stream::iter(plan)
            .map(|(blob, path)| {
                let container_client = &container_client;
                async move {
                    let size = self
                        .download_with(container_client, container, &blob, &path)
                        .await?;
                    Ok(Downloaded { blob, path, size })
                }
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await
    }

    /// A read-only (`sp=r`) SAS URL for one staged blob, valid until `expires_at`.
    pub async fn blob_read_sas(&self, blob: &BlobRef, expires_at: SystemTime) -> Result<SasUrl> {
        self.sign(
            Resource::Blob(&blob.container, &blob.name),
            Permissions::READ,
            expires_at,
        )
        .await
    }

    /// A read + list (`sp=rl`) container SAS, for Batch's `storageContainerUrl` resource files.
    pub async fn container_read_sas(
        &self,
        container: &str,
        expires_at: SystemTime,
    ) -> Result<SasUrl> {
        self.sign(
            Resource::Container(container),
            Permissions::READ_LIST,
            expires_at,
        )
        .await
    }

    /// A create + write (`sp=cw`) container SAS and nothing more: what Batch output files need.
    pub async fn container_write_sas(
        &self,
        container: &str,
        expires_at: SystemTime,
    ) -> Result<SasUrl> {
        self.sign(
            Resource::Container(container),
            Permissions::CREATE_WRITE,
            expires_at,
        )
        .await
    }

    /// Signs a service SAS (account key) or a user delegation SAS (Entra ID).
    pub async fn sign(
        &self,
        resource: Resource<'_>,
        permissions: Permissions,
        expires_at: SystemTime,
    ) -> Result<SasUrl> {
        let now = SystemTime::now();
        if expires_at <= now {
            return Err(Error::InvalidArgument(format!(
                "SAS expiry {} is not in the future",
                sas::format_time(expires_at)
            )));
        }
        let base = match resource {
            Resource::Container(c) => self.resource_url(&[c]),
            Resource::Blob(c, b) => self.resource_url(&[c, b]),
        };
        let window = SasWindow {
            start: Some(now - CLOCK_SKEW),
            expiry: expires_at,
            protocol: self.protocol(),
        };
        let query = match &self.config.auth {
            Auth::AccountKey(key) => sas::service_sas(key, resource, permissions, &window),
            Auth::Token(_) => {
                self.user_delegation_sas(resource, permissions, &window)
                    .await?
            }
        };
        tracing::debug!(resource = %base, permissions = %permissions, expires = %sas::format_time(expires_at), "SAS issued");
        Ok(SasUrl::new(
            base,
            &query,
            expires_at,
            permissions.to_string(),
        ))
    }

    async fn user_delegation_sas(
        &self,
        resource: Resource<'_>,
        permissions: Permissions,
        window: &SasWindow,
    ) -> Result<String> {
        if window.expiry > SystemTime::now() + MAX_USER_DELEGATION {
            return Err(Error::InvalidArgument(format!(
                "a user delegation SAS can last at most 7 days; {} is later: shorten the job's time \
                 limit or use an account key",
                sas::format_time(window.expiry)
            )));
        }
        let key = self.delegation_key(window.expiry).await?;
        let protocol = match window.protocol {
            Protocol::HttpsOnly => SasProtocol::Https,
            Protocol::HttpsAndHttp => SasProtocol::HttpsAndHttp,
        };
        let builder = SasBuilder::new(
            &self.config.account,
            &key,
            OffsetDateTime::from(window.expiry),
        )
        .map_err(|e| service_error("build user delegation SAS", &e))?
        .protocol(protocol);
        let builder = match window.start {
            Some(st) => builder.start(OffsetDateTime::from(st)),
            None => builder,
        };
        Ok(match resource {
            Resource::Blob(c, b) => {
                let mut s = builder.blob(c, b);
                if permissions.read {
                    s = s.read();
                }
                if permissions.create {
                    s = s.create();
                }
                if permissions.write {
                    s = s.write();
                }
                if permissions.add {
                    s = s.add();
                }
                if permissions.delete {
                    s = s.delete();
                }
                s.build()
            }
            Resource::Container(c) => {
                let mut s = builder.container(c);
                if permissions.read {
                    s = s.read();
                }
                if permissions.add {
                    s = s.add();
                }
                if permissions.create {
                    s = s.create();
                }
                if permissions.write {
                    s = s.write();
                }
                if permissions.delete {
                    s = s.delete();
                }
                if permissions.list {
                    s = s.list();
                }
                s.build()
            }
        })
    }

    /// A user delegation key valid at least until `until`, fetched once and reused.
    async fn delegation_key(&self, until: SystemTime) -> Result<UserDelegationKey> {
        if let Some((key, expiry)) = self.delegation_key.lock().expect("not poisoned").as_ref()
            && *expiry >= until
        {
            return Ok(key.clone());
        }
        let now = SystemTime::now();
        // Ask for the longest key Azure allows (7 days) so one key serves the whole run.
        let key_expiry = (now + MAX_USER_DELEGATION - Duration::from_secs(60)).max(until);
        let service = self.service()?;
        let op = "get user delegation key";
        let key = self
            .retry
            .run(op, || async {
                let info = KeyInfo {
                    start: Some(OffsetDateTime::from(now - CLOCK_SKEW)),
                    expiry: Some(OffsetDateTime::from(key_expiry)),
                    ..Default::default()
                };
                let content: RequestContent<KeyInfo, XmlFormat> = info.try_into()?;
                service
                    .get_user_delegation_key(content, None)
                    .await?
                    .into_model()
            })
            .await
            .map_err(|e| service_error(op, &e))?;
        *self.delegation_key.lock().expect("not poisoned") = Some((key.clone(), key_expiry));
        Ok(key)
    }
}

/// Progress counters shared by the upload tasks.
struct Tracker {
    /// (bytes done, objects done)
    state: Mutex<(u64, usize)>,
    bytes_total: u64,
    objects_total: usize,
    callback: Option<ProgressFn>,
}

impl Tracker {
    fn report(&self, digest: &str, event: ProgressEvent, bytes: u64, object_finished: bool) {
        let (bytes_done, objects_done) = {
            let mut s = self.state.lock().expect("not poisoned");
            s.0 += bytes;
            if object_finished {
                s.1 += 1;
            }
            *s
        };
        if let Some(cb) = &self.callback {
            cb(&Progress {
                digest: digest.to_owned(),
                event,
                bytes_done,
                bytes_total: self.bytes_total,
                objects_done,
                objects_total: self.objects_total,
            });
        }
    }
}

struct UploadCtx<'a> {
    client: &'a StagingClient,
    container: &'a BlobContainerClient,
    container_name: &'a str,
    permits: &'a Semaphore,
    tracker: &'a Tracker,
    /// The container's blobs when the upload started, by name.
    listed: &'a HashMap<String, BlobInfo>,
}

impl UploadCtx<'_> {
    async fn upload_one(&self, obj: &LocalObject) -> Result<BlobRef> {
        let blob = self.container.blob_client(&obj.digest);
        let short = &obj.digest[..12];
        let retry = &self.client.retry;
        let blob_ref = |uploaded| BlobRef {
            container: self.container_name.to_owned(),
            name: obj.digest.clone(),
            digest: obj.digest.clone(),
            size: obj.size,
            url: self
                .client
                .resource_url(&[self.container_name, &obj.digest]),
            uploaded,
        };

        // Content addressing: same name, same recorded digest and size => already staged.
        if let Some(b) = self.listed.get(&obj.digest)
            && b.sha256.as_deref() == Some(obj.digest.as_str())
            && b.size == obj.size
        {
            tracing::debug!(digest = short, "already staged, skipped");
            self.tracker
                .report(&obj.digest, ProgressEvent::Skipped, obj.size, true);
            return Ok(blob_ref(false));
        }

        let metadata = HashMap::from([(META_SHA256.to_owned(), obj.digest.clone())]);
        if obj.size <= self.client.block_size as u64 {
            let data = tokio::fs::read(&obj.path)
                .await
                .map_err(|e| Error::io(&obj.path, e))?;
            check_content(&obj.path, &obj.digest, obj.size, &data)?;
            let data = Bytes::from(data);
            let op = format!("upload {short}");
            let _permit = self.permits.acquire().await.expect("semaphore open");
            retry
                .run(&op, || {
                    let options = BlobClientUploadOptions {
                        metadata: Some(metadata.clone()),
                        partition_size: NonZero::new(self.client.block_size as u64),
                        parallel: NonZero::new(1),
                        ..Default::default()
                    };
                    blob.upload(data.clone().into(), Some(options))
                })
                .await
                .map_err(|e| service_error(&op, &e))?;
            self.tracker
                .report(&obj.digest, ProgressEvent::Bytes(obj.size), obj.size, false);
        } else {
            self.upload_blocks(obj, &blob.block_blob_client(), metadata)
                .await?;
        }
        self.tracker
            .report(&obj.digest, ProgressEvent::Done, 0, true);
        tracing::debug!(digest = short, size = obj.size, "staged");
        Ok(blob_ref(true))
    }

    /// Put Block for every block the service does not already hold, then Put Block List.
    async fn upload_blocks(
        &self,
        obj: &LocalObject,
        blob: &azure_storage_blob::BlockBlobClient,
        metadata: HashMap<String, String>,
    ) -> Result<()> {
        let short = &obj.digest[..12];
        // Hash first: never commit content that no longer matches its name.
        let (digest, size) = hash_file(&obj.path).await?;
        if digest != obj.digest || size != obj.size {
            return Err(Error::ContentChanged {
                path: obj.path.clone(),
                expected: obj.digest.clone(),
                actual: digest,
            });
        }
        let plan = BlockPlan::new(obj, self.client.block_size as u64);
        let mut reported: HashSet<u64> = HashSet::new();
        for round in 0..4 {
            let staged = self.staged_blocks(blob, short).await?;
            let missing: Vec<u64> = (0..plan.count)
                .filter(|&i| staged.get(&plan.ids[i as usize]) != Some(&plan.len(i)))
                .collect();
            // Blocks found already staged count as done (resume) once.
            for i in (0..plan.count).filter(|i| !missing.contains(i)) {
                self.report_block(obj, &plan, i, &mut reported);
            }
            if round > 0 && !missing.is_empty() {
                tracing::warn!(
                    digest = short,
                    blocks = missing.len(),
                    "service lost staged blocks; sending them again"
                );
            }
            self.stage_blocks(obj, blob, &plan, &missing, &mut reported)
                .await?;
            if round == 0 && !missing.is_empty() {
                // Check before committing: an outage may have dropped blocks sent earlier.
                continue;
            }
            if self.commit_blocks(blob, &plan, &metadata, short).await? {
                return Ok(());
            }
        }
        Err(Error::Service {
            operation: format!("commit {short}"),
            status: None,
            message: "blocks kept disappearing from the service; gave up after 4 rounds".into(),
        })
    }

    /// Progress for block `i`, the first time it is done (found staged or sent).
    fn report_block(
        &self,
        obj: &LocalObject,
        plan: &BlockPlan,
        i: u64,
        reported: &mut HashSet<u64>,
    ) {
        if reported.insert(i) {
            let len = plan.len(i);
            self.tracker
                .report(&obj.digest, ProgressEvent::Bytes(len), len, false);
        }
    }

    /// Put Block for each of `missing`, `concurrency` at a time, each retried.
    async fn stage_blocks(
        &self,
        obj: &LocalObject,
        blob: &azure_storage_blob::BlockBlobClient,
        plan: &BlockPlan,
        missing: &[u64],
        reported: &mut HashSet<u64>,
    ) -> Result<()> {
        let short = &obj.digest[..12];
        let retry = &self.client.retry;
        futures::stream::iter(missing.iter().copied())
            .map(|i| {
                let id = &plan.ids[i as usize];
                async move {
                    let len = plan.len(i);
                    let data = read_block(&obj.path, i * plan.block_size, len).await?;
                    let op = format!("upload {short} block {i}");
                    let _permit = self.permits.acquire().await.expect("semaphore open");
                    retry
                        .run(&op, || blob.stage_block(id, len, data.clone().into(), None))
                        .await
                        .map_err(|e| service_error(&op, &e))?;
                    Ok::<u64, Error>(i)
                }
            })
            .buffer_unordered(self.client.concurrency)
            .try_for_each(|i| {
                self.report_block(obj, plan, i, reported);
                futures::future::ready(Ok(()))
            })
            .await
    }

    /// Put Block List of every block, with the blob's metadata. `Ok(false)` when the service
    /// refuses it because blocks went missing (`InvalidBlockList`): stage them again.
    async fn commit_blocks(
        &self,
        blob: &azure_storage_blob::BlockBlobClient,
        plan: &BlockPlan,
        metadata: &HashMap<String, String>,
        short: &str,
    ) -> Result<bool> {
        let op = format!("commit {short}");
        let list = BlockLookupList {
            latest: Some(plan.ids.clone()),
            ..Default::default()
        };
        let committed = {
            let _permit = self.permits.acquire().await.expect("semaphore open");
            self.client
                .retry
                .run(&op, || async {
                    let options = BlockBlobClientCommitBlockListOptions {
                        metadata: Some(metadata.clone()),
                        ..Default::default()
                    };
                    let content: RequestContent<BlockLookupList, XmlFormat> =
                        list.clone().try_into()?;
                    blob.commit_block_list(content, Some(options)).await
                })
                .await
        };
        match committed {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("InvalidBlockList") => {
                tracing::warn!(digest = short, "commit refused: blocks missing; restaging");
                Ok(false)
            }
            Err(e) => Err(service_error(&op, &e)),
        }
    }

    /// Uncommitted blocks the service holds for this blob: id -> size.
    async fn staged_blocks(
        &self,
        blob: &azure_storage_blob::BlockBlobClient,
        short: &str,
    ) -> Result<HashMap<Vec<u8>, u64>> {
        let op = format!("list blocks {short}");
        let _permit = self.permits.acquire().await.expect("semaphore open");
        let listed = self
            .client
            .retry
            .run(&op, || async {
                blob.get_block_list(BlockListType::Uncommitted, None)
                    .await?
                    .into_model()
            })
            .await;
        match listed {
            Ok(list) => Ok(list
                .uncommitted_blocks
                .unwrap_or_default()
                .into_iter()
                .filter_map(|b| Some((b.name?, u64::try_from(b.size?).ok()?)))
                .collect()),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(HashMap::new()),
            Err(e) => Err(service_error(&op, &e)),
        }
    }
}

fn check_content(path: &Path, digest: &str, size: u64, data: &[u8]) -> Result<()> {
    let actual = hex::encode(Sha256::digest(data));
    if actual != digest || data.len() as u64 != size {
        return Err(Error::ContentChanged {
            path: path.to_owned(),
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// How an object is cut into blocks for Put Block.
struct BlockPlan {
    /// Same length for every id (a service rule); derived from the content so that a resumed
    /// upload of the same blob finds its earlier blocks.
    ids: Vec<Vec<u8>>,
    block_size: u64,
    size: u64,
    count: u64,
}

impl BlockPlan {
    fn new(obj: &LocalObject, block_size: u64) -> Self {
        let count = obj.size.div_ceil(block_size);
        let ids = (0..count)
            .map(|i| format!("{i:06}-{}", &obj.digest[..9]).into_bytes())
            .collect();
        Self {
            ids,
            block_size,
            size: obj.size,
            count,
        }
    }

    /// Length of block `i` (the last one may be short).
    fn len(&self, i: u64) -> u64 {
        self.block_size.min(self.size - i * self.block_size)
    }
}

async fn read_block(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf)
        .await
        .map_err(|e| Error::io(path, e))?;
    Ok(Bytes::from(buf))
}

/// Streams `path` through SHA-256: (lowercase hex digest, size).
pub async fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await.map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// `rel` as a path that stays inside the destination directory.
fn safe_relative(container: &str, blob: &str, rel: &str) -> Result<PathBuf> {
    let path = Path::new(rel);
    let ok = !rel.is_empty()
        && !rel.contains('\\')
        && !rel.contains('\0')
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(path.to_owned())
    } else {
        Err(Error::InvalidArgument(format!(
            "blob {container}/{blob:?} has a name that would escape the download directory; \
             refusing to download it"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers hold these futures across `tokio::spawn` and `async_trait` boundaries; this
    /// fails to compile if one stops being `Send`.
    #[test]
    fn futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        let config = StorageConfig::new(
            "http://127.0.0.1:10000/devstoreaccount1",
            "devstoreaccount1",
            Auth::AccountKey(
                crate::sas::AccountKey::new("devstoreaccount1", crate::config::DEV_ACCOUNT_KEY)
                    .unwrap(),
            ),
        )
        .unwrap();
        let client = StagingClient::builder(config).build().unwrap();
        let run = client.containers("send-check").unwrap();
        is_send(&client.upload_objects(&run, &[], None));
        is_send(&client.download_prefix(&run.outputs, "", Path::new("unused")));
    }

    #[test]
    fn download_paths_cannot_escape() {
        assert_eq!(
            safe_relative("c", "t/out.txt", "t/out.txt").unwrap(),
            PathBuf::from("t/out.txt")
        );
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\\b", "", "./"] {
            assert!(safe_relative("c", bad, bad).is_err(), "{bad:?}");
        }
    }
}
