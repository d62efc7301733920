//! Arguments: binding a call's arguments to a declaration's hyperparameters. Checks arity,
//! keywords (with near-miss suggestions), declared types (`inner: rule` accepts only rules) and
//! declared ranges (`beta1 in [0, 1)`) for every argument whose value is a constant. A bare
//! declaration name passed where a rule, init, schedule, adapter or function is expected is
//! applied to no arguments (`inner = adam` means `adam()`).

use super::eval::{ArgVal, Checker, Ctx, Frame, Local, LocalKind};
use super::shape::{Dim, Shape};
use super::value::{Applied, Bound, Callee, DeclId, Elem, Ty, Value};
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::{DeclKind, ExprKind, Param, Span};
use std::collections::HashMap;
use std::rc::Rc;

/// A hyperparameter as the binder sees it.
#[derive(Clone, Debug)]
pub struct Sig {
    /// Its name.
    pub name: String,
    /// `*name`.
    pub variadic: bool,
    /// Declared or inferred type.
    pub ty: Ty,
    /// Constant bounds: (lo, hi, lo closed, hi closed, span of the interval).
    pub range: Option<(f64, f64, bool, bool, Span)>,
    /// True if it has a default.
    pub has_default: bool,
    /// Where it is declared.
    pub span: Span,
}

impl Sig {
    /// The interval as written, for messages.
    pub fn range_text(&self) -> String {
        match self.range {
            Some((lo, hi, lc, hc, _)) => {
                format!("{}{}, {}{}", if lc { "[" } else { "(" }, num(lo), num(hi), if hc { "]" } else { ")" })
            }
            None => String::new(),
        }
    }
}

fn num(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{x}")
    }
}

/// The hyperparameters of a declaration (cached).
pub fn sigs(ch: &mut Checker, id: DeclId) -> Rc<Vec<Sig>> {
    if let Some(s) = ch.sig_cache.get(&id) {
        return s.clone();
    }
    // A default may call its own declaration (`fn f(x = f())`): answer re-entry with no
    // parameters; the recursion itself is reported when the default is checked.
    ch.sig_cache.insert(id, Rc::new(Vec::new()));
    let prog = ch.prog;
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let mut frame = Frame::new(unit, prog.units[unit].source.clone(), Ctx::Function);
    ch.hush();
    ch.stack.push(id);
    let mut out = Vec::new();
    for p in decl.params.iter().flatten() {
        let declared = p.ty.as_ref().and_then(|t| Ty::from_name(&t.name));
        let ty = declared.unwrap_or_else(|| match &p.default {
            Some(e) => match &e.kind {
                ExprKind::Int(_) | ExprKind::Float { .. } => Ty::Float,
                _ => ty_of(&ch.eval(&mut frame, e)),
            },
            None => Ty::Any,
        });
        let range = p.range.as_ref().and_then(|r| {
            let lo = ch.eval(&mut frame, &r.lo).as_f64();
            let hi = ch.eval(&mut frame, &r.hi).as_f64();
            let lo = lo.or_else(|| (bound_is(&r.lo, "-inf")).then_some(f64::NEG_INFINITY))?;
            Some((lo, hi?, r.lo_closed, r.hi_closed, r.span))
        });
        out.push(Sig {
            name: p.name.name.clone(),
            variadic: p.variadic,
            ty,
            range,
            has_default: p.default.is_some(),
            span: p.span,
        });
    }
    ch.stack.pop();
    ch.unhush();
    let rc = Rc::new(out);
    ch.sig_cache.insert(id, rc.clone());
    rc
}

fn bound_is(e: &crate::syntax::ast::Expr, text: &str) -> bool {
    matches!(&e.kind, ExprKind::Unary { operand, .. } if matches!(&operand.kind, ExprKind::Name(n) if format!("-{n}") == text))
}

/// The type a value would have as a hyperparameter default.
pub fn ty_of(v: &Value) -> Ty {
    match v {
        Value::Int(_) | Value::Float(_) => Ty::Float,
        Value::Bool(_) => Ty::Bool,
        Value::Str(_) => Ty::Str,
        Value::Tensor(..) | Value::Param { .. } => Ty::Tensor,
        Value::List(_) => Ty::List,
        Value::Rule(_) => Ty::Rule,
        Value::Schedule(_) => Ty::Schedule,
        Value::Init(_) => Ty::Init,
        Value::Adapter(_) => Ty::Adapter,
        Value::Model(_) => Ty::Model,
        Value::Fn(_) | Value::Callable(Callee::Builtin(_)) => Ty::Fn,
        _ => Ty::Any,
    }
}

