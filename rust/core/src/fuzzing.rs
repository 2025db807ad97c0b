//! Fuzzing entry for the chunk decode + verify path: bytes from an untrusted file become the
//! stored chunk of sample 0 of a small store, then go through exactly what a batch read and a
//! full-store scan do. Driven by the cargo-fuzz target in `rust/core/fuzz` and, without
//! nightly, by `tests/fuzz_inputs.rs`.
//!
//! Input: the first byte picks how the rest becomes the chunk file, so the fuzzer reaches past
//! the crc32c check instead of spending its time on checksum mismatches:
//! `0` the rest as is; `1` the rest plus its valid crc32c (a forged zstd frame);
//! `2` the rest zstd-compressed plus its crc32c (forged values: size, NaN/Inf, range checks).
//! Modes `3`, `4`, `5` do the same against a store whose chunks are blosc (shuffle + lz4), the
//! default compression: `4` is a forged blosc buffer, `5` forged values.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, BytesCodec, Crc32cCodec, ZstdCodec,
};
use zarrs::array::{data_type, ArrayBuilder, BytesToBytesCodecTraits, CodecOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

use crate::error::{CoreError, CoreResult};
use crate::manifest::NormMode;
use crate::reader::BatchReader;
use crate::kernel::{verify_normalize_into, Affine};
use crate::verify::{check_sample, verify_store, Failure};

/// V, L, H, W of the fixture: 24 values, 96 bytes per sample; two samples, one run.
const SHAPE: [u64; 4] = [2, 2, 2, 3];
const SAMPLES: u64 = 2;

/// The chunk compression of a fuzz fixture store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureCodec {
    Zstd,
    Blosc,
}

impl FixtureCodec {
    /// Which fixture an input's first byte addresses (see the module docs).
    pub fn of_input(data: &[u8]) -> Self {
        match data.first().map_or(0, |m| (m / 3) % 2) {
            0 => FixtureCodec::Zstd,
            _ => FixtureCodec::Blosc,
        }
    }

    fn stage(self) -> Arc<dyn BytesToBytesCodecTraits> {
        match self {
            FixtureCodec::Zstd => Arc::new(ZstdCodec::new(3, false)),
            FixtureCodec::Blosc => Arc::new(
                BloscCodec::new(
                    BloscCompressor::LZ4,
                    BloscCompressionLevel::try_from(5u8).expect("level 5"),
                    None,
                    BloscShuffleMode::Shuffle,
                    Some(4),
                )
                .expect("blosc lz4 shuffle"),
            ),
        }
    }
}

/// How the input's first byte turns the rest into a chunk file (see the module docs).
pub fn chunk_file(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    let opts = CodecOptions::default();
    let crc = |b: Vec<u8>| Crc32cCodec::new().encode(Cow::Owned(b), &opts).expect("crc32c").into_owned();
    let codec = FixtureCodec::of_input(data);
    match mode % 3 {
        0 => rest.to_vec(),
        1 => crc(rest.to_vec()),
        _ => crc(codec.stage().encode(Cow::Borrowed(rest), &opts).expect("compress").into_owned()),
    }
}

/// A fixture store plus an open reader; [`DecodeVerify::run`] feeds it one input.
pub struct DecodeVerify {
    root: PathBuf,
    codec: FixtureCodec,
    reader: BatchReader,
    out: Vec<f32>,
    /// Sample 1 as read from the intact store: a read that succeeds must reproduce it.
    sample1: Vec<u32>,
}

impl DecodeVerify {
    /// Build the fixture store (zstd chunks) in the empty or missing directory `root`.
    pub fn create(root: impl Into<PathBuf>) -> CoreResult<Self> {
        Self::create_with(root, FixtureCodec::Zstd)
    }

