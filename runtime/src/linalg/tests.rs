//! Invariant tests for the linear algebra: each factorization is checked by what it must satisfy
//! (orthonormal factors, reconstruction, ordering, triangularity) on seeded random matrices, in
//! f64 and f32 with tolerances scaled to the type's precision.

use super::*;
use ndarray::{Array1, Array2, Axis};

/// A small deterministic generator (SplitMix64) so the tests need no extra dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn mat<T: Real>(&mut self, m: usize, n: usize) -> Array2<T> {
        Array2::from_shape_fn((m, n), |_| T::from(self.next()).unwrap())
    }
}

/// The largest absolute difference between two matrices, in f64.
fn diff<T: Real>(a: &Array2<T>, b: &Array2<T>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b.iter()).map(|(x, y)| (x.to_f64().unwrap() - y.to_f64().unwrap()).abs()).fold(0.0, f64::max)
}

fn eye<T: Real>(n: usize) -> Array2<T> {
    Array2::from_shape_fn((n, n), |(i, j)| if i == j { T::one() } else { T::zero() })
}

/// Tolerance for a type: loose multiples of its machine epsilon.
fn tol<T: Real>() -> f64 {
    T::epsilon().to_f64().unwrap() * 200.0
}

fn check_svd<T: Real + ndarray::LinalgScalar>(g: &mut Gen, m: usize, n: usize) {
    let a: Array2<T> = g.mat(m, n);
    let k = m.min(n);
    let (u, s, vt) = svd(a.view(), k).unwrap();
    assert_eq!((u.dim(), s.len(), vt.dim()), ((m, k), k, (k, n)));
    assert!(diff(&u.t().dot(&u), &eye(k)) < tol::<T>(), "U^T U = I");
    assert!(diff(&vt.dot(&vt.t()), &eye(k)) < tol::<T>(), "V^T V = I");
    let us = &u * &s.view().insert_axis(Axis(0));
    assert!(diff(&us.dot(&vt), &a) < tol::<T>(), "U S V^T = A");
    assert!(s.iter().all(|&x| x >= T::zero()));
    assert!(s.windows(2).into_iter().all(|w| w[0] >= w[1]), "descending");
    // Truncation keeps the leading triplets.
    let (u2, s2, vt2) = svd(a.view(), 1).unwrap();
    assert_eq!((u2.dim(), s2.len(), vt2.dim()), ((m, 1), 1, (1, n)));
    assert!((s2[0] - s[0]).abs().to_f64().unwrap() < tol::<T>());
}

#[test]
fn svd_invariants() {
    let mut g = Gen(1);
    for (m, n) in [(5, 3), (3, 5), (4, 4), (1, 6), (40, 17)] {
        check_svd::<f64>(&mut g, m, n);
        check_svd::<f32>(&mut g, m, n);
    }
    assert!(svd(Array2::<f64>::zeros((3, 2)).view(), 3).is_err(), "rank above min(m, n)");
}

fn check_qr<T: Real + ndarray::LinalgScalar>(g: &mut Gen, m: usize, n: usize) {
    let a: Array2<T> = g.mat(m, n);
    let k = m.min(n);
    let (q, r) = qr(a.view());
    assert_eq!((q.dim(), r.dim()), ((m, k), (k, n)));
    assert!(diff(&q.t().dot(&q), &eye(k)) < tol::<T>());
    assert!(diff(&q.dot(&r), &a) < tol::<T>());
    assert!(r.indexed_iter().all(|((i, j), &x)| j >= i || x == T::zero()), "R upper");
}

#[test]
fn qr_invariants() {
    let mut g = Gen(2);
    for (m, n) in [(6, 3), (3, 6), (5, 5), (30, 7)] {
        check_qr::<f64>(&mut g, m, n);
        check_qr::<f32>(&mut g, m, n);
    }
}

