//! Fork detection, which is `perf-ring`'s (`perf_ring::fork`): its `pthread_atfork` child
//! handler bumps a generation counter, and the hot path compares it (one relaxed load)
//! against the generation its ring and thread cache were made in. The ring checks the same
//! counter itself, so a ring excluded from fork is never touched in a child.
//!
//! The ring's mapping is excluded from fork (`MADV_DONTFORK`) and it holds no descriptor,
//! so a child inherits nothing that keeps its parent's ring lock: once the parent exits,
//! the drainer sees its ring as dead even while children live on, tracking or not. On its
//! next record the child forgets the inherited ring and makes its own.

pub(crate) use perf_ring::fork::generation;

/// Installs the fork handler (once per process; a failure is logged once).
pub(crate) fn install() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Err(rc) = perf_ring::fork::install() {
        WARNED.call_once(|| {
            log::warn!("performance metrics: pthread_atfork failed ({rc}); a forked child may write into its parent's ring");
        });
    }
}
