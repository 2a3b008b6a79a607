//! Reading the two tables back: `robot_activity_data` and `system_resource_data`.
//!
//! The files are what `perf-drainer`, the system resource tracker or the Python package
//! wrote: no header row, every field quoted, rows ending in `\r\n`, integers in decimal and
//! floats as Python's `repr` writes them. Files pulled off robots are not always clean (a
//! row cut short by a power cut, a hand edit), so a line that does not parse is reported as
//! a [`Problem`] with its file and line number and the rest of the file is still read.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use perf_table::{TableSpec, ROBOT_ACTIVITY, SYSTEM_RESOURCE};

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

/// Reads `robot_activity_data` at `path`; bad lines go to `problems`.
pub fn read_activity(path: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<Activity>> {
    read_table(path, &ROBOT_ACTIVITY, problems, |f| {
        let state = text(f[0], "state")?;
        if state.is_empty() {
            return Err("state is empty".into());
        }
        Ok(Activity {
            state: state.to_owned(),
            start_ns: whole(f[1], "func_start")?,
            duration_ns: whole(f[2], "duration")?,
        })
    })
}

/// Reads `system_resource_data` at `path`; bad lines go to `problems`.
pub fn read_resources(path: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<Resource>> {
    read_table(path, &SYSTEM_RESOURCE, problems, |f| {
        Ok(Resource {
            query_time: whole(f[0], "query_time")?,
            // Command lines come from /proc and may hold any bytes; show them as best we can.
            command: String::from_utf8_lossy(f[1]).into_owned(),
            running_since: real(f[2], "running_since")?,
            user_cpu_time: real(f[3], "user_cpu_time")?,
            system_cpu_time: real(f[4], "system_cpu_time")?,
            memory_percent: real(f[5], "memory_percent")?,
        })
    })
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

fn real(field: &[u8], column: &str) -> Result<f64, String> {
    let s = text(field, column)?;
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{column} {s:?} is not a finite number")),
        Err(_) => Err(format!("{column} {s:?} is not a number")),
    }
}

/// Reads every row of one table, parsing each with `parse` (given exactly as many fields as
/// the table has columns).
///
/// A row that fails is reported and skipped. If it spread over several lines (an unclosed
/// quote swallows the lines after it), reading starts again on the line after its first,
/// so one bad quote cannot hide the rest of the file. Every row the writers write ends in a
/// line break, so text after the last one is a row cut short (a power cut mid-write): it is
/// reported, not guessed at. A first line that is the column names is skipped silently
/// (some scripts add one).
fn read_table<T>(
    path: &Path,
    spec: &TableSpec,
    problems: &mut Vec<Problem>,
    parse: impl Fn(&[&[u8]]) -> Result<T, String>,
) -> io::Result<Vec<T>> {
    let all = std::fs::read(path)?;
    let complete = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let (data, tail) = all.split_at(complete);
    let columns = spec.columns;
    let mut rows = Vec::new();
    // Line numbers are counted here from byte offsets: the csv crate's own line count lags
    // behind with `\r\n` endings.
    let mut lines = LineCounter::default();
    let mut problem = |at: usize, lines: &mut LineCounter, reason: String| {
        problems.push(Problem {
            file: path.to_path_buf(),
            line: lines.line_at(data, at),
            reason,
        });
    };
    // Where the current reader starts in `data`.
    let mut offset = 0usize;
    let mut record = csv::ByteRecord::new();
    'restart: while offset < data.len() {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&data[offset..]);
        loop {
            let (start, end) = match reader.read_byte_record(&mut record) {
                Ok(false) => break 'restart,
                Ok(true) => {
                    let start = offset + record.position().map_or(0, |p| p.byte() as usize);
                    let end = offset + reader.position().byte() as usize;
                    (start, end.max(start))
                }
                Err(e) => {
                    // Not expected from an in-memory byte reader; report and resync anyway.
                    let at = offset + e.position().map_or(0, |p| p.byte() as usize);
                    problem(at, &mut lines, format!("unreadable: {e}"));
                    match next_line(data, at) {
                        Some(next) if next > offset => {
                            offset = next;
                            continue 'restart;
                        }
                        _ => break 'restart,
                    }
                }
            };
            // The reported start may sit on the previous row's line break.
            let start = start
                + data[start..end]
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
            let fields: Vec<&[u8]> = record.iter().collect();
            let result = if fields.len() == columns.len() {
                parse(&fields)
            } else {
                Err(format!(
                    "expected {} fields ({}), found {}",
                    columns.len(),
                    columns.join(","),
                    fields.len()
                ))
            };
            let reason = match result {
                Ok(row) => {
                    rows.push(row);
                    continue;
                }
                Err(_)
                    if start == 0
                        && fields
                            .iter()
                            .copied()
                            .eq(columns.iter().map(|c| c.as_bytes())) =>
                {
                    continue;
                }
                Err(reason) => reason,
            };
            problem(start, &mut lines, reason);
            let text = &data[start..end];
            let body = text
                .iter()
                .rposition(|&b| b != b'\r' && b != b'\n')
                .map_or(&text[..0], |i| &text[..=i]);
            if body.contains(&b'\n') {
                match next_line(data, start) {
                    Some(next) => {
                        offset = next;
                        continue 'restart;
                    }
                    None => break 'restart,
                }
            }
        }
    }
    if !tail.iter().all(u8::is_ascii_whitespace) {
        problem(
            complete,
            &mut lines,
            "the file ends in the middle of this row (no line break after it); skipped".into(),
        );
    }
    Ok(rows)
}

/// Line numbers of byte offsets, for offsets that never go backwards.
#[derive(Debug)]
struct LineCounter {
    pos: usize,
    line: u64,
}

impl Default for LineCounter {
    fn default() -> Self {
        LineCounter { pos: 0, line: 1 }
    }
}

impl LineCounter {
    fn line_at(&mut self, data: &[u8], at: usize) -> u64 {
        let at = at.min(data.len());
        if at > self.pos {
            self.line += data[self.pos..at].iter().filter(|&&b| b == b'\n').count() as u64;
            self.pos = at;
        }
        self.line
    }
}

/// Byte offset of the line after the one containing `at`, if there is one.
fn next_line(data: &[u8], at: usize) -> Option<usize> {
    let at = at.min(data.len());
    data[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i + 1)
        .filter(|&next| next < data.len())
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
