//! Property tests of the orthogonalized update rules (`stdlib/rules_orthogonal.opt`), evaluated
//! by the reference interpreter in f64 on matrices built here, and compared with SVDs computed
//! here (faer, through `optic_runtime::linalg`):
//!
//! - Newton-Schulz maps x = U S V^T to U p5(S / ||x||_F) V^T, p5 the quintic polynomial applied
//!   five times: the input's singular vectors, singular values moved by the polynomial alone. So
//!   on well-conditioned inputs the singular values land in the band the quintic coefficients
//!   give (they do not converge to 1), and the result does not depend on the input's scale.
//! - Muon's width scalings, its decoupled decay and its treatment of tensors of rank > 2;
//!   NorMuon's neuron-wise normalization; AdaMuon's fixed update norm; AuON's direction-keeping
//!   cosh brake and Hybrid-AuON's single Newton-Schulz step.
//!
//! The peers' trajectories themselves are the golden fixtures (`tests/golden.rs`).

use ndarray::{Array1, Array2, ArrayD, Ix2};
use optic_compiler::interp::Interp;
use optic_compiler::lower::compile_rule_in;
use optic_runtime::linalg;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Functions of the stdlib wrapped as rules, so that the interpreter applies them to a tensor.
const PROBES: &str = r#"
rule ns_probe(steps: int = 5)(g) = newton_schulz(g, steps)
rule ns_eps_probe(eps = 1e-7)(g) = newton_schulz(g, 5, eps = eps)
"#;

/// The quintic Newton-Schulz coefficients (Jordan et al. 2024), the stdlib's defaults.
const ABC: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);

/// One Newton-Schulz step on a singular value.
fn p(x: f64) -> f64 {
    let (a, b, c) = ABC;
    a * x + b * x.powi(3) + c * x.powi(5)
}

/// `steps` Newton-Schulz steps on a singular value.
fn p_steps(x: f64, steps: usize) -> f64 {
    (0..steps).fold(x, |x, _| p(x))
}

/// The directions `rule` returns for `grads` applied one step after the other to a parameter
/// held at `param`, evaluated by the interpreter in f64.
fn directions(rule: &str, param: &ArrayD<f64>, grads: &[ArrayD<f64>]) -> Vec<ArrayD<f64>> {
    let graphs = compile_rule_in(Some(("probes.opt", PROBES)), rule, &[param.shape().to_vec()]).unwrap_or_else(|ds| {
        panic!("`{rule}` does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
    });
    let mut interp = Interp::<f64>::new(graphs, 0);
    grads
        .iter()
        .enumerate()
        .map(|(t, g)| {
            let d = interp.step(t as u64 + 1, std::slice::from_ref(param), &[vec![g.clone()]]);
            d.unwrap_or_else(|e| panic!("`{rule}` step {}: {e}", t + 1)).remove(0)
        })
        .collect()
}

/// The first direction of `rule` for the gradient `g` (parameter zero).
fn direction(rule: &str, g: &Array2<f64>) -> Array2<f64> {
    let d = directions(rule, &ArrayD::zeros(g.shape()), &[g.clone().into_dyn()]).remove(0);
    d.into_dimensionality::<Ix2>().expect("a matrix")
}

fn uniform(rng: &mut Pcg64, m: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_fn((m, n), |_| rng.random::<f64>() * 2.0 - 1.0)
}

/// An m x n matrix with orthonormal columns (m >= n) or rows (m < n), from a random QR.
fn orthonormal(rng: &mut Pcg64, m: usize, n: usize) -> Array2<f64> {
    if m >= n {
        linalg::qr(uniform(rng, m, n).view()).0
    } else {
        linalg::qr(uniform(rng, n, m).view()).0.t().to_owned()
    }
}

/// U diag(s) V^T for random orthonormal U [m, k] and V [n, k], k = min(m, n) = s.len().
fn with_spectrum(rng: &mut Pcg64, m: usize, n: usize, s: &[f64]) -> Array2<f64> {
    let k = m.min(n);
    assert_eq!(s.len(), k);
    let u = orthonormal(rng, m, k);
    let v = orthonormal(rng, n, k);
    let us = &u * &Array1::from(s.to_vec());
    us.dot(&v.t())
}

/// k values from `hi` down to `lo`, evenly spaced in log scale.
fn geomspace(hi: f64, lo: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| hi * (lo / hi).powf(i as f64 / (k.max(2) - 1) as f64)).collect()
}

