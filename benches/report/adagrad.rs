//! Report rows of the adagrad family (issue 5): dense, masked, row-sparse
//! (embedding table) and COO steps of `optim::Adagrad`.

use crate::bw::{data, fmt_t, pool, row, table_header, zeros, Rng};
use crate::{header, Ctx};
use maskops::optim::{Adagrad, AdagradState};
use maskops::{reference, Mask, MaskedView};
use std::hint::black_box;

/// Dense / masked rows at 16M (the reference at 1M: scalar f64).
const N: usize = 16 << 20;
const NREF: usize = 1 << 20;

/// A state whose pages are all touched (see [`zeros`]).
fn state(n: usize) -> AdagradState<f32> {
    AdagradState {
        sum: zeros(n),
        step: 0,
    }
}

/// The straightforward sparse baseline (as in `benches/adagrad.rs`):
/// (flat index, position) pairs sorted by comparison, duplicates summed,
/// scalar update.
#[allow(clippy::too_many_arguments)]
fn baseline_sparse(
    opt: &Adagrad,
    p: &mut [f32],
    s: &mut [f32],
    step: u64,
    cols: usize,
    r: &[usize],
    c: &[usize],
    v: &[f32],
) {
    let mut idx: Vec<(usize, usize)> = (0..v.len()).map(|k| (r[k] * cols + c[k], k)).collect();
    idx.sort_by_key(|&(key, _)| key);
    let clr = (opt.lr / (1.0 + (step - 1) as f64 * opt.lr_decay)) as f32;
    let eps = opt.eps as f32;
    let mut i = 0;
    while i < idx.len() {
        let key = idx[i].0;
        let mut g = v[idx[i].1];
        i += 1;
        while i < idx.len() && idx[i].0 == key {
            g += v[idx[i].1];
            i += 1;
        }
        s[key] += g * g;
        p[key] -= clr * g / (s[key].sqrt() + eps);
    }
}

