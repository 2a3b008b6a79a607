//! Paths to the daemons of other packages, for this package's integration tests.
//!
//! Cargo gives an integration test only its own package's binaries
//! (`CARGO_BIN_EXE_<name>`). For `perf-drainer` and `system-resource-tracker` this module
//! runs `cargo build -p <package> --bin <name>` once per test process, in the same target
//! directory and profile as the running test (both derived from the test's own path,
//! `…/target/<profile>/deps/<test>`), and returns `…/target/<profile>/<name>`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `perf-drainer` daemon, built on first use.
pub fn perf_drainer() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("perf-drainer", "perf-drainer"))
}

/// The `system-resource-tracker` daemon (package `perf-sampler`), built on first use.
pub fn system_resource_tracker() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("perf-sampler", "system-resource-tracker"))
}

/// `…/target/<profile>` of the running test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let mut dir = exe.parent().expect("test executable has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    dir.to_path_buf()
}

/// Builds `bin` of `package` like the running test was built; returns its path.
///
/// Panics with cargo's output when the build fails: a test that needs the binary cannot
/// go on without it.
fn build(package: &str, bin: &str) -> PathBuf {
    let profile_dir = profile_dir();
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory sits in the target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", package, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(
        out.status.success(),
        "cargo build -p {package} --bin {bin} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join(bin);
    assert!(
        path.is_file(),
        "{} missing after building it",
        path.display()
    );
    path
}
