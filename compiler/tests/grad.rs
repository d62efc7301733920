//! Property tests of reverse-mode autodiff (`grad::differentiate`): small graphs built by hand
//! with random shapes and seeded random values, whose gradients, evaluated by the reference
//! interpreter in f64, must match central finite differences. The loss is the sum of the output
//! times a fixed random tensor, so every output element matters with its own weight. Values stay
//! away from kinks and ties, where a finite difference means nothing; the conventions at kinks
//! (relu'(0) = 0, shared ties, x^2 at 0) are checked exactly by their own tests.

use ndarray::{ArrayD, IxDyn};
use optic_compiler::grad::differentiate;
use optic_compiler::interp::eval_nodes;
use optic_compiler::ir::{print_graph, Binary, Graph, Linalg, NodeId, Op, Reduce, Unary};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// The step of the central differences.
const H: f64 = 1e-6;
/// Relative tolerance, scaled by max(1, |gradient|).
const TOL: f64 = 1e-6;

/// A graph under construction with its inputs' values and a seeded generator.
struct T {
    g: Graph,
    inputs: Vec<ArrayD<f64>>,
    rng: Pcg64,
    /// What the case is, for failure messages.
    what: String,
}

fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| {
            let (x, y) = (dim(a, i), dim(b, i));
            assert!(x == y || x == 1 || y == 1, "{a:?} and {b:?} do not broadcast");
            x.max(y)
        })
        .collect()
}

impl T {
    fn new(seed: u64) -> Self {
        T { g: Graph::default(), inputs: Vec::new(), rng: Pcg64::seed_from_u64(seed), what: String::new() }
    }

    /// Starts a new case (a fresh graph) with the same generator.
    fn reset(&mut self, what: impl Into<String>) {
        self.g = Graph::default();
        self.inputs.clear();
        self.what = what.into();
    }

    fn input(&mut self, v: ArrayD<f64>) -> NodeId {
        self.g.inputs.push(v.shape().to_vec());
        self.inputs.push(v);
        self.g.push(Op::Input(self.inputs.len() - 1), self.g.inputs.last().unwrap().clone())
    }

    fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.rng.random_range(lo..hi))
    }

    /// Values with |x| in [lo, hi) and a random sign: away from zero.
    fn away(&mut self, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || {
            let x = self.rng.random_range(lo..hi);
            if self.rng.random_bool(0.5) {
                x
            } else {
                -x
            }
        })
    }

    /// Distinct values (gaps of at least 0.09) in random order: no ties in a max or min.
    fn distinct(&mut self, shape: &[usize]) -> ArrayD<f64> {
        let n: usize = shape.iter().product();
        let mut v: Vec<f64> =
            (0..n).map(|i| i as f64 * 0.1 - n as f64 * 0.05 + self.rng.random_range(0.0..0.01)).collect();
        for i in (1..n).rev() {
            v.swap(i, self.rng.random_range(0..=i));
        }
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    fn input_in(&mut self, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        let v = self.uniform(shape, lo, hi);
        self.input(v)
    }

    /// A random shape of rank `lo..=hi`, each axis 1 to 5.
    fn shape(&mut self, lo: usize, hi: usize) -> Vec<usize> {
        let r = self.rng.random_range(lo..=hi);
        (0..r).map(|_| self.rng.random_range(1..=5)).collect()
    }

    /// A shape that broadcasts to `s`: some leading axes dropped, some axes set to 1.
    fn under(&mut self, s: &[usize]) -> Vec<usize> {
        let lead = self.rng.random_range(0..=s.len());
        s[lead..].iter().map(|&d| if self.rng.random_bool(0.3) { 1 } else { d }).collect()
    }

    fn push(&mut self, op: Op, shape: Vec<usize>) -> NodeId {
        self.g.push(op, shape)
    }

    fn shape_of(&self, x: NodeId) -> Vec<usize> {
        self.g.shape(x).to_vec()
    }

    fn konst(&mut self, c: f64) -> NodeId {
        self.push(Op::Const(c), vec![])
    }

    fn un(&mut self, u: Unary, x: NodeId) -> NodeId {
        let s = self.shape_of(x);
        self.push(Op::Unary(u, x), s)
    }

    fn bin(&mut self, op: Binary, x: NodeId, y: NodeId) -> NodeId {
        let s = broadcast(self.g.shape(x), self.g.shape(y));
        self.push(Op::Binary(op, x, y), s)
    }

    fn reduce(&mut self, op: Reduce, x: NodeId, axes: Vec<usize>, keepdims: bool) -> NodeId {
        let sx = self.shape_of(x);
        let all = axes.is_empty();
        let s = (0..sx.len())
            .filter_map(|i| match (all || axes.contains(&i), keepdims) {
                (true, true) => Some(1),
                (true, false) => None,
                (false, _) => Some(sx[i]),
            })
            .collect();
        self.push(Op::Reduce { op, arg: x, axes, keepdims }, s)
    }

    fn sum(&mut self, x: NodeId) -> NodeId {
        self.reduce(Reduce::Sum, x, vec![], false)
    }

    fn matmul(&mut self, x: NodeId, y: NodeId) -> NodeId {
        let (sx, sy) = (self.shape_of(x), self.shape_of(y));
        let sx2 = if sx.len() == 1 { vec![1, sx[0]] } else { sx.clone() };
        let sy2 = if sy.len() == 1 { vec![sy[0], 1] } else { sy.clone() };
        let mut s = broadcast(&sx2[..sx2.len() - 2], &sy2[..sy2.len() - 2]);
        if sx.len() > 1 {
            s.push(sx2[sx2.len() - 2]);
        }
        if sy.len() > 1 {
            s.push(sy2[sy2.len() - 1]);
        }
        self.push(Op::MatMul(x, y), s)
    }

    fn transpose(&mut self, x: NodeId) -> NodeId {
        let mut s = self.shape_of(x);
        let n = s.len();
        s.swap(n - 2, n - 1);
        self.push(Op::Transpose(x), s)
    }

    fn loss_value(&self, loss: NodeId, inputs: &[ArrayD<f64>]) -> f64 {
        let v = eval_nodes::<f64>(&self.g, 1, inputs, 0, &[loss]).unwrap_or_else(|e| panic!("{}: {e}", self.what));
        v[0][IxDyn(&[])]
    }

    /// Differentiates sum(out * w) (w a fixed random tensor) with respect to `wrt` (input
    /// nodes) and compares each gradient element with a central difference. Returns the loss.
    fn check(&mut self, out: NodeId, wrt: &[NodeId]) -> NodeId {
        let s = self.shape_of(out);
        let w = self.input_in(&s, -1.0, 1.0);
        let m = self.bin(Binary::Mul, out, w);
        let loss = self.sum(m);
        let grads = differentiate(&mut self.g, loss, wrt).unwrap_or_else(|e| panic!("{}: {e}", self.what));
        let vals = eval_nodes::<f64>(&self.g, 1, &self.inputs, 0, &grads)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", self.what, print_graph(&self.g)));
        for (&x, got) in wrt.iter().zip(&vals) {
            let Op::Input(k) = self.g.nodes[x].op else { panic!("{}: wrt %{x} is not an input", self.what) };
            assert_eq!(got.shape(), self.inputs[k].shape(), "{}: gradient shape", self.what);
            for (e, &gv) in got.iter().enumerate() {
                let mut inp = self.inputs.clone();
                let base = inp[k].as_slice().unwrap()[e];
                inp[k].as_slice_mut().unwrap()[e] = base + H;
                let up = self.loss_value(loss, &inp);
                inp[k].as_slice_mut().unwrap()[e] = base - H;
                let down = self.loss_value(loss, &inp);
                let fd = (up - down) / (2.0 * H);
                assert!(
                    (gv - fd).abs() <= TOL * gv.abs().max(1.0),
                    "{}: d/d%{x}[{e}] is {gv}, finite difference {fd}\ninputs {:?}\n{}",
                    self.what,
                    self.inputs,
                    print_graph(&self.g)
                );
            }
        }
        loss
    }
}

