//! The parameter update folded into the product that computes it. A rule whose direction ends
//! in a matrix product, `alpha (a @ b)` (GaLore's deprojection `scale (p @ n)`, any low-rank
//! update), would otherwise run the product into a buffer of the parameter's size and then a
//! kernel `param + alpha u` over it: two passes over a parameter-sized tensor, one of them a
//! write and a read of `u`. When that kernel computes nothing else, the executor instead
//! accumulates the product straight into the parameter (`param += alpha a b`, the GEMM's own
//! epilogue), in place. The rounding differs from the two-pass form only in how the epilogue
//! combines `alpha`, the product and the parameter (within the executor's tolerance against
//! the interpreter).

use super::Lane;
use crate::fuse::{Place, Schedule};
use crate::ir::{Binary, Graph, NodeId, Op};

/// How the product is scaled: a constant, or a scalar node (negated when `negate`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Alpha {
    Const(f64),
    Node { id: NodeId, negate: bool },
}

/// `param += alpha (a @ b)` in place of kernel `kernel` and the product it reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct GemmUpdate {
    pub kernel: usize,
    pub a: NodeId,
    pub b: NodeId,
    pub alpha: Alpha,
}

impl GemmUpdate {
    /// The scale's value, given how to read a scalar node.
    pub fn alpha<T: Lane, E>(&self, scalar: impl FnOnce(NodeId) -> Result<T, E>) -> Result<T, E> {
        Ok(match self.alpha {
            Alpha::Const(c) => T::from_f64(c),
            Alpha::Node { id, negate } => {
                let v = scalar(id)?;
                if negate {
                    -v
                } else {
                    v
                }
            }
        })
    }

    /// The update in words, for `optic explain`: `applied` is the new parameter's node.
    pub fn describe(&self, applied: NodeId) -> String {
        let alpha = match self.alpha {
            Alpha::Const(c) => format!("{c}"),
            Alpha::Node { id, negate: false } => format!("%{id}"),
            Alpha::Node { id, negate: true } => format!("-%{id}"),
        };
        format!(
            "%{applied} runs as param += {alpha} * (%{} @ %{}), accumulated by the product in place; \
             kernel k{} does not run",
            self.a, self.b, self.kernel
        )
    }

    /// The nodes the update reads (resolved): the product's operands and a scalar scale.
    pub fn needs(&self) -> Vec<NodeId> {
        let mut v = vec![self.a, self.b];
        if let Alpha::Node { id, .. } = self.alpha {
            v.push(id);
        }
        v
    }
}

/// The update `applied` as an accumulating product, when it has that form: `applied` is
/// `param ± d` computed in place into the parameter by a kernel that stores nothing else and
/// computes nothing but `d = alpha (a @ b)` from a 2-D library product of the parameter's shape
/// that nothing else reads, with the parameter read by nothing else either. `readers` lists,
/// per node, where its readers run; `in_param` tells whether the kernel's store lands in the
/// parameter.
pub(super) fn find(
    g: &Graph,
    sched: &Schedule,
    readers: &[Vec<Place>],
    applied: NodeId,
    in_param: bool,
) -> Option<GemmUpdate> {
    let r = sched.resolve(applied);
    let Place::Kernel(k) = sched.place[r] else { return None };
    let kernel = &sched.kernels[k];
    if !in_param || kernel.stores != [r] {
        return None;
    }
    let is_param = |x: NodeId| g.nodes[sched.resolve(x)].op == Op::Param;
    let (negate, d) = match g.nodes[r].op {
        Op::Binary(Binary::Add, x, y) if is_param(x) => (false, y),
        Op::Binary(Binary::Add, x, y) if is_param(y) => (false, x),
        Op::Binary(Binary::Sub, x, y) if is_param(x) => (true, y),
        _ => return None,
    };
    let d = sched.resolve(d);
    let sign = if negate { -1.0 } else { 1.0 };
    let is_product = |x: NodeId| matches!(g.nodes[x].op, Op::MatMul(..));
    let (alpha, product, scale) = match g.nodes[d].op {
        Op::MatMul(..) => (Alpha::Const(sign), d, None),
        Op::Binary(Binary::Mul, x, y) => {
            let (x, y) = (sched.resolve(x), sched.resolve(y));
            let (s, m) = if is_product(y) && g.shape(x).is_empty() {
                (x, y)
            } else if is_product(x) && g.shape(y).is_empty() {
                (y, x)
            } else {
                return None;
            };
            let alpha = match g.nodes[s].op {
                Op::Const(c) => Alpha::Const(sign * c),
                _ if kernel.scalars.contains(&s) => Alpha::Node { id: s, negate },
                _ => return None,
            };
            (alpha, m, Some(s))
        }
        _ => return None,
    };
    let Op::MatMul(a, b) = g.nodes[product].op else { return None };
    let (a, b) = (sched.resolve(a), sched.resolve(b));
    let two_d = |x: NodeId| g.shape(x).len() == 2;
    let param = g.nodes.iter().position(|n| n.op == Op::Param)?;
    let only_this_kernel = |x: NodeId| readers[x].len() == 1 && readers[x][0] == Place::Kernel(k);
    let body_ok = kernel.body.iter().all(|&n| n == r || n == d || Some(n) == scale);
    let ok = sched.place[product] == Place::Library
        && g.shape(product) == g.shape(r)
        && two_d(product)
        && two_d(a)
        && two_d(b)
        && a != param
        && b != param
        && body_ok
        && only_this_kernel(product)
        && only_this_kernel(param);
    ok.then_some(GemmUpdate { kernel: k, a, b, alpha })
}
