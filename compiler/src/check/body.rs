//! Declaration bodies: running the body of a rule, schedule, init, function, model or adapter
//! with its hyperparameters bound (symbolically for the generic check, to known values when
//! instantiated), collecting what it declares (states, parameters, members, `forward`, the
//! weight) and checking its value against its kind. Statements shared by every body are in
//! `stmt`, shape patterns in `dims`, uses of declarations in `apply`.

use super::args::{check_params, coerce, sigs, symbolic};
use super::dims::{bind_init_shape, bind_shape, check_init_value, check_same_shape, declared_shape, param_shape};
use super::eval::{Checker, Ctx, Frame, Local, LocalKind, Scope};
use super::shape::{Dim, Shape};
use super::stmt::stmt;
use super::value::{Bound, DeclId, Elem, Member, ParamInfo, Ty, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::*;

/// What checking a body found, for the summary and for callers.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Hyperparameter types.
    pub hypers: Vec<(String, Ty)>,
    /// The body's value (a rule's direction, an init's tensor, a function's result).
    pub value: Option<Value>,
    /// Where that value is computed.
    pub value_span: Option<Span>,
    /// A rule's states.
    pub states: Vec<(String, Value)>,
    /// A model's or adapter's members.
    pub members: Vec<(String, Member)>,
    /// A model's forward: input shapes and output.
    pub forward: Option<(Vec<String>, Value)>,
    /// An adapter's effective weight.
    pub weight: Option<Value>,
    /// Forward inputs that did not match at an instantiation: (input index, message).
    pub input_errors: Vec<(usize, String, Span)>,
    /// Experiment facts, filled by the experiment checker.
    pub notes: Vec<String>,
}

/// Extra inputs of an instantiation.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// A rule's input values.
    pub inputs: Option<Vec<Value>>,
    /// An init's shape.
    pub shape: Option<Vec<Dim>>,
    /// An adapter's target shape.
    pub target: Option<Shape>,
    /// A model's forward inputs.
    pub forward: Option<Vec<Value>>,
}

/// Checks a declaration generically and describes it.
pub fn check_decl(ch: &mut Checker, id: DeclId) -> Outcome {
    ch.stack.push(id);
    check_params(ch, id);
    let out = run(ch, id, None, Extra::default());
    ch.stack.pop();
    out
}

pub fn ctx_of(kind: DeclKind) -> Ctx {
    match kind {
        DeclKind::Rule => Ctx::Rule,
        DeclKind::Schedule => Ctx::Schedule,
        DeclKind::Init => Ctx::Init,
        DeclKind::Adapter => Ctx::Adapter,
        DeclKind::Model => Ctx::Model,
        DeclKind::Function => Ctx::Function,
        DeclKind::Experiment => Ctx::Experiment,
    }
}

