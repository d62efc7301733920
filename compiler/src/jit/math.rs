//! Transcendental functions emitted inline as Cranelift IR, so fused elementwise kernels never
//! leave SIMD for a library call (Cranelift has no exp/log/sin instructions, and a per-lane libcall
//! is slower than scalar code: shared/design/research/anchors-compilers.md, section 5).
//!
//! Every function takes a value of type F32, F64, F32X4 or F64X2 and returns the same type. The
//! code is branch-free: both sides of every case split are computed and merged with `select`
//! (scalars) or `bitselect` (vectors), special values are patched in the same way, and powers of
//! two and exponent fields are built with integer lane ops on bitcasts (no float/int conversion,
//! which Cranelift lacks for 64-bit lanes on x86). Products and sums are plain `fmul`/`fadd`
//! rather than `fma`, so the results do not depend on the host having FMA; where a product must
//! be exact, it is split (Cody-Waite constants with trailing zeros, or Dekker's two-product).
//!
//! The methods are the published ones, written anew: Cody-Waite reduction with a degree-7
//! (f32, Cephes) or degree-13 (f64, Taylor) polynomial for `exp`; fdlibm's `s = f/(2+f)` series
//! for `log`; fdlibm's three-part π/2 reduction and its sin/cos kernels; Cephes's small-argument
//! tanh; and for `pow` in f64 a double-double logarithm (SLEEF's idea) fed to `exp` with its low
//! part. f32 `pow`, `sin` and `cos` are computed in f64 and rounded once (as musl does), which is
//! simpler and more accurate than extra-precise f32 arithmetic. `erf` uses an odd polynomial
//! below 1 and `1 - exp(-x²)·G(1/(1+x))` above, with coefficients fitted for this module
//! (Chebyshev interpolation in 150-bit arithmetic).
//!
//! Measured maximum error against Rust std (libm's `erff`/`erf` for erf), in ulps of the result,
//! over dense grids, random values spread over all scales, and special values (`math_tests.rs`,
//! about 100k inputs per function and type, each through both the scalar and the vector kernel):
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | exp | 1 | 1 |
//! | log | 1 | 1 |
//! | pow | 1 | 1 |
//! | tanh | 2 | 2 |
//! | sin, cos (to 1e6) | 1 | 1 |
//! | erf | 1 | 1 |
//! | round_half_away | 0 | 0 |
//!
//! Subnormal inputs and results are handled exactly as std does (no flush to zero). `sin` and
//! `cos` reduce exactly while `|x|·2/π < 2^20` (|x| < 1.6e6), lose accuracy gradually above
//! (by analysis, absolute error about `|x|·2^-53`; not measured), and return NaN for
//! `|x| >= 2^50`, where the quadrant no longer fits the reduction (std would give a value there).

// Constants are quoted with the digits their sources (fdlibm, Cephes) publish, so they can be checked
// against them; the compiler rounds them to the lane type.
#![allow(clippy::excessive_precision)]

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;

#[path = "math_emit.rs"]
mod emit;
#[cfg(test)]
#[path = "math_tests.rs"]
mod tests;

use emit::{Mask, E};

/// `exp(rh + rl)·2^n` for `|rh| <= ln2/2` and a small `rl`: with `r + c = rh + rl` exactly,
/// `exp(r)` as `1 + q` with `q` a polynomial and the rounding error folded in as `(1 + q)(1 + c)`
/// (`rl` itself reaches 2^-12 for f32, too big for that first-order step). The scaling is split in
/// two halves so results in the subnormal range round once and `2^128` (`2^1024`) need not be
/// representable.
fn exp_core(e: &mut E, rh: Value, rl: Value, n: Value) -> Value {
    // Cephes's expf coefficients for f32; Taylor coefficients 1/k! up to k = 13 for f64.
    const P32: [f64; 6] =
        [5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.9875691500e-4];
    let p64: [f64; 12] = std::array::from_fn(|k| 1.0 / (1..=k as u64 + 2).product::<u64>() as f64);
    let (rh, rl) = e.fast_two_sum(rh, rl);
    let p = if e.wide() { e.poly(rh, &p64) } else { e.poly(rh, &P32) };
    let r2 = e.mul(rh, rh);
    let q = e.mul(r2, p);
    let q = e.add(rh, q);
    let lq = e.mul(rl, q);
    let l = e.add(rl, lq);
    let s = e.add(q, l);
    let p = e.addc(s, 1.0);
    let half = e.mulc(n, 0.5);
    let n1 = e.b.ins().floor(half);
    let n2 = e.sub(n, n1);
    let (s1, s2) = (e.pow2i(n1), e.pow2i(n2));
    let p = e.mul(p, s1);
    e.mul(p, s2)
}

