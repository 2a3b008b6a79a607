//! A ring directory and a storage directory of the test's own, and the drainer over them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::command::{output_within, Daemon};

/// A ring directory (`shm`, created) and a storage directory (`storage`, created only by
/// [`Dirs::with_storage`]: the drainer makes it itself) under one temporary root, removed
/// on drop. Never under `/dev/shm`: tests must not leave rings there.
///
/// The drainer commands need the binary: [`Dirs::drainer`] sets it
/// (`env!("CARGO_BIN_EXE_perf-drainer")` in the drainer's own tests, a path built on demand
/// in `perf-tests`).
#[derive(Debug)]
pub struct Dirs {
    root: tempfile::TempDir,
    /// Where producers create rings.
    pub shm: PathBuf,
    /// Where the drainer writes the CSV.
    pub storage: PathBuf,
    drainer: Option<PathBuf>,
}

impl Dirs {
    /// A fresh root with `shm/` in it; `storage` is named but not created.
    pub fn new() -> Dirs {
        let root = tempfile::Builder::new()
            .prefix("perf-test-")
            .tempdir()
            .expect("temp dir");
        let shm = root.path().join("shm");
        std::fs::create_dir(&shm).expect("shm dir");
        let storage = root.path().join("storage");
        Dirs {
            root,
            shm,
            storage,
            drainer: None,
        }
    }

    /// A fresh root with both `shm/` and `storage/` created.
    pub fn with_storage() -> Dirs {
        let dirs = Dirs::new();
        std::fs::create_dir(&dirs.storage).expect("storage dir");
        dirs
    }

    /// The `perf-drainer` binary the drainer commands run.
    pub fn drainer(mut self, bin: impl Into<PathBuf>) -> Dirs {
        self.drainer = Some(bin.into());
        self
    }

    /// The temp root holding both.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `robot_activity_data`.
    pub fn csv_path(&self) -> PathBuf {
        self.storage.join("robot_activity_data")
    }

    /// The CSV's bytes (empty if it does not exist yet).
    pub fn csv(&self) -> Vec<u8> {
        std::fs::read(self.csv_path()).unwrap_or_default()
    }

    /// Every row of the CSV, checking that each is complete and well-formed.
    pub fn rows(&self) -> Vec<(String, u64, u64)> {
        parse_rows(&self.csv())
    }

    /// `robot_activity_context_data`'s bytes (empty if it does not exist yet).
    pub fn context_csv(&self) -> Vec<u8> {
        std::fs::read(self.storage.join("robot_activity_context_data")).unwrap_or_default()
    }

    /// Every row of the context table, checking each is complete and well-formed.
    pub fn context_rows(&self) -> Vec<ContextRow> {
        parse_context_rows(&self.context_csv())
    }

    /// The CSV's rows, after checking that the context table holds the very same rows in
    /// the same order (both were written from the start), and the context rows.
    pub fn rows_in_both(&self) -> (Vec<(String, u64, u64)>, Vec<ContextRow>) {
        let rows = self.rows();
        let context = self.context_rows();
        let plain: Vec<(String, u64, u64)> = context
            .iter()
            .map(|c| (c.state.clone(), c.start, c.duration))
            .collect();
        assert_eq!(plain.len(), rows.len(), "context rows vs CSV rows");
        assert!(
            plain == rows,
            "the context table's rows differ from the CSV's"
        );
        (rows, context)
    }

    /// Complete `\r\n`-terminated lines in the CSV right now (a partial last line, as a
    /// killed drainer may leave, is not counted).
    pub fn complete_rows(&self) -> usize {
        self.csv().windows(2).filter(|w| w == b"\r\n").count()
    }

