//! The Azure Batch backend: a thin [`AzureBatch`] that stages through Blob Storage, creates the
//! pool and job, submits one task per input and watches them, over Batch's REST API.
//!
//! Only this module (and its children) know Azure Batch exists. `model.rs` is the only file
//! that knows Batch's JSON; `client.rs` the only one that knows its HTTP and auth;
//! `storage.rs` the only one that talks to Blob Storage (through `azure-staging`).

mod args;
mod builder;
mod bundle;
mod client;
pub mod config;
mod job;
mod model;
mod monitor;
mod packs;
mod pool;
#[cfg(test)]
mod recorded;
mod storage;
mod tasks;
#[cfg(test)]
mod testserver;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use args::AzureBatchArgs;
pub use builder::AzureBatchBuilder;
pub use config::{AzureBatchConfig, AzureBatchOptions, BatchAuth, PoolMode};

use self::client::BatchClient;
use self::model::{
    AutoPoolSpec, JobCreate, NameValue, PoolCreate, PoolInfo, VirtualMachineConfiguration,
};
use self::monitor::{Watch, WatchEnd};
use self::pool::PoolOrigin;
use self::storage::Storage;
use super::Backend;
use crate::task::{RunContext, StagePlan, Staged, TaskEvent, TaskOutcome, TaskSpec, TaskStatus};
use crate::{Error, Result};

const NAME: &str = "azure-batch";

/// Local inputs by digest: file and size.
type LocalInputs = HashMap<String, (std::path::PathBuf, u64)>;

/// A pack's bundle ([`bundle`]): where it is (a read SAS URL once signed) and the members
/// that come in it instead of as resource files of their own.
#[derive(Debug, Clone)]
struct PackBundle {
    url: String,
    members: HashSet<String>,
}

/// Extra SAS lifetime beyond the job's wall-clock cap: queueing before the job starts, and
/// output uploads after it ends.
const SAS_MARGIN: Duration = Duration::from_secs(2 * 3600);

fn err(message: impl Into<String>) -> Error {
    Error::backend(NAME, message.into())
}

/// Runs tasks on an Azure Batch pool; see the module docs.
pub struct AzureBatch {
    cfg: AzureBatchConfig,
    client: Arc<BatchClient>,
    storage: Storage,
    /// Input sizes by digest, from `stage`, for sizing packs.
    sizes: std::sync::Mutex<HashMap<String, u64>>,
    /// Inputs on this machine (not already in Blob Storage) by digest, from `stage`: what
    /// `execute` uploads, alone or in a pack's bundle.
    local_inputs: std::sync::Mutex<LocalInputs>,
}

