//! Bundles: the small inputs of one pack staged as one tar blob instead of a blob each.
//!
//! A pack of 1,000 tiny CSVs would otherwise cost 1,000 staging PUTs and 1,000 node GETs
//! (two Blob Storage transactions per input, billed and each a round trip) for a few hundred
//! KB. Its bundle is one PUT and one GET. The bundle is content-addressed like every staged
//! object (its blob name is the SHA-256 of its bytes, which are a function of the members'
//! contents and names only: fixed modes, times and order), so a resumed run finds it staged
//! and uploads nothing. The node unpacks it with `tar` into the same `in/<task-id>/<name>`
//! paths the members' own resource files would have had, so the pack loop, task ids, resume
//! and per-input results stay per input.
//!
//! Only local inputs of at most [`MEMBER_MAX`] bytes go in, up to [`BUNDLE_MAX`] per bundle:
//! a large input gains nothing from sharing a request, and the node would wait for the whole
//! bundle before the first member runs. Inputs already in Blob Storage (`az://`) are read
//! where they are.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::task::TaskSpec;

/// The bundle's file name in the pack's working directory.
pub(crate) const BUNDLE_FILE: &str = "bundle.tar";
/// Largest input that goes into a bundle.
pub(crate) const MEMBER_MAX: u64 = 1 << 20;
/// Largest bundle (inputs, not counting tar's headers and padding).
pub(crate) const BUNDLE_MAX: u64 = 64 << 20;
/// A bundle of one input saves nothing.
const MIN_MEMBERS: usize = 2;

/// A pack member as the bundler sees it: its spec, and its local file and size when the input
/// is on this machine (`None`: it lives in Blob Storage already).
pub(crate) struct Member<'a> {
    pub(crate) spec: &'a TaskSpec,
    pub(crate) local: Option<(&'a Path, u64)>,
}

/// Which members go into the pack's bundle (indices into `members`, in order); empty when
/// a bundle would not pay. Pure, so `--dry-run` shows the same split as the run.
pub(crate) fn select(members: &[Member<'_>]) -> Vec<usize> {
    let mut total = 0u64;
    let mut chosen = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let Some((_, size)) = m.local else { continue };
        if size <= MEMBER_MAX && total + size <= BUNDLE_MAX {
            total += size;
            chosen.push(i);
        }
    }
    if chosen.len() < MIN_MEMBERS {
        chosen.clear();
    }
    chosen
}

/// A bundle written to disk, ready to upload under its digest.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) path: PathBuf,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

