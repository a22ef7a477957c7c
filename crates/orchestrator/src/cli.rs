//! The command line: clap definitions (raw flags and `ORCHESTRATOR_*` environment variables),
//! their merge with the TOML file into checked configs, and the one place that turns a
//! [`BackendKind`] into a concrete backend. Nothing outside this file imports clap.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::backend::azure_batch::{AzureBatch, AzureBatchConfig, AzureBatchOptions};
use crate::backend::slurm::{Slurm, SlurmConfig, SlurmOptions};
use crate::backend::{Backend, BackendKind, Local};
use crate::config::{self, FileConfig, ResumeOverrides, RunConfig};
use crate::pipeline;
use crate::{EXIT_ERROR, EXIT_OK};
use crate::{Error, Result};

/// Fan one trainer task per input CSV out to a backend and collect a run report.
#[derive(Debug, Parser)]
#[command(
    name = "orchestrator",
    version,
    about,
    after_help = "Logging: ORCHESTRATOR_LOG sets the log filter on stderr (default `info`; \
                  e.g. `debug`, or `orchestrator=debug,reqwest=warn`). Flags marked [env: NAME] \
                  can also be set through that variable."
)]
pub struct Cli {
    /// TOML configuration file [default: ./orchestrator.toml if it exists].
    #[arg(long, global = true, env = "ORCHESTRATOR_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output directory: runs go to OUT/RUN_ID/, staged objects to OUT/objects/ [default: runs].
    #[arg(long, global = true, env = "ORCHESTRATOR_OUT", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the trainer on every *.csv in INPUT_DIR. Running the same command again resumes
    /// the same run (the run id is derived from the inputs, flags, trainer and backend).
    Run(RunArgs),
    /// Finish a run: only tasks that are not done run again.
    Resume(ResumeArgs),
    /// Show where a run stands.
    Status(StatusArgs),
    /// Delete what a run created on its backend (results in OUT/RUN_ID/ are kept).
    Cleanup(CleanupArgs),
}

/// Flags of `orchestrator run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory with the input CSV files (not searched recursively).
    pub input_dir: PathBuf,
    /// Where tasks run: local, azure-batch or slurm [default: local].
    #[arg(long, env = "ORCHESTRATOR_BACKEND", value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// Trainer executable [default: next to this executable, else target/{release,debug}/trainer].
    #[arg(long, env = "ORCHESTRATOR_TRAINER", value_name = "PATH")]
    pub trainer: Option<PathBuf>,
    /// Tasks at once [default: so that tasks x trainer threads <= cores].
    #[arg(long, env = "ORCHESTRATOR_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Extra attempts for a failure that may be transient (exit 2, signal, timeout) [default: 2].
    #[arg(long, env = "ORCHESTRATOR_RETRIES")]
    pub retries: Option<u32>,
    /// Time limit per attempt, e.g. 90s, 10m, 1h [default: none].
    #[arg(long, env = "ORCHESTRATOR_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print the plan (tasks, staged objects, each task's command) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use this run id instead of the derived one.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Slurm backend settings.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Azure Batch backend settings.
    #[command(flatten)]
    pub azure_batch: AzureBatchArgs,
    /// Trainer flags, after `--` (e.g. `-- --n-estimators 20`).
    #[arg(last = true, value_name = "TRAINER_FLAGS")]
    pub trainer_args: Vec<String>,
}

/// Flags of `orchestrator resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to finish (a directory name under OUT).
    pub run_id: String,
    /// Tasks at once [default: as the run was started].
    #[arg(long, env = "ORCHESTRATOR_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Extra attempts for transient failures [default: as the run was started].
    #[arg(long, env = "ORCHESTRATOR_RETRIES")]
    pub retries: Option<u32>,
    /// Time limit per attempt [default: as the run was started].
    #[arg(long, env = "ORCHESTRATOR_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Slurm backend settings.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Azure Batch backend settings.
    #[command(flatten)]
    pub azure_batch: AzureBatchArgs,
}

/// Flags of `orchestrator status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run to show.
    pub run_id: String,
}

