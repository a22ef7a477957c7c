//! Microsoft's `BatchService.json` (api-version 2025-06-01), embedded at build
//! time: it routes each request to its `operationId` and validates query,
//! headers and body against the operation's parameters and the spec's
//! definitions.
//!
//! The validator covers the JSON-schema subset the spec uses: `$ref`, `type`,
//! `format` (int32, int64, date-time, duration), `enum`, `required`,
//! `properties`, `additionalProperties`, `items`, and for query parameters
//! `minimum`/`maximum`. Properties the schema does not define (including
//! read-only ones) are refused, as the service's strict OData reader does, so a
//! misspelt field fails here instead of being silently ignored.

use hyper::StatusCode;
use serde_json::{Map, Value};

use crate::response::BatchError;
use crate::timefmt;

const SPEC_JSON: &str = include_str!("../spec/BatchService.json");

#[derive(Debug)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
pub(crate) struct Operation {
    pub id: String,
    pub method: String,
    segments: Vec<Segment>,
    query: Vec<Value>,
    headers: Vec<Value>,
    /// The body parameter's schema and whether the body is required.
    body: Option<(Value, bool)>,
    /// The schema of the success response, if it has a body.
    response: Option<Value>,
}

/// What `check` is validating: a request (read-only properties refused) or
/// one of our own responses (read-only allowed, `odata.*` annotations
/// allowed, required properties skipped when `$select` trimmed them).
#[derive(Clone, Copy)]
struct Mode {
    response: bool,
    required: bool,
}

const REQUEST: Mode = Mode {
    response: false,
    required: true,
};

pub(crate) struct Spec {
    definitions: Map<String, Value>,
    ops: Vec<Operation>,
}

pub(crate) enum Route<'a> {
    Found(&'a Operation, Vec<(String, String)>),
    WrongMethod,
    NotFound,
}

