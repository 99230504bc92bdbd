//! Reusable scratch for the sparse steps: the linear-time coalescing.
//!
//! Duplicates must be summed in a fixed order (order of appearance) before
//! the (non-linear) update. Two ways, both linear:
//!
//! * Element-sparse steps ([`Workspace::group`]): one stable counting
//!   scatter of the entries into buckets of `2^14` (or more) consecutive
//!   flat indices, each item the index packed with the entry's `f32` value
//!   bits (or its position); the engine then sums the duplicates of a bucket
//!   in a direct-addressed table, in order of appearance. No scatter when the
//!   indices already increase or there is one bucket. When the indices are
//!   too sparse for the table, the sort below is used instead.
//! * Row-sparse steps ([`Workspace::sort`]): a stable LSD radix sort (the
//!   index and the entry's position packed into one `u64`, digits of at most
//!   11 bits, one counting pass for all digits, passes whose digit is constant
//!   skipped, no sort at all when the indices already increase), so each run
//!   of equal indices lists its entries in order of appearance.
//!
//! The result does not depend on the ISA or the thread count.

/// Scratch buffers reused across steps, so that a steady-state training loop
/// allocates nothing. Buffers grow to the largest gradient seen and stay.
/// (The duplicate table of the element-sparse steps, at most `2^16` slots,
/// is kept per thread, also allocated once.)
///
/// The plain `step_*` methods of [`super::Adagrad`] use one workspace per
/// thread internally; pass your own to the `*_with` methods to control its
/// lifetime, or to set [`Workspace::parallel_min`].
///
/// ```
/// use maskops::optim::{Adagrad, Workspace};
/// use maskops::backend;
/// let opt = Adagrad::default();
/// let mut ws = Workspace::new();
/// let mut table = vec![0.0f32; 10 * 4];
/// let mut state = opt.state(table.len());
/// for _ in 0..3 {
///     opt.step_rows_with(backend::isa(), &mut ws, &mut table, 10, 4, &[7, 2, 7], &[1.0; 12], &mut state)
///         .unwrap();
/// }
/// assert_eq!(state.step, 3);
/// ```
#[derive(Debug, Clone)]
pub struct Workspace {
    pub(crate) items: Vec<u64>,
    pub(crate) tmp: Vec<u64>,
    pub(crate) pairs: Vec<(u64, u64)>,
    hist: Vec<usize>,
    parallel_min: usize,
    /// Tests: take the comparison-sort fallback even when the packed radix
    /// sort applies.
    pub(crate) force_pairs: bool,
    /// Tests: take the radix sort even when the bucket grouping applies.
    pub(crate) force_sort: bool,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

/// Default minimum work (elements updated) per rayon task.
pub const DEFAULT_PARALLEL_MIN: usize = 1 << 16;

impl Workspace {
    /// An empty workspace (no allocation until first use).
    pub fn new() -> Self {
        Workspace {
            items: Vec::new(),
            tmp: Vec::new(),
            pairs: Vec::new(),
            hist: Vec::new(),
            parallel_min: DEFAULT_PARALLEL_MIN,
            force_pairs: false,
            force_sort: false,
        }
    }

    /// The minimum number of element updates per rayon task: a step with
    /// less than twice this much work runs on the calling thread. Results do
    /// not depend on it (every update is elementwise and every duplicate sum
    /// is done by one thread in a fixed order).
    pub fn parallel_min(&self) -> usize {
        self.parallel_min
    }

    /// Sets [`Workspace::parallel_min`] (at least 1).
    pub fn set_parallel_min(&mut self, n: usize) {
        self.parallel_min = n.max(1);
    }

    /// Bytes currently reserved.
    pub fn capacity_bytes(&self) -> usize {
        8 * (self.items.capacity() + self.tmp.capacity() + self.hist.capacity())
            + 16 * self.pairs.capacity()
    }

    /// Sorts entry positions `0..n` stably by `key(k) < bound`.
    ///
    /// Afterwards [`Sorted`] (from [`Workspace::sorted`]) lists the entries by
    /// key, equal keys in order of appearance.
    pub(crate) fn sort(
        &mut self,
        n: usize,
        bound: usize,
        key: impl Fn(usize) -> usize,
    ) -> SortMode {
        let pos_bits = bits(n.saturating_sub(1) as u64);
        let key_bits = bits(bound.saturating_sub(1) as u64);
        self.items.clear();
        if key_bits + pos_bits > 64 || self.force_pairs {
            return self.sort_pairs(n, key);
        }
        self.items.reserve(n);
        let mut sorted = true;
        let mut prev = 0u64;
        for k in 0..n {
            let kk = key(k) as u64;
            sorted &= kk >= prev;
            prev = kk;
            self.items.push((kk << pos_bits) | k as u64);
        }
        if !sorted {
            self.radix(pos_bits, key_bits);
        }
        SortMode::Packed { pos_bits }
    }

