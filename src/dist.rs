//! Sharded embedding tables across MPI ranks (feature `mpi`).
//!
//! Each rank holds one [`Shard`] of a table and its Adagrad state. A step is
//! one collective call, [`Exchange::step_rows`] (or
//! [`Exchange::step_coo`]): every rank passes its own local gradient with
//! **global** row ids; the gradient is partitioned by owner
//! ([`Sharding::partition_rows`]), exchanged with `MPI_Alltoallv`, merged by
//! source rank and applied to each owner's shard. The result is
//! bit-identical to one process stepping the whole table with the
//! concatenation of the ranks' gradients in rank order (the rule is in the
//! [`shard`](crate::shard) module). [`Exchange::lookup`] is the reverse
//! trip: each rank gets the rows it asks for from their owners.
//!
//! A call is collective: every rank of the communicator makes it, with the
//! same kind of step. Before anything moves, the ranks exchange a small
//! header (whether each accepted its input, its entry count, a fingerprint
//! of its [`Sharding`] and the column count), so that a bad input on one
//! rank makes **every** rank return `Err` with nothing changed: the rank at
//! fault returns its own error, the others [`Error::Peer`]. MPI errors come
//! back as [`Error::Mpi`] with MPI's message: the `Exchange` duplicates the
//! communicator and sets `MPI_ERRORS_RETURN` on its copy.
//!
//! Limits: per call, a rank's entries times the bytes of one entry must stay
//! below `i32::MAX / ranks` (MPI counts are `int`); an `Exchange` must be
//! dropped before MPI is finalized (before the `mpi::environment::Universe`).
//!
//! ```no_run
//! use maskops::dist::Exchange;
//! use maskops::optim::Adagrad;
//! use maskops::shard::Sharding;
//!
//! let universe = maskops::mpi::initialize().unwrap();
//! let world = universe.world();
//! let (rows, cols) = (100_000, 32);
//! let sharding = Sharding::even(rows, maskops::mpi::traits::Communicator::size(&world) as usize)?;
//! let mut ex = Exchange::new(&world, sharding)?;
//! let opt = Adagrad { lr: 0.05, ..Default::default() };
//! let mut part = vec![0.0f32; ex.shard().rows() * cols];
//! let mut state = opt.state(part.len());
//! let ids = [5, 99_999, 5]; // this rank's batch, global ids
//! let mut emb = vec![0.0f32; ids.len() * cols];
//! ex.lookup(&part, cols, &ids, &mut emb)?; // forward: rows from their owners
//! let grad: Vec<f32> = emb.iter().map(|&e| e - 1.0).collect();
//! ex.step_rows(&opt, &mut part, &mut state, cols, &ids, &grad)?; // backward
//! drop(ex);
//! # Ok::<(), maskops::Error>(())
//! ```

use std::os::raw::{c_char, c_int, c_void};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::element::Element;
use crate::error::{check_shape, Error, Result};
use crate::optim::{validate, Adagrad, AdagradElement, AdagradState};
use crate::shard::{exclusive_prefix, Buckets, Shard, Sharding};

/// What one collective call moved, as seen by this rank. Entries and bytes
/// to and from this rank itself are left out: they never leave the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Entries (rows, or COO entries) sent to other ranks.
    pub entries_sent: usize,
    /// Entries received from other ranks.
    pub entries_received: usize,
    /// Bytes sent to other ranks (ids and values, not the header).
    pub bytes_sent: usize,
    /// Bytes received from other ranks.
    pub bytes_received: usize,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.entries_sent += o.entries_sent;
        self.entries_received += o.entries_received;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

/// One rank's end of a sharded table's exchanges: a duplicate of the
/// caller's communicator (errors returned, not fatal), the [`Sharding`] and
/// this rank's [`Shard`], and reusable id buffers.
pub struct Exchange {
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    sharding: Sharding,
    shard: Shard,
    fingerprint: u64,
    send_ids: Vec<u64>,
    recv_ids: Vec<u64>,
    rows: Vec<usize>,
    cols: Vec<usize>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .field("sharding", &self.sharding)
            .finish_non_exhaustive()
    }
}

/// The header each rank sends to each other rank before a step or lookup.
const HEADER: usize = 4;
const OK: u64 = 0;
const REFUSED: u64 = 1;

