//! The canonical formatter. Every example and stdlib file, and a set of tricky snippets, must
//! parse after formatting to the same AST (spans aside), keep every `//` comment, format to the
//! same text a second time, and check exactly as before; the same must hold with a comment
//! between every two tokens, and the layout must not depend on the input's. A few exact outputs
//! pin the layout policy down.

use optic_compiler::check::check_source;
use optic_compiler::syntax::{ast, format_expr, format_file, parse_expr, parse_file};
use optic_compiler::SourceFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn parse(name: &str, text: &str) -> Result<ast::File, String> {
    parse_file(&Arc::new(SourceFile::new(name, text))).map_err(|d| {
        let (line, col) = d.source.line_col(d.labels.first().map_or(0, |l| l.span.start));
        format!("{name}:{line}:{col}: {}", d.message)
    })
}

/// The tree's `Debug` text with every span replaced by `Span`, so two trees compare by
/// structure and content only (names, numbers and their spellings, docs, parentheses, ...).
fn erase_spans(tree: &impl std::fmt::Debug) -> String {
    let debug = format!("{tree:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(i) = rest.find("Span { start: ") {
        out.push_str(&rest[..i]);
        out.push_str("Span");
        let after = &rest[i..];
        let close = after.find('}').expect("a span's Debug text ends with a brace");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The `//` comments of a source text (doc lines excluded), sorted. Written independently of the
/// formatter's own scanner so the two check each other.
fn comments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                '/' if !in_string && line[i..].starts_with("//") => {
                    let comment = line[i..].trim_end();
                    if !comment.starts_with("///") || comment.starts_with("////") {
                        out.push(comment.to_string());
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Formats `src` and checks everything the formatter promises; returns the formatted text.
fn check(name: &str, src: &str) -> String {
    let file = parse(name, src).unwrap_or_else(|e| panic!("input does not parse: {e}"));
    let out = format_file(src, &file);
    let again = parse(name, &out).unwrap_or_else(|e| panic!("output does not parse: {e}\n{out}"));
    assert_eq!(erase_spans(&file), erase_spans(&again), "{name}: the AST changed; output:\n{out}");
    assert_eq!(comments(src), comments(&out), "{name}: comments changed; output:\n{out}");
    let twice = format_file(&out, &again);
    assert_eq!(out, twice, "{name}: formatting is not idempotent");
    for (n, line) in out.lines().enumerate() {
        assert_eq!(line, line.trim_end(), "{name}:{}: trailing whitespace", n + 1);
        assert!(!line.contains('\t'), "{name}:{}: a tab", n + 1);
    }
    assert!(out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")), "{name}: bad file end");
    out
}

fn opt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            opt_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "opt") {
            out.push(path);
        }
    }
}

#[test]
fn examples_and_stdlib_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut examples = Vec::new();
    opt_files(&root.join("examples"), &mut examples);
    assert!(!examples.is_empty(), "no examples found under {}", root.display());
    let mut files = examples;
    opt_files(&root.join("stdlib"), &mut files);
    files.sort();
    for path in files {
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path.display().to_string();
        // stdlib is being written concurrently: a file that does not parse yet is not ours to judge.
        if parse(&name, &src).is_err() && path.starts_with(root.join("stdlib")) {
            continue;
        }
        check(&name, &src);
    }
}

#[test]
fn formatted_files_still_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    opt_files(&root.join("examples"), &mut files);
    opt_files(&root.join("stdlib"), &mut files);
    let mut clean = 0;
    for path in files {
        let Ok(src) = std::fs::read_to_string(&path) else { continue };
        let name = path.display().to_string();
        let Ok(file) = parse(&name, &src) else { continue };
        let dir = path.parent().unwrap_or(&root);
        let out = format_file(&src, &file);
        let (before, after) = (check_source(&name, &src, dir), check_source(&name, &out, dir));
        let messages = |c: &optic_compiler::check::Checked| -> Vec<String> {
            c.diagnostics.iter().map(|d| format!("{}: {}", d.code, d.message)).collect()
        };
        assert_eq!(messages(&before), messages(&after), "{name}: formatting changed what the checker says");
        assert_eq!(before.summaries, after.summaries, "{name}: formatting changed the checked form");
        clean += usize::from(before.is_ok() && !before.summaries.is_empty());
    }
    assert!(clean > 0, "no file checked cleanly, so this test showed nothing");
}

const SNIPPETS: &[(&str, &str)] = &[
    (
        "comments everywhere",
        r#"// file header

// second header paragraph
import "lib.opt" // trailing on an import

/// Doc for a.
///
///   indented doc line
rule a(lr = 1e-3)(g) { // after the brace
    // leading
    state m = zeros_like(g) // trailing
    m = 0.9 * m + g


    // after two blank lines
    let x = f(1, // inside a call
        2)
    let y = if x > 0 { // inside an if
        x
    } // after the if
    else { -x }
    return -lr * m // last
    // end of block

    // end of block after a blank
} // after the item
// right after the item

schedule s = 1 // trailing on an expression body
model empty { // only a comment
}
//// four slashes
/// doc
// between doc and item
/// doc 2
fn f(x) = x
// end of file"#,
    ),
    (
        "comments in experiments",
        r#"experiment e {
    seed = 0 // the seed
    log every 10 { loss, // first
        // before gap
        gap = norm(a - b), last = 1 // last entry
        // end of log
    } // after log
    data x = gaussian([4, 2]) // trailing
        fresh every step
    sweep lr in [1, // one
      2], seed in 0..4
}"#,
    ),
    (
        "comments inside if blocks",
        "rule r()(g) {\n    let d = if c { a // why\n    } else { b }\n    let e = if c {} else { // nothing\n    }\n    return if c { // x\n d } else if q { e } else { // y\n f }\n}",
    ),
    (
        "doc comments",
        "/// one\nrule a()(g) = g\n///\n///two\n/// three  \nimport \"x.opt\"\n/// /slash\nmodel m {}",
    ),
    (
        "nested ifs",
        r#"rule r(a, b)(g) {
    if a { if b { g } else { -g } }
    let x = if a { 1 } else if b { 2 } else if not a { 3 } else { 4 }
    let y = if a { let t = 2 * g
        t } else { if b { 1 } else { 0 } }
    if a { x = 1 }
    if b {}
    return (if a { x } else { y }) + if b { 1 } else { 2 }
}"#,
    ),
    (
        "every statement kind",
        r#"model two_layer(d, k, act = relu) {
    param w[k, d] = gaussian(std = 1 / sqrt(d))
    param a[k]    = gaussian(std = 1 / sqrt(k))
    frozen f = w * 2
    forward(x[batch, d]) = act(x @ w^T) @ a
}
model blocky { forward(x, y[*s]) { let z = x + y
 z } }
