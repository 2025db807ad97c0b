//! Untrusted bytes as a store's metadata: the manifest, or a cube array's codecs list.
//! Input format and the invariants checked: astrobio_core::fuzzing::metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| astrobio_core::fuzzing::metadata(data));
