//! W4 (teacher-student MLP training) and W5 (its latency from source to the first step). The
//! experiment is `.opt` source (`w4_mlp.opt` on the peers' dump, `w4_synth.opt` with data drawn
//! in the language), checked and lowered to a [`Plan`] as `optic run` does; then a lean loop
//! runs the plan's training graph and rules, without metrics, logs or checkpoints, and feeds
//! step i the rows of batch i mod 64 in order, as the peers do (`optic run` would shuffle).

use super::backend::{Backend, Elem, GraphRunner, RuleRunner};
use super::{emit, head, median, since, Args, Failure};
use ndarray::{Axis, Slice};
use optic_compiler::interp::{eval_nodes_owned, ArrayD, Scalar};
use optic_compiler::lower::experiment::{lower_experiment, Plan};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The experiment on the peers' dump (its `load`s are relative to the dump directory).
const W4_NPY: &str = include_str!("w4_mlp.opt");
/// The experiment with data drawn in the language.
const W4_SYNTH: &str = include_str!("w4_synth.opt");
/// The experiment's name in both files.
const EXPERIMENT: &str = "w4_mlp_train";

/// The peers' FLOP model per step: 4 B d k + 6 B k (no dL/dX).
fn flops_per_step(d: usize, k: usize, b: usize) -> f64 {
    let (d, k, b) = (d as f64, k as f64, b as f64);
    4.0 * b * d * k + 6.0 * b * k
}

/// (d, k, batch) from `--size d256_k512_B256`.
fn parse_size(s: Option<&str>) -> Result<(usize, usize, usize), Failure> {
    let Some(s) = s else { return Ok((256, 512, 256)) };
    let bad = || Failure::Usage(format!("W4 --size is d<inputs>_k<hidden>_B<batch> (d256_k512_B256), not `{s}`"));
    let parts: Vec<&str> = s.split('_').collect();
    let [d, k, b] = parts[..] else { return Err(bad()) };
    let num = |p: &str, prefix: &str| p.strip_prefix(prefix).and_then(|x| x.parse::<usize>().ok()).filter(|&x| x > 0);
    Ok((num(d, "d").ok_or_else(bad)?, num(k, "k").ok_or_else(bad)?, num(b, "B").ok_or_else(bad)?))
}

/// The experiment to run: source text, file name, the directory its `load`s resolve in, and the
/// `let` overrides for the workload's arguments.
type Source = (&'static str, &'static str, PathBuf, Vec<(String, String)>);

/// The W4 experiment the arguments ask for.
fn source(args: &Args) -> Result<Source, Failure> {
    match &args.data {
        Some(dir) => {
            if args.size.is_some() {
                return Err(Failure::Usage("--size does not apply with --data (the dump fixes the sizes)".into()));
            }
            Ok((W4_NPY, "w4_mlp.opt", dir.clone(), Vec::new()))
        }
        None => {
            let (d, k, b) = parse_size(args.size.as_deref())?;
            let sets = [("d", d), ("k", k), ("b", b)].iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            Ok((W4_SYNTH, "w4_synth.opt", PathBuf::from("."), sets))
        }
    }
}

/// Checks and lowers the experiment from source text; also returns the checking time (the
/// rest is lowering, which reads the data files).
fn plan(name: &str, text: &str, dir: &Path, sets: &[(String, String)]) -> Result<(Plan, f64), String> {
    // Data paths resolve against the file's own name, so the name carries the directory.
    let path = dir.join(name).display().to_string();
    let t0 = Instant::now();
    let set_values: Vec<&str> = sets.iter().map(|(_, v)| v.as_str()).collect();
    let library = optic_compiler::check::Library::NamedBy(&set_values);
    let checked = optic_compiler::check::check_source_in(&path, text, dir, library);
    let check_s = since(t0);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == optic_compiler::diag::Severity::Error)
        .map(|d| d.render_plain())
        .collect();
    if !errors.is_empty() {
        return Err(format!("{name} does not check:\n{}", errors.join("\n")));
    }
    let prog = checked.program;
    optic_compiler::on_big_stack(|| lower_experiment(&prog, EXPERIMENT, sets))
        .map(|(plan, _)| (plan, check_s))
        .map_err(|d| format!("{name} does not lower: {}", d.render_plain()))
}

