//! Rule combinators: `partition`, `mask` and `route` choose by a parameter's metadata (rank, path)
//! which rule updates it (for `mask`, whether `inner` does), and `rebase` carries a rule's states
//! through a change of basis.
//! Each returns a rule (an applied builtin) whose rule arguments are coerced like a declaration's.

use super::{expect_rank, numeric, sig, Sig};
use crate::check::args::coerce;
use crate::check::eval::{Checker, Frame};
use crate::check::value::{Applied, Bound, Callee, Ty, Value};
use crate::diag::codes;
use crate::syntax::ast::Span;
use std::rc::Rc;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("rebase", &["inner", "t", "at", "axis"], 3),
    sig("partition", &["matrices", "vectors"], 2),
    sig("mask", &["inner", "paths"], 2),
    sig("route", &["paths", "then", "otherwise"], 3),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], _span: Span) -> Value {
    let name = s.name;
    match name {
        "rebase" => rebase(ch, f, a),
        "partition" | "mask" | "route" => {
            for ((p, v), sp) in s.params.iter().zip(a).filter_map(|(p, v)| v.as_ref().map(|(v, sp)| ((p, v), sp))) {
                if *p == "paths" {
                    let strings =
                        matches!(v, Value::List(Some(items)) if items.iter().all(|i| matches!(i, Value::Str(_))));
                    if !strings && !matches!(v, Value::Unknown | Value::List(None)) {
                        ch.err(
                            f,
                            codes::TYPE_MISMATCH,
                            *sp,
                            "`paths` is a list of parameter paths like `[\"*.b\"]`",
                            "expected strings",
                        );
                    }
                    continue;
                }
                if !matches!(v, Value::Rule(_) | Value::Unknown | Value::Callable(_)) {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        *sp,
                        format!("`{name}` routes to rules, found {}", v.describe()),
                        "expected a rule",
                    );
                }
            }
            let mut args = Bound::new();
            for (p, v) in s.params.iter().zip(a) {
                if let Some((v, sp)) = v.as_ref().filter(|_| *p != "paths") {
                    let v = coerce(ch, f, Ty::Rule, v.clone(), *sp).unwrap_or(Value::Unknown);
                    args.insert(p.to_string(), v);
                }
            }
            Value::Rule(Rc::new(Applied { callee: Callee::Builtin(name), args }))
        }
        _ => Value::Unknown,
    }
}

/// `rebase(inner, t, at, axis)`: a rule (`inner` with its `moves like` states carried by the
/// square basis change `t` at the steps where `at` holds); `t` a matrix, `at` a condition.
fn rebase(ch: &mut Checker, f: &mut Frame, a: &[Option<(Value, Span)>]) -> Value {
    if let Some((v, sp)) = &a[0] {
        if !matches!(v, Value::Rule(_) | Value::Unknown | Value::Callable(_)) {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`rebase` moves a rule, found {}", v.describe()),
                "expected a rule",
            );
        }
    }
    if numeric(ch, f, "rebase", &a[1]).is_some() {
        expect_rank(ch, f, &a[1], 2, "rebase");
    }
    let mut args = Bound::new();
    if let Some((v, sp)) = &a[0] {
        let v = coerce(ch, f, Ty::Rule, v.clone(), *sp).unwrap_or(Value::Unknown);
        args.insert("inner".to_string(), v);
    }
    Value::Rule(Rc::new(Applied { callee: Callee::Builtin("rebase"), args }))
}
