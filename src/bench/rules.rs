//! W1 (AdamW), W2 (GaLore-Adam) and W3 (Muon): one update rule, compiled from the language for
//! the workload's parameter shapes, stepped over constant gradients. Data follow the peers'
//! distributions (`default_rng(0)` there, a seeded PCG64 here: the same laws, other numbers).

use super::backend::{Backend, Elem, RuleRunner};
use super::{emit, head, median, parse_shape, rounded, rounds, since, Args, Failure};
use ndarray::{ArrayD, IxDyn};
use optic_compiler::interp::Scalar;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::Instant;

/// The W1 rule: stdlib AdamW with the peers' hyperparameters (lr 1e-3, betas 0.9/0.999, eps
/// 1e-8, weight decay 0.01, decoupled as torch.optim.AdamW).
const W1_RULE: &str = "adamw(lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01)";

/// The W2 rule file and its rule (the peers' GaLore-Adam step written out, see the file).
const W2_FILE: &str = include_str!("w2_galore.opt");

/// The W3 rule: stdlib Muon, which is the peers' formula (lerp momentum, Nesterov, NS5 with
/// 3.4445/-4.7750/2.0315, eps 1e-7, lr scaled by sqrt(max(1, m/n))), without weight decay.
const W3_RULE: &str = "muon(lr = 0.02, weight_decay = 0, momentum = 0.95, nesterov = true)";

/// `n` samples of N(0, std^2) (Box-Muller in f64, rounded once to T).
pub fn gaussian<T: Scalar>(rng: &mut rand_pcg::Pcg64, n: usize, std: f64) -> Vec<T> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: log stays finite
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let a = std::f64::consts::TAU * u2;
        out.push(T::from_f64(r * a.cos()));
        out.push(T::from_f64(r * a.sin()));
    }
    out.truncate(n);
    out
}

fn tensor<T: Scalar>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("the data has the shape's size")
}

/// A rule over parameters and their constant gradients, and the step counter.
struct Stepper<T> {
    runner: Box<dyn RuleRunner<T>>,
    params: Vec<ArrayD<T>>,
    inputs: Vec<Vec<ArrayD<T>>>,
    t: u64,
}

impl<T> Stepper<T> {
    fn step(&mut self) -> Result<(), String> {
        self.t += 1;
        let t = self.t;
        self.runner.step_apply(t, &mut self.params, &self.inputs).map_err(|e| format!("step {t}: {e}"))
    }
}

/// Compiles `rule` (with `file`'s declarations in scope) for the parameters' shapes and builds
/// the stepper; also returns the compile time.
fn build<T: Elem + 'static>(
    backend: Backend,
    file: Option<(&str, &str)>,
    rule: &str,
    params: Vec<ArrayD<T>>,
    grads: Vec<ArrayD<T>>,
) -> Result<(Stepper<T>, f64), String> {
    let t0 = Instant::now();
    let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
    let graphs = optic_compiler::lower::compile_rule_in(file, rule, &shapes).map_err(|diags| {
        let mut msg = format!("the rule `{rule}` does not compile:");
        for d in &diags {
            msg.push('\n');
            msg.push_str(&d.render_plain());
        }
        msg
    })?;
    let runner = backend.rule::<T>(graphs, 0)?;
    let compile_s = since(t0);
    let inputs = grads.into_iter().map(|g| vec![g]).collect();
    Ok((Stepper { runner, params, inputs, t: 0 }, compile_s))
}

