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
    /// The split feature; for a leaf, the index of its row in `Tree::values`.
    pub(crate) feature: u32,
    pub(crate) threshold: f64,
    pub(crate) missing_go_to_left: bool,
}

/// A fitted tree: split nodes plus per-node class fractions (`tree_.value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub(crate) nodes: Vec<Node>,
    /// `n_leaves * n_classes` fractions `sum_total[c] / weighted_n_node_samples`, leaves only
    /// (prediction never reads a split node's value); for a regression tree `n_classes` is 1
    /// and the value is the leaf's prediction.
    pub(crate) values: Vec<f64>,
    pub(crate) n_classes: usize,
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
                let k = node.feature as usize;
                return &self.values[k * self.n_classes..(k + 1) * self.n_classes];
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
struct Best {
    proxy: f64,
    split: Option<(usize, f64, bool)>,
}

/// Where a node's rows are read from: the fold's own columns, or a subtree's compact copy
/// ([`Block`]). Rows are indices into these slices.
#[derive(Clone, Copy)]
struct View<'a> {
    cols: Cols<'a>,
    y: &'a [u32],
    weights: &'a [f64],
    /// Per row: `weight << CLASS_BITS | class` when packed, else the row's own index.
    payload: &'a [u32],
}

#[derive(Clone, Copy)]
enum Cols<'a> {
    /// One slice per feature.
    Split(&'a [&'a [f32]]),
    /// Feature `f` is `data[f * n..(f + 1) * n]`.
    Flat { data: &'a [f32], n: usize },
}

impl<'a> View<'a> {
    fn column(&self, f: usize) -> &'a [f32] {
        match self.cols {
            Cols::Split(cols) => cols[f],
            Cols::Flat { data, n } => &data[f * n..(f + 1) * n],
        }
    }
}

/// Bytes a subtree's compact copy may take: it should stay in a core's L2 cache.
const BLOCK_BYTES: usize = 1 << 20;

/// A compact copy of one subtree's rows. Deep in a tree a node's rows are scattered over the
/// whole fold, so every feature gather misses the cache; once a node is small enough, its rows
/// are copied once into contiguous columns and the whole subtree below it reads those instead.
/// The copy changes where values are read from, never which values, so the tree is the same.
#[derive(Default)]
struct Block {
    cols: Vec<f32>,
    y: Vec<u32>,
    weights: Vec<f64>,
    payload: Vec<u32>,
}

impl Block {
    /// Copies the rows `samples` of `from` (every feature, label, weight and payload) and
    /// renumbers `samples` to the copy's rows `0..n`.
    fn fill<'b>(
        &'b mut self,
        from: &View<'_>,
        n_features: usize,
        packed: bool,
        samples: &mut [u32],
    ) -> View<'b> {
        let n = samples.len();
        self.cols.clear();
        self.cols.reserve(n * n_features);
        for f in 0..n_features {
            let col = from.column(f);
            self.cols.extend(samples.iter().map(|&i| col[i as usize]));
        }
        self.y.clear();
        self.y.extend(samples.iter().map(|&i| from.y[i as usize]));
        self.weights.clear();
        self.weights
            .extend(samples.iter().map(|&i| from.weights[i as usize]));
        self.payload.clear();
        if packed {
            self.payload
                .extend(samples.iter().map(|&i| from.payload[i as usize]));
        } else {
            self.payload.extend(0..n as u32);
        }
        for (k, s) in samples.iter_mut().enumerate() {
            *s = k as u32;
        }
        View {
            cols: Cols::Flat {
                data: &self.cols,
                n,
            },
            y: &self.y,
            weights: &self.weights,
            payload: &self.payload,
        }
    }
}

