//! The orchestrator's one error type.

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// I/O on a named path.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An engine-specific failure, converted from the backend's own error.
    #[error("{backend} backend: {message}")]
    Backend {
        /// Engine name.
        backend: &'static str,
        /// What went wrong, without secrets.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
