//! Algebra the executor applies before fusion, where it makes a kernel cheaper for at most one
//! rounding: a tensor divided by a hyperparameter becomes a product with the hyperparameter's
//! reciprocal, computed once per step on the host in f64. Division and square root share one
//! unit on x86-64, and a `divps` on four lanes takes as long as three multiplies: AdamW's
//! `sqrt(v) / sqrt(1 - beta2^t)` is one division per element next to the one it cannot avoid,
//! and with two divisions and a square root per four lanes the kernel is bound by that unit,
//! not by memory. The product differs from the quotient by at most one unit in the last place;
//! the reference interpreter keeps the division, and the tests hold the two backends to a few
//! ulp. The reciprocal is appended at the end of the graph, after the node that reads it: only
//! host arithmetic ever comes after its reader, which is harmless because all host arithmetic
//! runs before the step's tensors, and it keeps every other node's id.
//!
//! Host arithmetic that reads no step (`2 - 1`, the exponent the gradient of `x^2` multiplies by)
//! becomes the constant it always computes, so a kernel sees the number itself, not a scalar
//! argument: `pow(x, 1)` compiles to `x` instead of the inline `exp(y log x)`, which takes
//! Cranelift ten times longer to compile than the rest of the kernel.
//!
//! A matrix product whose inner dimension is 1, `a[m, 1] @ b[1, n]` (the gradient of `x @ w`
//! for a one-column `w`), is the broadcast product `a * b`: one multiply per element, the same
//! bits, and an elementwise node that fuses with its readers (a ReLU mask) instead of a library
//! call that writes an m×n tensor for the next kernel to read back.

use crate::interp::single;
use crate::ir::{Binary, Graph, Op};

/// `g` with each host node whose value does not depend on the step replaced by that value as a
/// constant (node ids unchanged); `hyper` marks `g`'s host arithmetic.
pub fn constants(g: &Graph, hyper: &[bool]) -> Graph {
    let mut out = g.clone();
    let mut known: Vec<Option<f64>> = vec![None; g.nodes.len()];
    for id in (0..g.nodes.len()).filter(|&id| hyper[id]) {
        if g.nodes[id].op == Op::Step {
            continue;
        }
        if let Ok(v) = single::host_scalar(g, id, 0, |a| known[a]) {
            known[id] = Some(v);
            out.nodes[id].op = Op::Const(v);
        }
    }
    out
}

/// `g` with each 2-D matrix product of inner dimension 1 turned into the broadcast product of its
/// operands (node ids unchanged).
pub fn outer_products(g: &Graph) -> Graph {
    let mut out = g.clone();
    for node in &mut out.nodes {
        let Op::MatMul(a, b) = node.op else { continue };
        let (sa, sb) = (g.shape(a), g.shape(b));
        if sa.len() == 2 && sb.len() == 2 && sa[1] == 1 && sb[0] == 1 && node.shape == [sa[0], sb[1]] {
            node.op = Op::Binary(Binary::Mul, a, b);
        }
    }
    out
}

/// `g` with each tensor-by-hyperparameter division turned into a product with the reciprocal;
/// `hyper` marks `g`'s host arithmetic.
pub fn reciprocals(g: &Graph, hyper: &[bool]) -> Graph {
    let mut out = g.clone();
    let mut made: Vec<(usize, usize)> = Vec::new();
    for id in 0..g.nodes.len() {
        let Op::Binary(Binary::Div, x, s) = g.nodes[id].op else { continue };
        if hyper[id] || !hyper[s] || !g.nodes[s].shape.is_empty() || g.nodes[x].shape.is_empty() {
            continue;
        }
        let r = match made.iter().find(|(of, _)| *of == s) {
            Some(&(_, r)) => r,
            None => {
                let one = out.push(Op::Const(1.0), Vec::new());
                let r = out.push(Op::Binary(Binary::Div, one, s), Vec::new());
                made.push((s, r));
                r
            }
        };
        out.nodes[id].op = Op::Binary(Binary::Mul, x, r);
    }
    out
}
