//! Loading: the files named by the user, everything they import (paths relative to the
//! importing file), and the embedded standard library, each parsed once. Builds each file's
//! top-level scope (its own declarations plus those of the files it imports directly) and
//! reports unreadable imports, import cycles and duplicate declarations.

use super::{DeclLoc, Library, Program, Unit};
use crate::diag::{codes, Diagnostic};
use crate::source::SourceFile;
use crate::stdlib::StdFile;
use crate::syntax::ast::{Item, Span};
use crate::syntax::{later_syntax_errors, parse_file};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads files from disk with the chosen part of the standard library. A file that cannot be
/// read is reported and skipped.
pub fn load_paths(paths: &[PathBuf], library: Library) -> (Program, Vec<Diagnostic>) {
    let mut loader = Loader::new(library);
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => {
                loader.add(p.display().to_string(), text, Some(p.clone()), true);
            }
            Err(e) => {
                let src = Arc::new(SourceFile::new(p.display().to_string(), ""));
                loader.diags.push(
                    Diagnostic::error(
                        codes::BAD_FILE,
                        &src,
                        Span::default(),
                        format!("cannot read `{}`: {e}", p.display()),
                        "",
                    )
                    .with_help("check the path"),
                );
            }
        }
    }
    loader.finish()
}

/// Loads one in-memory file; its imports are read relative to `dir`.
pub fn load_source(name: &str, text: &str, dir: &Path, library: Library) -> (Program, Vec<Diagnostic>) {
    let mut loader = Loader::new(library);
    loader.add(name.to_string(), text.to_string(), Some(dir.join(name)), true);
    loader.finish()
}

struct Loader<'a> {
    /// The library's units come first; with [`Library::NamedBy`] their syntax trees are filled
    /// in by [`Loader::finish`], once every user file's words are known.
    library: Library<'a>,
    units: Vec<Unit>,
    by_path: HashMap<PathBuf, usize>,
    diags: Vec<Diagnostic>,
    /// Import edges: (importer, imported, span of the path literal in the importer).
    edges: Vec<(usize, usize, Span)>,
}

impl<'a> Loader<'a> {
    fn new(library: Library<'a>) -> Self {
        let mut loader =
            Loader { library, units: Vec::new(), by_path: HashMap::new(), diags: Vec::new(), edges: Vec::new() };
        if let Library::All = library {
            loader.add_library(crate::stdlib::files());
        }
        loader
    }

