//! Adagrad fast paths: every ISA and thread count gives the same bits;
//! `f64` equals the f64 reference bit for bit (same operations, same order);
//! `f32` and the half types agree with it within a derived tolerance.
//! Random shapes (lengths not multiples of 64/16/8), unaligned sub-slices,
//! nothing kept / everything kept, NaN and inf under cleared mask bits,
//! duplicates, several steps with every hyper-parameter.

use maskops::backend::Isa;
use maskops::optim::{Adagrad, AdagradElement, AdagradState, Workspace};
use maskops::reference::adagrad as reference;
use maskops::{Element, Mask, MaskedView};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// One gradient of every form over a `rows x cols` parameter.
#[derive(Clone)]
struct Grads {
    dense: Vec<f64>,
    mask: Mask,
    masked: Vec<f64>, // poison under cleared bits
    coo_r: Vec<usize>,
    coo_c: Vec<usize>,
    coo_v: Vec<f64>,
    vec_i: Vec<usize>,
    vec_v: Vec<f64>,
    row_i: Vec<usize>,
    row_v: Vec<f64>,
}

fn grads(rng: &mut Rng, rows: usize, cols: usize, mask_kind: usize) -> Grads {
    let n = rows * cols;
    let dense: Vec<f64> = (0..n).map(|_| rng.unif()).collect();
    let mask = match mask_kind {
        0 => Mask::zeros(n),
        1 => Mask::ones(n),
        _ => Mask::from_fn(n, |_| rng.below(4) != 0),
    };
    let poison = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300];
    let masked: Vec<f64> = (0..n)
        .map(|i| if mask.get(i) { dense[i] } else { poison[i % 4] })
        .collect();
    // COO with duplicates (some entries repeated 2-4 times), random order.
    let nnz = if n == 0 { 0 } else { rng.below(2 * n + 1) };
    let mut coo_r = Vec::new();
    let mut coo_c = Vec::new();
    let mut coo_v = Vec::new();
    for _ in 0..nnz {
        let r = rng.below(rows);
        let c = rng.below(cols);
        for _ in 0..1 + rng.below(2) * rng.below(4) {
            coo_r.push(r);
            coo_c.push(c);
            coo_v.push(rng.unif());
        }
    }
    // shuffle so duplicates are interleaved
    for k in (1..coo_r.len()).rev() {
        let j = rng.below(k + 1);
        coo_r.swap(k, j);
        coo_c.swap(k, j);
        coo_v.swap(k, j);
    }
    let vec_i: Vec<usize> = (0..n).filter(|_| rng.below(3) == 0).collect();
    let vec_v: Vec<f64> = vec_i.iter().map(|_| rng.unif()).collect();
    let lookups = if rows == 0 {
        0
    } else {
        rng.below(3 * rows + 1)
    };
    let row_i: Vec<usize> = (0..lookups).map(|_| rng.below(rows.max(1))).collect();
    let row_v: Vec<f64> = (0..lookups * cols).map(|_| rng.unif()).collect();
    Grads {
        dense,
        mask,
        masked,
        coo_r,
        coo_c,
        coo_v,
        vec_i,
        vec_v,
        row_i,
        row_v,
    }
}

fn conv<P: Element>(v: &[f64]) -> Vec<P> {
    v.iter().map(|&x| P::from_f64(x)).collect()
}

/// Runs 3 steps of every form (one form per parameter copy) through the fast
/// path; returns the 5 parameter copies and states.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn run_fast<P: AdagradElement>(
    opt: &Adagrad,
    isa: Isa,
    ws: &mut Workspace,
    rows: usize,
    cols: usize,
    p0: &[P],
    off: usize,
    gs: &[Grads],
) -> Vec<(Vec<P>, AdagradState<P::State>)> {
    let n = rows * cols;
    let mut out = Vec::new();
    for form in 0..5 {
        // unaligned: the parameter lives at `buf[off..]`
        let mut buf: Vec<P> = vec![P::ZERO; off];
        buf.extend_from_slice(p0);
        let mut st = opt.state::<P::State>(n);
        for g in gs {
            let p = &mut buf[off..];
            match form {
                0 => opt.step_dense_with(isa, ws, p, &conv::<P>(&g.dense), &mut st),
                1 => {
                    let data = conv::<P>(&g.masked);
                    let v = MaskedView::matrix(&data, &g.mask, rows, cols).unwrap();
                    opt.step_masked_with(isa, ws, p, &v, &mut st)
                }
                2 => opt.step_coo_with(
                    isa,
                    ws,
                    p,
                    rows,
                    cols,
                    &g.coo_r,
                    &g.coo_c,
                    &conv::<P>(&g.coo_v),
                    &mut st,
                ),
                3 => {
                    let v = sprs::CsVec::new(n, g.vec_i.clone(), conv::<P>(&g.vec_v));
                    opt.step_sparse_vec_with(isa, ws, p, &v, &mut st)
                }
                _ => opt.step_rows_with(
                    isa,
                    ws,
                    p,
                    rows,
                    cols,
                    &g.row_i,
                    &conv::<P>(&g.row_v),
                    &mut st,
                ),
            }
            .unwrap();
        }
        out.push((buf[off..].to_vec(), st));
    }
    out
}

