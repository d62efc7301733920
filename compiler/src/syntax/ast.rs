//! The abstract syntax tree of a `.opt` file. Every node owns a byte [`Span`] into the text it
//! was parsed from, so later stages (checking, diagnostics, formatting) never need the parse
//! tree or its lifetimes. The tree keeps what the formatter needs to print a file back faithfully
//! (parentheses, numeric spellings, doc comments) and nothing a later stage derives.

use std::fmt;

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// True for an empty span.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

/// A name as written, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The name.
    pub name: String,
    /// Where it stands.
    pub span: Span,
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A whole source file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    /// The items in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
// A file holds a few dozen items; boxing declarations would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `import "path.opt"`: brings every declaration of another file into scope.
    Import(Import),
    /// A named declaration: rule, schedule, init, adapter, model or experiment.
    Decl(Decl),
}

/// `import "path.opt"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// Doc comments above the import.
    pub docs: Vec<String>,
    /// The path as written, relative to the importing file.
    pub path: String,
    /// The span of the string literal.
    pub path_span: Span,
    /// The whole item.
    pub span: Span,
}

/// What a declaration declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeclKind {
    /// `rule name(params)(inputs) body`: an update rule.
    Rule,
    /// `schedule name(params) body`: a scalar function of `step`.
    Schedule,
    /// `init name(params)[dims] body`: a tensor initializer.
    Init,
    /// `adapter name(params) on w[dims] { ... }`: a reparameterization of a weight.
    Adapter,
    /// `model name(params) { ... }`: parameters and a forward expression.
    Model,
    /// `fn name(params) body`: a pure tensor function (activations, losses, metrics).
    Function,
    /// `experiment name { ... }`: what to train, how, and what to record.
    Experiment,
}

impl DeclKind {
    /// The keyword that introduces the declaration.
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Rule => "rule",
            DeclKind::Schedule => "schedule",
            DeclKind::Init => "init",
            DeclKind::Adapter => "adapter",
            DeclKind::Model => "model",
            DeclKind::Function => "fn",
            DeclKind::Experiment => "experiment",
        }
    }
}

/// A named declaration. Fields that a kind does not use are empty or `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    /// The `///` lines above it, without the slashes.
    pub docs: Vec<String>,
    /// Which kind of declaration.
    pub kind: DeclKind,
    /// Its name.
    pub name: Ident,
    /// Hyperparameters: `(lr = 1e-3, beta1 in [0, 1) = 0.9)`. `None` where the declaration
    /// has no parameter list at all (`init zeros[*s]`), which the formatter keeps.
    pub params: Option<Vec<Param>>,
    /// A rule's inputs: `(g)`.
    pub inputs: Vec<Input>,
    /// An adapter's adapted weight: `on w`.
    pub target: Option<Ident>,
    /// An init's shape `[m, n]`, or an adapter target's shape.
    pub shape: Option<Shape>,
    /// The body.
    pub body: Body,
    /// The whole declaration, docs excluded.
    pub span: Span,
}

/// `= expr` or `{ statements }`.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `= expr`.
    Expr(Expr),
    /// `{ ... }`.
    Block(Block),
}

impl Body {
    /// The span of the body.
    pub fn span(&self) -> Span {
        match self {
            Body::Expr(e) => e.span,
            Body::Block(b) => b.span,
        }
    }
}

/// A hyperparameter declaration: `name[: type][ in interval][ = default]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// `*name`: takes all remaining positional arguments as a list.
    pub variadic: bool,
    /// Declared type (`rule`, `int`, ...), if written.
    pub ty: Option<Ident>,
    /// Admissible values, if written.
    pub range: Option<Interval>,
    /// Default value, if any; a parameter without one must be given.
    pub default: Option<Expr>,
    /// The whole parameter.
    pub span: Span,
}

/// `[lo, hi)` and friends: bounds checked on every constant argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub lo: Expr,
    /// Upper bound.
    pub hi: Expr,
    /// `[` rather than `(`.
    pub lo_closed: bool,
    /// `]` rather than `)`.
    pub hi_closed: bool,
    /// The whole interval.
    pub span: Span,
}

/// A tensor input with an optional shape: `g`, `x[batch, d]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// Its name.
    pub name: Ident,
    /// Its declared shape.
    pub shape: Option<Shape>,
    /// The whole input.
    pub span: Span,
}

/// A shape: `[m, n]`, `[batch, 2 * d]`, `[*dims]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// The dimensions.
    pub dims: Vec<Dim>,
    /// The brackets and what is between them.
    pub span: Span,
}

/// One dimension of a [`Shape`].
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    /// `*dims`: any number of dimensions.
    Rest(Ident),
    /// A size: a name (bound here if new) or an expression.
    Expr(Expr),
}

/// `{ statements [value] }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// The trailing expression, the block's value.
    pub value: Option<Box<Expr>>,
    /// The braces and what is between them.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// The whole statement.
    pub span: Span,
}

