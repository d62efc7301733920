//! One graph prepared for repeated evaluation: its schedules (one per pattern of selects the host
//! decides, compiled on first use), the buffers kernels write, and the demand-driven evaluation
//! of a step. A node runs when something needs it, after what it needs, as in the interpreter: a
//! kernel runs when one of its stores is needed, a library call when its value is; a select on a
//! run-time scalar asks for its condition and then only for its taken side. Hyperparameter
//! arithmetic runs first, in f64, and decides the selects whose condition it computes.

use super::gemm_update::{self, GemmUpdate};
use super::launch::{self, Job};
use super::{library, ExecError, Lane};
use crate::fuse::{self, Decided, LoadKind, Place, Schedule};
use crate::interp::{single, Recorded};
use crate::ir::{Graph, NodeId, Op};
use crate::jit::{self, KernelFn};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// Where a kernel store lands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dest {
    /// The node's own buffer.
    Buffer,
    /// In place, into state slot `k` (nothing outside the kernel reads the old value).
    State(usize),
    /// In place, into the parameter.
    Param,
}

/// A schedule with its compiled kernels and where their stores land.
struct Plan {
    sched: Schedule,
    kernels: Vec<KernelFn>,
    dest: Vec<Dest>,
    /// Nodes computed by the library (reads of inputs, parameter and state aside).
    library_calls: usize,
    /// The parameter update run as a product accumulated into the parameter, in place of a
    /// kernel and the product it reads (`exec::gemm_update`).
    gemm_update: Option<GemmUpdate>,
}

/// What one evaluation reads and writes besides the graph's own values.
pub(super) struct Io<'a, T> {
    pub inputs: &'a [ArrayD<T>],
    /// Values supplied for recorded nodes (a replay's substitutes for a peer's choices).
    pub recorded: Option<&'a Recorded<T>>,
    pub param: ParamRef<'a, T>,
    pub states: &'a mut [ArrayD<T>],
    pub step: u64,
    pub seed: u64,
}

/// The parameter an evaluation reads (and, applying an update, writes).
pub(super) enum ParamRef<'a, T> {
    None,
    Shared(&'a ArrayD<T>),
    Unique(&'a mut ArrayD<T>),
}

impl<T> ParamRef<'_, T> {
    /// The parameter's value.
    pub fn get(&self) -> Option<&ArrayD<T>> {
        match self {
            ParamRef::None => None,
            ParamRef::Shared(p) => Some(p),
            ParamRef::Unique(p) => Some(p),
        }
    }

    fn get_mut(&mut self) -> Option<&mut ArrayD<T>> {
        match self {
            ParamRef::Unique(p) => Some(p),
            _ => None,
        }
    }
}

/// Marks the 2-D matrix products whose result is symmetric by construction: `x xᵀ`, `xᵀ x`,
/// and the square of such a product (Newton-Schulz's Gram matrix and its square). The executor
/// computes one triangle of each and mirrors it (`gemm_symmetric`), half the multiply-adds.
fn symmetric_products(g: &Graph) -> Vec<bool> {
    let mut sym = vec![false; g.nodes.len()];
    for (id, node) in g.nodes.iter().enumerate() {
        let Op::MatMul(a, b) = node.op else { continue };
        if node.shape.len() != 2 || g.nodes[a].shape.len() != 2 || g.nodes[b].shape.len() != 2 {
            continue;
        }
        let transposes = |x: NodeId, y: NodeId| g.nodes[y].op == Op::Transpose(x);
        sym[id] = transposes(a, b) || transposes(b, a) || (a == b && sym[a]);
    }
    sym
}

