//! The standard library: every `stdlib/*.opt` file, embedded at build time. Its declarations are
//! the outermost scope of every program; a user's own declaration of the same name shadows them.
//! Parsing all of it costs more than checking and lowering a typical experiment, so a run parses
//! only what its program names ([`named_subset`]): each file is cut into its top-level items by
//! a line scan, and the items a program's words name are parsed, with every library item their
//! own code names, transitively. A word scan over-approximates what an item uses (a word that
//! is a field or keyword argument counts too), so nothing a program needs is left out. The scans
//! of the library itself run in the build script (`syntax::scan`), which writes their index
//! ([`PIECES`]) next to the embedded text. The whole library
//! ([`files`]) is parsed once per process for those that list or name any declaration: the
//! REPL, `explain`, and every check that finds an error, so its suggestions see every name.

use crate::diag::Diagnostic;
use crate::source::SourceFile;
use crate::syntax::ast::{File, Item};
use crate::syntax::parse::parse_items;
use crate::syntax::parse_file;
use crate::syntax::scan::words;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, OnceLock};

include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));

/// One top-level piece of the library as the build script indexed it (`syntax::scan`).
struct BuiltPiece {
    file: usize,
    start: usize,
    end: usize,
    name: Option<&'static str>,
    /// The pieces its code names.
    mentions: &'static [usize],
}

/// One parsed standard-library file (or the part of it a program names).
pub struct StdFile {
    /// Its source, named `<stdlib>/NAME.opt`.
    pub source: Arc<SourceFile>,
    /// Its syntax tree, shared by every program, or the parse error (a bug in the library,
    /// caught by the tests).
    pub ast: Result<Arc<File>, Diagnostic>,
}

/// The library's sources, shared by the whole and the partial parses.
static SOURCES: LazyLock<Vec<Arc<SourceFile>>> = LazyLock::new(|| {
    FILES.iter().map(|(name, text)| Arc::new(SourceFile::new(format!("<stdlib>/{name}"), *text))).collect()
});

static PARSED: LazyLock<Vec<StdFile>> = LazyLock::new(|| {
    let parse = |sources: &[Arc<SourceFile>]| -> Vec<StdFile> {
        sources.iter().map(|source| StdFile { source: source.clone(), ast: parse_file(source).map(Arc::new) }).collect()
    };
    // Two threads halve the cost of parsing the whole library.
    let (a, b) = SOURCES.split_at(SOURCES.len() / 2);
    std::thread::scope(|s| {
        let first = std::thread::Builder::new().stack_size(256 << 20).spawn_scoped(s, || parse(a)).ok();
        let mut second = parse(b);
        let mut all = match first.map(|h| h.join()) {
            Some(Ok(v)) => v,
            _ => parse(a),
        };
        all.append(&mut second);
        all
    })
});

/// The whole parsed standard library.
pub fn files() -> &'static [StdFile] {
    &PARSED
}

/// One top-level item of a library file, found without parsing.
struct Piece {
    file: usize,
    range: Range<usize>,
    /// The library pieces whose names its text mentions.
    mentions: Vec<usize>,
    /// Its items, parsed on first use.
    parsed: OnceLock<Result<Vec<Item>, Diagnostic>>,
}

/// Every piece of the library, and which pieces declare each name.
struct Index {
    pieces: Vec<Piece>,
    by_name: HashMap<&'static str, Vec<usize>>,
}

/// The index the build script computed ([`PIECES`]), with its names looked up by hash.
static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let pieces: Vec<Piece> = PIECES
        .iter()
        .map(|p| Piece { file: p.file, range: p.start..p.end, mentions: p.mentions.to_vec(), parsed: OnceLock::new() })
        .collect();
    let mut by_name: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (i, p) in PIECES.iter().enumerate() {
        if let Some(n) = p.name {
            by_name.entry(n).or_default().push(i);
        }
    }
    Index { pieces, by_name }
});

/// The library reduced to the declarations the `texts` name (a program's files and its `--set`
/// values), and every declaration those name in turn; one entry per library file, in the order
/// of [`files`]. Unnamed pieces (comments between declarations) are left out. Runs on the checker's thread, whose large stack the
/// parser's recursion needs.
pub(crate) fn named_subset<'t>(texts: impl IntoIterator<Item = &'t str>) -> Vec<StdFile> {
    let index = &*INDEX;
    let mut wanted = vec![false; index.pieces.len()];
    let mut todo: Vec<usize> = Vec::new();
    for text in texts {
        todo.extend(words(text).filter_map(|w| index.by_name.get(w)).flatten());
    }
    while let Some(i) = todo.pop() {
        if !std::mem::replace(&mut wanted[i], true) {
            todo.extend(index.pieces[i].mentions.iter().filter(|&&j| !wanted[j]));
        }
    }
    let mut items: Vec<Result<Vec<Item>, Diagnostic>> = (0..FILES.len()).map(|_| Ok(Vec::new())).collect();
    for (piece, _) in index.pieces.iter().zip(&wanted).filter(|(_, &w)| w) {
        let parsed =
            piece.parsed.get_or_init(|| parse_items(&SOURCES[piece.file], piece.range.clone()).map(|f| f.items));
        let slot = &mut items[piece.file];
        match (parsed, slot.as_mut()) {
            (Ok(new), Ok(all)) => all.extend(new.iter().cloned()),
            (Err(d), Ok(_)) => *slot = Err(d.clone()),
            (_, Err(_)) => {}
        }
    }
    SOURCES
        .iter()
        .zip(items)
        .map(|(source, items)| StdFile { source: source.clone(), ast: items.map(|items| Arc::new(File { items })) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build script's index is the one the compiler's scanner computes from the embedded text.
    #[test]
    fn the_built_index_is_the_scanners() {
        let fresh = crate::syntax::scan::index_pieces(FILES);
        assert_eq!(fresh.len(), PIECES.len());
        for (p, b) in fresh.iter().zip(PIECES) {
            assert_eq!(
                (p.file, p.start, p.end, p.name.as_deref(), p.mentions.as_slice()),
                (b.file, b.start, b.end, b.name, b.mentions)
            );
        }
    }
}
