//! Checking (arrives next).
