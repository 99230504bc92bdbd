//! Row-sharded embedding tables: which rank owns which rows, the partition of
//! a gradient by owner in a layout ready for an all-to-all, the merge on the
//! receiving side, and Adagrad steps that take global row ids.
//!
//! Nothing here talks to a network. These are the pieces a sharded training
//! loop needs around its exchange; the `mpi` feature's `maskops::dist`
//! module puts them around `MPI_Alltoallv`, and a loop over NCCL
//! or anything else can use them the same way.
//!
//! # The one rule that makes shards bit-identical to one process
//!
//! One process that owns the whole table and takes, at each step, the
//! concatenation of every rank's local gradient **in rank order** (rank 0's
//! entries, then rank 1's, …) computes exactly the bits that the sharded
//! ranks compute, when
//!
//! 1. each rank partitions its local gradient by owner keeping the order of
//!    appearance inside each bucket ([`Sharding::partition_rows`] and
//!    [`Sharding::partition_coo`] do: a stable counting sort by owner), and
//! 2. each owner concatenates what it receives **by source rank** ([`Batch::receive`],
//!    and what `MPI_Alltoallv` writes with displacements in rank order), then
//! 3. steps its shard with the global ids ([`Adagrad::step_rows_shard`],
//!    [`Adagrad::step_coo_shard`]).
//!
//! A row's duplicates then reach its owner in the order (source rank,
//! position), which is their order in the concatenated batch, and Adagrad
//! sums duplicates in order of appearance before the update. Each shard's
//! step counter advances on every step, even when nothing arrives, as the
//! one process's does.
//!
//! ```
//! use maskops::optim::Adagrad;
//! use maskops::shard::{Batch, Sharding};
//!
//! let (rows, cols, ranks) = (10, 2, 3);
//! let opt = Adagrad { lr: 0.1, ..Default::default() };
//! let sharding = Sharding::even(rows, ranks).unwrap();
//! // every rank's local gradient (row ids with duplicates, 2 values a row)
//! let local: Vec<(Vec<usize>, Vec<f32>)> = vec![
//!     (vec![1, 7, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
//!     (vec![9, 1], vec![0.5, 0.5, -1.0, 2.0]),
//!     (vec![], vec![]),
//! ];
//! // each rank partitions by owner ...
//! let sent: Vec<_> = local
//!     .iter()
//!     .map(|(ids, v)| sharding.partition_rows(ids, cols, v).unwrap())
//!     .collect();
//! // ... and each owner steps its shard with what it receives
//! let mut shards: Vec<Vec<f32>> = (0..ranks)
//!     .map(|r| vec![1.0; sharding.shard(r).unwrap().rows() * cols])
//!     .collect();
//! for r in 0..ranks {
//!     let shard = sharding.shard(r).unwrap();
//!     let batch = Batch::receive(&sent, r).unwrap();
//!     let mut state = opt.state(shards[r].len());
//!     opt.step_rows_shard(&mut shards[r], &shard, cols, batch.rows(), batch.values(), &mut state)
//!         .unwrap();
//! }
//! // one process, the concatenated batch in rank order
//! let mut table = vec![1.0f32; rows * cols];
//! let mut state = opt.state(table.len());
//! let ids = [1, 7, 1, 9, 1];
//! let vals = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, 0.5, -1.0, 2.0];
//! opt.step_rows(&mut table, rows, cols, &ids, &vals, &mut state).unwrap();
//! let joined: Vec<f32> = shards.concat();
//! assert_eq!(joined, table); // `Sharding::even` keeps rows in order
//! ```

use std::cell::RefCell;

use crate::error::{check_shape, Error, Result};
use crate::optim::{Adagrad, AdagradElement, AdagradState};

