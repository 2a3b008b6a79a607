//! Compressing and pruning rotated files off the drain loop.
//!
//! gzip of a 16 MiB numbered file takes about a second on the CI VM and several on the
//! Flex; done inline it stalled draining for that long, while producers' rings filled. A
//! thread of its own ([`Settler`]) runs [`archive::settle_through`] instead, for numbers
//! the loop hands it only once the checkpoint naming the new live file is durable: a
//! numbered file that the checkpoint in force may still name (a rotation between its
//! rename and its checkpoint) is never compressed or pruned, so its inode is not freed
//! while it can be named (see `rotation`).
//!
//! Each step of `settle` is atomic and redoable, so a kill while the thread works leaves
//! what a kill inside an inline settle left, and the next start's settle finishes it. On
//! shutdown ([`Settler`]'s `drop`) the work already asked for is done first; work that
//! failed (no room for the `.gz`) is abandoned then, with the plain files readable, and
//! otherwise retried a minute later.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use perf_table::{archive, TableSpec};

use crate::failpoint::{step_point, Failpoint};

/// How long a failed settle (say, no room to compress) waits before it is tried again.
const RETRY: Duration = Duration::from_secs(60);

/// Settle one table through number `through`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request {
    pub(super) spec: &'static TableSpec,
    pub(super) through: u64,
    /// Whether the failpoints of its steps are armed (after a rotation, not at start:
    /// what the crash tests ask for).
    pub(super) watched: bool,
}

/// The thread that settles rotated files.
#[derive(Debug)]
pub(super) struct Settler {
    tx: Option<Sender<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Settler {
    /// Starts the thread for the tables of `dir`, keeping `keep` rotated files each.
    pub(super) fn spawn(dir: PathBuf, keep: usize, failpoint: Failpoint) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("settle".into())
            .spawn(move || run(&dir, keep, failpoint, &rx))?;
        Ok(Settler {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks for `requests`, in table order (the compatible table first). Returns them if
    /// the thread is gone (it panicked), for the caller to settle inline.
    pub(super) fn request(&self, requests: Vec<Request>) -> Result<(), Vec<Request>> {
        match &self.tx {
            Some(tx) => tx.send(requests).map_err(|e| e.0),
            None => Err(requests),
        }
    }
}

impl Drop for Settler {
    /// Waits for the work asked for so far (see the module documentation).
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Settles `requests`; the ones that failed are returned, logged.
pub(super) fn settle(
    dir: &std::path::Path,
    keep: usize,
    failpoint: &mut Failpoint,
    mut requests: Vec<Request>,
) -> Vec<Request> {
    requests.retain(|r| {
        let watch = &mut |step| {
            if r.watched {
                failpoint.hit(step_point(step));
            }
        };
        match archive::settle_through(dir, r.spec, keep, r.through, watch) {
            Ok(_) => false,
            Err(e) => {
                log::warn!(
                    "{e}; rotated files stay as they are, retrying in {} s",
                    RETRY.as_secs()
                );
                true
            }
        }
    });
    requests
}

/// Nice value of the settling thread: compressing can wait, draining (and the services
/// recording) should not. A weight, not a starvation: CFS still gives it about a tenth of a
/// contended core, so pruning keeps up.
const NICE: libc::c_int = 10;

fn run(dir: &std::path::Path, keep: usize, mut failpoint: Failpoint, rx: &Receiver<Vec<Request>>) {
    let tid = nix::unistd::gettid().as_raw() as libc::id_t;
    // SAFETY: a system call without pointers; on Linux the nice value is per thread, so
    // this lowers only the settling thread (its own tid).
    let lowered = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, tid, NICE) };
    if lowered != 0 {
        log::debug!(
            "cannot lower the priority of the thread compressing rotated files: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut wanted: Vec<Request> = Vec::new();
    let mut retry_at: Option<Instant> = None;
    let merge = |wanted: &mut Vec<Request>, batch: Vec<Request>| {
        for r in batch {
            match wanted.iter_mut().find(|w| w.spec.name == r.spec.name) {
                Some(w) => {
                    w.through = w.through.max(r.through);
                    w.watched |= r.watched;
                }
                None => wanted.push(r),
            }
        }
    };
    loop {
        let got = match retry_at {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match got {
            Ok(batch) => merge(&mut wanted, batch),
            Err(RecvTimeoutError::Timeout) => {}
            // Everything sent was received first; what is left failed: abandoned.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Rotations that came meanwhile are one pass.
        while let Ok(batch) = rx.try_recv() {
            merge(&mut wanted, batch);
        }
        wanted = settle(dir, keep, &mut failpoint, std::mem::take(&mut wanted));
        retry_at = (!wanted.is_empty()).then(|| Instant::now() + RETRY);
    }
}
