//! No public function panics on bad input: random, often inconsistent
//! shapes, lengths, dims, norm orders, hyper-parameters and indices always
//! give `Ok` or `Err`. Where validity is easy to state, `Ok` is also checked
//! to happen exactly for valid input, and a failed optimizer step to leave
//! everything bit-for-bit unchanged.
//!
//! Sizes stay small (at most a few dozen elements) so that no valid input
//! asks for a huge output; degenerate shapes such as `0 x usize::MAX` are
//! generated only where the shape check must reject them.

mod shim;
use half::{bf16, f16};
use maskops::backend::Isa;
use maskops::loss::{self, CrossEntropy, Loss, Reduction};
use maskops::optim::{Adagrad, AdagradElement, AdagradState};
use maskops::{softmax, Element, Error, Float, Mask, MaskBuilder, MaskedVec, MaskedView, Result};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sprs::{CsVec, TriMat};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into a test failure that names `what`.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> std::result::Result<R, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {msg}"))
    })
}

/// Scalars: ordinary values, signed zeros, infinities, NaN, extremes.
fn any_scalar() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -4.0f64..4.0,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(1.0),
        1 => Just(2.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(f64::MIN_POSITIVE),
    ]
}

/// Data values, with the poison masked-out slots may hold.
fn values(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            8 => -30.0f64..30.0,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(0.0),
        ],
        0..max,
    )
}

/// A length near `n`: usually `n`, sometimes off by a little or anything.
fn near(n: usize, pick: u8, other: usize) -> usize {
    match pick % 16 {
        0 => n + 1,
        1 => n.saturating_sub(1),
        2 => other,
        _ => n,
    }
}

/// A dimension size: small, or (rarely) huge.
fn dim_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        12 => 0usize..7,
        1 => Just(usize::MAX),
        1 => Just(1usize << 40),
        1 => Just((usize::MAX >> 1) + 1),
    ]
}

/// Replaces a huge size paired with 0 (a valid empty shape whose output
/// would be huge) by a small one.
fn tame(rows: usize, cols: usize) -> (usize, usize) {
    let big = 1000;
    if rows == 0 && cols > big {
        (0, 3)
    } else if cols == 0 && rows > big {
        (3, 0)
    } else {
        (rows, cols)
    }
}

fn reduction(k: u8) -> Reduction {
    match k % 3 {
        0 => Reduction::None,
        1 => Reduction::Sum,
        _ => Reduction::Mean,
    }
}

fn shape_ok(rows: usize, cols: usize, len: usize) -> bool {
    rows.checked_mul(cols) == Some(len)
}

// ---------------------------------------------------------------- views

/// A per-dim result has one entry per row (dim 1) or column (dim 0).
fn check_dim_result<R: Copy>(
    what: &str,
    v: &MaskedView<'_, impl Element>,
    dim: usize,
    r: &Result<MaskedVec<R>>,
) -> std::result::Result<(), TestCaseError> {
    match r {
        Ok(out) => {
            prop_assert!(dim < v.ndim(), "{what}: Ok for dim {dim}");
            let n = if v.ndim() == 1 {
                1
            } else if dim == 1 {
                v.rows()
            } else {
                v.cols()
            };
            prop_assert_eq!(out.values.len(), n, "{}", what);
            prop_assert_eq!(out.mask.len(), n, "{}", what);
        }
        Err(Error::Dim { dim: d, ndim }) => {
            prop_assert!(dim >= v.ndim(), "{what}: Err for a good dim");
            prop_assert_eq!((*d, *ndim), (dim, v.ndim()));
        }
        Err(e) => prop_assert!(false, "{what}: unexpected {e:?}"),
    }
    Ok(())
}

/// An elementwise result (softmax and its backward) has the view's length.
fn check_same_len(
    what: &str,
    v: &MaskedView<'_, impl Element>,
    dim: usize,
    r: &Result<MaskedVec<impl Copy>>,
) -> std::result::Result<(), TestCaseError> {
    if let Ok(out) = r {
        prop_assert!(dim < v.ndim(), "{what}: Ok for dim {dim}");
        prop_assert_eq!(out.values.len(), v.len());
        prop_assert_eq!(out.mask.len(), v.len());
    }
    Ok(())
}

