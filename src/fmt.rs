//! `optic fmt`: rewrites files in their canonical form, or with `--check` only reports which
//! files differ from it. A file that does not parse is reported and left untouched.

use optic_compiler::syntax::{format::format_file, parse_file};
use optic_compiler::SourceFile;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the formatter over `files`.
pub fn run(files: &[PathBuf], check: bool) -> ExitCode {
    let mut failed = false;
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        let source = Arc::new(SourceFile::new(path.display().to_string(), text));
        let ast = match parse_file(&source) {
            Ok(ast) => ast,
            Err(d) => {
                crate::report(&[d], false);
                failed = true;
                continue;
            }
        };
        let formatted = format_file(&source.text, &ast);
        if formatted == source.text {
            continue;
        }
        if check {
            eprintln!("{} is not formatted", path.display());
            failed = true;
        } else if let Err(e) = std::fs::write(path, formatted) {
            eprintln!("error: cannot write {}: {e}", path.display());
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
