//! Parsing: text to [`ast::File`]. pest recognizes the grammar in `grammar/opt.pest`; the walk to
//! the AST is in `build`, syntax errors are worded in `errors`. Expressions go through one static
//! Pratt parser whose precedences mirror [`BinOp::precedence`]. Inputs are bounded (nesting and
//! operators per expression) so that no input can exhaust the stack, and large files are parsed
//! in two halves at once.

use super::ast::*;
use super::build::Builder;
use super::errors::syntax_error;
use super::scan::{item_starts, item_starts_relaxed};
use crate::diag::{codes, Diagnostic};
use crate::source::SourceFile;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::sync::{Arc, LazyLock};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/opt.pest"]
struct OptParser;

pub(super) static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
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
pub(super) const MAX_OPERATORS: usize = 1000;

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

/// Parses the whole items in `range` of a file (a run of [`item_starts`] boundaries), with
/// spans in the file's coordinates: the standard library parses only the declarations a
/// program names.
pub fn parse_items(source: &Arc<SourceFile>, range: std::ops::Range<usize>) -> Result<File, Diagnostic> {
    let part = &source.text[range.clone()];
    let mut pairs = OptParser::parse(Rule::file, part).map_err(|e| syntax_error(source, e, range.start))?;
    let file = pairs.next().expect("the file rule always produces one pair");
    Builder { source, offset: range.start }.file(file)
}

/// Syntax errors after the first one: parsing resumes at each later line that starts a
/// declaration (at column 0), so independent mistakes in one file are all reported.
pub fn later_syntax_errors(source: &Arc<SourceFile>, first: &Diagnostic) -> Vec<Diagnostic> {
    const MAX: usize = 20;
    let text = &source.text;
    let starts = item_starts_relaxed(text);
    let mut out = Vec::new();
    let mut after = first.primary_span().start;
    while out.len() < MAX {
        let Some(&start) = starts.iter().find(|&&s| s > after) else { break };
        let d = match OptParser::parse(Rule::file, &text[start..]) {
            // The grammar accepts the rest; the walk to the AST may still reject a literal.
            Ok(mut pairs) => match pairs.next().map(|file| Builder { source, offset: start }.file(file)) {
                Some(Err(d)) => d,
                _ => break,
            },
            Err(e) => syntax_error(source, e, start),
        };
        after = d.primary_span().start.max(start);
        out.push(d);
    }
    out
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

/// Runs pest alone over a file and returns the number of top-level pairs: the parser's own cost,
/// for profiling (`cargo run --release -p optic-compiler --example phases FILE pest`).
#[doc(hidden)]
pub fn pest_only(text: &str) -> usize {
    OptParser::parse(Rule::file, text).map(|p| p.len()).unwrap_or(0)
}
