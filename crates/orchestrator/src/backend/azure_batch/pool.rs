//! Pools: the Ubuntu 24.04 image from `GET /supportedimages`, create-or-reuse by id, delete,
//! and the watchdog that turns resize errors and broken nodes into actionable messages.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::client::{ApiError, BatchClient, Call, next_call};
use super::config::{AzureBatchConfig, needs_gen1_image, quota_family};
use super::model::{
    self, AllocationState, ImageReference, NameValue, NodeState, OsType, Page, PoolCreate,
    PoolSpec, PoolState, PoolView, ResizeErrorCode, SupportedImage, TaskSchedulingPolicy,
    VerificationType, VirtualMachineConfiguration,
};

/// Ubuntu 24.04 LTS, as Batch verifies it.
const PUBLISHER: &str = "canonical";
const OFFER: &str = "ubuntu-24_04-lts";
const NODE_AGENT: &str = "batch.node.ubuntu 24.04";

/// Picks the verified Ubuntu 24.04 image for the VM size: `server` (Gen2) or `server-gen1`.
pub(crate) async fn resolve_image(
    client: &BatchClient,
    cfg: &AzureBatchConfig,
) -> Result<VirtualMachineConfiguration, String> {
    let want_sku = cfg.image_sku.clone().unwrap_or_else(|| {
        if needs_gen1_image(&cfg.vm_size) {
            "server-gen1"
        } else {
            "server"
        }
        .to_owned()
    });
    let mut call = Call::get("/supportedimages").query("$filter", "verificationType eq 'verified'");
    let mut seen = Vec::new();
    loop {
        let page: Page<SupportedImage> =
            client.send_json(&call).await.map_err(|e| e.to_string())?;
        for img in page.value {
            let r = &img.image_reference;
            let matches = r.publisher.eq_ignore_ascii_case(PUBLISHER)
                && r.offer.eq_ignore_ascii_case(OFFER)
                && img.node_agent_sku_id == NODE_AGENT
                && img.os_type == OsType::Linux;
            if matches
                && r.sku.eq_ignore_ascii_case(&want_sku)
                && img.verification_type == VerificationType::Verified
            {
                if let Some(eol) = &img.batch_support_end_of_life {
                    tracing::warn!("Batch support for image {OFFER}/{want_sku} ends {eol}");
                }
                return Ok(VirtualMachineConfiguration {
                    image_reference: ImageReference {
                        publisher: r.publisher.clone(),
                        offer: r.offer.clone(),
                        sku: r.sku.clone(),
                        version: "latest".into(),
                    },
                    node_agent_sku_id: img.node_agent_sku_id,
                });
            }
            if matches {
                seen.push(r.sku.clone());
            }
        }
        match page.next_link {
            Some(next) => call = next_call(&next)?,
            None => break,
        }
    }
    Err(format!(
        "no verified image {PUBLISHER}/{OFFER}/{want_sku} with node agent `{NODE_AGENT}` in this region's \
         /supportedimages (Ubuntu 24.04 SKUs offered: {}); pick another --vm-size or set the image SKU explicitly",
        if seen.is_empty() {
            "none".to_owned()
        } else {
            seen.join(", ")
        }
    ))
}

/// The pool's shape from the configuration.
pub(crate) fn pool_spec(
    cfg: &AzureBatchConfig,
    vm: VirtualMachineConfiguration,
    run_id: &str,
) -> PoolSpec {
    let (dedicated, spot, auto, formula, interval) = match &cfg.autoscale_formula {
        Some(f) => (
            None,
            None,
            Some(true),
            Some(f.clone()),
            Some("PT5M".to_owned()),
        ),
        None => (
            Some(cfg.dedicated_nodes),
            Some(cfg.spot_nodes),
            None,
            None,
            None,
        ),
    };
    PoolSpec {
        vm_size: cfg.vm_size.clone(),
        virtual_machine_configuration: vm,
        task_slots_per_node: cfg.task_slots,
        // Pack fills one node's slots before the next, so idle nodes can be removed by autoscale.
        task_scheduling_policy: TaskSchedulingPolicy {
            node_fill_type: "pack".into(),
        },
        resize_timeout: "PT15M".into(),
        target_dedicated_nodes: dedicated,
        target_low_priority_nodes: spot,
        enable_auto_scale: auto,
        auto_scale_formula: formula,
        auto_scale_evaluation_interval: interval,
        metadata: model::run_metadata(run_id),
    }
}

