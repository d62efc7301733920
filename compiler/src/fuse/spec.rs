//! The structural program of a kernel ([`KernelSpec`]): what the JIT compiles, and the key of its
//! cache. It names no graph node, only loads, scalars and earlier values of the loop body, so two
//! parameters whose rules fuse alike share one compiled kernel whatever their sizes.

use super::{operand_kind, Operand, Place, Schedule};
use crate::ir::{Binary, Graph, NodeId, Op, Unary};
use std::fmt;

/// One value of a kernel's loop body, computed per element. Operands index earlier values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KOp {
    /// Element `i` of loaded tensor `k`.
    Load(u32),
    /// Scalar argument `k`, the same for every element.
    Scalar(u32),
    /// A constant (the bits of an f64, rounded to the kernel's type).
    Const(u64),
    /// An elementwise function.
    Unary(Unary, u32),
    /// An elementwise function of two values.
    Binary(Binary, u32, u32),
    /// `c != 0 ? a : b` (NaN counts as true).
    Select(u32, u32, u32),
}

/// How a kernel indexes a loaded tensor, for element `i` of a kernel whose rows have `period`
/// elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadKind {
    /// Element `i`.
    Full,
    /// Element `i % period`: a block repeated for every row.
    Row,
    /// Element `i / period`: one value per row.
    Col,
}

/// A kernel's loop body: values in order, and which of them are written out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KernelSpec {
    /// The body's values.
    pub ops: Vec<KOp>,
    /// Values written out, in the order of the kernel's stores.
    pub stores: Vec<u32>,
    /// How it indexes each tensor it loads.
    pub loads: Vec<LoadKind>,
    /// How many scalars it takes.
    pub scalars: u32,
}

impl KOp {
    /// A constant of value `c`.
    pub fn constant(c: f64) -> KOp {
        KOp::Const(c.to_bits())
    }
}

/// Builds the spec of kernel `k` of `sched`, with its loads and scalars (resolved graph nodes).
pub(super) fn build(g: &Graph, sched: &Schedule, k: usize) -> (KernelSpec, Vec<NodeId>, Vec<NodeId>) {
    let kernel = &sched.kernels[k];
    let mut spec = KernelSpec::default();
    let (mut loads, mut scalars): (Vec<NodeId>, Vec<NodeId>) = (Vec::new(), Vec::new());
    // (graph node, how it is read) -> body value, for nodes of this kernel and for loads/scalars
    // already taken.
    let mut local: std::collections::HashMap<(NodeId, Option<Operand>), u32> = Default::default();
    let push = |spec: &mut KernelSpec, op: KOp| {
        spec.ops.push(op);
        spec.ops.len() as u32 - 1
    };
    for &id in &kernel.body {
        let shape = g.shape(id);
        let mut operand = |spec: &mut KernelSpec, a: NodeId| -> u32 {
            let a = sched.resolve(a);
            if let Some(&v) = local.get(&(a, None)) {
                return v;
            }
            assert!(sched.place[a] != Place::Kernel(k), "kernel bodies are in topological order");
            let kind = operand_kind(g.shape(a), shape).expect("fusion admitted only broadcastable operands");
            if let Some(&v) = local.get(&(a, Some(kind))) {
                return v;
            }
            let v = match (kind, &g.nodes[a].op) {
                (Operand::Single, Op::Const(c)) => push(spec, KOp::constant(*c)),
                (Operand::Single, _) => {
                    scalars.push(a);
                    push(spec, KOp::Scalar(scalars.len() as u32 - 1))
                }
                (Operand::Full | Operand::Row(_) | Operand::Col(_), _) => {
                    loads.push(a);
                    spec.loads.push(match kind {
                        Operand::Row(_) => LoadKind::Row,
                        Operand::Col(_) => LoadKind::Col,
                        _ => LoadKind::Full,
                    });
                    push(spec, KOp::Load(loads.len() as u32 - 1))
                }
            };
            local.insert((a, Some(kind)), v);
            v
        };
        let v = match &g.nodes[id].op {
            Op::Fill(c) => push(&mut spec, KOp::constant(*c)),
            Op::Unary(u, a) => {
                let a = operand(&mut spec, *a);
                push(&mut spec, KOp::Unary(*u, a))
            }
            Op::Binary(b, x, y) => {
                let (x, y) = (operand(&mut spec, *x), operand(&mut spec, *y));
                push(&mut spec, KOp::Binary(*b, x, y))
            }
            Op::Select(c, a, b) => {
                let (c, a, b) = (operand(&mut spec, *c), operand(&mut spec, *a), operand(&mut spec, *b));
                push(&mut spec, KOp::Select(c, a, b))
            }
            // A broadcast is its operand, read the broadcasting way.
            Op::Expand(a) => operand(&mut spec, *a),
            op => unreachable!("fusion admitted a non-elementwise op {op:?}"),
        };
        local.insert((id, None), v);
    }
    spec.stores = kernel.stores.iter().map(|s| local[&(*s, None)]).collect();
    spec.scalars = scalars.len() as u32;
    (spec, loads, scalars)
}

impl fmt::Display for KernelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.ops.iter().enumerate() {
            let text = match op {
                KOp::Load(k) => match self.loads.get(*k as usize) {
                    Some(LoadKind::Row) => format!("load {k} (row)"),
                    Some(LoadKind::Col) => format!("load {k} (per row)"),
                    _ => format!("load {k}"),
                },
                KOp::Scalar(k) => format!("scalar {k}"),
                KOp::Const(bits) => format!("const {}", f64::from_bits(*bits)),
                KOp::Unary(u, a) => format!("{u:?} v{a}").to_lowercase(),
                KOp::Binary(b, x, y) => format!("{} v{x} v{y}", format!("{b:?}").to_lowercase()),
                KOp::Select(c, a, b) => format!("select v{c} v{a} v{b}"),
            };
            writeln!(f, "  v{i} = {text}")?;
        }
        let stores: Vec<String> = self.stores.iter().map(|s| format!("v{s}")).collect();
        writeln!(f, "  store {}", stores.join(", "))
    }
}
