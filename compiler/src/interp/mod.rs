//! The reference interpreter: runs the tensor IR ([`crate::ir`]) directly on `ndarray` arrays,
//! in f32 or f64. It is meant to be simple and obviously correct, the oracle every later backend
//! is checked against, not fast. Nodes are evaluated on demand and memoized, so a `Select` with a
//! scalar condition runs only the taken branch; every computed value is checked against its
//! node's declared shape. Tensors compute in the run's type; scalar hyperparameter arithmetic in
//! f64 (see [`Scalar`]). [`Interp`] runs one rule application (one graph per parameter) step by
//! step, keeping its state slots and combining group reductions across parameters;
//! [`eval_once`] evaluates a stateless graph (an expression in the REPL), [`eval_nodes`] several
//! of its nodes at once (a loss and its gradients). [`Interp::set_recorded`] supplies values for
//! a graph's recorded nodes ([`Recorded`]: a replay's substitutes for a peer's arbitrary choices);
//! the stateless entry points supply none.

mod eval;
mod linalg;
mod ops;
mod random;
mod recorded;
pub mod single;
#[cfg(test)]
mod tests;

use crate::ir::{Graph, NodeId, Op};
use eval::{Env, Evaluator};
use ndarray::IxDyn;
use optic_runtime::data::Values;
use std::fmt;

pub use ndarray::ArrayD;
pub use ops::{matmul_into, matmul_shape};
pub use recorded::Recorded;

/// Element types the interpreter runs in (f32 and f64). Every tensor operation computes in this
/// type, so an f32 run rounds where a float32 peer does. Hyperparameter arithmetic (0-d nodes
/// computed from constants and the step alone, e.g. `1 - beta2 ^ step`) runs in f64 and is
/// rounded once with [`Scalar::from_f64`], as a Python optimizer does with float scalars.
pub trait Scalar:
    optic_runtime::linalg::Real + num_traits::Float + ndarray::LinalgScalar + fmt::Display + fmt::Debug
{
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
    /// The value as an f64 (exact).
    fn to_f64(self) -> f64;
    /// The error function, computed in this type.
    fn erf(self) -> Self;
    /// A loaded data array in this type: moved when it is stored in this type, rounded or
    /// widened otherwise.
    fn from_values(v: Values) -> ArrayD<Self>;
}

impl Scalar for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn from_values(v: Values) -> ArrayD<Self> {
        match v {
            Values::F32(a) => a,
            Values::F64(a) => a.mapv(|x| x as f32),
        }
    }
}

impl Scalar for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn from_values(v: Values) -> ArrayD<Self> {
        match v {
            Values::F32(a) => a.mapv(f64::from),
            Values::F64(a) => a,
        }
    }
}

/// An error while running: the node at fault and what went wrong (a shape that does not match
/// at run time, a failed decomposition, a missing input...). A NaN is not an error here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterpError {
    /// The node being evaluated (for an error about the whole graph, its output node).
    pub node: usize,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at %{}: {}", self.node, self.message)
    }
}

impl std::error::Error for InterpError {}

impl InterpError {
    /// An error at `node`.
    pub(crate) fn new(node: NodeId, message: impl Into<String>) -> Self {
        InterpError { node, message: message.into() }
    }
}

/// The group reductions of a rule application: each distinct site, in order of first appearance
/// (graph by graph, node by node), with the (graph, node) pairs that carry it.
type Sites = Vec<(u32, Vec<(usize, NodeId)>)>;

/// A rule applied to a group of parameters: one graph per parameter, and their state.
///
/// Each step evaluates in two phases sharing one memo per graph: first every group reduction,
/// site by site in order of first appearance (its argument evaluated in every graph carrying the
/// site, the values summed in graph order, the sum set as the group node's value everywhere);
/// then each graph's output and state writes. New state values are stored only after every
/// graph succeeded, so a failed step leaves the state as it was.
pub struct Interp<T: Scalar> {
    graphs: Vec<Graph>,
    /// Per graph, per slot: the stored value (None before its first write).
    slots: Vec<Vec<Option<ArrayD<T>>>>,
    sites: Sites,
    seed: u64,
    /// Per graph: the values supplied for its recorded nodes.
    recorded: Vec<Recorded<T>>,
}

impl<T: Scalar> Interp<T> {
    /// A rule application over `graphs` (one per parameter), all state unwritten. `seed` feeds
    /// the random draws; graph `k` draws from its own sequence derived from `seed` and `k`, so
    /// parameters of one shape do not get the same noise.
    pub fn new(graphs: Vec<Graph>, seed: u64) -> Self {
        let slots = graphs.iter().map(|g| vec![None; g.slots.len()]).collect();
        let mut sites: Sites = Vec::new();
        for (k, g) in graphs.iter().enumerate() {
            for (id, n) in g.nodes.iter().enumerate() {
                if let Op::Group { site, .. } = n.op {
                    match sites.iter_mut().find(|(s, _)| *s == site) {
                        Some((_, members)) => members.push((k, id)),
                        None => sites.push((site, vec![(k, id)])),
                    }
                }
            }
        }
        let recorded = graphs.iter().map(|_| Recorded::new()).collect();
        Interp { graphs, slots, sites, seed, recorded }
    }

