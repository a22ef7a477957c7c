//! Sweeps: one run over every input × a grid of trainer settings.
//!
//! Owns the grid (from `--grid FLAG=V1,V2` products or a `--grid-file` of settings), random
//! sampling (`--sample K --seed S`), the checks made before anything starts, each setting's
//! canonical trainer flags, and the choice of the best setting per input. It does not own
//! the trainer's rules: [`Grid::check_with_trainer`] asks `trainer --check` about every
//! setting instead of copying them.
//!
//! A setting holds one *token* per swept flag: a value (`--flag=value`), `none` or `off`
//! (the flag is left out, so the trainer's default applies) or `on` (the flag alone, for flags
//! without a value such as `no-bootstrap`). A setting's flags are sorted by name, so the order
//! of `--grid` options does not change a task's identity.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Token that leaves a flag out (the trainer's default applies).
pub const NONE: &str = "none";
/// Token that passes a flag without a value.
pub const ON: &str = "on";
/// Token that leaves a flag without a value out.
pub const OFF: &str = "off";
/// Most settings a grid may have after sampling (a run this size is already large).
pub const MAX_SETTINGS: u64 = 100_000;

/// Trainer flags a grid may not sweep, and why.
const NOT_SWEPT: [(&str, &str); 5] = [
    ("threads", "it does not change the score; give it after --"),
    ("json", "every task would write the same file"),
    ("check", "it is not a model setting"),
    ("help", "it is not a model setting"),
    ("version", "it is not a model setting"),
];

/// The settings of a sweep, in grid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// Swept flag names without their dashes, in grid order (the report's columns).
    pub flags: Vec<String>,
    /// One token per flag for each setting, in grid order.
    pub settings: Vec<Vec<String>>,
}

/// Where a grid comes from, as the command line gives it.
#[derive(Debug, Clone, Default)]
pub struct GridOptions {
    /// `--grid FLAG=V1,V2,...`, in order: the grid is their cartesian product.
    pub axes: Vec<String>,
    /// `--grid-file FILE`: one setting per CSV row or TOML `[[setting]]` table.
    pub file: Option<std::path::PathBuf>,
    /// `--sample K`: draw K settings without replacement.
    pub sample: Option<u64>,
    /// `--seed S` for `--sample` [default: 0].
    pub seed: Option<u64>,
}

fn refuse(message: impl Into<String>) -> Error {
    Error::Grid(message.into())
}

impl GridOptions {
    /// Whether the command line asks for a sweep at all.
    pub fn is_sweep(&self) -> bool {
        !self.axes.is_empty() || self.file.is_some() || self.sample.is_some()
    }

    /// The grid these options describe (sampled when asked), or `None` without a sweep.
    pub fn grid(&self) -> Result<Option<Grid>> {
        if !self.is_sweep() {
            if self.seed.is_some() {
                return Err(refuse("--seed is only used with --sample"));
            }
            return Ok(None);
        }
        let source = match (&self.file, self.axes.is_empty()) {
            (Some(_), false) => {
                return Err(refuse(
                    "give the grid either as --grid options or as --grid-file, not both",
                ));
            }
            (Some(path), true) => Source::List(read_grid_file(path)?),
            (None, false) => Source::Product(parse_axes(&self.axes)?),
            (None, true) => return Err(refuse("--sample needs a grid (--grid or --grid-file)")),
        };
        let total = source.len()?;
        let indices = match self.sample {
            None if total > MAX_SETTINGS => {
                return Err(refuse(format!(
                    "the grid has {total} settings, more than {MAX_SETTINGS}; \
                     draw some with --sample K"
                )));
            }
            None => (0..total).collect(),
            Some(k) => sample_indices(total, k, self.seed.unwrap_or(0))?,
        };
        let grid = source.grid(&indices);
        grid.check_distinct()?;
        Ok(Some(grid))
    }
}

/// A grid before sampling: a product of axes, or a list of settings.
enum Source {
    Product(Vec<(String, Vec<String>)>),
    List(Grid),
}

