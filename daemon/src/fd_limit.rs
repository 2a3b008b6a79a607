//! How many descriptors a daemon may keep open: one policy for both daemons.
//!
//! Each tracked ring costs the drainer a descriptor (its liveness lock), each kept process
//! the tracker one or two (`/proc` files). The soft `RLIMIT_NOFILE` is often 1024 (what
//! systemd gives a unit without `LimitNOFILE=`), kept low only for programs that use
//! `select`; neither daemon does. So each raises its soft limit to the hard one when it
//! starts, and keeps at most the limit minus [`RESERVED`] descriptors for rings or
//! processes: whatever it holds for those, the storage files, the directory listings and
//! the metrics server always find a descriptor.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors left for everything else: standard streams, logging, the storage lock,
/// the output tables and their sidecars, checkpoint and its directory, directory
/// listings, the metrics server (listener plus at most 16 connections), transient opens,
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
