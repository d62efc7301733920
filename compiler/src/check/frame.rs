//! Frames: one body being checked, with its kind ([`Ctx`]), its nested scopes of local bindings,
//! and, in a rule, the parameter being updated. Also the evaluated form of a call argument.

use super::value::Value;
use crate::source::SourceFile;
use crate::syntax::ast::{Ident, Span};
use std::sync::Arc;

/// What kind of body a frame checks; decides which names and statements are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// A rule body: `g`, `param`, `step`, `state`.
    Rule,
    /// A schedule body: `step`.
    Schedule,
    /// An init body: the shape's dimensions.
    Init,
    /// An `fn` body.
    Function,
    /// A model body: `param`, sub-models, `forward`.
    Model,
    /// A model's `forward`.
    Forward,
    /// An adapter body: the adapted weight, `param`, `frozen`, `weight`.
    Adapter,
    /// An experiment.
    Experiment,
}

/// How a local name was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// `let`: immutable.
    Let,
    /// `var`: mutable.
    Var,
    /// `state`: mutable, persistent.
    State,
    /// A hyperparameter of the declaration.
    Hyper,
    /// An input (`g`, `x`) or a dimension bound by a shape.
    Input,
    /// A model or adapter member, or an experiment binding.
    Member,
    /// A loop variable.
    Loop,
}

impl LocalKind {
    /// How the binding is described in messages.
    pub fn describe(self) -> &'static str {
        match self {
            LocalKind::Let => "bound with `let`",
            LocalKind::Var => "a `var`",
            LocalKind::State => "a `state`",
            LocalKind::Hyper => "a hyperparameter",
            LocalKind::Input => "an input",
            LocalKind::Member => "a member",
            LocalKind::Loop => "a loop variable",
        }
    }
}

/// A local binding.
#[derive(Clone, Debug)]
pub struct Local {
    /// What is known of it.
    pub value: Value,
    /// How it was bound.
    pub kind: LocalKind,
    /// Where.
    pub span: Span,
}

/// The names bound in one scope. Scopes hold a handful of names, so a vector searched from the
/// end beats hashing them.
#[derive(Clone, Debug, Default)]
pub struct Scope(Vec<(String, Local)>);

impl Scope {
    /// A binding by name.
    pub fn get(&self, name: &str) -> Option<&Local> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    /// A binding by name, for update.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Local> {
        self.0.iter_mut().rev().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    /// Binds a name, replacing an earlier binding of it in this scope.
    pub fn insert(&mut self, name: String, local: Local) {
        match self.get_mut(&name) {
            Some(l) => *l = local,
            None => self.0.push((name, local)),
        }
    }

    /// The bindings in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Local)> {
        self.0.iter().map(|(n, l)| (n, l))
    }

    /// The bound names.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }
}

impl FromIterator<(String, Local)> for Scope {
    fn from_iter<I: IntoIterator<Item = (String, Local)>>(iter: I) -> Self {
        Scope(iter.into_iter().collect())
    }
}

/// One body being checked.
pub struct Frame {
    /// The unit whose top-level scope applies.
    pub unit: usize,
    /// Its source, for diagnostics.
    pub source: Arc<SourceFile>,
    /// What kind of body.
    pub ctx: Ctx,
    /// Nested scopes, innermost last.
    pub scopes: Vec<Scope>,
    /// In a rule: the parameter being updated.
    pub param: Option<Value>,
}

impl Frame {
    /// A frame with one empty scope.
    pub fn new(unit: usize, source: Arc<SourceFile>, ctx: Ctx) -> Self {
        Frame { unit, source, ctx, scopes: vec![Scope::default()], param: None }
    }

    /// Finds a local.
    pub fn get(&self, name: &str) -> Option<&Local> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    /// Finds a local for update.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Local> {
        self.scopes.iter_mut().rev().find_map(|s| s.get_mut(name))
    }
}

/// A call argument after evaluation.
#[derive(Clone, Debug)]
pub struct ArgVal {
    /// `name =` if a keyword argument.
    pub name: Option<Ident>,
    /// Its value.
    pub value: Value,
    /// The argument's span.
    pub span: Span,
}
