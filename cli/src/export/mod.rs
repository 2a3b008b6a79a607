//! `perf-metrics export --chrome-trace`: a storage directory as Trace Event Format JSON,
//! for Perfetto's UI (ui.perfetto.dev) or chrome://tracing.
//!
//! - Every `robot_activity_data` row is one complete event (`"ph":"X"`, the state as its
//!   name, `ts`/`dur` in µs with the ns as exact decimals). With its context
//!   (`robot_activity_context_data`, matched by [`crate::join`]) it is on its thread's
//!   track in its service's process; without, on the per-state tracks of a "robot
//!   activity" process, as before the context table ([`tracks`]).
//! - `system_resource_data` becomes counter tracks (`"ph":"C"`), a process per command
//!   line with its CPU and resident memory ([`counters`]).
//!
//! Streamed: each row is written as it is read ([`trace`]), and what is kept is per
//! track, thread, process and process instance, never per row, so a month of data
//! exports in bounded memory.

mod counters;
mod lanes;
mod trace;
mod tracks;

use std::io::{self, Write};
use std::path::Path;

use crate::data::{self, Problem};
use crate::join::{self, JoinStats, ReadError};
use crate::window::Window;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Complete events (one per record in the window).
    pub events: u64,
    /// Of those, records without context (on the per-state tracks).
    pub without_context: u64,
    /// Thread and state tracks.
    pub tracks: u64,
    /// Service processes.
    pub processes: u64,
    /// Counter events.
    pub counter_events: u64,
    /// Command lines with counter tracks.
    pub commands: u64,
    /// How the activity tables matched.
    pub join: JoinStats,
    /// Whether `system_resource_data` was there.
    pub resources: bool,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A table could not be read (also: `robot_activity_data` is missing).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The trace could not be written.
    #[error("{0}")]
    Write(io::Error),
}

