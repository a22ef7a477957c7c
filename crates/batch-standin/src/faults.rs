//! Fault injection: throttling, dropped connections, body-size limits,
//! preempted nodes, pool resize errors, per-task server errors, the
//! active-job quota, auto-pools that cannot be created and refused SAS
//! signatures on resource files. Faults come from `--fault JSON` flags at start-up and
//! from `POST /_standin/faults` at run time; each fires `count` times and
//! is then disarmed.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

fn one() -> u32 {
    1
}

fn unusable() -> String {
    "unusable".to_owned()
}

fn quota_code() -> String {
    "AccountCoreQuotaReached".to_owned()
}

/// One armed fault. The JSON form is `{"kind": "...", ...fields}` with
/// camelCase field names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Fault {
    /// Answer the next `count` matching requests with `status` (429, 503,
    /// 500, 408...) and a BatchError body (with `code`, else the code the
    /// service uses with that status), plus `Retry-After` if set.
    Status {
        status: u16,
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
    },
    /// Close the connection without an answer for the next `count` matching
    /// requests; with `after: true` the request is carried out first, so
    /// the client cannot know whether it happened.
    Drop {
        #[serde(default = "one")]
        count: u32,
        #[serde(default)]
        after: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
    },
    /// Refuse bodies larger than `bytes` with 413 RequestBodyTooLarge (the
    /// service's own limit is 1 MiB). Stays until cleared.
    BodyLimit { bytes: usize },
    /// Preempt the node under the next `count` tasks that start running:
    /// kill the process `delayMs` after it starts and requeue the task
    /// (requeueCount + 1, not a retry).
    Preempt {
        #[serde(default = "one")]
        count: u32,
        #[serde(default)]
        delay_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id_contains: Option<String>,
    },
    /// The next `count` pools created (or the pool `poolId`) fail to
    /// allocate: `resizeErrors` gets `{code, message}`, allocationState
    /// goes steady with 0 nodes.
    ResizeError {
        #[serde(default = "quota_code")]
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool_id: Option<String>,
        #[serde(default = "one")]
        count: u32,
    },
    /// At the next allocation of a matching pool, `nodes` of its nodes come
    /// up `unusable` or `starttaskfailed` (never scheduled), with `stderr`
    /// as their `startup/stderr.txt`.
    NodeFailure {
        #[serde(default = "unusable")]
        state: String,
        #[serde(default = "one")]
        nodes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
        #[serde(default = "one")]
        count: u32,
    },
    /// In `addtaskcollection`, answer `status: servererror` for the next
    /// `count` tasks (they are not added).
    TaskServerError {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id_contains: Option<String>,
    },
    /// Refuse the next `count` job creations with 409 ActiveJobAndScheduleQuotaReached.
    JobQuota {
        #[serde(default = "one")]
        count: u32,
    },
    /// The next `count` jobs with an `autoPoolSpecification` cannot get their
    /// pool: as on the service, the job is created, then (after the
    /// allocation delay) it completes with `executionInfo.schedulingError`
    /// `{category: usererror, code, message}` and its active tasks stay active.
    AutoPoolFailure {
        #[serde(default = "auto_pool_quota_code")]
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default = "one")]
        count: u32,
    },
    /// The next `count` resource-file downloads (tasks' and job preparation tasks') whose URL
    /// contains `urlContains` go out with their SAS signature altered, so Blob Storage
    /// really refuses them (403), as it refuses a SAS signed with a key since rotated.
    SasRefused {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url_contains: Option<String>,
        #[serde(default = "one")]
        count: u32,
    },
}

fn auto_pool_quota_code() -> String {
    "AutoPoolCreationFailedWithQuotaReached".to_owned()
}

/// What the HTTP layer must do with a request before handling it.
pub(crate) enum HttpFault {
    Status {
        status: u16,
        code: Option<String>,
        retry_after: Option<u64>,
    },
    DropBefore,
    DropAfter,
}

#[derive(Default)]
pub(crate) struct Faults {
    armed: Mutex<Vec<Fault>>,
}

fn hit(
    path_contains: &Option<String>,
    method_f: &Option<String>,
    method: &str,
    path: &str,
) -> bool {
    path_contains.as_deref().is_none_or(|p| path.contains(p))
        && method_f
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
}

impl Faults {
    pub(crate) fn arm(&self, f: Fault) {
        let mut a = self.armed.lock().expect("faults lock");
        if let Fault::BodyLimit { .. } = f {
            a.retain(|x| !matches!(x, Fault::BodyLimit { .. }));
        }
        a.push(f);
    }

    pub(crate) fn clear(&self) {
        self.armed.lock().expect("faults lock").clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.armed.lock().expect("faults lock").clone()
    }

    pub(crate) fn body_limit(&self) -> Option<usize> {
        self.armed
            .lock()
            .expect("faults lock")
            .iter()
            .find_map(|f| match f {
                Fault::BodyLimit { bytes } => Some(*bytes),
                _ => None,
            })
    }

