//! maskops' examples (no library code): each file beside this one is an
//! example of the `maskops-examples` package, run from the repository root
//! with `cargo run --release --example NAME`.
//!
//! - `quickstart`: the gene-expression masking workflow end to end.
//! - `embedding`: Adagrad on row-sparse gradients of an embedding table.
//! - `sequence`: key padding masks, masked softmax and cross-entropy.
//! - `sharded_embedding` (feature `mpi`): a table sharded across MPI ranks.
