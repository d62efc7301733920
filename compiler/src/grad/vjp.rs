//! The vector-Jacobian product of each op: given a node and its adjoint, the nodes carrying its
//! contribution to the adjoint of each operand that wants one. Contributions always have their
//! operand's exact shape (broadcasts are summed back with [`unbroadcast`]), and no node is built
//! for an operand off the differentiable path.

use super::unbroadcast;
use crate::ir::{Binary, Graph, Linalg, NodeId, Op, Reduce, Unary};

/// Contributions: (operand, node holding its share of the adjoint).
type Contribs = Vec<(NodeId, NodeId)>;

/// The contributions of node `id`, whose adjoint is `gy`, to the operands `wants` accepts.
pub(super) fn vjp(g: &mut Graph, id: NodeId, gy: NodeId, wants: &dyn Fn(NodeId) -> bool) -> Result<Contribs, String> {
    let mut b = B { g };
    let op = b.g.nodes[id].op.clone();
    let mut out = Contribs::new();
    let mut give = |x: NodeId, c: NodeId| out.push((x, c));
    match op {
        Op::Unary(u, x) => {
            if let Some(c) = unary(&mut b, u, x, id, gy) {
                give(x, c);
            }
        }
        Op::Binary(op, x, y) => {
            for (operand, c) in binary(&mut b, op, x, y, id, gy, wants) {
                let c = unbroadcast(b.g, c, &b.shape(operand))?;
                give(operand, c);
            }
        }
        Op::Select(c, x, y) => {
            let zero = b.konst(0.0);
            if wants(x) {
                let s = b.select(c, gy, zero);
                give(x, unbroadcast(b.g, s, &b.shape(x))?);
            }
            if wants(y) {
                let s = b.select(c, zero, gy);
                give(y, unbroadcast(b.g, s, &b.shape(y))?);
            }
        }
        Op::Reduce { op, arg, axes, .. } => give(arg, reduce(&mut b, op, arg, &axes, id, gy)?),
        Op::Group { arg, .. } | Op::Recorded { arg, .. } => give(arg, gy),
        Op::MatMul(x, y) => {
            for (operand, c) in matmul(&mut b, x, y, gy, wants)? {
                give(operand, c);
            }
        }
        Op::Transpose(x) => give(x, b.push(Op::Transpose(gy), b.shape(x))),
        Op::Reshape(x) => give(x, b.reshape(gy, b.shape(x))),
        Op::Expand(x) => give(x, unbroadcast(b.g, gy, &b.shape(x))?),
        Op::Slice { arg, ranges, drop } => give(arg, b.push(Op::Embed { arg: gy, ranges, drop }, b.shape(arg))),
        Op::Embed { arg, ranges, drop } => give(arg, b.push(Op::Slice { arg: gy, ranges, drop }, b.shape(arg))),
        Op::Concat { args, axis } => {
            let mut at = 0;
            for x in args {
                let sx = b.shape(x);
                let count = *sx.get(axis).ok_or_else(|| format!("concat axis {axis} of shape {sx:?}"))?;
                if wants(x) {
                    let ranges = (0..sx.len()).map(|i| (if i == axis { at } else { 0 }, 1)).collect();
                    give(x, b.push(Op::Slice { arg: gy, ranges, drop: vec![] }, sx));
                }
                at += count;
            }
        }
        Op::Diag(x) => {
            let sx = b.shape(x);
            match sx.as_slice() {
                [_] => give(x, b.push(Op::Diag(gy), sx)),
                &[m, n] => {
                    let k = m.min(n);
                    let d = b.push(Op::Diag(gy), vec![k, k]);
                    // A non-square matrix's diagonal lies in its leading k x k block.
                    let c = if (m, n) == (k, k) {
                        d
                    } else {
                        b.push(Op::Embed { arg: d, ranges: vec![(0, 1), (0, 1)], drop: vec![] }, sx)
                    };
                    give(x, c);
                }
                _ => return Err(format!("diag of shape {sx:?}")),
            }
        }
        Op::Triangle(x, upper) => give(x, b.push(Op::Triangle(gy, upper), b.shape(x))),
        Op::Output(s, k) => match b.g.nodes[s].op.clone() {
            Op::Linalg(Linalg::Solve, args) if k == 0 && args.len() == 2 => {
                for (operand, c) in solve(&mut b, args[0], args[1], id, gy, wants) {
                    give(operand, c);
                }
            }
            // The one result of a single-result node.
            _ if k == 0 && !matches!(b.g.nodes[s].op, Op::Linalg(..)) => give(s, gy),
            _ => return Err(format!("not differentiable: result {k} of %{s}")),
        },
        Op::Linalg(..) => return Err("not differentiable: a linear-algebra node".into()),
        Op::Const(_) | Op::Fill(_) | Op::Step | Op::Input(_) | Op::Param | Op::State(_) | Op::Random { .. } => {}
    }
    Ok(out.into_iter().filter(|&(x, _)| wants(x)).collect())
}

