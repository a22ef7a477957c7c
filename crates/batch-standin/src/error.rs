//! The crate's one error type: failures to start or configure the stand-in.
//!
//! Errors a Batch client sees are not here: those are HTTP responses with a
//! `BatchError` body, built in `api.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the stand-in could not start or could not apply a configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind the listener on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create the work directory `{path}`")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the account key is not valid base64 (Batch keys are base64 strings)")]
    AccountKey(#[source] base64::DecodeError),
    #[error("invalid fault `{spec}`: {reason}")]
    Fault { spec: String, reason: String },
    #[error("the embedded BatchService.json is not valid: {0}")]
    Spec(String),
    #[error("failed to build the HTTP client used for resource and output files")]
    HttpClient(#[source] reqwest::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message with its source chain, `a: b: c`, for one stderr line.
    pub fn chain(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    }
}