    /// Finds the first armed fault `pick` accepts, counts one firing and
    /// disarms it when its count reaches zero.
    fn take<T>(&self, mut pick: impl FnMut(&mut Fault) -> Option<(T, &mut u32)>) -> Option<T> {
        let mut a = self.armed.lock().expect("faults lock");
        let mut found = None;
        for (i, f) in a.iter_mut().enumerate() {
            if let Some((t, count)) = pick(f) {
                *count = count.saturating_sub(1);
                found = Some((i, t, *count == 0));
                break;
            }
        }
        let (i, t, spent) = found?;
        if spent {
            a.remove(i);
        }
        Some(t)
    }

    pub(crate) fn take_http(&self, method: &str, path: &str) -> Option<HttpFault> {
        self.take(|f| match f {
            Fault::Status {
                status,
                count,
                code,
                retry_after,
                path_contains,
                method: m,
            } if hit(path_contains, m, method, path) => Some((
                HttpFault::Status {
                    status: *status,
                    code: code.clone(),
                    retry_after: *retry_after,
                },
                count,
            )),
            Fault::Drop {
                count,
                after,
                path_contains,
                method: m,
            } if hit(path_contains, m, method, path) => Some((
                if *after {
                    HttpFault::DropAfter
                } else {
                    HttpFault::DropBefore
                },
                count,
            )),
            _ => None,
        })
    }

    pub(crate) fn take_preempt(&self, task_id: &str) -> Option<u64> {
        self.take(|f| match f {
            Fault::Preempt {
                count,
                delay_ms,
                task_id_contains,
            } if task_id_contains
                .as_deref()
                .is_none_or(|s| task_id.contains(s)) =>
            {
                Some((*delay_ms, count))
            }
            _ => None,
        })
    }

    pub(crate) fn take_resize_error(&self, pool: &str) -> Option<(String, Option<String>)> {
        self.take(|f| match f {
            Fault::ResizeError {
                code,
                message,
                pool_id,
                count,
            } if pool_id.as_deref().is_none_or(|p| p == pool) => {
                Some(((code.clone(), message.clone()), count))
            }
            _ => None,
        })
    }

    /// (node state, how many nodes, startup stderr) for a pool allocation.
    pub(crate) fn take_node_failure(&self, pool: &str) -> Option<(String, u32, Option<String>)> {
        self.take(|f| match f {
            Fault::NodeFailure {
                state,
                nodes,
                pool_id,
                stderr,
                count,
            } if pool_id.as_deref().is_none_or(|p| p == pool) => {
                Some(((state.clone(), *nodes, stderr.clone()), count))
            }
            _ => None,
        })
    }

    pub(crate) fn take_task_server_error(&self, task_id: &str) -> bool {
        self.take(|f| match f {
            Fault::TaskServerError {
                count,
                task_id_contains,
            } if task_id_contains
                .as_deref()
                .is_none_or(|s| task_id.contains(s)) =>
            {
                Some(((), count))
            }
            _ => None,
        })
        .is_some()
    }

    /// (code, message) when the next auto-pool must fail.
    pub(crate) fn take_auto_pool_failure(&self) -> Option<(String, Option<String>)> {
        self.take(|f| match f {
            Fault::AutoPoolFailure {
                code,
                message,
                count,
            } => Some(((code.clone(), message.clone()), count)),
            _ => None,
        })
    }

    /// The resource file `rf` as it is downloaded: with its signature altered while a
    /// [`Fault::SasRefused`] matches its URL.
    pub(crate) fn resource_file(&self, rf: &serde_json::Value) -> serde_json::Value {
        let url = rf["httpUrl"].as_str().unwrap_or_default();
        let hit = self.take(|f| match f {
            Fault::SasRefused {
                url_contains,
                count,
            } if url_contains.as_deref().is_none_or(|c| url.contains(c)) => Some(((), count)),
            _ => None,
        });
        let mut rf = rf.clone();
        if hit.is_some() {
            rf["httpUrl"] = url.replacen("sig=", "sig=refused", 1).into();
        }
        rf
    }

    pub(crate) fn take_job_quota(&self) -> bool {
        self.take(|f| match f {
            Fault::JobQuota { count } => Some(((), count)),
            _ => None,
        })
        .is_some()
    }
}

/// The BatchError code the service uses with each throttling status.
pub(crate) fn status_code_name(status: u16) -> &'static str {
    match status {
        429 => "TooManyRequests",
        503 => "ServerBusy",
        500 => "InternalError",
        408 => "OperationTimedOut",
        _ => "ServerBusy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_json_is_strict_and_counts_down() {
        let f: Fault =
            serde_json::from_str(r#"{"kind":"status","status":429,"count":2,"retryAfter":1}"#)
                .unwrap();
        assert!(
            serde_json::from_str::<Fault>(r#"{"kind":"status","status":429,"retry_after":1}"#)
                .is_err(),
            "typos are refused"
        );
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"nope"}"#).is_err());
        let faults = Faults::default();
        faults.arm(f);
        assert!(faults.take_http("GET", "/pools").is_some());
        assert!(faults.take_http("GET", "/pools").is_some());
        assert!(faults.take_http("GET", "/pools").is_none());
        assert!(faults.list().is_empty());
    }
}