    /// Adds the library's files as the first units.
    fn add_library<'f>(&mut self, files: impl IntoIterator<Item = &'f StdFile>) {
        for f in files {
            let ast = match &f.ast {
                Ok(ast) => Some(Arc::clone(ast)),
                Err(d) => {
                    self.diags.push(d.clone());
                    None
                }
            };
            self.units.push(Unit {
                source: f.source.clone(),
                ast,
                path: None,
                stdlib: true,
                root: false,
                scope: HashMap::new(),
            });
        }
    }

    /// With [`Library::NamedBy`], puts the part of the library the user's files and the extra
    /// texts name before the user's units, shifting their indices.
    fn insert_named_library(&mut self) {
        let Library::NamedBy(extra) = self.library else { return };
        let texts = self.units.iter().map(|u| u.source.text.as_str()).chain(extra.iter().copied());
        let subset = crate::stdlib::named_subset(texts);
        let user = std::mem::take(&mut self.units);
        self.add_library(&subset);
        let shift = self.units.len();
        self.units.extend(user);
        for u in self.by_path.values_mut() {
            *u += shift;
        }
        for (from, to, _) in &mut self.edges {
            *from += shift;
            *to += shift;
        }
    }

    fn add(&mut self, name: String, text: String, path: Option<PathBuf>, root: bool) -> usize {
        if let Some(p) = path.as_ref().and_then(|p| p.canonicalize().ok()) {
            if let Some(&u) = self.by_path.get(&p) {
                self.units[u].root |= root;
                return u;
            }
        }
        let source = Arc::new(SourceFile::new(name, text));
        let ast = match parse_file(&source) {
            Ok(ast) => Some(Arc::new(ast)),
            Err(d) => {
                let more = later_syntax_errors(&source, &d);
                self.diags.push(d);
                self.diags.extend(more);
                None
            }
        };
        let id = self.units.len();
        if let Some(p) = path.as_ref().and_then(|p| p.canonicalize().ok()) {
            self.by_path.insert(p, id);
        }
        self.units.push(Unit { source, ast, path: path.clone(), stdlib: false, root, scope: HashMap::new() });
        // Follow imports depth-first.
        let imports: Vec<(String, Span)> = self.units[id]
            .ast
            .iter()
            .flat_map(|f| f.items.iter())
            .filter_map(|i| match i {
                Item::Import(im) => Some((im.path.clone(), im.path_span)),
                _ => None,
            })
            .collect();
        let base = path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
        for (rel, span) in imports {
            let target = base.join(&rel);
            let known = target.canonicalize().ok().and_then(|c| self.by_path.get(&c).copied());
            let imported = match known {
                Some(u) => Some(u),
                None => match std::fs::read_to_string(&target) {
                    Ok(text) => Some(self.add(target.display().to_string(), text, Some(target.clone()), false)),
                    Err(e) => {
                        let src = self.units[id].source.clone();
                        self.diags.push(
                            Diagnostic::error(
                                codes::IMPORT_NOT_FOUND,
                                &src,
                                span,
                                format!("cannot import `{rel}`: {e}"),
                                format!("looked for {}", target.display()),
                            )
                            .with_help("import paths are relative to the importing file"),
                        );
                        None
                    }
                },
            };
            if let Some(u) = imported {
                self.edges.push((id, u, span));
            }
        }
        id
    }

    fn finish(mut self) -> (Program, Vec<Diagnostic>) {
        self.insert_named_library();
        self.report_cycles();
        let mut decls = Vec::new();
        let mut own: Vec<HashMap<String, usize>> = Vec::new();
        for (u, unit) in self.units.iter().enumerate() {
            let mut names: HashMap<String, usize> = HashMap::new();
            for (i, item) in unit.ast.iter().flat_map(|f| f.items.iter()).enumerate() {
                if let Item::Decl(d) = item {
                    let id = decls.len();
                    decls.push(DeclLoc { unit: u, item: i });
                    if let Some(&prev) = names.get(&d.name.name) {
                        let first = decl_of(&self.units, &decls, prev);
                        self.diags.push(
                            Diagnostic::error(
                                codes::DUPLICATE_DECL,
                                &unit.source,
                                d.name.span,
                                format!("`{}` is declared twice", d.name.name),
                                "declared again here",
                            )
                            .with_label(first.name.span, "first declared here")
                            .with_help("rename one of them"),
                        );
                    } else {
                        names.insert(d.name.name.clone(), id);
                    }
                }
            }
            own.push(names);
        }
        let mut stdlib_scope = HashMap::new();
        for (u, unit) in self.units.iter().enumerate() {
            if unit.stdlib {
                for (n, &id) in &own[u] {
                    stdlib_scope.entry(n.clone()).or_insert(id);
                }
            }
        }
        for u in 0..self.units.len() {
            let mut scope = if self.units[u].stdlib { stdlib_scope.clone() } else { HashMap::new() };
            scope.extend(own[u].iter().map(|(n, &id)| (n.clone(), id)));
            for &(from, to, span) in &self.edges {
                if from != u {
                    continue;
                }
                for (n, &id) in &own[to] {
                    if let Some(&mine) = own[u].get(n) {
                        let theirs = decl_of(&self.units, &decls, id);
                        let src = self.units[u].source.clone();
                        let d = Diagnostic::error(
                            codes::DUPLICATE_DECL,
                            &src,
                            decl_of(&self.units, &decls, mine).name.span,
                            format!("`{n}` is declared here and in an imported file"),
                            "declared here",
                        )
                        .with_label(span, "also declared in this import")
                        .with_note(
                            &self.units[to].source,
                            theirs.name.span,
                            format!("`{n}` is declared here"),
                            "",
                        );
                        self.diags.push(d);
                    } else {
                        scope.entry(n.clone()).or_insert(id);
                    }
                }
            }
            self.units[u].scope = scope;
        }
        (Program { units: self.units, decls, stdlib_scope }, self.diags)
    }

    /// Reports each import cycle once, at the import that closes it.
    fn report_cycles(&mut self) {
        let n = self.units.len();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; n];
        let mut stack: Vec<usize> = Vec::new();
        for start in 0..n {
            if state[start] == 0 {
                self.visit(start, &mut state, &mut stack);
            }
        }
    }

    fn visit(&mut self, u: usize, state: &mut Vec<u8>, stack: &mut Vec<usize>) {
        state[u] = 1;
        stack.push(u);
        let out: Vec<(usize, Span)> = self.edges.iter().filter(|e| e.0 == u).map(|e| (e.1, e.2)).collect();
        for (v, span) in out {
            if state[v] == 1 {
                let pos = stack.iter().position(|&x| x == v).unwrap_or(0);
                let chain: Vec<String> = stack[pos..]
                    .iter()
                    .chain(std::iter::once(&v))
                    .map(|&x| short_name(&self.units[x].source.name))
                    .collect();
                let src = self.units[u].source.clone();
                self.diags.push(
                    Diagnostic::error(
                        codes::IMPORT_CYCLE,
                        &src,
                        span,
                        format!("import cycle: {}", chain.join(" -> ")),
                        "this import closes the cycle",
                    )
                    .with_help("move what both files need into a third file that imports neither"),
                );
            } else if state[v] == 0 {
                self.visit(v, state, stack);
            }
        }
        stack.pop();
        state[u] = 2;
    }
}

fn short_name(name: &str) -> String {
    Path::new(name).file_name().map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned())
}

fn decl_of<'a>(units: &'a [Unit], decls: &[DeclLoc], id: usize) -> &'a crate::syntax::ast::Decl {
    let loc = decls[id];
    match &units[loc.unit].ast.as_ref().expect("parsed").items[loc.item] {
        Item::Decl(d) => d,
        Item::Import(_) => unreachable!("decl locations point at declarations"),
    }
}
