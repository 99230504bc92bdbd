//! Bad input of every kind (issue 2, item 6) across the whole public API:
//! the exact `Error` variant and its fields, a `Display` message that names
//! the argument and the numbers, and — for every failing optimizer step —
//! parameters, accumulator and step counter left bit-for-bit unchanged.

mod shim;
use half::{bf16, f16};
use maskops::backend::Isa;
use maskops::loss::{self, CrossEntropy, Reduction};
use maskops::optim::{Adagrad, AdagradElement, AdagradState};
use maskops::{softmax, Element, Error, Float, Mask, MaskedView, Result};
use sprs::{CsVec, TriMat};

// ---------------------------------------------------------------- helpers

/// The message of `e` contains every part.
#[track_caller]
fn assert_msg(e: &Error, parts: &[&str]) {
    let s = e.to_string();
    for p in parts {
        assert!(s.contains(p), "message {s:?} of {e:?} lacks {p:?}");
    }
}

/// `r` is exactly `Err(expected)` and its message contains every part.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: Result<T>, expected: Error, parts: &[&str]) {
    match r {
        Err(e) => {
            assert_eq!(e, expected);
            assert_msg(&e, parts);
        }
        Ok(v) => panic!("expected {expected:?}, got Ok({v:?})"),
    }
}

/// `r` is `Err(Error::Param { name, value, expected })`, the value compared
/// bit for bit (NaN included), and the message names the parameter and value.
#[track_caller]
fn assert_param<T: std::fmt::Debug>(r: Result<T>, name: &str, value: f64, expected: &str) {
    match r {
        Err(
            ref e @ Error::Param {
                name: n,
                value: v,
                expected: x,
            },
        ) => {
            assert_eq!(n, name, "{e:?}");
            assert!(
                v.to_bits() == value.to_bits() || (v.is_nan() && value.is_nan()),
                "{e:?}: value {v} != {value}"
            );
            assert_eq!(x, expected, "{e:?}");
            assert_msg(e, &[&format!("`{name}`"), &format!("{value}"), expected]);
        }
        other => panic!("expected Param {{ name: {name}, value: {value} }}, got {other:?}"),
    }
}

