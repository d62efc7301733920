//! A readable dump of a schedule (`optic explain --stage fused`): each node with where it runs,
//! then each kernel with its loads, scalars, stores, body, and the bytes it moves per element.

use super::{Place, Schedule};
use crate::ir::{op_text, Graph};
use std::fmt::Write as _;

/// Prints a schedule of `g`, with `elem_size` bytes per element for the traffic figures.
pub fn print_schedule(g: &Graph, sched: &Schedule, elem_size: usize) -> String {
    let mut s = String::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let place = match sched.place[i] {
            Place::Host => "host".to_string(),
            Place::Kernel(k) => format!("k{k}"),
            Place::Library => "library".to_string(),
            Place::View => "view".to_string(),
            Place::Alias(t) => format!("= %{t}"),
            Place::Unused => "unused".to_string(),
        };
        let _ = writeln!(s, "%{i} = {} : {:?}  [{place}]", op_text(&n.op), n.shape);
    }
    for (k, kernel) in sched.kernels.iter().enumerate() {
        let ids = |v: &[usize]| v.iter().map(|x| format!("%{x}")).collect::<Vec<_>>().join(", ");
        let bytes = elem_size * (kernel.loads.len() + kernel.stores.len());
        let _ = writeln!(s, "kernel k{k}: {} elements, {bytes} bytes per element", kernel.len);
        let _ = writeln!(
            s,
            "  loads [{}] scalars [{}] stores [{}]",
            ids(&kernel.loads),
            ids(&kernel.scalars),
            ids(&kernel.stores)
        );
        let _ = write!(s, "{}", kernel.spec);
    }
    s
}
