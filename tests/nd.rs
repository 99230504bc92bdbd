//! `nd::NdView`: reductions and softmax along any dimension of an N-d
//! array with a broadcast mask, checked bit for bit against the 1-D ops on
//! each gathered sequence (the canonical fold of a sequence is the same
//! wherever it lies), with NaN under every masked-out element; the mask
//! expansion against a per-element index computation; shapes with 0 and 1
//! sizes; errors.

use maskops::nd::NdView;
use maskops::{Error, Mask, MaskedView};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Row-major index of `idx` in `shape`, broadcast dims (size 1) at 0.
fn flat(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter()
        .zip(shape)
        .fold(0, |a, (&i, &s)| a * s + if s == 1 { 0 } else { i })
}

fn unflat(mut k: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = k % shape[d];
        k /= shape[d];
    }
    idx
}

struct Case {
    shape: Vec<usize>,
    mshape: Vec<usize>,
    data: Vec<f32>,
    mask: Mask,
    /// expanded mask, per element
    keep: Vec<bool>,
}

fn case(rng: &mut Rng, big: bool) -> Case {
    let rank = 1 + rng.below(4);
    let shape: Vec<usize> = loop {
        let s: Vec<usize> = (0..rank)
            .map(|_| match rng.below(10) {
                0 => 1,
                1 if !big => 0,
                _ => 1 + rng.below(if big { 300 } else { 13 }),
            })
            .collect();
        // big: past a 64-bit word per row and a canonical block, yet quick
        if !big || s.iter().product::<usize>() <= 60_000 {
            break s;
        }
    };
    let mshape: Vec<usize> = shape
        .iter()
        .map(|&s| if rng.below(3) == 0 { 1 } else { s })
        .collect();
    let mn: usize = mshape.iter().product();
    let p = [0, 1, 2, 3, 4][rng.below(5)];
    let mask = Mask::from_fn(mn, |_| p == 4 || (p > 0 && rng.below(4) < p));
    let n: usize = shape.iter().product();
    let keep: Vec<bool> = (0..n)
        .map(|k| mask.get(flat(&unflat(k, &shape), &mshape)))
        .collect();
    let data: Vec<f32> = (0..n)
        .map(|k| {
            if keep[k] {
                (rng.below(2001) as f32 - 1000.0) / 64.0
            } else {
                f32::NAN
            }
        })
        .collect();
    // a lower-rank mask shape (leading 1s dropped) must mean the same
    let lead = mshape.iter().take_while(|&&s| s == 1).count();
    let mshape = if rng.below(2) == 0 {
        mshape[lead..].to_vec()
    } else {
        mshape
    };
    Case {
        shape,
        mshape,
        data,
        mask,
        keep,
    }
}

/// The sequences along `dim`: for each output position (row-major over the
/// shape without `dim`), the flat indices of its elements.
fn sequences(shape: &[usize], dim: usize) -> Vec<Vec<usize>> {
    let mut red = shape.to_vec();
    red.remove(dim);
    let outs: usize = red.iter().product();
    (0..outs)
        .map(|o| {
            let mut idx = unflat(o, &red);
            idx.insert(dim, 0);
            (0..shape[dim])
                .map(|i| {
                    idx[dim] = i;
                    flat(&idx, shape)
                })
                .collect()
        })
        .collect()
}

/// Every whole-array reduction of `v` has the bits of the flat view's
/// with the expanded mask `keep`.
fn check_whole(v: &NdView<'_, f32>, data: &[f32], keep: &Mask, ctx: &str) {
    let w = MaskedView::new(data, keep).unwrap();
    let bits = |a: Option<f32>| a.map(f32::to_bits);
    assert_eq!(bits(v.sum()), bits(w.sum()), "sum {ctx}");
    assert_eq!(bits(v.mean()), bits(w.mean()), "mean {ctx}");
    assert_eq!(bits(v.prod()), bits(w.prod()), "prod {ctx}");
    assert_eq!(bits(v.amin()), bits(w.amin()), "amin {ctx}");
    assert_eq!(bits(v.amax()), bits(w.amax()), "amax {ctx}");
    assert_eq!(v.argmin(), w.argmin(), "argmin {ctx}");
    assert_eq!(v.argmax(), w.argmax(), "argmax {ctx}");
    assert_eq!(bits(v.var(1)), bits(w.var(1)), "var {ctx}");
    assert_eq!(bits(v.std(0)), bits(w.std(0)), "std {ctx}");
    for p in [
        2.0,
        1.0,
        3.0,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ] {
        assert_eq!(bits(v.norm(p)), bits(w.norm(p)), "norm {p} {ctx}");
    }
    assert_eq!(bits(v.logsumexp()), bits(w.logsumexp()), "logsumexp {ctx}");
    assert_eq!(v.count(), keep.count_ones(), "count {ctx}");
}

