//! What the Azure Batch backend needs to know, from the environment and the command line.
//! Secrets are read here and handed to the client; they are never printed (`Debug` hides them).

use std::time::Duration;

use reqwest::Url;

use crate::backend::kit::pack::InputsPerTask;

/// The newest stable data-plane api-version, as published in the `BatchService.json` this
/// project validates against (its `info.version` and every example say `2025-06-01`).
pub const DEFAULT_API_VERSION: &str = "2025-06-01";

/// How the backend authenticates to Batch.
#[derive(Clone)]
pub enum BatchAuth {
    /// `AZURE_BATCH_ACCOUNT_KEY`: Batch's own Shared Key scheme.
    SharedKey(String),
    /// Microsoft Entra ID through the credential chain (client secret, workload identity,
    /// managed identity, then Azure CLI / azd login).
    EntraId,
}

impl std::fmt::Debug for BatchAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchAuth::SharedKey(_) => f.write_str("SharedKey(<hidden>)"),
            BatchAuth::EntraId => f.write_str("EntraId"),
        }
    }
}

/// Where tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMode {
    /// A named pool, created if missing (deleted at the end only if this run created it and
    /// `keep_pool` is off).
    Named {
        /// Pool id; `None` means `orch-<run-id>`.
        pool_id: Option<String>,
    },
    /// `autoPoolSpecification` with `poolLifetimeOption: job`: Batch deletes it with the job.
    Auto,
}

/// Everything configurable about the backend.
#[derive(Debug, Clone)]
pub struct AzureBatchConfig {
    /// `https://ACCOUNT.REGION.batch.azure.com`.
    pub account_url: String,
    /// The Batch account name (signed into Shared Key requests).
    pub account_name: String,
    /// Shared Key or Entra ID.
    pub auth: BatchAuth,
    /// Data-plane api-version sent on every call.
    pub api_version: String,
    /// Named pool or auto-pool.
    pub pool: PoolMode,
    /// VM size (x86_64 only: the trainer is a static x86_64 binary).
    pub vm_size: String,
    /// Dedicated nodes (ignored with an autoscale formula).
    pub dedicated_nodes: u32,
    /// Spot (low-priority) nodes (ignored with an autoscale formula).
    pub spot_nodes: u32,
    /// Autoscale formula; replaces the fixed node counts.
    pub autoscale_formula: Option<String>,
    /// Tasks per node.
    pub task_slots: u32,
    /// Image SKU override (`server`, `server-gen1`); `None` picks one by VM size.
    pub image_sku: Option<String>,
    /// Keep the pool after the run (named pools only).
    pub keep_pool: bool,
    /// Job-level wall-clock cap; also sizes the SAS lifetime.
    pub job_timeout: Duration,
    /// How long Batch keeps a finished task's directory on the node.
    pub task_retention: Duration,
    /// Parallel `addtaskcollection` submitters.
    pub submitters: usize,
    /// Monitoring poll interval.
    pub poll_interval: Duration,
    /// How long a pool may sit with zero nodes and no resize error before the watchdog warns.
    pub pool_stall_warning: Duration,
    /// Inputs per Batch task (`--inputs-per-task`).
    pub inputs_per_task: InputsPerTask,
}

