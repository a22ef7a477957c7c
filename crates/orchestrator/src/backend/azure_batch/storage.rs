//! Blob Storage for the Batch backend: content-addressed staging of the trainer and inputs,
//! SAS URLs for the nodes (read for inputs, create+write for the output container), downloads
//! of task outputs and deletion of a run's outputs.
//!
//! Account-key access (`AZURE_STORAGE_CONNECTION_STRING`, or `AZURE_STORAGE_ACCOUNT` +
//! `AZURE_STORAGE_KEY` [+ `AZURE_STORAGE_BLOB_ENDPOINT`]): every call carries a short-lived
//! service SAS minted here, so no Storage Shared Key request signing is needed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::{Method, StatusCode, Url};

use super::client::{redact, sign};
use crate::job::{StageObject, StagePlan, Staged};

/// Storage service version the SAS and requests use.
const SV: &str = "2022-11-02";
/// Container for content-addressed objects (shared by runs) and for task outputs.
const STAGE_CONTAINER: &str = "orch-stage";
const OUTPUT_CONTAINER: &str = "orch-out";

#[derive(Clone)]
pub(crate) struct Storage {
    http: reqwest::Client,
    account: String,
    key: Vec<u8>,
    /// `https://ACCOUNT.blob.core.windows.net` or Azurite's `http://127.0.0.1:10000/devstoreaccount1`.
    endpoint: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Storage {
    pub(crate) async fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let (account, key, endpoint) = if let Some(cs) = var("AZURE_STORAGE_CONNECTION_STRING") {
            let field = |name: &str| {
                cs.split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_owned())
            };
            let account =
                field("AccountName").ok_or("AZURE_STORAGE_CONNECTION_STRING has no AccountName")?;
            let key = field("AccountKey").ok_or("AZURE_STORAGE_CONNECTION_STRING has no AccountKey (SAS-only connection strings are not supported)")?;
            let endpoint = field("BlobEndpoint").unwrap_or_else(|| {
                let proto = field("DefaultEndpointsProtocol").unwrap_or_else(|| "https".into());
                let suffix = field("EndpointSuffix").unwrap_or_else(|| "core.windows.net".into());
                format!("{proto}://{account}.blob.{suffix}")
            });
            (account, key, endpoint)
        } else {
            let account = var("AZURE_STORAGE_ACCOUNT").ok_or(
                "Blob Storage is not configured: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY",
            )?;
            let key = var("AZURE_STORAGE_KEY").ok_or("AZURE_STORAGE_KEY is not set")?;
            let endpoint = var("AZURE_STORAGE_BLOB_ENDPOINT")
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            (account, key, endpoint)
        };
        let key = B64
            .decode(key.trim())
            .map_err(|_| "the storage account key is not valid base64".to_owned())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let s = Self {
            http,
            account,
            key,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        };
        Ok(s)
    }

    fn https_only(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// Where a staged object lives (no SAS): `<endpoint>/orch-stage/<digest>`.
    pub(crate) fn object_url(&self, digest: &str) -> String {
        format!("{}/{STAGE_CONTAINER}/{digest}", self.endpoint)
    }

    /// The output container's URL without a SAS.
    pub(crate) fn output_container_base(&self) -> String {
        format!("{}/{OUTPUT_CONTAINER}", self.endpoint)
    }

    /// A service SAS query for `/container[/blob]`.
    fn sas(&self, container: &str, blob: Option<&str>, perms: &str, expiry: SystemTime) -> String {
        let start = iso8601(SystemTime::now() - Duration::from_secs(300));
        let end = iso8601(expiry);
        let resource = match blob {
            Some(b) => format!("/blob/{}/{container}/{b}", self.account),
            None => format!("/blob/{}/{container}", self.account),
        };
        let sr = if blob.is_some() { "b" } else { "c" };
        let spr = if self.https_only() {
            "https"
        } else {
            "https,http"
        };
        // sp, st, se, resource, si, sip, spr, sv, sr, snapshot, ses, rscc, rscd, rsce, rscl, rsct
        let sts = [
            perms, &start, &end, &resource, "", "", spr, SV, sr, "", "", "", "", "", "", "",
        ]
        .join("\n");
        let sig = sign(&self.key, &sts);
        let mut u = Url::parse("http://x/").expect("static");
        u.query_pairs_mut()
            .append_pair("sv", SV)
            .append_pair("sp", perms)
            .append_pair("sr", sr)
            .append_pair("st", &start)
            .append_pair("se", &end)
            .append_pair("spr", spr)
            .append_pair("sig", &sig);
        u.query().unwrap_or_default().to_owned()
    }

    /// Read-only SAS URL for a staged object URL.
    pub(crate) async fn read_url(
        &self,
        object_url: &str,
        expiry: SystemTime,
    ) -> Result<String, String> {
        let prefix = format!("{}/{STAGE_CONTAINER}/", self.endpoint);
        let blob = object_url
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("`{object_url}` is not an object of this storage account"))?;
        Ok(format!(
            "{object_url}?{}",
            self.sas(STAGE_CONTAINER, Some(blob), "r", expiry)
        ))
    }

    /// Create+write SAS URL of the output container (what the nodes upload through).
    pub(crate) async fn output_container_url(&self, expiry: SystemTime) -> Result<String, String> {
        self.ensure_container(OUTPUT_CONTAINER).await?;
        Ok(format!(
            "{}?{}",
            self.output_container_base(),
            self.sas(OUTPUT_CONTAINER, None, "cw", expiry)
        ))
    }

    async fn call(
        &self,
        method: Method,
        container: &str,
        blob: Option<&str>,
        extra_query: &str,
        perms: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, String> {
        let mut url = match blob {
            Some(b) => format!("{}/{container}/{b}", self.endpoint),
            None => format!("{}/{container}", self.endpoint),
        };
        let sas = self.sas(
            container,
            blob,
            perms,
            SystemTime::now() + Duration::from_secs(3600),
        );
        url.push('?');
        if !extra_query.is_empty() {
            url.push_str(extra_query);
            url.push('&');
        }
        url.push_str(&sas);
        let mut last = String::new();
        for attempt in 0..6u32 {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("x-ms-version", SV);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            match req.send().await {
                Ok(r)
                    if r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    last = format!("HTTP {}", r.status());
                }
                Ok(r) => return Ok(r),
                Err(e) => last = redact(&e.without_url().to_string()),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        Err(format!(
            "storage {method} {container}/{}: {last}",
            blob.unwrap_or("")
        ))
    }

    async fn ensure_container(&self, container: &str) -> Result<(), String> {
        // Container creation needs an account-level grant; a container SAS cannot create its
        // own container, so use an account SAS for this one call.
        let start = iso8601(SystemTime::now() - Duration::from_secs(300));
        let end = iso8601(SystemTime::now() + Duration::from_secs(600));
        let spr = if self.https_only() {
            "https"
        } else {
            "https,http"
        };
        let sts = format!(
            "{}\nc\nb\nc\n{start}\n{end}\n\n{spr}\n{SV}\n\n",
            self.account
        );
        let sig = sign(&self.key, &sts);
        let mut u =
            Url::parse(&format!("{}/{container}", self.endpoint)).map_err(|e| e.to_string())?;
        u.query_pairs_mut()
            .append_pair("restype", "container")
            .append_pair("sv", SV)
            .append_pair("ss", "b")
            .append_pair("srt", "c")
            .append_pair("sp", "c")
            .append_pair("st", &start)
            .append_pair("se", &end)
            .append_pair("spr", spr)
            .append_pair("sig", &sig);
        let r = self
            .http
            .put(u)
            .header("x-ms-version", SV)
            .header("content-length", "0")
            .send()
            .await
            .map_err(|e| {
                format!(
                    "create container {container}: {}",
                    redact(&e.without_url().to_string())
                )
            })?;
        match r.status() {
            s if s.is_success() || s == StatusCode::CONFLICT => Ok(()),
            s => Err(format!(
                "create container {container}: HTTP {s}: {}",
                redact(&r.text().await.unwrap_or_default())
            )),
        }
    }

    /// Uploads the trainer and inputs, skipping any digest already present.
    pub(crate) async fn stage(&self, plan: &StagePlan) -> Result<Staged, String> {
        self.ensure_container(STAGE_CONTAINER).await?;
        self.ensure_container(OUTPUT_CONTAINER).await?;
        let mut objects: Vec<StageObject> = vec![plan.trainer.clone()];
        objects.extend(plan.inputs.iter().cloned());
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        let mut set = tokio::task::JoinSet::new();
        for o in objects {
            let (sem, me) = (sem.clone(), self.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await.expect("open");
                me.upload_if_missing(&o).await
            });
        }
        let mut uploaded = 0;
        while let Some(r) = set.join_next().await {
            uploaded += usize::from(r.map_err(|e| format!("upload task: {e}"))??);
        }
        tracing::info!(
            uploaded,
            total = plan.inputs.len() + 1,
            "staged objects in Blob Storage"
        );
        Ok(Staged {
            trainer: self.object_url(&plan.trainer.digest),
            inputs: plan
                .inputs
                .iter()
                .map(|o| (o.digest.clone(), self.object_url(&o.digest)))
                .collect(),
        })
    }

    async fn upload_if_missing(&self, o: &StageObject) -> Result<bool, String> {
        let head = self
            .call(
                Method::HEAD,
                STAGE_CONTAINER,
                Some(&o.digest),
                "",
                "r",
                &[],
                None,
            )
            .await?;
        if head.status().is_success() {
            let len = head
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if len == Some(o.size) {
                return Ok(false);
            }
        }
        let bytes = tokio::fs::read(&o.path)
            .await
            .map_err(|e| format!("read {}: {e}", o.path.display()))?;
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if digest != o.digest {
            return Err(format!(
                "{} changed while staging (sha256 {digest}, planned {})",
                o.path.display(),
                o.digest
            ));
        }
        let r = self
            .call(
                Method::PUT,
                STAGE_CONTAINER,
                Some(&o.digest),
                "",
                "cw",
                &[
                    ("x-ms-blob-type", "BlockBlob".into()),
                    ("x-ms-meta-sha256", o.digest.clone()),
                ],
                Some(bytes),
            )
            .await?;
        if !r.status().is_success() {
            return Err(format!(
                "upload {}: HTTP {}: {}",
                o.path.display(),
                r.status(),
                redact(&r.text().await.unwrap_or_default())
            ));
        }
        Ok(true)
    }

    /// Downloads `orch-out/<name>` to `dest` (temp file + rename); `false` when it does not exist.
    pub(crate) async fn download(&self, name: &str, dest: &Path) -> Result<bool, String> {
        let r = self
            .call(
                Method::GET,
                OUTPUT_CONTAINER,
                Some(name),
                "",
                "r",
                &[],
                None,
            )
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !r.status().is_success() {
            return Err(format!("download {name}: HTTP {}", r.status()));
        }
        let bytes = r
            .bytes()
            .await
            .map_err(|e| format!("download {name}: {}", redact(&e.without_url().to_string())))?;
        super::monitor::write_atomic(dest, &bytes).await?;
        Ok(true)
    }

    /// Deletes every output blob of the run (`orch-out/<run-id>/...`).
    pub(crate) async fn delete_run(&self, run_id: &str) -> Result<usize, String> {
        let mut deleted = 0;
        let mut marker = String::new();
        loop {
            let mut q = Url::parse("http://x/").expect("static");
            q.query_pairs_mut()
                .append_pair("restype", "container")
                .append_pair("comp", "list")
                .append_pair("prefix", &format!("{run_id}/"));
            if !marker.is_empty() {
                q.query_pairs_mut().append_pair("marker", &marker);
            }
            let r = self
                .call(
                    Method::GET,
                    OUTPUT_CONTAINER,
                    None,
                    q.query().unwrap_or(""),
                    "l",
                    &[],
                    None,
                )
                .await?;
            if r.status() == StatusCode::NOT_FOUND {
                return Ok(0);
            }
            let xml = r.text().await.map_err(|e| e.to_string())?;
            for name in xml_values(&xml, "Name") {
                let d = self
                    .call(
                        Method::DELETE,
                        OUTPUT_CONTAINER,
                        Some(&name),
                        "",
                        "d",
                        &[],
                        None,
                    )
                    .await?;
                if d.status().is_success() || d.status() == StatusCode::NOT_FOUND {
                    deleted += 1;
                }
            }
            marker = xml_values(&xml, "NextMarker")
                .into_iter()
                .next()
                .unwrap_or_default();
            if marker.is_empty() {
                return Ok(deleted);
            }
        }
    }
}

fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(
            after[..j]
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let rfc = super::client::rfc1123(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    // Reuse the civil-date code through rfc1123: "Sat, 28 Nov 2026 10:00:00 GMT".
    let p: Vec<&str> = rfc.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == p[2])
    .unwrap_or(0)
        + 1;
    format!("{}-{month:02}-{}T{}Z", p[3], p[1], p[4])
}
