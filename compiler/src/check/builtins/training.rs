//! Values tied to training: a parameter's `initial` value, values a replay may substitute
//! (`recorded`), `detach`, the loss's gradient at another point (`grad_at`, in rules) and the
//! values an experiment computes once at initialization (`grad`, `layer_inputs`). Several are only
//! meaningful in some kinds of body (`grad_at` in rules, `grad` and `layer_inputs` in
//! experiments), which their typing rules check.

use super::{numeric, sig, Sig};
use crate::check::eval::{Checker, Ctx, Frame};
use crate::check::shape::{Dim, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::Span;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("initial", &["x"], 1),
    sig("recorded", &["name", "x"], 2),
    sig("detach", &["x"], 1),
    sig("grad", &["f", "wrt"], 2),
    sig("layer_inputs", &["y", "wrt"], 2),
    sig("grad_at", &["point"], 1),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], span: Span) -> Value {
    let name = s.name;
    match name {
        "initial" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
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
            Value::tensor(shape)
        }
        "recorded" => recorded(ch, f, a),
        "detach" => numeric(ch, f, name, &a[0]).map_or(Value::Unknown, Value::tensor),
        "grad_at" => grad_at(ch, f, &a[0], span),
        "grad" | "layer_inputs" => calibration(ch, f, name, a, span),
        _ => Value::Unknown,
    }
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

/// `grad_at(point)`: the loss's gradient at another value of the parameter a rule updates, a
/// tensor of the parameter's shape. Only a rule asks for it (the training loop evaluates it).
fn grad_at(ch: &mut Checker, f: &Frame, point: &Option<(Value, Span)>, span: Span) -> Value {
    if f.ctx != Ctx::Rule {
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
    if f.ctx != Ctx::Experiment {
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
