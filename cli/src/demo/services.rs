//! The demo's simulated robot services: real child processes (this executable again,
//! hidden subcommand `demo-service`, see [`crate::service`]), each writing into its own
//! ring in the demo's ring directory, one of them killing itself half-way.

use std::io::Read as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use crate::service::Outcome;

use super::DemoError;

/// argv[0] of the simulated services (the executable is this one).
pub(super) const SERVICE_ARGV0: &str = "perf-metrics";

/// The simulated services: name, worker threads, crashes. Each has at least one worker
/// of every role (protocols, analyses, cache lookups; see [`crate::service`]) besides
/// its main thread, so the timeline has several real thread tracks per service.
const SERVICES: &[(&str, u32, bool)] = &[
    ("robot-server", 4, false),
    ("protocol-analyzer", 3, false),
    ("hardware-controller", 3, false),
    ("flaky-analyzer", 3, true),
];

/// The demo's ring directory; removed (with anything left in it) when dropped.
#[derive(Debug)]
pub(super) struct RingDir(pub(super) PathBuf);

impl RingDir {
    pub(super) fn create(parent: &Path) -> Result<RingDir, DemoError> {
        use std::os::unix::fs::DirBuilderExt;
        let name = format!(
            "perf-metrics-demo-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        );
        let path = parent.join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| DemoError::Setup {
                what: "cannot create the demo's ring directory",
                path: path.clone(),
                source,
            })?;
        Ok(RingDir(path))
    }
}

impl Drop for RingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One simulated service.
#[derive(Debug)]
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) threads: u32,
    pub(super) crashes: bool,
    child: Child,
    /// Set once it exited: its report line and exit status.
    pub(super) ended: Option<(Option<Outcome>, ExitStatus)>,
}

/// The running services; any still running when dropped are killed and reaped.
#[derive(Debug, Default)]
pub(super) struct Services(pub(super) Vec<Service>);

impl Drop for Services {
    fn drop(&mut self) {
        self.kill_the_rest();
    }
}

impl Services {
    /// Starts every simulated service of run `run_id` for `seconds`, rings in `ring_dir`.
    pub(super) fn start(
        exe: &Path,
        run_id: &str,
        seconds: f64,
        ring_dir: &Path,
    ) -> Result<Services, DemoError> {
        let mut services = Services::default();
        for &(name, threads, crashes) in SERVICES {
            let mut cmd = Command::new(exe);
            // A short argv[0] keeps the command lines in the report readable.
            cmd.arg0(SERVICE_ARGV0)
                .args(["demo-service", "--service", name, "--run", run_id])
                .args(["--threads", &threads.to_string()])
                .args(["--seconds", &seconds.to_string()])
                // Where the producer library makes its ring, as on a robot.
                .env(perf_ring::DIR_ENV, ring_dir);
            if crashes {
                cmd.args(["--crash-after", &(seconds * 0.45).to_string()]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|source| DemoError::Setup {
                    what: "cannot start a simulated service from",
                    path: exe.to_path_buf(),
                    source,
                })?;
            services.0.push(Service {
                name,
                threads,
                crashes,
                child,
                ended: None,
            });
        }
        Ok(services)
    }

    /// Reaps services that exited; returns a line about each.
    pub(super) fn poll(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        for s in self.0.iter_mut().filter(|s| s.ended.is_none()) {
            let Ok(Some(status)) = s.child.try_wait() else {
                continue;
            };
            let mut text = String::new();
            if let Some(mut out) = s.child.stdout.take() {
                let _ = out.read_to_string(&mut text);
            }
            let outcome: Option<Outcome> = text
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok());
            let pid = s.child.id();
            let committed = match &outcome {
                Some(o) => format!("{} records", o.committed),
                None => "records not reported".into(),
            };
            events.push(match status.signal() {
                Some(sig) => format!(
                    "{} (pid {pid}) killed by signal {sig} ({committed}); its ring is drained, then removed",
                    s.name
                ),
                None => format!("{} (pid {pid}) finished its day ({committed})", s.name),
            });
            s.ended = Some((outcome, status));
        }
        events
    }

    /// How many are still running.
    pub(super) fn running(&self) -> usize {
        self.0.iter().filter(|s| s.ended.is_none()).count()
    }

    /// Kills and reaps those still running, so that their rings are dead and drainable.
    pub(super) fn kill_the_rest(&mut self) {
        for s in self.0.iter_mut().filter(|s| s.ended.is_none()) {
            let _ = s.child.kill();
            if let Ok(status) = s.child.wait() {
                s.ended = Some((None, status));
            }
        }
    }
}
