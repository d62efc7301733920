//! `optic run`: every example runs and reproduces its finding (a snapshot of its summary,
//! metrics rounded to three significant digits, never timings), runs are bit-identical whatever
//! the thread count, a resumed run continues exactly, and faults are reported with the step and
//! the tensor after writing what was done.

mod common;

use common::{optic, stderr};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("optic-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 paths")
}

/// Three significant digits, so a snapshot pins the finding, not the last bits.
fn round(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    format!("{:.3e}", x)
}

/// Runs an example's base point and renders its summary for a snapshot.
fn example_summary(name: &str) -> String {
    example_run(name).0
}

/// Runs an example's base point: its summary rendered for a snapshot, and the summary itself.
fn example_run(name: &str) -> (String, Value) {
    let out = temp(name);
    let file = format!("examples/{name}.opt");
    let o = optic(&["run", &file, "--no-sweep", "--out", path(&out), "--plain"]);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    let run = out.join("main");
    for f in ["config.json", "metrics.jsonl", "summary.json"] {
        assert!(run.join(f).is_file(), "{name}: no {f}");
    }
    assert!(run.join("loss.svg").is_file() && run.join("loss.png").is_file(), "{name}: no plot");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).expect("summary")).expect("JSON");
    let mut text = format!("status: {}\nsteps: {}\n", summary["status"], summary["steps_completed"]);
    for (k, v) in summary["final"].as_object().expect("final metrics") {
        text += &format!("{k}: {}\n", v.as_f64().map_or(v.to_string(), round));
    }
    let _ = std::fs::remove_dir_all(&out);
    (text, summary)
}

macro_rules! examples {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(concat!("example_", stringify!($name)), example_summary(stringify!($name)));
        }
    )*};
}

examples!(
    lora_teacher_student,
    rich_vs_lazy,
    matrix_sensing,
    deep_linear,
    amsgrad_counterexample,
    digits_mlp,
    muon_vs_adam
);

// adapt: the adapters side by side
examples!(adapters_teacher_student);

/// GaLore vs Adam on low-rank regression: both reach the same loss, and the summary's
/// `optimizer_state` shows what each keeps, in f32: Adam's two moments of the 64 x 64 weight
/// (its AMSGrad maximum, unused, is a scalar) against GaLore's 64 x 4 projector and two 4 x 64
/// projected moments (and the inner Adam's scalar).
#[test]
fn galore_vs_adam() {
    let (mut text, summary) = example_run("galore_vs_adam");
    let groups = summary["optimizer_state"].as_array().expect("optimizer_state");
    let bytes = |rule_start: &str| {
        let g = groups.iter().find(|g| g["rule"].as_str().is_some_and(|r| r.starts_with(rule_start))).expect("group");
        assert_eq!(g["parameters"], 64 * 64);
        g["bytes_per_parameter"].as_f64().expect("a number")
    };
    let (adam, galore) = (bytes("adam"), bytes("galore"));
    assert_eq!(adam, (2 * 64 * 64 + 1) as f64 * 4.0 / 4096.0);
    assert_eq!(galore, (3 * 64 * 4 + 1) as f64 * 4.0 / 4096.0);
    for g in groups {
        text += &format!(
            "optimizer state of {}: {} B/param\n",
            g["tensors"][0],
            round(g["bytes_per_parameter"].as_f64().expect("a number"))
        );
    }
    insta::assert_snapshot!("example_galore_vs_adam", text);
}

fn metrics(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics")
}