impl std::fmt::Debug for AzureBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBatch")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl AzureBatch {
    /// A backend for `cfg`, with Blob Storage credentials from the environment.
    pub async fn new(cfg: AzureBatchConfig) -> Result<Self> {
        Self::builder(cfg).build().await
    }

    fn pool_id(&self, run: &RunContext) -> String {
        match &self.cfg.pool {
            PoolMode::Named { pool_id: Some(id) } => id.clone(),
            _ => job::batch_id("orch-", &run.run_id),
        }
    }

    fn base_job_id(run: &RunContext) -> String {
        job::batch_id("orch-", &run.run_id)
    }

    /// The job, with the preparation task that puts the trainer (`trainer_url`, a read SAS
    /// of the staged blob `trainer_object`) on every node.
    fn job_body(
        &self,
        run: &RunContext,
        job_id: &str,
        pool_info: PoolInfo,
        trainer_url: &str,
        trainer_object: &str,
    ) -> JobCreate {
        let prep = tasks::trainer_preparation(
            trainer_url,
            object_digest(trainer_object),
            self.cfg.task_retention,
        );
        job::job_body(
            &run.run_id,
            job_id,
            pool_info,
            self.cfg.job_timeout,
            Some(prep),
        )
    }

    fn pool_info(
        &self,
        run: &RunContext,
        vm: VirtualMachineConfiguration,
    ) -> (PoolInfo, Option<PoolCreate>) {
        let spec = pool::pool_spec(&self.cfg, vm, &run.run_id);
        match &self.cfg.pool {
            PoolMode::Auto => (
                PoolInfo {
                    pool_id: None,
                    auto_pool_specification: Some(AutoPoolSpec {
                        auto_pool_id_prefix: "orch".into(),
                        pool_lifetime_option: "job".into(),
                        keep_alive: false,
                        pool: spec,
                    }),
                },
                None,
            ),
            PoolMode::Named { .. } => {
                let id = self.pool_id(run);
                (
                    PoolInfo {
                        pool_id: Some(id.clone()),
                        auto_pool_specification: None,
                    },
                    Some(PoolCreate { id, spec }),
                )
            }
        }
    }

    /// Task slots the pool offers at once (for sizing packs).
    fn slots(&self) -> usize {
        let nodes = match self.cfg.autoscale_formula {
            Some(_) => 1,
            None => (self.cfg.dedicated_nodes + self.cfg.spot_nodes).max(1),
        };
        (nodes * self.cfg.task_slots.max(1)) as usize
    }

    /// Packs for `tasks` (recorded in the run directory when `record`).
    fn packs(
        &self,
        run: &RunContext,
        tasks: &[TaskSpec],
        record: bool,
    ) -> std::result::Result<Vec<packs::Pack>, String> {
        let sizes = self.sizes.lock().expect("lock").clone();
        packs::plan(
            &run.run_dir,
            tasks,
            &sizes,
            self.cfg.inputs_per_task,
            self.slots(),
            record,
        )
    }

    /// The Batch task of every pack (a pack of one is a single task, as before packing), and
    /// the inputs that cannot be submitted, with why.
    fn task_bodies(
        &self,
        run: &RunContext,
        packs: &[packs::Pack],
        tasks: &[TaskSpec],
        urls: &BodyUrls<'_>,
    ) -> (Vec<model::TaskCreate>, Vec<(String, String)>) {
        let BodyUrls {
            trainer_path,
            input_url,
            bundles,
            outputs: output_container_url,
        } = *urls;
        let by_id: HashMap<&str, &TaskSpec> =
            tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
        let mut ok = Vec::with_capacity(packs.len());
        let mut bad = Vec::new();
        for pack in packs {
            let bundle = bundles.get(&pack.id);
            let mut inputs = Vec::with_capacity(pack.members.len());
            for m in &pack.members {
                let Some(spec) = by_id.get(m.as_str()) else {
                    continue;
                };
                if bundle.is_some_and(|b| b.members.contains(m)) {
                    inputs.push((*spec, None));
                    continue;
                }
                match input_url(&spec.input_digest) {
                    Some(u) => inputs.push((*spec, Some(u))),
                    None => bad.push((
                        spec.task_id.clone(),
                        format!("input {} was not staged", spec.input_name),
                    )),
                }
            }
            if inputs.is_empty() {
                continue;
            }
            let built = if pack.is_single() {
                let (spec, input) = &inputs[0];
                // The output container belongs to the run; blobs are `<task-id>/<file>`.
                let x = tasks::TaskInputs {
                    trainer_path,
                    input_url: input.as_deref().unwrap_or_default(),
                    output_container_url,
                    output_prefix: &spec.task_id,
                    max_retries: run.retries,
                    timeout: run.timeout,
                    retention: self.cfg.task_retention,
                };
                tasks::build_task(spec, &x)
            } else {
                let x = packs::PackInputs {
                    trainer_path,
                    output_container_url,
                    retries: run.retries,
                    timeout: run.timeout,
                    retention: self.cfg.task_retention,
                };
                packs::build_pack(pack, &inputs, bundle.map(|b| b.url.as_str()), &x)
            };
            match built {
                Ok(t) => ok.push(t),
                Err(e) => bad.extend(inputs.iter().map(|(s, _)| (s.task_id.clone(), e.clone()))),
            }
        }
        (ok, bad)
    }

    /// The `--dry-run` view: every request body this run would send, SAS signatures elided.
    /// Nothing is sent; the image is the one `GET /supportedimages` would normally confirm.
    pub fn describe_requests(
        &self,
        run: &RunContext,
        plan: &StagePlan,
        tasks: &[TaskSpec],
    ) -> String {
        let staged = self.staged_locations(run, plan);
        let placeholder =
            |url: &str, perm: &str| format!("{url}?<SAS sp={perm}, signature elided>");
        let vm = VirtualMachineConfiguration {
            image_reference: model::ImageReference {
                publisher: "canonical".into(),
                offer: "ubuntu-24_04-lts".into(),
                sku: self.cfg.image_sku.clone().unwrap_or_else(|| {
                    if config::needs_gen1_image(&self.cfg.vm_size) {
                        "server-gen1"
                    } else {
                        "server"
                    }
                    .into()
                }),
                version: "latest".into(),
            },
            node_agent_sku_id: "batch.node.ubuntu 24.04".into(),
        };
        let (pool_info, pool_body) = self.pool_info(run, vm);
        let job_id = Self::base_job_id(run);
        let mut out = String::new();
        out.push_str(&format!(
            "Azure Batch requests (api-version {}, account {}):\n",
            self.cfg.api_version, self.cfg.account_url
        ));
        out.push_str(
            "GET /supportedimages?$filter=verificationType eq 'verified' \
             (must list the image below, else the run stops before creating anything)\n",
        );
        if let Some(p) = &pool_body {
            out.push_str(&format!("POST /pools\n{}\n", pretty(p)));
        }
        let trainer = placeholder(&staged.trainer, "r");
        out.push_str(&format!(
            "POST /jobs\n{}\n",
            pretty(&self.job_body(run, &job_id, pool_info, &trainer, &staged.trainer))
        ));
        let trainer_path = tasks::node_trainer(object_digest(&staged.trainer));
        let out_container = placeholder(&self.storage.output_container_base(&run.run_id), "cw");
        let input_url = |d: &str| staged.inputs.get(d).map(|u| placeholder(u, "r"));
        let packs = match self.packs(run, tasks, false) {
            Ok(p) => p,
            Err(e) => return format!("(cannot plan packs: {e})\n"),
        };
        let locals: LocalInputs = self.local_of(plan).collect();
        let by_id: HashMap<&str, &TaskSpec> =
            tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
        let bundles: HashMap<String, PackBundle> = packs
            .iter()
            .filter(|p| !p.is_single())
            .filter_map(|p| {
                let members = bundle_members(p, &by_id, &locals);
                let chosen = bundle::select(&members);
                (!chosen.is_empty()).then(|| {
                    let url = self.storage.object_url(
                        &run.run_id,
                        &format!("<sha256 of the bundle of {} inputs>", chosen.len()),
                    );
                    let members = chosen.iter().map(|&i| members[i].spec.task_id.clone());
                    let b = PackBundle {
                        url: placeholder(&url, "r"),
                        members: members.collect(),
                    };
                    (p.id.clone(), b)
                })
            })
            .collect();
        let urls = BodyUrls {
            trainer_path: &trainer_path,
            input_url: &input_url,
            bundles: &bundles,
            outputs: &out_container,
        };
        let (pending, bad) = self.task_bodies(run, &packs, tasks, &urls);
        for chunk in pending.chunks(tasks::MAX_TASKS_PER_REQUEST) {
            out.push_str(&format!(
                "POST /jobs/{job_id}/addtaskcollection\n{}\n",
                pretty(&model::TaskGroup { value: chunk })
            ));
        }
        for (id, why) in bad {
            out.push_str(&format!("(task {id} would not be submitted: {why})\n"));
        }
        out.push_str(&format!(
            "PATCH /jobs/{job_id}\n{}\n",
            pretty(&model::JobPatch {
                on_all_tasks_complete: "terminatejob".into()
            })
        ));
        out
    }

    /// [`Self::describe_requests`] for a planned run (what `run --dry-run` prints).
    pub fn describe_planned(&self, planned: &crate::pipeline::Planned) -> String {
        let m = &planned.manifest;
        let run = RunContext {
            run_id: m.run_id.clone(),
            run_dir: planned.run_dir.clone(),
            retries: m.retries,
            timeout: m.timeout_seconds.map(Duration::from_secs_f64),
            concurrency: m.concurrency,
        };
        let mut seen = BTreeSet::new();
        let plan = StagePlan {
            trainer: m.trainer.clone(),
            inputs: m
                .inputs
                .iter()
                .filter(|i| seen.insert(i.digest.clone()))
                .map(|i| crate::task::StageObject {
                    path: i.path.clone(),
                    digest: i.digest.clone(),
                    size: i.size,
                })
                .collect(),
        };
        let args = m.task_args();
        let specs: Vec<TaskSpec> = m
            .tasks
            .iter()
            .filter(|t| !t.is_done())
            .map(|t| t.spec(args.clone()))
            .collect();
        self.describe_requests(&run, &plan, &specs)
    }

    async fn execute_inner(
        &self,
        run: &RunContext,
        staged: &Staged,
        specs: Vec<TaskSpec>,
        events: &mpsc::UnboundedSender<TaskEvent>,
        shutdown: &CancellationToken,
    ) -> std::result::Result<(), String> {
        let client = &self.client;
        let base = Self::base_job_id(run);
        let job_id = job::choose_job_id(client, &base).await?;
        // A resumed run whose job already finished: collect what completed there instead of
        // running it again, and only submit the rest to the successor job.
        let specs = self
            .adopt_finished(run, &base, &job_id, specs, events, shutdown)
            .await?;
        if specs.is_empty() || shutdown.is_cancelled() {
            return Ok(());
        }
        let packs = self.packs(run, &specs, true)?;
        let bundles = self.upload_inputs(run, &packs, &specs).await?;
        let urls = self.sign_urls(run, staged, &specs, bundles).await?;
        let vm = pool::resolve_image(client, &self.cfg).await?;
        let (pool_info, pool_body) = self.pool_info(run, vm);
        let mut origin = None;
        if let Some(body) = &pool_body {
            origin =
                Some(pool::ensure_pool(client, body, &run.run_id, self.cfg.poll_interval).await?);
        }
        // From here on a pool exists: every way out goes through `finish`, which releases it.
        let on_pool = OnPool {
            run,
            job_id: &job_id,
            pool_id: pool_body.as_ref().map(|p| p.id.clone()),
            urls: &urls,
            trainer_object: &staged.trainer,
        };
        let end = self
            .submit_and_watch(&on_pool, pool_info, (specs, packs), events, shutdown)
            .await;
        self.finish(run, &job_id, origin, end).await
    }

    /// Uploads the local inputs of `packs`: the small ones of a pack in its bundle, the
    /// others (and single tasks' inputs) as blobs of their own; one container listing decides
    /// what is already there. Returns each bundled pack's bundle (its blob URL, unsigned).
    async fn upload_inputs(
        &self,
        run: &RunContext,
        packs: &[packs::Pack],
        specs: &[TaskSpec],
    ) -> std::result::Result<HashMap<String, PackBundle>, String> {
        let locals = self.local_inputs.lock().expect("lock").clone();
        let dir = run.run_dir.join("azure-bundles");
        let by_id: HashMap<&str, &TaskSpec> =
            specs.iter().map(|t| (t.task_id.as_str(), t)).collect();
        let mut objects = Vec::new();
        let mut bundles = HashMap::new();
        for p in packs {
            let members = bundle_members(p, &by_id, &locals);
            let chosen = if p.is_single() {
                Vec::new()
            } else {
                bundle::select(&members)
            };
            let mut in_bundle = vec![false; members.len()];
            for &i in &chosen {
                in_bundle[i] = true;
            }
            if !chosen.is_empty() {
                let built = bundle::build(&members, &chosen, &packs::member_file, &dir)?;
                let url = self.storage.object_url(&run.run_id, &built.digest);
                let ids = chosen.iter().map(|&i| members[i].spec.task_id.clone());
                let b = PackBundle {
                    url,
                    members: ids.collect(),
                };
                bundles.insert(p.id.clone(), b);
                objects.push((built.path, built.digest, built.size));
            }
            for (m, bundled) in members.iter().zip(in_bundle) {
                if let (Some((path, size)), false) = (m.local, bundled) {
                    objects.push((path.to_owned(), m.spec.input_digest.clone(), size));
                }
            }
        }
        self.storage.upload(&run.run_id, objects).await?;
        // The bundles are in the container now (and rebuilt identically should it lose them).
        let _ = std::fs::remove_dir_all(&dir);
        Ok(bundles)
    }

    /// The local inputs of `plan` (those not already in this Blob Storage account).
    fn local_of<'a>(
        &'a self,
        plan: &'a StagePlan,
    ) -> impl Iterator<Item = (String, (std::path::PathBuf, u64))> + 'a {
        plan.inputs
            .iter()
            .filter(|o| !self.storage.is_in_place(o))
            .map(|o| (o.digest.clone(), (o.path.clone(), o.size)))
    }

    /// SAS URLs for the trainer, the inputs of `specs` not in a bundle, the bundles and the
    /// output container; they must outlive queueing, the job's wall-clock cap and the final
    /// uploads.
    async fn sign_urls(
        &self,
        run: &RunContext,
        staged: &Staged,
        specs: &[TaskSpec],
        mut bundles: HashMap<String, PackBundle>,
    ) -> std::result::Result<SignedUrls, String> {
        let expiry = SystemTime::now() + self.cfg.job_timeout + SAS_MARGIN;
        let trainer = self.storage.read_url(&staged.trainer, expiry).await?;
        let bundled: HashSet<&str> = bundles
            .values()
            .flat_map(|b| b.members.iter().map(String::as_str))
            .collect();
        let digests: BTreeSet<&str> = specs
            .iter()
            .filter(|s| !bundled.contains(s.task_id.as_str()))
            .map(|s| s.input_digest.as_str())
            .collect();
        let mut inputs = HashMap::new();
        for d in digests {
            if let Some(u) = staged.inputs.get(d) {
                inputs.insert(d.to_owned(), self.storage.read_url(u, expiry).await?);
            }
        }
        for b in bundles.values_mut() {
            b.url = self.storage.read_url(&b.url, expiry).await?;
        }
        let outputs = self
            .storage
            .output_container_url(&run.run_id, expiry, self.cfg.job_timeout)
            .await?;
        Ok(SignedUrls {
            trainer,
            inputs,
            bundles,
            outputs,
        })
    }

    /// Creates the job, adds the tasks and watches them. Errors come back for `finish` to
    /// release the pool.
    async fn submit_and_watch(
        &self,
        p: &OnPool<'_>,
        pool_info: PoolInfo,
        (specs, packs): (Vec<TaskSpec>, Vec<packs::Pack>),
        events: &mpsc::UnboundedSender<TaskEvent>,
        shutdown: &CancellationToken,
    ) -> std::result::Result<WatchEnd, String> {
        let (client, run, job_id) = (&self.client, p.run, p.job_id);
        let job = self.job_body(run, job_id, pool_info, &p.urls.trainer, p.trainer_object);
        job::create_job(client, &job).await?;
        let lookup = |d: &str| p.urls.inputs.get(d).cloned();
        let trainer_path = tasks::node_trainer(object_digest(p.trainer_object));
        let urls = BodyUrls {
            trainer_path: &trainer_path,
            input_url: &lookup,
            bundles: &p.urls.bundles,
            outputs: &p.urls.outputs,
        };
        let (creates, bad) = self.task_bodies(run, &packs, &specs, &urls);
        let pending: Vec<tasks::Pending> = creates.iter().map(tasks::Pending::new).collect();
        drop(creates);
        for (id, why) in &bad {
            let _ = events.send(TaskEvent::Finished(refused(id, why)));
        }
        let members = monitor::Members::of(&packs, &bad);
        let mut ours: HashSet<String> = pending.iter().map(|p| p.id.clone()).collect();
        let submit_started = std::time::Instant::now();
        let submit = tasks::submit_all(
            client.clone(),
            job_id,
            pending,
            self.cfg.submitters,
            self.cfg.job_timeout,
        );
        let submitted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(WatchEnd::Cancelled),
            r = submit => r,
        };
        match submitted {
            Ok(s) => {
                tracing::info!(
                    job = %job_id,
                    added = s.added,
                    existed = s.already_existed,
                    refused = s.rejected.len(),
                    requests = s.requests,
                    seconds = %format!("{:.2}", submit_started.elapsed().as_secs_f64()),
                    "tasks submitted"
                );
                for (id, why) in &s.rejected {
                    ours.remove(id);
                    for m in members.of_task(id) {
                        let _ = events.send(TaskEvent::Finished(refused(m, why)));
                    }
                }
            }
            // The job ended under the submission (its auto-pool failed, someone terminated
            // it): the watch reports what ran and what never did.
            Err(e) if job::is_finished(client, job_id).await => {
                tracing::warn!(job = %job_id, "adding tasks stopped: the job has ended ({e})");
            }
            Err(e) => return Err(e),
        }
        if let Err(e) = job::set_terminate_when_done(client, job_id, self.cfg.job_timeout).await
            && !job::is_finished(client, job_id).await
        {
            return Err(e);
        }
        let watch = Watch {
            client,
            storage: &self.storage,
            run,
            job_id,
            pool_id: p.pool_id.clone(),
            poll: self.cfg.poll_interval,
            stall_warning: self.cfg.pool_stall_warning,
            timeout: run.timeout,
            outage_limit: self.cfg.job_timeout,
            members: &members,
        };
        monitor::watch(watch, ours, events, shutdown).await
    }

    /// The one way out once a pool exists: the job is terminated unless the run is complete,
    /// and the pool is released (unless `--keep-pool`), whatever happened.
    async fn finish(
        &self,
        run: &RunContext,
        job_id: &str,
        origin: Option<PoolOrigin>,
        end: std::result::Result<WatchEnd, String>,
    ) -> std::result::Result<(), String> {
        match end {
            Ok(WatchEnd::AllDone | WatchEnd::JobEnded) => {
                self.release_pool(run, origin).await;
                Ok(())
            }
            Ok(WatchEnd::Cancelled) => {
                self.stop(run, job_id, origin, "cancelled by the user")
                    .await;
                Ok(())
            }
            Ok(WatchEnd::PoolFatal(m)) => {
                self.stop(run, job_id, origin, "the pool cannot allocate nodes")
                    .await;
                Err(m)
            }
            Err(e) => {
                self.stop(run, job_id, origin, "the orchestrator stopped on an error")
                    .await;
                Err(e)
            }
        }
    }

    /// Collects tasks of `specs` that already succeeded in the run's earlier (finished) jobs,
    /// and returns the ones still to run.
    async fn adopt_finished(
        &self,
        run: &RunContext,
        base: &str,
        current: &str,
        mut specs: Vec<TaskSpec>,
        events: &mpsc::UnboundedSender<TaskEvent>,
        shutdown: &CancellationToken,
    ) -> std::result::Result<Vec<TaskSpec>, String> {
        // Packs this run submitted before (a pack's Batch id is not a task id of the core).
        let recorded = packs::recorded(&run.run_dir);
        for old in job::earlier_job_ids(base, current) {
            let done: HashSet<String> = job::succeeded_task_ids(&self.client, &old)
                .await?
                .into_iter()
                .collect();
            let pending: HashSet<&str> = specs.iter().map(|s| s.task_id.as_str()).collect();
            let mut adopted: Vec<packs::Pack> = recorded
                .iter()
                .filter(|p| done.contains(&p.id))
                .filter(|p| p.members.iter().all(|m| pending.contains(m.as_str())))
                .cloned()
                .collect();
            adopted.extend(specs.iter().filter(|s| done.contains(&s.task_id)).map(|s| {
                packs::Pack {
                    id: s.task_id.clone(),
                    members: vec![s.task_id.clone()],
                }
            }));
            let ours: HashSet<String> = adopted.iter().map(|p| p.id.clone()).collect();
            if ours.is_empty() {
                continue;
            }
            let members = monitor::Members::of(&adopted, &[]);
            let finished: HashSet<String> = adopted
                .iter()
                .flat_map(|p| p.members.iter().cloned())
                .collect();
            tracing::info!(job = %old, tasks = ours.len(), "collecting tasks that finished before the orchestrator stopped");
            let watch = Watch {
                client: &self.client,
                storage: &self.storage,
                run,
                job_id: &old,
                pool_id: None,
                poll: self.cfg.poll_interval,
                stall_warning: self.cfg.pool_stall_warning,
                timeout: run.timeout,
                outage_limit: self.cfg.job_timeout,
                members: &members,
            };
            match monitor::watch(watch, ours, events, shutdown).await? {
                // Only tasks that completed are watched here, so the job ending changes nothing.
                WatchEnd::AllDone | WatchEnd::JobEnded => {
                    specs.retain(|s| !finished.contains(&s.task_id))
                }
                WatchEnd::Cancelled => return Ok(Vec::new()),
                WatchEnd::PoolFatal(m) => return Err(m),
            }
        }
        Ok(specs)
    }

    /// Cost safety on the way out: terminate the job, then release the pool.
    async fn stop(&self, run: &RunContext, job_id: &str, origin: Option<PoolOrigin>, reason: &str) {
        if let Err(e) = job::terminate_job(&self.client, job_id, reason).await {
            tracing::warn!(
                "could not terminate job {job_id}: {e}; run `orchestrator cleanup {}`",
                run.run_id
            );
        }
        self.release_pool(run, origin).await;
    }

    /// Deletes the pool unless `--keep-pool`, and only one this run created.
    async fn release_pool(&self, run: &RunContext, origin: Option<PoolOrigin>) {
        let ours = matches!(
            origin,
            Some(PoolOrigin::Created | PoolOrigin::Reused { ours: true })
        );
        if !ours {
            return;
        }
        let id = self.pool_id(run);
        if self.cfg.keep_pool {
            tracing::info!(pool = %id, "keeping pool (--keep-pool); delete it with `orchestrator cleanup {}`", run.run_id);
            return;
        }
        if let Err(e) = pool::delete_pool(&self.client, &id).await {
            tracing::warn!(
                "could not delete pool {id}: {e}; run `orchestrator cleanup {}`",
                run.run_id
            );
        }
    }
}

