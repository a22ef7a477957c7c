//! `cross_val_score(RandomForestClassifier(...), X, y, cv=K)`: stratified folds, one forest per
//! fold fitted from scratch (a clone starts again from `random_state`), accuracy per fold, and
//! numpy's mean.
//!
//! The folds are `StratifiedKFold(K, shuffle=False)._make_test_folds` (model_selection/_split.py)
//! exactly: classes are numbered by first appearance, `allocation[i, k]` counts class `k` in
//! `sort(y_encoded)[i::K]`, and each class's rows, in file order, fill fold 0, then fold 1, ...
//! All (fold, tree) fits run in one rayon pass; results are gathered in (fold, tree) order, so the
//! score does not depend on the number of threads.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::fold_proba::FoldProba;
use crate::forest::{Grower, fit_tree, tree_config, tree_seeds};
use crate::params::{Criterion, ForestValidParams};
use crate::scoring::{Classes, ClassifierFold, FoldScore, Scoring, fold_value};
use crate::tree::{Leaves, TrainSet};

/// The fold index (`0..n_folds`) of each row's test set, or the message sklearn raises.
/// Also returns sklearn's warning when some (not all) classes have fewer than `n_folds` rows.
pub fn stratified_test_folds(
    labels: &[u32],
    n_folds: usize,
) -> std::result::Result<(Vec<usize>, Option<String>), String> {
    let n = labels.len();
    if n_folds > n {
        return Err(format!(
            "Cannot have number of splits n_splits={n_folds} greater than the number of samples: \
             n_samples={n}."
        ));
    }
    // Encode classes by order of first appearance.
    let n_labels = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut first_seen = vec![usize::MAX; n_labels];
    let mut n_classes = 0;
    let mut y_encoded = vec![0usize; n];
    for (i, &l) in labels.iter().enumerate() {
        if first_seen[l as usize] == usize::MAX {
            first_seen[l as usize] = n_classes;
            n_classes += 1;
        }
        y_encoded[i] = first_seen[l as usize];
    }
    let mut counts = vec![0usize; n_classes];
    for &c in &y_encoded {
        counts[c] += 1;
    }
    if counts.iter().all(|&c| n_folds > c) {
        return Err(format!(
            "n_splits={n_folds} cannot be greater than the number of members in each class."
        ));
    }
    let min_groups = counts.iter().copied().min().unwrap_or(0);
    let warning = (n_folds > min_groups).then(|| {
        format!(
            "The least populated class in y has only {min_groups} members, which is less than \
             n_splits={n_folds}."
        )
    });
    // allocation[i][k] = bincount(y_order[i::n_folds])[k] with y_order = sort(y_encoded).
    let mut y_order = y_encoded.clone();
    y_order.sort_unstable();
    let mut allocation = vec![vec![0usize; n_classes]; n_folds];
    for (pos, &c) in y_order.iter().enumerate() {
        allocation[pos % n_folds][c] += 1;
    }
    let mut test_folds = vec![0usize; n];
    let mut next_fold = vec![0usize; n_classes];
    let mut used = vec![0usize; n_classes];
    for (i, &c) in y_encoded.iter().enumerate() {
        while used[c] == allocation[next_fold[c]][c] {
            next_fold[c] += 1;
            used[c] = 0;
        }
        test_folds[i] = next_fold[c];
        used[c] += 1;
    }
    Ok((test_folds, warning))
}

/// `np.add.reduce` over float64, as `np.mean` uses it: numpy's pairwise summation added to the
/// identity `0.0` (so a sum of `-0.0`s is `0.0`, as in numpy).
pub fn numpy_sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

/// numpy's `pairwise_sum` (loops_utils.h.src): 8 accumulators, blocks of 128.
fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        let mut res = -0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Per-fold scores and their numpy mean and (population) standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct CvScore {
    /// The scorer used (the default is the estimator's `score`, accuracy).
    pub scoring: Scoring,
    /// Score of each fold, in fold order (`nan` where sklearn's scoring failed).
    pub fold_scores: Vec<f64>,
    /// `np.mean(fold_scores)`: what main.py prints.
    pub mean: f64,
    /// `np.std(fold_scores)`.
    pub std: f64,
    /// sklearn's warning about rare classes, if it would warn.
    pub warning: Option<String>,
    /// sklearn's warnings while scoring (failed folds, undefined metrics), each once, in order.
    pub scoring_warnings: Vec<String>,
}

