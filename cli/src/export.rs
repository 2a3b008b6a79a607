//! `perf-metrics export --chrome-trace`: robot activity as Trace Event Format JSON.
//!
//! Every record becomes a complete event (`"ph":"X"`) with `ts` and `dur` in microseconds,
//! written as exact decimals (`1722450000123456.789`). All events belong to process 1
//! ("robot activity"); each state gets its own track (a `tid`), named after the state with a
//! `thread_name` metadata event. Events on one track must not overlap partially, so when
//! records of one state overlap in time (two services in the same state at once) the
//! later one goes to an extra track of that state, named `STATE #2`, `STATE #3`, ….
//! Perfetto's UI (ui.perfetto.dev) and chrome://tracing open the file.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::data::Activity;
use crate::report::state_order;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Complete events (one per record).
    pub events: u64,
    /// Tracks (states plus the extra tracks overlaps needed).
    pub tracks: u64,
}

/// ns as microseconds with three exact decimals.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn json_string(s: &str) -> String {
    // A string always serialises.
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// Writes `records` (any order) as a trace to `out`.
pub fn write_chrome_trace(records: &[Activity], out: &mut dyn Write) -> io::Result<Summary> {
    let mut order: Vec<&Activity> = records.iter().collect();
    order.sort_by_key(|r| (r.start_ns, r.duration_ns));

    // Greedy interval partitioning per state: the first track whose last event has ended.
    let mut lanes: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut lane_of = Vec::with_capacity(order.len());
    for r in &order {
        let ends = lanes.entry(&r.state).or_default();
        let end = r.start_ns.saturating_add(r.duration_ns);
        let lane = match ends.iter().position(|&e| e <= r.start_ns) {
            Some(i) => {
                ends[i] = end;
                i
            }
            None => {
                ends.push(end);
                ends.len() - 1
            }
        };
        lane_of.push(lane);
    }
    let mut states: Vec<&str> = lanes.keys().copied().collect();
    states.sort_by_key(|s| state_order(s));
    let mut tid_of: HashMap<(&str, usize), u64> = HashMap::new();
    let mut tracks = Vec::new();
    for state in &states {
        for lane in 0..lanes[state].len() {
            let tid = tracks.len() as u64 + 1;
            tid_of.insert((state, lane), tid);
            let name = if lane == 0 {
                (*state).to_owned()
            } else {
                format!("{state} #{}", lane + 1)
            };
            tracks.push((tid, name));
        }
    }

    out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
    out.write_all(
        b"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"robot activity\"}}",
    )?;
    for (tid, name) in &tracks {
        write!(
            out,
            ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
            json_string(name)
        )?;
        write!(
            out,
            ",\n{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"sort_index\":{tid}}}}}"
        )?;
    }
    for (r, lane) in order.iter().zip(&lane_of) {
        let tid = tid_of[&(r.state.as_str(), *lane)];
        write!(
            out,
            ",\n{{\"name\":{},\"cat\":\"robot_activity\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{},\"dur\":{}}}",
            json_string(&r.state),
            micros(r.start_ns),
            micros(r.duration_ns)
        )?;
    }
    out.write_all(b"\n]}\n")?;
    out.flush()?;
    Ok(Summary {
        events: order.len() as u64,
        tracks: tracks.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: &str, start: u64, dur: u64) -> Activity {
        Activity {
            state: state.into(),
            start_ns: start,
            duration_ns: dur,
        }
    }

    #[test]
    fn overlapping_records_of_a_state_get_extra_tracks() {
        let records = [
            rec("CALIBRATING", 1_000, 5_000),
            rec("CALIBRATING", 2_000, 1_000), // overlaps the first
            rec("CALIBRATING", 6_000, 1_000), // fits after the first
            rec("ANALYZING_PROTOCOL", 1_500, 10),
        ];
        let mut buf = Vec::new();
        let s = write_chrome_trace(&records, &mut buf).unwrap();
        assert_eq!(
            s,
            Summary {
                events: 4,
                tracks: 3
            }
        );
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let names: Vec<(u64, &str)> = events
            .iter()
            .filter(|e| e["name"] == "thread_name")
            .map(|e| {
                (
                    e["tid"].as_u64().unwrap(),
                    e["args"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (1, "ANALYZING_PROTOCOL"),
                (2, "CALIBRATING"),
                (3, "CALIBRATING #2")
            ]
        );
        let x: Vec<(u64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| (e["tid"].as_u64().unwrap(), e["ts"].as_f64().unwrap()))
            .collect();
        assert_eq!(x, [(2, 1.0), (1, 1.5), (3, 2.0), (2, 6.0)]);
        assert!(String::from_utf8(buf)
            .unwrap()
            .contains("\"ts\":1.500,\"dur\":0.010"));
    }
}
