//! Experiments: settings (`seed`, `steps`, `loss`, `dtype`), bindings of models (edited `with`
//! new weights or `adapted by` an adapter), data, which rule trains which parameters, metrics,
//! checkpoints and sweeps. Every parameter path is resolved against the models it names, every
//! rule is checked against the shape of each parameter it will update, and an experiment that
//! lacks a loss, a step count or an `optimize` is rejected.

use super::body::{check_count, Outcome};
use super::eval::{ArgVal, Checker, Ctx, Frame, Local, LocalKind};
use super::shape::Shape;
use super::value::{DeclId, Member, ModelVal, ParamInfo, Ty, Value};
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::*;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

const SETTINGS: &[&str] = &["seed", "steps", "loss", "dtype"];

/// Checks an experiment; the outcome's notes describe what it will do.
pub fn check_experiment(ch: &mut Checker, id: DeclId) -> Outcome {
    let prog = ch.prog;
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let mut f = Frame::new(unit, prog.units[unit].source.clone(), Ctx::Experiment);
    let mut out = Outcome::default();
    let mut settings: HashMap<&'static str, Span> = HashMap::new();
    let mut trained: BTreeMap<String, Span> = BTreeMap::new();
    let mut sweep_seen: Option<Span> = None;
    let mut has_optimize = false;
    let Body::Block(block) = &decl.body else { return out };
    if let Some(v) = &block.value {
        ch.err(&f, codes::MISPLACED_STMT, v.span, "an experiment has no value", "a bare expression");
    }
    for s in &block.stmts {
        match &s.kind {
            StmtKind::Let { pattern: Pattern::Name(n), value, modifiers } if modifiers.is_empty() => {
                let v = ch.eval(&mut f, value);
                bind(ch, &mut f, n, v, LocalKind::Let);
            }
            StmtKind::Assign { place, op, value, clauses } => {
                if place.parts.len() > 1 || *op != AssignOp::Set {
                    ch.err(
                        &f,
                        codes::NOT_ASSIGNABLE,
                        place.span,
                        format!("cannot assign to `{place}` with `{}`", op.as_str()),
                        "not a binding",
                    );
                    continue;
                }
                let name = &place.parts[0];
                let v = ch.eval(&mut f, value);
                let v = apply_clauses(ch, &mut f, v, value.span, clauses);
                if let Some(&setting) = SETTINGS.iter().find(|s| **s == name.name) {
                    if let Some(prev) = settings.insert(setting, s.span) {
                        ch.report(
                            Diagnostic::error(
                                codes::DUPLICATE_SETTING,
                                &f.source,
                                s.span,
                                format!("`{setting}` is set twice"),
                                "set again here",
                            )
                            .with_label(prev, "first set here"),
                        );
                        continue;
                    }
                    check_setting(ch, &f, setting, &v, value.span);
                    out.notes.push(format!("{setting} = {}", describe(&v)));
                } else {
                    if let Value::Model(m) = &v {
                        let mut params = Vec::new();
                        m.parameters("", &mut params);
                        let list: Vec<String> = params
                            .iter()
                            .map(|(p, i)| format!("{p}{}{}", i.shape, if i.trainable { "" } else { " frozen" }))
                            .collect();
                        out.notes.push(format!("model {} = {}: {}", name.name, m.name, list.join(", ")));
                    }
                }
                bind(ch, &mut f, name, v, LocalKind::Member);
            }
            StmtKind::Data { names, source, options } => {
                let v = ch.eval(&mut f, source);
                data(ch, &mut f, names, v, source.span, options, &mut out);
            }
            StmtKind::Optimize { paths, rule } => {
                has_optimize = true;
                let r = ch.eval(&mut f, rule);
                let Some(r) = super::args::coerce(ch, &mut f, Ty::Rule, r.clone(), rule.span) else {
                    ch.err(
                        &f,
                        codes::TYPE_MISMATCH,
                        rule.span,
                        format!("`optimize ... with` takes a rule, found {}", r.describe()),
                        "not a rule",
                    );
                    continue;
                };
                let mut names = Vec::new();
                for p in paths {
                    for (path, info) in resolve(ch, &f, p, true) {
                        if let Some(prev) = trained.insert(path.clone(), p.span) {
                            ch.report(
                                Diagnostic::error(codes::DOUBLE_OPTIMIZE, &f.source, p.span, format!("`{path}` is already optimized"), "optimized again")
                                    .with_label(prev, "first optimized here")
                                    .with_help("each parameter takes one rule; combine rules with `chain(...)` or `partition(...)`"),
                            );
                            continue;
                        }
                        let g = Value::tensor(info.shape.clone());
                        let arg = ArgVal { name: None, value: g, span: p.span };
                        if let Value::Rule(applied) = &r {
                            let what = format!("applying this rule to `{path}`, shape {}", info.shape);
                            super::apply::apply_rule(ch, &mut f, applied, &[arg], rule.span, Some(what));
                        }
                        names.push(format!("{path}{}", info.shape));
                    }
                }
                out.notes.push(format!(
                    "optimize {} with {}",
                    names.join(", "),
                    &f.source.text[rule.span.start..rule.span.end]
                ));
            }
            StmtKind::Init { paths, init } => {
                let v = ch.eval(&mut f, init);
                let Some(Value::Init(a)) = super::args::coerce(ch, &mut f, Ty::Init, v.clone(), init.span) else {
                    if !matches!(v, Value::Unknown) {
                        ch.err(
                            &f,
                            codes::TYPE_MISMATCH,
                            init.span,
                            format!("`init ... with` takes an init, found {}", v.describe()),
                            "not an init",
                        );
                    }
                    continue;
                };
                for p in paths {
                    for (_, info) in resolve(ch, &f, p, false) {
                        if let Shape::Dims(d) = &info.shape {
                            super::apply::init_tensor(ch, &f, &a, d.clone(), init.span);
                        }
                    }
                }
            }
            StmtKind::Log { every, entries } => {
                let n = ch.eval(&mut f, every);
                check_count(ch, &f, &n, every.span, "a logging period");
                let mut names = Vec::new();
                for e in entries {
                    let v = super::metrics::check_entry(ch, &mut f, e, settings.contains_key("loss"));
                    if !v.shape().is_some_and(|s| s.is_scalar() || s.rank().is_none()) || !v.is_numeric() {
                        ch.report(
                            Diagnostic::error(
                                codes::TYPE_MISMATCH,
                                &f.source,
                                e.span,
                                format!("metric `{}` is {}, not a scalar", e.name.name, v.describe()),
                                "not a scalar",
                            )
                            .with_help("reduce it, e.g. with `norm(...)` or `mean(...)`"),
                        );
                    }
                    names.push(e.name.name.clone());
                }
                out.notes.push(format!(
                    "log every {}: {}",
                    &f.source.text[every.span.start..every.span.end],
                    names.join(", ")
                ));
            }
            StmtKind::Checkpoint { every } => {
                let n = ch.eval(&mut f, every);
                check_count(ch, &f, &n, every.span, "a checkpoint period");
            }
            StmtKind::Sweep { axes } => {
                if let Some(prev) = sweep_seen.replace(s.span) {
                    ch.report(
                        Diagnostic::error(
                            codes::DUPLICATE_SETTING,
                            &f.source,
                            s.span,
                            "an experiment has one `sweep`",
                            "second sweep",
                        )
                        .with_label(prev, "first sweep")
                        .with_help("list every axis in one `sweep a in [...], b in [...]`"),
                    );
                }
                let points = sweep(ch, &mut f, axes);
                out.notes.push(format!("sweep {} points", points.map_or("?".into(), |p| p.to_string())));
            }
            StmtKind::Let { .. }
            | StmtKind::Var { .. }
            | StmtKind::Repeat { .. }
            | StmtKind::For { .. }
            | StmtKind::If(_)
            | StmtKind::Return { .. } => {
                let what = match &s.kind {
                    StmtKind::Let { .. } => "a destructuring or modified `let`",
                    StmtKind::Var { .. } => "`var`",
                    StmtKind::Repeat { .. } => "`repeat`",
                    StmtKind::For { .. } => "`for`",
                    StmtKind::If(_) => "`if`",
                    _ => "`return`",
                };
                ch.report(
                    Diagnostic::error(
                        codes::MISPLACED_STMT,
                        &f.source,
                        s.span,
                        format!("{what} cannot appear in an experiment"),
                        "not allowed here",
                    )
                    .with_help("an experiment declares bindings; compute values in a `fn` or with `let name = ...`"),
                );
            }
            _ => super::stmt::stmt(ch, &mut f, s),
        }
    }
    let mut missing = Vec::new();
    if !settings.contains_key("loss") {
        missing.push("`loss = ...`");
    }
    if !settings.contains_key("steps") {
        missing.push("`steps = ...`");
    }
    if !has_optimize {
        missing.push("`optimize ... with ...`");
    }
    if !missing.is_empty() {
        let mut d = Diagnostic::error(
            codes::MISSING_SETTING,
            &f.source,
            decl.name.span,
            format!("experiment `{}` needs {}", decl.name.name, missing.join(", ")),
            "incomplete",
        )
        .with_help("an experiment says what to minimize, for how many steps, and which rule trains which parameters");
        // A misspelt setting is bound as an ordinary name: point at it.
        for (name, local) in f.scopes[0].iter() {
            if let Some(s) =
                SETTINGS.iter().find(|s| !settings.contains_key(**s) && did_you_mean(name, [**s]).is_some())
            {
                d = d.with_label(local.span, format!("did you mean `{s}`?"));
            }
        }
        ch.report(d);
    }
    out
}

