//! `batch-standin`: a local stand-in for the Azure Batch data-plane REST
//! service, for tests and demos.
//!
//! It routes and validates every request against Microsoft's
//! `BatchService.json` (embedded), checks Batch Shared Key signatures (or a
//! configured bearer token), really runs tasks on this machine (resource-file
//! downloads, `AZ_BATCH_*` variables, output-file uploads to a container SAS
//! URL, retries, wall-clock limits) and injects faults on request.
//!
//! ```no_run
//! # async fn demo() -> batch_standin::Result<()> {
//! let mut config = batch_standin::Config::new("127.0.0.1:0".parse().unwrap(), "standin", "/tmp/standin".into());
//! config.credentials.account_key = Some(b"any key bytes".to_vec());
//! let handle = batch_standin::serve(config).await?;
//! println!("Batch account URL: {}", handle.url());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod casing;
pub mod cli;
mod error;
mod faults;
mod files;
mod odata;
mod response;
mod runner;
mod server;
mod spec;
mod starttask;
mod state;
mod timefmt;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use auth::{Credentials, sign, string_to_sign};
pub use error::{Error, Result};
pub use faults::Fault;

/// Stable data-plane api-versions the stand-in answers. Bodies are always
/// validated against the 2025-06-01 spec.
pub const API_VERSIONS: &[&str] = &[
    "2025-06-01.21.0",
    "2025-06-01",
    "2024-07-01.20.0",
    "2024-02-01.19.0",
    "2023-11-01.18.0",
];

/// How the stand-in runs. Build with [`Config::new`], then adjust fields.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub credentials: Credentials,
    /// Node root: task directories live below it.
    pub work_dir: PathBuf,
    /// Task processes allowed at once across all pools, whatever the pools'
    /// slot counts say (this machine is the only "VM").
    pub max_concurrent_tasks: usize,
    /// Nodes an autoscale pool gets (formulas are not evaluated).
    pub autoscale_nodes: u32,
    /// How long a pool stays `resizing` before its nodes are idle.
    pub allocation_delay: Duration,
    /// How long a deleted job stays `deleting` (answering `JobBeingDeleted`) before it is gone.
    pub job_deletion_delay: Duration,
    /// The least time a terminated job stays `terminating` (answering `JobBeingTerminated`).
    pub job_termination_delay: Duration,
    /// How stale `taskcounts` may be: the service documents that the counts can lag the
    /// tasks' states. A job's counts are recomputed at most this often (zero: always fresh).
    pub task_counts_lag: Duration,
    pub api_versions: Vec<String>,
    /// Faults armed at start-up.
    pub faults: Vec<Fault>,
    /// The service's body size limit, 1 MiB, which it applies to the body's size in UTF-16
    /// (so an ASCII body must stay under 512 KiB). A `bodyLimit` fault replaces it.
    pub max_body_bytes: usize,
    /// Validate every JSON success body the stand-in sends against the
    /// operation's response schema; a mismatch (a stand-in bug) becomes a
    /// 500 `StandInResponseInvalid` instead of silently misleading a client.
    pub check_responses: bool,
    /// Each node's disk, in bytes, for task directories (kept for their `retentionTime`) and
    /// the shared directory: a node whose files exceed it turns `unusable`, as a Batch node
    /// with a full disk does. `None`: unlimited.
    pub node_disk_bytes: Option<u64>,
    /// The account's active job quota (active, disabled and terminating
    /// jobs count); job creation beyond it gets 409
    /// `ActiveJobAndScheduleQuotaReached`, as on the service.
    pub max_active_jobs: usize,
}

impl Config {
    pub fn new(listen: SocketAddr, account_name: &str, work_dir: PathBuf) -> Config {
        Config {
            listen,
            credentials: Credentials {
                account_name: account_name.to_owned(),
                account_key: None,
                bearer_token: None,
            },
            work_dir,
            max_concurrent_tasks: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            autoscale_nodes: 2,
            allocation_delay: Duration::from_millis(200),
            job_deletion_delay: Duration::from_secs(1),
            job_termination_delay: Duration::from_millis(300),
            task_counts_lag: Duration::ZERO,
            api_versions: API_VERSIONS.iter().map(|s| (*s).to_owned()).collect(),
            faults: Vec::new(),
            max_body_bytes: 1024 * 1024,
            check_responses: true,
            max_active_jobs: 300,
            node_disk_bytes: None,
        }
    }
}

