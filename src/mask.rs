//! Bit-packed masks: one bit per element, `u64` words, LSB-first, bit = 1 keeps.
//!
//! Element `i` is bit `i % 64` of word `i / 64`, which is exactly Arrow's
//! validity bitmap on a little-endian machine. Bits at or past `len` are
//! always 0 (every constructor and operation keeps that invariant), so
//! `count_ones` is a plain popcount over the words.

use crate::element::Element;
use crate::error::{check_len, Error, Result};
use bitvec::prelude::{BitSlice, Lsb0};

/// A bit-packed mask. Bit = 1 keeps the element, bit = 0 masks it out.
///
/// ```
/// use maskops::Mask;
/// let m = Mask::from_bools(&[true, false, true]);
/// assert_eq!(m.len(), 3);
/// assert_eq!(m.count_ones(), 2);
/// assert!(m.get(0) && !m.get(1));
/// assert_eq!(m.words(), &[0b101]);
/// ```
///
/// Masks compose with `!`, `&` and `|`, on owned or borrowed masks (an owned
/// left operand is reused, no allocation). The operators panic when the
/// lengths differ; [`Mask::and`] and [`Mask::or`] return `Err` instead.
///
/// ```
/// use maskops::Mask;
/// let padding = Mask::padding(&[3, 2], 4).unwrap(); // 2 x 4, real tokens kept
/// let mlm = Mask::random(8, 0.5, 1); // positions left visible
/// // the positions the model must predict: real tokens that were hidden
/// let predict = &padding & &!&mlm;
/// assert_eq!(predict, padding.and(&mlm.not()).unwrap());
/// // a PyTorch `src_key_padding_mask` (true = padded) is the negation
/// let torch_padding = !&padding;
/// assert_eq!((&torch_padding | &padding).count_ones(), 8);
/// let mut m = padding.clone();
/// m &= &mlm;
/// assert_eq!(m, padding & &mlm);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mask {
    words: Words,
    len: usize,
}

/// A mask's words: its own, or (feature `arrow`) an Arrow buffer shared
/// without a copy. Writing to a shared mask copies its words first.
#[derive(Clone)]
enum Words {
    Owned(Vec<u64>),
    #[cfg(feature = "arrow")]
    Arrow(arrow_buffer::ScalarBuffer<u64>),
}

impl Words {
    #[inline]
    fn as_slice(&self) -> &[u64] {
        match self {
            Words::Owned(v) => v,
            #[cfg(feature = "arrow")]
            Words::Arrow(b) => b,
        }
    }

    /// The words as a `Vec`, copied out of a shared buffer first.
    #[inline]
    fn make_mut(&mut self) -> &mut Vec<u64> {
        #[cfg(feature = "arrow")]
        if let Words::Arrow(b) = self {
            *self = Words::Owned(b.to_vec());
        }
        match self {
            Words::Owned(v) => v,
            #[cfg(feature = "arrow")]
            Words::Arrow(_) => unreachable!("copied into an owned Vec above"),
        }
    }

    fn into_vec(self) -> Vec<u64> {
        match self {
            Words::Owned(v) => v,
            #[cfg(feature = "arrow")]
            Words::Arrow(b) => b.to_vec(),
        }
    }
}

