//! Parsing: text to [`ast::File`]. pest recognizes the grammar in `grammar/opt.pest`; this module
//! walks the parse tree once, building AST nodes with owned spans, and turns pest's errors into
//! diagnostics that say what was expected in words rather than rule names. Expressions go through
//! one static Pratt parser whose precedences mirror [`BinOp::precedence`].

use super::ast::*;
use crate::diag::{codes, Diagnostic};
use crate::source::SourceFile;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::sync::{Arc, LazyLock};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/opt.pest"]
struct OptParser;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::prefix(Rule::not))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
        .op(Op::postfix(Rule::transpose)
            | Op::postfix(Rule::call)
            | Op::postfix(Rule::index)
            | Op::postfix(Rule::field))
});

/// Deeper nesting than this is rejected before pest recurses, so no input can overflow the stack.
const MAX_NESTING: usize = 200;

/// Operators in one flat expression (outside brackets). Together with [`MAX_NESTING`] this
/// bounds the recursion of the Pratt parser and of every pass over expressions.
const MAX_OPERATORS: usize = 1000;

/// Parses a whole file. On a syntax error, returns the first one (pest stops there).
pub fn parse_file(source: &Arc<SourceFile>) -> Result<File, Diagnostic> {
    check_nesting(source)?;
    if let Some(file) = parse_in_halves(source) {
        return Ok(file);
    }
    let mut pairs = OptParser::parse(Rule::file, &source.text).map_err(|e| syntax_error(source, e, 0))?;
    let file = pairs.next().expect("the file rule always produces one pair");
    let b = Builder { source, offset: 0 };
    b.file(file)
}

/// Files above this size are parsed in two halves at once (top-level items are independent).
const SPLIT_ABOVE: usize = 32 * 1024;

/// Parses a large file as two runs of whole items on two threads. `None` when the file is small,
/// no split point is found, or either half fails (the caller then parses it whole, which also
/// finds the right first error).
fn parse_in_halves(source: &Arc<SourceFile>) -> Option<File> {
    let text = &source.text;
    if text.len() < SPLIT_ABOVE {
        return None;
    }
    let split = item_starts(text).into_iter().min_by_key(|&s| s.abs_diff(text.len() / 2)).filter(|&s| s > 0)?;
    let half = |range: std::ops::Range<usize>| {
        move || -> Option<File> {
            let part = &text[range.clone()];
            let file = OptParser::parse(Rule::file, part).ok()?.next()?;
            Builder { source, offset: range.start }.file(file).ok()
        }
    };
    let (first, second) = std::thread::scope(|s| {
        let spawn = |f| std::thread::Builder::new().stack_size(256 << 20).spawn_scoped(s, f).ok();
        let a = spawn(half(0..split));
        let b = half(split..text.len())();
        (a.and_then(|h| h.join().ok()).flatten(), b)
    });
    let (mut first, second) = (first?, second?);
    first.items.extend(second.items);
    Some(first)
}

/// Where top-level items may start: lines at bracket depth 0 that begin with a declaration
/// keyword (or the first `///` line documenting one). Strings and comments are skipped.
fn item_starts(text: &str) -> Vec<usize> {
    const STARTS: &[&str] =
        &["rule ", "schedule ", "init ", "adapter ", "model ", "fn ", "experiment ", "import ", "///"];
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut offset = 0;
    let mut in_doc = false;
    for line in text.split_inclusive('\n') {
        let doc = line.starts_with("///");
        if depth == 0 && !in_doc && STARTS.iter().any(|k| line.starts_with(k)) {
            out.push(offset);
        }
        in_doc = doc;
        let code = comment_start(line).map_or(line, |c| &line[..c]);
        let mut in_string = false;
        let mut escaped = false;
        for b in code.bytes() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'(' | b'[' | b'{' if !in_string => depth += 1,
                b')' | b']' | b'}' if !in_string => depth -= 1,
                _ => {}
            }
        }
        offset += line.len();
    }
    out
}

/// Parses a single expression (used by the REPL and `--set`).
pub fn parse_expr(source: &Arc<SourceFile>) -> Result<Expr, Diagnostic> {
    check_nesting(source)?;
    let text = source.text.trim_end();
    let mut pairs = OptParser::parse(Rule::expr, text).map_err(|e| syntax_error(source, e, 0))?;
    let pair = pairs.next().expect("the expr rule produces one pair");
    if pair.as_span().end() != text.len() {
        let at = pair.as_span().end();
        return Err(Diagnostic::error(
            codes::SYNTAX,
            source,
            Span::new(at, text.len()),
            "unexpected text after the expression",
            "not part of the expression",
        ));
    }
    let b = Builder { source, offset: 0 };
    b.expr(pair)
}

