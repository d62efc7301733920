//! Each operation on small tensors, checked against naive loops or known values: elementwise
//! functions with broadcasting, reductions over axes with and without keepdims, matmul with its
//! 1-D and batch rules, and the structural ops (slice, concat, diag, triangle, reshape...).

use super::{arr, max_diff, ramp, G};
use crate::ir::{Binary, Op, Reduce, Unary};
use ndarray::{ArrayD, Axis, Dimension, IxDyn};

#[test]
fn binary_broadcasts() {
    let mut g = G::new();
    let (x, y) = (ramp(&[2, 1, 3]), ramp(&[4, 1]));
    let (a, b) = (g.input(x.clone()), g.input(y.clone()));
    let s = g.push(Op::Binary(Binary::Sub, a, b), &[2, 4, 3]);
    let got = g.eval(s).unwrap();
    let want = ArrayD::from_shape_fn(IxDyn(&[2, 4, 3]), |i| x[[i[0], 0, i[2]]] - y[[i[1], 0]]);
    assert_eq!(got, want);
    // A scalar against a tensor.
    let c = g.push(Op::Const(2.0), &[]);
    let m = g.push(Op::Binary(Binary::Mul, c, a), &[2, 1, 3]);
    assert_eq!(g.eval(m).unwrap(), x.mapv(|v| 2.0 * v));
}

#[test]
fn shapes_are_checked_at_run_time() {
    let mut g = G::new();
    let (a, b) = (g.input(ramp(&[2, 3])), g.input(ramp(&[4])));
    let s = g.push(Op::Binary(Binary::Add, a, b), &[2, 3]);
    let e = g.eval(s).unwrap_err();
    assert_eq!(e.node, s);
    assert!(e.message.contains("do not broadcast"), "{e}");
    // A declared shape that disagrees with the computed one is reported at that node.
    let c = g.push(Op::Binary(Binary::Add, a, a), &[3, 2]);
    let e = g.eval(c).unwrap_err();
    assert_eq!((e.node, e.to_string().starts_with(&format!("at %{c}: "))), (c, true));
}

