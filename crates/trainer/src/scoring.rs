//! scikit-learn 1.9.1's scorers (`cross_val_score(..., scoring=NAME)`), one fold at a time.
//!
//! Each scorer is ported from sklearn/metrics (`_scorer.py`, `_classification.py`,
//! `_ranking.py`, `_regression.py`) with numpy's float operations in numpy's order: sums are
//! [`numpy_sum`] (pairwise, as `np.sum`/`np.mean` reduce float64), means divide that sum by the
//! count, `np.average(a, weights=w)` is `sum(a*w) / sum(w)`, and the ROC area is scipy's
//! `trapezoid`. Labels arrive as indices into the dataset's sorted classes, so "sorted unique
//! labels" is sorted indices.
//!
//! A fold whose scorer raises in sklearn (`f1` on a multiclass fold, `roc_auc` on three
//! classes, ...) is `Err(exception text)`: `cross_val_score` then scores it `nan` with a
//! "Scoring failed" warning, and main.py writes `The model score: nan`.

use crate::cv::numpy_sum;

/// The scorer names the trainer accepts (`sklearn.metrics.get_scorer_names()`, a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// `accuracy_score`.
    Accuracy,
    /// `balanced_accuracy_score`.
    BalancedAccuracy,
    /// `f1_score(average="binary", pos_label=1)`.
    F1,
    /// `f1_score(average="macro")`.
    F1Macro,
    /// `f1_score(average="micro")`.
    F1Micro,
    /// `f1_score(average="weighted")`.
    F1Weighted,
    /// `precision_score(average="macro")`.
    PrecisionMacro,
    /// `recall_score(average="macro")`.
    RecallMacro,
    /// `roc_auc_score` on `predict_proba` (binary targets only).
    RocAuc,
    /// `roc_auc_score(multi_class="ovr")` on `predict_proba`.
    RocAucOvr,
    /// `-log_loss` on `predict_proba`.
    NegLogLoss,
    /// `r2_score`.
    R2,
    /// `explained_variance_score`.
    ExplainedVariance,
    /// `-mean_squared_error`.
    NegMeanSquaredError,
    /// `-root_mean_squared_error`.
    NegRootMeanSquaredError,
    /// `-mean_absolute_error`.
    NegMeanAbsoluteError,
    /// `-median_absolute_error`.
    NegMedianAbsoluteError,
}

impl Scoring {
    /// Every scorer, in the order `--help` lists them.
    pub const ALL: [Scoring; 17] = [
        Scoring::Accuracy,
        Scoring::BalancedAccuracy,
        Scoring::F1,
        Scoring::F1Macro,
        Scoring::F1Micro,
        Scoring::F1Weighted,
        Scoring::PrecisionMacro,
        Scoring::RecallMacro,
        Scoring::RocAuc,
        Scoring::RocAucOvr,
        Scoring::NegLogLoss,
        Scoring::R2,
        Scoring::ExplainedVariance,
        Scoring::NegMeanSquaredError,
        Scoring::NegRootMeanSquaredError,
        Scoring::NegMeanAbsoluteError,
        Scoring::NegMedianAbsoluteError,
    ];

    /// sklearn's name for the scorer.
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Accuracy => "accuracy",
            Scoring::BalancedAccuracy => "balanced_accuracy",
            Scoring::F1 => "f1",
            Scoring::F1Macro => "f1_macro",
            Scoring::F1Micro => "f1_micro",
            Scoring::F1Weighted => "f1_weighted",
            Scoring::PrecisionMacro => "precision_macro",
            Scoring::RecallMacro => "recall_macro",
            Scoring::RocAuc => "roc_auc",
            Scoring::RocAucOvr => "roc_auc_ovr",
            Scoring::NegLogLoss => "neg_log_loss",
            Scoring::R2 => "r2",
            Scoring::ExplainedVariance => "explained_variance",
            Scoring::NegMeanSquaredError => "neg_mean_squared_error",
            Scoring::NegRootMeanSquaredError => "neg_root_mean_squared_error",
            Scoring::NegMeanAbsoluteError => "neg_mean_absolute_error",
            Scoring::NegMedianAbsoluteError => "neg_median_absolute_error",
        }
    }

    /// The scorer called `name`, if the trainer has it.
    pub fn from_name(name: &str) -> Option<Scoring> {
        Scoring::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Does the scorer call `predict_proba` (rather than `predict`)?
    pub fn needs_proba(self) -> bool {
        matches!(
            self,
            Scoring::RocAuc | Scoring::RocAucOvr | Scoring::NegLogLoss
        )
    }
}

impl std::fmt::Display for Scoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The dtype pandas gave the label column; it decides what `pos_label=1` matches and how the
/// regression metrics convert labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelKind {
    /// int64 (or uint64).
    #[default]
    Int,
    /// float64 holding whole numbers.
    Float,
    /// bool.
    Bool,
    /// Text.
    Str,
}

/// The dataset's classes as the scorers see them: sorted, rendered, and of one dtype.
#[derive(Debug, Clone, Copy)]
pub struct Classes<'a> {
    /// The label dtype.
    pub kind: LabelKind,
    /// Class `i`'s label as rendered (`1`, `1.0`, `True`, `setosa`).
    pub names: &'a [String],
}

impl Classes<'_> {
    /// The label as a float64 (what `check_array(y, dtype=float64)` makes of it), or `None`
    /// for text.
    fn value(&self, class: u32) -> Option<f64> {
        let name = &self.names[class as usize];
        match self.kind {
            LabelKind::Int | LabelKind::Float => name.parse().ok(),
            LabelKind::Bool => Some(if name == "True" { 1.0 } else { 0.0 }),
            LabelKind::Str => None,
        }
    }

    /// The class equal to `pos_label=1` (Python's `1 == label`), if any.
    fn one(&self) -> Option<u32> {
        (0..self.names.len() as u32).find(|&c| self.value(c) == Some(1.0))
    }

    /// numpy's `str()` of a 1-d array of these classes, as sklearn's messages show it.
    fn show(&self, classes: &[u32]) -> String {
        let items: Vec<String> = classes
            .iter()
            .map(|&c| {
                let name = &self.names[c as usize];
                match self.kind {
                    LabelKind::Str => format!("'{name}'"),
                    LabelKind::Float => name
                        .strip_suffix(".0")
                        .map_or(name.clone(), |s| format!("{s}.")),
                    _ => name.clone(),
                }
            })
            .collect();
        numpy_str(&items, self.kind != LabelKind::Str)
    }
}

