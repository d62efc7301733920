//! The adapters of `stdlib/adapters.opt` at initialization, and the data-driven initialization
//! builtins `grad(f, p)` and `layer_inputs(y, p)`: experiments are lowered and their init graph
//! (and the graph of merged weights) evaluated by the reference interpreter in f64. Checked:
//! the adapted weight equals the base weight where the method promises it, the trained parameter
//! counts, SORSA's regularizer (zero at initialization, its formula elsewhere), and PEFT's or the
//! authors' formulas on small matrices whose decompositions are known by hand. Decompositions are
//! defined up to signs, so factors are compared up to sign and products exactly.

use ndarray::{Array2, ArrayD, Ix2};
use optic_compiler::check::check_source;
use optic_compiler::interp::eval_nodes;
use optic_compiler::lower::experiment::{lower_experiment, Plan};
use std::path::Path;

/// An experiment's initial tensors by path, and its merged (adapted) weights at initialization.
struct Init {
    plan: Plan,
    values: Vec<ArrayD<f64>>,
    merged: Vec<(String, ArrayD<f64>)>,
}

impl Init {
    fn tensor(&self, path: &str) -> Array2<f64> {
        let k = self.plan.tensors.iter().position(|t| t.path == path).unwrap_or_else(|| {
            let all: Vec<&str> = self.plan.tensors.iter().map(|t| t.path.as_str()).collect();
            panic!("no tensor `{path}`; there are {all:?}")
        });
        self.values[k].clone().into_dimensionality::<Ix2>().expect("a matrix")
    }

    fn vector(&self, path: &str) -> Vec<f64> {
        let k = self.plan.tensors.iter().position(|t| t.path == path).unwrap_or_else(|| panic!("no `{path}`"));
        self.values[k].iter().copied().collect()
    }

    fn merged(&self, path: &str) -> ArrayD<f64> {
        self.merged.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("no merged `{path}`")).1.clone()
    }

    /// Elements of the tensors an `optimize` trains.
    fn trained_elements(&self) -> usize {
        let p = &self.plan;
        (0..p.tensors.len()).filter(|&t| p.trained[t]).map(|t| p.tensors[t].shape.iter().product::<usize>()).sum()
    }
}

/// Lowers experiment `e` of `program` and evaluates its initialization.
fn init(program: &str) -> Init {
    let checked = check_source("adapters_test.opt", program, Path::new("."));
    assert!(checked.is_ok(), "{}", checked.diagnostics.iter().map(|d| d.render_plain()).collect::<String>());
    let plan = optic_compiler::on_big_stack(|| lower_experiment(&checked.program, "e", &[]))
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
        .0;
    let roots: Vec<usize> = plan.tensors.iter().map(|t| t.init).collect();
    let files: Vec<ArrayD<f64>> = plan.files.iter().map(|(_, a)| a.to_f64()).collect();
    let values = eval_nodes::<f64>(&plan.init, 0, &files, plan.seed, &roots).expect("the init graph runs");
    let mut inputs = values.clone();
    inputs.extend(values.clone());
    inputs.extend(plan.data.iter().map(|d| ArrayD::zeros(d.batch_shape.clone())));
    let nodes: Vec<usize> = plan.merged.weights.iter().map(|w| w.1).collect();
    let merged_values = eval_nodes::<f64>(&plan.merged.graph, 1, &inputs, plan.seed, &nodes).expect("merged");
    let merged = plan.merged.weights.iter().map(|w| w.0.clone()).zip(merged_values).collect();
    Init { plan, values, merged }
}

/// An experiment around `bindings`: a two-layer base on d = 6 inputs, k = 5 hidden units, a
/// rank-1 teacher, a calibration batch `xc`, its gradient `g0` and first-layer inputs `x0`.
fn teacher_student(bindings: &str, trained: &str) -> String {
    format!(
        "experiment e {{\n    dtype = \"f64\"\n    seed = 3\n    base = two_layer(6, 5)\n    \
         teacher = base with w += outer(unit(gaussian([5])), unit(gaussian([6])))\n    \
         let xc = gaussian([40, 6])\n    let g0 = grad(mse(base(xc), teacher(xc)), base.w)\n    \
         let x0 = layer_inputs(base(xc), base.w)\n{bindings}\n    data x = gaussian([8, 6]) fresh every step\n    \
         loss = mse(s(x), teacher(x))\n    optimize {trained} with sgd()\n    steps = 1\n}}\n"
    )
}