impl PartialEq for Words {
    fn eq(&self, other: &Words) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Words {}

impl std::hash::Hash for Words {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mask(len={}, ones={}, bits=",
            self.len,
            self.count_ones()
        )?;
        for i in 0..self.len.min(128) {
            f.write_str(if self.get(i) { "1" } else { "0" })?;
        }
        if self.len > 128 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

/// Number of `u64` words needed for `len` bits.
#[inline]
pub const fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective
/// 64-bit mixer.
#[inline]
pub(crate) const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The crate's counter-based random number: a uniform `f64` in `[0, 1)`
/// for `(seed, stream, counter)`.
///
/// Defined as `(splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ counter) >> 11) * 2^-53`,
/// with `splitmix64` the SplitMix64 output function. It depends on nothing
/// but its three arguments, so a mask is the same on every platform, ISA and
/// thread count, and any element can be drawn independently.
#[inline]
pub fn uniform(seed: u64, stream: u64, counter: u64) -> f64 {
    let k = splitmix64(splitmix64(seed) ^ stream);
    (splitmix64(k ^ counter) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `true` unless `u < p`: an element is masked out when its draw falls below
/// the probability (a NaN probability masks nothing).
#[inline]
fn keeps(u: f64, p: f64) -> bool {
    !matches!(u.partial_cmp(&p), Some(std::cmp::Ordering::Less))
}

/// Streams of [`uniform`] used by the mask constructors (documented so that
/// masks can be reproduced outside this crate).
pub mod streams {
    /// [`Mask::random`](crate::Mask::random): counter = element index.
    pub const RANDOM: u64 = 0;
    /// [`MaskBuilder::mask_rows`](crate::MaskBuilder::mask_rows): counter = row.
    pub const ROWS: u64 = 1;
    /// [`MaskBuilder::mask_cols`](crate::MaskBuilder::mask_cols): counter = column.
    pub const COLS: u64 = 2;
    /// [`MaskBuilder::mask_random`](crate::MaskBuilder::mask_random): counter = `row * cols + col`.
    pub const CELLS: u64 = 3;
}

impl Mask {
    /// A mask of `len` bits, all kept.
    pub fn ones(len: usize) -> Mask {
        let mut words = vec![u64::MAX; words_for(len)];
        clear_tail(&mut words, len);
        Mask {
            words: Words::Owned(words),
            len,
        }
    }

    /// A mask of `len` bits, all masked out.
    pub fn zeros(len: usize) -> Mask {
        Mask {
            words: Words::Owned(vec![0; words_for(len)]),
            len,
        }
    }

    /// One bit per bool (`true` keeps).
    pub fn from_bools(bits: &[bool]) -> Mask {
        Mask::from_fn(bits.len(), |i| bits[i])
    }

    /// A mask whose bit `i` is `f(i)`.
    pub fn from_fn(len: usize, mut f: impl FnMut(usize) -> bool) -> Mask {
        let mut words = vec![0u64; words_for(len)];
        for (w, word) in words.iter_mut().enumerate() {
            let base = w * 64;
            let n = (len - base).min(64);
            let mut acc = 0u64;
            for b in 0..n {
                acc |= (f(base + b) as u64) << b;
            }
            *word = acc;
        }
        Mask {
            words: Words::Owned(words),
            len,
        }
    }

    /// A mask from raw LSB-first words (an Arrow validity bitmap on
    /// little-endian). `words.len()` must be `ceil(len / 64)` and no bit at or
    /// past `len` may be set.
    ///
    /// ```
    /// use maskops::{Error, Mask};
    /// let m = Mask::from_words(vec![0b1011], 4).unwrap();
    /// assert_eq!(m.count_ones(), 3);
    /// assert!(matches!(Mask::from_words(vec![0b10000], 4), Err(Error::TailBits { bit: 4, .. })));
    /// ```
    pub fn from_words(words: Vec<u64>, len: usize) -> Result<Mask> {
        check_words(&words, len)?;
        Ok(Mask {
            words: Words::Owned(words),
            len,
        })
    }

    /// A mask over a shared Arrow buffer of `words_for(len)` words (checked
    /// as [`Mask::from_words`] checks).
    #[cfg(feature = "arrow")]
    pub(crate) fn from_shared(words: arrow_buffer::ScalarBuffer<u64>, len: usize) -> Result<Mask> {
        check_words(&words, len)?;
        Ok(Mask {
            words: Words::Arrow(words),
            len,
        })
    }

    /// The words: `Ok` if owned, `Err` with the buffer if shared.
    #[cfg(feature = "arrow")]
    pub(crate) fn into_storage(
        self,
    ) -> std::result::Result<Vec<u64>, arrow_buffer::ScalarBuffer<u64>> {
        match self.words {
            Words::Owned(v) => Ok(v),
            Words::Arrow(b) => Err(b),
        }
    }

    /// Keeps `labels[i] != ignore_index` (the cross-entropy `-1` trick).
    ///
    /// ```
    /// use maskops::Mask;
    /// let m = Mask::from_labels(&[3, -1, 0, -1], -1);
    /// assert_eq!(m.count_ones(), 2);
    /// ```
    pub fn from_labels(labels: &[i64], ignore_index: i64) -> Mask {
        Mask::from_fn(labels.len(), |i| labels[i] != ignore_index)
    }

    /// Keeps every element that is not NaN (MaskedTensor's answer to `nanmean`).
    ///
    /// ```
    /// use maskops::{Mask, MaskedView};
    /// let x = [1.0f32, f32::NAN, 3.0];
    /// let m = Mask::not_nan(&x);
    /// assert_eq!(MaskedView::new(&x, &m).unwrap().mean(), Some(2.0));
    /// ```
    pub fn not_nan<T: Element>(values: &[T]) -> Mask {
        Mask::from_fn(values.len(), |i| !values[i].is_nan())
    }

    /// A key padding mask of `lengths.len()` rows by `max_len` columns: row
    /// `i` keeps columns `j < lengths[i]`.
    ///
    /// PyTorch's `src_key_padding_mask` uses `true` for *padded*; this is its
    /// negation (`.not()` converts).
    ///
    /// ```
    /// use maskops::Mask;
    /// let m = Mask::padding(&[2, 0, 3], 3).unwrap();
    /// assert_eq!(m.count_ones(), 5);
    /// assert!(m.get(0) && m.get(1) && !m.get(2) && !m.get(3) && m.get(8));
    /// ```
    pub fn padding(lengths: &[usize], max_len: usize) -> Result<Mask> {
        for (position, &l) in lengths.iter().enumerate() {
            if l > max_len {
                return Err(Error::Index {
                    arg: "lengths",
                    index: l,
                    position,
                    bound: max_len + 1,
                });
            }
        }
        let total = lengths.len().checked_mul(max_len).ok_or(Error::Shape {
            arg: "lengths",
            rows: lengths.len(),
            cols: max_len,
            len: usize::MAX,
        })?;
        let mut m = Mask::zeros(total);
        for (r, &l) in lengths.iter().enumerate() {
            m.set_range(r * max_len, r * max_len + l, true);
        }
        Ok(m)
    }

    /// Each bit cleared independently with probability `mask_prob` (MLM-style
    /// masking): bit `i` is cleared iff
    /// `uniform(seed, streams::RANDOM, i) < mask_prob` (see [`uniform`]).
    /// `mask_prob` is clamped to `[0, 1]`; NaN masks nothing.
    ///
    /// ```
    /// use maskops::Mask;
    /// let a = Mask::random(10_000, 0.15, 42);
    /// assert_eq!(a, Mask::random(10_000, 0.15, 42));
    /// let kept = a.count_ones() as f64 / 10_000.0;
    /// assert!((kept - 0.85).abs() < 0.02);
    /// ```
    pub fn random(len: usize, mask_prob: f64, seed: u64) -> Mask {
        Mask::from_fn(len, |i| {
            keeps(uniform(seed, streams::RANDOM, i as u64), mask_prob)
        })
    }

    /// Number of bits (elements).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for a mask of zero length.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of kept elements (popcount).
    pub fn count_ones(&self) -> usize {
        self.words().iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Bit `i`. Panics if `i >= len` (like slice indexing).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        assert!(
            i < self.len,
            "mask index {i} out of range for length {}",
            self.len
        );
        (self.words()[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Sets bit `i`. Panics if `i >= len` (like slice indexing).
    #[inline]
    pub fn set(&mut self, i: usize, keep: bool) {
        assert!(
            i < self.len,
            "mask index {i} out of range for length {}",
            self.len
        );
        let bit = 1u64 << (i % 64);
        let words = self.words.make_mut();
        if keep {
            words[i / 64] |= bit;
        } else {
            words[i / 64] &= !bit;
        }
    }

    /// Sets bits `start..end` to `keep`. Panics if `end > len` or `start > end`.
    pub fn set_range(&mut self, start: usize, end: usize, keep: bool) {
        assert!(
            start <= end && end <= self.len,
            "range {start}..{end} out of mask length {}",
            self.len
        );
        let words = self.words.make_mut();
        let mut i = start;
        while i < end {
            let w = i / 64;
            let b = i % 64;
            let n = (end - i).min(64 - b);
            let bits = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << b
            };
            if keep {
                words[w] |= bits;
            } else {
                words[w] &= !bits;
            }
            i += n;
        }
    }

    /// The packed words (LSB-first; bits past `len` are 0).
    #[inline]
    pub fn words(&self) -> &[u64] {
        self.words.as_slice()
    }

    /// Consumes the mask, returning its words.
    pub fn into_words(self) -> Vec<u64> {
        self.words.into_vec()
    }

    /// The mask as a `bitvec` slice (`Lsb0` over `u64`, exactly `len` bits).
    pub fn as_bitslice(&self) -> &BitSlice<u64, Lsb0> {
        &BitSlice::from_slice(self.words())[..self.len]
    }

    /// A mask from a `bitvec` slice.
    pub fn from_bitslice(bits: &BitSlice<u64, Lsb0>) -> Mask {
        Mask::from_fn(bits.len(), |i| bits[i])
    }

    /// The 64 bits starting at element `start` (bit `k` = element `start + k`),
    /// zero past `len`. Works for any `start`, aligned or not.
    #[inline]
    pub fn word_at(&self, start: usize) -> u64 {
        if start >= self.len {
            return 0;
        }
        let w = start / 64;
        let b = start % 64;
        let words = self.words();
        let lo = words[w] >> b;
        if b == 0 {
            lo
        } else {
            let hi = words.get(w + 1).copied().unwrap_or(0);
            lo | (hi << (64 - b))
        }
    }

    /// The bits `start..start + len` as a new mask.
    ///
    /// Returns `Err` if the range is out of bounds.
    pub fn slice(&self, start: usize, len: usize) -> Result<Mask> {
        match start.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => {
                return Err(Error::Index {
                    arg: "start + len",
                    index: start.saturating_add(len),
                    position: 0,
                    bound: self.len + 1,
                })
            }
        }
        let mut words: Vec<u64> = (0..words_for(len))
            .map(|k| self.word_at(start + 64 * k))
            .collect();
        clear_tail(&mut words, len);
        Ok(Mask {
            words: Words::Owned(words),
            len,
        })
    }

    /// Bitwise AND (an element is kept if both keep it). The operator form
    /// `&a & &b` gives the same mask but panics on a length mismatch; this
    /// returns [`Error::Length`] instead.
    ///
    /// ```
    /// use maskops::{Error, Mask};
    /// let a = Mask::from_bools(&[true, true, false]);
    /// let b = Mask::from_bools(&[true, false, false]);
    /// assert_eq!(a.and(&b).unwrap(), &a & &b);
    /// assert!(matches!(a.and(&Mask::ones(4)), Err(Error::Length { expected: 3, actual: 4, .. })));
    /// ```
    ///
    /// ```should_panic
    /// use maskops::Mask;
    /// // mask length mismatch in `&`: the left mask has 3 bits, the right one 4
    /// let _ = &Mask::ones(3) & &Mask::ones(4);
    /// ```
    pub fn and(&self, other: &Mask) -> Result<Mask> {
        self.zip(other, |a, b| a & b)
    }

    /// Bitwise OR (an element is kept if either keeps it). The operator form
    /// `&a | &b` gives the same mask but panics on a length mismatch; this
    /// returns [`Error::Length`] instead.
    pub fn or(&self, other: &Mask) -> Result<Mask> {
        self.zip(other, |a, b| a | b)
    }

    /// Bitwise NOT: keeps exactly what was masked out. Use it to compute a
    /// loss on the *hidden* entries (the gene-expression masking workflow's
    /// `~mask`), or to convert a PyTorch padding mask (`true` = padded).
    /// The operator `!&mask` is the same; `!mask` on an owned mask flips its
    /// bits in place.
    pub fn not(&self) -> Mask {
        let mut words: Vec<u64> = self.words().iter().map(|w| !w).collect();
        clear_tail(&mut words, self.len);
        Mask {
            words: Words::Owned(words),
            len: self.len,
        }
    }

    fn zip(&self, other: &Mask, f: impl Fn(u64, u64) -> u64) -> Result<Mask> {
        check_len("other", self.len, other.len)?;
        let words = self
            .words()
            .iter()
            .zip(other.words())
            .map(|(&a, &b)| f(a, b))
            .collect();
        Ok(Mask {
            words: Words::Owned(words),
            len: self.len,
        })
    }

    /// Iterator over the indices of kept elements, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words().iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                if x == 0 {
                    None
                } else {
                    let b = x.trailing_zeros() as usize;
                    x &= x - 1;
                    Some(w * 64 + b)
                }
            })
        })
    }
}