/// numpy pads the items of a printed array to one width (right-aligned), except text.
fn numpy_str(items: &[String], pad: bool) -> String {
    let width = if pad {
        items.iter().map(|s| s.chars().count()).max().unwrap_or(0)
    } else {
        0
    };
    let padded: Vec<String> = items.iter().map(|s| format!("{s:>width$}")).collect();
    format!("[{}]", padded.join(" "))
}

/// One test fold of the classifier: what the scorers need from it.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierFold<'a> {
    /// The true class of each test row.
    pub y_true: &'a [u32],
    /// `predict`: the predicted class of each test row.
    pub y_pred: &'a [u32],
    /// `predict_proba`, row-major: `y_true.len()` rows of `fitted.len()` columns.
    pub proba: &'a [f64],
    /// `estimator.classes_`: the classes of the training fold, ascending.
    pub fitted: &'a [u32],
}

/// A fold's score and the warnings sklearn would have raised computing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The score (sign included: `neg_*` scorers are negative).
    pub value: f64,
    /// sklearn's warnings (`UndefinedMetricWarning`, ...), in order.
    pub warnings: Vec<String>,
}

impl Scored {
    fn new(value: f64) -> Scored {
        Scored {
            value,
            warnings: Vec::new(),
        }
    }
}

/// A fold's result: `Err` holds the exception sklearn raises (`ValueError: ...`).
pub type FoldScore = std::result::Result<Scored, String>;

/// What `cross_val_score` (`error_score=nan`) keeps of a fold's result: the score, or `nan`
/// for a scorer that raised. Its warnings join `warnings` unless already there.
pub fn fold_value(result: FoldScore, warnings: &mut Vec<String>) -> f64 {
    let (value, new) = match result {
        Ok(s) => (s.value, s.warnings),
        Err(e) => (
            f64::NAN,
            vec![format!(
                "Scoring failed. The score on this train-test partition for these parameters \
                 will be set to nan. Details: {e}"
            )],
        ),
    };
    for w in new {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    value
}

impl Scoring {
    /// Scores one fold of a classifier, as `get_scorer(name)(estimator, X_test, y_test)`.
    pub fn score_classifier(self, fold: &ClassifierFold, classes: &Classes) -> FoldScore {
        if self.needs_proba() {
            let score = response_proba(fold)?;
            return match self {
                Scoring::NegLogLoss => log_loss(fold.y_true, &score, classes).map(negate),
                _ => roc_auc(fold.y_true, &score, self == Scoring::RocAucOvr),
            };
        }
        if let Some(metric) = RegressionMetric::of(self) {
            let y_true = label_values(fold.y_true, classes, metric)?;
            let y_pred = label_values(fold.y_pred, classes, metric)?;
            return Ok(metric.score(&y_true, &y_pred));
        }
        let pos = classes.one();
        if self == Scoring::F1
            && fold.fitted.len() <= 2
            && !pos.is_some_and(|p| fold.fitted.contains(&p))
        {
            // `_get_response_values` checks pos_label against a binary estimator's classes.
            return Err(format!(
                "ValueError: pos_label=1 is not a valid label: It should be one of {}",
                classes.show(fold.fitted)
            ));
        }
        let labels = LabelFold {
            y_true: fold.y_true,
            y_pred: fold.y_pred,
            pos,
            show: &|l| classes.show(l),
        };
        label_metric(self, &labels)
    }

    /// Scores one fold of a regressor from its true and predicted values. `estimator` is its
    /// class name (`RandomForestRegressor`), which sklearn's message for a scorer that needs
    /// `predict_proba` names.
    pub fn score_regressor(self, estimator: &str, y_true: &[f64], y_pred: &[f64]) -> FoldScore {
        if let Some(metric) = RegressionMetric::of(self) {
            return Ok(metric.score(y_true, y_pred));
        }
        if self.needs_proba() {
            let methods = if self == Scoring::RocAuc {
                "decision_function, predict_proba"
            } else {
                "predict_proba"
            };
            return Err(format!(
                "AttributeError: {estimator} has none of the following attributes: {methods}."
            ));
        }
        // Classification metrics on values: sklearn accepts them when every value is whole.
        let (y_true, y_pred, values) = encode_values(y_true, y_pred)?;
        let pos = values.iter().position(|&v| v == 1.0).map(|p| p as u32);
        let show = |l: &[u32]| {
            let items: Vec<String> = l.iter().map(|&c| numpy_float(values[c as usize])).collect();
            numpy_str(&items, true)
        };
        let labels = LabelFold {
            y_true: &y_true,
            y_pred: &y_pred,
            pos,
            show: &show,
        };
        label_metric(self, &labels)
    }
}

/// Refuses, before any fitting, a scorer that cannot score `estimator`: on a regressor, the
/// scorers that need `predict_proba` (sklearn's AttributeError on every fold) and the
/// classification scorers (forest predictions are averages, so sklearn's metric sees
/// continuous predictions and fails). The message is one line naming the remedy.
pub fn check_fits(scoring: Scoring, estimator: crate::params::Estimator) -> Result<(), String> {
    if !estimator.is_regressor() || RegressionMetric::of(scoring).is_some() {
        return Ok(());
    }
    let why = if scoring.needs_proba() {
        let methods = if scoring == Scoring::RocAuc {
            "decision_function, predict_proba"
        } else {
            "predict_proba"
        };
        format!("{estimator} has none of the following attributes: {methods}")
    } else {
        "Classification metrics can't handle a mix of multiclass and continuous targets".to_owned()
    };
    Err(format!(
        "--scoring {scoring} does not fit {estimator}, a regressor (sklearn: {why}); use r2, \
         explained_variance, neg_mean_squared_error, neg_root_mean_squared_error, \
         neg_mean_absolute_error or neg_median_absolute_error"
    ))
}

fn negate(s: Scored) -> Scored {
    Scored {
        value: -s.value,
        warnings: s.warnings,
    }
}

/// A float as numpy prints it inside an array (`1.`, `2.5`).
fn numpy_float(v: f64) -> String {
    let r = crate::pyfloat::repr(v);
    r.strip_suffix(".0").map_or(r.clone(), |s| format!("{s}."))
}

// ---------------------------------------------------------------------------------------------
// Label metrics (accuracy, balanced accuracy, precision / recall / F1)
// ---------------------------------------------------------------------------------------------

/// One fold's labels as indices into sorted labels.
struct LabelFold<'a> {
    y_true: &'a [u32],
    y_pred: &'a [u32],
    /// The label equal to `pos_label=1`, if there is one.
    pos: Option<u32>,
    /// numpy's rendering of some labels, for messages.
    show: &'a dyn Fn(&[u32]) -> String,
}

