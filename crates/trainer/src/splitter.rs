//! The exact-order tree builder: `DepthFirstTreeBuilder` (tree/_tree.pyx) with
//! `BestSplitter`/`RandomSplitter` (tree/_splitter.pyx) over `DensePartitioner`
//! (tree/_partitioner.pyx), generic over a [`SplitCriterion`].
//!
//! Unlike the classifier's best splitter (`tree.rs`), this one keeps sklearn's sample array
//! byte for byte: the same introsort (`sort.rs`), the same swapping partitions, the same
//! missing-value moves. Regression criteria add float targets in that order, so any other
//! order could change the last bit of a sum and then a split. It grows the regression trees
//! (random forest and extra trees) and the extra-trees classifiers.

use crate::criterion::{Rows, SplitCriterion};
use crate::rng::{RAND_R_MAX, RandR};
use crate::sort::sort_with;
use crate::tree::{
    EPSILON, FEATURE_THRESHOLD, FeatureDraw, LEAF, Leaves, Node, StackRecord, TrainSet, Tree,
    TreeConfig,
};

/// Which `node_split` the splitter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitKind {
    /// `node_split_best`: every threshold of each drawn feature.
    Best,
    /// `node_split_random`: one uniform threshold per drawn feature (extra trees).
    Random,
}

/// sklearn's `SplitRecord` (the fields the builder reads).
#[derive(Debug, Clone, Copy)]
struct SplitRecord {
    feature: usize,
    pos: usize,
    threshold: f64,
    missing_go_to_left: bool,
    impurity_left: f64,
    impurity_right: f64,
    improvement: f64,
}

impl SplitRecord {
    /// `_init_split`.
    fn none(end: usize) -> Self {
        SplitRecord {
            feature: 0,
            pos: end,
            threshold: 0.0,
            missing_go_to_left: false,
            impurity_left: f64::INFINITY,
            impurity_right: f64::INFINITY,
            improvement: f64::NEG_INFINITY,
        }
    }
}

/// Where the splitter reads a node's rows from: the fold's own columns and targets, or a
/// subtree's compact copy ([`Block`]). `samples` entries are row indices into these slices.
#[derive(Clone, Copy)]
struct View<'a> {
    columns: &'a [&'a [f32]],
    values: &'a [f64],
    classes: &'a [u32],
    weights: &'a [f64],
}

impl<'a> View<'a> {
    /// The fold's own rows: `data`'s columns and classes, regression targets `values`.
    fn of(data: TrainSet<'a>, values: &'a [f64], weights: &'a [f64]) -> Self {
        View {
            columns: data.columns,
            values,
            classes: data.y,
            weights,
        }
    }

    /// What the criterion reads through `samples`.
    fn rows<'s>(&self, samples: &'s [u32]) -> Rows<'s>
    where
        'a: 's,
    {
        Rows {
            samples,
            values: self.values,
            classes: self.classes,
            weights: self.weights,
        }
    }
}

/// Bytes of feature values a subtree's compact copy may take: it should stay in a core's L2.
const BLOCK_BYTES: usize = 1 << 20;

/// A compact copy of one subtree's rows. Deep in a tree a node's rows are scattered over the
/// whole fold, so each feature gather (and target read) misses the cache; once a node is small
/// enough its rows are copied once, contiguously, and the whole subtree below reads the copy.
/// The copy changes where values are read from, never which values nor the order of `samples`,
/// so every sum and every tree is the same.
#[derive(Default)]
struct Block {
    cols: Vec<f32>,
    values: Vec<f64>,
    classes: Vec<u32>,
    weights: Vec<f64>,
}

