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
    text
}

macro_rules! examples {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(concat!("example_", stringify!($name)), example_summary(stringify!($name)));
        }
    )*};
}

examples!(lora_teacher_student, rich_vs_lazy, matrix_sensing, deep_linear, amsgrad_counterexample, digits_mlp);

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

#[test]
fn bad_overrides_and_files_are_diagnosed() {
    let o = optic(&["run", "examples/matrix_sensing.opt", "--set", "nonexistent=3", "--plain"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nonexistent"), "{}", stderr(&o));
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
