//! End-to-end runs of the local backend with the real trainer binary: golden scores, a bad
//! input among good ones, shared tasks, re-running a finished run, retries, timeouts, Ctrl-C.

#[path = "util.rs"]
mod util;

use std::time::{Duration, Instant};

use util::{Scratch, golden_default_outputs, repo_root, row, rows, show, trainer_bin};

#[test]
fn scores_in_the_report_equal_the_golden_outputs_for_input_files() {
    let s = Scratch::new();
    let out = s
        .command()
        .arg("run")
        .arg(repo_root().join("input_files"))
        .args(["--out"])
        .arg(s.out())
        .arg("--trainer")
        .arg(trainer_bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let run_dir = s.run_dir();
    let rows = rows(&run_dir);
    let goldens = golden_default_outputs();
    assert!(goldens.len() >= 6, "goldens for input_files: {goldens:?}");
    assert_eq!(rows.len(), goldens.len(), "one row per input file");
    for (input, output) in &goldens {
        let r = row(&rows, input);
        assert_eq!(r["status"], "succeeded", "{r:#}");
        let expected = output.strip_prefix("The model score: ").unwrap();
        assert_eq!(r["score"], expected, "score of {input}");
        assert_eq!(r["exit_code"], 0);
        assert_eq!(r["attempts"], 1);
        // The collected output file holds the trainer's exact bytes.
        let task_dir = run_dir.join("tasks").join(r["task_id"].as_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("output.txt")).unwrap(),
            *output
        );
        assert!(task_dir.join("stdout.txt").is_file() && task_dir.join("stderr.txt").is_file());
    }
    // Rows come in byte-wise order of the file names.
    let names: Vec<&str> = rows.iter().map(|r| r["input"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let csv = std::fs::read_to_string(run_dir.join("report.csv")).unwrap();
    assert!(
        csv.starts_with("input,task_id,status,score,exit_code,attempts,wall_seconds,stderr_tail"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), goldens.len() + 1);
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("iris.csv"));
    assert!(
        !html.contains("<script"),
        "the page is self-contained, without scripts"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("6 succeeded, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("Best:") && stdout.contains("Worst:"),
        "{stdout}"
    );
}

#[test]
fn a_bad_csv_fails_only_its_own_task_with_the_trainers_error() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    s.write_input("broken.csv", ",a,b,label\n0,1.5,oops,x\n1,2.5,3.5,y\n");
    let out = s.run(&trainer_bin(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let rows = rows(&s.run_dir());
    for good in ["iris.csv", "wine.csv"] {
        assert_eq!(row(&rows, good)["status"], "succeeded");
    }
    let bad = row(&rows, "broken.csv");
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["exit_code"], 1);
    // Exit 1 is the input's fault: never retried.
    assert_eq!(bad["attempts"], 1);
    let tail = bad["stderr_tail"].as_str().unwrap();
    assert!(
        tail.contains("broken.csv"),
        "the trainer's error names the input: {tail:?}"
    );
    let stderr_file = s
        .run_dir()
        .join("tasks")
        .join(bad["task_id"].as_str().unwrap())
        .join("stderr.txt");
    let stderr = std::fs::read_to_string(stderr_file).unwrap();
    assert!(stderr.trim_end().ends_with(tail.lines().last().unwrap()));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 failed"));
}

#[test]
fn inputs_with_equal_content_share_one_task_and_the_same_run_resumes() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "a.csv");
    s.copy_input("iris.csv", "b.csv");
    s.copy_input("wine.csv", "c.csv");
    let first = s.run(&trainer_bin(), &[]);
    assert!(first.status.success(), "{}", show(&first));
    let run_dir = s.run_dir();
    let rows1 = rows(&run_dir);
    assert_eq!(
        row(&rows1, "a.csv")["task_id"],
        row(&rows1, "b.csv")["task_id"]
    );
    assert_ne!(
        row(&rows1, "a.csv")["task_id"],
        row(&rows1, "c.csv")["task_id"]
    );
    assert_eq!(
        util::manifest(&run_dir)["tasks"].as_array().unwrap().len(),
        2
    );
    // Two distinct inputs plus the trainer, each staged once.
    let objects = std::fs::read_dir(s.out().join("objects")).unwrap().count();
    assert_eq!(objects, 3);
    let staged_at: Vec<_> = std::fs::read_dir(s.out().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();

    // The same command again finds the same run, runs nothing and copies nothing.
    let second = s.run(&trainer_bin(), &[]);
    assert!(second.status.success(), "{}", show(&second));
    assert_eq!(s.run_dir(), run_dir);
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("every task is already done"),
        "{}",
        show(&second)
    );
    assert_eq!(rows(&run_dir), rows1, "the report is unchanged");
    let staged_again: Vec<_> = std::fs::read_dir(s.out().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(staged_at, staged_again, "nothing staged twice");

    // A damaged object is detected by its digest and staged again, never trusted.
    let object = s.out().join("objects").join(
        util::manifest(&run_dir)["inputs"][0]["digest"]
            .as_str()
            .unwrap(),
    );
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "a test damaging its own file"
    )]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::write(&object, "garbage").unwrap();

    // Other trainer flags make other tasks and another run.
    let third = s.run(&trainer_bin(), &["--", "--n-estimators", "3"]);
    assert!(third.status.success(), "{}", show(&third));
    assert_eq!(s.run_dirs().len(), 2);
    assert_eq!(
        std::fs::read(&object).unwrap(),
        std::fs::read(s.inputs().join("a.csv")).unwrap(),
        "the damaged object was restaged"
    );
}

