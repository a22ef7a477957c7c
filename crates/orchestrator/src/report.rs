//! The run report: `report.csv`, `report.json`, `report.html` (an inline SVG chart of the
//! scores) in the run directory, and the summary table printed at the end of a run.
//!
//! Built only from the manifest and the task directories, so `run`, `resume` and a report
//! regenerated later all agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::kit::{write_atomic, write_atomic_with};
use crate::backend::{OUTPUT_FILE, STDERR_FILE};
use crate::manifest::{Manifest, TaskRecord, TaskState};
use crate::sweep::{self, Best, FlagMeans, Grid};
use crate::text::{csv_cell, one_line};
use crate::{Error, Result};

/// The prefix of the trainer's output line (`The model score: 0.95`).
pub const SCORE_PREFIX: &str = "The model score: ";
/// At most this many lines of a task's stderr go into the report.
const STDERR_TAIL_LINES: usize = 5;
/// At most this many bytes of a task's stderr go into the report.
const STDERR_TAIL_BYTES: usize = 1000;

/// One report line: one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Input file name.
    pub input: String,
    /// Task that trained on it.
    pub task_id: String,
    /// `succeeded`, `failed`, `timed_out`, `cancelled`, `not_run`, `pending`, `running`.
    pub status: String,
    /// The score exactly as the trainer printed it.
    pub score: Option<String>,
    /// Exit code of the last attempt.
    pub exit_code: Option<i32>,
    /// Attempts over all sessions.
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub wall_seconds: Option<f64>,
    /// The last lines of the trainer's stderr.
    pub stderr_tail: String,
    /// Engine-side failure reason, when there is one.
    pub failure: Option<String>,
    /// Engine requeues (lost or preempted nodes), also counted in `attempts`.
    pub requeues: u32,
    /// In a sweep: the setting, as a token per swept flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<BTreeMap<String, String>>,
    /// In a sweep: the setting's index in grid order.
    #[serde(skip)]
    pub setting_index: Option<usize>,
}

impl Row {
    /// The score as a number.
    pub fn score_value(&self) -> Option<f64> {
        self.score.as_deref().and_then(|s| s.parse().ok())
    }
}

/// Totals over a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Inputs in the run.
    pub inputs: usize,
    /// Settings per input, in a sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<usize>,
    /// Distinct tasks (inputs with equal content share one).
    pub tasks: usize,
    /// Rows (inputs; in a sweep, input x setting) whose task succeeded.
    pub succeeded: usize,
    /// Rows whose task failed, timed out, was cancelled or never ran.
    pub failed: usize,
    /// Rows whose task has not finished (an interrupted run).
    pub unfinished: usize,
    /// Best scoring row (`input`, or `input · setting` in a sweep) and its score.
    pub best: Option<(String, String)>,
    /// Worst scoring row and its score.
    pub worst: Option<(String, String)>,
    /// Attempts over all tasks.
    pub attempts: u32,
    /// Sum of the tasks' last-attempt wall times.
    pub task_seconds: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Run id.
    pub run_id: String,
    /// Backend name.
    pub backend: String,
    /// SHA-256 of the trainer executable.
    pub trainer_digest: String,
    /// The user's trainer flags.
    pub trainer_args: Vec<String>,
    /// One row per input (in a sweep: per input and setting), inputs in discovery order,
    /// then settings in grid order.
    pub rows: Vec<Row>,
    /// Totals.
    pub summary: Summary,
    /// In a sweep: the grid (swept flags and settings, in grid order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
    /// In a sweep: per input, the best setting and its score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<Vec<Best>>,
    /// In a sweep: per swept flag, the mean score per value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub means: Option<Vec<FlagMeans>>,
}

/// Reads the score from the trainer's output (`The model score: X`).
pub fn parse_score(output: &str) -> Option<String> {
    let value = output.trim_end().strip_prefix(SCORE_PREFIX)?.trim();
    value.parse::<f64>().ok().map(|_| value.to_owned())
}

/// The last few lines of a task's stderr.
fn stderr_tail(task_dir: &Path) -> String {
    let Ok(bytes) = std::fs::read(task_dir.join(STDERR_FILE)) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    if tail.len() <= STDERR_TAIL_BYTES {
        return tail;
    }
    let mut start = tail.len() - STDERR_TAIL_BYTES;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &tail[start..])
}

