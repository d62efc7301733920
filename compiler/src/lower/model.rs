//! Models during lowering. A model value is an instance: its declaration, its hyperparameters
//! and, for each `param`, `frozen` and tensor-valued `let`, the experiment tensor holding it.
//! Instances are built once, in the experiment's init pass, where each tensor's initial value is
//! lowered into the init graph; every later graph (the training step, the metrics) sees a tensor
//! as its current value, an input of that graph. Calling a model re-runs its body's `let`s and
//! inlines its `forward` with the parameters bound to those values; an adapted weight
//! (`student.w` of `base adapted by lora on w`) is the adapter's `weight` expression, lowered
//! where it is used. `with` and `adapted by` copy an instance: the copy's tensors are new, with
//! the same initial values.

use super::expr::ArgLv;
use super::{error, Applied, Binding, Frame, LResult, Lowerer, Lv, UNSUPPORTED};
use crate::diag::codes;
use crate::ir::{Binary, NodeId, Op};
use crate::syntax::ast::{AssignOp, Body, DeclKind, Dim, Expr, ExprKind, Pattern, Span, StmtKind};
use std::rc::Rc;

/// A model instance.
#[derive(Clone, Debug)]
pub struct ModelInst {
    /// The model declaration.
    pub applied: Applied,
    /// Its members in declaration order.
    pub members: Vec<(String, Member)>,
}

/// A member of a model instance.
#[derive(Clone, Debug)]
pub enum Member {
    /// An experiment tensor: a `param`, a `frozen` value, or a `let` computed from tensors.
    Tensor(usize),
    /// A sub-model.
    Model(Rc<ModelInst>),
    /// A weight under an adapter.
    Adapted(Rc<AdaptedInst>),
}

/// A weight reparameterized by an adapter.
#[derive(Clone, Debug)]
pub struct AdaptedInst {
    /// The adapter declaration with its hyperparameters.
    pub applied: Applied,
    /// The frozen weight it adapts.
    pub base: usize,
    /// The adapter's own tensors (`a`, `b`, `residual`, ...).
    pub members: Vec<(String, Member)>,
}

/// Whether an experiment tensor is trainable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A `param`: trainable if an `optimize` names it.
    Param,
    /// A `frozen` value or the base of an adapted weight.
    Frozen,
    /// A tensor-valued `let` (of a model or of the experiment): a constant.
    Let,
}

/// A tensor an experiment keeps from its init pass on.
#[derive(Clone, Debug)]
pub struct TensorDef {
    /// Its path, such as `student.w.a`, once a binding names it (hidden `let`s keep a `~`).
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// What it is.
    pub kind: TensorKind,
    /// Its initial value: a node of the init graph.
    pub init: NodeId,
}

/// How experiment tensors appear in the graph being lowered.
#[derive(Clone, Debug, Default)]
pub(crate) enum VarMode {
    /// Not in an experiment.
    #[default]
    None,
    /// The init graph: a tensor is its initial-value node.
    Init,
    /// A graph run every step: tensor `i` is `Input(i)`, its initial value `Input(n + i)` for
    /// `n` tensors.
    Run,
}

/// The experiment state a lowerer carries.
#[derive(Debug, Default)]
pub(crate) struct Vars {
    pub mode: VarMode,
    pub tensors: Vec<TensorDef>,
    /// Per tensor, its current-value node in the graph being lowered (Run mode).
    pub current: Vec<Option<NodeId>>,
    /// Per tensor, its initial-value input node (Run mode).
    pub initial: Vec<Option<NodeId>>,
    /// Arrays read from files: init-graph input `k` is `files[k]`.
    pub files: Vec<(String, optic_runtime::data::Values)>,
    /// When set, each adapted weight is lowered once in this graph and every use shares it, so
    /// that a gradient can be taken with respect to it (metrics reading `grad(student.w)`).
    pub shared_weights: Option<Vec<(*const AdaptedInst, Lv)>>,
}

