//! Fusion: the one place that decides how a graph runs. Every node gets a [`Place`]: host
//! arithmetic in f64 (hyperparameters: scalars computed from constants and the step, exactly as
//! the interpreter does them), a fused loop [`Kernel`], a library call (matmul, reductions,
//! decompositions, data movement: the interpreter's operations), or an alias of another node (a
//! select whose condition is known before the step runs).
//!
//! A kernel is a connected set of elementwise nodes (unary, binary, tensor select, fills and
//! broadcasts) over tensors of one element count whose operands are tensors of that count
//! (loaded), single values (passed by value), or NumPy broadcasts that repeat along rows of a
//! fixed length, the kernel's *period*: a trailing block read again for every row (a bias `[k]`
//! against `[batch, k]`) or one value per row (`[batch, 1]` against `[batch, k]`). A kernel has at
//! most one period, so it runs as rows of equal length. Two elementwise nodes join the same kernel when an
//! edge links them and they sit at the same *library depth*, the number of library calls on the
//! longest path above them: a path that leaves a kernel through a library call and comes back
//! always lands at a greater depth, so kernels never form cycles with the calls between them. A
//! node that can join none of its operands moves down to its readers' depth when they are all
//! elementwise ([`sink_sources`]), so it joins them rather than being stored for them.
//! Nodes under different lazy branches (a select on a scalar known only at run time, which
//! computes only its taken side) never share a kernel, so a kernel never forces the untaken side.
//! A kernel stores a value only where something outside it reads the value; it reads and writes
//! rule state and the parameter in place when nothing outside the kernel reads their old values.

mod print;
mod simplify;
mod spec;

pub use print::print_schedule;
pub use simplify::{constants, outer_products, reciprocals};
pub use spec::{KOp, KernelSpec, LoadKind};

use crate::ir::{Graph, NodeId, Op};

/// Where a node's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A scalar computed on the host in f64 before the step's tensors (hyperparameter arithmetic).
    Host,
    /// Computed inside kernel `k` (materialized only if it is one of the kernel's stores).
    Kernel(usize),
    /// Computed by the library (the interpreter's operation for this node).
    Library,
    /// Never materialized: a transpose that every reader (matrix products) reads in place, as a
    /// view of its operand with the last two axes swapped.
    View,
    /// The same value as another node (a select whose condition was known before the step).
    Alias(NodeId),
    /// Not needed by this step (the untaken side of a select the host decided).
    Unused,
}

/// One fused loop over `len` elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Elements per tensor it loops over.
    pub len: usize,
    /// The row length its broadcast loads repeat over (0 when it has none).
    pub period: usize,
    /// The graph nodes it computes, in topological order.
    pub body: Vec<NodeId>,
    /// Tensors of `len` elements it reads (resolved graph nodes computed outside).
    pub loads: Vec<NodeId>,
    /// Scalars it reads (0-d nodes computed outside).
    pub scalars: Vec<NodeId>,
    /// Body nodes whose values it writes out.
    pub stores: Vec<NodeId>,
    /// The loop body as a structural program, what the JIT compiles and caches.
    pub spec: KernelSpec,
}

/// The result of fusion for one graph and one set of decided selects.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Per node, where its value comes from.
    pub place: Vec<Place>,
    /// The kernels.
    pub kernels: Vec<Kernel>,
    /// The nodes the step needs (resolved through aliases): outputs, state writes.
    pub roots: Vec<NodeId>,
}

impl Schedule {
    /// Follows aliases to the node that computes `id`'s value.
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        while let Place::Alias(t) = self.place[id] {
            id = t;
        }
        id
    }

    /// Nodes that a library call, a kernel or the step's roots read, per node: how many readers
    /// outside the node's own kernel it has (0: never materialized).
    fn outside_readers(&self, g: &Graph) -> Vec<usize> {
        let mut n = vec![0; g.nodes.len()];
        for (id, node) in g.nodes.iter().enumerate() {
            match self.place[id] {
                Place::Library => node.op.operands().into_iter().for_each(|a| n[self.resolve(a)] += 1),
                Place::Kernel(k) => {
                    for a in node.op.operands() {
                        let a = self.resolve(a);
                        if self.place[a] != Place::Kernel(k) {
                            n[a] += 1;
                        }
                    }
                }
                Place::View => node.op.operands().into_iter().for_each(|a| n[self.resolve(a)] += 1),
                Place::Host | Place::Alias(_) | Place::Unused => {}
            }
        }
        self.roots.iter().for_each(|&r| n[r] += 1);
        n
    }
}

