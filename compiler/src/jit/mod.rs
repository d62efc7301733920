//! The JIT: fused kernels ([`crate::fuse::KernelSpec`]) compiled to native code with Cranelift.
//! Every Cranelift call of the project lives in this module. A kernel is a loop over f32x4 (or
//! f64x2) vectors, Cranelift's widest on x86-64, with a scalar tail; transcendental functions are
//! emitted inline as polynomials (`math`) so a kernel never leaves SIMD for a library call.
//! Arithmetic is exactly the interpreter's, operation for operation in the same type, with no
//! contraction into fused multiply-adds, so a kernel gives the interpreter's bits.
//!
//! Compiled kernels are cached by structure (spec and element type) for the life of the process:
//! two parameters whose rules fuse alike share one function, and code memory is never freed while
//! a pointer to it may exist.

mod codegen;
mod math;

use crate::fuse::KernelSpec;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The element type a kernel computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// 32-bit floats, four lanes per vector.
    F32,
    /// 64-bit floats, two lanes per vector.
    F64,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::F64 => 8,
        }
    }
}

/// A compiled kernel: `(pointers, scalars, start, end, period)` runs elements `start..end`, or,
/// when its spec has broadcast loads ([`crate::fuse::LoadKind`]), rows `start..end` of `period`
/// elements each. `pointers` holds the base address of every loaded tensor, then of every
/// stored one; `scalars` the scalar arguments in the element type. A store may alias a full load
/// of the same element index (an in-place update): each element's loads happen before its stores.
pub type KernelFn =
    unsafe extern "C" fn(pointers: *const *mut u8, scalars: *const u8, start: usize, end: usize, period: usize);

/// The process-wide JIT: one module (so code stays alive) and the cache of compiled kernels.
struct Jit {
    module: JITModule,
    cache: HashMap<(KernelSpec, Elem), KernelFn>,
}

// SAFETY: the module is only touched under the mutex below; the compiled code it owns is
// immutable once finalized and callable from any thread.
unsafe impl Send for Jit {}

fn jit() -> &'static Mutex<Result<Jit, String>> {
    static JIT: OnceLock<Mutex<Result<Jit, String>>> = OnceLock::new();
    JIT.get_or_init(|| Mutex::new(new_module().map(|module| Jit { module, cache: HashMap::new() })))
}

fn new_module() -> Result<JITModule, String> {
    let mut flags = settings::builder();
    // The IR verifier is a tenth of compile time (W5's first step compiles a dozen kernels); it
    // runs wherever debug assertions do, which includes `cargo test`.
    let verify = if cfg!(debug_assertions) { "true" } else { "false" };
    for (k, v) in
        [("opt_level", "speed"), ("is_pic", "false"), ("use_colocated_libcalls", "false"), ("enable_verifier", verify)]
    {
        flags.set(k, v).map_err(|e| format!("cranelift setting {k}: {e}"))?;
    }
    let isa = cranelift_native::builder()
        .map_err(|e| format!("no Cranelift backend for this machine: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| format!("cranelift: {e}"))?;
    Ok(JITModule::new(JITBuilder::with_isa(isa, cranelift_module::default_libcall_names())))
}

/// The compiled kernel for `spec` in `elem`, compiling it on first use.
pub fn kernel(spec: &KernelSpec, elem: Elem) -> Result<KernelFn, String> {
    let mut guard = jit().lock().unwrap_or_else(|p| p.into_inner());
    let jit = guard.as_mut().map_err(|e| e.clone())?;
    if let Some(&f) = jit.cache.get(&(spec.clone(), elem)) {
        return Ok(f);
    }
    let name = format!("kernel{}", jit.cache.len());
    let f = codegen::compile(&mut jit.module, &name, spec, elem)?;
    jit.cache.insert((spec.clone(), elem), f);
    Ok(f)
}

/// Builds the JIT module and compiles a one-load, one-store f32 kernel, so that
/// Cranelift's one-time set-up (the target's flags, the module, the first function's allocations:
/// about 1 ms here) is done before a timed first step. A caller starts it on a spare worker
/// while it parses, as `optic_runtime::linalg::warm_up`.
pub fn warm_up() {
    use crate::fuse::{KOp, LoadKind};
    let copy = KernelSpec { ops: vec![KOp::Load(0)], stores: vec![0], loads: vec![LoadKind::Full], scalars: 0 };
    // A failure here is met again, and reported, by the first real kernel.
    let _ = kernel(&copy, Elem::F32);
}

/// The Cranelift IR of `spec`'s kernel in `elem`, after optimization (for `optic explain`).
pub fn clif(spec: &KernelSpec, elem: Elem) -> Result<String, String> {
    let guard = jit().lock().unwrap_or_else(|p| p.into_inner());
    let jit = guard.as_ref().map_err(|e| e.clone())?;
    codegen::clif(&jit.module, spec, elem)
}
