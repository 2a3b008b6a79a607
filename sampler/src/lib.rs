//! The system resource tracker daemon: CPU and memory of selected processes from /proc to CSV.
//!
//! A drop-in replacement for the Python `system_resource_tracker`: the same environment
//! variables, defaults and validation ([`config`]), the same command-line formatting
//! ([`cmdline`]) and glob semantics ([`fnmatch`]), the same file and bytes
//! (`system_resource_data` through `perf-table`), without its faults: a process that exits
//! mid-sample is skipped ([`proc`]), samples run at a fixed rate ([`schedule`]), and storage
//! trouble is retried rather than fatal ([`storage`]). [`run`] is the daemon's loop, wired
//! to `perf-daemon` (systemd notify, signals), that the binary `system-resource-tracker`
//! and the `perf-metrics demo` both run.

pub mod cmdline;
pub mod config;
pub mod cpu_clock;
pub mod fnmatch;
pub mod forks;
pub mod kept;
pub mod metrics;
pub mod proc;
pub mod row;
pub mod run;
pub mod sample;
pub mod schedule;
pub mod storage;
mod visit;
