//! The one error type of the core. Bindings map each variant to one Python exception of
//! astrobio's hierarchy (`astrobio.errors`), so every failure names what is wrong and where.

use std::path::PathBuf;

/// Where in the store an integrity failure happened, so the message can name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Run id the sample belongs to (from the manifest), if known.
    pub run: Option<String>,
    /// Global sample index, if the failure is in a per-sample chunk.
    pub sample: Option<u64>,
    /// Store key of the chunk, e.g. `cubes/c/17/0/0/0/0`.
    pub chunk: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The store, its manifest or one of its arrays does not exist or is incomplete.
    #[error("{what} at {path}")]
    NotFound { path: PathBuf, what: String },

    /// A chunk or the manifest failed a check: checksum, size, dtype, NaN/Inf, physical range.
    #[error("{reason}")]
    Integrity { location: Location, reason: String },

    /// A caller passed something unusable (bad output buffer, bad option).
    #[error("{0}")]
    InvalidArgument(String),

    /// A sample index outside the store.
    #[error("sample index {index} out of range for a store of {len} samples")]
    IndexOutOfRange { index: i64, len: u64 },

    /// Object storage could not be used: unreachable, timed out, access denied, misconfigured.
    /// `url` names the store or object (never a credential).
    #[error("{reason} ({url})")]
    Storage { url: String, fault: StorageFault, reason: String },

    /// The caller asked the call to stop (`cancel::Cancel`, Ctrl-C in Python).
    #[error("interrupted")]
    Interrupted,

    /// Any other I/O failure (permissions, device errors).
    #[error("I/O error reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Why object storage failed, so the bindings can pick the exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// Network, timeout, server errors that outlasted the retries.
    Unreachable,
    /// Credentials refused (HTTP 401/403).
    Denied,
    /// The client could not be configured (bad endpoint, region, variables).
    Config,
    /// Anything else (the runtime could not start).
    Other,
}

impl CoreError {
    pub(crate) fn integrity(location: Location, reason: impl Into<String>) -> Self {
        CoreError::Integrity { location, reason: reason.into() }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
