//! Matrix products on strided views, with faer's kernels (AVX-512 where the machine has it).
//! Operands are read in place whatever their strides (a transposed view costs nothing), and the
//! result is written into the caller's buffer, optionally accumulated: `dst = alpha a b` or
//! `dst += alpha a b`, which is how a parameter update folds into the product that computes it.
//! Products large enough to pay for waking a second thread run on the worker pool, each worker
//! on its own block of the output; no inner dimension is split, so every element is summed in
//! the same order whatever the thread count (tested), and runs stay reproducible.

use super::Real;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Multiply-adds (m·n·k) from which a product runs on every worker: below it, waking a sleeping
/// worker costs more than the product (about 30 µs of one core here).
pub const PARALLEL_MIN_MNK: usize = 1 << 21;

/// `dst = alpha a b` (or `dst += alpha a b` when `accumulate`) for an m×k `a` and a k×n `b` of any
/// strides. Panics if the shapes disagree (callers check them).
pub fn gemm<T: Real>(dst: ArrayViewMut2<T>, a: ArrayView2<T>, b: ArrayView2<T>, alpha: T, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(b.nrows() == k && dst.dim() == (m, n), "gemm of {:?} x {:?} into {:?}", a.dim(), b.dim(), dst.dim());
    let workers = rayon::current_num_threads();
    if m * n * k >= PARALLEL_MIN_MNK && workers > 1 {
        gemm_in_blocks(dst, a, b, alpha, accumulate, workers);
    } else {
        gemm_with(dst, a, b, alpha, accumulate, Par::Seq);
    }
}

/// Columns (or rows) of a block of the output are a multiple of this, so no block ends in a
/// partial SIMD tile of faer's kernels.
const BLOCK_ALIGN: usize = 16;

/// The product as `parts` independent products on blocks of the output's columns (or rows, for
/// a tall output), one per worker, each with faer's sequential kernels: one fork and join per
/// product, where faer's own parallel product meets at a barrier for every block of the inner
/// loop, which costs more than the arithmetic at a training step's sizes (256×256×512) and
/// stalls whenever a worker is late. No block splits the inner dimension, so every element is
/// summed as by the sequential product, whatever the number of workers.
fn gemm_in_blocks<T: Real>(
    mut dst: ArrayViewMut2<T>,
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    alpha: T,
    accumulate: bool,
    parts: usize,
) {
    let (m, n) = dst.dim();
    let by_columns = n >= m;
    let len = if by_columns { n } else { m };
    let mid = (len * (parts / 2) / parts) / BLOCK_ALIGN * BLOCK_ALIGN;
    if parts < 2 || mid == 0 || mid >= len {
        gemm_with(dst, a, b, alpha, accumulate, Par::Seq);
        return;
    }
    let (left, right) = (parts / 2, parts - parts / 2);
    if by_columns {
        let (d0, d1) = dst.view_mut().split_at(Axis(1), mid);
        let (b0, b1) = b.split_at(Axis(1), mid);
        rayon::join(
            || gemm_in_blocks(d0, a, b0, alpha, accumulate, left),
            || gemm_in_blocks(d1, a, b1, alpha, accumulate, right),
        );
    } else {
        let (d0, d1) = dst.view_mut().split_at(Axis(0), mid);
        let (a0, a1) = a.split_at(Axis(0), mid);
        rayon::join(
            || gemm_in_blocks(d0, a0, b, alpha, accumulate, left),
            || gemm_in_blocks(d1, a1, b, alpha, accumulate, right),
        );
    }
}

/// Runs one small product on every worker of the current pool, so that faer's one-time set-up
/// (CPU features, cache sizes, its threads and packing buffers: 1–3 ms here) is done before a
/// timed first step. A caller starts it on a spare worker (`rayon::spawn`) while it parses.
pub fn warm_up() {
    let n = 128;
    let a = ndarray::Array2::<f32>::from_elem((n, n), 1.0);
    let mut c = ndarray::Array2::<f32>::zeros((n, n));
    gemm_with(c.view_mut(), a.view(), a.view(), 1.0, false, Par::rayon(rayon::current_num_threads()));
}

/// [`gemm`] with the parallelism given (for tests of thread-count independence).
pub fn gemm_with<T: Real>(
    mut dst: ArrayViewMut2<T>,
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    alpha: T,
    accumulate: bool,
    par: Par,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 {
        return;
    }
    let beta = if accumulate { Accum::Add } else { Accum::Replace };
    if k == 0 {
        if !accumulate {
            dst.fill(T::zero());
        }
        return;
    }
    with_faer(dst, a, b, |fd, fa, fb| faer::linalg::matmul::matmul(fd, beta, fa, fb, alpha, par));
}

