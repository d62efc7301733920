//! Broadcast operands inside fused kernels: a NumPy broadcast that repeats a trailing block for
//! every row (`[k]` against `[batch, k]`) or one value per row (`[batch, 1]` against
//! `[batch, k]`) is read in place by the kernel instead of being materialized. On random shapes
//! (odd sizes exercise the scalar tails of each row, large ones the split of rows across
//! threads) the executor must compute exactly what the interpreter computes, and fuse the chain
//! into one kernel with no library call.

use ndarray::{ArrayD, IxDyn};
use optic_compiler::exec::{GraphExec, Lane};
use optic_compiler::fuse::Place;
use optic_compiler::interp::{eval_nodes, Scalar};
use optic_compiler::ir::{Binary, Graph, Op, Unary};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// `out = select(x > b, exp(x * b) - c, max(x, c) / b)` over `x` of `shape`, with `b` and `c` of
/// the broadcast shapes given.
fn graph(shape: &[usize], b: &[usize], c: &[usize]) -> (Graph, usize) {
    let mut g = Graph { inputs: vec![shape.to_vec(), b.to_vec(), c.to_vec()], ..Graph::default() };
    let s = shape.to_vec();
    let x = g.push(Op::Input(0), s.clone());
    let b = g.push(Op::Input(1), b.to_vec());
    let c = g.push(Op::Input(2), c.to_vec());
    let gt = g.push(Op::Binary(Binary::Gt, x, b), s.clone());
    let xb = g.push(Op::Binary(Binary::Mul, x, b), s.clone());
    let e = g.push(Op::Unary(Unary::Exp, xb), s.clone());
    let left = g.push(Op::Binary(Binary::Sub, e, c), s.clone());
    let m = g.push(Op::Binary(Binary::Max, x, c), s.clone());
    let right = g.push(Op::Binary(Binary::Div, m, b), s.clone());
    let out = g.push(Op::Select(gt, left, right), s);
    g.output = out;
    (g, out)
}

fn random(rng: &mut Pcg64, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random::<f64>() * 2.0 - 1.0)
}

fn check<T: Lane>(shape: &[usize], b: &[usize], c: &[usize], seed: u64, tolerance: f64) {
    let (g, out) = graph(shape, b, c);
    let mut rng = Pcg64::seed_from_u64(seed);
    let inputs: Vec<ArrayD<T>> = g.inputs.iter().map(|s| random(&mut rng, s).mapv(T::from_f64)).collect();
    let want = eval_nodes(&g, 1, &inputs, 0, &[out]).expect("interp");
    let mut exec = GraphExec::<T>::new(g, vec![out]);
    let got = exec.run(1, &inputs, 0).expect("exec");
    let scale = want[0].iter().fold(0.0f64, |m, x| m.max(Scalar::to_f64(*x).abs()));
    let worst =
        want[0].iter().zip(&got[0]).fold(0.0f64, |m, (x, y)| m.max((Scalar::to_f64(*x) - Scalar::to_f64(*y)).abs()));
    assert!(worst <= tolerance * scale, "{shape:?} with {b:?} and {c:?}: {worst:.2e}");
    let sched = exec.schedule().expect("ran");
    let calls = (0..exec.graph().nodes.len())
        .filter(|&id| sched.place[id] == Place::Library && !matches!(exec.graph().nodes[id].op, Op::Input(_)))
        .count();
    assert_eq!((sched.kernels.len(), calls), (1, 0), "{shape:?} with {b:?} and {c:?} is not one kernel");
}

#[test]
fn broadcasts_fuse_and_agree_with_the_interpreter() {
    let mut rng = Pcg64::seed_from_u64(3);
    for case in 0..40u64 {
        let large = case % 4 == 3;
        let rows = if large { rng.random_range(300..700) } else { rng.random_range(1..9) };
        let cols = if large { rng.random_range(200..400) } else { rng.random_range(1..13) };
        let shape = [rows, cols];
        // Row and per-row broadcasts, single values, and a full operand.
        let kinds: [&[usize]; 5] = [&[cols], &[1, cols], &[rows, 1], &[1], &[]];
        let b = kinds[rng.random_range(0..kinds.len())];
        let c = kinds[rng.random_range(0..kinds.len())];
        // One kernel has one period: a row and a per-row operand together differ unless cols = 1.
        let period = |s: &[usize]| s.iter().product::<usize>() != 1 && s.iter().product::<usize>() != rows * cols;
        if period(b) && period(c) && (b.len() == 2 && b[1] == 1) != (c.len() == 2 && c[1] == 1) {
            continue;
        }
        check::<f64>(&shape, b, c, case, 1e-12);
        check::<f32>(&shape, b, c, case, 1e-5);
    }
    // Three axes: a trailing [b, c] block and one value per [b, c] block.
    check::<f32>(&[5, 7, 9], &[7, 9], &[], 1, 1e-5);
    check::<f32>(&[5, 7, 9], &[5, 1, 1], &[1], 2, 1e-5);
    check::<f64>(&[400, 3, 70], &[3, 70], &[3, 70], 3, 1e-12);
}

