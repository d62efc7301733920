//! Adapters and SAM through `optic run`: the merged weight a checkpoint holds (`merged/<path>`)
//! is the adapter's formula applied to the checkpoint's own tensors after training; DoRA's
//! gradients follow PEFT's detached norm; orthogonal adapters keep orthogonal updates; one SAM
//! step is the closed form on a quadratic (with the group-wide norm, plain and adaptive), and
//! SAM with rho = 0 is its inner rule, bit for bit.

mod common;

use common::{optic, stderr};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("optic-adapters-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("temp dir");
    p
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 paths")
}

/// Runs `program` (written to a fresh directory with `files`) and returns the directory of its
/// run.
fn run(name: &str, program: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = temp(name);
    for (f, text) in files {
        std::fs::write(dir.join(f), text).expect("write");
    }
    std::fs::write(dir.join("e.opt"), program).expect("write");
    let o = optic(&["run", path(&dir.join("e.opt")), "--out", path(&dir.join("runs")), "--plain"]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    dir.join("runs/main")
}

fn checkpoint(run: &Path, step: u64) -> Vec<(String, ArrayD<f64>)> {
    optic_runtime::checkpoint::load(&run.join(format!("checkpoints/step_{step}.safetensors"))).expect("a checkpoint").0
}

fn get(named: &[(String, ArrayD<f64>)], name: &str) -> ArrayD<f64> {
    named.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no `{name}` in the checkpoint")).1.clone()
}

fn mat(named: &[(String, ArrayD<f64>)], name: &str) -> Array2<f64> {
    get(named, name).into_dimensionality::<Ix2>().expect("a matrix")
}

fn vec1(named: &[(String, ArrayD<f64>)], name: &str) -> Array1<f64> {
    get(named, name).into_dimensionality::<Ix1>().expect("a vector")
}

fn metric_rows(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn close(what: &str, got: &Array2<f64>, want: &Array2<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol * scale, "{what}: {g} vs {w}\n{got}\nvs\n{want}");
    }
}

/// Students of a rank-1 teacher, each with one adapter on the first layer, trained by Adam for 5
/// steps; checkpoints hold the merged weights.
const STUDENTS: &str = "experiment e {
    dtype = \"f64\"
    seed = 1
    base = two_layer(8, 6)
    teacher = base with w += outer(unit(gaussian([6])), unit(gaussian([8])))
    let xc = gaussian([32, 8])
    let g0 = grad(mse(base(xc), teacher(xc)), base.w)
    let basis = orthogonal([8, 8])
    dora_s = base adapted by dora(rank = 2, alpha = 3, init_a = lora_ga_a(g0), init_b = lora_ga_b(g0)) on w
    dora0 = base adapted by dora(rank = 2, alpha = 3) on w
    sorsa_s = base adapted by sorsa(rank = 2, scale = 0.5) on w
    svfit_s = base adapted by svfit(rank = 2) on w
    bone_s = base adapted by bone(rank = 2) on w
    sb_s = base adapted by lora_sb(rank = 2, grad = g0) on w
    olora_s = base adapted by olora(rank = 2, alpha = 3) on w
    oa0 = base adapted by orthogonal_adaptation(rank = 2, basis = basis, index = 0) on w
    oa1 = base adapted by orthogonal_adaptation(rank = 2, basis = basis, index = 1) on w
    data x = gaussian([64, 8]) fresh every step
    loss = mse(dora_s(x), teacher(x)) + mse(dora0(x), teacher(x)) + mse(sorsa_s(x), teacher(x)) + 0.01 * sorsa_regularizer(sorsa_s.w.u, sorsa_s.w.vt)
        + mse(svfit_s(x), teacher(x)) + mse(bone_s(x), teacher(x)) + mse(sb_s(x), teacher(x))
        + mse(olora_s(x), teacher(x)) + mse(oa0(x), teacher(x)) + mse(oa1(x), 2 * teacher(x))
    optimize dora_s.w, dora0.w, sorsa_s.w, svfit_s.w, bone_s.w, sb_s.w, olora_s.w, oa0.w, oa1.w with adam(lr = 0.02)
    steps = 5
    log every 5 {
        loss
        reg = sorsa_regularizer(sorsa_s.w.u, sorsa_s.w.vt)
        g_dora = norm(grad(dora0.w))
        dora_b = norm(grad(dora0.w.b) - 1.5 * ((dora0.w.magnitude / norm(base.w + 1.5 * dora0.w.b @ dora0.w.a, axis = 1))[:, None] * grad(dora0.w)) @ dora0.w.a^T)
        dora_m = norm(grad(dora0.w.magnitude) - sum(grad(dora0.w) * dora0.w / dora0.w.magnitude[:, None], axis = 1))
    }
}
";

