//! Untrusted bytes as a shard object: its index parsed and every inner chunk located.
//! Input format and the invariants checked: astrobio_core::fuzzing::shard_index.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| astrobio_core::fuzzing::shard_index(data));
