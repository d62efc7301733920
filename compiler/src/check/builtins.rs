//! Builtins: the primitives the language cannot define itself (elementwise math, reductions,
//! group reductions over every parameter a rule updates (`global_norm`, `global_sum`),
//! constructors, counter-based random numbers, shape queries, linear algebra, data loading) and
//! `partition`, `mask` and `route`, which need parameter metadata (rank, path). Each has a signature for arity and keyword
//! checks and a typing rule giving its result's shape. Everything else lives in `stdlib/*.opt`.

use super::apply::shape_of_list;
use super::dims::to_dim;
use super::eval::{ArgVal, Checker, Frame};
use super::shape::{Dim, DimOp, Shape};
use super::value::{Applied, Bound, Callee, Elem, Value};
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::Span;
use std::rc::Rc;

/// A builtin's parameters: names in order, and how many are required.
struct Sig {
    name: &'static str,
    params: &'static [&'static str],
    required: usize,
}

const fn sig(name: &'static str, params: &'static [&'static str], required: usize) -> Sig {
    Sig { name, params, required }
}

const UNARY: &[&str] = &["abs", "sign", "sqrt", "exp", "log", "sin", "cos", "tanh", "erf", "floor", "ceil", "round"];

static SIGS: &[Sig] = &[
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
    sig("zeros_like", &["x"], 1),
    sig("ones_like", &["x"], 1),
    sig("full_like", &["x", "value"], 2),
    sig("fill", &["shape", "value"], 2),
    sig("eye", &["n", "m"], 1),
    sig("randn", &["shape"], 1),
    sig("rand", &["shape"], 1),
    sig("arange", &["n"], 1),
    sig("rows", &["x"], 1),
    sig("cols", &["x"], 1),
    sig("ndim", &["x"], 1),
    sig("numel", &["x"], 1),
    sig("size", &["x", "axis"], 2),
    sig("shape", &["x"], 1),
    sig("reshape", &["x", "shape"], 2),
    sig("flatten", &["x"], 1),
    sig("concat", &["xs", "axis"], 1),
    sig("outer", &["a", "b"], 2),
    sig("diag", &["x"], 1),
    sig("trace", &["x"], 1),
    sig("triu", &["x"], 1),
    sig("tril", &["x"], 1),
    sig("kron", &["a", "b"], 2),
    sig("svd", &["a", "rank"], 1),
    sig("left_singular", &["a", "rank"], 2),
    sig("randomized_svd", &["a", "rank", "niter"], 2),
    sig("rebase", &["inner", "t", "at", "axis"], 3),
    sig("qr", &["a"], 1),
    sig("eigh", &["a"], 1),
    sig("solve", &["a", "b"], 2),
    sig("cholesky", &["a"], 1),
    sig("partition", &["matrices", "vectors"], 2),
    sig("mask", &["inner", "paths"], 2),
    sig("route", &["paths", "then", "otherwise"], 3),
    sig("load", &["path", "key"], 1),
    sig("onehot", &["labels", "classes"], 2),
    sig("initial", &["x"], 1),
    sig("recorded", &["name", "x"], 2),
    sig("detach", &["x"], 1),
    sig("grad", &["f", "wrt"], 2),
    sig("layer_inputs", &["y", "wrt"], 2),
    sig("grad_at", &["point"], 1),
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

/// The builtin of this name, if any.
pub fn find(name: &str) -> Option<&'static str> {
    SIGS.iter().find(|s| s.name == name).map(|s| s.name)
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

fn numeric(ch: &mut Checker, f: &Frame, name: &str, a: &Option<(Value, Span)>) -> Option<Shape> {
    let (v, span) = a.as_ref()?;
    if v.is_numeric() {
        v.shape()
    } else {
        ch.bad_operand(f, *span, &format!("`{name}`"), v);
        None
    }
}

/// Calls a builtin.
pub fn call(ch: &mut Checker, f: &mut Frame, name: &'static str, args: &[ArgVal], span: Span) -> Value {
    let Some(s) = SIGS.iter().find(|s| s.name == name) else { return Value::Unknown };
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
        "global_norm" | "global_sum" | "trace" => {
            let _ = numeric(ch, f, name, &a[0]);
            if name == "trace" {
                expect_rank(ch, f, &a[0], 2, name);
            }
            Value::Float(None)
        }
        "zeros_like" | "ones_like" | "full_like" | "triu" | "tril" | "cholesky" | "initial" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            if matches!(name, "triu" | "tril" | "cholesky") {
                expect_rank(ch, f, &a[0], 2, name);
            }
            if name == "initial" {
                if let Some((v, sp)) = &a[0] {
                    if !matches!(v, Value::Param { .. } | Value::Unknown) {
                        ch.err(
                            f,
                            codes::TYPE_MISMATCH,
                            *sp,
                            format!("`initial` takes a model parameter, not {}", v.describe()),
                            "not a parameter",
                        );
                    }
                }
            }
            Value::tensor(shape)
        }
        "fill" | "randn" | "rand" => match &a[0] {
            Some((v, sp)) => match shape_of_list(ch, f, v, *sp) {
                Some(d) => Value::tensor(Shape::Dims(d)),
                None if matches!(v, Value::List(None) | Value::Unknown) => Value::Tensor(Shape::Any(None), Elem::Float),
                None => {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        *sp,
                        format!("`{name}` takes a shape list like `[3, 4]`, not {}", v.describe()),
                        "not a shape",
                    );
                    Value::Unknown
                }
            },
            None => Value::Unknown,
        },
        "eye" => {
            let n = a[0].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            let m = a[1].as_ref().map_or(n.clone(), |(v, sp)| to_dim(ch, f, v, *sp));
            Value::tensor(Shape::Dims(vec![n, m]))
        }
        "arange" => {
            let n = a[0].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            Value::Tensor(Shape::Dims(vec![n]), Elem::Int)
        }
        "rows" | "cols" | "ndim" | "numel" | "size" | "shape" => shape_query(ch, f, name, &a),
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
        "concat" => concat(ch, f, &a),
        "outer" => {
            let (Some(x), Some(y)) = (numeric(ch, f, name, &a[0]), numeric(ch, f, name, &a[1])) else {
                return Value::Unknown;
            };
            expect_rank(ch, f, &a[0], 1, name);
            expect_rank(ch, f, &a[1], 1, name);
            Value::tensor(Shape::Dims(vec![first_dim(&x), first_dim(&y)]))
        }
        "diag" => match numeric(ch, f, name, &a[0]) {
            Some(Shape::Dims(d)) if d.len() == 1 => Value::tensor(Shape::Dims(vec![d[0].clone(), d[0].clone()])),
            Some(Shape::Dims(d)) if d.len() == 2 => {
                Value::tensor(Shape::Dims(vec![Dim::apply(DimOp::Min, &d[0], &d[1])]))
            }
            Some(Shape::Dims(_)) => {
                expect_rank(ch, f, &a[0], 2, name);
                Value::Unknown
            }
            Some(_) => Value::Tensor(Shape::Any(None), Elem::Float),
            None => Value::Unknown,
        },
        "kron" => {
            let (Some(x), Some(y)) = (numeric(ch, f, name, &a[0]), numeric(ch, f, name, &a[1])) else {
                return Value::Unknown;
            };
            match (x, y) {
                (Shape::Dims(p), Shape::Dims(q)) if p.len() == q.len() => {
                    Value::tensor(Shape::Dims(p.iter().zip(&q).map(|(a, b)| Dim::apply(DimOp::Mul, a, b)).collect()))
                }
                _ => Value::Tensor(Shape::Any(None), Elem::Float),
            }
        }
        "svd" | "left_singular" | "randomized_svd" | "qr" | "eigh" | "solve" => linalg(ch, f, name, &a),
        "rebase" => rebase(ch, f, &a),
        "partition" | "mask" | "route" => {
            for ((p, v), sp) in s.params.iter().zip(&a).filter_map(|(p, v)| v.as_ref().map(|(v, sp)| ((p, v), sp))) {
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
            for (p, v) in s.params.iter().zip(&a) {
                if let Some((v, sp)) = v.as_ref().filter(|_| *p != "paths") {
                    let v =
                        super::args::coerce(ch, f, super::value::Ty::Rule, v.clone(), *sp).unwrap_or(Value::Unknown);
                    args.insert(p.to_string(), v);
                }
            }
            Value::Rule(Rc::new(Applied { callee: Callee::Builtin(name), args }))
        }
        "load" => load(ch, f, &a),
        "recorded" => recorded(ch, f, &a),
        "detach" => numeric(ch, f, name, &a[0]).map_or(Value::Unknown, Value::tensor),
        "grad_at" => grad_at(ch, f, &a[0], span),
        "grad" | "layer_inputs" => calibration(ch, f, name, &a, span),
        "onehot" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            let k = a[1].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            match shape {
                Shape::Dims(mut d) => {
                    d.push(k);
                    Value::tensor(Shape::Dims(d))
                }
                other => Value::tensor(other),
            }
        }
        _ => Value::Unknown,
    }
}