/// One fold: its rows and sklearn's per-fold label encoding. Features are not copied: the
/// trees read the dataset's columns and give rows outside the fold weight 0.
struct FoldPlan<'a> {
    /// Training rows, ascending (`indices[test_folds != k]`).
    train: Vec<u32>,
    /// Test rows, ascending.
    test: Vec<u32>,
    /// Fold-local class index of every dataset row (`np.unique` over the training labels):
    /// the dataset's own labels when the training rows have every class (4 bytes a row saved
    /// per fold).
    y: Cow<'a, [u32]>,
    /// Fold-local class index -> dataset class index.
    classes: Vec<u32>,
    /// Per feature: does a training row miss it?
    has_missing: Vec<bool>,
}

fn plan_fold<'a>(data: &'a Dataset, test_folds: &[usize], fold: usize) -> FoldPlan<'a> {
    let train: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&i| test_folds[i as usize] != fold)
        .collect();
    let test: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&i| test_folds[i as usize] == fold)
        .collect();
    let has_missing = data
        .columns
        .iter()
        .map(|col| train.iter().any(|&i| col[i as usize].is_nan()))
        .collect();
    let mut present = vec![false; data.classes().len()];
    for &i in &train {
        present[data.labels()[i as usize] as usize] = true;
    }
    let classes: Vec<u32> = (0..data.classes().len() as u32)
        .filter(|&c| present[c as usize])
        .collect();
    let mut local = vec![0u32; data.classes().len()];
    for (k, &c) in classes.iter().enumerate() {
        local[c as usize] = k as u32;
    }
    let y = if classes.len() == data.classes().len() {
        Cow::Borrowed(data.labels())
    } else {
        Cow::Owned(data.labels().iter().map(|&l| local[l as usize]).collect())
    };
    FoldPlan {
        train,
        test,
        y,
        classes,
        has_missing,
    }
}

/// A fold's running sum (`S`) of its trees' contributions (`T`), then its result (`R`). Trees
/// finish in any order; their contributions are added strictly in tree order (as sklearn's
/// sequential `out += prediction` does), so the sum is bit-identical whatever the thread count.
/// Trees are dropped as soon as they have predicted; the sum exists from the fold's first tree
/// to its last, so only the folds being fitted hold one.
struct FoldSum<S, T, R> {
    next_tree: usize,
    pending: BTreeMap<usize, T>,
    sum: Option<S>,
    result: Option<R>,
}

/// `KFold(n_folds, shuffle=False)`: the fold of each row's test set (contiguous blocks, the
/// first `n % n_folds` one row longer), or the message sklearn raises.
pub fn kfold_test_folds(n: usize, n_folds: usize) -> std::result::Result<Vec<usize>, String> {
    if n_folds > n {
        return Err(format!(
            "Cannot have number of splits n_splits={n_folds} greater than the number of samples: \
             n_samples={n}."
        ));
    }
    let mut folds = Vec::with_capacity(n);
    for k in 0..n_folds {
        let size = n / n_folds + usize::from(k < n % n_folds);
        folds.extend(std::iter::repeat_n(k, size));
    }
    Ok(folds)
}

/// The per-fold steps of [`sum_over_trees`]: a fold's empty sum, one tree's contribution,
/// adding it, and the fold's result from its complete sum.
struct FoldJobs<I, J, A, D> {
    init: I,
    job: J,
    add: A,
    done: D,
}

