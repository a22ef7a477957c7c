//! `trainer`: a byte-for-byte exact Rust port of main.py.
//!
//! main.py reads a CSV with `pd.read_csv(path, index_col=0)`, takes every column but the last as
//! features and the last as the label, runs
//! `cross_val_score(RandomForestClassifier(n_estimators=10, random_state=0), X, y, cv=5)` with
//! scikit-learn 1.9.1 and writes `The model score: {scores.mean()}` (no newline). [`run`] does
//! the same and writes the same bytes, for every CSV main.py accepts; inputs main.py rejects (or
//! would score as `nan`) are errors naming the file, line and column.
//!
//! # Layout
//!
//! * `dataset`: pandas-compatible CSV parsing and sklearn's input checks → [`Dataset`].
//! * `params`: [`ForestParams`] / [`ForestValidParams`], checked through linfa's `ParamGuard`.
//! * `rng`: numpy's MT19937 `randint` and sklearn's `rand_r`.
//! * `tree`: the classifier's depth-first builder and fused best splitter (packed class keys,
//!   Gini screen, subtree blocks), with the missing-value path.
//! * `splitter`, `criterion`, `sort`: the exact-order builder (sklearn's sample order, best
//!   and random splitters) with the criteria as a trait (squared error, Poisson, absolute
//!   error, Gini/entropy for extra trees) and sklearn's introsort.
//! * `forest`: per-tree seeds, bootstrap weights, probability averaging, linfa `Fit`/`Predict`.
//! * `cv`: `StratifiedKFold` and `cross_val_score`, parallel over (fold, tree) with rayon.
//! * `scoring`: scikit-learn's scorers (`--scoring`), one fold at a time.
//! * `pyfloat`: Python's float `repr`.
//! * `cli` (only file that knows clap) and `report` (the `--json` report).
//!
//! # Example
//!
//! ```no_run
//! use linfa::ParamGuard;
//! use std::path::Path;
//!
//! let data = trainer::read_csv(Path::new("input_files/iris.csv"))?;
//! let params = trainer::ForestParams::new().n_estimators(10).check()?;
//! let score = trainer::cross_validate(&data, &params, Path::new("input_files/iris.csv"))?;
//! assert_eq!(trainer::score_text(score.mean), "The model score: 0.9533333333333334");
//! # Ok::<(), trainer::Error>(())
//! ```

#![warn(missing_docs)]

pub mod cli;
mod criterion;
mod cv;
mod dataset;
mod error;
mod fold_proba;
mod forest;
mod label;
mod params;
pub mod pyfloat;
mod report;
mod resources;
mod rng;
pub mod scoring;
mod sort;
mod splitter;
mod tree;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use cv::{CvScore, cross_validate, kfold_test_folds, numpy_sum, stratified_test_folds};
pub use dataset::{Dataset, Target, TargetKind, parse_csv, parse_csv_as, read_csv, read_csv_as};
pub use error::{Error, Result, one_line};
pub use forest::{RandomForest, fit_forest};
pub use params::{Criterion, Estimator, ForestParams, ForestValidParams, MaxFeatures};
pub use report::Report;
pub use rng::{Mt19937, RandR};
pub use scoring::Scoring;
pub use tree::Tree;

/// Single hot paths of the model, for the criterion benches (`benches/trainer.rs`). Not a
/// stable API.
#[doc(hidden)]
pub mod hot {
    use crate::{Dataset, ForestValidParams, Tree};

    /// Grows the first tree of the forest `params` describes (its estimator's builder and
    /// criterion) on every row of `data`.
    pub fn fit_tree(data: &Dataset, params: &ForestValidParams) -> Tree {
        let grower = crate::forest::Grower::for_data(params, data);
        crate::forest::with_first_tree(data, params, |d, w, s, c| grower.grow(d, w, s, c))
    }

    /// The split search at that tree's root: its feature and threshold, if it splits.
    pub fn root_split(data: &Dataset, params: &ForestValidParams) -> Option<(usize, f64)> {
        let grower = crate::forest::Grower::for_data(params, data);
        crate::forest::with_first_tree(data, params, |d, w, s, c| grower.root_split(d, w, s, c))
    }
}

/// A checked run configuration (made from the command line by `cli`).
#[derive(Debug, Clone)]
pub struct Config {
    /// The input CSV.
    pub input: PathBuf,
    /// Where the score line goes (written atomically).
    pub output: PathBuf,
    /// Model and cross-validation parameters.
    pub params: ForestValidParams,
    /// Worker threads; `None` uses every core, and more than the cores are clamped to them.
    pub threads: Option<usize>,
    /// Optional path of the JSON report.
    pub json: Option<PathBuf>,
}

/// main.py's output line for a mean score.
pub fn score_text(mean: f64) -> String {
    format!("The model score: {}", pyfloat::repr(mean))
}

/// Reads the input, cross-validates, and writes OUTPUT (and the JSON report if asked).
///
/// sklearn's warnings (a class with fewer members than folds) go to stderr. Nothing is written
/// unless the whole run succeeds, and each file appears atomically (temporary file + rename).
pub fn run(config: &Config) -> Result<Report> {
    let started = Instant::now();
    resources::check_forest_size(config.params.n_estimators, &config.input)?;
    let (pool, threads) = resources::thread_pool(resources::thread_count(config.threads))?;
    let kind = if config.params.estimator.is_regressor() {
        TargetKind::Values
    } else {
        TargetKind::Classes
    };
    let data = read_csv_as(&config.input, kind)?;
    let read_done = Instant::now();
    let score = pool.install(|| cross_validate(&data, &config.params, &config.input))?;
    let cv_done = Instant::now();
    for w in score.warning.iter().chain(&score.scoring_warnings) {
        let line = format!("trainer: warning: {}: {w}", config.input.display());
        eprintln!("{}", error::one_line(&line));
    }
    // A `nan` (a fold whose scoring failed or is undefined) or an infinite mean is what
    // main.py writes too, after the same warnings.
    let text = score_text(score.mean);
    let report = Report::new(
        config, &data, &score, threads, &text, started, read_done, cv_done,
    );
    if let Some(json) = &config.json {
        write_atomically(json, report.to_json().as_bytes())?;
    }
    write_atomically(&config.output, text.as_bytes())?;
    Ok(report)
}

/// Writes OUTPUT (or the JSON report) through the workspace's one atomic write: a random temp
/// name opened with `create_new`, synced, renamed, directory synced; a target that is not a
/// regular file (`/dev/null`) is refused rather than replaced.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    fsutil::write_atomic(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