/// Length message parts: "`arg` has length actual, expected expected".
fn len_parts(arg: &str, expected: usize, actual: usize) -> [String; 3] {
    [
        format!("`{arg}`"),
        format!("length {actual}"),
        format!("expected {expected}"),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[track_caller]
fn assert_len<T: std::fmt::Debug>(r: Result<T>, arg: &'static str, expected: usize, actual: usize) {
    let parts = len_parts(arg, expected, actual);
    assert_err(
        r,
        Error::Length {
            arg,
            expected,
            actual,
        },
        &strs(&parts),
    );
}

#[track_caller]
fn assert_shape<T: std::fmt::Debug>(
    r: Result<T>,
    arg: &'static str,
    rows: usize,
    cols: usize,
    len: usize,
) {
    let parts = [
        format!("`{arg}`"),
        format!("{rows} x {cols}"),
        format!("{len} elements"),
    ];
    assert_err(
        r,
        Error::Shape {
            arg,
            rows,
            cols,
            len,
        },
        &strs(&parts),
    );
}

#[track_caller]
fn assert_index<T: std::fmt::Debug>(
    r: Result<T>,
    arg: &'static str,
    index: usize,
    position: usize,
    bound: usize,
) {
    let parts = [
        format!("`{arg}`[{position}] = {index}"),
        format!("[0, {bound})"),
    ];
    assert_err(
        r,
        Error::Index {
            arg,
            index,
            position,
            bound,
        },
        &strs(&parts),
    );
}

#[track_caller]
fn assert_dim<T: std::fmt::Debug>(r: Result<T>, dim: usize, ndim: usize) {
    let parts = [format!("`dim` = {dim}"), format!("{ndim}-dimensional")];
    assert_err(r, Error::Dim { dim, ndim }, &strs(&parts));
}

/// Non-finite and negative values every "finite and >= 0" parameter rejects.
const NOT_NONNEG: [f64; 6] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    -1e-300,
    -f64::MIN_POSITIVE,
];

// ---------------------------------------------------------------- masks

#[test]
fn mask_from_words_errors() {
    assert_len(Mask::from_words(vec![0, 0], 10), "words", 1, 2);
    assert_len(Mask::from_words(vec![], 1), "words", 1, 0);
    assert_len(Mask::from_words(vec![0], 0), "words", 0, 1);
    assert_len(Mask::from_words(vec![u64::MAX], 128), "words", 2, 1);
    assert_err(
        Mask::from_words(vec![0b1_0000], 4),
        Error::TailBits { len: 4, bit: 4 },
        &["bit 4", "length 4", "`words`"],
    );
    // the first tail bit is reported, in the last word
    assert_err(
        Mask::from_words(vec![u64::MAX, (1 << 5) | (1 << 9) | 0b11], 69),
        Error::TailBits { len: 69, bit: 69 },
        &["bit 69", "length 69"],
    );
    assert_err(
        Mask::from_words(vec![0, 1 << 63], 127),
        Error::TailBits { len: 127, bit: 127 },
        &["bit 127", "length 127"],
    );
    // the boundary cases are accepted
    assert!(Mask::from_words(vec![0b1111], 4).is_ok());
    assert!(Mask::from_words(vec![u64::MAX, u64::MAX], 128).is_ok());
    assert!(Mask::from_words(vec![], 0).is_ok());
}

#[test]
fn mask_padding_and_ops_errors() {
    assert_index(Mask::padding(&[2, 5, 1, 9], 4), "lengths", 5, 1, 5);
    assert_index(Mask::padding(&[1], 0), "lengths", 1, 0, 1);
    assert!(Mask::padding(&[4, 0, 4], 4).is_ok());
    // rows * max_len overflows
    assert_err(
        Mask::padding(&[0, 0, 0], usize::MAX / 2),
        Error::Shape {
            arg: "lengths",
            rows: 3,
            cols: usize::MAX / 2,
            len: usize::MAX,
        },
        &["`lengths`", "3 x"],
    );

    let a = Mask::ones(5);
    let b = Mask::ones(6);
    assert_len(a.and(&b), "other", 5, 6);
    assert_len(a.or(&b), "other", 5, 6);
    assert_len(b.and(&a), "other", 6, 5);
    assert_len(Mask::ones(0).or(&Mask::zeros(65)), "other", 0, 65);

    let m = Mask::ones(8);
    assert_index(m.slice(3, 10), "start + len", 13, 0, 9);
    assert_index(m.slice(9, 0), "start + len", 9, 0, 9);
    assert_index(m.slice(usize::MAX, 2), "start + len", usize::MAX, 0, 9);
    assert!(m.slice(8, 0).is_ok());
    assert!(m.slice(0, 8).is_ok());
}

// ---------------------------------------------------------------- views

#[test]
fn view_constructor_errors() {
    let x = [1.0f32; 6];
    let m4 = Mask::ones(4);
    let m5 = Mask::ones(5);
    let m6 = Mask::ones(6);
    assert_len(MaskedView::new(&x, &m4), "mask", 6, 4);
    assert_len(MaskedView::new(&x[..0], &m4), "mask", 0, 4);
    assert_shape(MaskedView::matrix(&x, &m6, 2, 4), "data", 2, 4, 6);
    assert_shape(MaskedView::matrix(&x, &m6, 0, 6), "data", 0, 6, 6);
    assert_shape(
        MaskedView::matrix(&x, &m6, usize::MAX, 2),
        "data",
        usize::MAX,
        2,
        6,
    );
    // overflowing product that wraps to the length must still fail
    let half = 1usize << (usize::BITS - 1);
    assert_shape(
        MaskedView::matrix(&x[..0], &Mask::ones(0), half, 2),
        "data",
        half,
        2,
        0,
    );
    assert_len(MaskedView::matrix(&x, &m5, 2, 3), "mask", 6, 5);
    assert_len(MaskedView::matrix(&x[..5], &m6, 5, 1), "mask", 5, 6);
    assert!(MaskedView::matrix(&x, &m6, 3, 2).is_ok());
}

/// Every per-dim function and softmax form on a view with a bad `dim`.
fn all_dim_fns_reject<T: Element + std::fmt::Debug>(v: &MaskedView<T>, dim: usize) {
    let nd = v.ndim();
    assert_dim(v.sum_dim(dim), dim, nd);
    assert_dim(v.mean_dim(dim), dim, nd);
    assert_dim(v.prod_dim(dim), dim, nd);
    assert_dim(v.amin_dim(dim), dim, nd);
    assert_dim(v.amax_dim(dim), dim, nd);
    assert_dim(v.argmin_dim(dim), dim, nd);
    assert_dim(v.argmax_dim(dim), dim, nd);
    assert_dim(v.var_dim(dim, 1), dim, nd);
    assert_dim(v.std_dim(dim, 0), dim, nd);
    assert_dim(v.norm_dim(dim, 2.0), dim, nd);
    assert_dim(v.norm_dim(dim, f64::INFINITY), dim, nd);
    assert_dim(v.logsumexp_dim(dim), dim, nd);
    assert_dim(v.softmax(dim), dim, nd);
    assert_dim(v.log_softmax(dim), dim, nd);
    assert_dim(softmax::softmax(v, dim), dim, nd);
    assert_dim(softmax::log_softmax(v, dim), dim, nd);
    let dy = vec![T::from_f64(1.0); v.len()];
    assert_dim(softmax::softmax_backward(v, &dy, dim), dim, nd);
    assert_dim(softmax::log_softmax_backward(v, &dy, dim), dim, nd);
}

/// Every per-dim function accepts a good `dim` (so the rejections above are
/// about `dim`, not about the view).
fn all_dim_fns_accept<T: Element + std::fmt::Debug>(v: &MaskedView<T>, dim: usize) {
    v.sum_dim(dim).unwrap();
    v.mean_dim(dim).unwrap();
    v.prod_dim(dim).unwrap();
    v.amin_dim(dim).unwrap();
    v.amax_dim(dim).unwrap();
    v.argmin_dim(dim).unwrap();
    v.argmax_dim(dim).unwrap();
    v.var_dim(dim, 1).unwrap();
    v.std_dim(dim, 0).unwrap();
    v.norm_dim(dim, 2.0).unwrap();
    v.logsumexp_dim(dim).unwrap();
    v.softmax(dim).unwrap();
    v.log_softmax(dim).unwrap();
    let dy = vec![T::from_f64(1.0); v.len()];
    softmax::softmax_backward(v, &dy, dim).unwrap();
    softmax::log_softmax_backward(v, &dy, dim).unwrap();
}

fn dim_errors<T: Element + std::fmt::Debug>() {
    let x: Vec<T> = (0..6).map(|i| T::from_f64(i as f64 - 2.5)).collect();
    let m = Mask::from_bools(&[true, false, true, true, true, false]);
    let v1 = MaskedView::new(&x, &m).unwrap();
    let v2 = MaskedView::matrix(&x, &m, 2, 3).unwrap();
    for dim in [1, 2, 7, usize::MAX] {
        all_dim_fns_reject(&v1, dim);
    }
    for dim in [2, 3, usize::MAX] {
        all_dim_fns_reject(&v2, dim);
    }
    all_dim_fns_accept(&v1, 0);
    all_dim_fns_accept(&v2, 0);
    all_dim_fns_accept(&v2, 1);
    // empty views have dims too
    let e = Mask::ones(0);
    all_dim_fns_reject(&MaskedView::<T>::new(&[], &e).unwrap(), 1);
    all_dim_fns_reject(&MaskedView::<T>::matrix(&[], &e, 0, 5).unwrap(), 2);
}

#[test]
fn bad_dim_every_function_every_type() {
    dim_errors::<f32>();
    dim_errors::<f64>();
    dim_errors::<f16>();
    dim_errors::<bf16>();
}

fn norm_and_backward_errors<T: Element + std::fmt::Debug>() {
    let x: Vec<T> = (0..6).map(|i| T::from_f64(i as f64)).collect();
    let m = Mask::ones(6);
    let v2 = MaskedView::matrix(&x, &m, 2, 3).unwrap();
    let v1 = MaskedView::new(&x, &m).unwrap();
    let nan_p = "a number (not NaN): any finite value, inf or -inf";
    assert_param(v2.norm_dim(1, f64::NAN), "p", f64::NAN, nan_p);
    assert_param(v2.norm_dim(0, -f64::NAN), "p", f64::NAN, nan_p);
    assert_param(v1.norm_dim(0, f64::NAN), "p", f64::NAN, nan_p);
    // every other order is valid
    for p in [0.0, -0.5, 3.5, f64::INFINITY, f64::NEG_INFINITY, -3.0] {
        v2.norm_dim(1, p).unwrap();
    }
    for v in [v1, v2] {
        for n in [0usize, 5, 7, 12] {
            let dy = vec![T::from_f64(1.0); n];
            let dim = v.ndim() - 1;
            assert_len(softmax::softmax_backward(&v, &dy, dim), "grad_output", 6, n);
            assert_len(
                softmax::log_softmax_backward(&v, &dy, dim),
                "grad_output",
                6,
                n,
            );
        }
    }
}

#[test]
fn norm_order_and_softmax_backward_errors() {
    norm_and_backward_errors::<f32>();
    norm_and_backward_errors::<f64>();
    norm_and_backward_errors::<f16>();
    norm_and_backward_errors::<bf16>();
}

// ---------------------------------------------------------------- losses

/// Every elementwise loss with valid hyper-parameters, public and per ISA.
type LossFn<T> = Box<dyn Fn(&[T], &[T], &Mask) -> Result<loss::Loss<T>>>;

fn elementwise_losses<T: Float>() -> Vec<(&'static str, LossFn<T>)> {
    let mut v: Vec<(&'static str, LossFn<T>)> = vec![
        (
            "mse",
            Box::new(|x, y, m| loss::mse(x, y, m, Reduction::Mean)),
        ),
        ("l1", Box::new(|x, y, m| loss::l1(x, y, m, Reduction::Sum))),
        (
            "huber",
            Box::new(|x, y, m| loss::huber(x, y, m, 1.0, Reduction::None)),
        ),
        (
            "smooth_l1",
            Box::new(|x, y, m| loss::smooth_l1(x, y, m, 0.5, Reduction::Mean)),
        ),
        (
            "bce",
            Box::new(|x, y, m| loss::bce_with_logits(x, y, m, None, Reduction::Mean)),
        ),
    ];
    for isa in Isa::all_available() {
        v.push((
            "mse_with",
            Box::new(move |x, y, m| shim::loss::mse_with(isa, x, y, m, Reduction::Sum)),
        ));
        v.push((
            "l1_with",
            Box::new(move |x, y, m| shim::loss::l1_with(isa, x, y, m, Reduction::Mean)),
        ));
        v.push((
            "huber_with",
            Box::new(move |x, y, m| shim::loss::huber_with(isa, x, y, m, 2.0, Reduction::Mean)),
        ));
        v.push((
            "smooth_l1_with",
            Box::new(move |x, y, m| shim::loss::smooth_l1_with(isa, x, y, m, 0.0, Reduction::None)),
        ));
        v.push((
            "bce_with",
            Box::new(move |x, y, m| {
                shim::loss::bce_with_logits_with(isa, x, y, m, None, Reduction::Sum)
            }),
        ));
    }
    v
}

fn elementwise_length_errors<T: Float + std::fmt::Debug>() {
    let x: Vec<T> = (0..70).map(|i| T::from_f64(i as f64 * 0.1)).collect();
    for (name, f) in elementwise_losses::<T>() {
        for (n, t, m) in [
            (4usize, 3usize, 4usize),
            (4, 5, 4),
            (0, 1, 0),
            (70, 69, 70),
            (65, 0, 65),
        ] {
            let r = f(&x[..n], &x[..t], &Mask::ones(m));
            assert!(r.is_err(), "{name}: {n} {t} {m}");
            assert_len(r, "target", n, t);
        }
        for (n, m) in [(4usize, 5usize), (4, 3), (0, 1), (70, 64), (64, 0)] {
            assert_len(f(&x[..n], &x[..n], &Mask::ones(m)), "mask", n, m);
        }
        // consistent lengths pass
        f(&x[..70], &x[..70], &Mask::random(70, 0.5, 1)).unwrap();
        f(&x[..0], &x[..0], &Mask::ones(0)).unwrap();
    }
}

#[test]
fn elementwise_loss_length_errors() {
    elementwise_length_errors::<f32>();
    elementwise_length_errors::<f64>();
}

fn hyper_errors<T: Float + std::fmt::Debug>() {
    let x: Vec<T> = (0..4).map(|i| T::from_f64(i as f64)).collect();
    let m = Mask::ones(4);
    let pos = "finite and > 0";
    let nonneg = "finite and >= 0";
    for d in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_param(loss::huber(&x, &x, &m, d, Reduction::Mean), "delta", d, pos);
        for isa in Isa::all_available() {
            assert_param(
                shim::loss::huber_with(isa, &x, &x, &m, d, Reduction::Sum),
                "delta",
                d,
                pos,
            );
        }
    }
    // delta is checked even when the lengths are fine and nothing is kept
    assert_param(
        loss::huber(&x, &x, &Mask::zeros(4), -2.0, Reduction::None),
        "delta",
        -2.0,
        pos,
    );
    for b in NOT_NONNEG {
        assert_param(
            loss::smooth_l1(&x, &x, &m, b, Reduction::Mean),
            "beta",
            b,
            nonneg,
        );
        for isa in Isa::all_available() {
            assert_param(
                shim::loss::smooth_l1_with(isa, &x, &x, &m, b, Reduction::None),
                "beta",
                b,
                nonneg,
            );
        }
    }
    // beta = 0 (L1) and tiny delta are valid
    loss::smooth_l1(&x, &x, &m, 0.0, Reduction::Mean).unwrap();
    loss::huber(&x, &x, &m, f64::MIN_POSITIVE, Reduction::Mean).unwrap();

    // ECS threshold and shape; Pearson shapes
    for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_param(loss::ecs(&x, 2, 2, t), "threshold", t, "finite");
    }
    loss::ecs(&x, 2, 2, -3.0).unwrap();
    assert_shape(loss::ecs(&x, 3, 2, 0.85), "embedding", 3, 2, 4);
    assert_shape(
        loss::ecs(&x[..0], usize::MAX, 2, 0.85),
        "embedding",
        usize::MAX,
        2,
        0,
    );
    let y: Vec<T> = (0..6).map(|i| T::from_f64(i as f64)).collect();
    assert_shape(loss::pearson(&x, &x, &m, 2, 3), "input", 2, 3, 4);
    assert_len(loss::pearson(&y, &x, &m, 2, 3), "target", 6, 4);
    assert_len(loss::pearson(&y, &y, &m, 3, 2), "mask", 6, 4);
    loss::pearson(&y, &y, &Mask::ones(6), 3, 2).unwrap();
}