/// Builds the report from the manifest and the task directories under `run_dir`.
pub fn build(manifest: &Manifest, run_dir: &Path) -> Report {
    let index = manifest.task_index();
    let grid = manifest.sweep.as_ref();
    // A sweep's task of (input content, setting flags).
    let by_setting: HashMap<(&str, &[String]), usize> = manifest
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.input_digest.as_str(), t.setting_args.as_slice()), i))
        .collect();
    let settings: Vec<Option<(usize, Vec<String>)>> = match grid {
        Some(g) => (0..g.len()).map(|i| Some((i, g.args(i)))).collect(),
        None => vec![None],
    };
    let mut rows = Vec::new();
    for input in &manifest.inputs {
        for setting in &settings {
            let task = match setting {
                None => index.get(&input.task_id),
                Some((_, args)) => by_setting.get(&(input.digest.as_str(), args.as_slice())),
            };
            let Some(task) = task.map(|&i| &manifest.tasks[i]) else {
                continue;
            };
            let mut row = task_row(&input.name, task, run_dir);
            if let (Some(g), Some((i, _))) = (grid, setting) {
                row.setting = Some(g.setting_map(*i));
                row.setting_index = Some(*i);
            }
            rows.push(row);
        }
    }
    let summary = summarize(&rows, manifest);
    let (best, means) = match grid {
        Some(g) => {
            let cells = cells(&rows);
            (
                Some(sweep::best_per_input(g, &cells)),
                Some(sweep::means_per_flag(g, &cells)),
            )
        }
        None => (None, None),
    };
    Report {
        run_id: manifest.run_id.clone(),
        backend: manifest.backend.to_string(),
        trainer_digest: manifest.trainer.digest.clone(),
        trainer_args: manifest.trainer_args.clone(),
        rows,
        summary,
        grid: grid.cloned(),
        best,
        means,
    }
}

/// A report row for one input's task (without its setting).
fn task_row(input: &str, task: &TaskRecord, run_dir: &Path) -> Row {
    let task_dir = run_dir.join("tasks").join(&task.task_id);
    let score = (task.state == TaskState::Succeeded)
        .then(|| std::fs::read_to_string(task_dir.join(OUTPUT_FILE)).ok())
        .flatten()
        .and_then(|out| parse_score(&out));
    Row {
        input: input.to_owned(),
        task_id: task.task_id.clone(),
        status: task.state.as_str().to_owned(),
        score,
        exit_code: task.exit_code,
        attempts: task.attempts,
        wall_seconds: task.wall_seconds,
        stderr_tail: stderr_tail(&task_dir),
        failure: task.failure.clone(),
        requeues: task.requeues,
        setting: None,
        setting_index: None,
    }
}

/// A sweep's rows as cells for [`sweep::best_per_input`] and [`sweep::means_per_flag`].
fn cells(rows: &[Row]) -> Vec<sweep::Cell<'_>> {
    rows.iter()
        .filter_map(|r| {
            Some(sweep::Cell {
                input: &r.input,
                setting: r.setting_index?,
                task_id: &r.task_id,
                score: r.score.as_deref(),
            })
        })
        .collect()
}

fn summarize(rows: &[Row], manifest: &Manifest) -> Summary {
    let grid = manifest.sweep.as_ref();
    let succeeded = rows.iter().filter(|r| r.status == "succeeded").count();
    let unfinished = rows
        .iter()
        .filter(|r| r.status == "pending" || r.status == "running")
        .count();
    let mut scored: Vec<(&Row, f64)> = rows
        .iter()
        .filter_map(|r| r.score_value().map(|s| (r, s)))
        .collect();
    // Stable sort: among equal scores the first input in discovery order wins both ends.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let pick = |r: Option<&(&Row, f64)>| {
        r.map(|(row, _)| (row_label(row, grid), row.score.clone().unwrap_or_default()))
    };
    let worst = scored
        .last()
        .map(|l| l.1)
        .and_then(|min| scored.iter().find(|(_, s)| *s == min));
    Summary {
        inputs: rows.iter().map(|r| &r.input).collect::<BTreeSet<_>>().len(),
        settings: grid.map(Grid::len),
        tasks: manifest.tasks.len(),
        succeeded,
        failed: rows.len() - succeeded - unfinished,
        unfinished,
        best: pick(scored.first()),
        worst: pick(worst),
        attempts: manifest.tasks.iter().map(|t| t.attempts).sum(),
        task_seconds: manifest.tasks.iter().filter_map(|t| t.wall_seconds).sum(),
    }
}

/// Paths of the files [`write`] produces.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.csv`.
    pub csv: PathBuf,
    /// `report.json`.
    pub json: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `best.csv`, for a sweep.
    pub best: Option<PathBuf>,
}

/// Writes `report.csv`, `report.json` and `report.html` into `run_dir` (and `best.csv` for a
/// sweep), each atomically.
pub fn write(report: &Report, run_dir: &Path) -> Result<Written> {
    let written = Written {
        csv: run_dir.join("report.csv"),
        json: run_dir.join("report.json"),
        html: run_dir.join("report.html"),
        best: report.best.as_ref().map(|_| run_dir.join("best.csv")),
    };
    write_atomic(&written.csv, &to_csv(report, &written.csv)?)?;
    // Streamed into the file: at 100,000 rows the text is tens of MB.
    write_atomic_with(&written.json, |w| {
        serde_json::to_writer_pretty(w, report).map_err(std::io::Error::other)
    })?;
    write_atomic(&written.html, to_html(report).as_bytes())?;
    if let (Some(path), Some(best), Some(grid)) = (&written.best, &report.best, &report.grid) {
        write_atomic(path, &best_csv(best, grid, path)?)?;
    }
    Ok(written)
}

