//! The `Backend` trait's contract, checked through the library against the local, Slurm and
//! Azure Batch backends (the Slurm test starts the single-node cluster through
//! `scripts/slurm-start.sh`; the Azure Batch test runs the Batch stand-in in-process and Blob
//! Storage on Azurite, started through `scripts/azurite.sh`, both passed to the backend's
//! builder, not through the environment).
//!
//! The `check_*` functions take any backend, so another backend's tests can include this file
//! with `#[path]` and run the same checks against its own engine.

#[path = "util.rs"]
mod util;

#[path = "slurm_util.rs"]
mod slurm_util;

#[path = "azure_util.rs"]
mod azure_util;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orchestrator::backend::azure_batch::AzureBatch;
use orchestrator::backend::slurm::{Slurm, SlurmConfig};
use orchestrator::backend::{Backend, Local, OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};
use orchestrator::input::hash_file;
use orchestrator::task::{RunContext, StagePlan, Staged, TaskEvent, TaskSpec, TaskStatus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use util::{Scratch, trainer_bin};

/// Staging twice gives the same locations, and every input digest is staged.
pub async fn check_stage_is_idempotent<B: Backend>(
    backend: &B,
    run: &RunContext,
    plan: &StagePlan,
) -> Staged {
    let first = backend.stage(run, plan).await.expect("stage");
    let second = backend.stage(run, plan).await.expect("stage again");
    assert_eq!(first.trainer, second.trainer);
    assert_eq!(first.inputs, second.inputs);
    for object in &plan.inputs {
        assert!(
            first.inputs.contains_key(&object.digest),
            "{object:?} not staged"
        );
    }
    first
}

/// Runs `tasks` and checks the events: per task, attempts numbered from 1, each `Started`
/// before the one `Finished`; a success has its output collected. Returns the outcomes.
pub async fn check_runs_every_task<B: Backend>(
    backend: &B,
    run: &RunContext,
    staged: &Staged,
    tasks: Vec<TaskSpec>,
    shutdown: CancellationToken,
) -> BTreeMap<String, orchestrator::task::TaskOutcome> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
    backend
        .execute(run, staged, tasks, tx, shutdown)
        .await
        .expect("execute");
    let mut started: BTreeMap<String, u32> = BTreeMap::new();
    let mut finished = BTreeMap::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            TaskEvent::Started { task_id, attempt } => {
                assert!(
                    !finished.contains_key(&task_id),
                    "{task_id} started after finishing"
                );
                let last = started.insert(task_id.clone(), attempt).unwrap_or(0);
                assert_eq!(attempt, last + 1, "{task_id}: attempts count up from 1");
            }
            TaskEvent::Finished(outcome) => {
                assert_eq!(
                    started.get(&outcome.task_id),
                    Some(&outcome.attempts),
                    "{outcome:?}: as many attempts as starts"
                );
                let dup = finished.insert(outcome.task_id.clone(), outcome);
                assert!(dup.is_none(), "a task finished twice");
            }
        }
    }
    for (id, outcome) in &finished {
        assert!(ids.contains(id), "an event for unknown task {id}");
        if outcome.status == TaskStatus::Succeeded {
            let dir = run.task_dir(id);
            let output = std::fs::read_to_string(dir.join(OUTPUT_FILE)).expect("output collected");
            assert!(output.starts_with("The model score: "), "{output}");
            assert!(dir.join(STDOUT_FILE).is_file() && dir.join(STDERR_FILE).is_file());
        }
    }
    finished
}

fn context(s: &Scratch, concurrency: usize) -> RunContext {
    RunContext {
        run_id: "contract".into(),
        run_dir: s.out().join("contract"),
        retries: 1,
        timeout: Some(Duration::from_secs(60)),
        concurrency,
    }
}

