//! Command-line flags (the only file that knows clap) and their conversion into a checked
//! [`Config`]. Flag names and defaults mirror scikit-learn's parameters and main.py's values.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use linfa::ParamGuard;

use crate::Config;
use crate::error::Error;
use crate::params::{Criterion, Estimator, ForestParams, ForestValidParams, MaxFeatures};
use crate::scoring::Scoring;

/// Exact Rust port of main.py: random forest + stratified k-fold cross-validation.
///
/// Writes `The model score: <mean accuracy>` to OUTPUT, byte-identical to main.py
/// (scikit-learn 1.9.1). Exit codes: 0 ok, 1 bad input or parameters, 2 I/O failure or not
/// enough memory or threads. Limits: a CSV row (record) of at most 64 MiB, at most 2^32 - 1
/// rows; --threads above the core count means all cores.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about, long_about = None)]
pub struct Cli {
    /// Input CSV: header row, index column first, features, label last. Limits: each row
    /// (record) at most 64 MiB, at most 4294967295 rows (more is refused with exit 1).
    #[arg(required_unless_present = "check", conflicts_with = "check")]
    pub input: Option<PathBuf>,
    /// Output file for the score line (written atomically, no trailing newline).
    #[arg(required_unless_present = "check", conflicts_with = "check")]
    pub output: Option<PathBuf>,
    /// Only check the flags (exit 0, or 1 with one line naming the problem), without INPUT and
    /// OUTPUT: nothing is read or written. Rules that depend on the data (more folds than a
    /// class has members) are checked only by a real run.
    #[arg(long)]
    pub check: bool,
    /// scikit-learn estimator class; each uses its own defaults for max_features, criterion
    /// and bootstrap (regressors read the last column as numbers and use KFold).
    #[arg(long, value_name = "NAME", default_value = "RandomForestClassifier", value_parser = parse_estimator)]
    pub estimator: Estimator,
    /// Number of trees (n_estimators).
    #[arg(long, default_value_t = 10)]
    pub n_estimators: usize,
    /// Maximum tree depth (max_depth); unlimited when omitted.
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Minimum samples required to split a node (min_samples_split).
    #[arg(long, default_value_t = 2)]
    pub min_samples_split: usize,
    /// Minimum samples in a leaf (min_samples_leaf).
    #[arg(long, default_value_t = 1)]
    pub min_samples_leaf: usize,
    /// Features drawn per split: sqrt, log2, all, an integer count or a fraction in (0, 1];
    /// default: sqrt for classifiers, 1.0 for regressors.
    #[arg(long)]
    pub max_features: Option<String>,
    /// Split criterion; default: gini for classifiers, squared_error for regressors.
    #[arg(long, value_enum)]
    pub criterion: Option<CriterionArg>,
    /// Fit every tree on a bootstrap sample (the random forests' default).
    #[arg(long, conflicts_with = "no_bootstrap")]
    pub bootstrap: bool,
    /// Fit every tree on the whole training fold (the extra trees' default).
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Seed of the forest (random_state), 0 ..= 4294967295.
    #[arg(long, default_value_t = 0)]
    pub random_state: u32,
    /// Number of cross-validation folds (stratified for classifiers, KFold for regressors).
    #[arg(long, default_value_t = 5)]
    pub cv: usize,
    /// scikit-learn scorer for each fold (cross_val_score's scoring); default: the
    /// estimator's own score (accuracy). A fold whose scorer fails in sklearn scores nan.
    #[arg(long, value_name = "NAME", value_parser = parse_scoring)]
    pub scoring: Option<Scoring>,
    /// Worker threads (default and most: all cores). The output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write a JSON report (fold scores, parameters, timings) to this path.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// `--criterion` values (`log_loss` is sklearn's other name for `entropy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CriterionArg {
    /// Gini impurity.
    Gini,
    /// Shannon entropy.
    Entropy,
    /// Same as entropy.
    #[value(name = "log_loss")]
    LogLoss,
    /// Mean squared error (regressors).
    #[value(name = "squared_error")]
    SquaredError,
    /// Deprecated in sklearn 1.9.1: the same as squared_error, with a FutureWarning.
    #[value(name = "friedman_mse")]
    FriedmanMse,
    /// Mean absolute error (regressors; the median in each leaf).
    #[value(name = "absolute_error")]
    AbsoluteError,
    /// Half Poisson deviance (regressors; non-negative targets).
    Poisson,
}

