//! The vector kernels of the tridiagonal reduction: AVX on x86-64 for f32 and f64, written with
//! explicit intrinsics (the reduction is memory-bound only if these run at full width, and
//! auto-vectorization of the generic loops proved fragile), and the same loops in scalar code
//! elsewhere. Each kernel adds in one fixed order for a given machine, so results do not depend
//! on the thread count.

use super::super::Real;
use std::any::TypeId;

/// The slice as `&[U]` when T is U.
fn cast<T: 'static, U: 'static>(s: &[T]) -> Option<&[U]> {
    // SAFETY: T and U are the same type.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &*(s as *const [T] as *const [U]) })
}

fn cast_mut<T: 'static, U: 'static>(s: &mut [T]) -> Option<&mut [U]> {
    // SAFETY: T and U are the same type.
    (TypeId::of::<T>() == TypeId::of::<U>()).then(|| unsafe { &mut *(s as *mut [T] as *mut [U]) })
}

/// The value as a U when T is U.
fn val<T: Copy + 'static, U: Copy + 'static>(x: T) -> U {
    assert!(TypeId::of::<T>() == TypeId::of::<U>());
    // SAFETY: T and U are the same type.
    unsafe { std::mem::transmute_copy(&x) }
}

fn avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Runs the f32 or f64 AVX kernel of module `f32x8` / `f64x4` when T is that type and the
/// machine has AVX, and `$portable` otherwise.
macro_rules! dispatch {
    ($f:ident ($($s:ident),*; $($m:ident),*; $($v:ident),*) $portable:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if avx() {
            if let ($(Some($s),)* $(Some($m),)*) = ($(cast::<T, f32>($s),)* $(cast_mut::<T, f32>($m),)*) {
                // SAFETY: the CPU has AVX (checked above).
                return val(unsafe { f32x8::$f($($s,)* $($m,)* $(val::<T, f32>($v)),*) });
            }
            if let ($(Some($s),)* $(Some($m),)*) = ($(cast::<T, f64>($s),)* $(cast_mut::<T, f64>($m),)*) {
                // SAFETY: as above.
                return val(unsafe { f64x4::$f($($s,)* $($m,)* $(val::<T, f64>($v)),*) });
            }
        }
        $portable
    }};
}

/// aᵀb.
pub(super) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    dispatch!(dot(a, b;;) a.iter().zip(b).fold(T::zero(), |s, (&p, &q)| s + p * q))
}

/// y ← y - a α - b β.
pub(super) fn axpy2<T: Real>(y: &mut [T], a: &[T], alpha: T, b: &[T], beta: T) {
    dispatch!(axpy2(a, b; y; alpha, beta) {
        for ((e, &p), &q) in y.iter_mut().zip(a).zip(b) {
            *e = *e - p * alpha - q * beta;
        }
    })
}

/// y += a₀x₀ + a₁x₁ + a₂x₂ + a₃x₃ and (aₖᵀx)ₖ, reading each column entry once: four columns of a
/// symmetric matrix-vector product.
pub(super) fn dot_axpy4<T: Real>(a: [&[T]; 4], x: &[T], y: &mut [T], xk: [T; 4]) -> [T; 4] {
    let mut out = [T::zero(); 4];
    dot_axpy4_into(a, x, y, xk, &mut out);
    out
}

fn dot_axpy4_into<T: Real>(a: [&[T]; 4], x: &[T], y: &mut [T], xk: [T; 4], o: &mut [T]) {
    let ([a0, a1, a2, a3], [x0, x1, x2, x3]) = (a, xk);
    dispatch!(dot_axpy4(a0, a1, a2, a3, x; y, o; x0, x1, x2, x3) {
        for (r, e) in y.iter_mut().enumerate() {
            let c = [a0[r], a1[r], a2[r], a3[r]];
            *e = *e + c[0] * x0 + c[1] * x1 + c[2] * x2 + c[3] * x3;
            for k in 0..4 {
                o[k] += c[k] * x[r];
            }
        }
    })
}

/// y += a x₀ and aᵀx (one column of a symmetric matrix-vector product).
pub(super) fn dot_axpy1<T: Real>(a: &[T], x: &[T], y: &mut [T], x0: T) -> T {
    dispatch!(dot_axpy1(a, x; y; x0) {
        let mut s = T::zero();
        for ((e, &p), &q) in y.iter_mut().zip(a).zip(x) {
            *e += p * x0;
            s += p * q;
        }
        s
    })
}

