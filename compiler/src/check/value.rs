//! What the checker knows about a value: its type, its shape, and, for scalars, its value when
//! it is a constant. The checker is an abstract interpreter: it runs every body over these
//! values, so hyperparameters given as constants flow into shapes (`param a[rank, n]` with
//! `rank = 4`) and into range checks, while unknown values stay symbolic.

use super::shape::{Dim, Shape};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// Index of a declaration in the program.
pub type DeclId = usize;

/// The declared type of a hyperparameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Anything.
    Any,
    /// An integer scalar.
    Int,
    /// A float scalar (an int or a schedule is accepted).
    Float,
    /// A boolean.
    Bool,
    /// A string.
    Str,
    /// A tensor of any shape (scalars included).
    Tensor,
    /// An update rule.
    Rule,
    /// A schedule.
    Schedule,
    /// An initializer.
    Init,
    /// An adapter.
    Adapter,
    /// A model.
    Model,
    /// A function of tensors.
    Fn,
    /// A list.
    List,
}

impl Ty {
    /// Parses a type name as written in a parameter annotation.
    pub fn from_name(name: &str) -> Option<Ty> {
        Some(match name {
            "any" => Ty::Any,
            "int" => Ty::Int,
            "float" => Ty::Float,
            "bool" => Ty::Bool,
            "str" => Ty::Str,
            "tensor" => Ty::Tensor,
            "rule" => Ty::Rule,
            "schedule" => Ty::Schedule,
            "init" => Ty::Init,
            "adapter" => Ty::Adapter,
            "model" => Ty::Model,
            "fn" => Ty::Fn,
            "list" => Ty::List,
            _ => return None,
        })
    }

    /// Every type name, for suggestions.
    pub const NAMES: &'static [&'static str] =
        &["any", "int", "float", "bool", "str", "tensor", "rule", "schedule", "init", "adapter", "model", "fn", "list"];

    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Any => "any",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Bool => "bool",
            Ty::Str => "str",
            Ty::Tensor => "tensor",
            Ty::Rule => "rule",
            Ty::Schedule => "schedule",
            Ty::Init => "init",
            Ty::Adapter => "adapter",
            Ty::Model => "model",
            Ty::Fn => "fn",
            Ty::List => "list",
        }
    }
}

/// The element kind of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// Floating point (f32 or f64, chosen when running).
    Float,
    /// Integer (labels, indices).
    Int,
    /// Boolean (comparisons, masks).
    Bool,
}

/// Something that can be called but has not been: a declaration or a builtin, possibly with
/// its hyperparameters bound (`adam(lr = 1e-3)` is a rule; calling it with `g` applies it).
#[derive(Clone, Debug, PartialEq)]
pub enum Callee {
    /// A declaration by id.
    Decl(DeclId),
    /// A builtin by name.
    Builtin(&'static str),
    /// A hyperparameter of the body being checked: some value of its type, not known yet.
    Param(String),
}

/// Hyperparameter values bound by a call, by parameter name.
pub type Bound = BTreeMap<String, Value>;

/// A declaration applied to its hyperparameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The declaration (or builtin combinator).
    pub callee: Callee,
    /// The bound hyperparameters.
    pub args: Bound,
}

/// A parameter of a model instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// Its shape.
    pub shape: Shape,
    /// Trained unless frozen (an adapted base weight, a `frozen` tensor).
    pub trainable: bool,
}

/// A member of a model instance.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    /// A parameter.
    Param(ParamInfo),
    /// A sub-model.
    Model(Rc<ModelVal>),
    /// A weight reparameterized by an adapter: the frozen base plus the adapter's members.
    Adapted {
        /// The base weight's shape (also the effective weight's).
        shape: Shape,
        /// The adapter's own parameters and frozen tensors.
        members: BTreeMap<String, ParamInfo>,
        /// Which adapter.
        adapter: String,
    },
}

/// An instantiated model: its members with concrete (or symbolic) shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelVal {
    /// The model declaration.
    pub decl: DeclId,
    /// Its name, for messages.
    pub name: String,
    /// Hyperparameter values.
    pub args: Bound,
    /// Members in declaration order.
    pub members: Vec<(String, Member)>,
}

impl ModelVal {
    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }

    /// Every trainable parameter below this model, as dotted paths with shapes.
    pub fn parameters(&self, prefix: &str, out: &mut Vec<(String, ParamInfo)>) {
        for (name, m) in &self.members {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            match m {
                Member::Param(p) => out.push((path, p.clone())),
                Member::Model(sub) => sub.parameters(&path, out),
                Member::Adapted { shape, members, .. } => {
                    out.push((path.clone(), ParamInfo { shape: shape.clone(), trainable: false }));
                    for (n, p) in members {
                        out.push((format!("{path}.{n}"), p.clone()));
                    }
                }
            }
        }
    }
}

