//! `perf-metrics`, the human-facing tool of the performance-metrics workspace: a one-command
//! demo of the whole pipeline ([`demo`], with simulated services in [`service`]), a report
//! over the CSV files ([`report`], streaming them back with [`data`] over [`stream`]; the
//! activity rows with their context through [`join`], process instances and their CPU
//! through [`instances`]), a timeline export ([`export`]) and the ring status view of
//! `perf-drainer` (reused from [`perf_drainer::status`]). See README.md.

pub mod cli;
pub mod data;
pub mod demo;
pub mod export;
pub mod instances;
pub mod join;
pub mod report;
pub mod service;
pub mod stream;
pub mod units;
pub mod window;