fn run_ref<P: AdagradElement>(
    opt: &Adagrad,
    rows: usize,
    cols: usize,
    p0: &[P],
    gs: &[Grads],
) -> Vec<(Vec<P>, AdagradState<P::State>)> {
    let n = rows * cols;
    let mut out = Vec::new();
    for form in 0..5 {
        let mut p = p0.to_vec();
        let mut st = opt.state::<P::State>(n);
        for g in gs {
            match form {
                0 => reference::step_dense(opt, &mut p, &conv::<P>(&g.dense), &mut st),
                1 => {
                    let data = conv::<P>(&g.masked);
                    let v = MaskedView::matrix(&data, &g.mask, rows, cols).unwrap();
                    reference::step_masked(opt, &mut p, &v, &mut st)
                }
                2 => reference::step_coo(
                    opt,
                    &mut p,
                    rows,
                    cols,
                    &g.coo_r,
                    &g.coo_c,
                    &conv::<P>(&g.coo_v),
                    &mut st,
                ),
                3 => {
                    let v = sprs::CsVec::new(n, g.vec_i.clone(), conv::<P>(&g.vec_v));
                    reference::step_sparse_vec(opt, &mut p, &v, &mut st)
                }
                _ => reference::step_rows(
                    opt,
                    &mut p,
                    rows,
                    cols,
                    &g.row_i,
                    &conv::<P>(&g.row_v),
                    &mut st,
                ),
            }
            .unwrap();
        }
        out.push((p, st));
    }
    out
}

fn bits<P: AdagradElement>(r: &[(Vec<P>, AdagradState<P::State>)]) -> Vec<Vec<u64>> {
    r.iter()
        .map(|(p, s)| {
            p.iter()
                .map(|x| x.to_f64().to_bits())
                .chain(s.sum.iter().map(|x| x.to_f64().to_bits()))
                .chain([s.step])
                .collect()
        })
        .collect()
}

/// First `(form, index)` where two bit dumps differ.
fn first_diff(a: &[Vec<u64>], b: &[Vec<u64>]) -> Option<(usize, usize)> {
    a.iter().zip(b).enumerate().find_map(|(f, (x, y))| {
        if x.len() != y.len() {
            return Some((f, usize::MAX));
        }
        x.iter().zip(y).position(|(u, v)| u != v).map(|i| (f, i))
    })
}

fn opt_for(rng: &mut Rng, trial: usize) -> Adagrad {
    Adagrad {
        lr: 0.01 + 0.5 * rng.unif().abs(),
        lr_decay: if trial.is_multiple_of(2) { 0.0 } else { 0.1 },
        weight_decay: if trial.is_multiple_of(3) { 0.0 } else { 0.05 },
        initial_accumulator_value: 0.1 + rng.unif().abs(),
        eps: if trial.is_multiple_of(4) { 1e-10 } else { 1e-6 },
        maximize: trial % 5 == 1,
    }
}

