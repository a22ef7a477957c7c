//! A pool's start task, run once on each node as it joins: resource files
//! into `startup/wd`, the command line without a shell, `stdout.txt` and
//! `stderr.txt` in `startup/`, retries up to `maxTaskRetryCount`. With
//! `waitForSuccess` (the default) the node takes no tasks until it succeeds,
//! and a failure leaves it `starttaskfailed`, as on the service.

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::Shared;
use crate::files::{self, failure};
use crate::runner::{exit_code, kill_group, node_command, node_env, push_settings};
use crate::timefmt::rfc3339;

pub(crate) async fn run(sh: Arc<Shared>, pool_id: String, node_id: String, task: Value) {
    let root = sh.node_root(&pool_id, &node_id);
    let startup = root.join("startup");
    let max_retries = task["maxTaskRetryCount"].as_i64().unwrap_or(0);
    let setup = Setup {
        pool_id: &pool_id,
        node_id: &node_id,
        root: &root,
        task_dir: &startup,
        task: &task,
        env: &[],
    };
    let (info, fail) = run_with_retries(&sh, &setup, max_retries).await;
    let wait = task["waitForSuccess"].as_bool().unwrap_or(true);
    let mut st = sh.lock();
    if let Some(n) = st
        .pools
        .get_mut(&pool_id)
        .and_then(|p| p.nodes.iter_mut().find(|n| n.id == node_id))
    {
        n.start_info = Some(info);
        n.starting = false;
        if fail.is_some() && wait {
            n.failed.get_or_insert_with(|| "starttaskfailed".to_owned());
        }
        n.state_time = OffsetDateTime::now_utc();
    }
    drop(st);
    sh.wake.notify_one();
}

/// Runs a start or job preparation task, retrying a non-zero exit up to `max_retries` times
/// (-1: forever): its execution info (`startTaskInfo`, `jobPreparationTaskExecutionInfo`) and
/// the failure, if it failed.
async fn run_with_retries(sh: &Shared, s: &Setup<'_>, max_retries: i64) -> (Value, Option<Value>) {
    let start = OffsetDateTime::now_utc();
    let mut retries = 0i64;
    let (exit, fail) = loop {
        let (exit, fail) = attempt(sh, s).await;
        let retry = exit.is_some_and(|c| c != 0) && (max_retries == -1 || retries < max_retries);
        if !retry || sh.shutdown.is_cancelled() {
            break (exit, fail);
        }
        retries += 1;
    };
    let mut info = json!({
        "state": "completed", "startTime": rfc3339(start), "endTime": rfc3339(OffsetDateTime::now_utc()),
        "retryCount": retries, "result": if fail.is_none() { "success" } else { "failure" },
    });
    if let Some(c) = exit {
        info["exitCode"] = json!(c);
    }
    if let Some(f) = &fail {
        info["failureInfo"] = f.clone();
    }
    (info, fail)
}

/// A start or job preparation task on one node: `task_dir` holds `stdout.txt`, `stderr.txt`
/// and the working directory `wd/`; `env` adds to the node's `AZ_BATCH_*` variables.
struct Setup<'a> {
    pool_id: &'a str,
    node_id: &'a str,
    root: &'a std::path::Path,
    task_dir: &'a std::path::Path,
    task: &'a Value,
    env: &'a [(String, String)],
}

/// The start task's environment: the `AZ_BATCH_*` variables a node sets, the caller's extra
/// ones, then the task's own `environmentSettings`.
fn start_task_env(sh: &Shared, s: &Setup<'_>, wd: &std::path::Path) -> Vec<(String, String)> {
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut env = node_env(sh, s.pool_id, s.node_id, s.root);
    env.push(("AZ_BATCH_TASK_DIR".to_owned(), p(s.task_dir)));
    env.push(("AZ_BATCH_TASK_WORKING_DIR".to_owned(), p(wd)));
    env.extend(s.env.iter().cloned());
    push_settings(&mut env, &s.task["environmentSettings"]);
    env
}