/// The statements of every body; the checker says which belong where.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let x = e` or `let (a, b) = e`, with optional modifiers.
    Let {
        /// What is bound.
        pattern: Pattern,
        /// The value.
        value: Expr,
        /// `reset every n` on a rule call.
        modifiers: Vec<Modifier>,
    },
    /// `var x = e`: a mutable local.
    Var {
        /// Its name.
        name: Ident,
        /// Initial value.
        value: Expr,
    },
    /// `state s = e [refresh every n]`: per-parameter persistent state, initialized from `e`.
    State {
        /// Its name.
        name: Ident,
        /// Initial value, also used at every refresh.
        value: Expr,
        /// `refresh every n`.
        modifiers: Vec<Modifier>,
    },
    /// `return e [reset every n]`.
    Return {
        /// The returned value.
        value: Expr,
        /// `reset every n` on a rule call.
        modifiers: Vec<Modifier>,
    },
    /// `repeat n [as i] { ... }`.
    Repeat {
        /// How many times.
        count: Expr,
        /// The 0-based iteration counter, if named.
        counter: Option<Ident>,
        /// The body.
        body: Block,
    },
    /// `for x in list { ... }`: unrolled over a list known before running.
    For {
        /// The loop variable.
        var: Ident,
        /// The list.
        items: Expr,
        /// The body.
        body: Block,
    },
    /// An `if` whose value is not used.
    If(Expr),
    /// `place = e`, `place += e`, ..., with experiment clauses (`with`, `adapted by`).
    Assign {
        /// The target.
        place: Place,
        /// `=`, `+=`, ...
        op: AssignOp,
        /// The value.
        value: Expr,
        /// `with w += ...`, `adapted by lora() on w`.
        clauses: Vec<Clause>,
    },
    /// `param w[k, d] = init`.
    Param {
        /// Its name.
        name: Ident,
        /// Its shape.
        shape: Shape,
        /// Its initializer.
        init: Expr,
    },
    /// `frozen r = e`: a tensor computed once and never trained.
    Frozen {
        /// Its name.
        name: Ident,
        /// Its value.
        value: Expr,
    },
    /// `weight = e`: an adapter's effective weight.
    Weight {
        /// Its value.
        value: Expr,
    },
    /// `forward(x[batch, d]) = e`.
    Forward {
        /// Inputs with shapes.
        inputs: Vec<Input>,
        /// Its body.
        body: Body,
    },
    /// `data x, y = e [fresh every step] [batch n] [holdout f]`.
    Data {
        /// Names bound to the data's fields.
        names: Vec<Ident>,
        /// Where the data comes from.
        source: Expr,
        /// Sampling options.
        options: Vec<DataOption>,
    },
    /// `optimize paths with rule`.
    Optimize {
        /// Parameter paths or patterns.
        paths: Vec<Path>,
        /// The rule.
        rule: Expr,
    },
    /// `init paths with init`: override a parameter's initializer.
    Init {
        /// Parameter paths or patterns.
        paths: Vec<Path>,
        /// The initializer.
        init: Expr,
    },
    /// `log every n { entries }`.
    Log {
        /// The period in steps.
        every: Expr,
        /// The metrics.
        entries: Vec<LogEntry>,
    },
    /// `checkpoint every n`.
    Checkpoint {
        /// The period in steps.
        every: Expr,
    },
    /// `sweep lr in [...], seed in 0..4`.
    Sweep {
        /// The grid axes.
        axes: Vec<SweepAxis>,
    },
}

/// The left side of a `let`.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// A name.
    Name(Ident),
    /// `(a, b, c)`.
    Tuple(Vec<Pattern>, Span),
}

impl Pattern {
    /// The span of the pattern.
    pub fn span(&self) -> Span {
        match self {
            Pattern::Name(i) => i.span,
            Pattern::Tuple(_, s) => *s,
        }
    }
}

/// A dotted place: `m`, `student.w`.
#[derive(Clone, Debug, PartialEq)]
pub struct Place {
    /// The parts.
    pub parts: Vec<Ident>,
    /// The whole place.
    pub span: Span,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&p.name)?;
        }
        Ok(())
    }
}

/// An assignment operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
}

impl AssignOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignOp::Set => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
        }
    }
}

/// `refresh every n`, `reset every n` or `moves like g`.
#[derive(Clone, Debug, PartialEq)]
pub struct Modifier {
    /// Which.
    pub kind: ModifierKind,
    /// The period (`refresh`, `reset`), or what the state moves like (`g` or `g^2`).
    pub value: Expr,
    /// The whole modifier.
    pub span: Span,
}

/// The kinds of [`Modifier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModifierKind {
    /// Re-evaluate a state's initializer.
    Refresh,
    /// Reset the state of the rule applied in the expression.
    Reset,
    /// How a state changes when its rule's input changes basis (`rebase`): like the input
    /// (`moves like g`) or like its elementwise square (`moves like g^2`).
    MovesLike,
}

