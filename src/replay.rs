//! `optic replay`: runs an update rule on a golden fixture (format `opt-reference/1`, see
//! `../shared/reference/INDEX.md`) and writes the trajectory in the candidate format of
//! `check_reference.py`. Kind `update` feeds the recorded gradient sequence; kind `loss` is least
//! squares f(W) = 0.5 ||A W - B||_F^2 / n with exact gradients A^T (A W - B) / n, the loss recorded
//! before every step and once after the last. The rule expression is compiled with
//! `optic_compiler::lower::compile_rule` (one graph per tensor, in the fixture's tensor order, so
//! group reductions span them all) and run by the reference interpreter in f64 or f32; f32 rounds
//! the fixture's float64 inputs once at load, as the measured float32 peer runs did. [`compare`]
//! is `check_reference.py`'s pass/fail metric in Rust, used by `--check` and by `tests/golden.rs`
//! (which includes this file as a module, so the core is free of CLI concerns). `--inject`
//! supplies the choices a fixture recorded (`extra`) to the rule's `recorded` values ([`inject`]).

// A path relative to this file's directory, so the golden tests (which load this file by path)
// find it too.
#[path = "replay/inject.rs"]
pub mod inject;

use ndarray::{Array2, ArrayD, Ix2, IxDyn, Zip};
use optic_compiler::exec::RuleExec;
use optic_compiler::interp::{Interp, Scalar};
use optic_compiler::ir::Graph;
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

/// Where the gradients come from.
enum Source {
    /// Kind `update`: per tensor, the recorded gradients of every step, flat ([steps, *shape]).
    Grads(Vec<Vec<f64>>),
    /// Kind `loss`: least squares 0.5 ||A W - B||^2 / n on the single tensor W.
    LeastSquares { a: Array2<f64>, b: Array2<f64>, n: f64 },
}

/// A fixture's problem: the tensors, their initial values and where the gradients come from.
struct Problem {
    name: String,
    kind: &'static str,
    tensors: Vec<String>,
    shapes: Vec<Vec<usize>>,
    steps: usize,
    /// Per tensor, the initial value, flat.
    init: Vec<Vec<f64>>,
    source: Source,
}

/// The only objective of the `loss` fixtures, whitespace removed; the normalization follows `/`.
const LSQ_OBJECTIVE: &str = "f(W)=0.5*sum((A@W-B)**2)/";

