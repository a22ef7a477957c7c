//! The run report: `report.csv`, `report.json`, `report.html` (an inline SVG chart of the
//! scores) in the run directory, and the summary table printed at the end of a run.
//!
//! Built only from the manifest and the task directories, so `run`, `resume` and a report
//! regenerated later all agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::kit::write_atomic;
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
    let json = serde_json::to_vec_pretty(report).expect("report serializes");
    write_atomic(&written.json, &json)?;
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

/// A self-contained page: summary, an inline SVG bar per input (score on a 0..1 axis, failed
/// inputs marked in red), and the table. No scripts, no external resources.
pub fn to_html(report: &Report) -> String {
    const ROW_H: usize = 22;
    const BAR_W: usize = 520;
    let labels: Vec<String> = report
        .rows
        .iter()
        .map(|r| row_label(r, report.grid.as_ref()))
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_w = (longest * 7 + 16).clamp(260, 640);
    #[expect(non_snake_case, reason = "reads as the constant it was")]
    let LABEL_W = label_w;
    let height = report.rows.len() * ROW_H + 40;
    let width = LABEL_W + BAR_W + 200;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="Score per input">"#
    );
    for tick in 0..=4 {
        let x = LABEL_W + BAR_W * tick / 4;
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="0" x2="{x}" y2="{y}" stroke="#ddd"/><text x="{x}" y="{t}" font-size="11" text-anchor="middle">{v:.2}</text>"##,
            y = height - 30,
            t = height - 15,
            v = tick as f64 / 4.0
        );
    }
    for (i, r) in report.rows.iter().enumerate() {
        let y = i * ROW_H;
        row_name(&mut svg, LABEL_W - 8, y + 15, &labels[i]);
        match r.score_value() {
            Some(score) => {
                let w = (score.clamp(0.0, 1.0) * BAR_W as f64).round() as usize;
                let _ = write!(
                    svg,
                    r##"<rect x="{LABEL_W}" y="{ry}" width="{w}" height="{h}" fill="#4c78a8"><title>{name}: {s}</title></rect><text x="{tx}" y="{ty}" font-size="11">{s}</text>"##,
                    ry = y + 3,
                    h = ROW_H - 6,
                    name = esc(&labels[i]),
                    s = esc(r.score.as_deref().unwrap_or("")),
                    tx = LABEL_W + w + 4,
                    ty = y + 15
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="{tx}" y="{ty}" font-size="11" fill="#c0392b">{status}</text>"##,
                    tx = LABEL_W + 4,
                    ty = y + 15,
                    status = esc(&r.status)
                );
            }
        }
    }
    svg.push_str("</svg>");

    let s = &report.summary;
    let mut table = String::new();
    for (r, label) in report.rows.iter().zip(&labels) {
        let _ = write!(
            table,
            "<tr class=\"{cls}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(label),
            esc(&r.task_id),
            esc(&r.status),
            esc(r.score.as_deref().unwrap_or("")),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.attempts,
            r.wall_seconds
                .map(|w| format!("{w:.2}"))
                .unwrap_or_default(),
            esc(&r.stderr_tail),
            cls = if r.status == "succeeded" { "ok" } else { "bad" },
        );
    }
    let best = s
        .best
        .as_ref()
        .map(|(n, v)| format!("{} ({v})", esc(n)))
        .unwrap_or_else(|| "-".into());
    let worst = s
        .worst
        .as_ref()
        .map(|(n, v)| format!("{} ({v})", esc(n)))
        .unwrap_or_else(|| "-".into());
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Run {run_id}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-size: 13px; }}
tr.bad td {{ background: #fdecea; }} pre {{ margin: 0; white-space: pre-wrap; max-width: 40em; }}
</style></head><body>
<h1>Run <code>{run_id}</code></h1>
<p>Backend: {backend}. Inputs: {inputs} ({tasks} tasks). Succeeded: {succeeded}. Failed: {failed}. Unfinished: {unfinished}.
Best: {best}. Worst: {worst}. Attempts: {attempts}. Task time: {task_seconds:.1} s.</p>
{sweep}<h2>Score per input</h2>
{svg}
<h2>Tasks</h2>
<table><tr><th>input</th><th>task_id</th><th>status</th><th>score</th><th>exit_code</th><th>attempts</th><th>wall_seconds</th><th>stderr_tail</th></tr>
{table}</table>
</body></html>
"#,
        run_id = esc(&report.run_id),
        sweep = sweep_html(report),
        backend = esc(&report.backend),
        inputs = s.inputs,
        tasks = s.tasks,
        succeeded = s.succeeded,
        failed = s.failed,
        unfinished = s.unfinished,
        attempts = s.attempts,
        task_seconds = s.task_seconds,
    )
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
    for b in best {
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
    let _ = writeln!(
        out,
        "</table>\n<h2>Mean score per value</h2>\n<p>For each swept flag, the mean score of \
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

/// The summary printed at the end of a run (and by `status`): one line per input when there
/// are few, only the unsuccessful ones when there are many, then the totals.
pub fn summary_table(report: &Report) -> String {
    const FULL_TABLE_MAX: usize = 40;
    let mut out = String::new();
    let rows: Vec<&Row> = if report.rows.len() <= FULL_TABLE_MAX {
        report.rows.iter().collect()
    } else {
        report
            .rows
            .iter()
            .filter(|r| r.status != "succeeded")
            .take(FULL_TABLE_MAX)
            .collect()
    };
    let grid = report.grid.as_ref();
    if !rows.is_empty() {
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
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Run {}: {} inputs{}, {} succeeded, {} failed{}",
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
    if let Some(best) = &report.best {
        let _ = writeln!(out, "Best setting per input (also in best.csv):");
        let w = best
            .iter()
            .map(|b| one_line(&b.input).chars().count())
            .max()
            .unwrap_or(0);
        for b in best {
            let _ = match (&b.label, &b.score) {
                (Some(label), Some(score)) => {
                    writeln!(out, "  {:<w$}  {score:<20}  {label}", one_line(&b.input))
                }
                _ => writeln!(out, "  {:<w$}  no setting scored", one_line(&b.input)),
            };
        }
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

    #[test]
    fn html_escapes_names() {
        assert_eq!(esc("<a&b>\""), "&lt;a&amp;b&gt;&quot;");
    }
}
