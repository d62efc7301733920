//! Accuracy tests for the inline math: each function is JIT-compiled into a loop over scalars and
//! over 128-bit vectors, then compared with Rust std (libm for erf) in ulps over dense grids,
//! random values and special values.

use super::*;
use cranelift_codegen::ir::{AbiParam, BlockArg, Type};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};

/// Emits the function under test from its two operands (the second is ignored by unary ones).
type Emit = fn(&mut FunctionBuilder, Value, Value) -> Value;
/// `fn(x, y, out, n)` over `n` elements.
type Kernel = unsafe extern "C" fn(*const u8, *const u8, *mut u8, usize);

/// A JIT module kept alive with the kernels compiled into it.
struct Jit {
    /// Owns the code memory.
    module: JITModule,
    /// Reused per function.
    ctx: Context,
    /// Reused per function.
    fctx: FunctionBuilderContext,
}

impl Jit {
    /// A module for the host ISA with the settings the real JIT uses.
    fn new() -> Self {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").unwrap();
        flags.set("is_pic", "false").unwrap();
        flags.set("use_colocated_libcalls", "false").unwrap();
        let isa = cranelift_native::builder().unwrap().finish(settings::Flags::new(flags)).unwrap();
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ctx = module.make_context();
        Jit { module, ctx, fctx: FunctionBuilderContext::new() }
    }

    /// Compiles `out[i] = emit(x[i], y[i])` stepping by the lanes of `ty`; `n` must be a multiple.
    fn compile(&mut self, ty: Type, emit: Emit) -> Kernel {
        let ptr = self.module.target_config().pointer_type();
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(ptr); 4]);
        self.ctx.func.signature = sig.clone();
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let (entry, header, body, exit) = (b.create_block(), b.create_block(), b.create_block(), b.create_block());
        b.append_block_params_for_function_params(entry);
        b.append_block_param(header, ptr);
        b.switch_to_block(entry);
        let p = b.block_params(entry).to_vec();
        let zero = b.ins().iconst(ptr, 0);
        b.ins().jump(header, &[BlockArg::Value(zero)]);
        b.switch_to_block(header);
        let i = b.block_params(header)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, i, p[3]);
        b.ins().brif(more, body, &[], exit, &[]);
        b.switch_to_block(body);
        let shift = if ty.lane_type() == types::F64 { 3 } else { 2 };
        let off = b.ins().ishl_imm_u(i, shift);
        let flags = MemFlagsData::new().with_notrap();
        let addr = |b: &mut FunctionBuilder, base: Value| b.ins().iadd(base, off);
        let (xa, ya, oa) = (addr(&mut b, p[0]), addr(&mut b, p[1]), addr(&mut b, p[2]));
        let x = b.ins().load(ty, flags, xa, 0);
        let y = b.ins().load(ty, flags, ya, 0);
        let r = emit(&mut b, x, y);
        b.ins().store(flags, r, oa, 0);
        let next = b.ins().iadd_imm_u(i, ty.lane_count() as i64);
        b.ins().jump(header, &[BlockArg::Value(next)]);
        b.switch_to_block(exit);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(self.module.target_config());
        let id = self.module.declare_anonymous_function(&sig).unwrap();
        self.module.define_function(id, &mut self.ctx).unwrap();
        self.module.clear_context(&mut self.ctx);
        self.module.finalize_definitions().unwrap();
        // SAFETY: the code was compiled with exactly this signature and lives as long as `module`.
        unsafe { std::mem::transmute::<*const u8, Kernel>(self.module.get_finalized_function(id)) }
    }
}

/// The element types under test, with their std reference functions.
trait Lane: Copy + std::fmt::Debug + Default {
    /// The scalar Cranelift type.
    const TY: Type;
    /// The 128-bit vector type.
    const VTY: Type;
    /// Converts a test input (rounding for f32).
    fn of(v: f64) -> Self;
    /// Widens for printing and comparisons.
    fn get(self) -> f64;
    /// The bits as a signed integer that is monotone in the float value (±0 both map to 0).
    fn ord(self) -> i64;
    /// The raw bits, to check signed zeros.
    fn bits(self) -> u64;
}

