//! The Batch operations, keyed by the spec's `operationId`: pools, nodes,
//! supported images, jobs, tasks and task files. Bodies arrive already
//! validated against the spec; this file adds the service's semantic rules
//! (ids, conflicts, states) and answers with the spec's status codes.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::casing::{task_add_status, with_metadata};
use crate::files::is_contained;
use crate::odata::{ListQuery, page};
use crate::response::{ApiResult, BatchError, Reply};
use crate::runner;
use crate::server::Ctx;
use crate::state::{ExecInfo, Job, JobState, Pool, State, StopReason, Task, TaskState};
use crate::timefmt::{self, rfc1123, rfc3339};

pub(crate) fn dispatch(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    match c.op.as_str() {
        "Pools_ListSupportedImages" => supported_images(sh, c),
        "Pools_CreatePool" => create_pool(sh, c),
        "Pools_GetPool" => get_pool(sh, c),
        "Pools_PoolExists" => pool_exists(sh, c),
        "Pools_DeletePool" => delete_pool(sh, c),
        "Pools_ListPools" => list_pools(sh, c),
        "Pools_ResizePool" => resize_pool(sh, c),
        "Pools_StopPoolResize" => stop_resize(sh, c),
        "Pools_UpdatePool" => update_pool(sh, c),
        "Nodes_ListNodes" => list_nodes(sh, c),
        "Nodes_GetNode" => get_node(sh, c),
        "Nodes_GetNodeFile" => get_node_file(sh, c, true),
        "Nodes_ListNodeFiles" => list_node_files(sh, c),
        "Pools_ListPoolNodeCounts" => node_counts(sh, c),
        "Pools_EnablePoolAutoScale" => enable_autoscale(sh, c),
        "Pools_DisablePoolAutoScale" => disable_autoscale(sh, c),
        "Pools_EvaluatePoolAutoScale" => evaluate_autoscale(sh, c),
        "Jobs_DisableJob" => disable_job(sh, c),
        "Jobs_EnableJob" => enable_job(sh, c),
        "Tasks_ReactivateTask" => reactivate_task(sh, c),
        "Nodes_GetNodeFileProperties" => get_node_file(sh, c, false),
        "Jobs_CreateJob" => create_job(sh, c),
        "Jobs_GetJob" => get_job(sh, c),
        "Jobs_UpdateJob" => update_job(sh, c),
        "Jobs_DeleteJob" => delete_job(sh, c),
        "Jobs_TerminateJob" => terminate_job(sh, c),
        "Jobs_ListJobs" => list_jobs(sh, c),
        "Jobs_GetJobTaskCounts" => task_counts(sh, c),
        "Jobs_ListJobPreparationAndReleaseTaskStatus" => job_prep_status(sh, c),
        "Tasks_CreateTask" => create_task(sh, c),
        "Tasks_CreateTaskCollection" => create_task_collection(sh, c),
        "Tasks_ListTasks" => list_tasks(sh, c),
        "Tasks_GetTask" => get_task(sh, c),
        "Tasks_TerminateTask" => terminate_task(sh, c),
        "Tasks_DeleteTask" => delete_task(sh, c),
        "Tasks_ListTaskFiles" => list_task_files(sh, c),
        "Tasks_GetTaskFile" => get_task_file(sh, c, true),
        "Tasks_GetTaskFileProperties" => get_task_file(sh, c, false),
        other => Err(BatchError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplementedByStandIn",
            format!("The operation {other} is valid but batch-standin does not implement it."),
        )
        .value("OperationId", other)),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Batch ids: letters, digits, hyphens and underscores, at most 64 characters.
fn check_id(prop: &str, id: &str) -> Result<(), BatchError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(BatchError::bad_value(
            prop,
            id,
            "An id may contain letters, digits, hyphens and underscores, and at most 64 characters.",
        ));
    }
    Ok(())
}

fn missing(prop: &str) -> BatchError {
    BatchError::new(
        StatusCode::BAD_REQUEST,
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
    )
    .value("PropertyName", prop)
}

/// `If-Match` on updates and deletes: 412 when the entity changed.
fn if_match(c: &Ctx, etag: &str) -> Result<(), BatchError> {
    match c.headers.get("if-match").and_then(|v| v.to_str().ok()) {
        Some(m) if m != "*" && m.trim_matches('"') != etag => Err(BatchError::new(
            StatusCode::PRECONDITION_FAILED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )),
        _ => Ok(()),
    }
}

/// `If-None-Match` on gets: 304 when unchanged.
fn not_modified(c: &Ctx, etag: &str) -> bool {
    c.headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.trim_matches('"') == etag)
}

/// A single entity of the set `entity` (`pools`, `jobs`, `tasks`), `$select`-ed.
fn get_reply(
    sh: &Shared,
    c: &Ctx,
    entity: &str,
    body: Value,
    etag: &str,
    last_modified: OffsetDateTime,
) -> Reply {
    if not_modified(c, etag) {
        return Reply::empty(StatusCode::NOT_MODIFIED).header("ETag", etag);
    }
    let selected = c.query("$select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .collect::<Vec<_>>()
    });
    let body = crate::odata::select(body, selected.as_deref());
    Reply::json(
        StatusCode::OK,
        &with_metadata(body, &sh.base_url, &format!("{entity}/@Element")),
    )
    .header("ETag", etag)
    .header("Last-Modified", rfc1123(last_modified))
}

fn list_reply(sh: &Shared, c: &Ctx, items: Vec<(String, Value)>, entity: &str) -> ApiResult {
    let lq = ListQuery::from_query(&c.query)?;
    let self_url = format!("{}{}", sh.base_url, c.path);
    let meta = format!("{}/$metadata#{entity}", sh.base_url);
    Ok(Reply::json(
        StatusCode::OK,
        &page(items.into_iter(), &lq, &self_url, &c.query, &meta),
    ))
}

// ---------------------------------------------------------------- pools

