//! One batch, one call: decode each sample's chunk, verify and normalize it straight into its
//! slot of the caller's contiguous [B, V, L, H, W] buffer, in parallel over samples (float32, or
//! bfloat16 bits narrowed from a per-thread float32 sample).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::cancel::{self, Cancel};
use crate::error::{CoreError, CoreResult};
use crate::kernel::{verify_normalize_into, Affine, FaultKind, NormStats, ValueFault};
use crate::manifest::NormMode;
use crate::pool;
use crate::remote::Pending;
use crate::store::{describe_range, Arrival, CubeStore};

/// Batches a reader holds in flight ahead of its reads (memory: this many batches of encoded
/// chunks at most, each within `ASTROBIO_S3_READAHEAD_MB`).
pub const READ_AHEAD_BATCHES: usize = 2;
/// How long a streamed remote read waits for the next chunk before it asks whether to stop.
const ARRIVAL_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

thread_local! {
    /// One float32 sample per pool thread for the narrowing reads (reused across batches).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// bfloat16 bits of `x`, rounded to nearest, ties to even: the upper half of the float32 after
/// adding 0x7FFF plus the lowest kept bit. Values reaching here passed the finite check.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    (bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// `dst[i] = bf16_bits(src[i])` (the compiler vectorizes this loop).
pub fn narrow_bf16(src: &[f32], dst: &mut [u16]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = bf16_bits(x);
    }
}

pub struct BatchReader {
    store: CubeStore,
    cube_norm: NormStats,
    param_norm: NormStats,
    cube_affine: Affine,
    param_affine: Affine,
    threads: usize,
    /// Object storage: batches being fetched ahead ([`Self::prefetch`]), oldest first.
    ahead: Mutex<VecDeque<(Vec<u64>, Pending)>>,
}

impl BatchReader {
    /// Open a store for batched reads; `threads` = 0 uses every core this process may use.
    pub fn open(root: impl AsRef<Path>, mode: NormMode, threads: usize) -> CoreResult<Self> {
        let store = CubeStore::open(root)?;
        let cube_norm = store.manifest().cube_norm(mode);
        let param_norm = store.manifest().param_norm(mode);
        let (cube_affine, param_affine) = (Affine::from(&cube_norm), Affine::from(&param_norm));
        Ok(BatchReader { store, cube_norm, param_norm, cube_affine, param_affine, threads, ahead: Mutex::new(VecDeque::new()) })
    }