/// Flags of `orchestrator cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The run whose engine-side resources to delete.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub run_id: Option<String>,
    /// Azure Batch: delete every job, pool and storage container this tool created in the
    /// accounts of the environment (found by their metadata; no run directory needed).
    #[arg(long)]
    pub all: bool,
    /// Slurm backend settings.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Azure Batch backend settings.
    #[command(flatten)]
    pub azure_batch: AzureBatchArgs,
}

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

/// Azure Batch backend flags, flattened into `run`, `resume` and `cleanup`; `[azure_batch]` in
/// the TOML file supplies what they leave out. Account and credentials come only from the
/// environment (`AZURE_BATCH_*`, `AZURE_STORAGE_*`; see docs/azure.md).
#[derive(Debug, Clone, Default, Args)]
pub struct AzureBatchArgs {
    /// Azure Batch: pool to reuse or create [default: orch-<run-id>, deleted after the run].
    #[arg(long, env = "ORCHESTRATOR_AZURE_POOL_ID", value_name = "ID")]
    pub pool_id: Option<String>,
    /// Azure Batch: let Batch create a pool that lives and dies with the job.
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
    /// Azure Batch: keep the pool when the run ends or is cancelled (and on `cleanup`).
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
}

impl AzureBatchArgs {
    fn options(&self) -> AzureBatchOptions {
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
        }
    }
}

fn parse_backend(s: &str) -> std::result::Result<BackendKind, String> {
    s.parse()
}

fn parse_timeout(text: Option<&str>) -> Result<Option<std::time::Duration>> {
    text.map(|t| config::parse_duration(t).map_err(|e| Error::Config(format!("timeout: {e}"))))
        .transpose()
}

/// Everything a command needs besides its backend.
#[derive(Debug)]
enum Job {
    Run(RunConfig),
    Resume {
        run_id: String,
        overrides: ResumeOverrides,
    },
    Cleanup {
        run_id: String,
    },
    /// `cleanup --all` (Azure Batch only).
    CleanupAll,
}

/// The backend-specific context passed to [`with_backend`].
#[derive(Debug)]
struct BackendSettings<'a> {
    out_dir: &'a Path,
    file: &'a FileConfig,
    slurm: &'a SlurmArgs,
    azure_batch: &'a AzureBatchArgs,
}

impl Job {
    async fn run_on<B: Backend>(
        self,
        backend: &B,
        out_dir: &Path,
        shutdown: CancellationToken,
    ) -> Result<u8> {
        match self {
            Job::Run(config) => Ok(pipeline::run(backend, &config, shutdown).await?.exit_code),
            Job::Resume { run_id, overrides } => Ok(pipeline::resume(
                backend, out_dir, &run_id, &overrides, shutdown,
            )
            .await?
            .exit_code),
            Job::Cleanup { run_id } => {
                pipeline::cleanup(backend, out_dir, &run_id).await?;
                println!("Cleaned up run {run_id} on the {} backend", backend.name());
                Ok(EXIT_OK)
            }
            Job::CleanupAll => Err(Error::Config(format!(
                "`cleanup --all` applies to the azure-batch backend, not {}",
                backend.name()
            ))),
        }
    }
}

// ============================================================================================
// Backend selection: the one place that knows every engine. Each backend's author replaces
// its arm with the construction of the backend (from its flattened args and its TOML table).
// ============================================================================================
async fn with_backend(
    kind: BackendKind,
    settings: BackendSettings<'_>,
    job: Job,
    shutdown: CancellationToken,
) -> Result<u8> {
    let BackendSettings {
        out_dir,
        file,
        slurm,
        azure_batch,
    } = settings;
    match kind {
        BackendKind::Local => {
            let backend = Local::new(out_dir);
            job.run_on(&backend, out_dir, shutdown).await
        }
        BackendKind::Slurm => {
            let flags = SlurmOptions {
                staging_dir: slurm.staging_dir.clone(),
                partition: slurm.partition.clone(),
                time_limit: slurm.time_limit.clone(),
                cpus_per_task: slurm.cpus_per_task,
                mem: slurm.mem.clone(),
                poll_interval: slurm.slurm_poll_interval.clone(),
            };
            let config = SlurmConfig::from_options(flags, file.slurm.as_ref(), out_dir)?;
            let backend = Slurm::new(config)?;
            job.run_on(&backend, out_dir, shutdown).await
        }
        BackendKind::AzureBatch => {
            let config =
                AzureBatchConfig::from_options(azure_batch.options(), file.azure_batch.as_ref())
                    .map_err(Error::Config)?;
            let backend = AzureBatch::new(config).await?;
            if let Job::CleanupAll = job {
                println!("cleanup --all: {}", backend.cleanup_all().await?);
                return Ok(EXIT_OK);
            }
            if let Job::Run(run) = &job
                && run.dry_run
            {
                // The exact Batch request bodies, before the generic plan; nothing is sent.
                let planned = pipeline::plan(run, backend.worker_cores()).await?;
                print!("{}", backend.describe_planned(&planned));
            }
            job.run_on(&backend, out_dir, shutdown).await
        }
    }
}

