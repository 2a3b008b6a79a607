//! Bounded storage: the live file rotated to numbered, compressed files, each step
//! redoable after a kill.

use std::io::Read;
use std::path::Path;

use perf_table::archive::{self, parse_size, segment_path, segments, settle};
use perf_table::{Rotation, Row, TableFile, ROBOT_ACTIVITY, SYSTEM_RESOURCE};

fn rows(from: u64, n: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    for i in from..from + n {
        Row::new(&mut buf)
            .str("CALIBRATING")
            .uint(i)
            .uint(i * 7)
            .end();
    }
    buf
}

/// Every byte of the table, rotated files first, oldest first, then the live file.
fn history(dir: &Path) -> Vec<u8> {
    archive::history(dir, &ROBOT_ACTIVITY).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn rotation_keeps_the_live_name_and_every_row_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Rotation {
        max_bytes: 2048,
        keep: 100,
    };
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let mut expected = Vec::new();
    let mut rotations = 0;
    for i in 0..100 {
        let batch = rows(i * 10, 10);
        if archive::rotate_if_due(&mut table, &policy, batch.len() as u64)
            .unwrap()
            .is_some()
        {
            rotations += 1;
        }
        table.append(&batch).unwrap();
        table.sync().unwrap();
        expected.extend(batch);
        assert!(table.len() <= policy.max_bytes);
    }
    assert!(rotations > 10, "{rotations} rotations");
    let segs = segments(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(segs.len(), rotations);
    assert!(segs.iter().all(|s| s.compressed));
    assert_eq!(
        segs.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=rotations as u64).collect::<Vec<_>>()
    );
    assert_eq!(history(dir.path()), expected);
    // The sidecar is untouched and only the expected names exist.
    assert!(names(dir.path())
        .iter()
        .all(|n| n.starts_with("robot_activity_data")));
}

#[test]
fn only_the_newest_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Rotation {
        max_bytes: 1,
        keep: 3,
    };
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    for i in 0..10 {
        archive::rotate_if_due(&mut table, &policy, 1).unwrap();
        table.append(&rows(i, 1)).unwrap();
    }
    let segs = segments(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(segs.iter().map(|s| s.seq).collect::<Vec<_>>(), [7, 8, 9]);
    assert_eq!(history(dir.path()), rows(6, 4));

    let none = Rotation { keep: 0, ..policy };
    archive::rotate_if_due(&mut table, &none, 1).unwrap();
    assert!(segments(dir.path(), &ROBOT_ACTIVITY).unwrap().is_empty());
    assert!(table.is_empty());
}

#[test]
fn each_state_a_kill_can_leave_is_settled() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&rows(0, 50)).unwrap();
    // Killed right after the rename: plain numbered file, no compression yet.
    let seq = table.rotate().unwrap();
    assert_eq!(seq, 1);
    assert!(segment_path(dir.path(), &ROBOT_ACTIVITY, 1, false).exists());
    // Readers see it already.
    assert_eq!(history(dir.path()), rows(0, 50));

    // Killed while compressing: a partial temporary beside the plain file.
    std::fs::write(
        dir.path().join(".robot_activity_data.1.gz.tmp"),
        b"\x1f\x8b junk",
    )
    .unwrap();
    let done = settle(dir.path(), &ROBOT_ACTIVITY, 10).unwrap();
    assert_eq!(done.compressed, [1]);
    assert_eq!(
        names(dir.path()),
        [
            "robot_activity_data",
            "robot_activity_data.1.gz",
            "robot_activity_data_headers"
        ]
    );
    assert_eq!(history(dir.path()), rows(0, 50));

    // Killed after the .gz rename but before the plain file's removal: both exist.
    table.append(&rows(50, 5)).unwrap();
    table.rotate().unwrap();
    let plain = segment_path(dir.path(), &ROBOT_ACTIVITY, 2, false);
    let gz = segment_path(dir.path(), &ROBOT_ACTIVITY, 2, true);
    settle(dir.path(), &ROBOT_ACTIVITY, 10).unwrap();
    std::fs::write(&plain, rows(50, 5)).unwrap();
    assert!(gz.exists());
    let listed = segments(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert_eq!(listed.len(), 2, "one entry per number: {listed:?}");
    assert_eq!(history(dir.path()), rows(0, 55));
    settle(dir.path(), &ROBOT_ACTIVITY, 10).unwrap();
    assert!(!plain.exists());
    assert_eq!(history(dir.path()), rows(0, 55));

    // Killed after the rename, before the new live file: opening creates it.
    table.append(&rows(55, 1)).unwrap();
    drop(table);
    std::fs::rename(
        dir.path().join("robot_activity_data"),
        segment_path(dir.path(), &ROBOT_ACTIVITY, 3, false),
    )
    .unwrap();
    let table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert!(table.is_empty());
    settle(dir.path(), &ROBOT_ACTIVITY, 10).unwrap();
    assert_eq!(history(dir.path()), rows(0, 56));
}