pub fn run(ctx: &Ctx) {
    let p1 = pool(1);
    let opt = Adagrad::default();

    header("adagrad: dense and masked steps, 16M f32, one thread");
    let mut p = data(N, 21, -1.0, 1.0);
    let g = data(N, 22, -1.0, 1.0);
    let mut st = state(N);
    // the roofline with the dense step's traffic: p, s read + written, g read
    let roof = p1.install(|| {
        ctx.time(|| {
            for ((p, s), g) in p.iter_mut().zip(st.sum.iter_mut()).zip(&g) {
                *p += *g;
                *s += *g;
            }
            black_box(p.as_ptr());
        })
    });
    let read = p1.install(|| ctx.read_time(&p));
    let roof_gbs = N as f64 * 20.0 / roof / 1e9;
    let read_gbs = N as f64 * 4.0 / read / 1e9;
    println!(
        "baselines, 16M f32, one thread: read {read_gbs:.1} GB/s | roofline p+=g; s+=g (p, s read + written, g read: 20 B/elem) {roof_gbs:.1} GB/s"
    );
    println!("bytes per element: param + state read and written, gradient read = 20 B (+ 1/8 B of mask for step_masked)");
    table_header("roof");
    // the reference on the first 1M elements, its own state
    let mut pr = p[..NREF].to_vec();
    let mut sr = state(NREF);
    let t = p1.install(|| ctx.time(|| opt.step_dense(&mut p, &g, &mut st).unwrap()));
    let tref = p1.install(|| {
        ctx.time(|| reference::adagrad::step_dense(&opt, &mut pr, &g[..NREF], &mut sr).unwrap())
    });
    let vs_ref = (tref / NREF as f64) / (t / N as f64);
    row(
        "step_dense",
        "16M",
        t,
        N as f64,
        20.0,
        roof_gbs,
        read_gbs,
        Some(vs_ref),
    );
    for dens in [0.9, 0.5] {
        let m = Mask::random(N, 1.0 - dens, 23);
        let v = MaskedView::new(&g, &m).unwrap();
        let mr = Mask::random(NREF, 1.0 - dens, 23);
        let vr = MaskedView::new(&g[..NREF], &mr).unwrap();
        let t = p1.install(|| ctx.time(|| opt.step_masked(&mut p, &v, &mut st).unwrap()));
        let tref = p1.install(|| {
            ctx.time(|| reference::adagrad::step_masked(&opt, &mut pr, &vr, &mut sr).unwrap())
        });
        let vs_ref = (tref / NREF as f64) / (t / N as f64);
        row(
            &format!("step_masked dens {dens}"),
            "16M",
            t,
            N as f64,
            20.125,
            roof_gbs,
            read_gbs,
            Some(vs_ref),
        );
    }
    println!("(\"vs roof\"/\"vs read\": GB/s over the baseline's, same run; \"vs ref\": reference time per element at 1M over this time per element at 16M)");
    drop((p, g, st, pr, sr));

    header("adagrad: step_rows, 1,000,000 x 64 f32 embedding table, 4096 lookups with duplicates, one thread");
    let (rows, cols, lookups) = (1_000_000usize, 64usize, 4096usize);
    let mut rng = Rng(31);
    // a quarter of the lookups hit 64 hot rows (Zipf-like head), the rest
    // uniform; 32 index sets in turn so that the touched rows (~64 MB over
    // the sets) do not stay in cache between steps
    let sets: Vec<Vec<usize>> = (0..32)
        .map(|_| {
            (0..lookups)
                .map(|_| {
                    if rng.below(4) == 0 {
                        rng.below(64) * 7919
                    } else {
                        rng.below(rows)
                    }
                })
                .collect()
        })
        .collect();
    let values: Vec<f32> = (0..lookups * cols).map(|_| rng.unif() * 0.1).collect();
    let uniq = sets
        .iter()
        .map(|s| {
            let mut u = s.clone();
            u.sort_unstable();
            u.dedup();
            u.len()
        })
        .sum::<usize>() as f64
        / sets.len() as f64;
    let mut p = vec![0.5f32; rows * cols];
    let mut st = state(rows * cols);
    // per step: each unique row's param and state read + written, the gradient read
    let bytes = uniq * cols as f64 * 16.0 + (lookups * cols * 4) as f64;
    println!(
        "{uniq:.0} unique rows per step on average; bytes per step = unique rows x 64 x (4 param + 4 state) x 2 + gradient {} x 64 x 4 = {:.2} MB",
        lookups,
        bytes / 1e6
    );
    let mut k = 0;
    let t = p1.install(|| {
        ctx.time(|| {
            k = (k + 1) % sets.len();
            opt.step_rows(&mut p, rows, cols, &sets[k], &values, &mut st)
                .unwrap()
        })
    });
    let tref = p1.install(|| {
        ctx.time(|| {
            k = (k + 1) % sets.len();
            reference::adagrad::step_rows(&opt, &mut p, rows, cols, &sets[k], &values, &mut st)
                .unwrap()
        })
    });
    let gbs = bytes / t / 1e9;
    println!(
        "step_rows: {} per step = {:.1} ns per lookup, {gbs:.1} GB/s = {:.2} of the dense roofline, {:.2} of read; reference {} ({:.1}x)",
        fmt_t(t),
        t * 1e9 / lookups as f64,
        gbs / roof_gbs,
        gbs / read_gbs,
        fmt_t(tref),
        tref / t
    );
    drop((p, st, sets, values));

    header("adagrad: step_sparse (sprs::TriMat), 4096 x 4096 f32, 1% random nnz with duplicates, one thread");
    let (rows, cols) = (4096usize, 4096usize);
    let n = rows * cols;
    let nnz = n / 100;
    let mut r = Vec::with_capacity(nnz);
    let mut c = Vec::with_capacity(nnz);
    // 10% of the entries repeat an earlier index
    for k in 0..nnz {
        if k > 0 && rng.below(10) == 0 {
            let j = rng.below(k);
            r.push(r[j]);
            c.push(c[j]);
        } else {
            r.push(rng.below(rows));
            c.push(rng.below(cols));
        }
    }
    let v: Vec<f32> = (0..nnz).map(|_| rng.unif()).collect();
    let tri = sprs::TriMat::from_triplets((rows, cols), r.clone(), c.clone(), v.clone());
    let mut p = vec![0.5f32; n];
    let mut st = state(n);
    let t = p1.install(|| ctx.time(|| opt.step_sparse(&mut p, rows, cols, &tri, &mut st).unwrap()));
    let tb = p1.install(|| {
        ctx.time(|| {
            st.step += 1;
            baseline_sparse(&opt, &mut p, &mut st.sum, st.step, cols, &r, &c, &v)
        })
    });
    let tref = p1.install(|| {
        ctx.time(|| {
            reference::adagrad::step_sparse(&opt, &mut p, rows, cols, &tri, &mut st).unwrap()
        })
    });
    let ns = |t: f64| t * 1e9 / nnz as f64;
    println!("{:<34} {:>10} {:>9}", "", "time", "ns/nnz");
    println!(
        "{:<34} {:>10} {:>9.2}",
        format!("step_sparse ({nnz} nnz)"),
        fmt_t(t),
        ns(t)
    );
    println!(
        "{:<34} {:>10} {:>9.2}   step_sparse is {:.1}x faster",
        "baseline: sort_by_key + scalar",
        fmt_t(tb),
        ns(tb),
        tb / t
    );
    println!(
        "{:<34} {:>10} {:>9.2}   step_sparse is {:.1}x faster",
        "reference (BTreeMap coalesce, f64)",
        fmt_t(tref),
        ns(tref),
        tref / t
    );
}
