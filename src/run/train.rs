//! The training loop of one run, on the executor (fused JIT kernels; the interpreter's
//! operations for the rest), in f32 or f64. Step t (1-based):
//! read the data (a fresh draw, or the t-th batch of a fixed dataset), evaluate the loss and
//! its gradients, let each `optimize` group's rule turn gradients into directions, add them to
//! the tensors; every `log` period, evaluate the metrics on the training data and the held-out
//! rows. Metrics are logged at step 0 (the initialization) too. Every random draw is keyed by
//! (seed, stream, step), so a run is the same whatever the thread count, and a run resumed from
//! a checkpoint (tensors, rule states, step) continues exactly as it would have.

use super::batches::{fixed, Rows};
use super::output::RunDir;
use optic_compiler::exec::{GraphExec, Lane, RuleExec};
use optic_compiler::interp::ArrayD;
use optic_compiler::lower::experiment::{Plan, Split};
use std::collections::HashMap;

/// One line of metrics.
#[derive(Clone, Debug)]
pub struct Row {
    /// The step (0: before training).
    pub step: u64,
    /// (name, value) in the order of the `log` entries.
    pub values: Vec<(String, f64)>,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The last step completed.
    pub step: u64,
    /// A numerical fault that stopped the run: what, where and when.
    pub fault: Option<String>,
}

/// The random-draw key of the metrics' own fresh data at a step: far from every training step.
const EVAL_DRAW: u64 = 1 << 40;

/// The probe graphs of a group (`grad_at`): they give the points the gradient is taken at, from
/// the rule's state before the step, of which `reads` are the slots (per tensor) they need.
struct Probe<T: Lane> {
    exec: RuleExec<T>,
    reads: Vec<Vec<usize>>,
}

/// Everything one run keeps.
struct State<T: Lane> {
    /// Inputs of the step graphs: current tensors, initial tensors, data fields.
    inputs: Vec<ArrayD<T>>,
    rows: Vec<(usize, Rows<T>)>,
    interps: Vec<RuleExec<T>>,
    /// Per group whose rule evaluates the gradient at another point (`grad_at`, SAM).
    probes: Vec<Option<Probe<T>>>,
    /// The training step (loss and gradients), fresh data and each split's metrics, compiled
    /// once (kernels and buffers kept across steps).
    train: GraphExec<T>,
    fresh: GraphExec<T>,
    /// Per split, per set of entries due together.
    metrics: Vec<HashMap<Vec<usize>, GraphExec<T>>>,
    /// The training graph's values (loss, gradients), whose arrays the next step reuses.
    vals: Vec<ArrayD<T>>,
}

/// Runs a plan to its last step (or its first fault), writing through `dir`. `on_step` sees the
/// step and the training loss (for a progress display).
pub fn run<T: Lane>(
    plan: &Plan,
    dir: &mut RunDir,
    resume: bool,
    on_step: &mut dyn FnMut(u64, f64),
) -> Result<Outcome, String> {
    let n = plan.tensors.len();
    let mut st = start::<T>(plan)?;
    let mut first = 1;
    if resume {
        if let Some(step) = dir.restore::<T>(plan, &mut st.inputs[..n], &mut st.interps)? {
            first = step + 1;
        }
    }
    if first == 1 {
        let row = metrics(plan, &mut st, 0, true)?;
        dir.append(&row)?;
    }
    let mut done = first - 1;
    for step in first..=plan.steps {
        let loss = match train_step(plan, &mut st, step) {
            Ok(loss) => loss,
            Err(Fault::Numeric(msg)) => {
                dir.fault(&msg, step)?;
                return Ok(Outcome { step: done, fault: Some(msg) });
            }
            Err(Fault::Error(e)) => return Err(e),
        };
        done = step;
        on_step(step, loss);
        let last = step == plan.steps;
        if plan.metrics.iter().any(|m| m.entries.iter().any(|(_, _, every)| *every > 0 && step.is_multiple_of(*every)))
            || last
        {
            let row = metrics(plan, &mut st, step, last)?;
            if let Some((name, _)) = row.values.iter().find(|(_, v)| !v.is_finite()) {
                let msg = format!(
                    "metric `{name}` is {} at step {step}",
                    show_nonfinite(row.values.iter().find(|(n, _)| n == name).map_or(f64::NAN, |x| x.1))
                );
                dir.append(&row)?;
                dir.fault(&msg, step)?;
                return Ok(Outcome { step, fault: Some(msg) });
            }
            dir.append(&row)?;
        }
        if plan.checkpoint_every.is_some_and(|c| c > 0 && step.is_multiple_of(c)) || last {
            dir.checkpoint::<T>(plan, step, &st.inputs[..n], &st.interps)?;
        }
    }
    Ok(Outcome { step: done, fault: None })
}