    /// The fallback when index and position do not fit one `u64` together:
    /// a comparison sort of `(key, position)` pairs (stable by construction).
    pub(crate) fn sort_pairs(&mut self, n: usize, key: impl Fn(usize) -> usize) -> SortMode {
        self.pairs.clear();
        self.pairs.extend((0..n).map(|k| (key(k) as u64, k as u64)));
        self.pairs.sort_unstable();
        self.items.clear();
        self.items.extend(self.pairs.iter().map(|&(_, p)| p));
        SortMode::Pairs
    }

    /// Stable LSD radix sort of `items` by bits `lo .. lo + key_bits`.
    fn radix(&mut self, lo: u32, key_bits: u32) {
        if key_bits == 0 {
            return;
        }
        let passes = key_bits.div_ceil(11);
        let d = key_bits.div_ceil(passes);
        let buckets = 1usize << d;
        let dmask = (buckets - 1) as u64;
        let n = self.items.len();
        self.hist.clear();
        self.hist.resize(passes as usize * buckets, 0);
        for &it in &self.items {
            let k = it >> lo;
            for p in 0..passes as usize {
                self.hist[p * buckets + ((k >> (p as u32 * d)) & dmask) as usize] += 1;
            }
        }
        self.tmp.clear();
        self.tmp.resize(n, 0);
        for p in 0..passes as usize {
            let h = &mut self.hist[p * buckets..(p + 1) * buckets];
            if h.contains(&n) {
                continue; // every item has the same digit: nothing to do
            }
            let mut acc = 0;
            for c in h.iter_mut() {
                let v = *c;
                *c = acc;
                acc += v;
            }
            let shift = lo + p as u32 * d;
            for &it in &self.items {
                let b = ((it >> shift) & dmask) as usize;
                self.tmp[h[b]] = it;
                h[b] += 1;
            }
            std::mem::swap(&mut self.items, &mut self.tmp);
        }
    }

    /// Groups the `n` entries `(key, low, bad)` (key `< bound`) into buckets of
    /// `2^lo_bits` consecutive keys, each bucket listing its entries in
    /// order of appearance (a stable counting scatter on the high key bits;
    /// no scatter at all when there is one bucket or the keys already
    /// increase). Each item is `key << low_bits | low`, `low <
    /// 2^low_bits` (the position, or the value's bits, so that the update
    /// reads no gradient array at random). Within a bucket the keys are not
    /// sorted: the caller sums duplicates with a direct-addressed table of
    /// `2^lo_bits` slots.
    ///
    /// The keys may be invalid: the caller marks an invalid entry with `bad`
    /// (validation in the same pass; the result then says `invalid` and must
    /// not be used), and a key `>= bound` is clamped to `bound - 1` here.
    ///
    /// Returns `None` without consuming `entries` when the grouping does not pay or
    /// does not fit: key and `low` not fitting one `u64` together, or keys so
    /// sparse that a bucket table would exceed `2^MAX_LO_BITS` slots with
    /// at most about `2n` buckets; [`Workspace::sort`] handles those.
    pub(crate) fn group(
        &mut self,
        n: usize,
        bound: usize,
        entries: impl Iterator<Item = (usize, u64, bool)>,
        low_bits: u32,
    ) -> Option<GroupInfo> {
        if self.force_pairs || self.force_sort || bound == 0 {
            return None;
        }
        let key_bits = bits(bound as u64 - 1);
        if key_bits + low_bits > 64 {
            return None;
        }
        // At most ~2n buckets (the histogram stays cheaper than the items),
        // and buckets of at least 2^MIN_LO_BITS keys.
        let lo_bits = key_bits
            .saturating_sub(bits(n as u64) + 1)
            .max(MIN_LO_BITS)
            .min(key_bits);
        if lo_bits > MAX_LO_BITS {
            return None;
        }
        let nb = 1usize << (key_bits - lo_bits);
        self.hist.clear();
        self.hist.resize(nb + 1, 0);
        // Both buffers at length n (they may be swapped below).
        resize_no_fill(&mut self.tmp, n);
        resize_no_fill(&mut self.items, n);
        let mut sorted = true;
        let mut prev = 0usize;
        let hist = &mut self.hist[..nb + 1];
        let mut count = 0;
        let mut invalid = false;
        for (t, (kk, low, bad)) in self.tmp.iter_mut().zip(entries) {
            invalid |= bad;
            let kk = kk.min(bound - 1);
            sorted &= kk >= prev;
            prev = kk;
            hist[(kk >> lo_bits) + 1] += 1;
            *t = ((kk as u64) << low_bits) | low;
            count += 1;
        }
        debug_assert_eq!(count, n, "group: entries must yield n items");
        // hist[b] becomes the start of bucket b; hist[nb] = n.
        let mut acc = 0;
        for c in self.hist.iter_mut() {
            acc += *c;
            *c = acc;
        }
        if sorted || nb == 1 {
            std::mem::swap(&mut self.items, &mut self.tmp);
        } else {
            // hist[b] is bucket b's write cursor; afterwards hist[b] is the
            // end of bucket b, i.e. the start of bucket b + 1.
            let shift = low_bits + lo_bits;
            let (items, hist) = (&mut self.items[..n], &mut self.hist[..nb + 1]);
            for &it in &self.tmp[..n] {
                let b = (it >> shift) as usize;
                items[hist[b]] = it;
                hist[b] += 1;
            }
            // back to starts: shift right by one bucket
            self.hist.copy_within(0..nb, 1);
            self.hist[0] = 0;
        }
        Some(GroupInfo {
            low_bits,
            lo_bits,
            invalid,
        })
    }

