//! The perf-drainer daemon: rings in /dev/shm to CSV files, exactly once.
//!
//! Instrumented services write records into ring files in a shared-memory directory
//! ([`perf_ring`]); this crate finds those rings ([`scan`]), appends their records as rows
//! to `robot_activity_data` ([`perf_table`]), records how far it got ([`checkpoint`]) and
//! only then frees the ring slots ([`drain`]). See `README.md` for the files it writes and
//! how to run it.
//!
//! The modules, one concern each:
//!
//! - [`drain`]: the [`Drainer`], its cycles and rounds; `drain::discover` (private) its
//!   scans: the ring directory's lock, stale temporaries, renamed rings, opening new rings
//!   within the descriptor budget;
//! - `drained` (private): one ring being drained, its cursor, resume from the checkpoint,
//!   and its books;
//! - `commit` (private): the CSV + checkpoint transaction and its roll-back, and
//!   (`commit::rotation`) rotating the tables between two commits;
//! - [`checkpoint`]: the checkpoint file; [`lock`]: one drainer per storage directory;
//! - [`error`]: what can fail, and which failures are waited out;
//! - [`scan`]: which files in the ring directory are drained, and why others are not;
//! - [`rows`]: records to CSV rows; [`failpoint`]: crashes on demand for the tests;
//! - [`run`]: the daemon's loop, for `perf-drainer run` and for the demo;
//! - [`cli`]: the command-line definitions; [`commands`]: what each subcommand does;
//! - [`status`]: the read-only view of the rings; [`metrics`]: the OpenMetrics families.

pub mod checkpoint;
pub mod cli;
pub mod commands;
mod commit;
pub mod drain;
mod drained;
pub mod error;
pub mod failpoint;
pub mod lock;
pub mod metrics;
pub mod rows;
pub mod run;
pub mod scan;
pub mod status;

pub use drain::{Config, Drainer, Report};
pub use error::{DrainError, StorageError};
