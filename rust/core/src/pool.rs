//! The core's own rayon pool, keyed by process id.
//!
//! rayon's worker threads do not survive `fork`: a child that reuses a pool its parent built
//! waits forever on threads that no longer exist (zarrs-python issue #171, a DataLoader hang
//! when the parent decoded before forking its workers). So the pool remembers the pid that
//! built it, and a forked child builds a fresh one. The global rayon pool is never used.

use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

struct Entry {
    pid: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<Entry>> = Mutex::new(None);

/// Threads used when the caller does not say: the cores this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The pool for this process with `threads` workers (0 means [`default_threads`]).
pub fn pool(threads: usize) -> Arc<ThreadPool> {
    let threads = if threads == 0 { default_threads() } else { threads };
    let pid = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(entry) = slot.as_ref() {
        if entry.pid == pid && entry.threads == threads {
            return entry.pool.clone();
        }
    }
    if let Some(stale) = slot.take() {
        if stale.pid != pid {
            // Inherited from the parent: its threads are gone, and dropping it would try to
            // signal them. Leak it (one allocation per fork).
            std::mem::forget(stale);
        }
    }
    let built = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("astrobio-core-{i}"))
        .build()
        .map(Arc::new)
        // Thread creation failed (resource limits): run on the calling thread instead.
        .unwrap_or_else(|_| Arc::new(ThreadPoolBuilder::new().num_threads(1).use_current_thread().build().expect("single-thread pool")));
    *slot = Some(Entry { pid, threads, pool: built.clone() });
    built
}

/// The process id that built the current pool (`None` before the first read); lets tests see
/// that a forked child built its own pool rather than reusing its parent's.
pub fn pool_pid() -> Option<u32> {
    POOL.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|e| e.pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_same_threads_reuses_the_pool() {
        let a = pool(2);
        let b = pool(2);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.current_num_threads(), 2);
        assert_eq!(pool_pid(), Some(std::process::id()));
        let c = pool(1);
        assert_eq!(c.current_num_threads(), 1);
    }
}
