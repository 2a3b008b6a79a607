//! The compatibility fixtures: byte-exact output of the Python `performance-metrics`
//! package (`table/tests/compat/`, a copy of the project's shared `compat/` folder), and
//! the rows they hold, parsed once.
//!
//! Tests feed [`robot_activity`] or [`system_resource`] rows through a writer and compare
//! what it wrote with [`bytes`] of the same file, so the rows are never retyped in a test.
//! The rows are read with the `csv` crate, not with any writer under test, and
//! `fixture_rows_are_the_ones_the_readme_lists` below checks them against the fixture's
//! README, so an emptied or edited fixture cannot make the comparisons pass vacuously.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One row of `robot_activity_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    /// State name.
    pub state: String,
    /// Start, ns since the epoch (CLOCK_REALTIME).
    pub start: u64,
    /// Duration, ns.
    pub duration: u64,
}

/// One row of `system_resource_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    /// When the sample was taken, ns since the epoch.
    pub query_time: u64,
    /// The command line, joined by spaces.
    pub command: String,
    /// Process start, s since the epoch.
    pub running_since: f64,
    /// User CPU seconds.
    pub user_cpu_time: f64,
    /// System CPU seconds.
    pub system_cpu_time: f64,
    /// Share of memory, percent.
    pub memory_percent: f64,
}

/// The fixture folder (found from this crate's place in the workspace).
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../table/tests/compat")
}

/// The bytes of fixture file `name` (`robot_activity_data`, `…_headers`, …).
pub fn bytes(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The rows of `robot_activity_data`, in file order.
pub fn robot_activity() -> &'static [ActivityRow] {
    static ROWS: OnceLock<Vec<ActivityRow>> = OnceLock::new();
    ROWS.get_or_init(|| {
        fields("robot_activity_data", 3)
            .into_iter()
            .map(|f| ActivityRow {
                state: f[0].clone(),
                start: number(&f[1]),
                duration: number(&f[2]),
            })
            .collect()
    })
}

/// The state names of [`robot_activity`], in row order (each appears once).
pub fn states() -> Vec<&'static str> {
    robot_activity().iter().map(|r| r.state.as_str()).collect()
}

/// The rows of `system_resource_data`, in file order.
pub fn system_resource() -> &'static [ResourceRow] {
    static ROWS: OnceLock<Vec<ResourceRow>> = OnceLock::new();
    ROWS.get_or_init(|| {
        fields("system_resource_data", 6)
            .into_iter()
            .map(|f| ResourceRow {
                query_time: number(&f[0]),
                command: f[1].clone(),
                running_since: number(&f[2]),
                user_cpu_time: number(&f[3]),
                system_cpu_time: number(&f[4]),
                memory_percent: number(&f[5]),
            })
            .collect()
    })
}

/// Every record of fixture `name`, each checked to have `width` fields.
fn fields(name: &str, width: usize) -> Vec<Vec<String>> {
    let data = bytes(name);
    let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(data.as_slice())
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("fixture {name}: {e}"));
            r.iter().map(str::to_owned).collect()
        })
        .collect();
    assert!(!rows.is_empty(), "fixture {name} holds no rows");
    for row in &rows {
        assert_eq!(row.len(), width, "fixture {name}: row {row:?}");
    }
    rows
}

fn number<T: std::str::FromStr>(field: &str) -> T {
    field
        .parse()
        .unwrap_or_else(|_| panic!("fixture field {field:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the Markdown table under `## <table>` in the fixture's README.
    fn readme_table(table: &str) -> Vec<Vec<String>> {
        let readme = String::from_utf8(bytes("README.md")).unwrap();
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with(table))
            .unwrap_or_else(|| panic!("README has no section {table}"));
        section
            .lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
            .skip(1) // the column names
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().trim_matches('`').to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn fixture_rows_are_the_ones_the_readme_lists() {
        let activity: Vec<Vec<String>> = robot_activity()
            .iter()
            .map(|r| vec![r.state.clone(), r.start.to_string(), r.duration.to_string()])
            .collect();
        assert_eq!(activity, readme_table("robot_activity_data"));
        assert_eq!(activity.len(), 6);

        let readme = readme_table("system_resource_data");
        assert_eq!(readme.len(), system_resource().len());
        assert_eq!(readme.len(), 3);
        for (row, doc) in system_resource().iter().zip(&readme) {
            assert_eq!(row.query_time.to_string(), doc[0]);
            assert_eq!(row.command, doc[1]);
            let floats = [
                row.running_since,
                row.user_cpu_time,
                row.system_cpu_time,
                row.memory_percent,
            ];
            for (value, text) in floats.iter().zip(&doc[2..]) {
                assert_eq!(*value, text.parse::<f64>().unwrap(), "{row:?}");
            }
        }
    }

    #[test]
    fn states_follow_the_rows() {
        assert_eq!(states()[0], "ANALYZING_PROTOCOL");
        assert_eq!(states().len(), robot_activity().len());
    }
}
