//! `optic explain`: prints what the compiler makes of a file or a rule, stage by stage. For a
//! file: `ast` (the parsed file, formatted back), then per experiment `ir` (the init graph, the
//! forward training graph, one rule graph per parameter group), `grad` (the training graph with
//! its gradients), `fused` (where every node runs, each kernel and the bytes it moves) and `clif`
//! (the Cranelift IR of every kernel). For `--rule EXPR --shape 8,6`: the rule's graph, and its
//! fused form with the parameter update applied.

use crate::run::Dtype;
use optic_compiler::exec::{self, Lane};
use optic_compiler::fuse::{print_schedule, Schedule};
use optic_compiler::ir::{print_graph, Graph, NodeId};
use optic_compiler::jit;
use optic_compiler::lower::experiment::{experiments, lower_experiment};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// The stages `optic explain` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The parsed file, formatted back.
    Ast,
    /// The tensor IR before differentiation.
    Ir,
    /// The training graph with its gradients.
    Grad,
    /// The fused schedule: kernels and library calls.
    Fused,
    /// The Cranelift IR of every kernel.
    Clif,
}

/// What `optic explain` was asked.
pub struct Request {
    pub file: Option<PathBuf>,
    pub rule: Option<String>,
    pub shapes: Vec<Vec<usize>>,
    pub stage: Stage,
    pub dtype: Dtype,
    pub step: u64,
    pub plain: bool,
}

/// Runs `optic explain`.
pub fn run(req: &Request) -> ExitCode {
    let out = match req.dtype {
        Dtype::F32 => explain::<f32>(req),
        Dtype::F64 => explain::<f64>(req),
    };
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn explain<T: Lane>(req: &Request) -> Result<String, String> {
    match (&req.file, &req.rule) {
        (file, Some(rule)) => {
            let text = match file {
                Some(f) => Some((
                    f.display().to_string(),
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
                )),
                None => None,
            };
            let shapes = if req.shapes.is_empty() { vec![vec![8, 6]] } else { req.shapes.clone() };
            let graphs = optic_compiler::lower::compile_rule_in(
                text.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                rule,
                &shapes,
            )
            .map_err(|d| d.iter().map(|d| d.render_plain()).collect::<Vec<_>>().join("\n"))?;
            let mut s = String::new();
            for (g, shape) in graphs.iter().zip(&shapes) {
                let _ = writeln!(s, "== rule {rule} on {shape:?} ==");
                s += &rule_stage::<T>(g, req.stage, req.step)?;
            }
            Ok(s)
        }
        (Some(file), None) => explain_file::<T>(file, req),
        (None, None) => Err("explain needs a FILE or --rule EXPR".into()),
    }
}

fn explain_file<T: Lane>(file: &PathBuf, req: &Request) -> Result<String, String> {
    let checked = optic_compiler::check::check_paths(std::slice::from_ref(file));
    let errors = checked.diagnostics.iter().any(|d| d.severity == optic_compiler::diag::Severity::Error);
    crate::report(&checked.diagnostics, req.plain);
    if errors {
        return Err(format!("{} has errors", file.display()));
    }
    if req.stage == Stage::Ast {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let source = std::sync::Arc::new(optic_compiler::SourceFile::new(file.display().to_string(), text));
        let ast = optic_compiler::syntax::parse_file(&source).map_err(|d| d.render_plain())?;
        return Ok(optic_compiler::syntax::format::format_file(&source.text, &ast));
    }
    let mut s = String::new();
    for name in experiments(&checked.program) {
        let (plan, _) = lower_experiment(&checked.program, &name, &[]).map_err(|d| d.render_plain())?;
        let _ = writeln!(s, "=== experiment {name} ===");
        let mut roots: Vec<NodeId> = vec![plan.loss];
        roots.extend(plan.grads.iter().map(|g| g.1));
        // The forward pass is the prefix of the training graph differentiation extended.
        let forward = plan.loss.max(plan.grads.iter().map(|g| g.1).filter(|&n| n <= plan.loss).max().unwrap_or(0));
        match req.stage {
            Stage::Ast => unreachable!("handled above"),
            Stage::Ir => {
                let _ = writeln!(s, "== init ==\n{}", print_graph(&plan.init));
                let mut fwd = plan.train.clone();
                fwd.nodes.truncate(forward + 1);
                fwd.output = plan.loss;
                let _ = writeln!(s, "== train (forward) ==\n{}", print_graph(&fwd));
            }
            Stage::Grad => {
                let _ = writeln!(s, "== train (loss %{} and gradients) ==\n{}", plan.loss, print_graph(&plan.train));
                for (t, g) in &plan.grads {
                    let _ = writeln!(s, "d loss / d {} = %{g}", plan.tensors[*t].path);
                }
            }
            Stage::Fused | Stage::Clif => {
                let (graph, sched) =
                    exec::schedule_at::<T>(&plan.train, &roots, req.step).map_err(|e| e.to_string())?;
                let _ = writeln!(s, "== train ==");
                s += &fused_or_clif::<T>(&graph, &sched, req.stage)?;
            }
        }
        for group in &plan.groups {
            for (t, g) in group.tensors.iter().zip(&group.graphs) {
                let _ = writeln!(s, "== rule {} on {} ==", group.rule, plan.tensors[*t].path);
                if req.stage != Stage::Grad {
                    s += &rule_stage::<T>(g, req.stage, req.step)?;
                }
            }
        }
    }
    Ok(s)
}

fn rule_stage<T: Lane>(g: &Graph, stage: Stage, step: u64) -> Result<String, String> {
    match stage {
        Stage::Ast | Stage::Ir | Stage::Grad => Ok(print_graph(g)),
        Stage::Fused | Stage::Clif => {
            let ruled = exec::rule_schedule_at::<T>(g, step).map_err(|e| e.to_string())?;
            let mut s = fused_or_clif::<T>(&ruled.graph, &ruled.sched, stage)?;
            if let Some(folded) = ruled.folded {
                let _ = writeln!(s, "update: {folded}");
            }
            Ok(s)
        }
    }
}

fn fused_or_clif<T: Lane>(g: &Graph, sched: &Schedule, stage: Stage) -> Result<String, String> {
    if stage == Stage::Fused {
        return Ok(print_schedule(g, sched, T::ELEM.size()));
    }
    let mut s = String::new();
    for (k, kernel) in sched.kernels.iter().enumerate() {
        let _ = writeln!(s, "kernel k{k}:\n{}", jit::clif(&kernel.spec, T::ELEM)?);
    }
    Ok(s)
}
