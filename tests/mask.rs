//! Masks: layout, constructors, composition, determinism and errors.

use maskops::mask::{streams, uniform, words_for};
use maskops::{Error, Mask, MaskBuilder};
use proptest::prelude::*;

fn bools(m: &Mask) -> Vec<bool> {
    (0..m.len()).map(|i| m.get(i)).collect()
}

#[test]
fn layout_is_lsb_first_u64_words_with_zero_tail() {
    let mut b = vec![false; 70];
    b[0] = true;
    b[3] = true;
    b[63] = true;
    b[64] = true;
    b[69] = true;
    let m = Mask::from_bools(&b);
    assert_eq!(m.words(), &[1 | 1 << 3 | 1 << 63, 1 | 1 << 5]);
    assert_eq!(m.count_ones(), 5);
    // Arrow-compatible round trip
    assert_eq!(Mask::from_words(m.words().to_vec(), 70).unwrap(), m);
    // ones/zeros keep the tail clear
    assert_eq!(Mask::ones(70).words(), &[u64::MAX, (1 << 6) - 1]);
    assert_eq!(Mask::ones(64).words(), &[u64::MAX]);
    assert_eq!(Mask::zeros(65).count_ones(), 0);
    assert_eq!(Mask::ones(0).words(), &[] as &[u64]);
}

