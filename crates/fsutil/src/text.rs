//! Untrusted text made safe for one terminal line: the workspace's one escape, shared by the
//! trainer (its one-line errors quote CSV header and field text) and the orchestrator (file
//! names, trainer stderr and service messages in its messages and summary).
//!
//! A file name or a CSV header can hold any character. Printed raw, `\n` splits a one-line
//! error in two, `\r` and escape sequences rewrite what the terminal shows, bidi overrides
//! reorder it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) and bidi control escaped Rust-style
/// (`\n`, `\t`, `\r`, `\u{1b}`), so it stays on one line and shows what it contains.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Characters that change how a terminal shows the rest of the line.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_borrowed() {
        assert!(matches!(one_line("iris.csv"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(one_line("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(one_line("x\u{7f}\u{85}"), "x\\u{7f}\\u{85}");
        assert_eq!(one_line("evil\u{202e}vsc.exe"), "evil\\u{202e}vsc.exe");
        assert_eq!(one_line("é ü 中"), "é ü 中");
    }
}
