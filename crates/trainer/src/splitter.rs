//! The exact-order tree builder: `DepthFirstTreeBuilder` (tree/_tree.pyx) with
//! `BestSplitter`/`RandomSplitter` (tree/_splitter.pyx) over `DensePartitioner`
//! (tree/_partitioner.pyx), generic over a [`SplitCriterion`].
//!
//! Unlike the classifier's best splitter (`tree.rs`), this one keeps sklearn's sample array
//! byte for byte: the same introsort (`sort.rs`), the same swapping partitions, the same
//! missing-value moves. Regression criteria add float targets in that order, so any other
//! order could change the last bit of a sum and then a split. It grows the regression trees
//! (random forest and extra trees) and the extra-trees classifiers.

use crate::criterion::SplitCriterion;
use crate::rng::{RAND_R_MAX, RandR};
use crate::sort::sort_with;
use crate::tree::{
    EPSILON, FEATURE_THRESHOLD, FeatureDraw, LEAF, Node, StackRecord, TrainSet, Tree, TreeConfig,
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

/// The splitter and partitioner state of one tree.
struct Exact<'a> {
    columns: &'a [&'a [f32]],
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
    keys: Vec<u64>,
    key_buf: Vec<u64>,
}

/// Grows one tree with `criterion` over `data` (its labels are unused: the criterion reads the
/// targets), row `weights`, splitter seed `rand_r_seed`; `width` values per node.
pub(crate) fn fit_exact<C: SplitCriterion>(
    data: TrainSet<'_>,
    weights: &[f64],
    rand_r_seed: u32,
    cfg: TreeConfig,
    kind: SplitKind,
    criterion: &mut C,
    width: usize,
) -> Tree {
    Exact::new(data, weights, rand_r_seed, cfg, kind).build(criterion, width)
}

/// The split search at the root alone (what [`fit_exact`] does first): the chosen feature and
/// threshold, if the root splits. For the benches.
pub(crate) fn root_split_exact<C: SplitCriterion>(
    data: TrainSet<'_>,
    weights: &[f64],
    rand_r_seed: u32,
    cfg: TreeConfig,
    kind: SplitKind,
    criterion: &mut C,
) -> Option<(usize, f64)> {
    let mut sp = Exact::new(data, weights, rand_r_seed, cfg, kind);
    let end = sp.samples.len();
    criterion.init(&sp.samples, 0, end);
    let impurity = criterion.node_impurity(&sp.samples);
    let (split, _) = sp.node_split(criterion, 0, end, impurity, 0);
    (split.pos < end).then_some((split.feature, split.threshold))
}

/// Pushes a split node's children: right first, so that the left child is built next.
fn push_children(
    stack: &mut Vec<StackRecord>,
    rec: &StackRecord,
    split: &SplitRecord,
    node_id: u32,
    n_constant: usize,
) {
    let child = |start, end, is_left, impurity| StackRecord {
        start,
        end,
        depth: rec.depth + 1,
        parent: node_id,
        is_left,
        impurity,
        n_constant_features: n_constant,
    };
    stack.push(child(split.pos, rec.end, false, split.impurity_right));
    stack.push(child(rec.start, split.pos, true, split.impurity_left));
}

impl<'a> Exact<'a> {
    /// `Splitter.init`: only positively weighted rows enter `samples`; the total weight counts
    /// all.
    fn new(
        data: TrainSet<'a>,
        weights: &[f64],
        rand_r_seed: u32,
        cfg: TreeConfig,
        kind: SplitKind,
    ) -> Self {
        let samples: Vec<u32> = (0..data.n_rows as u32)
            .filter(|&i| weights[i as usize] != 0.0)
            .collect();
        Exact {
            columns: data.columns,
            has_missing: data.has_missing,
            cfg,
            kind,
            rng: RandR::new(rand_r_seed),
            fv: vec![0.0; samples.len()],
            samples,
            features: (0..data.n_features).collect(),
            constant_features: vec![0; data.n_features],
            weighted_n_samples: weights.iter().sum(),
            n_missing: 0,
            keys: Vec::new(),
            key_buf: Vec::new(),
        }
    }
}

