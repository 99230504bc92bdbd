//! Reference masked reductions and softmax: hand-computed answers, properties
//! (proptest) and errors. The public `MaskedView` methods call the reference,
//! so these tests also pin the public behaviour.

use half::{bf16, f16};
use maskops::reference::{reduce as r, softmax as rs};
use maskops::{softmax, Element, Error, Mask, MaskedVec, MaskedView};
use proptest::prelude::*;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;

fn bits(s: &str) -> Mask {
    Mask::from_bools(&s.bytes().map(|b| b == b'1').collect::<Vec<_>>())
}

/// The reference functions behind the view's method names, so that the cases
/// below pin the reference (the oracle) even after the public methods get fast
/// bodies. [`public_api_agrees_with_the_reference`] ties the two together.
#[derive(Clone, Copy)]
struct Rv<'a, T>(MaskedView<'a, T>);

fn view<'a, T: Element>(x: &'a [T], m: &'a Mask) -> Rv<'a, T> {
    Rv(MaskedView::new(x, m).unwrap())
}

fn matrix<'a, T: Element>(x: &'a [T], m: &'a Mask, rows: usize, cols: usize) -> Rv<'a, T> {
    Rv(MaskedView::matrix(x, m, rows, cols).unwrap())
}

type Res<T> = maskops::Result<MaskedVec<T>>;

#[allow(dead_code)]
impl<'a, T: Element> Rv<'a, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn ndim(&self) -> usize {
        self.0.ndim()
    }
    fn rows(&self) -> usize {
        self.0.rows()
    }
    fn cols(&self) -> usize {
        self.0.cols()
    }
    fn sum(&self) -> Option<T> {
        r::sum(&self.0)
    }
    fn mean(&self) -> Option<T> {
        r::mean(&self.0)
    }
    fn prod(&self) -> Option<T> {
        r::prod(&self.0)
    }
    fn amin(&self) -> Option<T> {
        r::amin(&self.0)
    }
    fn amax(&self) -> Option<T> {
        r::amax(&self.0)
    }
    fn argmin(&self) -> Option<usize> {
        r::argmin(&self.0)
    }
    fn argmax(&self) -> Option<usize> {
        r::argmax(&self.0)
    }
    fn var(&self, c: usize) -> Option<T> {
        r::var(&self.0, c)
    }
    fn std(&self, c: usize) -> Option<T> {
        r::std(&self.0, c)
    }
    fn norm(&self, p: f64) -> Option<T> {
        r::norm(&self.0, p)
    }
    fn logsumexp(&self) -> Option<T> {
        r::logsumexp(&self.0)
    }
    fn sum_dim(&self, d: usize) -> Res<T> {
        r::sum_dim(&self.0, d)
    }
    fn mean_dim(&self, d: usize) -> Res<T> {
        r::mean_dim(&self.0, d)
    }
    fn prod_dim(&self, d: usize) -> Res<T> {
        r::prod_dim(&self.0, d)
    }
    fn amin_dim(&self, d: usize) -> Res<T> {
        r::amin_dim(&self.0, d)
    }
    fn amax_dim(&self, d: usize) -> Res<T> {
        r::amax_dim(&self.0, d)
    }
    fn argmin_dim(&self, d: usize) -> Res<usize> {
        r::argmin_dim(&self.0, d)
    }
    fn argmax_dim(&self, d: usize) -> Res<usize> {
        r::argmax_dim(&self.0, d)
    }
    fn var_dim(&self, d: usize, c: usize) -> Res<T> {
        r::var_dim(&self.0, d, c)
    }
    fn std_dim(&self, d: usize, c: usize) -> Res<T> {
        r::std_dim(&self.0, d, c)
    }
    fn norm_dim(&self, d: usize, p: f64) -> Res<T> {
        r::norm_dim(&self.0, d, p)
    }
    fn logsumexp_dim(&self, d: usize) -> Res<T> {
        r::logsumexp_dim(&self.0, d)
    }
    fn softmax(&self, d: usize) -> Res<T> {
        rs::softmax(&self.0, d)
    }
    fn log_softmax(&self, d: usize) -> Res<T> {
        rs::log_softmax(&self.0, d)
    }
    fn softmax_backward(&self, dy: &[T], d: usize) -> Res<T> {
        rs::softmax_backward(&self.0, dy, d)
    }
    fn log_softmax_backward(&self, dy: &[T], d: usize) -> Res<T> {
        rs::log_softmax_backward(&self.0, dy, d)
    }
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * (1.0 + b.abs()),
        "{what}: {a} vs {b} (tol {tol})"
    );
}

fn kept_of(v: &MaskedVec<f64>) -> Vec<Option<f64>> {
    (0..v.len()).map(|i| v.get(i)).collect()
}

// ---------------------------------------------------------------------------
// hand-computed: whole view
// ---------------------------------------------------------------------------

#[test]
fn whole_view_known_answers_with_poison() {
    // kept: 2, -1, 4, 0.5 ; masked out: NaN, inf, -inf, 1e300
    let x = [2.0, NAN, -1.0, INF, 4.0, -INF, 0.5, 1e300];
    let m = bits("10101010");
    let v = view(&x, &m);
    assert_eq!(v.sum(), Some(5.5));
    assert_eq!(v.mean(), Some(1.375));
    assert_eq!(v.prod(), Some(-4.0));
    assert_eq!(v.amin(), Some(-1.0));
    assert_eq!(v.amax(), Some(4.0));
    assert_eq!(v.argmin(), Some(2));
    assert_eq!(v.argmax(), Some(4));
    // deviations from 1.375: 0.625, -2.375, 2.625, -0.875 -> ss = 13.6875
    assert_eq!(v.var(0), Some(13.6875 / 4.0));
    assert_eq!(v.var(1), Some(13.6875 / 3.0));
    assert_eq!(v.var(3), Some(13.6875));
    assert_eq!(v.var(4), None);
    assert_eq!(v.std(1), Some((13.6875f64 / 3.0).sqrt()));
    assert_eq!(v.std(4), None);
    assert_eq!(v.norm(1.0), Some(7.5));
    assert_eq!(v.norm(2.0), Some(21.25f64.sqrt()));
    assert_eq!(v.norm(INF), Some(4.0));
    assert_eq!(v.norm(-INF), Some(0.5));
    assert_eq!(v.norm(0.0), Some(4.0));
    let p3 = (8.0f64 + 1.0 + 64.0 + 0.125).powf(1.0 / 3.0);
    assert_eq!(v.norm(3.0), Some(p3));
    let lse = (2f64.exp() + (-1f64).exp() + 4f64.exp() + 0.5f64.exp()).ln();
    assert_close(v.logsumexp().unwrap(), lse, 1e-15, "logsumexp");
}

