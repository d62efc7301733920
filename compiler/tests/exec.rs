//! The executor (fused JIT kernels plus library calls) against the reference interpreter: every
//! stdlib rule, composable and schedule, on random parameter shapes (odd sizes exercise the
//! kernels' scalar tails, large ones their vector loops and the parallel split) and random
//! values, over several steps, in f64 and f32, both as directions ([`RuleExec::step`]) and
//! applied in place ([`RuleExec::step_apply`]).
//!
//! Tolerance: kernels compute operation for operation what the interpreter computes, in the
//! same type, so results agree to the last bit except where a kernel's inline polynomial stands
//! in for a library function (exp, log, tanh, ...: a few ulp). The test allows 1e-12 (f64) and
//! 1e-5 (f32) relative to the largest magnitude, and reports the largest error seen.

use ndarray::{ArrayD, IxDyn};
use optic_compiler::exec::{Lane, RuleExec};
use optic_compiler::interp::{Interp, Scalar};
use optic_compiler::lower::compile_rule;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Every rule of the stdlib with the arguments it needs (defaults otherwise), and composites.
const RULES: &[&str] = &[
    "sgd(lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 0.1, nesterov = false)",
    "sgd(lr = 0.05, momentum = 0.9, nesterov = true)",
    "adam(lr = 0.01)",
    "adam(lr = 0.01, weight_decay = 0.1, amsgrad = true)",
    "adamw(lr = 0.01, weight_decay = 0.1)",
    "adamax()",
    "nadam()",
    "nadam(decoupled_weight_decay = true, weight_decay = 0.1)",
    "radam()",
    "adagrad(lr = 0.1, lr_decay = 0.01, initial_accumulator_value = 0.1)",
    "rmsprop(centered = true, momentum = 0.9)",
    "adadelta()",
    "adafactor()",
    "adabelief()",
    "diffgrad()",
    "adabound()",
    "adamp()",
    "lamb()",
    "adan()",
    "ademamix()",
    "mars()",
    "fadam()",
    "partition(matrices = muon(), vectors = adam())",
    "sign_sgd()",
    "signum()",
    "lion()",
    "spam()",
    "stable_spam()",
    "prodigy()",
    "schedule_free_adamw()",
    "chain(clip_global_norm(1.0), adam(lr = 0.01))",
    "chain(clip_norm(0.5), momentum(0.9), scale(-0.1))",
    "chain(clip_value(0.01), l2(0.1), sgd(lr = 0.1))",
    "chain(adam(lr = 0.01), decay(0.01), ema(0.9))",
    "chain(adam(lr = 0.01), param_ema(decay = 0.9))",
    "sgd(lr = cosine(0.1, warmup = 2, total = 10))",
    "sgd(lr = warmup(0.1, 3))",
    "sgd(lr = one_cycle(0.1, 10))",
    "sgd(lr = warm_restarts(0.1, 3))",
    "sgd(lr = step_decay(0.1, 2, 0.5))",
    "sgd(lr = exponential(0.1, 0.9))",
    "sgd(lr = polynomial(0.1, 10))",
    "sgd(lr = linear_schedule(0.0, 0.1, 5))",
    // orthogonalized updates (stdlib/rules_orthogonal.opt)
    "partition(matrices = muon(lr = 0.02, nesterov = false, adjust_lr = \"match_rms_adamw\"), vectors = adamw())",
    "partition(matrices = muon(lr = 0.02, adjust_lr = \"spectral\"), vectors = adamw())",
    "partition(matrices = normuon(weight_decay = 0.1), vectors = adamw())",
    "partition(matrices = adamuon(weight_decay = 0.1), vectors = adamw())",
    "auon(weight_decay = 0.01)",
    "auon(normalize = true, gamma = 1)",
    "hybrid_auon(weight_decay = 0.01)",
    // shampoo's own vector branch keeps an n x n statistic (eigh of 4096 x 4096 in the plan
    // table below); the golden fixture po_shampoo runs it on both backends
    "partition(matrices = shampoo(lr = 0.01, weight_decay = 0.1), vectors = adam())",
    "partition(matrices = shampoo(lr = 0.01, momentum = 0.5, weight_decay = 0.1, weight_decouple = true, \
     preconditioning_compute_steps = 2), vectors = adam())",
    "soap(lr = 0.01, precondition_frequency = 2)",
    "psgd_kron(lr = 0.01, weight_decay = 0.1)",
    "cosmos(lr = 0.01, rank = 2, weight_decay = 0.1)",
    // adapt: rules that read the gradient at another point (their input 1, random here)
    "sam(inner = sgd(lr = 0.1, momentum = 0.9), rho = 0.05)",
    "sam(inner = adam(lr = 0.01), rho = 0.1, adaptive = true)",
    // low-rank projections (stdlib/galore.opt, stdlib/projection.opt); refreshes at steps 3 and 6
    "partition(matrices = galore(inner = galore_adam(lr = 0.01), rank = 2, update_proj_gap = 3), vectors = adam())",
    "partition(matrices = galore(inner = adam(lr = 0.01), rank = 2, update_proj_gap = 3, moments = \"reset\"), \
     vectors = adam())",
    "partition(matrices = galore(inner = adam(lr = 0.01), rank = 2, update_proj_gap = 3, moments = \"reproject\"), \
     vectors = adam())",
    "partition(matrices = galore(inner = galore_adam(lr = 0.01), rank = 2, update_proj_gap = 3, \
     basis = \"randomized\"), vectors = adam())",
    "partition(matrices = dct_projection(inner = galore_adam(lr = 0.01), rank = 2, update_proj_gap = 3), \
     vectors = adam())",
    "partition(matrices = online_subspace_descent(inner = adam(lr = 0.01), rank = 2), vectors = adam())",
    "partition(matrices = gradnorm_lorp(inner = galore_adam(lr = 0.01), rank = 2, update_proj_gap = 3), \
     vectors = adam())",
    "partition(matrices = scaledgd(lr = 0.1, damping = 0.1), vectors = sgd())",
];