    /// Entries (not hidden) still in the ring directory, sorted: rings, and whatever a
    /// hostile test put there.
    pub fn rings(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.shm)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().as_encoded_bytes().first() != Some(&b'.'))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// A drainer command on these directories, with no stray settings inherited.
    pub fn drainer_cmd(&self, args: &[&str]) -> Command {
        let bin = self
            .drainer
            .as_ref()
            .expect("Dirs::drainer(BIN) names the binary before a drainer command");
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("OT_") || k.starts_with("PERF_DRAINER") || k == "NOTIFY_SOCKET" {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .arg("--shm-dir")
            .arg(&self.shm)
            .arg("--storage-dir")
            .arg(&self.storage)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `perf-drainer once --log-level debug` (a failed test if it takes over 30 s).
    pub fn once(&self) -> Output {
        self.once_with(|_| {})
    }

    /// [`Dirs::once`] with the command adjusted by `f`.
    pub fn once_with(&self, f: impl FnOnce(&mut Command)) -> Output {
        self.once_within(Duration::from_secs(30), f)
    }

    /// [`Dirs::once_with`] with its own time limit (the stress suite's loaded machine).
    pub fn once_within(&self, limit: Duration, f: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.drainer_cmd(&["once", "--log-level", "debug"]);
        f(&mut cmd);
        output_within(cmd, limit)
    }

    /// Starts `perf-drainer run --interval <interval> --log-level debug`.
    pub fn daemon(&self, interval: &str) -> Daemon {
        self.daemon_with(interval, |_| {})
    }

    /// [`Dirs::daemon`] with the command adjusted by `f`.
    pub fn daemon_with(&self, interval: &str, f: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = self.drainer_cmd(&["run", "--interval", interval, "--log-level", "debug"]);
        f(&mut cmd);
        Daemon::spawn(cmd)
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs::new()
    }
}

/// Checks and parses `robot_activity_data` bytes as the drainer writes them: complete
/// `\r\n` lines of three quoted fields, the last two numbers.
pub fn parse_rows(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let text = std::str::from_utf8(bytes).expect("CSV is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "partial last line: {:?}",
        &text[text.len().saturating_sub(80)..]
    );
    text.split_terminator("\r\n")
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "bad line {line:?}");
            let unq = |f: &str| {
                assert!(
                    f.len() >= 2 && f.starts_with('"') && f.ends_with('"'),
                    "bad field in {line:?}"
                );
                f[1..f.len() - 1].to_string()
            };
            (
                unq(fields[0]),
                unq(fields[1]).parse().expect("start"),
                unq(fields[2]).parse().expect("duration"),
            )
        })
        .collect()
}

/// One `robot_activity_context_data` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRow {
    pub state: String,
    pub start: u64,
    pub duration: u64,
    pub service: String,
    pub pid: u32,
    pub tid: u32,
}

/// Checks and parses `robot_activity_context_data` bytes: complete `\r\n` lines of six
/// quoted fields (state, start, duration, service, pid, tid).
pub fn parse_context_rows(bytes: &[u8]) -> Vec<ContextRow> {
    let text = std::str::from_utf8(bytes).expect("context table is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "partial last line in the context table"
    );
    text.split_terminator("\r\n")
        .map(|line| {
            let f: Vec<&str> = line
                .split(',')
                .map(|f| {
                    assert!(
                        f.len() >= 2 && f.starts_with('"') && f.ends_with('"'),
                        "bad field in {line:?}"
                    );
                    &f[1..f.len() - 1]
                })
                .collect();
            assert_eq!(f.len(), 6, "bad line {line:?}");
            ContextRow {
                state: f[0].to_string(),
                start: f[1].parse().expect("start"),
                duration: f[2].parse().expect("duration"),
                service: f[3].to_string(),
                pid: f[4].parse().expect("pid"),
                tid: f[5].parse().expect("tid"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_are_made_and_removed() {
        let dirs = Dirs::new();
        let root = dirs.root().to_path_buf();
        assert!(dirs.shm.is_dir() && !dirs.storage.exists());
        assert!(!root.starts_with("/dev/shm"));
        drop(dirs);
        assert!(!root.exists());
        let dirs = Dirs::with_storage();
        assert!(dirs.storage.is_dir());
        assert_eq!(dirs.csv(), b"");
    }

    #[test]
    fn parse_rows_reads_the_drainer_format() {
        let rows = parse_rows(b"\"CALIBRATING\",\"1\",\"2\"\r\n\"A\",\"3\",\"4\"\r\n");
        assert_eq!(rows, vec![("CALIBRATING".into(), 1, 2), ("A".into(), 3, 4)]);
    }

    #[test]
    fn parse_context_rows_reads_six_fields() {
        let rows = parse_context_rows(b"\"A\",\"1\",\"2\",\"svc\",\"10\",\"11\"\r\n");
        assert_eq!(
            rows,
            vec![ContextRow {
                state: "A".into(),
                start: 1,
                duration: 2,
                service: "svc".into(),
                pid: 10,
                tid: 11
            }]
        );
    }

    #[test]
    #[should_panic(expected = "partial last line")]
    fn parse_rows_refuses_a_partial_line() {
        parse_rows(b"\"A\",\"1\",\"2\"\r\n\"A\",\"1");
    }
}
