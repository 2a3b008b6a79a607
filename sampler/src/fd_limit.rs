//! How many `/proc` descriptors the sampler may keep open.
//!
//! Each process with a command line costs one kept descriptor, each matched process two
//! (see [`crate::kept`]): a few hundred on a robot. The soft `RLIMIT_NOFILE` is often
//! 1024, so the sampler raises it to the hard limit when it starts (it never uses
//! `select`, the reason the soft limit is kept low by default) and keeps at most the limit
//! minus [`RESERVED`] descriptors. Beyond that, and if opening fails with `EMFILE`/`ENFILE`
//! anyway, processes are read by path (open, read, close) instead: slower, never wrong.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors left for everything else: standard streams, logging, the output table and
/// its sidecar, `/proc` and `/proc/stat`, the transient opens of processes read by path,
/// and whatever a caller of the library holds.
pub const RESERVED: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force
/// afterwards (the old one if raising failed).
pub fn raise_nofile_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(e) => {
            log::debug!("cannot raise the descriptor limit from {soft} to {hard}: {e}");
            soft
        }
    }
}

/// Descriptors to keep under a soft limit of `limit`.
pub fn budget(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_to_the_hard_one() {
        let limit = raise_nofile_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(limit, soft);
        assert_eq!(soft, hard);
    }

    #[test]
    fn the_budget_leaves_a_reserve() {
        assert_eq!(budget(1024), 960);
        assert_eq!(budget(RESERVED), 0);
        assert_eq!(budget(10), 0);
    }
}