impl Block {
    /// Copies the rows `samples` of `from` and renumbers `samples` to the copy's rows `0..n`.
    /// Appends the copy's feature slices to `columns`.
    fn fill<'b>(
        &'b mut self,
        from: &View<'_>,
        samples: &mut [u32],
        columns: &mut Vec<&'b [f32]>,
    ) -> (&'b [f64], &'b [u32], &'b [f64]) {
        let n = samples.len();
        self.cols.clear();
        for col in from.columns {
            self.cols.extend(samples.iter().map(|&i| col[i as usize]));
        }
        let gather = |to: &mut Vec<f64>, src: &[f64]| {
            to.clear();
            if !src.is_empty() {
                to.extend(samples.iter().map(|&i| src[i as usize]));
            }
        };
        gather(&mut self.values, from.values);
        gather(&mut self.weights, from.weights);
        self.classes.clear();
        if !from.classes.is_empty() {
            self.classes
                .extend(samples.iter().map(|&i| from.classes[i as usize]));
        }
        for (k, s) in samples.iter_mut().enumerate() {
            *s = k as u32;
        }
        columns.extend(self.cols.chunks_exact(n.max(1)).take(from.columns.len()));
        (&self.values, &self.classes, &self.weights)
    }
}

impl StackRecord {
    /// Points the parent's child slot at `node_id` (the root has no parent).
    pub(crate) fn link(&self, nodes: &mut [Node], node_id: u32) {
        if self.parent != LEAF {
            let parent = &mut nodes[self.parent as usize];
            if self.is_left {
                parent.left = node_id;
            } else {
                parent.right = node_id;
            }
        }
    }

    /// The root's record: every sample, impurity still to compute.
    pub(crate) fn root(n_samples: usize) -> Self {
        StackRecord {
            start: 0,
            end: n_samples,
            depth: 0,
            parent: LEAF,
            is_left: false,
            impurity: f64::INFINITY,
            n_constant_features: 0,
        }
    }
}

/// The splitter and partitioner state of one tree.
struct Exact<'a> {
    has_missing: &'a [bool],
    cfg: TreeConfig,
    kind: SplitKind,
    rng: RandR,
    samples: Vec<u32>,
    /// `feature_values`, indexed like `samples`.
    fv: Vec<f32>,
    features: Vec<usize>,
    constant_features: Vec<usize>,
    weighted_n_samples: f64,
    n_missing: usize,
    /// Subtrees whose root has at most this many rows are grown from a [`Block`].
    block_rows: usize,
    /// Per feature: were its values tied in a node sorted before (a speed hint for
    /// [`sort_with`], never a change of order).
    tied: Vec<bool>,
    keys: Vec<u64>,
    key_buf: Vec<u64>,
}

/// What one exact-order tree is grown from: `data` (class targets `data.y`), regression
/// targets `values` (empty for classes), row `weights`, the splitter seed, the limits and the
/// splitter kind.
#[derive(Clone, Copy)]
pub(crate) struct ExactFit<'a> {
    pub(crate) data: TrainSet<'a>,
    pub(crate) values: &'a [f64],
    pub(crate) weights: &'a [f64],
    pub(crate) rand_r_seed: u32,
    pub(crate) cfg: TreeConfig,
    pub(crate) kind: SplitKind,
}

/// Grows the tree `fit` describes with `criterion`; `width` values per node.
pub(crate) fn fit_exact<C: SplitCriterion>(
    fit: ExactFit<'_>,
    criterion: &mut C,
    width: usize,
) -> Tree {
    let view = View::of(fit.data, fit.values, fit.weights);
    Exact::new(&fit).build(criterion, view, width)
}

/// The split search at the root alone (what [`fit_exact`] does first): the chosen feature and
/// threshold, if the root splits. For the benches.
pub(crate) fn root_split_exact<C: SplitCriterion>(
    fit: ExactFit<'_>,
    criterion: &mut C,
) -> Option<(usize, f64)> {
    let view = View::of(fit.data, fit.values, fit.weights);
    let mut sp = Exact::new(&fit);
    let end = sp.samples.len();
    criterion.init(view.rows(&sp.samples), 0, end);
    let impurity = criterion.node_impurity(view.rows(&sp.samples));
    let (split, _) = sp.node_split(criterion, &view, 0, end, impurity, 0);
    (split.pos < end).then_some((split.feature, split.threshold))
}

impl StackRecord {
    /// A split node's child: `samples[start..end]`, one level below `parent`.
    fn child(
        parent: &StackRecord,
        (start, end): (usize, usize),
        node_id: u32,
        is_left: bool,
        impurity: f64,
        n_constant_features: usize,
    ) -> Self {
        StackRecord {
            start,
            end,
            depth: parent.depth + 1,
            parent: node_id,
            is_left,
            impurity,
            n_constant_features,
        }
    }
}

