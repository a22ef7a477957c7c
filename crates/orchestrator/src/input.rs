//! Finding what a run works on: the input CSVs (checked names, content digests) and the
//! trainer executable. Nothing here writes a file, except that inputs in Blob Storage
//! ([`blob`]) are downloaded once into `OUT/blob-inputs/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::backend::BackendKind;
use crate::task::{StageObject, is_safe_name};
use crate::{Error, Result};

pub mod blob;

/// The inputs of a run from what the user named: a local directory ([`discover`]) or a blob
/// prefix, `az://ACCOUNT/CONTAINER/PREFIX` or `https://ACCOUNT.blob.core.windows.net/...`:
/// downloaded into `out_dir` ([`blob::discover`]) for the backends that run on files, left in
/// place ([`blob::discover_in_place`]) for Azure Batch, whose tasks read each blob through
/// its own read SAS; with `list_only` (`--dry-run`) only listed ([`blob::discover_listed`]).
pub fn discover_source(
    source: &Path,
    out_dir: &Path,
    backend: BackendKind,
    list_only: bool,
) -> Result<Vec<Input>> {
    let Some(text) = source.to_str() else {
        return discover(source);
    };
    match azure_staging::BlobPrefix::parse(text) {
        None => discover(source),
        // `--dry-run`: the listing is the plan; nothing is downloaded.
        Some(Ok(prefix)) if list_only => {
            blob::discover_listed(&prefix, text, out_dir, backend == BackendKind::AzureBatch)
        }
        Some(Ok(prefix)) if backend == BackendKind::AzureBatch => {
            blob::discover_in_place(&prefix, text, out_dir)
        }
        Some(Ok(prefix)) => blob::discover(&prefix, text, out_dir),
        Some(Err(e)) => Err(Error::Input {
            // Never echo a query: it may hold a SAS signature.
            path: PathBuf::from(text.split(['?', '#']).next().unwrap_or_default()),
            reason: match e {
                azure_staging::Error::InvalidArgument(m) => m,
                other => other.to_string(),
            },
        }),
    }
}

/// One input file, accepted and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The plain file name (checked by [`check_name`]).
    pub name: String,
    /// Its content, as an object to stage.
    pub object: StageObject,
}

/// Lists `dir`'s `*.csv` files in byte-wise order of their names and hashes each one.
///
/// Only regular files directly in `dir` are inputs; sub-directories are not searched. A
/// `.csv` entry whose name is unsafe (see [`check_name`]), is not UTF-8, or is a link that
/// leads out of `dir` stops the run with an error naming it: skipping it would silently drop
/// data, and passing it on could make a backend write outside its directory.
pub fn discover(dir: &Path) -> Result<Vec<Input>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list input directory", dir, e))?;
    let root = dir
        .canonicalize()
        .map_err(|e| Error::io("resolve", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list input directory", dir, e))?;
        let os_name = entry.file_name();
        let path = entry.path();
        let Some(name) = os_name.to_str() else {
            if has_csv_extension(os_name.as_encoded_bytes()) {
                return Err(Error::Input {
                    path,
                    reason: "the file name is not valid UTF-8; rename it".into(),
                });
            }
            continue;
        };
        if !has_csv_extension(name.as_bytes()) {
            continue;
        }
        check_name(name).map_err(|reason| Error::Input {
            path: path.clone(),
            reason,
        })?;
        let resolved = path
            .canonicalize()
            .map_err(|e| Error::io("resolve", &path, e))?;
        if resolved.parent() != Some(root.as_path()) {
            return Err(Error::Input {
                path,
                reason: format!(
                    "it resolves to `{}`, outside the input directory; copy the file in instead \
                     of linking it",
                    resolved.display()
                ),
            });
        }
        if !resolved.is_file() {
            continue;
        }
        found.push((name.to_owned(), path));
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if found.is_empty() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            reason: "no *.csv files in this directory".into(),
        });
    }
    // Hash on every core: a thousand small files are mostly open/read system calls.
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = found.len().div_ceil(n_threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = found
            .chunks(chunk)
            .map(|files| {
                scope.spawn(move || {
                    files
                        .iter()
                        .map(|(name, path)| {
                            Ok(Input {
                                name: name.clone(),
                                object: hash_file(path)?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut inputs = Vec::with_capacity(found.len());
        for h in handles {
            inputs.extend(h.join().expect("hashing thread does not panic")?);
        }
        Ok(inputs)
    })
}

fn has_csv_extension(name: &[u8]) -> bool {
    name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".csv")
}

/// Accepts a plain file name that is safe to use as a path component, a command-line argument
/// and a report cell; otherwise says why not.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if !is_safe_name(name) || name == "." || name == ".." {
        return Err(
            "the name could escape its directory (path separators or `..`); rename it".into(),
        );
    }
    if name.starts_with('-') {
        return Err("the name starts with `-` and would be read as a flag; rename it".into());
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains control characters; rename it".into());
    }
    Ok(())
}

/// SHA-256 of a file's bytes, with its size.
pub fn hash_file(path: &Path) -> Result<StageObject> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(StageObject {
        path: path.to_path_buf(),
        digest: hex::encode(hasher.finalize()),
        size,
    })
}

/// Where the trainer executable is looked for, in order, when `--trainer` is not given.
///
/// 1. Next to the orchestrator executable (an installed pair, or `target/<profile>/`).
/// 2. `target/release/trainer`, then `target/debug/trainer`, under the current directory and
///    in the target directory of the workspace this orchestrator was built from
///    (`$CARGO_TARGET_DIR` if set).
pub fn trainer_candidates() -> Vec<PathBuf> {
    let exe_name = format!("trainer{}", std::env::consts::EXE_SUFFIX);
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(&exe_name));
    }
    let mut target_dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        target_dirs.push(cwd.join("target"));
    }
    target_dirs.push(workspace_target_dir());
    for target in target_dirs {
        for profile in ["release", "debug"] {
            let path = target.join(profile).join(&exe_name);
            if !candidates.contains(&path) {
                candidates.push(path);
            }
        }
    }
    candidates
}

