//! Calls that pools and jobs make alike: following a list's `odata.nextLink`, listing the ids
//! whose metadata carries our tag, and a delete that is done when the resource is gone.

use reqwest::{Method, Url};
use serde::Deserialize;

use super::{BatchClient, Call};
use crate::backend::azure_batch::model::{NameValue, Page};

/// A `Call` for an `odata.nextLink`.
pub(crate) fn next_call(next: &str) -> Result<Call, String> {
    let url = Url::parse(next).map_err(|e| format!("bad odata.nextLink: {e}"))?;
    let mut c = Call::get(url.path().to_owned());
    c.next_link = Some(url);
    Ok(c)
}

/// The two fields of a listed pool or job that tell whether it is ours.
#[derive(Deserialize)]
struct Tagged {
    id: String,
    #[serde(default)]
    metadata: Vec<NameValue>,
}

impl BatchClient {
    /// The ids a list call (`GET /pools`, `GET /jobs`) returns whose metadata `pick` accepts,
    /// over every page.
    pub(crate) async fn ids_tagged(
        &self,
        mut call: Call,
        pick: impl Fn(&[NameValue]) -> bool,
    ) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        loop {
            let page: Page<Tagged> = self.send_json(&call).await.map_err(|e| e.to_string())?;
            out.extend(
                page.value
                    .into_iter()
                    .filter(|t| pick(&t.metadata))
                    .map(|t| t.id),
            );
            match page.next_link {
                Some(n) => call = next_call(&n)?,
                None => return Ok(out),
            }
        }
    }

    /// Deletes `path`; `Ok(true)` when Batch accepted it, `Ok(false)` when it was already gone
    /// or going (404, or one of the `gone` error codes).
    pub(crate) async fn delete(&self, path: String, gone: [&str; 2]) -> Result<bool, String> {
        match self.send(&Call::new(Method::DELETE, path)).await {
            Ok(_) => Ok(true),
            Err(e) if gone.iter().any(|c| e.is_code(c)) || e.status == Some(404) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
