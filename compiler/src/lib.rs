//! optic's compiler: `.opt` source text to a checked program.
//!
//! The pipeline runs one way: [`syntax`] parses text into an AST with owned spans and formats it
//! back; [`check`] resolves names across files, imports and the embedded standard library and
//! infers types and symbolic shapes; every stage reports problems as [`diag::Diagnostic`]s.

pub mod check;
pub mod diag;
pub mod source;
pub mod stdlib;
pub mod syntax;

pub use diag::Diagnostic;
pub use source::SourceFile;
