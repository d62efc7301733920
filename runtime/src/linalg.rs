//! Dense linear algebra on 2-D `ndarray` matrices, backed by faer (the only place faer is used).
//! Each function copies its operands into faer matrices, runs one factorization and copies the
//! results back; the copies are negligible next to the factorizations and keep faer's types out
//! of every caller. Failures (a singular system, a matrix that is not positive definite, no
//! convergence, mismatched shapes) are returned as [`LinalgError`], never panics. An operand with
//! a NaN or an infinity gives NaN results of the right shapes instead of a factorization: NaN
//! handling is the caller's policy, and faer's iterations are not meant for non-finite input.
//! Signs of singular vectors, eigenvectors and Q's columns are faer's (R's diagonal and the
//! singular vectors are not normalized to a sign convention); callers compare invariants.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2};
use std::fmt;

mod gemm;

pub use gemm::{gemm, gemm_symmetric, gemm_symmetric_with, gemm_with, warm_up, PARALLEL_MIN_MNK};

/// Element types the linear algebra runs in: f32 and f64.
pub trait Real: faer::traits::RealField + num_traits::Float + Copy + fmt::Debug + Send + Sync + 'static {}

impl Real for f32 {}
impl Real for f64 {}

/// A failed linear-algebra call: what went wrong, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinalgError(pub String);

impl fmt::Display for LinalgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinalgError {}

fn err<T>(msg: impl Into<String>) -> Result<T, LinalgError> {
    Err(LinalgError(msg.into()))
}

fn to_faer<T: Real>(a: ArrayView2<T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn from_faer<T: Real>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| *m.get(i, j))
}

fn finite<T: Real>(a: ArrayView2<T>) -> bool {
    a.iter().all(|x| x.is_finite())
}

fn nan2<T: Real>(m: usize, n: usize) -> Array2<T> {
    Array2::from_elem((m, n), T::nan())
}

fn square<T: Real>(a: ArrayView2<T>, what: &str) -> Result<usize, LinalgError> {
    if a.nrows() != a.ncols() {
        return err(format!("{what} needs a square matrix, got {}x{}", a.nrows(), a.ncols()));
    }
    Ok(a.nrows())
}

/// Matrix product `a b` of an m×k and a k×n matrix, with faer's kernels ([`gemm`]).
pub fn matmul<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<Array2<T>, LinalgError> {
    if a.ncols() != b.nrows() {
        return err(format!("matmul of {}x{} and {}x{}", a.nrows(), a.ncols(), b.nrows(), b.ncols()));
    }
    let mut out = Array2::<T>::zeros((a.nrows(), b.ncols()));
    gemm(out.view_mut(), a, b, T::one(), false);
    Ok(out)
}

/// The three factors of a thin SVD: U (m×r), the singular values (r) and V^T (r×n).
pub type SvdFactors<T> = (Array2<T>, Array1<T>, Array2<T>);

/// The SVD of an m×n matrix truncated to `rank` ≤ min(m, n) triplets: (U m×r, S r, V^T r×n),
/// singular values non-negative and descending. Exact: by the Gram route when it is accurate and
/// the matrix is large, else the thin SVD ([`svd_top`] says which; module `lowrank`).
pub fn svd<T: Real>(a: ArrayView2<T>, rank: usize) -> Result<SvdFactors<T>, LinalgError> {
    Ok(svd_top(a, rank)?.0)
}

/// Thin SVD (bidiagonalization) of an m×n matrix truncated to `rank` ≤ min(m, n) triplets,
/// whatever its size (the reference the Gram route is tested against).
pub fn thin_svd<T: Real>(a: ArrayView2<T>, rank: usize) -> Result<SvdFactors<T>, LinalgError> {
    let (m, n) = a.dim();
    if rank > m.min(n) {
        return err(format!("svd of rank {rank} of a {m}x{n} matrix (at most {})", m.min(n)));
    }
    if !finite(a) {
        return Ok((nan2(m, rank), Array1::from_elem(rank, T::nan()), nan2(rank, n)));
    }
    if rank == 0 {
        return Ok((Array2::zeros((m, 0)), Array1::zeros(0), Array2::zeros((0, n))));
    }
    let s = to_faer(a).thin_svd().map_err(|e| LinalgError(format!("svd failed: {e:?}")))?;
    let (u, v, d) = (s.U(), s.V(), s.S().column_vector());
    let u = Array2::from_shape_fn((m, rank), |(i, j)| *u.get(i, j));
    let vt = Array2::from_shape_fn((rank, n), |(i, j)| *v.get(j, i));
    let sv = Array1::from_shape_fn(rank, |i| *d.get(i));
    Ok((u, sv, vt))
}

