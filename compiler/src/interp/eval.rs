//! On-demand evaluation of one graph with memoization. A node is computed only when something
//! asks for it, after the operands it needs; an explicit work stack replaces recursion so graphs
//! of any depth are safe. A `Select` with a 0-d condition asks for its condition first and then
//! only for the taken branch. Each computed value is checked against its node's declared shape,
//! so a wrong shape is reported at the node that produced it rather than somewhere downstream.
//! Scalars computed from constants and the step alone (hyperparameter arithmetic) are computed
//! in f64 and rounded to the run's type once.

use super::{linalg, ops, random, InterpError, Recorded, Scalar};
use crate::ir::{Graph, NodeId, Op};
use ndarray::{ArrayD, IxDyn};

/// A node's value: a tensor, or the several results of a linear-algebra node.
pub(super) enum Val<T> {
    One(ArrayD<T>),
    Many(Vec<ArrayD<T>>),
}

/// What one graph evaluation reads.
pub(super) struct Env<'a, T> {
    pub graph: &'a Graph,
    pub step: u64,
    pub param: Option<&'a ArrayD<T>>,
    pub inputs: &'a [ArrayD<T>],
    /// Stored slot values (missing or None: zeros of the slot's shape).
    pub states: &'a [Option<ArrayD<T>>],
    pub seed: u64,
    /// Whether group nodes get their value from outside ([`Evaluator::set`], an `Interp`) or,
    /// with a single parameter, are their own argument.
    pub grouped: bool,
    /// Values supplied for the recorded nodes (none: each is its argument).
    pub recorded: Option<&'a Recorded<T>>,
}

/// One graph's evaluation: its environment and the memo of computed nodes.
pub(super) struct Evaluator<'a, T> {
    env: Env<'a, T>,
    memo: Vec<Option<Val<T>>>,
    /// Per node: whether it is hyperparameter arithmetic, a scalar computed from constants and
    /// the step alone, which runs in f64 whatever `T` (see [`hyper`]).
    hyper: Vec<bool>,
    /// The f64 values of the hyperparameter nodes computed so far.
    memo64: Vec<Option<f64>>,
    /// With [`Evaluator::consume_sole_uses`]: per node, how many nodes and roots read it. A
    /// reshape moves an operand read once instead of copying it (a 16 MiB dataset).
    uses: Option<Vec<u32>>,
}

/// Marks the nodes that are hyperparameter arithmetic: 0-d, and a constant, the step, or an
/// elementwise function or scalar select of such nodes. They are computed in f64 and rounded to
/// the run's type once, where tensors use them, as a Python optimizer computes `1 - beta2 ** t`
/// in float64 and hands the result to float32 tensor ops; computing them in f32 instead would
/// cost 1e-5 relative in Adam's bias correction (1 - 0.999 cancels).
pub(super) fn hyper(g: &Graph) -> Vec<bool> {
    let mut h: Vec<bool> = Vec::with_capacity(g.nodes.len());
    for (id, n) in g.nodes.iter().enumerate() {
        let ex = |a: &NodeId| *a < id && h[*a];
        let e = n.shape.is_empty()
            && match &n.op {
                Op::Const(_) | Op::Step => true,
                Op::Unary(_, a) => ex(a),
                Op::Binary(_, a, b) => ex(a) && ex(b),
                Op::Select(c, a, b) => ex(c) && ex(a) && ex(b),
                _ => false,
            };
        h.push(e);
    }
    h
}

impl<'a, T: Scalar> Evaluator<'a, T> {
    /// An evaluation with nothing computed yet.
    pub fn new(env: Env<'a, T>) -> Self {
        let memo = env.graph.nodes.iter().map(|_| None).collect();
        let (hyper, memo64) = (hyper(env.graph), vec![None; env.graph.nodes.len()]);
        Evaluator { env, memo, hyper, memo64, uses: None }
    }