#[test]
fn same_numbers_with_one_and_two_threads() {
    let (a, b) = (temp("threads1"), temp("threads2"));
    for (dir, threads) in [(&a, "1"), (&b, "2")] {
        let o = optic(&[
            "run",
            "examples/matrix_sensing.opt",
            "--set",
            "steps=60",
            "--threads",
            threads,
            "--out",
            path(dir),
            "--plain",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let runs: Vec<_> =
        std::fs::read_dir(&a).expect("runs").filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
    assert_eq!(runs.len(), 2, "the sweep has two points");
    for r in runs {
        let name = r.file_name();
        assert_eq!(metrics(&a.join(&name)), metrics(&b.join(&name)), "{name:?} differs between 1 and 2 threads");
    }
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn resume_continues_exactly() {
    let out = temp("resume");
    let file = "tests/golden/models/model_softmax_ce_sgd_momentum.opt";
    let o = optic(&["run", file, "--out", path(&out), "--plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = out.join("main");
    let full = metrics(&run);
    let last = std::fs::read(run.join("checkpoints/step_50.safetensors")).expect("final checkpoint");
    // Interrupted after step 20: later checkpoints lost, the metrics file has run ahead.
    for s in 21..=50 {
        std::fs::remove_file(run.join(format!("checkpoints/step_{s}.safetensors"))).expect("a checkpoint per step");
    }
    let o = optic(&["run", file, "--out", path(&out), "--plain", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&run), full, "the resumed run logs what the uninterrupted one did");
    assert_eq!(std::fs::read(run.join("checkpoints/step_50.safetensors")).expect("final checkpoint"), last);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn divergence_stops_with_the_step_and_the_tensor() {
    let out = temp("diverge");
    std::fs::create_dir_all(&out).expect("temp dir");
    let file = out.join("diverge.opt");
    std::fs::write(
        &file,
        "model quartic() {\n    param x[3] = constant(2)\n    forward(t[n]) = t\n}\n\
         experiment blowup {\n    m = quartic()\n    loss = sum(m.x^4)\n    optimize m.x with sgd(lr = 10)\n    steps = 100\n    log every 1 {\n        loss\n    }\n}\n",
    )
    .expect("write");
    let o = optic(&["run", path(&file), "--out", path(&out.join("runs")), "--plain"]);
    assert!(!o.status.success(), "a diverging run fails");
    let err = stderr(&o);
    assert!(err.contains("step") && err.contains("m.x") || err.contains("loss"), "{err}");
    let run = out.join("runs/main");
    assert!(!metrics(&run).is_empty(), "the steps done are written");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).expect("summary")).expect("JSON");
    assert_eq!(summary["status"], "diverged");
    let _ = std::fs::remove_dir_all(out);
}

/// A run parses only the library declarations its file names, and those its `--set` values
/// name: `sigmoid` appears in neither the file nor anything it uses.
#[test]
fn overrides_may_name_library_declarations_the_file_does_not() {
    let out = temp("set_names_library");
    let o = optic(&[
        "run",
        "examples/matrix_sensing.opt",
        "--set",
        "lr=sigmoid(0) / 5",
        "--set",
        "steps=2",
        "--out",
        path(&out),
        "--plain",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn bad_overrides_and_files_are_diagnosed() {
    let o = optic(&["run", "examples/matrix_sensing.opt", "--set", "nonexistent=3", "--plain"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nonexistent"), "{}", stderr(&o));
    // A model binding is not a `let`: overriding it is an error, not a silently ignored value.
    let o = optic(&["run", "examples/matrix_sensing.opt", "--set", "exact=over", "--plain"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("`exact` is not a `let` or setting"), "{}", stderr(&o));
    let o = optic(&["run", "examples/matrix_sensing.opt", "--set", "novalue", "--plain"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = temp("badfile");
    std::fs::create_dir_all(&out).expect("temp dir");
    let file = out.join("bad.opt");
    std::fs::write(&file, "experiment e {\n    data x = load(\"missing.npz\")\n    m = linear(3, 1)\n    loss = mse(m(x), 0)\n    optimize m.* with sgd()\n    steps = 1\n}\n").expect("write");
    let o = optic(&["run", path(&file), "--plain"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.npz"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(out);
}

/// Writes `files` (name, text) into a fresh directory and runs `optic run` on the first with
/// `args`; returns the directory and the run's directory.
fn run_files(name: &str, files: &[(&str, &str)], args: &[&str]) -> (PathBuf, PathBuf, std::process::Output) {
    let out = temp(name);
    std::fs::create_dir_all(&out).expect("temp dir");
    for (f, text) in files {
        std::fs::write(out.join(f), text).expect("write");
    }
    let file = out.join(files[0].0);
    let runs = out.join("runs");
    let mut all = vec!["run", path(&file), "--out", path(&runs)];
    all.extend(args);
    let o = optic(&all);
    (out, runs.join("main"), o)
}

fn metric_rows(run: &Path) -> Vec<Value> {
    metrics(run).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn checkpoint(run: &Path, step: u64) -> Vec<(String, ndarray::ArrayD<f64>)> {
    optic_runtime::checkpoint::load(&run.join(format!("checkpoints/step_{step}.safetensors"))).expect("a checkpoint").0
}

fn tensor<'a>(named: &'a [(String, ndarray::ArrayD<f64>)], name: &str) -> &'a ndarray::ArrayD<f64> {
    &named.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no `{name}` in the checkpoint")).1
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol * (1.0 + want.abs()), "{what}: {got}, want {want}");
}

/// Least squares with an affine model: at parameters (w, b) the gradient of
/// mean((X w^T + b - y)^2) is (2/n) r^T X for w and (2/n) sum(r) for b, with r = X w^T + b - y.
/// The logged gradients at each step match these closed forms at the checkpointed parameters.
#[test]
fn logged_gradients_match_least_squares_in_closed_form() {
    let x = [[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-2.0, 0.0, 1.0], [1.5, 1.0, 0.5], [0.0, -0.5, -1.5]];
    let y = [1.0, -2.0, 0.5, 3.0, -1.0];
    let csv = |rows: Vec<String>| rows.join("\n") + "\n";
    let x_csv = csv(x.iter().map(|r| r.map(|v| v.to_string()).join(",")).collect());
    let y_csv = csv(y.iter().map(|v| v.to_string()).collect());
    let program = "experiment ls {\n    dtype = \"f64\"\n    m = linear(3, 1)\n    \
                   data x, y = (load(\"x.csv\", \"x\"), load(\"y.csv\", \"y\"))\n    loss = mse(m(x), y)\n    \
                   optimize m.* with sgd(lr = 0.05)\n    steps = 3\n    log every 1 {\n        loss\n        \
                   gw = norm(grad(m.w))\n        gb = grad(m.b)[0]\n        grad_norm\n    }\n    checkpoint every 1\n}\n";
    let (out, run, o) =
        run_files("grad_ls", &[("ls.opt", program), ("x.csv", &x_csv), ("y.csv", &y_csv)], &["--plain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = metric_rows(&run);
    assert_eq!(rows.len(), 4, "steps 0 to 3");
    let n = x.len() as f64;
    for row in &rows[1..] {
        let step = row["step"].as_u64().expect("a step");
        let named = checkpoint(&run, step);
        let (w, b) = (tensor(&named, "tensor/m.w"), tensor(&named, "tensor/m.b")[0]);
        let r: Vec<f64> =
            x.iter().zip(y).map(|(xi, yi)| (0..3).map(|j| xi[j] * w[[0, j]]).sum::<f64>() + b - yi).collect();
        let gw: Vec<f64> = (0..3).map(|j| 2.0 / n * r.iter().zip(&x).map(|(ri, xi)| ri * xi[j]).sum::<f64>()).collect();
        let gb = 2.0 / n * r.iter().sum::<f64>();
        let gw_norm = gw.iter().map(|v| v * v).sum::<f64>().sqrt();
        let loss = r.iter().map(|v| v * v).sum::<f64>() / n;
        close(&format!("loss at {step}"), row["loss"].as_f64().expect("loss"), loss, 1e-12);
        close(&format!("|grad w| at {step}"), row["gw"].as_f64().expect("gw"), gw_norm, 1e-12);
        close(&format!("grad b at {step}"), row["gb"].as_f64().expect("gb"), gb, 1e-12);
        let total = (gw_norm * gw_norm + gb * gb).sqrt();
        close(&format!("grad_norm at {step}"), row["grad_norm"].as_f64().expect("grad_norm"), total, 1e-12);
    }
    let _ = std::fs::remove_dir_all(out);
}

/// A LoRA student: the final checkpoint holds the merged weight `merged/student.w`, equal to
/// base + (alpha / rank) B A from the checkpoint's own factors; the gradient of the adapted
/// weight obeys the chain rule into its factors (grad A = s B^T G, grad B = s G A^T).
#[test]
fn adapters_are_merged_in_checkpoints() {
    let program = "model lin(d: int, k: int) {\n    param w[k, d] = gaussian(std = 0.5)\n    \
                   forward(x[n, d]) = x @ w^T\n}\n\
                   experiment adapt {\n    base = lin(4, 3)\n    teacher = base with w += 0.5\n    \
                   student = base adapted by lora(rank = 2, alpha = 3) on w\n    \
                   data x = gaussian([16, 4]) fresh every step\n    loss = mse(student(x), teacher(x))\n    \
                   optimize student.w.a, student.w.b with adam(lr = 0.05)\n    steps = 6\n    log every 3 {\n        \
                   loss\n        g_eff = norm(grad(student.w))\n        \
                   chain_a = norm(grad(student.w.a) - 1.5 * student.w.b^T @ grad(student.w))\n        \
                   chain_b = norm(grad(student.w.b) - 1.5 * grad(student.w) @ student.w.a^T)\n        \
                   g_b = norm(grad(student.w.b))\n    }\n}\n";
    for dtype in ["f64", "f32"] {
        let (out, run, o) = run_files(&format!("merge_{dtype}"), &[("adapt.opt", program)], &["--dtype", dtype]);
        assert!(o.status.success(), "{}", stderr(&o));
        let named = checkpoint(&run, 6);
        let base = tensor(&named, "tensor/student.w").view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
        let a = tensor(&named, "tensor/student.w.a").view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
        let b = tensor(&named, "tensor/student.w.b").view().into_dimensionality::<ndarray::Ix2>().expect("2-d");
        let merged = tensor(&named, "merged/student.w");
        let want = &base + &(b.dot(&a) * 1.5);
        assert_eq!(merged.shape(), &[3, 4]);
        let tol = if dtype == "f64" { 1e-12 } else { 1e-5 };
        for (g, w) in merged.iter().zip(want.iter()) {
            close("merged weight", *g, *w, tol);
        }
        assert!(b.iter().any(|v| *v != 0.0), "B has moved from zero");
        assert!(
            !named.iter().any(|(n, _)| n.starts_with("merged/") && n != "merged/student.w"),
            "only adapted weights"
        );
        for row in metric_rows(&run) {
            let g = row["g_eff"].as_f64().expect("g_eff");
            assert!(g > 0.0, "{row}");
            for k in ["chain_a", "chain_b"] {
                close(&format!("{k} at {}", row["step"]), row[k].as_f64().expect("a metric"), 0.0, tol.sqrt() * g);
            }
        }
        let _ = std::fs::remove_dir_all(out);
    }
}

/// `--progress plain` prints lines with the step, the loss and an ETA; `--progress none` prints
/// none; `--plain` alone keeps plain lines.
#[test]
fn plain_progress_lines_have_step_loss_and_eta() {
    let file = "tests/golden/models/model_softmax_ce_sgd_momentum.opt";
    for (args, lines) in
        [(vec!["--progress", "plain"], true), (vec!["--progress", "none"], false), (vec!["--plain"], true)]
    {
        let out = temp("progress");
        let mut all = vec!["run", file, "--out", path(&out)];
        all.extend(&args);
        let o = optic(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        let progress: Vec<&str> = err.lines().filter(|l| l.starts_with("[main] step ")).collect();
        if lines {
            assert!(progress.len() >= 10, "{args:?}: about ten lines: {err}");
            assert!(progress.last().expect("a line").starts_with("[main] step 50/50 loss "), "{err}");
            for l in &progress[1..] {
                assert!(l.contains(" loss ") && l.contains(" elapsed ") && l.contains(" ETA "), "{l}");
                assert!(!l.ends_with("ETA ?"), "an estimate once a step is timed: {l}");
            }
        } else {
            assert!(progress.is_empty(), "{args:?}: {err}");
        }
        let _ = std::fs::remove_dir_all(out);
    }
}
