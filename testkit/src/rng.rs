//! The one seeded random generator of the test suites.
//!
//! Every randomized test takes its generator from [`Rng::from_env`]: the seed comes from
//! [`SEED_ENV`] (or its older name [`SEED_ENV_ALIAS`], still documented for the stress
//! suite), else from the clock. It is printed when the generator is made (libtest shows a
//! failed test's captured output) and again if the thread holding it panics, with the line
//! that replays the run.

use std::time::Duration;

/// The variable that replays a run: `PERF_TEST_SEED=N`.
pub const SEED_ENV: &str = "PERF_TEST_SEED";
/// The stress suite's older name for [`SEED_ENV`], honoured when `SEED_ENV` is unset.
pub const SEED_ENV_ALIAS: &str = "PERF_STRESS_SEED";

/// A small seeded generator (splitmix64): reproducible, and the same sequence on every
/// platform, which a replay needs.
#[derive(Debug)]
pub struct Rng {
    state: u64,
    seed: u64,
    /// The test name, for a generator made by [`Rng::from_env`]: it reports its seed again
    /// when dropped during a panic. Derived generators ([`Rng::fork`], clones) stay quiet.
    announce: Option<String>,
}

/// The seed the environment asks for, if any: [`SEED_ENV`], else [`SEED_ENV_ALIAS`].
pub fn seed_from_env() -> Option<u64> {
    [SEED_ENV, SEED_ENV_ALIAS]
        .iter()
        .find_map(|name| std::env::var(name).ok())
        .and_then(|s| s.trim().parse().ok())
}

impl Rng {
    /// A generator seeded from [`SEED_ENV`] (or [`SEED_ENV_ALIAS`]), or from the clock;
    /// prints the seed with the line that replays it.
    pub fn from_env(test: &str) -> Rng {
        let seed = seed_from_env().unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ u64::from(std::process::id()).rotate_left(32)
        });
        eprintln!("{test}: seed {seed} (replay with {SEED_ENV}={seed})");
        Rng {
            announce: Some(test.to_owned()),
            ..Rng::with_seed(seed)
        }
    }

    /// A generator with this seed.
    pub fn with_seed(seed: u64) -> Rng {
        Rng {
            state: seed,
            seed,
            announce: None,
        }
    }

    /// The seed it started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(self.range(lo_ms, hi_ms))
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A generator for another thread, derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::with_seed(self.next_u64())
    }
}

impl Clone for Rng {
    /// The same sequence from here on; the clone does not report the seed (the original
    /// does).
    fn clone(&self) -> Rng {
        Rng {
            state: self.state,
            seed: self.seed,
            announce: None,
        }
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if let Some(test) = &self.announce {
            if std::thread::panicking() {
                let seed = self.seed;
                eprintln!("{test} failed with seed {seed}: replay with {SEED_ENV}={seed}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_replays_from_its_seed() {
        let mut a = Rng::with_seed(5);
        let mut b = Rng::with_seed(5);
        let xs: Vec<u64> = (0..10).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|&x| x != xs[0]));
    }

    #[test]
    fn a_clone_continues_the_same_sequence_and_a_fork_another() {
        let mut a = Rng::with_seed(9);
        a.next_u64();
        let mut b = a.clone();
        assert_eq!(a.next_u64(), b.next_u64());
        let mut c = a.fork();
        assert_ne!(a.next_u64(), c.next_u64());
        assert_eq!(b.seed(), 9);
    }

    #[test]
    fn the_seed_variable_and_its_alias_replay_a_run() {
        // One test touches the environment, so no other test here races with it.
        std::env::remove_var(SEED_ENV);
        std::env::set_var(SEED_ENV_ALIAS, "41");
        assert_eq!(Rng::from_env("alias").seed(), 41);
        std::env::set_var(SEED_ENV, " 42 ");
        assert_eq!(Rng::from_env("primary").seed(), 42, "the new name wins");
        std::env::remove_var(SEED_ENV);
        std::env::remove_var(SEED_ENV_ALIAS);
        assert_eq!(seed_from_env(), None);
    }
}
