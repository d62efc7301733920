//! Times one AdamW step on the executor, as W1 of shared/peers measures it (f32, constant
//! gradient, median over steps): `cargo run --release -p optic-compiler --example adamw_step --
//! [N] [TENSORS] [STEPS]`. A quick check while developing; `optic bench W1` is the real harness.
use ndarray::{ArrayD, IxDyn};
use optic_compiler::exec::RuleExec;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let (n, tensors, steps) = (
        args.first().copied().unwrap_or(1 << 20),
        args.get(1).copied().unwrap_or(1),
        args.get(2).copied().unwrap_or(200),
    );
    let shapes = vec![vec![n / tensors]; tensors];
    let graphs = optic_compiler::lower::compile_rule(
        "adamw(lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01)",
        &shapes,
    )
    .expect("compiles");
    let mut exec = RuleExec::<f32>::new(graphs, 0);
    let mut params: Vec<ArrayD<f32>> = shapes.iter().map(|s| ArrayD::from_elem(IxDyn(s), 0.5)).collect();
    let grads: Vec<Vec<ArrayD<f32>>> = shapes.iter().map(|s| vec![ArrayD::from_elem(IxDyn(s), 0.01)]).collect();
    let mut times = Vec::new();
    for step in 1..=steps as u64 {
        let t = Instant::now();
        exec.step_apply(step, &mut params, &grads).expect("runs");
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("{{\"workload\": \"W1\", \"impl\": \"optic\", \"size\": {n}, \"tensors\": {tensors}, \"median_s\": {median:.3e}, \"eff_gbs\": {:.1}}}", 28.0 * n as f64 / median / 1e9);
}
