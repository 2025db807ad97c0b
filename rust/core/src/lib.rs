//! astrobio-core: the datacube hot path, in plain Rust (no Python types).
//!
//! Store access through zarrs, integrity checks (crc32c, decoded size, dtype, NaN/Inf,
//! physical ranges), per-variable normalization and batch collation into one contiguous
//! buffer, parallel over samples on a fork-safe rayon pool. `astrobio-py` wraps this.

pub mod error;
pub mod kernel;
pub mod manifest;
pub mod pool;
pub mod reader;
pub mod store;
pub mod verify;

pub use error::{CoreError, CoreResult, Location};
pub use manifest::{Manifest, NormMode};
pub use reader::BatchReader;
pub use store::CubeStore;
pub use verify::{verify_store, Failure, VerifyReport};

/// Decode-and-verify entry point for fuzzing: treat `bytes` as the stored chunk of sample 0 of
/// the given store and run the same decode and checks as a read. Never panics.
pub mod fuzzing {
    pub use crate::kernel::{verify_normalize_into, Affine, SampleLayout, ValidRange};
}
