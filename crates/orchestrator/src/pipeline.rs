//! The core pipeline, generic over any [`Backend`]: plan a run (inputs, task ids, run id),
//! stage, execute while keeping the manifest and the progress bar current, then report.
//! Also `resume`, `status` and `cleanup`, which start from a run's manifest.
//!
//! Identity rules, which make resume correct:
//! - a **task id** hashes the input's content digest, the trainer's digest and the user's
//!   trainer flags (minus `--threads`, which does not change the output), so a task id names
//!   exactly one result and a recorded success can be trusted on resume;
//! - the **run id** (unless `--run-id` is given) hashes the backend, the trainer digest, the
//!   user's flags and every input's name and digest, so running the same `run` command again
//!   finds the same run directory and resumes it, while changing any input, flag or the trainer
//!   starts a new run;
//! - in a **sweep**, a task is (input, setting): the setting's canonical flags join the task
//!   id, but only the swept flags' names join the run id, so a grown grid resumes the same run
//!   and runs only its new tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendKind, OUTPUT_FILE, kit};
use crate::config::{ResumeOverrides, RunConfig};
use crate::input::{self, Input};
use crate::manifest::{self, InputRecord, Journal, Manifest, TaskRecord, TaskState};
use crate::progress::Progress;
use crate::report;
use crate::sweep::Grid;
use crate::task::{RunContext, StageObject, StagePlan, Staged, TaskEvent};
use crate::text::one_line;
use crate::{EXIT_INTERRUPTED, EXIT_OK, EXIT_TASKS_FAILED};
use crate::{Error, Result};

/// Hex digits kept from a SHA-256 for task ids (64 bits: collisions are not a concern for
/// the few thousand tasks of a run).
const TASK_ID_LEN: usize = 16;
/// Hex digits of the hash part of a derived run id.
const RUN_ID_HASH_LEN: usize = 12;

/// How a `run` or `resume` ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run id.
    pub run_id: String,
    /// `OUT/<run-id>`.
    pub run_dir: PathBuf,
    /// The process exit code: 0 all succeeded, 1 some task failed, 130 interrupted.
    pub exit_code: u8,
}

/// Trainer flags without `--threads N` / `--threads=N`, which do not change a task's output.
pub fn identity_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if arg == "--threads" {
            skip_next = true;
        } else if !arg.starts_with("--threads=") {
            out.push(arg.clone());
        }
    }
    out
}

/// The `--threads` value the user gave the trainer, if any.
fn user_threads(args: &[String]) -> Result<Option<usize>> {
    let mut value = None;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--threads" {
            value = args.get(i + 1).cloned();
        } else if let Some(v) = arg.strip_prefix("--threads=") {
            value = Some(v.to_owned());
        }
    }
    value
        .map(|v| {
            v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                Error::Config(format!(
                    "trainer flag --threads `{v}` is not a positive integer"
                ))
            })
        })
        .transpose()
}

/// Length-prefixed hashing, so that `["ab", "c"]` and `["a", "bc"]` differ.
fn hash_fields<'a>(domain: &str, fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    for f in fields {
        h.update((f.len() as u64).to_le_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A task's id: see the module docs.
pub fn task_id(input_digest: &str, trainer_digest: &str, trainer_args: &[String]) -> String {
    let args = identity_args(trainer_args);
    let fields = [input_digest, trainer_digest]
        .into_iter()
        .chain(args.iter().map(String::as_str));
    hash_fields("orchestrator-task-v1", fields)[..TASK_ID_LEN].to_owned()
}

/// A run's default id: `<input dir name>-<hash>`; see the module docs. A sweep's id also
/// hashes the names of its swept flags, but not their values, so a grown grid (or a larger
/// `--sample`) resumes the same run and runs only the new settings.
pub fn derive_run_id(
    input_dir: &Path,
    backend: BackendKind,
    trainer_digest: &str,
    inputs: &[Input],
    trainer_args: &[String],
    grid: Option<&Grid>,
) -> String {
    let args = identity_args(trainer_args);
    let mut fields = vec![backend.as_str(), trainer_digest];
    fields.push("args");
    fields.extend(args.iter().map(String::as_str));
    fields.push("inputs");
    for input in inputs {
        fields.push(&input.name);
        fields.push(&input.object.digest);
    }
    let mut swept: Vec<&str> = grid
        .map(|g| g.flags.iter().map(String::as_str).collect())
        .unwrap_or_default();
    swept.sort_unstable();
    if grid.is_some() {
        fields.push("grid");
        fields.extend(swept);
    }
    let hash = hash_fields("orchestrator-run-v1", fields);
    format!("{}-{}", run_stem(input_dir), &hash[..RUN_ID_HASH_LEN])
}

/// The readable part of a run id: the input directory's name, or for inputs in Blob Storage
/// the container and prefix (`az://acct/data/exp1/` is `data-exp1`), made of `[A-Za-z0-9_-]`.
fn run_stem(input_dir: &Path) -> String {
    let blob = input_dir
        .to_str()
        .and_then(azure_staging::BlobPrefix::parse)
        .and_then(std::result::Result::ok)
        .map(|b| {
            let mut parts = vec![b.container.as_str()];
            parts.extend(b.prefix.split('/').filter(|p| !p.is_empty()));
            parts.join("-")
        });
    blob.or_else(|| {
        input_dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    })
    .unwrap_or_else(|| "run".into())
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    })
    .take(40)
    .collect()
}

