//! The threshold scan of one feature at one node, with the exact Gini screen.

use super::builder::Best;
use super::keys::value_of;
use super::{FEATURE_THRESHOLD, impurity_of};
use crate::params::Criterion;

/// What the threshold scan of one feature at one node reads.
pub(super) struct Scan<'a> {
    pub(super) criterion: Criterion,
    pub(super) feature: usize,
    /// Rows in the node, missing ones included.
    pub(super) n: usize,
    pub(super) n_missing: usize,
    pub(super) min_samples_leaf: usize,
    pub(super) weighted_n_node: f64,
    /// The sorted non-missing keys of [`Splitter::sort_feature`].
    pub(super) keys: &'a [u64],
    pub(super) sum_total: &'a [f64],
    pub(super) sum_missing: &'a [f64],
}

/// Runs [`scan_feature`] with the class count as a constant when it is small (it nearly always
/// is), so the per-class loops of every candidate threshold unroll, and with the Gini screen
/// when it is exact (see [`scan_feature`]).
pub(super) fn scan_classes(
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

    /// `Partitioner.next_p` with `criterion.update`: moves the sorted rows from `keys[*q]` up
    /// to the next value more than `FEATURE_THRESHOLD` above the previous one to the left;
    /// returns the last value moved.
    #[inline(always)]
    fn next_p<const SCREEN: bool>(
        &mut self,
        keys: &[u64],
        q: &mut usize,
        sum_total: &[f64],
        decode: &impl Fn(u32) -> (usize, f64),
    ) -> f32 {
        let (c, w) = decode(keys[*q] as u32);
        self.add::<SCREEN>(sum_total, c, w);
        let mut last = value_of(keys[*q]);
        *q += 1;
        while *q < keys.len() {
            let x = value_of(keys[*q]);
            if x > last + FEATURE_THRESHOLD {
                break;
            }
            let (c, w) = decode(keys[*q] as u32);
            self.add::<SCREEN>(sum_total, c, w);
            last = x;
            *q += 1;
        }
        last
    }

    /// `children_impurity` of the current candidate, or `None` when the Gini screen proves it
    /// cannot beat `bar` (see [`scan_feature`]).
    #[inline(always)]
    fn impurities<const SCREEN: bool>(
        &self,
        criterion: Criterion,
        (sum_total, sum_right): (&[f64], &mut [f64]),
        w_node: f64,
        bar: f64,
    ) -> Option<(f64, f64)> {
        let w_left = self.weight;
        let w_right = w_node - w_left;
        if SCREEN {
            let g = self.sq_right * w_left + self.sq * w_right;
            if g < bar * (w_left * w_right) {
                return None;
            }
            // The same values `impurity_of` computes: the squares are exact integers.
            return Some((
                1.0 - self.sq / (w_left * w_left),
                1.0 - self.sq_right / (w_right * w_right),
            ));
        }
        right_sums(sum_total, self.sums, sum_right);
        Some((
            impurity_of(criterion, self.sums, w_left),
            impurity_of(criterion, sum_right, w_right),
        ))
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
            let last = left.next_p::<SCREEN>(keys, &mut q, sum_total, &decode);
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
            let Some((imp_left, imp_right)) =
                left.impurities::<SCREEN>(scan.criterion, (sum_total, sum_right), w_node, bar)
            else {
                continue;
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

/// `sum_right = sum_total - sum_left`, class by class (`ClassificationCriterion.update`).
#[inline(always)]
pub(super) fn right_sums(sum_total: &[f64], sum_left: &[f64], sum_right: &mut [f64]) {
    for ((r, t), l) in sum_right.iter_mut().zip(sum_total).zip(sum_left) {
        *r = t - l;
    }
}
