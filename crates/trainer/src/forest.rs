//! The random forest: per-tree seeds, bootstrap-as-weights, probability averaging, and the
//! linfa estimator interface.
//!
//! Mirrors `BaseForest.fit` / `_parallel_build_trees` (ensemble/_forest.py): tree `t` gets seed
//! `RandomState(random_state).randint(2^31 - 1)` (the t-th draw); with bootstrap its weights are
//! `bincount(RandomState(seed).randint(0, n, n))`; its splitter seed is the first draw
//! `RandomState(seed).randint(0, 2^31 - 1)` of a fresh stream. `predict_proba` sums the trees'
//! leaf fractions in tree order and divides by the number of trees; `predict` takes the first
//! maximum.
//!
//! Cross-validation (`cv.rs`) uses the pieces (`tree_seeds`, `fit_tree`, `predict_into`) so it
//! can fit all (fold, tree) pairs in one parallel pass; [`RandomForest`] is the whole-model view
//! for linfa users.

use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};
use rayon::prelude::*;

use crate::criterion::{ClassCriterion, Mae, Mse, Poisson, RegressionSums};
use crate::dataset::Dataset;
use crate::error::Error;
use crate::params::Criterion;
use crate::params::ForestValidParams;
use crate::rng::{Mt19937, RAND_R_MAX};
use crate::splitter::{ExactFit, SplitKind, fit_exact, root_split_exact};
use crate::tree::{self, TrainSet, Tree, TreeConfig};

/// What a tree predicts and how it splits: the estimator's seams.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grower<'a> {
    /// Class fractions; `extra` draws random thresholds (extra trees).
    Classes { extra: bool },
    /// Values `y` (per dataset row); `extra` draws random thresholds.
    Values { y: &'a [f64], extra: bool },
}

/// Evaluates `$body` with `$fit` (the exact-order splitter's [`ExactFit`] for the grower)
/// and `$c` (a `&mut` to the grower's criterion, statically typed so the hot calls inline).
macro_rules! with_criterion {
    ($grower:expr, $data:expr, $weights:expr, $seed:expr, $cfg:expr,
     |$fit:ident, $c:ident| $body:expr) => {{
        let fit_of = |values, extra: bool| ExactFit {
            data: $data,
            values,
            weights: $weights,
            rand_r_seed: $seed,
            cfg: $cfg,
            kind: if extra {
                SplitKind::Random
            } else {
                SplitKind::Best
            },
        };
        match $grower {
            Grower::Classes { extra } => {
                let $fit = fit_of(&[], extra);
                let $c = &mut ClassCriterion::new($cfg.criterion, $data.n_classes);
                $body
            }
            Grower::Values { y, extra } => {
                let $fit = fit_of(y, extra);
                let s = RegressionSums::new();
                match $cfg.criterion {
                    Criterion::Poisson => {
                        let $c = &mut Poisson { s };
                        $body
                    }
                    Criterion::AbsoluteError => {
                        let $c = &mut Mae::new($data.n_rows);
                        $body
                    }
                    _ => {
                        let $c = &mut Mse { s };
                        $body
                    }
                }
            }
        }
    }};
}

impl Grower<'_> {
    /// Grows one tree. The random forest classifier keeps its own fused best splitter
    /// (`tree/`); everything else runs the exact-order splitter with its criterion.
    pub(crate) fn grow(
        self,
        data: TrainSet<'_>,
        weights: &[f64],
        rand_r_seed: u32,
        cfg: TreeConfig,
    ) -> Tree {
        if let Grower::Classes { extra: false } = self {
            return tree::fit(data, weights, rand_r_seed, cfg);
        }
        let width = match self {
            Grower::Classes { .. } => data.n_classes,
            Grower::Values { .. } => 1,
        };
        with_criterion!(self, data, weights, rand_r_seed, cfg, |fit, c| {
            fit_exact(fit, c, width)
        })
    }

    /// The split search at the root of the tree [`Grower::grow`] would grow: its feature and
    /// threshold, if it splits. For the benches.
    pub(crate) fn root_split(
        self,
        data: TrainSet<'_>,
        weights: &[f64],
        rand_r_seed: u32,
        cfg: TreeConfig,
    ) -> Option<(usize, f64)> {
        if let Grower::Classes { extra: false } = self {
            return tree::root_split(data, weights, rand_r_seed, cfg);
        }
        with_criterion!(self, data, weights, rand_r_seed, cfg, |fit, c| {
            root_split_exact(fit, c)
        })
    }

    /// The grower for `params`' estimator on `data`'s target.
    pub(crate) fn for_data<'a>(params: &ForestValidParams, data: &'a Dataset) -> Grower<'a> {
        let extra = params.estimator.is_extra_trees();
        match data.values() {
            Some(y) => Grower::Values { y, extra },
            None => Grower::Classes { extra },
        }
    }
}

/// The per-tree seeds `_set_random_states` draws from `RandomState(random_state)`.
pub(crate) fn tree_seeds(random_state: u32, n_estimators: usize) -> Vec<u32> {
    let mut rs = Mt19937::new(random_state);
    (0..n_estimators)
        .map(|_| rs.randint(0, i32::MAX as u64) as u32)
        .collect()
}