/// A clause on an experiment binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    /// `with w += e, b = e`: a copy of a model with edited parameters.
    With {
        /// The edits.
        edits: Vec<Edit>,
        /// The whole clause.
        span: Span,
    },
    /// `adapted by lora(rank = 1) on w`: a model with an adapter on some weights.
    Adapted {
        /// The adapter.
        adapter: Expr,
        /// The adapted weights.
        targets: Vec<Path>,
        /// The whole clause.
        span: Span,
    },
}

/// One edit of a `with` clause.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    /// The edited parameter.
    pub place: Place,
    /// `=` or `+=`, ...
    pub op: AssignOp,
    /// The value.
    pub value: Expr,
    /// The whole edit.
    pub span: Span,
}

/// How a `data` statement samples.
#[derive(Clone, Debug, PartialEq)]
pub enum DataOption {
    /// `fresh every step`: a new sample at every step.
    FreshEveryStep(Span),
    /// `batch n`: mini-batches of a fixed dataset, shuffled each epoch.
    Batch(Expr),
    /// `holdout f`: the fraction (or count) kept for evaluation.
    Holdout(Expr),
}

/// One metric of a `log` block: `loss` or `gap = norm(...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// The metric's name.
    pub name: Ident,
    /// Its expression; `None` logs the binding of that name.
    pub value: Option<Expr>,
    /// The whole entry.
    pub span: Span,
}

/// One axis of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxis {
    /// The swept binding.
    pub name: Ident,
    /// Its values.
    pub values: SweepValues,
    /// The whole axis.
    pub span: Span,
}

/// The values of a sweep axis.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepValues {
    /// Any list expression.
    List(Expr),
    /// `lo..hi`, integers, `hi` excluded.
    Range(Expr, Expr),
}

/// A parameter path or pattern: `student.w.a`, `model.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// The parts.
    pub parts: Vec<PathPart>,
    /// The whole path.
    pub span: Span,
}

/// One part of a [`Path`].
#[derive(Clone, Debug, PartialEq)]
pub enum PathPart {
    /// A name.
    Name(Ident),
    /// `*`: any one name.
    Star(Span),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match p {
                PathPart::Name(n) => f.write_str(&n.name)?,
                PathPart::Star(_) => f.write_str("*")?,
            }
        }
        Ok(())
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// The kinds of [`Expr`].
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A float literal, with its spelling kept for the formatter.
    Float {
        /// The value.
        value: f64,
        /// As written: `1e-3`.
        text: String,
    },
    /// `true` or `false`.
    Bool(bool),
    /// A string literal (unescaped).
    Str(String),
    /// A name.
    Name(String),
    /// `[a, b, c]`.
    List(Vec<Expr>),
    /// `(a, b)`.
    Tuple(Vec<Expr>),
    /// `(e)`, kept so the formatter prints what was written.
    Paren(Box<Expr>),
    /// `-e`, `not e`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `a op b`.
    Binary {
        /// The operator.
        op: BinOp,
        /// The operator's own span.
        op_span: Span,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `e^T`.
    Transpose(Box<Expr>),
    /// `f(args)`, also rule application `adam(lr = 1)(g)`.
    Call {
        /// What is called.
        callee: Box<Expr>,
        /// Positional then keyword arguments, in source order.
        args: Vec<Arg>,
    },
    /// `e[items]`.
    Index {
        /// What is indexed.
        base: Box<Expr>,
        /// One item per dimension.
        items: Vec<IndexItem>,
    },
    /// `e.name`.
    Field {
        /// The record.
        base: Box<Expr>,
        /// The field.
        name: Ident,
    },
    /// `if c { a } else { b }`.
    If {
        /// The condition.
        cond: Box<Expr>,
        /// Taken when true.
        then: Block,
        /// Taken when false: a [`ExprKind::Block`] or another [`ExprKind::If`].
        otherwise: Option<Box<Expr>>,
    },
    /// A block in expression position (only as an `else` branch).
    Block(Block),
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `name =` for a keyword argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// One item of an index expression.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// A single position; the dimension is dropped.
    At(Expr),
    /// `lo:hi:step`, each part optional.
    Slice {
        /// Start, default 0.
        lo: Option<Expr>,
        /// End (excluded), default the size.
        hi: Option<Expr>,
        /// Step, default 1.
        step: Option<Expr>,
        /// The whole item.
        span: Span,
    },
    /// `None`: a new axis of size 1.
    NewAxis(Span),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `not`
    Not,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `@`
    MatMul,
    /// `^`
    Pow,
}

impl BinOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::MatMul => "@",
            BinOp::Pow => "^",
        }
    }

    /// Binding strength, higher binds tighter; the parser and the formatter share it.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 4,
            BinOp::Add | BinOp::Sub => 5,
            BinOp::Mul | BinOp::Div | BinOp::MatMul => 6,
            BinOp::Pow => 8,
        }
    }

    /// True for the right-associative `^`.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }
}

impl UnaryOp {
    /// Binding strength on the [`BinOp::precedence`] scale: `not` is below comparisons,
    /// `-` below `^` (so `-x^2` is `-(x^2)`) but above `*`.
    pub fn precedence(self) -> u8 {
        match self {
            UnaryOp::Not => 3,
            UnaryOp::Neg => 7,
        }
    }
}
