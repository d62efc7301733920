//! Lowering: a checked rule expression and the shapes of the parameters it updates become one IR
//! [`Graph`] per parameter. Lowering is a staged evaluation of the syntax tree: what is known
//! before running (numbers, booleans, lists, rules and their hyperparameters, shapes, loop
//! counts) is computed here, and what depends on the step, the gradient, the parameter or the
//! state becomes graph nodes ([`Lv::T`]). Higher-order rules are thereby specialized: applying
//! `galore(inner = adam(...))` lowers adam's body inside galore's, with its own state slots, and
//! `for r in rules` is unrolled. Each rule application is an instance with its own step counter
//! (`reset every` restarts it) and a runtime "fresh" flag on which its states take their initial
//! values; a runtime `if` becomes a `Select`, and state updates made under it are selected too.

mod builtins;
mod calibration;
pub mod experiment;
mod expr;
pub mod merged;
mod metrics;
pub mod model;
mod stmt;

use crate::check::{Program, Unit};
use crate::diag::{codes, Diagnostic};
use crate::ir::{Binary, Graph, NodeId, Op};
use crate::source::SourceFile;
use crate::syntax::ast::Span;
use std::rc::Rc;
use std::sync::Arc;

/// A value during lowering: known now, or a node of the graph.
#[derive(Clone, Debug)]
pub enum Lv {
    /// A known number.
    Num(f64),
    /// A known integer (sizes, counts, indices).
    Int(i64),
    /// A known boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A value computed when running: a graph node (a scalar if its shape is empty).
    T(NodeId),
    /// A list known now (its items may be nodes).
    List(Vec<Lv>),
    /// A tuple.
    Tuple(Vec<Lv>),
    /// A declaration not yet called.
    Decl(usize),
    /// A builtin not yet called.
    Builtin(&'static str),
    /// A rule with its hyperparameters.
    Rule(Rc<RuleVal>),
    /// A schedule with its hyperparameters; used as a number it is evaluated at the current step.
    Sched(Rc<Applied>),
    /// An init with its hyperparameters.
    Init(Rc<Applied>),
    /// A function value.
    Fn(FnVal),
    /// An adapter with its hyperparameters.
    Adapter(Rc<Applied>),
    /// A model instance (in an experiment).
    Model(Rc<model::ModelInst>),
    /// Experiment tensor `k`: its value in the graph being lowered.
    Var(usize),
}

/// A declaration applied to hyperparameters (unlisted ones take their defaults).
#[derive(Clone, Debug)]
pub struct Applied {
    /// The declaration.
    pub decl: usize,
    /// Hyperparameter values by name.
    pub args: Vec<(String, Lv)>,
}

/// A rule value.
#[derive(Clone, Debug)]
pub enum RuleVal {
    /// A declared rule with its hyperparameters.
    Decl(Applied),
    /// `partition(matrices = ..., vectors = ...)`: routes by the parameter's rank.
    Partition {
        /// For tensors of rank 2 and more.
        matrices: Lv,
        /// For the others.
        vectors: Lv,
    },
    /// `mask(inner, paths)`: `inner` on the parameters a path names, the input unchanged on the
    /// others (optax.masked).
    Mask {
        /// The rule applied where the mask holds.
        inner: Lv,
        /// Path patterns.
        paths: Vec<String>,
    },
    /// `route(paths, then, otherwise)`: `then` on the parameters a path names, `otherwise` on the
    /// rest (optax.multi_transform with two labels).
    Route {
        /// Path patterns.
        paths: Vec<String>,
        /// For matching parameters.
        then: Lv,
        /// For the others.
        otherwise: Lv,
    },
    /// `rebase(inner, t, at, axis)`: `inner`, whose `moves like` states are carried by the basis
    /// change `t` (a square matrix) along `axis` at the steps where `at` holds.
    Rebase {
        /// The rule whose states move.
        inner: Lv,
        /// The basis change, a square matrix node: new coordinates = t @ old ones.
        t: NodeId,
        /// The runtime condition (a scalar node) of the steps where the basis changes.
        at: NodeId,
        /// The axis of the states that is in the input's basis.
        axis: usize,
    },
}

/// A basis change in force while a `rebase` applies its inner rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BasisChange {
    pub t: NodeId,
    pub at: NodeId,
    pub axis: usize,
}

