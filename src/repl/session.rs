//! A REPL session: the declarations accepted so far (as source text, one chunk per declaration
//! or import), the `let` bindings (as source lines), and what each kind of input does with them.
//! Everything goes through the compiler's public entry points on synthesized text: an expression
//! `e` is checked and lowered as `fn __repl_eval() { <lets> e }` placed before the session's
//! declarations, then run once by the reference interpreter; `:type` reads the checker's summary
//! of such a function; rule expressions are compiled with `compile_rule_in`. Because the user's
//! text sits at a known offset of the synthesized file, diagnostics about it are moved onto a
//! source named `<input>` holding exactly what was typed, so they read as if it had been checked
//! alone. A declaration that does not check is dropped, so the session always checks cleanly;
//! redefining a name replaces the old declaration.

mod commands;

use super::input::{self, Kind};
use super::{show, toy};
use ndarray::ArrayD;
use optic_compiler::check::{self, Checked};
use optic_compiler::diag::{Diagnostic, Severity};
use optic_compiler::interp;
use optic_compiler::lower;
use optic_compiler::source::SourceFile;
use optic_compiler::syntax::{self, ast};
use std::path::Path;
use std::sync::Arc;

/// The name of the synthesized file holding the session.
const SESSION: &str = "<session>";
/// The name under which diagnostics show what the user typed.
const INPUT: &str = "<input>";
/// The synthesized function an expression is evaluated as.
const EVAL_FN: &str = "__repl_eval";
/// The synthesized function a rule expression that needs `let` bindings is compiled as.
const RULE_FN: &str = "__repl_rule";
/// The user's expression is bound to this name and the function returns it: starting the
/// statement with `let` keeps a leading `(` or `[` from continuing the line before (as a call or
/// an index), since a newline does not end an expression.
const VALUE: &str = "__repl_v";
/// What comes before the user's expression in the synthesized function.
const VALUE_HEAD: &str = "let __repl_v = ";
/// Names the user may not declare, since the synthesized functions use them.
const RESERVED_PREFIX: &str = "__repl";
/// The most elements a tensor computed by the REPL may have (400 MB of f64).
const MAX_ELEMENTS: usize = 50_000_000;
/// Lists and tuples longer than this are shown by their type only.
const MAX_ITEMS: usize = 16;

/// The commands' names, for completion.
pub const COMMANDS: &[&str] = &[":type", ":ir", ":try", ":replay", ":load", ":list", ":reset", ":help", ":quit"];

/// What the session answers to one input.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Text to show (possibly empty).
    Text(String),
    /// The user asked to leave.
    Quit,
}

/// A declaration or an import accepted into the session.
struct Chunk {
    /// The declared name (`None` for an import).
    name: Option<String>,
    /// `rule`, `schedule`, ... or `import`.
    kind: &'static str,
    /// Its text, with the doc comments above it.
    text: String,
}

/// A `let` binding.
struct Binding {
    /// The names it binds.
    names: Vec<String>,
    /// The line as typed (`let x = 2 * 3`).
    line: String,
}

/// The user's text embedded in a synthesized file: the file and where the text starts.
struct Embedded {
    text: String,
    start: usize,
}

/// The kinds of value an expression can have, from the checker's summary of it.
enum Ty {
    /// A number, a boolean or a tensor: computed by the interpreter.
    Numeric { boolean: bool },
    /// A string: the checker's text is the value.
    Str,
    /// A list or tuple: the open bracket and the items' types.
    Seq(char, Vec<String>),
    /// A rule, schedule, function...: shown by its type.
    Other,
}

/// The REPL's state between inputs.
#[derive(Default)]
pub struct Session {
    chunks: Vec<Chunk>,
    lets: Vec<Binding>,
}

impl Session {
    /// An empty session (the standard library is always in scope).
    pub fn new() -> Session {
        Session::default()
    }