/// A lowered W4 experiment ready to train.
struct Mlp<T> {
    plan: Plan,
    backend: Backend,
    train: Box<dyn GraphRunner<T>>,
    loss_only: Box<dyn GraphRunner<T>>,
    rules: Vec<Box<dyn RuleRunner<T>>>,
    /// The step graphs' inputs: tensors, initial tensors, data fields.
    inputs: Vec<ArrayD<T>>,
    initial: Vec<ArrayD<T>>,
    /// Per batch, per data field of the dataset, its rows: cut from `dataset` on first use, so
    /// the first step waits for one batch, not 64.
    batches: Vec<Vec<ArrayD<T>>>,
    /// Per data field, all its rows; emptied once every batch is cut.
    dataset: Vec<ArrayD<T>>,
    /// The dataset's fields' indices in the plan's data.
    fields: Vec<usize>,
    /// Per group, per tensor, the index of its gradient among the training graph's values.
    grad_of: Vec<Vec<usize>>,
    /// Steps taken since the last reset (the rules' step counter).
    t: u64,
    /// Reused per step, so the loop allocates only what the executor does.
    params: Vec<ArrayD<T>>,
    /// The training graph's values (loss, gradients), handed back to it every step.
    vals: Vec<ArrayD<T>>,
    /// Rows per batch.
    batch: usize,
    /// Seconds [`Mlp::new`] spent evaluating the initial values.
    init_s: f64,
    grads: Vec<Vec<ArrayD<T>>>,
}

