//! Kernel spec -> Cranelift IR: the loop over vectors, its scalar tail, and each body value
//! emitted once per path. Comparisons give 1 or 0 (all-ones lane masks turned into 1.0 by a
//! bit select), and `select` tests `c != 0`, which is true for NaN as in the interpreter.

use super::{math, Elem, KernelFn};
use crate::fuse::{KOp, KernelSpec, LoadKind};
use crate::ir::{Binary, Unary};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, Function, InstBuilder, MemFlagsData, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};

/// Compiles `spec` into `module` under `name` and returns the function.
pub(super) fn compile(module: &mut JITModule, name: &str, spec: &KernelSpec, elem: Elem) -> Result<KernelFn, String> {
    let mut ctx = module.make_context();
    ctx.func.signature = signature(module.isa().pointer_type());
    build(&mut ctx.func, spec, elem, module.target_config());
    let id = module
        .declare_function(name, Linkage::Local, &ctx.func.signature)
        .map_err(|e| format!("declaring {name}: {e}"))?;
    // OPTIC_JIT_DISASM=1 prints each kernel's machine code as it is compiled (a debugging aid).
    let disasm = std::env::var_os("OPTIC_JIT_DISASM").is_some();
    ctx.set_disasm(disasm);
    module.define_function(id, &mut ctx).map_err(|e| format!("compiling {name}: {e:?}\n{}", ctx.func.display()))?;
    if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.as_ref()).filter(|_| disasm) {
        eprintln!("{name}:\n{spec}{code}");
        // OPTIC_JIT_DISASM=2 also prints the optimized Cranelift IR (where the optimizer placed what).
        if std::env::var("OPTIC_JIT_DISASM").as_deref() == Ok("2") {
            eprintln!("{}", ctx.func.display());
        }
    }
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(|e| format!("finalizing {name}: {e}"))?;
    let code = module.get_finalized_function(id);
    // SAFETY: the function was built with exactly this signature (see `signature`), for the host.
    Ok(unsafe { std::mem::transmute::<*const u8, KernelFn>(code) })
}

/// The Cranelift IR of a kernel as built (before Cranelift's own optimizations).
pub(super) fn clif(module: &JITModule, spec: &KernelSpec, elem: Elem) -> Result<String, String> {
    let mut ctx = module.make_context();
    ctx.func.signature = signature(module.isa().pointer_type());
    build(&mut ctx.func, spec, elem, module.target_config());
    Ok(ctx.func.display().to_string())
}

fn signature(ptr: Type) -> cranelift_codegen::ir::Signature {
    let mut sig = cranelift_codegen::ir::Signature::new(CallConv::SystemV);
    for _ in 0..5 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig
}

/// Where the body reads its loads: the element offset (bytes) of full loads and stores, the
/// offset within the row of row loads, and the values of per-row loads (for this row).
struct At<'a> {
    element: Value,
    in_row: Value,
    per_row: &'a [Option<Value>],
}