/// How the rows of a table are split among `ranks` processes.
///
/// - [`Sharding::even`] / [`Sharding::from_bounds`]: rank `r` owns the
///   contiguous global rows `[bounds[r], bounds[r + 1])`, stored in order
///   (local row `i` is global row `bounds[r] + i`).
/// - [`Sharding::modulo`]: rank `r` owns the rows `g` with `g % ranks == r`,
///   local row `g / ranks` (good balance when hot ids are small numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharding {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Ranges { bounds: Vec<usize> },
    Modulo { rows: usize, ranks: usize },
}

/// One rank's part of a [`Sharding`]: which global rows it owns and where
/// they sit in its local table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    kind: ShardKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardKind {
    Range {
        lo: usize,
        hi: usize,
    },
    Modulo {
        rank: usize,
        ranks: usize,
        rows: usize,
    },
}

impl Sharding {
    /// `rows` split into `ranks` contiguous ranges whose sizes differ by at
    /// most one (the first `rows % ranks` ranks get the extra row).
    pub fn even(rows: usize, ranks: usize) -> Result<Sharding> {
        check_ranks(ranks)?;
        let (q, extra) = (rows / ranks, rows % ranks);
        let bounds = (0..=ranks).map(|r| r * q + r.min(extra)).collect();
        Ok(Sharding {
            kind: Kind::Ranges { bounds },
        })
    }

    /// Contiguous ranges given by their bounds: rank `r` owns
    /// `[bounds[r], bounds[r + 1])`. `bounds` starts at 0, never decreases
    /// and has `ranks + 1` entries (so at least two); its last entry is the
    /// table's row count.
    pub fn from_bounds(bounds: Vec<usize>) -> Result<Sharding> {
        if bounds.len() < 2 {
            return Err(Error::Length {
                arg: "bounds",
                expected: 2,
                actual: bounds.len(),
            });
        }
        if bounds[0] != 0 {
            return Err(Error::Param {
                name: "bounds[0]",
                value: bounds[0] as f64,
                expected: "0 (the first shard starts at row 0)",
            });
        }
        if let Some(i) = (1..bounds.len()).find(|&i| bounds[i] < bounds[i - 1]) {
            return Err(Error::Param {
                name: "bounds",
                value: bounds[i] as f64,
                expected: "non-decreasing (a bound below the one before it)",
            });
        }
        Ok(Sharding {
            kind: Kind::Ranges { bounds },
        })
    }

