//! The canonical summation order (`docs/design.md`, "Numerics: one
//! canonical order").
//!
//! Every fast path (portable, AVX2, AVX-512, NEON, CUDA, any thread count)
//! evaluates sums — and products, and any other associative-in-theory fold —
//! in exactly this order, so their results are bit-identical and the tests
//! compare them with `==`. This module is the executable definition; it is
//! scalar and slow on purpose.
//!
//! For a sequence `x_0 .. x_{n-1}` (a whole array, one row, or one column)
//! with a keep bit per element:
//!
//! 1. The sequence is cut into blocks of [`BLOCK`] elements (the last one may
//!    be shorter). Block `b` covers `b*BLOCK .. min(n, (b+1)*BLOCK)`.
//! 2. Inside a block, [`LANES`] = 32 lane accumulators start at the identity;
//!    lane `j` folds the kept elements at block offsets `j, j+32, j+64, …` in
//!    increasing order (`acc_j = op(acc_j, x_i)`). Masked-out elements are
//!    skipped (never read into arithmetic).
//! 3. The 32 lanes are folded by the halving tree: for `w` in 16, 8, 4, 2, 1:
//!    `acc_j = op(acc_j, acc_{j+w})` for `j < w`. `acc_0` is the block partial.
//! 4. The block partials are padded with the identity to a power of two and
//!    folded by the same halving tree.
//!
//! The accumulator type is `f32` for `f32`, `f16` and `bf16` inputs and `f64`
//! for `f64` inputs. No fused multiply-add is used anywhere.

/// Elements per canonical block.
pub const BLOCK: usize = 4096;
/// Lane accumulators per block.
pub const LANES: usize = 32;

/// Folds `v` in place by the halving tree; `v.len()` must be a power of two
/// (or 0). Returns `v[0]` (or `identity` for an empty slice).
pub fn halving_tree<A: Clone>(v: &mut [A], identity: A, op: impl Fn(A, A) -> A) -> A {
    if v.is_empty() {
        return identity;
    }
    debug_assert!(v.len().is_power_of_two());
    let mut w = v.len();
    while w > 1 {
        w /= 2;
        for j in 0..w {
            v[j] = op(v[j].clone(), v[j + w].clone());
        }
    }
    v[0].clone()
}

/// Folds block partials: pads to a power of two with `identity`, then the
/// halving tree (step 4 of the canonical order).
pub fn fold_partials<A: Clone>(partials: &[A], identity: A, op: impl Fn(A, A) -> A) -> A {
    if partials.is_empty() {
        return identity;
    }
    let mut v = partials.to_vec();
    v.resize(partials.len().next_power_of_two(), identity.clone());
    halving_tree(&mut v, identity, op)
}

/// The partial of one block (steps 2 and 3): `keep(k)` and `val(k)` are
/// indexed by the offset `k` inside the block, `0 <= k < len <= BLOCK`.
pub fn block_partial<A: Clone>(
    len: usize,
    identity: A,
    keep: impl Fn(usize) -> bool,
    val: impl Fn(usize) -> A,
    op: impl Fn(A, A) -> A,
) -> A {
    debug_assert!(len <= BLOCK);
    let mut acc: [A; LANES] = std::array::from_fn(|_| identity.clone());
    for k in 0..len {
        if keep(k) {
            let j = k % LANES;
            acc[j] = op(acc[j].clone(), val(k));
        }
    }
    halving_tree(&mut acc, identity, op)
}

/// The canonical fold of the kept elements of a sequence of length `n`
/// (steps 1–4). `keep(i)` and `val(i)` are indexed by position `i < n`.
///
/// ```
/// use maskops::canonical::canonical_fold;
/// let x = [1.0f32, 2.0, 3.0, 4.0];
/// let s = canonical_fold(4, 0.0f32, |i| i != 1, |i| x[i], |a, b| a + b);
/// assert_eq!(s, 8.0);
/// ```
pub fn canonical_fold<A: Clone>(
    n: usize,
    identity: A,
    keep: impl Fn(usize) -> bool,
    val: impl Fn(usize) -> A,
    op: impl Fn(A, A) -> A + Copy,
) -> A {
    let blocks = n.div_ceil(BLOCK);
    let partials: Vec<A> = (0..blocks)
        .map(|b| {
            let start = b * BLOCK;
            let len = (n - start).min(BLOCK);
            block_partial(
                len,
                identity.clone(),
                |k| keep(start + k),
                |k| val(start + k),
                op,
            )
        })
        .collect();
    fold_partials(&partials, identity, op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_tree_order() {
        // ((a+e)+(c+g)) + ((b+f)+(d+h)) for 8 elements: check with strings.
        let mut v: Vec<String> = "abcdefgh".chars().map(|c| c.to_string()).collect();
        let r = halving_tree(&mut v, String::new(), |a, b| format!("({a}{b})"));
        assert_eq!(r, "(((ae)(cg))((bf)(dh)))");
    }

    #[test]
    fn lanes_take_strided_elements() {
        // 40 elements: lane 0 takes 0 and 32, lane 7 takes 7 and 39.
        let r = block_partial(
            40,
            String::new(),
            |_| true,
            |k| format!("{k},"),
            |a, b| a + &b,
        );
        assert!(r.starts_with("0,32,"));
        assert!(r.contains("7,39,"));
        assert_eq!(r.matches(',').count(), 40);
    }

    #[test]
    fn masked_out_elements_never_read() {
        let x = [1.0f32, f32::NAN, f32::INFINITY, 2.0];
        let s = canonical_fold(4, 0.0f32, |i| i == 0 || i == 3, |i| x[i], |a, b| a + b);
        assert_eq!(s, 3.0);
    }

    #[test]
    fn blocks_fold_as_a_padded_tree() {
        let n = 3 * BLOCK + 5;
        let s = canonical_fold(n, 0u64, |_| true, |i| i as u64, |a, b| a + b);
        assert_eq!(s, (n as u64) * (n as u64 - 1) / 2);
        let order = canonical_fold(
            n,
            String::new(),
            |i| i % BLOCK == 0,
            |i| (i / BLOCK).to_string(),
            |a, b| {
                if a.is_empty() {
                    b
                } else if b.is_empty() {
                    a
                } else {
                    format!("({a}+{b})")
                }
            },
        );
        assert_eq!(order, "((0+2)+(1+3))");
    }
}