#[test]
fn loss_hyper_parameter_errors() {
    hyper_errors::<f32>();
    hyper_errors::<f64>();
}

fn bce_pos_weight_errors<T: Float + std::fmt::Debug>() {
    let x: Vec<T> = (0..6).map(|i| T::from_f64(i as f64 - 3.0)).collect();
    let y: Vec<T> = (0..6).map(|i| T::from_f64((i % 2) as f64)).collect();
    let m = Mask::ones(6);
    let pw: Vec<T> = (0..7).map(|i| T::from_f64(1.0 + i as f64)).collect();
    for p in [0usize, 4, 5, 7] {
        assert_len(
            loss::bce_with_logits(&x, &y, &m, Some(&pw[..p]), Reduction::Mean),
            "pos_weight",
            6,
            p,
        );
        for isa in Isa::all_available() {
            assert_len(
                shim::loss::bce_with_logits_with(isa, &x, &y, &m, Some(&pw[..p]), Reduction::None),
                "pos_weight",
                6,
                p,
            );
        }
    }
    // an empty input with an empty pos_weight is still a bad pos_weight
    assert_len(
        loss::bce_with_logits(
            &x[..0],
            &y[..0],
            &Mask::ones(0),
            Some(&pw[..0]),
            Reduction::Sum,
        ),
        "pos_weight",
        0,
        0,
    );
    for p in [1usize, 2, 3, 6] {
        loss::bce_with_logits(&x, &y, &m, Some(&pw[..p]), Reduction::Mean).unwrap();
    }
    // target / mask lengths are reported before pos_weight
    assert_len(
        loss::bce_with_logits(&x, &y[..5], &m, Some(&pw[..4]), Reduction::Mean),
        "target",
        6,
        5,
    );
    assert_len(
        loss::bce_with_logits(&x, &y, &Mask::ones(7), Some(&pw[..4]), Reduction::Mean),
        "mask",
        6,
        7,
    );
}