impl AzureBatchConfig {
    /// Reads `AZURE_BATCH_ACCOUNT_URL`, `AZURE_BATCH_ACCOUNT_NAME` (defaults to the URL's first
    /// host label), `AZURE_BATCH_ACCOUNT_KEY` (else Entra ID) and `AZURE_BATCH_API_VERSION`.
    /// Everything else starts at its default; the CLI overrides it.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Self::from_env`] over any variable source (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let non_empty = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let account_url = non_empty("AZURE_BATCH_ACCOUNT_URL").ok_or(
            "AZURE_BATCH_ACCOUNT_URL is not set: export it as https://ACCOUNT.REGION.batch.azure.com \
             (az batch account show -n ACCOUNT -g GROUP --query accountEndpoint)",
        )?;
        let url = Url::parse(&account_url)
            .map_err(|e| format!("AZURE_BATCH_ACCOUNT_URL `{account_url}` is not a URL: {e}"))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "AZURE_BATCH_ACCOUNT_URL `{account_url}` must use https (plain http is only accepted for a local stand-in on loopback)"
            ));
        }
        let account_name = match non_empty("AZURE_BATCH_ACCOUNT_NAME") {
            Some(n) => n,
            None if !loopback => host.split('.').next().unwrap_or_default().to_owned(),
            None => {
                return Err(
                    "AZURE_BATCH_ACCOUNT_NAME is not set (required for a loopback account URL)"
                        .into(),
                );
            }
        };
        let auth = match non_empty("AZURE_BATCH_ACCOUNT_KEY") {
            Some(k) => BatchAuth::SharedKey(k),
            None => BatchAuth::EntraId,
        };
        let api_version =
            non_empty("AZURE_BATCH_API_VERSION").unwrap_or_else(|| DEFAULT_API_VERSION.into());
        Ok(Self {
            account_url,
            account_name,
            auth,
            api_version,
            pool: PoolMode::Auto,
            vm_size: "Standard_D2s_v3".into(),
            dedicated_nodes: 1,
            spot_nodes: 0,
            autoscale_formula: None,
            task_slots: 2,
            image_sku: None,
            keep_pool: false,
            job_timeout: Duration::from_secs(24 * 3600),
            // Long enough to read a finished task's files on the node; short enough that
            // thousands of finished task directories do not fill a node's disk.
            task_retention: Duration::from_secs(10 * 60),
            submitters: 4,
            poll_interval: Duration::from_secs(5),
            pool_stall_warning: Duration::from_secs(15 * 60),
            inputs_per_task: InputsPerTask::Auto,
        })
    }

    /// Checks combinations the service would reject later (or that would cost money for nothing).
    pub fn validate(&self) -> Result<(), String> {
        if is_arm64_vm_size(&self.vm_size) {
            return Err(format!(
                "VM size `{}` is Arm64, but the trainer is a static x86_64 binary: pick an x86_64 size such as Standard_D2s_v5",
                self.vm_size
            ));
        }
        if self.autoscale_formula.is_none() && self.dedicated_nodes + self.spot_nodes == 0 {
            return Err("the pool would have no nodes: set --nodes or --spot-nodes (or an autoscale formula)".into());
        }
        if self.task_slots == 0 || self.task_slots > 256 {
            return Err(format!(
                "--task-slots {} is out of range 1..=256",
                self.task_slots
            ));
        }
        if self.submitters == 0 {
            return Err("at least one task submitter is needed".into());
        }
        if let PoolMode::Named { pool_id: Some(id) } = &self.pool {
            check_batch_id(id).map_err(|e| format!("--pool-id: {e}"))?;
        }
        Ok(())
    }
}

/// Overrides from the command line (each also an `ORCHESTRATOR_AZURE_*` variable) or the
/// `[azure_batch]` table of the TOML file; flags win over the file, the file over defaults.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AzureBatchOptions {
    /// Reuse or create this named pool instead of an auto-pool.
    pub pool_id: Option<String>,
    /// An auto-pool that lives and dies with the job (the default); `false` means the named
    /// pool `orch-<run-id>`.
    pub auto_pool: Option<bool>,
    /// VM size.
    pub vm_size: Option<String>,
    /// Dedicated nodes.
    pub nodes: Option<u32>,
    /// Spot nodes.
    pub spot_nodes: Option<u32>,
    /// Autoscale formula (replaces the node counts).
    pub autoscale_formula: Option<String>,
    /// Task slots per node.
    pub task_slots: Option<u32>,
    /// Ubuntu image SKU (`server`, `server-gen1`).
    pub image_sku: Option<String>,
    /// Keep the pool after the run.
    pub keep_pool: Option<bool>,
    /// Data-plane api-version.
    pub api_version: Option<String>,
    /// Job wall-clock cap (`12h`, `90m`).
    pub job_timeout: Option<String>,
    /// Monitoring poll interval (`5s`).
    pub poll_interval: Option<String>,
    /// Parallel task submitters.
    pub submitters: Option<usize>,
    /// How long a finished task's directory stays on its node (`10m`).
    pub task_retention: Option<String>,
    /// Inputs per Batch task: `auto` or 1 to 1000 (`inputs-per-task = 50` or `"auto"`).
    #[serde(default, deserialize_with = "number_or_text")]
    pub inputs_per_task: Option<String>,
}

/// `inputs-per-task = 50` and `inputs-per-task = "50"` both mean 50 in the TOML file.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(u64),
        S(String),
    }
    Ok(Option::<V>::deserialize(d)?.map(|v| match v {
        V::N(n) => n.to_string(),
        V::S(s) => s,
    }))
}

