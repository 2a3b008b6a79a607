//! What both daemons (`perf-drainer` and the system resource tracker) need, written once
//! (`perf-metrics` shares the command-line part):
//!
//! - [`cli`]: command-line errors as one line naming the flag or variable, exit status 2;
//!   a failure at run time as one logged line, exit status 1;
//! - [`fd_limit`]: the descriptor limit raised to the hard one, and the budget a daemon
//!   keeps for rings or processes under it;
//! - [`logging`]: a [`log`] backend that writes one line per record to stderr, with the
//!   sd-daemon priority prefix (`<6>`) when stderr is the journal, and Python's level names;
//! - [`metrics`]: the Prometheus exposition: a `GET /metrics` server and a textfile
//!   writer, each on its own thread, over one `prometheus-client` registry;
//! - [`notify`]: systemd `READY=1`, `STOPPING=1` and watchdog pings, no-ops outside systemd;
//! - [`shutdown`]: SIGTERM/SIGINT as a flag plus an interruptible sleep; a second signal
//!   forces the exit;
//! - [`storage_log`]: when to tell the journal that the storage is failing (at the start,
//!   on a new cause, then once a minute) and that it recovered;
//! - [`text_table`]: the aligned text tables `status` and `report` print.
//!
//! A daemon's main loop looks like this:
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! perf_daemon::logging::init(log::LevelFilter::Info).unwrap();
//! let shutdown = perf_daemon::shutdown::Shutdown::install().unwrap();
//! let mut watchdog = perf_daemon::notify::Watchdog::from_env();
//! perf_daemon::notify::ready();
//! let mut next = Instant::now();
//! loop {
//!     // ... one round of work ...
//!     next += Duration::from_secs(10);
//!     if watchdog.sleep_until(&shutdown, next) {
//!         break;
//!     }
//! }
//! perf_daemon::notify::stopping();
//! ```

pub mod cli;
pub mod fd_limit;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod shutdown;
pub mod storage_log;
pub mod text_table;