/// Concurrency and the `--threads` the orchestrator adds, so that tasks x threads <= cores
/// by default. An explicit `--threads` among the trainer flags or `--concurrency` wins.
fn size_run(
    cores: usize,
    n_tasks: usize,
    concurrency: Option<usize>,
    threads: Option<usize>,
) -> (usize, Option<usize>) {
    let cores = cores.max(1);
    match threads {
        Some(t) => (concurrency.unwrap_or((cores / t).max(1)).max(1), None),
        None => {
            let c = concurrency
                .unwrap_or_else(|| cores.min(n_tasks.max(1)))
                .max(1);
            (c, Some((cores / c).max(1)))
        }
    }
}

/// Refuses an output directory that is the input directory, or contains it: run directories,
/// reports and `objects/` would be written among (or over) the user's files, and `cleanup`
/// would delete there. An output directory inside the input directory is fine (inputs are not
/// searched recursively).
fn check_out_dir(input_dir: &Path, out_dir: &Path) -> Result<()> {
    let (Some(input), Some(out)) = (resolve(input_dir), resolve(out_dir)) else {
        return Ok(()); // Discovery reports an input directory that does not exist.
    };
    if input.starts_with(&out) {
        return Err(Error::Config(format!(
            "--out `{}` {} the input directory `{}`; runs would be written among the inputs: \
             choose an output directory outside it",
            out_dir.display(),
            if input == out { "is" } else { "contains" },
            input_dir.display()
        )));
    }
    Ok(())
}

/// `path` made absolute with symlinks resolved, for the part of it that exists (an output
/// directory is created later).
fn resolve(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Some(rest.iter().rev().fold(real, |p: PathBuf, c| p.join(c)));
        }
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
}

/// A planned run, not yet started.
#[derive(Debug)]
pub struct Planned {
    /// The manifest the run starts from (new, or the existing one of a resumed run).
    pub manifest: Manifest,
    /// `OUT/<run-id>`.
    pub run_dir: PathBuf,
    /// Whether a manifest already existed (the same `run` command ran before).
    pub existing: bool,
}

/// Discovers and hashes inputs, finds the trainer, derives ids and sizes the run. Writes
/// nothing; reads the existing manifest if the run directory already has one.
///
/// Takes no lock, so what it reads may be stale by the time it is used: for `--dry-run` and
/// other descriptions only. [`run`] reads the manifest again under the run lock.
pub async fn plan(config: &RunConfig, worker_cores: usize) -> Result<Planned> {
    let (fresh, run_dir) = plan_fresh(config, worker_cores).await?;
    adopt_existing(fresh, run_dir)
}

/// The checks on a run's flags that need nothing read; returns the `--threads` the user
/// gave the trainer, if any.
fn check_run_flags(config: &RunConfig) -> Result<Option<usize>> {
    if config
        .trainer_args
        .iter()
        .any(|a| a == "--json" || a.starts_with("--json="))
    {
        return Err(Error::Config(
            "trainer flag --json is not supported through the orchestrator: every task would \
             write the same file; the report already has each task's score"
                .into(),
        ));
    }
    let explicit_threads = user_threads(&config.trainer_args)?;
    check_out_dir(&config.input_dir, &config.out_dir)?;
    if let Some(grid) = &config.grid {
        grid.check_fixed(&config.trainer_args)?;
    }
    Ok(explicit_threads)
}

