//! [`AzureBatchBuilder`]: the backend from explicit settings. The command line reads the
//! storage account from the environment; a test or a program embedding the backend passes it
//! here instead (edition 2024 rules out setting environment variables in-process), as
//! `object_store`'s `MicrosoftAzureBuilder` takes its account explicitly.

use std::sync::Arc;

use super::client::{self, Auth, BatchClient, RetryPolicy};
use super::config::{AzureBatchConfig, BatchAuth};
use super::storage::Storage;
use super::{AzureBatch, entra_credential, err};
use crate::Result;

/// Builds an [`AzureBatch`]; see [`AzureBatch::builder`].
#[derive(Debug)]
pub struct AzureBatchBuilder {
    cfg: AzureBatchConfig,
    storage: Option<azure_staging::StorageConfig>,
    container_prefix: Option<String>,
}

impl AzureBatch {
    /// A builder for the backend of `cfg` (from [`AzureBatchConfig::from_lookup`] or
    /// [`AzureBatchConfig::from_env`]). Without [`AzureBatchBuilder::storage`], the storage
    /// account comes from `AZURE_STORAGE_*` and the container prefix from
    /// `ORCHESTRATOR_AZURE_CONTAINER_PREFIX`.
    pub fn builder(cfg: AzureBatchConfig) -> AzureBatchBuilder {
        AzureBatchBuilder {
            cfg,
            storage: None,
            container_prefix: None,
        }
    }
}

impl AzureBatchBuilder {
    /// The storage account to stage through, instead of the environment's.
    pub fn storage(mut self, config: azure_staging::StorageConfig) -> Self {
        self.storage = Some(config);
        self
    }

    /// Container names start with `prefix` (default `orch`); `cleanup --all` keeps to it.
    pub fn container_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.container_prefix = Some(prefix.into());
        self
    }

    /// Checks the configuration and makes the clients (nothing is sent yet).
    pub async fn build(self) -> Result<AzureBatch> {
        let cfg = self.cfg;
        cfg.validate().map_err(err)?;
        let auth = match &cfg.auth {
            BatchAuth::SharedKey(k) => Auth::SharedKey {
                account: cfg.account_name.clone(),
                key: client::decode_key(k).map_err(err)?,
            },
            // Cached: the Azure CLI credential would otherwise run `az` for every call.
            BatchAuth::EntraId => Auth::Entra(Arc::new(azure_staging::CachedCredential::new(
                entra_credential().map_err(err)?,
            ))),
        };
        let client = BatchClient::new(
            &cfg.account_url,
            &cfg.api_version,
            auth,
            RetryPolicy::default(),
        )
        .map_err(|e| err(e.to_string()))?;
        let storage = match self.storage {
            Some(config) => Storage::new(config, self.container_prefix),
            None => Storage::from_env(self.container_prefix),
        }
        .map_err(err)?;
        Ok(AzureBatch {
            cfg,
            client: Arc::new(client),
            storage,
            sizes: Default::default(),
            local_inputs: Default::default(),
        })
    }
}
