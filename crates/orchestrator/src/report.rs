//! The run report: `report.csv`, `report.json`, `report.html` (an inline SVG chart of the
//! scores) in the run directory, and the summary table printed at the end of a run.
//!
//! Built only from the manifest and the task directories, so `run`, `resume` and a report
//! regenerated later all agree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::kit::write_atomic;
use crate::backend::{OUTPUT_FILE, STDERR_FILE};
use crate::manifest::{Manifest, TaskState};
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
    /// Distinct tasks (inputs with equal content share one).
    pub tasks: usize,
    /// Inputs whose task succeeded.
    pub succeeded: usize,
    /// Inputs whose task failed, timed out, was cancelled or never ran.
    pub failed: usize,
    /// Inputs whose task has not finished (an interrupted run).
    pub unfinished: usize,
    /// Best scoring input and its score.
    pub best: Option<(String, String)>,
    /// Worst scoring input and its score.
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
    /// One row per input, in discovery order.
    pub rows: Vec<Row>,
    /// Totals.
    pub summary: Summary,
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
    let rows: Vec<Row> = manifest
        .inputs
        .iter()
        .map(|input| {
            let task = &manifest.tasks[index[&input.task_id]];
            let task_dir = run_dir.join("tasks").join(&task.task_id);
            let score = (task.state == TaskState::Succeeded)
                .then(|| std::fs::read_to_string(task_dir.join(OUTPUT_FILE)).ok())
                .flatten()
                .and_then(|out| parse_score(&out));
            Row {
                input: input.name.clone(),
                task_id: task.task_id.clone(),
                status: task.state.as_str().to_owned(),
                score,
                exit_code: task.exit_code,
                attempts: task.attempts,
                wall_seconds: task.wall_seconds,
                stderr_tail: stderr_tail(&task_dir),
                failure: task.failure.clone(),
                requeues: task.requeues,
            }
        })
        .collect();
    let summary = summarize(&rows, manifest);
    Report {
        run_id: manifest.run_id.clone(),
        backend: manifest.backend.to_string(),
        trainer_digest: manifest.trainer.digest.clone(),
        trainer_args: manifest.trainer_args.clone(),
        rows,
        summary,
    }
}

fn summarize(rows: &[Row], manifest: &Manifest) -> Summary {
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
        r.map(|(row, _)| (row.input.clone(), row.score.clone().unwrap_or_default()))
    };
    let worst = scored
        .last()
        .map(|l| l.1)
        .and_then(|min| scored.iter().find(|(_, s)| *s == min));
    Summary {
        inputs: rows.len(),
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
}

/// Writes `report.csv`, `report.json` and `report.html` into `run_dir`, each atomically.
pub fn write(report: &Report, run_dir: &Path) -> Result<Written> {
    let written = Written {
        csv: run_dir.join("report.csv"),
        json: run_dir.join("report.json"),
        html: run_dir.join("report.html"),
    };
    write_atomic(&written.csv, &to_csv(report, &written.csv)?)?;
    let json = serde_json::to_vec_pretty(report).expect("report serializes");
    write_atomic(&written.json, &json)?;
    write_atomic(&written.html, to_html(report).as_bytes())?;
    Ok(written)
}

fn to_csv(report: &Report, path: &Path) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io_err = |e: csv::Error| Error::io("write", path, std::io::Error::other(e));
    w.write_record([
        "input",
        "task_id",
        "status",
        "score",
        "exit_code",
        "attempts",
        "wall_seconds",
        "stderr_tail",
        "failure",
        "requeues",
    ])
    .map_err(io_err)?;
    // Free text (names, stderr, engine messages) is quoted against spreadsheet formulas.
    for r in &report.rows {
        w.write_record([
            &*csv_cell(&r.input),
            &r.task_id,
            &r.status,
            r.score.as_deref().unwrap_or(""),
            &r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            &r.attempts.to_string(),
            &r.wall_seconds
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
            &*csv_cell(&r.stderr_tail),
            &*csv_cell(r.failure.as_deref().unwrap_or("")),
            &r.requeues.to_string(),
        ])
        .map_err(io_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::io("write", path, std::io::Error::other(e.to_string())))
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

/// A self-contained page: summary, an inline SVG bar per input (score on a 0..1 axis, failed
/// inputs marked in red), and the table. No scripts, no external resources.
pub fn to_html(report: &Report) -> String {
    const ROW_H: usize = 22;
    const LABEL_W: usize = 260;
    const BAR_W: usize = 520;
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
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="{ty}" font-size="12" text-anchor="end">{name}</text>"#,
            lx = LABEL_W - 8,
            ty = y + 15,
            name = esc(&r.input)
        );
        match r.score_value() {
            Some(score) => {
                let w = (score.clamp(0.0, 1.0) * BAR_W as f64).round() as usize;
                let _ = write!(
                    svg,
                    r##"<rect x="{LABEL_W}" y="{ry}" width="{w}" height="{h}" fill="#4c78a8"><title>{name}: {s}</title></rect><text x="{tx}" y="{ty}" font-size="11">{s}</text>"##,
                    ry = y + 3,
                    h = ROW_H - 6,
                    name = esc(&r.input),
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
    for r in &report.rows {
        let _ = write!(
            table,
            "<tr class=\"{cls}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(&r.input),
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
<h2>Score per input</h2>
{svg}
<h2>Tasks</h2>
<table><tr><th>input</th><th>task_id</th><th>status</th><th>score</th><th>exit_code</th><th>attempts</th><th>wall_seconds</th><th>stderr_tail</th></tr>
{table}</table>
</body></html>
"#,
        run_id = esc(&report.run_id),
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
    if !rows.is_empty() {
        // Names and messages come from files and the trainer: escaped, so each stays on its
        // line and cannot move the terminal's cursor.
        let names: Vec<_> = rows.iter().map(|r| one_line(&r.input)).collect();
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
                "({} of {} inputs shown; all are in report.csv)",
                rows.len(),
                report.rows.len()
            );
        }
        out.push('\n');
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Run {}: {} inputs, {} succeeded, {} failed{}",
        report.run_id,
        s.inputs,
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
