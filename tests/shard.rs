//! Sharded tables without a network: every rank simulated in one process
//! (partition, an in-process all-to-all, merge by source rank, shard steps)
//! must give the bits of one process stepping the whole table with the
//! ranks' batches concatenated in rank order.

// (loops over rank numbers read as the ranks they simulate)
#![allow(clippy::needless_range_loop)]

use maskops::optim::{Adagrad, AdagradElement, AdagradState};
use maskops::shard::{Batch, Buckets, Sharding};
use maskops::{Element, Error};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn value(&mut self) -> f64 {
        self.below(2001) as f64 / 1000.0 - 1.0
    }
}

fn shardings(rows: usize, ranks: usize) -> Vec<Sharding> {
    let mut v = vec![
        Sharding::even(rows, ranks).unwrap(),
        Sharding::modulo(rows, ranks).unwrap(),
    ];
    // uneven bounds with an empty shard in the middle (for 3+ ranks)
    if ranks >= 3 {
        let mut b = vec![0, rows / 5, rows / 5];
        while b.len() < ranks {
            b.push(rows / 2);
        }
        b.push(rows);
        v.push(Sharding::from_bounds(b).unwrap());
    }
    v
}

/// The shards, joined back into one table in global row order.
fn join<T: Copy + Default>(sh: &Sharding, parts: &[Vec<T>], width: usize) -> Vec<T> {
    let mut t = vec![T::default(); sh.rows() * width];
    for (r, p) in parts.iter().enumerate() {
        let s = sh.shard(r).unwrap();
        for l in 0..s.rows() {
            let g = s.global(l);
            t[g * width..(g + 1) * width].copy_from_slice(&p[l * width..(l + 1) * width]);
        }
    }
    t
}

fn bits<T: Element>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn run<P: AdagradElement>(from: fn(f64) -> P) {
    let opt = Adagrad {
        lr: 0.07,
        lr_decay: 0.01,
        weight_decay: 0.02,
        initial_accumulator_value: 0.3,
        ..Default::default()
    };
    let mut rng = Rng(0x5eed);
    for &(rows, cols) in &[(1usize, 1usize), (7, 3), (61, 5), (200, 17)] {
        for ranks in [1usize, 2, 3, 5] {
            for sh in shardings(rows, ranks) {
                let init = |g: usize, c: usize| from(((g * 31 + c * 7) % 19) as f64 / 19.0 - 0.5);
                let mut full: Vec<P> = (0..rows * cols).map(|i| init(i / cols, i % cols)).collect();
                let mut full_st: AdagradState<P::State> = opt.state(full.len());
                let mut parts: Vec<Vec<P>> = (0..ranks)
                    .map(|r| {
                        let s = sh.shard(r).unwrap();
                        (0..s.rows() * cols)
                            .map(|i| init(s.global(i / cols), i % cols))
                            .collect()
                    })
                    .collect();
                let mut sts: Vec<AdagradState<P::State>> =
                    parts.iter().map(|p| opt.state(p.len())).collect();
                for step in 0..6 {
                    // each rank's batch: hot rows, duplicates, sometimes empty
                    let batches: Vec<Vec<usize>> = (0..ranks)
                        .map(|r| {
                            let n = if (r + step) % 4 == 3 {
                                0
                            } else {
                                rng.below(3 * rows) + 1
                            };
                            (0..n)
                                .map(|_| rng.below(rows).min(rng.below(rows)))
                                .collect()
                        })
                        .collect();
                    // lookups through the route, against indexing the full table
                    for ids in &batches {
                        let route = sh.route(ids, "ids").unwrap();
                        let mut packed = vec![P::default(); ids.len() * cols];
                        for r in 0..ranks {
                            let (d, n) = (route.displs()[r], route.counts()[r]);
                            sh.shard(r)
                                .unwrap()
                                .read_rows(
                                    &parts[r],
                                    cols,
                                    route.ids_for(r),
                                    &mut packed[d * cols..(d + n) * cols],
                                )
                                .unwrap();
                        }
                        let mut out = vec![P::default(); ids.len() * cols];
                        route.place_rows(&packed, cols, &mut out).unwrap();
                        let want: Vec<P> = ids
                            .iter()
                            .flat_map(|&g| full[g * cols..(g + 1) * cols].to_vec())
                            .collect();
                        assert_eq!(
                            bits(&out),
                            bits(&want),
                            "lookup, {rows}x{cols}, {ranks} ranks, {sh:?}"
                        );
                    }
                    if step % 2 == 0 {
                        // row gradients
                        let vals: Vec<Vec<P>> = batches
                            .iter()
                            .map(|ids| (0..ids.len() * cols).map(|_| from(rng.value())).collect())
                            .collect();
                        let sent: Vec<Buckets<P>> = batches
                            .iter()
                            .zip(&vals)
                            .map(|(ids, v)| sh.partition_rows(ids, cols, v).unwrap())
                            .collect();
                        for r in 0..ranks {
                            let b = Batch::receive(&sent, r).unwrap();
                            let s = sh.shard(r).unwrap();
                            opt.step_rows_shard(
                                &mut parts[r],
                                &s,
                                cols,
                                b.rows(),
                                b.values(),
                                &mut sts[r],
                            )
                            .unwrap();
                        }
                        let ids: Vec<usize> = batches.concat();
                        let v: Vec<P> = vals.concat();
                        opt.step_rows(&mut full, rows, cols, &ids, &v, &mut full_st)
                            .unwrap();
                    } else {
                        // COO gradients
                        let coo: Vec<(Vec<usize>, Vec<usize>, Vec<P>)> = batches
                            .iter()
                            .map(|ids| {
                                let c: Vec<usize> = ids.iter().map(|_| rng.below(cols)).collect();
                                let v: Vec<P> = ids.iter().map(|_| from(rng.value())).collect();
                                (ids.clone(), c, v)
                            })
                            .collect();
                        let sent: Vec<Buckets<P>> = coo
                            .iter()
                            .map(|(r, c, v)| sh.partition_coo(r, c, v).unwrap())
                            .collect();
                        for r in 0..ranks {
                            let b = Batch::receive(&sent, r).unwrap();
                            let s = sh.shard(r).unwrap();
                            opt.step_coo_shard(
                                &mut parts[r],
                                &s,
                                cols,
                                b.rows(),
                                b.col_inds(),
                                b.values(),
                                &mut sts[r],
                            )
                            .unwrap();
                        }
                        let rr: Vec<usize> = coo.iter().flat_map(|x| x.0.clone()).collect();
                        let cc: Vec<usize> = coo.iter().flat_map(|x| x.1.clone()).collect();
                        let vv: Vec<P> = coo.iter().flat_map(|x| x.2.clone()).collect();
                        opt.step_coo(&mut full, rows, cols, &rr, &cc, &vv, &mut full_st)
                            .unwrap();
                    }
                    let what = format!("step {step}, {rows}x{cols}, {ranks} ranks, {sh:?}");
                    assert_eq!(bits(&join(&sh, &parts, cols)), bits(&full), "table, {what}");
                    let sums: Vec<Vec<P::State>> = sts.iter().map(|s| s.sum.clone()).collect();
                    assert_eq!(
                        bits(&join(&sh, &sums, cols)),
                        bits(&full_st.sum),
                        "accumulator, {what}"
                    );
                    assert!(
                        sts.iter().all(|s| s.step == full_st.step),
                        "step counters, {what}"
                    );
                }
            }
        }
    }
}

