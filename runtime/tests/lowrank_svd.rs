//! The truncated SVDs of GaLore's projector refresh (`linalg::svd_top`, `linalg::randomized_svd`):
//! the Gram route against the thin SVD on matrices with a prescribed spectrum (so the exact
//! singular vectors are known), when each route is chosen, and the randomized range finder's
//! captured energy against the exact top-k on decaying and flat spectra.

use ndarray::{Array1, Array2, Axis};
use optic_runtime::linalg::{qr, randomized_svd, svd, svd_top, thin_svd, SvdRoute, GRAM_MIN_SIDE};

/// Standard normals from SplitMix64 and Box–Muller, so the test needs no extra dependency.
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn mat(&mut self, m: usize, n: usize) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |_| self.next())
    }

    /// Haar-random orthonormal columns (m×k).
    fn orthonormal(&mut self, m: usize, k: usize) -> Array2<f64> {
        qr(self.mat(m, k).view()).0
    }
}

/// A = U diag(s) Vᵀ with Haar-random U (m×p), V (n×p), p = min(m, n): its exact SVD.
struct Known {
    a: Array2<f64>,
    u: Array2<f64>,
    s: Array1<f64>,
    v: Array2<f64>,
}

fn known(rng: &mut Normal, m: usize, n: usize, s: Array1<f64>) -> Known {
    let p = m.min(n);
    assert_eq!(s.len(), p);
    let (u, v) = (rng.orthonormal(m, p), rng.orthonormal(n, p));
    let a = (&u * &s.view().insert_axis(Axis(0))).dot(&v.t());
    Known { a, u, s, v }
}

/// Geometric spectrum from 1 down to 1 / `condition` over `p` values.
fn geometric(p: usize, condition: f64) -> Array1<f64> {
    Array1::from_shape_fn(p, |i| condition.powf(-(i as f64) / (p - 1) as f64))
}

fn f32s(a: &Array2<f64>) -> Array2<f32> {
    a.mapv(|x| x as f32)
}

fn f64s(a: &Array2<f32>) -> Array2<f64> {
    a.mapv(f64::from)
}

/// The distance between unit vectors x and ±y (singular vectors have no sign): about their angle.
fn distance(x: ndarray::ArrayView1<f64>, y: ndarray::ArrayView1<f64>) -> f64 {
    let minus = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
    let plus = x.iter().zip(y).map(|(a, b)| (a + b) * (a + b)).sum::<f64>();
    minus.min(plus).sqrt()
}

/// Errors of a computed top-k (u m×k, s, vt k×n) against the known SVD: the largest distance
/// between a computed singular vector (left or right) and the exact one, and the largest
/// singular-value error relative to σ₁.
fn errors(known: &Known, u: &Array2<f64>, s: &Array1<f64>, vt: &Array2<f64>) -> (f64, f64) {
    let k = s.len();
    let mut angle = 0.0f64;
    for j in 0..k {
        angle = angle.max(distance(u.column(j), known.u.column(j))).max(distance(vt.row(j), known.v.column(j)));
    }
    let sv = (0..k).map(|j| (s[j] - known.s[j]).abs()).fold(0.0, f64::max) / known.s[0];
    (angle, sv)
}

/// ‖QᵀQ − I‖_max of the columns of q.
fn orthonormality(q: &Array2<f64>) -> f64 {
    let g = q.t().dot(q);
    g.indexed_iter().map(|((i, j), x)| (x - if i == j { 1.0 } else { 0.0 }).abs()).fold(0.0, f64::max)
}