/// Runs a declaration's body: generically when `args` is `None`, else with those arguments.
pub fn run(ch: &mut Checker, id: DeclId, args: Option<&Bound>, extra: Extra) -> Outcome {
    let prog = ch.prog;
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let mut f = Frame::new(unit, prog.units[unit].source.clone(), ctx_of(decl.kind));
    let mut out = Outcome::default();
    let sigs = sigs(ch, id);
    for (p, sig) in decl.params.iter().flatten().zip(sigs.iter()) {
        let v = match args {
            None => symbolic(ch, &mut f, p, sig.ty),
            Some(b) => match b.get(&p.name.name) {
                Some(v) => v.clone(),
                None if p.variadic => Value::List(Some(Vec::new())),
                None => match &p.default {
                    Some(d) => {
                        let v = ch.eval(&mut f, d);
                        coerce(ch, &mut f, sig.ty, v, d.span).unwrap_or(Value::Unknown)
                    }
                    None => Value::Unknown,
                },
            },
        };
        out.hypers.push((p.name.name.clone(), sig.ty));
        f.scopes[0].insert(p.name.name.clone(), Local { value: v, kind: LocalKind::Hyper, span: p.span });
    }
    match decl.kind {
        DeclKind::Rule => {
            let given = extra.inputs.unwrap_or_default();
            for (i, input) in decl.inputs.iter().enumerate() {
                let v = given
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Value::Tensor(Shape::Any(Some(input.name.name.clone())), Elem::Float));
                let mut v = v;
                if let Some(shape) = &input.shape {
                    bind_shape(ch, &mut f, shape, &v, None);
                    let declared = declared_shape(&f, shape);
                    if given.is_empty() && declared.rank().is_some() {
                        v = Value::tensor(declared);
                    }
                }
                if i == 0 {
                    f.param = v.shape().map(Value::tensor);
                }
                f.scopes[0]
                    .insert(input.name.name.clone(), Local { value: v, kind: LocalKind::Input, span: input.span });
            }
            if decl.inputs.is_empty() {
                ch.err(
                    &f,
                    codes::MISSING_ARG,
                    decl.name.span,
                    format!("rule `{}` has no input", decl.name.name),
                    "add `(g)` after the hyperparameters",
                );
            }
        }
        DeclKind::Init => {
            if let Some(shape) = &decl.shape {
                bind_init_shape(ch, &mut f, shape, extra.shape.as_deref());
            }
        }
        DeclKind::Adapter => {
            if let (Some(t), Some(shape)) = (&decl.target, &decl.shape) {
                let v = match &extra.target {
                    Some(s) => Value::tensor(s.clone()),
                    None => {
                        let dims = shape.dims.iter().map(|_| Dim::Any).collect();
                        Value::tensor(Shape::Dims(dims))
                    }
                };
                bind_shape(ch, &mut f, shape, &v, None);
                let declared = declared_shape(&f, shape);
                f.scopes[0].insert(
                    t.name.clone(),
                    Local { value: Value::tensor(declared), kind: LocalKind::Input, span: t.span },
                );
            }
        }
        _ => {}
    }
    let forward_inputs = extra.forward;
    match &decl.body {
        Body::Expr(e) => {
            out.value = Some(ch.eval(&mut f, e));
            out.value_span = Some(e.span);
        }
        Body::Block(b) => {
            let mut returned: Option<Span> = None;
            for s in &b.stmts {
                if let Some(r) = returned {
                    ch.report(
                        Diagnostic::error(
                            codes::UNREACHABLE,
                            &f.source,
                            s.span,
                            "statement after `return`",
                            "never runs",
                        )
                        .with_label(r, "the body returns here"),
                    );
                    break;
                }
                match &s.kind {
                    StmtKind::Return { value, modifiers } => {
                        if matches!(f.ctx, Ctx::Model | Ctx::Adapter | Ctx::Experiment) {
                            misplaced(ch, &f, s.span, "`return`", "rules, schedules, inits, functions and `forward`");
                        }
                        let v = ch.eval(&mut f, value);
                        check_modifiers(ch, &mut f, modifiers, false);
                        out.value = Some(v);
                        out.value_span = Some(value.span);
                        returned = Some(s.span);
                    }
                    StmtKind::State { name, value, modifiers } if f.ctx == Ctx::Rule => {
                        let v = ch.eval(&mut f, value);
                        check_modifiers(ch, &mut f, modifiers, true);
                        declare(ch, &mut f, name, v.clone(), LocalKind::State);
                        out.states.push((name.name.clone(), v));
                    }
                    StmtKind::Param { name, shape, init } if matches!(f.ctx, Ctx::Model | Ctx::Adapter) => {
                        let shape = param_shape(ch, &mut f, shape);
                        let v = ch.eval(&mut f, init);
                        check_init_value(ch, &mut f, &shape, v, init.span);
                        add_member(ch, &mut f, &mut out, name, Member::Param(ParamInfo { shape, trainable: true }));
                    }
                    // `frozen w = e` on the adapted weight itself: its base rewritten at
                    // initialization (PEFT's in-place edits for PiSSA, OLoRA, LoRA-GA), not a member.
                    StmtKind::Frozen { name, value }
                        if f.ctx == Ctx::Adapter && decl.target.as_ref().is_some_and(|t| t.name == name.name) =>
                    {
                        let v = ch.eval(&mut f, value);
                        check_adapted_shape(ch, &f, decl, &v, value.span);
                    }
                    StmtKind::Frozen { name, value } if matches!(f.ctx, Ctx::Model | Ctx::Adapter) => {
                        let v = ch.eval(&mut f, value);
                        let shape = v.shape().unwrap_or(Shape::Any(None));
                        if !v.is_numeric() {
                            ch.err(
                                &f,
                                codes::TYPE_MISMATCH,
                                value.span,
                                "a frozen member must be a tensor",
                                v.describe(),
                            );
                        }
                        add_member(ch, &mut f, &mut out, name, Member::Param(ParamInfo { shape, trainable: false }));
                    }
                    StmtKind::Weight { value } if f.ctx == Ctx::Adapter => {
                        let v = ch.eval(&mut f, value);
                        if out.weight.is_some() {
                            ch.err(
                                &f,
                                codes::DUPLICATE_SETTING,
                                s.span,
                                "the weight is given twice",
                                "second `weight`",
                            );
                        }
                        check_adapted_shape(ch, &f, decl, &v, value.span);
                        out.weight = Some(v);
                    }
                    StmtKind::Forward { inputs, body } if f.ctx == Ctx::Model => {
                        if out.forward.is_some() {
                            ch.err(
                                &f,
                                codes::DUPLICATE_SETTING,
                                s.span,
                                "`forward` is given twice",
                                "second `forward`",
                            );
                        }
                        let fw = forward(ch, &mut f, inputs, body, forward_inputs.as_deref(), &mut out);
                        out.forward = Some(fw);
                    }
                    StmtKind::Assign { place, op: AssignOp::Set, value, clauses }
                        if f.ctx == Ctx::Model && place.parts.len() == 1 && f.get(&place.parts[0].name).is_none() =>
                    {
                        let v = ch.eval(&mut f, value);
                        if let Some(c) = clauses.first() {
                            let span = match c {
                                Clause::With { span, .. } | Clause::Adapted { span, .. } => *span,
                            };
                            misplaced(ch, &f, span, "this clause", "experiments");
                        }
                        match v {
                            Value::Model(m) => add_member(ch, &mut f, &mut out, &place.parts[0], Member::Model(m)),
                            Value::Unknown => {}
                            other => ch.report(
                                Diagnostic::error(
                                    codes::TYPE_MISMATCH,
                                    &f.source,
                                    value.span,
                                    "a model member must be a model",
                                    other.describe(),
                                )
                                .with_help("bind other values with `let`, parameters with `param`"),
                            ),
                        }
                    }
                    _ => stmt(ch, &mut f, s),
                }
            }
            if let Some(v) = &b.value {
                if returned.is_some() {
                    ch.err(&f, codes::UNREACHABLE, v.span, "value after `return`", "never used");
                } else {
                    out.value = Some(ch.eval(&mut f, v));
                    out.value_span = Some(v.span);
                }
            }
        }
    }
    finish_outcome(ch, &f, decl, &mut out);
    out
}