impl<T: Elem + 'static> Mlp<T> {
    /// Evaluates the plan's initial values and builds the runners.
    fn new(mut plan: Plan, backend: Backend) -> Result<Self, String> {
        let n = plan.tensors.len();
        let t0 = Instant::now();
        let files: Vec<ArrayD<T>> =
            std::mem::take(&mut plan.files).into_iter().map(|(_, a)| T::from_values(a)).collect();
        let [set] = &plan.datasets[..] else { return Err("the W4 experiment must have one `data` statement".into()) };
        let b = set.batch.ok_or("the W4 dataset needs `batch`")?;
        let mut roots: Vec<usize> = plan.tensors.iter().map(|t| t.init).collect();
        roots.extend(&set.init_roots);
        let mut vals =
            eval_nodes_owned(&plan.init, 0, files, plan.seed, &roots).map_err(|e| format!("initializing: {e}"))?;
        let data = vals.split_off(n);
        let nb = set.rows / b;
        let batches = vec![Vec::new(); nb];
        let init_s = since(t0);
        let mut inputs = vals.clone();
        inputs.extend(vals.iter().cloned());
        inputs.extend(plan.data.iter().map(|d| ArrayD::zeros(d.batch_shape.clone())));
        let mut nodes = vec![plan.loss];
        nodes.extend(plan.grads.iter().map(|g| g.1));
        let train = backend.graph::<T>(plan.train.clone(), nodes)?;
        let loss_only = backend.graph::<T>(plan.train.clone(), vec![plan.loss])?;
        let grad_of = plan
            .groups
            .iter()
            .map(|g| {
                g.tensors
                    .iter()
                    .map(|t| plan.grads.iter().position(|x| x.0 == *t).map(|i| i + 1))
                    .collect::<Option<_>>()
            })
            .collect::<Option<Vec<Vec<usize>>>>()
            .ok_or("a trained tensor has no gradient")?;
        let fields = set.fields.clone();
        let mut mlp = Mlp {
            plan,
            backend,
            train,
            loss_only,
            rules: Vec::new(),
            inputs,
            initial: vals,
            batches,
            dataset: data,
            batch: b,
            fields,
            grad_of,
            t: 0,
            params: Vec::new(),
            vals: Vec::new(),
            grads: Vec::new(),
            init_s,
        };
        mlp.reset()?;
        Ok(mlp)
    }

    /// Back to the initial tensors and fresh rule state (outside any timing, as the peers' reset).
    fn reset(&mut self) -> Result<(), String> {
        for (x, x0) in self.inputs.iter_mut().zip(&self.initial) {
            x.assign(x0);
        }
        self.rules = self
            .plan
            .groups
            .iter()
            .map(|g| self.backend.rule::<T>(g.graphs.clone(), self.plan.seed))
            .collect::<Result<_, _>>()?;
        self.t = 0;
        Ok(())
    }

    /// Swaps batch `j` into the data inputs (and back out on the second call).
    fn swap_batch(&mut self, j: usize) {
        let base = 2 * self.plan.tensors.len();
        if self.batches[j].is_empty() {
            let rows = Slice::from(j * self.batch..(j + 1) * self.batch);
            self.batches[j] = self.dataset.iter().map(|a| a.slice_axis(Axis(0), rows).to_owned()).collect();
            if self.batches.iter().all(|b| !b.is_empty()) {
                self.dataset = Vec::new();
            }
        }
        for (slot, &field) in self.batches[j].iter_mut().zip(&self.fields) {
            std::mem::swap(slot, &mut self.inputs[base + field]);
        }
    }

    /// Trains `steps` steps, step i (0-based) on batch i mod 64; returns the losses.
    /// The other workers spin through the loop (`optic_runtime::pool`), as in `optic run`.
    fn run(&mut self, steps: usize, losses: &mut Vec<f64>) -> Result<(), String> {
        optic_runtime::pool::with_workers_spinning(|| self.run_steps(steps, losses))
    }

    fn run_steps(&mut self, steps: usize, losses: &mut Vec<f64>) -> Result<(), String> {
        losses.clear();
        for i in 0..steps {
            self.t += 1;
            let (t, j) = (self.t, i % self.batches.len());
            self.swap_batch(j);
            let ran = self.train.run_into(t, &self.inputs, self.plan.seed, &mut self.vals);
            self.swap_batch(j);
            ran.map_err(|e| format!("step {t}, the training graph: {e}"))?;
            let vals = &mut self.vals;
            losses.push(vals[0].iter().next().map_or(f64::NAN, |&x| Scalar::to_f64(x)));
            for ((g, rule), grad_of) in self.plan.groups.iter().zip(&mut self.rules).zip(&self.grad_of) {
                self.params.clear();
                self.grads.clear();
                for (&tensor, &at) in g.tensors.iter().zip(grad_of) {
                    self.params.push(std::mem::take(&mut self.inputs[tensor]));
                    self.grads.push(vec![std::mem::take(&mut vals[at])]);
                }
                let r = rule.step_apply(t, &mut self.params, &self.grads);
                for (&tensor, p) in g.tensors.iter().zip(self.params.drain(..)) {
                    self.inputs[tensor] = p;
                }
                for (&at, grad) in grad_of.iter().zip(self.grads.drain(..)) {
                    vals[at] = grad.into_iter().next().expect("one gradient per tensor");
                }
                r.map_err(|e| format!("step {t}, rule `{}`: {e}", g.rule))?;
            }
        }
        Ok(())
    }

    /// The mean loss over every batch with the current tensors (the peers' final_loss_all).
    fn loss_all(&mut self) -> Result<f64, String> {
        // Its own outputs, so the training step's arrays keep their shapes for the next run.
        let (mut total, mut loss) = (0.0, Vec::new());
        for j in 0..self.batches.len() {
            self.swap_batch(j);
            let v = self.loss_only.run_into(self.t.max(1), &self.inputs, self.plan.seed, &mut loss);
            self.swap_batch(j);
            v?;
            total += loss[0].iter().next().map_or(f64::NAN, |&x| Scalar::to_f64(x));
        }
        Ok(total / self.batches.len() as f64)
    }
}