/// A middle-axis broadcast has no period: it stays a library call, still right.
#[test]
fn other_broadcasts_stay_library_calls() {
    let (g, out) = graph(&[4, 5, 6], &[1, 5, 1], &[]);
    let mut rng = Pcg64::seed_from_u64(9);
    let inputs: Vec<ArrayD<f64>> = g.inputs.iter().map(|s| random(&mut rng, s)).collect();
    let want = eval_nodes(&g, 1, &inputs, 0, &[out]).expect("interp");
    let got = GraphExec::<f64>::new(g, vec![out]).run(1, &inputs, 0).expect("exec");
    // Equal up to the kernels' inline exp (a few ulp).
    let worst = want[0].iter().zip(&got[0]).fold(0.0f64, |m, (x, y)| m.max((x - y).abs() / x.abs().max(1.0)));
    assert!(worst < 1e-14, "{worst:.2e}");
}

/// W4's backward pass through a one-column layer: `dz = select(h > 0, d @ wᵀ, 0)` with `d` of
/// shape [rows, 1] and `w` of shape [cols, 1]. The outer product is a broadcast product, so the
/// whole of `dz` is one kernel (the transpose of `w` aside, a copy of `cols` elements), with the
/// interpreter's bits; `run_into` hands the same values out, and back in, step after step.
#[test]
fn an_outer_product_fuses_with_its_reader() {
    let mut rng = Pcg64::seed_from_u64(11);
    for (rows, cols) in [(1, 1), (3, 17), (256, 512), (301, 77)] {
        let mut g = Graph { inputs: vec![vec![rows, cols], vec![rows, 1], vec![cols, 1]], ..Graph::default() };
        let h = g.push(Op::Input(0), vec![rows, cols]);
        let d = g.push(Op::Input(1), vec![rows, 1]);
        let w = g.push(Op::Input(2), vec![cols, 1]);
        let zero = g.push(Op::Const(0.0), vec![]);
        let wt = g.push(Op::Transpose(w), vec![1, cols]);
        let outer = g.push(Op::MatMul(d, wt), vec![rows, cols]);
        let mask = g.push(Op::Binary(Binary::Gt, h, zero), vec![rows, cols]);
        let dz = g.push(Op::Select(mask, outer, zero), vec![rows, cols]);
        g.output = dz;
        let inputs: Vec<ArrayD<f32>> = g.inputs.iter().map(|s| random(&mut rng, s).mapv(|x| x as f32)).collect();
        let want = eval_nodes(&g, 1, &inputs, 0, &[dz, outer]).expect("interp");
        let mut exec = GraphExec::<f32>::new(g, vec![dz, outer]);
        let mut outs = Vec::new();
        for step in 1..=3 {
            exec.run_into(step, &inputs, 0, &mut outs).expect("exec");
            assert_eq!(outs, want, "{rows}x{cols}, step {step}");
        }
        let sched = exec.schedule().expect("ran");
        assert_eq!(sched.kernels.len(), 1, "{rows}x{cols}");
        assert!(matches!(exec.graph().nodes[outer].op, Op::Binary(Binary::Mul, ..)));
        assert_eq!(sched.place[outer], Place::Kernel(0));
    }
}

/// Host arithmetic that reads no step reaches kernels as the constant it computes: the gradient
/// of `x^2` multiplies by `x^(2-1)`, which must compile as `x`, not as the inline `pow`.
#[test]
fn step_free_host_arithmetic_reaches_kernels_as_constants() {
    let mut g = Graph { inputs: vec![vec![64]], ..Graph::default() };
    let x = g.push(Op::Input(0), vec![64]);
    let two = g.push(Op::Const(2.0), vec![]);
    let one = g.push(Op::Const(1.0), vec![]);
    let e = g.push(Op::Binary(Binary::Sub, two, one), vec![]);
    let step = g.push(Op::Step, vec![]);
    let p = g.push(Op::Binary(Binary::Pow, x, e), vec![64]);
    let out = g.push(Op::Binary(Binary::Mul, p, step), vec![64]);
    g.output = out;
    let inputs = vec![ArrayD::from_shape_fn(IxDyn(&[64]), |i| i[0] as f64 - 20.5)];
    let want = eval_nodes(&g, 3, &inputs, 0, &[out]).expect("interp");
    let mut exec = GraphExec::<f64>::new(g, vec![out]);
    assert_eq!(exec.run(3, &inputs, 0).expect("exec"), want);
    assert_eq!(exec.graph().nodes[e].op, Op::Const(1.0), "2 - 1 is folded");
    assert_eq!(exec.graph().nodes[step].op, Op::Step, "the step is not");
    let kernel = &exec.schedule().expect("ran").kernels[0];
    assert_eq!(kernel.scalars, vec![step], "the exponent is a constant of the kernel, the step its argument");
}