impl Source {
    fn len(&self) -> Result<u64> {
        match self {
            Source::List(g) => Ok(g.settings.len() as u64),
            Source::Product(axes) => axes
                .iter()
                .try_fold(1u64, |n, (_, values)| n.checked_mul(values.len() as u64))
                .ok_or_else(|| refuse("the grid's product of values is too large to count")),
        }
    }

    /// The settings at `indices` (ascending), in grid order: in a product the first flag
    /// varies slowest, as in `itertools.product`.
    fn grid(self, indices: &[u64]) -> Grid {
        match self {
            Source::List(g) => Grid {
                settings: indices
                    .iter()
                    .map(|&i| g.settings[i as usize].clone())
                    .collect(),
                flags: g.flags,
            },
            Source::Product(axes) => {
                let settings = indices
                    .iter()
                    .map(|&i| {
                        let mut rest = i;
                        let mut tokens = vec![String::new(); axes.len()];
                        for (slot, (_, values)) in tokens.iter_mut().zip(&axes).rev() {
                            let n = values.len() as u64;
                            *slot = values[(rest % n) as usize].clone();
                            rest /= n;
                        }
                        tokens
                    })
                    .collect();
                Grid {
                    flags: axes.into_iter().map(|(flag, _)| flag).collect(),
                    settings,
                }
            }
        }
    }
}

/// Checks a swept flag's name: the trainer flag without its dashes.
fn check_flag(flag: &str, context: &str) -> Result<()> {
    let well_formed = flag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && flag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        return Err(refuse(format!(
            "{context}: `{flag}` is not a trainer flag name; name the flag without its dashes \
             (e.g. n-estimators)"
        )));
    }
    if let Some((_, why)) = NOT_SWEPT.iter().find(|(name, _)| *name == flag) {
        return Err(refuse(format!(
            "{context}: --{flag} cannot be swept: {why}"
        )));
    }
    Ok(())
}

/// Checks one token of a setting.
fn check_token(token: &str, context: &str) -> Result<()> {
    if token.is_empty() {
        return Err(refuse(format!(
            "{context}: empty value; write `none` to leave the flag out"
        )));
    }
    if token.chars().any(char::is_control) {
        return Err(refuse(format!(
            "{context}: value `{}` contains a control character",
            token.escape_debug()
        )));
    }
    Ok(())
}

/// Parses `--grid FLAG=V1,V2,...` options into axes.
fn parse_axes(specs: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for spec in specs {
        let context = format!("--grid {spec}");
        let Some((flag, list)) = spec.split_once('=') else {
            return Err(refuse(format!(
                "{context}: expected FLAG=VALUE,VALUE,... (e.g. --grid n-estimators=10,50)"
            )));
        };
        check_flag(flag, &context)?;
        if axes.iter().any(|(f, _)| f == flag) {
            return Err(refuse(format!(
                "{context}: --{flag} is swept twice; list all its values in one --grid"
            )));
        }
        if list.trim().is_empty() {
            return Err(refuse(format!(
                "{context}: no values, so the grid is empty; list at least one value \
                 (`none` leaves the flag out)"
            )));
        }
        let values: Vec<String> = list.split(',').map(|v| v.trim().to_owned()).collect();
        let mut seen = BTreeSet::new();
        for v in &values {
            check_token(v, &context)?;
            if !seen.insert(v) {
                return Err(refuse(format!("{context}: value `{v}` is listed twice")));
            }
        }
        axes.push((flag.to_owned(), values));
    }
    Ok(axes)
}

/// Reads a grid file: `.toml` as `[[setting]]` tables, anything else as CSV.
fn read_grid_file(path: &Path) -> Result<Grid> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read grid file", path, e))?;
    let grid = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        parse_toml_grid(&text, path)?
    } else {
        parse_csv_grid(&text, path)?
    };
    if grid.settings.is_empty() {
        return Err(refuse(format!(
            "grid file `{}` has no settings, so the grid is empty",
            path.display()
        )));
    }
    Ok(grid)
}

