//! Reading the tables back: `robot_activity_data`, `robot_activity_context_data` and
//! `system_resource_data`.
//!
//! The files are what `perf-drainer`, the system resource tracker or the Python package
//! wrote: no header row, every field quoted, rows ending in `\r\n`, integers in decimal and
//! floats as Python's `repr` writes them. Files pulled off robots are not always clean (a
//! row cut short by a power cut, a hand edit), so a line that does not parse is reported as
//! a [`Problem`] with its file and line number and the rest of the file is still read.
//!
//! A table is its whole history ([`table_files`]): the numbered files a daemon rotated out
//! (`<table>.<n>.gz`, or a plain `<table>.<n>` not yet compressed), oldest first, then the
//! live file. Every reader here goes through it, so `report` and `export` see the same
//! rows.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use perf_table::{archive, TableSpec, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT, SYSTEM_RESOURCE};

/// One `robot_activity_data` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The state name, e.g. `RUNNING_PROTOCOL`.
    pub state: String,
    /// When the block started, ns since the epoch (CLOCK_REALTIME).
    pub start_ns: u64,
    /// How long it took, ns.
    pub duration_ns: u64,
}

/// One `system_resource_data` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// When the process was read, ns since the epoch.
    pub query_time: u64,
    /// The process's command line.
    pub command: String,
    /// Process start, seconds since the epoch.
    pub running_since: f64,
    /// User CPU seconds used so far (cumulative).
    pub user_cpu_time: f64,
    /// System CPU seconds used so far (cumulative).
    pub system_cpu_time: f64,
    /// Resident memory as a percentage of the machine's.
    pub memory_percent: f64,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number where the bad row starts.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// One `robot_activity_data` row as read, borrowing the state name from the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRef<'a> {
    /// The state name.
    pub state: &'a str,
    /// When the block started, ns since the epoch.
    pub start_ns: u64,
    /// How long it took, ns.
    pub duration_ns: u64,
}

/// One `robot_activity_context_data` row as read: the activity row and who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextRef<'a> {
    /// The same three columns as `robot_activity_data`.
    pub activity: ActivityRef<'a>,
    /// The ring's service name.
    pub service: &'a str,
    /// The producer's pid (the ring's creator).
    pub pid: u32,
    /// The writing thread's kernel tid.
    pub tid: u32,
}

/// One `system_resource_data` row as read, borrowing the command line from the reader.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRef<'a> {
    /// When the process was read, ns since the epoch.
    pub query_time: u64,
    /// The command line (invalid UTF-8 replaced).
    pub command: std::borrow::Cow<'a, str>,
    /// Process start, seconds since the epoch.
    pub running_since: f64,
    /// User CPU seconds used so far.
    pub user_cpu_time: f64,
    /// System CPU seconds used so far.
    pub system_cpu_time: f64,
    /// Resident memory, % of the machine's.
    pub memory_percent: f64,
}

/// Streams `robot_activity_data` at `path` (and the files rotated out of it, oldest first,
/// see [`table_files`]): each good row to `each`, each bad line to `problems`. Memory stays
/// bounded whatever the files' size.
pub fn for_each_activity(
    path: &Path,
    problems: &mut dyn FnMut(Problem),
    each: &mut dyn FnMut(ActivityRef<'_>),
) -> io::Result<()> {
    read_table(path, &ROBOT_ACTIVITY, problems, &mut |f| {
        each(activity_row(f)?);
        Ok(())
    })
}

/// The first three fields of an activity row (either activity table).
fn activity_row<'a>(f: &[&'a [u8]]) -> Result<ActivityRef<'a>, String> {
    let state = text(f[0], "state")?;
    if state.is_empty() {
        return Err("state is empty".into());
    }
    Ok(ActivityRef {
        state,
        start_ns: whole(f[1], "func_start")?,
        duration_ns: whole(f[2], "duration")?,
    })
}

