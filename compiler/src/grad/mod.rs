//! Reverse-mode automatic differentiation as an IR -> IR transform: [`differentiate`] appends
//! to a graph the nodes computing the gradient of a scalar loss with respect to chosen nodes, so
//! the gradient runs wherever the graph runs (the interpreter, later a JIT) and fusion sees the
//! forward and backward passes together. Only nodes on a path from a differentiated node to the
//! loss get an adjoint (a path counts only through operands with a nonzero derivative: a
//! comparison, `sign`, `floor` or a select's condition cut it), and each operand's contributions
//! are summed with `Binary::Add`. The rules (module `vjp`) follow torch's conventions at kinks:
//! `max(x, 0)` has derivative 0 at 0, a reduced maximum shares its gradient among ties, `x ^ 2`
//! has a finite gradient at 0. Linear-algebra decompositions on such a path are an error; a
//! linear solve is differentiated. As in torch and JAX, the untaken side of a select still has
//! its derivative computed (times a zero adjoint), so a NaN or infinite derivative there (`log`
//! at 0 guarded by an `if`) makes the gradient NaN: guard the operand, not only the result.

mod vjp;

use crate::ir::{Binary, Graph, Linalg, NodeId, Op, Reduce, Unary};
use std::fmt;

/// Why a graph could not be differentiated: the node at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradError {
    /// The node at fault (e.g. a decomposition on the path to the loss).
    pub node: NodeId,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for GradError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at %{}: {}", self.node, self.message)
    }
}

impl std::error::Error for GradError {}

impl GradError {
    fn new(node: NodeId, message: impl Into<String>) -> Self {
        GradError { node, message: message.into() }
    }
}

/// Appends to `g` the nodes computing d(loss)/d(x) for each x in `wrt` (a 0-d `loss` node),
/// returns those gradient nodes (each of the shape of its x; zeros (`Op::Fill(0.0)`) where x
/// does not reach the loss).
///
/// A `wrt` node need not be a leaf: the gradient is then taken with respect to its value, and
/// other `wrt` nodes upstream of it still get their gradient through it. A group reduction
/// ([`Op::Group`]) is differentiated as its argument, as for a single parameter.
pub fn differentiate(g: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>, GradError> {
    differentiate_except(g, loss, wrt, &[])
}

/// [`differentiate`], with the derivative of every node of `stops` taken as zero (the language's
/// `detach(x)`, torch's `x.detach()`: its value is `x`'s, nothing flows back through it).
pub fn differentiate_except(
    g: &mut Graph,
    loss: NodeId,
    wrt: &[NodeId],
    stops: &[NodeId],
) -> Result<Vec<NodeId>, GradError> {
    let n = g.nodes.len();
    if loss >= n {
        return Err(GradError::new(loss, format!("no such node (the graph has {n})")));
    }
    if !g.shape(loss).is_empty() {
        return Err(GradError::new(loss, format!("the loss must be a scalar, it has shape {:?}", g.shape(loss))));
    }
    if let Some(&w) = wrt.iter().find(|&&w| w >= n) {
        return Err(GradError::new(w, format!("no such node (the graph has {n})")));
    }
    let active = active(g, loss, wrt, stops)?;
    let decomposition = (0..=loss).filter(|&i| active[i]).find_map(|i| match g.nodes[i].op {
        Op::Linalg(kind, _) => Some((i, kind)),
        _ => None,
    });
    // A solve is differentiated at its output, whose edges skip the linear-algebra node.
    if let Some((id, kind)) = decomposition {
        let msg = format!("not differentiable: {} (used on the path from a parameter to the loss)", name(kind));
        return Err(GradError::new(id, msg));
    }
    let mut adj: Vec<Option<NodeId>> = vec![None; loss + 1];
    // No seed when nothing reaches the loss: it would be a dead node.
    if active[loss] {
        adj[loss] = Some(g.push(Op::Const(1.0), Vec::new()));
    }
    for id in (0..=loss).rev() {
        let Some(gy) = adj[id].filter(|_| active[id]) else { continue };
        let wants = |x: NodeId| active[x];
        for (x, c) in vjp::vjp(g, id, gy, &wants).map_err(|m| GradError::new(id, m))? {
            debug_assert_eq!(g.shape(c), g.shape(x), "the contribution of %{id} to %{x}");
            adj[x] = Some(match adj[x] {
                None => c,
                Some(p) => g.push(Op::Binary(Binary::Add, p, c), g.shape(x).to_vec()),
            });
        }
    }
    // A node listed twice must not cost two zero tensors.
    let mut zeros: Vec<(NodeId, NodeId)> = Vec::new();
    let mut grads = Vec::with_capacity(wrt.len());
    for &w in wrt {
        let a = match (adj.get(w).copied().flatten(), zeros.iter().find(|(x, _)| *x == w)) {
            (Some(a), _) => a,
            (None, Some(&(_, z))) => z,
            (None, None) => {
                let z = g.push(Op::Fill(0.0), g.shape(w).to_vec());
                zeros.push((w, z));
                z
            }
        };
        grads.push(a);
    }
    Ok(grads)
}

/// The name of a decomposition in messages, as the language spells it.
fn name(kind: Linalg) -> &'static str {
    match kind {
        Linalg::Svd { .. } => "svd",
        Linalg::RandomizedSvd { .. } => "randomized_svd",
        Linalg::Qr => "qr",
        Linalg::Eigh => "eigh",
        Linalg::Solve => "solve",
        Linalg::Cholesky => "cholesky",
    }
}

