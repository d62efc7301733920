//! The toy problems of `:try`: small objectives with exact gradients, on which a rule runs for a
//! few steps through the reference interpreter, next to `adam(lr = 1e-2)` as a yardstick. A
//! quadratic with condition number 10, the 2-D Rosenbrock valley, a seeded least-squares problem
//! and the quadratic with seeded gradient noise cover ill-conditioning, curvature, a nonzero
//! optimum and noise. Data and noise come from PCG generators with fixed seeds, so every run of
//! the same rule prints the same table.

use ndarray::{ArrayD, IxDyn};
use optic_compiler::interp::Interp;
use optic_compiler::ir::Graph;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// The reference rule every table compares against.
pub const REFERENCE: &str = "adam(lr = 1e-2)";

/// The most steps `:try` runs (a guard against a typo that would keep the session busy).
pub const MAX_STEPS: u64 = 100_000;

/// Rows of the least-squares matrix.
const LSQ_ROWS: usize = 20;
/// Columns of the least-squares matrix (the parameter's size).
const LSQ_COLS: usize = 5;
/// Size of the quadratic problems.
const QUAD_DIM: usize = 10;
/// Standard deviation of the noisy quadratic's gradient noise.
const NOISE: f64 = 0.1;

/// A toy problem.
pub enum Problem {
    /// 0.5 x^T D x with D = diag(1..10), from x = 1.
    Quadratic,
    /// 100 (y - x^2)^2 + (1 - x)^2 from (-1.5, 2).
    Rosenbrock,
    /// 0.5 ||A x - b||^2 / 20 with seeded A[20, 5], b[20], from x = 0.
    LeastSquares {
        /// A, row-major.
        a: Vec<f64>,
        /// b.
        b: Vec<f64>,
    },
    /// The quadratic with N(0, 0.1^2) noise added to every gradient entry.
    NoisyQuadratic,
}

/// The names `:try` knows, for messages and completion.
pub const NAMES: &[&str] = &["quadratic", "rosenbrock", "least_squares", "noisy_quadratic"];

