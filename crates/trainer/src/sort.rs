//! scikit-learn's `simultaneous_sort` (utils/_sorting.pyx) with `use_three_way_partition=True`,
//! as the tree partitioner and the MAE criterion call it: introsort with a median-of-3 pivot
//! and a 3-way partition, insertion sort below 16 items, heapsort past `2 * log2(n)` levels.
//!
//! The classifier does not need it (its class sums are exact integers, so the order of tied
//! rows never matters). The regression criteria add float targets in the order the rows sit
//! after the sort, and that order among equal values is what this unstable sort leaves, so it
//! is ported step for step. When every value is distinct any correct sort gives the same
//! order; [`sort_with`] then uses a radix sort (faster on large nodes).

/// Sorts `values` ascending and applies the same permutation to `indices`, exactly as
/// sklearn's `simultaneous_sort(values, indices, n, use_three_way_partition=True)`.
pub(crate) fn simultaneous_sort<T: Copy + PartialOrd>(values: &mut [T], indices: &mut [u32]) {
    let n = values.len();
    if n == 0 {
        return;
    }
    let maxd = 2 * (n as f64).log2() as isize;
    introsort_3way(values, indices, maxd);
}

fn introsort_3way<T: Copy + PartialOrd>(
    mut values: &mut [T],
    mut indices: &mut [u32],
    mut maxd: isize,
) {
    while values.len() > 15 {
        if maxd <= 0 {
            heapsort(values, indices);
            return;
        }
        maxd -= 1;
        let n = values.len();
        let pivot = median3(values);
        let (mut i, mut l, mut r) = (0, 0, n);
        while i < r {
            if values[i] < pivot {
                values.swap(i, l);
                indices.swap(i, l);
                i += 1;
                l += 1;
            } else if values[i] > pivot {
                r -= 1;
                values.swap(i, r);
                indices.swap(i, r);
            } else {
                i += 1;
            }
        }
        let (left_v, right_v) = values.split_at_mut(r);
        let (left_i, right_i) = indices.split_at_mut(r);
        introsort_3way(&mut left_v[..l], &mut left_i[..l], maxd);
        values = right_v;
        indices = right_i;
    }
    insertion_sort(values, indices);
}

fn median3<T: Copy + PartialOrd>(v: &[T]) -> T {
    let n = v.len();
    let (a, b, c) = (v[0], v[n / 2], v[n - 1]);
    if a < b {
        if b < c {
            b
        } else if a < c {
            c
        } else {
            a
        }
    } else if b < c {
        if a < c { a } else { c }
    } else {
        b
    }
}

fn insertion_sort<T: Copy + PartialOrd>(values: &mut [T], indices: &mut [u32]) {
    for i in 1..values.len() {
        let (tv, ti) = (values[i], indices[i]);
        let mut j = i;
        while j > 0 && values[j - 1] > tv {
            values[j] = values[j - 1];
            indices[j] = indices[j - 1];
            j -= 1;
        }
        values[j] = tv;
        indices[j] = ti;
    }
}

fn heapsort<T: Copy + PartialOrd>(values: &mut [T], indices: &mut [u32]) {
    let n = values.len();
    // n > 15 here, so (n - 2) / 2 is Cython's floor division of a positive number.
    let mut start = (n - 2) / 2;
    loop {
        sift_down(values, indices, start, n);
        if start == 0 {
            break;
        }
        start -= 1;
    }
    let mut end = n - 1;
    while end > 0 {
        values.swap(0, end);
        indices.swap(0, end);
        sift_down(values, indices, 0, end);
        end -= 1;
    }
}

fn sift_down<T: Copy + PartialOrd>(
    values: &mut [T],
    indices: &mut [u32],
    start: usize,
    end: usize,
) {
    let mut root = start;
    loop {
        let child = root * 2 + 1;
        let mut maxind = root;
        if child < end && values[maxind] < values[child] {
            maxind = child;
        }
        if child + 1 < end && values[maxind] < values[child + 1] {
            maxind = child + 1;
        }
        if maxind == root {
            break;
        }
        values.swap(root, maxind);
        indices.swap(root, maxind);
        root = maxind;
    }
}