    /// Handles one complete input (possibly several lines) and says what to show. Problems in
    /// the input are part of the reply; a panic inside the compiler is reported and the session
    /// goes on as it was before the input.
    pub fn submit(&mut self, text: &str) -> Reply {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.dispatch(text))) {
            Ok(reply) => reply,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown");
                Reply::Text(format!("internal error (the session goes on): {what}"))
            }
        }
    }

    /// Every name worth completing: declarations, bindings, the standard library, builtins,
    /// keywords, commands and toy problems.
    pub fn names(&self, stdlib: &[String]) -> Vec<String> {
        let mut names: Vec<String> = self.chunks.iter().filter_map(|c| c.name.clone()).collect();
        names.extend(self.lets.iter().flat_map(|b| b.names.iter().cloned()));
        names.extend(stdlib.iter().cloned());
        names.extend(check::builtin_names().iter().map(|s| s.to_string()));
        names.extend(input::DECL_KEYWORDS.iter().map(|s| s.to_string()));
        names.extend(["let", "import", "step", "param", "true", "false", "pi", "inf", "steps", "on"].map(String::from));
        names.extend(COMMANDS.iter().map(|c| c.to_string()));
        names.extend(toy::NAMES.iter().map(|s| s.to_string()));
        names.sort();
        names.dedup();
        names
    }

    /// The standard library's names (for completion), read once from an empty check.
    pub fn stdlib_names() -> Vec<String> {
        let checked = check::check_source(SESSION, "", Path::new("."));
        let mut names: Vec<String> = checked.program.stdlib_scope.keys().cloned().collect();
        names.sort();
        names
    }

    fn dispatch(&mut self, text: &str) -> Reply {
        let out = match input::classify(text) {
            Kind::Empty => Ok(String::new()),
            Kind::Command(name, args) => return self.command(name, args),
            Kind::Decl => self.define(text),
            Kind::Let(names, expr) => self.bind(text, names, expr),
            Kind::Expr => self.evaluate(text.trim()),
        };
        Reply::Text(out.unwrap_or_else(|e| e))
    }

    fn command(&mut self, name: &str, args: &str) -> Reply {
        let needs_args = |what: &str| Err(format!("usage: :{name} {what}"));
        let out = match (name, args.is_empty()) {
            ("quit" | "q" | "exit", _) => return Reply::Quit,
            ("help" | "h" | "?", _) => Ok(commands::HELP.to_string()),
            ("type" | "t", false) => self.type_of(args),
            ("ir", false) => self.ir(args),
            ("try", false) => self.try_rule(args),
            ("replay", false) => self.replay(args),
            ("load" | "l", false) => self.load(args),
            ("list", _) => Ok(self.list()),
            ("reset", _) => {
                *self = Session::new();
                Ok("session cleared".into())
            }
            ("type" | "t", true) => needs_args("EXPR"),
            ("ir", true) => needs_args("RULE [SHAPE]"),
            ("try", true) => needs_args("RULE on PROBLEM [steps N]"),
            ("replay", true) => needs_args("FIXTURE RULE"),
            ("load" | "l", true) => needs_args("FILE"),
            _ => Err(format!("unknown command `:{name}`; :help lists the commands")),
        };
        Reply::Text(out.unwrap_or_else(|e| e))
    }

    // ------------------------------------------------------------------------------ the session

    /// The session's declarations as one source text.
    fn source(&self) -> String {
        let mut s = String::new();
        for c in &self.chunks {
            s.push_str(&c.text);
            s.push('\n');
        }
        s
    }

    /// The `let` lines that `text` needs, in order: those binding a name it mentions, and the
    /// ones those need. (Evaluation uses all of them instead, so that random draws keep their
    /// numbering and a name shows the same values every time.)
    fn needed_lets(&self, text: &str) -> String {
        let mut wanted: Vec<&str> = input::identifiers(text);
        let mut keep = vec![false; self.lets.len()];
        for (i, b) in self.lets.iter().enumerate().rev() {
            if b.names.iter().any(|n| wanted.contains(&n.as_str())) {
                keep[i] = true;
                wanted.extend(input::identifiers(&b.line));
            }
        }
        self.lets.iter().zip(keep).filter(|(_, k)| *k).map(|(b, _)| format!("{}\n", b.line)).collect()
    }

    /// Every `let` line.
    fn all_lets(&self) -> String {
        self.lets.iter().map(|b| format!("{}\n", b.line)).collect()
    }

    /// `fn NAME() { <lets> <head><input> <tail> }` followed by the session. Each `let` line and
    /// the input start a statement with `let` or end with a plain name, so no line can continue
    /// the one before.
    fn embed(&self, name: &str, lets: &str, head: &str, input: &str, tail: &str) -> Embedded {
        let mut text = format!("fn {name}() {{\n{lets}{head}");
        let start = text.len();
        text.push_str(input);
        text.push('\n');
        text.push_str(tail);
        text.push_str("\n}\n");
        text.push_str(&self.source());
        Embedded { text, start }
    }

    // ------------------------------------------------------------------------------ inputs

    /// Declarations: added when the whole session still checks, dropped otherwise.
    fn define(&mut self, text: &str) -> Result<String, String> {
        let src = Arc::new(SourceFile::new(INPUT, text));
        let file = syntax::parse_file(&src).map_err(|first| {
            let later = syntax::later_syntax_errors(&src, &first);
            render(&[&[first][..], &later].concat())
        })?;
        let mut new = Vec::new();
        let mut prev = 0;
        for item in &file.items {
            let (span, name, kind) = match item {
                ast::Item::Decl(d) => (d.span, Some(d.name.name.clone()), d.kind.keyword()),
                ast::Item::Import(i) => (i.span, None, "import"),
            };
            if let Some(n) = name.as_deref().filter(|n| n.starts_with(RESERVED_PREFIX)) {
                return Err(format!("error: names starting with `{RESERVED_PREFIX}` are reserved by the REPL (`{n}`)"));
            }
            let end = span.end.clamp(prev, text.len());
            new.push(Chunk { name, kind, text: text.get(prev..end).unwrap_or_default().to_string() });
            prev = end;
        }
        let replaced = |c: &Chunk| {
            new.iter().any(|n: &Chunk| match (&n.name, &c.name) {
                (Some(a), Some(b)) => a == b,
                (None, None) => n.text.trim() == c.text.trim(),
                _ => false,
            })
        };
        let kept: Vec<&Chunk> = self.chunks.iter().filter(|c| !replaced(c)).collect();
        let mut whole = format!("{text}\n");
        for c in &kept {
            whole.push_str(&c.text);
            whole.push('\n');
        }
        let checked = check::check_source(SESSION, &whole, Path::new("."));
        let diags = relocate_all(checked.diagnostics, SESSION, 0, &src);
        if has_errors(&diags) {
            return Err(render(&diags));
        }
        let mut out: Vec<String> = diags.iter().map(Diagnostic::render_plain).collect();
        for c in &new {
            let again = self.chunks.iter().any(|old| replaced(old) && old.name.is_some() && old.name == c.name);
            out.push(match &c.name {
                Some(n) => format!("{} {} {n}", if again { "redefined" } else { "defined" }, c.kind),
                None => format!("added {}", c.text.trim()),
            });
        }
        self.chunks.retain(|c| !replaced(c));
        self.chunks.extend(new);
        Ok(join(out))
    }

    /// `let NAME = EXPR`: kept when it checks and its numeric values evaluate.
    fn bind(&mut self, text: &str, names: Vec<String>, expr: &str) -> Result<String, String> {
        let text = text.trim();
        let src = Arc::new(SourceFile::new(INPUT, text));
        // The expression alone, at its offset in the line, for syntax errors that point at it.
        let offset = (expr.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len());
        let blanked = Arc::new(SourceFile::new(INPUT, format!("{}{}", " ".repeat(offset), &text[offset..])));
        if let Err(d) = syntax::parse_expr(&blanked) {
            return Err(render(&relocate_all(vec![d], INPUT, 0, &src)));
        }
        if let Some(n) = names.iter().find(|n| n.starts_with(RESERVED_PREFIX)) {
            return Err(format!("error: names starting with `{RESERVED_PREFIX}` are reserved by the REPL (`{n}`)"));
        }
        let lets = self.all_lets();
        let mut parts = Vec::new();
        for name in &names {
            let e = self.embed(EVAL_FN, &lets, "", text, name);
            let checked = check::check_source(SESSION, &e.text, Path::new("."));
            let diags = relocate_all(checked.diagnostics.clone(), SESSION, e.start, &src);
            if has_errors(&diags) {
                return Err(render(&diags));
            }
            let ty = summary_value(&checked, EVAL_FN).unwrap_or_else(|| "?".into());
            parts.push(match category(&ty) {
                Ty::Numeric { boolean } => {
                    let v = self.run_expr(&e, &src)?;
                    if v.ndim() == 0 {
                        format!("{name} = {}", show::value(&v, boolean))
                    } else {
                        let dims: Vec<String> = v.shape().iter().map(ToString::to_string).collect();
                        format!("{name}: {}tensor[{}]", if boolean { "bool " } else { "" }, dims.join(", "))
                    }
                }
                _ => format!("{name}: {ty}"),
            });
        }
        self.lets.push(Binding { names, line: text.to_string() });
        Ok(parts.join("\n"))
    }

    /// An expression: its value.
    fn evaluate(&self, text: &str) -> Result<String, String> {
        let src = Arc::new(SourceFile::new(INPUT, text));
        syntax::parse_expr(&src).map_err(|d| render(&[d]))?;
        let lets = self.all_lets();
        let e = self.embed(EVAL_FN, &lets, VALUE_HEAD, text, VALUE);
        let checked = check::check_source(SESSION, &e.text, Path::new("."));
        let diags = relocate_all(checked.diagnostics.clone(), SESSION, e.start, &src);
        if has_errors(&diags) {
            return Err(render(&diags));
        }
        let warnings: Vec<String> = diags.iter().map(Diagnostic::render_plain).collect();
        let ty = summary_value(&checked, EVAL_FN).unwrap_or_else(|| "?".into());
        let shown = match category(&ty) {
            Ty::Numeric { boolean } => show::value(&self.run_expr(&e, &src)?, boolean),
            Ty::Str => ty,
            Ty::Seq(open, items) if items.len() <= MAX_ITEMS => {
                let close = if open == '[' { ']' } else { ')' };
                let mut shown = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    shown.push(match category(item) {
                        Ty::Numeric { boolean } => {
                            let e = self.embed(EVAL_FN, &lets, VALUE_HEAD, text, &format!("{VALUE}[{i}]"));
                            show::value(&self.run_expr(&e, &src)?, boolean)
                        }
                        _ => item.clone(),
                    });
                }
                if shown.iter().any(|s| s.contains('\n')) {
                    let body: Vec<String> = shown.iter().map(|s| s.replace('\n', "\n ")).collect();
                    format!("{open}{}{close}", body.join(",\n "))
                } else {
                    format!("{open}{}{close}", shown.join(", "))
                }
            }
            Ty::Seq(..) => ty,
            // A declaration named alone: its kind says more than `callable`.
            Ty::Other => match declaration_kind(&checked, text) {
                Some(kind) => format!("<{kind} {text}>"),
                None => format!("<{ty}>"),
            },
        };
        Ok(join(warnings.into_iter().chain([shown]).collect()))
    }

    /// Lowers the embedded expression function and runs it once (step 1, seed 0).
    fn run_expr(&self, e: &Embedded, src: &Arc<SourceFile>) -> Result<ArrayD<f64>, String> {
        let graph = lower::compile_expr_in(Some((SESSION, &e.text)), &format!("{EVAL_FN}()"))
            .map_err(|d| render(&relocate_all(d, SESSION, e.start, src)))?;
        // A typo such as randn([100000, 100000]) would abort the process when allocating.
        for node in &graph.nodes {
            let size = node.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if size.is_none_or(|n| n > MAX_ELEMENTS) {
                let shape = &node.shape;
                return Err(format!(
                    "error: this needs a tensor of shape {shape:?}; the REPL computes at most {MAX_ELEMENTS} elements per tensor"
                ));
            }
        }
        interp::eval_once::<f64>(&graph, 1, None, &[], 0).map_err(|err| format!("error: evaluation failed {err}"))
    }
}

