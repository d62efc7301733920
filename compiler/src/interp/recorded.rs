//! Recorded values: what a run supplies for the [`Op::Recorded`] nodes of one parameter's graph.
//! A replay fills the table from a fixture (a peer's SVD bases, its random probes) so the run
//! makes the same arbitrary choices the peer made; without a table a recorded node is its
//! argument. Values are keyed by name and step, and a value holds from its step until the next
//! one of the same name, as a projector computed at step 10 is the one in use until step 20.

use crate::ir::{Graph, Op};
use ndarray::ArrayD;
use std::collections::BTreeMap;

/// The recorded values of one parameter: per name, the values by the step they start at.
#[derive(Clone, Debug)]
pub struct Recorded<T> {
    values: BTreeMap<String, BTreeMap<u64, ArrayD<T>>>,
}

impl<T> Default for Recorded<T> {
    fn default() -> Self {
        Recorded { values: BTreeMap::new() }
    }
}

impl<T> Recorded<T> {
    /// An empty table: every recorded node computes its argument.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` for `name` from `step` (1-based) on, replacing a value given for the same
    /// name and step.
    pub fn insert(&mut self, name: impl Into<String>, step: u64, value: ArrayD<T>) {
        self.values.entry(name.into()).or_default().insert(step, value);
    }

    /// The value of `name` in force at `step`: the one recorded at the latest step not after it.
    /// `None` before its first recorded step, so the node computes its argument there.
    pub fn get(&self, name: &str, step: u64) -> Option<&ArrayD<T>> {
        self.values.get(name)?.range(..=step).next_back().map(|(_, v)| v)
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The recorded names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Checks the table against the graph it will serve: every name must be a recorded node of
    /// the graph and every value of that node's shape. A value no node reads is a mistake (a
    /// misspelled name, a rule without the choice) that would otherwise pass silently.
    pub fn check(&self, graph: &Graph) -> Result<(), String> {
        for (name, by_step) in &self.values {
            let shape = graph.nodes.iter().find_map(|n| match &n.op {
                Op::Recorded { name: m, .. } if m == name => Some(n.shape.as_slice()),
                _ => None,
            });
            let Some(shape) = shape else {
                return Err(format!("the rule records no value named \"{name}\""));
            };
            for (step, v) in by_step {
                if v.shape() != shape {
                    return Err(format!(
                        "the value of \"{name}\" recorded at step {step} has shape {:?}, the rule's {shape:?}",
                        v.shape()
                    ));
                }
            }
        }
        Ok(())
    }
}
