//! optic's runtime: what runs, knowing nothing of syntax (it never imports the compiler). For now
//! it holds the linear-algebra primitives ([`linalg`], the only user of faer), which the reference
//! interpreter calls; buffers, the worker pool and schedule execution join it later.

pub mod linalg;
