//! `optic repl` as a user drives it: scripts piped to stdin (or named on the command line) and
//! the transcripts they produce, each input echoed after its prompt and followed by the reply.
//! The transcripts are pinned with insta, so any change to what a researcher sees (values,
//! diagnostics, IR, `:try` tables, replay verdicts) shows up as a snapshot diff. Everything the
//! REPL prints is deterministic: random draws are counter-based and the toy problems are seeded.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `optic repl` with `script` on stdin, from the repository root.
fn repl(script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_optic"))
        .arg("repl")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the optic binary runs");
    child.stdin.take().expect("stdin is piped").write_all(script.as_bytes()).expect("the script is written");
    child.wait_with_output().expect("optic repl ends")
}

/// The transcript of a script, which must end with exit code 0 and nothing on stderr.
fn transcript(script: &str) -> String {
    let o = repl(script);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "exit {:?}, stderr:\n{stderr}", o.status);
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    String::from_utf8(o.stdout).expect("the transcript is UTF-8")
}

/// The transcript of a script given as its lines.
fn session(lines: &[&str]) -> String {
    transcript(&format!("{}\n", lines.join("\n")))
}

#[test]
fn arithmetic_and_let() {
    insta::assert_snapshot!(session(&[
        "2 * 3 + 1",
        "1 / 3",
        "let x = 2 * 3",
        "x",
        "let y = x / 4 + 1",
        "y * 2",
        "sqrt(2) > 1",
        "[1, 2.5]",
    ]));
}

#[test]
fn tensor_expressions() {
    insta::assert_snapshot!(session(&[
        "randn([3, 4]) @ randn([4, 2])",
        ":type randn([3, 4]) @ randn([4, 2])",
        "let w = randn([2, 3])",
        "w",
        "w",
        "sum(w^T @ w)",
        "randn([12, 3]) > 0",
        "let (u, s, vt) = svd(eye(3), 2)",
        "s",
    ]));
}

#[test]
fn multi_line_rule_then_ir() {
    insta::assert_snapshot!(session(&[
        "/// Heavy-ball momentum.",
        "rule momentum2(lr = 0.1, beta = 0.9)(g) {",
        "    state m = zeros_like(g)",
        "    m = beta * m + g",
        "    return -lr * m",
        "}",
        ":ir momentum2(lr = 0.5) [3]",
        ":type momentum2",
    ]));
}

#[test]
fn schedule_and_init() {
    insta::assert_snapshot!(session(&[
        "schedule warmup(peak, n: int) =",
        "    if step <= n { peak * step / n }",
        "    else { peak }",
        "init scaled(std = 1)[m, n] = randn([m, n]) * std",
        "scaled([2, 3], std = 0.5)",
        "rule warm_gd(peak = 0.1)(g) = -warmup(peak, 10) * g",
        ":ir warm_gd [2]",
        ":list",
    ]));
}

#[test]
fn errors_leave_the_session_going() {
    insta::assert_snapshot!(session(&[
        "1 + nope",
        "1 + 1",
        "rule gd(lr = 0.1)(g) {",
        "    return -lr * gg",
        "}",
        ":list",
        "rule gd(lr = 0.1)(g) = -lr * g",
        "rule gd(lr = 0.2)(g) = -lr * g",
        "let z = gd + 1",
        ":try gd on nowhere",
        ":frobnicate",
        ":list",
    ]));
}

#[test]
fn type_of_expressions_and_declarations() {
    insta::assert_snapshot!(session(&[
        "rule gd(lr = 0.1)(g) = -lr * g",
        ":type gd",
        ":type gd(lr = 0.5)",
        ":type sgd",
        ":type 2 * 3",
        ":type randn([4, 3]) @ randn([3])",
        ":type randn([4, 3]) @ randn([4])",
    ]));
}

#[test]
fn try_on_toy_problems() {
    insta::assert_snapshot!(session(&[
        "rule gd(lr = 0.1)(g) = -lr * g",
        ":try gd(lr = 0.1) on quadratic",
        ":try gd(lr = 1e-3) on rosenbrock steps 20",
        ":try gd(lr = 0.1) on least_squares steps 50",
        ":try sgd(lr = 0.05, momentum = 0.9) on noisy_quadratic steps 30",
        ":try gd(lr = 0.25) on quadratic steps 10",
    ]));
}

#[test]
fn replay_a_golden_fixture() {
    // torch_sgd was recorded with lr = 0.05 (its `hyper`).
    insta::assert_snapshot!(session(&[
        "rule gd(lr = 0.1)(g) = -lr * g",
        ":replay tests/golden/torch_sgd.json sgd(lr = 0.05)",
        ":replay tests/golden/torch_sgd.json gd(lr = 0.05)",
        ":replay tests/golden/torch_sgd.json gd(lr = 0.04)",
        ":replay tests/golden/no_such_fixture.json gd",
    ]));
}

#[test]
fn load_a_file() {
    insta::assert_snapshot!(session(&[":load examples/rules.opt", ":ir decay(0.1) [2]", ":load no/such/file.opt"]));
}

#[test]
fn help() {
    insta::assert_snapshot!(session(&[":help"]));
}

#[test]
fn quit_ends_the_script() {
    assert_eq!(transcript("1\n:quit\n2\n"), "opt> 1\n1\nopt> :quit\n");
}

#[test]
fn a_script_file_gives_the_same_transcript() {
    let script = "let x = 2 * 3\nx + 1\n";
    let path = std::env::temp_dir().join(format!("optic-repl-{}.opt", std::process::id()));
    std::fs::write(&path, script).expect("the script is written");
    let o = Command::new(env!("CARGO_BIN_EXE_optic"))
        .arg("repl")
        .arg(&path)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("the optic binary runs");
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), transcript(script));
}

#[test]
fn a_missing_script_exits_1() {
    let o = Command::new(env!("CARGO_BIN_EXE_optic"))
        .args(["repl", "no/such/script.opt"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the optic binary runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read no/such/script.opt"));
}

#[test]
fn hostile_input_does_not_end_the_session() {
    // Inputs left open (a trailing operator, an open bracket) swallow the lines after them, so
    // they come last.
    let script =
        "]]]]\n:ir\n:try\n:replay x\n\"unterminated\n\u{0}\n1e999999\nlet = 3\n:ir gd [99999999999999999999]\n\
                  1 + 1\n-\nlet (a, = 1\n((((((((((\n";
    let t = transcript(script);
    assert!(t.contains("opt> 1 + 1\n2\n"), "{t}");
}
