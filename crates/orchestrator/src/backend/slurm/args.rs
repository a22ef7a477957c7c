//! The Slurm backend's own command-line flags and how it is built from them and its `[slurm]`
//! TOML table: everything `cli.rs` needs to offer this backend, kept here so that adding or
//! changing a backend touches its own folder.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Slurm, SlurmConfig, SlurmOptions};
use crate::Result;

/// Slurm backend flags, flattened into `run`, `resume` and `cleanup`; `[slurm]` in the TOML
/// file supplies what they leave out.
#[derive(Debug, Clone, Default, Args)]
pub struct SlurmArgs {
    /// Slurm: directory on the cluster's shared filesystem for the trainer, inputs and results
    /// [default: OUT/slurm-staging].
    #[arg(long, env = "ORCHESTRATOR_SLURM_STAGING_DIR", value_name = "DIR")]
    pub staging_dir: Option<PathBuf>,
    /// Slurm: partition to submit to [default: the cluster's default].
    #[arg(long, env = "ORCHESTRATOR_SLURM_PARTITION", value_name = "NAME")]
    pub partition: Option<String>,
    /// Slurm: time limit per task in Slurm's syntax (`30`, `1:00:00`) [default: from --timeout].
    #[arg(long, env = "ORCHESTRATOR_SLURM_TIME_LIMIT", value_name = "TIME")]
    pub time_limit: Option<String>,
    /// Slurm: CPUs per task [default: 1].
    #[arg(long, env = "ORCHESTRATOR_SLURM_CPUS_PER_TASK", value_name = "N")]
    pub cpus_per_task: Option<u32>,
    /// Slurm: memory per task in Slurm's syntax (`500M`, `2G`) [default: the partition's].
    #[arg(long, env = "ORCHESTRATOR_SLURM_MEM", value_name = "SIZE")]
    pub mem: Option<String>,
    /// Slurm: how often to poll `scontrol` (`500ms`, `2s`) [default: 1s].
    #[arg(
        long,
        env = "ORCHESTRATOR_SLURM_POLL_INTERVAL",
        value_name = "DURATION"
    )]
    pub slurm_poll_interval: Option<String>,
}

impl Slurm {
    /// The backend for a command: flags over the `[slurm]` table, checked.
    pub fn from_settings(
        args: &SlurmArgs,
        file: Option<&toml::Table>,
        out_dir: &Path,
    ) -> Result<Self> {
        let flags = SlurmOptions {
            staging_dir: args.staging_dir.clone(),
            partition: args.partition.clone(),
            time_limit: args.time_limit.clone(),
            cpus_per_task: args.cpus_per_task,
            mem: args.mem.clone(),
            poll_interval: args.slurm_poll_interval.clone(),
        };
        Self::new(SlurmConfig::from_options(flags, file, out_dir)?)
    }
}
