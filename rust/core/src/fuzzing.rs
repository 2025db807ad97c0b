//! Fuzzing entry for the chunk decode + verify path: bytes from an untrusted file become the
//! stored chunk of sample 0 of a small store, then go through exactly what a batch read and a
//! full-store scan do. Driven by the cargo-fuzz target in `rust/core/fuzz` and, without
//! nightly, by `tests/fuzz_inputs.rs`.
//!
//! Input: the first byte picks how the rest becomes the chunk file, so the fuzzer reaches past
//! the crc32c check instead of spending its time on checksum mismatches:
//! `0` the rest as is; `1` the rest plus its valid crc32c (a forged zstd frame);
//! `2` the rest zstd-compressed plus its crc32c (forged values: size, NaN/Inf, range checks).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use zarrs::array::codec::{BytesCodec, Crc32cCodec, ZstdCodec};
use zarrs::array::{data_type, ArrayBuilder, BytesToBytesCodecTraits, CodecOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

use crate::error::{CoreError, CoreResult};
use crate::manifest::NormMode;
use crate::reader::BatchReader;
use crate::verify::{verify_store, Failure};

/// V, L, H, W of the fixture: 24 values, 96 bytes per sample; two samples, one run.
const SHAPE: [u64; 4] = [2, 2, 2, 3];
const SAMPLES: u64 = 2;

/// How the input's first byte turns the rest into a chunk file (see the module docs).
pub fn chunk_file(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    let opts = CodecOptions::default();
    let crc = |b: Vec<u8>| Crc32cCodec::new().encode(Cow::Owned(b), &opts).expect("crc32c").into_owned();
    match mode % 3 {
        0 => rest.to_vec(),
        1 => crc(rest.to_vec()),
        _ => crc(ZstdCodec::new(1, false).encode(Cow::Borrowed(rest), &opts).expect("zstd").into_owned()),
    }
}

/// A fixture store plus an open reader; [`DecodeVerify::run`] feeds it one input.
pub struct DecodeVerify {
    root: PathBuf,
    reader: BatchReader,
    out: Vec<f32>,
    /// Sample 1 as read from the intact store: a read that succeeds must reproduce it.
    sample1: Vec<u32>,
}

impl DecodeVerify {
    /// Build the fixture store in the empty or missing directory `root`.
    pub fn create(root: impl Into<PathBuf>) -> CoreResult<Self> {
        let root = root.into();
        write_fixture(&root).map_err(|e| CoreError::Io { path: root.clone(), source: std::io::Error::other(e) })?;
        let reader = BatchReader::open(&root, NormMode::PerVariable, 1)?;
        let n = reader.sample_len();
        let mut out = vec![0.0; 2 * n];
        reader.read_batch_into(&[1, 0], &mut out)?;
        let sample1 = out[..n].iter().map(|x| x.to_bits()).collect();
        Ok(DecodeVerify { root, reader, out, sample1 })
    }

    /// Inputs that decode to the intact sample 0, one per mode, to seed a corpus.
    pub fn seeds(&self) -> CoreResult<Vec<Vec<u8>>> {
        let path = self.chunk_path();
        let chunk = std::fs::read(&path).map_err(|source| CoreError::Io { path, source })?;
        let body = &chunk[..chunk.len() - 4]; // zstd frame without its crc32c
        let raw: Vec<u8> = fixture_values(0).iter().flat_map(|x| x.to_le_bytes()).collect();
        Ok(vec![[&[0], &chunk[..]].concat(), [&[1], body].concat(), [&[2], &raw[..]].concat()])
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
        let path = self.chunk_path();
        std::fs::write(&path, chunk_file(data)).expect("write the chunk file");
        let read = self.reader.read_batch_into(&[1, 0], &mut self.out);
        let report = verify_store(&self.root, 4, 1).expect("only a chunk changed: the store opens");
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
    static FIXTURE: OnceLock<Mutex<DecodeVerify>> = OnceLock::new();
    let fixture = FIXTURE.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("astrobio-core-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        Mutex::new(DecodeVerify::create(root).expect("build the fuzz fixture store"))
    });
    // Errors are fine; only a panic (a broken invariant, an abort) is a finding.
    let _ = fixture.lock().unwrap_or_else(|p| p.into_inner()).run(data);
}

/// Valid values of a sample: variable 0 in [100, 400], variable 1 below 50.
fn fixture_values(s: u64) -> Vec<f32> {
    let n = SHAPE.iter().product::<u64>() as usize;
    (0..n).map(|i| if i < n / 2 { 200.0 + (s as usize * n + i) as f32 } else { -(i as f32) * 0.5 }).collect()
}

/// The store as python/astrobio/_writer.py lays it out (fewer manifest fields: only what the
/// core reads), codecs bytes -> zstd -> crc32c, one sample per chunk.
fn write_fixture(root: &std::path::Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(root)?;
    let storage = Arc::new(FilesystemStore::new(root)?);
    let [v, l, h, w] = SHAPE;
    let mut builder = ArrayBuilder::new(vec![SAMPLES, v, l, h, w], vec![1, v, l, h, w], data_type::float32(), "NaN");
    builder
        .array_to_bytes_codec(Arc::new(BytesCodec::little()))
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false)), Arc::new(Crc32cCodec::new())]);
    let cubes = builder.build(storage.clone(), "/cubes")?;
    cubes.store_metadata()?;
    for s in 0..SAMPLES {
        cubes.store_chunk(&[s, 0, 0, 0, 0], fixture_values(s))?;
    }
    // Variable 1 is open below: std >= 1 keeps every accepted value finite once normalized.
    let manifest = json!({
        "format": crate::manifest::FORMAT, "format_version": crate::manifest::FORMAT_VERSION,
        "complete": true, "sample_shape": SHAPE, "n_samples": SAMPLES,
        "variables": [{"name": "ta", "valid_range": [100.0, 400.0]}, {"name": "ua", "valid_range": [null, 50.0]}],
        "params": [], "runs": [{"id": "fuzz-run", "start": 0, "count": SAMPLES}],
        "normalization": {"cubes": {
            "per_variable": {"mean": [250.0, 0.0], "std": [10.0, 4.0]},
            "per_level": {"mean": [[250.0, 250.0], [0.0, 0.0]], "std": [[10.0, 10.0], [4.0, 4.0]]}
        }}
    });
    let mut attrs = serde_json::Map::new();
    attrs.insert("astrobio".into(), manifest);
    GroupBuilder::new().attributes(attrs).build(storage, "/")?.store_metadata()?;
    Ok(())
}
