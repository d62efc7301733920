//! Running graphs: lazy evaluation of a scalar `Select`, state across steps, group reductions
//! across parameters of different shapes, error reporting, deep graphs, and agreement of f32 and
//! f64 runs of an Adam graph.

use super::{arr, ramp, G};
use crate::interp::{eval_nodes, eval_nodes_owned, eval_once, Interp};
use crate::ir::{Binary, Dist, Graph, Linalg, Op, Reduce, Slot, Unary};
use ndarray::{ArrayD, IxDyn};

/// A graph whose taken branch is cheap and whose other branch would fail at run time (a reshape
/// of 6 elements to 4, or a solve with a zero matrix, as `which` says); `cond` picks between them.
/// Returns the graph, the select and the failing node.
fn guarded(cond: f64, which: &str) -> (G, usize, usize) {
    let mut g = G::new();
    let x = g.input(ramp(&[2, 3]));
    let c = g.push(Op::Const(cond), &[]);
    let ok = g.push(Op::Fill(5.0), &[4]);
    let bad = if which == "reshape" {
        g.push(Op::Reshape(x), &[4])
    } else {
        let z = g.push(Op::Fill(0.0), &[4, 4]);
        g.push(Op::Linalg(Linalg::Solve, vec![z, ok]), &[4])
    };
    let worse = g.push(Op::Binary(Binary::Add, ok, bad), &[4]);
    let s = g.push(Op::Select(c, ok, worse), &[4]);
    (g, s, bad)
}

#[test]
fn scalar_select_runs_only_the_taken_branch() {
    for which in ["reshape", "singular"] {
        let (mut g, s, _) = guarded(1.0, which);
        assert_eq!(g.eval(s).unwrap(), ArrayD::from_elem(IxDyn(&[4]), 5.0));
        // A NaN condition is nonzero, hence true.
        let (mut g, s, _) = guarded(f64::NAN, which);
        assert!(g.eval(s).is_ok());
        // The same graph with the condition false does reach the failing node.
        let (mut g, s, bad) = guarded(0.0, which);
        let e = g.eval(s).unwrap_err();
        assert!(e.node == bad && e.message.contains(which), "{e}");
    }
}

/// `m = 0.9 m + g`, returning m, over a parameter of shape [3].
fn momentum() -> Graph {
    let mut g = Graph { inputs: vec![vec![3]], ..Graph::default() };
    g.slots.push(Slot { name: "m".into(), shape: vec![3] });
    let grad = g.push(Op::Input(0), vec![3]);
    let m = g.push(Op::State(0), vec![3]);
    let c = g.push(Op::Const(0.9), vec![]);
    let t = g.push(Op::Binary(Binary::Mul, c, m), vec![3]);
    let m2 = g.push(Op::Binary(Binary::Add, t, grad), vec![3]);
    g.state_writes.push((0, m2));
    g.output = m2;
    g
}

#[test]
fn state_carries_across_steps() {
    let mut it = Interp::<f64>::new(vec![momentum()], 0);
    assert!(it.state(0, 0).is_none(), "unwritten before the first step");
    let grad = arr(&[3], &[1.0, 2.0, 3.0]);
    let p = ArrayD::zeros(IxDyn(&[3]));
    let mut want = 0.0;
    for step in 1..=3 {
        want = 0.9 * want + 1.0;
        let d = it.step(step, std::slice::from_ref(&p), &[vec![grad.clone()]]).unwrap();
        assert!((&d[0] - &grad.mapv(|g| g * want)).iter().all(|x| x.abs() < 1e-12));
        assert_eq!(it.state(0, 0).unwrap(), &d[0]);
    }
    assert!((want - 2.71f64).abs() < 1e-12);
    assert!(it.state(0, 1).is_none() && it.state(1, 0).is_none());
}

#[test]
fn a_failed_step_keeps_the_state() {
    let mut it = Interp::<f64>::new(vec![momentum()], 0);
    let p = ArrayD::zeros(IxDyn(&[3]));
    it.step(1, std::slice::from_ref(&p), &[vec![arr(&[3], &[1.0, 1.0, 1.0])]]).unwrap();
    let before = it.state(0, 0).unwrap().clone();
    let e = it.step(2, std::slice::from_ref(&p), &[vec![ramp(&[4])]]).unwrap_err();
    assert_eq!(e.node, 0, "the gradient has the wrong shape: {e}");
    assert_eq!(it.state(0, 0).unwrap(), &before);
    // Missing inputs, a missing parameter list, and a direction not of the parameter's shape.
    assert!(it.step(2, std::slice::from_ref(&p), &[vec![]]).unwrap_err().message.contains("input 0"));
    assert!(it.step(2, &[], &[]).is_err());
    let wrong = ArrayD::zeros(IxDyn(&[1, 3]));
    assert!(it.step(2, &[wrong], &[vec![arr(&[3], &[1.0, 1.0, 1.0])]]).unwrap_err().message.contains("direction"));
    assert_eq!(it.state(0, 0).unwrap(), &before);
}