#[test]
fn sharded_steps_are_bit_identical_to_one_process() {
    run::<f32>(|x| x as f32);
    run::<f64>(|x| x);
    run::<half::bf16>(half::bf16::from_f64);
    run::<half::f16>(half::f16::from_f64);
}

#[test]
fn every_row_has_exactly_one_owner_and_a_place() {
    for rows in [0usize, 1, 5, 64, 101] {
        for ranks in [1usize, 2, 3, 7, 130] {
            for sh in shardings(rows, ranks) {
                assert_eq!(sh.ranks(), ranks);
                assert_eq!(sh.rows(), rows);
                let total: usize = (0..ranks).map(|r| sh.shard(r).unwrap().rows()).sum();
                assert_eq!(total, rows, "{sh:?}");
                for g in 0..rows {
                    let o = sh.owner(g).unwrap();
                    for r in 0..ranks {
                        let s = sh.shard(r).unwrap();
                        match s.local(g) {
                            Some(l) => {
                                assert_eq!(r, o, "row {g} of {sh:?}");
                                assert!(l < s.rows());
                                assert_eq!(s.global(l), g);
                            }
                            None => assert_ne!(r, o, "row {g} of {sh:?}"),
                        }
                    }
                }
                assert_eq!(sh.owner(rows), None);
                assert!(matches!(
                    sh.shard(ranks),
                    Err(Error::Index { arg: "rank", .. })
                ));
            }
        }
    }
}

#[test]
fn buckets_are_stable_by_owner_in_an_all_to_all_layout() {
    let sh = Sharding::modulo(50, 4).unwrap();
    let mut rng = Rng(7);
    let ids: Vec<usize> = (0..300).map(|_| rng.below(50)).collect();
    let vals: Vec<f32> = (0..600).map(|i| i as f32).collect();
    let b = sh.partition_rows(&ids, 2, &vals).unwrap();
    assert!(!b.is_coo());
    assert_eq!(b.counts().iter().sum::<usize>(), ids.len());
    let mut at = 0;
    for r in 0..4 {
        assert_eq!(b.displs()[r], at);
        at += b.counts()[r];
        let part = b.part(r);
        assert!(part.rows.iter().all(|&g| sh.owner(g) == Some(r)));
        assert!(part.col_inds.is_empty());
        // order of appearance inside the bucket
        let order = &b.route().order()[b.displs()[r]..b.displs()[r] + b.counts()[r]];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        for (j, &k) in order.iter().enumerate() {
            assert_eq!(part.rows[j], ids[k]);
            assert_eq!(&part.values[2 * j..2 * j + 2], &vals[2 * k..2 * k + 2]);
        }
    }
    let c = sh.partition_coo(&ids, &vec![1; 300], &vals[..300]).unwrap();
    assert!(c.is_coo() && c.width() == 1 && c.col_inds().len() == 300);
}

