//! The Azure Batch backend: a thin [`AzureBatch`] that stages through Blob Storage, creates the
//! pool and job, submits one task per input and watches them, over Batch's REST API.
//!
//! Only this module (and its children) know Azure Batch exists. `model.rs` is the only file
//! that knows Batch's JSON; `client.rs` the only one that knows its HTTP and auth.

mod client;
pub mod config;
mod job;
mod model;
mod pool;
mod tasks;
#[cfg(test)]
mod testserver;

pub use config::{AzureBatchConfig, BatchAuth, PoolMode};