/// The keyword of the declaration `name` in scope of the session (`rule`, `schedule`...).
fn declaration_kind(checked: &Checked, name: &str) -> Option<&'static str> {
    let prog = &checked.program;
    let root = prog.units.iter().position(|u| u.root)?;
    Some(prog.decl(prog.lookup(root, name)?).kind.keyword())
}

/// The `value:` line of the checker's summary of the synthesized function `name`.
fn summary_value(checked: &Checked, name: &str) -> Option<String> {
    let header = format!("fn {name}()");
    for (_, text) in &checked.summaries {
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line == header {
                return lines
                    .take_while(|l| l.starts_with("  "))
                    .find_map(|l| l.strip_prefix("  value: "))
                    .map(str::to_string);
            }
        }
    }
    None
}

/// What kind of value the checker's description `ty` is.
fn category(ty: &str) -> Ty {
    let ty = ty.trim();
    if ty.starts_with('"') {
        return Ty::Str;
    }
    if let Some(open) = ty.chars().next().filter(|c| *c == '[' || *c == '(') {
        let inner = &ty[1..ty.len().saturating_sub(1).max(1)];
        return Ty::Seq(open, split_items(inner));
    }
    let first = ty.split_whitespace().next().unwrap_or("");
    let boolean = first == "bool";
    if ty == "?" || matches!(first, "int" | "float" | "bool") || first.starts_with("tensor") {
        Ty::Numeric { boolean }
    } else {
        Ty::Other
    }
}

