//! The Microsoft Entra ID path against the HTTPS Azurite instance started with
//! `--oauth basic`: bearer-token requests through the SDK, and user delegation SAS used with
//! plain HTTP.
//!
//! Azurite's basic OAuth mode checks a JWT's claims but not its signature, so a credential that
//! returns an unsigned token with the right `aud`, `iss`, `nbf`/`iat`/`exp`, `oid` and `tid`
//! stands in for Entra ID. Clients trust only the test CA the script generated.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use azure_staging::config::DEV_ACCOUNT;
use azure_staging::{Auth, LocalObject, StagingClient, StorageConfig};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use common::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OBJECT_ID: &str = "0b1f1d2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";

#[derive(Debug)]
struct FakeEntra;

#[async_trait]
impl TokenCredential for FakeEntra {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = B64URL.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "aud": "https://storage.azure.com",
            "iss": format!("https://sts.windows.net/{TENANT}/"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "oid": OBJECT_ID, "tid": TENANT,
        });
        let payload = B64URL.encode(claims.to_string());
        let token = format!("{header}.{payload}.{}", B64URL.encode("not-checked"));
        Ok(AccessToken::new(
            Secret::new(token),
            OffsetDateTime::now_utc() + Duration::from_secs(3600),
        ))
    }
}

fn entra_client() -> StagingClient {
    start_azurite();
    let ca = oauth_ca_pem();
    let config = StorageConfig::new(
        &format!("https://127.0.0.1:{}/{DEV_ACCOUNT}", oauth_port()),
        DEV_ACCOUNT,
        Auth::Token(Arc::new(FakeEntra)),
    )
    .unwrap();
    StagingClient::builder(config)
        .container_prefix("entra")
        .block_size(64 * 1024)
        .transport(transport(&ca))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_credential_stages_and_user_delegation_sas_works_with_plain_http() {
    let client = entra_client();
    let run_id = unique_run("entra");
    let run = client.ensure_containers(&run_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trainer = bytes(150 * 1024, 5); // 3 blocks
    let objects = [
        LocalObject::from_file(write(dir.path(), "trainer", &trainer))
            .await
            .unwrap(),
        LocalObject::from_file(write(dir.path(), "a.csv", b"a,b\n1,2\n"))
            .await
            .unwrap(),
    ];
    let refs = client.upload_objects(&run, &objects, None).await.unwrap();
    assert!(refs.iter().all(|r| r.uploaded));
    let again = client.upload_objects(&run, &objects, None).await.unwrap();
    assert!(
        again.iter().all(|r| !r.uploaded),
        "skip works over Entra too"
    );
    let dest = dir.path().join("back");
    client
        .download_blob(&run.inputs, &refs[0].name, &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), trainer);
    assert_eq!(client.list_blobs(&run.inputs, "").await.unwrap().len(), 2);

    // User delegation SAS, used by a plain HTTPS client (no token).
    let http = http_client(Some(&oauth_ca_pem()));
    let expiry = client.sas_expiry_for_job(Duration::from_secs(1800));
    let read = client.blob_read_sas(&refs[0], expiry).await.unwrap();
    let url = read.expose();
    assert!(
        url.contains(&format!("skoid={OBJECT_ID}")),
        "user delegation SAS: {read}"
    );
    assert!(
        url.contains("spr=https&") && url.contains("sp=r&"),
        "{read}"
    );
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), trainer.as_slice());
    let r = http.get(tamper(url)).send().await.unwrap();
    assert_eq!(r.status(), 403, "tampered user delegation SAS");
    let r = http
        .put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("overwrite")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "read-only user delegation SAS must not write"
    );

    let write_sas = client
        .container_write_sas(&run.outputs, expiry)
        .await
        .unwrap();
    let mut out = write_sas.expose_url().clone();
    out.path_segments_mut()
        .unwrap()
        .push("task-1")
        .push("output.txt");
    let r = http
        .put(out.as_str())
        .header("x-ms-blob-type", "BlockBlob")
        .body("The model score: 0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "cw user delegation SAS writes outputs");
    let r = http.get(out.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 403, "cw user delegation SAS must not read");
    let got = client
        .download_prefix(&run.outputs, "task-1/", dir.path())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&got[0].path).unwrap(),
        "The model score: 0.9"
    );

    // Longer than Azure allows for a user delegation SAS: refused with a clear message.
    let err = client
        .container_write_sas(
            &run.outputs,
            SystemTime::now() + Duration::from_secs(8 * 86400),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("7 days"), "{err}");

    assert!(client.list_runs().await.unwrap().contains(&run_id));
    client.delete_run(&run_id).await.unwrap();
    assert!(!client.list_runs().await.unwrap().contains(&run_id));
}

#[test]
fn token_credentials_are_refused_over_plain_http() {
    // Bearer tokens never travel over http, not even to a loopback emulator.
    let err = StorageConfig::new(
        "http://127.0.0.1:10000/devstoreaccount1",
        DEV_ACCOUNT,
        Auth::Token(Arc::new(FakeEntra)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("only sent over https"), "{err}");
}
