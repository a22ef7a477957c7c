//! Gini and entropy from class sums, in `_criterion.pyx`'s operation order.

use crate::params::Criterion;

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
