//! Integration tests of the `perf-drainer` binary (one test binary, one module per area).

mod util;

mod cli;
mod compat;
mod crash;
mod hostile;
mod idle;
mod lifecycle;
mod metrics;
mod notify;
mod storage;