/// Planning's input discovery: the inputs (sorted, named safely, hashed) and the trainer
/// (found, hashed, and asked about a sweep's settings). Blocking work, done off the runtime.
async fn find_inputs_and_trainer(config: &RunConfig) -> Result<(Vec<Input>, StageObject)> {
    let input_dir = config.input_dir.clone();
    let (out_dir, backend, list_only) = (config.out_dir.clone(), config.backend, config.dry_run);
    let trainer_arg = config.trainer.clone();
    let grid = config.grid.clone();
    let fixed = config.trainer_args.clone();
    tokio::task::spawn_blocking(move || -> Result<_> {
        let inputs = input::discover_source(&input_dir, &out_dir, backend, list_only)?;
        let trainer_path = input::find_trainer(trainer_arg.as_deref())?;
        if let Some(grid) = &grid {
            grid.check_with_trainer(&trainer_path, &fixed)?;
        }
        let trainer = input::hash_file(&trainer_path)?;
        Ok((inputs, trainer))
    })
    .await
    .expect("planning does not panic")
}

/// [`plan`] without reading the run directory: the manifest a new run would start from.
async fn plan_fresh(config: &RunConfig, worker_cores: usize) -> Result<(Manifest, PathBuf)> {
    let explicit_threads = check_run_flags(config)?;
    let (inputs, trainer) = find_inputs_and_trainer(config).await?;
    let (tasks, records) = plan_tasks(
        &inputs,
        &trainer.digest,
        &config.trainer_args,
        config.grid.as_ref(),
    );
    let run_id = match &config.run_id {
        Some(id) => {
            input::check_name(id)
                .map_err(|reason| Error::Config(format!("--run-id `{id}`: {reason}")))?;
            id.clone()
        }
        None => derive_run_id(
            &config.input_dir,
            config.backend,
            &trainer.digest,
            &inputs,
            &config.trainer_args,
            config.grid.as_ref(),
        ),
    };
    let run_dir = config.out_dir.join(&run_id);
    let (concurrency, threads) = size_run(
        worker_cores,
        tasks.len(),
        config.concurrency,
        explicit_threads,
    );
    let fresh = Manifest {
        format: manifest::FORMAT,
        run_id,
        backend: config.backend,
        input_dir: config.input_dir.clone(),
        trainer,
        trainer_args: config.trainer_args.clone(),
        threads,
        concurrency,
        retries: config.retries,
        timeout_seconds: config.timeout.map(|t| t.as_secs_f64()),
        inputs: records,
        tasks,
        orchestrator_pid: None,
        sweep: config.grid.clone(),
        retired: vec![],
        journal: 0,
    };
    Ok((fresh, run_dir))
}

/// The run to execute: `fresh`, or the manifest already in `run_dir` when the same command
/// ran before (its task states kept, this command's execution settings taken).
fn adopt_existing(fresh: Manifest, run_dir: PathBuf) -> Result<Planned> {
    if !Manifest::path(&run_dir).exists() {
        return Ok(Planned {
            manifest: fresh,
            run_dir,
            existing: false,
        });
    }
    let existing = Manifest::load(&run_dir)?;
    Ok(Planned {
        manifest: merge_into_existing(existing, fresh, &run_dir)?,
        run_dir,
        existing: true,
    })
}

/// One task per distinct input content and setting (inputs sorted, then grid order), and
/// one record per input. An input's record names its task under the grid's first setting.
fn plan_tasks(
    inputs: &[Input],
    trainer_digest: &str,
    fixed_args: &[String],
    grid: Option<&Grid>,
) -> (Vec<TaskRecord>, Vec<InputRecord>) {
    let settings: Vec<Vec<String>> = match grid {
        Some(g) => (0..g.len()).map(|i| g.args(i)).collect(),
        None => vec![Vec::new()],
    };
    let mut tasks: Vec<TaskRecord> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut records = Vec::new();
    for input in inputs {
        let mut first_id = None;
        for setting_args in &settings {
            let args: Vec<String> = fixed_args.iter().chain(setting_args).cloned().collect();
            let id = task_id(&input.object.digest, trainer_digest, &args);
            first_id.get_or_insert_with(|| id.clone());
            if seen.insert(id.clone()) {
                tasks.push(TaskRecord {
                    task_id: id,
                    input_name: input.name.clone(),
                    input_digest: input.object.digest.clone(),
                    state: TaskState::Pending,
                    attempts: 0,
                    exit_code: None,
                    wall_seconds: None,
                    failure: None,
                    requeues: 0,
                    setting_args: setting_args.clone(),
                });
            }
        }
        records.push(InputRecord {
            name: input.name.clone(),
            path: input.object.path.clone(),
            digest: input.object.digest.clone(),
            size: input.object.size,
            task_id: first_id.expect("a grid has at least one setting"),
        });
    }
    (tasks, records)
}

