//! The `vexil` Python package: the vexil library (`crates/vexil`) behind a thin PyO3
//! layer, so that parsing, resolution, the change feed and the reports have one
//! implementation. See `docs/python.md`.
//!
//! ```python
//! import vexil
//! flags = vexil.Flags.from_env()      # VEXIL_ENV, VEXIL_FLAGS, DATABASE_URL or VEXIL_URL + VEXIL_CLIENT_KEY
//! flags.is_on("my_new_feature")       # -> bool, no I/O
//! ```
//!
//! - **The hot path** (`Flags.is_on`, `Flag.is_on`) takes the key as Python's own
//!   UTF-8 (no copy) and asks the library's snapshot: no lock, no allocation, no I/O,
//!   no release of the GIL (releasing it costs more than the lookup).
//! - **The background work** (the feed or the stream, the TTL, the reports) runs on
//!   one tokio worker thread per process, which never holds the GIL; `from_env`
//!   releases the GIL while it waits for the first read.
//! - **`fork()`**: threads do not survive it, so a `Flags` made before a fork would
//!   serve its last values forever in the child. Its first use in the child raises
//!   `vexil.Error` saying to create `Flags` in the worker (gunicorn without
//!   `--preload`, or on first use: `docs/python.md`); a `Flags` created in the child
//!   works.
//! - **Logs** go to Python's `logging`, loggers `vexil.*` (an undeclared key is said
//!   once there, as `WARNING`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::runtime::Runtime;

/// The package's version, reported by every process as its vexil version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

create_exception!(
    vexil,
    Error,
    PyException,
    "A vexil setting is wrong, or the source refused this process (the message says which)."
);