/// ln 2 split so `k·LN2_HI` is exact for the exponents that occur (fdlibm's split for f64; for
/// f32, Cephes's 0.693359375, which has 9 significant bits).
fn ln2_split(e: &E) -> (f64, f64) {
    if e.wide() {
        (6.93147180369123816490e-01, 1.90821492927058770002e-10)
    } else {
        (0.693359375, -2.12194440e-4)
    }
}

/// `e^x`. Overflow gives +inf, underflow rounds through the subnormals to 0.
pub(crate) fn exp(b: &mut FunctionBuilder, x: Value) -> Value {
    let mut e = E::of(b, x);
    let e = &mut e;
    // Beyond these bounds the result is already inf or 0; clamping keeps `n` in range.
    let x = if e.wide() { e.clamp(x, -746.0, 710.0) } else { e.clamp(x, -104.0, 89.0) };
    let t = e.mulc(x, std::f64::consts::LOG2_E);
    let n = e.b.ins().nearest(t);
    let (hi, lo) = if e.wide() {
        (6.93147180369123816490e-01, 1.90821492927058770002e-10)
    } else {
        (0.693145751953125, 1.428606765330187045e-06)
    };
    let nh = e.mulc(n, hi);
    let rh = e.sub(x, nh);
    let rl = e.mulc(n, -lo);
    exp_core(e, rh, rl, n)
}

/// Splits positive finite `x` into `k` (as an integral float) and `m ∈ [√½, √2)` with
/// `x = m·2^k`, scaling subnormals up first.
fn frexp_sqrt2(e: &mut E, x: Value) -> (Value, Value) {
    let (k_sub, mant_bits, one_bits, sqrt_half_bits, mask, magic_bits, magic) = if e.wide() {
        (
            52.0,
            52,
            0x3ff0_0000_0000_0000i64,
            0x3fe6_a09e_667f_3bcdi64,
            0x000f_ffff_ffff_ffffi64,
            0x4330_0000_0000_0000i64,
            4503599627370496.0 + 1023.0,
        )
    } else {
        (23.0, 23, 0x3f80_0000, 0x3f35_04f3, 0x007f_ffff, 0x4b00_0000, 8388608.0 + 127.0)
    };
    let min_normal = if e.wide() { f64::MIN_POSITIVE } else { f32::MIN_POSITIVE as f64 };
    let tiny = e.cmpc(FloatCC::LessThan, x, min_normal);
    let scaled = e.mulc(x, 2f64.powf(k_sub));
    let xs = e.sel(tiny, scaled, x);
    // Adding 1 - √½ to the bits carries into the exponent exactly when the mantissa is ≥ √2.
    let ix = e.bits_int(xs);
    let d = e.ci(one_bits - sqrt_half_bits);
    let ix = e.b.ins().iadd(ix, d);
    let field = e.b.ins().ushr_imm_u(ix, mant_bits);
    let mb = e.ci(magic_bits);
    let field = e.b.ins().bor(field, mb);
    let kf = e.bits_float(field);
    let k = e.addc(kf, -magic);
    let adj = e.c(k_sub);
    let zero = e.c(0.0);
    let adj = e.sel(tiny, adj, zero);
    let k = e.sub(k, adj);
    let mm = e.ci(mask);
    let m = e.b.ins().band(ix, mm);
    let sh = e.ci(sqrt_half_bits);
    let m = e.b.ins().iadd(m, sh);
    (k, e.bits_float(m))
}

