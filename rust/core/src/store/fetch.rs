//! Object storage: which objects and byte ranges hold the chunks of a batch (one GET per chunk
//! object; for a sharded store each shard's index once, cached, then one range GET per run of
//! neighbouring inner chunks), fetched concurrently and handed back per sample.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use object_store::GetRange;

use super::CubeStore;
use crate::error::{CoreError, CoreResult};
use crate::remote::{self, RemoteStore};
use crate::shard::{ShardIndex, Sharding};

/// Largest single range request for neighbouring inner chunks of a shard.
const MAX_RANGE_GROUP: u64 = 64 << 20;
/// Inner chunks of a shard this close are fetched in one request, the gap read through (a
/// request costs as much as reading 0.25-2 MB on the servers measured, docs/object-storage.md;
/// object_store coalesces ranges within 1 MB too).
const MAX_RANGE_GAP: u64 = 1 << 20;

/// The chunks of a batch as they arrive from object storage ([`CubeStore::stream_chunks`]).
pub struct Arrivals<'a> {
    store: &'a CubeStore,
    samples: &'a [u64],
    rx: remote::Arrivals,
}

/// What [`Arrivals::next_within`] saw.
pub enum Arrival {
    /// The chunk of the batch's `.0`-th sample, or the error naming it.
    Chunk(usize, CoreResult<bytes::Bytes>),
    /// Nothing arrived in the time given; more may come.
    Waiting,
    /// Every fetch has ended.
    Done,
}

impl Arrivals<'_> {
    /// The next chunk to arrive within `wait` (a caller between two arrivals can ask to stop).
    pub fn next_within(&self, wait: Duration) -> Arrival {
        match self.rx.recv_timeout(wait) {
            Ok((i, got)) => match self.samples.get(i) {
                Some(&sample) => Arrival::Chunk(i, self.store.fetched(sample, got)),
                None => Arrival::Waiting, // not one of ours (cannot happen: positions come from our keys)
            },
            Err(RecvTimeoutError::Timeout) => Arrival::Waiting,
            Err(RecvTimeoutError::Disconnected) => Arrival::Done,
        }
    }
}

impl CubeStore {
    /// Fetch the encoded chunks of `samples` from object storage, concurrently; results in
    /// order, each failure named by its sample (`Err` as a whole only when the runtime fails).
    pub fn fetch_chunks(&self, samples: &[u64]) -> CoreResult<Vec<CoreResult<bytes::Bytes>>> {
        let Some(remote) = &self.remote else {
            return Err(CoreError::InvalidArgument("fetch_chunks: a local store is read by path".into()));
        };
        if let Some(sharding) = self.sharding {
            return self.fetch_inner_chunks(remote, sharding, samples);
        }
        let keys: Vec<String> = samples.iter().map(|&s| self.chunk_key(s)).collect();
        let got = remote.get_many(&keys, self.max_chunk_len())?;
        Ok(samples.iter().zip(got).map(|(&s, g)| self.fetched(s, g)).collect())
    }

