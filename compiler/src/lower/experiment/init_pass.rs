//! The init pass: one walk over an experiment's statements, in order, lowering into the init
//! graph what is computed once (models, `let`s, fixed datasets) and collecting what the graphs
//! run every step need (the loss, `optimize` rules, `log` entries, fresh data). It is a single
//! pass because a statement may use any earlier binding, and overrides (`--set`, sweep points)
//! must replace a `let` or setting where it is bound, before anything uses it. This file holds
//! the pass's state, the statement dispatch and the overrides; the statements themselves are
//! lowered in `bindings`, `data` and `training`.

use super::data::DataStmt;
use super::training::OptimizeStmt;
use super::{Plan, Sweep};
use crate::check::Program;
use crate::diag::{codes, Diagnostic};
use crate::ir::{Graph, Op};
use crate::lower::model::{TensorDef, VarMode};
use crate::lower::{error, Frame, LResult, Lowerer, Lv, UNSUPPORTED};
use crate::source::SourceFile;
use crate::syntax::ast::{Body, Expr, LogEntry, Pattern, Span, Stmt, StmtKind};
use std::sync::Arc;

/// A `--set` or sweep-point value for a `let` or setting, as an expression of its own text.
pub(super) struct Override {
    name: String,
    expr: Expr,
    /// Its text, so that its diagnostics point into it rather than into the experiment.
    source: Arc<SourceFile>,
    /// Whether a `let` or setting of that name took it: an override nothing takes is a typo.
    used: bool,
}

/// Parses the overrides (name, expression text), each as a file of its own.
pub(super) fn parse_overrides(overrides: &[(String, String)]) -> LResult<Vec<Override>> {
    let mut parsed = Vec::new();
    for (k, text) in overrides {
        let src = Arc::new(SourceFile::new(format!("--set {k}"), text.clone()));
        let e = crate::syntax::parse_expr(&src).map_err(Box::new)?;
        parsed.push(Override { name: k.clone(), expr: e, source: src, used: false });
    }
    Ok(parsed)
}

/// What the init pass gathers for the graphs lowered after it, which all start from its bindings.
#[derive(Default)]
pub(super) struct Collected {
    /// The `loss = ...` expression, lowered in the training and metrics graphs.
    pub(super) loss: Option<Expr>,
    /// The `optimize` statements, with their rules evaluated.
    pub(super) optimize: Vec<OptimizeStmt>,
    /// (period, entries) of each `log` statement.
    pub(super) logs: Vec<(u64, Vec<LogEntry>)>,
    /// The `data` statements, in the order of [`Plan::datasets`].
    pub(super) data: Vec<DataStmt>,
}

/// The outcome of the init pass.
pub(super) struct Initialized {
    /// The plan so far: settings, configuration, data fields and sets, checkpoints, and the init
    /// graph with the files it reads.
    pub(super) plan: Plan,
    /// The sweep's axes.
    pub(super) sweep: Sweep,
    /// The experiment's frame: its outer scope is where every later graph starts, and its file is
    /// where later diagnostics point.
    pub(super) frame: Frame,
    /// The experiment's tensors, their initial values nodes of `plan.init`.
    pub(super) tensors: Vec<TensorDef>,
    /// Random draws made so far; later graphs continue the count so that their draws differ.
    pub(super) streams: u64,
    /// `let`s that depend on the step, lowered again in each graph run every step.
    pub(super) deferred: Vec<(String, Expr)>,
    /// What the statements left for the later graphs.
    pub(super) collected: Collected,
}

/// The state of the init pass while it walks the statements.
pub(super) struct InitPass<'p> {
    /// Lowers into the init graph.
    pub(super) lw: Lowerer<'p>,
    /// The experiment's frame; its bindings grow statement by statement.
    pub(super) f: Frame,
    over: Vec<Override>,
    /// The plan, filled in as settings, data and checkpoints are met.
    pub(super) plan: Plan,
    /// The sweep's axes so far.
    pub(super) sweep: Sweep,
    /// `let`s that depend on the step, kept to be lowered again in each graph run every step.
    pub(super) deferred: Vec<(String, Expr)>,
    /// What the statements leave for the later graphs.
    pub(super) collected: Collected,
}