    pub fn store(&self) -> &CubeStore {
        &self.store
    }
    /// The cube normalization this reader applies, per (variable, level) slab ([V, L], C order).
    pub fn cube_norm(&self) -> &NormStats {
        &self.cube_norm
    }
    /// The parameter normalization this reader applies ([P]).
    pub fn param_norm(&self) -> &NormStats {
        &self.param_norm
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    /// Values in one sample (V*L*H*W).
    pub fn sample_len(&self) -> usize {
        self.store.layout().len()
    }

    /// Fill `out` (exactly `indices.len() * sample_len()` values) with the normalized samples.
    /// On failure the error names the first failing sample in batch order, and `out` holds
    /// no promise about its contents. `cancel` is asked between slices of the batch.
    pub fn read_batch_into(&self, indices: &[i64], out: &mut [f32], cancel: &dyn Cancel) -> CoreResult<()> {
        self.read_batch_with(indices, out, cancel, |sample, bytes, dst| self.read_sample_into(sample, bytes, dst))
    }

    /// [`Self::read_batch_into`] narrowed to bfloat16 (the bits, round to nearest even, as
    /// torch's `.to(torch.bfloat16)` does): half the bytes to move to the device. Each sample is
    /// decoded, verified and normalized into a float32 scratch of one sample per thread (it stays
    /// in cache), then narrowed into its slot.
    pub fn read_batch_bf16_into(&self, indices: &[i64], out: &mut [u16], cancel: &dyn Cancel) -> CoreResult<()> {
        let n = self.sample_len();
        self.read_batch_with(indices, out, cancel, |sample, bytes, dst| {
            SCRATCH.with(|cell| {
                let mut scratch = cell.borrow_mut();
                scratch.resize(n, 0.0);
                self.read_sample_into(sample, bytes, &mut scratch)?;
                narrow_bf16(&scratch, dst);
                Ok(())
            })
        })
    }

    /// The batch loop shared by every output type: indices checked, the chunk objects of a
    /// remote store fetched together (or taken from the read-ahead), then `write(sample, fetched
    /// bytes or None for a local file, slot)` in parallel over the slots of one slice of the
    /// batch at a time (`cancel` asked before each slice).
    fn read_batch_with<T: Send>(&self, indices: &[i64], out: &mut [T], cancel: &dyn Cancel,
                                write: impl Fn(u64, Option<&[u8]>, &mut [T]) -> CoreResult<()> + Sync) -> CoreResult<()> {
        let n = self.sample_len().max(1);
        check_buffer("output buffer", out.len(), indices.len(), n)?;
        let samples = indices.iter().map(|&i| self.store.check_index(i)).collect::<CoreResult<Vec<_>>>()?;
        let mut fetched = None;
        if self.store.remote().is_some() {
            // Object storage: every chunk object of the batch in flight at once (bounded), then
            // the same per-sample kernel on the fetched bytes.
            // The read-ahead is used when it is this batch; another batch's stays in flight.
            let ahead = {
                let mut queue = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
                queue.iter().position(|(next, _)| *next == samples).and_then(|i| queue.remove(i))
            };
            match ahead.map(|(_, pending)| self.store.finish_fetch(&samples, pending)).transpose()?.flatten() {
                Some(got) => fetched = Some(got.into_iter()),
                None => return self.read_streamed(&samples, out, cancel, &write),
            }
        }
        let pool = pool::pool(self.threads);
        let per = cancel::slice_samples(n as u64 * 4, pool.current_num_threads());
        for (slots, part) in out.chunks_mut(per * n).zip(samples.chunks(per)) {
            cancel::check(cancel)?;
            let got: Option<Vec<_>> = fetched.as_mut().map(|f| f.by_ref().take(part.len()).collect());
            let results: Vec<CoreResult<()>> = pool.install(|| match got {
                Some(got) => slots
                    .par_chunks_mut(n)
                    .zip(part.par_iter().zip(got.into_par_iter()))
                    .map(|(dst, (&sample, got))| write(sample, Some(got?.as_ref()), dst))
                    .collect(),
                None => slots.par_chunks_mut(n).zip(part.par_iter()).map(|(dst, &sample)| write(sample, None, dst)).collect(),
            });
            results.into_iter().collect::<CoreResult<()>>()?;
        }
        Ok(())
    }

    /// A remote batch without read-ahead: each chunk object is decoded into its slot as soon as it
    /// arrives, while the rest are still in flight (fetch and decode overlap); `cancel` is asked
    /// while waiting. Errors are reported as the parallel path does: the first by batch position.
    fn read_streamed<T: Send>(&self, samples: &[u64], out: &mut [T], cancel: &dyn Cancel,
                              write: &(impl Fn(u64, Option<&[u8]>, &mut [T]) -> CoreResult<()> + Sync)) -> CoreResult<()> {
        let n = self.sample_len();
        let arrivals = self.store.stream_chunks(samples)?;
        let mut slots: Vec<Option<&mut [T]>> = out.chunks_mut(n.max(1)).map(Some).collect();
        let outcomes: Mutex<Vec<(usize, CoreResult<()>)>> = Mutex::new(Vec::with_capacity(samples.len()));
        let mut stopped = false;
        pool::pool(self.threads).in_place_scope(|scope| loop {
            let (i, got) = match arrivals.next_within(ARRIVAL_WAIT) {
                Arrival::Chunk(i, got) => (i, got),
                Arrival::Waiting if cancel.cancelled() => {
                    stopped = true;
                    break;
                }
                Arrival::Waiting => continue,
                Arrival::Done => break,
            };
            let Some(dst) = slots.get_mut(i).and_then(Option::take) else { continue };
            let (sample, outcomes) = (samples[i], &outcomes);
            scope.spawn(move |_| {
                let done = got.and_then(|bytes| write(sample, Some(bytes.as_ref()), dst));
                outcomes.lock().unwrap_or_else(|p| p.into_inner()).push((i, done));
            });
        });
        if stopped {
            return Err(CoreError::Interrupted); // the fetches still in flight end with `arrivals`
        }
        let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = slots.iter().position(Option::is_some) {
            // the fetch task ended without delivering this sample (its runtime shut down)
            outcomes.push((i, Err(CoreError::integrity(self.store.location(samples[i]), String::from("chunk never arrived")))));
        }
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, r)| r).collect()
    }

    /// Start fetching the chunk objects of the batch `indices` in the background, so that the
    /// next [`Self::read_batch_into`] of exactly these indices finds them fetched (or in flight).
    /// At most [`READ_AHEAD_BATCHES`] batches are held (the batch being read and the next one:
    /// a loader asks for the next batch before it reads the current); a further call cancels the
    /// oldest. Each within the read-ahead budget (`ASTROBIO_S3_READAHEAD_MB`). `Ok(false)`:
    /// nothing started (a local store, which the page cache serves, or a batch over the budget).
    pub fn prefetch(&self, indices: &[i64]) -> CoreResult<bool> {
        if self.store.remote().is_none() {
            return Ok(false);
        }
        let samples = indices.iter().map(|&i| self.store.check_index(i)).collect::<CoreResult<Vec<_>>>()?;
        let Some(pending) = self.store.spawn_fetch(&samples)? else { return Ok(false) };
        let mut queue = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        queue.push_back((samples, pending));
        while queue.len() > READ_AHEAD_BATCHES {
            queue.pop_front(); // dropped: its fetch is cancelled
        }
        Ok(true)
    }

    /// The per-sample kernel of every batch read: decode, check and normalize straight into the
    /// sample's slot (`fetched`: its chunk bytes when the batch fetched them, see
    /// `CubeStore::with_source`). The error names the sample's chunk.
    pub fn read_sample_into(&self, sample: u64, fetched: Option<&[u8]>, dst: &mut [f32]) -> CoreResult<()> {
        let store = &self.store;
        if store.read_normalized_into(sample, fetched, dst, &self.cube_affine)? {
            return Ok(());
        }
        // Rare path: the slot now holds normalized values; decode again to name the fault
        // exactly as the two-buffer pass (and the full-store scan) would.
        let fault = store.with_decoded(sample, fetched, |src| {
            verify_normalize_into(src, dst, store.layout(), &self.cube_affine, store.ranges())
        })?;
        match fault {
            Err(fault) => Err(value_error(store, sample, &fault)),
            Ok(()) => Err(CoreError::integrity(store.location(sample), String::from("the chunk changed while it was read"))),
        }
    }

    /// Fill `out` (`indices.len() * n_params` values) with the normalized parameter rows.
    pub fn read_params_into(&self, indices: &[i64], out: &mut [f32]) -> CoreResult<()> {
        let p = self.store.n_params();
        check_buffer("parameter buffer", out.len(), indices.len(), p)?;
        for (row, &i) in out.chunks_mut(p.max(1)).zip(indices) {
            let sample = self.store.check_index(i)?;
            for (j, (o, &x)) in row.iter_mut().zip(self.store.param_row(sample)).enumerate() {
                *o = (x - self.param_affine.shift[j]) * self.param_affine.scale[j];
            }
        }
        Ok(())
    }
}

