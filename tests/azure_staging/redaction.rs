//! No account key, SAS signature or bearer token in any log line: the test captures every
//! tracing event (ours and the SDK's, down to TRACE) during uploads, SAS minting, failures and
//! retries, and looks for secrets.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use azure_staging::config::DEV_ACCOUNT_KEY;
use azure_staging::{LocalObject, RetryPolicy, StagingClient};
use common::*;

fn sig_of(url: &str) -> String {
    let at = url.find("sig=").unwrap() + 4;
    url[at..].split('&').next().unwrap().to_owned()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_signature_in_any_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let client = http_builder().build().unwrap();
    tracing::info!(?client, "client built");
    let run_id = unique_run("redact");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let small = LocalObject::from_file(write(dir.path(), "a.csv", b"a,b\n1,2\n"))
        .await
        .unwrap();
    let big = LocalObject::from_file(write(dir.path(), "t", &bytes(200_000, 3)))
        .await
        .unwrap();
    let refs = client
        .upload_objects(&run, &[small, big], None)
        .await
        .unwrap();
    client
        .upload_objects(&run, &[refs_obj(&refs[0], dir.path())], None)
        .await
        .ok();

    let expiry = client.sas_expiry_for_job(Duration::from_secs(600));
    let read = client.blob_read_sas(&refs[0], expiry).await.unwrap();
    let write_sas = client
        .container_write_sas(&run.outputs, expiry)
        .await
        .unwrap();
    tracing::info!(?read, %write_sas, "SAS minted");
    let mut secrets = vec![sig_of(read.expose()), sig_of(write_sas.expose())];

    // Failures: a missing blob (service error) and an unreachable endpoint (connection errors,
    // retried, whose causes quote the request URL with its account SAS).
    let err = client
        .download_blob(&run.inputs, &"0".repeat(64), &dir.path().join("x"))
        .await
        .unwrap_err();
    tracing::error!(%err, ?err, "expected failure");
    let dead = StagingClient::builder(http_config(1))
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_millis(200),
        })
        .build()
        .unwrap();
    let err = dead.ensure_containers(&run_id).await.unwrap_err();
    tracing::error!(%err, ?err, "expected failure");
    client.delete_run(&run_id).await.unwrap();

    let log = capture.text();
    // The capture really saw our events and the SDK's request logging.
    assert!(
        log.contains("staged") && log.contains("SAS minted"),
        "capture is empty?"
    );
    assert!(
        log.contains("transient storage failure"),
        "retry path not exercised"
    );
    assert!(
        log.contains("==> Request: url:"),
        "SDK request logging not captured"
    );
    assert!(
        log.contains("error sending request for url"),
        "URL-quoting errors not captured"
    );
    assert!(log.lines().count() > 20, "{log}");

    secrets.push(DEV_ACCOUNT_KEY.to_owned());
    secrets.push(DEV_ACCOUNT_KEY[..20].to_owned());
    for s in secrets.clone() {
        secrets.push(percent_decode(&s));
    }
    for line in log.lines() {
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "secret in log line: {line}");
        }
        // Any signature at all (including the client's own account SAS) must be masked.
        for (i, _) in line.match_indices("sig=") {
            let rest = &line[i + 4..];
            assert!(
                rest.starts_with("REDACTED")
                    || rest.is_empty()
                    || rest.starts_with(['&', ' ', '"']),
                "unmasked signature in log line: {line}"
            );
        }
        assert!(!line.contains("AccountKey=E"), "{line}");
    }
}

/// The object for an already staged blob (to exercise the skip path's logging).
fn refs_obj(r: &azure_staging::BlobRef, dir: &std::path::Path) -> LocalObject {
    LocalObject {
        path: dir.join("a.csv"),
        digest: r.digest.clone(),
        size: r.size,
    }
}
