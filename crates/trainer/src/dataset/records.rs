//! The records as pandas reads them: the header, the first data row (which may make the first
//! column an implicit index), blank lines skipped, every field valid UTF-8 and every row of
//! the same length; the rows go to the [`Pipeline`] and come back as the table.

use std::io::Read;
use std::path::Path;

use super::columns::to_float32;
use super::pipeline::{MAX_BATCH_ROWS, Pipeline, RawRows, Rows};
use super::scan::csv_error;
use super::{Dataset, Target, TargetKind, err};
use crate::error::{Error, Result};

/// A reading error, and whether the reader itself failed (an I/O error or a record too long).
type ReadError = (Error, bool);

/// The CSV reader with the record it last read.
struct Records<'a, R> {
    reader: &'a mut csv::Reader<R>,
    path: &'a Path,
    record: csv::ByteRecord,
}

impl<R: Read> Records<'_, R> {
    /// Reads the next record; `false` at the end of the input.
    fn read(&mut self) -> std::result::Result<bool, ReadError> {
        let path = self.path;
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| {
                let io = e.is_io_error();
                (csv_error(path, e), io)
            })?;
        // pandas decodes each field as UTF-8 and raises on an invalid one. Field by field: the
        // bytes of a record's fields joined can be valid where a field is not (`\xC3,\xA9`).
        let record = &self.record;
        if more
            && !record.as_slice().is_ascii()
            && record.iter().any(|f| std::str::from_utf8(f).is_err())
        {
            let line = self.line();
            return Err((
                err(
                    path,
                    format!("line {line}: the text is not valid UTF-8; save the file as UTF-8"),
                ),
                false,
            ));
        }
        Ok(more)
    }

    /// Reads the next record that is not blank (pandas skips those); `false` at the end.
    fn read_row(&mut self) -> std::result::Result<bool, ReadError> {
        loop {
            if !self.read()? {
                return Ok(false);
            }
            if !is_blank(&self.record) {
                return Ok(true);
            }
        }
    }

    /// The line the last record starts on.
    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }
}

/// A blank or whitespace-only line.
fn is_blank(r: &csv::ByteRecord) -> bool {
    r.len() == 1
        && r[0]
            .iter()
            .all(|c| matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c))
}

/// The columns, as the header and the first data row decide them.
struct Layout {
    header: csv::ByteRecord,
    /// Fields per row: index, features, label.
    n_cols: usize,
    /// The first data row has one field more than the header: that one is the index.
    implicit_index: bool,
}

impl Layout {
    /// Reads the header and the first data row (left in `records.record`).
    fn read<R: Read>(records: &mut Records<'_, R>) -> Result<Layout> {
        let path = records.path;
        if !records.read_row().map_err(|(e, _)| e)? {
            return Err(err(
                path,
                "the file is empty (no header row); pandas raises EmptyDataError; provide a \
                 header row, an index column, feature columns and a label column"
                    .into(),
            ));
        }
        let header = records.record.clone();
        let header_line = header.position().map_or(1, |p| p.line());
        if !records.read_row().map_err(|(e, _)| e)? {
            return Err(err(
                path,
                format!(
                    "line {header_line}: the file has a header but no data rows; sklearn cannot \
                     split 0 samples into folds; add data rows"
                ),
            ));
        }
        // pandas: a first data row with one extra field means an implicit index column.
        let implicit_index = records.record.len() == header.len() + 1;
        let n_cols = header.len() + usize::from(implicit_index);
        if n_cols.saturating_sub(1) < 2 {
            return Err(err(
                path,
                format!(
                    "line {header_line}: the header has {} column(s) but the trainer needs an \
                     index column, at least one feature column and a label column",
                    header.len()
                ),
            ));
        }
        Ok(Layout {
            header,
            n_cols,
            implicit_index,
        })
    }

    /// The error for a row of another length, on `line`.
    fn wrong_length(&self, path: &Path, record: &csv::ByteRecord, line: u64) -> Error {
        let what = if record.len() < self.n_cols {
            "the label and possibly features are missing"
        } else {
            "pandas raises 'Error tokenizing data'"
        };
        err(
            path,
            format!(
                "line {line}: expected {} fields (as in the {}), saw {} ({what}); make every row \
                 have the same number of fields",
                self.n_cols,
                if self.implicit_index {
                    "first data row"
                } else {
                    "header"
                },
                record.len()
            ),
        )
    }

    /// The header's name for column `col` of the data (0 = the first feature).
    fn name_of(&self, col: usize) -> String {
        let h = col + 1 - usize::from(self.implicit_index);
        self.header
            .get(h)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// Reads the table from `reader` (see the module docs). `io_error_read_past` is set when the
/// tokenizer met a read error after the row a conversion refused.
pub(super) fn parse_records<R: Read>(
    reader: &mut csv::Reader<R>,
    path: &Path,
    batch_bytes: usize,
    input_len: u64,
    io_error_read_past: &mut bool,
    kind: TargetKind,
) -> Result<Dataset> {
    let mut records = Records {
        reader,
        path,
        record: csv::ByteRecord::new(),
    };
    let layout = Layout::read(&mut records)?;
    let (tokenized, converted) = tokenize(&mut records, &layout, batch_bytes, input_len);
    // Every row the tokenizer dispatched comes before the one it stopped at.
    let rows = match (converted, tokenized) {
        (Err(e), tokenized) => {
            *io_error_read_past = matches!(tokenized, Err((_, true)));
            return Err(e);
        }
        (Ok(_), Err((e, _))) => return Err(e),
        (Ok(rows), Ok(())) => rows,
    };
    let Rows {
        n_rows,
        columns,
        states,
        labels,
    } = rows;
    let n_features = states.len();
    let columns = to_float32(states, columns, path, |f| layout.name_of(f))?;
    let label_col = layout.n_cols;
    let (target, negative_target_line) = match kind {
        TargetKind::Classes => {
            let (labels, names, kind) = labels.encode(path, label_col)?;
            let target = Target::Classes {
                labels,
                names,
                kind,
            };
            (target, None)
        }
        TargetKind::Values => {
            let (values, negative) = labels.values(path, label_col)?;
            (Target::Values(values), negative)
        }
    };
    Ok(Dataset {
        n_rows,
        n_features,
        columns,
        target,
        feature_names: (0..n_features).map(|f| layout.name_of(f)).collect(),
        label_name: layout.name_of(n_features),
        negative_target_line,
    })
}

/// Tokenizes the rows from the first data row (in `records.record`) on, here, and converts
/// them in batches, partly on a second thread (see [`Pipeline`]). Returns how tokenizing
/// ended and the converted rows or the first conversion error.
fn tokenize<R: Read>(
    records: &mut Records<'_, R>,
    layout: &Layout,
    batch_bytes: usize,
    input_len: u64,
) -> (std::result::Result<(), ReadError>, Result<Rows>) {
    let path = records.path;
    std::thread::scope(|scope| {
        let mut pipeline = Pipeline::new(scope, path, layout.n_cols, input_len);
        let mut batch = RawRows::default();
        let mut tokenized = Ok(());
        loop {
            let line = records.line();
            if records.record.len() != layout.n_cols {
                tokenized = Err((layout.wrong_length(path, &records.record, line), false));
                break;
            }
            batch.push(&records.record, line);
            if batch.bytes.len() >= batch_bytes || batch.lines.len() >= MAX_BATCH_ROWS {
                batch = pipeline.dispatch(batch, false);
                if pipeline.failed() {
                    break;
                }
            }
            match records.read_row() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tokenized = Err(e);
                    break;
                }
            }
        }
        (tokenized, pipeline.finish(batch))
    })
}