#[test]
fn unary_ops() {
    let mut t = T::new(1);
    use Unary::*;
    for u in [Neg, Abs, Sqrt, Exp, Log, Sin, Cos, Tanh, Erf, Sign, Floor, Ceil, Round, Not] {
        for case in 0..20 {
            t.reset(format!("{u:?} #{case}"));
            let s = t.shape(0, 3);
            let v = match u {
                Sqrt | Log => t.uniform(&s, 0.2, 2.0),
                // Away from the kink of abs and the jumps of the piecewise-constant functions.
                Abs | Sign | Not => t.away(&s, 1e-3, 2.0),
                Floor | Ceil | Round => t.uniform(&s, -2.0, 2.0).mapv(|x| x.trunc() + 0.1 + 0.3 * x.fract().abs()),
                _ => t.uniform(&s, -2.0, 2.0),
            };
            let x = t.input(v);
            let y = t.un(u, x);
            t.check(y, &[x]);
        }
    }
}

#[test]
fn binary_ops_broadcast() {
    let mut t = T::new(2);
    use Binary::*;
    for op in [Add, Sub, Mul, Div, Max, Min, Eq, Ne, Lt, Le, Gt, Ge, And, Or] {
        for case in 0..30 {
            t.reset(format!("{op:?} #{case}"));
            let s = t.shape(0, 3);
            let (sa, sb) = (t.under(&s), t.under(&s));
            let a = t.uniform(&sa, -2.0, 2.0);
            let mut b = if op == Div { t.away(&sb, 0.5, 2.0) } else { t.uniform(&sb, -2.0, 2.0) };
            // No near-ties for max and min (nor for the comparisons, which jump there).
            while (&a - &b).iter().any(|d| d.abs() < 1e-3) {
                b = t.uniform(&sb, -2.0, 2.0);
            }
            let (x, y) = (t.input(a), t.input(b));
            let z = t.bin(op, x, y);
            t.check(z, &[x, y]);
        }
    }
    // The broadcasts the brief names, for each arithmetic op.
    for op in [Add, Sub, Mul, Div] {
        for (sa, sb) in
            [(vec![3, 1], vec![1, 4]), (vec![4], vec![2, 4]), (vec![], vec![2, 3]), (vec![2, 3, 4], vec![3, 1])]
        {
            // Both ways round: the scalar or the smaller operand first, then second.
            for (sa, sb) in [(&sa, &sb), (&sb, &sa)] {
                t.reset(format!("{op:?} {sa:?} {sb:?}"));
                let (a, b) = (t.away(sa, 0.5, 2.0), t.away(sb, 0.5, 2.0));
                let (x, y) = (t.input(a), t.input(b));
                let z = t.bin(op, x, y);
                t.check(z, &[x, y]);
            }
        }
    }
}

#[test]
fn pow_with_constant_and_tensor_exponents() {
    let mut t = T::new(3);
    for c in [2.0, 3.0, -1.0, 0.5, 1.5, -2.5] {
        for case in 0..10 {
            t.reset(format!("x ^ {c} #{case}"));
            let s = t.shape(0, 3);
            let integer = c == f64::trunc(c);
            let v = if integer { t.away(&s, 0.3, 2.0) } else { t.uniform(&s, 0.3, 2.0) };
            let x = t.input(v);
            let e = t.konst(c);
            let y = t.bin(Binary::Pow, x, e);
            t.check(y, &[x]);
        }
    }
    for case in 0..30 {
        t.reset(format!("x ^ y #{case}"));
        let s = t.shape(0, 3);
        let (sa, sb) = (t.under(&s), t.under(&s));
        let (x, y) = (t.input_in(&sa, 0.3, 2.0), t.input_in(&sb, -2.0, 2.0));
        let z = t.bin(Binary::Pow, x, y);
        t.check(z, &[x, y]);
    }
}

/// Evaluates the gradients of sum(out) with respect to `wrt`.
fn grads_of_sum(t: &mut T, out: NodeId, wrt: &[NodeId]) -> Vec<ArrayD<f64>> {
    let loss = t.sum(out);
    let g = differentiate(&mut t.g, loss, wrt).unwrap();
    eval_nodes::<f64>(&t.g, 1, &t.inputs, 0, &g).unwrap()
}

fn arr(v: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap()
}

