//! Azure Blob Storage staging for the orchestrator's Azure Batch backend.
//!
//! What it does, for one run:
//! - creates the run's two containers (inputs, outputs; [`RunContainers`]);
//! - uploads the trainer and the input files content-addressed (blob name = SHA-256 digest,
//!   skipped when already staged), large files in blocks, with bounded concurrency, retries
//!   and a progress callback ([`progress_bar`] gives an `indicatif` bar);
//! - mints least-privilege SAS URLs for the nodes: blob read (`r`), container read+list (`rl`)
//!   for inputs, container create+write (`cw`) for outputs; https-only against Azure;
//! - downloads outputs, lists, and deletes everything of a run;
//! - reads inputs that already live in Blob Storage ([`input`]: `az://` prefixes listed with
//!   their `Content-MD5`, downloads hashed while they stream, a read SAS per input blob).
//!
//! Credentials come from the environment only ([`StorageConfig::from_env`]):
//! `AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`, or
//! `AZURE_STORAGE_ACCOUNT` alone for Microsoft Entra ID ([`EnvCredentialChain`]: client secret,
//! workload identity, Azure CLI, managed identity); `AZURE_STORAGE_BLOB_ENDPOINT` overrides
//! the endpoint. With an account key the SAS tokens are signed here ([`sas`]); with Entra ID
//! they are user delegation SAS. Keys and signatures never appear in `Debug` output, logs or
//! errors ([`redact`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use azure_staging::{LocalObject, StagingClient, ensure_sas_covers, progress_bar};
//!
//! # async fn demo() -> azure_staging::Result<()> {
//! let client = StagingClient::from_env()?;
//! let run = client.ensure_containers("2026-11-28-run-1").await?;
//! let objects = vec![
//!     LocalObject::from_file("target/release/trainer").await?,
//!     LocalObject::from_file("inputs/a.csv").await?,
//! ];
//! let (bar, progress) = progress_bar("staging");
//! let staged = client.upload_objects(&run, &objects, Some(progress)).await?;
//! bar.finish();
//!
//! // SAS tokens for the nodes, valid for the job's time limit plus a margin.
//! let time_limit = Duration::from_secs(2 * 3600);
//! let expiry = client.sas_expiry_for_job(time_limit);
//! let trainer_url = client.blob_read_sas(&staged[0], expiry).await?;
//! let output_url = client.container_write_sas(&run.outputs, expiry).await?;
//! // Refuse to submit work whose storage access would end before the job can.
//! ensure_sas_covers(output_url.expires_at(), time_limit)?;
//! let _for_batch = (trainer_url.expose(), output_url.expose());
//!
//! // ... the job runs; nodes write `<task>/output.txt` into the output container ...
//! client.download_prefix(&run.outputs, "", "runs/2026-11-28-run-1/tasks".as_ref()).await?;
//! client.delete_run("2026-11-28-run-1").await?;
//! # Ok(())
//! # }
//! ```

mod client;
pub mod config;
mod error;
pub mod input;
pub mod naming;
mod progress;
pub mod redact;
pub mod retry;
pub mod sas;
mod token;

pub use client::{
    BlobInfo, BlobRef, DEFAULT_BLOCK_SIZE, DEFAULT_CONCURRENCY, Downloaded, LocalObject,
    MAX_USER_DELEGATION, META_RUN_ID, META_SHA256, StagingClient, StagingClientBuilder, hash_file,
};
pub use config::{Auth, EnvCredentialChain, StorageConfig};
pub use error::{Error, Result};
pub use input::{BlobPrefix, InputBlob, InputDownload};
pub use naming::RunContainers;
pub use progress::{Progress, ProgressEvent, ProgressFn, progress_bar};
pub use retry::RetryPolicy;
pub use sas::{
    AccountKey, DEFAULT_SAS_MARGIN, Permissions, Protocol, Resource, SasUrl, ensure_sas_covers,
    sas_expiry_for,
};
pub use token::{CachedCredential, REFRESH_BEFORE_EXPIRY};
