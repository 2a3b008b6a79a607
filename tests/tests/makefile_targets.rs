//! The root `Makefile` against a stand-in robot on loopback: `make -n` of every target, the
//! argument checks, real runs of the feature-flag targets against a small HTTP server, and
//! real runs of the ssh targets with `ssh`/`scp` replaced by recording scripts.
//!
//! Skipped, with the reason printed, only when `make` or `curl` is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const ROBOT_TARGETS: &[&str] = &[
    "push",
    "set-performance-metrics-ff",
    "unset-performance-metrics-ff",
    "override-robot-version",
    "cleanup-remote-flex",
];
const INSTALL_BIN_DIR: &str = "/opt/opentrons-performance-metrics/bin";
const DEFAULT_SSH: &str =
    "-i ~/.ssh/robot_key -o stricthostkeychecking=no -o userknownhostsfile=/dev/null";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `tool --version` runs; prints why the test is skipped when not.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `{tool}` is not installed");
    }
    ok
}

fn tools_present() -> bool {
    have("make") && have("curl")
}

/// `make -C <workspace> args...` with an environment that cannot leak into the Makefile's
/// variables (make imports the environment: a `host` there would satisfy the host check).
fn make(args: &[&str], path_prefix: Option<&Path>) -> Output {
    let mut cmd = Command::new("make");
    cmd.arg("--no-print-directory")
        .arg("-C")
        .arg(workspace())
        .args(args);
    for var in [
        "host",
        "port",
        "version",
        "tracker",
        "ssh_key",
        "ssh_opts",
        "flex_target",
        "flex_linker",
        "flex_rustc",
        "MATURIN",
        "dist_dir",
        "CARGO_TARGET_DIR",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
    ] {
        cmd.env_remove(var);
    }
    if let Some(dir) = path_prefix {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap());
    }
    cmd.output().expect("cannot run make")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `make -n args...`, which must succeed; its stdout.
fn dry_run(args: &[&str]) -> String {
    let mut all = vec!["-n"];
    all.extend_from_slice(args);
    let out = make(&all, None);
    assert!(out.status.success(), "make {all:?}:\n{}", describe(&out));
    text(&out.stdout)
}

/// Asserts that `needles` occur in `haystack` in this order.
fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match haystack[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => {
                panic!("{needle:?} missing (or out of order) after byte {from} in:\n{haystack}")
            }
        }
    }
}

// --- argument checks and help ---------------------------------------------------------------

#[test]
fn help_is_the_default_and_lists_every_target() {
    if !tools_present() {
        return;
    }
    let out = make(&[], None);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    for target in ROBOT_TARGETS.iter().chain(&["build-flex", "help"]) {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(target)),
            "help does not list {target}:\n{stdout}"
        );
    }
}

#[test]
fn robot_targets_without_host_fail_and_say_so() {
    if !tools_present() {
        return;
    }
    for target in ROBOT_TARGETS {
        for dry in [true, false] {
            let mut args = vec![*target, "version=1.0.0"];
            if dry {
                args.insert(0, "-n");
            }
            let out = make(&args, None);
            let stderr = text(&out.stderr);
            assert!(
                !out.status.success()
                    && stderr.contains("host is not set")
                    && stderr.contains(&format!("make {target} host=<flex-ip>")),
                "make {args:?}:\n{}",
                describe(&out)
            );
            assert!(
                out.stdout.is_empty(),
                "make {args:?} ran something:\n{}",
                describe(&out)
            );
        }
    }
}

#[test]
fn override_robot_version_without_version_fails_and_says_so() {
    if !tools_present() {
        return;
    }
    let out = make(&["-n", "override-robot-version", "host=10.0.0.2"], None);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("version is not set"),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_unknown_tracker_is_refused() {
    if !tools_present() {
        return;
    }
    let out = make(&["-n", "push", "host=10.0.0.2", "tracker=tracker"], None);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("tracker must be system-resource-tracker"),
        "{}",
        describe(&out)
    );
}