#[test]
fn from_words_rejects_bad_input() {
    assert_eq!(
        Mask::from_words(vec![0, 0], 64),
        Err(Error::Length {
            arg: "words",
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(
        Mask::from_words(vec![1 << 10], 7),
        Err(Error::TailBits { len: 7, bit: 10 })
    );
    let msg = Mask::from_words(vec![1 << 10], 7).unwrap_err().to_string();
    assert!(msg.contains("10") && msg.contains('7'), "{msg}");
}

#[test]
fn labels_nan_and_padding() {
    let m = Mask::from_labels(&[-100, 2, -100, 0], -100);
    assert_eq!(bools(&m), [false, true, false, true]);
    let m = Mask::not_nan(&[1.0f64, f64::NAN, f64::INFINITY]);
    assert_eq!(bools(&m), [true, false, true]);
    let m = Mask::not_nan(&[half::f16::NAN, half::f16::ONE]);
    assert_eq!(bools(&m), [false, true]);
    let m = Mask::padding(&[3, 0, 1], 3).unwrap();
    assert_eq!(
        bools(&m),
        [true, true, true, false, false, false, true, false, false]
    );
    // PyTorch's src_key_padding_mask (true = padded) is the negation
    assert_eq!(
        bools(&m.not()),
        [false, false, false, true, true, true, false, true, true]
    );
    assert_eq!(
        Mask::padding(&[1, 5], 4),
        Err(Error::Index {
            arg: "lengths",
            index: 5,
            position: 1,
            bound: 5
        })
    );
    // rows spanning word boundaries
    let m = Mask::padding(&[70, 1, 100], 100).unwrap();
    assert_eq!(m.count_ones(), 171);
    assert!(m.get(69) && !m.get(70) && m.get(100) && !m.get(101) && m.get(299));
}

#[test]
fn random_is_deterministic_and_documented() {
    let m = Mask::random(1000, 0.3, 9);
    for i in 0..1000 {
        assert_eq!(m.get(i), uniform(9, streams::RANDOM, i as u64) >= 0.3);
    }
    assert_ne!(m, Mask::random(1000, 0.3, 10));
    assert_eq!(Mask::random(100, 0.0, 1), Mask::ones(100));
    assert_eq!(Mask::random(100, 1.0, 1), Mask::zeros(100));
    assert_eq!(Mask::random(100, f64::NAN, 1), Mask::ones(100));
    // a few pinned values guard the documented generator against drift
    let head: Vec<bool> = (0..16).map(|i| Mask::random(16, 0.5, 42).get(i)).collect();
    let again: Vec<bool> = (0..16).map(|i| uniform(42, 0, i as u64) >= 0.5).collect();
    assert_eq!(head, again);
    assert!((0.0..1.0).contains(&uniform(u64::MAX, u64::MAX, u64::MAX)));
}

#[test]
fn builder_composes_rows_cols_and_random_by_and() {
    let b = MaskBuilder::new(37, 23)
        .mask_rows(0.3)
        .mask_cols(0.3)
        .mask_random(0.2)
        .seed(5);
    let (rows, cols, m) = (b.row_mask(), b.col_mask(), b.build());
    assert_eq!((rows.len(), cols.len(), m.len()), (37, 23, 37 * 23));
    assert!(rows.count_ones() < 37 && cols.count_ones() < 23);
    for r in 0..37 {
        for c in 0..23 {
            let i = r * 23 + c;
            let random = uniform(5, streams::CELLS, i as u64) >= 0.2;
            assert_eq!(m.get(i), rows.get(r) && cols.get(c) && random, "{r},{c}");
        }
    }
    // a masked-out row is masked out across every column (broadcasting)
    let r0 = (0..37).find(|&r| !rows.get(r)).unwrap();
    assert!((0..23).all(|c| !m.get(r0 * 23 + c)));
    // no masking keeps everything
    assert_eq!(MaskBuilder::new(5, 7).build(), Mask::ones(35));
    // same seed, same mask
    assert_eq!(m, b.clone().build());
}

#[test]
fn and_or_not_and_errors() {
    let a = Mask::from_bools(&[true, true, false, false]);
    let b = Mask::from_bools(&[true, false, true, false]);
    assert_eq!(bools(&a.and(&b).unwrap()), [true, false, false, false]);
    assert_eq!(bools(&a.or(&b).unwrap()), [true, true, true, false]);
    assert_eq!(bools(&a.not()), [false, false, true, true]);
    assert_eq!(a.not().words(), &[0b1100]);
    assert_eq!(
        a.and(&Mask::ones(5)),
        Err(Error::Length {
            arg: "other",
            expected: 4,
            actual: 5
        })
    );
}

proptest! {
    #[test]
    fn word_at_slice_and_set_range_match_bits(
        bits in proptest::collection::vec(any::<bool>(), 0..300),
        start in 0usize..300,
        len in 0usize..200,
        keep in any::<bool>(),
    ) {
        let m = Mask::from_bools(&bits);
        prop_assert_eq!(m.words().len(), words_for(bits.len()));
        prop_assert_eq!(m.count_ones(), bits.iter().filter(|b| **b).count());
        prop_assert_eq!(m.iter_ones().collect::<Vec<_>>(),
            (0..bits.len()).filter(|&i| bits[i]).collect::<Vec<_>>());
        let w = m.word_at(start);
        for k in 0..64 {
            let expect = bits.get(start + k).copied().unwrap_or(false);
            prop_assert_eq!((w >> k) & 1 == 1, expect);
        }
        match m.slice(start, len) {
            Ok(s) => {
                prop_assert!(start + len <= bits.len());
                prop_assert_eq!(bools(&s), bits[start..start + len].to_vec());
                prop_assert_eq!(Mask::from_words(s.words().to_vec(), len).unwrap(), s);
            }
            Err(_) => prop_assert!(start + len > bits.len()),
        }
        if start + len <= bits.len() {
            let mut m2 = m.clone();
            m2.set_range(start, start + len, keep);
            let mut expect = bits.clone();
            expect[start..start + len].iter_mut().for_each(|b| *b = keep);
            prop_assert_eq!(bools(&m2), expect.clone());
            prop_assert_eq!(m2, Mask::from_bools(&expect));
        }
        let bs = m.as_bitslice();
        prop_assert_eq!(bs.len(), bits.len());
        prop_assert_eq!(Mask::from_bitslice(bs), m.clone());
        prop_assert_eq!(m.not().not(), m);
    }
}

#[test]
fn builder_try_build_checks_its_input() {
    use maskops::Error;
    let b = MaskBuilder::new(6, 5)
        .mask_rows(0.3)
        .mask_cols(0.2)
        .mask_random(0.1)
        .seed(3);
    assert_eq!(b.try_build().unwrap(), b.build());
    for (bad, name) in [
        (MaskBuilder::new(2, 2).mask_rows(f64::NAN), "mask_rows"),
        (MaskBuilder::new(2, 2).mask_cols(-0.1), "mask_cols"),
        (MaskBuilder::new(2, 2).mask_random(1.01), "mask_random"),
    ] {
        match bad.try_build() {
            Err(Error::Param { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let e = MaskBuilder::new(usize::MAX, 3).try_build().unwrap_err();
    assert!(e.to_string().contains("more elements than usize"), "{e}");
    // saturating build: p = 1 masks everything out, p = 0 nothing
    assert_eq!(
        MaskBuilder::new(3, 3).mask_rows(1.0).build().count_ones(),
        0
    );
    assert_eq!(
        MaskBuilder::new(3, 3).mask_cols(0.0).build().count_ones(),
        9
    );
}
