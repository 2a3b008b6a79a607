//! systemd's view of the daemon: READY=1 once set up, WATCHDOG=1 at half the watchdog
//! interval while it idles, STOPPING=1 on SIGTERM, then exit 0.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use perf_testkit::Daemon;

#[test]
fn systemd_gets_ready_watchdog_and_stopping() {
    let dirs = crate::dirs();
    let sock_dir = tempfile::tempdir().unwrap();
    let socket_path = sock_dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("no notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };

    // A 60 s interval: every ping seen comes from the watchdog timer, not from cycles.
    // systemd names the watched pid; `exec` keeps the shell's, so `$$` is the daemon's.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(crate::BIN)
        .args(["run", "--interval", "60", "--shm-dir"])
        .arg(&dirs.shm)
        .arg("--storage-dir")
        .arg(&dirs.storage)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(std::process::Stdio::null());
    let mut daemon = Daemon::spawn(cmd);
    let mut messages = vec![recv()];
    assert!(
        messages[0].contains("READY=1"),
        "first message: {messages:?}"
    );
    while messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 3 {
        messages.push(recv());
    }

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    while !recv().contains("STOPPING=1") {}
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
}

#[test]
fn the_watchdog_is_not_fed_while_the_ring_directory_cannot_be_listed() {
    let dirs = crate::dirs();
    let sock_dir = tempfile::tempdir().unwrap();
    let socket_path = sock_dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let drain = || {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    };
    // Not a directory: listing it fails (ENOTDIR) every cycle, as EMFILE would.
    std::fs::remove_dir(&dirs.shm).unwrap();
    std::fs::write(&dirs.shm, b"").unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(crate::BIN)
        .args(["run", "--interval", "0.05", "--shm-dir"])
        .arg(&dirs.shm)
        .arg("--storage-dir")
        .arg(&dirs.storage)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(std::process::Stdio::null());
    let mut daemon = Daemon::spawn(cmd);
    daemon.wait_log("watchdog pings withheld", Duration::from_secs(20));
    drain();
    // Ten ping periods: not one ping.
    std::thread::sleep(Duration::from_secs(1));
    let stalled = drain();
    assert!(
        !stalled.iter().any(|m| m.contains("WATCHDOG=1")),
        "{stalled:?}\n{}",
        daemon.log_text()
    );
    // Listable again: pings resume.
    std::fs::remove_file(&dirs.shm).unwrap();
    std::fs::create_dir(&dirs.shm).unwrap();
    daemon.wait_log("watchdog pings resume", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let resumed = drain();
    assert!(
        resumed.iter().any(|m| m.contains("WATCHDOG=1")),
        "{resumed:?}\n{}",
        daemon.log_text()
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
}
