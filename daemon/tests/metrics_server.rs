//! The `/metrics` server against well-behaved, wrong, slow, stuck and too many clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use perf_daemon::metrics::{Exporter, Exposition, Limits, MetricsError, Server, Settings};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

fn exposition() -> (Exposition, Counter<u64>) {
    let mut registry = Registry::default();
    let c = Counter::<u64>::default();
    registry.register("test_rounds", "Rounds done", c.clone());
    (Exposition::new(registry), c)
}

fn quick_limits() -> Limits {
    Limits {
        max_connections: 4,
        header_timeout: Duration::from_millis(300),
        connection_timeout: Duration::from_millis(600),
    }
}

fn start(limits: Limits) -> (Server, Counter<u64>) {
    let (e, c) = exposition();
    let s = Server::start("127.0.0.1:0".parse().unwrap(), e, limits).unwrap();
    (s, c)
}

/// Sends `request` raw and returns the whole response (the server closes after one).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn get_metrics_serves_openmetrics() {
    let (s, c) = start(Limits::default());
    c.inc_by(3);
    let r = get(s.local_addr(), "/metrics");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        r.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{r}"
    );
    assert!(r.contains("test_rounds_total 3\n"), "{r}");
    assert!(r.ends_with("# EOF\n"), "{r}");
    // A query string does not change the path.
    assert!(get(s.local_addr(), "/metrics?x=1").starts_with("HTTP/1.1 200"));
    let head = exchange(s.local_addr(), b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("# EOF"), "HEAD has no body: {head}");
}

#[test]
fn anything_else_gets_a_proper_error() {
    let (s, _) = start(Limits::default());
    let a = s.local_addr();
    assert!(get(a, "/").starts_with("HTTP/1.1 404"));
    assert!(get(a, "/metrics/x").starts_with("HTTP/1.1 404"));
    let post = exchange(
        a,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.contains("allow: GET, HEAD"), "{post}");
    let garbage = exchange(
        a,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let r = exchange(a, huge.as_bytes());
    assert!(
        r.is_empty() || r.starts_with("HTTP/1.1 431") || r.starts_with("HTTP/1.1 400"),
        "{r}"
    );
    // And it still serves.
    assert!(get(a, "/metrics").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_slow_client_is_cut_off_and_blocks_nobody() {
    let (s, _) = start(quick_limits());
    let a = s.local_addr();
    let mut slow = TcpStream::connect(a).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let t = Instant::now();
    assert!(get(a, "/metrics").starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < Duration::from_millis(300), "served meanwhile");
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "the half-sent request is dropped after the header timeout"
    );
    // One that sends nothing at all.
    let mut silent = TcpStream::connect(a).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)));
}

#[test]
fn a_flood_of_connections_costs_bounded_resources_and_passes() {
    let limits = quick_limits();
    let (s, _) = start(limits);
    let a = s.local_addr();
    let idle: Vec<TcpStream> = (0..limits.max_connections)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    // Past the limit: closed on arrival, not queued.
    std::thread::sleep(Duration::from_millis(50));
    let mut extra = TcpStream::connect(a).unwrap();
    assert!(closed_within(&mut extra, Duration::from_millis(250)));
    // Once the idle ones time out, scrapes pass again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(a, "/metrics");
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
    // Many clients in parallel: each gets an answer or a close, none hangs.
    let threads: Vec<_> = (0..32)
        .map(|_| std::thread::spawn(move || get(a, "/metrics")))
        .collect();
    let served = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|r| r.starts_with("HTTP/1.1 200"))
        .count();
    assert!(served >= 1, "some of the parallel clients were served");
}

#[test]
fn a_port_in_use_is_a_start_up_error_naming_the_address() {
    let (s, _) = start(Limits::default());
    let (e, _) = exposition();
    let settings = Settings {
        listen: Some(s.local_addr()),
        textfile: None,
    };
    let err = Exporter::start(e, &settings).unwrap_err();
    assert!(matches!(err, MetricsError::Bind { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.contains(&s.local_addr().to_string()), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[test]
fn dropping_the_server_frees_the_port() {
    let (s, _) = start(Limits::default());
    let a = s.local_addr();
    drop(s);
    let (e, _) = exposition();
    let again = Server::start(a, e, Limits::default()).unwrap();
    assert!(get(again.local_addr(), "/metrics").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_client_that_stops_reading_is_cut_off_and_blocks_nobody() {
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    // About 14 MB of exposition: more than loopback's socket buffers (a few MB) hold.
    let mut registry = Registry::default();
    let family = Family::<[(&'static str, String); 1], Gauge>::default();
    for i in 0..100_000 {
        family
            .get_or_create(&[("series", format!("{i:0100}"))])
            .set(i);
    }
    registry.register("test_wide", "Many series", family);
    let exposition = Exposition::new(registry);
    let full = exposition.openmetrics().len();
    let s = Server::start("127.0.0.1:0".parse().unwrap(), exposition, quick_limits()).unwrap();
    let a = s.local_addr();
    let mut stuck = TcpStream::connect(a).unwrap();
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // It reads nothing for longer than the exchange may take; meanwhile others are served.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        get(a, "/").starts_with("HTTP/1.1 404"),
        "others are served meanwhile"
    );
    std::thread::sleep(quick_limits().connection_timeout + Duration::from_millis(500));
    let mut got = Vec::new();
    let _ = stuck.read_to_end(&mut got);
    assert!(
        got.len() < full,
        "the stuck exchange was cut ({} of {full} bytes)",
        got.len()
    );
}
