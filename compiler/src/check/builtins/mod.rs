//! Builtins: the primitives the language cannot define itself (elementwise math, reductions,
//! group reductions over every parameter a rule updates (`global_norm`, `global_sum`),
//! constructors, counter-based random numbers, shape queries, linear algebra, data loading) and
//! `partition`, `mask` and `route`, which need parameter metadata (rank, path). Each has a signature for arity and keyword
//! checks and a typing rule giving its result's shape. Everything else lives in `stdlib/*.opt`.
//!
//! The builtins come in families, one submodule each with its signatures and typing rule:
//! [`math`], [`construct`], [`layout`], [`linalg`], [`rules`], [`data`] and [`training`]. This
//! module is the one entry point: it finds a builtin by name ([`find`], [`NAMES`]), binds a
//! call's arguments to its signature and hands them to its family ([`call`]).

mod construct;
mod data;
mod layout;
mod linalg;
mod math;
mod rules;
mod training;

use super::eval::{ArgVal, Checker, Frame};
use super::shape::Shape;
use super::value::Value;
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::Span;

/// A builtin's parameters: names in order, and how many are required.
struct Sig {
    name: &'static str,
    params: &'static [&'static str],
    required: usize,
}

/// A [`Sig`]; a `const fn` so that the families' tables are constants.
const fn sig(name: &'static str, params: &'static [&'static str], required: usize) -> Sig {
    Sig { name, params, required }
}

/// A family's typing rule: the value of a call of one of its builtins, given the checker, the
/// calling frame, the builtin's signature, the arguments bound to its parameters (in order) and
/// the call's span.
type TypeCall = fn(&mut Checker, &mut Frame, &Sig, &[Option<(Value, Span)>], Span) -> Value;

/// A family of builtins: their signatures and the typing rule their calls share.
struct Family {
    sigs: &'static [Sig],
    type_call: TypeCall,
}

/// Every family, searched in this order by name.
static FAMILIES: &[Family] = &[
    Family { sigs: math::SIGS, type_call: math::type_call },
    Family { sigs: construct::SIGS, type_call: construct::type_call },
    Family { sigs: layout::SIGS, type_call: layout::type_call },
    Family { sigs: linalg::SIGS, type_call: linalg::type_call },
    Family { sigs: rules::SIGS, type_call: rules::type_call },
    Family { sigs: data::SIGS, type_call: data::type_call },
    Family { sigs: training::SIGS, type_call: training::type_call },
];

/// Every builtin name.
pub static NAMES: &[&str] = &[
    "abs",
    "sign",
    "sqrt",
    "exp",
    "log",
    "sin",
    "cos",
    "tanh",
    "erf",
    "floor",
    "ceil",
    "round",
    "max",
    "min",
    "where",
    "sum",
    "mean",
    "norm",
    "argmax",
    "global_norm",
    "global_sum",
    "zeros_like",
    "ones_like",
    "full_like",
    "fill",
    "eye",
    "randn",
    "rand",
    "arange",
    "rows",
    "cols",
    "ndim",
    "numel",
    "size",
    "shape",
    "reshape",
    "flatten",
    "concat",
    "outer",
    "diag",
    "trace",
    "triu",
    "tril",
    "kron",
    "svd",
    "left_singular",
    "randomized_svd",
    "rebase",
    "qr",
    "eigh",
    "solve",
    "cholesky",
    "partition",
    "mask",
    "route",
    "load",
    "onehot",
    "initial",
    "recorded",
    "detach",
    "grad",
    "layer_inputs",
    "grad_at",
];

/// The family and signature of the builtin of this name, if any.
fn lookup(name: &str) -> Option<(&'static Family, &'static Sig)> {
    FAMILIES.iter().find_map(|family| family.sigs.iter().find(|s| s.name == name).map(|s| (family, s)))
}

/// The builtin of this name, if any.
pub fn find(name: &str) -> Option<&'static str> {
    lookup(name).map(|(_, s)| s.name)
}

/// Calls a builtin.
pub fn call(ch: &mut Checker, f: &mut Frame, name: &'static str, args: &[ArgVal], span: Span) -> Value {
    let Some((family, s)) = lookup(name) else { return Value::Unknown };
    if name == "grad" && args.len() == 1 && args[0].name.is_none() {
        // The log entries' `grad(p)`, written where it has no loss to differentiate.
        ch.report(
            Diagnostic::error(
                codes::MISSING_ARG,
                &f.source,
                span,
                "`grad` outside a `log` entry differentiates a value it is given: `grad(f, p)`",
                "no value to differentiate",
            )
            .with_help(
                "the training loss's gradient is logged as `grad(p)` in a `log` entry; at initialization, \
                 `grad(mse(base(xc), yc), base.w)` differentiates a loss on a calibration batch",
            ),
        );
        return Value::Unknown;
    }
    let Some(a) = bind(ch, f, s, args, span) else { return Value::Unknown };
    (family.type_call)(ch, f, s, &a, span)
}