pub fn finish_outcome(ch: &mut Checker, f: &Frame, decl: &Decl, out: &mut Outcome) {
    let needs_value = matches!(decl.kind, DeclKind::Rule | DeclKind::Schedule | DeclKind::Init | DeclKind::Function);
    if needs_value && out.value.is_none() {
        ch.report(
            Diagnostic::error(
                codes::MISSING_RETURN,
                &f.source,
                decl.name.span,
                format!("{} `{}` produces no value", decl.kind.keyword(), decl.name.name),
                "no `return` and no final expression",
            )
            .with_help("end the body with `return expr`"),
        );
    }
    if decl.kind == DeclKind::Adapter && out.weight.is_none() {
        ch.err(
            f,
            codes::MISSING_RETURN,
            decl.name.span,
            format!("adapter `{}` gives no `weight`", decl.name.name),
            "add `weight = ...`",
        );
    }
    let span = out.value_span.unwrap_or_else(|| decl.body.span());
    match (decl.kind, &out.value) {
        (DeclKind::Schedule, Some(v)) if !matches!(v, Value::Unknown) && !v.shape().is_some_and(|s| s.is_scalar()) => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                span,
                format!("a schedule must produce a scalar, not {}", v.describe()),
                "not a scalar",
            );
        }
        (DeclKind::Rule, Some(v)) if !v.is_numeric() => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                span,
                format!("a rule must return a tensor, not {}", v.describe()),
                "not a tensor",
            );
        }
        (DeclKind::Rule, Some(v)) => {
            if let (Some(input), Some(s)) = (decl.inputs.first(), v.shape()) {
                let g = f.get(&input.name.name).and_then(|l| l.value.shape()).unwrap_or(Shape::Any(None));
                if let Ok(b) = g.broadcast(&s) {
                    if b != g && g.rank().is_some() && b.rank().is_some() {
                        ch.err(
                            f,
                            codes::SHAPE_MISMATCH,
                            span,
                            format!("the rule returns shape {s} for an input of shape {g}"),
                            "direction's shape differs",
                        );
                    }
                } else {
                    ch.err(
                        f,
                        codes::SHAPE_MISMATCH,
                        span,
                        format!("the rule returns shape {s} for an input of shape {g}"),
                        "direction's shape differs",
                    );
                }
            }
        }
        (DeclKind::Init, Some(v)) => {
            if let Some(shape) = &decl.shape {
                let want = declared_shape(f, shape);
                if v.is_numeric() {
                    check_same_shape(ch, f, &want, v, span, "the declared shape");
                } else {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        span,
                        format!("an init must produce a tensor, not {}", v.describe()),
                        "not a tensor",
                    );
                }
            }
        }
        _ => {}
    }
}

