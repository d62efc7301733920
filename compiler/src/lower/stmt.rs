//! Bodies and statements during lowering: applying a rule (a new instance with its own state
//! slots, step and fresh flag), inlining functions, schedules and inits, unrolling `repeat` and
//! `for`, and runtime `if`, whose branches are both lowered with the variables and states they
//! assign merged by `Select` (rule applications inside a branch are guarded by its condition).

use super::{error, Applied, Binding, Frame, Instance, LResult, Lowerer, Lv, RuleVal, UNSUPPORTED};
use crate::diag::codes;
use crate::ir::{Binary, NodeId, Op, Unary};
use crate::syntax::ast::*;

impl Lowerer<'_> {
    /// Applies a rule value to a tensor: lowers its body as a new instance.
    pub(crate) fn apply_rule(&mut self, f: &mut Frame, rule: &Lv, x: Lv, span: Span) -> LResult<Lv> {
        let rule = match self.as_value(rule.clone()) {
            Lv::Rule(r) => r,
            other => {
                return Err(error(
                    f,
                    span,
                    codes::TYPE_MISMATCH,
                    format!("expected a rule, found {}", super::expr::kind(&other)),
                ))
            }
        };
        let x = self.tensor(f, x, span)?;
        let applied = match &*rule {
            RuleVal::Partition { matrices, vectors } => {
                let chosen = if self.g.shape(x).len() >= 2 { matrices.clone() } else { vectors.clone() };
                return self.apply_rule(f, &chosen, Lv::T(x), span);
            }
            RuleVal::Mask { inner, paths } | RuleVal::Route { paths, then: inner, .. } => {
                let Some(path) = self.path.clone() else {
                    return Err(error(
                        f,
                        span,
                        UNSUPPORTED,
                        "this rule routes by parameter path, but the parameters have no names here",
                    ));
                };
                let hit = paths.iter().any(|p| super::path_matches(p, &path));
                return match (&*rule, hit) {
                    (_, true) => self.apply_rule(f, inner, Lv::T(x), span),
                    (RuleVal::Route { otherwise, .. }, false) => self.apply_rule(f, otherwise, Lv::T(x), span),
                    _ => Ok(Lv::T(x)),
                };
            }
            RuleVal::Rebase { inner, t, at, axis } => {
                self.rebases.push(super::BasisChange { t: *t, at: *at, axis: *axis });
                let out = self.apply_rule(f, inner, Lv::T(x), span);
                self.rebases.pop();
                return out;
            }
            RuleVal::Decl(a) => a.clone(),
        };
        self.depth += 1;
        if self.depth > 64 {
            return Err(error(f, span, codes::RECURSION, "rules nested more than 64 deep"));
        }
        let prog = self.prog;
        let decl = prog.decl(applied.decl);
        let Some(parent) = f.inst.as_mut() else {
            return Err(error(f, span, UNSUPPORTED, "a rule can only be applied inside a rule"));
        };
        let path = format!(
            "{}{}{}:{}",
            parent.path,
            if parent.path.is_empty() { "" } else { "/" },
            parent.calls,
            decl.name.name
        );
        parent.calls += 1;
        let parent = parent.clone();
        let mut guard = parent.guard;
        for &c in &f.conds {
            guard = Some(match guard {
                Some(g) => self.and(g, c),
                None => c,
            });
        }
        let (step, fresh) = match f.reset {
            Some(period) => {
                // Reset at every multiple of `period` of the caller's step: the state starts
                // again and the step counts from 1 (so it is n, then n mod period + 1).
                let n = f.step;
                let p = self.constant(period as f64);
                let q = self.node(Op::Binary(Binary::Div, n, p), Vec::new());
                let q = self.node(Op::Unary(Unary::Floor, q), Vec::new());
                let pq = self.node(Op::Binary(Binary::Mul, p, q), Vec::new());
                let rem = self.node(Op::Binary(Binary::Sub, n, pq), Vec::new());
                let zero = self.constant(0.0);
                let at_reset = self.node(Op::Binary(Binary::Eq, rem, zero), Vec::new());
                let one = self.constant(1.0);
                let after = self.node(Op::Binary(Binary::Add, rem, one), Vec::new());
                let before = self.node(Op::Binary(Binary::Lt, n, p), Vec::new());
                let step = self.node(Op::Select(before, n, after), Vec::new());
                let fresh = self.node(Op::Binary(Binary::Or, parent.fresh, at_reset), Vec::new());
                (step, fresh)
            }
            None => (f.step, parent.fresh),
        };
        let inst = Instance { path, step, fresh, guard, calls: 0 };
        let mut inner = Frame { inst: Some(inst), step, ..self.enter(f, &applied, span)? };
        inner.step = step;
        for (i, input) in decl.inputs.iter().enumerate() {
            let v = if i == 0 { x } else { return Err(error(f, span, UNSUPPORTED, "rules with several inputs")) };
            if let Some(shape) = &input.shape {
                self.bind_shape(&mut inner, shape, v, span)?;
            }
            inner.bind(&input.name.name, Binding { value: Lv::T(v), mutable: false, slot: None });
        }
        let out = self.body_value(&mut inner, &decl.body)?;
        self.flush_states(&inner);
        self.depth -= 1;
        Ok(out)
    }

    /// Writes the final value of every state of a rule instance.
    fn flush_states(&mut self, f: &Frame) {
        let Some(inst) = &f.inst else { return };
        let inst = inst.clone();
        for scope in &f.scopes {
            for (_, b) in scope {
                if let (Some(slot), Lv::T(id)) = (b.slot, &b.value) {
                    self.write_state(&inst, slot, *id);
                }
            }
        }
    }

    pub(crate) fn bind_shape(
        &mut self,
        f: &mut Frame,
        shape: &crate::syntax::ast::Shape,
        x: NodeId,
        span: Span,
    ) -> LResult<()> {
        let dims = self.g.shape(x).to_vec();
        let fixed = shape.dims.iter().filter(|d| matches!(d, crate::syntax::ast::Dim::Expr(_))).count();
        let rest = dims
            .len()
            .checked_sub(fixed)
            .ok_or_else(|| error(f, span, codes::RANK_MISMATCH, "the tensor has too few dimensions"))?;
        let mut k = 0;
        for d in &shape.dims {
            match d {
                crate::syntax::ast::Dim::Rest(n) => {
                    let list = dims[k..k + rest].iter().map(|&s| Lv::Int(s as i64)).collect();
                    f.bind(&n.name, Binding { value: Lv::List(list), mutable: false, slot: None });
                    k += rest;
                }
                crate::syntax::ast::Dim::Expr(e) => {
                    if let ExprKind::Name(n) = &e.kind {
                        if f.get(n).is_none() {
                            f.bind(n, Binding { value: Lv::Int(dims[k] as i64), mutable: false, slot: None });
                        }
                    }
                    k += 1;
                }
            }
        }
        Ok(())
    }

    /// Inlines a function.
    pub(crate) fn inline_fn(&mut self, f: &Frame, applied: &Applied, span: Span) -> LResult<Lv> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(error(f, span, codes::RECURSION, "functions nested more than 64 deep"));
        }
        let mut inner = self.enter(f, applied, span)?;
        let v = self.body_value(&mut inner, &self.prog.decl(applied.decl).body)?;
        self.depth -= 1;
        Ok(v)
    }

    /// Evaluates a schedule at a step.
    pub(crate) fn schedule_at(&mut self, f: &Frame, s: &Applied, at: NodeId, span: Span) -> LResult<Lv> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(error(f, span, codes::RECURSION, "schedules nested more than 64 deep"));
        }
        let mut inner = self.enter(f, s, span)?;
        inner.step = at;
        let v = self.body_value(&mut inner, &self.prog.decl(s.decl).body)?;
        self.depth -= 1;
        Ok(v)
    }

    /// The tensor an init produces for a shape.
    pub(crate) fn init_tensor(&mut self, f: &Frame, i: &Applied, dims: Vec<usize>, span: Span) -> LResult<Lv> {
        let decl = self.prog.decl(i.decl);
        let mut inner = self.enter(f, i, span)?;
        if let Some(shape) = &decl.shape {
            let probe = self.node(Op::Fill(0.0), dims.clone());
            self.bind_shape(&mut inner, shape, probe, span)?;
        }
        let v = self.body_value(&mut inner, &decl.body)?;
        let t = self.tensor(&inner, v, span)?;
        Ok(Lv::T(self.expand_to(t, &dims)))
    }

    /// The value of a body: its `= expr`, or its statements up to `return` (or a final expression).
    pub(crate) fn body_value(&mut self, f: &mut Frame, body: &Body) -> LResult<Lv> {
        match body {
            Body::Expr(e) => self.expr(f, e),
            Body::Block(b) => {
                for s in &b.stmts {
                    if let StmtKind::Return { value, modifiers } = &s.kind {
                        f.reset = reset_period(self, f, modifiers)?;
                        let v = self.expr(f, value)?;
                        f.reset = None;
                        return Ok(v);
                    }
                    self.stmt(f, s)?;
                }
                match &b.value {
                    Some(v) => self.expr(f, v),
                    None => Err(error(f, b.span, codes::MISSING_RETURN, "this body produces no value")),
                }
            }
        }
    }

    /// A block used as a value.
    pub(crate) fn block_value(&mut self, f: &mut Frame, b: &Block) -> LResult<Lv> {
        f.scopes.push(Vec::new());
        for s in &b.stmts {
            self.stmt(f, s)?;
        }
        let v = match &b.value {
            Some(e) => self.expr(f, e)?,
            None => return Err(error(f, b.span, codes::BRANCH_MISMATCH, "this block has no value")),
        };
        self.pop_scope(f);
        Ok(v)
    }

    fn pop_scope(&mut self, f: &mut Frame) {
        // States live in the rule body's outermost scope, which is never popped here.
        f.scopes.pop();
    }

    fn stmt(&mut self, f: &mut Frame, s: &Stmt) -> LResult<()> {
        match &s.kind {
            StmtKind::Let { pattern, value, modifiers } => {
                f.reset = reset_period(self, f, modifiers)?;
                let v = self.expr(f, value)?;
                f.reset = None;
                self.bind_pattern(f, pattern, v)
            }
            StmtKind::Var { name, value } => {
                let v = self.expr(f, value)?;
                f.bind(&name.name, Binding { value: v, mutable: true, slot: None });
                Ok(())
            }
            StmtKind::State { name, value, modifiers } => self.state(f, name, value, modifiers, s.span),
            StmtKind::Assign { place, op, value, .. } => {
                let v = self.expr(f, value)?;
                self.assign(f, place, *op, v, s.span)
            }
            StmtKind::Repeat { count, counter, body } => {
                let n = self.expr(f, count)?;
                let n = Self::known(&n)
                    .ok_or_else(|| error(f, count.span, UNSUPPORTED, "a repeat count must be known before running"))?;
                for i in 0..(n.max(0.0) as i64) {
                    f.scopes.push(Vec::new());
                    if let Some(c) = counter {
                        f.bind(&c.name, Binding { value: Lv::Int(i), mutable: false, slot: None });
                    }
                    self.stmts(f, body)?;
                    self.pop_scope(f);
                }
                Ok(())
            }
            StmtKind::For { var, items, body } => {
                let list = match self.expr(f, items)? {
                    Lv::List(v) | Lv::Tuple(v) => v,
                    _ => return Err(error(f, items.span, UNSUPPORTED, "`for` runs over a list known before running")),
                };
                for item in list {
                    f.scopes.push(Vec::new());
                    f.bind(&var.name, Binding { value: item, mutable: false, slot: None });
                    self.stmts(f, body)?;
                    self.pop_scope(f);
                }
                Ok(())
            }
            StmtKind::If(e) => self.if_stmt(f, e),
            StmtKind::Return { .. } => Err(error(f, s.span, codes::MISPLACED_STMT, "`return` ends a body")),
            _ => Err(error(f, s.span, UNSUPPORTED, "this statement does not belong in an update rule")),
        }
    }

    fn stmts(&mut self, f: &mut Frame, b: &Block) -> LResult<()> {
        for s in &b.stmts {
            self.stmt(f, s)?;
        }
        if let Some(v) = &b.value {
            self.expr(f, v)?;
        }
        Ok(())
    }

    fn state(&mut self, f: &mut Frame, name: &Ident, value: &Expr, modifiers: &[Modifier], span: Span) -> LResult<()> {
        let Some(inst) = f.inst.clone() else {
            return Err(error(f, span, codes::MISPLACED_STMT, "`state` belongs in a rule"));
        };
        if f.scopes.len() > 1 {
            return Err(error(f, span, UNSUPPORTED, "a `state` must be declared at the top of the rule's body"));
        }
        let init = self.expr(f, value)?;
        let init = self.tensor(f, init, value.span)?;
        let shape = self.g.shape(init).to_vec();
        let slot = self.slot(format!("{}/{}", inst.path, name.name), shape.clone());
        let mut fresh = inst.fresh;
        for m in modifiers {
            if m.kind == ModifierKind::Refresh {
                let p = self.expr(f, &m.value)?;
                let p = Self::known(&p).ok_or_else(|| {
                    error(f, m.value.span, UNSUPPORTED, "a refresh period must be known before running")
                })?;
                // Refreshed at steps 1, p + 1, 2p + 1, ...: (step - 1) mod p == 0.
                let one = self.constant(1.0);
                let s1 = self.node(Op::Binary(Binary::Sub, inst.step, one), Vec::new());
                let pc = self.constant(p);
                let q = self.node(Op::Binary(Binary::Div, s1, pc), Vec::new());
                let q = self.node(Op::Unary(Unary::Floor, q), Vec::new());
                let pq = self.node(Op::Binary(Binary::Mul, pc, q), Vec::new());
                let rem = self.node(Op::Binary(Binary::Sub, s1, pq), Vec::new());
                let zero = self.constant(0.0);
                let due = self.node(Op::Binary(Binary::Eq, rem, zero), Vec::new());
                fresh = self.node(Op::Binary(Binary::Or, fresh, due), Vec::new());
            }
        }
        let init = self.expand_to(init, &shape);
        let mut stored = self.node(Op::State(slot), shape.clone());
        if let Some(m) = modifiers.iter().find(|m| m.kind == ModifierKind::MovesLike) {
            stored = self.move_state(f, name, &m.value, stored)?;
        }
        let v = self.node(Op::Select(fresh, init, stored), shape);
        f.bind(&name.name, Binding { value: Lv::T(v), mutable: true, slot: Some(slot) });
        Ok(())
    }

    /// A state declared `moves like g` (or `g^2`) as stored, carried through the basis changes of
    /// the `rebase`s in force: at their steps, s becomes t s along the axis (t∘t s for `g^2`,
    /// the second moment of independent coordinates), otherwise it is kept bit for bit. A scalar
    /// state does not move (a sum of squares, say, is invariant).
    fn move_state(&mut self, f: &Frame, name: &Ident, like: &Expr, stored: NodeId) -> LResult<NodeId> {
        let squared = matches!(like.kind, ExprKind::Binary { op: BinOp::Pow, .. });
        let shape = self.g.shape(stored).to_vec();
        if shape.is_empty() {
            return Ok(stored);
        }
        let mut s = stored;
        for change in self.rebases.clone() {
            let n = self.g.shape(change.t)[0];
            if shape.get(change.axis) != Some(&n) || shape.len() > 2 {
                return Err(error(
                    f,
                    name.span,
                    codes::SHAPE_MISMATCH,
                    format!(
                        "state `{}` of shape {shape:?} cannot change basis along axis {} by a {n}x{n} matrix",
                        name.name, change.axis
                    ),
                ));
            }
            let t = if squared { self.node(Op::Binary(Binary::Mul, change.t, change.t), vec![n, n]) } else { change.t };
            let moved = if change.axis == 0 {
                self.node(Op::MatMul(t, s), shape.clone())
            } else {
                let tt = self.node(Op::Transpose(t), vec![n, n]);
                self.node(Op::MatMul(s, tt), shape.clone())
            };
            s = self.node(Op::Select(change.at, moved, s), shape.clone());
        }
        Ok(s)
    }

    fn assign(&mut self, f: &mut Frame, place: &Place, op: AssignOp, v: Lv, span: Span) -> LResult<()> {
        let name = &place.parts[0].name;
        let Some(b) = f.get(name).cloned() else {
            return Err(error(f, span, codes::UNKNOWN_NAME, format!("unknown name `{name}`")));
        };
        if !b.mutable {
            return Err(error(f, span, codes::NOT_ASSIGNABLE, format!("`{name}` cannot be assigned")));
        }
        let new = match op {
            AssignOp::Set => v,
            _ => {
                let bop = match op {
                    AssignOp::Add => BinOp::Add,
                    AssignOp::Sub => BinOp::Sub,
                    AssignOp::Mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                self.binary(f, bop, b.value.clone(), v, span)?
            }
        };
        let new = match (b.slot, &b.value) {
            // A state keeps its shape: a scalar update of a tensor state broadcasts.
            (Some(_), Lv::T(old)) => {
                let shape = self.g.shape(*old).to_vec();
                let t = self.tensor(f, new, span)?;
                if super::expr::broadcast(self.g.shape(t), &shape).as_deref() != Some(&shape[..]) {
                    return Err(error(
                        f,
                        span,
                        codes::SHAPE_MISMATCH,
                        format!("state `{name}` of shape {shape:?} is assigned {:?}", self.g.shape(t)),
                    ));
                }
                Lv::T(self.expand_to(t, &shape))
            }
            _ => new,
        };
        if let Some(slot) = f.get_mut(name) {
            slot.value = new;
        }
        Ok(())
    }

    pub(crate) fn bind_pattern(&mut self, f: &mut Frame, p: &Pattern, v: Lv) -> LResult<()> {
        match p {
            Pattern::Name(n) => {
                f.bind(&n.name, Binding { value: v, mutable: false, slot: None });
                Ok(())
            }
            Pattern::Tuple(items, span) => match v {
                Lv::Tuple(parts) | Lv::List(parts) if parts.len() == items.len() => {
                    for (it, part) in items.iter().zip(parts) {
                        self.bind_pattern(f, it, part)?;
                    }
                    Ok(())
                }
                _ => Err(error(f, *span, codes::TUPLE_ARITY, "the value does not have this many parts")),
            },
        }
    }

    fn if_stmt(&mut self, f: &mut Frame, e: &Expr) -> LResult<()> {
        let ExprKind::If { cond, then, otherwise } = &e.kind else {
            self.expr(f, e)?;
            return Ok(());
        };
        let c = self.expr(f, cond)?;
        if let Some(b) = Self::known(&c) {
            return if b != 0.0 {
                f.scopes.push(Vec::new());
                self.stmts(f, then)?;
                self.pop_scope(f);
                Ok(())
            } else {
                match otherwise.as_deref() {
                    Some(Expr { kind: ExprKind::Block(b), .. }) => {
                        f.scopes.push(Vec::new());
                        self.stmts(f, b)?;
                        self.pop_scope(f);
                        Ok(())
                    }
                    Some(nested) => self.if_stmt(f, nested),
                    None => Ok(()),
                }
            };
        }
        let c = self.tensor(f, c, cond.span)?;
        if !self.g.shape(c).is_empty() {
            return Err(error(f, cond.span, codes::NOT_BOOL, "a runtime `if` needs a single bool"));
        }
        self.branches(
            f,
            c,
            |lw, f| {
                f.scopes.push(Vec::new());
                lw.stmts(f, then)?;
                lw.pop_scope(f);
                Ok(Lv::Bool(true))
            },
            |lw, f| {
                match otherwise.as_deref() {
                    Some(Expr { kind: ExprKind::Block(b), .. }) => {
                        f.scopes.push(Vec::new());
                        lw.stmts(f, b)?;
                        lw.pop_scope(f);
                    }
                    Some(nested) => lw.if_stmt(f, nested)?,
                    None => {}
                }
                Ok(Lv::Bool(true))
            },
        )?;
        Ok(())
    }

    /// Lowers both branches of a runtime condition, each under its guard, and merges the
    /// variables and states they assign with `Select`. Returns the two branch values.
    pub(crate) fn branches(
        &mut self,
        f: &mut Frame,
        cond: NodeId,
        then: impl FnOnce(&mut Self, &mut Frame) -> LResult<Lv>,
        other: impl FnOnce(&mut Self, &mut Frame) -> LResult<Lv>,
    ) -> LResult<(Lv, Lv)> {
        let before = mutable_values(f);
        f.conds.push(cond);
        let a = then(self, f)?;
        f.conds.pop();
        let after_then = mutable_values(f);
        restore(f, &before);
        let not = self.node(Op::Unary(Unary::Not, cond), Vec::new());
        f.conds.push(not);
        let b = other(self, f)?;
        f.conds.pop();
        let after_else = mutable_values(f);
        for ((name, t), (_, e)) in after_then.iter().zip(&after_else) {
            let (Lv::T(x), Lv::T(y)) = (t, e) else {
                if !same(t, e) {
                    let span = Span::default();
                    let v = self.select(f, cond, t.clone(), e.clone(), span)?;
                    set(f, name, v);
                }
                continue;
            };
            if x != y {
                let v = self.select(f, cond, Lv::T(*x), Lv::T(*y), Span::default())?;
                set(f, name, v);
            }
        }
        Ok((a, b))
    }
}