/// Node building with the shapes worked out (operands are assumed to fit, as the forward graph
/// was built by a checked lowering; the interpreter checks every shape again when it runs).
struct B<'g> {
    g: &'g mut Graph,
}

impl B<'_> {
    fn shape(&self, x: NodeId) -> Vec<usize> {
        self.g.shape(x).to_vec()
    }

    fn push(&mut self, op: Op, shape: Vec<usize>) -> NodeId {
        self.g.push(op, shape)
    }

    fn konst(&mut self, c: f64) -> NodeId {
        self.push(Op::Const(c), vec![])
    }

    fn un(&mut self, u: Unary, x: NodeId) -> NodeId {
        self.push(Op::Unary(u, x), self.shape(x))
    }

    fn bin(&mut self, op: Binary, x: NodeId, y: NodeId) -> NodeId {
        let s = broadcast(&self.shape(x), &self.shape(y));
        self.push(Op::Binary(op, x, y), s)
    }

    fn select(&mut self, c: NodeId, x: NodeId, y: NodeId) -> NodeId {
        let s = broadcast(&broadcast(&self.shape(c), &self.shape(x)), &self.shape(y));
        self.push(Op::Select(c, x, y), s)
    }

    fn reshape(&mut self, x: NodeId, shape: Vec<usize>) -> NodeId {
        if self.g.shape(x) == shape.as_slice() {
            x
        } else {
            self.push(Op::Reshape(x), shape)
        }
    }

    fn transpose(&mut self, x: NodeId) -> NodeId {
        let mut s = self.shape(x);
        let n = s.len();
        // A rank the forward graph should not have; the interpreter reports it when it runs.
        if n >= 2 {
            s.swap(n - 2, n - 1);
        }
        self.push(Op::Transpose(x), s)
    }

    /// A product of operands with at least two axes each.
    fn matmul(&mut self, x: NodeId, y: NodeId) -> NodeId {
        let (sx, sy) = (self.shape(x), self.shape(y));
        let mut s = broadcast(&sx[..sx.len() - 2], &sy[..sy.len() - 2]);
        s.extend([sx[sx.len() - 2], sy[sy.len() - 1]]);
        self.push(Op::MatMul(x, y), s)
    }
}

/// The NumPy broadcast of two shapes (assumed compatible).
fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n).map(|i| if dim(a, i) == 1 { dim(b, i) } else { dim(a, i) }).collect()
}

