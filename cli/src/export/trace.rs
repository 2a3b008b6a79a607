//! Writing Trace Event Format JSON one event at a time: `{"traceEvents":[` … `]}` with
//! one event per line, so that nothing but the current event is held.
//!
//! Times are microseconds written as exact decimals of the nanoseconds
//! (`1722450000123456.789`): a JSON reader that keeps the text keeps every ns. Metadata
//! events may come anywhere in the array (the format does not order events; Perfetto and
//! chrome://tracing sort them), so a process or thread is named where it first appears.
//! A write error is kept and ends all further writing; [`Trace::finish`] returns it.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};

/// The first pid or tid that is never a real one: Linux's `PID_MAX_LIMIT` (2^22).
/// Processes and tracks that are not a real process or thread get ids from here on.
pub(super) const SYNTHETIC_IDS: u32 = 1 << 22;

/// ns shown as microseconds with three exact decimals, formatted in place.
pub(super) struct Micros(pub(super) u64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

fn json_string(s: &str) -> String {
    // A string always serialises.
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// Event names quoted for JSON once each (a few states and counters, written millions of
/// times); past this many distinct names each is quoted where it is written.
const QUOTED_LIMIT: usize = 256;

/// The trace being written.
pub(super) struct Trace<'w> {
    out: &'w mut dyn Write,
    first: bool,
    error: Option<io::Error>,
    next_synthetic: u32,
    quoted: HashMap<String, String>,
}

impl<'w> Trace<'w> {
    /// Starts the trace on `out`.
    pub(super) fn new(out: &'w mut dyn Write) -> Trace<'w> {
        let mut t = Trace {
            out,
            first: true,
            error: None,
            next_synthetic: SYNTHETIC_IDS,
            quoted: HashMap::new(),
        };
        t.raw(format_args!(
            "{{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
        ));
        t
    }

    /// A pid or tid no real process or thread has.
    pub(super) fn synthetic_id(&mut self) -> u32 {
        self.next_synthetic = self.next_synthetic.saturating_add(1);
        self.next_synthetic - 1
    }

    fn raw(&mut self, args: fmt::Arguments<'_>) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_fmt(args) {
                self.error = Some(e);
            }
        }
    }

    fn event(&mut self, args: fmt::Arguments<'_>) {
        if !self.first {
            self.raw(format_args!(",\n"));
        }
        self.first = false;
        self.raw(args);
    }

    /// `process_name` metadata.
    pub(super) fn process_name(&mut self, pid: u32, name: &str) {
        self.event(format_args!(
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{}}}}}",
            json_string(name)
        ));
    }

    /// `thread_name` metadata, and `thread_sort_index` when given.
    pub(super) fn thread_name(&mut self, pid: u32, tid: u32, name: &str, sort: Option<u64>) {
        self.event(format_args!(
            "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
            json_string(name)
        ));
        if let Some(sort) = sort {
            self.event(format_args!(
                "{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"sort_index\":{sort}}}}}"
            ));
        }
    }

    /// `name` quoted for JSON, from the cache when it is there; the caller puts it back
    /// with [`Trace::give_back`].
    fn take_quoted(&mut self, name: &str) -> String {
        match self.quoted.remove(name) {
            Some(q) => q,
            None => json_string(name),
        }
    }

    fn give_back(&mut self, name: &str, quoted: String) {
        if self.quoted.len() < QUOTED_LIMIT {
            self.quoted.insert(name.to_owned(), quoted);
        }
    }

    /// A complete event (`"ph":"X"`).
    pub(super) fn complete(
        &mut self,
        pid: u32,
        tid: u32,
        name: &str,
        start_ns: u64,
        duration_ns: u64,
    ) {
        let quoted = self.take_quoted(name);
        self.event(format_args!(
            "{{\"name\":{quoted},\"cat\":\"robot_activity\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{tid},\"ts\":{},\"dur\":{}}}",
            Micros(start_ns),
            Micros(duration_ns)
        ));
        self.give_back(name, quoted);
    }

    /// A counter event (`"ph":"C"`): series `key` of counter `name` in process `pid`.
    pub(super) fn counter(&mut self, pid: u32, name: &str, key: &str, t_ns: u64, value: f64) {
        let (quoted, quoted_key) = (self.take_quoted(name), self.take_quoted(key));
        self.event(format_args!(
            "{{\"name\":{quoted},\"cat\":\"system_resources\",\"ph\":\"C\",\"pid\":{pid},\"ts\":{},\"args\":{{{quoted_key}:{value}}}}}",
            Micros(t_ns)
        ));
        self.give_back(name, quoted);
        self.give_back(key, quoted_key);
    }

    /// Closes the array and flushes; the first write error, if any.
    pub(super) fn finish(mut self) -> io::Result<()> {
        self.raw(format_args!("\n]}}\n"));
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_every_ns_and_names_are_escaped() {
        assert_eq!(Micros(1_500).to_string(), "1.500");
        assert_eq!(Micros(10).to_string(), "0.010");
        assert_eq!(Micros(u64::MAX).to_string(), "18446744073709551.615");
        let mut buf = Vec::new();
        let mut t = Trace::new(&mut buf);
        t.complete(1, 2, "A\"B\n", 1_722_450_000_123_456_789, 1);
        t.complete(1, 2, "A\"B\n", 5, 0);
        t.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains(r#""name":"A\"B\n""#), "{text}");
        assert!(
            text.contains(r#""ts":1722450000123456.789,"dur":0.001"#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 2);
    }
}
