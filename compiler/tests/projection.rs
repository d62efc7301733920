//! The low-rank gradient methods of `stdlib/galore.opt` and `stdlib/projection.opt`, by the
//! invariants that define them (no peer trajectory exists except GaLore's `keep`, which the
//! golden fixtures cover): GaLore's three moment policies at a refresh, the DCT basis and the
//! columns it selects, online subspace descent's projector loss, GradNormLoRP's split of
//! magnitude and direction, and ScaledGD's rate on ill-conditioned low-rank problems against
//! plain gradient descent. Every rule runs on the reference interpreter and on the executor,
//! which must agree.

use ndarray::{Array2, ArrayD, Axis, Ix2};
use optic_compiler::exec::RuleExec;
use optic_compiler::interp::{eval_once, Interp};
use optic_compiler::lower::{compile_expr_in, compile_rule};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn gaussian(rng: &mut Pcg64, m: usize, n: usize) -> Array2<f64> {
    // Box–Muller on the generator's uniforms.
    Array2::from_shape_fn((m, n), |_| {
        let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    })
}

/// Haar-random orthonormal columns (m x k).
fn orthonormal(rng: &mut Pcg64, m: usize, k: usize) -> Array2<f64> {
    gram_schmidt(gaussian(rng, m, k))
}

/// The columns of `a` orthonormalized by modified Gram–Schmidt.
fn gram_schmidt(mut a: Array2<f64>) -> Array2<f64> {
    for j in 0..a.ncols() {
        for i in 0..j {
            let d = a.column(i).dot(&a.column(j));
            let ci = a.column(i).to_owned();
            a.column_mut(j).scaled_add(-d, &ci);
        }
        let n = a.column(j).dot(&a.column(j)).sqrt();
        a.column_mut(j).mapv_inplace(|x| x / n);
    }
    a
}

fn dyn2(a: &Array2<f64>) -> ArrayD<f64> {
    a.clone().into_dyn()
}

fn mat(a: &ArrayD<f64>) -> Array2<f64> {
    a.clone().into_dimensionality::<Ix2>().expect("a matrix")
}

/// Largest |a - b| relative to the largest |a|.
fn rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// One rule on one matrix parameter, on both backends in lockstep (they must agree to 1e-12).
struct Run {
    interp: Interp<f64>,
    exec: RuleExec<f64>,
    param: Array2<f64>,
    step: u64,
}

