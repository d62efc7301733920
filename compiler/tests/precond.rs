//! Property tests of the Kronecker and eigenbasis preconditioners of `stdlib/rules_precond.opt`,
//! where the golden fixtures (tests/golden.rs: po_shampoo*, po_soap*, po_kron*) do not reach:
//! Shampoo's inverse fourth roots against an eigh-free Newton iteration, SOAP against Adam run on
//! the rotated gradients and its own basis refresh against the peer's formula, the helpers'
//! defining properties (a sorting permutation, a spectral-norm lower bound), and COSMOS, which
//! has no packaged peer: its tracked basis stays orthonormal, its core is rotated exactly, at full
//! rank the tracking reproduces the EMA of G^T G, and its step has the norm it prescribes. All in
//! f64 on the reference interpreter.

use ndarray::{Array2, ArrayD, Ix2, IxDyn};
use optic_compiler::interp::{eval_once, Interp, Recorded};
use optic_compiler::lower::{compile_expr_in, compile_rule};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Helpers written in the language: checks that reduce to one tensor.
const HELPERS: &str = r#"
/// x sorted by descending_order, next to the permutation's row and column sums.
fn sorted_and_sums(x) {
    let p = descending_order(x)
    return concat([p @ x, sum(p, axis = 0), sum(p, axis = 1)], axis = 0)
}

/// cosmos_track from a random orthonormal basis p[n, r] and core s = p^T c p of a random
/// positive definite c: the new basis's Gram matrix minus the identity, and the new core minus
/// p'^T (beta2 p s p^T + (1 - beta2) g^T g) p', side by side.
fn track_residuals(m: int, n: int, r: int, beta2) {
    let (p, unused) = qr(randn([n, r]))
    let c = randn([n, n])
    let s = p^T @ (c @ c^T) @ p
    let g = randn([m, n])
    let (pn, sn) = cosmos_track(p, s, g, beta2)
    let want = pn^T @ (beta2 * (p @ s @ p^T) + (1 - beta2) * (g^T @ g)) @ pn
    return concat([pn^T @ pn - eye(r), sn - want], axis = 1)
}

/// norm_lower_bound of a random positive semidefinite matrix (Kron's A A^T + B B^T) next to the
/// largest eigenvalue, its spectral norm.
fn bound_and_norm(seed_rows: int) {
    let a = randn([6, seed_rows])
    let b = randn([6, 6])
    let c = a @ a^T + b @ b^T
    let (w, q) = eigh(c)
    return concat([norm_lower_bound(c)[None], max(w)[None]], axis = 0)
}

/// COSMOS's tracking at full rank (r = n) over four gradients, started as cosmos_matrix starts
/// it: p s p^T minus the plain EMA of g^T g.
fn full_rank_tracking_error(m: int, n: int, beta2) {
    let g1 = randn([m, n])
    let g2 = randn([m, n])
    let g3 = randn([m, n])
    let g4 = randn([m, n])
    let p1 = left_singular(g1^T @ g1, n)
    let s1 = (1 - beta2) * ((p1^T @ g1^T) @ (g1 @ p1))
    let (p2, s2) = cosmos_track(p1, s1, g2, beta2)
    let (p3, s3) = cosmos_track(p2, s2, g3, beta2)
    let (p4, s4) = cosmos_track(p3, s3, g4, beta2)
    var c = (1 - beta2) * (g1^T @ g1)
    c = beta2 * c + (1 - beta2) * (g2^T @ g2)
    c = beta2 * c + (1 - beta2) * (g3^T @ g3)
    c = beta2 * c + (1 - beta2) * (g4^T @ g4)
    return p4 @ s4 @ p4^T - c
}
"#;

