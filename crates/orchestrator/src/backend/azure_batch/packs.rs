//! Packed tasks: one Batch task that runs the trainer once per input, one after the other
//! (`--inputs-per-task`), so Batch's own cost per task (scheduling, downloads, uploads,
//! collection) is paid per pack instead of per input.
//!
//! A pack's command line is POSIX `sh` only (a loop, `wc`, `cat`; no Python, no bash): each
//! member's input is a resource file under `in/<task-id>/`; the trainer runs on it up to
//! `retries + 1` times while it fails with anything but exit 0 (done) or 1 (bad input, never
//! retried) or 124 (over `--timeout`), so a retry re-runs only that input. Every member's exit
//! code, attempts, output and logs go into one `results.txt`, uploaded when the pack ends
//! (whatever its exit code) and fetched with one GET. The core still sees one task and one
//! outcome per input. Packs of one input are today's single tasks (`tasks::build_task`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use sha2::Digest as _;

use super::bundle::BUNDLE_FILE;
use super::model::{self, ResourceFile, TaskConstraints, TaskCreate};
use super::tasks::{is_plain_word, output_file};
use crate::backend::kit::pack::{self, InputsPerTask, TrainerRate};
use crate::task::TaskSpec;

/// The bundle a pack uploads: every member's record, in the order they ran.
pub(crate) const RESULTS_FILE: &str = "results.txt";
/// Each record starts with this word, then `task-id exit-code attempts` and three byte counts
/// (output, stdout, stderr), then those bytes.
const RECORD: &str = "@@orch";
/// Exit code of coreutils `timeout` when the command ran past its limit.
const TIMED_OUT_EXIT: i32 = 124;

/// What runs as one Batch task: one input (a single task, as before packing) or several.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pack {
    /// The Batch task id: the member's own for a pack of one, else `p-<digest of members>`.
    pub(crate) id: String,
    /// The core's task ids, in the order the pack runs them.
    pub(crate) members: Vec<String>,
}

impl Pack {
    pub(crate) fn is_single(&self) -> bool {
        self.members.len() == 1 && self.members[0] == self.id
    }
}

/// Batch task id of a pack of `members`: deterministic, so a resent pack is `TaskExists`.
fn pack_id(members: &[String]) -> String {
    let mut h = sha2::Sha256::new();
    for m in members {
        h.update(m.as_bytes());
        h.update(b"\n");
    }
    format!("p-{}", &hex::encode(h.finalize())[..20])
}

/// Where the run keeps its packs (`RUN/azure-packs.json`), so a resumed run reuses a pack
/// that may still be running instead of packing its inputs differently and running them twice.
fn packs_file(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("azure-packs.json")
}

