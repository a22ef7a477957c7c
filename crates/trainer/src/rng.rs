//! The two random number generators scikit-learn's forest consumes, bit for bit.
//!
//! * [`Mt19937`] is numpy's legacy `RandomState`: MT19937 seeded with `init_genrand`, and
//!   [`Mt19937::randint`] is `RandomState.randint(low, high)` for ranges below 2^32, which numpy
//!   draws by masked rejection on 32-bit outputs (`buffered_bounded_masked_uint32`).
//! * [`RandR`] is sklearn's `our_rand_r` (tree/_utils.pxd, utils/_random.pxd): an xorshift32
//!   used by the splitter for its Fisher-Yates feature draws.
//!
//! This module owns nothing else: which draws happen in which order is decided by the forest
//! (`forest.rs`) and the splitter (`tree/`).

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// numpy's MT19937 as used by the legacy `np.random.RandomState(seed)`.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// `RandomState(seed)` for an integer seed: numpy calls `mt19937_seed` (= `init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, pos: N }
    }

    fn generate(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % N] & LOWER_MASK);
            let mut v = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            self.state[i] = v;
        }
        self.pos = 0;
    }

    /// One tempered 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.generate();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `RandomState.randint(low, high)`: one draw from `[low, high)`.
    ///
    /// numpy's legacy path uses masked rejection: `mask` is the smallest `2^k - 1` covering
    /// `high - low - 1`, and 32-bit outputs are redrawn until the masked value fits. Only ranges
    /// below 2^32 occur here (row counts and `RAND_R_MAX`).
    pub fn randint(&mut self, low: u64, high: u64) -> u64 {
        debug_assert!(high > low && high - low - 1 <= u64::from(u32::MAX));
        let rng = (high - low - 1) as u32;
        if rng == 0 {
            return low;
        }
        if rng == u32::MAX {
            return low + u64::from(self.next_u32());
        }
        let mut mask = rng;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= rng {
                return low + u64::from(v);
            }
        }
    }
}

/// sklearn's `RAND_R_MAX` (2^31 - 1): the bound of `our_rand_r` and of the splitter seed draw.
pub(crate) const RAND_R_MAX: u32 = 0x7fff_ffff;

/// sklearn's `our_rand_r` state (xorshift32, reduced modulo 2^31).
#[derive(Debug, Clone)]
pub struct RandR(u32);

impl RandR {
    /// A generator starting from `seed` (sklearn's `rand_r_state`).
    pub fn new(seed: u32) -> Self {
        RandR(seed)
    }

    /// `our_rand_r`: a state of 0 becomes `DEFAULT_SEED` (1) before stepping.
    pub fn next_u31(&mut self) -> u32 {
        if self.0 == 0 {
            self.0 = 1;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 % (RAND_R_MAX + 1)
    }

    /// `rand_int(low, high)`: `low + our_rand_r() % (high - low)`.
    pub fn rand_int(&mut self, low: usize, high: usize) -> usize {
        low + (self.next_u31() as usize) % (high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tree_seeds_match_numpy_for_random_state_0() {
        // RandomState(0).randint(np.iinfo(np.int32).max) ten times (the notes' test vector).
        let mut rs = Mt19937::new(0);
        let seeds: Vec<u64> = (0..10).map(|_| rs.randint(0, i32::MAX as u64)).collect();
        assert_eq!(
            seeds,
            [
                209652396, 398764591, 924231285, 1478610112, 441365315, 1537364731, 192771779,
                1491434855, 1819583497, 530702035
            ]
        );
    }

    #[test]
    fn bootstrap_draws_match_numpy() {
        // RandomState(209652396).randint(0, 120, 120)[:10].
        let mut rs = Mt19937::new(209652396);
        let draws: Vec<u64> = (0..10).map(|_| rs.randint(0, 120)).collect();
        assert_eq!(draws, [108, 99, 50, 32, 64, 114, 54, 41, 39, 67]);
    }

    #[test]
    fn splitter_seed_is_first_draw_of_a_fresh_stream() {
        let mut rs = Mt19937::new(209652396);
        assert_eq!(rs.randint(0, u64::from(RAND_R_MAX)), 2087557356);
    }

    #[test]
    fn mt19937_reference_output() {
        // init_genrand(5489) gives 3499211612 first (the reference mt19937ar output).
        assert_eq!(Mt19937::new(5489).next_u32(), 3499211612);
    }

    #[test]
    fn rand_r_zero_state_becomes_one() {
        let mut a = RandR::new(0);
        let mut b = RandR::new(1);
        assert_eq!(a.next_u31(), b.next_u31());
        let mut r = RandR::new(1);
        // 1 ^ 1<<13 = 8193; ^ >>17 = 8193; ^ <<5 = 8193 ^ 262176 = 270369.
        assert_eq!(r.next_u31(), 270369);
    }
}
