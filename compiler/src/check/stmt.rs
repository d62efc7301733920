//! Statements: what every body shares (`let`, `var`, `repeat`, `for`, `if`, assignments) and the
//! diagnostics for statements that stand in the wrong kind of declaration. A `for` over a list
//! is unrolled, as the compiler will unroll it, so each element is checked with its own value.

use super::body::{check_count, check_modifiers, declare, misplaced};
use super::eval::{Checker, Ctx, Frame, Local, LocalKind, Scope};
use super::shape::Dim;
use super::value::Value;
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::*;

/// Checks the statements every body shares.
pub fn stmt(ch: &mut Checker, f: &mut Frame, s: &Stmt) {
    match &s.kind {
        StmtKind::Let { pattern, value, modifiers } => {
            let v = ch.eval(f, value);
            check_modifiers(ch, f, modifiers, false);
            bind_pattern(ch, f, pattern, v);
        }
        StmtKind::Var { name, value } => {
            let v = ch.eval(f, value);
            declare(ch, f, name, v, LocalKind::Var);
        }
        StmtKind::Repeat { count, counter, body } => {
            let n = ch.eval(f, count);
            // Zero repetitions are fine (an `mlp` of depth 2 has no hidden-to-hidden layer).
            if !matches!(n, Value::Int(Dim::Known(0))) {
                check_count(ch, f, &n, count.span, "a repeat count");
            }
            f.scopes.push(Scope::default());
            if let Some(c) = counter {
                declare(ch, f, c, Value::Int(Dim::Any), LocalKind::Loop);
            }
            block_stmts(ch, f, body);
            f.scopes.pop();
        }
        StmtKind::For { var, items, body } => {
            let list = ch.eval(f, items);
            let elems = match list {
                Value::List(Some(v)) | Value::Tuple(v) => v,
                Value::List(None) | Value::Unknown => vec![Value::Unknown],
                other => {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        items.span,
                        format!("`for` needs a list, found {}", other.describe()),
                        "not a list",
                    );
                    vec![Value::Unknown]
                }
            };
            // Unrolled, as the compiler will: each element is checked with its own value.
            for e in elems {
                f.scopes.push(Scope::default());
                declare(ch, f, var, e, LocalKind::Loop);
                block_stmts(ch, f, body);
                f.scopes.pop();
            }
        }
        StmtKind::If(e) => if_stmt(ch, f, e),
        StmtKind::Assign { place, op, value, clauses } => {
            if f.ctx == Ctx::Experiment {
                unreachable!("experiment statements are checked by the experiment checker");
            }
            if let Some(c) = clauses.first() {
                let span = match c {
                    Clause::With { span, .. } | Clause::Adapted { span, .. } => *span,
                };
                misplaced(ch, f, span, "this clause", "experiments");
            }
            let v = ch.eval(f, value);
            assign(ch, f, place, *op, v, value.span, s.span);
        }
        StmtKind::Return { .. } => {
            misplaced(ch, f, s.span, "`return`", "the body of a declaration, as its last statement")
        }
        StmtKind::State { .. } => misplaced(ch, f, s.span, "`state`", "rules"),
        StmtKind::Param { .. } => misplaced(ch, f, s.span, "`param`", "models and adapters"),
        StmtKind::Frozen { .. } => misplaced(ch, f, s.span, "`frozen`", "models and adapters"),
        StmtKind::Weight { .. } => misplaced(ch, f, s.span, "`weight`", "adapters"),
        StmtKind::Forward { .. } => misplaced(ch, f, s.span, "`forward`", "models"),
        StmtKind::Data { .. } => misplaced(ch, f, s.span, "`data`", "experiments"),
        StmtKind::Optimize { .. } => misplaced(ch, f, s.span, "`optimize`", "experiments"),
        StmtKind::Init { .. } => misplaced(ch, f, s.span, "`init ... with`", "experiments"),
        StmtKind::Log { .. } => misplaced(ch, f, s.span, "`log every`", "experiments"),
        StmtKind::Checkpoint { .. } => misplaced(ch, f, s.span, "`checkpoint every`", "experiments"),
        StmtKind::Sweep { .. } => misplaced(ch, f, s.span, "`sweep`", "experiments"),
    }
}

/// An `if` whose value is not used: its `else` is optional.
pub fn if_stmt(ch: &mut Checker, f: &mut Frame, e: &Expr) {
    let ExprKind::If { cond, then, otherwise } = &e.kind else {
        let _ = ch.eval(f, e);
        return;
    };
    let c = ch.eval(f, cond);
    ch.expect_bool(f, &c, cond.span);
    // A condition known here checks only the branch taken, as only it is lowered (adam's
    // `if amsgrad { v_max = max(v_max, v) }` with a scalar v_max when amsgrad is off).
    let (then_taken, else_taken) = match c {
        Value::Bool(Some(b)) => (b, !b),
        _ => (true, true),
    };
    if then_taken {
        f.scopes.push(Scope::default());
        block_stmts(ch, f, then);
        f.scopes.pop();
    }
    if !else_taken {
        return;
    }
    match otherwise.as_deref() {
        Some(Expr { kind: ExprKind::Block(b), .. }) => {
            f.scopes.push(Scope::default());
            block_stmts(ch, f, b);
            f.scopes.pop();
        }
        Some(nested) => if_stmt(ch, f, nested),
        None => {}
    }
}

