//! The `optic` binary as a user runs it: exit codes, rendered diagnostics, `--plain` lines,
//! `fmt` rewriting and `--check`, help text, and hostile inputs that must not crash it.

mod common;

use common::{optic, stderr};
use std::path::{Path, PathBuf};

fn opt_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .expect("directory exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "opt"))
        .map(|p| format!("{dir}/{}", p.file_name().expect("file").to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optic-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(format!("{name}.opt"));
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn every_shipped_file_checks() {
    let mut args = vec!["check"];
    let files: Vec<String> = opt_files("examples").into_iter().chain(opt_files("stdlib")).collect();
    args.extend(files.iter().map(String::as_str));
    let o = optic(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no problems"));
}

#[test]
fn a_bad_file_exits_1_naming_file_line_and_column() {
    let o = optic(&["check", "tests/diagnostics/036_shapes_matmul_in_forward.opt"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("E501"), "{err}");
    assert!(err.contains("tests/diagnostics/036_shapes_matmul_in_forward.opt:5:33"), "{err}");
    assert!(err.contains("left: [m, n]") && err.contains("right: [k, n]"), "{err}");

    let o = optic(&["check", "--plain", "tests/diagnostics/036_shapes_matmul_in_forward.opt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("tests/diagnostics/036_shapes_matmul_in_forward.opt:5:33: E501 "), "{}", stderr(&o));
}

#[test]
fn independent_errors_are_all_reported() {
    let o = optic(&["check", "--plain", "tests/diagnostics/076_multi_independent_errors.opt"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let codes: Vec<&str> = err.lines().filter_map(|l| l.split(' ').nth(1)).filter(|c| c.starts_with('E')).collect();
    assert!(codes.len() >= 3, "{err}");
}

#[test]
fn a_missing_file_is_a_diagnostic() {
    let o = optic(&["check", "no/such/file.opt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
}

#[test]
fn summary_prints_the_checked_form() {
    let o = optic(&["check", "--summary", "examples/lora_teacher_student.opt"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("optimize student.w.a[1, 64], student.w.b[32, 1]"), "{out}");
}

#[test]
fn shipped_files_are_formatted() {
    let mut args = vec!["fmt", "--check"];
    let files: Vec<String> = opt_files("examples").into_iter().chain(opt_files("stdlib")).collect();
    args.extend(files.iter().map(String::as_str));
    let o = optic(&args);
    assert!(o.status.success(), "not formatted:\n{}", stderr(&o));
}

#[test]
fn fmt_rewrites_then_is_stable_and_still_checks() {
    let p = scratch(
        "messy",
        "rule   sgd2(lr=0.1)(g){  -lr*g }   // keep me\n/// doc\nrule r(a in [0,1)=0.5)(g)\n{ state m=zeros_like(g)\n m=a*m+g\n return -m }\n",
    );
    let path = p.to_str().expect("utf-8 path");
    let o = optic(&["fmt", "--check", path]);
    assert_eq!(o.status.code(), Some(1), "an unformatted file fails --check");
    assert!(optic(&["fmt", path]).status.success());
    let once = std::fs::read_to_string(&p).expect("read");
    assert!(once.contains("// keep me") && once.contains("/// doc"), "{once}");
    assert!(optic(&["fmt", "--check", path]).status.success(), "formatting is idempotent:\n{once}");
    assert!(optic(&["check", path]).status.success(), "formatted file still checks:\n{once}");
}

#[test]
fn fmt_leaves_a_broken_file_alone() {
    let text = "rule r(lr = 0.1)(g) = -lr * \n";
    let p = scratch("broken", text);
    let o = optic(&["fmt", p.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&p).expect("read"), text);
}

#[test]
fn help_is_available_for_every_command() {
    for args in [&["--help"][..], &["check", "--help"], &["fmt", "--help"]] {
        let o = optic(args);
        assert!(o.status.success());
        assert!(!o.stdout.is_empty());
    }
    let o = optic(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "a misused command exits 2");
}

#[test]
fn hostile_inputs_do_not_crash() {
    let cases = [
        ("prefix", format!("fn f(x) = {}x\n", "-".repeat(100_000))),
        ("power", format!("fn f(x) = x{}\n", "^x".repeat(100_000))),
        ("nesting", format!("fn f(x) = {}x{}\n", "(".repeat(10_000), ")".repeat(10_000))),
        ("binary", format!("fn f(x) = x{}\n", " + x".repeat(200_000))),
        ("bytes", "rule \u{0}\u{7f}\u{feff} é (\n".to_string()),
        ("empty", String::new()),
    ];
    for (name, text) in cases {
        let p = scratch(name, &text);
        let o = optic(&["check", "--plain", p.to_str().expect("utf-8")]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{name}: {:?}\n{}", o.status, stderr(&o));
    }
}
