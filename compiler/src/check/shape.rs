//! Symbolic shapes. A dimension is a known size, a symbol (`d`, `rank`, `2 * d`) or unknown; a
//! shape is a list of dimensions, or of unknown rank (a rule's input `g` fits any parameter).
//! Two different symbols are different sizes: `[m, n] @ [k, n]` is an error even though `n` and
//! `k` might coincide at run time, because a program that relies on that coincidence should say
//! so by using one name. A known size and a symbol are compatible (the symbol may be that size).

use std::fmt;

/// One dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A size known before running.
    Known(i64),
    /// A named size, or a canonical expression of named sizes (`2 * d`).
    Sym(String),
    /// Nothing is known.
    Any,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Any => f.write_str("?"),
        }
    }
}

/// Arithmetic on dimensions, folded where both sides are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (exact integer division when known)
    Div,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
}

impl Dim {
    /// Combines two dimensions; symbolic results are kept in a canonical spelling so that
    /// `2 * d` and `d * 2` compare equal.
    pub fn apply(op: DimOp, a: &Dim, b: &Dim) -> Dim {
        use Dim::*;
        match (a, b) {
            (Known(x), Known(y)) => match op {
                DimOp::Add => x.checked_add(*y).map_or(Any, Known),
                DimOp::Sub => x.checked_sub(*y).map_or(Any, Known),
                DimOp::Mul => x.checked_mul(*y).map_or(Any, Known),
                DimOp::Div if *y != 0 && x % y == 0 => Known(x / y),
                DimOp::Div => Any,
                DimOp::Max => Known(*x.max(y)),
                DimOp::Min => Known(*x.min(y)),
            },
            (Any, _) | (_, Any) => Any,
            _ => {
                let (sa, sb) = (a.atom(), b.atom());
                let commutative = matches!(op, DimOp::Add | DimOp::Mul | DimOp::Max | DimOp::Min);
                let (sa, sb) = if commutative && sb < sa { (sb, sa) } else { (sa, sb) };
                match op {
                    DimOp::Add if matches!(b, Known(0)) => a.clone(),
                    DimOp::Mul if matches!(b, Known(1)) => a.clone(),
                    DimOp::Mul if matches!(a, Known(1)) => b.clone(),
                    DimOp::Add => Sym(format!("{sa} + {sb}")),
                    DimOp::Sub => Sym(format!("{sa} - {sb}")),
                    DimOp::Mul => Sym(format!("{sa} * {sb}")),
                    DimOp::Div => Sym(format!("{sa} / {sb}")),
                    DimOp::Max | DimOp::Min if a == b => a.clone(),
                    DimOp::Max | DimOp::Min if simplify_min_max(op, &a.to_string(), &b.to_string()).is_some() => {
                        Sym(simplify_min_max(op, &a.to_string(), &b.to_string()).unwrap_or_default())
                    }
                    DimOp::Max => Sym(format!("max({sa}, {sb})")),
                    DimOp::Min => Sym(format!("min({sa}, {sb})")),
                }
            }
        }
    }

    fn atom(&self) -> String {
        match self {
            Dim::Sym(s) if s.contains(' ') && !s.starts_with("max(") && !s.starts_with("min(") => format!("({s})"),
            other => other.to_string(),
        }
    }

    /// False only when the two certainly differ: different known sizes, or two different
    /// plain names. Compound symbolic sizes (`min(m, n)`) are not compared, since the checker
    /// does no algebra beyond canonical spelling.
    pub fn compatible(&self, other: &Dim) -> bool {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => a == b,
            (Dim::Sym(a), Dim::Sym(b)) if a == b => true,
            (Dim::Sym(a), Dim::Sym(b)) if is_name(a) && is_name(b) => false,
            // `k * d` against `d` or `j * d` (k != j) differ whatever `d` is.
            (Dim::Sym(a), Dim::Sym(b)) => match (multiple_of(a), multiple_of(b)) {
                (Some((k, x)), Some((j, y))) => x != y || k == j,
                _ => true,
            },
            _ => true,
        }
    }

    /// The more informative of two compatible dimensions.
    pub fn unify(&self, other: &Dim) -> Dim {
        match (self, other) {
            (Dim::Known(_), _) => self.clone(),
            (_, Dim::Known(_)) => other.clone(),
            (Dim::Sym(_), _) => self.clone(),
            _ => other.clone(),
        }
    }

    /// True for a size of exactly 1.
    pub fn is_one(&self) -> bool {
        matches!(self, Dim::Known(1))
    }
}