/// W4: `--repeats` timed runs of `--steps` steps from the initial state, after a first step and
/// `--warmup` steps on a throw-away state.
pub fn w4<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let (text, name, dir, sets) = source(args)?;
    let t0 = Instant::now();
    let (plan, _) = plan(name, text, &dir, &sets)?;
    let (d, k, b) = w4_dims(&plan)?;
    let mut mlp = Mlp::<T>::new(plan, args.backend)?;
    let setup_s = since(t0);
    let (steps, warmup) = (args.steps.unwrap_or(1000), args.warmup.unwrap_or(20));
    let mut losses = Vec::with_capacity(steps.max(warmup));
    let t0 = Instant::now();
    mlp.run(1, &mut losses)?;
    let first = since(t0);
    mlp.run(warmup, &mut losses)?;
    let (mut inits, mut lasts, mut finals) = (Vec::new(), Vec::new(), Vec::new());
    let all = super::rounds(args.serve, args.repeats.unwrap_or(3), &mut || {
        mlp.reset()?;
        let t0 = Instant::now();
        mlp.run(steps, &mut losses)?;
        let wall = since(t0);
        inits.push(losses.first().copied().unwrap_or(f64::NAN));
        lasts.push(losses.last().copied().unwrap_or(f64::NAN));
        finals.push(mlp.loss_all()?);
        Ok(vec![wall])
    })?;
    let walls: Vec<f64> = all.concat();
    let med = median(&walls);
    let best = walls.iter().copied().fold(f64::INFINITY, f64::min);
    let sps = steps as f64 / med;
    let mut line = head("W4_mlp_train", args, json!(format!("d{d}_k{k}_B{b}")));
    line.insert("data".into(), if args.data.is_some() { "peers_dump" } else { "synthetic" }.into());
    line.insert("steps".into(), steps.into());
    line.insert("repeats".into(), walls.len().into());
    line.insert("median_s".into(), json!(med));
    line.insert("best_s".into(), json!(best));
    line.insert("median_step_s".into(), json!(med / steps as f64));
    line.insert("steps_per_s".into(), super::rounded(sps, 1));
    line.insert("best_steps_per_s".into(), super::rounded(steps as f64 / best, 1));
    line.insert("gflops".into(), super::rounded(flops_per_step(d, k, b) * sps / 1e9, 2));
    line.insert("setup_s".into(), json!(setup_s));
    line.insert("first_call_s".into(), json!(first));
    line.insert("initial_loss".into(), json!(inits.first()));
    line.insert("last_step_loss".into(), json!(lasts.first()));
    line.insert("final_loss_all".into(), json!(if finals.is_empty() { f64::NAN } else { median(&finals) }));
    emit(&Value::Object(line));
    Ok(())
}

/// (d, k, batch) of a lowered W4 plan, read from its first data field [batch, d] and its
/// hidden bias [k].
fn w4_dims(plan: &Plan) -> Result<(usize, usize, usize), String> {
    let x = plan.data.first().ok_or("the W4 experiment has no data")?;
    let [b, d] = x.batch_shape[..] else { return Err("the W4 input is not [batch, d]".into()) };
    let k = plan.tensors.iter().find(|t| t.path.ends_with(".b1")).and_then(|t| t.shape.first().copied());
    Ok((d, k.ok_or("the W4 model has no b1")?, b))
}

/// W5's child: one cold start in this process, from reading the source file (`--source`, which
/// the parent wrote) to the end of the first step, then 4 more calls and `--steps` steady ones.
pub fn w5_child<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let (_, name, dir, sets) = source(args)?;
    let file = args.source.clone().ok_or_else(|| Failure::Usage("--child needs --source".into()))?;
    let t0 = Instant::now();
    // As `optic run` does: the other worker sets Cranelift and faer up while this one parses.
    rayon::spawn(|| {
        optic_compiler::jit::warm_up();
        optic_runtime::linalg::warm_up();
    });
    let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let read_s = since(t0);
    let (plan, check_s) = plan(name, &text, &dir, &sets)?;
    let lower_s = since(t0) - read_s;
    let t1 = Instant::now();
    let mut mlp = Mlp::<T>::new(plan, args.backend)?;
    let build_s = since(t1) - mlp.init_s;
    let setup_s = since(t0);
    let mut losses = Vec::new();
    mlp.run(1, &mut losses)?;
    let first_call_s = since(t0);
    let steps = args.steps.unwrap_or(20);
    let mut ts = Vec::with_capacity(4 + steps);
    for _ in 0..4 + steps {
        let t1 = Instant::now();
        mlp.run(1, &mut losses)?;
        ts.push(since(t1));
    }
    let steady = median(&ts[4..]);
    let calls_2_5: f64 = ts[..4].iter().sum();
    emit(&json!({"read_s": read_s, "check_lower_s": lower_s, "check_s": check_s, "init_s": mlp.init_s,
                 "build_s": build_s, "setup_s": setup_s,
                 "first_step_s": first_call_s - setup_s, "first_call_s": first_call_s,
                 "calls_2_5_s": calls_2_5, "steady_s": steady,
                 "compile_overhead_s": first_call_s + calls_2_5 - 5.0 * steady}));
    Ok(())
}

