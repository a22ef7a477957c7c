//! The orchestrator's one error type, and the process exit codes it maps to.
//!
//! A task that fails is not an [`Error`]: it is recorded in the report and turns into exit
//! code 1 after every other task has finished. An [`Error`] stops the orchestrator itself.

use std::path::PathBuf;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// I/O on a named path.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An engine-specific failure, keeping the backend's own error as the cause (a plain
    /// message becomes one too), so callers can match on it and `{:#}` shows the chain.
    #[error("{backend} backend: {source}")]
    Backend {
        /// Engine name.
        backend: &'static str,
        /// What went wrong, without secrets.
        #[source]
        source: BoxError,
    },
    /// A flag, environment variable or configuration file value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A sweep's grid is refused before anything starts (exit code 1, like the trainer's
    /// refusal of bad flags: running it again cannot help).
    #[error("grid: {0}")]
    Grid(String),
    /// An input file or directory cannot be used; the message says what to do.
    #[error("input `{path}`: {reason}")]
    Input {
        /// The offending path (lossy for non-UTF-8 names).
        path: PathBuf,
        /// Why it was rejected and what to do.
        reason: String,
    },
    /// No trainer executable was given or found.
    #[error(
        "trainer executable not found (looked in: {searched}); build it with \
         `cargo build --release -p trainer` or pass `--trainer PATH`"
    )]
    TrainerNotFound {
        /// The places looked at, comma separated.
        searched: String,
    },
    /// Building the trainer on the fly failed.
    #[error("failed to build the trainer with `{command}`: {reason}")]
    TrainerBuild {
        /// The command that was run.
        command: String,
        /// Exit status or spawn error.
        reason: String,
    },
    /// `resume`, `status` or `cleanup` named a run that does not exist.
    #[error("no run `{run_id}` under `{out}` (no manifest.json); list runs with `ls {out}`")]
    RunNotFound {
        /// The run id asked for.
        run_id: String,
        /// The output directory searched.
        out: PathBuf,
    },
    /// A manifest exists but cannot be used.
    #[error("run manifest `{path}`: {reason}")]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Backend`]: `source` is the backend's error or a message.
    pub fn backend(backend: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            backend,
            source: source.into(),
        }
    }

    /// The process exit code for this error: 1 for a refused grid, 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Grid(_) => EXIT_BAD_GRID,
            _ => EXIT_ERROR,
        }
    }

    /// The error and each of its causes once, joined by `: ` (what `main` prints after
    /// `error: `). A cause whose text the line already ends with is not repeated: a
    /// [`Error::Backend`] shows its source in its own text, and so do some backends' errors.
    pub fn report(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        line
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// A backend's own error, boxed (any `std::error::Error`, or a `String` message).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code when every task succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one task failed (after all of them finished).
pub const EXIT_TASKS_FAILED: u8 = 1;
/// Exit code when a sweep's grid is refused before anything started (nothing was created).
pub const EXIT_BAD_GRID: u8 = 1;
/// Exit code when the orchestrator itself failed ([`Error`]): bad flags, unreadable inputs.
pub const EXIT_ERROR: u8 = 2;
/// Exit code after Ctrl-C / SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed `addtaskcollection` printed its cause twice: the backend's text already holds
    /// it, and the chain appended it again.
    #[test]
    fn a_backend_error_shows_its_cause_once() {
        let cause = "POST /jobs/j/addtaskcollection -> HTTP 400 InvalidPropertyValue: bad";
        let e = Error::backend("azure-batch", cause);
        assert_eq!(e.report(), format!("azure-batch backend: {cause}"));
    }

    /// An error that repeats its own source in its text, under a backend error.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "staging: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_of_a_chain_is_printed_once() {
        let io = std::io::Error::other("disk full");
        let e = Error::backend("slurm", Wrapping(io));
        assert_eq!(e.report(), "slurm backend: staging: disk full");
    }

    #[test]
    fn a_cause_not_in_the_text_is_appended() {
        let e = Error::io("read", "/x/y", std::io::Error::other("permission denied"));
        assert_eq!(e.report(), "failed to read `/x/y`: permission denied");
    }
}
