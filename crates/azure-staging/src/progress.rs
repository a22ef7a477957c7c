//! Upload progress: a callback type and an `indicatif` bar built on it.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

/// A snapshot sent after every block or object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Digest of the object that moved.
    pub digest: String,
    /// What happened to it.
    pub event: ProgressEvent,
    /// Bytes accounted for across the whole call (uploaded or skipped as already present).
    pub bytes_done: u64,
    /// Bytes of all objects in the call.
    pub bytes_total: u64,
    /// Objects finished (uploaded or skipped).
    pub objects_done: usize,
    /// Objects in the call.
    pub objects_total: usize,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Already staged with the same digest: nothing sent.
    Skipped,
    /// `bytes` more of it were stored (one block, or the whole small object).
    Bytes(u64),
    /// It is committed and complete.
    Done,
}

/// Called from the upload tasks; keep it cheap and non-blocking.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A byte-count progress bar on stderr (hidden when stderr is not a terminal) and the callback
/// that drives it. Call `finish` on the bar when the upload returns.
pub fn progress_bar(label: &str) -> (ProgressBar, ProgressFn) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_owned());
    let b = bar.clone();
    let label = label.to_owned();
    let callback: ProgressFn = Arc::new(move |p: &Progress| {
        b.set_length(p.bytes_total);
        b.set_position(p.bytes_done);
        b.set_message(format!(
            "{label} {}/{} objects",
            p.objects_done, p.objects_total
        ));
    });
    (bar, callback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_follows_the_callback() {
        let (bar, cb) = progress_bar("staging");
        cb(&Progress {
            digest: "d".into(),
            event: ProgressEvent::Bytes(10),
            bytes_done: 30,
            bytes_total: 100,
            objects_done: 1,
            objects_total: 4,
        });
        assert_eq!((bar.position(), bar.length()), (30, Some(100)));
        assert_eq!(bar.message(), "staging 1/4 objects");
    }
}