/// The Gram route's vectors are within a factor of about κ_k / 2 of the thin SVD's (its module
/// doc), and it is chosen only while that factor is at most ε^(-1/4) / 2 (27 in f32): on f32
/// matrices whose kept spectrum has condition number 2 to 40, its singular vectors and values
/// agree with the exact ones about as well as the thin SVD's, its factors are orthonormal to
/// working precision, and it reconstructs the matrix's top-k part.
#[test]
fn the_gram_route_is_as_accurate_as_the_thin_svd_where_it_is_chosen() {
    let mut rng = Normal(1);
    let (m, n, k) = (300, 160, 32);
    for kappa_k in [2.0f64, 10.0, 40.0] {
        // The kept spectrum falls by kappa_k over k values; the rest keeps the same rate.
        let spectrum = geometric(n, kappa_k.powf((n - 1) as f64 / (k - 1) as f64));
        let known = known(&mut rng, m, n, spectrum);
        let a = f32s(&known.a);
        let ((u, s, vt), route) = svd_top(a.view(), k).expect("svd");
        assert_eq!(route, SvdRoute::Gram, "kappa_k = {kappa_k}");
        let (u, s, vt) = (f64s(&u), s.mapv(f64::from), f64s(&vt));
        let (angle, sv) = errors(&known, &u, &s, &vt);
        let (tu, ts, tvt) = thin_svd(a.view(), k).expect("thin svd");
        let (t_angle, t_sv) = errors(&known, &f64s(&tu), &ts.mapv(f64::from), &f64s(&tvt));
        eprintln!("kappa_k {kappa_k}: gram angle {angle:.1e} sv {sv:.1e}; thin angle {t_angle:.1e} sv {t_sv:.1e}");
        assert!(angle <= 1e-5 + kappa_k * t_angle, "kappa_k {kappa_k}: angle {angle:e} vs thin {t_angle:e}");
        assert!(sv <= 1e-6 + 4.0 * t_sv, "kappa_k {kappa_k}: singular values {sv:e} vs thin {t_sv:e}");
        let (ou, ov) = (orthonormality(&u), orthonormality(&vt.t().to_owned()));
        eprintln!("orthonormality U {ou:.1e} V {ov:.1e}");
        assert!(ou < 1e-6 && ov < 1e-6, "orthonormal factors: U {ou:e}, V {ov:e}");
        assert!(s.windows(2).into_iter().all(|w| w[0] >= w[1]), "descending");
    }
}

/// The same in f64, where the route is chosen up to κ_k = 8192: the vectors stay within a
/// factor κ_k of the thin SVD's and, in absolute terms, near 1e-11.
#[test]
fn in_f64_the_gram_route_serves_ill_conditioned_spectra_too() {
    let mut rng = Normal(2);
    let (m, n, k) = (200, 120, 24);
    for kappa_k in [10.0f64, 1000.0] {
        let spectrum = geometric(n, kappa_k.powf((n - 1) as f64 / (k - 1) as f64));
        let known = known(&mut rng, m, n, spectrum);
        let ((u, s, vt), route) = svd_top(known.a.view(), k).expect("svd");
        assert_eq!(route, SvdRoute::Gram);
        let (angle, sv) = errors(&known, &u, &s, &vt);
        let (tu, ts, tvt) = thin_svd(known.a.view(), k).expect("thin svd");
        let (t_angle, _) = errors(&known, &tu, &ts, &tvt);
        eprintln!("f64 kappa_k {kappa_k}: gram angle {angle:.1e} sv {sv:.1e}; thin angle {t_angle:.1e}");
        assert!(angle <= 1e-13 + kappa_k * t_angle && angle < 1e-9, "angle {angle:e} vs thin {t_angle:e}");
        assert!(sv < 1e-13, "singular values {sv:e}");
    }
}

/// Where the Gram route would not be accurate the thin SVD runs: a kept spectrum with
/// κ_k = 1000 in f32 (σ_k² is below ε σ₁², lost in GᵀG), a rank-deficient matrix, and matrices
/// smaller than GRAM_MIN_SIDE (whose SVD signs the GaLore replays compare with LAPACK's).
#[test]
fn ill_conditioned_rank_deficient_and_small_matrices_take_the_thin_svd() {
    let mut rng = Normal(3);
    let (m, n, k) = (300, 160, 32);
    let spectrum = geometric(n, 1000f64.powf((n - 1) as f64 / (k - 1) as f64));
    let ill = f32s(&known(&mut rng, m, n, spectrum).a);
    assert_eq!(svd_top(ill.view(), k).expect("svd").1, SvdRoute::Thin);
    // Rank 10, asked for 16.
    let low = f32s(&rng.mat(m, 10).dot(&rng.mat(10, n)));
    let ((u, s, _), route) = svd_top(low.view(), 16).expect("svd");
    assert_eq!(route, SvdRoute::Thin);
    assert!(s.iter().all(|x| x.is_finite()) && u.iter().all(|x| x.is_finite()));
    let small = rng.mat(GRAM_MIN_SIDE - 1, 60);
    assert_eq!(svd_top(small.view(), 4).expect("svd").1, SvdRoute::Thin);
    // A wide matrix takes the Gram route through its transpose.
    let wide = rng.mat(GRAM_MIN_SIDE, 3 * GRAM_MIN_SIDE);
    let ((u, s, vt), route) = svd_top(wide.view(), 8).expect("svd");
    assert_eq!(route, SvdRoute::Gram);
    let (tu, ts, _) = thin_svd(wide.view(), 8).expect("thin");
    assert!((&s - &ts).iter().all(|d| d.abs() < 1e-10 * ts[0]), "{s} vs {ts}");
    for j in 0..8 {
        assert!((u.column(j).dot(&tu.column(j)).abs() - 1.0).abs() < 1e-9, "column {j}");
    }
    assert!(orthonormality(&vt.t().to_owned()) < 1e-12);
    // `svd` is `svd_top` without the route; NaN in, NaN out.
    let mut bad = rng.mat(80, 60);
    bad[[3, 4]] = f64::NAN;
    assert!(svd(bad.view(), 5).expect("svd").0.iter().all(|x| x.is_nan()));
}