    /// [`Self::fetch_chunks`] of a sharded store: each shard's index (fetched once, a suffix or
    /// prefix range), then one range GET per run of neighbouring inner chunks of a shard.
    fn fetch_inner_chunks(&self, remote: &RemoteStore, sharding: Sharding, samples: &[u64]) -> CoreResult<Vec<CoreResult<bytes::Bytes>>> {
        let mut shards: Vec<u64> = samples.iter().map(|&s| sharding.locate(s).0).collect();
        shards.sort_unstable();
        shards.dedup();
        let indexes = self.remote_shard_indexes(remote, sharding, &shards)?;
        // Each sample's inner range, or why it has none; then ranges grouped per shard.
        let mut wanted: Vec<Result<(u64, Range<u64>), String>> = Vec::with_capacity(samples.len());
        for &sample in samples {
            let (shard, j) = sharding.locate(sample);
            wanted.push(match &indexes[&shard] {
                Ok(index) => self.inner_range(sharding, index, j).map(|r| (shard, r)),
                Err(why) => Err(why.clone()),
            });
        }
        let mut by_shard: Vec<(u64, Vec<Range<u64>>)> = Vec::new();
        for (shard, range) in wanted.iter().filter_map(|w| w.as_ref().ok()) {
            match by_shard.iter_mut().find(|(s, _)| s == shard) {
                Some((_, ranges)) => ranges.push(range.clone()),
                None => by_shard.push((*shard, vec![range.clone()])),
            }
        }
        let mut requests: Vec<(String, GetRange)> = Vec::new();
        let mut groups: Vec<(u64, Range<u64>)> = Vec::new();
        for (shard, mut ranges) in by_shard {
            ranges.sort_by_key(|r| r.start);
            for r in ranges {
                match groups.last_mut() {
                    // neighbours in the same shard (or a repeat): one request, a small gap read through
                    Some((s, g)) if *s == shard && r.start <= g.end + MAX_RANGE_GAP && r.end.max(g.end) - g.start <= MAX_RANGE_GROUP => {
                        g.end = g.end.max(r.end)
                    }
                    _ => groups.push((shard, r)),
                }
            }
        }
        for (shard, g) in &groups {
            requests.push((self.shard_key(*shard), GetRange::Bounded(g.clone())));
        }
        let fetched = remote.get_ranges(&requests, MAX_RANGE_GROUP.max(self.max_chunk_len()))?;
        let mut got: Vec<(u64, Range<u64>, Result<bytes::Bytes, String>)> = Vec::with_capacity(groups.len());
        for ((shard, g), result) in groups.into_iter().zip(fetched) {
            let bytes = shard_outcome(result, "chunk missing (the shard object is gone)")?.map(|(bytes, _)| bytes);
            got.push((shard, g, bytes));
        }
        Ok(samples
            .iter()
            .zip(wanted)
            .map(|(&sample, want)| {
                let fail = |why: String| CoreError::integrity(self.location(sample), why);
                let (shard, range) = want.map_err(fail)?;
                let (_, group, bytes) = got
                    .iter()
                    .find(|(s, g, _)| *s == shard && g.start <= range.start && range.end <= g.end)
                    .expect("every wanted range was requested in a group");
                let at = (range.start - group.start) as usize..(range.end - group.start) as usize;
                bytes.as_ref().map(|b| b.slice(at)).map_err(|why| fail(why.clone()))
            })
            .collect())
    }