fn eval(expr: &str, seed: u64) -> ArrayD<f64> {
    let g = compile_expr_in(Some(("helpers.opt", HELPERS)), expr).unwrap_or_else(|ds| {
        panic!("`{expr}` does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
    });
    eval_once::<f64>(&g, 1, None, &[], seed).unwrap_or_else(|e| panic!("`{expr}`: evaluation failed: {e}"))
}

fn max_abs(x: &ArrayD<f64>) -> f64 {
    x.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn random(rng: &mut Pcg64, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random::<f64>() * 2.0 - 1.0)
}

fn mat(x: &ArrayD<f64>) -> Array2<f64> {
    x.clone().into_dimensionality::<Ix2>().expect("a matrix")
}

/// The largest |a - b| relative to the largest |b|.
fn rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Runs `rule` (one parameter of the gradients' shape, starting at zero) on the gradients and
/// returns its directions, with `recorded` supplied.
fn directions(rule: &str, grads: &[ArrayD<f64>], recorded: Option<Recorded<f64>>) -> Vec<ArrayD<f64>> {
    let shape = grads[0].shape().to_vec();
    let graphs = compile_rule(rule, std::slice::from_ref(&shape)).unwrap_or_else(|d| panic!("{rule}: {d:?}"));
    let mut interp = Interp::<f64>::new(graphs, 3);
    if let Some(table) = recorded {
        interp.set_recorded(0, table).expect("the rule records these names");
    }
    let param = ArrayD::zeros(IxDyn(&shape));
    (1..=grads.len())
        .map(|t| {
            interp.step(t as u64, std::slice::from_ref(&param), &[vec![grads[t - 1].clone()]]).expect("steps")[0]
                .clone()
        })
        .collect()
}

// ------------------------------------------------------------------------------------ Shampoo

/// The inverse p-th root of a symmetric positive definite matrix by the coupled Newton
/// iteration (Iannazzo 2006; Guo & Higham 2006): from X = I / c, M = A / c^p with
/// c = ||A||_F^(1/p), repeat T = ((p + 1) I - M) / p, X <- X T, M <- T^p M until M = I. Matrix
/// products only, no eigendecomposition (the uncoupled form is numerically unstable).
fn newton_inverse_root(a: &Array2<f64>, p: i32) -> Array2<f64> {
    let n = a.nrows();
    let eye = Array2::<f64>::eye(n);
    let c = a.iter().map(|x| x * x).sum::<f64>().sqrt().powf(1.0 / p as f64);
    let mut x = &eye / c;
    let mut m = a / c.powi(p);
    for _ in 0..100 {
        let t = (&eye * (p + 1) as f64 - &m) / p as f64;
        x = x.dot(&t);
        let mut tp = eye.clone();
        for _ in 0..p {
            tp = tp.dot(&t);
        }
        m = tp.dot(&m);
        if (&m - &eye).iter().all(|e| e.abs() < 1e-15) {
            break;
        }
    }
    x
}

#[test]
fn shampoo_steps_are_inverse_fourth_roots_of_the_accumulated_statistics() {
    let (lr, eps) = (0.1, 0.5);
    let mut rng = Pcg64::seed_from_u64(11);
    let grads: Vec<ArrayD<f64>> = (0..3).map(|_| random(&mut rng, &[5, 3])).collect();
    let rule = format!("shampoo(lr = {lr}, matrix_eps = {eps})");
    let got = directions(&rule, &grads, None);
    let (mut l, mut r) = (Array2::<f64>::eye(5) * eps, Array2::<f64>::eye(3) * eps);
    for (g, d) in grads.iter().zip(&got) {
        let g = mat(g);
        l = l + g.dot(&g.t());
        r = r + g.t().dot(&g);
        let want = newton_inverse_root(&l, 4).dot(&g).dot(&newton_inverse_root(&r, 4)) * -lr;
        let err = rel(&mat(d), &want);
        assert!(err < 1e-12, "shampoo step vs -lr L^-1/4 G R^-1/4 by Newton's iteration: {err:e}");
    }
    // a vector: full-matrix AdaGrad, -lr P^-1/2 g
    let grads: Vec<ArrayD<f64>> = (0..3).map(|_| random(&mut rng, &[4])).collect();
    let got = directions(&rule, &grads, None);
    let mut p = Array2::<f64>::eye(4) * eps;
    for (g, d) in grads.iter().zip(&got) {
        let g = g.clone().into_shape_with_order((4, 1)).expect("column");
        p = p + g.dot(&g.t());
        let want = newton_inverse_root(&p, 2).dot(&g) * -lr;
        let err = rel(&mat(&d.clone().into_shape_with_order(IxDyn(&[4, 1])).expect("column")), &want);
        assert!(err < 1e-12, "shampoo vector step vs -lr P^-1/2 g: {err:e}");
    }
}

#[test]
fn shampoo_recomputes_its_roots_only_every_preconditioning_compute_steps() {
    let mut rng = Pcg64::seed_from_u64(12);
    let grads: Vec<ArrayD<f64>> = (0..4).map(|_| random(&mut rng, &[4, 3])).collect();
    let got = directions("shampoo(lr = 0.1, preconditioning_compute_steps = 2)", &grads, None);
    // the roots start at zero, as the peer's: no move until the first recomputation
    assert_eq!(max_abs(&got[0]), 0.0);
    assert!(max_abs(&got[1]) > 0.0);
    // step 3 reuses step 2's roots on its own gradient
    let every = directions("shampoo(lr = 0.1)", &grads, None);
    assert!(rel(&mat(&got[1]), &mat(&every[1])) < 1e-14, "step 2 recomputes");
    assert!(rel(&mat(&got[2]), &mat(&every[2])) > 1e-6, "step 3 keeps the stale roots");
}

// ------------------------------------------------------------------------------------ SOAP

/// A random orthogonal matrix (the Q of a QR of a Gaussian matrix, by Gram-Schmidt).
fn orthogonal(rng: &mut Pcg64, n: usize) -> Array2<f64> {
    let mut q = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut v = mat(&random(rng, &[n, 1])).column(0).to_owned();
        for k in 0..j {
            let c = q.column(k).dot(&v);
            v = &v - &(&q.column(k) * c);
        }
        let norm = v.dot(&v).sqrt();
        q.column_mut(j).assign(&(v / norm));
    }
    q
}

/// SOAP with a fixed basis (Q_L, Q_R supplied as the recorded eigenbases, no refresh within the
/// run) is Adam with SOAP's one-step delay (`soap_vector`) run on the rotated gradients
/// Q_L^T G Q_R, its direction rotated back: Q_L d Q_R^T. With identity bases it is that Adam
/// itself (HeavyBall's degenerate-equivalence test).
#[test]
fn soap_is_adam_in_the_rotated_basis() {
    let (m, n, steps) = (5, 4, 6);
    let mut rng = Pcg64::seed_from_u64(13);
    let grads: Vec<ArrayD<f64>> = (0..steps).map(|_| random(&mut rng, &[m, n])).collect();
    let opts = "lr = 0.01, beta1 = 0.9, beta2 = 0.99, weight_decay = 0";
    let soap = format!("soap_matrix({opts}, precondition_frequency = 100)");
    let adam = format!("soap_vector({opts})");
    for identity in [true, false] {
        let (ql, qr) = if identity {
            (Array2::<f64>::eye(m), Array2::<f64>::eye(n))
        } else {
            (orthogonal(&mut rng, m), orthogonal(&mut rng, n))
        };
        let mut table = Recorded::new();
        table.insert("eigenbases[0]", 1, ql.clone().into_dyn());
        table.insert("eigenbases[1]", 1, qr.clone().into_dyn());
        let got = directions(&soap, &grads, Some(table));
        let rotated: Vec<ArrayD<f64>> = grads.iter().map(|g| ql.t().dot(&mat(g)).dot(&qr).into_dyn()).collect();
        let want = directions(&adam, &rotated, None);
        assert_eq!(max_abs(&got[0]), 0.0, "step 1 only initializes");
        for t in 1..steps {
            let back = ql.dot(&mat(&want[t])).dot(&qr.t());
            let err = rel(&mat(&got[t]), &back);
            assert!(err < 1e-12, "identity {identity}, step {}: soap vs rotated Adam: {err:e}", t + 1);
        }
    }
}

/// A rule state by the end of its slot name (`.../q_l`).
fn state_named(interp: &Interp<f64>, name: &str) -> Array2<f64> {
    let slot = interp.graphs()[0].slots.iter().position(|s| s.name.ends_with(&format!("/{name}"))).expect("a slot");
    mat(interp.state(0, slot).expect("set"))
}

/// The peer's get_orthogonal_matrix_qr for one side, in float64: the QR (modified Gram-Schmidt)
/// of gg q with its columns in descending order of diag(q^T gg q); the basis and that order.
fn power_qr(gg: &Array2<f64>, q: &Array2<f64>) -> (Array2<f64>, Vec<usize>) {
    let power = gg.dot(q);
    let est: Vec<f64> = (0..q.ncols()).map(|j| q.column(j).dot(&power.column(j))).collect();
    let mut order: Vec<usize> = (0..est.len()).collect();
    order.sort_by(|&a, &b| est[b].total_cmp(&est[a]));
    let mut out = Array2::<f64>::zeros(power.raw_dim());
    for (k, &j) in order.iter().enumerate() {
        let mut v = power.column(j).to_owned();
        for i in 0..k {
            let c = out.column(i).dot(&v);
            v = &v - &(&out.column(i) * c);
        }
        let norm = v.dot(&v).sqrt();
        out.column_mut(k).assign(&(v / norm));
    }
    (out, order)
}

/// SOAP's own refresh (no injection; square gradients, so no null space): at step s + 1 with
/// s a multiple of precondition_frequency, each basis becomes the QR of one power step with its
/// columns sorted by the estimated eigenvalues (column signs aside), and the second moment,
/// updated in the old basis, has its rows and columns permuted by the same orders.
#[test]
fn soap_refreshes_its_bases_by_a_sorted_power_step_and_qr() {
    let (n, freq) = (4, 3);
    let mut rng = Pcg64::seed_from_u64(15);
    let grads: Vec<ArrayD<f64>> = (0..=freq).map(|_| random(&mut rng, &[n, n])).collect();
    let rule =
        format!("soap_matrix(lr = 0.01, beta1 = 0.9, beta2 = 0.8, weight_decay = 0, precondition_frequency = {freq})");
    let graphs = compile_rule(&rule, &[vec![n, n]]).expect("compiles");
    let mut interp = Interp::<f64>::new(graphs, 3);
    let param = [ArrayD::zeros(IxDyn(&[n, n]))];
    for t in 1..=freq {
        interp.step(t as u64, &param, &[vec![grads[t - 1].clone()]]).expect("steps");
    }
    let (ql, qr, v) = (state_named(&interp, "q_l"), state_named(&interp, "q_r"), state_named(&interp, "v"));
    interp.step(freq as u64 + 1, &param, &[vec![grads[freq].clone()]]).expect("the refresh step");
    let g = mat(&grads[freq]);
    let (want_l, order_l) = power_qr(&state_named(&interp, "gg_l"), &ql);
    let (want_r, order_r) = power_qr(&state_named(&interp, "gg_r"), &qr);
    for (side, got, want) in
        [("left", state_named(&interp, "q_l"), want_l), ("right", state_named(&interp, "q_r"), want_r)]
    {
        for j in 0..n {
            let sign = got.column(j).dot(&want.column(j)).signum();
            let err = (&got.column(j) * sign - want.column(j)).iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(err < 1e-10, "{side} basis column {j}: {err:e}");
        }
    }
    let rotated = ql.t().dot(&g).dot(&qr);
    let updated = &v + &((&rotated * &rotated - &v) * (1.0 - 0.8));
    let want_v = Array2::from_shape_fn((n, n), |(i, j)| updated[[order_l[i], order_r[j]]]);
    let err = rel(&state_named(&interp, "v"), &want_v);
    assert!(err < 1e-12, "the second moment follows the new column order: {err:e}");
}

#[test]
fn descending_order_is_a_stable_sorting_permutation() {
    for (seed, x) in [(1, "randn([7])"), (2, "floor(3 * rand([9]))")] {
        let out = eval(&format!("sorted_and_sums({x})"), seed);
        let v: Vec<f64> = out.iter().copied().collect();
        let len = v.len() / 3;
        let (sorted, col, row) = (&v[..len], &v[len..2 * len], &v[2 * len..]);
        assert!(sorted.windows(2).all(|w| w[0] >= w[1]), "{x}: not descending: {sorted:?}");
        assert!(col.iter().chain(row).all(|&s| s == 1.0), "{x}: not a permutation: {col:?} {row:?}");
    }
    // ties keep their index order: [1, 2, 1, 2] -> rows pick indices 1, 3, 0, 2
    let p = eval(
        "descending_order(concat([ones_like(randn([1])), 2 * ones_like(randn([1])), \
                  ones_like(randn([1])), 2 * ones_like(randn([1]))], axis = 0))",
        3,
    );
    let picks: Vec<usize> = p.rows().into_iter().map(|r| r.iter().position(|&x| x == 1.0).expect("one")).collect();
    assert_eq!(picks, [1, 3, 0, 2]);
}

// ------------------------------------------------------------------------------------ Kron

/// PSGD's norm_lower_bound is a lower bound of the spectral norm, and a good one (within a
/// factor sqrt(n), since it starts from the largest column): checked against the largest
/// eigenvalue of symmetric positive semidefinite matrices (Kron's A A^T + B B^T).
#[test]
fn norm_lower_bound_bounds_the_spectral_norm_from_below() {
    for seed in 0..8 {
        let out = eval("bound_and_norm(4)", seed);
        let (bound, norm) = (out[[0]], out[[1]]);
        assert!(bound <= norm * (1.0 + 1e-12), "seed {seed}: {bound} exceeds the spectral norm {norm}");
        assert!(
            bound >= norm / 6f64.sqrt(),
            "seed {seed}: {bound} is below ||a||_2 / sqrt(n) = {}",
            norm / 6f64.sqrt()
        );
    }
}

// ------------------------------------------------------------------------------------ COSMOS

#[test]
fn cosmos_keeps_its_basis_orthonormal_and_rotates_its_core_exactly() {
    for (seed, (m, n, r)) in [(5, (6, 5, 2)), (6, (3, 7, 3)), (7, (8, 4, 4))] {
        let out = eval(&format!("track_residuals({m}, {n}, {r}, 0.95)"), seed);
        let gram = out.slice(ndarray::s![.., ..r]).iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let core = out.slice(ndarray::s![.., r..]).iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(gram < 1e-13, "{m}x{n} rank {r}: P'^T P' - I = {gram:e}");
        assert!(core < 1e-11, "{m}x{n} rank {r}: S' - P'^T (b2 P S P^T + (1 - b2) G^T G) P' = {core:e}");
    }
}

/// At full rank the subspace is everything: P S P^T is exactly the EMA of G^T G, so the tracked
/// second-moment basis is that EMA's eigenbasis up to one subspace-iteration step (the paper's
/// reduction to a one-sided SOAP).
#[test]
fn cosmos_at_full_rank_tracks_the_ema_of_the_gram_matrix() {
    for (seed, (m, n)) in [(8, (6, 4)), (9, (3, 5))] {
        let err = max_abs(&eval(&format!("full_rank_tracking_error({m}, {n}, 0.9)"), seed));
        assert!(err < 1e-12, "{m}x{n}: P S P^T - EMA(G^T G) = {err:e}");
    }
}

/// COSMOS's step is normalized: without decay every direction has Frobenius norm
/// lr * lr_ratio * sqrt(m n) (up to the eps in ||U|| + eps).
#[test]
fn cosmos_steps_have_the_prescribed_norm() {
    let (m, n, lr, ratio) = (6, 5, 0.01, 0.1);
    let mut rng = Pcg64::seed_from_u64(14);
    let grads: Vec<ArrayD<f64>> = (0..5).map(|_| random(&mut rng, &[m, n])).collect();
    let got = directions(&format!("cosmos(lr = {lr}, lr_ratio = {ratio}, rank = 2)"), &grads, None);
    let want = lr * ratio * ((m * n) as f64).sqrt();
    for (t, d) in got.iter().enumerate() {
        let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - want).abs() <= 1e-6 * want, "step {}: ||d|| = {norm}, want {want}", t + 1);
    }
}
