//! Building the AST: one walk over pest's parse tree, turning pairs into nodes with owned spans
//! (trimmed of the trivia pest consumes after optional tails), expressions through the shared
//! Pratt parser.

use super::ast::*;
use super::parse::{Rule, MAX_OPERATORS, PRATT};
use super::scan::comment_start;
use crate::diag::{codes, Diagnostic};
use crate::source::SourceFile;
use pest::iterators::{Pair, Pairs};
use std::sync::Arc;

/// Walks pest pairs into AST nodes.
pub(super) struct Builder<'s> {
    pub(super) source: &'s Arc<SourceFile>,
    /// Where the text being built starts in the file.
    pub(super) offset: usize,
}

/// The span of a pair without the whitespace and comments pest consumed after it while
/// trying an optional tail (`modifier*`, `("=" ~ expr)?`): labels then end at the last token.
/// `offset` is where the parsed text starts in the file (a chunk of a large file).
pub(super) fn span_of(pair: &Pair<'_, Rule>, offset: usize) -> Span {
    let s = pair.as_span();
    Span::new(offset + s.start(), offset + trim_trivia(pair.get_input(), s.start(), s.end()))
}

fn trim_trivia(text: &str, start: usize, mut end: usize) -> usize {
    loop {
        end = start + text[start..end].trim_end().len();
        let line_start = text[start..end].rfind('\n').map_or(start, |i| start + i + 1);
        match comment_start(&text[line_start..end]) {
            Some(c) => end = line_start + c,
            None => return end,
        }
    }
}

type PResult<T> = Result<T, Diagnostic>;