/// The images `GET /supportedimages` lists: current Ubuntu and a few
/// others, all x86_64 except the explicit arm64 entry.
fn images() -> Vec<Value> {
    let img = |publisher: &str,
               offer: &str,
               sku: &str,
               agent: &str,
               verified: bool,
               eol: Option<&str>| {
        let mut v = json!({
            "nodeAgentSKUId": agent,
            "imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"},
            "osType": "linux",
            "verificationType": if verified { "verified" } else { "unverified" },
            "capabilities": [],
        });
        if let Some(e) = eol {
            v["batchSupportEndOfLife"] = json!(e);
        }
        v
    };
    vec![
        img(
            "canonical",
            "ubuntu-24_04-lts",
            "server",
            "batch.node.ubuntu 24.04",
            true,
            None,
        ),
        img(
            "canonical",
            "ubuntu-24_04-lts",
            "server-gen1",
            "batch.node.ubuntu 24.04",
            true,
            None,
        ),
        img(
            "canonical",
            "ubuntu-24_04-lts",
            "server-arm64",
            "batch.node.ubuntu 24.04-arm64",
            true,
            None,
        ),
        img(
            "canonical",
            "0001-com-ubuntu-server-jammy",
            "22_04-lts",
            "batch.node.ubuntu 22.04",
            true,
            Some("2027-06-30T00:00:00Z"),
        ),
        img(
            "canonical",
            "0001-com-ubuntu-server-jammy",
            "22_04-lts-gen2",
            "batch.node.ubuntu 22.04",
            true,
            Some("2027-06-30T00:00:00Z"),
        ),
        img(
            "microsoft-dsvm",
            "ubuntu-hpc",
            "2204",
            "batch.node.ubuntu 22.04",
            true,
            Some("2027-06-30T00:00:00Z"),
        ),
        img(
            "almalinux",
            "almalinux-hpc",
            "8_7-hpc-gen2",
            "batch.node.el 8",
            false,
            None,
        ),
    ]
}

fn supported_images(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = images()
        .into_iter()
        .map(|v| {
            let r = &v["imageReference"];
            let key = format!(
                "{}|{}|{}|{}",
                v["nodeAgentSKUId"], r["publisher"], r["offer"], r["sku"]
            );
            (key, v)
        })
        .collect();
    list_reply(sh, c, items, "supportedimages")
}

/// Checks a pool specification (from add pool or an auto pool) the way the
/// service does beyond the schema, and returns (dedicated, spot, slots).
fn check_pool_spec(spec: &Value, prefix: &str) -> Result<(u32, u32, u32), BatchError> {
    let p = |k: &str| format!("{prefix}{k}");
    check_image(spec, prefix)?;
    for unsupported in ["mountConfiguration", "applicationPackageReferences"] {
        if spec[unsupported].as_array().is_some_and(|a| !a.is_empty()) {
            return Err(BatchError::bad_value(
                &p(unsupported),
                "set",
                format!("batch-standin does not implement {unsupported}."),
            ));
        }
    }
    if spec["startTask"]["containerSettings"].is_object() {
        return Err(BatchError::bad_value(
            &p("startTask.containerSettings"),
            "set",
            "batch-standin does not run containers.",
        ));
    }
    for (i, rf) in spec["startTask"]["resourceFiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let fp = rf["filePath"].as_str().unwrap_or_default();
        if !rf["httpUrl"].is_string() || !is_contained(fp) {
            return Err(BatchError::bad_value(
                &p(&format!("startTask.resourceFiles[{i}]")),
                &rf.to_string(),
                "batch-standin needs httpUrl and a relative filePath inside the working directory.",
            ));
        }
    }
    let slots = spec["taskSlotsPerNode"].as_i64().unwrap_or(1);
    if !(1..=256).contains(&slots) {
        return Err(BatchError::bad_value(
            &p("taskSlotsPerNode"),
            &slots.to_string(),
            "taskSlotsPerNode must be between 1 and 256.",
        ));
    }
    let (d, l) = check_scaling(spec, prefix)?;
    if let Some(t) = spec["resizeTimeout"].as_str()
        && timefmt::parse_duration(t).is_none_or(|d| d.as_secs() < 300)
    {
        return Err(BatchError::bad_value(
            &p("resizeTimeout"),
            t,
            "The resize timeout must be at least 5 minutes.",
        ));
    }
    let n = |v: Option<i64>, k: &str| -> Result<u32, BatchError> {
        let v = v.unwrap_or(0);
        u32::try_from(v).map_err(|_| {
            BatchError::bad_value(&p(k), &v.to_string(), "Node counts cannot be negative.")
        })
    };
    Ok((
        n(d, "targetDedicatedNodes")?,
        n(l, "targetLowPriorityNodes")?,
        slots as u32,
    ))
}

/// A pool's image: given, and (when named by publisher) one `GET /supportedimages` lists with
/// its node agent.
fn check_image(spec: &Value, prefix: &str) -> Result<(), BatchError> {
    let p = |k: &str| format!("{prefix}{k}");
    let vmc = &spec["virtualMachineConfiguration"];
    if vmc.is_null() {
        return Err(missing(&p("virtualMachineConfiguration")));
    }
    let image = &vmc["imageReference"];
    let agent = vmc["nodeAgentSKUId"].as_str().unwrap_or_default();
    if image["publisher"].is_string() {
        let known = images().into_iter().any(|i| {
            let r = &i["imageReference"];
            ["publisher", "offer", "sku"].iter().all(|k| {
                r[*k].as_str().map(str::to_lowercase) == image[*k].as_str().map(str::to_lowercase)
            }) && i["nodeAgentSKUId"] == agent
        });
        if !known {
            return Err(BatchError::bad_value(
                &p("virtualMachineConfiguration.imageReference"),
                &image.to_string(),
                format!(
                    "The image and node agent SKU '{agent}' are not a supported combination (see GET /supportedimages)."
                ),
            ));
        }
    }
    Ok(())
}

/// Fixed node counts or an autoscale formula, not both; the fixed counts as given.
fn check_scaling(spec: &Value, prefix: &str) -> Result<(Option<i64>, Option<i64>), BatchError> {
    let p = |k: &str| format!("{prefix}{k}");
    let auto = spec["enableAutoScale"].as_bool().unwrap_or(false);
    let (d, l) = (
        spec["targetDedicatedNodes"].as_i64(),
        spec["targetLowPriorityNodes"].as_i64(),
    );
    if auto {
        if spec["autoScaleFormula"].as_str().is_none_or(str::is_empty) {
            return Err(missing(&p("autoScaleFormula")));
        }
        if d.is_some() || l.is_some() {
            return Err(BatchError::bad_value(
                &p("targetDedicatedNodes"),
                "set",
                "targetDedicatedNodes and targetLowPriorityNodes must not be specified when enableAutoScale is true.",
            ));
        }
        if let Some(i) = spec["autoScaleEvaluationInterval"].as_str() {
            let ok = timefmt::parse_duration(i)
                .is_some_and(|d| d.as_secs() >= 300 && d.as_secs() <= 168 * 3600);
            if !ok {
                return Err(BatchError::bad_value(
                    &p("autoScaleEvaluationInterval"),
                    i,
                    "Must be between 5 minutes and 168 hours.",
                ));
            }
        }
    } else if d.is_none() && l.is_none() {
        return Err(missing(&p("targetDedicatedNodes")));
    }
    Ok((d, l))
}