#[test]
fn nothing_kept_is_none_never_nan() {
    let x = [NAN, 1.0, INF];
    let m = Mask::zeros(3);
    let v = view(&x, &m);
    assert_eq!(v.sum(), None);
    assert_eq!(v.mean(), None);
    assert_eq!(v.prod(), None);
    assert_eq!(v.amin(), None);
    assert_eq!(v.amax(), None);
    assert_eq!(v.argmin(), None);
    assert_eq!(v.argmax(), None);
    assert_eq!(v.var(0), None);
    assert_eq!(v.std(0), None);
    assert_eq!(v.norm(2.0), None);
    assert_eq!(v.norm(0.0), None);
    assert_eq!(v.logsumexp(), None);
    // empty view
    let e: [f32; 0] = [];
    let em = Mask::zeros(0);
    let ev = view(&e, &em);
    assert_eq!(ev.sum(), None);
    assert_eq!(ev.argmax(), None);
    let d = ev.sum_dim(0).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.get(0), None);
    assert_eq!(d.values, vec![0.0]);
}

#[test]
fn ties_resolve_to_first_index() {
    let x = [3.0f32, 1.0, 7.0, 1.0, 7.0, 0.0];
    let m = bits("111110");
    let v = view(&x, &m);
    assert_eq!(v.argmin(), Some(1));
    assert_eq!(v.argmax(), Some(2));
    // 2x3: rows [3 1 7] [1 7 (0 masked)]
    let v2 = matrix(&x, &m, 2, 3);
    assert_eq!(v2.argmax_dim(1).unwrap().values, vec![2, 1]);
    assert_eq!(v2.argmin_dim(1).unwrap().values, vec![1, 0]);
    // columns: [3,1] [1,7] [7,-]
    assert_eq!(v2.argmin_dim(0).unwrap().values, vec![1, 0, 0]);
    assert_eq!(v2.argmax_dim(0).unwrap().values, vec![0, 1, 0]);
    // equal values everywhere: first kept
    let y = [5.0f64; 4];
    let my = bits("0111");
    let vy = view(&y, &my);
    assert_eq!(vy.argmin(), Some(1));
    assert_eq!(vy.argmax(), Some(1));
}

#[test]
fn kept_nan_propagates() {
    let x = [1.0, NAN, 5.0, NAN, -2.0];
    let m = Mask::ones(5);
    let v = view(&x, &m);
    assert!(v.amin().unwrap().is_nan());
    assert!(v.amax().unwrap().is_nan());
    assert_eq!(v.argmin(), Some(1));
    assert_eq!(v.argmax(), Some(1));
    assert!(v.sum().unwrap().is_nan());
    assert!(v.mean().unwrap().is_nan());
    assert!(v.var(1).unwrap().is_nan());
    assert!(v.norm(2.0).unwrap().is_nan());
    assert!(v.norm(INF).unwrap().is_nan());
    assert!(v.norm(-INF).unwrap().is_nan());
    assert_eq!(v.norm(0.0), Some(5.0)); // NaN != 0 counts as nonzero
    assert!(v.logsumexp().unwrap().is_nan());
    // the same NaNs masked out do not matter
    let m2 = bits("10101");
    let v2 = view(&x, &m2);
    assert_eq!(v2.amax(), Some(5.0));
    assert_eq!(v2.argmax(), Some(2));
    assert_eq!(v2.sum(), Some(4.0));
}

#[test]
fn large_mean_variance_is_accurate() {
    // mean 1e6, std 1 (population): the naive one-pass formula fails in f32.
    let n = 1000;
    let x32: Vec<f32> = (0..n)
        .map(|i| if i % 2 == 0 { 1e6 - 1.0 } else { 1e6 + 1.0 })
        .collect();
    let m = Mask::ones(n);
    let v = view(&x32, &m);
    assert_eq!(v.mean(), Some(1e6));
    assert_eq!(v.var(0), Some(1.0));
    assert_eq!(v.std(0), Some(1.0));
    assert_eq!(v.var(1), Some((n as f64 / (n as f64 - 1.0)) as f32));
    let x64: Vec<f64> = x32.iter().map(|&a| a as f64 + 1e9).collect();
    let v64 = view(&x64, &m);
    assert_eq!(v64.std(0), Some(1.0));
    // bf16 cannot hold 1e6 +- 1; f16 overflows 1e6: check a smaller case
    let xh: Vec<f16> = (0..64)
        .map(|i| f16::from_f64(if i % 2 == 0 { 1999.0 } else { 2001.0 }))
        .collect();
    let mh = Mask::ones(64);
    assert_eq!(view(&xh, &mh).std(0), Some(f16::from_f64(1.0)));
}

#[test]
fn norm_orders() {
    let x = [0.0f64, -3.0, 4.0, 0.0, 9.0];
    let m = bits("11110"); // kept 0, -3, 4, 0
    let v = view(&x, &m);
    assert_eq!(v.norm(0.0), Some(2.0));
    assert_eq!(v.norm(2.0), Some(5.0));
    assert_eq!(v.norm(INF), Some(4.0));
    assert_eq!(v.norm(-INF), Some(0.0));
    assert_eq!(v.norm(0.5), Some((3f64.sqrt() + 2.0).powi(2)));
    // negative order: a kept zero makes it 0 (torch.linalg.vector_norm)
    assert_eq!(v.norm(-1.0), Some(0.0));
    let m2 = bits("01100"); // kept -3, 4
    let v2 = view(&x, &m2);
    assert_close(
        v2.norm(-1.0).unwrap(),
        1.0 / (1.0 / 3.0 + 0.25),
        1e-15,
        "p=-1",
    );
    assert_close(
        v2.norm(-2.5).unwrap(),
        (3f64.powf(-2.5) + 4f64.powf(-2.5)).powf(-1.0 / 2.5),
        1e-15,
        "p=-2.5",
    );
    // NaN order: None / Err(Param)
    assert_eq!(v.norm(NAN), None);
    let m4 = m.slice(0, 4).unwrap();
    let mx = matrix(&x[..4], &m4, 2, 2);
    match mx.norm_dim(1, NAN) {
        Err(Error::Param { name, .. }) => assert_eq!(name, "p"),
        other => panic!("expected Param error, got {other:?}"),
    }
    assert_eq!(mx.norm_dim(1, 1.0).unwrap().values, vec![3.0, 4.0]);
}

