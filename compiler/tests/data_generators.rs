//! The data generators of `stdlib/data.opt`, evaluated by the reference interpreter: shapes,
//! exact identities (measurements, labels, signals) to rounding, and statistics within a few
//! standard errors. A generator returning a tuple is evaluated one part per expression
//! (`gaussian_mixture(...)[0]`); the parts of one call agree because the draws are counter-based:
//! the same expression with the same seed draws the same numbers.

use optic_compiler::interp::{eval_once, ArrayD, Scalar};
use optic_compiler::ir::Graph;
use optic_compiler::lower::compile_expr_in;

/// Helpers written in the language, for checks that need several parts of one draw.
const HELPERS: &str = r#"
/// Least squares on sparse_regression's data: w* when n > d and there is no noise.
fn recovered(n: int, d: int, sparsity: int) {
    let (x, y) = sparse_regression(n, d, sparsity)
    return solve(x^T @ x, x^T @ y)
}

/// Per-class sums of x (rows) and counts (last column) of a mixture sample.
fn class_sums(n: int, centers, std = 1) {
    let (x, labels) = mixture_samples(n, centers, std)
    let h = onehot(labels, rows(centers))
    return concat([h^T @ x, reshape(sum(h, axis = 0), [rows(centers), 1])], axis = 1)
}

/// accuracy() of perfect logits for gaussian_mixture's labels: 1 if they are class indices.
fn label_accuracy(n: int, d: int, k: int) {
    let (x, labels) = gaussian_mixture(n, d, k)
    return accuracy(onehot(labels, k), labels)
}
"#;

fn compile(expr: &str) -> Graph {
    compile_expr_in(Some(("helpers.opt", HELPERS)), expr).unwrap_or_else(|ds| {
        panic!("`{expr}` does not compile:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
    })
}

fn run<T: Scalar>(g: &Graph, seed: u64) -> ArrayD<T> {
    eval_once::<T>(g, 1, None, &[], seed).unwrap_or_else(|e| panic!("evaluation failed: {e}"))
}

/// The value of an expression in f64, drawn with `seed`.
fn eval(expr: &str, seed: u64) -> ArrayD<f64> {
    run(&compile(expr), seed)
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

/// Probabilists' Hermite polynomial He_k(z) / sqrt(k!).
fn hermite_normalized(z: f64, k: usize) -> f64 {
    let (mut h0, mut h1) = (1.0, z);
    for n in 0..k {
        let h2 = z * h1 - (n + 1) as f64 * h0;
        h0 = h1;
        h1 = h2;
    }
    let factorial: f64 = (1..=k).map(|i| i as f64).product();
    h0 / factorial.sqrt()
}

#[test]
fn gaussian_design_is_isotropic_gaussian() {
    let x = eval("gaussian_design(400, 50, std = 2)", 7);
    assert_eq!(x.shape(), &[400, 50]);
    let n = x.len() as f64;
    near("mean", mean(&x), 0.0, 2.0 / n.sqrt(), 5.0);
    near("variance", var(&x), 4.0, 4.0 * (2.0 / n).sqrt(), 5.0);
    // Columns are uncorrelated: the sample covariance of two columns is about 0.
    let (c0, c1) = (x.index_axis(ndarray::Axis(1), 0), x.index_axis(ndarray::Axis(1), 1));
    let cov = c0.iter().zip(c1.iter()).map(|(a, b)| a * b).sum::<f64>() / 400.0;
    near("covariance", cov, 0.0, 4.0 / 20.0, 5.0);
    // Pure in the seed, different for another seed and at another place in the program.
    assert_eq!(x, eval("gaussian_design(400, 50, std = 2)", 7));
    assert_ne!(x, eval("gaussian_design(400, 50, std = 2)", 8));
    let diff = eval("gaussian_design(3, 4) - gaussian_design(3, 4)", 7);
    assert!(diff.iter().all(|v| v.abs() > 0.0), "two draws in one program are independent: {diff}");
}

#[test]
fn random_direction_is_a_unit_vector() {
    for seed in 0..5 {
        let w = eval("random_direction(17)", seed);
        assert_eq!(w.shape(), &[17]);
        let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12, "norm {norm}");
    }
}

#[test]
fn lowrank_spectrum_is_log_spaced() {
    let s = eval("lowrank_spectrum(3, scale = 2, condition = 8)", 0);
    let want = [2.0, 2.0 / 8f64.sqrt(), 0.25];
    for (g, w) in s.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{s} vs {want:?}");
    }
    assert_eq!(eval("lowrank_spectrum(1, scale = 3, condition = 10)", 0).iter().copied().collect::<Vec<_>>(), [3.0]);
}