/// A standard normal draw (Box-Muller on two uniforms).
fn normal(rng: &mut Pcg64) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Problem {
    /// The problem called `name` (a few spellings are accepted).
    pub fn named(name: &str) -> Option<Problem> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "quadratic" | "quad" => Problem::Quadratic,
            "rosenbrock" => Problem::Rosenbrock,
            "least_squares" | "lsq" | "leastsquares" => {
                let mut rng = Pcg64::seed_from_u64(0);
                let a = (0..LSQ_ROWS * LSQ_COLS).map(|_| normal(&mut rng)).collect();
                let b = (0..LSQ_ROWS).map(|_| normal(&mut rng)).collect();
                Problem::LeastSquares { a, b }
            }
            "noisy_quadratic" | "noisy" => Problem::NoisyQuadratic,
            _ => return None,
        })
    }

    /// One line saying what the problem is (the table of losses follows it).
    pub fn describe(&self) -> String {
        match self {
            Problem::Quadratic => "quadratic: 0.5 x^T diag(1..10) x from x = 1 (dim 10), minimum 0".into(),
            Problem::Rosenbrock => "rosenbrock: 100 (y - x^2)^2 + (1 - x)^2 from (-1.5, 2), minimum 0 at (1, 1)".into(),
            Problem::LeastSquares { .. } => format!(
                "least_squares: 0.5 ||A x - b||^2 / 20, A[20, 5] and b seeded, from x = 0, minimum {}",
                super::show::num(self.minimum())
            ),
            Problem::NoisyQuadratic => {
                "noisy_quadratic: the quadratic with N(0, 0.1^2) gradient noise (seeded), minimum 0".into()
            }
        }
    }

    /// The parameter's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Problem::Quadratic | Problem::NoisyQuadratic => vec![QUAD_DIM],
            Problem::Rosenbrock => vec![2],
            Problem::LeastSquares { .. } => vec![LSQ_COLS],
        }
    }

    /// The starting point.
    fn start(&self) -> Vec<f64> {
        match self {
            Problem::Quadratic | Problem::NoisyQuadratic => vec![1.0; QUAD_DIM],
            Problem::Rosenbrock => vec![-1.5, 2.0],
            Problem::LeastSquares { .. } => vec![0.0; LSQ_COLS],
        }
    }

    /// The residual A x - b of the least-squares problem.
    fn residual(a: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
        b.iter()
            .enumerate()
            .map(|(i, bi)| (0..LSQ_COLS).map(|j| a[i * LSQ_COLS + j] * x[j]).sum::<f64>() - bi)
            .collect()
    }

    /// The objective at `x` (without noise).
    pub fn loss(&self, x: &[f64]) -> f64 {
        match self {
            Problem::Quadratic | Problem::NoisyQuadratic => {
                x.iter().enumerate().map(|(i, xi)| 0.5 * (i + 1) as f64 * xi * xi).sum()
            }
            Problem::Rosenbrock => 100.0 * (x[1] - x[0] * x[0]).powi(2) + (1.0 - x[0]).powi(2),
            Problem::LeastSquares { a, b } => {
                0.5 * Self::residual(a, b, x).iter().map(|r| r * r).sum::<f64>() / LSQ_ROWS as f64
            }
        }
    }

    /// The gradient at `x`; the noisy quadratic draws its noise from `rng`.
    fn grad(&self, x: &[f64], rng: &mut Pcg64) -> Vec<f64> {
        match self {
            Problem::Quadratic => x.iter().enumerate().map(|(i, xi)| (i + 1) as f64 * xi).collect(),
            Problem::NoisyQuadratic => {
                x.iter().enumerate().map(|(i, xi)| (i + 1) as f64 * xi + NOISE * normal(rng)).collect()
            }
            Problem::Rosenbrock => {
                let (u, v) = (x[0], x[1]);
                vec![-400.0 * u * (v - u * u) - 2.0 * (1.0 - u), 200.0 * (v - u * u)]
            }
            Problem::LeastSquares { a, b } => {
                let r = Self::residual(a, b, x);
                (0..LSQ_COLS)
                    .map(|j| (0..LSQ_ROWS).map(|i| a[i * LSQ_COLS + j] * r[i]).sum::<f64>() / LSQ_ROWS as f64)
                    .collect()
            }
        }
    }

    /// The smallest value of the objective (least squares: solved by the normal equations).
    fn minimum(&self) -> f64 {
        let Problem::LeastSquares { a, b } = self else { return 0.0 };
        // A^T A x = A^T b by Gaussian elimination with partial pivoting; A has full column rank
        // with probability one, and a singular pivot only makes the printed minimum NaN.
        let n = LSQ_COLS;
        let mut m = vec![vec![0.0; n + 1]; n];
        for (j, row) in m.iter_mut().enumerate() {
            for (k, cell) in row.iter_mut().enumerate().take(n) {
                *cell = (0..LSQ_ROWS).map(|i| a[i * n + j] * a[i * n + k]).sum();
            }
            row[n] = (0..LSQ_ROWS).map(|i| a[i * n + j] * b[i]).sum();
        }
        for col in 0..n {
            let pivot = (col..n).max_by(|&p, &q| m[p][col].abs().total_cmp(&m[q][col].abs())).unwrap_or(col);
            m.swap(col, pivot);
            let pivot_row = m[col].clone();
            for row in m.iter_mut().skip(col + 1) {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|c| m[r][c] * x[c]).sum();
            x[r] = (m[r][n] - s) / m[r][r];
        }
        self.loss(&x)
    }
}

/// The steps at which the table shows the loss: 0, 1, 2, 5, 10, 20, 50, ... up to `steps`,
/// and `steps` itself.
pub fn report_steps(steps: u64) -> Vec<u64> {
    let mut out = vec![0];
    let mut scale = 1u64;
    'outer: loop {
        for m in [1, 2, 5] {
            let s = m * scale;
            if s > steps {
                break 'outer;
            }
            out.push(s);
        }
        scale = match scale.checked_mul(10) {
            Some(s) => s,
            None => break,
        };
    }
    if out.last() != Some(&steps) {
        out.push(steps);
    }
    out
}