/// The full thin SVD of x.
fn svd(x: &Array2<f64>) -> (Array2<f64>, Array1<f64>, Array2<f64>) {
    linalg::svd(x.view(), x.nrows().min(x.ncols())).expect("svd")
}

fn frobenius(x: &Array2<f64>) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// U f(S) V^T from an SVD of x.
fn spectral_map(x: &Array2<f64>, f: impl Fn(f64) -> f64) -> Array2<f64> {
    let (u, s, vt) = svd(x);
    (&u * &s.mapv(f)).dot(&vt)
}

/// Test matrices: (name, matrix) for tall, wide and square shapes, each well-conditioned
/// (singular values from 1 down to 0.1), ill-conditioned (1 down to 1e-8) and with uniform random
/// entries.
fn test_matrices(seed: u64) -> Vec<(String, Array2<f64>)> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut out = Vec::new();
    for (m, n) in [(24, 7), (7, 24), (12, 12), (64, 32)] {
        let k = m.min(n);
        out.push((format!("{m}x{n} well-conditioned"), with_spectrum(&mut rng, m, n, &geomspace(1.0, 0.1, k))));
        out.push((format!("{m}x{n} ill-conditioned"), with_spectrum(&mut rng, m, n, &geomspace(1.0, 1e-8, k))));
        out.push((format!("{m}x{n} uniform"), uniform(&mut rng, m, n)));
    }
    out
}

// ------------------------------------------------------------------------------------ Newton-Schulz

/// NS(x) = U p5(S / ||x||_F) V^T: the input's singular vectors, each singular value moved by the
/// polynomial alone (no mixing between directions), on every shape and conditioning.
#[test]
fn newton_schulz_keeps_the_singular_vectors_and_maps_each_singular_value_by_the_quintic() {
    for (name, x) in test_matrices(1) {
        let got = direction("ns_probe()", &x);
        let norm = frobenius(&x);
        let want = spectral_map(&x, |s| p_steps(s / norm, 5));
        let err = max_abs_diff(&got, &want);
        assert!(err <= 1e-12, "{name}: NS(x) is {err:.1e} away from U p5(S/||x||) V^T");
        // the same, seen from the input's singular bases: U^T NS(x) V is diagonal
        let (u, s, vt) = svd(&x);
        let core = u.t().dot(&got).dot(&vt.t());
        for ((i, j), v) in core.indexed_iter() {
            let want = if i == j { p_steps(s[i] / norm, 5) } else { 0.0 };
            assert!((v - want).abs() <= 1e-12, "{name}: (U^T NS(x) V)[{i}, {j}] = {v}, want {want}");
        }
    }
}

/// The quintic coefficients trade convergence for speed: after 5 steps, singular values that
/// started at s / ||x||_F >= 6e-3 lie in [0.6818, 1.1344] (the interval the polynomial maps into
/// itself), not at 1; smaller ones have grown by at most 3.4445^5 and every singular value stays
/// below 1.2024, the polynomial's maximum on [0, 1].
#[test]
fn newton_schulz_singular_values_lie_in_the_quintic_band() {
    let (lo, hi, ceiling) = (0.6818, 1.1344, 1.2024);
    for (name, x) in test_matrices(2) {
        let norm = frobenius(&x);
        let (_, s_in, _) = svd(&x);
        let (_, s_out, _) = svd(&direction("ns_probe()", &x));
        let mut banded = 0;
        for &s in &s_in {
            if s / norm >= 6e-3 {
                banded += 1;
            }
        }
        // s_out is sorted descending, s_in too, but the polynomial does not keep the order: count
        let in_band = s_out.iter().filter(|&&s| (lo..=hi).contains(&s)).count();
        assert!(in_band >= banded, "{name}: {in_band} singular values in [{lo}, {hi}], {banded} expected: {s_out}");
        assert!(s_out.iter().all(|&s| s <= ceiling), "{name}: a singular value above {ceiling}: {s_out}");
        if name.contains("well-conditioned") {
            assert_eq!(banded, s_in.len(), "{name}: every singular value is large enough");
            assert!(s_out.iter().all(|&s| s >= lo), "{name}: {s_out}");
            // and they are not all 1: the iteration has not converged
            assert!(s_out.iter().any(|&s| (s - 1.0).abs() > 0.05), "{name}: {s_out}");
        }
    }
    // the band is the polynomial's: a tighter one fails
    let x = test_matrices(2).remove(0).1;
    let (_, s_out, _) = svd(&direction("ns_probe()", &x));
    assert!(s_out.iter().any(|&s| !(0.75..=1.1).contains(&s)), "{s_out}");
}

