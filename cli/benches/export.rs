//! `perf-metrics export --chrome-trace` against the reading it cannot go under, in the
//! same run, on a generated storage directory (200,000 activity rows from 4 services × 5
//! threads with the context table from row 40,000 on, and 50,000 tracker rows):
//!
//! - `export`: [`write_chrome_trace`] into `io::sink()`: read, match the context, place on
//!   tracks, format the JSON;
//! - `read_only`: the same tables read and matched with nothing done per row (the floor:
//!   CSV parsing and the context matching);
//! - `report`: `report::build` over the same directory, for scale.
//!
//! The export's cost beyond reading is `export / read_only`. Run:
//! `cargo bench -p perf-metrics --bench export`. The month-sized measured run (10 M rows,
//! time and peak RSS) uses `benches/gen_month.py`; see the README.

use std::io::Write as _;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use perf_metrics::export::write_chrome_trace;
use perf_metrics::window::Window;
use perf_table::Row;

const ACTIVITY: u64 = 200_000;
const CONTEXT_FROM: u64 = 40_000;
const RESOURCES: u64 = 50_000;

fn generate(dir: &Path) {
    let states = perf_producer::RobotActivityState::NAMES;
    let services = [
        "robot-server",
        "protocol-analyzer",
        "hardware-controller",
        "system-server",
    ];
    let mut rng = fastrand::Rng::with_seed(15);
    let mut clock = [1_790_000_000_000_000_000u64; 20];
    let mut data = Vec::new();
    let mut context = Vec::new();
    for i in 0..ACTIVITY {
        let thread = (i % 20) as usize;
        let state = states[(i as usize * 7) % states.len()];
        let start = clock[thread] + rng.u64(1_000..50_000);
        let duration = rng.u64(1_000..50_000_000);
        clock[thread] = start + duration;
        Row::new(&mut data)
            .str(state)
            .uint(start)
            .uint(duration)
            .end();
        if i >= CONTEXT_FROM {
            let pid = 1_000 + (thread / 5) as u64 * 100;
            Row::new(&mut context)
                .str(state)
                .uint(start)
                .uint(duration)
                .str(services[thread / 5])
                .uint(pid)
                .uint(pid + (thread % 5) as u64)
                .end();
        }
    }
    let mut resources = Vec::new();
    let mut cpu = [0.0f64; 10];
    for i in 0..RESOURCES {
        let k = (i % 10) as usize;
        cpu[k] += rng.f64() * 0.5;
        Row::new(&mut resources)
            .uint(1_790_000_000_000_000_000 + (i / 10) * 10_000_000_000)
            .str(&format!("python3 -m opentrons.service{k}"))
            .float(1_789_999_000.0)
            .float(cpu[k])
            .float(cpu[k] / 4.0)
            .float(1.5 + rng.f64())
            .end();
    }
    for (name, bytes) in [
        (perf_table::ROBOT_ACTIVITY.name, data),
        (perf_table::ROBOT_ACTIVITY_CONTEXT.name, context),
        (perf_table::SYSTEM_RESOURCE.name, resources),
    ] {
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        f.write_all(&bytes).unwrap();
    }
}

fn export(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("perf-metrics-bench")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    generate(dir.path());
    let path = dir.path();
    let mut group = c.benchmark_group("export_250k_rows");
    group.throughput(Throughput::Elements(ACTIVITY + RESOURCES));
    group.sample_size(10);
    group.bench_function("export", |b| {
        b.iter(|| {
            let s = write_chrome_trace(path, Window::default(), &mut std::io::sink(), &mut |_| {})
                .unwrap();
            assert_eq!(s.events, ACTIVITY);
        })
    });
    group.bench_function("read_only", |b| {
        b.iter(|| {
            let mut n = 0u64;
            perf_metrics::join::for_each_activity(path, &mut |_| {}, &mut |_, _| n += 1).unwrap();
            let resources = path.join(perf_table::SYSTEM_RESOURCE.name);
            perf_metrics::data::for_each_resource(&resources, &mut |_| {}, &mut |_| n += 1)
                .unwrap();
            assert_eq!(n, ACTIVITY + RESOURCES);
        })
    });
    group.bench_function("report", |b| {
        b.iter(|| perf_metrics::report::build(path, Window::default(), &mut |_| {}).unwrap())
    });
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);
