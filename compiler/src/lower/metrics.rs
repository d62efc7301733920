//! The metrics graphs of an experiment, one per data split: the training rows (all of them, not
//! a batch) and, where some data is held out, the held-out rows (`eval_<name>`, only for metrics
//! that read data). A metric that reads the gradient (`grad(p)`, `grad_norm`; see
//! [`crate::check::metrics`]) lowers the loss again in its graph, on that split's data, and
//! differentiates it there as the training graph is differentiated: the logged gradient is the
//! full-batch gradient at the current parameters (on held-out rows for `eval_`), not the one of
//! the last mini-batch. An adapted weight's gradient is taken at its effective weight, which is
//! why adapted weights are then lowered once per graph and shared by every use.

use super::experiment::{DataSet, Metrics, Pass, Split};
use super::{error, Binding, Frame, LResult, Lowerer, Lv};
use crate::check::metrics::{entry_expr, rewrite, slot_name, GradUse};
use crate::diag::{codes, Diagnostic};
use crate::ir::{Binary, Graph, NodeId, Op, Reduce, Unary};
use crate::syntax::ast::{Expr, LogEntry, Span};

/// One metric: its name, its expression, its period and where it is written.
struct Entry {
    name: String,
    expr: Expr,
    every: u64,
    span: Span,
}

/// Lowers the metrics of `logs` for each data split. `shapes` are the data fields' batch shapes,
/// `trained` says which tensors `grad_norm` spans.
pub(super) fn lower_metrics(
    pass: &mut Pass,
    datasets: &[DataSet],
    logs: &[(u64, Vec<LogEntry>)],
    loss: &Expr,
    shapes: &[Vec<usize>],
    trained: &[bool],
) -> Result<Vec<Metrics>, Box<Diagnostic>> {
    let entries: Vec<Entry> = logs
        .iter()
        .flat_map(|(every, es)| {
            es.iter().map(|e| Entry {
                name: e.name.name.clone(),
                expr: if e.value.is_none() && e.name.name == "loss" { loss.clone() } else { entry_expr(e) },
                every: *every,
                span: e.span,
            })
        })
        .collect();
    let mut split_shapes = vec![(Split::Train, shapes.to_vec())];
    if datasets.iter().any(|d| d.holdout > 0) {
        let mut eval = shapes.to_vec();
        for d in datasets {
            for &k in &d.fields {
                if d.init_roots.is_empty() {
                    continue;
                }
                eval[k][0] = if d.holdout > 0 { d.holdout } else { d.rows };
            }
        }
        split_shapes.push((Split::Eval, eval));
    }
    for d in datasets {
        for &k in &d.fields {
            if !d.init_roots.is_empty() {
                split_shapes[0].1[k][0] = d.rows - d.holdout;
            }
        }
    }
    let n_inputs = 2 * trained.len();
    let mut out = Vec::new();
    for (split, shapes) in split_shapes {
        let (graph, roots) = pass.lower(&shapes, |lw, f| {
            let prog = lw.prog;
            let mut uses = Vec::new();
            let mut exprs = Vec::new();
            for e in &entries {
                let shadowed = |n: &str| f.get(n).is_some() || prog.lookup(f.unit, n).is_some();
                exprs.push(rewrite(&e.expr, &shadowed, &mut uses));
            }
            if !uses.is_empty() {
                let grads = gradients(lw, f, &uses, loss, trained)?;
                let scope = grads
                    .into_iter()
                    .enumerate()
                    .map(|(k, g)| (slot_name(k), Binding { value: Lv::T(g), mutable: false, slot: None }))
                    .collect();
                f.scopes.push(scope);
            }
            let mut r = Vec::new();
            for (e, x) in entries.iter().zip(&exprs) {
                let v = lw.expr(f, x)?;
                let node = lw.tensor(f, v, x.span)?;
                if !lw.g.shape(node).is_empty() {
                    return Err(error(
                        f,
                        e.span,
                        codes::TYPE_MISMATCH,
                        format!("metric `{}` has shape {:?}, not a scalar", e.name, lw.g.shape(node)),
                    ));
                }
                r.push(node);
            }
            Ok(r)
        })?;
        let mut es = Vec::new();
        for (e, root) in entries.iter().zip(roots) {
            if split == Split::Eval && !reads_input_from(&graph, root, n_inputs) {
                continue;
            }
            let name = if split == Split::Eval { format!("eval_{}", e.name) } else { e.name.clone() };
            es.push((name, root, e.every));
        }
        out.push(Metrics { split, graph, entries: es });
    }
    Ok(out)
}

