//! Linear algebra through the IR: each primitive's results read with `Output` nodes and checked by
//! invariants (orthonormal factors, reconstruction, ordering) in f64 and f32, plus failures
//! reported at the linear-algebra node.

use super::{ramp, G};
use crate::interp::Scalar;
use crate::ir::{Linalg, Op};
use ndarray::{Array2, ArrayD, Axis, Ix1, Ix2, IxDyn};

/// A fixed pseudo-random matrix (sines of a ramp: well spread, full rank in practice).
fn matrix(m: usize, n: usize, salt: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[m, n]), |i| ((i[0] * n + i[1]) as f64 * 1.7 + salt).sin())
}

fn m2(x: ArrayD<f64>) -> Array2<f64> {
    x.into_dimensionality::<Ix2>().unwrap()
}

fn eye(n: usize) -> Array2<f64> {
    Array2::eye(n)
}

fn close(a: &Array2<f64>, b: &Array2<f64>, tol: f64) -> bool {
    a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= tol)
}

/// Runs `kind` on `args` in type `T` and returns its `n` results.
fn run<T: Scalar>(kind: Linalg, args: Vec<ArrayD<f64>>, shapes: &[&[usize]]) -> Vec<ArrayD<f64>> {
    let mut g = G::new();
    let ids = args.into_iter().map(|a| g.input(a)).collect();
    let l = g.push(Op::Linalg(kind, ids), &[]);
    let outs: Vec<usize> = shapes.iter().enumerate().map(|(k, s)| g.push(Op::Output(l, k), s)).collect();
    outs.into_iter().map(|o| g.eval_as::<T>(o).unwrap()).collect()
}

fn check<T: Scalar>(tol: f64) {
    let (m, n) = (6, 4);
    let a = matrix(m, n, 0.3);
    let am = m2(a.clone());
    // SVD truncated to rank 3: orthonormal factors, descending values, and the leading triplets of
    // the full SVD (which reconstructs A).
    let r = run::<T>(Linalg::Svd { rank: 4 }, vec![a.clone()], &[&[6, 4], &[4], &[4, 4]]);
    let (u, s, vt) = (m2(r[0].clone()), r[1].clone().into_dimensionality::<Ix1>().unwrap(), m2(r[2].clone()));
    assert!(close(&u.t().dot(&u), &eye(4), tol) && close(&vt.dot(&vt.t()), &eye(4), tol));
    assert!(close(&(&u * &s.view().insert_axis(Axis(0))).dot(&vt), &am, tol), "U S V^T = A");
    assert!(s.windows(2).into_iter().all(|w| w[0] >= w[1]));
    let r3 = run::<T>(Linalg::Svd { rank: 3 }, vec![a.clone()], &[&[6, 3], &[3], &[3, 4]]);
    assert!(r3[1].iter().zip(s.iter()).all(|(x, y)| (x - y).abs() <= tol));
    // QR of a wide matrix.
    let w = matrix(3, 5, 1.1);
    let r = run::<T>(Linalg::Qr, vec![w.clone()], &[&[3, 3], &[3, 5]]);
    let (q, rr) = (m2(r[0].clone()), m2(r[1].clone()));
    assert!(close(&q.t().dot(&q), &eye(3), tol) && close(&q.dot(&rr), &m2(w), tol));
    // Eigh of A^T A (4x4, symmetric positive definite).
    let spd = am.t().dot(&am) + eye(4);
    let r = run::<T>(Linalg::Eigh, vec![spd.clone().into_dyn()], &[&[4], &[4, 4]]);
    let (ev, v) = (r[0].clone().into_dimensionality::<Ix1>().unwrap(), m2(r[1].clone()));
    assert!(ev.windows(2).into_iter().all(|w| w[0] <= w[1]), "ascending");
    assert!(close(&spd.dot(&v), &(&v * &ev.view().insert_axis(Axis(0))), tol * 10.0), "A V = V diag(w)");
    // Cholesky and solve, with a vector and a matrix right-hand side.
    let l = m2(run::<T>(Linalg::Cholesky, vec![spd.clone().into_dyn()], &[&[4, 4]]).remove(0));
    assert!(close(&l.dot(&l.t()), &spd, tol * 10.0) && l[[0, 1]] == 0.0);
    let b = ramp(&[4]);
    let x = run::<T>(Linalg::Solve, vec![spd.clone().into_dyn(), b.clone()], &[&[4]]).remove(0);
    let ax = spd.dot(&x.into_dimensionality::<Ix1>().unwrap());
    assert!(ax.iter().zip(b.iter()).all(|(p, q)| (p - q).abs() <= tol * 10.0));
    let bm = matrix(4, 2, 2.0);
    let x = m2(run::<T>(Linalg::Solve, vec![spd.clone().into_dyn(), bm.clone()], &[&[4, 2]]).remove(0));
    assert!(close(&spd.dot(&x), &m2(bm), tol * 10.0));
}

#[test]
fn invariants_f64() {
    check::<f64>(1e-12);
}

#[test]
fn invariants_f32() {
    check::<f32>(2e-5);
}

#[test]
fn single_results_and_failures() {
    let mut g = G::new();
    let a = g.input(ArrayD::from_elem(IxDyn(&[2, 2]), 1.0));
    // A single-result node is usable directly.
    let i = g.input(Array2::<f64>::eye(2).into_dyn().mapv(|x| 4.0 * x));
    let l = g.push(Op::Linalg(Linalg::Cholesky, vec![i]), &[2, 2]);
    let twice = g.push(Op::Binary(crate::ir::Binary::Add, l, l), &[2, 2]);
    assert_eq!(g.eval(twice).unwrap(), Array2::<f64>::eye(2).into_dyn().mapv(|x| 4.0 * x));
    // Failures are errors at the linear-algebra node.
    let c = g.push(Op::Linalg(Linalg::Cholesky, vec![a]), &[2, 2]);
    let out = g.push(Op::Output(c, 0), &[2, 2]);
    assert_eq!(g.eval(out).unwrap_err().node, c);
    let s = g.push(Op::Linalg(Linalg::Solve, vec![a, a]), &[2, 2]);
    let e = g.eval(s).unwrap_err();
    assert!(e.node == s && e.message.contains("singular"), "{e}");
    let v = g.input(ramp(&[3]));
    let bad = g.push(Op::Linalg(Linalg::Qr, vec![v]), &[]);
    let o = g.push(Op::Output(bad, 0), &[3, 1]);
    assert!(g.eval(o).unwrap_err().message.contains("needs a matrix"));
    // A multi-result node is not a tensor.
    let svd = g.push(Op::Linalg(Linalg::Svd { rank: 1 }, vec![a]), &[]);
    let neg = g.push(Op::Unary(crate::ir::Unary::Neg, svd), &[]);
    assert!(g.eval(neg).is_err());
}