/// Whether a select's condition is decided for this schedule: `Some(taken side)` per select
/// node whose condition is host arithmetic, `None` otherwise.
pub type Decided = Vec<Option<bool>>;

/// Decides the places and kernels of `g` for the step's `roots`. `hyper[id]` marks host
/// arithmetic nodes; `decided[id]` gives the taken side of selects whose condition the host
/// already computed (they become aliases).
pub fn fuse(g: &Graph, hyper: &[bool], decided: &Decided, roots: &[NodeId]) -> Schedule {
    let count = g.nodes.len();
    let mut place = vec![Place::Library; count];
    for (id, node) in g.nodes.iter().enumerate() {
        place[id] = if hyper[id] {
            Place::Host
        } else if let (Op::Select(_, a, b), Some(side)) = (&node.op, decided[id]) {
            Place::Alias(if side { *a } else { *b })
        } else {
            Place::Library
        };
    }
    // Reads of the same input, parameter or state slot are one value, loaded once.
    let mut leaves: Vec<(&Op, NodeId)> = Vec::new();
    for (id, node) in g.nodes.iter().enumerate() {
        if matches!(node.op, Op::Input(_) | Op::Param | Op::State(_)) {
            match leaves.iter().find(|(op, _)| **op == node.op) {
                Some(&(_, first)) => place[id] = Place::Alias(first),
                None => leaves.push((&node.op, id)),
            }
        }
    }
    let mut sched = Schedule { place, kernels: Vec::new(), roots: Vec::new() };
    sched.roots = roots.iter().map(|&r| sched.resolve(r)).collect();
    let live = live_nodes(g, &sched);
    let labels = lazy_labels(g, &sched);
    let elementwise: Vec<bool> =
        (0..count).map(|id| live[id] && sched.place[id] == Place::Library && is_elementwise(g, id, &sched)).collect();
    // Library depth: library calls on the longest path above a node (host nodes count nothing).
    let mut depth = vec![0usize; count];
    for id in 0..count {
        if matches!(sched.place[id], Place::Host) {
            continue;
        }
        for a in g.nodes[id].op.operands() {
            let a = sched.resolve(a);
            let hop = usize::from(!elementwise[a] && sched.place[a] != Place::Host);
            depth[id] = depth[id].max(depth[a] + hop);
        }
    }
    let numel = |id: NodeId| g.nodes[id].shape.iter().product::<usize>();
    sink_sources(g, &sched, &elementwise, &live, &labels, &mut depth);
    // Union elementwise nodes linked by an edge at equal depth, length and lazy label, as long as
    // their broadcasts agree on one period.
    let mut parent: Vec<usize> = (0..count).collect();
    let mut period: Vec<usize> =
        (0..count).map(|id| if elementwise[id] { node_period(g, id, &sched) } else { 0 }).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for id in (0..count).filter(|&id| elementwise[id]) {
        for a in g.nodes[id].op.operands() {
            let a = sched.resolve(a);
            if elementwise[a] && depth[a] == depth[id] && numel(a) == numel(id) && labels[a] == labels[id] {
                let (ra, rb) = (find(&mut parent, a), find(&mut parent, id));
                let (pa, pb) = (period[ra], period[rb]);
                if ra != rb && (pa == 0 || pb == 0 || pa == pb) {
                    parent[ra] = rb;
                    period[rb] = pa.max(pb);
                }
            }
        }
    }
    for (place, &live) in sched.place.iter_mut().zip(&live) {
        if !live && *place == Place::Library {
            *place = Place::Unused;
        }
    }
    for id in transposes_read_in_place(g, &sched) {
        sched.place[id] = Place::View;
    }
    let mut kernel_of_root: Vec<Option<usize>> = vec![None; count];
    for id in (0..count).filter(|&id| elementwise[id]) {
        let r = find(&mut parent, id);
        let k = *kernel_of_root[r].get_or_insert_with(|| {
            sched.kernels.push(Kernel {
                len: numel(id),
                period: period[r],
                body: Vec::new(),
                loads: Vec::new(),
                scalars: Vec::new(),
                stores: Vec::new(),
                spec: KernelSpec::default(),
            });
            sched.kernels.len() - 1
        });
        sched.place[id] = Place::Kernel(k);
        sched.kernels[k].body.push(id);
    }
    let readers = sched.outside_readers(g);
    for k in 0..sched.kernels.len() {
        let stores: Vec<NodeId> = sched.kernels[k].body.iter().copied().filter(|&id| readers[id] > 0).collect();
        sched.kernels[k].stores = stores;
        let (spec, loads, scalars) = spec::build(g, &sched, k);
        let kernel = &mut sched.kernels[k];
        (kernel.spec, kernel.loads, kernel.scalars) = (spec, loads, scalars);
    }
    sched
}

