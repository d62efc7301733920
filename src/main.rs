//! The `optic` command line: a thin layer over the compiler. Each subcommand parses its
//! arguments (clap), calls the compiler, renders diagnostics (miette) and sets the exit code:
//! 0 when clean, 1 when the input has problems, 2 when the command itself is misused.

use clap::{Parser, Subcommand};
use optic_compiler::check;
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;
mod explain;
mod fmt;
mod hugepages;
mod repl;
mod replay;
mod run;

#[global_allocator]
static ALLOCATOR: hugepages::HugePages = hugepages::HugePages;

/// optic: a compiler for declarative optimization experiments (.opt files).
#[derive(Parser)]
#[command(name = "optic", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start an interactive session: define rules, evaluate expressions, try rules on toy problems.
    Repl {
        /// Run this script instead of reading stdin (a transcript is printed, as for piped input).
        script: Option<PathBuf>,
    },
    /// Run the experiments of a file: train, log metrics, write checkpoints, summaries and plots.
    Run {
        /// The .opt file.
        file: PathBuf,
        /// Override a `let` or setting of the experiment: `--set lr=1e-3`, `--set 'rule=adam()'`.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
        sets: Vec<(String, String)>,
        /// Write runs under DIR/<run>/ instead of runs/<experiment>/<run>/.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Threads for running sweep points in parallel (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Element type (default: the experiment's `dtype`, else f32).
        #[arg(long, value_enum)]
        dtype: Option<run::Dtype>,
        /// Continue each run from its newest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Only the experiment of this name.
        #[arg(long)]
        experiment: Option<String>,
        /// Run only the base point of a sweep.
        #[arg(long)]
        no_sweep: bool,
        /// Plain progress lines and one-line diagnostics.
        #[arg(long)]
        plain: bool,
        /// Progress display: a bar on a terminal and plain lines otherwise (auto), a bar, plain
        /// lines with step, loss and ETA, or none.
        #[arg(long, value_enum, default_value_t = run::ProgressMode::Auto)]
        progress: run::ProgressMode,
    },
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
    /// Print what the compiler makes of a file (its experiments) or of a rule, stage by stage.
    Explain {
        /// The .opt file (its experiments; with --rule, its declarations are in scope).
        file: Option<PathBuf>,
        /// Explain this rule expression instead of the file's experiments.
        #[arg(long)]
        rule: Option<String>,
        /// Parameter shapes for --rule, e.g. `--shape 8,6 --shape 6` (default 8,6).
        #[arg(long = "shape", value_parser = parse_shape)]
        shapes: Vec<Vec<usize>>,
        /// The stage to print.
        #[arg(long, value_enum, default_value = "fused")]
        stage: explain::Stage,
        /// Element type of the kernels.
        #[arg(long, value_enum, default_value = "f32")]
        dtype: run::Dtype,
        /// The step whose schedule to show (the first step initializes state; later ones are steady).
        #[arg(long, default_value_t = 2)]
        step: u64,
        /// One-line diagnostics.
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
    /// Run an update rule on a golden fixture (opt-reference/1 JSON) and write the trajectory as JSON.
    Replay {
        /// The fixture: kind `update` (recorded gradients) or `loss` (least squares).
        fixture: PathBuf,
        /// The rule expression, e.g. 'adam(lr = 1e-2)'; standard-library names are in scope.
        #[arg(long)]
        rule: String,
        /// The element type the rule runs in; f32 rounds the fixture's inputs once at load.
        #[arg(long, value_enum, default_value_t = replay::Dtype::F64)]
        dtype: replay::Dtype,
        /// Write the JSON to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed of the rule's random draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also evaluate this schedule expression and write its values as `lr_schedule`,
        /// e.g. 'cosine(0.05, warmup = 5, total = 25)'.
        #[arg(long, value_name = "EXPR")]
        lr_schedule: Option<String>,
        /// Compare with the fixture's own trajectory at its tolerance; exit 1 unless it agrees.
        /// The JSON is then written only with --out.
        #[arg(long)]
        check: bool,
        /// Substitute the arbitrary choices the peer recorded (the fixture's `extra`: SVD bases,
        /// random probes) for the rule's values marked `recorded("NAME", expr)`: extra.NAME.TENSOR
        /// is a list of {"step": t, ...: value} entries, each holding until the next, or one value
        /// per step. Fixtures whose tolerance says `inject extra.X` need it.
        #[arg(long)]
        inject: bool,
        /// What runs the rule: the JIT executor (default) or the reference interpreter.
        #[arg(long, value_enum, default_value = "jit")]
        backend: replay::Backend,
    },
    /// Run a peer benchmark workload (W1 AdamW, W2 GaLore, W3 Muon, W4 MLP training, W5 latency)
    /// and print the peers' JSON lines (shared/peers/README.md).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    optic_compiler::on_big_stack(move || match cli.command {
        Command::Check { files, summary, plain } => run_check(&files, summary, plain),
        Command::Fmt { files, check } => fmt::run(&files, check),
        Command::Run { file, sets, out, threads, dtype, resume, experiment, no_sweep, plain, progress } => {
            run::run(&run::Request { file, sets, out, threads, dtype, resume, experiment, no_sweep, plain, progress })
        }
        Command::Repl { script } => repl::run(script),
        Command::Explain { file, rule, shapes, stage, dtype, step, plain } => {
            explain::run(&explain::Request { file, rule, shapes, stage, dtype, step, plain })
        }
        Command::Replay { fixture, rule, dtype, out, seed, lr_schedule, check, inject, backend } => {
            replay::run(&replay::Request { fixture, rule, dtype, seed, lr_schedule, out, check, inject, backend })
        }
        Command::Bench(args) => bench::run(&args),
    })
}

fn run_check(files: &[PathBuf], summary: bool, plain: bool) -> ExitCode {
    let checked = check::check_paths_in(files, check::Library::NamedBy(&[]));
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

/// `name=value` of `--set`.
/// A shape written `8,6` (a scalar is the empty string).
fn parse_shape(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse::<usize>().map_err(|e| format!("`{d}`: {e}")))
        .collect()
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, found `{s}`")),
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
