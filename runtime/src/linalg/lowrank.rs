//! Truncated SVDs for low-rank projectors (GaLore's refresh: the top `rank` singular vectors of a
//! gradient every few hundred steps).
//!
//! * The exact route through the Gram matrix ([`svd_top`]): for a tall m×n matrix G (m ≥ n; a
//!   wide one is handled through its transpose), C = GᵀG (n×n, lower triangle only) and its top
//!   k eigenpairs ([`super::eigh_top`]: tridiagonal reduction, bisection, inverse iteration, no
//!   full eigh) give the right singular vectors V_k and σ²; then U = G V_k / σ (V_k and U
//!   re-orthonormalized by CholQR2) and σ_j recomputed as ‖G v_j‖. It costs one m·n² product and
//!   the tridiagonal reduction of C, far less than a thin SVD (bidiagonalization of G).
//!   Forming GᵀG squares the condition number: an eigenvector of C is perturbed by about
//!   ε·σ₁²/gap(σ²) where the thin SVD's singular vector is perturbed by ε·σ₁/gap(σ), so the Gram
//!   route's errors are larger by about κ_k / 2 with κ_k = σ₁/σ_k (the kept spectrum's condition
//!   number). It is therefore used only when κ_k ≤ ε^(-1/4) (54 in f32, 8192 in f64), so that
//!   its vectors are within a factor 27 (f32) of the thin SVD's, and min(m, n) ≥
//!   [`GRAM_MIN_SIDE`] (below it the thin SVD is cheap and its signs are LAPACK-like, which the
//!   GaLore replays rely on); otherwise the thin SVD runs. [`SvdRoute`] says which ran.
//! * The randomized range finder ([`randomized_svd`], Halko, Martinsson & Tropp 2011, Algorithm
//!   4.4; what `torch.svd_lowrank(G, q, niter)` computes): Q = orth(G Ω) for a Gaussian n×q test
//!   matrix Ω supplied by the caller (so its randomness is the program's counter-based draw),
//!   `niter` power iterations Q = orth(G orth(GᵀQ)), then the small SVD of QᵀG (q×n): U = Q U_B.
//!   Orthonormalization is CholQR2 (two Cholesky-QR passes; a shifted first pass when the Gram
//!   matrix of the block is numerically singular, Householder QR if even that fails), not
//!   Householder QR as in torch: the same subspace in a third of the time. Approximate: the
//!   captured energy ‖UᵀG‖²_F / Σ_{i<q} σ_i² approaches 1 as the spectrum decays and `niter`
//!   grows.

use super::eigh_top::top_eigen_in_place;
use super::{err, finite, from_faer, nan2, LinalgError, Real, SvdFactors};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self as tri, BlockStructure};
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{get_global_parallelism, Accum, Mat, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2};

/// Below this smaller side the exact truncated SVD is always the thin SVD.
pub const GRAM_MIN_SIDE: usize = 48;

/// Which algorithm computed an exact truncated SVD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvdRoute {
    /// The thin SVD (bidiagonalization), then truncation.
    Thin,
    /// The eigendecomposition of the Gram matrix, then U = G V / σ and CholQR2.
    Gram,
}

/// A faer view of an ndarray matrix: no copy when it is in standard (row-major) layout.
fn view<'a, T: Real>(a: &'a ArrayView2<'_, T>, keep: &'a mut Option<Array2<T>>) -> MatRef<'a, T> {
    let (m, n) = a.dim();
    if let Some(s) = a.as_slice() {
        return MatRef::from_row_major_slice(s, m, n);
    }
    let owned = keep.insert(a.as_standard_layout().into_owned());
    MatRef::from_row_major_slice(owned.as_slice().expect("standard layout"), m, n)
}

/// `a b` with faer's parallel kernels.
fn product<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Mat<T> {
    let mut out = Mat::<T>::zeros(a.nrows(), b.ncols());
    matmul(out.as_mut(), Accum::Replace, a, b, T::one(), get_global_parallelism());
    out
}