#[test]
fn transient_failures_are_retried_with_backoff_bad_input_is_not() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    // Fails with exit 2 (I/O trouble, retryable) on the first call only.
    let marker = s.path().join("failed-once");
    let wrapper = s.script(
        "flaky.sh",
        &format!(
            "if [ ! -e '{m}' ]; then touch '{m}'; echo 'transient I/O error' >&2; exit 2; fi\n\
             exec '{t}' \"$@\"\n",
            m = marker.display(),
            t = trainer_bin().display()
        ),
    );
    let out = s.run(&wrapper, &["--retries", "2"]);
    assert!(out.status.success(), "{}", show(&out));
    let rows = rows(&s.run_dir());
    let r = row(&rows, "iris.csv");
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["attempts"], 2);
}

#[test]
fn a_task_past_its_timeout_is_killed_and_recorded() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let wrapper = s.script("slow.sh", "sleep 30\n");
    let started = Instant::now();
    let out = s.run(&wrapper, &["--timeout", "500ms", "--retries", "0"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout stopped the task"
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let rows = rows(&s.run_dir());
    let r = row(&rows, "iris.csv");
    assert_eq!(r["status"], "timed_out");
    assert_eq!(r["attempts"], 1);
}

#[cfg(unix)]
#[test]
fn ctrl_c_kills_running_children_and_records_them_cancelled() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let pids = s.path().join("pids");
    std::fs::create_dir_all(&pids).unwrap();
    // The wrapper records its pid, then a grandchild `sleep` that only a process-group kill
    // reaches.
    let wrapper = s.script(
        "hang.sh",
        &format!(
            "echo > '{p}/'$$\nsleep 60 &\necho > '{p}/'$!\nwait\n",
            p = pids.display()
        ),
    );
    let child = s
        .run_command(&wrapper, &["--concurrency", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&pids).unwrap().count() < 4 {
        assert!(Instant::now() < deadline, "tasks never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    for entry in std::fs::read_dir(&pids).unwrap() {
        let pid = entry.unwrap().file_name().into_string().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(&pid) {
            assert!(Instant::now() < deadline, "task process {pid} still alive");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let rows = rows(&s.run_dir());
    for r in &rows {
        assert_eq!(r["status"], "cancelled", "{r:#}");
    }
}

/// Whether a process exists and is not a zombie (a container's init may reap slowly).
#[cfg(unix)]
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