/// The contribution of `y = u(x)` to x, or None where the derivative is zero everywhere.
fn unary(b: &mut B, u: Unary, x: NodeId, y: NodeId, gy: NodeId) -> Option<NodeId> {
    use Binary::{Div, Mul};
    Some(match u {
        Unary::Neg => b.un(Unary::Neg, gy),
        Unary::Abs => {
            let s = b.un(Unary::Sign, x);
            b.bin(Mul, gy, s)
        }
        // From y rather than x: one node fewer, and the same value.
        Unary::Sqrt => {
            let two = b.konst(2.0);
            let d = b.bin(Mul, two, y);
            b.bin(Div, gy, d)
        }
        Unary::Exp => b.bin(Mul, gy, y),
        Unary::Log => b.bin(Div, gy, x),
        Unary::Sin => {
            let c = b.un(Unary::Cos, x);
            b.bin(Mul, gy, c)
        }
        Unary::Cos => {
            let s = b.un(Unary::Sin, x);
            let n = b.un(Unary::Neg, s);
            b.bin(Mul, gy, n)
        }
        Unary::Tanh => {
            let (one, yy) = (b.konst(1.0), b.bin(Mul, y, y));
            let d = b.bin(Binary::Sub, one, yy);
            b.bin(Mul, gy, d)
        }
        Unary::Erf => {
            let xx = b.bin(Mul, x, x);
            let e = b.un(Unary::Neg, xx);
            let e = b.un(Unary::Exp, e);
            let k = b.konst(std::f64::consts::FRAC_2_SQRT_PI);
            let d = b.bin(Mul, k, e);
            b.bin(Mul, gy, d)
        }
        Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Not => return None,
    })
}

/// The contributions of `z = op(x, y)` at the broadcast shape of z (the caller sums them back).
fn binary(
    b: &mut B,
    op: Binary,
    x: NodeId,
    y: NodeId,
    z: NodeId,
    gz: NodeId,
    wants: &dyn Fn(NodeId) -> bool,
) -> Contribs {
    use Binary::*;
    let mut out = Contribs::new();
    let (wx, wy) = (wants(x), wants(y));
    match op {
        Add | Sub => {
            if wx {
                out.push((x, gz));
            }
            if wy {
                out.push((y, if op == Sub { b.un(Unary::Neg, gz) } else { gz }));
            }
        }
        Mul => {
            if wx {
                out.push((x, b.bin(Mul, gz, y)));
            }
            if wy {
                out.push((y, b.bin(Mul, gz, x)));
            }
        }
        Div => {
            if wx {
                out.push((x, b.bin(Div, gz, y)));
            }
            if wy {
                let t = b.bin(Mul, gz, z);
                let t = b.bin(Div, t, y);
                out.push((y, b.un(Unary::Neg, t)));
            }
        }
        Pow => {
            if wx {
                // y x^(y-1) rather than y z / x, which is 0/0 at x = 0 (x^2 must give 0 there).
                let one = b.konst(1.0);
                let ym1 = b.bin(Sub, y, one);
                let p = b.bin(Pow, x, ym1);
                let d = b.bin(Mul, y, p);
                out.push((x, b.bin(Mul, gz, d)));
            }
            if wy {
                // z log x is 0 * -inf at x = 0; the limit of x^y log x there is 0 for y > 0.
                let zero = b.konst(0.0);
                let at0 = b.bin(Eq, x, zero);
                let l = b.un(Unary::Log, x);
                let d = b.bin(Mul, z, l);
                let d = b.select(at0, zero, d);
                out.push((y, b.bin(Mul, gz, d)));
            }
        }
        // torch's convention: the first operand only where it strictly wins, so relu = max(x, 0)
        // has derivative 0 at 0; ties and NaNs send the gradient to the second operand.
        Max | Min => {
            let first = b.bin(if op == Max { Gt } else { Lt }, x, y);
            let zero = b.konst(0.0);
            if wx {
                out.push((x, b.select(first, gz, zero)));
            }
            if wy {
                out.push((y, b.select(first, zero, gz)));
            }
        }
        Eq | Ne | Lt | Le | Gt | Ge | And | Or => {}
    }
    out
}