/// The same `run` command again: keep the existing run's task states and take this
/// command's execution settings. A sweep may also have grown or shrunk its grid: new
/// settings' tasks are added, dropped ones retired (kept for when they come back).
fn merge_into_existing(
    mut existing: Manifest,
    fresh: Manifest,
    run_dir: &Path,
) -> Result<Manifest> {
    let swept = |m: &Manifest| {
        m.sweep.as_ref().map(|g| {
            let mut flags = g.flags.clone();
            flags.sort_unstable();
            flags
        })
    };
    let digests =
        |m: &Manifest| -> BTreeSet<String> { m.inputs.iter().map(|i| i.digest.clone()).collect() };
    let same_tasks = match fresh.sweep {
        None => existing.task_index().keys().eq(fresh.task_index().keys()),
        Some(_) => swept(&existing) == swept(&fresh) && digests(&existing) == digests(&fresh),
    };
    let same = existing.trainer.digest == fresh.trainer.digest
        && existing.backend == fresh.backend
        && identity_args(&existing.trainer_args) == identity_args(&fresh.trainer_args)
        && existing.sweep.is_some() == fresh.sweep.is_some()
        && same_tasks;
    if !same {
        return Err(Error::Manifest {
            path: Manifest::path(run_dir),
            reason: format!(
                "run `{}` already exists with other inputs, flags, swept flags, trainer or \
                 backend; choose another --run-id or remove `{}`",
                fresh.run_id,
                run_dir.display()
            ),
        });
    }
    if fresh.sweep.is_some() {
        let mut known: BTreeMap<String, TaskRecord> = std::mem::take(&mut existing.tasks)
            .into_iter()
            .chain(std::mem::take(&mut existing.retired))
            .map(|t| (t.task_id.clone(), t))
            .collect();
        existing.tasks = fresh
            .tasks
            .into_iter()
            .map(|t| known.remove(&t.task_id).unwrap_or(t))
            .collect();
        existing.retired = known.into_values().collect();
        existing.sweep = fresh.sweep;
    }
    existing.inputs = fresh.inputs;
    existing.trainer.path = fresh.trainer.path;
    existing.trainer_args = fresh.trainer_args;
    existing.threads = fresh.threads;
    existing.concurrency = fresh.concurrency;
    existing.retries = fresh.retries;
    existing.timeout_seconds = fresh.timeout_seconds;
    Ok(existing)
}

fn stage_plan(manifest: &Manifest) -> StagePlan {
    let mut seen = BTreeSet::new();
    StagePlan {
        trainer: manifest.trainer.clone(),
        inputs: manifest
            .inputs
            .iter()
            .filter(|i| seen.insert(i.digest.clone()))
            .map(|i| StageObject {
                path: i.path.clone(),
                digest: i.digest.clone(),
                size: i.size,
            })
            .collect(),
    }
}

fn run_context(manifest: &Manifest, run_dir: &Path) -> RunContext {
    RunContext {
        run_id: manifest.run_id.clone(),
        run_dir: run_dir.to_path_buf(),
        retries: manifest.retries,
        timeout: manifest.timeout_seconds.map(Duration::from_secs_f64),
        concurrency: manifest.concurrency,
    }
}

/// Quotes an argument for display in a POSIX shell.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The `--dry-run` text: the run, its staged objects and each task's command.
pub fn describe_plan<B: Backend>(backend: &B, planned: &Planned) -> String {
    let m = &planned.manifest;
    let run = run_context(m, &planned.run_dir);
    let plan = stage_plan(m);
    let staged = backend.staged_locations(&run, &plan);
    let mut out = describe_run(backend, planned);
    describe_objects(&mut out, &plan, &staged);
    describe_tasks(&mut out, backend, m, &run, &staged);
    out
}

