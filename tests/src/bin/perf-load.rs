//! `perf-load`: writes records through `perf-producer` for tests and benchmarks.
//!
//! ```text
//! perf-load --shm-dir DIR --service NAME --threads T --records N
//!           [--state NAME] [--hold-ms M] [--capacity C] [--run-id R]
//! ```
//!
//! Sets the process-wide tracker up (on, ring in `DIR`), has each of `T` threads write
//! `N` records, prints one JSON line `{"ring": PATH, "committed": X, "dropped": Y,
//! "run_id": R}`, keeps the ring alive for `M` ms, and exits 0.
//!
//! Each record's duration is its id (`perf_tests::load`):
//! bit 63 zero, bits 62..38 the run id (default: the pid), bits 37..28 the thread index,
//! bits 27..0 the thread's sequence number; the start is CLOCK_REALTIME when written.
//! `committed`/`dropped` count what each push returned, so a verifier can check that every
//! committed id reached the CSV exactly once (`perf_tests::load::verify_csv`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use perf_producer::{Config, Recorded, RobotActivityState};
use perf_tests::load::{encode, Id, SEQ_BITS, TAG_BITS, THREAD_BITS};

/// Writes records through perf-producer, each carrying a unique id in its duration.
#[derive(Debug, Parser)]
#[command(name = "perf-load", version)]
struct Cli {
    /// Ring directory.
    #[arg(long)]
    shm_dir: PathBuf,
    /// Service name of the ring.
    #[arg(long)]
    service: String,
    /// Writer threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..(1 << THREAD_BITS)))]
    threads: u32,
    /// Records per thread.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..(1 << SEQ_BITS)))]
    records: u32,
    /// State of every record (a CSV name such as CALIBRATING).
    #[arg(long, default_value = "CALIBRATING", value_parser = parse_state)]
    state: RobotActivityState,
    /// Milliseconds to keep the ring (and its liveness lock) after writing.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Ring capacity in records (a power of two).
    #[arg(long)]
    capacity: Option<u64>,
    /// Run id in every record's id; defaults to the pid, unique among running loads.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..(1 << TAG_BITS)))]
    run_id: Option<u32>,
}

fn parse_state(name: &str) -> Result<RobotActivityState, String> {
    RobotActivityState::from_name(name).ok_or_else(|| {
        format!(
            "unknown state {name:?}; known: {}",
            RobotActivityState::NAMES.join(", ")
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_id = cli.run_id.unwrap_or_else(std::process::id);
    let mut config = Config::new(cli.service.clone());
    config.enabled = Some(true);
    config.shm_dir = Some(cli.shm_dir.clone());
    config.capacity = cli.capacity;
    let tracker = match perf_producer::init(config) {
        Ok(tracker) => tracker,
        Err(e) => {
            eprintln!("perf-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(ring) = tracker.ring_path() else {
        let why = tracker
            .setup_error()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        eprintln!("perf-load: tracking could not be set up: {why}");
        return ExitCode::FAILURE;
    };
    let counts: Result<Vec<(u64, u64)>, String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cli.threads)
            .map(|thread| s.spawn(move || write(run_id, thread, cli.records, cli.state)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| "a writer thread panicked".to_owned())?
            })
            .collect()
    });
    let counts = match counts {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("perf-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let committed: u64 = counts.iter().map(|c| c.0).sum();
    let dropped: u64 = counts.iter().map(|c| c.1).sum();
    let line = serde_json::json!({
        "ring": ring,
        "committed": committed,
        "dropped": dropped,
        "run_id": run_id,
    });
    println!("{line}");
    std::thread::sleep(Duration::from_millis(cli.hold_ms));
    ExitCode::SUCCESS
}

/// One thread's records; returns (committed, dropped).
fn write(
    run_id: u32,
    thread: u32,
    records: u32,
    state: RobotActivityState,
) -> Result<(u64, u64), String> {
    let tracker = perf_producer::global();
    let (mut committed, mut dropped) = (0, 0);
    for seq in 0..records {
        let id = encode(Id {
            tag: run_id,
            thread,
            seq,
        })
        .map_err(|e| e.to_string())?;
        match tracker.record_raw(state, perf_producer::clock::realtime_ns(), id) {
            Recorded::Committed(_) => committed += 1,
            Recorded::Dropped => dropped += 1,
            Recorded::Disabled => return Err("tracking turned off while writing".into()),
        }
    }
    Ok((committed, dropped))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
