//! Every atomic the ring protocol uses comes from here, so `--cfg perf_ring_loom` can swap
//! in loom's model-checked versions (as tokio's `src/loom` and crossbeam-utils' `primitive`
//! do). The protocol in `core` must take its atomics only from here.
//!
//! The cfg is named for this crate, not the customary `loom`: other crates in the build
//! (any that honour a global `cfg(loom)`) would otherwise switch to their loom builds too.

#[cfg(perf_ring_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(perf_ring_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