impl Lane for f32 {
    const TY: Type = types::F32;
    const VTY: Type = types::F32X4;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn get(self) -> f64 {
        self as f64
    }
    fn ord(self) -> i64 {
        let i = self.to_bits() as i32 as i64;
        if i < 0 {
            i32::MIN as i64 - i
        } else {
            i
        }
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}

impl Lane for f64 {
    const TY: Type = types::F64;
    const VTY: Type = types::F64X2;
    fn of(v: f64) -> Self {
        v
    }
    fn get(self) -> f64 {
        self
    }
    fn ord(self) -> i64 {
        let i = self.to_bits() as i64;
        if i < 0 {
            i64::MIN.wrapping_sub(i)
        } else {
            i
        }
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// Distance in ulps; NaN only matches NaN, and an expected zero or infinity must match bit for bit
/// (its sign is part of the semantics).
fn ulps<T: Lane>(got: T, want: T) -> u64 {
    let (g, w) = (got.get(), want.get());
    if g.is_nan() || w.is_nan() {
        return if g.is_nan() && w.is_nan() { 0 } else { u64::MAX };
    }
    if (w == 0.0 || w.is_infinite()) && got.bits() != want.bits() {
        return u64::MAX;
    }
    (got.ord() - want.ord()).unsigned_abs()
}

/// A small deterministic generator (xorshift64*), so the inputs are the same on every run.
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// `±10^u` with `u` uniform in `[lo, hi)`: every scale equally often.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let s = if self.next() & 1 == 0 { 1.0 } else { -1.0 };
        s * 10f64.powf(self.uniform(lo, hi))
    }
}

/// `n` points evenly spaced over `[lo, hi]`.
fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
}

/// Values every function must get right.
const EDGES: [f64; 14] =
    [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-300, -1e-300, 1e-40, 2.0, 1e300];

/// Runs `emit` as scalar and vector kernels over `(xs, ys)`, checks both against `want` within
/// `bound` ulps, and returns the worst error seen.
fn check<T: Lane>(name: &str, emit: Emit, xs: &[f64], ys: &[f64], want: fn(T, T) -> T, bound: u64) -> u64 {
    let lanes = T::VTY.lane_count() as usize;
    let n = xs.len().div_ceil(lanes) * lanes;
    let pad = |v: &[f64]| -> Vec<T> { (0..n).map(|i| T::of(*v.get(i).unwrap_or(&1.0))).collect() };
    let (x, y) = (pad(xs), pad(if ys.is_empty() { xs } else { ys }));
    let mut jit = Jit::new();
    let mut worst = 0;
    for ty in [T::TY, T::VTY] {
        let k = jit.compile(ty, emit);
        let mut out = vec![T::default(); n];
        // SAFETY: three buffers of `n` elements of the kernel's lane type; the JIT is alive.
        unsafe { k(x.as_ptr().cast(), y.as_ptr().cast(), out.as_mut_ptr().cast(), n) };
        for i in 0..n {
            let w = want(x[i], y[i]);
            let u = ulps(out[i], w);
            let (xi, yi, got) = (x[i].get(), y[i].get(), out[i].get());
            assert!(u <= bound, "{name} {ty}: x={xi:e} ({xi:?}) y={yi:e}: got {got:e}, want {:e} ({u} ulp)", w.get());
            worst = worst.max(u);
        }
    }
    eprintln!("{name} {}: max {worst} ulp over {} values", T::TY, xs.len());
    worst
}

/// Unary inputs: edges, a grid over `[lo, hi]` and random values, half spread over scales.
fn unary_inputs(lo: f64, hi: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    let mut v: Vec<f64> = EDGES.iter().copied().chain(grid(lo, hi, n)).collect();
    v.extend((0..n).map(|_| r.uniform(lo, hi)));
    v.extend((0..n / 2).map(|_| r.log_uniform(-30.0, hi.abs().max(lo.abs()).log10())));
    v
}

#[test]
fn exp_within_two_ulp() {
    let xs = unary_inputs(-105.0, 90.0, 40_000, 1);
    check::<f32>("exp", |b, x, _| exp(b, x), &xs, &[], |x, _| x.exp(), 2);
    let mut xs = unary_inputs(-750.0, 712.0, 40_000, 2);
    xs.extend([709.78, 709.79, -708.39, -745.13, -745.14, -740.0, 1e-20]);
    check::<f64>("exp", |b, x, _| exp(b, x), &xs, &[], |x, _| x.exp(), 2);
}

#[test]
fn log_within_two_ulp() {
    let mut r = Rng(3);
    let mut xs: Vec<f64> = EDGES.iter().copied().chain(grid(0.5, 2.0, 40_000)).collect();
    xs.extend((0..60_000).map(|_| f32::from_bits((r.next() % 0x7f80_0000) as u32) as f64));
    xs.extend([f32::MIN_POSITIVE as f64 / 3.0, f32::MAX as f64, 1e-45, -2.0]);
    check::<f32>("log", |b, x, _| log(b, x), &xs, &[], |x, _| x.ln(), 2);
    let mut xs: Vec<f64> = EDGES.iter().copied().chain(grid(0.5, 2.0, 40_000)).collect();
    xs.extend((0..60_000).map(|_| f64::from_bits(r.next() % 0x7ff0_0000_0000_0000)));
    xs.extend([5e-324, f64::MAX, f64::MIN_POSITIVE / 7.0, -2.0, 1.0 + f64::EPSILON, 1.0 - f64::EPSILON / 2.0]);
    check::<f64>("log", |b, x, _| log(b, x), &xs, &[], |x, _| x.ln(), 2);
}

