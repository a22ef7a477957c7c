//! Criterion benches for the trainer: CSV parsing, the split search at a root and one tree
//! (1k, 20k and 100k rows), the same two for the regressors (`split_search_regression`,
//! `tree_fit_regression`: RandomForestRegressor and ExtraTreesRegressor at 1k and 20k rows, on
//! distinct and tied values), one forest fit, and the full 5-fold cross-validation at 1k and 20k
//! rows, plus a peer group that fits linfa-ensemble's and smartcore's random forests (10 trees)
//! beside ours on the same data.
//!
//! Data is generated here deterministically (a fixed-seed MT19937 drawing Gaussian-ish class
//! clusters), so `cargo bench -p trainer` needs no files. Parameters are encoded in the
//! benchmark ids.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use linfa::ParamGuard;
use trainer::{Estimator, ForestParams, Mt19937};

/// A `pandas.to_csv`-style CSV with `n_rows` rows, `n_features` features and 3 classes whose
/// means differ on the first half of the features.
fn synthetic_csv(n_rows: usize, n_features: usize, seed: u32) -> String {
    let mut rng = Mt19937::new(seed);
    let mut uniform = move || (rng.next_u32() as f64 + 0.5) / 4_294_967_296.0;
    let mut out = String::from(",");
    for f in 0..n_features {
        out.push_str(&format!("x{f},"));
    }
    out.push_str("target\n");
    for i in 0..n_rows {
        let class = i % 3;
        out.push_str(&format!("{i},"));
        for f in 0..n_features {
            // Sum of uniforms: roughly normal noise around a class-dependent mean.
            let noise: f64 = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
            let shift = if f < n_features / 2 {
                class as f64 * 0.6 * ((f % 3) as f64 - 1.0)
            } else {
                0.0
            };
            out.push_str(&trainer::pyfloat::repr(noise + shift));
            out.push(',');
        }
        out.push_str(&format!("{class}\n"));
    }
    out
}

/// [`synthetic_csv`] with a float target instead of the class: a linear mix of the first half of
/// the features plus noise, written with Python's float repr (ties come from nowhere, so
/// this times the radix path; `ties` rounds the features to 1 decimal for the introsort one).
fn synthetic_regression_csv(n_rows: usize, n_features: usize, seed: u32, ties: bool) -> String {
    let mut rng = Mt19937::new(seed);
    let mut uniform = move || (rng.next_u32() as f64 + 0.5) / 4_294_967_296.0;
    let mut out = String::from(",");
    for f in 0..n_features {
        out.push_str(&format!("x{f},"));
    }
    out.push_str("target\n");
    for i in 0..n_rows {
        out.push_str(&format!("{i},"));
        let mut target = 0.0;
        for f in 0..n_features {
            let mut x: f64 = (0..4).map(|_| uniform()).sum::<f64>() - 2.0;
            if ties {
                x = (x * 10.0).round() / 10.0;
            }
            if f < n_features / 2 {
                target += x * ((f % 5) as f64 - 2.0);
            }
            out.push_str(&trainer::pyfloat::repr(x));
            out.push(',');
        }
        target += uniform() - 0.5;
        out.push_str(&format!("{}\n", trainer::pyfloat::repr(target)));
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_csv");
    for &(rows, features) in &[(1_000usize, 20usize), (20_000, 40)] {
        let csv = synthetic_csv(rows, features, 42);
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{rows}rows-{features}features")),
            &csv,
            |b, csv| {
                b.iter(|| {
                    trainer::parse_csv(black_box(csv.as_bytes()), Path::new("bench.csv")).unwrap()
                })
            },
        );
    }
    group.finish();
}

/// The split search at a root (sort + threshold scan of the drawn features) and one whole tree,
/// with main.py's parameters: the two innermost hot paths.
fn bench_split_and_tree(c: &mut Criterion) {
    let params = ForestParams::new().check().unwrap();
    let sizes = [(1_000usize, 20usize), (20_000, 40), (100_000, 50)];
    let datasets: Vec<_> = sizes
        .iter()
        .map(|&(rows, features)| {
            let csv = synthetic_csv(rows, features, 3);
            let data = trainer::parse_csv(csv.as_bytes(), Path::new("b")).unwrap();
            (format!("{rows}rows-{features}features"), data)
        })
        .collect();
    let mut group = c.benchmark_group("split_search");
    for (id, data) in &datasets {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("root-{id}")),
            data,
            |b, data| b.iter(|| trainer::hot::root_split(data, &params)),
        );
    }
    group.finish();
    let mut group = c.benchmark_group("tree_fit");
    group.sample_size(10);
    for (id, data) in &datasets {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("1tree-{id}")),
            data,
            |b, data| b.iter(|| trainer::hot::fit_tree(data, &params).n_nodes()),
        );
    }
    group.finish();
}