fn check_type<P: AdagradElement>(seed: u64, exact_ref: bool, rel_tol: f64) {
    let mut rng = Rng(seed);
    let pools: Vec<rayon::ThreadPool> = [1, 3]
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect();
    for trial in 0..24 {
        let rows = rng.below(12);
        let cols = [1, 3, 7, 16, 17, 33, 64, 100][rng.below(8)];
        let n = rows * cols;
        let opt = opt_for(&mut rng, trial);
        let p0: Vec<P> = conv(&(0..n).map(|_| 2.0 * rng.unif()).collect::<Vec<_>>());
        let gs: Vec<Grads> = (0..3)
            .map(|s| grads(&mut rng, rows, cols, (trial + s) % 3))
            .collect();
        let off = rng.below(5);

        let mut base: Option<Vec<Vec<u64>>> = None;
        for isa in Isa::all_available() {
            for pool in &pools {
                for par_min in [1, 64, 1 << 20] {
                    let mut ws = Workspace::new();
                    ws.set_parallel_min(par_min);
                    let r = pool
                        .install(|| run_fast::<P>(&opt, isa, &mut ws, rows, cols, &p0, off, &gs));
                    let b = bits(&r);
                    match &base {
                        None => base = Some(b),
                        Some(b0) => {
                            let first = first_diff(&b, b0);
                            assert!(
                                first.is_none(),
                                "{} trial {trial}: {isa:?} threads {} par_min {par_min} differs at (form, index) {first:?}",
                                P::NAME,
                                pool.current_num_threads()
                            );
                        }
                    }
                }
            }
        }

        let mut ws = Workspace::new();
        let fast = run_fast::<P>(&opt, Isa::Portable, &mut ws, rows, cols, &p0, off, &gs);
        let want = run_ref::<P>(&opt, rows, cols, &p0, &gs);
        for form in 0..5 {
            let (fp, fs) = &fast[form];
            let (rp, rs) = &want[form];
            assert_eq!(fs.step, rs.step);
            if exact_ref {
                assert_eq!(
                    bits(&fast[form..=form]),
                    bits(&want[form..=form]),
                    "trial {trial} form {form}"
                );
                continue;
            }
            for i in 0..n {
                let (a, b) = (fp[i].to_f64(), rp[i].to_f64());
                assert!(
                    (a - b).abs() <= rel_tol * (1.0 + b.abs()),
                    "{} trial {trial} form {form} param[{i}]: {a} vs {b}",
                    P::NAME
                );
                let (a, b) = (fs.sum[i].to_f64(), rs.sum[i].to_f64());
                assert!(
                    (a - b).abs() <= rel_tol * (1.0 + b.abs()),
                    "{} trial {trial} form {form} sum[{i}]: {a} vs {b}",
                    P::NAME
                );
            }
        }
        // Masked-out entries and untouched rows never change.
        let (mp, _) = &fast[1];
        for i in 0..n {
            if gs.iter().all(|g| !g.mask.get(i)) {
                assert_eq!(mp[i].to_f64().to_bits(), p0[i].to_f64().to_bits());
            }
        }
    }
}

#[test]
fn f64_bitwise_everywhere_and_equal_to_reference() {
    check_type::<f64>(1, true, 0.0);
}

#[test]
fn f32_bitwise_across_isas_threads_within_tolerance_of_reference() {
    // Per step: a few f32 roundings of the duplicate sum (<= 4 terms), the
    // accumulator and the update, amplified by at most 1/sqrt(0.1) through
    // g / sqrt(sum): 1e-5 relative over three steps is ~ 30x that bound.
    check_type::<f32>(2, false, 1e-5);
}

#[test]
fn half_types_within_tolerance_of_reference() {
    // f16: rounding the f32 result to f16 vs the f64 result to f16 can differ
    // by one f16 ulp (2^-10 relative) per step.
    check_type::<half::f16>(3, false, 4e-3);
    check_type::<half::bf16>(4, false, 3e-2);
}

/// A long steady-state loop reuses the workspace without growing it.
#[test]
fn workspace_steady_state() {
    let opt = Adagrad::default();
    let mut ws = Workspace::new();
    let (rows, cols) = (1000, 8);
    let mut p = vec![0.5f32; rows * cols];
    let mut st = opt.state(p.len());
    let idx: Vec<usize> = (0..300).map(|k| (k * 7919) % rows).collect();
    let vals = vec![0.25f32; idx.len() * cols];
    opt.step_rows_with(
        Isa::Portable,
        &mut ws,
        &mut p,
        rows,
        cols,
        &idx,
        &vals,
        &mut st,
    )
    .unwrap();
    let cap = ws.capacity_bytes();
    for _ in 0..10 {
        opt.step_rows_with(
            maskops::backend::isa(),
            &mut ws,
            &mut p,
            rows,
            cols,
            &idx,
            &vals,
            &mut st,
        )
        .unwrap();
        let r: Vec<usize> = idx.iter().map(|&i| i % rows).collect();
        let c: Vec<usize> = idx.iter().map(|&i| i % cols).collect();
        opt.step_coo_with(
            maskops::backend::isa(),
            &mut ws,
            &mut p,
            rows,
            cols,
            &r,
            &c,
            &vals[..idx.len()],
            &mut st,
        )
        .unwrap();
        assert_eq!(ws.capacity_bytes(), cap);
    }
}

