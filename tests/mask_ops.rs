//! `!`, `&`, `|`, `&=`, `|=` on masks: the same masks as `not`, `and`, `or`
//! for every combination of owned and borrowed operands, the tail kept
//! clear, and a panic naming the lengths (with a pointer to the checked
//! methods) on a length mismatch.

use maskops::Mask;
use std::panic::{catch_unwind, AssertUnwindSafe};

const LENS: [usize; 9] = [0, 1, 63, 64, 65, 127, 128, 129, 1000];

fn pairs() -> impl Iterator<Item = (Mask, Mask)> {
    LENS.into_iter().flat_map(|n| {
        [(0.0, 0.5), (0.5, 0.5), (1.0, 0.3), (0.9, 0.1)]
            .into_iter()
            .enumerate()
            .map(move |(k, (pa, pb))| {
                (
                    Mask::random(n, pa, 10 + k as u64),
                    Mask::random(n, pb, 20 + k as u64),
                )
            })
    })
}

/// Bits past `len` are 0 (the invariant every constructor keeps).
fn tail_clear(m: &Mask) -> bool {
    m.len().is_multiple_of(64) || m.words().last().is_none_or(|w| w >> (m.len() % 64) == 0)
}

#[test]
fn not_matches_the_method_owned_and_borrowed() {
    for (a, _) in pairs() {
        let expect = a.not();
        assert_eq!(!&a, expect);
        assert_eq!(!a.clone(), expect);
        assert!(tail_clear(&!a.clone()), "len {}", a.len());
        assert_eq!(!!a.clone(), a);
        for i in 0..a.len() {
            assert_eq!(expect.get(i), !a.get(i));
        }
    }
}

#[test]
fn and_or_match_the_methods_for_every_operand_form() {
    for (a, b) in pairs() {
        let and = a.and(&b).unwrap();
        let or = a.or(&b).unwrap();
        assert_eq!(&a & &b, and);
        assert_eq!(a.clone() & &b, and);
        assert_eq!(&a & b.clone(), and);
        assert_eq!(a.clone() & b.clone(), and);
        assert_eq!(&a | &b, or);
        assert_eq!(a.clone() | &b, or);
        assert_eq!(&a | b.clone(), or);
        assert_eq!(a.clone() | b.clone(), or);

        let mut m = a.clone();
        m &= &b;
        assert_eq!(m, and);
        let mut m = a.clone();
        m &= b.clone();
        assert_eq!(m, and);
        let mut m = a.clone();
        m |= &b;
        assert_eq!(m, or);
        let mut m = a.clone();
        m |= b.clone();
        assert_eq!(m, or);

        for i in 0..a.len() {
            assert_eq!(and.get(i), a.get(i) && b.get(i));
            assert_eq!(or.get(i), a.get(i) || b.get(i));
        }
        assert!(tail_clear(&(&a | &!&b)));
        // De Morgan, through the operators only
        assert_eq!(!(&a & &b), !&a | !&b);
    }
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn length_mismatch_panics_with_the_lengths_and_the_checked_method() {
    let a = Mask::ones(3);
    let b = Mask::ones(4);
    for (msg, sym, method) in [
        (panic_message(|| drop(&a & &b)), "`&`", "Mask::and"),
        (panic_message(|| drop(a.clone() & &b)), "`&`", "Mask::and"),
        (panic_message(|| drop(&a & b.clone())), "`&`", "Mask::and"),
        (
            panic_message(|| drop(a.clone() & b.clone())),
            "`&`",
            "Mask::and",
        ),
        (panic_message(|| drop(&a | &b)), "`|`", "Mask::or"),
        (panic_message(|| drop(a.clone() | &b)), "`|`", "Mask::or"),
        (panic_message(|| drop(&a | b.clone())), "`|`", "Mask::or"),
        (
            panic_message(|| drop(a.clone() | b.clone())),
            "`|`",
            "Mask::or",
        ),
        (
            panic_message(|| {
                let mut m = a.clone();
                m &= &b;
            }),
            "`&=`",
            "Mask::and",
        ),
        (
            panic_message(|| {
                let mut m = a.clone();
                m |= b.clone();
            }),
            "`|=`",
            "Mask::or",
        ),
    ] {
        assert!(msg.contains("mask length mismatch"), "{msg}");
        assert!(msg.contains(sym), "{msg}");
        assert!(
            msg.contains("left mask has 3 bits, the right one 4"),
            "{msg}"
        );
        assert!(msg.contains(method), "{msg}");
    }
    // the right operand shorter, too
    let msg = panic_message(|| drop(&b & &a));
    assert!(
        msg.contains("left mask has 4 bits, the right one 3"),
        "{msg}"
    );
    // the checked forms return Err instead
    assert!(a.and(&b).is_err() && a.or(&b).is_err());
}