/// The natural logarithm: log(0) = -inf, log(x < 0) = NaN, log(+inf) = +inf.
pub(crate) fn log(b: &mut FunctionBuilder, x: Value) -> Value {
    let mut e = E::of(b, x);
    let e = &mut e;
    // fdlibm's (and FreeBSD logf's) minimax coefficients for the series in s².
    const LG64: [f64; 7] = [
        6.666666666666735130e-01,
        3.999999999940941908e-01,
        2.857142874366239149e-01,
        2.222219843214978396e-01,
        1.818357216161805012e-01,
        1.531383769920937332e-01,
        1.479819860511658591e-01,
    ];
    const LG32: [f64; 4] = [0.66666662693, 0.40000972152, 0.28498786688, 0.24279078841];
    let (k, m) = frexp_sqrt2(e, x);
    let f = e.addc(m, -1.0);
    let d = e.addc(f, 2.0);
    let s = e.div(f, d);
    let z = e.mul(s, s);
    let p = if e.wide() { e.poly(z, &LG64) } else { e.poly(z, &LG32) };
    let r = e.mul(z, p);
    let ff = e.mul(f, f);
    let hfsq = e.mulc(ff, 0.5);
    let (hi, lo) = ln2_split(e);
    let klo = e.mulc(k, lo);
    let t = e.add(hfsq, r);
    let t = e.mul(s, t);
    let t = e.add(t, klo);
    let t = e.sub(hfsq, t);
    let t = e.sub(t, f);
    let khi = e.mulc(k, hi);
    let y = e.sub(khi, t);
    let inf = e.cmpc(FloatCC::Equal, x, f64::INFINITY);
    let y = e.selc(inf, f64::INFINITY, y);
    let zero = e.cmpc(FloatCC::Equal, x, 0.0);
    let y = e.selc(zero, f64::NEG_INFINITY, y);
    let neg = e.cmpc(FloatCC::UnorderedOrLessThan, x, 0.0);
    e.selc(neg, f64::NAN, y)
}

/// `ln(ax)` as an unevaluated double-double `hi + lo` (relative error about 2^-66) for positive
/// finite f64 `ax`: `2 atanh(s)` with `s = (m-1)/(m+1)`, its first two terms in double-double.
fn log_dd(e: &mut E, ax: Value) -> (Value, Value) {
    // Coefficients of s^5·T(s²) = the rest of the atanh series, fitted on s² ≤ 0.0297.
    const T: [f64; 9] = [
        0.4,
        0.28571428571428564,
        0.22222222222228882,
        0.18181818179522571,
        0.1538461578064774,
        0.13333295011900106,
        0.1176687865598926,
        0.10454866026728715,
        0.10775601089388141,
    ];
    let (k, m) = frexp_sqrt2(e, ax);
    let num = e.addc(m, -1.0);
    let one = e.c(1.0);
    let (dh, dl) = e.two_sum(m, one);
    let sh = e.div(num, dh);
    let (p, pe) = e.two_prod(sh, dh);
    let r = e.sub(num, p);
    let r = e.sub(r, pe);
    let sdl = e.mul(sh, dl);
    let r = e.sub(r, sdl);
    let sl = e.div(r, dh);
    // z = s², s³ = s·z and (2/3)·s³, each to double-double accuracy.
    let (zh, ze) = e.two_prod(sh, sh);
    let ssl = e.mul(sh, sl);
    let ssl2 = e.mulc(ssl, 2.0);
    let zl = e.add(ze, ssl2);
    let (ch, ce) = e.two_prod(sh, zh);
    let a = e.mul(sh, zl);
    let bb = e.mul(sl, zh);
    let cl = e.add(ce, a);
    let cl = e.add(cl, bb);
    let two3 = e.c(2.0 / 3.0);
    let (ah, ae) = e.two_prod(ch, two3);
    let t = e.mulc(ch, 3.700743415417188e-17);
    let u = e.mulc(cl, 2.0 / 3.0);
    let al = e.add(ae, t);
    let al = e.add(al, u);
    let s5 = e.mul(zh, ch);
    let tp = e.poly(zh, &T);
    let tail = e.mul(s5, tp);
    let s2h = e.mulc(sh, 2.0);
    let (uh, ue) = e.fast_two_sum(s2h, ah);
    let s2l = e.mulc(sl, 2.0);
    let lows = e.add(s2l, al);
    let lows = e.add(lows, tail);
    let ue = e.add(ue, lows);
    let (hi, lo) = ln2_split(e);
    let khi = e.mulc(k, hi);
    let (vh, ve) = e.two_sum(khi, uh);
    let klo = e.mulc(k, lo);
    let ve = e.add(ve, ue);
    let ve = e.add(ve, klo);
    e.fast_two_sum(vh, ve)
}

