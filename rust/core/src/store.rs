//! Opening an astrobio store and decoding its chunks: the chains astrobio writes through the
//! fast path (chunk.rs), any other valid zarr v3 chain through zarrs (checksums verified by the
//! crc32c codec on every decode). Missing chunks are errors here, never the fill value.
//!
//! A store is a local directory or an `s3://bucket/prefix` URL (remote.rs). For a URL the three
//! metadata documents are fetched once at open into an in-memory zarrs store (so zarrs parses
//! and checks them exactly as for a directory), and chunk objects are fetched as bytes, then
//! decoded by the same code as a mapped chunk file.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::GetRange;

use zarrs::array::codec::{Crc32cCodec, ZstdCodec};
use zarrs::array::{
    Array, ArrayBytes, ArrayToBytesCodecTraits, BytesRepresentation, BytesToBytesCodecTraits, CodecError, CodecOptions,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{ReadableStorage, StoreKey, WritableStorageTraits};

use crate::chunk::{as_bytes_mut, check_zstd_bound, ChunkError, Compressor, FastChain, Visit, CRC32C_MISMATCH};
use crate::error::{CoreError, CoreResult, Location};
use crate::kernel::{normalize_in_place, planes_normalize_into, planes_unshuffle_into, Affine, SampleLayout, ValidRange};
use crate::manifest::Manifest;
use crate::regular::{check_regular, open_regular, read_regular, real_root, FileFault};
use crate::remote::{self, RemoteStore};
use crate::shard::{ShardIndex, Sharding};

/// The array metadata documents a store open reads (`params` only when the store has some).
const METADATA_KEYS: [&str; 3] = ["zarr.json", "cubes/zarr.json", "params/zarr.json"];
/// Largest metadata document accepted from object storage (a manifest with thousands of runs
/// is a few MB).
const MAX_METADATA_BYTES: u64 = 256 << 20;

pub const CUBES: &str = "cubes";
pub const PARAMS: &str = "params";
pub const MANIFEST_KEY: &str = "astrobio";
/// Largest single range request for neighbouring inner chunks of a shard.
const MAX_RANGE_GROUP: u64 = 64 << 20;
/// Inner chunks of a shard this close are fetched in one request, the gap read through (a
/// request costs as much as reading 0.25-2 MB on the servers measured, docs/object-storage.md;
/// object_store coalesces ranges within 1 MB too).
const MAX_RANGE_GAP: u64 = 1 << 20;

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

thread_local! {
    // Per-thread decoded sample for callers that want a view (the full-store scan).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn not_found(path: &Path, what: impl Into<String>) -> CoreError {
    CoreError::NotFound { path: path.to_path_buf(), what: what.into() }
}

fn integrity(chunk: Option<String>, reason: String) -> CoreError {
    CoreError::integrity(Location { chunk, ..Default::default() }, reason)
}

/// A metadata file of the store (`key`, e.g. `cubes/zarr.json`) must be a regular file inside
/// it before zarrs opens it: missing is `NotFound` with `missing`, anything else an integrity
/// error naming the key.
fn check_metadata(root: &Path, real_root: &Path, key: &str, missing: &str) -> CoreResult<()> {
    match check_regular(real_root, &root.join(key)) {
        Ok(()) => Ok(()),
        Err(FileFault::Missing) => Err(not_found(root, missing)),
        Err(FileFault::Io(source)) => Err(CoreError::Io { path: root.join(key), source }),
        Err(refused) => Err(integrity(Some(key.into()), refused.reason())),
    }
}

impl CubeStore {
    /// Open the store at `root`: a directory, or an `s3://bucket/prefix` URL.
    pub fn open(root: impl AsRef<Path>) -> CoreResult<Self> {
        let root = root.as_ref().to_path_buf();
        if let Some(url) = root.to_str().filter(|r| remote::is_url(r)) {
            return Self::open_remote(RemoteStore::open(url)?);
        }
        if !root.is_dir() {
            return Err(not_found(&root, "no astrobio store (directory missing)"));
        }
        let real_root = real_root(&root).map_err(|e| not_found(&root, format!("cannot open store ({e})")))?;
        check_metadata(&root, &real_root, "zarr.json", "no zarr v3 group metadata (zarr.json missing)")?;
        let storage: ReadableStorage = Arc::new(
            FilesystemStore::new(&root).map_err(|e| not_found(&root, format!("cannot open store ({e})")))?,
        );
        Self::open_in(root, Some(real_root), storage, None)
    }

    /// Open a store in object storage: its metadata documents are fetched concurrently into
    /// memory and checked like a directory's.
    fn open_remote(remote: RemoteStore) -> CoreResult<Self> {
        let root = PathBuf::from(remote.url());
        let keys: Vec<String> = METADATA_KEYS.iter().map(|k| k.to_string()).collect();
        let memory = MemoryStore::new();
        for (key, got) in keys.iter().zip(remote.get_many(&keys, MAX_METADATA_BYTES)?) {
            if let Some(bytes) = got? {
                let store_key = StoreKey::new(key.as_str()).map_err(|e| integrity(Some(key.clone()), e.to_string()))?;
                memory.set(&store_key, bytes).map_err(|e| integrity(Some(key.clone()), e.to_string()))?;
            }
        }
        let storage: ReadableStorage = Arc::new(memory);
        if !has_key(&storage, "zarr.json") {
            return Err(not_found(&root, "no astrobio store (no zarr v3 group metadata: zarr.json missing)"));
        }
        Self::open_in(root, None, storage, Some(remote))
    }

    fn open_in(
        root: PathBuf,
        real_root: Option<PathBuf>,
        storage: ReadableStorage,
        remote: Option<RemoteStore>,
    ) -> CoreResult<Self> {
        let group = Group::open(storage.clone(), "/")
            .map_err(|e| integrity(Some("zarr.json".into()), format!("group metadata unreadable: {e}")))?;
        let manifest_json = group
            .attributes()
            .get(MANIFEST_KEY)
            .ok_or_else(|| not_found(&root, "no manifest (the store was not completely written)"))?;
        if !manifest_json.get("complete").and_then(|c| c.as_bool()).unwrap_or(false) {
            return Err(not_found(&root, "an incomplete manifest (the store was not completely written)"));
        }
        let manifest = Manifest::from_json(manifest_json)?;

        let cubes = open_array(&storage, &root, real_root.as_deref(), CUBES)?;
        let [v, l, h, w] = manifest.sample_shape;
        let expected_shape = [manifest.n_samples, v as u64, l as u64, h as u64, w as u64];
        check_float32(&cubes, CUBES)?;
        if cubes.shape() != expected_shape {
            return Err(integrity(
                Some(format!("{CUBES}/zarr.json")),
                format!("cubes has shape {:?}, the manifest says {:?}", cubes.shape(), expected_shape),
            ));
        }
        let chunk = cubes
            .chunk_shape(&[0; 5])
            .map_err(|e| integrity(Some(format!("{CUBES}/zarr.json")), e.to_string()))?;
        let chunk: Vec<u64> = chunk.iter().map(|c| c.get()).collect();
        let sample_chunk = [1, v as u64, l as u64, h as u64, w as u64];
        let codecs = array_codecs(&storage, &root, real_root.as_deref(), CUBES);
        let sharding = match &codecs {
            Some(codecs) => Sharding::from_codecs(codecs, &sample_chunk, &chunk)
                .map_err(|why| integrity(Some(format!("{CUBES}/zarr.json")), format!("sharded cubes: {why}")))?,
            None => None,
        };
        if sharding.is_none() && chunk != sample_chunk {
            return Err(integrity(
                Some(format!("{CUBES}/zarr.json")),
                format!("cubes must be chunked one sample per chunk (or sharded), found chunk shape {chunk:?}"),
            ));
        }
        let layout = SampleLayout { variables: v, levels: l, plane: h * w };
        let ranges = manifest.variables.iter().map(|f| f.range()).collect();
        // We parallelize across samples; codecs inside one chunk run single-threaded.
        let options = CodecOptions::default().with_concurrent_target(1).with_validate_checksums(true);
        let fast = match sharding {
            Some(sharding) => Some(sharding.inner),
            None => codecs.as_ref().and_then(FastChain::from_codecs),
        };
        let mut store = CubeStore {
            root,
            real_root,
            manifest,
            cubes,
            layout,
            ranges,
            params: Vec::new(),
            options,
            fast,
            remote,
            sharding,
            shard_indexes: Mutex::new(HashMap::new()),
        };
        if !store.manifest.params.is_empty() {
            let params = open_array(&storage, &store.root, store.real_root.as_deref(), PARAMS)?;
            store.params = store.load_params(&params)?;
        }
        Ok(store)
    }

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
    fn inner_range(&self, sharding: Sharding, index: &ShardIndex, j: usize) -> Result<Range<u64>, String> {
        let range = sharding.inner_range(index, j)?.ok_or("chunk missing")?;
        if range.end - range.start > self.max_chunk_len() {
            return Err(format!("chunk holds {} bytes, more than any encoding of the sample may take", range.end - range.start));
        }
        Ok(range)
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

    /// Fetch the encoded chunks of `samples` from object storage, delivered as they arrive
    /// (`remote::RemoteStore::stream_many`); pass each through [`Self::fetched`].
    pub fn stream_chunks(&self, samples: &[u64]) -> CoreResult<remote::Arrivals> {
        let Some(remote) = &self.remote else {
            return Err(CoreError::InvalidArgument("stream_chunks: a local store is read by path".into()));
        };
        if self.sharding.is_some() {
            // Shards: fetched together (neighbours share requests), then handed over at once.
            let (tx, rx) = std::sync::mpsc::channel();
            for (i, got) in self.fetch_chunks(samples)?.into_iter().enumerate() {
                let _ = tx.send((i, got.map(Some)));
            }
            return Ok(rx);
        }
        remote.stream_many(samples.iter().map(|&s| self.chunk_key(s)).collect(), self.max_chunk_len())
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
    pub fn fetched(&self, sample: u64, got: CoreResult<Option<bytes::Bytes>>) -> CoreResult<bytes::Bytes> {
        match got {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(CoreError::integrity(self.location(sample), String::from("chunk missing"))),
            Err(CoreError::Integrity { reason, .. }) => Err(CoreError::integrity(self.location(sample), reason)),
            Err(other) => Err(other),
        }
    }

    fn fetch_chunk(&self, remote: &RemoteStore, sample: u64) -> CoreResult<bytes::Bytes> {
        if self.sharding.is_some() {
            return self.fetch_chunks(&[sample])?.pop().expect("one sample asked, one result");
        }
        self.fetched(sample, remote.get(&self.chunk_key(sample), self.max_chunk_len()))
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

    /// Fetch, verify (checksum, decoded size) and decode one sample's chunk into `dst`
    /// (exactly one sample's values), with no intermediate copy on the fast path.
    pub fn decode_sample_into(&self, sample: u64, dst: &mut [f32]) -> CoreResult<()> {
        let fail = |reason: String| CoreError::integrity(self.location(sample), reason);
        if dst.len() != self.layout.len() {
            return Err(CoreError::InvalidArgument(format!(
                "a sample holds {} values, the buffer {}",
                self.layout.len(),
                dst.len()
            )));
        }
        if let Some(remote) = &self.remote {
            let bytes = self.fetch_chunk(remote, sample)?;
            return self.decode_bytes_into(sample, &bytes, dst);
        }
        if let Some(sharding) = self.sharding {
            return self.with_local_inner(sample, sharding, |data| self.decode_bytes_into(sample, data, dst));
        }
        if let Some(chain) = self.fast {
            let path = self.root.join(self.chunk_key(sample));
            let done = if chain.compressor == Compressor::Blosc {
                // The same block decoder as batch reads, so a scan and a read agree on every chunk.
                chain.visit_file(self.local_root(), &path, dst, &mut |_, planes, block| {
                    planes_unshuffle_into(planes, block);
                    true
                })
                .map(|_| ())
            } else {
                chain.decode_file(self.local_root(), &path, as_bytes_mut(dst))
            };
            return done.map_err(|e| self.chunk_error(sample, path, e));
        }
        let indices = [sample, 0, 0, 0, 0];
        // zarrs opens the file itself: the same rule, checked just before.
        let path = self.root.join(self.chunk_key(sample));
        check_regular(self.local_root(), &path).map_err(|e| self.chunk_error(sample, path, ChunkError::from(e)))?;
        let encoded = self
            .cubes
            .retrieve_encoded_chunk(&indices)
            .map_err(|e| CoreError::Io { path: self.root.join(self.chunk_key(sample)), source: std::io::Error::other(e.to_string()) })?
            .ok_or_else(|| fail("chunk missing".into()))?;
        self.decode_zarrs_into(sample, encoded, dst)
    }

    /// Decode a chunk's encoded bytes (fetched from object storage) into `dst`: the same
    /// decoders, in the same order, as [`Self::decode_sample_into`] on a chunk file.
    pub fn decode_bytes_into(&self, sample: u64, data: &[u8], dst: &mut [f32]) -> CoreResult<()> {
        let fail = |reason: String| CoreError::integrity(self.location(sample), reason);
        if dst.len() != self.layout.len() {
            return Err(CoreError::InvalidArgument(format!("a sample holds {} values, the buffer {}", self.layout.len(), dst.len())));
        }
        if data.len() as u64 > self.max_chunk_len() {
            return Err(fail(format!("chunk object holds {} bytes, more than any encoding of the sample may take", data.len())));
        }
        match self.fast {
            Some(chain) if chain.compressor == Compressor::Blosc => chain
                .visit_bytes(data, dst, &mut |_, planes, block| {
                    planes_unshuffle_into(planes, block);
                    true
                })
                .map(|_| ())
                .map_err(fail),
            Some(chain) => chain.decode_bytes(data, as_bytes_mut(dst)).map_err(fail),
            None => self.decode_zarrs_into(sample, data.to_vec(), dst),
        }
    }

    fn decode_zarrs_into(&self, sample: u64, encoded: Vec<u8>, dst: &mut [f32]) -> CoreResult<()> {
        let fail = |reason: String| CoreError::integrity(self.location(sample), reason);
        let decoded = self.decode(encoded, &[sample, 0, 0, 0, 0]).map_err(fail)?;
        let expected = self.layout.len() * 4;
        if decoded.len() != expected {
            return Err(fail(format!("decoded {} bytes, expected {expected}", decoded.len())));
        }
        as_bytes_mut(dst).copy_from_slice(&decoded);
        Ok(())
    }

    /// Decode, check and normalize one sample into `dst` in a single pass where the chain
    /// allows (blosc: per block, still in cache), else decode then normalize in place.
    /// `Ok(false)`: a value is invalid (`dst` then holds no promise; decode again to name it).
    pub fn read_normalized_into(&self, sample: u64, dst: &mut [f32], affine: &Affine) -> CoreResult<bool> {
        if let Some(remote) = &self.remote {
            let bytes = self.fetch_chunk(remote, sample)?;
            return self.read_normalized_bytes(sample, &bytes, dst, affine);
        }
        if let Some(sharding) = self.sharding {
            return self.with_local_inner(sample, sharding, |data| self.read_normalized_bytes(sample, data, dst, affine));
        }
        if let Some(chain @ FastChain { compressor: Compressor::Blosc, .. }) = self.fast {
            if dst.len() == self.layout.len() {
                let path = self.root.join(self.chunk_key(sample));
                let (layout, ranges) = (self.layout, &self.ranges);
                let mut sink = |first: usize, planes: [&[u8]; 4], block: &mut [f32]| {
                    planes_normalize_into(first, planes, block, layout, affine, ranges)
                };
                match chain.visit_file(self.local_root(), &path, dst, &mut sink) {
                    Ok(Visit::Fused(ok)) => return Ok(ok),
                    Ok(Visit::Decoded) => return Ok(normalize_in_place(dst, layout, affine, ranges).is_ok()),
                    Err(e) => return Err(self.chunk_error(sample, path, e)),
                }
            }
        }
        self.decode_sample_into(sample, dst)?;
        Ok(normalize_in_place(dst, self.layout, affine, &self.ranges).is_ok())
    }

    /// [`Self::read_normalized_into`] on a chunk's encoded bytes (fetched from object storage):
    /// the same fused blosc pass, or decode then normalize.
    pub fn read_normalized_bytes(&self, sample: u64, data: &[u8], dst: &mut [f32], affine: &Affine) -> CoreResult<bool> {
        if let Some(chain @ FastChain { compressor: Compressor::Blosc, .. }) = self.fast {
            if dst.len() == self.layout.len() && data.len() as u64 <= self.max_chunk_len() {
                let (layout, ranges) = (self.layout, &self.ranges);
                let mut sink = |first: usize, planes: [&[u8]; 4], block: &mut [f32]| {
                    planes_normalize_into(first, planes, block, layout, affine, ranges)
                };
                return match chain.visit_bytes(data, dst, &mut sink) {
                    Ok(Visit::Fused(ok)) => Ok(ok),
                    Ok(Visit::Decoded) => Ok(normalize_in_place(dst, layout, affine, ranges).is_ok()),
                    Err(reason) => Err(CoreError::integrity(self.location(sample), reason)),
                };
            }
        }
        self.decode_bytes_into(sample, data, dst)?;
        Ok(normalize_in_place(dst, self.layout, affine, &self.ranges).is_ok())
    }

    fn chunk_error(&self, sample: u64, path: PathBuf, e: ChunkError) -> CoreError {
        match e {
            ChunkError::Missing => CoreError::integrity(self.location(sample), String::from("chunk missing")),
            ChunkError::Io(source) => CoreError::Io { path, source },
            ChunkError::Bad(reason) => CoreError::integrity(self.location(sample), reason),
        }
    }

    /// Decode one sample (as [`Self::decode_sample_into`]) into a per-thread buffer and hand
    /// its values to `f`. `f` must not call this again (the buffer is borrowed).
    pub fn with_decoded_sample<R>(&self, sample: u64, f: impl FnOnce(&[f32]) -> R) -> CoreResult<R> {
        SCRATCH.with_borrow_mut(|buf| {
            buf.resize(self.layout.len(), 0.0);
            self.decode_sample_into(sample, buf)?;
            Ok(f(buf))
        })
    }

    /// [`Self::with_decoded_sample`] on a chunk's encoded bytes (fetched from object storage).
    pub fn with_decoded_bytes<R>(&self, sample: u64, data: &[u8], f: impl FnOnce(&[f32]) -> R) -> CoreResult<R> {
        SCRATCH.with_borrow_mut(|buf| {
            buf.resize(self.layout.len(), 0.0);
            self.decode_bytes_into(sample, data, buf)?;
            Ok(f(buf))
        })
    }

    fn decode(&self, encoded: Vec<u8>, indices: &[u64]) -> Result<Vec<u8>, String> {
        let shape = self.cubes.chunk_shape(indices).map_err(|e| e.to_string())?;
        decode_chunk(&self.cubes, encoded, &shape, &self.options)
    }

    fn load_params(&self, params: &Array<dyn zarrs::storage::ReadableStorageTraits>) -> CoreResult<Vec<f32>> {
        check_float32(params, PARAMS)?;
        let n = self.n_samples();
        let p = self.n_params() as u64;
        if params.shape() != [n, p] {
            return Err(integrity(
                Some(format!("{PARAMS}/zarr.json")),
                format!("params has shape {:?}, expected [{n}, {p}]", params.shape()),
            ));
        }
        let ranges: Vec<ValidRange> = self.manifest.params.iter().map(|f| f.range()).collect();
        // Grown as chunks decode (each checked against its shape), not sized from the manifest.
        let mut out = Vec::new();
        for ci in 0..params.chunk_grid_shape()[0] {
            let key = params.chunk_key(&[ci, 0]).as_str().to_string();
            let fail = |reason: String| integrity(Some(key.clone()), reason);
            let shape = params.chunk_shape(&[ci, 0]).map_err(|e| fail(e.to_string()))?;
            let rows = shape[0].get();
            let encoded = match (&self.remote, &self.real_root) {
                (Some(remote), _) => remote
                    .get(&key, FastChain::max_encoded((rows * p * 4) as usize))?
                    .map(|b| b.to_vec())
                    .ok_or_else(|| fail("chunk missing".into()))?,
                (None, _) => {
                    match check_regular(self.local_root(), &self.root.join(&key)) {
                        Err(FileFault::Missing) => return Err(fail("chunk missing".into())),
                        Err(refused) => return Err(fail(refused.reason())),
                        Ok(()) => {}
                    }
                    params
                        .retrieve_encoded_chunk(&[ci, 0])
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail("chunk missing".into()))?
                }
            };
            let bytes = decode_chunk(params, encoded, &shape, &self.options).map_err(fail)?;
            if bytes.len() as u64 != rows * p * 4 {
                return Err(fail(format!("decoded {} bytes, expected {}", bytes.len(), rows * p * 4)));
            }
            let keep = rows.min(n - ci * rows) as usize * p as usize;
            with_f32(&bytes, |vals| -> CoreResult<()> {
                for (i, &x) in vals[..keep].iter().enumerate() {
                    let r = ranges[i % p as usize];
                    if !r.admits(x) {
                        let sample = ci * rows + (i as u64) / p;
                        let name = &self.manifest.params[i % p as usize].name;
                        return Err(CoreError::integrity(
                            Location { run: self.manifest.run_of(sample).map(|r| r.id.clone()), sample: Some(sample), chunk: Some(key.clone()) },
                            format!("parameter {name:?} of sample {sample} is {x}, {}", describe_range(x, r)),
                        ));
                    }
                }
                out.extend_from_slice(&vals[..keep]);
                Ok(())
            })?;
        }
        Ok(out)
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

pub(crate) fn describe_range(x: f32, r: ValidRange) -> String {
    if x.is_nan() {
        "not a number".into()
    } else if x.is_infinite() {
        "infinite".into()
    } else {
        format!("outside the valid range [{}, {}]", r.lo, r.hi)
    }
}

fn has_key(storage: &ReadableStorage, key: &str) -> bool {
    StoreKey::new(key).ok().is_some_and(|k| matches!(storage.get(&k), Ok(Some(_))))
}

/// Open an array of the store: for a directory (`real_root` given) its zarr.json must be a
/// regular file inside the store; for a URL it must have been fetched at open.
fn open_array(
    storage: &ReadableStorage,
    root: &Path,
    real_root: Option<&Path>,
    name: &str,
) -> CoreResult<Array<dyn zarrs::storage::ReadableStorageTraits>> {
    let missing = format!("no array {name:?} ({name}/zarr.json missing)");
    match real_root {
        Some(real_root) => check_metadata(root, real_root, &format!("{name}/zarr.json"), &missing)?,
        None if !has_key(storage, &format!("{name}/zarr.json")) => return Err(not_found(root, missing)),
        None => {}
    }
    Array::open(storage.clone(), &format!("/{name}"))
        .map_err(|e| integrity(Some(format!("{name}/zarr.json")), format!("array metadata unreadable: {e}")))
}

/// The `codecs` list of an array's zarr.json (already parsed by zarrs, so a failure here only
/// means "not fast-pathed"); `None` with storage transformers too.
fn array_codecs(storage: &ReadableStorage, root: &Path, real_root: Option<&Path>, name: &str) -> Option<serde_json::Value> {
    let text = match real_root {
        Some(real_root) => read_regular(real_root, &root.join(name).join("zarr.json")).ok()?,
        None => storage.get(&StoreKey::new(format!("{name}/zarr.json")).ok()?).ok()??.to_vec(),
    };
    let meta: serde_json::Value = serde_json::from_slice(&text).ok()?;
    if meta.get("storage_transformers").is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty())) {
        return None;
    }
    meta.get("codecs").cloned()
}

fn check_float32(array: &Array<dyn zarrs::storage::ReadableStorageTraits>, name: &str) -> CoreResult<()> {
    if array.data_type() != &zarrs::array::data_type::float32() {
        return Err(integrity(
            Some(format!("{name}/zarr.json")),
            format!("{name} has data type {:?}, expected float32", array.data_type()),
        ));
    }
    Ok(())
}

fn decode_chunk(
    array: &Array<dyn zarrs::storage::ReadableStorageTraits>,
    encoded: Vec<u8>,
    shape: &[std::num::NonZeroU64],
    options: &CodecOptions,
) -> Result<Vec<u8>, String> {
    let size = array.data_type().fixed_size().ok_or("variable-size data type")? as u64;
    let decoded_len = shape.iter().map(|s| s.get()).product::<u64>() * size;
    check_zarrs_zstd_bound(array.codecs().bytes_to_bytes_codecs(), &encoded, decoded_len, options)?;
    let bytes: ArrayBytes = array
        .codecs()
        .decode(Cow::Owned(encoded), shape, array.data_type(), array.fill_value(), options)
        .map_err(codec_error)?;
    bytes.into_fixed().map(Cow::into_owned).map_err(|e| e.to_string())
}

/// zarrs' zstd decoder allocates up front whatever size a frame declares, so a 21-byte chunk
/// file with a valid checksum could ask for a terabyte and abort the process (no error, no
/// exception). Peel the checksum stages outside the zstd stage and refuse a frame that may
/// decode to more than the chunk holds ([`check_zstd_bound`], the fast path's rule; zarrs
/// would fall back to an unbounded streaming decode on a frame the bound cannot parse).
/// Other codec stacks are left to zarrs.
fn check_zarrs_zstd_bound(
    codecs: &[Arc<dyn BytesToBytesCodecTraits>],
    encoded: &[u8],
    decoded_len: u64,
    options: &CodecOptions,
) -> Result<(), String> {
    let mut bytes = Cow::Borrowed(encoded);
    for codec in codecs.iter().rev() {
        let any = codec.as_any();
        if any.is::<Crc32cCodec>() {
            // Ignores the representation; a bad checksum is reported here as it would be later.
            bytes = codec.decode(bytes, &BytesRepresentation::UnboundedSize, options).map_err(codec_error)?;
        } else if any.is::<ZstdCodec>() {
            return check_zstd_bound(&bytes, decoded_len);
        } else {
            return Ok(());
        }
    }
    Ok(())
}

fn codec_error(e: CodecError) -> String {
    match e {
        CodecError::InvalidChecksum => CRC32C_MISMATCH.to_string(),
        other => format!("cannot decode: {other}"),
    }
}

/// View little-endian f32 bytes as f32 (zero-copy when aligned, which allocator buffers are).
fn with_f32<R>(bytes: &[u8], f: impl FnOnce(&[f32]) -> R) -> R {
    // SAFETY: every bit pattern is a valid f32; align_to only yields the aligned middle.
    let (head, mid, tail) = unsafe { bytes.align_to::<f32>() };
    if head.is_empty() && tail.is_empty() && cfg!(target_endian = "little") {
        f(mid)
    } else {
        let owned: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        f(&owned)
    }
}
