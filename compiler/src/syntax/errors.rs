//! Syntax errors: pest's error turned into a diagnostic that says in words what was expected and
//! what was found, points at the offending token, and adds a help line for the usual slips
//! (`**` for powers, an unclosed bracket, a missing operator, a reserved word used as a name).

use super::parse::Rule;
use crate::diag::{codes, Diagnostic};
use crate::source::SourceFile;
use crate::syntax::ast::Span;
use std::sync::Arc;

pub(super) fn syntax_error(source: &Arc<SourceFile>, err: pest::error::Error<Rule>, offset: usize) -> Diagnostic {
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
        modifier | refresh_every | reset_every | moves_like => "`refresh every`, `reset every` or `moves like`",
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
        kw_moves | kw_like => "`moves like`",
        kw_adapted => "`adapted by`",
        kw_fresh | kw_batch | kw_holdout => "a data option (`fresh every step`, `batch`, `holdout`)",
        kw_true | kw_false | kw_none | kw_if | kw_not => "an expression",
        _ => "a keyword",
    }
}