    /// Build the fixture store with chunks compressed by `codec`; inputs must address it
    /// (mode bytes 0-2 for zstd, 3-5 for blosc).
    pub fn create_with(root: impl Into<PathBuf>, codec: FixtureCodec) -> CoreResult<Self> {
        let root = root.into();
        write_fixture(&root, codec).map_err(|e| CoreError::Io { path: root.clone(), source: std::io::Error::other(e) })?;
        let reader = BatchReader::open(&root, NormMode::PerVariable, 1)?;
        let n = reader.sample_len();
        let mut out = vec![0.0; 2 * n];
        reader.read_batch_into(&[1, 0], &mut out, &crate::cancel::Never)?;
        let sample1 = out[..n].iter().map(|x| x.to_bits()).collect();
        Ok(DecodeVerify { root, codec, reader, out, sample1 })
    }

    /// Inputs that decode to the intact sample 0, one per mode, to seed a corpus.
    pub fn seeds(&self) -> CoreResult<Vec<Vec<u8>>> {
        let path = self.chunk_path();
        let chunk = std::fs::read(&path).map_err(|source| CoreError::Io { path, source })?;
        let body = &chunk[..chunk.len() - 4]; // compressed chunk without its crc32c
        let raw: Vec<u8> = fixture_values(0).iter().flat_map(|x| x.to_le_bytes()).collect();
        let m = self.mode_base();
        Ok(vec![[&[m], &chunk[..]].concat(), [&[m + 1], body].concat(), [&[m + 2], &raw[..]].concat()])
    }

    /// The first mode byte that addresses this fixture.
    pub fn mode_base(&self) -> u8 {
        match self.codec {
            FixtureCodec::Zstd => 0,
            FixtureCodec::Blosc => 3,
        }
    }

    fn chunk_path(&self) -> PathBuf {
        self.root.join(self.reader.store().chunk_key(0))
    }

    /// Write `data` (see the module docs) as sample 0's chunk, read a batch and scan the store.
    /// Returns the read's outcome: an error is the expected answer to most inputs.
    ///
    /// # Panics
    /// When the read and the scan disagree, when an accepted batch holds a non-finite value or a
    /// changed sample 1, or when a bad chunk is not named as sample 0's: each would be a bug.
    pub fn run(&mut self, data: &[u8]) -> CoreResult<()> {
        assert_eq!(FixtureCodec::of_input(data), self.codec, "the input addresses the other fixture");
        let path = self.chunk_path();
        std::fs::write(&path, chunk_file(data)).expect("write the chunk file");
        let read = self.reader.read_batch_into(&[1, 0], &mut self.out, &crate::cancel::Never);
        let report = verify_store(&self.root, 4, 1, &crate::cancel::Never).expect("only a chunk changed: the store opens");
        assert_eq!((report.chunks_checked, report.unexpected_files), (SAMPLES, 0));
        match &read {
            Ok(()) => {
                assert!(report.ok(), "the read accepted a chunk the scan refused: {report:?}");
                assert!(self.out.iter().all(|x| x.is_finite()), "a non-finite value passed the checks");
                let n = self.reader.sample_len();
                assert!(self.out[..n].iter().map(|x| x.to_bits()).eq(self.sample1.iter().copied()), "sample 1 changed");
            }
            Err(CoreError::Integrity { location, reason }) => {
                assert_eq!(location, &self.reader.store().location(0), "{reason}");
                assert_eq!(report.chunks_failed, 1, "the scan accepted a chunk the read refused: {reason}");
                let same = Failure { location: location.clone(), reason: reason.clone() };
                assert_eq!(report.failures, vec![same], "the scan and the read disagree");
            }
            Err(other) => panic!("a bad chunk must be an integrity error, got {other:?}"),
        }
        read
    }
}