fn describe(v: &Value) -> String {
    match v {
        Value::Int(d) => d.to_string(),
        Value::Float(Some(x)) => x.to_string(),
        Value::Str(Some(s)) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn bind(ch: &mut Checker, f: &mut Frame, name: &Ident, v: Value, kind: LocalKind) {
    if let Some(prev) = f.get(&name.name) {
        let d = Diagnostic::error(
            codes::DUPLICATE_BINDING,
            &f.source,
            name.span,
            format!("`{}` is bound twice", name.name),
            "bound again here",
        )
        .with_label(prev.span, "first bound here");
        ch.report(d);
        return;
    }
    f.scopes[0].insert(name.name.clone(), Local { value: v, kind, span: name.span });
}

fn check_setting(ch: &mut Checker, f: &Frame, setting: &str, v: &Value, span: Span) {
    match setting {
        "steps" => check_count(ch, f, v, span, "`steps`"),
        "seed" => match v {
            Value::Int(super::shape::Dim::Known(n)) if *n < 0 => {
                ch.err(f, codes::OUT_OF_RANGE, span, format!("`seed` must not be negative, found {n}"), "negative")
            }
            Value::Int(_) | Value::Unknown => {}
            other => ch.err(
                f,
                codes::TYPE_MISMATCH,
                span,
                format!("`seed` is an int, found {}", other.describe()),
                "not an int",
            ),
        },
        "dtype" => match v {
            Value::Str(Some(s)) if s == "f32" || s == "f64" => {}
            other => ch.report(Diagnostic::error(
                codes::TYPE_MISMATCH,
                &f.source,
                span,
                format!("`dtype` is \"f32\" or \"f64\", found {}", describe(other)),
                "unknown dtype",
            )),
        },
        _ => {
            if !v.is_numeric() || !v.shape().is_some_and(|s| s.is_scalar() || s.rank().is_none()) {
                ch.report(
                    Diagnostic::error(
                        codes::TYPE_MISMATCH,
                        &f.source,
                        span,
                        format!("the loss must be a scalar, found {}", v.describe()),
                        "not a scalar",
                    )
                    .with_help("reduce it, e.g. `mean(...)`, or use a loss such as `mse(pred, target)`"),
                );
            }
        }
    }
}

fn apply_clauses(ch: &mut Checker, f: &mut Frame, v: Value, vspan: Span, clauses: &[Clause]) -> Value {
    let mut v = v;
    for c in clauses {
        let Value::Model(m) = &v else {
            if !matches!(v, Value::Unknown) {
                let span = match c {
                    Clause::With { span, .. } | Clause::Adapted { span, .. } => *span,
                };
                ch.report(
                    Diagnostic::error(
                        codes::TYPE_MISMATCH,
                        &f.source,
                        vspan,
                        format!("only a model can be edited or adapted, not {}", v.describe()),
                        "not a model",
                    )
                    .with_label(span, "this clause"),
                );
            }
            return Value::Unknown;
        };
        let mut model = (**m).clone();
        match c {
            Clause::With { edits, .. } => {
                for e in edits {
                    let new = ch.eval(f, &e.value);
                    let Some(info) = member_param(ch, f, &model, &e.place) else { continue };
                    if let (Some(want), Some(got)) = (Some(info.shape.clone()), new.shape()) {
                        if want
                            .broadcast(&got)
                            .map_or(true, |b| b != want && b.rank().is_some() && want.rank().is_some())
                        {
                            ch.report(
                                Diagnostic::error(
                                    codes::SHAPE_MISMATCH,
                                    &f.source,
                                    e.value.span,
                                    format!("`{}` has shape {want}, the edit has shape {got}", e.place),
                                    format!("shape {got}"),
                                )
                                .with_label(e.place.span, format!("shape {want}")),
                            );
                        }
                    }
                }
            }
            Clause::Adapted { adapter, targets, .. } => {
                let a = ch.eval(f, adapter);
                let Some(Value::Adapter(applied)) = super::args::coerce(ch, f, Ty::Adapter, a.clone(), adapter.span)
                else {
                    if !matches!(a, Value::Unknown) {
                        ch.err(
                            f,
                            codes::TYPE_MISMATCH,
                            adapter.span,
                            format!("`adapted by` takes an adapter, found {}", a.describe()),
                            "not an adapter",
                        );
                    }
                    continue;
                };
                let adapter_name = match applied.callee {
                    super::value::Callee::Decl(id) => ch.prog.decl(id).name.name.clone(),
                    _ => "adapter".into(),
                };
                for t in targets {
                    let place = Place {
                        parts: t
                            .parts
                            .iter()
                            .map(|p| match p {
                                PathPart::Name(n) => n.clone(),
                                PathPart::Star(s) => Ident { name: "*".into(), span: *s },
                            })
                            .collect(),
                        span: t.span,
                    };
                    let Some(info) = member_param(ch, f, &model, &place) else { continue };
                    let members = super::apply::adapt(ch, f, &applied, info.shape.clone(), t.span);
                    if place.parts.len() == 1 {
                        if let Some(slot) = model.members.iter_mut().find(|(n, _)| *n == place.parts[0].name) {
                            slot.1 =
                                Member::Adapted { shape: info.shape.clone(), members, adapter: adapter_name.clone() };
                        }
                    } else {
                        ch.err(
                            f,
                            codes::NO_SUCH_PARAM,
                            t.span,
                            "adapters apply to a model's own weights",
                            "nested path",
                        );
                    }
                }
            }
        }
        v = Value::Model(Rc::new(model));
    }
    v
}

/// A direct parameter of a model by a one-part place.
fn member_param(ch: &mut Checker, f: &Frame, m: &ModelVal, place: &Place) -> Option<ParamInfo> {
    let name = &place.parts[0];
    match (m.member(&name.name), place.parts.len()) {
        (Some(Member::Param(p)), 1) => Some(p.clone()),
        (Some(Member::Adapted { shape, .. }), 1) => Some(ParamInfo { shape: shape.clone(), trainable: false }),
        (Some(_), _) => {
            ch.err(
                f,
                codes::NO_SUCH_PARAM,
                place.span,
                format!("`{place}` is not a parameter of `{}`", m.name),
                "not a parameter",
            );
            None
        }
        (None, _) => {
            let help = did_you_mean(&name.name, m.members.iter().map(|(n, _)| n.as_str()));
            ch.report(
                Diagnostic::error(
                    codes::NO_SUCH_PARAM,
                    &f.source,
                    name.span,
                    format!("model `{}` has no parameter `{}`", m.name, name.name),
                    "no such parameter",
                )
                .with_help_opt(help),
            );
            None
        }
    }
}

/// The parameters a path names: `student.w.a`, `model.*` (every trainable parameter below).
fn resolve(ch: &mut Checker, f: &Frame, p: &Path, trainable_only: bool) -> Vec<(String, ParamInfo)> {
    let PathPart::Name(root) = &p.parts[0] else {
        ch.err(f, codes::NO_SUCH_PARAM, p.span, "a path starts with a model's name", "starts with `*`");
        return Vec::new();
    };
    let Some(local) = f.get(&root.name) else {
        let names: Vec<&str> = f.scopes.iter().flat_map(|s| s.keys().map(String::as_str)).collect();
        ch.report(
            Diagnostic::error(
                codes::UNKNOWN_NAME,
                &f.source,
                root.span,
                format!("unknown model `{}`", root.name),
                "not bound in this experiment",
            )
            .with_help_opt(did_you_mean(&root.name, names)),
        );
        return Vec::new();
    };
    let Value::Model(m) = &local.value else {
        if !matches!(local.value, Value::Unknown) {
            ch.err(
                f,
                codes::NO_SUCH_PARAM,
                root.span,
                format!("`{}` is {}, not a model", root.name, local.value.describe()),
                "not a model",
            );
        }
        return Vec::new();
    };
    let mut all = Vec::new();
    m.parameters("", &mut all);
    let pattern: Vec<String> = p.parts[1..]
        .iter()
        .map(|x| match x {
            PathPart::Name(n) => n.name.clone(),
            PathPart::Star(_) => "*".into(),
        })
        .collect();
    let matched: Vec<(String, ParamInfo)> = all
        .iter()
        .filter(|(path, _)| {
            // A pattern names a parameter or everything below it; `*` matches any one name.
            let parts: Vec<&str> = path.split('.').collect();
            pattern.len() <= parts.len() && pattern.iter().zip(&parts).all(|(a, b)| a == "*" || a == b)
        })
        .map(|(path, info)| (format!("{}.{path}", root.name), info.clone()))
        .collect();
    let selected: Vec<(String, ParamInfo)> =
        if trainable_only { matched.iter().filter(|(_, i)| i.trainable).cloned().collect() } else { matched.clone() };
    if selected.is_empty() {
        let text = p.to_string();
        let frozen = !matched.is_empty();
        let names: Vec<String> = all
            .iter()
            .filter(|(_, i)| i.trainable || !trainable_only)
            .map(|(n, _)| format!("{}.{n}", root.name))
            .collect();
        let help = did_you_mean(&text, names.iter().map(String::as_str))
            .or_else(|| Some(format!("`{}` has: {}", root.name, names.join(", "))));
        ch.report(
            Diagnostic::error(
                codes::NO_SUCH_PARAM,
                &f.source,
                p.span,
                if frozen { format!("`{text}` is frozen") } else { format!("`{text}` matches no parameter") },
                if frozen { "frozen, not trainable" } else { "no match" },
            )
            .with_help_opt(help),
        );
    }
    selected
}

fn data(
    ch: &mut Checker,
    f: &mut Frame,
    names: &[Ident],
    v: Value,
    span: Span,
    options: &[DataOption],
    out: &mut Outcome,
) {
    let parts: Vec<Value> = match (&v, names.len()) {
        (Value::Tuple(t) | Value::List(Some(t)), n) if n > 1 => {
            if t.len() != n {
                ch.err(
                    f,
                    codes::TUPLE_ARITY,
                    span,
                    format!("{n} names for data with {} parts", t.len()),
                    format!("{} parts", t.len()),
                );
            }
            t.clone()
        }
        (Value::List(None) | Value::Unknown, _) => {
            vec![Value::Tensor(Shape::Any(None), super::value::Elem::Float); names.len()]
        }
        (v, 1) if v.is_numeric() => vec![v.clone()],
        (other, _) => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                span,
                format!("data must be tensors, found {}", other.describe()),
                "not data",
            );
            vec![Value::Unknown; names.len()]
        }
    };
    for (n, v) in names.iter().zip(parts.into_iter().chain(std::iter::repeat(Value::Unknown))) {
        out.notes.push(format!("data {} {}", n.name, v));
        bind(ch, f, n, v, LocalKind::Member);
    }
    for o in options {
        match o {
            DataOption::Batch(e) => {
                let b = ch.eval(f, e);
                check_count(ch, f, &b, e.span, "a batch size");
            }
            DataOption::Holdout(e) => {
                let h = ch.eval(f, e);
                if let Some(x) = h.as_f64() {
                    if x <= 0.0 || (x >= 1.0 && x.fract() != 0.0) {
                        ch.err(
                            f,
                            codes::OUT_OF_RANGE,
                            e.span,
                            format!("`holdout` is a fraction in (0, 1) or a whole count, found {x}"),
                            "out of range",
                        );
                    }
                }
            }
            DataOption::FreshEveryStep(_) => {}
        }
    }
}