fn check_eigh<T: Real + ndarray::LinalgScalar>(g: &mut Gen, n: usize) {
    let b: Array2<T> = g.mat(n, n);
    let a = &b + &b.t();
    // Garbage above the diagonal must be ignored: only the lower triangle is read.
    let mut lower = a.clone();
    for i in 0..n {
        for j in i + 1..n {
            lower[[i, j]] = T::from(99.0).unwrap();
        }
    }
    let (w, v) = eigh(lower.view()).unwrap();
    assert!(w.windows(2).into_iter().all(|p| p[0] <= p[1]), "ascending");
    assert!(diff(&v.t().dot(&v), &eye(n)) < tol::<T>());
    let vw = &v * &w.view().insert_axis(Axis(0));
    assert!(diff(&a.dot(&v), &vw) < tol::<T>() * 4.0, "A V = V diag(w)");
}

#[test]
fn eigh_invariants() {
    let mut g = Gen(3);
    for n in [1, 2, 5, 24] {
        check_eigh::<f64>(&mut g, n);
        check_eigh::<f32>(&mut g, n);
    }
    assert!(eigh(Array2::<f64>::zeros((2, 3)).view()).is_err());
}

fn check_solve_chol<T: Real + ndarray::LinalgScalar>(g: &mut Gen, n: usize) {
    let b: Array2<T> = g.mat(n, n);
    // B B^T + n I is symmetric positive definite and well conditioned.
    let a = b.dot(&b.t()) + &eye::<T>(n).mapv(|x| x * T::from(n as f64).unwrap());
    let rhs: Array2<T> = g.mat(n, 2);
    let x = solve(a.view(), rhs.view()).unwrap();
    assert!(diff(&a.dot(&x), &rhs) < tol::<T>() * n as f64);
    let l = cholesky(a.view()).unwrap();
    assert!(l.indexed_iter().all(|((i, j), &x)| j <= i || x == T::zero()), "L lower");
    assert!(diff(&l.dot(&l.t()), &a) < tol::<T>() * n as f64);
}

#[test]
fn solve_and_cholesky() {
    let mut g = Gen(4);
    for n in [1, 3, 16] {
        check_solve_chol::<f64>(&mut g, n);
        check_solve_chol::<f32>(&mut g, n);
    }
}

#[test]
fn failures_are_errors() {
    let singular = Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 4.0]).unwrap();
    let zero = Array2::<f64>::zeros((2, 2));
    let b = Array2::<f64>::ones((2, 1));
    assert!(solve(zero.view(), b.view()).unwrap_err().0.contains("singular"));
    assert!(solve(singular.view(), b.view()).is_err(), "an exactly zero pivot");
    assert!(solve(zero.view(), Array2::<f64>::ones((3, 1)).view()).is_err());
    assert!(cholesky(singular.view()).unwrap_err().0.contains("positive definite"));
    let neg = Array2::from_shape_vec((2, 2), vec![-1.0f32, 0.0, 0.0, 1.0]).unwrap();
    assert!(cholesky(neg.view()).is_err());
    assert!(matmul(zero.view(), Array2::<f64>::ones((3, 1)).view()).is_err());
}

#[test]
fn non_finite_input_gives_nan() {
    let mut a = Array2::<f64>::eye(3);
    a[[1, 2]] = f64::NAN;
    let (u, s, vt) = svd(a.view(), 2).unwrap();
    assert!(u.iter().chain(s.iter()).chain(vt.iter()).all(|x| x.is_nan()));
    assert_eq!((u.dim(), vt.dim()), ((3, 2), (2, 3)));
    assert!(cholesky(a.view()).unwrap().iter().all(|x| x.is_nan()));
    assert!(solve(a.view(), Array2::ones((3, 1)).view()).unwrap().iter().all(|x| x.is_nan()));
}

#[test]
fn matmul_matches_dot() {
    let mut g = Gen(5);
    let (a, b): (Array2<f64>, Array2<f64>) = (g.mat(7, 5), g.mat(5, 3));
    assert!(diff(&matmul(a.view(), b.view()).unwrap(), &a.dot(&b)) < 1e-13);
    let (a, b): (Array2<f32>, Array2<f32>) = (g.mat(4, 0), g.mat(0, 2));
    assert_eq!(matmul(a.view(), b.view()).unwrap(), Array2::zeros((4, 2)));
}