fn check(c: &Case) {
    let v = NdView::broadcast(&c.data, &c.shape, &c.mask, &c.mshape).unwrap();
    assert_eq!(v.expanded_mask(), Mask::from_bools(&c.keep));
    let ctx = format!("shape {:?} mask {:?}", c.shape, c.mshape);
    check_whole(&v, &c.data, &Mask::from_bools(&c.keep), &ctx);
    for dim in 0..c.shape.len() {
        let seqs = sequences(&c.shape, dim);
        let sum = v.sum_dim(dim).unwrap();
        let amax = v.amax_dim(dim).unwrap();
        let argmin = v.argmin_dim(dim).unwrap();
        let var = v.var_dim(dim, 1).unwrap();
        let lse = v.logsumexp_dim(dim).unwrap();
        assert_eq!(sum.len(), seqs.len());
        let sm = v.softmax(dim).unwrap();
        let lsm = v.log_softmax(dim).unwrap();
        let gout: Vec<f32> = (0..c.data.len()).map(|k| (k % 7) as f32 - 3.0).collect();
        let sv = NdView::new(&sm.values, &c.shape, &sm.mask).unwrap();
        let bwd = sv.softmax_backward(&gout, dim).unwrap();
        for (o, s) in seqs.iter().enumerate() {
            let x: Vec<f32> = s.iter().map(|&k| c.data[k]).collect();
            let m = Mask::from_bools(&s.iter().map(|&k| c.keep[k]).collect::<Vec<_>>());
            let w = MaskedView::new(&x, &m).unwrap();
            let bits = |a: Option<f32>| a.map(f32::to_bits);
            let ctx = || format!("shape {:?} mask {:?} dim {dim} out {o}", c.shape, c.mshape);
            assert_eq!(bits(sum.get(o)), bits(w.sum()), "sum {}", ctx());
            assert_eq!(bits(amax.get(o)), bits(w.amax()), "amax {}", ctx());
            assert_eq!(argmin.get(o), w.argmin(), "argmin {}", ctx());
            assert_eq!(bits(var.get(o)), bits(w.var(1)), "var {}", ctx());
            assert_eq!(bits(lse.get(o)), bits(w.logsumexp()), "lse {}", ctx());
            let s1 = w.softmax(0).unwrap();
            let l1 = w.log_softmax(0).unwrap();
            let y: Vec<f32> = s.iter().map(|&k| sm.values[k]).collect();
            let g: Vec<f32> = s.iter().map(|&k| gout[k]).collect();
            let b1 = maskops::softmax::softmax_backward(&MaskedView::new(&y, &m).unwrap(), &g, 0)
                .unwrap();
            for (i, &k) in s.iter().enumerate() {
                assert_eq!(
                    sm.values[k].to_bits(),
                    s1.values[i].to_bits(),
                    "softmax {}",
                    ctx()
                );
                assert_eq!(
                    lsm.values[k].to_bits(),
                    l1.values[i].to_bits(),
                    "log_softmax {}",
                    ctx()
                );
                assert_eq!(
                    bwd.values[k].to_bits(),
                    b1.values[i].to_bits(),
                    "backward {}",
                    ctx()
                );
            }
        }
        // the `_into` form writes the same values
        let mut out = vec![7.0f32; c.data.len()];
        v.softmax_into(dim, &mut out).unwrap();
        assert_eq!(
            out.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            sm.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn broadcast_reductions_and_softmax_match_each_gathered_sequence() {
    // MASKOPS_FULL_TESTS=1 (CI, in release) runs ten times as many
    let scale = if std::env::var_os("MASKOPS_FULL_TESTS").is_some() {
        10
    } else {
        1
    };
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    for _ in 0..250 * scale {
        check(&case(&mut rng, false));
    }
    for _ in 0..3 * scale {
        check(&case(&mut rng, true));
    }
}

#[test]
fn attention_key_padding_spans_several_pieces() {
    // [B, H, Tq, Tk] with a [B, 1, 1, Tk] padding mask, more elements than
    // one piece holds, so the last-dim kernels run on several pieces
    let (b, h, t) = (3, 5, 300);
    let lengths = [300, 17, 129];
    let pad = Mask::padding(&lengths, t).unwrap();
    let n = b * h * t * t;
    assert!(n > maskops::nd::PIECE_ELEMS);
    let x: Vec<f32> = (0..n).map(|k| ((k * 7919) % 1000) as f32 / 100.0).collect();
    let v = NdView::broadcast(&x, &[b, h, t, t], &pad, &[b, 1, 1, t]).unwrap();
    let full = v.expanded_mask();
    let flat = MaskedView::matrix(&x, &full, b * h * t, t).unwrap();
    assert_eq!(v.softmax(3).unwrap(), flat.softmax(1).unwrap());
    assert_eq!(v.sum_dim(3).unwrap(), flat.sum_dim(1).unwrap());
    assert_eq!(v.reduced_shape(3).unwrap(), vec![b, h, t]);
}

#[test]
fn whole_array_reductions_over_many_blocks_on_every_isa_and_thread_count() {
    // [B, H, Tq, Tk] = 172,800 elements (43 canonical blocks, past the
    // parallel threshold), blocks starting inside rows of the last dim;
    // NaN under the padding; a [B, 1, Tq, 1] query mask too
    let (b, h, t) = (3, 4, 120);
    let pad = Mask::padding(&[120, 17, 65], t).unwrap();
    let q = Mask::padding(&[100, 120, 3], t).unwrap();
    let n = b * h * t * t;
    assert!(n > maskops::backend::threshold(maskops::backend::Threshold::Reduce));
    for (mask, mshape) in [(&pad, [b, 1, 1, t]), (&q, [b, 1, t, 1])] {
        let probe = vec![0.0f32; n];
        let keep = NdView::broadcast(&probe, &[b, h, t, t], mask, &mshape)
            .unwrap()
            .expanded_mask();
        let x: Vec<f32> = (0..n)
            .map(|k| {
                if keep.get(k) {
                    ((k * 7919) % 1000) as f32 / 100.0 - 4.0
                } else {
                    f32::NAN
                }
            })
            .collect();
        let v = NdView::broadcast(&x, &[b, h, t, t], mask, &mshape).unwrap();
        for isa in maskops::backend::Isa::all_available() {
            maskops::backend::with_isa(isa, || {
                check_whole(&v, &x, &keep, &format!("{isa:?} {mshape:?}"));
            });
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one.install(|| check_whole(&v, &x, &keep, &format!("1 thread {mshape:?}")));
    }
}

#[test]
fn bad_shapes_are_errors() {
    let x = [0.0f32; 24];
    let m = Mask::ones(8);
    assert!(matches!(
        NdView::broadcast(&x, &[2, 3, 4], &m, &[2, 2, 4]).unwrap_err(),
        Error::Broadcast {
            dim: 1,
            mask: 2,
            array: 3
        }
    ));
    assert!(matches!(
        NdView::broadcast(&x, &[2, 3, 4], &m, &[1, 2, 1, 4]).unwrap_err(),
        Error::Length {
            arg: "mask_shape",
            ..
        }
    ));
    assert!(matches!(
        NdView::broadcast(&x, &[2, 3, 4], &Mask::ones(7), &[2, 1, 4]).unwrap_err(),
        Error::Length { arg: "mask", .. }
    ));
    assert!(matches!(
        NdView::new(&x, &[5, 5], &Mask::ones(25)).unwrap_err(),
        Error::Length { arg: "data", .. }
    ));
    let v = NdView::broadcast(&x, &[2, 3, 4], &m, &[2, 1, 4]).unwrap();
    assert!(matches!(
        v.sum_dim(3).unwrap_err(),
        Error::Dim { dim: 3, ndim: 3 }
    ));
    let mut out = [0.0f32; 5];
    assert!(matches!(
        v.softmax_into(2, &mut out).unwrap_err(),
        Error::Length { arg: "out", .. }
    ));
    assert!(matches!(
        v.softmax_backward(&[0.0; 3], 2).unwrap_err(),
        Error::Length {
            arg: "grad_output",
            ..
        }
    ));
    let big = [usize::MAX / 2, 3];
    assert!(NdView::new(&x, &big, &m).is_err());
}