fn reset_period(lw: &mut Lowerer<'_>, f: &mut Frame, modifiers: &[Modifier]) -> LResult<Option<i64>> {
    for m in modifiers {
        if m.kind == ModifierKind::Reset {
            let p = lw.expr(f, &m.value)?;
            let p = Lowerer::known(&p)
                .ok_or_else(|| error(f, m.value.span, UNSUPPORTED, "a reset period must be known before running"))?;
            return Ok(Some(p as i64));
        }
    }
    Ok(None)
}

/// Every assignable binding visible in the frame, innermost last, by (scope, index).
fn mutable_values(f: &Frame) -> Vec<((usize, usize), Lv)> {
    let mut out = Vec::new();
    for (i, scope) in f.scopes.iter().enumerate() {
        for (j, (_, b)) in scope.iter().enumerate() {
            if b.mutable {
                out.push(((i, j), b.value.clone()));
            }
        }
    }
    out
}

fn restore(f: &mut Frame, values: &[((usize, usize), Lv)]) {
    for ((i, j), v) in values {
        if let Some(scope) = f.scopes.get_mut(*i) {
            if let Some((_, b)) = scope.get_mut(*j) {
                b.value = v.clone();
            }
        }
    }
}

fn set(f: &mut Frame, at: &(usize, usize), v: Lv) {
    if let Some((_, b)) = f.scopes.get_mut(at.0).and_then(|s| s.get_mut(at.1)) {
        b.value = v;
    }
}

fn same(a: &Lv, b: &Lv) -> bool {
    match (a, b) {
        (Lv::T(x), Lv::T(y)) => x == y,
        _ => match (Lowerer::known(a), Lowerer::known(b)) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => false,
        },
    }
}