/// Random shapes for a group of parameters: a matrix and a vector, sizes drawn per case.
fn shapes(rng: &mut Pcg64, large: bool) -> Vec<Vec<usize>> {
    if large {
        vec![vec![300, 301], vec![rng.random_range(1..50)]]
    } else {
        vec![vec![rng.random_range(1..9), rng.random_range(1..9)], vec![rng.random_range(1..12)]]
    }
}

fn random(rng: &mut Pcg64, shape: &[usize], scale: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| scale * (rng.random::<f64>() * 2.0 - 1.0))
}

/// Runs `rule` on `shapes` for a few steps with both backends; returns the largest relative
/// difference of the parameters (and directions) seen, or a message.
fn compare<T: Lane>(rule: &str, shapes: &[Vec<usize>], seed: u64) -> Result<f64, String> {
    let graphs = compile_rule(rule, shapes).map_err(|d| format!("{rule} does not compile: {d:?}"))?;
    let mut rng = Pcg64::seed_from_u64(seed);
    let cast = |a: &ArrayD<f64>| a.mapv(T::from_f64);
    let params0: Vec<ArrayD<T>> = shapes.iter().map(|s| cast(&random(&mut rng, s, 1.0))).collect();
    let mut interp = Interp::<T>::new(graphs.clone(), 7);
    let mut directing = RuleExec::<T>::new(graphs.clone(), 7);
    let mut applying = RuleExec::<T>::new(graphs, 7);
    let (mut p_interp, mut p_dir, mut p_apply) = (params0.clone(), params0.clone(), params0);
    let mut worst = 0.0f64;
    // Differences within `floor` count as none. A rule that returns `new - param` (adan's
    // coupled decay, any `(param + u) / c - param`) rounds `param + u` to the parameter's ulp, so
    // one ulp of difference in `u` between the backends (the executor multiplies by reciprocals,
    // see fuse::reciprocals) can move its direction by one ulp of the parameter: directions are
    // held to the tolerance relative to themselves, or to 4 ulp of the largest parameter.
    let max_abs = |a: &ArrayD<T>| a.iter().fold(0.0f64, |m, x| m.max(Scalar::to_f64(*x).abs()));
    let mut check = |what: &str, a: &ArrayD<T>, b: &ArrayD<T>, floor: f64| -> Result<(), String> {
        let scale = max_abs(a).max(1e-30);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (Scalar::to_f64(*x), Scalar::to_f64(*y));
            if x.is_nan() != y.is_nan() {
                return Err(format!("{what}: NaN in one backend only ({x} vs {y})"));
            }
            if !x.is_nan() {
                let err = if (x - y).abs() <= floor { 0.0 } else { (x - y).abs() / scale };
                worst = worst.max(err);
            }
        }
        Ok(())
    };
    // One tensor per input of each graph: the gradient, and for a rule with `grad_at` the
    // gradient at its point.
    let inputs: Vec<usize> = interp.graphs().iter().map(|g| g.inputs.len()).collect();
    for step in 1..=6u64 {
        let grads: Vec<Vec<ArrayD<T>>> = shapes
            .iter()
            .zip(&inputs)
            .map(|(s, &k)| (0..k).map(|_| cast(&random(&mut rng, s, 0.1))).collect())
            .collect();
        let d_interp = interp.step(step, &p_interp, &grads).map_err(|e| format!("interp: {e}"))?;
        let d_dir = directing.step(step, &p_dir, &grads).map_err(|e| format!("exec step: {e}"))?;
        applying.step_apply(step, &mut p_apply, &grads).map_err(|e| format!("exec step_apply: {e}"))?;
        for k in 0..shapes.len() {
            let ulps = 4.0 * Scalar::to_f64(<T as num_traits::Float>::epsilon()) * max_abs(&p_interp[k]);
            check(&format!("step {step} direction {k}"), &d_interp[k], &d_dir[k], ulps)?;
            p_interp[k] = &p_interp[k] + &d_interp[k];
            p_dir[k] = &p_dir[k] + &d_dir[k];
            check(&format!("step {step} parameter {k} (directions)"), &p_interp[k], &p_dir[k], 0.0)?;
            check(&format!("step {step} parameter {k} (applied)"), &p_interp[k], &p_apply[k], 0.0)?;
        }
    }
    Ok(worst)
}

