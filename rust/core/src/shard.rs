//! Sharded cube arrays (zarr v3 `sharding_indexed`): the chunks of consecutive samples packed
//! into one object, with an index of `(offset, nbytes)` per inner chunk, so a store of small
//! samples makes fewer, larger objects on object storage (docs/object-storage.md).
//!
//! The core reads a sample's inner chunk straight out of its shard (a mapped file, or a range
//! GET whose index was fetched once) and decodes it with the same fast chain as an unsharded
//! chunk. Accepted layouts: inner chunks of one sample, the shard holding consecutive samples
//! only (`[S, V, L, H, W]`), the inner codecs a fast chain (what astrobio writes), and an
//! index encoded as `bytes`(little) with an optional `crc32c`, at either end. The index is
//! untrusted bytes: its checksum, every entry's bounds and arithmetic are checked; an entry of
//! all ones is an absent chunk, which the store reports as missing, never as the fill value.

use std::ops::Range;

use serde_json::Value;

use crate::chunk::{FastChain, CRC32C_MISMATCH};

/// One index entry: `[offset, nbytes]` of an inner chunk within its shard.
pub type IndexEntry = [u64; 2];

/// The index entry of an inner chunk that was never written.
const ABSENT: IndexEntry = [u64::MAX, u64::MAX];

/// Most samples per shard this reader takes (an index of 16 MB; the metadata is untrusted too).
pub const MAX_SHARD_SAMPLES: u64 = 1 << 20;

/// How a sharded cube array lays out its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    /// Samples (inner chunks) per shard.
    pub samples: u64,
    /// The index is at the end of the shard (zarr's default), else at its start.
    pub index_at_end: bool,
    /// The index carries a crc32c of its entries.
    pub index_crc32c: bool,
    /// The inner chunks' codec chain.
    pub inner: FastChain,
}

/// A shard's checked index and the shard's size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIndex {
    pub entries: Vec<IndexEntry>,
    pub shard_len: u64,
}

