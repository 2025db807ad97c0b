//! Fixture stores built in Rust with zarrs, laid out as the Python writer
//! (python/astrobio/_writer.py) lays them out: group attribute `astrobio` holding the manifest,
//! `cubes` [N, V, L, H, W] float32 one sample per chunk, `params` [N, P] in one chunk, codecs
//! bytes(little) -> zstd -> crc32c, fill value NaN.
#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tempfile::TempDir;
use zarrs::array::codec::{BytesCodec, Crc32cCodec, ZstdCodec};
use zarrs::array::{data_type, Array, ArrayBuilder};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;

pub const SHAPE: [usize; 4] = [2, 3, 4, 5]; // V, L, H, W: 120 values per sample
pub const RUNS: [u64; 3] = [3, 2, 4]; // run-0: 0..3, run-1: 3..5, run-2: 5..9
pub const N_PARAMS: usize = 2;
/// Valid physical ranges per variable; variable 1 is open below (null in the manifest).
pub const RANGES: [(Option<f64>, Option<f64>); 2] = [(Some(100.0), Some(400.0)), (None, Some(50.0))];

pub struct Fixture {
    pub dir: TempDir,
    pub manifest: Value,
    /// Raw cube values, [N, V, L, H, W] C order, as written.
    pub cubes: Vec<f32>,
    pub params: Vec<f32>,
}

pub fn sample_len() -> usize {
    SHAPE.iter().product()
}

pub fn n_samples() -> u64 {
    RUNS.iter().sum()
}

/// Value of element `i` of sample `s`: distinct per sample, variable and level, inside the
/// variable's range (variable 0 around 250 K, variable 1 around 0).
fn value(s: u64, i: usize) -> f32 {
    let [_, l, h, w] = SHAPE;
    let (v, level, k) = (i / (l * h * w), (i / (h * w)) % l, i % (h * w));
    let base = if v == 0 { 250.0 } else { -3.0 };
    base + s as f32 * 0.75 + level as f32 * 2.5 + k as f32 * 0.125
}

pub fn manifest_json() -> Value {
    let v = SHAPE[0];
    let mut start = 0;
    let runs: Vec<Value> = RUNS
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let r = json!({"id": format!("run-{i}"), "start": start, "count": count, "attrs": {}});
            start += count;
            r
        })
        .collect();
    let field = |name: String, units: &str, range: (Option<f64>, Option<f64>)| {
        json!({"name": name, "units": units, "valid_range": [range.0, range.1], "long_name": ""})
    };
    json!({
        "format": "astrobio.store", "format_version": 1, "name": "fixture",
        "sample_shape": SHAPE, "n_samples": start,
        "dims": ["sample", "variable", "level", "lat", "lon"],
        "variables": (0..v).map(|i| field(format!("v{i}"), "K", RANGES[i])).collect::<Vec<_>>(),
        "params": (0..N_PARAMS).map(|i| field(format!("p{i}"), "1", (Some(-10.0), Some(10.0)))).collect::<Vec<_>>(),
        "coords": {}, "runs": runs,
        "split": {"train": ["run-0", "run-1", "run-2"], "val": [], "test": []},
        "stats": {},
        "normalization": {
            "scope": "train",
            "cubes": {
                "per_variable": {"mean": [250.0, -1.0], "std": [4.0, 0.5]},
                // One zero std: that level is centred but not scaled (see Affine::from_mean_std).
                "per_level": {
                    "mean": [[240.0, 241.0, 242.0], [0.0, 1.0, 2.0]],
                    "std": [[1.0, 2.0, 0.0], [3.0, 0.25, 8.0]]
                }
            },
            "params": {"mean": [0.5, -1.0], "std": [2.0, 0.0]}
        },
        "digests": {}, "content_digest": "sha256:fixture", "provenance": {},
        "complete": true
    })
}

fn storage(root: &Path) -> Arc<FilesystemStore> {
    Arc::new(FilesystemStore::new(root).expect("filesystem store"))
}

/// The astrobio array builder: given shape, chunk shape and data type, standard codecs.
pub fn array_builder(shape: Vec<u64>, chunks: Vec<u64>, dtype: zarrs::array::DataType) -> ArrayBuilder {
    let mut b = ArrayBuilder::new(shape, chunks, dtype, "NaN");
    b.array_to_bytes_codec(Arc::new(BytesCodec::little()))
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false)), Arc::new(Crc32cCodec::new())]);
    b
}

