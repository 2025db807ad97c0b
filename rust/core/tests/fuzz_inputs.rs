//! The fuzz target's entry (`astrobio_core::fuzzing`) over a few thousand deterministic inputs,
//! so every `cargo test` exercises the chunk decode + verify path on stable Rust, plus the
//! crafted inputs that once aborted the process. `DecodeVerify::run` panics on any broken
//! invariant (read and scan disagree, a non-finite value accepted, the wrong sample blamed).

use std::path::{Path, PathBuf};

use astrobio_core::fuzzing::{metadata, metadata_seeds, DecodeKernel, DecodeVerify, FixtureCodec};
use astrobio_core::CoreError;

/// xorshift64*: deterministic and dependency-free; quality is not the point.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPECIAL_F32: [f32; 9] =
    [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, 1e-45, -0.0, 400.0, 400.00003];

/// A few libFuzzer-style mutations of `seed`; the first byte (the mode) may change too, within
/// the modes of the fixture `base` addresses.
fn mutate(rng: &mut Rng, seed: &[u8], base: u8) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(d.len());
        match rng.below(7) {
            0 if !d.is_empty() => d[at] ^= 1 << rng.below(8),
            1 if !d.is_empty() => d[at] = [0, 0xff, 0x7f, 0x80, 0x28, 0xfd][rng.below(6)],
            2 => d.truncate(at),
            3 => {
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                d.splice(at..at, extra);
            }
            4 if d.len() >= 5 => {
                // Overwrite one f32 of a mode-2 (raw values) input with a special value.
                let k = 1 + 4 * rng.below((d.len() - 1) / 4);
                d[k..k + 4].copy_from_slice(&SPECIAL_F32[rng.below(SPECIAL_F32.len())].to_le_bytes());
            }
            5 if !d.is_empty() => d[0] = base + rng.below(3) as u8,
            _ => {
                let (a, b) = (rng.below(d.len()), rng.below(d.len()));
                let copy = d[a.min(b)..a.max(b)].to_vec();
                d.extend_from_slice(&copy);
            }
        }
    }
    on_fixture(d, base)
}

/// Keep an input's mode byte (mutated, random or truncated away) on the fixture of `base`.
fn on_fixture(mut d: Vec<u8>, base: u8) -> Vec<u8> {
    match d.first_mut() {
        Some(m) => *m = base + *m % 3,
        None => d.push(base),
    }
    d
}

fn fixture() -> (tempfile::TempDir, DecodeVerify) {
    fixture_with(FixtureCodec::Zstd)
}

fn fixture_with(codec: FixtureCodec) -> (tempfile::TempDir, DecodeVerify) {
    let dir = tempfile::tempdir().unwrap();
    let fx = DecodeVerify::create_with(dir.path().join("store"), codec).unwrap();
    (dir, fx)
}

#[test]
fn seeds_decode_to_the_intact_sample() {
    let (_dir, mut fx) = fixture();
    for seed in fx.seeds().unwrap() {
        fx.run(&seed).unwrap();
    }
}

#[test]
fn blosc_seeds_decode_to_the_intact_sample() {
    let (_dir, mut fx) = fixture_with(FixtureCodec::Blosc);
    for seed in fx.seeds().unwrap() {
        fx.run(&seed).unwrap();
    }
}

#[test]
fn thousands_of_mutated_inputs_never_panic() {
    mutated_inputs(FixtureCodec::Zstd, 3000);
}

#[test]
fn thousands_of_mutated_blosc_inputs_never_panic() {
    mutated_inputs(FixtureCodec::Blosc, 2000);
}

fn mutated_inputs(codec: FixtureCodec, count: usize) {
    let (_dir, mut fx) = fixture_with(codec);
    let seeds = fx.seeds().unwrap();
    let base = fx.mode_base();
    mutated_runs(codec, count, &seeds, base, |input| fx.run(input));
}

/// `count` inputs mutated from `seeds` (or random) through `run`, which panics on a broken
/// invariant; both answers must be reached.
fn mutated_runs(codec: FixtureCodec, count: usize, seeds: &[Vec<u8>], base: u8, mut run: impl FnMut(&[u8]) -> Result<(), CoreError>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..count {
        let input = if i % 8 == 0 {
            on_fixture((0..rng.below(200)).map(|_| rng.next() as u8).collect(), base)
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed, base)
        };
        match run(&input) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    // Both outcomes must be reached, or the generator is not exercising the checks.
    assert!(accepted > count / 30 && refused > count / 3, "{codec:?}: accepted {accepted}, refused {refused}");
}

