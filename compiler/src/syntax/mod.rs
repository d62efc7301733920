//! Syntax: the only place that knows pest. [`parse`] turns text into the [`ast`], [`format`]
//! prints an AST back as canonical text.

pub mod ast;
pub(crate) mod build;
mod errors;
pub mod format;
pub mod parse;
pub(crate) mod scan;

pub use format::{format_expr, format_file};
pub use parse::{later_syntax_errors, parse_expr, parse_file};
