//! Reading the REPL's input before the compiler sees it: whether an input is complete or needs
//! more lines (open brackets, a trailing operator, only doc comments so far), what kind of input
//! it is (a `:` command, a declaration, a `let`, an expression), the names a piece of text
//! mentions, and the small argument syntaxes of `:ir` and `:try`. All of this is lexical, with
//! strings and `//` comments skipped, so that it never disagrees with the parser about where a
//! bracket is; the parser has the last word on whether the text is valid.

/// The keywords that start a declaration (`import` is handled with them).
pub const DECL_KEYWORDS: &[&str] = &["rule", "schedule", "init", "fn", "model", "adapter", "experiment"];

/// What one complete input is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// Nothing but whitespace and comments.
    Empty,
    /// `:name rest`.
    Command(&'a str, &'a str),
    /// Declarations (and imports), to be added to the session.
    Decl,
    /// `let NAME = EXPR` or `let (a, b) = EXPR`: the names bound and the expression.
    Let(Vec<String>, &'a str),
    /// An expression to evaluate.
    Expr,
}

/// The code of `text` with comments blanked out (same byte offsets): strings are kept, `//`
/// comments become spaces up to the end of their line.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_str, mut in_comment) = (false, false);
    while let Some(c) = chars.next() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
                out.push('\n');
            } else {
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
            continue;
        }
        if in_str {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' | '\n' => in_str = false,
                _ => {}
            }
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            in_comment = true;
            out.push(' ');
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    out
}

/// The bracket depth at the end of `code` (strings skipped); negative when more close than open.
fn depth(code: &str) -> i64 {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut escaped = false;
    for c in code.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"' | '\n') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// True when `text` is not a complete input yet: a bracket is open, the last line ends with an
/// operator, `=` or `,`, or there are only doc comments (which belong to the declaration that
/// follows). Commands are always one line.
pub fn needs_more(text: &str) -> bool {
    let trimmed = text.trim_start();
    if trimmed.starts_with(':') {
        return false;
    }
    let code = code_only(text);
    if depth(&code) > 0 {
        return true;
    }
    if code.trim().is_empty() {
        // Doc comments alone wait for their declaration; plain comments are complete (and empty).
        return text.lines().any(|l| l.trim_start().starts_with("///"));
    }
    let end = code.trim_end();
    if end.ends_with(['=', '+', '-', '*', '/', '@', '^', ',', '<', '>']) {
        return true;
    }
    let last_word = end.rsplit(|c: char| !is_ident_char(c)).next().unwrap_or("");
    matches!(last_word, "and" | "or" | "not")
}

/// True for the characters of a name.
pub fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True when a line continues the input before it although that input was complete: an
/// `else` on its own line after an `if ... { }`.
pub fn continues(next_line: &str) -> bool {
    let t = next_line.trim_start();
    t.strip_prefix("else").is_some_and(|rest| rest.is_empty() || !rest.starts_with(is_ident_char))
}

/// Classifies a complete input.
pub fn classify(text: &str) -> Kind<'_> {
    let code = code_only(text);
    let start = match code.find(|c: char| !c.is_whitespace()) {
        Some(i) => i,
        None => return Kind::Empty,
    };
    // Offsets in `code` are offsets in `text`: comments were blanked, not removed.
    let rest = &text[start..];
    if let Some(cmd) = rest.strip_prefix(':') {
        let cmd = cmd.trim();
        let (name, args) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        return Kind::Command(name, args.trim());
    }
    let word: &str = &rest[..rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len())];
    let after = &rest[word.len()..];
    let followed_by_name = after.starts_with(char::is_whitespace) && after.trim_start().starts_with(is_ident_char);
    if DECL_KEYWORDS.contains(&word) && followed_by_name || word == "import" && after.trim_start().starts_with('"') {
        return Kind::Decl;
    }
    if word == "let" && after.starts_with(char::is_whitespace) {
        if let Some((names, expr)) = split_let(after) {
            return Kind::Let(names, expr);
        }
    }
    Kind::Expr
}

