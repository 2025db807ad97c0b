//! The fast chunk path: file -> crc32c -> decompress straight into the caller's buffer.
//!
//! zarrs decodes a chunk through its codec chain with owned buffers: its crc32c codec copies
//! the payload, the bound check before zstd checksummed it a second time, and the decoded
//! bytes land in a fresh allocation that the kernel then copies into the batch. For the codec
//! chains astrobio writes (`bytes`(little) -> one of `zstd` / `blosc` / nothing -> optional
//! `crc32c`, read from the array's own zarr v3 metadata) this module does the same work with
//! one checksum pass and no copy: the file is mapped (or read into a reused buffer), checked
//! once with the hardware crc32c, and decompressed directly into the sample's slot of the
//! batch. Any other chain goes through zarrs (store.rs), so the store stays a plain zarr v3
//! array that any reader can open and any valid chain still reads.
//!
//! Untrusted bytes stay bounded: the file's size is checked before it is read, and both
//! decompressors write into the fixed-size slot (a frame that claims more is an error, never
//! an allocation).

use std::cell::RefCell;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use serde_json::Value;

/// The compression stage of a fast-pathed chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    None,
    Zstd,
    Blosc,
}

/// A codec chain this module decodes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastChain {
    pub compressor: Compressor,
    pub crc32c: bool,
}

/// Why a chunk could not be decoded.
#[derive(Debug)]
pub enum ChunkError {
    Missing,
    Io(std::io::Error),
    Bad(String),
}

thread_local! {
    // Per-thread scratch reused across chunks: no allocation per read once warm.
    static ENCODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

impl FastChain {
    /// Recognise the `codecs` list of a zarr v3 array's metadata; `None` leaves it to zarrs.
    pub fn from_codecs(codecs: &Value) -> Option<Self> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let list = codecs.as_array()?;
        let name = |c: &Value| c.get("name").and_then(Value::as_str).map(str::to_owned);
        let (first, rest) = list.split_first()?;
        let endian = first.get("configuration").and_then(|c| c.get("endian")).and_then(Value::as_str);
        if name(first)?.as_str() != "bytes" || endian != Some("little") {
            return None;
        }
        let mut chain = FastChain { compressor: Compressor::None, crc32c: false };
        let mut names: Vec<String> = rest.iter().map(name).collect::<Option<_>>()?;
        if names.last().map(String::as_str) == Some("crc32c") {
            chain.crc32c = true;
            names.pop();
        }
        chain.compressor = match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] => Compressor::None,
            ["zstd"] => Compressor::Zstd,
            ["blosc"] => Compressor::Blosc,
            _ => return None,
        };
        Some(chain)
    }

    /// Largest chunk file any of these encodings produces for `decoded` bytes (zstd and blosc
    /// both stay within a small fraction over the input); a larger file is refused unread.
    pub fn max_encoded(decoded: usize) -> u64 {
        decoded as u64 + decoded as u64 / 8 + (64 << 10) + 4
    }

    /// Read, verify and decode the chunk file at `path` into `out` (exactly the chunk's bytes).
    pub fn decode_file(&self, path: &Path, out: &mut [u8]) -> Result<(), ChunkError> {
        let mut file = File::open(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => ChunkError::Missing,
            _ => ChunkError::Io(e),
        })?;
        let len = file.metadata().map_err(ChunkError::Io)?.len();
        let max = Self::max_encoded(out.len());
        if len > max {
            return Err(ChunkError::Bad(format!(
                "chunk file holds {len} bytes, more than any encoding of {} bytes may take",
                out.len()
            )));
        }
        let len = len as usize;
        if len > 0 {
            // Mapping the page cache avoids read()'s copy into user memory, measured at about
            // 2 GB/s here (as slow as lz4 decoding itself); MAP_POPULATE maps every page in one
            // call instead of one fault per 16 pages.
            // SAFETY: chunk files are immutable: the writer builds a store in a temporary
            // sibling and renames it into place, and a rewrite renames a new tree over the old
            // one, which keeps a mapped inode alive. Only truncating a chunk file in place
            // while this very read runs would fault (SIGBUS); that is outside the format.
            if let Ok(map) = unsafe { memmap2::MmapOptions::new().len(len).populate().map(&file) } {
                if map.len() == len {
                    return self.decode_bytes(&map, out).map_err(ChunkError::Bad);
                }
            }
        }
        // Fallback (mapping refused, or an empty file): read into a reused per-thread buffer.
        ENCODED.with_borrow_mut(|buf| {
            // Grown to the largest chunk seen, never shrunk: zero-filled only when it grows.
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let data = &mut buf[..len];
            file.read_exact(data).map_err(ChunkError::Io)?;
            self.decode_bytes(data, out).map_err(ChunkError::Bad)
        })
    }

    /// Verify and decode an encoded chunk into `out`; the error is the reason.
    pub fn decode_bytes(&self, data: &[u8], out: &mut [u8]) -> Result<(), String> {
        let body = if self.crc32c {
            if data.len() < 4 {
                return Err("cannot decode: the chunk is shorter than its crc32c checksum".into());
            }
            let (body, sum) = data.split_at(data.len() - 4);
            let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
            if crc32c::crc32c(body) != stored {
                return Err("checksum mismatch (crc32c)".into());
            }
            body
        } else {
            data
        };
        match self.compressor {
            Compressor::None if body.len() == out.len() => {
                out.copy_from_slice(body);
                Ok(())
            }
            Compressor::None => Err(format!("decoded {} bytes, expected {}", body.len(), out.len())),
            Compressor::Zstd => zstd_into(body, out),
            Compressor::Blosc => blosc_into(body, out),
        }
    }
}

