//! The content-addressed object store every backend with a shared file system stages into
//! (`OUT/objects` for local, `STAGING/objects` for Slurm).
//!
//! Rules, each one a defect when a backend had its own copy:
//! - **hash while copying**: an object is named by the digest recorded at planning, and the
//!   copy is kept only if its bytes hash to that digest, so an input rewritten between planning
//!   and staging is refused instead of being trained on under the old digest;
//! - **verify before reuse**: an object already in the store is re-hashed before it is trusted
//!   (a matching size is not enough: a same-size object with other bytes would poison every
//!   later run of that content);
//! - **named links checked by inode**: `RUN/inputs/<name>` must be a hard link to the object
//!   itself; a link left from before the object was found corrupt and copied again is re-made.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::MANIFEST_FILE;
use crate::task::{StageObject, StagePlan, Staged};
use crate::{Error, Result};

/// A directory of objects named by the SHA-256 of their content.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    dir: PathBuf,
}

/// A copied, verified object waiting to be renamed into place: (temp path, final path).
type PendingObject = (PathBuf, PathBuf);

impl ObjectStore {
    /// A store in `dir` (created when something is staged).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the object with `digest` lives (or will).
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(digest)
    }

    /// Where [`ObjectStore::stage`] puts each object of `plan`, without touching anything.
    pub fn locations(&self, plan: &StagePlan) -> Staged {
        Staged {
            trainer: path_string(&self.path(&plan.trainer.digest)),
            inputs: plan
                .inputs
                .iter()
                .map(|o| (o.digest.clone(), path_string(&self.path(&o.digest))))
                .collect(),
        }
    }

    /// [`ObjectStore::stage`] on tokio's blocking pool, as a backend's `Backend::stage`: copying
    /// and hashing are blocking file work. A panic while staging is an [`Error::Backend`] of
    /// `backend`.
    pub async fn stage_async(self, plan: &StagePlan, backend: &'static str) -> Result<Staged> {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || self.stage(&plan))
            .await
            .map_err(|e| {
                tracing::debug!("{backend}: the staging task did not finish");
                Error::backend(backend, e)
            })?
    }

    /// Copies the trainer and every input of `plan` into the store, each verified against its
    /// digest; objects already there are re-hashed and reused. Blocking file work.
    ///
    /// Nothing is published unless every object verified: a file that changed since planning
    /// fails the whole staging with an [`Error::Input`] naming it.
    pub fn stage(&self, plan: &StagePlan) -> Result<Staged> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let mut pending = Vec::new();
        self.copy_object(&plan.trainer, true, &mut pending)?;
        // One copy per digest, even if the plan lists a content twice (or the trainer's):
        // the set keeps this linear, and each copy goes to a temp file of its own.
        let mut seen = BTreeSet::from([plan.trainer.digest.as_str()]);
        let distinct: Vec<&StageObject> = plan
            .inputs
            .iter()
            .filter(|o| seen.insert(o.digest.as_str()))
            .collect();
        match self.copy_in_parallel(&distinct) {
            Ok(p) => pending.extend(p),
            Err(e) => {
                discard(&pending);
                return Err(e);
            }
        }
        publish(pending)?;
        Ok(self.locations(plan))
    }

    /// Small inputs cost a file creation each, which is kernel time: spread them over the
    /// cores (nothing else runs while staging).
    fn copy_in_parallel(&self, objects: &[&StageObject]) -> Result<Vec<PendingObject>> {
        let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = objects.len().div_ceil(n_threads).max(1);
        let results: Vec<(Vec<PendingObject>, Result<()>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = objects
                .chunks(chunk)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut pending = Vec::new();
                        let res = chunk.iter().try_for_each(|object| {
                            self.copy_object(object, false, &mut pending).map(drop)
                        });
                        (pending, res)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("staging thread does not panic"))
                .collect()
        });
        let mut pending = Vec::new();
        let mut first_error = None;
        for (p, res) in results {
            pending.extend(p);
            if let Err(e) = res {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => {
                discard(&pending);
                Err(e)
            }
            None => Ok(pending),
        }
    }

    /// Copies one object next to its place in the store unless a verified copy is already
    /// there; [`publish`] renames the copies into place.
    ///
    /// Copy, not hard link: a hard link would alias the user's file, and editing it in place
    /// would silently change a "content-addressed" object.
    fn copy_object(
        &self,
        object: &StageObject,
        executable: bool,
        pending: &mut Vec<PendingObject>,
    ) -> Result<PathBuf> {
        let dest = self.path(&object.digest);
        // Trusted only if its bytes still match its name: this catches a copy that a power
        // loss truncated (copies are not fsynced) and anything edited in the store.
        if crate::input::hash_file(&dest).is_ok_and(|o| o.digest == object.digest) {
            return Ok(dest);
        }
        let (tmp, out) =
            fsutil::create_temp_beside(&dest).map_err(|e| Error::io("create", &dest, e))?;
        match copy_verified(object, out, &tmp, executable) {
            Ok(()) => {
                pending.push((tmp, dest.clone()));
                Ok(dest)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                discard(pending);
                pending.clear();
                Err(e)
            }
        }
    }
}

