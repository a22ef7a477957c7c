//! sklearn's per-node feature draw, shared by both builders.

use crate::rng::RandR;

/// sklearn's per-node feature draw, shared by every splitter (`node_split_best` and
/// `node_split_random`): a Fisher-Yates draw over the tree's `features` permutation that skips
/// features known to be constant and keeps drawing while every feature drawn so far was
/// constant. [`FeatureDraw::next`] yields the position of the next feature to evaluate; the
/// caller then calls [`FeatureDraw::constant`] or [`FeatureDraw::accept`] for it.
pub(crate) struct FeatureDraw {
    f_i: usize,
    n_visited: usize,
    n_found: usize,
    n_drawn: usize,
    n_known: usize,
    n_total: usize,
    max_features: usize,
}

impl FeatureDraw {
    pub(crate) fn new(n_features: usize, n_known: usize, max_features: usize) -> Self {
        FeatureDraw {
            f_i: n_features,
            n_visited: 0,
            n_found: 0,
            n_drawn: 0,
            n_known,
            n_total: n_known,
            max_features,
        }
    }

    /// The position in `features` of the next feature to evaluate, or `None` when the loop
    /// ends. Known constants drawn on the way are set aside as sklearn does.
    #[inline]
    pub(crate) fn next(&mut self, features: &mut [usize], rng: &mut RandR) -> Option<usize> {
        while self.f_i > self.n_total
            && (self.n_visited < self.max_features || self.n_visited <= self.n_found + self.n_drawn)
        {
            self.n_visited += 1;
            let f_j = rng.rand_int(self.n_drawn, self.f_i - self.n_found);
            if f_j < self.n_known {
                features.swap(self.n_drawn, f_j);
                self.n_drawn += 1;
                continue;
            }
            return Some(f_j + self.n_found);
        }
        None
    }

    /// The feature at `f_j` is constant in this node.
    #[inline]
    pub(crate) fn constant(&mut self, features: &mut [usize], f_j: usize) {
        features.swap(f_j, self.n_total);
        self.n_found += 1;
        self.n_total += 1;
    }

    /// The feature at `f_j` is evaluated.
    #[inline]
    pub(crate) fn accept(&mut self, features: &mut [usize], f_j: usize) {
        self.f_i -= 1;
        features.swap(self.f_i, f_j);
    }

    /// Restores the known constants and records the new ones (the invariant sibling and
    /// child nodes rely on); returns the children's number of known constants.
    pub(crate) fn finish(self, features: &mut [usize], constant_features: &mut [usize]) -> usize {
        let (known, found) = (self.n_known, self.n_found);
        features[..known].copy_from_slice(&constant_features[..known]);
        constant_features[known..known + found].copy_from_slice(&features[known..known + found]);
        self.n_total
    }
}