/// More steps bring the singular values into the band from further below: the ill-conditioned
/// matrices' small singular values, left near 0 by 5 steps, are in the band after 20.
#[test]
fn newton_schulz_with_more_steps_reaches_the_band_from_smaller_singular_values() {
    let mut rng = Pcg64::seed_from_u64(3);
    let x = with_spectrum(&mut rng, 20, 10, &geomspace(1.0, 1e-6, 10));
    let norm = frobenius(&x);
    let (_, s5, _) = svd(&direction("ns_probe(steps = 5)", &x));
    let (_, s20, _) = svd(&direction("ns_probe(steps = 20)", &x));
    assert!(s5.iter().any(|&s| s < 0.1), "5 steps leave the smallest behind: {s5}");
    assert!(s20.iter().all(|&s| (0.6818..=1.1344).contains(&s)), "{s20}");
    // and steps = 0 is the normalization alone
    let got = direction("ns_probe(steps = 0)", &x);
    assert!(max_abs_diff(&got, &(&x / norm)) <= 1e-15);
}

/// NS(c x) = NS(x) for any c > 0 whose ||c x|| is above eps; below eps the input is divided by
/// eps instead (torch's clamp), and a zero input gives zero, not NaN.
#[test]
fn newton_schulz_is_scale_invariant() {
    for (name, x) in test_matrices(4) {
        let base = direction("ns_probe()", &x);
        for c in [1e-4, 1e-2, 3.0, 1e3, 1e6] {
            let scaled = direction("ns_probe()", &(&x * c));
            let err = max_abs_diff(&scaled, &base);
            assert!(err <= 1e-12, "{name}: NS({c} x) differs from NS(x) by {err:.1e}");
        }
    }
    let mut rng = Pcg64::seed_from_u64(5);
    let x = uniform(&mut rng, 6, 4);
    let tiny = &x * (1e-9 / frobenius(&x)); // ||tiny|| = 1e-9 < eps = 1e-7
    let want = spectral_map(&tiny, |s| p_steps(s / 1e-7, 5));
    assert!(max_abs_diff(&direction("ns_eps_probe(eps = 1e-7)", &tiny), &want) <= 1e-15);
    let zero = Array2::zeros((6, 4));
    assert_eq!(direction("ns_probe()", &zero), zero);
}

// ------------------------------------------------------------------------------------ Muon

/// With momentum 0 and no decay Muon's direction is -lr * scale * NS(g), the scale set by
/// `adjust_lr`: sqrt(max(1, rows / cols)), 0.2 sqrt(max(rows, cols)), sqrt(rows / cols) or 1.
#[test]
fn muon_width_scalings() {
    let mut rng = Pcg64::seed_from_u64(6);
    for (m, n) in [(18, 8), (8, 18), (9, 9)] {
        let g = uniform(&mut rng, m, n);
        let ns = direction("ns_probe()", &g);
        let (mf, nf) = (m as f64, n as f64);
        for (adjust, scale) in [
            ("original", (mf / nf).max(1.0).sqrt()),
            ("match_rms_adamw", 0.2 * mf.max(nf).sqrt()),
            ("spectral", (mf / nf).sqrt()),
            ("none", 1.0),
        ] {
            let rule = format!("muon(lr = 0.1, weight_decay = 0, momentum = 0, adjust_lr = \"{adjust}\")");
            let got = direction(&rule, &g);
            let err = max_abs_diff(&got, &(&ns * (-0.1 * scale)));
            assert!(err <= 1e-14, "{m}x{n} {adjust}: {err:.1e}");
        }
        // "match_rms_adamw" makes the update's RMS about 0.2 * lr whatever the shape (exactly so
        // for an orthogonal update: the quintic's spread keeps it within its band)
        let got = direction("muon(lr = 1, weight_decay = 0, momentum = 0, adjust_lr = \"match_rms_adamw\")", &g);
        let rms = frobenius(&got) / ((m * n) as f64).sqrt();
        assert!((0.2 * 0.68..=0.2 * 1.14).contains(&rms), "{m}x{n}: rms {rms}");
    }
}

