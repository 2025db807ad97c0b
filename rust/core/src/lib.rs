//! astrobio-core: the datacube hot path, in plain Rust (no Python types).
//!
//! Store access through zarrs, integrity checks (crc32c, decoded size, dtype, NaN/Inf,
//! physical ranges), per-variable normalization and batch collation into one contiguous
//! buffer, parallel over samples on a fork-safe rayon pool. `astrobio-py` wraps this.

pub mod cancel;
pub mod chunk;
pub mod error;
/// Fuzzing harness (fixture store + invariants): for the fuzz crate and the tests only.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod kernel;
pub mod manifest;
pub mod pool;
pub mod reader;
pub mod regular;
pub mod remote;
pub mod runtime;
pub mod shard;
pub mod store;
pub mod verify;

pub use cancel::{Cancel, Never};
pub use error::{CoreError, CoreResult, Location, StorageFault};
pub use kernel::NormStats;
pub use manifest::{Manifest, NormMode};
pub use reader::BatchReader;
pub use store::CubeStore;
pub use verify::{verify_store, Failure, VerifyReport};

