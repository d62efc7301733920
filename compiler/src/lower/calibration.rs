//! Values an experiment computes once, at initialization, from its models' initial tensors: the
//! data-driven initializations (LoRA-GA and LoRA-SB start from a calibration batch's gradient,
//! EVA from a layer's inputs). `grad(f, p)` is the gradient of the scalar `f` with respect to the
//! model tensor `p` (or an adapted weight), `layer_inputs(y, p)` the rows that the layer weight
//! `p` [out, in] multiplies while `y` is computed. Both lower `f` (or `y`) into the init graph
//! with `p` standing for a node of its own, so that only the uses of `p` count: tensors made from
//! the same initial value (a copy `b = a`, a teacher `a with w += ...`) are other tensors.

use super::model::VarMode;
use super::{error, Frame, LResult, Lowerer, Lv, UNSUPPORTED};
use crate::diag::codes;
use crate::ir::{NodeId, Op};
use crate::syntax::ast::{Arg, Span};

impl Lowerer<'_> {
    /// `grad(f, wrt)` or `layer_inputs(y, wrt)` (the arguments unevaluated).
    pub(crate) fn calibration(&mut self, f: &mut Frame, name: &str, args: &[Arg], span: Span) -> LResult<Lv> {
        if !matches!(self.vars.mode, VarMode::Init) {
            return Err(error(
                f,
                span,
                codes::MISPLACED_BUILTIN,
                format!("`{name}` is computed once, at initialization: bind it with a `let` of the experiment"),
            ));
        }
        let first_name = if name == "grad" { "f" } else { "y" };
        let pick = |key: &str, pos: usize| {
            args.iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
                .or_else(|| args.iter().filter(|a| a.name.is_none()).nth(pos))
        };
        let (Some(first), Some(wrt)) = (pick(first_name, 0), pick("wrt", 1)) else {
            return Err(error(f, span, codes::MISSING_ARG, format!("`{name}` takes `{first_name}` and `wrt`")));
        };
        let (first, wrt) = (&first.value, &wrt.value);
        // An adapted weight is lowered once and every use shares it (its gradient is taken at that
        // node); a model's tensor gets a node of its own for the duration.
        let saved_shared = self.vars.shared_weights.replace(Vec::new());
        let target = self.expr(f, wrt);
        let (node, restore) = match target {
            Ok(Lv::Var(t)) => {
                let old = self.vars.tensors[t].init;
                let shape = self.vars.tensors[t].shape.clone();
                let leaf = self.node(Op::Reshape(old), shape);
                self.vars.tensors[t].init = leaf;
                (leaf, Some((t, old)))
            }
            Ok(Lv::T(node)) => (node, None),
            Ok(_) => {
                self.vars.shared_weights = saved_shared;
                return Err(error(
                    f,
                    wrt.span,
                    codes::TYPE_MISMATCH,
                    format!("`{name}` takes a tensor of a model, such as `base.w`"),
                ));
            }
            Err(d) => {
                self.vars.shared_weights = saved_shared;
                return Err(d);
            }
        };
        let before = self.g.nodes.len();
        let value = self.expr(f, first).and_then(|v| self.tensor(f, v, first.span));
        if let Some((t, old)) = restore {
            self.vars.tensors[t].init = old;
        }
        self.vars.shared_weights = saved_shared;
        let y = value?;
        if name == "grad" {
            if !self.g.shape(y).is_empty() {
                return Err(error(
                    f,
                    first.span,
                    codes::SHAPE_MISMATCH,
                    format!("`grad` differentiates a scalar, not a tensor of shape {:?}", self.g.shape(y)),
                ));
            }
            let stops = self.detached.clone();
            let g = crate::grad::differentiate_except(&mut self.g, y, &[node], &stops)
                .map_err(|e| error(f, span, codes::LOWERING, format!("cannot differentiate: {e}")))?;
            return Ok(Lv::T(g[0]));
        }
        self.layer_inputs(f, node, before, span)
    }

    /// The rows the weight `w` [out, in] multiplies in the nodes made since `since`: `x` of every
    /// product `x @ w^T` and `x^T` of every `w @ x`, leading axes merged, concatenated.
    fn layer_inputs(&mut self, f: &Frame, w: NodeId, since: usize, span: Span) -> LResult<Lv> {
        let shape = self.g.shape(w).to_vec();
        let [_, n] = shape[..] else {
            return Err(error(f, span, codes::RANK_MISMATCH, "`layer_inputs` takes a layer's weight [out, in]"));
        };
        let transposed: Vec<NodeId> =
            (since..self.g.nodes.len()).filter(|&i| self.g.nodes[i].op == Op::Transpose(w)).collect();
        let mut rows = Vec::new();
        for i in since..self.g.nodes.len() {
            let Op::MatMul(a, b) = self.g.nodes[i].op else { continue };
            let x = if transposed.contains(&b) {
                a
            } else if a == w && self.g.shape(b).len() == 2 {
                let s = self.g.shape(b).to_vec();
                self.node(Op::Transpose(b), vec![s[1], s[0]])
            } else if a == w || b == w || transposed.contains(&a) {
                return Err(error(
                    f,
                    span,
                    UNSUPPORTED,
                    "the weight is contracted on its output axis here; `layer_inputs` reads the inputs of \
                     `x @ w^T` or `w @ x` (a weight [out, in])",
                ));
            } else {
                continue;
            };
            let s = self.g.shape(x).to_vec();
            if s.last() != Some(&n) {
                return Err(error(
                    f,
                    span,
                    codes::SHAPE_MISMATCH,
                    format!("inputs of shape {s:?} for a weight {shape:?}"),
                ));
            }
            let count = s.iter().product::<usize>() / n;
            rows.push(if s.len() == 2 { x } else { self.node(Op::Reshape(x), vec![count, n]) });
        }
        match rows.len() {
            0 => Err(error(
                f,
                span,
                codes::LOWERING,
                "the weight multiplies nothing in this expression (`layer_inputs` finds `x @ w^T` and `w @ x`)",
            )),
            1 => Ok(Lv::T(rows[0])),
            _ => {
                let total = rows.iter().map(|&r| self.g.shape(r)[0]).sum();
                Ok(Lv::T(self.node(Op::Concat { args: rows, axis: 0 }, vec![total, n])))
            }
        }
    }
}