adapter lora(rank = 8, alpha = 16) on w[m, n] {
    param a[rank, n] = kaiming_uniform(a = sqrt(5))
    weight = w + (alpha / rank) * b @ a
}
rule galore(inner: rule, rank = 128)(g) {
    state P = left_singular(g, rank) refresh every period reset every 3
    var v = 0
    v += 1 v -= 2 v *= 3 v /= 4
    let (q, (r, s)) = qr(g)
    repeat n as i { v = v + i }
    repeat 3 { v = v }
    for r in rules { v = r(v) }
    return adam(lr)(x) reset every 100
}
experiment e {
    seed = 0
    base = two_layer(d, k)
    teacher = base with w += outer(a, b), a = zeros([k]), w.x -= 1
    student = base adapted by lora(rank = 1) on w, layers.*.w
    data x, y = load("f.npz") fresh every step batch 32 holdout 0.1
    data z = load("g.npz")
    optimize a.b, c.* with adam(lr = 1e-3)
    init model.w with lowrank(rank = r)
    log every 50 { loss moved = norm(a) }
    log every 1 {}
    checkpoint every 100
    sweep lr in [1e-3, 1e-2], seed in 0..4, n in range(3)
}"#,
    ),
    (
        "operators and precedence",
        r#"fn ops(a, b, c) {
    let p = -x^2 + (-x)^2 - a^b^c + (a^b)^c
    let q = not b and c or d == e != f < g <= h > i >= j
    let r = a - (b - c) + a / b * c @ d / (a * b)
    let s = x @ w^T + x^T^T + a ^ T + a ^ T.x + a^Tx + a ^ T(1)
    let t = - -x + - - -x + not not y + (a == not b) + a - -b + 2^-1 + -1
    let u = (((a))) + f(x)(y)[0].z^T
    return 1.50 + 1e-3 + 2E+5 + 007 + 0.0
}"#,
    ),
    (
        "slices and tuples",
        r#"fn sl(x, s) {
    let a = s[:, None] + x[1:3] + x[::2] + x[1:] + x[:3] + x[1:3:2] + x[:] + x[::] + x[1:3:]
    let b = x[i][j] + x[a + 1:b, None, 0,] + x[f(1):-1]
    let c = (a,) + (a, b) + (a, b,) + ((a,),) + [] + [1] + [1, 2,] + [[1, 2], [3]]
    return (c, (a, b))
}"#,
    ),
    (
        "strings",
        r#"import "quote\"and\\back\nnew\ttab.opt"
experiment e {
    data x = load("// not a comment") // a comment
    data y = load("with \"// quote\" inside")
    data z = load("") // empty "string" in a comment
}"#,
    ),
    (
        "empty parameter lists and missing ones",
        "rule sign()(g) = sign(g)\ninit zeros[*s] = fill(s, 0)\ninit ones()[*s] = fill(s, 1)\nschedule constant = 1\nschedule flat() = 1\nmodel m {}\nmodel n() { }\nfn one() = 1\nrule id()() { }",
    ),
    (
        "variadic, typed and bounded parameters",
        "rule chain(*rules: rule)(g) { var x = g for r in rules { x = r(x) } return x }\nrule adam(lr: float = 1e-3, beta1 in [0, 1) = 0.9, eps in (0, 1], k: int in [1, 10])(g) = g",
    ),
    (
        "long lines",
        r#"rule muon_adamw(lr = 0.02)(g) = partition(matrices = muon(lr = lr), vectors = chain(adam(lr = 3e-4), decay(3e-4 * 0.01)))(g)
schedule cosine(peak, warmup, total, floor = 0) = if step <= warmup { peak * step / warmup } else { floor + (peak - floor) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))) }
rule stable_spam(lr = 1e-3, theta = 0.999, gamma1 = 0.7, gamma2 = 0.9, reset_period = 1000, another_one = 1)(gradient_input[rows, cols]) { return g }
experiment e {
    sweep lr in [0.000001, 0.000002, 0.000003, 0.000004, 0.000005, 0.000006, 0.000007, 0.000008, 0.000009]
    optimize model.* with chain(clip_global_norm(1.0), adam(lr = cosine(lr, warmup = 100, total = 2000, floor = 1e-5)))
    log every 100 { loss, moved = norm(model.w - initial(model.w)) / norm(initial(model.w)) + norm(model.w - initial(model.w)) }
    let a_very_long_name = some_function(argument_number_one, argument_number_two)(applied_to_this_tensor_here) + 1
}"#,
    ),
    ("CRLF and tabs", "// header\r\n\r\nrule a()(g) {\r\n\tlet x = 1 // one\r\n\r\n\treturn x\r\n}\r\n"),
    (
        "comments in headers and expression bodies",
        "/// d\nrule r(lr = 1, // the rate\n b = 2)(g) = g\nfn f(x) = if x { // c\n 1 } else { 2 }\n\
         rule // odd\n q()(g) = g /// doc after code\nrule b()(g) = g",
    ),
    (
        "block values after statements",
        "rule r()(g) { repeat 3 { g = g } -g }\nrule s()(g) { if c { g = 1 } (g) }\nrule t()(g) { for x in l { g = x } [g] }",
    ),
    (
        "unbreakable and deeply nested",
        "fn f() = a_very_long_name_that_cannot_be_broken_anywhere_at_all_no_matter_what_the_printer_tries_to_do_with_it\n\
         fn g() = f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(f(1, 2), 3), 4), 5), 6), 7), 8), 9), 10), 11), 12), 13), 14), 15), 16), 17), 18), 19)\n\
         fn h(a, b) = (b / (a * (b - (a + (b / (a * (b - (a + (b / (a * (b - (a + (b / (a * (b - (a + (a + b)))))))))))))))))",
    ),
    ("whitespace only", "   \n\n\t\n"),
    ("only comments", "// one\n\n\n// two\n"),
    ("empty file", ""),
    ("unicode", "// héllo wörld\nexperiment e { data x = load(\"δ.npz\") // ünïcode\n}"),
];

