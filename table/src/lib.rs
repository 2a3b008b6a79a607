//! The CSV table writer shared by `perf-drainer` and the system resource tracker.
//!
//! The Python `performance-metrics` package wrote its tables with `csv.writer(...,
//! quoting=csv.QUOTE_ALL)`: every field quoted, quotes doubled, rows ending in `\r\n`, no
//! header row in the data file and the column names in a `<table>_headers` sidecar without
//! a trailing newline. Scripts on robots read exactly those bytes, so this crate produces
//! them (see `../shared/compat/` and the tests in `tests/compat.rs`).
//!
//! Rows are formatted into a caller-owned buffer ([`Row`]) and appended in one `write`
//! ([`TableFile::append`]); [`TableFile::sync`] makes them durable. Formatting is
//! hand-written rather than going through the `csv` crate because the drainer must format
//! ten million rows a second; the `csv` crate is kept as the test oracle.
//!
//! ```
//! use perf_table::{Row, TableFile, ROBOT_ACTIVITY};
//! let dir = tempfile::tempdir().unwrap();
//! let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
//! let mut buf = Vec::new();
//! Row::new(&mut buf).str("CALIBRATING").uint(1722450005999999999).uint(42).end();
//! table.append(&buf).unwrap();
//! table.sync().unwrap();
//! assert_eq!(
//!     std::fs::read(dir.path().join("robot_activity_data")).unwrap(),
//!     b"\"CALIBRATING\",\"1722450005999999999\",\"42\"\r\n"
//! );
//! ```

/// Where the robot's CSV files live unless configured otherwise (the Python package's
/// default).
pub const DEFAULT_STORAGE_DIR: &str = "/data/performance_metrics_data";

pub mod archive;
mod float;
mod row;
pub mod safe_file;
mod table;

pub use archive::{Rotation, Segment, Step};
pub use float::write_python_float;
pub use row::{next_row_end, Row};
pub use table::{
    ExternalChange, TableError, TableFile, TableSpec, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT,
    SYSTEM_RESOURCE,
};
