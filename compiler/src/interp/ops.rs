//! The tensor operations of the interpreter as plain functions on `ndarray` arrays. Each takes
//! computed operands and returns the result or a message saying what did not fit; the caller
//! attaches the node. They follow NumPy/torch semantics (broadcasting, matmul's 1-D rules,
//! NaN-propagating max/min, reductions over several axes) written the direct way: elementwise ops
//! broadcast both operands to their common shape and zip; reductions move the reduced axes last
//! and fold each contiguous lane.

use super::Scalar;
use crate::ir::{Binary, Reduce, Unary};
use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Slice, Zip};

/// A result or what went wrong.
pub(super) type Res<T> = Result<T, String>;

/// The NumPy broadcast of two shapes: aligned at the right, each pair equal or one of them 1.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize]) -> Res<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y || y == 1 => Ok(x),
            (1, y) => Ok(y),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// A view of `a` broadcast to `shape`.
fn view_as<'a, T>(a: &'a ArrayD<T>, shape: &[usize]) -> Res<ArrayViewD<'a, T>> {
    a.broadcast(IxDyn(shape)).ok_or_else(|| format!("shape {:?} does not broadcast to {shape:?}", a.shape()))
}

/// An array of `shape` from elements in row-major order.
fn from_vec<T>(shape: &[usize], v: Vec<T>) -> Res<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| format!("cannot build shape {shape:?}: {e}"))
}

fn bool_<T: Scalar>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}

/// An elementwise function of one operand.
pub(super) fn unary<T: Scalar>(u: Unary, a: &ArrayD<T>) -> ArrayD<T> {
    a.mapv(|x| unary_scalar(u, x))
}

/// An elementwise function of one operand on one value.
pub(super) fn unary_scalar<T: Scalar>(u: Unary, x: T) -> T {
    {
        match u {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            // 0 for 0 and NaN, as torch.sign (the IR's contract).
            Unary::Sign => {
                if x > T::zero() {
                    T::one()
                } else if x < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                }
            }
            Unary::Sqrt => x.sqrt(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Erf => Scalar::erf(x),
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            // Rust's `round` is half away from zero, which is what the IR specifies.
            Unary::Round => x.round(),
            Unary::Not => bool_(x == T::zero()),
        }
    }
}

/// NaN-propagating maximum (torch.maximum).
fn max<T: Scalar>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x >= y {
        x
    } else {
        y
    }
}

/// NaN-propagating minimum (torch.minimum).
fn min<T: Scalar>(x: T, y: T) -> T {
    if x.is_nan() || y.is_nan() {
        T::nan()
    } else if x <= y {
        x
    } else {
        y
    }
}

/// An elementwise function of two operands broadcast to their common shape.
pub(super) fn binary<T: Scalar>(b: Binary, x: &ArrayD<T>, y: &ArrayD<T>) -> Res<ArrayD<T>> {
    let shape = broadcast_shape(x.shape(), y.shape())?;
    Ok(Zip::from(&view_as(x, &shape)?).and(&view_as(y, &shape)?).map_collect(|&p, &q| binary_scalar(b, p, q)))
}

/// An elementwise function of two operands on one pair of values.
pub(super) fn binary_scalar<T: Scalar>(b: Binary, p: T, q: T) -> T {
    let nz = |v: T| v != T::zero();
    {
        match b {
            Binary::Add => p + q,
            Binary::Sub => p - q,
            Binary::Mul => p * q,
            Binary::Div => p / q,
            // A square is the exactly rounded product (the platform's powf may be 1 ulp off),
            // which is also what a kernel computes, and what torch's `g * g` gives.
            Binary::Pow if q == T::from_f64(2.0) => p * p,
            Binary::Pow => p.powf(q),
            Binary::Max => max(p, q),
            Binary::Min => min(p, q),
            Binary::Eq => bool_(p == q),
            Binary::Ne => bool_(p != q),
            Binary::Lt => bool_(p < q),
            Binary::Le => bool_(p <= q),
            Binary::Gt => bool_(p > q),
            Binary::Ge => bool_(p >= q),
            Binary::And => bool_(nz(p) && nz(q)),
            Binary::Or => bool_(nz(p) || nz(q)),
        }
    }
}

/// Elementwise `c ? a : b` (nonzero is true), all three broadcast.
pub(super) fn select<T: Scalar>(c: &ArrayD<T>, a: &ArrayD<T>, b: &ArrayD<T>) -> Res<ArrayD<T>> {
    let shape = broadcast_shape(&broadcast_shape(c.shape(), a.shape())?, b.shape())?;
    let (c, a, b) = (view_as(c, &shape)?, view_as(a, &shape)?, view_as(b, &shape)?);
    Ok(Zip::from(&c).and(&a).and(&b).map_collect(|&c, &a, &b| if c != T::zero() { a } else { b }))
}

