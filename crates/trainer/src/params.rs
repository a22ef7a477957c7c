//! Forest hyperparameters in linfa's checked-params shape.
//!
//! [`ForestParams`] is the unchecked builder with consuming, field-named setters; its defaults are
//! main.py's (`RandomForestClassifier(n_estimators=10, random_state=0)` with `cv=5`). The only
//! validation is [`ParamGuard::check_ref`], which enforces scikit-learn's parameter constraints;
//! only a [`ForestValidParams`] reaches the model and cross-validation code.

use linfa::ParamGuard;

use crate::error::Error;
use crate::scoring::Scoring;

/// How many features each split may draw (`max_features`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    /// `"sqrt"`: `max(1, int(sqrt(p)))` (the default).
    Sqrt,
    /// `"log2"`: `max(1, int(log2(p)))`.
    Log2,
    /// `None`: every feature.
    All,
    /// An integer count; fitting fails if it exceeds the number of features.
    Count(usize),
    /// A fraction in (0, 1]: `max(1, int(fraction * p))`.
    Fraction(f64),
}

impl MaxFeatures {
    /// The number of features drawn per split for `n_features` columns, as sklearn computes
    /// `max_features_`. An integer count is used as given, even above `n_features`: sklearn
    /// 1.9.1 does not clamp it, and the splitter then simply draws until every feature has been
    /// seen (which is not always the same as a count of exactly `n_features`).
    pub fn resolve(self, n_features: usize) -> usize {
        let p = n_features as f64;
        match self {
            MaxFeatures::Sqrt => (p.sqrt() as usize).max(1),
            MaxFeatures::Log2 => (p.log2() as usize).max(1),
            MaxFeatures::All => n_features,
            MaxFeatures::Count(k) => k,
            MaxFeatures::Fraction(f) => ((f * p) as usize).max(1),
        }
    }
}

impl std::fmt::Display for MaxFeatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFeatures::Sqrt => f.write_str("sqrt"),
            MaxFeatures::Log2 => f.write_str("log2"),
            MaxFeatures::All => f.write_str("all"),
            MaxFeatures::Count(k) => write!(f, "{k}"),
            MaxFeatures::Fraction(x) => f.write_str(&crate::pyfloat::repr(*x)),
        }
    }
}

/// The impurity criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Gini impurity (the classifiers' default).
    Gini,
    /// Shannon entropy in bits (`"entropy"` and `"log_loss"` are the same criterion in sklearn).
    Entropy,
    /// Mean squared error (the regressors' default).
    SquaredError,
    /// `friedman_mse`: sklearn 1.9.1 maps it to `squared_error` with a `FutureWarning`.
    FriedmanMse,
    /// Mean absolute error (the median in each leaf).
    AbsoluteError,
    /// Half Poisson deviance (targets must be non-negative with a positive sum).
    Poisson,
}

impl Criterion {
    /// Is this a regression criterion?
    pub fn is_regression(self) -> bool {
        !matches!(self, Criterion::Gini | Criterion::Entropy)
    }
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Criterion::Gini => "gini",
            Criterion::Entropy => "entropy",
            Criterion::SquaredError => "squared_error",
            Criterion::FriedmanMse => "friedman_mse",
            Criterion::AbsoluteError => "absolute_error",
            Criterion::Poisson => "poisson",
        })
    }
}

/// The scikit-learn estimator class (`--estimator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    /// `RandomForestClassifier` (main.py's).
    #[default]
    RandomForestClassifier,
    /// `RandomForestRegressor`.
    RandomForestRegressor,
    /// `ExtraTreesClassifier`: random thresholds, no bootstrap by default.
    ExtraTreesClassifier,
    /// `ExtraTreesRegressor`: random thresholds, no bootstrap by default.
    ExtraTreesRegressor,
}

impl Estimator {
    /// Every estimator, in `--help` order.
    pub const ALL: [Estimator; 4] = [
        Estimator::RandomForestClassifier,
        Estimator::RandomForestRegressor,
        Estimator::ExtraTreesClassifier,
        Estimator::ExtraTreesRegressor,
    ];

