//! The label column: each row holds the index of its label's distinct text, each distinct text
//! is kept and classified once, and at the end the column's dtype is inferred as pandas infers
//! it and the classes are put in scikit-learn's order.
//!
//! Texts are kept once per distinct label, not once per row: a file of 17M rows with three
//! classes keeps three strings and a `u32` per row. They are needed until the end, because one
//! text label anywhere makes pandas read the whole column as strings (then `1` and `1.0` are two
//! classes). This module does not know about CSV syntax or features.

use std::collections::HashMap;
use std::collections::TryReserveError;
use std::path::Path;

use crate::error::{Error, Result};
use crate::scoring::LabelKind;

/// How a distinct label text parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LabelCell {
    /// An integer in pandas' int64 grammar (i128 to cover uint64 labels).
    Int(i128),
    Float(f64),
    Bool(bool),
    /// Anything else: the column is text.
    Text,
}

/// The labels of consecutive rows of the file.
#[derive(Default)]
pub(crate) struct Labels {
    /// Per row, the index of its distinct label.
    rows: Vec<u32>,
    /// Per distinct label: how it parsed and the line where it first appears.
    kinds: Vec<(LabelCell, u64)>,
    /// Distinct label text -> its index.
    index: HashMap<Box<str>, u32>,
}

impl Labels {
    /// Labels with room for `n_rows` rows.
    pub(crate) fn with_capacity(n_rows: usize) -> Self {
        Labels {
            rows: Vec::with_capacity(n_rows),
            ..Labels::default()
        }
    }

    /// Adds the next row's label. `classify` runs once per distinct text, on its first row (so
    /// its error, e.g. a missing label, names the first row that has that text).
    pub(crate) fn push(
        &mut self,
        text: &str,
        line: u64,
        classify: impl FnOnce() -> Result<LabelCell>,
    ) -> Result<()> {
        let id = match self.index.get(text) {
            Some(&id) => id,
            None => {
                let id = self.kinds.len() as u32;
                self.kinds.push((classify()?, line));
                self.index.insert(text.into(), id);
                id
            }
        };
        self.rows.push(id);
        Ok(())
    }

    /// Tries to make room for `n_rows` rows in all (an optimization: failing is fine).
    pub(crate) fn reserve(&mut self, n_rows: usize) {
        let _ = self
            .rows
            .try_reserve_exact(n_rows.saturating_sub(self.rows.len()));
    }

    /// Appends the labels of the rows that follow these in the file.
    pub(crate) fn append(&mut self, next: Labels) -> Result<(), TryReserveError> {
        self.rows.try_reserve(next.rows.len())?;
        let mut remap = vec![0u32; next.kinds.len()];
        for (text, id) in next.index {
            let kinds = &mut self.kinds;
            let (cell, line) = next.kinds[id as usize];
            // A label seen before keeps its earlier first line.
            remap[id as usize] = *self.index.entry(text).or_insert_with(|| {
                kinds.push((cell, line));
                (kinds.len() - 1) as u32
            });
        }
        self.rows
            .extend(next.rows.iter().map(|&id| remap[id as usize]));
        Ok(())
    }

    /// Infers the label dtype as pandas does and encodes the classes in sklearn's sorted order:
    /// (class of each row, the classes rendered). `label_col` is the column for messages.
    pub(crate) fn encode(
        self,
        path: &Path,
        label_col: usize,
    ) -> Result<(Vec<u32>, Vec<String>, LabelKind)> {
        let Labels {
            mut rows,
            kinds,
            index,
        } = self;
        let mut texts: Vec<Box<str>> = vec![Box::from(""); kinds.len()];
        for (text, id) in index {
            texts[id as usize] = text;
        }
        let (class_of, classes, kind) = encode_distinct(path, label_col, &kinds, &texts)?;
        for id in &mut rows {
            *id = class_of[*id as usize];
        }
        Ok((rows, classes, kind))
    }
}

impl Labels {
    /// The column as float64 target values, as a regressor reads it: pandas' dtype, then
    /// `np.asarray(y, dtype=float64)` (an object column converts each text with Python's
    /// `float`). Infinite and NaN values are refused with sklearn's message. Also returns the
    /// file line of the first negative value (what the Poisson criterion refuses).
    pub(crate) fn values(self, path: &Path, label_col: usize) -> Result<(Vec<f64>, Option<u64>)> {
        let Labels { rows, kinds, index } = self;
        let mut texts: Vec<Box<str>> = vec![Box::from(""); kinds.len()];
        for (text, id) in index {
            texts[id as usize] = text;
        }
        let has = |f: &dyn Fn(&LabelCell) -> bool| kinds.iter().any(|(c, _)| f(c));
        // pandas keeps a column of numbers, or of booleans, typed; a mix is text.
        let text = has(&|c| matches!(c, LabelCell::Text));
        let mixed = has(&|c| matches!(c, LabelCell::Bool(_)))
            && has(&|c| matches!(c, LabelCell::Int(_) | LabelCell::Float(_)));
        let numeric = !text && !mixed;
        // In file order, so that the first bad row is the one named.
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        order.sort_by_key(|&id| kinds[id].1);
        let mut distinct = vec![0.0; kinds.len()];
        let mut first_negative = None;
        for id in order {
            let ((cell, line), text) = (&kinds[id], &texts[id]);
            let v = match (numeric, cell) {
                (true, LabelCell::Int(i)) => *i as f64,
                (true, LabelCell::Float(x)) => *x,
                (true, LabelCell::Bool(b)) => f64::from(u8::from(*b)),
                _ => crate::dataset::python_float(text).ok_or_else(|| {
                    Error::input(
                        path,
                        format!(
                            "line {line}, column {label_col}: the target {} is not a number; \
                             sklearn raises 'could not convert string to float'; a regressor \
                             needs numbers in the last column",
                            crate::dataset::show(text.as_bytes())
                        ),
                    )
                })?,
            };
            let problem = if v.is_nan() {
                Some("the target is NaN; sklearn raises 'Input y contains NaN'")
            } else if v.is_infinite() {
                Some("the target is infinite; sklearn raises 'Input y contains infinity'")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::input(
                    path,
                    format!("line {line}, column {label_col}: {problem}; use finite numbers"),
                ));
            }
            if v < 0.0 && first_negative.is_none() {
                first_negative = Some(*line);
            }
            distinct[id] = v;
        }
        let values = rows.iter().map(|&id| distinct[id as usize]).collect();
        Ok((values, first_negative))
    }
}