/// [`simultaneous_sort`] for float32 feature values (no NaN), with a faster sort where it
/// gives the same result: when all values are distinct the sorted order is unique. Packed
/// (value, index) keys are sorted (radix on large nodes, pdqsort on small ones) and checked
/// for ties; only tied values take the ported introsort. `keys` and `buf` are scratch.
/// `expect_ties` (the feature was tied before) skips the keys below 256 rows, where a failed
/// try would cost about a second sort. Returns whether the values were all distinct, as far
/// as it looked.
pub(crate) fn sort_with(
    values: &mut [f32],
    indices: &mut [u32],
    keys: &mut Vec<u64>,
    buf: &mut Vec<u64>,
    expect_ties: bool,
) -> bool {
    let n = values.len();
    if n < 16 || (expect_ties && n < 256) {
        // Insertion sort below 16 rows either way (introsort's base case).
        simultaneous_sort(values, indices);
        return !expect_ties;
    }
    keys.clear();
    keys.extend(
        values
            .iter()
            .zip(indices.iter())
            .map(|(&x, &i)| (u64::from(sortable(x)) << 32) | u64::from(i)),
    );
    if n < 256 {
        keys.sort_unstable();
    } else {
        crate::tree::radix_sort_high_half(keys, buf);
    }
    // -0.0 and 0.0 are equal floats with distinct bits: the check compares floats.
    let distinct = keys
        .windows(2)
        .all(|w| unsortable((w[0] >> 32) as u32) < unsortable((w[1] >> 32) as u32));
    if !distinct {
        simultaneous_sort(values, indices);
        return false;
    }
    for ((v, i), &k) in values.iter_mut().zip(indices.iter_mut()).zip(keys.iter()) {
        *v = unsortable((k >> 32) as u32);
        *i = k as u32;
    }
    true
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

fn unsortable(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Mt19937;

    #[test]
    fn sorts_and_carries_indices() {
        let mut rs = Mt19937::new(3);
        for n in [0usize, 1, 5, 16, 17, 100, 1000, 5000] {
            for k in [3u64, 50, 1 << 30] {
                let mut v: Vec<f32> = (0..n).map(|_| rs.randint(0, k) as f32).collect();
                let orig = v.clone();
                let mut idx: Vec<u32> = (0..n as u32).collect();
                simultaneous_sort(&mut v, &mut idx);
                assert!(v.windows(2).all(|w| w[0] <= w[1]));
                for (x, &i) in v.iter().zip(&idx) {
                    assert_eq!(*x, orig[i as usize]);
                }
                let mut v2 = orig.clone();
                let mut idx2: Vec<u32> = (0..n as u32).collect();
                sort_with(&mut v2, &mut idx2, &mut Vec::new(), &mut Vec::new(), k == 3);
                if k == 1 << 30 && n <= 1000 {
                    // Distinct in practice: radix and introsort agree exactly.
                    assert_eq!(idx2, idx);
                }
                assert_eq!(v2, v);
            }
        }
    }

    #[test]
    fn tie_order_is_sklearns() {
        // sklearn 1.9.1: sklearn.utils._sorting._py_simultaneous_sort(values, np.arange(n), n,
        // use_three_way_partition=True), float32 then float64 values.
        let mut v: Vec<f32> = vec![
            3., 1., 2., 3., 1., 2., 0., 3., 1., 2., 0., 0., 3., 1., 2., 3., 1., 1., 0., 2.,
        ];
        let mut idx: Vec<u32> = (0..20).collect();
        simultaneous_sort(&mut v, &mut idx);
        assert_eq!(
            idx,
            [
                18, 6, 10, 11, 1, 4, 17, 8, 16, 13, 19, 2, 5, 9, 14, 15, 12, 7, 3, 0
            ]
        );
        let want = [
            0, 35, 30, 25, 20, 5, 15, 10, 8, 33, 3, 13, 28, 38, 18, 23, 36, 21, 26, 6, 16, 31, 1,
            11, 4, 9, 34, 14, 29, 39, 19, 24, 32, 2, 27, 37, 22, 17, 7, 12,
        ];
        let mut v: Vec<f64> = (0..40).map(|i| f64::from((i * 7) % 5)).collect();
        let mut idx: Vec<u32> = (0..40).collect();
        simultaneous_sort(&mut v, &mut idx);
        assert_eq!(idx, want);
    }
}
