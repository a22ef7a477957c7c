//! The pack planner: how many inputs one engine task runs (`--inputs-per-task N|auto`).
//!
//! A remote engine's own cost per task (scheduling, starting a job step, staging files) is
//! seconds, while a small CSV trains in milliseconds; one engine task per input makes the
//! plumbing the whole run. A *pack* is a run of consecutive tasks (in the order the core hands
//! them over) that one engine task works through, the trainer once per input. Packing is an
//! engine matter only: the core still sees one [`crate::task::TaskSpec`] and one outcome per
//! input.
//!
//! `auto` (the default) sizes packs so that one runs for about [`TARGET_PACK_SECONDS`], from
//! each input's size and [`TrainerRate::MEASURED`], never more than [`MAX_INPUTS_PER_PACK`]
//! inputs, and never so large that fewer packs than the engine's free slots are left (a run
//! of little work is spread, not queued behind one pack); packs are of about equal estimated
//! time, so none runs alone at the end. `1` is one engine task per input.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// No pack holds more inputs than this, whatever the estimate: a pack's retry, log and
/// result directory stay of a reviewable size, and a bad estimate costs at most this many
/// inputs run one after the other.
pub const MAX_INPUTS_PER_PACK: usize = 1000;

/// What `auto` aims at: long enough that an engine's per-task cost (seconds) is noise, short
/// enough that a lost node or a cancel costs little and progress stays visible.
pub const TARGET_PACK_SECONDS: f64 = 60.0;

/// The one `--inputs-per-task` flag, flattened once into `BackendArgs` (clap refuses a long
/// name declared twice); each packing backend reads it in its `from_settings`, below its own
/// TOML key `inputs_per_task`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PackArgs {
    /// Slurm, Azure Batch: inputs one engine task runs, one after the other: `auto` (packs of
    /// about a minute from the input sizes, at most 1000) or 1 to 1000; `1` is one task per
    /// input [default: auto].
    #[arg(long, env = "ORCHESTRATOR_INPUTS_PER_TASK", value_name = "N|auto")]
    pub inputs_per_task: Option<InputsPerTask>,
}

/// `--inputs-per-task`: a fixed number of inputs per engine task, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputsPerTask {
    /// Packs of about [`TARGET_PACK_SECONDS`] (see the module docs).
    #[default]
    Auto,
    /// At most this many inputs per engine task (1 ..= [`MAX_INPUTS_PER_PACK`]).
    Fixed(usize),
}

impl FromStr for InputsPerTask {
    type Err = String;

    /// `auto` or a whole number from 1 to 1000; the error is one line saying what is allowed.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_INPUTS_PER_PACK).contains(&n) => Ok(Self::Fixed(n)),
            _ => Err(format!(
                "expected `auto` or a whole number from 1 to {MAX_INPUTS_PER_PACK}, not `{text}`"
            )),
        }
    }
}

impl fmt::Display for InputsPerTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// The trainer's cost on one input, as a fixed start-up cost plus the input's bytes at a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainerRate {
    /// Seconds per trainer process whatever the input (exec, reading, the report).
    pub seconds_per_input: f64,
    /// Input bytes trained per second by one thread with the default flags.
    pub bytes_per_second: f64,
}

impl TrainerRate {
    /// Measured for the release trainer with `--threads 1` and the default flags on this
    /// project's 2-core machine (BENCHMARKS.md, "Pack planner rate"): the cost of the smallest
    /// inputs gives the fixed part, the 0.4-0.5 MB inputs the rate. Larger inputs grow as
    /// n log n, a little faster than this linear estimate, which only makes their packs
    /// shorter than a minute.
    pub const MEASURED: Self = Self {
        seconds_per_input: 0.004,
        bytes_per_second: 12.0e6,
    };

    /// Estimated seconds for an input of `bytes`.
    pub fn estimate(&self, bytes: u64) -> f64 {
        self.seconds_per_input + bytes as f64 / self.bytes_per_second
    }
}

/// Splits tasks into packs: contiguous ranges of indices into `sizes` (each task's input size
/// in bytes, in task order) that together cover every index once, in order.
///
/// `slots` is how many engine tasks can run at once (1 when unknown); `auto` makes at least
/// that many packs when there are that many inputs.
pub fn plan(
    sizes: &[u64],
    per_task: InputsPerTask,
    rate: &TrainerRate,
    slots: usize,
) -> Vec<Range<usize>> {
    match per_task {
        InputsPerTask::Fixed(n) => fixed(sizes.len(), n.clamp(1, MAX_INPUTS_PER_PACK)),
        InputsPerTask::Auto => auto(sizes, rate, slots.max(1)),
    }
}

fn fixed(len: usize, n: usize) -> Vec<Range<usize>> {
    (0..len).step_by(n).map(|s| s..(s + n).min(len)).collect()
}