impl Spec {
    pub(crate) fn load() -> Result<Spec, String> {
        let root: Value = serde_json::from_str(SPEC_JSON).map_err(|e| e.to_string())?;
        let definitions = root["definitions"]
            .as_object()
            .cloned()
            .ok_or("no definitions")?;
        let shared = root["parameters"].as_object().cloned().unwrap_or_default();
        let mut ops = Vec::new();
        for (path, item) in root["paths"].as_object().ok_or("no paths")? {
            for (method, op) in item.as_object().ok_or("bad path item")? {
                if method == "parameters" {
                    continue;
                }
                let id = op["operationId"]
                    .as_str()
                    .ok_or("no operationId")?
                    .to_owned();
                let segments = path
                    .trim_start_matches('/')
                    .split('/')
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(p) => Segment::Param(p.to_owned()),
                            None => Segment::Literal(s.to_owned()),
                        },
                    )
                    .collect();
                let (mut query, mut headers, mut body) = (Vec::new(), Vec::new(), None);
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let p = match p["$ref"].as_str() {
                        Some(r) => shared
                            .get(r.trim_start_matches("#/parameters/"))
                            .cloned()
                            .ok_or_else(|| format!("unresolved parameter {r}"))?,
                        None => p.clone(),
                    };
                    match p["in"].as_str() {
                        Some("query") => query.push(p),
                        Some("header") => headers.push(p),
                        Some("body") => {
                            body =
                                Some((p["schema"].clone(), p["required"].as_bool() == Some(true)))
                        }
                        _ => {}
                    }
                }
                let response = op["responses"]
                    .as_object()
                    .and_then(|r| r.iter().find(|(code, _)| code.starts_with('2')))
                    .map(|(_, r)| r["schema"].clone())
                    .filter(|s| !s.is_null());
                ops.push(Operation {
                    response,
                    id,
                    method: method.to_ascii_uppercase(),
                    segments,
                    query,
                    headers,
                    body,
                });
            }
        }
        Ok(Spec { definitions, ops })
    }

    /// Finds the operation for `method` and a percent-decoded list of path
    /// segments. A trailing `{filePath}` takes the rest of the path, since
    /// file paths contain slashes.
    pub(crate) fn route(&self, method: &str, segs: &[String]) -> Route<'_> {
        // (operation, path parameters, literal segments matched)
        type Candidate<'a> = (&'a Operation, Vec<(String, String)>, usize);
        let mut best: Option<Candidate<'_>> = None;
        let mut path_matched = false;
        for op in &self.ops {
            let Some((params, literals)) = match_segments(&op.segments, segs) else {
                continue;
            };
            path_matched = true;
            if op.method != method {
                continue;
            }
            if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
                best = Some((op, params, literals));
            }
        }
        match best {
            Some((op, params, _)) => Route::Found(op, params),
            None if path_matched => Route::WrongMethod,
            None => Route::NotFound,
        }
    }

    /// Checks the query against the operation's query parameters. Names
    /// compare case-insensitively (the spec says `timeOut`, clients send
    /// `timeout`). `$skiptoken` is allowed everywhere: it is how the
    /// service's own `odata.nextLink` continues a list.
    pub(crate) fn validate_query(
        &self,
        op: &Operation,
        query: &[(String, String)],
    ) -> Result<(), BatchError> {
        for (name, value) in query {
            if name.eq_ignore_ascii_case("$skiptoken") {
                continue;
            }
            let Some(p) = op.query.iter().find(|p| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }) else {
                return Err(bad_query(
                    name,
                    value,
                    &format!("{name} is not a query parameter of {}", op.id),
                ));
            };
            check_scalar(p, value).map_err(|reason| bad_query(name, value, &reason))?;
        }
        for p in &op.query {
            let name = p["name"].as_str().unwrap_or_default();
            if p["required"].as_bool() == Some(true)
                && !query.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                return Err(BatchError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredQueryParameter",
                    "A query parameter that's mandatory for this request is not specified.",
                )
                .value("QueryParameterName", name));
            }
        }
        Ok(())
    }

    /// Checks the typed request headers the operation declares
    /// (`ocp-date`, `return-client-request-id`, conditional headers).
    pub(crate) fn validate_headers(
        &self,
        op: &Operation,
        headers: &hyper::HeaderMap,
    ) -> Result<(), BatchError> {
        for p in &op.headers {
            let name = p["name"].as_str().unwrap_or_default();
            let Some(v) = headers.get(name) else { continue };
            let v = v.to_str().unwrap_or("\u{fffd}");
            let bad = match (p["type"].as_str(), p["format"].as_str()) {
                (_, Some("date-time-rfc7231")) => timefmt::parse_rfc1123(v).is_none(),
                (Some("boolean"), _) => {
                    !matches!(v.to_ascii_lowercase().as_str(), "true" | "false")
                }
                _ => false,
            };
            if bad {
                return Err(BatchError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidHeaderValue",
                    "The value for one of the HTTP headers is not in the correct format.",
                )
                .value("HeaderName", name)
                .value("HeaderValue", v));
            }
        }
        Ok(())
    }

    /// Whether the operation takes a body at all.
    pub(crate) fn takes_body(&self, op: &Operation) -> bool {
        op.body.is_some()
    }

    /// Parses and validates the request body. Returns `Value::Null` for an
    /// operation without a body or an optional body left empty.
    pub(crate) fn validate_body(&self, op: &Operation, raw: &[u8]) -> Result<Value, BatchError> {
        let Some((schema, required)) = &op.body else {
            return Ok(Value::Null);
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            if *required {
                return Err(invalid_body("The request body is missing."));
            }
            return Ok(Value::Null);
        }
        let mut value: Value = serde_json::from_slice(raw)
            .map_err(|e| invalid_body(&format!("The request body is not valid JSON: {e}")))?;
        self.check(schema, &value, "", "", REQUEST)?;
        self.canonical_enums(schema, &mut value);
        Ok(value)
    }

    /// Rewrites every enum value to the spec's spelling. The service takes enums in any
    /// case (the JS SDK sends `taskCompletion` for `taskcompletion`), and the rest of the
    /// stand-in compares stored values with the spec's spelling.
    fn canonical_enums(&self, schema: &Value, v: &mut Value) {
        if let Some(r) = schema["$ref"].as_str() {
            if let Some(def) = self.definitions.get(r.trim_start_matches("#/definitions/")) {
                self.canonical_enums(def, v);
            }
            return;
        }
        if let (Some(allowed), Some(s)) = (schema["enum"].as_array(), v.as_str())
            && let Some(spelt) = allowed
                .iter()
                .filter_map(Value::as_str)
                .find(|a| a.eq_ignore_ascii_case(s))
        {
            *v = Value::String(spelt.to_owned());
            return;
        }
        match v {
            Value::Object(obj) => {
                for (k, val) in obj.iter_mut() {
                    match schema["properties"].get(k.as_str()) {
                        Some(ps) => self.canonical_enums(ps, val),
                        None if schema["additionalProperties"].is_object() => {
                            self.canonical_enums(&schema["additionalProperties"], val)
                        }
                        None => {}
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.canonical_enums(&schema["items"], item);
                }
            }
            _ => {}
        }
    }

    /// Validates `value` against definition `name` (tests use this directly).
    #[cfg(test)]
    pub(crate) fn validate_definition(&self, name: &str, value: &Value) -> Result<(), BatchError> {
        let schema = serde_json::json!({"$ref": format!("#/definitions/{name}")});
        self.check(&schema, value, "", "", REQUEST)
    }

    /// Checks one of our own success bodies against the operation's
    /// response schema; `selected` relaxes required properties.
    pub(crate) fn validate_response(
        &self,
        op: &Operation,
        body: &Value,
        selected: bool,
    ) -> Result<(), BatchError> {
        let Some(schema) = &op.response else {
            return Ok(());
        };
        let mode = Mode {
            response: true,
            required: !selected,
        };
        self.check(schema, body, "", "", mode)
    }

    fn check(
        &self,
        schema: &Value,
        v: &Value,
        path: &str,
        type_name: &str,
        mode: Mode,
    ) -> Result<(), BatchError> {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/definitions/");
            let def = self
                .definitions
                .get(name)
                .ok_or_else(|| invalid_body(&format!("the spec has no definition {name}")))?;
            return self.check(def, v, path, name, mode);
        }
        if v.is_null() {
            // An explicit null is the same as leaving an optional property out.
            return Ok(());
        }
        let shown = || match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Some(allowed) = schema["enum"].as_array() {
            return check_enum(allowed, v, path, &shown());
        }
        let ty = schema["type"]
            .as_str()
            .unwrap_or(if schema.get("properties").is_some() {
                "object"
            } else {
                ""
            });
        let wrong_type =
            || BatchError::bad_value(path, &shown(), format!("The value is not of type {ty}"));
        match ty {
            "object" => {
                let obj = v.as_object().ok_or_else(wrong_type)?;
                self.check_object(schema, obj, path, type_name, mode)
            }
            "array" => {
                let arr = v.as_array().ok_or_else(wrong_type)?;
                for (i, item) in arr.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{path}[{i}]"), "", mode)?;
                }
                Ok(())
            }
            "string" => check_string(schema, v.as_str().ok_or_else(wrong_type)?, path),
            "integer" => {
                let n = v.as_i64().ok_or_else(wrong_type)?;
                if schema["format"].as_str() == Some("int32") && i32::try_from(n).is_err() {
                    return Err(BatchError::bad_value(
                        path,
                        &shown(),
                        "The value is out of range for int32",
                    ));
                }
                Ok(())
            }
            "number" => v.as_f64().map(|_| ()).ok_or_else(wrong_type),
            "boolean" => v.as_bool().map(|_| ()).ok_or_else(wrong_type),
            _ => Ok(()),
        }
    }

    /// An object: each property against its schema (or `additionalProperties`), unknown names
    /// refused, then the required ones.
    fn check_object(
        &self,
        schema: &Value,
        obj: &serde_json::Map<String, Value>,
        path: &str,
        type_name: &str,
        mode: Mode,
    ) -> Result<(), BatchError> {
        let props = schema["properties"].as_object();
        for (k, val) in obj {
            let sub = join(path, k);
            if mode.response && k.starts_with("odata.") {
                continue;
            }
            match props.and_then(|p| p.get(k)) {
                Some(ps) if mode.response || ps["readOnly"].as_bool() != Some(true) => {
                    self.check(ps, val, &sub, "", mode)?
                }
                _ => match &schema["additionalProperties"] {
                    Value::Object(ap) => {
                        self.check(&Value::Object(ap.clone()), val, &sub, "", mode)?
                    }
                    Value::Bool(true) => {}
                    _ => {
                        let on = if type_name.is_empty() {
                            "the request body"
                        } else {
                            type_name
                        };
                        return Err(invalid_body(&format!(
                            "The property '{sub}' does not exist on type '{on}'. Make sure to only use property names that are defined by the type."
                        )));
                    }
                },
            }
        }
        // Unknown names first: a misspelt property then reads as
        // such rather than as the correct one being missing.
        let required = schema["required"].as_array().filter(|_| mode.required);
        for req in required.into_iter().flatten() {
            let req = req.as_str().unwrap_or_default();
            if obj.get(req).is_none_or(Value::is_null) {
                return Err(BatchError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredProperty",
                    "A required property was not specified in the request body.",
                )
                .value("PropertyName", join(path, req)));
            }
        }
        Ok(())
    }
}

