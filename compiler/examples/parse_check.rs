//! Parse every `.opt` file named on the command line and report syntax errors.
//!
//! `cargo run -q -p optic-compiler --example parse_check -- stdlib/*.opt`
//! prints one line per file that parses and the plain-text diagnostic of each file that does
//! not; the exit status is 1 if any file failed.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let mut failed = 0usize;
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: parse_check FILE.opt...");
        return ExitCode::from(2);
    }
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let src = Arc::new(optic_compiler::SourceFile::new(path.clone(), text));
        match optic_compiler::syntax::parse_file(&src) {
            Ok(file) => println!("ok   {path} ({} items)", file.items.len()),
            Err(d) => {
                println!("FAIL {path}");
                println!("{}", d.render_plain());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} files failed to parse", paths.len());
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
