//! Where each record goes: a process per service (named after it, with the producer's
//! pid) and a track per thread (its tid) when the record has context; otherwise the
//! per-state tracks of a "robot activity" process, as before the context table existed.
//!
//! - A thread's spans nest (inner ones end first) and stay on the thread's track; a span
//!   that partly overlaps another of the same thread (possible only with spans ended out
//!   of order) goes to an extra track, `thread N #2`.
//! - Records of one state without context that overlap in time go to extra tracks of that
//!   state, `STATE #2`, … (states are not call stacks, so they never nest).
//! - A pid that two services had (reuse across reboots) stays the first service's; the
//!   later one gets a synthetic pid, named `service (pid N)`.
//! - Without any context table the "robot activity" process is pid 1, as before; with one,
//!   it gets a synthetic pid so that it cannot collide with a real process.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use super::lanes::{FlatLanes, NestLane};
use super::trace::Trace;
use crate::join::Who;

/// Sort key of a per-state track: the state's place, then its lane.
fn state_sort(state: &str, lane: usize) -> u64 {
    let known = perf_producer::RobotActivityState::NAMES;
    let place = known
        .iter()
        .position(|k| *k == state)
        .unwrap_or(known.len());
    (place as u64) << 16 | lane.min(0xffff) as u64
}

#[derive(Debug)]
struct Thread {
    /// `(lane, tid)`: the thread's own track first.
    lanes: Vec<(NestLane, u32)>,
}

/// The tracks so far.
#[derive(Debug)]
pub(super) struct Tracks {
    /// pid of the "robot activity" process, and whether it was named yet.
    fallback_pid: u32,
    fallback_named: bool,
    /// Per state: its lanes and their tids.
    states: HashMap<String, (FlatLanes, Vec<u32>)>,
    next_state_tid: u32,
    /// Trace pid of each (service, pid).
    processes: HashMap<(Arc<str>, u32), u32>,
    /// The service that has each real pid in the trace.
    pid_owner: HashMap<u32, Arc<str>>,
    threads: HashMap<(u32, u32), Thread>,
    /// Tracks (thread and state tracks) made.
    pub(super) tracks: u64,
    /// Service processes made.
    pub(super) processes_made: u64,
}

impl Tracks {
    /// With `context`, the "robot activity" process gets a synthetic pid.
    pub(super) fn new(trace: &mut Trace<'_>, context: bool) -> Tracks {
        Tracks {
            fallback_pid: if context { trace.synthetic_id() } else { 1 },
            fallback_named: false,
            states: HashMap::new(),
            next_state_tid: 1,
            processes: HashMap::new(),
            pid_owner: HashMap::new(),
            threads: HashMap::new(),
            tracks: 0,
            processes_made: 0,
        }
    }

    /// The `(pid, tid)` of the track for a record of `state` over `[start, end]`.
    pub(super) fn place(
        &mut self,
        trace: &mut Trace<'_>,
        state: &str,
        start: u64,
        end: u64,
        who: Option<&Who>,
    ) -> (u32, u32) {
        match who {
            Some(who) => self.thread_track(trace, who, start, end),
            None => self.state_track(trace, state, start, end),
        }
    }

    fn state_track(
        &mut self,
        trace: &mut Trace<'_>,
        state: &str,
        start: u64,
        end: u64,
    ) -> (u32, u32) {
        let pid = self.fallback_pid;
        if !self.fallback_named {
            self.fallback_named = true;
            let name = if pid == 1 {
                "robot activity"
            } else {
                "robot activity (records without context)"
            };
            trace.process_name(pid, name);
        }
        if !self.states.contains_key(state) {
            self.states.insert(state.to_owned(), Default::default());
        }
        let Some((lanes, tids)) = self.states.get_mut(state) else {
            return (pid, 0);
        };
        let lane = lanes.place(start, end);
        if lane == tids.len() {
            // Small tids: only kernel threads and init have real ones that small.
            let tid = self.next_state_tid;
            self.next_state_tid += 1;
            tids.push(tid);
            self.tracks += 1;
            let name = if lane == 0 {
                state.to_owned()
            } else {
                format!("{state} #{}", lane + 1)
            };
            trace.thread_name(pid, tid, &name, Some(state_sort(state, lane)));
        }
        (pid, tids[lane])
    }

    fn thread_track(
        &mut self,
        trace: &mut Trace<'_>,
        who: &Who,
        start: u64,
        end: u64,
    ) -> (u32, u32) {
        let pid = self.process(trace, who);
        let thread = match self.threads.entry((pid, who.tid)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let name = if who.tid == who.pid {
                    format!("main thread {}", who.tid)
                } else {
                    format!("thread {}", who.tid)
                };
                trace.thread_name(pid, who.tid, &name, None);
                self.tracks += 1;
                e.insert(Thread {
                    lanes: vec![(NestLane::default(), who.tid)],
                })
            }
        };
        if let Some(tid) = thread
            .lanes
            .iter_mut()
            .find_map(|(l, tid)| l.place(start, end).then_some(*tid))
        {
            return (pid, tid);
        }
        let mut lane = NestLane::default();
        lane.place(start, end);
        let tid = trace.synthetic_id();
        trace.thread_name(
            pid,
            tid,
            &format!(
                "thread {} #{} (overlapping spans)",
                who.tid,
                thread.lanes.len() + 1
            ),
            None,
        );
        thread.lanes.push((lane, tid));
        self.tracks += 1;
        (pid, tid)
    }

    /// The trace pid of `who`'s process, named on first sight.
    fn process(&mut self, trace: &mut Trace<'_>, who: &Who) -> u32 {
        if let Some(&pid) = self.processes.get(&(Arc::clone(&who.service), who.pid)) {
            return pid;
        }
        let owner = self
            .pid_owner
            .entry(who.pid)
            .or_insert_with(|| Arc::clone(&who.service));
        let pid = if *owner == who.service {
            trace.process_name(who.pid, &who.service);
            who.pid
        } else {
            let pid = trace.synthetic_id();
            trace.process_name(pid, &format!("{} (pid {})", who.service, who.pid));
            pid
        };
        self.processes
            .insert((Arc::clone(&who.service), who.pid), pid);
        self.processes_made += 1;
        pid
    }
}
