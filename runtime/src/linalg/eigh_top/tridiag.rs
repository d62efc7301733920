//! Blocked Householder reduction of a symmetric matrix to tridiagonal form, as LAPACK's sytrd
//! (lower) with latrd's panels: each panel of `NB` columns is reduced with matrix-vector products
//! against the not yet updated trailing matrix (corrected by the panel's earlier reflectors), and
//! the trailing matrix is then updated once per panel by a rank-2·NB product (faer's triangular
//! matmul, half the arithmetic at matrix-product speed). faer's own reduction is unblocked and
//! reads and writes the trailing matrix for every column; this one reads it once per column and
//! writes it once per panel. The symmetric matrix-vector product is split into two fixed column
//! ranges of equal work, summed in a fixed order, so the bits do not depend on the thread count;
//! its kernels run with AVX-512 where the machine has it (the same operations in the same order,
//! so the same bits).

use super::super::Real;
use super::simd::{axpy2, dot, dot_axpy1, dot_axpy4};
use faer::linalg::householder::{make_householder_in_place, upgrade_householder_factor};
use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};

/// Panel width.
const NB: usize = 32;

/// Trailing sizes from which the matrix-vector product runs as two halves on the worker pool.
const SPLIT_MIN: usize = 256;

/// Reduces the symmetric `a` (lower triangle read) in place to T = Qᵀ a Q, tridiagonal: on return
/// T's diagonal and sub-diagonal are a's, and Q = H₀ H₁ … H_{n-2} is stored as faer's
/// tridiagonalization stores it: the essential part of reflector j below a[j + 1, j], and the
/// block factors in `h` (bs × (n - 1)) for faer's blocked Householder application. `par` is the
/// parallelism of the rank-2·NB updates.
pub(super) fn tridiagonalize<T: Real>(a: &mut Mat<T>, h: &mut Mat<T>, par: Par) {
    let n = a.nrows();
    if n == 0 {
        return;
    }
    // faer's coefficients τ (H = I - v vᵀ / τ, v₀ = 1).
    let mut tau = vec![T::zero(); n - 1];
    let (mut v, mut w) = (Mat::<T>::zeros(n, NB), Mat::<T>::zeros(n, NB));
    let (mut y, mut y2) = (vec![T::zero(); n], Vec::new());
    let mut p = 0;
    while p < n {
        let q = (p + NB).min(n);
        for c in p..q {
            let i = c - p;
            update_column(a.col_as_slice_mut(c), &v, &w, c, i);
            if c + 1 == n {
                break;
            }
            let m = n - c - 1;
            // The reflector that zeroes a[c + 2.., c]; β (T's sub-diagonal) stays at a[c + 1, c].
            let info = {
                let col = a.as_mut().col_mut(c).subrows_mut(c + 1, m);
                let (mut head, tail) = col.split_at_row_mut(1);
                make_householder_in_place(&mut head[0], tail)
            };
            tau[c] = info.tau;
            // LAPACK's coefficient 1/τ: zero when there was nothing to annihilate (τ = ∞).
            let t = if info.tau.is_finite() { T::one() / info.tau } else { T::zero() };
            let vi = v.col_as_slice_mut(i);
            vi[c + 1] = T::one();
            vi[c + 2..].copy_from_slice(&a.col_as_slice(c)[c + 2..]);
            // w = t (A₂₂ - V Wᵀ - W Vᵀ) v, then w -= (t/2)(wᵀv) v, with A₂₂ = a[c+1.., c+1..].
            let y = &mut y[..m];
            symv(a.as_ref().submatrix(c + 1, c + 1, m, m), &v.col_as_slice(i)[c + 1..], y, &mut y2);
            correct(y, &v, &w, c + 1, i, t);
            w.col_as_slice_mut(i)[c + 1..].copy_from_slice(y);
        }
        if q < n {
            // a[q.., q..] -= V Wᵀ + W Vᵀ (lower triangle) as one product of inner dimension 2b.
            let (m, b) = (n - q, q - p);
            let (mut lhs, mut rhs) = (Mat::<T>::zeros(m, 2 * b), Mat::<T>::zeros(m, 2 * b));
            for l in 0..b {
                let (vl, wl) = (&v.col_as_slice(l)[q..], &w.col_as_slice(l)[q..]);
                lhs.col_as_slice_mut(l).copy_from_slice(vl);
                lhs.col_as_slice_mut(b + l).copy_from_slice(wl);
                rhs.col_as_slice_mut(l).copy_from_slice(wl);
                rhs.col_as_slice_mut(b + l).copy_from_slice(vl);
            }
            let (rect, lower) = (BlockStructure::Rectangular, BlockStructure::TriangularLower);
            let dst = a.as_mut().submatrix_mut(q, q, m, m);
            tri_matmul(dst, lower, Accum::Add, lhs.as_ref(), rect, rhs.as_ref().transpose(), rect, -T::one(), par);
        }
        p = q;
    }
    // The block factors of faer's compact WY form, block by block.
    let (m, bs) = (n - 1, h.nrows());
    let basis = a.as_ref().submatrix(1, 0, m, m);
    let mut j = 0;
    while j < m {
        let b = bs.min(m - j);
        let mut hb = h.as_mut().submatrix_mut(0, j, b, b);
        for l in 0..b {
            hb[(l, l)] = tau[j + l];
        }
        upgrade_householder_factor(hb, basis.submatrix(j, j, m - j, b), b, 1, Par::Seq);
        j += b;
    }
}