// --- build-flex -----------------------------------------------------------------------------

#[test]
fn build_flex_cross_compiles_everything_then_the_wheel_then_the_bundle() {
    if !tools_present() {
        return;
    }
    // The toolchain check runs for real even under -n; point it at tools that exist.
    let out = dry_run(&[
        "build-flex",
        "flex_rustc=rustc",
        "flex_linker=cc",
        "MATURIN=true",
    ]);
    assert_in_order(
        &out,
        &[
            "libstd-rust-web-dev:arm64",
            "RUSTC=rustc CARGO_TARGET_DIR=",
            "/target/flex",
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=cc",
            "cargo build --locked --profile flex --target aarch64-unknown-linux-gnu \
             -p perf-drainer -p perf-sampler -p perf-metrics -p perf-tests --bins",
            "cd python && RUSTC=rustc",
            "true build --locked --profile flex --target aarch64-unknown-linux-gnu",
            "--compatibility manylinux_2_35",
            "sh packaging/build-bundle.sh",
            "target/flex/aarch64-unknown-linux-gnu/flex",
            "dist perf-drainer system-resource-tracker perf-metrics perf-load",
        ],
    );
}

#[test]
fn build_flex_names_what_to_install_when_the_toolchain_is_missing() {
    if !tools_present() {
        return;
    }
    let apt = "apt-get install rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu";
    for (args, names) in [
        (
            vec!["flex_rustc=no-such-rustc-for-this-test", "MATURIN=true"],
            vec![
                "no-such-rustc-for-this-test",
                "dpkg --add-architecture arm64",
                apt,
            ],
        ),
        (
            vec![
                "flex_rustc=rustc",
                "flex_target=no-such-target-for-this-test",
                "MATURIN=true",
            ],
            vec!["no-such-target-for-this-test", apt],
        ),
        (
            vec![
                "flex_rustc=rustc",
                "flex_target=x86_64-unknown-linux-gnu",
                "flex_linker=no-such-linker-for-this-test",
                "MATURIN=true",
            ],
            vec!["no-such-linker-for-this-test", apt],
        ),
        (
            vec![
                "flex_rustc=rustc",
                "flex_target=x86_64-unknown-linux-gnu",
                "flex_linker=cc",
                "MATURIN=no-such-maturin-for-this-test",
            ],
            vec!["no-such-maturin-for-this-test", "pip install 'maturin"],
        ),
    ] {
        let mut all = vec!["build-flex"];
        all.extend(&args);
        let out = make(&all, None);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {}", describe(&out));
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(
            errors.len(),
            1,
            "one line per missing tool: {}",
            describe(&out)
        );
        for name in names {
            assert!(
                errors[0].contains(name),
                "{name} not named: {}",
                describe(&out)
            );
        }
        assert!(
            !text(&out.stdout).contains("cargo build"),
            "cargo ran anyway:\n{}",
            describe(&out)
        );
    }
}

// --- push, override-robot-version, cleanup-remote-flex: make -n ------------------------------

