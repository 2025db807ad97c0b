//! Throughput of the pieces of the chunk hot path on this machine, in isolation (no files):
//! crc32c (the `crc32c` crate, hardware SSE4.2), a memcpy of the same size for scale, and the
//! value kernels (check + normalize: in place, from blosc byte planes, two-buffer, check only).
//! `cargo run --release -p astrobio-core --example hot_path_speed`
//! Numbers go to docs/performance.md; this is a measurement, not a test.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

use astrobio_core::kernel::{
    normalize_in_place, planes_normalize_into, verify_normalize_into, verify_values, Affine, SampleLayout, ValidRange,
};

fn gbps(bytes: usize, reps: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            black_box(f());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    (bytes * reps) as f64 / best / 1e9
}

fn main() {
    for size in [64 << 10, 2 << 20, 32 << 20] {
        let data: Vec<u8> = (0..size).map(|i| ((i * 2_654_435_761usize) >> 13) as u8).collect();
        let dst = RefCell::new(vec![0u8; size]);
        let reps = (256 << 20) / size;
        let crc = gbps(size, reps, || u64::from(crc32c::crc32c(black_box(&data))));
        let copy = gbps(size, reps, || {
            let mut d = dst.borrow_mut();
            d.copy_from_slice(black_box(&data));
            u64::from(d[size / 2])
        });
        println!("{:>6} KiB  crc32c {crc:6.2} GB/s   memcpy {copy:6.2} GB/s", size >> 10);
    }
    kernels();
}

/// The value kernels over one sample of the default store's shape class (GB/s of float32 in).
fn kernels() {
    for (name, layout) in [
        ("64 KiB ", SampleLayout { variables: 4, levels: 4, plane: 1024 }),
        ("2 MiB  ", SampleLayout { variables: 8, levels: 8, plane: 8192 }),
        ("32 MiB ", SampleLayout { variables: 8, levels: 16, plane: 65536 }),
    ] {
        let n = layout.len();
        let slabs = layout.variables * layout.levels;
        let src: Vec<f32> = (0..n).map(|i| 250.0 + ((i * 7919) % 1000) as f32 * 0.05).collect();
        let mean: Vec<f64> = (0..slabs).map(|s| 260.0 + s as f64).collect();
        let std: Vec<f64> = (0..slabs).map(|s| 10.0 + s as f64 * 0.1).collect();
        let affine = Affine::from_mean_std(&mean, &std);
        let ranges = vec![ValidRange { lo: 100.0, hi: 400.0 }; layout.variables];
        let planes: Vec<Vec<u8>> = (0..4).map(|k| src.iter().map(|x| x.to_le_bytes()[k]).collect()).collect();
        let bytes = n * 4;
        let reps = ((256 << 20) / bytes).max(1);
        let mut buf = src.clone();
        let mut out = vec![0f32; n];
        let in_place = gbps(bytes, reps, || {
            buf.copy_from_slice(&src);
            u64::from(normalize_in_place(black_box(&mut buf), layout, &affine, &ranges).is_ok())
        });
        let copy = gbps(bytes, reps, || {
            buf.copy_from_slice(black_box(&src));
            u64::from(buf[n / 2].to_bits())
        });
        let fused = gbps(bytes, reps, || {
            let p = [&planes[0][..], &planes[1][..], &planes[2][..], &planes[3][..]];
            u64::from(planes_normalize_into(0, black_box(p), &mut out, layout, &affine, &ranges))
        });
        let two = gbps(bytes, reps, || {
            u64::from(verify_normalize_into(black_box(&src), &mut out, layout, &affine, &ranges).is_ok())
        });
        let check = gbps(bytes, reps, || u64::from(verify_values(black_box(&src), layout, &ranges).is_ok()));
        println!(
            "{name} copy+in-place {in_place:6.2} GB/s (copy alone {copy:6.2})   planes {fused:6.2} GB/s   \
             two-buffer {two:6.2} GB/s   check-only {check:6.2} GB/s"
        );
    }
}
