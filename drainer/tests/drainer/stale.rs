//! A producer killed while creating its ring leaves the hidden temporary the ring was
//! being built in: the drainer removes it once its creator is gone, never before.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use perf_testkit::{count, wait_for};

const CHILD_ENV: &str = "DRAINER_TEST_HALF_MADE_DIR";
const SIZE: i64 = 1 << 20;

/// Not a test: a producer stopped in the middle of `ProducerRing::create`, started as this
/// test binary by `a_temporary_left_by_a_killed_creator_is_removed`. It makes the
/// temporary as the ring crate does (hidden name with its pid, `O_EXCL`, shared liveness
/// lock, allocated), says where, and waits to be killed.
#[test]
#[ignore = "helper process for a_temporary_left_by_a_killed_creator_is_removed"]
fn child_half_made_ring() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(dir).join(format!(
        ".child-{}-00000000deadbeef.ring.tmp",
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    // SAFETY: the descriptor is owned by `file` and open for both calls.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) }, 0);
    // SAFETY: as above; posix_fallocate only changes the file's size and allocation.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, SIZE) };
    assert_eq!(rc, 0);
    println!("READY {}", path.display());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_temporary_left_by_a_killed_creator_is_removed() {
    let dirs = crate::dirs();
    let daemon = dirs.daemon("0.05");
    let (mut child, path) = crate::spawn_self("stale::child_half_made_ring", CHILD_ENV, &dirs.shm);
    // A hidden file that is not a ring's temporary: never touched.
    let notes = dirs.shm.join(".notes.tmp");
    std::fs::write(&notes, b"not a ring").unwrap();
    // Its creator is at work: it stays, however long the drainer looks.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(path.exists());

    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the temporary's removal", Duration::from_secs(10), || {
        !path.exists()
    });
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    let line = format!("removed {}: the temporary of a ring", path.display());
    assert_eq!(count(&log, &line), 1, "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains(&format!("{SIZE} bytes"))),
        "{log:#?}"
    );
    assert!(notes.exists());
}
