//! Training: the `optimize` statements, which tensors they train, the training step and the
//! rules. The init pass only evaluates each statement's rule, since which tensors a path names
//! is known once every model is built; the paths are then resolved against the experiment's
//! tensors (each trained by one rule at most), the loss is lowered once per step and
//! differentiated with respect to every trained tensor, and each rule is lowered once per tensor
//! it trains, as `optic replay` lowers it, with a probe graph where it reads the gradient at
//! another point.

use super::init_pass::InitPass;
use super::{Group, Pass};
use crate::diag::{codes, Diagnostic};
use crate::ir::{Graph, NodeId, Op};
use crate::lower::model::{TensorDef, TensorKind};
use crate::lower::{error, Frame, LResult, Lv};
use crate::syntax::ast::{Expr, Path, Span};

/// An `optimize paths with rule` statement, its rule evaluated.
pub(super) struct OptimizeStmt {
    /// The parameter paths or patterns it trains.
    pub(super) paths: Vec<Path>,
    /// Its rule's value.
    pub(super) rule: Lv,
    /// Its rule's source text.
    pub(super) text: String,
    /// Where its rule is written.
    pub(super) span: Span,
}

impl InitPass<'_> {
    /// `optimize paths with rule`: evaluates the rule, leaving the paths to be resolved once every
    /// tensor exists.
    pub(super) fn optimize(&mut self, paths: &[Path], rule: &Expr) -> LResult<()> {
        let r = self.lw.expr(&mut self.f, rule)?;
        let r = self.lw.as_value(r);
        if !matches!(r, Lv::Rule(_)) {
            return Err(error(&self.f, rule.span, codes::TYPE_MISMATCH, "`optimize ... with` takes a rule"));
        }
        let text = self.f.source.text[rule.span.start..rule.span.end].to_string();
        self.collected.optimize.push(OptimizeStmt { paths: paths.to_vec(), rule: r, text, span: rule.span });
        Ok(())
    }
}

/// Which tensors are trained, and the tensors of each `optimize` statement. Only parameters
/// count, not hidden ones (with a `~` in their path); a tensor trained twice is an error.
pub(super) fn trained_tensors(
    f: &Frame,
    optimize: &[OptimizeStmt],
    tensors: &[TensorDef],
) -> LResult<(Vec<bool>, Vec<Vec<usize>>)> {
    let n_tensors = tensors.len();
    let mut trained = vec![false; n_tensors];
    let mut group_tensors = Vec::new();
    for OptimizeStmt { paths, span, .. } in optimize {
        let mut ts = Vec::new();
        for p in paths {
            let pat = p.to_string();
            let hits: Vec<usize> = (0..n_tensors)
                .filter(|&t| {
                    tensors[t].kind == TensorKind::Param
                        && !tensors[t].path.contains('~')
                        && crate::lower::path_matches(&pat, &tensors[t].path)
                })
                .collect();
            if hits.is_empty() {
                return Err(error(f, p.span, codes::NO_SUCH_PARAM, format!("`{pat}` matches no trainable parameter")));
            }
            for t in hits {
                if trained[t] {
                    return Err(error(
                        f,
                        *span,
                        codes::DOUBLE_OPTIMIZE,
                        format!("`{}` is optimized twice", tensors[t].path),
                    ));
                }
                trained[t] = true;
                ts.push(t);
            }
        }
        group_tensors.push(ts);
    }
    Ok((trained, group_tensors))
}

/// The training step's graph with its loss and gradients.
pub(super) struct TrainingStep {
    /// Inputs: tensors, initial tensors, data batches; its output is the loss.
    pub(super) graph: Graph,
    /// The loss.
    pub(super) loss: NodeId,
    /// (tensor, gradient node) for every trained tensor.
    pub(super) grads: Vec<(usize, NodeId)>,
}

