//! The perf-drainer daemon: rings in /dev/shm to CSV files, exactly once.
//!
//! Instrumented services write records into ring files in a shared-memory directory
//! ([`perf_ring`]); this crate finds those rings ([`scan`]), appends their records as rows
//! to `robot_activity_data` ([`perf_table`]), records how far it got ([`checkpoint`]) and
//! only then frees the ring slots ([`drain`]). See `README.md` for the files it writes and
//! how to run it.

pub mod checkpoint;
pub mod cli;
pub mod drain;
pub mod failpoint;
pub mod lock;
pub mod metrics;
pub mod rows;
pub mod scan;
pub mod status;

pub use drain::{Config, DrainError, Drainer, Report, StorageError};
