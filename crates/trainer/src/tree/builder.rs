//! The classifier's builder: `DepthFirstTreeBuilder.build` over `BestSplitter::node_split_best`
//! with `DensePartitioner` (stable partitions; any row order gives the same integer class sums).

use super::block::{BLOCK_BYTES, Block, Cols, View};
use super::keys::{CLASS_BITS, CLASS_MASK, radix_sort_high_half, sortable, value_of};
use super::scan::{Scan, right_sums, scan_classes};
use super::{
    EPSILON, FEATURE_THRESHOLD, FeatureDraw, LEAF, Leaves, Node, StackRecord, TrainSet, Tree,
    TreeConfig, impurity_of,
};
use crate::params::Criterion;
use crate::rng::RandR;

struct Split {
    feature: usize,
    threshold: f64,
    missing_go_to_left: bool,
    impurity_left: f64,
    impurity_right: f64,
    improvement: f64,
}

/// The best candidate so far in `node_split_best`: `(feature, threshold, missing_go_to_left)`
/// and its proxy improvement.
pub(super) struct Best {
    pub(super) proxy: f64,
    pub(super) split: Option<(usize, f64, bool)>,
}

/// The fitted nodes so far.
struct Out {
    nodes: Vec<Node>,
    leaves: Leaves,
}

impl Out {
    /// Appends the node of `rec` (a split, or a leaf whose class fractions are
    /// `sum_total / weight`), links it to its parent and returns its id.
    fn add(&mut self, rec: &StackRecord, split: Option<&Split>, leaf: (&[f64], f64)) -> u32 {
        let node_id = self.nodes.len() as u32;
        rec.link(&mut self.nodes, node_id);
        let (feature, threshold, missing_go_to_left) = match split {
            Some(s) => (s.feature as u32, s.threshold, s.missing_go_to_left),
            None => {
                // A leaf: its class fractions are the next of `leaves`.
                let (sum_total, weight) = leaf;
                (self.leaves.push(sum_total, weight), 0.0, false)
            }
        };
        self.nodes.push(Node {
            left: LEAF,
            right: LEAF,
            feature,
            threshold,
            missing_go_to_left,
        });
        node_id
    }
}

/// The per-tree splitter state (`Splitter` + `DensePartitioner` + `Criterion` buffers).
struct Splitter<'a> {
    n_features: usize,
    n_classes: usize,
    has_missing: &'a [bool],
    cfg: TreeConfig,
    rng: RandR,
    /// Rows with non-zero weight; each node owns a contiguous range.
    samples: Vec<u32>,
    /// The Fisher-Yates permutation of features; persists across nodes in DFS order.
    features: Vec<usize>,
    constant_features: Vec<usize>,
    /// Total weight of the fold (`weighted_n_samples`).
    weighted_n_samples: f64,
    /// Whether payloads carry (weight, class) rather than row indices.
    packed: bool,
    tuning: Tuning,
    // Scratch buffers reused across nodes.
    keys: Vec<u64>,
    key_buf: Vec<u64>,
    right_buf: Vec<u32>,
    sum_total: Vec<f64>,
    sum_left: Vec<f64>,
    sum_right: Vec<f64>,
    sum_missing: Vec<f64>,
}

/// Speed choices that never change the tree; the tests vary them to show that.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Subtrees whose root has at most this many rows are grown from a [`Block`].
    pub block_rows: usize,
    /// Allow the Gini screen of [`scan_feature`] where it is exact.
    pub gini_screen: bool,
}

impl Tuning {
    /// The choices [`fit`] makes for `n_features` features.
    pub(crate) fn auto(n_features: usize) -> Self {
        Tuning {
            block_rows: (BLOCK_BYTES / (4 * n_features.max(1))).max(64),
            gini_screen: true,
        }
    }
}