/// Fits every (fold, tree) pair on the current rayon pool and returns, per fold, `done(fold,
/// sum)` of the sum that starts as `init(fold)` and gets the trees' contributions (`job(fold,
/// tree)`) added by `add` strictly in tree order, as sklearn's sequential `out += prediction`
/// does: bit-identical whatever the thread count. Each contribution is dropped as soon as it is
/// added, each sum as soon as its fold's last tree is.
fn sum_over_trees<S: Send, T: Send, R: Send>(
    n_folds: usize,
    n_trees: usize,
    steps: FoldJobs<
        impl Fn(usize) -> S + Sync,
        impl Fn(usize, usize) -> T + Sync,
        impl Fn(&mut S, T) + Sync,
        impl Fn(usize, S) -> R + Sync,
    >,
) -> Vec<R> {
    let FoldJobs {
        init,
        job,
        add,
        done,
    } = steps;
    let sums: Vec<Mutex<FoldSum<S, T, R>>> = (0..n_folds)
        .map(|_| {
            Mutex::new(FoldSum {
                next_tree: 0,
                pending: BTreeMap::new(),
                sum: None,
                result: None,
            })
        })
        .collect();
    // Jobs are (fold, tree) pairs taken in order by every worker of the pool.
    let next_job = AtomicUsize::new(0);
    let n_jobs = n_folds * n_trees;
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads() {
            scope.spawn(|_| {
                loop {
                    let job_id = next_job.fetch_add(1, Ordering::Relaxed);
                    if job_id >= n_jobs {
                        break;
                    }
                    let (fold, t) = (job_id / n_trees, job_id % n_trees);
                    let contribution = job(fold, t);
                    let mut guard = sums[fold].lock().unwrap_or_else(PoisonError::into_inner);
                    let fs = &mut *guard;
                    fs.pending.insert(t, contribution);
                    while let Some(c) = fs.pending.remove(&fs.next_tree) {
                        add(fs.sum.get_or_insert_with(|| init(fold)), c);
                        fs.next_tree += 1;
                        if fs.next_tree == n_trees {
                            let sum = fs.sum.take().unwrap_or_else(|| init(fold));
                            fs.result = Some(done(fold, sum));
                        }
                    }
                }
            });
        }
    });
    (sums.into_iter().enumerate())
        .map(|(fold, s)| {
            let fs = s.into_inner().unwrap_or_else(PoisonError::into_inner);
            fs.result.unwrap_or_else(|| done(fold, init(fold)))
        })
        .collect()
}

/// Runs the whole cross-validation on the current rayon pool: the classifier's
/// `StratifiedKFold` or the regressor's `KFold`, as `cross_val_score(est, X, y, cv=K)` picks.
/// Errors are the ones sklearn raises (as [`Error::Input`] naming `data_path`).
pub fn cross_validate(
    data: &Dataset,
    params: &ForestValidParams,
    data_path: &std::path::Path,
) -> Result<CvScore> {
    match data.values() {
        Some(y) => cross_validate_regressor(data, y, params, data_path),
        None => cross_validate_classifier(data, params, data_path),
    }
}

fn cross_validate_classifier(
    data: &Dataset,
    params: &ForestValidParams,
    data_path: &std::path::Path,
) -> Result<CvScore> {
    let (test_folds, warning) =
        stratified_test_folds(data.labels(), params.n_folds).map_err(|msg| {
            Error::input(
                data_path,
                format!("{msg} (sklearn); add rows or lower --cv"),
            )
        })?;
    let cfg = tree_config(params, data.n_features);
    let plans: Vec<FoldPlan> = (0..params.n_folds)
        .into_par_iter()
        .map(|k| plan_fold(data, &test_folds, k))
        .collect();
    let columns: Vec<&[f32]> = data.columns.iter().map(Vec::as_slice).collect();
    let seeds = tree_seeds(params.random_state, params.n_estimators);
    let n_trees = seeds.len();
    let grower = Grower::Classes {
        extra: params.estimator.is_extra_trees(),
    };
    let job = |fold: usize, t: usize| {
        let plan = &plans[fold];
        let set = TrainSet {
            columns: &columns,
            n_rows: data.n_rows,
            n_features: data.n_features,
            y: &plan.y,
            n_classes: plan.classes.len(),
            has_missing: &plan.has_missing,
        };
        let tree = fit_tree(set, &plan.train, seeds[t], params.bootstrap, cfg, grower);
        // Only the leaves outlive the tree: which leaf each test row falls into, and their
        // values, until the fold's sum reaches this tree.
        let leaf_of_row: Vec<u32> = (plan.test.iter())
            .map(|&i| tree.leaf_by(|f| columns[f][i as usize]))
            .collect();
        (tree.leaves, leaf_of_row)
    };
    let scoring = params.scoring.unwrap_or(Scoring::Accuracy);
    let classes = Classes {
        kind: data.label_kind(),
        names: data.classes(),
    };
    let steps = FoldJobs {
        init: |fold: usize| FoldProba::new(plans[fold].test.len(), plans[fold].classes.len()),
        job,
        add: |sum: &mut FoldProba, (leaves, rows): (Leaves, Vec<u32>)| sum.add(&leaves, &rows),
        done: |fold: usize, sum: FoldProba| {
            score_classifier_fold(data, &plans[fold], sum, n_trees, scoring, &classes)
        },
    };
    let scores = sum_over_trees(plans.len(), n_trees, steps);
    let (fold_scores, scoring_warnings) = classifier_warnings(&plans, scores);
    Ok(summarize(scoring, fold_scores, warning, scoring_warnings))
}

