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
use crate::runner::{exit_code, kill_group, node_command};
use crate::timefmt::rfc3339;

pub(crate) async fn run(sh: Arc<Shared>, pool_id: String, node_id: String, task: Value) {
    let root = sh
        .config
        .work_dir
        .join("pools")
        .join(&pool_id)
        .join("nodes")
        .join(&node_id);
    let startup = root.join("startup");
    let wd = startup.join("wd");
    let start = OffsetDateTime::now_utc();
    let max_retries = task["maxTaskRetryCount"].as_i64().unwrap_or(0);
    let mut retries = 0i64;
    let (exit, fail) = loop {
        let (exit, fail) = attempt(&sh, &pool_id, &node_id, &root, &wd, &task).await;
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

/// One run: (exit code, failure info).
async fn attempt(
    sh: &Shared,
    pool_id: &str,
    node_id: &str,
    root: &std::path::Path,
    wd: &std::path::Path,
    task: &Value,
) -> (Option<i32>, Option<Value>) {
    let startup = root.join("startup");
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
        if let Err(f) = files::download(&sh.http, wd, rf).await {
            return (None, Some(f));
        }
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
    let p = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut env = vec![
        (
            "AZ_BATCH_ACCOUNT_NAME".to_owned(),
            sh.config.credentials.account_name.clone(),
        ),
        ("AZ_BATCH_ACCOUNT_URL".to_owned(), sh.base_url.clone()),
        ("AZ_BATCH_POOL_ID".to_owned(), pool_id.to_owned()),
        ("AZ_BATCH_NODE_ID".to_owned(), node_id.to_owned()),
        ("AZ_BATCH_NODE_ROOT_DIR".to_owned(), p(root)),
        (
            "AZ_BATCH_NODE_SHARED_DIR".to_owned(),
            p(&root.join("shared")),
        ),
        ("AZ_BATCH_NODE_STARTUP_DIR".to_owned(), p(&startup)),
        ("AZ_BATCH_TASK_DIR".to_owned(), p(&startup)),
        ("AZ_BATCH_TASK_WORKING_DIR".to_owned(), p(wd)),
    ];
    for e in task["environmentSettings"].as_array().into_iter().flatten() {
        if let Some(name) = e["name"].as_str() {
            env.push((
                name.to_owned(),
                e["value"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
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
