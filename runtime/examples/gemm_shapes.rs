//! GEMM speed at the shapes of a workload through `optic_runtime::linalg::gemm` (faer, in the
//! rayon pool as the training loop calls it, its other workers spinning): the ceiling the W4
//! training step can reach, and the first call, which pays faer's set-up.
//!     cargo run --release -p optic-runtime --example gemm_shapes [-- M K N ...]
//! With no arguments: W4's two large products, x[256,256] @ W1[256,512] (forward) and
//! xᵀ[256,256] @ dz[256,512] (the W1 gradient, the transpose read in place).

use ndarray::Array2;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect()
    } else {
        vec![(256, 256, 512)]
    };
    let pool = rayon::ThreadPoolBuilder::new().build().expect("a pool");
    pool.install(|| {
        optic_runtime::pool::with_workers_spinning(|| {
            for (m, k, n) in shapes {
                let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.1);
                let at = Array2::<f32>::from_shape_fn((k, m), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1);
                let b = Array2::<f32>::from_shape_fn((k, n), |(i, j)| ((i + j * 5) % 7) as f32 * 0.1);
                let mut c = Array2::<f32>::zeros((m, n));
                let t0 = Instant::now();
                optic_runtime::linalg::gemm(c.view_mut(), a.view(), b.view(), 1.0, false);
                println!("{m}x{k}x{n}: first call {:.1} us", t0.elapsed().as_secs_f64() * 1e6);
                for (name, transposed) in [("a @ b", false), ("aᵀ @ b", true)] {
                    let mut ts = Vec::new();
                    for _ in 0..200 {
                        let t0 = Instant::now();
                        let lhs = if transposed { at.t() } else { a.view() };
                        optic_runtime::linalg::gemm(c.view_mut(), lhs, b.view(), 1.0, false);
                        ts.push(t0.elapsed().as_secs_f64());
                    }
                    ts.sort_by(f64::total_cmp);
                    let med = ts[ts.len() / 2];
                    let gflops = 2.0 * (m * k * n) as f64 / med / 1e9;
                    println!("{m}x{k}x{n} {name}: median {:.1} us, {gflops:.0} GFLOP/s", med * 1e6);
                }
            }
        })
    });
}
