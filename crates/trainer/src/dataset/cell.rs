//! One cell as pandas' C parser reads it (NA tokens, int64, `xstrtod` floats, bools), and
//! Python's `float()`, which sklearn applies to the cells of a text column.

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

/// How a cell parsed.
pub(super) enum Cell {
    Missing,
    /// An integer in pandas' int64 grammar (kept as i128 to cover uint64 labels).
    Int(i128),
    Float(f64),
    Bool(bool),
    Other,
}

/// `text`: `raw` as a str when the caller has it (saves checking the UTF-8 again).
#[inline]
pub(super) fn classify(raw: &[u8], text: Option<&str>) -> Cell {
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
pub(super) fn parse_float(t: &[u8]) -> Option<f64> {
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
pub(super) fn unicode_decimal(c: char) -> Option<u8> {
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