#[test]
fn bce_pos_weight_length_errors() {
    bce_pos_weight_errors::<f32>();
    bce_pos_weight_errors::<f64>();
}

/// Cross-entropy, public and per ISA.
fn ce_all<T: Float>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
) -> Vec<Result<loss::Loss<T>>> {
    let mut v = vec![loss::cross_entropy(logits, rows, classes, targets, opts)];
    for isa in Isa::all_available() {
        v.push(shim::loss::cross_entropy_with(
            isa, logits, rows, classes, targets, opts,
        ));
    }
    v
}

#[track_caller]
fn ce_target_err<T: Float + std::fmt::Debug>(
    logits: &[T],
    rows: usize,
    classes: usize,
    targets: &[i64],
    opts: &CrossEntropy<T>,
    row: usize,
    value: i64,
) {
    let parts = [
        format!("`targets`[{row}] = {value}"),
        format!("[0, {classes})"),
        format!("ignore_index {}", opts.ignore_index),
    ];
    for r in ce_all(logits, rows, classes, targets, opts) {
        assert_err(
            r,
            Error::Target {
                row,
                value,
                classes,
                ignore_index: opts.ignore_index,
            },
            &strs(&parts),
        );
    }
}

fn cross_entropy_errors<T: Float + std::fmt::Debug>() {
    let logits: Vec<T> = (0..12).map(|i| T::from_f64((i % 5) as f64 * 0.3)).collect();
    let d = CrossEntropy::<T>::default();

    // shapes and lengths
    for r in ce_all(&logits[..11], 4, 3, &[0, 1, 2, 0], &d) {
        assert_shape(r, "logits", 4, 3, 11);
    }
    for r in ce_all(&logits, usize::MAX, 2, &[0], &d) {
        assert_shape(r, "logits", usize::MAX, 2, 12);
    }
    for r in ce_all(&logits, 4, 3, &[0, 1, 2], &d) {
        assert_len(r, "targets", 4, 3);
    }
    for r in ce_all(&logits, 4, 3, &[0, 1, 2, 0, 1], &d) {
        assert_len(r, "targets", 4, 5);
    }
    for wl in [0usize, 2, 4] {
        let opts = CrossEntropy {
            weight: Some(vec![T::from_f64(1.0); wl]),
            ..Default::default()
        };
        for r in ce_all(&logits, 4, 3, &[0, 1, 2, 0], &opts) {
            assert_len(r, "weight", 3, wl);
        }
    }

    // label smoothing outside [0, 1]
    for ls in [
        -0.1,
        -1e-300,
        1.0000001,
        2.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let opts = CrossEntropy {
            label_smoothing: ls,
            ..Default::default()
        };
        for r in ce_all(&logits, 4, 3, &[0, 1, 2, 0], &opts) {
            assert_param(r, "label_smoothing", ls, "in [0, 1]");
        }
    }
    for ls in [0.0, 0.5, 1.0] {
        let opts = CrossEntropy {
            label_smoothing: ls,
            ..Default::default()
        };
        for r in ce_all(&logits, 4, 3, &[0, 1, 2, 0], &opts) {
            r.unwrap();
        }
    }

    // targets out of range: the first offender, with its row and value
    ce_target_err(&logits, 4, 3, &[0, 3, 1, 2], &d, 1, 3);
    ce_target_err(&logits, 4, 3, &[0, 1, 2, 3], &d, 3, 3);
    ce_target_err(&logits, 4, 3, &[0, 1, 5, -7], &d, 2, 5);
    ce_target_err(&logits, 4, 3, &[-1, 0, 0, 0], &d, 0, -1);
    ce_target_err(&logits, 4, 3, &[0, 0, 0, i64::MIN], &d, 3, i64::MIN);
    ce_target_err(&logits, 4, 3, &[0, i64::MAX, 0, 0], &d, 1, i64::MAX);
    ce_target_err(&logits, 2, 6, &[2, 6], &d, 1, 6);
    ce_target_err(
        &logits,
        12,
        1,
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &d,
        11,
        1,
    );
    // zero classes: every non-ignored target is out of range
    ce_target_err(&logits[..0], 2, 0, &[-100, 0], &d, 1, 0);
    for r in ce_all(&logits[..0], 2, 0, &[-100, -100], &d) {
        r.unwrap();
    }

    // ignore_index interplay: the `-1` trick rejects PyTorch's default -100
    // as a target and vice versa
    let minus1 = CrossEntropy::<T> {
        ignore_index: -1,
        ..Default::default()
    };
    ce_target_err(&logits, 4, 3, &[-1, 0, -100, 1], &minus1, 2, -100);
    ce_target_err(&logits, 4, 3, &[0, -1, 1, -2], &minus1, 3, -2);
    for r in ce_all(&logits, 4, 3, &[-1, 0, -1, 1], &minus1) {
        r.unwrap();
    }
    // all rows ignored: a mean over nothing is 0, not an error
    for r in ce_all(&logits, 4, 3, &[-1, -1, -1, -1], &minus1) {
        let l = r.unwrap();
        assert_eq!(l.value, vec![T::ZERO]);
        assert!(l.grad.iter().all(|g| *g == T::ZERO));
    }
    // an ignore_index inside [0, classes) ignores that class instead
    let in_range = CrossEntropy::<T> {
        ignore_index: 1,
        reduction: Reduction::None,
        ..Default::default()
    };
    for r in ce_all(&logits, 4, 3, &[0, 1, 2, 1], &in_range) {
        let l = r.unwrap();
        assert_eq!(l.value[1], T::ZERO);
        assert_eq!(l.value[3], T::ZERO);
        assert!(l.value[0] != T::ZERO && l.value[2] != T::ZERO);
        assert!(l.grad[3..6].iter().all(|g| *g == T::ZERO));
    }
    ce_target_err(&logits, 4, 3, &[0, 1, -100, 1], &in_range, 2, -100);
    // an ignore_index past the classes is skipped, other big targets are not
    let big = CrossEntropy::<T> {
        ignore_index: 7,
        ..Default::default()
    };
    for r in ce_all(&logits, 4, 3, &[7, 0, 7, 2], &big) {
        r.unwrap();
    }
    ce_target_err(&logits, 4, 3, &[7, 0, 8, 2], &big, 2, 8);
    let min = CrossEntropy::<T> {
        ignore_index: i64::MIN,
        ..Default::default()
    };
    for r in ce_all(&logits, 4, 3, &[i64::MIN, 0, 1, 2], &min) {
        r.unwrap();
    }
    ce_target_err(&logits, 4, 3, &[i64::MIN, -100, 1, 2], &min, 1, -100);
}