fn check_nesting(source: &Arc<SourceFile>) -> Result<(), Diagnostic> {
    let mut depth = 0usize;
    for (i, c) in source.text.char_indices() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::error(
                        codes::SYNTAX,
                        source,
                        Span::new(i, i + 1),
                        format!("brackets nested more than {MAX_NESTING} deep"),
                        "too deep",
                    )
                    .with_help("split the expression with `let` bindings"));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn syntax_error(source: &Arc<SourceFile>, err: pest::error::Error<Rule>, offset: usize) -> Diagnostic {
    let (start, end) = match err.location {
        pest::error::InputLocation::Pos(p) => (offset + p, offset + p),
        pest::error::InputLocation::Span((s, e)) => (offset + s, offset + e),
    };
    let rest = &source.text[start.min(source.text.len())..];
    let before = &source.text[..start.min(source.text.len())];
    let found = describe_found(rest);
    // Point at the offending token (or the end of input) rather than at an empty spot.
    let width = token_width(rest);
    let span = Span::new(start, start + width);
    let last_line = before.trim_end().rsplit('\n').next().unwrap_or("").trim_start();
    if rest.trim().is_empty() && last_line.starts_with("///") {
        let at = before.trim_end().len() - last_line.len();
        return Diagnostic::error(
            codes::MISPLACED_DOC,
            source,
            Span::new(at, at + 3),
            "a doc comment at the end of the file documents nothing",
            "nothing follows",
        )
        .with_help("use `//` for an ordinary comment");
    }
    if rest.starts_with("///") {
        return Diagnostic::error(
            codes::MISPLACED_DOC,
            source,
            Span::new(start, start + 3),
            "a doc comment must stand right before a declaration",
            "nothing to document here",
        )
        .with_help("use `//` for an ordinary comment");
    }
    let expected = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => expected_words(positives),
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    let _ = end;
    let mut d = Diagnostic::error(
        codes::SYNTAX,
        source,
        span,
        format!("expected {expected}, found {found}"),
        format!("expected {expected}"),
    );
    if let Some(help) = syntax_help(rest, before, &expected) {
        d = d.with_help(help);
    }
    // At the end of a file (or a declaration keyword), an unclosed bracket is the likely cause.
    if let Some((open, c)) = unclosed_bracket(before) {
        if rest.trim().is_empty() || found.contains("end") || rest.starts_with(|c: char| c.is_alphabetic()) {
            d = d.with_label(Span::new(open, open + 1), format!("this `{c}` is never closed"));
        }
    }
    d
}

fn token_width(rest: &str) -> usize {
    let mut chars = rest.char_indices();
    match chars.next() {
        None => 0,
        Some((_, c)) if c.is_alphanumeric() || c == '_' => rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(rest.len(), |(i, _)| i),
        Some((_, c)) => c.len_utf8(),
    }
}

fn describe_found(rest: &str) -> String {
    let w = token_width(rest);
    if w == 0 {
        return "the end of the file".into();
    }
    let tok = &rest[..w];
    match tok {
        "\n" | "\r" => "the end of the line".into(),
        _ => format!("`{}`", tok.escape_debug()),
    }
}

/// The innermost bracket still open at the end of `text` (strings and comments skipped).
fn unclosed_bracket(text: &str) -> Option<(usize, char)> {
    let mut stack: Vec<(usize, char)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, d)) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek().is_some_and(|(_, d)| *d == '/') => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => stack.push((i, c)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

fn syntax_help(rest: &str, before: &str, expected: &str) -> Option<String> {
    // Two operands side by side on one line, as in `-lr g`: an operator is probably missing.
    let line_before = before.rsplit('\n').next().unwrap_or("").trim_end();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let prev_word: String = {
        let rev: String = line_before.chars().rev().take_while(|&c| is_word(c)).collect();
        rev.chars().rev().collect()
    };
    let ends_operand = line_before.ends_with(|c: char| is_word(c) || c == ')' || c == ']');
    let starts_operand = rest.starts_with(|c: char| is_word(c) || c == '(');
    const KEYWORDS: &[&str] = &[
        "rule",
        "schedule",
        "init",
        "adapter",
        "model",
        "fn",
        "experiment",
        "let",
        "var",
        "state",
        "data",
        "optimize",
    ];
    if ends_operand && starts_operand && line_before.contains(' ') && !KEYWORDS.contains(&prev_word.as_str()) {
        return Some("is an operator missing between these two?".into());
    }
    let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if [
        "let", "var", "state", "return", "repeat", "for", "if", "else", "and", "or", "not", "true", "false", "import",
        "None",
    ]
    .contains(&word.as_str())
        && expected.contains("a name")
    {
        return Some(format!("`{word}` is a reserved word; choose another name"));
    }
    if rest.starts_with("**") || (rest.starts_with('*') && before.ends_with('*')) {
        return Some("powers are written `x^2`".into());
    }
    if rest.starts_with('"') && !rest[1..].split('\n').next().unwrap_or("").contains('"') {
        return Some("a string must end with `\"` on the same line".into());
    }
    let digit = |s: &str| s.ends_with(|c: char| c.is_ascii_digit());
    if (digit(before) && rest.starts_with('.')) || before.strip_suffix('.').is_some_and(digit) {
        return Some("write decimals with a digit after the point: `1.0`".into());
    }
    if rest.starts_with('=') && !rest.starts_with("==") && expected.contains("an operator") {
        return Some("compare with `==`; bind a name with `let x = ...`".into());
    }
    if rest.starts_with('\'') {
        return Some("strings use double quotes: \"...\"".into());
    }
    None
}

/// Turns pest's expected rules into a short English list.
fn expected_words(positives: &[Rule]) -> String {
    let mut words: Vec<&'static str> = Vec::new();
    for r in positives {
        let w = rule_word(*r);
        if !words.contains(&w) {
            words.push(w);
        }
    }
    match words.len() {
        0 => "something else".into(),
        1 => words[0].into(),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {}", words.join(", "), last)
        }
    }
}