/// `NAME = EXPR` or `(a, b) = EXPR` (after `let`): the names and the expression.
fn split_let(after: &str) -> Option<(Vec<String>, &str)> {
    let t = after.trim_start();
    let (names, rest) = if let Some(inner) = t.strip_prefix('(') {
        let close = inner.find(')')?;
        let names: Vec<String> = inner[..close].split(',').map(|n| n.trim().to_string()).collect();
        (names, &inner[close + 1..])
    } else {
        let end = t.find(|c: char| !is_ident_char(c)).unwrap_or(t.len());
        (vec![t[..end].to_string()], &t[end..])
    };
    let valid =
        |n: &String| n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && n.chars().all(is_ident_char);
    if names.is_empty() || !names.iter().all(valid) {
        return None;
    }
    let rest = rest.trim_start();
    // `==` is a comparison, not a binding.
    let expr = rest.strip_prefix('=').filter(|e| !e.starts_with('='))?;
    Some((names, expr.trim()))
}

/// The names mentioned in `text` (words outside strings and comments), in order, with repeats.
pub fn identifiers(text: &str) -> Vec<&str> {
    let code = code_only(text);
    let mut out = Vec::new();
    let mut in_str = false;
    let mut start: Option<usize> = None;
    let bytes = code.as_bytes();
    for (i, c) in code.char_indices() {
        if in_str {
            if c == '"' && (i == 0 || bytes[i - 1] != b'\\') {
                in_str = false;
            }
            continue;
        }
        if is_ident_char(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if c == '"' {
            in_str = true;
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    // Numbers such as `1e3` are not names.
    out.retain(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
    out
}

/// Splits `EXPR [SHAPE]` (for `:ir`): a trailing bracket group of integers after a space is the
/// shape. Returns the expression and the shape if one was given.
pub fn split_shape(args: &str) -> Result<(&str, Option<Vec<usize>>), String> {
    let t = args.trim_end();
    if !t.ends_with(']') {
        return Ok((t, None));
    }
    let open = match t.rfind('[') {
        Some(i) => i,
        None => return Ok((t, None)),
    };
    let before = &t[..open];
    if !before.ends_with(char::is_whitespace) || before.trim().is_empty() {
        return Ok((t, None));
    }
    let inner = &t[open + 1..t.len() - 1];
    if inner.trim().is_empty() {
        return Ok((before.trim_end(), Some(Vec::new())));
    }
    let dims: Result<Vec<usize>, _> = inner.split(',').map(|d| d.trim().parse::<usize>()).collect();
    match dims {
        Ok(dims) => Ok((before.trim_end(), Some(dims))),
        // Not a list of sizes: maybe part of the expression, e.g. a list argument.
        Err(_) if inner.chars().any(|c| c.is_ascii_alphabetic()) => Ok((t, None)),
        Err(_) => Err(format!("the shape `[{inner}]` must be a list of sizes, e.g. [4, 3]")),
    }
}

/// What `:try` was asked: the rule expression, the problem's name and the number of steps.
#[derive(Debug, PartialEq, Eq)]
pub struct TryArgs<'a> {
    /// The rule expression.
    pub rule: &'a str,
    /// The problem, as typed.
    pub problem: &'a str,
    /// The number of steps, if given.
    pub steps: Option<u64>,
}

/// Parses `RULE on PROBLEM [steps N]`.
pub fn split_try(args: &str) -> Result<TryArgs<'_>, String> {
    let usage = "usage: :try RULE on PROBLEM [steps N], e.g. :try adam(lr = 1e-2) on rosenbrock steps 50";
    let mut t = args.trim_end();
    let mut steps = None;
    if let Some((head, n)) = t.rsplit_once(char::is_whitespace) {
        if let Some(head) = head.trim_end().strip_suffix("steps").filter(|h| h.ends_with(char::is_whitespace)) {
            steps = Some(n.parse::<u64>().map_err(|_| format!("`{n}` is not a number of steps; {usage}"))?);
            t = head.trim_end();
        }
    }
    let (head, problem) = t.rsplit_once(char::is_whitespace).ok_or(usage)?;
    let rule = head.trim_end().strip_suffix("on").filter(|h| h.ends_with(char::is_whitespace)).ok_or(usage)?;
    let rule = rule.trim();
    if rule.is_empty() {
        return Err(usage.into());
    }
    Ok(TryArgs { rule, problem, steps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness() {
        assert!(!needs_more("2 * 3"));
        assert!(needs_more("rule r(lr)(g) {"));
        assert!(needs_more("rule r(lr)(g) {\n  state m = zeros_like(g)"));
        assert!(!needs_more("rule r(lr)(g) {\n  return -lr * g\n}"));
        assert!(needs_more("schedule s(p) ="));
        assert!(needs_more("f(1,"));
        assert!(needs_more("/// doc"));
        assert!(!needs_more("// just a comment"));
        assert!(!needs_more("\"(\" + 1"), "brackets in strings do not count");
        assert!(!needs_more("1 // (comment"), "brackets in comments do not count");
        assert!(!needs_more(":type randn([3"), "commands are one line");
        assert!(!needs_more("1)"), "an extra closer is the parser's to report");
        assert!(needs_more("a and"));
        assert!(!needs_more("x^T"));
        assert!(continues("else { 0 }"));
        assert!(!continues("elsewhere"));
    }

    #[test]
    fn kinds() {
        assert_eq!(classify("  "), Kind::Empty);
        assert_eq!(classify("// c"), Kind::Empty);
        assert_eq!(classify(":type x + 1"), Kind::Command("type", "x + 1"));
        assert_eq!(classify(":help"), Kind::Command("help", ""));
        assert_eq!(classify("rule r(g) = g"), Kind::Decl);
        assert_eq!(classify("/// doc\nrule r(g) = g"), Kind::Decl);
        assert_eq!(classify("import \"a.opt\""), Kind::Decl);
        assert_eq!(classify("rule"), Kind::Expr);
        assert_eq!(classify("model + 1"), Kind::Expr);
        assert_eq!(classify("let x = 2 * 3"), Kind::Let(vec!["x".into()], "2 * 3"));
        assert_eq!(classify("let (u, s) = f(1)"), Kind::Let(vec!["u".into(), "s".into()], "f(1)"));
        assert_eq!(classify("let x == 1"), Kind::Expr);
        assert_eq!(classify("letter"), Kind::Expr);
    }

    #[test]
    fn names_and_arguments() {
        assert_eq!(identifiers("adam(lr = lr2) + \"x y\" // z\n1e3"), vec!["adam", "lr", "lr2"]);
        assert_eq!(split_shape("gd").unwrap(), ("gd", None));
        assert_eq!(split_shape("gd(lr = 1) [2, 3]").unwrap(), ("gd(lr = 1)", Some(vec![2, 3])));
        assert_eq!(split_shape("gd []").unwrap(), ("gd", Some(vec![])));
        assert_eq!(split_shape("f(x = [1, 2])").unwrap(), ("f(x = [1, 2])", None));
        assert!(split_shape("gd [2, -1]").is_err());
        let t = split_try("gd(lr = 0.1) on rosenbrock steps 20").unwrap();
        assert_eq!(t, TryArgs { rule: "gd(lr = 0.1)", problem: "rosenbrock", steps: Some(20) });
        let t = split_try("adam on quadratic").unwrap();
        assert_eq!(t, TryArgs { rule: "adam", problem: "quadratic", steps: None });
        assert!(split_try("adam quadratic").is_err());
        assert!(split_try("on quadratic").is_err());
        assert!(split_try("adam on quadratic steps x").is_err());
    }
}
