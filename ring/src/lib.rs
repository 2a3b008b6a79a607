//! The shared-memory ring between instrumented processes and `perf-drainer`.
//!
//! One ring file per producer process lives in a ring directory (by default
//! `/dev/shm/performance_metrics/`). Its layout is in `FORMAT.md` and [`format`]; the
//! lock-free protocol in [`core`] (module docs); the two ends in [`ProducerRing`] and
//! [`ConsumerRing`]. No CSV and no policy live here.
//!
//! ```
//! use perf_ring::{ConsumerRing, ProducerRing, Record};
//! let dir = tempfile::tempdir().unwrap();
//! let ring = ProducerRing::create(dir.path(), "svc", &["ANALYZING_PROTOCOL"], 1024).unwrap();
//! ring.push(&Record { start_ns: 1, duration_ns: 2, state: 0, tid: 3 }).unwrap();
//!
//! let mut consumer = ConsumerRing::open(ring.path()).unwrap();
//! let mut out = Vec::new();
//! consumer.read_batch(&mut out, 64).unwrap();
//! assert_eq!(out[0].duration_ns, 2);
//! assert_eq!(consumer.info().states[out[0].state as usize], "ANALYZING_PROTOCOL");
//! ```

/// Where rings live unless [`DIR_ENV`] says otherwise; producers and the drainer agree on it.
pub const DEFAULT_DIR: &str = "/dev/shm/performance_metrics";
/// The environment variable naming the ring directory, honoured by producers and drainer.
pub const DIR_ENV: &str = "OT_PERFORMANCE_METRICS_SHM_DIR";

pub mod core;
mod error;
#[cfg(not(perf_ring_loom))]
pub mod fork;
pub mod format;
mod sync;

#[cfg(not(perf_ring_loom))]
mod consumer;
#[cfg(not(perf_ring_loom))]
mod mapping;
#[cfg(not(perf_ring_loom))]
mod producer;
#[cfg(not(perf_ring_loom))]
mod sigbus;
#[cfg(not(perf_ring_loom))]
pub mod stale;

// The loom models of the protocol live inside the crate, so `Control`, `Slot` and
// `RingView` stay crate-private (tokio's `src/sync/tests/loom_*.rs`).
#[cfg(all(test, perf_ring_loom))]
mod loom_tests;

pub use crate::core::{Counters, PushError};
pub use error::RingError;
pub use format::{
    file_size, validate, Record, RingInfo, HEADER_SIZE, MAGIC, MAX_CAPACITY, MAX_STATES, SLOT_SIZE,
    VERSION,
};

#[cfg(not(perf_ring_loom))]
pub use consumer::ConsumerRing;
/// Rings one process may have open as a consumer at once: the size of the table through
/// which a ring truncated under its mapping is survived (see `sigbus.rs`). Opening one more
/// fails with [`RingError::TooManyMapped`]; a consumer leaves the rest waiting until
/// earlier ones are closed.
#[cfg(not(perf_ring_loom))]
pub const MAX_MAPPED: usize = sigbus::MAX_REGIONS;
#[cfg(not(perf_ring_loom))]
pub use producer::ProducerRing;
