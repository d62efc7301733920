//! The `optic` command line: a thin layer over the compiler. Each subcommand parses its
//! arguments (clap), calls the compiler, renders diagnostics (miette) and sets the exit code:
//! 0 when clean, 1 when the input has problems, 2 when the command itself is misused.

use clap::{Parser, Subcommand};
use optic_compiler::check;
use std::path::PathBuf;
use std::process::ExitCode;

mod fmt;

/// optic: a compiler for declarative optimization experiments (.opt files).
#[derive(Parser)]
#[command(name = "optic", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files for errors without running anything.
    Check {
        /// The .opt files to check (imports are followed).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also print the checked form of every declaration: types, ranges, states, shapes.
        #[arg(long)]
        summary: bool,
        /// Print diagnostics without colours or Unicode art (one `file:line:col: code message` line each).
        #[arg(long)]
        plain: bool,
    },
    /// Format files canonically, in place.
    Fmt {
        /// The .opt files to format.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Do not write; exit 1 if any file is not formatted.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    optic_compiler::on_big_stack(move || match cli.command {
        Command::Check { files, summary, plain } => run_check(&files, summary, plain),
        Command::Fmt { files, check } => fmt::run(&files, check),
    })
}

fn run_check(files: &[PathBuf], summary: bool, plain: bool) -> ExitCode {
    let checked = check::check_paths(files);
    if summary {
        for (name, text) in &checked.summaries {
            println!("== {name}\n{text}\n");
        }
    }
    report(&checked.diagnostics, plain);
    let errors = checked.diagnostics.iter().filter(|d| d.severity == optic_compiler::diag::Severity::Error).count();
    // The process ends here: freeing every syntax tree would only cost time (~2 ms on 10k lines).
    std::mem::forget(checked);
    if errors == 0 {
        if !plain {
            eprintln!("checked {} file{}: no problems", files.len(), if files.len() == 1 { "" } else { "s" });
        }
        ExitCode::SUCCESS
    } else {
        eprintln!("{errors} error{} found", if errors == 1 { "" } else { "s" });
        ExitCode::FAILURE
    }
}

/// Prints diagnostics to stderr: rendered by miette, or one line each with `plain`.
pub fn report(diags: &[optic_compiler::Diagnostic], plain: bool) {
    for d in diags {
        if plain {
            eprintln!("{}: {} {}", d.location(), d.code, d.message);
        } else {
            eprintln!("{:?}", miette::Report::new(d.clone()));
        }
    }
}
