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

use crate::params::Criterion;
use crate::rng::RandR;

/// sklearn's `FEATURE_THRESHOLD`, compared in float32 arithmetic like the Cython code.
const FEATURE_THRESHOLD: f32 = 1e-7;
/// sklearn's `EPSILON` in the tree builder: `np.finfo('double').eps`.
const EPSILON: f64 = f64::EPSILON;
const LEAF: u32 = u32::MAX;

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

#[derive(Debug, Clone)]
struct Node {
    left: u32,
    right: u32,
    feature: u32,
    threshold: f64,
    missing_go_to_left: bool,
}

/// A fitted tree: split nodes plus per-node class fractions (`tree_.value`).
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    /// `n_nodes * n_classes` fractions `sum_total[c] / weighted_n_node_samples`.
    values: Vec<f64>,
    n_classes: usize,
}

impl Tree {
    /// Number of nodes (splits and leaves).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The leaf class fractions for one row (`row[f]` = feature `f`, NaN = missing), following
    /// `Tree.apply_dense`: NaN goes to `missing_go_to_left`, otherwise left iff
    /// `(double)x <= threshold`.
    pub fn leaf_value(&self, row: &[f32]) -> &[f64] {
        self.leaf_value_by(|f| row[f])
    }

    /// [`Tree::leaf_value`] for a row whose feature `f` is `x(f)` (e.g. read from columns).
    pub fn leaf_value_by(&self, x: impl Fn(usize) -> f32) -> &[f64] {
        let mut id = 0usize;
        loop {
            let node = &self.nodes[id];
            if node.left == LEAF {
                return &self.values[id * self.n_classes..(id + 1) * self.n_classes];
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

struct StackRecord {
    start: usize,
    end: usize,
    depth: usize,
    parent: u32,
    is_left: bool,
    impurity: f64,
    n_constant_features: usize,
}

struct Split {
    feature: usize,
    threshold: f64,
    missing_go_to_left: bool,
    impurity_left: f64,
    impurity_right: f64,
    improvement: f64,
}

/// The per-tree splitter state (`Splitter` + `DensePartitioner` + `Criterion` buffers).
struct Splitter<'a> {
    data: TrainSet<'a>,
    weights: &'a [f64],
    cfg: TreeConfig,
    rng: RandR,
    /// Rows with non-zero weight; each node owns a contiguous range.
    samples: Vec<u32>,
    /// The Fisher-Yates permutation of features; persists across nodes in DFS order.
    features: Vec<usize>,
    constant_features: Vec<usize>,
    /// Total weight of the fold (`weighted_n_samples`).
    weighted_n_samples: f64,
    /// Per row: `weight << CLASS_BITS | class` when `packed`, else the row index.
    payload: Vec<u32>,
    packed: bool,
    // Scratch buffers reused across nodes.
    keys: Vec<u64>,
    key_buf: Vec<u64>,
    right_buf: Vec<u32>,
    values: Vec<f32>,
    classes: Vec<u32>,
    sample_w: Vec<f64>,
    sum_left: Vec<f64>,
    sum_right: Vec<f64>,
    sum_missing: Vec<f64>,
}

/// Grows one tree on `data` with per-row `weights` (bootstrap counts, or all ones), using
/// `rand_r_seed` for the splitter's feature draws.
pub(crate) fn fit(data: TrainSet<'_>, weights: &[f64], rand_r_seed: u32, cfg: TreeConfig) -> Tree {
    // Splitter.init: only positively weighted rows enter `samples`; the total weight counts all.
    let samples: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&i| weights[i as usize] != 0.0)
        .collect();
    let weighted_n_samples = weights.iter().sum();
    let n_classes = data.n_classes;
    // Pack (weight, class) into 32 bits when they fit (always, in practice: bootstrap counts are
    // small integers); otherwise fall back to carrying the row index.
    let packed = n_classes <= CLASS_MASK as usize + 1
        && samples.iter().all(|&i| {
            let w = weights[i as usize];
            w.fract() == 0.0 && w < f64::from(1u32 << (32 - CLASS_BITS))
        });
    let payload: Vec<u32> = if packed {
        (0..data.n_rows)
            .map(|i| ((weights[i] as u32) << CLASS_BITS) | data.y[i])
            .collect()
    } else {
        (0..data.n_rows as u32).collect()
    };
    let mut sp = Splitter {
        data,
        weights,
        cfg,
        rng: RandR::new(rand_r_seed),
        features: (0..data.n_features).collect(),
        constant_features: vec![0; data.n_features],
        weighted_n_samples,
        keys: Vec::with_capacity(samples.len()),
        key_buf: Vec::new(),
        right_buf: Vec::new(),
        payload,
        packed,
        values: Vec::with_capacity(samples.len()),
        classes: Vec::with_capacity(samples.len()),
        sample_w: Vec::with_capacity(samples.len()),
        sum_left: vec![0.0; n_classes],
        sum_right: vec![0.0; n_classes],
        sum_missing: vec![0.0; n_classes],
        samples,
    };
    sp.build()
}

impl Splitter<'_> {
    /// `DepthFirstTreeBuilder.build`.
    fn build(&mut self) -> Tree {
        let n_classes = self.data.n_classes;
        let mut nodes: Vec<Node> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        let mut sum_total = vec![0.0; n_classes];
        let mut stack = vec![StackRecord {
            start: 0,
            end: self.samples.len(),
            depth: 0,
            parent: LEAF,
            is_left: false,
            impurity: f64::INFINITY,
            n_constant_features: 0,
        }];
        let mut first = true;
        while let Some(rec) = stack.pop() {
            let n_node_samples = rec.end - rec.start;
            // node_reset -> criterion.init: class sums of the node.
            sum_total.iter_mut().for_each(|s| *s = 0.0);
            let mut weighted_n_node = 0.0;
            for &i in &self.samples[rec.start..rec.end] {
                let w = self.weights[i as usize];
                sum_total[self.data.y[i as usize] as usize] += w;
                weighted_n_node += w;
            }
            let mut is_leaf = rec.depth >= self.cfg.max_depth
                || n_node_samples < self.cfg.min_samples_split
                || n_node_samples < 2 * self.cfg.min_samples_leaf;
            let mut impurity = rec.impurity;
            if first {
                impurity = node_impurity(self.cfg.criterion, &sum_total, weighted_n_node);
                first = false;
            }
            is_leaf = is_leaf || impurity <= EPSILON;
            let mut split = None;
            let mut n_constant = rec.n_constant_features;
            if !is_leaf {
                let (found, n_total_constants) = self.node_split(
                    rec.start,
                    rec.end,
                    impurity,
                    rec.n_constant_features,
                    &sum_total,
                    weighted_n_node,
                );
                n_constant = n_total_constants;
                match found {
                    Some((s, pos)) if s.improvement + EPSILON >= 0.0 => split = Some((s, pos)),
                    _ => is_leaf = true,
                }
            }
            let node_id = nodes.len() as u32;
            if rec.parent != LEAF {
                let parent = &mut nodes[rec.parent as usize];
                if rec.is_left {
                    parent.left = node_id;
                } else {
                    parent.right = node_id;
                }
            }
            let (feature, threshold, missing_go_to_left) = match &split {
                Some((s, _)) => (s.feature as u32, s.threshold, s.missing_go_to_left),
                None => (0, 0.0, false),
            };
            nodes.push(Node {
                left: LEAF,
                right: LEAF,
                feature,
                threshold,
                missing_go_to_left,
            });
            values.extend(sum_total.iter().map(|&s| s / weighted_n_node));
            if let (false, Some((s, pos))) = (is_leaf, split) {
                // Right is pushed first so that the left child is built next.
                stack.push(StackRecord {
                    start: pos,
                    end: rec.end,
                    depth: rec.depth + 1,
                    parent: node_id,
                    is_left: false,
                    impurity: s.impurity_right,
                    n_constant_features: n_constant,
                });
                stack.push(StackRecord {
                    start: rec.start,
                    end: pos,
                    depth: rec.depth + 1,
                    parent: node_id,
                    is_left: true,
                    impurity: s.impurity_left,
                    n_constant_features: n_constant,
                });
            }
        }
        Tree {
            nodes,
            values,
            n_classes,
        }
    }

    /// Fills `keys` (sorted non-missing values with their rows) for `feature` over the node and
    /// returns the number of missing rows, whose class sums go to `sum_missing`.
    /// Mirrors `sort_samples_and_feature_values`.
    fn sort_feature(&mut self, start: usize, end: usize, feature: usize) -> usize {
        let col = self.data.columns[feature];
        self.keys.clear();
        self.sum_missing.iter_mut().for_each(|s| *s = 0.0);
        let mut n_missing = 0;
        let check_nan = self.data.has_missing[feature];
        for &i in &self.samples[start..end] {
            let x = col[i as usize];
            if check_nan && x.is_nan() {
                n_missing += 1;
                self.sum_missing[self.data.y[i as usize] as usize] += self.weights[i as usize];
                continue;
            }
            // The low half carries what the scan needs (class and weight, or the row), so the
            // sorted keys are read sequentially instead of gathering rows again.
            self.keys
                .push((u64::from(sortable(x)) << 32) | u64::from(self.payload[i as usize]));
        }
        radix_sort_high_half(&mut self.keys, &mut self.key_buf);
        self.values.clear();
        self.classes.clear();
        self.sample_w.clear();
        for &k in &self.keys {
            let payload = (k & 0xffff_ffff) as u32;
            self.values.push(unsortable((k >> 32) as u32));
            if self.packed {
                self.classes.push(payload & CLASS_MASK);
                self.sample_w.push(f64::from(payload >> CLASS_BITS));
            } else {
                self.classes.push(self.data.y[payload as usize]);
                self.sample_w.push(self.weights[payload as usize]);
            }
        }
        n_missing
    }

    /// `node_split_best`: returns the best split (with the left child's size) if any, and the
    /// number of constant features known to the children.
    fn node_split(
        &mut self,
        start: usize,
        end: usize,
        impurity: f64,
        n_known_constants: usize,
        sum_total: &[f64],
        weighted_n_node: f64,
    ) -> (Option<(Split, usize)>, usize) {
        let n_features = self.data.n_features;
        let max_features = self.cfg.max_features;
        let msl = self.cfg.min_samples_leaf;
        let n = end - start;
        let mut f_i = n_features;
        let mut n_visited = 0;
        let mut n_found_constants = 0;
        let mut n_drawn_constants = 0;
        let mut n_total_constants = n_known_constants;
        let mut best_proxy = f64::NEG_INFINITY;
        // (feature, threshold, missing_go_to_left)
        let mut best: Option<(usize, f64, bool)> = None;

        while f_i > n_total_constants
            && (n_visited < max_features || n_visited <= n_found_constants + n_drawn_constants)
        {
            n_visited += 1;
            let mut f_j = self
                .rng
                .rand_int(n_drawn_constants, f_i - n_found_constants);
            if f_j < n_known_constants {
                self.features.swap(n_drawn_constants, f_j);
                n_drawn_constants += 1;
                continue;
            }
            f_j += n_found_constants;
            let feature = self.features[f_j];
            let n_missing = self.sort_feature(start, end, feature);
            let nm = n - n_missing;
            if nm == 0
                || (n_missing == 0 && self.values[nm - 1] <= self.values[0] + FEATURE_THRESHOLD)
            {
                self.features.swap(f_j, n_total_constants);
                n_found_constants += 1;
                n_total_constants += 1;
                continue;
            }
            f_i -= 1;
            self.features.swap(f_i, f_j);

            // Two passes when rows are missing: first they go right (plus the candidate
            // "all non-missing left, all missing right" with threshold +inf), then left.
            let n_searches = if n_missing > 0 { 2 } else { 1 };
            for search in 0..n_searches {
                let go_left = search == 1;
                // criterion.reset(), then the missing rows sit left of the sorted values in the
                // second pass (shift_missing_to_the_left).
                let mut w_left = 0.0;
                if go_left {
                    self.sum_left.copy_from_slice(&self.sum_missing);
                    w_left = self.sum_missing.iter().sum::<f64>();
                } else {
                    self.sum_left.iter_mut().for_each(|s| *s = 0.0);
                }
                // `q` indexes the sorted non-missing values; positions before it are left.
                let mut q = 0usize;
                loop {
                    // Partitioner.next_p.
                    if !go_left && q == nm {
                        break;
                    }
                    let from = q;
                    q += 1;
                    while q < nm && self.values[q] <= self.values[q - 1] + FEATURE_THRESHOLD {
                        q += 1;
                    }
                    for k in from..q {
                        self.sum_left[self.classes[k] as usize] += self.sample_w[k];
                        w_left += self.sample_w[k];
                    }
                    let n_left = q + if go_left { n_missing } else { 0 };
                    if n_left == n {
                        break;
                    }
                    let n_right = n - n_left;
                    if n_left < msl || n_right < msl {
                        continue;
                    }
                    let w_right = weighted_n_node - w_left;
                    right_sums(sum_total, &self.sum_left, &mut self.sum_right);
                    let imp_left = impurity_of(self.cfg.criterion, &self.sum_left, w_left);
                    let imp_right = impurity_of(self.cfg.criterion, &self.sum_right, w_right);
                    let proxy = -w_right * imp_right - w_left * imp_left;
                    if proxy > best_proxy {
                        best_proxy = proxy;
                        let threshold = if q == nm && !go_left {
                            f64::INFINITY
                        } else {
                            f64::from(self.values[q - 1]) / 2.0 + f64::from(self.values[q]) / 2.0
                        };
                        let mgl = if n_missing == 0 {
                            n_left > n_right
                        } else {
                            go_left
                        };
                        best = Some((feature, threshold, mgl));
                    }
                }
            }
        }

        let result = best.map(|(feature, threshold, missing_go_to_left)| {
            // partition_samples_final, then reset/update/children_impurity/impurity_improvement.
            let col = self.data.columns[feature];
            // A stable partition (unlike sklearn's swapping one) keeps every node's rows in
            // ascending order, so the per-feature gathers walk memory forwards. The order of
            // rows never changes a result (exact integer class sums).
            let node = &mut self.samples[start..end];
            let right = &mut self.right_buf;
            right.clear();
            let mut lo = 0;
            for k in 0..node.len() {
                let i = node[k];
                let x = col[i as usize];
                let go_left = if x.is_nan() {
                    missing_go_to_left
                } else {
                    f64::from(x) <= threshold
                };
                if go_left {
                    node[lo] = i;
                    lo += 1;
                } else {
                    right.push(i);
                }
            }
            node[lo..].copy_from_slice(right);
            self.sum_left.iter_mut().for_each(|s| *s = 0.0);
            let mut w_left = 0.0;
            for &i in &node[..lo] {
                let w = self.weights[i as usize];
                self.sum_left[self.data.y[i as usize] as usize] += w;
                w_left += w;
            }
            let w_right = weighted_n_node - w_left;
            right_sums(sum_total, &self.sum_left, &mut self.sum_right);
            let impurity_left = impurity_of(self.cfg.criterion, &self.sum_left, w_left);
            let impurity_right = impurity_of(self.cfg.criterion, &self.sum_right, w_right);
            let improvement = (weighted_n_node / self.weighted_n_samples)
                * (impurity
                    - (w_right / weighted_n_node * impurity_right)
                    - (w_left / weighted_n_node * impurity_left));
            (
                Split {
                    feature,
                    threshold,
                    missing_go_to_left,
                    impurity_left,
                    impurity_right,
                    improvement,
                },
                start + lo,
            )
        });

        // Respect the invariant for constant features: restore the known ones, append new ones.
        self.features[..n_known_constants]
            .copy_from_slice(&self.constant_features[..n_known_constants]);
        let (known, found) = (n_known_constants, n_found_constants);
        self.constant_features[known..known + found]
            .copy_from_slice(&self.features[known..known + found]);
        (result, n_total_constants)
    }
}

/// Bits of a packed payload that hold the class.
const CLASS_BITS: u32 = 20;
const CLASS_MASK: u32 = (1 << CLASS_BITS) - 1;

/// Sorts keys by their high 32 bits (the order of equal high halves is irrelevant here):
/// LSD radix sort with 8-bit digits for large nodes, skipping digits all keys share.
fn radix_sort_high_half(keys: &mut Vec<u64>, buf: &mut Vec<u64>) {
    let n = keys.len();
    if n < 1024 {
        // Ties on the value may end up in any payload order, which is irrelevant.
        keys.sort_unstable();
        return;
    }
    let mut hist = [[0usize; 256]; 4];
    for &k in keys.iter() {
        let h = (k >> 32) as u32;
        for (d, row) in hist.iter_mut().enumerate() {
            row[((h >> (8 * d)) & 0xff) as usize] += 1;
        }
    }
    buf.clear();
    buf.resize(n, 0);
    for (d, row) in hist.iter().enumerate() {
        if row.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut total = 0;
        for (o, &c) in offsets.iter_mut().zip(row) {
            *o = total;
            total += c;
        }
        let shift = 32 + 8 * d;
        for &k in keys.iter() {
            let b = ((k >> shift) & 0xff) as usize;
            buf[offsets[b]] = k;
            offsets[b] += 1;
        }
        std::mem::swap(keys, buf);
    }
}

/// Inverse of [`sortable`].
fn unsortable(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// `sum_right = sum_total - sum_left`, class by class (`ClassificationCriterion.update`).
fn right_sums(sum_total: &[f64], sum_left: &[f64], sum_right: &mut [f64]) {
    for ((r, t), l) in sum_right.iter_mut().zip(sum_total).zip(sum_left) {
        *r = t - l;
    }
}

/// Maps an f32 (not NaN) to a u32 whose unsigned order is the float order.
fn sortable(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// `Gini.node_impurity` / `Entropy.node_impurity`.
fn node_impurity(criterion: Criterion, sums: &[f64], weight: f64) -> f64 {
    impurity_of(criterion, sums, weight)
}

/// Impurity of one side from its class sums, in the exact operation order of `_criterion.pyx`.
fn impurity_of(criterion: Criterion, sums: &[f64], weight: f64) -> f64 {
    match criterion {
        Criterion::Gini => {
            let mut sq = 0.0;
            for &c in sums {
                sq += c * c;
            }
            1.0 - sq / (weight * weight)
        }
        Criterion::Entropy => {
            let mut entropy = 0.0;
            for &c in sums {
                if c > 0.0 {
                    let p = c / weight;
                    entropy -= p * log2_sklearn(p);
                }
            }
            entropy
        }
    }
}

/// sklearn's `_utils.log`: `ln(x) / ln(2.0)` (not `log2`, which can differ in the last bit).
fn log2_sklearn(x: f64) -> f64 {
    x.ln() / std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_keys_order_like_floats() {
        let xs = [
            f32::NEG_INFINITY,
            -2.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            1.0,
            3.5,
            f32::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(sortable(w[0]) <= sortable(w[1]), "{} vs {}", w[0], w[1]);
        }
    }

    #[test]
    fn radix_sort_orders_by_the_float_key() {
        let xs: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 5003) as f32 * if i % 3 == 0 { -0.37 } else { 1.13 })
            .collect();
        let mut keys: Vec<u64> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| (u64::from(sortable(x)) << 32) | i as u64)
            .collect();
        radix_sort_high_half(&mut keys, &mut Vec::new());
        let sorted: Vec<f32> = keys.iter().map(|k| unsortable((k >> 32) as u32)).collect();
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        let mut want = xs.clone();
        want.sort_by(f32::total_cmp);
        assert_eq!(sorted, want);
        assert_eq!(unsortable(sortable(-0.0)).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn ln2_constant_is_what_libm_returns() {
        assert_eq!(2.0f64.ln(), std::f64::consts::LN_2);
    }

    #[test]
    fn pure_node_is_a_single_leaf() {
        let columns: &[&[f32]] = &[&[1.0f32, 2.0, 3.0, 4.0]];
        let y = [0u32, 0, 0, 0];
        let data = TrainSet {
            columns,
            n_rows: 4,
            n_features: 1,
            y: &y,
            n_classes: 1,
            has_missing: &[false],
        };
        let cfg = TreeConfig {
            criterion: Criterion::Gini,
            max_depth: i32::MAX as usize,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: 1,
        };
        let tree = fit(data, &[1.0; 4], 7, cfg);
        assert_eq!(tree.n_nodes(), 1);
        assert_eq!(tree.leaf_value(&[2.0]), &[1.0]);
    }

    #[test]
    fn separable_feature_splits_at_the_midpoint() {
        let columns: &[&[f32]] = &[&[1.0f32, 2.0, 3.0, 4.0]];
        let y = [0u32, 0, 1, 1];
        let data = TrainSet {
            columns,
            n_rows: 4,
            n_features: 1,
            y: &y,
            n_classes: 2,
            has_missing: &[false],
        };
        let cfg = TreeConfig {
            criterion: Criterion::Entropy,
            max_depth: i32::MAX as usize,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: 1,
        };
        let tree = fit(data, &[1.0; 4], 7, cfg);
        assert_eq!(tree.n_nodes(), 3);
        assert_eq!(tree.nodes[0].threshold, 2.5);
        assert_eq!(tree.leaf_value(&[2.5]), &[1.0, 0.0]);
        assert_eq!(tree.leaf_value(&[2.6]), &[0.0, 1.0]);
        // Equal sizes: without missing values in training, NaN goes right (n_left > n_right).
        assert_eq!(tree.leaf_value(&[f32::NAN]), &[0.0, 1.0]);
    }
}
