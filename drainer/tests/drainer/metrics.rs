//! `--metrics-listen` and `--metrics-textfile`: what `run` exposes matches what it
//! committed; start-up errors are one line with the right exit status.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::{output_within, record, stderr, wait_for, Daemon};

const STATES: &[&str] = &["CALIBRATING", "ANALYZING_PROTOCOL"];

/// The address the daemon logged it serves on.
fn served_addr(d: &Daemon) -> SocketAddr {
    d.wait_log("serving /metrics on http://", Duration::from_secs(10));
    let log = d.log_text();
    let rest = &log[log.find("serving /metrics on http://").unwrap() + 27..];
    rest[..rest.find("/metrics").unwrap()].parse().unwrap()
}

/// `GET /metrics` (the server answers one request per connection).
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn run_exposes_exactly_what_it_committed() {
    let dirs = crate::dirs();
    let textfile = dirs.shm.parent().unwrap().join("perf-drainer.prom");
    let d = dirs.daemon_with("0.2", |c| {
        c.args(["--metrics-listen", "127.0.0.1:0", "--metrics-textfile"])
            .arg(&textfile);
    });
    let addr = served_addr(&d);
    assert!(addr.ip().is_loopback());
    let ring = ProducerRing::create(&dirs.shm, "svc", STATES, 1 << 10).unwrap();
    for i in 0..100 {
        ring.push(&record(0, i, 20_000_000)).unwrap();
    }
    for i in 0..50 {
        ring.push(&record(1, i, 14_000_000_000)).unwrap();
    }
    // A ring too small for what is pushed: its own counter says how many were dropped.
    let full = ProducerRing::create(&dirs.shm, "full", STATES, 64).unwrap();
    let refused = (0..100)
        .filter(|&i| full.push(&record(0, i, 1)).is_err())
        .count() as u64;
    assert_eq!(full.counters().dropped, refused);
    wait_for("all rows in the CSV", Duration::from_secs(20), || {
        dirs.csv().iter().filter(|&&b| b == b'\n').count() as u64 == 150 + 100 - refused
    });
    let expected = [
        "perf_drainer_activity_duration_seconds_count{state=\"CALIBRATING\"} ".to_string()
            + &(200 - refused).to_string(),
        "perf_drainer_activity_duration_seconds_count{state=\"ANALYZING_PROTOCOL\"} 50".into(),
        // Cumulative: the full ring's 1 ns records are in every bucket.
        format!(
            "perf_drainer_activity_duration_seconds_bucket{{le=\"0.01\",state=\"CALIBRATING\"}} {}",
            100 - refused
        ),
        format!(
            "perf_drainer_activity_duration_seconds_bucket{{le=\"0.025\",state=\"CALIBRATING\"}} {}",
            200 - refused
        ),
        "perf_drainer_activity_duration_seconds_bucket{le=\"15.0\",state=\"ANALYZING_PROTOCOL\"} 50"
            .into(),
        "perf_drainer_records_written_total{service=\"svc\"} 150".into(),
        format!("perf_drainer_records_dropped_total{{service=\"full\"}} {refused}"),
        "perf_drainer_records_dropped_total{service=\"svc\"} 0".into(),
        "perf_drainer_rings_open 2".into(),
    ];
    // The metrics follow the commit, which follows the rows reaching the file.
    let mut text;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let shown = loop {
        text = scrape(addr);
        if expected.iter().all(|l| text.contains(l.as_str())) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let missing: Vec<_> = expected
        .iter()
        .filter(|l| !text.contains(l.as_str()))
        .collect();
    assert!(shown, "missing {missing:#?} in\n{text}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    wait_for("the textfile", Duration::from_secs(10), || {
        std::fs::read_to_string(&textfile)
            .is_ok_and(|t| t.contains("perf_drainer_records_written_total{service=\"svc\"} 150"))
    });
    drop(ring);
    drop(full);
    let (status, log) = d.terminate();
    assert!(status.success(), "{}", log.join("\n"));
    let last = std::fs::read_to_string(&textfile).unwrap();
    assert!(last.contains("# TYPE perf_drainer_records_written_total counter"));
    assert!(
        !last.contains("# EOF"),
        "the textfile is Prometheus text, not OpenMetrics"
    );
}

#[test]
fn a_port_in_use_exits_1_and_a_bad_address_exits_2_each_with_one_line() {
    let dirs = crate::dirs();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = output_within(
        dirs.drainer_cmd(&["run", "--metrics-listen", &port]),
        Duration::from_secs(10),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&port), "{err}");

    let mut cmd = dirs.drainer_cmd(&["run"]);
    cmd.env("OT_PERFORMANCE_METRICS_METRICS_LISTEN", "robot.local:9101");
    let out = output_within(cmd, Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("OT_PERFORMANCE_METRICS_METRICS_LISTEN"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = format!(
        "--metrics-textfile={}",
        dir.path().join("missing/dir/x.prom").display()
    );
    let cmd = dirs.drainer_cmd(&["run", &bad]);
    let out = output_within(cmd, Duration::from_secs(10));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing/dir"), "{err}");
}
