//! Shared helpers for the tests that need Azure without Azure: Azurite (started through
//! `scripts/azurite.sh`, at `AZURITE_HTTP_PORT`) for Blob Storage and the project's Batch
//! stand-in (in-process, port 0) for the Batch REST API.
#![allow(dead_code, unreachable_pub)] // Each test target uses a different subset.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use batch_standin::Fault;
use orchestrator::backend::azure_batch::AzureBatchConfig;

use crate::util::{repo_root, show};

/// The stand-in's Batch account and its Shared Key (a test value, not a secret).
pub const ACCOUNT: &str = "standin";
pub const KEY: &[u8] = b"batch-standin-test-key-not-a-secret";

/// Azurite's published development account (public, documented, not a secret), at the port
/// `scripts/azurite.sh` uses (`AZURITE_HTTP_PORT`, default 10000).
pub fn azurite_connection(port: u16) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
AccountKey={};BlobEndpoint={};",
        azure_staging::config::DEV_ACCOUNT_KEY,
        azurite_endpoint(port)
    )
}

fn azurite_endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}/devstoreaccount1")
}

pub fn azurite_port() -> u16 {
    std::env::var("AZURITE_HTTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(10000)
}

/// Points `cmd` (an orchestrator) at the stand-in at `url` (Shared Key) and at Azurite's
/// account, with no other Azure credential inherited.
pub fn standin_env(cmd: &mut Command, url: &str) {
    cmd.env("AZURE_BATCH_ACCOUNT_URL", url)
        .env("AZURE_BATCH_ACCOUNT_NAME", ACCOUNT)
        .env(
            "AZURE_BATCH_ACCOUNT_KEY",
            base64::engine::general_purpose::STANDARD.encode(KEY),
        )
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite_connection(azurite_port()),
        )
        .env_remove("AZURE_STORAGE_ACCOUNT")
        .env_remove("AZURE_STORAGE_KEY");
}

/// Starts Azurite (idempotent) or fails loudly.
pub fn azurite() {
    let out = Command::new(repo_root().join("scripts/azurite.sh"))
        .args(["start", "http"])
        .output()
        .expect("run scripts/azurite.sh");
    assert!(
        out.status.success(),
        "scripts/azurite.sh start http failed:\n{}",
        show(&out)
    );
}

/// Azurite's account as an explicit storage configuration (no environment).
pub fn azurite_storage() -> azure_staging::StorageConfig {
    use azure_staging::config::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
    let key = azure_staging::AccountKey::new(DEV_ACCOUNT, DEV_ACCOUNT_KEY).expect("dev key");
    azure_staging::StorageConfig::new(
        &azurite_endpoint(azurite_port()),
        DEV_ACCOUNT,
        azure_staging::Auth::AccountKey(key),
    )
    .expect("Azurite storage config")
}

/// The backend's configuration for the stand-in at `url` (Shared Key, no environment).
pub fn standin_config(url: &str) -> AzureBatchConfig {
    let key = base64::engine::general_purpose::STANDARD.encode(KEY);
    AzureBatchConfig::from_lookup(|k| match k {
        "AZURE_BATCH_ACCOUNT_URL" => Some(url.to_owned()),
        "AZURE_BATCH_ACCOUNT_NAME" => Some(ACCOUNT.to_owned()),
        "AZURE_BATCH_ACCOUNT_KEY" => Some(key.clone()),
        _ => None,
    })
    .expect("stand-in config")
}

pub fn fault(v: serde_json::Value) -> Fault {
    serde_json::from_value(v).expect("fault JSON")
}

/// The Batch stand-in on a free port, with `faults` armed, keeping its state under `dir`.
pub async fn standin(dir: &Path, faults: Vec<Fault>) -> batch_standin::Handle {
    standin_with(dir, faults, |_| {}).await
}

/// [`standin`] with its configuration adjusted (a node disk budget, delays).
pub async fn standin_with(
    dir: &Path,
    faults: Vec<Fault>,
    adjust: impl FnOnce(&mut batch_standin::Config),
) -> batch_standin::Handle {
    let mut c =
        batch_standin::Config::new("127.0.0.1:0".parse().unwrap(), ACCOUNT, dir.join("standin"));
    c.credentials.account_key = Some(KEY.to_vec());
    c.faults = faults;
    adjust(&mut c);
    batch_standin::serve(c)
        .await
        .expect("start the Batch stand-in")
}
