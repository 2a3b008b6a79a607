//! `performance_metrics._native`: the few calls the Python package `performance_metrics`
//! makes into `perf-producer`. The decorators live in Python (`python/performance_metrics/`);
//! this module only sets up the process-wide tracker and records spans into its ring.
//!
//! Hot path: the Python wrapper takes its start with `time.monotonic_ns()` (the same
//! CLOCK_MONOTONIC the producer reads) and calls `finish` (`finish_at`) once, after the function
//! returns or raises. That is one native call per tracked call, with no object allocated.

use perf_producer::clock::monotonic_ns;
use perf_producer::{Config, InitError, Recorded, RobotActivityState};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`setup`] ran in this process (or in the parent it forked from). Until it has,
/// nothing here touches `perf_producer::global()`, which would otherwise set itself up
/// from the environment and the feature flag.
static SET_UP: AtomicBool = AtomicBool::new(false);

/// The process-wide tracker, if [`setup`] made it.
#[inline]
fn tracker() -> Option<&'static perf_producer::Tracker> {
    // Relaxed is enough: `global()` itself synchronises with the tracker's set-up.
    SET_UP.load(Ordering::Relaxed).then(perf_producer::global)
}

/// The state at `index`, if there is one.
fn state_at(index: u32) -> Option<RobotActivityState> {
    RobotActivityState::ALL
        .get(usize::try_from(index).ok()?)
        .copied()
}

/// Every state name the producer knows, in index order (the index is what `finish` takes).
#[pyfunction]
fn state_names() -> Vec<&'static str> {
    RobotActivityState::NAMES.to_vec()
}

/// The index of the state named `name`; `ValueError` naming the known states otherwise.
#[pyfunction]
fn state_index(name: &str) -> PyResult<u32> {
    match RobotActivityState::from_name(name) {
        Some(state) => Ok(state.index()),
        None => Err(PyValueError::new_err(format!(
            "unknown robot activity state {name:?}; known states: {}",
            RobotActivityState::NAMES.join(", ")
        ))),
    }
}

/// `raw` made a valid ring service name (see `perf_producer::service_name_from`).
#[pyfunction]
fn service_name_from(raw: &str) -> String {
    perf_producer::service_name_from(raw)
}

/// Sets up the process-wide tracker, turned on, for `service` (ring directory from
/// `OT_PERFORMANCE_METRICS_SHM_DIR`, else `/dev/shm/performance_metrics`). Later calls
/// keep the first set-up.
///
/// `capacity` (records, a power of two) defaults to `perf_producer::DEFAULT_CAPACITY`.
///
/// Returns `(recording, why_not)`: whether the tracker has a ring, and if not, why.
#[pyfunction]
#[pyo3(signature = (service, capacity = None))]
fn setup(service: &str, capacity: Option<u64>) -> (bool, Option<String>) {
    let mut config = Config::new(perf_producer::service_name_from(service));
    config.enabled = Some(true);
    config.capacity = capacity;
    let tracker = match perf_producer::init(config) {
        Ok(tracker) => tracker,
        // Set up before (by us, or by a thread that forked into this process): keep it.
        Err(InitError::AlreadyInitialized | InitError::Busy) => perf_producer::global(),
    };
    SET_UP.store(true, Ordering::Relaxed);
    (
        tracker.is_enabled(),
        tracker.setup_error().map(ToString::to_string),
    )
}

/// Records a span of state `state` (an index from [`state_index`]) that started at
/// monotonic `start_ns` (`time.monotonic_ns()`) and ends now. Never raises for a bad index
/// or a full ring: a bad index records nothing, a full ring counts a drop.
///
/// The wall-clock start is derived from `start_ns` as the producer's spans derive theirs
/// (monotonic plus a per-thread wall-clock offset), with no second clock read. This is the body of the
/// module's `finish`, a bare `METH_FASTCALL` builtin ([`fast`]): measured from Python it
/// costs about 65 ns against 85 ns for the same function through `#[pyfunction]`.
#[inline]
fn finish_at(state: u64, start_ns: u64) {
    let state = u32::try_from(state).ok().and_then(state_at);
    if let (Some(tracker), Some(state)) = (tracker(), state) {
        tracker.record_since(state, start_ns);
    }
}

/// `finish(state, start_ns)` as a bare `METH_FASTCALL` builtin.
mod fast {
    use std::ffi::c_int;
    use std::ptr::null_mut;

    use pyo3::ffi;

    /// A method table entry that can live in a `static`.
    pub(crate) struct MethodDef(pub(crate) ffi::PyMethodDef);

    // SAFETY: the entry holds pointers to `'static` C strings and a function; nothing
    // writes to it after it is built, and CPython only reads it.
    unsafe impl Sync for MethodDef {}

