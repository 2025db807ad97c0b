//! Stopping a long call: the work asks [`Cancel::cancelled`] on the calling thread between
//! slices (a window of a scan, a part of a batch), never inside one, so the pool threads never
//! wait on the answer and a slice is always finished whole. The Python bindings answer from
//! Python's signal handlers, so Ctrl-C stops a long scan or read with `KeyboardInterrupt`.

use crate::error::{CoreError, CoreResult};

/// Decoded bytes per slice of work between two [`Cancel::cancelled`] questions: about 50 ms of
/// decoding on one core of the machines measured (docs/performance.md), so a stop is prompt and
/// the slicing costs nothing measurable.
pub const SLICE_BYTES: u64 = 64 << 20;

/// Asked between slices of a long call whether to stop.
pub trait Cancel: Sync {
    /// `true`: stop; the call returns [`CoreError::Interrupted`].
    fn cancelled(&self) -> bool;
}

/// Never stops: calls from Rust, the tests and the fuzz targets.
pub struct Never;

impl Cancel for Never {
    fn cancelled(&self) -> bool {
        false
    }
}

/// `Err(Interrupted)` when `cancel` says stop.
pub fn check(cancel: &dyn Cancel) -> CoreResult<()> {
    if cancel.cancelled() {
        return Err(CoreError::Interrupted);
    }
    Ok(())
}

/// Samples per slice for samples of `sample_bytes` decoded bytes: [`SLICE_BYTES`] worth, at
/// least one per pool thread (`threads`) so a slice still keeps the pool busy.
pub fn slice_samples(sample_bytes: u64, threads: usize) -> usize {
    let per_slice = (SLICE_BYTES / sample_bytes.max(1)) as usize;
    per_slice.max(threads.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_hold_about_slice_bytes_and_at_least_a_sample_per_thread() {
        assert_eq!(slice_samples(1 << 20, 4), 64);
        assert_eq!(slice_samples(1 << 30, 4), 4);
        assert_eq!(slice_samples(1 << 30, 0), 1);
        assert_eq!(slice_samples(0, 1), SLICE_BYTES as usize);
    }

    #[test]
    fn check_turns_a_stop_into_interrupted() {
        struct Stop;
        impl Cancel for Stop {
            fn cancelled(&self) -> bool {
                true
            }
        }
        assert!(matches!(check(&Stop), Err(CoreError::Interrupted)));
        assert!(check(&Never).is_ok());
    }
}