/// After training, every merged weight is its adapter's formula on the checkpoint's tensors.
#[test]
fn merged_weights_follow_each_adapter_after_training() {
    let run = run("merged", STUDENTS, &[]);
    let c = checkpoint(&run, 5);
    let tol = 1e-12;
    // DoRA: magnitude * V / ||V||_row, V = base + (alpha / rank) B A.
    let v = mat(&c, "tensor/dora_s.w") + mat(&c, "tensor/dora_s.w.b").dot(&mat(&c, "tensor/dora_s.w.a")) * 1.5;
    let m = vec1(&c, "tensor/dora_s.w.magnitude");
    let mut want = v.clone();
    for (mut row, (vr, mi)) in want.rows_mut().into_iter().zip(v.rows().into_iter().zip(&m)) {
        let norm = vr.iter().map(|x| x * x).sum::<f64>().sqrt();
        row.mapv_inplace(|x| mi * x / norm);
    }
    close("dora", &mat(&c, "merged/dora_s.w"), &want, tol);
    // SORSA: residual + scale (u * s) vt.
    let us = mat(&c, "tensor/sorsa_s.w.u") * &vec1(&c, "tensor/sorsa_s.w.s");
    let want = mat(&c, "tensor/sorsa_s.w") + us.dot(&mat(&c, "tensor/sorsa_s.w.vt")) * 0.5;
    close("sorsa", &mat(&c, "merged/sorsa_s.w"), &want, tol);
    // SVFit: residual + (u * s) vt, u and vt frozen at their initial values.
    let us = mat(&c, "tensor/svfit_s.w.u") * &vec1(&c, "tensor/svfit_s.w.s");
    let want = mat(&c, "tensor/svfit_s.w") + us.dot(&mat(&c, "tensor/svfit_s.w.vt"));
    close("svfit", &mat(&c, "merged/svfit_s.w"), &want, tol);
    // Bone: the block b^T [6, 2] added to each of the 4 column groups of w [6, 8].
    let b = mat(&c, "tensor/bone_s.w.b");
    let mut want = mat(&c, "tensor/bone_s.w");
    for ((i, j), x) in want.indexed_iter_mut() {
        *x += b[[j % 2, i]];
    }
    close("bone", &mat(&c, "merged/bone_s.w"), &want, tol);
    assert!(b.iter().any(|x| *x != 0.0), "bone's block trained");
    // LoRA-SB: w + B R A, B and A frozen.
    let want = mat(&c, "tensor/sb_s.w")
        + mat(&c, "tensor/sb_s.w.b").dot(&mat(&c, "tensor/sb_s.w.r")).dot(&mat(&c, "tensor/sb_s.w.a"));
    close("lora_sb", &mat(&c, "merged/sb_s.w"), &want, tol);
    // OLoRA: base + scaling B A.
    let want = mat(&c, "tensor/olora_s.w") + mat(&c, "tensor/olora_s.w.b").dot(&mat(&c, "tensor/olora_s.w.a")) * 1.5;
    close("olora", &mat(&c, "merged/olora_s.w"), &want, tol);
    // Orthogonal adaptation: the two updates have orthogonal row spaces, so they add without
    // interference: (W1 - W0) (W2 - W0)^T = 0.
    let w0 = mat(&c, "tensor/oa0.w");
    let (d0, d1) = (mat(&c, "merged/oa0.w") - &w0, mat(&c, "merged/oa1.w") - &w0);
    let scale = d0.iter().map(|x| x * x).sum::<f64>().sqrt() * d1.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!(scale > 1e-6, "both orthogonal adapters trained");
    close("orthogonal adaptation: d0 d1^T", &d0.dot(&d1.t()), &Array2::zeros((6, 6)), 1e-12 * scale);
    // The frozen basis blocks are the basis's columns.
    let basis = mat(&c, "tensor/basis");
    close("basis block", &mat(&c, "tensor/oa1.w.basis_i"), &basis.slice(ndarray::s![.., 2..4]).to_owned(), 0.0);
    // The logged gradients follow PEFT's DoRA (the row norm detached): dL/dB = s diag(m / ||V||) G A^T
    // and dL/dm = sum_row(G * V / ||V||), with G the gradient of the effective weight (dora0 starts
    // from B = 0, so its base is base.w).
    for row in metric_rows(&run) {
        let g = row["g_dora"].as_f64().expect("g_dora");
        assert!(g > 0.0, "{row}");
        for k in ["dora_b", "dora_m"] {
            let e = row[k].as_f64().expect("a metric");
            assert!(e <= 1e-12 * g.max(1.0), "{k} at step {}: {e:e} (gradient norm {g:e})", row["step"]);
        }
        let reg = row["reg"].as_f64().expect("reg");
        if row["step"] == 0 {
            assert!(reg < 1e-14, "SORSA's regularizer is zero at initialization: {reg:e}");
        }
    }
    let _ = std::fs::remove_dir_all(run.parent().and_then(Path::parent).expect("the test directory"));
}

