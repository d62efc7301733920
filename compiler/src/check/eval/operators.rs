//! Operators: unary `-` and `not`, the logical, matrix-product and arithmetic binary operators,
//! and the broadcasting of two operands' shapes. Scalars known here are folded (sizes stay sizes
//! under `+`, `-`, `*` and `**`), so that hyperparameters and shapes computed from them stay
//! known; a known division by zero is reported.

use super::{Checker, Frame};
use crate::check::shape::{Dim, DimOp, Shape, ShapeError};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::{BinOp, Span, UnaryOp};

impl Checker<'_> {
    /// The value of a unary operator applied to `v`.
    pub(super) fn unary(&mut self, f: &Frame, op: UnaryOp, v: Value, span: Span, operand: Span) -> Value {
        match (op, &v) {
            (_, Value::Unknown) => Value::Unknown,
            (UnaryOp::Neg, Value::Int(d)) => Value::Int(Dim::apply(DimOp::Sub, &Dim::Known(0), d)),
            (UnaryOp::Neg, Value::Float(x)) => Value::Float(x.map(|x| -x)),
            (UnaryOp::Neg, Value::Schedule(_)) => v,
            (UnaryOp::Neg, Value::Tensor(s, Elem::Float | Elem::Int))
            | (UnaryOp::Neg, Value::Param { shape: s, .. }) => Value::tensor(s.clone()),
            (UnaryOp::Not, Value::Bool(b)) => Value::Bool(b.map(|b| !b)),
            (UnaryOp::Not, Value::Tensor(s, Elem::Bool)) => Value::Tensor(s.clone(), Elem::Bool),
            _ => {
                let _ = span;
                self.bad_operand(f, operand, if op == UnaryOp::Neg { "`-`" } else { "`not`" }, &v);
                Value::Unknown
            }
        }
    }

    /// The value of a binary operator: logical, matrix product, or arithmetic and comparisons.
    pub(super) fn binary(
        &mut self,
        f: &Frame,
        op: BinOp,
        op_span: Span,
        (a, sa): (Value, Span),
        (b, sb): (Value, Span),
    ) -> Value {
        if matches!(a, Value::Unknown) && matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        match op {
            BinOp::And | BinOp::Or => {
                for (v, s) in [(&a, sa), (&b, sb)] {
                    if !matches!(v, Value::Bool(_) | Value::Tensor(_, Elem::Bool) | Value::Unknown) {
                        let d = Diagnostic::error(
                            codes::BAD_OPERAND,
                            &f.source,
                            s,
                            format!("`{}` takes bools, not {}", op.as_str(), v.describe()),
                            v.describe(),
                        )
                        .with_help("compare first, e.g. `x > 0`");
                        self.report(d);
                        return Value::Unknown;
                    }
                }
                match (&a, &b) {
                    (Value::Bool(x), Value::Bool(y)) => Value::Bool(match (x, y, op) {
                        (Some(x), Some(y), BinOp::And) => Some(*x && *y),
                        (Some(x), Some(y), _) => Some(*x || *y),
                        _ => None,
                    }),
                    _ => self
                        .broadcast(f, op_span, &a, sa, &b, sb)
                        .map_or(Value::Unknown, |s| Value::Tensor(s, Elem::Bool)),
                }
            }
            BinOp::MatMul => {
                for (v, s) in [(&a, sa), (&b, sb)] {
                    if !v.is_numeric() {
                        self.bad_operand(f, s, "`@`", v);
                        return Value::Unknown;
                    }
                }
                let (x, y) = (a.shape().unwrap_or(Shape::Any(None)), b.shape().unwrap_or(Shape::Any(None)));
                match x.matmul(&y) {
                    Ok(s) => Value::tensor(s),
                    Err(e) => {
                        let msg = match &e {
                            ShapeError::Contract { left, right } => {
                                format!("matrix product of {x} and {y}: inner dimensions {left} and {right} differ")
                            }
                            ShapeError::Rank { .. } => "`@` needs vectors or matrices, not scalars".to_string(),
                            ShapeError::Broadcast { .. } => {
                                format!("matrix product of {x} and {y}: batch dimensions differ")
                            }
                        };
                        let code = if matches!(e, ShapeError::Rank { .. }) {
                            codes::RANK_MISMATCH
                        } else {
                            codes::MATMUL_SHAPE
                        };
                        let help = match (&e, &x, &y) {
                            (ShapeError::Contract { .. }, Shape::Dims(l), Shape::Dims(r))
                                if l.len() == 2 && r.len() == 2 && l[1].compatible(&r[1]) =>
                            {
                                Some("the right operand looks transposed: try `^T` on it".to_string())
                            }
                            (ShapeError::Rank { .. }, _, _) => Some("scale with `*` instead".to_string()),
                            _ => None,
                        };
                        let d = Diagnostic::error(code, &f.source, sa, msg, format!("left: {x}"))
                            .with_label(sb, format!("right: {y}"))
                            .with_help_opt(help);
                        self.report(d);
                        Value::Unknown
                    }
                }
            }
            _ => self.arith(f, op, op_span, (a, sa), (b, sb)),
        }
    }

    /// Arithmetic and comparisons: operand kinds, schedules, division by zero, folding, broadcasting.
    fn arith(&mut self, f: &Frame, op: BinOp, op_span: Span, (a, sa): (Value, Span), (b, sb): (Value, Span)) -> Value {
        let comparison = matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
        // Strings compare for equality only.
        if let (Value::Str(x), Value::Str(y)) = (&a, &b) {
            if matches!(op, BinOp::Eq | BinOp::Ne) {
                return Value::Bool(match (x, y) {
                    (Some(x), Some(y)) => Some((x == y) == (op == BinOp::Eq)),
                    _ => None,
                });
            }
        }
        for (v, s) in [(&a, sa), (&b, sb)] {
            let is_bool = matches!(v, Value::Bool(_) | Value::Tensor(_, Elem::Bool));
            let ok = v.is_numeric() && (!is_bool || matches!(op, BinOp::Eq | BinOp::Ne));
            if !ok {
                self.bad_operand(f, s, &format!("`{}`", op.as_str()), v);
                return Value::Unknown;
            }
        }
        if matches!(a, Value::Unknown) || matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        // Arithmetic on schedules builds a schedule (`0.5 * cosine(...)`).
        if !comparison && (matches!(a, Value::Schedule(_)) || matches!(b, Value::Schedule(_))) {
            let s = if let Value::Schedule(s) = &a {
                s.clone()
            } else if let Value::Schedule(s) = &b {
                s.clone()
            } else {
                unreachable!()
            };
            if a.shape().is_some_and(|x| x.is_scalar()) && b.shape().is_some_and(|x| x.is_scalar()) {
                return Value::Schedule(s);
            }
        }
        if op == BinOp::Div
            && (b.as_f64() == Some(0.0))
            && (a.as_f64().is_some() || matches!(a, Value::Int(_) | Value::Float(_)))
        {
            let d = Diagnostic::error(codes::DIVISION_BY_ZERO, &f.source, sb, "division by zero", "this is zero");
            self.report(d);
            return Value::Unknown;
        }
        // Scalars fold.
        match (&a, &b) {
            (Value::Int(x), Value::Int(y)) if !comparison => {
                return match op {
                    BinOp::Add => Value::Int(Dim::apply(DimOp::Add, x, y)),
                    BinOp::Sub => Value::Int(Dim::apply(DimOp::Sub, x, y)),
                    BinOp::Mul => Value::Int(Dim::apply(DimOp::Mul, x, y)),
                    BinOp::Pow => match (x, y) {
                        (Dim::Known(x), Dim::Known(y)) if *y >= 0 && *y < 64 => x
                            .checked_pow(*y as u32)
                            .map_or(Value::Float(Some((*x as f64).powf(*y as f64))), |v| Value::Int(Dim::Known(v))),
                        (Dim::Known(x), Dim::Known(y)) => Value::Float(Some((*x as f64).powf(*y as f64))),
                        _ => Value::Float(None),
                    },
                    // `/` is true division, as in Python; exact quotients of sizes stay sizes.
                    _ => match (x, y) {
                        (Dim::Known(p), Dim::Known(q)) => Value::Float(Some(*p as f64 / *q as f64)),
                        _ => Value::Float(None),
                    },
                };
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let (x, y) = (a.as_f64(), b.as_f64());
                return match (x, y) {
                    (Some(x), Some(y)) => fold(op, x, y),
                    _ if comparison => Value::Bool(None),
                    _ => Value::Float(None),
                };
            }
            (Value::Bool(_), Value::Bool(_)) if matches!(op, BinOp::Eq | BinOp::Ne) => return Value::Bool(None),
            _ => {}
        }
        match self.broadcast(f, op_span, &a, sa, &b, sb) {
            Some(s) if comparison => Value::Tensor(s, Elem::Bool),
            Some(s) => {
                let int = matches!(
                    (&a, &b),
                    (Value::Tensor(_, Elem::Int) | Value::Int(_), Value::Tensor(_, Elem::Int) | Value::Int(_))
                ) && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul);
                if int {
                    Value::Tensor(s, Elem::Int)
                } else {
                    Value::tensor(s)
                }
            }
            None => Value::Unknown,
        }
    }

    /// Broadcasts two numeric operands, reporting a mismatch with both labelled.
    pub fn broadcast(&mut self, f: &Frame, op_span: Span, a: &Value, sa: Span, b: &Value, sb: Span) -> Option<Shape> {
        let (x, y) = (a.shape()?, b.shape()?);
        match x.broadcast(&y) {
            Ok(s) => Some(s),
            Err(_) => {
                let d = Diagnostic::error(
                    codes::BROADCAST_SHAPE,
                    &f.source,
                    sa,
                    format!("shapes {x} and {y} cannot be broadcast together"),
                    format!("{x}"),
                )
                .with_label(sb, format!("{y}"));
                let _ = op_span;
                self.report(d.with_help("sizes must match or be 1, aligned from the last dimension"));
                None
            }
        }
    }
}

/// Folds a binary operator on two known numbers.
fn fold(op: BinOp, x: f64, y: f64) -> Value {
    match op {
        BinOp::Add => Value::Float(Some(x + y)),
        BinOp::Sub => Value::Float(Some(x - y)),
        BinOp::Mul => Value::Float(Some(x * y)),
        BinOp::Div => Value::Float(Some(x / y)),
        BinOp::Pow => Value::Float(Some(x.powf(y))),
        BinOp::Eq => Value::Bool(Some(x == y)),
        BinOp::Ne => Value::Bool(Some(x != y)),
        BinOp::Lt => Value::Bool(Some(x < y)),
        BinOp::Le => Value::Bool(Some(x <= y)),
        BinOp::Gt => Value::Bool(Some(x > y)),
        BinOp::Ge => Value::Bool(Some(x >= y)),
        BinOp::And | BinOp::Or | BinOp::MatMul => Value::Unknown,
    }
}
