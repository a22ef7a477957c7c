//! What a run may take from the machine: worker threads (clamped to the cores, one thread when
//! no more can be started) and the memory `--n-estimators` needs before any tree is grown.
//!
//! scikit-learn's meaning of every parameter is kept: more threads than cores cannot change the
//! result, so they are clamped; the number of trees changes the result, so it is never lowered,
//! and a forest the memory cannot hold is refused with one line (exit 2) instead of aborting.

use std::path::Path;

use crate::error::{Error, Result};

/// The worker count for `requested` threads (`None`: every core): never more than the cores.
pub(crate) fn thread_count(requested: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    requested.map_or(cores, |n| n.clamp(1, cores))
}

/// A pool of `threads` workers; when the system cannot start them, one worker on the calling
/// thread (the result is the same, only slower). Returns the pool and its size.
pub(crate) fn thread_pool(threads: usize) -> Result<(rayon::ThreadPool, usize)> {
    let build = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build();
    let first = match build(threads) {
        Ok(pool) => return Ok((pool, threads)),
        Err(e) => e,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .map_err(|e| Error::ThreadPool {
            threads: 1,
            message: e.to_string(),
        })?;
    eprintln!("trainer: warning: could not start {threads} worker threads ({first}); using one");
    Ok((pool, 1))
}

/// Bytes each tree of the forest costs before it is grown (its seed); trees are dropped as
/// soon as they have predicted, so this is all that grows with `n_estimators`.
const BYTES_PER_TREE: u64 = 4;

/// Refuses `n_estimators` trees when the memory cannot hold even their seeds.
pub(crate) fn check_forest_size(n_estimators: usize, input: &Path) -> Result<()> {
    let need = (n_estimators as u64).saturating_mul(BYTES_PER_TREE);
    let available = available_memory();
    let fits = match available {
        Some(avail) => need <= avail,
        // Without /proc/meminfo, ask the allocator.
        None => Vec::<u32>::new().try_reserve_exact(n_estimators).is_ok(),
    };
    if fits {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1 << 30);
    let have = available.map_or(String::new(), |a| format!(" the {:.1} GiB", gib(a)));
    Err(Error::resources(
        input,
        format!(
            "--n-estimators {n_estimators} needs {:.1} GiB for the trees' seeds alone, more \
             than{have} this machine has available; use fewer trees",
            gib(need)
        ),
    ))
}

/// `MemAvailable` from /proc/meminfo, in bytes (Linux; `None` elsewhere).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_above_the_cores_are_clamped() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(thread_count(None), cores);
        assert_eq!(thread_count(Some(100_000)), cores);
        assert_eq!(thread_count(Some(1)), 1);
    }

    #[test]
    fn a_forest_the_memory_cannot_hold_is_refused() {
        assert!(check_forest_size(1_000, Path::new("in.csv")).is_ok());
        let e = check_forest_size(100_000_000_000, Path::new("in.csv")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("--n-estimators 100000000000 needs 372.5 GiB")
        );
    }
}