fn first_dim(s: &Shape) -> Dim {
    match s {
        Shape::Dims(d) if d.len() == 1 => d[0].clone(),
        _ => Dim::Any,
    }
}

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

fn linalg(ch: &mut Checker, f: &Frame, name: &str, a: &[Option<(Value, Span)>]) -> Value {
    let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
    if !expect_rank(ch, f, &a[0], 2, name) {
        return Value::Unknown;
    }
    let (m, n) = match &shape {
        Shape::Dims(d) => (d[0].clone(), d[1].clone()),
        _ => (Dim::Any, Dim::Any),
    };
    let k = Dim::apply(DimOp::Min, &m, &n);
    let rank = match name {
        "svd" | "left_singular" | "randomized_svd" => a.get(1).and_then(|x| x.as_ref()).map(|(v, sp)| {
            let r = to_dim(ch, f, v, *sp);
            if r == Dim::Known(0) {
                ch.err(f, codes::BAD_COUNT, *sp, format!("`{name}` needs a rank of at least 1"), "rank 0");
            }
            r
        }),
        _ => None,
    };
    match name {
        "svd" | "randomized_svd" => {
            let r = rank.unwrap_or(k);
            Value::Tuple(vec![
                Value::tensor(Shape::Dims(vec![m, r.clone()])),
                Value::tensor(Shape::Dims(vec![r.clone()])),
                Value::tensor(Shape::Dims(vec![r, n])),
            ])
        }
        "left_singular" => Value::tensor(Shape::Dims(vec![m, rank.unwrap_or(Dim::Any)])),
        "qr" => {
            Value::Tuple(vec![Value::tensor(Shape::Dims(vec![m, k.clone()])), Value::tensor(Shape::Dims(vec![k, n]))])
        }
        "eigh" => {
            if !m.compatible(&n) {
                ch.err(
                    f,
                    codes::SHAPE_MISMATCH,
                    a[0].as_ref().map_or(Span::default(), |x| x.1),
                    format!("`eigh` needs a square matrix, found {shape}"),
                    "not square",
                );
            }
            Value::Tuple(vec![
                Value::tensor(Shape::Dims(vec![n.clone()])),
                Value::tensor(Shape::Dims(vec![n.clone(), n])),
            ])
        }
        _ => {
            // solve(a, b): a is square, b's leading dimension matches.
            let b = a.get(1).and_then(|x| x.clone());
            match b.as_ref().and_then(|(v, _)| v.shape()) {
                Some(Shape::Dims(bd)) if !bd.is_empty() => {
                    if !bd[0].compatible(&m) {
                        let (_, sb) = b.as_ref().map_or((Value::Unknown, Span::default()), |x| x.clone());
                        ch.report(
                            Diagnostic::error(
                                codes::SHAPE_MISMATCH,
                                &f.source,
                                sb,
                                format!("`solve` of a {shape} system with a right side of {}", Shape::Dims(bd.clone())),
                                "rows differ",
                            )
                            .with_label(a[0].as_ref().map_or(Span::default(), |x| x.1), format!("{shape}")),
                        );
                    }
                    Value::tensor(Shape::Dims(bd))
                }
                Some(s) => Value::tensor(s),
                None => Value::Unknown,
            }
        }
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
        let v = super::args::coerce(ch, f, super::value::Ty::Rule, v.clone(), *sp).unwrap_or(Value::Unknown);
        args.insert("inner".to_string(), v);
    }
    Value::Rule(Rc::new(Applied { callee: Callee::Builtin("rebase"), args }))
}

