//! The summary row each test prints at its end, also appended to `$PERF_STRESS_SUMMARY`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The figures a test reports at its end.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Test name.
    pub test: String,
    /// Seed of the run.
    pub seed: u64,
    /// Trials (rounds, waves, iterations: whatever the test repeats).
    pub trials: u64,
    /// Processes killed (SIGKILL or a failpoint).
    pub kills: u64,
    /// Records producers reported committed (or, for killed producers, that the drainer
    /// accounted for).
    pub written: u64,
    /// Committed records missing from the CSV.
    pub lost: u64,
    /// Records in the CSV more than once.
    pub duplicated: u64,
    /// Records dropped because a ring was full (counted by the producer).
    pub dropped: u64,
    /// Hostile files or inputs tried.
    pub bad_files: u64,
    /// Rotations the tables went through (the drainer's own, or logrotate's done by the
    /// test) with every record still there exactly once.
    pub rotations: u64,
    /// Drainer kills inside a rotation (at one of its failpoints, or found interrupted by
    /// the next start).
    pub rotation_kills: u64,
    /// Free-form note (faults injected, skips).
    pub note: String,
    started: Option<Instant>,
}

/// Header of the summary table.
pub const SUMMARY_HEADER: &str = "| test | seed | trials | kills | written | lost | duplicated | dropped | bad files | rotations | rotation kills | seconds | note |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

impl Summary {
    /// A summary for `test`, its clock started now.
    pub fn new(test: &str, seed: u64) -> Summary {
        Summary {
            test: test.to_owned(),
            seed,
            started: Some(Instant::now()),
            ..Summary::default()
        }
    }

    /// The table row.
    pub fn line(&self) -> String {
        let secs = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            self.test,
            self.seed,
            self.trials,
            self.kills,
            self.written,
            self.lost,
            self.duplicated,
            self.dropped,
            self.bad_files,
            self.rotations,
            self.rotation_kills,
            secs,
            self.note
        )
    }

    /// Prints the table row (with its header) and appends it to `$PERF_STRESS_SUMMARY`.
    pub fn report(&self) {
        let line = self.line();
        eprintln!("\n{SUMMARY_HEADER}\n{line}\n");
        if let Some(path) = std::env::var_os("PERF_STRESS_SUMMARY") {
            let path = PathBuf::from(path);
            let fresh = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| {
                    if fresh {
                        writeln!(f, "{SUMMARY_HEADER}")?;
                    }
                    writeln!(f, "{line}")
                });
            if let Err(e) = written {
                eprintln!("cannot append the summary to {}: {e}", path.display());
            }
        }
    }
}
