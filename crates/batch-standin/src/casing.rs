//! How the real service spells what it answers, where that differs from the spec. Taken from
//! exchanges Microsoft's SDK test suites recorded against live Batch
//! (`tests/fixtures/azure-recordings/` in this repository):
//!
//! - `addtaskcollection` results say `Success` / `ClientError` / `ServerError` (the spec's enum
//!   says `success` / `clienterror` / `servererror`);
//! - an output file's `uploadCondition` comes back `TaskCompletion` for `taskCompletion`, a
//!   pool's `nodeFillType` `Spread`, and its `vmSize` in lower case (`standard_d1_v2`);
//! - error categories (`failureInfo`, `schedulingError`) are `UserError` / `ServerError`, as in
//!   Microsoft's Batch error-handling documentation (the spec says `usererror` / `servererror`;
//!   no recording has a failed task);
//! - every JSON body carries `odata.metadata`, `$metadata#<entity set>` plus `/@Element` for a
//!   single entity;
//! - states, results, `osType` and the like stay in the spec's lower case.
//!
//! A client written against the spec's casing breaks on the real service; answering like it
//! here makes such a client fail its tests instead.

use serde_json::{Map, Value};

/// `BatchTaskAddStatus` as the service writes it.
pub(crate) fn task_add_status(added: bool, server_error: bool) -> &'static str {
    match (added, server_error) {
        (true, _) => "Success",
        (false, true) => "ServerError",
        (false, false) => "ClientError",
    }
}

/// `BatchErrorSourceCategory` as the service writes it.
pub(crate) fn error_category(spec: &str) -> &'static str {
    if spec.eq_ignore_ascii_case("servererror") {
        "ServerError"
    } else {
        "UserError"
    }
}

/// The service's echo of an enum it stores by name (PascalCase).
fn pascal(v: &str) -> Option<&'static str> {
    const NAMES: [&str; 5] = [
        "TaskSuccess",
        "TaskFailure",
        "TaskCompletion",
        "Spread",
        "Pack",
    ];
    NAMES.into_iter().find(|n| n.eq_ignore_ascii_case(v))
}

fn pascal_at(v: Option<&mut Value>) {
    if let Some(v) = v
        && let Some(p) = v.as_str().and_then(pascal)
    {
        *v = Value::String(p.to_owned());
    }
}

/// A pool (or auto-pool specification) as the service renders it.
pub(crate) fn echo_pool(o: &mut Map<String, Value>) {
    if let Some(Value::String(size)) = o.get_mut("vmSize") {
        *size = size.to_ascii_lowercase();
    }
    pascal_at(
        o.get_mut("taskSchedulingPolicy")
            .and_then(|p| p.get_mut("nodeFillType")),
    );
}

/// A task as the service renders it.
pub(crate) fn echo_task(o: &mut Map<String, Value>) {
    let files = o.get_mut("outputFiles").and_then(Value::as_array_mut);
    for f in files.into_iter().flatten() {
        pascal_at(
            f.get_mut("uploadOptions")
                .and_then(|u| u.get_mut("uploadCondition")),
        );
    }
}

/// Adds `odata.metadata` for `fragment` (`pools/@Element`, `taskaddresult`, ...).
pub(crate) fn with_metadata(mut body: Value, base_url: &str, fragment: &str) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "odata.metadata".into(),
            Value::String(format!("{base_url}/$metadata#{fragment}")),
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn echoes_as_recorded() {
        let mut pool = json!({"vmSize": "Standard_D2s_v3", "taskSchedulingPolicy": {"nodeFillType": "spread"}});
        echo_pool(pool.as_object_mut().unwrap());
        assert_eq!(pool["vmSize"], "standard_d2s_v3");
        assert_eq!(pool["taskSchedulingPolicy"]["nodeFillType"], "Spread");
        let mut task =
            json!({"outputFiles": [{"uploadOptions": {"uploadCondition": "taskcompletion"}}]});
        echo_task(task.as_object_mut().unwrap());
        assert_eq!(
            task["outputFiles"][0]["uploadOptions"]["uploadCondition"],
            "TaskCompletion"
        );
        assert_eq!(task_add_status(true, false), "Success");
        assert_eq!(task_add_status(false, true), "ServerError");
        assert_eq!(task_add_status(false, false), "ClientError");
    }
}
