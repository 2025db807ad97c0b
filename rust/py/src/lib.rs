//! `astrobio._core`: thin PyO3 bindings over astrobio-core. Every call into the core goes
//! through one door, [`enter`]: arguments are already owned Rust values, the work runs with the
//! GIL released, a long call stops between slices when Python's signal handlers raise (Ctrl-C:
//! `KeyboardInterrupt`), and every `CoreError` becomes one exception of `astrobio.errors` in
//! `core_error_to_py` (the only conversion point).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use astrobio_core::remote::RemoteStore;
use astrobio_core::{
    verify_store as core_verify, BatchReader as CoreReader, Cancel, CoreError, CoreResult, NormMode, NormStats, StorageFault,
};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray5, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// How often a long call takes the GIL back to run Python's signal handlers: well inside the
/// second a Ctrl-C may take, rare enough to cost nothing measurable.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Python's signal handlers as the core's [`Cancel`]. The core asks on the calling thread between
/// slices of work; at most every [`SIGNAL_POLL`] this takes the GIL back and runs
/// `check_signals`, and keeps the exception a handler raised (`KeyboardInterrupt` for Ctrl-C)
/// for [`enter`] to raise. A call shorter than that never takes the GIL back. Only Python's main
/// thread runs signal handlers, so a call from another thread (a loader's read-ahead) never polls.
struct Signals {
    main_thread: bool,
    poll: Mutex<(Instant, Option<PyErr>)>,
}

/// `threading.main_thread().ident`, read when the module is imported (a fork keeps the forking
/// thread's ident, and the forking thread becomes the child's main thread).
static MAIN_THREAD: OnceLock<u64> = OnceLock::new();

extern "C" {
    // CPython's thread ident (`threading.get_ident()`), part of the stable ABI; a plain C call,
    // so no Python code (nor a pending signal handler) runs when the door asks it.
    fn PyThread_get_thread_ident() -> std::os::raw::c_ulong;
}

impl Signals {
    fn new() -> Self {
        // SAFETY: a C function without arguments or preconditions beyond a live interpreter.
        let ident = unsafe { PyThread_get_thread_ident() } as u64;
        let main_thread = MAIN_THREAD.get() == Some(&ident);
        Signals { main_thread, poll: Mutex::new((Instant::now(), None)) }
    }

    fn raised(self) -> Option<PyErr> {
        self.poll.into_inner().unwrap_or_else(|p| p.into_inner()).1
    }
}

impl Cancel for Signals {
    fn cancelled(&self) -> bool {
        if !self.main_thread {
            return false;
        }
        let mut poll = self.poll.lock().unwrap_or_else(|p| p.into_inner());
        if poll.1.is_none() && poll.0.elapsed() >= SIGNAL_POLL {
            poll.1 = Python::attach(|py| py.check_signals()).err();
            poll.0 = Instant::now();
        }
        poll.1.is_some()
    }
}

/// The one door from Python into the core (as polars' `enter_polars`): `work` holds only owned
/// values (or a buffer it was lent), runs with the GIL released, is asked to stop between slices
/// once a signal handler raised (the handler's exception is then the call's), and its
/// `CoreError` becomes one Python exception here.
fn enter<T: Send>(py: Python<'_>, work: impl Send + FnOnce(&dyn Cancel) -> CoreResult<T>) -> PyResult<T> {
    let signals = Signals::new();
    let done = py.detach(|| work(&signals));
    if let Some(raised) = signals.raised() {
        return Err(raised); // even when the work finished: the handler's exception is not lost
    }
    done.map_err(core_error_to_py)
}

/// Build the Python exception for a core error (classes live in `astrobio.errors`).
fn core_error_to_py(err: CoreError) -> PyErr {
    Python::attach(|py| match build_py_error(py, &err) {
        Ok(e) => e,
        Err(import_failure) => import_failure,
    })
}

