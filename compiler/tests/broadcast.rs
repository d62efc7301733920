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
