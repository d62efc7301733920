//! Checking: everything that can be known about a program before it runs. [`load`] reads the
//! given files and what they import, detecting missing files and cycles, and links the embedded
//! standard library; then every declaration is checked by abstract interpretation ([`eval`] for
//! expressions, [`body`], [`stmt`] and [`dims`] for the bodies of rules, schedules, inits,
//! functions, models and adapters, [`apply`] for their uses, [`experiment`] for experiments) over
//! [`value::Value`]s carrying types and [`shape::Shape`]s; [`args`] binds and checks arguments,
//! [`builtins`] types the primitives. All independent errors are reported, each with a stable code.
//! The result is a [`Checked`] program whose per-declaration summaries are the "checked form"
//! printed by `optic check --summary` and pinned by the snapshot tests.

mod apply;
mod args;
mod body;
mod builtins;
mod dims;
mod eval;
mod experiment;
mod frame;
mod load;
pub(crate) mod metrics;
pub mod shape;
mod stmt;
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
    /// Its syntax tree (`None` after a parse error); shared with the embedded standard library.
    pub ast: Option<Arc<File>>,
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

/// Which standard-library declarations a check loads.
#[derive(Clone, Copy, Debug)]
pub enum Library<'a> {
    /// All of them: for the REPL, `explain` and expressions written against a program later,
    /// which may name any of them.
    All,
    /// Those the program's files name, directly or through other library declarations, and
    /// those the given texts name (`--set` values, lowered against the checked program). Parsing
    /// the whole library costs more than checking a typical experiment. A check that finds an
    /// error is redone with the whole library, so its diagnostics and suggestions are the same.
    NamedBy(&'a [&'a str]),
}

/// Checks files on disk (and what they import) against the whole standard library.
pub fn check_paths(paths: &[PathBuf]) -> Checked {
    check_paths_in(paths, Library::All)
}

/// Checks files on disk (and what they import) against the chosen part of the library.
pub fn check_paths_in(paths: &[PathBuf], library: Library) -> Checked {
    with_library(library, |lib| load_paths(paths, lib))
}

/// Checks one in-memory source against the whole standard library; imports are resolved
/// relative to `dir`.
pub fn check_source(name: &str, text: &str, dir: &Path) -> Checked {
    check_source_in(name, text, dir, Library::All)
}

/// Checks one in-memory source against the chosen part of the library.
pub fn check_source_in(name: &str, text: &str, dir: &Path, library: Library) -> Checked {
    with_library(library, |lib| load::load_source(name, text, dir, lib))
}

/// Loads and checks with `library`, again with the whole library if that finds an error.
fn with_library(library: Library, load: impl Fn(Library) -> (Program, Vec<Diagnostic>) + Sync) -> Checked {
    crate::on_big_stack(|| {
        let (program, diagnostics) = load(library);
        let checked = finish(program, diagnostics);
        match library {
            Library::NamedBy(_) if !checked.is_ok() => {
                let (program, diagnostics) = load(Library::All);
                finish(program, diagnostics)
            }
            _ => checked,
        }
    })
}

/// Checks every declaration of the root files. Declarations are independent, so a large
/// program is checked in two halves on two threads, each with its own [`eval::Checker`].
fn finish(program: Program, mut diagnostics: Vec<Diagnostic>) -> Checked {
    let work: Vec<DeclId> = (0..program.decls.len())
        .filter(|&id| {
            let unit = &program.units[program.decls[id].unit];
            unit.root && unit.ast.is_some()
        })
        .collect();
    let check_all = |ids: &[DeclId]| -> (Vec<(DeclId, String)>, Vec<Diagnostic>) {
        let mut checker = eval::Checker::new(&program);
        let mut lines = Vec::with_capacity(ids.len());
        for &id in ids {
            let before = checker.reported();
            let info = match program.decl(id).kind {
                DeclKind::Experiment => experiment::check_experiment(&mut checker, id),
                _ => body::check_decl(&mut checker, id),
            };
            checker.record_generic(id, checker.reported() == before);
            lines.push((id, summary::describe(&program, id, &info)));
        }
        (lines, checker.into_diagnostics())
    };
    let (mut lines, found) = if work.len() >= PARALLEL_ABOVE {
        let (a, b) = work.split_at(work.len() / 2);
        std::thread::scope(|s| {
            let first = std::thread::Builder::new().stack_size(256 << 20).spawn_scoped(s, || check_all(a)).ok();
            let (mut lines, mut diags) = check_all(b);
            let (l1, d1) = match first.map(|h| h.join()) {
                Some(Ok(r)) => r,
                Some(Err(p)) => std::panic::resume_unwind(p),
                None => check_all(a),
            };
            lines.splice(0..0, l1);
            diags.splice(0..0, d1);
            (lines, diags)
        })
    } else {
        check_all(&work)
    };
    lines.sort_by_key(|(id, _)| *id);
    let mut summaries: Vec<(String, String)> = Vec::new();
    for (u, unit) in program.units.iter().enumerate() {
        if !unit.root || unit.ast.is_none() {
            continue;
        }
        let text: Vec<&str> =
            lines.iter().filter(|(id, _)| program.decls[*id].unit == u).map(|(_, l)| l.as_str()).collect();
        summaries.push((unit.source.name.clone(), text.join("\n")));
    }
    diagnostics.extend(found);
    diagnostics.sort_by(|a, b| {
        (a.source.name.as_str(), a.primary_span().start).cmp(&(b.source.name.as_str(), b.primary_span().start))
    });
    // The two halves may both report a problem of a declaration they both use.
    diagnostics.dedup_by(|a, b| {
        a.code == b.code
            && a.source.name == b.source.name
            && a.primary_span() == b.primary_span()
            && a.message == b.message
    });
    // A recursion cycle is found from each of its members; report it once, where it comes first.
    let mut cycles = std::collections::HashSet::new();
    diagnostics.retain(|d| d.code != crate::diag::codes::RECURSION || cycles.insert(d.message.clone()));
    Checked { program, diagnostics, summaries }
}

/// Programs with at least this many declarations are checked on two threads.
const PARALLEL_ABOVE: usize = 64;