// ---------------------------------------------------------------- operators

/// Panics with the operator's message unless both masks have `len` bits.
#[track_caller]
fn assert_same_len(op: &str, method: &str, a: &Mask, b: &Mask) {
    assert!(
        a.len == b.len,
        "mask length mismatch in `{op}`: the left mask has {} bits, the right one {} \
         (use `Mask::{method}`, which returns `Err` instead of panicking)",
        a.len,
        b.len
    );
}

impl Mask {
    /// `self = f(self, other)` word by word; the tail stays clear because
    /// `f` maps (0, 0) to 0.
    #[track_caller]
    fn zip_assign(&mut self, other: &Mask, op: &str, method: &str, f: impl Fn(u64, u64) -> u64) {
        assert_same_len(op, method, self, other);
        let other = other.words();
        for (a, &b) in self.words.make_mut().iter_mut().zip(other) {
            *a = f(*a, b);
        }
    }

    /// Flips every bit in place, keeping the tail clear.
    fn invert(&mut self) {
        let words = self.words.make_mut();
        for w in words.iter_mut() {
            *w = !*w;
        }
        clear_tail(words, self.len);
    }
}

/// `!mask`: the same as [`Mask::not`], keeping exactly what was masked out.
/// Converts a PyTorch padding mask (`true` = padded) to a keep mask.
///
/// ```
/// use maskops::Mask;
/// let keep = Mask::padding(&[2, 3], 3).unwrap(); // row 0 has one padded slot
/// let padded = !&keep;
/// assert_eq!(padded, Mask::from_bools(&[false, false, true, false, false, false]));
/// assert_eq!(!padded, keep); // by value: reuses the words
/// ```
impl std::ops::Not for &Mask {
    type Output = Mask;
    fn not(self) -> Mask {
        Mask::not(self)
    }
}

