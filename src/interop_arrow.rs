//! Arrow interop (feature `arrow`): a [`Mask`] from an Arrow validity bitmap
//! and back, sharing the bits where the layout allows. The rule for when
//! nothing is copied is on [`Mask::from_boolean_buffer`]; the lib docs have
//! an end-to-end example.

use crate::mask::{words_for, Mask};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};

impl Mask {
    /// A mask of the `true` bits of an Arrow `BooleanBuffer` (its offset
    /// and length taken into account).
    ///
    /// A mask's layout (element `i` is bit `i % 64` of `u64` word `i / 64`,
    /// 1 = kept) is Arrow's bitmap on a little-endian machine, so the bits
    /// are **shared without a copy** (the buffer's reference count goes up)
    /// when all of these hold:
    /// - the bitmap starts on a word: its bit offset is a multiple of 64 (an
    ///   unsliced array, or one sliced at a multiple of 64);
    /// - that word is 8-byte aligned in memory (arrow-rs allocates 64-byte
    ///   aligned buffers);
    /// - the buffer extends to the end of the mask's last word and the bits
    ///   past the mask's length in that word are clear (true when the length
    ///   is a multiple of 64, or when the buffer came from a `Mask`);
    /// - the machine is little-endian.
    ///
    /// Otherwise the bits are copied once into a new mask (one bit per
    /// element: 1/32 of an `f32` array's bytes). A mask that shares a
    /// buffer copies its words the first time it is written to (`set`,
    /// `&=`, …); the Arrow buffer is never written.
    ///
    /// ```
    /// use maskops::arrow_buffer::BooleanBuffer;
    /// use maskops::Mask;
    /// let b = BooleanBuffer::from(vec![true, false, true]);
    /// let m = Mask::from_boolean_buffer(&b);
    /// assert_eq!(m, Mask::from_bools(&[true, false, true]));
    /// // any bit offset works (this one is copied)
    /// let m = Mask::from_boolean_buffer(&b.slice(1, 2));
    /// assert_eq!(m, Mask::from_bools(&[false, true]));
    /// // a bitmap of 128 slots (a multiple of 64) is shared, not copied
    /// let bits = BooleanBuffer::collect_bool(128, |i| i % 3 != 0);
    /// let shared = Mask::from_boolean_buffer(&bits);
    /// assert_eq!(shared.words().as_ptr().cast::<u8>(), bits.values().as_ptr());
    /// assert_eq!(shared.count_ones(), bits.count_set_bits());
    /// ```
    pub fn from_boolean_buffer(bits: &BooleanBuffer) -> Mask {
        if let Some(shared) = share(bits) {
            return shared;
        }
        // `iter_padded` yields the bits LSB-first in u64 chunks, the last
        // one zero-padded past the length (and one zero chunk more when the
        // length is a multiple of 64): the first `words_for(len)` of them
        // are a mask's words.
        let words: Vec<u64> = bits
            .bit_chunks()
            .iter_padded()
            .take(words_for(bits.len()))
            .collect();
        Mask::from_words(words, bits.len()).expect("BitChunks::iter_padded clears the padding")
    }

    /// A mask of the valid (non-null) slots of an Arrow `NullBuffer`: bit
    /// = 1 keeps a valid slot. Shares the buffer as
    /// [`Mask::from_boolean_buffer`] does.
    ///
    /// ```
    /// use maskops::arrow_buffer::NullBuffer;
    /// use maskops::Mask;
    /// let nulls = NullBuffer::from(vec![true, true, false]);
    /// assert_eq!(Mask::from_null_buffer(&nulls).count_ones(), 2);
    /// ```
    pub fn from_null_buffer(nulls: &NullBuffer) -> Mask {
        Mask::from_boolean_buffer(nulls.inner())
    }

    /// The mask as an Arrow `BooleanBuffer` (kept = `true`), without
    /// copying: an owned mask's words become the buffer, a shared one hands
    /// its buffer back.
    ///
    /// ```
    /// use maskops::Mask;
    /// let m = Mask::from_bools(&[true, false, true]);
    /// let ptr = m.words().as_ptr().cast::<u8>();
    /// let b = m.into_boolean_buffer();
    /// assert_eq!(b.values().as_ptr(), ptr);
    /// assert_eq!(b.iter().collect::<Vec<_>>(), [true, false, true]);
    /// ```
    pub fn into_boolean_buffer(self) -> BooleanBuffer {
        let len = self.len();
        let buffer = match self.into_storage() {
            Ok(words) => Buffer::from_vec(words),
            Err(shared) => shared.into_inner(),
        };
        BooleanBuffer::new(buffer, 0, len)
    }

    /// The mask as an Arrow `NullBuffer`: kept slots are valid, masked-out
    /// ones null. No copy (see [`Mask::into_boolean_buffer`]).
    pub fn into_null_buffer(self) -> NullBuffer {
        NullBuffer::new(self.into_boolean_buffer())
    }
}

/// The bitmap's words as a shared `ScalarBuffer<u64>`, when the layout
/// allows (the rule on [`Mask::from_boolean_buffer`]).
fn share(bits: &BooleanBuffer) -> Option<Mask> {
    let len = bits.len();
    if cfg!(target_endian = "big") || !bits.offset().is_multiple_of(64) {
        return None;
    }
    let n = words_for(len);
    let start = bits.offset() / 8;
    let buffer = bits.inner();
    if buffer.len() < start + 8 * n {
        return None;
    }
    let words = buffer.slice_with_length(start, 8 * n);
    if !(words.as_ptr() as usize).is_multiple_of(std::mem::align_of::<u64>()) {
        return None;
    }
    // Aligned and long enough: `ScalarBuffer::from` does not panic.
    let words = ScalarBuffer::<u64>::from(words);
    Mask::from_shared(words, len).ok()
}

impl From<&BooleanBuffer> for Mask {
    /// [`Mask::from_boolean_buffer`].
    fn from(bits: &BooleanBuffer) -> Mask {
        Mask::from_boolean_buffer(bits)
    }
}

impl From<&NullBuffer> for Mask {
    /// [`Mask::from_null_buffer`].
    fn from(nulls: &NullBuffer) -> Mask {
        Mask::from_null_buffer(nulls)
    }
}

impl From<Mask> for BooleanBuffer {
    /// [`Mask::into_boolean_buffer`].
    fn from(mask: Mask) -> BooleanBuffer {
        mask.into_boolean_buffer()
    }
}

impl From<Mask> for NullBuffer {
    /// [`Mask::into_null_buffer`].
    fn from(mask: Mask) -> NullBuffer {
        mask.into_null_buffer()
    }
}