/// The swept flags' tokens for a row, in grid order (nothing outside a sweep).
fn setting_cells<'a>(
    grid: Option<&'a Grid>,
    setting: Option<&'a BTreeMap<String, String>>,
) -> Vec<&'a str> {
    grid.map(|g| {
        g.flags
            .iter()
            .map(|f| setting.and_then(|s| s.get(f)).map_or("", String::as_str))
            .collect()
    })
    .unwrap_or_default()
}

fn csv_error(path: &Path) -> impl Fn(csv::Error) -> Error + '_ {
    move |e| Error::io("write", path, std::io::Error::other(e))
}

fn csv_bytes(w: csv::Writer<Vec<u8>>, path: &Path) -> Result<Vec<u8>> {
    w.into_inner()
        .map_err(|e| Error::io("write", path, std::io::Error::other(e.to_string())))
}

fn to_csv(report: &Report, path: &Path) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io_err = csv_error(path);
    let grid = report.grid.as_ref();
    let swept: Vec<&str> = grid
        .map(|g| g.flags.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut header = vec!["input"];
    header.extend(&swept);
    header.extend([
        "task_id",
        "status",
        "score",
        "exit_code",
        "attempts",
        "wall_seconds",
        "stderr_tail",
        "failure",
        "requeues",
    ]);
    w.write_record(&header).map_err(&io_err)?;
    for r in &report.rows {
        let mut record = vec![csv_cell(&r.input).into_owned()];
        record.extend(
            setting_cells(grid, r.setting.as_ref())
                .into_iter()
                .map(|c| csv_cell(c).into_owned()),
        );
        record.extend([
            r.task_id.clone(),
            r.status.clone(),
            r.score.clone().unwrap_or_default(),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.attempts.to_string(),
            r.wall_seconds
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
            csv_cell(&r.stderr_tail).into_owned(),
            csv_cell(r.failure.as_deref().unwrap_or("")).into_owned(),
            r.requeues.to_string(),
        ]);
        w.write_record(&record).map_err(&io_err)?;
    }
    csv_bytes(w, path)
}

/// `best.csv`: per input, the best setting (a column per swept flag) and its score; empty
/// when no setting of that input scored.
fn best_csv(best: &[Best], grid: &Grid, path: &Path) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io_err = csv_error(path);
    let mut header = vec!["input"];
    header.extend(grid.flags.iter().map(String::as_str));
    header.extend(["score", "task_id"]);
    w.write_record(&header).map_err(&io_err)?;
    for b in best {
        let mut record = vec![csv_cell(&b.input)];
        record.extend(
            setting_cells(Some(grid), b.setting.as_ref())
                .into_iter()
                .map(csv_cell),
        );
        record.push(b.score.as_deref().unwrap_or("").into());
        record.push(b.task_id.as_deref().unwrap_or("").into());
        w.write_record(record.iter().map(|c| c.as_bytes()))
            .map_err(&io_err)?;
    }
    csv_bytes(w, path)
}

/// Escapes text for HTML and SVG.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar's name in a chart, right-aligned to end at `x`.
fn row_name(svg: &mut String, x: usize, y: usize, name: &str) {
    let _ = write!(
        svg,
        r#"<text x="{x}" y="{y}" font-size="12" text-anchor="end">{}</text>"#,
        esc(name)
    );
}

/// Rows up to which report.html charts every row and has the full table.
const HTML_ALL_ROWS_MAX: usize = 200;
/// Scored rows from which report.html shows the histogram of scores.
const HISTOGRAM_MIN_SCORES: usize = 20;
/// Bins of the histogram of scores.
const HISTOGRAM_BINS: usize = 20;
/// Best and worst rows charted when there are too many to chart all.
const BEST_WORST: usize = 20;
/// Failed or unfinished rows listed one by one in report.html.
const FAILURES_LISTED_MAX: usize = 200;
/// Distinct failure causes counted in report.html.
const CAUSES_MAX: usize = 50;
/// Inputs listed in report.html's best setting per input.
const BEST_SETTINGS_MAX: usize = 200;

/// A self-contained page (no scripts, no external resources) whose size does not grow with
/// the run: the summary; a sweep's best setting per input and means per flag; the scores (a
/// bar per row for a small run; for a large one a histogram and the best and worst rows);
/// every failure (one by one up to a bound, and all of them counted by cause); the full
/// table for a small run. report.csv and report.json keep every row.
pub fn to_html(report: &Report) -> String {
    let labels: Vec<String> = report
        .rows
        .iter()
        .map(|r| row_label(r, report.grid.as_ref()))
        .collect();
    let mut body = summary_html(report);
    body.push_str(&sweep_html(report));
    body.push_str(&scores_html(report, &labels));
    body.push_str(&failures_html(report, &labels));
    body.push_str(&tasks_html(report, &labels));
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Run {run_id}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-size: 13px; }}
tr.bad td {{ background: #fdecea; }} pre {{ margin: 0; white-space: pre-wrap; max-width: 40em; }}
</style></head><body>
<h1>Run <code>{run_id}</code></h1>
{body}</body></html>
"#,
        run_id = esc(&report.run_id),
    )
}