pub fn misplaced(ch: &mut Checker, f: &Frame, span: Span, what: &str, belongs: &str) {
    let here = match f.ctx {
        Ctx::Rule => "a rule",
        Ctx::Schedule => "a schedule",
        Ctx::Init => "an init",
        Ctx::Function => "a function",
        Ctx::Model => "a model",
        Ctx::Forward => "`forward`",
        Ctx::Adapter => "an adapter",
        Ctx::Experiment => "an experiment",
    };
    ch.report(
        Diagnostic::error(
            codes::MISPLACED_STMT,
            &f.source,
            span,
            format!("{what} cannot appear in {here}"),
            "not allowed here",
        )
        .with_help(format!("{what} belongs in {belongs}")),
    );
}

pub fn declare(ch: &mut Checker, f: &mut Frame, name: &Ident, value: Value, kind: LocalKind) {
    if matches!(kind, LocalKind::State | LocalKind::Var) {
        if let Some(prev) = f.scopes.last().and_then(|s| s.get(&name.name)) {
            if matches!(prev.kind, LocalKind::State | LocalKind::Var) {
                let d = Diagnostic::error(
                    codes::DUPLICATE_BINDING,
                    &f.source,
                    name.span,
                    format!("`{}` is declared twice", name.name),
                    "again here",
                )
                .with_label(prev.span, "first here")
                .with_help("assign to it with `name = ...`");
                ch.report(d);
            }
        }
    }
    // States and vars change as the program runs: keep their type and shape, not their value.
    let value = if matches!(kind, LocalKind::State | LocalKind::Var) { value.forget() } else { value };
    let scope = f.scopes.last_mut().expect("a frame has a scope");
    scope.insert(name.name.clone(), Local { value, kind, span: name.span });
}

/// Checks that `v`, a value standing for an adapter's target weight, has the target's declared
/// shape (when the adapter declares one).
fn check_adapted_shape(ch: &mut Checker, f: &Frame, decl: &Decl, v: &Value, span: Span) {
    if let (Some(t), Some(shape)) = (&decl.target, &decl.shape) {
        let want = declared_shape(f, shape);
        check_same_shape(ch, f, &want, v, span, &format!("the adapted weight `{}`", t.name));
    }
}

pub fn add_member(ch: &mut Checker, f: &mut Frame, out: &mut Outcome, name: &Ident, m: Member) {
    if let Some(prev) = f.get(&name.name).filter(|l| l.kind == LocalKind::Member).map(|l| l.span) {
        let d = Diagnostic::error(
            codes::DUPLICATE_BINDING,
            &f.source,
            name.span,
            format!("member `{}` is declared twice", name.name),
            "again here",
        )
        .with_label(prev, "first here");
        ch.report(d);
        return;
    }
    let value = match &m {
        Member::Param(p) => Value::tensor(p.shape.clone()),
        Member::Model(sub) => Value::Model(sub.clone()),
        Member::Adapted { shape, .. } => Value::tensor(shape.clone()),
    };
    f.scopes[0].insert(name.name.clone(), Local { value, kind: LocalKind::Member, span: name.span });
    out.members.push((name.name.clone(), m));
}

pub fn check_modifiers(ch: &mut Checker, f: &mut Frame, modifiers: &[Modifier], is_state: bool) {
    for m in modifiers {
        let ok = match m.kind {
            ModifierKind::Refresh => is_state,
            ModifierKind::Reset => !is_state && f.ctx == Ctx::Rule,
            ModifierKind::MovesLike => is_state && f.ctx == Ctx::Rule,
        };
        if !ok {
            let (what, belongs) = match m.kind {
                ModifierKind::Refresh => ("`refresh every`", "a `state` declaration"),
                ModifierKind::Reset => ("`reset every`", "a rule's `let` or `return` that applies another rule"),
                ModifierKind::MovesLike => ("`moves like`", "a rule's `state` declaration"),
            };
            misplaced(ch, f, m.span, what, belongs);
        }
        if m.kind == ModifierKind::MovesLike {
            check_moves_like(ch, f, &m.value);
            continue;
        }
        let v = ch.eval(f, &m.value);
        check_count(ch, f, &v, m.value.span, "a period");
    }
}