enum Fault {
    Numeric(String),
    Error(String),
}

fn show_nonfinite(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else {
        "infinite"
    }
}

/// Evaluates the init graph and sets up the inputs, datasets and rules.
fn start<T: Lane>(plan: &Plan) -> Result<State<T>, String> {
    let n = plan.tensors.len();
    let files: Vec<ArrayD<T>> = plan.files.iter().map(|(_, a)| T::from_values(a.clone())).collect();
    let mut roots: Vec<usize> = plan.tensors.iter().map(|t| t.init).collect();
    for (_, d) in fixed(plan) {
        roots.extend(&d.init_roots);
    }
    let mut vals =
        GraphExec::new(plan.init.clone(), roots).run(0, &files, plan.seed).map_err(|e| format!("initializing: {e}"))?;
    let data_vals = vals.split_off(n);
    for (t, v) in plan.tensors.iter().zip(&vals) {
        if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
            return Err(format!("the initial value of `{}` contains {bad}", t.path));
        }
    }
    let mut inputs = vals.clone();
    inputs.extend(vals);
    inputs.extend(plan.data.iter().map(|d| ArrayD::zeros(d.batch_shape.clone())));
    let mut rows = Vec::new();
    let mut it = data_vals.into_iter();
    for (i, d) in fixed(plan) {
        let fields: Vec<ArrayD<T>> = d.fields.iter().map(|_| it.next().expect("one value per field")).collect();
        rows.push((i, Rows::new(d, fields, i, plan.seed)));
    }
    let interps = plan.groups.iter().map(|g| RuleExec::new(g.graphs.clone(), plan.seed)).collect();
    let probes = plan
        .groups
        .iter()
        .map(|g| {
            (!g.probes.is_empty()).then(|| Probe {
                exec: RuleExec::new(g.probes.clone(), plan.seed),
                reads: g.probes.iter().map(states_read).collect(),
            })
        })
        .collect();
    let mut train_roots = vec![plan.loss];
    train_roots.extend(plan.grads.iter().map(|g| g.1));
    let train = GraphExec::new(plan.train.clone(), train_roots);
    let fresh_roots = plan.datasets.iter().flat_map(|d| d.fresh_roots.iter().copied()).collect();
    let fresh = GraphExec::new(plan.fresh.clone(), fresh_roots);
    let metrics = plan.metrics.iter().map(|_| HashMap::new()).collect();
    Ok(State { inputs, rows, interps, probes, train, fresh, metrics, vals: Vec::new() })
}

/// The state slots a graph's output depends on.
fn states_read(g: &optic_compiler::ir::Graph) -> Vec<usize> {
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![g.output];
    let mut slots = Vec::new();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if let optic_compiler::ir::Op::State(k) = g.nodes[n].op {
            slots.push(k);
        }
        stack.extend(g.nodes[n].op.operands());
    }
    slots
}

/// The loss's gradient with group `gi`'s tensors moved to the points its rule asks for
/// (`grad_at`): the probe graphs give the points from the step's gradients and the rule's state
/// before the step; the training graph runs again there, on the same batch (the same data and
/// random draws); the tensors are put back. Returns the gradient of each of the group's tensors.
fn gradient_at_points<T: Lane>(
    plan: &Plan,
    st: &mut State<T>,
    gi: usize,
    step: u64,
    grads: &[ArrayD<T>],
) -> Result<Vec<ArrayD<T>>, Fault> {
    let group = &plan.groups[gi];
    let at = |t: usize| plan.grads.iter().position(|g| g.0 == t).expect("trained tensors have gradients");
    let Some(Probe { exec: probe, reads }) = st.probes[gi].as_mut() else { return Ok(Vec::new()) };
    for (k, slots) in reads.iter().enumerate() {
        for &slot in slots {
            if let Some(v) = st.interps[gi].state(k, slot) {
                probe.set_state(k, slot, v.clone()).map_err(Fault::Error)?;
            }
        }
    }
    let params: Vec<ArrayD<T>> = group.tensors.iter().map(|&t| st.inputs[t].clone()).collect();
    let ins: Vec<Vec<ArrayD<T>>> = group.tensors.iter().map(|&t| vec![grads[at(t)].clone()]).collect();
    let points = probe
        .step(step, &params, &ins)
        .map_err(|e| Fault::Error(format!("step {step}, rule `{}` choosing its point: {e}", group.rule)))?;
    for (p, &t) in points.iter().zip(&group.tensors) {
        if let Some(x) = p.iter().find(|x| !x.is_finite()) {
            return Err(Fault::Numeric(format!(
                "the point rule `{}` evaluates `{}` at contains {x} at step {step}",
                group.rule, plan.tensors[t].path
            )));
        }
    }
    for (&t, p) in group.tensors.iter().zip(points) {
        st.inputs[t] = p;
    }
    let vals = st.train.run(step, &st.inputs, plan.seed);
    for (&t, p) in group.tensors.iter().zip(params) {
        st.inputs[t] = p;
    }
    let vals = vals
        .map_err(|e| Fault::Error(format!("step {step}, the training graph at rule `{}`'s point: {e}", group.rule)))?;
    let mut out = Vec::with_capacity(group.tensors.len());
    for &t in &group.tensors {
        let g = vals[1 + at(t)].clone();
        if let Some(x) = g.iter().find(|x| !x.is_finite()) {
            return Err(Fault::Numeric(format!(
                "the gradient of `{}` at rule `{}`'s point contains {x} at step {step}",
                plan.tensors[t].path, group.rule
            )));
        }
        out.push(g);
    }
    Ok(out)
}

