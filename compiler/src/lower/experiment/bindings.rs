//! The init pass's bindings: `let`s, settings (`seed`, `steps`, `dtype`, `loss`), model
//! assignments with their `with` and `adapted by` clauses, `init ... with` overrides of
//! initializers, and the sweep's axes. Values known before running become the plan's settings
//! and configuration; tensors become experiment tensors with their initial values in the init
//! graph, so that every later graph reads them as inputs; a `let` that depends on the step
//! cannot be computed once, so it is kept to be lowered again in each graph run every step.

use super::init_pass::InitPass;
use crate::diag::codes;
use crate::ir::{Graph, NodeId, Op};
use crate::lower::model::{name_tensors, TensorKind};
use crate::lower::{error, Binding, Frame, LResult, Lowerer, Lv};
use crate::source::SourceFile;
use crate::syntax::ast::{Clause, Expr, ExprKind, Path, Span, SweepAxis, SweepValues};

/// The names assigned with `=` that are settings of the experiment rather than model bindings.
const SETTINGS: [&str; 4] = ["seed", "steps", "loss", "dtype"];

impl InitPass<'_> {
    /// `let n = value`, or its override.
    pub(super) fn let_binding(&mut self, n: &str, value: &Expr) -> LResult<()> {
        let v = match self.overridden(n)? {
            Some(v) => v,
            None => self.lw.expr(&mut self.f, value)?,
        };
        self.plan.config.push((n.to_string(), show(&v, &self.f.source, value)));
        // A value of the step (`where(modulo(step, 3) == 1, ...)`) is lowered again in
        // every graph run per step; other tensors are computed once, at initialization.
        if let Lv::T(node) = v {
            if depends_on_step(&self.lw.g, node) {
                self.deferred.push((n.to_string(), value.clone()));
                self.f.bind(n, Binding { value: Lv::T(node), mutable: false, slot: None });
                return Ok(());
            }
        }
        let v = self.lw.persist(v, n);
        self.f.bind(n, Binding { value: v, mutable: false, slot: None });
        Ok(())
    }

    /// `n = value [clauses]`: a setting, the loss, or a model binding.
    pub(super) fn assign(&mut self, n: &str, value: &Expr, clauses: &[Clause]) -> LResult<()> {
        let setting = SETTINGS.contains(&n);
        if n == "loss" {
            self.collected.loss = Some(value.clone());
            return Ok(());
        }
        // Only settings (and `let`s) take overrides: an override naming a model binding stays
        // unused and is reported as naming no `let` or setting, rather than silently ignored.
        let over = if setting { self.overridden(n)? } else { None };
        let v = match over {
            Some(v) => v,
            None => self.lw.expr(&mut self.f, value)?,
        };
        if setting {
            self.setting(n, v, value)
        } else {
            self.model_binding(n, v, value, clauses)
        }
    }

    /// `seed`, `steps` or `dtype` set to `v`, the value of `value` or of its override.
    fn setting(&mut self, n: &str, v: Lv, value: &Expr) -> LResult<()> {
        self.plan.config.push((n.to_string(), show(&v, &self.f.source, value)));
        match n {
            "seed" => self.plan.seed = whole(&self.f, &v, value.span, "seed")?,
            "steps" => self.plan.steps = whole(&self.f, &v, value.span, "steps")?,
            _ => match v {
                Lv::Str(d) => self.plan.dtype = Some(d),
                _ => return Err(error(&self.f, value.span, codes::TYPE_MISMATCH, "`dtype` is \"f32\" or \"f64\"")),
            },
        }
        Ok(())
    }

    /// `n = value [with ...] [adapted by ...]` binding a model (or any other value), whose
    /// tensors are then named after `n`.
    fn model_binding(&mut self, n: &str, v: Lv, value: &Expr, clauses: &[Clause]) -> LResult<()> {
        // `b = a` of a model binding is a copy: new tensors with the same initial values.
        let v = match v {
            Lv::Model(m) if clauses.is_empty() && matches!(value.kind, ExprKind::Name(_) | ExprKind::Field { .. }) => {
                Lv::Model(std::rc::Rc::new(self.lw.copy_model(&m)))
            }
            other => other,
        };
        let v = self.lw.apply_clauses(&mut self.f, v, clauses, value.span)?;
        let v = self.lw.persist(v, n);
        if let Lv::Model(m) = &v {
            name_tensors(&mut self.lw.vars.tensors, n, &m.members);
        }
        self.f.bind(n, Binding { value: v, mutable: false, slot: None });
        Ok(())
    }

    /// `init paths with init`: replaces the initial values of the parameters the paths name.
    pub(super) fn init_override(&mut self, paths: &[Path], init: &Expr) -> LResult<()> {
        let v = self.lw.expr(&mut self.f, init)?;
        for p in paths {
            let pat = p.to_string();
            let tensors = &self.lw.vars.tensors;
            let hits: Vec<usize> = (0..tensors.len())
                .filter(|&t| tensors[t].kind == TensorKind::Param && crate::lower::path_matches(&pat, &tensors[t].path))
                .collect();
            if hits.is_empty() {
                return Err(error(&self.f, p.span, codes::NO_SUCH_PARAM, format!("`{pat}` matches no parameter")));
            }
            for t in hits {
                let dims = self.lw.vars.tensors[t].shape.clone();
                self.lw.vars.tensors[t].init = self.lw.init_value(&self.f, v.clone(), &dims, init.span)?;
            }
        }
        Ok(())
    }

    /// `sweep ...`: each axis's values as source text, to be applied later as overrides. A
    /// literal list keeps its items' text; another list or a range is evaluated now.
    pub(super) fn sweep_axes(&mut self, axes: &[SweepAxis]) -> LResult<()> {
        let source = self.f.source.clone();
        for a in axes {
            let values = match &a.values {
                SweepValues::List(e) => match &e.kind {
                    ExprKind::List(items) => {
                        items.iter().map(|i| source.text[i.span.start..i.span.end].to_string()).collect()
                    }
                    _ => match self.lw.expr(&mut self.f, e)? {
                        Lv::List(items) => items.iter().map(|i| show(i, &source, e)).collect(),
                        _ => return Err(error(&self.f, e.span, codes::TYPE_MISMATCH, "sweep values are a list")),
                    },
                },
                SweepValues::Range(lo, hi) => {
                    let (l, h) = (self.lw.expr(&mut self.f, lo)?, self.lw.expr(&mut self.f, hi)?);
                    let (l, h) = (Lowerer::known(&l).unwrap_or(0.0) as i64, Lowerer::known(&h).unwrap_or(0.0) as i64);
                    (l..h).map(|i| i.to_string()).collect()
                }
            };
            self.sweep.axes.push((a.name.name.clone(), values));
        }
        Ok(())
    }

    /// The value of `e` as a whole number, `what` naming it in the error otherwise.
    pub(super) fn whole_number(&mut self, e: &Expr, what: &str) -> LResult<u64> {
        let v = self.lw.expr(&mut self.f, e)?;
        whole(&self.f, &v, e.span, what)
    }
}