#[test]
fn push_builds_ships_the_bundle_and_runs_its_install_script() {
    if !tools_present() {
        return;
    }
    let out = dry_run(&["push", "host=10.1.2.3", "flex_rustc=rustc", "MATURIN=true"]);
    let version = std::fs::read_to_string(workspace().join("cli/Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let bundle = format!("performance-metrics-flex-{version}");
    assert_in_order(
        &out,
        &[
            "cargo build --locked --profile flex",
            "sh packaging/build-bundle.sh",
            &format!("ssh {DEFAULT_SSH} root@10.1.2.3"),
            "mkdir -p /data/.opentrons-performance-metrics-push",
            "scp ",
            DEFAULT_SSH,
            &format!("dist/{bundle}.tar.gz"),
            "root@10.1.2.3:/data/.opentrons-performance-metrics-push/",
            &format!("ssh {DEFAULT_SSH} root@10.1.2.3"),
            "set -e",
            &format!("tar -xzf {bundle}.tar.gz"),
            &format!("sh {bundle}/install.sh --tracker system-resource-tracker"),
            "rm -rf /data/.opentrons-performance-metrics-push",
        ],
    );
    // What install.sh does with the real root (tests/tests/flex_bundle.rs runs it).
    let script = std::fs::read_to_string(workspace().join("packaging/install.sh")).unwrap();
    let prefix = INSTALL_BIN_DIR.strip_suffix("/bin").unwrap();
    assert!(script.contains(&format!("\nprefix={prefix}\n")), "{script}");
    assert_in_order(
        &script,
        &[
            "trap 'mount -o remount,ro /' EXIT",
            "mount -o remount,rw /",
            "$prefix/bin/",
            "systemctl daemon-reload",
            "systemctl enable --quiet $services",
            "mount -o remount,ro /",
            "systemctl restart $services",
        ],
    );
}

#[test]
fn push_can_enable_the_dev_tracker_and_honours_ssh_settings() {
    if !tools_present() {
        return;
    }
    let out = dry_run(&[
        "push",
        "host=10.1.2.3",
        "tracker=system-resource-tracker-dev",
        "ssh_key=/keys/flex",
        "ssh_opts=-o BatchMode=yes",
        "flex_rustc=rustc",
        "MATURIN=true",
    ]);
    assert!(!out.contains("robot_key"), "{out}");
    assert_in_order(
        &out,
        &[
            "ssh -i /keys/flex -o BatchMode=yes root@10.1.2.3",
            "scp ",
            "-i /keys/flex -o BatchMode=yes",
            "install.sh --tracker system-resource-tracker-dev",
        ],
    );
    let out = dry_run(&[
        "push",
        "host=10.1.2.3",
        "ssh_key=",
        "flex_rustc=rustc",
        "MATURIN=true",
    ]);
    assert!(
        !out.contains(" -i "),
        "empty ssh_key still passes -i:\n{out}"
    );
}

#[test]
fn override_robot_version_dry_run() {
    if !tools_present() {
        return;
    }
    let out = dry_run(&["override-robot-version", "host=10.1.2.3", "version=8.2.0"]);
    assert_in_order(
        &out,
        &[
            "cat /etc/VERSION.json",
            "python3",
            "'8.2.0' opentrons_api_version update_server_version robot_server_version \
             server_utils_version opentrons_hardware_version",
            "root@10.1.2.3:/data/VERSION.json",
            "mount -o remount,rw /",
            "cp /data/VERSION.json /etc/VERSION.json",
            "mount -o remount,ro /",
            "systemctl restart opentrons-robot-server",
        ],
    );
}

#[test]
fn cleanup_dry_run() {
    if !tools_present() {
        return;
    }
    let out = dry_run(&["cleanup-remote-flex", "host=10.1.2.3"]);
    assert_in_order(
        &out,
        &[
            // A bundle install is undone by the uninstall.sh it installed...
            "if [ -f /opt/opentrons-performance-metrics/uninstall.sh ]",
            "sh /opt/opentrons-performance-metrics/uninstall.sh --purge-data || exit 1",
            // ...an older one inline.
            "else",
            "systemctl stop perf-drainer system-resource-tracker system-resource-tracker-dev",
            "trap \"mount -o remount,ro /\" EXIT",
            "mount -o remount,rw /",
            "systemctl disable",
            "rm -f /etc/systemd/system/perf-drainer.service",
            "rm -rf /opt/opentrons-performance-metrics/",
            "mount -o remount,ro /",
            "rm -rf /data/performance_metrics_data /data/performance_metrics_data_dev /dev/shm/performance_metrics",
            "\"value\": false",
        ],
    );
}

// --- a stand-in robot: HTTP ------------------------------------------------------------------

/// One HTTP request as the stand-in robot server saw it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one request on 127.0.0.1 with `status` and hands it over; gives up after 30 s.
fn stand_in_robot(status: &'static str) -> (u16, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Some(request) = answer(stream, status) {
                        let _ = tx.send(request);
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    (port, rx)
}

fn answer(stream: TcpStream, status: &str) -> Option<Request> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let reply = r#"{"settings": [], "links": {}}"#;
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )
    .ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn assert_flag_request(request: &Request, value: bool) {
    assert_eq!(request.method, "POST", "{request:?}");
    assert_eq!(request.path, "/settings", "{request:?}");
    assert_eq!(
        request.header("opentrons-version"),
        Some("*"),
        "{request:?}"
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/json"),
        "{request:?}"
    );
    let compact: String = request.body.split_whitespace().collect();
    assert_eq!(
        compact,
        format!(r#"{{"id":"enablePerformanceMetrics","value":{value}}}"#),
        "{request:?}"
    );
}

#[test]
fn the_flag_targets_post_the_setting_to_the_robot() {
    if !tools_present() {
        return;
    }
    for (target, value) in [
        ("set-performance-metrics-ff", true),
        ("unset-performance-metrics-ff", false),
    ] {
        let (port, requests) = stand_in_robot("200 OK");
        let port_arg = format!("port={port}");
        let out = make(&[target, "host=127.0.0.1", &port_arg], None);
        assert!(out.status.success(), "make {target}:\n{}", describe(&out));
        let request = requests
            .recv_timeout(Duration::from_secs(30))
            .expect("the stand-in robot got no request");
        assert_flag_request(&request, value);
    }
}

#[test]
fn a_flag_target_fails_when_the_robot_refuses() {
    if !tools_present() {
        return;
    }
    let (port, requests) = stand_in_robot("500 Internal Server Error");
    let port_arg = format!("port={port}");
    let out = make(
        &["set-performance-metrics-ff", "host=127.0.0.1", &port_arg],
        None,
    );
    assert!(
        !out.status.success(),
        "a 500 from the robot went unnoticed:\n{}",
        describe(&out)
    );
    assert_flag_request(
        &requests.recv_timeout(Duration::from_secs(30)).unwrap(),
        true,
    );
}

// --- a stand-in robot: ssh and scp ----------------------------------------------------------

/// `ssh` and `scp` replaced by scripts that record their arguments (one file per call in
/// `calls/`, arguments NUL-terminated); scp copies its local sources into `uploads/`, ssh
/// answers `cat /etc/VERSION.json` with a fixture.
struct FakeSsh {
    dir: tempfile::TempDir,
}

const VERSION_FIXTURE: &str = r#"{"opentrons_api_version": "8.0.0", "update_server_version": "8.0.0", "robot_server_version": "8.0.0", "server_utils_version": "8.0.0", "opentrons_hardware_version": "8.0.0", "buildroot_version": "unchanged", "commit": "abc"}"#;

impl FakeSsh {
    fn new() -> FakeSsh {
        let dir = tempfile::Builder::new()
            .prefix("makefile-fake-ssh-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::create_dir(root.join("uploads")).unwrap();
        std::fs::create_dir(root.join("calls")).unwrap();
        std::fs::write(root.join("VERSION.json"), VERSION_FIXTURE).unwrap();
        // Calls are numbered so that their order is kept.
        let record = format!(
            r#"n=$(ls '{calls}' | wc -l); printf '%s\0' "$(basename "$0")" "$@" > '{calls}'/$(printf %04d "$n")"#,
            calls = root.join("calls").display()
        );
        let ssh = format!(
            r#"#!/bin/sh
{record}
for last in "$@"; do :; done
if [ "$last" = "cat /etc/VERSION.json" ]; then cat '{fixture}'; fi
"#,
            fixture = root.join("VERSION.json").display()
        );
        // Sources are the arguments before the last that do not look like options (or
        // option values).
        let scp = format!(
            r#"#!/bin/sh
# Like scp: no destination, only usage (the Makefile probes `scp -O` this way).
if [ $# -lt 2 ]; then echo "usage: scp [-346ABCOpqRrsTv] source ... target" >&2; exit 1; fi
{record}
for last in "$@"; do :; done
skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$a" in
    -i|-o) skip=1 ;;
    -*) ;;
    "$last") ;;
    *) cp "$a" '{uploads}/' || exit 1 ;;
  esac
done
"#,
            uploads = root.join("uploads").display()
        );
        for (name, script) in [("ssh", ssh), ("scp", scp)] {
            let path = root.join("bin").join(name);
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeSsh { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn calls(&self) -> Vec<Vec<String>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("calls"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let raw = std::fs::read_to_string(f).unwrap();
                let raw = raw.strip_suffix('\0').unwrap_or(&raw);
                raw.split('\0').map(str::to_owned).collect()
            })
            .collect()
    }

    fn upload(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("uploads").join(name))
            .unwrap_or_else(|e| panic!("{name} was not uploaded: {e}"))
    }
}

