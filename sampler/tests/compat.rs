//! The sampler's own row path (`write_row` and `Storage`) gives the Python package's bytes
//! for the rows of the compat fixture (`table/tests/compat/`, read by `perf-testkit`).

use perf_sampler::proc::Usage;
use perf_sampler::row::{write_row, Record};
use perf_sampler::storage::Storage;
use perf_testkit::compat;

#[test]
fn system_resource_rows_match_python_bytes() {
    let rows = compat::system_resource();
    let mut buf = Vec::new();
    for row in rows {
        write_row(
            &mut buf,
            &Record {
                query_time: row.query_time,
                command: &row.command,
                usage: Usage {
                    running_since: row.running_since,
                    user_cpu_time: row.user_cpu_time,
                    system_cpu_time: row.system_cpu_time,
                    memory_percent: row.memory_percent,
                    resident_bytes: 0,
                },
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut storage = Storage::new(dir.path());
    storage.write(&buf, rows.len()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data")).unwrap(),
        compat::bytes("system_resource_data")
    );
    assert_eq!(
        std::fs::read(dir.path().join("system_resource_data_headers")).unwrap(),
        compat::bytes("system_resource_data_headers")
    );
}