/// Q diag(w) Qᵀ for a random orthogonal Q (from the QR of a random matrix).
fn with_spectrum<T: Real + ndarray::LinalgScalar>(g: &mut Gen, w: &[f64]) -> Array2<T> {
    let n = w.len();
    let q = qr(g.mat::<f64>(n, n).view()).0;
    let qw = &q * &Array1::from(w.to_vec()).view().insert_axis(Axis(0));
    qw.dot(&q.t()).mapv(|x| T::from(x).unwrap())
}

/// Spectra that stress the tridiagonal stage: repeated eigenvalues, clusters closer than the
/// precision, a zero matrix, and eigenvalues of both signs.
fn spectra(n: usize) -> Vec<Vec<f64>> {
    let mut out = vec![
        (0..n).map(|i| (i % 3) as f64).collect(),
        (0..n).map(|i| 1.0 + if i % 2 == 0 { 1e-9 * i as f64 } else { 0.5 }).collect(),
        (0..n).map(|i| if i < n / 2 { -1.0 } else { 2.0 + 1e-12 * i as f64 }).collect(),
        (0..n).map(|i| (i as f64 / 4.0).floor() * 0.25).collect(),
        vec![0.0; n],
        vec![1.0; n],
    ];
    out.push((0..n).map(|i| 1.0 - 2.0 * (i as f64 / n as f64).powi(3)).collect());
    out
}

/// eigh_top against the full eigh of the same matrix in f64: eigenvalues, residual and
/// orthonormality at rounding level (c n ε ‖A‖), and the top-k subspace wherever a gap separates
/// it from the rest (sin θ ≤ residual / gap, Davis–Kahan).
fn check_eigh_top<T: Real + ndarray::LinalgScalar>(a: &Array2<T>, k: usize) {
    let n = a.nrows();
    let (w, v) = eigh_top(a.view(), k).unwrap();
    assert_eq!((w.len(), v.dim()), (k, (n, k)));
    let a64 = a.mapv(|x| x.to_f64().unwrap());
    let (w_ref, v_ref) = eigh(a64.view()).unwrap();
    let norm = a64.iter().fold(0.0f64, |m, x| m.max(x.abs())) * n as f64;
    let eps = T::epsilon().to_f64().unwrap();
    let tol = 8.0 * n.max(8) as f64 * eps * norm.max(f64::MIN_POSITIVE);
    let (w64, v64) = (w.mapv(|x| x.to_f64().unwrap()), v.mapv(|x| x.to_f64().unwrap()));
    for j in 0..k {
        assert!((w64[j] - w_ref[n - 1 - j]).abs() <= tol, "n {n} k {k} value {j}: {} vs {}", w64[j], w_ref[n - 1 - j]);
    }
    assert!(w64.windows(2).into_iter().all(|p| p[0] >= p[1]), "descending");
    let orth = diff(&v64.t().dot(&v64), &eye(k));
    assert!(orth <= 8.0 * n.max(8) as f64 * eps, "n {n} k {k}: orthonormality {orth:e}");
    let resid = diff(&a64.dot(&v64), &(&v64 * &w64.view().insert_axis(Axis(0))));
    assert!(resid <= tol, "n {n} k {k}: residual {resid:e} > {tol:e}");
    if k < n {
        let gap = w_ref[n - k] - w_ref[n - k - 1];
        if gap > 0.0 {
            let rest = v_ref.slice(ndarray::s![.., ..n - k]);
            let leak = rest.t().dot(&v64).iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(leak <= 2.0 * (tol / gap + 1e-14 * norm / gap), "n {n} k {k}: subspace leak {leak:e}, gap {gap:e}");
        }
    }
}