#[test]
fn logsumexp_edge_cases() {
    let x = [-INF, -INF, 7.0];
    let m = bits("110");
    assert_eq!(view(&x, &m).logsumexp(), Some(-INF));
    let big = [1000.0f32, 1000.0];
    let mb = Mask::ones(2);
    let got = view(&big, &mb).logsumexp().unwrap();
    assert_eq!(got, (1000.0 + 2f64.ln()) as f32);
    let withinf = [INF, 1.0, -INF];
    let mi = Mask::ones(3);
    assert_eq!(view(&withinf, &mi).logsumexp(), Some(INF));
    let mixed = [-INF, 0.0];
    let mm = Mask::ones(2);
    assert_eq!(view(&mixed, &mm).logsumexp(), Some(0.0));
}

// ---------------------------------------------------------------------------
// hand-computed: per dim
// ---------------------------------------------------------------------------

#[test]
fn per_dim_known_answers_fully_masked_row_and_column() {
    // 3 x 4, row 1 fully masked, column 3 fully masked, poison under masks
    #[rustfmt::skip]
    let x = [
        1.0, 2.0,  3.0, NAN,
        INF, NAN, -INF, 5.0,
        4.0, -6.0, 0.5, 1e308,
    ];
    #[rustfmt::skip]
    let m = bits(concat!(
        "1110",
        "0000",
        "1110",
    ));
    let v = matrix(&x, &m, 3, 4);
    let s1 = v.sum_dim(1).unwrap();
    assert_eq!(kept_of(&s1), vec![Some(6.0), None, Some(-1.5)]);
    assert_eq!(s1.values, vec![6.0, 0.0, -1.5]);
    let s0 = v.sum_dim(0).unwrap();
    assert_eq!(kept_of(&s0), vec![Some(5.0), Some(-4.0), Some(3.5), None]);
    assert_eq!(s0.values[3], 0.0);
    assert_eq!(
        kept_of(&v.mean_dim(1).unwrap()),
        vec![Some(2.0), None, Some(-0.5)]
    );
    assert_eq!(
        kept_of(&v.prod_dim(0).unwrap()),
        vec![Some(4.0), Some(-12.0), Some(1.5), None]
    );
    assert_eq!(
        kept_of(&v.amin_dim(1).unwrap()),
        vec![Some(1.0), None, Some(-6.0)]
    );
    assert_eq!(
        kept_of(&v.amax_dim(0).unwrap()),
        vec![Some(4.0), Some(2.0), Some(3.0), None]
    );
    let am = v.argmax_dim(1).unwrap();
    assert_eq!(am.values, vec![2, 0, 0]);
    assert!(am.mask.get(0) && !am.mask.get(1) && am.mask.get(2));
    let an = v.argmin_dim(0).unwrap();
    assert_eq!(an.values, vec![0, 2, 2, 0]);
    assert_eq!(an.mask, bits("1110"));
    // var per row: [1,2,3] -> 1 (corr 1); [4,-6,0.5] mean -0.5, ss 20.25+30.25+1 = 51.5
    assert_eq!(
        kept_of(&v.var_dim(1, 1).unwrap()),
        vec![Some(1.0), None, Some(25.75)]
    );
    // per column: two kept each, correction 2 -> all cleared
    let vc = v.var_dim(0, 2).unwrap();
    assert_eq!(vc.mask.count_ones(), 0);
    assert_eq!(vc.values, vec![0.0; 4]);
    assert_eq!(
        kept_of(&v.std_dim(0, 0).unwrap()),
        vec![Some(1.5), Some(4.0), Some(1.25), None]
    );
    assert_eq!(
        kept_of(&v.norm_dim(1, INF).unwrap()),
        vec![Some(3.0), None, Some(6.0)]
    );
    let l = v.logsumexp_dim(0).unwrap();
    assert_eq!(l.mask, bits("1110"));
    assert_close(
        l.values[0],
        (1f64.exp() + 4f64.exp()).ln(),
        1e-15,
        "lse col 0",
    );
}

#[test]
fn one_d_dim0_reduces_everything_and_dim1_is_an_error() {
    let x = [1.0f32, 2.0, f32::NAN];
    let m = bits("110");
    let v = view(&x, &m);
    let s = v.sum_dim(0).unwrap();
    assert_eq!(s.values, vec![3.0]);
    assert_eq!(s.mask, Mask::ones(1));
    assert_eq!(v.argmax_dim(0).unwrap().values, vec![1]);
    assert_eq!(v.sum_dim(1), Err(Error::Dim { dim: 1, ndim: 1 }));
    assert_eq!(v.softmax(1), Err(Error::Dim { dim: 1, ndim: 1 }));
}