/// A reduction over `axes` (all when empty, ascending), keeping them as size 1 with `keepdims`.
pub(super) fn reduce<T: Scalar>(op: Reduce, a: &ArrayD<T>, axes: &[usize], keepdims: bool) -> Res<ArrayD<T>> {
    let nd = a.ndim();
    let axes: Vec<usize> = if axes.is_empty() { (0..nd).collect() } else { axes.to_vec() };
    if axes.iter().any(|&i| i >= nd) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("reduction axes {axes:?} of a tensor of shape {:?}", a.shape()));
    }
    let kept: Vec<usize> = (0..nd).filter(|i| !axes.contains(i)).collect();
    let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
    // With the reduced axes last, each lane of `r` consecutive elements is one output element.
    let flat: Vec<T> = a.view().permuted_axes(IxDyn(&perm)).iter().copied().collect();
    let r: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let k: usize = kept.iter().map(|&i| a.shape()[i]).product();
    let mut out = Vec::with_capacity(k);
    for j in 0..k {
        out.push(fold(op, &flat[j * r..(j + 1) * r])?);
    }
    let shape: Vec<usize> = if keepdims {
        (0..nd).map(|i| if axes.contains(&i) { 1 } else { a.shape()[i] }).collect()
    } else {
        kept.iter().map(|&i| a.shape()[i]).collect()
    };
    from_vec(&shape, out)
}

/// One lane of a reduction, summed in order in `T`.
fn fold<T: Scalar>(op: Reduce, lane: &[T]) -> Res<T> {
    let sum = |f: &dyn Fn(T) -> T| lane.iter().fold(T::zero(), |s, &x| s + f(x));
    let nonempty = || if lane.is_empty() { Err(format!("{op:?} of an empty tensor")) } else { Ok(()) };
    Ok(match op {
        Reduce::Sum => sum(&|x| x),
        // An empty mean is 0/0 = NaN, as in torch.
        Reduce::Mean => sum(&|x| x) / T::from_f64(lane.len() as f64),
        Reduce::Norm => sum(&|x| x * x).sqrt(),
        Reduce::Max => {
            nonempty()?;
            lane.iter().fold(lane[0], |m, &x| max(m, x))
        }
        Reduce::Min => {
            nonempty()?;
            lane.iter().fold(lane[0], |m, &x| min(m, x))
        }
        // The first maximum; a NaN counts as the maximum (torch.argmax).
        Reduce::ArgMax => {
            nonempty()?;
            let mut best = 0;
            for (i, &x) in lane.iter().enumerate() {
                if x.is_nan() {
                    best = i;
                    break;
                }
                if x > lane[best] {
                    best = i;
                }
            }
            T::from_f64(best as f64)
        }
    })
}

/// The shape of `a @ b` under NumPy's rules (1-D operands, broadcast batch axes).
pub fn matmul_shape(a: &[usize], b: &[usize]) -> Res<Vec<usize>> {
    if a.is_empty() || b.is_empty() {
        return Err(format!("matmul of shapes {a:?} and {b:?}: operands must have an axis"));
    }
    let (m, k) = if a.len() == 1 { (1, a[0]) } else { (a[a.len() - 2], a[a.len() - 1]) };
    let (k2, n) = if b.len() == 1 { (b[0], 1) } else { (b[b.len() - 2], b[b.len() - 1]) };
    if k != k2 {
        return Err(format!("matmul of shapes {a:?} and {b:?}: inner sizes {k} and {k2} differ"));
    }
    let batch = |s: &[usize]| s[..s.len().saturating_sub(2)].to_vec();
    let mut shape = broadcast_shape(&batch(a), &batch(b))?;
    if a.len() > 1 {
        shape.push(m);
    }
    if b.len() > 1 {
        shape.push(n);
    }
    Ok(shape)
}

/// `a @ b` (NumPy's rules) through the runtime's strided GEMM: operands are read in place
/// whatever their strides (a transposed view costs nothing).
pub(super) fn matmul<T: Scalar>(a: &ArrayD<T>, b: &ArrayD<T>) -> Res<ArrayD<T>> {
    let mut out = ArrayD::zeros(IxDyn(&matmul_shape(a.shape(), b.shape())?));
    matmul_into(out.view_mut(), a.view(), b.view(), T::one(), false)?;
    Ok(out)
}

