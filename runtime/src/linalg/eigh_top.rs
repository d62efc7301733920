//! The k largest eigenpairs of a symmetric n×n matrix without its full eigendecomposition, as
//! LAPACK's syevx with range = 'I' computes them: blocked Householder reduction to a tridiagonal
//! T = QᵀAQ (`tridiag.rs`, LAPACK's sytrd: half its arithmetic in matrix products), the k largest
//! eigenvalues of T by bisection on Sturm counts (sixteen bisections at once, in SIMD lanes),
//! their eigenvectors by inverse iteration with the vectors of each cluster of close eigenvalues
//! re-orthogonalized against each other (LAPACK's stein), and only those k vectors mapped back by
//! Q (faer's blocked Householder application, a few matrix products). A full eigh spends most of
//! its time on all n eigenvectors of T and on applying Q to them; here the work on T is O(n k)
//! and the back-transform O(n² k), so the reduction is all that remains of the O(n³). The
//! tridiagonal stage runs in f64 whatever the element type (it is cheap, and the reduction's
//! accuracy is kept). Every step either splits work into pieces fixed by the sizes alone, summed
//! in a fixed order, or uses faer's products (which split only their outputs), so the results do
//! not depend on the number of threads. If inverse iteration fails to converge (stein reports the
//! same failure), the full eigendecomposition is computed instead.

use super::{err, finite, from_faer, LinalgError, Real};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder as hh;
use faer::linalg::qr::no_pivoting::factor::recommended_block_size;
use faer::{Conj, Mat, Par};
use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;
use std::time::Instant;

mod simd;
mod tridiag;

/// The `k` largest eigenvalues of the symmetric matrix `a` (only its lower triangle is read), in
/// descending order, and their orthonormal eigenvectors as the columns of an n×k matrix (column j
/// for value j, its largest entry positive). Equal, up to rounding and the signs of the vectors,
/// to the last k eigenpairs of [`super::eigh`] in reverse order, for a fraction of its time when
/// k ≪ n. As `eigh`, a NaN or
/// infinite entry gives NaN results of the right shapes, and k > n is an error.
pub fn eigh_top<T: Real>(a: ArrayView2<T>, k: usize) -> Result<(Array1<T>, Array2<T>), LinalgError> {
    let n = super::square(a, "eigh_top")?;
    if k > n {
        return err(format!("eigh_top of {k} eigenpairs of a {n}x{n} matrix"));
    }
    if !finite(a) {
        return Ok((Array1::from_elem(k, T::nan()), super::nan2(n, k)));
    }
    let (w, v) = top_eigen_in_place(super::to_faer(a), k)?;
    Ok((Array1::from(w), from_faer(v.as_ref())))
}

/// Wall-clock seconds spent in the stages of one [`eigh_top_timed`] call.
#[derive(Clone, Copy, Debug, Default)]
pub struct EighTopTimes {
    /// The Householder reduction to tridiagonal form.
    pub reduce: f64,
    /// The bisection for the k eigenvalues of the tridiagonal matrix.
    pub values: f64,
    /// The inverse iteration for their eigenvectors.
    pub vectors: f64,
    /// Applying the reduction's reflectors to the k vectors.
    pub back: f64,
}

/// [`eigh_top`] and the time spent in each of its stages (for profiling: the stages are
/// timed inside the call, without the conversions between ndarray and faer).
pub fn eigh_top_timed<T: Real>(
    a: ArrayView2<T>,
    k: usize,
) -> Result<(Array1<T>, Array2<T>, EighTopTimes), LinalgError> {
    super::square(a, "eigh_top")?;
    let mut times = EighTopTimes::default();
    let (w, v) = top_eigen_timed(super::to_faer(a), k, &mut times)?;
    Ok((Array1::from(w), from_faer(v.as_ref()), times))
}

/// [`eigh_top`] on a faer matrix (lower triangle read), which it overwrites (the reduction runs
/// in place): (values descending, vectors n×k). A non-finite entry, in the input or produced by
/// the reduction, is an error.
pub(crate) fn top_eigen_in_place<T: Real>(a: Mat<T>, k: usize) -> Result<(Vec<T>, Mat<T>), LinalgError> {
    top_eigen_timed(a, k, &mut EighTopTimes::default())
}