/// The items of a list or tuple description, split at top-level commas.
fn split_items(inner: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        items.push(last.to_string());
    }
    items
}

/// Moves a diagnostic about the user's text, embedded at `start` of the file named `from`, onto
/// `input` (the text alone), so that it points at what was typed. Diagnostics (and notes) that
/// point elsewhere are left as they are.
fn relocate(mut d: Diagnostic, from: &str, start: usize, input: &Arc<SourceFile>) -> Diagnostic {
    d.related = std::mem::take(&mut d.related).into_iter().map(|r| relocate(r, from, start, input)).collect();
    let end = start + input.text.len();
    let inside = !d.labels.is_empty()
        && d.source.name == from
        && d.labels.iter().all(|l| l.span.start >= start && l.span.end <= end);
    if inside {
        d.source = input.clone();
        for l in &mut d.labels {
            l.span = ast::Span::new(l.span.start - start, l.span.end - start);
        }
    }
    d
}

fn relocate_all(diags: Vec<Diagnostic>, from: &str, start: usize, input: &Arc<SourceFile>) -> Vec<Diagnostic> {
    diags.into_iter().map(|d| relocate(d, from, start, input)).collect()
}

fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// Diagnostics as plain text (no colours), one after the other.
fn render(diags: &[Diagnostic]) -> String {
    join(diags.iter().map(Diagnostic::render_plain).collect())
}