#[test]
fn override_robot_version_rewrites_the_version_file_on_the_robot() {
    if !tools_present() || !have("python3") {
        return;
    }
    let fake = FakeSsh::new();
    let target_dir = fake.dir.path().join("target");
    let target_arg = format!("cargo_target_dir={}", target_dir.display());
    let out = make(
        &[
            "override-robot-version",
            "host=10.9.8.7",
            "version=9.9.9-test",
            &target_arg,
        ],
        Some(&fake.bin()),
    );
    assert!(out.status.success(), "{}", describe(&out));

    let uploaded = fake.upload("flex-VERSION.json");
    for key in [
        "opentrons_api_version",
        "update_server_version",
        "robot_server_version",
        "server_utils_version",
        "opentrons_hardware_version",
    ] {
        assert!(
            uploaded.contains(&format!("\"{key}\": \"9.9.9-test\"")),
            "{key} not set in:\n{uploaded}"
        );
    }
    assert!(
        uploaded.contains("\"buildroot_version\": \"unchanged\""),
        "{uploaded}"
    );
    assert!(!uploaded.contains("8.0.0"), "{uploaded}");
    assert!(
        !target_dir.join("flex-VERSION.json").exists(),
        "local copy left behind"
    );

    let calls = fake.calls();
    let remote: Vec<&str> = calls
        .iter()
        .filter(|c| c[0] == "ssh")
        .map(|c| c.last().unwrap().as_str())
        .collect();
    assert_eq!(remote.len(), 3, "{calls:?}");
    assert_eq!(remote[0], "cat /etc/VERSION.json");
    assert_in_order(
        remote[1],
        &[
            "trap \"mount -o remount,ro /\" EXIT",
            "mount -o remount,rw /",
            "cp /data/VERSION.json /etc/VERSION.json",
            "mount -o remount,ro /",
        ],
    );
    assert_eq!(remote[2], "systemctl restart opentrons-robot-server");
    let scp = calls.iter().find(|c| c[0] == "scp").unwrap();
    assert_eq!(scp.last().unwrap(), "root@10.9.8.7:/data/VERSION.json");
    for call in &calls {
        assert!(call.contains(&"root@10.9.8.7".to_owned()) || call[0] == "scp");
        // The shell expands the default key's `~`.
        assert!(
            call.iter().any(|a| a.ends_with("/.ssh/robot_key")),
            "{call:?}"
        );
    }
}

#[test]
fn cleanup_runs_the_remote_script_then_turns_the_flag_off() {
    if !tools_present() {
        return;
    }
    let fake = FakeSsh::new();
    let (port, requests) = stand_in_robot("200 OK");
    let port_arg = format!("port={port}");
    let out = make(
        &["cleanup-remote-flex", "host=127.0.0.1", &port_arg],
        Some(&fake.bin()),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_in_order(
        calls[0].last().unwrap(),
        &["mount -o remount,rw /", "rm -rf", "mount -o remount,ro /"],
    );
    assert_flag_request(
        &requests.recv_timeout(Duration::from_secs(30)).unwrap(),
        false,
    );
}
