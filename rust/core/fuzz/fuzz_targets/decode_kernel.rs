//! Untrusted bytes as sample 0's fetched chunk, straight into the per-sample decode + verify
//! kernel of a read and of a scan: no thread pool, no file per input.
//! Input format and the invariants checked: astrobio_core::fuzzing::DecodeKernel.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| astrobio_core::fuzzing::decode_kernel(data));