/// Inserts a pool in `resizing` state and starts its allocation.
fn insert_pool(
    sh: &Arc<Shared>,
    st: &mut State,
    id: &str,
    mut spec: Value,
    auto_for_job: Option<String>,
) -> Result<(), BatchError> {
    let (mut d, mut l, slots) = check_pool_spec(&spec, "")?;
    if spec["enableAutoScale"].as_bool() == Some(true) {
        (d, l) = (sh.config.autoscale_nodes, 0);
    }
    spec["id"] = json!(id);
    let t = now();
    let etag = st.etag();
    st.pools.insert(
        id.to_owned(),
        Pool {
            id: id.to_owned(),
            spec,
            created: t,
            last_modified: t,
            etag,
            state: "active",
            state_time: t,
            allocation_state: "resizing",
            allocation_time: t,
            target_dedicated: d,
            target_low: l,
            slots_per_node: slots,
            resize_errors: Vec::new(),
            nodes: Vec::new(),
            auto_for_job,
        },
    );
    runner::allocate_later(sh.clone(), id.to_owned());
    Ok(())
}

fn create_pool(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.body["id"].as_str().unwrap_or_default().to_owned();
    check_id("id", &id)?;
    let mut st = sh.lock();
    let existing = st
        .pools
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&id))
        .cloned();
    if let Some(p) = existing.and_then(|k| st.pools.get(&k)) {
        if p.state == "deleting" {
            return Err(BatchError::conflict(
                "PoolBeingDeleted",
                "The specified pool has been marked for deletion and is being reclaimed.",
            ));
        }
        return Err(BatchError::conflict(
            "PoolExists",
            "The specified pool already exists.",
        ));
    }
    insert_pool(sh, &mut st, &id, c.body.clone(), None)?;
    let p = &st.pools[&id];
    let url = format!("{}/pools/{id}", sh.base_url);
    Ok(Reply::empty(StatusCode::CREATED).entity_headers(&p.etag, &rfc1123(p.last_modified), &url))
}

fn pool_missing() -> BatchError {
    BatchError::not_found("PoolNotFound", "pool")
}

fn get_pool(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let st = sh.lock();
    let p = st.pools.get(c.param("poolId")).ok_or_else(pool_missing)?;
    Ok(get_reply(
        sh,
        c,
        "pools",
        p.render(&sh.base_url),
        &p.etag,
        p.last_modified,
    ))
}

fn pool_exists(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let st = sh.lock();
    Ok(match st.pools.get(c.param("poolId")) {
        Some(p) => Reply::empty(StatusCode::OK)
            .header("ETag", &p.etag)
            .header("Last-Modified", rfc1123(p.last_modified)),
        None => Reply::empty(StatusCode::NOT_FOUND),
    })
}

fn delete_pool(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("poolId");
    let mut st = sh.lock();
    let p = st.pools.get(id).ok_or_else(pool_missing)?;
    if_match(c, &p.etag)?;
    runner::delete_pool(sh, &mut st, id);
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn list_pools(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        st.pools
            .values()
            .map(|p| (p.id.clone(), p.render(&sh.base_url)))
            .collect()
    };
    list_reply(sh, c, items, "pools")
}

fn resize_pool(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("poolId");
    let mut st = sh.lock();
    let etag = st.etag();
    let p = st.pools.get_mut(id).ok_or_else(pool_missing)?;
    if_match(c, &p.etag)?;
    if p.state == "deleting" {
        return Err(BatchError::conflict(
            "PoolBeingDeleted",
            "The specified pool has been marked for deletion and is being reclaimed.",
        ));
    }
    if p.spec["enableAutoScale"].as_bool() == Some(true) {
        return Err(BatchError::conflict(
            "AutoScalingEnabled",
            "The specified pool has automatic scaling enabled.",
        ));
    }
    if p.allocation_state != "steady" {
        return Err(BatchError::conflict(
            "PoolNotSteady",
            "The specified pool is not in a steady state.",
        ));
    }
    let n = |k: &str, cur: u32| {
        c.body[k].as_i64().map_or(Ok(cur), |v| {
            u32::try_from(v).map_err(|_| {
                BatchError::bad_value(k, &v.to_string(), "Node counts cannot be negative.")
            })
        })
    };
    p.target_dedicated = n("targetDedicatedNodes", p.target_dedicated)?;
    p.target_low = n("targetLowPriorityNodes", p.target_low)?;
    p.allocation_state = "resizing";
    p.allocation_time = now();
    p.resize_errors.clear();
    p.etag = etag;
    p.last_modified = now();
    runner::allocate_later(sh.clone(), id.to_owned());
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn stop_resize(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let p = st
        .pools
        .get_mut(c.param("poolId"))
        .ok_or_else(pool_missing)?;
    if p.allocation_state == "resizing" {
        // The pending allocation sees `stopping` and settles with what exists.
        p.allocation_state = "stopping";
        p.allocation_time = now();
    }
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn update_pool(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let etag = st.etag();
    let p = st
        .pools
        .get_mut(c.param("poolId"))
        .ok_or_else(pool_missing)?;
    if_match(c, &p.etag)?;
    if let Some(o) = c.body.as_object() {
        for (k, v) in o {
            p.spec[k.as_str()] = v.clone();
        }
    }
    p.etag = etag;
    p.last_modified = now();
    let url = format!("{}/pools/{}", sh.base_url, p.id);
    Ok(Reply::empty(StatusCode::OK).entity_headers(&p.etag, &rfc1123(p.last_modified), &url))
}

fn list_nodes(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        let p = st.pools.get(c.param("poolId")).ok_or_else(pool_missing)?;
        p.nodes
            .iter()
            .map(|n| (n.id.clone(), p.render_node(n, &sh.base_url)))
            .collect()
    };
    list_reply(sh, c, items, "nodes")
}

fn get_node(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let st = sh.lock();
    let p = st.pools.get(c.param("poolId")).ok_or_else(pool_missing)?;
    let n = p
        .nodes
        .iter()
        .find(|n| n.id == c.param("nodeId"))
        .ok_or_else(|| BatchError::not_found("NodeNotFound", "node"))?;
    let body = p.render_node(n, &sh.base_url);
    Ok(Reply::json(
        StatusCode::OK,
        &with_metadata(body, &sh.base_url, "nodes/@Element"),
    ))
}

// ---------------------------------------------------------------- jobs

fn job_missing() -> BatchError {
    BatchError::not_found("JobNotFound", "job")
}

/// `POST /jobs`: a job on a named pool or on an auto-pool made for it.
fn create_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.body["id"].as_str().unwrap_or_default().to_owned();
    check_id("id", &id)?;
    check_job_body(&c.body)?;
    let mut st = sh.lock();
    if st.jobs.keys().any(|k| k.eq_ignore_ascii_case(&id)) {
        return Err(BatchError::conflict(
            "JobExists",
            "The specified job already exists.",
        ));
    }
    let active = st
        .jobs
        .values()
        .filter(|j| !matches!(j.state, JobState::Completed | JobState::Deleting))
        .count();
    if sh.faults.take_job_quota() || active >= sh.config.max_active_jobs {
        return Err(BatchError::conflict(
            "ActiveJobAndScheduleQuotaReached",
            "The specified account has reached the maximum number of active jobs and job schedules.",
        ));
    }
    let pool_id = job_pool(sh, &mut st, &c.body, &id)?;
    let t = now();
    let etag = st.etag();
    let cancel = CancellationToken::new();
    let wall = c.body["constraints"]["maxWallClockTime"]
        .as_str()
        .and_then(timefmt::parse_duration)
        .filter(|d| *d < timefmt::UNLIMITED);
    st.jobs.insert(
        id.clone(),
        Job {
            id: id.clone(),
            spec: c.body.clone(),
            created: t,
            last_modified: t,
            etag: etag.clone(),
            state: JobState::Active,
            state_time: t,
            previous: None,
            pool_id,
            end_time: None,
            terminate_reason: None,
            scheduling_error: None,
            tasks: Default::default(),
            cancel: cancel.clone(),
            counts: None,
        },
    );
    if let Some(wall) = wall {
        runner::job_wall_clock(sh.clone(), id.clone(), wall, cancel);
    }
    runner::maybe_complete_job(sh, &mut st, &id);
    let url = format!("{}/jobs/{id}", sh.base_url);
    Ok(Reply::empty(StatusCode::CREATED).entity_headers(&etag, &rfc1123(t), &url))
}