/// `out = alpha (a @ b)`, or `out += alpha (a @ b)` when `accumulate`, for `out` of
/// [`matmul_shape`]'s shape; one GEMM per batch index.
pub fn matmul_into<T: Scalar>(
    out: ArrayViewMutD<T>,
    a: ArrayViewD<T>,
    b: ArrayViewD<T>,
    alpha: T,
    accumulate: bool,
) -> Res<()> {
    let shape = matmul_shape(a.shape(), b.shape())?;
    if out.shape() != shape.as_slice() {
        return Err(format!("matmul of {:?} and {:?} into {:?}", a.shape(), b.shape(), out.shape()));
    }
    let (a1, b1) = (a.ndim() == 1, b.ndim() == 1);
    let a = if a1 { a.insert_axis(Axis(0)) } else { a };
    let b = if b1 { b.insert_axis(Axis(1)) } else { b };
    let mut out = if a1 {
        let at = out.ndim() - usize::from(!b1);
        out.insert_axis(Axis(at))
    } else {
        out
    };
    if b1 {
        let last = out.ndim();
        out = out.insert_axis(Axis(last));
    }
    let nd = out.ndim();
    let batch = &out.shape()[..nd - 2].to_vec();
    let with = |v: &ArrayViewD<'_, T>| -> Res<Vec<usize>> {
        Ok(batch.iter().copied().chain(v.shape()[v.ndim() - 2..].iter().copied()).collect())
    };
    let a = a.broadcast(IxDyn(&with(&a)?)).ok_or("matmul batch axes do not broadcast")?;
    let b = b.broadcast(IxDyn(&with(&b)?)).ok_or("matmul batch axes do not broadcast")?;
    let count: usize = batch.iter().product();
    for i in 0..count {
        // Batch index i in row-major order, taken axis by axis from the front.
        let (mut av, mut bv, mut ov) = (a.view(), b.view(), out.view_mut());
        let mut rest = i;
        for (axis, &len) in batch.iter().enumerate() {
            let stride: usize = batch[axis + 1..].iter().product();
            let j = rest / stride;
            rest %= stride;
            debug_assert!(j < len);
            av = av.index_axis_move(Axis(0), j);
            bv = bv.index_axis_move(Axis(0), j);
            ov = ov.index_axis_move(Axis(0), j);
        }
        let to2 = |e: ndarray::ShapeError| e.to_string();
        optic_runtime::linalg::gemm(
            ov.into_dimensionality().map_err(to2)?,
            av.into_dimensionality().map_err(to2)?,
            bv.into_dimensionality().map_err(to2)?,
            alpha,
            accumulate,
        );
    }
    Ok(())
}

/// Swaps the last two axes.
pub(super) fn transpose<T: Scalar>(a: &ArrayD<T>) -> Res<ArrayD<T>> {
    let nd = a.ndim();
    if nd < 2 {
        return Err(format!("transpose of a tensor of shape {:?} (needs two axes)", a.shape()));
    }
    let mut v = a.view();
    v.swap_axes(nd - 2, nd - 1);
    Ok(v.to_owned())
}

/// The same elements in row-major order, in `shape`.
pub(super) fn reshape<T: Scalar>(a: &ArrayD<T>, shape: &[usize]) -> Res<ArrayD<T>> {
    if a.len() != shape.iter().product::<usize>() {
        return Err(format!("reshape of {:?} ({} elements) to {shape:?}", a.shape(), a.len()));
    }
    // A contiguous tensor is one memcpy, not an element-wise walk (a dataset can be 16 MiB).
    let data = match a.as_slice() {
        Some(s) => s.to_vec(),
        None => a.iter().copied().collect(),
    };
    from_vec(shape, data)
}

/// `a` broadcast to `shape`.
pub(super) fn expand<T: Scalar>(a: &ArrayD<T>, shape: &[usize]) -> Res<ArrayD<T>> {
    Ok(view_as(a, shape)?.to_owned())
}