#[test]
fn bad_input_is_an_error_naming_it_and_changes_nothing() {
    let sh = Sharding::even(10, 3).unwrap(); // [0,4) [4,7) [7,10)
    let opt = Adagrad::default();
    let s1 = sh.shard(1).unwrap();
    let mut p = vec![1.0f32; 3 * 2];
    let mut st = opt.state(p.len());
    let (p0, st0) = (p.clone(), st.clone());
    let e = opt
        .step_rows_shard(&mut p, &s1, 2, &[4, 6, 7], &[1.0; 6], &mut st)
        .unwrap_err();
    assert_eq!(
        e,
        Error::NotOwned {
            arg: "row_indices",
            index: 7,
            position: 2,
            owned: "rows [4, 7)".into()
        }
    );
    assert!(e.to_string().contains("`row_indices`[2] = 7"), "{e}");
    let e = opt
        .step_coo_shard(&mut p, &s1, 2, &[5, 3], &[0, 1], &[1.0, 1.0], &mut st)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotOwned {
                index: 3,
                position: 1,
                ..
            }
        ),
        "{e:?}"
    );
    // an owned row with a bad column: the plain step's error, nothing changed
    let e = opt
        .step_coo_shard(&mut p, &s1, 2, &[5], &[2], &[1.0], &mut st)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Index {
                arg: "col_inds",
                index: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!((p.clone(), st.clone()), (p0, st0));

    let modulo = Sharding::modulo(10, 3).unwrap().shard(2).unwrap();
    let e = opt
        .step_rows_shard(
            &mut [0.0f32; 3 * 2],
            &modulo,
            2,
            &[5, 4],
            &[0.0; 4],
            &mut opt.state(6),
        )
        .unwrap_err();
    assert!(e.to_string().contains("r % 3 == 2"), "{e}");

    assert!(matches!(
        sh.partition_rows(&[1, 10], 2, &[0.0f32; 4]),
        Err(Error::Index {
            arg: "ids",
            index: 10,
            position: 1,
            bound: 10
        })
    ));
    assert!(matches!(
        sh.partition_rows(&[1, 2], 2, &[0.0f32; 3]),
        Err(Error::Shape {
            arg: "values",
            rows: 2,
            cols: 2,
            len: 3
        })
    ));
    assert!(matches!(
        sh.partition_coo(&[1, 2], &[0], &[0.0f32; 2]),
        Err(Error::Shape {
            arg: "col_inds",
            ..
        })
    ));
    assert!(matches!(
        Sharding::even(5, 0),
        Err(Error::Param { name: "ranks", .. })
    ));
    assert!(matches!(
        Sharding::from_bounds(vec![0]),
        Err(Error::Length { arg: "bounds", .. })
    ));
    assert!(matches!(
        Sharding::from_bounds(vec![1, 4]),
        Err(Error::Param {
            name: "bounds[0]",
            ..
        })
    ));
    assert!(matches!(
        Sharding::from_bounds(vec![0, 4, 3]),
        Err(Error::Param { name: "bounds", .. })
    ));
    assert!(matches!(
        Batch::receive(&[sh.partition_rows(&[1], 1, &[0.0f32]).unwrap()], 3),
        Err(Error::Index {
            arg: "rank",
            index: 3,
            bound: 3,
            ..
        })
    ));
    let route = sh.route(&[1, 2], "ids").unwrap();
    assert!(matches!(
        route.place_rows(&[0.0f32; 3], 2, &mut [0.0; 4]),
        Err(Error::Shape { arg: "packed", .. })
    ));
    assert!(matches!(
        s1.read_rows(&[0.0f32; 6], 2, &[4, 0], &mut [0.0; 4]),
        Err(Error::NotOwned {
            arg: "ids",
            index: 0,
            position: 1,
            ..
        })
    ));
}

#[test]
fn fingerprints_tell_layouts_apart() {
    let a = Sharding::even(100, 3).unwrap();
    let b = Sharding::modulo(100, 3).unwrap();
    let c = Sharding::even(101, 3).unwrap();
    let d = Sharding::from_bounds(vec![0, 34, 67, 100]).unwrap();
    assert_eq!(a, d);
    assert_eq!(a.fingerprint(), d.fingerprint());
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
}