/// `|x|^y` for f64 lanes through the double-double logarithm; only finite positive `ax` matter.
fn pow_mag_f64(e: &mut E, ax: Value, y: Value) -> Value {
    let (lh, ll) = log_dd(e, ax);
    // |y| beyond 2^64 over/underflows whenever ax ≠ 1; clamping keeps Dekker's split finite.
    let y = e.clamp(y, -18446744073709551616.0, 18446744073709551616.0);
    let (ph, pe) = e.two_prod(y, lh);
    let yl = e.mul(y, ll);
    let pl = e.add(pe, yl);
    let (ph, pl) = e.fast_two_sum(ph, pl);
    // Out of range the result is 0 or inf, but the low part may be huge there: bound both (in
    // range |pl| <= ulp(746)/2 < 2^-40).
    let ph = e.clamp(ph, -746.0, 710.0);
    let pl = e.clamp(pl, -(2f64.powi(-40)), 2f64.powi(-40));
    let t = e.mulc(ph, std::f64::consts::LOG2_E);
    let n = e.b.ins().nearest(t);
    let nh = e.mulc(n, 6.93147180369123816490e-01);
    let rh = e.sub(ph, nh);
    let nl = e.mulc(n, 1.90821492927058770002e-10);
    let rl = e.sub(pl, nl);
    exp_core(e, rh, rl, n)
}

/// Runs an f64 computation for f32 lanes: promote, compute, round once. An F32X4 becomes two
/// F64X2 halves.
fn via_f64(b: &mut FunctionBuilder, args: &[Value], f: &dyn Fn(&mut FunctionBuilder, &[Value]) -> Value) -> Value {
    let ty = b.func.dfg.value_type(args[0]);
    if !ty.is_vector() {
        let wide: Vec<Value> = args.iter().map(|&a| b.ins().fpromote(types::F64, a)).collect();
        let r = f(b, &wide);
        return b.ins().fdemote(types::F32, r);
    }
    let le = MemFlagsData::new().with_endianness(Endianness::Little);
    let shuffle = |b: &mut FunctionBuilder, x: Value, y: Value, lanes: [u8; 16]| {
        let mask = b.func.dfg.immediates.push(ConstantData::from(&lanes[..]));
        let x = b.ins().bitcast(types::I8X16, le, x);
        let y = b.ins().bitcast(types::I8X16, le, y);
        let r = b.ins().shuffle(x, y, mask);
        b.ins().bitcast(types::F32X4, le, r)
    };
    let high: [u8; 16] = std::array::from_fn(|i| 8 + (i % 8) as u8);
    let mut lo = Vec::new();
    let mut hi = Vec::new();
    for &a in args {
        lo.push(b.ins().fvpromote_low(a));
        let h = shuffle(b, a, a, high);
        hi.push(b.ins().fvpromote_low(h));
    }
    let rl = f(b, &lo);
    let rh = f(b, &hi);
    let dl = b.ins().fvdemote(rl);
    let dh = b.ins().fvdemote(rh);
    let join: [u8; 16] = std::array::from_fn(|i| if i < 8 { i as u8 } else { 8 + i as u8 });
    shuffle(b, dl, dh, join)
}