/// The value of each gradient use, as nodes of the graph being lowered: the loss is lowered
/// once and differentiated once with respect to every tensor any use needs.
fn gradients(lw: &mut Lowerer, f: &mut Frame, uses: &[GradUse], loss: &Expr, trained: &[bool]) -> LResult<Vec<NodeId>> {
    lw.vars.shared_weights = Some(Vec::new());
    let mut wrt: Vec<NodeId> = Vec::new();
    let mut at = |x: NodeId| match wrt.iter().position(|&w| w == x) {
        Some(k) => k,
        None => {
            wrt.push(x);
            wrt.len() - 1
        }
    };
    // Per use: the positions in `wrt` of the tensors it reads.
    let mut of: Vec<Vec<usize>> = Vec::new();
    for u in uses {
        match u {
            GradUse::Of { args, span } => {
                let arg = args.first().ok_or_else(|| error(f, *span, codes::MISSING_ARG, "`grad` takes a tensor"))?;
                let node = match lw.expr(f, &arg.value)? {
                    Lv::Var(t) => lw.var_node(t),
                    Lv::T(node) => node,
                    _ => {
                        return Err(error(
                            f,
                            arg.value.span,
                            codes::TYPE_MISMATCH,
                            "`grad` takes a tensor of a model, such as `student.w`",
                        ))
                    }
                };
                of.push(vec![at(node)]);
            }
            GradUse::Norm { .. } => {
                let nodes: Vec<NodeId> = (0..trained.len()).filter(|&t| trained[t]).map(|t| lw.var_node(t)).collect();
                of.push(nodes.into_iter().map(&mut at).collect());
            }
        }
    }
    let v = lw.expr(f, loss)?;
    let l = lw.tensor(f, v, loss.span)?;
    let span = match &uses[0] {
        GradUse::Of { span, .. } | GradUse::Norm { span } => *span,
    };
    if !lw.g.shape(l).is_empty() {
        return Err(error(f, loss.span, codes::TYPE_MISMATCH, "the loss is not a scalar"));
    }
    let stops = lw.detached.clone();
    let grads = crate::grad::differentiate_except(&mut lw.g, l, &wrt, &stops)
        .map_err(|e| error(f, span, codes::LOWERING, format!("cannot differentiate the loss: {e}")))?;
    Ok(uses
        .iter()
        .zip(&of)
        .map(|(u, ks)| match u {
            GradUse::Of { .. } => grads[ks[0]],
            GradUse::Norm { .. } => norm(&mut lw.g, ks.iter().map(|&k| grads[k])),
        })
        .collect())
}

/// sqrt(sum of squares) of every entry of the given tensors (0 for none).
fn norm(g: &mut Graph, tensors: impl Iterator<Item = NodeId>) -> NodeId {
    let mut total = g.push(Op::Const(0.0), Vec::new());
    for x in tensors {
        let shape = g.shape(x).to_vec();
        let sq = g.push(Op::Binary(Binary::Mul, x, x), shape.clone());
        let s = g.push(
            Op::Reduce { op: Reduce::Sum, arg: sq, axes: (0..shape.len()).collect(), keepdims: false },
            Vec::new(),
        );
        total = g.push(Op::Binary(Binary::Add, total, s), Vec::new());
    }
    g.push(Op::Unary(Unary::Sqrt, total), Vec::new())
}

/// Whether a node depends on an input of index `first` or above (data: `2 n` for `n` tensors).
pub(super) fn reads_input_from(g: &Graph, root: NodeId, first: usize) -> bool {
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if let Op::Input(k) = g.nodes[n].op {
            if k >= first {
                return true;
            }
        }
        stack.extend(g.nodes[n].op.operands());
    }
    false
}