/// Writes the trace of `dir` (records starting and samples taken in `window`) to `out`;
/// each bad line of any table goes to `problems`. `system_resource_data` is optional.
pub fn write_chrome_trace(
    dir: &Path,
    window: Window,
    out: &mut dyn Write,
    problems: &mut dyn FnMut(Problem),
) -> Result<Summary, ExportError> {
    let mut trace = trace::Trace::new(out);
    // Its live file, or only rotated files of it.
    let context_spec = &perf_table::ROBOT_ACTIVITY_CONTEXT;
    let context = data::table_files(&dir.join(context_spec.name), context_spec)
        .is_ok_and(|parts| !parts.is_empty());
    let mut tracks = tracks::Tracks::new(&mut trace, context);
    let (mut events, mut without_context) = (0, 0);
    let join = join::for_each_activity(dir, problems, &mut |a, who| {
        if !window.contains(a.start_ns) {
            return;
        }
        let end = a.start_ns.saturating_add(a.duration_ns);
        let (pid, tid) = tracks.place(&mut trace, a.state, a.start_ns, end, who);
        trace.complete(pid, tid, a.state, a.start_ns, a.duration_ns);
        events += 1;
        without_context += u64::from(who.is_none());
    })?;
    let mut summary = Summary {
        events,
        without_context,
        tracks: tracks.tracks,
        processes: tracks.processes_made,
        join,
        ..Summary::default()
    };

    let resources = dir.join(perf_table::SYSTEM_RESOURCE.name);
    let mut counters = counters::Counters::default();
    let read = data::for_each_resource(&resources, problems, &mut |r| {
        if window.contains(r.query_time) {
            counters.add(&mut trace, &r);
        }
    });
    summary.resources = match read {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(source) => {
            return Err(ExportError::Read(ReadError {
                path: resources,
                source,
            }))
        }
    };
    counters.finish(&mut trace);
    summary.counter_events = counters.events;
    summary.commands = counters.commands() as u64;
    trace.finish().map_err(ExportError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;

    fn export(files: &[(&str, String)]) -> (Summary, Vec<Value>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut buf = Vec::new();
        let mut problems = Vec::new();
        let s = write_chrome_trace(dir.path(), Window::default(), &mut buf, &mut |p| {
            problems.push(p)
        })
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let v: Value = serde_json::from_slice(&buf).unwrap();
        (s, v["traceEvents"].as_array().unwrap().clone())
    }

    fn rows(rows: &[(&str, u64, u64)]) -> String {
        rows.iter()
            .map(|(s, a, b)| format!("\"{s}\",\"{a}\",\"{b}\"\r\n"))
            .collect()
    }

    fn context(rows: &[(&str, u64, u64, &str, u32, u32)]) -> String {
        rows.iter()
            .map(|(s, a, b, svc, pid, tid)| {
                format!("\"{s}\",\"{a}\",\"{b}\",\"{svc}\",\"{pid}\",\"{tid}\"\r\n")
            })
            .collect()
    }

    /// `(pid, tid)` → thread name, and pid → process name.
    fn names(events: &[Value]) -> (BTreeMap<(u64, u64), String>, BTreeMap<u64, String>) {
        let mut threads = BTreeMap::new();
        let mut processes = BTreeMap::new();
        for e in events.iter().filter(|e| e["ph"] == "M") {
            let pid = e["pid"].as_u64().unwrap();
            let name = e["args"]["name"].as_str().map(str::to_owned);
            match e["name"].as_str().unwrap() {
                "thread_name" => {
                    threads.insert((pid, e["tid"].as_u64().unwrap()), name.unwrap());
                }
                "process_name" => {
                    assert!(
                        processes.insert(pid, name.unwrap()).is_none(),
                        "named twice"
                    );
                }
                _ => {}
            }
        }
        (threads, processes)
    }

    #[test]
    fn overlapping_records_of_a_state_get_extra_tracks() {
        let data = rows(&[
            ("CALIBRATING", 1_000, 5_000),
            ("CALIBRATING", 2_000, 1_000), // overlaps the first
            ("CALIBRATING", 6_000, 1_000), // fits after the first
            ("ANALYZING_PROTOCOL", 1_500, 10),
        ]);
        let (s, events) = export(&[("robot_activity_data", data)]);
        assert_eq!((s.events, s.tracks, s.without_context), (4, 3, 4));
        assert!(!s.join.context_table);
        let (threads, processes) = names(&events);
        assert_eq!(
            processes,
            BTreeMap::from([(1, "robot activity".to_owned())])
        );
        let tracks: BTreeSet<&str> = threads.values().map(String::as_str).collect();
        assert_eq!(
            tracks,
            BTreeSet::from(["ANALYZING_PROTOCOL", "CALIBRATING", "CALIBRATING #2"])
        );
        let x: Vec<(&str, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| {
                let key = (1, e["tid"].as_u64().unwrap());
                (threads[&key].as_str(), e["ts"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(
            x,
            [
                ("CALIBRATING", 1.0),
                ("CALIBRATING #2", 2.0),
                ("CALIBRATING", 6.0),
                ("ANALYZING_PROTOCOL", 1.5)
            ]
        );
    }

    #[test]
    fn context_gives_a_process_per_service_and_a_track_per_thread() {
        let data = rows(&[
            ("ROBOT_STARTING_UP", 100, 50), // before the context table started
            ("CALIBRATING", 1_000, 10),
            ("RUNNING_PROTOCOL", 900, 500), // ends after its inner span: nests
            ("ANALYZING_PROTOCOL", 1_000, 10),
            ("ANALYZING_PROTOCOL", 1_005, 10), // same thread, partly over the one before
            ("CALIBRATING", 5_000, 1),         // pid 7 again, another service
        ]);
        let ctx = context(&[
            ("CALIBRATING", 1_000, 10, "robot-server", 7, 7),
            ("RUNNING_PROTOCOL", 900, 500, "robot-server", 7, 7),
            ("ANALYZING_PROTOCOL", 1_000, 10, "robot-server", 7, 8),
            ("ANALYZING_PROTOCOL", 1_005, 10, "robot-server", 7, 8),
            ("CALIBRATING", 5_000, 1, "analyzer", 7, 9),
        ]);
        let (s, events) = export(&[
            ("robot_activity_data", data),
            ("robot_activity_context_data", ctx),
        ]);
        assert_eq!((s.events, s.without_context, s.processes), (6, 1, 2));
        let (threads, processes) = names(&events);
        let synthetic = |pid: u64| pid >= u64::from(trace::SYNTHETIC_IDS);
        assert_eq!(processes[&7], "robot-server");
        let by_name: BTreeMap<&str, u64> =
            processes.iter().map(|(p, n)| (n.as_str(), *p)).collect();
        assert!(synthetic(by_name["analyzer (pid 7)"]));
        assert!(synthetic(
            by_name["robot activity (records without context)"]
        ));
        assert_eq!(threads[&(7, 7)], "main thread 7");
        assert_eq!(threads[&(7, 8)], "thread 8");
        let extra: Vec<_> = threads.iter().filter(|(_, n)| n.contains("#2")).collect();
        assert_eq!(extra.len(), 1, "{threads:?}");
        assert!(extra[0].1.starts_with("thread 8 #2"));
        // Every record exactly once, on the track of its thread.
        let x: Vec<(String, u64, u64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| {
                let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
                (
                    threads[&key].clone(),
                    key.0,
                    (e["ts"].as_f64().unwrap() * 1e3) as u64,
                )
            })
            .collect();
        assert_eq!(x.len(), 6);
        assert_eq!(x[1], ("main thread 7".to_owned(), 7, 1_000));
        assert_eq!(x[2], ("main thread 7".to_owned(), 7, 900));
        assert_eq!(x[3].0, "thread 8");
        assert!(x[4].0.starts_with("thread 8 #2"));
        assert_eq!(x[5].1, by_name["analyzer (pid 7)"]);
    }

    #[test]
    fn resources_become_cpu_and_memory_counters_per_command() {
        let s = 1_000_000_000u64;
        let res = |t: u64, cmd: &str, since: f64, cpu: f64, mem: f64| {
            format!("\"{t}\",\"{cmd}\",\"{since}\",\"{cpu}\",\"0.0\",\"{mem}\"\r\n")
        };
        let text = [
            res(10 * s, "python3 -m robot_server", 1.0, 1.0, 2.0),
            res(12 * s, "python3 -m robot_server", 1.0, 2.0, 2.5),
            // Restarted: a new instance takes the same tracks.
            res(14 * s, "python3 -m robot_server", 13.0, 0.1, 1.0),
            res(16 * s, "python3 -m robot_server", 13.0, 0.6, 1.0),
            res(16 * s, "other", 1.0, 5.0, 0.1),
        ]
        .concat();
        let (sum, events) = export(&[
            ("robot_activity_data", String::new()),
            ("system_resource_data", text),
        ]);
        assert!(sum.resources);
        assert_eq!(sum.commands, 2);
        let (_, processes) = names(&events);
        let pid = *processes
            .iter()
            .find(|(_, n)| *n == "python3 -m robot_server")
            .unwrap()
            .0;
        let counters: Vec<(String, f64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "C" && e["pid"] == pid)
            .map(|e| {
                let (key, value) = e["args"].as_object().unwrap().iter().next().unwrap();
                (
                    format!("{} {key}", e["name"].as_str().unwrap()),
                    e["ts"].as_f64().unwrap() / 1e6,
                    value.as_f64().unwrap(),
                )
            })
            .collect();
        let cpu: Vec<(f64, f64)> = counters
            .iter()
            .filter(|c| c.0 == "CPU % of one core")
            .map(|c| (c.1, c.2))
            .collect();
        // 1 s of CPU over 2 s from t = 10, the line ended at 12 when the restart took its
        // place, then 0.5 s over 2 s from 14, ended at 16.
        assert_eq!(cpu, [(10.0, 50.0), (12.0, 0.0), (14.0, 25.0), (16.0, 0.0)]);
        let mem: Vec<f64> = counters
            .iter()
            .filter(|c| c.0 == "resident memory % of RAM")
            .map(|c| c.2)
            .collect();
        assert_eq!(mem, [2.0, 2.5, 1.0, 1.0]);
        assert_eq!(sum.counter_events, 8 + 2);
    }
}
