//! Untrusted text (input file names, trainer stderr, service messages) made safe for where it
//! is shown: one terminal line, or one spreadsheet cell.
//!
//! A file name or a CSV header can hold any character. Printed raw, `\n` splits a one-line
//! error in two, `\r` and escape sequences rewrite what the terminal shows, bidi overrides
//! reorder it; in `report.csv`, a cell starting with `=`, `+`, `-` or `@` is a formula to a
//! spreadsheet. The one-line escape lives in `fsutil::text`, which the trainer shares.

use std::borrow::Cow;

pub use fsutil::text::one_line;

/// A CSV cell a spreadsheet shows as text: a value starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading `'` (OWASP's advice for CSV injection). Only for free
/// text; numbers this program formats itself are written as they are.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_quoted() {
        for f in ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(csv_cell(f), format!("'{f}"));
        }
        assert_eq!(csv_cell("iris.csv"), "iris.csv");
        assert_eq!(csv_cell(""), "");
    }
}