/// Thin QR of an m×n matrix, k = min(m, n): (Q m×k with orthonormal columns, R k×n upper
/// trapezoidal). Householder QR cannot fail.
pub fn qr<T: Real>(a: ArrayView2<T>) -> (Array2<T>, Array2<T>) {
    let (m, n) = a.dim();
    let k = m.min(n);
    if !finite(a) {
        return (nan2(m, k), nan2(k, n));
    }
    if k == 0 {
        return (Array2::zeros((m, 0)), Array2::zeros((0, n)));
    }
    let q = to_faer(a).qr();
    let r = q.thin_R();
    // faer stores R with whatever it left below the diagonal zeroed; zero it explicitly anyway
    // so the result is upper trapezoidal by construction.
    let r = Array2::from_shape_fn((k, n), |(i, j)| if j >= i { *r.get(i, j) } else { T::zero() });
    (from_faer(q.compute_thin_Q().as_ref()), r)
}

/// Eigendecomposition of a symmetric n×n matrix (only its lower triangle is read, as
/// torch.linalg.eigh does): (eigenvalues ascending, eigenvectors as the columns of an n×n matrix).
pub fn eigh<T: Real>(a: ArrayView2<T>) -> Result<(Array1<T>, Array2<T>), LinalgError> {
    let n = square(a, "eigh")?;
    if !finite(a) {
        return Ok((Array1::from_elem(n, T::nan()), nan2(n, n)));
    }
    if n == 0 {
        return Ok((Array1::zeros(0), Array2::zeros((0, 0))));
    }
    let e = to_faer(a).self_adjoint_eigen(Side::Lower).map_err(|e| LinalgError(format!("eigh failed: {e:?}")))?;
    let w = e.S().column_vector();
    Ok((Array1::from_shape_fn(n, |i| *w.get(i)), from_faer(e.U())))
}

/// Solution x of `a x = b` for a square n×n `a` and an n×k `b`, by LU with partial pivoting.
/// An exactly zero pivot (a singular matrix) is an error, as in LAPACK's getrf.
pub fn solve<T: Real>(a: ArrayView2<T>, b: ArrayView2<T>) -> Result<Array2<T>, LinalgError> {
    let n = square(a, "solve")?;
    if b.nrows() != n {
        return err(format!("solve of a {n}x{n} system with a right-hand side of {} rows", b.nrows()));
    }
    if !finite(a) || !finite(b) {
        return Ok(nan2(n, b.ncols()));
    }
    if n == 0 || b.ncols() == 0 {
        return Ok(Array2::zeros((n, b.ncols())));
    }
    let lu = to_faer(a).partial_piv_lu();
    let u = lu.U();
    if let Some(i) = (0..n).find(|&i| *u.get(i, i) == T::zero()) {
        return err(format!("solve: the matrix is singular (pivot {i} is zero)"));
    }
    Ok(from_faer(lu.solve(to_faer(b)).as_ref()))
}

/// Lower Cholesky factor L (L L^T = a) of a symmetric positive definite n×n matrix; only the
/// lower triangle is read. A matrix that is not positive definite is an error.
pub fn cholesky<T: Real>(a: ArrayView2<T>) -> Result<Array2<T>, LinalgError> {
    let n = square(a, "cholesky")?;
    if !finite(a) {
        return Ok(nan2(n, n));
    }
    if n == 0 {
        return Ok(Array2::zeros((0, 0)));
    }
    let l = to_faer(a)
        .llt(Side::Lower)
        .map_err(|e| LinalgError(format!("cholesky: the matrix is not positive definite ({e:?})")))?;
    let l = l.L();
    // Keep only the factor's triangle: the strict upper part is zero by definition.
    Ok(Array2::from_shape_fn((n, n), |(i, j)| if j <= i { *l.get(i, j) } else { T::zero() }))
}

mod eigh_top;
mod lowrank;

pub use eigh_top::{eigh_top, eigh_top_timed, EighTopTimes};
pub use lowrank::{randomized_svd, svd_top, SvdRoute, GRAM_MIN_SIDE};

#[cfg(test)]
mod tests;
