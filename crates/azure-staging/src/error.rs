//! The crate's one error type.
//!
//! Every message that could carry a URL or a service reply passes through
//! [`crate::redact::redact`] before it is stored here, so formatting an [`Error`] (Display or
//! Debug) never shows an account key or a SAS signature.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while staging.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The environment does not describe a usable storage account or credential.
    #[error("storage configuration: {0}")]
    Config(String),

    /// A caller-supplied value is invalid (run id, container prefix, blob name, expiry ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A SAS would expire before the work that depends on it may still be running.
    #[error(
        "SAS expires at {expires} but the job may run until {needed}: refusing to submit work \
         whose storage access ends first (raise the SAS validity or lower the job time limit)"
    )]
    SasExpiresTooSoon {
        /// When the SAS stops working (RFC 3339).
        expires: String,
        /// The latest moment the job may still need it (RFC 3339).
        needed: String,
    },

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The local file no longer matches the digest or size it was staged under.
    #[error("{}: content changed while staging (expected sha256 {expected}, read {actual})", path.display())]
    ContentChanged {
        /// The file.
        path: PathBuf,
        /// Digest the caller announced.
        expected: String,
        /// Digest of the bytes actually read.
        actual: String,
    },

    /// Downloaded bytes do not match the digest recorded in the blob's metadata.
    #[error("{container}/{blob}: downloaded content has sha256 {actual}, metadata says {expected}")]
    Corrupt {
        /// Container.
        container: String,
        /// Blob.
        blob: String,
        /// Digest from metadata.
        expected: String,
        /// Digest of the received bytes.
        actual: String,
    },

    /// The storage service refused or failed a request (after retries, when retryable).
    #[error("storage {operation} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Service {
        /// What we were doing, e.g. `upload 3f2a.. block 7`.
        operation: String,
        /// HTTP status when the service answered.
        status: Option<u16>,
        /// Redacted description.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The HTTP status of a service error, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Service { status, .. } => *status,
            _ => None,
        }
    }
}
