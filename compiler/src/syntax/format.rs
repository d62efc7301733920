//! The canonical formatter. The AST becomes a small layout document (text, line breaks, nesting,
//! groups, as in Wadler's and Prettier's printers) printed at 100 columns: a group stays on one
//! line if it fits up to the next place a line could break, and otherwise breaks. Groups are
//! argument, list and parameter lists (one item per line with a trailing comma; a single item
//! hugs its brackets), chains of one binary operator precedence (a line before each operator,
//! outermost chain first), parentheses, `if` expressions (one branch per block; only value-only
//! branches may share a line) and declaration bodies `= expr` (moved to the next line). Blocks,
//! `log` blocks and the file have one statement per line; a blank line the user left between
//! statements is kept (one at most); top-level items get exactly one. The output depends only on
//! the AST and on where comments sit among statements, never on the input's layout, which makes
//! it idempotent. `//` comments are not in the AST: a scan of the source finds them and each is
//! attached by position to the statement, item or log entry it precedes or trails; one inside an
//! expression moves to its own line before the statement (after an item's doc lines), so none is
//! ever lost. Parentheses, number spellings and doc comments are printed as parsed.

use super::ast::*;

/// Lines longer than this break their groups.
const WIDTH: usize = 100;
const INDENT: usize = 4;

/// The layout document.
enum Doc {
    /// Text without newlines.
    Text(String),
    /// A comment: printed as is, forces its enclosing groups to break (nothing may follow it on
    /// its line), and counts as zero width so a trailing comment never breaks its statement.
    Comment(String),
    /// A space, or a newline when its group breaks.
    Line,
    /// Nothing, or a newline when its group breaks.
    Soft,
    /// Always a newline.
    Hard,
    /// A comma only when its group breaks.
    TrailingComma,
    /// Its contents, with line breaks indented one level deeper.
    Nest(Vec<Doc>),
    /// Its contents, laid out flat if they fit; `true` when it must break.
    Group(bool, Vec<Doc>),
    /// Its contents.
    Cat(Vec<Doc>),
}

fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

impl From<&str> for Doc {
    fn from(s: &str) -> Doc {
        text(s)
    }
}

impl From<String> for Doc {
    fn from(s: String) -> Doc {
        Doc::Text(s)
    }
}

impl From<Option<Doc>> for Doc {
    fn from(d: Option<Doc>) -> Doc {
        d.unwrap_or(Doc::Cat(Vec::new()))
    }
}

/// Concatenates documents, strings and optional documents.
macro_rules! cat {
    ($($d:expr),* $(,)?) => { Doc::Cat(vec![$(Doc::from($d)),*]) };
}

fn group(docs: Vec<Doc>) -> Doc {
    let broken = docs.iter().any(forces_break);
    Doc::Group(broken, docs)
}

fn forces_break(d: &Doc) -> bool {
    match d {
        Doc::Hard | Doc::Comment(_) => true,
        Doc::Group(b, _) => *b,
        Doc::Nest(ds) | Doc::Cat(ds) => ds.iter().any(forces_break),
        _ => false,
    }
}

fn join(docs: Vec<Doc>, sep: impl Fn() -> Doc) -> Doc {
    let mut out = Vec::with_capacity(docs.len() * 2);
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push(sep());
        }
        out.push(d);
    }
    Doc::Cat(out)
}

fn comma(docs: Vec<Doc>) -> Doc {
    join(docs, || text(", "))
}

/// `open a, b close` as a group that breaks one item per line with a trailing comma. A single
/// item hugs its brackets (`abs(sum(` ... `))`): putting it alone on a line gains nothing.
fn seq(open: &str, mut items: Vec<Doc>, close: &str) -> Doc {
    if items.len() < 2 {
        return cat![open, items.pop(), close];
    }
    let items = join(items, || cat![",", Doc::Line]);
    group(vec![text(open), Doc::Nest(vec![Doc::Soft, items, Doc::TrailingComma]), Doc::Soft, text(close)])
}