/// A strided window: per operand axis `(start, step)`, counts from the result shape `out`
/// (1 for the axes in `drop`, which are then removed).
pub(super) fn slice<T: Scalar>(
    a: &ArrayD<T>,
    ranges: &[(usize, usize)],
    drop: &[usize],
    out: &[usize],
) -> Res<ArrayD<T>> {
    let nd = a.ndim();
    let bad = || format!("slice {ranges:?} drop {drop:?} of shape {:?} to {out:?}", a.shape());
    if ranges.len() != nd || drop.iter().any(|&d| d >= nd) || drop.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad());
    }
    let mut kept = out.iter();
    let mut v = a.view();
    for (j, &(start, step)) in ranges.iter().enumerate() {
        let count = if drop.contains(&j) { 1 } else { *kept.next().ok_or_else(bad)? };
        let len = a.shape()[j];
        if step == 0 {
            return Err(format!("slice step 0 on axis {j}"));
        }
        let (lo, hi) = if count == 0 {
            (start.min(len), start.min(len))
        } else {
            let last = start + step * (count - 1);
            if last >= len {
                return Err(format!("slice of {count} from {start} by {step} past axis {j} of size {len}"));
            }
            (start, last + 1)
        };
        v.slice_axis_inplace(Axis(j), Slice::new(lo as isize, Some(hi as isize), step as isize));
    }
    if kept.next().is_some() {
        return Err(bad());
    }
    for &d in drop.iter().rev() {
        v = v.index_axis_move(Axis(d), 0);
    }
    Ok(v.to_owned())
}

/// The adjoint of [`slice`]: zeros of shape `out` except the strided window (per axis
/// `(start, step)`, counts from `a`'s shape with the `drop` axes re-inserted as size 1), which
/// holds `a`.
pub(super) fn embed<T: Scalar>(
    a: &ArrayD<T>,
    ranges: &[(usize, usize)],
    drop: &[usize],
    out: &[usize],
) -> Res<ArrayD<T>> {
    let nd = out.len();
    let bad = || format!("embed of shape {:?} by {ranges:?} drop {drop:?} into {out:?}", a.shape());
    if ranges.len() != nd
        || a.ndim() + drop.len() != nd
        || drop.iter().any(|&d| d >= nd)
        || drop.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(bad());
    }
    // Inserting in ascending order puts each dropped axis at its final position.
    let mut src = a.view();
    for &d in drop {
        src = src.insert_axis(Axis(d));
    }
    let mut r = ArrayD::zeros(IxDyn(out));
    let mut v = r.view_mut();
    for (j, &(start, step)) in ranges.iter().enumerate() {
        let (count, len) = (src.shape()[j], out[j]);
        if step == 0 {
            return Err(format!("embed step 0 on axis {j}"));
        }
        let (lo, hi) = if count == 0 {
            (start.min(len), start.min(len))
        } else {
            let last = start + step * (count - 1);
            if last >= len {
                return Err(format!("embed of {count} from {start} by {step} past axis {j} of size {len}"));
            }
            (start, last + 1)
        };
        v.slice_axis_inplace(Axis(j), Slice::new(lo as isize, Some(hi as isize), step as isize));
    }
    v.assign(&src);
    Ok(r)
}

/// Concatenation along `axis`.
pub(super) fn concat<T: Scalar>(xs: &[&ArrayD<T>], axis: usize) -> Res<ArrayD<T>> {
    let shapes = || xs.iter().map(|x| x.shape().to_vec()).collect::<Vec<_>>();
    if xs.is_empty() || xs.iter().any(|x| axis >= x.ndim()) {
        return Err(format!("concat of shapes {:?} along axis {axis}", shapes()));
    }
    let views: Vec<ArrayViewD<T>> = xs.iter().map(|x| x.view()).collect();
    ndarray::concatenate(Axis(axis), &views).map_err(|_| format!("concat of shapes {:?} along axis {axis}", shapes()))
}

/// The diagonal of a matrix (min(m, n) elements), or the diagonal matrix of a vector.
pub(super) fn diag<T: Scalar>(a: &ArrayD<T>) -> Res<ArrayD<T>> {
    match a.ndim() {
        1 => {
            let n = a.len();
            let mut m = Array2::zeros((n, n));
            m.diag_mut().assign(&a.view().into_dimensionality::<ndarray::Ix1>().map_err(|e| e.to_string())?);
            Ok(m.into_dyn())
        }
        2 => {
            Ok(a.view().into_dimensionality::<ndarray::Ix2>().map_err(|e| e.to_string())?.diag().to_owned().into_dyn())
        }
        _ => Err(format!("diag of a tensor of shape {:?} (needs one or two axes)", a.shape())),
    }
}

/// The upper (`j >= i`) or lower (`j <= i`) triangle of the last two axes, zeros elsewhere.
pub(super) fn triangle<T: Scalar>(a: &ArrayD<T>, upper: bool) -> Res<ArrayD<T>> {
    let nd = a.ndim();
    if nd < 2 {
        return Err(format!("triangle of a tensor of shape {:?} (needs two axes)", a.shape()));
    }
    let mut r = a.clone();
    for (idx, x) in r.indexed_iter_mut() {
        let (i, j) = (idx[nd - 2], idx[nd - 1]);
        if (upper && j < i) || (!upper && j > i) {
            *x = T::zero();
        }
    }
    Ok(r)
}