/// The regression hot paths: the root split search and one tree of `RandomForestRegressor`
/// (exact-order best splitter, squared error, every feature per split) and one tree of
/// `ExtraTreesRegressor` (random splitter), on distinct and on tied feature values.
fn bench_regression(c: &mut Criterion) {
    let sizes = [
        (1_000usize, 20usize, false),
        (20_000, 40, false),
        (20_000, 40, true),
    ];
    let datasets: Vec<_> = sizes
        .iter()
        .map(|&(rows, features, ties)| {
            let csv = synthetic_regression_csv(rows, features, 13, ties);
            let kind = trainer::TargetKind::Values;
            let data = trainer::parse_csv_as(csv.as_bytes(), Path::new("b"), kind).unwrap();
            let tied = if ties { "-ties" } else { "" };
            (format!("{rows}rows-{features}features{tied}"), data)
        })
        .collect();
    let forest = ForestParams::for_estimator(Estimator::RandomForestRegressor)
        .check()
        .unwrap();
    let extra = ForestParams::for_estimator(Estimator::ExtraTreesRegressor)
        .check()
        .unwrap();
    let mut group = c.benchmark_group("split_search_regression");
    for (id, data) in &datasets {
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("root-squared_error-{id}")),
            data,
            |b, data| b.iter(|| trainer::hot::root_split(data, &forest)),
        );
    }
    group.finish();
    let mut group = c.benchmark_group("tree_fit_regression");
    group.sample_size(10);
    for (id, data) in &datasets {
        for (name, params) in [
            ("RandomForestRegressor", &forest),
            ("ExtraTreesRegressor", &extra),
        ] {
            group.bench_with_input(
                BenchmarkId::new(name, format!("1tree-{id}")),
                data,
                |b, data| b.iter(|| trainer::hot::fit_tree(data, params).n_nodes()),
            );
        }
    }
    group.finish();
}

fn bench_forest_fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("forest_fit");
    group.sample_size(10);
    for &(rows, features) in &[(1_000usize, 20usize), (20_000, 40)] {
        let data = trainer::parse_csv(synthetic_csv(rows, features, 7).as_bytes(), Path::new("b"))
            .unwrap();
        let x: Vec<f32> = (0..data.n_rows).flat_map(|i| data.row(i)).collect();
        let y: Vec<usize> = data.labels().iter().map(|&l| l as usize).collect();
        let params = ForestParams::new().check().unwrap();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("10trees-{rows}rows-{features}features")),
            &(x, y),
            |b, (x, y)| b.iter(|| trainer::fit_forest(x, features, y, &params).unwrap()),
        );
    }
    group.finish();
}

fn bench_cross_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_validation");
    group.sample_size(10);
    for &(rows, features) in &[(1_000usize, 20usize), (20_000, 40)] {
        let data = trainer::parse_csv(synthetic_csv(rows, features, 11).as_bytes(), Path::new("b"))
            .unwrap();
        let params = ForestParams::new().check().unwrap();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("cv5-10trees-{rows}rows-{features}features")),
            &data,
            |b, data| b.iter(|| trainer::cross_validate(data, &params, Path::new("b")).unwrap()),
        );
    }
    group.finish();
}

/// Our forest against linfa-ensemble 0.8.1 and smartcore 0.7.0 on the same rows. The peers are
/// far slower (they scan every training row at every node), so the group stays at 1k and 4k rows
/// (smartcore at 1k).
fn bench_peers(c: &mut Criterion) {
    use linfa::prelude::{Dataset, Fit};
    use ndarray::{Array1, Array2};
    use rand::SeedableRng;
    use smartcore::ensemble::random_forest_classifier::{
        RandomForestClassifier, RandomForestClassifierParameters,
    };
    use smartcore::linalg::basic::matrix::DenseMatrix;

    let mut group = c.benchmark_group("peer_forest_fit");
    group.sample_size(10);
    for &(rows, features) in &[(1_000usize, 20usize), (4_000, 20)] {
        let data = trainer::parse_csv(synthetic_csv(rows, features, 5).as_bytes(), Path::new("b"))
            .unwrap();
        let x32: Vec<f32> = (0..data.n_rows).flat_map(|i| data.row(i)).collect();
        let labels: Vec<usize> = data.labels().iter().map(|&l| l as usize).collect();
        let id =
            |who: &str| BenchmarkId::new(who, format!("10trees-{rows}rows-{features}features"));

        let params = ForestParams::new().check().unwrap();
        group.bench_function(id("trainer"), |b| {
            b.iter(|| trainer::fit_forest(&x32, features, &labels, &params).unwrap())
        });

        let records = Array2::from_shape_vec(
            (rows, features),
            x32.iter().map(|&v| f64::from(v)).collect(),
        )
        .unwrap();
        let dataset = Dataset::new(records, Array1::from(labels.clone()));
        group.bench_function(id("linfa-ensemble"), |b| {
            b.iter(|| {
                linfa_ensemble::RandomForestParams::new_fixed_rng(
                    linfa_trees::DecisionTree::params(),
                    rand::rngs::SmallRng::seed_from_u64(0),
                )
                .ensemble_size(10)
                .bootstrap_proportion(1.0)
                .feature_proportion(1.0)
                .fit(&dataset)
                .unwrap()
            })
        });

        // smartcore did not finish one 4k-row fit in 15 minutes when measured, so it stays at
        // 1k rows (`cargo bench` must end).
        if rows > 1_000 {
            continue;
        }
        let rows_f64: Vec<Vec<f64>> = (0..rows)
            .map(|i| {
                x32[i * features..(i + 1) * features]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect()
            })
            .collect();
        let matrix = DenseMatrix::from_2d_vec(&rows_f64).unwrap();
        let y: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        group.bench_function(id("smartcore"), |b| {
            b.iter(|| {
                RandomForestClassifier::fit(
                    &matrix,
                    &y,
                    RandomForestClassifierParameters::default()
                        .with_n_trees(10)
                        .with_seed(0),
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_parse,
    bench_split_and_tree,
    bench_regression,
    bench_forest_fit,
    bench_cross_validation,
    bench_peers
);
criterion_main!(benches);
