//! SAS URLs minted with the account key, used with plain HTTP (reqwest) against Azurite:
//! they work within their permission and are refused when expired, tampered with, out of
//! scope or short of the permission.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, SystemTime};

use azure_staging::config::DEV_ACCOUNT;
use azure_staging::sas::{self, Permissions, Protocol, Resource, SasWindow};
use azure_staging::{Auth, Error, LocalObject, StagingClient, StorageConfig, ensure_sas_covers};
use common::*;

async fn put(http: &reqwest::Client, url: reqwest::Url, body: &'static str) -> u16 {
    http.put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let r = http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn child(base: &reqwest::Url, name: &str) -> reqwest::Url {
    let mut u = base.clone();
    u.path_segments_mut().unwrap().push(name);
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_urls_grant_exactly_their_permission() {
    let client = http_builder().build().unwrap();
    let run_id = unique_run("sas");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = LocalObject::from_file(write(dir.path(), "a.csv", b"a,b\n1,2\n"))
        .await
        .unwrap();
    let b = LocalObject::from_file(write(dir.path(), "b.csv", b"a,b\n3,4\n"))
        .await
        .unwrap();
    let refs = client.upload_objects(&run, &[a, b], None).await.unwrap();
    let http = http_client(None);
    let expiry = client.sas_expiry_for_job(Duration::from_secs(3600));

    // Blob read SAS: GET works, only for that blob, and nothing else.
    let read = client.blob_read_sas(&refs[0], expiry).await.unwrap();
    assert_eq!(read.permissions(), "r");
    assert!(read.expose().contains("sr=b") && read.expose().contains("spr=https%2Chttp"));
    assert_eq!(
        get(&http, read.expose()).await,
        (200, "a,b\n1,2\n".to_owned())
    );
    let url: reqwest::Url = read.expose().parse().unwrap();
    assert_eq!(
        put(&http, url.clone(), "overwrite").await,
        403,
        "read SAS must not write"
    );
    assert_eq!(
        http.delete(url).send().await.unwrap().status(),
        403,
        "read SAS must not delete"
    );
    let other = read.expose().replace(&refs[0].name, &refs[1].name);
    assert_eq!(
        get(&http, &other).await.0,
        403,
        "blob SAS is scoped to its blob"
    );
    assert_eq!(
        get(&http, &tamper(read.expose())).await.0,
        403,
        "tampered signature"
    );
    let widened = read.expose().replace("sp=r&", "sp=rw&");
    assert_eq!(
        put(&http, widened.parse().unwrap(), "x").await,
        403,
        "edited permission"
    );

    // Container write SAS (cw): create and write blobs, nothing else.
    let write_sas = client
        .container_write_sas(&run.outputs, expiry)
        .await
        .unwrap();
    assert_eq!(write_sas.permissions(), "cw");
    let base: reqwest::Url = write_sas.expose().parse().unwrap();
    assert_eq!(put(&http, child(&base, "t1"), "out").await, 201);
    assert_eq!(
        get(&http, child(&base, "t1").as_str()).await.0,
        403,
        "cw SAS must not read"
    );
    let mut list = base.clone();
    list.query_pairs_mut()
        .append_pair("restype", "container")
        .append_pair("comp", "list");
    assert_eq!(
        get(&http, list.as_str()).await.0,
        403,
        "cw SAS must not list"
    );
    assert_eq!(
        http.delete(child(&base, "t1"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "cw SAS must not delete"
    );
    let into_inputs = write_sas.expose().replace(&run.outputs, &run.inputs);
    let into_inputs: reqwest::Url = into_inputs.parse().unwrap();
    assert_eq!(
        put(&http, child(&into_inputs, "evil"), "x").await,
        403,
        "scoped to its container"
    );

    // Container read SAS (rl): read and list, no write.
    let rl = client
        .container_read_sas(&run.inputs, expiry)
        .await
        .unwrap();
    let base: reqwest::Url = rl.expose().parse().unwrap();
    assert_eq!(
        get(&http, child(&base, &refs[1].name).as_str()).await,
        (200, "a,b\n3,4\n".to_owned())
    );
    let mut list = base.clone();
    list.query_pairs_mut()
        .append_pair("restype", "container")
        .append_pair("comp", "list");
    let (status, body) = get(&http, list.as_str()).await;
    assert_eq!(status, 200);
    assert!(body.contains(&refs[0].name) && body.contains(&refs[1].name));
    assert_eq!(
        put(&http, child(&base, "new"), "x").await,
        403,
        "rl SAS must not write"
    );

    client.delete_run(&run_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sas_is_refused() {
    let client = http_builder().build().unwrap();
    let run_id = unique_run("expiry");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = LocalObject::from_file(write(dir.path(), "a.csv", b"1\n"))
        .await
        .unwrap();
    let refs = client.upload_objects(&run, &[a], None).await.unwrap();
    let http = http_client(None);

    // Valid for 2 s: works now, refused once it has expired.
    let short = client
        .blob_read_sas(&refs[0], SystemTime::now() + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(get(&http, short.expose()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        get(&http, short.expose()).await.0,
        403,
        "expired SAS must be refused"
    );

    // A correctly signed SAS whose window ended an hour ago.
    let past = SystemTime::now() - Duration::from_secs(3600);
    let q = sas::service_sas(
        &dev_key(),
        Resource::Blob(&run.inputs, &refs[0].name),
        Permissions::READ,
        &SasWindow {
            start: Some(past - Duration::from_secs(3600)),
            expiry: past,
            protocol: Protocol::HttpsAndHttp,
        },
    );
    let mut url = refs[0].url.clone();
    url.set_query(Some(&q));
    assert_eq!(get(&http, url.as_str()).await.0, 403);

    // Minting an already-expired SAS is refused up front.
    assert!(matches!(
        client.blob_read_sas(&refs[0], past).await.unwrap_err(),
        Error::InvalidArgument(_)
    ));
    client.delete_run(&run_id).await.unwrap();
}

#[tokio::test]
async fn expiry_covers_the_job_and_the_guard_refuses_short_sas() {
    // No network needed: account-key SAS are signed locally.
    let cfg = StorageConfig::new(
        "https://acct.blob.core.windows.net",
        "acct",
        Auth::AccountKey(azure_staging::AccountKey::new("acct", "a2V5a2V5").unwrap()),
    )
    .unwrap();
    let client = StagingClient::builder(cfg)
        .sas_margin(Duration::from_secs(1800))
        .build()
        .unwrap();
    let limit = Duration::from_secs(4 * 3600);
    let expiry = client.sas_expiry_for_job(limit);
    let sas = client.container_write_sas("c", expiry).await.unwrap();
    // Real Azure: https only.
    assert!(
        sas.expose()
            .starts_with("https://acct.blob.core.windows.net/c?")
    );
    assert!(sas.expose().contains("&spr=https&"), "{}", sas.expose());
    sas.ensure_covers(limit).unwrap();
    ensure_sas_covers(sas.expires_at(), limit + Duration::from_secs(1700)).unwrap();
    let err = sas
        .ensure_covers(limit + Duration::from_secs(1900))
        .unwrap_err();
    assert!(matches!(err, Error::SasExpiresTooSoon { .. }), "{err}");
    // Parsing a stored SAS URL gives the same answer.
    let parsed = azure_staging::SasUrl::parse(sas.expose()).unwrap();
    assert!(
        parsed
            .ensure_covers(limit + Duration::from_secs(3600))
            .is_err()
    );
    let sig = sig_of(sas.expose());
    let shown = format!("{err} {sas} {sas:?} {client:?}");
    assert!(
        !shown.contains(&sig) && !shown.contains("a2V5a2V5"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_sas_signed_here_is_accepted_by_azurite() {
    start_azurite();
    let window = SasWindow {
        start: Some(SystemTime::now() - Duration::from_secs(300)),
        expiry: SystemTime::now() + Duration::from_secs(300),
        protocol: Protocol::HttpsAndHttp,
    };
    let q = sas::account_sas(&dev_key(), Permissions::READ_LIST, "s", &window);
    let url = format!(
        "http://127.0.0.1:{}/{DEV_ACCOUNT}?comp=list&{q}",
        http_port()
    );
    let http = http_client(None);
    assert_eq!(
        get(&http, &url).await.0,
        200,
        "account SAS (ss=b, srt=s, sp=rl) lists containers"
    );
    assert_eq!(get(&http, &tamper(&url)).await.0, 403);
    // Service-level resource type only: a container operation is refused.
    let url = format!(
        "http://127.0.0.1:{}/{DEV_ACCOUNT}/no-such-container?restype=container&{q}",
        http_port()
    );
    assert_eq!(get(&http, &url).await.0, 403);
}

fn sig_of(url: &str) -> String {
    let at = url.find("sig=").unwrap() + 4;
    url[at..].split('&').next().unwrap().to_owned()
}