/// Streams `robot_activity_context_data` at `path`, as [`for_each_activity`] does.
pub fn for_each_context(
    path: &Path,
    problems: &mut dyn FnMut(Problem),
    each: &mut dyn FnMut(ContextRef<'_>),
) -> io::Result<()> {
    read_table(path, &ROBOT_ACTIVITY_CONTEXT, problems, &mut |f| {
        let activity = activity_row(f)?;
        let service = text(f[3], "service")?;
        if service.is_empty() {
            return Err("service is empty".into());
        }
        each(ContextRef {
            activity,
            service,
            pid: id(f[4], "pid")?,
            tid: id(f[5], "tid")?,
        });
        Ok(())
    })
}

/// Streams `system_resource_data` at `path`, as [`for_each_activity`] does.
pub fn for_each_resource(
    path: &Path,
    problems: &mut dyn FnMut(Problem),
    each: &mut dyn FnMut(ResourceRef<'_>),
) -> io::Result<()> {
    read_table(path, &SYSTEM_RESOURCE, problems, &mut |f| {
        each(ResourceRef {
            query_time: whole(f[0], "query_time")?,
            // Command lines come from /proc and may hold any bytes; show them as best we can.
            command: String::from_utf8_lossy(f[1]),
            running_since: real(f[2], "running_since")?,
            user_cpu_time: real(f[3], "user_cpu_time")?,
            system_cpu_time: real(f[4], "system_cpu_time")?,
            memory_percent: real(f[5], "memory_percent")?,
        });
        Ok(())
    })
}

/// Reads all of `robot_activity_data` at `path` (with its rotated files) into memory; bad
/// lines go to `problems`.
pub fn read_activity(path: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<Activity>> {
    let mut rows = Vec::new();
    for_each_activity(path, &mut |p| problems.push(p), &mut |a| {
        rows.push(Activity {
            state: a.state.to_owned(),
            start_ns: a.start_ns,
            duration_ns: a.duration_ns,
        })
    })?;
    Ok(rows)
}

/// Reads all of `system_resource_data` at `path` (with its rotated files) into memory; bad
/// lines go to `problems`.
pub fn read_resources(path: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<Resource>> {
    let mut rows = Vec::new();
    for_each_resource(path, &mut |p| problems.push(p), &mut |r| {
        rows.push(Resource {
            query_time: r.query_time,
            command: r.command.into_owned(),
            running_since: r.running_since,
            user_cpu_time: r.user_cpu_time,
            system_cpu_time: r.system_cpu_time,
            memory_percent: r.memory_percent,
        })
    })?;
    Ok(rows)
}

fn text<'a>(field: &'a [u8], column: &str) -> Result<&'a str, String> {
    std::str::from_utf8(field).map_err(|_| format!("{column} is not UTF-8"))
}

fn whole(field: &[u8], column: &str) -> Result<u64, String> {
    let s = text(field, column)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{column} {s:?} is not a whole number of nanoseconds"
        ));
    }
    s.parse()
        .map_err(|_| format!("{column} {s:?} is too large (more than 2^64 - 1)"))
}

/// A pid or tid: a whole number that fits in 32 bits.
fn id(field: &[u8], column: &str) -> Result<u32, String> {
    let s = text(field, column)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{column} {s:?} is not a whole number"));
    }
    s.parse()
        .map_err(|_| format!("{column} {s:?} is too large (more than 2^32 - 1)"))
}

fn real(field: &[u8], column: &str) -> Result<f64, String> {
    let s = text(field, column)?;
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{column} {s:?} is not a finite number")),
        Err(_) => Err(format!("{column} {s:?} is not a number")),
    }
}

/// One file holding rows of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePart {
    /// Where it is.
    pub path: PathBuf,
    /// A rotated file (possibly gzip-compressed), not the live one.
    rotated: Option<archive::Segment>,
}

impl TablePart {
    /// Its rows, decompressed.
    pub fn open(&self) -> io::Result<Box<dyn io::Read>> {
        match &self.rotated {
            Some(seg) => seg.open(),
            None => Ok(Box::new(std::fs::File::open(&self.path)?)),
        }
    }
}

