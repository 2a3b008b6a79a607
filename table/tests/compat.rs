//! The rows listed in `tests/compat/README.md` (a copy of `../shared/compat/`, the Python
//! package's own output) must give exactly the same bytes.

use perf_table::{Row, TableFile, ROBOT_ACTIVITY, SYSTEM_RESOURCE};
use std::path::PathBuf;

fn compat(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn robot_activity_bytes_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let rows: &[(&str, u64, u64)] = &[
        ("ANALYZING_PROTOCOL", 1722450000123456789, 2500000000),
        ("GETTING_CACHED_ANALYSIS", 1722450003000000000, 1234567),
        ("RUNNING_PROTOCOL", 1722450004000000001, 0),
        ("CALIBRATING", 1722450005999999999, 18446744073709551615),
        ("ROBOT_STARTING_UP", 0, 1),
        ("ROBOT_SHUTTING_DOWN", 1722450100000000000, 42),
    ];
    let mut buf = Vec::new();
    for (state, start, duration) in rows {
        Row::new(&mut buf)
            .str(state)
            .uint(*start)
            .uint(*duration)
            .end();
    }
    table.append(&buf).unwrap();
    table.sync().unwrap();
    assert_eq!(
        std::fs::read(table.path()).unwrap(),
        compat("robot_activity_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("robot_activity_data_headers")).unwrap(),
        compat("robot_activity_data_headers")
    );
}

#[test]
// 3.1415926535 is the fixture's value, not an attempt at π.
#[allow(clippy::approx_constant)]
fn system_resource_bytes_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let rows: &[(u64, &str, f64, f64, f64, f64)] = &[
        (
            1722450000123456789,
            "python3 -m robot_server.app",
            1722449000.45,
            12.34,
            1.0,
            3.1415926535,
        ),
        (
            1722450000123456790,
            "/opt/opentrons-robot-server/bin/x --flag \"quoted, value\"",
            1722449999.0,
            0.0,
            0.01,
            1e-05,
        ),
        (
            1722450000123456791,
            "python3 a,b",
            1.5,
            123456.789,
            0.1,
            100.0,
        ),
    ];
    let mut buf = Vec::new();
    for (t, cmd, since, user, sys, mem) in rows {
        Row::new(&mut buf)
            .uint(*t)
            .str(cmd)
            .float(*since)
            .float(*user)
            .float(*sys)
            .float(*mem)
            .end();
    }
    table.append(&buf).unwrap();
    assert_eq!(
        std::fs::read(table.path()).unwrap(),
        compat("system_resource_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data_headers")).unwrap(),
        compat("system_resource_data_headers")
    );
}

#[test]
fn appends_continue_an_existing_file_and_truncate_returns_to_a_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut buf = Vec::new();
    Row::new(&mut buf).str("A").uint(1).uint(2).end();
    {
        let mut t = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
        t.append(&buf).unwrap();
    }
    let mut t = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(t.len(), buf.len() as u64);
    t.append(&buf).unwrap();
    assert_eq!(t.len(), 2 * buf.len() as u64);
    t.truncate(buf.len() as u64).unwrap();
    assert_eq!(std::fs::read(t.path()).unwrap(), buf);
}

#[test]
fn refuses_a_symlink_in_place_of_the_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("robot_activity_data")).unwrap();
    let err = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap_err();
    assert!(err.to_string().contains("robot_activity_data"), "{err}");
}