/// Decoupled weight decay: the direction changes by exactly -lr * weight_decay * param, the
/// orthogonalized part being independent of the parameter.
#[test]
fn muon_weight_decay_is_decoupled() {
    let mut rng = Pcg64::seed_from_u64(7);
    let param = uniform(&mut rng, 10, 6).into_dyn();
    let grads: Vec<ArrayD<f64>> = (0..4).map(|_| uniform(&mut rng, 10, 6).into_dyn()).collect();
    let with = directions("muon(lr = 0.05, weight_decay = 0.3)", &param, &grads);
    let without = directions("muon(lr = 0.05, weight_decay = 0)", &param, &grads);
    for (t, (a, b)) in with.iter().zip(&without).enumerate() {
        let decay = a - b;
        let want = &param * (-0.05 * 0.3);
        let err = decay.iter().zip(&want).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(err <= 1e-15, "step {}: {err:.1e}", t + 1);
    }
}

/// A tensor of rank > 2 is orthogonalized as its matrix view [size 0, the rest], as
/// pytorch_optimizer's Muon does for conv filters: the same directions as on that matrix.
#[test]
fn muon_on_a_higher_rank_tensor_is_muon_on_its_matrix_view() {
    let mut rng = Pcg64::seed_from_u64(8);
    let param = uniform(&mut rng, 5, 12).into_dyn();
    let grads: Vec<Array2<f64>> = (0..3).map(|_| uniform(&mut rng, 5, 12)).collect();
    let as_4d = |x: &Array2<f64>| x.clone().into_shape_with_order(vec![5, 3, 2, 2]).expect("reshape");
    for rule in [
        "muon(lr = 0.02, adjust_lr = \"match_rms_adamw\")",
        "normuon(weight_decay = 0.1)",
        "adamuon(weight_decay = 0.1)",
        "hybrid_auon()",
    ] {
        let flat = directions(rule, &param, &grads.iter().map(|g| g.clone().into_dyn()).collect::<Vec<_>>());
        let param4 = as_4d(&param.clone().into_dimensionality().expect("matrix"));
        let conv = directions(rule, &param4, &grads.iter().map(as_4d).collect::<Vec<_>>());
        for (t, (a, b)) in flat.iter().zip(&conv).enumerate() {
            assert_eq!(b.shape(), &[5, 3, 2, 2]);
            let b = b.clone().into_shape_with_order(vec![5, 12]).expect("reshape");
            let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
            assert!(err <= 1e-15, "{rule} step {}: {err:.1e}", t + 1);
        }
    }
}

// ------------------------------------------------------------------------------------ NorMuon, AdaMuon

/// NorMuon's defining step: after orthogonalization every row (output neuron) is divided by the
/// root of its running mean square. At step 1 that mean square is (1 - beta2) times the row's
/// own, so the rows of the first update all have the same norm (Muon's do not); and the update
/// keeps the Frobenius norm of lr * scale * NS(u) at every step.
#[test]
fn normuon_equalizes_the_neurons_and_preserves_the_norm() {
    let mut rng = Pcg64::seed_from_u64(9);
    for (m, n) in [(16, 6), (6, 16)] {
        let g = with_spectrum(&mut rng, m, n, &geomspace(1.0, 0.01, m.min(n)));
        let muon_rows = row_norms(&direction("muon(lr = 1, weight_decay = 0)", &g));
        let spread = |r: &Array1<f64>| r.fold(0.0f64, |a, &b| a.max(b)) / r.fold(f64::INFINITY, |a, &b| a.min(b));
        assert!(spread(&muon_rows) > 1.05, "{m}x{n}: Muon's rows already have equal norms: {muon_rows}");
        // (eps = 0: the default 1e-10 next to row RMS of about 0.1 leaves a relative 1e-9)
        let d = direction("normuon(lr = 1, weight_decay = 0, eps = 0)", &g);
        let rows = row_norms(&d);
        assert!(spread(&rows) - 1.0 <= 1e-12, "{m}x{n}: NorMuon's first rows: {rows}");

        let param = ArrayD::zeros(vec![m, n]);
        let grads: Vec<ArrayD<f64>> = (0..5).map(|_| uniform(&mut rng, m, n).into_dyn()).collect();
        let nor = directions("normuon(lr = 1, weight_decay = 0)", &param, &grads);
        let muon = directions("muon(lr = 1, weight_decay = 0)", &param, &grads);
        for (t, (a, b)) in nor.iter().zip(&muon).enumerate() {
            let (na, nb) = (a.iter().map(|v| v * v).sum::<f64>().sqrt(), b.iter().map(|v| v * v).sum::<f64>().sqrt());
            assert!((na - nb).abs() <= 1e-9 * nb, "{m}x{n} step {}: ||NorMuon|| {na}, ||Muon|| {nb}", t + 1);
        }
    }
}

