//! The `--metrics-textfile` writer, for robots whose node_exporter reads a textfile
//! directory: the exposition in the Prometheus text format, replaced atomically.
//!
//! Each write goes to `.<name>.tmp` beside the target, created with `O_EXCL | O_NOFOLLOW`
//! (so a symlink or file planted there is never written through), then renamed over the
//! target: a reader sees the old file or the new one, never half of one. A leftover
//! temporary file from a crash is unlinked (the link itself, never what it points to) and
//! the create retried once. There is no fsync: the file describes the present and is
//! rewritten after every cycle, so after a power cut a stale or missing one costs nothing,
//! while a sync every second would wear the robot's eMMC.
//!
//! Writes happen on the writer's own thread: the daemon only asks for one
//! ([`Textfile::request_write`]), and requests made while one is under way fold into the
//! next.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Exposition, MetricsError};

/// How long dropping the writer waits for its last write (a hung filesystem must not hold
/// up the daemon's exit).
const LAST_WRITE_WAIT: Duration = Duration::from_secs(2);

/// Writing the textfile failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the metrics textfile {path}: {source}")]
pub struct TextfileError {
    /// The file that was being written (the target or its temporary file).
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Replaces `path` with `contents` atomically (see the module documentation).
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), TextfileError> {
    let name = path.file_name().ok_or_else(|| TextfileError {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TextfileError { path, source }
    };
    let mut file = match create_new(&tmp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Left by a crash (or planted): unlink the name and try once more.
            std::fs::remove_file(&tmp).map_err(err(&tmp))?;
            create_new(&tmp)
        }
        other => other,
    }
    .map_err(err(&tmp))?;
    let written = file
        .write_all(contents)
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(path)(e));
    }
    Ok(())
}

fn create_new(path: &Path) -> io::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The writer thread. Dropping it writes the file a last time (waiting at most
/// [`LAST_WRITE_WAIT`]).
#[derive(Debug)]
pub struct Textfile {
    wake: SyncSender<()>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, cloneable way to ask the writer for a write, for code that does not own the
/// [`Textfile`] (the drainer's and the tracker's metrics handles). Never blocks; a no-op
/// when there is no writer ([`CycleDone::default`]) or it has stopped.
#[derive(Debug, Clone, Default)]
pub struct CycleDone(Option<SyncSender<()>>);

impl CycleDone {
    /// Asks for a write of the textfile (if any); never blocks.
    pub fn notify(&self) {
        if let Some(wake) = &self.0 {
            // Full: a write is already pending and will include this cycle.
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

impl Textfile {
    /// Writes `path` once now (so a bad path is a start-up error), then starts the thread.
    pub fn start(path: PathBuf, exposition: Exposition) -> Result<Textfile, MetricsError> {
        write_atomically(&path, exposition.prometheus_text().as_bytes())?;
        // One slot: a request while one is pending is already covered by it.
        let (wake, requests) = mpsc::sync_channel::<()>(1);
        let (finished, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-textfile".into())
            .spawn(move || {
                let mut last_error: Option<String> = None;
                while requests.recv().is_ok() {
                    let r = write_atomically(&path, exposition.prometheus_text().as_bytes());
                    // Said once per distinct problem, and once when it is gone.
                    match (r, &last_error) {
                        (Ok(()), Some(_)) => {
                            log::info!("metrics textfile {} written again", path.display());
                            last_error = None;
                        }
                        (Err(e), prev) if prev.as_deref() != Some(&e.to_string()) => {
                            log::warn!("{e}; retrying after the next cycle");
                            last_error = Some(e.to_string());
                        }
                        _ => {}
                    }
                    // Stop is set before the last wake-up, so this write was the last one.
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                }
                let _ = finished.send(());
            })
            .map_err(|source| MetricsError::Start {
                what: "textfile thread",
                source,
            })?;
        Ok(Textfile {
            wake,
            stop,
            done,
            thread: Some(thread),
        })
    }

    /// Asks for a write; never blocks.
    pub fn request_write(&self) {
        self.cycle_done().notify();
    }

    /// A handle that asks for writes.
    pub fn cycle_done(&self) -> CycleDone {
        CycleDone(Some(self.wake.clone()))
    }
}

impl Drop for Textfile {
    fn drop(&mut self) {
        // The thread ends after the write this wake-up causes (or one already pending),
        // even while clones of the sender live on in metrics handles.
        self.stop.store(true, Ordering::Release);
        self.request_write();
        match self.done.recv_timeout(LAST_WRITE_WAIT) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                log::warn!("the metrics textfile is still being written; not waiting for it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf.prom");
        write_atomically(&path, b"a 1\n").unwrap();
        write_atomically(&path, b"a 2\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("perf.prom")]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // 0644 less the umask: readable by a node_exporter running as another user.
        assert_eq!(mode & 0o711, 0o600, "{mode:o}");
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("perf.prom");
        std::os::unix::fs::symlink(&victim, dir.path().join(".perf.prom.tmp")).unwrap();
        write_atomically(&path, b"a 1\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"a 1\n");
        assert!(!dir.path().join(".perf.prom.tmp").exists());
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/perf.prom");
        let e = write_atomically(&path, b"").unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }

    #[test]
    fn the_thread_writes_after_requests_and_on_drop() {
        use prometheus_client::metrics::counter::Counter;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf.prom");
        let mut registry = prometheus_client::registry::Registry::default();
        let c = Counter::<u64>::default();
        registry.register("t_rounds", "Rounds", c.clone());
        let t = Textfile::start(path.clone(), Exposition::new(registry)).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("t_rounds_total 0"));
        c.inc_by(5);
        let handle = t.cycle_done();
        for _ in 0..100 {
            handle.notify();
        }
        // A handle outliving the writer neither keeps its thread nor blocks.
        drop(t);
        handle.notify();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# TYPE t_rounds_total counter"), "{text}");
        assert!(text.contains("t_rounds_total 5"), "{text}");
        assert!(
            !text.contains("# EOF"),
            "Prometheus text format, not OpenMetrics"
        );
    }
}