/// A function value.
#[derive(Clone, Debug)]
pub enum FnVal {
    /// A declared `fn`.
    Decl(usize),
    /// A builtin such as `tanh`.
    Builtin(&'static str),
}

/// A binding in a scope.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub value: Lv,
    /// `var` or `state`: assignable.
    pub mutable: bool,
    /// For a state: its slot.
    pub slot: Option<usize>,
}

/// A rule application being lowered.
#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// Names its state slots, e.g. `0:adamw/1:adam`.
    pub path: String,
    /// Its step counter (1-based), a node.
    pub step: NodeId,
    /// 1 when its states take their initial values, a node.
    pub fresh: NodeId,
    /// The conjunction of the runtime `if` conditions it was applied under, if any.
    pub guard: Option<NodeId>,
    /// Rule applications made so far in it (names the next one).
    pub calls: usize,
}

/// One body being lowered: its file, scopes, step, and enclosing rule instance.
pub(crate) struct Frame {
    pub unit: usize,
    pub source: Arc<SourceFile>,
    pub scopes: Vec<Vec<(String, Binding)>>,
    /// The step seen by `step` and by schedules used as numbers.
    pub step: NodeId,
    /// The rule instance whose state and `param` this body sees.
    pub inst: Option<Instance>,
    /// Runtime conditions of the enclosing `if`s in this body.
    pub conds: Vec<NodeId>,
    /// A `reset every` period applying to the rule applications of the current statement.
    pub reset: Option<i64>,
}

impl Frame {
    pub(crate) fn get(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|s| s.iter().rev().find(|(n, _)| n == name).map(|(_, b)| b))
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Binding> {
        self.scopes.iter_mut().rev().find_map(|s| s.iter_mut().rev().find(|(n, _)| n == name).map(|(_, b)| b))
    }

    pub(crate) fn bind(&mut self, name: &str, b: Binding) {
        let scope = self.scopes.last_mut().expect("a frame has a scope");
        match scope.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = b,
            None => scope.push((name.to_string(), b)),
        }
    }
}

/// A lowering failure.
pub type LResult<T> = Result<T, Box<Diagnostic>>;

/// The lowerer of one graph.
pub(crate) struct Lowerer<'p> {
    pub prog: &'p Program,
    pub g: Graph,
    /// Group reductions so far (their sites match across the graphs of one application).
    pub sites: u32,
    /// Random draws so far.
    pub streams: u64,
    /// Declarations being inlined, against runaway recursion.
    pub depth: usize,
    /// The path of the parameter being updated, when known (`mask` and `route` need it).
    pub path: Option<String>,
    /// An experiment's tensors and how they appear in this graph.
    pub(crate) vars: model::Vars,
    /// Nodes made by `detach`: differentiation does not pass through them.
    pub detached: Vec<NodeId>,
    /// In a rule graph, the point `grad_at(point)` asks for the gradient at (the graph then reads
    /// that gradient as its input 1).
    pub probe: Option<NodeId>,
    /// The basis changes of the `rebase`s whose inner rule is being lowered, outermost first.
    pub(crate) rebases: Vec<BasisChange>,
}

impl<'p> Lowerer<'p> {
    fn new(prog: &'p Program) -> Self {
        Lowerer {
            prog,
            g: Graph::default(),
            sites: 0,
            streams: 0,
            depth: 0,
            path: None,
            vars: model::Vars::default(),
            detached: Vec::new(),
            probe: None,
            rebases: Vec::new(),
        }
    }

    /// Adds a node.
    pub fn node(&mut self, op: Op, shape: Vec<usize>) -> NodeId {
        self.g.push(op, shape)
    }

    /// A scalar constant node.
    pub fn constant(&mut self, x: f64) -> NodeId {
        self.node(Op::Const(x), Vec::new())
    }

    /// A new state slot.
    pub fn slot(&mut self, name: String, shape: Vec<usize>) -> usize {
        self.g.slots.push(crate::ir::Slot { name, shape });
        self.g.slots.len() - 1
    }

    /// Writes a state slot at the end of the step, under the instance's guard.
    pub fn write_state(&mut self, inst: &Instance, slot: usize, value: NodeId) {
        let shape = self.g.slots[slot].shape.clone();
        let value = self.expand_to(value, &shape);
        let value = match inst.guard {
            Some(c) => {
                let old = self.node(Op::State(slot), shape.clone());
                self.node(Op::Select(c, value, old), shape)
            }
            None => value,
        };
        self.g.state_writes.push((slot, value));
    }

