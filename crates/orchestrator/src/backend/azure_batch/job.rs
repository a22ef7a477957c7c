//! Jobs: created with `onAllTasksComplete: noaction`, switched to `terminatejob` once every task
//! is in, capped by a job wall clock, tagged with the run id; terminated, deleted and found
//! again by that tag.

use std::time::Duration;

use reqwest::Method;

use super::client::{BatchClient, Call, next_call};
use super::model::{
    self, JobConstraints, JobCreate, JobPatch, JobPreparationTask, JobState, JobTerminate, JobView,
    NameValue, Page, PoolInfo, TaskExecutionResult, TaskState,
};

/// A Batch id derived from a run id: only `[A-Za-z0-9_-]`, at most 64 characters.
pub(crate) fn batch_id(prefix: &str, run_id: &str) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let id = format!("{prefix}{clean}");
    if id.len() <= 64 {
        return id;
    }
    // Keep it unique when truncating: the tail becomes a digest of the full id.
    let digest = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes())[..6]);
    format!("{}-{digest}", &id[..64 - 13])
}

const MAX_JOBS_PER_RUN: u32 = 100;

/// The run's `n`th job id: the base id, then `<base>-r1`, `<base>-r2`, ...
pub(crate) fn nth_job_id(base: &str, n: u32) -> String {
    if n == 0 {
        base.to_owned()
    } else {
        format!("{}-r{n}", &base[..base.len().min(58)])
    }
}

/// The ids of the run's jobs before `current` (finished ones, when `current` is a successor).
pub(crate) fn earlier_job_ids(base: &str, current: &str) -> Vec<String> {
    (0..MAX_JOBS_PER_RUN)
        .map(|n| nth_job_id(base, n))
        .take_while(|id| id != current)
        .collect()
}

/// The nodes where the job's preparation task (it puts the trainer on the node) failed for
/// good, its retries spent: Batch runs none of the job's tasks there. Each entry is
/// `node <id>: <category> <code>: <message> (exit code, attempts)`, redacted.
pub(crate) async fn failed_preparations(
    client: &BatchClient,
    job_id: &str,
) -> Result<Vec<String>, String> {
    let call = Call::get(format!("/jobs/{job_id}/jobpreparationandreleasetaskstatus"));
    let page: Page<super::model::JobPrepStatus> =
        client.send_json(&call).await.map_err(|e| e.to_string())?;
    let failed = page.value.into_iter().filter_map(|s| {
        let info = s.job_preparation_task_execution_info?;
        let done = info.state.eq_ignore_ascii_case("completed");
        (done && info.result == Some(TaskExecutionResult::Failure)).then(|| {
            let why = info.failure_info.map_or_else(String::new, |f| {
                format!(
                    "{} {}: {}",
                    f.category,
                    f.code.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or("")
                )
            });
            let exit = info
                .exit_code
                .map_or_else(String::new, |c| format!("exit code {c}, "));
            crate::backend::kit::redact::redact(&format!(
                "node {}: {why} ({exit}{} attempt(s))",
                s.node_id,
                info.retry_count + 1
            ))
        })
    });
    Ok(failed.collect())
}

/// Ids of the tasks of a job that completed successfully (empty when the job is gone).
/// Failed ones are left out on purpose: a task ended by a cancelled run looks failed too, and
/// must run again.
pub(crate) async fn succeeded_task_ids(
    client: &BatchClient,
    job_id: &str,
) -> Result<Vec<String>, String> {
    let mut call = Call::get(format!("/jobs/{job_id}/tasks"))
        .query("$filter", "state eq 'completed'")
        .query("$select", "id,state,executionInfo");
    let mut out = Vec::new();
    loop {
        let page: Page<super::model::TaskView> = match client.send_json(&call).await {
            Ok(p) => p,
            Err(e) if e.status == Some(404) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        };
        out.extend(
            page.value
                .into_iter()
                .filter(|t| {
                    t.state == TaskState::Completed
                        && t.execution_info
                            .as_ref()
                            .is_some_and(|e| e.result == Some(TaskExecutionResult::Success))
                })
                .map(|t| t.id),
        );
        match page.next_link {
            Some(n) => call = next_call(&n)?,
            None => return Ok(out),
        }
    }
}

/// The job: `noaction` until every task is in (then patched to `terminatejob`: a job with no
/// tasks yet would end at once), a wall-clock cap, the preparation task that puts the trainer
/// on each node, tagged with the run id for `cleanup`.
pub(crate) fn job_body(
    run_id: &str,
    job_id: &str,
    pool_info: PoolInfo,
    cap: Duration,
    prep: Option<JobPreparationTask>,
) -> JobCreate {
    JobCreate {
        id: job_id.to_owned(),
        pool_info,
        on_all_tasks_complete: "noaction".into(),
        on_task_failure: "noaction".into(),
        constraints: JobConstraints {
            max_wall_clock_time: Some(model::iso_duration(cap)),
        },
        job_preparation_task: prep,
        metadata: model::run_metadata(run_id),
    }
}