/// As few packs as a minute each and [`MAX_INPUTS_PER_PACK`] allow, but at least one per slot,
/// of about equal estimated time: a pack closes at its share of the total, except the last,
/// which takes the rest (no stray small pack that runs after the others). An input longer
/// than a share starts a pack of its own, and a pack half again over its share closes.
fn auto(sizes: &[u64], rate: &TrainerRate, slots: usize) -> Vec<Range<usize>> {
    let total: f64 = sizes.iter().map(|&b| rate.estimate(b)).sum();
    let wanted = ((total / TARGET_PACK_SECONDS).ceil() as usize)
        .max(sizes.len().div_ceil(MAX_INPUTS_PER_PACK))
        .max(slots.min(sizes.len()))
        .max(1);
    let share = total / wanted as f64;
    let mut packs = Vec::new();
    let (mut start, mut seconds) = (0, 0.0);
    for (i, &bytes) in sizes.iter().enumerate() {
        let cost = rate.estimate(bytes);
        let full = i - start == MAX_INPUTS_PER_PACK
            || seconds > share * 1.5
            || cost > share
            || (seconds + cost / 2.0 > share && packs.len() + 1 < wanted);
        if i > start && full {
            packs.push(start..i);
            (start, seconds) = (i, 0.0);
        }
        seconds += cost;
    }
    if start < sizes.len() {
        packs.push(start..sizes.len());
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: TrainerRate = TrainerRate {
        seconds_per_input: 0.01,
        bytes_per_second: 1.0e6,
    };

    fn covers_in_order(packs: &[Range<usize>], len: usize) {
        let mut next = 0;
        for p in packs {
            assert_eq!(p.start, next, "{packs:?}");
            assert!(p.end > p.start, "empty pack in {packs:?}");
            assert!(p.len() <= MAX_INPUTS_PER_PACK);
            next = p.end;
        }
        assert_eq!(next, len);
    }

    #[test]
    fn the_flag_takes_auto_or_one_to_a_thousand() {
        assert_eq!("auto".parse(), Ok(InputsPerTask::Auto));
        assert_eq!(" AUTO ".parse(), Ok(InputsPerTask::Auto));
        assert_eq!("1".parse(), Ok(InputsPerTask::Fixed(1)));
        assert_eq!("1000".parse(), Ok(InputsPerTask::Fixed(1000)));
        for bad in ["0", "1001", "-3", "2.5", "", "many"] {
            let err = bad.parse::<InputsPerTask>().unwrap_err();
            assert!(err.contains("from 1 to 1000"), "{bad:?}: {err}");
            assert!(!err.contains('\n'));
        }
        assert_eq!(InputsPerTask::Fixed(7).to_string(), "7");
        assert_eq!(InputsPerTask::default().to_string(), "auto");
    }

    #[test]
    fn one_per_task_is_todays_behaviour() {
        let packs = plan(&[5; 4], InputsPerTask::Fixed(1), &RATE, 8);
        assert_eq!(packs, vec![0..1, 1..2, 2..3, 3..4]);
        assert!(plan(&[], InputsPerTask::Fixed(1), &RATE, 8).is_empty());
        assert!(plan(&[], InputsPerTask::Auto, &RATE, 8).is_empty());
    }

    #[test]
    fn fixed_packs_are_full_but_the_last() {
        let packs = plan(&[1; 10], InputsPerTask::Fixed(4), &RATE, 1);
        assert_eq!(packs, vec![0..4, 4..8, 8..10]);
    }

    #[test]
    fn auto_packs_about_a_minute_and_never_more_than_a_thousand() {
        // 100 KB inputs: 0.11 s each, 550 s in all: 10 packs of 55 s.
        let sizes = vec![100_000; 5000];
        let packs = plan(&sizes, InputsPerTask::Auto, &RATE, 2);
        covers_in_order(&packs, sizes.len());
        assert_eq!(packs.len(), 10, "{packs:?}");
        for p in &packs {
            let secs: f64 = sizes[p.clone()].iter().map(|&b| RATE.estimate(b)).sum();
            assert!((54.0..=60.0).contains(&secs), "{secs} s in {p:?}");
        }
        // Tiny inputs: the count cap, not the minute, closes a pack.
        let tiny = vec![10; 20_000];
        let packs = plan(&tiny, InputsPerTask::Auto, &RATE, 2);
        covers_in_order(&packs, tiny.len());
        assert_eq!(packs.len(), 20);
    }

    #[test]
    fn auto_spreads_little_work_over_every_slot() {
        let packs = plan(&[10; 40], InputsPerTask::Auto, &RATE, 8);
        covers_in_order(&packs, 40);
        assert_eq!(packs.len(), 8, "one pack per slot, no stray one: {packs:?}");
        assert!(packs.iter().all(|p| p.len() == 5), "{packs:?}");
        // 1,000 tiny inputs on 2 slots: two halves.
        let packs = plan(
            &[1300; 1000],
            InputsPerTask::Auto,
            &TrainerRate::MEASURED,
            2,
        );
        assert_eq!(packs, vec![0..500, 500..1000]);
        // Fewer inputs than slots: one each.
        assert_eq!(plan(&[10; 3], InputsPerTask::Auto, &RATE, 8).len(), 3);
    }

    #[test]
    fn auto_gives_a_long_input_its_own_pack() {
        // 100 MB = 100 s: alone, and the small ones around it are packed together.
        let sizes = [1_000, 1_000, 100_000_000, 1_000, 1_000];
        let packs = plan(&sizes, InputsPerTask::Auto, &RATE, 1);
        assert_eq!(packs, vec![0..2, 2..3, 3..5]);
    }
}