/// Resolves the tree's growth limits against the data (the prologue of `BaseDecisionTree._fit`).
pub(crate) fn tree_config(params: &ForestValidParams, n_features: usize) -> TreeConfig {
    TreeConfig {
        criterion: params.criterion,
        max_depth: params.max_depth.unwrap_or(i32::MAX as usize),
        min_samples_split: params.min_samples_split.max(2 * params.min_samples_leaf),
        min_samples_leaf: params.min_samples_leaf,
        max_features: params.max_features.resolve(n_features),
    }
}

/// Fits the tree seeded `seed` on the fold rows `train` of `data` (ascending): bootstrap counts
/// of `RandomState(seed).randint(0, n_train, n_train)` as weights (or all ones), then the
/// splitter seeded from a fresh stream. Rows outside `train` get weight 0.
pub(crate) fn fit_tree(
    data: TrainSet<'_>,
    train: &[u32],
    seed: u32,
    bootstrap: bool,
    cfg: TreeConfig,
    grower: Grower<'_>,
) -> Tree {
    let (weights, rand_r_seed) = tree_inputs(data.n_rows, train, seed, bootstrap);
    grower.grow(data, &weights, rand_r_seed, cfg)
}

/// Tree `seed`'s row weights over the `train` rows and its splitter seed.
fn tree_inputs(n_rows: usize, train: &[u32], seed: u32, bootstrap: bool) -> (Vec<f64>, u32) {
    let mut weights = vec![0.0; n_rows];
    if bootstrap {
        let mut rs = Mt19937::new(seed);
        for _ in 0..train.len() {
            weights[train[rs.randint(0, train.len() as u64) as usize] as usize] += 1.0;
        }
    } else {
        for &i in train {
            weights[i as usize] = 1.0;
        }
    }
    let rand_r_seed = Mt19937::new(seed).randint(0, u64::from(RAND_R_MAX)) as u32;
    (weights, rand_r_seed)
}

/// Calls `f` with what the first tree of the forest `params` fits on every row of `data` is
/// grown from (data, weights, splitter seed, limits): the single hot paths the criterion
/// benches time (`trainer::hot`).
pub(crate) fn with_first_tree<T>(
    data: &Dataset,
    params: &ForestValidParams,
    f: impl FnOnce(TrainSet<'_>, &[f64], u32, TreeConfig) -> T,
) -> T {
    let columns: Vec<&[f32]> = data.columns.iter().map(Vec::as_slice).collect();
    let has_missing: Vec<bool> = data
        .columns
        .iter()
        .map(|c| c.iter().any(|x| x.is_nan()))
        .collect();
    let set = TrainSet {
        columns: &columns,
        n_rows: data.n_rows,
        n_features: data.n_features,
        y: data.labels(),
        n_classes: data.classes().len(),
        has_missing: &has_missing,
    };
    let train: Vec<u32> = (0..data.n_rows as u32).collect();
    let seed = tree_seeds(params.random_state, 1)[0];
    let (weights, rand_r_seed) = tree_inputs(data.n_rows, &train, seed, params.bootstrap);
    f(
        set,
        &weights,
        rand_r_seed,
        tree_config(params, data.n_features),
    )
}

/// Adds each tree's leaf fractions into `proba` (row-major `n_rows * n_classes`) in tree order,
/// then divides by the number of trees, as `ForestClassifier.predict_proba` does.
pub(crate) fn predict_proba_into(
    trees: &[Tree],
    rows: &[f32],
    n_features: usize,
    n_classes: usize,
    proba: &mut [f64],
) {
    proba.iter_mut().for_each(|p| *p = 0.0);
    for tree in trees {
        for (row, out) in rows
            .chunks_exact(n_features)
            .zip(proba.chunks_exact_mut(n_classes))
        {
            tree.leaves.add_to(tree.leaf_by(|f| row[f]), out);
        }
    }
    let n_trees = trees.len() as f64;
    proba.iter_mut().for_each(|p| *p /= n_trees);
}

/// `np.argmax`: the index of the first maximum.
pub(crate) fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// A fitted forest. Class `k` of its probabilities is `classes()[k]`, the sorted distinct
/// training labels.
#[derive(Debug, Clone)]
pub struct RandomForest {
    trees: Vec<Tree>,
    classes: Vec<usize>,
    n_features: usize,
}

impl RandomForest {
    /// The trees in fit order.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// The sorted distinct training labels (`classes_`).
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// Class probabilities, row-major `n_rows * classes().len()`.
    pub fn predict_proba(&self, rows: &[f32]) -> Vec<f64> {
        let n_classes = self.classes.len();
        let mut proba = vec![0.0; rows.len() / self.n_features.max(1) * n_classes];
        predict_proba_into(&self.trees, rows, self.n_features, n_classes, &mut proba);
        proba
    }
}

/// Fits a forest on row-major float32 `rows` (`n_rows * n_features`, NaN = missing) with integer
/// labels, exactly as `RandomForestClassifier(**params).fit(X, y)` does.
pub fn fit_forest(
    rows: &[f32],
    n_features: usize,
    labels: &[usize],
    params: &ForestValidParams,
) -> Result<RandomForest, Error> {
    let n_rows = labels.len();
    if n_features == 0 || rows.len() != n_rows * n_features {
        return Err(Error::Dataset(format!(
            "expected {n_rows} rows of {n_features} features, got {} values",
            rows.len()
        )));
    }
    if n_rows == 0 {
        return Err(Error::Dataset("no training rows".into()));
    }
    if let Some(x) = rows.iter().find(|x| x.is_infinite()) {
        return Err(Error::Dataset(format!(
            "features contain an infinite value ({x})"
        )));
    }
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let y: Vec<u32> = labels
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0) as u32)
        .collect();
    let columns: Vec<Vec<f32>> = (0..n_features)
        .map(|f| rows.iter().skip(f).step_by(n_features).copied().collect())
        .collect();
    let column_refs: Vec<&[f32]> = columns.iter().map(Vec::as_slice).collect();
    let has_missing: Vec<bool> = columns
        .iter()
        .map(|c| c.iter().any(|x| x.is_nan()))
        .collect();
    let cfg = tree_config(params, n_features);
    let data = TrainSet {
        columns: &column_refs,
        n_rows,
        n_features,
        y: &y,
        n_classes: classes.len(),
        has_missing: &has_missing,
    };
    let train: Vec<u32> = (0..n_rows as u32).collect();
    let trees = tree_seeds(params.random_state, params.n_estimators)
        .into_par_iter()
        .map(|seed| {
            let grower = Grower::Classes {
                extra: params.estimator.is_extra_trees(),
            };
            fit_tree(data, &train, seed, params.bootstrap, cfg, grower)
        })
        .collect();
    Ok(RandomForest {
        trees,
        classes,
        n_features,
    })
}

