//! Upload, skip of unchanged content, download, list and delete against Azurite (HTTP,
//! account key).

#[path = "common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_staging::config::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use azure_staging::{
    Error, LocalObject, Progress, ProgressEvent, ProgressFn, StagingClient, StorageConfig,
};
use common::*;

fn recorder() -> (Arc<Mutex<Vec<Progress>>>, ProgressFn) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        seen,
        Arc::new(move |p: &Progress| s.lock().unwrap().push(p.clone())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_skip_download_list_delete() {
    let client = http_builder().build().unwrap();
    let run_id = unique_run("cycle");
    let run = client.ensure_containers(&run_id).await.unwrap();
    // Idempotent: a resumed run calls it again.
    assert_eq!(client.ensure_containers(&run_id).await.unwrap(), run);

    let dir = tempfile::tempdir().unwrap();
    let trainer = bytes(300 * 1024 + 17, 1); // 5 blocks of 64 KiB
    let a = b"x,y,label\n1,2,a\n3,4,b\n".to_vec();
    let b = bytes(10_000, 2);
    let paths = [
        write(dir.path(), "trainer", &trainer),
        write(dir.path(), "a.csv", &a),
        write(dir.path(), "b.csv", &b),
        write(dir.path(), "a-copy.csv", &a), // same content as a.csv
    ];
    let mut objects = Vec::new();
    for p in &paths {
        objects.push(LocalObject::from_file(p).await.unwrap());
    }

    let (seen, progress) = recorder();
    let refs = client
        .upload_objects(&run, &objects, Some(progress))
        .await
        .unwrap();
    assert_eq!(refs.len(), 4);
    assert!(refs.iter().all(|r| r.uploaded && r.container == run.inputs));
    assert_eq!(refs[1], refs[3], "duplicate content maps to one blob");
    for (r, o) in refs.iter().zip(&objects) {
        assert_eq!((r.name.as_str(), r.size), (o.digest.as_str(), o.size));
        assert!(r.url.query().is_none(), "a BlobRef URL carries no SAS");
    }
    let events = seen.lock().unwrap().clone();
    let last = events.last().unwrap();
    let total = (trainer.len() + a.len() + b.len()) as u64;
    assert_eq!((last.bytes_done, last.bytes_total), (total, total));
    assert_eq!((last.objects_done, last.objects_total), (3, 3));
    let trainer_blocks = events
        .iter()
        .filter(|p| p.digest == objects[0].digest && matches!(p.event, ProgressEvent::Bytes(_)))
        .count();
    assert_eq!(trainer_blocks, 5, "large file went up in 5 blocks");

    // Unchanged content is not uploaded again.
    let (seen, progress) = recorder();
    let again = client
        .upload_objects(&run, &objects, Some(progress))
        .await
        .unwrap();
    assert!(again.iter().all(|r| !r.uploaded));
    let events = seen.lock().unwrap().clone();
    assert!(
        events.iter().all(|p| p.event == ProgressEvent::Skipped),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().bytes_done, total);

    // Listing shows each digest once, with its digest in metadata.
    let mut listed = client.list_blobs(&run.inputs, "").await.unwrap();
    listed.sort_by(|x, y| x.name.cmp(&y.name));
    let mut expected: Vec<_> = objects[..3]
        .iter()
        .map(|o| (o.digest.clone(), o.size))
        .collect();
    expected.sort();
    assert_eq!(
        listed
            .iter()
            .map(|b| (b.name.clone(), b.size))
            .collect::<Vec<_>>(),
        expected
    );
    assert!(
        listed
            .iter()
            .all(|b| b.sha256.as_deref() == Some(b.name.as_str()))
    );

    // Download and compare.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("trainer.copy");
    let n = client
        .download_blob(&run.inputs, &refs[0].name, &dest)
        .await
        .unwrap();
    assert_eq!(n, trainer.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), trainer);

    // Outputs written by "nodes" through the cw SAS, collected with download_prefix.
    let expiry = client.sas_expiry_for_job(Duration::from_secs(600));
    let sas = client
        .container_write_sas(&run.outputs, expiry)
        .await
        .unwrap();
    let http = http_client(None);
    for (task, body) in [
        ("task-1", "The model score: 0.5"),
        ("task-2", "The model score: 0.75"),
    ] {
        let mut url = sas.expose_url().clone();
        url.path_segments_mut()
            .unwrap()
            .push(task)
            .push("output.txt");
        let r = http
            .put(url)
            .header("x-ms-blob-type", "BlockBlob")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let got = client
        .download_prefix(&run.outputs, "", out.path())
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        std::fs::read_to_string(out.path().join("task-2/output.txt")).unwrap(),
        "The model score: 0.75"
    );
    let one = client
        .download_prefix(&run.outputs, "task-1/", &out.path().join("one"))
        .await
        .unwrap();
    assert_eq!(one[0].path, out.path().join("one/output.txt"));

    // The run is listed until it is deleted; delete is idempotent.
    assert!(client.list_runs().await.unwrap().contains(&run_id));
    client.delete_run(&run_id).await.unwrap();
    assert!(!client.list_runs().await.unwrap().contains(&run_id));
    client.delete_run(&run_id).await.unwrap();
    let err = client.list_blobs(&run.inputs, "").await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_or_foreign_content_is_never_trusted() {
    let client = http_builder().build().unwrap();
    let run_id = unique_run("changed");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "in.csv", b"a,b\n1,2\n");
    let obj = LocalObject::from_file(&p).await.unwrap();

    // The file changes after it was hashed: refused, nothing committed.
    std::fs::write(&p, b"a,b\n1,3\n").unwrap();
    let err = client
        .upload_objects(&run, std::slice::from_ref(&obj), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ContentChanged { .. }), "{err}");
    assert!(err.to_string().contains("in.csv"), "{err}");
    assert!(client.list_blobs(&run.inputs, "").await.unwrap().is_empty());

    // A blob under the digest's name without matching metadata is replaced, not trusted.
    std::fs::write(&p, b"a,b\n1,2\n").unwrap();
    let expiry = client.sas_expiry_for_job(Duration::from_secs(60));
    let sas = client
        .container_write_sas(&run.inputs, expiry)
        .await
        .unwrap();
    let mut url = sas.expose_url().clone();
    url.path_segments_mut().unwrap().push(&obj.digest);
    let r = http_client(None)
        .put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let refs = client
        .upload_objects(&run, std::slice::from_ref(&obj), None)
        .await
        .unwrap();
    assert!(refs[0].uploaded);
    let dest = dir.path().join("back.csv");
    client
        .download_blob(&run.inputs, &obj.digest, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"a,b\n1,2\n");

    // Bad digests are refused before any request.
    let bad = azure_staging::LocalObject {
        digest: "../../etc".into(),
        ..obj.clone()
    };
    assert!(matches!(
        client.upload_objects(&run, &[bad], None).await.unwrap_err(),
        Error::InvalidArgument(_)
    ));
    client.delete_run(&run_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_block_upload_resumes_with_staged_blocks() {
    // Upload once with a tiny retry budget against a file that grows mid-way is hard to
    // stage; instead stage the first blocks by hand (as an interrupted earlier call would
    // have left them) and check the upload completes with the right content.
    let client = http_builder().build().unwrap();
    let run_id = unique_run("resume");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(200 * 1024, 9);
    let p = write(dir.path(), "big.bin", &data);
    let obj = LocalObject::from_file(&p).await.unwrap();

    let expiry = client.sas_expiry_for_job(Duration::from_secs(60));
    let sas = client
        .container_write_sas(&run.inputs, expiry)
        .await
        .unwrap();
    let http = http_client(None);
    for i in 0..2u64 {
        let id = format!("{i:06}-{}", &obj.digest[..9]);
        let mut url = sas.expose_url().clone();
        url.path_segments_mut().unwrap().push(&obj.digest);
        url.query_pairs_mut()
            .append_pair("comp", "block")
            .append_pair("blockid", &base64_encode(id.as_bytes()));
        let chunk = data[(i as usize) * 65536..(i as usize + 1) * 65536].to_vec();
        let r = http.put(url).body(chunk).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let (seen, progress) = recorder();
    let refs = client
        .upload_objects(&run, std::slice::from_ref(&obj), Some(progress))
        .await
        .unwrap();
    assert!(refs[0].uploaded);
    assert_eq!(
        seen.lock().unwrap().last().unwrap().bytes_done,
        data.len() as u64
    );
    let dest = dir.path().join("back.bin");
    client
        .download_blob(&run.inputs, &obj.digest, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    client.delete_run(&run_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_file_round_trips_with_a_connection_string_client() {
    start_azurite();
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};\
         BlobEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
        http_port()
    );
    let config = StorageConfig::from_connection_string(&cs, None).unwrap();
    let client = StagingClient::builder(config)
        .container_prefix("it")
        .build()
        .unwrap();
    let run_id = unique_run("empty");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let obj = LocalObject::from_file(write(dir.path(), "empty.csv", b""))
        .await
        .unwrap();
    let refs = client
        .upload_objects(&run, std::slice::from_ref(&obj), None)
        .await
        .unwrap();
    assert!(refs[0].uploaded && refs[0].size == 0);
    let again = client
        .upload_objects(&run, std::slice::from_ref(&obj), None)
        .await
        .unwrap();
    assert!(!again[0].uploaded);
    let dest = dir.path().join("back");
    assert_eq!(
        client
            .download_blob(&run.inputs, &obj.digest, &dest)
            .await
            .unwrap(),
        0
    );
    assert!(std::fs::read(&dest).unwrap().is_empty());
    client.delete_run(&run_id).await.unwrap();
}

/// Counts requests in flight through the SDK transport.
#[derive(Debug)]
struct Counting {
    inner: reqwest::Client,
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for Counting {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(n, SeqCst);
        // Hold the slot a little so overlapping requests are visible.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = self.inner.execute_request(request).await;
        self.now.fetch_sub(1, SeqCst);
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_stay_within_the_bound() {
    let counting = Arc::new(Counting {
        inner: http_client(None),
        now: Default::default(),
        max: Default::default(),
    });
    let client = http_builder()
        .concurrency(3)
        .transport(counting.clone())
        .build()
        .unwrap();
    let run_id = unique_run("bound");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    for i in 0..20u64 {
        let p = write(dir.path(), &format!("f{i}"), &bytes(2000 + i as usize, i));
        objects.push(LocalObject::from_file(p).await.unwrap());
    }
    let p = write(dir.path(), "big", &bytes(640 * 1024, 99)); // 10 blocks
    objects.push(LocalObject::from_file(p).await.unwrap());
    counting.max.store(0, std::sync::atomic::Ordering::SeqCst);
    client.upload_objects(&run, &objects, None).await.unwrap();
    let max = counting.max.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}, bound 3");
    client.delete_run(&run_id).await.unwrap();
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