/// A CSV grid: a header of flag names, then one setting per row; an empty cell is `none`.
fn parse_csv_grid(text: &str, path: &Path) -> Result<Grid> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let at = |line: u64| format!("grid file `{}` line {line}", path.display());
    let headers = reader
        .headers()
        .map_err(|e| refuse(format!("{}: {e}", at(1))))?
        .clone();
    let mut flags = Vec::new();
    for (col, name) in headers.iter().enumerate() {
        let name = name.trim();
        check_flag(name, &format!("{} column {}", at(1), col + 1))?;
        if flags.iter().any(|f| f == name) {
            return Err(refuse(format!(
                "{} column {}: --{name} appears twice in the header",
                at(1),
                col + 1
            )));
        }
        flags.push(name.to_owned());
    }
    let mut settings = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            refuse(format!("{}: {e}", at(line)))
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let mut tokens = Vec::with_capacity(flags.len());
        for (col, cell) in record.iter().enumerate() {
            let cell = cell.trim();
            let token = if cell.is_empty() { NONE } else { cell };
            check_token(token, &format!("{} column {}", at(line), col + 1))?;
            tokens.push(token.to_owned());
        }
        settings.push(tokens);
    }
    Ok(Grid { flags, settings })
}

/// A TOML grid: `[[setting]]` tables whose keys are flag names. A key a table leaves out is
/// `none`; `true`/`false` are `on`/`off`; numbers keep their TOML spelling (`1.0` stays a
/// fraction, `1` a count).
fn parse_toml_grid(text: &str, path: &Path) -> Result<Grid> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        setting: Vec<toml::Table>,
    }
    let at = format!("grid file `{}`", path.display());
    let file: File = toml::from_str(text).map_err(|e| {
        refuse(format!(
            "{at}: {} (expected [[setting]] tables of flag = value)",
            e.message()
        ))
    })?;
    let mut flags: Vec<String> = Vec::new();
    for table in &file.setting {
        for key in table.keys() {
            if !flags.contains(key) {
                check_flag(key, &at)?;
                flags.push(key.clone());
            }
        }
    }
    let mut settings = Vec::new();
    for (i, table) in file.setting.iter().enumerate() {
        let context = format!("{at} setting {}", i + 1);
        let tokens = flags
            .iter()
            .map(|flag| {
                let token = match table.get(flag) {
                    None => NONE.to_owned(),
                    Some(toml::Value::String(s)) => s.clone(),
                    Some(toml::Value::Boolean(b)) => (if *b { ON } else { OFF }).to_owned(),
                    Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_))) => v.to_string(),
                    Some(other) => {
                        return Err(refuse(format!(
                            "{context}: {flag} = {other} is not a string, number or boolean"
                        )));
                    }
                };
                check_token(&token, &format!("{context} ({flag})"))?;
                Ok(token)
            })
            .collect::<Result<Vec<_>>>()?;
        settings.push(tokens);
    }
    Ok(Grid { flags, settings })
}

/// SplitMix64: a tiny, fixed generator, so a sample never depends on a library's version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (rejection sampling: no modulo bias).
    fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let x = self.next();
            if x < zone {
                return x % bound;
            }
        }
    }
}

/// `k` distinct indices of `0..total`, ascending: the first `k` positions of a seeded
/// Fisher-Yates shuffle, done sparsely so a huge product is never materialized. A larger `k`
/// with the same seed draws a superset, so growing a sample reuses every finished task.
fn sample_indices(total: u64, k: u64, seed: u64) -> Result<Vec<u64>> {
    if k == 0 {
        return Err(refuse("--sample 0 leaves the grid empty; draw at least 1"));
    }
    if k > total {
        return Err(refuse(format!(
            "--sample {k} is more than the grid's {total} settings; use at most {total}"
        )));
    }
    if k > MAX_SETTINGS {
        return Err(refuse(format!(
            "--sample {k} is more than {MAX_SETTINGS} settings"
        )));
    }
    let mut rng = SplitMix64(seed);
    let mut swapped: HashMap<u64, u64> = HashMap::new();
    let mut chosen = Vec::with_capacity(k as usize);
    for i in 0..k {
        let j = i + rng.below(total - i);
        let at_j = swapped.get(&j).copied().unwrap_or(j);
        let at_i = swapped.get(&i).copied().unwrap_or(i);
        swapped.insert(j, at_i);
        chosen.push(at_j);
    }
    chosen.sort_unstable();
    Ok(chosen)
}