/// `!mask` by value: flips the bits in place (no allocation). See
/// [`Mask::not`].
impl std::ops::Not for Mask {
    type Output = Mask;
    fn not(mut self) -> Mask {
        self.invert();
        self
    }
}

macro_rules! mask_binary_op {
    ($Op:ident, $op:ident, $OpAssign:ident, $op_assign:ident, $sym:literal, $method:literal, $f:expr, $doc:literal) => {
        #[doc = concat!("`a ", $sym, " b`: ", $doc)]
        ///
        /// # Panics
        ///
        #[doc = concat!(
            "If the two masks have different lengths (as `ndarray` does for a shape ",
            "mismatch). [`Mask::", $method, "`] returns `Err(Error::Length)` instead."
        )]
        ///
        /// Every combination of owned and borrowed operands is implemented;
        /// an owned left operand is updated in place (no allocation).
        impl std::ops::$Op<&Mask> for &Mask {
            type Output = Mask;
            #[track_caller]
            fn $op(self, rhs: &Mask) -> Mask {
                let mut out = self.clone();
                out.zip_assign(rhs, $sym, $method, $f);
                out
            }
        }

        #[doc = concat!("`a ", $sym, " &b` with an owned left operand, updated in place; see `&Mask ", $sym, " &Mask`.")]
        impl std::ops::$Op<&Mask> for Mask {
            type Output = Mask;
            #[track_caller]
            fn $op(mut self, rhs: &Mask) -> Mask {
                self.zip_assign(rhs, $sym, $method, $f);
                self
            }
        }

        #[doc = concat!("`a ", $sym, " b` with both operands owned; the left one is updated in place.")]
        impl std::ops::$Op<Mask> for Mask {
            type Output = Mask;
            #[track_caller]
            fn $op(mut self, rhs: Mask) -> Mask {
                self.zip_assign(&rhs, $sym, $method, $f);
                self
            }
        }

        #[doc = concat!("`&a ", $sym, " b` with an owned right operand, updated in place (the operation commutes).")]
        impl std::ops::$Op<Mask> for &Mask {
            type Output = Mask;
            #[track_caller]
            fn $op(self, mut rhs: Mask) -> Mask {
                assert_same_len($sym, $method, self, &rhs);
                rhs.zip_assign(self, $sym, $method, $f);
                rhs
            }
        }

        #[doc = concat!("`a ", $sym, "= &b` in place. Panics on a length mismatch, like `a ", $sym, " b`.")]
        impl std::ops::$OpAssign<&Mask> for Mask {
            #[track_caller]
            fn $op_assign(&mut self, rhs: &Mask) {
                self.zip_assign(rhs, concat!($sym, "="), $method, $f);
            }
        }

        #[doc = concat!("`a ", $sym, "= b` in place. Panics on a length mismatch, like `a ", $sym, " b`.")]
        impl std::ops::$OpAssign<Mask> for Mask {
            #[track_caller]
            fn $op_assign(&mut self, rhs: Mask) {
                self.zip_assign(&rhs, concat!($sym, "="), $method, $f);
            }
        }
    };
}