/// A graph for a parameter of `shape`: s1 = group(sum g^2) (site 7), s2 = group(s1 * mean g)
/// (site 8, which reads the finished s1); the output is g * s1 + s2.
fn grouped(shape: &[usize]) -> Graph {
    let mut g = Graph { inputs: vec![shape.to_vec()], ..Graph::default() };
    let x = g.push(Op::Input(0), shape.to_vec());
    let sq = g.push(Op::Binary(Binary::Mul, x, x), shape.to_vec());
    let ss = g.push(Op::Reduce { op: Reduce::Sum, arg: sq, axes: vec![], keepdims: false }, vec![]);
    let s1 = g.push(Op::Group { arg: ss, site: 7 }, vec![]);
    let mean = g.push(Op::Reduce { op: Reduce::Mean, arg: x, axes: vec![], keepdims: false }, vec![]);
    let a2 = g.push(Op::Binary(Binary::Mul, s1, mean), vec![]);
    let s2 = g.push(Op::Group { arg: a2, site: 8 }, vec![]);
    let gs = g.push(Op::Binary(Binary::Mul, x, s1), shape.to_vec());
    g.output = g.push(Op::Binary(Binary::Add, gs, s2), shape.to_vec());
    g
}

#[test]
fn groups_sum_across_parameters() {
    let (x0, x1) = (ramp(&[2]), ramp(&[3, 1]));
    let mut it = Interp::<f64>::new(vec![grouped(&[2]), grouped(&[3, 1])], 0);
    let params = [ArrayD::zeros(IxDyn(&[2])), ArrayD::zeros(IxDyn(&[3, 1]))];
    let d = it.step(1, &params, &[vec![x0.clone()], vec![x1.clone()]]).unwrap();
    let sumsq = |x: &ArrayD<f64>| x.iter().map(|v| v * v).sum::<f64>();
    let s1 = sumsq(&x0) + sumsq(&x1);
    let s2 = s1 * x0.mean().unwrap() + s1 * x1.mean().unwrap();
    assert!((&d[0] - &x0.mapv(|v| v * s1 + s2)).iter().all(|e| e.abs() < 1e-12));
    assert!((&d[1] - &x1.mapv(|v| v * s1 + s2)).iter().all(|e| e.abs() < 1e-12));
    // Alone (eval_once), a group is its own argument.
    let mut g = grouped(&[2]);
    g.output = 3; // s1
    let v = eval_once::<f64>(&g, 1, None, std::slice::from_ref(&x0), 0).unwrap();
    assert_eq!(v[IxDyn(&[])], sumsq(&x0));
}

#[test]
fn deep_graphs_need_no_deep_stack() {
    // 100k chained nodes on the test thread's ordinary stack.
    let mut g = Graph::default();
    let mut x = g.push(Op::Const(0.0), vec![]);
    let one = g.push(Op::Const(1.0), vec![]);
    for _ in 0..100_000 {
        x = g.push(Op::Binary(Binary::Add, x, one), vec![]);
    }
    g.output = x;
    assert_eq!(eval_once::<f64>(&g, 1, None, &[], 0).unwrap()[IxDyn(&[])], 100_000.0);
}

#[test]
fn malformed_graphs_are_errors() {
    let mut g = Graph::default();
    let a = g.push(Op::Const(1.0), vec![]);
    let b = g.push(Op::Unary(Unary::Neg, 2), vec![]);
    g.output = b;
    assert!(eval_once::<f64>(&g, 1, None, &[], 0).unwrap_err().message.contains("not an earlier node"));
    g.output = 9;
    assert!(eval_once::<f64>(&g, 1, None, &[], 0).is_err());
    g.output = g.push(Op::Param, vec![]);
    assert!(eval_once::<f64>(&g, 1, None, &[], 0).unwrap_err().message.contains("parameter"));
    g.output = g.push(Op::State(0), vec![]);
    assert!(eval_once::<f64>(&g, 1, None, &[], 0).is_err(), "no slot 0");
    g.output = g.push(Op::Output(a, 1), vec![]);
    assert!(eval_once::<f64>(&g, 1, None, &[], 0).is_err());
}

/// Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) for a parameter of `shape`, with bias correction
/// computed from the step.
fn adam(shape: &[usize]) -> Graph {
    let s = shape.to_vec();
    let mut g = Graph { inputs: vec![s.clone()], ..Graph::default() };
    g.slots = vec![Slot { name: "m".into(), shape: s.clone() }, Slot { name: "v".into(), shape: s.clone() }];
    let c = |g: &mut Graph, v: f64| g.push(Op::Const(v), vec![]);
    let bin = |g: &mut Graph, op, a, b, sh: &[usize]| g.push(Op::Binary(op, a, b), sh.to_vec());
    let x = g.push(Op::Input(0), s.clone());
    let (m, v, t) = (g.push(Op::State(0), s.clone()), g.push(Op::State(1), s.clone()), g.push(Op::Step, vec![]));
    let (b1, b2, one, nb1, nb2) = (c(&mut g, 0.9), c(&mut g, 0.999), c(&mut g, 1.0), c(&mut g, 0.1), c(&mut g, 0.001));
    let (mb, gx) = (bin(&mut g, Binary::Mul, b1, m, &s), bin(&mut g, Binary::Mul, nb1, x, &s));
    let m2 = bin(&mut g, Binary::Add, mb, gx, &s);
    let xx = bin(&mut g, Binary::Mul, x, x, &s);
    let (vb, gv) = (bin(&mut g, Binary::Mul, b2, v, &s), bin(&mut g, Binary::Mul, nb2, xx, &s));
    let v2 = bin(&mut g, Binary::Add, vb, gv, &s);
    let (p1, p2) = (bin(&mut g, Binary::Pow, b1, t, &[]), bin(&mut g, Binary::Pow, b2, t, &[]));
    let (c1, c2) = (bin(&mut g, Binary::Sub, one, p1, &[]), bin(&mut g, Binary::Sub, one, p2, &[]));
    let (mh, vh) = (bin(&mut g, Binary::Div, m2, c1, &s), bin(&mut g, Binary::Div, v2, c2, &s));
    let sq = g.push(Op::Unary(Unary::Sqrt, vh), s.clone());
    let eps = c(&mut g, 1e-8);
    let den = bin(&mut g, Binary::Add, sq, eps, &s);
    let r = bin(&mut g, Binary::Div, mh, den, &s);
    let lr = c(&mut g, -1e-3);
    g.output = bin(&mut g, Binary::Mul, lr, r, &s);
    g.state_writes = vec![(0, m2), (1, v2)];
    g
}

#[test]
fn f32_and_f64_runs_agree() {
    let shape = [4, 5];
    let mut i32_ = Interp::<f32>::new(vec![adam(&shape)], 0);
    let mut i64_ = Interp::<f64>::new(vec![adam(&shape)], 0);
    let p = ArrayD::<f64>::zeros(IxDyn(&shape));
    for step in 1..=5 {
        let grad = ramp(&shape).mapv(|x| (x * step as f64).sin());
        let d64 = i64_.step(step, std::slice::from_ref(&p), &[vec![grad.clone()]]).unwrap();
        let d32 = i32_.step(step, &[p.mapv(|x| x as f32)], &[vec![grad.mapv(|x| x as f32)]]).unwrap();
        let scale = d64[0].iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = d64[0].iter().zip(d32[0].iter()).map(|(a, &b)| (a - b as f64).abs()).fold(0.0, f64::max);
        // The bias corrections (1 - 0.999^t cancels) run in f64, so only tensor math rounds.
        assert!(err <= 1e-6 * scale, "step {step}: {err} against {scale}");
        assert!(scale > 1e-4);
    }
    // A plain f32 recurrence agrees to f32 rounding too.
    let mut m32 = Interp::<f32>::new(vec![momentum()], 0);
    let mut m64 = Interp::<f64>::new(vec![momentum()], 0);
    for step in 1..=10 {
        let grad = ramp(&[3]).mapv(|x| (x * step as f64).cos());
        let d64 = m64.step(step, &[ArrayD::zeros(IxDyn(&[3]))], &[vec![grad.clone()]]).unwrap();
        let d32 = m32.step(step, &[ArrayD::zeros(IxDyn(&[3]))], &[vec![grad.mapv(|x| x as f32)]]).unwrap();
        for (a, &b) in d64[0].iter().zip(d32[0].iter()) {
            assert!((a - b as f64).abs() <= 1e-6 * a.abs().max(1.0), "step {step}: {a} vs {b}");
        }
    }
}

