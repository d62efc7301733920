//! The standard library: every `stdlib/*.opt` file, embedded at build time and parsed once per
//! process. Its declarations are the outermost scope of every program; a user's own declaration
//! of the same name shadows them.

use crate::diag::Diagnostic;
use crate::source::SourceFile;
use crate::syntax::{ast::File, parse_file};
use std::sync::{Arc, LazyLock};

include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));

/// One parsed standard-library file.
pub struct StdFile {
    /// Its source, named `<stdlib>/NAME.opt`.
    pub source: Arc<SourceFile>,
    /// Its syntax tree, shared by every program, or the parse error (a bug in the library,
    /// caught by the tests).
    pub ast: Result<Arc<File>, Diagnostic>,
}

static PARSED: LazyLock<Vec<StdFile>> = LazyLock::new(|| {
    let parse = |files: &[(&str, &str)]| -> Vec<StdFile> {
        files
            .iter()
            .map(|(name, text)| {
                let source = Arc::new(SourceFile::new(format!("<stdlib>/{name}"), *text));
                let ast = parse_file(&source).map(Arc::new);
                StdFile { source, ast }
            })
            .collect()
    };
    // Every `optic` process parses the library once; two threads halve that start-up cost.
    let (a, b) = FILES.split_at(FILES.len() / 2);
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

/// The parsed standard library.
pub fn files() -> &'static [StdFile] {
    &PARSED
}