/// A rule's run: the loss at each of the report steps reached, and why it stopped early if it did.
pub struct Run {
    /// Losses at the report steps, in order (fewer when the run stopped).
    pub losses: Vec<f64>,
    /// The error that stopped the run, with its step.
    pub stopped: Option<String>,
}

/// Runs the rule compiled to `graphs` (one graph, for the problem's shape) for `steps` steps.
pub fn run(problem: &Problem, graphs: Vec<Graph>, steps: u64, at: &[u64]) -> Run {
    let shape = problem.shape();
    let mut interp = Interp::<f64>::new(graphs, 0);
    let mut rng = Pcg64::seed_from_u64(0);
    let mut x = problem.start();
    let mut losses = Vec::with_capacity(at.len());
    if at.contains(&0) {
        losses.push(problem.loss(&x));
    }
    for t in 1..=steps {
        let g = problem.grad(&x, &mut rng);
        let arrays = (ArrayD::from_shape_vec(IxDyn(&shape), x.clone()), ArrayD::from_shape_vec(IxDyn(&shape), g));
        let (Ok(param), Ok(grad)) = arrays else {
            return Run { losses, stopped: Some("internal error: the problem's shape does not fit".into()) };
        };
        let direction = match interp.step(t, &[param], &[vec![grad]]) {
            Ok(mut d) if d.len() == 1 && d[0].shape() == shape.as_slice() => d.remove(0),
            Ok(d) => {
                let got: Vec<Vec<usize>> = d.iter().map(|a| a.shape().to_vec()).collect();
                let stopped = format!("step {t}: the rule returned directions of shapes {got:?}, expected {shape:?}");
                return Run { losses, stopped: Some(stopped) };
            }
            Err(e) => return Run { losses, stopped: Some(format!("step {t}: {e}")) },
        };
        for (xi, di) in x.iter_mut().zip(direction.iter()) {
            *xi += di;
        }
        if at.contains(&t) {
            losses.push(problem.loss(&x));
        }
    }
    Run { losses, stopped: None }
}

/// The table: one row per report step, one column per rule, right-aligned.
pub fn table(at: &[u64], columns: &[(&str, &Run)]) -> String {
    let mut rows: Vec<Vec<String>> =
        vec![std::iter::once("step".to_string()).chain(columns.iter().map(|(name, _)| name.to_string())).collect()];
    for (k, step) in at.iter().enumerate() {
        let mut row = vec![step.to_string()];
        for (_, run) in columns {
            row.push(run.losses.get(k).map_or_else(|| "-".to_string(), |&l| super::show::num(l)));
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
            cells.join("  ")
        })
        .collect();
    for (name, run) in columns {
        if let Some(why) = &run.stopped {
            out.push(format!("{name} stopped at {why}"));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_shown() {
        assert_eq!(report_steps(100), vec![0, 1, 2, 5, 10, 20, 50, 100]);
        assert_eq!(report_steps(20), vec![0, 1, 2, 5, 10, 20]);
        assert_eq!(report_steps(30), vec![0, 1, 2, 5, 10, 20, 30]);
        assert_eq!(report_steps(0), vec![0]);
        assert_eq!(report_steps(1000).last(), Some(&1000));
    }

    /// The gradients agree with central differences of the losses.
    #[test]
    fn gradients_are_exact() {
        for name in ["quadratic", "rosenbrock", "least_squares"] {
            let p = Problem::named(name).unwrap();
            let x: Vec<f64> = p.start().iter().enumerate().map(|(i, v)| v + 0.1 * i as f64 - 0.2).collect();
            let g = p.grad(&x, &mut Pcg64::seed_from_u64(0));
            for i in 0..x.len() {
                let h = 1e-6;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (p.loss(&up) - p.loss(&down)) / (2.0 * h);
                assert!((fd - g[i]).abs() <= 1e-5 * (1.0 + g[i].abs()), "{name}[{i}]: {fd} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn least_squares_minimum_is_below_the_start() {
        let p = Problem::named("lsq").unwrap();
        let min = p.minimum();
        assert!(min > 0.0 && min < p.loss(&p.start()), "{min}");
    }
}