/// Where W5 writes the source its children read: a scratch directory of this process.
fn w5_source_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("optic-bench-w5-{}", std::process::id())).join(name)
}

/// W5: `--repeats` fresh processes of [`w5_child`], medians of their figures.
pub fn w5(args: &Args) -> Result<(), Failure> {
    let (text, name, _, _) = source(args)?;
    let file = w5_source_path(name);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the optic executable: {e}"))?;
    let mut child_args: Vec<String> = vec!["bench".into(), "W4".into(), "--child".into()];
    child_args.extend(["--dtype".into(), super::dtype_name(args.dtype).into()]);
    child_args.extend(["--backend".into(), args.backend.name().into()]);
    child_args.extend(["--steps".into(), args.steps.unwrap_or(20).to_string()]);
    child_args.extend(["--source".into(), file.display().to_string()]);
    if let Some(d) = &args.data {
        child_args.extend(["--data".into(), d.display().to_string()]);
    }
    if let Some(s) = &args.size {
        child_args.extend(["--size".into(), s.clone()]);
    }
    let result = w5_children(&exe, &child_args, args.repeats.unwrap_or(3));
    if let Some(dir) = file.parent() {
        // The scratch directory this process made, nothing else.
        let _ = std::fs::remove_dir_all(dir);
    }
    let (recs, walls) = result?;
    let mut line = head("W5_compile_latency", args, json!("W4"));
    line.insert("impl".into(), "optic_mlp".into());
    line.insert("cache".into(), "cold".into());
    line.insert("data".into(), if args.data.is_some() { "peers_dump" } else { "synthetic" }.into());
    line.insert("repeats".into(), recs.len().into());
    let med = |k: &str| median(&recs.iter().filter_map(|r| r.get(k).and_then(Value::as_f64)).collect::<Vec<_>>());
    line.insert("median_s".into(), json!(med("first_call_s")));
    for k in [
        "read_s",
        "check_s",
        "check_lower_s",
        "init_s",
        "build_s",
        "setup_s",
        "first_step_s",
        "first_call_s",
        "calls_2_5_s",
        "steady_s",
    ] {
        line.insert(k.into(), super::rounded(med(k), 6));
    }
    line.insert("compile_overhead_s".into(), super::rounded(med("compile_overhead_s"), 6));
    line.insert("first_over_steady".into(), super::rounded(med("first_call_s") / med("steady_s"), 1));
    line.insert("process_wall_s".into(), super::rounded(median(&walls), 3));
    emit(&Value::Object(line));
    Ok(())
}

/// The children's JSON records.
type Records = Vec<serde_json::Map<String, Value>>;

/// Runs the children one after the other; their JSON records and wall times.
fn w5_children(exe: &Path, child_args: &[String], repeats: usize) -> Result<(Records, Vec<f64>), String> {
    let (mut recs, mut walls) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let t0 = Instant::now();
        let out = std::process::Command::new(exe)
            .args(child_args)
            .output()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        walls.push(since(t0));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("the W5 child failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let rec = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| format!("the W5 child printed no JSON: {stdout}"))?;
        recs.push(rec);
    }
    Ok((recs, walls))
}
