//! The Azure Batch backend's own command-line flags and how it is built from them and its
//! `[azure_batch]` TOML table: everything `cli.rs` needs to offer this backend, kept here so
//! that adding or changing a backend touches its own folder.

use clap::Args;

use super::{AzureBatch, AzureBatchConfig, AzureBatchOptions};
use crate::backend::kit::pack::PackArgs;
use crate::{Error, Result};

/// Azure Batch backend flags, flattened into `run`, `resume` and `cleanup`; `[azure_batch]` in
/// the TOML file supplies what they leave out. Account and credentials come only from the
/// environment (`AZURE_BATCH_*`, `AZURE_STORAGE_*`; see docs/azure.md).
#[derive(Debug, Clone, Default, Args)]
pub struct AzureBatchArgs {
    /// Azure Batch: a named pool to reuse or create, instead of an auto-pool [default: an
    /// auto-pool; with --keep-pool the named pool orch-<run-id>].
    #[arg(long, env = "ORCHESTRATOR_AZURE_POOL_ID", value_name = "ID")]
    pub pool_id: Option<String>,
    /// Azure Batch: let Batch create a pool that lives and dies with the job [default, unless
    /// --pool-id or --keep-pool].
    #[arg(long, env = "ORCHESTRATOR_AZURE_AUTO_POOL")]
    pub auto_pool: bool,
    /// Azure Batch: VM size (x86_64 only) [default: Standard_D2s_v3].
    #[arg(long, env = "ORCHESTRATOR_AZURE_VM_SIZE", value_name = "SIZE")]
    pub vm_size: Option<String>,
    /// Azure Batch: dedicated nodes [default: 1, or 0 with --spot-nodes].
    #[arg(long, env = "ORCHESTRATOR_AZURE_NODES", value_name = "N")]
    pub nodes: Option<u32>,
    /// Azure Batch: spot (low-priority) nodes [default: 0].
    #[arg(long, env = "ORCHESTRATOR_AZURE_SPOT_NODES", value_name = "N")]
    pub spot_nodes: Option<u32>,
    /// Azure Batch: autoscale formula, instead of fixed node counts.
    #[arg(
        long,
        env = "ORCHESTRATOR_AZURE_AUTOSCALE_FORMULA",
        value_name = "FORMULA"
    )]
    pub autoscale_formula: Option<String>,
    /// Azure Batch: tasks per node [default: 2].
    #[arg(long, env = "ORCHESTRATOR_AZURE_TASK_SLOTS", value_name = "N")]
    pub task_slots: Option<u32>,
    /// Azure Batch: Ubuntu 24.04 image SKU [default: server, or server-gen1 for Gen1-only sizes].
    #[arg(long, env = "ORCHESTRATOR_AZURE_IMAGE_SKU", value_name = "SKU")]
    pub image_sku: Option<String>,
    /// Azure Batch: use the named pool orch-<run-id> (or --pool-id) and keep it when the run
    /// ends or is cancelled (and on `cleanup`).
    #[arg(long, env = "ORCHESTRATOR_AZURE_KEEP_POOL")]
    pub keep_pool: bool,
    /// Azure Batch: data-plane api-version [default: 2025-06-01].
    #[arg(long, env = "AZURE_BATCH_API_VERSION", value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Azure Batch: job wall-clock cap, e.g. 12h [default: 24h].
    #[arg(long, env = "ORCHESTRATOR_AZURE_JOB_TIMEOUT", value_name = "DURATION")]
    pub job_timeout: Option<String>,
    /// Azure Batch: how often to poll task counts [default: 5s].
    #[arg(
        long,
        env = "ORCHESTRATOR_AZURE_POLL_INTERVAL",
        value_name = "DURATION"
    )]
    pub batch_poll_interval: Option<String>,
    /// Azure Batch: parallel add-task-collection requests [default: 4].
    #[arg(long, env = "ORCHESTRATOR_AZURE_SUBMITTERS", value_name = "N")]
    pub submitters: Option<usize>,
    /// Azure Batch: how long a finished task's directory stays on its node, e.g. 1h
    /// [default: 10m].
    #[arg(
        long,
        env = "ORCHESTRATOR_AZURE_TASK_RETENTION",
        value_name = "DURATION"
    )]
    pub task_retention: Option<String>,
}

impl AzureBatchArgs {
    /// The flags as options, to be merged over the `[azure_batch]` table.
    pub fn options(&self) -> AzureBatchOptions {
        AzureBatchOptions {
            pool_id: self.pool_id.clone(),
            auto_pool: self.auto_pool.then_some(true),
            vm_size: self.vm_size.clone(),
            nodes: self.nodes,
            spot_nodes: self.spot_nodes,
            autoscale_formula: self.autoscale_formula.clone(),
            task_slots: self.task_slots,
            image_sku: self.image_sku.clone(),
            keep_pool: self.keep_pool.then_some(true),
            api_version: self.api_version.clone(),
            job_timeout: self.job_timeout.clone(),
            poll_interval: self.batch_poll_interval.clone(),
            submitters: self.submitters,
            task_retention: self.task_retention.clone(),
            inputs_per_task: None,
        }
    }
}

impl AzureBatch {
    /// The backend for a command: flags over the `[azure_batch]` table, credentials from the
    /// environment.
    pub async fn from_settings(
        args: &AzureBatchArgs,
        pack: &PackArgs,
        file: Option<&toml::Table>,
    ) -> Result<Self> {
        let mut options = args.options();
        options.inputs_per_task = pack.inputs_per_task.map(|p| p.to_string());
        let config = AzureBatchConfig::from_options(options, file).map_err(Error::Config)?;
        Self::new(config).await
    }
}

impl crate::backend::FromSettings for AzureBatch {
    type Args = AzureBatchArgs;

    async fn build(args: &AzureBatchArgs, ctx: &crate::backend::BuildContext<'_>) -> Result<Self> {
        Self::from_settings(args, ctx.pack, ctx.table).await
    }
}