impl Fixture {
    /// A complete, valid store in a fresh temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = n_samples();
        let cubes: Vec<f32> = (0..n).flat_map(|s| (0..sample_len()).map(move |i| value(s, i))).collect();
        let params: Vec<f32> = (0..n as usize * N_PARAMS).map(|i| (i as f32 * 0.37) % 9.0 - 4.0).collect();
        let f = Fixture { dir, manifest: manifest_json(), cubes, params };
        let [v, l, h, w] = SHAPE.map(|x| x as u64);
        let cubes = array_builder(vec![n, v, l, h, w], vec![1, v, l, h, w], data_type::float32());
        let cubes = f.build_array("cubes", cubes);
        for s in 0..n {
            cubes.store_chunk(&[s, 0, 0, 0, 0], f.sample(s)).expect("store chunk");
        }
        let p = N_PARAMS as u64;
        let params = f.build_array("params", array_builder(vec![n, p], vec![n, p], data_type::float32()));
        params.store_chunk(&[0, 0], f.params.as_slice()).expect("store params");
        f.write_manifest(&f.manifest);
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn sample(&self, s: u64) -> &[f32] {
        let n = sample_len();
        &self.cubes[s as usize * n..(s as usize + 1) * n]
    }

    pub fn chunk_key(s: u64) -> String {
        format!("cubes/c/{s}/0/0/0/0")
    }

    pub fn chunk_path(&self, s: u64) -> PathBuf {
        self.root().join(Self::chunk_key(s))
    }

    /// Create (or replace the metadata of) an array at `/name`.
    pub fn build_array(&self, name: &str, builder: ArrayBuilder) -> Array<FilesystemStore> {
        let array = builder.build(storage(self.root()), &format!("/{name}")).expect("build array");
        array.store_metadata().expect("array metadata");
        array
    }

    /// The cube array as stored, for writing chunks through the codecs (valid checksums).
    pub fn cubes_array(&self) -> Array<FilesystemStore> {
        Array::open(storage(self.root()), "/cubes").expect("open cubes")
    }

    pub fn params_array(&self) -> Array<FilesystemStore> {
        Array::open(storage(self.root()), "/params").expect("open params")
    }

    /// Rewrite sample `s` with `values` through zarrs, so the chunk's checksum is valid.
    pub fn write_sample(&self, s: u64, values: &[f32]) {
        self.cubes_array().store_chunk(&[s, 0, 0, 0, 0], values).expect("store chunk");
    }

    /// Sample `s` with element `i` set to `x`, written with a valid checksum.
    pub fn poke(&self, s: u64, i: usize, x: f32) {
        let mut values = self.sample(s).to_vec();
        values[i] = x;
        self.write_sample(s, &values);
    }

    /// Write the group metadata with `manifest` as the `astrobio` attribute.
    pub fn write_manifest(&self, manifest: &Value) {
        let mut attrs = serde_json::Map::new();
        attrs.insert("astrobio".into(), manifest.clone());
        self.write_group_attrs(attrs);
    }

    pub fn write_group_attrs(&self, attrs: serde_json::Map<String, Value>) {
        let group = GroupBuilder::new().attributes(attrs).build(storage(self.root()), "/").expect("group");
        group.store_metadata().expect("group metadata");
    }

    /// Flip every bit of one byte of a file.
    pub fn flip_byte(path: &Path, at: usize) {
        let mut bytes = std::fs::read(path).expect("read");
        bytes[at] ^= 0xff;
        std::fs::write(path, bytes).expect("write");
    }
}

/// Plain reference for one batch: normalize each sample with f64 arithmetic straight from the
/// manifest statistics, then stack. `mode`: "per_variable", "per_level" or "none".
pub fn reference_batch(f: &Fixture, indices: &[i64], mode: &str) -> Vec<f64> {
    let [_, l, h, w] = SHAPE;
    let norm = &f.manifest["normalization"]["cubes"];
    let stat = |kind: &str, v: usize, level: usize| -> f64 {
        match mode {
            "per_variable" => norm["per_variable"][kind][v].as_f64().unwrap(),
            "per_level" => norm["per_level"][kind][v][level].as_f64().unwrap(),
            _ => unreachable!(),
        }
    };
    let mut out = Vec::new();
    for &s in indices {
        for (i, &x) in f.sample(s as u64).iter().enumerate() {
            let (v, level) = (i / (l * h * w), (i / (h * w)) % l);
            out.push(if mode == "none" {
                x as f64
            } else {
                let std = stat("std", v, level);
                let centred = x as f64 - stat("mean", v, level);
                if std > 0.0 { centred / std } else { centred }
            });
        }
    }
    out
}