    /// The graphs, one per parameter.
    pub fn graphs(&self) -> &[Graph] {
        &self.graphs
    }

    /// One optimizer step (1-based `step`): for each parameter k, evaluates graph k with
    /// `params[k]` and `inputs[k]` (`inputs[k][0]` is the gradient), writes the states, and
    /// returns the directions (to be ADDED to the parameters by the caller), each of its
    /// parameter's shape.
    pub fn step(
        &mut self,
        step: u64,
        params: &[ArrayD<T>],
        inputs: &[Vec<ArrayD<T>>],
    ) -> Result<Vec<ArrayD<T>>, InterpError> {
        let n = self.graphs.len();
        if params.len() != n || inputs.len() != n {
            let at = self.graphs.first().map_or(0, |g| g.output);
            let msg = format!("{n} graphs but {} parameters and {} input lists", params.len(), inputs.len());
            return Err(InterpError::new(at, msg));
        }
        let mut evs: Vec<Evaluator<T>> = (0..n)
            .map(|k| {
                Evaluator::new(Env {
                    graph: &self.graphs[k],
                    step,
                    param: Some(&params[k]),
                    inputs: &inputs[k],
                    states: &self.slots[k],
                    seed: random::param_seed(self.seed, k),
                    grouped: true,
                    recorded: Some(&self.recorded[k]),
                })
            })
            .collect();
        // Phase 1: group reductions, each finalized before any later one can read it.
        for (site, members) in &self.sites {
            let mut total: Option<T> = None;
            for (i, &(k, id)) in members.iter().enumerate() {
                if members[..i].iter().any(|&(k2, _)| k2 == k) {
                    return Err(InterpError::new(id, format!("group site {site} appears twice in graph {k}")));
                }
                let Op::Group { arg, .. } = self.graphs[k].nodes[id].op else { unreachable!("sites hold groups") };
                let v = evs[k].eval(arg)?;
                if v.ndim() != 0 {
                    let msg = format!("a group reduction needs a scalar, got shape {:?}", v.shape());
                    return Err(InterpError::new(id, msg));
                }
                let x = v[IxDyn(&[])];
                total = Some(total.map_or(x, |t| t + x));
            }
            let total = total.expect("a site has at least one member");
            for &(k, id) in members {
                evs[k].set(id, ArrayD::from_elem(IxDyn(&[]), total))?;
            }
        }
        // Phase 2: outputs and state writes.
        let mut dirs = Vec::with_capacity(n);
        let mut writes = Vec::with_capacity(n);
        for (k, ev) in evs.iter_mut().enumerate() {
            let g = &self.graphs[k];
            let d = ev.eval(g.output)?.clone();
            if d.shape() != params[k].shape() {
                let msg = format!("the direction has shape {:?}, the parameter {:?}", d.shape(), params[k].shape());
                return Err(InterpError::new(g.output, msg));
            }
            dirs.push(d);
            let mut w: Vec<(usize, ArrayD<T>)> = Vec::with_capacity(g.state_writes.len());
            for &(slot, node) in &g.state_writes {
                let Some(s) = g.slots.get(slot) else {
                    return Err(InterpError::new(node, format!("write to slot {slot} of {}", g.slots.len())));
                };
                if w.iter().any(|(s2, _)| *s2 == slot) {
                    return Err(InterpError::new(node, format!("slot {slot} ({}) written twice", s.name)));
                }
                let v = ev.eval(node)?;
                if v.shape() != s.shape.as_slice() {
                    let msg = format!("state {} has shape {:?}, its new value {:?}", s.name, s.shape, v.shape());
                    return Err(InterpError::new(node, msg));
                }
                w.push((slot, v.clone()));
            }
            writes.push(w);
        }
        drop(evs);
        for (k, w) in writes.into_iter().enumerate() {
            for (slot, v) in w {
                self.slots[k][slot] = Some(v);
            }
        }
        Ok(dirs)
    }

    /// Supplies the values of graph `k`'s recorded nodes ([`Op::Recorded`]) for the steps to
    /// come, replacing any given before: a replay substituting a peer's arbitrary choices. Fails,
    /// changing nothing, when a name is not recorded in the graph or a value has the wrong shape.
    pub fn set_recorded(&mut self, k: usize, recorded: Recorded<T>) -> Result<(), String> {
        let Some(g) = self.graphs.get(k) else {
            return Err(format!("no graph {k} ({} graphs)", self.graphs.len()));
        };
        recorded.check(g)?;
        self.recorded[k] = recorded;
        Ok(())
    }

