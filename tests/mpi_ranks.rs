//! `maskops::dist` across real MPI ranks (feature `mpi`; needs `mpirun`).
//!
//! Run by `cargo test --features mpi`, this binary starts itself under
//! `mpirun -np 3` (and `-np 2`) and checks, on every rank:
//! - a bad input on one rank makes every rank return `Err` (that rank its
//!   own error, the others `Error::Peer`) and changes nothing anywhere;
//! - ranks that disagree on the sharding or the column count all refuse;
//! - lookups return the owners' rows, and steps match one process bit for bit
//!   (row-range and modulo sharding, row and COO gradients, f32 and f64);
//! - the traffic counts add up across ranks.
//!
//! (`harness = false`: MPI is initialized once per process, so the checks
//! run in `main`, in order, on every rank.)

// (loops over rank numbers read as the ranks they simulate)
#![allow(clippy::needless_range_loop)]

use std::process::{Command, ExitCode};

use maskops::dist::Exchange;
use maskops::mpi::collective::SystemOperation;
use maskops::mpi::topology::SimpleCommunicator;
use maskops::mpi::traits::*;
use maskops::optim::{Adagrad, AdagradElement};
use maskops::shard::Sharding;
use maskops::{Element, Error};

const CHILD: &str = "MASKOPS_MPI_RANKS_CHILD";

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_none() {
        return launch();
    }
    let universe = maskops::mpi::initialize().expect("MPI initialized twice");
    let world = universe.world();
    let rank = world.rank();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checks(&world)));
    let ok = result.is_ok();
    if !ok {
        eprintln!("rank {rank}: a check failed");
    }
    // every rank reports; a failure anywhere fails everyone
    let mut all = 0u8;
    world.all_reduce_into(&(!ok as u8), &mut all, SystemOperation::max());
    if rank == 0 && all == 0 {
        println!("rank 0: all checks passed on {} ranks", world.size());
    }
    drop(world);
    drop(universe);
    if all == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs this binary under `mpirun` with 3 and then 2 ranks.