/// `recorded(name, x)`: `x`'s type, with a value no longer known (a run may replace it); the
/// name must be a string known before running, since a replay looks values up by it.
fn recorded(ch: &mut Checker, f: &Frame, a: &[Option<(Value, Span)>]) -> Value {
    if let Some((v, sp)) = &a[0] {
        if !matches!(v, Value::Str(Some(_)) | Value::Unknown) {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`recorded` takes a name known before running, like \"projectors\", not {}", v.describe()),
                "not a constant string",
            );
        }
    }
    match &a[1] {
        Some((Value::Float(_) | Value::Int(_), _)) => Value::Float(None),
        x => numeric(ch, f, "recorded", x).map_or(Value::Unknown, Value::tensor),
    }
}

fn load(ch: &mut Checker, f: &Frame, a: &[Option<(Value, Span)>]) -> Value {
    let Some((v, sp)) = &a[0] else { return Value::Unknown };
    // With a key, one array of the file; without, all of them in file order.
    let whole = if a.get(1).is_some_and(|k| k.is_some()) {
        Value::Tensor(Shape::Any(None), super::value::Elem::Float)
    } else {
        Value::List(None)
    };
    let Value::Str(Some(path)) = v else {
        if !matches!(v, Value::Str(None) | Value::Unknown) {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`load` takes a file path, not {}", v.describe()),
                "not a string",
            );
        }
        return whole;
    };
    if ch.prog.units[f.unit].stdlib {
        return whole;
    }
    let ext = std::path::Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "npy" | "npz" | "csv") {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("cannot load `{path}`: unsupported format"),
                "not .npy, .npz or .csv",
            )
            .with_help("save the data as .npy, .npz or .csv"),
        );
        return whole;
    }
    let base = std::path::Path::new(&f.source.name).parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let full = base.join(path);
    if !full.is_file() {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("data file `{path}` not found"),
                format!("looked for {}", full.display()),
            )
            .with_help("paths are relative to the experiment's file"),
        );
    } else if let Some(why) = malformed(&full, ext) {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("data file `{path}` is malformed: {why}"),
                "not a valid data file",
            )
            .with_help(format!(
                "write it with numpy (`np.save`, `np.savez`) or as comma-separated text; found at {}",
                full.display()
            )),
        );
    }
    whole
}

