//! End-to-end tests on real zarr v3 stores built with zarrs: batch reads against a plain
//! reference, a corruption matrix (each fault named by run, sample and chunk), store scans.

mod common;

use astrobio_core::{verify_store, BatchReader, Cancel, CoreError, Location, NormMode};
use common::{array_builder, n_samples, reference_batch, sample_len, Fixture, SHAPE};
use serde_json::json;
use zarrs::array::data_type;

fn reader(f: &Fixture, threads: usize) -> BatchReader {
    BatchReader::open(f.root(), NormMode::PerVariable, threads).expect("open")
}

fn read(f: &Fixture, indices: &[i64]) -> Result<Vec<f32>, CoreError> {
    let mut out = vec![0.0; indices.len() * sample_len()];
    reader(f, 1).read_batch_into(indices, &mut out, &astrobio_core::Never).map(|_| out)
}

/// The location of sample `s` in the fixture (runs of 3, 2 and 4 samples).
fn loc(s: u64) -> Location {
    let run = match s {
        0..=2 => "run-0",
        3..=4 => "run-1",
        _ => "run-2",
    };
    Location { run: Some(run.into()), sample: Some(s), chunk: Some(Fixture::chunk_key(s)) }
}

/// Assert `err` is an integrity failure at sample `s` whose reason mentions `needle`.
#[track_caller]
fn assert_integrity_at(err: CoreError, s: u64, needle: &str) {
    match err {
        CoreError::Integrity { location, reason } => {
            assert_eq!(location, loc(s));
            assert!(reason.contains(needle), "reason {reason:?} should mention {needle:?}");
        }
        other => panic!("expected an integrity error at sample {s}, got {other:?}"),
    }
}

// ---- reads against the reference ----

#[test]
fn batches_equal_the_reference_in_every_mode() {
    let f = Fixture::new();
    let indices = [4, 0, 4, 8, 3, 3]; // unordered, with duplicates
    let modes = [(NormMode::PerVariable, "per_variable"), (NormMode::PerLevel, "per_level"), (NormMode::None, "none")];
    for (mode, name) in modes {
        let expected = reference_batch(&f, &indices, name);
        let mut outs = Vec::new();
        for threads in [1, 2] {
            let r = BatchReader::open(f.root(), mode, threads).unwrap();
            let mut out = vec![f32::NAN; indices.len() * r.sample_len()];
            r.read_batch_into(&indices, &mut out, &astrobio_core::Never).unwrap();
            for (i, (&got, &want)) in out.iter().zip(&expected).enumerate() {
                assert!((got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0), "{name} element {i}: {got} vs {want}");
            }
            outs.push(out);
        }
        // Thread count must not change a single bit of the batch.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&outs[0]), bits(&outs[1]), "{name}: 1 vs 2 threads");
    }
}

#[test]
fn params_are_read_and_normalized() {
    let f = Fixture::new();
    let r = reader(&f, 1);
    let mut out = vec![0.0; 4];
    r.read_params_into(&[5, 1], &mut out).unwrap();
    let raw = |s: usize, j: usize| f.params[s * 2 + j];
    // p0: mean 0.5 std 2; p1: std 0 so centred only.
    assert_eq!(out, vec![(raw(5, 0) - 0.5) * 0.5, raw(5, 1) + 1.0, (raw(1, 0) - 0.5) * 0.5, raw(1, 1) + 1.0]);
}

#[test]
fn empty_batch_is_fine() {
    let f = Fixture::new();
    reader(&f, 2).read_batch_into(&[], &mut [], &astrobio_core::Never).unwrap();
}

// ---- corruption matrix: chunk files ----

#[test]
fn flipped_byte_is_a_checksum_mismatch() {
    for at in [0, 7, usize::MAX] {
        let f = Fixture::new();
        let path = f.chunk_path(3);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        Fixture::flip_byte(&path, at.min(len - 1)); // payload start, middle, stored checksum
        assert_integrity_at(read(&f, &[0, 3]).unwrap_err(), 3, "checksum mismatch");
        assert!(read(&f, &[0, 4]).is_ok(), "other samples still read");
    }
}