/// `moves like g` or `moves like g^2`, `g` being the rule's input: what `rebase` knows how to
/// carry into a new basis (the input's own change, or its elementwise square's).
fn check_moves_like(ch: &mut Checker, f: &Frame, e: &Expr) {
    let is_input = |e: &Expr| match &e.kind {
        ExprKind::Name(n) => f.get(n).is_some_and(|l| l.kind == LocalKind::Input),
        _ => false,
    };
    let ok = match &e.kind {
        ExprKind::Binary { op: BinOp::Pow, lhs, rhs, .. } => is_input(lhs) && matches!(rhs.kind, ExprKind::Int(2)),
        _ => is_input(e),
    };
    if !ok {
        ch.report(
            Diagnostic::error(
                codes::TYPE_MISMATCH,
                &f.source,
                e.span,
                "a state moves like the rule's input or like its square",
                "not the input `g` or `g^2`",
            )
            .with_help("`state m = zeros_like(g) moves like g`, `state v = zeros_like(g) moves like g^2`"),
        );
    }
}

/// Reports a count (period, repeat count, steps) that is not a positive int.
pub fn check_count(ch: &mut Checker, f: &Frame, v: &Value, span: Span, what: &str) {
    match v {
        Value::Int(Dim::Known(n)) if *n <= 0 => ch.report(Diagnostic::error(
            codes::BAD_COUNT,
            &f.source,
            span,
            format!("{what} must be a positive int, found {n}"),
            "not positive",
        )),
        Value::Int(_) | Value::Unknown => {}
        Value::Float(Some(x)) if x.fract() == 0.0 && *x > 0.0 => {}
        other => ch.report(
            Diagnostic::error(
                codes::BAD_COUNT,
                &f.source,
                span,
                format!("{what} must be a positive int, found {}", other.describe()),
                "not an int",
            )
            .with_help("write a whole number"),
        ),
    }
}

pub fn forward(
    ch: &mut Checker,
    f: &mut Frame,
    inputs: &[Input],
    body: &Body,
    given: Option<&[Value]>,
    out: &mut Outcome,
) -> (Vec<String>, Value) {
    let saved = f.ctx;
    f.ctx = Ctx::Forward;
    f.scopes.push(Scope::default());
    let mut shapes = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let v = match given.and_then(|g| g.get(i)) {
            Some(v) => v.clone(),
            None => match &input.shape {
                Some(s) if !s.dims.iter().any(|d| matches!(d, crate::syntax::ast::Dim::Rest(_))) => {
                    Value::tensor(Shape::Dims(s.dims.iter().map(|_| Dim::Any).collect()))
                }
                _ => Value::Tensor(Shape::Any(Some(input.name.name.clone())), Elem::Float),
            },
        };
        let mut v = v;
        if let Some(s) = &input.shape {
            let mut errs = Vec::new();
            bind_shape(ch, f, s, &v, given.is_some().then_some(&mut errs));
            out.input_errors.extend(errs.into_iter().map(|m| (i, m, s.span)));
            let declared = declared_shape(f, s);
            shapes.push(format!("{}{declared}", input.name.name));
            // Generically the input is exactly its declared shape, with the names just bound.
            if given.is_none() && declared.rank().is_some() {
                v = Value::tensor(declared);
            }
        } else {
            shapes.push(input.name.name.clone());
        }
        declare(ch, f, &input.name, v, LocalKind::Input);
    }
    let v = match body {
        Body::Expr(e) => ch.eval(f, e),
        Body::Block(b) => {
            let mut v = None;
            for s in &b.stmts {
                match &s.kind {
                    StmtKind::Return { value, .. } => v = Some(ch.eval(f, value)),
                    _ => stmt(ch, f, s),
                }
            }
            match (&b.value, v) {
                (Some(e), _) => ch.eval(f, e),
                (None, Some(v)) => v,
                (None, None) => {
                    ch.err(f, codes::MISSING_RETURN, b.span, "`forward` produces no value", "no final expression");
                    Value::Unknown
                }
            }
        }
    };
    f.scopes.pop();
    f.ctx = saved;
    (shapes, v)
}
