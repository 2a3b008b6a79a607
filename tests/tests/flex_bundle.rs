//! The Flex bundle (`make build-flex`, `packaging/`): what is in it and what its install
//! script does to a folder standing for the robot's root.
//!
//! Two kinds of tests:
//! - on the real bundle in `dist/` (or `PERF_FLEX_BUNDLE`): every binary and the wheel's
//!   library is a stripped aarch64 ELF needing glibc 2.35 at most, the wheel is abi3 for
//!   CPython 3.10 with a manylinux tag the robot accepts, the bundle installs into an empty
//!   root and uninstalls to nothing, and its units name the installed paths. Skipped, with
//!   the reason printed, when no bundle was built; `PERF_REQUIRE_FLEX=1` (CI) makes a
//!   missing bundle a failure.
//! - on a bundle assembled here from `packaging/` and `systemd/` with stand-in binaries, so
//!   the install and uninstall logic is tested on any machine: reinstall, the Python package
//!   it replaces, the masked image tracker, the read-only remount when a step fails.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader};
use object::Endianness;
use perf_testkit::command::output_within;

/// Generous for a shell script that copies a few megabytes.
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

/// The robot's glibc (Yocto kirkstone).
const ROBOT_GLIBC: (u32, u32) = (2, 35);
const PREFIX: &str = "opt/opentrons-performance-metrics";
const PYTHON_DIR: &str = "opt/opentrons-robot-server";
const BINARIES: &[&str] = &[
    "perf-drainer",
    "system-resource-tracker",
    "perf-metrics",
    "perf-load",
];
const UNITS: &[&str] = &[
    "perf-drainer.service",
    "system-resource-tracker.service",
    "system-resource-tracker-dev.service",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = output_within(cmd, SCRIPT_LIMIT);
    assert!(out.status.success(), "{shown}:\n{}", describe(&out));
    out
}

// --- the real bundle -------------------------------------------------------------------------

