//! Model fixtures: `tests/golden/models/*.opt` are experiments that load the initial weights
//! and data of `../shared/reference/model_*.json` (copied next to them, with their inputs as
//! .npz written by `tools/model_fixture_inputs.py`) and train as the peer did. Each runs through
//! `optic run` in f64 and f32 with a checkpoint every step; the checkpointed parameters and the
//! logged losses must match the fixture's trajectory at its own tolerance (`replay::compare`,
//! check_reference.py's metric). Parameter names map from the fixture's (`W1`) to the
//! experiment's paths (`student.w1`) in the table below.

// Only `compare` and `Dtype` of replay.rs are used here.
#[allow(dead_code)]
#[path = "../src/replay.rs"]
mod replay;

mod common;

use common::{optic, stderr};
use replay::{compare, Dtype};
use serde_json::{json, Value};
use std::path::Path;

/// (fixture, [(fixture tensor, experiment path)]).
const MODELS: &[(&str, &[(&str, &str)])] = &[
    ("model_mlp_relu_adam", &[("W1", "student.w1"), ("b1", "student.b1"), ("W2", "student.w2"), ("b2", "student.b2")]),
    ("model_lora_adam", &[("A", "student.w.a"), ("B", "student.w.b")]),
    ("model_softmax_ce_sgd_momentum", &[("W", "model.w"), ("b", "model.b")]),
];

fn check(name: &str) {
    let (_, tensors) = MODELS.iter().find(|m| m.0 == name).expect("listed");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/models");
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("fixture"))
            .expect("JSON");
    let steps = reference["steps"].as_u64().expect("steps");
    let mut failures = Vec::new();
    for (dtype, flag) in [(Dtype::F64, "f64"), (Dtype::F32, "f32")] {
        let out = std::env::temp_dir().join(format!("optic-models-{}-{name}-{flag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let file = dir.join(format!("{name}.opt"));
        let o = optic(&[
            "run",
            file.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--dtype",
            flag,
            "--plain",
        ]);
        assert!(o.status.success(), "{name} {flag}: optic run failed:\n{}", stderr(&o));
        let run = out.join("main");
        let mut trajectory = serde_json::Map::new();
        for (fixture_name, _) in tensors.iter() {
            trajectory.insert(fixture_name.to_string(), json!([]));
        }
        for step in 1..=steps {
            let (named, _) = optic_runtime::checkpoint::load(&run.join(format!("checkpoints/step_{step}.safetensors")))
                .expect("a checkpoint per step");
            for (fixture_name, path) in tensors.iter() {
                let (_, a) = named.iter().find(|(n, _)| *n == format!("tensor/{path}")).expect("the tensor is saved");
                let v: Value = if a.ndim() == 1 {
                    json!(a.iter().copied().collect::<Vec<f64>>())
                } else {
                    json!(a.outer_iter().map(|r| r.iter().copied().collect::<Vec<f64>>()).collect::<Vec<_>>())
                };
                trajectory[*fixture_name].as_array_mut().expect("an array").push(v);
            }
        }
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics");
        let loss: Vec<f64> = metrics
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["loss"].as_f64().expect("a loss"))
            .collect();
        assert_eq!(loss.len() as u64, steps + 1, "{name} {flag}: a loss before every step and after the last");
        let candidate = json!({"trajectory": trajectory, "loss": loss});
        match compare(&reference, &candidate, dtype) {
            Ok(c) => eprintln!("{name} {flag}: PASS, {c}"),
            Err(e) => failures.push(format!("{flag}: {e}")),
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[test]
fn model_mlp_relu_adam() {
    check("model_mlp_relu_adam");
}

#[test]
fn model_lora_adam() {
    check("model_lora_adam");
}

#[test]
fn model_softmax_ce_sgd_momentum() {
    check("model_softmax_ce_sgd_momentum");
}