impl Lowerer<'_> {
    /// A value bound in the init pass, made usable in every later graph: tensors (nodes of the
    /// init graph) become experiment tensors named after the binding.
    pub(crate) fn persist(&mut self, v: Lv, name: &str) -> Lv {
        match v {
            Lv::T(node) => Lv::Var(self.new_tensor(name.to_string(), node, TensorKind::Let)),
            Lv::List(items) => {
                Lv::List(items.into_iter().enumerate().map(|(i, x)| self.persist(x, &format!("{name}[{i}]"))).collect())
            }
            Lv::Tuple(items) => Lv::Tuple(
                items.into_iter().enumerate().map(|(i, x)| self.persist(x, &format!("{name}[{i}]"))).collect(),
            ),
            other => other,
        }
    }
}

/// Whether a node of the graph reads the step.
fn depends_on_step(g: &Graph, root: NodeId) -> bool {
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if matches!(g.nodes[n].op, Op::Step) {
            return true;
        }
        stack.extend(g.nodes[n].op.operands());
    }
    false
}

/// A known value as a whole number (a seed, a count, a period), `what` naming it in the error
/// otherwise.
fn whole(f: &Frame, v: &Lv, span: Span, what: &str) -> LResult<u64> {
    match Lowerer::known(v) {
        Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(x as u64),
        _ => Err(error(f, span, codes::TYPE_MISMATCH, format!("{what} is a whole number"))),
    }
}

/// A value as text for the run's configuration.
fn show(v: &Lv, source: &SourceFile, e: &Expr) -> String {
    match v {
        Lv::Int(n) => n.to_string(),
        Lv::Num(x) => format!("{x}"),
        Lv::Bool(b) => b.to_string(),
        Lv::Str(s) => format!("{s:?}"),
        _ => source.text.get(e.span.start..e.span.end).unwrap_or("?").to_string(),
    }
}