/// Pairs for pow: every combination of special values, then random bases with exponents chosen
/// so `y·ln|x|` covers the whole finite range, then negative bases with integer exponents.
fn pow_inputs(max_ln: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let sp =
        [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, -8.0, 1.0 / 3.0, -3.5, 1e10, -1e10, 1e30, f64::NAN];
    let sp: Vec<f64> = sp.iter().copied().chain([f64::INFINITY, f64::NEG_INFINITY]).collect();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for &x in &sp {
        for &y in &sp {
            xs.push(x);
            ys.push(y);
        }
    }
    let mut r = Rng(seed);
    for i in 0..60_000 {
        let x = if i % 3 == 0 { 1.0 + r.uniform(-0.01, 0.01) } else { r.log_uniform(-30.0, 30.0).abs() };
        xs.push(x);
        ys.push(r.uniform(-max_ln, max_ln) / x.ln());
    }
    for _ in 0..20_000 {
        xs.push(-r.uniform(0.0, 10.0));
        ys.push(r.uniform(-40.0, 40.0).round());
    }
    (xs, ys)
}

#[test]
fn pow_within_two_ulp() {
    let (xs, ys) = pow_inputs(105.0, 4);
    check::<f32>("pow", pow, &xs, &ys, |x, y| x.powf(y), 2);
    let (xs, ys) = pow_inputs(750.0, 5);
    check::<f64>("pow", pow, &xs, &ys, |x, y| x.powf(y), 2);
}

#[test]
fn tanh_within_two_ulp() {
    let xs = unary_inputs(-12.0, 12.0, 40_000, 6);
    check::<f32>("tanh", |b, x, _| tanh(b, x), &xs, &[], |x, _| x.tanh(), 2);
    let xs = unary_inputs(-25.0, 25.0, 40_000, 7);
    check::<f64>("tanh", |b, x, _| tanh(b, x), &xs, &[], |x, _| x.tanh(), 2);
}

/// sin/cos inputs: a fine grid near 0, random values up to `max`, and the floats nearest to
/// multiples of π/2 (where the reduced argument cancels most).
fn trig_inputs<T: Lane>(max: f64, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    let mut v = unary_inputs(-100.0, 100.0, 30_000, seed);
    v.extend((0..30_000).map(|_| r.uniform(-max, max)));
    v.extend((0..20_000).map(|_| T::of((r.next() % (max / 1.5) as u64) as f64 * std::f64::consts::FRAC_PI_2).get()));
    v
}

/// The std result, except NaN where the module documents it (|x| >= 2^50).
fn trig_ref<T: Lane>(x: T, f: fn(T) -> T) -> T {
    if x.get().abs() >= 2f64.powi(50) {
        T::of(f64::NAN)
    } else {
        f(x)
    }
}

#[test]
fn sin_cos_within_two_ulp() {
    for max in [1e4, 1e6] {
        let xs = trig_inputs::<f32>(max, 8);
        check::<f32>("sin", |b, x, _| sin(b, x), &xs, &[], |x, _| trig_ref(x, f32::sin), 2);
        check::<f32>("cos", |b, x, _| cos(b, x), &xs, &[], |x, _| trig_ref(x, f32::cos), 2);
        let xs = trig_inputs::<f64>(max, 9);
        check::<f64>("sin", |b, x, _| sin(b, x), &xs, &[], |x, _| trig_ref(x, f64::sin), 2);
        check::<f64>("cos", |b, x, _| cos(b, x), &xs, &[], |x, _| trig_ref(x, f64::cos), 2);
    }
}

#[test]
fn erf_within_two_ulp() {
    let xs = unary_inputs(-7.0, 7.0, 40_000, 10);
    check::<f32>("erf", |b, x, _| erf(b, x), &xs, &[], |x, _| libm::erff(x), 2);
    check::<f64>("erf", |b, x, _| erf(b, x), &xs, &[], |x, _| libm::erf(x), 2);
}

#[test]
fn round_half_away_is_exact() {
    let mut xs = unary_inputs(-20.0, 20.0, 4_000, 11);
    xs.extend(grid(-10.0, 10.0, 81));
    xs.extend([0.49999997, -0.49999997, 0.49999999999999994, 8388607.5, 4503599627370495.5, 2.5, -2.5]);
    check::<f32>("round", |b, x, _| round_half_away(b, x), &xs, &[], |x, _| x.round(), 0);
    check::<f64>("round", |b, x, _| round_half_away(b, x), &xs, &[], |x, _| x.round(), 0);
}
