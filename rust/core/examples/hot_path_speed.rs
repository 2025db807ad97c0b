//! Throughput of the pieces of the chunk hot path on this machine, in isolation (no files):
//! crc32c (the `crc32c` crate, hardware SSE4.2), and a memcpy of the same size for scale.
//! `cargo run --release -p astrobio-core --example hot_path_speed`
//! Numbers go to docs/performance.md; this is a measurement, not a test.

use std::hint::black_box;
use std::time::Instant;

fn gbps(bytes: usize, reps: usize, f: impl Fn() -> u64) -> f64 {
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
        let data: Vec<u8> = (0..size).map(|i| (i * 2_654_435_761usize >> 13) as u8).collect();
        let dst = std::cell::RefCell::new(vec![0u8; size]);
        let reps = (256 << 20) / size;
        let crc = gbps(size, reps, || u64::from(crc32c::crc32c(black_box(&data))));
        let copy = gbps(size, reps, || {
            let mut d = dst.borrow_mut();
            d.copy_from_slice(black_box(&data));
            u64::from(d[size / 2])
        });
        println!("{:>6} KiB  crc32c {crc:6.2} GB/s   memcpy {copy:6.2} GB/s", size >> 10);
    }
}