/// The packs recorded for this run (empty when none).
pub(crate) fn recorded(run_dir: &Path) -> Vec<Pack> {
    std::fs::read(packs_file(run_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Splits `specs` into packs: a recorded pack whose members are all still to run is kept as
/// it was; the others are planned by the shared planner, per set of trainer flags (a sweep's
/// settings never share a pack, as a pack runs one command). New packs are recorded before
/// anything is submitted.
pub(crate) fn plan(
    run_dir: &Path,
    specs: &[TaskSpec],
    sizes: &HashMap<String, u64>,
    per_task: InputsPerTask,
    slots: usize,
    record: bool,
) -> Result<Vec<Pack>, String> {
    let mut known = recorded(run_dir);
    let pending: HashSet<&str> = specs.iter().map(|s| s.task_id.as_str()).collect();
    let mut out: Vec<Pack> = known
        .iter()
        .filter(|p| p.members.iter().all(|m| pending.contains(m.as_str())))
        .cloned()
        .collect();
    let covered: HashSet<&str> = out
        .iter()
        .flat_map(|p| p.members.iter().map(String::as_str))
        .collect();
    let mut groups: BTreeMap<&[String], Vec<&TaskSpec>> = BTreeMap::new();
    for s in specs
        .iter()
        .filter(|s| !covered.contains(s.task_id.as_str()))
    {
        groups.entry(&s.trainer_args).or_default().push(s);
    }
    let mut fresh = Vec::new();
    for group in groups.values() {
        let bytes: Vec<u64> = group
            .iter()
            .map(|s| sizes.get(&s.input_digest).copied().unwrap_or(0))
            .collect();
        for r in pack::plan(&bytes, per_task, &TrainerRate::MEASURED, slots) {
            let members: Vec<String> = group[r].iter().map(|s| s.task_id.clone()).collect();
            let id = if members.len() == 1 {
                members[0].clone()
            } else {
                pack_id(&members)
            };
            fresh.push(Pack { id, members });
        }
    }
    // Single tasks are recorded too: a resume with other packing (`resume` runs with the
    // default `auto`) must not pack inputs whose single tasks still run in the job.
    if record && !fresh.is_empty() {
        known.extend(fresh.iter().cloned());
        let body = serde_json::to_vec(&known).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(run_dir)
            .map_err(|e| format!("create {}: {e}", run_dir.display()))?;
        fsutil::write_atomic(&packs_file(run_dir), &body)
            .map_err(|e| format!("write {}: {e}", packs_file(run_dir).display()))?;
    }
    out.extend(fresh);
    Ok(out)
}

/// Everything a pack's body needs besides its members.
pub(crate) struct PackInputs<'a> {
    pub(crate) trainer_path: &'a str,
    pub(crate) output_container_url: &'a str,
    pub(crate) retries: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retention: Duration,
}

/// A member's file name under `in/<task-id>/`: the input's own name when it needs no
/// quoting, so trainer errors name it.
pub(crate) fn member_file(spec: &TaskSpec) -> String {
    if is_plain_word(&spec.input_name) && !spec.input_name.starts_with('-') {
        spec.input_name.clone()
    } else {
        "input.csv".to_owned()
    }
}

/// The Batch task of a pack of several inputs (`inputs`: each member's spec and read SAS URL,
/// `None` for a member that comes in the pack's bundle, whose read SAS URL is `bundle`).
pub(crate) fn build_pack(
    pack: &Pack,
    inputs: &[(&TaskSpec, Option<String>)],
    bundle: Option<&str>,
    x: &PackInputs<'_>,
) -> Result<TaskCreate, String> {
    let args = &inputs[0].0.trainer_args;
    if let Some(bad) = args.iter().find(|a| !is_plain_word(a)) {
        return Err(format!(
            "trainer flag `{bad}` has characters the Batch command line would need to quote; \
             use only letters, digits and ._+=,:@%/-"
        ));
    }
    let mut resource_files: Vec<ResourceFile> = bundle
        .map(|url| ResourceFile {
            http_url: url.to_owned(),
            file_path: BUNDLE_FILE.to_owned(),
            file_mode: None,
        })
        .into_iter()
        .collect();
    resource_files.extend(inputs.iter().filter_map(|(spec, url)| {
        Some(ResourceFile {
            http_url: url.clone()?,
            file_path: format!("in/{}/{}", spec.task_id, member_file(spec)),
            file_mode: None,
        })
    }));
    let first = &inputs[0].0.input_name;
    let last = &inputs[inputs.len() - 1].0.input_name;
    let display: String = format!("{} inputs: {first} .. {last}", inputs.len())
        .chars()
        .take(1024)
        .collect();
    let container = |pattern: &str, path: String, condition: &str| {
        output_file(x.output_container_url, pattern, path, condition)
    };
    // One attempt per member at most `timeout`; the pack as a whole gets all of them.
    let wall = x.timeout.map(|t| {
        let attempts = inputs.len() as u32 * (x.retries + 1);
        model::iso_duration(t * attempts + Duration::from_secs(60))
    });
    Ok(TaskCreate {
        id: pack.id.clone(),
        display_name: display,
        command_line: format!("/bin/sh -c '{}'", pack_script(x, args, bundle.is_some())),
        resource_files,
        output_files: vec![
            container(
                RESULTS_FILE,
                format!("{}/{RESULTS_FILE}", pack.id),
                "taskcompletion",
            ),
            // The pack's own logs only matter when the pack itself failed.
            container("../std*.txt", pack.id.clone(), "taskfailure"),
        ],
        constraints: TaskConstraints {
            max_wall_clock_time: wall,
            retention_time: model::iso_duration(x.retention),
            // Retries happen per input inside the pack; a retried pack would run them all again.
            max_task_retry_count: 0,
        },
    })
}

/// The loop a pack runs (no single quotes: it sits inside `/bin/sh -c '...'`).
/// With `bundled`, the pack's bundle is unpacked first (a bundle that does not unpack fails
/// the pack, which fails each member with the pack's failure, not with missing files).
fn pack_script(x: &PackInputs<'_>, args: &[String], bundled: bool) -> String {
    let unpack = if bundled {
        format!(
            "tar -xf {BUNDLE_FILE} || {{ echo \"{BUNDLE_FILE} did not unpack\" >&2; exit 3; }}; \
             rm -f {BUNDLE_FILE}; "
        )
    } else {
        String::new()
    };
    let limit = match x.timeout {
        Some(t) => format!("timeout -k 5 {} ", t.as_secs().max(1)),
        None => String::new(),
    };
    let mut flags = String::new();
    for a in args {
        flags.push(' ');
        flags.push_str(a);
    }
    format!(
        "{unpack}T=\"{trainer}\"; mkdir -p out; : >{RESULTS_FILE}; \
         for f in in/*/*; do t=${{f#in/}}; t=${{t%%/*}}; o=out/$t; a=0; b=$(date +%s.%N); \
         while :; do a=$((a+1)); rm -f $o.txt; \
         {limit}\"$T\" \"./$f\" $o.txt{flags} >$o.out 2>$o.err; rc=$?; \
         if [ $rc -eq 0 ] || [ $rc -eq 1 ] || [ $rc -eq {TIMED_OUT_EXIT} ] || [ $a -gt {retries} ]; then break; fi; \
         sleep 1; done; e=$(date +%s.%N); [ -f $o.txt ] || : >$o.txt; \
         echo \"{RECORD} $t $rc $a $(wc -c <$o.txt) $(wc -c <$o.out) $(wc -c <$o.err) $b $e\" >>{RESULTS_FILE}; \
         cat $o.txt $o.out $o.err >>{RESULTS_FILE}; done; exit 0",
        trainer = x.trainer_path,
        retries = x.retries,
    )
}

/// One member's record in `results.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberResult {
    pub(crate) task_id: String,
    pub(crate) exit_code: i32,
    pub(crate) attempts: u32,
    pub(crate) output: Vec<u8>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// The input's own wall time in the pack (its attempts and the pauses between), from the
    /// loop's `date +%s.%N` before and after; `None` from a `date` without `%N` (or a record
    /// of a pack loop that did not time its inputs).
    pub(crate) wall_micros: Option<u64>,
}

/// Microseconds since the epoch from `date +%s.%N`'s `SECONDS.NANOSECONDS`.
fn epoch_micros(text: &str) -> Option<u64> {
    let (secs, nanos) = text.split_once('.')?;
    if nanos.len() != 9 {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000 + nanos.parse::<u64>().ok()? / 1_000)
}

impl MemberResult {
    pub(crate) fn timed_out(&self) -> bool {
        self.exit_code == TIMED_OUT_EXIT
    }
}

/// Reads `results.txt`; a record cut short (the pack was stopped while writing it) ends the
/// list, so what is returned is always whole.
pub(crate) fn parse_results(bytes: &[u8]) -> Vec<MemberResult> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        let f: Vec<&str> = header.split_whitespace().collect();
        let nums: Option<Vec<u64>> = f
            .get(2..7)
            .and_then(|n| n.iter().map(|v| v.parse().ok()).collect());
        // 9 fields with the input's start and end times, 7 from an earlier pack loop.
        let fields_ok = f.first() == Some(&RECORD) && (f.len() == 7 || f.len() == 9);
        let (Some(nums), true) = (nums, fields_ok) else {
            break;
        };
        let (out_len, so_len, se_len) = (nums[2] as usize, nums[3] as usize, nums[4] as usize);
        let body = &rest[nl + 1..];
        if body.len() < out_len + so_len + se_len {
            break;
        }
        out.push(MemberResult {
            task_id: f[1].to_owned(),
            exit_code: i32::try_from(nums[0]).unwrap_or(i32::MAX),
            attempts: u32::try_from(nums[1]).unwrap_or(u32::MAX),
            output: body[..out_len].to_vec(),
            stdout: body[out_len..out_len + so_len].to_vec(),
            stderr: body[out_len + so_len..out_len + so_len + se_len].to_vec(),
            wall_micros: match (f.get(7).and_then(|b| epoch_micros(b)), f.get(8)) {
                (Some(b), Some(e)) => epoch_micros(e).and_then(|e| e.checked_sub(b)),
                _ => None,
            },
        });
        rest = &body[out_len + so_len + se_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, name: &str, args: &[&str]) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            input_name: name.into(),
            input_digest: format!("{id}-digest"),
            trainer_args: args.iter().map(|s| (*s).to_owned()).collect(),
            prior_attempts: 0,
        }
    }

    #[test]
    fn packs_keep_settings_apart_and_are_reused_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut specs: Vec<TaskSpec> = (0..6)
            .map(|i| spec(&format!("a{i}"), "x.csv", &[]))
            .collect();
        specs.extend((0..3).map(|i| spec(&format!("b{i}"), "x.csv", &["--max-depth=3"])));
        let sizes = HashMap::new();
        let packs = plan(dir.path(), &specs, &sizes, InputsPerTask::Fixed(4), 1, true).unwrap();
        let members: Vec<Vec<String>> = packs.iter().map(|p| p.members.clone()).collect();
        assert_eq!(
            members,
            vec![
                vec!["a0", "a1", "a2", "a3"]
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>(),
                vec!["a4".into(), "a5".into()],
                vec!["b0".into(), "b1".into(), "b2".into()],
            ]
        );
        assert!(
            packs
                .iter()
                .all(|p| p.id.starts_with("p-") && p.id.len() <= 64)
        );
        // Resumed with the first pack done: the others are kept as they were, not re-packed.
        let rest: Vec<TaskSpec> = specs[4..].to_vec();
        let again = plan(
            dir.path(),
            &rest,
            &sizes,
            InputsPerTask::Fixed(1000),
            1,
            true,
        )
        .unwrap();
        assert_eq!(again, packs[1..].to_vec());
        // One per task: single tasks named by the task id, kept as they are on resume.
        let d = tempfile::tempdir().unwrap();
        let fixed = InputsPerTask::Fixed(1);
        let single = plan(d.path(), &specs[..2], &sizes, fixed, 1, true).unwrap();
        assert!(single.iter().all(Pack::is_single));
        let again = plan(d.path(), &specs[..2], &sizes, InputsPerTask::Auto, 1, true).unwrap();
        assert_eq!(again, single);
    }

    #[test]
    fn results_round_trip_and_a_cut_record_is_dropped() {
        let mut b = Vec::new();
        b.extend_from_slice(b"@@orch t1 0 1 5 0 3\nscoreerr");
        b.extend_from_slice(
            b"@@orch t2 1 1 0 2 4 1700000000.250000000 1700000001.000500000\nhibad\n",
        );
        let r = parse_results(&b);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].wall_micros, None, "a record without times");
        assert_eq!(r[1].wall_micros, Some(750_500));
        assert_eq!(r[0].output, b"score");
        assert_eq!(r[0].stderr, b"err");
        assert_eq!((r[1].exit_code, r[1].attempts), (1, 1));
        assert_eq!(r[1].stdout, b"hi");
        assert_eq!(r[1].stderr, b"bad\n");
        b.extend_from_slice(b"@@orch t3 0 2 10 0 0\nshort");
        assert_eq!(parse_results(&b).len(), 2);
    }

    #[test]
    fn the_pack_script_has_no_single_quotes_and_runs_under_sh() {
        let x = PackInputs {
            trainer_path: "$AZ_BATCH_NODE_SHARED_DIR/orchestrator/trainer-abc",
            output_container_url: "https://a/o?sig=S",
            retries: 2,
            timeout: Some(Duration::from_secs(30)),
            retention: Duration::from_secs(600),
        };
        let s = pack_script(&x, &["--threads".into(), "1".into()], false);
        assert!(!s.contains('\''), "{s}");
        // Run it for real: a fake trainer that fails once with exit 2 on b, exit 1 on c.
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared/orchestrator");
        std::fs::create_dir_all(&shared).unwrap();
        let fake = shared.join("trainer-abc");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$1\" in\n*/a.csv) printf 'The model score: 1' >\"$2\";;\n\
             */b.csv) if [ -f seen ]; then printf 'The model score: 0.5' >\"$2\"; else : >seen; echo flaky >&2; exit 2; fi;;\n\
             *) echo \"$1: line 2: bad\" >&2; exit 1;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        for (t, n) in [("t1", "a.csv"), ("t2", "b.csv"), ("t3", "c.csv")] {
            let d = dir.path().join("wd/in").join(t);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(n), "x").unwrap();
        }
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&s)
            .current_dir(dir.path().join("wd"))
            .env("AZ_BATCH_NODE_SHARED_DIR", dir.path().join("shared"))
            .status()
            .unwrap();
        assert!(status.success());
        let r = parse_results(&std::fs::read(dir.path().join("wd").join(RESULTS_FILE)).unwrap());
        assert_eq!(r.len(), 3, "{r:?}");
        // Each input timed on its own; b's includes its retry's 1 s pause.
        let walls: Vec<u64> = r.iter().map(|m| m.wall_micros.unwrap()).collect();
        assert!(walls[1] >= 1_000_000 && walls[0] < walls[1], "{walls:?}");
        assert_eq!(
            (r[0].task_id.as_str(), r[0].exit_code, r[0].attempts),
            ("t1", 0, 1)
        );
        assert_eq!(r[0].output, b"The model score: 1");
        assert_eq!(
            (r[1].exit_code, r[1].attempts),
            (0, 2),
            "b retried once: {r:?}"
        );
        assert_eq!(
            (r[2].exit_code, r[2].attempts),
            (1, 1),
            "bad input never retried"
        );
        assert!(String::from_utf8_lossy(&r[2].stderr).contains("c.csv: line 2"));
    }
}
