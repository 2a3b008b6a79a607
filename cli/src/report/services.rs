//! Who did what: per service, each state's count and durations, from the rows that have
//! context (`robot_activity_context_data`, matched by [`crate::join`]). Present only when
//! the context table is; rows without context are one more row group, `(no context)`.
//!
//! Bounded like the per-state figures: per (service, state) the durations are kept exactly
//! up to [`EXACT_PER_SERVICE`] values, then a sketch (within 1 %); at most
//! [`MAX_SERVICES`] services are told apart (a storage directory is untrusted input), the
//! rest fold into `(other)`.

use std::collections::HashMap;

use serde::Serialize;

use super::sketch::Durations;
use super::state_order;
use crate::data::ActivityRef;
use crate::join::{JoinStats, Who};

/// Durations kept exactly per (service, state): 512 KiB.
pub const EXACT_PER_SERVICE: usize = 1 << 16;
/// Services told apart.
pub const MAX_SERVICES: usize = 64;
/// The group of rows without context.
pub const NO_CONTEXT: &str = "(no context)";
/// Where services past [`MAX_SERVICES`] go.
pub const OTHER: &str = "(other)";

/// One state of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStateStats {
    /// The service (or [`NO_CONTEXT`], [`OTHER`]).
    pub service: String,
    /// The state.
    pub state: String,
    /// Records.
    pub count: u64,
    /// Sum of durations, ns.
    pub total_ns: u128,
    /// Mean duration, ns.
    pub mean_ns: f64,
    /// Median (nearest rank), ns.
    pub p50_ns: u64,
    /// 95th percentile (nearest rank), ns.
    pub p95_ns: u64,
    /// 99th percentile (nearest rank), ns.
    pub p99_ns: u64,
    /// Longest, ns.
    pub max_ns: u64,
    /// Whether the percentiles are exact (false: from the sketch, within 1 %).
    pub percentiles_exact: bool,
}

/// The per-service part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSection {
    /// Records in the window with context.
    pub records_with_context: u64,
    /// Records in the window without (before the context table started, or while it was
    /// off).
    pub records_without_context: u64,
    /// Rows of the context table that match no data row (left out).
    pub context_rows_unmatched: u64,
    /// Per service (by name, [`NO_CONTEXT`] last), per state (in state order).
    pub states: Vec<ServiceStateStats>,
}

#[derive(Debug)]
struct Acc {
    count: u64,
    total: u128,
    max: u64,
    durations: Durations,
}

/// Takes in rows with their context one at a time.
#[derive(Debug, Default)]
pub struct ServiceAcc {
    /// Service names (with [`NO_CONTEXT`] and [`OTHER`] when used) and state names, by
    /// index, and their indexes by name: no allocation per row.
    services: Vec<String>,
    service_index: HashMap<String, usize>,
    states: Vec<String>,
    state_index: HashMap<String, usize>,
    /// Real services told apart so far.
    real_services: usize,
    groups: HashMap<(usize, usize), Acc>,
    with: u64,
    without: u64,
}

fn index(names: &mut Vec<String>, index: &mut HashMap<String, usize>, name: &str) -> usize {
    if let Some(&i) = index.get(name) {
        return i;
    }
    names.push(name.to_owned());
    index.insert(name.to_owned(), names.len() - 1);
    names.len() - 1
}

impl ServiceAcc {
    /// Counts one row (already known to be inside the window).
    pub fn add(&mut self, r: ActivityRef<'_>, who: Option<&Who>) {
        let service = match who {
            Some(w) => {
                self.with += 1;
                match self.service_index.get(&*w.service) {
                    Some(&i) => i,
                    None if self.real_services < MAX_SERVICES => {
                        self.real_services += 1;
                        index(&mut self.services, &mut self.service_index, &w.service)
                    }
                    None => index(&mut self.services, &mut self.service_index, OTHER),
                }
            }
            None => {
                self.without += 1;
                index(&mut self.services, &mut self.service_index, NO_CONTEXT)
            }
        };
        let state = index(&mut self.states, &mut self.state_index, r.state);
        let acc = self.groups.entry((service, state)).or_insert_with(|| Acc {
            count: 0,
            total: 0,
            max: 0,
            durations: Durations::with_limit(EXACT_PER_SERVICE),
        });
        acc.count += 1;
        acc.total += u128::from(r.duration_ns);
        acc.max = acc.max.max(r.duration_ns);
        acc.durations.add(r.duration_ns);
    }

