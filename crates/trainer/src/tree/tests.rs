//! The tree's unit tests: sort keys, tiny trees, and [`Tuning`] never changing a tree.

use super::builder::{Tuning, fit_tuned};
use super::keys::{sortable, unsortable};
use super::{TrainSet, Tree, TreeConfig, fit, radix_sort_high_half};
use crate::params::Criterion;

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

/// One tree on a single feature with unit weights and unlimited depth.
fn fit_one(column: &[f32], y: &[u32], n_classes: usize, criterion: Criterion) -> Tree {
    let columns: &[&[f32]] = &[column];
    let data = TrainSet {
        columns,
        n_rows: y.len(),
        n_features: 1,
        y,
        n_classes,
        has_missing: &[false],
    };
    let cfg = TreeConfig {
        criterion,
        max_depth: i32::MAX as usize,
        min_samples_split: 2,
        min_samples_leaf: 1,
        max_features: 1,
    };
    fit(data, &vec![1.0; y.len()], 7, cfg)
}

#[test]
fn pure_node_is_a_single_leaf() {
    let tree = fit_one(&[1.0, 2.0, 3.0, 4.0], &[0, 0, 0, 0], 1, Criterion::Gini);
    assert_eq!(tree.n_nodes(), 1);
    assert_eq!(tree.leaf_value(&[2.0]), &[1.0]);
}

#[test]
fn separable_feature_splits_at_the_midpoint() {
    let tree = fit_one(&[1.0, 2.0, 3.0, 4.0], &[0, 0, 1, 1], 2, Criterion::Entropy);
    assert_eq!(tree.n_nodes(), 3);
    assert_eq!(tree.nodes[0].threshold, 2.5);
    assert_eq!(tree.leaf_value(&[2.5]), &[1.0, 0.0]);
    assert_eq!(tree.leaf_value(&[2.6]), &[0.0, 1.0]);
    // Equal sizes: without missing values in training, NaN goes right (n_left > n_right).
    assert_eq!(tree.leaf_value(&[f32::NAN]), &[0.0, 1.0]);
}

mod tuning {
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