#[test]
fn bad_dim_errors_everywhere() {
    let x = [1.0f64; 6];
    let m = Mask::ones(6);
    let v = matrix(&x, &m, 2, 3);
    let e = Err(Error::Dim { dim: 2, ndim: 2 });
    assert_eq!(v.sum_dim(2), e);
    assert_eq!(v.mean_dim(2), e);
    assert_eq!(v.prod_dim(2), e);
    assert_eq!(v.amin_dim(2), e);
    assert_eq!(v.amax_dim(2), e);
    assert_eq!(v.var_dim(2, 1), e);
    assert_eq!(v.std_dim(2, 1), e);
    assert_eq!(v.norm_dim(2, 2.0), e);
    assert_eq!(v.logsumexp_dim(2), e);
    assert_eq!(v.softmax(2), e);
    assert_eq!(v.log_softmax(2), e);
    assert_eq!(v.argmin_dim(5), Err(Error::Dim { dim: 5, ndim: 2 }));
    assert_eq!(v.argmax_dim(2), Err(Error::Dim { dim: 2, ndim: 2 }));
    assert_eq!(v.softmax_backward(&x, 2), e);
    assert_eq!(
        v.log_softmax_backward(&x, 7),
        Err(Error::Dim { dim: 7, ndim: 2 })
    );
}

#[test]
fn shape_errors() {
    let x = [1.0f32; 6];
    let m = Mask::ones(6);
    assert!(matches!(
        MaskedView::matrix(&x, &m, 4, 2),
        Err(Error::Shape {
            rows: 4,
            cols: 2,
            len: 6,
            ..
        })
    ));
    let m5 = Mask::ones(5);
    assert!(matches!(
        MaskedView::new(&x, &m5),
        Err(Error::Length {
            expected: 6,
            actual: 5,
            ..
        })
    ));
    let v = matrix(&x, &m, 2, 3);
    assert_eq!(
        v.softmax_backward(&[1.0; 5], 1),
        Err(Error::Length {
            arg: "grad_output",
            expected: 6,
            actual: 5
        })
    );
    assert_eq!(
        v.log_softmax_backward(&[1.0; 7], 0),
        Err(Error::Length {
            arg: "grad_output",
            expected: 6,
            actual: 7
        })
    );
}

// ---------------------------------------------------------------------------
// softmax
// ---------------------------------------------------------------------------

#[test]
fn softmax_known_answers() {
    #[rustfmt::skip]
    let x = [
        0.0, 2f64.ln(), NAN,
        INF, NAN, -INF,
        1.0, 1.0, 1.0,
    ];
    let m = bits("110000111");
    let v = matrix(&x, &m, 3, 3);
    let y = v.softmax(1).unwrap();
    assert_eq!(y.mask, m);
    assert_close(y.values[0], 1.0 / 3.0, 1e-15, "y0");
    assert_close(y.values[1], 2.0 / 3.0, 1e-15, "y1");
    assert_eq!(&y.values[2..6], &[0.0; 4]);
    for k in 6..9 {
        assert_close(y.values[k], 1.0 / 3.0, 1e-15, "uniform");
    }
    let ly = v.log_softmax(1).unwrap();
    assert_eq!(ly.mask, m);
    assert_close(ly.values[0], -(3f64.ln()), 1e-15, "ly0");
    assert_close(ly.values[1], (2.0f64 / 3.0).ln(), 1e-15, "ly1");
    assert_eq!(&ly.values[2..6], &[0.0; 4]);
    // dim 0: columns [0, 1] (row 1 masked), [ln2, 1], [1]
    let y0 = v.softmax(0).unwrap();
    assert_close(y0.values[0], 1.0 / (1.0 + 1f64.exp()), 1e-15, "col0");
    assert_close(
        y0.values[6],
        1f64.exp() / (1.0 + 1f64.exp()),
        1e-15,
        "col0b",
    );
    assert_eq!(y0.values[8], 1.0);
    assert_eq!(y0.values[2], 0.0);
    // a fully masked column
    let mc = bits("110110110");
    let vc = matrix(&[1.0f32; 9], &mc, 3, 3);
    let yc = vc.softmax(0).unwrap();
    assert_eq!(yc.mask, mc);
    assert_eq!(yc.to_dense(-1.0), {
        let t = 1.0f32 / 3.0;
        vec![t, t, -1.0, t, t, -1.0, t, t, -1.0]
    });
    // torch: kept values all -inf -> NaN
    let ninf = [-INF, -INF];
    let mn = Mask::ones(2);
    let yn = view(&ninf, &mn).softmax(0).unwrap();
    assert!(yn.values.iter().all(|a| a.is_nan()));
}

/// `L = sum_kept(dy * f(x))`; the analytic gradient must match central
/// differences on every kept input (masked-out inputs have gradient 0).
fn check_backward_fd(x: &[f64], m: &Mask, rows: usize, cols: usize, dy: &[f64], dim: usize) {
    let v = matrix(x, m, rows, cols);
    for log in [false, true] {
        let f = |xs: &[f64]| -> f64 {
            let vv = matrix(xs, m, rows, cols);
            let y = if log {
                vv.log_softmax(dim).unwrap()
            } else {
                vv.softmax(dim).unwrap()
            };
            m.iter_ones().map(|i| dy[i] * y.values[i]).sum()
        };
        let y = if log {
            v.log_softmax(dim).unwrap()
        } else {
            v.softmax(dim).unwrap()
        };
        let yv = matrix(&y.values, &y.mask, rows, cols);
        let dx = if log {
            yv.log_softmax_backward(dy, dim).unwrap()
        } else {
            yv.softmax_backward(dy, dim).unwrap()
        };
        assert_eq!(dx.mask, *m);
        let h = 1e-6;
        for i in 0..x.len() {
            if !m.get(i) {
                assert_eq!(dx.values[i], 0.0);
                continue;
            }
            let mut xp = x.to_vec();
            xp[i] += h;
            let mut xm = x.to_vec();
            xm[i] -= h;
            let fd = (f(&xp) - f(&xm)) / (2.0 * h);
            assert!(
                (fd - dx.values[i]).abs() < 1e-6,
                "log={log} dim={dim} i={i}: fd {fd} vs {}",
                dx.values[i]
            );
        }
    }
}

#[test]
fn softmax_backward_matches_finite_differences() {
    #[rustfmt::skip]
    let x = [
        0.3, -1.2, 2.0, NAN,
        INF, NAN, -INF, 1e300,
        1.5, 0.0, -0.7, 0.2,
    ];
    let m = bits("111000001111");
    let dy = [
        0.5, -1.0, 2.0, NAN, 9.0, INF, NAN, 1.0, -0.3, 0.8, 0.1, -2.0,
    ];
    check_backward_fd(&x, &m, 3, 4, &dy, 1);
    check_backward_fd(&x, &m, 3, 4, &dy, 0);
}

