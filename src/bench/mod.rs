//! `optic bench W1|W2|W3|W4|W5`: the peer benchmark workloads of `shared/peers/README.md` run by
//! optic, with the peers' sizes, formulas, hyperparameters, step counts and initial-data
//! distributions, each step compiled from the language (stdlib rules, or the workload's `.opt`
//! embedded here) and run by the executor `--backend` picks ([`backend`]). Every measurement is
//! one JSON line with the peers' field names, so `tools/bench_vs_peers.py` can put optic and a
//! peer side by side. Timing follows the peers: warm-up steps (the first reported as
//! `first_call_s`), then rounds of untimed and individually timed steps, medians over all timed
//! steps. `--serve` hands the rounds to a driver: after set-up and warm-up, each line on stdin
//! runs one round and prints its step times, so a peer can run in between, in the same minute of
//! this machine's drifting speed.

mod backend;
mod rules;
mod train;

pub use backend::Backend;
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// A peer workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// AdamW step over N parameters (`stdlib` adamw), memory-bound.
    #[value(name = "W1", alias = "w1")]
    W1,
    /// GaLore-Adam steady step on one matrix, rank 128.
    #[value(name = "W2", alias = "w2")]
    W2,
    /// Muon step (Nesterov momentum, 5 Newton-Schulz iterations) on one matrix.
    #[value(name = "W3", alias = "w3")]
    W3,
    /// Teacher-student ReLU MLP trained by Adam for 1000 steps (an experiment in .opt).
    #[value(name = "W4", alias = "w4")]
    W4,
    /// W4 from its source file to the end of its first training step, in fresh processes.
    #[value(name = "W5", alias = "w5")]
    W5,
}

/// The element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// 32-bit floats, as every peer.
    F32,
    /// 64-bit floats.
    F64,
}

/// `optic bench`'s arguments (flags mirror the peer scripts').
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// W1: total parameters N (default 1048576); W2, W3: MxN (default 4096x1024 and 1024x1024);
    /// W4, W5 without --data: d256_k512_B256 form.
    #[arg(long)]
    pub size: Option<String>,
    /// W1: `flat` (one tensor) or the number of tensors N is split into (`64`).
    #[arg(long, default_value = "flat")]
    pub layout: String,
    /// Timed steps per round (W1 10, W2 5, W3 3); W4: training steps per run (1000); W5: steady
    /// calls per process (20).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Rounds (W1 5, W2 4, W3 4), W4 timed runs (3), W5 fresh processes (3).
    #[arg(long, alias = "rounds")]
    pub repeats: Option<usize>,
    /// Untimed steps after set-up, the first reported as first_call_s (W1 3, W2 3, W3 2, W4 20).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Worker threads for kernels and products (default: all cores; the peers use 2). W5's
    /// fresh processes always use all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Element type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// The executor.
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// W1-W3: another rule expression instead of the workload's (e.g. the stdlib `galore(...)`).
    #[arg(long, value_name = "EXPR")]
    pub rule: Option<String>,
    /// W2: the projection rank.
    #[arg(long, default_value_t = 128)]
    pub rank: usize,
    /// W2: the projector refresh period in steps (GaLore's `update_proj_gap`), over which
    /// `amortized_median_s` spreads the refresh's cost.
    #[arg(long, default_value_t = 200)]
    pub refresh_period: usize,
    /// W4, W5: the directory `w4_mlp_train.py --dump DIR` wrote (exact peer init and data);
    /// without it the data are drawn in the language from the same distributions.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// W1: only the numerical check (5 steps, N = 4096 in 4 tensors) against the numpy formula.
    #[arg(long)]
    pub check: bool,
    /// After set-up and warm-up, run one round per line read on stdin (for an interleaving driver).
    #[arg(long)]
    pub serve: bool,
    /// W5's child process: one cold start, one JSON line.
    #[arg(long, hide = true)]
    pub child: bool,
    /// W5's child: the source file to read.
    #[arg(long, hide = true)]
    pub source: Option<PathBuf>,
}

