//! The workspace's one atomic file write, shared by the trainer (its OUTPUT) and the
//! orchestrator (manifests, collected task files, backend state); and, in [`text`], its one
//! escape of untrusted text for a one-line message, which both print.
//!
//! Standard library only: the trainer is a static binary that knows nothing of tokio or the
//! orchestrator, and must not start to.
//!
//! Guarantees of [`write_atomic`]:
//! - readers see the old content or the new one, never a mix (temp file + rename);
//! - the temp file has an unpredictable name and is opened with `create_new` (`O_EXCL`), so a
//!   symlink planted at a guessed name is never followed, and two writers never share a temp;
//! - the file is synced before the rename and its directory after it, so a file another
//!   process has seen appear survives a crash of the machine;
//! - a target that exists and is not a regular file (`/dev/null`, a FIFO, a directory) is
//!   refused instead of being replaced.

pub mod text;

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How many temp names [`create_temp_beside`] tries before giving up (a clash needs 64 random
/// bits to collide; several in a row mean something else is wrong).
const TEMP_ATTEMPTS: u32 = 16;

/// Replaces `path` with `bytes` atomically and durably; see the crate docs.
///
/// Errors carry no path: callers know which file they were writing and name it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced by `write` into a buffered writer, so that a large
/// file (a manifest, a report of 100,000 rows) is never held in memory whole. Nothing
/// replaces `path` unless `write` succeeds.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    check_replaceable(path)?;
    let (tmp, file) = create_temp_beside(path)?;
    let res = (|| {
        let mut out = io::BufWriter::with_capacity(1 << 16, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(&parent_dir(path))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Refuses a `path` that exists and is not a regular file: renaming over `/dev/null` would
/// replace the device node for every process on the machine.
pub fn check_replaceable(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "exists and is not a regular file (a device, FIFO or directory); give a file path",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a new, empty temp file in `path`'s directory, named `.<file name>.<random>.tmp`,
/// with `create_new` (never an existing file, never through a symlink). Returns its path and
/// the open file; the caller renames or removes it.
pub fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", random_u64()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temp name available")))
}

/// Makes a directory's entries (a rename just done in it) durable.
///
/// A file system that cannot sync a directory says so with `EINVAL`; the rename has happened
/// either way, so that is not an error.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let d = File::open(dir)?;
        match d.sync_all() {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// 64 unpredictable bits from the standard library alone: `RandomState` is seeded from the
/// OS's random source once per process, and each call adds a counter and the clock.
fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["m.json"]);
    }

    #[test]
    fn refuses_a_device_and_leaves_it_alone() {
        let err = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file(), "/dev/null is still a device");
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let err = write_atomic(&dir.path().join("d"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(unix)]
    #[test]
    fn temp_names_are_unpredictable_and_never_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        // The names the old writers used: `.<name>.<pid>.tmp`.
        let guessed = dir
            .path()
            .join(format!(".out.txt.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &guessed).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let (a, _) = create_temp_beside(&path).unwrap();
        let (b, _) = create_temp_beside(&path).unwrap();
        assert_ne!(a, b);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_regular_file_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }
}
