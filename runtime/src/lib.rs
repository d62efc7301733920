//! optic's runtime: what runs, knowing nothing of syntax (it never imports the compiler). It holds
//! the linear-algebra primitives ([`linalg`], the only user of faer), which the reference
//! interpreter calls, and an experiment's input and output: data files ([`data`]), checkpoints
//! ([`checkpoint`]) and charts ([`plot`]); buffers, the worker pool and schedule execution join it
//! later.

pub mod checkpoint;
pub mod data;
pub mod linalg;
pub mod plot;
pub mod pool;
