//! Expressions: the abstract interpreter's core. A [`Frame`] is one body being checked (its
//! file, what kind of body it is, its local scopes); [`Checker::eval`] computes the abstract
//! [`Value`] of an expression, reporting unknown names, bad operands, shape mismatches and
//! constant faults, and folding constants so that sizes and hyperparameters stay known.
//! Calls are dispatched to declarations ([`super::body`]) or builtins ([`super::builtins`]).
//!
//! The rest of the interpreter is in submodules, each adding methods to [`Checker`]:
//! [`branches`] (blocks and `if`), [`operators`] (unary and binary operators, broadcasting,
//! constant folding) and [`access`] (indexing and fields).

mod access;
mod branches;
mod operators;

pub use super::frame::{ArgVal, Ctx, Frame, Local, LocalKind, Scope};
use super::shape::Dim;
use super::value::{Callee, DeclId, Value};
use super::Program;
use crate::diag::{codes, did_you_mean, Diagnostic};
use crate::syntax::ast::{Expr, ExprKind, Span};
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

    /// The value of a name: a local, a name the body's kind defines (`step`, `param`), a constant,
    /// a declaration or a builtin; reports an unknown name with the closest candidates.
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