    /// Broadcasts a node to a shape (no node if it already has it).
    pub fn expand_to(&mut self, id: NodeId, shape: &[usize]) -> NodeId {
        if self.g.shape(id) == shape {
            id
        } else {
            self.node(Op::Expand(id), shape.to_vec())
        }
    }

    /// `a and b` of two runtime conditions.
    pub fn and(&mut self, a: NodeId, b: NodeId) -> NodeId {
        self.node(Op::Binary(Binary::And, a, b), Vec::new())
    }
}

/// Problems found while lowering, as diagnostics in the file being lowered.
pub(crate) fn error(f: &Frame, span: Span, code: crate::diag::Code, msg: impl Into<String>) -> Box<Diagnostic> {
    let msg = msg.into();
    Box::new(Diagnostic::error(code, &f.source, span, msg.clone(), "here"))
}

/// Compiles a rule expression (such as `adam(lr = 1e-2)`) for parameters of the given shapes:
/// one graph per parameter, in order. Standard-library names are in scope.
pub fn compile_rule(rule: &str, shapes: &[Vec<usize>]) -> Result<Vec<Graph>, Vec<Diagnostic>> {
    compile_rule_in(None, rule, shapes)
}

/// Like [`compile_rule_in`] for named parameters (`model.w`, or a fixture's `W`), so that rules
/// may route by path (`mask`, `route`).
pub fn compile_rule_named(
    file: Option<(&str, &str)>,
    rule: &str,
    params: &[(String, Vec<usize>)],
) -> Result<Vec<Graph>, Vec<Diagnostic>> {
    crate::on_big_stack(|| {
        let (checked, unit, source, expr) = prepare(file, "<rule>", rule)?;
        params
            .iter()
            .map(|(path, shape)| {
                lower_rule_for(&checked.program, unit, &source, &expr, shape, Some(path)).map_err(|d| vec![*d])
            })
            .collect()
    })
}

/// Like [`compile_rule`], with the declarations of `file` (a name and its text) also in scope.
pub fn compile_rule_in(
    file: Option<(&str, &str)>,
    rule: &str,
    shapes: &[Vec<usize>],
) -> Result<Vec<Graph>, Vec<Diagnostic>> {
    crate::on_big_stack(|| {
        let (checked, unit, source, expr) = prepare(file, "<rule>", rule)?;
        shapes
            .iter()
            .map(|shape| lower_rule_for(&checked.program, unit, &source, &expr, shape, None).map_err(|d| vec![*d]))
            .collect()
    })
}

/// Compiles an expression with no inputs (such as `randn([3, 4]) @ randn([4, 2])` or `f(2)` for
/// a declaration of `file`) to a graph whose output is its value, as the REPL evaluates it.
pub fn compile_expr_in(file: Option<(&str, &str)>, expr: &str) -> Result<Graph, Vec<Diagnostic>> {
    crate::on_big_stack(|| {
        let (checked, unit, source, e) = prepare(file, "<expr>", expr)?;
        let mut lw = Lowerer::new(&checked.program);
        let step = lw.node(Op::Step, Vec::new());
        let mut f = Frame { unit, source, scopes: vec![Vec::new()], step, inst: None, conds: Vec::new(), reset: None };
        let v = lw.expr(&mut f, &e).map_err(|d| vec![*d])?;
        let out = lw.tensor(&f, v, e.span).map_err(|d| vec![*d])?;
        lw.g.output = out;
        Ok(lw.g)
    })
}

/// Checks the program the expression is written against and parses the expression.
fn prepare(
    file: Option<(&str, &str)>,
    name: &str,
    text: &str,
) -> Result<(crate::check::Checked, usize, Arc<SourceFile>, crate::syntax::ast::Expr), Vec<Diagnostic>> {
    let (file_name, file_text) = file.unwrap_or(("<program>", ""));
    let checked = crate::check::check_source(file_name, file_text, std::path::Path::new("."));
    if !checked.is_ok() {
        return Err(checked.diagnostics);
    }
    let unit = root_unit(&checked.program.units);
    let source = Arc::new(SourceFile::new(name, text));
    let expr = crate::syntax::parse_expr(&source).map_err(|d| vec![d])?;
    Ok((checked, unit, source, expr))
}

