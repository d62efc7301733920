//! Checking: everything that can be known about a program before it runs. [`load`] reads the
//! given files and what they import, detecting missing files and cycles, and links the embedded
//! standard library; then every declaration is checked by abstract interpretation ([`eval`] for
//! expressions, [`body`] for the bodies of rules, schedules, inits, functions, models and
//! adapters, [`experiment`] for experiments) over [`value::Value`]s carrying types and
//! [`shape::Shape`]s. All independent errors are reported, each with a stable code.
//! The result is a [`Checked`] program whose per-declaration summaries are the "checked form"
//! printed by `optic check --summary` and pinned by the snapshot tests.

mod args;
mod body;
mod builtins;
mod eval;
mod experiment;
mod load;
pub mod shape;
mod summary;
pub mod value;

use crate::diag::Diagnostic;
use crate::source::SourceFile;
use crate::syntax::ast::{Decl, DeclKind, File};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use value::DeclId;

pub use load::load_paths;

/// The names of the builtin primitives.
pub fn builtin_names() -> &'static [&'static str] {
    builtins::NAMES
}

/// One loaded file.
pub struct Unit {
    /// Its text and name.
    pub source: Arc<SourceFile>,
    /// Its syntax tree (`None` after a parse error).
    pub ast: Option<File>,
    /// Where it was read from (`None` for the standard library and in-memory text).
    pub path: Option<PathBuf>,
    /// True for standard-library files.
    pub stdlib: bool,
    /// True for files named on the command line (as opposed to imported ones).
    pub root: bool,
    /// Names visible at the top level of this file: its own declarations and its imports'.
    pub scope: HashMap<String, DeclId>,
}

/// Where a declaration lives.
#[derive(Clone, Copy, Debug)]
pub struct DeclLoc {
    /// Index of its [`Unit`].
    pub unit: usize,
    /// Index of the item in that unit's file.
    pub item: usize,
}

/// A loaded program: root files, imports and the standard library.
pub struct Program {
    /// Every file.
    pub units: Vec<Unit>,
    /// Every declaration.
    pub decls: Vec<DeclLoc>,
    /// The standard library's names.
    pub stdlib_scope: HashMap<String, DeclId>,
}

impl Program {
    /// A declaration's syntax.
    pub fn decl(&self, id: DeclId) -> &Decl {
        let loc = self.decls[id];
        match &self.units[loc.unit].ast.as_ref().expect("declarations come from parsed files").items[loc.item] {
            crate::syntax::ast::Item::Decl(d) => d,
            crate::syntax::ast::Item::Import(_) => unreachable!("decl locations point at declarations"),
        }
    }

    /// The unit a declaration lives in.
    pub fn unit_of(&self, id: DeclId) -> &Unit {
        &self.units[self.decls[id].unit]
    }

    /// Looks a top-level name up from a unit: its own scope, then the standard library.
    pub fn lookup(&self, unit: usize, name: &str) -> Option<DeclId> {
        self.units[unit].scope.get(name).or_else(|| self.stdlib_scope.get(name)).copied()
    }
}

/// The outcome of checking.
pub struct Checked {
    /// The program as loaded.
    pub program: Program,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Per root file: its checked form.
    pub summaries: Vec<(String, String)>,
}

impl Checked {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.diagnostics.iter().all(|d| d.severity != crate::diag::Severity::Error)
    }
}

/// Checks files on disk (and what they import).
pub fn check_paths(paths: &[PathBuf]) -> Checked {
    crate::on_big_stack(|| {
        let (program, diagnostics) = load_paths(paths);
        finish(program, diagnostics)
    })
}

/// Checks one in-memory source; imports are resolved relative to `dir`.
pub fn check_source(name: &str, text: &str, dir: &Path) -> Checked {
    crate::on_big_stack(|| {
        let (program, diagnostics) = load::load_source(name, text, dir);
        finish(program, diagnostics)
    })
}

fn finish(program: Program, mut diagnostics: Vec<Diagnostic>) -> Checked {
    let mut checker = eval::Checker::new(&program);
    let mut summaries = Vec::new();
    for (u, unit) in program.units.iter().enumerate() {
        if !unit.root || unit.ast.is_none() {
            continue;
        }
        let mut lines = Vec::new();
        for (id, loc) in program.decls.iter().enumerate() {
            if loc.unit != u {
                continue;
            }
            let decl = program.decl(id);
            let info = match decl.kind {
                DeclKind::Experiment => experiment::check_experiment(&mut checker, id),
                _ => body::check_decl(&mut checker, id),
            };
            lines.push(summary::describe(&program, id, &info));
        }
        summaries.push((unit.source.name.clone(), lines.join("\n")));
    }
    diagnostics.extend(checker.into_diagnostics());
    diagnostics.sort_by(|a, b| {
        (a.source.name.as_str(), a.primary_span().start).cmp(&(b.source.name.as_str(), b.primary_span().start))
    });
    Checked { program, diagnostics, summaries }
}