#[test]
fn square_has_a_finite_gradient_at_zero_and_below() {
    let mut t = T::new(0);
    let x = t.input(arr(&[0.0, -1.5, 2.0]));
    let two = t.konst(2.0);
    let y = t.bin(Binary::Pow, x, two);
    assert_eq!(grads_of_sum(&mut t, y, &[x]), vec![arr(&[0.0, -3.0, 4.0])]);
    // With the exponent differentiated too, 0^y contributes 0 (not 0 * -inf) to d/dy.
    let mut t = T::new(0);
    let x = t.input(arr(&[0.0, 2.0]));
    let e = t.input(arr(&[2.0, 2.0]));
    let y = t.bin(Binary::Pow, x, e);
    let g = grads_of_sum(&mut t, y, &[x, e]);
    assert_eq!(g[0], arr(&[0.0, 4.0]));
    assert_eq!(g[1], arr(&[0.0, 4.0 * 2f64.ln()]));
}

#[test]
fn relu_has_derivative_zero_at_zero() {
    let mut t = T::new(0);
    let x = t.input(arr(&[0.0, -1.0, 2.0]));
    let zero = t.konst(0.0);
    let relu = t.bin(Binary::Max, x, zero);
    assert_eq!(grads_of_sum(&mut t, relu, &[x]), vec![arr(&[0.0, 0.0, 1.0])]);
    // min(x, 0) likewise: the first operand only where strictly smaller.
    let mut t = T::new(0);
    let x = t.input(arr(&[0.0, -1.0, 2.0]));
    let zero = t.konst(0.0);
    let m = t.bin(Binary::Min, x, zero);
    assert_eq!(grads_of_sum(&mut t, m, &[x]), vec![arr(&[0.0, 1.0, 0.0])]);
    // On a tie between two differentiated operands the second one takes it all.
    let mut t = T::new(0);
    let (x, y) = (t.input(arr(&[1.0, 2.0])), t.input(arr(&[1.0, 3.0])));
    let m = t.bin(Binary::Max, x, y);
    assert_eq!(grads_of_sum(&mut t, m, &[x, y]), vec![arr(&[0.0, 0.0]), arr(&[1.0, 1.0])]);
}

#[test]
fn select_with_tensor_and_scalar_conditions() {
    let mut t = T::new(4);
    for case in 0..30 {
        t.reset(format!("select #{case}"));
        let s = t.shape(0, 3);
        let (sc, sa, sb) = (t.under(&s), t.under(&s), t.under(&s));
        let c = t.uniform(&sc, 0.0, 1.0).mapv(|v| if v < 0.5 { 0.0 } else { 1.0 });
        let c = t.input(c);
        let (a, b) = (t.input_in(&sa, -2.0, 2.0), t.input_in(&sb, -2.0, 2.0));
        let shape = broadcast(&broadcast(&sc, &sa), &sb);
        let y = t.push(Op::Select(c, a, b), shape);
        t.check(y, &[a, b]);
    }
    for case in 0..20 {
        t.reset(format!("scalar select #{case}"));
        let s = t.shape(0, 3);
        let (sa, sb) = (t.under(&s), t.under(&s));
        let (a, b) = (t.input_in(&sa, -2.0, 2.0), t.input_in(&sb, -2.0, 2.0));
        // A constant condition, or one computed from a differentiated operand (no gradient
        // flows through it: it is piecewise constant).
        let c = match case % 3 {
            0 => t.konst(1.0),
            1 => t.konst(0.0),
            _ => {
                let sum = t.sum(a);
                let zero = t.konst(0.0);
                t.bin(Binary::Gt, sum, zero)
            }
        };
        let y = t.push(Op::Select(c, a, b), broadcast(&sa, &sb));
        t.check(y, &[a, b]);
    }
}

#[test]
fn reductions_over_all_and_given_axes() {
    let mut t = T::new(5);
    use Reduce::*;
    for op in [Sum, Mean, Max, Min, Norm, ArgMax] {
        for case in 0..25 {
            let s = t.shape(0, 3);
            let axes: Vec<usize> =
                if t.rng.random_bool(0.3) { vec![] } else { (0..s.len()).filter(|_| t.rng.random_bool(0.5)).collect() };
            let keepdims = t.rng.random_bool(0.5);
            t.reset(format!("{op:?} of {s:?} over {axes:?} keepdims={keepdims} #{case}"));
            let v = if matches!(op, Max | Min | ArgMax) { t.distinct(&s) } else { t.uniform(&s, -2.0, 2.0) };
            let x = t.input(v);
            let y = t.reduce(op, x, axes, keepdims);
            t.check(y, &[x]);
        }
    }
}