/// Grows one tree on `data` with per-row `weights` (bootstrap counts, or all ones), using
/// `rand_r_seed` for the splitter's feature draws.
pub(crate) fn fit(data: TrainSet<'_>, weights: &[f64], rand_r_seed: u32, cfg: TreeConfig) -> Tree {
    fit_tuned(
        data,
        weights,
        rand_r_seed,
        cfg,
        Tuning::auto(data.n_features),
    )
}

/// [`fit`] with explicit [`Tuning`].
pub(crate) fn fit_tuned(
    data: TrainSet<'_>,
    weights: &[f64],
    rand_r_seed: u32,
    cfg: TreeConfig,
    tuning: Tuning,
) -> Tree {
    with_splitter(data, weights, rand_r_seed, cfg, tuning, |sp, fold| {
        sp.build(fold)
    })
}

/// The split search at the root alone (what [`fit`] does first): the chosen feature and
/// threshold, if the root splits. For the benches.
pub(crate) fn root_split(
    data: TrainSet<'_>,
    weights: &[f64],
    rand_r_seed: u32,
    cfg: TreeConfig,
) -> Option<(usize, f64)> {
    let tuning = Tuning::auto(data.n_features);
    with_splitter(data, weights, rand_r_seed, cfg, tuning, |sp, fold| {
        let n = sp.samples.len();
        let weighted_n_node = sp.node_totals(&fold, 0, n);
        let impurity = impurity_of(cfg.criterion, &sp.sum_total, weighted_n_node);
        let (found, _) = sp.node_split(&fold, 0, n, impurity, 0, weighted_n_node);
        found.map(|(s, _)| (s.feature, s.threshold))
    })
}

/// Sets up the splitter for `data` (`Splitter.init`) and hands it to `f` with the fold's view.
fn with_splitter<T>(
    data: TrainSet<'_>,
    weights: &[f64],
    rand_r_seed: u32,
    cfg: TreeConfig,
    tuning: Tuning,
    f: impl FnOnce(&mut Splitter<'_>, View<'_>) -> T,
) -> T {
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
    let view = View {
        cols: Cols::Split(data.columns),
        y: data.y,
        weights,
        payload: &payload,
    };
    let mut sp = Splitter {
        n_features: data.n_features,
        n_classes,
        has_missing: data.has_missing,
        cfg,
        rng: RandR::new(rand_r_seed),
        features: (0..data.n_features).collect(),
        constant_features: vec![0; data.n_features],
        weighted_n_samples,
        packed,
        tuning,
        keys: Vec::with_capacity(samples.len()),
        key_buf: Vec::new(),
        right_buf: Vec::new(),
        sum_total: vec![0.0; n_classes],
        sum_left: vec![0.0; n_classes],
        sum_right: vec![0.0; n_classes],
        sum_missing: vec![0.0; n_classes],
        samples,
    };
    f(&mut sp, view)
}