    /// Lets operations consume operands nothing else reads: counts every node's readers and
    /// `roots`. Only for an evaluation asked for exactly those roots.
    pub fn consume_sole_uses(&mut self, roots: &[NodeId]) {
        let mut uses = vec![0u32; self.memo.len()];
        for n in self.env.graph.nodes.iter() {
            for a in n.op.operands() {
                uses[a] = uses[a].saturating_add(1);
            }
        }
        for &r in roots {
            uses[r] = uses[r].saturating_add(1);
        }
        self.uses = Some(uses);
    }

    /// Sets the value of a node from outside (a finalized group reduction).
    pub fn set(&mut self, id: NodeId, v: ArrayD<T>) -> Result<(), InterpError> {
        check_shape(self.env.graph, id, &v)?;
        self.memo[id] = Some(Val::One(v));
        Ok(())
    }

    /// The value of `root`, computing it and what it needs.
    pub fn eval(&mut self, root: NodeId) -> Result<&ArrayD<T>, InterpError> {
        if root >= self.memo.len() {
            return Err(InterpError::new(root, format!("no such node (the graph has {})", self.memo.len())));
        }
        let mut stack = vec![root];
        while let Some(&id) = stack.last() {
            if self.memo[id].is_some() {
                stack.pop();
                continue;
            }
            let need = self.missing(id)?;
            if need.is_empty() {
                let v = if self.hyper[id] {
                    let x = self.compute64(id)?;
                    self.memo64[id] = Some(x);
                    Val::One(ArrayD::from_elem(IxDyn(&[]), T::from_f64(x)))
                } else if let Some(v) = self.reshape_in_place(id) {
                    v?
                } else {
                    self.compute(id)?
                };
                if let Val::One(t) = &v {
                    if !matches!(self.env.graph.nodes[id].op, Op::Linalg(..)) {
                        check_shape(self.env.graph, id, t)?;
                    }
                }
                self.memo[id] = Some(v);
                stack.pop();
            } else {
                stack.extend(need);
            }
        }
        self.tensor(root)
    }

    /// A computed node's value as a tensor, moved out of the evaluator unless `keep` (then
    /// cloned). A node taken without `keep` must not be read again.
    pub fn take(&mut self, id: NodeId, keep: bool) -> Result<ArrayD<T>, InterpError> {
        if keep {
            return self.tensor(id).cloned();
        }
        match self.memo.get_mut(id).and_then(Option::take) {
            Some(Val::One(t)) => Ok(t),
            Some(Val::Many(mut v)) if v.len() == 1 => Ok(v.remove(0)),
            Some(Val::Many(_)) => Err(InterpError::new(id, "a node with several results used as a tensor")),
            None => Err(InterpError::new(id, "used before it was computed")),
        }
    }

    /// A computed node's value as a tensor (a single-result linear-algebra node is its result).
    fn tensor(&self, id: NodeId) -> Result<&ArrayD<T>, InterpError> {
        match &self.memo[id] {
            Some(Val::One(t)) => Ok(t),
            Some(Val::Many(v)) if v.len() == 1 => Ok(&v[0]),
            Some(Val::Many(_)) => Err(InterpError::new(id, "a node with several results used as a tensor")),
            None => Err(InterpError::new(id, "used before it was computed")),
        }
    }

