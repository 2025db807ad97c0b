//! Full-store scan: every chunk through the same checks as a read, plus files in the chunk
//! directory that belong to no sample. Returns a report instead of stopping at the first fault.

use std::path::Path;

use rayon::prelude::*;

use crate::cancel::{self, Cancel};
use crate::error::{CoreError, CoreResult, Location};
use crate::kernel::{verify_values, ValueFault};
use crate::pool;
use crate::reader::value_error;
use crate::store::{CubeStore, CUBES};

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub location: Location,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub samples: u64,
    pub chunks_checked: u64,
    pub chunks_failed: u64,
    pub unexpected_files: u64,
    pub bytes_decoded: u64,
    /// The first failures in sample order (at most the `max_failures` asked for).
    pub failures: Vec<Failure>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.chunks_failed == 0 && self.unexpected_files == 0
    }
}

/// Scan a store. Opening failures (missing store, bad manifest, bad params) are errors; chunk
/// faults are collected in the report. `cancel` is asked between windows of samples.
pub fn verify_store(root: impl AsRef<Path>, max_failures: usize, threads: usize, cancel: &dyn Cancel) -> CoreResult<VerifyReport> {
    let store = CubeStore::open(root)?;
    let n = store.n_samples();
    let sample_bytes = store.layout().len() as u64 * 4;
    let pool = pool::pool(threads);
    let window = match store.remote() {
        // Object storage: a window of chunk objects fetched concurrently, then checked on the pool.
        Some(remote) => (remote.settings().concurrency * 4) as u64,
        None => cancel::slice_samples(sample_bytes, pool.current_num_threads()) as u64,
    };
    let mut faults: Vec<Failure> = Vec::new();
    let mut start = 0;
    while start < n {
        cancel::check(cancel)?;
        let samples: Vec<u64> = (start..n.min(start + window)).collect();
        if store.remote().is_some() {
            let fetched = store.fetch_chunks(&samples)?;
            faults.extend(pool.install(|| {
                samples
                    .par_iter()
                    .zip(fetched.into_par_iter())
                    .filter_map(|(&s, got)| match got {
                        Ok(bytes) => check_sample(&store, s, Some(&bytes)),
                        Err(e) => failure(&store, s, Err(e)),
                    })
                    .collect::<Vec<_>>()
            }));
        } else {
            faults.extend(pool.install(|| samples.par_iter().filter_map(|&s| check_sample(&store, s, None)).collect::<Vec<_>>()));
        }
        start += window;
    }
    let chunks_failed = faults.len() as u64;
    let unexpected = match store.remote() {
        Some(remote) => unexpected_chunk_objects(&store, remote)?,
        None => unexpected_chunk_files(&store)?,
    };
    let unexpected_files = unexpected.len() as u64;
    faults.extend(unexpected);
    faults.truncate(max_failures);
    Ok(VerifyReport {
        samples: n,
        chunks_checked: n,
        chunks_failed,
        unexpected_files,
        bytes_decoded: (n - chunks_failed) * sample_bytes,
        failures: faults,
    })
}

/// The scan's verdict on one sample: its chunk (`fetched`, or located by the store) decoded and
/// every value checked against its variable's valid range; `None` when it is sound.
pub fn check_sample(store: &CubeStore, sample: u64, fetched: Option<&[u8]>) -> Option<Failure> {
    failure(store, sample, store.with_decoded(sample, fetched, |src| verify_values(src, store.layout(), store.ranges())))
}

/// A sample's outcome as a report line: a value fault or an integrity error keeps its location.
fn failure(store: &CubeStore, sample: u64, checked: CoreResult<Result<(), ValueFault>>) -> Option<Failure> {
    let err = match checked {
        Ok(Ok(())) => return None,
        Ok(Err(fault)) => value_error(store, sample, &fault),
        Err(e) => e,
    };
    Some(match err {
        CoreError::Integrity { location, reason } => Failure { location, reason },
        other => Failure { location: store.location(sample), reason: other.to_string() },
    })
}

/// Files under `cubes/c/` whose key is not the chunk of a sample: stray or foreign data.
/// Symbolic links are listed, not followed (no loop, nothing outside the store is walked).
fn unexpected_chunk_files(store: &CubeStore) -> CoreResult<Vec<Failure>> {
    let base = store.root().join(CUBES).join("c");
    let mut out = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CoreError::Io { path: dir, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CoreError::Io { path: dir.clone(), source })?;
            let path = entry.path();
            // The entry's own type (a link is not followed): a linked directory, a FIFO or a
            // socket here is listed like any file, never walked into or opened.
            let is_dir = entry.file_type().map_err(|source| CoreError::Io { path: path.clone(), source })?.is_dir();
            if is_dir {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&base).unwrap_or(&path);
            let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
            if let Some(f) = stray(store, &parts) {
                out.push(f);
            }
        }
    }
    out.sort_by(|a, b| a.location.chunk.cmp(&b.location.chunk));
    Ok(out)
}

/// The objects under `cubes/c/` of a store in object storage that are no sample's chunk.
fn unexpected_chunk_objects(store: &CubeStore, remote: &crate::remote::RemoteStore) -> CoreResult<Vec<Failure>> {
    let prefix = format!("{CUBES}/c/");
    let listed = remote.list(&prefix)?;
    Ok(listed
        .iter()
        .filter_map(|(key, _)| stray(store, &key.strip_prefix(prefix.as_str()).unwrap_or(key).split('/').collect::<Vec<_>>()))
        .collect())
}

/// A failure when the chunk key parts (below `cubes/c/`) are not a sample's chunk.
fn stray(store: &CubeStore, parts: &[&str]) -> Option<Failure> {
    let idx: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    let valid = matches!(&idx, Some(i) if i.len() == 5 && i[0] < store.n_chunk_objects() && i[1..].iter().all(|&x| x == 0));
    (!valid).then(|| Failure {
        location: Location { chunk: Some(format!("{CUBES}/c/{}", parts.join("/"))), ..Default::default() },
        reason: "unexpected file in the chunk directory (belongs to no sample)".into(),
    })
}