impl Sharding {
    /// Read the `codecs` list of the cube array's metadata. `Ok(None)`: not sharded; `Err`: a
    /// sharded layout this reader does not take, with the reason. `sample` is one sample's
    /// chunk shape `[1, V, L, H, W]`, `grid` the array's chunk (shard) shape.
    pub fn from_codecs(codecs: &Value, sample: &[u64], grid: &[u64]) -> Result<Option<Self>, String> {
        let Some([only]) = codecs.as_array().map(Vec::as_slice) else {
            return if is_sharded(codecs) { Err("the sharding codec must be the array's only codec".into()) } else { Ok(None) };
        };
        if only.get("name").and_then(Value::as_str) != Some("sharding_indexed") {
            return Ok(None);
        }
        let conf = only.get("configuration").ok_or("sharding_indexed has no configuration")?;
        let inner_shape: Option<Vec<u64>> =
            conf.get("chunk_shape").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect());
        if inner_shape.as_deref() != Some(sample) {
            return Err(format!("inner chunks must hold one sample {sample:?}, found {:?}", conf.get("chunk_shape")));
        }
        if grid.len() != sample.len() || grid[1..] != sample[1..] || grid[0] == 0 {
            return Err(format!("shards must hold whole consecutive samples [S, ...{:?}], found {grid:?}", &sample[1..]));
        }
        if grid[0] > MAX_SHARD_SAMPLES {
            return Err(format!("shards of {} samples; at most {MAX_SHARD_SAMPLES} are read", grid[0]));
        }
        let inner = conf
            .get("codecs")
            .and_then(FastChain::from_codecs)
            .ok_or("inner chunks must use astrobio's chunk codecs (bytes, blosc or zstd or none, crc32c)")?;
        let index_crc32c = match conf.get("index_codecs").and_then(Value::as_array).map(Vec::as_slice) {
            Some([bytes]) if is_little_bytes(bytes) => false,
            Some([bytes, crc]) if is_little_bytes(bytes) && crc.get("name").and_then(Value::as_str) == Some("crc32c") => true,
            other => return Err(format!("the shard index must be encoded as bytes (little) [+ crc32c], found {other:?}")),
        };
        let index_at_end = match conf.get("index_location").and_then(Value::as_str).unwrap_or("end") {
            "end" => true,
            "start" => false,
            other => return Err(format!("unknown shard index_location {other:?}")),
        };
        Ok(Some(Sharding { samples: grid[0], index_at_end, index_crc32c, inner }))
    }

    /// Bytes of the encoded index.
    pub fn index_len(&self) -> u64 {
        self.samples * 16 + if self.index_crc32c { 4 } else { 0 }
    }

    /// The shard a sample lives in, and its inner chunk's position there.
    pub fn locate(&self, sample: u64) -> (u64, usize) {
        (sample / self.samples, (sample % self.samples) as usize)
    }

    /// Where the encoded index lies in a shard of `shard_len` bytes.
    pub fn index_range(&self, shard_len: u64) -> Result<Range<u64>, String> {
        let len = self.index_len();
        if shard_len < len {
            return Err(format!("shard holds {shard_len} bytes, less than its {len}-byte index (truncated)"));
        }
        Ok(if self.index_at_end { shard_len - len..shard_len } else { 0..len })
    }

    /// Decode and check the encoded index of a shard of `shard_len` bytes.
    pub fn parse_index(&self, encoded: &[u8], shard_len: u64) -> Result<ShardIndex, String> {
        let n = self.samples as usize;
        if encoded.len() as u64 != self.index_len() {
            return Err(format!("shard index holds {} bytes, expected {}", encoded.len(), self.index_len()));
        }
        let entries_bytes = &encoded[..n * 16];
        if self.index_crc32c {
            let stored = u32::from_le_bytes(encoded[n * 16..].try_into().expect("4 bytes"));
            if crc32c::crc32c(entries_bytes) != stored {
                return Err(format!("shard index {CRC32C_MISMATCH}"));
            }
        }
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let entries: Vec<IndexEntry> = entries_bytes.chunks_exact(16).map(|e| [word(&e[..8]), word(&e[8..])]).collect();
        let data = self.data_range(shard_len)?;
        for (j, &entry) in entries.iter().enumerate() {
            if entry != ABSENT {
                inner_bounds(entry, &data).map_err(|why| format!("shard index entry {j}: {why}"))?;
            }
        }
        Ok(ShardIndex { entries, shard_len })
    }

    /// The byte range of inner chunk `j` in its shard; `Ok(None)` when it was never written.
    pub fn inner_range(&self, index: &ShardIndex, j: usize) -> Result<Option<Range<u64>>, String> {
        let entry = *index.entries.get(j).ok_or_else(|| format!("inner chunk {j} is outside a shard of {}", self.samples))?;
        if entry == ABSENT {
            return Ok(None);
        }
        inner_bounds(entry, &self.data_range(index.shard_len)?).map(Some)
    }

    /// The part of a shard that holds chunk bytes (all but the index).
    fn data_range(&self, shard_len: u64) -> Result<Range<u64>, String> {
        let index = self.index_range(shard_len)?;
        Ok(if self.index_at_end { 0..index.start } else { index.end..shard_len })
    }
}

fn inner_bounds([offset, nbytes]: IndexEntry, data: &Range<u64>) -> Result<Range<u64>, String> {
    match offset.checked_add(nbytes) {
        Some(end) if offset >= data.start && end <= data.end => Ok(offset..end),
        _ => Err(format!("chunk at bytes {offset}+{nbytes} lies outside the shard's data {data:?}")),
    }
}

fn is_little_bytes(codec: &Value) -> bool {
    codec.get("name").and_then(Value::as_str) == Some("bytes")
        && codec.get("configuration").and_then(|c| c.get("endian")).and_then(Value::as_str).is_none_or(|e| e == "little")
}

