//! Converting the tokenized rows, in batches, partly on a second thread while the tokenizer
//! runs, and merging the batches in file order (see [`Pipeline`]).

use std::path::Path;

use super::cell::{Cell, classify};
use super::columns::FeatureState;
use super::{err, show};
use crate::error::{Error, Result};
use crate::label::{LabelCell, Labels};

/// Roughly how many CSV bytes go into one batch of rows for conversion: big enough that the
/// hand-over costs nothing, small enough that the batches in flight take a few MiB at most.
pub(super) const BATCH_BYTES: usize = 256 << 10;

/// At most this many rows go into one batch (for files of very short rows).
pub(super) const MAX_BATCH_ROWS: usize = 4096;

/// A first batch of fewer rows than this means wide rows (e.g. 10^6 columns): then a converted
/// batch costs memory per column (a `Vec` and a `FeatureState` each), several in flight would
/// take far more than the rows themselves, so batches are converted one at a time straight into
/// the merged rows, without the converter thread.
const FEW_ROWS: usize = 64;

/// Raw batches the converter thread may hold (one converting, the others queued).
const WORKER_DEPTH: usize = 3;

/// Converted batches that may wait for an earlier batch still in the converter thread.
const MAX_PENDING: usize = 2;

/// Data rows as the tokenizer saw them, all with the same number of fields.
#[derive(Default)]
pub(super) struct RawRows {
    pub(super) bytes: Vec<u8>,
    /// Per row `n_cols + 1` offsets into `bytes`: where the row starts and where each field ends.
    pub(super) bounds: Vec<usize>,
    /// Line of each row (where its record starts).
    pub(super) lines: Vec<u64>,
}

impl RawRows {
    pub(super) fn push(&mut self, record: &csv::ByteRecord, line: u64) {
        let mut end = self.bytes.len();
        self.bytes.extend_from_slice(record.as_slice());
        self.bounds.push(end);
        for field in record {
            end += field.len();
            self.bounds.push(end);
        }
        self.lines.push(line);
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.bounds.clear();
        self.lines.clear();
    }
}

/// Converted data rows: feature cells as float32 with their columns' dtype bookkeeping, and
/// the labels. Row numbers inside are counted from the first row of this value.
pub(super) struct Rows {
    pub(super) n_rows: usize,
    pub(super) columns: Vec<Vec<f32>>,
    pub(super) states: Vec<FeatureState>,
    pub(super) labels: Labels,
}

impl Rows {
    fn new(n_features: usize, capacity: usize) -> Self {
        Rows {
            n_rows: 0,
            columns: (0..n_features)
                .map(|_| Vec::with_capacity(capacity))
                .collect(),
            states: (0..n_features).map(|_| FeatureState::default()).collect(),
            labels: Labels::with_capacity(capacity),
        }
    }

    /// Tries to make room for `n` rows in all. Only an optimization (growing by doubling would
    /// copy the columns again), so an estimate the memory cannot hold is simply not reserved.
    fn reserve(&mut self, n: usize) {
        let more = n.saturating_sub(self.n_rows);
        for col in &mut self.columns {
            if col.try_reserve_exact(more).is_err() {
                return;
            }
        }
        self.labels.reserve(n);
    }

    /// Appends the rows that follow these in the file; `Err` when the memory cannot hold them.
    fn append(&mut self, next: Rows) -> std::result::Result<(), std::collections::TryReserveError> {
        if self.n_rows == 0 {
            *self = next;
            return Ok(());
        }
        let base = self.n_rows;
        for (col, more) in self.columns.iter_mut().zip(&next.columns) {
            col.try_reserve(more.len())?;
            col.extend_from_slice(more);
        }
        for (st, more) in self.states.iter_mut().zip(next.states) {
            st.append(more, base);
        }
        self.labels.append(next.labels)?;
        self.n_rows += next.n_rows;
        Ok(())
    }
}

/// Converts tokenized rows of `n_cols` fields (index, features, label). The only error is a
/// missing label, and it is the first one in the batch.
fn convert(batch: &RawRows, n_cols: usize, path: &Path) -> Result<Rows> {
    let mut rows = Rows::new(n_cols - 2, batch.lines.len());
    convert_into(&mut rows, batch, n_cols, path)?;
    Ok(rows)
}