/// The peers' timing: `warmup` steps (the first timed as the first call, compilation included),
/// then rounds of `untimed` + `steps` individually timed steps. Returns (first_call_s, rounds).
fn measure<T>(
    st: &mut Stepper<T>,
    args: &Args,
    compile_s: f64,
    defaults: (usize, usize, usize),
    untimed: usize,
) -> Result<(f64, Vec<Vec<f64>>), String> {
    let (steps, repeats, warmup) =
        (args.steps.unwrap_or(defaults.0), args.repeats.unwrap_or(defaults.1), args.warmup.unwrap_or(defaults.2));
    let t0 = Instant::now();
    st.step()?;
    let first = compile_s + since(t0);
    for _ in 1..warmup {
        st.step()?;
    }
    // A round is a training loop's worth of steps: the other workers spin through it, as in
    // `optic run`, instead of sleeping between steps. Measured interleaved with torch: W1 at 2^20
    // took 0.82-0.86 ms a step with sleeping workers (each step's fork waits for a worker that
    // went idle in the gap between rounds) and 0.46-0.47 ms with spinning ones.
    let all = rounds(args.serve, repeats, &mut || {
        optic_runtime::pool::with_workers_spinning(|| {
            for _ in 0..untimed {
                st.step()?;
            }
            let mut ts = Vec::with_capacity(steps);
            for _ in 0..steps {
                let t0 = Instant::now();
                st.step()?;
                ts.push(since(t0));
            }
            Ok(ts)
        })
    })?;
    Ok((first, all))
}

/// W1: AdamW over N parameters, flat or split into tensors.
pub fn w1<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let n: usize = match &args.size {
        None => 1 << 20,
        Some(s) => s.parse().map_err(|_| Failure::Usage(format!("W1 --size is a parameter count, not `{s}`")))?,
    };
    let nt =
        if args.layout == "flat" {
            1
        } else {
            args.layout.parse::<usize>().ok().filter(|&k| k > 0 && n.is_multiple_of(k)).ok_or_else(|| {
                Failure::Usage(format!("--layout is `flat` or a divisor of {n}, not `{}`", args.layout))
            })?
        };
    let (params, grads) = w1_data::<T>(n, nt, 0);
    let rule = args.rule.as_deref().unwrap_or(W1_RULE);
    let (mut st, compile_s) = build(args.backend, None, rule, params, grads)?;
    let (first, all) = measure(&mut st, args, compile_s, (10, 5, 3), 2)?;
    let ts: Vec<f64> = all.concat();
    let med = median(&ts);
    let round_meds: Vec<f64> = all.iter().map(|r| median(r)).collect();
    let mut line = head("W1_adamw", args, json!(n));
    line.insert("layout".into(), args.layout.clone().into());
    line.insert("ntensors".into(), nt.into());
    line.insert("rule".into(), rule.into());
    line.insert("steps".into(), ts.len().into());
    line.insert("rounds".into(), all.len().into());
    line.insert("median_s".into(), json!(med));
    line.insert("best_s".into(), json!(ts.iter().copied().fold(f64::INFINITY, f64::min)));
    line.insert("round_median_min_s".into(), json!(round_meds.iter().copied().fold(f64::INFINITY, f64::min)));
    line.insert("round_median_max_s".into(), json!(round_meds.iter().copied().fold(0.0, f64::max)));
    line.insert("first_call_s".into(), json!(first));
    line.insert("compile_s".into(), json!(compile_s));
    line.insert("ns_per_param".into(), json!(med / n as f64 * 1e9));
    // The peers' traffic model: 28 B/param/step (f32; f64 moves twice as much, the same count).
    line.insert("eff_gbs".into(), rounded(28.0 * n as f64 / med / 1e9, 2));
    emit(&Value::Object(line));
    Ok(())
}

/// W1's data: per tensor, p ~ N(0, 1), then per tensor g ~ 0.01 N(0, 1), as `make_data`.
fn w1_data<T: Scalar>(n: usize, nt: usize, seed: u64) -> (Vec<ArrayD<T>>, Vec<ArrayD<T>>) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let sz = n / nt;
    let params = (0..nt).map(|_| tensor(&[sz], gaussian::<T>(&mut rng, sz, 1.0))).collect();
    let grads = (0..nt).map(|_| tensor(&[sz], gaussian::<T>(&mut rng, sz, 1e-2))).collect();
    (params, grads)
}

