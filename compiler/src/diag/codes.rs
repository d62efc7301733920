//! The stable diagnostic codes. A code never changes meaning once released; new problems get
//! new codes. The hundreds digit groups them: 1 syntax, 2 names and imports, 3 arguments,
//! 4 types, 5 shapes, 6 hyperparameter values, 7 program structure, 8 files, 9 running.

use std::fmt;

/// A stable diagnostic code such as `E201`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub &'static str);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal;)*) => {
        $( $(#[doc = $doc])* pub const $name: Code = Code($code); )*
        /// Every code with its one-line description, in order.
        pub const ALL: &[(Code, &str)] = &[ $( (Code($code), concat!($($doc),*)) ),* ];
    };
}

codes! {
    /// The text does not follow the grammar.
    SYNTAX = "E101";
    /// A numeric literal does not fit its type.
    BAD_LITERAL = "E102";
    /// A `///` doc comment stands where nothing can be documented.
    MISPLACED_DOC = "E103";

    /// A name that is declared nowhere in scope.
    UNKNOWN_NAME = "E201";
    /// Two declarations with one name.
    DUPLICATE_DECL = "E202";
    /// A name bound twice in one scope (parameters, locals, states, members).
    DUPLICATE_BINDING = "E203";
    /// An imported file that cannot be read.
    IMPORT_NOT_FOUND = "E204";
    /// Files that import each other.
    IMPORT_CYCLE = "E205";
    /// A field or member that the value does not have.
    UNKNOWN_FIELD = "E206";
    /// A type annotation that names no type.
    UNKNOWN_TYPE = "E207";
    /// An assignment to something that cannot be assigned.
    NOT_ASSIGNABLE = "E208";
    /// A parameter path or pattern that matches no parameter.
    NO_SUCH_PARAM = "E209";

    /// More positional arguments than parameters.
    TOO_MANY_ARGS = "E301";
    /// A parameter without a default is not given.
    MISSING_ARG = "E302";
    /// A keyword argument that names no parameter.
    UNKNOWN_KEYWORD = "E303";
    /// One parameter given twice.
    DUPLICATE_ARG = "E304";
    /// A positional argument after a keyword argument.
    POSITIONAL_AFTER_KEYWORD = "E305";
    /// Destructuring a tuple into the wrong number of names.
    TUPLE_ARITY = "E306";
    /// Calling something that is not callable.
    NOT_CALLABLE = "E307";

    /// A value of the wrong type.
    TYPE_MISMATCH = "E401";
    /// An operator applied to operands it is not defined for.
    BAD_OPERAND = "E402";
    /// A condition that is not a boolean.
    NOT_BOOL = "E403";
    /// The branches of an `if` disagree.
    BRANCH_MISMATCH = "E404";

    /// The inner dimensions of a matrix product differ.
    MATMUL_SHAPE = "E501";
    /// Shapes that cannot be broadcast together.
    BROADCAST_SHAPE = "E502";
    /// A tensor of the wrong rank.
    RANK_MISMATCH = "E503";
    /// A value whose shape differs from the declared one.
    SHAPE_MISMATCH = "E504";
    /// An index or axis outside the tensor.
    OUT_OF_BOUNDS = "E505";

    /// A hyperparameter outside its declared range.
    OUT_OF_RANGE = "E601";
    /// A count (steps, periods, ranks) that is not a positive integer.
    BAD_COUNT = "E602";
    /// A division by zero between constants.
    DIVISION_BY_ZERO = "E603";

    /// A statement that does not belong in this kind of declaration.
    MISPLACED_STMT = "E701";
    /// A rule, init, schedule or forward without a value.
    MISSING_RETURN = "E702";
    /// An experiment without something it needs (loss, steps, optimize).
    MISSING_SETTING = "E703";
    /// A parameter trained by two rules.
    DOUBLE_OPTIMIZE = "E704";
    /// One setting given twice.
    DUPLICATE_SETTING = "E705";
    /// A declaration that uses itself.
    RECURSION = "E706";
    /// Statements after a `return`.
    UNREACHABLE = "E707";
    /// A builtin used where it has no meaning (`grad_at` outside a rule, `grad(f, p)` or
    /// `layer_inputs` outside an experiment's bindings).
    MISPLACED_BUILTIN = "E708";

    /// A data file that is missing or malformed.
    BAD_FILE = "E801";

    /// A construct the compiler cannot run yet (checked, but not lowered to the tensor IR).
    UNSUPPORTED = "E901";
    /// A value that only turns out wrong once known values are computed (a shape, a count).
    LOWERING = "E902";
}
