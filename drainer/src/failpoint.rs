//! A crash on demand, for the exactly-once tests.
//!
//! `PERF_DRAINER_CRASH_AT=<point>[:<n>]` kills the drainer with SIGKILL the `n`-th time
//! (default: first) it passes `<point>`: `after-append` (the rows are in
//! `robot_activity_data`), `after-context-append` (and in `robot_activity_context_data`),
//! `after-sync`, `after-checkpoint` or `after-release`; or inside a rotation (a table over
//! its `--max-file-size`): `rotate-renamed` (the live file has its number, no new live file
//! yet), `rotate-created` (the new, empty live file exists; the checkpoint still names the
//! old one), `rotate-checkpoint` (the checkpoint names the new live files), `settle-compressing`
//! (the compressed copy is in its temporary), `settle-compressed` (the `.gz` is in place, the
//! plain numbered file not yet removed) or `settle-removed` (one file beyond
//! `--rotated-files` removed). Points inside a rotation are passed once per table rotated
//! (the compatible table first); the `settle-*` ones by the settling thread, while the drain
//! loop goes on. SIGKILL rather than a panic or `exit`: nothing gets to
//! flush or clean up, exactly as with a power cut to the process. Unset, it costs a
//! comparison.

/// Environment variable naming the crash point.
pub const ENV: &str = "PERF_DRAINER_CRASH_AT";
/// The points a crash can be requested at.
pub const POINTS: &[&str] = &[
    "after-append",
    "after-context-append",
    "after-sync",
    "after-checkpoint",
    "after-release",
    "rotate-renamed",
    "rotate-created",
    "rotate-checkpoint",
    "settle-compressing",
    "settle-compressed",
    "settle-removed",
];

/// The points inside a rotation (a subset of [`POINTS`]), passed only with a size cap.
pub const ROTATION_POINTS: &[&str] = &[
    "rotate-renamed",
    "rotate-created",
    "rotate-checkpoint",
    "settle-compressing",
    "settle-compressed",
    "settle-removed",
];

/// The failpoint of a rotation step reported by `perf-table`.
pub fn step_point(step: perf_table::Step) -> &'static str {
    match step {
        perf_table::Step::Renamed => "rotate-renamed",
        perf_table::Step::Compressing => "settle-compressing",
        perf_table::Step::Compressed => "settle-compressed",
        perf_table::Step::Removed => "settle-removed",
    }
}

/// The armed crash point, if any. A clone counts its own passes (the settling thread's
/// copy is the only one that passes the `settle-*` points).
#[derive(Debug, Default, Clone)]
pub struct Failpoint {
    armed: Option<(&'static str, u64)>,
    hits: u64,
}

impl Failpoint {
    /// Reads [`ENV`]; an unknown value is logged and ignored.
    pub fn from_env() -> Failpoint {
        let Ok(value) = std::env::var(ENV) else {
            return Failpoint::default();
        };
        match Self::parse(&value) {
            Some(armed) => {
                log::warn!("{ENV}={value}: this drainer will kill itself on purpose");
                Failpoint {
                    armed: Some(armed),
                    hits: 0,
                }
            }
            None => {
                log::warn!(
                    "ignoring {ENV}={value:?}: expected one of {} with an optional :N",
                    POINTS.join(", ")
                );
                Failpoint::default()
            }
        }
    }

    fn parse(value: &str) -> Option<(&'static str, u64)> {
        let (name, nth) = match value.split_once(':') {
            Some((name, n)) => (name, n.parse().ok().filter(|&n| n > 0)?),
            None => (value, 1),
        };
        POINTS.iter().find(|p| **p == name).map(|p| (*p, nth))
    }

    /// Called at each point; kills the process if this is the armed one's `n`-th pass.
    pub fn hit(&mut self, point: &'static str) {
        let Some((armed, nth)) = self.armed else {
            return;
        };
        if armed != point {
            return;
        }
        self.hits += 1;
        if self.hits == nth {
            log::warn!("{ENV}: killing myself {point} (pass {nth})");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Failpoint;

    #[test]
    fn parses_points_and_counts() {
        assert_eq!(Failpoint::parse("after-sync"), Some(("after-sync", 1)));
        assert_eq!(
            Failpoint::parse("after-release:3"),
            Some(("after-release", 3))
        );
        assert_eq!(Failpoint::parse("after-sync:0"), None);
        assert_eq!(Failpoint::parse("before-sync"), None);
        assert_eq!(Failpoint::parse("after-sync:x"), None);
    }
}