/// `d` as (1, "d"), `2 * d` as (2, "d").
fn multiple_of(s: &str) -> Option<(i64, &str)> {
    if is_name(s) && !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Some((1, s));
    }
    let (k, x) = s.split_once(" * ")?;
    let k: i64 = k.parse().ok()?;
    is_name(x).then_some((k, x))
}

fn is_name(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// The two arguments of a symbolic `min(a, b)` or `max(a, b)`.
fn min_max_args<'a>(s: &'a str, f: &str) -> Option<(&'a str, &'a str)> {
    let inner = s.strip_prefix(f)?.strip_prefix('(')?.strip_suffix(')')?;
    let (a, b) = inner.split_once(", ")?;
    (is_name(a) && is_name(b)).then_some((a, b))
}

/// `min(max(a, b), min(a, b)) = min(a, b)` and the like: what QR and SVD shapes need.
fn simplify_min_max(op: DimOp, a: &str, b: &str) -> Option<String> {
    let (keep, other) = if op == DimOp::Min { ("min", "max") } else { ("max", "min") };
    for (x, y) in [(a, b), (b, a)] {
        if let Some((p, q)) = min_max_args(x, keep) {
            // min(min(p, q), p) and min(min(p, q), max(p, q)) are min(p, q).
            let other_args = min_max_args(y, other).or_else(|| min_max_args(y, keep));
            if y == p || y == q || other_args.is_some_and(|(r, t)| (r, t) == (p, q) || (t, r) == (p, q)) {
                return Some(x.to_string());
            }
        }
    }
    None
}

/// A tensor shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Known rank.
    Dims(Vec<Dim>),
    /// Unknown rank; two shapes with the same name are the same shape (`g` and `zeros_like(g)`).
    Any(Option<String>),
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Dims(d) => {
                f.write_str("[")?;
                for (i, x) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Shape::Any(Some(n)) => write!(f, "[*{n}]"),
            Shape::Any(None) => f.write_str("[*]"),
        }
    }
}

/// Why two shapes do not combine, for the diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeError {
    /// Broadcasting fails at this axis (counted from the end, 1-based).
    Broadcast { axis_from_end: usize },
    /// The contracted dimensions of a matrix product differ.
    Contract { left: Dim, right: Dim },
    /// An operand has a rank the operation does not take.
    Rank { which: usize, rank: usize },
}

impl Shape {
    /// The shape of a scalar.
    pub fn scalar() -> Shape {
        Shape::Dims(Vec::new())
    }

    /// The rank if known.
    pub fn rank(&self) -> Option<usize> {
        match self {
            Shape::Dims(d) => Some(d.len()),
            Shape::Any(_) => None,
        }
    }

    /// True for a known scalar shape.
    pub fn is_scalar(&self) -> bool {
        self.rank() == Some(0)
    }

    /// NumPy broadcasting.
    pub fn broadcast(&self, other: &Shape) -> Result<Shape, ShapeError> {
        match (self, other) {
            (Shape::Dims(a), _) if a.is_empty() => Ok(other.clone()),
            (_, Shape::Dims(b)) if b.is_empty() => Ok(self.clone()),
            (Shape::Any(x), Shape::Any(y)) if x == y => Ok(self.clone()),
            (Shape::Any(_), _) | (_, Shape::Any(_)) => Ok(Shape::Any(None)),
            (Shape::Dims(a), Shape::Dims(b)) => {
                let n = a.len().max(b.len());
                let mut out = vec![Dim::Any; n];
                for i in 0..n {
                    let da = if i < a.len() { &a[a.len() - 1 - i] } else { &Dim::Known(1) };
                    let db = if i < b.len() { &b[b.len() - 1 - i] } else { &Dim::Known(1) };
                    out[n - 1 - i] = if da.is_one() {
                        db.clone()
                    } else if db.is_one() {
                        da.clone()
                    } else if da.compatible(db) {
                        da.unify(db)
                    } else {
                        return Err(ShapeError::Broadcast { axis_from_end: i + 1 });
                    };
                }
                Ok(Shape::Dims(out))
            }
        }
    }