#[test]
fn snippets_round_trip() {
    for (name, src) in SNIPPETS {
        check(name, src);
    }
}

/// `src` with a comment in every gap between tokens that holds a space or a newline (outside
/// strings and comments), so comments land inside expressions, headers, clauses and blocks.
fn sprinkle(src: &str) -> String {
    let mut out = String::new();
    let (mut in_string, mut in_comment, mut n) = (false, false, 0);
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                out.push(c);
                out.extend(chars.next());
                continue;
            }
            '"' if !in_comment => in_string = !in_string,
            '/' if !in_string && chars.peek() == Some(&'/') => in_comment = true,
            ' ' | '\n' if !in_string && !in_comment => {
                n += 1;
                out.push_str(&format!(" // c{n}\n"));
                continue;
            }
            '\n' => in_comment = false,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[test]
fn comments_between_all_tokens_survive() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    opt_files(&root.join("examples"), &mut files);
    let mut sources: Vec<(String, String)> =
        files.iter().filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(p).ok()?))).collect();
    sources.extend(SNIPPETS.iter().map(|(n, s)| (n.to_string(), s.to_string())));
    for (name, src) in sources {
        let sprinkled = sprinkle(&src);
        assert!(comments(&sprinkled).len() > comments(&src).len() || src.trim().is_empty(), "{name}");
        check(&format!("{name} (sprinkled)"), &sprinkled);
    }
}