/// Non-empty parts, trimmed at the end, one per line.
fn join(parts: Vec<String>) -> String {
    let parts: Vec<&str> = parts.iter().map(|p| p.trim_end()).filter(|p| !p.is_empty()).collect();
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The session's answers to `inputs`, one string per input.
    pub(super) fn answers(inputs: &[&str]) -> Vec<String> {
        let mut s = Session::new();
        inputs
            .iter()
            .map(|i| match s.submit(i) {
                Reply::Text(t) => t,
                Reply::Quit => ":quit".into(),
            })
            .collect()
    }

    #[test]
    fn let_then_use() {
        let a = answers(&["let x = 2 * 3", "x", "x + 0.5", "let y = randn([3, 4])", "y @ randn([4, 2])"]);
        assert_eq!(a[0], "x = 6");
        assert_eq!(a[1], "6");
        assert_eq!(a[2], "6.5");
        assert_eq!(a[3], "y: tensor[3, 4]");
        assert!(a[4].starts_with("tensor[3, 2]\n[["), "{}", a[4]);
    }

    #[test]
    fn the_same_name_shows_the_same_values() {
        let a = answers(&["let w = randn([2, 2])", "w", "w", "1 + w - 1"]);
        assert_eq!(a[1], a[2]);
        assert!(a[1].starts_with("tensor[2, 2]"));
    }

    #[test]
    fn declarations_are_added_replaced_and_dropped() {
        let a = answers(&[
            "rule gd(lr = 0.1)(g) = -lr * g",
            "rule gd(lr = 0.2)(g) = -lr * g",
            "rule bad(g) = -lr * g",
            "schedule half(peak) = peak / 2",
            "half(3)",
            "gd",
            ":list",
        ]);
        assert_eq!(a[0], "defined rule gd");
        assert_eq!(a[1], "redefined rule gd");
        assert!(a[2].contains("<input>:1:"), "{}", a[2]);
        assert_eq!(a[3], "defined schedule half");
        assert_eq!(a[4], "<schedule>");
        assert_eq!(a[5], "<rule gd>");
        assert_eq!(a[6], "rule gd\nschedule half");
    }

    #[test]
    fn errors_point_at_the_input_and_the_session_goes_on() {
        let a = answers(&["1 + nope", "1 + 1", "(1 + ", "let z = nope", "randn([100000, 100000])"]);
        assert!(a[0].contains("<input>:1:5"), "{}", a[0]);
        assert!(a[0].contains("1 + nope"), "{}", a[0]);
        assert_eq!(a[1], "2");
        assert!(a[2].contains("<input>"), "{}", a[2]);
        assert!(a[3].contains("<input>:1:9"), "{}", a[3]);
        assert!(a[4].contains("at most 50000000 elements"), "{}", a[4]);
    }

    #[test]
    fn types_and_values_of_other_kinds() {
        let a = answers(&[
            ":type randn([3, 4]) @ randn([4, 2])",
            ":type sgd(lr = 0.1)",
            "sgd(lr = 0.1)",
            "\"text\"",
            "[1, 2.5]",
            "randn([3]) > 100",
            "svd(eye(2), 1)",
        ]);
        assert_eq!(a[0], "tensor[3, 2]");
        assert_eq!(a[1], "rule");
        assert_eq!(a[2], "<rule>");
        assert_eq!(a[3], "\"text\"");
        assert_eq!(a[4], "[1, 2.5]");
        assert_eq!(a[5], "bool tensor[3] [false, false, false]");
        assert!(a[6].starts_with("(tensor[2, 1]"), "{}", a[6]);
    }

    #[test]
    fn item_splitting() {
        assert_eq!(
            split_items("tensor[4, 2], tensor[2], (int 1, int 2)"),
            ["tensor[4, 2]", "tensor[2]", "(int 1, int 2)"]
        );
        assert!(split_items("").is_empty());
    }
}
