//! An astrobio cube store, opened and decoded: the chains astrobio writes through the
//! fast path (chunk.rs), any other valid zarr v3 chain through zarrs (checksums verified by the
//! crc32c codec on every decode). Missing chunks are errors here, never the fill value.
//!
//! A store is a local directory or an `s3://bucket/prefix` URL (remote.rs). For a URL the three
//! metadata documents are fetched once at open into an in-memory zarrs store (so zarrs parses
//! and checks them exactly as for a directory), and chunk objects are fetched as bytes, then
//! decoded by the same code as a mapped chunk file.
//!
//! One job per file: `open` (opening and the metadata checks), `source` (which bytes belong to
//! which sample: [`ChunkSource`], the one place a sample's chunk is located), `fetch` (object
//! storage: fetch planning, shard ranges, the shard index cache), `decode` (the one decode path,
//! for every source) and `params` (the parameter table, loaded at open).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use zarrs::array::{Array, CodecOptions};

use crate::chunk::FastChain;
use crate::error::{CoreError, CoreResult, Location};
use crate::kernel::{SampleLayout, ValidRange};
use crate::manifest::Manifest;
use crate::remote::RemoteStore;
use crate::shard::{ShardIndex, Sharding};

mod decode;
mod fetch;
mod open;
mod params;
mod source;

pub use fetch::{Arrival, Arrivals};
pub use source::ChunkSource;

pub const CUBES: &str = "cubes";
pub const PARAMS: &str = "params";
pub const MANIFEST_KEY: &str = "astrobio";

/// An opened store: manifest, the cube array handle, and the (small) parameter table,
/// verified in full at open time.
pub struct CubeStore {
    root: PathBuf,
    /// The root with every symbolic link resolved: files are read only from inside it
    /// (`None` for a URL).
    real_root: Option<PathBuf>,
    manifest: Manifest,
    cubes: Array<dyn zarrs::storage::ReadableStorageTraits>,
    layout: SampleLayout,
    ranges: Vec<ValidRange>,
    params: Vec<f32>,
    options: CodecOptions,
    /// The cube chunks' codec chain when chunk.rs decodes it; `None`: through zarrs.
    fast: Option<FastChain>,
    /// The object store the chunks live in (`None`: a local directory, read by path).
    remote: Option<RemoteStore>,
    /// Consecutive samples packed into shards (`None`: one chunk object per sample).
    sharding: Option<Sharding>,
    /// Object storage: each shard's checked index, fetched once (a committed store never changes).
    shard_indexes: Mutex<HashMap<u64, Arc<ShardIndex>>>,
}

fn not_found(path: &Path, what: impl Into<String>) -> CoreError {
    CoreError::NotFound { path: path.to_path_buf(), what: what.into() }
}

fn integrity(chunk: Option<String>, reason: String) -> CoreError {
    CoreError::integrity(Location { chunk, ..Default::default() }, reason)
}

pub(crate) fn describe_range(x: f32, r: ValidRange) -> String {
    if x.is_nan() {
        "not a number".into()
    } else if x.is_infinite() {
        "infinite".into()
    } else {
        format!("outside the valid range [{}, {}]", r.lo, r.hi)
    }
}

impl CubeStore {
    /// The store's directory, or its URL as a path (`s3://bucket/prefix`).
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The resolved directory a local store's files are read from (only called on the local
    /// branches, after the remote ones returned).
    fn local_root(&self) -> &Path {
        self.real_root.as_deref().expect("a local store has a resolved root")
    }
    /// The object store the chunks live in (`None` for a local directory).
    pub fn remote(&self) -> Option<&RemoteStore> {
        self.remote.as_ref()
    }
    /// Largest encoded chunk of a sample this store accepts (larger files or objects are refused
    /// unread).
    pub fn max_chunk_len(&self) -> u64 {
        FastChain::max_encoded(self.layout.len() * 4)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn layout(&self) -> SampleLayout {
        self.layout
    }
    pub fn ranges(&self) -> &[ValidRange] {
        &self.ranges
    }
    pub fn n_samples(&self) -> u64 {
        self.manifest.n_samples
    }
    pub fn n_params(&self) -> usize {
        self.manifest.params.len()
    }
    /// Raw (physical-unit) parameter row of a sample.
    pub fn param_row(&self, sample: u64) -> &[f32] {
        let p = self.n_params();
        &self.params[sample as usize * p..(sample as usize + 1) * p]
    }

    /// Where a sample lives, for error messages (a sharded sample: `shard key[position]`).
    pub fn location(&self, sample: u64) -> Location {
        let chunk = match self.sharding {
            Some(sharding) => format!("{}[{}]", self.chunk_key(sample), sharding.locate(sample).1),
            None => self.chunk_key(sample),
        };
        Location { run: self.manifest.run_of(sample).map(|r| r.id.clone()), sample: Some(sample), chunk: Some(chunk) }
    }

    /// The key of the object holding a sample's chunk (its shard's, in a sharded store).
    pub fn chunk_key(&self, sample: u64) -> String {
        match self.sharding {
            Some(sharding) => self.shard_key(sharding.locate(sample).0),
            None => self.grid_key(sample),
        }
    }

    fn shard_key(&self, shard: u64) -> String {
        self.grid_key(shard)
    }

    /// The key of chunk-grid cell `first` along the sample axis.
    fn grid_key(&self, first: u64) -> String {
        format!("{CUBES}/{}", self.cubes.chunk_key(&[first, 0, 0, 0, 0]).as_str().trim_start_matches(&format!("{CUBES}/")))
    }

    /// Samples per shard (`None`: one object per sample).
    pub fn shard_samples(&self) -> Option<u64> {
        self.sharding.map(|s| s.samples)
    }

    /// How many chunk objects the store has: one per sample, or one per shard.
    pub fn n_chunk_objects(&self) -> u64 {
        match self.sharding {
            Some(sharding) => self.n_samples().div_ceil(sharding.samples),
            None => self.n_samples(),
        }
    }

    pub fn check_index(&self, index: i64) -> CoreResult<u64> {
        if index < 0 || index as u64 >= self.n_samples() {
            return Err(CoreError::IndexOutOfRange { index, len: self.n_samples() });
        }
        Ok(index as u64)
    }

}