impl ObjectStore {
    /// `cleanup` for a store shared by every run under one directory: removes `run_dir`'s
    /// input links, then the objects its manifest names that no other run might use.
    ///
    /// "Might use" errs on the side of keeping: if any other run under the same parent has a
    /// manifest this code cannot read (unreadable, torn, a newer format), or a run directory
    /// has none, nothing is deleted, because that run's digests are unknown.
    pub fn remove_unused(&self, run_dir: &Path) -> Result<()> {
        // The run's named links to its inputs are scratch, not results.
        let inputs = run_dir.join("inputs");
        match std::fs::remove_dir_all(&inputs) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &inputs, e));
            }
            _ => {}
        }
        let Some(this) = referenced_digests(&run_dir.join(MANIFEST_FILE)) else {
            tracing::warn!(
                "cleanup: the manifest of {} cannot be read; no staged object removed",
                run_dir.display()
            );
            return Ok(());
        };
        let Some(others) = self.digests_of_other_runs(run_dir)? else {
            return Ok(());
        };
        for digest in this.difference(&others) {
            let path = self.path(digest);
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!("removed staged object {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        Ok(())
    }

    /// Every digest another run beside `run_dir` names, or `None` (keep everything) when some
    /// run's digests cannot be known.
    fn digests_of_other_runs(&self, run_dir: &Path) -> Result<Option<BTreeSet<String>>> {
        let Some(out_dir) = run_dir.parent() else {
            return Ok(None);
        };
        let mut others = BTreeSet::new();
        let entries = std::fs::read_dir(out_dir).map_err(|e| Error::io("list", out_dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io("list", out_dir, e))?.path();
            if path == run_dir || path == self.dir || !path.is_dir() {
                continue;
            }
            let manifest = path.join(MANIFEST_FILE);
            // A run directory is one with a manifest or a lock (a run being set up).
            if !manifest.exists() && !path.join(crate::manifest::LOCK_FILE).exists() {
                continue;
            }
            match referenced_digests(&manifest) {
                Some(digests) => others.extend(digests),
                None => {
                    tracing::warn!(
                        "cleanup: the manifest of run {} cannot be read; it may use any staged                          object, so none is removed",
                        path.display()
                    );
                    return Ok(None);
                }
            }
        }
        Ok(Some(others))
    }
}

/// The digests a manifest stages, read loosely so that a newer format still counts; `None`
/// when the file cannot be read or does not look like a manifest at all.
fn referenced_digests(manifest: &Path) -> Option<BTreeSet<String>> {
    let bytes = std::fs::read(manifest).ok()?;
    let value = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
    let mut digests = BTreeSet::new();
    digests.insert(value.pointer("/trainer/digest")?.as_str()?.to_owned());
    for input in value.get("inputs")?.as_array()? {
        digests.insert(input.get("digest")?.as_str()?.to_owned());
    }
    Some(digests)
}