fn exercise_view<T: Element>(
    v: &MaskedView<'_, T>,
    dim: usize,
    p: f64,
    correction: usize,
    dy: &[T],
    probe: usize,
) -> std::result::Result<(), TestCaseError> {
    no_panic("whole-view reductions", || {
        let _ = (v.sum(), v.mean(), v.prod(), v.amin(), v.amax());
        let _ = (v.argmin(), v.argmax(), v.logsumexp());
        let _ = (v.var(correction), v.std(correction), v.norm(p));
        let _ = v.to_dense(T::ZERO);
    })?;
    if let Some(i) = no_panic("argmax", || v.argmax())? {
        prop_assert!(i < v.len());
    }
    macro_rules! per_dim {
        ($($name:literal => $call:expr),* $(,)?) => {
            $(
                let r = no_panic($name, || $call)?;
                check_dim_result($name, v, dim, &r)?;
                if let Ok(out) = &r {
                    let _ = no_panic("MaskedVec::get", || out.get(probe))?;
                }
            )*
        };
    }
    per_dim!(
        "sum_dim" => v.sum_dim(dim),
        "mean_dim" => v.mean_dim(dim),
        "prod_dim" => v.prod_dim(dim),
        "amin_dim" => v.amin_dim(dim),
        "amax_dim" => v.amax_dim(dim),
        "var_dim" => v.var_dim(dim, correction),
        "std_dim" => v.std_dim(dim, correction),
        "logsumexp_dim" => v.logsumexp_dim(dim),
    );
    per_dim!(
        "argmin_dim" => v.argmin_dim(dim),
        "argmax_dim" => v.argmax_dim(dim),
    );
    let r = no_panic("norm_dim", || v.norm_dim(dim, p))?;
    if p.is_nan() {
        prop_assert!(
            matches!(r, Err(Error::Param { name: "p", .. })),
            "norm_dim NaN p: {r:?}"
        );
    } else {
        check_dim_result("norm_dim", v, dim, &r)?;
    }
    for (what, r) in [
        ("softmax", no_panic("softmax", || v.softmax(dim))?),
        (
            "log_softmax",
            no_panic("log_softmax", || v.log_softmax(dim))?,
        ),
        (
            "softmax::softmax",
            no_panic("softmax::softmax", || softmax::softmax(v, dim))?,
        ),
        (
            "softmax::log_softmax",
            no_panic("softmax::log_softmax", || softmax::log_softmax(v, dim))?,
        ),
    ] {
        check_same_len(what, v, dim, &r)?;
        prop_assert_eq!(r.is_ok(), dim < v.ndim(), "{}", what);
    }
    for (what, r) in [
        (
            "softmax_backward",
            no_panic("softmax_backward", || softmax::softmax_backward(v, dy, dim))?,
        ),
        (
            "log_softmax_backward",
            no_panic("log_softmax_backward", || {
                softmax::log_softmax_backward(v, dy, dim)
            })?,
        ),
    ] {
        check_same_len(what, v, dim, &r)?;
        prop_assert_eq!(
            r.is_ok(),
            dim < v.ndim() && dy.len() == v.len(),
            "{}: {:?}",
            what,
            r.err()
        );
    }
    Ok(())
}

/// Everything random about one view.
#[derive(Debug)]
struct ViewCase {
    data: Vec<f64>,
    mask_len: usize,
    seed: u64,
    rows: usize,
    cols: usize,
    dim: usize,
    p: f64,
    correction: usize,
    dy_len: usize,
    probe: usize,
}

