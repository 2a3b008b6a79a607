//! Which track an event can go on without breaking the Trace Event Format's one rule for
//! complete events: on one track they may nest, but never partly overlap (Perfetto's
//! importer truncates or drops such slices).
//!
//! Events come in file order (about the order they ended, not started), so a track keeps
//! just enough to tell: a [`NestLane`] the outermost events placed on it, a [`FlatLane`]
//! where its last event ends. Both only ever say yes when the event is safe; when memory
//! is capped they say no more often, and the event goes to another lane.

/// Outermost events kept per nesting lane before the oldest are folded into a floor.
const MAX_OUTERMOST: usize = 64;

/// A track on which events may nest: a thread's spans, inner ones ending first.
#[derive(Debug, Default)]
pub(super) struct NestLane {
    /// The outermost events placed so far, disjoint and in time order (`[start, end]`).
    outermost: Vec<(u64, u64)>,
    /// Events starting before this are refused: older outermost events were let go.
    floor: u64,
}

impl NestLane {
    /// Places `[start, end]` if it nests with everything on the lane (it contains or is
    /// disjoint from each outermost event; inside one is refused, to keep no more).
    pub(super) fn place(&mut self, start: u64, end: u64) -> bool {
        if start < self.floor {
            return false;
        }
        let from = self.outermost.partition_point(|&(_, e)| e <= start);
        let mut to = from;
        while let Some(&(s, e)) = self.outermost.get(to) {
            if s >= end {
                break;
            }
            if s < start || e > end {
                return false;
            }
            to += 1;
        }
        self.outermost.splice(from..to, [(start, end)]);
        if self.outermost.len() > 2 * MAX_OUTERMOST {
            self.floor = self.outermost[MAX_OUTERMOST - 1].1;
            self.outermost.drain(..MAX_OUTERMOST);
        }
        true
    }
}

/// Lanes on which events may not even nest (the per-state tracks of records without
/// context: two services in one state are not a call stack). Each lane is where its last
/// event ends; an event goes on the lane that ended latest before it starts (best fit).
#[derive(Debug, Default)]
pub(super) struct FlatLanes {
    ends: Vec<u64>,
}

impl FlatLanes {
    /// The lane for `[start, end]`: an existing one, or `ends.len()` for a new one.
    pub(super) fn place(&mut self, start: u64, end: u64) -> usize {
        let best = self
            .ends
            .iter()
            .enumerate()
            .filter(|&(_, &e)| e <= start)
            .max_by_key(|&(i, &e)| (e, std::cmp::Reverse(i)))
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                self.ends[i] = end;
                i
            }
            None => {
                self.ends.push(end);
                self.ends.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether two events on one track are allowed: disjoint or nested.
    fn compatible(a: (u64, u64), b: (u64, u64)) -> bool {
        a.1 <= b.0 || b.1 <= a.0 || (a.0 <= b.0 && b.1 <= a.1) || (b.0 <= a.0 && a.1 <= b.1)
    }

    #[test]
    fn nesting_is_accepted_in_end_order_and_partial_overlap_refused() {
        let mut lane = NestLane::default();
        // A thread: inner spans end first, then the outer one.
        assert!(lane.place(10, 20));
        assert!(lane.place(25, 30));
        assert!(lane.place(5, 40));
        assert!(lane.place(40, 50)); // touching is fine
        assert!(!lane.place(45, 60)); // partly over [40, 50]
        assert!(!lane.place(12, 18)); // inside an outermost one: refused, to keep no more
        assert!(lane.place(0, 100));
        assert_eq!(lane.outermost, [(0, 100)]);
        assert!(lane.place(100, 100));
        assert!(lane.place(100, 100));
    }

    #[test]
    fn whatever_the_order_no_lane_ever_holds_a_partial_overlap() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut lanes: Vec<(NestLane, Vec<(u64, u64)>)> = Vec::new();
        for _ in 0..4000 {
            let s = rng.u64(0..100_000);
            let e = s + rng.u64(0..2_000);
            let i = match lanes.iter_mut().position(|(l, _)| l.place(s, e)) {
                Some(i) => i,
                None => {
                    let mut l = NestLane::default();
                    assert!(l.place(s, e));
                    lanes.push((l, Vec::new()));
                    lanes.len() - 1
                }
            };
            lanes[i].1.push((s, e));
        }
        for (_, events) in &lanes {
            for (k, a) in events.iter().enumerate() {
                for b in &events[..k] {
                    assert!(compatible(*a, *b), "{a:?} vs {b:?}");
                }
            }
        }
        // Memory stays capped.
        assert!(lanes
            .iter()
            .all(|(l, _)| l.outermost.len() <= 2 * MAX_OUTERMOST));
    }

    #[test]
    fn flat_lanes_never_overlap_and_reuse_the_best_fit() {
        let mut lanes = FlatLanes::default();
        assert_eq!(lanes.place(0, 10), 0);
        assert_eq!(lanes.place(5, 8), 1);
        assert_eq!(lanes.place(9, 12), 1); // lane 0 is still busy until 10
        assert_eq!(lanes.place(12, 13), 1); // both free: the one that ended latest
        assert_eq!(lanes.place(2, 3), 2);
    }
}