    pub(crate) static FINISH: MethodDef = MethodDef(ffi::PyMethodDef {
        ml_name: c"finish".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFast: finish,
        },
        ml_flags: ffi::METH_FASTCALL as c_int,
        ml_doc: c"finish(state, start_ns, /)\n--\n\nRecords a span of state index `state` from monotonic `start_ns` (time.monotonic_ns()) to now. Never raises for a bad index or a full ring.".as_ptr(),
    });

    /// Reads a non-negative int argument; `None` with a Python exception set otherwise.
    ///
    /// # Safety
    /// The GIL is held and `obj` is a valid object reference.
    unsafe fn u64_arg(obj: *mut ffi::PyObject) -> Option<u64> {
        // SAFETY: the caller holds the GIL and passes a valid reference.
        let value = unsafe { ffi::PyLong_AsUnsignedLongLong(obj) };
        // SAFETY: the GIL is held.
        if value == u64::MAX && !unsafe { ffi::PyErr_Occurred() }.is_null() {
            return None;
        }
        Some(value)
    }

    /// The builtin's body. Nothing in it panics: the producer never panics into its
    /// caller, and the rest is integer arithmetic without overflow.
    unsafe extern "C" fn finish(
        _module: *mut ffi::PyObject,
        args: *mut *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
    ) -> *mut ffi::PyObject {
        if nargs != 2 {
            // SAFETY: reading the interpreter's exception type, set before any module loads.
            let type_error = unsafe { ffi::PyExc_TypeError };
            // SAFETY: CPython calls builtins with the GIL held; the message is a
            // NUL-terminated static string.
            unsafe {
                ffi::PyErr_SetString(
                    type_error,
                    c"finish() takes exactly 2 arguments (state, start_ns)".as_ptr(),
                );
            }
            return null_mut();
        }
        // SAFETY: for METH_FASTCALL, `args` points at `nargs` (here 2) valid references
        // that live for the duration of the call.
        let args = unsafe { std::slice::from_raw_parts(args, 2) };
        // SAFETY: GIL held, valid references (see above).
        let Some(state) = (unsafe { u64_arg(args[0]) }) else {
            return null_mut();
        };
        // SAFETY: as above.
        let Some(start_ns) = (unsafe { u64_arg(args[1]) }) else {
            return null_mut();
        };
        super::finish_at(state, start_ns);
        // SAFETY: GIL held; `Py_None` is the immortal None, and the new reference we
        // return is the one taken here.
        let none = unsafe { ffi::Py_None() };
        // SAFETY: GIL held; `none` is a valid object.
        unsafe { ffi::Py_IncRef(none) };
        none
    }
}

/// Writes one record with a start (CLOCK_REALTIME ns) and duration of your choosing.
/// Returns `"committed"`, `"dropped"` (ring full) or `"disabled"` (no ring).
#[pyfunction]
fn record(state: u32, start_ns: u64, duration_ns: u64) -> PyResult<&'static str> {
    let Some(state) = state_at(state) else {
        return Err(PyValueError::new_err(format!(
            "state index {state} out of range (0..{})",
            RobotActivityState::ALL.len()
        )));
    };
    Ok(
        match tracker().map(|t| t.record_raw(state, start_ns, duration_ns)) {
            Some(Recorded::Committed(_)) => "committed",
            Some(Recorded::Dropped) => "dropped",
            Some(Recorded::Disabled) | None => "disabled",
        },
    )
}

/// Path of this process's ring file, if it has one (a forked child gets its own on its
/// first record).
#[pyfunction]
fn ring_path() -> Option<std::path::PathBuf> {
    tracker()?.ring_path()
}

/// This process's ring counters `(claimed, released, dropped)`, if it has a ring.
#[pyfunction]
fn counters() -> Option<(u64, u64, u64)> {
    tracker()?
        .counters()
        .map(|c| (c.claimed, c.released, c.dropped))
}

/// CLOCK_MONOTONIC in ns, read by the producer (for tests and benchmarks; the wrappers use
/// `time.monotonic_ns()`, the same clock).
#[pyfunction(name = "monotonic_ns")]
fn py_monotonic_ns() -> u64 {
    monotonic_ns()
}

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(state_names, m)?)?;
    m.add_function(wrap_pyfunction!(state_index, m)?)?;
    m.add_function(wrap_pyfunction!(service_name_from, m)?)?;
    m.add_function(wrap_pyfunction!(setup, m)?)?;
    // SAFETY: GIL held (module init); `FINISH` is a `'static` method table entry that
    // CPython only reads, and `m` is a valid module object.
    let finish = unsafe {
        pyo3::ffi::PyCFunction_NewEx(
            std::ptr::from_ref(&fast::FINISH.0).cast_mut(),
            std::ptr::null_mut(),
            m.as_ptr(),
        )
    };
    // SAFETY: `finish` is a new reference or null with an exception set.
    let finish = unsafe { Bound::from_owned_ptr_or_err(m.py(), finish) }?;
    m.add("finish", finish)?;
    m.add_function(wrap_pyfunction!(record, m)?)?;
    m.add_function(wrap_pyfunction!(ring_path, m)?)?;
    m.add_function(wrap_pyfunction!(counters, m)?)?;
    m.add_function(wrap_pyfunction!(py_monotonic_ns, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_indices_round_trip_and_reject_out_of_range() {
        for (i, name) in RobotActivityState::NAMES.iter().enumerate() {
            let state = state_at(u32::try_from(i).unwrap()).unwrap();
            assert_eq!(state.name(), *name);
        }
        assert_eq!(
            state_at(u32::try_from(RobotActivityState::ALL.len()).unwrap()),
            None
        );
        assert_eq!(state_at(u32::MAX), None);
    }
}