    /// `rows` dealt round-robin: rank `r` owns global rows `r, r + ranks,
    /// r + 2 * ranks, …`, stored in that order.
    pub fn modulo(rows: usize, ranks: usize) -> Result<Sharding> {
        check_ranks(ranks)?;
        Ok(Sharding {
            kind: Kind::Modulo { rows, ranks },
        })
    }

    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        match &self.kind {
            Kind::Ranges { bounds } => bounds.len() - 1,
            Kind::Modulo { ranks, .. } => *ranks,
        }
    }

    /// The table's global row count.
    pub fn rows(&self) -> usize {
        match &self.kind {
            Kind::Ranges { bounds } => bounds[bounds.len() - 1],
            Kind::Modulo { rows, .. } => *rows,
        }
    }

    /// The rank that owns global row `row`, or `None` past the table.
    #[inline]
    pub fn owner(&self, row: usize) -> Option<usize> {
        if row >= self.rows() {
            return None;
        }
        Some(match &self.kind {
            // the last bound <= row, among bounds[0..ranks]: empty ranges
            // are skipped because the rank found is the last with that bound
            Kind::Ranges { bounds } => bounds.partition_point(|&b| b <= row) - 1,
            Kind::Modulo { ranks, .. } => row % ranks,
        })
    }

    /// Rank `rank`'s shard.
    pub fn shard(&self, rank: usize) -> Result<Shard> {
        let ranks = self.ranks();
        if rank >= ranks {
            return Err(Error::Index {
                arg: "rank",
                index: rank,
                position: 0,
                bound: ranks,
            });
        }
        Ok(Shard {
            kind: match &self.kind {
                Kind::Ranges { bounds } => ShardKind::Range {
                    lo: bounds[rank],
                    hi: bounds[rank + 1],
                },
                Kind::Modulo { rows, ranks } => ShardKind::Modulo {
                    rank,
                    ranks: *ranks,
                    rows: *rows,
                },
            },
        })
    }

    /// A 64-bit fingerprint of the layout (kind, rows, ranks, bounds), for
    /// checking that every rank uses the same sharding before an exchange.
    pub fn fingerprint(&self) -> u64 {
        // FNV-1a over the words that define the layout
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |w: u64| {
            for b in w.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        };
        match &self.kind {
            Kind::Ranges { bounds } => {
                eat(1);
                bounds.iter().for_each(|&b| eat(b as u64));
            }
            Kind::Modulo { rows, ranks } => {
                eat(2);
                eat(*rows as u64);
                eat(*ranks as u64);
            }
        }
        h
    }

    /// Partitions a row-sparse gradient (row `k` of `values`, `cols` values,
    /// belongs to global row `ids[k]`) by owner. Each bucket keeps its
    /// entries in order of appearance.
    ///
    /// Errors: `values.len() != ids.len() * cols`, or an id past the table
    /// (`Error::Index` naming `ids`, its position and the row count).
    pub fn partition_rows<T: Copy>(
        &self,
        ids: &[usize],
        cols: usize,
        values: &[T],
    ) -> Result<Buckets<T>> {
        check_shape("values", ids.len(), cols, values.len())?;
        let route = self.route(ids, "ids")?;
        let mut packed = Vec::with_capacity(values.len());
        for &k in &route.order {
            packed.extend_from_slice(&values[k * cols..(k + 1) * cols]);
        }
        Ok(Buckets {
            route,
            col_inds: Vec::new(),
            values: packed,
            width: cols,
            coo: false,
        })
    }

    /// Partitions a COO gradient (`values[k]` at global row `row_inds[k]`,
    /// column `col_inds[k]`) by the owner of its row, each bucket in order of
    /// appearance. Columns are not checked here (the owner's step checks
    /// them against its table).
    pub fn partition_coo<T: Copy>(
        &self,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[T],
    ) -> Result<Buckets<T>> {
        check_shape("col_inds", row_inds.len(), 1, col_inds.len())?;
        check_shape("values", row_inds.len(), 1, values.len())?;
        let route = self.route(row_inds, "row_inds")?;
        let col_inds = route.order.iter().map(|&k| col_inds[k]).collect();
        let values = route.order.iter().map(|&k| values[k]).collect();
        Ok(Buckets {
            route,
            col_inds,
            values,
            width: 1,
            coo: true,
        })
    }

    /// Routes row ids to their owners (a stable counting sort by owner): what
    /// a lookup sends before the owners answer with the rows. `arg` names the
    /// ids in errors.
    pub fn route(&self, ids: &[usize], arg: &'static str) -> Result<Route> {
        let ranks = self.ranks();
        let rows = self.rows();
        let mut counts = vec![0usize; ranks];
        let mut owners = Vec::with_capacity(ids.len());
        for (position, &id) in ids.iter().enumerate() {
            let o = self.owner(id).ok_or(Error::Index {
                arg,
                index: id,
                position,
                bound: rows,
            })?;
            counts[o] += 1;
            owners.push(o as u32);
        }
        let displs = exclusive_prefix(&counts);
        let mut next = displs.clone();
        let mut order = vec![0usize; ids.len()];
        let mut packed = vec![0usize; ids.len()];
        for (k, &o) in owners.iter().enumerate() {
            let at = &mut next[o as usize];
            order[*at] = k;
            packed[*at] = ids[k];
            *at += 1;
        }
        Ok(Route {
            counts,
            displs,
            ids: packed,
            order,
        })
    }
}

fn check_ranks(ranks: usize) -> Result<()> {
    if ranks == 0 {
        return Err(Error::Param {
            name: "ranks",
            value: 0.0,
            expected: ">= 1",
        });
    }
    Ok(())
}