fn build_py_error(py: Python<'_>, err: &CoreError) -> PyResult<PyErr> {
    let errors = py.import("astrobio.errors")?;
    let kwargs = PyDict::new(py);
    let (class, message) = match err {
        CoreError::NotFound { path, what } => {
            kwargs.set_item("path", path.to_string_lossy().as_ref())?;
            ("DataNotFoundError", what.clone())
        }
        CoreError::Integrity { location, reason } => {
            kwargs.set_item("run", location.run.as_deref())?;
            kwargs.set_item("sample", location.sample)?;
            kwargs.set_item("chunk", location.chunk.as_deref())?;
            ("IntegrityError", reason.clone())
        }
        CoreError::InvalidArgument(msg) => ("ConfigError", msg.clone()),
        // Only a Cancel that is not Python's signals says stop without an exception to raise.
        CoreError::Interrupted => return Ok(PyKeyboardInterrupt::new_err(err.to_string())),
        CoreError::IndexOutOfRange { .. } => ("SampleIndexError", err.to_string()),
        CoreError::Io { path, .. } => {
            kwargs.set_item("path", path.to_string_lossy().as_ref())?;
            ("DataNotFoundError", err.to_string())
        }
        CoreError::Storage { url, fault, .. } => match fault {
            StorageFault::Denied | StorageFault::Config => ("ConfigError", err.to_string()),
            StorageFault::Unreachable | StorageFault::Other => {
                kwargs.set_item("path", url.as_str())?;
                kwargs.set_item("hint", "Check AWS_ENDPOINT_URL, the network and the ASTROBIO_S3_* timeouts (docs/object-storage.md)")?;
                ("DataNotFoundError", format!("cannot read from object storage: {err}"))
            }
        },
    };
    let instance = errors.getattr(class)?.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

/// (mean, scale) of a normalization, as two numpy arrays.
type MeanScale<'py, A> = (Bound<'py, A>, Bound<'py, A>);

fn parse_mode(normalize: &str) -> PyResult<NormMode> {
    normalize.parse().map_err(core_error_to_py)
}

/// Reads normalized batches of datacubes from an astrobio store, one call per batch.
#[pyclass(module = "astrobio._core", name = "BatchReader", frozen)]
struct PyBatchReader {
    inner: CoreReader,
    /// A directory or an `s3://bucket/prefix` URL, as given.
    path: String,
    normalize: String,
}

#[pymethods]
impl PyBatchReader {
    #[new]
    #[pyo3(signature = (path, normalize = "per_variable", threads = 0))]
    fn new(py: Python<'_>, path: PathBuf, normalize: &str, threads: usize) -> PyResult<Self> {
        let mode = parse_mode(normalize)?;
        let p = path.clone();
        let inner = enter(py, move |_| CoreReader::open(&p, mode, threads))?;
        let path = path.to_string_lossy().into_owned();
        Ok(PyBatchReader { inner, path, normalize: normalize.to_string() })
    }

    /// Read samples `indices` into a C-contiguous float32 array [B, V, L, H, W].
    /// `out`, when given, must have exactly that shape and is filled in place.
    #[pyo3(signature = (indices, out = None))]
    fn read_batch<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray5<f32>>> {
        self.fill_batch(py, indices, out, "float32", |idx, slice, cancel| self.inner.read_batch_into(idx, slice, cancel))
    }

    /// The same batch as bfloat16 bits in a uint16 array [B, V, L, H, W] (view it as
    /// `torch.bfloat16`): round to nearest even, half the bytes of float32.
    #[pyo3(signature = (indices, out = None))]
    fn read_batch_bf16<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray5<u16>>> {
        self.fill_batch(py, indices, out, "uint16", |idx, slice, cancel| self.inner.read_batch_bf16_into(idx, slice, cancel))
    }

    /// Start fetching the batch `indices` in the background (object storage only), so the next
    /// `read_batch` of exactly these indices finds it fetched; False when nothing was started.
    fn prefetch(&self, py: Python<'_>, indices: Vec<i64>) -> PyResult<bool> {
        enter(py, |_| self.inner.prefetch(&indices))
    }

    /// Read the normalized parameter rows of `indices` as float32 [B, P].
    fn read_params<'py>(&self, py: Python<'py>, indices: Vec<i64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.inner.store().n_params();
        let mut buf = vec![0f32; indices.len() * p];
        self.inner.read_params_into(&indices, &mut buf).map_err(core_error_to_py)?;
        let array = Array2::from_shape_vec([indices.len(), p], buf).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok(array.into_pyarray(py))
    }

    /// The cube normalization this reader applies, as float64 (mean, scale) of shape [V, L]:
    /// physical = normalized * scale + mean (identity for normalize="none").
    fn normalization<'py>(&self, py: Python<'py>) -> PyResult<MeanScale<'py, PyArray2<f64>>> {
        let [v, l, _, _] = self.inner.store().manifest().sample_shape;
        let NormStats { mean, scale } = self.inner.cube_norm().clone();
        let as_array = |x: Vec<f64>| {
            Array2::from_shape_vec([v, l], x).map(|a| a.into_pyarray(py)).map_err(|e| PyRuntimeError::new_err(e.to_string()))
        };
        Ok((as_array(mean)?, as_array(scale)?))
    }

    /// The parameter normalization this reader applies, as float64 (mean, scale) of shape [P].
    fn params_normalization<'py>(&self, py: Python<'py>) -> MeanScale<'py, PyArray1<f64>> {
        let NormStats { mean, scale } = self.inner.param_norm().clone();
        (mean.into_pyarray(py), scale.into_pyarray(py))
    }

    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }
    #[getter]
    fn normalize(&self) -> &str {
        &self.normalize
    }
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }
    #[getter]
    fn n_samples(&self) -> u64 {
        self.inner.store().n_samples()
    }
    #[getter]
    fn n_params(&self) -> usize {
        self.inner.store().n_params()
    }
    /// Samples per shard of a sharded store; None: one chunk object per sample.
    #[getter]
    fn shard_samples(&self) -> Option<u64> {
        self.inner.store().shard_samples()
    }
    #[getter]
    fn sample_shape(&self) -> (usize, usize, usize, usize) {
        let [v, l, h, w] = self.inner.store().manifest().sample_shape;
        (v, l, h, w)
    }
    fn __len__(&self) -> usize {
        self.inner.store().n_samples() as usize
    }
    /// Pickle as (path, normalize, threads): the worker reopens the store itself.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String, String, usize))> {
        let this = slf.get();
        Ok((slf.get_type().into_any(), (this.path.clone(), this.normalize.clone(), this.inner.threads())))
    }
    fn __repr__(&self) -> String {
        format!(
            "BatchReader(path={:?}, normalize={:?}, n_samples={}, sample_shape={:?})",
            self.path,
            self.normalize,
            self.inner.store().n_samples(),
            self.inner.store().manifest().sample_shape
        )
    }
}

