//! What the stand-in sends back: `BatchError` bodies and the headers every
//! Batch response carries (`request-id`, the `client-request-id` echo, ETags).

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Value, json};

/// The JSON media type the service answers with.
pub(crate) const JSON_MEDIA: &str = "application/json;odata=minimalmetadata";

/// An error answer: HTTP status plus the spec's `BatchError` body
/// `{"code","message":{"lang","value"},"values":[{"key","value"}]}`.
#[derive(Debug, Clone)]
pub(crate) struct BatchError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub values: Vec<(String, String)>,
    /// Extra response headers, e.g. `Retry-After` on throttling.
    pub headers: Vec<(String, String)>,
}

impl BatchError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        BatchError {
            status,
            code: code.to_owned(),
            message: message.into(),
            values: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.push((key.to_owned(), value.into()));
        self
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The JSON body. The service appends the request id and time to the
    /// message text; clients should branch on `code`, never on this text.
    pub(crate) fn body(&self, base_url: &str, request_id: &str, now: &str) -> Value {
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        let mut body = json!({
            "odata.metadata": format!("{base_url}/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"),
            "code": self.code,
            "message": {"lang": "en-US", "value": format!("{}\nRequestId:{request_id}\nTime:{now}", self.message)},
        });
        if !values.is_empty() {
            body["values"] = Value::Array(values);
        }
        body
    }

    pub(crate) fn not_found(code: &str, what: &str) -> Self {
        BatchError::new(
            StatusCode::NOT_FOUND,
            code,
            format!("The specified {what} does not exist."),
        )
    }

    pub(crate) fn conflict(code: &str, message: impl Into<String>) -> Self {
        BatchError::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn bad_value(property: &str, value: &str, reason: impl Into<String>) -> Self {
        BatchError::new(
            StatusCode::BAD_REQUEST,
            "InvalidPropertyValue",
            "The value provided for one of the properties in the request body is invalid.",
        )
        .value("PropertyName", property)
        .value("PropertyValue", value)
        .value("Reason", reason)
    }

    pub(crate) fn body_too_large(reason: impl Into<String>) -> Self {
        BatchError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
        )
        .value("Reason", reason)
    }
}

/// A successful answer before the common headers are added.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: &Value) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".into(), JSON_MEDIA.into())],
            body: Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    pub(crate) fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The headers of a create (201) or an update: the entity's ETag, time
    /// and URL, as `DataServiceId` and `Location`.
    pub(crate) fn entity_headers(self, etag: &str, last_modified: &str, url: &str) -> Self {
        self.header("ETag", etag)
            .header("Last-Modified", last_modified)
            .header("DataServiceId", url)
            .header("Location", url)
    }
}

pub(crate) type ApiResult = Result<Reply, BatchError>;