impl<'a> Exact<'a> {
    /// `Splitter.init`: only positively weighted rows enter `samples`; the total weight counts
    /// all.
    fn new(fit: &ExactFit<'a>) -> Self {
        let (data, weights) = (fit.data, fit.weights);
        let samples: Vec<u32> = (0..data.n_rows as u32)
            .filter(|&i| weights[i as usize] != 0.0)
            .collect();
        Exact {
            has_missing: data.has_missing,
            cfg: fit.cfg,
            kind: fit.kind,
            rng: RandR::new(fit.rand_r_seed),
            fv: vec![0.0; samples.len()],
            samples,
            features: (0..data.n_features).collect(),
            constant_features: vec![0; data.n_features],
            weighted_n_samples: weights.iter().sum(),
            n_missing: 0,
            tied: vec![false; data.n_features],
            block_rows: (BLOCK_BYTES / (4 * data.n_features.max(1))).max(64),
            keys: Vec::new(),
            key_buf: Vec::new(),
        }
    }
}

/// The nodes grown so far.
struct Out {
    nodes: Vec<Node>,
    values: Vec<f64>,
    width: usize,
}

impl Exact<'_> {
    /// `DepthFirstTreeBuilder.build`; a subtree small enough is grown from a [`Block`].
    fn build<C: SplitCriterion>(&mut self, crit: &mut C, fold: View<'_>, width: usize) -> Tree {
        let mut out = Out {
            nodes: Vec::new(),
            values: Vec::new(),
            width,
        };
        let mut stack = vec![StackRecord::root(self.samples.len())];
        let mut block = Block::default();
        let mut first = true;
        while let Some(rec) = stack.pop() {
            let n = rec.end - rec.start;
            // Only copy for a subtree that will split at least once more.
            let worth_a_block = n <= self.block_rows
                && n >= self.cfg.min_samples_split
                && rec.depth < self.cfg.max_depth
                && rec.impurity > EPSILON;
            if !worth_a_block {
                self.node(crit, &fold, rec, &mut stack, &mut out, &mut first);
                continue;
            }
            // Everything pushed above `base` belongs to this subtree (depth first), so the
            // subtree is complete when the stack is back at `base`.
            let base = stack.len();
            let samples = &mut self.samples[rec.start..rec.end];
            let mut block_columns = Vec::with_capacity(fold.columns.len());
            let (values, classes, weights) = block.fill(&fold, samples, &mut block_columns);
            let view = View {
                columns: &block_columns,
                values,
                classes,
                weights,
            };
            self.node(crit, &view, rec, &mut stack, &mut out, &mut first);
            while stack.len() > base {
                let rec = stack.pop().expect("stack above base");
                self.node(crit, &view, rec, &mut stack, &mut out, &mut first);
            }
        }
        Tree {
            nodes: out.nodes,
            leaves: Leaves::dense(width, out.values),
        }
    }

    /// One iteration of the builder's loop: evaluate the node, add it, push its children
    /// (right first, so that the left child is built next).
    fn node<C: SplitCriterion>(
        &mut self,
        crit: &mut C,
        view: &View<'_>,
        rec: StackRecord,
        stack: &mut Vec<StackRecord>,
        out: &mut Out,
        first: &mut bool,
    ) {
        let (start, end) = (rec.start, rec.end);
        let n = end - start;
        crit.init(view.rows(&self.samples), start, end);
        let mut is_leaf = rec.depth >= self.cfg.max_depth
            || n < self.cfg.min_samples_split
            || n < 2 * self.cfg.min_samples_leaf;
        let mut impurity = rec.impurity;
        if *first {
            impurity = crit.node_impurity(view.rows(&self.samples));
            *first = false;
        }
        is_leaf = is_leaf || impurity <= EPSILON;
        let mut split = SplitRecord::none(end);
        let mut n_constant = rec.n_constant_features;
        if !is_leaf {
            (split, n_constant) = self.node_split(crit, view, start, end, impurity, n_constant);
            is_leaf = split.pos >= end || split.improvement + EPSILON < 0.0;
        }
        let node_id = out.nodes.len() as u32;
        rec.link(&mut out.nodes, node_id);
        // Values are kept for leaves only; a leaf's `feature` is its row in `values`.
        let feature = if is_leaf {
            let leaf = (out.values.len() / out.width.max(1)) as u32;
            crit.node_value(&mut out.values);
            leaf
        } else {
            split.feature as u32
        };
        out.nodes.push(Node {
            left: LEAF,
            right: LEAF,
            feature,
            threshold: if is_leaf { 0.0 } else { split.threshold },
            missing_go_to_left: !is_leaf && split.missing_go_to_left,
        });
        if !is_leaf {
            let child = |range, is_left, impurity| {
                StackRecord::child(&rec, range, node_id, is_left, impurity, n_constant)
            };
            stack.push(child((split.pos, end), false, split.impurity_right));
            stack.push(child((start, split.pos), true, split.impurity_left));
        }
    }

    /// `node_split_best` / `node_split_random`: the Fisher-Yates feature draw with the
    /// constant-feature bookkeeping, the per-feature search, then the final partition and the
    /// children's impurities. Returns the split and the children's known constants.
    fn node_split<C: SplitCriterion>(
        &mut self,
        crit: &mut C,
        view: &View<'_>,
        start: usize,
        end: usize,
        impurity: f64,
        n_known_constants: usize,
    ) -> (SplitRecord, usize) {
        let mut draw = FeatureDraw::new(
            self.features.len(),
            n_known_constants,
            self.cfg.max_features,
        );
        let mut best = SplitRecord::none(end);
        let mut best_proxy = f64::NEG_INFINITY;
        // The last feature the loop looked at (`current_split.feature`).
        let mut current_feature = usize::MAX;
        while let Some(f_j) = draw.next(&mut self.features, &mut self.rng) {
            let feature = self.features[f_j];
            current_feature = feature;
            let col = view.columns[feature];
            let range = match self.kind {
                SplitKind::Best => self.sort_feature(col, start, end, feature),
                SplitKind::Random => self.min_max(col, start, end),
            };
            let Some(range) = range else {
                draw.constant(&mut self.features, f_j);
                continue;
            };
            draw.accept(&mut self.features, f_j);
            let mut cand = Candidates {
                crit: &mut *crit,
                view,
                node: (start, end),
                feature,
                best: &mut best,
                best_proxy: &mut best_proxy,
            };
            match self.kind {
                SplitKind::Best => self.search_best(&mut cand),
                SplitKind::Random => self.try_random(&mut cand, range),
            }
        }
        if best.pos < end {
            // The random splitter's samples are still partitioned by the last feature it
            // tried; when that is the best one, they are already in place.
            if self.kind == SplitKind::Best || current_feature != best.feature {
                self.partition_final(view.columns[best.feature], start, end, &best);
            }
            crit.reset(view.rows(&self.samples));
            crit.update(view.rows(&self.samples), best.pos);
            let (left, right) = crit.children_impurity(view.rows(&self.samples));
            best.impurity_left = left;
            best.impurity_right = right;
            best.improvement =
                crit.impurity_improvement(impurity, left, right, self.weighted_n_samples);
        }
        let n_total_constants = draw.finish(&mut self.features, &mut self.constant_features);
        (best, n_total_constants)
    }

    /// `sort_samples_and_feature_values`, then the constant-feature test of
    /// `node_split_best`: `None` when the feature is constant (or all missing) here.
    fn sort_feature(
        &mut self,
        col: &[f32],
        start: usize,
        end: usize,
        feature: usize,
    ) -> Option<(f32, f32)> {
        let mut n_missing = 0;
        if self.has_missing[feature] {
            // Missing values go to the end, swapped in from the right as sklearn does.
            let (mut i, mut current_end) = (start as isize, end as isize - 1);
            while i <= current_end {
                if col[self.samples[current_end as usize] as usize].is_nan() {
                    n_missing += 1;
                    current_end -= 1;
                    continue;
                }
                if col[self.samples[i as usize] as usize].is_nan() {
                    self.samples.swap(i as usize, current_end as usize);
                    n_missing += 1;
                    current_end -= 1;
                }
                self.fv[i as usize] = col[self.samples[i as usize] as usize];
                i += 1;
            }
        } else {
            for (v, &i) in self.fv[start..end]
                .iter_mut()
                .zip(&self.samples[start..end])
            {
                *v = col[i as usize];
            }
        }
        let end_nm = end - n_missing;
        let distinct = sort_with(
            &mut self.fv[start..end_nm],
            &mut self.samples[start..end_nm],
            &mut self.keys,
            &mut self.key_buf,
            self.tied[feature],
        );
        self.tied[feature] |= !distinct;
        self.n_missing = n_missing;
        if end_nm == start
            || (n_missing == 0 && self.fv[end_nm - 1] <= self.fv[start] + FEATURE_THRESHOLD)
        {
            return None;
        }
        Some((self.fv[start], self.fv[end_nm - 1]))
    }

    /// `find_min_max`, then the constant-feature test of `node_split_random`.
    fn min_max(&mut self, col: &[f32], start: usize, end: usize) -> Option<(f32, f32)> {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        let mut n_missing = 0;
        let mut seen = false;
        for (v, &i) in self.fv[start..end]
            .iter_mut()
            .zip(&self.samples[start..end])
        {
            let x = col[i as usize];
            *v = x;
            if x.is_nan() {
                n_missing += 1;
            } else if !seen {
                lo = x;
                hi = x;
                seen = true;
            } else if x < lo {
                lo = x;
            } else if x > hi {
                hi = x;
            }
        }
        self.n_missing = n_missing;
        if end - start == n_missing || (hi <= lo + FEATURE_THRESHOLD && n_missing == 0) {
            return None;
        }
        Some((lo, hi))
    }

    /// `Partitioner.next_p`.
    fn next_p(&self, (start, end): (usize, usize), p: &mut usize, p_prev: &mut usize, left: bool) {
        let end_nm = if left { end } else { end - self.n_missing };
        if *p == end_nm && !left {
            *p = end;
            *p_prev = end;
        } else {
            if left && *p == start {
                *p = start + self.n_missing;
            }
            *p += 1;
            while *p < end_nm && self.fv[*p] <= self.fv[*p - 1] + FEATURE_THRESHOLD {
                *p += 1;
            }
            *p_prev = *p - 1;
        }
    }

    /// The threshold scan of `node_split_best` for one sorted feature (one pass, or two
    /// when rows miss it: missing right, then missing left).
    fn search_best<C: SplitCriterion>(&mut self, c: &mut Candidates<'_, '_, C>) {
        let (start, end) = c.node;
        let n_missing = self.n_missing;
        let end_nm = end - n_missing;
        let msl = self.cfg.min_samples_leaf;
        let n_searches = if n_missing > 0 { 2 } else { 1 };
        for search in 0..n_searches {
            let left = search == 1;
            if left {
                // shift_missing_to_the_left: both slices keep their inner order.
                self.samples[start..end].rotate_right(n_missing);
                self.fv[start..end].rotate_right(n_missing);
            }
            c.crit.reset(c.view.rows(&self.samples));
            let (mut p, mut p_prev) = (start, start);
            while p < end {
                self.next_p((start, end), &mut p, &mut p_prev, left);
                if p == end {
                    continue;
                }
                let (n_left, n_right) = (p - start, end - p);
                if n_left < msl || n_right < msl {
                    continue;
                }
                let rows = c.view.rows(&self.samples);
                c.crit.update(rows, p);
                let proxy = c.crit.proxy_impurity_improvement(rows);
                if proxy > *c.best_proxy {
                    let threshold = if p == end_nm && !left {
                        f64::INFINITY
                    } else {
                        f64::from(self.fv[p_prev]) / 2.0 + f64::from(self.fv[p]) / 2.0
                    };
                    let missing_go_to_left = if n_missing == 0 {
                        n_left > n_right
                    } else {
                        left
                    };
                    c.found(proxy, p, threshold, missing_go_to_left);
                }
            }
        }
    }

    /// One candidate of `node_split_random`: a uniform threshold in `(lo, hi)`, the
    /// partition, and its proxy.
    fn try_random<C: SplitCriterion>(
        &mut self,
        c: &mut Candidates<'_, '_, C>,
        (lo, hi): (f32, f32),
    ) {
        let (start, end) = c.node;
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let has_missing = self.n_missing != 0;
        let r = f64::from(self.rng.next_u31());
        let mut threshold = ((hi - lo) * r / f64::from(RAND_R_MAX)) + lo;
        let missing_go_to_left = has_missing && self.rng.rand_int(0, 2) == 1;
        if threshold == hi {
            threshold = lo;
        }
        let goes_left = |x: f32| {
            if x.is_nan() {
                missing_go_to_left
            } else {
                f64::from(x) <= threshold
            }
        };
        let msl = self.cfg.min_samples_leaf;
        let short = |pos: usize| pos - start < msl || end - pos < msl;
        let pos = if let Some(sums) = c.crit.running_sums() {
            // Sum each row where it settles (see `set_split`).
            let (weights, values) = (c.view.weights, c.view.values);
            let (sum_total, w_node) = sums.totals();
            let (mut forward, mut backward) = ((0.0, 0.0), (sum_total, w_node));
            let pos = self.partition(start, end, goes_left, |i, left| {
                let (w, y) = (weights[i as usize], values[i as usize]);
                if left {
                    forward = (forward.0 + w * y, forward.1 + w);
                } else {
                    backward = (backward.0 - w * y, backward.1 - w);
                }
            });
            if short(pos) {
                return;
            }
            sums.set_split(pos, forward, backward);
            pos
        } else {
            let pos = self.partition(start, end, goes_left, |_, _| {});
            if short(pos) {
                return;
            }
            c.crit.reset(c.view.rows(&self.samples));
            c.crit.update(c.view.rows(&self.samples), pos);
            pos
        };
        let proxy = c
            .crit
            .proxy_impurity_improvement(c.view.rows(&self.samples));
        if proxy > *c.best_proxy {
            let (n_left, n_right) = (pos - start, end - pos);
            let missing_go_to_left = if has_missing {
                missing_go_to_left
            } else {
                n_left > n_right
            };
            c.found(proxy, pos, threshold, missing_go_to_left);
        }
    }

    /// `partition_samples` on the feature values: rows for which `goes_left` holds move left,
    /// the others swap in from the right. `settle(row, left)` sees each row once, as it takes
    /// its final place: left rows in position order, right rows from the last position down.
    /// Returns the split position.
    #[inline]
    fn partition(
        &mut self,
        start: usize,
        end: usize,
        goes_left: impl Fn(f32) -> bool,
        mut settle: impl FnMut(u32, bool),
    ) -> usize {
        let (mut ps, mut pe) = (start, end);
        while ps < pe {
            let left = goes_left(self.fv[ps]);
            settle(self.samples[ps], left);
            if left {
                ps += 1;
            } else {
                pe -= 1;
                self.fv.swap(ps, pe);
                self.samples.swap(ps, pe);
            }
        }
        pe
    }

    /// `partition_samples_final`: swaps rows by the best split, reading the feature column.
    fn partition_final(&mut self, col: &[f32], start: usize, end: usize, best: &SplitRecord) {
        let (mut ps, mut pe) = (start, end);
        while ps < pe {
            let x = col[self.samples[ps] as usize];
            let go_left = if x.is_nan() {
                best.missing_go_to_left
            } else {
                f64::from(x) <= best.threshold
            };
            if go_left {
                ps += 1;
            } else {
                pe -= 1;
                self.samples.swap(ps, pe);
            }
        }
    }
}