/// Scan every chunk of a store; returns a report dict (counts and the first failures).
impl PyBatchReader {
    /// `out` (checked: dtype, shape [B, V, L, H, W], writeable, C-contiguous) or a new numpy
    /// array, filled by `read` with the GIL released.
    fn fill_batch<'py, T: numpy::Element + Send>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        out: Option<Bound<'py, PyAny>>,
        dtype: &str,
        read: impl Fn(&[i64], &mut [T], &dyn Cancel) -> CoreResult<()> + Send + Sync,
    ) -> PyResult<Bound<'py, PyArray5<T>>> {
        let [v, l, h, w] = self.inner.store().manifest().sample_shape;
        let shape = [indices.len(), v, l, h, w];
        let array = match out {
            Some(any) => {
                let array = any.cast_into::<PyArray5<T>>().map_err(|_| {
                    core_error_to_py(CoreError::InvalidArgument(format!(
                        "out must be a {dtype} numpy array with 5 dimensions {shape:?}"
                    )))
                })?;
                if array.shape() != shape {
                    return Err(core_error_to_py(CoreError::InvalidArgument(format!(
                        "out has shape {:?}, the batch needs {:?}",
                        array.shape(),
                        shape
                    ))));
                }
                array
            }
            // Allocated by numpy rather than as a Vec: numpy advises transparent huge pages
            // for large arrays, and a fresh 40 MB batch otherwise costs ~10k page faults,
            // measured here to halve the read's throughput (docs/performance.md).
            // SAFETY: uninitialized f32 / u16 memory is fine to hold (any bits are valid); it is
            // fully written before the array is returned, and dropped on error.
            None => unsafe { PyArray5::<T>::new(py, shape, false) },
        };
        {
            let mut guard = array
                .try_readwrite()
                .map_err(|e| core_error_to_py(CoreError::InvalidArgument(format!("out is not writeable: {e}"))))?;
            let slice = guard
                .as_slice_mut()
                .map_err(|_| core_error_to_py(CoreError::InvalidArgument("out must be C-contiguous".into())))?;
            enter(py, |cancel| read(&indices, slice, cancel))?;
        }
        Ok(array)
    }
}