/// The run's settings, for [`describe_plan`].
fn describe_run<B: Backend>(backend: &B, planned: &Planned) -> String {
    let m = &planned.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for run {} (dry run: nothing is staged or run)",
        m.run_id
    );
    let _ = writeln!(out, "  backend:     {}", backend.name());
    let done = m.tasks.iter().filter(|t| t.is_done()).count();
    let _ = writeln!(
        out,
        "  run dir:     {}{}",
        planned.run_dir.display(),
        if planned.existing {
            format!(
                " (exists: {done} of {} tasks done; `run` would resume it)",
                m.tasks.len()
            )
        } else {
            " (new)".into()
        }
    );
    let _ = writeln!(
        out,
        "  trainer:     {} (sha256 {})",
        m.trainer.path.display(),
        m.trainer.digest
    );
    let _ = writeln!(
        out,
        "  concurrency: {}{}",
        backend.describe_concurrency(m.concurrency),
        m.threads
            .map(|t| format!(", trainer --threads {t}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  retries:     {}; timeout: {}",
        m.retries,
        m.timeout_seconds
            .map(|t| format!("{t} s"))
            .unwrap_or_else(|| "none".into())
    );
    out
}

/// The staged objects and where they go, for [`describe_plan`].
fn describe_objects(out: &mut String, plan: &StagePlan, staged: &Staged) {
    let _ = writeln!(
        *out,
        "Staged objects ({}, content-addressed):",
        plan.inputs.len() + 1
    );
    let _ = writeln!(
        *out,
        "  {}  {:>10} B  {} -> {}",
        &plan.trainer.digest[..12],
        plan.trainer.size,
        one_line(&plan.trainer.path.to_string_lossy()),
        one_line(&staged.trainer)
    );
    for o in &plan.inputs {
        let _ = writeln!(
            *out,
            "  {}  {:>10} B  {} -> {}",
            &o.digest[..12],
            o.size,
            one_line(&o.path.to_string_lossy()),
            one_line(staged.inputs.get(&o.digest).map_or("?", String::as_str))
        );
    }
}

/// Each task and its command, for [`describe_plan`].
fn describe_tasks<B: Backend>(
    out: &mut String,
    backend: &B,
    m: &Manifest,
    run: &RunContext,
    staged: &Staged,
) {
    let _ = writeln!(
        *out,
        "Tasks ({} for {} inputs):",
        m.tasks.len(),
        m.inputs.len()
    );
    let args = m.task_args();
    // Inputs by task, once: a scan of every input per task was quadratic in the run.
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in &m.inputs {
        names.entry(i.task_id.as_str()).or_default().push(&i.name);
    }
    for t in &m.tasks {
        let names = names.get(t.task_id.as_str()).map_or(&[][..], Vec::as_slice);
        let _ = writeln!(
            *out,
            "  {}  {}  [{}]",
            t.task_id,
            one_line(&names.join(", ")),
            if t.is_done() { "done" } else { "to run" }
        );
        let argv = backend.task_command(run, staged, &t.spec(args.clone()));
        let cmd: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(*out, "      $ {}", one_line(&cmd.join(" ")));
    }
}

/// `orchestrator run`: plan, then execute (or print the plan with `dry_run`).
pub async fn run<B: Backend>(
    backend: &B,
    config: &RunConfig,
    shutdown: CancellationToken,
) -> Result<Finished> {
    if config.dry_run {
        let planned = plan(config, backend.worker_cores()).await?;
        if let Some(engine) = backend.describe_dry_run(&planned) {
            print!("{engine}");
        }
        print!("{}", describe_plan(backend, &planned));
        return Ok(Finished {
            run_id: planned.manifest.run_id,
            run_dir: planned.run_dir,
            exit_code: EXIT_OK,
        });
    }
    let (fresh, run_dir) = plan_fresh(config, backend.worker_cores()).await?;
    // The lock comes before the manifest is read: otherwise a second orchestrator could plan
    // from a manifest the first is about to change, and run its finished tasks again.
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::io("create", &run_dir, e))?;
    let lock = manifest::lock_run(&run_dir)?;
    let planned = adopt_existing(fresh, run_dir)?;
    if planned.existing {
        tracing::info!(
            "run {} exists; resuming it (only unfinished tasks run)",
            planned.manifest.run_id
        );
    }
    execute(backend, planned.manifest, &planned.run_dir, lock, shutdown).await
}

/// `orchestrator resume RUN_ID`: finish what the run's manifest says is not done.
pub async fn resume<B: Backend>(
    backend: &B,
    out_dir: &Path,
    run_id: &str,
    overrides: &ResumeOverrides,
    shutdown: CancellationToken,
) -> Result<Finished> {
    let run_dir = existing_run_dir(out_dir, run_id)?;
    let lock = manifest::lock_run(&run_dir)?;
    let mut m = Manifest::load(&run_dir)?;
    if m.backend.as_str() != backend.name() {
        return Err(Error::Config(format!(
            "run `{run_id}` was started on the {} backend; resume it with `--backend {}`",
            m.backend, m.backend
        )));
    }
    if let Some(c) = overrides.concurrency {
        m.concurrency = c.max(1);
        if m.threads.is_some() {
            m.threads = Some((backend.worker_cores() / m.concurrency).max(1));
        }
    }
    if let Some(r) = overrides.retries {
        m.retries = r;
    }
    if let Some(t) = overrides.timeout {
        m.timeout_seconds = Some(t.as_secs_f64());
    }
    execute(backend, m, &run_dir, lock, shutdown).await
}

/// The backend a stored run uses (for `resume` and `cleanup` to pick one).
pub fn run_backend(out_dir: &Path, run_id: &str) -> Result<BackendKind> {
    let run_dir = existing_run_dir(out_dir, run_id)?;
    // The backend never changes for a run, so reading it unlocked is safe; but a run another
    // orchestrator holds is refused here already, before its manifest is read.
    if manifest::run_is_locked(&run_dir) {
        return Err(manifest::busy(&run_dir));
    }
    Ok(Manifest::load(&run_dir)?.backend)
}