/// Column c of a (rows c..) after the updates of the panel's first i reflectors:
/// a[c.., c] -= V[c.., ..i] W[c, ..i]ᵀ + W[c.., ..i] V[c, ..i]ᵀ.
fn update_column<T: Real>(col: &mut [T], v: &Mat<T>, w: &Mat<T>, c: usize, i: usize) {
    for l in 0..i {
        let (wc, vc) = (w[(c, l)], v[(c, l)]);
        axpy2(&mut col[c..], &v.col_as_slice(l)[c..], wc, &w.col_as_slice(l)[c..], vc);
    }
}

/// y ← t (y - V (Wᵀ u) - W (Vᵀ u)), then y -= (t/2)(yᵀu) u, with u = V[r.., i] the current
/// reflector and the panel's first i columns of V and W (rows r..): latrd's w.
fn correct<T: Real>(y: &mut [T], v: &Mat<T>, w: &Mat<T>, r: usize, i: usize, t: T) {
    let u = &v.col_as_slice(i)[r..];
    for l in 0..i {
        let (vl, wl) = (&v.col_as_slice(l)[r..], &w.col_as_slice(l)[r..]);
        axpy2(y, vl, dot(wl, u), wl, dot(vl, u));
    }
    y.iter_mut().for_each(|e| *e *= t);
    let alpha = t * dot(y, u) / (T::one() + T::one());
    axpy2(y, u, alpha, u, T::zero());
}

/// y = A x for the symmetric m×m `a` (lower triangle read), m = x.len() = y.len(). From
/// `SPLIT_MIN` on, columns [0, s) and [s, m) (s chosen for equal work) are two tasks whose
/// partial products are added in that order, whatever the number of threads.
fn symv<T: Real>(a: MatRef<'_, T>, x: &[T], y: &mut [T], y2: &mut Vec<T>) {
    let m = x.len();
    y.fill(T::zero());
    if m < SPLIT_MIN {
        return symv_columns(a, x, y, m);
    }
    // Columns s.. hold (m - s)²/2 of the m²/2 entries: half for s = m (1 - 1/√2).
    let s = m - (m as f64 / std::f64::consts::SQRT_2) as usize;
    y2.clear();
    y2.resize(m - s, T::zero());
    let (a2, x2) = (a.submatrix(s, s, m - s, m - s), &x[s..]);
    rayon::join(|| symv_columns(a, x, y, s), || symv_columns(a2, x2, y2, m - s));
    for (e, &f) in y[s..].iter_mut().zip(y2.iter()) {
        *e += f;
    }
}

/// y += (the first `cols` columns of the symmetric `a`, lower triangle read) · x, four columns
/// at a time: each entry of a is read once, for a product (into y) and a dot (into y[j]).
fn symv_columns<T: Real>(a: MatRef<'_, T>, x: &[T], y: &mut [T], cols: usize) {
    let col = |j: usize| a.col(j).try_as_col_major().expect("contiguous columns").as_slice();
    let mut j = 0;
    while j + 4 <= cols {
        let c = [col(j), col(j + 1), col(j + 2), col(j + 3)];
        let xj = [x[j], x[j + 1], x[j + 2], x[j + 3]];
        let s = dot_axpy4(c.map(|c| &c[j + 4..]), &x[j + 4..], &mut y[j + 4..], xj);
        // The 4×4 diagonal block: y[j + r] += Σ_l A[j + r, j + l] x[j + l] (A[i, l] = A[l, i]).
        for r in 0..4 {
            let mut t = s[r];
            for l in 0..4 {
                let e = if r >= l { c[l][j + r] } else { c[r][j + l] };
                t += e * xj[l];
            }
            y[j + r] += t;
        }
        j += 4;
    }
    while j < cols {
        let c = col(j);
        let s = dot_axpy1(&c[j + 1..], &x[j + 1..], &mut y[j + 1..], x[j]);
        y[j] += s + c[j] * x[j];
        j += 1;
    }
}