#[test]
fn cross_entropy_shape_target_and_smoothing_errors() {
    cross_entropy_errors::<f32>();
    cross_entropy_errors::<f64>();
}

// ---------------------------------------------------------------- Adagrad

const ROWS: usize = 3;
const COLS: usize = 4;
const N: usize = ROWS * COLS;

fn opt() -> Adagrad {
    Adagrad {
        lr: 0.1,
        lr_decay: 0.01,
        weight_decay: 0.05,
        initial_accumulator_value: 0.25,
        eps: 1e-8,
        maximize: false,
    }
}

/// A parameter and a state that has already taken two steps (varied
/// accumulator, step = 2).
fn fresh<P: AdagradElement>() -> (Vec<P>, AdagradState<P::State>) {
    let o = opt();
    let mut p: Vec<P> = (0..N).map(|i| P::from_f64(i as f64 * 0.5 - 2.0)).collect();
    let mut st = o.state::<P::State>(N);
    for k in 0..2 {
        let g: Vec<P> = (0..N)
            .map(|i| P::from_f64(((i * 7 + k * 3) % 11) as f64 * 0.25 - 1.0))
            .collect();
        o.step_dense(&mut p, &g, &mut st).unwrap();
    }
    assert_eq!(st.step, 2);
    (p, st)
}

type Snapshot = (Vec<u64>, Vec<u64>, u64);