fn existing_run_dir(out_dir: &Path, run_id: &str) -> Result<PathBuf> {
    input::check_name(run_id)
        .map_err(|reason| Error::Config(format!("run id `{run_id}`: {reason}")))?;
    let run_dir = out_dir.join(run_id);
    if !Manifest::path(&run_dir).is_file() {
        return Err(Error::RunNotFound {
            run_id: run_id.to_owned(),
            out: out_dir.to_path_buf(),
        });
    }
    Ok(run_dir)
}

/// Stages, runs every task that is not done, keeps the manifest current, writes the report.
///
/// `_lock` is the run's lock, taken before `m` was read, and held until this returns.
async fn execute<B: Backend>(
    backend: &B,
    mut m: Manifest,
    run_dir: &Path,
    _lock: manifest::RunLock,
    shutdown: CancellationToken,
) -> Result<Finished> {
    let session_start = Instant::now();
    let journal = start_session(&mut m, run_dir).await?;
    run_session(backend, &mut m, journal, run_dir, &shutdown).await?;
    // The session ends with a snapshot of the final states, so a finished run's
    // manifest.json holds everything and its journal is empty.
    Journal::compact(&mut m, run_dir).await?;
    let run_dir_owned = run_dir.to_path_buf();
    let (report, written) = tokio::task::spawn_blocking(move || -> Result<_> {
        let report = report::build(&m, &run_dir_owned);
        drop(m);
        let written = report::write(&report, &run_dir_owned)?;
        Ok((report, written))
    })
    .await
    .expect("report does not panic")?;
    print!("{}", report::summary_table(&report));
    println!(
        "Report: {} (also report.json, report.html); session took {:.1} s",
        written.csv.display(),
        session_start.elapsed().as_secs_f64()
    );
    let s = &report.summary;
    let exit_code = if shutdown.is_cancelled() {
        tracing::warn!(
            "interrupted; finish with `orchestrator resume {}`",
            report.run_id
        );
        EXIT_INTERRUPTED
    } else if s.failed > 0 || s.unfinished > 0 {
        EXIT_TASKS_FAILED
    } else {
        EXIT_OK
    };
    Ok(Finished {
        run_id: report.run_id,
        run_dir: run_dir.to_path_buf(),
        exit_code,
    })
}

/// Readies the run directory and the manifest for a session: tasks not done go back to
/// pending, and the session starts from a snapshot of its own (the merged plan, with no
/// journal to replay; a format-1 manifest is rewritten as format 2 here).
async fn start_session(m: &mut Manifest, run_dir: &Path) -> Result<Journal> {
    std::fs::create_dir_all(run_dir.join("tasks")).map_err(|e| Error::io("create", run_dir, e))?;
    m.orchestrator_pid = Some(std::process::id());
    // Tasks that were running when a previous orchestrator died, or that may succeed on a
    // new try, go back to pending; their earlier attempts still count.
    for t in &mut m.tasks {
        if !t.is_done() {
            t.state = TaskState::Pending;
        }
    }
    let journal = Journal::compact(m, run_dir).await?;
    if let Some(parent) = run_dir.parent() {
        kit::sync_dir(parent)?;
    }
    Ok(journal)
}

/// Stages and runs every task that is not done. What staging needs (the plan, where the
/// objects landed: a path per input) is dropped before the report is built.
async fn run_session<B: Backend>(
    backend: &B,
    m: &mut Manifest,
    mut journal: Journal,
    run_dir: &Path,
    shutdown: &CancellationToken,
) -> Result<()> {
    let ctx = run_context(m, run_dir);
    let to_run: Vec<usize> = (0..m.tasks.len())
        .filter(|&i| !m.tasks[i].is_done())
        .collect();
    if to_run.is_empty() {
        tracing::info!("run {}: every task is already done", m.run_id);
        return Ok(());
    }
    let plan = stage_plan(m);
    tracing::info!(
        "run {}: {} of {} tasks to run on {} ({}), staging {} objects",
        m.run_id,
        to_run.len(),
        m.tasks.len(),
        backend.name(),
        backend.describe_concurrency(m.concurrency),
        plan.inputs.len() + 1
    );
    let staged = backend.stage(&ctx, &plan).await?;
    drop(plan);
    run_tasks(backend, m, &mut journal, &ctx, &staged, &to_run, shutdown).await?;
    // A backend that returned without a final word on a task (only on shutdown) leaves it
    // unfinished; record it cancelled so the next resume runs it.
    for t in &mut m.tasks {
        if t.state == TaskState::Running {
            t.state = TaskState::Cancelled;
            t.failure.get_or_insert_with(|| "interrupted".into());
        }
    }
    Ok(())
}