/// A matrix literal for a program: written to a CSV file of its own, read with `load`.
fn matrix(rows: &[&[f64]]) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("optic-adapters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let name = format!("m{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let text: String = rows.iter().map(|r| r.iter().map(f64::to_string).collect::<Vec<_>>().join(",") + "\n").collect();
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, text).expect("write");
    format!("load(\"{}\", \"{name}\")", path.display())
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn close(what: &str, a: &Array2<f64>, b: &Array2<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    let d = max_abs_diff(&a.clone().into_dyn(), &b.clone().into_dyn());
    assert!(d <= tol, "{what}: differ by {d:e}\n{a}\nvs\n{b}");
}

/// Equal up to the sign of each row (or each column with `cols`): singular vectors' and QR
/// factors' signs are a library's convention.
fn close_up_to_signs(what: &str, a: &Array2<f64>, b: &Array2<f64>, cols: bool, tol: f64) {
    let (a, b) = if cols { (a.t().to_owned(), b.t().to_owned()) } else { (a.clone(), b.clone()) };
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (i, (ra, rb)) in a.rows().into_iter().zip(b.rows()).enumerate() {
        let same = ra.iter().zip(&rb).all(|(x, y)| (x - y).abs() <= tol);
        let flipped = ra.iter().zip(&rb).all(|(x, y)| (x + y).abs() <= tol);
        assert!(
            same || flipped,
            "{what}: {} {i} differs beyond a sign: {ra} vs {rb}",
            if cols { "column" } else { "row" }
        );
    }
}

/// Every adapter whose paper promises it starts at the base weight does: the merged weight
/// (the adapter's `weight` at initialization) equals `base.w` to rounding.
#[test]
fn adapted_weights_equal_the_base_at_initialization() {
    let cases = [
        "lora(rank = 2, alpha = 4)",
        "lora(rank = 2, alpha = 4, rslora = true, init_a = gaussian(std = 0.5))",
        "lora(rank = 2, alpha = 4, init_a = pissa_a(base.w, scaling = 2), init_b = pissa_b(base.w, scaling = 2))",
        "lora(rank = 2, alpha = 4, init_a = olora_a(base.w), init_b = olora_b(base.w))",
        "lora(rank = 2, init_a = eva_a(x0), init_b = zeros)",
        "pissa(rank = 2)",
        "olora(rank = 2, alpha = 3)",
        "lora_ga(rank = 2, grad = g0)",
        "lora_ga(rank = 2, alpha = 5, grad = g0, direction = \"ArBr\", scale = \"gd\")",
        "lora_ga(rank = 2, grad = g0, direction = \"A2rBr\", scale = \"unit\", gamma = 4)",
        "eva(rank = 2, inputs = x0)",
        "eva(rank = 3, inputs = x0, whiten = true)",
        "dora(rank = 2)",
        "dora(rank = 2, alpha = 4, init_a = lora_ga_a(g0, scaling = 2), init_b = lora_ga_b(g0, scaling = 2))",
        "svfit(rank = 2)",
        "sorsa(rank = 2)",
        "sorsa(rank = 3, scale = 0.5)",
        "bone(rank = 2)",
        "orthogonal_adaptation(rank = 2, basis = orthogonal([6, 6]), index = 1)",
    ];
    for adapter in cases {
        let it = init(&teacher_student(&format!("    s = base adapted by {adapter} on w"), "s.w"));
        let base = it.tensor("base.w").into_dyn();
        let merged = it.merged("s.w");
        let d = max_abs_diff(&merged, &base);
        assert!(d < 1e-12, "{adapter}: the adapted weight is {d:e} from the base at initialization");
    }
}

/// LoTR on a stack of layers (deep_linear's w_mid [layers, d, d]): the update starts at zero and
/// trains shared U [d, r], V [d, r] and one core [r, r] per layer.
#[test]
fn lotr_adapts_a_stack_of_layers() {
    let program = "experiment e {\n    dtype = \"f64\"\n    base = deep_linear(4, 6, 3, depth = 5)\n    \
                   s = base adapted by lotr(rank = 2) on w_mid\n    data x = gaussian([8, 4]) fresh every step\n    \
                   loss = mean(s(x)^2)\n    optimize s.w_mid with sgd()\n    steps = 1\n}\n";
    let it = init(program);
    let base = &it.values[it.plan.tensors.iter().position(|t| t.path == "base.w_mid").expect("base")];
    assert_eq!(base.shape(), &[3, 6, 6]);
    assert!(max_abs_diff(&it.merged("s.w_mid"), base) < 1e-15);
    assert_eq!(it.trained_elements(), 6 * 2 + 3 * 2 * 2 + 6 * 2);
    // U and V start orthonormal.
    for p in ["s.w_mid.u", "s.w_mid.v"] {
        let q = it.tensor(p);
        close(&format!("{p}^T {p}"), &q.t().dot(&q), &Array2::eye(2), 1e-12);
    }
}

/// The trained parameter count of each adapter on a weight [5, 6] at rank r = 2.
#[test]
fn trainable_parameter_counts() {
    let (m, n, r) = (5, 6, 2);
    let cases = [
        ("lora(rank = 2)", m * r + r * n),
        ("pissa(rank = 2)", m * r + r * n),
        ("olora(rank = 2)", m * r + r * n),
        ("lora_ga(rank = 2, grad = g0)", m * r + r * n),
        ("eva(rank = 2, inputs = x0)", m * r + r * n),
        ("dora(rank = 2)", m * r + r * n + m),
        ("lora_sb(rank = 2, grad = g0)", r * r),
        ("svfit(rank = 2)", r),
        ("sorsa(rank = 2)", m * r + r + r * n),
        ("bone(rank = 2)", r * m),
        ("orthogonal_adaptation(rank = 2, basis = orthogonal([6, 6]))", m * r),
    ];
    for (adapter, count) in cases {
        let it = init(&teacher_student(&format!("    s = base adapted by {adapter} on w"), "s.w"));
        assert_eq!(it.trained_elements(), count, "{adapter}");
    }
}

/// SORSA's regularizer is zero at initialization (orthonormal singular vectors) and is, on other
/// matrices, the mean of the two Frobenius norms of sorsalib's calc_ortho.
#[test]
fn sorsa_regularizer_is_zero_at_initialization() {
    let it = init(&teacher_student(
        "    s = base adapted by sorsa(rank = 3) on w\n    let reg0 = sorsa_regularizer(s.w.u, s.w.vt)",
        "s.w",
    ));
    let reg0 = it.vector("reg0")[0];
    assert!(reg0.abs() < 1e-14, "the regularizer at initialization is {reg0:e}");
    let u = [[1.0, 0.5], [0.0, 2.0], [1.0, -1.0]];
    let vt = [[0.3, 0.4, 0.0, 1.0], [2.0, 0.0, 1.0, 0.0]];
    let it = init(&teacher_student(
        &format!(
            "    s = base adapted by sorsa(rank = 3) on w\n    let u = {}\n    let vt = {}\n    \
             let reg = sorsa_regularizer(u, vt)",
            matrix(&[&u[0], &u[1], &u[2]]),
            matrix(&[&vt[0], &vt[1]])
        ),
        "s.w",
    ));
    let got = it.vector("reg")[0];
    let u = Array2::from_shape_vec((3, 2), u.concat()).expect("u");
    let vt = Array2::from_shape_vec((2, 4), vt.concat()).expect("vt");
    let fro = |a: Array2<f64>| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let eye = Array2::<f64>::eye(2);
    let want = (fro(vt.dot(&vt.t()) - &eye) + fro(u.t().dot(&u) - &eye)) / 2.0;
    assert!((got - want).abs() < 1e-12, "sorsa_regularizer = {got}, want {want}");
}

/// A model whose base weight `w` [3, 2] is known by hand (KNOWN: [[3, 1], [4, 2], [0, 0]]).
fn known_weight(w: &[&[f64]], bindings: &str, trained: &str) -> String {
    format!(
        "model lin() {{\n    param w[3, 2] = fill([3, 2], 0)\n    forward(x[b, 2]) = x @ w^T\n}}\n\
         experiment e {{\n    dtype = \"f64\"\n    base = lin() with w = {}\n{bindings}\n    \
         data x = gaussian([4, 2]) fresh every step\n    loss = mean(s(x)^2)\n    optimize {trained} with sgd()\n    \
         steps = 1\n}}\n",
        matrix(w)
    )
}

const KNOWN: &[&[f64]] = &[&[3.0, 1.0], &[4.0, 2.0], &[0.0, 0.0]];

/// OLoRA (PEFT's olora_init) on the known weight at rank 1: B = Q[:, :1] = ±[0.6, 0.8, 0],
/// A = R[:1] = ±[5, 2.2], and the frozen base is w - scaling B A.
#[test]
fn olora_takes_the_qr_factors() {
    let it = init(&known_weight(KNOWN, "    s = base adapted by olora(rank = 1, alpha = 2) on w", "s.w"));
    let (a, b) = (it.tensor("s.w.a"), it.tensor("s.w.b"));
    close_up_to_signs("olora B", &b, &Array2::from_shape_vec((3, 1), vec![0.6, 0.8, 0.0]).expect("b"), true, 1e-12);
    close_up_to_signs("olora A", &a, &Array2::from_shape_vec((1, 2), vec![5.0, 2.2]).expect("a"), false, 1e-12);
    // B A = q q^T w: the first column of w, and its second column projected on q.
    let ba = Array2::from_shape_vec((3, 2), vec![3.0, 1.32, 4.0, 1.76, 0.0, 0.0]).expect("ba");
    close("olora B A", &b.dot(&a), &ba, 1e-12);
    let w = it.tensor("base.w");
    close("olora base", &it.tensor("s.w"), &(&w - &(ba * 2.0)), 1e-12);
}

/// PiSSA's factors (PEFT's pissa_init) of diag-like w = [[3, 0], [0, 2], [0, 0]] at rank 1:
/// A = sqrt(3 / scaling) e1^T, B = sqrt(3 / scaling) e1, residual w - scaling B A.
#[test]
fn pissa_takes_the_principal_singular_triplet() {
    let program = known_weight(
        &[&[3.0, 0.0], &[0.0, 2.0], &[0.0, 0.0]],
        "    s = base adapted by lora(rank = 1, alpha = 2, init_a = pissa_a(base.w, scaling = 2), init_b = \
         pissa_b(base.w, scaling = 2)) on w\n    p = base adapted by pissa(rank = 1) on w",
        "s.w",
    );
    let it = init(&program);
    let c = (3.0f64 / 2.0).sqrt();
    close_up_to_signs(
        "pissa_a",
        &it.tensor("s.w.a"),
        &Array2::from_shape_vec((1, 2), vec![c, 0.0]).expect("a"),
        false,
        1e-12,
    );
    close_up_to_signs(
        "pissa_b",
        &it.tensor("s.w.b"),
        &Array2::from_shape_vec((3, 1), vec![c, 0.0, 0.0]).expect("b"),
        true,
        1e-12,
    );
    let residual = Array2::from_shape_vec((3, 2), vec![0.0, 0.0, 0.0, 2.0, 0.0, 0.0]).expect("residual");
    close("lora(pissa init) base", &it.tensor("s.w"), &residual, 1e-12);
    close("pissa residual", &it.tensor("p.w"), &residual, 1e-12);
    let s3 = 3f64.sqrt();
    close_up_to_signs(
        "pissa A",
        &it.tensor("p.w.a"),
        &Array2::from_shape_vec((1, 2), vec![s3, 0.0]).expect("a"),
        false,
        1e-12,
    );
}

/// LoRA-GA's directions and scales (the authors' lora_ga_init) on a gradient with singular values
/// 4 > 3 > 2 > 1 along the axes, rank 1, m = 4 outputs: "ArB2r" takes A = v1^T and B = u2,
/// "ArBr" and "A2rBr" take A = v2^T and B = u1; "stable" scales both by m^(1/4) / sqrt(gamma),
/// "gd" divides by the scaling alpha / r, "unit" keeps them.
#[test]
fn lora_ga_follows_the_authors_directions_and_scales() {
    let g = matrix(&[&[0.0, 0.0, 0.0, 1.0], &[4.0, 0.0, 0.0, 0.0], &[0.0, 3.0, 0.0, 0.0], &[0.0, 0.0, 2.0, 0.0]]);
    let e = |i: usize, n: usize| {
        let mut v = vec![0.0; n];
        v[i] = 1.0;
        v
    };
    // The singular vectors of g: v_k = e_k (k = 0, 1, 2) with u = e_{k+1}; v_3 = e_3 with u = e_0.
    let (u1, u2, v1, v2) = (e(1, 4), e(2, 4), e(0, 4), e(1, 4));
    let cases = [
        ("direction = \"ArB2r\"", &v1, &u2, 2f64.sqrt() / 4.0),
        ("direction = \"ArBr\", scale = \"gd\"", &v2, &u1, 0.5),
        ("direction = \"A2rBr\", scale = \"unit\"", &v2, &u1, 1.0),
        ("scale = \"stable\", gamma = 4", &v1, &u2, 2f64.sqrt() / 2.0),
    ];
    for (options, a_dir, b_dir, c) in cases {
        let program = format!(
            "model lin() {{\n    param w[4, 4] = gaussian(std = 1)\n    forward(x[b, 4]) = x @ w^T\n}}\n\
             experiment e {{\n    dtype = \"f64\"\n    base = lin()\n    let g0 = {g}\n    \
             s = base adapted by lora_ga(rank = 1, alpha = 2, grad = g0, {options}) on w\n    \
             data x = gaussian([4, 4]) fresh every step\n    loss = mean(s(x)^2)\n    optimize s.w with sgd()\n    \
             steps = 1\n}}\n"
        );
        let it = init(&program);
        let a_want = Array2::from_shape_vec((1, 4), a_dir.iter().map(|x| c * x).collect()).expect("a");
        let b_want = Array2::from_shape_vec((4, 1), b_dir.iter().map(|x| c * x).collect()).expect("b");
        close_up_to_signs(&format!("lora_ga({options}) A"), &it.tensor("s.w.a"), &a_want, false, 1e-12);
        close_up_to_signs(&format!("lora_ga({options}) B"), &it.tensor("s.w.b"), &b_want, true, 1e-12);
        let offset = it.tensor("s.w.b").dot(&it.tensor("s.w.a")) * 2.0;
        close(&format!("lora_ga({options}) base"), &it.tensor("s.w"), &(&it.tensor("base.w") - &offset), 1e-12);
    }
}

/// EVA's A (PEFT's eva init, one layer): the top principal direction of the centred inputs.
/// Rows [8 ± 3, 5] and [5, 5 ± 1] have mean [5, 5] (which, uncentred, would dominate); centred,
/// X^T X = diag(18, 2), so A = ±e1, and with `whiten` A = ±e1 / sqrt(sqrt(18)).
#[test]
fn eva_takes_the_principal_directions_of_centred_inputs() {
    let x = matrix(&[&[8.0, 5.0], &[2.0, 5.0], &[5.0, 6.0], &[5.0, 4.0]]);
    for (whiten, c) in [("false", 1.0), ("true", 18f64.powf(-0.25))] {
        let it = init(&known_weight(
            KNOWN,
            &format!("    let x0 = {x}\n    s = base adapted by eva(rank = 1, inputs = x0, whiten = {whiten}) on w"),
            "s.w",
        ));
        let want = Array2::from_shape_vec((1, 2), vec![c, 0.0]).expect("a");
        close_up_to_signs(&format!("eva A (whiten = {whiten})"), &it.tensor("s.w.a"), &want, false, 1e-12);
        assert!(it.tensor("s.w.b").iter().all(|v| *v == 0.0), "eva's B starts at zero");
    }
}

/// DoRA (PEFT's use_dora) starts with the magnitude at the row norms of w (one per output).
#[test]
fn dora_magnitude_starts_at_the_row_norms() {
    let it = init(&known_weight(KNOWN, "    s = base adapted by dora(rank = 1) on w", "s.w"));
    let m = it.vector("s.w.magnitude");
    let want = [10f64.sqrt(), 20f64.sqrt(), 0.0];
    for (g, w) in m.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "magnitude {m:?}, want {want:?}");
    }
}

