//! Expressions during lowering: constants fold, runtime values become nodes with their
//! broadcast shapes, calls dispatch to declarations (rules and schedules become values, inits and
//! functions are inlined) or to builtins, and rule values are applied by lowering their bodies as
//! new instances.

use super::{error, Applied, Binding, FnVal, Frame, LResult, Lowerer, Lv, RuleVal, UNSUPPORTED};
use crate::diag::codes;
use crate::ir::{Binary, NodeId, Op, Unary};
use crate::syntax::ast::{BinOp, DeclKind, Expr, ExprKind, IndexItem, Span, UnaryOp};
use std::rc::Rc;

/// An evaluated call argument.
pub(crate) struct ArgLv {
    pub name: Option<String>,
    pub value: Lv,
    pub span: Span,
}

/// NumPy broadcasting of two shapes.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let y = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[n - 1 - i] = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return None;
        };
    }
    Some(out)
}

impl Lowerer<'_> {
    /// Lowers an expression.
    pub(crate) fn expr(&mut self, f: &mut Frame, e: &Expr) -> LResult<Lv> {
        Ok(match &e.kind {
            ExprKind::Int(n) => Lv::Int(*n),
            ExprKind::Float { value, .. } => Lv::Num(*value),
            ExprKind::Bool(b) => Lv::Bool(*b),
            ExprKind::Str(s) => Lv::Str(s.clone()),
            ExprKind::Name(n) => self.name(f, n, e.span)?,
            ExprKind::Paren(inner) => self.expr(f, inner)?,
            ExprKind::List(items) => Lv::List(items.iter().map(|i| self.expr(f, i)).collect::<LResult<_>>()?),
            ExprKind::Tuple(items) => Lv::Tuple(items.iter().map(|i| self.expr(f, i)).collect::<LResult<_>>()?),
            ExprKind::Unary { op, operand } => {
                let v = self.expr(f, operand)?;
                self.unary(f, *op, v, e.span)?
            }
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let a = self.expr(f, lhs)?;
                let b = self.expr(f, rhs)?;
                self.binary(f, *op, a, b, e.span)?
            }
            ExprKind::Transpose(inner) => {
                let v = self.expr(f, inner)?;
                let x = self.tensor(f, v, inner.span)?;
                let mut shape = self.g.shape(x).to_vec();
                let n = shape.len();
                if n < 2 {
                    return Err(error(f, e.span, codes::RANK_MISMATCH, "cannot transpose a tensor of rank below 2"));
                }
                shape.swap(n - 1, n - 2);
                Lv::T(self.node(Op::Transpose(x), shape))
            }
            ExprKind::Call { callee, args } => {
                let c = self.expr(f, callee)?;
                // These read their first argument with a tensor substituted: not evaluated here.
                if let Lv::Builtin(name @ ("grad" | "layer_inputs")) = c {
                    return self.calibration(f, name, args, e.span);
                }
                let args = args
                    .iter()
                    .map(|a| {
                        Ok(ArgLv {
                            name: a.name.as_ref().map(|n| n.name.clone()),
                            value: self.expr(f, &a.value)?,
                            span: a.span,
                        })
                    })
                    .collect::<LResult<Vec<_>>>()?;
                self.call(f, c, &args, e.span)?
            }
            ExprKind::Index { base, items } => {
                let b = self.expr(f, base)?;
                self.index(f, b, items, e.span)?
            }
            ExprKind::Field { .. } => self.field(f, e)?,
            ExprKind::If { cond, then, otherwise } => {
                let c = self.expr(f, cond)?;
                let Some(other) = otherwise else {
                    return Err(error(f, e.span, codes::BRANCH_MISMATCH, "an `if` used as a value needs an `else`"));
                };
                self.if_value(f, c, cond.span, then, other)?
            }
            ExprKind::Block(b) => self.block_value(f, b)?,
        })
    }

    fn name(&mut self, f: &mut Frame, n: &str, span: Span) -> LResult<Lv> {
        if let Some(b) = f.get(n) {
            return Ok(b.value.clone());
        }
        match n {
            "step" => return Ok(Lv::T(f.step)),
            "param" if f.inst.is_some() => {
                let shape = self.g.inputs[0].clone();
                return Ok(Lv::T(self.node(Op::Param, shape)));
            }
            "pi" => return Ok(Lv::Num(std::f64::consts::PI)),
            "inf" => return Ok(Lv::Num(f64::INFINITY)),
            _ => {}
        }
        if let Some(id) = self.prog.lookup(f.unit, n) {
            return Ok(Lv::Decl(id));
        }
        if let Some(b) = crate::check::builtin_names().iter().find(|b| **b == n) {
            return Ok(Lv::Builtin(b));
        }
        let e = error(f, span, codes::UNKNOWN_NAME, format!("unknown name `{n}`"));
        // The checker knew it: data drawn fresh every step, which a value computed at
        // initialization cannot read.
        Err(if matches!(self.vars.mode, super::model::VarMode::Init) {
            Box::new((*e).with_help(
                "data drawn `fresh every step` does not exist at initialization: a value computed once \
                 (a `let`, an init, `grad(f, p)`) draws a batch of its own, e.g. `let xc = gaussian([64, d])`",
            ))
        } else {
            e
        })
    }

    /// The node of a numeric value: constants become constant nodes, schedules are evaluated
    /// at the frame's step.
    pub(crate) fn tensor(&mut self, f: &Frame, v: Lv, span: Span) -> LResult<NodeId> {
        match v {
            Lv::T(id) => Ok(id),
            Lv::Var(i) => Ok(self.var_node(i)),
            Lv::Num(x) => Ok(self.constant(x)),
            Lv::Int(n) => Ok(self.constant(n as f64)),
            Lv::Bool(b) => Ok(self.constant(if b { 1.0 } else { 0.0 })),
            Lv::Sched(s) => {
                let at = f.step;
                let v = self.schedule_at(f, &s, at, span)?;
                self.tensor(f, v, span)
            }
            other => Err(error(
                f,
                span,
                codes::TYPE_MISMATCH,
                format!("expected a number or a tensor, found {}", kind(&other)),
            )),
        }
    }

    /// A number known now, if the value is one.
    pub(crate) fn known(v: &Lv) -> Option<f64> {
        match v {
            Lv::Num(x) => Some(*x),
            Lv::Int(n) => Some(*n as f64),
            Lv::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    fn unary(&mut self, f: &Frame, op: UnaryOp, v: Lv, span: Span) -> LResult<Lv> {
        Ok(match (op, &v) {
            (UnaryOp::Neg, Lv::Int(n)) => Lv::Int(-n),
            (UnaryOp::Neg, Lv::Num(x)) => Lv::Num(-x),
            (UnaryOp::Not, Lv::Bool(b)) => Lv::Bool(!b),
            _ => {
                let x = self.tensor(f, v, span)?;
                let shape = self.g.shape(x).to_vec();
                let u = if op == UnaryOp::Neg { Unary::Neg } else { Unary::Not };
                Lv::T(self.node(Op::Unary(u, x), shape))
            }
        })
    }

    /// A binary operation: folded when both sides are known, a node otherwise.
    pub(crate) fn binary(&mut self, f: &Frame, op: BinOp, a: Lv, b: Lv, span: Span) -> LResult<Lv> {
        if op == BinOp::MatMul {
            let (x, y) = (self.tensor(f, a, span)?, self.tensor(f, b, span)?);
            return self.matmul(f, x, y, span).map(Lv::T);
        }
        if let (Lv::Str(x), Lv::Str(y)) = (&a, &b) {
            return match op {
                BinOp::Eq => Ok(Lv::Bool(x == y)),
                BinOp::Ne => Ok(Lv::Bool(x != y)),
                _ => Err(error(f, span, codes::BAD_OPERAND, "strings only compare with `==` and `!=`")),
            };
        }
        if let (Some(x), Some(y)) = (Self::known(&a), Self::known(&b)) {
            let ints = matches!((&a, &b), (Lv::Int(_), Lv::Int(_)));
            return Ok(fold(op, x, y, ints));
        }
        let (x, y) = (self.tensor(f, a, span)?, self.tensor(f, b, span)?);
        let bop = match op {
            BinOp::Or => Binary::Or,
            BinOp::And => Binary::And,
            BinOp::Eq => Binary::Eq,
            BinOp::Ne => Binary::Ne,
            BinOp::Lt => Binary::Lt,
            BinOp::Le => Binary::Le,
            BinOp::Gt => Binary::Gt,
            BinOp::Ge => Binary::Ge,
            BinOp::Add => Binary::Add,
            BinOp::Sub => Binary::Sub,
            BinOp::Mul => Binary::Mul,
            BinOp::Div => Binary::Div,
            BinOp::Pow => Binary::Pow,
            BinOp::MatMul => unreachable!("handled above"),
        };
        self.elementwise(f, bop, x, y, span).map(Lv::T)
    }

    /// A broadcasting elementwise node.
    pub(crate) fn elementwise(&mut self, f: &Frame, op: Binary, x: NodeId, y: NodeId, span: Span) -> LResult<NodeId> {
        let shape = broadcast(self.g.shape(x), self.g.shape(y)).ok_or_else(|| {
            error(
                f,
                span,
                codes::BROADCAST_SHAPE,
                format!("shapes {:?} and {:?} cannot be broadcast together", self.g.shape(x), self.g.shape(y)),
            )
        })?;
        Ok(self.node(Op::Binary(op, x, y), shape))
    }

    pub(crate) fn matmul(&mut self, f: &Frame, x: NodeId, y: NodeId, span: Span) -> LResult<NodeId> {
        let (a, b) = (self.g.shape(x).to_vec(), self.g.shape(y).to_vec());
        let bad = || error(f, span, codes::MATMUL_SHAPE, format!("matrix product of {a:?} and {b:?}"));
        if a.is_empty() || b.is_empty() {
            return Err(bad());
        }
        let k1 = a[a.len() - 1];
        let k2 = if b.len() == 1 { b[0] } else { b[b.len() - 2] };
        if k1 != k2 {
            return Err(bad());
        }
        let mut out = broadcast(&a[..a.len().saturating_sub(2)], &b[..b.len().saturating_sub(2)]).ok_or_else(bad)?;
        if a.len() >= 2 {
            out.push(a[a.len() - 2]);
        }
        if b.len() >= 2 {
            out.push(b[b.len() - 1]);
        }
        Ok(self.node(Op::MatMul(x, y), out))
    }

    fn index(&mut self, f: &mut Frame, base: Lv, items: &[IndexItem], span: Span) -> LResult<Lv> {
        let ints: Vec<Option<Lv>> = items
            .iter()
            .map(|it| match it {
                IndexItem::At(e) => self.expr(f, e).map(Some),
                _ => Ok(None),
            })
            .collect::<LResult<_>>()?;
        if let (Lv::List(list) | Lv::Tuple(list), [IndexItem::Slice { lo, hi, step, .. }]) = (&base, items) {
            let n = list.len() as i64;
            let mut bound = |e: &Option<Expr>, dflt: i64| -> LResult<i64> {
                let Some(e) = e else { return Ok(dflt) };
                let v = self.expr(f, e)?;
                let x = Self::known(&v)
                    .ok_or_else(|| error(f, e.span, UNSUPPORTED, "list slice bounds must be known before running"))?;
                let x = x as i64;
                Ok(if x < 0 { (n + x).max(0) } else { x.min(n) })
            };
            let (a, b, s) = (bound(lo, 0)?, bound(hi, n)?, bound(step, 1)?);
            if s <= 0 {
                return Err(error(f, span, codes::OUT_OF_BOUNDS, "a slice step must be positive"));
            }
            let picked = (a..b.max(a)).step_by(s as usize).map(|i| list[i as usize].clone()).collect();
            return Ok(Lv::List(picked));
        }
        if let Lv::List(list) | Lv::Tuple(list) = &base {
            let Some(Some(i)) = ints.first().map(|v| v.as_ref().and_then(Self::known)) else {
                return Err(error(f, span, UNSUPPORTED, "a list is indexed by a number known before running"));
            };
            let n = list.len() as i64;
            let i = if i < 0.0 { n + i as i64 } else { i as i64 };
            return list
                .get(usize::try_from(i).unwrap_or(usize::MAX))
                .cloned()
                .ok_or_else(|| error(f, span, codes::OUT_OF_BOUNDS, format!("index {i} outside a list of {n}")));
        }
        let x = self.tensor(f, base, span)?;
        let shape = self.g.shape(x).to_vec();
        let mut ranges = Vec::new();
        let mut drop = Vec::new();
        let mut out = Vec::new();
        let mut new_axes = Vec::new();
        let mut k = 0;
        for (it, v) in items.iter().zip(&ints) {
            match it {
                IndexItem::NewAxis(_) => new_axes.push(out.len()),
                IndexItem::At(_) => {
                    let n =
                        *shape.get(k).ok_or_else(|| error(f, span, codes::OUT_OF_BOUNDS, "too many indices"))? as i64;
                    let i = v
                        .as_ref()
                        .and_then(Self::known)
                        .ok_or_else(|| error(f, span, UNSUPPORTED, "an index must be known before running"))?
                        as i64;
                    let i = if i < 0 { n + i } else { i };
                    if i < 0 || i >= n {
                        return Err(error(
                            f,
                            span,
                            codes::OUT_OF_BOUNDS,
                            format!("index outside a dimension of size {n}"),
                        ));
                    }
                    ranges.push((i as usize, 1));
                    drop.push(k);
                    k += 1;
                }
                IndexItem::Slice { lo, hi, step, .. } => {
                    let n =
                        *shape.get(k).ok_or_else(|| error(f, span, codes::OUT_OF_BOUNDS, "too many indices"))? as i64;
                    let mut get = |e: &Option<Expr>, dflt: i64| -> LResult<i64> {
                        match e {
                            None => Ok(dflt),
                            Some(e) => {
                                let v = self.expr(f, e)?;
                                Self::known(&v).map(|x| x as i64).ok_or_else(|| {
                                    error(f, e.span, UNSUPPORTED, "slice bounds must be known before running")
                                })
                            }
                        }
                    };
                    let st = get(step, 1)?;
                    if st <= 0 {
                        return Err(error(f, span, codes::OUT_OF_BOUNDS, "a slice step must be positive"));
                    }
                    let clamp = |v: i64| if v < 0 { (n + v).max(0) } else { v.min(n) };
                    let (a, b) = (clamp(get(lo, 0)?), clamp(get(hi, n)?));
                    let count = if b > a { (b - a + st - 1) / st } else { 0 };
                    ranges.push((a as usize, st as usize));
                    out.push(count as usize);
                    k += 1;
                }
            }
        }
        for &n in &shape[k..] {
            ranges.push((0, 1));
            out.push(n);
        }
        let mut id = self.node(Op::Slice { arg: x, ranges, drop }, out.clone());
        if !new_axes.is_empty() {
            for (shift, &at) in new_axes.iter().enumerate() {
                out.insert(at + shift, 1);
            }
            id = self.node(Op::Reshape(id), out);
        }
        Ok(Lv::T(id))
    }

    /// A runtime or known `if`.
    fn if_value(
        &mut self,
        f: &mut Frame,
        c: Lv,
        cspan: Span,
        then: &crate::syntax::ast::Block,
        other: &Expr,
    ) -> LResult<Lv> {
        if let Some(b) = Self::known(&c) {
            return if b != 0.0 { self.block_value(f, then) } else { self.expr(f, other) };
        }
        let cond = self.tensor(f, c, cspan)?;
        if !self.g.shape(cond).is_empty() {
            return Err(error(
                f,
                cspan,
                codes::NOT_BOOL,
                "a runtime `if` needs a single bool; use `where` elementwise",
            ));
        }
        let (a, b) = self.branches(f, cond, |lw, f| lw.block_value(f, then), |lw, f| lw.expr(f, other))?;
        self.select(f, cond, a, b, cspan)
    }

    /// `cond ? a : b` on values: known sides fold, numbers become a select node.
    pub(crate) fn select(&mut self, f: &Frame, cond: NodeId, a: Lv, b: Lv, span: Span) -> LResult<Lv> {
        match (&a, &b) {
            // A schedule in a branch is a number: `tensor` evaluates it at the current step.
            (Lv::Rule(_) | Lv::Init(_) | Lv::Fn(_) | Lv::Decl(_) | Lv::Model(_) | Lv::Adapter(_), _)
            | (_, Lv::Rule(_) | Lv::Init(_) | Lv::Fn(_) | Lv::Decl(_) | Lv::Model(_) | Lv::Adapter(_)) => {
                return Err(error(f, span, UNSUPPORTED, "choosing a rule or schedule at run time is not supported"))
            }
            _ => {}
        }
        let (x, y) = (self.tensor(f, a, span)?, self.tensor(f, b, span)?);
        let shape = broadcast(self.g.shape(x), self.g.shape(y))
            .ok_or_else(|| error(f, span, codes::BROADCAST_SHAPE, "the branches have shapes that do not broadcast"))?;
        Ok(Lv::T(self.node(Op::Select(cond, x, y), shape)))
    }

    /// Calls a value.
    pub(crate) fn call(&mut self, f: &mut Frame, callee: Lv, args: &[ArgLv], span: Span) -> LResult<Lv> {
        match callee {
            Lv::Decl(id) => self.call_decl(f, id, args, span),
            Lv::Builtin(name) | Lv::Fn(FnVal::Builtin(name)) => self.builtin(f, name, args, span),
            Lv::Fn(FnVal::Decl(id)) => self.call_decl(f, id, args, span),
            Lv::Rule(r) => {
                let [a] = args else {
                    return Err(error(f, span, codes::MISSING_ARG, "a rule is applied to one tensor"));
                };
                self.apply_rule(f, &Lv::Rule(r), a.value.clone(), span)
            }
            Lv::Sched(s) => {
                let [a] = args else {
                    return Err(error(f, span, codes::MISSING_ARG, "a schedule is evaluated at one step"));
                };
                let at = self.tensor(f, a.value.clone(), a.span)?;
                self.schedule_at(f, &s, at, span)
            }
            Lv::Model(m) => self.call_model(f, &m, args, span),
            Lv::Init(i) => {
                let [a] = args else {
                    return Err(error(f, span, codes::MISSING_ARG, "an init is applied to one shape"));
                };
                let dims = self.dims(f, &a.value, a.span)?;
                self.init_tensor(f, &i, dims, span)
            }
            other => Err(error(f, span, codes::NOT_CALLABLE, format!("{} cannot be called", kind(&other)))),
        }
    }

    fn call_decl(&mut self, f: &mut Frame, id: usize, args: &[ArgLv], span: Span) -> LResult<Lv> {
        let decl = self.prog.decl(id);
        match decl.kind {
            DeclKind::Rule => Ok(Lv::Rule(Rc::new(RuleVal::Decl(self.bind(f, id, args, span)?)))),
            DeclKind::Schedule => Ok(Lv::Sched(Rc::new(self.bind(f, id, args, span)?))),
            DeclKind::Init => {
                if let Some(first) = args.first().filter(|a| a.name.is_none() && matches!(a.value, Lv::List(_))) {
                    let dims = self.dims(f, &first.value, first.span)?;
                    let applied = self.bind(f, id, &args[1..], span)?;
                    return self.init_tensor(f, &applied, dims, span);
                }
                Ok(Lv::Init(Rc::new(self.bind(f, id, args, span)?)))
            }
            DeclKind::Function => {
                let applied = self.bind(f, id, args, span)?;
                self.inline_fn(f, &applied, span)
            }
            DeclKind::Model => {
                let applied = self.bind(f, id, args, span)?;
                self.instantiate_model(f, applied, span)
            }
            DeclKind::Adapter => Ok(Lv::Adapter(Rc::new(self.bind(f, id, args, span)?))),
            _ => Err(error(f, span, UNSUPPORTED, format!("a {} is not part of an update rule", decl.kind.keyword()))),
        }
    }

    /// Matches arguments to a declaration's hyperparameters by position and name.
    pub(crate) fn bind(&mut self, f: &Frame, id: usize, args: &[ArgLv], span: Span) -> LResult<Applied> {
        let decl = self.prog.decl(id);
        let params: Vec<&crate::syntax::ast::Param> = decl.params.iter().flatten().collect();
        let mut out: Vec<(String, Lv)> = Vec::new();
        let mut rest = Vec::new();
        let mut next = 0;
        for a in args {
            match &a.name {
                Some(n) => {
                    if !params.iter().any(|p| p.name.name == *n) {
                        return Err(error(
                            f,
                            a.span,
                            codes::UNKNOWN_KEYWORD,
                            format!("`{}` has no parameter `{n}`", decl.name.name),
                        ));
                    }
                    out.push((n.clone(), a.value.clone()));
                }
                None => {
                    while next < params.len() && out.iter().any(|(n, _)| *n == params[next].name.name) {
                        next += 1;
                    }
                    match params.get(next) {
                        Some(p) if p.variadic => rest.push(a.value.clone()),
                        Some(p) => {
                            out.push((p.name.name.clone(), a.value.clone()));
                            next += 1;
                        }
                        None => {
                            return Err(error(
                                f,
                                a.span,
                                codes::TOO_MANY_ARGS,
                                format!("too many arguments for `{}`", decl.name.name),
                            ))
                        }
                    }
                }
            }
        }
        if let Some(p) = params.iter().find(|p| p.variadic) {
            out.push((p.name.name.clone(), Lv::List(rest)));
        }
        let _ = span;
        Ok(Applied { decl: id, args: out })
    }

    /// Binds a declaration's hyperparameters in a new frame: given values, else defaults
    /// evaluated there in order. Bare declarations become values of their kind.
    pub(crate) fn enter(&mut self, f: &Frame, applied: &Applied, span: Span) -> LResult<Frame> {
        let prog = self.prog;
        let decl = prog.decl(applied.decl);
        let unit = prog.decls[applied.decl].unit;
        let mut g = Frame {
            unit,
            source: prog.units[unit].source.clone(),
            scopes: vec![Vec::new()],
            step: f.step,
            inst: f.inst.clone(),
            conds: Vec::new(),
            reset: None,
        };
        for p in decl.params.iter().flatten() {
            let v = match applied.args.iter().find(|(n, _)| *n == p.name.name) {
                Some((_, v)) => v.clone(),
                None => match &p.default {
                    Some(d) => self.expr(&mut g, d)?,
                    None => {
                        return Err(error(
                            f,
                            span,
                            codes::MISSING_ARG,
                            format!("`{}` needs `{}`", decl.name.name, p.name.name),
                        ))
                    }
                },
            };
            let v = self.as_value(v);
            g.bind(&p.name.name, Binding { value: v, mutable: false, slot: None });
        }
        Ok(g)
    }

    /// A bare declaration used as a value: a rule, schedule or init with default
    /// hyperparameters, or a function.
    pub(crate) fn as_value(&self, v: Lv) -> Lv {
        match v {
            Lv::Decl(id) => match self.prog.decl(id).kind {
                DeclKind::Rule => Lv::Rule(Rc::new(RuleVal::Decl(Applied { decl: id, args: Vec::new() }))),
                DeclKind::Schedule => Lv::Sched(Rc::new(Applied { decl: id, args: Vec::new() })),
                DeclKind::Init => Lv::Init(Rc::new(Applied { decl: id, args: Vec::new() })),
                DeclKind::Function => Lv::Fn(FnVal::Decl(id)),
                DeclKind::Adapter => Lv::Adapter(Rc::new(Applied { decl: id, args: Vec::new() })),
                _ => Lv::Decl(id),
            },
            Lv::Builtin(b) => Lv::Fn(FnVal::Builtin(b)),
            Lv::List(items) => Lv::List(items.into_iter().map(|i| self.as_value(i)).collect()),
            other => other,
        }
    }

    /// Sizes from a shape list.
    pub(crate) fn dims(&mut self, f: &Frame, v: &Lv, span: Span) -> LResult<Vec<usize>> {
        match v {
            Lv::List(items) => items
                .iter()
                .map(|i| match Self::known(i) {
                    Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(x as usize),
                    _ => Err(error(f, span, codes::LOWERING, "a shape is a list of sizes known before running")),
                })
                .collect(),
            _ => Err(error(f, span, codes::TYPE_MISMATCH, "expected a shape list like `[3, 4]`")),
        }
    }
}

fn fold(op: BinOp, x: f64, y: f64, ints: bool) -> Lv {
    let int_or = |v: f64| if ints && v.fract() == 0.0 && v.abs() < 9.0e15 { Lv::Int(v as i64) } else { Lv::Num(v) };
    match op {
        BinOp::Add => int_or(x + y),
        BinOp::Sub => int_or(x - y),
        BinOp::Mul => int_or(x * y),
        BinOp::Div => Lv::Num(x / y),
        BinOp::Pow => int_or(x.powf(y)),
        BinOp::Eq => Lv::Bool(x == y),
        BinOp::Ne => Lv::Bool(x != y),
        BinOp::Lt => Lv::Bool(x < y),
        BinOp::Le => Lv::Bool(x <= y),
        BinOp::Gt => Lv::Bool(x > y),
        BinOp::Ge => Lv::Bool(x >= y),
        BinOp::And => Lv::Bool(x != 0.0 && y != 0.0),
        BinOp::Or => Lv::Bool(x != 0.0 || y != 0.0),
        BinOp::MatMul => Lv::Num(f64::NAN),
    }
}

/// What kind of value, for messages.
pub(crate) fn kind(v: &Lv) -> &'static str {
    match v {
        Lv::Num(_) | Lv::Int(_) => "a number",
        Lv::Bool(_) => "a bool",
        Lv::Str(_) => "a string",
        Lv::T(_) => "a tensor",
        Lv::List(_) => "a list",
        Lv::Tuple(_) => "a tuple",
        Lv::Decl(_) => "a declaration",
        Lv::Builtin(_) => "a builtin",
        Lv::Rule(_) => "a rule",
        Lv::Sched(_) => "a schedule",
        Lv::Init(_) => "an init",
        Lv::Fn(_) => "a function",
        Lv::Adapter(_) => "an adapter",
        Lv::Model(_) => "a model",
        Lv::Var(_) => "a tensor",
    }
}