/// A quadratic loss over two tensors of one group, 0.5 w^T A w - b^T w + 0.5 c |v|^2 - d^T v,
/// from w0 = [1, -2, 0.5], v0 = [0.3, -1], trained for `steps` steps by `rule`.
fn quadratic(rule: &str, steps: u64) -> String {
    format!(
        "model quad() {{
    param w[3] = fill([3], 0)
    param v[2] = fill([2], 0)
    forward(a[3, 3]) = 0.5 * sum(w * (a @ w))
}}
experiment e {{
    dtype = \"f64\"
    let a = load(\"a.csv\", \"a\")
    let b = load(\"b.csv\", \"x\")
    let d = load(\"d.csv\", \"x\")
    m = quad() with w = load(\"w0.csv\", \"x\"), v = load(\"v0.csv\", \"x\")
    loss = m(a) - sum(b * m.w) + 0.5 * 3 * sum(m.v^2) - sum(d * m.v)
    optimize m.* with {rule}
    steps = {steps}
    checkpoint every 1
}}
"
    )
}

const A: [[f64; 3]; 3] = [[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]];
const B: [f64; 3] = [0.1, -0.4, 1.0];
const D: [f64; 2] = [0.5, 2.0];
const W0: [f64; 3] = [1.0, -2.0, 0.5];
const V0: [f64; 2] = [0.3, -1.0];

fn quadratic_files() -> Vec<(&'static str, String)> {
    // A column with a header: `load(file, "x")` reads it as a vector.
    let col = |x: &[f64]| "x\n".to_string() + &x.iter().map(|v| format!("{v}\n")).collect::<String>();
    let a = A.iter().map(|r| r.iter().map(f64::to_string).collect::<Vec<_>>().join(",") + "\n").collect();
    vec![("a.csv", a), ("b.csv", col(&B)), ("d.csv", col(&D)), ("w0.csv", col(&W0)), ("v0.csv", col(&V0))]
}

/// The gradient of the quadratic at (w, v).
fn quadratic_grad(w: &[f64], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let gw = (0..3).map(|i| (0..3).map(|j| A[i][j] * w[j]).sum::<f64>() - B[i]).collect();
    let gv = (0..2).map(|i| 3.0 * v[i] - D[i]).collect();
    (gw, gv)
}

/// One SAM step (and one ASAM step) from (w0, v0) is the closed form: e = rho s^2 g / ||s g||
/// over both tensors (s = 1, or |theta| for ASAM), then SGD with the gradient at theta + e.
#[test]
fn one_sam_step_is_the_closed_form_on_a_quadratic() {
    let files = quadratic_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (lr, rho) = (0.1, 0.3);
    for adaptive in [false, true] {
        let rule = format!("sam(inner = sgd(lr = {lr}), rho = {rho}, adaptive = {adaptive})");
        let run = run(&format!("sam_{adaptive}"), &quadratic(&rule, 1), &files);
        let c = checkpoint(&run, 1);
        let (gw, gv) = quadratic_grad(&W0, &V0);
        let s = |theta: f64| if adaptive { theta.abs() } else { 1.0 };
        let norm = W0.iter().zip(&gw).chain(V0.iter().zip(&gv)).map(|(t, g)| (s(*t) * g).powi(2)).sum::<f64>().sqrt();
        let scale = rho / (norm + 1e-12);
        let pw: Vec<f64> = W0.iter().zip(&gw).map(|(t, g)| t + s(*t).powi(2) * g * scale).collect();
        let pv: Vec<f64> = V0.iter().zip(&gv).map(|(t, g)| t + s(*t).powi(2) * g * scale).collect();
        let (aw, av) = quadratic_grad(&pw, &pv);
        let w1: Vec<f64> = W0.iter().zip(&aw).map(|(t, g)| t - lr * g).collect();
        let v1: Vec<f64> = V0.iter().zip(&av).map(|(t, g)| t - lr * g).collect();
        for (name, got, want) in [("w", vec1(&c, "tensor/m.w"), w1), ("v", vec1(&c, "tensor/m.v"), v1)] {
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-14, "{rule}: {name} after one step is {got}, want {want:?}");
            }
        }
        // Plain SGD from the same point lands elsewhere: the perturbation matters.
        let sgd = W0[0] - lr * gw[0];
        assert!((vec1(&c, "tensor/m.w")[0] - sgd).abs() > 1e-3, "{rule} differs from SGD");
        let _ = std::fs::remove_dir_all(run.parent().and_then(Path::parent).expect("the test directory"));
    }
}