/// Sets the data inputs for a step (or, with `eval_key`, the metrics' own fresh draw).
fn load_data<T: Lane>(plan: &Plan, st: &mut State<T>, step: u64, fresh_key: u64) -> Result<(), String> {
    let n = plan.tensors.len();
    let fresh_roots: Vec<(usize, usize)> =
        plan.datasets.iter().flat_map(|d| d.fields.iter().copied().zip(d.fresh_roots.iter().copied())).collect();
    if !fresh_roots.is_empty() {
        let vals =
            st.fresh.run(fresh_key, &st.inputs, plan.seed).map_err(|e| format!("drawing data at step {step}: {e}"))?;
        for ((field, _), v) in fresh_roots.iter().zip(vals) {
            st.inputs[2 * n + field] = v;
        }
    }
    Ok(())
}

fn train_step<T: Lane>(plan: &Plan, st: &mut State<T>, step: u64) -> Result<f64, Fault> {
    let n = plan.tensors.len();
    load_data(plan, st, step, step).map_err(Fault::Error)?;
    for (i, rows) in &mut st.rows {
        let batch = rows.batch(step);
        for (&field, v) in plan.datasets[*i].fields.iter().zip(batch) {
            st.inputs[2 * n + field] = v;
        }
    }
    // The loss and gradients land in the arrays of the previous step (handed back below).
    let mut vals = std::mem::take(&mut st.vals);
    let stepped = step_with(plan, st, step, &mut vals);
    st.vals = vals;
    stepped
}

/// [`train_step`] with the training graph's values in `vals`: the gradients move into the rules
/// and back, so a step copies no tensor.
fn step_with<T: Lane>(plan: &Plan, st: &mut State<T>, step: u64, vals: &mut Vec<ArrayD<T>>) -> Result<f64, Fault> {
    st.train
        .run_into(step, &st.inputs, plan.seed, vals)
        .map_err(|e| Fault::Error(format!("step {step}, the training graph: {e}")))?;
    let loss = vals[0][ndarray::IxDyn(&[])].to_f64();
    if !loss.is_finite() {
        return Err(Fault::Numeric(format!("the loss is {} at step {step}", show_nonfinite(loss))));
    }
    let grads = &mut vals[1..];
    for ((t, _), g) in plan.grads.iter().zip(grads.iter()) {
        if let Some(x) = first_nonfinite(g) {
            return Err(Fault::Numeric(format!(
                "the gradient of `{}` contains {x} at step {step}",
                plan.tensors[*t].path
            )));
        }
    }
    // Every group's extra gradient is taken before any group updates its tensors.
    let mut extra = Vec::with_capacity(plan.groups.len());
    for gi in 0..plan.groups.len() {
        extra.push(gradient_at_points(plan, st, gi, step, grads)?);
    }
    for ((group, interp), mut extra) in plan.groups.iter().zip(&mut st.interps).zip(extra) {
        // The rule updates the tensors in place (the update fused into its kernels).
        let mut params: Vec<ArrayD<T>> = group
            .tensors
            .iter()
            .map(|&t| std::mem::replace(&mut st.inputs[t], ArrayD::zeros(ndarray::IxDyn(&[0]))))
            .collect();
        // Input 0 is the gradient; a rule asking for `grad_at` reads the one at its point as input 1.
        extra.reverse();
        // A tensor is in one group (the checker refuses a second `optimize`), so each gradient
        // moves into exactly one rule's inputs, and back.
        let at = |t: usize| plan.grads.iter().position(|g| g.0 == t).expect("trained tensors have gradients");
        let ins: Vec<Vec<ArrayD<T>>> = group
            .tensors
            .iter()
            .map(|&t| {
                let mut v = vec![std::mem::replace(&mut grads[at(t)], ArrayD::zeros(ndarray::IxDyn(&[0])))];
                v.extend(extra.pop());
                v
            })
            .collect();
        let applied = interp.step_apply(step, &mut params, &ins);
        for (&t, p) in group.tensors.iter().zip(params) {
            st.inputs[t] = p;
        }
        for (&t, v) in group.tensors.iter().zip(ins) {
            grads[at(t)] = v.into_iter().next().expect("the gradient is input 0");
        }
        applied.map_err(|e| Fault::Error(format!("step {step}, rule `{}`: {e}", group.rule)))?;
        for &t in &group.tensors {
            if let Some(x) = first_nonfinite(&st.inputs[t]) {
                return Err(Fault::Numeric(format!(
                    "`{}` contains {x} after step {step} (rule `{}`)",
                    plan.tensors[t].path, group.rule
                )));
            }
        }
    }
    Ok(loss)
}

