//! Inputs that already live in Blob Storage (`orchestrator run az://ACCOUNT/CONTAINER/PREFIX`),
//! against Azurite (started through `scripts/azurite.sh` at `AZURITE_HTTP_PORT`): listed,
//! downloaded once into the content-addressed cache and verified, trained like local files on
//! the local and Slurm backends; every refusal is one line and creates nothing.

#[path = "util.rs"]
mod util;

#[path = "azure_util.rs"]
mod azure_util;

#[path = "slurm_util.rs"]
mod slurm_util;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

use azure_staging::config::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use azure_staging::sas::{Permissions, Protocol, SasWindow, account_sas};
use azure_util::{azurite, azurite_connection, azurite_port, azurite_storage};
use base64::Engine as _;
use util::{Scratch, golden_default_outputs, row, rows, show, trainer_bin};

/// Azurite's endpoint and an account SAS that may do anything (test setup only).
fn setup_sas() -> (String, String) {
    let key = azure_staging::AccountKey::new(DEV_ACCOUNT, DEV_ACCOUNT_KEY).unwrap();
    let now = SystemTime::now();
    let window = SasWindow {
        start: Some(now - Duration::from_secs(300)),
        expiry: now + Duration::from_secs(3600),
        protocol: Protocol::HttpsAndHttp,
    };
    (
        format!("http://127.0.0.1:{}/{DEV_ACCOUNT}", azurite_port()),
        account_sas(&key, Permissions::ALL, "sco", &window),
    )
}

/// A fresh container (unique per test) holding `blobs` (name, bytes); returns its name.
async fn container_with(blobs: &[(String, Vec<u8>)]) -> String {
    azurite();
    let (endpoint, sas) = setup_sas();
    let http = reqwest::Client::new();
    let name = format!(
        "in-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let status = http
        .put(format!("{endpoint}/{name}?restype=container&{sas}"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "create container: {status}");
    for (blob, bytes) in blobs {
        let status = http
            .put(format!("{endpoint}/{name}/{blob}?{sas}"))
            .header("x-ms-blob-type", "BlockBlob")
            .body(bytes.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "put {blob}: {status}");
    }
    name
}

/// Uploads `bytes` as `blob` in two blocks (Put Block + Put Block List): such a blob has no
/// `Content-MD5`, as large uploads by most tools do not.
async fn put_in_blocks(container: &str, blob: &str, bytes: &[u8]) {
    let (endpoint, sas) = setup_sas();
    let http = reqwest::Client::new();
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let ids = ["YmxvY2stMDAx", "YmxvY2stMDAy"]; // base64 of block-001, block-002
    for (id, part) in ids.iter().zip([a, b]) {
        let status = http
            .put(format!(
                "{endpoint}/{container}/{blob}?comp=block&blockid={id}&{sas}"
            ))
            .body(part.to_vec())
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "put block: {status}");
    }
    let list = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>{}</Latest><Latest>{}</Latest></BlockList>",
        ids[0], ids[1]
    );
    let status = http
        .put(format!(
            "{endpoint}/{container}/{blob}?comp=blocklist&{sas}"
        ))
        .body(list)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "put block list: {status}");
}

/// Overwrites a blob's recorded `Content-MD5` (not its bytes), as a corrupted upload would.
async fn set_content_md5(container: &str, blob: &str, md5: [u8; 16]) {
    let (endpoint, sas) = setup_sas();
    let status = reqwest::Client::new()
        .put(format!(
            "{endpoint}/{container}/{blob}?comp=properties&{sas}"
        ))
        .header(
            "x-ms-blob-content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        )
        .header("content-length", "0")
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "set properties: {status}");
}

/// The golden inputs as blobs under `data/`, plus what is not an input: a blob in a
/// sub-folder and a non-CSV.
fn golden_blobs() -> Vec<(String, Vec<u8>)> {
    let mut blobs: Vec<(String, Vec<u8>)> = golden_default_outputs()
        .into_iter()
        .map(|(name, _)| {
            let bytes = std::fs::read(util::repo_root().join("input_files").join(&name)).unwrap();
            (format!("data/{name}"), bytes)
        })
        .collect();
    blobs.push((
        "data/sub/nested.csv".into(),
        b"not,an\ninput,here\n".to_vec(),
    ));
    blobs.push(("data/README.txt".into(), b"notes".to_vec()));
    blobs.push(("other/elsewhere.csv".into(), b"x".to_vec()));
    blobs
}

/// `orchestrator --out OUT run URL --trainer T [extra]` with Azurite's account in the
/// environment (and nothing else of Azure's).
fn run_url(s: &Scratch, url: &str, connection: &str, extra: &[&str]) -> Output {
    s.command()
        .env("AZURE_STORAGE_CONNECTION_STRING", connection)
        .env_remove("AZURE_STORAGE_ACCOUNT")
        .env_remove("AZURE_STORAGE_KEY")
        .env_remove("AZURE_STORAGE_BLOB_ENDPOINT")
        .arg("--out")
        .arg(s.out())
        .arg("run")
        .arg(url)
        .arg("--trainer")
        .arg(trainer_bin())
        .args(extra)
        .output()
        .expect("run orchestrator")
}

