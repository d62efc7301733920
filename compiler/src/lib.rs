//! optic's compiler: `.opt` source text to a checked program.
//!
//! The pipeline runs one way: [`syntax`] parses text into an AST with owned spans and formats it
//! back; [`check`] resolves names across files, imports and the embedded standard library and
//! infers types and symbolic shapes; every stage reports problems as [`diag::Diagnostic`]s.

// Diagnostics are built only when something is wrong, and a parse error ends parsing; boxing
// every `Result<_, Diagnostic>` would add noise to every signature for no measurable gain.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod diag;
pub mod exec;
pub mod fuse;
pub mod grad;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod lower;
pub mod source;
pub mod stdlib;
pub mod syntax;

pub use diag::Diagnostic;

/// Runs `f` on a thread with a large stack. Parsing and checking recurse over expressions whose
/// depth the parser bounds; a generous stack makes every bounded input safe.
pub fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(512 << 20)
            .spawn_scoped(s, f)
            .map(|h| h.join())
            .unwrap_or_else(|e| panic!("cannot start the compiler thread: {e}"))
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
pub use source::SourceFile;