/// What a job body may not ask of the stand-in, and its preparation task's checks.
fn check_job_body(body: &Value) -> Result<(), BatchError> {
    for unsupported in ["jobManagerTask", "jobReleaseTask", "networkConfiguration"] {
        if !body[unsupported].is_null() {
            return Err(BatchError::bad_value(
                unsupported,
                "set",
                "batch-standin does not run job manager or release tasks or virtual networks.",
            ));
        }
    }
    if body["jobPreparationTask"].is_object() {
        check_task_spec(&body["jobPreparationTask"])?;
    }
    if body["usesTaskDependencies"].as_bool() == Some(true) {
        return Err(BatchError::bad_value(
            "usesTaskDependencies",
            "true",
            "batch-standin does not implement task dependencies.",
        ));
    }
    Ok(())
}

/// The pool job `id` runs on: the named one (in its stored spelling), or a new auto-pool.
fn job_pool(
    sh: &Arc<Shared>,
    st: &mut State,
    body: &Value,
    id: &str,
) -> Result<String, BatchError> {
    let info = &body["poolInfo"];
    if let Some(p) = info["poolId"].as_str() {
        // The pool's stored spelling, when it exists (ids are case-insensitive).
        Ok(st
            .pools
            .keys()
            .find(|k| k.eq_ignore_ascii_case(p))
            .cloned()
            .unwrap_or_else(|| p.to_owned()))
    } else if info["autoPoolSpecification"].is_object() {
        let auto = &info["autoPoolSpecification"];
        let prefix = auto["autoPoolIdPrefix"].as_str().unwrap_or("");
        if prefix.len() > 20 {
            return Err(BatchError::bad_value(
                "poolInfo.autoPoolSpecification.autoPoolIdPrefix",
                prefix,
                "The prefix can have at most 20 characters.",
            ));
        }
        let pool = auto["pool"].clone();
        if pool.is_null() {
            return Err(missing("poolInfo.autoPoolSpecification.pool"));
        }
        check_pool_spec(&pool, "poolInfo.autoPoolSpecification.pool.")?;
        let pid = format!(
            "{prefix}{}{}",
            if prefix.is_empty() { "" } else { "_" },
            uuid::Uuid::new_v4()
        );
        let owner = (auto["poolLifetimeOption"] == "job"
            && auto["keepAlive"].as_bool() != Some(true))
        .then(|| id.to_owned());
        match sh.faults.take_auto_pool_failure() {
            Some((code, message)) => {
                let message = message.unwrap_or_else(|| {
                    "The auto pool could not be created: the account's pool or core quota is reached."
                        .to_owned()
                });
                runner::fail_auto_pool_later(sh.clone(), id.to_owned(), code, message);
            }
            None => insert_pool(sh, st, &pid, pool, owner)?,
        }
        Ok(pid)
    } else {
        Err(missing("poolInfo.poolId"))
    }
}

fn get_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let st = sh.lock();
    let j = st.jobs.get(c.param("jobId")).ok_or_else(job_missing)?;
    Ok(get_reply(
        sh,
        c,
        "jobs",
        j.render(&sh.base_url),
        &j.etag,
        j.last_modified,
    ))
}

fn job_state_conflict(j: &Job) -> Option<BatchError> {
    match j.state {
        JobState::Active | JobState::Disabled => None,
        JobState::Completed => Some(BatchError::conflict(
            "JobCompleted",
            "The specified job is already in a completed state.",
        )),
        JobState::Terminating => Some(BatchError::conflict(
            "JobBeingTerminated",
            "The specified job is being terminated.",
        )),
        JobState::Deleting => Some(BatchError::conflict(
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
        )),
    }
}

fn update_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("jobId").to_owned();
    let mut st = sh.lock();
    let etag = st.etag();
    let j = st.jobs.get_mut(&id).ok_or_else(job_missing)?;
    if_match(c, &j.etag)?;
    if let Some(e) = job_state_conflict(j) {
        return Err(e);
    }
    if j.on_all_tasks_complete() == "terminatejob" && c.body["onAllTasksComplete"] == "noaction" {
        return Err(BatchError::bad_value(
            "onAllTasksComplete",
            "noaction",
            "onAllTasksComplete cannot be changed from terminatejob to noaction.",
        ));
    }
    if let Some(new_pool) = c.body["poolInfo"]["poolId"].as_str()
        && new_pool != j.pool_id
    {
        return Err(BatchError::conflict(
            "JobNotDisabled",
            "The pool of a job can only be changed while the job is disabled.",
        ));
    }
    if let Some(o) = c.body.as_object() {
        for (k, v) in o {
            if k != "poolInfo" {
                j.spec[k.as_str()] = v.clone();
            }
        }
    }
    j.etag = etag.clone();
    j.last_modified = now();
    let lm = j.last_modified;
    runner::maybe_complete_job(sh, &mut st, &id);
    let url = format!("{}/jobs/{id}", sh.base_url);
    Ok(Reply::empty(StatusCode::OK).entity_headers(&etag, &rfc1123(lm), &url))
}