/// Picks the job id for this `execute`: the run's base id while that job is absent or still
/// active, else the first `-rN` successor (a finished job cannot take new tasks; resume needs one).
pub(crate) async fn choose_job_id(client: &BatchClient, base: &str) -> Result<String, String> {
    for n in 0..MAX_JOBS_PER_RUN {
        let id = nth_job_id(base, n);
        match client
            .send_json::<JobView>(&Call::get(format!("/jobs/{id}")).query("$select", "id,state"))
            .await
        {
            Ok(job) if job.state == JobState::Active => return Ok(id),
            Ok(job) => {
                tracing::info!(job = %id, state = %job.state, "job is finished; a resumed run uses a new job")
            }
            Err(e) if e.status == Some(404) => return Ok(id),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "100 finished jobs already exist for `{base}`; run `orchestrator cleanup` first"
    ))
}

/// Whether the job is past taking tasks (terminating, completed, being deleted, gone). An
/// unreadable job counts as not finished: the caller's error stands.
pub(crate) async fn is_finished(client: &BatchClient, job_id: &str) -> bool {
    match client
        .send_json::<JobView>(&Call::get(format!("/jobs/{job_id}")).query("$select", "id,state"))
        .await
    {
        Ok(job) => matches!(
            job.state,
            JobState::Terminating | JobState::Completed | JobState::Deleting
        ),
        Err(e) => e.status == Some(404),
    }
}

/// `POST /jobs`; an existing job with the id counts as created (a retried or resumed create).
pub(crate) async fn create_job(client: &BatchClient, body: &JobCreate) -> Result<(), String> {
    match client
        .send(&Call::new(Method::POST, "/jobs").json(model::to_body(body)))
        .await
    {
        Ok(_) => {
            tracing::info!(job = %body.id, "created job");
            Ok(())
        }
        Err(e) if e.is_code("JobExists") => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every task is in: let Batch terminate the job (freeing the active-job quota) when they end.
pub(crate) async fn set_terminate_when_done(
    client: &BatchClient,
    job_id: &str,
    patience: Duration,
) -> Result<(), String> {
    let body = JobPatch {
        on_all_tasks_complete: "terminatejob".into(),
    };
    let call = Call::new(Method::PATCH, format!("/jobs/{job_id}")).json(model::to_body(&body));
    let since = std::time::Instant::now();
    loop {
        match client.send(&call).await {
            Ok(_) => return Ok(()),
            // Batch out of reach: the tasks are in and running, so wait for it rather than
            // give the job up (the watch does the same).
            Err(e) if e.is_transient() && since.elapsed() < patience => {
                tracing::warn!(
                    job = %job_id,
                    "Azure Batch does not answer ({e}); trying again to switch the job to end with its tasks"
                );
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Terminates a job; one already completed or terminating is fine.
pub(crate) async fn terminate_job(
    client: &BatchClient,
    job_id: &str,
    reason: &str,
) -> Result<(), String> {
    let body = JobTerminate {
        terminate_reason: reason.into(),
    };
    match client
        .send(
            &Call::new(Method::POST, format!("/jobs/{job_id}/terminate"))
                .json(model::to_body(&body)),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.is_code("JobCompleted")
                || e.is_code("JobBeingTerminated")
                || e.is_code("JobNotFound") =>
        {
            Ok(())
        }
        Err(e) if e.status == Some(404) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Deletes a job (and with it every task directory on the nodes).
pub(crate) async fn delete_job(client: &BatchClient, job_id: &str) -> Result<(), String> {
    let gone = ["JobNotFound", "JobBeingDeleted"];
    client
        .delete(format!("/jobs/{job_id}"), gone)
        .await
        .map(drop)
}

/// Jobs whose metadata `pick` accepts (this run's, or everything this tool created).
pub(crate) async fn jobs_tagged(
    client: &BatchClient,
    pick: impl Fn(&[NameValue]) -> bool,
) -> Result<Vec<String>, String> {
    let call = Call::get("/jobs").query("$select", "id,state,metadata");
    client.ids_tagged(call, pick).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_body_snapshot() {
        let info = PoolInfo {
            pool_id: Some("orch-run-1".into()),
            auto_pool_specification: None,
        };
        let prep = super::super::tasks::trainer_preparation(
            "https://acct.blob.core.windows.net/orch-stage/abc?sv=2022-11-02&sp=r&sig=SIG",
            &"ab".repeat(32),
            Duration::from_secs(600),
        );
        let body = job_body(
            "run-1",
            "orch-run-1",
            info,
            Duration::from_secs(6 * 3600),
            Some(prep),
        );
        let got: serde_json::Value = serde_json::from_slice(&model::to_body(&body)).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(include_str!("snapshots/job.json")).unwrap();
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    }

    #[test]
    fn ids_are_clean_bounded_and_distinct() {
        assert_eq!(batch_id("orch-", "20261128-ab.c"), "orch-20261128-ab-c");
        let long_a = batch_id("orch-", &"a".repeat(100));
        let long_b = batch_id("orch-", &format!("{}b", "a".repeat(99)));
        assert_eq!(long_a.len(), 64);
        assert_ne!(long_a, long_b);
    }
}
