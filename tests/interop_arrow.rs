//! Feature `arrow`: masks from Arrow validity bitmaps and back. The bits
//! always match Arrow's `value(i)`; they are shared (pointer equality)
//! exactly when the documented rule says so, and a shared mask never writes
//! to the Arrow buffer.

#![cfg(feature = "arrow")]

use maskops::arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use maskops::{Mask, MaskedView};

/// A small deterministic generator (SplitMix64) for bit patterns.
fn bits(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn shares(m: &Mask, b: &BooleanBuffer) -> bool {
    m.words().as_ptr().cast::<u8>() == b.values().as_ptr().wrapping_add(b.offset() / 8)
}

fn same_bits(m: &Mask, b: &BooleanBuffer) {
    assert_eq!(m.len(), b.len());
    for i in 0..b.len() {
        assert_eq!(m.get(i), b.value(i), "bit {i} of {}", b.len());
    }
    assert_eq!(
        m.count_ones(),
        b.count_set_bits(),
        "popcount (tail bits clear)"
    );
}

#[test]
fn random_offsets_and_lengths_give_arrows_bits() {
    let mut next = bits(7);
    for case in 0..400 {
        let total = (next() % 700) as usize;
        let words: Vec<u64> = (0..total.div_ceil(64) + 1).map(|_| next()).collect();
        let buffer = Buffer::from_vec(words);
        let offset = if case % 3 == 0 {
            64 * (next() % 4) as usize
        } else {
            (next() % 130) as usize
        };
        let offset = offset.min(total);
        let len = (next() as usize) % (total - offset + 1);
        let b = BooleanBuffer::new(buffer, offset, len);
        let m = Mask::from_boolean_buffer(&b);
        same_bits(&m, &b);
        // the rule: shared iff the bitmap starts on a word, the buffer covers
        // the last word and that word's bits past `len` are clear
        let whole_words = offset.is_multiple_of(64)
            && b.inner().len() >= offset / 8 + 8 * len.div_ceil(64)
            && (len.is_multiple_of(64) || {
                let last = offset + len - 1;
                (last + 1..(last / 64 + 1) * 64)
                    .all(|i| (b.inner().as_slice()[i / 8] >> (i % 8)) & 1 == 0)
            });
        if len > 0 {
            assert_eq!(
                shares(&m, &b),
                whole_words,
                "case {case}: offset {offset}, len {len}"
            );
        }
        let n = NullBuffer::new(b.clone());
        assert_eq!(Mask::from_null_buffer(&n), m);
        assert_eq!(Mask::from(&n), m);
    }
}

#[test]
fn unsliced_multiple_of_64_is_shared() {
    let b = BooleanBuffer::collect_bool(64 * 1000, |i| i % 7 != 3);
    let m = Mask::from_boolean_buffer(&b);
    assert!(shares(&m, &b));
    same_bits(&m, &b);
    // a slice at a word boundary that runs to the end is shared too
    let s = b.slice(128, 64 * 998);
    let ms = Mask::from(&s);
    assert!(shares(&ms, &s));
    same_bits(&ms, &s);
}

#[test]
fn dirty_tail_is_copied_and_cleared() {
    // 100 bits over two words whose bits 100..128 are set
    let b = BooleanBuffer::new(Buffer::from_vec(vec![u64::MAX, u64::MAX]), 0, 100);
    let m = Mask::from_boolean_buffer(&b);
    assert!(!shares(&m, &b));
    assert_eq!(m, Mask::ones(100));
    assert_eq!(m.words()[1] >> 36, 0);
}

#[test]
fn writing_a_shared_mask_copies_it_first() {
    let b = BooleanBuffer::collect_bool(256, |_| true);
    let before: Vec<u8> = b.values().to_vec();
    let mut m = Mask::from_boolean_buffer(&b);
    assert!(shares(&m, &b));
    m.set(3, false);
    m.set_range(70, 80, false);
    m &= &Mask::from_fn(256, |i| i != 200);
    assert!(!shares(&m, &b));
    assert_eq!(b.values(), &before[..], "the Arrow buffer is never written");
    assert_eq!(m.count_ones(), 256 - 1 - 10 - 1);
    let mut n = Mask::from_boolean_buffer(&b);
    n = !n;
    assert_eq!(n.count_ones(), 0);
    assert_eq!(b.count_set_bits(), 256);
}

#[test]
fn into_arrow_never_copies_and_round_trips() {
    let mut next = bits(11);
    for len in [0usize, 1, 63, 64, 65, 1000, 4096] {
        let m = Mask::from_fn(len, |_| next() & 1 == 1);
        let owned = m.clone();
        let ptr = owned.words().as_ptr().cast::<u8>();
        let b = owned.into_boolean_buffer();
        assert_eq!(b.len(), len);
        if len > 0 {
            assert_eq!(b.values().as_ptr(), ptr, "owned words become the buffer");
        }
        same_bits(&m, &b);
        // back again: shared (the tail bits are clear), same mask
        let again = Mask::from_boolean_buffer(&b);
        assert_eq!(again, m);
        if len > 0 {
            assert!(shares(&again, &b));
        }
        // a shared mask hands its buffer back
        let b2 = BooleanBuffer::from(again);
        assert_eq!(b2.values().as_ptr(), b.values().as_ptr());
        let n = NullBuffer::from(m.clone());
        assert_eq!(n.null_count(), len - m.count_ones());
        assert_eq!(Mask::from(&n), m);
    }
}

#[test]
fn a_shared_mask_drives_the_kernels_like_an_owned_one() {
    let n = 64 * 300;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            if i % 5 == 0 {
                f32::NAN
            } else {
                i as f32 * 0.25 - 90.0
            }
        })
        .collect();
    let nulls = NullBuffer::from_iter(x.iter().map(|v| !v.is_nan()));
    let shared = Mask::from_null_buffer(&nulls);
    assert!(shares(&shared, nulls.inner()));
    let owned = Mask::not_nan(&x);
    let a = MaskedView::new(&x, &shared).unwrap();
    let b = MaskedView::new(&x, &owned).unwrap();
    assert_eq!(a.sum().unwrap().to_bits(), b.sum().unwrap().to_bits());
    let am = MaskedView::matrix(&x, &shared, 300, 64).unwrap();
    let bm = MaskedView::matrix(&x, &owned, 300, 64).unwrap();
    assert_eq!(am.softmax(1).unwrap(), bm.softmax(1).unwrap());
    assert_eq!(am.mean_dim(0).unwrap(), bm.mean_dim(0).unwrap());
}