/// The totals paragraph.
fn summary_html(report: &Report) -> String {
    let s = &report.summary;
    let pick = |p: &Option<(String, String)>| {
        p.as_ref()
            .map(|(n, v)| format!("{} ({v})", esc(n)))
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "<p>Backend: {backend}. Inputs: {inputs} ({tasks} tasks). Succeeded: {succeeded}. \
         Failed: {failed}. Unfinished: {unfinished}.\nBest: {best}. Worst: {worst}. Attempts: \
         {attempts}. Task time: {task_seconds:.1} s. Every row is in report.csv and \
         report.json.</p>\n",
        backend = esc(&report.backend),
        inputs = s.inputs,
        tasks = s.tasks,
        succeeded = s.succeeded,
        failed = s.failed,
        unfinished = s.unfinished,
        best = pick(&s.best),
        worst = pick(&s.worst),
        attempts = s.attempts,
        task_seconds = s.task_seconds,
    )
}

/// The scores: a bar per row when there are few, otherwise the histogram and the best and
/// worst rows.
fn scores_html(report: &Report, labels: &[String]) -> String {
    let mut scored: Vec<(usize, f64)> = report
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.score_value().filter(|v| !v.is_nan()).map(|v| (i, v)))
        .collect();
    let mut out = String::new();
    if scored.len() >= HISTOGRAM_MIN_SCORES {
        let values: Vec<f64> = scored.iter().map(|&(_, v)| v).collect();
        let _ = writeln!(
            out,
            "<h2>Histogram of scores</h2>\n<p>{} scored rows.</p>\n{}",
            values.len(),
            histogram_svg(&values)
        );
    }
    if report.rows.len() <= HTML_ALL_ROWS_MAX {
        let rows: Vec<usize> = (0..report.rows.len()).collect();
        let _ = writeln!(
            out,
            "<h2>Score per input</h2>\n{}",
            bars_svg(report, labels, &rows)
        );
        return out;
    }
    // Stable: among equal scores the row first in report order comes first.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let best: Vec<usize> = scored.iter().take(BEST_WORST).map(|&(i, _)| i).collect();
    let worst: Vec<usize> = scored
        .iter()
        .rev()
        .take(BEST_WORST)
        .map(|&(i, _)| i)
        .collect();
    let _ = writeln!(
        out,
        "<h2>Best {} of {} scored</h2>\n{}\n<h2>Worst {}</h2>\n{}",
        best.len(),
        scored.len(),
        bars_svg(report, labels, &best),
        worst.len(),
        bars_svg(report, labels, &worst)
    );
    out
}