/// With rho = 0 the perturbed point is the parameter itself: SAM is its inner rule, bit for bit
/// (a network on fresh data, so each step's batch matters).
#[test]
fn sam_with_rho_zero_is_its_inner_rule() {
    let program = |rule: &str| {
        format!(
            "experiment e {{\n    seed = 4\n    base = two_layer(5, 7)\n    teacher = two_layer(5, 3)\n    \
             data x = gaussian([16, 5]) fresh every step\n    loss = mse(base(x), teacher(x))\n    \
             optimize base.* with {rule}\n    steps = 8\n    log every 1 {{ loss }}\n}}\n"
        )
    };
    let inner = "adam(lr = 0.01)";
    let a = run("rho0_sam", &program(&format!("sam(inner = {inner}, rho = 0)")), &[]);
    let b = run("rho0_inner", &program(inner), &[]);
    let read = |r: &Path| std::fs::read_to_string(r.join("metrics.jsonl")).expect("metrics");
    assert_eq!(read(&a), read(&b), "the losses of SAM with rho = 0 and of its inner rule");
    let (ca, cb) = (checkpoint(&a, 8), checkpoint(&b, 8));
    for name in ["tensor/base.w", "tensor/base.a"] {
        assert_eq!(get(&ca, name), get(&cb, name), "{name} after 8 steps");
    }
    let c = run("rho_sam", &program(&format!("sam(inner = {inner}, rho = 0.05)")), &[]);
    assert_ne!(read(&c), read(&b), "rho = 0.05 changes the trajectory");
    for r in [a, b, c] {
        let _ = std::fs::remove_dir_all(r.parent().and_then(Path::parent).expect("the test directory"));
    }
}

/// `grad_at` is general: a rule whose point depends on its state (a Nesterov-like look-ahead
/// along its momentum) sees the state as it stands before the step. Two steps on the quadratic,
/// in closed form: m1 = g(x0), x1 = x0 - lr m1; m2 = 0.9 m1 + g(x1 - lr m1), x2 = x1 - lr m2.
#[test]
fn grad_at_reads_the_rules_state_before_the_step() {
    let rule_decl = "rule look_ahead(lr = 0.1)(g) {\n    state m = zeros_like(g)\n    \
                     let ahead = grad_at(param - lr * m)\n    m = 0.9 * m + ahead\n    return -lr * m\n}\n";
    let files = quadratic_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let program = rule_decl.to_string() + &quadratic("look_ahead(lr = 0.1)", 2);
    let run = run("look_ahead", &program, &files);
    let lr = 0.1;
    let step = |x: &[f64], d: &[f64]| -> Vec<f64> { x.iter().zip(d).map(|(a, b)| a - lr * b).collect() };
    let (m1w, m1v) = quadratic_grad(&W0, &V0);
    let (w1, v1) = (step(&W0, &m1w), step(&V0, &m1v));
    let (aw, av) = quadratic_grad(&step(&w1, &m1w), &step(&v1, &m1v));
    let m2w: Vec<f64> = m1w.iter().zip(&aw).map(|(m, g)| 0.9 * m + g).collect();
    let m2v: Vec<f64> = m1v.iter().zip(&av).map(|(m, g)| 0.9 * m + g).collect();
    let (w2, v2) = (step(&w1, &m2w), step(&v1, &m2v));
    let c = checkpoint(&run, 2);
    for (name, got, want) in [("w", vec1(&c, "tensor/m.w"), w2), ("v", vec1(&c, "tensor/m.v"), v2)] {
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-14, "{name} after two steps is {got}, want {want:?}");
        }
    }
    let _ = std::fs::remove_dir_all(run.parent().and_then(Path::parent).expect("the test directory"));
}