/// The fitted nodes so far.
#[derive(Default)]
struct Out {
    nodes: Vec<Node>,
    values: Vec<f64>,
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
        let mut out = Out::default();
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
            values: out.values,
            n_classes: self.n_classes,
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
        let node_id = out.nodes.len() as u32;
        rec.link(&mut out.nodes, node_id);
        let (feature, threshold, missing_go_to_left) = match &split {
            Some((s, _)) => (s.feature as u32, s.threshold, s.missing_go_to_left),
            None => {
                // A leaf: its class fractions are the next row of `values`.
                let leaf = (out.values.len() / self.n_classes.max(1)) as u32;
                out.values
                    .extend(self.sum_total.iter().map(|&s| s / weighted_n_node));
                (leaf, 0.0, false)
            }
        };
        out.nodes.push(Node {
            left: LEAF,
            right: LEAF,
            feature,
            threshold,
            missing_go_to_left,
        });
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

        let result = best.split.map(|(feature, threshold, missing_go_to_left)| {
            // partition_samples_final, then reset/update/children_impurity/impurity_improvement.
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
            self.sum_left.iter_mut().for_each(|s| *s = 0.0);
            let mut w_left = 0.0;
            for &i in &node[..lo] {
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

        let n_total_constants = draw.finish(&mut self.features, &mut self.constant_features);
        (result, n_total_constants)
    }
}

/// sklearn's per-node feature draw, shared by every splitter (`node_split_best` and
/// `node_split_random`): a Fisher-Yates draw over the tree's `features` permutation that skips
/// features known to be constant and keeps drawing while every feature drawn so far was
/// constant. [`FeatureDraw::next`] yields the position of the next feature to evaluate; the
/// caller then calls [`FeatureDraw::constant`] or [`FeatureDraw::accept`] for it.
pub(crate) struct FeatureDraw {
    f_i: usize,
    n_visited: usize,
    n_found: usize,
    n_drawn: usize,
    n_known: usize,
    n_total: usize,
    max_features: usize,
}

impl FeatureDraw {
    pub(crate) fn new(n_features: usize, n_known: usize, max_features: usize) -> Self {
        FeatureDraw {
            f_i: n_features,
            n_visited: 0,
            n_found: 0,
            n_drawn: 0,
            n_known,
            n_total: n_known,
            max_features,
        }
    }

    /// The position in `features` of the next feature to evaluate, or `None` when the loop
    /// ends. Known constants drawn on the way are set aside as sklearn does.
    #[inline]
    pub(crate) fn next(&mut self, features: &mut [usize], rng: &mut RandR) -> Option<usize> {
        while self.f_i > self.n_total
            && (self.n_visited < self.max_features || self.n_visited <= self.n_found + self.n_drawn)
        {
            self.n_visited += 1;
            let f_j = rng.rand_int(self.n_drawn, self.f_i - self.n_found);
            if f_j < self.n_known {
                features.swap(self.n_drawn, f_j);
                self.n_drawn += 1;
                continue;
            }
            return Some(f_j + self.n_found);
        }
        None
    }

    /// The feature at `f_j` is constant in this node.
    #[inline]
    pub(crate) fn constant(&mut self, features: &mut [usize], f_j: usize) {
        features.swap(f_j, self.n_total);
        self.n_found += 1;
        self.n_total += 1;
    }

    /// The feature at `f_j` is evaluated.
    #[inline]
    pub(crate) fn accept(&mut self, features: &mut [usize], f_j: usize) {
        self.f_i -= 1;
        features.swap(self.f_i, f_j);
    }

    /// Restores the known constants and records the new ones (the invariant sibling and
    /// child nodes rely on); returns the children's number of known constants.
    pub(crate) fn finish(self, features: &mut [usize], constant_features: &mut [usize]) -> usize {
        let (known, found) = (self.n_known, self.n_found);
        features[..known].copy_from_slice(&constant_features[..known]);
        constant_features[known..known + found].copy_from_slice(&features[known..known + found]);
        self.n_total
    }
}

/// What the threshold scan of one feature at one node reads.
struct Scan<'a> {
    criterion: Criterion,
    feature: usize,
    /// Rows in the node, missing ones included.
    n: usize,
    n_missing: usize,
    min_samples_leaf: usize,
    weighted_n_node: f64,
    /// The sorted non-missing keys of [`Splitter::sort_feature`].
    keys: &'a [u64],
    sum_total: &'a [f64],
    sum_missing: &'a [f64],
}

/// Runs [`scan_feature`] with the class count as a constant when it is small (it nearly always
/// is), so the per-class loops of every candidate threshold unroll, and with the Gini screen
/// when it is exact (see [`scan_feature`]).
fn scan_classes(
    n_classes: usize,
    gini_screen: bool,
    scan: &Scan<'_>,
    decode: impl Fn(u32) -> (usize, f64),
    sums: (&mut [f64], &mut [f64]),
    best: &mut Best,
) {
    macro_rules! dispatch {
        ($($c:literal)*) => {
            match (n_classes, gini_screen) {
                $(
                    ($c, true) => scan_feature::<$c, true>(n_classes, scan, decode, sums, best),
                    ($c, false) => scan_feature::<$c, false>(n_classes, scan, decode, sums, best),
                )*
                (_, true) => scan_feature::<0, true>(n_classes, scan, decode, sums, best),
                (_, false) => scan_feature::<0, false>(n_classes, scan, decode, sums, best),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8)
}

/// The left side's running sums during a scan.
struct Left<'a> {
    sums: &'a mut [f64],
    weight: f64,
    /// Sums of squared class weights left and right, kept only for the Gini screen.
    sq: f64,
    sq_right: f64,
}

impl Left<'_> {
    /// `criterion.update` for one row moving from right to left.
    #[inline(always)]
    fn add<const SCREEN: bool>(&mut self, sum_total: &[f64], c: usize, w: f64) {
        if SCREEN {
            // (l + w)^2 - l^2 and (r - w)^2 - r^2, exact in integers.
            let l = self.sums[c];
            let r = sum_total[c] - l;
            self.sq += w * (2.0 * l + w);
            self.sq_right += w * (w - 2.0 * r);
        }
        self.sums[c] += w;
        self.weight += w;
    }
}

/// The threshold loop of `node_split_best` for one feature (`Partitioner.next_p` +
/// `criterion.update` + `proxy_impurity_improvement`), updating `best` where a candidate beats
/// it strictly, as sklearn does. `C` is the class count, or 0 when it is only known at run time.
/// Two passes when rows are missing: first they go right (plus the candidate "all non-missing
/// left, all missing right" with threshold +inf), then left.
///
/// `SCREEN` (Gini with integer weights and total weight below 2^26, so every class sum, square
/// and square sum is an exact integer in f64) skips candidates that provably cannot win before
/// paying sklearn's two divisions. sklearn's proxy `-w_r*gini_r - w_l*gini_l` equals exactly
/// `g/(w_l*w_r) - W` with `g = sq_r*w_l + sq_l*w_r`, and its rounded value is within `4u*W`
/// (u = 2^-53) of that. So a candidate whose `g < (best + W - 1e-9*W) * w_l*w_r` cannot have a
/// rounded proxy above `best`; the 1e-9 margin dwarfs the screen's own rounding (a few u).
/// Every candidate that passes is evaluated with sklearn's exact operations.
#[inline(always)]
fn scan_feature<const C: usize, const SCREEN: bool>(
    n_classes: usize,
    scan: &Scan<'_>,
    decode: impl Fn(u32) -> (usize, f64),
    (sum_left, sum_right): (&mut [f64], &mut [f64]),
    best: &mut Best,
) {
    let nc = if C > 0 { C } else { n_classes };
    let (sum_left, sum_right) = (&mut sum_left[..nc], &mut sum_right[..nc]);
    let (sum_total, sum_missing) = (&scan.sum_total[..nc], &scan.sum_missing[..nc]);
    let keys = scan.keys;
    let (n, n_missing, msl) = (scan.n, scan.n_missing, scan.min_samples_leaf);
    let w_node = scan.weighted_n_node;
    let screen_bar = |best: f64| best + w_node - 1e-9 * w_node;
    let mut bar = screen_bar(best.proxy);
    let squares = |s: &[f64]| s.iter().map(|&c| c * c).sum::<f64>();
    let nm = keys.len();
    let n_searches = if n_missing > 0 { 2 } else { 1 };
    for search in 0..n_searches {
        let go_left = search == 1;
        // criterion.reset(), then the missing rows sit left of the sorted values in the
        // second pass (shift_missing_to_the_left).
        let mut left = Left {
            sums: &mut *sum_left,
            weight: 0.0,
            sq: 0.0,
            sq_right: 0.0,
        };
        if go_left {
            left.sums.copy_from_slice(sum_missing);
            left.weight = sum_missing.iter().sum::<f64>();
        } else {
            left.sums.iter_mut().for_each(|s| *s = 0.0);
        }
        if SCREEN {
            left.sq = squares(left.sums);
            right_sums(sum_total, left.sums, sum_right);
            left.sq_right = squares(sum_right);
        }
        // `q` indexes the sorted non-missing values; positions before it are left.
        let mut q = 0usize;
        loop {
            // Partitioner.next_p.
            if !go_left && q == nm {
                break;
            }
            let (c, w) = decode(keys[q] as u32);
            left.add::<SCREEN>(sum_total, c, w);
            let mut last = value_of(keys[q]);
            q += 1;
            while q < nm {
                let x = value_of(keys[q]);
                if x > last + FEATURE_THRESHOLD {
                    break;
                }
                let (c, w) = decode(keys[q] as u32);
                left.add::<SCREEN>(sum_total, c, w);
                last = x;
                q += 1;
            }
            let n_left = q + if go_left { n_missing } else { 0 };
            if n_left == n {
                break;
            }
            let n_right = n - n_left;
            if n_left < msl || n_right < msl {
                continue;
            }
            let w_left = left.weight;
            let w_right = w_node - w_left;
            let (imp_left, imp_right) = if SCREEN {
                let g = left.sq_right * w_left + left.sq * w_right;
                if g < bar * (w_left * w_right) {
                    continue;
                }
                // The same values `impurity_of` computes: the squares are exact integers.
                (
                    1.0 - left.sq / (w_left * w_left),
                    1.0 - left.sq_right / (w_right * w_right),
                )
            } else {
                right_sums(sum_total, left.sums, sum_right);
                (
                    impurity_of(scan.criterion, left.sums, w_left),
                    impurity_of(scan.criterion, sum_right, w_right),
                )
            };
            let proxy = -w_right * imp_right - w_left * imp_left;
            if proxy > best.proxy {
                best.proxy = proxy;
                bar = screen_bar(proxy);
                let threshold = if q == nm && !go_left {
                    f64::INFINITY
                } else {
                    f64::from(last) / 2.0 + f64::from(value_of(keys[q])) / 2.0
                };
                let mgl = if n_missing == 0 {
                    n_left > n_right
                } else {
                    go_left
                };
                best.split = Some((scan.feature, threshold, mgl));
            }
        }
    }
}

/// The feature value in the high half of a sort key.
#[inline(always)]
fn value_of(key: u64) -> f32 {
    unsortable((key >> 32) as u32)
}

/// Bits of a packed payload that hold the class.
const CLASS_BITS: u32 = 20;
const CLASS_MASK: u32 = (1 << CLASS_BITS) - 1;

/// Sorts keys by their high 32 bits (the order of equal high halves is irrelevant here):
/// LSD radix sort with 8-bit digits for large nodes, skipping digits all keys share.
pub(crate) fn radix_sort_high_half(keys: &mut Vec<u64>, buf: &mut Vec<u64>) {
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
#[inline(always)]
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

/// Impurity of one side from its class sums (`node_impurity` / `children_impurity`), in the
/// exact operation order of `_criterion.pyx`.
#[inline(always)]
pub(crate) fn impurity_of(criterion: Criterion, sums: &[f64], weight: f64) -> f64 {
    match criterion {
        Criterion::Gini => {
            let mut sq = 0.0;
            for &c in sums {
                sq += c * c;
            }
            1.0 - sq / (weight * weight)
        }
        // Entropy (regression criteria never reach class sums).
        _ => {
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
pub(crate) fn log2_sklearn(x: f64) -> f64 {
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

#[cfg(test)]
mod tuning_tests {
    //! The speed choices ([`Tuning`]) must never change a tree: grow the same trees with
    //! blocks everywhere, nowhere and in between, with and without the Gini screen, over data
    //! with ties, near-ties (within `FEATURE_THRESHOLD`), missing values, 2 to 11 classes
    //! (the constant-count and run-time-count scans) and integer and fractional weights.
    use super::*;
    use crate::rng::Mt19937;

    struct Case {
        columns: Vec<Vec<f32>>,
        y: Vec<u32>,
        n_classes: usize,
        has_missing: Vec<bool>,
        weights: Vec<f64>,
    }

    fn case(
        seed: u32,
        n_rows: usize,
        n_features: usize,
        n_classes: usize,
        fractional: bool,
    ) -> Case {
        let mut rs = Mt19937::new(seed);
        let mut draw = |k: u64| rs.randint(0, k) as usize;
        let mut columns = Vec::new();
        for f in 0..n_features {
            let col = (0..n_rows)
                .map(|_| match f % 4 {
                    // Few distinct values: many ties.
                    0 => draw(7) as f32,
                    // Near-ties closer than FEATURE_THRESHOLD.
                    1 => 1.0 + draw(50) as f32 * 3e-8,
                    // Missing values in a continuous feature.
                    2 if draw(10) == 0 => f32::NAN,
                    _ => draw(1_000_000) as f32 / 997.0 - 400.0,
                })
                .collect::<Vec<f32>>();
            columns.push(col);
        }
        // Labels follow feature 3 loosely, so trees are deep but not random.
        let y = (0..n_rows)
            .map(|i| {
                let signal = (columns[3 % n_features][i].abs() as usize) % n_classes;
                if draw(4) == 0 {
                    draw(n_classes as u64) as u32
                } else {
                    signal as u32
                }
            })
            .collect();
        let has_missing = columns
            .iter()
            .map(|c| c.iter().any(|x| x.is_nan()))
            .collect();
        let weights = (0..n_rows)
            .map(|_| {
                let w = draw(4) as f64;
                if fractional { w * 0.75 } else { w }
            })
            .collect();
        Case {
            columns,
            y,
            n_classes,
            has_missing,
            weights,
        }
    }

    fn grow(case: &Case, criterion: Criterion, max_features: usize, tuning: Tuning) -> Tree {
        let columns: Vec<&[f32]> = case.columns.iter().map(Vec::as_slice).collect();
        let data = TrainSet {
            columns: &columns,
            n_rows: case.y.len(),
            n_features: columns.len(),
            y: &case.y,
            n_classes: case.n_classes,
            has_missing: &case.has_missing,
        };
        let cfg = TreeConfig {
            criterion,
            max_depth: i32::MAX as usize,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features,
        };
        fit_tuned(data, &case.weights, 12345, cfg, tuning)
    }

    #[test]
    fn tuning_never_changes_the_tree() {
        let tunings = [
            (usize::MAX, true),
            (usize::MAX, false),
            (0, true),
            (0, false),
            (64, true),
            (700, false),
        ];
        let mut checked = 0;
        for (seed, n_classes, fractional) in
            [(1, 2, false), (2, 3, false), (3, 5, true), (4, 11, false)]
        {
            let case = case(seed, 3000, 6, n_classes, fractional);
            for criterion in [Criterion::Gini, Criterion::Entropy] {
                let grown: Vec<Tree> = tunings
                    .iter()
                    .map(|&(block_rows, gini_screen)| {
                        let tuning = Tuning {
                            block_rows,
                            gini_screen,
                        };
                        grow(&case, criterion, 2, tuning)
                    })
                    .collect();
                assert!(
                    grown[0].n_nodes() > 100,
                    "a deep tree: {}",
                    grown[0].n_nodes()
                );
                for (t, tree) in tunings.iter().zip(&grown) {
                    assert!(
                        tree == &grown[0],
                        "seed {seed}, {criterion:?}, tuning {t:?} differs"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4 * 2 * tunings.len());
    }
}