#[test]
fn eigh_top_agrees_with_eigh() {
    let mut g = Gen(6);
    for n in [1, 2, 3, 5, 17, 64, 150] {
        let ks: Vec<usize> = [1, n / 3, n - 1, n].into_iter().filter(|&k| k >= 1).collect();
        let b: Array2<f64> = g.mat(n, n);
        let mut mats = vec![&b + &b.t(), b.t().dot(&b)];
        for w in spectra(n) {
            mats.push(with_spectrum(&mut g, &w));
        }
        // Already tridiagonal and already diagonal (with repeats).
        mats.push(Array2::from_shape_fn((n, n), |(i, j)| if i == j { (i % 4) as f64 } else { 0.0 }));
        mats.push(Array2::from_shape_fn((n, n), |(i, j)| if i.abs_diff(j) == 1 { 1.0 } else { 0.0 }));
        for a in &mats {
            for &k in &ks {
                check_eigh_top(a, k);
                check_eigh_top(&a.mapv(|x| x as f32), k);
            }
        }
    }
}

#[test]
fn eigh_top_edge_cases() {
    let z = Array2::<f64>::zeros((0, 0));
    let (w, v) = eigh_top(z.view(), 0).unwrap();
    assert_eq!((w.len(), v.dim()), (0, (0, 0)));
    let mut a = Array2::<f32>::eye(4);
    assert!(eigh_top(a.view(), 5).is_err(), "k above n");
    assert!(eigh_top(Array2::<f64>::zeros((2, 3)).view(), 1).is_err(), "not square");
    let (w, v) = eigh_top(a.view(), 0).unwrap();
    assert_eq!((w.len(), v.dim()), (0, (4, 0)));
    a[[2, 1]] = f32::NAN;
    let (w, v) = eigh_top(a.view(), 2).unwrap();
    assert!(w.iter().chain(v.iter()).all(|x| x.is_nan()) && v.dim() == (4, 2), "NaN in, NaN out");
    assert!(eigh_top::top_eigen_in_place(to_faer(a.view()), 2).is_err(), "the faer-level call errs");
    a[[2, 1]] = f32::INFINITY;
    assert!(eigh_top::top_eigen_in_place(to_faer(a.view()), 2).is_err());
    // Only the lower triangle is read.
    let mut b = Array2::<f64>::from_shape_fn((6, 6), |(i, j)| (i + j) as f64);
    let want = eigh_top(b.view(), 3).unwrap();
    for i in 0..6 {
        for j in i + 1..6 {
            b[[i, j]] = 1e30;
        }
    }
    assert_eq!(eigh_top(b.view(), 3).unwrap(), want);
}

/// The same bits on one thread and on two, in both precisions, above and below the sizes at
/// which the reduction and the tridiagonal stage split their work.
#[test]
fn eigh_top_does_not_depend_on_the_thread_count() {
    let mut g = Gen(7);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for (n, k) in [(40, 7), (300, 64), (700, 96), (1024, 128)] {
        let b: Array2<f64> = g.mat(n + 20, n);
        let c = b.t().dot(&b);
        let c32 = c.mapv(|x| x as f32);
        let run64 = || eigh_top(c.view(), k).unwrap();
        let run32 = || eigh_top(c32.view(), k).unwrap();
        assert_eq!(one.install(run64), two.install(run64), "f64 n {n}");
        assert_eq!(one.install(run32), two.install(run32), "f32 n {n}");
    }
}

/// The fallback when inverse iteration does not converge (the full eigendecomposition of the
/// tridiagonal matrix, then the same back-transform) meets the same bounds.
#[test]
fn eigh_top_fallback_agrees_with_eigh() {
    let mut g = Gen(8);
    eigh_top::FORCE_FULL.with(|f| f.set(true));
    for n in [1, 2, 9, 40, 120] {
        let b: Array2<f64> = g.mat(n, n);
        for a in [&b + &b.t(), with_spectrum(&mut g, &spectra(n)[3])] {
            for k in [1, n / 2 + 1, n] {
                check_eigh_top(&a, k);
                check_eigh_top(&a.mapv(|x| x as f32), k);
            }
        }
    }
    eigh_top::FORCE_FULL.with(|f| f.set(false));
}
