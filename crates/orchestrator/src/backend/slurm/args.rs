//! The Slurm backend's settings: its own command-line flags, its `[slurm]` TOML table, the
//! checked `SlurmConfig` they merge into, and how the backend is built from them; everything
//! `cli.rs` needs to offer this backend, kept here so that adding or changing a backend
//! touches its own folder.

use std::path::{Path, PathBuf};

use clap::Args;

use std::time::Duration;

use super::Slurm;
use crate::backend::kit::pack::{InputsPerTask, PackArgs};
use crate::{Error, Result};

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
        pack: &PackArgs,
        file: Option<&toml::Table>,
        out_dir: &Path,
    ) -> Result<Self> {
        let flags = SlurmOptions {
            inputs_per_task: pack.inputs_per_task.map(|p| p.to_string()),
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

impl crate::backend::FromSettings for Slurm {
    type Args = SlurmArgs;

    async fn build(args: &SlurmArgs, ctx: &crate::backend::BuildContext<'_>) -> Result<Self> {
        Self::from_settings(args, ctx.pack, ctx.table, ctx.out_dir)
    }
}

/// Checked settings of the Slurm backend (from `--partition`, `--time-limit`,
/// `--cpus-per-task`, `--mem`, `--staging-dir`).
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// Directory on a filesystem every compute node sees at the same path.
    pub staging_dir: PathBuf,
    /// `sbatch --partition`; the cluster's default partition when `None`.
    pub partition: Option<String>,
    /// `sbatch --time` in Slurm's syntax (`30`, `1:00:00`, `2-00:00:00`); when `None`, derived
    /// from the run's `--timeout`, or the partition's limit when there is none.
    pub time_limit: Option<String>,
    /// `sbatch --cpus-per-task`; also the trainer's share of cores.
    pub cpus_per_task: Option<u32>,
    /// `sbatch --mem` in Slurm's syntax (`2G`, `500M`).
    pub mem: Option<String>,
    /// How often `scontrol` is asked about running jobs.
    pub poll_interval: Duration,
    /// How many inputs one array element runs (`--inputs-per-task`).
    pub inputs_per_task: InputsPerTask,
}

/// The Slurm settings as given (flags, or the `[slurm]` table of the TOML file), unchecked.
///
/// ```toml
/// [slurm]
/// staging_dir = "/shared/orchestrator"
/// partition = "compute"
/// time_limit = "1:00:00"
/// cpus_per_task = 1
/// mem = "2G"
/// poll_interval = "1s"
/// inputs_per_task = "auto"   # or a number from 1 to 1000
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmOptions {
    /// Staging directory on the shared filesystem [default: `OUT/slurm-staging`].
    pub staging_dir: Option<PathBuf>,
    /// Partition [default: the cluster's default].
    pub partition: Option<String>,
    /// Slurm time limit per task.
    pub time_limit: Option<String>,
    /// CPUs per task.
    pub cpus_per_task: Option<u32>,
    /// Memory per task.
    pub mem: Option<String>,
    /// How often to ask Slurm about running jobs, e.g. `500ms`, `2s` [default: 1s].
    pub poll_interval: Option<String>,
    /// Inputs per array element, `auto` or 1 to 1000 [default: auto].
    #[serde(default, deserialize_with = "number_or_text")]
    pub inputs_per_task: Option<String>,
}

/// `inputs_per_task = 10` and `inputs_per_task = "10"` both mean 10 in the TOML file.
fn number_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(i64),
        Text(String),
    }
    let v: Option<Value> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(|v| match v {
        Value::Number(n) => n.to_string(),
        Value::Text(t) => t,
    }))
}

impl SlurmConfig {
    /// Merges flags over the TOML table, fills defaults and checks the result.
    pub fn from_options(
        flags: SlurmOptions,
        file: Option<&toml::Table>,
        out_dir: &Path,
    ) -> Result<Self> {
        let file: SlurmOptions = match file {
            Some(table) => table
                .clone()
                .try_into()
                .map_err(|e| Error::Config(format!("[slurm] in the configuration file: {e}")))?,
            None => SlurmOptions::default(),
        };
        let poll_interval = match flags.poll_interval.or(file.poll_interval) {
            Some(text) => crate::config::parse_duration(&text)
                .map_err(|e| Error::Config(format!("slurm poll interval: {e}")))?,
            None => Duration::from_secs(1),
        };
        let inputs_per_task = match flags.inputs_per_task.or(file.inputs_per_task) {
            // The flag was checked by clap already; only the file's text can be wrong here.
            Some(text) => text.parse().map_err(|e| {
                Error::Config(format!(
                    "inputs_per_task in [slurm] of the configuration file: {e}"
                ))
            })?,
            None => InputsPerTask::Auto,
        };
        Ok(Self {
            staging_dir: flags
                .staging_dir
                .or(file.staging_dir)
                .unwrap_or_else(|| out_dir.join("slurm-staging")),
            partition: flags.partition.or(file.partition),
            time_limit: flags.time_limit.or(file.time_limit),
            cpus_per_task: flags.cpus_per_task.or(file.cpus_per_task),
            mem: flags.mem.or(file.mem),
            poll_interval,
            inputs_per_task,
        })
    }
}

/// Slurm's `--time` forms: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`, `UNLIMITED`.
pub(super) fn is_slurm_time(t: &str) -> bool {
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("infinite") {
        return true;
    }
    let (days, rest) = match t.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, t),
    };
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if days.is_some_and(|d| !num(d)) {
        return false;
    }
    let parts: Vec<&str> = rest.split(':').collect();
    parts.len() <= 3 && parts.iter().all(|p| num(p))
}

/// Slurm's `--mem` forms: a number with an optional K, M, G or T suffix.
pub(super) fn is_slurm_mem(m: &str) -> bool {
    let digits = m.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    m.len() - digits.len() <= 1 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}
