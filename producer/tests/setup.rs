//! Set-up: failures turn tracking off with exactly one warning and no panic; the lazy
//! process-wide tracker follows the environment (checked in re-executed child processes,
//! since the process-wide tracker can be set up once per process).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use perf_producer::flag::Environment;
use perf_producer::{Config, Recorded, RobotActivityState as State, SetupError, Tracker};
use perf_testkit::{ring_files as rings, ring_records as records};

static WARNINGS: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

struct CountWarnings;

impl log::Log for CountWarnings {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Warn {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn flush(&self) {}
}

/// Builds a tracker from `config` and returns it with the number of warnings it logged.
fn with_warnings(config: Config, env: &Environment) -> (Tracker, usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = log::set_logger(&CountWarnings);
    log::set_max_level(log::LevelFilter::Trace);
    let before = WARNINGS.load(Ordering::SeqCst);
    let tracker = Tracker::with_environment(config, env);
    // Tracking through a failed tracker logs nothing more.
    let _ = tracker.span(State::Calibrating);
    assert_eq!(tracker.span(State::Calibrating).end(), Recorded::Disabled);
    assert_eq!(
        tracker.record_raw(State::Calibrating, 1, 2),
        Recorded::Disabled
    );
    (tracker, WARNINGS.load(Ordering::SeqCst) - before)
}

fn env_for(dir: &Path) -> Environment {
    Environment {
        flag: Some("1".into()),
        config_dir: dir.join("no-config"),
        shm_dir: dir.join("rings"),
    }
}

#[test]
fn ring_dir_that_cannot_exist_disables_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let mut config = Config::new("svc");
    config.shm_dir = Some(file.join("rings"));
    let (tracker, warnings) = with_warnings(config, &env_for(dir.path()));
    assert!(!tracker.is_enabled());
    assert!(matches!(
        tracker.setup_error(),
        Some(SetupError::Directory { .. })
    ));
    assert_eq!(warnings, 1);
    assert_eq!(tracker.ring_path(), None);
}

#[test]
fn bad_service_name_or_capacity_disables_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, warnings) = with_warnings(Config::new("bad name/../x"), &env_for(dir.path()));
    assert!(!tracker.is_enabled());
    assert!(matches!(tracker.setup_error(), Some(SetupError::Ring(_))));
    assert_eq!(warnings, 1);

    let mut config = Config::new("svc");
    config.capacity = Some(1000);
    let (tracker, warnings) = with_warnings(config, &env_for(dir.path()));
    assert!(matches!(tracker.setup_error(), Some(SetupError::Ring(_))));
    assert_eq!(warnings, 1);
    assert!(rings(&dir.path().join("rings")).is_empty());
}

#[test]
fn turned_off_is_silent_and_makes_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment {
        flag: Some("off".into()),
        ..env_for(dir.path())
    };
    let (tracker, warnings) = with_warnings(Config::new("svc"), &env);
    assert!(matches!(tracker.setup_error(), Some(SetupError::TurnedOff)));
    assert_eq!(warnings, 0);
    assert!(!dir.path().join("rings").exists());
}

#[test]
fn ring_dir_comes_from_the_environment_when_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, warnings) = {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let before = WARNINGS.load(Ordering::SeqCst);
        let t = Tracker::with_environment(Config::new("svc"), &env_for(dir.path()));
        (t, WARNINGS.load(Ordering::SeqCst) - before)
    };
    assert_eq!(warnings, 0);
    let path = tracker.ring_path().unwrap();
    assert_eq!(path.parent().unwrap(), dir.path().join("rings"));
    assert!(path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("svc-{}-", std::process::id())));
}

/// Child side of the lazy-set-up tests: track once through the lazy process-wide tracker.
#[test]
fn lazy_child() {
    if std::env::var_os("PERF_PRODUCER_LAZY_CHILD").is_none() {
        return;
    }
    let _span = perf_producer::track(State::RobotStartingUp);
}

fn run_lazy_child(envs: &[(&str, &Path)], flag: Option<&str>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "lazy_child", "--test-threads=1"])
        .env("PERF_PRODUCER_LAZY_CHILD", "1")
        .env_remove("OT_API_FF_enablePerformanceMetrics")
        .env_remove("OT_API_CONFIG_DIR")
        .env_remove("OT_PERFORMANCE_METRICS_SHM_DIR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if let Some(flag) = flag {
        cmd.env("OT_API_FF_enablePerformanceMetrics", flag);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn lazy_set_up_follows_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let shm = dir.path().join("shm");
    // Flag from the variable.
    run_lazy_child(&[("OT_PERFORMANCE_METRICS_SHM_DIR", &shm)], Some("ON"));
    let found = rings(&shm);
    assert_eq!(found.len(), 1);
    let (recs, states) = records(&found[0]);
    assert_eq!(recs.len(), 1);
    assert_eq!(states[recs[0].state as usize], "ROBOT_STARTING_UP");
    // The service is the executable's name, made valid.
    let exe = std::env::current_exe().unwrap();
    let service = perf_producer::service_name_from(exe.file_name().unwrap().to_str().unwrap());
    let name = found[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(&format!("{service}-")), "{name}");
    std::fs::remove_file(&found[0]).unwrap();

    // Variable off wins over a file saying on.
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("feature_flags.json"),
        r#"{"enablePerformanceMetrics": true}"#,
    )
    .unwrap();
    let both = [
        ("OT_PERFORMANCE_METRICS_SHM_DIR", shm.as_path()),
        ("OT_API_CONFIG_DIR", config.as_path()),
    ];
    run_lazy_child(&both, Some("0"));
    assert!(rings(&shm).is_empty());
    // No variable: the file decides.
    run_lazy_child(&both, None);
    assert_eq!(rings(&shm).len(), 1);
}