/// `w1_adamw.py --check` for optic: 5 steps on N = 4096 in 4 tensors, against the peers' numpy
/// implementation ported operation for operation (in-place ufuncs, in the run's type).
pub fn check_w1<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let (n, nt, k) = (4096, 4, 5);
    let (p0, g) = w1_data::<T>(n, nt, 1);
    let rule = args.rule.as_deref().unwrap_or(W1_RULE);
    let (mut st, _) = build(args.backend, None, rule, p0.clone(), g.clone())?;
    for _ in 0..k {
        st.step()?;
    }
    let mut reference = p0.clone();
    numpy_adamw(&mut reference, &g, k);
    let (mut diff, mut update) = (0.0f64, 0.0f64);
    for ((got, want), init) in st.params.iter().zip(&reference).zip(&p0) {
        for ((a, b), c) in got.iter().zip(want).zip(init) {
            diff = diff.max((Scalar::to_f64(*a) - Scalar::to_f64(*b)).abs());
            update = update.max((Scalar::to_f64(*b) - Scalar::to_f64(*c)).abs());
        }
    }
    emit(&json!({"check": "optic", "backend": args.backend.name(), "dtype": super::dtype_name(args.dtype),
                 "rule": rule, "steps": k, "max_abs_diff_vs_numpy": diff, "max_abs_update": update}));
    Ok(())
}

/// `make_numpy`'s step of w1_adamw.py, `steps` times: scalars in f64 rounded once, tensor
/// operations in T in the peer's order.
pub fn numpy_adamw<T: Scalar>(ps: &mut [ArrayD<T>], gs: &[ArrayD<T>], steps: u64) {
    let (lr, b1, b2, eps, wd) = (1e-3f64, 0.9f64, 0.999f64, 1e-8f64, 0.01f64);
    let c = T::from_f64;
    let mut ms: Vec<ArrayD<T>> = ps.iter().map(|p| ArrayD::zeros(p.raw_dim())).collect();
    let mut vs = ms.clone();
    for t in 1..=steps {
        let (bc1, bc2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        let (step_size, inv_sbc2) = (c(lr / bc1), c(1.0 / bc2.sqrt()));
        for (((p, g), m), v) in ps.iter_mut().zip(gs).zip(&mut ms).zip(&mut vs) {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *p *= c(1.0 - lr * wd);
                *m = *m + (g - *m) * c(1.0 - b1);
                *v = *v * c(b2) + g * g * c(1.0 - b2);
                let w = v.sqrt() * inv_sbc2 + c(eps);
                *p -= *m / w * step_size;
            }
        }
    }
}

/// W2: the GaLore-Adam steady step on one m x n matrix.
pub fn w2<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let (m, n) = parse_shape(args.size.as_deref().unwrap_or("4096x1024"))?;
    let r = args.rank;
    if r == 0 || r > m {
        return Err(Failure::Usage(format!("--rank must be in 1..={m}, not {r}")));
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
    // W ~ 0.02 N(0, 1), G ~ N(0, 1); P (Q of QR of an m x r Gaussian) is the rule's first state.
    let w = tensor(&[m, n], gaussian::<T>(&mut rng, m * n, 0.02));
    let g = tensor(&[m, n], gaussian::<T>(&mut rng, m * n, 1.0));
    let default_rule = format!("w2_galore(rank = {r}, scale = 0.25, lr = 1e-3)");
    let rule = args.rule.clone().unwrap_or(default_rule);
    let (mut st, compile_s) = build(args.backend, Some(("w2_galore.opt", W2_FILE)), &rule, vec![w], vec![g])?;
    let (first, all) = measure(&mut st, args, compile_s, (5, 4, 3), 1)?;
    let ts: Vec<f64> = all.concat();
    let med = median(&ts);
    let (mf, nf, rf) = (m as f64, n as f64, r as f64);
    let flops = 4.0 * mf * nf * rf;
    let mut line = head("W2_galore_steady", args, json!(format!("{m}x{n}")));
    line.insert("rank".into(), r.into());
    line.insert("rule".into(), rule.into());
    line.insert("steps".into(), ts.len().into());
    line.insert("median_s".into(), json!(med));
    line.insert("best_s".into(), json!(ts.iter().copied().fold(f64::INFINITY, f64::min)));
    line.insert("first_call_s".into(), json!(first));
    line.insert("compile_s".into(), json!(compile_s));
    line.insert("gemm_flop".into(), json!(flops));
    line.insert("gflops".into(), rounded(flops / med / 1e9, 1));
    line.insert("min_traffic_gbs".into(), rounded((12.0 * mf * nf + 8.0 * mf * rf) / med / 1e9, 2));
    let g = st.inputs[0][0].view().into_dimensionality::<ndarray::Ix2>().expect("G is a matrix");
    let refresh = w2_refresh(g, r, args)?;
    // The refresh every `period` steps, spread over them: what a GaLore step costs on average.
    let period = args.refresh_period as f64;
    line.insert("refresh_period".into(), args.refresh_period.into());
    line.insert("refresh_median_s".into(), json!(refresh.median_s));
    line.insert("amortized_median_s".into(), json!(med + refresh.median_s / period));
    emit(&Value::Object(line));
    let mut line = head("W2_galore_refresh", args, json!(format!("{m}x{n}")));
    line.insert("rank".into(), r.into());
    line.insert("route".into(), refresh.route.into());
    line.insert("steps".into(), refresh.times.len().into());
    line.insert("median_s".into(), json!(refresh.median_s));
    line.insert("best_s".into(), json!(refresh.times.iter().copied().fold(f64::INFINITY, f64::min)));
    line.insert("first_call_s".into(), json!(refresh.first_s));
    line.insert("refresh_period".into(), args.refresh_period.into());
    line.insert("amortized_s".into(), json!(refresh.median_s / period));
    emit(&Value::Object(line));
    Ok(())
}