fn check_all<T: Lane>(tolerance: f64, large: bool) {
    let mut failures = Vec::new();
    for (i, rule) in RULES.iter().enumerate() {
        let mut rng = Pcg64::seed_from_u64(i as u64);
        let shapes = shapes(&mut rng, large);
        match compare::<T>(rule, &shapes, 100 + i as u64) {
            Ok(err) if err <= tolerance => {
                if err > 0.0 {
                    eprintln!("{rule} on {shapes:?}: largest relative difference {err:.2e}");
                }
            }
            Ok(err) => failures.push(format!("{rule} on {shapes:?}: relative error {err:.2e} > {tolerance:.0e}")),
            Err(e) => failures.push(format!("{rule} on {shapes:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "the executor and the interpreter disagree:\n{}", failures.join("\n"));
}

#[test]
fn every_rule_agrees_with_the_interpreter_in_f64() {
    check_all::<f64>(1e-12, false);
}

#[test]
fn every_rule_agrees_with_the_interpreter_in_f32() {
    check_all::<f32>(1e-5, false);
}

#[test]
fn every_rule_agrees_with_the_interpreter_on_large_tensors() {
    check_all::<f32>(1e-5, true);
}

/// Whether a node placed in the library is a call (a tensor operation), not a read of an input,
/// the parameter or a state slot.
fn is_call(node: &optic_compiler::ir::Node) -> bool {
    use optic_compiler::ir::Op;
    !node.shape.is_empty() && !matches!(node.op, Op::Input(_) | Op::Param | Op::State(_))
}

/// Kernels and bytes moved per parameter element by the applying form of `rule` on one
/// parameter of `n` elements in f32, after its second step (steady state).
fn fused_cost(rule: &str, n: usize) -> (usize, usize, usize) {
    let graphs = compile_rule(rule, &[vec![n]]).expect("compiles");
    let grads = vec![vec![ArrayD::<f32>::ones(IxDyn(&[n])); graphs[0].inputs.len()]];
    let mut exec = RuleExec::<f32>::new(graphs, 0);
    let mut params = vec![ArrayD::<f32>::ones(IxDyn(&[n]))];
    for step in 1..=2 {
        exec.step_apply(step, &mut params, &grads).expect("runs");
    }
    let (graph, sched) = exec.schedules(true)[0];
    if std::env::var_os("OPTIC_PRINT_SCHEDULE").is_some() {
        eprintln!("{}", optic_compiler::fuse::print_schedule(graph, sched, 4));
    }
    let library = sched
        .place
        .iter()
        .enumerate()
        .filter(|(id, p)| **p == optic_compiler::fuse::Place::Library && is_call(&graph.nodes[*id]))
        .count();
    let bytes = sched.kernels.iter().map(|k| 4 * (k.loads.len() + k.stores.len()) * k.len / n).sum();
    (sched.kernels.len(), bytes, library)
}

#[test]
fn adamw_is_one_kernel_moving_28_bytes_per_parameter() {
    // p, g, m, v read; p, m, v written in place; no library call.
    let (kernels, bytes, calls) = fused_cost("adamw(lr = 1e-3, weight_decay = 0.01)", 4096);
    assert_eq!((kernels, bytes, calls), (1, 28, 0));
}

/// Every example's graphs (initialization, data, training step with gradients, metrics) on the
/// executor and on the interpreter, from the same inputs: the largest relative difference.
fn example_differences<T: Lane>(path: &str) -> Vec<(String, f64)> {
    use optic_compiler::exec::GraphExec;
    use optic_compiler::interp::eval_nodes;
    use optic_compiler::lower::experiment::{experiments, lower_experiment};
    let checked = optic_compiler::check::check_paths(&[std::path::PathBuf::from(path)]);
    let mut out = Vec::new();
    for name in experiments(&checked.program) {
        let (plan, _) = lower_experiment(&checked.program, &name, &[]).expect("lowers");
        let files: Vec<ArrayD<T>> = plan.files.iter().map(|(_, a)| T::from_values(a.clone())).collect();
        let roots: Vec<usize> = plan.tensors.iter().map(|t| t.init).collect();
        let init = eval_nodes(&plan.init, 0, &files, plan.seed, &roots).expect("init");
        let mut inputs = init.clone();
        inputs.extend(init);
        let mut rng = Pcg64::seed_from_u64(5);
        inputs.extend(plan.data.iter().map(|d| random(&mut rng, d.batch_shape.as_slice(), 1.0).mapv(T::from_f64)));
        let mut roots = vec![plan.loss];
        roots.extend(plan.grads.iter().map(|g| g.1));
        let want = eval_nodes(&plan.train, 3, &inputs, plan.seed, &roots).expect("interp");
        let got = GraphExec::<T>::new(plan.train.clone(), roots).run(3, &inputs, plan.seed).expect("exec");
        let mut worst = 0.0f64;
        for (a, b) in want.iter().zip(&got) {
            let scale = a.iter().fold(0.0f64, |m, x| m.max(Scalar::to_f64(*x).abs())).max(1e-30);
            for (x, y) in a.iter().zip(b) {
                worst = worst.max((Scalar::to_f64(*x) - Scalar::to_f64(*y)).abs() / scale);
            }
        }
        out.push((name, worst));
    }
    out
}

#[test]
fn every_example_training_step_agrees_with_the_interpreter() {
    let mut failures = Vec::new();
    for entry in std::fs::read_dir("../examples").expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "opt") {
            let path = path.to_str().expect("utf-8");
            let f64s = example_differences::<f64>(path).into_iter().map(|(n, e)| (n, e, 1e-12));
            let f32s = example_differences::<f32>(path).into_iter().map(|(n, e)| (n, e, 1e-5));
            for (name, err, tolerance) in f64s.chain(f32s) {
                eprintln!("{name}: {err:.2e}");
                if err > tolerance {
                    failures.push(format!("{name}: {err:.2e} > {tolerance:.0e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// The fused plan of every rule in f32 at a steady step, on a vector and a matrix: kernels,
/// bytes moved by kernels per parameter element, and tensor-valued library calls (reductions,
/// matmuls, decompositions, ...). A change of fusion shows here.
#[test]
fn fused_plans_of_the_stdlib_rules() {
    let mut table =
        String::from("rule | vector [4096]: kernels, B/param, tensor-valued library calls | matrix [64, 64]: same\n");
    for rule in RULES {
        let (k1, b1, l1) = fused_cost(rule, 4096);
        let graphs = compile_rule(rule, &[vec![64, 64]]).expect("compiles");
        let grads = vec![vec![ArrayD::<f32>::ones(IxDyn(&[64, 64])); graphs[0].inputs.len()]];
        let mut exec = RuleExec::<f32>::new(graphs, 0);
        let mut params = vec![ArrayD::<f32>::ones(IxDyn(&[64, 64]))];
        for step in 1..=2 {
            exec.step_apply(step, &mut params, &grads).expect("runs");
        }
        let (graph, sched) = exec.schedules(true)[0];
        let library = sched
            .place
            .iter()
            .enumerate()
            .filter(|(id, p)| **p == optic_compiler::fuse::Place::Library && is_call(&graph.nodes[*id]))
            .count();
        let bytes: usize = sched.kernels.iter().map(|k| 4 * (k.loads.len() + k.stores.len()) * k.len / 4096).sum();
        table += &format!("{rule} | {k1}, {b1}, {l1} | {}, {bytes}, {library}\n", sched.kernels.len());
    }
    insta::assert_snapshot!(table);
}

/// A direction that ends in a matrix product (GaLore's deprojection) is applied as one product
/// accumulated into the parameter, and still agrees with the interpreter; a direction whose
/// kernel also reads the parameter elsewhere (decoupled weight decay) is not folded, since the
/// product would overwrite what that read needs.
#[test]
fn a_product_direction_is_accumulated_into_the_parameter() {
    let galore = "partition(matrices = galore(inner = galore_adam(lr = 0.01), rank = 4, update_proj_gap = 3), \
                  vectors = adam())";
    let shapes = vec![vec![40, 24], vec![24]];
    for (rule, folded) in [(galore, 1), ("adamw(lr = 0.01, weight_decay = 0.1)", 0)] {
        let graphs = compile_rule(rule, &shapes).expect("compiles");
        let mut rng = Pcg64::seed_from_u64(3);
        let mut params: Vec<ArrayD<f64>> = shapes.iter().map(|s| random(&mut rng, s, 1.0)).collect();
        let mut exec = RuleExec::<f64>::new(graphs, 7);
        for step in 1..=4 {
            let grads: Vec<Vec<ArrayD<f64>>> = shapes.iter().map(|s| vec![random(&mut rng, s, 0.1)]).collect();
            exec.step_apply(step, &mut params, &grads).expect("runs");
            assert_eq!(exec.updates_folded_into_products(), folded, "{rule} at step {step}");
        }
    }
    for (tolerance, seed) in [(1e-12, 5), (1e-12, 6)] {
        let err = compare::<f64>(galore, &shapes, seed).expect("both backends run");
        assert!(err <= tolerance, "galore with its update folded: relative error {err:.2e}");
    }
    let err = compare::<f32>(galore, &[vec![300, 301], vec![7]], 8).expect("both backends run");
    assert!(err <= 1e-5, "galore in f32 on a large matrix: relative error {err:.2e}");
}

/// Many parameters without group sums run as one contiguous run of parameters per worker, each
/// worker doing their whole step (exec::run_in_shares); with a group sum they take the common
/// path. Both agree with the interpreter, on a pool of three workers.
#[test]
fn many_parameters_split_between_workers_agree_with_the_interpreter() {
    let shapes: Vec<Vec<usize>> = vec![
        vec![40, 300],
        vec![8000],
        vec![6000],
        vec![60, 170],
        vec![17],
        vec![9000],
        vec![33, 33],
        vec![7000],
        vec![1],
    ];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().expect("a pool");
    pool.install(|| {
        for rule in ["adamw(lr = 0.01, weight_decay = 0.1)", "nadam()", "chain(clip_global_norm(1.0), adam(lr = 0.01))"]
        {
            let err = compare::<f64>(rule, &shapes, 11).expect("both backends run");
            assert!(err <= 1e-12, "{rule} in f64: {err:.2e}");
            let err = compare::<f32>(rule, &shapes, 12).expect("both backends run");
            assert!(err <= 1e-5, "{rule} in f32: {err:.2e}");
        }
    });
}
