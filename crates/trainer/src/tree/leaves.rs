//! The fitted leaves' values (`tree_.value`, leaves only), stored densely or, when there are
//! many classes, as each leaf's non-zero class fractions only.
//!
//! A fully grown tree's leaves are nearly pure, so with 10k classes a dense row per leaf is
//! almost all zeros (leaves x classes x 8 bytes per tree). Leaving the zeros out never changes
//! a result: sums start at +0.0 and every fraction is >= 0, and adding +0.0 to such a sum
//! leaves its bits unchanged, so a sparse sum in the same tree order is the dense sum.

/// Above this many classes a leaf keeps only its non-zero fractions.
pub(crate) const SPARSE_ABOVE: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaves {
    width: usize,
    /// Sparse: leaf `k`'s entries are `start[k]..start[k + 1]` of `class` and `value`. Empty
    /// when dense: leaf `k` is `value[k * width..(k + 1) * width]`.
    start: Vec<u32>,
    class: Vec<u32>,
    value: Vec<f64>,
}

impl Leaves {
    /// Empty leaves of `width` values each, sparse when `width` is above [`SPARSE_ABOVE`].
    pub(crate) fn new(width: usize) -> Self {
        Leaves {
            width,
            start: if width > SPARSE_ABOVE {
                vec![0]
            } else {
                Vec::new()
            },
            class: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Dense leaves from their rows of `width` values (the exact-order builder's output).
    pub(crate) fn dense(width: usize, value: Vec<f64>) -> Self {
        Leaves {
            width,
            start: Vec::new(),
            class: Vec::new(),
            value,
        }
    }

    fn is_sparse(&self) -> bool {
        !self.start.is_empty()
    }

    /// Appends a leaf whose values are `sums[c] / weight`; returns its index.
    pub(crate) fn push(&mut self, sums: &[f64], weight: f64) -> u32 {
        if !self.is_sparse() {
            let leaf = self.value.len() / self.width.max(1);
            self.value.extend(sums.iter().map(|&s| s / weight));
            return leaf as u32;
        }
        let leaf = self.start.len() - 1;
        for (c, &s) in sums.iter().enumerate() {
            if s != 0.0 {
                self.class.push(c as u32);
                self.value.push(s / weight);
            }
        }
        self.start.push(self.value.len() as u32);
        leaf as u32
    }

    /// Calls `f(class, value)` for leaf `leaf`'s values, in class order (the zeros of a sparse
    /// leaf left out).
    #[inline]
    pub(crate) fn for_each(&self, leaf: u32, mut f: impl FnMut(usize, f64)) {
        let k = leaf as usize;
        if self.is_sparse() {
            let (a, b) = (self.start[k] as usize, self.start[k + 1] as usize);
            for (&c, &v) in self.class[a..b].iter().zip(&self.value[a..b]) {
                f(c as usize, v);
            }
        } else {
            let row = &self.value[k * self.width..(k + 1) * self.width];
            row.iter().enumerate().for_each(|(c, &v)| f(c, v));
        }
    }

    /// `out[c] += value` for leaf `leaf`'s values (`out` has `width` entries).
    #[inline]
    pub(crate) fn add_to(&self, leaf: u32, out: &mut [f64]) {
        self.for_each(leaf, |c, v| out[c] += v);
    }

    /// Leaf `leaf`'s values as one dense row.
    pub(crate) fn row(&self, leaf: u32) -> Vec<f64> {
        let mut out = vec![0.0; self.width];
        self.for_each(leaf, |c, v| out[c] = v);
        out
    }

    /// The first value of leaf `leaf` of a dense single-value tree (a regression prediction).
    pub(crate) fn scalar(&self, leaf: u32) -> f64 {
        debug_assert!(!self.is_sparse() && self.width == 1);
        self.value[leaf as usize]
    }
}
