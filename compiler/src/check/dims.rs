//! Shapes in declarations: binding the names of a shape pattern (`x[batch, d]`, `[*dims]`) to a
//! value's dimensions, evaluating a parameter's declared shape, and checking that an init or a
//! weight produces exactly the shape declared for it.

use super::apply::init_tensor;
use super::args::coerce;
use super::body::declare;
use super::eval::{Checker, Frame, Local, LocalKind, Scope};
use super::shape::{Dim, Shape};
use super::value::{Elem, Ty, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::*;

/// Binds the names of a shape pattern against a value's shape. Returns mismatches as messages
/// when `errors` is given (an instantiation reports them at the call), else reports them.
pub fn bind_shape(
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

pub fn bind_init_shape(ch: &mut Checker, f: &mut Frame, shape: &crate::syntax::ast::Shape, given: Option<&[Dim]>) {
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
pub fn declared_shape(f: &Frame, shape: &crate::syntax::ast::Shape) -> Shape {
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
pub fn dim_of(ch: &mut Checker, f: &mut Frame, e: &Expr) -> Dim {
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

pub fn check_same_shape(ch: &mut Checker, f: &Frame, want: &Shape, v: &Value, span: Span, what: &str) {
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

pub fn check_init_value(ch: &mut Checker, f: &mut Frame, shape: &Shape, v: Value, span: Span) {
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
