//! Command-line flags (`batch-standin --listen 127.0.0.1:PORT ...`), checked
//! into a [`Config`]. Nothing else in the crate knows about clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use clap::Parser;

use crate::{Config, Error, Fault};

/// A local stand-in for the Azure Batch data-plane REST service.
///
/// Faults can be armed at start-up with --fault and at run time with
/// `POST /_standin/faults` (JSON body: one fault or a list). Fault kinds:
/// status (429/503/... with retryAfter), drop (close the connection, after:
/// true to do the work first), bodyLimit (413 RequestBodyTooLarge above
/// bytes), preempt (requeue the next running task), resizeError (pool
/// allocation fails with a code), taskServerError (per-task servererror in
/// addtaskcollection), jobQuota (409 ActiveJobAndScheduleQuotaReached),
/// autoPoolFailure (an auto-pool job completes with a schedulingError).
#[derive(Debug, Parser)]
#[command(name = "batch-standin", version)]
pub struct Cli {
    /// Address to listen on, e.g. 127.0.0.1:8765 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Batch account name the Shared Key signature must name.
    #[arg(long, env = "BATCH_STANDIN_ACCOUNT_NAME", default_value = "standin")]
    pub account_name: String,
    /// Base64 account key for Shared Key auth (read from the environment so
    /// it stays out of `ps`).
    #[arg(long = "account-key-env", default_value = "BATCH_STANDIN_ACCOUNT_KEY")]
    pub account_key_env: String,
    /// Environment variable holding a static bearer token to accept.
    #[arg(
        long = "bearer-token-env",
        default_value = "BATCH_STANDIN_BEARER_TOKEN"
    )]
    pub bearer_token_env: String,
    /// Directory for node and task directories.
    #[arg(long, default_value = "batch-standin-work")]
    pub work_dir: PathBuf,
    /// Task processes allowed at once on this machine.
    #[arg(long)]
    pub max_concurrent_tasks: Option<usize>,
    /// Milliseconds a pool spends `resizing` before its nodes are idle.
    #[arg(long, default_value_t = 200)]
    pub allocation_delay_ms: u64,
    /// How long a deleted job stays `deleting`, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub job_deletion_delay_ms: u64,
    /// How long `taskcounts` may lag the tasks' states, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub task_counts_lag_ms: u64,
    /// Nodes an autoscale pool gets (formulas are not evaluated).
    #[arg(long, default_value_t = 2)]
    pub autoscale_nodes: u32,
    /// A fault to arm at start-up, as JSON, e.g.
    /// '{"kind":"status","status":429,"count":3,"retryAfter":1}'. Repeatable.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Refuse request bodies larger than this many bytes (default: 1 MiB,
    /// the service's limit).
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// The account's active job quota.
    #[arg(long, default_value_t = 300)]
    pub max_active_jobs: usize,
    /// Each node's disk in bytes (task directories and the shared directory); a node whose
    /// files exceed it turns `unusable`. Default: unlimited.
    #[arg(long)]
    pub node_disk_bytes: Option<u64>,
    /// Print the bound account URL on stdout once listening (for scripts).
    #[arg(long)]
    pub print_url: bool,
}

impl Cli {
    /// Parses `std::env::args` (exits with usage on bad flags).
    pub fn from_args() -> Cli {
        <Cli as Parser>::parse()
    }
}

impl TryFrom<Cli> for Config {
    type Error = Error;

    fn try_from(cli: Cli) -> Result<Config, Error> {
        let mut c = Config::new(cli.listen, &cli.account_name, cli.work_dir);
        c.credentials.account_key = match std::env::var(&cli.account_key_env) {
            Ok(k) if !k.is_empty() => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .map_err(Error::AccountKey)?,
            ),
            _ => None,
        };
        c.credentials.bearer_token = std::env::var(&cli.bearer_token_env)
            .ok()
            .filter(|t| !t.is_empty());
        if let Some(n) = cli.max_concurrent_tasks {
            c.max_concurrent_tasks = n.max(1);
        }
        c.allocation_delay = Duration::from_millis(cli.allocation_delay_ms);
        c.job_deletion_delay = Duration::from_millis(cli.job_deletion_delay_ms);
        c.task_counts_lag = Duration::from_millis(cli.task_counts_lag_ms);
        c.autoscale_nodes = cli.autoscale_nodes;
        c.max_active_jobs = cli.max_active_jobs;
        c.node_disk_bytes = cli.node_disk_bytes;
        if let Some(b) = cli.max_body_bytes {
            c.max_body_bytes = b;
        }
        for f in cli.faults {
            let fault: Fault = serde_json::from_str(&f).map_err(|e| Error::Fault {
                spec: f.clone(),
                reason: e.to_string(),
            })?;
            c.faults.push(fault);
        }
        Ok(c)
    }
}
