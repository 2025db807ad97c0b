//! The fast chunk path: file -> crc32c -> decompress straight into the caller's buffer.
//!
//! zarrs decodes a chunk through its codec chain with owned buffers: its crc32c codec copies
//! the payload, the bound check before zstd checksummed it a second time, and the decoded
//! bytes land in a fresh allocation that the kernel then copies into the batch. For the codec
//! chains astrobio writes (`bytes`(little) -> one of `zstd` / `blosc` / nothing -> optional
//! `crc32c`, read from the array's own zarr v3 metadata) this module does the same work with
//! one checksum pass and no copy: the file is mapped (or read into a reused buffer), checked
//! once with the hardware crc32c, and decompressed directly into the sample's slot of the
//! batch. Any other chain goes through zarrs (store/decode.rs), so the store stays a plain zarr v3
//! array that any reader can open and any valid chain still reads.
//!
//! Untrusted bytes stay bounded: the file's size is checked before it is read, and both
//! decompressors write into the fixed-size slot (a frame that claims more is an error, never
//! an allocation).

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::regular::{open_regular, FileFault};

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

/// The reason a bad checksum is reported with, by this path and by zarrs' (store/decode.rs) alike.
pub(crate) const CRC32C_MISMATCH: &str = "checksum mismatch (crc32c)";

/// Why a chunk could not be decoded.
#[derive(Debug)]
pub enum ChunkError {
    Missing,
    Io(std::io::Error),
    Bad(String),
}

impl From<FileFault> for ChunkError {
    fn from(f: FileFault) -> Self {
        match f {
            FileFault::Missing => ChunkError::Missing,
            FileFault::Io(e) => ChunkError::Io(e),
            refused => ChunkError::Bad(refused.reason()),
        }
    }
}

thread_local! {
    // Per-thread scratch reused across chunks: no allocation per read once warm.
    static ENCODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
    static BLOCK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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

    /// Read, verify and decode the chunk file at `path` (a regular file inside the store whose
    /// real root is `root`, see regular.rs) into `out` (exactly the chunk's bytes).
    pub fn decode_file(&self, root: &Path, path: &Path, out: &mut [u8]) -> Result<(), ChunkError> {
        with_chunk_bytes(root, path, out.len(), |data| self.decode_bytes(data, out))
    }

    /// Read and verify the chunk file at `path`; when it is a byte-shuffled float32 blosc
    /// buffer, hand it to `sink` block by block as byte planes, still in cache, so the values
    /// are unshuffled, checked and normalized in one pass into `out` (`Visit::Fused(all
    /// sinks returned true)`); otherwise decode it into `out` as raw values (`Visit::Decoded`).
    pub fn visit_file(&self, root: &Path, path: &Path, out: &mut [f32], sink: &mut PlaneSink<'_>) -> Result<Visit, ChunkError> {
        with_chunk_bytes(root, path, out.len() * 4, |data| self.visit_bytes(data, out, sink))
    }

    /// [`Self::visit_file`] on a chunk's encoded bytes already in memory (an object fetched
    /// from object storage); the caller bounds their size.
    pub fn visit_bytes(&self, data: &[u8], out: &mut [f32], sink: &mut PlaneSink<'_>) -> Result<Visit, String> {
        if self.compressor == Compressor::Blosc {
            let body = self.checked_body(data)?;
            match blosc_fused(body, out, sink) {
                Ok(Some(ok)) => return Ok(Visit::Fused(ok)),
                Ok(None) => {}
                // Faults are named by C-blosc below, so every reader reports the same reason.
                Err(_) => {}
            }
        }
        self.decode_bytes(data, as_bytes_mut(out)).map(|()| Visit::Decoded)
    }

    /// Verify and decode an encoded chunk into `out`; the error is the reason.
    pub fn decode_bytes(&self, data: &[u8], out: &mut [u8]) -> Result<(), String> {
        let body = self.checked_body(data)?;
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

    /// The encoded bytes without their crc32c trailer, once the checksum is verified.
    fn checked_body<'a>(&self, data: &'a [u8]) -> Result<&'a [u8], String> {
        Ok(if self.crc32c {
            if data.len() < 4 {
                return Err("cannot decode: the chunk is shorter than its crc32c checksum".into());
            }
            let (body, sum) = data.split_at(data.len() - 4);
            let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
            if crc32c::crc32c(body) != stored {
                return Err(CRC32C_MISMATCH.into());
            }
            body
        } else {
            data
        })
    }
}