#[pyfunction]
#[pyo3(signature = (path, max_failures = 20, threads = 0))]
fn verify_store<'py>(py: Python<'py>, path: PathBuf, max_failures: usize, threads: usize) -> PyResult<Bound<'py, PyDict>> {
    let report = enter(py, |cancel| core_verify(&path, max_failures, threads, cancel))?;
    let d = PyDict::new(py);
    d.set_item("path", path.to_string_lossy().as_ref())?;
    d.set_item("ok", report.ok())?;
    d.set_item("samples", report.samples)?;
    d.set_item("chunks_checked", report.chunks_checked)?;
    d.set_item("chunks_failed", report.chunks_failed)?;
    d.set_item("unexpected_files", report.unexpected_files)?;
    d.set_item("bytes_decoded", report.bytes_decoded)?;
    let failures = PyList::empty(py);
    for f in &report.failures {
        let fd = PyDict::new(py);
        fd.set_item("run", f.location.run.as_deref())?;
        fd.set_item("sample", f.location.sample)?;
        fd.set_item("chunk", f.location.chunk.as_deref())?;
        fd.set_item("reason", &f.reason)?;
        failures.append(fd)?;
    }
    d.set_item("failures", failures)?;
    Ok(d)
}

/// The object at `key` of the store at `url` (`s3://bucket/prefix`), or None when it does not
/// exist; one larger than `max_bytes` is refused (IntegrityError).
#[pyfunction]
#[pyo3(signature = (url, key, max_bytes = 1 << 30))]
fn object_get<'py>(py: Python<'py>, url: String, key: String, max_bytes: u64) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let got = enter(py, |_| RemoteStore::open(&url)?.get(&key, max_bytes))?;
    Ok(got.map(|b| PyBytes::new(py, &b)))
}

/// Write `data` as the object at `key` of the store at `url` (one PUT).
#[pyfunction]
fn object_put(py: Python<'_>, url: String, key: String, data: Vec<u8>) -> PyResult<()> {
    enter(py, |_| RemoteStore::open(&url)?.put(&key, data))
}

/// Delete the object at `key` of the store at `url` (no error when absent).
#[pyfunction]
fn object_delete(py: Python<'_>, url: String, key: String) -> PyResult<()> {
    enter(py, |_| RemoteStore::open(&url)?.delete(&key))
}

/// Every object under `prefix` of the store at `url`, as sorted (key, size) pairs.
#[pyfunction]
#[pyo3(signature = (url, prefix = String::new()))]
fn object_list(py: Python<'_>, url: String, prefix: String) -> PyResult<Vec<(String, u64)>> {
    enter(py, |_| RemoteStore::open(&url)?.list(&prefix))
}

/// The process id that built the core's I/O runtime (None before the first object-store read).
#[pyfunction]
fn runtime_pid() -> Option<u32> {
    astrobio_core::runtime::runtime_pid()
}

/// The process id that built the core's current thread pool (None before the first read).
#[pyfunction]
fn pool_pid() -> Option<u32> {
    astrobio_core::pool::pool_pid()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let main_thread = m.py().import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract::<u64>()?;
    let _ = MAIN_THREAD.set(main_thread);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyBatchReader>()?;
    m.add_function(wrap_pyfunction!(verify_store, m)?)?;
    m.add_function(wrap_pyfunction!(pool_pid, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_pid, m)?)?;
    m.add_function(wrap_pyfunction!(object_get, m)?)?;
    m.add_function(wrap_pyfunction!(object_put, m)?)?;
    m.add_function(wrap_pyfunction!(object_delete, m)?)?;
    m.add_function(wrap_pyfunction!(object_list, m)?)?;
    Ok(())
}
