//! Records per second from prefilled rings into the CSV, on one core, with baselines taken
//! in the same run:
//!
//! - `drainer`: `Drainer::drain_all` over 4 prefilled rings: read, format, one append per
//!   round to each table (`robot_activity_data` and the context table, the default),
//!   `fdatasync`, checkpoint, release. Storage and rings live on tmpfs (`/dev/shm`), so the
//!   figure is the drainer's CPU cost, not a disk's;
//! - `drainer_compat_only`: the same with the context table off: the ratio to `drainer` is
//!   what keeping service, pid and tid for every row costs;
//! - `drainer_metrics_on`: `drainer` with the Prometheus metrics on too (per-record
//!   duration buckets, books after each commit, `/metrics` served and scraped every
//!   100 ms); the target is within 10% of `drainer`, and at least 10 M records/s;
//! - `drainer_rotating`: `drainer` with each table capped at 16 MiB, 8 rotated files kept
//!   (the robot's units): every 16 MiB of rows is renamed, and gzip-compressed by the
//!   settling thread while the loop drains on. The time is the drain loop's; the thread
//!   finishes its work when the drainer is dropped, outside it. The ratio to `drainer` is
//!   what rotation costs the drain loop when it runs flat out;
//! - `csv_crate`: the same rows formatted by the `csv` crate (QUOTE_ALL, CRLF) into memory,
//!   no rings and no I/O: what a straightforward Rust writer costs;
//! - `format_only`: the drainer's row formatting alone (no rings, no I/O);
//! - `format_only_with_context`: the same, each record also as a context row;
//! - `memcpy`: copying the finished CSV bytes once: the floor any writer pays.
//!
//! Run: `cargo bench -p perf-drainer --bench drain`.

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perf_drainer::{scan::AllowedUids, Config, Drainer};
use perf_ring::{ProducerRing, Record};

/// Realistic state names: the compat fixture's, read once by the test kit.
static STATES: LazyLock<Vec<&'static str>> = LazyLock::new(perf_testkit::compat::states);
const RINGS: u64 = 4;
const PER_RING: u64 = 1 << 18;
const TOTAL: u64 = RINGS * PER_RING;

