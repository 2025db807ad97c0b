//! Which bytes belong to which sample: the one place a sample's encoded chunk is located, for
//! every kind of store (its own chunk file, its inner chunk of a shard file, bytes fetched from
//! object storage). The decode path (decode.rs) takes what this hands it.

use std::path::PathBuf;

use super::CubeStore;
use crate::chunk::ChunkError;
use crate::error::{CoreError, CoreResult};
use crate::regular::open_regular;
use crate::shard::Sharding;

/// Where a sample's encoded chunk is read from.
#[derive(Debug)]
pub enum ChunkSource<'a> {
    /// The sample's own chunk file in a local directory, mapped (or read) by path as it decodes.
    File(PathBuf),
    /// The sample's inner chunk, read out of its local shard file.
    ShardInner(&'a [u8]),
    /// The sample's chunk object (or its inner chunk's range of a shard) from object storage.
    Fetched(&'a [u8]),
}

impl CubeStore {
    /// Locate `sample`'s chunk and hand its source to `f`: the bytes the caller fetched (a batch's
    /// concurrent fetch, the read-ahead), else fetched now (object storage), read out of the local
    /// shard file, or the local chunk file.
    pub fn with_source<R>(
        &self,
        sample: u64,
        fetched: Option<&[u8]>,
        f: impl FnOnce(ChunkSource<'_>) -> CoreResult<R>,
    ) -> CoreResult<R> {
        if let Some(data) = fetched {
            return f(ChunkSource::Fetched(data));
        }
        if let Some(remote) = &self.remote {
            let bytes = self.fetch_chunk(remote, sample)?;
            return f(ChunkSource::Fetched(&bytes));
        }
        if let Some(sharding) = self.sharding {
            return self.with_local_inner(sample, sharding, |data| f(ChunkSource::ShardInner(data)));
        }
        f(ChunkSource::File(self.root.join(self.chunk_key(sample))))
    }

    /// Read a local sample's inner chunk out of its shard file (two positioned reads: the index,
    /// then the chunk) and hand its bytes to `f`.
    fn with_local_inner<R>(&self, sample: u64, sharding: Sharding, f: impl FnOnce(&[u8]) -> CoreResult<R>) -> CoreResult<R> {
        use std::os::unix::fs::FileExt;
        let path = self.root.join(self.chunk_key(sample));
        let io = |source: std::io::Error| CoreError::Io { path: path.clone(), source };
        let file = open_regular(self.local_root(), &path).map_err(|e| self.chunk_error(sample, path.clone(), ChunkError::from(e)))?;
        let bad = |why: String| CoreError::integrity(self.location(sample), why);
        let size = file.metadata().map_err(io)?.len();
        let at = sharding.index_range(size).map_err(bad)?;
        let mut encoded = vec![0u8; (at.end - at.start) as usize];
        file.read_exact_at(&mut encoded, at.start).map_err(io)?;
        let index = sharding.parse_index(&encoded, size).map_err(bad)?;
        let range = self.inner_range(sharding, &index, sharding.locate(sample).1).map_err(bad)?;
        let mut data = vec![0u8; (range.end - range.start) as usize];
        file.read_exact_at(&mut data, range.start).map_err(io)?;
        f(&data)
    }
}
