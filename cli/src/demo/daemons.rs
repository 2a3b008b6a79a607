//! The drainer and the system resource tracker of the demo, each in a thread of this
//! process running the very loop its daemon runs ([`perf_drainer::run::serve`],
//! [`perf_sampler::run::serve`]): the same cycles, fast path when a cycle was cut short,
//! final drain and watchdog handling; only the systemd notifications are left out.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use perf_daemon::notify::Watchdog;
use perf_daemon::shutdown::Shutdown;
use perf_drainer::Drainer;
use perf_sampler::fnmatch::Pattern;
use perf_sampler::sample::Sampler;
use perf_sampler::storage::Storage;

use super::services::SERVICE_ARGV0;
use super::DemoError;

/// Drain cycles run this often during the demo.
const DRAIN_EVERY: Duration = Duration::from_millis(200);
/// The final drain gives up after this long.
pub(super) const FINAL_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Counters the threads share with the progress display.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) rows: AtomicU64,
    pub(super) samples: AtomicU64,
    pub(super) sample_rows: AtomicU64,
}

/// The drainer and sampler threads; asked to stop and joined when dropped.
#[derive(Debug)]
pub(super) struct Daemons {
    drain_stop: Arc<Shutdown>,
    sample_stop: Arc<Shutdown>,
    drainer: Option<JoinHandle<Drainer>>,
    sampler: Option<JoinHandle<()>>,
}

impl Daemons {
    /// Starts both loops: `drainer` every [`DRAIN_EVERY`], `sampler` every `interval` into
    /// `out`, counting into `counters`.
    pub(super) fn start(
        mut drainer: Drainer,
        mut sampler: Sampler,
        out: &Path,
        interval: Duration,
        counters: &Arc<Counters>,
    ) -> Result<Daemons, DemoError> {
        let spawn_error = |source| DemoError::Setup {
            what: "cannot start a thread for",
            path: out.to_path_buf(),
            source,
        };
        let drain_stop = Arc::new(Shutdown::new()?);
        let sample_stop = Arc::new(Shutdown::new()?);
        let mut daemons = Daemons {
            drain_stop: Arc::clone(&drain_stop),
            sample_stop: Arc::clone(&sample_stop),
            drainer: None,
            sampler: None,
        };
        let c = Arc::clone(counters);
        let opts = perf_drainer::run::RunOptions {
            final_drain_limit: FINAL_DRAIN_LIMIT,
            notify: false,
            ..perf_drainer::run::RunOptions::every(DRAIN_EVERY)
        };
        daemons.drainer = Some(
            std::thread::Builder::new()
                .name("drainer".into())
                .spawn(move || {
                    // Disabled unless the demo itself runs under a systemd watchdog.
                    let mut watchdog = Watchdog::from_env();
                    perf_drainer::run::serve(
                        &mut drainer,
                        &opts,
                        &drain_stop,
                        &mut watchdog,
                        &mut |r| {
                            c.rows.fetch_add(r.written, Ordering::Relaxed);
                        },
                    );
                    drainer
                })
                .map_err(spawn_error)?,
        );
        let c = Arc::clone(counters);
        let mut storage = Storage::new(out);
        let opts = perf_sampler::run::RunOptions {
            interval,
            notify: false,
        };
        daemons.sampler = Some(
            std::thread::Builder::new()
                .name("sampler".into())
                .spawn(move || {
                    let mut watchdog = Watchdog::from_env();
                    perf_sampler::run::serve(
                        &mut sampler,
                        &mut storage,
                        &opts,
                        &sample_stop,
                        &mut watchdog,
                        &mut |stats| {
                            c.samples.fetch_add(1, Ordering::Relaxed);
                            c.sample_rows
                                .fetch_add(stats.rows as u64, Ordering::Relaxed);
                        },
                    );
                })
                .map_err(spawn_error)?,
        );
        Ok(daemons)
    }

    /// Stops the sampler and waits for it.
    pub(super) fn stop_sampler(&mut self) {
        self.sample_stop.request();
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
    }

    /// Stops the drainer (after its final drain) and hands it back; `None` if its thread
    /// panicked.
    pub(super) fn stop_drainer(&mut self) -> Option<Drainer> {
        self.drain_stop.request();
        self.drainer.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop_sampler();
        drop(self.stop_drainer());
    }
}

/// What the demo's sampler watches: this process (the drainer and sampler threads) and
/// the services of run `run_id`.
///
/// The services' pattern allows anything before the program's name: where the kernel runs
/// the binary through an interpreter (qemu-user registered with binfmt_misc, as CI runs the
/// aarch64 build), `/proc/PID/cmdline` is `/usr/bin/qemu-aarch64 /path/to/perf-metrics
/// demo-service ...`, the interpreter first and the set argv0 replaced by the binary's path.
/// The run id keeps the pattern to this run's services.
pub(super) fn sampler_filters(run_id: &str) -> Vec<Pattern> {
    vec![
        Pattern::new(&fnmatch_literal(&own_command())),
        Pattern::new(&format!(
            "*{SERVICE_ARGV0} demo-service --service * --run {run_id} *"
        )),
    ]
}

/// Makes `text` an fnmatch pattern that matches only itself.
fn fnmatch_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// This process's command line as the sampler formats it.
fn own_command() -> String {
    let mut raw = Vec::new();
    let _ = perf_sampler::proc::read_cmdline_at("/proc/self/cmdline", &mut raw);
    let mut command = String::new();
    perf_sampler::cmdline::format_command(&raw, &mut command);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_patterns_match_only_themselves() {
        let text = "/tmp/we*rd [dir]/perf-metrics? demo";
        let p = Pattern::new(&fnmatch_literal(text));
        assert!(p.matches(text));
        assert!(!p.matches("/tmp/weXrd [dir]/perf-metrics? demo"));
        assert!(!p.matches("/tmp/we*rd d/perf-metrics? demo"));
        let p = Pattern::new(&format!(
            "{} demo-service --run 1 *",
            fnmatch_literal("/a[1]")
        ));
        assert!(p.matches("/a[1] demo-service --run 1 --service x"));
        assert!(!p.matches("/a[1] demo-service --run 2 --service x"));
    }

    #[test]
    fn service_pattern_matches_behind_an_emulator_and_only_this_run() {
        let services = &sampler_filters("42")[1];
        let native = "perf-metrics demo-service --service robot-server --run 42 --seconds 5";
        let emulated = "/usr/bin/qemu-aarch64 /work/target/perf-metrics demo-service \
                        --service robot-server --run 42 --seconds 5";
        assert!(services.matches(native));
        assert!(services.matches(emulated));
        assert!(!services
            .matches("perf-metrics demo-service --service robot-server --run 43 --seconds 5"));
        assert!(!services.matches("perf-metrics demo --seconds 5"));
    }
}