/// The metrics due at `step` (all of them when `all`).
fn metrics<T: Lane>(plan: &Plan, st: &mut State<T>, step: u64, all: bool) -> Result<Row, String> {
    let n = plan.tensors.len();
    let mut values = Vec::new();
    load_data(plan, st, step, EVAL_DRAW + step)?;
    for (mi, m) in plan.metrics.iter().enumerate() {
        let due: Vec<&(String, usize, u64)> =
            m.entries.iter().filter(|(_, _, every)| all || (*every > 0 && step.is_multiple_of(*every))).collect();
        if due.is_empty() {
            continue;
        }
        let mut inputs: Vec<ArrayD<T>> = st.inputs[..2 * n].to_vec();
        for (k, _) in plan.data.iter().enumerate() {
            inputs.push(st.inputs[2 * n + k].clone());
        }
        for (i, rows) in &st.rows {
            let src = if m.split == Split::Eval && plan.datasets[*i].holdout > 0 { &rows.eval } else { &rows.train };
            for (&field, v) in plan.datasets[*i].fields.iter().zip(src) {
                inputs[2 * n + field] = v.clone();
            }
        }
        let roots: Vec<usize> = due.iter().map(|e| e.1).collect();
        let exec = st.metrics[mi].entry(roots.clone()).or_insert_with(|| GraphExec::new(m.graph.clone(), roots));
        let vals = exec.run(step.max(1), &inputs, plan.seed).map_err(|e| format!("step {step}, metrics: {e}"))?;
        for (e, v) in due.iter().zip(vals) {
            values.push((e.0.clone(), v[ndarray::IxDyn(&[])].to_f64()));
        }
    }
    Ok(Row { step, values })
}

/// The first element of `a` that is NaN or infinite, if any. The common case, none, is a pass
/// without early exits over blocks of the data (which the compiler vectorizes); only a block
/// that fails sends the search element by element.
fn first_nonfinite<T: Lane>(a: &ArrayD<T>) -> Option<T> {
    let all_finite = match a.as_slice_memory_order() {
        Some(xs) => xs.chunks(1024).all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite())),
        None => a.iter().all(|x| x.is_finite()),
    };
    if all_finite {
        None
    } else {
        a.iter().copied().find(|x| !x.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::first_nonfinite;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn nonfinite_values_are_found_wherever_they_sit() {
        let mut a = ArrayD::<f32>::from_elem(IxDyn(&[3000]), 1e30);
        assert_eq!(first_nonfinite(&a), None, "large but finite");
        a[[2999]] = f32::NEG_INFINITY;
        assert_eq!(first_nonfinite(&a), Some(f32::NEG_INFINITY), "in the last block");
        a[[5]] = f32::NAN;
        assert!(first_nonfinite(&a).is_some_and(f32::is_nan), "the first one is reported");
        // A transposed (not contiguous in standard order) matrix.
        let mut m = ArrayD::<f64>::zeros(IxDyn(&[40, 70]));
        m[[39, 1]] = f64::INFINITY;
        let t = m.t().to_owned();
        assert_eq!(first_nonfinite(&t.reversed_axes()), Some(f64::INFINITY));
    }
}