/// `x^y` with C99/IEEE `pow` special cases: `x^±0 = 1` and `1^y = 1` even for NaN, a negative
/// base with an odd integer exponent keeps its sign, with a non-integer exponent gives NaN,
/// `±0^y<0 = ±inf`, and infinite operands follow `|x| < 1` vs `|x| > 1`.
pub(crate) fn pow(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let ty = b.func.dfg.value_type(x);
    let ax = b.ins().fabs(x);
    let mag = if ty.lane_type() == types::F64 {
        let mut e = E::of(b, x);
        pow_mag_f64(&mut e, ax, y)
    } else {
        via_f64(b, &[ax, y], &|b, v| {
            let l = log(b, v[0]);
            let p = b.ins().fmul(v[1], l);
            exp(b, p)
        })
    };
    let mut e = E::of(b, x);
    let e = &mut e;
    let ty_ = e.b.ins().trunc(y);
    let yint = e.cmp(FloatCC::Equal, ty_, y);
    let hy = e.mulc(y, 0.5);
    let thy = e.b.ins().trunc(hy);
    let half_frac = e.cmp(FloatCC::NotEqual, thy, hy);
    let yodd = e.and(yint, half_frac);
    // 0, inf and infinite exponents: the result is 0 or inf by the sign of y·log|x|.
    let ay = e.abs(y);
    let ax0 = e.cmpc(FloatCC::Equal, ax, 0.0);
    let axinf = e.cmpc(FloatCC::Equal, ax, f64::INFINITY);
    let yinf = e.cmpc(FloatCC::Equal, ay, f64::INFINITY);
    let special = e.or(ax0, axinf);
    let special = e.or(special, yinf);
    let gt1 = e.cmpc(FloatCC::GreaterThan, ax, 1.0);
    let ypos = e.cmpc(FloatCC::GreaterThan, y, 0.0);
    let small = e.xor(gt1, ypos);
    let (inf, zero) = (e.c(f64::INFINITY), e.c(0.0));
    let sv = e.sel(small, zero, inf);
    let r = e.sel(special, sv, mag);
    let signed = e.copysign(r, x);
    let r = e.sel(yodd, signed, r);
    let xneg = e.cmpc(FloatCC::LessThan, x, 0.0);
    let xfin = e.cmpc(FloatCC::GreaterThan, x, f64::NEG_INFINITY);
    let nonint = e.not(yint);
    let nan = e.and(xneg, xfin);
    let nan = e.and(nan, nonint);
    let uno = e.cmp(FloatCC::Unordered, x, y);
    let nan = e.or(nan, uno);
    let r = e.selc(nan, f64::NAN, r);
    let y0 = e.cmpc(FloatCC::Equal, y, 0.0);
    let x1 = e.cmpc(FloatCC::Equal, x, 1.0);
    let ax1 = e.cmpc(FloatCC::Equal, ax, 1.0);
    let m1 = e.and(ax1, yinf);
    let one = e.or(y0, x1);
    let one = e.or(one, m1);
    e.selc(one, 1.0, r)
}

/// `tanh(x)`: an odd series below 0.625 (Cephes: a polynomial for f32, a rational function for
/// f64), where `1 - 2/(e^{2x}+1)` would cancel; that formula above, saturating to ±1.
pub(crate) fn tanh(b: &mut FunctionBuilder, x: Value) -> Value {
    const P32: [f64; 5] = [-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2, -5.70498872745e-3];
    const P64: [f64; 3] = [-1.61468768441708447952e3, -9.92877231001918586564e1, -9.64399179425052238628e-1];
    const Q64: [f64; 4] = [4.84406305325125486048e3, 2.23548839060100448583e3, 1.12811678491632931402e2, 1.0];
    let ax = b.ins().fabs(x);
    let two_ax = b.ins().fadd(ax, ax);
    let ex = exp(b, two_ax);
    let mut e = E::of(b, x);
    let e = &mut e;
    let z = e.mul(ax, ax);
    let p = if e.wide() {
        let p = e.poly(z, &P64);
        let q = e.poly(z, &Q64);
        e.div(p, q)
    } else {
        e.poly(z, &P32)
    };
    let xz = e.mul(ax, z);
    let t = e.mul(xz, p);
    let small = e.add(ax, t);
    let d = e.addc(ex, 1.0);
    let two = e.c(2.0);
    let q = e.div(two, d);
    let big = e.rsubc(1.0, q);
    let m = e.cmpc(FloatCC::LessThan, ax, 0.625);
    // Both sides run on |x| and take the sign last, which also keeps tanh(-0) = -0.
    let r = e.sel(m, small, big);
    e.copysign(r, x)
}