#[test]
fn other_tables_and_foreign_names_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "robot_activity_data.01",
        "robot_activity_data.x.gz",
        "robot_activity_data.1.bak",
        "robot_activity_data_headers",
        "system_resource_data.1.gz",
    ] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&rows(0, 1)).unwrap();
    assert_eq!(table.rotate().unwrap(), 1);
    settle(dir.path(), &ROBOT_ACTIVITY, 0).unwrap();
    let left = names(dir.path());
    for name in [
        "robot_activity_data.01",
        "robot_activity_data.x.gz",
        "robot_activity_data.1.bak",
        "system_resource_data.1.gz",
    ] {
        assert!(left.iter().any(|n| n == name), "{name} removed: {left:?}");
    }
    assert_eq!(segments(dir.path(), &SYSTEM_RESOURCE).unwrap().len(), 1);
}

#[test]
fn rotation_never_overwrites_an_existing_numbered_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&rows(0, 1)).unwrap();
    // A link planted at the next number (or any file): the rotation takes a higher one
    // only through next_seq; a name taken in between makes it fail, never overwrite.
    std::fs::write(dir.path().join("robot_activity_data.5.gz"), b"keep").unwrap();
    assert_eq!(table.rotate().unwrap(), 6);
    assert_eq!(
        std::fs::read(dir.path().join("robot_activity_data.5.gz")).unwrap(),
        b"keep"
    );
}

#[test]
fn compressed_files_are_gzip_that_standard_tools_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let data = rows(0, 5000);
    table.append(&data).unwrap();
    table.rotate().unwrap();
    settle(dir.path(), &ROBOT_ACTIVITY, 1).unwrap();
    let gz = std::fs::read(segment_path(dir.path(), &ROBOT_ACTIVITY, 1, true)).unwrap();
    assert_eq!(&gz[..2], b"\x1f\x8b");
    assert!(gz.len() * 5 < data.len(), "{} of {}", gz.len(), data.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, data);
}

#[test]
fn sizes_and_when_to_rotate() {
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("64M"), Some(64 << 20));
    assert_eq!(parse_size(" 2 GiB "), Some(2 << 30));
    assert_eq!(parse_size("10k"), Some(10 << 10));
    assert_eq!(parse_size("5MB"), Some(5 << 20));
    for bad in ["", "M", "1.5M", "-1", "1T", "99999999999999999999", "1 2"] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
    let r = Rotation {
        max_bytes: 100,
        keep: 1,
    };
    assert!(
        !r.due(0, 1000),
        "an empty live file takes even a huge append"
    );
    assert!(!r.due(50, 50));
    assert!(r.due(50, 51));
}

#[test]
fn a_segment_compressed_after_it_was_listed_is_read_from_its_gz() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    table.append(&rows(0, 5)).unwrap();
    let mut steps = Vec::new();
    table.rotate_watched(&mut |s| steps.push(s)).unwrap();
    assert_eq!(steps, [archive::Step::Renamed]);
    table.append(&rows(5, 1)).unwrap();
    let listed = segments(dir.path(), &ROBOT_ACTIVITY).unwrap();
    assert!(!listed[0].compressed);
    // A writer settles between a reader's listing and its open.
    let mut steps = Vec::new();
    archive::settle_watched(dir.path(), &ROBOT_ACTIVITY, 10, &mut |s| steps.push(s)).unwrap();
    assert_eq!(
        steps,
        [archive::Step::Compressing, archive::Step::Compressed]
    );
    let mut bytes = Vec::new();
    listed[0].open().unwrap().read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, rows(0, 5));
    assert_eq!(history(dir.path()), rows(0, 6));
    // Without a live file (a kill between rename and create) the history is the segments.
    std::fs::remove_file(dir.path().join("robot_activity_data")).unwrap();
    assert_eq!(history(dir.path()), rows(0, 5));
}

#[test]
fn settling_through_a_number_leaves_newer_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    for seq in 0..3 {
        table.append(&rows(seq * 10, 10)).unwrap();
        table.rotate().unwrap();
    }
    // Numbers 1 and 2 are settled (one kept), 3 is a rotation whose checkpoint a
    // background settler must not assume yet: it stays plain, and is not counted.
    archive::settle_through(dir.path(), &ROBOT_ACTIVITY, 1, 2, &mut |_| {}).unwrap();
    let segs = segments(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let found: Vec<(u64, bool)> = segs.iter().map(|s| (s.seq, s.compressed)).collect();
    assert_eq!(found, [(2, true), (3, false)]);
    assert_eq!(history(dir.path()), rows(10, 20));
}
