//! The rows of the compat fixtures (`tests/compat/`, a copy of `../shared/compat/`, the
//! Python package's own output; read by `perf-testkit`) must give exactly the same bytes.

use perf_table::{Row, TableFile, ROBOT_ACTIVITY, SYSTEM_RESOURCE};
use perf_testkit::compat;

#[test]
fn robot_activity_bytes_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let mut buf = Vec::new();
    for row in compat::robot_activity() {
        Row::new(&mut buf)
            .str(&row.state)
            .uint(row.start)
            .uint(row.duration)
            .end();
    }
    table.append(&buf).unwrap();
    table.sync().unwrap();
    assert_eq!(
        std::fs::read(table.path()).unwrap(),
        compat::bytes("robot_activity_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("robot_activity_data_headers")).unwrap(),
        compat::bytes("robot_activity_data_headers")
    );
}

#[test]
fn system_resource_bytes_match_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut buf = Vec::new();
    for row in compat::system_resource() {
        Row::new(&mut buf)
            .uint(row.query_time)
            .str(&row.command)
            .float(row.running_since)
            .float(row.user_cpu_time)
            .float(row.system_cpu_time)
            .float(row.memory_percent)
            .end();
    }
    table.append(&buf).unwrap();
    assert_eq!(
        std::fs::read(table.path()).unwrap(),
        compat::bytes("system_resource_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data_headers")).unwrap(),
        compat::bytes("system_resource_data_headers")
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