/// `src` without its `//` comments and, if `squeeze`, with every run of whitespace outside
/// strings and doc lines made one space.
fn strip(src: &str, squeeze: bool) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(c) = rest.chars().next() {
        let n = if c == '"' {
            // The string's end: the next quote not escaped.
            let mut chars = rest.char_indices().skip(1);
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            out.push_str(&rest[..end]);
            end
        } else if rest.starts_with("//") {
            let eol = rest.find('\n').unwrap_or(rest.len());
            if rest.starts_with("///") && !rest.starts_with("////") {
                out.push_str(&rest[..eol]);
                out.push('\n');
            }
            eol
        } else if c.is_whitespace() && squeeze {
            let n = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
            if !out.ends_with('\n') {
                out.push(' ');
            }
            n
        } else {
            out.push(c);
            c.len_utf8()
        };
        rest = &rest[n..];
    }
    out
}

#[test]
fn layout_does_not_depend_on_the_input_layout() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    opt_files(&root.join("examples"), &mut files);
    opt_files(&root.join("stdlib"), &mut files);
    let mut sources: Vec<(String, String)> =
        files.iter().filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(p).ok()?))).collect();
    sources.extend(SNIPPETS.iter().map(|(n, s)| (n.to_string(), s.to_string())));
    let without_blank_lines = |t: String| t.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
    for (name, src) in sources {
        let Ok(file) = parse(&name, &src) else { continue };
        let squeezed = strip(&src, true);
        let again =
            parse(&name, &squeezed).unwrap_or_else(|e| panic!("squeezed {name} does not parse: {e}\n{squeezed}"));
        assert_eq!(erase_spans(&file), erase_spans(&again), "{name}: squeezing changed the AST");
        let plain = strip(&src, false);
        let plain_file = parse(&name, &plain).unwrap_or_else(|e| panic!("{name} without comments: {e}"));
        assert_eq!(
            without_blank_lines(format_file(&squeezed, &again)),
            without_blank_lines(format_file(&plain, &plain_file)),
            "{name}"
        );
    }
}