/// Timings of W2's projector refresh.
struct Refresh {
    first_s: f64,
    times: Vec<f64>,
    median_s: f64,
    route: &'static str,
}

/// W2's refresh as the peers time it: the top-`rank` left singular vectors of G, exact (what
/// `left_singular(g, rank)` in a rule runs: the same runtime call as the executor's), one
/// untimed first call and `--repeats` timed ones (default 3, as `--refresh-rounds`).
fn w2_refresh<T: Elem>(g: ndarray::ArrayView2<T>, rank: usize, args: &Args) -> Result<Refresh, String> {
    let call = || optic_runtime::linalg::svd_top(g, rank).map_err(|e| format!("refresh: {}", e.0));
    let t0 = Instant::now();
    let (_, route) = call()?;
    let first_s = since(t0);
    let mut times = Vec::new();
    for _ in 0..args.repeats.unwrap_or(3) {
        let t0 = Instant::now();
        call()?;
        times.push(since(t0));
    }
    let route = match route {
        optic_runtime::linalg::SvdRoute::Gram => "gram",
        optic_runtime::linalg::SvdRoute::Thin => "thin",
    };
    Ok(Refresh { first_s, median_s: median(&times), times, route })
}

/// W3: the Muon step on one m x n matrix.
pub fn w3<T: Elem + 'static>(args: &Args) -> Result<(), Failure> {
    let (m, n) = parse_shape(args.size.as_deref().unwrap_or("1024x1024"))?;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
    let w = tensor(&[m, n], gaussian::<T>(&mut rng, m * n, 0.02));
    let g = tensor(&[m, n], gaussian::<T>(&mut rng, m * n, 1.0));
    let rule = args.rule.as_deref().unwrap_or(W3_RULE);
    let (mut st, compile_s) = build(args.backend, None, rule, vec![w], vec![g])?;
    let (first, all) = measure(&mut st, args, compile_s, (3, 4, 2), 1)?;
    let ts: Vec<f64> = all.concat();
    let med = median(&ts);
    let (p, q) = (m.min(n) as f64, m.max(n) as f64);
    let flops = 5.0 * (4.0 * p * p * q + 2.0 * p * p * p);
    let mut line = head("W3_muon", args, json!(format!("{m}x{n}")));
    line.insert("rule".into(), rule.into());
    line.insert("steps".into(), ts.len().into());
    line.insert("median_s".into(), json!(med));
    line.insert("best_s".into(), json!(ts.iter().copied().fold(f64::INFINITY, f64::min)));
    line.insert("first_call_s".into(), json!(first));
    line.insert("compile_s".into(), json!(compile_s));
    line.insert("ns_flop".into(), json!(flops));
    line.insert("gflops".into(), rounded(flops / med / 1e9, 1));
    line.insert("ns_dtype".into(), if args.dtype == super::Dtype::F64 { "float64" } else { "float32" }.into());
    emit(&Value::Object(line));
    Ok(())
}