fn top_eigen_timed<T: Real>(
    mut a: Mat<T>,
    k: usize,
    times: &mut EighTopTimes,
) -> Result<(Vec<T>, Mat<T>), LinalgError> {
    let n = a.nrows();
    if a.ncols() != n || k > n {
        return err(format!("eigh_top of {k} eigenpairs of a {n}x{} matrix", a.ncols()));
    }
    if (0..n).any(|j| a.col_as_slice(j)[j..].iter().any(|x| !x.is_finite())) {
        return err("eigh_top: the matrix has a NaN or an infinite entry");
    }
    if k == 0 {
        return Ok((Vec::new(), Mat::zeros(n, 0)));
    }
    let since = |t: Instant| t.elapsed().as_secs_f64();
    let clock = Instant::now();
    let bs = recommended_block_size::<T>(n - 1, n - 1);
    let mut h = Mat::<T>::zeros(bs, n - 1);
    // On a worker of the pool, so that the reduction's two-way splits are cheap.
    rayon::scope(|_| tridiag::tridiagonalize(&mut a, &mut h, faer::get_global_parallelism()));
    times.reduce = since(clock);
    let f = |x: T| x.to_f64().unwrap_or(f64::NAN);
    let t = Tridiagonal::new((0..n).map(|i| f(a[(i, i)])).collect(), (1..n).map(|i| f(a[(i, i - 1)])).collect());
    if !t.norm.is_finite() {
        return err("eigh_top: the tridiagonal reduction overflowed");
    }
    // Eigenvalues to a hundredth of T's rounding (f64's for f64): the shifts of inverse
    // iteration then mix an eigenvector with its neighbours less than the reduction's rounding.
    let tol = (0.01 * f(T::epsilon())).max(2.0 * f64::EPSILON);
    let clock = Instant::now();
    let mut w = t.top_values(k, tol);
    times.values = since(clock);
    let clock = Instant::now();
    let z = match t.vectors(&w).filter(|_| !forced_full()) {
        Some(z) => z,
        None => {
            let (wf, zf) = t.full(k)?;
            w = wf;
            zf
        }
    };
    times.vectors = since(clock);
    let clock = Instant::now();
    // Descending: column j holds the vector of w[k - 1 - j].
    let cast = |x: f64| T::from(x).unwrap_or_else(T::nan);
    let mut v = Mat::<T>::from_fn(n, k, |i, j| cast(z[k - 1 - j][i]));
    if n > 1 {
        let mut buf =
            MemBuffer::new(hh::apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(n - 1, bs, k));
        hh::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            a.as_ref().submatrix(1, 0, n - 1, n - 1),
            h.as_ref(),
            Conj::No,
            v.as_mut().subrows_mut(1, n - 1),
            faer::get_global_parallelism(),
            MemStack::new(&mut buf),
        );
    }
    // Signs: each vector's largest entry (the first of equal ones) is positive.
    for j in 0..k {
        let col = v.col_as_slice_mut(j);
        let big = col.iter().fold(T::zero(), |m, &x| if x.abs() > m.abs() { x } else { m });
        if big < T::zero() {
            col.iter_mut().for_each(|x| *x = -*x);
        }
    }
    times.back = since(clock);
    Ok(((0..k).map(|j| cast(w[k - 1 - j])).collect(), v))
}