/// Copies `object` into `out` (the temp file at `tmp`), hashing the bytes as they pass, and
/// fails unless they hash to the recorded digest.
fn copy_verified(
    object: &StageObject,
    mut out: std::fs::File,
    tmp: &Path,
    executable: bool,
) -> Result<()> {
    let mut src =
        std::fs::File::open(&object.path).map_err(|e| Error::io("open", &object.path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src
            .read(&mut buf)
            .map_err(|e| Error::io("read", &object.path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Error::io("write", tmp, e))?;
    }
    if hex::encode(hasher.finalize()) != object.digest {
        return Err(Error::Input {
            path: object.path.clone(),
            reason: "its content no longer matches the digest this run recorded for it \
                     (it changed since it was hashed); run `orchestrator run` again to \
                     start a run with the new content"
                .into(),
        });
    }
    set_read_only(&out, executable).map_err(|e| Error::io("chmod", tmp, e))
    // `out` is closed here, before any rename: an executable still open for writing cannot
    // be run (ETXTBSY).
}

/// Renames every verified copy into place.
///
/// Copies are not fsynced one by one: a thousand small inputs took seconds that way. Instead
/// an object is re-hashed whenever a later run wants to reuse it, so a copy lost or torn by a
/// power failure is detected and made again, never trusted.
fn publish(pending: Vec<PendingObject>) -> Result<()> {
    for (tmp, dest) in &pending {
        if let Err(e) = std::fs::rename(tmp, dest) {
            discard(&pending);
            return Err(Error::io("rename", tmp, e));
        }
    }
    Ok(())
}

fn discard(pending: &[PendingObject]) {
    for (tmp, _) in pending {
        let _ = std::fs::remove_file(tmp);
    }
}

#[cfg(unix)]
fn set_read_only(file: &std::fs::File, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o555 } else { 0o444 };
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_read_only(file: &std::fs::File, _executable: bool) -> std::io::Result<()> {
    let mut perms = file.metadata()?.permissions();
    perms.set_readonly(true);
    file.set_permissions(perms)
}

/// `DIR/inputs/<name>`, a hard link to the staged `object`, so that the trainer's error
/// messages (which name the file they were given) name the user's input rather than a digest.
/// Linking our own read-only object is safe, unlike linking the user's file.
///
/// An existing link is kept only if it is the object itself (same device and inode): after
/// the object was found corrupt and copied again, the old link still holds the corrupt bytes,
/// so it is replaced. Falls back to the object's own path if no link can be made (another file
/// system, say).
pub fn named_input(dir: &Path, object: &Path, name: &str) -> PathBuf {
    let dir = dir.join("inputs");
    let link = dir.join(name);
    if same_file(&link, object) {
        return link;
    }
    let res = std::fs::create_dir_all(&dir).and_then(|()| {
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::hard_link(object, &link)
    });
    match res {
        Ok(()) => link,
        // Another session linked it in between: trust it only if it is the object.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && same_file(&link, object) => link,
        Err(e) => {
            tracing::debug!(
                "cannot link {} to {}: {e}",
                object.display(),
                link.display()
            );
            object.to_path_buf()
        }
    }
}

/// Whether `a` and `b` are the same file (hard links of one inode).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.is_file() && a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inodes to compare, a link is never trusted: it is made again every time.
#[cfg(not(unix))]
fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &Path) -> StageObject {
        crate::input::hash_file(path).unwrap()
    }

    fn plan(trainer: &Path, inputs: &[&Path]) -> StagePlan {
        StagePlan {
            trainer: object(trainer),
            inputs: inputs.iter().map(|p| object(p)).collect(),
        }
    }

    #[test]
    fn an_input_rewritten_after_planning_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (trainer, input) = (dir.path().join("trainer"), dir.path().join("in.csv"));
        std::fs::write(&trainer, b"#!/bin/sh\n").unwrap();
        std::fs::write(&input, b"a,b\n1,2\n").unwrap();
        let plan = plan(&trainer, &[&input]);
        // Same size, other bytes: a size check cannot tell.
        std::fs::write(&input, b"a,b\n9,9\n").unwrap();
        let store = ObjectStore::new(dir.path().join("objects"));
        let err = store.stage(&plan).unwrap_err();
        assert!(matches!(err, Error::Input { .. }), "{err}");
        assert!(!store.path(&plan.inputs[0].digest).exists());
    }

    #[test]
    fn a_same_size_corrupt_object_is_copied_again_and_its_link_remade() {
        let dir = tempfile::tempdir().unwrap();
        let (trainer, input) = (dir.path().join("trainer"), dir.path().join("in.csv"));
        std::fs::write(&trainer, b"#!/bin/sh\n").unwrap();
        std::fs::write(&input, b"a,b\n1,2\n").unwrap();
        let plan = plan(&trainer, &[&input]);
        let store = ObjectStore::new(dir.path().join("objects"));
        let staged = store.stage(&plan).unwrap();
        let obj = PathBuf::from(&staged.inputs[&plan.inputs[0].digest]);
        let run = dir.path().join("run");
        let link = named_input(&run, &obj, "in.csv");
        assert_eq!(link, run.join("inputs/in.csv"));

        // The object is corrupted in place (same size); the link shares its inode.
        let mut perms = std::fs::metadata(&obj).unwrap().permissions();
        #[expect(clippy::permissions_set_readonly_false, reason = "test corrupts it")]
        perms.set_readonly(false);
        std::fs::set_permissions(&obj, perms).unwrap();
        std::fs::write(&obj, b"a,b\n6,6\n").unwrap();

        store.stage(&plan).unwrap();
        assert_eq!(
            std::fs::read(&obj).unwrap(),
            b"a,b\n1,2\n",
            "object re-copied"
        );
        let link = named_input(&run, &obj, "in.csv");
        assert_eq!(
            std::fs::read(&link).unwrap(),
            b"a,b\n1,2\n",
            "the stale link to the corrupt bytes is re-made"
        );
    }

    #[test]
    fn a_verified_object_is_not_copied_again() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, b"x,y\n1,2\n").unwrap();
        let plan = plan(&input, &[&input, &input]);
        let store = ObjectStore::new(dir.path().join("objects"));
        let staged = store.stage(&plan).unwrap();
        let obj = PathBuf::from(&staged.trainer);
        let before = std::fs::metadata(&obj).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.stage(&plan).unwrap();
        assert_eq!(std::fs::metadata(&obj).unwrap().modified().unwrap(), before);
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1);
    }

    /// Local cleanup used to read an unreadable manifest as "uses nothing" and delete objects
    /// that run still needed.
    #[test]
    fn cleanup_keeps_every_object_while_another_run_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let store = ObjectStore::new(out.join("objects"));
        let input = dir.path().join("in.csv");
        std::fs::write(&input, b"a,b\n1,2\n").unwrap();
        let plan = plan(&input, &[&input]);
        store.stage(&plan).unwrap();
        let manifest = format!(
            r#"{{"trainer":{{"digest":"{0}"}},"inputs":[{{"digest":"{0}"}}]}}"#,
            plan.trainer.digest
        );
        for run in ["a", "b"] {
            std::fs::create_dir_all(out.join(run)).unwrap();
            std::fs::write(out.join(run).join(MANIFEST_FILE), &manifest).unwrap();
        }
        // Run b's manifest is torn: its digests are unknown.
        std::fs::write(out.join("b").join(MANIFEST_FILE), b"{\"trainer\":").unwrap();
        store.remove_unused(&out.join("a")).unwrap();
        assert!(store.path(&plan.trainer.digest).exists(), "kept for run b");
        // Readable again and using the object: still kept. Gone only when b does not use it.
        std::fs::write(out.join("b").join(MANIFEST_FILE), &manifest).unwrap();
        store.remove_unused(&out.join("a")).unwrap();
        assert!(store.path(&plan.trainer.digest).exists());
        std::fs::write(
            out.join("b").join(MANIFEST_FILE),
            br#"{"trainer":{"digest":"x"},"inputs":[]}"#,
        )
        .unwrap();
        store.remove_unused(&out.join("a")).unwrap();
        assert!(!store.path(&plan.trainer.digest).exists());
    }
}