/// Realistic values: a wall-clock start near now, durations of microseconds to seconds.
fn record(i: u64) -> Record {
    Record {
        start_ns: 1_722_450_000_000_000_000 + i * 1_234_567,
        duration_ns: (i * 7_919) % 5_000_000_000,
        state: (i % STATES.len() as u64) as u32,
        tid: 21_000 + (i % 8) as u32,
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("perf-drainer-bench")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn fill(shm: &Path) -> Vec<ProducerRing> {
    (0..RINGS)
        .map(|r| {
            let ring = ProducerRing::create(shm, &format!("bench{r}"), &STATES, PER_RING).unwrap();
            for i in 0..PER_RING {
                ring.push(&record(r * PER_RING + i)).unwrap();
            }
            ring
        })
        .collect()
}

/// Time `Drainer::drain_all` takes over freshly filled rings, `iters` times. With
/// `metrics`, as `perf-drainer run --metrics-listen` has it: durations counted per record,
/// the books updated after each commit, the server running on its thread, and a client
/// scraping it every 100 ms throughout (Prometheus scrapes every 15 s or more). With
/// `context`, the context table is written beside the CSV; with `rotation`, both are capped.
fn drained(
    iters: u64,
    metrics: bool,
    context: bool,
    rotation: Option<perf_table::Rotation>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = scratch();
        let shm = dir.path().join("shm");
        std::fs::create_dir(&shm).unwrap();
        let rings = fill(&shm);
        let mut drainer = Drainer::new(Config {
            storage_dir: dir.path().join("storage"),
            shm_dir: shm,
            allowed: AllowedUids::with_defaults(&[]),
            context,
            rotation,
        })
        .unwrap();
        let exported = metrics.then(|| {
            let settings = perf_daemon::metrics::Settings {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                textfile: None,
            };
            let (exporter, m) = perf_drainer::metrics::expose(&settings).unwrap().unwrap();
            drainer.set_metrics(m);
            let scraper = Scraper::start(exporter.local_addr().unwrap());
            (exporter, scraper)
        });
        drainer.prepare().unwrap();
        drainer.scan();
        let start = Instant::now();
        let report = drainer.drain_all().unwrap();
        total += start.elapsed();
        assert_eq!(report.written, TOTAL);
        if let Some((_, scraper)) = exported {
            assert!(scraper.stop() > 0, "the server was scraped meanwhile");
        }
        drop(rings);
    }
    total
}

/// A client scraping `/metrics` every 100 ms until stopped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Scraper {
    fn start(addr: std::net::SocketAddr) -> Scraper {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut scrapes = 0;
            loop {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut body = Vec::new();
                s.read_to_end(&mut body).unwrap();
                assert!(body.starts_with(b"HTTP/1.1 200"));
                scrapes += 1;
                if stopping.load(Ordering::Relaxed) {
                    return scrapes;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Scraper { stop, thread }
    }

    /// Stops it; how many scrapes it made.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn drain(c: &mut Criterion) {
    let mut group = c.benchmark_group("rings_to_csv");
    group.throughput(Throughput::Elements(TOTAL));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("drainer", |b| {
        b.iter_custom(|iters| drained(iters, false, true, None))
    });
    group.bench_function("drainer_compat_only", |b| {
        b.iter_custom(|iters| drained(iters, false, false, None))
    });
    group.bench_function("drainer_metrics_on", |b| {
        b.iter_custom(|iters| drained(iters, true, true, None))
    });
    let units = perf_table::Rotation {
        max_bytes: 16 << 20,
        keep: 8,
    };
    group.bench_function("drainer_rotating", |b| {
        b.iter_custom(|iters| drained(iters, false, true, Some(units)))
    });

    let records: Vec<Record> = (0..TOTAL).map(record).collect();
    // Dereferenced once, so the baselines' loops index a plain slice.
    let names: &[&str] = &STATES;
    group.bench_function("csv_crate", |b| {
        b.iter_batched_ref(
            || {
                csv::WriterBuilder::new()
                    .quote_style(csv::QuoteStyle::Always)
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(Vec::with_capacity(TOTAL as usize * 64))
            },
            |w| {
                for r in &records {
                    w.write_record([
                        names[r.state as usize].as_bytes(),
                        itoa::Buffer::new().format(r.start_ns).as_bytes(),
                        itoa::Buffer::new().format(r.duration_ns).as_bytes(),
                    ])
                    .unwrap();
                }
                w.flush().unwrap();
            },
            BatchSize::PerIteration,
        )
    });

    let states: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let format = perf_drainer::rows::RowFormat::new(&states, "robot-server", 4242);
    let mut out = Vec::with_capacity(TOTAL as usize * 64);
    group.bench_function("format_only", |b| {
        b.iter(|| {
            out.clear();
            for r in &records {
                format.push(&mut out, r.state, r.start_ns, r.duration_ns);
            }
            std::hint::black_box(&out);
        })
    });
    let mut rows = perf_drainer::rows::RoundRows::with_capacity(TOTAL as usize, true);
    group.bench_function("format_only_with_context", |b| {
        b.iter(|| {
            rows.clear();
            for r in &records {
                format.push_record(&mut rows, r);
            }
            std::hint::black_box(&rows);
        })
    });

    let mut bytes = Vec::new();
    for r in &records {
        perf_table::Row::new(&mut bytes)
            .str(names[r.state as usize])
            .uint(r.start_ns)
            .uint(r.duration_ns)
            .end();
    }
    let mut dest = vec![0u8; bytes.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dest.copy_from_slice(std::hint::black_box(&bytes));
            std::hint::black_box(&dest);
        })
    });
    group.finish();
}

criterion_group!(benches, drain);
criterion_main!(benches);