fn root_unit(units: &[Unit]) -> usize {
    units.iter().position(|u| u.root).unwrap_or(0)
}

/// Lowers `rule(g)` for one parameter shape.
fn lower_rule_for(
    prog: &Program,
    unit: usize,
    source: &Arc<SourceFile>,
    rule: &crate::syntax::ast::Expr,
    shape: &[usize],
    path: Option<&str>,
) -> LResult<Graph> {
    rule_graph(prog, unit, source, shape, path, |lw, f| lw.expr(f, rule), rule.span, &mut None)
}

/// Lowers an evaluated rule value (whose hyperparameters are known, not graph nodes) applied
/// to the gradient of a parameter of `shape`. A rule that asks for the gradient at another point
/// (`grad_at`, see [`probe_graph`]) also gives its probe graph.
pub(crate) fn lower_rule_value(
    prog: &Program,
    unit: usize,
    source: &Arc<SourceFile>,
    rule: &Lv,
    span: Span,
    shape: &[usize],
    path: Option<&str>,
) -> LResult<(Graph, Option<Graph>)> {
    let mut probe = None;
    let g = rule_graph(prog, unit, source, shape, path, |_, _| Ok(rule.clone()), span, &mut probe)?;
    let p = probe.map(|point| probe_graph(&g, point));
    Ok((g, p))
}

/// The probe graph of a rule graph that reads the gradient at another point (`grad_at(point)`
/// lowers to the graph's input 1): the same nodes, with the point as the output and no state
/// written. A training step runs it first, on every parameter of the group (so that its group
/// reductions span them), evaluates the loss's gradient with the parameters at their points, and
/// gives that gradient to the rule graph as input 1. The probe reads the state the rule graph
/// reads, as it stands before the step.
pub fn probe_graph(g: &Graph, point: NodeId) -> Graph {
    Graph { output: point, state_writes: Vec::new(), ..g.clone() }
}

/// Whether a rule's graphs read the gradient at another point (`grad_at`), which only an
/// experiment's training loop computes; the message for the places that cannot.
pub fn needs_training_loop(rule: &str, graphs: &[Graph]) -> Result<(), String> {
    if graphs.iter().any(|g| g.inputs.len() > 1) {
        return Err(format!(
            "`{rule}` evaluates the loss's gradient at another point (`grad_at`), which only an experiment's \
             training loop can do (`optic run`)"
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn rule_graph(
    prog: &Program,
    unit: usize,
    source: &Arc<SourceFile>,
    shape: &[usize],
    path: Option<&str>,
    rule: impl FnOnce(&mut Lowerer, &mut Frame) -> LResult<Lv>,
    span: Span,
    probe: &mut Option<NodeId>,
) -> LResult<Graph> {
    let mut lw = Lowerer::new(prog);
    lw.path = path.map(str::to_string);
    lw.g.inputs = vec![shape.to_vec()];
    let step = lw.node(Op::Step, Vec::new());
    let one = lw.constant(1.0);
    let fresh = lw.node(Op::Binary(Binary::Eq, step, one), Vec::new());
    let root = Instance { path: String::new(), step, fresh, guard: None, calls: 0 };
    let mut f = Frame {
        unit,
        source: source.clone(),
        scopes: vec![Vec::new()],
        step,
        inst: Some(root),
        conds: Vec::new(),
        reset: None,
    };
    let r = rule(&mut lw, &mut f)?;
    let g = lw.node(Op::Input(0), shape.to_vec());
    let out = lw.apply_rule(&mut f, &r, Lv::T(g), span)?;
    let out = lw.tensor(&f, out, span)?;
    let out = lw.expand_to(out, shape);
    lw.g.output = out;
    *probe = lw.probe;
    Ok(lw.g)
}

/// True if a path pattern names the parameter: parts separated by `.`, `*` matching any one part,
/// and a pattern naming a prefix matching everything below it (as in an experiment's `optimize`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), path.split('.').collect());
    p.len() <= q.len() && p.iter().zip(&q).all(|(a, b)| *a == "*" || a == b)
}

/// The code of lowering failures that are not user errors the checker would have caught.
pub(crate) const UNSUPPORTED: crate::diag::Code = codes::UNSUPPORTED;
