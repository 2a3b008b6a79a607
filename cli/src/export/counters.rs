//! `system_resource_data` as counter tracks: one process per command line, with its CPU
//! use (% of one core, between successive samples of one process instance, as the report
//! computes it: [`crate::instances`]) and its resident memory (% of RAM, as sampled).
//!
//! A counter holds its value until its next event, so the CPU used between two samples is
//! written at the first of them, and a 0 is written at an instance's last sample (when a
//! restart takes its place, or at the end) so that a dead process does not look busy.
//! Several processes running one command line at once each get their own pair of tracks
//! (`CPU #2`, …): a slot per instance, reused by the next instance once its holder was not
//! seen in a later sample.

use super::trace::Trace;
use crate::data::ResourceRef;
use crate::instances::Instances;

#[derive(Debug, Clone, Copy)]
struct Holder {
    instance: usize,
    last_ns: u64,
}

#[derive(Debug)]
struct Command {
    pid: u32,
    slots: Vec<Option<Holder>>,
}

/// The counter tracks, fed one row at a time.
#[derive(Debug, Default)]
pub(super) struct Counters {
    instances: Instances,
    commands: Vec<Command>,
    /// Slot of each instance.
    slot_of: Vec<usize>,
    /// Counter events written.
    pub(super) events: u64,
}

fn suffix(slot: usize) -> String {
    if slot == 0 {
        String::new()
    } else {
        format!(" #{}", slot + 1)
    }
}

impl Counters {
    /// Command lines seen.
    pub(super) fn commands(&self) -> usize {
        self.commands.len()
    }

    pub(super) fn add(&mut self, trace: &mut Trace<'_>, r: &ResourceRef<'_>) {
        let sample = self.instances.add(r);
        let t = r.query_time;
        if sample.command == self.commands.len() {
            let pid = trace.synthetic_id();
            trace.process_name(pid, self.instances.command(sample.command));
            self.commands.push(Command {
                pid,
                slots: Vec::new(),
            });
        }
        let pid = self.commands[sample.command].pid;
        if sample.first {
            self.slot_of.push(0);
        }
        let held = {
            let slot = self.slot_of[sample.instance];
            let slots = &self.commands[sample.command].slots;
            !sample.first
                && matches!(slots.get(slot), Some(Some(h)) if h.instance == sample.instance)
        };
        if !held {
            let slot = self.free_slot(trace, sample.command, t);
            self.commands[sample.command].slots[slot] = Some(Holder {
                instance: sample.instance,
                last_ns: t,
            });
            self.slot_of[sample.instance] = slot;
        }
        let slot = self.slot_of[sample.instance];
        if let Some(Some(h)) = self.commands[sample.command].slots.get_mut(slot) {
            h.last_ns = h.last_ns.max(t);
        }
        let s = suffix(slot);
        self.counter(
            trace,
            pid,
            &format!("resident memory{s}"),
            "% of RAM",
            t,
            r.memory_percent,
        );
        if let Some(i) = sample.interval {
            self.counter(
                trace,
                pid,
                &format!("CPU{s}"),
                "% of one core",
                i.from_ns,
                i.cpu_percent(),
            );
        }
    }

    /// The lowest slot of `command` that is free at `t_ns` (never held, or its holder was
    /// last seen before), ending the holder's CPU line.
    fn free_slot(&mut self, trace: &mut Trace<'_>, command: usize, t_ns: u64) -> usize {
        let c = &self.commands[command];
        let slot = c
            .slots
            .iter()
            .position(|h| h.is_none_or(|h| h.last_ns < t_ns))
            .unwrap_or(c.slots.len());
        let pid = c.pid;
        if slot == c.slots.len() {
            self.commands[command].slots.push(None);
        } else if let Some(h) = self.commands[command].slots[slot] {
            self.counter(
                trace,
                pid,
                &format!("CPU{}", suffix(slot)),
                "% of one core",
                h.last_ns,
                0.0,
            );
        }
        slot
    }

    fn counter(
        &mut self,
        trace: &mut Trace<'_>,
        pid: u32,
        name: &str,
        key: &str,
        t_ns: u64,
        value: f64,
    ) {
        if value.is_finite() {
            trace.counter(pid, name, key, t_ns, value);
            self.events += 1;
        }
    }

    /// Ends every instance's CPU line at its last sample.
    pub(super) fn finish(&mut self, trace: &mut Trace<'_>) {
        let mut ends = Vec::new();
        for c in &self.commands {
            for (slot, h) in c.slots.iter().enumerate() {
                if let Some(h) = h {
                    ends.push((c.pid, slot, h.last_ns));
                }
            }
        }
        for (pid, slot, t) in ends {
            self.counter(
                trace,
                pid,
                &format!("CPU{}", suffix(slot)),
                "% of one core",
                t,
                0.0,
            );
        }
    }
}
