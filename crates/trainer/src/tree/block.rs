//! The row-block subtree machinery: where a node's rows are read from ([`View`]), and the
//! cache-sized compact copy of one subtree's rows ([`Block`]).

/// Where a node's rows are read from: the fold's own columns, or a subtree's compact copy
/// ([`Block`]). Rows are indices into these slices.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) cols: Cols<'a>,
    pub(super) y: &'a [u32],
    pub(super) weights: &'a [f64],
    /// Per row: `weight << CLASS_BITS | class` when packed, else the row's own index.
    pub(super) payload: &'a [u32],
}

#[derive(Clone, Copy)]
pub(super) enum Cols<'a> {
    /// One slice per feature.
    Split(&'a [&'a [f32]]),
    /// Feature `f` is `data[f * n..(f + 1) * n]`.
    Flat { data: &'a [f32], n: usize },
}

impl<'a> View<'a> {
    pub(super) fn column(&self, f: usize) -> &'a [f32] {
        match self.cols {
            Cols::Split(cols) => cols[f],
            Cols::Flat { data, n } => &data[f * n..(f + 1) * n],
        }
    }
}

/// Bytes a subtree's compact copy may take: it should stay in a core's L2 cache.
pub(super) const BLOCK_BYTES: usize = 1 << 20;

/// A compact copy of one subtree's rows. Deep in a tree a node's rows are scattered over the
/// whole fold, so every feature gather misses the cache; once a node is small enough, its rows
/// are copied once into contiguous columns and the whole subtree below it reads those instead.
/// The copy changes where values are read from, never which values, so the tree is the same.
#[derive(Default)]
pub(super) struct Block {
    cols: Vec<f32>,
    y: Vec<u32>,
    weights: Vec<f64>,
    payload: Vec<u32>,
}

impl Block {
    /// Copies the rows `samples` of `from` (every feature, label, weight and payload) and
    /// renumbers `samples` to the copy's rows `0..n`.
    pub(super) fn fill<'b>(
        &'b mut self,
        from: &View<'_>,
        n_features: usize,
        packed: bool,
        samples: &mut [u32],
    ) -> View<'b> {
        let n = samples.len();
        self.cols.clear();
        self.cols.reserve(n * n_features);
        for f in 0..n_features {
            let col = from.column(f);
            self.cols.extend(samples.iter().map(|&i| col[i as usize]));
        }
        self.y.clear();
        self.y.extend(samples.iter().map(|&i| from.y[i as usize]));
        self.weights.clear();
        self.weights
            .extend(samples.iter().map(|&i| from.weights[i as usize]));
        self.payload.clear();
        if packed {
            self.payload
                .extend(samples.iter().map(|&i| from.payload[i as usize]));
        } else {
            self.payload.extend(0..n as u32);
        }
        for (k, s) in samples.iter_mut().enumerate() {
            *s = k as u32;
        }
        View {
            cols: Cols::Flat {
                data: &self.cols,
                n,
            },
            y: &self.y,
            weights: &self.weights,
            payload: &self.payload,
        }
    }
}