fn delete_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("jobId");
    let mut st = sh.lock();
    let j = st.jobs.get(id).ok_or_else(job_missing)?;
    if_match(c, &j.etag)?;
    if j.state == JobState::Deleting {
        return Err(job_state_conflict(j).expect("a deleting job conflicts"));
    }
    runner::delete_job(sh, &mut st, id);
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn terminate_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("jobId");
    let mut st = sh.lock();
    let j = st.jobs.get(id).ok_or_else(job_missing)?;
    if_match(c, &j.etag)?;
    if let Some(e) = job_state_conflict(j) {
        return Err(e);
    }
    let reason = c.body["terminateReason"]
        .as_str()
        .unwrap_or("UserTerminate")
        .to_owned();
    runner::terminate_job(sh, &mut st, id, &reason);
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn list_jobs(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        st.jobs
            .values()
            .map(|j| (j.id.clone(), j.render(&sh.base_url)))
            .collect()
    };
    list_reply(sh, c, items, "jobs")
}

/// `GET /jobs/{id}/jobpreparationandreleasetaskstatus`: one entry per node where the job's
/// preparation task ran or runs.
fn job_prep_status(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        let id = c.param("jobId");
        let j = st.jobs.get(id).ok_or_else(job_missing)?;
        if !j.spec["jobPreparationTask"].is_object() {
            return Err(BatchError::conflict(
                "JobPreparationTaskOrReleaseTaskNotSpecified",
                "The specified job does not have a job preparation task or a job release task.",
            ));
        }
        let mut items = Vec::new();
        for p in st.pools.values() {
            for n in &p.nodes {
                if let Some(r) = n.job_prep.get(id) {
                    let url = format!("{}/pools/{}/nodes/{}", sh.base_url, p.id, n.id);
                    items.push((
                        format!("{}/{}", p.id, n.id),
                        json!({"poolId": p.id, "nodeId": n.id, "nodeUrl": url,
                               "jobPreparationTaskExecutionInfo": r.info}),
                    ));
                }
            }
        }
        items
    };
    list_reply(sh, c, items, "jobpreparationandreleasetaskstatuslist")
}

fn task_counts(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let j = st.jobs.get_mut(c.param("jobId")).ok_or_else(job_missing)?;
    let lag = sh.config.task_counts_lag;
    let counts = match &j.counts {
        Some((at, v)) if at.elapsed() < lag => v.clone(),
        _ => {
            let v = crate::state::task_counts(j);
            j.counts = Some((std::time::Instant::now(), v.clone()));
            v
        }
    };
    let body = with_metadata(counts, &sh.base_url, "taskcountsresult/@Element");
    Ok(Reply::json(StatusCode::OK, &body))
}

// ---------------------------------------------------------------- tasks

fn task_missing() -> BatchError {
    BatchError::not_found("TaskNotFound", "task")
}

/// Rules the schema cannot express, and features the stand-in refuses
/// rather than silently ignoring.
fn check_task_spec(t: &Value) -> Result<(), BatchError> {
    for unsupported in [
        "containerSettings",
        "multiInstanceSettings",
        "dependsOn",
        "authenticationTokenSettings",
    ] {
        if !t[unsupported].is_null() {
            return Err(BatchError::bad_value(
                unsupported,
                "set",
                format!("batch-standin does not implement {unsupported}."),
            ));
        }
    }
    if t["applicationPackageReferences"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(BatchError::bad_value(
            "applicationPackageReferences",
            "set",
            "batch-standin has no application packages.",
        ));
    }
    for (i, rf) in t["resourceFiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_resource_file(i, rf)?;
    }
    for (i, of) in t["outputFiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !of["destination"]["container"].is_object() {
            return Err(missing(&format!("outputFiles[{i}].destination.container")));
        }
        if of["destination"]["container"]["identityReference"].is_object() {
            return Err(BatchError::bad_value(
                &format!("outputFiles[{i}].destination.container.identityReference"),
                "set",
                "batch-standin has no managed identities; use a SAS containerUrl.",
            ));
        }
    }
    if let Some(r) = t["requiredSlots"].as_i64()
        && r < 1
    {
        return Err(BatchError::bad_value(
            "requiredSlots",
            &r.to_string(),
            "requiredSlots must be at least 1.",
        ));
    }
    Ok(())
}

/// One of a task's resource files: an `httpUrl` to a relative path inside its directory.
fn check_resource_file(i: usize, rf: &Value) -> Result<(), BatchError> {
    let p = |k: &str| format!("resourceFiles[{i}].{k}");
    let sources = ["httpUrl", "storageContainerUrl", "autoStorageContainerName"]
        .iter()
        .filter(|k| rf[**k].is_string())
        .count();
    if sources != 1 {
        return Err(BatchError::bad_value(
            &format!("resourceFiles[{i}]"),
            &rf.to_string(),
            "Exactly one of httpUrl, storageContainerUrl and autoStorageContainerName must be specified.",
        ));
    }
    if !rf["httpUrl"].is_string() {
        return Err(BatchError::bad_value(
            &p("storageContainerUrl"),
            "set",
            "batch-standin only downloads httpUrl resource files.",
        ));
    }
    let fp = rf["filePath"]
        .as_str()
        .ok_or_else(|| missing(&p("filePath")))?;
    if !is_contained(fp) {
        return Err(BatchError::bad_value(
            &p("filePath"),
            fp,
            "The file path must be relative and stay inside the task working directory.",
        ));
    }
    if let Some(m) = rf["fileMode"].as_str()
        && (m.len() < 3 || m.len() > 4 || !m.chars().all(|c| ('0'..='7').contains(&c)))
    {
        return Err(BatchError::bad_value(
            &p("fileMode"),
            m,
            "fileMode must be an octal mode like 0755.",
        ));
    }
    Ok(())
}

/// Whether any `exitOptions` in the conditions sets `jobAction`.
fn sets_job_action(ec: &Value) -> bool {
    let lists = ["exitCodes", "exitCodeRanges"]
        .iter()
        .flat_map(|k| ec[*k].as_array().into_iter().flatten())
        .map(|m| &m["exitOptions"]);
    let singles = ["preProcessingError", "fileUploadError", "default"]
        .iter()
        .map(|k| &ec[*k]);
    lists.chain(singles).any(|o| !o["jobAction"].is_null())
}

