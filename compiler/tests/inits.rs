//! The initializers of `stdlib/inits.opt`, drawn at moderate shapes by the reference interpreter
//! and compared with their definitions (torch.nn.init's where they follow it): exact values for
//! the deterministic ones, bounds, means and variances within a few standard errors for the
//! random ones, orthogonality, rank and sparsity. Each draw is seeded; the tolerances are wide
//! enough (about 4 standard errors) that another seed passes too, and narrow enough that a wrong
//! gain or fan (a factor of sqrt(2) or 3 in a variance) fails.

use optic_compiler::interp::{eval_nodes, eval_once, ArrayD};
use optic_compiler::lower::compile_expr_in;
use optic_compiler::lower::experiment::lower_experiment;

/// Helpers written in the language: decompositions of a draw, in the same expression.
const HELPERS: &str = r#"
/// The singular values of a lowrank draw.
fn lowrank_spectrum(m: int, n: int, rank: int, std) {
    let (u, s, vt) = svd(lowrank([m, n], rank, std))
    return s
}

/// The singular values of any matrix.
fn spectrum(w) {
    let (u, s, vt) = svd(w)
    return s
}

/// An aligned_lowrank draw of rank r for a Gaussian target, and what of it lies outside the
/// target's top-r singular subspaces (left and right), its norm, and its cosine with the
/// target's rank-r truncation: [outside, norm, cosine].
fn aligned_check(m: int, n: int, r: int, std) {
    let target = gaussian([m, n])
    let w = aligned_lowrank([m, n], target, r, std)
    let (u, s, vt) = svd(target, r)
    let outside = norm(w - u @ (u^T @ w @ vt^T) @ vt)
    return concat([fill([1], outside), fill([1], norm(w)), fill([1], cosine_similarity(w, (u * s) @ vt))])
}
"#;

/// The value of an expression in f64, drawn with `seed`.
fn eval(expr: &str, seed: u64) -> ArrayD<f64> {
    let g = compile_expr_in(Some(("helpers.opt", HELPERS)), expr).unwrap_or_else(|ds| {
        panic!("`{expr}` does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
    });
    eval_once::<f64>(&g, 1, None, &[], seed).unwrap_or_else(|e| panic!("`{expr}`: evaluation failed: {e}"))
}

fn mean(x: &ArrayD<f64>) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn var(x: &ArrayD<f64>) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
}

/// |got - want| within `k` standard errors `se`.
fn near(what: &str, got: f64, want: f64, se: f64, k: f64) {
    assert!((got - want).abs() <= k * se, "{what}: {got} is not within {k} x {se} of {want}");
}

/// Mean and variance of independent entries with standard deviation `std` (and, for the
/// variance's standard error, kurtosis `kurt`: 3 for a Gaussian, 9/5 for a uniform).
fn moments(what: &str, x: &ArrayD<f64>, want_mean: f64, std: f64, kurt: f64) {
    let n = x.len() as f64;
    near(&format!("{what}: mean"), mean(x), want_mean, std / n.sqrt(), 4.0);
    let se_var = std * std * ((kurt - 1.0) / n).sqrt();
    near(&format!("{what}: variance"), var(x), std * std, se_var, 4.0);
}

fn all(what: &str, x: &ArrayD<f64>, shape: &[usize], ok: impl Fn(f64) -> bool) {
    assert_eq!(x.shape(), shape, "{what}: shape");
    if let Some(v) = x.iter().find(|v| !ok(**v)) {
        panic!("{what}: entry {v} is out of place");
    }
}

#[test]
fn constants_are_exact() {
    all("zeros", &eval("zeros([7, 5, 3])", 0), &[7, 5, 3], |v| v == 0.0);
    all("ones", &eval("ones([4, 6])", 0), &[4, 6], |v| v == 1.0);
    all("constant", &eval("constant([6], 2.5)", 0), &[6], |v| v == 2.5);
    let eye = eval("identity([3, 5], scale = 2)", 0);
    for ((i, j), v) in eye.view().into_dimensionality::<ndarray::Ix2>().expect("a matrix").indexed_iter() {
        assert_eq!(*v, if i == j { 2.0 } else { 0.0 }, "identity at ({i}, {j})");
    }
}