fn is_sharded(codecs: &Value) -> bool {
    codecs.as_array().is_some_and(|a| a.iter().any(|c| c.get("name").and_then(Value::as_str) == Some("sharding_indexed")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Compressor;

    fn sharding(samples: u64, crc: bool, at_end: bool) -> Sharding {
        Sharding {
            samples,
            index_at_end: at_end,
            index_crc32c: crc,
            inner: FastChain { compressor: Compressor::None, crc32c: true },
        }
    }

    fn index_bytes(entries: &[IndexEntry], crc: bool) -> Vec<u8> {
        let mut out: Vec<u8> = entries.iter().flat_map(|e| e.iter().flat_map(|w| w.to_le_bytes())).collect();
        if crc {
            let sum = crc32c::crc32c(&out);
            out.extend(sum.to_le_bytes());
        }
        out
    }

    #[test]
    fn astrobio_layout_is_recognised_and_others_are_named() {
        let meta: Value = serde_json::from_str(
            r#"[{"name":"sharding_indexed","configuration":{"chunk_shape":[1,2,3,4,5],
            "codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],
            "index_codecs":[{"name":"bytes","configuration":{"endian":"little"}},{"name":"crc32c"}],
            "index_location":"end"}}]"#,
        )
        .unwrap();
        let s = Sharding::from_codecs(&meta, &[1, 2, 3, 4, 5], &[8, 2, 3, 4, 5]).unwrap().unwrap();
        assert_eq!((s.samples, s.index_at_end, s.index_crc32c, s.index_len()), (8, true, true, 132));
        assert!(Sharding::from_codecs(&meta, &[1, 2, 3, 4, 5], &[8, 2, 3, 4, 10]).unwrap_err().contains("whole consecutive"));
        assert!(Sharding::from_codecs(&meta, &[1, 2, 3, 4, 6], &[8, 2, 3, 4, 6]).unwrap_err().contains("one sample"));
        assert!(Sharding::from_codecs(&meta, &[1, 2, 3, 4, 5], &[1 << 40, 2, 3, 4, 5]).unwrap_err().contains("at most"));
        let plain: Value = serde_json::from_str(r#"[{"name":"bytes"},{"name":"crc32c"}]"#).unwrap();
        assert_eq!(Sharding::from_codecs(&plain, &[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]), Ok(None));
        let mut odd = meta.clone();
        odd[0]["configuration"]["index_codecs"][1]["name"] = Value::from("gzip");
        assert!(Sharding::from_codecs(&odd, &[1, 2, 3, 4, 5], &[8, 2, 3, 4, 5]).unwrap_err().contains("index"));
    }

    #[test]
    fn entries_are_checked_and_absent_chunks_reported() {
        let s = sharding(3, true, true);
        let entries = [[0, 10], ABSENT, [10, 5]];
        let shard_len = 15 + s.index_len();
        let index = s.parse_index(&index_bytes(&entries, true), shard_len).unwrap();
        assert_eq!(s.inner_range(&index, 0), Ok(Some(0..10)));
        assert_eq!(s.inner_range(&index, 1), Ok(None));
        assert_eq!(s.inner_range(&index, 2), Ok(Some(10..15)));
        assert!(s.inner_range(&index, 3).is_err());
        // a flipped byte fails the index checksum
        let mut bad = index_bytes(&entries, true);
        bad[3] ^= 1;
        assert!(s.parse_index(&bad, shard_len).unwrap_err().contains("checksum"));
        // an entry reaching into the index, or overflowing, is refused
        for entry in [[10, 6], [u64::MAX - 1, 5], [5, u64::MAX]] {
            let err = s.parse_index(&index_bytes(&[[0, 10], entry, ABSENT], true), shard_len).unwrap_err();
            assert!(err.contains("entry 1"), "{err}");
        }
        // a shard shorter than its index is truncated
        assert!(s.index_range(10).unwrap_err().contains("truncated"));
        assert!(s.parse_index(&index_bytes(&entries, true)[..20], shard_len).is_err());
    }

    #[test]
    fn an_index_at_the_start_leaves_its_bytes_out_of_the_data() {
        let s = sharding(2, false, false);
        let shard_len = s.index_len() + 8;
        assert_eq!(s.index_range(shard_len), Ok(0..32));
        let index = s.parse_index(&index_bytes(&[[32, 8], ABSENT], false), shard_len).unwrap();
        assert_eq!(s.inner_range(&index, 0), Ok(Some(32..40)));
        assert!(s.parse_index(&index_bytes(&[[0, 8], ABSENT], false), shard_len).is_err());
    }
}