fn rule_word(rule: Rule) -> &'static str {
    use Rule::*;
    match rule {
        EOI => "the end of the file",
        item | import | rule_def | schedule_def | init_def | adapter_def | model_def | fn_def | experiment_def
        | doc => "a declaration (`rule`, `schedule`, `init`, `adapter`, `model`, `fn`, `experiment` or `import`)",
        ident | name | place | pattern | tuple_pattern => "a name",
        expr | primary | float | int | string | boolean | list | paren | if_expr | prefix | neg | not => {
            "an expression"
        }
        infix | or | and | eq | ne | lt | le | gt | ge | add | sub | mul | div | matmul | pow => "an operator",
        postfix | transpose | call | index | field => "an operator",
        params | inputs => "`(`",
        param => "a parameter",
        input => "an input name",
        shape | dim | rest_dim => "a shape like `[m, n]`",
        body | expr_body | block => "`=` or `{`",
        stmt | let_stmt | var_stmt | state_stmt | return_stmt | repeat_stmt | for_stmt | if_stmt | param_stmt
        | frozen_stmt | weight_stmt | forward_stmt | data_stmt | optimize_stmt | init_stmt | log_stmt
        | checkpoint_stmt | sweep_stmt | assign_stmt => "a statement",
        assign_op => "`=`",
        modifier | refresh_every | reset_every => "`refresh every` or `reset every`",
        arg => "an argument",
        index_item | slice | newaxis => "an index",
        interval | open_lo => "an interval like `[0, 1)`",
        close_hi => "`]` or `)`",
        type_name => "a type",
        log_entry => "a metric",
        sweep_axis => "a sweep axis like `lr in [1e-3, 1e-2]`",
        range => "a range like `0..4`",
        path | path_part | star => "a parameter path",
        clause | with_clause | adapted_clause | edit => "`with` or `adapted by`",
        data_option | fresh_every | batch_option | holdout_option => "a data option",
        kw_every => "`every`",
        kw_with => "`with`",
        kw_on => "`on`",
        kw_in => "`in`",
        kw_by => "`by`",
        kw_step => "`step`",
        kw_else => "`else`",
        kw_as => "`as`",
        kw_refresh | kw_reset => "`refresh every` or `reset every`",
        kw_adapted => "`adapted by`",
        kw_fresh | kw_batch | kw_holdout => "a data option (`fresh every step`, `batch`, `holdout`)",
        kw_true | kw_false | kw_none | kw_if | kw_not => "an expression",
        _ => "a keyword",
    }
}

/// Walks pest pairs into AST nodes.
struct Builder<'s> {
    source: &'s Arc<SourceFile>,
    /// Where the text being built starts in the file.
    offset: usize,
}

/// The span of a pair without the whitespace and comments pest consumed after it while
/// trying an optional tail (`modifier*`, `("=" ~ expr)?`): labels then end at the last token.
/// `offset` is where the parsed text starts in the file (a chunk of a large file).
fn span_of(pair: &Pair<'_, Rule>, offset: usize) -> Span {
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

/// Where a `//` comment starts on a line, outside string literals.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

type PResult<T> = Result<T, Diagnostic>;

impl Builder<'_> {
    fn file(&self, pair: Pair<'_, Rule>) -> PResult<File> {
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
            let kind = if inner.as_rule() == Rule::refresh_every { ModifierKind::Refresh } else { ModifierKind::Reset };
            let every = inner.into_inner().find(|p| p.as_rule() == Rule::expr).expect("modifier period");
            out.push(Modifier { kind, every: self.expr(every)?, span });
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

    fn expr(&self, pair: Pair<'_, Rule>) -> PResult<Expr> {
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

/// Runs pest alone over a file and returns the number of top-level pairs: the parser's own cost,
/// for profiling (`cargo run --release -p optic-compiler --example phases FILE pest`).
#[doc(hidden)]
pub fn pest_only(text: &str) -> usize {
    OptParser::parse(Rule::file, text).map(|p| p.len()).unwrap_or(0)
}