/// LoRA-SB (the authors' update approximation): with a gradient whose sign matrix has rank 1
/// (an outer product), the rank-1 approximation of -lr sign(G) is exact, so the adapted weight
/// starts at w - lr sign(G), with B = U_1, A = V_1^T orthonormal and R = [[|| lr sign(G) ||]].
#[test]
fn lora_sb_starts_at_the_approximated_first_update() {
    let g = format!("{} + 0.01", matrix(&[&[3.0, -1.0], &[-6.0, 2.0], &[1.5, -0.5]]));
    let it = init(&known_weight(
        KNOWN,
        &format!("    let g0 = {g}\n    s = base adapted by lora_sb(rank = 1, grad = g0, lr = 0.1) on w"),
        "s.w",
    ));
    let sign = Array2::from_shape_vec((3, 2), vec![1.0, -1.0, -1.0, 1.0, 1.0, -1.0]).expect("sign");
    let want = &it.tensor("base.w") - &(sign.clone() * 0.1);
    close("lora_sb weight", &it.merged("s.w").into_dimensionality::<Ix2>().expect("2-d"), &want, 1e-12);
    let r = it.tensor("s.w.r");
    assert!((r[[0, 0]] - 0.1 * 6f64.sqrt()).abs() < 1e-12, "R = {r}");
    for p in ["s.w.b", "s.w.a"] {
        let f = it.tensor(p);
        let norm = f.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12, "{p} is a unit singular vector: {f}");
    }
    // `signed = false` approximates an SGD step, -lr G.
    let it = init(&known_weight(
        KNOWN,
        &format!(
            "    let g0 = {g}\n    s = base adapted by lora_sb(rank = 2, grad = g0, lr = 0.1, signed = false) on w"
        ),
        "s.w",
    ));
    let g0 = it.tensor("g0");
    close(
        "lora_sb (sgd) weight",
        &it.merged("s.w").into_dimensionality::<Ix2>().expect("2-d"),
        &(&it.tensor("base.w") - &(g0 * 0.1)),
        1e-12,
    );
}