/// [`convert`], appending to `rows` (which then numbers the new rows after its own).
fn convert_into(rows: &mut Rows, batch: &RawRows, n_cols: usize, path: &Path) -> Result<()> {
    // The tokenizer checked every row's UTF-8, so this holds; fields then need no check.
    let text = std::str::from_utf8(&batch.bytes).ok();
    for (bounds, &line) in batch.bounds.chunks_exact(n_cols + 1).zip(&batch.lines) {
        // Field `j` of the row (0 = the index column).
        let field = |j: usize| &batch.bytes[bounds[j]..bounds[j + 1]];
        let field_text = |j: usize| text.and_then(|t| t.get(bounds[j]..bounds[j + 1]));
        let row = rows.n_rows;
        for (f, (st, col)) in rows.states.iter_mut().zip(&mut rows.columns).enumerate() {
            let raw = field(f + 1);
            col.push(st.record(classify(raw, field_text(f + 1)), row, line, raw));
        }
        // Label.
        let raw = field(n_cols - 1);
        let text = match field_text(n_cols - 1) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => String::from_utf8_lossy(raw),
        };
        rows.labels.push(&text, line, || {
            match classify(raw, field_text(n_cols - 1)) {
                Cell::Missing => Err(err(
                    path,
                    format!(
                        "line {line}, column {n_cols}: the label is missing ({}); sklearn raises \
                         'Input y contains NaN'; give every row a label",
                        show(raw)
                    ),
                )),
                Cell::Int(i) => Ok(LabelCell::Int(i)),
                Cell::Float(x) => Ok(LabelCell::Float(x)),
                Cell::Bool(b) => Ok(LabelCell::Bool(b)),
                Cell::Other => Ok(LabelCell::Text),
            }
        })?;
        rows.n_rows += 1;
    }
    Ok(())
}

/// Rows are numbered with `u32` (labels, folds, tree samples).
const MAX_ROWS: usize = u32::MAX as usize;

/// The error for a file whose first `n_rows` rows of `n_cols` fields are more rows than the
/// trainer can number (bad input: a retry cannot help) or do not fit in memory (exit 2).
fn too_many_rows(path: &Path, n_rows: usize, n_cols: usize) -> Error {
    if n_rows > MAX_ROWS {
        return err(
            path,
            format!(
                "the file has more than {MAX_ROWS} data rows, more than the trainer can \
                 number; split it or sample it"
            ),
        );
    }
    let n_features = n_cols - 2;
    let gib = (n_rows as f64) * (4.0 * n_features as f64 + 4.0) / f64::from(1 << 30);
    Error::resources(
        path,
        format!(
            "not enough memory to hold {n_rows} rows of {n_features} features ({gib:.1} GiB as \
             float32); use a machine with more memory, or fewer rows or columns"
        ),
    )
}

type Converted = (usize, Result<Rows>, RawRows);

/// Converts batches of raw rows, on a second thread while the tokenizer runs, and merges the
/// results in file order. The tokenizer hands each batch over with [`Pipeline::dispatch`]: it
/// goes to the converter thread when that one has room, otherwise the tokenizer's thread
/// converts it itself (so both cores share the conversion whichever side is slower). At most
/// `WORKER_DEPTH` raw and `MAX_PENDING` converted batches are in flight.
///
/// The first error in file order wins: batches are merged by sequence number and merging stops
/// at the first batch that failed, so an error in an early batch beats one in a later batch,
/// and every row the tokenizer rejected comes after all rows it dispatched.
pub(super) struct Pipeline<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    path: &'env Path,
    n_cols: usize,
    worker_tried: bool,
    /// Rows are so wide that a batch holds only a few: each is converted straight into `rows`
    /// on this thread (see [`FEW_ROWS`]).
    inline: bool,
    to_worker: Option<std::sync::mpsc::SyncSender<(usize, RawRows)>>,
    from_worker: Option<std::sync::mpsc::Receiver<Converted>>,
    in_worker: usize,
    /// Next sequence number to hand out, and the next one to merge.
    sent: usize,
    merged: usize,
    pending: std::collections::BTreeMap<usize, Result<Rows>>,
    spare: Vec<RawRows>,
    rows: Rows,
    error: Option<Error>,
    input_len: u64,
    /// Rows the input probably holds (from the first batch's row length), to reserve for once
    /// the first batch is merged: growing by doubling would copy and zero the columns again.
    expected_rows: Option<usize>,
}

impl<'scope, 'env> Pipeline<'scope, 'env> {
    pub(super) fn new(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        path: &'env Path,
        n_cols: usize,
        input_len: u64,
    ) -> Self {
        Pipeline {
            scope,
            path,
            n_cols,
            worker_tried: false,
            inline: false,
            to_worker: None,
            from_worker: None,
            in_worker: 0,
            sent: 0,
            merged: 0,
            pending: std::collections::BTreeMap::new(),
            spare: Vec::new(),
            rows: Rows::new(n_cols - 2, 0),
            error: None,
            input_len,
            expected_rows: None,
        }
    }

    /// A conversion failed: the tokenizer can stop.
    pub(super) fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Starts the converter thread; if the system has no thread to give, this thread converts
    /// everything (the result is the same).
    fn start_worker(&mut self) {
        self.worker_tried = true;
        let (to_worker, jobs) = std::sync::mpsc::sync_channel::<(usize, RawRows)>(WORKER_DEPTH);
        let (done, from_worker) = std::sync::mpsc::channel::<Converted>();
        let (path, n_cols) = (self.path, self.n_cols);
        let spawned = std::thread::Builder::new()
            .name("csv-convert".into())
            .spawn_scoped(self.scope, move || {
                for (seq, raw) in jobs {
                    let res = convert(&raw, n_cols, path);
                    // The receiver is gone once a batch failed: stop then.
                    if done.send((seq, res, raw)).is_err() {
                        return;
                    }
                }
            });
        if spawned.is_ok() {
            self.to_worker = Some(to_worker);
            self.from_worker = Some(from_worker);
        }
    }