impl AzureBatch {
    /// `orchestrator cleanup --all`: every job, pool (unless `--keep-pool`) and storage
    /// container this tool created in these accounts, found by their metadata; no manifest is
    /// needed. Returns what was deleted, for the user.
    pub async fn cleanup_all(&self) -> Result<String> {
        let mut problems = Vec::new();
        let ours = |m: &[NameValue]| model::has_tag(m, model::CREATED_BY.0, model::CREATED_BY.1);
        let (jobs, pools) = self.delete_tagged(&ours, &mut problems).await;
        let runs = self.storage.list_runs().await.unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        let mut deleted_runs = 0;
        for r in &runs {
            match self.storage.delete_run(r).await {
                Ok(()) => deleted_runs += 1,
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(err(problems.join("; ")));
        }
        Ok(format!(
            "deleted {jobs} job(s), {pools} pool(s) and the storage containers of {deleted_runs} run(s)"
        ))
    }

    /// Deletes the jobs, then (unless `--keep-pool`) the pools, whose metadata `pick` accepts;
    /// returns how many of each. Failures are added to `problems`.
    async fn delete_tagged(
        &self,
        pick: &(dyn Fn(&[NameValue]) -> bool + Sync),
        problems: &mut Vec<String>,
    ) -> (usize, usize) {
        let (mut jobs, mut pools) = (0, 0);
        match job::jobs_tagged(&self.client, pick).await {
            Ok(ids) => {
                for j in ids {
                    tracing::info!(job = %j, "deleting job");
                    match job::delete_job(&self.client, &j).await {
                        Ok(()) => jobs += 1,
                        Err(e) => problems.push(e),
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        if self.cfg.keep_pool {
            tracing::info!("keeping the pools (--keep-pool)");
            return (jobs, pools);
        }
        match pool::pools_tagged(&self.client, pick).await {
            Ok(ids) => {
                for p in ids {
                    match pool::delete_pool(&self.client, &p).await {
                        Ok(()) => pools += 1,
                        Err(e) => problems.push(e),
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        (jobs, pools)
    }
}

/// Read SAS URLs of the trainer and the inputs (by digest), and the output container's
/// create+write SAS URL.
struct SignedUrls {
    trainer: String,
    inputs: HashMap<String, String>,
    /// By pack id.
    bundles: HashMap<String, PackBundle>,
    outputs: String,
}

/// Where the files of the task bodies come from (the trainer on the node, each input's read
/// SAS URL by digest, each pack's bundle) and go (the output container's SAS URL).
#[derive(Clone, Copy)]
struct BodyUrls<'a> {
    trainer_path: &'a str,
    input_url: &'a (dyn Fn(&str) -> Option<String> + Sync),
    bundles: &'a HashMap<String, PackBundle>,
    outputs: &'a str,
}

/// What the steps after the pool share.
struct OnPool<'a> {
    run: &'a RunContext,
    job_id: &'a str,
    /// The named pool (an auto-pool's id is learned from the job).
    pool_id: Option<String>,
    urls: &'a SignedUrls,
    /// The staged trainer's blob URL (its last segment is the digest).
    trainer_object: &'a str,
}

/// `pack`'s members as the bundler sees them (members not in `specs` left out).
fn bundle_members<'a>(
    pack: &packs::Pack,
    by_id: &HashMap<&str, &'a TaskSpec>,
    locals: &'a LocalInputs,
) -> Vec<bundle::Member<'a>> {
    pack.members
        .iter()
        .filter_map(|m| by_id.get(m.as_str()).copied())
        .map(|spec| bundle::Member {
            spec,
            local: locals
                .get(&spec.input_digest)
                .map(|(p, n)| (p.as_path(), *n)),
        })
        .collect()
}

/// The digest a staged object's URL ends with (objects are named by digest).
fn object_digest(object_url: &str) -> &str {
    object_url.rsplit('/').next().unwrap_or(object_url)
}

fn refused(task_id: &str, why: &str) -> TaskOutcome {
    TaskOutcome {
        task_id: task_id.to_owned(),
        status: TaskStatus::Failed,
        exit_code: None,
        attempts: 0,
        wall_seconds: 0.0,
        failure: Some(why.to_owned()),
        requeues: 0,
    }
}

/// Microsoft Entra ID credential for Batch, chosen from the environment: a service principal
/// secret, workload identity, managed identity, else the developer's Azure CLI / azd login.
fn entra_credential()
-> std::result::Result<Arc<dyn azure_core::credentials::TokenCredential>, String> {
    use azure_identity::{
        ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
        WorkloadIdentityCredential,
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let fail = |what: &str, e: azure_core::Error| format!("Entra ID ({what}): {e}");
    if let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        return ClientSecretCredential::new(&tenant, client, secret.into(), None)
            .map(|c| c as Arc<dyn azure_core::credentials::TokenCredential>)
            .map_err(|e| fail("client secret", e));
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return WorkloadIdentityCredential::new(None)
            .map(|c| c as Arc<dyn azure_core::credentials::TokenCredential>)
            .map_err(|e| fail("workload identity", e));
    }
    if var("IDENTITY_ENDPOINT").is_some() || var("AZURE_BATCH_USE_MANAGED_IDENTITY").is_some() {
        return ManagedIdentityCredential::new(None)
            .map(|c| c as Arc<dyn azure_core::credentials::TokenCredential>)
            .map_err(|e| fail("managed identity", e));
    }
    DeveloperToolsCredential::new(None)
        .map(|c| c as Arc<dyn azure_core::credentials::TokenCredential>)
        .map_err(|e| fail("Azure CLI login", e))
}

/// Pretty JSON of a request body for `--dry-run`.
fn pretty<T: serde::Serialize>(body: &T) -> String {
    serde_json::to_string_pretty(body).expect("request bodies serialise")
}

impl Backend for AzureBatch {
    async fn cleanup_all(&self) -> Result<Option<String>> {
        // The inherent `cleanup_all` (a path names it before the trait's).
        AzureBatch::cleanup_all(self).await.map(Some)
    }

    fn describe_dry_run(&self, planned: &crate::pipeline::Planned) -> Option<String> {
        Some(self.describe_planned(planned))
    }

    fn name(&self) -> &'static str {
        NAME
    }

    async fn stage(&self, run: &RunContext, plan: &StagePlan) -> Result<Staged> {
        self.sizes
            .lock()
            .expect("lock")
            .extend(plan.inputs.iter().map(|o| (o.digest.clone(), o.size)));
        self.local_inputs
            .lock()
            .expect("lock")
            .extend(self.local_of(plan));
        self.storage.stage(&run.run_id, plan).await.map_err(err)
    }

    async fn execute(
        &self,
        run: &RunContext,
        staged: &Staged,
        tasks: Vec<TaskSpec>,
        events: mpsc::UnboundedSender<TaskEvent>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        self.execute_inner(run, staged, tasks, &events, &shutdown)
            .await
            .map_err(err)
    }

    /// Deletes the run's jobs and pools (found by their `orchestrator-run` metadata, so this
    /// works after a crash) and the run's two storage containers (staged inputs, outputs).
    async fn cleanup(&self, run: &RunContext) -> Result<()> {
        let mut problems = Vec::new();
        let this_run = |m: &[NameValue]| model::has_tag(m, model::RUN_METADATA_KEY, &run.run_id);
        self.delete_tagged(&this_run, &mut problems).await;
        match self.storage.delete_run(&run.run_id).await {
            Ok(()) => {
                tracing::info!("deleted the run's storage containers (staged inputs and outputs)")
            }
            Err(e) => problems.push(e),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(err(problems.join("; ")))
        }
    }

    fn staged_locations(&self, run: &RunContext, plan: &StagePlan) -> Staged {
        Staged {
            trainer: self.storage.object_url(&run.run_id, &plan.trainer.digest),
            inputs: plan
                .inputs
                .iter()
                .map(|o| {
                    (
                        o.digest.clone(),
                        self.storage.object_url(&run.run_id, &o.digest),
                    )
                })
                .collect(),
        }
    }

    fn task_command(&self, _run: &RunContext, staged: &Staged, task: &TaskSpec) -> Vec<String> {
        let x = tasks::TaskInputs {
            trainer_path: &tasks::node_trainer(object_digest(&staged.trainer)),
            input_url: "",
            output_container_url: "",
            output_prefix: "",
            max_retries: 0,
            timeout: None,
            retention: Duration::ZERO,
        };
        match tasks::build_task(task, &x) {
            Ok(t) => vec![t.command_line],
            Err(e) => vec![format!("(not submittable: {e})")],
        }
    }

    /// Batch runs as many tasks as the pool has slots; `--concurrency` does not apply.
    fn describe_concurrency(&self, _concurrency: usize) -> String {
        "as many at once as the pool has task slots (nodes x --task-slots)".to_owned()
    }

    /// vCPUs of one node shared by its task slots (`Standard_D4s_v5` with 2 slots: 2 each).
    fn worker_cores(&self) -> usize {
        (config::vcpus(&self.cfg.vm_size) / self.cfg.task_slots.max(1) as usize).max(1)
    }
}