    /// The checked indexes of `shards` (from the cache, else fetched concurrently); a shard whose
    /// index is missing or bad maps to the reason.
    fn remote_shard_indexes(&self, remote: &RemoteStore, sharding: Sharding, shards: &[u64])
                            -> CoreResult<HashMap<u64, Result<Arc<ShardIndex>, String>>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.shard_indexes.lock().unwrap_or_else(|p| p.into_inner());
            for &shard in shards {
                match cache.get(&shard) {
                    Some(index) => {
                        out.insert(shard, Ok(index.clone()));
                    }
                    None => missing.push(shard),
                }
            }
        }
        let len = sharding.index_len();
        let range = if sharding.index_at_end { GetRange::Suffix(len) } else { GetRange::Bounded(0..len) };
        let requests: Vec<(String, GetRange)> = missing.iter().map(|&s| (self.shard_key(s), range.clone())).collect();
        let fetched = remote.get_ranges(&requests, len)?;
        for (&shard, result) in missing.iter().zip(fetched) {
            let index = shard_outcome(result, "chunk missing (no shard object)")?.and_then(|(bytes, size)| {
                sharding.index_range(size).and_then(|_| sharding.parse_index(&bytes, size)).map(Arc::new)
            });
            if let Ok(index) = &index {
                self.shard_indexes.lock().unwrap_or_else(|p| p.into_inner()).insert(shard, index.clone());
            }
            out.insert(shard, index);
        }
        Ok(out)
    }

    /// An inner chunk's byte range in its shard, refusing an absent chunk or one larger than any
    /// encoding of a sample.
    pub(super) fn inner_range(&self, sharding: Sharding, index: &ShardIndex, j: usize) -> Result<Range<u64>, String> {
        let range = sharding.inner_range(index, j)?.ok_or("chunk missing")?;
        if range.end - range.start > self.max_chunk_len() {
            return Err(format!("chunk holds {} bytes, more than any encoding of the sample may take", range.end - range.start));
        }
        Ok(range)
    }


    /// Fetch the encoded chunks of `samples` from object storage, delivered as they arrive
    /// (`remote::RemoteStore::stream_many`), each as its sample's chunk or the error naming it.
    pub fn stream_chunks<'a>(&'a self, samples: &'a [u64]) -> CoreResult<Arrivals<'a>> {
        let Some(remote) = &self.remote else {
            return Err(CoreError::InvalidArgument("stream_chunks: a local store is read by path".into()));
        };
        let rx = if self.sharding.is_some() {
            // Shards: fetched together (neighbours share requests), then handed over at once.
            let (tx, rx) = std::sync::mpsc::channel();
            for (i, got) in self.fetch_chunks(samples)?.into_iter().enumerate() {
                let _ = tx.send((i, got.map(Some)));
            }
            rx
        } else {
            remote.stream_many(samples.iter().map(|&s| self.chunk_key(s)).collect(), self.max_chunk_len())?
        };
        Ok(Arrivals { store: self, samples, rx })
    }

    /// Start fetching the chunk objects of `samples` in the background (read-ahead); `None` for
    /// a local store or when the batch's largest possible size exceeds the read-ahead budget.
    pub fn spawn_fetch(&self, samples: &[u64]) -> CoreResult<Option<remote::Pending>> {
        let Some(remote) = &self.remote else { return Ok(None) };
        if self.sharding.is_some() {
            return Ok(None); // a sharded store's batch is fetched when it is read
        }
        if samples.len() as u64 * self.max_chunk_len() > remote.settings().readahead_bytes {
            return Ok(None);
        }
        let keys = samples.iter().map(|&s| self.chunk_key(s)).collect();
        remote.spawn_get_many(keys, self.max_chunk_len()).map(Some)
    }

    /// The result of [`Self::spawn_fetch`], as [`Self::fetch_chunks`] returns it (`None` when the
    /// read-ahead belongs to another process).
    pub fn finish_fetch(&self, samples: &[u64], pending: remote::Pending) -> CoreResult<Option<Vec<CoreResult<bytes::Bytes>>>> {
        Ok(pending.wait()?.map(|got| samples.iter().zip(got).map(|(&s, g)| self.fetched(s, g)).collect()))
    }

    /// A fetched chunk object of `sample`, or the error naming the sample's chunk.
    fn fetched(&self, sample: u64, got: CoreResult<Option<bytes::Bytes>>) -> CoreResult<bytes::Bytes> {
        match got {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(CoreError::integrity(self.location(sample), String::from("chunk missing"))),
            Err(CoreError::Integrity { reason, .. }) => Err(CoreError::integrity(self.location(sample), reason)),
            Err(other) => Err(other),
        }
    }

    pub(super) fn fetch_chunk(&self, remote: &RemoteStore, sample: u64) -> CoreResult<bytes::Bytes> {
        if self.sharding.is_some() {
            return self.fetch_chunks(&[sample])?.pop().expect("one sample asked, one result");
        }
        self.fetched(sample, remote.get(&self.chunk_key(sample), self.max_chunk_len()))
    }
}

/// A shard request's result as the sample's outcome: the part, or the reason its samples fail
/// (`missing` when the object is absent, an integrity reason as is); any other error (the
/// store unreachable, denied) fails the whole batch.
fn shard_outcome<T>(got: CoreResult<Option<T>>, missing: &str) -> CoreResult<Result<T, String>> {
    match got {
        Ok(Some(part)) => Ok(Ok(part)),
        Ok(None) => Ok(Err(missing.to_string())),
        Err(CoreError::Integrity { reason, .. }) => Ok(Err(reason)),
        Err(other) => Err(other),
    }
}
