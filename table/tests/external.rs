//! What other tools (logrotate, people, an attacker with write access to the storage
//! directory) do to the files under a writer that keeps them open.

use std::io::Write;
use std::os::unix::fs::symlink;

use perf_table::{ExternalChange, Row, TableFile, ROBOT_ACTIVITY};

fn row(n: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    Row::new(&mut buf)
        .str("RUNNING_PROTOCOL")
        .uint(n)
        .uint(n)
        .end();
    buf
}

/// logrotate's `copytruncate`: copy the file, then cut it to 0 while the writer holds it.
fn copytruncate(table: &TableFile, to: &std::path::Path) {
    std::fs::copy(table.path(), to).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(table.path())
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn copytruncate_leaves_no_hole() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&row(1)).unwrap();
    table.append(&row(2)).unwrap();
    let rotated = dir.path().join("robot_activity_data.1");
    copytruncate(&table, &rotated);
    table.append(&row(3)).unwrap();
    table.sync().unwrap();
    let live = std::fs::read(table.path()).unwrap();
    assert!(!live.contains(&0), "NUL bytes in the live file: {live:?}");
    assert_eq!(live, row(3));
    assert_eq!(table.len(), row(3).len() as u64);
    assert_eq!(std::fs::read(&rotated).unwrap(), [row(1), row(2)].concat());
}

#[test]
fn a_cut_back_after_copytruncate_never_lengthens_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&row(1)).unwrap();
    let committed = table.len();
    table.append(&row(2)).unwrap();
    copytruncate(&table, &dir.path().join("copy"));
    // The drainer returns to its checkpoint after a failed commit: the file is already
    // shorter, and setting its length would fill it with NULs.
    table.truncate(committed).unwrap();
    assert_eq!(std::fs::read(table.path()).unwrap(), b"");
    assert_eq!(table.len(), 0);
}

#[test]
fn follow_reports_a_shrink_before_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&row(1)).unwrap();
    let from = table.len();
    copytruncate(&table, &dir.path().join("copy"));
    assert_eq!(
        table.follow().unwrap(),
        Some(ExternalChange::Shrunk { from, to: 0 })
    );
    assert_eq!(table.follow().unwrap(), None);
    assert_eq!(table.len(), 0);
}

#[test]
fn append_followed_compares_again_unless_follow_just_did() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    // Right after opening or following, the length just compared is used.
    table.append_followed(&row(1)).unwrap();
    assert_eq!(table.follow().unwrap(), None);
    table.append_followed(&row(2)).unwrap();
    assert_eq!(table.len(), [row(1), row(2)].concat().len() as u64);
    // After an append the next one compares again: a cut since is noticed, no hole left.
    copytruncate(&table, &dir.path().join("copy"));
    table.append_followed(&row(3)).unwrap();
    assert_eq!(std::fs::read(table.path()).unwrap(), row(3));
    assert_eq!(table.len(), row(3).len() as u64);
    // A cut between `follow` and the append is appended after all the same (O_APPEND),
    // and the length is put right by the next `follow`.
    assert_eq!(table.follow().unwrap(), None);
    copytruncate(&table, &dir.path().join("copy2"));
    table.append_followed(&row(4)).unwrap();
    let live = std::fs::read(table.path()).unwrap();
    assert_eq!(live, row(4));
    assert_eq!(
        table.follow().unwrap(),
        Some(ExternalChange::Shrunk {
            from: [row(3), row(4)].concat().len() as u64,
            to: row(4).len() as u64
        })
    );
    assert_eq!(table.len(), live.len() as u64);
    // A cut back through the writer (a failed commit's) is compared again too.
    table.truncate(0).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(table.path())
        .unwrap()
        .write_all(&row(5))
        .unwrap();
    table.append_followed(&row(6)).unwrap();
    assert_eq!(table.len(), [row(5), row(6)].concat().len() as u64);
}

#[test]
fn rename_rotation_is_followed_to_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&row(1)).unwrap();
    let old = table.identity();
    let moved = dir.path().join("robot_activity_data.old");
    std::fs::rename(table.path(), &moved).unwrap();
    // logrotate's `create`: a new empty file at the path.
    std::fs::write(dir.path().join("robot_activity_data"), b"").unwrap();
    assert_eq!(table.follow().unwrap(), Some(ExternalChange::Replaced));
    assert_ne!(table.identity(), old);
    table.append(&row(2)).unwrap();
    assert_eq!(std::fs::read(&moved).unwrap(), row(1));
    assert_eq!(std::fs::read(table.path()).unwrap(), row(2));

    // `mv` without a new file: the path is created again.
    std::fs::rename(table.path(), dir.path().join("again")).unwrap();
    assert_eq!(table.follow().unwrap(), Some(ExternalChange::Replaced));
    table.append(&row(3)).unwrap();
    assert_eq!(std::fs::read(table.path()).unwrap(), row(3));
}

#[test]
fn another_writer_is_appended_after_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&row(1)).unwrap();
    let mut other = std::fs::OpenOptions::new()
        .append(true)
        .open(table.path())
        .unwrap();
    std::io::Write::write_all(&mut other, &row(9)).unwrap();
    table.append(&row(2)).unwrap();
    assert_eq!(
        std::fs::read(table.path()).unwrap(),
        [row(1), row(9), row(2)].concat()
    );
}

#[test]
fn a_planted_headers_temporary_link_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.path().join(".robot_activity_data_headers.tmp")).unwrap();
    TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(dir.path().join("robot_activity_data_headers")).unwrap(),
        b"state,func_start,duration"
    );
}

#[test]
fn a_headers_link_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let headers = dir.path().join("robot_activity_data_headers");
    symlink(&victim, &headers).unwrap();
    TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!headers.symlink_metadata().unwrap().is_symlink());
}

#[test]
fn a_planted_data_link_or_fifo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let data = dir.path().join("robot_activity_data");
    symlink(&victim, &data).unwrap();
    assert!(TableFile::open(dir.path(), &ROBOT_ACTIVITY).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    std::fs::remove_file(&data).unwrap();
    nix::unistd::mkfifo(&data, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert!(TableFile::open(dir.path(), &ROBOT_ACTIVITY).is_err());
}
