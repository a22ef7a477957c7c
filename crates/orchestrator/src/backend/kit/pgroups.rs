//! Process groups of running tasks, recorded in the run directory, so that a session started
//! after the orchestrator was killed (kill -9: no destructor runs, `kill_on_drop` included)
//! kills the trainers it left behind before running their tasks again. Without this the rerun
//! starts a task beside its orphan, and both write the same output file.
//!
//! `RUN/pgroups/<task id>` holds `<pgid> <start time>`: the start time (Linux's
//! `/proc/<pid>/stat`, field 22) tells the recorded process from an unrelated one that got
//! the same pid later, which is never killed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How long a session waits for killed leftovers to be gone before it starts their tasks.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// The process-group records of one run.
#[derive(Debug, Clone)]
pub struct ProcessGroups {
    dir: PathBuf,
}

impl ProcessGroups {
    /// The records of the run in `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        Self {
            dir: run_dir.join("pgroups"),
        }
    }

    /// Records that `task_id` runs as process group `pgid` (its leader's pid).
    ///
    /// Not synced: the record only has to outlive the orchestrator, not the machine (a
    /// machine that restarts has no processes left to kill). A torn record is ignored.
    pub fn record(&self, task_id: &str, pgid: u32) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let start = start_time(pgid).unwrap_or(0);
        std::fs::write(self.dir.join(task_id), format!("{pgid} {start}\n"))
    }

    /// The task's group has ended (or was killed): forget it.
    pub fn forget(&self, task_id: &str) {
        let _ = std::fs::remove_file(self.dir.join(task_id));
    }

    /// Kills every recorded group whose leader is still the recorded process, waits until
    /// they are gone, and clears the records. Returns how many were killed. Call it with the
    /// run lock held, before any task of the session starts.
    pub fn kill_leftovers(&self) -> Result<usize> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        let mut killed = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let record = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(pgid) = parse_record(&record).filter(|&(pid, start)| alive_as(pid, start)) {
                tracing::warn!(
                    "killing process group {} left running by an earlier orchestrator (task {})",
                    pgid.0,
                    entry.file_name().to_string_lossy()
                );
                kill_group(pgid.0);
                killed.push(pgid);
            }
            let _ = std::fs::remove_file(&path);
        }
        let deadline = Instant::now() + KILL_WAIT;
        while killed.iter().any(|&(pid, start)| alive_as(pid, start)) {
            if Instant::now() > deadline {
                return Err(Error::backend(
                    "local",
                    "trainers left by an earlier orchestrator did not die after SIGKILL; \
                     find them with `ps -e -o pid,pgid,cmd` and stop them, then resume",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(killed.len())
    }
}

/// `<pgid> <start time>`.
fn parse_record(text: &str) -> Option<(u32, u64)> {
    let mut parts = text.split_whitespace();
    let pgid = parts.next()?.parse().ok().filter(|&p| p > 1)?;
    let start = parts.next()?.parse().ok()?;
    Some((pgid, start))
}

/// Whether `pid` is a live (not zombie) process that started at `start` (0: unknown, any).
fn alive_as(pid: u32, start: u64) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the command: field 3 (state) is fields[0], field 22 (starttime) fields[19].
        let zombie = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
        let same = start == 0 || fields.get(19).and_then(|s| s.parse().ok()) == Some(start);
        !zombie && same
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = start;
        i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
    }
}

/// When `pid` started (clock ticks since boot), where the system says.
fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.rsplit_once(')')?;
        rest.split_whitespace().nth(19)?.parse().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// SIGKILL to a process group (ESRCH, already gone, is fine).
pub fn kill_group(pgid: u32) {
    #[cfg(unix)]
    if let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_recorded_group_is_killed_and_a_reused_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let groups = ProcessGroups::new(dir.path());
        let mut cmd = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.arg("30").spawn().unwrap();
        let pid = child.id();
        // A record whose start time does not match is another process: left alone.
        std::fs::create_dir_all(dir.path().join("pgroups")).unwrap();
        std::fs::write(dir.path().join("pgroups/other"), format!("{pid} 1\n")).unwrap();
        assert_eq!(groups.kill_leftovers().unwrap(), 0);
        assert!(child.try_wait().unwrap().is_none(), "still running");

        groups.record("t1", pid).unwrap();
        // The child is ours, so it stays a zombie until waited: reap it in the background.
        let reaper = std::thread::spawn(move || child.wait().unwrap());
        assert_eq!(groups.kill_leftovers().unwrap(), 1);
        assert!(!reaper.join().unwrap().success());
        assert_eq!(
            std::fs::read_dir(dir.path().join("pgroups"))
                .unwrap()
                .count(),
            0
        );
    }
}