impl Builder<'_> {
    pub(super) fn file(&self, pair: Pair<'_, Rule>) -> PResult<File> {
        let mut items = Vec::new();
        for p in pair.into_inner() {
            if p.as_rule() == Rule::item {
                items.push(self.item(p)?);
            }
        }
        Ok(File { items })
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: span_of(&pair, self.offset) }
    }

    fn item(&self, pair: Pair<'_, Rule>) -> PResult<Item> {
        let mut docs = Vec::new();
        let mut decl_pair = None;
        for p in pair.into_inner() {
            if p.as_rule() == Rule::doc {
                let text = p.into_inner().next().map_or("", |t| t.as_str());
                docs.push(text.strip_prefix(' ').unwrap_or(text).trim_end().to_string());
            } else {
                decl_pair = Some(p);
            }
        }
        let p = decl_pair.expect("an item holds a declaration");
        let span = span_of(&p, self.offset);
        let rule = p.as_rule();
        let mut inner = p.into_inner();
        let _keyword = inner.next();
        if rule == Rule::import {
            let s = inner.next().expect("import has a path");
            let path_span = span_of(&s, self.offset);
            let path = self.string(s);
            return Ok(Item::Import(Import { docs, path, path_span, span }));
        }
        let kind = match rule {
            Rule::rule_def => DeclKind::Rule,
            Rule::schedule_def => DeclKind::Schedule,
            Rule::init_def => DeclKind::Init,
            Rule::adapter_def => DeclKind::Adapter,
            Rule::model_def => DeclKind::Model,
            Rule::fn_def => DeclKind::Function,
            _ => DeclKind::Experiment,
        };
        let name = self.ident(inner.next().expect("a declaration has a name"));
        let mut decl = Decl {
            docs,
            kind,
            name,
            params: None,
            inputs: Vec::new(),
            target: None,
            shape: None,
            body: Body::Block(Block { stmts: Vec::new(), value: None, span }),
            span,
        };
        for p in inner {
            match p.as_rule() {
                Rule::params => decl.params = Some(self.params(p)?),
                Rule::inputs => decl.inputs = self.inputs(p)?,
                Rule::ident => decl.target = Some(self.ident(p)),
                Rule::shape => decl.shape = Some(self.shape(p)?),
                Rule::body => decl.body = self.body(p)?,
                Rule::block => decl.body = Body::Block(self.block(p)?),
                _ => {}
            }
        }
        Ok(Item::Decl(decl))
    }

    fn params(&self, pair: Pair<'_, Rule>) -> PResult<Vec<Param>> {
        pair.into_inner().map(|p| self.param(p)).collect()
    }

    fn param(&self, pair: Pair<'_, Rule>) -> PResult<Param> {
        let span = span_of(&pair, self.offset);
        let mut inner = pair.into_inner().peekable();
        let variadic = inner.next_if(|p| p.as_rule() == Rule::variadic).is_some();
        let name = self.ident(inner.next().expect("a parameter has a name"));
        let mut param = Param { name, variadic, ty: None, range: None, default: None, span };
        for p in inner {
            match p.as_rule() {
                Rule::type_name => param.ty = Some(self.ident(p.into_inner().next().expect("type name"))),
                Rule::interval => param.range = Some(self.interval(p)?),
                Rule::expr => param.default = Some(self.expr(p)?),
                _ => {}
            }
        }
        Ok(param)
    }

    fn interval(&self, pair: Pair<'_, Rule>) -> PResult<Interval> {
        let span = span_of(&pair, self.offset);
        let mut inner = pair.into_inner();
        let lo_closed = inner.next().map(|p| p.as_str() == "[").unwrap_or(true);
        let lo = self.expr(inner.next().expect("lower bound"))?;
        let hi = self.expr(inner.next().expect("upper bound"))?;
        let hi_closed = inner.next().map(|p| p.as_str() == "]").unwrap_or(true);
        Ok(Interval { lo, hi, lo_closed, hi_closed, span })
    }

    fn inputs(&self, pair: Pair<'_, Rule>) -> PResult<Vec<Input>> {
        pair.into_inner()
            .map(|p| {
                let span = span_of(&p, self.offset);
                let mut inner = p.into_inner();
                let name = self.ident(inner.next().expect("input name"));
                let shape = inner.next().map(|s| self.shape(s)).transpose()?;
                Ok(Input { name, shape, span })
            })
            .collect()
    }

    fn shape(&self, pair: Pair<'_, Rule>) -> PResult<Shape> {
        let span = span_of(&pair, self.offset);
        let mut dims = Vec::new();
        for d in pair.into_inner() {
            let inner = d.into_inner().next().expect("a dim holds one node");
            dims.push(match inner.as_rule() {
                Rule::rest_dim => Dim::Rest(self.ident(inner.into_inner().next().expect("rest name"))),
                _ => Dim::Expr(self.expr(inner)?),
            });
        }
        Ok(Shape { dims, span })
    }

    fn body(&self, pair: Pair<'_, Rule>) -> PResult<Body> {
        let inner = pair.into_inner().next().expect("a body holds one node");
        match inner.as_rule() {
            Rule::expr_body => Ok(Body::Expr(self.expr(inner.into_inner().next().expect("body expr"))?)),
            _ => Ok(Body::Block(self.block(inner)?)),
        }
    }

    fn block(&self, pair: Pair<'_, Rule>) -> PResult<Block> {
        let span = span_of(&pair, self.offset);
        let mut stmts = Vec::new();
        let mut value = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::stmt => stmts.push(self.stmt(p)?),
                Rule::expr => value = Some(Box::new(self.expr(p)?)),
                _ => {}
            }
        }
        // A trailing `if ... else ...` parses as a statement; it is the block's value.
        let trailing_if_else = matches!(
            stmts.last(),
            Some(Stmt { kind: StmtKind::If(Expr { kind: ExprKind::If { otherwise: Some(_), .. }, .. }), .. })
        );
        if value.is_none() && trailing_if_else {
            if let Some(Stmt { kind: StmtKind::If(e), .. }) = stmts.pop() {
                value = Some(Box::new(e));
            }
        }
        Ok(Block { stmts, value, span })
    }

    fn modifiers<'i>(&self, pairs: impl Iterator<Item = Pair<'i, Rule>>) -> PResult<Vec<Modifier>> {
        let mut out = Vec::new();
        for m in pairs {
            let inner = m.into_inner().next().expect("modifier kind");
            let span = span_of(&inner, self.offset);
            let kind = match inner.as_rule() {
                Rule::refresh_every => ModifierKind::Refresh,
                Rule::reset_every => ModifierKind::Reset,
                _ => ModifierKind::MovesLike,
            };
            let value = inner.into_inner().find(|p| p.as_rule() == Rule::expr).expect("modifier operand");
            out.push(Modifier { kind, value: self.expr(value)?, span });
        }
        Ok(out)
    }

    fn stmt(&self, pair: Pair<'_, Rule>) -> PResult<Stmt> {
        let span = span_of(&pair, self.offset);
        let p = pair.into_inner().next().expect("a statement holds one node");
        let rule = p.as_rule();
        // Keywords are separate pairs; skip them so each arm sees only its operands.
        let mut inner = p.into_inner().filter(|q| !is_keyword(q.as_rule())).peekable();
        let kind = match rule {
            Rule::let_stmt => {
                let pattern = self.pattern(inner.next().expect("let pattern"));
                let value = self.expr(inner.next().expect("let value"))?;
                StmtKind::Let { pattern, value, modifiers: self.modifiers(inner)? }
            }
            Rule::var_stmt => {
                let name = self.ident(inner.next().expect("var name"));
                StmtKind::Var { name, value: self.expr(inner.next().expect("var value"))? }
            }
            Rule::state_stmt => {
                let name = self.ident(inner.next().expect("state name"));
                let value = self.expr(inner.next().expect("state value"))?;
                StmtKind::State { name, value, modifiers: self.modifiers(inner)? }
            }
            Rule::return_stmt => {
                let value = self.expr(inner.next().expect("return value"))?;
                StmtKind::Return { value, modifiers: self.modifiers(inner)? }
            }
            Rule::repeat_stmt => {
                let count = self.expr(inner.next().expect("repeat count"))?;
                let mut counter = None;
                let mut body = None;
                for q in inner {
                    match q.as_rule() {
                        Rule::ident => counter = Some(self.ident(q)),
                        _ => body = Some(self.block(q)?),
                    }
                }
                StmtKind::Repeat { count, counter, body: body.expect("repeat body") }
            }
            Rule::for_stmt => {
                let var = self.ident(inner.next().expect("for variable"));
                let items = self.expr(inner.next().expect("for items"))?;
                StmtKind::For { var, items, body: self.block(inner.next().expect("for body"))? }
            }
            Rule::if_stmt => StmtKind::If(self.if_expr(inner.next().expect("if expression"))?),
            Rule::assign_stmt => {
                let place = self.place(inner.next().expect("assign place"));
                let op = assign_op(inner.next().expect("assign op").as_str());
                let value = self.expr(inner.next().expect("assign value"))?;
                let clauses = inner.map(|c| self.clause(c)).collect::<PResult<_>>()?;
                StmtKind::Assign { place, op, value, clauses }
            }
            Rule::param_stmt => {
                let name = self.ident(inner.next().expect("param name"));
                let shape = self.shape(inner.next().expect("param shape"))?;
                StmtKind::Param { name, shape, init: self.expr(inner.next().expect("param init"))? }
            }
            Rule::frozen_stmt => {
                let name = self.ident(inner.next().expect("frozen name"));
                StmtKind::Frozen { name, value: self.expr(inner.next().expect("frozen value"))? }
            }
            Rule::weight_stmt => StmtKind::Weight { value: self.expr(inner.next().expect("weight value"))? },
            Rule::forward_stmt => {
                let inputs = self.inputs(inner.next().expect("forward inputs"))?;
                StmtKind::Forward { inputs, body: self.body(inner.next().expect("forward body"))? }
            }
            Rule::data_stmt => {
                let mut names = Vec::new();
                while inner.peek().is_some_and(|q| q.as_rule() == Rule::ident) {
                    names.push(self.ident(inner.next().expect("peeked")));
                }
                let source = self.expr(inner.next().expect("data source"))?;
                let mut options = Vec::new();
                for o in inner {
                    let o = o.into_inner().next().expect("data option kind");
                    let ospan = span_of(&o, self.offset);
                    let rule = o.as_rule();
                    let value = o.into_inner().find(|q| q.as_rule() == Rule::expr);
                    options.push(match (rule, value) {
                        (Rule::batch_option, Some(v)) => DataOption::Batch(self.expr(v)?),
                        (Rule::holdout_option, Some(v)) => DataOption::Holdout(self.expr(v)?),
                        _ => DataOption::FreshEveryStep(ospan),
                    });
                }
                StmtKind::Data { names, source, options }
            }
            Rule::optimize_stmt | Rule::init_stmt => {
                let mut paths = Vec::new();
                let mut value = None;
                for q in inner {
                    match q.as_rule() {
                        Rule::path => paths.push(self.path(q)),
                        _ => value = Some(self.expr(q)?),
                    }
                }
                let value = value.expect("optimize/init value");
                if rule == Rule::optimize_stmt {
                    StmtKind::Optimize { paths, rule: value }
                } else {
                    StmtKind::Init { paths, init: value }
                }
            }
            Rule::log_stmt => {
                let every = self.expr(inner.next().expect("log period"))?;
                let mut entries = Vec::new();
                for e in inner {
                    let espan = span_of(&e, self.offset);
                    let mut ei = e.into_inner();
                    let name = self.ident(ei.next().expect("entry name"));
                    let value = ei.next().map(|v| self.expr(v)).transpose()?;
                    entries.push(LogEntry { name, value, span: espan });
                }
                StmtKind::Log { every, entries }
            }
            Rule::checkpoint_stmt => StmtKind::Checkpoint { every: self.expr(inner.next().expect("period"))? },
            Rule::sweep_stmt => {
                let mut axes = Vec::new();
                for a in inner {
                    let aspan = span_of(&a, self.offset);
                    let mut ai = a.into_inner().filter(|q| !is_keyword(q.as_rule()));
                    let name = self.ident(ai.next().expect("axis name"));
                    let v = ai.next().expect("axis values");
                    let values = if v.as_rule() == Rule::range {
                        let mut r = v.into_inner();
                        let lo = self.expr(r.next().expect("range lo"))?;
                        let hi = self.expr(r.next().expect("range hi"))?;
                        SweepValues::Range(lo, hi)
                    } else {
                        SweepValues::List(self.expr(v)?)
                    };
                    axes.push(SweepAxis { name, values, span: aspan });
                }
                StmtKind::Sweep { axes }
            }
            other => unreachable!("statement rule {other:?} is not in the grammar's stmt alternatives"),
        };
        Ok(Stmt { kind, span })
    }

    fn pattern(&self, pair: Pair<'_, Rule>) -> Pattern {
        let inner = pair.into_inner().next().expect("a pattern holds one node");
        match inner.as_rule() {
            Rule::ident => Pattern::Name(self.ident(inner)),
            _ => {
                let span = span_of(&inner, self.offset);
                Pattern::Tuple(inner.into_inner().map(|p| self.pattern(p)).collect(), span)
            }
        }
    }

    fn place(&self, pair: Pair<'_, Rule>) -> Place {
        let span = span_of(&pair, self.offset);
        Place { parts: pair.into_inner().map(|p| self.ident(p)).collect(), span }
    }

    fn path(&self, pair: Pair<'_, Rule>) -> Path {
        let span = span_of(&pair, self.offset);
        let parts = pair
            .into_inner()
            .map(|part| {
                let p = part.into_inner().next().expect("path part");
                match p.as_rule() {
                    Rule::star => PathPart::Star(span_of(&p, self.offset)),
                    _ => PathPart::Name(self.ident(p)),
                }
            })
            .collect();
        Path { parts, span }
    }

    fn clause(&self, pair: Pair<'_, Rule>) -> PResult<Clause> {
        let c = pair.into_inner().next().expect("clause kind");
        let span = span_of(&c, self.offset);
        let rule = c.as_rule();
        let inner = c.into_inner().filter(|q| !is_keyword(q.as_rule()));
        if rule == Rule::with_clause {
            let mut edits = Vec::new();
            for e in inner {
                let espan = span_of(&e, self.offset);
                let mut ei = e.into_inner();
                let place = self.place(ei.next().expect("edit place"));
                let op = assign_op(ei.next().expect("edit op").as_str());
                let value = self.expr(ei.next().expect("edit value"))?;
                edits.push(Edit { place, op, value, span: espan });
            }
            Ok(Clause::With { edits, span })
        } else {
            let mut adapter = None;
            let mut targets = Vec::new();
            for q in inner {
                match q.as_rule() {
                    Rule::path => targets.push(self.path(q)),
                    _ => adapter = Some(self.expr(q)?),
                }
            }
            Ok(Clause::Adapted { adapter: adapter.expect("adapter expr"), targets, span })
        }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> String {
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn if_expr(&self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let span = span_of(&pair, self.offset);
        let mut inner = pair.into_inner().filter(|q| !is_keyword(q.as_rule()));
        let cond = Box::new(self.expr(inner.next().expect("if condition"))?);
        let then = self.block(inner.next().expect("then block"))?;
        let otherwise = match inner.next() {
            None => None,
            Some(p) if p.as_rule() == Rule::if_expr => Some(Box::new(self.if_expr(p)?)),
            Some(p) => {
                let b = self.block(p)?;
                Some(Box::new(Expr { span: b.span, kind: ExprKind::Block(b) }))
            }
        };
        Ok(Expr { kind: ExprKind::If { cond, then, otherwise }, span })
    }

    pub(super) fn expr(&self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        debug_assert_eq!(pair.as_rule(), Rule::expr);
        self.pratt(pair.into_inner())
    }

    fn pratt(&self, pairs: Pairs<'_, Rule>) -> PResult<Expr> {
        let ops = pairs.clone().filter(|p| !matches!(p.as_rule(), Rule::call | Rule::index | Rule::field)).count() / 2;
        if ops > MAX_OPERATORS {
            let first = pairs.clone().next().map_or(Span::default(), |p| span_of(&p, self.offset));
            return Err(Diagnostic::error(
                codes::SYNTAX,
                self.source,
                first,
                format!("expression with more than {MAX_OPERATORS} operators"),
                "this expression is too long",
            )
            .with_help("split it with `let` bindings"));
        }
        let this = self;
        PRATT
            .map_primary(|p| this.primary(p))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let op_span = span_of(&op, self.offset);
                let uop = if op.as_rule() == Rule::neg { UnaryOp::Neg } else { UnaryOp::Not };
                Ok(Expr { span: op_span.to(rhs.span), kind: ExprKind::Unary { op: uop, operand: Box::new(rhs) } })
            })
            .map_postfix(|lhs, op| {
                let lhs = lhs?;
                let op_span = span_of(&op, self.offset);
                let span = lhs.span.to(op_span);
                let kind = match op.as_rule() {
                    Rule::transpose => ExprKind::Transpose(Box::new(lhs)),
                    Rule::call => {
                        let args = op.into_inner().map(|a| this.arg(a)).collect::<PResult<_>>()?;
                        ExprKind::Call { callee: Box::new(lhs), args }
                    }
                    Rule::index => {
                        let items = op.into_inner().map(|i| this.index_item(i)).collect::<PResult<_>>()?;
                        ExprKind::Index { base: Box::new(lhs), items }
                    }
                    _ => {
                        let name = this.ident(op.into_inner().next().expect("field name"));
                        ExprKind::Field { base: Box::new(lhs), name }
                    }
                };
                Ok(Expr { kind, span })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let bop = match op.as_rule() {
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::matmul => BinOp::MatMul,
                    _ => BinOp::Pow,
                };
                Ok(Expr {
                    span: lhs.span.to(rhs.span),
                    kind: ExprKind::Binary {
                        op: bop,
                        op_span: span_of(&op, self.offset),
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                })
            })
            .parse(pairs)
    }

    fn arg(&self, pair: Pair<'_, Rule>) -> PResult<Arg> {
        let span = span_of(&pair, self.offset);
        let mut name = None;
        let mut value = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                _ => value = Some(self.expr(p)?),
            }
        }
        Ok(Arg { name, value: value.expect("argument value"), span })
    }

    fn index_item(&self, pair: Pair<'_, Rule>) -> PResult<IndexItem> {
        let inner = pair.into_inner().next().expect("index item kind");
        let span = span_of(&inner, self.offset);
        match inner.as_rule() {
            Rule::newaxis => Ok(IndexItem::NewAxis(span)),
            Rule::expr => Ok(IndexItem::At(self.expr(inner)?)),
            _ => {
                // A slice: up to three optional expressions; each colon moves to the next slot.
                let mut slots: [Option<Expr>; 3] = [None, None, None];
                let mut slot = 0;
                for e in inner.into_inner() {
                    if e.as_rule() == Rule::colon {
                        slot = (slot + 1).min(2);
                    } else {
                        slots[slot] = Some(self.expr(e)?);
                    }
                }
                let [lo, hi, step] = slots;
                Ok(IndexItem::Slice { lo, hi, step, span })
            }
        }
    }

    fn primary(&self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let span = span_of(&pair, self.offset);
        let kind = match pair.as_rule() {
            Rule::int => match pair.as_str().parse::<i64>() {
                Ok(v) => ExprKind::Int(v),
                Err(_) => {
                    return Err(Diagnostic::error(
                        codes::BAD_LITERAL,
                        self.source,
                        span,
                        "integer literal too large",
                        "does not fit in 64 bits",
                    )
                    .with_help("write it as a float, e.g. `1e20`"))
                }
            },
            Rule::float => {
                let text = pair.as_str().to_string();
                let value: f64 = text.parse().unwrap_or(f64::INFINITY);
                if !value.is_finite() {
                    return Err(Diagnostic::error(
                        codes::BAD_LITERAL,
                        self.source,
                        span,
                        "float literal out of range",
                        "not a finite 64-bit float",
                    ));
                }
                ExprKind::Float { value, text }
            }
            Rule::string => ExprKind::Str(self.string(pair)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident | Rule::name => ExprKind::Name(pair.as_str().to_string()),
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect::<PResult<_>>()?),
            Rule::paren => {
                let mut elems = Vec::new();
                let mut tuple = false;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::trailing_comma => tuple = true,
                        _ => elems.push(self.expr(p)?),
                    }
                }
                if elems.len() == 1 && !tuple {
                    ExprKind::Paren(Box::new(elems.pop().expect("one element")))
                } else {
                    ExprKind::Tuple(elems)
                }
            }
            Rule::if_expr => return self.if_expr(pair),
            other => unreachable!("primary rule {other:?} is not in the grammar's primary alternatives"),
        };
        Ok(Expr { kind, span })
    }
}

fn assign_op(text: &str) -> AssignOp {
    match text.trim() {
        "+=" => AssignOp::Add,
        "-=" => AssignOp::Sub,
        "*=" => AssignOp::Mul,
        "/=" => AssignOp::Div,
        _ => AssignOp::Set,
    }
}

fn is_keyword(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        kw_let
            | kw_var
            | kw_state
            | kw_return
            | kw_repeat
            | kw_for
            | kw_fn
            | kw_if
            | kw_else
            | kw_and
            | kw_or
            | kw_not
            | kw_true
            | kw_false
            | kw_import
            | kw_none
            | kw_rule
            | kw_schedule
            | kw_init
            | kw_adapter
            | kw_model
            | kw_experiment
            | kw_on
            | kw_in
            | kw_as
            | kw_every
            | kw_refresh
            | kw_reset
            | kw_moves
            | kw_like
            | kw_param
            | kw_frozen
            | kw_weight
            | kw_forward
            | kw_with
            | kw_adapted
            | kw_by
            | kw_data
            | kw_fresh
            | kw_step
            | kw_batch
            | kw_holdout
            | kw_optimize
            | kw_log
            | kw_checkpoint
            | kw_sweep
    )
}
