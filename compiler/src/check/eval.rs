//! Expressions: the abstract interpreter's core. A [`Frame`] is one body being checked (its
//! file, what kind of body it is, its local scopes); [`Checker::eval`] computes the abstract
//! [`Value`] of an expression, reporting unknown names, bad operands, shape mismatches and
//! constant faults, and folding constants so that sizes and hyperparameters stay known.
//! Calls are dispatched to declarations ([`super::body`]) or builtins ([`super::builtins`]).

pub use super::frame::{ArgVal, Ctx, Frame, Local, LocalKind, Scope};
use super::shape::{Dim, DimOp, Shape, ShapeError};
use super::value::{Callee, DeclId, Elem, Value};
use super::Program;
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::*;
use std::collections::{HashMap, HashSet};

/// The checker: the program, the diagnostics so far, and the declarations being instantiated.
pub struct Checker<'p> {
    /// The program.
    pub prog: &'p Program,
    diags: Vec<Diagnostic>,
    seen: HashSet<(&'static str, String, usize, usize)>,
    /// Buffers that catch diagnostics while instantiating a declaration at a call site.
    quiet: Vec<Vec<Diagnostic>>,
    /// Declarations being instantiated, to detect recursion.
    pub stack: Vec<DeclId>,
    /// Hyperparameter signatures by declaration.
    pub sig_cache: HashMap<DeclId, std::rc::Rc<Vec<super::args::Sig>>>,
    /// Whether each declaration's generic check is clean.
    pub generic_cache: HashMap<DeclId, bool>,
    /// Instantiations already run: what they found and what they caught.
    pub instances: HashMap<String, (super::body::Outcome, Vec<Diagnostic>)>,
}

impl<'p> Checker<'p> {
    /// A checker for a program.
    pub fn new(prog: &'p Program) -> Self {
        Checker {
            prog,
            diags: Vec::new(),
            seen: HashSet::new(),
            quiet: Vec::new(),
            stack: Vec::new(),
            sig_cache: HashMap::new(),
            generic_cache: HashMap::new(),
            instances: HashMap::new(),
        }
    }

