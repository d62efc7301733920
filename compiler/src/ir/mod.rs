//! The tensor IR: what an update rule becomes once everything known before running has been
//! evaluated. One [`Graph`] per (rule, parameter shape): SSA nodes in topological order, each
//! with a concrete shape; scalars are 0-d tensors. The element type (f32 or f64) is chosen when
//! the graph runs. Hyperparameters, loops, higher-order rules, `partition` and shape queries are
//! gone (lowering evaluated them); what remains depends on the step, the gradient, the
//! parameter and the rule's state.
//!
//! State is explicit: a graph reads slot `k` with [`Op::State`] and writes it through
//! [`Graph::state_writes`]. A state is (re)initialized by a runtime [`Op::Select`] between its
//! initial expression and its stored value, on a condition computed in the graph (the first step,
//! `refresh every`, `reset every`); a slot never written before reads as zeros of its shape.
//! Runtime `if` is also a `Select`: with a scalar condition only the taken branch need run,
//! which is how expensive refreshes (an SVD) stay cheap and how a NaN in an untaken branch stays
//! harmless. Group reductions ([`Op::Group`]) combine a scalar over every parameter a rule is
//! applied to. [`Op::Recorded`] marks an arbitrary choice (an SVD's signs) that a replay may
//! replace by the value a peer recorded. The op set is small on purpose: a fusion pass and a JIT
//! consume this same IR.
//!
//! Shapes here are concrete, per specialization, by design: lowering runs once per parameter
//! shape and per sweep point (milliseconds each), so every later pass sees plain numbers.
//! Symbolic shapes (`[m, n]`, `rank`) live in the checker only, which proves them consistent
//! for all sizes before anything is lowered.

mod print;

pub use print::{op_text, print_graph};

/// Index of a node in its graph.
pub type NodeId = usize;

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// -1, 0 or 1 (0 for 0 and NaN as in torch.sign).
    Sign,
    /// Square root.
    Sqrt,
    /// e^x
    Exp,
    /// Natural logarithm.
    Log,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Hyperbolic tangent.
    Tanh,
    /// Error function.
    Erf,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
    /// Round half away from zero.
    Round,
    /// Logical not of a 0/1 mask.
    Not,
}

impl Unary {
    /// The elementwise builtin of this name (`sqrt`, `abs`, ...), if there is one.
    pub fn from_builtin(name: &str) -> Option<Unary> {
        Some(match name {
            "abs" => Unary::Abs,
            "sign" => Unary::Sign,
            "sqrt" => Unary::Sqrt,
            "exp" => Unary::Exp,
            "log" => Unary::Log,
            "sin" => Unary::Sin,
            "cos" => Unary::Cos,
            "tanh" => Unary::Tanh,
            "erf" => Unary::Erf,
            "floor" => Unary::Floor,
            "ceil" => Unary::Ceil,
            "round" => Unary::Round,
            _ => return None,
        })
    }

    /// The function on one f64, for folding constants; `None` for `erf` (no std erf) and `not`.
    pub fn eval_f64(self, x: f64) -> Option<f64> {
        Some(match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Sign if x > 0.0 => 1.0,
            Unary::Sign if x < 0.0 => -1.0,
            Unary::Sign => 0.0,
            Unary::Sqrt => x.sqrt(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            Unary::Round => x.round(),
            Unary::Erf | Unary::Not => return None,
        })
    }
}

/// Elementwise functions of two operands, broadcasting as NumPy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
    /// Larger of the two (NaN-propagating, as torch.maximum).
    Max,
    /// Smaller of the two (NaN-propagating).
    Min,
    /// 1 if `a == b` else 0.
    Eq,
    /// 1 if `a != b` else 0.
    Ne,
    /// 1 if `a < b` else 0.
    Lt,
    /// 1 if `a <= b` else 0.
    Le,
    /// 1 if `a > b` else 0.
    Gt,
    /// 1 if `a >= b` else 0.
    Ge,
    /// Logical and of 0/1 masks.
    And,
    /// Logical or of 0/1 masks.
    Or,
}

/// Reductions over given axes (all axes when the list is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Euclidean (Frobenius) norm.
    Norm,
    /// Index of the maximum (first one on ties), as a float.
    ArgMax,
}

/// Random distributions of [`Op::Random`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dist {
    /// Standard normal.
    Normal,
    /// Uniform on [0, 1).
    Uniform,
}

/// Linear-algebra primitives: opaque to fusion, run by a library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Linalg {
    /// Thin SVD of a matrix truncated to `rank`: outputs (U, S, V^T).
    Svd {
        /// Singular triplets kept, largest first.
        rank: usize,
    },
    /// The randomized truncated SVD of operand 0 with the Gaussian test matrix operand 1 (n×rank)
    /// and `niter` power iterations (Halko et al. 2011; torch.svd_lowrank): outputs (U, S, V^T).
    RandomizedSvd {
        /// Singular triplets kept (the test matrix's columns).
        rank: usize,
        /// Power iterations.
        niter: usize,
    },
    /// Thin QR: outputs (Q, R).
    Qr,
    /// Symmetric eigendecomposition, ascending: outputs (eigenvalues, eigenvectors as columns).
    Eigh,
    /// Solution of `a x = b`: output x.
    Solve,
    /// Lower Cholesky factor: output L.
    Cholesky,
}