/// An abstract value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Nothing known (after an error, or an untyped parameter).
    Unknown,
    /// A boolean scalar, with its value if constant.
    Bool(Option<bool>),
    /// An integer scalar: a known, symbolic or unknown size.
    Int(Dim),
    /// A float scalar, with its value if constant.
    Float(Option<f64>),
    /// A tensor.
    Tensor(Shape, Elem),
    /// A string.
    Str(Option<String>),
    /// A list; items known when the list is a literal.
    List(Option<Vec<Value>>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A declaration or builtin not yet called.
    Callable(Callee),
    /// An update rule.
    Rule(Rc<Applied>),
    /// A schedule (also usable as a float).
    Schedule(Rc<Applied>),
    /// An initializer.
    Init(Rc<Applied>),
    /// An adapter.
    Adapter(Rc<Applied>),
    /// A function value (an `fn` declaration or a builtin such as `tanh`).
    Fn(Callee),
    /// A model instance.
    Model(Rc<ModelVal>),
    /// A parameter of a model instance, reached by a path; behaves as its tensor.
    Param {
        /// Dotted path from the experiment binding.
        path: String,
        /// Its shape.
        shape: Shape,
        /// The adapter's members, for an adapted weight.
        adapter_members: Option<BTreeMap<String, ParamInfo>>,
    },
}

impl Value {
    /// A float tensor of a shape (a float scalar for the empty shape).
    pub fn tensor(shape: Shape) -> Value {
        if shape.is_scalar() {
            Value::Float(None)
        } else {
            Value::Tensor(shape, Elem::Float)
        }
    }

    /// The tensor shape, if this is numeric.
    pub fn shape(&self) -> Option<Shape> {
        match self {
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Schedule(_) => Some(Shape::scalar()),
            Value::Tensor(s, _) | Value::Param { shape: s, .. } => Some(s.clone()),
            Value::Unknown => Some(Shape::Any(None)),
            _ => None,
        }
    }

    /// The value with its constant forgotten: what is known of a state or `var` that is
    /// updated as the program runs.
    pub fn forget(self) -> Value {
        match self {
            Value::Int(Dim::Known(_)) => Value::Int(Dim::Any),
            Value::Float(Some(_)) => Value::Float(None),
            Value::Bool(Some(_)) => Value::Bool(None),
            Value::List(Some(items)) => Value::List(Some(items.into_iter().map(Value::forget).collect())),
            other => other,
        }
    }

    /// True when the value can take part in arithmetic.
    pub fn is_numeric(&self) -> bool {
        self.shape().is_some()
    }

    /// A constant float value (ints included).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(Some(x)) => Some(*x),
            Value::Int(Dim::Known(n)) => Some(*n as f64),
            _ => None,
        }
    }

    /// A constant integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(Dim::Known(n)) => Some(*n),
            _ => None,
        }
    }

    /// The value as a dimension, if it is an integer.
    pub fn as_dim(&self) -> Option<Dim> {
        match self {
            Value::Int(d) => Some(d.clone()),
            Value::Unknown => Some(Dim::Any),
            _ => None,
        }
    }

    /// What kind of value this is, in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Unknown => "a value".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Tensor(s, Elem::Bool) => format!("a bool tensor of shape {s}"),
            Value::Tensor(s, Elem::Int) => format!("an int tensor of shape {s}"),
            Value::Tensor(s, Elem::Float) => format!("a tensor of shape {s}"),
            Value::Param { shape, .. } => format!("a parameter of shape {shape}"),
            Value::Str(_) => "a string".into(),
            Value::List(_) => "a list".into(),
            Value::Tuple(t) => format!("a tuple of {}", t.len()),
            Value::Callable(_) => "a declaration that has not been called".into(),
            Value::Rule(_) => "a rule".into(),
            Value::Schedule(_) => "a schedule".into(),
            Value::Init(_) => "an init".into(),
            Value::Adapter(_) => "an adapter".into(),
            Value::Fn(_) => "a function".into(),
            Value::Model(m) => format!("a `{}` model", m.name),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(d) => write!(f, "int {d}"),
            Value::Float(Some(x)) => write!(f, "float {x}"),
            Value::Float(None) => f.write_str("float"),
            Value::Bool(Some(b)) => write!(f, "bool {b}"),
            Value::Bool(None) => f.write_str("bool"),
            Value::Tensor(s, Elem::Float) => write!(f, "tensor{s}"),
            Value::Tensor(s, Elem::Int) => write!(f, "int tensor{s}"),
            Value::Tensor(s, Elem::Bool) => write!(f, "bool tensor{s}"),
            Value::Param { shape, .. } => write!(f, "param{shape}"),
            Value::Str(Some(s)) => write!(f, "{s:?}"),
            Value::Str(None) => f.write_str("str"),
            Value::List(Some(items)) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::List(None) => f.write_str("list"),
            Value::Tuple(items) => {
                f.write_str("(")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Value::Model(m) => write!(f, "model {}", m.name),
            Value::Unknown => f.write_str("?"),
            Value::Callable(_) => f.write_str("callable"),
            Value::Rule(_) => f.write_str("rule"),
            Value::Schedule(_) => f.write_str("schedule"),
            Value::Init(_) => f.write_str("init"),
            Value::Adapter(_) => f.write_str("adapter"),
            Value::Fn(_) => f.write_str("fn"),
        }
    }
}