/// Whether this run created the pool (and so may delete it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolOrigin {
    Created,
    Reused { ours: bool },
}

/// Creates the pool, or reuses an existing one with that id (409 `PoolExists` is success).
pub(crate) async fn ensure_pool(
    client: &BatchClient,
    body: &PoolCreate,
    run_id: &str,
    poll: Duration,
) -> Result<PoolOrigin, String> {
    let call = Call::new(Method::POST, "/pools").json(model::to_body(body));
    let waited_since = Instant::now();
    loop {
        let deleting = match client.send(&call).await {
            Ok(_) => {
                tracing::info!(pool = %body.id, vm_size = %body.spec.vm_size, "created pool");
                return Ok(PoolOrigin::Created);
            }
            Err(e) if e.is_code("PoolBeingDeleted") => true,
            Err(e) if e.is_code("PoolExists") => {
                let pool = get_pool(client, &body.id)
                    .await
                    .map_err(|e| e.to_string())?;
                if pool.state == PoolState::Deleting {
                    true
                } else {
                    if !pool.vm_size.eq_ignore_ascii_case(&body.spec.vm_size) {
                        tracing::warn!(pool = %body.id, "reusing pool with VM size {} (asked for {})", pool.vm_size, body.spec.vm_size);
                    }
                    let ours = model::has_tag(&pool.metadata, model::RUN_METADATA_KEY, run_id);
                    tracing::info!(pool = %body.id, ours, "reusing existing pool");
                    return Ok(PoolOrigin::Reused { ours });
                }
            }
            Err(e) => return Err(e.to_string()),
        };
        // A pool of the same id is still going away (e.g. a resume right after Ctrl-C).
        if deleting && waited_since.elapsed() >= MAX_WAIT_FOR_DELETION {
            return Err(format!(
                "pool `{}` has been deleting for {:?}; wait for it to disappear or choose another --pool-id",
                body.id, MAX_WAIT_FOR_DELETION
            ));
        }
        tracing::info!(pool = %body.id, "waiting for the previous pool with this id to finish deleting");
        tokio::time::sleep(poll.max(Duration::from_millis(200))).await;
    }
}

/// How long to wait for an old pool with our id to disappear before giving up.
const MAX_WAIT_FOR_DELETION: Duration = Duration::from_secs(15 * 60);

pub(crate) async fn get_pool(client: &BatchClient, id: &str) -> Result<PoolView, ApiError> {
    client.send_json(&Call::get(format!("/pools/{id}"))).await
}

/// Deletes a pool; one that is gone or already going counts as done.
pub(crate) async fn delete_pool(client: &BatchClient, id: &str) -> Result<(), String> {
    let gone = ["PoolNotFound", "PoolBeingDeleted"];
    if client.delete(format!("/pools/{id}"), gone).await? {
        tracing::info!(pool = %id, "deleting pool");
    }
    Ok(())
}

/// Pools whose metadata `pick` accepts (this run's, or everything this tool created).
pub(crate) async fn pools_tagged(
    client: &BatchClient,
    pick: impl Fn(&[NameValue]) -> bool,
) -> Result<Vec<String>, String> {
    let call = Call::get("/pools").query("$select", "id,metadata,state");
    client.ids_tagged(call, pick).await
}

/// What the watchdog concluded about a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PoolHealth {
    Fine,
    /// Worth telling the user; the run goes on.
    Warn(String),
    /// Nothing will ever run: stop the run with this message.
    Fatal(String),
}