/// Shortest time between two journal flushes while tasks run.
///
/// Each flush appends the batch's lines and syncs them (one `fdatasync`); one per event would
/// cost a disk flush per task. A state a crash loses is at most this old, and losing it is
/// safe: the task just runs again.
const MANIFEST_WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Applies backend events to the manifest and the progress bar.
struct Tracker<'a> {
    m: &'a mut Manifest,
    index: manifest::TaskIndex,
    /// Attempts made in earlier sessions, by task index.
    base: Vec<u32>,
    running: BTreeSet<String>,
    progress: Progress,
    finished: u64,
    total: u64,
    run: &'a RunContext,
}

impl Tracker<'_> {
    /// Applies `ev` and returns the index of the task it changed.
    fn apply(&mut self, ev: TaskEvent) -> Option<usize> {
        match ev {
            TaskEvent::Started { task_id, attempt } => {
                let i = self.index.get(&task_id)?;
                let t = &mut self.m.tasks[i];
                t.state = TaskState::Running;
                t.attempts = self.base[i] + attempt;
                self.running.insert(task_id);
                self.progress.set_running(self.running.len());
                Some(i)
            }
            TaskEvent::Finished(outcome) => {
                let i = self.index.get(&outcome.task_id)?;
                let t = &mut self.m.tasks[i];
                t.finish(&outcome, self.base[i]);
                self.running.remove(&outcome.task_id);
                self.progress.set_running(self.running.len());
                self.finished += 1;
                let ok = t.state == TaskState::Succeeded;
                let detail = if ok {
                    std::fs::read_to_string(self.run.task_dir(&t.task_id).join(OUTPUT_FILE))
                        .ok()
                        .and_then(|o| report::parse_score(&o))
                        .map(|s| format!("score {s}"))
                        .unwrap_or_default()
                } else {
                    match (t.exit_code, &t.failure) {
                        (Some(code), _) => format!("exit code {code}"),
                        (None, Some(f)) => f.clone(),
                        (None, None) => String::new(),
                    }
                };
                let line = format!(
                    "[{}/{}] {}{} {} {} ({:.2} s, attempt {})",
                    self.finished,
                    self.total,
                    t.input_name,
                    t.setting_args
                        .iter()
                        .fold(String::new(), |acc, a| acc + " " + a),
                    t.state.as_str(),
                    detail,
                    outcome.wall_seconds,
                    t.attempts
                );
                self.progress.finished(&line, ok);
                Some(i)
            }
        }
    }
}