#[test]
fn gaussian_has_its_mean_and_std() {
    let x = eval("gaussian([300, 200], std = 2, mean = 0.5)", 1);
    assert_eq!(x.shape(), &[300, 200]);
    moments("gaussian", &x, 0.5, 2.0, 3.0);
    // A Gaussian's fourth moment, which a uniform or a sign draw would miss.
    let m4 = x.iter().map(|v| (v - 0.5).powi(4)).sum::<f64>() / x.len() as f64;
    near("gaussian: 4th moment / std^4", m4 / 16.0, 3.0, (96.0 / x.len() as f64).sqrt(), 4.0);
}

#[test]
fn uniform_stays_in_its_interval() {
    let x = eval("uniform([300, 200], low = -1, high = 3)", 2);
    all("uniform", &x, &[300, 200], |v| (-1.0..3.0).contains(&v));
    moments("uniform", &x, 1.0, 4.0 / 12f64.sqrt(), 9.0 / 5.0);
}

/// Fans of torch's layout [out, in, *kernel].
fn fans(shape: &[usize]) -> (f64, f64) {
    let rf: usize = shape[2..].iter().product();
    ((shape[1] * rf) as f64, (shape[0] * rf) as f64)
}

fn shape_text(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

#[test]
fn xavier_follows_glorot() {
    for shape in [vec![300, 200], vec![32, 16, 3, 3]] {
        let (fan_in, fan_out) = fans(&shape);
        let s = shape_text(&shape);
        let bound = 2.0 * (6.0 / (fan_in + fan_out)).sqrt();
        let x = eval(&format!("xavier_uniform({s}, gain = 2)"), 3);
        all("xavier_uniform", &x, &shape, |v| v.abs() <= bound);
        moments(&format!("xavier_uniform {s}"), &x, 0.0, bound / 3f64.sqrt(), 9.0 / 5.0);
        let x = eval(&format!("xavier_normal({s}, gain = 2)"), 4);
        moments(&format!("xavier_normal {s}"), &x, 0.0, 2.0 * (2.0 / (fan_in + fan_out)).sqrt(), 3.0);
    }
}

#[test]
fn kaiming_follows_he() {
    for shape in [vec![200, 300], vec![32, 16, 3, 3]] {
        let (fan_in, fan_out) = fans(&shape);
        let s = shape_text(&shape);
        // (arguments, gain, fan): the default leaky_relu with a = 0 has gain sqrt(2); torch's
        // Linear default a = sqrt(5) gives gain sqrt(1/3), so bound 1 / sqrt(fan_in).
        let cases = [
            ("", 2f64.sqrt(), fan_in),
            (", a = sqrt(5)", (1.0f64 / 3.0).sqrt(), fan_in),
            (", mode = \"fan_out\", nonlinearity = \"relu\"", 2f64.sqrt(), fan_out),
            (", nonlinearity = \"tanh\"", 5.0 / 3.0, fan_in),
            (", nonlinearity = \"linear\"", 1.0, fan_in),
        ];
        for (k, (args, gain, fan)) in cases.into_iter().enumerate() {
            let std = gain / fan.sqrt();
            let bound = 3f64.sqrt() * std;
            let x = eval(&format!("kaiming_uniform({s}{args})"), 10 + k as u64);
            all(&format!("kaiming_uniform({s}{args})"), &x, &shape, |v| v.abs() <= bound);
            moments(&format!("kaiming_uniform({s}{args})"), &x, 0.0, std, 9.0 / 5.0);
            let x = eval(&format!("kaiming_normal({s}{args})"), 20 + k as u64);
            moments(&format!("kaiming_normal({s}{args})"), &x, 0.0, std, 3.0);
        }
    }
}

#[test]
fn scaled_multiplies_its_base() {
    let x = eval("scaled([300, 100], 0.001, xavier_normal)", 5);
    moments("scaled(1e-3, xavier_normal)", &x, 0.0, 1e-3 * (2.0f64 / 400.0).sqrt(), 3.0);
    // The same draw as the base's, times alpha: the base is drawn where `scaled` draws it.
    let x = eval("scaled([4, 3], 2, constant(value = 1.5))", 5);
    all("scaled(2, constant(1.5))", &x, &[4, 3], |v| v == 3.0);
}

fn gram(q: &ArrayD<f64>, rows: bool) -> ndarray::Array2<f64> {
    let q = q.view().into_dimensionality::<ndarray::Ix2>().expect("a matrix").to_owned();
    if rows {
        q.dot(&q.t())
    } else {
        q.t().dot(&q)
    }
}

fn is_identity(what: &str, m: &ndarray::Array2<f64>, scale: f64) {
    for ((i, j), v) in m.indexed_iter() {
        let want = if i == j { scale } else { 0.0 };
        assert!((v - want).abs() < 1e-9, "{what}: entry ({i}, {j}) is {v}, not {want}");
    }
}

#[test]
fn orthogonal_is_orthogonal() {
    let tall = eval("orthogonal([60, 25])", 6);
    assert_eq!(tall.shape(), &[60, 25]);
    is_identity("orthogonal [60, 25]: Q^T Q", &gram(&tall, false), 1.0);
    let wide = eval("orthogonal([25, 60], gain = 2)", 7);
    assert_eq!(wide.shape(), &[25, 60]);
    is_identity("orthogonal [25, 60], gain 2: Q Q^T", &gram(&wide, true), 4.0);
    let square = eval("orthogonal([40, 40])", 8);
    is_identity("orthogonal [40, 40]: Q^T Q", &gram(&square, false), 1.0);
    is_identity("orthogonal [40, 40]: Q Q^T", &gram(&square, true), 1.0);
    // Haar-distributed: entries of a 60 x 25 Q have mean 0 and variance 1/60.
    moments("orthogonal entries", &tall, 0.0, (1.0f64 / 60.0).sqrt(), 3.0);
}

#[test]
fn lowrank_has_its_rank_and_entry_variance() {
    let s = eval("lowrank_spectrum(50, 40, 3, 2)", 9);
    let s: Vec<f64> = s.iter().copied().collect();
    assert!(s[2] > 1e-3 * s[0], "lowrank(3): third singular value {} vs {}", s[2], s[0]);
    assert!(s[3..].iter().all(|v| *v < 1e-10 * s[0]), "lowrank(3) has rank 3: {s:?}");
    // Each entry has variance std^2; entries of one draw are dependent, so the tolerance is
    // relative (the sample variance of a 400 x 400 rank-3 draw has relative sd about 0.06).
    let x = eval("lowrank([400, 400], rank = 3, std = 2)", 10);
    assert_eq!(x.shape(), &[400, 400]);
    let v = var(&x);
    assert!((v / 4.0 - 1.0).abs() < 0.25, "lowrank(3, std = 2): entry variance {v}, want 4");
}

#[test]
fn sparse_keeps_its_density() {
    let x = eval("sparse([300, 200], density = 0.1, std = 0.5)", 11);
    assert_eq!(x.shape(), &[300, 200]);
    let n = x.len() as f64;
    let nonzero: Vec<f64> = x.iter().copied().filter(|v| *v != 0.0).collect();
    let frac = nonzero.len() as f64 / n;
    near("sparse: density", frac, 0.1, (0.1f64 * 0.9 / n).sqrt(), 4.0);
    let nz = ArrayD::from_shape_vec(vec![nonzero.len()], nonzero).expect("a vector");
    moments("sparse: nonzero entries", &nz, 0.0, 0.5, 3.0);
    all("sparse(density = 0)", &eval("sparse([20, 10], density = 0)", 12), &[20, 10], |v| v == 0.0);
    assert!(eval("sparse([20, 10], density = 1)", 12).iter().all(|v| *v != 0.0), "density 1 keeps every entry");
}

#[test]
fn siren_and_noise_perturbed_follow_their_bounds() {
    let (m, n) = (200usize, 150usize);
    let first = 1.0 / n as f64;
    let x = eval(&format!("siren([{m}, {n}], first = true)"), 13);
    all("siren first", &x, &[m, n], |v| v.abs() <= first);
    moments("siren first", &x, 0.0, first / 3f64.sqrt(), 9.0 / 5.0);
    let hidden = (6.0 / n as f64).sqrt() / 30.0;
    let x = eval(&format!("siren([{m}, {n}])"), 14);
    all("siren", &x, &[m, n], |v| v.abs() <= hidden);
    moments("siren", &x, 0.0, hidden / 3f64.sqrt(), 9.0 / 5.0);
    // noise = 0 is siren itself; noise adds N(0, (noise / omega0)^2).
    assert_eq!(eval(&format!("noise_perturbed([{m}, {n}])"), 14).shape(), &[m, n]);
    let x = eval(&format!("noise_perturbed([{m}, {n}], noise = 3, omega0 = 10)"), 15);
    let (b, s) = ((6.0 / n as f64).sqrt() / 10.0, 0.3);
    let std = (b * b / 3.0 + s * s).sqrt();
    // The sum's kurtosis lies between the uniform's and the Gaussian's; 3 is the wider bound.
    moments("noise_perturbed", &x, 0.0, std, 3.0);
    assert!(x.iter().any(|v| v.abs() > b), "the noise takes entries beyond siren's bound");
}

#[test]
fn from_file_reads_the_array() {
    let dir = std::env::temp_dir().join(format!("optic-inits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("w.csv"), "1,2,3\n4,5,6\n").expect("write");
    let file = dir.join("e.opt");
    std::fs::write(
        &file,
        "model m() {\n    param w[2, 3] = from_file(\"w.csv\", \"w\")\nforward(x[n, 3]) = x @ w^T\n}\n\
         experiment e {\n    net = m()\n    data x = gaussian([4, 3]) fresh every step\n    loss = mean(net(x)^2)\n    \
         optimize net.* with sgd()\n    steps = 1\n}\n",
    )
    .expect("write");
    let checked = optic_compiler::check::check_paths(std::slice::from_ref(&file));
    assert!(checked.is_ok(), "{}", checked.diagnostics.iter().map(|d| d.render_plain()).collect::<String>());
    let plan = optic_compiler::on_big_stack(|| lower_experiment(&checked.program, "e", &[]))
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
        .0;
    let files: Vec<ArrayD<f64>> = plan.files.iter().map(|(_, a)| a.to_f64()).collect();
    let w = plan.tensors.iter().find(|t| t.path == "net.w").expect("net.w");
    let v = eval_nodes(&plan.init, 0, &files, plan.seed, &[w.init]).expect("init")[0].clone();
    let want: Vec<f64> = (1..=6).map(f64::from).collect();
    assert_eq!(v.iter().copied().collect::<Vec<_>>(), want);
    let _ = std::fs::remove_dir_all(dir);
}

/// torch.nn.init.orthogonal_'s sign fix: Q times the signs of diag(R), so that Q^T G = R' is upper
/// triangular with a positive diagonal for the Gaussian draw G ([max, min], transposed for wide
/// shapes). `orthogonal` draws G first, so `gaussian` of the same shape and seed is that draw.
#[test]
fn orthogonal_fixes_the_signs_as_torch_does() {
    for (shape, seed) in [([7usize, 3usize], 21u64), ([3, 7], 22), ([5, 5], 23)] {
        let (m, n) = (shape[0], shape[1]);
        let q = eval(&format!("orthogonal([{m}, {n}])"), seed);
        let g = eval(&format!("gaussian([{}, {}])", m.max(n), m.min(n)), seed);
        let q = q.into_dimensionality::<ndarray::Ix2>().expect("a matrix");
        let q = if m >= n { q } else { q.t().to_owned() };
        let g = g.into_dimensionality::<ndarray::Ix2>().expect("a matrix");
        let r = q.t().dot(&g);
        for ((i, j), v) in r.indexed_iter() {
            if i > j {
                assert!(v.abs() < 1e-12, "orthogonal {shape:?}: Q^T G is not upper triangular at ({i}, {j}): {v}");
            } else if i == j {
                assert!(*v > 0.0, "orthogonal {shape:?}: R'[{i}, {i}] = {v} is not positive");
            }
        }
        // `gain` scales the same draw.
        let twice = eval(&format!("orthogonal([{m}, {n}], gain = 2)"), seed);
        let once = eval(&format!("orthogonal([{m}, {n}])"), seed);
        assert!(twice.iter().zip(&once).all(|(a, b)| (a - 2.0 * b).abs() < 1e-15), "gain 2 doubles the draw");
    }
}

/// `spectral` has exactly the prescribed singular values (any order, any sign), the rest zero.
#[test]
fn spectral_has_its_singular_values() {
    let s = eval("spectrum(spectral([9, 6], values = 1 / (1 + arange(4))))", 24);
    let want = [1.0, 0.5, 1.0 / 3.0, 0.25, 0.0, 0.0];
    for (g, w) in s.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "singular values {s}, want {want:?}");
    }
    let s = eval("spectrum(spectral([4, 10], values = 2 - arange(4)))", 25);
    let want = [2.0, 1.0, 1.0, 0.0];
    for (g, w) in s.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "|values| sorted: {s}, want {want:?}");
    }
}