/// What [`FastChain::visit_file`] did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Handed to the sink block by block; `false` when a sink found an invalid value.
    Fused(bool),
    /// Decoded into the output as raw values.
    Decoded,
}

/// Receives one decoded blosc block: index of its first value, its four byte planes (plane
/// `k` holds byte `k` of every value, little endian), and the block's values in the output.
pub type PlaneSink<'a> = dyn FnMut(usize, [&[u8]; 4], &mut [f32]) -> bool + 'a;

/// Map (or read) the chunk file at `path`, refusing one larger than any encoding of `decoded`
/// bytes, and run `f` on its bytes.
fn with_chunk_bytes<R>(
    root: &Path,
    path: &Path,
    decoded: usize,
    f: impl FnOnce(&[u8]) -> Result<R, String>,
) -> Result<R, ChunkError> {
    let mut file = open_regular(root, path).map_err(ChunkError::from)?;
    let len = file.metadata().map_err(ChunkError::Io)?.len();
    let max = FastChain::max_encoded(decoded);
    if len > max {
        return Err(ChunkError::Bad(format!(
            "chunk file holds {len} bytes, more than any encoding of {decoded} bytes may take"
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
                return f(&map).map_err(ChunkError::Bad);
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
        f(data).map_err(ChunkError::Bad)
    })
}

/// Blosc 1 (format version 2) decoded block by block in safe Rust around the C LZ4 / zstd
/// block decoders, for byte-shuffled float32 buffers: each block is decompressed into a
/// per-thread buffer that stays in cache and handed to `sink` as byte planes, which replaces
/// C-blosc's unshuffle pass plus a separate normalize pass over the whole sample. Mirrors
/// c-blosc 1.21's `blosc_d` checks. `Ok(None)`: a variant this path does not take (bitshuffle,
/// memcpyed, another typesize or codec); C-blosc decodes it instead.
fn blosc_fused(buffer: &[u8], out: &mut [f32], sink: &mut PlaneSink<'_>) -> Result<Option<bool>, String> {
    const HEADER: usize = 16;
    const MIN_BUFFERSIZE: usize = 128;
    let bad = || "cannot decode: not a valid blosc buffer".to_string();
    if buffer.len() < HEADER {
        return Err(bad());
    }
    let word = |at: usize| u32::from_le_bytes([buffer[at], buffer[at + 1], buffer[at + 2], buffer[at + 3]]) as usize;
    let (version, flags, typesize) = (buffer[0], buffer[2], buffer[3]);
    let (nbytes, blocksize, cbytes) = (word(4), word(8), word(12));
    let compcode = flags >> 5;
    let shuffled = flags & 0x1 != 0 && flags & 0x4 == 0 && flags & 0x2 == 0;
    if version != 2 || flags & 0x08 != 0 || typesize != 4 || !shuffled || !(compcode == 1 || compcode == 4) {
        return Ok(None);
    }
    if cbytes != buffer.len() || nbytes > i32::MAX as usize {
        return Err(bad());
    }
    if nbytes != out.len() * 4 {
        return Err(format!("decoded {nbytes} bytes, expected {}", out.len() * 4));
    }
    if nbytes == 0 {
        return Ok(Some(true));
    }
    if blocksize == 0 || blocksize > nbytes || blocksize % 4 != 0 {
        return Ok(None); // C-blosc refuses or handles these; let it name the fault
    }
    let nblocks = nbytes.div_ceil(blocksize);
    if nblocks > (cbytes - HEADER) / 4 {
        return Err(bad());
    }
    let dont_split = flags & 0x10 != 0;
    BLOCK.with_borrow_mut(|tmp| {
        if tmp.len() < blocksize {
            tmp.resize(blocksize, 0);
        }
        let mut all_ok = true;
        for j in 0..nblocks {
            let leftover = j == nblocks - 1 && nbytes % blocksize != 0;
            let bsize = if leftover { nbytes % blocksize } else { blocksize };
            let nsplits = if !dont_split && bsize / 4 >= MIN_BUFFERSIZE && !leftover { 4 } else { 1 };
            let neblock = bsize / nsplits;
            let mut offset = word(HEADER + 4 * j);
            for s in 0..nsplits {
                if offset > cbytes.saturating_sub(4) {
                    return Err(bad());
                }
                let csize = word(offset);
                offset += 4;
                if csize > cbytes - offset {
                    return Err(bad());
                }
                let src = &buffer[offset..offset + csize];
                let dst = &mut tmp[s * neblock..(s + 1) * neblock];
                if csize == neblock {
                    dst.copy_from_slice(src);
                } else {
                    block_decompress(compcode, src, dst)?;
                }
                offset += csize;
            }
            let block = &tmp[..bsize];
            let q = bsize / 4;
            let planes = [&block[..q], &block[q..2 * q], &block[2 * q..3 * q], &block[3 * q..4 * q]];
            let first = j * blocksize / 4;
            all_ok &= sink(first, planes, &mut out[first..first + q]);
        }
        Ok(Some(all_ok))
    })
}

fn block_decompress(compcode: u8, src: &[u8], dst: &mut [u8]) -> Result<(), String> {
    let fail = || "cannot decode: a blosc block does not decompress to its size".to_string();
    if compcode == 1 {
        let (Ok(n), Ok(cap)) = (i32::try_from(src.len()), i32::try_from(dst.len())) else { return Err(fail()) };
        // SAFETY: LZ4_decompress_safe reads at most `n` bytes of `src`, writes at most `cap`
        // bytes into `dst`, and is built for untrusted input (returns < 0 on malformed data).
        let got = unsafe { lz4_sys::LZ4_decompress_safe(src.as_ptr().cast(), dst.as_mut_ptr().cast(), n, cap) };
        return if got == cap { Ok(()) } else { Err(fail()) };
    }
    DCTX.with_borrow_mut(|slot| {
        let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        match dctx.decompress(dst, src) {
            Ok(k) if k == dst.len() => Ok(()),
            _ => Err(fail()),
        }
    })
}

/// Refuse a zstd frame that may decode to more than `decoded_len` bytes plus one zstd block
/// (128 KiB): a walk over block headers, no decoding. A frame without a declared content size
/// is bounded by its block count; one the walk cannot parse is refused too.
pub(crate) fn check_zstd_bound(frame: &[u8], decoded_len: u64) -> Result<(), String> {
    const ZSTD_BLOCK_MAX: u64 = 128 << 10;
    match zstd::zstd_safe::decompress_bound(frame) {
        Ok(bound) if bound <= decoded_len + ZSTD_BLOCK_MAX => Ok(()),
        Ok(bound) => Err(format!("zstd frame may decode to {bound} bytes, the chunk holds {decoded_len}")),
        Err(_) => Err("cannot decode: not a valid zstd frame".into()),
    }
}

fn zstd_into(frame: &[u8], out: &mut [u8]) -> Result<(), String> {
    // The decoder writes only into `out`, so memory is bounded regardless; the bound is
    // checked first so a bomb or trailing garbage is named as such rather than as a generic
    // decode failure.
    let n = out.len() as u64;
    check_zstd_bound(frame, n)?;
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