/// The contribution of `y = op(x)` over `axes` (all when empty) to x.
fn reduce(b: &mut B, op: Reduce, x: NodeId, axes: &[usize], y: NodeId, gy: NodeId) -> Result<NodeId, String> {
    let sx = b.shape(x);
    let axes: Vec<usize> = if axes.is_empty() { (0..sx.len()).collect() } else { axes.to_vec() };
    if axes.iter().any(|&a| a >= sx.len()) {
        return Err(format!("reduction axes {axes:?} of shape {sx:?}"));
    }
    // The adjoint with the reduced axes kept as size 1, which broadcasts against x.
    let keep: Vec<usize> = sx.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let gk = b.reshape(gy, keep.clone());
    let c = match op {
        Reduce::Sum => gk,
        Reduce::Mean => {
            let n = b.konst(axes.iter().map(|&a| sx[a]).product::<usize>() as f64);
            b.bin(Binary::Div, gk, n)
        }
        // torch's amax convention: the gradient is shared equally among the tied extrema.
        Reduce::Max | Reduce::Min => {
            let yk = b.reshape(y, keep.clone());
            let mask = b.bin(Binary::Eq, x, yk);
            let ties = b.push(Op::Reduce { op: Reduce::Sum, arg: mask, axes, keepdims: true }, keep);
            let share = b.bin(Binary::Div, gk, ties);
            b.bin(Binary::Mul, mask, share)
        }
        // x / |x| is 0/0 at the origin, where the norm's subgradient 0 is taken instead.
        Reduce::Norm => {
            let yk = b.reshape(y, keep);
            let zero = b.konst(0.0);
            let at0 = b.bin(Binary::Eq, yk, zero);
            let q = b.bin(Binary::Div, gk, yk);
            let q = b.select(at0, zero, q);
            b.bin(Binary::Mul, x, q)
        }
        Reduce::ArgMax => return Err("argmax has no derivative".into()),
    };
    Ok(if b.g.shape(c) == sx.as_slice() { c } else { b.push(Op::Expand(c), sx) })
}

/// The contributions of `x @ y` with NumPy's rules: 1-D operands are promoted to a row (left)
/// or a column (right), both sides of the product are taken in the promoted batched form, and
/// the results are summed over broadcast batch axes and reshaped back.
fn matmul(b: &mut B, x: NodeId, y: NodeId, gz: NodeId, wants: &dyn Fn(NodeId) -> bool) -> Result<Contribs, String> {
    let (sx, sy) = (b.shape(x), b.shape(y));
    if sx.is_empty() || sy.is_empty() {
        return Err(format!("matmul of shapes {sx:?} and {sy:?}"));
    }
    let x2 = if sx.len() == 1 { b.reshape(x, vec![1, sx[0]]) } else { x };
    let y2 = if sy.len() == 1 { b.reshape(y, vec![sy[0], 1]) } else { y };
    let (sx2, sy2) = (b.shape(x2), b.shape(y2));
    let mut s = broadcast(&sx2[..sx2.len() - 2], &sy2[..sy2.len() - 2]);
    s.extend([sx2[sx2.len() - 2], sy2[sy2.len() - 1]]);
    let gz2 = b.reshape(gz, s);
    let mut out = Contribs::new();
    if wants(x) {
        let t = b.transpose(y2);
        let c = b.matmul(gz2, t);
        let c = unbroadcast(b.g, c, &sx2)?;
        out.push((x, b.reshape(c, sx)));
    }
    if wants(y) {
        let t = b.transpose(x2);
        let c = b.matmul(t, gz2);
        let c = unbroadcast(b.g, c, &sy2)?;
        out.push((y, b.reshape(c, sy)));
    }
    Ok(out)
}

/// The contributions of `x = solve(a, r)` (node `x`): dr = solve(a^T, gx), da = -dr x^T.
fn solve(b: &mut B, a: NodeId, r: NodeId, x: NodeId, gx: NodeId, wants: &dyn Fn(NodeId) -> bool) -> Contribs {
    let mut out = Contribs::new();
    if !wants(a) && !wants(r) {
        return out;
    }
    let at = b.transpose(a);
    // Linear-algebra nodes are untyped containers (shape []); their result is read by Output.
    let s = b.push(Op::Linalg(Linalg::Solve, vec![at, gx]), vec![]);
    let dr = b.push(Op::Output(s, 0), b.shape(r));
    if wants(a) {
        let sr = b.shape(r);
        let p = if sr.len() == 1 {
            let col = b.reshape(dr, vec![sr[0], 1]);
            let row = b.reshape(x, vec![1, sr[0]]);
            b.matmul(col, row)
        } else {
            let xt = b.transpose(x);
            b.matmul(dr, xt)
        };
        out.push((a, b.un(Unary::Neg, p)));
    }
    if wants(r) {
        out.push((r, dr));
    }
    out
}
