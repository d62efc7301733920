//! Recorded nodes: a supplied value replaces the argument (which then never runs), holds from
//! its step until the next one, is checked against the graph when supplied, and differentiates
//! as its argument.

use super::{arr, ramp, G};
use crate::interp::{eval_nodes, Interp, Recorded};
use crate::ir::{print_graph, Binary, Graph, Op, Reduce};
use ndarray::ArrayD;

/// A graph whose direction is `recorded("x", g)` for a parameter of shape [2].
fn pass_through() -> Graph {
    let mut g = Graph { inputs: vec![vec![2]], ..Graph::default() };
    let grad = g.push(Op::Input(0), vec![2]);
    g.output = g.push(Op::Recorded { name: "x".into(), arg: grad }, vec![2]);
    g
}

/// The directions of steps 1..=steps with gradient [step, -step].
fn run(it: &mut Interp<f64>, steps: u64) -> Vec<Vec<f64>> {
    let param = [ArrayD::zeros(vec![2])];
    (1..=steps)
        .map(|t| {
            let grad = vec![arr(&[2], &[t as f64, -(t as f64)])];
            it.step(t, &param, &[grad]).unwrap()[0].iter().copied().collect()
        })
        .collect()
}

#[test]
fn a_recorded_value_holds_from_its_step_until_the_next() {
    let mut it = Interp::<f64>::new(vec![pass_through()], 0);
    let mut table = Recorded::new();
    table.insert("x", 2, arr(&[2], &[20.0, 21.0]));
    table.insert("x", 4, arr(&[2], &[40.0, 41.0]));
    it.set_recorded(0, table).unwrap();
    let got = run(&mut it, 5);
    // step 1 precedes every recorded value: the argument (the gradient) runs
    let want = [[1.0, -1.0], [20.0, 21.0], [20.0, 21.0], [40.0, 41.0], [40.0, 41.0]];
    assert_eq!(got, want.map(|r| r.to_vec()));
    assert_eq!(it.recorded(0).map(|r| r.names().collect::<Vec<_>>()), Some(vec!["x"]));

    // Without a table the node is its argument.
    let mut plain = Interp::<f64>::new(vec![pass_through()], 0);
    assert_eq!(run(&mut plain, 2), [[1.0, -1.0], [2.0, -2.0]].map(|r| r.to_vec()));
}

#[test]
fn a_supplied_value_skips_its_argument() {
    // The argument would fail at run time (6 elements reshaped to 4).
    let mut g = G::new();
    let x = g.input(ramp(&[2, 3]));
    let bad = g.push(Op::Reshape(x), &[4]);
    let rec = g.push(Op::Recorded { name: "basis".into(), arg: bad }, &[4]);
    g.g.output = rec;
    let mut it = Interp::<f64>::new(vec![g.g.clone()], 0);
    let param = [ArrayD::zeros(vec![4])];
    let inputs = [g.inputs.clone()];
    let e = it.step(1, &param, &inputs).unwrap_err();
    assert_eq!(e.node, bad, "{e}");
    let mut table = Recorded::new();
    table.insert("basis", 1, arr(&[4], &[1.0, 2.0, 3.0, 4.0]));
    it.set_recorded(0, table).unwrap();
    assert_eq!(it.step(1, &param, &inputs).unwrap()[0], arr(&[4], &[1.0, 2.0, 3.0, 4.0]));
    assert!(print_graph(&g.g).contains("%2 = recorded \"basis\" %1 : [4]"), "{}", print_graph(&g.g));
}

#[test]
fn supplied_values_are_checked_against_the_graph() {
    let mut it = Interp::<f64>::new(vec![pass_through()], 0);
    let mut good = Recorded::new();
    good.insert("x", 1, arr(&[2], &[7.0, 8.0]));
    it.set_recorded(0, good).unwrap();

    let mut misnamed = Recorded::new();
    misnamed.insert("y", 1, arr(&[2], &[0.0, 0.0]));
    let e = it.set_recorded(0, misnamed).unwrap_err();
    assert!(e.contains("no value named \"y\""), "{e}");
    let mut misshapen = Recorded::new();
    misshapen.insert("x", 3, arr(&[3], &[0.0, 0.0, 0.0]));
    let e = it.set_recorded(0, misshapen).unwrap_err();
    assert!(e.contains("recorded at step 3 has shape [3], the rule's [2]"), "{e}");
    assert!(it.set_recorded(1, Recorded::new()).unwrap_err().contains("no graph 1"));
    // A rejected table leaves the previous one in place.
    assert_eq!(run(&mut it, 1), [[7.0, 8.0]]);
}

#[test]
fn a_recorded_value_differentiates_as_its_argument() {
    // loss = sum(recorded(x * x)): d loss / dx = 2x, whatever is recorded.
    let mut g = G::new();
    let x = g.input(ramp(&[3]));
    let sq = g.push(Op::Binary(Binary::Mul, x, x), &[3]);
    let rec = g.push(Op::Recorded { name: "sq".into(), arg: sq }, &[3]);
    let loss = g.push(Op::Reduce { op: Reduce::Sum, arg: rec, axes: vec![], keepdims: false }, &[]);
    let dx = crate::grad::differentiate(&mut g.g, loss, &[x]).unwrap()[0];
    let got = eval_nodes::<f64>(&g.g, 1, &g.inputs, 0, &[dx]).unwrap();
    assert_eq!(got[0], ramp(&[3]).mapv(|v| 2.0 * v));
}
