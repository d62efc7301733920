//! The interpreter's linear-algebra node: checks operand ranks, hands 2-D views to
//! `optic_runtime::linalg` (faer) and returns the results as tensors, in the order
//! [`crate::ir::Linalg`] documents. Operands are single matrices (no batch axes); `Solve` takes
//! a right-hand side that is a vector or a matrix, and returns x of the same shape;
//! `RandomizedSvd` takes its test matrix as the second operand.

use super::Scalar;
use crate::ir::Linalg;
use ndarray::{ArrayD, ArrayView2, Axis, Ix2};
use optic_runtime::linalg as rt;

/// A 2-D view of a matrix operand.
fn matrix<'a, T>(x: &'a ArrayD<T>, what: &str) -> Result<ArrayView2<'a, T>, String> {
    x.view().into_dimensionality::<Ix2>().map_err(|_| format!("{what} needs a matrix, got shape {:?}", x.shape()))
}

/// Runs `kind` on its operands; returns its results.
pub(super) fn run<T: Scalar>(kind: Linalg, args: &[&ArrayD<T>]) -> Result<Vec<ArrayD<T>>, String> {
    let want = if matches!(kind, Linalg::Solve | Linalg::RandomizedSvd { .. }) { 2 } else { 1 };
    if args.len() != want {
        return Err(format!("{kind:?} takes {want} operand(s), got {}", args.len()));
    }
    let e = |e: rt::LinalgError| e.0;
    let a = matrix(args[0], &format!("{kind:?}"))?;
    Ok(match kind {
        Linalg::Svd { rank } => {
            let (u, s, vt) = rt::svd(a, rank).map_err(e)?;
            vec![u.into_dyn(), s.into_dyn(), vt.into_dyn()]
        }
        Linalg::RandomizedSvd { niter, .. } => {
            let omega = matrix(args[1], "RandomizedSvd")?;
            let (u, s, vt) = rt::randomized_svd(a, omega, niter).map_err(e)?;
            vec![u.into_dyn(), s.into_dyn(), vt.into_dyn()]
        }
        Linalg::Qr => {
            let (q, r) = rt::qr(a);
            vec![q.into_dyn(), r.into_dyn()]
        }
        Linalg::Eigh => {
            let (w, v) = rt::eigh(a).map_err(e)?;
            vec![w.into_dyn(), v.into_dyn()]
        }
        Linalg::Cholesky => vec![rt::cholesky(a).map_err(e)?.into_dyn()],
        Linalg::Solve => {
            let b = args[1];
            let x = match b.ndim() {
                1 => {
                    let col = b.view().insert_axis(Axis(1));
                    let x = rt::solve(a, matrix(&col.to_owned(), "Solve")?).map_err(e)?;
                    x.index_axis(Axis(1), 0).to_owned().into_dyn()
                }
                2 => rt::solve(a, matrix(b, "Solve")?).map_err(e)?.into_dyn(),
                _ => return Err(format!("Solve needs a vector or matrix right-hand side, got shape {:?}", b.shape())),
            };
            vec![x]
        }
    })
}
