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

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::label::{LabelCell, Labels};
use crate::scoring::LabelKind;

/// pandas' default NA tokens (`STR_NA_VALUES`); the empty string is missing too.
const NA_TOKENS: &[&[u8]] = &[
    b"",
    b"#N/A",
    b"#N/A N/A",
    b"#NA",
    b"-1.#IND",
    b"-1.#QNAN",
    b"-NaN",
    b"-nan",
    b"1.#IND",
    b"1.#QNAN",
    b"<NA>",
    b"N/A",
    b"NA",
    b"NULL",
    b"NaN",
    b"None",
    b"n/a",
    b"nan",
    b"null",
];

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

/// Bytes per read-ahead chunk: large reads, because a read(2) can cost a fixed ~0.2 ms on VMs
/// (measured: a 97 MB CSV took 0.77 s to read in 64 KiB reads and 0.07 s in 1 MiB reads).
const CHUNK: usize = 1 << 20;

/// A reader fed by a thread that reads `CHUNK`-sized pieces of a file ahead of the parser.
/// At most two chunks wait at a time and used chunks go back to the thread, so memory stays at
/// a few MiB whatever the file size.
struct ReadAhead {
    full: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    /// Starts the thread, or gives `inner` back if no thread can be started.
    fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        inner: R,
    ) -> std::result::Result<Self, R> {
        let (full_tx, full) = std::sync::mpsc::sync_channel(2);
        let (empty, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        // The thread takes `inner` from here once it runs; if it never starts, it is still here.
        let handover = std::sync::Arc::new(std::sync::Mutex::new(Some(inner)));
        let theirs = std::sync::Arc::clone(&handover);
        let spawned = std::thread::Builder::new()
            .name("csv-read".into())
            .spawn_scoped(scope, move || {
                let taken = theirs.lock().ok().and_then(|mut r| r.take());
                let Some(mut inner) = taken else {
                    return;
                };
                loop {
                    let mut buf = empty_rx.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
                    buf.resize(CHUNK, 0);
                    let mut n = 0;
                    let res = loop {
                        match inner.read(&mut buf[n..]) {
                            Ok(0) => break Ok(()),
                            Ok(k) => {
                                n += k;
                                if n == CHUNK {
                                    break Ok(());
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    buf.truncate(n);
                    let last = n == 0 || res.is_err();
                    // The parser stopped (an error, or the end): nobody is listening any more.
                    if full_tx.send(res.map(|()| buf)).is_err() || last {
                        return;
                    }
                }
            });
        if spawned.is_err() {
            let inner = handover.lock().ok().and_then(|mut r| r.take());
            return Err(inner.expect("a thread that never started did not take the reader"));
        }
        Ok(ReadAhead {
            full,
            empty,
            chunk: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            let next = match self.full.recv() {
                Ok(next) => next?,
                // The thread ended after its last chunk.
                Err(_) => Vec::new(),
            };
            let used = std::mem::replace(&mut self.chunk, next);
            // The thread may have ended; the buffer is simply dropped then.
            let _ = self.empty.send(used);
            self.pos = 0;
            self.done = self.chunk.is_empty();
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// How a cell parsed.
enum Cell {
    Missing,
    /// An integer in pandas' int64 grammar (kept as i128 to cover uint64 labels).
    Int(i128),
    Float(f64),
    Bool(bool),
    Other,
}

/// `text`: `raw` as a str when the caller has it (saves checking the UTF-8 again).
#[inline]
fn classify(raw: &[u8], text: Option<&str>) -> Cell {
    // The NA tokens have at most 8 bytes.
    if raw.len() <= 8 && NA_TOKENS.contains(&raw) {
        return Cell::Missing;
    }
    let (start, end) = trim_ascii(raw);
    let t = &raw[start..end];
    if let Some(i) = parse_int(t) {
        return Cell::Int(i);
    }
    // Rust's float grammar is `parse_float`'s plus the NaN spellings, so its parser can check
    // the syntax too (in one pass instead of two).
    let parsed = match text.and_then(|s| s.get(start..end)) {
        Some(s) => s.parse::<f64>().ok(),
        None => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse::<f64>().ok()),
    }
    .filter(|x| !x.is_nan());
    debug_assert_eq!(
        parsed.map(f64::to_bits),
        parse_float(t).map(f64::to_bits),
        "{t:?}"
    );
    if let Some(x) = parsed {
        return Cell::Float(x);
    }
    match raw {
        b"True" | b"TRUE" | b"true" => Cell::Bool(true),
        b"False" | b"FALSE" | b"false" => Cell::Bool(false),
        _ => Cell::Other,
    }
}

/// Where `s` starts and ends without surrounding whitespace.
fn trim_ascii(s: &[u8]) -> (usize, usize) {
    // pandas' isspace_ascii: space, \t, \n, \v, \f, \r.
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = s.iter().position(|c| !ws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    (start, end)
}

fn parse_int(t: &[u8]) -> Option<i128> {
    let (negative, digits) = match t.first()? {
        b'+' => (false, &t[1..]),
        b'-' => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 30 {
        return None;
    }
    let mut v: i128 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(c - b'0');
    }
    Some(if negative { -v } else { v })
}

/// pandas' `xstrtod` grammar (`[+-]? (d+ [.d*] | .d+) ([eE][+-]?d+)?`) plus its inf spellings,
/// converted with Rust's correctly rounded parser.
fn parse_float(t: &[u8]) -> Option<f64> {
    match float_syntax(t) {
        FloatSyntax::No => None,
        FloatSyntax::Inf(x) => Some(x),
        FloatSyntax::Decimal => std::str::from_utf8(t).ok()?.parse::<f64>().ok(),
    }
}

/// Whether `t` is in [`parse_float`]'s grammar.
enum FloatSyntax {
    No,
    /// One of the inf spellings, with its sign.
    Inf(f64),
    /// Decimal digits, for Rust's parser.
    Decimal,
}

fn float_syntax(t: &[u8]) -> FloatSyntax {
    let unsigned = t
        .strip_prefix(b"+")
        .or_else(|| t.strip_prefix(b"-"))
        .unwrap_or(t);
    if matches!(unsigned.first(), Some(b'i' | b'I')) {
        if !(unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity")) {
            return FloatSyntax::No;
        }
        return FloatSyntax::Inf(if t[0] == b'-' {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    let b = t;
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut n_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        n_digits += i - frac_start;
    }
    if n_digits == 0 {
        return FloatSyntax::No;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return FloatSyntax::No;
        }
    }
    if i != b.len() {
        return FloatSyntax::No;
    }
    FloatSyntax::Decimal
}

/// Per feature column: what its cells looked like, to infer the pandas dtype afterwards.
#[derive(Default)]
struct FeatureState {
    n_bool: usize,
    n_number: usize,
    n_float: usize,
    n_negative: usize,
    n_above_i64: usize,
    first_bool_line: u64,
    first_number_line: u64,
    /// The first line with a number too large for float32 (0: none so far).
    first_inf_line: u64,
    /// Cells that are neither numbers, bools nor NA: (row, line, text). pandas then keeps the
    /// whole column as strings and sklearn converts each with Python's `float()`.
    others: Vec<(usize, u64, String)>,
    /// Integer cells whose float32 differs when cast from the integer rather than from the
    /// double (only beyond 2^24 with low bits set): applied when numpy casts directly.
    int_patches: Vec<(usize, f32)>,
}

impl FeatureState {
    /// The pandas dtype of the column.
    fn kind(&self) -> ColumnKind {
        if !self.others.is_empty() || (self.n_bool > 0 && self.n_number > 0) {
            ColumnKind::Object
        } else if self.n_bool > 0 {
            ColumnKind::Bool
        } else if self.n_float > 0 || self.n_number == 0 {
            ColumnKind::Float
        } else if self.n_above_i64 > 0 && self.n_negative > 0 {
            // Neither int64 nor uint64: pandas keeps the digits as strings.
            ColumnKind::Object
        } else if self.n_above_i64 > 0 {
            ColumnKind::UInt64
        } else {
            ColumnKind::Int64
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Int64,
    UInt64,
    Float,
    Bool,
    Object,
}

/// Python's `float(str)`: strips whitespace, allows `_` between digits and
/// `inf`/`infinity`/`nan` in any case. `None` where Python raises ValueError.
pub(crate) fn python_float(s: &str) -> Option<f64> {
    let ascii = python_ascii_number(s)?;
    let t = ascii.trim();
    let (sign, body) = match t.as_bytes().first() {
        Some(b'+') => (1.0, &t[1..]),
        Some(b'-') => (-1.0, &t[1..]),
        _ => (1.0, t),
    };
    match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    // Underscores are allowed only between two digits.
    let b = body.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_'
            && !(i > 0 && b[i - 1].is_ascii_digit() && i + 1 < b.len() && b[i + 1].is_ascii_digit())
        {
            return None;
        }
    }
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    parse_float(cleaned.as_bytes())
}

/// The first step of Python's `float(str)` (`_PyUnicode_TransformDecimalAndSpaceToASCII`):
/// non-ASCII whitespace becomes a space and a Unicode decimal digit (category Nd, e.g. `１` or
/// `٣`) its ASCII digit; any other non-ASCII character makes the string invalid. Rust's
/// `char::is_whitespace` is Python's `isspace` outside ASCII (both are Unicode's White_Space).
fn python_ascii_number(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if s.is_ascii() {
        return Some(std::borrow::Cow::Borrowed(s));
    }
    s.chars()
        .map(|c| match c {
            c if c.is_ascii() => Some(c),
            c if c.is_whitespace() => Some(' '),
            c => unicode_decimal(c).map(|d| char::from(b'0' + d)),
        })
        .collect::<Option<String>>()
        .map(std::borrow::Cow::Owned)
}

/// The value of a Unicode decimal digit (category Nd). Unicode encodes them in runs of ten,
/// 0 to 9; these are the zeros of Unicode 14.0, the version of the reference's Python 3.11
/// (`[c for c in range(0x110000) if unicodedata.category(chr(c)) == 'Nd' and
/// unicodedata.decimal(chr(c)) == 0]`; every `zero + i`, i < 10, has value i).
fn unicode_decimal(c: char) -> Option<u8> {
    const ZEROS: [u32; 66] = [
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
        0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
        0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    let c = u32::from(c);
    let i = ZEROS.partition_point(|&z| z <= c).checked_sub(1)?;
    u8::try_from(c - ZEROS[i]).ok().filter(|&d| d < 10)
}

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

/// Passes bytes through to the CSV reader while skipping a UTF-8 BOM and following quote
/// state the way pandas' tokenizer does: a quote opens a field only at its start, `""` inside
/// quotes is an escaped quote.
struct QuoteScan<R> {
    inner: R,
    head: Vec<u8>,
    line: u64,
    prev: u8,
    field_start: bool,
    in_quotes: bool,
    /// Saw `"` inside quotes: either a closing quote or the first half of `""`.
    quote_pending: bool,
    quote_line: u64,
    /// Bytes since the current record started, and the line it started on.
    record_len: usize,
    record_line: u64,
    /// [`MAX_RECORD_BYTES`] (tests lower it).
    max_record: usize,
}

/// The longest record (row) read, in bytes: one endless field (`/dev/zero`, the hole at the
/// end of a sparse file) is refused here instead of growing the reader's buffers to GBs. A row
/// of a million 60-byte numbers still fits.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;

/// The reading error a record longer than [`MAX_RECORD_BYTES`] becomes (inside an
/// `std::io::Error`, so it passes through the CSV reader); `line` is where the record starts.
#[derive(Debug)]
struct RecordTooLong {
    line: u64,
    max: usize,
}

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a record longer than {} bytes", self.max)
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> QuoteScan<R> {
    fn new(mut inner: R) -> std::io::Result<Self> {
        let mut head = Vec::with_capacity(3);
        while head.len() < 3 {
            let mut b = [0u8; 3];
            let n = inner.read(&mut b[..3 - head.len()])?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&b[..n]);
        }
        if head == b"\xef\xbb\xbf" {
            head.clear();
        }
        Ok(QuoteScan {
            inner,
            head,
            line: 1,
            prev: 0,
            field_start: true,
            in_quotes: false,
            quote_pending: false,
            quote_line: 0,
            record_len: 0,
            record_line: 1,
            max_record: MAX_RECORD_BYTES,
        })
    }

    /// Counts `n` more bytes read outside quotes; `ends`: the positions of the first and the
    /// last line end among them, if any (a new record starts after each).
    fn count_record(&mut self, n: usize, ends: Option<(usize, usize)>) -> std::io::Result<()> {
        match ends {
            None => self.record_len += n,
            Some((first_end, last_end)) => {
                self.record_len += first_end;
                self.check_record()?;
                self.record_len = n - last_end - 1;
                self.record_line = self.line;
            }
        }
        self.check_record()
    }

    fn check_record(&self) -> std::io::Result<()> {
        if self.record_len > self.max_record {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                RecordTooLong {
                    line: self.record_line,
                    max: self.max_record,
                },
            ));
        }
        Ok(())
    }

    fn observe(&mut self, c: u8) {
        if self.quote_pending {
            self.quote_pending = false;
            if c == b'"' {
                self.prev = c;
                return;
            }
            self.in_quotes = false;
            self.field_start = false;
        }
        if self.in_quotes {
            if c == b'"' {
                self.quote_pending = true;
            }
        } else {
            match c {
                b'"' if self.field_start => {
                    self.in_quotes = true;
                    self.quote_line = self.line;
                }
                b',' => self.field_start = true,
                b'\n' | b'\r' => {
                    self.field_start = true;
                    // The next record starts after this byte (`record_len` counts this one).
                    self.record_len = 0;
                }
                _ => self.field_start = false,
            }
        }
        if c == b'\r' || (c == b'\n' && self.prev != b'\r') {
            self.line += 1;
        }
        if self.record_len == 0 {
            self.record_line = self.line;
        }
        self.prev = c;
    }

    /// After the whole input went through: the line of a quote that never closed.
    fn unterminated_quote_line(&self) -> Option<u64> {
        (self.in_quotes && !self.quote_pending).then_some(self.quote_line)
    }
}

impl<R: Read> Read for QuoteScan<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Once too long, always too long: nothing more is read.
        self.check_record()?;
        let n = if self.head.is_empty() {
            self.inner.read(buf)?
        } else {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            n
        };
        let bytes = &buf[..n];
        // Records between the first and the last line end of `bytes` are shorter than `n`, so
        // only the first and the last can be too long (unless `n` is above the limit, which
        // 1 MiB reads never are with the real limit).
        if !self.in_quotes && !self.quote_pending && n <= self.max_record && !bytes.contains(&b'"')
        {
            // No quote can open here: only lines and the field-start state move, and those
            // in bulk (the same result as observing byte by byte).
            if let Some(&last) = bytes.last() {
                let lines = if bytes.contains(&b'\r') {
                    let mut prev = self.prev;
                    let mut lines = 0;
                    for &c in bytes {
                        lines += u64::from(c == b'\r' || (c == b'\n' && prev != b'\r'));
                        prev = c;
                    }
                    lines
                } else {
                    // Only `\n` ends lines here, unless it completes a `\r\n` begun before.
                    let newlines: u64 = bytes
                        .chunks(255)
                        .map(|c| u64::from(c.iter().fold(0u8, |n, &c| n + u8::from(c == b'\n'))))
                        .sum();
                    newlines - u64::from(bytes[0] == b'\n' && self.prev == b'\r')
                };
                self.line += lines;
                self.prev = last;
                self.field_start = matches!(last, b',' | b'\n' | b'\r');
                let is_end = |c: &u8| matches!(c, b'\n' | b'\r');
                let ends = bytes
                    .iter()
                    .position(is_end)
                    .zip(bytes.iter().rposition(is_end));
                self.count_record(n, ends)?;
            }
        } else {
            for &c in bytes {
                self.record_len += 1;
                self.observe(c);
                self.check_record()?;
            }
        }
        Ok(n)
    }
}

/// Roughly how many CSV bytes go into one batch of rows for conversion: big enough that the
/// hand-over costs nothing, small enough that the batches in flight take a few MiB at most.
const BATCH_BYTES: usize = 256 << 10;

/// At most this many rows go into one batch (for files of very short rows).
const MAX_BATCH_ROWS: usize = 4096;

/// Raw batches the converter thread may hold (one converting, the others queued).
const WORKER_DEPTH: usize = 3;

/// Converted batches that may wait for an earlier batch still in the converter thread.
const MAX_PENDING: usize = 2;

/// Data rows as the tokenizer saw them, all with the same number of fields.
#[derive(Default)]
struct RawRows {
    bytes: Vec<u8>,
    /// Per row `n_cols + 1` offsets into `bytes`: where the row starts and where each field ends.
    bounds: Vec<usize>,
    /// Line of each row (where its record starts).
    lines: Vec<u64>,
}

impl RawRows {
    fn push(&mut self, record: &csv::ByteRecord, line: u64) {
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
struct Rows {
    n_rows: usize,
    columns: Vec<Vec<f32>>,
    states: Vec<FeatureState>,
    labels: Labels,
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

impl FeatureState {
    /// Adds the bookkeeping of the rows that follow, whose first row is row `base`.
    fn append(&mut self, next: FeatureState, base: usize) {
        self.n_bool += next.n_bool;
        self.n_number += next.n_number;
        self.n_float += next.n_float;
        self.n_negative += next.n_negative;
        self.n_above_i64 += next.n_above_i64;
        if self.first_bool_line == 0 {
            self.first_bool_line = next.first_bool_line;
        }
        if self.first_number_line == 0 {
            self.first_number_line = next.first_number_line;
        }
        if self.first_inf_line == 0 {
            self.first_inf_line = next.first_inf_line;
        }
        self.others.extend(
            next.others
                .into_iter()
                .map(|(row, line, text)| (base + row, line, text)),
        );
        self.int_patches
            .extend(next.int_patches.into_iter().map(|(row, v)| (base + row, v)));
    }
}

/// Converts tokenized rows of `n_cols` fields (index, features, label). The only error is a
/// missing label, and it is the first one in the batch.
fn convert(batch: &RawRows, n_cols: usize, path: &Path) -> Result<Rows> {
    let n_features = n_cols - 2;
    let mut rows = Rows::new(n_features, batch.lines.len());
    // The tokenizer checked every row's UTF-8, so this holds; fields then need no check.
    let text = std::str::from_utf8(&batch.bytes).ok();
    for (bounds, &line) in batch.bounds.chunks_exact(n_cols + 1).zip(&batch.lines) {
        // Field `j` of the row (0 = the index column).
        let field = |j: usize| &batch.bytes[bounds[j]..bounds[j + 1]];
        let field_text = |j: usize| text.and_then(|t| t.get(bounds[j]..bounds[j + 1]));
        let row = rows.n_rows;
        for (f, (st, col)) in rows.states.iter_mut().zip(&mut rows.columns).enumerate() {
            let raw = field(f + 1);
            let v = match classify(raw, field_text(f + 1)) {
                Cell::Missing => f32::NAN,
                Cell::Int(i) => {
                    st.n_number += 1;
                    st.n_negative += usize::from(i < 0);
                    st.n_above_i64 += usize::from(i > i128::from(i64::MAX));
                    if st.first_number_line == 0 {
                        st.first_number_line = line;
                    }
                    let via_double = i as f64 as f32;
                    let direct = i as f32;
                    if via_double != direct {
                        st.int_patches.push((row, direct));
                    }
                    via_double
                }
                Cell::Float(x) => {
                    st.n_number += 1;
                    st.n_float += 1;
                    if st.first_number_line == 0 {
                        st.first_number_line = line;
                    }
                    let v = x as f32;
                    if v.is_infinite() && st.first_inf_line == 0 {
                        st.first_inf_line = line;
                    }
                    v
                }
                Cell::Bool(b) => {
                    st.n_bool += 1;
                    if st.first_bool_line == 0 {
                        st.first_bool_line = line;
                    }
                    if b { 1.0 } else { 0.0 }
                }
                Cell::Other => {
                    st.others
                        .push((row, line, String::from_utf8_lossy(raw).into_owned()));
                    f32::NAN
                }
            };
            col.push(v);
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
    Ok(rows)
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
struct Pipeline<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    path: &'env Path,
    n_cols: usize,
    worker_tried: bool,
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
    fn new(
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
    fn failed(&self) -> bool {
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
    fn dispatch(&mut self, batch: RawRows, last: bool) -> RawRows {
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
        let mut raw = empty.or_else(|| self.spare.pop()).unwrap_or_default();
        raw.clear();
        raw
    }

    /// Converts the final batch, waits for the converter thread and returns the rows in file
    /// order, or the first conversion error.
    fn finish(mut self, raw: RawRows) -> Result<Rows> {
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

/// What the CSV reader's error means: the input file could not be read (exit 2, wherever in
/// the file it happened), or a record is longer than [`MAX_RECORD_BYTES`]. With byte records and
/// `flexible`, the reader has no other errors.
fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let source = match e.into_kind() {
        csv::ErrorKind::Io(source) => source,
        other => {
            return err(
                path,
                format!("line {line}: malformed CSV ({other:?}); fix the quoting on that line"),
            );
        }
    };
    if let Some(long) = source
        .get_ref()
        .and_then(|e| e.downcast_ref::<RecordTooLong>())
    {
        return err(
            path,
            format!(
                "line {}: the row starting here is longer than {} MiB (one endless field, or a \
                 quote that never closes); this is not a CSV main.py can train on; check the file",
                long.line,
                long.max >> 20
            ),
        );
    }
    Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_records<R: Read>(
    reader: &mut csv::Reader<R>,
    path: &Path,
    batch_bytes: usize,
    input_len: u64,
    io_error_read_past: &mut bool,
    kind: TargetKind,
) -> Result<Dataset> {
    let mut record = csv::ByteRecord::new();
    let is_blank = |r: &csv::ByteRecord| {
        r.len() == 1
            && r[0]
                .iter()
                .all(|c| matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c))
    };
    // Errors say whether the reader itself failed (an I/O error or a record too long).
    let read = |reader: &mut csv::Reader<R>,
                record: &mut csv::ByteRecord|
     -> std::result::Result<bool, (Error, bool)> {
        let more = reader.read_byte_record(record).map_err(|e| {
            let io = e.is_io_error();
            (csv_error(path, e), io)
        })?;
        // pandas decodes each field as UTF-8 and raises on an invalid one. Field by field: the
        // bytes of a record's fields joined can be valid where a field is not (`\xC3,\xA9`).
        if more
            && !record.as_slice().is_ascii()
            && record.iter().any(|f| std::str::from_utf8(f).is_err())
        {
            let line = record.position().map_or(0, |p| p.line());
            return Err((
                err(
                    path,
                    format!("line {line}: the text is not valid UTF-8; save the file as UTF-8"),
                ),
                false,
            ));
        }
        Ok(more)
    };

    // Header.
    let header = loop {
        if !read(reader, &mut record).map_err(|(e, _)| e)? {
            return Err(err(
                path,
                "the file is empty (no header row); pandas raises EmptyDataError; provide a \
                 header row, an index column, feature columns and a label column"
                    .into(),
            ));
        }
        if !is_blank(&record) {
            break record.clone();
        }
    };
    let header_line = header.position().map_or(1, |p| p.line());
    let mut n_cols = header.len();

    // The first data row.
    loop {
        if !read(reader, &mut record).map_err(|(e, _)| e)? {
            return Err(err(
                path,
                format!(
                    "line {header_line}: the file has a header but no data rows; sklearn cannot \
                     split 0 samples into folds; add data rows"
                ),
            ));
        }
        if !is_blank(&record) {
            break;
        }
    }
    // pandas: a first data row with one extra field means an implicit index column.
    let implicit_index = record.len() == n_cols + 1;
    if implicit_index {
        n_cols += 1;
    }
    let n_data_cols = n_cols.saturating_sub(1);
    if n_data_cols < 2 {
        return Err(err(
            path,
            format!(
                "line {header_line}: the header has {} column(s) but the trainer needs an index \
                 column, at least one feature column and a label column",
                header.len()
            ),
        ));
    }
    let wrong_length = |record: &csv::ByteRecord, line: u64| {
        let what = if record.len() < n_cols {
            "the label and possibly features are missing"
        } else {
            "pandas raises 'Error tokenizing data'"
        };
        err(
            path,
            format!(
                "line {line}: expected {n_cols} fields (as in the {}), saw {} ({what}); make \
                 every row have the same number of fields",
                if implicit_index {
                    "first data row"
                } else {
                    "header"
                },
                record.len()
            ),
        )
    };

    // Tokenize here; convert in batches, partly on a second thread (see `Pipeline`).
    let (tokenized, converted) = std::thread::scope(|scope| {
        let mut pipeline = Pipeline::new(scope, path, n_cols, input_len);
        let mut batch = RawRows::default();
        let mut tokenized = Ok(());
        // `record` holds the first data row.
        let mut have_row = true;
        while have_row {
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != n_cols {
                tokenized = Err((wrong_length(&record, line), false));
                break;
            }
            batch.push(&record, line);
            if batch.bytes.len() >= batch_bytes || batch.lines.len() >= MAX_BATCH_ROWS {
                batch = pipeline.dispatch(batch, false);
                if pipeline.failed() {
                    break;
                }
            }
            have_row = loop {
                match read(reader, &mut record) {
                    Ok(true) if is_blank(&record) => {}
                    Ok(more) => break more,
                    Err(e) => {
                        tokenized = Err(e);
                        break false;
                    }
                }
            };
        }
        (tokenized, pipeline.finish(batch))
    });
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
        columns: columns_rows,
        states,
        labels,
    } = rows;

    let index_offset = usize::from(implicit_index);
    let name_of = |col: usize| -> String {
        // Column `col` of the data (0 = first feature); names come from the header.
        let h = col + 1 - index_offset;
        header
            .get(h)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };

    // Feature dtype checks and sklearn's float32 conversion. numpy casts the DataFrame to
    // float32 straight from the integers only when every feature column has the same integer
    // dtype; otherwise values go through float64 (or Python floats) first.
    let n_features = states.len();
    let kinds: Vec<ColumnKind> = states.iter().map(FeatureState::kind).collect();
    let direct_ints = kinds.iter().all(|&k| k == ColumnKind::Int64)
        || kinds.iter().all(|&k| k == ColumnKind::UInt64);
    let mut columns = Vec::with_capacity(n_features);
    for (f, (st, mut col)) in states.into_iter().zip(columns_rows).enumerate() {
        let file_col = f + 2;
        let mut first_inf_line = st.first_inf_line;
        match kinds[f] {
            ColumnKind::Object => {
                // pandas keeps text; sklearn converts every cell with Python's float().
                let mut bad = None;
                for (row, line, text) in &st.others {
                    match python_float(text) {
                        Some(x) => {
                            col[*row] = x as f32;
                            if col[*row].is_infinite() && !(1..*line).contains(&first_inf_line) {
                                first_inf_line = *line;
                            }
                        }
                        None => {
                            bad = Some((*line, show(text.as_bytes())));
                            break;
                        }
                    }
                }
                if bad.is_none() && st.n_bool > 0 {
                    let what = if st.n_number > 0 {
                        "True/False beside numbers"
                    } else {
                        "True/False beside text"
                    };
                    bad = Some((st.first_bool_line, what.to_owned()));
                }
                if let Some((line, text)) = bad {
                    return Err(err(
                        path,
                        format!(
                            "line {line}, column {file_col} ('{}'): {text} is not a number; \
                             sklearn cannot convert this feature column to float; make every \
                             feature numeric (empty or NA cells are allowed)",
                            name_of(f)
                        ),
                    ));
                }
            }
            ColumnKind::Int64 | ColumnKind::UInt64 if direct_ints => {
                for (i, v) in st.int_patches {
                    col[i] = v;
                }
            }
            _ => {}
        }
        if first_inf_line != 0 {
            return Err(err(
                path,
                format!(
                    "line {first_inf_line}, column {file_col} ('{}'): the value is infinite or \
                     too large for float32; sklearn raises 'Input X contains infinity'; use \
                     finite values below 3.4e38",
                    name_of(f)
                ),
            ));
        }
        col.shrink_to_fit();
        columns.push(col);
    }

    let label_col = n_cols;
    let target = match kind {
        TargetKind::Classes => {
            let (labels, names, kind) = labels.encode(path, label_col)?;
            Target::Classes {
                labels,
                names,
                kind,
            }
        }
        TargetKind::Values => Target::Values(labels.values(path, label_col)?),
    };
    Ok(Dataset {
        n_rows,
        n_features,
        columns,
        target,
        feature_names: (0..n_features).map(name_of).collect(),
        label_name: name_of(n_features),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Dataset> {
        parse_csv(s.as_bytes(), Path::new("in.csv"))
    }

    /// A source that hands out at most `step` bytes per read, as pipes and sockets may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn spawn_read_ahead<'scope, R: Read + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        inner: R,
    ) -> ReadAhead {
        ReadAhead::spawn(scope, inner).unwrap_or_else(|_| panic!("no thread for the read-ahead"))
    }

    #[test]
    fn read_ahead_passes_every_byte_in_order() {
        for (len, step) in [
            (0, 1),
            (5, 1),
            (CHUNK, 4096),
            (CHUNK + 1, 100_000),
            (3 * CHUNK - 7, CHUNK),
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let got = std::thread::scope(|scope| {
                let mut ra = spawn_read_ahead(
                    scope,
                    Trickle {
                        bytes: &bytes,
                        step,
                    },
                );
                let mut got = Vec::new();
                // Odd-sized reads on this side too.
                let mut buf = vec![0; 777];
                loop {
                    let n = ra.read(&mut buf).unwrap();
                    if n == 0 {
                        break got;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            });
            assert!(got == bytes, "len {len}, step {step}");
        }
    }

    #[test]
    fn read_ahead_stops_when_the_parser_stops() {
        let bytes = vec![b'x'; 5 * CHUNK];
        std::thread::scope(|scope| {
            let mut ra = spawn_read_ahead(
                scope,
                Trickle {
                    bytes: &bytes,
                    step: CHUNK,
                },
            );
            let mut buf = [0; 10];
            assert_eq!(ra.read(&mut buf).unwrap(), 10);
            // Dropping the reader early must let the thread end (the scope joins it).
        });
    }

    #[test]
    fn regression_targets_read_as_float64_like_numpy() {
        let values = |s: &str| {
            parse_csv_as(s.as_bytes(), Path::new("in.csv"), TargetKind::Values)
                .map(|d| d.values().unwrap().to_vec())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            values("i,a,y\n0,1,2\n1,2,3.5\n2,3,-1e3\n").unwrap(),
            [2.0, 3.5, -1e3]
        );
        assert_eq!(values("i,a,y\n0,1,True\n1,2,False\n").unwrap(), [1.0, 0.0]);
        let e = values("i,a,y\n0,1,2\n1,2,abc\n").unwrap_err();
        assert!(
            e.contains("line 3, column 3") && e.contains("could not convert"),
            "{e}"
        );
        let e = values("i,a,y\n0,1,2\n1,2,inf\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("infinity"), "{e}");
        let e = values("i,a,y\n0,1,2\n1,2,\n").unwrap_err();
        assert!(
            e.contains("line 3") && e.contains("Input y contains NaN"),
            "{e}"
        );
    }

    #[test]
    fn drops_index_and_splits_label() {
        let d = parse(",a,b,y\n0,1.5,2,x\n1,3,4,y\n").unwrap();
        assert_eq!(d.n_rows, 2);
        assert_eq!(d.n_features, 2);
        assert_eq!(d.columns, [[1.5, 3.0], [2.0, 4.0]]);
        assert_eq!(d.classes(), ["x", "y"]);
        assert_eq!(d.feature_names, ["a", "b"]);
    }

    #[test]
    fn float_and_int_labels_are_one_class() {
        let d = parse("i,a,y\n0,1,1.0\n1,3,1\n2,3,2\n").unwrap();
        assert_eq!(d.classes(), ["1.0", "2.0"]);
        assert_eq!(d.labels(), [0, 0, 1]);
    }

    #[test]
    fn int_labels_sort_numerically_strings_by_code_point() {
        let d = parse("i,a,y\n0,1,10\n1,3,9\n2,3,-1\n").unwrap();
        assert_eq!(d.classes(), ["-1", "9", "10"]);
        let d = parse("i,a,y\n0,1,b\n1,3,B\n2,3,a\n3,3,10\n").unwrap();
        assert_eq!(d.classes(), ["10", "B", "a", "b"]);
        let d = parse("i,a,y\n0,1,TRUE\n1,3,false\n").unwrap();
        assert_eq!(d.classes(), ["False", "True"]);
    }

    #[test]
    fn na_tokens_quotes_whitespace_and_scientific_notation() {
        let d = parse("i,a,b,y\n0,NA,\" 1e-3 \",\"x,\"\"q\"\"\"\n1,,2.5E2,y\n\n   \n2,n/a,-.5,y\n")
            .unwrap();
        assert_eq!(d.n_rows, 3);
        assert!(d.columns[0].iter().all(|x| x.is_nan()));
        assert_eq!(d.columns[1], [0.001, 250.0, -0.5]);
        assert_eq!(d.classes(), ["x,\"q\"", "y"]);
    }

    #[test]
    fn implicit_index_when_first_row_is_one_longer() {
        let d = parse("a,b,y\n0,1,2,5\n1,3,4,6\n").unwrap();
        assert_eq!(d.n_features, 2);
        assert_eq!(d.columns, [[1.0, 3.0], [2.0, 4.0]]);
        assert_eq!(d.classes(), ["5", "6"]);
    }

    #[test]
    fn bad_inputs_name_line_and_column() {
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse("i,a,y\n").unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
        let e = parse("i,a,y\n0,1,2\n1,3,4,5\n").unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("expected 3 fields"),
            "{e}"
        );
        let e = parse("i,a,y\n0,1,2\n1,3\n").unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = parse("i,a,y\n0,1,2\n1,abc,4\n").unwrap_err().to_string();
        let e2 = parse("i,a,y\n0,1,2\n1,1_000,4\n2,True,4\n")
            .unwrap_err()
            .to_string();
        assert!(e2.contains("line 4, column 2"), "{e2}");
        assert!(
            e.contains("line 3, column 2 ('a')") && e.contains("\"abc\""),
            "{e}"
        );
        let e = parse("i,a,y\n0,inf,2\n1,3,4\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2, column 2") && e.contains("infinite"),
            "{e}"
        );
        let e = parse("i,a,y\n0,1e39,2\n1,3,4\n").unwrap_err().to_string();
        assert!(e.contains("infinite"), "{e}");
        let e = parse("i,a,y\n0,1,2.5\n1,3,4\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2, column 3") && e.contains("continuous"),
            "{e}"
        );
        let e = parse("i,a,y\n0,1,\n1,3,4\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing"), "{e}");
        let e = parse("i,a,y\n0,1,2\n1,\"3,4\n2,1,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("never closed"), "{e}");
        assert!(parse("i,a,y\n0,1,\"x\"\"y\"\n1,3,\"z\r\nw\"\n").is_ok());
        let e = parse("i,y\n0,1\n").unwrap_err().to_string();
        assert!(e.contains("at least one feature"), "{e}");
        let e = parse_csv(b"i,a,y\n0,1,\xff\n", Path::new("in.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8") && e.contains("line 2"), "{e}");
        // A two-byte character split by a delimiter: each field is invalid on its own.
        let e = parse_csv(b"i,a,b,y\n0,1,2,1\n1,\xc3,\xa9,1\n", Path::new("in.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("UTF-8") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn text_feature_columns_convert_like_python_float() {
        let d = parse("i,a,b,y\n0,1_000,1,1\n1, 2.5 ,2,2\n2,NAN,3,1\n3,-inf_x,3,1\n");
        assert!(d.unwrap_err().to_string().contains("line 5, column 2"));
        let d = parse("i,a,b,y\n0,1_000,1,1\n1, 2.5 ,2,2\n2,NAN,3,1\n").unwrap();
        assert_eq!(d.columns[0][0], 1000.0);
        assert_eq!(d.columns[0][1], 2.5);
        assert!(d.columns[0][2].is_nan());
        // Python's float() reads Unicode decimal digits and strips Unicode spaces; other
        // non-ASCII digits (superscripts, fractions) and spaces inside a number are errors.
        let d = parse("i,a,b,y\n0,\u{ff11},1,1\n1,\u{3000}\u{ff12}.\u{ff15}\u{a0},2,2\n2,\u{661}\u{662}e\u{663},3,1\n3,\u{ff11}_\u{ff10},3,1\n")
            .unwrap();
        assert_eq!(d.columns[0], [1.0, 2.5, 12000.0, 10.0]);
        for bad in ["\u{b2}", "\u{2155}", "1\u{a0}2", "\u{ff4e}\u{ff41}\u{ff4e}"] {
            let e = parse(&format!("i,a,y\n0,1,1\n1,{bad},2\n")).unwrap_err();
            assert!(e.to_string().contains("line 3, column 2"), "{bad:?}: {e}");
        }
        assert_eq!(unicode_decimal('0'), Some(0));
        assert_eq!(unicode_decimal('\u{1fbf9}'), Some(9));
        assert_eq!(unicode_decimal('\u{1fbfa}'), None);
        assert_eq!(unicode_decimal('/'), None);
    }

    #[test]
    fn big_integers_convert_to_float32_from_the_integer() {
        // 2^53 + 1 + 2^29: via f64 it rounds twice; int64 -> float32 rounds once.
        let d = parse("i,a,y\n0,9007199791611905,1\n1,1,2\n").unwrap();
        assert_eq!(d.columns[0][0], 9007199791611905i64 as f32);
        // Beside a float column numpy goes through float64 and rounds twice.
        let d = parse("i,a,b,y\n0,9007199791611905,0.5,1\n1,1,0.5,2\n").unwrap();
        assert_eq!(d.columns[0][0], 9007199791611905i64 as f64 as f32);
        assert_ne!(d.columns[0][0], 9007199791611905i64 as f32);
    }

    /// `parse_reader` with batches of about `batch_bytes`, as a comparable value.
    fn parse_batched(bytes: &[u8], batch_bytes: usize) -> std::result::Result<String, String> {
        parse_reader(bytes, Path::new("in.csv"), batch_bytes, bytes.len() as u64)
            .map(|d| format!("{d:?}"))
            .map_err(|e| e.to_string())
    }

    /// Parses `bytes` with one row per batch, a few rows per batch and the default batches;
    /// every way must give the same dataset or the same error.
    fn parse_every_batching(bytes: &[u8]) -> std::result::Result<String, String> {
        let want = parse_batched(bytes, BATCH_BYTES);
        for batch_bytes in [1, 100, 3000] {
            assert_eq!(
                parse_batched(bytes, batch_bytes),
                want,
                "batch_bytes {batch_bytes}"
            );
        }
        want
    }

    /// A CSV of `n` rows (row `i` is on line `i + 2`) with int, float, NA, big-int and text
    /// cells; `edit` may rewrite any row's fields.
    fn synthetic(n: usize, edit: impl Fn(usize, &mut Vec<String>)) -> Vec<u8> {
        let mut out = String::from(",a,b,c,d,y\n");
        for i in 0..n {
            let mut fields = vec![
                i.to_string(),
                (i % 17).to_string(),
                format!("{}.25", i as i64 - 300),
                if i % 5 == 0 {
                    "NA".into()
                } else {
                    format!("{}e-1", i % 9)
                },
                (9007199791611905u64 + i as u64).to_string(),
                ["x", "y", "z"][i % 3].to_owned(),
            ];
            edit(i, &mut fields);
            out.push_str(&fields.join(","));
            out.push('\n');
            if i % 97 == 0 {
                out.push_str("  \n");
            }
        }
        out.into_bytes()
    }

    #[test]
    fn batching_does_not_change_the_dataset() {
        let ok = |bytes: &[u8]| parse_every_batching(bytes).unwrap();
        ok(&synthetic(1000, |_, _| {}));
        // Text cells (converted by Python's float later) and integral labels, across batches.
        let d = ok(&synthetic(1000, |i, f| {
            if i % 250 == 3 {
                f[1] = "1_000".into();
            }
            f[5] = (i % 4).to_string();
        }));
        assert!(d.contains("1000.0"), "{d}");
        let text = synthetic(1000, |i, f| {
            if i % 250 == 3 {
                f[1] = "1_000".into();
            }
        });
        let d = parse_reader(&text[..], Path::new("in.csv"), 1, text.len() as u64).unwrap();
        for i in 0..1000 {
            let want = if i % 250 == 3 {
                1000.0
            } else {
                (i % 17) as f32
            };
            assert_eq!(d.columns[0][i], want, "row {i}");
        }
        for csv in [
            &b"\xef\xbb\xbfi,a,y\r\n0,\"1\",\"x\"\"y\"\r\n\r\n1,2.5,z\r\n2,,z\r\n"[..],
            b"a,y\n0,1,2\n1,3,4\n\n2,True,4\n",
            b"i,a,y\n0,1,True\n1,2,false\n",
        ] {
            // Some of these fail; either way, every batching agrees.
            let _ = parse_every_batching(csv);
        }
        // Short rows: batches end at `MAX_BATCH_ROWS` rows.
        let short: String = (0..10_000)
            .map(|i| format!("{i},{},{}\n", i % 7, i % 3))
            .collect();
        let d = ok(format!("i,a,y\n{short}").as_bytes());
        assert!(d.starts_with("Dataset { n_rows: 10000,"), "{}", &d[..40]);
        let whole = parse_csv(&synthetic(700, |_, _| {}), Path::new("in.csv")).unwrap();
        assert_eq!(whole.n_rows, 700);
        // Integers past 2^24 convert to float32 from the integer, in every batch.
        assert_eq!(whole.columns[3][650], (9007199791611905i64 + 650) as f32);
        assert_eq!(whole.columns[1][601], 301.25);
        assert_eq!(whole.labels()[..3], [0, 1, 2]);
    }

    #[test]
    fn batching_keeps_the_first_error_in_file_order() {
        // Row `row` of `synthetic` (blank lines follow rows 0, 97, 194, ...).
        let fails = |bytes: &[u8], row: usize, what: &str| {
            let line = row + 2 + row.div_ceil(97);
            let e = parse_every_batching(bytes).unwrap_err();
            assert!(
                e.contains(&format!("line {line}")) && e.contains(what),
                "want line {line} ({what}), got {e}"
            );
        };
        let missing_label = |at: usize| {
            move |i: usize, f: &mut Vec<String>| {
                if i == at {
                    f[5] = "NA".into();
                }
            }
        };
        // A missing label (found while converting) before a short row (found while tokenizing),
        // and the other way round.
        fails(
            &synthetic(1000, |i, f| {
                missing_label(5)(i, f);
                if i == 900 {
                    f.pop();
                }
            }),
            5,
            "label is missing",
        );
        fails(
            &synthetic(1000, |i, f| {
                missing_label(900)(i, f);
                if i == 5 {
                    f.pop();
                }
            }),
            5,
            "expected 6 fields",
        );
        // Both problems in one row: the row's length comes first.
        fails(
            &synthetic(1000, |i, f| {
                if i == 400 {
                    f[5] = String::new();
                    f.push("extra".into());
                }
            }),
            400,
            "expected 6 fields",
        );
        // Two missing labels in different batches; the first wins.
        fails(
            &synthetic(1000, |i, f| {
                missing_label(300)(i, f);
                missing_label(900)(i, f);
            }),
            300,
            "label is missing",
        );
        // A missing label in the last row, after many batches.
        fails(
            &synthetic(1000, missing_label(999)),
            999,
            "label is missing",
        );
        // Bad UTF-8 after a missing label, and before one.
        let mut bytes = synthetic(1000, missing_label(300));
        let at = bytes.len() - 5;
        bytes[at] = 0xff;
        fails(&bytes, 300, "label is missing");
        let mut bytes = synthetic(1000, missing_label(999));
        bytes[40] = 0xff;
        fails(&bytes, 0, "not valid UTF-8");
        // An unclosed quote beats every earlier problem.
        fails(
            &synthetic(1000, |i, f| {
                missing_label(300)(i, f);
                if i == 900 {
                    f[2] = "\"3".into();
                }
            }),
            900,
            "never closed",
        );
        // Errors found after all rows are merged still name the first row in file order.
        fails(
            &synthetic(1000, |i, f| {
                if i == 100 || i == 800 {
                    f[1] = format!("abc{i}");
                }
            }),
            100,
            "\"abc100\" is not a number",
        );
        fails(
            &synthetic(1000, |i, f| {
                if i == 650 || i == 660 {
                    f[1] = "True".into();
                }
            }),
            650,
            "True/False beside numbers",
        );
        fails(
            &synthetic(1000, |i, f| {
                if i == 600 || i == 610 {
                    f[2] = "-inf".into();
                }
            }),
            600,
            "infinite",
        );
        fails(
            &synthetic(1000, |i, f| {
                f[5] = (i % 3).to_string();
                if i == 400 || i == 800 {
                    f[5] = "2.5".into();
                }
            }),
            400,
            "not a whole number",
        );
    }

    #[test]
    fn rust_float_parser_agrees_with_the_pandas_grammar() {
        for s in [
            "1.",
            ".5",
            ".",
            "+",
            "-",
            "1e5",
            "1E+05",
            "1e-5",
            "1e",
            "e5",
            "1.e5",
            ".e5",
            "+.5e1",
            "inf",
            "-Infinity",
            "+INF",
            "infinit",
            "infs",
            "nan",
            "NAN",
            "-nan",
            "+NaN",
            "nan(1)",
            "1_0",
            "0x10",
            "1.5.2",
            "1d5",
            "+-1",
            "--1",
            "1e+-5",
            "1e5.0",
            "١",
            "1,5",
            "∞",
            "0.1e400",
            "1e400",
            "-1e-400",
            "123456789012345678901234567890123",
        ] {
            // classify's debug assertion compares the two.
            let want = parse_float(s.as_bytes()).map(f64::to_bits);
            let got = match classify(s.as_bytes(), Some(s)) {
                Cell::Float(x) => Some(x.to_bits()),
                Cell::Int(i) => Some((i as f64).to_bits()),
                _ => None,
            };
            assert_eq!(got, want, "{s:?}");
            let got = match classify(s.as_bytes(), None) {
                Cell::Float(x) => Some(x.to_bits()),
                Cell::Int(i) => Some((i as f64).to_bits()),
                _ => None,
            };
            assert_eq!(got, want, "{s:?}");
        }
    }

    /// A source that fails once after its bytes instead of ending, then ends.
    struct FailsAtEnd<'a> {
        bytes: &'a [u8],
        failed: bool,
    }

    impl Read for FailsAtEnd<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.bytes.is_empty() {
                if self.failed {
                    return Ok(0);
                }
                self.failed = true;
                return Err(std::io::Error::other("device gone"));
            }
            let n = out.len().min(self.bytes.len()).min(4096);
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_after_a_bad_row_hides_a_later_unclosed_quote() {
        // The serial reader stopped at the missing label and met the read error while looking
        // for an unclosed quote, so it reported the label, whoever meets the read error now.
        let bytes = synthetic(1000, |i, f| {
            if i == 5 {
                f[5] = "NA".into();
            }
            if i == 900 {
                f[2] = "\"3".into();
            }
        });
        for batch_bytes in [1, 100, 3000, BATCH_BYTES] {
            let source = FailsAtEnd {
                bytes: &bytes,
                failed: false,
            };
            let e = parse_reader(source, Path::new("in.csv"), batch_bytes, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("line 8, column 6: the label is missing"), "{e}");
        }
        // Without the missing label, the read error itself is reported and the quote is not.
        let bytes = synthetic(1000, |_, _| {});
        for batch_bytes in [1, 3000, BATCH_BYTES] {
            let source = FailsAtEnd {
                bytes: &bytes,
                failed: false,
            };
            let e = parse_reader(source, Path::new("in.csv"), batch_bytes, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("device gone"), "{e}");
        }
    }

    #[test]
    fn a_read_error_anywhere_is_an_io_error() {
        // Past the first MiB (the read-ahead's first chunk) and past the first batches.
        let bytes = synthetic(100_000, |_, _| {});
        assert!(bytes.len() > 3 * CHUNK);
        for batch_bytes in [3000, BATCH_BYTES] {
            let source = FailsAtEnd {
                bytes: &bytes,
                failed: false,
            };
            let e = std::thread::scope(|scope| {
                let source = spawn_read_ahead(scope, source);
                parse_reader(source, Path::new("in.csv"), batch_bytes, 0).unwrap_err()
            });
            assert!(matches!(e, Error::Read { .. }), "{e}");
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("device gone"), "{e}");
        }
    }

    /// `head`, then `n` bytes of `fill`, parsed; the error's text.
    fn parse_endless(head: &[u8], fill: u8, n: usize) -> Error {
        let source = head.chain(std::io::repeat(fill).take(n as u64));
        parse_reader(source, Path::new("in.csv"), BATCH_BYTES, 0).unwrap_err()
    }

    #[test]
    fn a_record_longer_than_the_limit_is_refused() {
        let too_long = MAX_RECORD_BYTES + 2 * CHUNK;
        // One endless field of NULs (a sparse file's hole, /dev/zero), unquoted and quoted,
        // after a few rows, in the header, and as the first data row.
        for (head, line) in [
            (&b"i,a,y\n0,1,2\n1,2,3\n2,"[..], 4),
            (b"i,a,y\n0,1,2\n1,2,3\n2,\"", 4),
            (b"i,a,y\n0,1,2\r\n1,\"2\n\",3\n", 5),
            (b"i,a,y", 1),
            (b"i,a,y\n", 2),
        ] {
            let e = parse_endless(head, 0, too_long);
            assert_eq!(e.exit_code(), 1, "{e}");
            let want = format!("line {line}: the row starting here is longer than 64 MiB");
            assert!(e.to_string().contains(&want), "{e}");
        }
        // Rows up to the limit are read: one long field (an error of its own, the row is
        // short), and a long label.
        let e = parse_endless(b"i,a,y\n0,1,2\n1,", b'7', MAX_RECORD_BYTES - 10);
        assert!(e.to_string().contains("line 3: expected 3 fields"), "{e}");
        let long = "x".repeat(MAX_RECORD_BYTES - 10);
        let d = parse(&format!("i,a,y\n0,1,{long}\n1,2,y\n")).unwrap();
        assert_eq!(d.classes()[0].len(), MAX_RECORD_BYTES - 10);
    }

    /// Bytes through a `QuoteScan` with a limit of `max` bytes per record.
    fn scan(bytes: &[u8], max: usize, read_size: usize) -> std::io::Result<()> {
        let mut scan = QuoteScan::new(bytes)?;
        scan.max_record = max;
        let mut buf = vec![0; read_size];
        while scan.read(&mut buf)? > 0 {}
        Ok(())
    }

    #[test]
    fn the_record_limit_counts_each_record_from_its_start() {
        // Records of exactly 20 bytes (without the line end), quoted or not, LF or CRLF: read
        // in pieces of every size, a file much longer than the limit passes, and one byte more
        // in one record does not.
        let rows = |row: &str, n: usize| row.repeat(n).into_bytes();
        for (ok, long) in [
            ("1234567890,123456789\n", "1234567890,1234567890\n"),
            ("123456789,1234567890\r\n", "123456789,12345678901\r\n"),
            ("\"123456\n,78\",1234567\n", "\"123456\n,78\",12345678\n"),
            (
                "\"1234\"\"4\",\"\",1,34567\n",
                "\"1234\"\"4\",\"\",1,345678\n",
            ),
        ] {
            for read_size in [1, 7, 20, 64, 1000] {
                assert!(scan(&rows(ok, 500), 20, read_size).is_ok(), "{ok:?}");
                let mut bad = rows(ok, 300);
                bad.extend(long.as_bytes());
                bad.extend(rows(ok, 300));
                let Err(e) = scan(&bad, 20, read_size) else {
                    panic!("{long:?} {read_size} passed");
                };
                let line = if long.contains("\n,") { 601 } else { 301 };
                assert_eq!(e.to_string(), "a record longer than 20 bytes", "{long:?}");
                let got = e.get_ref().unwrap().downcast_ref::<RecordTooLong>();
                assert_eq!(got.unwrap().line, line, "{long:?} {read_size}");
            }
        }
    }
}
