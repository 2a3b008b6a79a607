//! Every atomic the ring protocol uses comes from here, so `--cfg loom` can swap in loom's
//! model-checked versions (as tokio's `src/loom` and crossbeam-utils' `primitive` do).
//! The protocol in `core` must take its atomics only from here.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