#[test]
fn reduction_kinks_follow_torch() {
    // Ties share the gradient of a max (torch.amax).
    let mut t = T::new(0);
    let x = t.input(arr(&[1.0, 3.0, 3.0, -2.0]));
    let m = t.reduce(Reduce::Max, x, vec![], false);
    assert_eq!(grads_of_sum(&mut t, m, &[x]), vec![arr(&[0.0, 0.5, 0.5, 0.0])]);
    // The norm's gradient at the origin is 0, not NaN.
    let mut t = T::new(0);
    let x = t.input(ArrayD::zeros(IxDyn(&[2, 3])));
    let n = t.reduce(Reduce::Norm, x, vec![1], true);
    assert_eq!(grads_of_sum(&mut t, n, &[x]), vec![ArrayD::zeros(IxDyn(&[2, 3]))]);
}

#[test]
fn matmul_in_every_rank_combination() {
    let mut t = T::new(6);
    for case in 0..5 {
        let mut d = || t.rng.random_range(1..=4usize);
        let (m, k, n, b, c) = (d(), d(), d(), d(), d());
        let combos: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![k], vec![k]),
            (vec![k], vec![k, n]),
            (vec![m, k], vec![k]),
            (vec![m, k], vec![k, n]),
            (vec![b, m, k], vec![k, n]),
            (vec![m, k], vec![b, k, n]),
            (vec![b, m, k], vec![b, k, n]),
            (vec![b, m, k], vec![k]),
            (vec![k], vec![b, k, n]),
            (vec![1, m, k], vec![b, k, n]),
            (vec![b, 1, m, k], vec![c, k, n]),
        ];
        for (sa, sb) in combos {
            t.reset(format!("{sa:?} @ {sb:?} #{case}"));
            let (x, y) = (t.input_in(&sa, -2.0, 2.0), t.input_in(&sb, -2.0, 2.0));
            let z = t.matmul(x, y);
            t.check(z, &[x, y]);
        }
    }
}

#[test]
fn structural_ops() {
    let mut t = T::new(7);
    for case in 0..20 {
        // Transpose of the last two axes.
        let s = t.shape(2, 3);
        t.reset(format!("transpose {s:?} #{case}"));
        let x = t.input_in(&s, -2.0, 2.0);
        let y = t.transpose(x);
        t.check(y, &[x]);
        // Reshape to the reversed shape, and to a flat vector.
        t.reset(format!("reshape {s:?} #{case}"));
        let x = t.input_in(&s, -2.0, 2.0);
        let r: Vec<usize> = s.iter().rev().copied().collect();
        let y = t.push(Op::Reshape(x), r);
        let y = t.push(Op::Reshape(y), vec![s.iter().product()]);
        t.check(y, &[x]);
        // Expand from a shape that broadcasts.
        let s = t.shape(0, 3);
        let u = t.under(&s);
        t.reset(format!("expand {u:?} to {s:?} #{case}"));
        let x = t.input_in(&u, -2.0, 2.0);
        let y = t.push(Op::Expand(x), s);
        t.check(y, &[x]);
    }
}

