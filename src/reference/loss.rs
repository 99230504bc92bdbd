//! Reference loss.
