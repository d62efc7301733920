//! Indexing and fields: `x[i, a:b, None]` on tensors (the result's shape from the indices,
//! slices and new axes, with known indices checked against known sizes) and on lists and tuples
//! (an element, when the index is known), and `m.name` on models and adapted parameters.

use super::{Checker, Frame};
use crate::check::shape::{Dim, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Ident, IndexItem, Span, UnaryOp};

impl Checker<'_> {
    /// The value of `base[items]`.
    pub(super) fn index(
        &mut self,
        f: &mut Frame,
        base: Value,
        base_span: Span,
        items: &[IndexItem],
        span: Span,
    ) -> Value {
        let vals: Vec<Option<Value>> = items
            .iter()
            .map(|it| match it {
                IndexItem::At(e) => Some(self.eval(f, e)),
                IndexItem::Slice { lo, hi, step, .. } => {
                    for e in [lo, hi, step].into_iter().flatten() {
                        let v = self.eval(f, e);
                        if !matches!(v, Value::Int(_) | Value::Unknown) {
                            self.err(f, codes::TYPE_MISMATCH, e.span, "slice bounds must be ints", v.describe());
                        }
                    }
                    None
                }
                IndexItem::NewAxis(_) => None,
            })
            .collect();
        match &base {
            Value::Unknown => Value::Unknown,
            Value::List(_) | Value::Tuple(_) if items.len() == 1 => {
                let known = match &base {
                    Value::Tuple(t) => Some(t.clone()),
                    Value::List(l) => l.clone(),
                    _ => None,
                };
                match (&vals[0], known) {
                    (Some(Value::Int(Dim::Known(i))), Some(list)) => {
                        let n = list.len() as i64;
                        let j = if *i < 0 { n + i } else { *i };
                        if j < 0 || j >= n {
                            self.err(
                                f,
                                codes::OUT_OF_BOUNDS,
                                span,
                                format!("index {i} is outside a list of {n}"),
                                "out of bounds",
                            );
                            Value::Unknown
                        } else {
                            list[j as usize].clone()
                        }
                    }
                    _ => Value::Unknown,
                }
            }
            v if v.is_numeric() => {
                let shape = v.shape().unwrap_or(Shape::Any(None));
                let Shape::Dims(dims) = shape else {
                    return Value::Tensor(Shape::Any(None), Elem::Float);
                };
                let consumed = items.iter().filter(|i| !matches!(i, IndexItem::NewAxis(_))).count();
                if consumed > dims.len() {
                    let d = Diagnostic::error(
                        codes::OUT_OF_BOUNDS,
                        &f.source,
                        span,
                        format!("{consumed} indices for a tensor of rank {}", dims.len()),
                        "too many indices",
                    )
                    .with_label(base_span, format!("shape {}", Shape::Dims(dims.clone())));
                    self.report(d);
                    return Value::Unknown;
                }
                let mut out = Vec::new();
                let mut k = 0;
                for (it, val) in items.iter().zip(&vals) {
                    match it {
                        IndexItem::NewAxis(_) => out.push(Dim::Known(1)),
                        IndexItem::At(e) => {
                            if let (Some(Value::Int(Dim::Known(i))), Dim::Known(n)) = (val, &dims[k]) {
                                if *i >= *n || *i < -*n {
                                    self.err(
                                        f,
                                        codes::OUT_OF_BOUNDS,
                                        e.span,
                                        format!("index {i} is outside a dimension of size {n}"),
                                        "out of bounds",
                                    );
                                }
                            }
                            k += 1;
                        }
                        IndexItem::Slice { lo, hi, step, .. } => {
                            out.push(slice_len(&dims[k], lo.as_ref(), hi.as_ref(), step.as_ref()));
                            k += 1;
                        }
                    }
                }
                out.extend(dims[k..].iter().cloned());
                let elem = if let Value::Tensor(_, e) = v { *e } else { Elem::Float };
                if out.is_empty() && elem == Elem::Float {
                    Value::Float(None)
                } else {
                    Value::Tensor(Shape::Dims(out), elem)
                }
            }
            other => {
                self.bad_operand(f, base_span, "indexing", other);
                Value::Unknown
            }
        }
    }

    /// The value of `base.name`: a model's member or an adapter's.
    pub(super) fn field(&mut self, f: &Frame, base: Value, name: &Ident) -> Value {
        use crate::check::value::Member;
        match &base {
            Value::Unknown => Value::Unknown,
            Value::Model(m) => match m.member(&name.name) {
                Some(Member::Param(p)) => {
                    Value::Param { path: name.name.clone(), shape: p.shape.clone(), adapter_members: None }
                }
                Some(Member::Model(sub)) => Value::Model(sub.clone()),
                Some(Member::Adapted { shape, members, .. }) => Value::Param {
                    path: name.name.clone(),
                    shape: shape.clone(),
                    adapter_members: Some(members.clone()),
                },
                None => {
                    let names: Vec<&str> = m.members.iter().map(|(n, _)| n.as_str()).collect();
                    let help = did_you_mean(&name.name, names.iter().copied())
                        .or_else(|| Some(format!("`{}` has: {}", m.name, names.join(", "))));
                    let d = Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        &f.source,
                        name.span,
                        format!("model `{}` has no member `{}`", m.name, name.name),
                        "no such member",
                    )
                    .with_help_opt(help);
                    self.report(d);
                    Value::Unknown
                }
            },
            Value::Param { path, adapter_members: Some(ms), .. } => match ms.get(&name.name) {
                Some(p) => Value::Param {
                    path: format!("{path}.{}", name.name),
                    shape: p.shape.clone(),
                    adapter_members: None,
                },
                None => {
                    let help = did_you_mean(&name.name, ms.keys().map(String::as_str));
                    let d = Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        &f.source,
                        name.span,
                        format!("the adapter on `{path}` has no member `{}`", name.name),
                        "no such member",
                    )
                    .with_help_opt(help);
                    self.report(d);
                    Value::Unknown
                }
            },
            other => {
                let d = Diagnostic::error(
                    codes::UNKNOWN_FIELD,
                    &f.source,
                    name.span,
                    format!("{} has no fields", other.describe()),
                    format!("`.{}` on {}", name.name, other.describe()),
                );
                self.report(d);
                Value::Unknown
            }
        }
    }
}

