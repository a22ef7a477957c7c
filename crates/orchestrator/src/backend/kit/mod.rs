//! The backend kit: plumbing every backend (and the core) shares, written once so the copies
//! cannot drift apart.
//!
//! - [`write_atomic`] / [`sync_dir`]: the workspace's one atomic write (`fsutil`), with this
//!   crate's error;
//! - [`store`]: the content-addressed object store (hash while copying, verify before reuse,
//!   named input links checked by inode) the local and Slurm backends stage into;
//! - [`redact`]: keys, signatures and tokens masked out of any text that may reach a user;
//! - [`pack`]: the pack planner (`--inputs-per-task N|auto`) that the Slurm and Azure Batch
//!   backends use to run several inputs in one engine task;
//! - [`pgroups`]: the process groups of running tasks, recorded in the run directory so a
//!   session after a kill -9 kills the orphans before running their tasks again.

use std::path::Path;

use crate::{Error, Result};

pub mod pack;
pub mod pgroups;
pub mod redact;
pub mod store;

/// Replaces `path` with `bytes` atomically and durably; refuses a target that is not a
/// regular file. See `fsutil::write_atomic`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fsutil::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}

/// [`write_atomic`] for content written by `write` as it is produced (never held whole in
/// memory). See `fsutil::write_atomic_with`.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    fsutil::write_atomic_with(path, write).map_err(|e| Error::io("write", path, e))
}

/// Makes a directory's entries (a rename just done in it) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fsutil::sync_dir(dir).map_err(|e| Error::io("sync", dir, e))
}
