//! Helpers shared by the Slurm end-to-end tests: the cluster, the binaries, runs and reports.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Starts the cluster once per test binary; panics with the script's output if it cannot.
pub(crate) fn cluster() {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/slurm-start.sh"))
            .output()
            .map_err(|e| format!("cannot run scripts/slurm-start.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/slurm-start.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = started {
        panic!("the Slurm tests need a running cluster: {e}");
    }
}

/// The real trainer, built next to the orchestrator by `cargo test --workspace`.
pub(crate) fn trainer() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_orchestrator")).with_file_name("trainer");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p trainer` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

/// `orchestrator --out OUT` in an empty working directory (no stray orchestrator.toml), with
/// a short Slurm poll interval and no inherited `ORCHESTRATOR_*` settings.
pub(crate) fn orchestrator(out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    for (key, _) in std::env::vars() {
        if key.starts_with("ORCHESTRATOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(out.parent().expect("out has a parent"))
        .env("ORCHESTRATOR_SLURM_POLL_INTERVAL", "300ms")
        .env("RUST_LOG", "info")
        .arg("--out")
        .arg(out);
    cmd
}

pub(crate) fn run_cmd(out: &Path, inputs: &Path, trainer: &Path, extra: &[&str]) -> Command {
    let mut cmd = orchestrator(out);
    cmd.arg("run")
        .arg(inputs)
        .args(["--backend", "slurm", "--trainer"])
        .arg(trainer)
        .args(extra);
    cmd
}

pub(crate) fn output(mut cmd: Command) -> Output {
    let out = cmd.output().expect("orchestrator runs");
    eprintln!(
        "--- orchestrator {} ---\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The only run directory under `out`.
pub(crate) fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "one run under {}: {dirs:?}", out.display());
    dirs[0].clone()
}

pub(crate) fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// `report.json` rows by input name.
pub(crate) fn rows(run_dir: &Path) -> BTreeMap<String, Value> {
    let report = read_json(&run_dir.join("report.json"));
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["input"].as_str().expect("input").to_owned(), r.clone()))
        .collect()
}

/// A directory with copies of some of `input_files/`.
pub(crate) fn inputs(dir: &Path, names: &[&str]) -> PathBuf {
    let inputs = dir.join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    for name in names {
        std::fs::copy(root().join("input_files").join(name), inputs.join(name)).unwrap();
    }
    inputs
}

pub(crate) const ALL_INPUTS: [&str; 6] = [
    "breast_cancer.csv",
    "digits.csv",
    "iris.csv",
    "iris_str.csv",
    "synth_1k_20.csv",
    "wine.csv",
];

/// The Slurm state of the run (written by the backend), once it names a job.
pub(crate) fn wait_for_job(out: &Path, child: &mut Child) -> (PathBuf, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(entries) = std::fs::read_dir(out) {
            for entry in entries.flatten() {
                let state = entry.path().join("slurm.json");
                if let Ok(text) = std::fs::read_to_string(&state)
                    && let Ok(v) = serde_json::from_str::<Value>(&text)
                    && v["submissions"][0]["job_id"].is_string()
                {
                    return (entry.path(), v);
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("orchestrator exited ({status}) before submitting a job");
        }
        assert!(
            Instant::now() < deadline,
            "no Slurm job submitted within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orchestrator did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `squeue` lines (job id and state) of the jobs named `name`.
pub(crate) fn squeue_by_name(name: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "--name", name, "-t", "PD,R,CG,CF", "-o", "%i %T"])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn score_of(golden_output: &str) -> String {
    golden_output
        .strip_prefix("The model score: ")
        .expect("golden output line")
        .to_owned()
}

pub(crate) fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A one-input run (`iris.csv`) started in the background, caught while its task runs.
pub(crate) struct RunningTask {
    /// The orchestrator process.
    pub child: Child,
    /// `OUT/<run-id>`.
    pub run: PathBuf,
    /// The array job's id.
    pub job: String,
    /// The submission's directory in the staging area.
    pub sub_dir: PathBuf,
}

/// Runs `trainer_script` (a slow stand-in trainer) on one input and returns once Slurm has
/// started its task, so a test can do something to the task while it runs.
pub(crate) fn start_one_running_task(tmp: &Path, trainer_script: &str) -> RunningTask {
    start_running_task(tmp, &["iris.csv"], trainer_script, &[], 0)
}

/// Runs `trainer_script` on `names` (of `input_files/`) with `extra` flags and returns once
/// the input in slot `slot` of the first submission has started.
pub(crate) fn start_running_task(
    tmp: &Path,
    names: &[&str],
    trainer_script: &str,
    extra: &[&str],
    slot: usize,
) -> RunningTask {
    let inputs = inputs(tmp, names);
    let trainer = tmp.join("slow-trainer");
    write_script(&trainer, trainer_script);
    let out_dir = tmp.join("out");
    let mut child = run_cmd(&out_dir, &inputs, &trainer, extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (run, state) = wait_for_job(&out_dir, &mut child);
    let job = state["submissions"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sub_dir = PathBuf::from(state["submissions"][0]["dir"].as_str().unwrap());
    wait_until_started(&sub_dir, slot);
    RunningTask {
        child,
        run,
        job,
        sub_dir,
    }
}

/// Waits (at most a minute) until index 0 of the submission in `sub_dir` has started: its
/// wrapper has created the task's stdout file.
pub(crate) fn wait_until_first_task_started(sub_dir: &Path) {
    wait_until_started(sub_dir, 0);
}

/// Waits (at most a minute) until slot `slot` of the submission in `sub_dir` has started.
pub(crate) fn wait_until_started(sub_dir: &Path, slot: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sub_dir.join(format!("results/{slot}/stdout.txt")).exists() {
        assert!(Instant::now() < deadline, "slot {slot} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}