fn snapshot<P: AdagradElement>(p: &[P], st: &AdagradState<P::State>) -> Snapshot {
    (
        p.iter().map(|x| x.to_f64().to_bits()).collect(),
        st.sum.iter().map(|x| x.to_f64().to_bits()).collect(),
        st.step,
    )
}

/// Runs `f` on a fresh parameter and state; it must fail with `check`
/// passing on the error, and leave everything bit-for-bit as it was.
#[track_caller]
fn fails_unchanged<P: AdagradElement>(
    what: &str,
    f: impl FnOnce(&mut [P], &mut AdagradState<P::State>) -> Result<()>,
    check: impl FnOnce(Result<()>),
) {
    let (mut p, mut st) = fresh::<P>();
    let before = snapshot(&p, &st);
    let r = f(&mut p, &mut st);
    assert!(r.is_err(), "{what} ({}): expected an error", P::NAME);
    check(r);
    assert_eq!(
        snapshot(&p, &st),
        before,
        "{what} ({}): a failed step changed param or state",
        P::NAME
    );
}

/// Runs `f` on a fresh parameter and state; it must succeed and advance the
/// step (the positive control for every failure case).
#[track_caller]
fn succeeds<P: AdagradElement>(
    what: &str,
    f: impl FnOnce(&mut [P], &mut AdagradState<P::State>) -> Result<()>,
) {
    let (mut p, mut st) = fresh::<P>();
    let before = snapshot(&p, &st);
    f(&mut p, &mut st).unwrap_or_else(|e| panic!("{what} ({}): {e}", P::NAME));
    assert_eq!(st.step, before.2 + 1, "{what}");
    assert_ne!(snapshot(&p, &st).0, before.0, "{what}: nothing was updated");
}

#[derive(Debug, Clone, Copy)]
enum Form {
    Dense,
    Masked,
    Sparse,
    Coo,
    SparseVec,
    Rows,
}

const FORMS: [Form; 6] = [
    Form::Dense,
    Form::Masked,
    Form::Sparse,
    Form::Coo,
    Form::SparseVec,
    Form::Rows,
];

/// One step of `form` with a valid gradient touching many entries, the
/// last one included.
fn valid_step<P: AdagradElement>(
    o: &Adagrad,
    form: Form,
    p: &mut [P],
    st: &mut AdagradState<P::State>,
) -> Result<()> {
    let g = |i: usize| P::from_f64(i as f64 * 0.125 - 0.5);
    match form {
        Form::Dense => {
            let grad: Vec<P> = (0..N).map(g).collect();
            o.step_dense(p, &grad, st)
        }
        Form::Masked => {
            let grad: Vec<P> = (0..N).map(g).collect();
            let m = Mask::from_fn(N, |i| i % 3 != 1);
            o.step_masked(p, &MaskedView::matrix(&grad, &m, ROWS, COLS)?, st)
        }
        Form::Sparse => {
            let t = TriMat::from_triplets(
                (ROWS, COLS),
                vec![0, 2, 1, 2, 0],
                vec![1, 3, 0, 3, 1],
                (0..5).map(g).collect(),
            );
            o.step_sparse(p, ROWS, COLS, &t, st)
        }
        Form::Coo => o.step_coo(
            p,
            ROWS,
            COLS,
            &[0, 2, 1, 2],
            &[1, 3, 0, 3],
            &(0..4).map(g).collect::<Vec<_>>(),
            st,
        ),
        Form::SparseVec => {
            let v = CsVec::new(N, vec![0, 5, N - 1], (1..4).map(g).collect());
            o.step_sparse_vec(p, &v, st)
        }
        Form::Rows => o.step_rows(
            p,
            ROWS,
            COLS,
            &[2, 0, 2],
            &(0..3 * COLS).map(g).collect::<Vec<_>>(),
            st,
        ),
    }
}

fn adagrad_hyper_errors<P: AdagradElement>() {
    type Set = fn(&mut Adagrad, f64);
    let fields: [(&str, Set); 5] = [
        ("lr", |o, v| o.lr = v),
        ("lr_decay", |o, v| o.lr_decay = v),
        ("weight_decay", |o, v| o.weight_decay = v),
        ("eps", |o, v| o.eps = v),
        ("initial_accumulator_value", |o, v| {
            o.initial_accumulator_value = v
        }),
    ];
    for form in FORMS {
        succeeds::<P>(&format!("{form:?}"), |p, st| {
            valid_step(&opt(), form, p, st)
        });
        for (name, set) in fields {
            for v in NOT_NONNEG {
                let mut o = opt();
                set(&mut o, v);
                assert_param(o.validate(), name, v, "finite and >= 0");
                fails_unchanged::<P>(
                    &format!("{form:?} {name} = {v}"),
                    |p, st| valid_step(&o, form, p, st),
                    |r| assert_param(r, name, v, "finite and >= 0"),
                );
            }
            // zero is valid for each of them (lr = 0 changes nothing, so
            // only the step counter is checked)
            let mut o = opt();
            set(&mut o, 0.0);
            let (mut p, mut st) = fresh::<P>();
            valid_step(&o, form, &mut p, &mut st).unwrap();
            assert_eq!(st.step, 3);
        }
        // the step counter cannot advance past u64::MAX
        fails_unchanged::<P>(
            &format!("{form:?} step overflow"),
            |p, st| {
                st.step = u64::MAX;
                let r = valid_step(&opt(), form, p, st);
                assert_eq!(st.step, u64::MAX, "the step counter moved");
                st.step = 2; // restored so the snapshot compares the rest
                r
            },
            |r| match r {
                Err(ref e @ Error::Param { name, .. }) => {
                    assert_eq!(name, "state.step");
                    assert_msg(e, &["`state.step`", &format!("{}", u64::MAX as f64)]);
                }
                other => panic!("{other:?}"),
            },
        );
        // a state of the wrong length
        for len in [0usize, N - 1, N + 1] {
            fails_unchanged::<P>(
                &format!("{form:?} state.sum of {len}"),
                |p, st| {
                    let mut short = st.clone();
                    short.sum.resize(len, <P::State as Element>::from_f64(0.5));
                    let r = valid_step(&opt(), form, p, &mut short);
                    assert_eq!(short.step, 2, "the step counter moved");
                    assert_eq!(&short.sum[..len.min(N)], &st.sum[..len.min(N)]);
                    r
                },
                |r| assert_len(r, "state.sum", N, len),
            );
        }
    }
}

