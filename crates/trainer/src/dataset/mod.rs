//! Reading the input CSV the way `pd.read_csv(path, index_col=0)` does, then checking it the
//! way scikit-learn's `validate_data` and `type_of_target` would.
//!
//! What pandas does and this module reproduces: the first row is the header; the first column
//! is the index and is dropped (when the first data row has one field more than the header,
//! pandas takes that extra leading field as the index instead); RFC 4180 quoting; blank and
//! whitespace-only lines are skipped; empty cells and pandas' NA tokens are missing; a UTF-8 BOM
//! is ignored; numbers may carry surrounding ASCII whitespace; `inf`/`Infinity` are floats; floats
//! are parsed correctly rounded. Features become float32 (integer columns convert from the
//! integer, others from the double, as numpy's `astype(float32)` does). The label column's type
//! decides class order: integers and integral floats sort numerically (`1` and `1.0` are one
//! class), `True`/`False` sort False first, anything else sorts as strings by code point.
//!
//! Everything the reference rejects (or turns into a NaN score) is an [`Error::Input`] naming
//! the line and column. This module does not know about folds or models.
//!
//! The reading goes in layers, one file each: [`read_ahead`] reads the file on a thread of its
//! own; [`scan`] follows the quotes as pandas' tokenizer does (a BOM, unclosed quotes, the
//! record length limit) under the `csv` crate's tokenizer; [`records`] reads the header and the
//! rows; [`pipeline`] converts rows in batches, partly on a second thread; [`cell`] is pandas'
//! grammar for one cell and Python's `float()`; [`columns`] infers each feature column's
//! pandas dtype and converts it to float32 as sklearn does. The label column is `crate::label`'s.

mod cell;
mod columns;
mod pipeline;
mod read_ahead;
mod records;
mod scan;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::scoring::LabelKind;

pub(crate) use cell::python_float;
use pipeline::BATCH_BYTES;
use read_ahead::{CHUNK, ReadAhead};
use records::parse_records;
use scan::QuoteScan;

/// What the model is asked to predict: the label column read as classes (classifiers) or as
/// float64 values (regressors). Chosen before reading: pandas reads the column the same way,
/// but sklearn checks and encodes it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// Class labels in sklearn's sorted order (a continuous column is refused).
    #[default]
    Classes,
    /// Float64 values (`np.asarray(y, dtype=float64)`; NaN and infinity are refused).
    Values,
}

/// The label column, encoded for the estimator.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class labels.
    Classes {
        /// Class index of each row into `names` (which is sorted as sklearn sorts labels).
        labels: Vec<u32>,
        /// The distinct labels in sklearn's order, rendered for reports.
        names: Vec<String>,
        /// The label column's dtype (what the scorers compare `pos_label` with).
        kind: LabelKind,
    },
    /// The target value of each row.
    Values(Vec<f64>),
}

/// A parsed, validated input table.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Number of data rows.
    pub n_rows: usize,
    /// Number of feature columns (all columns but the index and the label).
    pub n_features: usize,
    /// Float32 features by column: `columns[f][i]`; NaN marks a missing cell.
    pub columns: Vec<Vec<f32>>,
    /// The label column as classes or values.
    pub target: Target,
    /// Feature column names from the header.
    pub feature_names: Vec<String>,
    /// Name of the label column.
    pub label_name: String,
    /// The file line (1-based, header counted) of the first negative target value, for the
    /// criteria that refuse them (Poisson); `None` for class labels or no negative value.
    pub negative_target_line: Option<u64>,
}

impl Dataset {
    /// Row `i` as a feature vector.
    pub fn row(&self, i: usize) -> Vec<f32> {
        (0..self.n_features).map(|f| self.columns[f][i]).collect()
    }

    /// Class index of each row (empty for a value target).
    pub fn labels(&self) -> &[u32] {
        match &self.target {
            Target::Classes { labels, .. } => labels,
            Target::Values(_) => &[],
        }
    }