/// `grad(f, p)` is the gradient of f with respect to p alone: for a linear student and a teacher
/// made from the same initial weight (`base with w += 1`), mse(x w^T, x (w + 1)^T) has gradient
/// (2 / (N k)) (x w^T - y)^T x with the teacher held fixed.
#[test]
fn grad_differentiates_with_respect_to_one_tensor() {
    let program = "model lin(d: int, k: int) {\n    param w[k, d] = gaussian(std = 1)\n    forward(x[b, d]) = x @ w^T\n}\n\
                   experiment e {\n    dtype = \"f64\"\n    base = lin(3, 2)\n    teacher = base with w += 1\n    \
                   let xc = gaussian([7, 3])\n    let g0 = grad(mse(base(xc), teacher(xc)), base.w)\n    \
                   let gt = grad(mse(base(xc), teacher(xc)), teacher.w)\n    s = base adapted by lora(rank = 1) on w\n    \
                   let gs = grad(mse(s(xc), teacher(xc)), s.w)\n    data x = gaussian([4, 3]) fresh every step\n    \
                   loss = mean(s(x)^2)\n    optimize s.w with sgd()\n    steps = 1\n}\n";
    let it = init(program);
    let (x, w, t) = (it.tensor("xc"), it.tensor("base.w"), it.tensor("teacher.w"));
    let r = x.dot(&w.t()) - x.dot(&t.t());
    let want = r.t().dot(&x) * (2.0 / 14.0);
    close("grad wrt the student", &it.tensor("g0"), &want, 1e-12);
    close("grad wrt the teacher", &it.tensor("gt"), &(-&want), 1e-12);
    // The gradient with respect to an adapted weight is that of its effective weight.
    close("grad wrt an adapted weight", &it.tensor("gs"), &want, 1e-12);
}

/// `layer_inputs(y, p)` reads what the layer p multiplies: the data for the first layer of a
/// two-layer network, its hidden activations for the second.
#[test]
fn layer_inputs_reads_what_the_layer_multiplies() {
    let program = "model net() {\n    first = linear(3, 4, bias = false)\n    second = linear(4, 2, bias = false)\n    \
                   forward(x[b, 3]) = second(relu(first(x)))\n}\n\
                   experiment e {\n    dtype = \"f64\"\n    base = net()\n    let xc = gaussian([5, 3])\n    \
                   let x1 = layer_inputs(base(xc), base.first.w)\n    let x2 = layer_inputs(base(xc), base.second.w)\n    \
                   data x = gaussian([4, 3]) fresh every step\n    loss = mean(base(x)^2)\n    optimize base.* with sgd()\n    \
                   steps = 1\n}\n";
    let it = init(program);
    let x = it.tensor("xc");
    close("first layer's inputs", &it.tensor("x1"), &x, 0.0);
    let h = x.dot(&it.tensor("base.first.w").t()).mapv(|v| v.max(0.0));
    close("second layer's inputs", &it.tensor("x2"), &h, 1e-15);
}
