//! scikit-learn's split criteria (tree/_criterion.pyx) for the exact-order splitter
//! (`splitter.rs`): `MSE` (squared_error), `Poisson`, `MAE` (absolute_error) and the
//! classification criteria (Gini, entropy) used by the random splitter of extra trees.
//!
//! Each method does sklearn's float operations in sklearn's order over the rows in the order
//! the partitioner left them (`samples[start..end]`): float targets make sums depend on the
//! order of addition, so the running sums (`update` from whichever end is closer, `reset`,
//! `reverse_reset`) are ported as they are, not re-derived.
//!
//! The classifier's best splitter (`tree.rs`) keeps its own fused, packed-key scan: its class
//! sums are exact integers, so it may take shortcuts these criteria must not.

use crate::params::Criterion as CriterionName;
use crate::tree::{impurity_of, log2_sklearn};

/// `_criterion.pyx`'s `EPSILON`: `10 * np.finfo('double').eps` (the Poisson guards).
const EPSILON: f64 = 10.0 * f64::EPSILON;

/// The rows a criterion reads: the splitter's sample array (node positions index it) and the
/// per-row targets and weights its entries number (the fold's own rows, or a subtree block's
/// compact copy of them).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub(crate) samples: &'a [u32],
    /// Regression targets (empty for class targets).
    pub(crate) values: &'a [f64],
    /// Class indices (empty for regression targets).
    pub(crate) classes: &'a [u32],
    pub(crate) weights: &'a [f64],
}

impl Rows<'_> {
    /// Weight and target of the row at node position `p`.
    #[inline]
    fn wy(&self, p: usize) -> (f64, f64) {
        let i = self.samples[p] as usize;
        (self.weights[i], self.values[i])
    }
}

/// `weighted_n_node_samples`, `weighted_n_left` and `weighted_n_right`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Weighted {
    pub(crate) node: f64,
    pub(crate) left: f64,
    pub(crate) right: f64,
}

