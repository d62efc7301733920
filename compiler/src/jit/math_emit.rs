//! The emitter behind `math.rs`: float, integer-lane and mask operations bound to one float type
//! (scalar or vector), and the error-free transformations the double-double code needs.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// A comparison result: `i8` for scalars, an all-ones/all-zeros integer vector for vectors.
#[derive(Clone, Copy)]
pub(super) struct Mask(pub(super) Value);

/// An emitter bound to one float type, so the algorithms below read like the math.
pub(super) struct E<'a, 'f> {
    /// The builder the instructions go into.
    pub(super) b: &'a mut FunctionBuilder<'f>,
    /// F32, F64, F32X4 or F64X2.
    pub(super) ty: Type,
}

impl<'a, 'f> E<'a, 'f> {
    /// Binds the emitter to the type of `x`.
    pub(super) fn of(b: &'a mut FunctionBuilder<'f>, x: Value) -> Self {
        let ty = b.func.dfg.value_type(x);
        assert!(matches!(ty, types::F32 | types::F64 | types::F32X4 | types::F64X2), "jit math: unsupported type {ty}");
        E { b, ty }
    }
    /// Whether lanes are f64.
    pub(super) fn wide(&self) -> bool {
        self.ty.lane_type() == types::F64
    }
    /// The integer type with the same lane layout (for bit manipulation).
    pub(super) fn ity(&self) -> Type {
        self.ty.as_int()
    }
    /// Broadcasts a scalar to every lane when the type is a vector.
    pub(super) fn splat(&mut self, s: Value, ty: Type) -> Value {
        if ty.is_vector() {
            self.b.ins().splat(ty, s)
        } else {
            s
        }
    }
    /// A float constant, rounded to the lane type.
    pub(super) fn c(&mut self, v: f64) -> Value {
        let s = if self.wide() { self.b.ins().f64const(v) } else { self.b.ins().f32const(v as f32) };
        self.splat(s, self.ty)
    }
    /// A float constant given by its bits (the low 32 for f32 lanes).
    pub(super) fn cbits(&mut self, bits: u64) -> Value {
        let s = if self.wide() {
            self.b.ins().f64const(Ieee64::with_bits(bits))
        } else {
            self.b.ins().f32const(Ieee32::with_bits(bits as u32))
        };
        self.splat(s, self.ty)
    }
    /// An integer constant in the lane layout of the float type.
    pub(super) fn ci(&mut self, v: i64) -> Value {
        let ity = self.ity();
        let s = self.b.ins().iconst(ity.lane_type(), v);
        self.splat(s, ity)
    }
    /// Reinterprets float lanes as integers (free for vectors).
    pub(super) fn bits_int(&mut self, x: Value) -> Value {
        let ity = self.ity();
        self.b.ins().bitcast(ity, MemFlagsData::new(), x)
    }
    /// Reinterprets integer lanes as floats.
    pub(super) fn bits_float(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.ty, MemFlagsData::new(), x)
    }
    /// `a + b`.
    pub(super) fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    /// `a - b`.
    pub(super) fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    /// `a * b`.
    pub(super) fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    /// `a / b`.
    pub(super) fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }
    /// `a + k` for a constant `k`.
    pub(super) fn addc(&mut self, a: Value, k: f64) -> Value {
        let k = self.c(k);
        self.add(a, k)
    }
    /// `a * k` for a constant `k`.
    pub(super) fn mulc(&mut self, a: Value, k: f64) -> Value {
        let k = self.c(k);
        self.mul(a, k)
    }
    /// `k - a` for a constant `k`.
    pub(super) fn rsubc(&mut self, k: f64, a: Value) -> Value {
        let k = self.c(k);
        self.sub(k, a)
    }
    /// `|a|`.
    pub(super) fn abs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }
    /// `min(max(a, lo), hi)`; Cranelift's fmin/fmax propagate NaN, so NaN stays NaN.
    pub(super) fn clamp(&mut self, a: Value, lo: f64, hi: f64) -> Value {
        let (lo, hi) = (self.c(lo), self.c(hi));
        let a = self.b.ins().fmax(a, lo);
        self.b.ins().fmin(a, hi)
    }
    /// Horner evaluation of `c[0] + c[1]·v + c[2]·v² + …`.
    pub(super) fn poly(&mut self, v: Value, c: &[f64]) -> Value {
        let mut acc = self.c(c[c.len() - 1]);
        for &k in c[..c.len() - 1].iter().rev() {
            let m = self.mul(acc, v);
            acc = self.addc(m, k);
        }
        acc
    }
    /// The magnitude of `mag` with the sign of `sign`, as bit operations: `fcopysign` only lowers
    /// for scalars on x86.
    pub(super) fn copysign(&mut self, mag: Value, sign: Value) -> Value {
        let signbit = self.cbits(if self.wide() { 1 << 63 } else { 1 << 31 });
        let s = self.b.ins().band(sign, signbit);
        let m = self.abs(mag);
        self.b.ins().bor(m, s)
    }
    /// Compares floats lane-wise.
    pub(super) fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Mask {
        Mask(self.b.ins().fcmp(cc, a, b))
    }
    /// Compares a float with a constant lane-wise.
    pub(super) fn cmpc(&mut self, cc: FloatCC, a: Value, k: f64) -> Mask {
        let k = self.c(k);
        self.cmp(cc, a, k)
    }
    /// Lane-wise `a && b`.
    pub(super) fn and(&mut self, a: Mask, b: Mask) -> Mask {
        Mask(self.b.ins().band(a.0, b.0))
    }
    /// Lane-wise `a || b`.
    pub(super) fn or(&mut self, a: Mask, b: Mask) -> Mask {
        Mask(self.b.ins().bor(a.0, b.0))
    }
    /// Lane-wise `a != b`.
    pub(super) fn xor(&mut self, a: Mask, b: Mask) -> Mask {
        Mask(self.b.ins().bxor(a.0, b.0))
    }
    /// Lane-wise `!a`; scalar masks are 0/1, so a full `bnot` would make both values true.
    pub(super) fn not(&mut self, a: Mask) -> Mask {
        if self.ty.is_vector() {
            Mask(self.b.ins().bnot(a.0))
        } else {
            Mask(self.b.ins().bxor_imm_u(a.0, 1))
        }
    }
    /// Lane-wise `m ? a : b`.
    pub(super) fn sel(&mut self, m: Mask, a: Value, b: Value) -> Value {
        if self.ty.is_vector() {
            let m = self.b.ins().bitcast(self.ty, MemFlagsData::new(), m.0);
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(m.0, a, b)
        }
    }
    /// Lane-wise `m ? k : b` for a constant `k`.
    pub(super) fn selc(&mut self, m: Mask, k: f64, b: Value) -> Value {
        let k = self.c(k);
        self.sel(m, k, b)
    }
    /// `2^k` for integral `k` in the normal exponent range: `k + magic` puts `k + bias` in the
    /// low mantissa bits, and shifting them into the exponent field pushes the magic's own bits
    /// out of the word.
    pub(super) fn pow2i(&mut self, k: Value) -> Value {
        let (magic, shift) = if self.wide() { (6755399441055744.0 + 1023.0, 52) } else { (12582912.0 + 127.0, 23) };
        let t = self.addc(k, magic);
        let t = self.bits_int(t);
        let t = self.b.ins().ishl_imm_u(t, shift);
        self.bits_float(t)
    }
    /// Error-free `a + b = s + e` for any order of magnitudes (Knuth's two-sum).
    pub(super) fn two_sum(&mut self, a: Value, b: Value) -> (Value, Value) {
        let s = self.add(a, b);
        let bb = self.sub(s, a);
        let ab = self.sub(s, bb);
        let ea = self.sub(a, ab);
        let eb = self.sub(b, bb);
        (s, self.add(ea, eb))
    }
    /// Error-free `a + b = s + e` when `|a| >= |b|` (Dekker's fast two-sum).
    pub(super) fn fast_two_sum(&mut self, a: Value, b: Value) -> (Value, Value) {
        let s = self.add(a, b);
        let t = self.sub(s, a);
        (s, self.sub(b, t))
    }
    /// Splits `a` into two halves whose products are exact (Veltkamp), f64 lanes only.
    pub(super) fn split(&mut self, a: Value) -> (Value, Value) {
        let t = self.mulc(a, 134217729.0);
        let u = self.sub(t, a);
        let hi = self.sub(t, u);
        (hi, self.sub(a, hi))
    }
    /// Error-free `a·b = p + e` without FMA (Dekker's two-product), f64 lanes only.
    pub(super) fn two_prod(&mut self, a: Value, b: Value) -> (Value, Value) {
        let p = self.mul(a, b);
        let (ah, al) = self.split(a);
        let (bh, bl) = self.split(b);
        let hh = self.mul(ah, bh);
        let hl = self.mul(ah, bl);
        let lh = self.mul(al, bh);
        let ll = self.mul(al, bl);
        let e = self.sub(hh, p);
        let e = self.add(e, hl);
        let e = self.add(e, lh);
        (p, self.add(e, ll))
    }
}