/// sin (`cos == false`) or cos of f64 lanes: `|x| = n·π/2 + r` with π/2 in three parts of 33 bits
/// (exact products while `n < 2^20`), or one and a tail when the input came from f32 (`one_part`),
/// then fdlibm's kernels on the double-double `r`, picked and signed by the quadrant.
fn sincos64(b: &mut FunctionBuilder, x: Value, cos: bool, one_part: bool) -> Value {
    const S: [f64; 5] = [
        8.33333333332248946124e-03,
        -1.98412698298579493134e-04,
        2.75573137070700676789e-06,
        -2.50507602534068634195e-08,
        1.58969099521155010221e-10,
    ];
    const S1: f64 = -1.66666666666666324348e-01;
    const C: [f64; 6] = [
        4.16666666666666019037e-02,
        -1.38888888888741095749e-03,
        2.48015872894767294178e-05,
        -2.75573143513906633035e-07,
        2.08757232129817482790e-09,
        -1.13596475577881948265e-11,
    ];
    let mut e = E::of(b, x);
    let e = &mut e;
    let ax = e.abs(x);
    let t = e.mulc(ax, std::f64::consts::FRAC_2_PI);
    let n = e.b.ins().nearest(t);
    let nh = e.mulc(n, 1.57079632673412561417e+00);
    let mut r = e.sub(ax, nh);
    let parts: &[(f64, f64)] = if one_part {
        &[]
    } else {
        &[
            (6.07710050630396597660e-11, 2.02226624879595063154e-21),
            (2.02226624871116645580e-21, 8.47842766036889956997e-32),
        ]
    };
    let mut w = e.mulc(n, 6.07710050650619224932e-11);
    for &(p, pt) in parts {
        // Subtract the next part exactly and carry the rounding error into the tail `w`.
        let t = r;
        let np = e.mulc(n, p);
        r = e.sub(t, np);
        let d = e.sub(t, r);
        let d = e.sub(d, np);
        let npt = e.mulc(n, pt);
        w = e.sub(npt, d);
    }
    let y0 = e.sub(r, w);
    let y1 = e.sub(r, y0);
    let y1 = e.sub(y1, w);
    let (r, y) = (y0, y1);
    let z = e.mul(r, r);
    // sin(r + y) ≈ r - ((z·(y/2 - v·S) - y) - v·S1)
    let v = e.mul(z, r);
    let sp = e.poly(z, &S);
    let vs = e.mul(v, sp);
    let hy = e.mulc(y, 0.5);
    let u = e.sub(hy, vs);
    let u = e.mul(z, u);
    let u = e.sub(u, y);
    let vs1 = e.mulc(v, S1);
    let u = e.sub(u, vs1);
    let sin_k = e.sub(r, u);
    // cos(r + y) ≈ w + (((1 - w) - z/2) + (z·z·C - r·y)), w = 1 - z/2
    let cp = e.poly(z, &C);
    let zc = e.mul(z, cp);
    let zc = e.mul(z, zc);
    let ry = e.mul(r, y);
    let tail = e.sub(zc, ry);
    let hz = e.mulc(z, 0.5);
    let w1 = e.rsubc(1.0, hz);
    let c = e.rsubc(1.0, w1);
    let c = e.sub(c, hz);
    let c = e.add(c, tail);
    let cos_k = e.add(w1, c);
    // The quadrant's low bits: `n + 1.5·2^52` holds n in its low mantissa bits.
    let nq = e.addc(n, 6755399441055744.0);
    let mut q = e.bits_int(nq);
    if cos {
        let one = e.ci(1);
        q = e.b.ins().iadd(q, one);
    }
    let one = e.ci(1);
    let odd = e.b.ins().band(q, one);
    let zero = e.ci(0);
    let odd = Mask(e.b.ins().icmp(IntCC::NotEqual, odd, zero));
    let res = e.sel(odd, cos_k, sin_k);
    let two = e.ci(2);
    let sign = e.b.ins().band(q, two);
    let mut sign = e.b.ins().ishl_imm_u(sign, 62);
    if !cos {
        // sin is odd: the reduction ran on |x|.
        let xi = e.bits_int(x);
        let sb = e.ci(i64::MIN);
        let xs = e.b.ins().band(xi, sb);
        sign = e.b.ins().bxor(sign, xs);
    }
    let sign = e.bits_float(sign);
    let res = e.b.ins().bxor(res, sign);
    let huge = e.cmpc(FloatCC::GreaterThanOrEqual, ax, 2f64.powi(50));
    e.selc(huge, f64::NAN, res)
}

/// `sin(x)`; see the module doc for the argument range.
pub(crate) fn sin(b: &mut FunctionBuilder, x: Value) -> Value {
    sin_or_cos(b, x, false)
}

/// `cos(x)`; see the module doc for the argument range.
pub(crate) fn cos(b: &mut FunctionBuilder, x: Value) -> Value {
    sin_or_cos(b, x, true)
}

/// Dispatches sin/cos by lane type: f32 goes through f64, where one-part reduction is exact.
fn sin_or_cos(b: &mut FunctionBuilder, x: Value, cos: bool) -> Value {
    if b.func.dfg.value_type(x).lane_type() == types::F64 {
        sincos64(b, x, cos, false)
    } else {
        via_f64(b, &[x], &|b, v| sincos64(b, v[0], cos, true))
    }
}

