//! Fast paths for the library calls that dominate a training step, each computing exactly what
//! the interpreter's operation computes (same operations in the same order, so the same bits):
//! matrix products read their operands in place, a transpose fusion left as a view included,
//! through the runtime's strided GEMM; 2-D transposes copy in cache-sized tiles; sums, means and
//! norms over the leading or the trailing axes of a contiguous tensor skip the interpreter's
//! permuting copy. Each writes into the buffer its node kept from the previous step when the shape
//! still fits, so a steady step allocates nothing for them. Everything else goes through the
//! interpreter's operations (`interp::single`).

use super::Lane;
use crate::interp::{matmul_into, matmul_shape};
use crate::ir::Reduce;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// `old` if it has `shape`, else a new zeroed array of it.
fn buffer<T: Lane>(old: Option<ArrayD<T>>, shape: &[usize]) -> ArrayD<T> {
    match old {
        Some(b) if b.shape() == shape && b.is_standard_layout() => b,
        _ => ArrayD::zeros(IxDyn(shape)),
    }
}

/// `a @ b` (NumPy's rules) into `old`'s buffer.
pub(super) fn matmul<T: Lane>(old: Option<ArrayD<T>>, a: ArrayViewD<T>, b: ArrayViewD<T>) -> Result<ArrayD<T>, String> {
    let mut out = buffer(old, &matmul_shape(a.shape(), b.shape())?);
    matmul_into(out.view_mut(), a, b, T::one(), false)?;
    Ok(out)
}

/// `a @ b` for matrices whose product is symmetric, one triangle computed and mirrored.
pub(super) fn matmul_symmetric<T: Lane>(
    old: Option<ArrayD<T>>,
    a: ArrayViewD<T>,
    b: ArrayViewD<T>,
) -> Result<ArrayD<T>, String> {
    let shape = matmul_shape(a.shape(), b.shape())?;
    let mut out = buffer(old, &shape);
    let a = a.into_dimensionality::<ndarray::Ix2>().map_err(|e| e.to_string())?;
    let b = b.into_dimensionality::<ndarray::Ix2>().map_err(|e| e.to_string())?;
    let dst = out.view_mut().into_dimensionality::<ndarray::Ix2>().map_err(|e| e.to_string())?;
    optic_runtime::linalg::gemm_symmetric(dst, a, b);
    Ok(out)
}

/// The last two axes of a contiguous `a` swapped, copied tile by tile (None when `a` is not
/// contiguous or has fewer than two axes: the interpreter's operation handles those).
pub(super) fn transpose<T: Lane>(old: Option<ArrayD<T>>, a: &ArrayD<T>) -> Option<ArrayD<T>> {
    let nd = a.ndim();
    let src = a.as_slice()?;
    if nd < 2 {
        return None;
    }
    let (m, n) = (a.shape()[nd - 2], a.shape()[nd - 1]);
    let mut shape = a.shape().to_vec();
    shape.swap(nd - 2, nd - 1);
    let mut out = buffer(old, &shape);
    let dst = out.as_slice_mut().expect("standard layout");
    const TILE: usize = 32;
    for (s, d) in src.chunks_exact(m * n).zip(dst.chunks_exact_mut(m * n)) {
        for i0 in (0..m).step_by(TILE) {
            for j0 in (0..n).step_by(TILE) {
                for i in i0..(i0 + TILE).min(m) {
                    for j in j0..(j0 + TILE).min(n) {
                        d[j * m + i] = s[i * n + j];
                    }
                }
            }
        }
    }
    Some(out)
}

/// A sum, mean or norm over the leading or the trailing axes of a contiguous `a`, summed from zero
/// in index order per output element as the interpreter's fold does (None for other reductions
/// and layouts).
pub(super) fn reduce<T: Lane>(
    old: Option<ArrayD<T>>,
    op: Reduce,
    a: &ArrayD<T>,
    axes: &[usize],
    shape: &[usize],
) -> Option<ArrayD<T>> {
    let square = match op {
        Reduce::Sum | Reduce::Mean => false,
        Reduce::Norm => true,
        Reduce::Max | Reduce::Min | Reduce::ArgMax => return None,
    };
    let src = a.as_slice()?;
    let nd = a.ndim();
    let all: Vec<usize> = (0..nd).collect();
    let axes = if axes.is_empty() { all.as_slice() } else { axes };
    let contiguous_block = axes.windows(2).all(|w| w[1] == w[0] + 1);
    let leading = contiguous_block && axes.first() == Some(&0);
    let trailing = contiguous_block && axes.last() == Some(&nd.wrapping_sub(1));
    if !(leading || trailing) || src.is_empty() {
        return None;
    }
    let r: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let kept = src.len() / r;
    let f = |x: T| if square { x * x } else { x };
    let mut out = buffer(old, shape);
    let dst = out.as_slice_mut().expect("standard layout");
    if trailing {
        // Each output element is one contiguous lane.
        for (o, lane) in dst.iter_mut().zip(src.chunks_exact(r)) {
            *o = lane.iter().fold(T::zero(), |s, &x| s + f(x));
        }
    } else {
        // Rows of `kept` elements, added one after the other: the same order per element.
        dst.iter_mut().for_each(|o| *o = T::zero());
        for row in src.chunks_exact(kept) {
            for (o, &x) in dst.iter_mut().zip(row) {
                *o += f(x);
            }
        }
    }
    match op {
        Reduce::Mean => {
            let count = T::from_f64(r as f64);
            dst.iter_mut().for_each(|o| *o /= count);
        }
        Reduce::Norm => dst.iter_mut().for_each(|o| *o = o.sqrt()),
        _ => {}
    }
    Some(out)
}
