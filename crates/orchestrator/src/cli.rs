//! The command line: clap definitions (raw flags and `ORCHESTRATOR_*` environment variables)
//! and their merge with the TOML file into checked configs. Which backends exist is listed
//! once, in `backend::backends!`; besides this file, only a backend's own `args.rs` (its
//! flags) and that list know clap.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::EXIT_OK;
use crate::backend::{Backend, BackendArgs, BackendKind, WithBackend};
use crate::config::{self, FileConfig, ResumeOverrides, RunConfig};
use crate::pipeline;
use crate::sweep::GridOptions;
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
    #[arg(long, env = "ORCHESTRATOR_BACKEND", value_enum)]
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
    /// Every backend's own settings.
    #[command(flatten)]
    pub backends: BackendArgs,
    /// Sweep settings.
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Trainer flags, after `--` (e.g. `-- --n-estimators 20`).
    #[arg(last = true, value_name = "TRAINER_FLAGS")]
    pub trainer_args: Vec<String>,
}

/// Sweep flags of `orchestrator run`: every input runs under every setting of a grid.
#[derive(Debug, Clone, Default, Args)]
pub struct SweepArgs {
    /// Sweep a trainer flag (named without dashes) over comma-separated values; repeat for a
    /// cartesian product. `none` leaves the flag out; a flag without a value takes `on,off`.
    #[arg(long, value_name = "FLAG=V1,V2,...")]
    pub grid: Vec<String>,
    /// Sweep the settings listed in a file instead: CSV (a header of flag names, one setting
    /// per row, an empty cell = none) or .toml ([[setting]] tables of flag = value).
    #[arg(long, value_name = "FILE")]
    pub grid_file: Option<PathBuf>,
    /// Run K settings drawn from the grid without replacement (random search).
    #[arg(long, value_name = "K")]
    pub sample: Option<u64>,
    /// Seed of --sample's draw; a larger K with the same seed draws a superset [default: 0].
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

impl SweepArgs {
    fn options(&self) -> GridOptions {
        GridOptions {
            axes: self.grid.clone(),
            file: self.grid_file.clone(),
            sample: self.sample,
            seed: self.seed,
        }
    }
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
    /// Every backend's own settings.
    #[command(flatten)]
    pub backends: BackendArgs,
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
    /// Every backend's own settings.
    #[command(flatten)]
    pub backends: BackendArgs,
}

fn parse_timeout(text: Option<&str>) -> Result<Option<std::time::Duration>> {
    text.map(|t| config::parse_duration(t).map_err(|e| Error::Config(format!("timeout: {e}"))))
        .transpose()
}

/// What a command does, with everything it needs besides its backend. (Not "job": that word
/// is Azure Batch's job only; the shared task types live in `crate::task`.)
#[derive(Debug)]
enum Action {
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

/// A command with what it needs besides its backend, run by [`Context::with_backend`].
struct Invocation {
    action: Action,
    out_dir: PathBuf,
    shutdown: CancellationToken,
}

impl WithBackend for Invocation {
    type Output = u8;

    async fn with<B: Backend>(self, backend: &B) -> Result<u8> {
        let Self {
            action,
            out_dir,
            shutdown,
        } = self;
        match action {
            Action::Run(config) => Ok(pipeline::run(backend, &config, shutdown).await?.exit_code),
            Action::Resume { run_id, overrides } => Ok(pipeline::resume(
                backend, &out_dir, &run_id, &overrides, shutdown,
            )
            .await?
            .exit_code),
            Action::Cleanup { run_id } => {
                pipeline::cleanup(backend, &out_dir, &run_id).await?;
                println!("Cleaned up run {run_id} on the {} backend", backend.name());
                Ok(EXIT_OK)
            }
            Action::CleanupAll => match backend.cleanup_all().await? {
                Some(done) => {
                    println!("cleanup --all: {done}");
                    Ok(EXIT_OK)
                }
                None => Err(Error::Config(format!(
                    "`cleanup --all` applies to the azure-batch backend, not {}",
                    backend.name()
                ))),
            },
        }
    }
}

/// What every command shares: the output directory, the configuration file, Ctrl-C.
struct Context {
    out_dir: PathBuf,
    file: FileConfig,
    shutdown: CancellationToken,
}

impl Context {
    /// Builds the backend of `kind` from its flags and its table, and runs `action` on it.
    async fn with_backend(
        self,
        kind: BackendKind,
        args: &BackendArgs,
        action: Action,
    ) -> Result<u8> {
        let invocation = Invocation {
            action,
            out_dir: self.out_dir.clone(),
            shutdown: self.shutdown,
        };
        kind.build_then(args, &self.out_dir, &self.file, invocation)
            .await
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
    let ctx = Context {
        out_dir,
        file,
        shutdown,
    };
    match cli.command {
        Command::Run(args) => {
            let (config, backends) = run_config(args, &ctx)?;
            ctx.with_backend(config.backend, &backends, Action::Run(config))
                .await
        }
        Command::Resume(args) => {
            let kind = pipeline::run_backend(&ctx.out_dir, &args.run_id)?;
            let overrides = ResumeOverrides {
                concurrency: args.concurrency.map(|c| c as usize),
                retries: args.retries,
                timeout: parse_timeout(args.timeout.as_deref())?,
            };
            let action = Action::Resume {
                run_id: args.run_id,
                overrides,
            };
            ctx.with_backend(kind, &args.backends, action).await
        }
        Command::Status(args) => {
            print!("{}", pipeline::status(&ctx.out_dir, &args.run_id)?);
            Ok(EXIT_OK)
        }
        Command::Cleanup(args) => {
            let (kind, action) = match args.run_id {
                Some(run_id) => (
                    pipeline::run_backend(&ctx.out_dir, &run_id)?,
                    Action::Cleanup { run_id },
                ),
                // Only Azure Batch finds what it created without a run directory.
                None => (BackendKind::AzureBatch, Action::CleanupAll),
            };
            ctx.with_backend(kind, &args.backends, action).await
        }
    }
}

/// `orchestrator run`'s flags over the configuration file, checked; and the backends' flags.
fn run_config(args: RunArgs, ctx: &Context) -> Result<(RunConfig, BackendArgs)> {
    let file = &ctx.file;
    let backend = match (args.backend, &file.backend) {
        (Some(b), _) => b,
        (None, Some(name)) => BackendKind::parse(name)
            .map_err(|e| Error::Config(format!("backend in configuration file: {e}")))?,
        (None, None) => BackendKind::Local,
    };
    let config = RunConfig {
        input_dir: args.input_dir,
        out_dir: ctx.out_dir.clone(),
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
        timeout: parse_timeout(args.timeout.as_deref().or(file.timeout.as_deref()))?,
        dry_run: args.dry_run,
        run_id: args.run_id,
        grid: args.sweep.options().grid()?,
        trainer_args: if args.trainer_args.is_empty() {
            file.trainer_args.clone().unwrap_or_default()
        } else {
            args.trainer_args
        },
    };
    Ok((config, args.backends))
}

/// The whole program behind `main`: logging, signals, [`run`], the error with its causes.
pub async fn main(cli: Cli) -> ExitCode {
    init_logging();
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    match run(cli, shutdown).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let message = format!("error: {}", e.report());
            // One line, whatever a file name or a service's message holds.
            eprintln!("{}", crate::text::one_line(&message));
            ExitCode::from(e.exit_code())
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