#[test]
fn the_checks_are_real() {
    let a = parse("a", "rule a()(g) = g * 2").unwrap();
    let b = parse("b", "rule  a ( ) ( g )=g*2 // c").unwrap();
    let c = parse("c", "rule a()(g) = (g * 2)").unwrap();
    assert_eq!(erase_spans(&a), erase_spans(&b));
    assert_ne!(erase_spans(&a), erase_spans(&c));
    assert_ne!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(comments("x = \"//\" // c\n/// d\n//// e"), ["// c", "//// e"]);
}

fn fmt(src: &str) -> String {
    check("expected", src)
}

#[test]
fn spacing() {
    assert_eq!(
        fmt("rule adam(lr=1e-3,beta1 in[0,1)=0.9)(g){\nstate m=zeros_like(g)\nm=beta1*m+(1-beta1)*g\nlet v=g ^ 2+beta1^step+-lr\nlet w=x@w ^T\nlet s=s[ : ,None ]+x[1 : 3]+x[ : : 2]\nreturn not a and f(x,k=1,)\n}"),
        "rule adam(lr = 1e-3, beta1 in [0, 1) = 0.9)(g) {
    state m = zeros_like(g)
    m = beta1 * m + (1 - beta1) * g
    let v = g^2 + beta1^step + -lr
    let w = x @ w^T
    let s = s[:, None] + x[1:3] + x[::2]
    return not a and f(x, k = 1)
}
"
    );
}

#[test]
fn items_and_blank_lines() {
    assert_eq!(
        fmt("/// Doc.\nrule a()(g) {\n\n  let x = 1\n\n\n\n  let y = 2\n  return y\n\n}\nrule b()(g) = g\n\n\n\n\ninit zeros[*s] = fill(s, 0)"),
        "/// Doc.
rule a()(g) {
    let x = 1

    let y = 2
    return y
}

rule b()(g) = g

init zeros[*s] = fill(s, 0)
"
    );
}

#[test]
fn comments_are_placed() {
    assert_eq!(
        fmt("// head\nrule a()(g) { // brace\n  let x = f(1, // arg\n 2) // tail\n\n  // lead\n  return x\n  // end\n} // after\n// eof"),
        "// head
rule a()(g) {
    // brace
    // arg
    let x = f(1, 2) // tail

    // lead
    return x
    // end
} // after
// eof
"
    );
}

#[test]
fn if_fits_on_one_line_or_breaks() {
    assert_eq!(
        fmt("rule muon(nesterov = true)(g) {\n let d = if nesterov {\n g + momentum * buf\n } else { buf }\n \
             if nesterov { buf = g }\n return d }"),
        "rule muon(nesterov = true)(g) {
    let d = if nesterov { g + momentum * buf } else { buf }
    if nesterov {
        buf = g
    }
    return d
}
"
    );
}

#[test]
fn expression_bodies_move_to_the_next_line_when_long() {
    assert_eq!(
        fmt("rule decay(rate)(g) = g - rate * param\n\
             rule muon_adamw(lr = 0.02)(g) = partition(\n    matrices = muon(lr = lr),\n    \
             vectors  = chain(adam(lr = 3e-4), decay(3e-4 * 0.01)),\n)(g)\n\
             schedule cosine(peak, warmup, total, floor = 0) =\n    if step <= warmup { peak * step / warmup }\n    \
             else { floor + (peak - floor) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))) }"),
        "rule decay(rate)(g) = g - rate * param

rule muon_adamw(lr = 0.02)(g) =
    partition(matrices = muon(lr = lr), vectors = chain(adam(lr = 3e-4), decay(3e-4 * 0.01)))(g)

schedule cosine(peak, warmup, total, floor = 0) =
    if step <= warmup {
        peak * step / warmup
    } else {
        floor + (peak - floor) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))
    }
