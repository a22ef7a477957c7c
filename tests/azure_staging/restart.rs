//! An Azurite restart in the middle of a multi-block upload is survived by retries, with
//! nothing lost.
//!
//! The test runs its own Azurite instance (own port, own state directory) so that stopping it
//! cannot disturb other tests. Its data lives on disk in that directory, so the container
//! survives the restart; if the emulator loses staged blocks anyway, the client sees them
//! missing from the block list before the commit and sends them again.

#[path = "common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_staging::{LocalObject, Progress, ProgressFn, RetryPolicy, StagingClient};
use common::*;

/// Stops the private instance however the test ends.
struct Instance {
    env: Vec<(String, String)>,
}

impl Instance {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
    fn run(&self, cmd: &str) {
        azurite_script(&[cmd, "http"], &self.env());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/azurite.sh"))
            .args(["stop", "http"])
            .envs(self.env())
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_survives_azurite_restart_mid_upload() {
    // Shows the retry warnings in the test's output (`--nocapture`).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("azure_staging=info")
        .try_init();
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let instance = Arc::new(Instance {
        env: vec![
            (
                "AZURITE_STATE_DIR".into(),
                state.path().display().to_string(),
            ),
            ("AZURITE_HTTP_PORT".into(), port.to_string()),
        ],
    });
    instance.run("start");

    let client = StagingClient::builder(http_config(port))
        .container_prefix("restart")
        .block_size(64 * 1024)
        .concurrency(2)
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(120),
        })
        .build()
        .unwrap();
    let run_id = unique_run("restart");
    let run = client.ensure_containers(&run_id).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data = bytes(6 * 1024 * 1024 + 123, 42); // 97 blocks
    let path: PathBuf = write(dir.path(), "trainer", &data);
    let obj = LocalObject::from_file(&path).await.unwrap();

    // At about a quarter of the bytes, stop Azurite (synchronously, from inside the upload)
    // and start it again 2 s later from another thread.
    let restarted = Arc::new(AtomicBool::new(false));
    let restart_thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>> = Arc::default();
    let progress: ProgressFn = {
        let (instance, restarted, restart_thread) =
            (instance.clone(), restarted.clone(), restart_thread.clone());
        Arc::new(move |p: &Progress| {
            if p.bytes_done * 4 >= p.bytes_total && !restarted.swap(true, Ordering::SeqCst) {
                instance.run("stop");
                let instance = instance.clone();
                *restart_thread.lock().unwrap() = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(2));
                    instance.run("start");
                }));
            }
        })
    };
    let started = Instant::now();
    let refs = client
        .upload_objects(&run, std::slice::from_ref(&obj), Some(progress))
        .await
        .unwrap();
    let took = started.elapsed();
    let handle = restart_thread.lock().unwrap().take();
    handle
        .expect("the restart happened during the upload")
        .join()
        .unwrap();
    assert!(refs[0].uploaded);
    assert!(
        took >= Duration::from_secs(2),
        "the upload waited for the restart ({took:?})"
    );

    // Nothing lost: the committed blob is byte-identical and carries its digest.
    let dest = dir.path().join("back");
    let n = client
        .download_blob(&run.inputs, &obj.digest, &dest)
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "content differs after restart"
    );
    let listed = client.list_blobs(&run.inputs, "").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sha256.as_deref(), Some(obj.digest.as_str()));
    client.delete_run(&run_id).await.unwrap();
}
