//! Helpers: a fresh temp directory per test and a runner for the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_trainer");

/// The repository root (tests refer to `input_files/`, `tests/golden/`, `scripts/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A temp dir holding `name` with `contents`; returns (dir guard, csv path).
pub(crate) fn csv_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// Runs `trainer INPUT OUTPUT args...`.
pub(crate) fn run(input: &Path, output: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg(input)
        .arg(output)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