#[cfg(test)]
thread_local! {
    /// Set by tests to take the fallback (the full eigendecomposition of T) on this thread.
    pub(super) static FORCE_FULL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn forced_full() -> bool {
    FORCE_FULL.with(|f| f.get())
}

#[cfg(not(test))]
fn forced_full() -> bool {
    false
}

/// Bisections run side by side, one per SIMD lane (four AVX vectors of f64).
const LANES: usize = 16;

/// A symmetric tridiagonal matrix in f64: diagonal `d`, off-diagonal `e` (e[i] couples i and
/// i + 1), with the constants of LAPACK's stebz/stein.
struct Tridiagonal {
    d: Vec<f64>,
    e: Vec<f64>,
    /// e[i]², for the Sturm counts.
    e2: Vec<f64>,
    /// The smallest pivot magnitude allowed in a Sturm count (LAPACK's pivmin).
    pivmin: f64,
    /// ‖T‖₁ (= ‖T‖∞).
    norm: f64,
    /// Gershgorin bounds on the spectrum, widened by rounding margins.
    lo: f64,
    hi: f64,
}

impl Tridiagonal {
    fn new(d: Vec<f64>, e: Vec<f64>) -> Self {
        let n = d.len();
        let e2: Vec<f64> = e.iter().map(|x| x * x).collect();
        let pivmin = f64::MIN_POSITIVE * e2.iter().fold(1.0f64, |m, &x| m.max(x));
        let radius = |i: usize| if i > 0 { e[i - 1].abs() } else { 0.0 } + if i + 1 < n { e[i].abs() } else { 0.0 };
        let (mut lo, mut hi, mut norm) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for (i, &di) in d.iter().enumerate() {
            let r = radius(i);
            lo = lo.min(di - r);
            hi = hi.max(di + r);
            norm = norm.max(di.abs() + r);
        }
        // Bounds on the eigenvalues of T are bounds on its computed Sturm counts up to rounding
        // (LAPACK's dstebz widens them the same way).
        let margin = 2.0 * norm * f64::EPSILON * n as f64 + 2.0 * pivmin;
        Tridiagonal { d, e, e2, pivmin, norm, lo: lo - margin, hi: hi + margin }
    }

    fn n(&self) -> usize {
        self.d.len()
    }

    /// How many eigenvalues are below each x (the negative pivots of T - xI = L D Lᵀ), with AVX
    /// where the machine has it (the same operations in the same order: the same bits).
    fn counts(&self, x: &[f64; LANES]) -> [u32; LANES] {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX (checked just above).
            return unsafe { self.counts_avx(x) };
        }
        self.counts_any(x)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn counts_avx(&self, x: &[f64; LANES]) -> [u32; LANES] {
        self.counts_any(x)
    }

    #[inline(always)]
    fn counts_any(&self, x: &[f64; LANES]) -> [u32; LANES] {
        let (d, e2, pivmin) = (&self.d, &self.e2, self.pivmin);
        let mut q = [0.0f64; LANES];
        let mut c = [0u32; LANES];
        // A pivot in (-pivmin, pivmin] counts as negative and is replaced by -pivmin.
        let clamp = |v: f64| if v > -pivmin && v <= pivmin { -pivmin } else { v };
        for l in 0..LANES {
            q[l] = clamp(d[0] - x[l]);
            c[l] = (q[l] < 0.0) as u32;
        }
        for (di, ei2) in d[1..].iter().zip(e2) {
            for l in 0..LANES {
                q[l] = clamp((di - x[l]) - ei2 / q[l]);
                c[l] += (q[l] < 0.0) as u32;
            }
        }
        c
    }

    /// The k largest eigenvalues, ascending, by bisection to within `tol` ‖T‖ (or f64 rounding).
    fn top_values(&self, k: usize, tol: f64) -> Vec<f64> {
        let n = self.n();
        let first = n - k;
        if self.norm == 0.0 {
            return vec![0.0; k];
        }
        let chunks: Vec<usize> = (first..n).step_by(LANES).collect();
        let mut out: Vec<Vec<f64>> =
            chunks.par_iter().map(|&start| self.bisect(start, (n - start).min(LANES), tol)).collect();
        let mut w: Vec<f64> = out.drain(..).flatten().collect();
        // Counts in floating point can be non-monotone by a rounding: keep the values sorted.
        w.sort_by(f64::total_cmp);
        w
    }

    /// The eigenvalues of indices start..start + m (ascending order, m ≤ LANES).
    fn bisect(&self, start: usize, m: usize, tol: f64) -> Vec<f64> {
        let mut lo = [self.lo; LANES];
        let mut hi = [self.hi; LANES];
        let atol = tol * self.norm + 2.0 * self.pivmin;
        let done = |lo: f64, hi: f64| hi - lo <= atol.max(2.0 * f64::EPSILON * lo.abs().max(hi.abs()));
        // Each step halves the interval; 2100 steps cover the whole f64 exponent range.
        for _ in 0..2100 {
            if (0..m).all(|l| done(lo[l], hi[l])) {
                break;
            }
            let mut mid = [0.0; LANES];
            for l in 0..LANES {
                mid[l] = 0.5 * (lo[l] + hi[l]);
            }
            let c = self.counts(&mid);
            for l in 0..m {
                if c[l] as usize > start + l {
                    hi[l] = mid[l];
                } else {
                    lo[l] = mid[l];
                }
            }
        }
        (0..m).map(|l| 0.5 * (lo[l] + hi[l])).collect()
    }

    /// The fallback of [`Tridiagonal::vectors`]: the k largest eigenpairs (ascending) from faer's
    /// full eigendecomposition of T (divide and conquer).
    fn full(&self, k: usize) -> Result<(Vec<f64>, Vec<Vec<f64>>), LinalgError> {
        let n = self.n();
        let sub = faer::Col::<f64>::from_fn(n, |i| if i + 1 < n { self.e[i] } else { 0.0 });
        let diag = faer::Col::<f64>::from_fn(n, |i| self.d[i]);
        let (mut s, mut u) = (faer::Col::<f64>::zeros(n), Mat::<f64>::zeros(n, n));
        let yes = faer::linalg::evd::ComputeEigenvectors::Yes;
        let scratch = faer::linalg::evd::self_adjoint_evd_scratch::<f64>(n, yes, Par::Seq, Default::default());
        faer::linalg::evd::tridiagonal_self_adjoint_evd(
            diag.as_diagonal(),
            sub.as_diagonal(),
            s.as_diagonal_mut(),
            Some(u.as_mut()),
            Par::Seq,
            MemStack::new(&mut MemBuffer::new(scratch)),
            Default::default(),
        )
        .map_err(|e| LinalgError(format!("eigh_top failed: {e:?}")))?;
        let top = n - k..n;
        Ok((top.clone().map(|j| s[j]).collect(), top.map(|j| u.col(j).iter().copied().collect()).collect()))
    }

    /// Unit eigenvectors for the eigenvalues `w` (ascending) by inverse iteration, re-orthogonalized
    /// within clusters (gaps ≤ 10⁻³‖T‖, LAPACK's stein); None if one does not converge.
    fn vectors(&self, w: &[f64]) -> Option<Vec<Vec<f64>>> {
        let n = self.n();
        if self.norm == 0.0 {
            // T = 0: any orthonormal vectors, here the last unit vectors.
            return Some((n - w.len()..n).map(|j| (0..n).map(|i| (i == j) as u8 as f64).collect()).collect());
        }
        let ortol = 1e-3 * self.norm;
        let mut starts: Vec<usize> = (0..w.len()).filter(|&j| j == 0 || w[j] - w[j - 1] > ortol).collect();
        starts.push(w.len());
        let clusters: Vec<(usize, usize)> = starts.windows(2).map(|s| (s[0], s[1])).collect();
        let found: Vec<Option<Vec<Vec<f64>>>> = clusters.par_iter().map(|&(a, b)| self.cluster(w, a, b)).collect();
        let mut out = Vec::with_capacity(w.len());
        for c in found {
            out.extend(c?);
        }
        Some(out)
    }

    /// The eigenvectors of the cluster w[a..b], each orthogonalized against the ones before it.
    fn cluster(&self, w: &[f64], a: usize, b: usize) -> Option<Vec<Vec<f64>>> {
        let n = self.n();
        let mut lu = Lu::new(n);
        let mut out: Vec<Vec<f64>> = Vec::with_capacity(b - a);
        let mut shift = f64::NEG_INFINITY;
        // LAPACK's stein: at most 5 solves, the last two after the growth test first passes.
        let (max_its, extra) = (5, 2);
        let grown = (0.1 / n as f64).sqrt();
        for (j, &wj) in w.iter().enumerate().take(b).skip(a) {
            // Equal eigenvalues get slightly different shifts so the solves differ.
            let pert = 10.0 * f64::EPSILON * wj.abs().max(self.norm * f64::EPSILON);
            shift = if j > a && wj - shift < pert { shift + pert } else { wj };
            lu.factor(self, shift);
            let mut x = start_vector(n, j as u64);
            let (mut its, mut checks) = (0, 0);
            loop {
                its += 1;
                if its > max_its {
                    return None;
                }
                // Scaled so that the solution of a converged step is of order one (stein).
                let l1: f64 = x.iter().map(|v| v.abs()).sum();
                let scale = n as f64 * self.norm * f64::EPSILON.max(lu.last) / l1;
                if !scale.is_finite() || scale == 0.0 {
                    return None;
                }
                x.iter_mut().for_each(|v| *v *= scale);
                lu.solve(&mut x);
                for z in &out {
                    let dot: f64 = x.iter().zip(z).map(|(p, q)| p * q).sum();
                    x.iter_mut().zip(z).for_each(|(p, q)| *p -= dot * q);
                }
                let big = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                if !big.is_finite() {
                    return None;
                }
                if big < grown {
                    continue;
                }
                checks += 1;
                if checks > extra {
                    break;
                }
            }
            // Unit length, largest entry (the first of them) positive.
            let imax = (0..n).fold(0, |m, i| if x[i].abs() > x[m].abs() { i } else { m });
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let s = if x[imax] < 0.0 { -1.0 / norm } else { 1.0 / norm };
            x.iter_mut().for_each(|v| *v *= s);
            out.push(x);
        }
        Some(out)
    }
}

/// A deterministic start vector for inverse iteration: uniform in (-1, 1) from SplitMix64 seeded
/// by the eigenvalue's index (so it does not depend on which thread computes which cluster).
fn start_vector(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// T - λI = P L U by Gaussian elimination with partial pivoting (LAPACK's lagtf): L unit lower
/// bidiagonal (multipliers `l`, with rows i and i + 1 swapped first where `swap[i]`), U upper
/// triangular with diagonal `u0` (stored as reciprocals `inv0`) and super-diagonals `u1`, `u2`.
struct Lu {
    inv0: Vec<f64>,
    u1: Vec<f64>,
    u2: Vec<f64>,
    l: Vec<f64>,
    swap: Vec<bool>,
    /// |U[n-1, n-1]| before it is raised to the smallest pivot allowed: small when the shift is
    /// accurate.
    last: f64,
}

impl Lu {
    fn new(n: usize) -> Self {
        let z = vec![0.0; n];
        Lu { inv0: z.clone(), u1: z.clone(), u2: z.clone(), l: z, swap: vec![false; n], last: 0.0 }
    }

    fn factor(&mut self, t: &Tridiagonal, shift: f64) {
        let n = t.n();
        let (d, e) = (&t.d, &t.e);
        // Pivots below ε‖T‖ are raised to it, keeping their sign (lagts with job = -1): the
        // shift is an eigenvalue, so U is singular up to rounding by design.
        let tiny = f64::EPSILON * t.norm.max(f64::MIN_POSITIVE);
        let inv = |p: f64| {
            1.0 / if p.abs() >= tiny {
                p
            } else if p < 0.0 {
                -tiny
            } else {
                tiny
            }
        };
        // Row i of the partly eliminated matrix is (cur0, cur1, 0) in columns i, i + 1, i + 2.
        let mut cur0 = d[0] - shift;
        let mut cur1 = if n > 1 { e[0] } else { 0.0 };
        for i in 0..n - 1 {
            let next = (e[i], d[i + 1] - shift, if i + 2 < n { e[i + 1] } else { 0.0 });
            let swap = cur0.abs() < next.0.abs();
            let (p, o) = if swap { (next, (cur0, cur1, 0.0)) } else { ((cur0, cur1, 0.0), next) };
            let m = if p.0 != 0.0 { o.0 / p.0 } else { 0.0 };
            (self.inv0[i], self.u1[i], self.u2[i], self.l[i], self.swap[i]) = (inv(p.0), p.1, p.2, m, swap);
            cur0 = o.1 - m * p.1;
            cur1 = o.2 - m * p.2;
        }
        self.last = cur0.abs();
        self.inv0[n - 1] = inv(cur0);
    }

    /// x ← (T - λI)⁻¹ x.
    fn solve(&self, x: &mut [f64]) {
        let n = x.len();
        for i in 0..n - 1 {
            let (a, b) = if self.swap[i] { (x[i + 1], x[i]) } else { (x[i], x[i + 1]) };
            x[i] = a;
            x[i + 1] = b - self.l[i] * a;
        }
        x[n - 1] *= self.inv0[n - 1];
        if n > 1 {
            x[n - 2] = (x[n - 2] - self.u1[n - 2] * x[n - 1]) * self.inv0[n - 2];
        }
        for i in (0..n.saturating_sub(2)).rev() {
            x[i] = (x[i] - self.u1[i] * x[i + 1] - self.u2[i] * x[i + 2]) * self.inv0[i];
        }
    }
}
