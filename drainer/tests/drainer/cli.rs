//! Command-line errors: one line naming the flag or variable and the value; exit 2 for
//! usage, 1 for runtime failures.

use std::time::Duration;

use perf_testkit::{output_within, stderr, Dirs};

fn run(dirs: &Dirs, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = dirs.drainer_cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output_within(cmd, Duration::from_secs(10));
    (out.status.code(), stderr(&out))
}

/// Arguments, environment, and what the error line must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn usage_errors_exit_2_with_one_line_naming_flag_and_value() {
    let dirs = crate::dirs();
    let cases: &[Case] = &[
        (&["once", "--interval", "0"], &[], &["--interval", "'0'"]),
        (
            &["once", "--interval", "abc"],
            &[],
            &["--interval", "'abc'"],
        ),
        (
            &["once"],
            &[("OT_PERFORMANCE_METRICS_DRAIN_INTERVAL", "-3")],
            &["'-3'", "OT_PERFORMANCE_METRICS_DRAIN_INTERVAL"],
        ),
        (
            &["once", "--log-level", "verbose"],
            &[],
            &["--log-level", "verbose"],
        ),
        (
            &["once"],
            &[("OT_PERFORMANCE_METRICS_LOGGING_LEVEL", "loud")],
            &["loud", "OT_PERFORMANCE_METRICS_LOGGING_LEVEL"],
        ),
        (
            &["once", "--allow-uid", "root"],
            &[],
            &["--allow-uid", "'root'"],
        ),
        (
            &["once", "--max-file-size", "5X"],
            &[],
            &["--max-file-size", "'5X'", "16M"],
        ),
        (
            &["once"],
            &[("OT_PERFORMANCE_METRICS_ROTATED_FILES", "lots")],
            &[
                "'lots'",
                "OT_PERFORMANCE_METRICS_ROTATED_FILES",
                "whole number",
            ],
        ),
        (&["once", "--bogus"], &[], &["--bogus"]),
        (&["frobnicate"], &[], &["frobnicate"]),
    ];
    for (args, env, needles) in cases {
        let (code, err) = run(&dirs, args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?} {env:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{args:?} {env:?}: {n:?} not in {err}");
        }
    }
    // Nothing was created by a refused command line.
    assert!(!dirs.storage.exists());
}

#[test]
fn runtime_failures_exit_1_with_one_line() {
    let dirs = crate::dirs();
    // The storage "directory" is a file.
    std::fs::write(&dirs.storage, b"").unwrap();
    let (code, err) = run(&dirs, &["once"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&dirs.storage.display().to_string()), "{err}");
}

#[test]
fn a_second_drainer_on_the_same_storage_is_refused() {
    let dirs = crate::dirs();
    let daemon = dirs.daemon("10");
    daemon.wait_log("draining rings in", Duration::from_secs(10));
    let (code, err) = run(&dirs, &["once"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("another perf-drainer already drains into"),
        "{err}"
    );
    let (status, _) = daemon.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_second_consumer_of_the_same_ring_dir_is_refused_and_status_still_works() {
    let dirs = crate::dirs();
    let ring = perf_ring::ProducerRing::create(&dirs.shm, "svc", &["CALIBRATING"], 64).unwrap();
    let daemon = dirs.daemon("10");
    daemon.wait_log("draining rings in", Duration::from_secs(10));
    // Other storage directories, so only the ring directory is shared.
    let other = Dirs::new().drainer(crate::BIN);
    let args = |cmd: &str| {
        let mut a = vec![cmd.to_string(), "--storage-dir".into()];
        a.push(other.storage.display().to_string());
        a
    };
    let expected = format!(
        "another perf-drainer already drains the rings in {}",
        dirs.shm.display()
    );
    for sub in ["once", "run"] {
        let mut cmd = dirs.drainer_cmd(&[]);
        cmd.args(args(sub));
        let out = output_within(cmd, Duration::from_secs(10));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{sub}: {err}");
        assert_eq!(err.lines().count(), 1, "{sub}: {err}");
        assert!(err.contains(&expected), "{sub}: {err}");
    }
    // status is read-only and needs no lock.
    let out = output_within(dirs.drainer_cmd(&["status"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ring_name = ring
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        perf_testkit::stdout(&out).contains(&ring_name),
        "{}",
        perf_testkit::stdout(&out)
    );
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    // With the first gone, the ring directory is free again.
    let mut cmd = dirs.drainer_cmd(&[]);
    cmd.args(args("once"));
    let out = output_within(cmd, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn help_and_version_exit_0() {
    let dirs = crate::dirs();
    for args in [&["--help"][..], &["--version"], &["status", "--help"]] {
        let out = output_within(dirs.drainer_cmd(args), Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}