impl AzureBatchOptions {
    /// `self` where set, else `other`.
    pub fn or(self, other: AzureBatchOptions) -> AzureBatchOptions {
        AzureBatchOptions {
            pool_id: self.pool_id.or(other.pool_id),
            auto_pool: self.auto_pool.or(other.auto_pool),
            vm_size: self.vm_size.or(other.vm_size),
            nodes: self.nodes.or(other.nodes),
            spot_nodes: self.spot_nodes.or(other.spot_nodes),
            autoscale_formula: self.autoscale_formula.or(other.autoscale_formula),
            task_slots: self.task_slots.or(other.task_slots),
            image_sku: self.image_sku.or(other.image_sku),
            keep_pool: self.keep_pool.or(other.keep_pool),
            api_version: self.api_version.or(other.api_version),
            job_timeout: self.job_timeout.or(other.job_timeout),
            poll_interval: self.poll_interval.or(other.poll_interval),
            submitters: self.submitters.or(other.submitters),
            task_retention: self.task_retention.or(other.task_retention),
            inputs_per_task: self.inputs_per_task.or(other.inputs_per_task),
        }
    }
}

impl AzureBatchConfig {
    /// The environment, then `file` (the `[azure_batch]` table), then `flags` on top.
    pub fn from_options(
        flags: AzureBatchOptions,
        file: Option<&toml::Table>,
    ) -> Result<Self, String> {
        let file: AzureBatchOptions = match file {
            Some(t) => t
                .clone()
                .try_into()
                .map_err(|e| format!("[azure_batch] in the configuration file: {e}"))?,
            None => AzureBatchOptions::default(),
        };
        let o = flags.or(file);
        let mut c = Self::from_env()?;
        let duration = |what: &str, v: &str| {
            crate::config::parse_duration(v).map_err(|e| format!("{what}: {e}"))
        };
        if let Some(v) = o.api_version {
            c.api_version = v;
        }
        let keep_pool = o.keep_pool.unwrap_or(false);
        // An auto-pool unless a named pool is asked for: Batch deletes an auto-pool with its
        // job, so even a killed orchestrator leaves nothing billing past the job's end
        // (docs/azure.md, "Cost after a crash").
        c.pool = match (o.auto_pool, o.pool_id) {
            (Some(true), Some(_)) => {
                return Err("--auto-pool and --pool-id exclude each other".into());
            }
            (Some(true), None) if keep_pool => {
                return Err("--keep-pool needs a named pool; drop --auto-pool".into());
            }
            (_, Some(id)) => PoolMode::Named { pool_id: Some(id) },
            (auto, None) if auto == Some(false) || keep_pool => PoolMode::Named { pool_id: None },
            (_, None) => PoolMode::Auto,
        };
        if let Some(v) = o.vm_size {
            c.vm_size = v;
        }
        if let Some(v) = o.nodes {
            c.dedicated_nodes = v;
        }
        if let Some(v) = o.spot_nodes {
            c.spot_nodes = v;
            if o.nodes.is_none() {
                // Asking for spot nodes alone means no dedicated ones.
                c.dedicated_nodes = 0;
            }
        }
        c.autoscale_formula = o.autoscale_formula;
        if let Some(v) = o.task_slots {
            c.task_slots = v;
        }
        c.image_sku = o.image_sku;
        c.keep_pool = keep_pool;
        if let Some(v) = o.job_timeout {
            c.job_timeout = duration("--job-timeout", &v)?;
        }
        if let Some(v) = o.poll_interval {
            c.poll_interval = duration("--batch-poll-interval", &v)?;
        }
        if let Some(v) = o.submitters {
            c.submitters = v;
        }
        if let Some(v) = o.task_retention {
            c.task_retention = duration("--task-retention", &v)?;
        }
        if let Some(v) = o.inputs_per_task {
            c.inputs_per_task = v.parse()?;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Batch ids: 1-64 characters of letters, digits, hyphens and underscores.
pub(crate) fn check_batch_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{id}` is not a valid Batch id (1-64 letters, digits, '-' or '_')"
        ));
    }
    Ok(())
}

/// Splits `Standard_D2ps_v5` into (family letters, capability letters after the vCPU count).
fn vm_size_parts(vm_size: &str) -> (String, String) {
    let name = vm_size.split('_').nth(1).unwrap_or(vm_size);
    let family: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let rest = &name[family.len()..];
    let caps: String = rest
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    (family.to_ascii_uppercase(), caps.to_ascii_lowercase())
}

/// Arm64 (Ampere/Cobalt) sizes carry a `p` among the capability letters after the vCPU count:
/// `Standard_D2ps_v5`, `Standard_E4pds_v6`, `Standard_B2pts_v2`. (`NP` is an x86 FPGA family:
/// its `P` is part of the family name, before the digits.)
pub fn is_arm64_vm_size(vm_size: &str) -> bool {
    vm_size_parts(vm_size).1.contains('p')
}

/// Whether a size only boots Generation 1 images (Ubuntu `server-gen1`). Gen1-only: the
/// A, Av2, D/DS v1-v2, F/Fs (v1), G/GS, H and NC/NV v1 families and `Basic_*`.
pub fn needs_gen1_image(vm_size: &str) -> bool {
    let lower = vm_size.to_ascii_lowercase();
    if lower.starts_with("basic_") {
        return true;
    }
    let version = lower
        .rsplit_once("_v")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(1);
    let (family, _) = vm_size_parts(vm_size);
    match family.as_str() {
        "A" => true,
        "D" | "DS" => version <= 2,
        "F" => version == 1,
        "G" | "GS" | "H" => true,
        "NC" | "NV" => version == 1,
        _ => false,
    }
}

/// vCPUs of a size, read from its name (`Standard_D4s_v5` -> 4); 1 when the name says nothing.
pub(crate) fn vcpus(vm_size: &str) -> usize {
    let name = vm_size.split('_').nth(1).unwrap_or(vm_size);
    let digits: String = name
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap_or(1).max(1)
}

/// The quota family name Azure reports for a size, e.g. `standardDSv3Family`, for messages.
pub(crate) fn quota_family(vm_size: &str) -> String {
    let (family, caps) = vm_size_parts(vm_size);
    let version = vm_size
        .rsplit_once("_v")
        .map(|(_, v)| format!("v{v}"))
        .unwrap_or_default();
    let s = if caps.contains('s') && !family.ends_with('S') {
        "S"
    } else {
        ""
    };
    format!("standard{family}{s}{version}Family")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect();
        move |k| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
    }

    #[test]
    fn env_with_key_and_derived_name() {
        let c = AzureBatchConfig::from_lookup(env(&[
            (
                "AZURE_BATCH_ACCOUNT_URL",
                "https://myacct.westeurope.batch.azure.com",
            ),
            ("AZURE_BATCH_ACCOUNT_KEY", "a2V5"),
        ]))
        .unwrap();
        assert_eq!(c.account_name, "myacct");
        assert_eq!(c.api_version, DEFAULT_API_VERSION);
        assert!(matches!(c.auth, BatchAuth::SharedKey(_)));
        assert!(
            !format!("{c:?}").contains("a2V5"),
            "Debug must hide the key"
        );
    }

    #[test]
    fn env_without_key_means_entra_and_http_only_on_loopback() {
        let c = AzureBatchConfig::from_lookup(env(&[
            ("AZURE_BATCH_ACCOUNT_URL", "http://127.0.0.1:8080"),
            ("AZURE_BATCH_ACCOUNT_NAME", "devstoreaccount"),
            ("AZURE_BATCH_API_VERSION", "2024-07-01.20.0"),
        ]))
        .unwrap();
        assert!(matches!(c.auth, BatchAuth::EntraId));
        assert_eq!(c.api_version, "2024-07-01.20.0");
        let e = AzureBatchConfig::from_lookup(env(&[(
            "AZURE_BATCH_ACCOUNT_URL",
            "http://acct.batch.azure.com",
        )]))
        .unwrap_err();
        assert!(e.contains("https"), "{e}");
        let e = AzureBatchConfig::from_lookup(env(&[])).unwrap_err();
        assert!(e.contains("AZURE_BATCH_ACCOUNT_URL"), "{e}");
    }

    #[test]
    fn arm_sizes_are_refused() {
        for arm in [
            "Standard_D2ps_v5",
            "Standard_E4pds_v6",
            "Standard_B2pts_v2",
            "Standard_D8plds_v6",
        ] {
            assert!(is_arm64_vm_size(arm), "{arm}");
        }
        for x86 in [
            "Standard_D2s_v3",
            "Standard_NP10s",
            "Standard_HB120rs_v3",
            "Standard_D2ads_v5",
            "Standard_F2s_v2",
        ] {
            assert!(!is_arm64_vm_size(x86), "{x86}");
        }
        let mut c = AzureBatchConfig::from_lookup(env(&[(
            "AZURE_BATCH_ACCOUNT_URL",
            "https://a.b.batch.azure.com",
        )]))
        .unwrap();
        c.vm_size = "Standard_D2ps_v5".into();
        assert!(c.validate().unwrap_err().contains("Arm64"));
    }

    #[test]
    fn gen1_sizes_and_quota_families() {
        assert!(needs_gen1_image("Standard_D1_v2"));
        assert!(needs_gen1_image("Standard_DS1_v2"));
        assert!(needs_gen1_image("Standard_A2_v2"));
        assert!(!needs_gen1_image("Standard_D2s_v3"));
        assert!(!needs_gen1_image("Standard_F2s_v2"));
        assert_eq!(quota_family("Standard_D2s_v3"), "standardDSv3Family");
        assert_eq!(quota_family("Standard_F2s_v2"), "standardFSv2Family");
        assert_eq!(quota_family("Standard_D2_v2"), "standardDv2Family");
    }
}
