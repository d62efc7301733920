//! One node computed from given operand values: the interpreter's operations as a library for
//! other backends (the JIT executor runs everything fusion leaves outside kernels through here),
//! so a library call computes exactly what the interpreter computes.

use super::{eval, linalg, ops, random, InterpError, Scalar};
use crate::ir::{Graph, NodeId, Op};
use ndarray::{ArrayD, IxDyn};

/// Per node: whether it is hyperparameter arithmetic, computed on the host in f64 (see the
/// interpreter's [`Scalar`] doc).
pub fn hyper_nodes(g: &Graph) -> Vec<bool> {
    eval::hyper(g)
}

/// The f64 value of hyperparameter node `id` from its operands' values (`None` for operands it
/// does not read; a select reads its condition and taken side only), as the interpreter computes
/// it.
pub fn host_scalar(
    g: &Graph,
    id: NodeId,
    step: u64,
    value: impl Fn(NodeId) -> Option<f64>,
) -> Result<f64, InterpError> {
    let x = |a: NodeId| value(a).ok_or_else(|| InterpError::new(id, "operand not computed"));
    Ok(match &g.nodes[id].op {
        Op::Const(c) => *c,
        Op::Step => step as f64,
        Op::Unary(u, a) => ops::unary_scalar(*u, x(*a)?),
        Op::Binary(b, p, q) => ops::binary_scalar(*b, x(*p)?, x(*q)?),
        Op::Select(c, a, b) => x(if x(*c)? != 0.0 { *a } else { *b })?,
        _ => return Err(InterpError::new(id, "not hyperparameter arithmetic")),
    })
}

/// Computes node `id` of `g` from its operands' values `args` (in [`Op::operands`] order; for a
/// select on a scalar condition the untaken side may be any tensor, it is not read) at `step`,
/// drawing random numbers with `seed`. Returns its results (several for a decomposition).
/// Inputs, the parameter, state, group sums and `Output` are the caller's business.
pub fn compute_node<T: Scalar>(
    g: &Graph,
    id: NodeId,
    args: &[&ArrayD<T>],
    step: u64,
    seed: u64,
) -> Result<Vec<ArrayD<T>>, InterpError> {
    let shape = g.nodes[id].shape.as_slice();
    let at = |e: String| InterpError::new(id, e);
    let one = |r: Result<ArrayD<T>, String>| r.map(|v| vec![v]).map_err(at);
    let scalar = |x: T| vec![ArrayD::from_elem(IxDyn(&[]), x)];
    let arg = |k: usize| args.get(k).copied().ok_or_else(|| at(format!("operand {k} not given")));
    match &g.nodes[id].op {
        Op::Const(c) => Ok(scalar(T::from_f64(*c))),
        Op::Fill(c) => Ok(vec![ArrayD::from_elem(IxDyn(shape), T::from_f64(*c))]),
        Op::Step => Ok(scalar(T::from_f64(step as f64))),
        Op::Unary(u, _) => Ok(vec![ops::unary(*u, arg(0)?)]),
        Op::Binary(b, ..) => one(ops::binary(*b, arg(0)?, arg(1)?)),
        Op::Select(..) => {
            let c = arg(0)?;
            if c.ndim() == 0 {
                // Nonzero is true, NaN included (as `bool(nan)` in Python).
                let taken = if c[IxDyn(&[])] != T::zero() { arg(1)? } else { arg(2)? };
                one(ops::expand(taken, shape))
            } else {
                one(ops::select(c, arg(1)?, arg(2)?))
            }
        }
        Op::Reduce { op, axes, keepdims, .. } => one(ops::reduce(*op, arg(0)?, axes, *keepdims)),
        Op::MatMul(..) => one(ops::matmul(arg(0)?, arg(1)?)),
        Op::Transpose(_) => one(ops::transpose(arg(0)?)),
        Op::Reshape(_) => one(ops::reshape(arg(0)?, shape)),
        Op::Expand(_) => one(ops::expand(arg(0)?, shape)),
        Op::Slice { ranges, drop, .. } => one(ops::slice(arg(0)?, ranges, drop, shape)),
        Op::Embed { ranges, drop, .. } => one(ops::embed(arg(0)?, ranges, drop, shape)),
        Op::Concat { axis, .. } => one(ops::concat(args, *axis)),
        Op::Random { dist, stream } => Ok(vec![random::random(*dist, seed, *stream, step, shape)]),
        Op::Linalg(kind, _) => linalg::run(*kind, args).map_err(at),
        Op::Diag(_) => one(ops::diag(arg(0)?)),
        Op::Triangle(_, upper) => one(ops::triangle(arg(0)?, *upper)),
        op => Err(at(format!("{op:?} is not computed from operand values"))),
    }
}

/// The seed graph `k` of a rule application draws with (see the interpreter's random module).
pub fn graph_seed(seed: u64, k: usize) -> u64 {
    random::param_seed(seed, k)
}
