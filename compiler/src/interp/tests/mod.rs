//! Tests of the reference interpreter on hand-built graphs: each operation against a naive
//! computation or known values ([`ops`]), evaluation order, state and group reductions ([`run`]),
//! random draws ([`random`]), linear algebra through the IR ([`linalg`]) and recorded values
//! supplied by a replay ([`recorded`]).

mod linalg;
mod ops;
mod random;
mod recorded;
mod run;

use super::{eval_once, InterpError, Scalar};
use crate::ir::{Graph, NodeId, Op};
use ndarray::{ArrayD, IxDyn};

/// An f64 tensor of `shape` from row-major values.
pub(super) fn arr(shape: &[usize], v: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
}

/// 0, 1, 2, ... in `shape`, shifted and scaled so values are distinct and of both signs.
pub(super) fn ramp(shape: &[usize]) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    arr(shape, &(0..n).map(|i| (i as f64 - n as f64 / 3.0) * 0.5).collect::<Vec<_>>())
}

/// A graph under construction whose inputs are given tensors.
pub(super) struct G {
    pub g: Graph,
    pub inputs: Vec<ArrayD<f64>>,
}

impl G {
    pub fn new() -> Self {
        G { g: Graph::default(), inputs: Vec::new() }
    }

    /// A node reading a new input with value `v`.
    pub fn input(&mut self, v: ArrayD<f64>) -> NodeId {
        let k = self.inputs.len();
        self.g.inputs.push(v.shape().to_vec());
        let id = self.g.push(Op::Input(k), v.shape().to_vec());
        self.inputs.push(v);
        id
    }

    pub fn push(&mut self, op: Op, shape: &[usize]) -> NodeId {
        self.g.push(op, shape.to_vec())
    }

    /// Evaluates node `out` (as the output) in type `T`, results in f64.
    pub fn eval_as<T: Scalar>(&mut self, out: NodeId) -> Result<ArrayD<f64>, InterpError> {
        self.g.output = out;
        let inputs: Vec<ArrayD<T>> = self.inputs.iter().map(|x| x.mapv(T::from_f64)).collect();
        Ok(eval_once::<T>(&self.g, 1, None, &inputs, 0)?.mapv(|x| Scalar::to_f64(x)))
    }

    /// Evaluates node `out` in f64.
    pub fn eval(&mut self, out: NodeId) -> Result<ArrayD<f64>, InterpError> {
        self.eval_as::<f64>(out)
    }
}

/// The largest absolute difference between two tensors of the same shape.
pub(super) fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