/// Binds arguments to a builtin's parameters, reporting arity and keyword problems.
fn bind(ch: &mut Checker, f: &Frame, s: &Sig, args: &[ArgVal], span: Span) -> Option<Vec<Option<(Value, Span)>>> {
    let mut out: Vec<Option<(Value, Span)>> = vec![None; s.params.len()];
    let mut next = 0;
    let mut ok = true;
    for a in args {
        let i = match &a.name {
            None => {
                while next < out.len() && out[next].is_some() {
                    next += 1;
                }
                if next >= out.len() {
                    ch.report(
                        Diagnostic::error(
                            codes::TOO_MANY_ARGS,
                            &f.source,
                            a.span,
                            format!(
                                "`{}` takes at most {} argument{}",
                                s.name,
                                s.params.len(),
                                if s.params.len() == 1 { "" } else { "s" }
                            ),
                            "unexpected argument",
                        )
                        .with_help(format!("`{}({})`", s.name, s.params.join(", "))),
                    );
                    ok = false;
                    continue;
                }
                next
            }
            Some(n) => match s.params.iter().position(|p| *p == n.name) {
                Some(i) => i,
                None => {
                    let help = did_you_mean(&n.name, s.params.iter().copied())
                        .unwrap_or_else(|| format!("`{}({})`", s.name, s.params.join(", ")));
                    ch.report(
                        Diagnostic::error(
                            codes::UNKNOWN_KEYWORD,
                            &f.source,
                            n.span,
                            format!("`{}` has no parameter `{}`", s.name, n.name),
                            "unknown parameter",
                        )
                        .with_help(help),
                    );
                    ok = false;
                    continue;
                }
            },
        };
        if out[i].is_some() {
            ch.report(Diagnostic::error(
                codes::DUPLICATE_ARG,
                &f.source,
                a.span,
                format!("`{}` is given twice", s.params[i]),
                "given again",
            ));
            ok = false;
            continue;
        }
        out[i] = Some((a.value.clone(), a.span));
    }
    let missing: Vec<&str> =
        s.params[..s.required].iter().zip(&out).filter(|(_, v)| v.is_none()).map(|(p, _)| *p).collect();
    if !missing.is_empty() {
        ch.report(
            Diagnostic::error(
                codes::MISSING_ARG,
                &f.source,
                span,
                format!("`{}` needs `{}`", s.name, missing.join("`, `")),
                "missing arguments",
            )
            .with_help(format!("`{}({})`", s.name, s.params.join(", "))),
        );
        ok = false;
    }
    ok.then_some(out)
}
/// The shape of a numeric argument; reports (and gives `None` for) any other value.
fn numeric(ch: &mut Checker, f: &Frame, name: &str, a: &Option<(Value, Span)>) -> Option<Shape> {
    let (v, span) = a.as_ref()?;
    if v.is_numeric() {
        v.shape()
    } else {
        ch.bad_operand(f, *span, &format!("`{name}`"), v);
        None
    }
}

/// Whether argument `a` has the rank `rank` (or an unknown one); reports it when not.
fn expect_rank(ch: &mut Checker, f: &Frame, a: &Option<(Value, Span)>, rank: usize, name: &str) -> bool {
    let Some((v, sp)) = a else { return false };
    match v.shape().and_then(|s| s.rank()) {
        Some(r) if r != rank => {
            let what = if rank == 1 { "a vector" } else { "a matrix" };
            ch.err(
                f,
                codes::RANK_MISMATCH,
                *sp,
                format!("`{name}` takes {what}, found {}", v.describe()),
                format!("rank {r}"),
            );
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::{FAMILIES, NAMES};

    /// [`NAMES`] lists every builtin of every family, each once.
    #[test]
    fn names_match_the_families() {
        let mut in_families: Vec<&str> = FAMILIES.iter().flat_map(|f| f.sigs.iter().map(|s| s.name)).collect();
        let mut names = NAMES.to_vec();
        in_families.sort_unstable();
        names.sort_unstable();
        assert_eq!(in_families, names);
        in_families.dedup();
        assert_eq!(in_families.len(), NAMES.len(), "a builtin is in two families");
    }
}