/// Writes the tar of `members[chosen]` into `dir` (named by its digest), each member at the
/// path `file_of` gives it. Every member's bytes are checked against its recorded digest: an
/// input changed since the run was planned is an error, never a silently different result.
pub(crate) fn build(
    members: &[Member<'_>],
    chosen: &[usize],
    file_of: &dyn Fn(&TaskSpec) -> String,
    dir: &Path,
) -> Result<Built, String> {
    let mut tar = Vec::new();
    for &i in chosen {
        let m = &members[i];
        let Some((path, size)) = m.local else {
            continue;
        };
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::open(path)
            .and_then(|f| f.take(MEMBER_MAX + 1).read_to_end(&mut data))
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if hex::encode(sha2::Sha256::digest(&data)) != m.spec.input_digest {
            return Err(format!(
                "{} changed since the run was planned; run the command again to plan it anew",
                path.display()
            ));
        }
        let entry = format!("in/{}/{}", m.spec.task_id, file_of(m.spec));
        tar.extend_from_slice(&header(&entry, data.len() as u64)?);
        tar.extend_from_slice(&data);
        tar.resize(tar.len().next_multiple_of(BLOCK), 0);
    }
    // Two zero blocks end the archive.
    tar.resize(tar.len() + 2 * BLOCK, 0);
    let digest = hex::encode(sha2::Sha256::digest(&tar));
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join(&digest);
    fsutil::write_atomic(&path, &tar).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(Built {
        path,
        digest,
        size: tar.len() as u64,
    })
}

const BLOCK: usize = 512;

/// A POSIX ustar header for a regular file at `entry` (mode 0644, owner 0, time 0: the same
/// members always give the same bytes). Paths over ustar's 100 + 155 bytes are refused.
fn header(entry: &str, size: u64) -> Result<[u8; BLOCK], String> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = if entry.len() <= 100 {
        ("", entry)
    } else {
        // Split at a `/` so the name part fits in 100 bytes and the prefix in 155.
        entry
            .char_indices()
            .filter(|&(i, c)| c == '/' && i <= 155 && entry.len() - i - 1 <= 100)
            .map(|(i, _)| (&entry[..i], &entry[i + 1..]))
            .next()
            .ok_or_else(|| format!("path `{entry}` is too long for a tar bundle"))?
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    octal(&mut h[148..155], u64::from(sum));
    Ok(h)
}

/// `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, name: &str, digest: &str) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            input_name: name.into(),
            input_digest: digest.into(),
            trainer_args: Vec::new(),
            prior_attempts: 0,
        }
    }

    #[test]
    fn small_local_inputs_are_bundled_large_and_remote_ones_are_not() {
        let p = Path::new("/x");
        let s = spec("t", "a.csv", "d");
        let m = |local: Option<u64>| Member {
            spec: &s,
            local: local.map(|n| (p, n)),
        };
        let members = [m(Some(10)), m(None), m(Some(MEMBER_MAX + 1)), m(Some(20))];
        assert_eq!(select(&members), vec![0, 3]);
        assert!(select(&members[..3]).is_empty(), "one member is no bundle");
        let full: Vec<Member<'_>> = (0..65).map(|_| m(Some(MEMBER_MAX))).collect();
        assert_eq!(select(&full).len(), 64, "at most BUNDLE_MAX of inputs");
    }

    #[test]
    fn the_bundle_is_a_tar_that_tar_unpacks_into_the_member_paths_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}.csv", "n".repeat(90));
        let files = [
            ("a.csv", b"x,y\n1,2\n".to_vec()),
            (long.as_str(), vec![b'z'; 700]),
        ];
        let mut specs = Vec::new();
        for (i, (name, body)) in files.iter().enumerate() {
            std::fs::write(dir.path().join(name), body).unwrap();
            let digest = hex::encode(sha2::Sha256::digest(body));
            specs.push(spec(&format!("{:064}", i), name, &digest));
        }
        let paths: Vec<PathBuf> = files.iter().map(|(n, _)| dir.path().join(n)).collect();
        let members: Vec<Member<'_>> = specs
            .iter()
            .zip(&paths)
            .zip(&files)
            .map(|((s, p), (_, b))| Member {
                spec: s,
                local: Some((p.as_path(), b.len() as u64)),
            })
            .collect();
        let file_of = |s: &TaskSpec| s.input_name.clone();
        let out = dir.path().join("bundles");
        let a = build(&members, &[0, 1], &file_of, &out).unwrap();
        let b = build(&members, &[0, 1], &file_of, &out).unwrap();
        assert_eq!((a.digest.as_str(), a.size), (b.digest.as_str(), b.size));
        let wd = dir.path().join("wd");
        std::fs::create_dir_all(&wd).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&a.path)
            .current_dir(&wd)
            .status()
            .unwrap();
        assert!(status.success());
        for ((name, body), s) in files.iter().zip(&specs) {
            let got = std::fs::read(wd.join("in").join(&s.task_id).join(name)).unwrap();
            assert_eq!(&got, body);
        }
        // An input edited after planning is refused, naming it.
        std::fs::write(&paths[0], b"changed").unwrap();
        let e = build(&members, &[0, 1], &file_of, &out).unwrap_err();
        assert!(e.contains("a.csv changed since the run was planned"), "{e}");
    }
}