/// The lower triangle of `aᵀ a` (the strict upper part is left zero).
fn gram_lower<T: Real>(a: MatRef<'_, T>) -> Mat<T> {
    let n = a.ncols();
    let mut c = Mat::<T>::zeros(n, n);
    tri::matmul(
        c.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        a.transpose(),
        BlockStructure::Rectangular,
        a,
        BlockStructure::Rectangular,
        T::one(),
        get_global_parallelism(),
    );
    c
}

/// One Cholesky-QR pass: y ← y L⁻ᵀ with L Lᵀ = yᵀy + shift·I. False (y untouched) when the
/// Cholesky factorization fails.
fn cholqr_pass<T: Real>(y: &mut Mat<T>, shift: T) -> bool {
    let mut c = gram_lower(y.as_ref());
    for i in 0..c.ncols() {
        c[(i, i)] += shift;
    }
    let Ok(llt) = c.llt(Side::Lower) else { return false };
    let l = llt.L();
    if (0..l.nrows()).any(|i| !l[(i, i)].is_finite() || l[(i, i)] <= T::zero()) {
        return false;
    }
    solve_lower_triangular_in_place(l, y.as_mut().transpose_mut(), get_global_parallelism());
    true
}

/// Orthonormalizes the columns of a tall y (m×k, m ≥ k) in place: CholQR2 (Fukaya et al. 2014),
/// with a shifted first pass when yᵀy is numerically singular (shifted CholQR3, Fukaya et al.
/// 2020), and Householder QR when even that fails (a rank-deficient block).
pub(crate) fn cholqr2<T: Real>(y: &mut Mat<T>) {
    let (m, k) = (y.nrows(), y.ncols());
    if k == 0 {
        return;
    }
    let householder = |y: &mut Mat<T>| *y = y.qr().compute_thin_Q();
    let more = if cholqr_pass(y, T::zero()) {
        1
    } else {
        // The shift of Fukaya et al.: 11 (m k + k (k + 1)) ε ‖y‖₂², with ‖y‖_F² ≥ ‖y‖₂². A shifted
        // pass leaves y well conditioned but not orthonormal: two plain passes follow.
        let frob2 = (0..k).map(|j| y.col(j).squared_norm_l2()).fold(T::zero(), |s, x| s + x);
        let c = T::from(11.0 * (m * k + k * (k + 1)) as f64).expect("a small constant");
        if !cholqr_pass(y, c * T::epsilon() * frob2) {
            return householder(y);
        }
        2
    };
    for _ in 0..more {
        if !cholqr_pass(y, T::zero()) {
            return householder(y);
        }
    }
}

/// The exact top-`rank` SVD of `a` by the faster of the accurate routes (module doc), and the
/// route taken. Singular values descending; signs of the vectors are the algorithm's.
pub fn svd_top<T: Real>(a: ArrayView2<T>, rank: usize) -> Result<(SvdFactors<T>, SvdRoute), LinalgError> {
    let (m, n) = a.dim();
    if rank > m.min(n) {
        return err(format!("svd of rank {rank} of a {m}x{n} matrix (at most {})", m.min(n)));
    }
    if finite(a) && rank > 0 && m.min(n) >= GRAM_MIN_SIDE {
        let mut keep = None;
        let g = view(&a, &mut keep);
        // The Gram route works on the tall orientation: G = U S Vᵀ  <=>  Gᵀ = V S Uᵀ.
        let wide = m < n;
        let tall = if wide { g.transpose() } else { g };
        if let Some((u, s, v)) = gram_svd(tall, rank) {
            let (u, v) = if wide { (v, u) } else { (u, v) };
            let vt = Array2::from_shape_fn((rank, n), |(i, j)| v[(j, i)]);
            return Ok(((from_faer(u.as_ref()), s, vt), SvdRoute::Gram));
        }
    }
    Ok((super::thin_svd(a, rank)?, SvdRoute::Thin))
}