/// Adds one task; returns (eTag, lastModified, url).
fn add_task(
    sh: &Arc<Shared>,
    st: &mut State,
    job_id: &str,
    spec: &Value,
) -> Result<(String, OffsetDateTime, String), BatchError> {
    let id = spec["id"].as_str().unwrap_or_default().to_owned();
    check_id("id", &id)?;
    check_task_spec(spec)?;
    let etag = st.etag();
    let j = st.jobs.get_mut(job_id).ok_or_else(job_missing)?;
    if let Some(e) = job_state_conflict(j) {
        return Err(e);
    }
    if j.spec["onTaskFailure"] != "performexitoptionsjobaction"
        && sets_job_action(&spec["exitConditions"])
    {
        return Err(BatchError::bad_value(
            "exitConditions",
            &spec["exitConditions"].to_string(),
            "exitOptions.jobAction may only be set when the job's onTaskFailure is performexitoptionsjobaction.",
        ));
    }
    // Task ids are case-insensitive: keys are lowercased, `id` keeps the case.
    let key = id.to_ascii_lowercase();
    if j.tasks.contains_key(&key) {
        return Err(BatchError::conflict(
            "TaskExists",
            "The specified task already exists.",
        ));
    }
    let t = now();
    j.tasks.insert(
        key.clone(),
        Task {
            id: id.clone(),
            spec: spec.clone(),
            created: t,
            last_modified: t,
            etag: etag.clone(),
            state: TaskState::Active,
            state_time: t,
            previous: None,
            exec: ExecInfo::default(),
            node: None,
            task_dir: None,
            first_start: None,
            cancel: None,
            attempt: 0,
        },
    );
    st.queue.push_back((job_id.to_owned(), key));
    Ok((etag, t, format!("{}/jobs/{job_id}/tasks/{id}", sh.base_url)))
}

fn create_task(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let job = c.param("jobId");
    let mut st = sh.lock();
    let (etag, t, url) = add_task(sh, &mut st, job, &c.body)?;
    drop(st);
    sh.wake.notify_one();
    Ok(Reply::empty(StatusCode::CREATED).entity_headers(&etag, &rfc1123(t), &url))
}

/// The service's limit on tasks per `addtaskcollection` request.
const MAX_TASKS_PER_COLLECTION: usize = 100;

fn create_task_collection(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let job = c.param("jobId");
    let tasks = c.body["value"].as_array().cloned().unwrap_or_default();
    if tasks.len() > MAX_TASKS_PER_COLLECTION {
        return Err(BatchError::body_too_large(format!(
            "The collection has {} tasks; at most {MAX_TASKS_PER_COLLECTION} may be added per request.",
            tasks.len()
        )));
    }
    let mut st = sh.lock();
    let j = st.jobs.get(job).ok_or_else(job_missing)?;
    if let Some(e) = job_state_conflict(j) {
        return Err(e);
    }
    let rid = uuid::Uuid::new_v4().to_string();
    let stamp = rfc3339(now());
    let mut results = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let tid = t["id"].as_str().unwrap_or_default().to_owned();
        if sh.faults.take_task_server_error(&tid) {
            let e = BatchError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServerBusy",
                "The server is busy (fault injected by batch-standin).",
            );
            let status = task_add_status(false, true);
            results.push(
                json!({"status": status, "taskId": tid, "error": error_json(&e, &rid, &stamp)}),
            );
            continue;
        }
        match add_task(sh, &mut st, job, t) {
            Ok((etag, lm, url)) => results.push(json!({
                "status": task_add_status(true, false), "taskId": tid, "eTag": etag, "lastModified": rfc3339(lm), "location": url,
            })),
            Err(e) => {
                let status = task_add_status(false, e.status.is_server_error());
                results.push(json!({"status": status, "taskId": tid, "error": error_json(&e, &rid, &stamp)}));
            }
        }
    }
    drop(st);
    sh.wake.notify_one();
    // The service documents that results may come back in any order;
    // answering in reverse keeps clients honest about matching by taskId.
    results.reverse();
    let body = with_metadata(json!({"value": results}), &sh.base_url, "taskaddresult");
    Ok(Reply::json(StatusCode::OK, &body))
}

fn error_json(e: &BatchError, rid: &str, stamp: &str) -> Value {
    let mut v = e.body("", rid, stamp);
    if let Some(o) = v.as_object_mut() {
        o.remove("odata.metadata");
    }
    v
}

fn list_tasks(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        let j = st.jobs.get(c.param("jobId")).ok_or_else(job_missing)?;
        let retry = j.spec["constraints"]["maxTaskRetryCount"]
            .as_i64()
            .unwrap_or(0);
        j.tasks
            .iter()
            .map(|(k, t)| (k.clone(), t.render(&sh.base_url, &j.id, retry)))
            .collect()
    };
    list_reply(sh, c, items, "tasks")
}

fn with_task<T>(
    st: &mut State,
    c: &Ctx,
    f: impl FnOnce(&mut Job, &str) -> Result<T, BatchError>,
) -> Result<T, BatchError> {
    let j = st.jobs.get_mut(c.param("jobId")).ok_or_else(job_missing)?;
    let key = c.param("taskId").to_ascii_lowercase();
    if !j.tasks.contains_key(&key) {
        return Err(task_missing());
    }
    f(j, &key)
}

fn get_task(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    with_task(&mut st, c, |j, key| {
        let retry = j.spec["constraints"]["maxTaskRetryCount"]
            .as_i64()
            .unwrap_or(0);
        let t = &j.tasks[key];
        Ok(get_reply(
            sh,
            c,
            "tasks",
            t.render(&sh.base_url, &j.id, retry),
            &t.etag,
            t.last_modified,
        ))
    })
}