/// The fuzz target's entry: one process-wide fixture under the temporary directory.
pub fn decode_verify(data: &[u8]) {
    static FIXTURES: OnceLock<[Mutex<DecodeVerify>; 2]> = OnceLock::new();
    let fixtures = FIXTURES.get_or_init(|| {
        let make = |codec: FixtureCodec| {
            let root = std::env::temp_dir().join(format!("astrobio-core-fuzz-{}-{codec:?}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            Mutex::new(DecodeVerify::create_with(root, codec).expect("build the fuzz fixture store"))
        };
        [make(FixtureCodec::Zstd), make(FixtureCodec::Blosc)]
    });
    let fixture = &fixtures[FixtureCodec::of_input(data) as usize];
    // Errors are fine; only a panic (a broken invariant, an abort) is a finding.
    let _ = fixture.lock().unwrap_or_else(|p| p.into_inner()).run(data);
}

/// Kernel-level fuzzing of the same decode + verify path, without the thread pool or a file per
/// input: the fixture store is built and opened once, and each input (see [`chunk_file`])
/// becomes sample 0's fetched chunk bytes (`ChunkSource::Fetched`), handed to the per-sample
/// kernel of a batch read (`BatchReader::read_sample_into`) and of a scan
/// (`verify::check_sample`), both on the calling thread.
pub struct DecodeKernel {
    codec: FixtureCodec,
    reader: BatchReader,
    affine: Affine,
    out: Vec<f32>,
    twin: Vec<f32>,
}

impl DecodeKernel {
    /// Build the fixture store with chunks compressed by `codec` in the empty or missing
    /// directory `root`, and open it.
    pub fn create_with(root: impl Into<PathBuf>, codec: FixtureCodec) -> CoreResult<Self> {
        let root = root.into();
        write_fixture(&root, codec).map_err(|e| CoreError::Io { path: root.clone(), source: std::io::Error::other(e) })?;
        let reader = BatchReader::open(&root, NormMode::PerVariable, 1)?;
        let affine = Affine::from(reader.cube_norm());
        let n = reader.sample_len();
        Ok(DecodeKernel { codec, reader, affine, out: vec![0.0; n], twin: vec![0.0; n] })
    }

    /// Decode and verify `data` (see the module docs) as sample 0's chunk, as a read and as a
    /// scan. Returns the read's outcome: an error is the expected answer to most inputs.
    ///
    /// # Panics
    /// When the read and the scan disagree, when an accepted sample holds a non-finite value or
    /// differs from the two-pass decode-then-normalize of the same bytes, or when a bad chunk is
    /// not named as sample 0's: each would be a bug.
    pub fn run(&mut self, data: &[u8]) -> CoreResult<()> {
        assert_eq!(FixtureCodec::of_input(data), self.codec, "the input addresses the other fixture");
        let chunk = chunk_file(data);
        let store = self.reader.store();
        let read = self.reader.read_sample_into(0, Some(&chunk), &mut self.out);
        let scan = check_sample(store, 0, Some(&chunk));
        match &read {
            Ok(()) => {
                assert_eq!(scan, None, "the read accepted a chunk the scan refused");
                assert!(self.out.iter().all(|x| x.is_finite()), "a non-finite value passed the checks");
                let twin = &mut self.twin;
                let two_pass = store
                    .with_decoded(0, Some(&chunk), |raw| verify_normalize_into(raw, twin, store.layout(), &self.affine, store.ranges()))
                    .expect("an accepted chunk decodes again");
                assert!(two_pass.is_ok(), "the two-pass check refused what the read accepted: {two_pass:?}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&self.out), bits(&self.twin), "the fused pass and the two-pass differ");
            }
            Err(CoreError::Integrity { location, reason }) => {
                assert_eq!(location, &store.location(0), "{reason}");
                let same = Failure { location: location.clone(), reason: reason.clone() };
                assert_eq!(scan, Some(same), "the scan and the read disagree");
            }
            Err(other) => panic!("a bad chunk must be an integrity error, got {other:?}"),
        }
        read
    }
}

/// The kernel-level fuzz target's entry: one process-wide fixture per codec.
pub fn decode_kernel(data: &[u8]) {
    static FIXTURES: OnceLock<[Mutex<DecodeKernel>; 2]> = OnceLock::new();
    let fixtures = FIXTURES.get_or_init(|| {
        let make = |codec: FixtureCodec| {
            let root = std::env::temp_dir().join(format!("astrobio-core-kernel-{}-{codec:?}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            Mutex::new(DecodeKernel::create_with(root, codec).expect("build the fuzz fixture store"))
        };
        [make(FixtureCodec::Zstd), make(FixtureCodec::Blosc)]
    });
    let fixture = &fixtures[FixtureCodec::of_input(data) as usize];
    let _ = fixture.lock().unwrap_or_else(|p| p.into_inner()).run(data);
}

/// Fuzzing entry for the store metadata (untrusted JSON from the store's zarr.json files): the
/// first byte picks the document, the rest is its text. `0`: the manifest (the group attribute
/// `astrobio`, `Manifest::from_json`); `1`: a cube array's `codecs` list (the fast chain and the
/// sharding recognisers, with the fixture's sample shape). Invariants: no panic; an accepted
/// manifest's runs hold every sample, its statistics give one finite affine per slab, and a
/// sample of it sizes without overflow; an accepted sharding has 1 to `MAX_SHARD_SAMPLES`
/// samples per shard and an inner chain of the fast path.
pub fn metadata(data: &[u8]) {
    use crate::chunk::FastChain;
    use crate::shard::{Sharding, MAX_SHARD_SAMPLES};

    let Some((&which, text)) = data.split_first() else { return };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else { return };
    if which % 2 == 0 {
        let Ok(m) = crate::manifest::Manifest::from_json(&value) else { return };
        let [v, l, h, w] = m.sample_shape;
        let values = [v, l, h, w].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).expect("an accepted shape sizes");
        assert!(m.n_samples.checked_mul(values as u64 * 4).is_some(), "an accepted store size overflows");
        for s in [0, m.n_samples / 2, m.n_samples.saturating_sub(1)].into_iter().filter(|&s| s < m.n_samples) {
            assert!(m.run_of(s).is_some(), "sample {s} belongs to no run");
        }
        for mode in [NormMode::PerVariable, NormMode::PerLevel, NormMode::None] {
            let affine = Affine::from(&m.cube_norm(mode));
            assert_eq!(affine.shift.len(), v * l, "{mode:?}: one affine per slab");
            assert!(affine.shift.iter().chain(&affine.scale).all(|x| x.is_finite()), "{mode:?}: a non-finite affine");
        }
        assert_eq!(m.param_norm(NormMode::PerVariable).mean.len(), m.params.len());
    } else {
        let [v, l, h, w] = SHAPE;
        let sample = [1, v, l, h, w];
        let _ = FastChain::from_codecs(&value);
        for grid in [sample, [4, v, l, h, w], [0, v, l, h, w], [1, v, l, h, 1]] {
            if let Ok(Some(sharding)) = Sharding::from_codecs(&value, &sample, &grid) {
                assert!((1..=MAX_SHARD_SAMPLES).contains(&sharding.samples), "{sharding:?}");
                assert_eq!(sharding.samples, grid[0]);
            }
        }
    }
}

/// Inputs of [`metadata`] that are accepted, to seed a corpus: the fixture's manifest, its zstd
/// and blosc codec chains, and a sharded chain of the fixture's sample (index at the end, with
/// its crc32c).
pub fn metadata_seeds() -> Vec<Vec<u8>> {
    let [v, l, h, w] = SHAPE;
    let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
    let blosc = json!({"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 4, "blocksize": 0}});
    let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}});
    let crc = json!({"name": "crc32c"});
    let sharded = json!([{"name": "sharding_indexed", "configuration": {
        "chunk_shape": [1, v, l, h, w], "codecs": [bytes, blosc, crc],
        "index_codecs": [bytes, crc], "index_location": "end"}}]);
    let docs = [(0u8, fixture_manifest()), (1, json!([bytes, zstd, crc])), (1, json!([bytes, blosc, crc])), (1, sharded)];
    docs.iter().map(|(which, doc)| [vec![*which], serde_json::to_vec(doc).expect("json")].concat()).collect()
}

/// Valid values of a sample: variable 0 in [100, 400], variable 1 below 50.
fn fixture_values(s: u64) -> Vec<f32> {
    let n = SHAPE.iter().product::<u64>() as usize;
    (0..n).map(|i| if i < n / 2 { 200.0 + (s as usize * n + i) as f32 } else { -(i as f32) * 0.5 }).collect()
}

/// The store as python/astrobio/_writer.py lays it out (fewer manifest fields: only what the
/// core reads), codecs bytes -> zstd or blosc -> crc32c, one sample per chunk.
fn write_fixture(root: &std::path::Path, codec: FixtureCodec) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(root)?;
    let storage = Arc::new(FilesystemStore::new(root)?);
    let [v, l, h, w] = SHAPE;
    let mut builder = ArrayBuilder::new(vec![SAMPLES, v, l, h, w], vec![1, v, l, h, w], data_type::float32(), "NaN");
    builder
        .array_to_bytes_codec(Arc::new(BytesCodec::little()))
        .bytes_to_bytes_codecs(vec![codec.stage(), Arc::new(Crc32cCodec::new())]);
    let cubes = builder.build(storage.clone(), "/cubes")?;
    cubes.store_metadata()?;
    for s in 0..SAMPLES {
        cubes.store_chunk(&[s, 0, 0, 0, 0], fixture_values(s))?;
    }
    let manifest = fixture_manifest();
    let mut attrs = serde_json::Map::new();
    attrs.insert("astrobio".into(), manifest);
    GroupBuilder::new().attributes(attrs).build(storage, "/")?.store_metadata()?;
    Ok(())
}

/// Fuzzing entry for the shard index (untrusted bytes at a shard's end or start): the first byte
/// sets the samples per shard (1-16), the second whether the index has a crc32c (bit 0) and
/// where it lies (bit 1: start); the rest is the shard object. Invariants: no panic; a parsed
/// index gives every inner chunk either "absent" or a range inside the shard that does not
/// overlap the index; with a crc32c, an index whose entries were not checksummed is refused.
pub fn shard_index(data: &[u8]) {
    use crate::chunk::{Compressor, FastChain};
    use crate::shard::Sharding;

    let (Some(&n), Some(&flags)) = (data.first(), data.get(1)) else { return };
    let sharding = Sharding {
        samples: u64::from(n % 16) + 1,
        index_crc32c: flags & 1 == 1,
        index_at_end: flags & 2 == 0,
        inner: FastChain { compressor: Compressor::None, crc32c: true },
    };
    let shard = &data[2..];
    let len = shard.len() as u64;
    let Ok(at) = sharding.index_range(len) else {
        assert!(len < sharding.index_len(), "a shard holding its index must have an index range");
        return;
    };
    assert_eq!(at.end - at.start, sharding.index_len());
    let Ok(index) = sharding.parse_index(&shard[at.start as usize..at.end as usize], len) else { return };
    if sharding.index_crc32c {
        let body = &shard[at.start as usize..at.end as usize - 4];
        let stored = u32::from_le_bytes(shard[at.end as usize - 4..at.end as usize].try_into().unwrap());
        assert_eq!(crc32c::crc32c(body), stored, "an index with a wrong checksum was accepted");
    }
    for j in 0..sharding.samples as usize {
        match sharding.inner_range(&index, j) {
            Ok(Some(r)) => {
                assert!(r.start <= r.end && r.end <= len, "inner chunk {j} at {r:?} beyond a shard of {len}");
                assert!(r.end <= at.start || r.start >= at.end || r.start == r.end, "inner chunk {j} overlaps the index");
            }
            Ok(None) => {}
            Err(e) => panic!("a parsed index refused entry {j}: {e}"),
        }
    }
}

/// The fixture's manifest (group attribute `astrobio`).
fn fixture_manifest() -> serde_json::Value {
    // Variable 1 is open below: std >= 1 keeps every accepted value finite once normalized.
    json!({
        "format": crate::manifest::FORMAT, "format_version": crate::manifest::FORMAT_VERSION,
        "complete": true, "sample_shape": SHAPE, "n_samples": SAMPLES,
        "variables": [{"name": "ta", "valid_range": [100.0, 400.0]}, {"name": "ua", "valid_range": [null, 50.0]}],
        "params": [], "runs": [{"id": "fuzz-run", "start": 0, "count": SAMPLES}],
        "normalization": {"cubes": {
            "per_variable": {"mean": [250.0, 0.0], "std": [10.0, 4.0]},
            "per_level": {"mean": [[250.0, 250.0], [0.0, 0.0]], "std": [[10.0, 10.0], [4.0, 4.0]]}
        }}
    })
}