impl LabelFold<'_> {
    /// `unique_labels(y_true, y_pred)`: sorted.
    fn present(&self) -> Vec<u32> {
        sorted_unique(self.y_true.iter().chain(self.y_pred))
    }
}

fn sorted_unique<'a>(labels: impl Iterator<Item = &'a u32>) -> Vec<u32> {
    let mut v: Vec<u32> = labels.copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn label_metric(scoring: Scoring, fold: &LabelFold) -> FoldScore {
    match scoring {
        Scoring::Accuracy => {
            let correct = fold.y_true.iter().zip(fold.y_pred).filter(|(t, p)| t == p);
            Ok(Scored::new(
                correct.count() as f64 / fold.y_true.len() as f64,
            ))
        }
        Scoring::BalancedAccuracy => Ok(balanced_accuracy(fold)),
        Scoring::F1 => prf(fold, Average::Binary, Prf::F),
        Scoring::F1Macro => prf(fold, Average::Macro, Prf::F),
        Scoring::F1Micro => prf(fold, Average::Micro, Prf::F),
        Scoring::F1Weighted => prf(fold, Average::Weighted, Prf::F),
        Scoring::PrecisionMacro => prf(fold, Average::Macro, Prf::Precision),
        Scoring::RecallMacro => prf(fold, Average::Macro, Prf::Recall),
        _ => unreachable!("{scoring} is not a label metric"),
    }
}

/// `balanced_accuracy_score`: the mean over the true classes of each one's recall.
fn balanced_accuracy(fold: &LabelFold) -> Scored {
    let present = fold.present();
    let mut warnings = Vec::new();
    if present.len() == 1 {
        warnings.push(
            "A single label was found in 'y_true' and 'y_pred'. For the confusion matrix to \
             have the correct shape, use the 'labels' parameter to pass all known labels."
                .to_owned(),
        );
    }
    let mut per_class = Vec::with_capacity(present.len());
    for &label in &present {
        let n_true = fold.y_true.iter().filter(|&&t| t == label).count();
        let n_right = fold
            .y_true
            .iter()
            .zip(fold.y_pred)
            .filter(|&(&t, &p)| t == label && p == label)
            .count();
        if n_true > 0 {
            per_class.push(n_right as f64 / n_true as f64);
        }
    }
    if per_class.len() < present.len() {
        warnings.push("y_pred contains classes not in y_true".to_owned());
    }
    Scored {
        value: numpy_sum(&per_class) / per_class.len() as f64,
        warnings,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Average {
    Binary,
    Micro,
    Macro,
    Weighted,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Prf {
    Precision,
    Recall,
    F,
}

/// `precision_recall_fscore_support(beta=1, zero_division="warn")` reduced to the one number
/// the scorer returns.
fn prf(fold: &LabelFold, average: Average, which: Prf) -> FoldScore {
    let present = fold.present();
    // `_check_set_wise_labels`.
    let labels: Vec<Option<u32>> = if average == Average::Binary {
        if present.len() > 2 {
            return Err(
                "ValueError: Target is multiclass but average='binary'. Please choose \
                        another average setting, one of [None, 'micro', 'macro', 'weighted']."
                    .to_owned(),
            );
        }
        let pos_present = fold.pos.is_some_and(|p| present.contains(&p));
        if !pos_present && present.len() >= 2 {
            return Err(format!(
                "ValueError: pos_label=1 is not a valid label. It should be one of {}",
                (fold.show)(&present)
            ));
        }
        vec![fold.pos.filter(|_| pos_present)]
    } else {
        present.iter().map(|&l| Some(l)).collect()
    };
    // `multilabel_confusion_matrix`: per label tp, predicted and true counts (integers).
    let mut tp = Vec::with_capacity(labels.len());
    let mut pred = Vec::with_capacity(labels.len());
    let mut truth = Vec::with_capacity(labels.len());
    for l in &labels {
        let (mut t_n, mut p_n, mut tp_n) = (0u64, 0u64, 0u64);
        if let Some(l) = *l {
            for (&t, &p) in fold.y_true.iter().zip(fold.y_pred) {
                t_n += u64::from(t == l);
                p_n += u64::from(p == l);
                tp_n += u64::from(t == l && p == l);
            }
        }
        tp.push(tp_n as f64);
        pred.push(p_n as f64);
        truth.push(t_n as f64);
    }
    if average == Average::Micro {
        tp = vec![tp.iter().sum()];
        pred = vec![pred.iter().sum()];
        truth = vec![truth.iter().sum()];
    }
    let mut warnings = Vec::new();
    let values = match which {
        Prf::Precision => prf_divide(&tp, &pred, "Precision is", "predicted", &mut warnings),
        Prf::Recall => prf_divide(&tp, &truth, "Recall is", "true", &mut warnings),
        Prf::F => {
            let num: Vec<f64> = tp.iter().map(|t| 2.0 * t).collect();
            let den: Vec<f64> = truth.iter().zip(&pred).map(|(t, p)| t + p).collect();
            prf_divide(
                &num,
                &den,
                "F-score is",
                "true nor predicted",
                &mut warnings,
            )
        }
    };
    let value = if average == Average::Weighted {
        // `np.average(values, weights=true_sum)`; the weights never sum to 0 (y_true is
        // not empty).
        let products: Vec<f64> = values.iter().zip(&truth).map(|(v, w)| v * w).collect();
        numpy_sum(&products) / numpy_sum(&truth)
    } else {
        numpy_sum(&values) / values.len() as f64
    };
    Ok(Scored { value, warnings })
}

/// `_prf_divide`: `num / den`, 0.0 where `den == 0` with sklearn's `UndefinedMetricWarning`.
fn prf_divide(
    num: &[f64],
    den: &[f64],
    what: &str,
    modifier: &str,
    warnings: &mut Vec<String>,
) -> Vec<f64> {
    let out: Vec<f64> = num
        .iter()
        .zip(den)
        .map(|(n, d)| if *d == 0.0 { 0.0 } else { n / d })
        .collect();
    if den.contains(&0.0) {
        let place = if out.len() == 1 {
            "due to".to_owned()
        } else {
            "in labels with".to_owned()
        };
        warnings.push(format!(
            "{what} ill-defined and being set to 0.0 {place} no {modifier} samples. Use \
             `zero_division` parameter to control this behavior."
        ));
    }
    out
}

/// The classifier's labels as float64 for a regression metric (`check_array` in
/// `_check_reg_targets`).
fn label_values(
    labels: &[u32],
    classes: &Classes,
    metric: RegressionMetric,
) -> std::result::Result<Vec<f64>, String> {
    match classes.kind {
        // numpy converts text with Python's float(), element by element.
        LabelKind::Str => labels
            .iter()
            .map(|&l| {
                let name = &classes.names[l as usize];
                python_float(name).ok_or_else(|| {
                    format!("ValueError: could not convert string to float: '{name}'")
                })
            })
            .collect(),
        // `median_absolute_error` keeps the dtype ("numeric"); numpy cannot subtract bools.
        LabelKind::Bool if metric == RegressionMetric::MedianAbsolute => Err(
            "TypeError: numpy boolean subtract, the `-` operator, is not supported, use the \
             bitwise_xor, the `^` operator, or the logical_xor function instead."
                .to_owned(),
        ),
        _ => Ok(labels
            .iter()
            .map(|&l| classes.value(l).unwrap_or(f64::NAN))
            .collect()),
    }
}

/// Python's `float(text)` for the spellings a label column holds (no `_` digit separators).
fn python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.contains('_') {
        return None;
    }
    t.parse().ok()
}

/// A regressor's values as labels: `y_true` and `y_pred` as indices into the sorted union of
/// their values (the third part).
type Encoded = (Vec<u32>, Vec<u32>, Vec<f64>);

/// `type_of_target` on a regressor's values, then the labels as indices into their sorted
/// union, for the classification metrics.
fn encode_values(y_true: &[f64], y_pred: &[f64]) -> std::result::Result<Encoded, String> {
    let kind = |v: &[f64]| {
        if v.iter().any(|x| x.fract() != 0.0) {
            "continuous"
        } else if sorted_unique_f64(v.iter()).len() > 2 {
            "multiclass"
        } else {
            "binary"
        }
    };
    let (kt, kp) = (kind(y_true), kind(y_pred));
    let mixed = kt != kp && !(kt != "continuous" && kp != "continuous");
    if mixed {
        return Err(format!(
            "ValueError: Classification metrics can't handle a mix of {kt} and {kp} targets"
        ));
    }
    if kt == "continuous" {
        return Err("ValueError: continuous is not supported".to_owned());
    }
    let values = sorted_unique_f64(y_true.iter().chain(y_pred));
    let index = |x: &f64| values.partition_point(|v| v < x) as u32;
    Ok((
        y_true.iter().map(index).collect(),
        y_pred.iter().map(index).collect(),
        values,
    ))
}

fn sorted_unique_f64<'a>(v: impl Iterator<Item = &'a f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.copied().collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------------
// Probability metrics (ROC AUC, log loss)
// ---------------------------------------------------------------------------------------------

/// What `_get_response_values(..., "predict_proba")` hands the metric.
enum ProbaScore {
    /// A binary estimator: the probability of its second class.
    Binary(Vec<f64>),
    /// A multiclass estimator: every column (row-major, `cols` wide).
    Matrix { values: Vec<f64>, cols: usize },
}

fn response_proba(fold: &ClassifierFold) -> std::result::Result<ProbaScore, String> {
    let n = fold.y_true.len();
    let k = fold.fitted.len();
    if k <= 2 {
        // `type_of_target(classes_)` is binary for one or two classes.
        if k < 2 {
            return Err(format!(
                "ValueError: Got predict_proba of shape ({n}, {k}), but need classifier with \
                 two classes."
            ));
        }
        return Ok(ProbaScore::Binary(
            fold.proba.chunks_exact(k).map(|row| row[k - 1]).collect(),
        ));
    }
    Ok(ProbaScore::Matrix {
        values: fold.proba.to_vec(),
        cols: k,
    })
}

/// `roc_auc_score(y_true, y_score)` with `multi_class="raise"` or `"ovr"`, average "macro".
fn roc_auc(y_true: &[u32], score: &ProbaScore, ovr: bool) -> FoldScore {
    let classes = sorted_unique(y_true.iter());
    let wide = matches!(score, ProbaScore::Matrix { cols, .. } if *cols > 2);
    if classes.len() > 2 || wide {
        if !ovr {
            return Err("ValueError: multi_class must be in ('ovo', 'ovr')".to_owned());
        }
        let (values, cols) = match score {
            ProbaScore::Binary(v) => {
                return Err(format!(
                    "ValueError: `y_score` needs to be of shape `(n_samples, n_classes)`, since \
                     `y_true` contains multiple classes. Got `y_score.shape=({},)`.",
                    v.len()
                ));
            }
            ProbaScore::Matrix { values, cols } => (values, *cols),
        };
        if classes.len() != cols {
            return Err(
                "ValueError: Number of classes in y_true not equal to the number of \
                        columns in 'y_score'"
                    .to_owned(),
            );
        }
        let per_class: Vec<f64> = classes
            .iter()
            .enumerate()
            .map(|(c, &label)| {
                let truth: Vec<bool> = y_true.iter().map(|&t| t == label).collect();
                let column: Vec<f64> = values.chunks_exact(cols).map(|r| r[c]).collect();
                binary_roc_auc(&truth, &column)
            })
            .collect();
        return Ok(Scored::new(numpy_sum(&per_class) / per_class.len() as f64));
    }
    let ProbaScore::Binary(column) = score else {
        unreachable!("a two-column matrix is always passed as its second column")
    };
    if classes.len() < 2 {
        return Ok(Scored {
            value: f64::NAN,
            warnings: vec![
                "Only one class is present in y_true. ROC AUC score is not defined in that \
                 case."
                    .to_owned(),
            ],
        });
    }
    let truth: Vec<bool> = y_true.iter().map(|&t| t == classes[1]).collect();
    Ok(Scored::new(binary_roc_auc(&truth, column)))
}

/// `auc(*roc_curve(y_true, y_score)[:2])` for a target with both classes present.
fn binary_roc_auc(y_true: &[bool], y_score: &[f64]) -> f64 {
    // Descending scores (the order within ties does not change the counts at distinct values).
    let mut order: Vec<usize> = (0..y_score.len()).collect();
    order.sort_by(|&a, &b| y_score[b].total_cmp(&y_score[a]));
    let mut tps = Vec::new();
    let mut fps = Vec::new();
    let mut cum = 0.0f64;
    for (pos, &i) in order.iter().enumerate() {
        cum += f64::from(u8::from(y_true[i]));
        let last = pos + 1 == order.len();
        if last || y_score[order[pos + 1]] != y_score[i] {
            tps.push(cum);
            fps.push(1.0 + pos as f64 - cum);
        }
    }
    // drop_intermediate: keep the ends and every corner (non-zero second difference).
    if fps.len() > 2 {
        let corner = |x: &[f64], j: usize| (x[j + 1] - x[j]) - (x[j] - x[j - 1]) != 0.0;
        let keep: Vec<usize> = (0..fps.len())
            .filter(|&j| j == 0 || j + 1 == fps.len() || corner(&fps, j) || corner(&tps, j))
            .collect();
        fps = keep.iter().map(|&j| fps[j]).collect();
        tps = keep.iter().map(|&j| tps[j]).collect();
    }
    fps.insert(0, 0.0);
    tps.insert(0, 0.0);
    let (fn_, tn_) = (fps[fps.len() - 1], tps[tps.len() - 1]);
    let fpr: Vec<f64> = fps.iter().map(|f| f / fn_).collect();
    let tpr: Vec<f64> = tps.iter().map(|t| t / tn_).collect();
    // scipy's trapezoid: sum(d * (y[1:] + y[:-1]) / 2.0).
    let terms: Vec<f64> = (1..fpr.len())
        .map(|i| (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2.0)
        .collect();
    numpy_sum(&terms)
}

/// `log_loss(y_true, y_proba)` (positive; the scorer negates it).
fn log_loss(y_true: &[u32], score: &ProbaScore, classes: &Classes) -> FoldScore {
    let (matrix, cols) = match score {
        // A one-dimensional y_prob becomes the columns [1 - p, p].
        ProbaScore::Binary(p) => (p.iter().flat_map(|&p| [1.0 - p, p]).collect(), 2),
        ProbaScore::Matrix { values, cols } => (values.clone(), *cols),
    };
    let raw: &[f64] = match score {
        ProbaScore::Binary(p) => p,
        ProbaScore::Matrix { values, .. } => values,
    };
    let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max > 1.0 {
        return Err(format!(
            "ValueError: y_prob contains values greater than 1: {}",
            crate::pyfloat::repr(max)
        ));
    }
    let truth = sorted_unique(y_true.iter());
    if truth.len() == 1 {
        return Err(format!(
            "ValueError: y_true contains only one label ({}). Please provide the list of all \
             expected class labels explicitly through the labels argument.",
            classes.names[truth[0] as usize]
        ));
    }
    if truth.len() != cols {
        return Err(format!(
            "ValueError: y_true and y_prob contain different number of classes: {} vs {cols}. \
             Please provide the true labels explicitly through the labels argument. Classes \
             found in y_true: {}",
            truth.len(),
            classes.show(&truth)
        ));
    }
    let eps = f64::EPSILON;
    let losses: Vec<f64> = matrix
        .chunks_exact(cols)
        .zip(y_true)
        .map(|(row, &t)| {
            let hit = truth.partition_point(|&c| c < t);
            let terms: Vec<f64> = row
                .iter()
                .enumerate()
                .map(|(j, &p)| {
                    if j == hit {
                        numpy_log(p.clamp(eps, 1.0 - eps))
                    } else {
                        0.0
                    }
                })
                .collect();
            -numpy_sum(&terms)
        })
        .collect();
    Ok(Scored::new(numpy_sum(&losses) / losses.len() as f64))
}

/// `np.log` for float64 as numpy 2.4 computes it on this CPU: Intel SVML's `__svml_log8_ha`
/// where the CPU has AVX-512 (numpy's AVX512_SKX dispatch), the C library's `log` elsewhere.
/// The two differ in the last bit for about 0.3% of inputs, enough to change `neg_log_loss`.
pub fn numpy_log(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if svml::available() {
        return svml::log(x);
    }
    x.ln()
}

/// A scalar port of `__svml_log8_ha` (numpy/SVML, linux/avx512/svml_z0_log_d_ha.s), operation
/// for operation: `log(x) = k*ln2 - log(rcp) + log1p(rcp*mant - 1)` with `rcp` the hardware's
/// `vrcp14` reciprocal of the mantissa rounded to 1/32, a 16-entry table for `-log(rcp)` and a
/// polynomial, every multiply-add fused as in the assembly.
#[cfg(target_arch = "x86_64")]
mod svml {
    /// `-log(rcp)` (high and low parts) for rcp = (16 + i) / 32, the first eight scaled by 2.
    const TH: [u64; 16] = [
        0x0,
        0xbfaf0a30c0120000,
        0xbfbe27076e2b0000,
        0xbfc5ff3070a78000,
        0xbfcc8ff7c79a8000,
        0xbfd1675cababc000,
        0xbfd4618bc21c4000,
        0xbfd739d7f6bbc000,
        0x3fd269621134c000,
        0x3fcf991c6cb38000,
        0x3fca93ed3c8b0000,
        0x3fc5bf406b540000,
        0x3fc1178e82280000,
        0x3fb9335e5d590000,
        0x3fb08598b59e0000,
        0x3fa0415d89e80000,
    ];
    const TL: [u64; 16] = [
        0x0,
        0x3d53ab33d066d1d2,
        0x3d2a342c2af0003c,
        0xbd43d3c873e20a07,
        0xbd4a21ac25d81ef3,
        0x3d59f1fc63382a8f,
        0xbd5ec27d0b7b37b3,
        0xbd50069ce24c53fb,
        0x3d5b92783beb7677,
        0x3d59bcbecca0cdf3,
        0xbd530e486a0ac42d,
        0x3d5ed8fdc149767e,
        0xbd4b8421cc74be04,
        0x3d52622b8757a8fb,
        0x3d4d034451fecdfb,
        0xbd577771fd187145,
    ];
    /// Polynomial coefficients (data offsets 384 ... 832) and ln 2 high / low (896, 960).
    const C384: u64 = 0x3fbc81cd309d7c70;
    const C448: u64 = 0xbfc007357e93af62;
    const C512: u64 = 0x3fc249229cee81ef;
    const C576: u64 = 0xbfc55553fb28db06;
    const C640: u64 = 0x3fc9999999cc9f5c;
    const C704: u64 = 0xbfd00000000c05bd;
    const C768: u64 = 0x3fd5555555555466;
    const C832: u64 = 0xbfdfffffffffffc6;
    const LN2_HI: u64 = 0x3fe62e42fefa0000;
    const LN2_LO: u64 = 0x3d7cf79abc9e0000;

    fn c(bits: u64) -> f64 {
        f64::from_bits(bits)
    }

    /// numpy uses SVML when the CPU has AVX512_SKX (F, CD, BW, DQ, VL).
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }

    /// `vrndscalepd(vrcp14pd(m), 1/32)` for a mantissa m in [1, 2) is (32 - j) / 32 where j
    /// counts these thresholds at or below m. They were found on AVX-512 hardware by bisecting
    /// the instruction pair around each midpoint 64 / (2j + 1); 200 million random mantissas
    /// and every 20-bit mantissa prefix agree with the rule (scripts/oracle/svml_rcp_steps.c), so
    /// no `unsafe` intrinsic is needed.
    const RCP_STEPS: [u64; 16] = [
        0x3ff040f000000000,
        0x3ff0c97000000000,
        0x3ff15b4000000000,
        0x3ff1f70000000000,
        0x3ff29e6000000000,
        0x3ff3523000000000,
        0x3ff4143000000000,
        0x3ff4e5f000000000,
        0x3ff5c99000000000,
        0x3ff6c15000000000,
        0x3ff7d07000000000,
        0x3ff8f9c000000000,
        0x3ffa41a000000000,
        0x3ffbad0000000000,
        0x3ffd41c000000000,
        0x3fff080000000000,
    ];

    fn rounded_reciprocal(mant: f64) -> f64 {
        let steps = RCP_STEPS.partition_point(|&t| t <= mant.to_bits());
        (32 - steps) as f64 / 32.0
    }

    /// `vgetmantpd $8` (mantissa in [1, 2)) and `vgetexppd` of a positive finite `x`.
    fn mant_exp(x: f64) -> (f64, f64) {
        let (x, shift) = if x < f64::MIN_POSITIVE {
            (x * c(0x4330000000000000), 52)
        } else {
            (x, 0)
        };
        let bits = x.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023 - shift;
        let mant = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        (mant, e as f64)
    }

    pub(super) fn log(x: f64) -> f64 {
        if !(x > 0.0 && x.is_finite()) {
            // SVML's rare-case path: log(0) = -inf, log(inf) = inf, nan otherwise.
            return x.ln();
        }
        let (mant, e) = mant_exp(x);
        let rcp = rounded_reciprocal(mant);
        let r = rcp.mul_add(mant, -1.0);
        let k = if rcp < 0.75 { e + 1.0 } else { e };
        let a = r.mul_add(c(C512), c(C576));
        let b = r.mul_add(c(C384), c(C448));
        let r2 = r * r;
        let d = r.mul_add(c(C640), c(C704));
        let i = ((rcp.to_bits() >> 48) & 15) as usize;
        let f = r.mul_add(c(C768), c(C832));
        let b = r2.mul_add(b, a);
        let r4 = r2 * r2;
        let d = r2.mul_add(d, f);
        let th = k.mul_add(c(LN2_HI), c(TH[i]));
        let poly = r4.mul_add(b, d);
        let hi = th + r;
        let r_hi = hi - th;
        let r_lo = r - r_hi;
        let p = r2.mul_add(poly, r_lo);
        let lo = c(LN2_LO).mul_add(k, c(TL[i]));
        hi + (p + lo)
    }
}

// ---------------------------------------------------------------------------------------------
// Regression metrics
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum RegressionMetric {
    R2,
    ExplainedVariance,
    MeanSquared,
    RootMeanSquared,
    MeanAbsolute,
    MedianAbsolute,
}

impl RegressionMetric {
    fn of(scoring: Scoring) -> Option<RegressionMetric> {
        Some(match scoring {
            Scoring::R2 => RegressionMetric::R2,
            Scoring::ExplainedVariance => RegressionMetric::ExplainedVariance,
            Scoring::NegMeanSquaredError => RegressionMetric::MeanSquared,
            Scoring::NegRootMeanSquaredError => RegressionMetric::RootMeanSquared,
            Scoring::NegMeanAbsoluteError => RegressionMetric::MeanAbsolute,
            Scoring::NegMedianAbsoluteError => RegressionMetric::MedianAbsolute,
            _ => return None,
        })
    }

    /// The scorer's value (errors negated).
    fn score(self, y_true: &[f64], y_pred: &[f64]) -> Scored {
        let n = y_true.len() as f64;
        let mean = |v: &[f64]| numpy_sum(v) / n;
        let diff: Vec<f64> = y_true.iter().zip(y_pred).map(|(t, p)| t - p).collect();
        let abs: Vec<f64> = y_pred
            .iter()
            .zip(y_true)
            .map(|(p, t)| (p - t).abs())
            .collect();
        let squares = |v: &[f64]| -> Vec<f64> { v.iter().map(|d| d * d).collect() };
        match self {
            RegressionMetric::MeanSquared => Scored::new(-mean(&squares(&diff))),
            RegressionMetric::RootMeanSquared => Scored::new(-mean(&squares(&diff)).sqrt()),
            RegressionMetric::MeanAbsolute => Scored::new(-mean(&abs)),
            RegressionMetric::MedianAbsolute => Scored::new(-median(abs)),
            RegressionMetric::R2 => {
                if y_true.len() < 2 {
                    return Scored {
                        value: f64::NAN,
                        warnings: vec![
                            "R^2 score is not well-defined with less than two samples.".to_owned(),
                        ],
                    };
                }
                let avg = mean(y_true);
                let centred: Vec<f64> = y_true.iter().map(|t| t - avg).collect();
                Scored::new(explained_fraction(
                    numpy_sum(&squares(&diff)),
                    numpy_sum(&squares(&centred)),
                ))
            }
            RegressionMetric::ExplainedVariance => {
                let diff_avg = mean(&diff);
                let off: Vec<f64> = diff.iter().map(|d| d - diff_avg).collect();
                let avg = mean(y_true);
                let centred: Vec<f64> = y_true.iter().map(|t| t - avg).collect();
                Scored::new(explained_fraction(
                    mean(&squares(&off)),
                    mean(&squares(&centred)),
                ))
            }
        }
    }
}

/// `_assemble_fraction_of_explained_deviance` with `force_finite=True`.
fn explained_fraction(numerator: f64, denominator: f64) -> f64 {
    if numerator == 0.0 {
        1.0
    } else if denominator == 0.0 {
        0.0
    } else {
        1.0 - numerator / denominator
    }
}

/// `np.median`: the middle value, or the mean of the two middle values.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y_TRUE: [f64; 8] = [3.0, -0.5, 2.0, 7.0, 4.25, 1e-3, 12.5, 0.1];
    const Y_PRED: [f64; 8] = [2.5, 0.0, 2.0, 8.0, 4.0, 0.2, 11.0, 0.3];

    fn value(s: Scoring, y_true: &[f64], y_pred: &[f64]) -> f64 {
        s.score_regressor("RandomForestRegressor", y_true, y_pred)
            .unwrap()
            .value
    }

    #[test]
    fn regression_scores_match_sklearn_bit_for_bit() {
        // sklearn.metrics.*(Y_TRUE, Y_PRED) and on the first 7 values (odd median), 1.9.1.
        let cases = [
            (Scoring::R2, 0.97140265896221f64, 0.9685659532740367f64),
            (
                Scoring::ExplainedVariance,
                0.9715158118908338,
                0.9689198754590636,
            ),
            (
                Scoring::NegMeanSquaredError,
                -0.48651262500000003,
                -0.5503001428571429,
            ),
            (
                Scoring::NegRootMeanSquaredError,
                -0.6975045698775026,
                -0.7418221773829243,
            ),
            (
                Scoring::NegMeanAbsoluteError,
                -0.518625,
                -0.5641428571428572,
            ),
            (Scoring::NegMedianAbsoluteError, -0.375, -0.5),
        ];
        for (s, all, first7) in cases {
            assert_eq!(value(s, &Y_TRUE, &Y_PRED).to_bits(), all.to_bits(), "{s}");
            assert_eq!(
                value(s, &Y_TRUE[..7], &Y_PRED[..7]).to_bits(),
                first7.to_bits(),
                "{s} (7 values)"
            );
        }
    }

    #[test]
    fn constant_targets_are_forced_finite_like_sklearn() {
        let c = [2.0, 2.0, 2.0];
        assert_eq!(value(Scoring::R2, &c, &c), 1.0);
        assert_eq!(value(Scoring::R2, &c, &[2.0, 2.0, 2.5]), 0.0);
        assert_eq!(value(Scoring::ExplainedVariance, &c, &[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(value(Scoring::ExplainedVariance, &c, &[1.0, 2.0, 1.0]), 0.0);
        let one = Scoring::R2
            .score_regressor("RandomForestRegressor", &[1.0], &[2.0])
            .unwrap();
        assert!(one.value.is_nan());
        assert_eq!(
            one.warnings,
            ["R^2 score is not well-defined with less than two samples."]
        );
    }

    fn labels(s: Scoring, y_true: &[u32], y_pred: &[u32]) -> FoldScore {
        let names: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        let classes = Classes {
            kind: LabelKind::Int,
            names: &names,
        };
        let fitted = sorted_unique(y_true.iter().chain(y_pred));
        let proba = vec![0.0; y_true.len() * fitted.len()];
        let fold = ClassifierFold {
            y_true,
            y_pred,
            proba: &proba,
            fitted: &fitted,
        };
        s.score_classifier(&fold, &classes)
    }

    #[test]
    fn label_scores_match_sklearn() {
        let t = [0, 1, 2, 2, 1, 0, 2, 1];
        let p = [0, 2, 2, 2, 1, 0, 0, 1];
        let cases = [
            (Scoring::F1Macro, 0.7555555555555555f64),
            (Scoring::F1Micro, 0.75),
            (Scoring::F1Weighted, 0.75),
            (Scoring::PrecisionMacro, 0.7777777777777777),
            (Scoring::RecallMacro, 0.7777777777777777),
            (Scoring::BalancedAccuracy, 0.7777777777777777),
            (Scoring::Accuracy, 0.75),
        ];
        for (s, want) in cases {
            assert_eq!(
                labels(s, &t, &p).unwrap().value.to_bits(),
                want.to_bits(),
                "{s}"
            );
        }
        let f1 = labels(Scoring::F1, &[0, 1, 1, 0, 1], &[1, 1, 1, 0, 0]).unwrap();
        assert_eq!(f1.value, 0.6666666666666666);
        assert_eq!(
            labels(Scoring::F1, &t, &p).unwrap_err(),
            "ValueError: Target is multiclass but average='binary'. Please choose another \
             average setting, one of [None, 'micro', 'macro', 'weighted']."
        );
    }

    #[test]
    fn undefined_precision_is_zero_with_sklearn_warning() {
        // Label 2 is never predicted: its precision is 0/0.
        let s = labels(Scoring::PrecisionMacro, &[0, 1, 2], &[0, 1, 1]).unwrap();
        assert_eq!(s.value, (1.0 + 0.5 + 0.0) / 3.0);
        assert_eq!(
            s.warnings,
            [
                "Precision is ill-defined and being set to 0.0 in labels with no predicted \
              samples. Use `zero_division` parameter to control this behavior."
            ]
        );
    }

    #[test]
    fn roc_auc_follows_roc_curve_and_trapezoid() {
        // roc_auc_score([0,0,1,1,0,1,0,1,1,0], scores) in sklearn 1.9.1: ties included.
        let truth = [
            false, false, true, true, false, true, false, true, true, false,
        ];
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.0, 0.9, 0.6, 0.2];
        assert_eq!(binary_roc_auc(&truth, &scores), 0.8799999999999999);
    }

    #[test]
    fn numpy_sum_of_negative_zeros_is_positive_zero() {
        assert_eq!(numpy_sum(&[-0.0; 5]).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn numpy_log_is_svml_on_avx512_and_libm_elsewhere() {
        // (x, np.log(x) on an AVX-512 machine, math.log(x)): inputs where the two differ.
        let cases: [(u64, u64, u64); 4] = [
            (0x3fc3c56175d4f3c4, 0xbffde29001c17599, 0xbffde29001c17598),
            (0x3fefda00b1de131a, 0xbf730af79d2ec1b9, 0xbf730af79d2ec1ba),
            (0x3fdddd1ef95b1f48, 0xbfe86440127c73a9, 0xbfe86440127c73aa),
            (0x3fec97bab0796227, 0xbfbcd25a4cc07311, 0xbfbcd25a4cc07312),
        ];
        #[cfg(target_arch = "x86_64")]
        let svml = svml::available();
        #[cfg(not(target_arch = "x86_64"))]
        let svml = false;
        for (x, numpy_avx512, libm) in cases {
            let got = numpy_log(f64::from_bits(x)).to_bits();
            assert_eq!(got, if svml { numpy_avx512 } else { libm }, "log({x:#x})");
        }
        assert_eq!(numpy_log(0.0), f64::NEG_INFINITY);
        assert!(numpy_log(-1.0).is_nan());
        assert_eq!(numpy_log(1.0), 0.0);
    }

    #[test]
    fn classification_scorers_on_a_regressor_fail_like_sklearn() {
        // cross_val_score(RandomForestRegressor(), X, y, scoring=...) in sklearn 1.9.1.
        let err = |s: Scoring, t: &[f64], p: &[f64]| {
            s.score_regressor("RandomForestRegressor", t, p)
                .unwrap_err()
        };
        assert_eq!(
            err(Scoring::RocAuc, &[1.0, 2.0], &[1.5, 2.0]),
            "AttributeError: RandomForestRegressor has none of the following attributes: \
             decision_function, predict_proba."
        );
        assert_eq!(
            err(Scoring::NegLogLoss, &[1.0, 2.0], &[1.5, 2.0]),
            "AttributeError: RandomForestRegressor has none of the following attributes: \
             predict_proba."
        );
        assert_eq!(
            err(Scoring::Accuracy, &[-1.0, 0.0, 3.0], &[0.5, 0.0, 3.0]),
            "ValueError: Classification metrics can't handle a mix of multiclass and \
             continuous targets"
        );
        // Whole-number values are labels to sklearn.
        let whole =
            Scoring::Accuracy.score_regressor("RandomForestRegressor", &[1.0, 2.0], &[1.0, 1.0]);
        assert_eq!(whole.unwrap().value, 0.5);
    }

    #[test]
    fn scorers_that_cannot_score_a_regressor_are_refused() {
        use crate::params::Estimator;
        assert!(check_fits(Scoring::R2, Estimator::ExtraTreesRegressor).is_ok());
        assert!(check_fits(Scoring::Accuracy, Estimator::RandomForestClassifier).is_ok());
        let e = check_fits(Scoring::RocAuc, Estimator::RandomForestRegressor).unwrap_err();
        assert!(e.contains("decision_function, predict_proba"), "{e}");
        assert!(check_fits(Scoring::F1Macro, Estimator::ExtraTreesRegressor).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in Scoring::ALL {
            assert_eq!(Scoring::from_name(s.name()), Some(s));
        }
        assert_eq!(Scoring::from_name("roc_auc_ovo"), None);
    }
}