#[test]
fn slices_with_steps_and_dropped_axes_and_embeds() {
    let mut t = T::new(8);
    for case in 0..40 {
        let s = t.shape(1, 3);
        let (mut ranges, mut drop, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for (j, &len) in s.iter().enumerate() {
            let start = t.rng.random_range(0..len);
            if t.rng.random_bool(0.3) {
                drop.push(j);
                ranges.push((start, 1));
            } else {
                let step = t.rng.random_range(1..=3);
                let most = (len - 1 - start) / step + 1;
                ranges.push((start, step));
                out.push(t.rng.random_range(1..=most));
            }
        }
        t.reset(format!("slice {s:?} {ranges:?} drop {drop:?} #{case}"));
        let x = t.input_in(&s, -2.0, 2.0);
        let y = t.push(Op::Slice { arg: x, ranges: ranges.clone(), drop: drop.clone() }, out.clone());
        t.check(y, &[x]);
        // Its adjoint, differentiated in turn (a second derivative would need it).
        t.reset(format!("embed {out:?} into {s:?} {ranges:?} drop {drop:?} #{case}"));
        let x = t.input_in(&out, -2.0, 2.0);
        let y = t.push(Op::Embed { arg: x, ranges, drop }, s);
        t.check(y, &[x]);
    }
}

#[test]
fn concat_diag_triangle_group() {
    let mut t = T::new(9);
    for case in 0..25 {
        let s = t.shape(1, 3);
        let axis = t.rng.random_range(0..s.len());
        let parts = t.rng.random_range(1..=3);
        t.reset(format!("concat of {parts} along {axis} of {s:?} #{case}"));
        let mut args = Vec::new();
        let mut total = 0;
        for _ in 0..parts {
            let mut sp = s.clone();
            sp[axis] = t.rng.random_range(1..=3);
            total += sp[axis];
            args.push(t.input_in(&sp, -2.0, 2.0));
        }
        let mut so = s.clone();
        so[axis] = total;
        let y = t.push(Op::Concat { args: args.clone(), axis }, so);
        t.check(y, &args);
    }
    for case in 0..20 {
        let (m, n) = (t.rng.random_range(1..=5), t.rng.random_range(1..=5));
        t.reset(format!("diag of [{m}] #{case}"));
        let x = t.input_in(&[m], -2.0, 2.0);
        let y = t.push(Op::Diag(x), vec![m, m]);
        t.check(y, &[x]);
        t.reset(format!("diag of [{m}, {n}] #{case}"));
        let x = t.input_in(&[m, n], -2.0, 2.0);
        let y = t.push(Op::Diag(x), vec![m.min(n)]);
        t.check(y, &[x]);
        for upper in [true, false] {
            let s = t.shape(2, 3);
            t.reset(format!("triangle {upper} of {s:?} #{case}"));
            let x = t.input_in(&s, -2.0, 2.0);
            let y = t.push(Op::Triangle(x, upper), s);
            t.check(y, &[x]);
        }
        // A group reduction over a single parameter is its argument.
        t.reset(format!("group #{case}"));
        let x = t.input_in(&[m, n], -2.0, 2.0);
        let sq = t.bin(Binary::Mul, x, x);
        let s = t.sum(sq);
        let y = t.push(Op::Group { arg: s, site: 0 }, vec![]);
        t.check(y, &[x]);
    }
}

#[test]
fn solve_with_vector_and_matrix_right_hand_sides() {
    let mut t = T::new(10);
    for case in 0..20 {
        let n = t.rng.random_range(1..=4);
        let sb = if case % 2 == 0 { vec![n] } else { vec![n, t.rng.random_range(1..=3)] };
        t.reset(format!("solve [{n}, {n}] {sb:?} #{case}"));
        // Diagonally dominant: well conditioned, so the differences are accurate.
        let a = t.uniform(&[n, n], -1.0, 1.0)
            + ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| (i[0] == i[1]) as u8 as f64 * 3.0);
        let a = t.input(a);
        let b = t.input_in(&sb, -2.0, 2.0);
        let s = t.push(Op::Linalg(Linalg::Solve, vec![a, b]), vec![]);
        let x = t.push(Op::Output(s, 0), sb);
        t.check(x, &[a, b]);
    }
}

#[test]
fn two_layer_network() {
    let mut t = T::new(11);
    for case in 0..10 {
        let (batch, d, h) = (t.rng.random_range(1..=5), t.rng.random_range(1..=4), t.rng.random_range(1..=5));
        t.reset(format!("mean((relu(x @ w^T) @ a - y)^2) batch {batch} d {d} h {h} #{case}"));
        let x = t.input_in(&[batch, d], -2.0, 2.0);
        let w = t.input_in(&[h, d], -1.0, 1.0);
        let a = t.input_in(&[h], -1.0, 1.0);
        let y = t.input_in(&[batch], -1.0, 1.0);
        let wt = t.transpose(w);
        let pre = t.matmul(x, wt);
        let zero = t.konst(0.0);
        let hidden = t.bin(Binary::Max, pre, zero);
        let out = t.matmul(hidden, a);
        let r = t.bin(Binary::Sub, out, y);
        let two = t.konst(2.0);
        let sq = t.bin(Binary::Pow, r, two);
        let loss = t.reduce(Reduce::Mean, sq, vec![], false);
        // Away from relu's kink: a pre-activation within 1e-3 of 0 makes the difference lie.
        let pv = eval_nodes::<f64>(&t.g, 1, &t.inputs, 0, &[pre]).unwrap();
        if pv[0].iter().any(|v| v.abs() < 1e-3) {
            continue;
        }
        t.check(loss, &[x, w, a, y]);
    }
}