/// The workspace this crate was compiled in (two levels above its manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Where cargo puts this workspace's binaries: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
fn workspace_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Resolves the trainer: `explicit` if given (it must exist), else the first existing
/// [`trainer_candidates`] entry, else, when started by `cargo run` inside the workspace, builds
/// it with the same profile as this orchestrator and uses that.
pub fn find_trainer(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        return Err(Error::TrainerNotFound {
            searched: format!("`{}` (from --trainer / config)", path.display()),
        });
    }
    let candidates = trainer_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if let Some(built) = build_trainer()? {
        return Ok(built);
    }
    Err(Error::TrainerNotFound {
        searched: candidates
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// `cargo build -p trainer` in this crate's workspace, only when we were started by cargo
/// (`$CARGO` is set) and the workspace is still there. This is what makes
/// `cargo run --release -p orchestrator -- run input_files` work on a fresh clone.
fn build_trainer() -> Result<Option<PathBuf>> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(None);
    };
    let root = workspace_root();
    let manifest = root.join("crates/trainer/Cargo.toml");
    if !manifest.is_file() {
        return Ok(None);
    }
    let release = !cfg!(debug_assertions);
    let mut cmd = std::process::Command::new(&cargo);
    cmd.args(["build", "-p", "trainer", "--manifest-path"])
        .arg(root.join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let shown = format!(
        "cargo build -p trainer{}",
        if release { " --release" } else { "" }
    );
    tracing::info!("trainer not built yet; running `{shown}`");
    let status = cmd.status().map_err(|e| Error::TrainerBuild {
        command: shown.clone(),
        reason: e.to_string(),
    })?;
    if !status.success() {
        return Err(Error::TrainerBuild {
            command: shown,
            reason: status.to_string(),
        });
    }
    let built = workspace_target_dir()
        .join(if release { "release" } else { "debug" })
        .join(format!("trainer{}", std::env::consts::EXE_SUFFIX));
    Ok(built.is_file().then_some(built))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_or_confuse_are_rejected() {
        for bad in [
            "../x.csv", "a/b.csv", "a\\b.csv", "..", "-rf.csv", "a\nb.csv", "",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["iris.csv", "my data.csv", ".hidden.csv", "é.csv"] {
            assert!(check_name(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn csv_extension_is_case_insensitive_and_needs_a_stem() {
        assert!(has_csv_extension(b"a.csv"));
        assert!(has_csv_extension(b"A.CSV"));
        assert!(!has_csv_extension(b".csv"));
        assert!(!has_csv_extension(b"a.csv.bak"));
    }
}