#[test]
fn hyperparameter_arithmetic_runs_in_f64() {
    // (1 - 0.999^t) * x, in f32: the scalar is computed in f64 and rounded once.
    let mut g = Graph { inputs: vec![vec![2]], ..Graph::default() };
    let x = g.push(Op::Input(0), vec![2]);
    let (b2, one, t) = (g.push(Op::Const(0.999), vec![]), g.push(Op::Const(1.0), vec![]), g.push(Op::Step, vec![]));
    let p = g.push(Op::Binary(Binary::Pow, b2, t), vec![]);
    let c = g.push(Op::Binary(Binary::Sub, one, p), vec![]);
    g.output = g.push(Op::Binary(Binary::Mul, c, x), vec![2]);
    let xs = ArrayD::from_elem(IxDyn(&[2]), 3.0f32);
    for step in [1u64, 2, 10] {
        let got = eval_once::<f32>(&g, step, None, std::slice::from_ref(&xs), 0).unwrap();
        let want = (1.0 - 0.999f64.powf(step as f64)) as f32 * 3.0;
        assert_eq!(got[[0]], want, "step {step}");
        let in_f32 = (1.0f32 - 0.999f32.powf(step as f32)) * 3.0;
        assert_ne!(got[[0]], in_f32, "the f32 computation would differ");
    }
}

#[test]
fn eval_nodes_returns_values_in_the_order_asked() {
    let mut g = Graph::default();
    g.inputs.push(vec![2]);
    let x = g.push(Op::Input(0), vec![2]);
    let r = g.push(Op::Random { dist: Dist::Normal, stream: 3 }, vec![2]);
    let s = g.push(Op::Binary(Binary::Add, x, r), vec![2]);
    let t = g.push(Op::Reduce { op: Reduce::Sum, arg: s, axes: vec![], keepdims: false }, vec![]);
    let grp = g.push(Op::Group { arg: t, site: 0 }, vec![]);
    let x0 = arr(&[2], &[1.0, 2.0]);
    let v = eval_nodes::<f64>(&g, 1, std::slice::from_ref(&x0), 5, &[s, x, r, grp, t]).unwrap();
    assert_eq!(v[1], x0);
    assert_eq!(v[0], &v[1] + &v[2]);
    assert_eq!(v[3], v[4], "alone, a group is its own argument");
    assert_eq!(v[4][IxDyn(&[])], v[0].sum());
    assert!(eval_nodes::<f64>(&g, 1, &[], 5, &[s]).is_err(), "a missing input");
}

/// Taking the inputs by value moves them (and reshapes of values read once) without changing a
/// result: inputs read by one node, by two nodes, by a reshape and by a root; a reshape also
/// read elsewhere; a transposed (non-standard) input; a missing input and a wrong shape.
#[test]
fn owned_inputs_give_the_same_values() {
    let mut g = Graph::default();
    g.inputs.extend([vec![2, 3], vec![3, 2], vec![4]]);
    let a = g.push(Op::Input(0), vec![2, 3]);
    let flat = g.push(Op::Reshape(a), vec![6]);
    let b = g.push(Op::Input(1), vec![3, 2]);
    let b_again = g.push(Op::Input(1), vec![3, 2]);
    let b_flat = g.push(Op::Reshape(b), vec![6]);
    let sum = g.push(Op::Binary(Binary::Add, flat, b_flat), vec![6]);
    let c = g.push(Op::Input(2), vec![4]);
    let c_mat = g.push(Op::Reshape(c), vec![2, 2]);
    let c_twice = g.push(Op::Binary(Binary::Mul, c_mat, c_mat), vec![2, 2]);
    let a0 = arr(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b0 = arr(&[2, 3], &[0.5, -1., 2., 7., 8., 9.]).reversed_axes();
    assert!(!b0.is_standard_layout());
    let c0 = arr(&[4], &[1., -2., 3., -4.]);
    let inputs = vec![a0, b0, c0];
    for roots in [vec![sum, b_again, c_twice, c_mat], vec![flat, b, sum], vec![c_twice, a, b_flat]] {
        let want = eval_nodes::<f64>(&g, 1, &inputs, 0, &roots).unwrap();
        let got = eval_nodes_owned::<f64>(&g, 1, inputs.clone(), 0, &roots).unwrap();
        assert_eq!(got, want, "roots {roots:?}");
    }
    assert!(eval_nodes_owned::<f64>(&g, 1, inputs[..2].to_vec(), 0, &[sum]).is_err(), "a missing input");
    let wrong = vec![arr(&[6], &[0.; 6]), inputs[1].clone(), inputs[2].clone()];
    assert!(eval_nodes_owned::<f64>(&g, 1, wrong, 0, &[sum]).is_err(), "an input of the wrong shape");
}