/// One operation. Operands are earlier nodes of the same graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A scalar constant.
    Const(f64),
    /// A tensor of the node's shape filled with a constant.
    Fill(f64),
    /// The global step, 1-based, as a scalar.
    Step,
    /// The rule's `k`-th input (the gradient is input 0).
    Input(usize),
    /// The parameter being updated (before this step's update).
    Param,
    /// The stored value of state slot `k` at the start of the step (zeros before its first write).
    State(usize),
    /// An elementwise function.
    Unary(Unary, NodeId),
    /// An elementwise function of two broadcast operands.
    Binary(Binary, NodeId, NodeId),
    /// `cond ? a : b`, broadcasting all three; with a scalar `cond` only one side is needed.
    Select(NodeId, NodeId, NodeId),
    /// A reduction over `axes` (all when empty).
    Reduce {
        /// Which reduction.
        op: Reduce,
        /// The operand.
        arg: NodeId,
        /// Reduced axes, ascending.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
    },
    /// The sum of a scalar over every parameter the rule is applied to. Nodes with the same
    /// `site` in the graphs of one rule application combine.
    Group {
        /// The per-parameter scalar.
        arg: NodeId,
        /// Identifies the reduction across the graphs of the group.
        site: u32,
    },
    /// Matrix product with NumPy's rules for 1-D operands and batch dimensions.
    MatMul(NodeId, NodeId),
    /// Swap the last two axes.
    Transpose(NodeId),
    /// Same elements, the node's shape.
    Reshape(NodeId),
    /// Broadcast to the node's shape.
    Expand(NodeId),
    /// A strided window: per axis (start, step); the node's shape gives the counts. Axes listed
    /// in `drop` (indexed with a single position) are removed from the result.
    Slice {
        /// The operand.
        arg: NodeId,
        /// Start and step per axis of the operand.
        ranges: Vec<(usize, usize)>,
        /// Operand axes removed after slicing.
        drop: Vec<usize>,
    },
    /// The adjoint of [`Op::Slice`]: a tensor of the node's shape, zeros except the strided
    /// window (per axis (start, step); counts from the operand's shape with the `drop` axes
    /// re-inserted as size 1), which holds the operand. Reverse-mode autodiff needs it to send
    /// a slice's gradient back into the sliced tensor.
    Embed {
        /// The window's contents.
        arg: NodeId,
        /// Start and step per axis of the result.
        ranges: Vec<(usize, usize)>,
        /// Result axes the operand lacks (a slice dropped them), ascending.
        drop: Vec<usize>,
    },
    /// Concatenation along an axis.
    Concat {
        /// The operands, in order.
        args: Vec<NodeId>,
        /// The axis.
        axis: usize,
    },
    /// A counter-based random tensor of the node's shape: the same (seed, stream, step) always
    /// gives the same numbers, whatever the thread count or evaluation order.
    Random {
        /// Which distribution.
        dist: Dist,
        /// Identifies the draw (the call site in the program).
        stream: u64,
    },
    /// A linear-algebra primitive; multiple results are read with [`Op::Output`].
    Linalg(Linalg, Vec<NodeId>),
    /// Result `k` of a multi-output node.
    Output(NodeId, usize),
    /// Diagonal of a matrix (vector) or diagonal matrix of a vector.
    Diag(NodeId),
    /// Upper (`true`) or lower triangle of a matrix, zeros elsewhere.
    Triangle(NodeId, bool),
    /// An arbitrary choice a run may replace: the value of `arg`, unless the run supplies a
    /// recorded value named `name` for this parameter at this step (the interpreter's
    /// [`Recorded`](crate::interp::Recorded) table; the latest value recorded at or before the
    /// step holds). It lets a replay substitute what a peer chose where the algorithm leaves the
    /// choice open (SVD signs, random probes), so the comparison stays deterministic. Opaque to
    /// fusion; when a value is supplied, `arg` need not run. Its derivative is `arg`'s.
    Recorded {
        /// What the value is called in the recorded table (`recorded("projectors", ...)`).
        name: String,
        /// The value computed when nothing is supplied.
        arg: NodeId,
    },
}

impl Op {
    /// The nodes this operation reads (every operand, whichever a `Select` will take).
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Const(_) | Op::Fill(_) | Op::Step | Op::Input(_) | Op::Param | Op::State(_) | Op::Random { .. } => {
                Vec::new()
            }
            Op::Unary(_, a)
            | Op::Transpose(a)
            | Op::Reshape(a)
            | Op::Expand(a)
            | Op::Diag(a)
            | Op::Triangle(a, _)
            | Op::Output(a, _) => vec![*a],
            Op::Reduce { arg, .. }
            | Op::Slice { arg, .. }
            | Op::Embed { arg, .. }
            | Op::Group { arg, .. }
            | Op::Recorded { arg, .. } => vec![*arg],
            Op::Binary(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
            Op::Select(c, a, b) => vec![*c, *a, *b],
            Op::Concat { args, .. } | Op::Linalg(_, args) => args.clone(),
        }
    }
}

/// A node: an operation and the shape of its result.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it computes.
    pub op: Op,
    /// Its shape (empty for a scalar).
    pub shape: Vec<usize>,
}

/// A state slot of a rule program.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// Where it comes from, e.g. `chain.1:adam/m`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// The program of one rule for one parameter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// The direction added to the parameter.
    pub output: NodeId,
    /// New values of state slots: (slot, node).
    pub state_writes: Vec<(usize, NodeId)>,
    /// The state slots.
    pub slots: Vec<Slot>,
    /// The rule's inputs' shapes (input 0 is the gradient).
    pub inputs: Vec<Vec<usize>>,
}

impl Graph {
    /// Appends a node and returns its id.
    pub fn push(&mut self, op: Op, shape: Vec<usize>) -> NodeId {
        self.nodes.push(Node { op, shape });
        self.nodes.len() - 1
    }

    /// The shape of a node.
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id].shape
    }
}