pub fn block_stmts(ch: &mut Checker, f: &mut Frame, b: &Block) {
    for s in &b.stmts {
        stmt(ch, f, s);
    }
    if let Some(v) = &b.value {
        let _ = ch.eval(f, v);
    }
}

pub fn bind_pattern(ch: &mut Checker, f: &mut Frame, p: &Pattern, v: Value) {
    match p {
        Pattern::Name(n) => declare(ch, f, n, v, LocalKind::Let),
        Pattern::Tuple(items, span) => {
            let parts = match v {
                Value::Tuple(t) | Value::List(Some(t)) => Some(t),
                Value::Unknown | Value::List(None) => None,
                other => {
                    ch.err(
                        f,
                        codes::TUPLE_ARITY,
                        *span,
                        format!("cannot destructure {}", other.describe()),
                        "not a tuple",
                    );
                    None
                }
            };
            match parts {
                Some(t) if t.len() != items.len() => {
                    ch.report(
                        Diagnostic::error(
                            codes::TUPLE_ARITY,
                            &f.source,
                            *span,
                            format!("{} names for a tuple of {}", items.len(), t.len()),
                            format!("the value has {} parts", t.len()),
                        )
                        .with_help(format!("write {} names", t.len())),
                    );
                    for it in items {
                        bind_pattern(ch, f, it, Value::Unknown);
                    }
                }
                Some(t) => {
                    for (it, v) in items.iter().zip(t) {
                        bind_pattern(ch, f, it, v);
                    }
                }
                None => {
                    for it in items {
                        bind_pattern(ch, f, it, Value::Unknown);
                    }
                }
            }
        }
    }
}

pub fn assign(ch: &mut Checker, f: &mut Frame, place: &Place, op: AssignOp, v: Value, vspan: Span, span: Span) {
    let name = &place.parts[0];
    let Some(local) = f.get(&name.name).cloned() else {
        let d = Diagnostic::error(
            codes::UNKNOWN_NAME,
            &f.source,
            name.span,
            format!("unknown name `{}`", name.name),
            "assigned before it is declared",
        )
        .with_help_opt(
            crate::diag::did_you_mean(&name.name, f.scopes.iter().flat_map(|s| s.keys().map(String::as_str))).or_else(
                || Some(format!("declare it first: `var {0} = ...` (or `state {0} = ...` in a rule)", name.name)),
            ),
        );
        ch.report(d);
        return;
    };
    if place.parts.len() > 1 || !matches!(local.kind, LocalKind::Var | LocalKind::State) {
        let d = Diagnostic::error(
            codes::NOT_ASSIGNABLE,
            &f.source,
            place.span,
            format!("cannot assign to `{place}`: it is {}", local.kind.describe()),
            "not assignable",
        )
        .with_label(local.span, "declared here")
        .with_help_opt(
            (local.kind == LocalKind::Let).then(|| format!("declare it with `var {} = ...` to update it", name.name)),
        );
        ch.report(d);
        return;
    }
    let new = if op == AssignOp::Set {
        v
    } else {
        let bop = match op {
            AssignOp::Add => BinOp::Add,
            AssignOp::Sub => BinOp::Sub,
            AssignOp::Mul => BinOp::Mul,
            _ => BinOp::Div,
        };
        let lhs = Expr { kind: ExprKind::Name(name.name.clone()), span: name.span };
        let _ = lhs;
        let tmp_name = "\u{0}rhs";
        f.scopes
            .push(Scope::from_iter([(tmp_name.to_string(), Local { value: v, kind: LocalKind::Let, span: vspan })]));
        let e = Expr {
            kind: ExprKind::Binary {
                op: bop,
                op_span: span,
                lhs: Box::new(Expr { kind: ExprKind::Name(name.name.clone()), span: name.span }),
                rhs: Box::new(Expr { kind: ExprKind::Name(tmp_name.into()), span: vspan }),
            },
            span,
        };
        let r = ch.eval(f, &e);
        f.scopes.pop();
        r
    };
    if local.kind == LocalKind::State {
        if let (Some(old), Some(now)) = (local.value.shape(), new.shape()) {
            let grows = match old.broadcast(&now) {
                Ok(b) => b != old && old.rank().is_some() && now.rank().is_some(),
                Err(_) => true,
            };
            if grows {
                let d = Diagnostic::error(
                    codes::SHAPE_MISMATCH,
                    &f.source,
                    vspan,
                    format!("state `{}` has shape {old} but is assigned shape {now}", name.name),
                    format!("shape {now}"),
                )
                .with_label(local.span, format!("declared with shape {old}"))
                .with_help("a state keeps the shape it was initialized with");
                ch.report(d);
                return;
            }
        }
    }
    if let Some(l) = f.get_mut(&name.name) {
        if l.kind == LocalKind::Var {
            l.value = new.forget();
        }
    }
}