#[test]
fn adagrad_hyper_parameters_and_state() {
    adagrad_hyper_errors::<f32>();
    adagrad_hyper_errors::<f64>();
    adagrad_hyper_errors::<f16>();
    adagrad_hyper_errors::<bf16>();
}

fn adagrad_structure_errors<P: AdagradElement>() {
    let o = opt();
    let one = P::from_f64(1.0);
    let grad = |n: usize| vec![one; n];

    // dense / masked: gradient length
    for n in [0usize, N - 1, N + 1, 2 * N] {
        fails_unchanged::<P>(
            "dense grad",
            |p, st| o.step_dense(p, &grad(n), st),
            |r| assert_len(r, "grad", N, n),
        );
        fails_unchanged::<P>(
            "masked grad",
            |p, st| {
                let g = grad(n);
                let m = Mask::ones(n);
                o.step_masked(p, &MaskedView::new(&g, &m)?, st)
            },
            |r| assert_len(r, "grad", N, n),
        );
    }

    // COO / TriMat: the parameter's shape, the TriMat's shape
    fails_unchanged::<P>(
        "sparse param shape",
        |p, st| {
            let t = TriMat::from_triplets((ROWS + 1, COLS), vec![0], vec![0], vec![one]);
            o.step_sparse(p, ROWS + 1, COLS, &t, st)
        },
        |r| assert_shape(r, "param", ROWS + 1, COLS, N),
    );
    fails_unchanged::<P>(
        "sparse grad.rows",
        |p, st| {
            let t = TriMat::from_triplets(
                (ROWS + 2, COLS),
                vec![0, ROWS + 1],
                vec![0, 1],
                vec![one; 2],
            );
            o.step_sparse(p, ROWS, COLS, &t, st)
        },
        |r| assert_len(r, "grad.rows", ROWS, ROWS + 2),
    );
    fails_unchanged::<P>(
        "sparse grad.cols",
        |p, st| {
            let t = TriMat::from_triplets((ROWS, COLS - 1), vec![0], vec![0], vec![one]);
            o.step_sparse(p, ROWS, COLS, &t, st)
        },
        |r| assert_len(r, "grad.cols", COLS, COLS - 1),
    );
    fails_unchanged::<P>(
        "sparse transposed",
        |p, st| {
            let t = TriMat::from_triplets((COLS, ROWS), vec![3], vec![2], vec![one]);
            o.step_sparse(p, ROWS, COLS, &t, st)
        },
        |r| assert_len(r, "grad.rows", ROWS, COLS),
    );

    // COO: index out of range, detected late (the last of many)
    let many = 50;
    let mut ri: Vec<usize> = (0..many).map(|k| k % ROWS).collect();
    let ci: Vec<usize> = (0..many).map(|k| (k * 3) % COLS).collect();
    let vals = grad(many);
    ri[many - 1] = ROWS;
    fails_unchanged::<P>(
        "coo last row index",
        |p, st| o.step_coo(p, ROWS, COLS, &ri, &ci, &vals, st),
        |r| assert_index(r, "row_inds", ROWS, many - 1, ROWS),
    );
    ri[many - 1] = usize::MAX;
    fails_unchanged::<P>(
        "coo row index usize::MAX",
        |p, st| o.step_coo(p, ROWS, COLS, &ri, &ci, &vals, st),
        |r| assert_index(r, "row_inds", usize::MAX, many - 1, ROWS),
    );
    ri[many - 1] = 0;
    let mut ci2 = ci.clone();
    ci2[many - 1] = COLS + 5;
    ci2[many - 2] = COLS;
    fails_unchanged::<P>(
        "coo col index",
        |p, st| o.step_coo(p, ROWS, COLS, &ri, &ci2, &vals, st),
        |r| assert_index(r, "col_inds", COLS, many - 2, COLS),
    );
    fails_unchanged::<P>(
        "coo col_inds length",
        |p, st| o.step_coo(p, ROWS, COLS, &ri, &ci[..many - 1], &vals, st),
        |r| assert_len(r, "col_inds", many, many - 1),
    );
    fails_unchanged::<P>(
        "coo values length",
        |p, st| o.step_coo(p, ROWS, COLS, &ri, &ci, &vals[..many - 3], st),
        |r| assert_len(r, "values", many, many - 3),
    );
    fails_unchanged::<P>(
        "coo param shape",
        |p, st| o.step_coo(p, COLS, COLS, &ri, &ci, &vals, st),
        |r| assert_shape(r, "param", COLS, COLS, N),
    );
    // the same arrays with every index in range succeed
    succeeds::<P>("coo control", |p, st| {
        o.step_coo(p, ROWS, COLS, &ri, &ci, &vals, st)
    });

    // CsVec: dimension, and (only constructible unsafely) a bad structure
    for dim in [N - 1, N + 1, 0] {
        fails_unchanged::<P>(
            "sparse_vec dim",
            |p, st| o.step_sparse_vec(p, &CsVec::new(dim, vec![], vec![]), st),
            |r| assert_len(r, "grad.dim", N, dim),
        );
    }
    fails_unchanged::<P>(
        "sparse_vec last index",
        |p, st| {
            // SAFETY: sprs's unchecked constructor does no indexing; the last
            // index is deliberately out of range to test maskops' own
            // validation, which never indexes with an unchecked index.
            let v = unsafe {
                CsVec::new_uncheked(N, (0..N).chain([N + 3]).collect(), vec![one; N + 1])
            };
            o.step_sparse_vec(p, &v, st)
        },
        |r| assert_index(r, "grad.indices", N + 3, N, N),
    );
    fails_unchanged::<P>(
        "sparse_vec data length",
        |p, st| {
            // SAFETY: as above; data is deliberately shorter than indices.
            let v = unsafe { CsVec::new_uncheked(N, vec![0, 1, 2], vec![one; 2]) };
            o.step_sparse_vec(p, &v, st)
        },
        |r| assert_len(r, "grad.data", 3, 2),
    );

    // rows: index out of range (late), values length, param shape
    let idx: Vec<usize> = (0..40).map(|k| (k * 2) % ROWS).chain([ROWS]).collect();
    let rv = grad(idx.len() * COLS);
    fails_unchanged::<P>(
        "rows last index",
        |p, st| o.step_rows(p, ROWS, COLS, &idx, &rv, st),
        |r| assert_index(r, "row_indices", ROWS, 40, ROWS),
    );
    succeeds::<P>("rows control", |p, st| {
        o.step_rows(p, ROWS, COLS, &idx[..40], &rv[..40 * COLS], st)
    });
    for vl in [0usize, 40 * COLS - 1, 40 * COLS + 1, 41 * COLS] {
        fails_unchanged::<P>(
            "rows values length",
            |p, st| o.step_rows(p, ROWS, COLS, &idx[..40], &rv[..vl], st),
            |r| assert_shape(r, "values", 40, COLS, vl),
        );
    }
    fails_unchanged::<P>(
        "rows param shape",
        |p, st| o.step_rows(p, ROWS, COLS + 1, &[0], &grad(COLS + 1), st),
        |r| assert_shape(r, "param", ROWS, COLS + 1, N),
    );
    fails_unchanged::<P>(
        "rows param shape overflow",
        |p, st| o.step_rows(p, usize::MAX, 2, &[0], &grad(2), st),
        |r| assert_shape(r, "param", usize::MAX, 2, N),
    );
    // zero-width rows: indices are still checked
    let mut none: Vec<P> = vec![];
    let mut st0 = opt().state::<P::State>(0);
    st0.step = 5;
    let r = o.step_rows(&mut none, ROWS, 0, &[0, ROWS], &[], &mut st0);
    assert_index(r, "row_indices", ROWS, 1, ROWS);
    assert_eq!(st0.step, 5);
}

