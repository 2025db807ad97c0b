//! The core's one async runtime (for object storage), keyed by process id like the rayon pool.
//!
//! tokio's worker threads do not survive `fork` either: a DataLoader worker that reused the
//! runtime its parent built would wait forever on threads that no longer exist. So the runtime
//! remembers the pid that built it and a forked child builds its own; the inherited one is
//! leaked, never dropped (dropping would try to join the parent's threads). Callers block on it
//! from their own thread (the Python thread with the GIL released, or a rayon worker); the
//! runtime's threads only drive network I/O.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Runtime};

struct Entry {
    pid: u32,
    runtime: Arc<Runtime>,
}

static RUNTIME: Mutex<Option<Entry>> = Mutex::new(None);

/// Worker threads of the runtime: network I/O needs few (decoding runs on the rayon pool).
const IO_THREADS: usize = 2;

/// The runtime of this process, built on first use (and again after a fork).
pub fn runtime() -> std::io::Result<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(entry) = slot.as_ref() {
        if entry.pid == pid {
            return Ok(entry.runtime.clone());
        }
    }
    if let Some(stale) = slot.take() {
        std::mem::forget(stale); // the parent's: its threads are gone in this process
    }
    let runtime = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("astrobio-io")
            .enable_io()
            .enable_time()
            .build()?,
    );
    *slot = Some(Entry { pid, runtime: runtime.clone() });
    Ok(runtime)
}

/// Run `fut` to completion on the process's runtime from a thread outside it.
pub fn block_on<F: Future>(fut: F) -> std::io::Result<F::Output> {
    let rt = runtime()?;
    Ok(rt.block_on(fut))
}

/// The process id that built the current runtime (`None` before the first object-store read).
pub fn runtime_pid() -> Option<u32> {
    RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|e| e.pid)
}
