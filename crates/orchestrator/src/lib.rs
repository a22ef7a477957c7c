//! Orchestrator: stage the trainer and the inputs, run one task per input on a backend,
//! collect every result into one report.
//!
//! # Layout
//!
//! - [`cli`]: flags, environment, configuration file, and the one `match` that picks a backend.
//! - [`pipeline`]: the backend-generic flow: plan, stage, execute, manifest, report.
//! - [`backend`]: the [`backend::Backend`] trait and its engines ([`backend::Local`], ...).
//! - [`task`]: the types shared by the core and every backend.
//! - [`input`], [`manifest`], [`report`], [`progress`], [`config`]: the pieces of the flow.
//! - [`text`]: untrusted text made safe for a terminal line or a spreadsheet cell.
//! - [`sweep`]: grids of trainer settings (`--grid`, `--grid-file`, `--sample`), best per input.
//!
//! # Example
//!
//! ```no_run
//! use orchestrator::backend::{BackendKind, Local};
//! use orchestrator::config::RunConfig;
//! use std::path::{Path, PathBuf};
//!
//! # async fn example() -> orchestrator::Result<()> {
//! let config = RunConfig {
//!     input_dir: PathBuf::from("input_files"),
//!     out_dir: PathBuf::from("runs"),
//!     backend: BackendKind::Local,
//!     trainer: None,
//!     concurrency: None,
//!     retries: 2,
//!     timeout: None,
//!     dry_run: false,
//!     run_id: None,
//!     trainer_args: vec![],
//!     grid: None,
//! };
//! let backend = Local::new(Path::new("runs"));
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let finished = orchestrator::pipeline::run(&backend, &config, shutdown).await?;
//! println!("report in {}", finished.run_dir.display());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod backend;
pub mod cli;
pub mod config;
mod error;
pub mod input;
pub mod manifest;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod sweep;
pub mod task;
pub mod text;

pub use error::{
    BoxError, EXIT_BAD_GRID, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TASKS_FAILED, Error,
    Result,
};
