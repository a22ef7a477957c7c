//! One fold's running `predict_proba` sum over its test rows, dense (rows x classes) or, when
//! there are many classes, sparse: each row keeps only the classes some tree gave it.
//!
//! With 10k classes a dense sum is test rows x 10k x 8 bytes per fold (800 MB at 10k test rows)
//! while each row meets at most one leaf per tree. Both forms add the same non-zero values in
//! the same tree order, and adding +0.0 to a non-negative sum keeps its bits, so they hold the
//! same numbers; argmax takes the first (lowest class) maximum in both.

use crate::forest::argmax;
use crate::tree::{Leaves, SPARSE_ABOVE};

pub(crate) enum FoldProba {
    /// Row-major, `width` values per row.
    Dense { width: usize, sums: Vec<f64> },
    /// Per row, its non-zero `(class, sum)` entries in class order.
    Sparse {
        width: usize,
        rows: Vec<Vec<(u32, f64)>>,
    },
}

impl FoldProba {
    /// Zero sums for `n_rows` rows of `width` classes; sparse above [`SPARSE_ABOVE`] classes
    /// (where the trees' leaves are sparse too).
    pub(crate) fn new(n_rows: usize, width: usize) -> Self {
        if width > SPARSE_ABOVE {
            FoldProba::Sparse {
                width,
                rows: vec![Vec::new(); n_rows],
            }
        } else {
            FoldProba::Dense {
                width,
                sums: vec![0.0; n_rows * width],
            }
        }
    }

    /// Adds one tree's prediction: test row `r` fell into leaf `leaf_of_row[r]` of `leaves`.
    pub(crate) fn add(&mut self, leaves: &Leaves, leaf_of_row: &[u32]) {
        match self {
            FoldProba::Dense { width, sums } => {
                for (out, &leaf) in sums.chunks_exact_mut(*width).zip(leaf_of_row) {
                    leaves.add_to(leaf, out);
                }
            }
            FoldProba::Sparse { rows, .. } => {
                for (row, &leaf) in rows.iter_mut().zip(leaf_of_row) {
                    leaves.for_each(leaf, |c, v| {
                        match row.binary_search_by_key(&(c as u32), |e| e.0) {
                            Ok(k) => row[k].1 += v,
                            Err(k) => row.insert(k, (c as u32, v)),
                        }
                    });
                }
            }
        }
    }

    /// Divides every sum by `n` (the number of trees: the forest's mean).
    pub(crate) fn divide(&mut self, n: f64) {
        match self {
            FoldProba::Dense { sums, .. } => sums.iter_mut().for_each(|p| *p /= n),
            FoldProba::Sparse { rows, .. } => rows.iter_mut().flatten().for_each(|(_, p)| *p /= n),
        }
    }

    /// Per row, `np.argmax` of its probabilities: the first (lowest) class of the maximum.
    pub(crate) fn argmax_rows(&self) -> Vec<usize> {
        match self {
            FoldProba::Dense { width, sums } => sums.chunks_exact(*width).map(argmax).collect(),
            FoldProba::Sparse { rows, .. } => rows
                .iter()
                .map(|row| {
                    let mut best = (0, 0.0);
                    for &(c, p) in row {
                        if p > best.1 {
                            best = (c as usize, p);
                        }
                    }
                    best.0
                })
                .collect(),
        }
    }

    /// The probabilities row-major, `width` per row (what the probability scorers read).
    pub(crate) fn into_dense(self) -> Vec<f64> {
        match self {
            FoldProba::Dense { sums, .. } => sums,
            FoldProba::Sparse { width, rows } => {
                let mut sums = vec![0.0; rows.len() * width];
                for (out, row) in sums.chunks_exact_mut(width.max(1)).zip(&rows) {
                    row.iter().for_each(|&(c, p)| out[c as usize] = p);
                }
                sums
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Mt19937;

    /// Sparse leaves and sparse sums hold bit for bit what dense ones do, argmax included
    /// (ties to the lowest class), over many classes, near-pure leaves and uneven weights.
    #[test]
    fn sparse_sums_are_the_dense_sums() {
        let width = SPARSE_ABOVE * 3 + 1;
        let mut rs = Mt19937::new(7);
        let mut draw = |k: u64| rs.randint(0, k) as usize;
        let (n_rows, n_trees) = (50, 30);
        let mut sparse = FoldProba::new(n_rows, width);
        let mut dense = FoldProba::Dense {
            width,
            sums: vec![0.0; n_rows * width],
        };
        for _ in 0..n_trees {
            let mut leaves = Leaves::new(width);
            let mut rows = Vec::new();
            for _ in 0..20 {
                let mut sums = vec![0.0; width];
                for _ in 0..1 + draw(4) {
                    // Few classes per leaf, some of them tied.
                    sums[draw(6) * 7 % width] += (1 + draw(3)) as f64;
                }
                let weight = sums.iter().sum::<f64>();
                leaves.push(&sums, weight);
                rows.extend(sums.iter().map(|&s| s / weight));
            }
            let dense_leaves = Leaves::dense(width, rows);
            let leaf_of_row: Vec<u32> = (0..n_rows).map(|_| draw(20) as u32).collect();
            sparse.add(&leaves, &leaf_of_row);
            dense.add(&dense_leaves, &leaf_of_row);
            for leaf in 0..20 {
                assert_eq!(leaves.row(leaf), dense_leaves.row(leaf));
            }
        }
        sparse.divide(n_trees as f64);
        dense.divide(n_trees as f64);
        assert_eq!(sparse.argmax_rows(), dense.argmax_rows());
        let bits = |p: FoldProba| {
            p.into_dense()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(sparse), bits(dense));
    }
}