impl Run {
    fn new(rule: &str, param: Array2<f64>) -> Run {
        let graphs = compile_rule(rule, &[param.shape().to_vec()]).unwrap_or_else(|ds| {
            panic!("{rule} does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
        });
        Run { interp: Interp::new(graphs.clone(), 3), exec: RuleExec::new(graphs, 3), param, step: 0 }
    }

    /// One step with gradient `g`: the direction (also added to the parameter).
    fn step(&mut self, g: &Array2<f64>) -> Array2<f64> {
        self.step += 1;
        let p = [dyn2(&self.param)];
        let inputs = [vec![dyn2(g)]];
        let d = mat(&self.interp.step(self.step, &p, &inputs).expect("interp step")[0]);
        let e = mat(&self.exec.step(self.step, &p, &inputs).expect("exec step")[0]);
        assert!(rel(&d, &e) <= 1e-12, "step {}: executor and interpreter differ by {:e}", self.step, rel(&d, &e));
        self.param = &self.param + &d;
        d
    }

    /// The state whose slot name ends with `suffix` (e.g. "galore/p"), after the last step.
    fn state(&self, suffix: &str) -> Array2<f64> {
        let slots = &self.interp.graphs()[0].slots;
        let k = slots.iter().position(|s| s.name.ends_with(suffix)).unwrap_or_else(|| {
            panic!("no state `{suffix}` among {:?}", slots.iter().map(|s| &s.name).collect::<Vec<_>>())
        });
        mat(self.interp.state(0, k).expect("written"))
    }
}

/// GaLore's inner Adam on a rank-2 projection of an 8x6 weight, refreshed every 4 steps.
fn galore(moments: &str) -> String {
    format!(
        "galore(inner = galore_adam(lr = 0.01), rank = 2, update_proj_gap = 4, scale = 0.25, moments = \"{moments}\")"
    )
}

/// "reset": the step of a refresh and those after it equal a fresh GaLore started on the same
/// gradients (its inner rule starts again from zero moments at step 1, the projector from the
/// refresh's gradient); "keep" does not.
#[test]
fn galore_reset_restarts_the_inner_rule_at_each_refresh() {
    let mut rng = Pcg64::seed_from_u64(1);
    let grads: Vec<Array2<f64>> = (0..6).map(|_| gaussian(&mut rng, 8, 6)).collect();
    let w = gaussian(&mut rng, 8, 6);
    let mut reset = Run::new(&galore("reset"), w.clone());
    let mut keep = Run::new(&galore("keep"), w.clone());
    let mut fresh = Run::new(&galore("reset"), w.clone());
    for (t, g) in grads.iter().enumerate().map(|(i, g)| (i + 1, g)) {
        let (dr, dk) = (reset.step(g), keep.step(g));
        if t < 4 {
            assert!(rel(&dk, &dr) < 1e-15, "before the first refresh the policies agree (step {t})");
        } else {
            // reset's steps 4..6 are the fresh rule's steps 1..3 (until the fresh rule's own
            // refresh at its step 4).
            let df = fresh.step(g);
            assert!(rel(&dr, &df) < 1e-12, "step {t}: reset {dr} vs fresh {df}");
            assert!(rel(&dr, &dk) > 1e-3, "step {t}: keep should differ from reset");
        }
    }
}

/// "reproject" with an unchanged subspace equals "keep": gradients c G0 with c a power of two
/// have exactly the same singular vectors, so the basis change T = P_new^T P_old is I (to
/// rounding) and the moments do not move.
#[test]
fn galore_reproject_with_an_unchanged_subspace_equals_keep() {
    let mut rng = Pcg64::seed_from_u64(2);
    let g0 = gaussian(&mut rng, 8, 6);
    let w = gaussian(&mut rng, 8, 6);
    let mut reproject = Run::new(&galore("reproject"), w.clone());
    let mut keep = Run::new(&galore("keep"), w);
    for (t, c) in [1.0, 2.0, 0.5, 4.0, 1.0, 0.25, 2.0, 8.0, 1.0, 0.5].iter().enumerate() {
        let g = &g0 * *c;
        let (dr, dk) = (reproject.step(&g), keep.step(&g));
        assert!(rel(&dk, &dr) < 1e-12, "step {}: reproject {dr} vs keep {dk}", t + 1);
    }
}

/// "reproject" when the subspace changes: at the refresh step the inner Adam's moments are
/// first carried into the new basis, m -> T m and v -> (T*T) v with T = P_new P_old^T (the
/// right projection of an 8x6 weight), then updated with the new projected gradient x:
/// m = beta1 T m_old + (1 - beta1) x, v = beta2 (T*T) v_old + (1 - beta2) x^2.
#[test]
fn galore_reproject_carries_the_moments_into_the_new_basis() {
    let mut rng = Pcg64::seed_from_u64(3);
    let w = gaussian(&mut rng, 8, 6);
    let mut run = Run::new(&galore("reproject"), w.clone());
    let mut keep = Run::new(&galore("keep"), w);
    let grads: Vec<Array2<f64>> = (0..4).map(|_| gaussian(&mut rng, 8, 6)).collect();
    for g in &grads[..3] {
        run.step(g);
        keep.step(g);
    }
    let (p_old, m_old, v_old) = (run.state("galore/p"), run.state("galore_adam/m"), run.state("galore_adam/v"));
    let (d, dk) = (run.step(&grads[3]), keep.step(&grads[3]));
    assert!(rel(&dk, &d) > 1e-3, "a changed subspace moves the moments");
    let (p, m, v) = (run.state("galore/p"), run.state("galore_adam/m"), run.state("galore_adam/v"));
    assert_eq!(p.dim(), (2, 6), "right projection: P holds V^T[:2]");
    assert!(rel(&p, &p_old) > 1e-3, "the projector was refreshed");
    let t = p.dot(&p_old.t());
    let x = grads[3].dot(&p.t());
    let m_want = m_old.dot(&t.t()) * 0.9 + &x * 0.1;
    let v_want = v_old.dot(&t.mapv(|e| e * e).t()) * 0.999 + x.mapv(|e| e * e) * 0.001;
    assert!(rel(&m_want, &m) < 1e-12, "m: {m} vs {m_want}");
    assert!(rel(&v_want, &v) < 1e-12, "v: {v} vs {v_want}");
}

/// The value of an expression (with the stdlib in scope) in f64.
fn eval(expr: &str) -> ArrayD<f64> {
    let g = compile_expr_in(None, expr).unwrap_or_else(|ds| {
        panic!("`{expr}` does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
    });
    eval_once::<f64>(&g, 1, None, &[], 0).unwrap_or_else(|e| panic!("`{expr}`: {e}"))
}

/// The DCT-II basis is orthonormal and is scipy's orthonormal DCT-II matrix transposed; a
/// column is a cosine of frequency k.
#[test]
fn the_dct_basis_is_orthonormal() {
    for n in [1usize, 2, 7, 16] {
        let q = mat(&eval(&format!("dct_basis({n})")));
        let gram = q.t().dot(&q);
        for ((i, j), x) in gram.indexed_iter() {
            assert!((x - if i == j { 1.0 } else { 0.0 }).abs() < 1e-13, "n = {n}: Q^T Q [{i}, {j}] = {x}");
        }
        for ((j, k), x) in q.indexed_iter() {
            let c = if k == 0 { (0.5f64).sqrt() } else { 1.0 };
            let want = (2.0 / n as f64).sqrt()
                * c
                * (std::f64::consts::PI * k as f64 * (2 * j + 1) as f64 / (2 * n) as f64).cos();
            assert!((x - want).abs() < 1e-14, "n = {n}: Q[{j}, {k}] = {x}, want {want}");
        }
    }
    // [0.5, 3, -1, 3, 2]
    let top = eval(
        "top_indices(0.5 * onehot(0, 5) + 3 * onehot(1, 5) - onehot(2, 5) + 3 * onehot(3, 5) + 2 * onehot(4, 5), 3)",
    );
    assert_eq!(top.iter().copied().collect::<Vec<_>>(), vec![1.0, 3.0, 4.0], "largest first, ties by index");
}

/// The DCT projection keeps the gradient's `rank` DCT components of largest norm: with an
/// inner rule that passes its input through, the direction of a gradient made of 3 DCT
/// columns (right projection, rank 3) is the gradient itself, and adding weaker components on
/// other columns leaves the direction on the strong ones.
#[test]
fn dct_projection_keeps_the_strongest_dct_columns() {
    let mut rng = Pcg64::seed_from_u64(4);
    let (m, n) = (12, 8);
    let q = mat(&eval(&format!("dct_basis({n})")));
    let pick = |cols: &[usize]| Array2::from_shape_fn((n, cols.len()), |(i, j)| q[[i, cols[j]]]);
    let strong = gaussian(&mut rng, m, 3).dot(&pick(&[1, 4, 6]).t()) * 3.0;
    let weak = gaussian(&mut rng, m, 2).dot(&pick(&[0, 7]).t()) * 0.1;
    let rule = "dct_projection(inner = scale(1.0), rank = 3, update_proj_gap = 100)";
    let mut run = Run::new(rule, gaussian(&mut rng, m, n));
    let d = run.step(&strong);
    assert!(rel(&strong, &d) < 1e-12, "exactly 3 DCT components: kept whole");
    let mut run = Run::new(rule, gaussian(&mut rng, m, n));
    let d = run.step(&(&strong + &weak));
    assert!(rel(&strong, &d) < 1e-12, "the weak components are dropped");
    let p = run.state("galore/p");
    assert_eq!(p.dim(), (3, n), "right projection, rank 3");
    // Largest first: the column norms of `strong` on the three picked columns, descending.
    let energy = |c: usize| strong.dot(&q.column(c)).iter().map(|x| x * x).sum::<f64>();
    let mut order = [1, 4, 6];
    order.sort_by(|a, b| energy(*b).total_cmp(&energy(*a)));
    for (row, col) in order.iter().enumerate() {
        assert!(
            rel(&p.row(row).to_owned().insert_axis(Axis(0)), &q.column(*col).to_owned().insert_axis(Axis(0))) < 1e-12
        );
    }
}

/// ||gn P^T P - gn||_F^2 for P with rows in the projector's basis.
fn subspace_loss(g: &Array2<f64>, p: &Array2<f64>) -> f64 {
    let gn = g / g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let r = gn.dot(&p.t()).dot(p) - &gn;
    r.iter().map(|x| x * x).sum()
}

/// Online subspace descent: the projector starts at the SVD of the first gradient; when the
/// gradients then come from another rank-3 subspace, the steps of its own Adam lower the
/// online-PCA loss of the projector on them (at every one of the first 10 steps, then, as its Adam
/// overshoots, over every 25 steps), until the projector has turned to the new subspace (loss
/// below 1e-5 of its start). GaLore's projector, refreshed only every 1000 steps, stays where it
/// was.
#[test]
fn online_subspace_descent_lowers_its_projector_loss() {
    let mut rng = Pcg64::seed_from_u64(5);
    let (m, n, r) = (16, 10, 3);
    let first = orthonormal(&mut rng, m, r).dot(&orthonormal(&mut rng, n, r).t());
    let (u2, v2) = (orthonormal(&mut rng, m, r), orthonormal(&mut rng, n, r));
    let w = gaussian(&mut rng, m, n);
    let rule = "online_subspace_descent(inner = galore_adam(lr = 0.01), rank = 3, projector = adam(lr = 0.02))";
    let mut run = Run::new(rule, w.clone());
    let mut galore = Run::new("galore(inner = galore_adam(lr = 0.01), rank = 3, update_proj_gap = 1000)", w);
    run.step(&first);
    galore.step(&first);
    assert!(subspace_loss(&first, &run.state("online_subspace_descent/p")) < 1e-20, "step 1: the SVD projector");
    let mut losses = Vec::new();
    for _ in 0..150 {
        // the second subspace with changing singular values
        let s = Array2::from_diag(&ndarray::Array1::from_shape_fn(r, |_| 1.0 + rng.random::<f64>()));
        let g = u2.dot(&s).dot(&v2.t());
        run.step(&g);
        galore.step(&g);
        losses.push(subspace_loss(&g, &run.state("online_subspace_descent/p")));
    }
    eprintln!("losses every 5 steps: {:?}", losses.iter().step_by(5).map(|l| format!("{l:.1e}")).collect::<Vec<_>>());
    // The gradients' singular values change and Adam overshoots, so the loss falls step by step
    // for the first 10 steps, then window by window: every 25 steps reach a lower loss.
    assert!(losses[..10].windows(2).all(|w| w[1] < w[0]), "the first 10 steps: {:?}", &losses[..10]);
    let lows: Vec<f64> = losses.chunks(25).map(|c| c.iter().copied().fold(f64::INFINITY, f64::min)).collect();
    assert!(lows.windows(2).all(|w| w[1] < w[0]), "lowest loss of each 25 steps: {lows:?}");
    assert!(losses[149] < 1e-5 * losses[0], "the loss fell from {:e} to {:e}", losses[0], losses[149]);
    let g = u2.dot(&v2.t());
    assert!(subspace_loss(&g, &galore.state("galore/p")) > 0.5, "GaLore's projector is still the first one");
}

fn row_norms(a: &Array2<f64>) -> Vec<f64> {
    a.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect()
}

/// GradNormLoRP separates magnitude and direction (weight normalization): with no gradient
/// the weight is rebuilt exactly; a gradient tangent to every row (<G_i, W_i> = 0) leaves the
/// row norms where they were; a radial gradient (G_i = c_i W_i) leaves every row's direction.
#[test]
fn gradnorm_lorp_moves_magnitude_and_direction_separately() {
    let mut rng = Pcg64::seed_from_u64(6);
    let (m, n) = (10, 7);
    let w = gaussian(&mut rng, m, n);
    let rule = "gradnorm_lorp(inner = galore_adam(lr = 0.05), rank = 3, update_proj_gap = 5)";
    let zero = Run::new(rule, w.clone()).step(&Array2::zeros((m, n)));
    assert!(zero.iter().all(|x| x.abs() < 1e-14), "zero gradient, zero step: {zero}");
    // Each step's gradient is tangent to the current weight's rows.
    let tangent = |rng: &mut Pcg64, w: &Array2<f64>| {
        let mut t = gaussian(rng, m, n);
        for (mut t, wr) in t.rows_mut().into_iter().zip(w.rows()) {
            let c = t.dot(&wr) / wr.dot(&wr);
            t.scaled_add(-c, &wr);
        }
        t
    };
    let mut run = Run::new(rule, w.clone());
    for _ in 0..3 {
        let g = tangent(&mut rng, &run.param);
        let d = run.step(&g);
        assert!(d.iter().any(|x| x.abs() > 1e-4), "the direction moves");
    }
    for (a, b) in row_norms(&run.param).iter().zip(row_norms(&w)) {
        assert!((a - b).abs() < 1e-12 * b, "row norm {a} vs {b}");
    }
    let c: Vec<f64> = (0..m).map(|_| rng.random::<f64>() - 0.5).collect();
    let radial = Array2::from_shape_fn((m, n), |(i, j)| c[i] * w[[i, j]]);
    let mut run = Run::new(rule, w.clone());
    run.step(&radial);
    for (a, b) in run.param.rows().into_iter().zip(w.rows()) {
        let cos = a.dot(&b) / (a.dot(&a) * b.dot(&b)).sqrt();
        assert!((cos - 1.0).abs() < 1e-12, "a row turned: cosine {cos}");
    }
    assert!(rel(&w, &run.param) > 1e-4, "the magnitudes moved");
}

/// ScaledGD's direction is -lr g (X^T X + damping I)^-1, and for a stacked pair [F; G] (split
/// = rows of F) each block is preconditioned by the other's Gram matrix.
#[test]
fn scaledgd_preconditions_by_the_partner_gram_matrix() {
    let mut rng = Pcg64::seed_from_u64(7);
    // g (X^T X + damping I)^-1
    let solve_right = |g: &Array2<f64>, x: &Array2<f64>, damping: f64| {
        g.dot(&invert(&(x.t().dot(x) + Array2::<f64>::eye(x.ncols()) * damping)))
    };
    let x = gaussian(&mut rng, 9, 3);
    let g = gaussian(&mut rng, 9, 3);
    let d = Run::new("scaledgd(lr = 0.3, damping = 0.1)", x.clone()).step(&g);
    assert!(rel(&(solve_right(&g, &x, 0.1) * -0.3), &d) < 1e-12);
    let d = Run::new("scaledgd(lr = 0.3, damping = 0.1, split = 4)", x.clone()).step(&g);
    let (f, h) = (x.slice(ndarray::s![..4, ..]).to_owned(), x.slice(ndarray::s![4.., ..]).to_owned());
    let top = solve_right(&g.slice(ndarray::s![..4, ..]).to_owned(), &h, 0.1) * -0.3;
    let bottom = solve_right(&g.slice(ndarray::s![4.., ..]).to_owned(), &f, 0.1) * -0.3;
    let want = ndarray::concatenate(Axis(0), &[top.view(), bottom.view()]).expect("stacks");
    assert!(rel(&want, &d) < 1e-12);
}

/// The inverse of a small symmetric positive definite matrix (Gauss–Jordan).
fn invert(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut m = ndarray::concatenate(Axis(1), &[a.view(), Array2::<f64>::eye(n).view()]).expect("augment");
    for c in 0..n {
        let p = m[[c, c]];
        m.row_mut(c).mapv_inplace(|x| x / p);
        for r in 0..n {
            if r != c {
                let f = m[[r, c]];
                let row = m.row(c).to_owned();
                m.row_mut(r).scaled_add(-f, &row);
            }
        }
    }
    m.slice(ndarray::s![.., n..]).to_owned()
}

/// Steps until ||X X^T - M||_F / ||M||_F < 1e-6 on the factorization loss
/// f(X) = ||X X^T - M||_F^2 / 4 (gradient (X X^T - M) X) of a rank-2 PSD M with eigenvalues 1
/// and 1 / kappa, from a small random X, or None within `budget` steps.
fn steps_to_recover(rule: &str, kappa: f64, budget: usize) -> Option<usize> {
    let mut rng = Pcg64::seed_from_u64(8);
    let (n, r) = (20, 2);
    let u = orthonormal(&mut rng, n, r);
    let target = u.dot(&Array2::from_diag(&ndarray::arr1(&[1.0, 1.0 / kappa]))).dot(&u.t());
    let norm = |a: &Array2<f64>| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut run = Run::new(rule, gaussian(&mut rng, n, r) * 0.01);
    for t in 1..=budget {
        let x = run.param.clone();
        let residual = x.dot(&x.t()) - &target;
        if norm(&residual) / norm(&target) < 1e-6 {
            return Some(t - 1);
        }
        run.step(&residual.dot(&x));
    }
    None
}

/// ScaledGD(lambda)'s rate does not depend on the condition number: recovering a rank-2
/// target with condition number 100 takes it about as many steps as a well-conditioned one,
/// where gradient descent with the same step size needs about kappa times more and does not
/// finish within the budget.
#[test]
fn scaledgd_converges_at_a_rate_independent_of_the_condition_number() {
    let scaled = "scaledgd(lr = 0.5, damping = 1e-4)";
    let gd = "sgd(lr = 0.5)";
    let (s1, s100) = (steps_to_recover(scaled, 1.0, 400), steps_to_recover(scaled, 100.0, 400));
    let (g1, g100) = (steps_to_recover(gd, 1.0, 400), steps_to_recover(gd, 100.0, 400));
    eprintln!("ScaledGD: {s1:?} (kappa 1), {s100:?} (kappa 100); GD: {g1:?}, {g100:?}");
    let (s1, s100) = (s1.expect("ScaledGD, kappa 1"), s100.expect("ScaledGD, kappa 100"));
    assert!(s100 as f64 <= 1.5 * s1 as f64 + 10.0, "ScaledGD: {s1} steps for kappa 1, {s100} for kappa 100");
    let g1 = g1.expect("GD, kappa 1");
    assert!(g100.is_none(), "GD recovered the ill-conditioned target in {g100:?} steps");
    assert!(g1 as f64 <= 1.5 * s1 as f64 + 50.0, "GD on the well-conditioned target: {g1}, ScaledGD {s1}");
}
