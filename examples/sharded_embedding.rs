//! Trains an embedding table sharded across MPI ranks and checks that the
//! result is bit-identical to one process (feature `mpi`).
//!
//! ```text
//! cargo build --release --features mpi --example sharded_embedding
//! mpirun -np 3 --oversubscribe target/release/examples/sharded_embedding [--modulo] [--steps N]
//! ```
//!
//! Every step, each rank draws its own batch of row ids (skewed towards hot
//! rows, with duplicates in every batch), looks the rows up from their
//! owners, makes a gradient from them and takes one collective Adagrad step
//! (every fourth step a COO gradient instead of whole rows). Afterwards rank 0
//! replays the same steps on the whole table in one process, the ranks'
//! batches concatenated in rank order, gathers the shards and compares the
//! table and the accumulator bit for bit. It prints the time per step and
//! the bytes exchanged, and exits with status 1 on any difference.

use std::process::ExitCode;

use maskops::dist::{Exchange, Traffic};
use maskops::mpi::collective::SystemOperation;
use maskops::mpi::traits::*;
use maskops::optim::Adagrad;
use maskops::shard::Sharding;

struct Config {
    rows: usize,
    cols: usize,
    steps: usize,
    batch: usize,
    modulo: bool,
}

fn config() -> Result<Config, String> {
    let mut c = Config {
        rows: 100_000,
        cols: 32,
        steps: 300,
        batch: 2048,
        modulo: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} takes a number"))
        };
        match a.as_str() {
            "--modulo" => c.modulo = true,
            "--rows" => c.rows = num("--rows")?,
            "--cols" => c.cols = num("--cols")?,
            "--steps" => c.steps = num("--steps")?,
            "--batch" => c.batch = num("--batch")?,
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    Ok(c)
}

/// splitmix64: a stream per (step, rank), so rank 0 can replay any rank's.
struct Rng(u64);
impl Rng {
    fn new(step: usize, rank: usize) -> Rng {
        Rng(0x9e37_79b9_7f4a_7c15 ^ ((step as u64) << 20) ^ rank as u64)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One rank's ids at one step: skewed towards small (hot) ids, and every
/// eighth id repeats an earlier one, so every batch has duplicates.
fn batch_ids(c: &Config, step: usize, rank: usize) -> Vec<usize> {
    let mut rng = Rng::new(step, rank);
    let mut ids = Vec::with_capacity(c.batch);
    for k in 0..c.batch {
        let id = if k % 8 == 7 {
            ids[(rng.next() % k as u64) as usize]
        } else {
            ((rng.unit().powi(3) * c.rows as f64) as usize).min(c.rows - 1)
        };
        ids.push(id);
    }
    ids
}

fn init(row: usize, col: usize) -> f32 {
    ((row.wrapping_mul(2_654_435_761).wrapping_add(col * 97)) % 1000) as f32 / 1000.0 - 0.5
}

/// The gradient of `0.5 * |emb - target|^2` per looked-up row.
fn gradient(c: &Config, ids: &[usize], emb: &[f32]) -> Vec<f32> {
    let mut g = Vec::with_capacity(emb.len());
    for (k, &id) in ids.iter().enumerate() {
        for col in 0..c.cols {
            let target = ((id * 7 + col * 13) % 17) as f32 / 17.0 - 0.5;
            g.push(emb[k * c.cols + col] - target);
        }
    }
    g
}

/// Every fourth step takes a COO gradient: the entries with `(k + col) % 3 == 0`.
fn coo_step(step: usize) -> bool {
    step % 4 == 3
}

fn coo(c: &Config, ids: &[usize], g: &[f32]) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
    let (mut r, mut cl, mut v) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &id) in ids.iter().enumerate() {
        for col in (0..c.cols).filter(|col| (k + col) % 3 == 0) {
            r.push(id);
            cl.push(col);
            v.push(g[k * c.cols + col]);
        }
    }
    (r, cl, v)
}

fn main() -> ExitCode {
    let c = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sharded_embedding: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(universe) = maskops::mpi::initialize() else {
        eprintln!("sharded_embedding: MPI was already initialized");
        return ExitCode::from(2);
    };
    let world = universe.world();
    let code = match run(&c, &world) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rank {}: {e}", world.rank());
            ExitCode::from(2)
        }
    };
    drop(world);
    drop(universe);
    code
}