/// The operands of `id` through which its derivative can be nonzero. Ops that are piecewise
/// constant (comparisons, `sign`, `floor`, `argmax`, a select's condition) have none, so the
/// nodes only they reach are not on any differentiable path and get no adjoint. The output of
/// a solve reaches through the linear-algebra node to the solve's operands.
fn edges(g: &Graph, id: NodeId) -> Vec<NodeId> {
    use Binary as B;
    match &g.nodes[id].op {
        Op::Const(_) | Op::Fill(_) | Op::Step | Op::Input(_) | Op::Param | Op::State(_) | Op::Random { .. } => vec![],
        Op::Unary(Unary::Sign | Unary::Floor | Unary::Ceil | Unary::Round | Unary::Not, _) => vec![],
        Op::Binary(B::Eq | B::Ne | B::Lt | B::Le | B::Gt | B::Ge | B::And | B::Or, _, _) => vec![],
        Op::Reduce { op: Reduce::ArgMax, .. } => vec![],
        Op::Unary(_, a) | Op::Transpose(a) | Op::Reshape(a) | Op::Expand(a) | Op::Diag(a) | Op::Triangle(a, _) => {
            vec![*a]
        }
        // A recorded value stands for its argument (straight through, whatever was supplied).
        Op::Reduce { arg, .. }
        | Op::Group { arg, .. }
        | Op::Slice { arg, .. }
        | Op::Embed { arg, .. }
        | Op::Recorded { arg, .. } => vec![*arg],
        Op::Binary(_, a, b) | Op::MatMul(a, b) | Op::Select(_, a, b) => vec![*a, *b],
        Op::Concat { args, .. } | Op::Linalg(_, args) => args.clone(),
        Op::Output(a, k) => match g.nodes.get(*a).map(|n| &n.op) {
            Some(Op::Linalg(Linalg::Solve, args)) if *k == 0 => args.clone(),
            _ => vec![*a],
        },
    }
}

/// Per node up to `loss`: whether it lies on a differentiable path from a `wrt` node to `loss`.
fn active(g: &Graph, loss: NodeId, wrt: &[NodeId], stops: &[NodeId]) -> Result<Vec<bool>, GradError> {
    let deps: Vec<Vec<NodeId>> =
        (0..=loss).map(|i| if stops.contains(&i) { Vec::new() } else { edges(g, i) }).collect();
    for (i, d) in deps.iter().enumerate() {
        if let Some(&e) = d.iter().find(|&&e| e >= i) {
            return Err(GradError::new(i, format!("operand %{e} is not an earlier node")));
        }
    }
    let mut fwd = vec![false; loss + 1];
    for i in 0..=loss {
        fwd[i] = wrt.contains(&i) || deps[i].iter().any(|&e| fwd[e]);
    }
    let mut bwd = vec![false; loss + 1];
    bwd[loss] = true;
    for i in (0..=loss).rev() {
        if bwd[i] {
            for &e in &deps[i] {
                bwd[e] = true;
            }
        }
    }
    Ok(fwd.iter().zip(&bwd).map(|(f, b)| *f && *b).collect())
}

/// Sums the adjoint `adj` (of a broadcast result) back to an operand of shape `to`: over the
/// leading axes `to` lacks and the axes where `to` has size 1, then reshapes to `to`. Returns
/// `adj` itself when the shapes already agree, so no node is added for the common case.
pub fn unbroadcast(g: &mut Graph, adj: NodeId, to: &[usize]) -> Result<NodeId, String> {
    let from = g.shape(adj).to_vec();
    if from == to {
        return Ok(adj);
    }
    let lead = from.len().checked_sub(to.len()).ok_or_else(|| format!("{to:?} does not broadcast to {from:?}"))?;
    let mut axes = Vec::new();
    for (i, &d) in from.iter().enumerate() {
        let t = if i < lead { 1 } else { to[i - lead] };
        if t != d && t != 1 {
            return Err(format!("{to:?} does not broadcast to {from:?}"));
        }
        // Summing over a size-1 axis changes nothing: the reshape below removes it.
        if t == 1 && d != 1 {
            axes.push(i);
        }
    }
    let summed = if axes.is_empty() {
        adj
    } else {
        let shape = from.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
        g.push(Op::Reduce { op: Reduce::Sum, arg: adj, axes, keepdims: false }, shape)
    };
    Ok(if g.shape(summed) == to { summed } else { g.push(Op::Reshape(summed), to.to_vec()) })
}
