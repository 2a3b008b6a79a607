//! The one test kit of the workspace: what every package's tests share.
//!
//! A dev-only crate (no library or binary depends on it), in the spirit of ripgrep's
//! `tests/util.rs`: each helper exists once here, and the tests of `perf-ring`'s users,
//! the daemons, the CLI and the cross-crate suite (`perf-tests`) use it.
//!
//! - [`dirs`]: a ring directory and a storage directory of the test's own, removed on drop,
//!   and the drainer commands over them;
//! - [`command`]: running a command with a time limit, daemons whose stderr is collected,
//!   children killed and reaped on drop, signals;
//! - [`wait`]: polling a condition with a deadline;
//! - [`rng`]: the one seeded random generator; its seed variable is [`rng::SEED_ENV`];
//! - [`tmpfs`]: a tmpfs mounted for one test (full and read-only storage);
//! - [`compat`]: the Python package's fixture files and the rows they hold, read once;
//! - [`ring`]: records, ring files and their contents.

pub mod command;
pub mod compat;
pub mod dirs;
pub mod ring;
pub mod rng;
pub mod tmpfs;
pub mod wait;

pub use command::{
    count, limit_open_files, marker, output_within, resume, signal, stderr, stdout, stop, Daemon,
    Reaped,
};
pub use dirs::{ContextRow, Dirs};
pub use ring::{now_ns, record, ring_files, ring_records};
pub use rng::Rng;
pub use tmpfs::Tmpfs;
pub use wait::{wait_for, wait_until};