mask_binary_op!(
    BitAnd,
    bitand,
    BitAndAssign,
    bitand_assign,
    "&",
    "and",
    |a, b| a & b,
    "keeps an element if both masks keep it (the same as [`Mask::and`])."
);
mask_binary_op!(
    BitOr,
    bitor,
    BitOrAssign,
    bitor_assign,
    "|",
    "or",
    |a, b| a | b,
    "keeps an element if either mask keeps it (the same as [`Mask::or`])."
);

/// `Ok` if `words` holds exactly `words_for(len)` words with no bit set at
/// or past `len`.
fn check_words(words: &[u64], len: usize) -> Result<()> {
    check_len("words", words_for(len), words.len())?;
    if !len.is_multiple_of(64) {
        let tail = words[words.len() - 1] >> (len % 64);
        if tail != 0 {
            return Err(Error::TailBits {
                len,
                bit: len + tail.trailing_zeros() as usize,
            });
        }
    }
    Ok(())
}

/// Clears bits at or past `len` in the last word.
fn clear_tail(words: &mut [u64], len: usize) {
    if !len.is_multiple_of(64) {
        if let Some(last) = words.last_mut() {
            *last &= (1u64 << (len % 64)) - 1;
        }
    }
}

/// Builds a `rows x cols` mask by AND-composing a row mask, a column mask
/// and a random element mask, as in the gene-expression masking workflow
/// (cells = rows, genes = columns).
///
/// Each probability is the chance that a whole row, a whole column or one
/// element is **masked out**. Draws use [`uniform`] with the builder's seed
/// and the streams in [`streams`], so a seed gives the same mask everywhere.
///
/// ```
/// use maskops::MaskBuilder;
/// let m = MaskBuilder::new(64, 32).mask_rows(0.25).mask_cols(0.25).mask_random(0.25).seed(7).build();
/// assert_eq!(m.len(), 64 * 32);
/// // about 0.75^3 of the entries survive all three masks
/// let kept = m.count_ones() as f64 / (64.0 * 32.0);
/// assert!(kept > 0.2 && kept < 0.7);
/// ```
#[derive(Debug, Clone)]
pub struct MaskBuilder {
    rows: usize,
    cols: usize,
    p_rows: f64,
    p_cols: f64,
    p_random: f64,
    seed: u64,
}

