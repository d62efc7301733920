//! Counter-based random numbers: element `i` of a draw is a pure function of (seed, stream,
//! step, i), so the numbers do not depend on evaluation order, thread count or which other draws
//! ran. The construction is SplitMix64 (Steele, Lea & Flood 2014) used as a hash: a key is
//! `h(h(h(seed) ^ stream) ^ step)` with `h(x) = mix(x + γ)`, and the `n`-th 64-bit word of the
//! draw is `mix(key + (n + 1)·γ)`, i.e. the `n`-th output of a SplitMix64 generator seeded with
//! the key (γ = 0x9e3779b97f4a7c15, `mix` = the SplitMix64 finalizer). A uniform is the top 53
//! bits of word `i` times 2^-53, in [0, 1). A normal is Box–Muller on words `2i` and `2i + 1`:
//! `sqrt(-2 ln(1 - u1)) · cos(2π u2)`. Values are made in f64 and rounded to the run's type, so f32
//! and f64 runs draw the same numbers up to rounding (a uniform that would round up to 1 is
//! replaced by the largest value below 1). In an `Interp`, graph `k` draws with the seed
//! `h(h(seed) ^ k)` ([`param_seed`]) so that parameters of one shape get independent numbers;
//! `eval_once` uses its seed as given.

use super::Scalar;
use crate::ir::Dist;
use ndarray::{ArrayD, IxDyn};

/// SplitMix64's increment, the golden ratio in 64-bit fixed point.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finalizer: a bijective avalanche mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One SplitMix64 step from state `x`, used as a hash.
fn hash(x: u64) -> u64 {
    mix(x.wrapping_add(GAMMA))
}

/// The seed graph `k` of a rule application draws with, so that parameters of the same shape
/// get independent numbers from one application seed.
pub(super) fn param_seed(seed: u64, k: usize) -> u64 {
    hash(hash(seed) ^ k as u64)
}

/// The key of one draw.
pub(super) fn key(seed: u64, stream: u64, step: u64) -> u64 {
    hash(hash(hash(seed) ^ stream) ^ step)
}

/// Word `n` of the draw with key `key`.
fn word(key: u64, n: u64) -> u64 {
    mix(key.wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// Uniform on [0, 1) from word `n`'s top 53 bits.
fn uniform(key: u64, n: u64) -> f64 {
    (word(key, n) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal number `i` of the draw.
fn normal(key: u64, i: u64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let (u1, u2) = (1.0 - uniform(key, 2 * i), uniform(key, 2 * i + 1));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A tensor of `shape` drawn from `dist`; element `i` in row-major order is number `i`.
pub(super) fn random<T: Scalar>(dist: Dist, seed: u64, stream: u64, step: u64, shape: &[usize]) -> ArrayD<T> {
    let key = key(seed, stream, step);
    // Largest value of T below 1: 1 - ε/2 is exact in binary floating point.
    let below_one = T::one() - T::epsilon() / T::from_f64(2.0);
    let mut i = 0u64;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let x = match dist {
            Dist::Uniform => {
                let u = T::from_f64(uniform(key, i));
                if u >= T::one() {
                    below_one
                } else {
                    u
                }
            }
            Dist::Normal => T::from_f64(normal(key, i)),
        };
        i += 1;
        x
    })
}
