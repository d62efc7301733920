//! The checked form of a declaration: its signature with types and ranges, and what checking
//! learned (states and their shapes, parameters, forward shapes, an experiment's plan). This is
//! what `optic check --summary` prints and what the snapshot tests pin.

use super::body::Outcome;
use super::value::{DeclId, Member};
use super::Program;
use crate::syntax::ast::{Body, DeclKind, ExprKind};
use std::fmt::Write as _;

/// Describes one checked declaration.
pub fn describe(prog: &Program, id: DeclId, out: &Outcome) -> String {
    let decl = prog.decl(id);
    let src = &prog.unit_of(id).source.text;
    let mut s = format!("{} {}", decl.kind.keyword(), decl.name.name);
    if let Some(params) = &decl.params {
        let ps: Vec<String> = params
            .iter()
            .zip(out.hypers.iter().map(|(_, t)| *t).chain(std::iter::repeat(super::value::Ty::Any)))
            .map(|(p, ty)| {
                let mut t = format!("{}{}", if p.variadic { "*" } else { "" }, p.name.name);
                // Numeric literals speak for themselves; other inferred types are worth showing.
                let literal =
                    p.default.as_ref().is_some_and(|d| matches!(d.kind, ExprKind::Int(_) | ExprKind::Float { .. }));
                match &p.ty {
                    Some(ty) => {
                        let _ = write!(t, ": {}", ty.name);
                    }
                    None if ty != super::value::Ty::Any && !literal => {
                        let _ = write!(t, ": {}", ty.name());
                    }
                    None => {}
                }
                if let Some(r) = &p.range {
                    let _ = write!(t, " in {}", &src[r.span.start..r.span.end]);
                }
                if let Some(d) = &p.default {
                    let _ = write!(t, " = {}", &src[d.span.start..d.span.end]);
                }
                t
            })
            .collect();
        let _ = write!(s, "({})", ps.join(", "));
    }
    if decl.kind == DeclKind::Rule {
        let ins: Vec<&str> = decl.inputs.iter().map(|i| i.name.name.as_str()).collect();
        let _ = write!(s, "({})", ins.join(", "));
    }
    if let Some(shape) = &decl.shape {
        if let Some(t) = &decl.target {
            let _ = write!(s, " on {}", t.name);
        }
        let _ = write!(s, "{}", &src[shape.span.start..shape.span.end]);
    }
    for (n, v) in &out.states {
        let shape = match v.shape() {
            Some(sh) if sh.is_scalar() => "scalar".to_string(),
            Some(sh) => format!("tensor{sh}"),
            None => v.to_string(),
        };
        let _ = write!(s, "\n  state {n}: {shape}");
    }
    for (n, m) in &out.members {
        match m {
            Member::Param(p) => {
                let _ = write!(s, "\n  {} {n}{}", if p.trainable { "param" } else { "frozen" }, p.shape);
            }
            Member::Model(sub) => {
                let _ = write!(s, "\n  {n} = {}", sub.name);
            }
            Member::Adapted { shape, adapter, .. } => {
                let _ = write!(s, "\n  {n}{shape} adapted by {adapter}");
            }
        }
    }
    if let Some(w) = &out.weight {
        let _ = write!(s, "\n  weight: {w}");
    }
    if let Some((ins, v)) = &out.forward {
        let _ = write!(s, "\n  forward({}) -> {v}", ins.join(", "));
    }
    if let (Some(v), false) = (&out.value, decl.kind == DeclKind::Experiment) {
        let what = if matches!(decl.body, Body::Expr(_)) || decl.kind != DeclKind::Model { "value" } else { "" };
        if !what.is_empty() {
            let _ = write!(s, "\n  {what}: {v}");
        }
    }
    for n in &out.notes {
        let _ = write!(s, "\n  {n}");
    }
    s
}