#[test]
fn softmax_cross_entropy() {
    let mut t = T::new(12);
    for case in 0..10 {
        let (batch, d, classes) = (t.rng.random_range(1..=5), t.rng.random_range(1..=4), t.rng.random_range(2..=5));
        t.reset(format!("softmax cross-entropy batch {batch} d {d} classes {classes} #{case}"));
        let x = t.input_in(&[batch, d], -2.0, 2.0);
        let w = t.input_in(&[d, classes], -1.0, 1.0);
        let labels: Vec<usize> = (0..batch).map(|_| t.rng.random_range(0..classes)).collect();
        let onehot = ArrayD::from_shape_fn(IxDyn(&[batch, classes]), |i| (labels[i[0]] == i[1]) as u8 as f64);
        let onehot = t.input(onehot);
        let z = t.matmul(x, w);
        let m = t.reduce(Reduce::Max, z, vec![1], true);
        let zm = t.bin(Binary::Sub, z, m);
        let e = t.un(Unary::Exp, zm);
        let se = t.reduce(Reduce::Sum, e, vec![1], true);
        let lse = t.un(Unary::Log, se);
        let lse = t.bin(Binary::Add, lse, m);
        let logp = t.bin(Binary::Sub, z, lse);
        let picked = t.bin(Binary::Mul, logp, onehot);
        let per = t.reduce(Reduce::Sum, picked, vec![1], false);
        let mean = t.reduce(Reduce::Mean, per, vec![], false);
        let loss = t.un(Unary::Neg, mean);
        t.check(loss, &[x, w]);
    }
}

#[test]
fn shared_operands_accumulate_and_unreached_nodes_get_zeros() {
    let mut t = T::new(13);
    let x = t.input_in(&[2, 3], -2.0, 2.0);
    let unused = t.input_in(&[4], -2.0, 2.0);
    let xx = t.bin(Binary::Mul, x, x);
    let s = t.un(Unary::Sin, x);
    let y = t.bin(Binary::Add, xx, s);
    let loss = t.check(y, &[x, unused]);
    let g = differentiate(&mut t.g, loss, &[unused, x, unused]).unwrap();
    assert_eq!(g[0], g[2]);
    assert_eq!(t.g.nodes[g[0]].op, Op::Fill(0.0));
    assert_eq!(t.g.shape(g[0]), &[4]);
}

#[test]
fn decompositions_on_the_path_are_errors() {
    let mut t = T::new(14);
    let x = t.input_in(&[3, 2], -2.0, 2.0);
    let svd = t.push(Op::Linalg(Linalg::Svd { rank: 2 }, vec![x]), vec![]);
    let s = t.push(Op::Output(svd, 1), vec![2]);
    let loss = t.sum(s);
    let e = differentiate(&mut t.g, loss, &[x]).unwrap_err();
    assert_eq!(e.node, svd);
    assert!(e.message.contains("not differentiable: svd"), "{e}");
    assert!(e.to_string().starts_with(&format!("at %{svd}: ")), "{e}");
    // Off the differentiable path (only through a comparison, or not from x) it is no error.
    let zero = t.konst(0.0);
    let positive = t.bin(Binary::Gt, loss, zero);
    let y = t.bin(Binary::Mul, positive, x);
    let loss2 = t.sum(y);
    let g = differentiate(&mut t.g, loss2, &[x]).unwrap();
    let v = eval_nodes::<f64>(&t.g, 1, &t.inputs, 0, &[g[0], positive]).unwrap();
    assert_eq!(v[0], ArrayD::from_elem(IxDyn(&[3, 2]), v[1][IxDyn(&[])]));
    // A loss that is not a scalar is refused.
    assert!(differentiate(&mut t.g, x, &[x]).is_err());
}
