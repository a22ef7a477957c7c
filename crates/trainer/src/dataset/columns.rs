//! The feature columns: what pandas' dtype for each would be (from what its cells looked like),
//! and sklearn's conversion of the table to float32, with its refusals (text that `float()`
//! cannot read, True/False beside numbers or text, values beyond float32).

use std::path::Path;

use super::cell::{Cell, python_float};
use super::{err, show};
use crate::error::Result;

/// Per feature column: what its cells looked like, to infer the pandas dtype afterwards. Kept
/// small (56 bytes): a file of 10^6 columns holds one per column for the whole read.
#[derive(Default)]
pub(super) struct FeatureState {
    // Counts of cells; rows are numbered with u32 (`MAX_ROWS`), so they fit.
    n_bool: u32,
    n_number: u32,
    n_float: u32,
    n_negative: u32,
    n_above_i64: u32,
    first_bool_line: u64,
    first_number_line: u64,
    /// The first line with a number too large for float32 (0: none so far).
    first_inf_line: u64,
    /// The cells most columns never have, allocated at the first one.
    rare: Option<Box<Rare>>,
}

#[derive(Default)]
struct Rare {
    /// Cells that are neither numbers, bools nor NA: (row, line, text). pandas then keeps the
    /// whole column as strings and sklearn converts each with Python's `float()`.
    others: Vec<(usize, u64, String)>,
    /// Integer cells whose float32 differs when cast from the integer rather than from the
    /// double (only beyond 2^24 with low bits set): applied when numpy casts directly.
    int_patches: Vec<(usize, f32)>,
}

impl FeatureState {
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn others(&self) -> &[(usize, u64, String)] {
        self.rare.as_ref().map_or(&[], |r| &r.others)
    }
}

impl FeatureState {
    /// The pandas dtype of the column.
    fn kind(&self) -> ColumnKind {
        if !self.others().is_empty() || (self.n_bool > 0 && self.n_number > 0) {
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
                self.n_negative += u32::from(i < 0);
                self.n_above_i64 += u32::from(i > i128::from(i64::MAX));
                if self.first_number_line == 0 {
                    self.first_number_line = line;
                }
                let via_double = i as f64 as f32;
                let direct = i as f32;
                if via_double != direct {
                    self.rare().int_patches.push((row, direct));
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
                let text = String::from_utf8_lossy(raw).into_owned();
                self.rare().others.push((row, line, text));
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
        if let Some(next) = next.rare {
            let rare = self.rare();
            let others = next.others.into_iter();
            (rare.others).extend(others.map(|(row, line, text)| (base + row, line, text)));
            let patches = next.int_patches.into_iter();
            (rare.int_patches).extend(patches.map(|(row, v)| (base + row, v)));
        }
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
                for (i, v) in st.rare.map(|r| r.int_patches).unwrap_or_default() {
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
        for (row, line, text) in self.others() {
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