/// Runs `to_run` on the backend, applying its events to the manifest and the progress bar.
///
/// Each event's change is a journal line; the lines are flushed in batches, at most every
/// [`MANIFEST_WRITE_INTERVAL`]. A state is never recorded before the backend reported it.
async fn run_tasks<B: Backend>(
    backend: &B,
    m: &mut Manifest,
    journal: &mut Journal,
    ctx: &RunContext,
    staged: &Staged,
    to_run: &[usize],
    shutdown: &CancellationToken,
) -> Result<()> {
    let args = m.task_args();
    let specs = to_run
        .iter()
        .map(|&i| m.tasks[i].spec(args.clone()))
        .collect();
    let total = m.tasks.len() as u64;
    let already = total - to_run.len() as u64;
    let mut tracker = Tracker {
        base: m.tasks.iter().map(|t| t.attempts).collect(),
        index: m.compact_task_index(),
        m,
        running: BTreeSet::new(),
        progress: Progress::new(total, already),
        finished: already,
        total,
        run: ctx,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Cancelled by the user's shutdown, or by us when the manifest can no longer be saved.
    let stop = shutdown.child_token();
    let exec = backend.execute(ctx, staged, specs, tx, stop.clone());
    let consume = async {
        let mut write_error = None;
        let mut last_write = tokio::time::Instant::now();
        let mut open = true;
        while open {
            let Some(first) = rx.recv().await else { break };
            if let Some(i) = tracker.apply(first) {
                journal.record(&tracker.m.tasks[i]);
            }
            let deadline = last_write + MANIFEST_WRITE_INTERVAL;
            loop {
                tokio::select! {
                    biased;
                    ev = rx.recv() => match ev {
                        Some(ev) => if let Some(i) = tracker.apply(ev) {
                            journal.record(&tracker.m.tasks[i]);
                        },
                        None => {
                            open = false;
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            if write_error.is_none()
                && let Err(e) = flush(journal, tracker.m, &ctx.run_dir).await
            {
                tracker
                    .progress
                    .log(&format!("cannot save the manifest, stopping: {e}"), false);
                write_error = Some(e);
                stop.cancel();
            }
            last_write = tokio::time::Instant::now();
        }
        write_error
    };
    let (exec_res, write_error) = tokio::join!(exec, consume);
    tracker.progress.finish();
    exec_res?;
    match write_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Flushes the journal's batch, and compacts when the journal has outgrown its snapshot.
async fn flush(journal: &mut Journal, m: &mut Manifest, run_dir: &Path) -> Result<()> {
    journal.flush().await?;
    if journal.wants_compaction() {
        *journal = Journal::compact(m, run_dir).await?;
    }
    Ok(())
}

/// `orchestrator status RUN_ID`: where a run stands, as text.
pub fn status(out_dir: &Path, run_id: &str) -> Result<String> {
    let run_dir = existing_run_dir(out_dir, run_id)?;
    let m = Manifest::load(&run_dir)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &m.tasks {
        *counts.entry(t.state.as_str()).or_default() += 1;
    }
    let done = m.tasks.iter().filter(|t| t.is_done()).count();
    let mut out = String::new();
    let _ = writeln!(out, "Run {} ({} backend)", m.run_id, m.backend);
    let _ = writeln!(out, "  directory: {}", run_dir.display());
    let _ = writeln!(
        out,
        "  inputs: {}, tasks: {}, done: {done}",
        m.inputs.len(),
        m.tasks.len()
    );
    let states: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  states: {}", states.join(", "));
    let where_ = if done == m.tasks.len() {
        "finished".to_owned()
    } else if manifest::run_is_locked(&run_dir) {
        format!(
            "in progress (orchestrator pid {})",
            m.orchestrator_pid.unwrap_or(0)
        )
    } else {
        format!(
            "not finished; continue with `orchestrator resume {}`",
            m.run_id
        )
    };
    let _ = writeln!(out, "  state: {where_}");
    let report = report::build(&m, &run_dir);
    out.push('\n');
    out.push_str(&report::summary_table(&report));
    Ok(out)
}

/// `orchestrator cleanup RUN_ID`: the backend deletes what the run created on its engine.
pub async fn cleanup<B: Backend>(backend: &B, out_dir: &Path, run_id: &str) -> Result<()> {
    let run_dir = existing_run_dir(out_dir, run_id)?;
    // Not while an orchestrator works on the run: its objects and jobs are in use.
    let _lock = manifest::lock_run(&run_dir)?;
    let m = Manifest::load(&run_dir)?;
    backend.cleanup(&run_context(&m, &run_dir)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_inputs_name_their_run_after_the_container_and_prefix() {
        let stem = |s: &str| run_stem(Path::new(s));
        assert_eq!(stem("az://acct/data/exp1/"), "data-exp1");
        assert_eq!(stem("az://acct/data"), "data");
        assert_eq!(
            stem("https://acct.blob.core.windows.net/data/2026/run_7"),
            "data-2026-run_7"
        );
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("my inputs");
        std::fs::create_dir(&named).unwrap();
        assert_eq!(run_stem(&named), "my_inputs");
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn threads_do_not_change_task_ids() {
        let a = task_id("d", "t", &s(&["--n-estimators", "20"]));
        let b = task_id("d", "t", &s(&["--n-estimators", "20", "--threads", "4"]));
        let c = task_id("d", "t", &s(&["--threads=2", "--n-estimators", "20"]));
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, task_id("d", "t", &s(&["--n-estimators", "21"])));
        assert_ne!(a, task_id("d", "t2", &s(&["--n-estimators", "20"])));
        assert_ne!(a, task_id("d2", "t", &s(&["--n-estimators", "20"])));
        assert_eq!(a.len(), TASK_ID_LEN);
    }

    #[test]
    fn field_boundaries_matter() {
        assert_ne!(hash_fields("x", ["ab", "c"]), hash_fields("x", ["a", "bc"]));
    }

    #[test]
    fn default_sizing_never_oversubscribes() {
        assert_eq!(size_run(2, 6, None, None), (2, Some(1)));
        assert_eq!(size_run(8, 3, None, None), (3, Some(2)));
        assert_eq!(size_run(2, 1, None, None), (1, Some(2)));
        assert_eq!(size_run(4, 10, Some(1), None), (1, Some(4)));
        assert_eq!(size_run(4, 10, None, Some(2)), (2, None));
        assert_eq!(size_run(2, 10, None, Some(8)), (1, None));
    }

    #[test]
    fn shell_quoting_for_display() {
        assert_eq!(shell_quote("a/b.csv"), "a/b.csv");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
