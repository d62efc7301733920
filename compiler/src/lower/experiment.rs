//! Experiments: a checked `experiment` becomes a [`Plan`], the graphs a runner needs and what
//! connects them. Lowering runs in passes over the experiment's statements. The init pass
//! builds the models (each `param`'s initializer lowered into the init graph, `with` edits and
//! adapters applied, `init ... with` overrides), evaluates the fixed datasets and collects the
//! loss, the `optimize` statements, the metrics, checkpoints and the sweep. Then one graph per
//! role is lowered from the same bindings, where every experiment tensor is an input: the data
//! drawn fresh each step, the training step (the loss and, by reverse-mode differentiation, its
//! gradient with respect to every trained tensor) and the metrics on each data split. Rules are
//! lowered per trained tensor as in `optic replay`. Overrides (`--set`, sweep points) replace a
//! `let` or a setting before anything uses it, so shapes may change between sweep points.
//! The passes live in submodules: `init_pass` walks the statements, lowering `let`s, settings
//! and models in `bindings` and `data` statements in `data`; `pass` lowers each graph run every
//! step; `data` also lowers the fresh data's graph, and `training` the training step and the
//! rules. This file holds the plan's types and the driver that chains the passes.

mod bindings;
mod data;
mod init_pass;
mod pass;
mod training;

pub(super) use pass::Pass;

use super::model::TensorDef;
use crate::check::Program;
use crate::diag::{codes, Diagnostic};
use crate::ir::{Graph, NodeId};
use crate::syntax::ast::Span;

/// One data field (`x` of `data x, y = ...`).
#[derive(Clone, Debug)]
pub struct DataField {
    /// Its name.
    pub name: String,
    /// The shape of one step's batch (what the training graph reads).
    pub batch_shape: Vec<usize>,
}

/// A `data` statement.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// Indices of its fields in [`Plan::data`].
    pub fields: Vec<usize>,
    /// For a fixed dataset: per field, its root in the init graph (the whole dataset).
    pub init_roots: Vec<NodeId>,
    /// For fresh data: per field, its root in the fresh graph.
    pub fresh_roots: Vec<NodeId>,
    /// Rows of a fixed dataset (all fields share the first axis).
    pub rows: usize,
    /// Rows held out for evaluation.
    pub holdout: usize,
    /// Mini-batch size (`None`: every training row every step).
    pub batch: Option<usize>,
}

/// Which data a metrics graph reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training rows (all of them, not a batch; fresh data: a draw of its own).
    Train,
    /// The held-out rows; only metrics that read data.
    Eval,
}

/// The metrics of one split.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The data it reads.
    pub split: Split,
    /// Inputs: tensors, initial tensors, data fields with this split's shapes.
    pub graph: Graph,
    /// (name, root, logging period).
    pub entries: Vec<(String, NodeId, u64)>,
}

/// The rule of one `optimize` statement.
#[derive(Clone, Debug)]
pub struct Group {
    /// The rule's source text.
    pub rule: String,
    /// The trained tensors.
    pub tensors: Vec<usize>,
    /// One rule graph per tensor.
    pub graphs: Vec<Graph>,
    /// For a rule that evaluates the gradient at another point (`grad_at`), one probe graph
    /// per tensor ([`super::probe_graph`]: the point, from the same inputs; the parameter itself
    /// for a tensor whose rule asks for no other point); empty otherwise.
    pub probes: Vec<Graph>,
}

/// Everything a runner needs to run an experiment (one point of its sweep).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The experiment's name.
    pub name: String,
    /// `seed`.
    pub seed: u64,
    /// `steps`.
    pub steps: u64,
    /// `dtype`, if set.
    pub dtype: Option<String>,
    /// Every tensor kept across steps, in input order.
    pub tensors: Vec<TensorDef>,
    /// Whether each tensor is trained.
    pub trained: Vec<bool>,
    /// Arrays read from files: the init graph's inputs, in order.
    pub files: Vec<(String, optic_runtime::data::Values)>,
    /// Initial values of the tensors and the fixed datasets (evaluated once, at step 0).
    pub init: Graph,
    /// The data fields, in input order.
    pub data: Vec<DataField>,
    /// The `data` statements.
    pub datasets: Vec<DataSet>,
    /// Data drawn every step; inputs as the training graph's.
    pub fresh: Graph,
    /// The training step. Inputs: tensors, initial tensors, data batches.
    pub train: Graph,
    /// The loss in `train`.
    pub loss: NodeId,
    /// (tensor, gradient node in `train`) for every trained tensor.
    pub grads: Vec<(usize, NodeId)>,
    /// Metrics per split.
    pub metrics: Vec<Metrics>,
    /// The effective weight of every adapted tensor, for checkpoints; inputs as the training graph's.
    pub merged: super::merged::Merged,
    /// The rules.
    pub groups: Vec<Group>,
    /// `checkpoint every n`.
    pub checkpoint_every: Option<u64>,
    /// Resolved settings and `let`s, as text, for the run's configuration file.
    pub config: Vec<(String, String)>,
}