/// Bumped in every child right after `fork()` (`os.register_at_fork`): a handle made
/// under an older count was made in a parent, and its thread is gone.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// The tokio runtime of this process, and the process it was made in: after a fork
/// the child makes its own (the parent's worker thread does not exist there).
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime() -> PyResult<Arc<Runtime>> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((made_in, runtime)) = slot.as_ref() {
        if *made_in == pid {
            return Ok(runtime.clone());
        }
        // The parent's runtime, copied by fork() without its thread: dropping it
        // would wait for that thread forever. It is left as it is.
        if let Some(inherited) = slot.take() {
            Box::leak(Box::new(inherited));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("vexil")
        .enable_all()
        .build()
        .map_err(|error| {
            Error::new_err(format!("cannot start vexil's background thread: {error}"))
        })?;
    let runtime = Arc::new(runtime);
    *slot = Some((pid, runtime.clone()));
    Ok(runtime)
}

fn error(error: &vexil::Error) -> PyErr {
    Error::new_err(error.to_string())
}

/// The refusal a handle made before a fork gives in the child.
#[cold]
fn forked(made_in: u32) -> PyErr {
    Error::new_err(format!(
        "this vexil.Flags was created in process {made_in} before fork(), and its background thread did not survive the fork: create vexil.Flags in each worker process after it forks (gunicorn: run without --preload, or create it on first use in the worker, as vexil's docs/python.md shows; multiprocessing: in the child)"
    ))
}

/// This process's flags. `is_on` answers from memory; one background thread keeps
/// them current.
#[pyclass(frozen, module = "vexil")]
struct Flags {
    /// `None` only in a child after fork(), once this handle is dropped (see `Drop`).
    inner: Option<vexil::Flags>,
    forks: u64,
    pid: u32,
}

impl Flags {
    #[inline]
    fn inner(&self) -> PyResult<&vexil::Flags> {
        match &self.inner {
            Some(inner) if FORKS.load(Ordering::Relaxed) == self.forks => Ok(inner),
            _ => Err(forked(self.pid)),
        }
    }
}

impl Drop for Flags {
    fn drop(&mut self) {
        if FORKS.load(Ordering::Relaxed) != self.forks {
            // Dropped in a child after fork(): stopping the handle would wake a
            // task on the parent's runtime, whose thread is not here. Left as is.
            if let Some(inherited) = self.inner.take() {
                Box::leak(Box::new(inherited));
            }
        }
    }
}

#[pymethods]
impl Flags {
    /// Reads the same variables as the Rust library (`VEXIL_ENV`, `VEXIL_FLAGS`,
    /// `DATABASE_URL` or `VEXIL_URL` with `VEXIL_CLIENT_KEY`, `VEXIL_CACHE_TTL`,
    /// `VEXIL_POLL_MS`, `VEXIL_START_TIMEOUT_MS`, `VEXIL_APP`, the `FLAG_*`
    /// variables) and returns once the first full read is in, or the start timeout
    /// passed (then values come from the variables and YAML defaults, and the log
    /// says so).
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Flags> {
        let builder = vexil::Flags::builder_from_env()
            .map_err(|e| error(&e))?
            .reported_as("python", VERSION);
        let runtime = runtime()?;
        let forks = FORKS.load(Ordering::Relaxed);
        let inner = py
            .detach(|| runtime.block_on(builder.start()))
            .map_err(|e| error(&e))?;
        Ok(Flags {
            inner: Some(inner),
            forks,
            pid: std::process::id(),
        })
    }

    /// Whether `key` is on in this process's env. No I/O, no lock. An undeclared key
    /// is off, and said once in the log.
    #[inline]
    fn is_on(&self, key: &str) -> PyResult<bool> {
        Ok(self.inner()?.is_on(key))
    }

    /// A handle to one flag for hot loops: `flag.is_on()` skips the lookup by name.
    fn flag(&self, key: &str) -> PyResult<Flag> {
        Ok(Flag {
            inner: Some(self.inner()?.flag(key)),
            key: key.to_owned(),
            forks: self.forks,
            pid: self.pid,
        })
    }

    /// `(on, source)` for a declared key, `source` being `"db"`, `"env"` or
    /// `"yaml"`; `None` for an undeclared one.
    fn value(&self, key: &str) -> PyResult<Option<(bool, &'static str)>> {
        Ok(self
            .inner()?
            .value(key)
            .map(|value| (value.on, value.source.as_str())))
    }

    /// The env this process belongs to (`VEXIL_ENV`).
    #[getter]
    fn env(&self) -> PyResult<String> {
        Ok(self.inner()?.env().to_owned())
    }

    /// `{"source_up": bool, "origin": "database" | "server" | "fallback",
    /// "snapshot_age": seconds or None, "reported_at": Unix seconds or None}`.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let health = self.inner()?.health();
        let origin = match health.origin {
            vexil::Origin::Database { .. } => "database",
            vexil::Origin::Server { .. } => "server",
            _ => "fallback",
        };
        let seconds = |at: SystemTime| {
            at.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let dict = PyDict::new(py);
        dict.set_item("source_up", health.source_up)?;
        dict.set_item("origin", origin)?;
        dict.set_item(
            "snapshot_age",
            health.snapshot_age().map(|age| age.as_secs_f64()),
        )?;
        dict.set_item("reported_at", health.reported_at.map(seconds))?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        match self.inner() {
            Ok(inner) => format!(
                "<vexil.Flags env={} source_up={}>",
                inner.env(),
                inner.health().source_up
            ),
            Err(_) => format!("<vexil.Flags of process {} (before fork)>", self.pid),
        }
    }
}

/// One flag, resolved by name once: `is_on()` (or `bool(flag)`) is one atomic load.
#[pyclass(frozen, module = "vexil")]
struct Flag {
    /// `None` only in a child after fork(), once this handle is dropped.
    inner: Option<vexil::Flag>,
    key: String,
    forks: u64,
    pid: u32,
}

impl Drop for Flag {
    fn drop(&mut self) {
        if FORKS.load(Ordering::Relaxed) != self.forks {
            // As for `Flags`: in a child after fork(), the handle's last reference
            // would stop a task on the parent's runtime. Left as is.
            if let Some(inherited) = self.inner.take() {
                Box::leak(Box::new(inherited));
            }
        }
    }
}

#[pymethods]
impl Flag {
    #[inline]
    fn is_on(&self) -> PyResult<bool> {
        match &self.inner {
            Some(inner) if FORKS.load(Ordering::Relaxed) == self.forks => Ok(inner.is_on()),
            _ => Err(forked(self.pid)),
        }
    }

    fn __bool__(&self) -> PyResult<bool> {
        self.is_on()
    }

    #[getter]
    fn key(&self) -> &str {
        &self.key
    }

    fn __repr__(&self) -> String {
        match self.is_on() {
            Ok(on) => format!("<vexil.Flag {} on={on}>", self.key),
            Err(_) => format!(
                "<vexil.Flag {} of process {} (before fork)>",
                self.key, self.pid
            ),
        }
    }
}

/// Run by Python in the child right after `os.fork()`.
#[pyfunction]
fn _after_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

#[pymodule(name = "vexil")]
fn vexil_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The library's log lines into Python's `logging`.
    let _ = pyo3_log::try_init();
    let py = m.py();
    m.add("__version__", VERSION)?;
    m.add("Error", py.get_type::<Error>())?;
    m.add_class::<Flags>()?;
    m.add_class::<Flag>()?;
    let hook = wrap_pyfunction!(_after_fork_in_child, m)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("after_in_child", hook)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    Ok(())
}