/// The folds' values and the warnings on the way (`check_classification_targets`'
/// many-classes warning, then the scorer's, in fold order).
fn classifier_warnings(plans: &[FoldPlan], scores: Vec<FoldScore>) -> (Vec<f64>, Vec<String>) {
    let mut scoring_warnings: Vec<String> = plans
        .iter()
        .find(|p| looks_like_regression(p.train.len(), p.classes.len()))
        .map(|_| {
            "The number of unique classes is greater than 50% of the number of samples. `y` \
             could represent a regression problem, not a classification problem."
                .to_owned()
        })
        .into_iter()
        .collect();
    let fold_scores = (scores.into_iter())
        .map(|score| fold_value(score, &mut scoring_warnings))
        .collect();
    (fold_scores, scoring_warnings)
}

/// One fold's score from its summed `predict_proba`.
fn score_classifier_fold(
    data: &Dataset,
    plan: &FoldPlan,
    mut sum: FoldProba,
    n_trees: usize,
    scoring: Scoring,
    classes: &Classes,
) -> FoldScore {
    sum.divide(n_trees as f64);
    let y_pred: Vec<u32> = (sum.argmax_rows().into_iter())
        .map(|c| plan.classes[c])
        .collect();
    // Only the probability scorers read the probabilities: then (one fold at a time) they are
    // made dense.
    let proba = if scoring.needs_proba() {
        sum.into_dense()
    } else {
        Vec::new()
    };
    let y_true: Vec<u32> = (plan.test.iter())
        .map(|&i| data.labels()[i as usize])
        .collect();
    let fold = ClassifierFold {
        y_true: &y_true,
        y_pred: &y_pred,
        proba: &proba,
        fitted: &plan.classes,
    };
    scoring.score_classifier(&fold, classes)
}

/// `check_classification_targets`' warning for a training fold of `n` rows and `n_classes`
/// classes: multiclass, more than 20 rows, more classes than `round(0.5 * n)` (Python's
/// round, half to even).
fn looks_like_regression(n: usize, n_classes: usize) -> bool {
    let half = n / 2;
    let rounded = if n % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    };
    n_classes > 2 && n > 20 && n_classes > rounded
}