/// Converts a value to a declared type if it can be, applying bare declarations to no
/// arguments; `None` if it cannot.
pub fn coerce(ch: &mut Checker, f: &mut Frame, ty: Ty, v: Value, span: Span) -> Option<Value> {
    if let Value::Callable(Callee::Decl(id)) = &v {
        let kind = ch.prog.decl(*id).kind;
        let want = match ty {
            Ty::Rule => Some(DeclKind::Rule),
            Ty::Init => Some(DeclKind::Init),
            Ty::Schedule | Ty::Float => Some(DeclKind::Schedule),
            Ty::Adapter => Some(DeclKind::Adapter),
            Ty::Fn => Some(DeclKind::Function),
            Ty::Any => Some(kind),
            _ => None,
        };
        if want == Some(kind) {
            if kind == DeclKind::Function {
                return Some(Value::Fn(Callee::Decl(*id)));
            }
            if matches!(kind, DeclKind::Model | DeclKind::Experiment) {
                return (ty == Ty::Any).then_some(v);
            }
            return Some(super::apply::call_decl(ch, f, *id, &[], span, span));
        }
        return None;
    }
    let ok = match (ty, &v) {
        (Ty::Any, _) | (_, Value::Unknown) => true,
        (Ty::Int, Value::Int(_)) => true,
        (Ty::Float, Value::Int(_) | Value::Float(_) | Value::Schedule(_)) => true,
        (Ty::Float, Value::Tensor(s, Elem::Float)) => s.is_scalar() || s.rank().is_none(),
        (Ty::Bool, Value::Bool(_)) => true,
        (Ty::Str, Value::Str(_)) => true,
        (Ty::Tensor, v) => v.is_numeric() && !matches!(v, Value::Schedule(_)),
        (Ty::Rule, Value::Rule(_)) => true,
        (Ty::Schedule, Value::Schedule(_) | Value::Int(_) | Value::Float(_)) => true,
        (Ty::Init, Value::Init(_)) => true,
        (Ty::Adapter, Value::Adapter(_)) => true,
        (Ty::Model, Value::Model(_)) => true,
        (Ty::Fn, Value::Fn(_) | Value::Callable(Callee::Builtin(_))) => true,
        (Ty::List, Value::List(_) | Value::Tuple(_)) => true,
        _ => false,
    };
    if !ok {
        return None;
    }
    Some(match v {
        Value::Callable(Callee::Builtin(b)) if ty == Ty::Fn => Value::Fn(Callee::Builtin(b)),
        v => v,
    })
}

