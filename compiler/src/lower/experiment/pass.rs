//! The lowering of each graph run every step (the fresh data, the training step, the metrics,
//! the merged weights). Every such graph starts from the init pass's bindings, where each
//! experiment tensor is an input rather than a node, so it is lowered anew from the same scope;
//! the tensors move from one graph's lowerer to the next, and the count of random draws carries
//! over so that no two graphs draw the same stream.

use crate::check::Program;
use crate::diag::Diagnostic;
use crate::ir::{Graph, NodeId, Op};
use crate::lower::model::{TensorDef, VarMode};
use crate::lower::{Binding, Frame, LResult, Lowerer, Lv};
use crate::source::SourceFile;
use crate::syntax::ast::Expr;
use std::sync::Arc;

/// Lowers graphs run every step from the experiment's bindings.
pub(in crate::lower) struct Pass<'a> {
    /// The checked program.
    pub(super) prog: &'a Program,
    /// The experiment's file.
    pub(super) unit: usize,
    /// Its text.
    pub(super) source: &'a Arc<SourceFile>,
    /// The experiment's bindings after the init pass: every graph's starting scope.
    pub(super) scope: &'a [(String, Binding)],
    /// The experiment's tensors, lent to the lowerer of each graph while it runs.
    pub(super) tensors: Vec<TensorDef>,
    /// Random draws so far, across the graphs.
    pub(super) streams: u64,
    /// The data fields' names.
    pub(super) data: &'a [String],
    /// `let`s that depend on the step, lowered again in each graph.
    pub(super) deferred: &'a [(String, Expr)],
}

impl Pass<'_> {
    /// Lowers one graph with data fields of the given shapes: `body` returns its roots.
    pub(in crate::lower) fn lower(
        &mut self,
        data_shapes: &[Vec<usize>],
        body: impl FnOnce(&mut Lowerer, &mut Frame) -> LResult<Vec<NodeId>>,
    ) -> Result<(Graph, Vec<NodeId>), Box<Diagnostic>> {
        let mut lw = Lowerer::new(self.prog);
        lw.vars.mode = VarMode::Run;
        lw.vars.tensors = std::mem::take(&mut self.tensors);
        lw.streams = self.streams;
        let step = lw.node(Op::Step, Vec::new());
        let mut f = Frame {
            unit: self.unit,
            source: self.source.clone(),
            scopes: vec![self.scope.to_vec()],
            step,
            inst: None,
            conds: Vec::new(),
            reset: None,
        };
        let n = lw.vars.tensors.len();
        for (k, d) in self.data.iter().enumerate() {
            let node = lw.node(Op::Input(2 * n + k), data_shapes[k].clone());
            f.bind(d, Binding { value: Lv::T(node), mutable: false, slot: None });
        }
        let mut result = Ok(Vec::new());
        for (name, e) in self.deferred {
            match lw.expr(&mut f, e) {
                Ok(v) => f.bind(name, Binding { value: v, mutable: false, slot: None }),
                Err(d) => {
                    result = Err(d);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = body(&mut lw, &mut f);
        }
        self.streams = lw.streams;
        let mut inputs: Vec<Vec<usize>> = lw.vars.tensors.iter().map(|t| t.shape.clone()).collect();
        inputs.extend(lw.vars.tensors.iter().map(|t| t.shape.clone()));
        inputs.extend(data_shapes.iter().cloned());
        self.tensors = std::mem::take(&mut lw.vars.tensors);
        let roots = result?;
        lw.g.inputs = inputs;
        lw.g.output = roots.first().copied().unwrap_or(0);
        Ok((lw.g, roots))
    }
}