impl Splitter<'_> {
    /// `DepthFirstTreeBuilder.build`: nodes in depth-first order, left child first.
    fn build(&mut self, fold: View<'_>) -> Tree {
        let mut out = Out {
            nodes: Vec::new(),
            leaves: Leaves::new(self.n_classes),
        };
        let mut stack = vec![StackRecord::root(self.samples.len())];
        let mut block = Block::default();
        while let Some(rec) = stack.pop() {
            let n = rec.end - rec.start;
            // Only copy for a subtree that will split at least once more.
            let worth_a_block = n <= self.tuning.block_rows
                && n >= self.cfg.min_samples_split
                && n >= 2 * self.cfg.min_samples_leaf
                && rec.depth < self.cfg.max_depth
                && rec.impurity > EPSILON;
            if worth_a_block {
                // Everything pushed above `base` belongs to this subtree (depth first), so the
                // subtree is complete when the stack is back at `base`.
                let base = stack.len();
                let packed = self.packed;
                let view = block.fill(
                    &fold,
                    self.n_features,
                    packed,
                    &mut self.samples[rec.start..rec.end],
                );
                self.node(rec, &view, &mut stack, &mut out);
                while stack.len() > base {
                    let rec = stack.pop().expect("stack above base");
                    self.node(rec, &view, &mut stack, &mut out);
                }
            } else {
                self.node(rec, &fold, &mut stack, &mut out);
            }
        }
        Tree {
            nodes: out.nodes,
            leaves: out.leaves,
        }
    }

    /// One iteration of the builder's loop: evaluate the node, add it, push its children.
    fn node(
        &mut self,
        rec: StackRecord,
        view: &View<'_>,
        stack: &mut Vec<StackRecord>,
        out: &mut Out,
    ) {
        let n_node_samples = rec.end - rec.start;
        let weighted_n_node = self.node_totals(view, rec.start, rec.end);
        let mut is_leaf = rec.depth >= self.cfg.max_depth
            || n_node_samples < self.cfg.min_samples_split
            || n_node_samples < 2 * self.cfg.min_samples_leaf;
        let mut impurity = rec.impurity;
        // The root's impurity is computed; every other node's comes from its parent's split.
        if rec.parent == LEAF {
            impurity = impurity_of(self.cfg.criterion, &self.sum_total, weighted_n_node);
        }
        is_leaf = is_leaf || impurity <= EPSILON;
        let mut split = None;
        let mut n_constant = rec.n_constant_features;
        if !is_leaf {
            let (found, n_total_constants) = self.node_split(
                view,
                rec.start,
                rec.end,
                impurity,
                rec.n_constant_features,
                weighted_n_node,
            );
            n_constant = n_total_constants;
            match found {
                Some((s, pos)) if s.improvement + EPSILON >= 0.0 => split = Some((s, pos)),
                _ => is_leaf = true,
            }
        }
        let leaf_value = (&self.sum_total[..], weighted_n_node);
        let node_id = out.add(&rec, split.as_ref().map(|(s, _)| s), leaf_value);
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

    /// `node_reset` -> `criterion.init`: the node's class sums into `sum_total`; returns its
    /// weight.
    fn node_totals(&mut self, view: &View<'_>, start: usize, end: usize) -> f64 {
        self.sum_total.iter_mut().for_each(|s| *s = 0.0);
        let mut weighted_n_node = 0.0;
        for &i in &self.samples[start..end] {
            let w = view.weights[i as usize];
            self.sum_total[view.y[i as usize] as usize] += w;
            weighted_n_node += w;
        }
        weighted_n_node
    }

    /// Fills `keys` with the node's non-missing values of `feature`, sorted, each carrying its
    /// row's payload in the low half, and returns the number of missing rows, whose class sums
    /// go to `sum_missing`. Mirrors `sort_samples_and_feature_values`.
    fn sort_feature(&mut self, view: &View<'_>, start: usize, end: usize, feature: usize) -> usize {
        let col = view.column(feature);
        self.keys.clear();
        self.sum_missing.iter_mut().for_each(|s| *s = 0.0);
        let mut n_missing = 0;
        let check_nan = self.has_missing[feature];
        for &i in &self.samples[start..end] {
            let x = col[i as usize];
            if check_nan && x.is_nan() {
                n_missing += 1;
                self.sum_missing[view.y[i as usize] as usize] += view.weights[i as usize];
                continue;
            }
            // The low half carries what the scan needs (class and weight, or the row), so the
            // sorted keys are read sequentially instead of gathering rows again.
            self.keys
                .push((u64::from(sortable(x)) << 32) | u64::from(view.payload[i as usize]));
        }
        radix_sort_high_half(&mut self.keys, &mut self.key_buf);
        n_missing
    }

    /// `node_split_best`: returns the best split (with the left child's size) if any, and the
    /// number of constant features known to the children.
    fn node_split(
        &mut self,
        view: &View<'_>,
        start: usize,
        end: usize,
        impurity: f64,
        n_known_constants: usize,
        weighted_n_node: f64,
    ) -> (Option<(Split, usize)>, usize) {
        let n = end - start;
        let mut draw = FeatureDraw::new(self.n_features, n_known_constants, self.cfg.max_features);
        let mut best = Best {
            proxy: f64::NEG_INFINITY,
            split: None,
        };

        while let Some(f_j) = draw.next(&mut self.features, &mut self.rng) {
            let feature = self.features[f_j];
            let n_missing = self.sort_feature(view, start, end, feature);
            let nm = n - n_missing;
            if nm == 0
                || (n_missing == 0
                    && value_of(self.keys[nm - 1]) <= value_of(self.keys[0]) + FEATURE_THRESHOLD)
            {
                draw.constant(&mut self.features, f_j);
                continue;
            }
            draw.accept(&mut self.features, f_j);

            let scan = Scan {
                criterion: self.cfg.criterion,
                feature,
                n,
                n_missing,
                min_samples_leaf: self.cfg.min_samples_leaf,
                weighted_n_node,
                keys: &self.keys,
                sum_total: &self.sum_total,
                sum_missing: &self.sum_missing,
            };
            let sums = (&mut self.sum_left[..], &mut self.sum_right[..]);
            let nc = self.n_classes;
            if self.packed {
                // Packed weights are integers: the Gini screen is exact below 2^26.
                let screen = self.tuning.gini_screen
                    && self.cfg.criterion == Criterion::Gini
                    && weighted_n_node < f64::from(1 << 26);
                let decode = |p: u32| ((p & CLASS_MASK) as usize, f64::from(p >> CLASS_BITS));
                scan_classes(nc, screen, &scan, decode, sums, &mut best);
            } else {
                let decode = |p: u32| (view.y[p as usize] as usize, view.weights[p as usize]);
                scan_classes(nc, false, &scan, decode, sums, &mut best);
            }
        }

        let result = best
            .split
            .map(|chosen| self.split_at(view, (start, end), impurity, weighted_n_node, chosen));

        let n_total_constants = draw.finish(&mut self.features, &mut self.constant_features);
        (result, n_total_constants)
    }
    /// `partition_samples_final`, then `reset`/`update`/`children_impurity`/
    /// `impurity_improvement` for the chosen `(feature, threshold, missing_go_to_left)`:
    /// the split and the position of the right child's first row.
    fn split_at(
        &mut self,
        view: &View<'_>,
        (start, end): (usize, usize),
        impurity: f64,
        weighted_n_node: f64,
        (feature, threshold, missing_go_to_left): (usize, f64, bool),
    ) -> (Split, usize) {
        let lo = self.partition(view, (start, end), feature, threshold, missing_go_to_left);
        self.sum_left.iter_mut().for_each(|s| *s = 0.0);
        let mut w_left = 0.0;
        for &i in &self.samples[start..start + lo] {
            let w = view.weights[i as usize];
            self.sum_left[view.y[i as usize] as usize] += w;
            w_left += w;
        }
        let w_right = weighted_n_node - w_left;
        right_sums(&self.sum_total, &self.sum_left, &mut self.sum_right);
        let impurity_left = impurity_of(self.cfg.criterion, &self.sum_left, w_left);
        let impurity_right = impurity_of(self.cfg.criterion, &self.sum_right, w_right);
        let improvement = (weighted_n_node / self.weighted_n_samples)
            * (impurity
                - (w_right / weighted_n_node * impurity_right)
                - (w_left / weighted_n_node * impurity_left));
        let split = Split {
            feature,
            threshold,
            missing_go_to_left,
            impurity_left,
            impurity_right,
            improvement,
        };
        (split, start + lo)
    }

    /// Moves the node's rows that go left to the front; returns how many there are.
    fn partition(
        &mut self,
        view: &View<'_>,
        (start, end): (usize, usize),
        feature: usize,
        threshold: f64,
        missing_go_to_left: bool,
    ) -> usize {
        let col = view.column(feature);
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
        lo
    }
}