/// Calls `f` with faer views of `dst`, `a` and `b` (m×n, m×k, k×n), read in place whatever their
/// strides; broadcast (zero-stride) operands, which faer does not read, as compact copies.
fn with_faer<T: Real>(
    mut dst: ArrayViewMut2<T>,
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    f: impl FnOnce(MatMut<'_, T>, MatRef<'_, T>, MatRef<'_, T>),
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (a_own, b_own) = (broadcast_copy(a), broadcast_copy(b));
    let a = match &a_own {
        Some(x) => x.view(),
        None => a.view(),
    };
    let b = match &b_own {
        Some(x) => x.view(),
        None => b.view(),
    };
    let [ars, acs] = strides(a.strides());
    let [brs, bcs] = strides(b.strides());
    let [drs, dcs] = strides(dst.strides());
    // SAFETY: each view addresses exactly its ndarray's elements with its ndarray's strides, the
    // destination is a unique (mutable) view, and none of the three overlaps another (`dst` is
    // borrowed mutably while `a` and `b` are shared borrows).
    unsafe {
        let fa = MatRef::from_raw_parts(a.as_ptr(), m, k, ars, acs);
        let fb = MatRef::from_raw_parts(b.as_ptr(), k, n, brs, bcs);
        let fd = MatMut::from_raw_parts_mut(dst.as_mut_ptr(), m, n, drs, dcs);
        f(fd, fa, fb);
    }
}

/// `dst = a b` for a product known to be symmetric (`x xᵀ`, `xᵀ x`, or the square of a
/// symmetric matrix): only the lower triangle is computed, by faer's triangular product (about
/// half the multiply-adds), and mirrored into the upper one. Panics if the shapes disagree or
/// the result is not square.
pub fn gemm_symmetric<T: Real>(mut dst: ArrayViewMut2<T>, a: ArrayView2<T>, b: ArrayView2<T>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(b.nrows() == k && dst.dim() == (m, n) && m == n, "symmetric gemm of {:?} x {:?}", a.dim(), b.dim());
    let par = if m * m * k / 2 >= PARALLEL_MIN_MNK && rayon::current_num_threads() > 1 {
        Par::rayon(rayon::current_num_threads())
    } else {
        Par::Seq
    };
    gemm_symmetric_with(dst.view_mut(), a, b, par);
}

/// [`gemm_symmetric`] with the parallelism given.
pub fn gemm_symmetric_with<T: Real>(mut dst: ArrayViewMut2<T>, a: ArrayView2<T>, b: ArrayView2<T>, par: Par) {
    use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
    let (m, k) = a.dim();
    if m == 0 {
        return;
    }
    if k == 0 {
        dst.fill(T::zero());
        return;
    }
    with_faer(dst.view_mut(), a, b, |fd, fa, fb| {
        let (rect, lower) = (BlockStructure::Rectangular, BlockStructure::TriangularLower);
        tri_matmul(fd, lower, Accum::Replace, fa, rect, fb, rect, T::one(), par);
    });
    for i in 0..m {
        for j in i + 1..m {
            dst[(i, j)] = dst[(j, i)];
        }
    }
}

fn strides(s: &[isize]) -> [isize; 2] {
    [s[0], s[1]]
}

fn broadcast_copy<T: Real>(v: ArrayView2<T>) -> Option<ndarray::Array2<T>> {
    let s = v.strides();
    let broadcast = (s[0] == 0 && v.nrows() > 1) || (s[1] == 0 && v.ncols() > 1);
    broadcast.then(|| v.as_standard_layout().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn mat(m: usize, n: usize, seed: u64) -> Array2<f32> {
        // A small LCG: deterministic values in [-1, 1) without a dev-dependency.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Array2::from_shape_fn((m, n), |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
    }

    fn max_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
        a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    #[test]
    fn strided_and_transposed_views_match_dot() {
        let (a, b) = (mat(37, 53, 1), mat(53, 29, 2));
        let at = a.t().to_owned();
        let bt = b.t().to_owned();
        let want = a.dot(&b);
        for (x, y) in [(a.view(), b.view()), (at.t(), b.view()), (a.view(), bt.t()), (at.t(), bt.t())] {
            let mut out = Array2::zeros((37, 29));
            gemm(out.view_mut(), x, y, 1.0, false);
            assert!(max_diff(&out, &want) < 1e-4, "{}", max_diff(&out, &want));
        }
        // A transposed destination, a step-2 slice and a broadcast row.
        let mut out_t = Array2::zeros((29, 37));
        gemm(out_t.view_mut().reversed_axes(), a.view(), b.view(), 1.0, false);
        assert!(max_diff(&out_t.t().to_owned(), &want) < 1e-4);
        let wide = mat(37, 106, 3);
        let sliced = wide.slice(ndarray::s![.., ..;2]);
        let mut out = Array2::zeros((37, 29));
        gemm(out.view_mut(), sliced, b.view(), 1.0, false);
        assert!(max_diff(&out, &sliced.to_owned().dot(&b)) < 1e-4);
        let row = mat(1, 53, 4);
        let rows = row.broadcast((37, 53)).unwrap();
        gemm(out.view_mut(), rows, b.view(), 1.0, false);
        assert!(max_diff(&out, &rows.to_owned().dot(&b)) < 1e-4);
    }

    #[test]
    fn symmetric_products_match_the_full_product_and_the_thread_count() {
        let x = mat(150, 90, 11);
        for (a, b) in [(x.view(), x.t()), (x.t(), x.view())] {
            let want = a.dot(&b);
            let n = want.nrows();
            let mut got = Array2::from_elem((n, n), f32::NAN);
            gemm_symmetric(got.view_mut(), a, b);
            assert!(max_diff(&got, &want) < 1e-4, "{}", max_diff(&got, &want));
            assert_eq!(got, got.t(), "exactly symmetric");
            let mut one = Array2::zeros((n, n));
            let mut two = Array2::zeros((n, n));
            gemm_symmetric_with(one.view_mut(), a, b, Par::Seq);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| gemm_symmetric_with(two.view_mut(), a, b, Par::rayon(2)));
            assert_eq!(one, two, "the same bits on one and two threads");
        }
        // The square of a symmetric matrix.
        let s = x.t().dot(&x);
        let mut got = Array2::zeros((90, 90));
        gemm_symmetric(got.view_mut(), s.view(), s.view());
        let want = s.dot(&s);
        assert!(max_diff(&got, &want) / want.iter().fold(0f32, |m, v| m.max(v.abs())) < 1e-5);
    }

    #[test]
    fn accumulates_with_a_scale() {
        let (a, b) = (mat(20, 30, 5), mat(30, 10, 6));
        let mut out = mat(20, 10, 7);
        let want = &out + &(a.dot(&b) * -0.5);
        gemm(out.view_mut(), a.view(), b.view(), -0.5, true);
        assert!(max_diff(&out, &want) < 1e-5);
        // An empty inner dimension: zeros, or the destination unchanged.
        let (e1, e2) = (Array2::<f32>::zeros((20, 0)), Array2::<f32>::zeros((0, 10)));
        let before = out.clone();
        gemm(out.view_mut(), e1.view(), e2.view(), 1.0, true);
        assert_eq!(out, before);
        gemm(out.view_mut(), e1.view(), e2.view(), 1.0, false);
        assert!(out.iter().all(|&x| x == 0.0));
    }

    /// Reproducibility: the same bits on one thread and on two, for shapes that take every path
    /// of faer's dispatch (small, tall, wide, transposed operands, above the parallel threshold).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
        for (m, k, n) in
            [(300, 200, 500), (1024, 64, 256), (64, 1024, 700), (256, 256, 512), (513, 129, 1), (520, 1100, 600)]
        {
            let (a, b) = (mat(m, k, 8), mat(k, n, 9));
            let at = a.t().to_owned();
            for lhs in [a.view(), at.t()] {
                let mut one = Array2::zeros((m, n));
                gemm_with(one.view_mut(), lhs, b.view(), 1.0, false, Par::Seq);
                let mut two = Array2::zeros((m, n));
                pool.install(|| gemm_with(two.view_mut(), lhs, b.view(), 1.0, false, Par::rayon(2)));
                assert!(one == two, "{m}x{k}x{n}: {}", max_diff(&one, &two));
                // The executor's entry point, which splits the output between the workers.
                let mut blocks = Array2::zeros((m, n));
                pool.install(|| gemm(blocks.view_mut(), lhs, b.view(), 1.0, false));
                assert!(one == blocks, "{m}x{k}x{n} in blocks: {}", max_diff(&one, &blocks));
            }
        }
    }
}