/// A graph ready to run: see the module doc.
pub(super) struct Program<T: Lane> {
    pub graph: Graph,
    hyper: Vec<bool>,
    /// The hyper nodes, in order, and the selects whose condition is one (select, condition):
    /// what `begin` evaluates every step, without walking the whole graph.
    hyper_ids: Vec<NodeId>,
    host_selects: Vec<(NodeId, NodeId)>,
    /// Per node: a matrix product whose result is symmetric (see [`symmetric_products`]).
    symmetric: Vec<bool>,
    roots: Vec<NodeId>,
    /// State writes done by the caller: (slot, node).
    writes: Vec<(usize, NodeId)>,
    /// The node whose value replaces the parameter (applying mode), if any.
    applied: Option<NodeId>,
    /// Whether group nodes get their sums from outside; if not, a group is its own argument.
    grouped: bool,
    /// One plan per combination of host-decided selects met so far, with its key; a rule has
    /// one or two, so a list searched once per step beats hashing on every lookup.
    plans: Vec<(Vec<bool>, Plan)>,
    /// The current step's key and plan.
    key: Vec<bool>,
    current: usize,
    /// Per node: the buffer of a kernel store or a host scalar as a tensor (kept across steps).
    bufs: Vec<Option<ArrayD<T>>>,
    /// Per node: the results of a library call or a group sum, valid once the node is done this
    /// step; kept across steps as the buffer the next step's call writes into.
    owned: Vec<Option<Vec<ArrayD<T>>>>,
    host: Vec<f64>,
    done: Vec<bool>,
    kernel_done: Vec<bool>,
}