/// Emits the kernel: entry (base pointers, scalars), then either one loop over elements
/// `start..end`, or, when it has broadcast loads, rows `start..end` of `period` elements, each a
/// vector loop with a scalar tail.
fn build(func: &mut Function, spec: &KernelSpec, elem: Elem, config: TargetFrontendConfig) {
    func.name = UserFuncName::default();
    let (scalar_ty, vector_ty, lanes) = match elem {
        Elem::F32 => (types::F32, types::F32X4, 4i64),
        Elem::F64 => (types::F64, types::F64X2, 2i64),
    };
    let size = elem.size() as i64;
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (ptrs, scalars, start, end, period) = (params[0], params[1], params[2], params[3], params[4]);
    let mem = MemFlagsData::new().with_notrap();
    let n_ptrs = spec.loads.len() + spec.stores.len();
    let bases: Vec<Value> = (0..n_ptrs).map(|k| b.ins().load(types::I64, mem, ptrs, (8 * k) as i32)).collect();
    let scalar_args: Vec<Value> =
        (0..spec.scalars as usize).map(|k| b.ins().load(scalar_ty, mem, scalars, (size as usize * k) as i32)).collect();
    let vector_args: Vec<Value> = scalar_args.iter().map(|&s| b.ins().splat(vector_ty, s)).collect();
    let exit = b.create_block();
    let rows = spec.loads.iter().any(|k| *k != LoadKind::Full);
    if !rows {
        let zero = b.ins().iconst(types::I64, 0);
        let none = vec![None; spec.loads.len()];
        let ctx = Loop { spec, scalar_ty, vector_ty, lanes, size, bases: &bases, mem };
        ctx.elements(&mut b, (start, end), zero, &none, (&vector_args, &scalar_args), exit);
        b.switch_to_block(exit);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(config);
        return;
    }
    // Rows: r in start..end, each of `period` elements at element r * period.
    let (rhead, rbody) = (b.create_block(), b.create_block());
    let r = b.append_block_param(rhead, types::I64);
    b.ins().jump(rhead, &[BlockArg::Value(start)]);
    b.switch_to_block(rhead);
    let done = b.ins().icmp(IntCC::SignedGreaterThanOrEqual, r, end);
    b.ins().brif(done, exit, &[], rbody, &[]);
    b.switch_to_block(rbody);
    let row_start = b.ins().imul(r, period);
    let row_end = b.ins().iadd(row_start, period);
    // Per-row loads: one value for the whole row, read once.
    let row_offset = b.ins().imul_imm_s(r, size);
    let per_row: Vec<Option<Value>> = spec
        .loads
        .iter()
        .enumerate()
        .map(|(k, kind)| {
            (*kind == LoadKind::Col).then(|| {
                let addr = b.ins().iadd(bases[k], row_offset);
                b.ins().load(scalar_ty, mem, addr, 0)
            })
        })
        .collect();
    let next_row = b.create_block();
    let ctx = Loop { spec, scalar_ty, vector_ty, lanes, size, bases: &bases, mem };
    ctx.elements(&mut b, (row_start, row_end), row_start, &per_row, (&vector_args, &scalar_args), next_row);
    b.switch_to_block(next_row);
    let r1 = b.ins().iadd_imm_s(r, 1);
    b.ins().jump(rhead, &[BlockArg::Value(r1)]);
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(config);
}

/// Vectors per iteration of a kernel's vector loop.
const UNROLL: i64 = 2;

// Every loop header branches to its exit first and its body second (`brif done, exit, body`).
// Cranelift 0.135's loop-invariant code motion walks the dominator tree and forgets the loop
// when it visits the exit before the body, which it does for `brif more, body, exit`: the
// constants and scalar splats of the body then stay inside the loop, one load or broadcast per
// use per iteration (10-18% of a divider-bound AdamW loop, measured). In this order they are
// made once before the loop and kept in registers.

/// What every loop of a kernel shares.
struct Loop<'a> {
    spec: &'a KernelSpec,
    scalar_ty: Type,
    vector_ty: Type,
    lanes: i64,
    size: i64,
    bases: &'a [Value],
    mem: MemFlagsData,
}