    /// Everything reported.
    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags
    }

    /// How many problems have been reported so far.
    pub fn reported(&self) -> usize {
        self.diags.len()
    }

    /// Records whether a declaration's generic check was clean, so uses need not redo it.
    pub fn record_generic(&mut self, id: DeclId, clean: bool) {
        self.generic_cache.entry(id).or_insert(clean);
    }

    /// Reports a problem (once per code and place).
    pub fn report(&mut self, d: Diagnostic) {
        if let Some(buf) = self.quiet.last_mut() {
            buf.push(d);
            return;
        }
        let key = (d.code.0, d.source.name.clone(), d.primary_span().start, d.primary_span().end);
        if self.seen.insert(key) {
            self.diags.push(d);
        }
    }

    /// Starts catching diagnostics instead of reporting them.
    pub fn hush(&mut self) {
        self.quiet.push(Vec::new());
    }

    /// Stops catching; returns what was caught.
    pub fn unhush(&mut self) -> Vec<Diagnostic> {
        self.quiet.pop().unwrap_or_default()
    }

    /// Shorthand for an error in the frame's file.
    pub fn err(
        &mut self,
        f: &Frame,
        code: crate::diag::Code,
        span: Span,
        msg: impl Into<String>,
        label: impl Into<String>,
    ) {
        let d = Diagnostic::error(code, &f.source, span, msg, label);
        self.report(d);
    }

    /// Evaluates an expression.
    pub fn eval(&mut self, f: &mut Frame, e: &Expr) -> Value {
        match &e.kind {
            ExprKind::Int(n) => Value::Int(Dim::Known(*n)),
            ExprKind::Float { value, .. } => Value::Float(Some(*value)),
            ExprKind::Bool(b) => Value::Bool(Some(*b)),
            ExprKind::Str(s) => Value::Str(Some(s.clone())),
            ExprKind::Name(n) => self.lookup(f, n, e.span),
            ExprKind::Paren(inner) => self.eval(f, inner),
            ExprKind::List(items) => Value::List(Some(items.iter().map(|i| self.eval(f, i)).collect())),
            ExprKind::Tuple(items) => Value::Tuple(items.iter().map(|i| self.eval(f, i)).collect()),
            ExprKind::Unary { op, operand } => {
                let v = self.eval(f, operand);
                self.unary(f, *op, v, e.span, operand.span)
            }
            ExprKind::Binary { op, op_span, lhs, rhs } => {
                let a = self.eval(f, lhs);
                let b = self.eval(f, rhs);
                self.binary(f, *op, *op_span, (a, lhs.span), (b, rhs.span))
            }
            ExprKind::Transpose(inner) => {
                let v = self.eval(f, inner);
                match v.shape() {
                    Some(s) if v.is_numeric() => match s.transpose() {
                        Ok(t) => Value::tensor(t),
                        Err(_) => {
                            let d = Diagnostic::error(
                                codes::RANK_MISMATCH,
                                &f.source,
                                e.span,
                                format!("cannot transpose {}", v.describe()),
                                "`^T` needs at least two dimensions",
                            )
                            .with_help("for a vector, `outer(u, v)` or `v[:, None]` makes a matrix");
                            self.report(d);
                            Value::Unknown
                        }
                    },
                    _ => {
                        self.bad_operand(f, inner.span, "`^T`", &v);
                        Value::Unknown
                    }
                }
            }
            ExprKind::Call { callee, args } => {
                let c = self.eval(f, callee);
                let args: Vec<ArgVal> = args
                    .iter()
                    .map(|a| ArgVal { name: a.name.clone(), value: self.eval(f, &a.value), span: a.span })
                    .collect();
                self.call(f, c, callee.span, &args, e.span)
            }
            ExprKind::Index { base, items } => {
                let b = self.eval(f, base);
                self.index(f, b, base.span, items, e.span)
            }
            ExprKind::Field { base, name } => {
                let b = self.eval(f, base);
                self.field(f, b, name)
            }
            ExprKind::If { cond, then, otherwise } => self.if_expr(f, cond, then, otherwise.as_deref(), e.span),
            ExprKind::Block(b) => self.block_value(f, b),
        }
    }

    /// Evaluates a block used as a value (an `if` branch): statements, then its value.
    pub fn block_value(&mut self, f: &mut Frame, b: &Block) -> Value {
        f.scopes.push(Scope::default());
        for s in &b.stmts {
            super::stmt::stmt(self, f, s);
        }
        let v = match &b.value {
            Some(e) => self.eval(f, e),
            None => Value::Unknown,
        };
        f.scopes.pop();
        v
    }

    fn if_expr(&mut self, f: &mut Frame, cond: &Expr, then: &Block, otherwise: Option<&Expr>, span: Span) -> Value {
        let c = self.eval(f, cond);
        self.expect_bool(f, &c, cond.span);
        if let (Value::Bool(Some(taken)), Some(o)) = (&c, otherwise) {
            // A condition known here (a hyperparameter, a shape of this specialization): only the
            // branch taken is checked, as only it is lowered (galore's `if right { g @ p^T } else
            // { p^T @ g }` has one branch that fits P's shape); the declaration's own check, with
            // the condition unknown, saw both.
            return if *taken { self.block_value(f, then) } else { self.eval(f, o) };
        }
        let t = self.block_value(f, then);
        let Some(o) = otherwise else {
            let d = Diagnostic::error(
                codes::BRANCH_MISMATCH,
                &f.source,
                span,
                "an `if` used as a value needs an `else`",
                "no `else` branch",
            )
            .with_help("add `else { ... }` with the value when the condition is false");
            self.report(d);
            return Value::Unknown;
        };
        let other = self.eval(f, o);
        match c {
            Value::Bool(Some(true)) => t,
            Value::Bool(Some(false)) => other,
            _ => self.join(f, t, other, then.span, o.span, span),
        }
    }

    /// The value of either branch: same kind required, shapes may differ.
    fn join(&mut self, f: &Frame, a: Value, b: Value, sa: Span, sb: Span, _span: Span) -> Value {
        if a == b {
            return a;
        }
        if matches!(a, Value::Unknown) || matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        if a.is_numeric() && b.is_numeric() {
            return match (&a, &b) {
                (Value::Int(_), Value::Int(_)) => Value::Int(Dim::Any),
                (Value::Float(_) | Value::Int(_), Value::Float(_) | Value::Int(_)) => Value::Float(None),
                (Value::Bool(_), Value::Bool(_)) => Value::Bool(None),
                _ => match (a.shape(), b.shape()) {
                    (Some(x), Some(y)) if x == y => Value::tensor(x),
                    _ => Value::Tensor(Shape::Any(None), Elem::Float),
                },
            };
        }
        if std::mem::discriminant(&a) == std::mem::discriminant(&b) {
            return a;
        }
        let d = Diagnostic::error(
            codes::BRANCH_MISMATCH,
            &f.source,
            sa,
            "the branches of this `if` have different kinds of value",
            a.describe(),
        )
        .with_label(sb, b.describe());
        self.report(d);
        Value::Unknown
    }

    /// Reports a condition that is not a scalar bool.
    pub fn expect_bool(&mut self, f: &Frame, v: &Value, span: Span) {
        match v {
            Value::Bool(_) | Value::Unknown => {}
            // Unknown rank may well be a scalar (`g[0, 0] > 0` on an input of unknown shape).
            Value::Tensor(s, Elem::Bool) if s.rank().is_none() => {}
            Value::Tensor(_, Elem::Bool) => {
                let d = Diagnostic::error(
                    codes::NOT_BOOL,
                    &f.source,
                    span,
                    "a condition must be a single bool, not a tensor of them",
                    v.describe(),
                )
                .with_help("choose elementwise with `where(cond, a, b)`, or reduce with `max(...)`");
                self.report(d);
            }
            _ => {
                let d = Diagnostic::error(codes::NOT_BOOL, &f.source, span, "a condition must be a bool", v.describe())
                    .with_help("compare it, e.g. `x > 0`");
                self.report(d);
            }
        }
    }

    fn lookup(&mut self, f: &Frame, name: &str, span: Span) -> Value {
        if let Some(l) = f.get(name) {
            return l.value.clone();
        }
        match (name, f.ctx) {
            ("step", Ctx::Rule | Ctx::Schedule | Ctx::Experiment) => return Value::Int(Dim::Any),
            ("param", Ctx::Rule) => return f.param.clone().unwrap_or(Value::Unknown),
            ("pi", _) => return Value::Float(Some(std::f64::consts::PI)),
            ("inf", _) => return Value::Float(Some(f64::INFINITY)),
            _ => {}
        }
        if let Some(id) = self.prog.lookup(f.unit, name) {
            return Value::Callable(Callee::Decl(id));
        }
        if let Some(b) = super::builtins::find(name) {
            return Value::Callable(Callee::Builtin(b));
        }
        let mut candidates: Vec<&str> = f.scopes.iter().flat_map(|s| s.keys().map(String::as_str)).collect();
        candidates.extend(self.prog.units[f.unit].scope.keys().map(String::as_str));
        candidates.extend(self.prog.stdlib_scope.keys().map(String::as_str));
        candidates.extend(super::builtins::NAMES.iter().copied());
        candidates.extend(["pi", "inf"]);
        if matches!(f.ctx, Ctx::Rule | Ctx::Schedule | Ctx::Experiment) {
            candidates.push("step");
        }
        if f.ctx == Ctx::Rule {
            candidates.push("param");
        }
        let mut help = did_you_mean(name, candidates);
        if help.is_none() {
            help = match name {
                "step" => Some("`step` is only defined in rules, schedules and experiments".into()),
                "param" => Some("`param` (the parameter being updated) is only defined in rules".into()),
                "g" if f.ctx != Ctx::Rule => Some("the gradient is only an input of a rule".into()),
                "grad" | "grad_norm" => Some(
                    "the loss's gradient is read in an experiment's `log` entries: `grad(model.w)`, `grad_norm`".into(),
                ),
                _ => None,
            };
        }
        let d = Diagnostic::error(
            codes::UNKNOWN_NAME,
            &f.source,
            span,
            format!("unknown name `{name}`"),
            "not found in this scope",
        )
        .with_help_opt(help);
        self.report(d);
        Value::Unknown
    }

    /// Reports an operand an operator does not take.
    pub fn bad_operand(&mut self, f: &Frame, span: Span, op: &str, v: &Value) {
        if matches!(v, Value::Unknown) {
            return;
        }
        let d = Diagnostic::error(
            codes::BAD_OPERAND,
            &f.source,
            span,
            format!("{op} cannot take {}", v.describe()),
            v.describe(),
        )
        .with_help_opt(match v {
            Value::Callable(_) => Some("call it first, e.g. `name(...)`".to_string()),
            Value::Rule(_) => Some("apply a rule to a tensor: `rule(g)`".to_string()),
            _ => None,
        });
        self.report(d);
    }

    fn unary(&mut self, f: &Frame, op: UnaryOp, v: Value, span: Span, operand: Span) -> Value {
        match (op, &v) {
            (_, Value::Unknown) => Value::Unknown,
            (UnaryOp::Neg, Value::Int(d)) => Value::Int(Dim::apply(DimOp::Sub, &Dim::Known(0), d)),
            (UnaryOp::Neg, Value::Float(x)) => Value::Float(x.map(|x| -x)),
            (UnaryOp::Neg, Value::Schedule(_)) => v,
            (UnaryOp::Neg, Value::Tensor(s, Elem::Float | Elem::Int))
            | (UnaryOp::Neg, Value::Param { shape: s, .. }) => Value::tensor(s.clone()),
            (UnaryOp::Not, Value::Bool(b)) => Value::Bool(b.map(|b| !b)),
            (UnaryOp::Not, Value::Tensor(s, Elem::Bool)) => Value::Tensor(s.clone(), Elem::Bool),
            _ => {
                let _ = span;
                self.bad_operand(f, operand, if op == UnaryOp::Neg { "`-`" } else { "`not`" }, &v);
                Value::Unknown
            }
        }
    }

    fn binary(&mut self, f: &Frame, op: BinOp, op_span: Span, (a, sa): (Value, Span), (b, sb): (Value, Span)) -> Value {
        if matches!(a, Value::Unknown) && matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        match op {
            BinOp::And | BinOp::Or => {
                for (v, s) in [(&a, sa), (&b, sb)] {
                    if !matches!(v, Value::Bool(_) | Value::Tensor(_, Elem::Bool) | Value::Unknown) {
                        let d = Diagnostic::error(
                            codes::BAD_OPERAND,
                            &f.source,
                            s,
                            format!("`{}` takes bools, not {}", op.as_str(), v.describe()),
                            v.describe(),
                        )
                        .with_help("compare first, e.g. `x > 0`");
                        self.report(d);
                        return Value::Unknown;
                    }
                }
                match (&a, &b) {
                    (Value::Bool(x), Value::Bool(y)) => Value::Bool(match (x, y, op) {
                        (Some(x), Some(y), BinOp::And) => Some(*x && *y),
                        (Some(x), Some(y), _) => Some(*x || *y),
                        _ => None,
                    }),
                    _ => self
                        .broadcast(f, op_span, &a, sa, &b, sb)
                        .map_or(Value::Unknown, |s| Value::Tensor(s, Elem::Bool)),
                }
            }
            BinOp::MatMul => {
                for (v, s) in [(&a, sa), (&b, sb)] {
                    if !v.is_numeric() {
                        self.bad_operand(f, s, "`@`", v);
                        return Value::Unknown;
                    }
                }
                let (x, y) = (a.shape().unwrap_or(Shape::Any(None)), b.shape().unwrap_or(Shape::Any(None)));
                match x.matmul(&y) {
                    Ok(s) => Value::tensor(s),
                    Err(e) => {
                        let msg = match &e {
                            ShapeError::Contract { left, right } => {
                                format!("matrix product of {x} and {y}: inner dimensions {left} and {right} differ")
                            }
                            ShapeError::Rank { .. } => "`@` needs vectors or matrices, not scalars".to_string(),
                            ShapeError::Broadcast { .. } => {
                                format!("matrix product of {x} and {y}: batch dimensions differ")
                            }
                        };
                        let code = if matches!(e, ShapeError::Rank { .. }) {
                            codes::RANK_MISMATCH
                        } else {
                            codes::MATMUL_SHAPE
                        };
                        let help = match (&e, &x, &y) {
                            (ShapeError::Contract { .. }, Shape::Dims(l), Shape::Dims(r))
                                if l.len() == 2 && r.len() == 2 && l[1].compatible(&r[1]) =>
                            {
                                Some("the right operand looks transposed: try `^T` on it".to_string())
                            }
                            (ShapeError::Rank { .. }, _, _) => Some("scale with `*` instead".to_string()),
                            _ => None,
                        };
                        let d = Diagnostic::error(code, &f.source, sa, msg, format!("left: {x}"))
                            .with_label(sb, format!("right: {y}"))
                            .with_help_opt(help);
                        self.report(d);
                        Value::Unknown
                    }
                }
            }
            _ => self.arith(f, op, op_span, (a, sa), (b, sb)),
        }
    }

    fn arith(&mut self, f: &Frame, op: BinOp, op_span: Span, (a, sa): (Value, Span), (b, sb): (Value, Span)) -> Value {
        let comparison = matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
        // Strings compare for equality only.
        if let (Value::Str(x), Value::Str(y)) = (&a, &b) {
            if matches!(op, BinOp::Eq | BinOp::Ne) {
                return Value::Bool(match (x, y) {
                    (Some(x), Some(y)) => Some((x == y) == (op == BinOp::Eq)),
                    _ => None,
                });
            }
        }
        for (v, s) in [(&a, sa), (&b, sb)] {
            let is_bool = matches!(v, Value::Bool(_) | Value::Tensor(_, Elem::Bool));
            let ok = v.is_numeric() && (!is_bool || matches!(op, BinOp::Eq | BinOp::Ne));
            if !ok {
                self.bad_operand(f, s, &format!("`{}`", op.as_str()), v);
                return Value::Unknown;
            }
        }
        if matches!(a, Value::Unknown) || matches!(b, Value::Unknown) {
            return Value::Unknown;
        }
        // Arithmetic on schedules builds a schedule (`0.5 * cosine(...)`).
        if !comparison && (matches!(a, Value::Schedule(_)) || matches!(b, Value::Schedule(_))) {
            let s = if let Value::Schedule(s) = &a {
                s.clone()
            } else if let Value::Schedule(s) = &b {
                s.clone()
            } else {
                unreachable!()
            };
            if a.shape().is_some_and(|x| x.is_scalar()) && b.shape().is_some_and(|x| x.is_scalar()) {
                return Value::Schedule(s);
            }
        }
        if op == BinOp::Div
            && (b.as_f64() == Some(0.0))
            && (a.as_f64().is_some() || matches!(a, Value::Int(_) | Value::Float(_)))
        {
            let d = Diagnostic::error(codes::DIVISION_BY_ZERO, &f.source, sb, "division by zero", "this is zero");
            self.report(d);
            return Value::Unknown;
        }
        // Scalars fold.
        match (&a, &b) {
            (Value::Int(x), Value::Int(y)) if !comparison => {
                return match op {
                    BinOp::Add => Value::Int(Dim::apply(DimOp::Add, x, y)),
                    BinOp::Sub => Value::Int(Dim::apply(DimOp::Sub, x, y)),
                    BinOp::Mul => Value::Int(Dim::apply(DimOp::Mul, x, y)),
                    BinOp::Pow => match (x, y) {
                        (Dim::Known(x), Dim::Known(y)) if *y >= 0 && *y < 64 => x
                            .checked_pow(*y as u32)
                            .map_or(Value::Float(Some((*x as f64).powf(*y as f64))), |v| Value::Int(Dim::Known(v))),
                        (Dim::Known(x), Dim::Known(y)) => Value::Float(Some((*x as f64).powf(*y as f64))),
                        _ => Value::Float(None),
                    },
                    // `/` is true division, as in Python; exact quotients of sizes stay sizes.
                    _ => match (x, y) {
                        (Dim::Known(p), Dim::Known(q)) => Value::Float(Some(*p as f64 / *q as f64)),
                        _ => Value::Float(None),
                    },
                };
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let (x, y) = (a.as_f64(), b.as_f64());
                return match (x, y) {
                    (Some(x), Some(y)) => fold(op, x, y),
                    _ if comparison => Value::Bool(None),
                    _ => Value::Float(None),
                };
            }
            (Value::Bool(_), Value::Bool(_)) if matches!(op, BinOp::Eq | BinOp::Ne) => return Value::Bool(None),
            _ => {}
        }
        match self.broadcast(f, op_span, &a, sa, &b, sb) {
            Some(s) if comparison => Value::Tensor(s, Elem::Bool),
            Some(s) => {
                let int = matches!(
                    (&a, &b),
                    (Value::Tensor(_, Elem::Int) | Value::Int(_), Value::Tensor(_, Elem::Int) | Value::Int(_))
                ) && matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul);
                if int {
                    Value::Tensor(s, Elem::Int)
                } else {
                    Value::tensor(s)
                }
            }
            None => Value::Unknown,
        }
    }

    /// Broadcasts two numeric operands, reporting a mismatch with both labelled.
    pub fn broadcast(&mut self, f: &Frame, op_span: Span, a: &Value, sa: Span, b: &Value, sb: Span) -> Option<Shape> {
        let (x, y) = (a.shape()?, b.shape()?);
        match x.broadcast(&y) {
            Ok(s) => Some(s),
            Err(_) => {
                let d = Diagnostic::error(
                    codes::BROADCAST_SHAPE,
                    &f.source,
                    sa,
                    format!("shapes {x} and {y} cannot be broadcast together"),
                    format!("{x}"),
                )
                .with_label(sb, format!("{y}"));
                let _ = op_span;
                self.report(d.with_help("sizes must match or be 1, aligned from the last dimension"));
                None
            }
        }
    }

    fn index(&mut self, f: &mut Frame, base: Value, base_span: Span, items: &[IndexItem], span: Span) -> Value {
        let vals: Vec<Option<Value>> = items
            .iter()
            .map(|it| match it {
                IndexItem::At(e) => Some(self.eval(f, e)),
                IndexItem::Slice { lo, hi, step, .. } => {
                    for e in [lo, hi, step].into_iter().flatten() {
                        let v = self.eval(f, e);
                        if !matches!(v, Value::Int(_) | Value::Unknown) {
                            self.err(f, codes::TYPE_MISMATCH, e.span, "slice bounds must be ints", v.describe());
                        }
                    }
                    None
                }
                IndexItem::NewAxis(_) => None,
            })
            .collect();
        match &base {
            Value::Unknown => Value::Unknown,
            Value::List(_) | Value::Tuple(_) if items.len() == 1 => {
                let known = match &base {
                    Value::Tuple(t) => Some(t.clone()),
                    Value::List(l) => l.clone(),
                    _ => None,
                };
                match (&vals[0], known) {
                    (Some(Value::Int(Dim::Known(i))), Some(list)) => {
                        let n = list.len() as i64;
                        let j = if *i < 0 { n + i } else { *i };
                        if j < 0 || j >= n {
                            self.err(
                                f,
                                codes::OUT_OF_BOUNDS,
                                span,
                                format!("index {i} is outside a list of {n}"),
                                "out of bounds",
                            );
                            Value::Unknown
                        } else {
                            list[j as usize].clone()
                        }
                    }
                    _ => Value::Unknown,
                }
            }
            v if v.is_numeric() => {
                let shape = v.shape().unwrap_or(Shape::Any(None));
                let Shape::Dims(dims) = shape else {
                    return Value::Tensor(Shape::Any(None), Elem::Float);
                };
                let consumed = items.iter().filter(|i| !matches!(i, IndexItem::NewAxis(_))).count();
                if consumed > dims.len() {
                    let d = Diagnostic::error(
                        codes::OUT_OF_BOUNDS,
                        &f.source,
                        span,
                        format!("{consumed} indices for a tensor of rank {}", dims.len()),
                        "too many indices",
                    )
                    .with_label(base_span, format!("shape {}", Shape::Dims(dims.clone())));
                    self.report(d);
                    return Value::Unknown;
                }
                let mut out = Vec::new();
                let mut k = 0;
                for (it, val) in items.iter().zip(&vals) {
                    match it {
                        IndexItem::NewAxis(_) => out.push(Dim::Known(1)),
                        IndexItem::At(e) => {
                            if let (Some(Value::Int(Dim::Known(i))), Dim::Known(n)) = (val, &dims[k]) {
                                if *i >= *n || *i < -*n {
                                    self.err(
                                        f,
                                        codes::OUT_OF_BOUNDS,
                                        e.span,
                                        format!("index {i} is outside a dimension of size {n}"),
                                        "out of bounds",
                                    );
                                }
                            }
                            k += 1;
                        }
                        IndexItem::Slice { lo, hi, step, .. } => {
                            out.push(slice_len(&dims[k], lo.as_ref(), hi.as_ref(), step.as_ref()));
                            k += 1;
                        }
                    }
                }
                out.extend(dims[k..].iter().cloned());
                let elem = if let Value::Tensor(_, e) = v { *e } else { Elem::Float };
                if out.is_empty() && elem == Elem::Float {
                    Value::Float(None)
                } else {
                    Value::Tensor(Shape::Dims(out), elem)
                }
            }
            other => {
                self.bad_operand(f, base_span, "indexing", other);
                Value::Unknown
            }
        }
    }

    fn field(&mut self, f: &Frame, base: Value, name: &Ident) -> Value {
        use super::value::Member;
        match &base {
            Value::Unknown => Value::Unknown,
            Value::Model(m) => match m.member(&name.name) {
                Some(Member::Param(p)) => {
                    Value::Param { path: name.name.clone(), shape: p.shape.clone(), adapter_members: None }
                }
                Some(Member::Model(sub)) => Value::Model(sub.clone()),
                Some(Member::Adapted { shape, members, .. }) => Value::Param {
                    path: name.name.clone(),
                    shape: shape.clone(),
                    adapter_members: Some(members.clone()),
                },
                None => {
                    let names: Vec<&str> = m.members.iter().map(|(n, _)| n.as_str()).collect();
                    let help = did_you_mean(&name.name, names.iter().copied())
                        .or_else(|| Some(format!("`{}` has: {}", m.name, names.join(", "))));
                    let d = Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        &f.source,
                        name.span,
                        format!("model `{}` has no member `{}`", m.name, name.name),
                        "no such member",
                    )
                    .with_help_opt(help);
                    self.report(d);
                    Value::Unknown
                }
            },
            Value::Param { path, adapter_members: Some(ms), .. } => match ms.get(&name.name) {
                Some(p) => Value::Param {
                    path: format!("{path}.{}", name.name),
                    shape: p.shape.clone(),
                    adapter_members: None,
                },
                None => {
                    let help = did_you_mean(&name.name, ms.keys().map(String::as_str));
                    let d = Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        &f.source,
                        name.span,
                        format!("the adapter on `{path}` has no member `{}`", name.name),
                        "no such member",
                    )
                    .with_help_opt(help);
                    self.report(d);
                    Value::Unknown
                }
            },
            other => {
                let d = Diagnostic::error(
                    codes::UNKNOWN_FIELD,
                    &f.source,
                    name.span,
                    format!("{} has no fields", other.describe()),
                    format!("`.{}` on {}", name.name, other.describe()),
                );
                self.report(d);
                Value::Unknown
            }
        }
    }

    /// Calls a value with evaluated arguments.
    pub fn call(&mut self, f: &mut Frame, callee: Value, callee_span: Span, args: &[ArgVal], span: Span) -> Value {
        match callee {
            Value::Unknown => Value::Unknown,
            Value::Callable(Callee::Decl(id)) | Value::Fn(Callee::Decl(id)) => {
                super::apply::call_decl(self, f, id, args, callee_span, span)
            }
            Value::Callable(Callee::Builtin(name)) | Value::Fn(Callee::Builtin(name)) => {
                super::builtins::call(self, f, name, args, span)
            }
            Value::Fn(Callee::Param(_)) => Value::Unknown,
            Value::Rule(r) => super::apply::apply_rule(self, f, &r, args, span, None),
            // A schedule evaluated at another step: `b(step - at)`.
            Value::Schedule(_) => {
                match args {
                    [a] if a.name.is_none() && matches!(a.value, Value::Int(_) | Value::Unknown) => {}
                    _ => self.err(
                        f,
                        codes::TYPE_MISMATCH,
                        span,
                        "a schedule is evaluated at one step: `sched(step - 10)`",
                        "expected one int",
                    ),
                }
                Value::Float(None)
            }
            Value::Init(i) => super::apply::apply_init(self, f, &i, args, span),
            Value::Model(m) => super::apply::call_forward(self, f, &m, args, span),
            other => {
                let d = Diagnostic::error(
                    codes::NOT_CALLABLE,
                    &f.source,
                    callee_span,
                    format!("{} cannot be called", other.describe()),
                    "not callable",
                );
                self.report(d);
                Value::Unknown
            }
        }
    }
}

