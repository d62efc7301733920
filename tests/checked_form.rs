//! Snapshot tests of what the checker makes of every shipped file: the checked form of each
//! example and standard-library file (which must check cleanly), and the rendered diagnostics
//! of every deliberately bad program in `tests/diagnostics/` (whose first line names the codes
//! it must produce, `// expect: E501`).

use optic_compiler::check::{check_paths, check_paths_in, check_source, Library};
use std::path::{Path, PathBuf};

fn render_all(diags: &[optic_compiler::Diagnostic]) -> String {
    diags.iter().map(|d| d.render_plain()).collect::<Vec<_>>().join("\n")
}

#[test]
fn examples_check_cleanly() {
    insta::glob!("../examples", "*.opt", |path| {
        let checked = check_paths(&[path.to_path_buf()]);
        assert!(checked.is_ok(), "{} has problems:\n{}", path.display(), render_all(&checked.diagnostics));
        let (_, summary) = &checked.summaries[0];
        insta::assert_snapshot!(summary);
    });
}

#[test]
fn stdlib_checks_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
    insta::glob!("../stdlib", "*.opt", |path| {
        let text = std::fs::read_to_string(path).expect("stdlib file is readable");
        let name = path.file_name().expect("a file").to_string_lossy();
        let checked = check_source(&name, &text, &dir);
        assert!(checked.is_ok(), "stdlib/{name} has problems:\n{}", render_all(&checked.diagnostics));
        insta::assert_snapshot!(checked.summaries[0].1);
    });
}

fn expected_codes(text: &str) -> Vec<String> {
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("// expect:")
        .map(|rest| rest.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn bad_programs_give_their_diagnostics() {
    insta::glob!("diagnostics", "*.opt", |path| {
        let text = std::fs::read_to_string(path).expect("readable");
        let expected = expected_codes(&text);
        assert!(!expected.is_empty(), "{} lacks a `// expect: CODE` first line", path.display());
        // Check with a path relative to the repository so rendered file names are stable.
        let rel: PathBuf = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).to_path_buf();
        let checked = with_repo_cwd(|| check_paths(std::slice::from_ref(&rel)));
        let got: Vec<String> = checked.diagnostics.iter().map(|d| d.code.to_string()).collect();
        assert_eq!(got, expected, "{}:\n{}", path.display(), render_all(&checked.diagnostics));
        for d in &checked.diagnostics {
            assert!(!d.labels.is_empty(), "every diagnostic points somewhere: {d:?}");
        }
        insta::assert_snapshot!(render_all(&checked.diagnostics));
    });
}

#[test]
fn valid_programs_check_cleanly() {
    insta::glob!("diagnostics/valid", "*.opt", |path| {
        let rel: PathBuf = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).to_path_buf();
        let checked = with_repo_cwd(|| check_paths(std::slice::from_ref(&rel)));
        assert!(checked.is_ok(), "{} should check:\n{}", path.display(), render_all(&checked.diagnostics));
    });
}

/// Checking against only the library declarations a program names gives the same checked
/// form and the same diagnostics as checking against the whole library, for every example and
/// every valid and invalid test program.
#[test]
fn the_named_part_of_the_library_checks_like_the_whole() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "tests/diagnostics", "tests/diagnostics/valid"] {
        let entries = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).expect("the directory exists");
        files.extend(
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "opt")),
        );
    }
    files.sort();
    assert!(files.len() > 50, "only {} programs found", files.len());
    for file in files {
        let rel: PathBuf = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&file).to_path_buf();
        let whole = with_repo_cwd(|| check_paths(std::slice::from_ref(&rel)));
        let named = with_repo_cwd(|| check_paths_in(std::slice::from_ref(&rel), Library::NamedBy(&[])));
        assert_eq!(render_all(&named.diagnostics), render_all(&whole.diagnostics), "{}", rel.display());
        assert_eq!(named.summaries, whole.summaries, "{}", rel.display());
        if whole.is_ok() {
            let library_units = named.program.units.iter().filter(|u| u.stdlib && u.ast.is_some()).count();
            let library_decls = named.program.decls.iter().filter(|d| named.program.units[d.unit].stdlib).count();
            let all_decls = whole.program.decls.iter().filter(|d| whole.program.units[d.unit].stdlib).count();
            assert!(
                library_units > 0 && library_decls < all_decls / 2,
                "{}: {library_decls} of {all_decls} library declarations loaded",
                rel.display()
            );
        }
    }
}

/// Runs `f` with the repository as the working directory (tests run in the package root
/// already; this makes it explicit and independent of how the test binary is started).
fn with_repo_cwd<T>(f: impl FnOnce() -> T) -> T {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::current_dir().ok().as_deref() != Some(root) {
        std::env::set_current_dir(root).expect("the repository exists");
    }
    f()
}

#[test]
fn stdlib_names_do_not_hide_builtins() {
    let checked = check_source("empty.opt", "", Path::new("."));
    let builtins = optic_compiler::check::builtin_names();
    for name in checked.program.stdlib_scope.keys() {
        assert!(!builtins.contains(&name.as_str()), "stdlib declares `{name}`, which hides the builtin of that name");
    }
}

/// The README's language examples are real programs: they must check.
#[test]
fn readme_examples_check() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    // Untagged fences hold `.opt` code; tagged ones (```sh) hold other things.
    let mut program = String::new();
    let mut block: Option<bool> = None;
    for line in readme.lines() {
        match (block, line.strip_prefix("```")) {
            (None, Some(tag)) => block = Some(tag.is_empty()),
            (Some(_), Some(_)) => block = None,
            (Some(true), None) => {
                program.push_str(line);
                program.push('\n');
            }
            _ => {}
        }
    }
    assert!(program.contains("experiment lora_teacher_student"), "the README's examples were not found");
    let checked = check_source("README.opt", &program, Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(checked.is_ok(), "the README's examples do not check:\n{}", render_all(&checked.diagnostics));
}

/// One name, one declaration: across the standard library's files a later declaration of a name
/// would be silently hidden by the first.
#[test]
fn stdlib_names_are_unique() {
    use optic_compiler::syntax::ast::Item;
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for f in optic_compiler::stdlib::files() {
        for item in &f.ast.as_ref().expect("the stdlib parses").items {
            if let Item::Decl(d) = item {
                if let Some(first) = seen.insert(d.name.name.clone(), f.source.name.clone()) {
                    panic!("`{}` is declared in {first} and in {}", d.name.name, f.source.name);
                }
            }
        }
    }
}