impl Loop<'_> {
    /// Emits elements `from..to` (a vector loop, then a scalar tail), with row loads indexed
    /// from `row_start`; continues at `after`.
    fn elements(
        &self,
        b: &mut FunctionBuilder,
        (from, to): (Value, Value),
        row_start: Value,
        per_row: &[Option<Value>],
        (vector_args, scalar_args): (&[Value], &[Value]),
        after: cranelift_codegen::ir::Block,
    ) {
        // The vector loop takes UNROLL vectors per iteration (independent chains the core can
        // overlap, one compare and branch for all); the scalar tail takes the rest.
        let step = self.lanes * UNROLL;
        let span = b.ins().isub(to, from);
        let whole = b.ins().band_imm_s(span, -step);
        let vec_end = b.ins().iadd(from, whole);
        let per_row_vec: Vec<Option<Value>> =
            per_row.iter().map(|v| v.map(|v| b.ins().splat(self.vector_ty, v))).collect();
        let (vhead, vbody, shead, sbody) = (b.create_block(), b.create_block(), b.create_block(), b.create_block());
        let i_v = b.append_block_param(vhead, types::I64);
        let i_s = b.append_block_param(shead, types::I64);
        b.ins().jump(vhead, &[BlockArg::Value(from)]);

        b.switch_to_block(vhead);
        let done = b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i_v, vec_end);
        b.ins().brif(done, shead, &[BlockArg::Value(i_v)], vbody, &[]);
        b.switch_to_block(vbody);
        for u in 0..UNROLL {
            let i = if u == 0 { i_v } else { b.ins().iadd_imm_s(i_v, u * self.lanes) };
            let at = self.at(b, i, row_start, &per_row_vec);
            body(b, self.spec, self.vector_ty, self.bases, vector_args, &at, self.mem);
        }
        let next = b.ins().iadd_imm_s(i_v, step);
        b.ins().jump(vhead, &[BlockArg::Value(next)]);

        b.switch_to_block(shead);
        let done = b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i_s, to);
        b.ins().brif(done, after, &[], sbody, &[]);
        b.switch_to_block(sbody);
        let at = self.at(b, i_s, row_start, per_row);
        body(b, self.spec, self.scalar_ty, self.bases, scalar_args, &at, self.mem);
        let next = b.ins().iadd_imm_s(i_s, 1);
        b.ins().jump(shead, &[BlockArg::Value(next)]);
    }

    fn at<'v>(&self, b: &mut FunctionBuilder, i: Value, row_start: Value, per_row: &'v [Option<Value>]) -> At<'v> {
        let element = b.ins().imul_imm_s(i, self.size);
        let j = b.ins().isub(i, row_start);
        let in_row = b.ins().imul_imm_s(j, self.size);
        At { element, in_row, per_row }
    }
}

/// Emits one element (or one vector) of the body: loads, values, stores.
fn body(
    b: &mut FunctionBuilder,
    spec: &KernelSpec,
    ty: Type,
    bases: &[Value],
    scalars: &[Value],
    at: &At,
    mem: MemFlagsData,
) {
    let mut vals: Vec<Value> = Vec::with_capacity(spec.ops.len());
    for op in &spec.ops {
        let v = match *op {
            KOp::Load(k) => match (spec.loads[k as usize], at.per_row.get(k as usize).copied().flatten()) {
                (LoadKind::Col, Some(v)) => v,
                (kind, _) => {
                    let offset = if kind == LoadKind::Row { at.in_row } else { at.element };
                    let addr = b.ins().iadd(bases[k as usize], offset);
                    b.ins().load(ty, mem, addr, 0)
                }
            },
            KOp::Scalar(k) => scalars[k as usize],
            KOp::Const(bits) => constant(b, ty, f64::from_bits(bits)),
            KOp::Unary(u, a) => unary(b, ty, u, vals[a as usize]),
            KOp::Binary(op, x, y) => {
                let exponent = match spec.ops[y as usize] {
                    KOp::Const(bits) => Some(f64::from_bits(bits)),
                    _ => None,
                };
                binary(b, ty, op, vals[x as usize], vals[y as usize], exponent)
            }
            KOp::Select(c, x, y) => {
                let zero = constant(b, ty, 0.0);
                // Unordered-or-not-equal: NaN selects the first side, as a nonzero does.
                let mask = b.ins().fcmp(FloatCC::NotEqual, vals[c as usize], zero);
                pick(b, ty, mask, vals[x as usize], vals[y as usize])
            }
        };
        vals.push(v);
    }
    let loads = spec.loads.len();
    for (k, &s) in spec.stores.iter().enumerate() {
        let addr = b.ins().iadd(bases[loads + k], at.element);
        b.ins().store(mem, vals[s as usize], addr, 0);
    }
}

/// A constant of type `ty` (splatted for vectors).
fn constant(b: &mut FunctionBuilder, ty: Type, c: f64) -> Value {
    let lane = ty.lane_type();
    let s = if lane == types::F32 { b.ins().f32const(c as f32) } else { b.ins().f64const(c) };
    if ty.is_vector() {
        b.ins().splat(ty, s)
    } else {
        s
    }
}

