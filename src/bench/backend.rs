//! The executor behind `--backend`, chosen in ONE place ([`Backend::rule`], [`Backend::graph`]),
//! so the workloads never name the interpreter or the JIT: the JIT executor
//! (`optic_compiler::exec`, the default) or the reference interpreter.

use optic_compiler::exec::{GraphExec, Lane, RuleExec};
use optic_compiler::interp::{eval_nodes, ArrayD, Interp, Scalar};
use optic_compiler::ir::{Graph, NodeId};

/// The element types the bench runs in (f32, f64): whatever both executors accept.
pub trait Elem: Lane + Default + Send + Sync {}

impl Elem for f32 {}
impl Elem for f64 {}

/// Which executor runs the compiled graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The reference interpreter (`optic_compiler::interp`).
    Interp,
    /// The executor: fused Cranelift kernels, library calls for the rest (`optic_compiler::exec`).
    Jit,
}

/// A rule applied to a group of parameters, step by step, keeping its state.
pub trait RuleRunner<T> {
    /// One step (1-based): adds the rule's directions to `params` in place; `inputs[k][0]` is
    /// parameter k's gradient.
    fn step_apply(&mut self, step: u64, params: &mut [ArrayD<T>], inputs: &[Vec<ArrayD<T>>]) -> Result<(), String>;
}

/// A stateless graph evaluated at fixed nodes (a loss and its gradients), again and again.
pub trait GraphRunner<T> {
    /// The values of the nodes at `step` with `inputs`, drawing with `seed`, into `outs`, whose
    /// arrays (from the previous step, handed back) it may reuse.
    fn run_into(&mut self, step: u64, inputs: &[ArrayD<T>], seed: u64, outs: &mut Vec<ArrayD<T>>)
        -> Result<(), String>;
}

impl Backend {
    /// The name printed in the JSON lines.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
            Backend::Jit => "jit",
        }
    }

    /// A runner for a rule compiled to `graphs` (one per parameter), state unwritten.
    pub fn rule<T: Elem + 'static>(self, graphs: Vec<Graph>, seed: u64) -> Result<Box<dyn RuleRunner<T>>, String> {
        match self {
            Backend::Interp => Ok(Box::new(InterpRule(Interp::new(graphs, seed)))),
            Backend::Jit => Ok(Box::new(JitRule(RuleExec::new(graphs, seed)))),
        }
    }

    /// A runner computing `nodes` of `graph`.
    pub fn graph<T: Elem + 'static>(self, graph: Graph, nodes: Vec<NodeId>) -> Result<Box<dyn GraphRunner<T>>, String> {
        match self {
            Backend::Interp => Ok(Box::new(InterpGraph { graph, nodes })),
            Backend::Jit => Ok(Box::new(JitGraph(GraphExec::new(graph, nodes)))),
        }
    }
}

struct JitRule<T: Lane>(RuleExec<T>);

impl<T: Elem> RuleRunner<T> for JitRule<T> {
    fn step_apply(&mut self, step: u64, params: &mut [ArrayD<T>], inputs: &[Vec<ArrayD<T>>]) -> Result<(), String> {
        self.0.step_apply(step, params, inputs).map_err(|e| e.to_string())
    }
}

struct JitGraph<T: Lane>(GraphExec<T>);

impl<T: Elem> GraphRunner<T> for JitGraph<T> {
    fn run_into(
        &mut self,
        step: u64,
        inputs: &[ArrayD<T>],
        seed: u64,
        outs: &mut Vec<ArrayD<T>>,
    ) -> Result<(), String> {
        self.0.run_into(step, inputs, seed, outs).map_err(|e| e.to_string())
    }
}

struct InterpRule<T: Scalar>(Interp<T>);

impl<T: Elem> RuleRunner<T> for InterpRule<T> {
    fn step_apply(&mut self, step: u64, params: &mut [ArrayD<T>], inputs: &[Vec<ArrayD<T>>]) -> Result<(), String> {
        // The interpreter returns fresh directions; adding them in place is the caller's part of
        // a step in every harness (`optic run`, `optic replay`), so it is inside the timing.
        let dirs = self.0.step(step, params, inputs).map_err(|e| e.to_string())?;
        for (p, d) in params.iter_mut().zip(&dirs) {
            *p += d;
        }
        Ok(())
    }
}

struct InterpGraph {
    graph: Graph,
    nodes: Vec<NodeId>,
}

impl<T: Elem> GraphRunner<T> for InterpGraph {
    fn run_into(
        &mut self,
        step: u64,
        inputs: &[ArrayD<T>],
        seed: u64,
        outs: &mut Vec<ArrayD<T>>,
    ) -> Result<(), String> {
        *outs = eval_nodes(&self.graph, step, inputs, seed, &self.nodes).map_err(|e| e.to_string())?;
        Ok(())
    }
}