    /// The distinct labels in sklearn's order (empty for a value target).
    pub fn classes(&self) -> &[String] {
        match &self.target {
            Target::Classes { names, .. } => names,
            Target::Values(_) => &[],
        }
    }

    /// The label column's dtype (`Float` for a value target).
    pub fn label_kind(&self) -> LabelKind {
        match &self.target {
            Target::Classes { kind, .. } => *kind,
            Target::Values(_) => LabelKind::Float,
        }
    }

    /// The target values (`None` for class labels).
    pub fn values(&self) -> Option<&[f64]> {
        match &self.target {
            Target::Classes { .. } => None,
            Target::Values(v) => Some(v),
        }
    }
}

/// Reads and parses `path` (see the module docs), with class labels.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    read_csv_as(path, TargetKind::Classes)
}

/// Reads and parses `path`, with the label column read as `kind`.
pub fn read_csv_as(path: &Path, kind: TargetKind) -> Result<Dataset> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // A second thread reads ahead, so the kernel's copying overlaps the parsing (and a third
    // converts cells while the rows are tokenized; see `Pipeline`). Without a thread to spare,
    // this thread reads (the result is the same).
    let len = file.metadata().map_or(0, |m| m.len());
    std::thread::scope(|scope| match ReadAhead::spawn(scope, file) {
        Ok(ahead) => parse_reader_as(ahead, path, BATCH_BYTES, len, kind),
        Err(file) => parse_reader_as(file, path, BATCH_BYTES, len, kind),
    })
}

/// An [`Error::Input`] about `path`.
fn err(path: &Path, msg: String) -> Error {
    Error::input(path, msg)
}

/// A cell's text for a message: quoted, at most 40 characters.
pub(crate) fn show(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    format!("{out:?}")
}

/// Parses CSV bytes with class labels; `path` is only used in messages.
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Dataset> {
    parse_csv_as(bytes, path, TargetKind::Classes)
}

/// Parses CSV bytes with the label column read as `kind`.
pub fn parse_csv_as(bytes: &[u8], path: &Path, kind: TargetKind) -> Result<Dataset> {
    parse_reader_as(bytes, path, BATCH_BYTES, bytes.len() as u64, kind)
}

#[cfg(test)]
fn parse_reader<R: Read>(
    input: R,
    path: &Path,
    batch_bytes: usize,
    input_len: u64,
) -> Result<Dataset> {
    parse_reader_as(input, path, batch_bytes, input_len, TargetKind::Classes)
}

/// Streams a CSV from `input` (the file is never held in memory whole). Rows are converted in
/// batches of about `batch_bytes` bytes (see [`Pipeline`]); the result does not depend on it.
/// `input_len`, the input's size if known (else 0), only sizes buffers.
fn parse_reader_as<R: Read>(
    input: R,
    path: &Path,
    batch_bytes: usize,
    input_len: u64,
    kind: TargetKind,
) -> Result<Dataset> {
    let scan = QuoteScan::new(input).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(CHUNK)
        .from_reader(scan);
    let mut io_error_read_past = false;
    let res = parse_records(
        &mut reader,
        path,
        batch_bytes,
        input_len,
        &mut io_error_read_past,
        kind,
    );
    // pandas' first complaint about an unclosed quote is 'EOF inside string', whatever the
    // rows before it look like: read to the end before reporting anything else.
    let mut scan = reader.into_inner();
    if res.is_ok() || matches!(res, Err(Error::Input { .. })) {
        let drained = std::io::copy(&mut scan, &mut std::io::sink());
        // Reading stopped at a bad row, but the tokenizer had already met a read error past
        // it: the serial reader would have met that error here instead.
        let drained_ok = drained.is_ok() && !io_error_read_past;
        if let (true, Some(line)) = (drained_ok, scan.unterminated_quote_line()) {
            return Err(err(
                path,
                format!(
                    "line {line}: a quoted field starts here and is never closed (pandas: 'EOF \
                     inside string'); close the quote or escape inner quotes by doubling them"
                ),
            ));
        }
    }
    res
}