/// The length of a slice of `dim` when its bounds are literals (and the dimension or the bounds
/// known); any size otherwise.
fn slice_len(dim: &Dim, lo: Option<&Expr>, hi: Option<&Expr>, step: Option<&Expr>) -> Dim {
    let lit = |e: Option<&Expr>| match e.map(|e| &e.kind) {
        None => Some(None),
        Some(ExprKind::Int(n)) => Some(Some(*n)),
        Some(ExprKind::Unary { op: UnaryOp::Neg, operand }) => match operand.kind {
            ExprKind::Int(n) => Some(Some(-n)),
            _ => None,
        },
        _ => None,
    };
    let (Some(lo), Some(hi), Some(step)) = (lit(lo), lit(hi), lit(step)) else {
        return Dim::Any;
    };
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Dim::Any;
    }
    match (dim, lo, hi) {
        (_, None, None) if step == 1 => dim.clone(),
        (Dim::Known(n), lo, hi) => {
            let clamp = |v: i64| if v < 0 { (n + v).max(0) } else { v.min(*n) };
            let (a, b) = (clamp(lo.unwrap_or(0)), clamp(hi.unwrap_or(*n)));
            Dim::Known(if b > a { (b - a + step - 1) / step } else { 0 })
        }
        (_, Some(0) | None, Some(h)) if h >= 0 && step == 1 => Dim::Known(h),
        _ => Dim::Any,
    }
}