fn run(c: &Config, world: &maskops::mpi::topology::SimpleCommunicator) -> maskops::Result<bool> {
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let sharding = if c.modulo {
        Sharding::modulo(c.rows, size)?
    } else {
        Sharding::even(c.rows, size)?
    };
    let opt = Adagrad {
        lr: 0.05,
        lr_decay: 1e-4,
        weight_decay: 1e-3,
        initial_accumulator_value: 0.1,
        ..Default::default()
    };
    let mut ex = Exchange::new(world, sharding.clone())?;
    let shard = ex.shard();
    let mut part: Vec<f32> = (0..shard.rows() * c.cols)
        .map(|i| init(shard.global(i / c.cols), i % c.cols))
        .collect();
    let mut state = opt.state::<f32>(part.len());

    // the sharded loop
    let mut traffic = Traffic::default();
    let mut emb = vec![0.0f32; c.batch * c.cols];
    let mut min_dups = usize::MAX;
    // seconds in lookups, in steps (both collective: they include waiting
    // for the other ranks) and in this rank's own work (batch, gradient)
    let mut phase = [0.0f64; 3];
    world.barrier();
    let t0 = maskops::mpi::time();
    for step in 0..c.steps {
        let t = maskops::mpi::time();
        let ids = batch_ids(c, step, rank);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        min_dups = min_dups.min(ids.len() - sorted.len());
        let t1 = maskops::mpi::time();
        traffic += ex.lookup(&part, c.cols, &ids, &mut emb)?;
        let t2 = maskops::mpi::time();
        let g = gradient(c, &ids, &emb);
        let grad = if coo_step(step) {
            Some(coo(c, &ids, &g))
        } else {
            None
        };
        let t3 = maskops::mpi::time();
        traffic += match grad {
            Some((r, cl, v)) => ex.step_coo(&opt, &mut part, &mut state, c.cols, &r, &cl, &v)?,
            None => ex.step_rows(&opt, &mut part, &mut state, c.cols, &ids, &g)?,
        };
        let t4 = maskops::mpi::time();
        phase[0] += t2 - t1;
        phase[1] += t4 - t3;
        phase[2] += (t1 - t) + (t3 - t2);
    }
    let mine = maskops::mpi::time() - t0;
    world.barrier();
    let mut phases = [0.0f64; 3];
    world.all_reduce_into(&phase[..], &mut phases[..], SystemOperation::max());

    let mut slowest = 0.0f64;
    world.all_reduce_into(&mine, &mut slowest, SystemOperation::max());
    let sent = traffic.bytes_sent as u64;
    let mut all_sent = 0u64;
    world.all_reduce_into(&sent, &mut all_sent, SystemOperation::sum());
    let mut dups = 0u64;
    world.all_reduce_into(&(min_dups as u64), &mut dups, SystemOperation::min());

    let table = ex.gather(&part, c.cols, 0)?;
    let acc = ex.gather(&state.sum, c.cols, 0)?;
    let (Some(table), Some(acc)) = (table, acc) else {
        return Ok(true); // not rank 0: rank 0 checks
    };

    // one process: the same steps on the whole table
    let mut full: Vec<f32> = (0..c.rows * c.cols)
        .map(|i| init(i / c.cols, i % c.cols))
        .collect();
    let mut full_state = opt.state::<f32>(full.len());
    let t1 = std::time::Instant::now();
    for step in 0..c.steps {
        let (mut ids, mut g) = (Vec::new(), Vec::new());
        let (mut cr, mut cc, mut cv) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..size {
            let rid = batch_ids(c, step, r);
            let emb: Vec<f32> = rid
                .iter()
                .flat_map(|&id| full[id * c.cols..(id + 1) * c.cols].iter().copied())
                .collect();
            let rg = gradient(c, &rid, &emb);
            if coo_step(step) {
                let (a, b, v) = coo(c, &rid, &rg);
                cr.extend(a);
                cc.extend(b);
                cv.extend(v);
            } else {
                ids.extend(rid);
                g.extend(rg);
            }
        }
        if coo_step(step) {
            opt.step_coo(&mut full, c.rows, c.cols, &cr, &cc, &cv, &mut full_state)?;
        } else {
            opt.step_rows(&mut full, c.rows, c.cols, &ids, &g, &mut full_state)?;
        }
    }
    let single = t1.elapsed().as_secs_f64();

    let differ = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count()
    };
    let (dt, da) = (differ(&table, &full), differ(&acc, &full_state.sum));
    println!(
        "{size} rank(s), {} sharding, table {} x {} f32, {} steps, {} ids per rank per step ({} duplicates at least), Adagrad lr {} decay {} wd {}",
        if c.modulo { "modulo" } else { "row-range" },
        c.rows,
        c.cols,
        c.steps,
        c.batch,
        dups,
        opt.lr,
        opt.lr_decay,
        opt.weight_decay
    );
    println!(
        "sharded:     {:.3} ms/step (slowest rank; lookup + step), {:.1} KiB/step sent between ranks in all",
        slowest * 1e3 / c.steps as f64,
        all_sent as f64 / 1024.0 / c.steps as f64
    );
    println!(
        "             of which lookups {:.3}, steps {:.3}, own batch and gradient {:.3} ms/step (each the slowest rank's)",
        phases[0] * 1e3 / c.steps as f64,
        phases[1] * 1e3 / c.steps as f64,
        phases[2] * 1e3 / c.steps as f64
    );
    println!(
        "one process: {:.3} ms/step (the same global batches, on rank 0 alone, lookups by indexing)",
        single * 1e3 / c.steps as f64
    );
    println!(
        "table: {} of {} values differ; accumulator: {} differ => {}",
        dt,
        table.len(),
        da,
        if dt == 0 && da == 0 {
            "bit-identical"
        } else {
            "DIFFERENT"
        }
    );
    Ok(dt == 0 && da == 0)
}