    /// The section, or `None` when there is no context table.
    pub fn finish(self, join: &JoinStats) -> Option<ServiceSection> {
        if !join.context_table {
            return None;
        }
        let mut states: Vec<ServiceStateStats> = self
            .groups
            .into_iter()
            .map(|((service, state), mut a)| {
                let p = a.durations.percentiles(&[50, 95, 99]);
                ServiceStateStats {
                    service: self.services[service].clone(),
                    state: self.states[state].clone(),
                    count: a.count,
                    total_ns: a.total,
                    mean_ns: a.total as f64 / a.count as f64,
                    p50_ns: p[0],
                    p95_ns: p[1],
                    p99_ns: p[2],
                    max_ns: a.max,
                    percentiles_exact: a.durations.exact(),
                }
            })
            .collect();
        states.sort_by(|a, b| {
            let group = |s: &str| (s == NO_CONTEXT, s == OTHER);
            (group(&a.service), &a.service, state_order(&a.state)).cmp(&(
                group(&b.service),
                &b.service,
                state_order(&b.state),
            ))
        });
        Some(ServiceSection {
            records_with_context: self.with,
            records_without_context: self.without,
            context_rows_unmatched: join.context_unmatched,
            states,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn a(state: &str, dur: u64) -> ActivityRef<'_> {
        ActivityRef {
            state,
            start_ns: 0,
            duration_ns: dur,
        }
    }

    fn who(service: &str) -> Who {
        Who {
            service: Arc::from(service),
            pid: 1,
            tid: 1,
        }
    }

    #[test]
    fn states_are_split_by_service_and_rows_without_context_come_last() {
        let mut acc = ServiceAcc::default();
        let (rs, pa) = (who("robot-server"), who("analyzer"));
        for d in [10, 20, 30, 40] {
            acc.add(a("ANALYZING_PROTOCOL", d), Some(&pa));
        }
        acc.add(a("ANALYZING_PROTOCOL", 1000), Some(&rs));
        acc.add(a("ROBOT_STARTING_UP", 5), Some(&rs));
        acc.add(a("CALIBRATING", 7), None);
        let join = JoinStats {
            context_table: true,
            ..JoinStats::default()
        };
        let s = acc.finish(&join).unwrap();
        let keys: Vec<(&str, &str, u64)> = s
            .states
            .iter()
            .map(|x| (x.service.as_str(), x.state.as_str(), x.count))
            .collect();
        assert_eq!(
            keys,
            [
                ("analyzer", "ANALYZING_PROTOCOL", 4),
                // States in their defined order.
                ("robot-server", "ANALYZING_PROTOCOL", 1),
                ("robot-server", "ROBOT_STARTING_UP", 1),
                (NO_CONTEXT, "CALIBRATING", 1),
            ]
        );
        let analyzer = &s.states[0];
        assert_eq!(
            (analyzer.p50_ns, analyzer.p95_ns, analyzer.max_ns),
            (20, 40, 40)
        );
        assert_eq!((s.records_with_context, s.records_without_context), (6, 1));
        assert!(ServiceAcc::default()
            .finish(&JoinStats::default())
            .is_none());
    }

    #[test]
    fn services_past_the_cap_fold_into_other() {
        let mut acc = ServiceAcc::default();
        for i in 0..MAX_SERVICES + 3 {
            acc.add(a("CALIBRATING", 1), Some(&who(&format!("svc{i:03}"))));
        }
        let join = JoinStats {
            context_table: true,
            ..JoinStats::default()
        };
        let s = acc.finish(&join).unwrap();
        assert_eq!(s.states.len(), MAX_SERVICES + 1);
        assert_eq!(s.states.last().unwrap().service, OTHER);
        assert_eq!(s.states.last().unwrap().count, 3);
    }
}