/// A string, and its `format` (`date-time`, `duration`) when the schema gives one.
fn check_string(schema: &Value, s: &str, path: &str) -> Result<(), BatchError> {
    let ok = match schema["format"].as_str() {
        Some("date-time") => timefmt::parse_rfc3339(s).is_some(),
        Some("duration") => timefmt::parse_duration(s).is_some(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(BatchError::bad_value(
            path,
            s,
            format!(
                "The value is not a valid {}",
                schema["format"].as_str().unwrap_or("string")
            ),
        ))
    }
}

/// One of the schema's enum values; `shown` is the value as an error quotes it.
fn check_enum(allowed: &[Value], v: &Value, path: &str, shown: &str) -> Result<(), BatchError> {
    // Enums are read whatever their case, and the service answers some in another
    // case than the spec's (`Success`, `TaskCompletion`, `Spread`).
    let same = |a: &Value| match (a.as_str(), v.as_str()) {
        (Some(a), Some(s)) => a.eq_ignore_ascii_case(s),
        _ => a == v,
    };
    if !allowed.iter().any(same) {
        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        return Err(BatchError::bad_value(
            path,
            shown,
            format!("The value is not one of: {}", names.join(", ")),
        ));
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn match_segments(tpl: &[Segment], segs: &[String]) -> Option<(Vec<(String, String)>, usize)> {
    let mut params = Vec::new();
    let mut literals = 0;
    for (i, t) in tpl.iter().enumerate() {
        match t {
            Segment::Literal(l) => {
                if segs.get(i)? != l {
                    return None;
                }
                literals += 1;
            }
            Segment::Param(p) if p == "filePath" && i == tpl.len() - 1 => {
                if segs.len() <= i || segs[i..].iter().any(String::is_empty) {
                    return None;
                }
                params.push((p.clone(), segs[i..].join("/")));
                return Some((params, literals));
            }
            Segment::Param(p) => {
                let s = segs.get(i)?;
                if s.is_empty() {
                    return None;
                }
                params.push((p.clone(), s.clone()));
            }
        }
    }
    (segs.len() == tpl.len()).then_some((params, literals))
}

/// Checks one query value against a parameter's `type`, `enum` and range.
fn check_scalar(p: &Value, value: &str) -> Result<(), String> {
    match p["type"].as_str() {
        Some("integer") => {
            let n: i64 = value
                .parse()
                .map_err(|_| "The value is not an integer".to_owned())?;
            if let Some(min) = p["minimum"].as_i64().filter(|m| n < *m) {
                return Err(format!("The value must be at least {min}"));
            }
            if let Some(max) = p["maximum"].as_i64().filter(|m| n > *m) {
                return Err(format!("The value must be at most {max}"));
            }
        }
        Some("boolean") if !matches!(value, "true" | "false" | "True" | "False") => {
            return Err("The value is not a boolean".to_owned());
        }
        Some("string")
            if p["minLength"]
                .as_u64()
                .is_some_and(|m| (value.len() as u64) < m) =>
        {
            return Err("The value is empty".to_owned());
        }
        _ => {}
    }
    if let Some(allowed) = p["enum"].as_array()
        && !allowed.iter().any(|a| a.as_str() == Some(value))
    {
        return Err("The value is not one of the allowed values".to_owned());
    }
    Ok(())
}

pub(crate) fn bad_query(name: &str, value: &str, reason: &str) -> BatchError {
    BatchError::new(
        StatusCode::BAD_REQUEST,
        "InvalidQueryParameterValue",
        "Value for one of the query parameters specified in the request URI is invalid.",
    )
    .value("QueryParameterName", name)
    .value("QueryParameterValue", value)
    .value("Reason", reason)
}

pub(crate) fn invalid_body(reason: &str) -> BatchError {
    BatchError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        "The specified Request Body is not syntactically valid.",
    )
    .value("Reason", reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Microsoft's example request bodies must pass our validator.
    #[test]
    fn microsoft_examples_validate() {
        let spec = Spec::load().unwrap();
        let cases = [
            (
                include_str!(
                    "../tests/spec-examples/Pools_CreatePool_VirtualMachineConfiguration.json"
                ),
                "pool",
                "BatchPoolCreateOptions",
            ),
            (
                include_str!("../tests/spec-examples/Jobs_CreateJob_Basic.json"),
                "job",
                "BatchJobCreateOptions",
            ),
            (
                include_str!("../tests/spec-examples/Tasks_CreateTask_Basic.json"),
                "task",
                "BatchTaskCreateOptions",
            ),
            (
                include_str!("../tests/spec-examples/Tasks_CreateTaskCollection_Basic.json"),
                "taskCollection",
                "BatchTaskGroup",
            ),
            (
                include_str!("../tests/spec-examples/Tasks_CreateTaskCollection_Complex.json"),
                "taskCollection",
                "BatchTaskGroup",
            ),
        ];
        for (text, param, def) in cases {
            let ex: Value = serde_json::from_str(text).unwrap();
            let body = &ex["parameters"][param];
            assert!(body.is_object(), "{param} missing in example");
            if let Err(e) = spec.validate_definition(def, body) {
                panic!("{def} example rejected: {} {:?}", e.code, e.values);
            }
        }
    }

    #[test]
    fn rejects_what_the_service_rejects() {
        let spec = Spec::load().unwrap();
        let code = |def: &str, v: Value| spec.validate_definition(def, &v).unwrap_err().code;
        assert_eq!(
            code("BatchTaskCreateOptions", json!({"id": "t"})),
            "MissingRequiredProperty"
        );
        assert_eq!(
            code(
                "BatchTaskCreateOptions",
                json!({"id": 5, "commandLine": "x"})
            ),
            "InvalidPropertyValue"
        );
        assert_eq!(
            code(
                "BatchTaskCreateOptions",
                json!({"id": "t", "commandLine": "x", "comandLine": "y"})
            ),
            "InvalidRequestBody"
        );
        assert_eq!(
            code(
                "BatchTaskCreateOptions",
                json!({"id": "t", "commandLine": "x", "constraints": {"maxWallClockTime": "30 minutes"}})
            ),
            "InvalidPropertyValue"
        );
        assert_eq!(
            code(
                "BatchTaskCreateOptions",
                json!({"id": "t", "commandLine": "x", "outputFiles": [{"filePattern": "a", "destination": {}, "uploadOptions": {"uploadCondition": "whenever"}}]})
            ),
            "InvalidPropertyValue"
        );
        // Enums in another case are taken, as the service took `taskCompletion` from the JS SDK.
        let pascal = json!({"id": "t", "commandLine": "x", "outputFiles": [{"filePattern": "a", "destination": {}, "uploadOptions": {"uploadCondition": "TaskSuccess"}}]});
        spec.validate_definition("BatchTaskCreateOptions", &pascal)
            .unwrap();
        // Read-only properties are not accepted in requests.
        assert_eq!(
            code(
                "BatchTaskCreateOptions",
                json!({"id": "t", "commandLine": "x", "state": "active"})
            ),
            "InvalidRequestBody"
        );
        assert_eq!(
            code("BatchJobUpdateOptions", json!({"priority": 1.5})),
            "InvalidPropertyValue"
        );
        assert_eq!(
            code(
                "BatchJobUpdateOptions",
                json!({"priority": 4_000_000_000_i64})
            ),
            "InvalidPropertyValue"
        );
    }

    #[test]
    fn response_checks_allow_read_only_and_need_required() {
        let spec = Spec::load().unwrap();
        let op = |id: &str| spec.ops.iter().find(|o| o.id == id).unwrap();
        let counts = op("Jobs_GetJobTaskCounts");
        let c = json!({"active": 0, "running": 1, "completed": 2, "succeeded": 1, "failed": 1});
        spec.validate_response(
            counts,
            &json!({"taskCounts": c, "taskSlotCounts": c}),
            false,
        )
        .unwrap();
        let e = spec
            .validate_response(counts, &json!({"taskCounts": c}), false)
            .unwrap_err();
        assert_eq!(e.code, "MissingRequiredProperty");
        let list = op("Tasks_ListTasks");
        let page = json!({"odata.metadata": "x", "value": [{"id": "t", "state": "completed"}], "odata.nextLink": "y"});
        spec.validate_response(list, &page, true).unwrap();
        assert!(
            spec.validate_response(list, &page, false).is_err(),
            "a full task needs url, eTag..."
        );
    }

    #[test]
    fn routes_by_template() {
        let spec = Spec::load().unwrap();
        let segs = |p: &str| {
            p.trim_start_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let Route::Found(op, params) =
            spec.route("GET", &segs("/jobs/j1/tasks/t1/files/wd/out/result.txt"))
        else {
            panic!("no route")
        };
        assert_eq!(op.id, "Tasks_GetTaskFile");
        assert_eq!(
            params[2],
            ("filePath".to_owned(), "wd/out/result.txt".to_owned())
        );
        let Route::Found(op, _) = spec.route("POST", &segs("/jobs/j1/addtaskcollection")) else {
            panic!()
        };
        assert_eq!(op.id, "Tasks_CreateTaskCollection");
        let Route::Found(op, _) = spec.route("HEAD", &segs("/pools/p1")) else {
            panic!()
        };
        assert_eq!(op.id, "Pools_PoolExists");
        assert!(matches!(
            spec.route("PUT", &segs("/pools")),
            Route::WrongMethod
        ));
        assert!(matches!(
            spec.route("GET", &segs("/nothing")),
            Route::NotFound
        ));
    }
}