/// The run directories under `--out` (those with a manifest; `blob-inputs/` and the
/// backends' stores are not runs).
fn runs(s: &Scratch) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(s.out()) else {
        return vec![];
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect()
}

fn only_run(s: &Scratch) -> std::path::PathBuf {
    let all = runs(s);
    assert_eq!(all.len(), 1, "one run: {all:?}");
    all[0].clone()
}

fn mtimes(dir: &Path) -> Vec<(String, SystemTime)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn blob_inputs_train_like_local_files_and_are_downloaded_once() {
    let container = container_with(&golden_blobs()).await;
    let s = Scratch::new();
    let url = format!("az://{DEV_ACCOUNT}/{container}/data/");
    let connection = azurite_connection(azurite_port());
    let out = run_url(&s, &url, &connection, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run = only_run(&s);
    let rows = rows(&run);
    let golden = golden_default_outputs();
    assert_eq!(
        rows.len(),
        golden.len(),
        "only the CSVs directly under data/"
    );
    for (name, output) in &golden {
        let r = row(&rows, name);
        assert_eq!(r["status"], "succeeded", "{name}: {r}");
        let task_dir = run.join("tasks").join(r["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            *output,
            "{name}"
        );
    }
    // Content-addressed: the digest is the bytes' SHA-256, so the task ids are the ones the
    // same files get from a local directory.
    let cache = s.out().join("blob-inputs");
    let objects: Vec<String> = mtimes(&cache).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        objects.len(),
        golden.len() + 1,
        "one object per input + index: {objects:?}"
    );
    let before = mtimes(&cache);

    // The same command again: the listing shows nothing changed, nothing is downloaded.
    std::thread::sleep(Duration::from_millis(20));
    let again = run_url(&s, &url, &connection, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert_eq!(mtimes(&cache), before, "nothing downloaded again");
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("downloading"),
        "{}",
        show(&again)
    );
    assert_eq!(runs(&s).len(), 1, "the same run: content-based ids");
}

/// `--dry-run` on a blob prefix only lists it: nothing is downloaded or written, and a
/// warning says which digests are not known yet; after a run hashed them, the dry run shows
/// that run's id.
#[tokio::test]
async fn a_dry_run_on_a_blob_prefix_lists_and_downloads_nothing() {
    let container = container_with(&golden_blobs()).await;
    let s = Scratch::new();
    let url = format!("az://{DEV_ACCOUNT}/{container}/data/");
    let connection = azurite_connection(azurite_port());
    let dry = run_url(&s, &url, &connection, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", show(&dry));
    let text = show(&dry);
    for (name, _) in golden_default_outputs() {
        assert!(text.contains(&name), "{name} missing from the plan: {text}");
    }
    assert!(text.contains("listed, not downloaded"), "{text}");
    assert!(
        !s.out().join("blob-inputs").exists(),
        "a dry run downloads nothing: {text}"
    );
    assert!(runs(&s).is_empty(), "and creates no run");
    let real = run_url(&s, &url, &connection, &[]);
    assert_eq!(real.status.code(), Some(0), "{}", show(&real));
    let run_id = only_run(&s)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        run_id.starts_with(&format!("{container}-data-")),
        "{run_id}"
    );
    let again = run_url(&s, &url, &connection, &["--dry-run"]);
    let text = show(&again);
    assert!(!text.contains("listed, not downloaded"), "{text}");
    assert!(text.contains(&run_id), "the run's own id: {text}");
}

#[tokio::test]
async fn a_blob_whose_bytes_do_not_match_its_content_md5_is_refused() {
    let blobs = vec![(
        "iris.csv".to_owned(),
        std::fs::read(util::repo_root().join("input_files/iris.csv")).unwrap(),
    )];
    let container = container_with(&blobs).await;
    set_content_md5(&container, "iris.csv", [7; 16]).await;
    let s = Scratch::new();
    let url = format!("https://{DEV_ACCOUNT}.blob.core.windows.net/{container}");
    // The https:// form names the account; Azurite stands in for its endpoint.
    let out = s
        .command()
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite_connection(azurite_port()),
        )
        .arg("--out")
        .arg(s.out())
        .arg("run")
        .arg(&url)
        .arg("--trainer")
        .arg(trainer_bin())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("iris.csv") && stderr.contains("MD5"),
        "{stderr}"
    );
    assert!(runs(&s).is_empty(), "no run directory");
    let cache = s.out().join("blob-inputs");
    let left: Vec<String> = if cache.exists() {
        mtimes(&cache).into_iter().map(|(n, _)| n).collect()
    } else {
        vec![]
    };
    assert!(left.is_empty(), "nothing unverified kept: {left:?}");
}