/// A caller's buffer must hold exactly `samples` rows of `per_sample` values.
fn check_buffer(what: &str, len: usize, samples: usize, per_sample: usize) -> CoreResult<()> {
    if len == samples * per_sample {
        return Ok(());
    }
    Err(CoreError::InvalidArgument(format!(
        "{what} holds {len} values, the batch needs {} ({samples} samples x {per_sample})",
        samples * per_sample
    )))
}

/// Turn a value fault into an integrity error naming run, chunk, variable, level and value.
pub(crate) fn value_error(store: &CubeStore, sample: u64, fault: &ValueFault) -> CoreError {
    let var = &store.manifest().variables[fault.variable];
    let what = match fault.kind {
        FaultKind::NaN | FaultKind::Inf => describe_range(fault.value, store.ranges()[fault.variable]),
        FaultKind::Overflow => format!("{} that is not finite once normalized (check the variable's statistics)", fault.value),
        FaultKind::OutOfRange => format!(
            "{} {}",
            fault.value,
            describe_range(fault.value, store.ranges()[fault.variable])
        ),
    };
    let width = store.manifest().sample_shape[3].max(1);
    CoreError::integrity(
        store.location(sample),
        format!(
            "variable {:?} level {} has a value {what} at lat index {}, lon index {}",
            var.name,
            fault.level,
            fault.offset / width,
            fault.offset % width
        ),
    )
}


#[cfg(test)]
mod tests {
    use super::{bf16_bits, narrow_bf16};

    #[test]
    fn bf16_rounds_to_nearest_even_like_torch() {
        assert_eq!(bf16_bits(1.0), 0x3F80);
        assert_eq!(bf16_bits(-2.5), 0xC020);
        assert_eq!(bf16_bits(0.0), 0x0000);
        assert_eq!(bf16_bits(-0.0), 0x8000);
        // exactly half way: ties to the even neighbour
        assert_eq!(bf16_bits(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(bf16_bits(f32::from_bits(0x3F81_8000)), 0x3F82);
        // just above / below half way
        assert_eq!(bf16_bits(f32::from_bits(0x3F80_8001)), 0x3F81);
        assert_eq!(bf16_bits(f32::from_bits(0x3F80_7FFF)), 0x3F80);
        // the largest finite floats round up to infinity, as a conversion must
        assert_eq!(bf16_bits(f32::MAX), 0x7F80);
    }

    #[test]
    fn narrowing_a_slice_is_elementwise() {
        let src = [1.0f32, -2.5, 3.140625, 1e-3];
        let mut dst = [0u16; 4];
        narrow_bf16(&src, &mut dst);
        assert_eq!(dst, src.map(bf16_bits));
    }
}
