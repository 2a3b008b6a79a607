//! Process instances in `system_resource_data`, and the CPU one used between two of its
//! samples: what the report's CPU figures and the timeline's CPU counters are made of.
//!
//! A process instance is a command with one `running_since`: a restart is a new instance.
//! A cumulative CPU time that goes down under the same start time is a new instance too (a
//! restart within the same second). Rows are taken in file order, which is time order for
//! the tracker's appends; a sample older than the one before it in the same instance is
//! still counted, but no CPU rate is taken across it.

use std::collections::HashMap;

use crate::data::ResourceRef;

/// CPU seconds over wall-clock seconds, as % of one core.
pub fn cpu_percent(cpu_seconds: f64, seconds: f64) -> f64 {
    100.0 * cpu_seconds / seconds
}

/// The time between two successive samples of one instance and the CPU used in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The earlier sample, ns since the epoch.
    pub from_ns: u64,
    /// The later sample, ns since the epoch (always after `from_ns`).
    pub to_ns: u64,
    /// CPU seconds (user + system) used in between.
    pub cpu_seconds: f64,
}

impl Interval {
    /// Length, s.
    pub fn seconds(&self) -> f64 {
        (self.to_ns - self.from_ns) as f64 / 1e9
    }

    /// CPU use over the interval, % of one core.
    pub fn cpu_percent(&self) -> f64 {
        cpu_percent(self.cpu_seconds, self.seconds())
    }
}

/// Where one row belongs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Index of its command line ([`Instances::command`]).
    pub command: usize,
    /// Index of its instance (0, 1, … in order of first appearance).
    pub instance: usize,
    /// Whether this row is the instance's first.
    pub first: bool,
    /// Cumulative CPU seconds (user + system).
    pub cpu: f64,
    /// Since the instance's previous sample, when there is one and it is older.
    pub interval: Option<Interval>,
}

#[derive(Debug)]
struct Last {
    t: u64,
    cpu: f64,
}

/// Tells the instances of the rows apart, one row at a time. Memory grows with the number
/// of commands and instances, not with rows.
#[derive(Debug, Default)]
pub struct Instances {
    commands: Vec<String>,
    command_index: HashMap<String, usize>,
    /// The current instance of each (command, start time).
    current: HashMap<(usize, u64), usize>,
    last: Vec<Last>,
}

impl Instances {
    /// The instance of row `r`, and the CPU it used since its previous sample.
    pub fn add(&mut self, r: &ResourceRef<'_>) -> Sample {
        let command = match self.command_index.get(r.command.as_ref()) {
            Some(&i) => i,
            None => {
                self.commands.push(r.command.clone().into_owned());
                let i = self.commands.len() - 1;
                self.command_index.insert(r.command.clone().into_owned(), i);
                i
            }
        };
        let t = r.query_time;
        let cpu = r.user_cpu_time + r.system_cpu_time;
        let key = (command, r.running_since.to_bits());
        let existing = self.current.get(&key).copied().filter(|&i| {
            // Cumulative CPU time never goes down in one process: a drop is a new process
            // that started in the same second.
            cpu >= self.last[i].cpu
        });
        let Some(instance) = existing else {
            self.last.push(Last { t, cpu });
            let instance = self.last.len() - 1;
            self.current.insert(key, instance);
            return Sample {
                command,
                instance,
                first: true,
                cpu,
                interval: None,
            };
        };
        let last = &mut self.last[instance];
        let interval = (t > last.t).then_some(Interval {
            from_ns: last.t,
            to_ns: t,
            cpu_seconds: cpu - last.cpu,
        });
        if t >= last.t {
            last.t = t;
        }
        last.cpu = cpu;
        Sample {
            command,
            instance,
            first: false,
            cpu,
            interval,
        }
    }

    /// Command line number `i`.
    pub fn command(&self, i: usize) -> &str {
        &self.commands[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(t: u64, cmd: &str, since: f64, cpu: f64) -> ResourceRef<'_> {
        ResourceRef {
            query_time: t,
            command: cmd.into(),
            running_since: since,
            user_cpu_time: cpu,
            system_cpu_time: 0.5,
            memory_percent: 1.0,
        }
    }

    #[test]
    fn restarts_and_cpu_drops_are_new_instances_and_rates_are_per_instance() {
        let s = 1_000_000_000;
        let mut inst = Instances::default();
        let a = inst.add(&res(s, "a", 10.0, 1.0));
        assert_eq!((a.instance, a.first, a.interval), (0, true, None));
        let b = inst.add(&res(s, "a", 11.0, 5.0));
        assert_eq!((b.command, b.instance, b.first), (0, 1, true));
        let a2 = inst.add(&res(3 * s, "a", 10.0, 2.0));
        let i = a2.interval.unwrap();
        assert_eq!((i.from_ns, i.to_ns, i.cpu_seconds), (s, 3 * s, 1.0));
        assert_eq!(i.cpu_percent(), 50.0);
        // A drop in CPU time: restarted within the same second.
        let a3 = inst.add(&res(4 * s, "a", 10.0, 0.25));
        assert_eq!((a3.instance, a3.first), (2, true));
        // An older sample gives no rate.
        let late = inst.add(&res(s / 2, "a", 11.0, 5.5));
        assert_eq!((late.instance, late.interval), (1, None));
        let b = inst.add(&res(5 * s, "b", 1.0, 0.0));
        assert_eq!(inst.command(b.command), "b");
    }
}