fn views_of<T: Element>(c: &ViewCase) -> std::result::Result<(), TestCaseError> {
    let ViewCase {
        ref data,
        mask_len,
        seed,
        rows,
        cols,
        dim,
        p,
        correction,
        dy_len,
        probe,
    } = *c;
    let x: Vec<T> = data.iter().map(|&v| T::from_f64(v)).collect();
    let m = Mask::random(mask_len, 0.3, seed);
    let dy: Vec<T> = (0..dy_len).map(|i| T::from_f64(i as f64 - 1.5)).collect();
    let r1 = no_panic("MaskedView::new", || MaskedView::new(&x, &m))?;
    prop_assert_eq!(r1.is_ok(), mask_len == x.len());
    if let Ok(v) = r1 {
        exercise_view(&v, dim, p, correction, &dy, probe)?;
    }
    let r2 = no_panic("MaskedView::matrix", || {
        MaskedView::matrix(&x, &m, rows, cols)
    })?;
    prop_assert_eq!(
        r2.is_ok(),
        shape_ok(rows, cols, x.len()) && mask_len == x.len()
    );
    if let Ok(v) = r2 {
        exercise_view(&v, dim, p, correction, &dy, probe)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn views_never_panic(
        data in values(30),
        (mask_pick, mask_other) in (any::<u8>(), 0usize..40),
        seed in any::<u64>(),
        (rows, cols) in (dim_size(), dim_size()),
        dim in prop_oneof![6 => 0usize..3, 1 => Just(usize::MAX)],
        p in any_scalar(),
        correction in prop_oneof![4 => 0usize..4, 1 => Just(usize::MAX)],
        (dy_pick, dy_other) in (any::<u8>(), 0usize..40),
        probe in 0usize..40,
        ty in 0u8..4,
    ) {
        let n = data.len();
        // a shape that usually fits the data
        let (rows, cols) = if rows < 7 && cols < 7 && rows * cols != n && (mask_pick & 16) == 0 {
            match n {
                0 => (rows, 0),
                _ => {
                    let r = (1..=n).rev().find(|r| n % r == 0 && *r <= rows.max(1)).unwrap_or(1);
                    (r, n / r)
                }
            }
        } else {
            tame(rows, cols)
        };
        let c = ViewCase {
            mask_len: near(n, mask_pick, mask_other),
            dy_len: near(n, dy_pick, dy_other),
            data,
            seed,
            rows,
            cols,
            dim,
            p,
            correction,
            probe,
        };
        match ty {
            0 => views_of::<f32>(&c)?,
            1 => views_of::<f64>(&c)?,
            2 => views_of::<f16>(&c)?,
            _ => views_of::<bf16>(&c)?,
        }
    }

    #[test]
    fn masks_never_panic(
        words in prop::collection::vec(any::<u64>(), 0..4),
        len in 0usize..260,
        lengths in prop::collection::vec(0usize..9, 0..6),
        max_len in prop_oneof![8 => 0usize..9, 1 => Just((usize::MAX >> 1) + 1), 1 => Just(usize::MAX)],
        (start, slen) in (prop_oneof![4 => 0usize..300, 1 => Just(usize::MAX)], 0usize..300),
        (other_len, prob) in (0usize..260, any_scalar()),
        (rows, cols, seed) in (0usize..20, 0usize..20, any::<u64>()),
    ) {
        let r = no_panic("Mask::from_words", || Mask::from_words(words.clone(), len))?;
        let tail_ok = len % 64 == 0
            || words.len() != len.div_ceil(64)
            || words[words.len() - 1] >> (len % 64) == 0;
        prop_assert_eq!(r.is_ok(), words.len() == len.div_ceil(64) && tail_ok, "{:?}", r);
        // a huge max_len is generated only where the total overflows (two
        // rows or more) or is 0 (no rows): one row would be a valid mask too
        // large to allocate
        if max_len <= 1000 || lengths.len() != 1 {
            let r = no_panic("Mask::padding", || Mask::padding(&lengths, max_len))?;
            let ok = lengths.len().checked_mul(max_len).is_some()
                && lengths.iter().all(|&l| l <= max_len);
            prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
        }
        let m = Mask::random(len, prob, seed);
        let o = Mask::random(other_len, 0.5, seed ^ 1);
        let r = no_panic("Mask::slice", || m.slice(start, slen))?;
        prop_assert_eq!(r.is_ok(), start.checked_add(slen).is_some_and(|e| e <= len));
        let (a, b) = no_panic("Mask::and/or", || (m.and(&o), m.or(&o)))?;
        prop_assert_eq!(a.is_ok(), len == other_len);
        prop_assert_eq!(b.is_ok(), len == other_len);
        no_panic("Mask misc", || {
            let _ = (m.not(), m.count_ones(), m.word_at(start), m.iter_ones().count());
            let _ = Mask::from_labels(&[1, -1, 3], -1);
            let _ = Mask::not_nan(&[1.0f32, f32::NAN]);
        })?;
        no_panic("MaskBuilder", || {
            MaskBuilder::new(rows, cols)
                .mask_rows(prob)
                .mask_cols(-prob)
                .mask_random(prob * 0.5)
                .seed(seed)
                .build()
        })?;
    }
}

/// A view with no elements but a huge dimension: softmax (forward and
/// backward) and every reduction whose output is empty return at once
/// instead of materializing `usize::MAX` empty rows.
#[test]
fn empty_views_with_a_huge_dimension() {
    let x: [f32; 0] = [];
    let m = Mask::zeros(0);
    for (rows, cols) in [(usize::MAX, 0), (0, usize::MAX), (1 << 40, 0), (0, 1 << 40)] {
        let v = MaskedView::matrix(&x, &m, rows, cols).unwrap();
        for dim in [0, 1] {
            let out = no_panic("softmax", || {
                [
                    v.softmax(dim),
                    v.log_softmax(dim),
                    softmax::softmax_backward(&v, &[], dim),
                    softmax::log_softmax_backward(&v, &[], dim),
                ]
            })
            .unwrap();
            for r in out {
                let r = r.unwrap();
                assert!(r.values.is_empty() && r.mask.is_empty(), "{rows} x {cols}");
            }
            assert!(matches!(v.softmax(2), Err(Error::Dim { dim: 2, ndim: 2 })));
        }
        assert_eq!(v.sum(), None);
        assert_eq!(v.argmax(), None);
        assert_eq!(v.norm(2.0), None);
        // the reduction along the huge dimension has an empty output
        let dim = if rows == 0 { 1 } else { 0 };
        let r = no_panic("sum_dim", || v.sum_dim(dim)).unwrap().unwrap();
        assert!(r.is_empty());
        let r = no_panic("var_dim", || v.var_dim(dim, 1)).unwrap().unwrap();
        assert!(r.is_empty());
        let r = no_panic("argmin_dim", || v.argmin_dim(dim))
            .unwrap()
            .unwrap();
        assert!(r.is_empty());
    }
}

/// `MaskedVec`'s fields are public, so its mask may be shorter or longer
/// than its values: `get` and `to_dense` treat missing bits as masked out.
#[test]
fn inconsistent_masked_vec() {
    let short = MaskedVec {
        values: vec![1.0f32, 2.0, 3.0],
        mask: Mask::ones(2),
    };
    assert_eq!(no_panic("get", || short.get(2)).unwrap(), None);
    assert_eq!(short.get(1), Some(2.0));
    assert_eq!(short.get(usize::MAX), None);
    assert_eq!(
        no_panic("to_dense", || short.to_dense(-1.0)).unwrap(),
        vec![1.0, 2.0, -1.0]
    );
    let long = MaskedVec {
        values: vec![1.0f32],
        mask: Mask::ones(5),
    };
    assert_eq!(long.get(3), None);
    assert_eq!(long.to_dense(0.0), vec![1.0]);
}

// ---------------------------------------------------------------- losses

type Ew<T> = Box<dyn Fn(&[T], &[T], &Mask, Reduction) -> Result<Loss<T>>>;

/// Every elementwise loss (public and per ISA) with its hyper-parameter
/// validity.
fn elementwise<T: Float>(h: f64, pw: Option<Vec<T>>) -> Vec<(&'static str, bool, Ew<T>)> {
    let delta_ok = h.is_finite() && h > 0.0;
    let beta_ok = h.is_finite() && h >= 0.0;
    let pw2 = pw.clone();
    let mut v: Vec<(&'static str, bool, Ew<T>)> = vec![
        ("mse", true, Box::new(loss::mse)),
        ("l1", true, Box::new(loss::l1)),
        (
            "huber",
            delta_ok,
            Box::new(move |x, y, m, r| loss::huber(x, y, m, h, r)),
        ),
        (
            "smooth_l1",
            beta_ok,
            Box::new(move |x, y, m, r| loss::smooth_l1(x, y, m, h, r)),
        ),
        (
            "bce_with_logits",
            true,
            Box::new(move |x, y, m, r| loss::bce_with_logits(x, y, m, pw2.as_deref(), r)),
        ),
    ];
    for isa in Isa::all_available() {
        let pw3 = pw.clone();
        v.push((
            "mse_with",
            true,
            Box::new(move |x, y, m, r| shim::loss::mse_with(isa, x, y, m, r)),
        ));
        v.push((
            "l1_with",
            true,
            Box::new(move |x, y, m, r| shim::loss::l1_with(isa, x, y, m, r)),
        ));
        v.push((
            "huber_with",
            delta_ok,
            Box::new(move |x, y, m, r| shim::loss::huber_with(isa, x, y, m, h, r)),
        ));
        v.push((
            "smooth_l1_with",
            beta_ok,
            Box::new(move |x, y, m, r| shim::loss::smooth_l1_with(isa, x, y, m, h, r)),
        ));
        v.push((
            "bce_with_logits_with",
            true,
            Box::new(move |x, y, m, r| {
                shim::loss::bce_with_logits_with(isa, x, y, m, pw3.as_deref(), r)
            }),
        ));
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn losses_of<T: Float>(
    data: &[f64],
    t_len: usize,
    m_len: usize,
    pw_len: Option<usize>,
    h: f64,
    red: Reduction,
    seed: u64,
) -> std::result::Result<(), TestCaseError> {
    let n = data.len();
    let x: Vec<T> = data.iter().map(|&v| T::from_f64(v)).collect();
    let y: Vec<T> = (0..t_len).map(|i| T::from_f64((i % 2) as f64)).collect();
    let m = Mask::random(m_len, 0.3, seed);
    let pw: Option<Vec<T>> = pw_len.map(|k| (0..k).map(|i| T::from_f64(0.5 + i as f64)).collect());
    let lens_ok = t_len == n && m_len == n;
    let pw_ok = pw_len.is_none_or(|k| k > 0 && n.is_multiple_of(k));
    for (name, hyper_ok, f) in elementwise::<T>(h, pw) {
        let r = no_panic(name, || f(&x, &y, &m, red))?;
        let ok = lens_ok && hyper_ok && (pw_ok || !name.starts_with("bce"));
        prop_assert_eq!(r.is_ok(), ok, "{}: {:?}", name, r.as_ref().err());
        if let Ok(l) = r {
            prop_assert_eq!(l.grad.len(), n, "{}", name);
            let vl = if red == Reduction::None { n } else { 1 };
            prop_assert_eq!(l.value.len(), vl, "{}", name);
        }
    }
    // ECS and Pearson read the data as a matrix of whatever shape was asked
    let (rows, cols) = (t_len % 5, m_len % 5);
    let r = no_panic("ecs", || loss::ecs(&x, rows, cols, h))?;
    prop_assert_eq!(r.is_ok(), rows * cols == n && h.is_finite());
    let r = no_panic("pearson", || loss::pearson(&x, &y, &m, rows, cols))?;
    prop_assert_eq!(r.is_ok(), rows * cols == n && lens_ok);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn ce_of<T: Float>(
    logits_len: usize,
    rows: usize,
    classes: usize,
    targets: &[i64],
    ignore_index: i64,
    weight_len: Option<usize>,
    label_smoothing: f64,
    red: Reduction,
) -> std::result::Result<(), TestCaseError> {
    let logits: Vec<T> = (0..logits_len)
        .map(|i| T::from_f64(((i * 7) % 5) as f64 - 2.0))
        .collect();
    let opts = CrossEntropy {
        ignore_index,
        weight: weight_len.map(|k| (0..k).map(|i| T::from_f64(0.5 + i as f64)).collect()),
        label_smoothing,
        reduction: red,
    };
    let targets_ok = targets
        .iter()
        .all(|&t| t == ignore_index || (t >= 0 && (t as u64) < classes as u64));
    let ok = shape_ok(rows, classes, logits_len)
        && targets.len() == rows
        && weight_len.is_none_or(|k| k == classes)
        && (0.0..=1.0).contains(&label_smoothing)
        && targets_ok;
    let mut results = vec![(
        "cross_entropy",
        no_panic("cross_entropy", || {
            loss::cross_entropy(&logits, rows, classes, targets, &opts)
        })?,
    )];
    for isa in Isa::all_available() {
        results.push((
            "cross_entropy_with",
            no_panic("cross_entropy_with", || {
                shim::loss::cross_entropy_with(isa, &logits, rows, classes, targets, &opts)
            })?,
        ));
    }
    for (name, r) in results {
        prop_assert_eq!(r.is_ok(), ok, "{}: {:?}", name, r.as_ref().err());
        if let Ok(l) = &r {
            prop_assert_eq!(l.grad.len(), logits_len);
            prop_assert_eq!(l.value.len(), if red == Reduction::None { rows } else { 1 });
        }
        if let Err(Error::Target { row, value, .. }) = r {
            prop_assert!(row < targets.len() && targets[row] == value);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn losses_never_panic(
        data in values(24),
        (t_pick, t_other, m_pick, m_other) in (any::<u8>(), 0usize..30, any::<u8>(), 0usize..30),
        pw_len in prop::option::of(prop_oneof![0usize..5, Just(24usize)]),
        h in any_scalar(),
        (red, seed, f64_ty) in (any::<u8>(), any::<u64>(), any::<bool>()),
    ) {
        let n = data.len();
        let t_len = near(n, t_pick, t_other);
        let m_len = near(n, m_pick, m_other);
        if f64_ty {
            losses_of::<f64>(&data, t_len, m_len, pw_len, h, reduction(red), seed)?;
        } else {
            losses_of::<f32>(&data, t_len, m_len, pw_len, h, reduction(red), seed)?;
        }
    }

    #[test]
    fn cross_entropy_never_panics(
        (rows, classes) in (dim_size(), dim_size()),
        (logits_pick, targets_pick) in (any::<u8>(), any::<u8>()),
        raw_targets in prop::collection::vec(
            prop_oneof![8 => -3i64..8, 1 => Just(-100i64), 1 => Just(i64::MIN), 1 => Just(i64::MAX)],
            0..10,
        ),
        ignore_index in prop_oneof![Just(-100i64), Just(-1), Just(0), Just(1), Just(7), Just(i64::MIN)],
        weight_pick in prop::option::of(any::<u8>()),
        label_smoothing in prop_oneof![3 => 0.0f64..=1.0, 1 => any_scalar()],
        (red, f64_ty) in (any::<u8>(), any::<bool>()),
    ) {
        let (rows, classes) = tame(rows, classes);
        // logits usually of the right size when it is small
        let n = rows.checked_mul(classes).filter(|&n| n <= 64);
        let logits_len = match n {
            Some(n) => near(n, logits_pick, (logits_pick % 20) as usize),
            None => (logits_pick % 20) as usize,
        };
        let mut targets = raw_targets;
        if rows <= 10 && targets_pick % 8 != 0 {
            targets.resize(rows, 0);
        }
        if targets_pick % 4 != 0 {
            // mostly valid targets: in range, or the ignore index
            for t in &mut targets {
                *t = if *t < 0 || classes == 0 {
                    ignore_index
                } else {
                    *t % classes.min(1 << 20) as i64
                };
            }
        }
        let weight_len = weight_pick.map(|k| near(classes.min(16), k, (k % 5) as usize));
        let red = reduction(red);
        if f64_ty {
            ce_of::<f64>(logits_len, rows, classes, &targets, ignore_index, weight_len, label_smoothing, red)?;
        } else {
            ce_of::<f32>(logits_len, rows, classes, &targets, ignore_index, weight_len, label_smoothing, red)?;
        }
    }
}

// ---------------------------------------------------------------- Adagrad

type Snapshot = (Vec<u64>, Vec<u64>, u64);

fn snapshot<P: AdagradElement>(p: &[P], st: &AdagradState<P::State>) -> Snapshot {
    (
        p.iter().map(|x| x.to_f64().to_bits()).collect(),
        st.sum.iter().map(|x| x.to_f64().to_bits()).collect(),
        st.step,
    )
}

/// Everything random about one Adagrad call.
#[derive(Debug, Clone)]
struct StepCase {
    form: u8,
    rows: usize,
    cols: usize,
    param_len: usize,
    state_len: usize,
    step: u64,
    hyper: [f64; 5],
    maximize: bool,
    grad_len: usize,
    /// (row, col) pairs (COO, TriMat) or flat indices (CsVec) or row indices.
    idx: Vec<(usize, usize)>,
    values_len: usize,
    tri_shape: (usize, usize),
    seed: u64,
}

fn step_case() -> impl Strategy<Value = StepCase> {
    (
        (0u8..6, 0usize..5, 0usize..5, any::<u8>(), any::<u8>()),
        prop_oneof![10 => 0u64..4, 1 => Just(u64::MAX - 1), 1 => Just(u64::MAX)],
        prop::array::uniform5(prop_oneof![
            16 => 0.0f64..1.0,
            1 => any_scalar(),
        ]),
        (any::<bool>(), any::<u8>()),
        prop::collection::vec((0usize..7, 0usize..7), 0..8),
        (any::<u8>(), 0usize..6, 0usize..6, any::<u64>()),
    )
        .prop_map(
            |(
                (form, rows, cols, p_pick, s_pick),
                step,
                hyper,
                (maximize, g_pick),
                idx,
                (v_pick, tr, tc, seed),
            )| {
                let n = rows * cols;
                // indices mostly in range (of rows x cols, or of the flat
                // length for CsVec)
                let idx: Vec<(usize, usize)> = if v_pick % 4 == 0 || n == 0 {
                    idx
                } else if form == 4 {
                    idx.iter().map(|&(a, b)| ((a * 7 + b) % n, 0)).collect()
                } else {
                    idx.iter().map(|&(a, b)| (a % rows, b % cols)).collect()
                };
                let param_len = near(n, p_pick, (p_pick % 9) as usize);
                let state_len = near(param_len, s_pick, (s_pick % 9) as usize);
                let grad_len = near(param_len, g_pick, (g_pick % 9) as usize);
                let k = match form {
                    5 => idx.len() * cols,
                    _ => idx.len(),
                };
                let values_len = near(k, v_pick, (v_pick % 9) as usize);
                StepCase {
                    form,
                    rows,
                    cols,
                    param_len,
                    state_len,
                    step,
                    hyper,
                    maximize,
                    grad_len,
                    idx,
                    values_len,
                    tri_shape: if v_pick % 3 == 0 {
                        (tr, tc)
                    } else {
                        (rows, cols)
                    },
                    seed,
                }
            },
        )
}

fn run_step<P: AdagradElement>(c: &StepCase) -> std::result::Result<(), TestCaseError> {
    let opt = Adagrad {
        lr: c.hyper[0],
        lr_decay: c.hyper[1],
        weight_decay: c.hyper[2],
        initial_accumulator_value: c.hyper[3],
        eps: c.hyper[4],
        maximize: c.maximize,
    };
    let hyper_ok = c.hyper.iter().all(|h| h.is_finite() && *h >= 0.0);
    let mut param: Vec<P> = (0..c.param_len)
        .map(|i| P::from_f64(i as f64 * 0.25 - 1.0))
        .collect();
    let mut state = AdagradState {
        sum: (0..c.state_len)
            .map(|i| <P::State as Element>::from_f64(0.5 + i as f64))
            .collect(),
        step: c.step,
    };
    let before = snapshot(&param, &state);
    let val = |i: usize| P::from_f64(((i * 5) % 7) as f64 - 3.0);
    let grad: Vec<P> = (0..c.grad_len).map(val).collect();
    let values: Vec<P> = (0..c.values_len).map(val).collect();
    let rows_i: Vec<usize> = c.idx.iter().map(|p| p.0).collect();
    let cols_i: Vec<usize> = c.idx.iter().map(|p| p.1).collect();
    let (r, form) = match c.form {
        0 => (
            no_panic("step_dense", || {
                opt.step_dense(&mut param, &grad, &mut state)
            })?,
            "dense",
        ),
        1 => {
            let m = Mask::random(c.grad_len, 0.4, c.seed);
            let v = MaskedView::new(&grad, &m).unwrap();
            (
                no_panic("step_masked", || {
                    opt.step_masked(&mut param, &v, &mut state)
                })?,
                "masked",
            )
        }
        2 => {
            // a TriMat is valid for its own shape (sprs checks that); its
            // shape may differ from rows x cols
            let (tr, tc) = c.tri_shape;
            let keep: Vec<(usize, usize)> = c
                .idx
                .iter()
                .copied()
                .filter(|&(r, cc)| r < tr && cc < tc)
                .collect();
            let t = TriMat::from_triplets(
                (tr, tc),
                keep.iter().map(|p| p.0).collect(),
                keep.iter().map(|p| p.1).collect(),
                (0..keep.len()).map(val).collect(),
            );
            (
                no_panic("step_sparse", || {
                    opt.step_sparse(&mut param, c.rows, c.cols, &t, &mut state)
                })?,
                "sparse",
            )
        }
        3 => (
            no_panic("step_coo", || {
                opt.step_coo(
                    &mut param, c.rows, c.cols, &rows_i, &cols_i, &values, &mut state,
                )
            })?,
            "coo",
        ),
        4 => {
            let flat: Vec<usize> = c.idx.iter().map(|p| p.0 + p.1).collect();
            // SAFETY: sprs's unchecked constructor only stores the buffers;
            // the structure (unsorted, duplicate or out-of-range indices,
            // data of another length) is deliberately arbitrary, to test that
            // maskops validates it and never indexes with an unchecked index.
            let v = unsafe { CsVec::new_uncheked(c.grad_len, flat, values.clone()) };
            (
                no_panic("step_sparse_vec", || {
                    opt.step_sparse_vec(&mut param, &v, &mut state)
                })?,
                "sparse_vec",
            )
        }
        _ => (
            no_panic("step_rows", || {
                opt.step_rows(&mut param, c.rows, c.cols, &rows_i, &values, &mut state)
            })?,
            "rows",
        ),
    };
    match &r {
        Ok(()) => {
            prop_assert!(hyper_ok, "{form}: Ok with bad hyper-parameters");
            prop_assert!(c.step < u64::MAX, "{form}: Ok past u64::MAX steps");
            prop_assert_eq!(c.state_len, c.param_len, "{}: Ok with a bad state", form);
            prop_assert_eq!(state.step, c.step + 1);
            prop_assert_eq!(state.sum.len(), c.state_len);
            prop_assert_eq!(param.len(), c.param_len);
        }
        Err(e) => {
            prop_assert_eq!(
                snapshot(&param, &state),
                before,
                "{}: failed with {:?} but changed param or state",
                form,
                e
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn adagrad_never_panics_and_fails_cleanly(c in step_case(), ty in 0u8..4) {
        match ty {
            0 => run_step::<f32>(&c)?,
            1 => run_step::<f64>(&c)?,
            2 => run_step::<f16>(&c)?,
            _ => run_step::<bf16>(&c)?,
        }
    }
}
