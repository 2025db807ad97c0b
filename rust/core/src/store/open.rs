//! Opening a store: a directory or an object-storage URL, its metadata documents checked (regular
//! files inside the store, float32 arrays of the manifest's shape, one sample per chunk or
//! sharded) before any chunk is read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::collections::HashMap;

use zarrs::array::{Array, CodecOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::storage::store::MemoryStore;
use zarrs::storage::{ReadableStorage, StoreKey, WritableStorageTraits};

use super::{integrity, not_found, CubeStore, CUBES, MANIFEST_KEY, PARAMS};
use crate::chunk::FastChain;
use crate::error::{CoreError, CoreResult};
use crate::kernel::SampleLayout;
use crate::manifest::Manifest;
use crate::regular::{check_regular, read_regular, real_root, FileFault};
use crate::remote::{self, RemoteStore};
use crate::shard::Sharding;

/// The array metadata documents a store open reads (`params` only when the store has some).
const METADATA_KEYS: [&str; 3] = ["zarr.json", "cubes/zarr.json", "params/zarr.json"];
/// Largest metadata document accepted from object storage (a manifest with thousands of runs
/// is a few MB).
const MAX_METADATA_BYTES: u64 = 256 << 20;

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

pub(super) fn check_float32(array: &Array<dyn zarrs::storage::ReadableStorageTraits>, name: &str) -> CoreResult<()> {
    if array.data_type() != &zarrs::array::data_type::float32() {
        return Err(integrity(
            Some(format!("{name}/zarr.json")),
            format!("{name} has data type {:?}, expected float32", array.data_type()),
        ));
    }
    Ok(())
}