/// Runs `optic bench`: 0 on success, 1 when the workload fails, 2 for bad arguments.
pub fn run(args: &Args) -> ExitCode {
    // The workload runs on a worker of the pool its kernels and GEMMs use, as `optic run` does:
    // forking work from a worker wakes the others far sooner than from an outside thread.
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        eprintln!("error: --threads must be at least 1");
        return ExitCode::from(2);
    }
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start {threads} threads: {e}");
            return ExitCode::from(2);
        }
    };
    let result = pool.install(|| match args.dtype {
        Dtype::F32 => dispatch::<f32>(args),
        Dtype::F64 => dispatch::<f64>(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Why a bench stopped.
pub enum Failure {
    /// The arguments do not describe a workload.
    Usage(String),
    /// The workload failed (compile error, executor error, I/O).
    Run(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Run(s)
    }
}

fn dispatch<T: backend::Elem + 'static>(args: &Args) -> Result<(), Failure> {
    match args.workload {
        Workload::W1 if args.check => rules::check_w1::<T>(args),
        Workload::W1 => rules::w1::<T>(args),
        Workload::W2 => rules::w2::<T>(args),
        Workload::W3 => rules::w3::<T>(args),
        Workload::W4 if args.child => train::w5_child::<T>(args),
        Workload::W4 => train::w4::<T>(args),
        Workload::W5 => train::w5(args),
    }
}

/// The name of an element type in the output.
pub fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "f32",
        Dtype::F64 => "f64",
    }
}

/// Seconds since `t0`.
pub fn since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// The median of a non-empty list (the mean of the middle two for an even count, as Python's
/// `statistics.median`, so medians are comparable with the peers').
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs the timed rounds: `repeats` of them, or with `serve` one per line read on stdin until
/// EOF (each round's times printed as `{"round": i, "times_s": [...]}`). `round` runs one round
/// and returns its timed figures. Returns every round's figures.
pub fn rounds(
    serve: bool,
    repeats: usize,
    round: &mut dyn FnMut() -> Result<Vec<f64>, String>,
) -> Result<Vec<Vec<f64>>, String> {
    let mut all = Vec::new();
    if !serve {
        for _ in 0..repeats {
            all.push(round()?);
        }
        return Ok(all);
    }
    emit(&json!({"ready": true}));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        if line.trim() == "end" {
            break;
        }
        let ts = round()?;
        emit(&json!({"round": all.len(), "times_s": ts}));
        all.push(ts);
    }
    Ok(all)
}

/// Prints one JSON line and flushes (a driver reads it as it comes).
pub fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the driver went away) is not worth a panic: the process is ending anyway.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// The fields every line starts with, in the peers' order.
pub fn head(workload: &str, args: &Args, size: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("workload".into(), workload.into());
    m.insert("impl".into(), "optic".into());
    m.insert("size".into(), size);
    m.insert("backend".into(), args.backend.name().into());
    m.insert("dtype".into(), dtype_name(args.dtype).into());
    // The executor's kernels and faer's GEMM run on the rayon pool; the interpreter on one thread.
    let threads = if args.backend == Backend::Jit { rayon::current_num_threads() } else { 1 };
    m.insert("threads".into(), threads.into());
    m
}

/// Parses `MxN`.
pub fn parse_shape(s: &str) -> Result<(usize, usize), Failure> {
    let bad = || Failure::Usage(format!("--size must be MxN (e.g. 4096x1024), not `{s}`"));
    let (m, n) = s.split_once('x').ok_or_else(bad)?;
    let m: usize = m.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if m == 0 || n == 0 {
        return Err(bad());
    }
    Ok((m, n))
}

/// A JSON number rounded to `digits` decimals, as the peers round their derived figures.
pub fn rounded(x: f64, digits: i32) -> Value {
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}
