//! Shape queries and layout changes: `rows`, `cols`, `ndim`, `numel`, `size` and `shape` answer
//! from a tensor's shape (as constants when it is known, so sizes stay known), `reshape`,
//! `flatten` and `concat` rearrange elements and check that the element counts and the other
//! axes agree.

use super::{numeric, sig, Sig};
use crate::check::apply::shape_of_list;
use crate::check::eval::{Checker, Frame};
use crate::check::shape::{Dim, DimOp, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::codes;
use crate::syntax::ast::Span;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("rows", &["x"], 1),
    sig("cols", &["x"], 1),
    sig("ndim", &["x"], 1),
    sig("numel", &["x"], 1),
    sig("size", &["x", "axis"], 2),
    sig("shape", &["x"], 1),
    sig("reshape", &["x", "shape"], 2),
    sig("flatten", &["x"], 1),
    sig("concat", &["xs", "axis"], 1),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], _span: Span) -> Value {
    let name = s.name;
    match name {
        "rows" | "cols" | "ndim" | "numel" | "size" | "shape" => shape_query(ch, f, name, a),
        "reshape" => {
            let from = numeric(ch, f, name, &a[0]);
            let Some((v, sp)) = &a[1] else { return Value::Unknown };
            let Some(d) = shape_of_list(ch, f, v, *sp) else { return Value::Tensor(Shape::Any(None), Elem::Float) };
            if let Some(Shape::Dims(old)) = &from {
                let count = |ds: &[Dim]| ds.iter().fold(Dim::Known(1), |acc, x| Dim::apply(DimOp::Mul, &acc, x));
                let (before, after) = (count(old), count(&d));
                if let (Dim::Known(p), Dim::Known(q)) = (&before, &after) {
                    if p != q {
                        ch.err(
                            f,
                            codes::SHAPE_MISMATCH,
                            *sp,
                            format!(
                                "cannot reshape {} ({p} elements) to {} ({q} elements)",
                                Shape::Dims(old.clone()),
                                Shape::Dims(d.clone())
                            ),
                            "element counts differ",
                        );
                    }
                }
            }
            Value::tensor(Shape::Dims(d))
        }
        "flatten" => match numeric(ch, f, name, &a[0]) {
            Some(Shape::Dims(d)) => {
                Value::tensor(Shape::Dims(vec![d.iter().fold(Dim::Known(1), |acc, x| Dim::apply(DimOp::Mul, &acc, x))]))
            }
            Some(_) => Value::tensor(Shape::Dims(vec![Dim::Any])),
            None => Value::Unknown,
        },
        "concat" => concat(ch, f, a),
        _ => Value::Unknown,
    }
}

/// `rows`, `cols`, `ndim`, `numel`, `size` and `shape` of the tensor `a[0]`.
fn shape_query(ch: &mut Checker, f: &Frame, name: &str, a: &[Option<(Value, Span)>]) -> Value {
    let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
    let Shape::Dims(d) = shape else {
        return if name == "shape" { Value::List(None) } else { Value::Int(Dim::Any) };
    };
    let n = d.len();
    match name {
        "ndim" => Value::Int(Dim::Known(n as i64)),
        "numel" => Value::Int(d.iter().fold(Dim::Known(1), |acc, x| Dim::apply(DimOp::Mul, &acc, x))),
        "shape" => Value::List(Some(d.into_iter().map(Value::Int).collect())),
        "rows" | "cols" => {
            if n < 2 {
                ch.err(
                    f,
                    codes::RANK_MISMATCH,
                    a[0].as_ref().map_or(Span::default(), |x| x.1),
                    format!("`{name}` needs a matrix, found rank {n}"),
                    "not a matrix",
                );
                return Value::Int(Dim::Any);
            }
            Value::Int(if name == "rows" { d[n - 2].clone() } else { d[n - 1].clone() })
        }
        _ => match a[1].as_ref().and_then(|(v, _)| v.as_int()) {
            Some(k) => {
                let i = if k < 0 { n as i64 + k } else { k };
                if i < 0 || i >= n as i64 {
                    ch.err(
                        f,
                        codes::OUT_OF_BOUNDS,
                        a[1].as_ref().map_or(Span::default(), |x| x.1),
                        format!("axis {k} is outside a tensor of rank {n}"),
                        "no such axis",
                    );
                    Value::Int(Dim::Any)
                } else {
                    Value::Int(d[i as usize].clone())
                }
            }
            None => Value::Int(Dim::Any),
        },
    }
}

/// `concat(xs, axis)`: the tensors of the list `xs` joined along `axis`, their other axes equal.
fn concat(ch: &mut Checker, f: &Frame, a: &[Option<(Value, Span)>]) -> Value {
    let Some((xs, sp)) = &a[0] else { return Value::Unknown };
    let items = match xs {
        Value::List(Some(items)) | Value::Tuple(items) => items.clone(),
        Value::List(None) | Value::Unknown => return Value::Tensor(Shape::Any(None), Elem::Float),
        other => {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`concat` takes a list of tensors, not {}", other.describe()),
                "not a list",
            );
            return Value::Unknown;
        }
    };
    let axis = a[1].as_ref().and_then(|(v, _)| v.as_int()).unwrap_or(0);
    let mut out: Option<Vec<Dim>> = None;
    for it in &items {
        let Some(Shape::Dims(d)) = it.shape() else { return Value::Tensor(Shape::Any(None), Elem::Float) };
        let k = if axis < 0 { d.len() as i64 + axis } else { axis };
        if k < 0 || k as usize >= d.len() {
            ch.err(
                f,
                codes::OUT_OF_BOUNDS,
                *sp,
                format!("axis {axis} is outside a tensor of rank {}", d.len()),
                "no such axis",
            );
            return Value::Unknown;
        }
        let k = k as usize;
        out = Some(match out {
            None => d,
            Some(acc) => {
                let same_rank = acc.len() == d.len();
                let others_match =
                    same_rank && acc.iter().zip(&d).enumerate().all(|(i, (x, y))| i == k || x.compatible(y));
                if !others_match {
                    ch.err(
                        f,
                        codes::SHAPE_MISMATCH,
                        *sp,
                        format!(
                            "`concat` along axis {axis}: shapes {} and {} differ elsewhere",
                            Shape::Dims(acc),
                            Shape::Dims(d)
                        ),
                        "shapes differ",
                    );
                    return Value::Unknown;
                }
                let mut acc = acc;
                acc[k] = Dim::apply(DimOp::Add, &acc[k], &d[k]);
                acc
            }
        });
    }
    out.map_or(Value::Unknown, |d| Value::tensor(Shape::Dims(d)))
}
