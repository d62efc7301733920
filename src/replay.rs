//! `optic replay`: runs an update rule on a golden fixture (format `opt-reference/1`, see
//! `../shared/reference/INDEX.md`) and writes the trajectory in the candidate format of
//! `check_reference.py`. Kind `update` feeds the recorded gradient sequence; kind `loss` is least
//! squares f(W) = 0.5 ||A W - B||_F^2 / n with exact gradients A^T (A W - B) / n, the loss recorded
//! before every step and once after the last. The rule expression is compiled with
//! `optic_compiler::lower::compile_rule` (one graph per tensor, in the fixture's tensor order, so
//! group reductions span them all) and run by the reference interpreter in f64 or f32; f32 rounds
//! the fixture's float64 inputs once at load, as the measured float32 peer runs did. [`compare()`]
//! is `check_reference.py`'s pass/fail metric in Rust, used by `--check` and by `tests/golden.rs`
//! (which includes this file as a module, so the core is free of CLI concerns). `--inject`
//! supplies the choices a fixture recorded (`extra`) to the rule's `recorded` values ([`inject`]).
//!
//! The parts: [`problem`] reads a fixture and drives the training loop over it, [`mod@compare`]
//! holds the pass/fail metric, [`cli`] the `optic replay` command, [`inject`] the recorded choices.

// Paths relative to this file's directory, so the golden tests (which load this file by path)
// find them too.
#[path = "replay/cli.rs"]
mod cli;
#[path = "replay/compare.rs"]
mod compare;
#[path = "replay/inject.rs"]
pub mod inject;
#[path = "replay/problem.rs"]
mod problem;

// The command's entry points, for the binary; the test crates that include this file by path
// use none of them.
#[allow(unused_imports)]
pub use cli::{run, Request};
pub use compare::compare;

use ndarray::{ArrayD, IxDyn};
use optic_compiler::exec::RuleExec;
use optic_compiler::interp::{Interp, Scalar};
use optic_compiler::ir::Graph;
use problem::Problem;
use serde_json::Value;

/// The element type a rule runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// IEEE single precision; the fixture's inputs are rounded to it once at load.
    F32,
    /// IEEE double precision, the fixtures' own.
    F64,
}

impl Dtype {
    /// The name written in the output (`"f32"` or `"f64"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }

    /// The key of the fixture's `tolerance` entry for this precision.
    fn tolerance_key(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// One interpreter step as the harness sees it: (1-based step, parameters, per-parameter inputs
/// with the gradient first) to the directions added to the parameters.
pub type StepFn<'a, T> = dyn FnMut(u64, &[ArrayD<T>], &[Vec<ArrayD<T>>]) -> Result<Vec<ArrayD<T>>, String> + 'a;

/// Replays `fixture` through the rule expression `rule` (stdlib names in scope) in `dtype`, with
/// `seed` for the rule's random draws. Returns the candidate JSON:
/// `{"name", "kind", "dtype", "rule", "trajectory": {tensor: [steps, *shape]}, "loss"}` (`loss`
/// for kind `loss` only: steps + 1 values). Non-finite values are JSON `null`.
#[allow(dead_code)] // used by tests/golden.rs; the command runs `replay_injecting`
pub fn replay(fixture: &Value, rule: &str, dtype: Dtype, seed: u64) -> Result<Value, String> {
    replay_injecting(fixture, rule, dtype, seed, false)
}

/// [`replay`], and with `inject` the fixture's recorded choices (`extra.<name>.<tensor>`)
/// replace the rule's `recorded("<name>", ...)` values of that tensor; the output then lists the
/// names under `injected`. Fails if the fixture records nothing, or something the rule does not
/// mark as recorded.
pub fn replay_injecting(fixture: &Value, rule: &str, dtype: Dtype, seed: u64, inject: bool) -> Result<Value, String> {
    replay_on(fixture, rule, dtype, seed, inject, Backend::Jit)
}

/// What runs the rule: the executor (fused JIT kernels, the default) or the reference
/// interpreter (the oracle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Fused kernels compiled with Cranelift, library calls for the rest.
    Jit,
    /// The reference interpreter.
    Interp,
}

/// [`replay_injecting`] on the given backend.
pub fn replay_on(
    fixture: &Value,
    rule: &str,
    dtype: Dtype,
    seed: u64,
    inject: bool,
    backend: Backend,
) -> Result<Value, String> {
    let problem = Problem::parse(fixture)?;
    let named: Vec<(String, Vec<usize>)> =
        problem.tensors.iter().cloned().zip(problem.shapes.iter().cloned()).collect();
    let graphs = compile_named(rule, &named)?;
    let entries = if inject { inject::entries(fixture, &problem.tensors)? } else { Vec::new() };
    let mut out = match dtype {
        Dtype::F64 => drive::<f64>(&problem, graphs, seed, &entries, backend)?,
        Dtype::F32 => drive::<f32>(&problem, graphs, seed, &entries, backend)?,
    };
    if let Value::Object(map) = &mut out {
        map.insert("dtype".into(), dtype.name().into());
        map.insert("rule".into(), rule.into());
        if inject {
            let mut names: Vec<&str> = entries.iter().flatten().map(|e| e.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            map.insert("injected".into(), names.into());
        }
    }
    Ok(out)
}

/// Drives the problem with the rule's graphs on `backend`, the recorded entries supplied.
fn drive<T: optic_compiler::exec::Lane>(
    problem: &Problem,
    graphs: Vec<Graph>,
    seed: u64,
    entries: &[Vec<inject::Entry>],
    backend: Backend,
) -> Result<Value, String> {
    match backend {
        Backend::Jit => {
            let mut exec = RuleExec::<T>::new(graphs, seed);
            inject::supply::<T>(&mut |k, table| exec.set_recorded(k, table), &problem.tensors, entries)?;
            problem.drive::<T>(&mut |t, p, i| exec.step(t, p, i).map_err(|e| e.to_string()))
        }
        Backend::Interp => {
            let mut interp = Interp::<T>::new(graphs, seed);
            inject::supply::<T>(&mut |k, table| interp.set_recorded(k, table), &problem.tensors, entries)?;
            problem.drive::<T>(&mut |t, p, i| interp.step(t, p, i).map_err(|e| e.to_string()))
        }
    }
}

/// Replays `fixture` with a hand-written step function instead of a compiled rule: the harness
/// alone (inputs, least-squares gradients, recording), which lets tests check it without the
/// interpreter. The output is [`replay`]'s without `dtype` and `rule`.
#[allow(dead_code)] // used by tests/golden.rs and the REPL's `:replay`, not by `optic replay` itself
pub fn replay_with<T: Scalar>(fixture: &Value, step: &mut StepFn<'_, T>) -> Result<Value, String> {
    Problem::parse(fixture)?.drive(step)
}

/// The values of the schedule expression `schedule` at steps 1..=steps, evaluated in f64 as the
/// rule `scale(schedule)` on a one-element parameter with gradient 1 (the direction is then the
/// schedule's value). This is what `optic replay --lr-schedule` writes as `lr_schedule`.
pub fn schedule_values(schedule: &str, steps: usize, seed: u64) -> Result<Vec<f64>, String> {
    let rule = format!("scale({schedule})");
    let graphs = compile(&rule, &[vec![1]])?;
    let mut interp = Interp::<f64>::new(graphs, seed);
    let param = [ArrayD::<f64>::zeros(IxDyn(&[1]))];
    let one = [vec![ArrayD::<f64>::ones(IxDyn(&[1]))]];
    (1..=steps as u64)
        .map(|t| {
            let d = interp.step(t, &param, &one).map_err(|e| format!("schedule, step {t}: {e}"))?;
            d.first().and_then(|a| a.iter().next().copied()).ok_or_else(|| format!("schedule, step {t}: no value"))
        })
        .collect()
}

/// Compiles a rule expression for the fixture's named tensors, so rules may route by name
/// (`route(paths = ["b"], ...)`); diagnostics become one message.
fn compile_named(rule: &str, params: &[(String, Vec<usize>)]) -> Result<Vec<Graph>, String> {
    let graphs = optic_compiler::lower::compile_rule_named(None, rule, params)
        .map_err(|diags| diagnostics_message(rule, &diags))?;
    optic_compiler::lower::needs_training_loop(rule, &graphs)?;
    Ok(graphs)
}

/// Compiles a rule expression for the given parameter shapes; diagnostics become one message
/// (each rendered by `render_plain`).
fn compile(rule: &str, shapes: &[Vec<usize>]) -> Result<Vec<Graph>, String> {
    let graphs =
        optic_compiler::lower::compile_rule(rule, shapes).map_err(|diags| diagnostics_message(rule, &diags))?;
    if graphs.len() != shapes.len() {
        return Err(format!("the rule compiled to {} graphs for {} parameters", graphs.len(), shapes.len()));
    }
    optic_compiler::lower::needs_training_loop(rule, &graphs)?;
    Ok(graphs)
}

/// One message from a rule's diagnostics, each rendered by `render_plain`.
fn diagnostics_message(rule: &str, diags: &[optic_compiler::Diagnostic]) -> String {
    let mut msg = format!("the rule expression `{rule}` does not compile:");
    for d in diags {
        msg.push('\n');
        msg.push_str(&d.render_plain());
    }
    msg
}