/// One run of a start or job preparation task: (exit code, failure info).
async fn attempt(sh: &Shared, s: &Setup<'_>) -> (Option<i32>, Option<Value>) {
    let Setup {
        root,
        task_dir,
        task,
        ..
    } = *s;
    let startup = task_dir;
    let wd = &task_dir.join("wd");
    if let Err(e) = tokio::fs::create_dir_all(wd)
        .await
        .and(tokio::fs::create_dir_all(root.join("shared")).await)
    {
        return (
            None,
            Some(failure(
                "servererror",
                "DiskFull",
                format!("failed to create {}: {e}", wd.display()),
            )),
        );
    }
    for rf in task["resourceFiles"].as_array().into_iter().flatten() {
        if let Err(f) = files::download(&sh.http, wd, &sh.faults.resource_file(rf)).await {
            return (None, Some(f));
        }
        crate::runner::count_download(sh, rf);
    }
    let argv = match files::split_command_line(task["commandLine"].as_str().unwrap_or_default()) {
        Ok(a) => a,
        Err(e) => return (None, Some(failure("usererror", "CommandLineInvalid", e))),
    };
    let (Ok(out), Ok(err)) = (
        std::fs::File::create(startup.join("stdout.txt")),
        std::fs::File::create(startup.join("stderr.txt")),
    ) else {
        return (
            None,
            Some(failure(
                "servererror",
                "DiskFull",
                "failed to create startup/stdout.txt",
            )),
        );
    };
    let env = start_task_env(sh, s, wd);
    let mut child = match node_command(&argv, wd, env, out, err).spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::write(
                startup.join("stderr.txt"),
                format!("batch-standin: cannot execute {}: {e}\n", argv[0]),
            );
            return (Some(127), Some(exit_failure()));
        }
    };
    let pgid = child.id();
    if let Some(p) = pgid {
        sh.lock().pgids.insert(p);
    }
    let code = tokio::select! {
        s = child.wait() => s.map_or(-1, exit_code),
        () = sh.shutdown.cancelled() => {
            kill_group(pgid);
            child.wait().await.map_or(-1, exit_code)
        }
    };
    kill_group(pgid);
    if let Some(p) = pgid {
        sh.lock().pgids.remove(&p);
    }
    (Some(code), (code != 0).then(exit_failure))
}

fn exit_failure() -> Value {
    failure(
        "usererror",
        "FailureExitCode",
        "The task process exited with an unexpected exit code",
    )
}

/// A job's preparation task on one node, as the runner starts it before the job's first task
/// there: retried up to `constraints.maxTaskRetryCount`, its state kept for
/// `GET /jobs/{id}/jobpreparationandreleasetaskstatus`, its directory and the node's shared
/// directory counted against the node's disk.
pub(crate) async fn run_job_prep(sh: Arc<Shared>, p: crate::runner::PrepLaunch) {
    let root = sh.node_root(&p.pool_id, &p.node_id);
    let dir = root
        .join("workitems")
        .join(&p.job_id)
        .join("job-1")
        .join("jobpreparation");
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let env = vec![
        ("AZ_BATCH_JOB_ID".to_owned(), p.job_id.clone()),
        ("AZ_BATCH_TASK_ID".to_owned(), "jobpreparation".to_owned()),
        ("AZ_BATCH_JOB_PREP_DIR".to_owned(), s(&dir)),
        (
            "AZ_BATCH_JOB_PREP_WORKING_DIR".to_owned(),
            s(&dir.join("wd")),
        ),
    ];
    let max_retries = p.task["constraints"]["maxTaskRetryCount"]
        .as_i64()
        .unwrap_or(0);
    let setup = Setup {
        pool_id: &p.pool_id,
        node_id: &p.node_id,
        root: &root,
        task_dir: &dir,
        task: &p.task,
        env: &env,
    };
    let (mut info, fail) = run_with_retries(&sh, &setup, max_retries).await;
    info["taskRootDirectory"] = json!(format!("workitems/{}/job-1/jobpreparation", p.job_id));
    let (dir_bytes, shared_bytes) = (
        crate::runner::dir_size(&dir),
        crate::runner::dir_size(&root.join("shared")),
    );
    let mut st = sh.lock();
    if let Some(n) = st
        .pools
        .get_mut(&p.pool_id)
        .and_then(|pool| pool.nodes.iter_mut().find(|n| n.id == p.node_id))
    {
        n.job_prep.insert(
            p.job_id.clone(),
            crate::state::PrepRun {
                completed: true,
                success: fail.is_none(),
                info,
            },
        );
        let old_shared = std::mem::replace(&mut n.shared_bytes, shared_bytes);
        n.account_disk(
            dir_bytes + shared_bytes,
            old_shared,
            sh.config.node_disk_bytes,
        );
    }
    drop(st);
    sh.wake.notify_one();
}