/// A histogram of `values` (finite or infinite, at least one) in [`HISTOGRAM_BINS`] equal
/// bins from the lowest to the highest, as an inline SVG with a count over each bar.
fn histogram_svg(values: &[f64]) -> String {
    const W: usize = 640;
    const H: usize = 180;
    const PAD: usize = 30;
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 0.0) };
    let bins = if hi > lo { HISTOGRAM_BINS } else { 1 };
    let mut counts = vec![0usize; bins];
    for &v in values {
        let at = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
        let bin = ((at.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    let bar_w = W / bins;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="Histogram of scores">"#,
        w = W + 2 * PAD,
        h = H + 2 * PAD
    );
    for (b, &n) in counts.iter().enumerate() {
        let bh = n * H / most;
        let x = PAD + b * bar_w;
        let from = lo + (hi - lo) * b as f64 / bins as f64;
        let to = lo + (hi - lo) * (b + 1) as f64 / bins as f64;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{y}" width="{w}" height="{bh}" fill="#4c78a8"><title>{from:.4} to {to:.4}: {n}</title></rect><text x="{tx}" y="{ty}" font-size="10" text-anchor="middle">{n}</text>"##,
            y = PAD + H - bh,
            w = bar_w.saturating_sub(2).max(1),
            tx = x + bar_w / 2,
            ty = PAD + H - bh - 3,
        );
    }
    for (x, v) in [(PAD, lo), (PAD + W / 2, (lo + hi) / 2.0), (PAD + W, hi)] {
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{y}" font-size="11" text-anchor="middle">{v:.4}</text>"#,
            y = PAD + H + 16
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A bar per row of `rows` (indices into the report): the score on a 0..1 axis, rows
/// without a score marked with their status in red.
fn bars_svg(report: &Report, labels: &[String], rows: &[usize]) -> String {
    const ROW_H: usize = 22;
    const BAR_W: usize = 520;
    let longest = rows
        .iter()
        .map(|&i| labels[i].chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest * 7 + 16).clamp(260, 640);
    let height = rows.len() * ROW_H + 40;
    let width = label_w + BAR_W + 200;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="Score per input">"#
    );
    for tick in 0..=4 {
        let x = label_w + BAR_W * tick / 4;
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="0" x2="{x}" y2="{y}" stroke="#ddd"/><text x="{x}" y="{t}" font-size="11" text-anchor="middle">{v:.2}</text>"##,
            y = height - 30,
            t = height - 15,
            v = tick as f64 / 4.0
        );
    }
    for (k, &i) in rows.iter().enumerate() {
        let (r, y) = (&report.rows[i], k * ROW_H);
        row_name(&mut svg, label_w - 8, y + 15, &labels[i]);
        let Some(score) = r.score_value() else {
            let _ = write!(
                svg,
                r##"<text x="{tx}" y="{ty}" font-size="11" fill="#c0392b">{status}</text>"##,
                tx = label_w + 4,
                ty = y + 15,
                status = esc(&r.status)
            );
            continue;
        };
        let w = (score.clamp(0.0, 1.0) * BAR_W as f64).round() as usize;
        let _ = write!(
            svg,
            r##"<rect x="{label_w}" y="{ry}" width="{w}" height="{h}" fill="#4c78a8"><title>{name}: {s}</title></rect><text x="{tx}" y="{ty}" font-size="11">{s}</text>"##,
            ry = y + 3,
            h = ROW_H - 6,
            name = esc(&labels[i]),
            s = esc(r.score.as_deref().unwrap_or("")),
            tx = label_w + w + 4,
            ty = y + 15
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A row's failure in a few words: the engine's reason, else the last line of stderr, else
/// the exit code.
fn cause(r: &Row) -> String {
    if let Some(f) = &r.failure {
        return f.clone();
    }
    if let Some(line) = r.stderr_tail.lines().last() {
        return line.to_owned();
    }
    match r.exit_code {
        Some(code) => format!("exit code {code}"),
        None => r.status.clone(),
    }
}

/// Every row that did not succeed: counted by cause, and listed one by one up to
/// [`FAILURES_LISTED_MAX`]. Nothing when every row succeeded.
fn failures_html(report: &Report, labels: &[String]) -> String {
    let failed: Vec<usize> = (0..report.rows.len())
        .filter(|&i| report.rows[i].status != "succeeded")
        .collect();
    if failed.is_empty() {
        return String::new();
    }
    let mut causes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for &i in &failed {
        causes.entry(cause(&report.rows[i])).or_insert((0, i)).0 += 1;
    }
    let mut by_count: Vec<(&String, &(usize, usize))> = causes.iter().collect();
    by_count.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    let mut out = format!(
        "<h2>Failures and unfinished tasks ({})</h2>\n<table><tr><th>rows</th><th>cause</th>\
         <th>first</th></tr>\n",
        failed.len()
    );
    for &(text, &(n, first)) in by_count.iter().take(CAUSES_MAX) {
        let _ = writeln!(
            out,
            "<tr class=\"bad\"><td>{n}</td><td><pre>{}</pre></td><td>{}</td></tr>",
            esc(text),
            esc(&labels[first])
        );
    }
    out.push_str("</table>\n");
    if by_count.len() > CAUSES_MAX {
        let rest: usize = by_count[CAUSES_MAX..].iter().map(|(_, c)| c.0).sum();
        let _ = writeln!(
            out,
            "<p>{} other causes, {rest} rows: see report.csv.</p>",
            by_count.len() - CAUSES_MAX
        );
    }
    if report.rows.len() > HTML_ALL_ROWS_MAX {
        let shown = &failed[..failed.len().min(FAILURES_LISTED_MAX)];
        out.push_str(&rows_table(report, labels, shown));
        if shown.len() < failed.len() {
            let _ = writeln!(
                out,
                "<p>{} of {} listed; every one is in report.csv.</p>",
                shown.len(),
                failed.len()
            );
        }
    }
    out
}

/// The full table of a small run (a large one's rows are in report.csv).
fn tasks_html(report: &Report, labels: &[String]) -> String {
    if report.rows.len() > HTML_ALL_ROWS_MAX {
        return format!(
            "<p>{} rows: the full table is report.csv (and report.json).</p>\n",
            report.rows.len()
        );
    }
    let rows: Vec<usize> = (0..report.rows.len()).collect();
    format!("<h2>Tasks</h2>\n{}", rows_table(report, labels, &rows))
}

/// A table of `rows` (indices into the report).
fn rows_table(report: &Report, labels: &[String], rows: &[usize]) -> String {
    let mut table = String::from(
        "<table><tr><th>input</th><th>task_id</th><th>status</th><th>score</th>\
         <th>exit_code</th><th>attempts</th><th>wall_seconds</th><th>stderr_tail</th></tr>\n",
    );
    for &i in rows {
        let r = &report.rows[i];
        let _ = writeln!(
            table,
            "<tr class=\"{cls}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(&labels[i]),
            esc(&r.task_id),
            esc(&r.status),
            esc(r.score.as_deref().unwrap_or("")),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.attempts,
            r.wall_seconds
                .map(|w| format!("{w:.2}"))
                .unwrap_or_default(),
            esc(if r.stderr_tail.is_empty() {
                r.failure.as_deref().unwrap_or("")
            } else {
                &r.stderr_tail
            }),
            cls = if r.status == "succeeded" { "ok" } else { "bad" },
        );
    }
    table.push_str("</table>\n");
    table
}

/// A row's name in charts and tables: the input, and in a sweep its setting.
fn row_label(row: &Row, grid: Option<&Grid>) -> String {
    match (grid, row.setting_index) {
        (Some(g), Some(i)) if i < g.len() => format!("{} · {}", row.input, g.label(i)),
        _ => row.input.clone(),
    }
}

/// The sweep sections of report.html: the best setting per input, and for each swept flag a
/// small chart of the mean score per value. Empty outside a sweep.
fn sweep_html(report: &Report) -> String {
    let (Some(grid), Some(best), Some(means)) = (&report.grid, &report.best, &report.means) else {
        return String::new();
    };
    let mut out = format!(
        "<h2>Best setting per input</h2>\n<p>{} settings of {} swept flags; ties go to the \
         setting first in grid order.</p>\n<table><tr><th>input</th>",
        grid.len(),
        grid.flags.len()
    );
    for f in &grid.flags {
        let _ = write!(out, "<th>{}</th>", esc(f));
    }
    out.push_str("<th>score</th></tr>\n");
    for b in best.iter().take(BEST_SETTINGS_MAX) {
        let _ = write!(out, "<tr><td>{}</td>", esc(&b.input));
        for cell in setting_cells(Some(grid), b.setting.as_ref()) {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        let _ = writeln!(
            out,
            "<td>{}</td></tr>",
            esc(b.score.as_deref().unwrap_or("no score"))
        );
    }
    // One axis for every chart, starting a little below the lowest mean (at a multiple of
    // 0.05), so that differences of a point or two are visible and the charts compare.
    let lowest = means
        .iter()
        .flat_map(|m| m.values.iter().filter_map(|v| v.mean))
        .fold(1.0_f64, f64::min);
    let axis_from = (((lowest - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    out.push_str("</table>\n");
    if best.len() > BEST_SETTINGS_MAX {
        let _ = writeln!(
            out,
            "<p>{BEST_SETTINGS_MAX} of {} inputs listed; every one is in best.csv.</p>",
            best.len()
        );
    }
    let _ = writeln!(
        out,
        "<h2>Mean score per value</h2>\n<p>For each swept flag, the mean score of \
         every (input, setting) with that value; bars start at {axis_from:.2} and end at 1.</p>"
    );
    for m in means {
        out.push_str(&flag_chart(m, axis_from));
    }
    out
}

/// One swept flag's chart: a bar per value, the mean score on an `axis_from`..1 axis.
fn flag_chart(m: &FlagMeans, axis_from: f64) -> String {
    const ROW_H: usize = 20;
    const LABEL_W: usize = 120;
    const BAR_W: usize = 300;
    let height = m.values.len() * ROW_H + 8;
    let mut svg = format!(
        r#"<figure><figcaption><code>{flag}</code></figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" role="img" aria-label="Mean score per value of {flag}">"#,
        flag = esc(&m.flag),
        w = LABEL_W + BAR_W + 220,
    );
    for (i, v) in m.values.iter().enumerate() {
        let (token, mean, n) = (&v.value, v.mean, v.scored);
        let y = i * ROW_H;
        row_name(&mut svg, LABEL_W - 8, y + 14, token);
        let (w, text) = match mean {
            Some(v) => (
                ((v.clamp(axis_from, 1.0) - axis_from) / (1.0 - axis_from) * BAR_W as f64).round()
                    as usize,
                format!("{v:.4} (n={n})"),
            ),
            None => (0, "no score".to_owned()),
        };
        let _ = write!(
            svg,
            r##"<rect x="{LABEL_W}" y="{ry}" width="{w}" height="{h}" fill="#72b7b2"/><text x="{tx}" y="{ty}" font-size="11">{text}</text>"##,
            ry = y + 3,
            h = ROW_H - 6,
            tx = LABEL_W + w + 4,
            ty = y + 14,
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

/// Lines of the terminal summary's tables: every row when there are few, only the
/// unsuccessful ones (at most this many) when there are many; a sweep's best settings alike.
const TERMINAL_ROWS_MAX: usize = 40;

/// The summary printed at the end of a run (and by `status`): the rows (see
/// [`TERMINAL_ROWS_MAX`]), the totals, and a sweep's best setting per input.
pub fn summary_table(report: &Report) -> String {
    let mut out = rows_text(report);
    out.push_str(&totals_text(report));
    if let Some(best) = &report.best {
        out.push_str(&best_settings_text(best));
    }
    out
}

/// The table of rows: all of a small run, the unsuccessful ones of a large one.
fn rows_text(report: &Report) -> String {
    let mut out = String::new();
    let rows: Vec<&Row> = if report.rows.len() <= TERMINAL_ROWS_MAX {
        report.rows.iter().collect()
    } else {
        report
            .rows
            .iter()
            .filter(|r| r.status != "succeeded")
            .take(TERMINAL_ROWS_MAX)
            .collect()
    };
    if rows.is_empty() {
        return out;
    }
    let grid = report.grid.as_ref();
    // Names and messages come from files and the trainer: escaped, so each stays on its
    // line and cannot move the terminal's cursor.
    let names: Vec<_> = rows
        .iter()
        .map(|r| one_line(&row_label(r, grid)).into_owned())
        .collect();
    let name_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<name_w$}  {:<9}  {:<20}  {:>4}  {:>8}  {:>9}",
        "input", "status", "score", "exit", "attempts", "wall (s)"
    );
    for (r, name) in rows.iter().zip(&names) {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<9}  {:<20}  {:>4}  {:>8}  {:>9}",
            name,
            r.status,
            r.score.as_deref().unwrap_or("-"),
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.attempts,
            r.wall_seconds
                .map(|w| format!("{w:.2}"))
                .unwrap_or_else(|| "-".into()),
        );
        if r.status != "succeeded"
            && let Some(line) = r.stderr_tail.lines().last().or(r.failure.as_deref())
        {
            let _ = writeln!(out, "{:<name_w$}    {}", "", one_line(line));
        }
    }
    if rows.len() < report.rows.len() {
        let _ = writeln!(
            out,
            "({} of {} rows shown; all are in report.csv)",
            rows.len(),
            report.rows.len()
        );
    }
    out.push('\n');
    out
}

/// The run's totals, best and worst.
fn totals_text(report: &Report) -> String {
    let s = &report.summary;
    let mut out = format!(
        "Run {}: {} inputs{}, {} succeeded, {} failed{}\n",
        report.run_id,
        s.inputs,
        s.settings
            .map(|n| format!(" x {n} settings"))
            .unwrap_or_default(),
        s.succeeded,
        s.failed,
        if s.unfinished > 0 {
            format!(", {} unfinished", s.unfinished)
        } else {
            String::new()
        }
    );
    if let (Some(best), Some(worst)) = (&s.best, &s.worst) {
        let _ = writeln!(out, "Best:  {} ({})", one_line(&best.0), best.1);
        let _ = writeln!(out, "Worst: {} ({})", one_line(&worst.0), worst.1);
    }
    let _ = writeln!(
        out,
        "Totals: {} tasks, {} attempts, {:.1} s of task time",
        s.tasks, s.attempts, s.task_seconds
    );
    out
}

/// A sweep's best setting per input, for the first [`TERMINAL_ROWS_MAX`] inputs.
fn best_settings_text(best: &[Best]) -> String {
    let mut out = String::from("Best setting per input (also in best.csv):\n");
    let shown = &best[..best.len().min(TERMINAL_ROWS_MAX)];
    let w = shown
        .iter()
        .map(|b| one_line(&b.input).chars().count())
        .max()
        .unwrap_or(0);
    for b in shown {
        let _ = match (&b.label, &b.score) {
            (Some(label), Some(score)) => {
                writeln!(out, "  {:<w$}  {score:<20}  {label}", one_line(&b.input))
            }
            _ => writeln!(out, "  {:<w$}  no setting scored", one_line(&b.input)),
        };
    }
    if shown.len() < best.len() {
        let _ = writeln!(
            out,
            "  ({} of {} inputs shown; all are in best.csv)",
            shown.len(),
            best.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_read_exactly_as_printed() {
        assert_eq!(
            parse_score("The model score: 0.9533333333333334").as_deref(),
            Some("0.9533333333333334")
        );
        assert_eq!(
            parse_score("The model score: 1.0\n").as_deref(),
            Some("1.0")
        );
        assert_eq!(parse_score("score 0.5"), None);
        assert_eq!(parse_score("The model score: nanx"), None);
    }

    fn row(input: &str, status: &str, score: Option<&str>) -> Row {
        Row {
            input: input.into(),
            task_id: format!("t-{input}"),
            status: status.into(),
            score: score.map(Into::into),
            exit_code: None,
            attempts: 1,
            wall_seconds: Some(0.5),
            stderr_tail: String::new(),
            failure: None,
            requeues: 0,
            setting: None,
            setting_index: None,
        }
    }

    #[test]
    fn summary_counts_and_picks_the_first_of_tied_best_and_worst() {
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": 1, "run_id": "r", "backend": "local", "input_dir": "in",
            "trainer": {"path": "t", "digest": "d", "size": 1},
            "trainer_args": [], "threads": 1, "concurrency": 1, "retries": 0,
            "timeout_seconds": null, "inputs": [], "staged": null, "orchestrator_pid": null,
            "tasks": [
                {"task_id": "a", "input_name": "a", "input_digest": "a", "state": "succeeded",
                 "attempts": 1, "exit_code": 0, "wall_seconds": 1.5, "failure": null},
                {"task_id": "b", "input_name": "b", "input_digest": "b", "state": "failed",
                 "attempts": 3, "exit_code": 2, "wall_seconds": 0.5, "failure": null}
            ]
        }))
        .unwrap();
        let rows = vec![
            row("a.csv", "succeeded", Some("0.9")),
            row("b.csv", "succeeded", Some("0.5")),
            row("c.csv", "succeeded", Some("0.9")),
            row("d.csv", "succeeded", Some("0.5")),
            row("e.csv", "failed", None),
            row("f.csv", "pending", None),
        ];
        let s = summarize(&rows, &manifest);
        assert_eq!(
            (s.inputs, s.tasks, s.succeeded, s.failed, s.unfinished),
            (6, 2, 4, 1, 1)
        );
        assert_eq!(s.best, Some(("a.csv".into(), "0.9".into())));
        assert_eq!(s.worst, Some(("b.csv".into(), "0.5".into())));
        assert_eq!((s.attempts, s.task_seconds), (4, 2.0));
    }

    /// A report of `n` rows: row i scores i/n, except every `fail_every`-th, which failed
    /// with its own long stderr.
    fn large_report(n: usize, fail_every: usize) -> Report {
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let name = format!("input_{i:06}.csv");
                if i % fail_every == 0 {
                    let mut r = row(&name, "failed", None);
                    r.exit_code = Some(1);
                    r.stderr_tail = format!("error: {name}: line {i}: {}", "x".repeat(950));
                    r
                } else {
                    row(
                        &name,
                        "succeeded",
                        Some(&format!("{}", i as f64 / n as f64)),
                    )
                }
            })
            .collect();
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": 2, "run_id": "big", "backend": "local", "input_dir": "in",
            "trainer": {"path": "t", "digest": "d", "size": 1},
            "trainer_args": [], "threads": 1, "concurrency": 1, "retries": 0,
            "timeout_seconds": null, "inputs": [], "orchestrator_pid": null, "tasks": []
        }))
        .unwrap();
        let summary = summarize(&rows, &manifest);
        Report {
            run_id: "big".into(),
            backend: "local".into(),
            trainer_digest: "d".into(),
            trainer_args: vec![],
            rows,
            summary,
            grid: None,
            best: None,
            means: None,
        }
    }

    #[test]
    fn a_100k_row_report_html_is_small_and_shows_histogram_best_worst_and_failures() {
        let report = large_report(100_000, 1_000);
        let html = to_html(&report);
        assert!(html.len() < 200 * 1024, "{} bytes", html.len());
        assert!(html.contains("Histogram of scores"));
        assert!(html.contains("<p>99900 scored rows.</p>"));
        assert!(html.contains("Best 20 of 99900 scored"));
        assert!(html.contains("input_099999.csv"), "the best");
        assert!(html.contains("input_000001.csv"), "the worst");
        // Every failure: 100 of them, each listed, each its own cause.
        assert!(html.contains("Failures and unfinished tasks (100)"));
        assert!(html.contains("input_099000.csv"));
        assert!(!html.contains("input_050001.csv"), "not every row");
        // report.csv keeps every row.
        let csv = to_csv(&report, Path::new("report.csv")).unwrap();
        assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), 100_001);

        // Every row failed, each with its own 1 kB message: still bounded, and all counted.
        let failed = large_report(100_000, 1);
        let html = to_html(&failed);
        assert!(html.len() < 512 * 1024, "{} bytes", html.len());
        assert!(html.contains("Failures and unfinished tasks (100000)"));
        assert!(html.contains("99950 other causes, 99950 rows"));
        assert!(html.contains("200 of 100000 listed; every one is in report.csv."));
    }

    #[test]
    fn a_small_report_charts_and_lists_every_row() {
        let report = large_report(30, 10);
        let html = to_html(&report);
        assert!(html.contains("Score per input") && html.contains("<h2>Tasks</h2>"));
        for i in 0..30 {
            assert!(html.contains(&format!("input_{i:06}.csv")));
        }
        assert!(html.contains("Histogram of scores"), "27 scores");
        assert!(html.contains("Failures and unfinished tasks (3)"));
    }

    #[test]
    fn html_escapes_names() {
        assert_eq!(esc("<a&b>\""), "&lt;a&amp;b&gt;&quot;");
    }
}
