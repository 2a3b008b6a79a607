//! The unit files in `systemd/`: `systemd-analyze verify` accepts them, they keep the
//! service contract (notify, watchdog, ordering, hardening), they never delete the rings,
//! and every variable they set is one the daemons read, with a value the daemons accept.
//!
//! `systemd-analyze` comes with Debian's `systemd` package; the verify tests fail (not
//! skip) without it, so CI cannot pass by not checking.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;

/// Where `make push` installs the daemons on the robot; the units' `ExecStart=` point here.
const INSTALL_BIN_DIR: &str = "/opt/opentrons-performance-metrics/bin";
/// Every unit file, with the binary its `ExecStart=` runs.
const UNITS: &[(&str, &str)] = &[
    ("perf-drainer.service", "perf-drainer"),
    ("system-resource-tracker.service", "system-resource-tracker"),
    (
        "system-resource-tracker-dev.service",
        "system-resource-tracker",
    ),
];
const TRACKERS: &[&str] = &[
    "system-resource-tracker.service",
    "system-resource-tracker-dev.service",
];
const ROBOT_SERVER: &str = "opentrons-robot-server.service";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("systemd")
}

/// One unit file as `(section, key, value)` entries, in file order.
#[derive(Debug)]
struct Unit {
    name: String,
    text: String,
    entries: Vec<(String, String, String)>,
}

impl Unit {
    fn load(name: &str) -> Unit {
        let path = systemd_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            // A trailing backslash continues the value on the next line.
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not a key=value line: {raw:?}"));
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        Unit {
            name: name.to_owned(),
            text,
            entries,
        }
    }

    /// Every value of `key` in `section`.
    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The value of `key` in `section`, which must be set exactly once.
    fn one(&self, section: &str, key: &str) -> &str {
        match self.all(section, key).as_slice() {
            [v] => v,
            other => panic!(
                "{}: expected one [{section}] {key}=, found {other:?}",
                self.name
            ),
        }
    }

    /// Whitespace-separated words of every value of `key` in `section`.
    fn words(&self, section: &str, key: &str) -> BTreeSet<String> {
        self.all(section, key)
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    /// `Environment=` assignments, in order.
    fn environment(&self) -> Vec<(String, String)> {
        self.all("Service", "Environment")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(|kv| {
                assert!(
                    !kv.contains(['"', '\'']),
                    "{}: quoted Environment= values are not parsed by this test: {kv}",
                    self.name
                );
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: bad Environment= word {kv:?}", self.name));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn env(&self, name: &str) -> String {
        let found: Vec<_> = self
            .environment()
            .into_iter()
            .filter(|(k, _)| k == name)
            .collect();
        match found.as_slice() {
            [(_, v)] => v.clone(),
            other => panic!("{}: expected {name} set once, found {other:?}", self.name),
        }
    }
}

fn all_units() -> Vec<Unit> {
    UNITS.iter().map(|(name, _)| Unit::load(name)).collect()
}

/// A directory path as systemd compares it: no trailing slash.
fn dir(path: &str) -> String {
    path.trim_end_matches('/').to_owned()
}

#[test]
fn the_list_of_units_here_is_complete() {
    let mut on_disk: Vec<String> = std::fs::read_dir(systemd_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".service"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = UNITS.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "systemd/ and UNITS differ: add the new unit to UNITS (and to the Makefile's units)"
    );
}

// --- systemd-analyze verify -----------------------------------------------------------------

fn systemd_analyze() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("systemd-analyze"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "systemd-analyze is not installed; it comes with Debian's `systemd` package: \
             apt-get install -y systemd"
        )
    })
}

/// Copies of the units in a temporary directory, with `ExecStart=` pointing at executable
/// placeholders there instead of `INSTALL_BIN_DIR`, which does not exist on the test machine
/// (`systemd-analyze verify` checks that every command it would run is executable).
struct VerifyRoot {
    dir: tempfile::TempDir,
}

