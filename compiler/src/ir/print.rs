//! A readable dump of a graph, one node per line: `%3 = mul %1, %2 : [8, 6]`. Used by the REPL's
//! `:ir` and by snapshot tests; stable across runs.

use super::{Graph, Op};
use std::fmt::Write as _;

/// Prints a graph.
pub fn print_graph(g: &Graph) -> String {
    let mut s = String::new();
    for (k, slot) in g.slots.iter().enumerate() {
        let _ = writeln!(s, "state s{k} {} : {:?}", slot.name, slot.shape);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let _ = writeln!(s, "%{i} = {} : {:?}", op_text(&n.op), n.shape);
    }
    for (slot, id) in &g.state_writes {
        let _ = writeln!(s, "s{slot} <- %{id}");
    }
    let _ = writeln!(s, "return %{}", g.output);
    s
}

/// One operation as the dump prints it, e.g. `mul %1, %2`.
pub fn op_text(op: &Op) -> String {
    let lower = |x: &dyn std::fmt::Debug| format!("{x:?}").to_lowercase();
    match op {
        Op::Const(c) => format!("const {c}"),
        Op::Fill(c) => format!("fill {c}"),
        Op::Step => "step".into(),
        Op::Input(k) => format!("input {k}"),
        Op::Param => "param".into(),
        Op::State(k) => format!("state s{k}"),
        Op::Unary(u, a) => format!("{} %{a}", lower(u)),
        Op::Binary(b, x, y) => format!("{} %{x}, %{y}", lower(b)),
        Op::Select(c, a, b) => format!("select %{c}, %{a}, %{b}"),
        Op::Reduce { op, arg, axes, keepdims } => {
            format!("{} %{arg} axes={axes:?}{}", lower(op), if *keepdims { " keepdims" } else { "" })
        }
        Op::Group { arg, site } => format!("group_sum %{arg} site={site}"),
        Op::MatMul(a, b) => format!("matmul %{a}, %{b}"),
        Op::Transpose(a) => format!("transpose %{a}"),
        Op::Reshape(a) => format!("reshape %{a}"),
        Op::Expand(a) => format!("expand %{a}"),
        Op::Slice { arg, ranges, drop } => format!("slice %{arg} {ranges:?} drop={drop:?}"),
        Op::Embed { arg, ranges, drop } => format!("embed %{arg} {ranges:?} drop={drop:?}"),
        Op::Concat { args, axis } => {
            let a: Vec<String> = args.iter().map(|x| format!("%{x}")).collect();
            format!("concat [{}] axis={axis}", a.join(", "))
        }
        Op::Random { dist, stream } => format!("random {} stream={stream}", lower(dist)),
        Op::Linalg(k, args) => {
            let a: Vec<String> = args.iter().map(|x| format!("%{x}")).collect();
            format!("{} {}", lower(k), a.join(", "))
        }
        Op::Output(a, k) => format!("output %{a}.{k}"),
        Op::Diag(a) => format!("diag %{a}"),
        Op::Triangle(a, upper) => format!("{} %{a}", if *upper { "triu" } else { "tril" }),
        Op::Recorded { name, arg } => format!("recorded {name:?} %{arg}"),
    }
}