/// Runs a parsed command line to completion and returns the process exit code.
///
/// `shutdown` is cancelled by the caller on Ctrl-C / SIGTERM; running tasks are then killed
/// and recorded cancelled, and the exit code is 130.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> Result<u8> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let out_dir = cli
        .out
        .or_else(|| file.out.clone())
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_OUT));
    match cli.command {
        Command::Run(args) => {
            let backend = match (args.backend, &file.backend) {
                (Some(b), _) => b,
                (None, Some(name)) => name
                    .parse()
                    .map_err(|e| Error::Config(format!("backend in configuration file: {e}")))?,
                (None, None) => BackendKind::Local,
            };
            let timeout = parse_timeout(args.timeout.as_deref().or(file.timeout.as_deref()))?;
            let config = RunConfig {
                input_dir: args.input_dir,
                out_dir: out_dir.clone(),
                backend,
                trainer: args.trainer.or_else(|| file.trainer.clone()),
                concurrency: args
                    .concurrency
                    .map(|c| c as usize)
                    .or(file.concurrency)
                    .filter(|&c| c > 0),
                retries: args
                    .retries
                    .or(file.retries)
                    .unwrap_or(config::DEFAULT_RETRIES),
                timeout,
                dry_run: args.dry_run,
                run_id: args.run_id,
                trainer_args: if args.trainer_args.is_empty() {
                    file.trainer_args.clone().unwrap_or_default()
                } else {
                    args.trainer_args
                },
            };
            let settings = BackendSettings {
                out_dir: &out_dir,
                file: &file,
                slurm: &args.slurm,
                azure_batch: &args.azure_batch,
            };
            with_backend(backend, settings, Job::Run(config), shutdown).await
        }
        Command::Resume(args) => {
            let kind = pipeline::run_backend(&out_dir, &args.run_id)?;
            let overrides = ResumeOverrides {
                concurrency: args.concurrency.map(|c| c as usize),
                retries: args.retries,
                timeout: parse_timeout(args.timeout.as_deref())?,
            };
            let settings = BackendSettings {
                out_dir: &out_dir,
                file: &file,
                slurm: &args.slurm,
                azure_batch: &args.azure_batch,
            };
            let job = Job::Resume {
                run_id: args.run_id,
                overrides,
            };
            with_backend(kind, settings, job, shutdown).await
        }
        Command::Status(args) => {
            print!("{}", pipeline::status(&out_dir, &args.run_id)?);
            Ok(EXIT_OK)
        }
        Command::Cleanup(args) => {
            let (kind, job) = match args.run_id {
                Some(run_id) => (
                    pipeline::run_backend(&out_dir, &run_id)?,
                    Job::Cleanup { run_id },
                ),
                None => (BackendKind::AzureBatch, Job::CleanupAll),
            };
            let settings = BackendSettings {
                out_dir: &out_dir,
                file: &file,
                slurm: &args.slurm,
                azure_batch: &args.azure_batch,
            };
            with_backend(kind, settings, job, shutdown).await
        }
    }
}

/// The whole program behind `main`: logging, signals, [`run`], the error with its causes.
pub async fn main(cli: Cli) -> ExitCode {
    init_logging();
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    match run(cli, shutdown).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut message = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            // One line, whatever a file name or a service's message holds.
            eprintln!("{}", crate::text::one_line(&message));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHESTRATOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// Ctrl-C (and SIGTERM on Unix) cancel `shutdown`; a second Ctrl-C exits at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let terminate = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::warn!("stopping: killing running tasks (press Ctrl-C again to exit at once)");
        shutdown.cancel();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
    });
}