/// The class of each distinct label, and the classes, for the column's inferred dtype.
fn encode_distinct(
    path: &Path,
    label_col: usize,
    kinds: &[(LabelCell, u64)],
    texts: &[Box<str>],
) -> Result<(Vec<u32>, Vec<String>, LabelKind)> {
    let any = |f: &dyn Fn(&LabelCell) -> bool| kinds.iter().any(|(c, _)| f(c));
    let any_text = any(&|c| matches!(c, LabelCell::Text));
    let any_float = any(&|c| matches!(c, LabelCell::Float(_)));
    let any_bool = any(&|c| matches!(c, LabelCell::Bool(_)));
    let any_int = any(&|c| matches!(c, LabelCell::Int(_)));
    let ints_mix_signs_beyond_i64 = any(&|c| matches!(c, LabelCell::Int(i) if *i < 0))
        && any(&|c| matches!(c, LabelCell::Int(i) if *i > i128::from(i64::MAX)));

    if !any_text && !any_bool && !any_float && !ints_mix_signs_beyond_i64 {
        let values: Vec<i128> = kinds
            .iter()
            .map(|(c, _)| match c {
                LabelCell::Int(i) => *i,
                _ => 0,
            })
            .collect();
        let (class_of, classes) = encode_sorted(&values, |a, b| a.cmp(b), |v| v.to_string());
        return Ok((class_of, classes, LabelKind::Int));
    }
    if !any_text && !any_bool {
        let (class_of, classes) = encode_floats(path, label_col, kinds, texts)?;
        return Ok((class_of, classes, LabelKind::Float));
    }
    if !any_text && !any_int && !any_float {
        let values: Vec<bool> = kinds
            .iter()
            .map(|(c, _)| matches!(c, LabelCell::Bool(true)))
            .collect();
        let render = |v: &bool| if *v { "True" } else { "False" }.to_owned();
        let (class_of, classes) = encode_sorted(&values, |a, b| a.cmp(b), render);
        return Ok((class_of, classes, LabelKind::Bool));
    }
    // Object/str column: numpy sorts Python strings by code point (= UTF-8 byte order).
    let (class_of, classes) = encode_sorted(
        texts,
        |a, b| a.as_bytes().cmp(b.as_bytes()),
        |s| s.to_string(),
    );
    Ok((class_of, classes, LabelKind::Str))
}

/// A float64 label column: non-finite or non-integral labels are "continuous" for sklearn;
/// the first such row in the file is named.
fn encode_floats(
    path: &Path,
    label_col: usize,
    kinds: &[(LabelCell, u64)],
    texts: &[Box<str>],
) -> Result<(Vec<u32>, Vec<String>)> {
    let values: Vec<f64> = kinds
        .iter()
        .map(|(c, _)| match c {
            LabelCell::Int(i) => *i as f64,
            LabelCell::Float(x) => *x,
            LabelCell::Bool(_) | LabelCell::Text => 0.0,
        })
        .collect();
    // The first line, in file order, of a distinct label with the property.
    let first = |bad: &dyn Fn(f64) -> bool| {
        kinds
            .iter()
            .zip(&values)
            .enumerate()
            .filter(|(_, ((_, _), v))| bad(**v))
            .min_by_key(|(_, ((_, line), _))| *line)
            .map(|(id, ((_, line), _))| (id, *line))
    };
    if let Some((_, line)) = first(&|v| !v.is_finite()) {
        return Err(Error::input(
            path,
            format!(
                "line {line}, column {label_col}: the label is infinite; sklearn raises \
                 'Input y contains infinity'; use class labels"
            ),
        ));
    }
    if let Some((id, line)) = first(&|v| v.fract() != 0.0) {
        return Err(Error::input(
            path,
            format!(
                "line {line}, column {label_col}: the label {} is not a whole number, so the \
                 target is continuous and sklearn fails every fit ('All the fits failed'); use \
                 --estimator RandomForestRegressor (or ExtraTreesRegressor) for a continuous \
                 target, or class labels (integers or text) in the last column",
                crate::dataset::show(texts[id].as_bytes())
            ),
        ));
    }
    Ok(encode_sorted(
        &values,
        |a, b| a.total_cmp(b),
        |v| crate::pyfloat::repr(*v),
    ))
}

/// Sorts the distinct `values` with `cmp`; equal values are one class. Returns the class of
/// each value and the classes rendered.
fn encode_sorted<T>(
    values: &[T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    render: impl Fn(&T) -> String,
) -> (Vec<u32>, Vec<String>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| cmp(&values[a], &values[b]));
    let mut class_of = vec![0u32; values.len()];
    let mut classes = Vec::new();
    let mut prev: Option<usize> = None;
    for &i in &order {
        let new_class =
            prev.is_none_or(|p| cmp(&values[p], &values[i]) != std::cmp::Ordering::Equal);
        if new_class {
            classes.push(render(&values[i]));
        }
        class_of[i] = (classes.len() - 1) as u32;
        prev = Some(i);
    }
    (class_of, classes)
}
