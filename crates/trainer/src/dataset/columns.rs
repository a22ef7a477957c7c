//! The feature columns: what pandas' dtype for each would be (from what its cells looked like),
//! and sklearn's conversion of the table to float32, with its refusals (text that `float()`
//! cannot read, True/False beside numbers or text, values beyond float32).

use std::path::Path;

use super::cell::{Cell, python_float};
use super::{err, show};
use crate::error::Result;

/// Per feature column: what its cells looked like, to infer the pandas dtype afterwards.
#[derive(Default)]
pub(super) struct FeatureState {
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

impl FeatureState {
    /// Notes cell `cell` (text `raw`) of row `row` on line `line` and returns its float32, as
    /// numpy would cast it through float64 (NaN for a missing or a text cell, which is
    /// converted later if the column turns out to be text).
    #[inline]
    pub(super) fn record(&mut self, cell: Cell, row: usize, line: u64, raw: &[u8]) -> f32 {
        match cell {
            Cell::Missing => f32::NAN,
            Cell::Int(i) => {
                self.n_number += 1;
                self.n_negative += usize::from(i < 0);
                self.n_above_i64 += usize::from(i > i128::from(i64::MAX));
                if self.first_number_line == 0 {
                    self.first_number_line = line;
                }
                let via_double = i as f64 as f32;
                let direct = i as f32;
                if via_double != direct {
                    self.int_patches.push((row, direct));
                }
                via_double
            }
            Cell::Float(x) => {
                self.n_number += 1;
                self.n_float += 1;
                if self.first_number_line == 0 {
                    self.first_number_line = line;
                }
                let v = x as f32;
                if v.is_infinite() && self.first_inf_line == 0 {
                    self.first_inf_line = line;
                }
                v
            }
            Cell::Bool(b) => {
                self.n_bool += 1;
                if self.first_bool_line == 0 {
                    self.first_bool_line = line;
                }
                if b { 1.0 } else { 0.0 }
            }
            Cell::Other => {
                self.others
                    .push((row, line, String::from_utf8_lossy(raw).into_owned()));
                f32::NAN
            }
        }
    }

    /// Adds the bookkeeping of the rows that follow, whose first row is row `base`.
    pub(super) fn append(&mut self, next: FeatureState, base: usize) {
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

/// sklearn's float32 conversion of the feature columns (`columns[f]` as the rows were read,
/// `states[f]` what its cells looked like); `name_of(f)` is column `f`'s header name. numpy
/// casts the DataFrame to float32 straight from the integers only when every feature column
/// has the same integer dtype; otherwise values go through float64 (or Python floats) first.
pub(super) fn to_float32(
    states: Vec<FeatureState>,
    columns: Vec<Vec<f32>>,
    path: &Path,
    name_of: impl Fn(usize) -> String,
) -> Result<Vec<Vec<f32>>> {
    let kinds: Vec<ColumnKind> = states.iter().map(FeatureState::kind).collect();
    let direct_ints = kinds.iter().all(|&k| k == ColumnKind::Int64)
        || kinds.iter().all(|&k| k == ColumnKind::UInt64);
    let mut out = Vec::with_capacity(states.len());
    for (f, (st, mut col)) in states.into_iter().zip(columns).enumerate() {
        let file_col = f + 2;
        let mut first_inf_line = st.first_inf_line;
        match kinds[f] {
            ColumnKind::Object => {
                if let Some((line, text)) = st.convert_text(&mut col, &mut first_inf_line) {
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
        out.push(col);
    }
    Ok(out)
}

impl FeatureState {
    /// A text column: pandas keeps the text and sklearn converts every cell with Python's
    /// `float()`, into `col`. Returns the first refusal (line, what), in file order:
    /// a cell `float()` cannot read, else True/False beside numbers or text. Moves
    /// `first_inf_line` to a converted cell that is too large when it comes first.
    fn convert_text(&self, col: &mut [f32], first_inf_line: &mut u64) -> Option<(u64, String)> {
        for (row, line, text) in &self.others {
            match python_float(text) {
                Some(x) => {
                    col[*row] = x as f32;
                    if col[*row].is_infinite() && !(1..*line).contains(&*first_inf_line) {
                        *first_inf_line = *line;
                    }
                }
                None => return Some((*line, show(text.as_bytes()))),
            }
        }
        if self.n_bool > 0 {
            let what = if self.n_number > 0 {
                "True/False beside numbers"
            } else {
                "True/False beside text"
            };
            return Some((self.first_bool_line, what.to_owned()));
        }
        None
    }
}