/// Checks an MPI return code, with MPI's own message on failure.
fn check(rc: c_int, call: &str) -> Result<()> {
    if i64::from(rc) == ffi::MPI_SUCCESS as i64 {
        return Ok(());
    }
    let mut buf = [0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `buf` holds MPI_MAX_ERROR_STRING + 1 chars, the most
    // MPI_Error_string writes; `len` is a valid out-pointer.
    let rc2 = unsafe { ffi::MPI_Error_string(rc, buf.as_mut_ptr(), &mut len) };
    let msg = if i64::from(rc2) == ffi::MPI_SUCCESS as i64 {
        let n = (len.max(0) as usize).min(buf.len());
        buf[..n]
            .iter()
            .map(|&c| c as u8 as char)
            .collect::<String>()
    } else {
        "no message".to_string()
    };
    Err(Error::Mpi(format!("{call} returned {rc}: {msg}")))
}

/// The bytes of a slice of elements.
fn bytes<T: Element>(s: &[T]) -> &[u8] {
    // SAFETY: `Element` is sealed and implemented only for f32, f64, f16 and
    // bf16: plain values without padding, so every byte is initialised; the
    // length in bytes is the slice's size, and the lifetime is the slice's.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// The bytes of a mutable slice of elements.
fn bytes_mut<T: Element>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `bytes`; in addition every bit pattern is a valid f32,
    // f64, f16 or bf16, so any bytes written through the view leave valid
    // elements, and the view borrows `s` exclusively.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// `counts[i] * unit` as MPI counts and displacements.
fn counts_displs(counts: &[usize], unit: usize) -> (Vec<c_int>, Vec<c_int>) {
    let c: Vec<usize> = counts.iter().map(|&c| c * unit).collect();
    let d = exclusive_prefix(&c);
    // (the entry limit checked before the header keeps every total below
    // i32::MAX; saturate rather than wrap if that were ever broken)
    let int = |x: usize| c_int::try_from(x).unwrap_or(c_int::MAX);
    (
        c.iter().map(|&x| int(x)).collect(),
        d.iter().map(|&x| int(x)).collect(),
    )
}

impl Exchange {
    /// Sets up the exchange for this rank (collective: duplicates `comm`).
    /// `sharding.ranks()` must be the communicator's size.
    pub fn new<C: Communicator>(comm: &C, sharding: Sharding) -> Result<Exchange> {
        let comm = comm.duplicate();
        // SAFETY: `comm` is a valid communicator (just duplicated) and
        // RSMPI_ERRORS_RETURN is MPI's predefined error handler.
        check(
            unsafe { ffi::MPI_Comm_set_errhandler(comm.as_raw(), ffi::RSMPI_ERRORS_RETURN) },
            "MPI_Comm_set_errhandler",
        )?;
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        if sharding.ranks() != size {
            return Err(Error::Length {
                arg: "sharding (ranks)",
                expected: size,
                actual: sharding.ranks(),
            });
        }
        let shard = sharding.shard(rank)?;
        Ok(Exchange {
            comm,
            rank,
            size,
            fingerprint: sharding.fingerprint(),
            sharding,
            shard,
            send_ids: Vec::new(),
            recv_ids: Vec::new(),
            rows: Vec::new(),
            cols: Vec::new(),
        })
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.size
    }

    /// The layout.
    pub fn sharding(&self) -> &Sharding {
        &self.sharding
    }

    /// This rank's shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// The most bytes of entries a rank may send in one call.
    pub fn max_bytes_per_call(&self) -> usize {
        i32::MAX as usize / self.size
    }

    /// One Adagrad step on the sharded table with this rank's row-sparse
    /// gradient (`values`: `ids.len() x cols`, row `k` for global row
    /// `ids[k]`), collective. `param` and `state` are this rank's shard
    /// (`shard().rows() x cols`). See the module docs for the bits and the
    /// errors.
    #[allow(clippy::too_many_arguments)]
    pub fn step_rows<P: AdagradElement>(
        &mut self,
        opt: &Adagrad,
        param: &mut [P],
        state: &mut AdagradState<P::State>,
        cols: usize,
        ids: &[usize],
        values: &[P],
    ) -> Result<Traffic> {
        let local = self
            .check_step(opt, param.len(), state.sum.len(), cols)
            .and_then(|()| self.sharding.partition_rows(ids, cols, values))
            .and_then(|b| self.check_volume(b, 1, cols * std::mem::size_of::<P>()));
        self.step_exchanged(opt, param, state, cols, local, false)
    }

    /// One Adagrad step with this rank's COO gradient (`values[k]` at global
    /// row `row_inds[k]`, column `col_inds[k] < cols`), collective.
    #[allow(clippy::too_many_arguments)]
    pub fn step_coo<P: AdagradElement>(
        &mut self,
        opt: &Adagrad,
        param: &mut [P],
        state: &mut AdagradState<P::State>,
        cols: usize,
        row_inds: &[usize],
        col_inds: &[usize],
        values: &[P],
    ) -> Result<Traffic> {
        let local = self
            .check_step(opt, param.len(), state.sum.len(), cols)
            .and_then(|()| {
                validate::check_indices("col_inds", col_inds, cols)?;
                self.sharding.partition_coo(row_inds, col_inds, values)
            })
            .and_then(|b| self.check_volume(b, 2, std::mem::size_of::<P>()));
        self.step_exchanged(opt, param, state, cols, local, true)
    }

    /// Fetches the rows `ids` (global) from their owners into `out`
    /// (`ids.len() x cols`), collective: every rank passes its own ids and
    /// its shard `param` (`shard().rows() x cols`), and answers the others'
    /// requests from it.
    pub fn lookup<P: Element>(
        &mut self,
        param: &[P],
        cols: usize,
        ids: &[usize],
        out: &mut [P],
    ) -> Result<Traffic> {
        let sz = std::mem::size_of::<P>();
        let local = (|| {
            validate::check_param_shape(self.shard.rows(), cols, param.len())?;
            check_shape("out", ids.len(), cols, out.len())?;
            let route = self.sharding.route(ids, "ids")?;
            let bytes = ids.len().saturating_mul(8 + cols * sz);
            if bytes > self.max_bytes_per_call() {
                return Err(self.volume_error(bytes));
            }
            Ok(route)
        })();
        let heads = self.agree(local.as_ref().map(|r| r.counts()), cols)?;
        // (`agree` returned this rank's own error if it refused)
        let route = local?;
        let recv_counts: Vec<usize> = heads.iter().map(|h| h[1] as usize).collect();
        // the ids to their owners
        self.send_ids.clear();
        self.send_ids.extend(route.ids().iter().map(|&g| g as u64));
        self.alltoallv_ids(route.counts(), &recv_counts, 1)?;
        // the owners answer from their shards
        self.rows.clear();
        self.rows.extend(self.recv_ids.iter().map(|&g| g as usize));
        let mut reply = vec![P::default(); self.rows.len() * cols];
        self.shard.read_rows(param, cols, &self.rows, &mut reply)?;
        let mut packed = vec![P::default(); ids.len() * cols];
        let (sc, sd) = counts_displs(&recv_counts, cols * sz);
        let (rc, rd) = counts_displs(route.counts(), cols * sz);
        self.alltoallv(bytes(&reply), &sc, &sd, bytes_mut(&mut packed), &rc, &rd)?;
        route.place_rows(&packed, cols, out)?;
        let (asked_out, asked_in) = (self.others(route.counts()), self.others(&recv_counts));
        Ok(Traffic {
            entries_sent: asked_out,
            entries_received: asked_in,
            bytes_sent: asked_out * 8 + asked_in * cols * sz,
            bytes_received: asked_in * 8 + asked_out * cols * sz,
        })
    }

    /// Gathers every rank's shard (`local`: `shard().rows() x width`) to
    /// `root` in global row order, collective: `Some(table)` on `root`,
    /// `None` elsewhere. For checkpoints and checks; a training loop never
    /// needs it.
    pub fn gather<T: Element>(
        &mut self,
        local: &[T],
        width: usize,
        root: usize,
    ) -> Result<Option<Vec<T>>> {
        let sz = std::mem::size_of::<T>();
        let shards: Vec<Shard> = (0..self.size)
            .map(|r| self.sharding.shard(r))
            .collect::<Result<_>>()?;
        let total = self
            .sharding
            .rows()
            .checked_mul(width)
            .and_then(|n| n.checked_mul(sz));
        let ok = if root >= self.size {
            Err(Error::Index {
                arg: "root",
                index: root,
                position: 0,
                bound: self.size,
            })
        } else if total.is_none_or(|t| t > i32::MAX as usize) {
            Err(self.volume_error(total.unwrap_or(usize::MAX)))
        } else {
            check_shape("local", self.shard.rows(), width, local.len()).map(|()| vec![0; self.size])
        };
        // a refusal on one rank must not leave the others in the gather
        self.agree(ok.as_deref(), width)?;
        let counts: Vec<usize> = shards.iter().map(|s| s.rows()).collect();
        let (rc, rd) = counts_displs(&counts, width * sz);
        let is_root = self.rank == root;
        let mut all = vec![
            T::default();
            if is_root {
                self.sharding.rows() * width
            } else {
                0
            }
        ];
        let send = bytes(local);
        let recv = bytes_mut(&mut all);
        // SAFETY: `send` is valid for `send.len()` bytes; on the root `recv`
        // holds the sum of `rc`, which `rd` places without overlap (an
        // exclusive prefix sum); the counts and displacements live across
        // the call; elsewhere MPI ignores the receive arguments.
        let rc_ = unsafe {
            ffi::MPI_Gatherv(
                send.as_ptr() as *const c_void,
                send.len() as c_int,
                ffi::RSMPI_UINT8_T,
                recv.as_mut_ptr() as *mut c_void,
                rc.as_ptr(),
                rd.as_ptr(),
                ffi::RSMPI_UINT8_T,
                root as c_int,
                self.comm.as_raw(),
            )
        };
        check(rc_, "MPI_Gatherv")?;
        if !is_root {
            return Ok(None);
        }
        // shards arrive one after another; put each row at its global place
        let mut table = vec![T::default(); all.len()];
        let mut at = 0;
        for s in &shards {
            for l in 0..s.rows() {
                let g = s.global(l);
                table[g * width..(g + 1) * width].copy_from_slice(&all[at..at + width]);
                at += width;
            }
        }
        Ok(Some(table))
    }

    /// The sum of `counts` over the other ranks.
    fn others(&self, counts: &[usize]) -> usize {
        counts
            .iter()
            .enumerate()
            .filter(|&(r, _)| r != self.rank)
            .map(|(_, &c)| c)
            .sum()
    }

    fn volume_error(&self, bytes: usize) -> Error {
        Error::Param {
            name: "bytes per call",
            value: bytes as f64,
            expected: "below i32::MAX / ranks (MPI counts are int): split the batch",
        }
    }

    fn check_step(&self, opt: &Adagrad, param: usize, state: usize, cols: usize) -> Result<()> {
        opt.validate()?;
        validate::check_param_shape(self.shard.rows(), cols, param)?;
        validate::check_state(param, state)
    }

    fn check_volume<T: Copy>(
        &self,
        b: Buckets<T>,
        id_words: usize,
        value_bytes: usize,
    ) -> Result<Buckets<T>> {
        let n = b.rows().len();
        let bytes = n.saturating_mul(id_words * 8 + value_bytes);
        if bytes > self.max_bytes_per_call() {
            return Err(self.volume_error(bytes));
        }
        Ok(b)
    }

    /// The header round: every rank learns whether every other accepted its
    /// input, how many entries it sends here, and that layouts and column
    /// counts match. Returns the headers received (source by source) when
    /// every rank accepted, else the error every rank returns (this rank's
    /// own when it refused).
    fn agree(
        &mut self,
        local: std::result::Result<&[usize], &Error>,
        cols: usize,
    ) -> Result<Vec<[u64; HEADER]>> {
        let mut send = vec![0u64; HEADER * self.size];
        for (d, h) in send.chunks_exact_mut(HEADER).enumerate() {
            let (status, count) = match local {
                Ok(counts) => (OK, counts[d] as u64),
                Err(_) => (REFUSED, 0),
            };
            h.copy_from_slice(&[status, count, self.fingerprint, cols as u64]);
        }
        let mut recv = vec![0u64; HEADER * self.size];
        // SAFETY: both buffers hold HEADER u64 for each of the `size` ranks,
        // as the counts say; they live across the call.
        let rc = unsafe {
            ffi::MPI_Alltoall(
                send.as_ptr() as *const c_void,
                HEADER as c_int,
                ffi::RSMPI_UINT64_T,
                recv.as_mut_ptr() as *mut c_void,
                HEADER as c_int,
                ffi::RSMPI_UINT64_T,
                self.comm.as_raw(),
            )
        };
        check(rc, "MPI_Alltoall (header)")?;
        let heads: Vec<[u64; HEADER]> = recv
            .chunks_exact(HEADER)
            .map(|h| [h[0], h[1], h[2], h[3]])
            .collect();
        if let Err(e) = local {
            return Err(e.clone());
        }
        if let Some(r) = heads.iter().position(|h| h[0] != OK) {
            return Err(Error::Peer {
                rank: r,
                reason: "its input was refused there".into(),
            });
        }
        if let Some(r) = heads.iter().position(|h| h[2] != self.fingerprint) {
            return Err(Error::Peer {
                rank: r,
                reason: format!(
                    "its sharding differs (fingerprint {:#x}, here {:#x})",
                    heads[r][2], self.fingerprint
                ),
            });
        }
        if let Some(r) = heads.iter().position(|h| h[3] != cols as u64) {
            return Err(Error::Peer {
                rank: r,
                reason: format!("its column count is {}, here {cols}", heads[r][3]),
            });
        }
        Ok(heads)
    }

    /// Sends `self.send_ids` (packed by destination, `per` words an entry)
    /// and receives into `self.recv_ids`.
    fn alltoallv_ids(&mut self, send: &[usize], recv: &[usize], per: usize) -> Result<()> {
        let total: usize = recv.iter().sum();
        self.recv_ids.clear();
        self.recv_ids.resize(total * per, 0);
        let (sc, sd) = counts_displs(send, per);
        let (rc, rd) = counts_displs(recv, per);
        // SAFETY: `send_ids` holds the sum of `sc` words and `recv_ids` the
        // sum of `rc`; the displacements are exclusive prefix sums, so every
        // block lies inside its buffer; all of it lives across the call.
        let rc_ = unsafe {
            ffi::MPI_Alltoallv(
                self.send_ids.as_ptr() as *const c_void,
                sc.as_ptr(),
                sd.as_ptr(),
                ffi::RSMPI_UINT64_T,
                self.recv_ids.as_mut_ptr() as *mut c_void,
                rc.as_ptr(),
                rd.as_ptr(),
                ffi::RSMPI_UINT64_T,
                self.comm.as_raw(),
            )
        };
        check(rc_, "MPI_Alltoallv (ids)")
    }

    /// `MPI_Alltoallv` of bytes.
    fn alltoallv(
        &self,
        send: &[u8],
        sc: &[c_int],
        sd: &[c_int],
        recv: &mut [u8],
        rc: &[c_int],
        rd: &[c_int],
    ) -> Result<()> {
        // SAFETY: the callers size `send` and `recv` as the sums of `sc` and
        // `rc` bytes, and the displacements are exclusive prefix sums of the
        // counts, so every block lies inside its buffer; everything lives
        // across the call.
        let r = unsafe {
            ffi::MPI_Alltoallv(
                send.as_ptr() as *const c_void,
                sc.as_ptr(),
                sd.as_ptr(),
                ffi::RSMPI_UINT8_T,
                recv.as_mut_ptr() as *mut c_void,
                rc.as_ptr(),
                rd.as_ptr(),
                ffi::RSMPI_UINT8_T,
                self.comm.as_raw(),
            )
        };
        check(r, "MPI_Alltoallv (values)")
    }

    /// The common tail of the steps: header, ids, values, then the update.
    fn step_exchanged<P: AdagradElement>(
        &mut self,
        opt: &Adagrad,
        param: &mut [P],
        state: &mut AdagradState<P::State>,
        cols: usize,
        local: Result<Buckets<P>>,
        coo: bool,
    ) -> Result<Traffic> {
        let heads = self.agree(local.as_ref().map(|b| b.counts()), cols)?;
        let b = local?;
        let recv_counts: Vec<usize> = heads.iter().map(|h| h[1] as usize).collect();
        let per = if coo { 2 } else { 1 };
        self.send_ids.clear();
        if coo {
            for (&r, &c) in b.rows().iter().zip(b.col_inds()) {
                self.send_ids.extend([r as u64, c as u64]);
            }
        } else {
            self.send_ids.extend(b.rows().iter().map(|&g| g as u64));
        }
        self.alltoallv_ids(b.counts(), &recv_counts, per)?;
        let width = b.width();
        let sz = std::mem::size_of::<P>();
        let n_in: usize = recv_counts.iter().sum();
        let mut values = vec![P::default(); n_in * width];
        let (sc, sd) = counts_displs(b.counts(), width * sz);
        let (rc, rd) = counts_displs(&recv_counts, width * sz);
        self.alltoallv(
            bytes(b.values()),
            &sc,
            &sd,
            bytes_mut(&mut values),
            &rc,
            &rd,
        )?;
        self.rows.clear();
        self.cols.clear();
        if coo {
            for pair in self.recv_ids.chunks_exact(2) {
                self.rows.push(pair[0] as usize);
                self.cols.push(pair[1] as usize);
            }
            opt.step_coo_shard(
                param,
                &self.shard,
                cols,
                &self.rows,
                &self.cols,
                &values,
                state,
            )?;
        } else {
            self.rows.extend(self.recv_ids.iter().map(|&g| g as usize));
            opt.step_rows_shard(param, &self.shard, cols, &self.rows, &values, state)?;
        }
        let (out, inn) = (self.others(b.counts()), self.others(&recv_counts));
        let entry = per * 8 + width * sz;
        Ok(Traffic {
            entries_sent: out,
            entries_received: inn,
            bytes_sent: out * entry,
            bytes_received: inn * entry,
        })
    }
}
