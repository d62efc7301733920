//! Linear algebra: products and structure (`outer`, `kron`, `diag`, `trace`, `triu`, `tril`), the
//! decompositions (`svd`, `left_singular`, `randomized_svd`, `qr`, `eigh`, `cholesky`) and
//! `solve`. They take matrices (or vectors, for `outer`), so most of their checks are of rank and
//! of which dimensions must agree.

use super::{expect_rank, numeric, sig, Sig};
use crate::check::dims::to_dim;
use crate::check::eval::{Checker, Frame};
use crate::check::shape::{Dim, DimOp, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::Span;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("outer", &["a", "b"], 2),
    sig("diag", &["x"], 1),
    sig("trace", &["x"], 1),
    sig("triu", &["x"], 1),
    sig("tril", &["x"], 1),
    sig("kron", &["a", "b"], 2),
    sig("svd", &["a", "rank"], 1),
    sig("left_singular", &["a", "rank"], 2),
    sig("randomized_svd", &["a", "rank", "niter"], 2),
    sig("qr", &["a"], 1),
    sig("eigh", &["a"], 1),
    sig("solve", &["a", "b"], 2),
    sig("cholesky", &["a"], 1),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], _span: Span) -> Value {
    let name = s.name;
    match name {
        "trace" => {
            let _ = numeric(ch, f, name, &a[0]);
            expect_rank(ch, f, &a[0], 2, name);
            Value::Float(None)
        }
        "triu" | "tril" | "cholesky" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            expect_rank(ch, f, &a[0], 2, name);
            Value::tensor(shape)
        }
        "outer" => {
            let (Some(x), Some(y)) = (numeric(ch, f, name, &a[0]), numeric(ch, f, name, &a[1])) else {
                return Value::Unknown;
            };
            expect_rank(ch, f, &a[0], 1, name);
            expect_rank(ch, f, &a[1], 1, name);
            Value::tensor(Shape::Dims(vec![first_dim(&x), first_dim(&y)]))
        }
        "diag" => match numeric(ch, f, name, &a[0]) {
            Some(Shape::Dims(d)) if d.len() == 1 => Value::tensor(Shape::Dims(vec![d[0].clone(), d[0].clone()])),
            Some(Shape::Dims(d)) if d.len() == 2 => {
                Value::tensor(Shape::Dims(vec![Dim::apply(DimOp::Min, &d[0], &d[1])]))
            }
            Some(Shape::Dims(_)) => {
                expect_rank(ch, f, &a[0], 2, name);
                Value::Unknown
            }
            Some(_) => Value::Tensor(Shape::Any(None), Elem::Float),
            None => Value::Unknown,
        },
        "kron" => {
            let (Some(x), Some(y)) = (numeric(ch, f, name, &a[0]), numeric(ch, f, name, &a[1])) else {
                return Value::Unknown;
            };
            match (x, y) {
                (Shape::Dims(p), Shape::Dims(q)) if p.len() == q.len() => {
                    Value::tensor(Shape::Dims(p.iter().zip(&q).map(|(a, b)| Dim::apply(DimOp::Mul, a, b)).collect()))
                }
                _ => Value::Tensor(Shape::Any(None), Elem::Float),
            }
        }
        "svd" | "left_singular" | "randomized_svd" | "qr" | "eigh" | "solve" => decomposition(ch, f, name, a),
        _ => Value::Unknown,
    }
}

/// The size of a vector's only dimension (unknown for anything else).
fn first_dim(s: &Shape) -> Dim {
    match s {
        Shape::Dims(d) if d.len() == 1 => d[0].clone(),
        _ => Dim::Any,
    }
}

/// The results of the decompositions `svd`, `left_singular`, `randomized_svd`, `qr` and `eigh`
/// (tuples of factors where there are several), and of `solve(a, b)`.
fn decomposition(ch: &mut Checker, f: &Frame, name: &str, a: &[Option<(Value, Span)>]) -> Value {
    let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
    if !expect_rank(ch, f, &a[0], 2, name) {
        return Value::Unknown;
    }
    let (m, n) = match &shape {
        Shape::Dims(d) => (d[0].clone(), d[1].clone()),
        _ => (Dim::Any, Dim::Any),
    };
    let k = Dim::apply(DimOp::Min, &m, &n);
    let rank = match name {
        "svd" | "left_singular" | "randomized_svd" => a.get(1).and_then(|x| x.as_ref()).map(|(v, sp)| {
            let r = to_dim(ch, f, v, *sp);
            if r == Dim::Known(0) {
                ch.err(f, codes::BAD_COUNT, *sp, format!("`{name}` needs a rank of at least 1"), "rank 0");
            }
            r
        }),
        _ => None,
    };
    match name {
        "svd" | "randomized_svd" => {
            let r = rank.unwrap_or(k);
            Value::Tuple(vec![
                Value::tensor(Shape::Dims(vec![m, r.clone()])),
                Value::tensor(Shape::Dims(vec![r.clone()])),
                Value::tensor(Shape::Dims(vec![r, n])),
            ])
        }
        "left_singular" => Value::tensor(Shape::Dims(vec![m, rank.unwrap_or(Dim::Any)])),
        "qr" => {
            Value::Tuple(vec![Value::tensor(Shape::Dims(vec![m, k.clone()])), Value::tensor(Shape::Dims(vec![k, n]))])
        }
        "eigh" => {
            if !m.compatible(&n) {
                ch.err(
                    f,
                    codes::SHAPE_MISMATCH,
                    a[0].as_ref().map_or(Span::default(), |x| x.1),
                    format!("`eigh` needs a square matrix, found {shape}"),
                    "not square",
                );
            }
            Value::Tuple(vec![
                Value::tensor(Shape::Dims(vec![n.clone()])),
                Value::tensor(Shape::Dims(vec![n.clone(), n])),
            ])
        }
        _ => {
            // solve(a, b): a is square, b's leading dimension matches.
            let b = a.get(1).and_then(|x| x.clone());
            match b.as_ref().and_then(|(v, _)| v.shape()) {
                Some(Shape::Dims(bd)) if !bd.is_empty() => {
                    if !bd[0].compatible(&m) {
                        let (_, sb) = b.as_ref().map_or((Value::Unknown, Span::default()), |x| x.clone());
                        ch.report(
                            Diagnostic::error(
                                codes::SHAPE_MISMATCH,
                                &f.source,
                                sb,
                                format!("`solve` of a {shape} system with a right side of {}", Shape::Dims(bd.clone())),
                                "rows differ",
                            )
                            .with_label(a[0].as_ref().map_or(Span::default(), |x| x.1), format!("{shape}")),
                        );
                    }
                    Value::tensor(Shape::Dims(bd))
                }
                Some(s) => Value::tensor(s),
                None => Value::Unknown,
            }
        }
    }
}
