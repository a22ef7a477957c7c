//! Container and blob names for a run.
//!
//! Each run gets two containers so that a SAS can be scoped to exactly what a node needs:
//! `{prefix}-{slug}-{hash}-in` (trainer + inputs, blob name = SHA-256 digest) and
//! `{prefix}-{slug}-{hash}-out` (task outputs). `slug` is a readable form of the run id and
//! `hash` the first 10 hex digits of its SHA-256, so distinct run ids never share a container
//! even when their slugs collide. Both containers carry the exact run id in metadata
//! (`runid`), which is how [`crate::StagingClient::list_runs`] finds them.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Container-name limit imposed by Azure Storage.
const MAX_CONTAINER: usize = 63;

/// The two containers of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContainers {
    /// The run id they belong to.
    pub run_id: String,
    /// Trainer and inputs, content-addressed.
    pub inputs: String,
    /// Task outputs, written by the nodes through a `cw` SAS.
    pub outputs: String,
}

impl RunContainers {
    /// Names for `run_id` under `prefix` (see [`validate_prefix`]).
    pub fn new(prefix: &str, run_id: &str) -> Result<Self> {
        validate_prefix(prefix)?;
        validate_run_id(run_id)?;
        let hash = hex::encode(Sha256::digest(run_id.as_bytes()));
        let hash = &hash[..10];
        let mut slug = String::new();
        for c in run_id.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') {
                slug.push('-');
            }
        }
        // prefix + "-" + slug + "-" + hash + "-out"
        let room = MAX_CONTAINER - prefix.len() - 1 - 1 - hash.len() - 4;
        let slug: String = slug.trim_matches('-').chars().take(room).collect();
        let slug = slug.trim_end_matches('-');
        let stem = if slug.is_empty() {
            format!("{prefix}-{hash}")
        } else {
            format!("{prefix}-{slug}-{hash}")
        };
        Ok(RunContainers {
            run_id: run_id.to_owned(),
            inputs: format!("{stem}-in"),
            outputs: format!("{stem}-out"),
        })
    }
}

/// A container prefix: 1 to 20 characters of `a-z`, `0-9` and inner `-`, starting with a letter
/// or digit (Azure's container-name rules, leaving room for the run part).
pub fn validate_prefix(prefix: &str) -> Result<()> {
    let ok = (1..=20).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !prefix.starts_with('-')
        && !prefix.ends_with('-')
        && !prefix.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "container prefix {prefix:?} must be 1-20 characters of a-z, 0-9 and single inner hyphens"
        )))
    }
}

/// A run id: 1 to 200 printable ASCII characters (it is stored as container metadata).
pub fn validate_run_id(run_id: &str) -> Result<()> {
    if (1..=200).contains(&run_id.len()) && run_id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "run id {run_id:?} must be 1-200 printable ASCII characters"
        )))
    }
}

/// A lowercase hex SHA-256 digest, the only blob name the inputs container uses.
pub fn validate_digest(digest: &str) -> Result<()> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{digest:?} is not a lowercase hex SHA-256 digest"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_container(name: &str) -> bool {
        (3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.contains("--")
    }

    #[test]
    fn names_are_valid_distinct_and_stable() {
        let a = RunContainers::new("orch", "2026-11-28T10:00:00Z_Run.A").unwrap();
        assert!(
            a.inputs.starts_with("orch-2026-11-28t10-00-00z-run-a-"),
            "{a:?}"
        );
        assert!(a.inputs.ends_with("-in") && a.outputs.ends_with("-out"));
        assert!(
            valid_container(&a.inputs) && valid_container(&a.outputs),
            "{a:?}"
        );
        let b = RunContainers::new("orch", "2026-11-28T10:00:00Z_run.a").unwrap();
        assert_ne!(
            a.inputs, b.inputs,
            "case-distinct run ids must not share containers"
        );
        assert_eq!(
            a,
            RunContainers::new("orch", "2026-11-28T10:00:00Z_Run.A").unwrap()
        );
        let long = RunContainers::new("a-very-long-prefix-x", &"x".repeat(200)).unwrap();
        assert!(valid_container(&long.outputs), "{long:?}");
        let symbols = RunContainers::new("orch", "!!!").unwrap();
        assert!(valid_container(&symbols.inputs), "{symbols:?}");
    }

    #[test]
    fn rejects_bad_prefixes_run_ids_and_digests() {
        assert!(validate_prefix("Orch").is_err());
        assert!(validate_prefix("-x").is_err());
        assert!(validate_prefix("a--b").is_err());
        assert!(validate_prefix("").is_err());
        assert!(validate_run_id("").is_err());
        assert!(validate_run_id("tab\there").is_err());
        assert!(validate_digest("../etc/passwd").is_err());
        assert!(validate_digest(&"A".repeat(64)).is_err());
        validate_digest(&"0f".repeat(32)).unwrap();
    }
}