/// A sweep: its axes and their values as source text.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// (name, values).
    pub axes: Vec<(String, Vec<String>)>,
}

impl Sweep {
    /// Every point of the grid, the first axis slowest.
    pub fn points(&self) -> Vec<Vec<(String, String)>> {
        let mut points = vec![Vec::new()];
        for (name, values) in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q: Vec<(String, String)> = p.clone();
                        q.push((name.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        points
    }
}

/// The experiments of a checked program's root file, by name, in order.
pub fn experiments(prog: &Program) -> Vec<String> {
    let root = prog.units.iter().position(|u| u.root).unwrap_or(0);
    (0..prog.decls.len())
        .filter(|&id| prog.decls[id].unit == root && prog.decl(id).kind == crate::syntax::ast::DeclKind::Experiment)
        .map(|id| prog.decl(id).name.name.clone())
        .collect()
}

/// Lowers experiment `name` of a checked program with `overrides` (name, expression text)
/// replacing its `let`s and settings. Also returns its sweep (the values are not applied).
/// Lowering recurses with the program's nesting: run it on a big stack ([`crate::on_big_stack`]).
pub fn lower_experiment(
    prog: &Program,
    name: &str,
    overrides: &[(String, String)],
) -> Result<(Plan, Sweep), Box<Diagnostic>> {
    lower_inner(prog, name, overrides)
}

/// Runs the pipeline: the init pass over the statements, then the graphs run every step (the
/// fresh data first, since its shapes are those of the other graphs' data inputs), then the rules.
fn lower_inner(prog: &Program, name: &str, overrides: &[(String, String)]) -> Result<(Plan, Sweep), Box<Diagnostic>> {
    let id = find_experiment(prog, name)?;
    let overrides = init_pass::parse_overrides(overrides)?;
    let init_pass::Initialized { mut plan, sweep, frame, tensors, streams, deferred, collected } =
        init_pass::run(prog, id, name, overrides)?;
    let (trained, group_tensors) = training::trained_tensors(&frame, &collected.optimize, &tensors)?;

    let names: Vec<String> = plan.data.iter().map(|d| d.name.clone()).collect();
    let mut pass = Pass {
        prog,
        unit: frame.unit,
        source: &frame.source,
        scope: &frame.scopes[0],
        tensors,
        streams,
        data: &names,
        deferred: &deferred,
    };
    let (fresh, shapes) = data::lower_fresh_data(&mut pass, &mut plan, &collected.data)?;
    let loss_expr = collected.loss.clone().expect("the checker requires a loss");
    let step = training::lower_training_step(&frame, &mut pass, &shapes, &loss_expr, &trained)?;
    plan.grads = step.grads;
    plan.loss = step.loss;
    // Metrics, on the training data and, where some data is held out, on the held-out rows.
    plan.metrics =
        super::metrics::lower_metrics(&mut pass, &plan.datasets, &collected.logs, &loss_expr, &shapes, &trained)?;
    plan.merged = super::merged::lower_merged(&mut pass, &shapes)?;
    plan.groups = training::lower_groups(&pass, &collected.optimize, group_tensors)?;
    plan.fresh = fresh;
    plan.train = step.graph;
    plan.trained = trained;
    plan.tensors = pass.tensors;
    Ok((plan, sweep))
}

/// The declaration of experiment `name` in the root file.
fn find_experiment(prog: &Program, name: &str) -> Result<usize, Box<Diagnostic>> {
    let root = prog.units.iter().position(|u| u.root).unwrap_or(0);
    (0..prog.decls.len())
        .find(|&id| {
            prog.decls[id].unit == root
                && prog.decl(id).kind == crate::syntax::ast::DeclKind::Experiment
                && prog.decl(id).name.name == name
        })
        .ok_or_else(|| {
            let src = prog.units[root].source.clone();
            Box::new(Diagnostic::error(
                codes::UNKNOWN_NAME,
                &src,
                Span { start: 0, end: 0 },
                format!("no experiment `{name}` in this file"),
                "here",
            ))
        })
}