/// Lowers the training step: the loss, a scalar, on the data fields of `shapes`, and by
/// reverse-mode differentiation its gradient with respect to every trained tensor. `frame` is
/// the experiment's frame, where a failure to differentiate is reported.
pub(super) fn lower_training_step(
    frame: &Frame,
    pass: &mut Pass,
    shapes: &[Vec<usize>],
    loss_expr: &Expr,
    trained: &[bool],
) -> LResult<TrainingStep> {
    let wanted: Vec<usize> = (0..trained.len()).filter(|&t| trained[t]).collect();
    let mut stops = Vec::new();
    let (mut train, roots) = pass.lower(shapes, |lw, f| {
        let inputs: Vec<NodeId> = wanted.iter().map(|&t| lw.var_node(t)).collect();
        let v = lw.expr(f, loss_expr)?;
        let loss = lw.tensor(f, v, loss_expr.span)?;
        if !lw.g.shape(loss).is_empty() {
            return Err(error(
                f,
                loss_expr.span,
                codes::TYPE_MISMATCH,
                format!("the loss has shape {:?}, not a scalar", lw.g.shape(loss)),
            ));
        }
        let mut r = vec![loss];
        r.extend(inputs);
        // `detach`ed nodes stop the differentiation below.
        stops = lw.detached.clone();
        Ok(r)
    })?;
    let loss = roots[0];
    let grads = crate::grad::differentiate_except(&mut train, loss, &roots[1..], &stops)
        .map_err(|e| error(frame, loss_expr.span, codes::LOWERING, format!("cannot differentiate the loss: {e}")))?;
    train.output = loss;
    Ok(TrainingStep { graph: train, loss, grads: wanted.into_iter().zip(grads).collect() })
}

/// Lowers the rule of every `optimize` statement for the tensors it trains (`group_tensors`, as
/// [`trained_tensors`] gives them).
pub(super) fn lower_groups(
    pass: &Pass,
    optimize: &[OptimizeStmt],
    group_tensors: Vec<Vec<usize>>,
) -> Result<Vec<Group>, Box<Diagnostic>> {
    let mut groups = Vec::new();
    for (stmt, ts) in optimize.iter().zip(group_tensors) {
        groups.push(lower_group(pass, stmt, ts)?);
    }
    Ok(groups)
}

/// One rule graph per tensor of the group, and their probe graphs if the rule has any. A failure
/// is reported at the rule, naming the tensor it was being applied to.
fn lower_group(pass: &Pass, stmt: &OptimizeStmt, ts: Vec<usize>) -> Result<Group, Box<Diagnostic>> {
    let OptimizeStmt { rule, text, span, .. } = stmt;
    let (mut graphs, mut probes) = (Vec::new(), Vec::new());
    for &t in &ts {
        let (g, probe) = crate::lower::lower_rule_value(
            pass.prog,
            pass.unit,
            pass.source,
            rule,
            *span,
            &pass.tensors[t].shape,
            Some(&pass.tensors[t].path),
        )
        .map_err(|d| {
            Box::new(Diagnostic::error(
                d.code,
                pass.source,
                *span,
                format!("applying this rule to `{}`: {}", pass.tensors[t].path, d.message),
                "here",
            ))
        })?;
        graphs.push(g);
        probes.push(probe);
    }
    let probes = if probes.iter().any(Option::is_some) { fill_probes(probes, &graphs) } else { Vec::new() };
    Ok(Group { rule: text.clone(), tensors: ts, graphs, probes })
}

/// A probe graph for every tensor of a group where some rule graph has one: a tensor whose rule
/// asks for no other point stays where it is while the others move.
fn fill_probes(probes: Vec<Option<Graph>>, graphs: &[Graph]) -> Vec<Graph> {
    probes
        .into_iter()
        .zip(graphs)
        .map(|(p, g)| {
            p.unwrap_or_else(|| {
                let shape = g.inputs[0].clone();
                let mut id = Graph { inputs: vec![shape.clone()], ..Graph::default() };
                id.output = id.push(Op::Param, shape);
                id
            })
        })
        .collect()
}
