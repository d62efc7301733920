//! `optic run FILE`: checks the file, lowers each experiment (once per sweep point, with the
//! `--set` overrides applied first), runs the points in parallel on a rayon pool, and writes
//! each run's directory and, for a sweep, one comparison table and one plot of all the curves.
//! Lowering happens on the calling (big-stack) thread; only the training runs on the pool.

mod batches;
mod ckpt;
mod output;
mod progress;
mod summary;
mod train;

pub use progress::ProgressMode;

use optic_compiler::lower::experiment::{self, Plan};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

/// The element type of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// 32-bit floats (the default, as torch's).
    F32,
    /// 64-bit floats.
    F64,
}

/// What `optic run` was asked.
pub struct Request {
    /// The experiment file.
    pub file: PathBuf,
    /// `--set name=value` overrides of `let`s and settings.
    pub sets: Vec<(String, String)>,
    /// Replaces `runs/<experiment>`.
    pub out: Option<PathBuf>,
    /// Worker threads for sweep points.
    pub threads: Option<usize>,
    /// Overrides the experiment's `dtype`.
    pub dtype: Option<Dtype>,
    /// Continue from the newest checkpoint.
    pub resume: bool,
    /// Only this experiment of the file.
    pub experiment: Option<String>,
    /// Ignore the sweep: run the base point only.
    pub no_sweep: bool,
    /// Plain progress lines even on a terminal, one-line diagnostics.
    pub plain: bool,
    /// How progress is shown.
    pub progress: ProgressMode,
}

/// One point to run.
struct Point {
    label: String,
    overrides: Vec<(String, String)>,
    plan: Plan,
    dir: PathBuf,
}

/// Runs `optic run`.
pub fn run(req: &Request) -> ExitCode {
    let threads = req.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start {threads} threads: {e}");
            return ExitCode::from(2);
        }
    };
    // Cranelift's and faer's one-time set-ups run on a worker while this thread checks and lowers.
    pool.spawn(|| {
        optic_compiler::jit::warm_up();
        optic_runtime::linalg::warm_up();
    });
    let set_values: Vec<&str> = req.sets.iter().map(|(_, v)| v.as_str()).collect();
    let library = optic_compiler::check::Library::NamedBy(&set_values);
    let checked = optic_compiler::check::check_paths_in(std::slice::from_ref(&req.file), library);
    let errors = checked.diagnostics.iter().any(|d| d.severity == optic_compiler::diag::Severity::Error);
    crate::report(&checked.diagnostics, req.plain);
    if errors {
        return ExitCode::FAILURE;
    }
    let mut names = experiment::experiments(&checked.program);
    if let Some(e) = &req.experiment {
        if !names.contains(e) {
            eprintln!("error: no experiment `{e}` in {} (it has: {})", req.file.display(), names.join(", "));
            return ExitCode::from(2);
        }
        names.retain(|n| n == e);
    }
    if names.is_empty() {
        eprintln!("error: {} declares no experiment", req.file.display());
        return ExitCode::FAILURE;
    }
    let mut points = Vec::new();
    for name in &names {
        match plan_points(&checked.program, name, req) {
            Ok(p) => points.push((name.clone(), p)),
            Err(d) => {
                crate::report(&[*d], req.plain);
                return ExitCode::FAILURE;
            }
        }
    }
    let mut failed = false;
    for (name, points) in points {
        let progress = progress::Progress::new(
            &points.iter().map(|p| (p.label.clone(), p.plan.steps)).collect::<Vec<_>>(),
            req.progress,
            req.plain,
        );
        let results: Mutex<Vec<(usize, summary::RunResult)>> = Mutex::new(Vec::new());
        pool.install(|| {
            // One run keeps the other workers spinning for its matrix products and kernels
            // (`optic_runtime::pool`); sweep points in parallel keep every worker busy anyway.
            if let [p] = points.as_slice() {
                let r = optic_runtime::pool::with_workers_spinning(|| run_point(p, req, &progress));
                results.lock().expect("no panics hold the lock").push((0, r));
                return;
            }
            points.par_iter().enumerate().for_each(|(i, p)| {
                let r = run_point(p, req, &progress);
                results.lock().expect("no panics hold the lock").push((i, r));
            })
        });
        progress.finish();
        let mut results = results.into_inner().expect("no panics hold the lock");
        results.sort_by_key(|r| r.0);
        let results: Vec<summary::RunResult> = results.into_iter().map(|r| r.1).collect();
        failed |= results.iter().any(|r| r.error.is_some() || r.fault.is_some());
        let base = points[0].dir.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        if let Err(e) = summary::report(
            &name,
            &base,
            &points.iter().map(|p| (&p.label, &p.overrides, &p.dir)).collect::<Vec<_>>(),
            &results,
        ) {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Lowers every point of an experiment's sweep (or the one point).
fn plan_points(
    prog: &optic_compiler::check::Program,
    name: &str,
    req: &Request,
) -> Result<Vec<Point>, Box<optic_compiler::Diagnostic>> {
    let (base, sweep) = experiment::lower_experiment(prog, name, &req.sets)?;
    let root = req.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(name));
    let axes: Vec<(String, Vec<String>)> =
        sweep.axes.into_iter().filter(|(a, _)| !req.sets.iter().any(|(s, _)| s == a)).collect();
    if req.no_sweep || axes.is_empty() {
        let label = label(&req.sets);
        return Ok(vec![Point { dir: root.join(&label), label, overrides: req.sets.clone(), plan: base }]);
    }
    let sweep = experiment::Sweep { axes };
    let mut out = Vec::new();
    for point in sweep.points() {
        let mut overrides = req.sets.clone();
        overrides.extend(point.iter().cloned());
        let (plan, _) = experiment::lower_experiment(prog, name, &overrides)?;
        let label = label(&point);
        out.push(Point { dir: root.join(&label), label, overrides, plan });
    }
    Ok(out)
}

/// A run's directory name: its overrides, `name=value,...`, or `main`.
fn label(overrides: &[(String, String)]) -> String {
    if overrides.is_empty() {
        return "main".into();
    }
    overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "=,.-_+".contains(c) { c } else { '_' })
        .collect()
}

fn run_point(p: &Point, req: &Request, progress: &progress::Progress) -> summary::RunResult {
    let dtype = match (req.dtype, p.plan.dtype.as_deref()) {
        (Some(d), _) => d,
        (None, Some("f64")) => Dtype::F64,
        _ => Dtype::F32,
    };
    let mut result = summary::RunResult::default();
    let mut dir = match output::RunDir::open(&p.dir, req.resume) {
        Ok(d) => d,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    if let Err(e) = dir.config(&summary::config(&p.plan, &req.file, &p.overrides, dtype)) {
        result.error = Some(e);
        return result;
    }
    let mut on_step = |step: u64, loss: f64| progress.step(&p.label, step, loss);
    let outcome = match dtype {
        Dtype::F32 => train::run::<f32>(&p.plan, &mut dir, req.resume, &mut on_step),
        Dtype::F64 => train::run::<f64>(&p.plan, &mut dir, req.resume, &mut on_step),
    };
    match outcome {
        Ok(o) => {
            result.steps = o.step;
            result.fault = o.fault;
        }
        Err(e) => result.error = Some(e),
    }
    result.rows = dir.rows();
    if let Err(e) = summary::finish_run(&p.plan, &dir.path, &result, dtype) {
        result.error.get_or_insert(e);
    }
    result
}