    /// The shape of `self @ other`, with NumPy's rules for 1-D operands and batch dimensions.
    pub fn matmul(&self, other: &Shape) -> Result<Shape, ShapeError> {
        let (a, b) = match (self, other) {
            (Shape::Dims(a), Shape::Dims(b)) => (a, b),
            (Shape::Dims(a), _) if a.is_empty() => return Err(ShapeError::Rank { which: 0, rank: 0 }),
            (_, Shape::Dims(b)) if b.is_empty() => return Err(ShapeError::Rank { which: 1, rank: 0 }),
            _ => return Ok(Shape::Any(None)),
        };
        if a.is_empty() {
            return Err(ShapeError::Rank { which: 0, rank: 0 });
        }
        if b.is_empty() {
            return Err(ShapeError::Rank { which: 1, rank: 0 });
        }
        let left_inner = a[a.len() - 1].clone();
        let right_inner = if b.len() == 1 { b[0].clone() } else { b[b.len() - 2].clone() };
        if !left_inner.compatible(&right_inner) {
            return Err(ShapeError::Contract { left: left_inner, right: right_inner });
        }
        let batch_a = Shape::Dims(a[..a.len().saturating_sub(2)].to_vec());
        let batch_b = Shape::Dims(b[..b.len().saturating_sub(2)].to_vec());
        let Shape::Dims(mut out) = batch_a.broadcast(&batch_b)? else {
            return Ok(Shape::Any(None));
        };
        if a.len() >= 2 {
            out.push(a[a.len() - 2].clone());
        }
        if b.len() >= 2 {
            out.push(b[b.len() - 1].clone());
        }
        Ok(Shape::Dims(out))
    }

    /// The shape with its last two dimensions swapped.
    pub fn transpose(&self) -> Result<Shape, ShapeError> {
        match self {
            Shape::Dims(d) if d.len() < 2 => Err(ShapeError::Rank { which: 0, rank: d.len() }),
            Shape::Dims(d) => {
                let mut d = d.clone();
                let n = d.len();
                d.swap(n - 1, n - 2);
                Ok(Shape::Dims(d))
            }
            Shape::Any(_) => Ok(Shape::Any(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(dims: &[&str]) -> Shape {
        Shape::Dims(
            dims.iter().map(|d| d.parse::<i64>().map(Dim::Known).unwrap_or_else(|_| Dim::Sym(d.to_string()))).collect(),
        )
    }

    #[test]
    fn matmul_checks_inner_dims() {
        assert_eq!(s(&["m", "n"]).matmul(&s(&["n", "k"])), Ok(s(&["m", "k"])));
        assert!(matches!(s(&["m", "n"]).matmul(&s(&["k", "n"])), Err(ShapeError::Contract { .. })));
        assert_eq!(s(&["b", "d"]).matmul(&s(&["d"])), Ok(s(&["b"])));
        assert_eq!(s(&["d"]).matmul(&s(&["d"])), Ok(Shape::scalar()));
        assert_eq!(s(&["64", "d"]).matmul(&s(&["32", "k"])), Ok(s(&["64", "k"])));
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(s(&["m", "1"]).broadcast(&s(&["n"])), Ok(s(&["m", "n"])));
        assert_eq!(s(&["3", "4"]).broadcast(&Shape::scalar()), Ok(s(&["3", "4"])));
        assert!(s(&["3", "4"]).broadcast(&s(&["5"])).is_err());
        let g = Shape::Any(Some("g".into()));
        assert_eq!(g.broadcast(&g), Ok(g.clone()));
        assert_eq!(s(&["m", "n"]).broadcast(&s(&["1", "n"])), Ok(s(&["m", "n"])));
        assert_eq!(s(&["m", "n"]).broadcast(&s(&["m", "1"])), Ok(s(&["m", "n"])));
    }

    #[test]
    fn min_max_simplify() {
        let (m, n) = (Dim::Sym("m".into()), Dim::Sym("n".into()));
        let k = Dim::apply(DimOp::Min, &m, &n);
        let big = Dim::apply(DimOp::Max, &m, &n);
        assert_eq!(Dim::apply(DimOp::Min, &big, &k), k);
        assert_eq!(Dim::apply(DimOp::Min, &k, &m), k);
        assert_eq!(Dim::apply(DimOp::Max, &big, &k), big);
    }

    #[test]
    fn symbolic_dims_are_canonical() {
        let d = Dim::Sym("d".into());
        let two = Dim::Known(2);
        assert_eq!(Dim::apply(DimOp::Mul, &two, &d), Dim::apply(DimOp::Mul, &d, &two));
        assert_eq!(Dim::apply(DimOp::Mul, &Dim::Known(3), &Dim::Known(4)), Dim::Known(12));
    }
}
