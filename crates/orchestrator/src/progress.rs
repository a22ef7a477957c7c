//! The live progress bar with an ETA on stderr, and per-task log lines.
//!
//! On a terminal the bar is drawn and log lines are printed above it; otherwise (CI, a pipe,
//! a file) the bar is hidden and the same lines go through `tracing` to stderr.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one session of a run.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` tasks of which `done` are already finished (a resumed run).
    pub fn new(total: u64, done: u64) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} tasks, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(done);
        bar.reset_eta();
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }

    /// How many tasks are running now (shown as the bar's message).
    pub fn set_running(&self, running: usize) {
        self.bar.set_message(format!("({running} running)"));
    }

    /// A task finished: advance the bar and log `line`.
    pub fn finished(&self, line: &str, ok: bool) {
        self.bar.inc(1);
        self.log(line, ok);
    }

    /// A line above the bar (or a log line when there is no bar); control characters in it
    /// (from an input's name or an engine's message) are escaped.
    pub fn log(&self, line: &str, ok: bool) {
        let line = crate::text::one_line(line);
        if self.bar.is_hidden() {
            if ok {
                tracing::info!("{line}");
            } else {
                tracing::warn!("{line}");
            }
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