fn zstd_into(frame: &[u8], out: &mut [u8]) -> Result<(), String> {
    // The decoder writes only into `out`, so memory is bounded regardless; the bound is
    // checked first (a walk over block headers, no decoding) so a bomb or trailing garbage
    // is named as such rather than as a generic decode failure.
    const ZSTD_BLOCK_MAX: u64 = 128 << 10;
    let n = out.len() as u64;
    match zstd::zstd_safe::decompress_bound(frame) {
        Ok(bound) if bound <= n + ZSTD_BLOCK_MAX => {}
        Ok(bound) => return Err(format!("zstd frame may decode to {bound} bytes, the chunk holds {n}")),
        Err(_) => return Err("cannot decode: not a valid zstd frame".into()),
    }
    DCTX.with_borrow_mut(|slot| {
        let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        match dctx.decompress(out, frame) {
            Ok(k) if k as u64 == n => Ok(()),
            Ok(k) => Err(format!("decoded {k} bytes, expected {n}")),
            Err(code) => Err(format!("cannot decode: zstd: {}", zstd::zstd_safe::get_error_name(code))),
        }
    })
}

fn blosc_into(buffer: &[u8], out: &mut [u8]) -> Result<(), String> {
    use blosc_src::{blosc_cbuffer_validate, blosc_decompress_ctx};
    let mut nbytes = 0usize;
    // SAFETY: validate reads the 16-byte header only after checking the length covers it, and
    // accepts only a buffer whose header states exactly `buffer.len()` compressed bytes, the
    // size that blosc_decompress_ctx then trusts.
    let valid = unsafe { blosc_cbuffer_validate(buffer.as_ptr().cast(), buffer.len(), &mut nbytes) } == 0;
    if !valid {
        return Err("cannot decode: not a valid blosc buffer".into());
    }
    if nbytes != out.len() {
        return Err(format!("decoded {nbytes} bytes, expected {}", out.len()));
    }
    // SAFETY: `out` holds exactly `nbytes` writable bytes, the destination size passed; one
    // internal thread (the batch is parallel over samples already).
    let written = unsafe { blosc_decompress_ctx(buffer.as_ptr().cast(), out.as_mut_ptr().cast(), out.len(), 1) };
    match usize::try_from(written) {
        Ok(k) if k == out.len() => Ok(()),
        _ => Err(format!("cannot decode: blosc error {written}")),
    }
}

/// View a float32 buffer as its bytes (what the decompressors write into).
pub fn as_bytes_mut(values: &mut [f32]) -> &mut [u8] {
    // SAFETY: u8 has no alignment requirement and every byte pattern is a valid f32; the
    // length covers exactly the same memory.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(values)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recognises_the_chains_it_decodes_and_leaves_the_rest_to_zarrs() {
        let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
        let c = |v: Value| FastChain::from_codecs(&v);
        let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}});
        let blosc = json!({"name": "blosc", "configuration": {"cname": "lz4"}});
        let crc = json!({"name": "crc32c"});
        assert_eq!(c(json!([bytes, zstd, crc])), Some(FastChain { compressor: Compressor::Zstd, crc32c: true }));
        assert_eq!(c(json!([bytes, blosc, crc])), Some(FastChain { compressor: Compressor::Blosc, crc32c: true }));
        assert_eq!(c(json!([bytes])), Some(FastChain { compressor: Compressor::None, crc32c: false }));
        assert_eq!(c(json!([bytes, crc, zstd])), None);
        assert_eq!(c(json!([bytes, zstd, zstd, crc])), None);
        assert_eq!(c(json!([{"name": "transpose"}, bytes, zstd])), None);
        assert_eq!(c(json!([{"name": "bytes", "configuration": {"endian": "big"}}, zstd])), None);
    }

    #[test]
    fn a_buffer_that_claims_more_than_the_chunk_is_refused() {
        let chain = FastChain { compressor: Compressor::Zstd, crc32c: false };
        let frame = zstd::bulk::compress(&[7u8; 4096], 1).unwrap();
        let mut out = vec![0u8; 1024];
        assert!(chain.decode_bytes(&frame, &mut out).is_err());
        let mut out = vec![0u8; 4096];
        chain.decode_bytes(&frame, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == 7));
    }

    #[test]
    fn crc32c_is_the_castagnoli_checksum() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
    }
}