/// The Gram route on a tall matrix (module doc): (U m×k, σ, V n×k), or None when the kept
/// spectrum is too ill-conditioned for it.
fn gram_svd<T: Real>(g: MatRef<'_, T>, k: usize) -> Option<(Mat<T>, Array1<T>, Mat<T>)> {
    let c = gram_lower(g);
    // Only the top k eigenpairs of C (eigh_top.rs), eigenvalues descending.
    let (lambda, mut v) = top_eigen_in_place(c, k).ok()?;
    let (top, kth) = (lambda[0], lambda[k - 1]);
    let eps = T::epsilon();
    // (false for NaN, and for a zero or rank-deficient top-k)
    let accurate = top > T::zero() && kth > top * eps.sqrt();
    if !accurate {
        return None;
    }
    // The eigenvectors are orthonormal to about n ε; CholQR2 brings them to ε (V is GaLore's
    // projector for tall matrices), before U is computed from them.
    cholqr2(&mut v);
    let mut u = product(g, v.as_ref());
    let mut sigma: Vec<T> = (0..k).map(|j| u.col(j).norm_l2()).collect();
    for (j, &s) in sigma.iter().enumerate() {
        if s.is_nan() || s <= T::zero() {
            return None;
        }
        let inv = T::one() / s;
        for i in 0..u.nrows() {
            u[(i, j)] *= inv;
        }
    }
    cholqr2(&mut u);
    // Recomputed σ_j = ‖G v_j‖ can swap neighbours that are equal to rounding: keep them sorted.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| sigma[j].partial_cmp(&sigma[i]).unwrap_or(std::cmp::Ordering::Equal));
    if order.iter().enumerate().any(|(a, &b)| a != b) {
        let (u0, v0, s0) = (u.clone(), v.clone(), sigma.clone());
        u = Mat::from_fn(u0.nrows(), k, |i, j| u0[(i, order[j])]);
        let v = Mat::from_fn(v0.nrows(), k, |i, j| v0[(i, order[j])]);
        sigma = order.iter().map(|&i| s0[i]).collect();
        return Some((u, Array1::from(sigma), v));
    }
    Some((u, Array1::from(sigma), v))
}

/// The randomized truncated SVD of `a` (m×n) with the Gaussian test matrix `omega` (n×q, q ≤
/// min(m, n) the rank) and `niter` power iterations (module doc): (U m×q, S q, Vᵀ q×n).
pub fn randomized_svd<T: Real>(
    a: ArrayView2<T>,
    omega: ArrayView2<T>,
    niter: usize,
) -> Result<SvdFactors<T>, LinalgError> {
    let (m, n) = a.dim();
    let q = omega.ncols();
    if omega.nrows() != n {
        return err(format!("randomized svd of a {m}x{n} matrix with a {}x{q} test matrix", omega.nrows()));
    }
    if q > m.min(n) {
        return err(format!("randomized svd of rank {q} of a {m}x{n} matrix (at most {})", m.min(n)));
    }
    if !finite(a) || !finite(omega) {
        return Ok((nan2(m, q), Array1::from_elem(q, T::nan()), nan2(q, n)));
    }
    if q == 0 {
        return Ok((Array2::zeros((m, 0)), Array1::zeros(0), Array2::zeros((0, n))));
    }
    let (mut keep_a, mut keep_o) = (None, None);
    let g = view(&a, &mut keep_a);
    let om = view(&omega, &mut keep_o);
    let mut y = product(g, om);
    cholqr2(&mut y);
    for _ in 0..niter {
        let mut z = product(g.transpose(), y.as_ref());
        cholqr2(&mut z);
        y = product(g, z.as_ref());
        cholqr2(&mut y);
    }
    // B = Qᵀ G (q×n) and its thin SVD B = U_B S V_Bᵀ give G ≈ (Q U_B) S V_Bᵀ.
    let b = product(y.as_ref().transpose(), g);
    let s = b.thin_svd().map_err(|e| LinalgError(format!("svd failed: {e:?}")))?;
    let u = product(y.as_ref(), s.U());
    let (v, d) = (s.V(), s.S().column_vector());
    let vt = Array2::from_shape_fn((q, n), |(i, j)| v[(j, i)]);
    Ok((from_faer(u.as_ref()), Array1::from_shape_fn(q, |i| d[i]), vt))
}
