//! The JIT: fused kernels (see `crate::fuse`) compiled to native code with Cranelift. Every
//! Cranelift call of the project lives in this module. Kernels are loops over f32x4 (or f64x2)
//! vectors with a scalar tail; transcendental functions are emitted inline as polynomials
//! ([`math`]) so a kernel never leaves SIMD for a library call.

mod math;
