//! Blob Storage for the Batch backend, through the `azure-staging` crate: the run's two
//! containers, content-addressed uploads of the trainer and inputs, SAS URLs for the nodes
//! (read per staged blob, create+write on the output container), downloads of task outputs and
//! deletion of the run's containers. Credentials come from the environment (account key or
//! Microsoft Entra ID with user delegation SAS); see `azure_staging::StorageConfig`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use azure_staging::{LocalObject, Permissions, Resource, StagingClient};

use crate::task::{StagePlan, Staged};

/// Overrides the container name prefix (default `orch`).
const CONTAINER_PREFIX_VAR: &str = "ORCHESTRATOR_AZURE_CONTAINER_PREFIX";

#[derive(Debug)]
pub(crate) struct Storage {
    client: StagingClient,
}

fn text(e: azure_staging::Error) -> String {
    // azure-staging redacts keys and signatures in every message it builds.
    e.to_string()
}

impl Storage {
    /// The account from `AZURE_STORAGE_*`; container names start with `prefix`, else
    /// `ORCHESTRATOR_AZURE_CONTAINER_PREFIX` (default `orch`), which `cleanup --all` also
    /// confines itself to.
    pub(crate) fn from_env(prefix: Option<String>) -> Result<Self, String> {
        let config = azure_staging::StorageConfig::from_env().map_err(text)?;
        let prefix = match prefix {
            Some(p) => Some(p),
            None => match std::env::var(CONTAINER_PREFIX_VAR) {
                Ok(p) if !p.is_empty() => {
                    azure_staging::naming::validate_prefix(&p)
                        .map_err(|e| format!("{CONTAINER_PREFIX_VAR}: {}", text(e)))?;
                    Some(p)
                }
                _ => None,
            },
        };
        Self::new(config, prefix)
    }