/// Classifies resize errors (batch-shipyard's rule, plus Nextflow's observation that a steady
/// autoscale pool's allocation errors are stale and recoverable).
pub(crate) fn classify(pool: &PoolView) -> PoolHealth {
    if pool.resize_errors.is_empty() {
        return PoolHealth::Fine;
    }
    let family = quota_family(&pool.vm_size);
    let mut fatal = Vec::new();
    let mut warn = Vec::new();
    let nodes = pool.current_dedicated_nodes + pool.current_low_priority_nodes;
    for e in &pool.resize_errors {
        let code = match e.code.as_str() {
            "" => "Unknown",
            c => c,
        };
        let msg = e.message.as_deref().unwrap_or("");
        let text = match e.code {
            ResizeErrorCode::AccountCoreQuotaReached => format!(
                "{code}: the Batch account's dedicated core quota is used up. Request more dedicated cores \
                 (Azure portal > Batch account > Quotas) or lower --nodes / use --spot-nodes. ({msg})"
            ),
            ResizeErrorCode::AccountVmSeriesCoreQuotaReached => format!(
                "{code}: the Batch account's per-family quota for {family} ({}) is used up. Request cores \
                 for that VM family (Batch account > Quotas) or pick a --vm-size from a family with quota. ({msg})",
                pool.vm_size
            ),
            ResizeErrorCode::AccountLowPriorityCoreQuotaReached
            | ResizeErrorCode::AccountSpotCoreQuotaReached => format!(
                "{code}: the Batch account's spot/low-priority core quota is used up. Request more spot cores \
                 or use dedicated --nodes. ({msg})"
            ),
            _ => format!("{code}: {msg}"),
        };
        let is_fatal = match e.code {
            ResizeErrorCode::AccountCoreQuotaReached
            | ResizeErrorCode::AccountVmSeriesCoreQuotaReached => nodes == 0,
            ResizeErrorCode::AccountLowPriorityCoreQuotaReached
            | ResizeErrorCode::AccountSpotCoreQuotaReached => {
                pool.target_dedicated_nodes == 0 && nodes == 0
            }
            ResizeErrorCode::AllocationTimedout | ResizeErrorCode::AllocationFailed => {
                !pool.enable_auto_scale
                    && pool.allocation_state == AllocationState::Steady
                    && nodes == 0
            }
            _ => false,
        };
        if is_fatal {
            fatal.push(text)
        } else {
            warn.push(text)
        }
    }
    if !fatal.is_empty() {
        PoolHealth::Fatal(format!(
            "pool `{}` cannot get nodes: {}",
            pool.id,
            fatal.join(" | ")
        ))
    } else {
        PoolHealth::Warn(format!(
            "pool `{}` resize problems: {}",
            pool.id,
            warn.join(" | ")
        ))
    }
}

