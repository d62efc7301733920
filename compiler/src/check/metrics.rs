//! Metrics that read the training loss's gradient. A `log` entry may say `grad(p)`, the gradient
//! of the experiment's loss with respect to a model tensor `p` (a parameter, a frozen base, or an
//! adapted weight such as `student.w`, whose gradient is the one of its effective weight), and
//! `grad_norm`, the norm of the gradient over every trained tensor together. They are not
//! builtins: they only mean something where the loss is in scope, so both the checker and the
//! lowering rewrite them into synthetic bindings (`%grad0`, ...) that users cannot write, and
//! evaluate the rest of the metric as usual. A user's own `grad` or `grad_norm` (a `let` or a
//! declaration) takes precedence.

use super::eval::{Checker, Frame, Local, LocalKind};
use super::frame::Scope;
use super::value::Value;
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::{Arg, Block, Expr, ExprKind, IndexItem, LogEntry, Span};

/// The name of the per-tensor gradient in metrics.
pub(crate) const GRAD: &str = "grad";
/// The name of the total gradient norm in metrics.
pub(crate) const GRAD_NORM: &str = "grad_norm";

/// One use of the gradient in a metric.
#[derive(Clone, Debug)]
pub(crate) enum GradUse {
    /// `grad(...)` with its arguments as written (the checker requires one tensor).
    Of {
        /// The call's arguments.
        args: Vec<Arg>,
        /// The whole call.
        span: Span,
    },
    /// `grad_norm`.
    Norm {
        /// Where it is written.
        span: Span,
    },
}

/// The synthetic binding that stands for use `k`.
pub(crate) fn slot_name(k: usize) -> String {
    format!("%grad{k}")
}

/// A log entry's expression: its value, or the binding of its name (`loss` is the loss).
pub(crate) fn entry_expr(e: &LogEntry) -> Expr {
    match &e.value {
        Some(v) => v.clone(),
        None => Expr { kind: ExprKind::Name(e.name.name.clone()), span: e.name.span },
    }
}

/// Replaces every `grad(...)` call and `grad_norm` name that `shadowed` does not claim with a
/// synthetic name, appending the uses in order (use `k` becomes [`slot_name`]`(k)`).
pub(crate) fn rewrite(e: &Expr, shadowed: &dyn Fn(&str) -> bool, uses: &mut Vec<GradUse>) -> Expr {
    let mut go = |x: &Expr| rewrite(x, shadowed, uses);
    let kind = match &e.kind {
        ExprKind::Name(n) if n == GRAD_NORM && !shadowed(n) => {
            uses.push(GradUse::Norm { span: e.span });
            ExprKind::Name(slot_name(uses.len() - 1))
        }
        ExprKind::Call { callee, args }
            if matches!(&callee.kind, ExprKind::Name(n) if n == GRAD) && !shadowed(GRAD) =>
        {
            uses.push(GradUse::Of { args: args.clone(), span: e.span });
            ExprKind::Name(slot_name(uses.len() - 1))
        }
        ExprKind::Paren(x) => ExprKind::Paren(Box::new(go(x))),
        ExprKind::List(items) => ExprKind::List(items.iter().map(&mut go).collect()),
        ExprKind::Tuple(items) => ExprKind::Tuple(items.iter().map(&mut go).collect()),
        ExprKind::Unary { op, operand } => ExprKind::Unary { op: *op, operand: Box::new(go(operand)) },
        ExprKind::Binary { op, op_span, lhs, rhs } => {
            ExprKind::Binary { op: *op, op_span: *op_span, lhs: Box::new(go(lhs)), rhs: Box::new(go(rhs)) }
        }
        ExprKind::Transpose(x) => ExprKind::Transpose(Box::new(go(x))),
        ExprKind::Call { callee, args } => ExprKind::Call {
            callee: Box::new(go(callee)),
            args: args.iter().map(|a| Arg { name: a.name.clone(), value: go(&a.value), span: a.span }).collect(),
        },
        ExprKind::Index { base, items } => ExprKind::Index {
            base: Box::new(go(base)),
            items: items
                .iter()
                .map(|i| match i {
                    IndexItem::At(x) => IndexItem::At(go(x)),
                    IndexItem::Slice { lo, hi, step, span } => IndexItem::Slice {
                        lo: lo.as_ref().map(&mut go),
                        hi: hi.as_ref().map(&mut go),
                        step: step.as_ref().map(&mut go),
                        span: *span,
                    },
                    IndexItem::NewAxis(s) => IndexItem::NewAxis(*s),
                })
                .collect(),
        },
        ExprKind::Field { base, name } => ExprKind::Field { base: Box::new(go(base)), name: name.clone() },
        // Only a branch's value is rewritten: a metric computed with statements belongs in a `fn`.
        ExprKind::If { cond, then, otherwise } => ExprKind::If {
            cond: Box::new(go(cond)),
            then: block(then, &mut go),
            otherwise: otherwise.as_ref().map(|x| Box::new(go(x))),
        },
        ExprKind::Block(b) => ExprKind::Block(block(b, &mut go)),
        other => other.clone(),
    };
    Expr { kind, span: e.span }
}