#[test]
fn adagrad_shape_length_and_index_errors() {
    adagrad_structure_errors::<f32>();
    adagrad_structure_errors::<f64>();
    adagrad_structure_errors::<f16>();
    adagrad_structure_errors::<bf16>();
}

/// A bad hyper-parameter is found only after the whole (valid) gradient has
/// been validated: still nothing changes, even for a long gradient.
#[test]
fn adagrad_late_failure_long_gradient() {
    let n = 10_000;
    let o = Adagrad {
        eps: -1e-10,
        ..opt()
    };
    let mut p: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut st = opt().state::<f32>(n);
    st.step = 7;
    let before = snapshot(&p, &st);
    let idx: Vec<usize> = (0..n).rev().collect();
    let r = o.step_rows(&mut p, n, 1, &idx, &vec![1.0; n], &mut st);
    assert_param(r, "eps", -1e-10, "finite and >= 0");
    let g = vec![1.0f32; n];
    let r = o.step_dense(&mut p, &g, &mut st);
    assert_param(r, "eps", -1e-10, "finite and >= 0");
    assert_eq!(snapshot(&p, &st), before);

    // an out-of-range index at the very end of a long COO gradient
    let o = opt();
    let mut ri: Vec<usize> = (0..n).collect();
    let ci = vec![0usize; n];
    ri[n - 1] = n;
    let r = o.step_coo(&mut p, n, 1, &ri, &ci, &g, &mut st);
    assert_index(r, "row_inds", n, n - 1, n);
    assert_eq!(snapshot(&p, &st), before);
}

/// Every variant's message names what it carries, and `Error` works as a
/// `std::error::Error` behind `?`.
#[test]
fn display_of_every_variant() {
    let cases: [(Error, &[&str]); 10] = [
        (
            Error::Length {
                arg: "target",
                expected: 17,
                actual: 16,
            },
            &["`target`", "16", "17"],
        ),
        (
            Error::Shape {
                arg: "logits",
                rows: 3,
                cols: 5,
                len: 14,
            },
            &["`logits`", "3 x 5", "14"],
        ),
        (
            Error::Dim { dim: 4, ndim: 2 },
            &["`dim`", "4", "2-dimensional"],
        ),
        (
            Error::Target {
                row: 9,
                value: -3,
                classes: 10,
                ignore_index: -100,
            },
            &["`targets`[9] = -3", "[0, 10)", "-100"],
        ),
        (
            Error::Index {
                arg: "col_inds",
                index: 44,
                position: 12,
                bound: 40,
            },
            &["`col_inds`[12] = 44", "[0, 40)"],
        ),
        (
            Error::Param {
                name: "eps",
                value: -0.5,
                expected: "finite and >= 0",
            },
            &["`eps`", "-0.5", "finite and >= 0"],
        ),
        (Error::MaskMismatch { position: 77 }, &["77"]),
        (Error::TailBits { len: 70, bit: 71 }, &["71", "70"]),
        (
            Error::CudaUnavailable("no libcuda".into()),
            &["CUDA", "no libcuda"],
        ),
        (
            Error::Cuda("launch failed".into()),
            &["CUDA", "launch failed"],
        ),
    ];
    for (e, parts) in &cases {
        assert_msg(e, parts);
    }
    fn fails() -> std::result::Result<(), Box<dyn std::error::Error>> {
        Mask::from_words(vec![], 3)?;
        Ok(())
    }
    let e = fails().unwrap_err();
    assert_eq!(e.to_string(), "`words` has length 0, expected 1");
}