/// Captured energy ‖UᵀA‖²_F / Σ_{i<q} σ_i²: 1 for the exact top-q.
fn energy(known: &Known, u: &Array2<f64>) -> f64 {
    let q = u.ncols();
    let captured = u.t().dot(&known.a).iter().map(|x| x * x).sum::<f64>();
    captured / known.s.iter().take(q).map(|s| s * s).sum::<f64>()
}

/// The randomized range finder (q = rank) on a 400×200 f32 matrix: with a decaying spectrum
/// (σ_i = 0.9^i) and two power iterations it captures more than 99.9% of the exact top-16
/// energy and its leading vectors are the exact ones; more iterations never lose energy; on a
/// flat spectrum (singular values from 1 to 0.5) it captures less, as torch.svd_lowrank does.
/// Its U is orthonormal, also for a rank-deficient matrix (the CholQR fallbacks).
#[test]
fn the_randomized_range_finder_captures_the_top_energy_of_a_decaying_spectrum() {
    let mut rng = Normal(4);
    let (m, n, q) = (400, 200, 16);
    let decaying = known(&mut rng, m, n, Array1::from_shape_fn(n, |i| 0.9f64.powi(i as i32)));
    let a = f32s(&decaying.a);
    let omega = f32s(&rng.mat(n, q));
    let mut last = 0.0;
    for niter in [0, 1, 2, 4] {
        let (u, s, vt) = randomized_svd(a.view(), omega.view(), niter).expect("randomized");
        let u = f64s(&u);
        let e = energy(&decaying, &u);
        eprintln!("decaying, niter {niter}: energy {e:.6}");
        assert!(e >= last - 1e-5, "niter {niter}: energy {e} fell from {last}");
        assert!(orthonormality(&u) < 1e-5, "orthonormal U");
        assert_eq!((s.len(), vt.dim()), (q, (q, n)));
        if niter == 2 {
            assert!(e > 0.995, "niter 2 captures {e}");
            for j in 0..4 {
                let d = distance(u.column(j), decaying.u.column(j));
                assert!(d < 1e-2, "leading vector {j}: distance {d}");
            }
        }
        last = e;
    }
    let flat = known(&mut rng, m, n, Array1::from_shape_fn(n, |i| 1.0 - 0.5 * i as f64 / (n - 1) as f64));
    let (u, _, _) = randomized_svd(f32s(&flat.a).view(), omega.view(), 2).expect("randomized");
    let e = energy(&flat, &f64s(&u));
    eprintln!("flat, niter 2: energy {e:.4}");
    assert!(e < 0.99 && e > 0.6, "flat spectrum: {e}");
    // Rank 5 with q = 16: the block is rank deficient; U stays orthonormal and finite.
    let low = f32s(&rng.mat(m, 5).dot(&rng.mat(5, n)));
    let (u, s, _) = randomized_svd(low.view(), omega.view(), 2).expect("randomized");
    assert!(u.iter().chain(s.iter()).all(|x| x.is_finite()));
    assert!(orthonormality(&f64s(&u)) < 1e-4, "{}", orthonormality(&f64s(&u)));
    // Shapes are checked.
    assert!(randomized_svd(a.view(), f32s(&rng.mat(n + 1, q)).view(), 1).is_err());
}
