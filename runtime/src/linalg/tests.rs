//! Invariant tests for the linear algebra: each factorization is checked by what it must satisfy
//! (orthonormal factors, reconstruction, ordering, triangularity) on seeded random matrices, in
//! f64 and f32 with tolerances scaled to the type's precision.

use super::*;
use ndarray::{Array2, Axis};

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