fn fold(op: BinOp, x: f64, y: f64) -> Value {
    match op {
        BinOp::Add => Value::Float(Some(x + y)),
        BinOp::Sub => Value::Float(Some(x - y)),
        BinOp::Mul => Value::Float(Some(x * y)),
        BinOp::Div => Value::Float(Some(x / y)),
        BinOp::Pow => Value::Float(Some(x.powf(y))),
        BinOp::Eq => Value::Bool(Some(x == y)),
        BinOp::Ne => Value::Bool(Some(x != y)),
        BinOp::Lt => Value::Bool(Some(x < y)),
        BinOp::Le => Value::Bool(Some(x <= y)),
        BinOp::Gt => Value::Bool(Some(x > y)),
        BinOp::Ge => Value::Bool(Some(x >= y)),
        BinOp::And | BinOp::Or | BinOp::MatMul => Value::Unknown,
    }
}

fn slice_len(dim: &Dim, lo: Option<&Expr>, hi: Option<&Expr>, step: Option<&Expr>) -> Dim {
    let lit = |e: Option<&Expr>| match e.map(|e| &e.kind) {
        None => Some(None),
        Some(ExprKind::Int(n)) => Some(Some(*n)),
        Some(ExprKind::Unary { op: UnaryOp::Neg, operand }) => match operand.kind {
            ExprKind::Int(n) => Some(Some(-n)),
            _ => None,
        },
        _ => None,
    };
    let (Some(lo), Some(hi), Some(step)) = (lit(lo), lit(hi), lit(step)) else {
        return Dim::Any;
    };
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Dim::Any;
    }
    match (dim, lo, hi) {
        (_, None, None) if step == 1 => dim.clone(),
        (Dim::Known(n), lo, hi) => {
            let clamp = |v: i64| if v < 0 { (n + v).max(0) } else { v.min(*n) };
            let (a, b) = (clamp(lo.unwrap_or(0)), clamp(hi.unwrap_or(*n)));
            Dim::Known(if b > a { (b - a + step - 1) / step } else { 0 })
        }
        (_, Some(0) | None, Some(h)) if h >= 0 && step == 1 => Dim::Known(h),
        _ => Dim::Any,
    }
}