/// The files holding the rows of the table whose live file is `live`, oldest first: the
/// files rotated out of it (when `live` has the table's own name: `<name>.<n>.gz` or
/// `<name>.<n>` in the same directory, by number), then `live` if it exists. Neither:
/// `NotFound`.
pub fn table_files(live: &Path, spec: &TableSpec) -> io::Result<Vec<TablePart>> {
    let mut parts = Vec::new();
    if live.file_name() == Some(std::ffi::OsStr::new(spec.name)) {
        let dir = live.parent().filter(|d| !d.as_os_str().is_empty());
        for seg in archive::segments(dir.unwrap_or(Path::new(".")), spec)? {
            parts.push(TablePart {
                path: seg.path.clone(),
                rotated: Some(seg),
            });
        }
    }
    match std::fs::metadata(live) {
        Ok(_) => parts.push(TablePart {
            path: live.to_path_buf(),
            rotated: None,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !parts.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(parts)
}

/// Streams every row of the table at `path`, its rotated files first ([`table_files`]),
/// through `parse`, giving each bad line to `problems` with its own file and line (see
/// [`crate::stream`] for what is a bad line).
fn read_table(
    path: &Path,
    spec: &TableSpec,
    problems: &mut dyn FnMut(Problem),
    parse: &mut crate::stream::RowFn<'_>,
) -> io::Result<()> {
    for part in table_files(path, spec)? {
        let input = io::BufReader::with_capacity(1 << 16, part.open()?);
        crate::stream::for_each_row(input, spec.columns, parse, &mut |bad| {
            problems(Problem {
                file: part.path.clone(),
                line: bad.line,
                reason: bad.reason,
            })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(bytes: &[u8]) -> (Vec<Activity>, Vec<(u64, String)>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("robot_activity_data");
        std::fs::write(&path, bytes).unwrap();
        let mut problems = Vec::new();
        let rows = read_activity(&path, &mut problems).unwrap();
        (
            rows,
            problems.into_iter().map(|p| (p.line, p.reason)).collect(),
        )
    }

    #[test]
    fn reads_rows_and_reports_bad_lines_by_number() {
        let (rows, problems) = activity(
            b"\"A\",\"1\",\"2\"\r\n\"B\",\"x\",\"2\"\r\n\"C\",\"3\"\r\n\r\n\"D\",\"5\",\"6\"\r\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].state, "D");
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, 2);
        assert!(problems[0].1.contains("func_start \"x\""), "{problems:?}");
        assert_eq!(problems[1].0, 3);
        assert!(problems[1].1.contains("found 2"), "{problems:?}");
    }

    #[test]
    fn an_unclosed_quote_does_not_hide_the_rest() {
        let (rows, problems) = activity(
            b"\"A\",\"1\",\"2\"\r\n\"B\",\"1,\"2\r\n\"C\",\"3\",\"4\"\r\n\"D\",\"5\",\"6\"\r\n",
        );
        let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
        assert_eq!(states, ["A", "C", "D"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, 2);
    }

    #[test]
    fn a_row_cut_short_at_the_end_is_reported() {
        let (rows, problems) = activity(b"\"A\",\"1\",\"2\"\r\n\"B\",\"1\",\"2");
        assert_eq!(rows.len(), 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, 2);
        // An empty file is just empty.
        assert_eq!(activity(b""), (vec![], vec![]));
    }

    #[test]
    fn rotated_files_come_first_oldest_first_then_the_live_file() {
        use perf_table::{Rotation, Row, TableFile};
        let dir = tempfile::tempdir().unwrap();
        let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
        let mut buf = Vec::new();
        let cap = Rotation {
            max_bytes: 30,
            keep: 10,
        };
        for i in 0..5u64 {
            buf.clear();
            Row::new(&mut buf).str("A").uint(i).uint(i).end();
            perf_table::archive::rotate_if_due(&mut table, &cap, buf.len() as u64).unwrap();
            table.append(&buf).unwrap();
        }
        // A rotation not yet compressed (a kill before settle) is read as it is; a bad
        // line is reported in its own file.
        table.append(b"\"A\",\"x\",\"1\"\r\n").unwrap();
        table.rotate().unwrap();
        buf.clear();
        Row::new(&mut buf).str("A").uint(5).uint(5).end();
        table.append(&buf).unwrap();
        let live = dir.path().join("robot_activity_data");
        let parts = table_files(&live, &ROBOT_ACTIVITY).unwrap();
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(parts[..2]
            .iter()
            .all(|p| p.path.extension().unwrap() == "gz"));
        assert_eq!(parts[3].path, live);
        let mut problems = Vec::new();
        let rows = read_activity(&live, &mut problems).unwrap();
        let starts: Vec<u64> = rows.iter().map(|r| r.start_ns).collect();
        assert_eq!(starts, [0, 1, 2, 3, 4, 5]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, dir.path().join("robot_activity_data.3"));
        assert_eq!(problems[0].line, 2);
        // Only rotated files left (a kill between the rename and the new live file).
        std::fs::remove_file(&live).unwrap();
        assert_eq!(read_activity(&live, &mut Vec::new()).unwrap().len(), 5);
        // Nothing at all is NotFound, as before.
        let empty = tempfile::tempdir().unwrap();
        let missing = empty.path().join("robot_activity_data");
        let err = read_activity(&missing, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_header_line_is_skipped_and_numbers_are_checked() {
        let (rows, problems) = activity(
            b"state,func_start,duration\r\n\"A\",\"1\",\"18446744073709551616\"\r\n\"A\",\"-1\",\"2\"\r\n\"\",\"1\",\"2\"\r\n",
        );
        assert!(rows.is_empty());
        let lines: Vec<u64> = problems.iter().map(|p| p.0).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(problems[0].1.contains("too large"));
    }
}