fn plan(s: &Scratch, trainer: &std::path::Path, names: &[&str]) -> (StagePlan, Vec<TaskSpec>) {
    let inputs: Vec<_> = names
        .iter()
        .map(|n| hash_file(&s.inputs().join(n)).unwrap())
        .collect();
    let tasks = names
        .iter()
        .zip(&inputs)
        .map(|(name, object)| TaskSpec {
            task_id: format!("task-{}", name.trim_end_matches(".csv")),
            input_name: (*name).to_owned(),
            input_digest: object.digest.clone(),
            trainer_args: vec!["--threads".into(), "1".into()],
            prior_attempts: 0,
        })
        .collect();
    let plan = StagePlan {
        trainer: hash_file(trainer).unwrap(),
        inputs,
    };
    (plan, tasks)
}

/// The whole contract on two good inputs and one bad one: staging is idempotent, every task
/// runs once with its events in order, bad input (exit 1) is not retried, cleanup keeps
/// results.
async fn check_contract<B: Backend>(backend: &B, s: &Scratch) {
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    s.write_input("empty.csv", "");
    let run = context(s, 2);
    let (plan, tasks) = plan(s, &trainer_bin(), &["iris.csv", "wine.csv", "empty.csv"]);
    let staged = check_stage_is_idempotent(backend, &run, &plan).await;
    let outcomes =
        check_runs_every_task(backend, &run, &staged, tasks, CancellationToken::new()).await;
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes["task-iris"].status, TaskStatus::Succeeded);
    assert_eq!(outcomes["task-wine"].status, TaskStatus::Succeeded);
    let bad = &outcomes["task-empty"];
    assert_eq!(
        (bad.status, bad.exit_code, bad.attempts),
        (TaskStatus::Failed, Some(1), 1)
    );

    // Cleanup keeps results.
    backend.cleanup(&run).await.expect("cleanup");
    assert!(run.task_dir("task-iris").join(OUTPUT_FILE).is_file());
}

#[tokio::test]
async fn local_backend_honours_the_contract() {
    let s = Scratch::new();
    check_contract(&Local::new(&s.out()), &s).await;
}

/// The same contract on the single-node Slurm cluster (`scripts/slurm-start.sh`).
#[tokio::test]
async fn slurm_backend_honours_the_contract() {
    slurm_util::cluster();
    let s = Scratch::new();
    let backend = Slurm::new(SlurmConfig {
        staging_dir: s.out().join("slurm-staging"),
        partition: None,
        time_limit: None,
        cpus_per_task: None,
        mem: None,
        poll_interval: Duration::from_millis(300),
        inputs_per_task: Default::default(),
    })
    .expect("slurm backend");
    check_contract(&backend, &s).await;
}

/// The same contract on Azure Batch: the stand-in for Batch, Azurite for Blob Storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_batch_backend_honours_the_contract() {
    azure_util::azurite();
    let s = Scratch::new();
    let standin = azure_util::standin(s.path(), vec![]).await;
    let mut config = azure_util::standin_config(&standin.url());
    config.poll_interval = Duration::from_millis(300);
    // Azurite is shared with other tests: containers of our own, and only ours cleaned up.
    let backend = AzureBatch::builder(config)
        .storage(azure_util::azurite_storage())
        .container_prefix(format!("contract{}", std::process::id()))
        .build()
        .await
        .expect("azure batch backend");
    check_contract(&backend, &s).await;
    standin.shutdown().await;
}

#[tokio::test]
async fn local_backend_stops_soon_after_shutdown() {
    let s = Scratch::new();
    for name in ["a.csv", "b.csv", "c.csv"] {
        s.copy_input("iris.csv", name);
    }
    let slow = s.script("slow.sh", "sleep 30\n");
    let backend = Local::new(&s.out());
    let run = context(&s, 1);
    let (plan, tasks) = plan(&s, &slow, &["a.csv", "b.csv", "c.csv"]);
    let staged = backend.stage(&run, &plan).await.unwrap();
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let outcomes = check_runs_every_task(&backend, &run, &staged, tasks, shutdown).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "execute returned soon"
    );
    // The running task is cancelled; queued ones are left for a resume (no events).
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(outcomes.values().all(|o| o.status == TaskStatus::Cancelled));
}
