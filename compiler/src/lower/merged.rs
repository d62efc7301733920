//! Merged adapter weights. An adapted weight (`student.w` of `base adapted by lora on w`) is the
//! adapter's `weight` expression over the frozen base and the adapter's own tensors; a checkpoint
//! keeps those tensors, and also the weight they make (`merged/student.w`), so that the trained
//! model can be used without the adapter, as PEFT's `merge_and_unload` does.

use super::experiment::Pass;
use super::model::{AdaptedInst, Member};
use super::Lv;
use crate::diag::Diagnostic;
use crate::ir::{Graph, NodeId};
use crate::syntax::ast::Span;
use std::rc::Rc;

/// The merged weights of an experiment.
#[derive(Clone, Debug, Default)]
pub struct Merged {
    /// Inputs as the training graph's (tensors, initial tensors, data); it reads only the tensors.
    pub graph: Graph,
    /// (path of the adapted weight, its node in `graph`), in binding order.
    pub weights: Vec<(String, NodeId)>,
}

/// Lowers the effective weight of every adapted tensor of the experiment's models.
pub(super) fn lower_merged(pass: &mut Pass, shapes: &[Vec<usize>]) -> Result<Merged, Box<Diagnostic>> {
    let mut paths = Vec::new();
    let (graph, roots) = pass.lower(shapes, |lw, f| {
        let mut found: Vec<Rc<AdaptedInst>> = Vec::new();
        for (_, b) in &f.scopes[0] {
            if let Lv::Model(m) = &b.value {
                collect(&m.members, &mut found);
            }
        }
        let mut roots = Vec::new();
        for a in found {
            let path = lw.vars.tensors[a.base].path.clone();
            // Hidden tensors (`~`) belong to unnamed models.
            if path.contains('~') || paths.contains(&path) {
                continue;
            }
            let span = Span { start: 0, end: 0 };
            let v = lw.adapted_weight(f, &a, span)?;
            let node = lw.tensor(f, v, span)?;
            // A weight of the initial values or of data (no stdlib adapter's) is not a function
            // of the checkpoint's tensors alone: it is left out rather than merged wrongly.
            if super::metrics::reads_input_from(&lw.g, node, lw.vars.tensors.len()) {
                continue;
            }
            roots.push(node);
            paths.push(path);
        }
        Ok(roots)
    })?;
    Ok(Merged { graph, weights: paths.into_iter().zip(roots).collect() })
}

/// Every adapter below these members, each once.
fn collect(members: &[(String, Member)], out: &mut Vec<Rc<AdaptedInst>>) {
    for (_, m) in members {
        match m {
            Member::Adapted(a) if !out.iter().any(|b| Rc::ptr_eq(a, b)) => out.push(a.clone()),
            Member::Model(sub) => collect(&sub.members, out),
            _ => {}
        }
    }
}