/// The AVX kernels for one element type: `$w` lanes per 256-bit vector.
macro_rules! avx_kernels {
    ($m:ident, $t:ty, $w:expr, $v:ty, $load:ident, $store:ident, $add:ident, $sub:ident, $mul:ident, $set1:ident, $zero:ident) => {
        #[cfg(target_arch = "x86_64")]
        mod $m {
            use std::arch::x86_64::*;

            const W: usize = $w;

            /// The lanes of v, added pairwise.
            #[target_feature(enable = "avx")]
            unsafe fn hsum(v: $v) -> $t {
                let mut l = [0.0 as $t; W];
                $store(l.as_mut_ptr(), v);
                let mut h = W / 2;
                while h > 0 {
                    for i in 0..h {
                        l[i] += l[i + h];
                    }
                    h /= 2;
                }
                l[0]
            }

            #[target_feature(enable = "avx")]
            pub unsafe fn dot(a: &[$t], b: &[$t]) -> $t {
                let n = a.len().min(b.len());
                let body = n - n % W;
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut s = $zero();
                let mut r = 0;
                while r < body {
                    s = $add(s, $mul($load(pa.add(r)), $load(pb.add(r))));
                    r += W;
                }
                let mut t = hsum(s);
                for r in body..n {
                    t += a[r] * b[r];
                }
                t
            }

            #[target_feature(enable = "avx")]
            pub unsafe fn axpy2(a: &[$t], b: &[$t], y: &mut [$t], alpha: $t, beta: $t) {
                let n = y.len().min(a.len()).min(b.len());
                let body = n - n % W;
                let (pa, pb, py) = (a.as_ptr(), b.as_ptr(), y.as_mut_ptr());
                let (va, vb) = ($set1(alpha), $set1(beta));
                let mut r = 0;
                while r < body {
                    let e = $sub($load(py.add(r)), $mul($load(pa.add(r)), va));
                    $store(py.add(r), $sub(e, $mul($load(pb.add(r)), vb)));
                    r += W;
                }
                for r in body..n {
                    y[r] = y[r] - a[r] * alpha - b[r] * beta;
                }
            }

            #[target_feature(enable = "avx")]
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn dot_axpy4(
                a0: &[$t],
                a1: &[$t],
                a2: &[$t],
                a3: &[$t],
                x: &[$t],
                y: &mut [$t],
                out: &mut [$t],
                x0: $t,
                x1: $t,
                x2: $t,
                x3: $t,
            ) {
                let n = y.len();
                assert!(a0.len() >= n && a1.len() >= n && a2.len() >= n && a3.len() >= n && x.len() >= n);
                let body = n - n % W;
                let (p0, p1, p2, p3, px, py) =
                    (a0.as_ptr(), a1.as_ptr(), a2.as_ptr(), a3.as_ptr(), x.as_ptr(), y.as_mut_ptr());
                let (b0, b1, b2, b3) = ($set1(x0), $set1(x1), $set1(x2), $set1(x3));
                let (mut s0, mut s1, mut s2, mut s3) = ($zero(), $zero(), $zero(), $zero());
                let mut r = 0;
                while r < body {
                    let (xv, mut yv) = ($load(px.add(r)), $load(py.add(r)));
                    let c = $load(p0.add(r));
                    yv = $add(yv, $mul(c, b0));
                    s0 = $add(s0, $mul(c, xv));
                    let c = $load(p1.add(r));
                    yv = $add(yv, $mul(c, b1));
                    s1 = $add(s1, $mul(c, xv));
                    let c = $load(p2.add(r));
                    yv = $add(yv, $mul(c, b2));
                    s2 = $add(s2, $mul(c, xv));
                    let c = $load(p3.add(r));
                    yv = $add(yv, $mul(c, b3));
                    s3 = $add(s3, $mul(c, xv));
                    $store(py.add(r), yv);
                    r += W;
                }
                let mut t = [hsum(s0), hsum(s1), hsum(s2), hsum(s3)];
                for r in body..n {
                    let c = [a0[r], a1[r], a2[r], a3[r]];
                    y[r] = y[r] + c[0] * x0 + c[1] * x1 + c[2] * x2 + c[3] * x3;
                    for k in 0..4 {
                        t[k] += c[k] * x[r];
                    }
                }
                for k in 0..4 {
                    out[k] += t[k];
                }
            }

            #[target_feature(enable = "avx")]
            pub unsafe fn dot_axpy1(a: &[$t], x: &[$t], y: &mut [$t], x0: $t) -> $t {
                let n = y.len();
                assert!(a.len() >= n && x.len() >= n);
                let body = n - n % W;
                let (pa, px, py) = (a.as_ptr(), x.as_ptr(), y.as_mut_ptr());
                let b0 = $set1(x0);
                let mut s = $zero();
                let mut r = 0;
                while r < body {
                    let c = $load(pa.add(r));
                    $store(py.add(r), $add($load(py.add(r)), $mul(c, b0)));
                    s = $add(s, $mul(c, $load(px.add(r))));
                    r += W;
                }
                let mut t = hsum(s);
                for r in body..n {
                    y[r] += a[r] * x0;
                    t += a[r] * x[r];
                }
                t
            }
        }
    };
}

avx_kernels!(
    f32x8,
    f32,
    8,
    __m256,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_mul_ps,
    _mm256_set1_ps,
    _mm256_setzero_ps
);
avx_kernels!(
    f64x4,
    f64,
    4,
    __m256d,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_mul_pd,
    _mm256_set1_pd,
    _mm256_setzero_pd
);