    /// The grouped view after [`Workspace::group`].
    pub(crate) fn grouped(&self, info: GroupInfo) -> Grouped<'_> {
        Grouped {
            items: &self.items,
            starts: &self.hist,
            low_bits: info.low_bits,
            low_mask: if info.low_bits == 0 {
                0
            } else {
                u64::MAX >> (64 - info.low_bits)
            },
            lo_bits: info.lo_bits,
        }
    }

    /// The sorted view after [`Workspace::sort`].
    pub(crate) fn sorted(&self, mode: SortMode) -> Sorted<'_> {
        match mode {
            SortMode::Packed { pos_bits } => Sorted {
                items: &self.items,
                pairs: None,
                pos_bits,
                pos_mask: if pos_bits == 0 {
                    0
                } else {
                    u64::MAX >> (64 - pos_bits)
                },
            },
            SortMode::Pairs => Sorted {
                items: &self.items,
                pairs: Some(&self.pairs),
                pos_bits: 64,
                pos_mask: u64::MAX,
            },
        }
    }
}

/// Smallest bucket width (keys) of [`Workspace::group`], as a power of two.
const MIN_LO_BITS: u32 = 14;
/// Largest bucket width of [`Workspace::group`] (the duplicate table has one
/// slot per key of a bucket).
pub(crate) const MAX_LO_BITS: u32 = 16;

/// How [`Workspace::group`] left its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupInfo {
    low_bits: u32,
    lo_bits: u32,
    /// Some entry came with its `bad` flag set (an invalid index).
    pub invalid: bool,
}

/// Entries grouped into buckets of `2^lo_bits` consecutive keys, each in
/// order of appearance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouped<'a> {
    /// `key << low_bits | low`, bucket after bucket.
    pub items: &'a [u64],
    /// Bucket `b` is `items[starts[b]..starts[b + 1]]`.
    pub starts: &'a [usize],
    pub low_bits: u32,
    pub low_mask: u64,
    /// Bucket `b` holds the keys `b << lo_bits ..= (b << lo_bits) + 2^lo_bits - 1`.
    pub lo_bits: u32,
}

impl Grouped<'_> {
    /// Number of buckets.
    pub fn buckets(&self) -> usize {
        self.starts.len() - 1
    }
}

/// How [`Workspace::sort`] left its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortMode {
    /// `items[i] = key << pos_bits | position`.
    Packed { pos_bits: u32 },
    /// `pairs[i] = (key, position)`, `items[i] = position`.
    Pairs,
}

/// Entries sorted by key (equal keys in order of appearance).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sorted<'a> {
    /// Position in the low `pos_bits` bits (all of it in `Pairs` mode).
    pub items: &'a [u64],
    pairs: Option<&'a [(u64, u64)]>,
    pos_bits: u32,
    /// `position = items[i] & pos_mask`.
    pub pos_mask: u64,
}

impl Sorted<'_> {
    /// Number of entries.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Key of the `i`-th sorted entry.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn key(&self, i: usize) -> usize {
        match self.pairs {
            None => (self.items[i] >> self.pos_bits) as usize,
            Some(p) => p[i].0 as usize,
        }
    }

    /// Position (in the gradient) of the `i`-th sorted entry.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn pos(&self, i: usize) -> usize {
        (self.items[i] & self.pos_mask) as usize
    }

    /// `key = item >> shift` when the keys are packed in the items.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn key_shift(&self) -> Option<u32> {
        match self.pairs {
            None => Some(self.pos_bits),
            Some(_) => None,
        }
    }

    /// End of the run of equal keys starting at `i`.
    #[cfg_attr(not(maskops_o0), inline(always))]
    #[cfg_attr(maskops_o0, inline)]
    pub fn run_end(&self, i: usize) -> usize {
        let k = self.key(i);
        let mut j = i + 1;
        while j < self.len() && self.key(j) == k {
            j += 1;
        }
        j
    }
}

