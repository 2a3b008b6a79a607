//! The Trace Event Format's rules, checked on an exported trace (Perfetto's
//! trace_processor is not installable here: its Python package downloads the binary from
//! the network at run time). The exporter writes one event per line, so each event's
//! `ts` and `dur` are also read from its text, exactly, as ns.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One complete event: name, pid, tid, start and duration in ns (exact).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Complete {
    pub name: String,
    pub pid: u64,
    pub tid: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
}

/// A counter sample: process, counter name and series, time in ns, value.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSample {
    pub pid: u64,
    pub name: String,
    pub series: String,
    pub t_ns: u64,
    pub value: f64,
}

/// A trace, checked and taken apart.
#[derive(Debug, Default)]
pub struct Checked {
    pub processes: BTreeMap<u64, String>,
    pub threads: BTreeMap<(u64, u64), String>,
    pub complete: Vec<Complete>,
    pub counters: Vec<CounterSample>,
}

/// `"1722450000123456.789"` µs as ns, exactly.
fn exact_ns(text: &str) -> u64 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= 3, "{text}: more than ns precision");
    let frac = format!("{frac:0<3}");
    whole.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap()
}

/// The number after `"key":` in an event's text.
fn number_text<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap();
    &rest[..end]
}

fn uint(e: &Value, key: &str) -> u64 {
    e[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {e}"))
}

/// Parses `bytes` and checks every event against the format's rules: complete events have
/// a name, pid, tid, ts and dur (≥ 0); metadata events are known names with the right
/// args; counter events have a name, pid, ts and numeric args; every process and thread
/// that has events is named; on one thread events nest or are disjoint, never partly
/// overlap.
pub fn check(bytes: &[u8]) -> Checked {
    let json: Value = serde_json::from_slice(bytes).expect("the trace is JSON");
    let events = json["traceEvents"]
        .as_array()
        .expect("traceEvents is an array");
    let text = std::str::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('{'))
        .collect();
    assert_eq!(lines.len(), events.len(), "one event per line");
    let mut c = Checked::default();
    for (e, line) in events.iter().zip(&lines) {
        let pid = uint(e, "pid");
        match e["ph"].as_str().expect("ph is a string") {
            "X" => {
                let name = e["name"].as_str().expect("X has a name").to_owned();
                assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
                c.complete.push(Complete {
                    name,
                    pid,
                    tid: uint(e, "tid"),
                    start_ns: exact_ns(number_text(line, "ts")),
                    duration_ns: exact_ns(number_text(line, "dur")),
                });
            }
            "M" => {
                let name = e["name"].as_str().expect("M has a name");
                match name {
                    "process_name" => {
                        let n = e["args"]["name"].as_str().expect("args.name").to_owned();
                        assert!(
                            c.processes.insert(pid, n).is_none(),
                            "pid {pid} named twice"
                        );
                    }
                    "thread_name" => {
                        let n = e["args"]["name"].as_str().expect("args.name").to_owned();
                        let key = (pid, uint(e, "tid"));
                        assert!(c.threads.insert(key, n).is_none(), "{key:?} named twice");
                    }
                    "thread_sort_index" => {
                        e["args"]["sort_index"].as_i64().expect("args.sort_index");
                    }
                    other => panic!("unknown metadata event {other}"),
                }
            }
            "C" => {
                let args = e["args"].as_object().expect("C has args");
                assert!(!args.is_empty(), "{e}");
                for (series, value) in args {
                    c.counters.push(CounterSample {
                        pid,
                        name: e["name"].as_str().expect("C has a name").to_owned(),
                        series: series.clone(),
                        t_ns: exact_ns(number_text(line, "ts")),
                        value: value.as_f64().expect("counter values are numbers"),
                    });
                }
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    for x in &c.complete {
        assert!(
            c.processes.contains_key(&x.pid),
            "pid {} has no name",
            x.pid
        );
        assert!(
            c.threads.contains_key(&(x.pid, x.tid)),
            "{x:?}: thread has no name"
        );
    }
    for s in &c.counters {
        assert!(
            c.processes.contains_key(&s.pid),
            "pid {} has no name",
            s.pid
        );
    }
    // Nesting, per thread: sorted by start (longest first on ties), each event must end
    // by the end of every open event it starts inside.
    let mut by_thread: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
    for x in &c.complete {
        by_thread
            .entry((x.pid, x.tid))
            .or_default()
            .push((x.start_ns, x.start_ns + x.duration_ns));
    }
    for (thread, mut spans) in by_thread {
        spans.sort_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
        let mut open: Vec<u64> = Vec::new();
        for (s, e) in spans {
            while open.last().is_some_and(|&end| end <= s) {
                open.pop();
            }
            if let Some(&end) = open.last() {
                assert!(
                    e <= end,
                    "{thread:?}: [{s}, {e}] partly overlaps one ending at {end}"
                );
            }
            open.push(e);
        }
    }
    c
}

/// The distinct counter tracks of `pid`, as Perfetto names them (`name series`).
pub fn counter_tracks(c: &Checked, pid: u64) -> BTreeSet<String> {
    c.counters
        .iter()
        .filter(|s| s.pid == pid)
        .map(|s| format!("{} {}", s.name, s.series))
        .collect()
}