impl Problem {
    /// Reads the parts of a fixture the replay needs, checking every shape.
    fn parse(fx: &Value) -> Result<Problem, String> {
        if let Some(format) = fx.get("format") {
            if format != "opt-reference/1" {
                return Err(format!("unsupported fixture format {format} (expected \"opt-reference/1\")"));
            }
        }
        let name = fx.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
        let kind = match fx.get("kind").and_then(Value::as_str) {
            Some("update") => "update",
            Some("loss") => "loss",
            Some(other) => {
                return Err(format!("fixture kind `{other}` is not supported by replay (only `update` and `loss`)"))
            }
            None => return Err("the fixture has no `kind`".into()),
        };
        let steps = fx.get("steps").and_then(Value::as_u64).ok_or("the fixture has no integer `steps`")? as usize;
        let tensors: Vec<String> = fx
            .get("tensors")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|t| t.as_str().map(String::from)).collect())
            .ok_or("the fixture has no `tensors` list of names")?;
        let shapes = tensors
            .iter()
            .map(|t| {
                fx.pointer(&format!("/shapes/{t}"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| format!("the fixture has no shape for tensor `{t}` in `shapes`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = fx.get("inputs").ok_or("the fixture has no `inputs`")?;
        let init = tensors
            .iter()
            .zip(&shapes)
            .map(|(t, s)| read(inputs, &format!("init/{t}"), s))
            .collect::<Result<Vec<_>, _>>()?;
        let source = if kind == "update" {
            let grads = tensors
                .iter()
                .zip(&shapes)
                .map(|(t, s)| read(inputs, &format!("grads/{t}"), &[&[steps][..], s].concat()))
                .collect::<Result<Vec<_>, _>>()?;
            Source::Grads(grads)
        } else {
            Problem::least_squares(inputs, &tensors, &shapes)?
        };
        Ok(Problem { name, kind, tensors, shapes, steps, init, source })
    }

    /// Reads `A`, `B` and the normalization of a `loss` fixture, checking the objective is the
    /// one the harness implements.
    fn least_squares(inputs: &Value, tensors: &[String], shapes: &[Vec<usize>]) -> Result<Source, String> {
        let objective = inputs.get("objective").and_then(Value::as_str).ok_or("the loss fixture has no `objective`")?;
        let compact: String = objective.chars().filter(|c| !c.is_whitespace()).collect();
        let n =
            compact.strip_prefix(LSQ_OBJECTIVE).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0).ok_or_else(
                || format!("unsupported objective `{objective}` (replay knows `0.5*sum((A@W - B)**2)/n`)"),
            )?;
        if tensors != ["W"] {
            return Err(format!("a least-squares fixture must have the single tensor `W`, not {tensors:?}"));
        }
        let (k, m) = match shapes[0][..] {
            [k, m] => (k, m),
            _ => return Err(format!("W must be a matrix, not of shape {:?}", shapes[0])),
        };
        let rows = inputs.pointer("/A").and_then(Value::as_array).map_or(0, Vec::len);
        let a = Array2::from_shape_vec((rows, k), read(inputs, "A", &[rows, k])?).map_err(|e| e.to_string())?;
        let b = Array2::from_shape_vec((rows, m), read(inputs, "B", &[rows, m])?).map_err(|e| e.to_string())?;
        Ok(Source::LeastSquares { a, b, n: f64::from(n) })
    }

    /// Runs `step` for every step and records the parameters after each (and the loss).
    fn drive<T: Scalar>(&self, step: &mut StepFn<'_, T>) -> Result<Value, String> {
        // Inputs are converted (for f32: rounded) once, here.
        let cast = |v: &[f64]| v.iter().map(|&x| <T as Scalar>::from_f64(x)).collect::<Vec<T>>();
        let mut params = self
            .init
            .iter()
            .zip(&self.shapes)
            .map(|(v, s)| ArrayD::from_shape_vec(IxDyn(s), cast(v)).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let grads: Vec<Vec<T>> = match &self.source {
            Source::Grads(g) => g.iter().map(|v| cast(v)).collect(),
            Source::LeastSquares { .. } => Vec::new(),
        };
        let lsq = match &self.source {
            Source::LeastSquares { a, b, n } => Some((
                a.mapv(<T as Scalar>::from_f64),
                b.mapv(<T as Scalar>::from_f64),
                <T as Scalar>::from_f64(1.0 / n),
            )),
            Source::Grads(_) => None,
        };
        let mut trajectory: Vec<Vec<f64>> =
            self.shapes.iter().map(|s| Vec::with_capacity(self.steps * s.iter().product::<usize>())).collect();
        let mut loss = Vec::with_capacity(self.steps + 1);
        for t in 1..=self.steps {
            let inputs = if let Some((a, b, inv_n)) = &lsq {
                let (value, grad) = least_squares(a, b, *inv_n, &params[0])?;
                loss.push(value);
                vec![vec![grad]]
            } else {
                self.shapes
                    .iter()
                    .zip(&grads)
                    .map(|(s, g)| {
                        let size = s.iter().product::<usize>();
                        let slice = g[(t - 1) * size..t * size].to_vec();
                        ArrayD::from_shape_vec(IxDyn(s), slice).map(|g| vec![g]).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let directions = step(t as u64, &params, &inputs).map_err(|e| format!("step {t}: {e}"))?;
            if directions.len() != params.len() {
                return Err(format!("step {t}: {} directions for {} parameters", directions.len(), params.len()));
            }
            for (k, (p, d)) in params.iter_mut().zip(&directions).enumerate() {
                if p.shape() != d.shape() {
                    return Err(format!(
                        "step {t}: the direction for `{}` has shape {:?}, the parameter {:?}",
                        self.tensors[k],
                        d.shape(),
                        p.shape()
                    ));
                }
                Zip::from(&mut *p).and(d).for_each(|p, &d| *p += d);
                trajectory[k].extend(p.iter().map(|&x| <T as Scalar>::to_f64(x)));
            }
        }
        let mut out = Map::new();
        out.insert("name".into(), self.name.clone().into());
        out.insert("kind".into(), self.kind.into());
        let traj = self
            .tensors
            .iter()
            .zip(&self.shapes)
            .zip(&trajectory)
            .map(|((t, s), v)| (t.clone(), nest(v, &[&[self.steps][..], s].concat())))
            .collect::<Map<_, _>>();
        out.insert("trajectory".into(), Value::Object(traj));
        if let Some((a, b, inv_n)) = &lsq {
            loss.push(least_squares(a, b, *inv_n, &params[0])?.0);
            out.insert("loss".into(), Value::Array(loss.into_iter().map(number).collect()));
        }
        Ok(Value::Object(out))
    }
}

/// The least-squares loss 0.5 ||A W - B||^2 / n and its gradient A^T (A W - B) / n at `w`. The
/// gradient is computed in T, as a port running in T would; the loss, a diagnostic that feeds
/// nothing, is accumulated in f64 from the T residual.
fn least_squares<T: Scalar>(a: &Array2<T>, b: &Array2<T>, inv_n: T, w: &ArrayD<T>) -> Result<(f64, ArrayD<T>), String> {
    let w = w.view().into_dimensionality::<Ix2>().map_err(|e| format!("W is not a matrix: {e}"))?;
    let r = a.dot(&w) - b;
    let sum_sq: f64 = r.iter().map(|&x| <T as Scalar>::to_f64(x).powi(2)).sum();
    let loss = 0.5 * sum_sq * <T as Scalar>::to_f64(inv_n);
    let grad = a.t().dot(&r).mapv(|x| x * inv_n);
    Ok((loss, grad.into_dyn()))
}

/// Reads the numbers at `inputs/path` as a flat vector, checking they form `shape`.
fn read(inputs: &Value, path: &str, shape: &[usize]) -> Result<Vec<f64>, String> {
    let v = inputs.pointer(&format!("/{path}")).ok_or_else(|| format!("the fixture has no `inputs.{path}`"))?;
    let mut out = Vec::with_capacity(shape.iter().product());
    if flatten_shaped(v, shape, &mut out) {
        Ok(out)
    } else {
        Err(format!("`inputs.{}` is not an array of numbers of shape {shape:?}", path.replace('/', ".")))
    }
}

/// Appends the numbers of a nested JSON array to `out`; false unless it has exactly `shape`.
fn flatten_shaped(v: &Value, shape: &[usize], out: &mut Vec<f64>) -> bool {
    match shape.split_first() {
        None => v.as_f64().map(|x| out.push(x)).is_some(),
        Some((&n, rest)) => match v.as_array() {
            Some(items) if items.len() == n => items.iter().all(|x| flatten_shaped(x, rest, out)),
            _ => false,
        },
    }
}

/// A flat buffer as nested JSON arrays of `shape`.
fn nest(flat: &[f64], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => number(flat[0]),
        Some((&n, rest)) => {
            let size = rest.iter().product::<usize>();
            Value::Array((0..n).map(|i| nest(&flat[i * size..(i + 1) * size], rest)).collect())
        }
    }
}

/// A JSON number, or `null` for NaN and infinities (JSON has no such numbers).
fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

// ------------------------------------------------------------------------------------ comparison

/// The outcome of a passing [`compare`].
#[derive(Debug)]
pub struct Comparison {
    /// Steps compared (fewer than the fixture's when its float32 tolerance says so).
    pub steps: usize,
    /// Per tensor, the worst norm-scaled error max|c - r| / max|r| over the compared steps.
    pub worst: Vec<(String, f64)>,
    /// Why nothing was compared, when the fixture's tolerance marks this precision unusable.
    pub skipped: Option<String>,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.skipped {
            return write!(f, "not compared: {why}");
        }
        write!(f, "{} steps, worst scaled error", self.steps)?;
        for (t, e) in &self.worst {
            write!(f, " {t}={e:.1e}")?;
        }
        Ok(())
    }
}

/// One failing check, for the message.
struct Failure {
    step: usize,
    what: String,
    detail: String,
}

/// Compares a candidate (as [`replay`] writes it) with a reference fixture by
/// `check_reference.py`'s metric at the fixture's own tolerance for `precision`: per step and
/// tensor PASS if max|c - r| <= atol + rtol max|r|; losses |c - r| <= atol + rtol |r| (every
/// compared step, plus the final loss when all steps are compared); `lr_schedule` and
/// `beta1_schedule` when both sides have them, |c - r| <= 1e-15 + 1e-12 |r|. float32 compares
/// only `tolerance.float32.compare_steps` steps when given, or, as the script does, the prefix
/// `measured.f32_steps_within_1e-4` when the peer's own float32 run departs by more than 1e-2. A
/// tolerance marked unusable (`"usable": false`, or an rtol that is not a number such as "n/a")
/// skips the comparison. Unlike the script, a loss fixture's candidate without `loss` fails.
/// The error names the first failing step and tensor with the error's size and the bound.
pub fn compare(reference: &Value, candidate: &Value, precision: Dtype) -> Result<Comparison, String> {
    let key = precision.tolerance_key();
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("?");
    let tol = reference.pointer(&format!("/tolerance/{key}"));
    let (default_rtol, default_atol) = match precision {
        Dtype::F64 => (1e-12, 1e-14),
        Dtype::F32 => (1e-5, 1e-7),
    };
    let skip = |why: String| Ok(Comparison { steps: 0, worst: Vec::new(), skipped: Some(why) });
    if tol.and_then(|t| t.get("usable")).and_then(Value::as_bool) == Some(false) {
        let why = tol.and_then(|t| t.get("why")).and_then(Value::as_str).unwrap_or("marked unusable");
        return skip(format!("the {key} tolerance of {name} is unusable: {why}"));
    }
    let tol_value = |field: &str, default: f64| match tol.and_then(|t| t.get(field)) {
        None => Some(default),
        Some(v) => v.as_f64(),
    };
    let (Some(rtol), Some(atol)) = (tol_value("rtol", default_rtol), tol_value("atol", default_atol)) else {
        return skip(format!("the {key} tolerance of {name} is not a number (n/a)"));
    };

    let rtraj = reference.get("trajectory").and_then(Value::as_object).ok_or("the reference has no `trajectory`")?;
    let ctraj = candidate.get("trajectory").and_then(Value::as_object).ok_or("the candidate has no `trajectory`")?;
    let steps = match reference.get("steps").and_then(Value::as_u64) {
        Some(s) => s as usize,
        None => rtraj.values().next().and_then(Value::as_array).map_or(0, Vec::len),
    };
    let mut nsteps = steps;
    if precision == Dtype::F32 {
        if let Some(n) = tol.and_then(|t| t.get("compare_steps")).and_then(Value::as_u64) {
            nsteps = nsteps.min(n as usize);
        } else if reference.pointer("/measured/f32_peer_max_scaled_err").and_then(Value::as_f64).unwrap_or(0.0) > 1e-2 {
            let within = reference.pointer("/measured/f32_steps_within_1e-4").and_then(Value::as_u64);
            nsteps = within.map_or(steps, |n| n as usize).max(1);
        }
    }

    let mut failures: Vec<Failure> = Vec::new();
    let mut worst = Vec::new();
    for (t, rsteps) in rtraj {
        let rsteps = rsteps.as_array().ok_or_else(|| format!("reference trajectory `{t}` is not a list"))?;
        let csteps = ctraj
            .get(t)
            .ok_or_else(|| format!("tensor `{t}` is missing from the candidate"))?
            .as_array()
            .ok_or_else(|| format!("candidate trajectory `{t}` is not a list"))?;
        if csteps.len() < nsteps || rsteps.len() < nsteps {
            return Err(format!(
                "`{t}`: candidate has {} steps, reference {}, need {nsteps}",
                csteps.len(),
                rsteps.len()
            ));
        }
        let mut worst_scaled = 0.0f64;
        let (mut r, mut c) = (Vec::new(), Vec::new());
        for s in 0..nsteps {
            r.clear();
            c.clear();
            flatten_any(&rsteps[s], &mut r).map_err(|e| format!("reference `{t}` step {}: {e}", s + 1))?;
            flatten_any(&csteps[s], &mut c).map_err(|e| format!("candidate `{t}` step {}: {e}", s + 1))?;
            if r.len() != c.len() {
                return Err(format!("`{t}` step {}: reference has {} elements, candidate {}", s + 1, r.len(), c.len()));
            }
            let scale = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            // (abs error, index); a non-finite candidate element is an infinite error
            let (err, at) = r.iter().zip(&c).enumerate().fold((0.0f64, 0), |(e, at), (i, (r, c))| {
                let d = if c.is_finite() { (c - r).abs() } else { f64::INFINITY };
                if d > e {
                    (d, i)
                } else {
                    (e, at)
                }
            });
            let scaled = if scale > 0.0 {
                err / scale
            } else if err == 0.0 {
                0.0
            } else {
                f64::INFINITY
            };
            worst_scaled = worst_scaled.max(scaled);
            let allowed = atol + rtol * scale;
            if err.is_nan() || err > allowed {
                failures.push(Failure {
                    step: s + 1,
                    what: format!("tensor `{t}`"),
                    detail: format!(
                        "max|c-r| = {err:.3e} at flat element {at} (ref {:e}, cand {:e}) > allowed {allowed:.3e}; \
                         scaled error {scaled:.2e} vs rtol {rtol:.0e}",
                        r[at], c[at]
                    ),
                });
            }
        }
        worst.push((t.clone(), worst_scaled));
    }

    if let Some(rloss) = reference.get("loss").and_then(Value::as_array) {
        let closs = candidate.get("loss").and_then(Value::as_array).ok_or("the candidate has no `loss`")?;
        let mut check = |s: usize, label: String| {
            let r = rloss.get(s).and_then(Value::as_f64);
            let c = closs.get(s).map(|v| v.as_f64().unwrap_or(f64::NAN));
            match (r, c) {
                (Some(r), Some(c)) => {
                    let d = if c.is_finite() { (c - r).abs() } else { f64::INFINITY };
                    let allowed = atol + rtol * r.abs();
                    if d > allowed {
                        let rel = d / r.abs();
                        failures.push(Failure {
                            step: s + 1,
                            what: label,
                            detail: format!(
                                "ref {r:e}, cand {c:e}, |c-r| = {d:.3e} > allowed {allowed:.3e} (rel {rel:.2e})"
                            ),
                        });
                    }
                }
                (Some(_), None) => failures.push(Failure { step: s + 1, what: label, detail: "missing".into() }),
                _ => {}
            }
        };
        for s in 0..nsteps {
            check(s, "loss before the step".into());
        }
        if nsteps == steps && rloss.len() > steps {
            check(steps, "final loss".into());
        }
    }

    for key in ["lr_schedule", "beta1_schedule"] {
        if let (Some(r), Some(c)) =
            (reference.get(key).and_then(Value::as_array), candidate.get(key).and_then(Value::as_array))
        {
            for (s, (r, c)) in r.iter().zip(c).enumerate() {
                let (r, c) = (r.as_f64().unwrap_or(f64::NAN), c.as_f64().unwrap_or(f64::NAN));
                let d = (r - c).abs();
                if d.is_nan() || d > 1e-15 + 1e-12 * r.abs() {
                    failures.push(Failure { step: s + 1, what: key.into(), detail: format!("ref {r:e}, cand {c:e}") });
                }
            }
        }
    }

    if failures.is_empty() {
        return Ok(Comparison { steps: nsteps, worst, skipped: None });
    }
    failures.sort_by_key(|f| f.step);
    let first = &failures[0];
    let mut failing_steps: Vec<usize> = failures.iter().map(|f| f.step).collect();
    failing_steps.dedup();
    let worst_text: Vec<String> = worst.iter().map(|(t, e)| format!("{t}={e:.1e}")).collect();
    Err(format!(
        "{name} ({}, rtol {rtol:.0e}, atol {atol:.0e}): first failure at step {} in {}: {}; {} of {nsteps} steps fail; \
         worst scaled error per tensor: {}",
        precision.name(),
        first.step,
        first.what,
        first.detail,
        failing_steps.len(),
        worst_text.join(", ")
    ))
}

/// Appends the numbers of a nested JSON array (any shape) to `out`; `null` reads as NaN.
fn flatten_any(v: &Value, out: &mut Vec<f64>) -> Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten_any(x, out)),
        Value::Null => {
            out.push(f64::NAN);
            Ok(())
        }
        _ => v.as_f64().map(|x| out.push(x)).ok_or_else(|| format!("not a number: {v}")),
    }
}

// ------------------------------------------------------------------------------------ command line

/// What `optic replay` was asked to do.
pub struct Request {
    /// The fixture file.
    pub fixture: PathBuf,
    /// The rule expression.
    pub rule: String,
    /// The element type.
    pub dtype: Dtype,
    /// The seed of the rule's random draws.
    pub seed: u64,
    /// A schedule expression to evaluate and write as `lr_schedule`.
    pub lr_schedule: Option<String>,
    /// Where to write the JSON (stdout when absent, unless `check`).
    pub out: Option<PathBuf>,
    /// Compare with the fixture's trajectory and fail unless it agrees.
    pub check: bool,
    /// What runs the rule.
    pub backend: Backend,
    /// Supply the fixture's recorded choices (`extra`) to the rule's `recorded` values.
    pub inject: bool,
}

/// Runs `optic replay`: 0 on success, 1 when the fixture or the rule has a problem or `--check`
/// fails. Every problem is one message on stderr (rule diagnostics one line each).
pub fn run(req: &Request) -> ExitCode {
    match execute(req) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn execute(req: &Request) -> Result<ExitCode, String> {
    let path = req.fixture.display();
    let text = std::fs::read_to_string(&req.fixture).map_err(|e| format!("cannot read {path}: {e}"))?;
    let fixture: Value = serde_json::from_str(&text).map_err(|e| format!("{path} is not valid JSON: {e}"))?;
    let mut out = replay_on(&fixture, &req.rule, req.dtype, req.seed, req.inject, req.backend)
        .map_err(|e| format!("{path}: {e}"))?;
    if let Some(schedule) = &req.lr_schedule {
        let steps = fixture.get("steps").and_then(Value::as_u64).unwrap_or(0) as usize;
        let values = schedule_values(schedule, steps, req.seed).map_err(|e| format!("--lr-schedule: {e}"))?;
        out["lr_schedule"] = Value::Array(values.into_iter().map(number).collect());
    }
    let (text, non_finite) = to_json_text(&out);
    if non_finite {
        eprintln!("warning: the trajectory has non-finite values (written as NaN)");
    }
    match &req.out {
        Some(file) => write_file(file, &text)?,
        None if !req.check => println!("{text}"),
        None => {}
    }
    if req.check {
        let name = fixture.get("name").and_then(Value::as_str).unwrap_or("?");
        match compare(&fixture, &out, req.dtype) {
            Ok(c) => eprintln!("{name}: PASS ({}): {c}", req.dtype.name()),
            Err(msg) => {
                eprintln!("FAIL: {msg}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, format!("{text}\n")).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// Compact JSON, except that `null` (only ever a non-finite number here) is written `NaN`, the
/// token Python's json module (and so check_reference.py) reads as a number: a diverged
/// trajectory then fails the check instead of crashing it. Also says whether a `NaN` was written.
fn to_json_text(v: &Value) -> (String, bool) {
    fn write(v: &Value, out: &mut String, nan: &mut bool) {
        match v {
            Value::Null => {
                *nan = true;
                out.push_str("NaN")
            }
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out, nan);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, x)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(x, out, nan);
                }
                out.push('}');
            }
            // numbers (shortest round-trip form), strings (escaped) and booleans as serde_json writes them
            other => out.push_str(&other.to_string()),
        }
    }
    let (mut out, mut nan) = (String::new(), false);
    write(v, &mut out, &mut nan);
    (out, nan)
}
