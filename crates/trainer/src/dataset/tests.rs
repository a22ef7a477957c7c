//! The reader's tests: read-ahead, batching, the pandas grammar, errors in file order, read
//! errors and the record limit.

use super::cell::{Cell, classify, parse_float, unicode_decimal};
use super::scan::{MAX_RECORD_BYTES, QuoteScan, RecordTooLong};
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
    // Each input, and what its error must contain.
    let cases: [(&[u8], &[&str]); 14] = [
        (b"", &["empty"]),
        (b"i,a,y\n", &["no data rows"]),
        (b"i,a,y\n0,1,2\n1,3,4,5\n", &["line 3", "expected 3 fields"]),
        (b"i,a,y\n0,1,2\n1,3\n", &["line 3"]),
        (
            b"i,a,y\n0,1,2\n1,abc,4\n",
            &["line 3, column 2 ('a')", "\"abc\""],
        ),
        (
            b"i,a,y\n0,1,2\n1,1_000,4\n2,True,4\n",
            &["line 4, column 2"],
        ),
        (
            b"i,a,y\n0,inf,2\n1,3,4\n",
            &["line 2, column 2", "infinite"],
        ),
        (b"i,a,y\n0,1e39,2\n1,3,4\n", &["infinite"]),
        (
            b"i,a,y\n0,1,2.5\n1,3,4\n",
            &["line 2, column 3", "continuous"],
        ),
        (b"i,a,y\n0,1,\n1,3,4\n", &["line 2", "missing"]),
        (
            b"i,a,y\n0,1,2\n1,\"3,4\n2,1,1\n",
            &["line 3", "never closed"],
        ),
        (b"i,y\n0,1\n", &["at least one feature"]),
        (b"i,a,y\n0,1,\xff\n", &["UTF-8", "line 2"]),
        // A two-byte character split by a delimiter: each field is invalid on its own.
        (b"i,a,b,y\n0,1,2,1\n1,\xc3,\xa9,1\n", &["UTF-8", "line 3"]),
    ];
    for (csv, want) in cases {
        let e = parse_csv(csv, Path::new("in.csv")).unwrap_err().to_string();
        assert!(want.iter().all(|w| e.contains(w)), "{csv:?}: {e}");
    }
    assert!(parse("i,a,y\n0,1,\"x\"\"y\"\n1,3,\"z\r\nw\"\n").is_ok());
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

/// `bytes` fails, with every batching, at row `row` of `synthetic` (blank lines follow rows 0,
/// 97, 194, ...) with a message containing `what`.
fn fails(bytes: &[u8], row: usize, what: &str) {
    let line = row + 2 + row.div_ceil(97);
    let e = parse_every_batching(bytes).unwrap_err();
    assert!(
        e.contains(&format!("line {line}")) && e.contains(what),
        "want line {line} ({what}), got {e}"
    );
}

#[test]
fn batching_keeps_the_first_error_in_file_order() {
    let missing_label = |at: usize| {
        move |i: usize, f: &mut Vec<String>| {
            if i == at {
                f[5] = "NA".into();
            }
        }
    };
    // A missing label (found while converting) before a short row (found while tokenizing),
    // and the other way round.
    let label_and_short = |label_at: usize, short_at: usize| {
        synthetic(1000, |i, f| {
            missing_label(label_at)(i, f);
            if i == short_at {
                f.pop();
            }
        })
    };
    fails(&label_and_short(5, 900), 5, "label is missing");
    fails(&label_and_short(900, 5), 5, "expected 6 fields");
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
}

#[test]
fn errors_found_after_merging_name_the_first_row_in_file_order() {
    // Rows `a` and `b` both get `value(row)` in field `col`, and the error names `a`.
    let first_of_two = |[a, b]: [usize; 2], col: usize, value: fn(usize) -> String, what: &str| {
        let edit = |i: usize, f: &mut Vec<String>| {
            if i == a || i == b {
                f[col] = value(i);
            }
        };
        fails(&synthetic(1000, edit), a, what);
    };
    first_of_two(
        [100, 800],
        1,
        |i| format!("abc{i}"),
        "\"abc100\" is not a number",
    );
    first_of_two(
        [650, 660],
        1,
        |_| "True".into(),
        "True/False beside numbers",
    );
    first_of_two([600, 610], 2, |_| "-inf".into(), "infinite");
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

/// The error text of `bytes` read from a source that fails at its end, in batches of about
/// `batch_bytes`.
fn fail_at_end(bytes: &[u8], batch_bytes: usize) -> String {
    let source = FailsAtEnd {
        bytes,
        failed: false,
    };
    parse_reader(source, Path::new("in.csv"), batch_bytes, 0)
        .unwrap_err()
        .to_string()
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
        let e = fail_at_end(&bytes, batch_bytes);
        assert!(e.contains("line 8, column 6: the label is missing"), "{e}");
    }
    // Without the missing label, the read error itself is reported and the quote is not.
    let bytes = synthetic(1000, |_, _| {});
    for batch_bytes in [1, 3000, BATCH_BYTES] {
        let e = fail_at_end(&bytes, batch_bytes);
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

#[test]
fn a_column_s_bookkeeping_stays_small() {
    // One per column for the whole read: 10^6 columns hold 10^6 of them.
    assert!(std::mem::size_of::<super::columns::FeatureState>() <= 56);
}
