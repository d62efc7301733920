//! Bodies: the statements of rules, schedules, inits, functions, models and adapters, and what
//! happens when a declaration is used. Each declaration is checked once generically, with its
//! hyperparameters symbolic (`rank` is a size named `rank`), and again, silently, wherever it is
//! instantiated with known values (a model built in an experiment, an init given a shape, a rule
//! applied to a parameter); a problem that only the known values reveal is reported at the use.

use super::args::{self, applied, coerce, sigs};
use super::eval::{ArgVal, Checker, Ctx, Frame, Local, LocalKind, Scope};
use super::shape::{Dim, Shape};
use super::value::{Applied, Bound, Callee, DeclId, Elem, Member, ModelVal, ParamInfo, Ty, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::*;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

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

fn check_params(ch: &mut Checker, id: DeclId) {
    let prog = ch.prog;
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let src = prog.units[unit].source.clone();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let sigs = sigs(ch, id);
    for (p, sig) in decl.params.iter().flatten().zip(sigs.iter()) {
        if let Some(prev) = seen.insert(&p.name.name, p.name.span) {
            ch.report(
                Diagnostic::error(
                    codes::DUPLICATE_BINDING,
                    &src,
                    p.name.span,
                    format!("parameter `{}` is declared twice", p.name.name),
                    "again here",
                )
                .with_label(prev, "first here"),
            );
        }
        if let Some(t) = &p.ty {
            if Ty::from_name(&t.name).is_none() {
                let help = crate::diag::did_you_mean(&t.name, Ty::NAMES.iter().copied())
                    .unwrap_or_else(|| format!("types are: {}", Ty::NAMES.join(", ")));
                ch.report(
                    Diagnostic::error(
                        codes::UNKNOWN_TYPE,
                        &src,
                        t.span,
                        format!("unknown type `{}`", t.name),
                        "not a type",
                    )
                    .with_help(help),
                );
            }
        }
        if let Some(r) = &p.range {
            if let Some((lo, hi, lc, hc, _)) = sig.range {
                if lo > hi || (lo == hi && !(lc && hc)) {
                    ch.report(
                        Diagnostic::error(
                            codes::OUT_OF_RANGE,
                            &src,
                            r.span,
                            format!("the interval {} is empty", sig.range_text()),
                            "no value lies in it",
                        )
                        .with_help("write the lower bound first"),
                    );
                }
            }
            if sig.range.is_none() {
                ch.report(
                    Diagnostic::error(
                        codes::TYPE_MISMATCH,
                        &src,
                        r.span,
                        "interval bounds must be numeric constants",
                        "not constant",
                    )
                    .with_help("write numbers, or `inf`"),
                );
            }
        }
        // A default must satisfy the parameter's own type and range.
        if let Some(def) = &p.default {
            let mut f = Frame::new(unit, src.clone(), Ctx::Function);
            for prev in decl.params.iter().flatten().take_while(|q| q.name.name != p.name.name) {
                f.scopes[0].insert(
                    prev.name.name.clone(),
                    Local { value: Value::Unknown, kind: LocalKind::Hyper, span: prev.span },
                );
            }
            let v = ch.eval(&mut f, def);
            match coerce(ch, &mut f, sig.ty, v.clone(), def.span) {
                None => ch.report(Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    &src,
                    def.span,
                    format!("the default of `{}` is {}, not {}", p.name.name, v.describe(), args::article(sig.ty)),
                    format!("expected {}", args::article(sig.ty)),
                )),
                Some(v) => {
                    let empty = sig.range.is_some_and(|(lo, hi, lc, hc, _)| lo > hi || (lo == hi && !(lc && hc)));
                    if let (Some((lo, hi, lc, hc, rs)), Some(x), false) = (sig.range, v.as_f64(), empty) {
                        let inside = (if lc { x >= lo } else { x > lo }) && (if hc { x <= hi } else { x < hi });
                        if !inside {
                            ch.report(
                                Diagnostic::error(
                                    codes::OUT_OF_RANGE,
                                    &src,
                                    def.span,
                                    format!("the default {x} is outside {}", sig.range_text()),
                                    "out of range",
                                )
                                .with_label(rs, "declared range"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The symbolic value of a hyperparameter in a generic check.
fn symbolic(ch: &mut Checker, f: &mut Frame, p: &Param, ty: Ty) -> Value {
    let name = p.name.name.clone();
    if p.variadic {
        return Value::List(None);
    }
    let int_default = matches!(p.default.as_ref().map(|d| &d.kind), Some(ExprKind::Int(_)));
    match ty {
        Ty::Int => Value::Int(Dim::Sym(name)),
        Ty::Float if int_default && p.ty.is_none() => Value::Int(Dim::Sym(name)),
        Ty::Float => Value::Float(None),
        Ty::Schedule => Value::Schedule(Rc::new(Applied { callee: Callee::Param(name), args: Bound::new() })),
        Ty::Bool => Value::Bool(None),
        Ty::Str => Value::Str(None),
        Ty::Tensor => Value::Tensor(Shape::Any(Some(name)), Elem::Float),
        Ty::List => Value::List(None),
        _ => match &p.default {
            Some(d) => {
                let v = ch.eval(f, d);
                coerce(ch, f, ty, v, d.span).unwrap_or(Value::Unknown)
            }
            None => {
                let a = Rc::new(Applied { callee: Callee::Param(name.clone()), args: Bound::new() });
                match ty {
                    Ty::Rule => Value::Rule(a),
                    Ty::Init => Value::Init(a),
                    Ty::Adapter => Value::Adapter(a),
                    Ty::Fn => Value::Fn(Callee::Param(name)),
                    _ => Value::Unknown,
                }
            }
        },
    }
}

fn ctx_of(kind: DeclKind) -> Ctx {
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
                        if let (Some(t), Some(shape)) = (&decl.target, &decl.shape) {
                            let want = declared_shape(&f, shape);
                            check_same_shape(
                                ch,
                                &f,
                                &want,
                                &v,
                                value.span,
                                &format!("the adapted weight `{}`", t.name),
                            );
                        }
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

fn finish_outcome(ch: &mut Checker, f: &Frame, decl: &Decl, out: &mut Outcome) {
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

fn misplaced(ch: &mut Checker, f: &Frame, span: Span, what: &str, belongs: &str) {
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

fn declare(ch: &mut Checker, f: &mut Frame, name: &Ident, value: Value, kind: LocalKind) {
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

fn add_member(ch: &mut Checker, f: &mut Frame, out: &mut Outcome, name: &Ident, m: Member) {
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

fn check_modifiers(ch: &mut Checker, f: &mut Frame, modifiers: &[Modifier], is_state: bool) {
    for m in modifiers {
        let ok = match m.kind {
            ModifierKind::Refresh => is_state,
            ModifierKind::Reset => !is_state && f.ctx == Ctx::Rule,
        };
        if !ok {
            let (what, belongs) = match m.kind {
                ModifierKind::Refresh => ("`refresh every`", "a `state` declaration"),
                ModifierKind::Reset => ("`reset every`", "a rule's `let` or `return` that applies another rule"),
            };
            misplaced(ch, f, m.span, what, belongs);
        }
        let v = ch.eval(f, &m.every);
        check_count(ch, f, &v, m.every.span, "a period");
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

/// Checks the statements every body shares.
pub fn stmt(ch: &mut Checker, f: &mut Frame, s: &Stmt) {
    match &s.kind {
        StmtKind::Let { pattern, value, modifiers } => {
            let v = ch.eval(f, value);
            check_modifiers(ch, f, modifiers, false);
            bind_pattern(ch, f, pattern, v);
        }
        StmtKind::Var { name, value } => {
            let v = ch.eval(f, value);
            declare(ch, f, name, v, LocalKind::Var);
        }
        StmtKind::Repeat { count, counter, body } => {
            let n = ch.eval(f, count);
            check_count(ch, f, &n, count.span, "a repeat count");
            f.scopes.push(Scope::default());
            if let Some(c) = counter {
                declare(ch, f, c, Value::Int(Dim::Any), LocalKind::Loop);
            }
            block_stmts(ch, f, body);
            f.scopes.pop();
        }
        StmtKind::For { var, items, body } => {
            let list = ch.eval(f, items);
            let elems = match list {
                Value::List(Some(v)) | Value::Tuple(v) => v,
                Value::List(None) | Value::Unknown => vec![Value::Unknown],
                other => {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        items.span,
                        format!("`for` needs a list, found {}", other.describe()),
                        "not a list",
                    );
                    vec![Value::Unknown]
                }
            };
            // Unrolled, as the compiler will: each element is checked with its own value.
            for e in elems {
                f.scopes.push(Scope::default());
                declare(ch, f, var, e, LocalKind::Loop);
                block_stmts(ch, f, body);
                f.scopes.pop();
            }
        }
        StmtKind::If(e) => if_stmt(ch, f, e),
        StmtKind::Assign { place, op, value, clauses } => {
            if f.ctx == Ctx::Experiment {
                unreachable!("experiment statements are checked by the experiment checker");
            }
            if let Some(c) = clauses.first() {
                let span = match c {
                    Clause::With { span, .. } | Clause::Adapted { span, .. } => *span,
                };
                misplaced(ch, f, span, "this clause", "experiments");
            }
            let v = ch.eval(f, value);
            assign(ch, f, place, *op, v, value.span, s.span);
        }
        StmtKind::Return { .. } => {
            misplaced(ch, f, s.span, "`return`", "the body of a declaration, as its last statement")
        }
        StmtKind::State { .. } => misplaced(ch, f, s.span, "`state`", "rules"),
        StmtKind::Param { .. } => misplaced(ch, f, s.span, "`param`", "models and adapters"),
        StmtKind::Frozen { .. } => misplaced(ch, f, s.span, "`frozen`", "models and adapters"),
        StmtKind::Weight { .. } => misplaced(ch, f, s.span, "`weight`", "adapters"),
        StmtKind::Forward { .. } => misplaced(ch, f, s.span, "`forward`", "models"),
        StmtKind::Data { .. } => misplaced(ch, f, s.span, "`data`", "experiments"),
        StmtKind::Optimize { .. } => misplaced(ch, f, s.span, "`optimize`", "experiments"),
        StmtKind::Init { .. } => misplaced(ch, f, s.span, "`init ... with`", "experiments"),
        StmtKind::Log { .. } => misplaced(ch, f, s.span, "`log every`", "experiments"),
        StmtKind::Checkpoint { .. } => misplaced(ch, f, s.span, "`checkpoint every`", "experiments"),
        StmtKind::Sweep { .. } => misplaced(ch, f, s.span, "`sweep`", "experiments"),
    }
}

/// An `if` whose value is not used: its `else` is optional.
fn if_stmt(ch: &mut Checker, f: &mut Frame, e: &Expr) {
    let ExprKind::If { cond, then, otherwise } = &e.kind else {
        let _ = ch.eval(f, e);
        return;
    };
    let c = ch.eval(f, cond);
    ch.expect_bool(f, &c, cond.span);
    f.scopes.push(Scope::default());
    block_stmts(ch, f, then);
    f.scopes.pop();
    match otherwise.as_deref() {
        Some(Expr { kind: ExprKind::Block(b), .. }) => {
            f.scopes.push(Scope::default());
            block_stmts(ch, f, b);
            f.scopes.pop();
        }
        Some(nested) => if_stmt(ch, f, nested),
        None => {}
    }
}

fn block_stmts(ch: &mut Checker, f: &mut Frame, b: &Block) {
    for s in &b.stmts {
        stmt(ch, f, s);
    }
    if let Some(v) = &b.value {
        let _ = ch.eval(f, v);
    }
}

fn bind_pattern(ch: &mut Checker, f: &mut Frame, p: &Pattern, v: Value) {
    match p {
        Pattern::Name(n) => declare(ch, f, n, v, LocalKind::Let),
        Pattern::Tuple(items, span) => {
            let parts = match v {
                Value::Tuple(t) | Value::List(Some(t)) => Some(t),
                Value::Unknown | Value::List(None) => None,
                other => {
                    ch.err(
                        f,
                        codes::TUPLE_ARITY,
                        *span,
                        format!("cannot destructure {}", other.describe()),
                        "not a tuple",
                    );
                    None
                }
            };
            match parts {
                Some(t) if t.len() != items.len() => {
                    ch.report(
                        Diagnostic::error(
                            codes::TUPLE_ARITY,
                            &f.source,
                            *span,
                            format!("{} names for a tuple of {}", items.len(), t.len()),
                            format!("the value has {} parts", t.len()),
                        )
                        .with_help(format!("write {} names", t.len())),
                    );
                    for it in items {
                        bind_pattern(ch, f, it, Value::Unknown);
                    }
                }
                Some(t) => {
                    for (it, v) in items.iter().zip(t) {
                        bind_pattern(ch, f, it, v);
                    }
                }
                None => {
                    for it in items {
                        bind_pattern(ch, f, it, Value::Unknown);
                    }
                }
            }
        }
    }
}

fn assign(ch: &mut Checker, f: &mut Frame, place: &Place, op: AssignOp, v: Value, vspan: Span, span: Span) {
    let name = &place.parts[0];
    let Some(local) = f.get(&name.name).cloned() else {
        let d = Diagnostic::error(
            codes::UNKNOWN_NAME,
            &f.source,
            name.span,
            format!("unknown name `{}`", name.name),
            "assigned before it is declared",
        )
        .with_help_opt(
            crate::diag::did_you_mean(&name.name, f.scopes.iter().flat_map(|s| s.keys().map(String::as_str))).or_else(
                || Some(format!("declare it first: `var {0} = ...` (or `state {0} = ...` in a rule)", name.name)),
            ),
        );
        ch.report(d);
        return;
    };
    if place.parts.len() > 1 || !matches!(local.kind, LocalKind::Var | LocalKind::State) {
        let d = Diagnostic::error(
            codes::NOT_ASSIGNABLE,
            &f.source,
            place.span,
            format!("cannot assign to `{place}`: it is {}", local.kind.describe()),
            "not assignable",
        )
        .with_label(local.span, "declared here")
        .with_help_opt(
            (local.kind == LocalKind::Let).then(|| format!("declare it with `var {} = ...` to update it", name.name)),
        );
        ch.report(d);
        return;
    }
    let new = if op == AssignOp::Set {
        v
    } else {
        let bop = match op {
            AssignOp::Add => BinOp::Add,
            AssignOp::Sub => BinOp::Sub,
            AssignOp::Mul => BinOp::Mul,
            _ => BinOp::Div,
        };
        let lhs = Expr { kind: ExprKind::Name(name.name.clone()), span: name.span };
        let _ = lhs;
        let tmp_name = "\u{0}rhs";
        f.scopes
            .push(Scope::from_iter([(tmp_name.to_string(), Local { value: v, kind: LocalKind::Let, span: vspan })]));
        let e = Expr {
            kind: ExprKind::Binary {
                op: bop,
                op_span: span,
                lhs: Box::new(Expr { kind: ExprKind::Name(name.name.clone()), span: name.span }),
                rhs: Box::new(Expr { kind: ExprKind::Name(tmp_name.into()), span: vspan }),
            },
            span,
        };
        let r = ch.eval(f, &e);
        f.scopes.pop();
        r
    };
    if local.kind == LocalKind::State {
        if let (Some(old), Some(now)) = (local.value.shape(), new.shape()) {
            let grows = match old.broadcast(&now) {
                Ok(b) => b != old && old.rank().is_some() && now.rank().is_some(),
                Err(_) => true,
            };
            if grows {
                let d = Diagnostic::error(
                    codes::SHAPE_MISMATCH,
                    &f.source,
                    vspan,
                    format!("state `{}` has shape {old} but is assigned shape {now}", name.name),
                    format!("shape {now}"),
                )
                .with_label(local.span, format!("declared with shape {old}"))
                .with_help("a state keeps the shape it was initialized with");
                ch.report(d);
                return;
            }
        }
    }
    if let Some(l) = f.get_mut(&name.name) {
        if l.kind == LocalKind::Var {
            l.value = new.forget();
        }
    }
}

/// Binds the names of a shape pattern against a value's shape. Returns mismatches as messages
/// when `errors` is given (an instantiation reports them at the call), else reports them.
fn bind_shape(
    ch: &mut Checker,
    f: &mut Frame,
    shape: &crate::syntax::ast::Shape,
    v: &Value,
    mut errors: Option<&mut Vec<String>>,
) {
    let actual = v.shape().unwrap_or(Shape::Any(None));
    let has_rest = shape.dims.iter().any(|d| matches!(d, crate::syntax::ast::Dim::Rest(_)));
    let dims: Option<Vec<Dim>> = match &actual {
        Shape::Dims(d) => Some(d.clone()),
        Shape::Any(_) => None,
    };
    if let Some(d) = &dims {
        let fixed = shape.dims.len() - usize::from(has_rest);
        if (has_rest && d.len() < fixed) || (!has_rest && d.len() != fixed) {
            let msg = format!("expected rank {}{fixed}, found shape {actual}", if has_rest { "at least " } else { "" });
            match errors.as_deref_mut() {
                Some(e) => e.push(msg),
                None => ch.err(f, codes::RANK_MISMATCH, shape.span, msg, "rank differs"),
            }
        }
    }
    let mut k = 0usize;
    for sd in &shape.dims {
        match sd {
            crate::syntax::ast::Dim::Rest(name) => {
                let n_rest = dims.as_ref().map(|d| d.len().saturating_sub(shape.dims.len() - 1));
                let v = match (&dims, n_rest) {
                    (Some(d), Some(n)) => {
                        Value::List(Some(d[k..(k + n).min(d.len())].iter().cloned().map(Value::Int).collect()))
                    }
                    _ => Value::List(None),
                };
                k += n_rest.unwrap_or(0);
                declare(ch, f, name, v, LocalKind::Input);
            }
            crate::syntax::ast::Dim::Expr(e) => {
                let actual_dim = dims.as_ref().and_then(|d| d.get(k).cloned()).unwrap_or(Dim::Any);
                k += 1;
                if let ExprKind::Name(n) = &e.kind {
                    if f.get(n).is_none() && ch.prog.lookup(f.unit, n).is_none() {
                        let bound = if matches!(actual_dim, Dim::Any) { Dim::Sym(n.clone()) } else { actual_dim };
                        declare(ch, f, &Ident { name: n.clone(), span: e.span }, Value::Int(bound), LocalKind::Input);
                        continue;
                    }
                }
                let want = dim_of(ch, f, e);
                if !want.compatible(&actual_dim) {
                    let msg = format!(
                        "dimension `{}` is {want} but the value's is {actual_dim} (shape {actual})",
                        &f.source.text[e.span.start..e.span.end]
                    );
                    match errors.as_deref_mut() {
                        Some(errs) => errs.push(msg),
                        None => ch.err(f, codes::SHAPE_MISMATCH, e.span, msg, "size differs"),
                    }
                }
            }
        }
    }
}

fn bind_init_shape(ch: &mut Checker, f: &mut Frame, shape: &crate::syntax::ast::Shape, given: Option<&[Dim]>) {
    for d in &shape.dims {
        if let crate::syntax::ast::Dim::Expr(e) = d {
            if !matches!(e.kind, ExprKind::Name(_)) {
                ch.report(
                    Diagnostic::error(
                        codes::TYPE_MISMATCH,
                        &f.source,
                        e.span,
                        "an init's shape names its dimensions",
                        "not a name",
                    )
                    .with_help("write `[m, n]` or `[*dims]`, and compute sizes inside the body"),
                );
                return;
            }
        }
    }
    let v = match given {
        Some(d) => Value::tensor(Shape::Dims(d.to_vec())),
        None => {
            if shape.dims.iter().any(|d| matches!(d, crate::syntax::ast::Dim::Rest(_))) {
                Value::Tensor(Shape::Any(None), Elem::Float)
            } else {
                Value::tensor(Shape::Dims(shape.dims.iter().map(|_| Dim::Any).collect()))
            }
        }
    };
    bind_shape(ch, f, shape, &v, None);
}

/// The shape a shape pattern denotes after binding.
fn declared_shape(f: &Frame, shape: &crate::syntax::ast::Shape) -> Shape {
    let mut out = Vec::new();
    for d in &shape.dims {
        match d {
            crate::syntax::ast::Dim::Rest(n) => match f.get(&n.name).map(|l| &l.value) {
                Some(Value::List(Some(items))) => out.extend(items.iter().map(|v| v.as_dim().unwrap_or(Dim::Any))),
                _ => return Shape::Any(None),
            },
            crate::syntax::ast::Dim::Expr(e) => out.push(match &e.kind {
                ExprKind::Name(n) => match f.get(n) {
                    Some(Local { value: Value::Unknown, kind: LocalKind::Hyper, .. }) => Dim::Sym(n.clone()),
                    Some(l) => l.value.as_dim().unwrap_or(Dim::Any),
                    None => Dim::Any,
                },
                ExprKind::Int(k) => Dim::Known(*k),
                _ => Dim::Any,
            }),
        }
    }
    Shape::Dims(out)
}

/// Evaluates a parameter's declared shape to dimensions.
pub fn param_shape(ch: &mut Checker, f: &mut Frame, shape: &crate::syntax::ast::Shape) -> Shape {
    let mut out = Vec::new();
    for d in &shape.dims {
        match d {
            crate::syntax::ast::Dim::Rest(n) => match f.get(&n.name).map(|l| l.value.clone()) {
                Some(Value::List(Some(items))) => out.extend(items.iter().map(|v| v.as_dim().unwrap_or(Dim::Any))),
                Some(Value::List(None)) => return Shape::Any(None),
                _ => {
                    ch.err(f, codes::UNKNOWN_NAME, n.span, format!("`*{}` names no list of sizes", n.name), "unknown");
                    return Shape::Any(None);
                }
            },
            crate::syntax::ast::Dim::Expr(e) => {
                let d = dim_of(ch, f, e);
                out.push(d);
            }
        }
    }
    Shape::Dims(out)
}

/// The size a dimension expression denotes; a hyperparameter of unknown type used as a size
/// is that size, symbolically (`param w[k, d]` in `model m(d, k)`).
fn dim_of(ch: &mut Checker, f: &mut Frame, e: &Expr) -> Dim {
    let sizes: Scope = f.scopes[0]
        .iter()
        .filter(|(_, l)| l.kind == LocalKind::Hyper && l.value == Value::Unknown)
        .map(|(n, l)| (n.clone(), Local { value: Value::Int(Dim::Sym(n.clone())), ..l.clone() }))
        .collect();
    f.scopes.push(sizes);
    let v = ch.eval(f, e);
    f.scopes.pop();
    to_dim(ch, f, &v, e.span)
}

/// Converts a value to a dimension, reporting non-sizes.
pub fn to_dim(ch: &mut Checker, f: &Frame, v: &Value, span: Span) -> Dim {
    match v {
        Value::Int(Dim::Known(n)) if *n < 0 => {
            ch.err(f, codes::BAD_COUNT, span, format!("a dimension must not be negative, found {n}"), "negative size");
            Dim::Any
        }
        Value::Int(d) => d.clone(),
        Value::Float(Some(x)) if x.fract() == 0.0 && *x >= 0.0 => Dim::Known(*x as i64),
        Value::Float(None) | Value::Unknown => Dim::Any,
        other => {
            ch.report(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    &f.source,
                    span,
                    format!("a dimension must be an int, found {}", other.describe()),
                    "not a size",
                )
                .with_help_opt(
                    matches!(other, Value::Float(_)).then(|| "declare the hyperparameter as `name: int`".to_string()),
                ),
            );
            Dim::Any
        }
    }
}

fn check_same_shape(ch: &mut Checker, f: &Frame, want: &Shape, v: &Value, span: Span, what: &str) {
    let Some(got) = v.shape() else { return };
    // A 1 where a named size is declared is a broadcast slip, not a coincidence to allow.
    let same = match (want, &got) {
        (Shape::Dims(a), Shape::Dims(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compatible(y) && (x.is_one() || !y.is_one()))
        }
        _ => true,
    };
    // A scalar broadcasts to any shape.
    if !same && !got.is_scalar() {
        ch.err(
            f,
            codes::SHAPE_MISMATCH,
            span,
            format!("shape {got} differs from {what}, {want}"),
            format!("shape {got}"),
        );
    }
}

fn check_init_value(ch: &mut Checker, f: &mut Frame, shape: &Shape, v: Value, span: Span) {
    let v = match coerce(ch, f, Ty::Init, v.clone(), span) {
        Some(i) => i,
        None => v,
    };
    match &v {
        Value::Init(a) => {
            if let Shape::Dims(d) = shape {
                let t = init_tensor(ch, f, a, d.clone(), span);
                check_same_shape(ch, f, shape, &t, span, "the parameter's shape");
            }
        }
        v if v.is_numeric() => check_same_shape(ch, f, shape, v, span, "the parameter's shape"),
        Value::Unknown => {}
        other => ch.report(
            Diagnostic::error(
                codes::TYPE_MISMATCH,
                &f.source,
                span,
                format!("a parameter needs an init or a tensor, found {}", other.describe()),
                "not an init",
            )
            .with_help("e.g. `= gaussian(std = 0.02)` or `= zeros`"),
        ),
    }
}

fn forward(
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

/// Runs an instantiation silently. Returns what it found, and the problems it caught that the
/// declaration's generic check does not show (those come from the known values at this use);
/// a recursion is always kept.
fn instantiate(
    ch: &mut Checker,
    f: &Frame,
    id: DeclId,
    bound: &Bound,
    extra: Extra,
    use_span: Span,
) -> (Outcome, Vec<Diagnostic>) {
    let prog = ch.prog;
    if let Some(pos) = ch.stack.iter().position(|&d| d == id) {
        let mut cycle: Vec<DeclId> = ch.stack[pos..].to_vec();
        cycle.sort_unstable();
        if !ch.cycles.insert(cycle) {
            return (Outcome::default(), Vec::new());
        }
        let decl = prog.decl(id);
        let d = Diagnostic::error(
            codes::RECURSION,
            &f.source,
            use_span,
            format!("`{}` uses itself", decl.name.name),
            "recursive use",
        )
        .with_help("the language has no recursion; use `repeat` for iteration");
        ch.report(d);
        return (Outcome::default(), Vec::new());
    }
    if ch.stack.len() > 64 {
        return (Outcome::default(), Vec::new());
    }
    ch.stack.push(id);
    ch.hush();
    let out = run(ch, id, Some(bound), extra);
    let mut caught = ch.unhush();
    ch.stack.pop();
    let generic_clean = prog.unit_of(id).stdlib || generic_ok(ch, id);
    if !generic_clean {
        caught.retain(|d| d.code == codes::RECURSION);
    }
    (out, caught)
}

/// Reports the first problem an instantiation caught, at the use, with a note at its origin.
fn report_use(ch: &mut Checker, f: &Frame, caught: Vec<Diagnostic>, use_span: Span, label: String) {
    let Some(first) = caught.into_iter().next() else { return };
    if first.source.name == f.source.name && first.primary_span() == use_span {
        ch.report(first);
        return;
    }
    let origin_label = first.labels.first().map_or(String::new(), |l| l.text.clone());
    let d = Diagnostic {
        labels: vec![crate::diag::Label { span: use_span, text: label }],
        source: f.source.clone(),
        related: Vec::new(),
        help: first.help.clone(),
        ..first.clone()
    };
    let d = d.with_note(&first.source, first.primary_span(), first.message.clone(), origin_label);
    ch.report(d);
}

fn use_label(ch: &Checker, id: DeclId) -> String {
    format!("in this use of `{}`", ch.prog.decl(id).name.name)
}

/// True if the generic check of a declaration finds nothing (cached).
fn generic_ok(ch: &mut Checker, id: DeclId) -> bool {
    if let Some(&ok) = ch.generic_cache.get(&id) {
        return ok;
    }
    ch.generic_cache.insert(id, true);
    ch.hush();
    check_decl(ch, id);
    let ok = ch.unhush().is_empty();
    ch.generic_cache.insert(id, ok);
    ok
}

/// Calls a declaration by name with arguments.
pub fn call_decl(ch: &mut Checker, f: &mut Frame, id: DeclId, args: &[ArgVal], callee_span: Span, span: Span) -> Value {
    let decl = ch.prog.decl(id);
    match decl.kind {
        DeclKind::Rule | DeclKind::Schedule | DeclKind::Adapter => {
            let bound = args::bind(ch, f, id, args, span);
            applied(decl.kind, id, bound)
        }
        DeclKind::Init => {
            // A leading list is the shape: `gaussian([m, n], std = 2)` is a tensor.
            if let Some(first) = args.first().filter(|a| a.name.is_none() && matches!(a.value, Value::List(_))) {
                let dims = shape_of_list(ch, f, &first.value, first.span);
                let bound = args::bind(ch, f, id, &args[1..], span);
                let a = Applied { callee: Callee::Decl(id), args: bound };
                return match dims {
                    Some(d) => init_tensor(ch, f, &a, d, span),
                    None => Value::Tensor(Shape::Any(None), Elem::Float),
                };
            }
            let bound = args::bind(ch, f, id, args, span);
            applied(decl.kind, id, bound)
        }
        DeclKind::Function => {
            let bound = args::bind(ch, f, id, args, span);
            let (out, caught) = instantiate(ch, f, id, &bound, Extra::default(), span);
            report_use(ch, f, caught, span, use_label(ch, id));
            out.value.unwrap_or(Value::Unknown)
        }
        DeclKind::Model => {
            let bound = args::bind(ch, f, id, args, span);
            let (out, caught) = instantiate(ch, f, id, &bound, Extra::default(), span);
            report_use(ch, f, caught, span, use_label(ch, id));
            Value::Model(Rc::new(ModelVal {
                decl: id,
                name: decl.name.name.clone(),
                args: bound,
                members: out.members,
            }))
        }
        DeclKind::Experiment => {
            ch.err(
                f,
                codes::NOT_CALLABLE,
                callee_span,
                format!("experiment `{}` cannot be called", decl.name.name),
                "an experiment",
            );
            Value::Unknown
        }
    }
}

/// The dimensions of a shape list such as `[m, 2 * d]`.
pub fn shape_of_list(ch: &mut Checker, f: &Frame, v: &Value, span: Span) -> Option<Vec<Dim>> {
    match v {
        Value::List(Some(items)) => Some(items.iter().map(|i| to_dim(ch, f, i, span)).collect()),
        _ => None,
    }
}

/// The tensor an init produces for a shape.
pub fn init_tensor(ch: &mut Checker, f: &Frame, a: &Applied, dims: Vec<Dim>, span: Span) -> Value {
    match a.callee {
        Callee::Decl(id) => {
            let extra = Extra { shape: Some(dims.clone()), ..Extra::default() };
            let (_, caught) = instantiate(ch, f, id, &a.args, extra, span);
            report_use(ch, f, caught, span, use_label(ch, id));
            Value::tensor(Shape::Dims(dims))
        }
        _ => Value::tensor(Shape::Dims(dims)),
    }
}

/// Applies a rule value to its input; `what` names the use in a problem found there.
pub fn apply_rule(
    ch: &mut Checker,
    f: &mut Frame,
    r: &Applied,
    args: &[ArgVal],
    span: Span,
    what: Option<String>,
) -> Value {
    let n_inputs = match r.callee {
        Callee::Decl(id) => ch.prog.decl(id).inputs.len().max(1),
        _ => 1,
    };
    if args.len() != n_inputs || args.iter().any(|a| a.name.is_some()) {
        ch.report(
            Diagnostic::error(
                if args.len() > n_inputs { codes::TOO_MANY_ARGS } else { codes::MISSING_ARG },
                &f.source,
                span,
                format!(
                    "a rule is applied to {n_inputs} tensor{}, given {}",
                    if n_inputs == 1 { "" } else { "s" },
                    args.len()
                ),
                "apply as `rule(g)`",
            )
            .with_help("hyperparameters go in the first call: `adam(lr = 1e-3)(g)`"),
        );
        return Value::Unknown;
    }
    let x = &args[0].value;
    if !x.is_numeric() {
        ch.err(
            f,
            codes::TYPE_MISMATCH,
            args[0].span,
            format!("a rule applies to a tensor, not {}", x.describe()),
            "not a tensor",
        );
        return Value::Unknown;
    }
    let shape = x.shape().unwrap_or(Shape::Any(None));
    if let Callee::Decl(id) = &r.callee {
        let extra = Extra { inputs: Some(args.iter().map(|a| a.value.clone()).collect()), ..Extra::default() };
        let (_, caught) = instantiate(ch, f, *id, &r.args, extra, span);
        let label = what.unwrap_or_else(|| use_label(ch, *id));
        report_use(ch, f, caught, span, label);
    }
    Value::tensor(shape)
}

/// Applies an init value to a shape.
pub fn apply_init(ch: &mut Checker, f: &mut Frame, i: &Applied, args: &[ArgVal], span: Span) -> Value {
    match args {
        [a] if a.name.is_none() => match shape_of_list(ch, f, &a.value, a.span) {
            Some(d) => init_tensor(ch, f, i, d, span),
            None if matches!(a.value, Value::List(None) | Value::Unknown) => {
                Value::Tensor(Shape::Any(None), Elem::Float)
            }
            None => {
                ch.err(
                    f,
                    codes::TYPE_MISMATCH,
                    a.span,
                    format!("an init is applied to a shape list, not {}", a.value.describe()),
                    "not a shape",
                );
                Value::Unknown
            }
        },
        _ => {
            ch.err(
                f,
                codes::MISSING_ARG,
                span,
                "an init is applied to one shape, e.g. `init([3, 4])`",
                "wrong arguments",
            );
            Value::Unknown
        }
    }
}

/// Calls a model's `forward`.
pub fn call_forward(ch: &mut Checker, f: &mut Frame, m: &ModelVal, args: &[ArgVal], span: Span) -> Value {
    let extra = Extra { forward: Some(args.iter().map(|a| a.value.clone()).collect()), ..Extra::default() };
    let prog = ch.prog;
    let decl = prog.decl(m.decl);
    let n_inputs = match &decl.body {
        Body::Block(b) => b.stmts.iter().find_map(|s| match &s.kind {
            StmtKind::Forward { inputs, .. } => Some(inputs.len()),
            _ => None,
        }),
        _ => None,
    };
    let Some(n) = n_inputs else {
        ch.err(f, codes::NOT_CALLABLE, span, format!("model `{}` has no `forward`", m.name), "cannot be called");
        return Value::Unknown;
    };
    if args.len() != n {
        ch.err(
            f,
            if args.len() > n { codes::TOO_MANY_ARGS } else { codes::MISSING_ARG },
            span,
            format!("`{}` takes {n} input{}, given {}", m.name, if n == 1 { "" } else { "s" }, args.len()),
            "wrong number of inputs",
        );
        return Value::Unknown;
    }
    let (out, caught) = instantiate(ch, f, m.decl, &m.args, extra, span);
    // A wrong input explains whatever else went wrong inside `forward`.
    if out.input_errors.is_empty() {
        report_use(ch, f, caught, span, format!("in this call of `{}`", m.name));
    }
    for (i, msg, decl_span) in &out.input_errors {
        let d = Diagnostic::error(
            codes::SHAPE_MISMATCH,
            &f.source,
            args[*i].span,
            format!("input {} of `{}`: {msg}", i + 1, m.name),
            "this input",
        )
        .with_note(&prog.unit_of(m.decl).source, *decl_span, "`forward` declares this shape", "");
        ch.report(d);
    }
    out.forward.map(|(_, v)| v).unwrap_or(Value::Unknown)
}

/// Instantiates an adapter on a weight of a shape: its members.
pub fn adapt(ch: &mut Checker, f: &Frame, a: &Applied, target: Shape, span: Span) -> BTreeMap<String, ParamInfo> {
    let Callee::Decl(id) = a.callee else { return BTreeMap::new() };
    let extra = Extra { target: Some(target), ..Extra::default() };
    let (out, caught) = instantiate(ch, f, id, &a.args, extra, span);
    report_use(ch, f, caught, span, use_label(ch, id));
    out.members
        .into_iter()
        .filter_map(|(n, m)| match m {
            Member::Param(p) => Some((n, p)),
            _ => None,
        })
        .collect()
}