impl VerifyRoot {
    fn new(with_binaries: bool) -> VerifyRoot {
        let dir = tempfile::Builder::new()
            .prefix("systemd-units-")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, binary) in UNITS {
            let text = std::fs::read_to_string(systemd_dir().join(name)).unwrap();
            let from = format!("{INSTALL_BIN_DIR}/{binary}");
            assert!(
                text.contains(&format!("ExecStart={from}")),
                "{name}: ExecStart= does not run {from}"
            );
            let rewritten = text.replace(&from, bin.join(binary).to_str().unwrap());
            std::fs::write(dir.path().join(name), rewritten).unwrap();
            if with_binaries {
                let exe = bin.join(binary);
                std::fs::write(&exe, "#!/bin/sh\nexit 0\n").unwrap();
                std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        VerifyRoot { dir }
    }

    fn unit_paths(&self) -> Vec<PathBuf> {
        UNITS.iter().map(|(n, _)| self.dir.path().join(n)).collect()
    }

    fn verify(&self, units: &[PathBuf]) -> Output {
        Command::new(systemd_analyze())
            .args(["verify", "--man=no"])
            .args(units)
            .output()
            .expect("cannot run systemd-analyze")
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn systemd_analyze_verify_passes_on_every_unit() {
    let root = VerifyRoot::new(true);
    // All at once (they name each other in Conflicts=) and one by one.
    let mut runs = vec![root.unit_paths()];
    runs.extend(root.unit_paths().into_iter().map(|p| vec![p]));
    for units in runs {
        let out = root.verify(&units);
        // verify exits 0 on unknown keys and unparsable values and only warns on stderr:
        // any output at all is a failure.
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "systemd-analyze verify {units:?}:\n{}",
            describe(&out)
        );
    }
}

/// The two things the verify test relies on: missing executables fail verify, and a
/// mistake that only warns shows up on stderr.
#[test]
fn verify_catches_missing_binaries_and_unknown_keys() {
    let root = VerifyRoot::new(false);
    let out = root.verify(&root.unit_paths());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is not executable"),
        "verify should reject a unit whose binary is missing:\n{}",
        describe(&out)
    );

    let root = VerifyRoot::new(true);
    let unit = root.dir.path().join(UNITS[0].0);
    let text = std::fs::read_to_string(&unit).unwrap();
    let text = text.replacen("[Service]\n", "[Service]\nProtectSystem=stricter\n", 1);
    std::fs::write(&unit, text).unwrap();
    let out = root.verify(&[unit]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ProtectSystem")
            || String::from_utf8_lossy(&out.stderr).contains("protect system"),
        "verify should warn about a bad value:\n{}",
        describe(&out)
    );
}

// --- what the units must (not) say ----------------------------------------------------------

#[test]
fn no_unit_deletes_the_rings() {
    // RemoveIPC= removes the service user's files in /dev/shm when it stops; DynamicUser=
    // implies it. Either would delete the rings of running robot services.
    for unit in all_units() {
        for (section, key, value) in &unit.entries {
            assert!(
                key != "RemoveIPC" && key != "DynamicUser",
                "{}: [{section}] {key}={value} would delete the rings in /dev/shm",
                unit.name
            );
        }
        // Not even commented out: that invites someone to turn it on.
        for line in unit.text.lines() {
            let directive = line.trim_start_matches(['#', ';', ' ', '\t']);
            assert!(
                !directive.starts_with("RemoveIPC") && !directive.starts_with("DynamicUser"),
                "{}: {line:?}",
                unit.name
            );
        }
    }
}

#[test]
fn every_unit_is_a_hardened_notify_service() {
    for unit in all_units() {
        let u = &unit;
        assert_eq!(u.one("Service", "Type"), "notify", "{}", u.name);
        let watchdog = u.one("Service", "WatchdogSec");
        assert!(
            !watchdog.is_empty() && !watchdog.starts_with('0'),
            "{}: WatchdogSec={watchdog}",
            u.name
        );
        assert_eq!(u.one("Service", "Restart"), "on-failure", "{}", u.name);
        // The default soft limit of 1024 is what about 1,000 rings ran into.
        let nofile: u64 = u.one("Service", "LimitNOFILE").parse().unwrap_or(0);
        assert!(nofile >= 4096, "{}: LimitNOFILE={nofile}", u.name);
        assert_eq!(
            u.one("Install", "WantedBy"),
            "multi-user.target",
            "{}",
            u.name
        );
        for (key, value) in [
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("ProtectHome", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelLogs", "yes"),
            ("ProtectControlGroups", "yes"),
        ] {
            assert_eq!(u.one("Service", key), value, "{}: {key}=", u.name);
        }
    }
}

#[test]
fn the_drainer_starts_before_the_robot_server_and_trackers_after() {
    let drainer = Unit::load("perf-drainer.service");
    assert!(drainer.words("Unit", "Before").contains(ROBOT_SERVER));
    assert!(!drainer.words("Unit", "After").contains(ROBOT_SERVER));
    assert_eq!(
        drainer.one("Service", "ExecStart"),
        format!("{INSTALL_BIN_DIR}/perf-drainer run")
    );
    for name in TRACKERS {
        let tracker = Unit::load(name);
        assert!(
            tracker.words("Unit", "After").contains(ROBOT_SERVER),
            "{name}"
        );
        assert!(
            !tracker.words("Unit", "Before").contains(ROBOT_SERVER),
            "{name}"
        );
        assert_eq!(
            tracker.one("Service", "ExecStart"),
            format!("{INSTALL_BIN_DIR}/system-resource-tracker"),
            "{name}"
        );
        let other = TRACKERS.iter().find(|t| *t != name).unwrap();
        assert!(
            tracker.words("Unit", "Conflicts").contains(*other),
            "{name}: should conflict with {other} (two trackers would write the same table)"
        );
    }
}

#[test]
fn trackers_can_read_all_of_proc() {
    for name in TRACKERS {
        let tracker = Unit::load(name);
        // invisible/noaccess hide other users' processes, ptraceable hides the ones the
        // tracker may not ptrace; only the default shows everything.
        for value in tracker.all("Service", "ProtectProc") {
            assert_eq!(value, "default", "{name}: ProtectProc={value}");
        }
        // ProcSubset=pid hides /proc/stat (boot time) and /proc/meminfo (total memory).
        for value in tracker.all("Service", "ProcSubset") {
            assert_eq!(value, "all", "{name}: ProcSubset={value}");
        }
    }
}

/// Only the directories the daemon writes are writable, they are the ones the daemon is
/// configured with, and each is created before the sandbox is built.
#[test]
fn writable_paths_are_the_configured_directories() {
    let drainer = Unit::load("perf-drainer.service");
    let storage = dir(&drainer.env("OT_PERFORMANCE_METRICS_STORAGE_DIR"));
    let shm = dir(&drainer.env("OT_PERFORMANCE_METRICS_SHM_DIR"));
    assert_eq!(shm, "/dev/shm/performance_metrics");
    let mut cases = vec![(drainer, vec![storage, shm])];
    for name in TRACKERS {
        let tracker = Unit::load(name);
        let storage = dir(&tracker.env("OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR"));
        cases.push((tracker, vec![storage]));
    }
    for (unit, dirs) in cases {
        let writable: BTreeSet<String> = unit
            .words("Service", "ReadWritePaths")
            .iter()
            .map(|p| dir(p))
            .collect();
        let expected: BTreeSet<String> = dirs.iter().cloned().collect();
        assert_eq!(writable, expected, "{}: ReadWritePaths=", unit.name);
        let pre = unit.all("Service", "ExecStartPre");
        for d in &dirs {
            assert!(
                pre.iter()
                    .any(|cmd| cmd.starts_with("+/bin/mkdir -p") && cmd.ends_with(d.as_str())),
                "{}: no ExecStartPre=+/bin/mkdir -p ... {d} (ReadWritePaths= must exist)",
                unit.name
            );
        }
        // The storage directory is on /data, which the unit waits for.
        assert_eq!(
            unit.one("Unit", "RequiresMountsFor"),
            dirs[0],
            "{}",
            unit.name
        );
        // /dev is writable under ProtectSystem=strict: /dev/shm must be closed explicitly.
        assert!(
            unit.words("Service", "ReadOnlyPaths").contains("/dev/shm"),
            "{}",
            unit.name
        );
    }
}

#[test]
fn the_dev_tracker_is_the_debug_variant() {
    let prod = Unit::load("system-resource-tracker.service");
    let dev = Unit::load("system-resource-tracker-dev.service");
    assert_eq!(dev.env("OT_SYSTEM_RESOURCE_TRACKER_LOGGING_LEVEL"), "DEBUG");
    assert_eq!(dev.env("OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL"), "5");
    assert_eq!(
        prod.env("OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL"),
        "10"
    );
    for unit in [&prod, &dev] {
        assert_eq!(
            unit.env("OT_SYSTEM_RESOURCE_TRACKER_ENABLED"),
            "true",
            "{}",
            unit.name
        );
    }
    let prod_dir = dir(&prod.env("OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR"));
    let dev_dir = dir(&dev.env("OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR"));
    assert_eq!(prod_dir, "/data/performance_metrics_data");
    assert_ne!(prod_dir, dev_dir);
}

// --- Environment= against the daemons' command lines ----------------------------------------

/// The daemon's command line, as its binary parses it.
fn daemon_command(binary: &str) -> clap::Command {
    match binary {
        "perf-drainer" => perf_drainer::cli::Cli::command(),
        "system-resource-tracker" => perf_sampler::config::Cli::command(),
        other => panic!("no command line known for {other}"),
    }
}

/// Checks that `args` (the unit's settings, turned into flags) parse and validate.
fn daemon_accepts(binary: &str, args: &[OsString]) -> Result<(), String> {
    match binary {
        "perf-drainer" => <perf_drainer::cli::Cli as clap::Parser>::try_parse_from(args)
            .map(drop)
            .map_err(|e| e.to_string()),
        "system-resource-tracker" => perf_sampler::config::Config::from_args(args)
            .map(drop)
            .map_err(|e| e.to_string()),
        other => panic!("no command line known for {other}"),
    }
}

#[test]
fn every_environment_variable_is_one_the_daemon_reads_with_a_value_it_accepts() {
    for (name, binary) in UNITS {
        let unit = Unit::load(name);
        let command = daemon_command(binary);
        // Variable -> the flag it is the fallback of.
        let documented: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|a| {
                let env = a.get_env()?.to_str()?.to_owned();
                Some((env, a.get_long()?.to_owned()))
            })
            .collect();
        assert!(
            !documented.is_empty(),
            "{binary} reads no environment variables?"
        );
        let environment = unit.environment();
        assert!(!environment.is_empty(), "{name}: no Environment= lines");
        // The same settings as flags: the daemon's own parser validates the values
        // (without touching this process's environment, which other tests share).
        let exec: Vec<&str> = unit
            .one("Service", "ExecStart")
            .split_whitespace()
            .collect();
        let mut args: Vec<OsString> = exec.iter().map(OsString::from).collect();
        let mut seen = BTreeSet::new();
        for (var, value) in &environment {
            assert!(seen.insert(var.clone()), "{name}: {var} set twice");
            let Some((_, long)) = documented.iter().find(|(env, _)| env == var) else {
                let names: Vec<&str> = documented.iter().map(|(e, _)| e.as_str()).collect();
                panic!("{name}: {var} is not a variable {binary} reads; it reads {names:?}");
            };
            args.push(format!("--{long}").into());
            args.push(value.into());
        }
        daemon_accepts(binary, &args).unwrap_or_else(|e| {
            panic!("{name}: {binary} rejects the unit's settings {args:?}: {e}")
        });
    }
}