/// `[0, c0, c0 + c1, …]`, one entry per count.
pub(crate) fn exclusive_prefix(counts: &[usize]) -> Vec<usize> {
    let mut at = 0;
    counts
        .iter()
        .map(|&c| {
            let d = at;
            at += c;
            d
        })
        .collect()
}

impl Shard {
    /// A shard owning the contiguous global rows `[lo, hi)`.
    pub fn range(lo: usize, hi: usize) -> Result<Shard> {
        if hi < lo {
            return Err(Error::Param {
                name: "hi",
                value: hi as f64,
                expected: ">= lo",
            });
        }
        Ok(Shard {
            kind: ShardKind::Range { lo, hi },
        })
    }

    /// The number of rows the shard stores.
    pub fn rows(&self) -> usize {
        match self.kind {
            ShardKind::Range { lo, hi } => hi - lo,
            ShardKind::Modulo { rank, ranks, rows } => {
                if rank >= rows {
                    0
                } else {
                    (rows - rank).div_ceil(ranks)
                }
            }
        }
    }

    /// The local row of global row `global`, or `None` if the shard does
    /// not own it.
    #[inline]
    pub fn local(&self, global: usize) -> Option<usize> {
        match self.kind {
            ShardKind::Range { lo, hi } => (lo..hi).contains(&global).then(|| global - lo),
            ShardKind::Modulo { rank, ranks, rows } => {
                (global < rows && global % ranks == rank).then(|| global / ranks)
            }
        }
    }

    /// The global row of local row `local` (`local < self.rows()`).
    #[inline]
    pub fn global(&self, local: usize) -> usize {
        match self.kind {
            ShardKind::Range { lo, .. } => lo + local,
            ShardKind::Modulo { rank, ranks, .. } => local * ranks + rank,
        }
    }

    /// What the shard owns, in words, for error messages.
    pub fn describe(&self) -> String {
        match self.kind {
            ShardKind::Range { lo, hi } => format!("rows [{lo}, {hi})"),
            ShardKind::Modulo { rank, ranks, rows } => {
                format!("rows r < {rows} with r % {ranks} == {rank}")
            }
        }
    }