fn block(b: &Block, go: &mut dyn FnMut(&Expr) -> Expr) -> Block {
    Block { stmts: b.stmts.clone(), value: b.value.as_ref().map(|v| Box::new(go(v))), span: b.span }
}

/// Checks one `log` entry and returns what it is (a scalar unless reported otherwise).
pub(super) fn check_entry(ch: &mut Checker, f: &mut Frame, e: &LogEntry, loss_set: bool) -> Value {
    if e.value.is_none() && e.name.name == "loss" && loss_set {
        return Value::Float(None);
    }
    let expr = entry_expr(e);
    let (prog, unit) = (ch.prog, f.unit);
    let mut uses = Vec::new();
    let rewritten = rewrite(&expr, &|n| f.get(n).is_some() || prog.lookup(unit, n).is_some(), &mut uses);
    if uses.is_empty() {
        return ch.eval(f, &expr);
    }
    let mut scope = Scope::default();
    for (k, u) in uses.iter().enumerate() {
        let (value, span) = match u {
            GradUse::Norm { span } => (Value::Float(None), *span),
            GradUse::Of { args, span } => (gradient(ch, f, args, *span), *span),
        };
        scope.insert(slot_name(k), Local { value, kind: LocalKind::Let, span });
    }
    f.scopes.push(scope);
    let v = ch.eval(f, &rewritten);
    f.scopes.pop();
    v
}

/// `grad(p)`: a tensor of `p`'s shape, when `p` is a model's tensor.
fn gradient(ch: &mut Checker, f: &mut Frame, args: &[Arg], span: Span) -> Value {
    let [arg] = args else {
        let (code, label) = if args.is_empty() {
            (codes::MISSING_ARG, "no tensor")
        } else {
            (codes::TOO_MANY_ARGS, "several arguments")
        };
        ch.report(
            Diagnostic::error(code, &f.source, span, "`grad` takes one tensor of a model", label)
                .with_help("the loss's gradient with respect to one tensor: `grad(model.w)`; all of them: `grad_norm`"),
        );
        return Value::Unknown;
    };
    if arg.name.is_some() {
        ch.err(f, codes::UNKNOWN_KEYWORD, arg.span, "`grad` takes its tensor by position", "a keyword");
    }
    match ch.eval(f, &arg.value) {
        Value::Param { shape, .. } => Value::tensor(shape),
        Value::Unknown => Value::Unknown,
        other => {
            ch.report(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    &f.source,
                    arg.value.span,
                    format!("`grad` takes a tensor of a model, such as `student.w`, not {}", other.describe()),
                    "not a model's tensor",
                )
                .with_help("`grad(p)` is the gradient of the experiment's loss with respect to the tensor `p`"),
            );
            Value::Unknown
        }
    }
}