fn terminate_task(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let job_id = c.param("jobId").to_owned();
    let key = with_task(&mut st, c, |j, key| {
        let t = &j.tasks[key];
        if_match(c, &t.etag)?;
        if t.state == TaskState::Completed {
            return Err(BatchError::conflict(
                "TaskCompleted",
                "The specified task is already completed.",
            ));
        }
        Ok(key.to_owned())
    })?;
    runner::stop_task(&mut st, &job_id, &key, StopReason::Terminated);
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

fn delete_task(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let job_id = c.param("jobId").to_owned();
    let key = with_task(&mut st, c, |j, key| {
        if_match(c, &j.tasks[key].etag)?;
        Ok(key.to_owned())
    })?;
    runner::stop_task(&mut st, &job_id, &key, StopReason::Terminated);
    if let Some(j) = st.jobs.get_mut(&job_id) {
        j.tasks.remove(&key);
    }
    runner::maybe_complete_job(sh, &mut st, &job_id);
    Ok(Reply::empty(StatusCode::OK))
}

// ---------------------------------------------------------------- task files

fn task_dir(sh: &Arc<Shared>, c: &Ctx) -> Result<std::path::PathBuf, BatchError> {
    let mut st = sh.lock();
    with_task(&mut st, c, |j, key| {
        j.tasks[key].task_dir.clone().ok_or_else(|| {
            BatchError::not_found(
                "TaskNotStarted",
                "task has not been scheduled yet; its directory",
            )
        })
    })
}

fn file_missing() -> BatchError {
    BatchError::not_found("FileNotFound", "file")
}

/// A task's directory and the URL prefix of its files.
fn task_files(sh: &Arc<Shared>, c: &Ctx) -> Result<(std::path::PathBuf, String), BatchError> {
    let dir = task_dir(sh, c)?;
    let prefix = format!(
        "{}/jobs/{}/tasks/{}/files/",
        sh.base_url,
        c.param("jobId"),
        c.param("taskId")
    );
    Ok((dir, prefix))
}

/// A node's root directory and the URL prefix of its files.
fn node_files(sh: &Arc<Shared>, c: &Ctx) -> Result<(std::path::PathBuf, String), BatchError> {
    {
        let st = sh.lock();
        let p = st.pools.get(c.param("poolId")).ok_or_else(pool_missing)?;
        if !p.nodes.iter().any(|n| n.id == c.param("nodeId")) {
            return Err(BatchError::not_found("NodeNotFound", "node"));
        }
    }
    let root = sh.node_root(c.param("poolId"), c.param("nodeId"));
    let prefix = format!(
        "{}/pools/{}/nodes/{}/files/",
        sh.base_url,
        c.param("poolId"),
        c.param("nodeId")
    );
    Ok((root, prefix))
}

fn list_task_files(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let (dir, prefix) = task_files(sh, c)?;
    list_files(sh, c, dir, &prefix)
}

fn list_node_files(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let (root, prefix) = node_files(sh, c)?;
    list_files(sh, c, root, &prefix)
}

/// Lists a directory as `BatchNodeFile`s, recursively with `recursive=true`.
fn list_files(sh: &Arc<Shared>, c: &Ctx, dir: std::path::PathBuf, url_prefix: &str) -> ApiResult {
    let recursive = c
        .query("recursive")
        .is_some_and(|r| r.eq_ignore_ascii_case("true"));
    let mut items = Vec::new();
    let mut stack = vec![(dir, String::new())];
    while let Some((d, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            let Ok(md) = e.metadata() else { continue };
            let mut v = json!({"name": name, "url": format!("{url_prefix}{name}"), "isDirectory": md.is_dir()});
            if md.is_file() {
                v["properties"] = file_props(&md);
            }
            if md.is_dir() && recursive {
                stack.push((e.path(), format!("{name}/")));
            }
            items.push((name, v));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    list_reply(sh, c, items, "files")
}

fn file_props(md: &std::fs::Metadata) -> Value {
    use std::os::unix::fs::PermissionsExt;
    let lm: OffsetDateTime = md.modified().map_or_else(|_| now(), OffsetDateTime::from);
    json!({
        "creationTime": rfc3339(lm),
        "lastModified": rfc3339(lm),
        "contentLength": md.len().to_string(),
        "contentType": "application/octet-stream",
        "fileMode": format!("0{:o}", md.permissions().mode()),
    })
}

fn get_task_file(sh: &Arc<Shared>, c: &Ctx, with_body: bool) -> ApiResult {
    let (dir, prefix) = task_files(sh, c)?;
    serve_file(c, &dir, &prefix, with_body)
}

/// Node files (`startup/stderr.txt` of a failed start task, or any file
/// under the node's root directory).
fn get_node_file(sh: &Arc<Shared>, c: &Ctx, with_body: bool) -> ApiResult {
    let (root, prefix) = node_files(sh, c)?;
    serve_file(c, &root, &prefix, with_body)
}

fn serve_file(c: &Ctx, dir: &std::path::Path, url_prefix: &str, with_body: bool) -> ApiResult {
    let rel = c.param("filePath").replace('\\', "/");
    if !is_contained(&rel) {
        return Err(file_missing());
    }
    let path = dir.join(&rel);
    let md = std::fs::metadata(&path).map_err(|_| file_missing())?;
    use std::os::unix::fs::PermissionsExt;
    let lm: OffsetDateTime = md.modified().map_or_else(|_| now(), OffsetDateTime::from);
    let url = format!("{url_prefix}{rel}");
    let mut r = Reply::empty(StatusCode::OK)
        .header("ocp-creation-time", rfc1123(lm))
        .header(
            "ocp-batch-file-isdirectory",
            if md.is_dir() { "true" } else { "false" },
        )
        .header("ocp-batch-file-url", url)
        .header(
            "ocp-batch-file-mode",
            format!("0{:o}", md.permissions().mode()),
        )
        .header("Last-Modified", rfc1123(lm))
        .header("Content-Type", "application/octet-stream");
    if md.is_dir() {
        if with_body {
            return Err(file_missing());
        }
        return Ok(r);
    }
    if !with_body {
        return Ok(r.header("Content-Length", md.len().to_string()));
    }
    let mut data = std::fs::read(&path).map_err(|_| file_missing())?;
    if let Some(range) = c.headers.get("ocp-range").and_then(|v| v.to_str().ok()) {
        let (a, b) = parse_range(range, data.len()).ok_or_else(|| {
            BatchError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The range specified is invalid for the current size of the resource.",
            )
        })?;
        data = data[a..b].to_vec();
    }
    r.body = data.into();
    Ok(r)
}

/// `bytes=a-b` (inclusive) or `bytes=a-` into a half-open byte range.
fn parse_range(s: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = s.strip_prefix("bytes=")?.split_once('-')?;
    let a: usize = a.trim().parse().ok()?;
    let b: usize = if b.trim().is_empty() {
        len.checked_sub(1)?
    } else {
        b.trim().parse().ok()?
    };
    (a <= b && a < len).then_some((a, b.min(len - 1) + 1))
}

// ---------------------------------------------------------------- more pool and job operations

fn node_counts(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let items = {
        let st = sh.lock();
        st.pools
            .values()
            .map(|p| {
                let count = |dedicated: bool| {
                    let mut m = serde_json::Map::new();
                    for k in [
                        "creating",
                        "idle",
                        "offline",
                        "preempted",
                        "rebooting",
                        "reimaging",
                        "running",
                        "starting",
                        "startTaskFailed",
                        "leavingPool",
                        "unknown",
                        "unusable",
                        "waitingForStartTask",
                        "deallocated",
                        "deallocating",
                        "total",
                        "upgradingOS",
                    ] {
                        m.insert(k.into(), json!(0));
                    }
                    for n in p.nodes.iter().filter(|n| n.dedicated == dedicated) {
                        let k = match n.failed.as_deref() {
                            Some("starttaskfailed") => "startTaskFailed",
                            Some(_) => "unusable",
                            None if n.running_tasks > 0 => "running",
                            None => "idle",
                        };
                        m[k] = json!(m[k].as_u64().unwrap_or(0) + 1);
                        m["total"] = json!(m["total"].as_u64().unwrap_or(0) + 1);
                    }
                    Value::Object(m)
                };
                (
                    p.id.clone(),
                    json!({"poolId": p.id, "dedicated": count(true), "lowPriority": count(false)}),
                )
            })
            .collect()
    };
    list_reply(sh, c, items, "nodecounts")
}

fn autoscale_run(sh: &Shared) -> Value {
    json!({"timestamp": rfc3339(now()),
           "results": format!("$TargetDedicatedNodes={};$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue", sh.config.autoscale_nodes)})
}

fn enable_autoscale(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("poolId");
    let mut st = sh.lock();
    let etag = st.etag();
    let p = st.pools.get_mut(id).ok_or_else(pool_missing)?;
    if_match(c, &p.etag)?;
    let formula = c.body["autoScaleFormula"]
        .as_str()
        .or(p.spec["autoScaleFormula"].as_str())
        .map(str::to_owned);
    let Some(formula) = formula else {
        return Err(missing("autoScaleFormula"));
    };
    p.spec["enableAutoScale"] = json!(true);
    p.spec["autoScaleFormula"] = json!(formula);
    if let Some(i) = c.body["autoScaleEvaluationInterval"].as_str() {
        p.spec["autoScaleEvaluationInterval"] = json!(i);
    }
    if let Some(o) = p.spec.as_object_mut() {
        o.remove("targetDedicatedNodes");
        o.remove("targetLowPriorityNodes");
    }
    (p.target_dedicated, p.target_low) = (sh.config.autoscale_nodes, 0);
    p.allocation_state = "resizing";
    p.allocation_time = now();
    p.etag = etag;
    p.last_modified = now();
    let url = format!("{}/pools/{id}", sh.base_url);
    let reply =
        Reply::empty(StatusCode::OK).entity_headers(&p.etag, &rfc1123(p.last_modified), &url);
    runner::allocate_later(sh.clone(), id.to_owned());
    Ok(reply)
}

fn disable_autoscale(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let etag = st.etag();
    let p = st
        .pools
        .get_mut(c.param("poolId"))
        .ok_or_else(pool_missing)?;
    p.spec["enableAutoScale"] = json!(false);
    let (d, l) = p.current_nodes();
    (p.target_dedicated, p.target_low) = (d as u32, l as u32);
    p.etag = etag;
    p.last_modified = now();
    let url = format!("{}/pools/{}", sh.base_url, p.id);
    Ok(Reply::empty(StatusCode::OK).entity_headers(&p.etag, &rfc1123(p.last_modified), &url))
}

fn evaluate_autoscale(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let st = sh.lock();
    let p = st.pools.get(c.param("poolId")).ok_or_else(pool_missing)?;
    if p.spec["enableAutoScale"].as_bool() != Some(true) {
        return Err(BatchError::conflict(
            "AutoScalingNotEnabled",
            "The specified pool does not have automatic scaling enabled.",
        ));
    }
    Ok(Reply::json(StatusCode::OK, &autoscale_run(sh)))
}

fn disable_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let id = c.param("jobId").to_owned();
    let mut st = sh.lock();
    let etag = st.etag();
    let j = st.jobs.get_mut(&id).ok_or_else(job_missing)?;
    if_match(c, &j.etag)?;
    if j.state != JobState::Active {
        return Err(BatchError::conflict(
            "JobNotActive",
            "The specified job is not in an active state.",
        ));
    }
    j.set_state(JobState::Disabled);
    j.etag = etag;
    j.last_modified = now();
    let how = match c.body["disableTasks"].as_str() {
        Some("requeue") => Some(StopReason::Requeue),
        Some("terminate") => Some(StopReason::Terminated),
        _ => None,
    };
    if let Some(reason) = how {
        let keys: Vec<String> = j.tasks.keys().cloned().collect();
        for k in keys {
            let running = st.jobs[&id]
                .tasks
                .get(&k)
                .is_some_and(|t| matches!(t.state, TaskState::Preparing | TaskState::Running));
            if running {
                runner::stop_task(&mut st, &id, &k, reason);
            }
        }
    }
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn enable_job(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let mut st = sh.lock();
    let etag = st.etag();
    let j = st.jobs.get_mut(c.param("jobId")).ok_or_else(job_missing)?;
    if_match(c, &j.etag)?;
    if j.state != JobState::Disabled {
        return Err(BatchError::conflict(
            "JobNotDisabled",
            "The specified job is not in a disabled state.",
        ));
    }
    j.set_state(JobState::Active);
    j.etag = etag;
    j.last_modified = now();
    drop(st);
    sh.wake.notify_one();
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Makes a failed completed task eligible to run again, with its retry
/// count reset, as the service does.
fn reactivate_task(sh: &Arc<Shared>, c: &Ctx) -> ApiResult {
    let job_id = c.param("jobId").to_owned();
    let mut st = sh.lock();
    let etag = st.etag();
    let key = with_task(&mut st, c, |j, key| {
        if let Some(e) = job_state_conflict(j) {
            return Err(e);
        }
        let t = j.tasks.get_mut(key).expect("checked by with_task");
        if_match(c, &t.etag)?;
        if t.state != TaskState::Completed || t.exec.result != Some("failure") {
            return Err(BatchError::conflict(
                "OperationInvalidForCurrentState",
                "Only tasks that completed with a failure can be reactivated.",
            ));
        }
        t.exec = ExecInfo::default();
        t.first_start = None;
        t.node = None;
        t.etag = etag;
        t.set_state(TaskState::Active);
        Ok(key.to_owned())
    })?;
    st.queue.push_back((job_id, key));
    drop(st);
    sh.wake.notify_one();
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}
