//! What a `StagingClient` costs and says per call: one HTTP client for all of its calls
//! (building one loads the root certificates), and one INFO line per upload call however many
//! objects it stages (each object is logged at DEBUG).

#[path = "common/mod.rs"]
mod common;

use azure_staging::LocalObject;
use common::*;

// Single-threaded runtime: the thread-local subscriber sees every event of the test.
#[tokio::test]
async fn one_http_client_and_one_info_line_per_upload() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = http_builder().build().unwrap();
    let run_id = unique_run("logs");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    for i in 0..5u64 {
        let path = write(dir.path(), &format!("{i}.csv"), &bytes(1000, i));
        objects.push(LocalObject::from_file(path).await.unwrap());
    }
    let refs = client.upload_objects(&run, &objects, None).await.unwrap();
    assert!(refs.iter().all(|r| r.uploaded));
    client
        .download_blob(&run.inputs, &refs[0].name, &dir.path().join("back"))
        .await
        .unwrap();
    client.list_runs().await.unwrap();
    client.delete_run(&run_id).await.unwrap();

    let log = capture.text();
    // The SDK's reqwest transport logs this at DEBUG each time one is built.
    let built = log
        .lines()
        .filter(|l| l.contains("creating an http client"))
        .count();
    assert_eq!(built, 1, "HTTP clients built for one StagingClient:\n{log}");

    let staging_info: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("azure_staging") && l.contains("staged"))
        .collect();
    assert_eq!(staging_info.len(), 1, "{staging_info:#?}");
    assert!(
        staging_info[0].contains("objects=5") && staging_info[0].contains("uploaded=5"),
        "{}",
        staging_info[0]
    );
    let per_object = log
        .lines()
        .filter(|l| l.contains(" DEBUG ") && l.contains(": staged"))
        .count();
    assert_eq!(per_object, 5, "{log}");
}
