//! One decision tree exactly as scikit-learn 1.9.1 grows it for a forest.
//!
//! This is a port of `DepthFirstTreeBuilder` (tree/_tree.pyx), `BestSplitter::node_split_best`
//! (tree/_splitter.pyx), `DensePartitioner` including its missing-value handling
//! (tree/_partitioner.pyx) and the `Gini`/`Entropy` criteria (tree/_criterion.pyx). The
//! comments name the sklearn construct each step mirrors. What is deliberately *not* ported:
//! sklearn's introsort. Bootstrap weights are integers, so every class sum is exact and the order
//! of rows with equal values cannot change any result; any sort gives the same tree.
//!
//! The tree does not know about folds, bootstrap or seeds other than its own splitter seed; the
//! forest (`forest.rs`) decides those.

mod block;
mod builder;
mod draw;
mod impurity;
mod keys;
mod leaves;
mod scan;
#[cfg(test)]
mod tests;

use crate::params::Criterion;

pub(crate) use builder::{fit, root_split};
pub(crate) use draw::FeatureDraw;
pub(crate) use impurity::{impurity_of, log2_sklearn};
pub(crate) use keys::radix_sort_high_half;
pub(crate) use leaves::{Leaves, SPARSE_ABOVE};

/// sklearn's `FEATURE_THRESHOLD`, compared in float32 arithmetic like the Cython code.
pub(crate) const FEATURE_THRESHOLD: f32 = 1e-7;
/// sklearn's `EPSILON` in the tree builder: `np.finfo('double').eps`.
pub(crate) const EPSILON: f64 = f64::EPSILON;
pub(crate) const LEAF: u32 = u32::MAX;

/// Training data of one fold, column-major float32 as the splitter reads it. Rows outside the
/// fold are simply given weight 0, so folds share the dataset's columns instead of copying them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrainSet<'a> {
    /// `columns[f][i]` is feature `f` of row `i`; NaN marks a missing value.
    pub columns: &'a [&'a [f32]],
    pub n_rows: usize,
    pub n_features: usize,
    /// Class index of each row in `0..n_classes` (sklearn's `np.unique` encoding of the fold;
    /// any value for rows outside the fold).
    pub y: &'a [u32],
    pub n_classes: usize,
    /// Per feature: does any training row miss it (`missing_values_in_feature_mask`)?
    pub has_missing: &'a [bool],
}

/// Growth limits of one tree, already resolved against the data (sklearn's `_fit` prologue).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TreeConfig {
    pub criterion: Criterion,
    /// `max_depth`, `i32::MAX` when unlimited.
    pub max_depth: usize,
    /// `max(min_samples_split, 2 * min_samples_leaf)`.
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// `max_features_`: how many features to draw per split (≥ 1; may exceed `n_features`).
    pub max_features: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) left: u32,
    pub(crate) right: u32,
    /// The split feature; for a leaf, its index in `Tree::leaves`.
    pub(crate) feature: u32,
    pub(crate) threshold: f64,
    pub(crate) missing_go_to_left: bool,
}

/// A fitted tree: split nodes plus the leaves' class fractions (`tree_.value`, leaves only:
/// prediction never reads a split node's value); for a regression tree each leaf has one value,
/// its prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub(crate) nodes: Vec<Node>,
    pub(crate) leaves: Leaves,
}

impl Tree {
    /// Number of nodes (splits and leaves).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The leaf class fractions for one row (`row[f]` = feature `f`, NaN = missing), following
    /// `Tree.apply_dense`: NaN goes to `missing_go_to_left`, otherwise left iff
    /// `(double)x <= threshold`.
    pub fn leaf_value(&self, row: &[f32]) -> Vec<f64> {
        self.leaves.row(self.leaf_by(|f| row[f]))
    }

    /// The index in `leaves` of the leaf a row whose feature `f` is `x(f)` falls into.
    pub(crate) fn leaf_by(&self, x: impl Fn(usize) -> f32) -> u32 {
        let mut id = 0usize;
        loop {
            let node = &self.nodes[id];
            if node.left == LEAF {
                return node.feature;
            }
            let x = x(node.feature as usize);
            let go_left = if x.is_nan() {
                node.missing_go_to_left
            } else {
                f64::from(x) <= node.threshold
            };
            id = if go_left { node.left } else { node.right } as usize;
        }
    }
}

/// The builder's stack entry (`StackRecord`), shared by both builders.
pub(crate) struct StackRecord {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) depth: usize,
    pub(crate) parent: u32,
    pub(crate) is_left: bool,
    pub(crate) impurity: f64,
    pub(crate) n_constant_features: usize,
}
