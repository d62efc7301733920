//! Elementwise math and reductions: the unary functions (folded when their argument is a known
//! number), `max`/`min` (elementwise with two arguments, reductions with one), `where`, the axis
//! reductions `sum`, `mean`, `norm` and `argmax`, and the group reductions `global_norm` and
//! `global_sum` over every parameter a rule updates. Grouped because they share the reduction's
//! `axis`/`keepdims` typing ([`reduce`]).

use super::{numeric, sig, Sig};
use crate::check::eval::{Checker, Frame};
use crate::check::shape::{Dim, DimOp, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::codes;
use crate::syntax::ast::Span;

/// The unary elementwise functions, all typed alike.
const UNARY: &[&str] = &["abs", "sign", "sqrt", "exp", "log", "sin", "cos", "tanh", "erf", "floor", "ceil", "round"];

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("abs", &["x"], 1),
    sig("sign", &["x"], 1),
    sig("sqrt", &["x"], 1),
    sig("exp", &["x"], 1),
    sig("log", &["x"], 1),
    sig("sin", &["x"], 1),
    sig("cos", &["x"], 1),
    sig("tanh", &["x"], 1),
    sig("erf", &["x"], 1),
    sig("floor", &["x"], 1),
    sig("ceil", &["x"], 1),
    sig("round", &["x"], 1),
    sig("max", &["x", "y", "axis", "keepdims"], 1),
    sig("min", &["x", "y", "axis", "keepdims"], 1),
    sig("where", &["cond", "x", "y"], 3),
    sig("sum", &["x", "axis", "keepdims"], 1),
    sig("mean", &["x", "axis", "keepdims"], 1),
    sig("norm", &["x", "axis", "keepdims"], 1),
    sig("argmax", &["x", "axis"], 1),
    sig("global_norm", &["x"], 1),
    sig("global_sum", &["x"], 1),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], span: Span) -> Value {
    let name = s.name;
    if UNARY.contains(&name) {
        let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
        if let Some(x) = a[0].as_ref().and_then(|(v, _)| v.as_f64()) {
            let folded = crate::ir::Unary::from_builtin(name).and_then(|u| u.eval_f64(x));
            return Value::Float(folded);
        }
        return Value::tensor(shape);
    }
    match name {
        "max" | "min" if a[1].is_some() => {
            let (Some(x), Some(y)) = (a[0].clone(), a[1].clone()) else { return Value::Unknown };
            if let (Value::Int(p), Value::Int(q)) = (&x.0, &y.0) {
                return Value::Int(Dim::apply(if name == "max" { DimOp::Max } else { DimOp::Min }, p, q));
            }
            if let (Some(p), Some(q)) = (x.0.as_f64(), y.0.as_f64()) {
                return Value::Float(Some(if name == "max" { p.max(q) } else { p.min(q) }));
            }
            for (v, sp) in [&x, &y] {
                if !v.is_numeric() {
                    ch.bad_operand(f, *sp, &format!("`{name}`"), v);
                    return Value::Unknown;
                }
            }
            ch.broadcast(f, span, &x.0, x.1, &y.0, y.1).map_or(Value::Unknown, Value::tensor)
        }
        "max" | "min" | "sum" | "mean" | "norm" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            let (axis_i, keep_i) = if matches!(name, "max" | "min") { (2, 3) } else { (1, 2) };
            reduce(ch, f, &shape, a[axis_i].as_ref(), a[keep_i].as_ref())
        }
        "argmax" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            match reduce(ch, f, &shape, a[1].as_ref(), None) {
                Value::Float(_) => Value::Int(Dim::Any),
                Value::Tensor(s, _) => Value::Tensor(s, Elem::Int),
                other => other,
            }
        }
        "where" => {
            let (Some(c), Some(x), Some(y)) = (a[0].clone(), a[1].clone(), a[2].clone()) else { return Value::Unknown };
            for (v, sp) in [&c, &x, &y] {
                if !v.is_numeric() {
                    ch.bad_operand(f, *sp, "`where`", v);
                    return Value::Unknown;
                }
            }
            let Some(s1) = ch.broadcast(f, span, &c.0, c.1, &x.0, x.1) else { return Value::Unknown };
            let t = Value::tensor(s1);
            ch.broadcast(f, span, &t, x.1, &y.0, y.1).map_or(Value::Unknown, Value::tensor)
        }
        "global_norm" | "global_sum" => {
            let _ = numeric(ch, f, name, &a[0]);
            Value::Float(None)
        }
        _ => Value::Unknown,
    }
}

/// The result of reducing a tensor of `shape` over `axis` (all axes when absent), keeping the
/// reduced axes as size 1 when `keep` says so.
fn reduce(
    ch: &mut Checker,
    f: &Frame,
    shape: &Shape,
    axis: Option<&(Value, Span)>,
    keep: Option<&(Value, Span)>,
) -> Value {
    let keepdims = match keep {
        Some((Value::Bool(Some(b)), _)) => *b,
        Some((Value::Bool(None) | Value::Unknown, _)) | None => false,
        Some((other, sp)) => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`keepdims` is a bool, found {}", other.describe()),
                "not a bool",
            );
            false
        }
    };
    let Some((axis, asp)) = axis else {
        return if keepdims {
            match shape {
                Shape::Dims(d) => Value::tensor(Shape::Dims(vec![Dim::Known(1); d.len()])),
                _ => Value::Tensor(Shape::Any(None), Elem::Float),
            }
        } else {
            Value::Float(None)
        };
    };
    let axes: Vec<i64> = match axis {
        Value::Int(Dim::Known(a)) => vec![*a],
        Value::List(Some(items)) if items.iter().all(|i| i.as_int().is_some()) => {
            items.iter().filter_map(Value::as_int).collect()
        }
        Value::Int(_) | Value::Unknown | Value::List(_) => return Value::Tensor(Shape::Any(None), Elem::Float),
        other => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *asp,
                format!("`axis` is an int or a list of ints, found {}", other.describe()),
                "not an axis",
            );
            return Value::Unknown;
        }
    };
    let Shape::Dims(d) = shape else { return Value::Tensor(Shape::Any(None), Elem::Float) };
    let n = d.len() as i64;
    let mut drop = vec![false; d.len()];
    for a in axes {
        let k = if a < 0 { n + a } else { a };
        if k < 0 || k >= n {
            ch.err(f, codes::OUT_OF_BOUNDS, *asp, format!("axis {a} is outside a tensor of rank {n}"), "no such axis");
            return Value::Unknown;
        }
        drop[k as usize] = true;
    }
    let out: Vec<Dim> = d
        .iter()
        .zip(&drop)
        .filter_map(|(x, &dr)| match (dr, keepdims) {
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
            _ => Some(x.clone()),
        })
        .collect();
    Value::tensor(Shape::Dims(out))
}