#[tokio::test]
async fn missing_container_empty_prefix_and_no_permission_are_one_line_and_create_nothing() {
    let container = container_with(&golden_blobs()).await;
    let good = azurite_connection(azurite_port());
    let wrong_key = good.replace(
        DEV_ACCOUNT_KEY,
        &base64::engine::general_purpose::STANDARD.encode([1u8; 64]),
    );
    let cases = [
        (
            format!("az://{DEV_ACCOUNT}/no-such-container/data/"),
            good.clone(),
            "does not exist",
        ),
        (
            format!("az://{DEV_ACCOUNT}/{container}/nothing-here/"),
            good.clone(),
            "no *.csv blobs",
        ),
        (
            format!("az://{DEV_ACCOUNT}/{container}/data/"),
            wrong_key,
            "permission denied",
        ),
        (
            format!("az://otheraccount/{container}/data/"),
            good.clone(),
            "storage account",
        ),
        (
            format!("az://{DEV_ACCOUNT}/{container}/data/?sig=secret"),
            good,
            "query",
        ),
    ];
    for (url, connection, want) in cases {
        let s = Scratch::new();
        let out = run_url(&s, &url, &connection, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", show(&out));
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{url}: one line: {stderr}");
        assert!(lines[0].contains(want), "{url}: {stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
        assert!(!s.out().exists(), "{url}: nothing created under --out");
    }
}

#[tokio::test]
async fn blob_inputs_run_on_slurm_from_its_staging_store() {
    slurm_util::cluster();
    let blobs: Vec<(String, Vec<u8>)> = ["iris.csv", "wine.csv"]
        .iter()
        .map(|n| {
            let bytes = std::fs::read(util::repo_root().join("input_files").join(n)).unwrap();
            (format!("set1/{n}"), bytes)
        })
        .collect();
    let container = container_with(&blobs).await;
    let s = Scratch::new();
    let url = format!("az://{DEV_ACCOUNT}/{container}/set1");
    let out = run_url(
        &s,
        &url,
        &azurite_connection(azurite_port()),
        &["--backend", "slurm", "--inputs-per-task", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let rows = rows(&only_run(&s));
    let golden: std::collections::BTreeMap<String, String> =
        golden_default_outputs().into_iter().collect();
    for name in ["iris.csv", "wine.csv"] {
        let r = row(&rows, name);
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(
            r["score"].as_str(),
            Some(slurm_util::score_of(&golden[name]).as_str())
        );
    }
    let objects = std::fs::read_dir(s.out().join("slurm-staging/objects")).unwrap();
    assert_eq!(
        objects.count(),
        3,
        "2 inputs and the trainer, staged by digest"
    );
}

#[tokio::test]
async fn blob_inputs_on_azure_batch_are_read_in_place_through_a_read_sas_each() {
    let container = container_with(&golden_blobs()).await;
    let iris = std::fs::read(util::repo_root().join("input_files/iris.csv")).unwrap();
    put_in_blocks(&container, "data/iris_blocks.csv", &iris).await;
    let s = Scratch::new();
    let handle = azure_util::standin(s.path(), vec![]).await;
    let url = format!("az://{DEV_ACCOUNT}/{container}/data/");
    let mut cmd = s.command();
    azure_util::standin_env(&mut cmd, &handle.url());
    cmd.arg("--out")
        .arg(s.out())
        .args(["run", &url, "--backend", "azure-batch", "--trainer"])
        .arg(trainer_bin())
        .args(["--batch-poll-interval", "300ms"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let run = only_run(&s);
    let rows = rows(&run);
    let mut golden = golden_default_outputs();
    let iris_golden = golden
        .iter()
        .find(|(n, _)| n == "iris.csv")
        .unwrap()
        .1
        .clone();
    golden.push(("iris_blocks.csv".into(), iris_golden));
    assert_eq!(rows.len(), golden.len());
    for (name, output) in &golden {
        let r = row(&rows, name);
        assert_eq!(r["status"], "succeeded", "{name}: {r}");
        assert_eq!(
            r["score"].as_str(),
            Some(slurm_util::score_of(output).as_str()),
            "{name}"
        );
    }
    // Task ids come from Content-MD5, or the MD5 streamed once for the blob without one
    // (recorded, not kept): no input bytes were stored on this machine.
    let manifest = util::manifest(&run);
    for input in manifest["inputs"].as_array().unwrap() {
        assert!(
            input["digest"].as_str().unwrap().starts_with("md5-"),
            "{input}"
        );
    }
    let index = std::fs::read_to_string(s.out().join("blob-inputs/index.json")).unwrap();
    assert!(index.contains("iris_blocks.csv"), "{index}");
    let kept = std::fs::read_dir(s.out().join("blob-inputs"))
        .unwrap()
        .count();
    assert_eq!(kept, 1, "only the index");
    // Nothing of the inputs was uploaded: the run's input container holds the trainer alone.
    let client = azure_staging::StagingClient::builder(azurite_storage())
        .build()
        .unwrap();
    let run_id = run.file_name().unwrap().to_str().unwrap();
    let staged = client.containers(run_id).unwrap();
    let blobs = client.list_blobs(&staged.inputs, "").await.unwrap();
    assert_eq!(blobs.len(), 1, "the trainer only: {blobs:?}");
}