/// `mask ? x : y` for a comparison result `mask` (an i8 for scalars, a lane mask for vectors).
fn pick(b: &mut FunctionBuilder, ty: Type, mask: Value, x: Value, y: Value) -> Value {
    if ty.is_vector() {
        let mask = b.ins().bitcast(ty, MemFlagsData::new(), mask);
        b.ins().bitselect(mask, x, y)
    } else {
        b.ins().select(mask, x, y)
    }
}

/// 1 where `mask` holds, 0 elsewhere.
fn indicator(b: &mut FunctionBuilder, ty: Type, mask: Value) -> Value {
    let (one, zero) = (constant(b, ty, 1.0), constant(b, ty, 0.0));
    pick(b, ty, mask, one, zero)
}

fn unary(b: &mut FunctionBuilder, ty: Type, u: Unary, x: Value) -> Value {
    match u {
        Unary::Neg => b.ins().fneg(x),
        Unary::Abs => b.ins().fabs(x),
        Unary::Sqrt => b.ins().sqrt(x),
        Unary::Floor => b.ins().floor(x),
        Unary::Ceil => b.ins().ceil(x),
        Unary::Sign => {
            let zero = constant(b, ty, 0.0);
            let (pos, neg) = (b.ins().fcmp(FloatCC::GreaterThan, x, zero), b.ins().fcmp(FloatCC::LessThan, x, zero));
            let (p, n) = (indicator(b, ty, pos), indicator(b, ty, neg));
            b.ins().fsub(p, n)
        }
        Unary::Not => {
            let zero = constant(b, ty, 0.0);
            let is_zero = b.ins().fcmp(FloatCC::Equal, x, zero);
            indicator(b, ty, is_zero)
        }
        Unary::Exp => math::exp(b, x),
        Unary::Log => math::log(b, x),
        Unary::Sin => math::sin(b, x),
        Unary::Cos => math::cos(b, x),
        Unary::Tanh => math::tanh(b, x),
        Unary::Erf => math::erf(b, x),
        Unary::Round => math::round_half_away(b, x),
    }
}

fn binary(b: &mut FunctionBuilder, ty: Type, op: Binary, x: Value, y: Value, exponent: Option<f64>) -> Value {
    let compare = |b: &mut FunctionBuilder, cc: FloatCC| {
        let m = b.ins().fcmp(cc, x, y);
        indicator(b, ty, m)
    };
    match op {
        Binary::Add => b.ins().fadd(x, y),
        Binary::Sub => b.ins().fsub(x, y),
        Binary::Mul => b.ins().fmul(x, y),
        Binary::Div => b.ins().fdiv(x, y),
        // `x^2` is the exactly rounded square that powf returns; other exponents go through
        // the inline pow.
        Binary::Pow if exponent == Some(2.0) => b.ins().fmul(x, x),
        Binary::Pow if exponent == Some(1.0) => x,
        Binary::Pow => math::pow(b, x, y),
        // Cranelift's fmax/fmin propagate NaN, as torch.maximum and the interpreter do.
        Binary::Max => b.ins().fmax(x, y),
        Binary::Min => b.ins().fmin(x, y),
        Binary::Eq => compare(b, FloatCC::Equal),
        Binary::Ne => compare(b, FloatCC::NotEqual),
        Binary::Lt => compare(b, FloatCC::LessThan),
        Binary::Le => compare(b, FloatCC::LessThanOrEqual),
        Binary::Gt => compare(b, FloatCC::GreaterThan),
        Binary::Ge => compare(b, FloatCC::GreaterThanOrEqual),
        Binary::And | Binary::Or => {
            let zero = constant(b, ty, 0.0);
            let (mx, my) = (b.ins().fcmp(FloatCC::Equal, x, zero), b.ins().fcmp(FloatCC::Equal, y, zero));
            // Both nonzero (and), or not both zero (or).
            let (ix, iy) = (indicator(b, ty, mx), indicator(b, ty, my));
            let zeros = b.ins().fadd(ix, iy);
            let limit = constant(b, ty, if op == Binary::And { 0.0 } else { 2.0 });
            let m = b.ins().fcmp(if op == Binary::And { FloatCC::Equal } else { FloatCC::LessThan }, zeros, limit);
            indicator(b, ty, m)
        }
    }
}
