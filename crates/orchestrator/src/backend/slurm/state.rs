//! What this backend remembers about a run across orchestrator restarts, and the files one
//! submission hands to the wrapper script.
//!
//! `OUT/<run-id>/slurm.json` lists every array job submitted for the run: its job id, its
//! directory in the staging area and which task each index runs (with the attempt number).
//! It is written atomically before `sbatch` (without a job id) and again after it, so a
//! killed orchestrator finds, on resume, the jobs that are still running or already finished
//! and adopts them instead of running their tasks a second time.
//!
//! What was last reported to the core for each task changes with every event, so it is not
//! rewritten whole: each poll appends the changes to `slurm-reported.jsonl` (one JSON line per
//! change, synced before the events go to the core), and `load` replays them over the
//! snapshot in `slurm.json`. Every `save` (a new submission, the start of a session) writes
//! the snapshot with everything and empties the journal, so both stay bounded by the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fail;
use crate::backend::kit::{write_atomic, write_atomic_with};
use crate::task::TaskSpec;
use crate::{Error, Result};

/// Name of the state file inside the run directory.
pub(super) const STATE_FILE: &str = "slurm.json";

/// Name of the journal of [`RunState::reported`] changes since the last snapshot.
pub(super) const REPORTED_JOURNAL: &str = "slurm-reported.jsonl";

/// One line of [`REPORTED_JOURNAL`].
#[derive(Debug, Serialize, Deserialize)]
struct ReportedLine<'a> {
    task_id: std::borrow::Cow<'a, str>,
    #[serde(flatten)]
    reported: Reported,
}

/// Every array job submitted for one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct RunState {
    /// In submission order; `seq` equals the position.
    pub submissions: Vec<Submission>,
    /// What was last reported to the core for each task, across sessions.
    #[serde(default)]
    pub reported: BTreeMap<String, Reported>,
}

/// The last event the core got for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Reported {
    /// The attempt it was about.
    pub attempt: u32,
    /// It was the final outcome (`Finished`), not just `Started`.
    pub finished: bool,
    /// That outcome was one the core never runs again (success, or exit 1 = bad input). If
    /// the core asks for such a task anyway, it crashed before recording the outcome: the
    /// task is adopted and reported again, never re-run.
    #[serde(default)]
    pub settled: bool,
}

/// One `sbatch --array` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Submission {
    /// Position in [`RunState::submissions`]; names the directory and the job.
    pub seq: u32,
    /// `--job-name`, unique per run and submission: finds the job if the orchestrator died
    /// between `sbatch` and recording its id.
    pub job_name: String,
    /// The array job id, once `sbatch` answered.
    pub job_id: Option<String>,
    /// Directory holding manifest, flags and results (in the staging area).
    pub dir: PathBuf,
    /// The tasks of the submission; `tasks[i]`'s files are in `results/<i>` (its *slot*).
    pub tasks: Vec<Entry>,
    /// Where each array element's pack starts in `tasks`: element `e` runs the slots from
    /// `packs[e]` up to the next element's start. Empty: one task per element (element =
    /// slot), as before packing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<u32>,
}

impl Submission {
    /// The array element that runs slot `slot`.
    pub(super) fn element_of(&self, slot: u32) -> u32 {
        if self.packs.is_empty() {
            return slot;
        }
        (self.packs.partition_point(|&start| start <= slot) as u32).saturating_sub(1)
    }

    /// How many slots element `elem` runs.
    pub(super) fn pack_len(&self, elem: u32) -> usize {
        if self.packs.is_empty() {
            return 1;
        }
        let start = self.packs[elem as usize] as usize;
        let end = self
            .packs
            .get(elem as usize + 1)
            .map_or(self.tasks.len(), |&e| e as usize);
        end - start
    }
}

/// One array index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The task.
    pub task_id: String,
    /// Which attempt of the task this index is (1 = first).
    pub attempt: u32,
}

