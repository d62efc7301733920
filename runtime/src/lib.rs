//! Placeholder crate root; the runtime arrives with the IR issue.
