//! The sampler's own row path (`write_row` and `Storage`) gives the Python package's bytes
//! for the rows in `table/tests/compat/README.md`.

// The fixture holds 3.1415926535 as data, not as an approximation of pi.
#![allow(clippy::approx_constant)]

use perf_sampler::proc::Usage;
use perf_sampler::sample::{write_row, Record};
use perf_sampler::storage::Storage;

const COMPAT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../table/tests/compat/");

#[test]
fn system_resource_rows_match_python_bytes() {
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
    for &(query_time, command, running_since, user, system, mem) in rows {
        write_row(
            &mut buf,
            &Record {
                query_time,
                command,
                usage: Usage {
                    running_since,
                    user_cpu_time: user,
                    system_cpu_time: system,
                    memory_percent: mem,
                    resident_bytes: 0,
                },
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut storage = Storage::new(dir.path());
    storage.write(&buf, rows.len()).unwrap();
    let read = |name: &str| std::fs::read(std::path::Path::new(COMPAT).join(name)).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data")).unwrap(),
        read("system_resource_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data_headers")).unwrap(),
        read("system_resource_data_headers")
    );
}
