//! How the REPL prints values: numbers with four significant digits (integers in full), and
//! tensors as a `tensor[3, 2]` header followed by NumPy-style nested brackets, columns aligned,
//! long axes elided to their first and last three entries. The output depends only on the values,
//! so transcripts are deterministic and can be snapshot-tested.

use ndarray::{ArrayD, ArrayViewD, Axis};

/// Axes longer than this are shown as their first and last [`EDGE`] entries around `...`.
const ELIDE_ABOVE: usize = 10;
/// Entries shown at each end of an elided axis.
const EDGE: usize = 3;

/// A number with four significant digits: `6`, `0.3333`, `-1.5e-8`, `nan`, `inf`.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.fract() == 0.0 && x.abs() < 1e6 {
        return format!("{}", x as i64);
    }
    let exp = x.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        let decimals = (3 - exp).max(0) as usize;
        trim_fraction(&format!("{x:.decimals$}")).to_string()
    } else {
        let s = format!("{x:.3e}");
        match s.split_once('e') {
            Some((mantissa, e)) => format!("{}e{e}", trim_fraction(mantissa)),
            None => s,
        }
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2`; text without a decimal point is left alone.
fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// The element shown for `x`: a number, or `true`/`false` for a boolean tensor.
fn cell(x: f64, boolean: bool) -> String {
    if boolean {
        if x != 0.0 { "true" } else { "false" }.into()
    } else {
        num(x)
    }
}

/// The indices shown along an axis of length `n` (`None` stands for the elided middle).
fn picks(n: usize) -> Vec<Option<usize>> {
    if n <= ELIDE_ABOVE {
        (0..n).map(Some).collect()
    } else {
        (0..EDGE).map(Some).chain([None]).chain((n - EDGE..n).map(Some)).collect()
    }
}

/// The lines of a nested-bracket rendering of `v` (rank at least 1), cells padded to `width`.
fn lines(v: ArrayViewD<'_, f64>, boolean: bool, width: usize) -> Vec<String> {
    let picks = picks(v.len_of(Axis(0)));
    if v.ndim() == 1 {
        let cells: Vec<String> = picks
            .iter()
            .map(|p| match p {
                Some(i) => format!("{:>width$}", cell(v[[*i]], boolean)),
                None => "...".into(),
            })
            .collect();
        return vec![format!("[{}]", cells.join(", "))];
    }
    let mut out: Vec<String> = Vec::new();
    for (k, p) in picks.iter().enumerate() {
        let mut sub = match p {
            Some(i) => lines(v.index_axis(Axis(0), *i), boolean, width),
            None => vec!["...".to_string()],
        };
        if k + 1 < picks.len() {
            if let Some(last) = sub.last_mut() {
                last.push(',');
            }
        }
        out.extend(sub);
    }
    let mut out: Vec<String> =
        out.into_iter().enumerate().map(|(j, l)| if j == 0 { format!("[{l}") } else { format!(" {l}") }).collect();
    if let Some(last) = out.last_mut() {
        last.push(']');
    }
    out
}

/// The widest cell shown.
fn widest(v: ArrayViewD<'_, f64>, boolean: bool) -> usize {
    picks(v.len_of(Axis(0)))
        .into_iter()
        .flatten()
        .map(|i| if v.ndim() == 1 { cell(v[[i]], boolean).len() } else { widest(v.index_axis(Axis(0), i), boolean) })
        .max()
        .unwrap_or(0)
}

/// A value: a 0-d array as a number (or boolean), anything else as `tensor[shape]` and its
/// entries, a vector on the same line, a matrix and up on the lines below.
pub fn value(a: &ArrayD<f64>, boolean: bool) -> String {
    if a.ndim() == 0 {
        return a.iter().next().map_or_else(|| "?".into(), |&x| cell(x, boolean));
    }
    let dims: Vec<String> = a.shape().iter().map(ToString::to_string).collect();
    let header = format!("{}tensor[{}]", if boolean { "bool " } else { "" }, dims.join(", "));
    if a.is_empty() {
        return format!("{header} []");
    }
    if a.ndim() == 1 {
        return format!("{header} {}", lines(a.view(), boolean, 0)[0]);
    }
    let width = widest(a.view(), boolean);
    format!("{header}\n{}", lines(a.view(), boolean, width).join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn numbers() {
        let cases = [
            (6.0, "6"),
            (-2.0, "-2"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333"),
            (2.0f64.sqrt(), "1.414"),
            (12345.678, "12346"),
            (-1.5e-8, "-1.5e-8"),
            (2.5e7, "2.5e7"),
            (1e6, "1e6"),
            (0.00012346, "0.0001235"),
            (9.99999, "10"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, want) in cases {
            assert_eq!(num(x), want, "{x}");
        }
    }

    #[test]
    fn tensors() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, -2.5, 3.0, 0.25, 5.0, 6.0]).unwrap();
        assert_eq!(value(&a, false), "tensor[2, 3]\n[[   1, -2.5,    3],\n [0.25,    5,    6]]");
        let v = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, 0.0, 1.0]).unwrap();
        assert_eq!(value(&v, true), "bool tensor[3] [true, false, true]");
        let long = ArrayD::from_shape_vec(IxDyn(&[12]), (0..12).map(f64::from).collect()).unwrap();
        assert_eq!(value(&long, false), "tensor[12] [0, 1, 2, ..., 9, 10, 11]");
        let s = ArrayD::from_elem(IxDyn(&[]), 0.5);
        assert_eq!(value(&s, false), "0.5");
        let cube = ArrayD::from_shape_vec(IxDyn(&[2, 1, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(value(&cube, false), "tensor[2, 1, 2]\n[[[1, 2]],\n [[3, 4]]]");
        let empty = ArrayD::<f64>::zeros(IxDyn(&[0, 3]));
        assert_eq!(value(&empty, false), "tensor[0, 3] []");
    }
}
