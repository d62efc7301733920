//! Uses of declarations: calling a function, building a model, applying a rule to a tensor or an
//! init to a shape, adapting a weight. Each use instantiates the declaration silently with the
//! values it is given (memoized, since the same instantiations recur); a problem that only those
//! values reveal is reported at the use, with a note where it arises.

use super::args::{self, applied};
use super::body::{check_decl, run, Extra, Outcome};
use super::dims::to_dim;
use super::eval::{ArgVal, Checker, Frame};
use super::shape::{Dim, Shape};
use super::value::{Applied, Bound, Callee, DeclId, Elem, Member, ModelVal, ParamInfo, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::*;
use std::collections::BTreeMap;
use std::rc::Rc;

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
        // Name the whole cycle, so that however it is entered the message is the same and
        // `finish` keeps one report of it.
        let mut names: Vec<&str> = ch.stack[pos..].iter().map(|&d| prog.decl(d).name.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let message = match names.as_slice() {
            [one] => format!("`{one}` uses itself"),
            [init @ .., last] => format!(
                "{} and `{last}` use each other",
                init.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            ),
            [] => String::new(),
        };
        let d = Diagnostic::error(codes::RECURSION, &f.source, use_span, message, "recursive use")
            .with_help("the language has no recursion; use `repeat` for iteration");
        ch.report(d);
        return (Outcome::default(), Vec::new());
    }
    if ch.stack.len() > 64 {
        return (Outcome::default(), Vec::new());
    }
    // An instantiation depends only on the declaration, its arguments and its input shapes, and
    // the same ones recur (a loss on the same shapes in every experiment): remember them.
    let key = format!("{id}|{bound:?}|{extra:?}");
    if let Some(hit) = ch.instances.get(&key) {
        return hit.clone();
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
    ch.instances.insert(key, (out.clone(), caught.clone()));
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
