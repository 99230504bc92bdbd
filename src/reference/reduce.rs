//! Reference reduce.
