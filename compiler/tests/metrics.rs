//! Metrics that read the loss's gradient (`grad(p)`, `grad_norm`), lowered from
//! `tests/diagnostics/valid/gradient_metrics.opt` and evaluated by the reference interpreter at
//! the initial values: each gradient matches a central finite difference of the logged loss, and
//! `grad_norm` is the norm over every trained tensor together.

use optic_compiler::interp::{eval_nodes, ArrayD};
use optic_compiler::lower::experiment::{lower_experiment, Plan, Split};

fn plan() -> Plan {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/diagnostics/valid/gradient_metrics.opt");
    let checked = optic_compiler::check::check_paths(&[file]);
    assert!(checked.is_ok(), "{}", checked.diagnostics.iter().map(|d| d.render_plain()).collect::<String>());
    optic_compiler::on_big_stack(|| lower_experiment(&checked.program, "e", &[]))
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
        .0
}

/// The inputs of the step graphs at initialization: tensors, initial tensors, the dataset.
fn inputs(plan: &Plan) -> Vec<ArrayD<f64>> {
    let mut roots: Vec<usize> = plan.tensors.iter().map(|t| t.init).collect();
    roots.extend(plan.datasets.iter().flat_map(|d| d.init_roots.iter().copied()));
    let mut vals = eval_nodes::<f64>(&plan.init, 0, &[], plan.seed, &roots).expect("init");
    let data = vals.split_off(plan.tensors.len());
    let mut all = vals.clone();
    all.extend(vals);
    all.extend(data);
    all
}

/// Every metric's value, by name.
fn metrics(plan: &Plan, inputs: &[ArrayD<f64>]) -> Vec<(String, f64)> {
    let m = plan.metrics.iter().find(|m| m.split == Split::Train).expect("training metrics");
    let roots: Vec<usize> = m.entries.iter().map(|e| e.1).collect();
    let vals = eval_nodes(&m.graph, 1, inputs, plan.seed, &roots).expect("metrics");
    m.entries.iter().zip(vals).map(|(e, v)| (e.0.clone(), v[ndarray::IxDyn(&[])])).collect()
}

fn get(ms: &[(String, f64)], name: &str) -> f64 {
    ms.iter().find(|m| m.0 == name).unwrap_or_else(|| panic!("no metric `{name}`")).1
}

fn index(plan: &Plan, path: &str) -> usize {
    plan.tensors.iter().position(|t| t.path == path).unwrap_or_else(|| panic!("no tensor `{path}`"))
}

#[test]
fn gradient_metrics_match_finite_differences() {
    let plan = plan();
    let names: Vec<&str> = plan.metrics[0].entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["loss", "grad_norm", "g_eff", "g_ratio", "g_col"]);
    let x = inputs(&plan);
    let ms = metrics(&plan, &x);
    let w = index(&plan, "plain.w");
    let h = 1e-6;
    let loss_at = |delta: f64| {
        let mut y = x.clone();
        y[w][[0, 1]] += delta;
        get(&metrics(&plan, &y), "loss")
    };
    let fd = (loss_at(h) - loss_at(-h)) / (2.0 * h);
    let g = get(&ms, "g_col");
    assert!((g - fd).abs() < 1e-6 * (1.0 + fd.abs()), "grad(plain.w)[0, 1] = {g}, finite difference {fd}");
    assert!(g != 0.0, "a gradient that moves");
}

/// The norm of the finite-difference gradient of the loss over the entries of these tensors.
fn fd_norm(plan: &Plan, x: &[ArrayD<f64>], tensors: &[usize]) -> f64 {
    let h = 1e-6;
    let mut sq = 0.0;
    for &t in tensors {
        for k in 0..x[t].len() {
            let at = |delta: f64| {
                let mut y = x.to_vec();
                y[t].as_slice_mut().expect("contiguous")[k] += delta;
                get(&metrics(plan, &y), "loss")
            };
            sq += ((at(h) - at(-h)) / (2.0 * h)).powi(2);
        }
    }
    sq.sqrt()
}

#[test]
fn grad_norm_spans_every_trained_tensor() {
    let plan = plan();
    let x = inputs(&plan);
    let ms = metrics(&plan, &x);
    let trained: Vec<usize> = (0..plan.tensors.len()).filter(|&t| plan.trained[t]).collect();
    let paths: Vec<&str> = trained.iter().map(|&t| plan.tensors[t].path.as_str()).collect();
    assert_eq!(paths, ["student.w.a", "student.w.b", "plain.w"]);
    let (got, want) = (get(&ms, "grad_norm"), fd_norm(&plan, &x, &trained));
    assert!((got - want).abs() < 1e-6 * (1.0 + want), "grad_norm {got}, finite differences {want}");
    // The effective weight is base + (alpha / rank) B A: its gradient is the frozen base's.
    let (got, want) = (get(&ms, "g_eff"), fd_norm(&plan, &x, &[index(&plan, "student.w")]));
    assert!((got - want).abs() < 1e-6 * (1.0 + want), "|grad(student.w)| {got}, finite differences {want}");
    assert!(want > 0.0);
}
