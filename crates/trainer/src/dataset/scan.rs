//! What goes on under the `csv` crate's tokenizer: [`QuoteScan`] follows quotes as pandas'
//! tokenizer does (a BOM skipped, the line of a quote that never closes, the record length
//! limit), and [`csv_error`] says what the tokenizer's errors mean.

use std::io::Read;
use std::path::Path;

use super::err;
use crate::error::Error;

/// Passes bytes through to the CSV reader while skipping a UTF-8 BOM and following quote
/// state the way pandas' tokenizer does: a quote opens a field only at its start, `""` inside
/// quotes is an escaped quote.
pub(super) struct QuoteScan<R> {
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
    pub(super) max_record: usize,
}

/// The longest record (row) read, in bytes: one endless field (`/dev/zero`, the hole at the
/// end of a sparse file) is refused here instead of growing the reader's buffers to GBs. A row
/// of a million 60-byte numbers still fits.
pub(super) const MAX_RECORD_BYTES: usize = 64 << 20;

/// The reading error a record longer than [`MAX_RECORD_BYTES`] becomes (inside an
/// `std::io::Error`, so it passes through the CSV reader); `line` is where the record starts.
#[derive(Debug)]
pub(super) struct RecordTooLong {
    pub(super) line: u64,
    max: usize,
}

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a record longer than {} bytes", self.max)
    }
}

impl std::error::Error for RecordTooLong {}

impl<R: Read> QuoteScan<R> {
    pub(super) fn new(mut inner: R) -> std::io::Result<Self> {
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
    pub(super) fn unterminated_quote_line(&self) -> Option<u64> {
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

/// What the CSV reader's error means: the input file could not be read (exit 2, wherever in
/// the file it happened), or a record is longer than [`MAX_RECORD_BYTES`]. With byte records and
/// `flexible`, the reader has no other errors.
pub(super) fn csv_error(path: &Path, e: csv::Error) -> Error {
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