/// State shared by the HTTP side and the task runners.
pub(crate) struct Shared {
    pub config: Config,
    pub spec: spec::Spec,
    pub state: Mutex<state::State>,
    pub faults: faults::Faults,
    /// Wakes the scheduler when a slot frees up or a task is queued.
    pub wake: Notify,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub base_url: String,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        // A panic while holding the lock is a bug; keep serving rather than
        // poisoning every later request.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A node's root directory, `WORK/pools/<pool>/nodes/<node>` (its `startup`, `shared` and
    /// `workitems` directories).
    pub(crate) fn node_root(&self, pool_id: &str, node_id: &str) -> std::path::PathBuf {
        let pools = self.config.work_dir.join("pools");
        pools.join(pool_id).join("nodes").join(node_id)
    }
}

/// A running stand-in. Dropping it stops the server and kills running tasks.
pub struct Handle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    join: Option<tokio::task::JoinHandle<()>>,
    /// Fires to close the port (see [`Handle::stop_serving`]).
    serving: CancellationToken,
}

impl Handle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The account URL clients should use, e.g. `http://127.0.0.1:43125`.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Arms a fault, as `POST /_standin/faults` does.
    pub fn arm(&self, fault: Fault) {
        self.shared.faults.arm(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Resource-file downloads so far by URL without its query: how often nodes fetched a blob.
    pub fn downloads(&self) -> std::collections::HashMap<String, u64> {
        self.shared.lock().downloads.clone()
    }

    /// The most task processes that ran at once so far.
    pub fn peak_running(&self) -> usize {
        self.shared.lock().peak_running
    }

    /// An outage: closes the port and cuts every open connection, so clients get connection
    /// errors, while the account goes on (tasks run, jobs end, as Batch's would while a client
    /// cannot reach it). [`Handle::serve_again`] ends it.
    pub async fn stop_serving(&mut self) {
        self.serving.cancel();
        if let Some(j) = self.join.take() {
            let _ = j.await;
        }
        tracing::info!(addr = %self.addr, "batch stand-in stopped serving (outage)");
    }

    /// Serves again on the same address, with the same state, after [`Handle::stop_serving`].
    pub async fn serve_again(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: self.addr,
                source,
            })?;
        self.serving = CancellationToken::new();
        self.join = Some(tokio::spawn(server::accept_loop(
            self.shared.clone(),
            listener,
            self.serving.clone(),
        )));
        tracing::info!(addr = %self.addr, "batch stand-in serving again");
        Ok(())
    }

    /// Stops accepting requests and kills every running task.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(j) = self.join.take() {
            let _ = j.await;
        }
        runner::kill_all(&self.shared);
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        runner::kill_all(&self.shared);
    }
}

/// Binds `config.listen` and serves on the current tokio runtime.
pub async fn serve(config: Config) -> Result<Handle> {
    let spec = spec::Spec::load().map_err(Error::Spec)?;
    std::fs::create_dir_all(&config.work_dir).map_err(|source| Error::WorkDir {
        path: config.work_dir.clone(),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(Error::HttpClient)?;
    let faults = faults::Faults::default();
    for f in &config.faults {
        faults.arm(f.clone());
    }
    let shared = Arc::new(Shared {
        spec,
        state: Mutex::new(state::State::default()),
        faults,
        wake: Notify::new(),
        http,
        shutdown: CancellationToken::new(),
        base_url: format!("http://{addr}"),
        config,
    });
    tokio::spawn(runner::scheduler(shared.clone()));
    tokio::spawn(runner::reaper(shared.clone()));
    let serving = CancellationToken::new();
    let join = tokio::spawn(server::accept_loop(
        shared.clone(),
        listener,
        serving.clone(),
    ));
    tracing::info!(%addr, "batch stand-in listening");
    Ok(Handle {
        addr,
        shared,
        join: Some(join),
        serving,
    })
}
