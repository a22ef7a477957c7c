//! The one trait every execution engine implements, and the one list of engines.
//!
//! The core (`crate::pipeline`) owns discovery, task ids, the manifest, progress and the report.
//! A backend owns only its engine: where staged bytes live, how a task is started, watched,
//! retried, cancelled and cleaned up. Only a backend's own module knows its engine exists.
//!
//! The backends are listed once, in `backends!` below, which generates [`BackendKind`] and
//! [`BackendArgs`]; each backend's folder implements [`Backend`] and [`FromSettings`] (its
//! flags, its configuration table, its construction). [`Backend::staged_locations`],
//! [`Backend::task_command`], [`Backend::worker_cores`] and [`Backend::cleanup_all`] are
//! provided methods with defaults that a backend may override.

use std::fmt;
use std::future::Future;
use std::path::Path;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::task::{RunContext, StagePlan, Staged, TaskEvent, TaskSpec};

pub mod azure_batch;
pub mod kit;
pub mod local;
pub mod slurm;

pub use local::Local;

/// The one list of backends. Each line names a backend's `BackendKind` variant, its name (on
/// the command line, in reports and run ids), the [`BackendArgs`] field that holds its flags
/// (also the name of its table in the configuration file) and its type, which implements
/// [`Backend`] and [`FromSettings`] in its own folder. Adding a backend is its folder plus one
/// line here.
macro_rules! backends {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $field:ident: $ty:ty;)+) => {
        /// The engines this crate knows, chosen once at the edge (`cli.rs`).
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
        )]
        pub enum BackendKind {
            $($(#[doc = $doc])* #[serde(rename = $name)] #[value(name = $name)] $variant,)+
        }

        impl BackendKind {
            /// The name used on the command line, in reports and in run ids.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The name of this backend's table in the configuration file (`[slurm]`).
            pub fn table(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($field),)+
                }
            }

            /// Every backend's table name.
            pub const TABLES: &[&str] = &[$(stringify!($field)),+];

            /// Builds this backend from its flags in `args` and its table in `file`, and hands
            /// it to `then`.
            pub async fn build_then<T: WithBackend>(
                self,
                args: &BackendArgs,
                out_dir: &Path,
                file: &crate::config::FileConfig,
                then: T,
            ) -> Result<T::Output> {
                let ctx = BuildContext {
                    out_dir,
                    table: file.backend_table(self.table()),
                    pack: &args.pack,
                };
                match self {
                    $(Self::$variant => {
                        let backend = <$ty as FromSettings>::build(&args.$field, &ctx).await?;
                        then.with(&backend).await
                    })+
                }
            }
        }

        /// Every backend's own flags (each defined in its folder), flattened once into `run`,
        /// `resume` and `cleanup`.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct BackendArgs {
            $(
                #[allow(missing_docs)]
                #[command(flatten)]
                pub $field: <$ty as FromSettings>::Args,
            )+
            /// `--inputs-per-task`, shared by the backends that pack inputs (Slurm, Azure Batch).
            #[command(flatten)]
            pub pack: kit::pack::PackArgs,
        }
    };
}

backends! {
    /// Child processes on this machine (the default: no cloud, no account, no configuration).
    Local = "local", local: Local;
    /// An Azure Batch pool.
    AzureBatch = "azure-batch", azure_batch: azure_batch::AzureBatch;
    /// A Slurm cluster.
    Slurm = "slurm", slurm: slurm::Slurm;
}

/// What a backend is built from for one command (see [`FromSettings`]).
#[derive(Debug)]
pub struct BuildContext<'a> {
    /// The output directory (`--out`).
    pub out_dir: &'a Path,
    /// The backend's own table of the configuration file, if there is one.
    pub table: Option<&'a toml::Table>,
    /// `--inputs-per-task`, for the backends that pack inputs.
    pub pack: &'a kit::pack::PackArgs,
}

/// How the command line builds a backend: its own flags (defined in its folder, flattened
/// into [`BackendArgs`]) merged over its configuration table, checked.
pub trait FromSettings: Backend + Sized {
    /// The backend's flags.
    type Args: clap::Args + Clone + Default + fmt::Debug;

    /// The backend for one command.
    fn build(args: &Self::Args, ctx: &BuildContext<'_>) -> impl Future<Output = Result<Self>>;
}

/// What to do with the backend [`BackendKind::build_then`] built (the command).
pub trait WithBackend {
    /// What the command returns.
    type Output;

    /// Runs the command on `backend`.
    fn with<B: Backend>(self, backend: &B) -> impl Future<Output = Result<Self::Output>>;
}

/// The flags of a backend that has none.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NoArgs {}

/// The local backend needs nothing but the output directory.
impl FromSettings for Local {
    type Args = NoArgs;

