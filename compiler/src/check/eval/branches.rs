//! Blocks and conditionals: a block used as a value, `if` expressions (only the branch taken when
//! the condition is known here, both joined otherwise) and the check that a condition is a
//! single bool.

use super::{Checker, Frame, Scope};
use crate::check::shape::{Dim, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::{Block, Expr, Span};

impl Checker<'_> {
    /// Evaluates a block used as a value (an `if` branch): statements, then its value.
    pub fn block_value(&mut self, f: &mut Frame, b: &Block) -> Value {
        f.scopes.push(Scope::default());
        for s in &b.stmts {
            crate::check::stmt::stmt(self, f, s);
        }
        let v = match &b.value {
            Some(e) => self.eval(f, e),
            None => Value::Unknown,
        };
        f.scopes.pop();
        v
    }

    /// An `if` used as a value: its condition must be a bool and it needs an `else`.
    pub(super) fn if_expr(
        &mut self,
        f: &mut Frame,
        cond: &Expr,
        then: &Block,
        otherwise: Option<&Expr>,
        span: Span,
    ) -> Value {
        let c = self.eval(f, cond);
        self.expect_bool(f, &c, cond.span);
        if let (Value::Bool(Some(taken)), Some(o)) = (&c, otherwise) {
            // A condition known here (a hyperparameter, a shape of this specialization): only the
            // branch taken is checked, as only it is lowered (galore's `if right { g @ p^T } else
            // { p^T @ g }` has one branch that fits P's shape); the declaration's own check, with
            // the condition unknown, saw both.
            return if *taken { self.block_value(f, then) } else { self.eval(f, o) };
        }
        let t = self.block_value(f, then);
        let Some(o) = otherwise else {
            let d = Diagnostic::error(
                codes::BRANCH_MISMATCH,
                &f.source,
                span,
                "an `if` used as a value needs an `else`",
                "no `else` branch",
            )
            .with_help("add `else { ... }` with the value when the condition is false");
            self.report(d);
            return Value::Unknown;
        };
        let other = self.eval(f, o);
        match c {
            Value::Bool(Some(true)) => t,
            Value::Bool(Some(false)) => other,
            _ => self.join(f, t, other, then.span, o.span, span),
        }
    }

    /// The value of either branch: same kind required, shapes may differ.
    fn join(&mut self, f: &Frame, a: Value, b: Value, sa: Span, sb: Span, _span: Span) -> Value {
        if a == b {
            return a;
        }
        if matches!(a, Value::Unknown) || matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        if a.is_numeric() && b.is_numeric() {
            return match (&a, &b) {
                (Value::Int(_), Value::Int(_)) => Value::Int(Dim::Any),
                (Value::Float(_) | Value::Int(_), Value::Float(_) | Value::Int(_)) => Value::Float(None),
                (Value::Bool(_), Value::Bool(_)) => Value::Bool(None),
                _ => match (a.shape(), b.shape()) {
                    (Some(x), Some(y)) if x == y => Value::tensor(x),
                    _ => Value::Tensor(Shape::Any(None), Elem::Float),
                },
            };
        }
        if std::mem::discriminant(&a) == std::mem::discriminant(&b) {
            return a;
        }
        let d = Diagnostic::error(
            codes::BRANCH_MISMATCH,
            &f.source,
            sa,
            "the branches of this `if` have different kinds of value",
            a.describe(),
        )
        .with_label(sb, b.describe());
        self.report(d);
        Value::Unknown
    }

    /// Reports a condition that is not a scalar bool.
    pub fn expect_bool(&mut self, f: &Frame, v: &Value, span: Span) {
        match v {
            Value::Bool(_) | Value::Unknown => {}
            // Unknown rank may well be a scalar (`g[0, 0] > 0` on an input of unknown shape).
            Value::Tensor(s, Elem::Bool) if s.rank().is_none() => {}
            Value::Tensor(_, Elem::Bool) => {
                let d = Diagnostic::error(
                    codes::NOT_BOOL,
                    &f.source,
                    span,
                    "a condition must be a single bool, not a tensor of them",
                    v.describe(),
                )
                .with_help("choose elementwise with `where(cond, a, b)`, or reduce with `max(...)`");
                self.report(d);
            }
            _ => {
                let d = Diagnostic::error(codes::NOT_BOOL, &f.source, span, "a condition must be a bool", v.describe())
                    .with_help("compare it, e.g. `x > 0`");
                self.report(d);
            }
        }
    }
}