    /// sklearn's class name.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::RandomForestClassifier => "RandomForestClassifier",
            Estimator::RandomForestRegressor => "RandomForestRegressor",
            Estimator::ExtraTreesClassifier => "ExtraTreesClassifier",
            Estimator::ExtraTreesRegressor => "ExtraTreesRegressor",
        }
    }

    /// The estimator called `name`.
    pub fn from_name(name: &str) -> Option<Estimator> {
        Estimator::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Does it predict values (rather than classes)?
    pub fn is_regressor(self) -> bool {
        matches!(
            self,
            Estimator::RandomForestRegressor | Estimator::ExtraTreesRegressor
        )
    }

    /// Does it draw thresholds at random (`splitter="random"`)?
    pub fn is_extra_trees(self) -> bool {
        matches!(
            self,
            Estimator::ExtraTreesClassifier | Estimator::ExtraTreesRegressor
        )
    }

    /// The class's own `max_features` default.
    pub fn default_max_features(self) -> MaxFeatures {
        if self.is_regressor() {
            MaxFeatures::Fraction(1.0)
        } else {
            MaxFeatures::Sqrt
        }
    }

    /// The class's own `criterion` default.
    pub fn default_criterion(self) -> Criterion {
        if self.is_regressor() {
            Criterion::SquaredError
        } else {
            Criterion::Gini
        }
    }

    /// The class's own `bootstrap` default.
    pub fn default_bootstrap(self) -> bool {
        !self.is_extra_trees()
    }
}

impl std::fmt::Display for Estimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Checked forest and cross-validation parameters. Fields are public: any value that passed
/// [`ForestParams::check`] is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestValidParams {
    /// The estimator class.
    pub estimator: Estimator,
    /// Number of trees (`n_estimators`, ≥ 1).
    pub n_estimators: usize,
    /// Maximum tree depth (`max_depth`, ≥ 1), `None` for unlimited.
    pub max_depth: Option<usize>,
    /// Minimum samples to split a node (`min_samples_split`, ≥ 2).
    pub min_samples_split: usize,
    /// Minimum samples in a leaf (`min_samples_leaf`, ≥ 1).
    pub min_samples_leaf: usize,
    /// Features drawn per split.
    pub max_features: MaxFeatures,
    /// Impurity criterion.
    pub criterion: Criterion,
    /// Fit each tree on a bootstrap sample (as counts used as weights) or on the whole fold.
    pub bootstrap: bool,
    /// Seed of the forest's `RandomState` (0 ..= 2^32 - 1).
    pub random_state: u32,
    /// Number of stratified folds (`cv`, ≥ 2).
    pub n_folds: usize,
    /// `cross_val_score(scoring=...)`; `None` is the estimator's own `score` (accuracy).
    pub scoring: Option<Scoring>,
}

/// Unchecked parameters; call [`ParamGuard::check`] (or fit through linfa, which checks).
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams(ForestValidParams);

impl Default for ForestParams {
    fn default() -> Self {
        Self::new()
    }
}

impl ForestParams {
    /// main.py's settings: 10 trees, unlimited depth, `min_samples_split=2`,
    /// `min_samples_leaf=1`, `max_features="sqrt"`, Gini, bootstrap, `random_state=0`, 5 folds.
    pub fn new() -> Self {
        ForestParams::for_estimator(Estimator::RandomForestClassifier)
    }

    /// `estimator`'s own defaults, with main.py's `n_estimators=10`, `random_state=0`, `cv=5`.
    pub fn for_estimator(estimator: Estimator) -> Self {
        ForestParams(ForestValidParams {
            estimator,
            n_estimators: 10,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: estimator.default_max_features(),
            criterion: estimator.default_criterion(),
            bootstrap: estimator.default_bootstrap(),
            random_state: 0,
            n_folds: 5,
            scoring: None,
        })
    }

    /// Sets `n_estimators`.
    pub fn n_estimators(mut self, n: usize) -> Self {
        self.0.n_estimators = n;
        self
    }

    /// Sets `max_depth` (`None` = unlimited).
    pub fn max_depth(mut self, depth: Option<usize>) -> Self {
        self.0.max_depth = depth;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.0.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.0.min_samples_leaf = n;
        self
    }

    /// Sets `max_features`.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.0.max_features = m;
        self
    }

    /// Sets the criterion.
    pub fn criterion(mut self, c: Criterion) -> Self {
        self.0.criterion = c;
        self
    }

    /// Sets `bootstrap`.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.0.bootstrap = b;
        self
    }

    /// Sets `random_state`.
    pub fn random_state(mut self, seed: u32) -> Self {
        self.0.random_state = seed;
        self
    }

    /// Sets the number of cross-validation folds.
    pub fn n_folds(mut self, k: usize) -> Self {
        self.0.n_folds = k;
        self
    }

    /// Sets the scorer (`None`: the estimator's `score`).
    pub fn scoring(mut self, scoring: Option<Scoring>) -> Self {
        self.0.scoring = scoring;
        self
    }
}