fn width(s: &str) -> isize {
    s.chars().count() as isize
}

/// Prints a document; the root is in broken mode.
fn render(doc: &Doc) -> String {
    let mut out = String::new();
    let mut col = 0isize;
    // (indent, flat, doc), processed from the top; what remains is the "rest" that `fits` measures.
    let mut stack: Vec<(usize, bool, &Doc)> = vec![(0, false, doc)];
    while let Some((ind, flat, d)) = stack.pop() {
        match d {
            Doc::Text(s) | Doc::Comment(s) => {
                out.push_str(s);
                col += width(s);
            }
            Doc::Line if flat => {
                out.push(' ');
                col += 1;
            }
            Doc::Soft if flat => {}
            Doc::Line | Doc::Soft | Doc::Hard => {
                let trimmed = out.trim_end_matches(' ').len();
                out.truncate(trimmed);
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', ind));
                col = ind as isize;
            }
            Doc::TrailingComma => {
                if !flat {
                    out.push(',');
                    col += 1;
                }
            }
            Doc::Nest(ds) => stack.extend(ds.iter().rev().map(|d| (ind + INDENT, flat, d))),
            Doc::Cat(ds) => stack.extend(ds.iter().rev().map(|d| (ind, flat, d))),
            Doc::Group(broken, ds) => {
                let f = flat || (!broken && fits(ds, &stack, WIDTH as isize - col));
                stack.extend(ds.iter().rev().map(|d| (ind, f, d)));
            }
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

/// Whether `docs`, laid out flat, and what follows them up to the next line break fit in `room`.
fn fits(docs: &[Doc], rest: &[(usize, bool, &Doc)], mut room: isize) -> bool {
    let mut cmds: Vec<(bool, &Doc)> = docs.iter().rev().map(|d| (true, d)).collect();
    let mut rest = rest.iter().rev();
    loop {
        let (flat, d) = match cmds.pop() {
            Some(c) => c,
            None => match rest.next() {
                Some(&(_, flat, d)) => (flat, d),
                None => return true,
            },
        };
        match d {
            Doc::Text(s) => room -= width(s),
            Doc::Comment(_) => {}
            Doc::Line if flat => room -= 1,
            Doc::Soft if flat => {}
            Doc::Line | Doc::Soft | Doc::Hard => return true,
            Doc::TrailingComma => room -= if flat { 0 } else { 1 },
            Doc::Nest(ds) | Doc::Cat(ds) => cmds.extend(ds.iter().rev().map(|d| (flat, d))),
            Doc::Group(broken, ds) => cmds.extend(ds.iter().rev().map(|d| (flat && !broken, d))),
        }
        if room < 0 {
            return false;
        }
    }
}

/// A `//` comment found in the source; `end` excludes trailing whitespace.
struct Comment {
    start: usize,
    end: usize,
    text: String,
}

/// Finds `//` comments and the starts of `///` doc lines, skipping string literals.
fn scan(src: &str) -> (Vec<Comment>, Vec<usize>) {
    let bytes = src.as_bytes();
    let (mut comments, mut docs) = (Vec::new(), Vec::new());
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' | b'\n' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            let eol = src[i..].find('\n').map_or(src.len(), |n| i + n);
            let line = src[i..eol].trim_end();
            // The grammar's rule: `///` starts a doc line, but `////` is a plain comment.
            if line.starts_with("///") && !line.starts_with("////") {
                docs.push(i);
            } else {
                comments.push(Comment { start: i, end: i + line.len(), text: line.to_string() });
            }
            i = eol;
        }
        i += 1;
    }
    (comments, docs)
}

/// One line-level element of a file, block or `log` block.
#[derive(Clone, Copy)]
enum Elem<'a> {
    Item(&'a Item),
    Stmt(&'a Stmt),
    Value(&'a Expr),
    Entry(&'a LogEntry),
}

impl Elem<'_> {
    /// Its span, and whether doc lines precede it.
    fn span(self) -> (Span, bool) {
        match self {
            Elem::Item(Item::Import(i)) => (i.span, !i.docs.is_empty()),
            Elem::Item(Item::Decl(d)) => (d.span, !d.docs.is_empty()),
            Elem::Stmt(s) => (s.span, false),
            Elem::Value(e) => (e.span, false),
            Elem::Entry(e) => (e.span, false),
        }
    }
}

/// Lines joined by newlines, with at most one blank line between two and none before the first.
#[derive(Default)]
struct Lines(Vec<Doc>);

impl Lines {
    fn push(&mut self, blank: bool, doc: Doc) {
        if !self.0.is_empty() {
            self.0.push(Doc::Hard);
            if blank {
                self.0.push(Doc::Hard);
            }
        }
        self.0.push(doc);
    }
}

/// Builds documents from the AST, handing out each comment exactly once.
struct Fmt<'s> {
    src: &'s str,
    comments: Vec<Comment>,
    used: Vec<bool>,
    docs: Vec<usize>,
}

impl<'s> Fmt<'s> {
    fn new(src: &'s str) -> Self {
        let (comments, docs) = scan(src);
        Fmt { src, used: vec![false; comments.len()], comments, docs }
    }

    /// Takes the comments not yet placed that start in `lo..hi`.
    fn take(&mut self, lo: usize, hi: usize) -> Vec<(usize, usize, String)> {
        let from = self.comments.partition_point(|c| c.start < lo);
        let mut out = Vec::new();
        for (c, used) in self.comments[from..].iter().zip(&mut self.used[from..]) {
            if c.start >= hi {
                break;
            }
            if !*used {
                *used = true;
                out.push((c.start, c.end, c.text.clone()));
            }
        }
        out
    }

    /// Takes the comment on the same line right after `end` (after commas at most), if any.
    fn take_trailing(&mut self, end: usize) -> Option<(usize, String)> {
        let i = self.comments.partition_point(|c| c.start < end);
        let c = self.comments.get(i)?;
        let gap = self.src.get(end..c.start)?;
        if self.used[i] || !gap.chars().all(|ch| matches!(ch, ' ' | '\t' | ',')) {
            return None;
        }
        self.used[i] = true;
        Some((c.end, c.text.clone()))
    }

    /// The end of the last token in `span`: pest spans of statements can run on over the
    /// whitespace and comments that follow them.
    fn tight_end(&self, span: Span) -> usize {
        let mut end = span.end;
        while let Some(before) = self.src.get(span.start..end) {
            end = span.start + before.trim_end().len();
            match self.comments.binary_search_by_key(&end, |c| c.end) {
                Ok(i) if self.comments[i].start >= span.start => end = self.comments[i].start,
                _ => break,
            }
        }
        end.min(span.end)
    }

    /// Whether the source between `a` and `b` holds an empty line.
    fn blank(&self, a: usize, b: usize) -> bool {
        let Some(gap) = self.src.get(a..b) else { return false };
        let parts: Vec<&str> = gap.split('\n').collect();
        parts.len() > 2 && parts[1..parts.len() - 1].iter().any(|l| l.trim().is_empty())
    }

    /// Lays out `elems` one per line with the comments in `lo..hi`; `top` puts a blank line
    /// between elements (top-level items).
    fn lines(&mut self, lo: usize, hi: usize, elems: &[Elem], top: bool) -> Lines {
        let mut lines = Lines::default();
        let mut prev = lo;
        for (k, &elem) in elems.iter().enumerate() {
            let (span, has_docs) = elem.span();
            let end = self.tight_end(span);
            let first_doc = has_docs.then(|| self.docs.iter().find(|&&p| p >= prev && p < span.start)).flatten();
            let start = first_doc.map_or(span.start, |&p| p);
            let mut forced = top && k > 0;
            for (s, e, t) in self.take(lo, start) {
                lines.push(forced || self.blank(prev, s), Doc::Comment(t));
                forced = false;
                prev = e;
            }
            let doc = self.elem(elem);
            // Comments inside an expression have no line of their own there: they go before it.
            let mut blank = forced || self.blank(prev, start);
            for (_, _, t) in self.take(start, end) {
                lines.push(blank, Doc::Comment(t));
                blank = false;
            }
            prev = end;
            let doc = match self.take_trailing(end) {
                Some((e, t)) => {
                    prev = e;
                    cat![doc, Doc::Comment(format!(" {t}"))]
                }
                None => doc,
            };
            lines.push(blank, doc);
        }
        for (s, e, t) in self.take(lo, hi) {
            lines.push(self.blank(prev, s), Doc::Comment(t));
            prev = e;
        }
        lines
    }

    fn elem(&mut self, elem: Elem) -> Doc {
        match elem {
            Elem::Item(i) => self.item(i),
            Elem::Stmt(s) => self.stmt(s),
            Elem::Value(e) => self.expr(e),
            Elem::Entry(e) => {
                let value = e.value.as_ref().map(|v| cat![" = ", self.expr(v)]);
                cat![e.name.name.as_str(), value]
            }
        }
    }

    /// `{ lines }` between the braces at `open` and `close`; `flexible` lets an enclosing group
    /// keep a block holding only a value on one line.
    fn braces(&mut self, open: usize, close: usize, elems: &[Elem], flexible: bool) -> Doc {
        let lines = self.lines(open + 1, close.max(open + 1), elems, false);
        if lines.0.is_empty() {
            return text("{}");
        }
        let brk = || if flexible { Doc::Line } else { Doc::Hard };
        cat!["{", Doc::Nest(vec![brk(), Doc::Cat(lines.0)]), brk(), "}"]
    }

    fn block(&mut self, b: &Block, flexible: bool) -> Doc {
        let mut elems: Vec<Elem> = b.stmts.iter().map(Elem::Stmt).collect();
        elems.extend(b.value.as_deref().map(Elem::Value));
        self.braces(b.span.start, b.span.end.saturating_sub(1), &elems, flexible && b.stmts.is_empty())
    }

    fn body(&mut self, body: &Body) -> Doc {
        match body {
            // A body too long for the header's line starts on the next one.
            Body::Expr(e) => group(vec![text(" ="), Doc::Nest(vec![Doc::Line, self.expr(e)])]),
            Body::Block(b) => cat![" ", self.block(b, false)],
        }
    }

    fn item(&mut self, item: &Item) -> Doc {
        let (docs, span, code) = match item {
            Item::Import(i) => (&i.docs, i.span, text(format!("import {}", quote(&i.path)))),
            Item::Decl(d) => (&d.docs, d.span, self.decl(d)),
        };
        let mut lines: Vec<Doc> = Vec::new();
        for line in docs {
            let sep = if line.is_empty() { "" } else { " " };
            lines.extend([text(format!("///{sep}{line}")), Doc::Hard]);
        }
        // Comments before the doc lines were taken as leading ones; those among the doc lines or
        // inside the declaration (outside its blocks) go between the docs and the declaration.
        let end = self.tight_end(span);
        for (_, _, t) in self.take(0, end) {
            lines.extend([Doc::Comment(t), Doc::Hard]);
        }
        lines.push(code);
        Doc::Cat(lines)
    }

    fn decl(&mut self, d: &Decl) -> Doc {
        // The grammar requires a parameter list on these even when it is empty.
        let required = matches!(d.kind, DeclKind::Rule | DeclKind::Adapter | DeclKind::Function);
        let params = match &d.params {
            Some(ps) => Some(self.params(ps)),
            None => required.then(|| text("()")),
        };
        let inputs = (d.kind == DeclKind::Rule).then(|| self.inputs(&d.inputs));
        let target = d.target.as_ref().map(|t| text(format!(" on {t}")));
        let shape = d.shape.as_ref().map(|s| self.shape(s));
        cat![format!("{} {}", d.kind.keyword(), d.name), params, inputs, target, shape, self.body(&d.body)]
    }

    fn params(&mut self, ps: &[Param]) -> Doc {
        let items = ps.iter().map(|p| {
            let ty = p.ty.as_ref().map(|t| text(format!(": {t}")));
            let range = p.range.as_ref().map(|r| {
                let lo = if r.lo_closed { " in [" } else { " in (" };
                cat![lo, self.expr(&r.lo), ", ", self.expr(&r.hi), if r.hi_closed { "]" } else { ")" }]
            });
            let default = p.default.as_ref().map(|v| cat![" = ", self.expr(v)]);
            cat![if p.variadic { "*" } else { "" }, p.name.name.as_str(), ty, range, default]
        });
        seq("(", items.collect(), ")")
    }

    fn inputs(&mut self, inputs: &[Input]) -> Doc {
        // Never broken: a lone `(g)` on its own lines after a parameter list that fit helps nobody.
        let items = inputs.iter().map(|i| {
            let shape = i.shape.as_ref().map(|s| self.shape(s));
            cat![i.name.name.as_str(), shape]
        });
        cat!["(", comma(items.collect()), ")"]
    }

    fn shape(&mut self, s: &Shape) -> Doc {
        let dims = s.dims.iter().map(|d| match d {
            Dim::Rest(n) => text(format!("*{n}")),
            Dim::Expr(e) => self.expr(e),
        });
        cat!["[", comma(dims.collect()), "]"]
    }

    fn modifiers(&mut self, mods: &[Modifier]) -> Doc {
        let docs = mods.iter().map(|m| {
            let kw = match m.kind {
                ModifierKind::Refresh => " refresh every ",
                ModifierKind::Reset => " reset every ",
                ModifierKind::MovesLike => " moves like ",
            };
            cat![kw, self.expr(&m.value)]
        });
        Doc::Cat(docs.collect())
    }

    fn stmt(&mut self, s: &Stmt) -> Doc {
        match &s.kind {
            StmtKind::Let { pattern, value, modifiers: m } => {
                cat![format!("let {} = ", pattern_str(pattern)), self.expr(value), self.modifiers(m)]
            }
            StmtKind::Var { name, value } => cat![format!("var {name} = "), self.expr(value)],
            StmtKind::State { name, value, modifiers: m } => {
                cat![format!("state {name} = "), self.expr(value), self.modifiers(m)]
            }
            StmtKind::Return { value, modifiers: m } => cat!["return ", self.expr(value), self.modifiers(m)],
            StmtKind::Repeat { count, counter, body } => {
                let counter = counter.as_ref().map(|c| text(format!(" as {c}")));
                cat!["repeat ", self.expr(count), counter, " ", self.block(body, false)]
            }
            StmtKind::For { var, items, body } => {
                cat![format!("for {var} in "), self.expr(items), " ", self.block(body, false)]
            }
            StmtKind::If(e) => self.expr(e),
            StmtKind::Assign { place, op, value, clauses } => {
                let head = cat![format!("{place} {} ", op.as_str()), self.expr(value)];
                let clauses = clauses.iter().map(|c| self.clause(c)).collect();
                cat![head, Doc::Cat(clauses)]
            }
            StmtKind::Param { name, shape, init } => {
                cat![format!("param {name}"), self.shape(shape), " = ", self.expr(init)]
            }
            StmtKind::Frozen { name, value } => cat![format!("frozen {name} = "), self.expr(value)],
            StmtKind::Weight { value } => cat!["weight = ", self.expr(value)],
            StmtKind::Forward { inputs, body } => cat!["forward", self.inputs(inputs), self.body(body)],
            StmtKind::Data { names, source, options } => {
                let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                let head = cat![format!("data {} = ", names.join(", ")), self.expr(source)];
                let options = options.iter().map(|o| match o {
                    DataOption::FreshEveryStep(_) => text(" fresh every step"),
                    DataOption::Batch(e) => cat![" batch ", self.expr(e)],
                    DataOption::Holdout(e) => cat![" holdout ", self.expr(e)],
                });
                cat![head, Doc::Cat(options.collect())]
            }
            StmtKind::Optimize { paths, rule: value } | StmtKind::Init { paths, init: value } => {
                let kw = if matches!(s.kind, StmtKind::Optimize { .. }) { "optimize" } else { "init" };
                cat![format!("{kw} {} with ", paths_str(paths)), self.expr(value)]
            }
            StmtKind::Log { every, entries } => {
                let head = cat!["log every ", self.expr(every), " "];
                let elems: Vec<Elem> = entries.iter().map(Elem::Entry).collect();
                let close = self.tight_end(s.span).saturating_sub(1);
                cat![head, self.braces(every.span.end.saturating_sub(1), close, &elems, false)]
            }
            StmtKind::Checkpoint { every } => cat!["checkpoint every ", self.expr(every)],
            StmtKind::Sweep { axes } => {
                let axes = axes.iter().map(|a| {
                    let values = match &a.values {
                        SweepValues::List(e) => self.expr(e),
                        SweepValues::Range(lo, hi) => cat![self.expr(lo), "..", self.expr(hi)],
                    };
                    cat![format!("{} in ", a.name), values]
                });
                cat!["sweep ", comma(axes.collect())]
            }
        }
    }

    fn clause(&mut self, c: &Clause) -> Doc {
        match c {
            Clause::With { edits, .. } => {
                let edits = edits.iter().map(|e| cat![format!("{} {} ", e.place, e.op.as_str()), self.expr(&e.value)]);
                cat![" with ", comma(edits.collect())]
            }
            Clause::Adapted { adapter, targets, .. } => {
                cat![" adapted by ", self.expr(adapter), format!(" on {}", paths_str(targets))]
            }
        }
    }

    fn expr(&mut self, e: &Expr) -> Doc {
        match &e.kind {
            ExprKind::Int(v) => text(v.to_string()),
            ExprKind::Float { text: t, .. } => text(t.clone()),
            ExprKind::Bool(b) => text(b.to_string()),
            ExprKind::Str(s) => text(quote(s)),
            ExprKind::Name(n) => text(n.clone()),
            ExprKind::List(xs) => {
                let items = xs.iter().map(|x| self.expr(x)).collect();
                seq("[", items, "]")
            }
            ExprKind::Tuple(xs) => {
                let items: Vec<Doc> = xs.iter().map(|x| self.expr(x)).collect();
                // `(a,)` needs its comma to stay a tuple.
                if items.len() == 1 {
                    cat!["(", Doc::Cat(items), ",)"]
                } else {
                    seq("(", items, ")")
                }
            }
            ExprKind::Paren(x) => {
                group(vec![text("("), Doc::Nest(vec![Doc::Soft, self.expr(x)]), Doc::Soft, text(")")])
            }
            ExprKind::Unary { op, operand } => {
                let op = match (op, &operand.kind) {
                    // `--x` would read as a decrement.
                    (UnaryOp::Neg, ExprKind::Unary { op: UnaryOp::Neg, .. }) => "- ",
                    (UnaryOp::Neg, _) => "-",
                    (UnaryOp::Not, _) => "not ",
                };
                cat![op, self.expr(operand)]
            }
            ExprKind::Binary { op, .. } if *op != BinOp::Pow => {
                // A chain of one precedence, `a + b - c`, breaks before each of its operators.
                let mut rest = Vec::new();
                let mut first = e;
                while let ExprKind::Binary { op: o, lhs, rhs, .. } = &first.kind {
                    if o.precedence() != op.precedence() {
                        break;
                    }
                    rest.push((*o, rhs));
                    first = lhs;
                }
                let mut tail = Vec::new();
                for (o, rhs) in rest.into_iter().rev() {
                    tail.extend([Doc::Line, text(format!("{} ", o.as_str())), self.expr(rhs)]);
                }
                group(vec![self.expr(first), Doc::Nest(tail)])
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                // Tight, but `x^T` would read as a transpose: a power of a name `T` keeps spaces.
                let op = if starts_with_t(rhs) { " ^ " } else { "^" };
                cat![self.expr(lhs), op, self.expr(rhs)]
            }
            ExprKind::Transpose(x) => cat![self.expr(x), "^T"],
            ExprKind::Call { callee, args } => {
                let callee = self.expr(callee);
                let args = args.iter().map(|a| {
                    let name = a.name.as_ref().map(|n| text(format!("{n} = ")));
                    cat![name, self.expr(&a.value)]
                });
                cat![callee, seq("(", args.collect(), ")")]
            }
            ExprKind::Index { base, items } => {
                let base = self.expr(base);
                let items = items.iter().map(|i| self.index_item(i)).collect();
                cat![base, "[", comma(items), "]"]
            }
            ExprKind::Field { base, name } => cat![self.expr(base), format!(".{name}")],
            ExprKind::If { .. } => self.if_expr(e),
            ExprKind::Block(b) => group(vec![self.block(b, true)]),
        }
    }

    fn index_item(&mut self, item: &IndexItem) -> Doc {
        match item {
            IndexItem::At(e) => self.expr(e),
            IndexItem::NewAxis(_) => text("None"),
            IndexItem::Slice { lo, hi, step, .. } => {
                let lo = lo.as_ref().map(|e| self.expr(e));
                let hi = hi.as_ref().map(|e| self.expr(e));
                let step = step.as_ref().map(|e| cat![":", self.expr(e)]);
                cat![lo, ":", hi, step]
            }
        }
    }

    /// An `if` chain as one group: all on one line, or every branch broken.
    fn if_expr(&mut self, e: &Expr) -> Doc {
        let mut out = Vec::new();
        let mut cur = e;
        while let ExprKind::If { cond, then, otherwise } = &cur.kind {
            out.push(cat!["if ", self.expr(cond), " ", self.block(then, true)]);
            let Some(other) = otherwise else { break };
            out.push(text(" else "));
            match &other.kind {
                ExprKind::If { .. } => cur = other,
                ExprKind::Block(b) => {
                    out.push(self.block(b, true));
                    break;
                }
                _ => {
                    out.push(self.expr(other));
                    break;
                }
            }
        }
        group(out)
    }
}

/// Whether an expression's text starts with the name `T`.
fn starts_with_t(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Name(n) => n == "T",
        ExprKind::Binary { lhs: x, .. }
        | ExprKind::Transpose(x)
        | ExprKind::Call { callee: x, .. }
        | ExprKind::Index { base: x, .. }
        | ExprKind::Field { base: x, .. } => starts_with_t(x),
        _ => false,
    }
}

fn pattern_str(p: &Pattern) -> String {
    match p {
        Pattern::Name(n) => n.name.clone(),
        Pattern::Tuple(ps, _) => format!("({})", ps.iter().map(pattern_str).collect::<Vec<_>>().join(", ")),
    }
}

fn paths_str(paths: &[Path]) -> String {
    paths.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
}

/// A string literal with the escapes the grammar knows.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats a parsed file canonically. `source` is the text it was parsed from (needed to recover
/// `//` comments, which the AST does not hold). The result ends with a newline unless empty.
pub fn format_file(source: &str, file: &File) -> String {
    let mut f = Fmt::new(source);
    let elems: Vec<Elem> = file.items.iter().map(Elem::Item).collect();
    let lines = f.lines(0, source.len(), &elems, true);
    let mut out = render(&Doc::Cat(lines.0));
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Formats one expression (used by the REPL), without a trailing newline.
pub fn format_expr(expr: &Expr) -> String {
    render(&Fmt::new("").expr(expr))
}
