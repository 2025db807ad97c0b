//! The parameter table: a small [n_samples, n_params] float32 array, decoded and range-checked in
//! full when the store opens (through zarrs: any valid chain).

use zarrs::array::Array;

use super::decode::decode_chunk;
use super::{describe_range, integrity, CubeStore, PARAMS};
use super::open::check_float32;
use crate::chunk::FastChain;
use crate::error::{CoreError, CoreResult, Location};
use crate::kernel::ValidRange;
use crate::regular::{check_regular, FileFault};

impl CubeStore {
    pub(super) fn load_params(&self, params: &Array<dyn zarrs::storage::ReadableStorageTraits>) -> CoreResult<Vec<f32>> {
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