fn reason(r: Result<(), CoreError>) -> String {
    match r {
        Err(CoreError::Integrity { reason, .. }) => reason,
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

/// zstd frame header: magic, descriptor (8-byte content size, no single segment), window 1 KiB.
fn frame_declaring(size: u64) -> Vec<u8> {
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0x00];
    f.extend_from_slice(&size.to_le_bytes());
    f.extend_from_slice(&[0x01, 0x00, 0x00]); // last block, raw, 0 bytes
    f
}

/// Regression: a 21-byte chunk with a valid crc32c whose zstd frame declares 1 TiB made zarrs
/// preallocate it and abort the process ("memory allocation of 1099511627776 bytes failed").
#[test]
fn zstd_frame_declaring_a_huge_size_is_refused_not_allocated() {
    let (_dir, mut fx) = fixture();
    for size in [1u64 << 40, 1 << 62, u64::MAX - 1] {
        let input = [&[1u8][..], &frame_declaring(size)].concat();
        let why = reason(fx.run(&input));
        assert!(why.contains("zstd frame may decode") || why.contains("cannot decode"), "{size}: {why}");
    }
    let why = reason(fx.run(&[&[1u8][..], &frame_declaring(1 << 40)].concat()));
    assert!(why.contains("may decode to 1099511627776 bytes"), "{why}");
}

/// Regression: a frame without a content size is bounded by its block count (128 KiB per RLE
/// block of 4 bytes), so a small file can still expand 30000-fold; refused before decoding.
#[test]
fn zstd_bomb_of_rle_blocks_is_refused() {
    let (_dir, mut fx) = fixture();
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]; // no content size, window 128 KiB
    for i in 0..64 {
        let last = u32::from(i == 63);
        let header = (128u32 << 10) << 3 | 1 << 1 | last; // RLE block of 128 KiB
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0x41);
    }
    let why = reason(fx.run(&[&[1u8][..], &frame].concat()));
    assert!(why.contains("may decode to 8388608 bytes"), "{why}");
    // Garbage after a valid frame makes the bound unknown; zarrs would then stream without limit.
    frame.truncate(frame.len() - 2);
    assert!(reason(fx.run(&[&[1u8][..], &frame].concat())).contains("not a valid zstd frame"));
}

/// A blosc header (with a valid crc32c) that declares a gigabyte is refused from its header,
/// before anything is decoded or allocated; so is one whose compressed size is not the file's.
#[test]
fn blosc_header_declaring_a_huge_size_is_refused_not_allocated() {
    let (_dir, mut fx) = fixture_with(FixtureCodec::Blosc);
    // version 2, lz4 format 1, flags: byte shuffle, typesize 4, nbytes, blocksize, cbytes.
    let header = |nbytes: u32, cbytes: u32| {
        let mut h = vec![2u8, 1, 0x01, 4];
        for v in [nbytes, 1 << 16, cbytes] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    };
    let why = reason(fx.run(&[&[4u8][..], &header(1 << 30, 16)].concat()));
    assert!(why.contains("decoded 1073741824 bytes, expected 96"), "{why}");
    let why = reason(fx.run(&[&[4u8][..], &header(96, 4096)].concat()));
    assert!(why.contains("not a valid blosc buffer"), "{why}");
}

/// A valid shard of `n` samples (index at the end with its crc32c), chunks of 3 bytes each.
fn valid_shard(n: u8) -> Vec<u8> {
    let mut data: Vec<u8> = (0..n as usize * 3).map(|i| i as u8).collect();
    let mut index: Vec<u8> = Vec::new();
    for j in 0..n as u64 {
        index.extend((j * 3).to_le_bytes());
        index.extend(3u64.to_le_bytes());
    }
    let sum = crc32c::crc32c(&index);
    data.extend(index);
    data.extend(sum.to_le_bytes());
    [vec![n - 1, 1], data].concat()
}

#[test]
fn shard_indexes_from_mutated_and_random_bytes_never_panic_or_escape_the_shard() {
    let mut rng = Rng(0x5EED_5AAD);
    let seeds: Vec<Vec<u8>> = (1..=6).map(valid_shard).collect();
    for seed in &seeds {
        astrobio_core::fuzzing::shard_index(seed);
    }
    for i in 0..20_000 {
        let input = if i % 4 == 0 {
            (0..rng.below(200)).map(|_| rng.next() as u8).collect()
        } else {
            let mut d = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(3) {
                let at = 2 + rng.below(d.len() - 2);
                match rng.below(4) {
                    0 => d[at] ^= 1 << rng.below(8),
                    1 => d.truncate(at),
                    2 => d[1] = rng.next() as u8,
                    _ => d.splice(at..at, (0..1 + rng.below(8)).map(|_| rng.next() as u8)).for_each(drop),
                }
                if d.len() < 3 {
                    break;
                }
            }
            d
        };
        astrobio_core::fuzzing::shard_index(&input);
    }
}

/// The committed seeds of a fuzz target (`rust/core/fuzz/seeds/<target>`).
fn committed_seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect()
}

