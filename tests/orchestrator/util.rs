//! Shared helpers for the orchestrator's integration tests: the binaries, scratch
//! directories, running the CLI with a clean environment, reading reports and goldens.
#![allow(dead_code, unreachable_pub)] // Each test target uses a different subset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use tempfile::TempDir;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The orchestrator binary under test.
pub fn orchestrator_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrator"))
}

/// The real trainer binary: `target/<profile>/trainer`, next to this test executable's
/// `deps/` directory. `cargo test --workspace` builds it (the trainer has integration tests);
/// with `cargo test -p orchestrator` it may be missing, so it is built once here.
pub fn trainer_bin() -> PathBuf {
    static TRAINER: OnceLock<PathBuf> = OnceLock::new();
    TRAINER
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>");
            let trainer = profile_dir.join(format!("trainer{}", std::env::consts::EXE_SUFFIX));
            if !trainer.is_file() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args(["build", "-p", "trainer", "--manifest-path"])
                    .arg(repo_root().join("Cargo.toml"))
                    .status()
                    .expect("run cargo build -p trainer");
                assert!(
                    status.success() && trainer.is_file(),
                    "the trainer binary is missing at {} and `cargo build -p trainer` failed; \
                     build it first",
                    trainer.display()
                );
            }
            trainer
        })
        .clone()
}

/// A scratch directory for one test, with `in/` for inputs and `out/` for runs.
pub struct Scratch {
    pub dir: TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn inputs(&self) -> PathBuf {
        let p = self.dir.path().join("in");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Copies `input_files/<name>` into `in/`, under `as_name`.
    pub fn copy_input(&self, name: &str, as_name: &str) {
        std::fs::copy(
            repo_root().join("input_files").join(name),
            self.inputs().join(as_name),
        )
        .unwrap();
    }

    /// Writes `in/<name>`.
    pub fn write_input(&self, name: &str, content: &str) {
        std::fs::write(self.inputs().join(name), content).unwrap();
    }

    /// An executable shell script in the scratch dir (a trainer wrapper).
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        path
    }

    /// The orchestrator, run in the scratch dir with no `ORCHESTRATOR_*` variables inherited.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(orchestrator_bin());
        cmd.current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ORCHESTRATOR_") {
                cmd.env_remove(key);
            }
        }
        // Tests must never build the trainer through the orchestrator's `cargo run` fallback.
        cmd.env_remove("CARGO");
        cmd
    }

    /// The command `orchestrator --out out run in --trainer TRAINER EXTRA...`, not started.
    pub fn run_command(&self, trainer: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.command();
        cmd.arg("--out")
            .arg(self.out())
            .arg("run")
            .arg(self.inputs())
            .arg("--trainer")
            .arg(trainer)
            .args(extra);
        cmd
    }

    /// `orchestrator --out out ARGS...` (`status`, `resume`, `cleanup`), run to completion.
    pub fn out_command(&self, args: &[&str]) -> Output {
        self.command()
            .arg("--out")
            .arg(self.out())
            .args(args)
            .output()
            .expect("run orchestrator")
    }

    /// Starts [`Scratch::run_command`] in the background, its output discarded.
    pub fn spawn_run(&self, trainer: &Path, extra: &[&str]) -> std::process::Child {
        self.run_command(trainer, extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start orchestrator")
    }

    /// Runs [`Scratch::run_command`] to completion.
    pub fn run(&self, trainer: &Path, extra: &[&str]) -> Output {
        self.run_command(trainer, extra)
            .output()
            .expect("run orchestrator")
    }

    /// Lines of `invocations.log` (which a logging trainer wrapper appends to), counted.
    pub fn invocations(&self) -> BTreeMap<String, usize> {
        let text =
            std::fs::read_to_string(self.dir.path().join("invocations.log")).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            *counts.entry(line.trim().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// The run directories under `out/` (everything but `objects`).
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.out()) else {
            return vec![];
        };
        let mut dirs: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "objects")
            .collect();
        dirs.sort();
        dirs
    }

    /// Waits (up to a minute, else panics saying `what`) for a run directory whose manifest
    /// exists and satisfies `ready`, and returns it.
    pub fn wait_for_run(&self, what: &str, ready: impl Fn(&Path) -> bool) -> PathBuf {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "{what} never happened"
            );
            if let Some(dir) = self.run_dirs().into_iter().next()
                && dir.join("manifest.json").is_file()
                && ready(&dir)
            {
                return dir;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The only run directory.
    pub fn run_dir(&self) -> PathBuf {
        let dirs = self.run_dirs();
        assert_eq!(dirs.len(), 1, "expected one run, got {dirs:?}");
        dirs.into_iter().next().unwrap()
    }
}

/// Text of a process's stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `report.json` of a run.
pub fn report_json(run_dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(run_dir.join("report.json")).expect("report.json exists");
    serde_json::from_slice(&bytes).expect("report.json is JSON")
}

/// `report.json`'s rows.
pub fn rows(run_dir: &Path) -> Vec<serde_json::Value> {
    report_json(run_dir)["rows"].as_array().unwrap().clone()
}

/// The row of one input.
pub fn row<'a>(rows: &'a [serde_json::Value], input: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["input"] == input)
        .unwrap_or_else(|| panic!("no row for {input} in {rows:#?}"))
}

/// Every input of `golden` (name, the trainer's output line) succeeded with the golden score;
/// `log` is shown when one did not.
pub fn assert_golden_scores(rows: &[serde_json::Value], golden: &[(String, String)], log: &str) {
    for (name, line) in golden {
        let r = row(rows, name);
        assert_eq!(r["status"], "succeeded", "{name}: {r:#}\n{log}");
        let want = line.trim_start_matches("The model score: ");
        assert_eq!(r["score"].as_str(), Some(want), "{name}: {r:#}");
    }
}

/// A run's manifest as JSON: its snapshot (`manifest.json`) with the journal's changes
/// applied, read as the orchestrator reads it (also while a run is going on).
pub fn manifest(run_dir: &Path) -> serde_json::Value {
    let m = orchestrator::manifest::Manifest::load(run_dir).expect("the manifest is readable");
    serde_json::to_value(&m).expect("a manifest serializes")
}

/// Golden trainer outputs for the default flags, by input file name (`iris.csv` ->
/// `The model score: ...`), from `tests/golden/cases.json`.
pub fn golden_default_outputs() -> Vec<(String, String)> {
    let path = repo_root().join("tests/golden/cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    cases
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["status"] == "ok"
                && c["args"].as_array().is_some_and(Vec::is_empty)
                && c["csv"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("input_files/"))
        })
        .map(|c| {
            let csv = c["csv"].as_str().unwrap();
            (
                csv.trim_start_matches("input_files/").to_owned(),
                c["output"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until `path` exists, failing the test with `what` after `secs` seconds.
pub fn wait_for_file(path: &Path, secs: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