fn row_norms(x: &Array2<f64>) -> Array1<f64> {
    x.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect()
}

/// AdaMuon rescales its adapted update to the Frobenius norm of an exactly semi-orthogonal matrix,
/// sqrt(min(rows, cols)), times lr * scale, at every step; and its step-1 direction (where
/// v = (1 - beta2) O^2 and the bias correction undoes the factor) is the sign pattern of NS(m)
/// up to eps, rescaled.
#[test]
fn adamuon_has_a_fixed_update_norm() {
    let mut rng = Pcg64::seed_from_u64(10);
    for (m, n) in [(12, 5), (5, 12)] {
        let param = ArrayD::zeros(vec![m, n]);
        let grads: Vec<ArrayD<f64>> = (0..6).map(|_| uniform(&mut rng, m, n).into_dyn()).collect();
        let ds = directions("adamuon(lr = 0.1, adjust_lr = \"none\")", &param, &grads);
        for (t, d) in ds.iter().enumerate() {
            let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            let want = 0.1 * (m.min(n) as f64).sqrt();
            assert!((norm - want).abs() <= 1e-9 * want, "{m}x{n} step {}: ||d|| = {norm}, want {want}", t + 1);
        }
        // (eps = 0: with the default, an entry of NS(g) near 0 is not quite its sign)
        let g0 = grads[0].clone().into_dimensionality::<Ix2>().expect("matrix");
        let signs = direction("ns_probe()", &g0).mapv(f64::signum);
        let want = &signs * (-0.1 * (m.min(n) as f64).sqrt() / frobenius(&signs));
        let got = direction("adamuon(lr = 0.1, adjust_lr = \"none\", eps = 0)", &g0);
        assert!(max_abs_diff(&got, &want) <= 1e-14, "{m}x{n}: step 1 is not the rescaled sign of NS(g)");
    }
}

// ------------------------------------------------------------------------------------ AuON

