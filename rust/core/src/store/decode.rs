//! The one decode path: a sample's chunk, from whichever source (source.rs), verified and decoded
//! into the caller's slot. The chains astrobio writes go through chunk.rs (a blosc chunk handed
//! over block by block, so checks and normalization run while the block is in cache), any other
//! valid zarr v3 chain through zarrs. A read, a scan and the fuzz kernel all decode here.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use zarrs::array::codec::{Crc32cCodec, ZstdCodec};
use zarrs::array::{
    Array, ArrayBytes, ArrayToBytesCodecTraits, BytesRepresentation, BytesToBytesCodecTraits, CodecError, CodecOptions,
};

use super::{ChunkSource, CubeStore};
use crate::chunk::{as_bytes_mut, check_zstd_bound, ChunkError, PlaneSink, Visit, CRC32C_MISMATCH};
use crate::error::{CoreError, CoreResult};
use crate::kernel::{normalize_in_place, planes_normalize_into, planes_unshuffle_into, Affine};
use crate::regular::check_regular;

thread_local! {
    // Per-thread decoded sample for callers that want a view (the full-store scan).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl CubeStore {
    /// Fetch (or read), verify (checksum, decoded size) and decode one sample's chunk into `dst`
    /// (exactly one sample's values), with no intermediate copy on the fast path. `fetched`: the
    /// sample's chunk bytes when the caller already fetched them (see [`Self::with_source`]).
    pub fn decode_into(&self, sample: u64, fetched: Option<&[u8]>, dst: &mut [f32]) -> CoreResult<()> {
        self.check_slot(dst)?;
        self.with_source(sample, fetched, |src| {
            // Blosc through the same block decoder as batch reads, so a scan and a read agree.
            let mut unshuffle = |_: usize, planes: [&[u8]; 4], block: &mut [f32]| {
                planes_unshuffle_into(planes, block);
                true
            };
            self.visit(sample, src, dst, &mut unshuffle).map(|_| ())
        })
    }

    /// Decode, check and normalize one sample into `dst` in a single pass where the chain
    /// allows (blosc: per block, still in cache), else decode then normalize in place.
    /// `Ok(false)`: a value is invalid (`dst` then holds no promise; decode again to name it).
    pub fn read_normalized_into(&self, sample: u64, fetched: Option<&[u8]>, dst: &mut [f32], affine: &Affine) -> CoreResult<bool> {
        self.check_slot(dst)?;
        let (layout, ranges) = (self.layout, &self.ranges);
        self.with_source(sample, fetched, |src| {
            let mut sink = |first: usize, planes: [&[u8]; 4], block: &mut [f32]| {
                planes_normalize_into(first, planes, block, layout, affine, ranges)
            };
            match self.visit(sample, src, dst, &mut sink)? {
                Visit::Fused(ok) => Ok(ok),
                Visit::Decoded => Ok(normalize_in_place(dst, layout, affine, ranges).is_ok()),
            }
        })
    }

    /// Decode one sample (as [`Self::decode_into`]) into a per-thread buffer and hand its values
    /// to `f`. `f` must not call this again (the buffer is borrowed).
    pub fn with_decoded<R>(&self, sample: u64, fetched: Option<&[u8]>, f: impl FnOnce(&[f32]) -> R) -> CoreResult<R> {
        SCRATCH.with_borrow_mut(|buf| {
            buf.resize(self.layout.len(), 0.0);
            self.decode_into(sample, fetched, buf)?;
            Ok(f(buf))
        })
    }

    /// A slot holds exactly one sample.
    fn check_slot(&self, dst: &[f32]) -> CoreResult<()> {
        if dst.len() == self.layout.len() {
            return Ok(());
        }
        Err(CoreError::InvalidArgument(format!("a sample holds {} values, the buffer {}", self.layout.len(), dst.len())))
    }

    /// Verify and decode `src` into `dst`: a blosc chunk of the fast path block by block through
    /// `sink` (`Visit::Fused`), anything else decoded into `dst` as raw values (`Visit::Decoded`).
    fn visit(&self, sample: u64, src: ChunkSource<'_>, dst: &mut [f32], sink: &mut PlaneSink<'_>) -> CoreResult<Visit> {
        let fail = |reason: String| CoreError::integrity(self.location(sample), reason);
        match src {
            ChunkSource::File(path) => match self.fast {
                Some(chain) => chain.visit_file(self.local_root(), &path, dst, sink).map_err(|e| self.chunk_error(sample, path, e)),
                None => {
                    // zarrs opens the file itself: the same rule, checked just before.
                    check_regular(self.local_root(), &path).map_err(|e| self.chunk_error(sample, path.clone(), ChunkError::from(e)))?;
                    let encoded = self
                        .cubes
                        .retrieve_encoded_chunk(&[sample, 0, 0, 0, 0])
                        .map_err(|e| CoreError::Io { path, source: std::io::Error::other(e.to_string()) })?
                        .ok_or_else(|| fail("chunk missing".into()))?;
                    self.decode_zarrs_into(sample, encoded, dst).map(|()| Visit::Decoded)
                }
            },
            ChunkSource::ShardInner(data) | ChunkSource::Fetched(data) => {
                if data.len() as u64 > self.max_chunk_len() {
                    return Err(fail(format!("chunk object holds {} bytes, more than any encoding of the sample may take", data.len())));
                }
                match self.fast {
                    Some(chain) => chain.visit_bytes(data, dst, sink).map_err(fail),
                    None => self.decode_zarrs_into(sample, data.to_vec(), dst).map(|()| Visit::Decoded),
                }
            }
        }
    }

    fn decode_zarrs_into(&self, sample: u64, encoded: Vec<u8>, dst: &mut [f32]) -> CoreResult<()> {
        let fail = |reason: String| CoreError::integrity(self.location(sample), reason);
        let shape = self.cubes.chunk_shape(&[sample, 0, 0, 0, 0]).map_err(|e| fail(e.to_string()))?;
        let decoded = decode_chunk(&self.cubes, encoded, &shape, &self.options).map_err(fail)?;
        let expected = self.layout.len() * 4;
        if decoded.len() != expected {
            return Err(fail(format!("decoded {} bytes, expected {expected}", decoded.len())));
        }
        as_bytes_mut(dst).copy_from_slice(&decoded);
        Ok(())
    }

    pub(super) fn chunk_error(&self, sample: u64, path: PathBuf, e: ChunkError) -> CoreError {
        match e {
            ChunkError::Missing => CoreError::integrity(self.location(sample), String::from("chunk missing")),
            ChunkError::Io(source) => CoreError::Io { path, source },
            ChunkError::Bad(reason) => CoreError::integrity(self.location(sample), reason),
        }
    }
}

pub(super) fn decode_chunk(
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