/// `erf(x)`: `x + x·P(x²)` for `|x| < 1`; above, `1 - e^{-x²}·G(u)` with `u = 1/(1+|x|)` and `G` a
/// polynomial in `u - c` fitted to `e^{x²}·erfc(x)`, whose error is scaled down by `erfc/erf`.
pub(crate) fn erf(b: &mut FunctionBuilder, x: Value) -> Value {
    // erf(x)/x - 1 in x²; the 1 is kept apart because 2/√π itself would round by half an f32 ulp.
    const SMALL64: [f64; 13] = [
        0.1283791670955126,
        -0.3761263890318375,
        0.11283791670954879,
        -0.026866170645076792,
        0.0052239776248180145,
        -0.000854832698083379,
        0.0001205533111164271,
        -1.4925595266831182e-05,
        1.6461000484121368e-06,
        -1.6350312701054695e-07,
        1.4659775274047436e-08,
        -1.1372848856791674e-09,
        5.957176147748911e-11,
    ];
    const SMALL32: [f64; 7] = [
        0.12837916612625122,
        -0.3761262595653534,
        0.11283594369888306,
        -0.02685421146452427,
        0.005189087241888046,
        -0.000801686430349946,
        7.875874871388078e-05,
    ];
    const TAIL64: [f64; 18] = [
        0.24402507744132426,
        0.949037442927304,
        0.5163801198197293,
        -0.3811531311272865,
        -0.3045864624367665,
        0.5935016828097824,
        -0.0809162620799472,
        -0.8426429266343736,
        1.1692567685260908,
        0.006361609864008477,
        -2.436720536173643,
        4.01142269653567,
        -1.409728764637901,
        -7.284693025321493,
        18.84252934989733,
        -17.516158300601827,
        -28.991780381984576,
        81.14094623083139,
    ];
    const TAIL32: [f64; 8] = [
        0.2715528905391693,
        0.9775850176811218,
        0.48235824704170227,
        -0.41117534041404724,
        -0.22208353877067566,
        0.5669503211975098,
        -0.1755778044462204,
        -0.6001618504524231,
    ];
    let ty = b.func.dfg.value_type(x);
    let wide = ty.lane_type() == types::F64;
    // Past 6 (f64) or 4 (f32) erf rounds to 1; clamping keeps G inside its fitted range.
    let ax = b.ins().fabs(x);
    let xc = {
        let mut e = E::of(b, x);
        e.clamp(ax, 1.0, if wide { 6.0 } else { 4.0 })
    };
    let x2 = b.ins().fmul(xc, xc);
    let nx2 = b.ins().fneg(x2);
    let ex = exp(b, nx2);
    let mut e = E::of(b, x);
    let e = &mut e;
    let z = e.mul(x, x);
    let p = if wide { e.poly(z, &SMALL64) } else { e.poly(z, &SMALL32) };
    let xp = e.mul(x, p);
    let small = e.add(x, xp);
    let d = e.addc(xc, 1.0);
    let one = e.c(1.0);
    let u = e.div(one, d);
    let (center, tail): (f64, &[f64]) = if wide { (0.32142857142857145, &TAIL64) } else { (0.35, &TAIL32) };
    let v = e.addc(u, -center);
    let g = e.poly(v, tail);
    let eg = e.mul(ex, g);
    let big = e.rsubc(1.0, eg);
    let big = e.copysign(big, x);
    let m = e.cmpc(FloatCC::LessThan, ax, 1.0);
    e.sel(m, small, big)
}

/// Rounds to the nearest integer, halves away from zero (Rust's `round`; Cranelift's `nearest`
/// rounds halves to even). `x - trunc(x)` is exact, so the halfway test is too.
pub(crate) fn round_half_away(b: &mut FunctionBuilder, x: Value) -> Value {
    let mut e = E::of(b, x);
    let e = &mut e;
    let t = e.b.ins().trunc(x);
    let d = e.sub(x, t);
    let ad = e.abs(d);
    let one = e.c(1.0);
    let step = e.copysign(one, x);
    let up = e.add(t, step);
    let m = e.cmpc(FloatCC::GreaterThanOrEqual, ad, 0.5);
    e.sel(m, up, t)
}
