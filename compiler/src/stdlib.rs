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
    /// Its syntax tree, or the parse error (a bug in the library, caught by the tests).
    pub ast: Result<File, Diagnostic>,
}

static PARSED: LazyLock<Vec<StdFile>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, text)| {
            let source = Arc::new(SourceFile::new(format!("<stdlib>/{name}"), *text));
            let ast = parse_file(&source);
            StdFile { source, ast }
        })
        .collect()
});

/// The parsed standard library.
pub fn files() -> &'static [StdFile] {
    &PARSED
}