/// One feature's split search in a node: the criterion, where the rows are read, and the
/// best split so far (kept on a strictly better proxy, so the first best wins).
struct Candidates<'c, 'v, C> {
    crit: &'c mut C,
    view: &'c View<'v>,
    node: (usize, usize),
    feature: usize,
    best: &'c mut SplitRecord,
    best_proxy: &'c mut f64,
}

impl<C> Candidates<'_, '_, C> {
    /// Records the split at `pos` as the best so far.
    fn found(&mut self, proxy: f64, pos: usize, threshold: f64, missing_go_to_left: bool) {
        *self.best_proxy = proxy;
        *self.best = SplitRecord {
            feature: self.feature,
            pos,
            threshold,
            missing_go_to_left,
            ..SplitRecord::none(self.node.1)
        };
    }
}

#[cfg(test)]
mod tests {
    //! Growing a subtree from a [`Block`] must never change a tree: the same trees with blocks
    //! everywhere, nowhere and in between, for both splitters and every criterion, over float
    //! targets with ties, features with ties and missing values, and bootstrap-like weights.
    use super::*;
    use crate::criterion::{ClassCriterion, Mae, Mse, Poisson, RegressionSums};
    use crate::params::{Criterion, Estimator, ForestParams};
    use crate::rng::Mt19937;
    use linfa::ParamGuard;