impl MaskBuilder {
    /// A builder for a `rows x cols` mask that keeps everything.
    pub fn new(rows: usize, cols: usize) -> MaskBuilder {
        MaskBuilder {
            rows,
            cols,
            p_rows: 0.0,
            p_cols: 0.0,
            p_random: 0.0,
            seed: 0,
        }
    }
    /// Probability that a whole row (cell) is masked out.
    pub fn mask_rows(mut self, p: f64) -> Self {
        self.p_rows = p;
        self
    }
    /// Probability that a whole column (gene) is masked out.
    pub fn mask_cols(mut self, p: f64) -> Self {
        self.p_cols = p;
        self
    }
    /// Probability that a single element is masked out.
    pub fn mask_random(mut self, p: f64) -> Self {
        self.p_random = p;
        self
    }
    /// The seed of all three draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The row mask alone (`rows` bits).
    pub fn row_mask(&self) -> Mask {
        Mask::from_fn(self.rows, |r| {
            keeps(uniform(self.seed, streams::ROWS, r as u64), self.p_rows)
        })
    }
    /// The column mask alone (`cols` bits).
    pub fn col_mask(&self) -> Mask {
        Mask::from_fn(self.cols, |c| {
            keeps(uniform(self.seed, streams::COLS, c as u64), self.p_cols)
        })
    }
    /// The composed `rows x cols` mask (row AND column AND random).
    ///
    /// A probability outside `[0, 1]` saturates (`<= 0` masks nothing out,
    /// `>= 1` masks everything out; NaN masks nothing out);
    /// [`MaskBuilder::try_build`] refuses such input instead.
    ///
    /// # Panics
    /// If `rows * cols` overflows `usize` (such a mask could not be
    /// allocated either); [`MaskBuilder::try_build`] returns an error instead.
    pub fn build(&self) -> Mask {
        match self.checked_len() {
            Some(n) => self.build_len(n),
            None => panic!("{}", self.overflow_error()),
        }
    }