fn parse_estimator(s: &str) -> Result<Estimator, String> {
    Estimator::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Estimator::ALL.iter().map(|e| e.name()).collect();
        format!("unknown estimator; use one of {}", names.join(", "))
    })
}

fn parse_max_features(s: &str) -> Result<MaxFeatures, String> {
    match s {
        "sqrt" => Ok(MaxFeatures::Sqrt),
        "log2" => Ok(MaxFeatures::Log2),
        "all" | "None" | "none" => Ok(MaxFeatures::All),
        _ => {
            if let Ok(k) = s.parse::<usize>() {
                Ok(MaxFeatures::Count(k))
            } else if let Ok(f) = s.parse::<f64>() {
                Ok(MaxFeatures::Fraction(f))
            } else {
                Err(format!(
                    "--max-features {s:?} is not sqrt, log2, all, an integer or a fraction"
                ))
            }
        }
    }
}

fn parse_scoring(s: &str) -> Result<Scoring, String> {
    Scoring::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Scoring::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scorer; use one of {}", names.join(", "))
    })
}

impl Cli {
    /// The checked model parameters the flags describe, or what is wrong with them. Reads
    /// nothing: this is all `--check` does.
    pub fn params(&self) -> Result<ForestValidParams, String> {
        let cli = self;
        let mut params = ForestParams::for_estimator(cli.estimator);
        if let Some(m) = &cli.max_features {
            params = params.max_features(parse_max_features(m)?);
        }
        if let Some(c) = cli.criterion {
            params = params.criterion(match c {
                CriterionArg::Gini => Criterion::Gini,
                CriterionArg::Entropy | CriterionArg::LogLoss => Criterion::Entropy,
                CriterionArg::SquaredError => Criterion::SquaredError,
                CriterionArg::FriedmanMse => Criterion::FriedmanMse,
                CriterionArg::AbsoluteError => Criterion::AbsoluteError,
                CriterionArg::Poisson => Criterion::Poisson,
            });
        }
        if cli.bootstrap || cli.no_bootstrap {
            params = params.bootstrap(cli.bootstrap);
        }
        if cli.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        params
            .n_estimators(cli.n_estimators)
            .max_depth(cli.max_depth)
            .min_samples_split(cli.min_samples_split)
            .min_samples_leaf(cli.min_samples_leaf)
            .random_state(cli.random_state)
            .n_folds(cli.cv)
            .scoring(cli.scoring)
            .check()
            .map_err(|e| e.to_string())
    }
}

/// What `trainer --check` prints on stderr when the flags are refused (exit 1).
pub fn check_message(problem: &str) -> String {
    format!("trainer: error: {problem}; fix the command line (see trainer --help)")
}

impl TryFrom<Cli> for Config {
    type Error = Error;

    fn try_from(cli: Cli) -> Result<Config, Error> {
        // clap requires both paths unless --check is given, and `main` never converts a
        // --check command line.
        let (Some(input), Some(output)) = (cli.input.clone(), cli.output.clone()) else {
            return Err(Error::Params(
                "INPUT and OUTPUT are required unless --check is given".into(),
            ));
        };
        let params = cli.params().map_err(|msg| {
            Error::input(
                &input,
                format!("{msg}; fix the command line (see trainer --help)"),
            )
        })?;
        Ok(Config {
            input,
            output,
            params,
            threads: cli.threads,
            json: cli.json,
        })
    }
}

/// Parses the process arguments. `Err` carries clap's error; `--help`/`--version` are errors of
/// kind `DisplayHelp`/`DisplayVersion` that should be printed and exit 0.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(args)
}

/// Renders a clap error as what `main` prints: full text for help/version, otherwise one line.
/// Returns (text, exit code).
pub fn render_clap_error(e: &clap::Error) -> (String, u8) {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => (e.render().to_string(), 0),
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            (format!("trainer: error: {first}; see trainer --help"), 1)
        }
    }
}