"
    );
}

#[test]
fn long_lines_break_argument_lists_and_operator_chains() {
    assert_eq!(
        fmt("rule stable_spam(lr = 1e-3, beta1 = 0.9, beta2 = 0.999, theta = 0.999, gamma1 = 0.7, gamma2 = 0.9)(g) {\n\
             let u = adam(lr = lr, beta1 = beta1 * s, beta2 = beta2, eps = eps)(x) reset every update_proj_gap\n\
             return -clamp(step_size / denom, lower, upper) * m - decoupled_rate(lr, weight_decay, fixed_decay) * param\n}\n\
             experiment e { optimize model.* with chain(clip_global_norm(1.0), adam(lr = cosine(lr, warmup = 100, total = 2000))) }"),
        "rule stable_spam(
    lr = 1e-3,
    beta1 = 0.9,
    beta2 = 0.999,
    theta = 0.999,
    gamma1 = 0.7,
    gamma2 = 0.9,
)(g) {
    let u = adam(
        lr = lr,
        beta1 = beta1 * s,
        beta2 = beta2,
        eps = eps,
    )(x) reset every update_proj_gap
    return -clamp(step_size / denom, lower, upper) * m
        - decoupled_rate(lr, weight_decay, fixed_decay) * param
}

experiment e {
    optimize model.* with chain(
        clip_global_norm(1.0),
        adam(lr = cosine(lr, warmup = 100, total = 2000)),
    )
}
"
    );
}

#[test]
fn experiment_statements() {
    assert_eq!(
        fmt("experiment e {\n teacher = base with w += outer(a, b)\n student = base adapted by lora(rank = 1) on w\n data x, y = load(\"f.npz\") fresh every step\n optimize a.b, c.* with adam(lr = 1e-3)\n init model.w with lowrank(rank = r)\n log every 50 { loss, moved = norm(w) }\n checkpoint every 100\n sweep lr in [1e-3, 1e-2], seed in 0..4\n}"),
        "experiment e {
    teacher = base with w += outer(a, b)
    student = base adapted by lora(rank = 1) on w
    data x, y = load(\"f.npz\") fresh every step
    optimize a.b, c.* with adam(lr = 1e-3)
    init model.w with lowrank(rank = r)
    log every 50 {
        loss
        moved = norm(w)
    }
    checkpoint every 100
    sweep lr in [1e-3, 1e-2], seed in 0..4
}
"
    );
}

#[test]
fn expressions() {
    let cases = [
        ("-lr*m_hat/(sqrt(v_hat)+eps)", "-lr * m_hat / (sqrt(v_hat) + eps)"),
        ("g ^ 2", "g^2"),
        ("a ^ T", "a ^ T"),
        ("x@w ^T", "x @ w^T"),
        ("( a , )", "(a,)"),
        ("\"a\\\"b\\\\c\\nd\\te\"", "\"a\\\"b\\\\c\\nd\\te\""),
        ("if a {1} else {2}", "if a { 1 } else { 2 }"),
        ("f(k=1,)", "f(k = 1)"),
    ];
    for (src, want) in cases {
        let e = parse_expr(&Arc::new(SourceFile::new("e", src))).unwrap_or_else(|d| panic!("{src}: {}", d.message));
        assert_eq!(format_expr(&e), want);
    }
}

#[test]
fn a_mismatched_source_loses_nothing_from_the_tree() {
    // The source is only consulted for comments and blank lines; a wrong one must not panic.
    let src = "rule a(lr = 1)(g) {\n    // c\n    return -lr * g\n}\n";
    let file = parse("a", src).unwrap();
    for other in ["", "x", "é // ü\n\n\n", &src.repeat(3)] {
        let out = format_file(other, &file);
        let again = parse("out", &out).unwrap();
        assert_eq!(erase_spans(&file), erase_spans(&again));
    }
}