/// `matched_lowrank`: rank r at the Frobenius norm std sqrt(m n) for every r, so a rank-1 and a
/// full-rank draw have the same norm and different ranks; or at the spectral norm
/// std (sqrt(m) + sqrt(n)).
#[test]
fn matched_lowrank_keeps_its_norm_across_ranks() {
    let (m, n, std) = (30usize, 20usize, 0.5);
    let fro = std * ((m * n) as f64).sqrt();
    for rank in [1usize, 3, 20] {
        let s = eval(&format!("spectrum(matched_lowrank([{m}, {n}], rank = {rank}, std = {std}))"), 26 + rank as u64);
        let s: Vec<f64> = s.iter().copied().collect();
        let norm = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - fro).abs() < 1e-10 * fro, "rank {rank}: Frobenius norm {norm}, want {fro}");
        assert!(s[rank - 1] > 1e-6 * s[0], "rank {rank}: {s:?}");
        assert!(s[rank..].iter().all(|v| *v < 1e-10 * s[0]), "rank {rank} exactly: {s:?}");
    }
    let s = eval(&format!("spectrum(matched_lowrank([{m}, {n}], rank = 2, std = {std}, matching = \"spectral\"))"), 30);
    let top = std * ((m as f64).sqrt() + (n as f64).sqrt());
    assert!((s[0] - top).abs() < 1e-10 * top, "spectral norm {}, want {top}", s[0]);
}

/// `aligned_lowrank` lies in the target's top-r singular subspaces, is the target's rank-r
/// truncation up to scale, and has the Frobenius norm std sqrt(m n).
#[test]
fn aligned_lowrank_lies_in_the_targets_top_subspace() {
    let (m, n, r, std) = (12usize, 9usize, 3usize, 2.0);
    let v = eval(&format!("aligned_check({m}, {n}, {r}, {std})"), 31);
    let (outside, norm, cosine) = (v[0], v[1], v[2]);
    let fro = std * ((m * n) as f64).sqrt();
    assert!(outside < 1e-10 * fro, "{outside} of the draw lies outside the target's top subspaces");
    assert!((norm - fro).abs() < 1e-10 * fro, "norm {norm}, want {fro}");
    assert!((cosine - 1.0).abs() < 1e-12, "cosine with the target's truncation {cosine}");
}
