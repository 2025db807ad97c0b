//! Untrusted bytes as the chunk file of sample 0, through a batch read and a store scan.
//! Input format and the invariants checked: astrobio_core::fuzzing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| astrobio_core::fuzzing::decode_verify(data));