#[test]
fn binary_values() {
    let nan = f64::NAN;
    let xs = [1.0, -2.0, 0.0, 3.0, nan, 2.0];
    let ys = [1.0, 3.0, -0.5, 2.0, 1.0, nan];
    let cases: Vec<(Binary, [f64; 6])> = vec![
        (Binary::Add, [2.0, 1.0, -0.5, 5.0, nan, nan]),
        (Binary::Div, [1.0, -2.0 / 3.0, -0.0, 1.5, nan, nan]),
        (Binary::Pow, [1.0, -8.0, f64::INFINITY, 9.0, nan, nan]),
        (Binary::Max, [1.0, 3.0, 0.0, 3.0, nan, nan]),
        (Binary::Min, [1.0, -2.0, -0.5, 2.0, nan, nan]),
        (Binary::Eq, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        (Binary::Ne, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        (Binary::Lt, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
        (Binary::Le, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
        (Binary::Gt, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
        (Binary::Ge, [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
        (Binary::And, [1.0, 1.0, 0.0, 1.0, 1.0, 1.0]),
        (Binary::Or, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ];
    for (op, want) in cases {
        let mut g = G::new();
        let (a, b) = (g.input(arr(&[6], &xs)), g.input(arr(&[6], &ys)));
        let r = g.push(Op::Binary(op, a, b), &[6]);
        let got = g.eval(r).unwrap();
        for (i, (&x, &w)) in got.iter().zip(&want).enumerate() {
            assert!(x == w || (x.is_nan() && w.is_nan()), "{op:?} element {i}: {x} != {w}");
        }
    }
    // Powers with small integer exponents are exact.
    let mut g = G::new();
    let (a, b) = (g.input(arr(&[3], &[3.0, 10.0, 1.5])), g.input(arr(&[3], &[2.0, 3.0, 2.0])));
    let p = g.push(Op::Binary(Binary::Pow, a, b), &[3]);
    assert_eq!(g.eval(p).unwrap(), arr(&[3], &[9.0, 1000.0, 2.25]));
    assert_eq!(g.eval_as::<f32>(p).unwrap(), arr(&[3], &[9.0, 1000.0, 2.25]));
}

#[test]
fn unary_values() {
    let nan = f64::NAN;
    let xs = [-2.5, -0.5, 0.0, 0.5, 2.5, nan];
    let cases: Vec<(Unary, [f64; 6])> = vec![
        (Unary::Neg, [2.5, 0.5, -0.0, -0.5, -2.5, nan]),
        (Unary::Abs, [2.5, 0.5, 0.0, 0.5, 2.5, nan]),
        (Unary::Sign, [-1.0, -1.0, 0.0, 1.0, 1.0, 0.0]),
        (Unary::Floor, [-3.0, -1.0, 0.0, 0.0, 2.0, nan]),
        (Unary::Ceil, [-2.0, -0.0, 0.0, 1.0, 3.0, nan]),
        (Unary::Round, [-3.0, -1.0, 0.0, 1.0, 3.0, nan]),
        (Unary::Not, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
        (Unary::Erf, [-0.999593047982555, -0.5204998778130465, 0.0, 0.5204998778130465, 0.999593047982555, nan]),
        (Unary::Exp, [(-2.5f64).exp(), (-0.5f64).exp(), 1.0, 0.5f64.exp(), 2.5f64.exp(), nan]),
        (Unary::Tanh, [(-2.5f64).tanh(), (-0.5f64).tanh(), 0.0, 0.5f64.tanh(), 2.5f64.tanh(), nan]),
        (Unary::Sin, [(-2.5f64).sin(), (-0.5f64).sin(), 0.0, 0.5f64.sin(), 2.5f64.sin(), nan]),
        (Unary::Cos, [(-2.5f64).cos(), (-0.5f64).cos(), 1.0, 0.5f64.cos(), 2.5f64.cos(), nan]),
        (Unary::Sqrt, [nan, nan, 0.0, 0.5f64.sqrt(), 2.5f64.sqrt(), nan]),
        (Unary::Log, [nan, nan, f64::NEG_INFINITY, 0.5f64.ln(), 2.5f64.ln(), nan]),
    ];
    for (op, want) in cases {
        let mut g = G::new();
        let a = g.input(arr(&[6], &xs));
        let r = g.push(Op::Unary(op, a), &[6]);
        for (dtype, got) in [("f64", g.eval(r).unwrap()), ("f32", g.eval_as::<f32>(r).unwrap())] {
            let tol = if dtype == "f32" { 1e-6 } else { 1e-15 };
            for (i, (&x, &w)) in got.iter().zip(&want).enumerate() {
                let ok = (x - w).abs() <= tol * w.abs().max(1.0) || (x.is_nan() && w.is_nan()) || x == w;
                assert!(ok, "{op:?} {dtype} element {i}: {x} != {w}");
            }
        }
    }
}

#[test]
fn select_elementwise_broadcasts() {
    let mut g = G::new();
    let c = g.input(arr(&[3, 1], &[1.0, 0.0, f64::NAN]));
    let a = g.input(ramp(&[4]));
    let b = g.push(Op::Fill(-7.0), &[3, 4]);
    let s = g.push(Op::Select(c, a, b), &[3, 4]);
    let got = g.eval(s).unwrap();
    let r = ramp(&[4]);
    // NaN is nonzero, so true.
    let want = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| if i[0] == 1 { -7.0 } else { r[[i[1]]] });
    assert_eq!(got, want);
}

/// A naive reduction: folds `f` over the elements of `x` whose index agrees with `out` off `axes`.
fn naive(x: &ArrayD<f64>, axes: &[usize], out: &[usize], f: impl Fn(&[f64]) -> f64) -> f64 {
    let lane: Vec<f64> = x
        .indexed_iter()
        .filter(|(i, _)| (0..x.ndim()).filter(|d| !axes.contains(d)).enumerate().all(|(k, d)| i[d] == out[k]))
        .map(|(_, &v)| v)
        .collect();
    f(&lane)
}

#[test]
fn reductions_over_axes() {
    let x = ramp(&[2, 3, 4]);
    let all: [&[usize]; 5] = [&[], &[0], &[1], &[0, 2], &[0, 1, 2]];
    type F = fn(&[f64]) -> f64;
    let fs: [(Reduce, F); 6] = [
        (Reduce::Sum, |l| l.iter().sum()),
        (Reduce::Mean, |l| l.iter().sum::<f64>() / l.len() as f64),
        (Reduce::Max, |l| l.iter().copied().fold(f64::MIN, f64::max)),
        (Reduce::Min, |l| l.iter().copied().fold(f64::MAX, f64::min)),
        (Reduce::Norm, |l| l.iter().map(|v| v * v).sum::<f64>().sqrt()),
        (Reduce::ArgMax, |l| l.iter().enumerate().fold(0, |b, (i, &v)| if v > l[b] { i } else { b }) as f64),
    ];
    for axes in all {
        let red: Vec<usize> = if axes.is_empty() { vec![0, 1, 2] } else { axes.to_vec() };
        for keepdims in [false, true] {
            for (op, f) in fs {
                let mut g = G::new();
                let a = g.input(x.clone());
                let kept: Vec<usize> = (0..3).filter(|d| !red.contains(d)).map(|d| x.shape()[d]).collect();
                let shape: Vec<usize> = if keepdims {
                    (0..3).map(|d| if red.contains(&d) { 1 } else { x.shape()[d] }).collect()
                } else {
                    kept.clone()
                };
                let r = g.push(Op::Reduce { op, arg: a, axes: axes.to_vec(), keepdims }, &shape);
                let got = g.eval(r).unwrap();
                assert_eq!(got.shape(), shape.as_slice());
                let got = got.into_shape_with_order(IxDyn(&kept)).unwrap();
                for (i, &v) in got.indexed_iter() {
                    let w = naive(&x, &red, i.slice(), f);
                    assert!((v - w).abs() < 1e-12, "{op:?} axes {axes:?} keepdims {keepdims} at {i:?}: {v} != {w}");
                }
            }
        }
    }
}

#[test]
fn reduction_edge_cases() {
    let nan = f64::NAN;
    let mut g = G::new();
    let a = g.input(arr(&[5], &[1.0, 3.0, 3.0, nan, 0.0]));
    let b = g.input(arr(&[4], &[1.0, 3.0, 3.0, 2.0]));
    let red = |g: &mut G, op, arg| g.push(Op::Reduce { op, arg, axes: vec![], keepdims: false }, &[]);
    let (am_nan, am, mx_nan) =
        (red(&mut g, Reduce::ArgMax, a), red(&mut g, Reduce::ArgMax, b), red(&mut g, Reduce::Max, a));
    assert_eq!(g.eval(am_nan).unwrap()[IxDyn(&[])], 3.0, "a NaN is the maximum");
    assert_eq!(g.eval(am).unwrap()[IxDyn(&[])], 1.0, "first of ties");
    assert!(g.eval(mx_nan).unwrap()[IxDyn(&[])].is_nan(), "max propagates NaN");
    // Reducing an empty axis: a sum is 0, a maximum is an error.
    let e = g.input(ArrayD::zeros(IxDyn(&[2, 0])));
    let s = g.push(Op::Reduce { op: Reduce::Sum, arg: e, axes: vec![1], keepdims: false }, &[2]);
    assert_eq!(g.eval(s).unwrap(), ArrayD::zeros(IxDyn(&[2])));
    let m = g.push(Op::Reduce { op: Reduce::Max, arg: e, axes: vec![1], keepdims: false }, &[2]);
    assert!(g.eval(m).is_err());
    let bad = g.push(Op::Reduce { op: Reduce::Sum, arg: e, axes: vec![2], keepdims: false }, &[2]);
    assert!(g.eval(bad).is_err(), "axis out of range");
}

/// Naive matmul of `a` [.., m, k] and `b` [.., k, n] with the same batch shape.
fn naive_matmul(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let (nd, k) = (a.ndim(), a.shape()[a.ndim() - 1]);
    let mut shape = a.shape()[..nd - 1].to_vec();
    shape.push(b.shape()[nd - 1]);
    ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        let mut s = 0.0;
        for t in 0..k {
            let (mut ia, mut ib) = (i.slice().to_vec(), i.slice().to_vec());
            ia[nd - 1] = t;
            ib[nd - 2] = t;
            s += a[IxDyn(&ia)] * b[IxDyn(&ib)];
        }
        s
    })
}

#[test]
fn matmul_shapes() {
    let v3 = ramp(&[3]);
    let m23 = ramp(&[2, 3]);
    let m34 = ramp(&[3, 4]);
    let mut g = G::new();
    let (a3, a23, a34) = (g.input(v3.clone()), g.input(m23.clone()), g.input(m34.clone()));
    let dot = g.push(Op::MatMul(a3, a3), &[]);
    assert_eq!(g.eval(dot).unwrap()[IxDyn(&[])], v3.iter().map(|x| x * x).sum::<f64>());
    let vm = g.push(Op::MatMul(a3, a34), &[4]);
    let want = naive_matmul(&v3.clone().insert_axis(Axis(0)), &m34).index_axis_move(Axis(0), 0);
    assert!(max_diff(&g.eval(vm).unwrap(), &want) < 1e-12);
    let mv = g.push(Op::MatMul(a23, a3), &[2]);
    let want = naive_matmul(&m23, &v3.clone().insert_axis(Axis(1))).index_axis_move(Axis(1), 0);
    assert!(max_diff(&g.eval(mv).unwrap(), &want) < 1e-12);
    let mm = g.push(Op::MatMul(a23, a34), &[2, 4]);
    assert!(max_diff(&g.eval(mm).unwrap(), &naive_matmul(&m23, &m34)) < 1e-12);
    // Batch axes broadcast: [5, 1, 2, 3] @ [4, 3, 2] -> [5, 4, 2, 2].
    let (x, y) = (ramp(&[5, 1, 2, 3]), ramp(&[4, 3, 2]));
    let (bx, by) = (g.input(x.clone()), g.input(y.clone()));
    let bm = g.push(Op::MatMul(bx, by), &[5, 4, 2, 2]);
    let xb = x.broadcast(IxDyn(&[5, 4, 2, 3])).unwrap().to_owned();
    let yb = y.broadcast(IxDyn(&[5, 4, 3, 2])).unwrap().to_owned();
    assert!(max_diff(&g.eval(bm).unwrap(), &naive_matmul(&xb, &yb)) < 1e-12);
    // A vector against a batch of matrices: [3] @ [4, 3, 2] -> [4, 2].
    let vb = g.push(Op::MatMul(a3, by), &[4, 2]);
    let want = naive_matmul(&v3.broadcast(IxDyn(&[4, 1, 3])).unwrap().to_owned(), &y).index_axis_move(Axis(1), 0);
    assert!(max_diff(&g.eval(vb).unwrap(), &want) < 1e-12);
    let bad = g.push(Op::MatMul(a23, a23), &[2, 3]);
    assert!(g.eval(bad).unwrap_err().message.contains("inner sizes"));
}

#[test]
fn slices() {
    let x = ramp(&[4, 5]);
    let mut g = G::new();
    let a = g.input(x.clone());
    // Rows 1 and 3, every column.
    let s = g.push(Op::Slice { arg: a, ranges: vec![(1, 2), (0, 1)], drop: vec![] }, &[2, 5]);
    let want = ArrayD::from_shape_fn(IxDyn(&[2, 5]), |i| x[[1 + 2 * i[0], i[1]]]);
    assert_eq!(g.eval(s).unwrap(), want);
    // x[2, 1::2]: the row axis is dropped.
    let d = g.push(Op::Slice { arg: a, ranges: vec![(2, 1), (1, 2)], drop: vec![0] }, &[2]);
    assert_eq!(g.eval(d).unwrap(), arr(&[2], &[x[[2, 1]], x[[2, 3]]]));
    // x[1, 4]: a scalar.
    let e = g.push(Op::Slice { arg: a, ranges: vec![(1, 1), (4, 1)], drop: vec![0, 1] }, &[]);
    assert_eq!(g.eval(e).unwrap()[IxDyn(&[])], x[[1, 4]]);
    // An empty slice starting at the end.
    let z = g.push(Op::Slice { arg: a, ranges: vec![(4, 1), (0, 1)], drop: vec![] }, &[0, 5]);
    assert_eq!(g.eval(z).unwrap().shape(), &[0, 5]);
    let past = g.push(Op::Slice { arg: a, ranges: vec![(1, 2), (0, 1)], drop: vec![] }, &[3, 5]);
    assert!(g.eval(past).is_err(), "rows 1, 3, 5 of 4");
}

#[test]
fn embed_is_the_adjoint_of_slice() {
    let x = ramp(&[4, 5]);
    let mut g = G::new();
    let a = g.input(x.clone());
    // Rows 1 and 3 of a [4, 5] from a [2, 5]; everything else zero.
    let r = g.input(ramp(&[2, 5]));
    let e = g.push(Op::Embed { arg: r, ranges: vec![(1, 2), (0, 1)], drop: vec![] }, &[4, 5]);
    let rv = ramp(&[2, 5]);
    let want = ArrayD::from_shape_fn(IxDyn(&[4, 5]), |i| if i[0] % 2 == 1 { rv[[i[0] / 2, i[1]]] } else { 0.0 });
    assert_eq!(g.eval(e).unwrap(), want);
    // <slice(x), y> = <x, embed(y)> for a strided slice with a dropped axis.
    let (ranges, drop) = (vec![(2, 1), (1, 2)], vec![0]);
    let s = g.push(Op::Slice { arg: a, ranges: ranges.clone(), drop: drop.clone() }, &[2]);
    let y = arr(&[2], &[0.5, -2.0]);
    let yn = g.input(y.clone());
    let back = g.push(Op::Embed { arg: yn, ranges, drop }, &[4, 5]);
    let lhs: f64 = g.eval(s).unwrap().iter().zip(y.iter()).map(|(p, q)| p * q).sum();
    let rhs: f64 = g.eval(back).unwrap().iter().zip(x.iter()).map(|(p, q)| p * q).sum();
    assert_eq!(lhs, rhs);
    // A scalar into one position, and a window running past the end.
    let one = g.push(Op::Const(7.0), &[]);
    let at = g.push(Op::Embed { arg: one, ranges: vec![(1, 1), (4, 1)], drop: vec![0, 1] }, &[4, 5]);
    let v = g.eval(at).unwrap();
    assert_eq!((v[[1, 4]], v.sum()), (7.0, 7.0));
    let past = g.push(Op::Embed { arg: r, ranges: vec![(2, 2), (0, 1)], drop: vec![] }, &[4, 5]);
    assert!(g.eval(past).is_err(), "rows 2, 4 of 4");
}

#[test]
fn structural_ops() {
    let x = ramp(&[2, 3]);
    let mut g = G::new();
    let a = g.input(x.clone());
    let b = g.input(ramp(&[2, 1]));
    let c = g.push(Op::Concat { args: vec![a, b, a], axis: 1 }, &[2, 7]);
    let got = g.eval(c).unwrap();
    assert_eq!(got.slice(ndarray::s![.., 3..4]).into_dyn(), ramp(&[2, 1]));
    assert_eq!(got.slice(ndarray::s![.., 4..]).into_dyn(), x);
    let bad = g.push(Op::Concat { args: vec![a, b], axis: 0 }, &[3, 3]);
    assert!(g.eval(bad).is_err());
    let t = g.push(Op::Transpose(a), &[3, 2]);
    assert_eq!(g.eval(t).unwrap(), x.t().to_owned());
    let r = g.push(Op::Reshape(t), &[6]);
    assert_eq!(g.eval(r).unwrap(), arr(&[6], &x.t().iter().copied().collect::<Vec<_>>()), "row-major order");
    let bad = g.push(Op::Reshape(a), &[4]);
    assert!(g.eval(bad).unwrap_err().message.contains("reshape"));
    let e = g.push(Op::Expand(b), &[4, 2, 3]);
    assert_eq!(g.eval(e).unwrap(), ramp(&[2, 1]).broadcast(IxDyn(&[4, 2, 3])).unwrap().to_owned());
    let dv = g.push(Op::Diag(a), &[2]);
    assert_eq!(g.eval(dv).unwrap(), arr(&[2], &[x[[0, 0]], x[[1, 1]]]));
    let v = g.input(arr(&[3], &[1.0, 2.0, 3.0]));
    let dm = g.push(Op::Diag(v), &[3, 3]);
    assert_eq!(g.eval(dm).unwrap(), arr(&[3, 3], &[1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0]));
    let y = ramp(&[3, 4]);
    let w = g.input(y.clone());
    let (up, lo) = (g.push(Op::Triangle(w, true), &[3, 4]), g.push(Op::Triangle(w, false), &[3, 4]));
    let tri = |keep: fn(usize, usize) -> bool| {
        ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| if keep(i[0], i[1]) { y[[i[0], i[1]]] } else { 0.0 })
    };
    assert_eq!(g.eval(up).unwrap(), tri(|i, j| j >= i));
    assert_eq!(g.eval(lo).unwrap(), tri(|i, j| j <= i));
    let fill = g.push(Op::Fill(1.5), &[2, 2]);
    assert_eq!(g.eval(fill).unwrap(), ArrayD::from_elem(IxDyn(&[2, 2]), 1.5));
}