    /// Maps global ids to local ones into `out` (cleared first); the first id
    /// the shard does not own is an error naming `arg` and its position.
    pub fn localize(&self, arg: &'static str, ids: &[usize], out: &mut Vec<usize>) -> Result<()> {
        out.clear();
        out.reserve(ids.len());
        for (position, &g) in ids.iter().enumerate() {
            match self.local(g) {
                Some(l) => out.push(l),
                None => {
                    return Err(Error::NotOwned {
                        arg,
                        index: g,
                        position,
                        owned: self.describe(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Copies the rows of global ids `ids` out of the shard's table
    /// (`param`, `self.rows() x cols`) into `out` (`ids.len() x cols`): the
    /// owner's half of a lookup.
    pub fn read_rows<T: Copy>(
        &self,
        param: &[T],
        cols: usize,
        ids: &[usize],
        out: &mut [T],
    ) -> Result<()> {
        check_shape("param", self.rows(), cols, param.len())?;
        check_shape("out", ids.len(), cols, out.len())?;
        if cols == 0 {
            return Ok(());
        }
        for (position, (&g, dst)) in ids.iter().zip(out.chunks_exact_mut(cols)).enumerate() {
            let l = self.local(g).ok_or_else(|| Error::NotOwned {
                arg: "ids",
                index: g,
                position,
                owned: self.describe(),
            })?;
            dst.copy_from_slice(&param[l * cols..(l + 1) * cols]);
        }
        Ok(())
    }
}

/// Ids grouped by owner: `counts[r]` ids for rank `r` start at `displs[r]`
/// in `ids`, each group in order of appearance; `order[j]` is the position
/// in the caller's list of packed id `j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    counts: Vec<usize>,
    displs: Vec<usize>,
    ids: Vec<usize>,
    order: Vec<usize>,
}

impl Route {
    /// Entries for each rank.
    pub fn counts(&self) -> &[usize] {
        &self.counts
    }

    /// Where each rank's entries start (exclusive prefix sum of `counts`).
    pub fn displs(&self) -> &[usize] {
        &self.displs
    }

    /// The global ids, packed by destination rank.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// `order()[j]`: the caller's position of packed entry `j`.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The ids for rank `rank`.
    pub fn ids_for(&self, rank: usize) -> &[usize] {
        let (d, c) = (self.displs[rank], self.counts[rank]);
        &self.ids[d..d + c]
    }

    /// Puts rows that came back in packed order (`packed`, `ids().len() x
    /// width`) at the caller's positions in `out` (`ids().len() x width`):
    /// the requester's half of a lookup.
    pub fn place_rows<T: Copy>(&self, packed: &[T], width: usize, out: &mut [T]) -> Result<()> {
        let n = self.ids.len();
        check_shape("packed", n, width, packed.len())?;
        check_shape("out", n, width, out.len())?;
        if width == 0 {
            return Ok(());
        }
        for (row, &k) in packed.chunks_exact(width).zip(&self.order) {
            out[k * width..(k + 1) * width].copy_from_slice(row);
        }
        Ok(())
    }
}

/// A gradient partitioned by owner, ready for an all-to-all: for rank `r`,
/// `counts()[r]` entries starting at entry `displs()[r]`; entry `j` has global
/// row `rows()[j]`, for COO gradients column `col_inds()[j]`, and the
/// `width()` values `values()[j * width .. (j + 1) * width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets<T> {
    route: Route,
    col_inds: Vec<usize>,
    values: Vec<T>,
    width: usize,
    coo: bool,
}

impl<T: Copy> Buckets<T> {
    /// Entries for each rank.
    pub fn counts(&self) -> &[usize] {
        &self.route.counts
    }

    /// Where each rank's entries start.
    pub fn displs(&self) -> &[usize] {
        &self.route.displs
    }

    /// Global row ids, packed by destination rank.
    pub fn rows(&self) -> &[usize] {
        &self.route.ids
    }

    /// Column ids (COO gradients; empty for row gradients).
    pub fn col_inds(&self) -> &[usize] {
        &self.col_inds
    }

    /// The values, `width()` per entry, packed as the rows.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// Values per entry: the table's columns for a row gradient, 1 for COO.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether this is a COO gradient (entries carry a column).
    pub fn is_coo(&self) -> bool {
        self.coo
    }

    /// The routing (counts, displacements, packed ids, original order).
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The part for rank `rank`: its rows, columns (COO) and values.
    pub fn part(&self, rank: usize) -> Part<'_, T> {
        let (d, c) = (self.route.displs[rank], self.route.counts[rank]);
        Part {
            rows: &self.route.ids[d..d + c],
            col_inds: if self.coo {
                &self.col_inds[d..d + c]
            } else {
                &[]
            },
            values: &self.values[d * self.width..(d + c) * self.width],
        }
    }
}

/// One source's part of a [`Buckets`] for one destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part<'a, T> {
    /// Global row ids.
    pub rows: &'a [usize],
    /// Column ids (COO), else empty.
    pub col_inds: &'a [usize],
    /// Values, `width` per entry.
    pub values: &'a [T],
}

/// What one owner receives in an exchange: every source's part for it,
/// concatenated by source rank (the order that makes shards bit-identical to
/// one process).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch<T> {
    rows: Vec<usize>,
    col_inds: Vec<usize>,
    values: Vec<T>,
}

impl<T: Copy> Batch<T> {
    /// Concatenates `parts` (one per source rank, in rank order).
    pub fn merge<'a>(parts: impl IntoIterator<Item = Part<'a, T>>) -> Batch<T>
    where
        T: 'a,
    {
        let mut b = Batch {
            rows: Vec::new(),
            col_inds: Vec::new(),
            values: Vec::new(),
        };
        for p in parts {
            b.rows.extend_from_slice(p.rows);
            b.col_inds.extend_from_slice(p.col_inds);
            b.values.extend_from_slice(p.values);
        }
        b
    }

    /// What rank `rank` receives when every source `s` sent `sent[s]`: the
    /// in-process stand-in for an all-to-all.
    pub fn receive(sent: &[Buckets<T>], rank: usize) -> Result<Batch<T>> {
        for b in sent {
            if rank >= b.counts().len() {
                return Err(Error::Index {
                    arg: "rank",
                    index: rank,
                    position: 0,
                    bound: b.counts().len(),
                });
            }
        }
        Ok(Batch::merge(sent.iter().map(|b| b.part(rank))))
    }

    /// A batch from its parts (what a transport received): global rows,
    /// columns (COO, else empty) and values.
    pub fn from_parts(rows: Vec<usize>, col_inds: Vec<usize>, values: Vec<T>) -> Batch<T> {
        Batch {
            rows,
            col_inds,
            values,
        }
    }

    /// Global row ids, by source rank then position.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Column ids (COO), else empty.
    pub fn col_inds(&self) -> &[usize] {
        &self.col_inds
    }

    /// The values.
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

thread_local! {
    /// Local ids of the last shard step on this thread (reused, so a
    /// training loop allocates them once).
    static LOCAL_IDS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn with_local_ids<R>(f: impl FnOnce(&mut Vec<usize>) -> R) -> R {
    LOCAL_IDS.with(|c| match c.try_borrow_mut() {
        Ok(mut v) => f(&mut v),
        // (re-entered from inside a step: use a fresh vector)
        Err(_) => f(&mut Vec::new()),
    })
}

impl Adagrad {
    /// [`Adagrad::step_rows`] on one shard of a table, with **global** row
    /// ids: `param` is the shard's `shard.rows() x cols` table, and row `k`
    /// of `values` is the gradient of global row `row_indices[k]`, which the
    /// shard must own. An id it does not own is an error
    /// ([`Error::NotOwned`]) and nothing changes. Duplicates are summed in
    /// order of appearance, so the bits are those of one process stepping
    /// the whole table (see the [module docs](crate::shard)).
    ///
    /// ```
    /// use maskops::optim::Adagrad;
    /// use maskops::shard::Shard;
    /// let opt = Adagrad::default();
    /// let shard = Shard::range(100, 104).unwrap(); // global rows 100..104
    /// let mut part = vec![0.0f32; 4 * 2];
    /// let mut st = opt.state(part.len());
    /// opt.step_rows_shard(&mut part, &shard, 2, &[102, 102], &[1.0, 1.0, 2.0, 2.0], &mut st)
    ///     .unwrap();
    /// assert!(part[4] < 0.0 && part[0] == 0.0);
    /// let e = opt.step_rows_shard(&mut part, &shard, 2, &[99], &[1.0, 1.0], &mut st);
    /// assert!(e.is_err());
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn step_rows_shard<P: AdagradElement>(
        &self,
        param: &mut [P],
        shard: &Shard,
        cols: usize,
        row_indices: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_local_ids(|local| {
            shard.localize("row_indices", row_indices, local)?;
            self.step_rows(param, shard.rows(), cols, local, values, state)
        })
    }

    /// [`Adagrad::step_coo`] on one shard, with global row ids (columns are
    /// the table's own): `values[k]` is the gradient at global row
    /// `row_inds[k]`, column `col_inds[k]`. A row the shard does not own is
    /// an error and nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn step_coo_shard<P: AdagradElement>(
        &self,
        param: &mut [P],
        shard: &Shard,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[P],
        state: &mut AdagradState<P::State>,
    ) -> Result<()> {
        with_local_ids(|local| {
            shard.localize("row_inds", row_inds, local)?;
            self.step_coo(param, shard.rows(), cols, local, col_inds, values, state)
        })
    }
}