/// The built bundle: `PERF_FLEX_BUNDLE`, else the newest `dist/performance-metrics-flex-*.tar.gz`.
/// None (with the reason printed) when there is none, unless `PERF_REQUIRE_FLEX=1`.
fn built_bundle() -> Option<PathBuf> {
    let required = std::env::var("PERF_REQUIRE_FLEX").is_ok_and(|v| v == "1");
    let found = match std::env::var_os("PERF_FLEX_BUNDLE") {
        Some(path) => Some(PathBuf::from(path)),
        None => std::fs::read_dir(workspace().join("dist"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("performance-metrics-flex-") && name.ends_with(".tar.gz")
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
            .map(|e| e.path()),
    };
    match found {
        Some(path) if path.is_file() => Some(path),
        _ if required => panic!(
            "PERF_REQUIRE_FLEX=1 but no Flex bundle was found (PERF_FLEX_BUNDLE or dist/): run `make build-flex`"
        ),
        _ => {
            eprintln!("skipped: no Flex bundle in dist/ (run `make build-flex`, or set PERF_FLEX_BUNDLE)");
            None
        }
    }
}

/// Unpacks `bundle` into a new directory; returns it and the bundle's top folder in it.
fn unpack(bundle: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = temp_dir("flex-bundle-");
    let mut tar = Command::new("tar");
    tar.arg("-xzf").arg(bundle).arg("-C").arg(dir.path());
    run_ok(tar);
    let top: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "one folder at the top of the bundle: {top:?}");
    let name = top[0].file_name().unwrap().to_string_lossy().into_owned();
    let stem = bundle.file_name().unwrap().to_string_lossy();
    assert_eq!(
        format!("{name}.tar.gz"),
        stem,
        "the folder is named like the bundle"
    );
    (dir, top[0].clone())
}

/// What one ELF file is and needs.
#[derive(Debug)]
struct ElfFacts {
    machine: elf::Machine,
    stripped: bool,
    /// The highest `GLIBC_x.y` version it needs, if any.
    max_glibc: Option<(u32, u32)>,
}

fn glibc_version(name: &[u8]) -> Option<(u32, u32)> {
    let rest = std::str::from_utf8(name).ok()?.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

fn elf_facts(path: &Path) -> ElfFacts {
    let data = std::fs::read(path).unwrap();
    let file = ElfFile64::<Endianness>::parse(&*data)
        .unwrap_or_else(|e| panic!("{} is not a 64-bit ELF file: {e}", path.display()));
    let header = file.elf_header();
    let endian = file.endian();
    assert!(
        header.is_little_endian(),
        "{} is not little-endian",
        path.display()
    );
    let sections = file.elf_section_table();
    let stripped = sections.section_by_name(endian, b".symtab").is_none();
    let mut max_glibc = None;
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, &*data).unwrap() {
        let strings = sections.strings(endian, &*data, link).unwrap();
        while let Some((_, mut aux)) = needs.next().unwrap() {
            while let Some(entry) = aux.next().unwrap() {
                let name = entry.name(endian, strings).unwrap();
                if let Some(v) = glibc_version(name) {
                    max_glibc = max_glibc.max(Some(v));
                }
            }
        }
    }
    ElfFacts {
        machine: header.e_machine(endian),
        stripped,
        max_glibc,
    }
}

#[test]
fn glibc_versions_parse() {
    assert_eq!(glibc_version(b"GLIBC_2.34"), Some((2, 34)));
    assert_eq!(glibc_version(b"GLIBC_2.2.5"), Some((2, 2)));
    assert_eq!(glibc_version(b"GLIBC_2"), Some((2, 0)));
    assert_eq!(glibc_version(b"GLIBC_PRIVATE"), None);
    assert_eq!(glibc_version(b"GCC_3.0"), None);
    // Numeric, not lexicographic: 2.4 < 2.35.
    assert!(glibc_version(b"GLIBC_2.4") < glibc_version(b"GLIBC_2.35"));
}

#[test]
fn this_test_binary_is_read_correctly() {
    // The host's own test binary: not stripped, needs some glibc, and the machine matches.
    let me = std::env::current_exe().unwrap();
    let facts = elf_facts(&me);
    assert!(!facts.stripped, "{facts:?}");
    assert!(facts.max_glibc.is_some(), "{facts:?}");
    let expected = if cfg!(target_arch = "aarch64") {
        elf::EM_AARCH64
    } else if cfg!(target_arch = "x86_64") {
        elf::EM_X86_64
    } else {
        facts.machine
    };
    assert_eq!(facts.machine, expected);
}

#[test]
fn every_binary_and_the_wheel_library_is_a_stripped_aarch64_elf_for_glibc_2_35() {
    let Some(bundle) = built_bundle() else {
        return;
    };
    let (_dir, top) = unpack(&bundle);
    let mut files: Vec<PathBuf> = BINARIES.iter().map(|b| top.join("bin").join(b)).collect();
    let bin_count = std::fs::read_dir(top.join("bin")).unwrap().count();
    assert_eq!(bin_count, BINARIES.len(), "unexpected files in bin/");
    let libs: Vec<PathBuf> = std::fs::read_dir(top.join("python/performance_metrics"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    assert_eq!(libs.len(), 1, "one extension module: {libs:?}");
    files.extend(libs);
    eprintln!("{:<40} {:>10}  needs", "file", "bytes");
    for path in &files {
        let facts = elf_facts(path);
        let size = std::fs::metadata(path).unwrap().len();
        let name = path.strip_prefix(&top).unwrap().display().to_string();
        let (major, minor) = facts.max_glibc.expect("links glibc");
        eprintln!("{name:<40} {size:>10}  GLIBC_{major}.{minor}");
        assert_eq!(
            facts.machine,
            elf::EM_AARCH64,
            "{name} is not aarch64: {facts:?}"
        );
        assert!(facts.stripped, "{name} is not stripped");
        assert!(
            (major, minor) <= ROBOT_GLIBC,
            "{name} needs GLIBC_{major}.{minor}, the robot has {}.{}",
            ROBOT_GLIBC.0,
            ROBOT_GLIBC.1
        );
    }
}

#[test]
fn the_wheel_is_abi3_for_cpython_3_10_with_a_manylinux_tag_the_robot_accepts() {
    let Some(bundle) = built_bundle() else {
        return;
    };
    let (_dir, top) = unpack(&bundle);
    let wheels: Vec<String> = std::fs::read_dir(top.join("wheel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let wheel = &wheels[0];
    let size = std::fs::metadata(top.join("wheel").join(wheel))
        .unwrap()
        .len();
    eprintln!("{wheel}: {size} bytes");
    // name-version-python-abi-platform.whl
    let stem = wheel.strip_suffix(".whl").unwrap();
    let parts: Vec<&str> = stem.split('-').collect();
    assert_eq!(parts.len(), 5, "{wheel}");
    assert_eq!(parts[0], "performance_metrics");
    assert_eq!(parts[2], "cp310", "{wheel}");
    assert_eq!(parts[3], "abi3", "{wheel}");
    let platform = parts[4];
    let glibc = platform
        .strip_prefix("manylinux_")
        .and_then(|p| p.strip_suffix("_aarch64"))
        .and_then(|v| v.split_once('_'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("not a manylinux_X_Y_aarch64 tag: {platform}"));
    assert!(glibc <= ROBOT_GLIBC, "{platform} needs a newer glibc");
    // The unpacked copy is that wheel.
    let dist_info = top.join(format!("python/{}-{}.dist-info", parts[0], parts[1]));
    let wheel_meta = std::fs::read_to_string(dist_info.join("WHEEL")).unwrap();
    assert!(
        wheel_meta.contains(&format!("Tag: cp310-abi3-{platform}")),
        "{wheel_meta}"
    );
    let record = std::fs::read_to_string(dist_info.join("RECORD")).unwrap();
    for line in record.lines() {
        let file = line.split(',').next().unwrap();
        assert!(
            top.join("python").join(file).exists(),
            "{file} in RECORD is missing"
        );
    }
}

/// Every file under `root`, relative, sorted; directories end in `/`.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn install(bundle_top: &Path, args: &[&str], path_prefix: Option<&Path>) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(bundle_top.join("install.sh")).args(args);
    if let Some(dir) = path_prefix {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap());
    }
    output_within(cmd, SCRIPT_LIMIT)
}

fn uninstall(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(root.join(PREFIX).join("uninstall.sh"))
        .arg("--root")
        .arg(root)
        .args(args);
    output_within(cmd, SCRIPT_LIMIT)
}

/// The programs under /opt that `unit` runs (`Exec*=` lines, without systemd's `+-!@:`
/// prefixes).
fn opt_programs(unit: &str) -> Vec<String> {
    unit.lines()
        .filter(|l| l.starts_with("Exec"))
        .filter_map(|l| l.split_once('='))
        .filter_map(|(_, cmd)| cmd.split_whitespace().next())
        .map(|p| p.trim_start_matches(['+', '-', '!', '@', ':']))
        .filter(|p| p.starts_with("/opt/"))
        .map(str::to_owned)
        .collect()
}

/// Installs `top` into an empty root, checks what is there, uninstalls, checks nothing is.
fn install_into_empty_root_and_back(top: &Path) -> BTreeSet<String> {
    let root = temp_dir("flex-root-");
    let root_arg = root.path().to_str().unwrap();
    let out = install(top, &["--root", root_arg], None);
    assert!(out.status.success(), "install:\n{}", describe(&out));
    let installed = tree(root.path());
    for b in BINARIES {
        let path = root.path().join(PREFIX).join("bin").join(b);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{b}");
    }
    for u in UNITS {
        let unit = std::fs::read_to_string(root.path().join("etc/systemd/system").join(u)).unwrap();
        let named = opt_programs(&unit);
        assert!(!named.is_empty(), "{u} names no installed path");
        for p in named {
            let there = root.path().join(p.trim_start_matches('/'));
            let mode = std::fs::metadata(&there)
                .unwrap_or_else(|_| panic!("{u} names {p}, which the bundle does not install"))
                .permissions()
                .mode();
            assert!(mode & 0o111 != 0, "{u} runs {p}, which is not executable");
        }
    }
    for file in [
        "__init__.py",
        "_robot_activity_tracker.py",
        "_types.py",
        "py.typed",
    ] {
        assert!(
            installed.contains(&format!("{PYTHON_DIR}/performance_metrics/{file}")),
            "{file} not installed: {installed:#?}"
        );
    }
    assert!(installed.contains(&format!("{PREFIX}/uninstall.sh")));
    assert!(installed.contains(&format!("{PREFIX}/installed")));

    let out = uninstall(root.path(), &[]);
    assert!(out.status.success(), "uninstall:\n{}", describe(&out));
    let left = tree(root.path());
    assert!(left.is_empty(), "uninstall left behind: {left:#?}");
    installed
}

#[test]
fn the_bundle_installs_into_an_empty_root_and_uninstall_leaves_nothing() {
    let Some(bundle) = built_bundle() else {
        return;
    };
    let (_dir, top) = unpack(&bundle);
    let installed = install_into_empty_root_and_back(&top);
    eprintln!(
        "installed into an empty root ({} entries):",
        installed.len()
    );
    for path in &installed {
        eprintln!("  /{path}");
    }
    assert!(
        installed.iter().any(|p| p
            .starts_with(&format!("{PYTHON_DIR}/performance_metrics/_native"))
            && p.ends_with(".so")),
        "no extension module installed: {installed:#?}"
    );
}

// --- a bundle assembled from the sources -----------------------------------------------------

/// A bundle folder like the real one, with the real scripts, units and Python sources but
/// stand-in binaries and no extension module.
fn source_bundle(dir: &Path, version: &str) -> PathBuf {
    let top = dir.join(format!("performance-metrics-flex-{version}"));
    let ws = workspace();
    for sub in [
        "bin",
        "systemd",
        "python/performance_metrics",
        "python/performance_metrics-0.1.0.dist-info",
    ] {
        std::fs::create_dir_all(top.join(sub)).unwrap();
    }
    for b in BINARIES {
        let path = top.join("bin").join(b);
        std::fs::write(&path, format!("#!/bin/sh\necho {b} {version}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for u in UNITS {
        std::fs::copy(ws.join("systemd").join(u), top.join("systemd").join(u)).unwrap();
    }
    for s in ["install.sh", "uninstall.sh"] {
        std::fs::copy(ws.join("packaging").join(s), top.join(s)).unwrap();
    }
    std::fs::write(top.join("VERSION"), format!("{version}\n")).unwrap();
    // The package's own sources; `__init__.py` says which bundle it came from.
    for entry in std::fs::read_dir(ws.join("python/python/performance_metrics")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let to = top
                .join("python/performance_metrics")
                .join(path.file_name().unwrap());
            std::fs::copy(&path, to).unwrap();
        }
    }
    std::fs::write(
        top.join("python/performance_metrics/__init__.py"),
        format!("VERSION = {version:?}\n"),
    )
    .unwrap();
    std::fs::write(
        top.join("python/performance_metrics-0.1.0.dist-info/RECORD"),
        "performance_metrics/__init__.py,,\n",
    )
    .unwrap();
    top
}

#[test]
fn a_source_bundle_installs_into_an_empty_root_and_uninstall_leaves_nothing() {
    let dir = temp_dir("flex-src-bundle-");
    let top = source_bundle(dir.path(), "9.9.9");
    install_into_empty_root_and_back(&top);
}

#[test]
fn a_reinstall_keeps_the_replaced_python_package_and_uninstall_puts_it_back() {
    let dir = temp_dir("flex-src-bundle-");
    let root = temp_dir("flex-root-");
    let r = root.path();
    let root_arg = r.to_str().unwrap();
    // The robot image: the old Python package and the unit that runs its tracker.
    let old_pkg = r.join(PYTHON_DIR).join("performance_metrics");
    std::fs::create_dir_all(old_pkg.join("system_resource_tracker")).unwrap();
    std::fs::write(old_pkg.join("__init__.py"), "OLD = True\n").unwrap();
    std::fs::write(old_pkg.join("system_resource_tracker/__main__.py"), "").unwrap();
    std::fs::create_dir_all(r.join(format!("{PYTHON_DIR}/performance_metrics-0.0.1.dist-info")))
        .unwrap();
    std::fs::write(r.join("some-robot-file"), "keep").unwrap();
    std::fs::create_dir_all(r.join("lib/systemd/system")).unwrap();
    std::fs::write(
        r.join("lib/systemd/system/opentrons-system-resource-tracker.service"),
        "[Service]\n",
    )
    .unwrap();
    let before = tree(r);

    let first = source_bundle(dir.path(), "1.0.0");
    let out = install(&first, &["--root", root_arg], None);
    assert!(out.status.success(), "{}", describe(&out));
    let second = source_bundle(dir.path(), "2.0.0");
    let out = install(&second, &["--root", root_arg], None);
    assert!(out.status.success(), "{}", describe(&out));

    // Ours is importable, the newer one; the old package is kept aside, not importable.
    let init = std::fs::read_to_string(old_pkg.join("__init__.py")).unwrap();
    assert_eq!(init, "VERSION = \"2.0.0\"\n");
    assert!(!old_pkg.join("system_resource_tracker").exists());
    let kept = r
        .join(PREFIX)
        .join("python-backup/performance_metrics/__init__.py");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), "OLD = True\n");
    let binary = std::fs::read_to_string(r.join(PREFIX).join("bin/perf-drainer")).unwrap();
    assert!(binary.contains("2.0.0"), "{binary}");
    // The image's Python tracker would fail on our package: masked.
    let mask = r.join("etc/systemd/system/opentrons-system-resource-tracker.service");
    assert_eq!(
        std::fs::read_link(&mask).unwrap(),
        Path::new("/dev/null"),
        "not masked"
    );
    // Python writing bytecode next to our package does not keep it from going.
    std::fs::create_dir(old_pkg.join("__pycache__")).unwrap();
    std::fs::write(old_pkg.join("__pycache__/x.pyc"), "").unwrap();

    let out = uninstall(r, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(tree(r), before, "uninstall did not restore the image");
    assert_eq!(
        std::fs::read_to_string(old_pkg.join("__init__.py")).unwrap(),
        "OLD = True\n"
    );
}

#[test]
fn purge_data_removes_the_csvs_and_rings_and_nothing_else() {
    let dir = temp_dir("flex-src-bundle-");
    let root = temp_dir("flex-root-");
    let r = root.path();
    let top = source_bundle(dir.path(), "1.0.0");
    let out = install(&top, &["--root", r.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", describe(&out));
    for d in [
        "data/performance_metrics_data",
        "data/performance_metrics_data_dev",
        "dev/shm/performance_metrics",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
        std::fs::write(r.join(d).join("x"), "row").unwrap();
    }
    std::fs::write(r.join("data/other"), "keep").unwrap();
    let out = uninstall(r, &["--purge-data"]);
    assert!(out.status.success(), "{}", describe(&out));
    let left: Vec<String> = tree(r).into_iter().collect();
    assert_eq!(
        left,
        ["data/", "data/other", "dev/", "dev/shm/"],
        "{left:?}"
    );
}

#[test]
fn install_refuses_bad_arguments_and_incomplete_bundles() {
    let dir = temp_dir("flex-src-bundle-");
    let root = temp_dir("flex-root-");
    let top = source_bundle(dir.path(), "1.0.0");
    let root_arg = root.path().to_str().unwrap();
    for (args, says) in [
        (vec!["--root", "relative/dir"], "absolute"),
        (
            vec!["--root", root_arg, "--tracker", "nope"],
            "--tracker must be",
        ),
        (vec!["--root", root_arg, "--bogus"], "unknown argument"),
    ] {
        let out = install(&top, &args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            describe(&out)
        );
    }
    std::fs::remove_file(top.join("bin/perf-drainer")).unwrap();
    let out = install(&top, &["--root", root_arg], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a complete bundle"));
    assert!(
        tree(root.path()).is_empty(),
        "a refused install wrote files"
    );
}

/// Stand-ins for `mount` and `systemctl` that log their arguments; `systemctl <fail_on>`
/// exits 1.
fn recording_tools(dir: &Path, log: &Path, fail_on: &str) -> PathBuf {
    let bin = dir.join("tools");
    std::fs::create_dir(&bin).unwrap();
    for (name, body) in [
        ("mount", format!("echo \"mount $*\" >> '{}'", log.display())),
        (
            "systemctl",
            format!(
                "echo \"systemctl $*\" >> '{}'; case \"$1\" in {fail_on}) exit 1;; esac",
                log.display()
            ),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
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

#[test]
fn with_systemd_the_root_is_writable_only_for_the_copy_then_the_daemons_restart() {
    let dir = temp_dir("flex-src-bundle-");
    let root = temp_dir("flex-root-");
    let log = dir.path().join("log");
    let tools = recording_tools(dir.path(), &log, "no-such-verb");
    let top = source_bundle(dir.path(), "1.0.0");
    let args = [
        "--root",
        root.path().to_str().unwrap(),
        "--systemd",
        "--tracker",
        "system-resource-tracker-dev",
    ];
    let out = install(&top, &args, Some(&tools));
    assert!(out.status.success(), "{}", describe(&out));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_in_order(
        &log_text,
        &[
            "mount -o remount,rw /",
            "systemctl daemon-reload",
            "systemctl disable --quiet system-resource-tracker\n",
            "systemctl enable --quiet perf-drainer system-resource-tracker-dev",
            "mount -o remount,ro /",
            "systemctl restart perf-drainer system-resource-tracker-dev",
        ],
    );
    assert_eq!(
        log_text.matches("remount,ro").count(),
        1,
        "remounted read-only twice:\n{log_text}"
    );
}

/// Whatever fails after the read-write remount, the root filesystem ends read-only and the
/// daemons are not restarted.
#[test]
fn the_root_filesystem_goes_back_to_read_only_when_a_step_fails() {
    let dir = temp_dir("flex-src-bundle-");
    let root = temp_dir("flex-root-");
    let log = dir.path().join("log");
    let tools = recording_tools(dir.path(), &log, "enable");
    let top = source_bundle(dir.path(), "1.0.0");
    let args = ["--root", root.path().to_str().unwrap(), "--systemd"];
    let out = install(&top, &args, Some(&tools));
    assert!(!out.status.success(), "the failing enable went unnoticed");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_in_order(
        &log_text,
        &[
            "mount -o remount,rw /",
            "systemctl daemon-reload",
            "systemctl enable",
            "mount -o remount,ro /",
        ],
    );
    assert!(
        !log_text.contains("systemctl restart"),
        "went on after the failure:\n{log_text}"
    );
    // The copy itself went through before the failure.
    assert!(root.path().join(PREFIX).join("bin/perf-drainer").exists());
    assert!(root
        .path()
        .join("etc/systemd/system/perf-drainer.service")
        .exists());

    // A failing copy (the bin folder cannot be made) also ends read-only.
    std::fs::remove_file(&log).unwrap();
    let root2 = temp_dir("flex-root-");
    std::fs::create_dir_all(root2.path().join("opt")).unwrap();
    std::fs::write(root2.path().join(PREFIX), "a file where a folder goes").unwrap();
    let args = ["--root", root2.path().to_str().unwrap(), "--systemd"];
    let out = install(&top, &args, Some(&tools));
    assert!(!out.status.success());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_in_order(
        &log_text,
        &["mount -o remount,rw /", "mount -o remount,ro /"],
    );
    assert!(!log_text.contains("systemctl"), "{log_text}");
}