/// The running state of a criterion over one node (`Criterion` in sklearn). Positions are
/// absolute indices into `rows.samples`.
pub(crate) trait SplitCriterion {
    /// `init`: the node is `samples[start..end]`; computes its totals, then `reset`.
    fn init(&mut self, rows: Rows<'_>, start: usize, end: usize);
    /// `reset`: position at `start`, everything right.
    fn reset(&mut self, rows: Rows<'_>);
    /// `update`: moves `samples[pos..new_pos]` to the left.
    fn update(&mut self, rows: Rows<'_>, new_pos: usize);
    /// `node_impurity`.
    fn node_impurity(&self, rows: Rows<'_>) -> f64;
    /// `children_impurity`: (left, right).
    fn children_impurity(&self, rows: Rows<'_>) -> (f64, f64);
    /// `proxy_impurity_improvement` (the default: `-w_r * imp_r - w_l * imp_l`).
    fn proxy_impurity_improvement(&self, rows: Rows<'_>) -> f64 {
        let (l, r) = self.children_impurity(rows);
        -self.weighted_n_right() * r - self.weighted_n_left() * l
    }
    /// `node_value`: appended to `out`.
    fn node_value(&self, out: &mut Vec<f64>);
    /// The node's and the children's weights.
    fn weighted(&self) -> Weighted;
    /// `weighted_n_node_samples`.
    fn weighted_n_node(&self) -> f64 {
        self.weighted().node
    }
    /// `weighted_n_left`.
    fn weighted_n_left(&self) -> f64 {
        self.weighted().left
    }
    /// `weighted_n_right`.
    fn weighted_n_right(&self) -> f64 {
        self.weighted().right
    }
    /// `impurity_improvement`, with `weighted_n_samples` the tree's total weight.
    fn impurity_improvement(&self, parent: f64, left: f64, right: f64, total: f64) -> f64 {
        let w = self.weighted_n_node();
        (w / total)
            * (parent - (self.weighted_n_right() / w * right) - (self.weighted_n_left() / w * left))
    }
    /// The regression running sums, when the criterion's split state is nothing but them: the
    /// random splitter then sums while it partitions ([`RegressionSums::set_split`]) instead
    /// of `reset(); update(pos)` reading the rows again.
    fn running_sums(&mut self) -> Option<&mut RegressionSums> {
        None
    }
}

/// The sums `RegressionCriterion` keeps (one output).
pub(crate) struct RegressionSums {
    start: usize,
    end: usize,
    pos: usize,
    sum_total: f64,
    sq_sum_total: f64,
    sum_left: f64,
    sum_right: f64,
    w: Weighted,
}

impl RegressionSums {
    pub(crate) fn new() -> Self {
        RegressionSums {
            start: 0,
            end: 0,
            pos: 0,
            sum_total: 0.0,
            sq_sum_total: 0.0,
            sum_left: 0.0,
            sum_right: 0.0,
            w: Weighted::default(),
        }
    }

    fn init(&mut self, rows: Rows<'_>, start: usize, end: usize) {
        self.start = start;
        self.end = end;
        self.w.node = 0.0;
        self.sq_sum_total = 0.0;
        self.sum_total = 0.0;
        for p in start..end {
            let (w, y) = rows.wy(p);
            let w_y = w * y;
            self.sum_total += w_y;
            self.sq_sum_total += w_y * y;
            self.w.node += w;
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.pos = self.start;
        self.sum_left = 0.0;
        self.sum_right = self.sum_total;
        self.w.left = 0.0;
        self.w.right = self.w.node;
    }

    #[inline]
    fn update(&mut self, rows: Rows<'_>, new_pos: usize) {
        let pos = self.pos;
        if new_pos - pos <= self.end - new_pos {
            let (mut sum_left, mut w_left) = (self.sum_left, self.w.left);
            for p in pos..new_pos {
                let (w, y) = rows.wy(p);
                sum_left += w * y;
                w_left += w;
            }
            self.sum_left = sum_left;
            self.w.left = w_left;
        } else {
            // reverse_reset, then take the rows right of new_pos back out.
            let (mut sum_left, mut w_left) = (self.sum_total, self.w.node);
            for p in (new_pos..self.end).rev() {
                let (w, y) = rows.wy(p);
                sum_left -= w * y;
                w_left -= w;
            }
            self.sum_left = sum_left;
            self.w.left = w_left;
        }
        self.w.right = self.w.node - self.w.left;
        self.sum_right = self.sum_total - self.sum_left;
        self.pos = new_pos;
    }

    /// The node's totals `(sum_total, weighted_n_node)`, where the partition's sums start.
    pub(crate) fn totals(&self) -> (f64, f64) {
        (self.sum_total, self.w.node)
    }

    /// `reset(); update(pos)` from sums taken while partitioning, in the order `update` would
    /// take them: `forward` = (Σ w·y, Σ w) from 0 over the rows kept left, in position order;
    /// `backward` = the totals minus (w·y, w) of the rows sent right, from the last position
    /// down. `update` picks the side nearer `pos`, and so does this.
    pub(crate) fn set_split(&mut self, pos: usize, forward: (f64, f64), backward: (f64, f64)) {
        let (sum_left, w_left) = if pos - self.start <= self.end - pos {
            forward
        } else {
            backward
        };
        self.sum_left = sum_left;
        self.w.left = w_left;
        self.w.right = self.w.node - w_left;
        self.sum_right = self.sum_total - sum_left;
        self.pos = pos;
    }
}

/// Forwards the shared parts of [`SplitCriterion`] to a [`RegressionSums`] field `s`.
macro_rules! regression_common {
    () => {
        fn init(&mut self, rows: Rows<'_>, start: usize, end: usize) {
            self.s.init(rows, start, end)
        }
        fn reset(&mut self, _rows: Rows<'_>) {
            self.s.reset()
        }
        #[inline]
        fn update(&mut self, rows: Rows<'_>, new_pos: usize) {
            self.s.update(rows, new_pos)
        }
        fn running_sums(&mut self) -> Option<&mut RegressionSums> {
            Some(&mut self.s)
        }
        fn node_value(&self, out: &mut Vec<f64>) {
            out.push(self.s.sum_total / self.s.w.node);
        }
        fn weighted(&self) -> Weighted {
            self.s.w
        }
    };
}

/// `MSE` (`squared_error`; `friedman_mse` maps to it in sklearn 1.9.1).
pub(crate) struct Mse {
    pub(crate) s: RegressionSums,
}

impl SplitCriterion for Mse {
    regression_common!();

    fn node_impurity(&self, _rows: Rows<'_>) -> f64 {
        let s = &self.s;
        let mean = s.sum_total / s.w.node;
        s.sq_sum_total / s.w.node - mean * mean
    }

    fn children_impurity(&self, rows: Rows<'_>) -> (f64, f64) {
        let s = &self.s;
        let mut sq_sum_left = 0.0;
        for p in s.start..s.pos {
            let (w, y) = rows.wy(p);
            sq_sum_left += w * y * y;
        }
        let sq_sum_right = s.sq_sum_total - sq_sum_left;
        let mean_left = s.sum_left / s.w.left;
        let mean_right = s.sum_right / s.w.right;
        (
            sq_sum_left / s.w.left - mean_left * mean_left,
            sq_sum_right / s.w.right - mean_right * mean_right,
        )
    }

    #[inline]
    fn proxy_impurity_improvement(&self, _rows: Rows<'_>) -> f64 {
        let s = &self.s;
        s.sum_left * s.sum_left / s.w.left + s.sum_right * s.sum_right / s.w.right
    }
}

/// `Poisson`: half Poisson deviance.
pub(crate) struct Poisson {
    pub(crate) s: RegressionSums,
}

impl Poisson {
    fn loss(&self, rows: Rows<'_>, (start, end): (usize, usize), y_sum: f64, weight: f64) -> f64 {
        if y_sum <= EPSILON {
            return f64::INFINITY;
        }
        let y_mean = y_sum / weight;
        let mut loss = 0.0;
        for p in start..end {
            let (w, y) = rows.wy(p);
            loss += w * xlogy(y, y / y_mean);
        }
        loss / weight
    }
}

/// scipy's `xlogy`: 0 where `x == 0` (and `y` is not NaN), else `x * ln(y)`.
fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 && !y.is_nan() {
        0.0
    } else {
        x * y.ln()
    }
}

impl SplitCriterion for Poisson {
    regression_common!();

    fn node_impurity(&self, rows: Rows<'_>) -> f64 {
        let s = &self.s;
        self.loss(rows, (s.start, s.end), s.sum_total, s.w.node)
    }

    fn children_impurity(&self, rows: Rows<'_>) -> (f64, f64) {
        let s = &self.s;
        (
            self.loss(rows, (s.start, s.pos), s.sum_left, s.w.left),
            self.loss(rows, (s.pos, s.end), s.sum_right, s.w.right),
        )
    }

    fn proxy_impurity_improvement(&self, _rows: Rows<'_>) -> f64 {
        let s = &self.s;
        if s.sum_left <= EPSILON || s.sum_right <= EPSILON {
            return f64::NEG_INFINITY;
        }
        let mean_left = s.sum_left / s.w.left;
        let mean_right = s.sum_right / s.w.right;
        let proxy_left = 0.0 - s.sum_left * log2_sklearn(mean_left);
        let proxy_right = 0.0 - s.sum_right * log2_sklearn(mean_right);
        -proxy_left - proxy_right
    }
}

/// Gini or entropy over class sums, for the random splitter (extra trees classifiers). Class
/// sums of integer weights are exact, so only the formulas need to be sklearn's.
pub(crate) struct ClassCriterion {
    name: CriterionName,
    start: usize,
    end: usize,
    pos: usize,
    sum_total: Vec<f64>,
    sum_left: Vec<f64>,
    sum_right: Vec<f64>,
    w: Weighted,
}

impl ClassCriterion {
    pub(crate) fn new(name: CriterionName, n_classes: usize) -> Self {
        ClassCriterion {
            name,
            start: 0,
            end: 0,
            pos: 0,
            sum_total: vec![0.0; n_classes],
            sum_left: vec![0.0; n_classes],
            sum_right: vec![0.0; n_classes],
            w: Weighted::default(),
        }
    }
}

impl SplitCriterion for ClassCriterion {
    fn init(&mut self, rows: Rows<'_>, start: usize, end: usize) {
        self.start = start;
        self.end = end;
        self.sum_total.iter_mut().for_each(|s| *s = 0.0);
        self.w.node = 0.0;
        for &i in &rows.samples[start..end] {
            let w = rows.weights[i as usize];
            self.sum_total[rows.classes[i as usize] as usize] += w;
            self.w.node += w;
        }
        self.reset(rows);
    }

    fn reset(&mut self, _rows: Rows<'_>) {
        self.pos = self.start;
        self.sum_left.iter_mut().for_each(|s| *s = 0.0);
        self.sum_right.copy_from_slice(&self.sum_total);
        self.w.left = 0.0;
        self.w.right = self.w.node;
    }

    fn update(&mut self, rows: Rows<'_>, new_pos: usize) {
        // Exact integer sums: the direction of the update cannot change them.
        for &i in &rows.samples[self.pos..new_pos] {
            let w = rows.weights[i as usize];
            self.sum_left[rows.classes[i as usize] as usize] += w;
            self.w.left += w;
        }
        self.w.right = self.w.node - self.w.left;
        for ((r, t), l) in self
            .sum_right
            .iter_mut()
            .zip(&self.sum_total)
            .zip(&self.sum_left)
        {
            *r = t - l;
        }
        self.pos = new_pos;
    }

    fn node_impurity(&self, _rows: Rows<'_>) -> f64 {
        impurity_of(self.name, &self.sum_total, self.w.node)
    }

    fn children_impurity(&self, _rows: Rows<'_>) -> (f64, f64) {
        (
            impurity_of(self.name, &self.sum_left, self.w.left),
            impurity_of(self.name, &self.sum_right, self.w.right),
        )
    }

    fn node_value(&self, out: &mut Vec<f64>) {
        out.extend(self.sum_total.iter().map(|&s| s / self.w.node));
    }

    fn weighted(&self) -> Weighted {
        self.w
    }
}

/// `MAE` (`absolute_error`): each node's prediction is its weighted median; `reset`
/// precomputes, for every split position, the absolute errors of the left (prefix) and right
/// (suffix) children with a Fenwick tree over the node's target ranks, exactly as
/// `precompute_absolute_errors` does.
pub(crate) struct Mae {
    start: usize,
    end: usize,
    pos: usize,
    w: Weighted,
    node_median: f64,
    left_abs_errors: Vec<f64>,
    right_abs_errors: Vec<f64>,
    left_medians: Vec<f64>,
    right_medians: Vec<f64>,
    ranks: Vec<usize>,
    sorted_y: Vec<f64>,
    sorted_indices: Vec<u32>,
    tree: Fenwick,
}

impl Mae {
    /// Buffers for up to `n_samples` rows.
    pub(crate) fn new(n_samples: usize) -> Self {
        Mae {
            start: 0,
            end: 0,
            pos: 0,
            w: Weighted::default(),
            node_median: 0.0,
            left_abs_errors: vec![0.0; n_samples],
            right_abs_errors: vec![0.0; n_samples],
            left_medians: vec![0.0; n_samples],
            right_medians: vec![0.0; n_samples],
            ranks: vec![0; n_samples],
            sorted_y: vec![0.0; n_samples],
            sorted_indices: vec![0; n_samples],
            tree: Fenwick::new(n_samples),
        }
    }

    /// `precompute_absolute_errors` forward (`from < to`) or backward over positions.
    fn precompute(&mut self, rows: Rows<'_>, from: isize, to: isize, left: bool) {
        let (n, step) = if from < to {
            (to - from, 1)
        } else {
            (from - to, -1)
        };
        self.tree.reset(n as usize);
        let mut p = from;
        for _ in 0..n {
            let pu = p as usize;
            let w = rows.weights[rows.samples[pu] as usize];
            let rank = self.ranks[pu];
            self.tree.add(rank, self.sorted_y[rank], w);
            let half_weight = 0.5 * self.tree.total_w;
            let (median_rank, w_left, wy_left, prev_rank) = self.tree.search(half_weight);
            let median = if median_rank != prev_rank {
                (self.sorted_y[prev_rank] + self.sorted_y[median_rank]) / 2.0
            } else {
                self.sorted_y[median_rank]
            };
            let w_right = self.tree.total_w - w_left;
            let wy_right = self.tree.total_wy - wy_left;
            let (errors, medians) = if left {
                (&mut self.left_abs_errors, &mut self.left_medians)
            } else {
                (&mut self.right_abs_errors, &mut self.right_medians)
            };
            medians[pu] = median;
            errors[pu] += (wy_right - median * w_right) + (median * w_left - wy_left);
            p += step;
        }
    }
}

impl SplitCriterion for Mae {
    fn init(&mut self, rows: Rows<'_>, start: usize, end: usize) {
        self.start = start;
        self.end = end;
        self.w.node = 0.0;
        for &i in &rows.samples[start..end] {
            self.w.node += rows.weights[i as usize];
        }
        self.reset(rows);
    }

    fn reset(&mut self, rows: Rows<'_>) {
        let (start, end) = (self.start, self.end);
        let n = end - start;
        self.w.left = 0.0;
        self.w.right = self.w.node;
        self.pos = start;
        self.left_abs_errors[start..end]
            .iter_mut()
            .for_each(|e| *e = 0.0);
        self.right_abs_errors[start..end]
            .iter_mut()
            .for_each(|e| *e = 0.0);
        for (sorted, &i) in self.sorted_y.iter_mut().zip(&rows.samples[start..end]) {
            *sorted = rows.values[i as usize];
        }
        // compute_ranks
        for (i, s) in self.sorted_indices[..n].iter_mut().enumerate() {
            *s = i as u32;
        }
        crate::sort::simultaneous_sort(&mut self.sorted_y[..n], &mut self.sorted_indices[..n]);
        for i in 0..n {
            self.ranks[start + self.sorted_indices[i] as usize] = i;
        }
        self.precompute(rows, start as isize, end as isize, true);
        self.precompute(rows, end as isize - 1, start as isize - 1, false);
        self.node_median = self.right_medians[start];
    }

    fn update(&mut self, rows: Rows<'_>, new_pos: usize) {
        for &i in &rows.samples[self.pos..new_pos] {
            self.w.left += rows.weights[i as usize];
        }
        self.w.right = self.w.node - self.w.left;
        self.pos = new_pos;
    }

    fn node_impurity(&self, _rows: Rows<'_>) -> f64 {
        // sklearn reads index 0: it is only asked at the root, where start is 0.
        self.right_abs_errors[0] / self.w.node
    }

    fn children_impurity(&self, _rows: Rows<'_>) -> (f64, f64) {
        let mut left = 0.0;
        if self.pos > self.start {
            left += self.left_abs_errors[self.pos - 1];
        }
        let mut right = 0.0;
        if self.pos < self.end {
            right += self.right_abs_errors[self.pos];
        }
        (left / self.w.left, right / self.w.right)
    }

    fn node_value(&self, out: &mut Vec<f64>) {
        out.push(self.node_median);
    }

    fn weighted(&self) -> Weighted {
        self.w
    }
}

/// `WeightedFenwickTree` (tree/_utils.pyx): prefix sums of weights and weighted targets over
/// ranks, 1-based inside.
struct Fenwick {
    size: usize,
    tree_w: Vec<f64>,
    tree_wy: Vec<f64>,
    max_pow2: usize,
    total_w: f64,
    total_wy: f64,
}

impl Fenwick {
    fn new(capacity: usize) -> Self {
        Fenwick {
            size: 0,
            tree_w: vec![0.0; capacity + 1],
            tree_wy: vec![0.0; capacity + 1],
            max_pow2: 0,
            total_w: 0.0,
            total_wy: 0.0,
        }
    }

    fn reset(&mut self, size: usize) {
        self.size = size;
        self.tree_w[..=size].iter_mut().for_each(|w| *w = 0.0);
        self.tree_wy[..=size].iter_mut().for_each(|w| *w = 0.0);
        self.total_w = 0.0;
        self.total_wy = 0.0;
        let mut p = 1;
        while p <= size {
            p <<= 1;
        }
        self.max_pow2 = p >> 1;
    }

    fn add(&mut self, idx: usize, y: f64, w: f64) {
        let wy = w * y;
        let mut i = idx + 1;
        while i <= self.size {
            self.tree_w[i] += w;
            self.tree_wy[i] += wy;
            i += i & i.wrapping_neg();
        }
        self.total_w += w;
        self.total_wy += wy;
    }

    /// `search`: (index, cumulative weight and weighted y before it, previous index).
    fn search(&self, mut target: f64) -> (usize, f64, f64, usize) {
        let (mut current, mut cw, mut cwy) = (0usize, 0.0, 0.0);
        let mut bit = self.max_pow2;
        let mut equal = None;
        while bit != 0 {
            let next = current + bit;
            if next <= self.size {
                let node = self.tree_w[next];
                if target == node {
                    equal = Some((target, bit));
                    break;
                } else if target > node {
                    target -= node;
                    current = next;
                    cw += node;
                    cwy += self.tree_wy[next];
                }
            }
            bit >>= 1;
        }
        let Some((equal_target, equal_bit)) = equal else {
            return (current, cw, cwy, current);
        };
        // An exact match: the previous index has cumulative weight < target...
        let mut prev = current;
        while bit != 0 {
            let next = prev + bit;
            if next <= self.size {
                let node = self.tree_w[next];
                if target > node {
                    target -= node;
                    prev = next;
                }
            }
            bit >>= 1;
        }
        // ... and the index itself the largest with cumulative weight <= target.
        let (mut target, mut bit) = (equal_target, equal_bit);
        while bit != 0 {
            let next = current + bit;
            if next <= self.size {
                let node = self.tree_w[next];
                if target >= node {
                    target -= node;
                    current = next;
                    cw += node;
                    cwy += self.tree_wy[next];
                }
            }
            bit >>= 1;
        }
        (current, cw, cwy, prev)
    }
}