impl RunState {
    /// Reads the run's state (the snapshot, then the journal's changes over it); a run
    /// without one has submitted nothing yet.
    pub(super) fn load(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(STATE_FILE);
        let mut state: Self = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                fail(format!(
                    "cannot parse `{}` ({e}); it records this run's Slurm jobs; \
                     delete it only if none of them is still running",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        state.replay(&run_dir.join(REPORTED_JOURNAL))?;
        Ok(state)
    }

    /// Applies the journal's lines in order. A last line without its newline was being
    /// appended when the orchestrator died: its events never reached the core, so it is
    /// dropped; any other line that does not parse is an error naming the file and line.
    fn replay(&mut self, path: &Path) -> Result<()> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("read", path, e)),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        for (n, line) in complete.lines().enumerate() {
            let change: ReportedLine<'_> = serde_json::from_str(line).map_err(|e| {
                fail(format!(
                    "cannot parse line {} of `{}` ({e}); it records what this run's tasks \
                     reported; delete it only if none of the run's Slurm jobs is still running",
                    n + 1,
                    path.display()
                ))
            })?;
            self.reported
                .insert(change.task_id.into_owned(), change.reported);
        }
        Ok(())
    }

    /// Writes the state atomically (temp file, fsync, rename), then empties the journal,
    /// whose changes the snapshot now holds.
    pub(super) fn save(&self, run_dir: &Path) -> Result<()> {
        write_atomic_with(&run_dir.join(STATE_FILE), |w| {
            serde_json::to_writer(w, self).map_err(std::io::Error::other)
        })?;
        let journal = run_dir.join(REPORTED_JOURNAL);
        match std::fs::remove_file(&journal) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &journal, e)),
        }
    }

    /// Appends the changes of `task_ids` (already in [`RunState::reported`]) to the journal
    /// and syncs them: one write and one `fdatasync` for a whole poll.
    pub(super) fn append_reported<'a>(
        &self,
        run_dir: &Path,
        task_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        use std::io::Write;
        let mut lines = Vec::new();
        for id in task_ids {
            let Some(&reported) = self.reported.get(id) else {
                continue;
            };
            let line = ReportedLine {
                task_id: id.into(),
                reported,
            };
            serde_json::to_writer(&mut lines, &line).expect("a line serializes");
            lines.push(b'\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        let path = run_dir.join(REPORTED_JOURNAL);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        file.write_all(&lines)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error("write", &path, e))
    }

    /// The latest submission and slot of every task submitted, by task id.
    pub(super) fn latest_slots(&self) -> std::collections::HashMap<&str, (usize, u32)> {
        let mut latest = std::collections::HashMap::new();
        for (s, sub) in self.submissions.iter().enumerate() {
            for (i, e) in sub.tasks.iter().enumerate() {
                latest.insert(e.task_id.as_str(), (s, i as u32));
            }
        }
        latest
    }
}

/// Writes the files the wrapper reads for one submission: `manifest.tsv`, `flags/<set>` and
/// `timeout`.
///
/// `tasks[i]` is `(spec, staged input path)` for slot `i`; `elements[i]` is the array element
/// that runs it. A manifest line is `element TAB slot TAB flag set TAB task id TAB trainer TAB
/// input TAB input name`; tasks with the same trainer flags share one `flags/<set>` file (a
/// run without a sweep writes one). Fields are tab-separated, so the values the wrapper
/// splits on (task id, trainer path, input path) must not contain tabs or newlines.
pub(super) fn write_submission_files(
    dir: &Path,
    trainer: &str,
    tasks: &[(&TaskSpec, &str)],
    elements: &[u32],
    timeout_secs: u64,
) -> Result<()> {
    let flags_dir = dir.join("flags");
    std::fs::create_dir_all(&flags_dir).map_err(|e| io_error("create", &flags_dir, e))?;
    std::fs::create_dir_all(dir.join("results"))
        .map_err(|e| io_error("create", &dir.join("results"), e))?;
    let mut manifest = String::new();
    let mut sets: BTreeMap<&[String], usize> = BTreeMap::new();
    for (slot, ((spec, input), elem)) in tasks.iter().zip(elements).enumerate() {
        for (what, value) in [
            ("task id", spec.task_id.as_str()),
            ("trainer path", trainer),
            ("input path", input),
        ] {
            if value.is_empty() || value.contains(['\t', '\n', '\r']) {
                return Err(fail(format!(
                    "{what} `{}` cannot go into a Slurm manifest (empty, or contains a tab or \
                     newline); use a staging directory without such characters",
                    value.escape_debug()
                )));
            }
        }
        // The wrapper's "started" signal is its stdout file appearing in here.
        let results = dir.join("results").join(slot.to_string());
        std::fs::create_dir_all(&results).map_err(|e| io_error("create", &results, e))?;
        let next = sets.len();
        let set = *sets.entry(spec.trainer_args.as_slice()).or_insert(next);
        if set == next {
            write_flags(&flags_dir.join(set.to_string()), &spec.trainer_args)?;
        }
        // The input name is last and only for people reading the manifest; `read` puts the
        // rest of the line into the last field, so a tab in it cannot shift the others.
        let name = spec.input_name.replace(['\n', '\r'], " ");
        manifest.push_str(&format!(
            "{elem}\t{slot}\t{set}\t{}\t{trainer}\t{input}\t{name}\n",
            spec.task_id
        ));
    }
    write_atomic(&dir.join("timeout"), format!("{timeout_secs}\n").as_bytes())?;
    write_atomic(&dir.join("manifest.tsv"), manifest.as_bytes())
}