/// Unusable or start-task-failed nodes, with their errors and the tail of startup stderr.
pub(crate) async fn node_problems(
    client: &BatchClient,
    pool_id: &str,
) -> Result<Vec<String>, ApiError> {
    let call = Call::get(format!("/pools/{pool_id}/nodes"))
        .query("$select", "id,state,errors")
        .query(
            "$filter",
            "state eq 'unusable' or state eq 'starttaskfailed'",
        );
    let page: Page<model::NodeView> = client.send_json(&call).await?;
    let mut out = Vec::new();
    for n in page
        .value
        .into_iter()
        .filter(|n| matches!(n.state, NodeState::Unusable | NodeState::StartTaskFailed))
    {
        let errs: Vec<String> = n
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        let mut line = format!("node {} is {}", n.id, n.state);
        if !errs.is_empty() {
            line.push_str(&format!(" ({})", errs.join("; ")));
        }
        if n.state == NodeState::StartTaskFailed {
            let f = Call::get(format!(
                "/pools/{pool_id}/nodes/{}/files/startup/stderr.txt",
                n.id
            ));
            if let Ok(reply) = client.send(&f).await {
                let text = String::from_utf8_lossy(&reply.body);
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                line.push_str(&format!(
                    "; startup stderr: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ));
            }
        }
        out.push(line);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(json: &str) -> PoolView {
        serde_json::from_str(json).unwrap()
    }

    fn cfg() -> AzureBatchConfig {
        AzureBatchConfig::from_lookup(|k| {
            (k == "AZURE_BATCH_ACCOUNT_URL")
                .then(|| "https://a.westeurope.batch.azure.com".to_owned())
        })
        .unwrap()
    }

    fn ubuntu(sku: &str) -> VirtualMachineConfiguration {
        VirtualMachineConfiguration {
            image_reference: ImageReference {
                publisher: PUBLISHER.into(),
                offer: OFFER.into(),
                sku: sku.into(),
                version: "latest".into(),
            },
            node_agent_sku_id: NODE_AGENT.into(),
        }
    }

    fn snapshot(got: &impl serde::Serialize, want: &str) {
        let got: serde_json::Value = serde_json::from_slice(&model::to_body(got)).unwrap();
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    }

    #[test]
    fn pool_body_snapshot_with_spot_nodes() {
        let mut c = cfg();
        c.dedicated_nodes = 0;
        c.spot_nodes = 4;
        let body = PoolCreate {
            id: "orch-run-1".into(),
            spec: pool_spec(&c, ubuntu("server"), "run-1"),
        };
        snapshot(&body, include_str!("snapshots/pool.json"));
    }

    #[test]
    fn auto_pool_job_snapshot_with_autoscale_and_gen1_image() {
        let mut c = cfg();
        c.vm_size = "Standard_D1_v2".into();
        c.task_slots = 1;
        c.autoscale_formula =
            Some("$TargetLowPriorityNodes = min(4, $PendingTasks.GetSample(1));".into());
        assert!(needs_gen1_image(&c.vm_size));
        let info = model::PoolInfo {
            pool_id: None,
            auto_pool_specification: Some(model::AutoPoolSpec {
                auto_pool_id_prefix: "orch".into(),
                pool_lifetime_option: "job".into(),
                keep_alive: false,
                pool: pool_spec(&c, ubuntu("server-gen1"), "run-1"),
            }),
        };
        let job = super::super::job::job_body("run-1", "orch-run-1", info, c.job_timeout, None);
        snapshot(&job, include_str!("snapshots/autopool-job.json"));
    }

    #[test]
    fn quota_errors_with_no_nodes_are_fatal_and_name_the_family() {
        let p = pool(
            r#"{"id":"p","vmSize":"Standard_D2s_v3","allocationState":"steady","currentDedicatedNodes":0,
                "targetDedicatedNodes":2,"resizeErrors":[{"code":"AccountVMSeriesCoreQuotaReached","message":"quota"}]}"#,
        );
        match classify(&p) {
            PoolHealth::Fatal(m) => assert!(
                m.contains("standardDSv3Family") && m.contains("Quotas"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spot_quota_with_dedicated_floor_only_warns() {
        let p = pool(
            r#"{"id":"p","vmSize":"Standard_D2s_v3","allocationState":"steady","currentDedicatedNodes":1,
                "targetDedicatedNodes":1,"resizeErrors":[{"code":"AccountLowPriorityCoreQuotaReached","message":"q"}]}"#,
        );
        assert!(matches!(classify(&p), PoolHealth::Warn(_)));
    }

    #[test]
    fn autoscale_allocation_errors_are_recoverable() {
        let p = pool(
            r#"{"id":"p","vmSize":"Standard_D2s_v3","allocationState":"steady","enableAutoScale":true,
                "resizeErrors":[{"code":"AllocationTimedout","message":"t"}]}"#,
        );
        assert!(matches!(classify(&p), PoolHealth::Warn(_)));
        let fixed = pool(
            r#"{"id":"p","vmSize":"Standard_D2s_v3","allocationState":"steady",
                "resizeErrors":[{"code":"AllocationTimedout","message":"t"}]}"#,
        );
        assert!(matches!(classify(&fixed), PoolHealth::Fatal(_)));
        assert_eq!(classify(&pool(r#"{"id":"p"}"#)), PoolHealth::Fine);
    }
}