fn launch() -> ExitCode {
    let me = std::env::current_exe().expect("own path");
    for np in ["3", "2"] {
        let out = Command::new("mpirun")
            .args(["-np", np, "--oversubscribe"])
            .arg(&me)
            .env(CHILD, "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("RAYON_NUM_THREADS", "1")
            .output();
        match out {
            Err(e) => {
                eprintln!("mpi_ranks: cannot start mpirun ({e}); install Open MPI or MPICH (see .ci/mpi.sh)");
                return ExitCode::FAILURE;
            }
            Ok(o) => {
                print!("{}", String::from_utf8_lossy(&o.stdout));
                eprint!("{}", String::from_utf8_lossy(&o.stderr));
                if !o.status.success() {
                    eprintln!("mpi_ranks: mpirun -np {np} failed: {}", o.status);
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn bits<T: Element>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn checks(world: &SimpleCommunicator) {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    refusals(world, rank, size);
    for modulo in [false, true] {
        agree_with_one_process::<f32>(world, modulo, |x| x as f32);
        agree_with_one_process::<f64>(world, modulo, |x| x);
    }
}

fn refusals(world: &SimpleCommunicator, rank: usize, size: usize) {
    let (rows, cols) = (20, 3);
    let sh = Sharding::even(rows, size).unwrap();
    let mut ex = Exchange::new(world, sh.clone()).unwrap();
    let opt = Adagrad::default();
    let mut p = vec![0.5f32; ex.shard().rows() * cols];
    let mut st = opt.state(p.len());
    let (p0, st0) = (p.clone(), st.clone());

    // rank 1 passes an id past the table
    let ids: Vec<usize> = if rank == 1 { vec![3, 20] } else { vec![3, 4] };
    let e = ex
        .step_rows(&opt, &mut p, &mut st, cols, &ids, &[1.0; 6])
        .unwrap_err();
    if rank == 1 {
        assert_eq!(
            e,
            Error::Index {
                arg: "ids",
                index: 20,
                position: 1,
                bound: 20
            }
        );
    } else {
        assert!(matches!(e, Error::Peer { rank: 1, .. }), "{e:?}");
    }
    assert_eq!((&p, &st), (&p0, &st0), "a refused step changed something");

    // rank 0 passes a bad column in a COO step
    let cidx = if rank == 0 { [0, 3] } else { [0, 2] };
    let e = ex
        .step_coo(&opt, &mut p, &mut st, cols, &[1, 2], &cidx, &[1.0, 1.0])
        .unwrap_err();
    if rank == 0 {
        assert!(
            matches!(
                e,
                Error::Index {
                    arg: "col_inds",
                    index: 3,
                    ..
                }
            ),
            "{e:?}"
        );
    } else {
        assert!(matches!(e, Error::Peer { rank: 0, .. }), "{e:?}");
    }
    // the last rank's lookup output has the wrong length
    let mut out = vec![0.0f32; if rank == size - 1 { 5 } else { 6 }];
    let e = ex.lookup(&p, cols, &[0, 19], &mut out).unwrap_err();
    if rank == size - 1 {
        assert!(matches!(e, Error::Shape { arg: "out", .. }), "{e:?}");
    } else {
        assert!(matches!(e, Error::Peer { .. }), "{e:?}");
    }
    // ranks disagree on the column count
    let c = if rank == 0 { cols + 1 } else { cols };
    let mut pp = vec![0.5f32; ex.shard().rows() * c];
    let mut sst = opt.state(pp.len());
    let e = ex
        .step_rows(&opt, &mut pp, &mut sst, c, &[], &[])
        .unwrap_err();
    assert!(matches!(e, Error::Peer { .. }), "{e:?}");
    assert_eq!((&p, &st), (&p0, &st0));
    drop(ex);

    // ranks disagree on the layout: modulo on the last rank only
    let other = if rank == size - 1 {
        Sharding::modulo(rows, size).unwrap()
    } else {
        sh.clone()
    };
    let mut ex = Exchange::new(world, other).unwrap();
    let mut q = vec![0.5f32; ex.shard().rows() * cols];
    let mut qs = opt.state(q.len());
    let e = ex
        .step_rows(&opt, &mut q, &mut qs, cols, &[1], &[1.0; 3])
        .unwrap_err();
    assert!(matches!(e, Error::Peer { .. }), "{e:?}");
    assert!(e.to_string().contains("sharding differs"), "{e}");
    drop(ex);

    // a sharding for another number of ranks is refused at once
    assert!(matches!(
        Exchange::new(world, Sharding::even(rows, size + 1).unwrap()),
        Err(Error::Length { .. })
    ));
}

/// A small table trained for a few steps, sharded and in one process (every
/// rank replays every rank's batch), compared bit for bit on every rank.
fn agree_with_one_process<P: AdagradElement>(
    world: &SimpleCommunicator,
    modulo: bool,
    from: fn(f64) -> P,
) {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let (rows, cols) = (41, 4);
    let sh = if modulo {
        Sharding::modulo(rows, size).unwrap()
    } else {
        Sharding::even(rows, size).unwrap()
    };
    let opt = Adagrad {
        lr: 0.1,
        weight_decay: 0.01,
        initial_accumulator_value: 0.2,
        ..Default::default()
    };
    let mut ex = Exchange::new(world, sh.clone()).unwrap();
    let shard = ex.shard();
    let init = |g: usize, c: usize| from(((g * 5 + c) % 11) as f64 / 11.0);
    let mut p: Vec<P> = (0..shard.rows() * cols)
        .map(|i| init(shard.global(i / cols), i % cols))
        .collect();
    let mut st = opt.state(p.len());
    let mut full: Vec<P> = (0..rows * cols).map(|i| init(i / cols, i % cols)).collect();
    let mut fst = opt.state(full.len());
    let batch = |step: usize, r: usize| -> Vec<usize> {
        (0..(step * 3 + r * 5) % 13)
            .map(|k| (k * k + step + r * 7) % rows / (1 + k % 3))
            .collect()
    };
    let (mut sent, mut received) = (0usize, 0usize);
    for step in 0..8 {
        let ids = batch(step, rank);
        let mut emb = vec![P::default(); ids.len() * cols];
        let t = ex.lookup(&p, cols, &ids, &mut emb).unwrap();
        sent += t.bytes_sent;
        received += t.bytes_received;
        let want: Vec<P> = ids
            .iter()
            .flat_map(|&g| full[g * cols..(g + 1) * cols].to_vec())
            .collect();
        assert_eq!(bits(&emb), bits(&want), "lookup at step {step}");
        let grad = |ids: &[usize], r: usize| -> Vec<P> {
            (0..ids.len() * cols)
                .map(|i| from(((i + r + step) % 7) as f64 / 3.0 - 1.0))
                .collect()
        };
        if step % 3 == 2 {
            let cidx = |ids: &[usize]| -> Vec<usize> {
                (0..ids.len()).map(|k| (k + step) % cols).collect()
            };
            let g = grad(&ids, rank);
            let t = ex
                .step_coo(
                    &opt,
                    &mut p,
                    &mut st,
                    cols,
                    &ids,
                    &cidx(&ids),
                    &g[..ids.len()],
                )
                .unwrap();
            sent += t.bytes_sent;
            received += t.bytes_received;
            let (mut rr, mut cc, mut vv) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..size {
                let b = batch(step, r);
                let g = grad(&b, r);
                cc.extend(cidx(&b));
                vv.extend_from_slice(&g[..b.len()]);
                rr.extend(b);
            }
            opt.step_coo(&mut full, rows, cols, &rr, &cc, &vv, &mut fst)
                .unwrap();
        } else {
            let t = ex
                .step_rows(&opt, &mut p, &mut st, cols, &ids, &grad(&ids, rank))
                .unwrap();
            sent += t.bytes_sent;
            received += t.bytes_received;
            let (mut all, mut g) = (Vec::new(), Vec::new());
            for r in 0..size {
                let b = batch(step, r);
                g.extend(grad(&b, r));
                all.extend(b);
            }
            opt.step_rows(&mut full, rows, cols, &all, &g, &mut fst)
                .unwrap();
        }
        // this rank's shard against the one-process table
        let mine: Vec<P> = (0..shard.rows() * cols)
            .map(|i| full[shard.global(i / cols) * cols + i % cols])
            .collect();
        assert_eq!(
            bits(&p),
            bits(&mine),
            "shard at step {step}, modulo {modulo}"
        );
        assert_eq!(st.step, fst.step);
    }
    let gathered = ex.gather(&p, cols, size - 1).unwrap();
    assert_eq!(gathered.is_some(), rank == size - 1);
    if let Some(t) = gathered {
        assert_eq!(bits(&t), bits(&full), "gathered table");
    }
    // what the ranks sent, the ranks received
    let (mut s_all, mut r_all) = (0u64, 0u64);
    world.all_reduce_into(&(sent as u64), &mut s_all, SystemOperation::sum());
    world.all_reduce_into(&(received as u64), &mut r_all, SystemOperation::sum());
    assert_eq!(s_all, r_all, "bytes sent and received in all");
    if size > 1 {
        assert!(s_all > 0);
    }
    drop(ex);
}