impl<T: Lane> Program<T> {
    /// Prepares `graph` to compute `roots`; `writes` are state writes and `applied` the new
    /// parameter value, both computed as roots too.
    pub fn new(
        graph: Graph,
        mut roots: Vec<NodeId>,
        writes: Vec<(usize, NodeId)>,
        applied: Option<NodeId>,
        grouped: bool,
    ) -> Self {
        roots.extend(writes.iter().map(|w| w.1));
        roots.extend(applied);
        let graph = fuse::outer_products(&graph);
        let hyper = single::hyper_nodes(&graph);
        let graph = fuse::reciprocals(&fuse::constants(&graph, &hyper), &hyper);
        let n = graph.nodes.len();
        let hyper = single::hyper_nodes(&graph);
        let hyper_ids = (0..n).filter(|&id| hyper[id]).collect();
        let host_selects = graph
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(id, node)| match node.op {
                Op::Select(c, ..) if hyper[c] && !hyper[id] => Some((id, c)),
                _ => None,
            })
            .collect();
        Program {
            hyper,
            hyper_ids,
            host_selects,
            symmetric: symmetric_products(&graph),
            graph,
            roots,
            writes,
            applied,
            grouped,
            plans: Vec::new(),
            key: Vec::new(),
            current: 0,
            bufs: (0..n).map(|_| None).collect(),
            owned: (0..n).map(|_| None).collect(),
            host: vec![f64::NAN; n],
            done: vec![false; n],
            kernel_done: Vec::new(),
        }
    }

    /// Starts an evaluation: computes the host scalars, picks (or builds) the plan for the selects
    /// they decide and forgets last step's values.
    pub fn begin(&mut self, step: u64) -> Result<(), ExecError> {
        let g = &self.graph;
        for &id in &self.hyper_ids {
            let host = &self.host;
            self.host[id] = single::host_scalar(g, id, step, |a| Some(host[a]))?;
        }
        self.key.clear();
        self.key.extend(self.host_selects.iter().map(|&(_, c)| self.host[c] != 0.0));
        self.current = match self.plans.iter().position(|(k, _)| *k == self.key) {
            Some(i) => i,
            None => {
                let mut decided: Decided = vec![None; g.nodes.len()];
                for (&(id, _), &side) in self.host_selects.iter().zip(&self.key) {
                    decided[id] = Some(side);
                }
                let plan = self.plan(&decided)?;
                self.plans.push((self.key.clone(), plan));
                self.plans.len() - 1
            }
        };
        self.done.iter_mut().for_each(|d| *d = false);
        let kernels = self.plans[self.current].1.kernels.len();
        self.kernel_done.clear();
        self.kernel_done.resize(kernels, false);
        Ok(())
    }

    fn plan(&self, decided: &Decided) -> Result<Plan, ExecError> {
        let g = &self.graph;
        let sched = fuse::fuse(g, &self.hyper, decided, &self.roots);
        let kernels = sched
            .kernels
            .iter()
            .map(|k| jit::kernel(&k.spec, T::ELEM).map_err(|e| ExecError::new(k.body[0], e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut dest = vec![Dest::Buffer; g.nodes.len()];
        // Per node, where its readers run (roots read from outside every kernel).
        let mut readers: Vec<Vec<Place>> = vec![Vec::new(); g.nodes.len()];
        for (id, node) in g.nodes.iter().enumerate() {
            if matches!(sched.place[id], Place::Library | Place::Kernel(_) | Place::View) {
                for a in node.op.operands() {
                    readers[sched.resolve(a)].push(sched.place[id]);
                }
            }
        }
        sched.roots.iter().for_each(|&r| readers[r].push(Place::Library));
        // A store may overwrite a source (the state slot, the parameter) in place when every
        // reader of the source's old value is in the store's own kernel: each element is loaded
        // before it is stored.
        let in_place = |is_source: &dyn Fn(&Op) -> bool, store: NodeId| -> bool {
            let home = sched.place[store];
            matches!(home, Place::Kernel(_))
                && g.nodes.iter().enumerate().all(|(id, n)| !is_source(&n.op) || readers[id].iter().all(|&p| p == home))
        };
        for &(slot, node) in &self.writes {
            let r = sched.resolve(node);
            if dest[r] == Dest::Buffer && in_place(&|op| *op == Op::State(slot), r) {
                dest[r] = Dest::State(slot);
            }
        }
        if let Some(a) = self.applied {
            let r = sched.resolve(a);
            if dest[r] == Dest::Buffer && in_place(&|op| *op == Op::Param, r) {
                dest[r] = Dest::Param;
            }
        }
        let library_calls = g
            .nodes
            .iter()
            .enumerate()
            .filter(|(id, n)| {
                matches!(sched.place[*id], Place::Library | Place::View)
                    && !matches!(n.op, Op::Input(_) | Op::Param | Op::State(_))
            })
            .count();
        let gemm_update = self.applied.and_then(|a| {
            let in_param = dest[sched.resolve(a)] == Dest::Param;
            gemm_update::find(g, &sched, &readers, a, in_param)
        });
        Ok(Plan { sched, kernels, dest, library_calls, gemm_update })
    }

    /// Sets a group node's value (the sum over the rule's parameters).
    pub fn set_group(&mut self, id: NodeId, v: T) {
        self.owned[id] = Some(vec![ArrayD::from_elem(IxDyn(&[]), v)]);
        self.done[id] = true;
    }

    /// Whether the value of `id` is its own buffer's, the state's or the parameter's.
    fn dest(&self, id: NodeId) -> Dest {
        self.plans[self.current].1.dest[id]
    }

    /// The value of a computed node.
    pub fn get<'b>(&'b self, io: &'b Io<T>, id: NodeId) -> Result<&'b ArrayD<T>, ExecError> {
        let plan = &self.plans[self.current].1;
        let id = plan.sched.resolve(id);
        let missing = || ExecError::new(id, "used before it was computed");
        match plan.sched.place[id] {
            Place::Host => self.bufs[id].as_ref().ok_or_else(missing),
            Place::Kernel(_) => match plan.dest[id] {
                Dest::Buffer => self.bufs[id].as_ref().ok_or_else(missing),
                Dest::State(k) => Ok(&io.states[k]),
                Dest::Param => io.param.get().ok_or_else(missing),
            },
            Place::Alias(_) => unreachable!("resolved"),
            Place::View => Err(ExecError::new(id, "a transpose read in place has no value of its own")),
            Place::Library | Place::Unused => match self.graph.nodes[id].op {
                Op::Input(k) => io
                    .inputs
                    .get(k)
                    .ok_or_else(|| ExecError::new(id, format!("input {k} is not given ({} given)", io.inputs.len()))),
                Op::Param => {
                    io.param.get().ok_or_else(|| ExecError::new(id, "this graph reads a parameter and none is given"))
                }
                Op::State(k) => io.states.get(k).ok_or_else(|| ExecError::new(id, format!("no state slot {k}"))),
                _ if !self.done[id] => Err(missing()),
                _ => match &self.owned[id] {
                    Some(v) if v.len() == 1 => Ok(&v[0]),
                    Some(_) => Err(ExecError::new(id, "a node with several results used as a tensor")),
                    None => Err(missing()),
                },
            },
        }
    }

    /// Moves the value of a computed node into `out` when the program holds it in a buffer of its
    /// own and `out` has its shape: the two arrays are swapped, and `out`'s old array becomes the
    /// buffer the next step writes (no step reads a buffer before writing it). Otherwise (an
    /// input, the state, the parameter, or a new shape) the value is copied. A node must not be
    /// taken twice in one step.
    pub fn take_into(&mut self, io: &Io<T>, id: NodeId, out: &mut ArrayD<T>) -> Result<(), ExecError> {
        let plan = &self.plans[self.current].1;
        let id = plan.sched.resolve(id);
        let own = match plan.sched.place[id] {
            Place::Host => self.bufs[id].as_mut(),
            Place::Kernel(_) if plan.dest[id] == Dest::Buffer => self.bufs[id].as_mut(),
            Place::Library | Place::Unused if self.done[id] && !is_leaf(&self.graph.nodes[id].op) => {
                match self.owned[id].as_mut() {
                    Some(v) if v.len() == 1 => v.first_mut(),
                    _ => None,
                }
            }
            _ => None,
        };
        match own {
            Some(buf) if buf.shape() == out.shape() => std::mem::swap(buf, out),
            _ => *out = self.get(io, id)?.clone(),
        }
        Ok(())
    }

    /// Computes `root` and what it needs.
    pub fn demand(&mut self, io: &mut Io<T>, root: NodeId) -> Result<(), ExecError> {
        let root = self.plans[self.current].1.sched.resolve(root);
        if self.done[root] {
            return Ok(());
        }
        let mut stack = vec![root];
        while let Some(&id) = stack.last() {
            if self.done[id] {
                stack.pop();
                continue;
            }
            let need = self.missing(io, id)?;
            if !need.is_empty() {
                stack.extend(need);
                continue;
            }
            stack.pop();
            self.compute(io, id)?;
        }
        Ok(())
    }

    /// The nodes `id` needs that are not computed yet (resolved).
    fn missing(&self, io: &Io<T>, id: NodeId) -> Result<Vec<NodeId>, ExecError> {
        let plan = &self.plans[self.current].1;
        let sched = &plan.sched;
        let deps: Vec<NodeId> = match sched.place[id] {
            Place::Host | Place::Alias(_) => Vec::new(),
            Place::View => self.graph.nodes[id].op.operands().into_iter().map(|a| sched.resolve(a)).collect(),
            Place::Kernel(k) => match plan.gemm_update.filter(|u| u.kernel == k) {
                Some(u) => u.needs(),
                None => sched.kernels[k].loads.iter().chain(&sched.kernels[k].scalars).copied().collect(),
            },
            Place::Library | Place::Unused => match &self.graph.nodes[id].op {
                Op::Group { arg, .. } if !self.grouped => vec![sched.resolve(*arg)],
                // A supplied value replaces the argument, which then need not run (an SVD).
                Op::Recorded { name, .. } if io.recorded.and_then(|r| r.get(name, io.step)).is_some() => Vec::new(),
                Op::Group { .. } => return Err(ExecError::new(id, "a group sum was read before it was complete")),
                Op::Select(c, a, b) if self.graph.shape(sched.resolve(*c)).is_empty() => {
                    let c = sched.resolve(*c);
                    if !self.done[c] {
                        vec![c]
                    } else {
                        let taken = self.get(io, c)?[IxDyn(&[])] != T::zero();
                        vec![sched.resolve(if taken { *a } else { *b })]
                    }
                }
                op => op.operands().into_iter().map(|a| sched.resolve(a)).collect(),
            },
        };
        // Host arithmetic runs before everything else, wherever it sits (see fuse::reciprocals).
        if let Some(&d) = deps.iter().find(|&&d| d >= id && sched.place[id] == Place::Library && !self.hyper[d]) {
            return Err(ExecError::new(id, format!("operand %{d} is not an earlier node")));
        }
        Ok(deps.into_iter().filter(|&d| !self.done[d]).collect())
    }

    /// Computes `id`, whose needs are met.
    fn compute(&mut self, io: &mut Io<T>, id: NodeId) -> Result<(), ExecError> {
        let place = self.plans[self.current].1.sched.place[id];
        match place {
            Place::Host => {
                let v = T::from_f64(self.host[id]);
                match &mut self.bufs[id] {
                    Some(b) => b[IxDyn(&[])] = v,
                    b => *b = Some(ArrayD::from_elem(IxDyn(&[]), v)),
                }
                self.done[id] = true;
            }
            Place::Kernel(k) => match self.plans[self.current].1.gemm_update.filter(|u| u.kernel == k) {
                Some(u) => {
                    self.run_gemm_update(io, u)?;
                    self.kernel_ran(k);
                }
                None => self.run_kernel(io, k)?,
            },
            Place::Alias(_) => unreachable!("resolved"),
            Place::View => self.done[id] = true,
            // An unused node runs only when asked directly (a group's argument).
            Place::Library | Place::Unused => {
                let old = self.owned[id].take();
                let value = self.library(io, id, old)?;
                if let Some(v) = value {
                    self.owned[id] = Some(v);
                }
                self.done[id] = true;
            }
        }
        Ok(())
    }

    /// A node's operand as the library reads it: its value, or for a transpose left as a view,
    /// its operand's value with the last two axes swapped.
    fn view<'b>(&'b self, io: &'b Io<T>, a: NodeId) -> Result<ArrayViewD<'b, T>, ExecError> {
        let sched = &self.plans[self.current].1.sched;
        let a = sched.resolve(a);
        match (sched.place[a], &self.graph.nodes[a].op) {
            (Place::View, Op::Transpose(x)) => {
                let mut v = self.get(io, *x)?.view();
                let nd = v.ndim();
                v.swap_axes(nd - 2, nd - 1);
                Ok(v)
            }
            _ => Ok(self.get(io, a)?.view()),
        }
    }

    /// A library node's results (None for nodes read from `io`), written into `old` (its results
    /// of the previous step) where a fast path can.
    fn library(
        &self,
        io: &Io<T>,
        id: NodeId,
        old: Option<Vec<ArrayD<T>>>,
    ) -> Result<Option<Vec<ArrayD<T>>>, ExecError> {
        let old = old.and_then(|mut v| v.pop());
        let at = |e: String| ExecError::new(id, e);
        let sched = &self.plans[self.current].1.sched;
        let g = &self.graph;
        let node = &g.nodes[id];
        Ok(Some(match &node.op {
            Op::Input(_) | Op::Param | Op::State(_) => {
                let v = self.get(io, id)?;
                if v.shape() != node.shape.as_slice() {
                    let msg = format!("given a value of shape {:?} but the node declares {:?}", v.shape(), node.shape);
                    return Err(ExecError::new(id, msg));
                }
                return Ok(None);
            }
            Op::Group { arg, .. } => {
                let v = self.get(io, *arg)?;
                if v.ndim() != 0 {
                    return Err(ExecError::new(
                        id,
                        format!("a group reduction needs a scalar, got shape {:?}", v.shape()),
                    ));
                }
                vec![v.clone()]
            }
            Op::Recorded { name, arg } => match io.recorded.and_then(|r| r.get(name, io.step)) {
                Some(v) => vec![v.clone()],
                None => vec![self.get(io, *arg)?.clone()],
            },
            Op::Output(a, k) => match &self.owned[sched.resolve(*a)] {
                Some(v) => vec![v.get(*k).ok_or_else(|| ExecError::new(id, format!("no result {k}")))?.clone()],
                None => vec![self.get(io, *a)?.clone()],
            },
            Op::Select(c, a, b) if g.shape(sched.resolve(*c)).is_empty() => {
                let cv = self.get(io, *c)?;
                let taken = self.get(io, if cv[IxDyn(&[])] != T::zero() { *a } else { *b })?;
                single::compute_node(g, id, &[cv, taken, taken], io.step, io.seed)?
            }
            Op::MatMul(a, b) if self.symmetric[id] => {
                vec![library::matmul_symmetric(old, self.view(io, *a)?, self.view(io, *b)?).map_err(at)?]
            }
            Op::MatMul(a, b) => vec![library::matmul(old, self.view(io, *a)?, self.view(io, *b)?).map_err(at)?],
            Op::Transpose(a) => {
                let x = self.get(io, *a)?;
                match library::transpose(old, x) {
                    Some(v) => vec![v],
                    None => single::compute_node(g, id, &[x], io.step, io.seed)?,
                }
            }
            Op::Reduce { op, arg, axes, .. } => {
                let x = self.get(io, *arg)?;
                match library::reduce(old, *op, x, axes, &node.shape) {
                    Some(v) => vec![v],
                    None => single::compute_node(g, id, &[x], io.step, io.seed)?,
                }
            }
            op => {
                let args = op.operands().into_iter().map(|a| self.get(io, a)).collect::<Result<Vec<_>, _>>()?;
                let out = single::compute_node(g, id, &args, io.step, io.seed)?;
                if let (Some(v), false) = (out.first(), matches!(op, Op::Linalg(..))) {
                    if v.shape() != node.shape.as_slice() {
                        let msg =
                            format!("computed a value of shape {:?} but the node declares {:?}", v.shape(), node.shape);
                        return Err(ExecError::new(id, msg));
                    }
                }
                out
            }
        }))
    }

    /// Runs kernel `k`: gathers its pointers and scalars and loops over its elements, in shares
    /// across the pool when it is large.
    fn run_kernel(&mut self, io: &mut Io<T>, k: usize) -> Result<(), ExecError> {
        let job = self.prepare_kernel(io, k)?;
        // SAFETY: `prepare_kernel` checked every load's length; stores are this kernel's own
        // buffers, state slots or the parameter, which nothing else touches during the call.
        unsafe { launch::run(std::slice::from_ref(&job)) };
        self.kernel_ran(k);
        Ok(())
    }

    /// `param += alpha (a @ b)`, in place.
    fn run_gemm_update(&mut self, io: &mut Io<T>, u: GemmUpdate) -> Result<(), ExecError> {
        let alpha = u.alpha(|s| {
            let v = self.get(io, s)?;
            v.iter()
                .next()
                .copied()
                .filter(|_| v.len() == 1)
                .ok_or_else(|| ExecError::new(s, "a scale that is not a scalar"))
        })?;
        let at = |e: String| ExecError::new(u.a, e);
        // The parameter leaves `io` for the call, so the operands can be read from it meanwhile.
        let slot = io.param.get_mut().ok_or_else(|| at("no parameter to update".into()))?;
        let mut param = std::mem::replace(slot, ArrayD::from_elem(IxDyn(&[]), T::zero()));
        let result = self.view(io, u.a).and_then(|a| {
            let b = self.view(io, u.b)?;
            crate::interp::matmul_into(param.view_mut(), a, b, alpha, true).map_err(at)
        });
        if let Some(p) = io.param.get_mut() {
            *p = param;
        }
        result
    }

    /// The call of kernel `k` with its addresses resolved (stores given somewhere to land).
    fn prepare_kernel(&mut self, io: &mut Io<T>, k: usize) -> Result<Job<T>, ExecError> {
        let kernel = &self.plans[self.current].1.sched.kernels[k];
        let needs: Vec<NodeId> = kernel.loads.iter().chain(&kernel.scalars).copied().collect();
        for n in needs {
            self.demand(io, n)?;
        }
        let plan = &self.plans[self.current].1;
        let kernel = &plan.sched.kernels[k];
        for &s in &kernel.stores {
            if plan.dest[s] == Dest::Buffer && self.bufs[s].as_ref().is_none_or(|b| b.shape() != self.graph.shape(s)) {
                self.bufs[s] = Some(ArrayD::zeros(IxDyn(self.graph.shape(s))));
            }
        }
        let mut keep: Vec<ArrayD<T>> = Vec::new();
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(kernel.loads.len() + kernel.stores.len());
        let mut scalars: Vec<T> = Vec::with_capacity(kernel.scalars.len());
        for &s in &kernel.scalars {
            let v = self.get(io, s)?;
            let first = v.iter().next().filter(|_| v.len() == 1);
            scalars.push(*first.ok_or_else(|| ExecError::new(s, format!("a scalar of shape {:?}", v.shape())))?);
        }
        for (&l, kind) in kernel.loads.iter().zip(&kernel.spec.loads) {
            let v = self.get(io, l)?;
            let want = match kind {
                LoadKind::Full => kernel.len,
                LoadKind::Row => kernel.period,
                LoadKind::Col => kernel.len / kernel.period.max(1),
            };
            if v.len() != want {
                return Err(ExecError::new(l, format!("a kernel over {} elements loads {}", kernel.len, v.len())));
            }
            match v.as_slice() {
                Some(s) => ptrs.push(s.as_ptr() as *mut u8),
                None => {
                    keep.push(v.as_standard_layout().into_owned());
                    ptrs.push(keep.last().and_then(|c| c.as_slice()).expect("standard layout").as_ptr() as *mut u8);
                }
            }
        }
        for &s in &kernel.stores {
            let slice = match plan.dest[s] {
                Dest::Buffer => self.bufs[s].as_mut().and_then(|b| b.as_slice_mut()),
                Dest::State(slot) => io.states[slot].as_slice_mut(),
                Dest::Param => io.param.get_mut().and_then(|p| p.as_slice_mut()),
            };
            let slice = slice.ok_or_else(|| ExecError::new(s, "a kernel store into a non-contiguous tensor"))?;
            ptrs.push(slice.as_mut_ptr() as *mut u8);
        }
        let units = kernel.len.checked_div(kernel.period).unwrap_or(kernel.len);
        Ok(Job { f: plan.kernels[k], ptrs, scalars, units, period: kernel.period, keep })
    }

    /// Marks kernel `k`'s stores computed.
    fn kernel_ran(&mut self, k: usize) {
        for &s in &self.plans[self.current].1.sched.kernels[k].stores {
            self.done[s] = true;
        }
        self.kernel_done[k] = true;
    }

    /// When this step is one kernel and nothing else (besides host scalars and reads of inputs,
    /// parameter and state), its call, to be run with other parameters' calls: see
    /// [`Program::single_kernel_ran`].
    pub fn single_kernel_job(&mut self, io: &mut Io<T>) -> Result<Option<Job<T>>, ExecError> {
        let plan = &self.plans[self.current].1;
        if plan.sched.kernels.len() != 1 || plan.library_calls > 0 {
            return Ok(None);
        }
        self.prepare_kernel(io, 0).map(Some)
    }

    /// Records that the job of [`Program::single_kernel_job`] ran.
    pub fn single_kernel_ran(&mut self) {
        self.kernel_ran(0);
    }

    /// Commits the state writes that no kernel did in place, and the new parameter, reading
    /// every value before writing any (two slots may swap).
    pub fn commit(&mut self, io: &mut Io<T>) -> Result<(), ExecError> {
        let mut pending: Vec<(Option<usize>, ArrayD<T>)> = Vec::new();
        for &(slot, node) in &self.writes {
            let r = self.plans[self.current].1.sched.resolve(node);
            // A slot that keeps its value (an unused AMSGrad maximum) costs nothing.
            let unchanged = self.graph.nodes[r].op == Op::State(slot);
            if self.dest(r) != Dest::State(slot) && !unchanged {
                pending.push((Some(slot), self.get(io, r)?.clone()));
            }
        }
        if let Some(a) = self.applied {
            let r = self.plans[self.current].1.sched.resolve(a);
            if self.dest(r) != Dest::Param {
                pending.push((None, self.get(io, r)?.clone()));
            }
        }
        for (slot, v) in pending {
            match slot {
                Some(s) => io.states[s] = v,
                None => {
                    if let Some(p) = io.param.get_mut() {
                        *p = v;
                    }
                }
            }
        }
        Ok(())
    }

    /// Computes every root.
    pub fn demand_roots(&mut self, io: &mut Io<T>) -> Result<(), ExecError> {
        for k in 0..self.roots.len() {
            self.demand(io, self.roots[k])?;
        }
        Ok(())
    }

    /// Whether the plan in use accumulates the parameter update into the product that
    /// computes it (`exec::gemm_update`).
    pub fn folds_update_into_product(&self) -> bool {
        self.plans.get(self.current).is_some_and(|p| p.1.gemm_update.is_some())
    }

    /// The folded update of the plan in use, described.
    pub fn folded_update(&self) -> Option<String> {
        let u = self.plans.get(self.current)?.1.gemm_update?;
        let applied = self.applied.map(|a| self.plans[self.current].1.sched.resolve(a))?;
        Some(u.describe(applied))
    }

    /// The plan in use (after [`Program::begin`]).
    pub fn schedule(&self) -> Option<&Schedule> {
        self.plans.get(self.current).map(|p| &p.1.sched)
    }
}

/// Reads of the step's inputs, parameter or state: values the program does not own.
fn is_leaf(op: &Op) -> bool {
    matches!(op, Op::Input(_) | Op::Param | Op::State(_))
}
