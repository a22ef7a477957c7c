//! Property tests: no input makes the trainer panic. Arbitrary bytes and structured mutations
//! of a valid CSV go through parsing and (when parsing succeeds) the full cross-validation.

use std::path::Path;

use linfa::ParamGuard;
use proptest::prelude::*;

fn base_csv() -> String {
    let mut s = String::from(",a,b,c,label\n");
    for i in 0..24 {
        s.push_str(&format!(
            "{i},{},{}.5,{},{}\n",
            i % 7,
            i % 3,
            (i * 13) % 11,
            i % 3
        ));
    }
    s
}

/// Parses and, if that succeeds, cross-validates with a small forest. Errors are fine; panics
/// are not (proptest reports them as failures).
fn exercise(bytes: &[u8]) {
    if let Ok(data) = trainer::parse_csv(bytes, Path::new("fuzz.csv")) {
        let params = trainer::ForestParams::new()
            .n_estimators(2)
            .n_folds(3)
            .check()
            .unwrap();
        let _ = trainer::cross_validate(&data, &params, Path::new("fuzz.csv"));
    }
}

const TOKENS: &[&str] = &[
    "",
    "NA",
    "nan",
    "inf",
    "-inf",
    "1e39",
    "abc",
    "\"",
    "\"\"",
    ",",
    "\n",
    "\r",
    "True",
    "1_0",
    "  ",
    "-0",
    "1e-45",
    "3.4028235e38",
    "\u{feff}",
    "\"a,b\"",
    "9223372036854775808",
    "-1",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_csvs_never_panic(
        edits in proptest::collection::vec((0usize..2000, 0usize..TOKENS.len(), 0u8..3), 1..6)
    ) {
        let mut s = base_csv().into_bytes();
        for (pos, tok, op) in edits {
            let pos = pos % (s.len() + 1);
            match op {
                0 => { s.splice(pos..pos, TOKENS[tok].bytes()); }
                1 => { let end = (pos + tok + 1).min(s.len()); s.drain(pos..end); }
                _ => {
                    // Replace the field around `pos` with a token.
                    let start = s[..pos].iter().rposition(|&c| c == b',' || c == b'\n').map_or(0, |i| i + 1);
                    let end = s[pos..].iter().position(|&c| c == b',' || c == b'\n').map_or(s.len(), |i| pos + i);
                    s.splice(start..end, TOKENS[tok].bytes());
                }
            }
        }
        exercise(&s);
    }
}
