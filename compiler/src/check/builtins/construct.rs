//! Constructors and random draws: tensors shaped like another (`zeros_like`, `ones_like`,
//! `full_like`), from a shape list (`fill` and the counter-based random numbers `randn` and
//! `rand`) or from sizes (`eye`, `arange`). Their results' shapes come from their arguments, not
//! from a tensor's values.

use super::{numeric, sig, Sig};
use crate::check::apply::shape_of_list;
use crate::check::dims::to_dim;
use crate::check::eval::{Checker, Frame};
use crate::check::shape::{Dim, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::codes;
use crate::syntax::ast::Span;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[
    sig("zeros_like", &["x"], 1),
    sig("ones_like", &["x"], 1),
    sig("full_like", &["x", "value"], 2),
    sig("fill", &["shape", "value"], 2),
    sig("eye", &["n", "m"], 1),
    sig("randn", &["shape"], 1),
    sig("rand", &["shape"], 1),
    sig("arange", &["n"], 1),
];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], _span: Span) -> Value {
    let name = s.name;
    match name {
        "zeros_like" | "ones_like" | "full_like" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            Value::tensor(shape)
        }
        "fill" | "randn" | "rand" => match &a[0] {
            Some((v, sp)) => match shape_of_list(ch, f, v, *sp) {
                Some(d) => Value::tensor(Shape::Dims(d)),
                None if matches!(v, Value::List(None) | Value::Unknown) => Value::Tensor(Shape::Any(None), Elem::Float),
                None => {
                    ch.err(
                        f,
                        codes::TYPE_MISMATCH,
                        *sp,
                        format!("`{name}` takes a shape list like `[3, 4]`, not {}", v.describe()),
                        "not a shape",
                    );
                    Value::Unknown
                }
            },
            None => Value::Unknown,
        },
        "eye" => {
            let n = a[0].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            let m = a[1].as_ref().map_or(n.clone(), |(v, sp)| to_dim(ch, f, v, *sp));
            Value::tensor(Shape::Dims(vec![n, m]))
        }
        "arange" => {
            let n = a[0].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            Value::Tensor(Shape::Dims(vec![n]), Elem::Int)
        }
        _ => Value::Unknown,
    }
}