    /// The account of `config`; container names start with `prefix` (default `orch`).
    pub(crate) fn new(
        config: azure_staging::StorageConfig,
        prefix: Option<String>,
    ) -> Result<Self, String> {
        // The builder makes one HTTP client that every storage call shares.
        let mut builder = StagingClient::builder(config);
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            azure_staging::naming::validate_prefix(&p)
                .map_err(|e| format!("container prefix `{p}`: {}", text(e)))?;
            builder = builder.container_prefix(p);
        }
        let client = builder.build().map_err(text)?;
        Ok(Self { client })
    }

    /// A storage client for `endpoint` with Azurite's public development key (tests).
    #[cfg(test)]
    pub(crate) fn for_tests(endpoint: &str) -> Self {
        use azure_staging::{AccountKey, Auth, StorageConfig, config::DEV_ACCOUNT_KEY};
        let key = AccountKey::new("devstoreaccount1", DEV_ACCOUNT_KEY).unwrap();
        let config =
            StorageConfig::new(endpoint, "devstoreaccount1", Auth::AccountKey(key)).unwrap();
        let retry = azure_staging::RetryPolicy {
            max_elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        Self {
            client: StagingClient::builder(config).retry(retry).build().unwrap(),
        }
    }

    fn endpoint(&self) -> String {
        self.client
            .config()
            .endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    fn containers(&self, run_id: &str) -> Result<azure_staging::RunContainers, String> {
        self.client.containers(run_id).map_err(text)
    }

    /// Where a staged object lives (no SAS, safe to log and to keep in the manifest).
    pub(crate) fn object_url(&self, run_id: &str, digest: &str) -> String {
        match self.containers(run_id) {
            Ok(c) => format!("{}/{}/{digest}", self.endpoint(), c.inputs),
            Err(e) => format!("(run id unusable for storage: {e})"),
        }
    }

    /// The output container's URL without a SAS.
    pub(crate) fn output_container_base(&self, run_id: &str) -> String {
        match self.containers(run_id) {
            Ok(c) => format!("{}/{}", self.endpoint(), c.outputs),
            Err(e) => format!("(run id unusable for storage: {e})"),
        }
    }

    /// Creates the run's containers and uploads the trainer. The inputs' blob URLs are where
    /// [`Storage::upload`] puts them once the packs are known (small inputs of a pack go up
    /// together, in its bundle).
    pub(crate) async fn stage(&self, run_id: &str, plan: &StagePlan) -> Result<Staged, String> {
        self.client.ensure_containers(run_id).await.map_err(text)?;
        let trainer = &plan.trainer;
        self.upload(
            run_id,
            vec![(trainer.path.clone(), trainer.digest.clone(), trainer.size)],
        )
        .await?;
        Ok(Staged {
            trainer: self.object_url(run_id, &plan.trainer.digest),
            inputs: plan
                .inputs
                .iter()
                .map(|o| {
                    let url = self
                        .in_place(o)
                        .unwrap_or_else(|| self.object_url(run_id, &o.digest));
                    (o.digest.clone(), url)
                })
                .collect(),
        })
    }

    /// Uploads local files `(path, digest, size)` as content-addressed objects of the run's
    /// input container (made by [`Storage::stage`]); one listing of the container decides
    /// what is there already.
    pub(crate) async fn upload(
        &self,
        run_id: &str,
        objects: Vec<(std::path::PathBuf, String, u64)>,
    ) -> Result<(), String> {
        let run = self.containers(run_id)?;
        let objects: Vec<LocalObject> = objects
            .into_iter()
            .map(|(path, digest, size)| LocalObject { path, digest, size })
            .collect();
        // azure-staging logs the one INFO summary (objects, uploaded, bytes) for the call.
        self.client
            .upload_objects(&run, &objects, None)
            .await
            .map_err(text)?;
        Ok(())
    }

    /// Whether `object` already lives in this account (`run az://...`).
    pub(crate) fn is_in_place(&self, object: &crate::task::StageObject) -> bool {
        self.in_place(object).is_some()
    }

    /// An input that already lives in this account (`run az://...`): its blob URL, which
    /// [`Storage::read_url`] signs as it signs staged objects, so tasks read it where it is
    /// and nothing is uploaded or passes through this machine.
    fn in_place(&self, object: &crate::task::StageObject) -> Option<String> {
        let url = object.path.to_str()?;
        url.starts_with(&format!("{}/", self.endpoint()))
            .then(|| url.to_owned())
    }

    /// Read-only SAS URL for a staged object URL.
    pub(crate) async fn read_url(
        &self,
        object_url: &str,
        expiry: SystemTime,
    ) -> Result<String, String> {
        let rest = object_url
            .strip_prefix(&format!("{}/", self.endpoint()))
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| format!("`{object_url}` is not a blob of this storage account"))?;
        let sas = self
            .client
            .sign(Resource::Blob(rest.0, rest.1), Permissions::READ, expiry)
            .await
            .map_err(text)?;
        Ok(sas.expose().to_owned())
    }

    /// Create+write SAS URL of the run's output container (what the nodes upload through);
    /// refused when it would expire before `job_time_limit` from now.
    pub(crate) async fn output_container_url(
        &self,
        run_id: &str,
        expiry: SystemTime,
        job_time_limit: Duration,
    ) -> Result<String, String> {
        let run = self.containers(run_id)?;
        let sas = self
            .client
            .container_write_sas(&run.outputs, expiry)
            .await
            .map_err(text)?;
        azure_staging::ensure_sas_covers(sas.expires_at(), job_time_limit).map_err(text)?;
        Ok(sas.expose().to_owned())
    }

    /// Downloads `name` from the run's output container to `dest` (temp file + rename);
    /// `false` when the blob does not exist.
    pub(crate) async fn download(
        &self,
        run_id: &str,
        name: &str,
        dest: &Path,
    ) -> Result<bool, String> {
        let run = self.containers(run_id)?;
        match self.client.download_blob(&run.outputs, name, dest).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(text(e)),
        }
    }

    /// Every run id with containers under this prefix (from the containers' metadata).
    pub(crate) async fn list_runs(&self) -> Result<Vec<String>, String> {
        self.client.list_runs().await.map_err(text)
    }

    /// Deletes the run's containers (staged inputs and outputs).
    pub(crate) async fn delete_run(&self, run_id: &str) -> Result<(), String> {
        self.client.delete_run(run_id).await.map_err(text)
    }
}