impl Lowerer<'_> {
    /// Registers a tensor whose initial value is `init` (a node of the init graph).
    pub(crate) fn new_tensor(&mut self, path: String, init: NodeId, kind: TensorKind) -> usize {
        let shape = self.g.shape(init).to_vec();
        self.vars.tensors.push(TensorDef { path, shape, kind, init });
        self.vars.tensors.len() - 1
    }

    /// The node of experiment tensor `i` in the graph being lowered.
    pub(crate) fn var_node(&mut self, i: usize) -> NodeId {
        match self.vars.mode {
            VarMode::Run => {
                if self.vars.current.len() <= i {
                    self.vars.current.resize(self.vars.tensors.len(), None);
                }
                if let Some(n) = self.vars.current[i] {
                    return n;
                }
                let n = self.node(Op::Input(i), self.vars.tensors[i].shape.clone());
                self.vars.current[i] = Some(n);
                n
            }
            _ => self.vars.tensors[i].init,
        }
    }

    /// The node of the initial value of experiment tensor `i`.
    pub(crate) fn initial_node(&mut self, i: usize) -> NodeId {
        match self.vars.mode {
            VarMode::Run => {
                let n_all = self.vars.tensors.len();
                if self.vars.initial.len() <= i {
                    self.vars.initial.resize(n_all, None);
                }
                if let Some(n) = self.vars.initial[i] {
                    return n;
                }
                let n = self.node(Op::Input(n_all + i), self.vars.tensors[i].shape.clone());
                self.vars.initial[i] = Some(n);
                n
            }
            _ => self.vars.tensors[i].init,
        }
    }

    /// Builds an instance of a model declaration (the init pass): runs its body, creating a
    /// tensor for every `param`, `frozen` and tensor-valued `let`.
    pub(crate) fn instantiate_model(&mut self, f: &Frame, applied: Applied, span: Span) -> LResult<Lv> {
        if !matches!(self.vars.mode, VarMode::Init) {
            return Err(error(f, span, UNSUPPORTED, "models are created in an experiment's bindings, not in a step"));
        }
        self.depth += 1;
        if self.depth > 64 {
            return Err(error(f, span, codes::RECURSION, "models nested more than 64 deep"));
        }
        let mut inner = self.enter(f, &applied, span)?;
        inner.inst = None;
        let decl = self.prog.decl(applied.decl);
        let members = self.build_members(&mut inner, &decl.body, None)?;
        self.depth -= 1;
        Ok(Lv::Model(Rc::new(ModelInst { applied, members })))
    }

    /// Runs the statements of a model or adapter body in the init pass. `target` is an adapter's
    /// adapted weight (its name and tensor): `frozen w = e` on it rewrites that tensor's initial
    /// value (as PEFT rewrites the base weight in place for PiSSA, OLoRA, LoRA-GA) instead of
    /// adding a member.
    fn build_members(
        &mut self,
        f: &mut Frame,
        body: &Body,
        target: Option<(&str, usize)>,
    ) -> LResult<Vec<(String, Member)>> {
        let Body::Block(block) = body else { return Ok(Vec::new()) };
        let mut members = Vec::new();
        for s in &block.stmts {
            match &s.kind {
                StmtKind::Frozen { name, value } if target.is_some_and(|(t, _)| t == name.name) => {
                    let base = target.expect("matched").1;
                    let v = self.expr(f, value)?;
                    let node = self.tensor(f, v, value.span)?;
                    let shape = self.vars.tensors[base].shape.clone();
                    if self.g.shape(node) != shape.as_slice() {
                        return Err(error(
                            f,
                            value.span,
                            codes::SHAPE_MISMATCH,
                            format!(
                                "the rewritten `{}` has shape {:?}, the weight {shape:?}",
                                name.name,
                                self.g.shape(node)
                            ),
                        ));
                    }
                    self.vars.tensors[base].init = node;
                }
                StmtKind::Param { name, shape, init } => {
                    let dims = self.shape_dims(f, shape, s.span)?;
                    let v = self.expr(f, init)?;
                    let node = self.init_value(f, v, &dims, init.span)?;
                    let t = self.new_tensor(name.name.clone(), node, TensorKind::Param);
                    f.bind(&name.name, Binding { value: Lv::Var(t), mutable: false, slot: None });
                    members.push((name.name.clone(), Member::Tensor(t)));
                }
                StmtKind::Frozen { name, value } => {
                    let v = self.expr(f, value)?;
                    let node = self.tensor(f, v, value.span)?;
                    let t = self.new_tensor(name.name.clone(), node, TensorKind::Frozen);
                    f.bind(&name.name, Binding { value: Lv::Var(t), mutable: false, slot: None });
                    members.push((name.name.clone(), Member::Tensor(t)));
                }
                StmtKind::Let { pattern, value, .. } => {
                    let v = self.expr(f, value)?;
                    self.bind_member_let(f, pattern, v, &mut members)?;
                }
                StmtKind::Assign { place, op: AssignOp::Set, value, clauses } if place.parts.len() == 1 => {
                    let v = self.expr(f, value)?;
                    let v = self.apply_clauses(f, v, clauses, value.span)?;
                    let name = place.parts[0].name.clone();
                    match &v {
                        Lv::Model(m) => members.push((name.clone(), Member::Model(m.clone()))),
                        Lv::T(node) => {
                            let t = self.new_tensor(format!("~{name}"), *node, TensorKind::Let);
                            members.push((name.clone(), Member::Tensor(t)));
                            f.bind(&name, Binding { value: Lv::Var(t), mutable: false, slot: None });
                            continue;
                        }
                        _ => {}
                    }
                    f.bind(&name, Binding { value: v, mutable: false, slot: None });
                }
                StmtKind::Forward { .. } | StmtKind::Weight { .. } => {}
                _ => return Err(error(f, s.span, UNSUPPORTED, "this statement is not supported in a model body")),
            }
        }
        Ok(members)
    }

    /// Binds a `let` of a model body; a tensor value becomes a hidden experiment tensor, so
    /// random draws in it happen once.
    fn bind_member_let(
        &mut self,
        f: &mut Frame,
        p: &Pattern,
        v: Lv,
        members: &mut Vec<(String, Member)>,
    ) -> LResult<()> {
        match (p, v) {
            (Pattern::Name(n), Lv::T(node)) => {
                let t = self.new_tensor(format!("~{}", n.name), node, TensorKind::Let);
                members.push((format!("~{}", n.name), Member::Tensor(t)));
                f.bind(&n.name, Binding { value: Lv::Var(t), mutable: false, slot: None });
                Ok(())
            }
            (Pattern::Name(n), v) => {
                f.bind(&n.name, Binding { value: v, mutable: false, slot: None });
                Ok(())
            }
            (Pattern::Tuple(items, span), Lv::Tuple(parts) | Lv::List(parts)) if parts.len() == items.len() => {
                let _ = span;
                for (it, part) in items.iter().zip(parts) {
                    self.bind_member_let(f, it, part, members)?;
                }
                Ok(())
            }
            (Pattern::Tuple(_, span), _) => {
                Err(error(f, *span, codes::TUPLE_ARITY, "the value does not have this many parts"))
            }
        }
    }

    /// Rebinds a model or adapter body's names for use in a step graph: tensors as their
    /// current values, sub-models as instances, other `let`s evaluated again.
    fn rebind_members(&mut self, f: &mut Frame, body: &Body, members: &[(String, Member)]) -> LResult<()> {
        let Body::Block(block) = body else { return Ok(()) };
        let find = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, m)| m.clone());
        for s in &block.stmts {
            match &s.kind {
                // An adapter's `frozen w = e` rewrote the adapted tensor itself, bound as `w`.
                StmtKind::Frozen { name, .. } if find(&name.name).is_none() && f.get(&name.name).is_some() => {}
                StmtKind::Param { name, .. } | StmtKind::Frozen { name, .. } => {
                    let m = find(&name.name);
                    let v = self.member_value(f, m, s.span)?;
                    f.bind(&name.name, Binding { value: v, mutable: false, slot: None });
                }
                StmtKind::Assign { place, .. } if place.parts.len() == 1 => {
                    let n = &place.parts[0].name;
                    let v = self.member_value(f, find(n), s.span)?;
                    f.bind(n, Binding { value: v, mutable: false, slot: None });
                }
                StmtKind::Let { pattern, value, .. } => {
                    let names = pattern_names(pattern);
                    if names.iter().any(|n| find(&format!("~{n}")).is_some()) {
                        for n in names {
                            let v = match find(&format!("~{n}")) {
                                Some(m) => self.member_value(f, Some(m), s.span)?,
                                None => continue,
                            };
                            f.bind(&n, Binding { value: v, mutable: false, slot: None });
                        }
                    } else {
                        let v = self.expr(f, value)?;
                        self.bind_pattern(f, pattern, v)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A member as a value: a tensor's current value, a sub-model, an adapted weight.
    fn member_value(&mut self, f: &Frame, m: Option<Member>, span: Span) -> LResult<Lv> {
        match m {
            Some(Member::Tensor(t)) => Ok(Lv::Var(t)),
            Some(Member::Model(m)) => Ok(Lv::Model(m)),
            Some(Member::Adapted(a)) => self.adapted_weight(f, &a, span),
            None => Err(error(f, span, codes::LOWERING, "a model member was not built")),
        }
    }

    /// The adapted weight: the adapter's `weight` expression over its tensors.
    pub(crate) fn adapted_weight(&mut self, f: &Frame, a: &AdaptedInst, span: Span) -> LResult<Lv> {
        let key: *const AdaptedInst = a;
        if let Some(v) = self.vars.shared_weights.as_ref().and_then(|w| w.iter().find(|(k, _)| *k == key)) {
            return Ok(v.1.clone());
        }
        let v = self.lower_weight(f, a, span)?;
        if let Some(w) = &mut self.vars.shared_weights {
            w.push((key, v.clone()));
        }
        Ok(v)
    }

    /// The adapter's `weight` expression lowered afresh.
    fn lower_weight(&mut self, f: &Frame, a: &AdaptedInst, span: Span) -> LResult<Lv> {
        let decl = self.prog.decl(a.applied.decl);
        let mut inner = self.enter(f, &a.applied, span)?;
        inner.inst = None;
        self.bind_target(&mut inner, a.applied.decl, Lv::Var(a.base), span)?;
        self.rebind_members(&mut inner, &decl.body, &a.members)?;
        let Body::Block(block) = &decl.body else {
            return Err(error(f, span, codes::LOWERING, "an adapter has a body"));
        };
        for s in &block.stmts {
            if let StmtKind::Weight { value } = &s.kind {
                return self.expr(&mut inner, value);
            }
        }
        Err(error(f, span, codes::LOWERING, format!("adapter `{}` has no `weight`", decl.name.name)))
    }

    /// Binds an adapter's target (`on w[m, n]`) and its dimensions.
    fn bind_target(&mut self, f: &mut Frame, decl: usize, w: Lv, span: Span) -> LResult<()> {
        let d = self.prog.decl(decl);
        let node = self.tensor(f, w.clone(), span)?;
        if let Some(shape) = &d.shape {
            let dims = self.g.shape(node).to_vec();
            let fixed: Vec<&Expr> = shape
                .dims
                .iter()
                .filter_map(|x| match x {
                    Dim::Expr(e) => Some(e),
                    Dim::Rest(_) => None,
                })
                .collect();
            if fixed.len() == dims.len() {
                for (e, &n) in fixed.iter().zip(&dims) {
                    if let ExprKind::Name(name) = &e.kind {
                        f.bind(name, Binding { value: Lv::Int(n as i64), mutable: false, slot: None });
                    }
                }
            }
        }
        if let Some(t) = &d.target {
            f.bind(&t.name, Binding { value: w, mutable: false, slot: None });
        }
        Ok(())
    }

    /// Calls a model: inlines its `forward` with its members bound.
    pub(crate) fn call_model(&mut self, f: &Frame, m: &ModelInst, args: &[ArgLv], span: Span) -> LResult<Lv> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(error(f, span, codes::RECURSION, "models nested more than 64 deep"));
        }
        let decl = self.prog.decl(m.applied.decl);
        let mut inner = self.enter(f, &m.applied, span)?;
        inner.inst = None;
        self.rebind_members(&mut inner, &decl.body, &m.members)?;
        let Body::Block(block) = &decl.body else {
            return Err(error(f, span, codes::LOWERING, "a model has a body"));
        };
        let Some((inputs, body)) = block.stmts.iter().find_map(|s| match &s.kind {
            StmtKind::Forward { inputs, body } => Some((inputs, body)),
            _ => None,
        }) else {
            return Err(error(f, span, codes::NOT_CALLABLE, format!("model `{}` has no `forward`", decl.name.name)));
        };
        if args.len() != inputs.len() || args.iter().any(|a| a.name.is_some()) {
            return Err(error(
                f,
                span,
                codes::MISSING_ARG,
                format!("model `{}` takes {} input(s) by position", decl.name.name, inputs.len()),
            ));
        }
        for (input, a) in inputs.iter().zip(args) {
            let x = self.tensor(f, a.value.clone(), a.span)?;
            if let Some(shape) = &input.shape {
                self.bind_shape(&mut inner, shape, x, a.span)?;
            }
            inner.bind(&input.name.name, Binding { value: Lv::T(x), mutable: false, slot: None });
        }
        let out = self.body_value(&mut inner, body)?;
        self.depth -= 1;
        Ok(out)
    }

    /// A member reached through a dotted expression (`student.w`, `model.first.w`,
    /// `student.w.a`), if `e` is one rooted at a model.
    pub(crate) fn field(&mut self, f: &mut Frame, e: &Expr) -> LResult<Lv> {
        let mut parts = Vec::new();
        let mut cur = e;
        while let ExprKind::Field { base, name } = &cur.kind {
            parts.push(name.name.clone());
            cur = base;
        }
        parts.reverse();
        let mut v = self.expr(f, cur)?;
        let mut i = 0;
        while i < parts.len() {
            let name = &parts[i];
            v = match &v {
                Lv::Model(m) => match m.members.iter().find(|(n, _)| n == name) {
                    Some((_, Member::Adapted(a))) if i + 1 < parts.len() => {
                        i += 1;
                        let sub = &parts[i];
                        match a.members.iter().find(|(n, _)| n == sub) {
                            Some((_, m)) => self.member_value(f, Some(m.clone()), e.span)?,
                            None => return Err(error(f, e.span, codes::NO_SUCH_PARAM, format!("no member `{sub}`"))),
                        }
                    }
                    Some((_, m)) => self.member_value(f, Some(m.clone()), e.span)?,
                    None => {
                        return Err(error(
                            f,
                            e.span,
                            codes::NO_SUCH_PARAM,
                            format!("model `{}` has no member `{name}`", self.prog.decl(m.applied.decl).name.name),
                        ))
                    }
                },
                _ => return Err(error(f, e.span, codes::TYPE_MISMATCH, format!("`.{name}` of something not a model"))),
            };
            i += 1;
        }
        Ok(v)
    }

    /// The initial value of a `param`: an init applied to its shape, or a tensor of that shape.
    pub(crate) fn init_value(&mut self, f: &Frame, v: Lv, dims: &[usize], span: Span) -> LResult<NodeId> {
        let v = self.as_value(v);
        let node = match v {
            Lv::Init(i) => {
                let t = self.init_tensor(f, &i, dims.to_vec(), span)?;
                self.tensor(f, t, span)?
            }
            other => self.tensor(f, other, span)?,
        };
        let shape = self.g.shape(node).to_vec();
        if shape != dims && super::expr::broadcast(&shape, dims).as_deref() != Some(dims) {
            return Err(error(
                f,
                span,
                codes::SHAPE_MISMATCH,
                format!("the initial value has shape {shape:?}, the parameter {dims:?}"),
            ));
        }
        Ok(self.expand_to(node, dims))
    }

    fn shape_dims(&mut self, f: &mut Frame, shape: &crate::syntax::ast::Shape, span: Span) -> LResult<Vec<usize>> {
        let mut dims = Vec::new();
        for d in &shape.dims {
            match d {
                Dim::Expr(e) => {
                    let v = self.expr(f, e)?;
                    match Self::known(&v) {
                        Some(x) if x >= 0.0 && x.fract() == 0.0 => dims.push(x as usize),
                        _ => {
                            return Err(error(f, e.span, codes::LOWERING, "a parameter's size must be a whole number"))
                        }
                    }
                }
                Dim::Rest(_) => return Err(error(f, span, UNSUPPORTED, "a parameter has a fixed rank")),
            }
        }
        Ok(dims)
    }

    /// Applies `with` and `adapted by` clauses to a model value (the init pass). `name` is the
    /// binding's name, the root of the copy's tensor paths.
    pub(crate) fn apply_clauses(
        &mut self,
        f: &mut Frame,
        v: Lv,
        clauses: &[crate::syntax::ast::Clause],
        span: Span,
    ) -> LResult<Lv> {
        use crate::syntax::ast::{Clause, PathPart};
        if clauses.is_empty() {
            return Ok(v);
        }
        let Lv::Model(m) = v else {
            return Err(error(f, span, codes::TYPE_MISMATCH, "only a model can be edited or adapted"));
        };
        let mut m = self.copy_model(&m);
        for c in clauses {
            match c {
                Clause::With { edits, .. } => {
                    for e in edits {
                        let [part] = e.place.parts.as_slice() else {
                            return Err(error(f, e.place.span, UNSUPPORTED, "edits name a model's own parameter"));
                        };
                        let Some(Member::Tensor(t)) =
                            m.members.iter().find(|(n, _)| *n == part.name).map(|(_, m)| m.clone())
                        else {
                            return Err(error(
                                f,
                                e.place.span,
                                codes::NO_SUCH_PARAM,
                                format!("no parameter `{}`", part.name),
                            ));
                        };
                        let old = self.vars.tensors[t].init;
                        let shape = self.vars.tensors[t].shape.clone();
                        let new = self.expr(f, &e.value)?;
                        let new = self.tensor(f, new, e.value.span)?;
                        let op = match e.op {
                            AssignOp::Set => None,
                            AssignOp::Add => Some(Binary::Add),
                            AssignOp::Sub => Some(Binary::Sub),
                            AssignOp::Mul => Some(Binary::Mul),
                            AssignOp::Div => Some(Binary::Div),
                        };
                        let node = match op {
                            Some(op) => self.elementwise(f, op, old, new, e.span)?,
                            None => new,
                        };
                        if self.g.shape(node) != shape.as_slice()
                            && super::expr::broadcast(self.g.shape(node), &shape).as_deref() != Some(&shape[..])
                        {
                            return Err(error(
                                f,
                                e.span,
                                codes::SHAPE_MISMATCH,
                                "the edit changes the parameter's shape",
                            ));
                        }
                        self.vars.tensors[t].init = self.expand_to(node, &shape);
                    }
                }
                Clause::Adapted { adapter, targets, .. } => {
                    let a = self.expr(f, adapter)?;
                    let a = match self.as_value(a) {
                        Lv::Adapter(a) => a,
                        Lv::Decl(id) if self.prog.decl(id).kind == DeclKind::Adapter => {
                            Rc::new(Applied { decl: id, args: Vec::new() })
                        }
                        _ => return Err(error(f, adapter.span, codes::TYPE_MISMATCH, "`adapted by` takes an adapter")),
                    };
                    for t in targets {
                        let [PathPart::Name(part)] = t.parts.as_slice() else {
                            return Err(error(f, t.span, UNSUPPORTED, "adapters apply to a model's own weights"));
                        };
                        let Some(slot) = m.members.iter().position(|(n, _)| *n == part.name) else {
                            return Err(error(
                                f,
                                t.span,
                                codes::NO_SUCH_PARAM,
                                format!("no parameter `{}`", part.name),
                            ));
                        };
                        let Member::Tensor(base) = m.members[slot].1.clone() else {
                            return Err(error(f, t.span, UNSUPPORTED, "only a tensor parameter can be adapted"));
                        };
                        self.vars.tensors[base].kind = TensorKind::Frozen;
                        let inst = self.build_adapter(f, &a, base, t.span)?;
                        m.members[slot].1 = Member::Adapted(Rc::new(inst));
                    }
                }
            }
        }
        Ok(Lv::Model(Rc::new(m)))
    }

    /// Builds an adapter over tensor `base` (the init pass).
    fn build_adapter(&mut self, f: &Frame, a: &Applied, base: usize, span: Span) -> LResult<AdaptedInst> {
        let decl = self.prog.decl(a.decl);
        let mut inner = self.enter(f, a, span)?;
        inner.inst = None;
        self.bind_target(&mut inner, a.decl, Lv::Var(base), span)?;
        let target = decl.target.as_ref().map(|t| (t.name.as_str(), base));
        let members = self.build_members(&mut inner, &decl.body, target)?;
        Ok(AdaptedInst { applied: a.clone(), base, members })
    }

    /// A deep copy of a model whose tensors are new, with the same initial values.
    pub(crate) fn copy_model(&mut self, m: &ModelInst) -> ModelInst {
        let members = self.copy_members(&m.members);
        ModelInst { applied: m.applied.clone(), members }
    }

    fn copy_members(&mut self, members: &[(String, Member)]) -> Vec<(String, Member)> {
        members
            .iter()
            .map(|(n, mem)| {
                let c = match mem {
                    Member::Tensor(t) => Member::Tensor(self.copy_tensor(*t)),
                    Member::Model(sub) => Member::Model(Rc::new(self.copy_model(sub))),
                    Member::Adapted(a) => Member::Adapted(Rc::new(AdaptedInst {
                        applied: a.applied.clone(),
                        base: self.copy_tensor(a.base),
                        members: self.copy_members(&a.members),
                    })),
                };
                (n.clone(), c)
            })
            .collect()
    }

    fn copy_tensor(&mut self, t: usize) -> usize {
        let d = self.vars.tensors[t].clone();
        self.vars.tensors.push(d);
        self.vars.tensors.len() - 1
    }
}

/// Every name a pattern binds.
fn pattern_names(p: &Pattern) -> Vec<String> {
    match p {
        Pattern::Name(n) => vec![n.name.clone()],
        Pattern::Tuple(items, _) => items.iter().flat_map(pattern_names).collect(),
    }
}

/// Names the tensors of a model bound as `root`: `root.w`, `root.first.b`, `root.w.a`.
pub(crate) fn name_tensors(tensors: &mut [TensorDef], root: &str, members: &[(String, Member)]) {
    for (n, m) in members {
        let path = format!("{root}.{n}");
        match m {
            Member::Tensor(t) => tensors[*t].path = path,
            Member::Model(sub) => name_tensors(tensors, &path, &sub.members),
            Member::Adapted(a) => {
                tensors[a.base].path = path.clone();
                name_tensors(tensors, &path, &a.members);
            }
        }
    }
}