#[test]
fn softmax_backward_known_answer() {
    // y = [0.25, 0.75], dy = [1, 0]: dx = y*(dy - 0.25) = [0.1875, -0.1875]
    let y = [0.25f32, 0.75, 123.0];
    let m = bits("110");
    let yv = view(&y, &m);
    let dx = yv.softmax_backward(&[1.0, 0.0, f32::NAN], 0).unwrap();
    assert_eq!(dx.values, vec![0.1875, -0.1875, 0.0]);
    // log-softmax: y = ln[0.25, 0.75], dy = [1, 1]: dx = 1 - p*2 = [0.5, -0.5]
    let ly = [0.25f64.ln(), 0.75f64.ln(), NAN];
    let lv = view(&ly, &m);
    let ldx = lv.log_softmax_backward(&[1.0, 1.0, INF], 0).unwrap();
    assert_close(ldx.values[0], 0.5, 1e-15, "ldx0");
    assert_close(ldx.values[1], -0.5, 1e-15, "ldx1");
    assert_eq!(ldx.values[2], 0.0);
    // fully masked row: zeros, cleared
    let m0 = Mask::zeros(2);
    let z = matrix(&y[..2], &m0, 1, 2);
    let dz = z.softmax_backward(&[1.0, 1.0], 1).unwrap();
    assert_eq!(dz.values, vec![0.0, 0.0]);
    assert_eq!(dz.mask.count_ones(), 0);
}

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

/// All reductions (whole and per dim) plus softmax outputs of a view, widened
/// to f64, as one comparable record (bit patterns so NaN == NaN).
fn everything<T: Element>(v: &Rv<T>) -> Vec<Option<u64>> {
    let w = |o: Option<T>| o.map(|a| a.to_f64().to_bits());
    let wi = |o: Option<usize>| o.map(|a| a as u64);
    let mut out = vec![
        w(v.sum()),
        w(v.mean()),
        w(v.prod()),
        w(v.amin()),
        w(v.amax()),
        wi(v.argmin()),
        wi(v.argmax()),
        w(v.var(0)),
        w(v.var(1)),
        w(v.std(1)),
        w(v.norm(0.0)),
        w(v.norm(1.0)),
        w(v.norm(2.0)),
        w(v.norm(3.5)),
        w(v.norm(-1.5)),
        w(v.norm(f64::INFINITY)),
        w(v.norm(f64::NEG_INFINITY)),
        w(v.logsumexp()),
    ];
    let dv =
        |mv: MaskedVec<T>| -> Vec<Option<u64>> { (0..mv.len()).map(|i| w(mv.get(i))).collect() };
    let di = |mv: MaskedVec<usize>| -> Vec<Option<u64>> {
        (0..mv.len()).map(|i| wi(mv.get(i))).collect()
    };
    for dim in 0..v.ndim() {
        out.extend(dv(v.sum_dim(dim).unwrap()));
        out.extend(dv(v.mean_dim(dim).unwrap()));
        out.extend(dv(v.prod_dim(dim).unwrap()));
        out.extend(dv(v.amin_dim(dim).unwrap()));
        out.extend(dv(v.amax_dim(dim).unwrap()));
        out.extend(di(v.argmin_dim(dim).unwrap()));
        out.extend(di(v.argmax_dim(dim).unwrap()));
        out.extend(dv(v.var_dim(dim, 1).unwrap()));
        out.extend(dv(v.std_dim(dim, 0).unwrap()));
        out.extend(dv(v.norm_dim(dim, 2.0).unwrap()));
        out.extend(dv(v.norm_dim(dim, 0.5).unwrap()));
        out.extend(dv(v.logsumexp_dim(dim).unwrap()));
        let y = v.softmax(dim).unwrap();
        // values under cleared bits must be exactly 0
        assert!((0..y.len()).all(|i| y.mask.get(i) || y.values[i] == T::ZERO));
        out.extend(y.values.iter().map(|a| Some(a.to_f64().to_bits())));
        let ly = v.log_softmax(dim).unwrap();
        assert!((0..ly.len()).all(|i| ly.mask.get(i) || ly.values[i] == T::ZERO));
        out.extend(ly.values.iter().map(|a| Some(a.to_f64().to_bits())));
        // backward through the forward outputs, with a fixed upstream gradient
        let dy: Vec<T> = (0..v.len())
            .map(|i| T::from_f64(((i % 7) as f64 - 3.0) / 4.0))
            .collect();
        let yv = reshape(&y.values, &y.mask, v);
        let g = yv.softmax_backward(&dy, dim).unwrap();
        out.extend(g.values.iter().map(|a| Some(a.to_f64().to_bits())));
        let lyv = reshape(&ly.values, &ly.mask, v);
        let lg = lyv.log_softmax_backward(&dy, dim).unwrap();
        out.extend(lg.values.iter().map(|a| Some(a.to_f64().to_bits())));
    }
    out
}

/// A view of `values` with `like`'s shape (and number of dims).
fn reshape<'a, T: Element>(values: &'a [T], mask: &'a Mask, like: &Rv<T>) -> Rv<'a, T> {
    if like.ndim() == 1 {
        view(values, mask)
    } else {
        matrix(values, mask, like.rows(), like.cols())
    }
}

/// A matrix (rows, cols, values, keep bits) with finite values in a moderate range.
fn matrix_case() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<bool>)> {
    (0usize..7, 0usize..70).prop_flat_map(|(rows, cols)| {
        let n = rows * cols;
        (
            Just(rows),
            Just(cols),
            prop::collection::vec(-100.0f64..100.0, n),
            prop::collection::vec(prop::bool::weighted(0.7), n),
        )
    })
}

/// Values that are exactly representable in f16 and bf16 (k/8, |k| <= 256).
fn half_case() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<bool>)> {
    (1usize..6, 1usize..40).prop_flat_map(|(rows, cols)| {
        let n = rows * cols;
        (
            Just(rows),
            Just(cols),
            prop::collection::vec((-256i32..=256).prop_map(|k| k as f64 / 8.0), n),
            prop::collection::vec(prop::bool::weighted(0.7), n),
        )
    })
}