/// Masked steps leave every masked-out parameter and accumulator entry with
/// its exact bits (signaling and payload NaNs, -0.0, infinities,
/// subnormals), whatever sits in the gradient under it, on every ISA, for
/// lengths around the word and vector boundaries, aligned and not; kept
/// entries agree bit for bit across ISAs and thread splits.
#[test]
fn masked_out_bits_untouched() {
    fn check<P: AdagradElement + Copy>(
        specials: &[P],
        spec_state: &[P::State],
        poison: &[P],
        from: impl Fn(f64) -> P,
        to_bits: impl Fn(P) -> u64,
        st_bits: impl Fn(P::State) -> u64,
    ) where
        P::State: Copy,
    {
        let mut rng = Rng(77);
        let opt = Adagrad {
            lr: 0.2,
            weight_decay: 0.05,
            initial_accumulator_value: 0.1,
            ..Default::default()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for &n in &[
            0usize, 1, 7, 8, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 1000,
        ] {
            for dens in [0.0, 0.1, 0.5, 0.9, 1.0] {
                for off in [0usize, 3] {
                    let total = n + off;
                    let mask = Mask::from_fn(n, |_| (rng.below(1000) as f64) < dens * 1000.0);
                    let mut p0: Vec<P> = (0..total).map(|_| from(2.0 * rng.unif())).collect();
                    let mut s0: Vec<P::State> = opt.state::<P::State>(total).sum;
                    let mut g: Vec<P> = (0..n).map(|_| from(rng.unif())).collect();
                    for i in 0..n {
                        if !mask.get(i) {
                            p0[off + i] = specials[i % specials.len()];
                            s0[off + i] = spec_state[i % spec_state.len()];
                            g[i] = poison[i % poison.len()];
                        }
                    }
                    let view = MaskedView::new(&g, &mask).unwrap();
                    let mut first: Option<(Vec<u64>, Vec<u64>)> = None;
                    for isa in Isa::all_available() {
                        for par_min in [1, 64, 1 << 20] {
                            let mut ws = Workspace::new();
                            ws.set_parallel_min(par_min);
                            let mut p = p0.clone();
                            let mut st = AdagradState {
                                sum: s0.clone(),
                                step: 0,
                            };
                            pool.install(|| {
                                let mut sub = AdagradState {
                                    sum: st.sum[off..].to_vec(),
                                    step: 0,
                                };
                                opt.step_masked_with(isa, &mut ws, &mut p[off..], &view, &mut sub)
                                    .unwrap();
                                st.sum[off..].copy_from_slice(&sub.sum);
                            });
                            let pb: Vec<u64> = p.iter().map(|&x| to_bits(x)).collect();
                            let sb: Vec<u64> = st.sum.iter().map(|&x| st_bits(x)).collect();
                            for i in 0..total {
                                if i < off || !mask.get(i - off) {
                                    assert_eq!(pb[i], to_bits(p0[i]), "{isa:?} n {n} param[{i}]");
                                    assert_eq!(sb[i], st_bits(s0[i]), "{isa:?} n {n} sum[{i}]");
                                }
                            }
                            match &first {
                                None => first = Some((pb, sb)),
                                Some((p1, s1)) => {
                                    assert!(p1 == &pb && s1 == &sb, "{isa:?} n {n} dens {dens}")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    check::<f32>(
        &[
            f32::from_bits(0x7f80_0001), // signaling NaN
            f32::from_bits(0xffc1_2345), // negative quiet NaN with payload
            -0.0,
            f32::INFINITY,
            f32::from_bits(1), // smallest subnormal
        ],
        &[f32::from_bits(0x7fa0_0000), -0.0, f32::NEG_INFINITY, 0.0],
        &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e38],
        |x| x as f32,
        |x| x.to_bits() as u64,
        |x| x.to_bits() as u64,
    );
    check::<f64>(
        &[
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff8_0000_1234_5678),
            -0.0,
            f64::NEG_INFINITY,
            f64::from_bits(1),
        ],
        &[f64::from_bits(0x7ff4_0000_0000_0000), -0.0, f64::INFINITY],
        &[f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308],
        |x| x,
        |x| x.to_bits(),
        |x| x.to_bits(),
    );
}
