//! Sort keys: a feature value (order-preserving bits) in the high half, a row's payload in the
//! low half, and the radix sort over them.

/// The feature value in the high half of a sort key.
#[inline(always)]
pub(super) fn value_of(key: u64) -> f32 {
    unsortable((key >> 32) as u32)
}

/// Bits of a packed payload that hold the class.
pub(super) const CLASS_BITS: u32 = 20;
pub(super) const CLASS_MASK: u32 = (1 << CLASS_BITS) - 1;

/// Sorts keys by their high 32 bits (the order of equal high halves is irrelevant here):
/// LSD radix sort with 8-bit digits for large nodes, skipping digits all keys share.
pub(crate) fn radix_sort_high_half(keys: &mut Vec<u64>, buf: &mut Vec<u64>) {
    let n = keys.len();
    if n < 1024 {
        // Ties on the value may end up in any payload order, which is irrelevant.
        keys.sort_unstable();
        return;
    }
    let mut hist = [[0usize; 256]; 4];
    for &k in keys.iter() {
        let h = (k >> 32) as u32;
        for (d, row) in hist.iter_mut().enumerate() {
            row[((h >> (8 * d)) & 0xff) as usize] += 1;
        }
    }
    buf.clear();
    buf.resize(n, 0);
    for (d, row) in hist.iter().enumerate() {
        if row.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; 256];
        let mut total = 0;
        for (o, &c) in offsets.iter_mut().zip(row) {
            *o = total;
            total += c;
        }
        let shift = 32 + 8 * d;
        for &k in keys.iter() {
            let b = ((k >> shift) & 0xff) as usize;
            buf[offsets[b]] = k;
            offsets[b] += 1;
        }
        std::mem::swap(keys, buf);
    }
}

/// Inverse of [`sortable`].
pub(super) fn unsortable(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7fff_ffff
    } else {
        !k
    })
}

/// Maps an f32 (not NaN) to a u32 whose unsigned order is the float order.
pub(super) fn sortable(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}