#[test]
fn lowrank_psd_is_symmetric_psd_with_the_requested_spectrum() {
    for seed in 0..3 {
        let m = eval("lowrank_psd(12, 3, scale = 2, condition = 8)", seed);
        assert_eq!(m.shape(), &[12, 12]);
        for i in 0..12 {
            for j in 0..12 {
                assert!((m[[i, j]] - m[[j, i]]).abs() < 1e-12, "not symmetric at ({i}, {j})");
            }
        }
        // Ascending eigenvalues: nine zeros, then 0.25, 2 / sqrt(8), 2.
        let e = eval("eigh(lowrank_psd(12, 3, scale = 2, condition = 8))[0]", seed);
        let mut want = vec![0.0; 9];
        want.extend([0.25, 2.0 / 8f64.sqrt(), 2.0]);
        for (g, w) in e.iter().zip(&want) {
            assert!(*g > -1e-12, "negative eigenvalue {g}");
            assert!((g - w).abs() < 1e-10, "eigenvalues {e} vs {want:?}");
        }
    }
    // The default normalization: `rank` unit eigenvalues, ||M*||_F = sqrt(rank).
    let m = eval("lowrank_psd(20, 4)", 3);
    let fro = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((fro - 2.0).abs() < 1e-10, "||M*||_F = {fro}");
}