    fn merge(&mut self, seq: usize, res: Result<Rows>) {
        self.pending.insert(seq, res);
        while self.error.is_none() {
            let Some(res) = self.pending.remove(&self.merged) else {
                break;
            };
            self.merged += 1;
            match res {
                Ok(rows) => {
                    let n_rows = self.rows.n_rows + rows.n_rows;
                    if n_rows > MAX_ROWS || self.rows.append(rows).is_err() {
                        self.error = Some(too_many_rows(self.path, n_rows, self.n_cols));
                    }
                }
                Err(e) => self.error = Some(e),
            }
            if let Some(n) = self.expected_rows.take() {
                self.rows.reserve(n);
            }
        }
    }

    fn take_result(&mut self, (seq, res, mut raw): Converted) {
        self.in_worker -= 1;
        self.merge(seq, res);
        raw.clear();
        self.spare.push(raw);
    }

    /// Merges what the converter thread finished; with `block`, waits for one batch first.
    fn collect(&mut self, block: bool) {
        let Some(rx) = &self.from_worker else {
            return;
        };
        let mut got = Vec::new();
        if block && self.in_worker > 0 {
            match rx.recv() {
                Ok(c) => got.push(c),
                Err(_) => panic!("the CSV converter thread ended early"),
            }
        }
        got.extend(rx.try_iter());
        for c in got {
            self.take_result(c);
        }
    }

    /// Hands over a full batch (`last`: the final one) and returns an empty one to fill.
    pub(super) fn dispatch(&mut self, batch: RawRows, last: bool) -> RawRows {
        let mut empty = None;
        if batch.lines.is_empty() || self.error.is_some() {
            empty = Some(batch);
        } else {
            let seq = self.sent;
            self.sent += 1;
            if seq == 0 && !last {
                // Each row also had its delimiters and line end in the input.
                let row_len = batch.bytes.len() / batch.lines.len() + self.n_cols;
                let rows = self.input_len / row_len as u64;
                self.expected_rows = usize::try_from(rows + rows / 32 + 16).ok();
            }
            if seq == 0 && batch.lines.len() < FEW_ROWS && !last {
                self.inline = true;
            }
            if self.inline {
                self.convert_inline(&batch);
                return self.recycle(Some(batch));
            }
            if !self.worker_tried && !last {
                self.start_worker();
            }
            self.collect(false);
            loop {
                if let Some(tx) = &self.to_worker
                    && self.in_worker < WORKER_DEPTH
                {
                    if tx.send((seq, batch)).is_err() {
                        panic!("the CSV converter thread ended early");
                    }
                    self.in_worker += 1;
                    break;
                }
                if self.pending.len() < MAX_PENDING || self.in_worker == 0 {
                    let res = convert(&batch, self.n_cols, self.path);
                    self.merge(seq, res);
                    empty = Some(batch);
                    break;
                }
                // Enough converted batches wait for the converter thread: wait for it.
                self.collect(true);
            }
        }
        self.recycle(empty)
    }

    /// An empty batch to fill: `used` (cleared) or a spare one.
    fn recycle(&mut self, used: Option<RawRows>) -> RawRows {
        let mut raw = used.or_else(|| self.spare.pop()).unwrap_or_default();
        raw.clear();
        raw
    }

    /// Converts `batch` straight into the merged rows (wide rows; see [`FEW_ROWS`]).
    fn convert_inline(&mut self, batch: &RawRows) {
        let n = batch.lines.len();
        let n_rows = self.rows.n_rows + n;
        let room = self
            .rows
            .columns
            .iter_mut()
            .try_for_each(|c| c.try_reserve(n));
        if n_rows > MAX_ROWS || room.is_err() {
            self.error = Some(too_many_rows(self.path, n_rows, self.n_cols));
            return;
        }
        if let Err(e) = convert_into(&mut self.rows, batch, self.n_cols, self.path) {
            self.error = Some(e);
        }
        self.merged += 1;
        if let Some(n) = self.expected_rows.take() {
            self.rows.reserve(n);
        }
    }

    /// Converts the final batch, waits for the converter thread and returns the rows in file
    /// order, or the first conversion error.
    pub(super) fn finish(mut self, raw: RawRows) -> Result<Rows> {
        self.dispatch(raw, true);
        self.to_worker = None;
        // Every batch not merged yet waits, directly or behind another, for the converter thread.
        while self.error.is_none() && self.merged < self.sent && self.in_worker > 0 {
            self.collect(true);
        }
        debug_assert!(self.error.is_some() || self.merged == self.sent);
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.rows),
        }
    }
}
