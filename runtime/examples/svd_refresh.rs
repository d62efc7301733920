//! GaLore's projector refresh (issue 6, item 6): the top-`rank` left singular vectors of an m×n
//! f32 matrix, exact by the Gram route (`linalg::svd_top`) and approximate by the randomized
//! range finder (`linalg::randomized_svd`, q = rank, `--niter` power iterations, CholQR2).
//!
//!     cargo run --release -p optic-runtime --example svd_refresh -- --size 4096x1024 --rank 128
//!
//! prints the median time of each route over `--rounds` calls and their quality against the
//! thin SVD (captured energy ‖UᵀG‖²_F / Σ_{i<k} σ_i² and subspace overlap ‖U_exactᵀU‖²_F / k).
//! `--npy FILE` reads G (2-D float32) instead of drawing a Gaussian one; `--parts` times the
//! stages of the exact route instead (the Gram product, then `linalg::eigh_top_timed`'s
//! reduction, bisection, inverse iteration and back-transform, and the whole `svd_top` call, whose
//! remainder is U = G V / σ and the two CholQR2s), median over `--rounds`; `--serve` prints
//! `{"ready": true}` and then, for every line read from stdin, times one call of each route and
//! prints one JSON line: tools/bench_svd_refresh.py drives it interleaved with torch.svd_lowrank.

use faer::linalg::matmul::triangular::{self as tri, BlockStructure};
use ndarray::{Array2, Ix2};
use optic_runtime::data::load;
use optic_runtime::linalg::{eigh_top_timed, randomized_svd, svd_top, thin_svd, SvdRoute};
use std::io::BufRead;
use std::time::Instant;

struct Args {
    m: usize,
    n: usize,
    rank: usize,
    niter: usize,
    rounds: usize,
    npy: Option<String>,
    serve: bool,
    parts: bool,
}

fn args() -> Args {
    let mut a = Args { m: 4096, n: 1024, rank: 128, niter: 2, rounds: 5, npy: None, serve: false, parts: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--size" => {
                let v = value();
                let (m, n) = v.split_once('x').expect("--size MxN");
                (a.m, a.n) = (m.parse().expect("M"), n.parse().expect("N"));
            }
            "--rank" => a.rank = value().parse().expect("--rank"),
            "--niter" => a.niter = value().parse().expect("--niter"),
            "--rounds" => a.rounds = value().parse().expect("--rounds"),
            "--npy" => a.npy = Some(value()),
            "--serve" => a.serve = true,
            "--parts" => a.parts = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Standard normals (SplitMix64 + Box–Muller), as f32.
fn gaussian(m: usize, n: usize, seed: u64) -> Array2<f32> {
    let mut s = seed;
    let mut uniform = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    Array2::from_shape_fn((m, n), |_| {
        let (u1, u2) = (1.0 - uniform(), uniform());
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    })
}

fn load_matrix(path: &str) -> Array2<f32> {
    let arrays = load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{path}: {}", e.message));
    let first = arrays.into_iter().next().expect("one array");
    first.values.to_f64().into_dimensionality::<Ix2>().expect("a matrix").mapv(|x| x as f32)
}

fn seconds<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let a = args();
    let g = match &a.npy {
        Some(p) => load_matrix(p),
        None => gaussian(a.m, a.n, 0),
    };
    if a.parts {
        return parts(&g, a.rank, a.rounds);
    }
    let omega = gaussian(g.ncols(), a.rank, 1);
    let gram = || {
        let ((u, _, _), route) = svd_top(g.view(), a.rank).expect("svd");
        assert_eq!(route, SvdRoute::Gram, "the Gram route is not accurate for this matrix");
        u
    };
    let randomized = || randomized_svd(g.view(), omega.view(), a.niter).expect("randomized svd").0;
    // Warm-up: faer's thread pool and allocations.
    let (u_gram, first) = seconds(gram);
    let u_rand = randomized();
    if a.serve {
        println!("{{\"ready\": true, \"first_call_s\": {first}}}");
        for (round, line) in std::io::stdin().lock().lines().enumerate() {
            if line.is_err() {
                break;
            }
            let (_, t_gram) = seconds(gram);
            let (_, t_rand) = seconds(randomized);
            println!("{{\"round\": {round}, \"gram_s\": {t_gram}, \"randomized_s\": {t_rand}}}");
        }
        return;
    }
    let mut times = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        times.0.push(seconds(gram).1);
        times.1.push(seconds(randomized).1);
    }
    let ((u_exact, s_exact, _), t_thin) = seconds(|| thin_svd(g.view(), a.rank).expect("thin svd"));
    let quality = |u: &Array2<f32>| {
        let captured: f64 = u.t().dot(&g).iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let top: f64 = s_exact.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let overlap: f64 = u_exact.t().dot(u).iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        (captured / top, overlap / a.rank as f64)
    };
    let (eg, og) = quality(&u_gram);
    let (er, or) = quality(&u_rand);
    println!(
        "{}x{} rank {}: gram {:.1} ms (energy {eg:.6}, overlap {og:.6}), randomized niter {} {:.1} ms \
         (energy {er:.4}, overlap {or:.4}), thin svd {:.0} ms (one call)",
        g.nrows(),
        g.ncols(),
        a.rank,
        1e3 * median(times.0),
        a.niter,
        1e3 * median(times.1),
        1e3 * t_thin
    );
}

/// `--parts`: the exact route's stages, each round timed in order, medians printed.
fn parts(g: &Array2<f32>, rank: usize, rounds: usize) {
    // The Gram route works on the tall orientation.
    let g = if g.nrows() >= g.ncols() { g.view() } else { g.t() };
    let n = g.ncols();
    let names = ["gram", "reduce", "values", "vectors", "back", "svd_top", "svd_top_rest"];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..=rounds {
        // C = GᵀG's lower triangle, as svd_top computes it (faer's triangular product).
        let gf = faer::Mat::<f32>::from_fn(g.nrows(), n, |i, j| g[[i, j]]);
        let (cf, gram) = seconds(|| {
            let mut c = faer::Mat::<f32>::zeros(n, n);
            let (lower, rect) = (BlockStructure::TriangularLower, BlockStructure::Rectangular);
            let par = faer::get_global_parallelism();
            tri::matmul(c.as_mut(), lower, faer::Accum::Replace, gf.transpose(), rect, gf.as_ref(), rect, 1.0, par);
            c
        });
        let c = Array2::from_shape_fn((n, n), |(i, j)| if i >= j { cf[(i, j)] } else { 0.0 });
        let (_, _, e) = eigh_top_timed(c.view(), rank).expect("eigh_top");
        let (_, total) = seconds(|| svd_top(g, rank).expect("svd"));
        let rest = total - gram - e.reduce - e.values - e.vectors - e.back;
        if round > 0 {
            // (round 0 warms up the pool and the allocator)
            for (v, x) in t.iter_mut().zip([gram, e.reduce, e.values, e.vectors, e.back, total, rest]) {
                v.push(x);
            }
        }
    }
    let fields: Vec<String> = names.iter().zip(t).map(|(k, v)| format!("\"{k}_ms\": {:.2}", 1e3 * median(v))).collect();
    println!("{{\"size\": \"{}x{}\", \"rank\": {rank}, \"rounds\": {rounds}, {}}}", g.nrows(), n, fields.join(", "));
}