    fn grow<C: SplitCriterion>(
        crit: &mut C,
        view: View<'_>,
        data: TrainSet<'_>,
        kind: SplitKind,
        block_rows: usize,
        width: usize,
    ) -> Tree {
        // The regressor's defaults, but 3 of the 5 features per split.
        let params = ForestParams::for_estimator(Estimator::ExtraTreesRegressor)
            .check()
            .expect("default parameters");
        let cfg = TreeConfig {
            max_features: 3,
            ..crate::forest::tree_config(&params, data.n_features)
        };
        let fit = ExactFit {
            data,
            values: view.values,
            weights: view.weights,
            rand_r_seed: 777,
            cfg,
            kind,
        };
        let mut sp = Exact::new(&fit);
        sp.block_rows = block_rows;
        sp.build(crit, view, width)
    }

    #[test]
    fn blocks_never_change_the_tree() {
        let (n_rows, n_features) = (2500, 5);
        let mut rs = Mt19937::new(11);
        let mut draw = |k: u64| rs.randint(0, k) as usize;
        let columns: Vec<Vec<f32>> = (0..n_features)
            .map(|f| {
                (0..n_rows)
                    .map(|_| match f % 3 {
                        0 => draw(9) as f32,
                        1 if draw(8) == 0 => f32::NAN,
                        _ => draw(1 << 20) as f32 / 3.0,
                    })
                    .collect()
            })
            .collect();
        let values: Vec<f64> = (0..n_rows).map(|_| draw(40) as f64 * 0.37).collect();
        let classes: Vec<u32> = (0..n_rows).map(|_| draw(3) as u32).collect();
        let weights: Vec<f64> = (0..n_rows).map(|_| draw(3) as f64).collect();
        let has_missing: Vec<bool> = columns
            .iter()
            .map(|c| c.iter().any(|x| x.is_nan()))
            .collect();
        let refs: Vec<&[f32]> = columns.iter().map(Vec::as_slice).collect();
        let data = TrainSet {
            columns: &refs,
            n_rows,
            n_features,
            y: &classes,
            n_classes: 3,
            has_missing: &has_missing,
        };
        let view = View {
            columns: &refs,
            values: &values,
            classes: &classes,
            weights: &weights,
        };
        let mut checked = 0;
        for kind in [SplitKind::Best, SplitKind::Random] {
            for crit in 0..4 {
                let trees: Vec<Tree> = [usize::MAX, 0, 40, 700]
                    .into_iter()
                    .map(|block_rows| match crit {
                        0 => {
                            let c = &mut Mse {
                                s: RegressionSums::new(),
                            };
                            grow(c, view, data, kind, block_rows, 1)
                        }
                        1 => {
                            let c = &mut Poisson {
                                s: RegressionSums::new(),
                            };
                            grow(c, view, data, kind, block_rows, 1)
                        }
                        2 => grow(&mut Mae::new(n_rows), view, data, kind, block_rows, 1),
                        _ => {
                            let c = &mut ClassCriterion::new(Criterion::Gini, 3);
                            grow(c, view, data, kind, block_rows, 3)
                        }
                    })
                    .collect();
                assert!(trees[0].n_nodes() > 200, "deep: {}", trees[0].n_nodes());
                for tree in &trees {
                    assert!(tree == &trees[0], "{kind:?}, criterion {crit} differs");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2 * 4 * 4);
    }
}