/// Why a data file cannot be what its extension says, judged from its first bytes.
fn malformed(path: &std::path::Path, ext: &str) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path).and_then(|mut fh| fh.read(&mut head)).ok()?;
    let head = &head[..n];
    match ext {
        "npz" if !head.starts_with(b"PK\x03\x04") && !head.starts_with(b"PK\x05\x06") => {
            Some("an .npz file is a zip archive".into())
        }
        "npy" if !head.starts_with(b"\x93NUMPY") => Some("an .npy file starts with the NumPy magic string".into()),
        // A multi-byte character cut at the 512th byte is not an error (`error_len` is `None`).
        "csv" if std::str::from_utf8(head).is_err_and(|e| e.error_len().is_some()) => {
            Some("a .csv file is text".into())
        }
        _ => None,
    }
}

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

/// `grad_at(point)`: the loss's gradient at another value of the parameter a rule updates, a
/// tensor of the parameter's shape. Only a rule asks for it (the training loop evaluates it).
fn grad_at(ch: &mut Checker, f: &Frame, point: &Option<(Value, Span)>, span: Span) -> Value {
    if f.ctx != super::frame::Ctx::Rule {
        ch.report(
            Diagnostic::error(
                codes::MISPLACED_BUILTIN,
                &f.source,
                span,
                "`grad_at` is only meaningful in a rule",
                "not in a rule",
            )
            .with_help("a rule asks for the loss's gradient at another point, e.g. SAM's `inner(grad_at(param + e))`"),
        );
        return Value::Unknown;
    }
    let Some(shape) = numeric(ch, f, "grad_at", point) else { return Value::Unknown };
    if let (Some(p), Some((_, sp))) = (f.param.as_ref().and_then(Value::shape), point) {
        if ch.broadcast(f, *sp, &Value::tensor(p.clone()), *sp, &Value::tensor(shape.clone()), *sp).is_none() {
            return Value::Unknown;
        }
        return Value::tensor(p);
    }
    Value::tensor(shape)
}