/// AuON's brake r = sqrt(mean(cosh(gamma * x / (||x|| + 1e-7))^2)), computed here.
fn brake(x: &Array2<f64>, gamma: f64) -> f64 {
    let norm = frobenius(x) + 1e-7;
    (x.iter().map(|v| (gamma * v / norm).cosh().powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// AuON (as ryyzn9/AuON's optimizer) keeps the Nesterov momentum's direction and only shortens
/// it: at step 1, u = (1 - mu^2) g and the direction is -lr * u / (r + 1e-8) with the brake r in
/// [1, cosh(gamma)], so the singular vectors and the condition number are u's. It is linear in
/// the gradient's scale; with `normalize` (the paper's equation) it is scale-invariant instead
/// and its norm is at most lr.
#[test]
fn auon_brakes_without_turning() {
    let mut rng = Pcg64::seed_from_u64(11);
    let (lr, mu, gamma) = (0.24, 0.95, 1.5);
    let mut cases = test_matrices(12);
    // a spiky gradient: one entry dominates, the brake bites hardest
    let mut spike = uniform(&mut rng, 6, 5) * 1e-3;
    spike[[2, 3]] = 1.0;
    cases.push(("spike".into(), spike));
    for (name, g) in cases {
        let u = &g * (1.0 - mu * mu);
        let r = brake(&u, gamma);
        assert!((1.0..=gamma.cosh()).contains(&r), "{name}: brake {r}");
        let got = direction("auon()", &g);
        let err = max_abs_diff(&got, &(&u * (-lr / (r + 1e-8))));
        assert!(err <= 1e-15, "{name}: {err:.1e}");
        let norm = frobenius(&got);
        let un = frobenius(&u);
        assert!(norm <= lr * un && norm >= lr * un / gamma.cosh(), "{name}: ||d|| = {norm}, ||u|| = {un}");
        // linear in scale without `normalize`, invariant with it (up to the 1e-7 added to the
        // norms, a relative 1e-7 / ||u|| here)
        let tol = 1e-6 / un;
        let twice = direction("auon()", &(&g * 2.0));
        let err = max_abs_diff(&twice, &(&got * 2.0)) / frobenius(&twice);
        assert!(err <= tol, "{name}: auon(2 g) - 2 auon(g): {err:.1e}");
        let normalized = direction("auon(normalize = true)", &g);
        let normalized_twice = direction("auon(normalize = true)", &(&g * 2.0));
        let err = max_abs_diff(&normalized, &normalized_twice) / frobenius(&normalized);
        assert!(err <= tol, "{name}: auon(2 g) - auon(g) with normalize: {err:.1e}");
        // the scale does matter without `normalize`: a 2-fold larger gradient moves twice as far
        assert!(max_abs_diff(&twice, &got) >= 0.4 * frobenius(&got) / (g.len() as f64).sqrt(), "{name}");
        assert!(frobenius(&normalized) <= lr, "{name}: ||d|| = {}", frobenius(&normalized));
    }
    // the spike is braked harder than a flat gradient of the same norm
    let flat = Array2::from_elem((6, 5), 1.0);
    let mut spike = Array2::zeros((6, 5));
    spike[[0, 0]] = 1.0;
    assert!(brake(&spike, gamma) > brake(&flat, gamma));
}

/// Hybrid-AuON applies one Newton-Schulz step to u / (||u|| + 1e-7) before the brake: its
/// direction is -lr * Y / (r(Y) + 1e-8) with Y = U p(S / (||u|| + 1e-7)) V^T, so the singular
/// vectors are u's and, p(x) / x being decreasing on [0, 1], the condition number shrinks
/// (plain AuON keeps it). On a vector the iteration is skipped.
#[test]
fn hybrid_auon_is_one_newton_schulz_step_then_the_brake() {
    let (lr, mu, gamma) = (0.24, 0.95, 1.5);
    for (name, g) in test_matrices(13) {
        let u = &g * (1.0 - mu * mu);
        let norm = frobenius(&u) + 1e-7;
        let y = spectral_map(&u, |s| p(s / norm));
        let got = direction("hybrid_auon()", &g);
        let want = &y * (-lr / (brake(&y, gamma) + 1e-8));
        let err = max_abs_diff(&got, &want);
        assert!(err <= 1e-13, "{name}: {err:.1e}");
        let cond = |x: &Array2<f64>| {
            let (_, s, _) = svd(x);
            s[0] / s[s.len() - 1]
        };
        if !name.contains("ill") {
            assert!(cond(&got) < cond(&u), "{name}: condition {} -> {}", cond(&u), cond(&got));
            let plain = direction("auon()", &g);
            assert!((cond(&plain) / cond(&u) - 1.0).abs() <= 1e-9, "{name}");
        }
        // five steps as the repository's class default: in the quintic band
        let five = direction("hybrid_auon(ns_steps = 5)", &g);
        let y5 = spectral_map(&u, |s| p_steps(s / norm, 5));
        assert!(max_abs_diff(&five, &(&y5 * (-lr / (brake(&y5, gamma) + 1e-8)))) <= 1e-13, "{name}");
    }
    let mut rng = Pcg64::seed_from_u64(14);
    let v = ArrayD::from_shape_fn(vec![7], |_| rng.random::<f64>() - 0.5);
    let zero = ArrayD::zeros(vec![7]);
    let hybrid = directions("hybrid_auon()", &zero, std::slice::from_ref(&v));
    let plain = directions("auon()", &zero, &[v]);
    assert_eq!(hybrid, plain);
}

/// The rules refuse a vector (a matrix rule needs `partition`) with a diagnostic, not a panic;
/// an empty stack of matrices (`mlp(depth = 2)` declares w [0, h, h]) gets an empty direction.
#[test]
fn matrix_rules_on_vectors_and_empty_tensors() {
    for rule in ["muon()", "normuon()", "adamuon()"] {
        let e = compile_rule_in(None, rule, &[vec![6]]).expect_err("a vector is refused");
        let text: String = e.iter().map(|d| d.render_plain()).collect();
        assert!(text.contains("E503"), "{rule}: {text}");
        let empty = ArrayD::<f64>::zeros(vec![0, 4, 4]);
        let d = directions(rule, &empty, &[empty.clone(), empty.clone()]);
        assert_eq!(d[1].shape(), &[0, 4, 4], "{rule}");
    }
}
