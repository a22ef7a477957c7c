//! Orchestrator: stage the trainer and the inputs, run one task per input on a backend,
//! collect every result into one report.
#![warn(missing_docs)]

pub mod backend;
mod error;
pub mod job;

pub use error::{Error, Result};