fn kernel_with(codec: FixtureCodec) -> (tempfile::TempDir, DecodeKernel) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = DecodeKernel::create_with(dir.path().join("store"), codec).unwrap();
    (dir, kernel)
}

#[test]
fn the_kernel_decodes_every_seed_to_the_intact_sample_and_replays_the_committed_ones() {
    for codec in [FixtureCodec::Zstd, FixtureCodec::Blosc] {
        let (_d1, fx) = fixture_with(codec);
        let (_d2, mut kernel) = kernel_with(codec);
        for seed in fx.seeds().unwrap() {
            kernel.run(&seed).unwrap();
        }
    }
    let seeds = committed_seeds("decode_kernel");
    assert!(seeds.len() >= 6, "one seed per mode of both fixtures");
    for (path, seed) in seeds {
        let (_d, mut kernel) = kernel_with(FixtureCodec::of_input(&seed));
        assert!(kernel.run(&seed).is_ok(), "{path:?}");
    }
}

#[test]
fn thousands_of_mutated_inputs_through_the_kernel_never_break_an_invariant() {
    for (codec, count) in [(FixtureCodec::Zstd, 3000), (FixtureCodec::Blosc, 2000)] {
        let (_d1, fx) = fixture_with(codec);
        let (_d2, mut kernel) = kernel_with(codec);
        mutated_runs(codec, count, &fx.seeds().unwrap(), fx.mode_base(), |input| kernel.run(input));
    }
}

#[test]
fn the_kernel_refuses_the_crafted_bombs_as_the_pooled_path_does() {
    let (_d, mut kernel) = kernel_with(FixtureCodec::Zstd);
    let why = reason(kernel.run(&[&[1u8][..], &frame_declaring(1 << 40)].concat()));
    assert!(why.contains("may decode to 1099511627776 bytes"), "{why}");
}

/// Regenerate the committed seeds of `decode_kernel` and `metadata` (run with `--ignored` after
/// a change of the fixture or of the metadata seeds).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for codec in [FixtureCodec::Zstd, FixtureCodec::Blosc] {
        let (_d, fx) = fixture_with(codec);
        for (mode, seed) in fx.seeds().unwrap().into_iter().enumerate() {
            let name = format!("{codec:?}-mode{}", fx.mode_base() as usize + mode).to_lowercase();
            std::fs::write(root.join("decode_kernel").join(name), seed).unwrap();
        }
    }
    let names = ["manifest", "codecs-zstd", "codecs-blosc", "codecs-sharded"];
    for (name, seed) in names.iter().zip(metadata_seeds()) {
        std::fs::write(root.join("metadata").join(name), seed).unwrap();
    }
}

#[test]
fn metadata_seeds_are_accepted_and_mutations_never_panic() {
    use astrobio_core::chunk::FastChain;
    use astrobio_core::shard::Sharding;
    let seeds = metadata_seeds();
    let committed: Vec<Vec<u8>> = committed_seeds("metadata").into_iter().map(|(_, s)| s).collect();
    for seed in &seeds {
        assert!(committed.contains(seed), "a metadata seed is not committed (run write_fuzz_seeds)");
        let doc: serde_json::Value = serde_json::from_slice(&seed[1..]).unwrap();
        if seed[0] == 0 {
            astrobio_core::Manifest::from_json(&doc).unwrap();
        } else {
            let sharded = Sharding::from_codecs(&doc, &[1, 2, 2, 2, 3], &[4, 2, 2, 2, 3]).unwrap();
            assert!(sharded.is_some() || FastChain::from_codecs(&doc).is_some(), "{doc}");
        }
        metadata(seed);
    }
    let mut rng = Rng(0xC0DE_CAFE);
    for i in 0..20_000 {
        let mut d = seeds[rng.below(seeds.len())].clone();
        if i % 2 == 0 {
            // a structural edit keeps the JSON parseable more often than a random byte
            let text = String::from_utf8_lossy(&d[1..]).into_owned();
            let tokens = ["0", "-1", "1e308", "null", "[]", "{}", "\"end\"", "18446744073709551615", "4294967296", "1e-45"];
            let spots: Vec<usize> = text.match_indices(|c: char| c.is_ascii_digit()).map(|(at, _)| at).collect();
            if let Some(&at) = spots.get(rng.below(spots.len().max(1))) {
                let end = text[at..].find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-')).map_or(text.len(), |e| at + e);
                let edited = format!("{}{}{}", &text[..at], tokens[rng.below(tokens.len())], &text[end..]);
                d = [vec![d[0]], edited.into_bytes()].concat();
            }
        } else {
            for _ in 0..1 + rng.below(4) {
                let at = 1 + rng.below(d.len() - 1);
                d[at] ^= 1 << rng.below(8);
            }
        }
        metadata(&d);
    }
}
