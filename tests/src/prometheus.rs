//! A real Prometheus server for tests: Debian's `prometheus` binary on loopback, with a
//! scrape configuration for the given targets, and its HTTP query API.
//!
//! Tests that need it call [`Prometheus::binary`] first: on a machine without the server
//! they print why they skip, unless `PERF_REQUIRE_PROMETHEUS=1` (CI) makes that a failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Set to `1` where a missing server must fail the test rather than skip it.
pub const REQUIRE_VAR: &str = "PERF_REQUIRE_PROMETHEUS";
/// The server binary to use instead of `prometheus` on `PATH`.
pub const BIN_VAR: &str = "PERF_PROMETHEUS_BIN";

/// One scrape target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `job` label.
    pub job: String,
    /// Where `/metrics` is served.
    pub addr: SocketAddr,
    /// The `robot` label (as a fleet's configuration would set it).
    pub robot: String,
}

/// A running server, killed (and its data removed) on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// The server binary, or why there is none. Panics when there is none and
    /// [`REQUIRE_VAR`] is `1`.
    pub fn binary() -> Result<PathBuf, String> {
        let found = match std::env::var_os(BIN_VAR) {
            Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
            None => std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("prometheus"))
                    .find(|p| p.is_file())
            }),
        };
        match found {
            Some(p) => Ok(p),
            None if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => panic!(
                "{REQUIRE_VAR}=1 but no prometheus binary (apt-get install prometheus, or set {BIN_VAR})"
            ),
            None => Err(format!(
                "no prometheus binary on PATH or in {BIN_VAR} (apt-get install prometheus; {REQUIRE_VAR}=1 makes this a failure)"
            )),
        }
    }

    /// Starts `bin` scraping `targets` every `interval`, and waits until it is ready.
    pub fn start(bin: &Path, targets: &[Target], interval: Duration) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("perf-prometheus-")
            .tempdir()
            .expect("temp dir");
        let secs = format!("{}ms", interval.as_millis());
        let mut config = format!(
            "global:\n  scrape_interval: {secs}\n  scrape_timeout: {secs}\n  evaluation_interval: {secs}\nscrape_configs:\n"
        );
        for t in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n        labels:\n          robot: {robot}\n",
                job = t.job,
                addr = t.addr,
                robot = t.robot
            ));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = free_loopback_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut p = Prometheus { child, addr, dir };
        let ready = perf_testkit::wait_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", p.log());
            }
            get(addr, "/-/ready").is_some_and(|(code, _)| code == 200)
        });
        assert!(ready, "prometheus not ready within 60 s:\n{}", p.log());
        p
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/query?query=…`: the `data.result` array of an instant query.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (code, body) = get(self.addr, &path).expect("prometheus answers");
        assert_eq!(code, 200, "{promql}: {body}");
        let v: Value = serde_json::from_str(&body).expect("query JSON");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The instant vector of `promql` as (value of label `by`, sample value) pairs.
    pub fn values_by(&self, promql: &str, by: &str) -> Vec<(String, f64)> {
        self.query(promql)
            .iter()
            .map(|r| {
                let label = r["metric"][by].as_str().unwrap_or_default().to_string();
                (label, sample_value(r))
            })
            .collect()
    }

    /// The single value of `promql` (a scalar-like instant vector of one sample), if any.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        (r.len() == 1).then(|| sample_value(&r[0]))
    }

    /// The `activeTargets` of `GET /api/v1/targets`.
    pub fn targets(&self) -> Vec<Value> {
        let (code, body) = get(self.addr, "/api/v1/targets").expect("prometheus answers");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("targets JSON");
        v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one result of an instant query (`"value": [time, "text"]`).
fn sample_value(r: &Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A loopback address with a port that was free a moment ago.
fn free_loopback_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr")
}

/// An HTTP/1.0 `GET` (the server closes after the response, no chunking): the status and
/// the body, or `None` if nothing answered. Enough for a JSON API on loopback.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode("sum by (state)(x{a=\"b c\"})"),
            "sum%20by%20%28state%29%28x%7Ba%3D%22b%20c%22%7D%29"
        );
    }
}