/// Runs the init pass over experiment `id` (named `name`) with `over` replacing its `let`s and
/// settings.
pub(super) fn run(prog: &Program, id: usize, name: &str, over: Vec<Override>) -> LResult<Initialized> {
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let source = prog.units[unit].source.clone();
    let mut lw = Lowerer::new(prog);
    lw.vars.mode = VarMode::Init;
    let step = lw.node(Op::Step, Vec::new());
    let f = Frame { unit, source, scopes: vec![Vec::new()], step, inst: None, conds: Vec::new(), reset: None };
    let mut init = InitPass {
        lw,
        f,
        over,
        plan: empty_plan(name),
        sweep: Sweep::default(),
        deferred: Vec::new(),
        collected: Collected::default(),
    };
    let Body::Block(block) = &decl.body else { unreachable!("the checker accepted the experiment") };
    for s in &block.stmts {
        init.statement(s)?;
    }
    init.check_overrides_used()?;
    Ok(init.finish())
}

/// A plan with nothing lowered yet.
fn empty_plan(name: &str) -> Plan {
    Plan {
        name: name.to_string(),
        seed: 0,
        steps: 0,
        dtype: None,
        tensors: Vec::new(),
        trained: Vec::new(),
        files: Vec::new(),
        init: Graph::default(),
        data: Vec::new(),
        datasets: Vec::new(),
        fresh: Graph::default(),
        train: Graph::default(),
        loss: 0,
        grads: Vec::new(),
        metrics: Vec::new(),
        merged: Default::default(),
        groups: Vec::new(),
        checkpoint_every: None,
        config: Vec::new(),
    }
}

impl InitPass<'_> {
    /// Lowers or collects one statement of the experiment.
    fn statement(&mut self, s: &Stmt) -> LResult<()> {
        match &s.kind {
            StmtKind::Let { pattern: Pattern::Name(n), value, .. } => self.let_binding(&n.name, value),
            StmtKind::Assign { place, value, clauses, .. } => self.assign(&place.parts[0].name, value, clauses),
            StmtKind::Data { names, source, options } => self.data(s.span, names, source, options),
            StmtKind::Optimize { paths, rule } => self.optimize(paths, rule),
            StmtKind::Init { paths, init } => self.init_override(paths, init),
            StmtKind::Log { every, entries } => {
                let period = self.whole_number(every, "a logging period")?;
                self.collected.logs.push((period, entries.clone()));
                Ok(())
            }
            StmtKind::Checkpoint { every } => {
                self.plan.checkpoint_every = Some(self.whole_number(every, "a checkpoint period")?);
                Ok(())
            }
            StmtKind::Sweep { axes } => self.sweep_axes(axes),
            _ => Err(error(&self.f, s.span, UNSUPPORTED, "this statement is not supported in an experiment")),
        }
    }

    /// The value of the override of `name`, if there is one. It is lowered in the experiment's
    /// frame, so that it may use earlier `let`s, but its diagnostics point into its own text.
    pub(super) fn overridden(&mut self, name: &str) -> LResult<Option<Lv>> {
        let Some(o) = self.over.iter_mut().find(|o| o.name == name) else { return Ok(None) };
        o.used = true;
        let saved = std::mem::replace(&mut self.f.source, o.source.clone());
        let v = self.lw.expr(&mut self.f, &o.expr);
        self.f.source = saved;
        v.map(Some)
    }

    /// Fails on an override that no `let` or setting took, listing those it could have named.
    fn check_overrides_used(&self) -> LResult<()> {
        let Some(o) = self.over.iter().find(|o| !o.used) else { return Ok(()) };
        let names: Vec<&str> = self.plan.config.iter().map(|(n, _)| n.as_str()).collect();
        Err(Box::new(
            Diagnostic::error(
                codes::UNKNOWN_NAME,
                &o.source,
                Span { start: 0, end: o.source.text.len() },
                format!("`{}` is not a `let` or setting of experiment `{}`", o.name, self.plan.name),
                "not used",
            )
            .with_help(format!("it has: {}", names.join(", "))),
        ))
    }

    /// Closes the init graph (the initial values of the tensors and the fixed datasets, reading
    /// the loaded files as its inputs) and hands the tensors over to the later graphs.
    fn finish(self) -> Initialized {
        let InitPass { mut lw, f, mut plan, sweep, deferred, collected, .. } = self;
        plan.files = std::mem::take(&mut lw.vars.files);
        let tensors = std::mem::take(&mut lw.vars.tensors);
        let streams = lw.streams;
        plan.init = std::mem::take(&mut lw.g);
        plan.init.inputs = plan.files.iter().map(|(_, a)| a.shape().to_vec()).collect();
        Initialized { plan, sweep, frame: f, tensors, streams, deferred, collected }
    }
}
