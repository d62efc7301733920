//! Transcendental functions emitted inline as Cranelift IR (to be written).