/// Sets the length to `n`; in a steady state (same `n`) writes nothing
/// (every element is overwritten by the caller anyway).
fn resize_no_fill(v: &mut Vec<u64>, n: usize) {
    if v.len() < n {
        v.resize(n, 0);
    } else {
        v.truncate(n);
    }
}

/// Bits needed for the positions `0..n`.
pub(crate) fn pos_bits(n: usize) -> u32 {
    bits(n.saturating_sub(1) as u64)
}

fn bits(x: u64) -> u32 {
    64 - x.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(keys: &[usize], bound: usize, pairs: bool) {
        let mut ws = Workspace::new();
        let mode = if pairs {
            ws.sort_pairs(keys.len(), |k| keys[k])
        } else {
            ws.sort(keys.len(), bound, |k| keys[k])
        };
        let s = ws.sorted(mode);
        let mut want: Vec<(usize, usize)> = keys.iter().copied().zip(0..).collect();
        want.sort(); // (key, position): stable order by construction
        let got: Vec<(usize, usize)> = (0..s.len()).map(|i| (s.key(i), s.pos(i))).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn radix_matches_stable_sort() {
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for &(n, bound) in &[
            (0, 1),
            (1, 1),
            (1, 10),
            (5, 3),
            (1000, 7),
            (3000, 1 << 20),
            (4097, 1 << 33),
            (777, 5000),
        ] {
            let keys: Vec<usize> = (0..n).map(|_| (next() % bound as u64) as usize).collect();
            check(&keys, bound, false);
            check(&keys, bound, true);
            let mut sorted = keys.clone();
            sorted.sort();
            check(&sorted, bound, false);
        }
    }

    /// `group` puts every entry in the bucket of its key, each bucket in
    /// order of appearance, whatever the bucket count, sorted or not,
    /// out-of-range keys clamped.
    #[test]
    fn group_buckets_stable() {
        let mut x = 777u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for &(n, bound) in &[
            (0usize, 1usize),
            (1, 1),
            (5, 3),
            (1000, 7),
            (3000, 1 << 20),
            (20000, (1 << 18) + 5),
            (50, 1 << 22),
            (5, 1 << 40),
        ] {
            let mut keys: Vec<usize> = (0..n).map(|_| (next() % bound as u64) as usize).collect();
            for pass in 0..3 {
                if pass == 1 {
                    keys.sort();
                }
                if pass == 2 && n > 0 {
                    keys[n / 2] = bound + 12345; // invalid: clamped
                }
                let mut ws = Workspace::new();
                let entries = keys
                    .iter()
                    .enumerate()
                    .map(|(k, &key)| (key, (k as u64) ^ 0x5a5a, false));
                let Some(info) = ws.group(n, bound, entries, 32) else {
                    assert!(bits(bound as u64 - 1) + 32 > 64 || bound >= 1 << 31);
                    continue;
                };
                let g = ws.grouped(info);
                assert_eq!(g.starts[0], 0);
                assert_eq!(g.starts[g.buckets()], n);
                let mut want: Vec<(usize, usize)> =
                    keys.iter().map(|&k| k.min(bound - 1)).zip(0..).collect();
                want.sort_by_key(|&(k, _)| k >> g.lo_bits); // stable
                let got: Vec<(usize, usize)> = g
                    .items
                    .iter()
                    .map(|&it| {
                        (
                            (it >> g.low_bits) as usize,
                            ((it & g.low_mask) ^ 0x5a5a) as usize,
                        )
                    })
                    .collect();
                assert_eq!(got, want, "n {n} bound {bound} pass {pass}");
                for b in 0..g.buckets() {
                    for &it in &g.items[g.starts[b]..g.starts[b + 1]] {
                        assert_eq!((it >> g.low_bits) as usize >> g.lo_bits, b);
                    }
                }
            }
        }
    }

    #[test]
    fn workspace_reused_without_growth() {
        let mut ws = Workspace::new();
        let keys: Vec<usize> = (0..5000).map(|i| (i * 7919) % 1000).collect();
        ws.sort(keys.len(), 1000, |k| keys[k]);
        let cap = ws.capacity_bytes();
        for _ in 0..3 {
            ws.sort(keys.len(), 1000, |k| keys[k]);
            assert_eq!(ws.capacity_bytes(), cap);
        }
    }
}