fn sweep(ch: &mut Checker, f: &mut Frame, axes: &[SweepAxis]) -> Option<u64> {
    let mut points: Option<u64> = Some(1);
    for a in axes {
        let known = f.get(&a.name.name).map(|l| l.kind);
        if known != Some(LocalKind::Let) && !["seed", "steps"].contains(&a.name.name.as_str()) {
            let lets: Vec<&str> =
                f.scopes[0].iter().filter(|(_, l)| l.kind == LocalKind::Let).map(|(n, _)| n.as_str()).collect();
            if known.is_some() {
                ch.report(
                    Diagnostic::error(
                        codes::UNKNOWN_NAME,
                        &f.source,
                        a.name.span,
                        format!("cannot sweep `{}`: only `let` values are swept", a.name.name),
                        "not a `let`",
                    )
                    .with_help(format!(
                        "sweep a `let` that `{}` is built from, e.g. `let width = 64` used as `model(width)`",
                        a.name.name
                    )),
                );
                continue;
            }
            ch.report(
                Diagnostic::error(
                    codes::UNKNOWN_NAME,
                    &f.source,
                    a.name.span,
                    format!("cannot sweep `{}`: it is not a `let` of this experiment", a.name.name),
                    "not sweepable",
                )
                .with_help(
                    did_you_mean(&a.name.name, lets)
                        .unwrap_or_else(|| format!("declare it first: `let {} = ...`", a.name.name)),
                ),
            );
        }
        let n = match &a.values {
            SweepValues::List(e) => match ch.eval(f, e) {
                Value::List(Some(items)) if items.is_empty() => {
                    ch.err(f, codes::BAD_COUNT, e.span, "a sweep axis needs at least one value", "empty");
                    None
                }
                Value::List(Some(items)) => Some(items.len() as u64),
                other => {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        e.span,
                        format!("sweep values are a list, found {}", other.describe()),
                        "not a list",
                    );
                    None
                }
            },
            SweepValues::Range(lo, hi) => {
                let (l, h) = (ch.eval(f, lo), ch.eval(f, hi));
                match (l.as_int(), h.as_int()) {
                    (Some(l), Some(h)) if h > l => match h.checked_sub(l) {
                        Some(n) if n <= 1_000_000 => Some(n as u64),
                        _ => {
                            ch.err(
                                f,
                                codes::BAD_COUNT,
                                lo.span.to(hi.span),
                                format!("the range {l}..{h} is too large to sweep"),
                                "more than a million points",
                            );
                            None
                        }
                    },
                    (Some(l), Some(h)) => {
                        ch.err(
                            f,
                            codes::BAD_COUNT,
                            lo.span.to(hi.span),
                            format!("the range {l}..{h} is empty"),
                            "empty range",
                        );
                        None
                    }
                    _ => {
                        ch.err(
                            f,
                            codes::TYPE_MISMATCH,
                            lo.span.to(hi.span),
                            "a sweep range needs int bounds",
                            "not ints",
                        );
                        None
                    }
                }
            }
        };
        points = match (points, n) {
            (Some(p), Some(n)) => p.checked_mul(n),
            _ => None,
        };
    }
    points
}