/// The regressor's cross-validation: `KFold` folds, the mean of the trees' predictions per
/// test row, the scorer (default: `r2`, the estimator's `score`).
fn cross_validate_regressor(
    data: &Dataset,
    y: &[f64],
    params: &ForestValidParams,
    data_path: &std::path::Path,
) -> Result<CvScore> {
    let test_folds = kfold_test_folds(data.n_rows, params.n_folds).map_err(|msg| {
        Error::input(
            data_path,
            format!("{msg} (sklearn); add rows or lower --cv"),
        )
    })?;
    let plans: Vec<(Vec<u32>, Vec<u32>, Vec<bool>)> = (0..params.n_folds)
        .map(|k| split_rows(data, &test_folds, k))
        .collect();
    if params.criterion == Criterion::Poisson {
        check_poisson(data, y, &plans, data_path)?;
    }
    let mut warnings = Vec::new();
    if params.criterion == Criterion::FriedmanMse {
        warnings.push(
            "FutureWarning: Value `\"friedman_mse\"` for `criterion` is deprecated and will be \
             removed in 1.11. It maps to `\"squared_error\"` as both were always equivalent. \
             Use `criterion=\"squared_error\"` to remove this warning."
                .to_owned(),
        );
    }
    let cfg = tree_config(params, data.n_features);
    let columns: Vec<&[f32]> = data.columns.iter().map(Vec::as_slice).collect();
    let seeds = tree_seeds(params.random_state, params.n_estimators);
    let n_trees = seeds.len();
    let grower = Grower::Values {
        y,
        extra: params.estimator.is_extra_trees(),
    };
    let job = |fold: usize, t: usize| -> Vec<f64> {
        let (train, test, has_missing) = &plans[fold];
        let set = TrainSet {
            columns: &columns,
            n_rows: data.n_rows,
            n_features: data.n_features,
            y: &[],
            n_classes: 1,
            has_missing,
        };
        let tree = fit_tree(set, train, seeds[t], params.bootstrap, cfg, grower);
        test.iter()
            .map(|&i| tree.leaves.scalar(tree.leaf_by(|f| columns[f][i as usize])))
            .collect()
    };
    let scoring = params.scoring.unwrap_or(Scoring::R2);
    let steps = FoldJobs {
        init: |fold: usize| vec![0.0; plans[fold].1.len()],
        job,
        add: |sum: &mut Vec<f64>, c: Vec<f64>| sum.iter_mut().zip(&c).for_each(|(o, v)| *o += v),
        done: |fold: usize, mut y_pred: Vec<f64>| {
            y_pred.iter_mut().for_each(|p| *p /= n_trees as f64);
            let y_true: Vec<f64> = plans[fold].1.iter().map(|&i| y[i as usize]).collect();
            scoring.score_regressor(params.estimator.name(), &y_true, &y_pred)
        },
    };
    let mut scoring_warnings = Vec::new();
    let fold_scores: Vec<f64> = (sum_over_trees(plans.len(), n_trees, steps).into_iter())
        .map(|score| fold_value(score, &mut scoring_warnings))
        .collect();
    let warning = (!warnings.is_empty()).then(|| warnings.join(" | "));
    Ok(summarize(scoring, fold_scores, warning, scoring_warnings))
}

/// A fold's training rows, test rows (both ascending) and which features its training rows
/// miss.
fn split_rows(
    data: &Dataset,
    test_folds: &[usize],
    fold: usize,
) -> (Vec<u32>, Vec<u32>, Vec<bool>) {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for i in 0..data.n_rows as u32 {
        if test_folds[i as usize] == fold {
            test.push(i);
        } else {
            train.push(i);
        }
    }
    let has_missing = data
        .columns
        .iter()
        .map(|col| train.iter().any(|&i| col[i as usize].is_nan()))
        .collect();
    (train, test, has_missing)
}

/// sklearn's Poisson checks, which every fit (each training fold) makes: a negative target
/// fails the fits, and so does a training fold whose targets sum to zero.
fn check_poisson(
    data: &Dataset,
    y: &[f64],
    plans: &[(Vec<u32>, Vec<u32>, Vec<bool>)],
    data_path: &std::path::Path,
) -> Result<()> {
    if let Some(row) = y.iter().position(|&v| v < 0.0) {
        // The dataset knows the file line; the row number is the fallback for data built
        // without one.
        let at = match data.negative_target_line {
            Some(line) => format!("line {line}, column {}", data.n_features + 2),
            None => format!("data row {}", row + 1),
        };
        return Err(Error::input(
            data_path,
            format!(
                "{at}: the target {} is negative; sklearn raises 'Some value(s) of y are \
                 negative which is not allowed for Poisson regression.'; use non-negative \
                 targets or another --criterion",
                crate::pyfloat::repr(y[row])
            ),
        ));
    }
    if let Some(k) = plans
        .iter()
        .position(|(train, _, _)| train.iter().all(|&i| y[i as usize] == 0.0))
    {
        return Err(Error::input(
            data_path,
            format!(
                "the targets of training fold {k} sum to 0; sklearn raises 'Sum of y is not \
                 strictly positive which is necessary for Poisson regression.'; use targets \
                 with a positive sum or another --criterion"
            ),
        ));
    }
    Ok(())
}