    /// The operands `id` needs now that are not computed yet. Operands must be earlier nodes;
    /// checking it here also rules out cycles, which would loop the work stack forever.
    fn missing(&self, id: NodeId) -> Result<Vec<NodeId>, InterpError> {
        let done = |d: &NodeId| self.memo[*d].is_some();
        let deps: Vec<NodeId> = match &self.env.graph.nodes[id].op {
            Op::Const(_) | Op::Fill(_) | Op::Step | Op::Input(_) | Op::Param | Op::State(_) | Op::Random { .. } => {
                vec![]
            }
            Op::Unary(_, a)
            | Op::Transpose(a)
            | Op::Reshape(a)
            | Op::Expand(a)
            | Op::Diag(a)
            | Op::Triangle(a, _)
            | Op::Output(a, _) => vec![*a],
            Op::Reduce { arg, .. } | Op::Slice { arg, .. } | Op::Embed { arg, .. } => vec![*arg],
            // A supplied value replaces the argument, which then never runs (an SVD saved).
            Op::Recorded { name, arg } => match self.supplied(name) {
                Some(_) => vec![],
                None => vec![*arg],
            },
            Op::Binary(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
            Op::Group { arg, .. } => {
                if self.env.grouped {
                    vec![]
                } else {
                    vec![*arg]
                }
            }
            Op::Concat { args, .. } | Op::Linalg(_, args) => args.clone(),
            Op::Select(c, a, b) => {
                // `c >= id` is reported below; test it first so `done` never indexes past the memo.
                if *c >= id || !done(c) {
                    vec![*c]
                } else if self.tensor(*c)?.ndim() == 0 {
                    vec![if self.tensor(*c)?[IxDyn(&[])] != T::zero() { *a } else { *b }]
                } else {
                    vec![*c, *a, *b]
                }
            }
        };
        if let Some(d) = deps.iter().find(|&&d| d >= id) {
            return Err(InterpError::new(id, format!("operand %{d} is not an earlier node")));
        }
        Ok(deps.into_iter().filter(|d| !done(d)).collect())
    }

    /// Computes a hyperparameter node in f64 from its (already computed) operands, with the same
    /// functions as tensors use.
    fn compute64(&self, id: NodeId) -> Result<f64, InterpError> {
        let x = |a: NodeId| self.memo64[a].ok_or_else(|| InterpError::new(id, "operand not computed"));
        let s = |a: NodeId| x(a).map(|v| ArrayD::from_elem(IxDyn(&[]), v));
        let scalar = |t: ArrayD<f64>| t[IxDyn(&[])];
        Ok(match &self.env.graph.nodes[id].op {
            Op::Const(c) => *c,
            Op::Step => self.env.step as f64,
            Op::Unary(u, a) => scalar(ops::unary(*u, &s(*a)?)),
            Op::Binary(b, p, q) => scalar(ops::binary(*b, &s(*p)?, &s(*q)?).map_err(|e| InterpError::new(id, e))?),
            // Nonzero is true, NaN included; only the taken side was computed.
            Op::Select(c, a, b) => x(if x(*c)? != 0.0 { *a } else { *b })?,
            _ => return Err(InterpError::new(id, "not hyperparameter arithmetic")),
        })
    }

    /// A reshape of an operand read by nothing else, by moving it: None for anything else.
    fn reshape_in_place(&mut self, id: NodeId) -> Option<Result<Val<T>, InterpError>> {
        let Op::Reshape(a) = self.env.graph.nodes[id].op else { return None };
        if self.uses.as_ref()?[a] != 1 {
            return None;
        }
        let shape = &self.env.graph.nodes[id].shape;
        Some(self.take(a, false).and_then(|x| {
            let len = x.len();
            let x = if x.is_standard_layout() { x } else { x.as_standard_layout().into_owned() };
            x.into_shape_with_order(IxDyn(shape))
                .map(Val::One)
                .map_err(|_| InterpError::new(id, format!("reshape of {len} elements to {shape:?}")))
        }))
    }

    /// Computes `id` from its (already computed) operands.
    fn compute(&self, id: NodeId) -> Result<Val<T>, InterpError> {
        let g = self.env.graph;
        let shape = g.nodes[id].shape.as_slice();
        let t = |x: NodeId| self.tensor(x);
        let at = |e: String| InterpError::new(id, e);
        let one = |r: Result<ArrayD<T>, String>| r.map(Val::One).map_err(at);
        let scalar = |x: T| Val::One(ArrayD::from_elem(IxDyn(&[]), x));
        match &g.nodes[id].op {
            Op::Const(c) => Ok(scalar(T::from_f64(*c))),
            Op::Fill(c) => Ok(Val::One(ArrayD::from_elem(IxDyn(shape), T::from_f64(*c)))),
            Op::Step => Ok(scalar(T::from_f64(self.env.step as f64))),
            Op::Input(k) => match self.env.inputs.get(*k) {
                Some(x) => Ok(Val::One(x.clone())),
                None => Err(at(format!("input {k} is not given ({} given)", self.env.inputs.len()))),
            },
            Op::Param => match self.env.param {
                Some(p) => Ok(Val::One(p.clone())),
                None => Err(at("this graph reads a parameter and none is given".into())),
            },
            Op::State(k) => {
                let Some(slot) = g.slots.get(*k) else {
                    return Err(at(format!("state slot {k} does not exist ({} slots)", g.slots.len())));
                };
                match self.env.states.get(*k) {
                    Some(Some(v)) => Ok(Val::One(v.clone())),
                    _ => Ok(Val::One(ArrayD::zeros(IxDyn(&slot.shape)))),
                }
            }
            Op::Unary(u, a) => Ok(Val::One(ops::unary(*u, t(*a)?))),
            Op::Binary(b, x, y) => one(ops::binary(*b, t(*x)?, t(*y)?)),
            Op::Select(c, a, b) => {
                let cv = t(*c)?;
                // Nonzero is true, NaN included (as `bool(nan)` in Python).
                if cv.ndim() == 0 {
                    let taken = if cv[IxDyn(&[])] != T::zero() { *a } else { *b };
                    one(ops::expand(t(taken)?, shape))
                } else {
                    one(ops::select(cv, t(*a)?, t(*b)?))
                }
            }
            Op::Reduce { op, arg, axes, keepdims } => one(ops::reduce(*op, t(*arg)?, axes, *keepdims)),
            Op::Group { arg, site } => {
                if self.env.grouped {
                    Err(at(format!("group site {site} was read before its sum was complete")))
                } else {
                    let v = t(*arg)?;
                    if v.ndim() != 0 {
                        return Err(at(format!("a group reduction needs a scalar, got shape {:?}", v.shape())));
                    }
                    Ok(Val::One(v.clone()))
                }
            }
            Op::MatMul(a, b) => one(ops::matmul(t(*a)?, t(*b)?)),
            Op::Transpose(a) => one(ops::transpose(t(*a)?)),
            Op::Reshape(a) => one(ops::reshape(t(*a)?, shape)),
            Op::Expand(a) => one(ops::expand(t(*a)?, shape)),
            Op::Slice { arg, ranges, drop } => one(ops::slice(t(*arg)?, ranges, drop, shape)),
            Op::Embed { arg, ranges, drop } => one(ops::embed(t(*arg)?, ranges, drop, shape)),
            Op::Concat { args, axis } => {
                let xs = args.iter().map(|&a| t(a)).collect::<Result<Vec<_>, _>>()?;
                one(ops::concat(&xs, *axis))
            }
            Op::Random { dist, stream } => {
                Ok(Val::One(random::random(*dist, self.env.seed, *stream, self.env.step, shape)))
            }
            Op::Linalg(kind, args) => {
                let xs = args.iter().map(|&a| t(a)).collect::<Result<Vec<_>, _>>()?;
                linalg::run(*kind, &xs).map(Val::Many).map_err(at)
            }
            Op::Output(a, k) => match &self.memo[*a] {
                Some(Val::Many(v)) => match v.get(*k) {
                    Some(x) => Ok(Val::One(x.clone())),
                    None => Err(at(format!("result {k} of a node with {} results", v.len()))),
                },
                Some(Val::One(x)) if *k == 0 => Ok(Val::One(x.clone())),
                _ => Err(at(format!("result {k} of a node with one result"))),
            },
            Op::Diag(a) => one(ops::diag(t(*a)?)),
            Op::Triangle(a, upper) => one(ops::triangle(t(*a)?, *upper)),
            Op::Recorded { name, arg } => match self.supplied(name) {
                Some(v) => Ok(Val::One(v.clone())),
                None => Ok(Val::One(t(*arg)?.clone())),
            },
        }
    }

    /// The value supplied for the recorded nodes named `name` at this step, if any.
    fn supplied(&self, name: &str) -> Option<&'a ArrayD<T>> {
        self.env.recorded?.get(name, self.env.step)
    }
}

/// Checks a computed value against its node's declared shape.
fn check_shape<T>(g: &Graph, id: NodeId, v: &ArrayD<T>) -> Result<(), InterpError> {
    let want = g.shape(id);
    if v.shape() != want {
        let msg = format!("computed a value of shape {:?} but the node declares {:?}", v.shape(), want);
        return Err(InterpError::new(id, msg));
    }
    Ok(())
}