    /// The values supplied for graph `k`'s recorded nodes (empty unless [`Interp::set_recorded`]
    /// gave some), for backends that run the same graphs.
    pub fn recorded(&self, k: usize) -> Option<&Recorded<T>> {
        self.recorded.get(k)
    }

    /// The current value of state slot `slot` of graph `k` (None before its first write).
    pub fn state(&self, k: usize, slot: usize) -> Option<&ArrayD<T>> {
        self.slots.get(k)?.get(slot)?.as_ref()
    }

    /// Sets state slot `slot` of graph `k` (restoring a checkpoint); the value must have the
    /// slot's shape.
    pub fn set_state(&mut self, k: usize, slot: usize, value: ArrayD<T>) -> Result<(), String> {
        let Some(s) = self.graphs.get(k).and_then(|g| g.slots.get(slot)) else {
            return Err(format!("no state slot {slot} in graph {k}"));
        };
        if value.shape() != s.shape.as_slice() {
            return Err(format!("state {} has shape {:?}, the value {:?}", s.name, s.shape, value.shape()));
        }
        self.slots[k][slot] = Some(value);
        Ok(())
    }
}

/// [`eval_nodes`] taking its inputs by value: each input moves into its node, and a reshape of
/// a value read by nothing else moves it too, so an initialization that reshapes a loaded
/// dataset copies nothing.
pub fn eval_nodes_owned<T: Scalar>(
    graph: &Graph,
    step: u64,
    inputs: Vec<ArrayD<T>>,
    seed: u64,
    nodes: &[NodeId],
) -> Result<Vec<ArrayD<T>>, InterpError> {
    let env = Env { graph, step, param: None, inputs: &[], states: &[], seed, grouped: false, recorded: None };
    let mut ev = Evaluator::new(env);
    let mut inputs: Vec<Option<ArrayD<T>>> = inputs.into_iter().map(Some).collect();
    let mut readers = vec![0usize; inputs.len()];
    for n in &graph.nodes {
        if let Op::Input(k) = n.op {
            if let Some(r) = readers.get_mut(k) {
                *r += 1;
            }
        }
    }
    for (id, n) in graph.nodes.iter().enumerate() {
        let Op::Input(k) = n.op else { continue };
        let given = inputs.len();
        let value = match (readers.get_mut(k), inputs.get_mut(k)) {
            (Some(r), Some(slot)) => {
                *r -= 1;
                if *r == 0 {
                    slot.take()
                } else {
                    slot.clone()
                }
            }
            _ => None,
        };
        let value = value.ok_or_else(|| InterpError::new(id, format!("input {k} is not given ({given} given)")))?;
        ev.set(id, value)?;
    }
    ev.consume_sole_uses(nodes);
    eval_and_take(&mut ev, nodes)
}

/// Evaluates a graph with no state and no group (for expressions: the REPL): returns the output.
/// State slots read as zeros; a group reduction over the single parameter is its argument.
pub fn eval_once<T: Scalar>(
    graph: &Graph,
    step: u64,
    param: Option<&ArrayD<T>>,
    inputs: &[ArrayD<T>],
    seed: u64,
) -> Result<ArrayD<T>, InterpError> {
    let mut ev = Evaluator::new(Env { graph, step, param, inputs, states: &[], seed, grouped: false, recorded: None });
    Ok(ev.eval(graph.output)?.clone())
}

/// Evaluates the given nodes of a graph (no state, no group: a group node is its own argument)
/// with its inputs, at `step`, with random draws from `seed`; values in the order asked.
///
/// One evaluation serves every node, so sub-expressions they share (a loss and its gradient
/// share the forward pass) are computed once and the random draws agree between them. The graph
/// must not read a parameter ([`Op::Param`]): pass it as an input instead.
pub fn eval_nodes<T: Scalar>(
    graph: &Graph,
    step: u64,
    inputs: &[ArrayD<T>],
    seed: u64,
    nodes: &[NodeId],
) -> Result<Vec<ArrayD<T>>, InterpError> {
    let env = Env { graph, step, param: None, inputs, states: &[], seed, grouped: false, recorded: None };
    eval_and_take(&mut Evaluator::new(env), nodes)
}

/// Evaluates `nodes` and moves their values out of the evaluator (a node asked for twice is
/// cloned for its first use).
fn eval_and_take<T: Scalar>(ev: &mut Evaluator<'_, T>, nodes: &[NodeId]) -> Result<Vec<ArrayD<T>>, InterpError> {
    for &n in nodes {
        ev.eval(n)?;
    }
    let mut out = Vec::with_capacity(nodes.len());
    for (i, &n) in nodes.iter().enumerate() {
        let again = nodes[i + 1..].contains(&n);
        out.push(ev.take(n, again)?);
    }
    Ok(out)
}
