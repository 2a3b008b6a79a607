//! Fixed-rate scheduling: sample `k` is due at `start + k × interval`, whatever the
//! samples before it cost, so the series does not drift. A sample that overruns one or
//! more ticks skips them rather than firing a burst to catch up.

use std::time::{Duration, Instant};

/// When the next sample is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// The deadline; `None` if it lies beyond what `Instant` can represent (an absurdly
    /// long interval): sleep until shutdown.
    pub deadline: Option<Instant>,
    /// How many ticks were skipped because the previous sample ran past them.
    pub missed: u64,
}

/// A fixed-rate schedule anchored at its start.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    /// Index of the tick the last sample ran for (0 is `start` itself).
    index: u64,
}

impl Schedule {
    /// A schedule whose first tick is `start`. `interval` must not be zero.
    pub fn new(start: Instant, interval: Duration) -> Schedule {
        Schedule {
            start,
            interval: interval.max(Duration::from_nanos(1)),
            index: 0,
        }
    }

    /// Called after a sample finished at `now`: moves to the next tick after `now`.
    ///
    /// That is normally the tick right after the current one; if `now` is already at or
    /// past it, every tick up to `now` is skipped and counted in [`Tick::missed`].
    pub fn advance(&mut self, now: Instant) -> Tick {
        let interval = self.interval.as_nanos();
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        // First tick strictly after `now`.
        let after_now = u64::try_from(elapsed / interval + 1).unwrap_or(u64::MAX);
        let next = self.index.saturating_add(1);
        let index = next.max(after_now);
        self.index = index;
        let deadline = u64::try_from(u128::from(index) * interval)
            .ok()
            .and_then(|ns| self.start.checked_add(Duration::from_nanos(ns)));
        Tick {
            deadline,
            missed: index - next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ticks_are_anchored_at_the_start_not_at_the_end_of_each_sample() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S);
        // Samples that take 300 ms each still land on 10 s, 20 s, 30 s.
        let a = s.advance(t0 + Duration::from_millis(300));
        assert_eq!(
            a,
            Tick {
                deadline: Some(t0 + 10 * S),
                missed: 0
            }
        );
        let b = s.advance(t0 + Duration::from_millis(10_300));
        assert_eq!(
            b,
            Tick {
                deadline: Some(t0 + 20 * S),
                missed: 0
            }
        );
        let c = s.advance(t0 + Duration::from_millis(20_999));
        assert_eq!(
            c,
            Tick {
                deadline: Some(t0 + 30 * S),
                missed: 0
            }
        );
    }

    #[test]
    fn an_overrun_skips_the_missed_ticks() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S);
        // The first sample took 35 s: ticks 10, 20, 30 are gone; next is 40.
        let t = s.advance(t0 + 35 * S);
        assert_eq!(
            t,
            Tick {
                deadline: Some(t0 + 40 * S),
                missed: 3
            }
        );
        // Ending exactly on a tick counts that tick as missed too.
        let t = s.advance(t0 + 50 * S);
        assert_eq!(
            t,
            Tick {
                deadline: Some(t0 + 60 * S),
                missed: 1
            }
        );
        let t = s.advance(t0 + 61 * S);
        assert_eq!(
            t,
            Tick {
                deadline: Some(t0 + 70 * S),
                missed: 0
            }
        );
    }

    #[test]
    fn waking_early_never_repeats_a_tick() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S);
        // A clock read before the start (or an early wake) still moves forward.
        assert_eq!(s.advance(t0).deadline, Some(t0 + 10 * S));
        assert_eq!(s.advance(t0 + S).deadline, Some(t0 + 20 * S));
    }

    #[test]
    fn fractional_intervals_do_not_accumulate_error() {
        let t0 = Instant::now();
        let interval = Duration::from_secs_f64(1.1);
        let mut s = Schedule::new(t0, interval);
        let mut last = None;
        for k in 1..=1000u32 {
            let now = t0 + interval * (k - 1) + Duration::from_millis(5);
            last = s.advance(now).deadline;
        }
        assert_eq!(last, Some(t0 + interval * 1000));
    }

    #[test]
    fn an_unrepresentable_deadline_is_none() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Duration::MAX);
        assert_eq!(s.advance(t0).deadline, None);
    }
}