#[test]
fn truncated_chunk_is_refused() {
    for keep in [0, 3, 10] {
        let f = Fixture::new();
        let path = f.chunk_path(3);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = read(&f, &[3]).unwrap_err();
        let reason = match &err {
            CoreError::Integrity { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        assert!(reason.contains("checksum") || reason.contains("decode"), "keep {keep}: {reason:?}");
        assert_integrity_at(err, 3, "");
    }
}

#[test]
fn deleted_chunk_is_missing_not_fill_value() {
    let f = Fixture::new();
    std::fs::remove_file(f.chunk_path(6)).unwrap();
    assert_integrity_at(read(&f, &[1, 6]).unwrap_err(), 6, "chunk missing");
}

#[test]
fn non_finite_and_out_of_range_values_are_named() {
    let [_, l, h, w] = SHAPE;
    let plane = h * w;
    // Variable 1, level 2, element 7 of the level: index in the sample.
    let at = (l + 2) * plane + 7;
    let cases = [
        (f32::NAN, 1, "not a number"),
        (f32::INFINITY, 1, "infinite"),
        (f32::NEG_INFINITY, 1, "infinite"),
        (50.5, 1, "outside the valid range"), // variable 1 has no lower bound but hi = 50
        (-1e30, 1, ""),                        // ...so this is valid
        (99.0, 0, "outside the valid range"),  // variable 0 is [100, 400]
    ];
    for (x, var, needle) in cases {
        let f = Fixture::new();
        let i = if var == 1 { at } else { 2 * plane + 7 };
        f.poke(3, i, x);
        let result = read(&f, &[3]);
        if needle.is_empty() {
            assert!(result.is_ok(), "{x} is inside an open-ended range");
            continue;
        }
        let err = result.unwrap_err();
        let msg = err.to_string();
        assert_integrity_at(err, 3, needle);
        assert!(msg.contains(&format!("variable \"v{var}\" level 2")), "{msg}");
    }
}

#[test]
fn range_bounds_are_inclusive_in_the_store() {
    let f = Fixture::new();
    f.poke(2, 0, 100.0);
    f.poke(2, sample_len() - 1, 50.0);
    assert!(read(&f, &[2]).is_ok());
}

// ---- corruption matrix: manifest and array metadata (the open fails) ----

fn open_err(f: &Fixture) -> CoreError {
    BatchReader::open(f.root(), NormMode::PerVariable, 1).err().expect("open must fail")
}

#[test]
fn missing_or_incomplete_manifest_is_not_a_store() {
    let f = Fixture::new();
    f.write_group_attrs(serde_json::Map::new());
    assert!(matches!(open_err(&f), CoreError::NotFound { ref what, .. } if what.contains("no manifest")));

    let f = Fixture::new();
    let mut m = f.manifest.clone();
    m["complete"] = json!(false);
    f.write_manifest(&m);
    assert!(matches!(open_err(&f), CoreError::NotFound { ref what, .. } if what.contains("incomplete")));
}

#[test]
fn corrupt_manifest_fields_are_integrity_errors() {
    let edits: [(&str, serde_json::Value, &str); 4] = [
        ("sample_shape", json!("2x3x4x5"), "unreadable"),
        ("n_samples", json!(10), "runs cover 9"),
        ("format", json!("something.else"), "format"),
        ("variables", json!([{"name": "v0"}]), "1 variables"),
    ];
    for (key, value, needle) in edits {
        let f = Fixture::new();
        let mut m = f.manifest.clone();
        m[key] = value;
        f.write_manifest(&m);
        match open_err(&f) {
            CoreError::Integrity { reason, .. } => {
                assert!(reason.starts_with("manifest:") && reason.contains(needle), "{key}: {reason}")
            }
            other => panic!("{key}: expected integrity error, got {other:?}"),
        }
    }
}

#[test]
fn unparsable_group_metadata_is_an_integrity_error() {
    let f = Fixture::new();
    std::fs::write(f.root().join("zarr.json"), b"{\"zarr_format\": 3, \"node_type\": \"gro").unwrap();
    let err = open_err(&f);
    assert!(matches!(err, CoreError::Integrity { ref location, .. } if location.chunk.as_deref() == Some("zarr.json")));
}

/// Replace the cube array's metadata and check the open names cubes/zarr.json and `needle`.
fn assert_bad_cubes(shape: Vec<u64>, chunks: Vec<u64>, dtype: zarrs::array::DataType, needle: &str) {
    let f = Fixture::new();
    f.build_array("cubes", array_builder(shape, chunks, dtype));
    match open_err(&f) {
        CoreError::Integrity { location, reason } => {
            assert_eq!(location.chunk.as_deref(), Some("cubes/zarr.json"));
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("expected integrity error, got {other:?}"),
    }
}

#[test]
fn wrong_dtype_shape_or_chunking_is_refused() {
    let n = n_samples();
    let [v, l, h, w] = SHAPE.map(|x| x as u64);
    assert_bad_cubes(vec![n, v, l, h, w], vec![1, v, l, h, w], data_type::float64(), "expected float32");
    assert_bad_cubes(vec![n, v, l, h, w + 1], vec![1, v, l, h, w + 1], data_type::float32(), "the manifest says");
    assert_bad_cubes(vec![n + 1, v, l, h, w], vec![1, v, l, h, w], data_type::float32(), "the manifest says");
    assert_bad_cubes(vec![n, v, l, h, w], vec![2, v, l, h, w], data_type::float32(), "one sample per chunk");
    assert_bad_cubes(vec![n, v, l, h, w], vec![1, v, l, 2, w], data_type::float32(), "one sample per chunk");
}

#[test]
fn bad_params_are_refused_at_open() {
    let f = Fixture::new();
    let mut p = f.params.clone();
    p[2 * 7 + 1] = f32::NAN; // sample 7, parameter p1
    f.params_array().store_chunk(&[0, 0], p.as_slice()).unwrap();
    match open_err(&f) {
        CoreError::Integrity { location, reason } => {
            let at = (location.run.as_deref(), location.sample, location.chunk.as_deref());
            assert_eq!(at, (Some("run-2"), Some(7), Some("params/c/0/0")));
            assert!(reason.contains("\"p1\"") && reason.contains("not a number"), "{reason}");
        }
        other => panic!("expected integrity error, got {other:?}"),
    }
}

// ---- caller errors ----

#[test]
fn indices_out_of_range_are_refused() {
    let f = Fixture::new();
    for bad in [9, -1, i64::MIN, i64::MAX] {
        match read(&f, &[0, bad]).unwrap_err() {
            CoreError::IndexOutOfRange { index, len } => assert_eq!((index, len), (bad, 9)),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let mut p = vec![0.0; 2];
    assert!(matches!(reader(&f, 1).read_params_into(&[-3], &mut p), Err(CoreError::IndexOutOfRange { index: -3, .. })));
}

#[test]
fn wrong_output_length_is_an_invalid_argument() {
    let f = Fixture::new();
    let r = reader(&f, 1);
    for len in [0, sample_len() * 2 - 1, sample_len() * 2 + 1] {
        let mut out = vec![0.0; len];
        assert!(matches!(r.read_batch_into(&[0, 1], &mut out, &astrobio_core::Never), Err(CoreError::InvalidArgument(_))), "len {len}");
    }
    assert!(matches!(r.read_params_into(&[0], &mut [0.0; 3]), Err(CoreError::InvalidArgument(_))));
}

// ---- which failure is reported ----

#[test]
fn first_bad_sample_in_batch_order_is_reported() {
    let f = Fixture::new();
    f.poke(2, 5, f32::NAN);
    Fixture::flip_byte(&f.chunk_path(4), 5);
    std::fs::remove_file(f.chunk_path(8)).unwrap();
    let batch = [7, 8, 1, 4, 2]; // bad: 8 (missing), 4 (checksum), 2 (NaN); 8 comes first
    for threads in [1, 2] {
        let r = reader(&f, threads);
        let mut out = vec![0.0; batch.len() * sample_len()];
        for _ in 0..20 {
            assert_integrity_at(r.read_batch_into(&batch, &mut out, &astrobio_core::Never).unwrap_err(), 8, "chunk missing");
            let err = r.read_batch_into(&[1, 2, 4], &mut out[..3 * sample_len()], &astrobio_core::Never).unwrap_err();
            assert_integrity_at(err, 2, "not a number");
            let err = r.read_batch_into(&[4, 2], &mut out[..2 * sample_len()], &astrobio_core::Never).unwrap_err();
            assert_integrity_at(err, 4, "checksum");
        }
    }
}

// ---- full-store scans ----

#[test]
fn clean_store_verifies_ok() {
    let f = Fixture::new();
    let report = verify_store(f.root(), 10, 2, &astrobio_core::Never).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.samples, report.chunks_checked, report.chunks_failed), (9, 9, 0));
    assert_eq!(report.bytes_decoded, 9 * sample_len() as u64 * 4);
    assert!(report.failures.is_empty());
}

#[test]
fn scan_counts_sorts_and_caps_failures() {
    let f = Fixture::new();
    Fixture::flip_byte(&f.chunk_path(6), 3);
    f.poke(1, 0, f32::INFINITY);
    std::fs::write(f.root().join("cubes/c/3/0/0/0/0.tmp"), b"stray").unwrap();
    for threads in [1, 2] {
        let report = verify_store(f.root(), 10, threads, &astrobio_core::Never).unwrap();
        assert!(!report.ok());
        assert_eq!((report.chunks_checked, report.chunks_failed, report.unexpected_files), (9, 2, 1));
        assert_eq!(report.bytes_decoded, 7 * sample_len() as u64 * 4);
        let locs: Vec<_> = report.failures.iter().map(|x| x.location.clone()).collect();
        let stray = Location { chunk: Some("cubes/c/3/0/0/0/0.tmp".into()), ..Default::default() };
        assert_eq!(locs, vec![loc(1), loc(6), stray]);
        assert!(report.failures[0].reason.contains("infinite"));
        assert!(report.failures[1].reason.contains("checksum mismatch"));
        assert!(report.failures[2].reason.contains("unexpected file"));

        let capped = verify_store(f.root(), 1, threads, &astrobio_core::Never).unwrap();
        assert_eq!((capped.chunks_failed, capped.unexpected_files), (2, 1), "counts are not capped");
        assert_eq!(capped.failures, report.failures[..1]);
    }
}

#[test]
fn scan_of_a_broken_store_is_an_error() {
    let f = Fixture::new();
    f.write_group_attrs(serde_json::Map::new());
    assert!(matches!(verify_store(f.root(), 10, 1, &astrobio_core::Never), Err(CoreError::NotFound { .. })));
    let missing = f.root().join("nope");
    assert!(matches!(verify_store(&missing, 10, 1, &astrobio_core::Never), Err(CoreError::NotFound { .. })));
}

// ---- only regular files of the store are read (regular.rs) ----

fn mkfifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// The fixture with its cubes behind an identity transpose codec: a chain the fast path does
/// not take, so zarrs opens the chunk files.
fn zarrs_chain_fixture() -> Fixture {
    use std::sync::Arc;
    use zarrs::array::codec::TransposeCodec;
    use zarrs::metadata_ext::codec::transpose::TransposeOrder;
    let f = Fixture::new();
    let [v, l, h, w] = SHAPE.map(|x| x as u64);
    let mut b = array_builder(vec![n_samples(), v, l, h, w], vec![1, v, l, h, w], data_type::float32());
    b.array_to_array_codecs(vec![Arc::new(TransposeCodec::new(TransposeOrder::new(&[0, 1, 2, 3, 4]).unwrap()))]);
    let cubes = f.build_array("cubes", b);
    for s in 0..n_samples() {
        cubes.store_chunk(&[s, 0, 0, 0, 0], f.sample(s)).unwrap();
    }
    f
}

#[test]
fn special_files_in_place_of_chunks_are_refused_at_once_on_both_paths() {
    for f in [Fixture::new(), zarrs_chain_fixture()] {
        let r = reader(&f, 1);
        let mut out = vec![0.0; sample_len()];
        r.read_batch_into(&[3], &mut out, &astrobio_core::Never).unwrap();
        mkfifo(&f.chunk_path(3)); // a writer never comes: reading it would block forever
        assert_integrity_at(r.read_batch_into(&[3], &mut out, &astrobio_core::Never).unwrap_err(), 3, "not a regular file (a FIFO)");
        std::fs::remove_file(f.chunk_path(4)).unwrap();
        std::fs::create_dir(f.chunk_path(4)).unwrap();
        assert_integrity_at(r.read_batch_into(&[4], &mut out, &astrobio_core::Never).unwrap_err(), 4, "not a regular file (a directory)");
        std::fs::remove_file(f.chunk_path(5)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", f.chunk_path(5)).unwrap();
        assert_integrity_at(r.read_batch_into(&[5], &mut out, &astrobio_core::Never).unwrap_err(), 5, "not a regular file (a character device)");
        // a link to a file outside the store is refused, a link to a chunk inside is followed
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::copy(f.chunk_path(6), outside.path()).unwrap();
        std::fs::remove_file(f.chunk_path(6)).unwrap();
        std::os::unix::fs::symlink(outside.path(), f.chunk_path(6)).unwrap();
        assert_integrity_at(r.read_batch_into(&[6], &mut out, &astrobio_core::Never).unwrap_err(), 6, "a symbolic link leading outside the store");
        let copy = f.root().join("cubes/c/7/0/0/0/copy");
        std::fs::rename(f.chunk_path(7), &copy).unwrap();
        std::os::unix::fs::symlink("copy", f.chunk_path(7)).unwrap();
        r.read_batch_into(&[7], &mut out, &astrobio_core::Never).unwrap();
        // the scan names each one and lists the stray file; it never blocks or walks a link
        std::os::unix::fs::symlink(f.root().join("cubes/c"), f.root().join("cubes/c/loop")).unwrap();
        let report = verify_store(f.root(), 20, 1, &astrobio_core::Never).unwrap();
        let failed: Vec<_> = report.failures.iter().map(|x| (x.location.sample, x.reason.clone())).collect();
        assert_eq!(report.chunks_failed, 4, "{failed:?}");
        assert!(failed[0].1.contains("FIFO") && failed[1].1.contains("directory"), "{failed:?}");
        let stray: Vec<_> = report.failures.iter().filter_map(|x| x.location.chunk.clone()).filter(|c| !c.ends_with("/0")).collect();
        assert_eq!(stray, ["cubes/c/7/0/0/0/copy", "cubes/c/loop"]);
    }
}

#[test]
fn special_files_in_place_of_metadata_are_refused() {
    let f = Fixture::new();
    std::fs::rename(f.root().join("params/c/0/0"), f.root().join("params/c/0/moved")).unwrap();
    mkfifo(&f.root().join("params/c/0/0"));
    match open_err(&f) {
        CoreError::Integrity { location, reason } => {
            assert_eq!(location.chunk.as_deref(), Some("params/c/0/0"));
            assert_eq!(reason, "not a regular file (a FIFO)");
        }
        other => panic!("{other:?}"),
    }
    for key in ["zarr.json", "cubes/zarr.json"] {
        let f = Fixture::new();
        let path = f.root().join(key);
        std::fs::remove_file(&path).unwrap();
        mkfifo(&path);
        match open_err(&f) {
            CoreError::Integrity { location, reason } => {
                assert_eq!((location.chunk.as_deref(), reason.as_str()), (Some(key), "not a regular file (a FIFO)"));
            }
            other => panic!("{key}: {other:?}"),
        }
    }
}

/// Says stop from its `after`-th question on, and counts the questions.
struct StopAfter {
    after: usize,
    asked: std::sync::atomic::AtomicUsize,
}

impl Cancel for StopAfter {
    fn cancelled(&self) -> bool {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= self.after
    }
}

#[test]
fn a_cancelled_scan_or_read_stops_with_interrupted_and_an_uncancelled_one_completes() {
    let f = Fixture::new();
    let stop = StopAfter { after: 0, asked: 0.into() };
    assert!(matches!(verify_store(f.root(), 5, 2, &stop), Err(CoreError::Interrupted)));
    let mut out = vec![0.0; 3 * sample_len()];
    assert!(matches!(reader(&f, 2).read_batch_into(&[0, 1, 2], &mut out, &stop), Err(CoreError::Interrupted)));
    let mut bf16 = vec![0u16; 3 * sample_len()];
    assert!(matches!(reader(&f, 2).read_batch_bf16_into(&[0, 1, 2], &mut bf16, &stop), Err(CoreError::Interrupted)));
    // Asked at least once per call, and a call that is never told to stop finishes.
    let go = StopAfter { after: usize::MAX, asked: 0.into() };
    assert!(verify_store(f.root(), 5, 2, &go).unwrap().ok());
    reader(&f, 2).read_batch_into(&[0, 1, 2], &mut out, &go).unwrap();
    assert!(go.asked.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}
