//! The context table: every row of `robot_activity_data` again, with the ring's service,
//! the producer's pid and the writer's tid; turned off, the compatible table is written
//! exactly as without it; added to an older storage directory, it starts where it is.

use perf_ring::{ProducerRing, Record};
use perf_testkit::{stderr, Dirs};

const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING"];

fn push(ring: &ProducerRing, from: u64, n: u64) {
    for i in from..from + n {
        let r = Record {
            start_ns: 1_722_450_000_000_000_000 + i,
            duration_ns: i,
            state: (i % 2) as u32,
            tid: 7_000 + i as u32,
        };
        ring.push(&r).unwrap();
    }
}

fn once(dirs: &Dirs, args: &[&str]) {
    let out = dirs.once_with(|c| {
        c.args(args);
    });
    assert!(out.status.success(), "{}", stderr(&out));
}

fn checkpoint(dirs: &Dirs) -> serde_json::Value {
    let bytes = std::fs::read(dirs.storage.join(".perf-drainer.checkpoint")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn every_row_again_with_service_pid_and_tid() {
    let dirs = crate::dirs();
    let ring = ProducerRing::create(&dirs.shm, "robot-server", STATES, 64).unwrap();
    push(&ring, 0, 2);
    once(&dirs, &[]);
    let pid = std::process::id();
    let expected = format!(
        "\"ANALYZING_PROTOCOL\",\"1722450000000000000\",\"0\",\"robot-server\",\"{pid}\",\"7000\"\r\n\
         \"CALIBRATING\",\"1722450000000000001\",\"1\",\"robot-server\",\"{pid}\",\"7001\"\r\n"
    );
    assert_eq!(String::from_utf8(dirs.context_csv()).unwrap(), expected);
    assert_eq!(
        std::fs::read_to_string(dirs.storage.join("robot_activity_context_data_headers")).unwrap(),
        "state,func_start,duration,service,pid,tid"
    );
    assert_eq!(
        String::from_utf8(dirs.csv()).unwrap(),
        "\"ANALYZING_PROTOCOL\",\"1722450000000000000\",\"0\"\r\n\
         \"CALIBRATING\",\"1722450000000000001\",\"1\"\r\n"
    );
    // Both lengths are in the one checkpoint.
    let ckpt = checkpoint(&dirs);
    assert_eq!(ckpt["csv"]["len"], dirs.csv().len() as u64);
    assert_eq!(ckpt["context"]["len"], dirs.context_csv().len() as u64);
}

#[test]
fn turned_off_the_compatible_table_is_written_as_without_it() {
    let on = crate::dirs();
    let off = crate::dirs();
    let off_env = crate::dirs();
    for (dirs, args, env) in [
        (&on, &[][..], None),
        (&off, &["--context-table", "off"][..], None),
        (&off_env, &[][..], Some("false")),
    ] {
        let ring = ProducerRing::create(&dirs.shm, "robot-server", STATES, 64).unwrap();
        push(&ring, 0, 10);
        let out = dirs.once_with(|c| {
            c.args(args);
            if let Some(v) = env {
                c.env("OT_PERFORMANCE_METRICS_CONTEXT_TABLE", v);
            }
        });
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for dirs in [&off, &off_env] {
        assert_eq!(dirs.csv(), on.csv());
        let mut names: Vec<String> = std::fs::read_dir(&dirs.storage)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".perf-drainer.checkpoint",
                ".perf-drainer.lock",
                "robot_activity_data",
                "robot_activity_data_headers"
            ]
        );
        assert!(checkpoint(dirs).get("context").is_none());
    }
    let bad = on.once_with(|c| {
        c.env("OT_PERFORMANCE_METRICS_CONTEXT_TABLE", "sometimes");
    });
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("sometimes"), "{}", stderr(&bad));
}

#[test]
fn a_context_table_added_to_older_storage_starts_where_it_is() {
    let dirs = crate::dirs();
    let ring = ProducerRing::create(&dirs.shm, "svc", STATES, 64).unwrap();
    // An older drainer (or one with the table off) wrote the compatible file only.
    push(&ring, 0, 5);
    once(&dirs, &["--context-table", "off"]);
    assert_eq!(dirs.rows().len(), 5);
    // Turned on: the context table starts with the next rows.
    push(&ring, 5, 3);
    once(&dirs, &[]);
    assert_eq!(dirs.rows().len(), 8);
    let context = dirs.context_rows();
    let durations: Vec<u64> = context.iter().map(|c| c.duration).collect();
    assert_eq!(durations, [5, 6, 7]);
    assert_eq!(dirs.rows()[5..].len(), 3);

    // Off again for a while, then on: the context table is not cut back, nothing is
    // repeated, and the rows drained meanwhile are simply not in it.
    push(&ring, 8, 2);
    once(&dirs, &["--context-table", "off"]);
    push(&ring, 10, 2);
    once(&dirs, &[]);
    let durations: Vec<u64> = dirs.context_rows().iter().map(|c| c.duration).collect();
    assert_eq!(durations, [5, 6, 7, 10, 11]);
    let all: Vec<u64> = dirs.rows().iter().map(|r| r.2).collect();
    assert_eq!(all, (0..12).collect::<Vec<_>>());
}

#[test]
fn a_context_file_the_checkpoint_does_not_know_is_appended_to_as_it_is() {
    let dirs = crate::dirs();
    std::fs::create_dir_all(&dirs.storage).unwrap();
    // Copied in from elsewhere, or left by a run whose checkpoint was deleted.
    let old = "\"CALIBRATING\",\"1\",\"2\",\"old\",\"1\",\"1\"\r\n";
    std::fs::write(dirs.storage.join("robot_activity_context_data"), old).unwrap();
    let ring = ProducerRing::create(&dirs.shm, "svc", STATES, 64).unwrap();
    push(&ring, 0, 2);
    once(&dirs, &[]);
    let context = dirs.context_rows();
    assert_eq!(context.len(), 3);
    assert_eq!(context[0].service, "old");
    assert_eq!(context[2].duration, 1);
}