impl ParamGuard for ForestParams {
    type Checked = ForestValidParams;
    type Error = Error;

    fn check_ref(&self) -> Result<&ForestValidParams, Error> {
        let p = &self.0;
        if p.n_estimators < 1 {
            return Err(Error::Params(format!(
                "n_estimators must be at least 1, got {}",
                p.n_estimators
            )));
        }
        if p.max_depth == Some(0) {
            return Err(Error::Params(
                "max_depth must be at least 1 (omit it for unlimited depth)".into(),
            ));
        }
        if p.min_samples_split < 2 {
            return Err(Error::Params(format!(
                "min_samples_split must be at least 2, got {}",
                p.min_samples_split
            )));
        }
        if p.min_samples_leaf < 1 {
            return Err(Error::Params(format!(
                "min_samples_leaf must be at least 1, got {}",
                p.min_samples_leaf
            )));
        }
        match p.max_features {
            MaxFeatures::Count(0) => {
                return Err(Error::Params(
                    "max_features must be at least 1, got 0".into(),
                ));
            }
            MaxFeatures::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(Error::Params(format!(
                    "max_features as a fraction must be in (0, 1], got {}",
                    crate::pyfloat::repr(f)
                )));
            }
            _ => {}
        }
        if p.criterion.is_regression() != p.estimator.is_regressor() {
            let allowed = if p.estimator.is_regressor() {
                "'squared_error', 'absolute_error', 'friedman_mse', 'poisson'"
            } else {
                "'gini', 'entropy', 'log_loss'"
            };
            return Err(Error::Params(format!(
                "the 'criterion' parameter of {} must be one of {allowed}, got '{}' (sklearn \
                 raises InvalidParameterError)",
                p.estimator, p.criterion
            )));
        }
        if let Some(scoring) = p.scoring {
            crate::scoring::check_fits(scoring, p.estimator).map_err(Error::Params)?;
        }
        if p.n_folds < 2 {
            return Err(Error::Params(format!(
                "cv must be at least 2 folds, got {}",
                p.n_folds
            )));
        }
        Ok(p)
    }

    fn check(self) -> Result<ForestValidParams, Error> {
        self.check_ref()?;
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_main_py() {
        let p = ForestParams::new().check().unwrap();
        assert_eq!(p.n_estimators, 10);
        assert_eq!(p.n_folds, 5);
        assert_eq!(p.max_features, MaxFeatures::Sqrt);
        assert!(p.bootstrap);
    }

    #[test]
    fn rejects_out_of_range_values_with_readable_messages() {
        let e = ForestParams::new().n_estimators(0).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter: n_estimators must be at least 1, got 0"
        );
        let e = ForestParams::new().n_folds(1).check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter: cv must be at least 2 folds, got 1"
        );
        assert!(
            ForestParams::new()
                .max_features(MaxFeatures::Fraction(1.5))
                .check()
                .is_err()
        );
        assert!(
            ForestParams::new()
                .max_features(MaxFeatures::Fraction(0.0))
                .check()
                .is_err()
        );
        assert!(ForestParams::new().min_samples_split(1).check().is_err());
        assert!(ForestParams::new().min_samples_leaf(0).check().is_err());
        assert!(ForestParams::new().max_depth(Some(0)).check().is_err());
    }

    #[test]
    fn max_features_resolution_matches_sklearn() {
        assert_eq!(MaxFeatures::Sqrt.resolve(64), 8);
        assert_eq!(MaxFeatures::Sqrt.resolve(20), 4);
        assert_eq!(MaxFeatures::Sqrt.resolve(1), 1);
        assert_eq!(MaxFeatures::Log2.resolve(64), 6);
        assert_eq!(MaxFeatures::Log2.resolve(1), 1);
        assert_eq!(MaxFeatures::All.resolve(7), 7);
        assert_eq!(MaxFeatures::Fraction(0.5).resolve(13), 6);
        assert_eq!(MaxFeatures::Fraction(0.01).resolve(13), 1);
        assert_eq!(MaxFeatures::Count(14).resolve(13), 14);
    }
}