fn poison(i: usize) -> f64 {
    [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -0.0,
        65504.0,
    ][i % 6]
}

fn cast<T: Element>(x: &[f64]) -> Vec<T> {
    x.iter().map(|&a| T::from_f64(a)).collect()
}

/// `got` (computed on T) equals `exact` (computed on f64) rounded once to T.
fn rounds_once<T: Element>(got: Option<T>, exact: Option<f64>, what: &str) {
    match (got, exact) {
        (None, None) => {}
        (Some(g), Some(e)) => {
            let want = T::from_f64(e);
            assert!(
                g.to_f64().to_bits() == want.to_f64().to_bits() || (g.is_nan() && want.is_nan()),
                "{what} ({}): {g:?} vs {want:?}",
                T::NAME
            );
        }
        (g, e) => panic!("{what}: {g:?} vs {e:?}"),
    }
}

/// Ops on the same values in T and in f64: T's result is f64's rounded once.
fn check_round_once<T: Element>(rows: usize, cols: usize, x: &[f64], m: &Mask) {
    let xt: Vec<T> = cast(x);
    let xw: Vec<f64> = xt.iter().map(|a| a.to_f64()).collect(); // exact widening
    let vt = matrix(&xt, m, rows, cols);
    let vw = matrix(&xw, m, rows, cols);
    rounds_once(vt.sum(), vw.sum(), "sum");
    rounds_once(vt.mean(), vw.mean(), "mean");
    rounds_once(vt.prod(), vw.prod(), "prod");
    rounds_once(vt.amin(), vw.amin(), "amin");
    rounds_once(vt.var(1), vw.var(1), "var");
    rounds_once(vt.std(0), vw.std(0), "std");
    rounds_once(vt.norm(2.0), vw.norm(2.0), "norm2");
    rounds_once(vt.norm(1.5), vw.norm(1.5), "norm1.5");
    rounds_once(vt.logsumexp(), vw.logsumexp(), "lse");
    assert_eq!(vt.argmax(), vw.argmax());
    for dim in 0..2 {
        let a = vt.mean_dim(dim).unwrap();
        let b = vw.mean_dim(dim).unwrap();
        assert_eq!(a.mask, b.mask);
        for i in 0..a.len() {
            rounds_once(a.get(i), b.get(i), "mean_dim");
        }
        let a = vt.softmax(dim).unwrap();
        let b = vw.softmax(dim).unwrap();
        for i in 0..a.len() {
            rounds_once(Some(a.values[i]), Some(b.values[i]), "softmax");
        }
    }
}