/// The scores' numpy mean and standard deviation.
fn summarize(
    scoring: Scoring,
    fold_scores: Vec<f64>,
    warning: Option<String>,
    scoring_warnings: Vec<String>,
) -> CvScore {
    let mean = numpy_sum(&fold_scores) / fold_scores.len() as f64;
    let deviations: Vec<f64> = fold_scores
        .iter()
        .map(|s| (s - mean) * (s - mean))
        .collect();
    let std = (numpy_sum(&deviations) / fold_scores.len() as f64).sqrt();
    CvScore {
        scoring,
        fold_scores,
        mean,
        std,
        warning,
        scoring_warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_follow_make_test_folds() {
        // y = [1,1,1,1,1,0,0,0,0,0,2,2,2,2,2]: class by first appearance 1->0, 0->1, 2->2;
        // each class spreads one row per fold, in file order.
        let labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2];
        let (folds, warning) = stratified_test_folds(&labels, 5).unwrap();
        assert_eq!(folds, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        assert!(warning.is_none());
    }

    #[test]
    fn folds_with_uneven_classes_match_sklearn() {
        // sklearn: StratifiedKFold(3)._make_test_folds(X, y) for
        // y = [0,0,0,0,0,0,0,1,1,1] gives [0,0,0,1,1,2,2,0,1,2].
        let labels = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        let (folds, _) = stratified_test_folds(&labels, 3).unwrap();
        assert_eq!(folds, [0, 0, 0, 1, 1, 2, 2, 0, 1, 2]);
    }

    #[test]
    fn rare_classes_warn_or_raise_like_sklearn() {
        let (_, w) = stratified_test_folds(&[0, 0, 0, 0, 0, 1, 1, 1], 5).unwrap();
        assert_eq!(
            w.unwrap(),
            "The least populated class in y has only 3 members, which is less than n_splits=5."
        );
        let e = stratified_test_folds(&[0, 0, 1, 1, 2, 2], 5).unwrap_err();
        assert_eq!(
            e,
            "n_splits=5 cannot be greater than the number of members in each class."
        );
        let e = stratified_test_folds(&[0, 1, 0], 5).unwrap_err();
        assert!(e.starts_with("Cannot have number of splits n_splits=5"));
    }

    #[test]
    fn kfold_blocks_are_contiguous_and_the_first_ones_longer() {
        // sklearn: KFold(3).split(np.zeros(8)) tests [0,1,2], [3,4,5], [6,7].
        assert_eq!(kfold_test_folds(8, 3).unwrap(), [0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(kfold_test_folds(5, 5).unwrap(), [0, 1, 2, 3, 4]);
        let e = kfold_test_folds(4, 5).unwrap_err();
        assert!(
            e.starts_with("Cannot have number of splits n_splits=5"),
            "{e}"
        );
    }

    #[test]
    fn the_many_classes_warning_uses_pythons_round() {
        // round(0.5 * 21) == 10 and round(0.5 * 23) == 12 (half to even).
        assert!(looks_like_regression(21, 11));
        assert!(!looks_like_regression(21, 10));
        assert!(!looks_like_regression(23, 12));
        assert!(looks_like_regression(23, 13));
        assert!(
            !looks_like_regression(20, 15),
            "at most 20 rows never warns"
        );
        assert!(!looks_like_regression(30, 2), "binary never warns");
    }

    #[test]
    fn numpy_mean_is_sequential_below_eight() {
        let s = [0.9, 0.85, 0.95, 0.875, 0.8];
        assert_eq!(numpy_sum(&s), (((0.9 + 0.85) + 0.95) + 0.875) + 0.8);
        let t: Vec<f64> = (0..20).map(|i| 0.1 * i as f64).collect();
        let mut r = [0.0; 8];
        r.copy_from_slice(&t[..8]);
        for j in 0..8 {
            r[j] += t[8 + j];
        }
        let want = ((r[0] + r[1]) + (r[2] + r[3]))
            + ((r[4] + r[5]) + (r[6] + r[7]))
            + t[16]
            + t[17]
            + t[18]
            + t[19];
        assert_eq!(numpy_sum(&t), want);
    }
}