/// `grad(f, p)` and `layer_inputs(y, p)`: values an experiment computes once, at initialization,
/// from its models' initial tensors (the data-driven initializations: LoRA-GA, LoRA-SB, EVA).
/// `grad` is the gradient of the scalar `f` with respect to the model tensor `p`, a tensor of
/// `p`'s shape; `layer_inputs` the rows that `p`, a layer's weight [out, in], multiplies while
/// `y` is computed ([rows, in]).
fn calibration(ch: &mut Checker, f: &Frame, name: &str, a: &[Option<(Value, Span)>], span: Span) -> Value {
    if f.ctx != super::frame::Ctx::Experiment {
        let help = if name == "grad" {
            "`grad(f, p)` is computed once, at initialization, in an experiment's bindings \
             (`let g0 = grad(mse(base(xc), yc), base.w)`); a log entry reads the loss's gradient as `grad(p)`"
        } else {
            "`layer_inputs(y, p)` is computed once, at initialization, in an experiment's bindings \
             (`let x0 = layer_inputs(base(xc), base.w)`)"
        };
        ch.report(
            Diagnostic::error(
                codes::MISPLACED_BUILTIN,
                &f.source,
                span,
                format!("`{name}` is computed in an experiment, at initialization"),
                "not in an experiment",
            )
            .with_help(help),
        );
        return Value::Unknown;
    }
    let Some(value) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
    if name == "grad" && value.rank().is_some_and(|r| r > 0) {
        let (_, sp) = a[0].as_ref().expect("numeric found it");
        ch.err(
            f,
            codes::SHAPE_MISMATCH,
            *sp,
            format!("`grad` differentiates a scalar, not a tensor of shape {value}"),
            "not a scalar",
        );
        return Value::Unknown;
    }
    let Some((p, sp)) = &a[1] else { return Value::Unknown };
    let shape = match p {
        Value::Param { shape, .. } => shape.clone(),
        Value::Unknown => return Value::Unknown,
        other => {
            ch.report(
                Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    &f.source,
                    *sp,
                    format!("`{name}` takes a tensor of a model, such as `base.w`, not {}", other.describe()),
                    "not a model's tensor",
                )
                .with_help(format!("`{name}({}, base.w)`", if name == "grad" { "loss" } else { "base(x)" })),
            );
            return Value::Unknown;
        }
    };
    if name == "grad" {
        return Value::tensor(shape);
    }
    match shape {
        Shape::Dims(d) if d.len() == 2 => Value::tensor(Shape::Dims(vec![Dim::Any, d[1].clone()])),
        Shape::Dims(d) => {
            ch.err(
                f,
                codes::RANK_MISMATCH,
                *sp,
                format!("`layer_inputs` takes a layer's weight [out, in], not a tensor of rank {}", d.len()),
                "not a matrix",
            );
            Value::Unknown
        }
        Shape::Any(_) => Value::Tensor(Shape::Any(None), Elem::Float),
    }
}