/// Moves down to its readers' depth an elementwise node that can join none of its operands (each
/// is a library result, a host value, or a tensor of another size or lazy branch) when every
/// reader is elementwise: it then joins their kernel instead of being stored for it. Without
/// this, such a node sits at the depth of its operands, above a reader that also waits for a
/// library call (Adafactor's `row_var * col_var / mean(row_var)`, whose outer product reads the
/// statistics the mean reduces). Readers are settled first (reverse topological order), so a
/// chain of such nodes moves together; a node only moves down to a reader's depth, so every
/// operand stays at or above its reader and kernels still form no cycle.
fn sink_sources(
    g: &Graph,
    sched: &Schedule,
    elementwise: &[bool],
    live: &[bool],
    labels: &[Option<(NodeId, bool)>],
    depth: &mut [usize],
) {
    let numel = |id: NodeId| g.nodes[id].shape.iter().product::<usize>();
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); g.nodes.len()];
    for (id, node) in g.nodes.iter().enumerate() {
        if live[id] && !matches!(sched.place[id], Place::Alias(_) | Place::Host) {
            node.op.operands().into_iter().for_each(|a| readers[sched.resolve(a)].push(id));
        }
    }
    for id in (0..g.nodes.len()).rev().filter(|&id| elementwise[id] && !sched.roots.contains(&id)) {
        let joins_an_operand = g.nodes[id]
            .op
            .operands()
            .into_iter()
            .map(|a| sched.resolve(a))
            .any(|a| elementwise[a] && depth[a] == depth[id] && numel(a) == numel(id) && labels[a] == labels[id]);
        let by_kernels = !readers[id].is_empty() && readers[id].iter().all(|&r| elementwise[r]);
        if !joins_an_operand && by_kernels {
            let lowest = readers[id].iter().map(|&r| depth[r]).min().unwrap_or(depth[id]);
            depth[id] = depth[id].max(lowest);
        }
    }
}

/// Transposes whose every reader is a matrix product (which reads any strides) and that no root
/// needs as a value.
fn transposes_read_in_place(g: &Graph, sched: &Schedule) -> Vec<NodeId> {
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); g.nodes.len()];
    for (id, node) in g.nodes.iter().enumerate() {
        if !matches!(sched.place[id], Place::Unused | Place::Alias(_)) {
            node.op.operands().into_iter().for_each(|a| readers[sched.resolve(a)].push(id));
        }
    }
    (0..g.nodes.len())
        .filter(|&id| {
            matches!(g.nodes[id].op, Op::Transpose(_))
                && sched.place[id] == Place::Library
                && !sched.roots.contains(&id)
                && !readers[id].is_empty()
                && readers[id]
                    .iter()
                    .all(|&r| matches!(g.nodes[r].op, Op::MatMul(..)) && sched.place[r] == Place::Library)
        })
        .collect()
}

/// The nodes some root may need (through either side of a run-time select); the others are
/// never computed and get no kernel.
fn live_nodes(g: &Graph, sched: &Schedule) -> Vec<bool> {
    let mut live = vec![false; g.nodes.len()];
    let mut stack: Vec<NodeId> = sched.roots.clone();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut live[id], true) && !matches!(sched.place[id], Place::Alias(_)) {
            stack.extend(g.nodes[id].op.operands().into_iter().map(|a| sched.resolve(a)));
        }
    }
    live
}

/// How a kernel reads an operand of a node of shape `shape`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// One value for every element (a scalar or any single-element tensor).
    Single,
    /// Element for element.
    Full,
    /// A trailing block of `period` elements, read again for every row.
    Row(usize),
    /// One value per row of `period` elements.
    Col(usize),
}

