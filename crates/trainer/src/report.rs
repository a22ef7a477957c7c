//! The `--json` report: what was trained on, with which parameters, the per-fold scores and
//! how long each stage took. Only this file knows the report's JSON shape.

use std::time::Instant;

use serde::Serialize;

use crate::Config;
use crate::cv::CvScore;
use crate::dataset::Dataset;
use crate::params::{Estimator, ForestParams, ForestValidParams};
use linfa::ParamGuard;

/// Parameters as they appear in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportParams {
    /// The estimator class (`RandomForestClassifier`, ...).
    pub estimator: String,
    /// `n_estimators`.
    pub n_estimators: usize,
    /// `max_depth` (`null` = unlimited).
    pub max_depth: Option<usize>,
    /// `min_samples_split`.
    pub min_samples_split: usize,
    /// `min_samples_leaf`.
    pub min_samples_leaf: usize,
    /// `max_features` as given (`sqrt`, `log2`, `all`, a count or a fraction).
    pub max_features: String,
    /// Features drawn per split on this input: `max_features` resolved against its columns.
    pub max_features_per_split: usize,
    /// `gini`, `entropy`, `squared_error`, `friedman_mse`, `absolute_error` or `poisson`.
    pub criterion: String,
    /// `bootstrap`.
    pub bootstrap: bool,
    /// `random_state`.
    pub random_state: u32,
    /// Number of folds.
    pub cv: usize,
    /// The scorer (sklearn's name; the default is the estimator's `score`: `accuracy` for
    /// classifiers, `r2` for regressors).
    pub scoring: String,
    /// The estimator's own defaults, to leave out flags that would repeat them.
    #[serde(skip)]
    defaults: ForestValidParams,
}

impl ReportParams {
    /// The trainer flags that set these parameters (`--max-depth` only when limited;
    /// `--estimator`, `--bootstrap`/`--no-bootstrap` and `--scoring` only when they differ
    /// from the estimator's default).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.defaults.estimator != Estimator::default() {
            flags.push(format!("--estimator={}", self.estimator));
        }
        flags.push(format!("--n-estimators={}", self.n_estimators));
        if let Some(depth) = self.max_depth {
            flags.push(format!("--max-depth={depth}"));
        }
        flags.extend([
            format!("--min-samples-split={}", self.min_samples_split),
            format!("--min-samples-leaf={}", self.min_samples_leaf),
            format!("--max-features={}", self.max_features),
            format!("--criterion={}", self.criterion),
        ]);
        if self.bootstrap != self.defaults.bootstrap {
            flags.push(
                if self.bootstrap {
                    "--bootstrap"
                } else {
                    "--no-bootstrap"
                }
                .into(),
            );
        }
        flags.push(format!("--random-state={}", self.random_state));
        flags.push(format!("--cv={}", self.cv));
        // The estimator's `score` is the default; other scorers need the flag.
        let default_scoring = if self.defaults.estimator.is_regressor() {
            "r2"
        } else {
            "accuracy"
        };
        if self.scoring != default_scoring {
            flags.push(format!("--scoring={}", self.scoring));
        }
        flags
    }
}

/// Stage timings in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    /// Reading and parsing the CSV.
    pub read_csv_s: f64,
    /// Fitting and scoring every fold.
    pub cross_validation_s: f64,
    /// Everything up to writing the outputs.
    pub total_s: f64,
}

/// The run report written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// This crate's version.
    pub trainer_version: String,
    /// The input CSV.
    pub input: String,
    /// Data rows.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Distinct labels in sklearn's order.
    pub classes: Vec<String>,
    /// The parameters used (every one, defaults included).
    pub parameters: ReportParams,
    /// Trainer flags that set exactly these parameters, each one explicit
    /// (`--n-estimators=10`, ...), so the report names the settings it ran with in the form
    /// a command line or an orchestrator sweep uses.
    pub flags: Vec<String>,
    /// Score per fold (`null` where sklearn's scoring failed: `nan`).
    pub fold_scores: Vec<f64>,
    /// Mean score (the score main.py prints; `null` for `nan`).
    pub mean: f64,
    /// Standard deviation of the fold scores (`np.std`).
    pub std: f64,
    /// The exact text written to OUTPUT.
    pub output_text: String,
    /// sklearn warnings raised on the way.
    pub warnings: Vec<String>,
    /// Worker threads used.
    pub threads: usize,
    /// Stage timings.
    pub timings: Timings,
}

impl Report {
    #[expect(
        clippy::too_many_arguments,
        reason = "assembles one report from the run's pieces"
    )]
    pub(crate) fn new(
        config: &Config,
        data: &Dataset,
        score: &CvScore,
        threads: usize,
        text: &str,
        started: Instant,
        read_done: Instant,
        cv_done: Instant,
    ) -> Self {
        let p = &config.params;
        let defaults = ForestParams::for_estimator(p.estimator)
            .check()
            .unwrap_or_else(|_| p.clone());
        let parameters = ReportParams {
            estimator: p.estimator.to_string(),
            n_estimators: p.n_estimators,
            max_depth: p.max_depth,
            min_samples_split: p.min_samples_split,
            min_samples_leaf: p.min_samples_leaf,
            max_features: p.max_features.to_string(),
            max_features_per_split: p.max_features.resolve(data.n_features),
            criterion: p.criterion.to_string(),
            bootstrap: p.bootstrap,
            random_state: p.random_state,
            cv: p.n_folds,
            scoring: score.scoring.to_string(),
            defaults,
        };
        Report {
            trainer_version: env!("CARGO_PKG_VERSION").to_owned(),
            input: config.input.display().to_string(),
            rows: data.n_rows,
            features: data.n_features,
            classes: data.classes().to_vec(),
            flags: parameters.flags(),
            parameters,
            fold_scores: score.fold_scores.clone(),
            mean: score.mean,
            std: score.std,
            output_text: text.to_owned(),
            warnings: score
                .warning
                .iter()
                .chain(&score.scoring_warnings)
                .cloned()
                .collect(),
            threads,
            timings: Timings {
                read_csv_s: (read_done - started).as_secs_f64(),
                cross_validation_s: (cv_done - read_done).as_secs_f64(),
                total_s: started.elapsed().as_secs_f64(),
            },
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