impl Exact<'_> {
    fn build<C: SplitCriterion>(&mut self, crit: &mut C, width: usize) -> Tree {
        let mut nodes: Vec<Node> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
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
            let (start, end) = (rec.start, rec.end);
            let n = end - start;
            crit.init(&self.samples, start, end);
            let mut is_leaf = rec.depth >= self.cfg.max_depth
                || n < self.cfg.min_samples_split
                || n < 2 * self.cfg.min_samples_leaf;
            let mut impurity = rec.impurity;
            if first {
                impurity = crit.node_impurity(&self.samples);
                first = false;
            }
            is_leaf = is_leaf || impurity <= EPSILON;
            let mut split = SplitRecord::none(end);
            let mut n_constant = rec.n_constant_features;
            if !is_leaf {
                (split, n_constant) = self.node_split(crit, start, end, impurity, n_constant);
                is_leaf = split.pos >= end || split.improvement + EPSILON < 0.0;
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
            // Values are kept for leaves only; a leaf's `feature` is its row in `values`.
            let feature = if is_leaf {
                let leaf = (values.len() / width.max(1)) as u32;
                crit.node_value(&mut values);
                leaf
            } else {
                split.feature as u32
            };
            nodes.push(Node {
                left: LEAF,
                right: LEAF,
                feature,
                threshold: if is_leaf { 0.0 } else { split.threshold },
                missing_go_to_left: !is_leaf && split.missing_go_to_left,
            });
            if !is_leaf {
                push_children(&mut stack, &rec, &split, node_id, n_constant);
            }
        }
        Tree {
            nodes,
            values,
            n_classes: width,
        }
    }

    /// `node_split_best` / `node_split_random`: the Fisher-Yates feature draw with the
    /// constant-feature bookkeeping, the per-feature search, then the final partition and the
    /// children's impurities. Returns the split and the children's known constants.
    fn node_split<C: SplitCriterion>(
        &mut self,
        crit: &mut C,
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
            let range = match self.kind {
                SplitKind::Best => self.sort_feature(start, end, feature),
                SplitKind::Random => self.min_max(start, end, feature),
            };
            let Some(range) = range else {
                draw.constant(&mut self.features, f_j);
                continue;
            };
            draw.accept(&mut self.features, f_j);
            match self.kind {
                SplitKind::Best => {
                    self.search_best(crit, (start, end), feature, &mut best, &mut best_proxy)
                }
                SplitKind::Random => self.try_random(
                    crit,
                    (start, end),
                    feature,
                    range,
                    &mut best,
                    &mut best_proxy,
                ),
            }
        }
        if best.pos < end {
            // The random splitter's samples are still partitioned by the last feature it
            // tried; when that is the best one, they are already in place.
            if self.kind == SplitKind::Best || current_feature != best.feature {
                self.partition_final(start, end, &best);
            }
            crit.reset(&self.samples);
            crit.update(&self.samples, best.pos);
            let (left, right) = crit.children_impurity(&self.samples);
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
    fn sort_feature(&mut self, start: usize, end: usize, feature: usize) -> Option<(f32, f32)> {
        let col = self.columns[feature];
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
            for p in start..end {
                self.fv[p] = col[self.samples[p] as usize];
            }
        }
        let end_nm = end - n_missing;
        sort_with(
            &mut self.fv[start..end_nm],
            &mut self.samples[start..end_nm],
            &mut self.keys,
            &mut self.key_buf,
        );
        self.n_missing = n_missing;
        if end_nm == start
            || (n_missing == 0 && self.fv[end_nm - 1] <= self.fv[start] + FEATURE_THRESHOLD)
        {
            return None;
        }
        Some((self.fv[start], self.fv[end_nm - 1]))
    }

    /// `find_min_max`, then the constant-feature test of `node_split_random`.
    fn min_max(&mut self, start: usize, end: usize, feature: usize) -> Option<(f32, f32)> {
        let col = self.columns[feature];
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        let mut n_missing = 0;
        let mut seen = false;
        for p in start..end {
            let x = col[self.samples[p] as usize];
            self.fv[p] = x;
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
    fn search_best<C: SplitCriterion>(
        &mut self,
        crit: &mut C,
        (start, end): (usize, usize),
        feature: usize,
        best: &mut SplitRecord,
        best_proxy: &mut f64,
    ) {
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
            crit.reset(&self.samples);
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
                crit.update(&self.samples, p);
                let proxy = crit.proxy_impurity_improvement(&self.samples);
                if proxy > *best_proxy {
                    *best_proxy = proxy;
                    let threshold = if p == end_nm && !left {
                        f64::INFINITY
                    } else {
                        f64::from(self.fv[p_prev]) / 2.0 + f64::from(self.fv[p]) / 2.0
                    };
                    *best = SplitRecord {
                        feature,
                        pos: p,
                        threshold,
                        missing_go_to_left: if n_missing == 0 {
                            n_left > n_right
                        } else {
                            left
                        },
                        ..SplitRecord::none(end)
                    };
                }
            }
        }
    }

    /// One candidate of `node_split_random`: a uniform threshold in `(lo, hi)`, the
    /// partition, and its proxy.
    fn try_random<C: SplitCriterion>(
        &mut self,
        crit: &mut C,
        (start, end): (usize, usize),
        feature: usize,
        (lo, hi): (f32, f32),
        best: &mut SplitRecord,
        best_proxy: &mut f64,
    ) {
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let has_missing = self.n_missing != 0;
        let r = f64::from(self.rng.next_u31());
        let mut threshold = ((hi - lo) * r / f64::from(RAND_R_MAX)) + lo;
        let missing_go_to_left = has_missing && self.rng.rand_int(0, 2) == 1;
        if threshold == hi {
            threshold = lo;
        }
        // partition_samples on the feature values.
        let (mut ps, mut pe) = (start, end);
        while ps < pe {
            let x = self.fv[ps];
            let go_left = if x.is_nan() {
                missing_go_to_left
            } else {
                f64::from(x) <= threshold
            };
            if go_left {
                ps += 1;
            } else {
                pe -= 1;
                self.fv.swap(ps, pe);
                self.samples.swap(ps, pe);
            }
        }
        let pos = pe;
        let (n_left, n_right) = (pos - start, end - pos);
        let msl = self.cfg.min_samples_leaf;
        if n_left < msl || n_right < msl {
            return;
        }
        crit.reset(&self.samples);
        crit.update(&self.samples, pos);
        let proxy = crit.proxy_impurity_improvement(&self.samples);
        if proxy > *best_proxy {
            *best_proxy = proxy;
            *best = SplitRecord {
                feature,
                pos,
                threshold,
                missing_go_to_left: if has_missing {
                    missing_go_to_left
                } else {
                    n_left > n_right
                },
                ..SplitRecord::none(end)
            };
        }
    }

    /// `partition_samples_final`: swaps rows by the best split, reading the feature column.
    fn partition_final(&mut self, start: usize, end: usize, best: &SplitRecord) {
        let col = self.columns[best.feature];
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