/// `|a - b| <= k` units in the last place of T at `b`'s magnitude.
fn within_ulps(a: f64, b: f64, mant_bits: i32, min_exp: i32, k: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let e = if b == 0.0 {
        min_exp
    } else {
        (b.abs().log2().floor() as i32).max(min_exp)
    };
    (a - b).abs() <= k * 2f64.powi(e - mant_bits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn per_dim_sums_add_up_to_the_total((rows, cols, x, keep) in matrix_case()) {
        let m = Mask::from_bools(&keep);
        let v = matrix(&x, &m, rows, cols);
        let total = v.sum();
        for dim in 0..2 {
            let d = v.sum_dim(dim).unwrap();
            prop_assert_eq!(d.len(), if dim == 1 { rows } else { cols });
            let kept: Vec<f64> = (0..d.len()).filter_map(|i| d.get(i)).collect();
            match total {
                None => prop_assert!(kept.is_empty()),
                Some(t) => {
                    let s: f64 = kept.iter().sum();
                    let mag: f64 = x.iter().map(|a| a.abs()).sum();
                    prop_assert!((s - t).abs() <= 1e-12 * (1.0 + mag), "{} vs {}", s, t);
                }
            }
            // a row/column has a bit iff something in it is kept
            for (o, bit) in (0..d.len()).map(|o| (o, d.mask.get(o))) {
                let any = if dim == 1 {
                    (0..cols).any(|c| keep[o * cols + c])
                } else {
                    (0..rows).any(|r| keep[r * cols + o])
                };
                prop_assert_eq!(bit, any);
            }
        }
    }

    #[test]
    fn masked_out_values_never_matter((rows, cols, x, keep) in matrix_case(), off in 0usize..6) {
        let m = Mask::from_bools(&keep);
        let poisoned: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &a)| if keep[i] { a } else { poison(i + off) })
            .collect();
        let a = everything(&matrix(&x, &m, rows, cols));
        let b = everything(&matrix(&poisoned, &m, rows, cols));
        prop_assert_eq!(a, b);
        let x32: Vec<f32> = cast(&x);
        let p32: Vec<f32> = cast(&poisoned);
        let a = everything(&matrix(&x32, &m, rows, cols));
        let b = everything(&matrix(&p32, &m, rows, cols));
        prop_assert_eq!(a, b);
        let flat = everything(&view(&x, &m));
        let flatp = everything(&view(&poisoned, &m));
        prop_assert_eq!(flat, flatp);
    }

    #[test]
    fn transpose_swaps_dims((rows, cols, x, keep) in matrix_case()) {
        let m = Mask::from_bools(&keep);
        let xt: Vec<f64> = (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect();
        let mt = Mask::from_fn(rows * cols, |i| keep[(i % rows) * cols + i / rows]);
        let v = matrix(&x, &m, rows, cols);
        let vt = matrix(&xt, &mt, cols, rows);
        for dim in 0..2 {
            prop_assert_eq!(v.sum_dim(dim).unwrap(), vt.sum_dim(1 - dim).unwrap());
            prop_assert_eq!(v.var_dim(dim, 1).unwrap(), vt.var_dim(1 - dim, 1).unwrap());
            prop_assert_eq!(v.argmax_dim(dim).unwrap(), vt.argmax_dim(1 - dim).unwrap());
            prop_assert_eq!(v.logsumexp_dim(dim).unwrap(), vt.logsumexp_dim(1 - dim).unwrap());
        }
        // whole-view results that do not depend on the order
        prop_assert_eq!(v.amax(), vt.amax());
        prop_assert_eq!(v.norm(f64::INFINITY), vt.norm(f64::INFINITY));
    }

    #[test]
    fn whole_view_matches_kept_values((rows, cols, x, keep) in matrix_case()) {
        let m = Mask::from_bools(&keep);
        let v = matrix(&x, &m, rows, cols);
        let k: Vec<f64> = m.iter_ones().map(|i| x[i]).collect();
        // a dense 1-D view of just the kept values gives the same answers
        let all = Mask::ones(k.len());
        let d = view(&k, &all);
        prop_assert_eq!(v.sum(), d.sum());
        prop_assert_eq!(v.var(1), d.var(1));
        prop_assert_eq!(v.norm(3.0), d.norm(3.0));
        prop_assert_eq!(v.logsumexp(), d.logsumexp());
        prop_assert_eq!(v.argmin().map(|i| m.iter_ones().position(|j| j == i).unwrap()), d.argmin());
        if let (Some(lo), Some(hi), Some(mean)) = (v.amin(), v.amax(), v.mean()) {
            prop_assert!(lo <= mean + 1e-9 && mean <= hi + 1e-9);
            prop_assert_eq!(Some(x[v.argmin().unwrap()]), Some(lo));
            prop_assert_eq!(Some(x[v.argmax().unwrap()]), Some(hi));
            prop_assert!(v.var(0).unwrap() >= 0.0);
        }
        // softmax sums to 1 over every row with something kept
        let y = v.softmax(1).unwrap();
        for r in 0..rows {
            let idx: Vec<usize> = (r * cols..(r + 1) * cols).filter(|&i| m.get(i)).collect();
            if !idx.is_empty() {
                let s: f64 = idx.iter().map(|&i| y.values[i]).sum();
                prop_assert!((s - 1.0).abs() < 1e-12);
            }
        }
        // exp(log_softmax) == softmax
        let ly = v.log_softmax(1).unwrap();
        for i in m.iter_ones() {
            prop_assert!((ly.values[i].exp() - y.values[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn each_type_rounds_once((rows, cols, x, keep) in half_case()) {
        let m = Mask::from_bools(&keep);
        check_round_once::<f32>(rows, cols, &x, &m);
        check_round_once::<f16>(rows, cols, &x, &m);
        check_round_once::<bf16>(rows, cols, &x, &m);
    }

    #[test]
    fn half_types_agree_with_the_f32_reference((rows, cols, x, keep) in half_case()) {
        let m = Mask::from_bools(&keep);
        let x32: Vec<f32> = cast(&x);
        let xh: Vec<f16> = cast(&x);
        let xb: Vec<bf16> = cast(&x);
        let v32 = matrix(&x32, &m, rows, cols);
        let vh = matrix(&xh, &m, rows, cols);
        let vb = matrix(&xb, &m, rows, cols);
        type Op<T> = fn(&Rv<T>) -> Option<T>;
        let ops32: [Op<f32>; 6] = [|v| v.sum(), |v| v.mean(), |v| v.var(1), |v| v.std(1), |v| v.norm(2.0), |v| v.logsumexp()];
        let opsh: [Op<f16>; 6] = [|v| v.sum(), |v| v.mean(), |v| v.var(1), |v| v.std(1), |v| v.norm(2.0), |v| v.logsumexp()];
        let opsb: [Op<bf16>; 6] = [|v| v.sum(), |v| v.mean(), |v| v.var(1), |v| v.std(1), |v| v.norm(2.0), |v| v.logsumexp()];
        for k in 0..6 {
            let r32 = ops32[k](&v32);
            let rh = opsh[k](&vh);
            let rb = opsb[k](&vb);
            prop_assert_eq!(r32.is_some(), rh.is_some());
            prop_assert_eq!(r32.is_some(), rb.is_some());
            if let (Some(a), Some(h), Some(b)) = (r32, rh, rb) {
                // the f32 answer rounded to the half type: at most one half-ulp
                // step away (double rounding), usually identical
                let fh = f16::from_f32(a).to_f64();
                let fb = bf16::from_f32(a).to_f64();
                prop_assert!(within_ulps(h.to_f64(), fh, 10, -14, 1.0), "op {} f16 {} vs {}", k, h, fh);
                prop_assert!(within_ulps(b.to_f64(), fb, 7, -126, 1.0), "op {} bf16 {} vs {}", k, b, fb);
            }
        }
        prop_assert_eq!(v32.argmax(), vh.argmax());
        prop_assert_eq!(v32.argmin_dim(0).unwrap(), vb.argmin_dim(0).unwrap());
    }

    #[test]
    fn backward_is_finite_difference_gradient((rows, cols, x, keep) in (1usize..4, 1usize..6).prop_flat_map(|(r, c)| {
        (Just(r), Just(c), prop::collection::vec(-3.0f64..3.0, r * c), prop::collection::vec(prop::bool::weighted(0.7), r * c))
    }), seed in 0u64..1000) {
        let m = Mask::from_bools(&keep);
        let dy: Vec<f64> = (0..x.len()).map(|i| (((i as u64 * 7919 + seed) % 13) as f64 - 6.0) / 3.0).collect();
        check_backward_fd(&x, &m, rows, cols, &dy, 1);
        check_backward_fd(&x, &m, rows, cols, &dy, 0);
    }
}

/// `a` and `b` agree: same None-ness, NaN together, else within `tol`
/// relative to `scale`.
fn agree(a: Option<f64>, b: Option<f64>, scale: f64, what: &str) {
    match (a, b) {
        (None, None) => {}
        (Some(x), Some(y)) if x.is_nan() || y.is_nan() => {
            assert!(x.is_nan() && y.is_nan(), "{what}: {x} vs {y}")
        }
        (Some(x), Some(y)) if x.is_infinite() || y.is_infinite() => {
            assert_eq!(x, y, "{what}")
        }
        (Some(x), Some(y)) => assert!(
            (x - y).abs() <= 1e-12 * (1.0 + scale + y.abs()),
            "{what}: {x} vs {y}"
        ),
        (x, y) => panic!("{what}: {x:?} vs {y:?}"),
    }
}

fn agree_vec(a: &MaskedVec<f64>, b: &MaskedVec<f64>, scale: f64, what: &str) {
    assert_eq!(a.mask, b.mask, "{what}: masks");
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for i in 0..a.len() {
        agree(Some(a.values[i]), Some(b.values[i]), scale, what);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The public `MaskedView` methods and `maskops::softmax` agree with the
    /// reference (today they call it; later they may have fast bodies).
    #[test]
    fn public_api_agrees_with_the_reference((rows, cols, x, keep) in matrix_case()) {
        let m = Mask::from_bools(&keep);
        for flat in [false, true] {
            let p = if flat {
                MaskedView::new(&x, &m).unwrap()
            } else {
                MaskedView::matrix(&x, &m, rows, cols).unwrap()
            };
            let rv = Rv(p);
            let sc: f64 = x.iter().zip(&keep).filter(|(_, &k)| k).map(|(a, _)| a.abs()).sum();
            agree(p.sum(), rv.sum(), sc, "sum");
            agree(p.mean(), rv.mean(), sc, "mean");
            agree(p.prod(), rv.prod(), 0.0, "prod");
            agree(p.amin(), rv.amin(), 0.0, "amin");
            agree(p.amax(), rv.amax(), 0.0, "amax");
            prop_assert_eq!(p.argmin(), rv.argmin());
            prop_assert_eq!(p.argmax(), rv.argmax());
            agree(p.var(1), rv.var(1), sc * sc, "var");
            agree(p.std(0), rv.std(0), sc, "std");
            for q in [0.0, 1.0, 2.0, 3.0, 0.5, -1.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                agree(p.norm(q), rv.norm(q), sc, "norm");
            }
            agree(p.logsumexp(), rv.logsumexp(), sc, "logsumexp");
            for dim in 0..3 {
                if dim >= p.ndim() {
                    let e = Err(Error::Dim { dim, ndim: p.ndim() });
                    prop_assert_eq!(p.sum_dim(dim), e.clone());
                    prop_assert_eq!(p.argmax_dim(dim), Err(Error::Dim { dim, ndim: p.ndim() }));
                    prop_assert_eq!(p.softmax(dim), e.clone());
                    prop_assert_eq!(softmax::softmax_backward(&p, &x, dim), e);
                    continue;
                }
                agree_vec(&p.sum_dim(dim).unwrap(), &rv.sum_dim(dim).unwrap(), sc, "sum_dim");
                agree_vec(&p.mean_dim(dim).unwrap(), &rv.mean_dim(dim).unwrap(), sc, "mean_dim");
                agree_vec(&p.prod_dim(dim).unwrap(), &rv.prod_dim(dim).unwrap(), 0.0, "prod_dim");
                agree_vec(&p.amin_dim(dim).unwrap(), &rv.amin_dim(dim).unwrap(), 0.0, "amin_dim");
                agree_vec(&p.amax_dim(dim).unwrap(), &rv.amax_dim(dim).unwrap(), 0.0, "amax_dim");
                prop_assert_eq!(p.argmin_dim(dim).unwrap(), rv.argmin_dim(dim).unwrap());
                prop_assert_eq!(p.argmax_dim(dim).unwrap(), rv.argmax_dim(dim).unwrap());
                agree_vec(&p.var_dim(dim, 1).unwrap(), &rv.var_dim(dim, 1).unwrap(), sc * sc, "var_dim");
                agree_vec(&p.std_dim(dim, 0).unwrap(), &rv.std_dim(dim, 0).unwrap(), sc, "std_dim");
                agree_vec(&p.norm_dim(dim, 2.0).unwrap(), &rv.norm_dim(dim, 2.0).unwrap(), sc, "norm_dim");
                let bad_p = matches!(p.norm_dim(dim, f64::NAN), Err(Error::Param { name: "p", .. }));
                prop_assert!(bad_p);
                agree_vec(&p.logsumexp_dim(dim).unwrap(), &rv.logsumexp_dim(dim).unwrap(), sc, "lse_dim");
                let y = p.softmax(dim).unwrap();
                agree_vec(&y, &rv.softmax(dim).unwrap(), 0.0, "softmax");
                agree_vec(&softmax::softmax(&p, dim).unwrap(), &y, 0.0, "softmax fn");
                let ly = p.log_softmax(dim).unwrap();
                agree_vec(&ly, &rv.log_softmax(dim).unwrap(), sc, "log_softmax");
                agree_vec(&softmax::log_softmax(&p, dim).unwrap(), &ly, sc, "log_softmax fn");
                let yv = reshape(&y.values, &y.mask, &rv);
                agree_vec(
                    &softmax::softmax_backward(&yv.0, &x, dim).unwrap(),
                    &yv.softmax_backward(&x, dim).unwrap(),
                    sc,
                    "softmax_backward",
                );
                let lyv = reshape(&ly.values, &ly.mask, &rv);
                agree_vec(
                    &softmax::log_softmax_backward(&lyv.0, &x, dim).unwrap(),
                    &lyv.log_softmax_backward(&x, dim).unwrap(),
                    sc,
                    "log_softmax_backward",
                );
                let short = softmax::log_softmax_backward(&lyv.0, &x[..x.len() / 2], dim);
                let short_err = x.is_empty()
                    || matches!(short, Err(Error::Length { arg: "grad_output", .. }));
                prop_assert!(short_err);
            }
        }
    }
}

#[test]
fn sequences_are_rows_or_columns() {
    let x = [1.0f32, 4.0, f32::NAN, 2.0, 8.0, 3.0];
    let m = bits("110111");
    let v = MaskedView::matrix(&x, &m, 2, 3).unwrap();
    let s = r::sequences(&v, 0).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!((s[2].start, s[2].stride, s[2].len), (2, 3, 2));
    let s = r::sequences(&v, 1).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!((s[1].start, s[1].stride, s[1].len), (3, 1, 3));
    assert_eq!(r::sequences(&v, 2), Err(Error::Dim { dim: 2, ndim: 2 }));
    let f = MaskedView::new(&x, &m).unwrap();
    assert_eq!(r::sequences(&f, 0).unwrap(), vec![r::whole(&f)]);
}