    async fn build(_: &NoArgs, ctx: &BuildContext<'_>) -> Result<Self> {
        if ctx.table.is_some_and(|t| !t.is_empty()) {
            return Err(crate::Error::Config(
                "`[local]` in the configuration file: the local backend has no settings".into(),
            ));
        }
        Ok(Local::new(ctx.out_dir))
    }
}

impl BackendKind {
    /// Parses a name as `--backend` does (the configuration file's `backend = "..."`).
    pub fn parse(name: &str) -> std::result::Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(name, false).map_err(|_| {
            let names: Vec<&str> = <Self as clap::ValueEnum>::value_variants()
                .iter()
                .map(|k| k.as_str())
                .collect();
            format!(
                "unknown backend `{name}` (expected one of: {})",
                names.join(", ")
            )
        })
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place that can run trainer tasks: this machine, an Azure Batch pool, a Slurm cluster.
///
/// The life of a run is `stage` → `execute` (→ `execute` again on resume) → `cleanup`.
/// Every method must be idempotent: a crashed orchestrator calls them again for the same run.
pub trait Backend: Send + Sync {
    /// Short engine name used in reports and logs (`local`, `azure-batch`, `slurm`).
    fn name(&self) -> &'static str;

    /// Make the trainer binary and every input reachable by the engine's workers.
    ///
    /// Content-addressed: an object whose digest is already staged is neither copied nor
    /// uploaded again. Returns where each object landed, for the task command lines.
    fn stage(
        &self,
        run: &RunContext,
        plan: &StagePlan,
    ) -> impl Future<Output = Result<Staged>> + Send;

    /// Run `tasks` to a final state, sending a [`TaskEvent`] for every state change.
    ///
    /// The backend owns retries (up to `run.retries` extra attempts), the per-task timeout and
    /// bringing each task's output, stdout and stderr into `run.task_dir(task_id)`. It returns
    /// when every task has finished, or soon after `shutdown` fires, having cancelled the
    /// engine's work for this run (killed children, `scancel`, terminated job).
    fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Delete what this run created on the engine (jobs, pools, staged blobs, scratch dirs).
    /// Results already collected under the run directory are never touched.
    fn cleanup(&self, run: &RunContext) -> impl Future<Output = Result<()>> + Send;

    /// `orchestrator cleanup --all`: deletes everything this tool created on the engine,
    /// found without any run directory, and says what was deleted. `None` (the default): the
    /// backend has nothing beyond what `cleanup RUN_ID` removes.
    fn cleanup_all(&self) -> impl Future<Output = Result<Option<String>>> + Send {
        async { Ok(None) }
    }

    /// Where [`Backend::stage`] would put each object, computed without side effects.
    ///
    /// Used by `--dry-run` to print each task's command. The default names objects
    /// `staged:<digest>`; a backend whose locations are predictable should override it.
    fn staged_locations(&self, run: &RunContext, plan: &StagePlan) -> Staged {
        let _ = run;
        Staged {
            trainer: format!("staged:{}", plan.trainer.digest),
            inputs: plan
                .inputs
                .iter()
                .map(|o| (o.digest.clone(), format!("staged:{}", o.digest)))
                .collect(),
        }
    }

    /// The command line one task runs, for `--dry-run` and logs.
    ///
    /// The default is the trainer contract `TRAINER INPUT OUTPUT FLAGS...` with the output at
    /// `run.task_dir(task_id)/output.txt`; remote backends override it with what their workers
    /// actually run.
    fn task_command(&self, run: &RunContext, staged: &Staged, task: &TaskSpec) -> Vec<String> {
        let input = staged
            .inputs
            .get(&task.input_digest)
            .cloned()
            .unwrap_or_else(|| format!("staged:{}", task.input_digest));
        let output = run.task_dir(&task.task_id).join(OUTPUT_FILE);
        let mut argv = vec![staged.trainer.clone(), input, path_arg(&output)];
        argv.extend(task.trainer_args.iter().cloned());
        argv
    }

    /// What `run --dry-run` prints about this engine before the generic plan (Azure Batch:
    /// the exact request bodies); nothing by default.
    fn describe_dry_run(&self, planned: &crate::pipeline::Planned) -> Option<String> {
        let _ = planned;
        None
    }

    /// How many tasks this backend runs at once when the core allows `concurrency`: a
    /// description for the plan and the log. Backends whose capacity is decided elsewhere (a
    /// Batch pool) say so instead of repeating a limit they do not apply.
    fn describe_concurrency(&self, concurrency: usize) -> String {
        format!("{concurrency} task(s) at once")
    }

    /// CPU cores one worker offers to a task; sizes the trainer's `--threads` and the default
    /// concurrency (tasks x threads <= cores). The default is this machine's core count.
    fn worker_cores(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Name of the trainer's output file inside a task directory.
pub const OUTPUT_FILE: &str = "output.txt";
/// Name of the captured standard output inside a task directory.
pub const STDOUT_FILE: &str = "stdout.txt";
/// Name of the captured standard error inside a task directory.
pub const STDERR_FILE: &str = "stderr.txt";

/// A path as a command-line string (lossy only for non-UTF-8 paths, which inputs never are).
fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