    /// [`MaskBuilder::build`] with its input checked: a probability that is
    /// NaN or outside `[0, 1]` is [`Error::Param`], a `rows * cols` that
    /// overflows `usize` is [`Error::Shape`].
    ///
    /// ```
    /// use maskops::{Error, MaskBuilder};
    /// assert!(MaskBuilder::new(4, 4).mask_rows(0.5).try_build().is_ok());
    /// let e = MaskBuilder::new(4, 4).mask_cols(1.5).try_build().unwrap_err();
    /// assert!(matches!(e, Error::Param { name: "mask_cols", .. }));
    /// let e = MaskBuilder::new(usize::MAX, 2).try_build().unwrap_err();
    /// assert!(matches!(e, Error::Shape { .. }));
    /// ```
    pub fn try_build(&self) -> Result<Mask> {
        for (name, p) in [
            ("mask_rows", self.p_rows),
            ("mask_cols", self.p_cols),
            ("mask_random", self.p_random),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Param {
                    name,
                    value: p,
                    expected: "a probability in [0, 1]",
                });
            }
        }
        let n = self.checked_len().ok_or_else(|| self.overflow_error())?;
        Ok(self.build_len(n))
    }

    fn checked_len(&self) -> Option<usize> {
        self.rows.checked_mul(self.cols)
    }

    fn overflow_error(&self) -> Error {
        Error::Shape {
            arg: "MaskBuilder",
            rows: self.rows,
            cols: self.cols,
            len: 0,
        }
    }

    fn build_len(&self, n: usize) -> Mask {
        let rows = self.row_mask();
        let cols = self.col_mask();
        let cols_n = self.cols;
        Mask::from_fn(n, |i| {
            let (r, c) = (i / cols_n, i % cols_n);
            rows.get(r)
                && cols.get(c)
                && keeps(uniform(self.seed, streams::CELLS, i as u64), self.p_random)
        })
    }
}
