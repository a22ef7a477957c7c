//! The trainer's one error type and its mapping to exit codes.
//!
//! Every variant renders as a single line that names the input (and the line or column where
//! that makes sense), the cause, and what to do about it. `exit_code` is the only place where
//! errors become process exit codes: 1 = the input or the parameters are at fault (retrying will
//! not help), 2 = I/O or an unexpected failure (a retry may succeed).

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is out of the range scikit-learn accepts.
    #[error("invalid parameter: {0}")]
    Params(String),

    /// The CSV cannot be used as main.py's input; the message says where and why.
    #[error("{path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// Location, cause and remedy, as one line.
        message: String,
    },

    /// The input could not be read.
    #[error("failed to read `{path}`: {source}; check that the file exists and is readable")]
    Read {
        /// The input file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An output (score or JSON report) could not be written.
    #[error("failed to write `{path}`: {source}; check that the directory exists and is writable")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The run needs more memory than it can have (or than any machine has); the message
    /// says how much and what to do.
    #[error("{path}: {message}")]
    Resources {
        /// The input file.
        path: PathBuf,
        /// What could not be held, and the remedy, as one line.
        message: String,
    },

    /// The worker thread pool could not be started.
    #[error("failed to start {threads} worker threads: {message}")]
    ThreadPool {
        /// Requested thread count.
        threads: usize,
        /// The pool builder's message.
        message: String,
    },

    /// A linfa dataset did not fit the model (shape or label mismatch).
    #[error("invalid dataset: {0}")]
    Dataset(String),

    /// An error raised by linfa itself.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

impl Error {
    /// The process exit code for this error: 1 for bad input or parameters, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Params(_) | Error::Input { .. } | Error::Dataset(_) | Error::Linfa(_) => 1,
            Error::Read { .. }
            | Error::Write { .. }
            | Error::Resources { .. }
            | Error::ThreadPool { .. } => 2,
        }
    }

    pub(crate) fn resources(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::Resources {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn input(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// `text` as one terminal-safe line: control characters and bidi controls (a newline, an
/// escape sequence or U+202E in a CSV header or a file name) are written as Rust escapes (`\n`,
/// `\u{1b}`), so an error stays one line and cannot drive the terminal. The workspace's one
/// escape, shared with the orchestrator.
pub use fsutil::text::one_line;