/// One set of trainer flags, NUL-separated, as the wrapper's `mapfile -d ''` reads them.
fn write_flags(path: &Path, args: &[String]) -> Result<()> {
    let mut flags = Vec::new();
    for arg in args {
        if arg.contains('\0') {
            return Err(fail(format!(
                "trainer flag `{}` contains a NUL byte",
                arg.escape_debug()
            )));
        }
        flags.extend_from_slice(arg.as_bytes());
        flags.push(0);
    }
    write_atomic(path, &flags)
}

/// What the wrapper recorded in `results/<index>/status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Status {
    /// The trainer's exit code (124/137 from `timeout` when it was killed).
    pub exit: i32,
    /// The per-attempt timeout killed the trainer.
    pub timed_out: bool,
    /// Wall seconds of the trainer process.
    pub wall: f64,
}

impl Status {
    /// Reads a status file; `None` while the task has not finished (or never ran).
    pub(super) fn read(path: &Path) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// `None` also for a file whose last line is not `end`: the wrapper is still writing it
    /// (it writes in place, to save a `mv` per input).
    fn parse(text: &str) -> Option<Self> {
        let mut exit = None;
        let mut timed_out = false;
        let mut wall = 0.0;
        let mut complete = false;
        for line in text.lines() {
            complete = line == "end";
            match line.split_once('=') {
                Some(("exit", v)) => exit = v.trim().parse().ok(),
                Some(("timed_out", v)) => timed_out = v.trim() == "1",
                Some(("wall", v)) => wall = v.trim().parse().unwrap_or(0.0),
                _ => {}
            }
        }
        if !complete {
            return None;
        }
        Some(Self {
            exit: exit?,
            timed_out,
            wall,
        })
    }
}