fn to_f32_rows<F: linfa::Float, D: Data<Elem = F>>(x: &ArrayBase<D, Ix2>) -> Vec<f32> {
    x.rows()
        .into_iter()
        .flat_map(|r| {
            r.iter()
                .map(|v| v.to_f32().unwrap_or(f32::NAN))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// linfa estimator interface: `ForestParams::new().fit(&dataset)` (through linfa's `ParamGuard`
/// blanket impl) or `ForestValidParams::fit`. Records are converted to float32 as sklearn does;
/// targets are class labels.
impl<F, D, T> Fit<ArrayBase<D, Ix2>, T, Error> for ForestValidParams
where
    F: linfa::Float,
    D: Data<Elem = F>,
    T: AsSingleTargets<Elem = usize>,
{
    type Object = RandomForest;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<RandomForest, Error> {
        let records = dataset.records();
        let targets = dataset.as_single_targets();
        if targets.len() != records.nrows() {
            return Err(Error::Dataset(format!(
                "{} targets for {} records",
                targets.len(),
                records.nrows()
            )));
        }
        let labels: Vec<usize> = targets.iter().copied().collect();
        fit_forest(&to_f32_rows(records), records.ncols(), &labels, self)
    }
}

impl<F: linfa::Float, D: Data<Elem = F>> PredictInplace<ArrayBase<D, Ix2>, Array1<usize>>
    for RandomForest
{
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<usize>) {
        assert_eq!(
            x.ncols(),
            self.n_features,
            "records must have the training feature count"
        );
        assert_eq!(x.nrows(), y.len(), "one target slot per record");
        let proba = self.predict_proba(&to_f32_rows(x));
        let n_classes = self.classes.len();
        for (out, p) in y.iter_mut().zip(proba.chunks_exact(n_classes)) {
            *out = self.classes[argmax(p)];
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ForestParams;
    use linfa::prelude::{Dataset, Fit, Predict};
    use ndarray::{Array2, array};

    #[test]
    fn seeds_match_the_notes() {
        assert_eq!(tree_seeds(0, 3), [209652396, 398764591, 924231285]);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.5, 0.5]), 0);
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
    }

    #[test]
    fn usable_as_a_linfa_estimator() {
        let x: Array2<f64> = array![
            [0.0, 1.0],
            [0.1, 0.9],
            [0.2, 1.1],
            [5.0, 4.0],
            [5.1, 4.2],
            [4.9, 3.9]
        ];
        let y = Array1::from(vec![3usize, 3, 3, 7, 7, 7]);
        let dataset = Dataset::new(x.clone(), y.clone());
        // Unchecked params: linfa's ParamGuard blanket impl checks them first.
        let model: RandomForest = ForestParams::new().fit(&dataset).unwrap();
        assert_eq!(model.classes(), &[3, 7]);
        let pred = model.predict(&x);
        assert_eq!(pred, y);
        let bad: Result<RandomForest, Error> = ForestParams::new().n_estimators(0).fit(&dataset);
        assert!(matches!(bad, Err(Error::Params(_))));
    }
}