#[test]
fn lowrank_matrix_has_the_requested_singular_values() {
    let m = eval("lowrank_matrix(7, 10, 3, scale = 1.5, condition = 2)", 4);
    assert_eq!(m.shape(), &[7, 10]);
    let s = eval("svd(lowrank_matrix(7, 10, 3, scale = 1.5, condition = 2))[1]", 4);
    let want = [1.5, 1.5 / 2f64.sqrt(), 0.75, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(s.len(), 7);
    for (g, w) in s.iter().zip(want) {
        assert!((g - w).abs() < 1e-10, "singular values {s} vs {want:?}");
    }
    // U and V are independent: M* is not symmetric even when square.
    let sq = eval("lowrank_matrix(6, 6, 2)", 1);
    assert!((0..6).any(|i| (0..6).any(|j| (sq[[i, j]] - sq[[j, i]]).abs() > 1e-3)));
}

#[test]
fn sensing_matrices_and_measurements() {
    let a = eval("gaussian_sensing(300, 5, 6)", 2);
    assert_eq!(a.shape(), &[300, 5, 6]);
    let n = a.len() as f64;
    near("sensing mean", mean(&a), 0.0, 1.0 / n.sqrt(), 5.0);
    near("sensing variance", var(&a), 1.0, (2.0 / n).sqrt(), 5.0);

    // y_i = <A_i, M*>, computed here from the interpreter's A and M*.
    let target = "reshape(sin(arange(30)), [5, 6])";
    let m = eval(target, 0);
    let check = |a: &ArrayD<f64>, y: &ArrayD<f64>| {
        assert_eq!(y.shape(), &[a.shape()[0]]);
        for i in 0..a.shape()[0] {
            let mut dot = 0.0;
            for j in 0..5 {
                for k in 0..6 {
                    dot += a[[i, j, k]] * m[[j, k]];
                }
            }
            assert!((y[i] - dot).abs() < 1e-12, "y[{i}] = {} but <A_i, M*> = {dot}", y[i]);
        }
    };
    let y = eval(&format!("measure(gaussian_sensing(300, 5, 6), {target})"), 2);
    check(&a, &y);
    let a2 = eval(&format!("matrix_sensing(50, {target})[0]"), 9);
    let y2 = eval(&format!("matrix_sensing(50, {target})[1]"), 9);
    assert_eq!(a2.shape(), &[50, 5, 6]);
    check(&a2, &y2);

    // E <A, M>^2 = ||M||_F^2 for Gaussian A.
    let fro2: f64 = m.iter().map(|v| v * v).sum();
    let y = eval(&format!("matrix_sensing(4000, {target})[1]"), 5);
    let ratio = y.iter().map(|v| v * v).sum::<f64>() / 4000.0 / fro2;
    near("E<A, M>^2 / ||M||_F^2", ratio, 1.0, (2.0f64 / 4000.0).sqrt(), 5.0);

    // Measurement noise: y - <A_i, M*> has standard deviation `noise`.
    let a = eval(&format!("matrix_sensing(4000, {target}, noise = 0.5)[0]"), 6);
    let y = eval(&format!("matrix_sensing(4000, {target}, noise = 0.5)[1]"), 6);
    let resid: Vec<f64> = (0..4000)
        .map(|i| {
            let dot: f64 =
                (0..5).flat_map(|j| (0..6).map(move |k| (j, k))).map(|(j, k)| a[[i, j, k]] * m[[j, k]]).sum();
            y[i] - dot
        })
        .collect();
    let r = ArrayD::from_shape_vec(vec![4000], resid).expect("a vector");
    near("noise variance", var(&r), 0.25, 0.25 * (2.0f64 / 4000.0).sqrt(), 5.0);
}

#[test]
fn sensing_a_lowrank_target() {
    // The generators compose: matrix_sensing of a lowrank_psd target, both drawn in one program.
    let y = eval("matrix_sensing(64, lowrank_psd(8, 2))[1]", 1);
    assert_eq!(y.shape(), &[64]);
    assert!(y.iter().all(|v| v.is_finite()) && var(&y) > 0.1);
}

#[test]
fn corruption_replaces_the_requested_fraction() {
    let n = 20000f64;
    let y = eval("corrupt(fill([20000], 1), 0.1, 10)", 3);
    let outliers: Vec<f64> = y.iter().copied().filter(|v| *v != 1.0).collect();
    let frac = outliers.len() as f64 / n;
    near("corrupted fraction", frac, 0.1, (0.1f64 * 0.9 / n).sqrt(), 5.0);
    let o = ArrayD::from_shape_vec(vec![outliers.len()], outliers).expect("a vector");
    let k = o.len() as f64;
    near("outlier mean", mean(&o), 0.0, 10.0 / k.sqrt(), 5.0);
    near("outlier variance", var(&o), 100.0, 100.0 * (2.0 / k).sqrt(), 5.0);
    // Shapes are kept; fraction 0 keeps every entry, 1 replaces every entry.
    let m = eval("corrupt(fill([30, 4], 2), 0.5, 1)", 0);
    assert_eq!(m.shape(), &[30, 4]);
    assert!(eval("corrupt(fill([500], 2), 0, 10)", 0).iter().all(|v| *v == 2.0));
    assert!(eval("corrupt(fill([500], 2), 1, 10)", 0).iter().all(|v| *v != 2.0));
}

#[test]
fn mixture_centers_have_the_documented_scale() {
    let c = eval("mixture_centers(200, 50, separation = 3)", 4);
    assert_eq!(c.shape(), &[200, 50]);
    let n = c.len() as f64;
    near("center entry variance", var(&c), 9.0 / 50.0, 9.0 / 50.0 * (2.0 / n).sqrt(), 5.0);
}

#[test]
fn mixture_samples_are_centers_plus_noise() {
    let n = 3000usize;
    let centers = "10 * eye(3, 4)";
    let x = eval(&format!("mixture_samples({n}, {centers}, std = 0.5)[0]"), 11);
    let labels = eval(&format!("mixture_samples({n}, {centers}, std = 0.5)[1]"), 11);
    assert_eq!(x.shape(), &[n, 4]);
    assert_eq!(labels.shape(), &[n]);
    let mut counts = [0usize; 3];
    let mut resid = Vec::new();
    for i in 0..n {
        let l = labels[i];
        assert!(l.fract() == 0.0 && (0.0..3.0).contains(&l), "label {l}");
        counts[l as usize] += 1;
        for j in 0..4 {
            let c = if j == l as usize { 10.0 } else { 0.0 };
            resid.push(x[[i, j]] - c);
        }
    }
    for c in counts {
        near("class frequency", c as f64 / n as f64, 1.0 / 3.0, (2.0 / 9.0 / n as f64).sqrt(), 5.0);
    }
    let r = ArrayD::from_shape_vec(vec![resid.len()], resid).expect("a vector");
    let k = r.len() as f64;
    near("noise mean", mean(&r), 0.0, 0.5 / k.sqrt(), 5.0);
    near("noise variance", var(&r), 0.25, 0.25 * (2.0 / k).sqrt(), 5.0);

    // The same through a helper: per-class sums and counts from one draw.
    let s = eval(&format!("class_sums({n}, {centers}, std = 0.5)"), 11);
    for (c, count) in counts.iter().enumerate() {
        assert_eq!(s[[c, 4]], *count as f64);
        for j in 0..4 {
            let want = if j == c { 10.0 } else { 0.0 };
            near("class mean", s[[c, j]] / *count as f64, want, 0.5 / (*count as f64).sqrt(), 5.0);
        }
    }
}

#[test]
fn gaussian_mixture_draws_labels_and_separated_classes() {
    let (n, d, k) = (4000usize, 64usize, 4usize);
    let expr = format!("gaussian_mixture({n}, {d}, {k})");
    let x = eval(&format!("{expr}[0]"), 21);
    let labels = eval(&format!("{expr}[1]"), 21);
    assert_eq!(x.shape(), &[n, d]);
    assert_eq!(labels.shape(), &[n]);
    let mut means = vec![vec![0.0; d]; k];
    let mut counts = vec![0usize; k];
    for i in 0..n {
        let l = labels[i];
        assert!(l.fract() == 0.0 && l >= 0.0 && (l as usize) < k, "label {l}");
        counts[l as usize] += 1;
        for j in 0..d {
            means[l as usize][j] += x[[i, j]];
        }
    }
    assert!(counts.iter().all(|&c| c > 0), "every class is present: {counts:?}");
    let mut within = 0.0;
    for i in 0..n {
        let l = labels[i] as usize;
        for j in 0..d {
            within += (x[[i, j]] - means[l][j] / counts[l] as f64).powi(2);
        }
    }
    near("within-class variance", within / (n * d) as f64, 1.0, (2.0 / (n * d) as f64).sqrt(), 6.0);
    // Centers ~ 3 N(0, I / d): norms near 3 (chi with d degrees of freedom, plus sampling error).
    for (c, count) in counts.iter().enumerate() {
        let norm = means[c].iter().map(|v| (v / *count as f64).powi(2)).sum::<f64>().sqrt();
        assert!((2.0..4.2).contains(&norm), "center {c} has norm {norm}");
    }
    // The last field is a label vector the classification metrics accept.
    let acc = eval(&format!("label_accuracy({n}, {d}, {k})"), 21);
    assert_eq!(acc.iter().next().copied(), Some(1.0));
}

#[test]
fn sparse_vectors_have_exactly_the_requested_support() {
    let g = compile("sparse_vector(10, 3)");
    let mut hits = [0usize; 10];
    let seeds = 400;
    for seed in 0..seeds {
        let v = run::<f64>(&g, seed);
        assert_eq!(v.shape(), &[10]);
        let support: Vec<usize> = (0..10).filter(|&i| v[i] != 0.0).collect();
        assert_eq!(support.len(), 3, "seed {seed}: {v}");
        for i in support {
            hits[i] += 1;
        }
    }
    // Each position is in the support with probability 3/10.
    for h in hits {
        near("support frequency", h as f64 / seeds as f64, 0.3, (0.21f64 / seeds as f64).sqrt(), 5.0);
    }
    // Exact in f32 too, and at the edges.
    let v = run::<f32>(&compile("sparse_vector(300, 40)"), 5);
    assert_eq!(v.iter().filter(|x| **x != 0.0).count(), 40);
    assert!(eval("sparse_vector(6, 0)", 1).iter().all(|x| *x == 0.0));
    assert!(eval("sparse_vector(6, 6)", 1).iter().all(|x| *x != 0.0));
    // Nonzero entries are N(0, 1).
    let v = eval("sparse_vector(1000, 600)", 2);
    let nz: Vec<f64> = v.iter().copied().filter(|x| *x != 0.0).collect();
    assert_eq!(nz.len(), 600);
    let nz = ArrayD::from_shape_vec(vec![600], nz).expect("a vector");
    near("nonzero mean", mean(&nz), 0.0, 1.0 / 600f64.sqrt(), 5.0);
    near("nonzero variance", var(&nz), 1.0, (2.0f64 / 600.0).sqrt(), 5.0);
}

#[test]
fn linear_and_sparse_regression() {
    let w = "sin(arange(8))";
    let x = eval(&format!("linear_samples(50, {w})[0]"), 3);
    let y = eval(&format!("linear_samples(50, {w})[1]"), 3);
    assert_eq!(x.shape(), &[50, 8]);
    assert_eq!(y.shape(), &[50]);
    for i in 0..50 {
        let dot: f64 = (0..8).map(|j| x[[i, j]] * (j as f64).sin()).sum();
        assert!((y[i] - dot).abs() < 1e-12, "y[{i}] = {} vs {dot}", y[i]);
    }
    // With noise: residual standard deviation `noise`.
    let n = 5000;
    let x = eval(&format!("linear_samples({n}, {w}, noise = 0.3)[0]"), 4);
    let y = eval(&format!("linear_samples({n}, {w}, noise = 0.3)[1]"), 4);
    let r: Vec<f64> = (0..n).map(|i| y[i] - (0..8).map(|j| x[[i, j]] * (j as f64).sin()).sum::<f64>()).collect();
    let r = ArrayD::from_shape_vec(vec![n], r).expect("a vector");
    near("noise variance", var(&r), 0.09, 0.09 * (2.0 / n as f64).sqrt(), 5.0);

    // sparse_regression: least squares recovers an exactly 3-sparse w*.
    let x = eval("sparse_regression(40, 10, 3)[0]", 8);
    assert_eq!(x.shape(), &[40, 10]);
    for seed in 0..5 {
        let w = eval("recovered(40, 10, 3)", seed);
        assert_eq!(w.shape(), &[10]);
        let big = w.iter().filter(|v| v.abs() > 1e-8).count();
        assert_eq!(big, 3, "seed {seed}: least squares gives {w}");
    }
}

#[test]
fn single_index_labels_are_normalized_hermite_of_the_projection() {
    // A known direction (normalized by the generator): y = He_k(<x, w / |w|>) / sqrt(k!).
    for k in 0..5 {
        let expr = format!("single_index_samples(30, fill([5], 2), {k})");
        let x = eval(&format!("{expr}[0]"), 13);
        let y = eval(&format!("{expr}[1]"), 13);
        assert_eq!(x.shape(), &[30, 5]);
        assert_eq!(y.shape(), &[30]);
        for i in 0..30 {
            let z: f64 = (0..5).map(|j| x[[i, j]]).sum::<f64>() / 5f64.sqrt();
            let want = hermite_normalized(z, k);
            assert!((y[i] - want).abs() < 1e-12, "k = {k}, row {i}: {} vs {want}", y[i]);
        }
    }
    // A random direction: E y = 0 and E y^2 = 1 for k >= 1 (Var y^2 = 14 for k = 2).
    let n = 20000f64;
    let y = eval("single_index(20000, 16, 2)[1]", 1);
    let x = eval("single_index(20000, 16, 2)[0]", 1);
    assert_eq!(x.shape(), &[20000, 16]);
    near("E y", mean(&y), 0.0, 1.0 / n.sqrt(), 5.0);
    let m2 = y.iter().map(|v| v * v).sum::<f64>() / n;
    near("E y^2", m2, 1.0, (14.0 / n).sqrt(), 5.0);
}

/// Decodes the one-hot halves of a modular-arithmetic row.
fn decode(x: &ArrayD<f64>, i: usize, p: usize) -> (usize, usize) {
    let half = |off: usize| {
        let ones: Vec<usize> = (0..p).filter(|&j| x[[i, off + j]] == 1.0).collect();
        assert_eq!(ones.len(), 1, "row {i}: one 1 per half");
        assert!((0..p).all(|j| x[[i, off + j]] == 0.0 || x[[i, off + j]] == 1.0));
        ones[0]
    };
    (half(0), half(p))
}

#[test]
fn modular_arithmetic_tables_are_exact() {
    for (p, op) in [(7, "add"), (7, "sub"), (7, "mul"), (7, "div"), (97, "add"), (97, "div"), (11, "mul")] {
        let x = eval(&format!("modular_arithmetic({p}, \"{op}\")[0]"), 0);
        let labels = eval(&format!("modular_arithmetic({p}, \"{op}\")[1]"), 0);
        let nb = if op == "div" { p - 1 } else { p };
        assert_eq!(x.shape(), &[p * nb, 2 * p], "{op} mod {p}");
        assert_eq!(labels.shape(), &[p * nb]);
        for i in 0..p * nb {
            let (a, b) = decode(&x, i, p);
            let b0 = if op == "div" { 1 } else { 0 };
            assert_eq!((a, b), (i / nb, i % nb + b0), "row-major order of (a, b)");
            let l = labels[i];
            assert!(l.fract() == 0.0 && l >= 0.0 && l < p as f64, "label {l}");
            let l = l as usize;
            let ok = match op {
                "add" => l == (a + b) % p,
                "sub" => l == (a + p - b) % p,
                "mul" => l == (a * b) % p,
                _ => (l * b) % p == a,
            };
            assert!(ok, "{a} {op} {b} mod {p} labelled {l}");
        }
    }
    // The default op is "add", and the labels are exact in f32.
    let l = run::<f32>(&compile("modular_arithmetic(97)[1]"), 0);
    for (i, v) in l.iter().enumerate() {
        assert_eq!(*v as usize, (i / 97 + i % 97) % 97);
    }
}

#[test]
fn multi_frequency_signal_matches_a_direct_computation() {
    let n = 64;
    let (freqs, amps) = ([1.0, 3.0, 7.5], [1.0, 0.5, -0.25]);
    let expr = format!("multi_frequency_signal({n}, [1, 3, 7.5], [1, 0.5, -0.25])");
    let t = eval(&format!("{expr}[0]"), 0);
    let y = eval(&format!("{expr}[1]"), 0);
    assert_eq!(t.shape(), &[n, 1]);
    assert_eq!(y.shape(), &[n, 1]);
    for j in 0..n {
        let tj = -1.0 + 2.0 * j as f64 / n as f64;
        assert!((t[[j, 0]] - tj).abs() < 1e-15, "t[{j}] = {}", t[[j, 0]]);
        let want: f64 = freqs.iter().zip(amps).map(|(f, a)| a * (std::f64::consts::PI * f * tj).sin()).sum();
        assert!((y[[j, 0]] - want).abs() < 1e-12, "y[{j}] = {} vs {want}", y[[j, 0]]);
    }
    // An integer frequency f is DFT bin f of the grid: sum_j y_j sin(pi f t_j) = (n / 2) amp.
    let y = eval("multi_frequency_signal(64, [5], [2])[1]", 0);
    let t = eval("multi_frequency_signal(64, [5], [2])[0]", 0);
    let proj: f64 = (0..64).map(|j| y[[j, 0]] * (std::f64::consts::PI * 5.0 * t[[j, 0]]).sin()).sum();
    assert!((proj - 64.0).abs() < 1e-10, "projection {proj}");
}