pub(super) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, args: &[&str]) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            input_name: format!("{id}.csv"),
            input_digest: format!("d{id}"),
            trainer_args: args.iter().map(|s| (*s).into()).collect(),
            prior_attempts: 0,
        }
    }

    #[test]
    fn state_round_trips_and_finds_latest() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RunState::load(dir.path()).unwrap(), RunState::default());
        let mut state = RunState::default();
        for (seq, ids) in [(0u32, vec!["a", "b"]), (1, vec!["b"])] {
            state.submissions.push(Submission {
                seq,
                job_name: format!("orch-x-{seq}"),
                job_id: Some(format!("{}", 10 + seq)),
                dir: dir.path().join(format!("sub-{seq}")),
                tasks: ids
                    .iter()
                    .map(|id| Entry {
                        task_id: (*id).into(),
                        attempt: seq + 1,
                    })
                    .collect(),
                packs: vec![],
            });
        }
        state.save(dir.path()).unwrap();
        let back = RunState::load(dir.path()).unwrap();
        assert_eq!(back, state);
        let latest = back.latest_slots();
        assert_eq!(latest.get("a"), Some(&(0, 0)));
        assert_eq!(latest.get("b"), Some(&(1, 0)));
        assert_eq!(latest.get("c"), None);
    }

    #[test]
    fn reported_changes_are_journaled_and_replayed_over_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let r = |attempt, finished| Reported {
            attempt,
            finished,
            settled: finished,
        };
        let mut state = RunState::default();
        state.reported.insert("a".into(), r(1, false));
        state.save(dir.path()).unwrap();
        state.reported.insert("a".into(), r(1, true));
        state.reported.insert("b".into(), r(2, false));
        state.append_reported(dir.path(), ["a", "b"]).unwrap();
        state.reported.insert("b".into(), r(2, true));
        state.append_reported(dir.path(), ["b"]).unwrap();
        assert_eq!(RunState::load(dir.path()).unwrap(), state);
        // A line torn by a kill -9 mid-append is dropped; the ones before it count.
        let journal = dir.path().join(REPORTED_JOURNAL);
        let mut text = std::fs::read_to_string(&journal).unwrap();
        text.push_str("{\"task_id\":\"c\",\"att");
        std::fs::write(&journal, &text).unwrap();
        assert_eq!(RunState::load(dir.path()).unwrap(), state);
        // A bad complete line is an error naming the file and line.
        std::fs::write(&journal, "{}\n").unwrap();
        let err = RunState::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(REPORTED_JOURNAL) && err.contains("line 1"),
            "{err}"
        );
        // A snapshot holds every change and empties the journal.
        state.save(dir.path()).unwrap();
        assert!(!journal.exists());
        assert_eq!(RunState::load(dir.path()).unwrap(), state);
    }

    #[test]
    fn packs_map_slots_to_elements() {
        let entry = |i: u32| Entry {
            task_id: format!("t{i}"),
            attempt: 1,
        };
        let mut sub = Submission {
            seq: 0,
            job_name: "j".into(),
            job_id: None,
            dir: PathBuf::from("/s"),
            tasks: (0..5).map(entry).collect(),
            packs: vec![],
        };
        assert_eq!((sub.element_of(3), sub.pack_len(3)), (3, 1));
        sub.packs = vec![0, 2, 3];
        let elems: Vec<u32> = (0..5).map(|s| sub.element_of(s)).collect();
        assert_eq!(elems, [0, 0, 1, 2, 2]);
        assert_eq!(
            (sub.pack_len(0), sub.pack_len(1), sub.pack_len(2)),
            (2, 1, 2)
        );
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let err = RunState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(STATE_FILE), "{err}");
    }

    #[test]
    fn submission_files_for_the_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec("a", &["--threads", "1", "with space", ""]);
        let b = spec("b", &[]);
        let c = spec("c", &["--threads", "1", "with space", ""]);
        write_submission_files(
            dir.path(),
            "/s/trainer",
            &[(&a, "/s/in a"), (&b, "/s/b"), (&c, "/s/c")],
            &[0, 0, 1],
            30,
        )
        .unwrap();
        let manifest = std::fs::read_to_string(dir.path().join("manifest.tsv")).unwrap();
        assert_eq!(
            manifest,
            "0\t0\t0\ta\t/s/trainer\t/s/in a\ta.csv\n0\t1\t1\tb\t/s/trainer\t/s/b\tb.csv\n\
             1\t2\t0\tc\t/s/trainer\t/s/c\tc.csv\n"
        );
        let flags = std::fs::read(dir.path().join("flags/0")).unwrap();
        assert_eq!(flags, b"--threads\x001\x00with space\x00\x00");
        assert!(
            std::fs::read(dir.path().join("flags/1"))
                .unwrap()
                .is_empty()
        );
        assert!(
            !dir.path().join("flags/2").exists(),
            "one file per flag set"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("timeout")).unwrap(),
            "30\n"
        );
        assert!(dir.path().join("results").is_dir());
    }

    #[test]
    fn tabs_in_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec("a", &[]);
        let err = write_submission_files(dir.path(), "/s/tr\tainer", &[(&a, "/s/a")], &[0], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("trainer path"), "{err}");
    }

    #[test]
    fn status_files() {
        let s = Status::parse("exit=2\ntimed_out=0\nwall=1.250\nend\n").unwrap();
        assert_eq!(s.exit, 2);
        assert!(!s.timed_out);
        assert_eq!(s.wall, 1.25);
        assert!(
            Status::parse("exit=124\ntimed_out=1\nwall=3\nend\n")
                .unwrap()
                .timed_out
        );
        assert_eq!(Status::parse("wall=1\nend\n"), None);
        assert_eq!(
            Status::parse("exit=0\ntimed_out=0\n"),
            None,
            "still being written"
        );
    }
}