/// Binds call arguments to the hyperparameters of declaration `id`.
pub fn bind(ch: &mut Checker, f: &mut Frame, id: DeclId, args: &[ArgVal], call_span: Span) -> Bound {
    let sigs = sigs(ch, id);
    let prog = ch.prog;
    let decl = prog.decl(id);
    let decl_src = prog.unit_of(id).source.clone();
    let what = format!("{} `{}`", decl.kind.keyword(), decl.name.name);
    let mut bound = Bound::new();
    let mut given_at: Vec<Option<Span>> = vec![None; sigs.len()];
    let mut next = 0usize;
    let mut seen_keyword: Option<Span> = None;
    let mut rest: Vec<Value> = Vec::new();
    let note =
        |d: Diagnostic, span: Span, text: String| -> Diagnostic { d.with_note(&decl_src, span, text, "declared here") };
    for a in args {
        let idx = match &a.name {
            None => {
                if let Some(k) = seen_keyword {
                    let d = Diagnostic::error(
                        codes::POSITIONAL_AFTER_KEYWORD,
                        &f.source,
                        a.span,
                        "positional argument after a keyword argument",
                        "positional",
                    )
                    .with_label(k, "keyword argument")
                    .with_help("put positional arguments first, or name this one");
                    ch.report(d);
                    continue;
                }
                while next < sigs.len() && given_at[next].is_some() && !sigs[next].variadic {
                    next += 1;
                }
                if next >= sigs.len() {
                    let d = Diagnostic::error(
                        codes::TOO_MANY_ARGS,
                        &f.source,
                        a.span,
                        format!(
                            "{what} takes {} argument{}, but more were given",
                            sigs.len(),
                            if sigs.len() == 1 { "" } else { "s" }
                        ),
                        "unexpected argument",
                    );
                    let d = note(d, decl.name.span, format!("{what} is declared here"));
                    ch.report(d);
                    continue;
                }
                if sigs[next].variadic {
                    given_at[next] = Some(a.span);
                    match coerce(ch, f, sigs[next].ty, a.value.clone(), a.span) {
                        Some(v) => rest.push(v),
                        None => {
                            let d = Diagnostic::error(
                                codes::TYPE_MISMATCH,
                                &f.source,
                                a.span,
                                format!(
                                    "`*{}` of {what} takes {}s, found {}",
                                    sigs[next].name,
                                    sigs[next].ty.name(),
                                    a.value.describe()
                                ),
                                format!("expected {}", article(sigs[next].ty)),
                            );
                            ch.report(note(d, sigs[next].span, format!("`{}` is declared here", sigs[next].name)));
                        }
                    }
                    continue;
                }
                next
            }
            Some(name) => {
                seen_keyword = Some(a.span);
                match sigs.iter().position(|s| s.name == name.name) {
                    Some(i) => i,
                    None => {
                        let help = did_you_mean(&name.name, sigs.iter().map(|s| s.name.as_str())).or_else(|| {
                            Some(if sigs.is_empty() {
                                format!("{what} takes no arguments")
                            } else {
                                format!(
                                    "{what} takes: {}",
                                    sigs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                                )
                            })
                        });
                        let d = Diagnostic::error(
                            codes::UNKNOWN_KEYWORD,
                            &f.source,
                            name.span,
                            format!("{what} has no parameter `{}`", name.name),
                            "unknown parameter",
                        )
                        .with_help_opt(help);
                        ch.report(d);
                        continue;
                    }
                }
            }
        };
        if let Some(prev) = given_at[idx] {
            if !sigs[idx].variadic {
                let d = Diagnostic::error(
                    codes::DUPLICATE_ARG,
                    &f.source,
                    a.span,
                    format!("`{}` is given twice", sigs[idx].name),
                    "given again here",
                )
                .with_label(prev, "first given here");
                ch.report(d);
                continue;
            }
        }
        given_at[idx] = Some(a.span);
        let sig = &sigs[idx];
        let Some(v) = coerce(ch, f, sig.ty, a.value.clone(), a.span) else {
            let d = Diagnostic::error(
                codes::TYPE_MISMATCH,
                &f.source,
                a.span,
                format!("`{}` of {what} expects {}, found {}", sig.name, article(sig.ty), a.value.describe()),
                format!("expected {}", article(sig.ty)),
            );
            let d = note(d, sig.span, format!("`{}` is declared here", sig.name));
            ch.report(d);
            continue;
        };
        if let (Some((lo, hi, lc, hc, rspan)), Some(x)) = (sig.range, v.as_f64()) {
            let inside = (if lc { x >= lo } else { x > lo }) && (if hc { x <= hi } else { x < hi });
            if !inside {
                let d = Diagnostic::error(
                    codes::OUT_OF_RANGE,
                    &f.source,
                    a.span,
                    format!("`{}` = {} is outside {}", sig.name, num(x), sig.range_text()),
                    format!("must lie in {}", sig.range_text()),
                );
                let d = note(d, rspan, format!("{what} declares `{} in {}`", sig.name, sig.range_text()));
                ch.report(d);
            }
        }
        bound.insert(sig.name.clone(), v);
    }
    if let Some(i) = sigs.iter().position(|s| s.variadic) {
        bound.insert(sigs[i].name.clone(), Value::List(Some(rest)));
    }
    let missing: Vec<&Sig> = sigs
        .iter()
        .zip(&given_at)
        .filter(|(s, g)| g.is_none() && !s.has_default && !s.variadic)
        .map(|(s, _)| s)
        .collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|s| format!("`{}`", s.name)).collect();
        let d = Diagnostic::error(
            codes::MISSING_ARG,
            &f.source,
            call_span,
            format!("{what} needs {} {}", if missing.len() == 1 { "argument" } else { "arguments" }, names.join(", ")),
            format!("missing {}", names.join(", ")),
        )
        .with_help(format!(
            "pass {}",
            missing.iter().map(|s| format!("`{} = ...`", s.name)).collect::<Vec<_>>().join(", ")
        ));
        let d = note(d, missing[0].span, format!("`{}` has no default", missing[0].name));
        ch.report(d);
    }
    bound
}

/// "a rule", "an int", ...
pub fn article(ty: Ty) -> String {
    match ty {
        Ty::Int | Ty::Init | Ty::Adapter | Ty::Any => format!("an {}", ty.name()),
        _ => format!("a {}", ty.name()),
    }
}

/// An applied declaration value of the right kind.
pub fn applied(kind: DeclKind, id: DeclId, args: Bound) -> Value {
    let a = Rc::new(Applied { callee: Callee::Decl(id), args });
    match kind {
        DeclKind::Rule => Value::Rule(a),
        DeclKind::Schedule => Value::Schedule(a),
        DeclKind::Init => Value::Init(a),
        DeclKind::Adapter => Value::Adapter(a),
        _ => Value::Unknown,
    }
}

pub fn check_params(ch: &mut Checker, id: DeclId) {
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
                    format!("the default of `{}` is {}, not {}", p.name.name, v.describe(), article(sig.ty)),
                    format!("expected {}", article(sig.ty)),
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
pub fn symbolic(ch: &mut Checker, f: &mut Frame, p: &Param, ty: Ty) -> Value {
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