/// How an operand of shape `arg` broadcasts (NumPy's rules) to `shape` in a kernel, if it can.
pub fn operand_kind(arg: &[usize], shape: &[usize]) -> Option<Operand> {
    let numel = |s: &[usize]| s.iter().product::<usize>();
    if numel(arg) == 1 {
        return Some(Operand::Single);
    }
    if arg.len() > shape.len() {
        return None;
    }
    let padded: Vec<usize> = std::iter::repeat_n(1, shape.len() - arg.len()).chain(arg.iter().copied()).collect();
    let ones = |s: &[usize]| s.iter().all(|&d| d == 1);
    if padded == shape {
        return Some(Operand::Full);
    }
    // A trailing block repeated over leading axes, or leading axes repeated along trailing ones.
    let n = shape.len();
    if let Some(j) = (1..n).find(|&j| ones(&padded[..j]) && padded[j..] == shape[j..]) {
        return Some(Operand::Row(numel(&shape[j..])));
    }
    if let Some(j) = (1..n).find(|&j| padded[..j] == shape[..j] && ones(&padded[j..])) {
        return Some(Operand::Col(numel(&shape[j..])));
    }
    None
}

/// The operand kinds of an elementwise node (its operands in [`Op::operands`] order), or None
/// when it cannot live in a loop kernel.
fn operand_kinds(g: &Graph, id: NodeId, sched: &Schedule) -> Option<Vec<Operand>> {
    let node = &g.nodes[id];
    if node.shape.is_empty() || node.shape.contains(&0) {
        return None;
    }
    let kind = |a: &NodeId| operand_kind(g.shape(sched.resolve(*a)), &node.shape);
    match &node.op {
        Op::Fill(_) => Some(Vec::new()),
        Op::Unary(_, a) | Op::Expand(a) => Some(vec![kind(a)?]),
        Op::Binary(_, a, b) => Some(vec![kind(a)?, kind(b)?]),
        // A select on a scalar condition known only at run time stays a library call, so that
        // only its taken side runs.
        Op::Select(c, a, b) if !g.shape(sched.resolve(*c)).is_empty() => Some(vec![kind(c)?, kind(a)?, kind(b)?]),
        _ => None,
    }
}

/// Whether node `id` can live in a loop kernel: an elementwise function whose operands are
/// tensors of its own element count, single values, or broadcasts of one period.
fn is_elementwise(g: &Graph, id: NodeId, sched: &Schedule) -> bool {
    operand_kinds(g, id, sched).is_some_and(|kinds| {
        let mut periods = kinds.iter().filter_map(|k| match k {
            Operand::Row(p) | Operand::Col(p) => Some(*p),
            _ => None,
        });
        let first = periods.next();
        periods.all(|p| Some(p) == first)
    })
}

/// The period of an elementwise node's broadcast operands (0 when it has none).
fn node_period(g: &Graph, id: NodeId, sched: &Schedule) -> usize {
    operand_kinds(g, id, sched)
        .into_iter()
        .flatten()
        .find_map(|k| match k {
            Operand::Row(p) | Operand::Col(p) => Some(p),
            _ => None,
        })
        .unwrap_or(0)
}

/// Per node, the lazy branch it belongs to: `None` for nodes every step needs, `Some((select,
/// side))` for nodes only a run-time select's side needs (the first such branch found from the
/// outermost select wins when several reach a node).
fn lazy_labels(g: &Graph, sched: &Schedule) -> Vec<Option<(NodeId, bool)>> {
    let count = g.nodes.len();
    let lazy_select = |id: NodeId| match &g.nodes[id].op {
        Op::Select(c, ..) => sched.place[id] == Place::Library && g.shape(sched.resolve(*c)).is_empty(),
        _ => false,
    };
    // Edges a step always follows: every operand, except the sides of a lazy select.
    let strict = |id: NodeId| -> Vec<NodeId> {
        match (&g.nodes[id].op, lazy_select(id)) {
            (Op::Select(c, ..), true) => vec![sched.resolve(*c)],
            (op, _) => op.operands().into_iter().map(|a| sched.resolve(a)).collect(),
        }
    };
    let mut always = vec![false; count];
    let mut stack: Vec<NodeId> = sched.roots.clone();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut always[id], true) {
            stack.extend(strict(id));
        }
    }
    let mut labels = vec![None; count];
    // Outer selects have larger ids than the selects nested in their sides, so they label first
    // and a nested select's sides get the nested label.
    for s in (0..count).rev().filter(|&s| lazy_select(s)) {
        let Op::Select(_, a, b) = g.nodes[s].op else { continue };
        for (side, start) in [(true, a), (false, b)] {
            let mut stack = vec![sched.resolve(start)];
            while let Some(id) = stack.pop() {
                if always[id] || labels[id].is_some() {
                    continue;
                }
                labels[id] = Some((s, side));
                stack.extend(strict(id));
            }
        }
    }
    labels
}
