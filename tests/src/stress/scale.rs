//! Bounded and long modes: how much work each test does.
//!
//! `PERF_STRESS=long` multiplies trials and durations by 10; `PERF_STRESS_SCALE=N` sets the
//! factor directly.

/// How much work each test does: 1 in the bounded (CI) mode, 10 with `PERF_STRESS=long`,
/// or `PERF_STRESS_SCALE`.
pub fn scale() -> u64 {
    if let Some(n) = std::env::var("PERF_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return n.max(1);
    }
    match std::env::var("PERF_STRESS").as_deref() {
        Ok("long") => 10,
        _ => 1,
    }
}

/// `n` scaled by [`scale`].
pub fn scaled(n: u64) -> u64 {
    n.saturating_mul(scale())
}