impl Grid {
    /// A cartesian product of `FLAG=V1,V2,...` specs, as `--grid` gives them.
    pub fn product(specs: &[&str]) -> Result<Self> {
        let options = GridOptions {
            axes: specs.iter().map(|s| (*s).to_owned()).collect(),
            ..GridOptions::default()
        };
        Ok(options.grid()?.expect("a product is a sweep"))
    }

    /// Number of settings.
    pub fn len(&self) -> usize {
        self.settings.len()
    }

    /// Whether the grid has no settings (never true for a grid that passed its checks).
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }

    /// Setting `i`'s trainer flags, sorted by flag name: `--flag=value`, `--flag` for `on`,
    /// nothing for `none`/`off`. These are part of the task id.
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut pairs: Vec<(&str, &str)> = self
            .flags
            .iter()
            .zip(&self.settings[i])
            .map(|(f, t)| (f.as_str(), t.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs
            .into_iter()
            .filter_map(|(flag, token)| match token {
                NONE | OFF => None,
                ON => Some(format!("--{flag}")),
                value => Some(format!("--{flag}={value}")),
            })
            .collect()
    }

    /// Setting `i` as people read it: `n-estimators=10 max-depth=none`.
    pub fn label(&self, i: usize) -> String {
        self.flags
            .iter()
            .zip(&self.settings[i])
            .map(|(f, t)| format!("{f}={t}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Setting `i` as a map from flag to token (for report.json).
    pub fn setting_map(&self, i: usize) -> BTreeMap<String, String> {
        self.flags
            .iter()
            .cloned()
            .zip(self.settings[i].iter().cloned())
            .collect()
    }

    /// Two settings that mean the same flags (`none` and `off` both leave a flag out; a grid
    /// file may repeat a row) would be one task reported twice.
    fn check_distinct(&self) -> Result<()> {
        let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
        for i in 0..self.len() {
            if let Some(first) = seen.insert(self.args(i), i) {
                return Err(refuse(format!(
                    "settings {} ({}) and {} ({}) run the same trainer flags; list each \
                     setting once",
                    first + 1,
                    self.label(first),
                    i + 1,
                    self.label(i)
                )));
            }
        }
        Ok(())
    }

    /// Refuses a flag given both fixed (after `--`) and in the grid.
    pub fn check_fixed(&self, fixed: &[String]) -> Result<()> {
        for arg in fixed {
            let Some(name) = arg.strip_prefix("--") else {
                continue;
            };
            let name = name.split_once('=').map_or(name, |(n, _)| n);
            if self.flags.iter().any(|f| f == name) {
                return Err(refuse(format!(
                    "--{name} is given both as a fixed trainer flag (after --) and in the \
                     grid; keep one"
                )));
            }
        }
        Ok(())
    }

    /// Asks the trainer about every setting (`trainer --check FIXED SETTING`), in grid order,
    /// and stops at the first it refuses. Blocking: one short process per setting.
    pub fn check_with_trainer(&self, trainer: &Path, fixed: &[String]) -> Result<()> {
        for i in 0..self.len() {
            let output = Command::new(trainer)
                .arg("--check")
                .args(fixed)
                .args(self.args(i))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| Error::io("run", trainer, e))?;
            if output.status.success() {
                continue;
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let line = stderr.lines().find(|l| !l.trim().is_empty()).map_or_else(
                || format!("it exited with {}", output.status),
                |l| {
                    let l = l.trim();
                    l.strip_prefix("trainer: error: ").unwrap_or(l).to_owned()
                },
            );
            return Err(refuse(format!(
                "setting {} of {} ({}): the trainer refuses it: {line}",
                i + 1,
                self.len(),
                self.label(i)
            )));
        }
        Ok(())
    }
}

/// The best setting for one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Best {
    /// Input file name.
    pub input: String,
    /// The best setting's tokens by flag, or `None` when no setting scored.
    pub setting: Option<BTreeMap<String, String>>,
    /// The setting as people read it (`n-estimators=10 max-depth=none`).
    pub label: Option<String>,
    /// Its score, exactly as the trainer printed it.
    pub score: Option<String>,
    /// Its task.
    pub task_id: Option<String>,
}

/// One scored cell of a sweep: an input, a setting (grid index) and its task's score.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    /// Input file name.
    pub input: &'a str,
    /// Grid index of the setting.
    pub setting: usize,
    /// The task.
    pub task_id: &'a str,
    /// The score as printed, if the task succeeded.
    pub score: Option<&'a str>,
}

/// Per input (in the order cells first name them), the setting with the highest score; a tie
/// goes to the setting first in grid order.
pub fn best_per_input(grid: &Grid, cells: &[Cell<'_>]) -> Vec<Best> {
    let mut order: Vec<&str> = Vec::new();
    let mut best: HashMap<&str, (f64, &Cell<'_>)> = HashMap::new();
    for cell in cells {
        if !order.contains(&cell.input) {
            order.push(cell.input);
        }
        let Some(score) = cell.score.and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        let better = match best.get(cell.input) {
            None => true,
            Some((s, b)) => score > *s || (score == *s && cell.setting < b.setting),
        };
        if better {
            best.insert(cell.input, (score, cell));
        }
    }
    order
        .into_iter()
        .map(|input| match best.get(input) {
            Some((_, c)) => Best {
                input: input.to_owned(),
                setting: Some(grid.setting_map(c.setting)),
                label: Some(grid.label(c.setting)),
                score: c.score.map(str::to_owned),
                task_id: Some(c.task_id.to_owned()),
            },
            None => Best {
                input: input.to_owned(),
                setting: None,
                label: None,
                score: None,
                task_id: None,
            },
        })
        .collect()
}

/// For one swept flag: the mean score of every scored cell with each value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagMeans {
    /// The flag, without dashes.
    pub flag: String,
    /// One entry per value, in grid order of first appearance.
    pub values: Vec<ValueMean>,
}

/// The mean score of one value of a swept flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueMean {
    /// The token (`10`, `none`, `on`).
    pub value: String,
    /// Mean score over the scored cells with this value; `None` when none scored.
    pub mean: Option<f64>,
    /// How many (input, setting) cells with this value scored.
    pub scored: usize,
}

/// Per swept flag, the mean score across inputs (and the other flags' values) per value.
pub fn means_per_flag(grid: &Grid, cells: &[Cell<'_>]) -> Vec<FlagMeans> {
    grid.flags
        .iter()
        .enumerate()
        .map(|(f, flag)| {
            let mut values: Vec<(String, f64, usize)> = Vec::new();
            for setting in &grid.settings {
                if !values.iter().any(|(t, _, _)| *t == setting[f]) {
                    values.push((setting[f].clone(), 0.0, 0));
                }
            }
            for cell in cells {
                let Some(score) = cell.score.and_then(|s| s.parse::<f64>().ok()) else {
                    continue;
                };
                let token = &grid.settings[cell.setting][f];
                if let Some(v) = values.iter_mut().find(|(t, _, _)| t == token) {
                    v.1 += score;
                    v.2 += 1;
                }
            }
            FlagMeans {
                flag: flag.clone(),
                values: values
                    .into_iter()
                    .map(|(value, sum, scored)| ValueMean {
                        value,
                        mean: (scored > 0).then(|| sum / scored as f64),
                        scored,
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
