//! The `enablePerformanceMetrics` feature flag, as pure functions over the environment
//! value and the file's contents (so tests need not touch the process environment), plus
//! the one function that reads them.

use std::path::{Path, PathBuf};

/// Environment variable that decides the flag when set.
pub const FLAG_ENV: &str = "OT_API_FF_enablePerformanceMetrics";
/// Environment variable naming the directory holding `feature_flags.json`.
pub const CONFIG_DIR_ENV: &str = "OT_API_CONFIG_DIR";
/// Where `feature_flags.json` lives when [`CONFIG_DIR_ENV`] is not set.
pub const DEFAULT_CONFIG_DIR: &str = "/data";
/// The flag's key in `feature_flags.json`.
pub const FLAG_KEY: &str = "enablePerformanceMetrics";
/// Environment variable naming the ring directory (the drainer reads it too).
pub const SHM_DIR_ENV: &str = perf_ring::DIR_ENV;
/// The ring directory when [`SHM_DIR_ENV`] is not set.
pub const DEFAULT_SHM_DIR: &str = perf_ring::DEFAULT_DIR;

/// Whether the environment variable's value turns tracking on: `1`, `true` or `on` in any
/// case. Anything else, the empty string included, means off.
///
/// ```
/// use perf_producer::flag::env_value_is_on;
/// assert!(env_value_is_on("TRUE") && env_value_is_on("On") && env_value_is_on("1"));
/// assert!(!env_value_is_on("yes") && !env_value_is_on("") && !env_value_is_on(" 1"));
/// ```
pub fn env_value_is_on(value: &str) -> bool {
    ["1", "true", "on"]
        .iter()
        .any(|on| value.eq_ignore_ascii_case(on))
}

/// Whether `feature_flags.json` turns tracking on: only a JSON object whose
/// `enablePerformanceMetrics` is the boolean `true`. Garbled JSON, another type, or a
/// missing key mean off.
///
/// ```
/// use perf_producer::flag::file_says_on;
/// assert!(file_says_on(r#"{"enablePerformanceMetrics": true}"#));
/// assert!(!file_says_on(r#"{"enablePerformanceMetrics": "true"}"#));
/// assert!(!file_says_on("{garbled"));
/// ```
pub fn file_says_on(contents: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(contents) {
        Ok(serde_json::Value::Object(map)) => {
            matches!(map.get(FLAG_KEY), Some(serde_json::Value::Bool(true)))
        }
        _ => false,
    }
}

/// The flag's value: an explicit choice wins, then the environment variable when it is
/// set (`env` is its value, `None` when unset), then the file (`None` when it could not be
/// read), else off.
///
/// ```
/// use perf_producer::flag::resolve;
/// let on_file = Some(r#"{"enablePerformanceMetrics": true}"#);
/// assert!(resolve(None, None, on_file));
/// assert!(!resolve(None, Some("off"), on_file)); // the variable wins when set
/// assert!(resolve(Some(true), Some("off"), None)); // an explicit choice wins over both
/// ```
pub fn resolve(explicit: Option<bool>, env: Option<&str>, file: Option<&str>) -> bool {
    match (explicit, env) {
        (Some(choice), _) => choice,
        (None, Some(value)) => env_value_is_on(value),
        (None, None) => file.is_some_and(file_says_on),
    }
}

/// What the tracker reads from the process environment, captured once at set-up.
///
/// ```
/// use perf_producer::flag::{Environment, DEFAULT_SHM_DIR, FLAG_ENV, SHM_DIR_ENV};
/// use std::path::Path;
/// // A doctest is a process of its own: changing its environment disturbs no other test.
/// std::env::set_var(SHM_DIR_ENV, "/tmp/rings");
/// std::env::set_var(FLAG_ENV, "on");
/// let env = Environment::from_process();
/// assert_eq!(env.shm_dir, Path::new("/tmp/rings"));
/// assert_eq!(env.flag.as_deref(), Some("on"));
/// assert!(env.flag_enabled(None));
///
/// std::env::set_var(SHM_DIR_ENV, ""); // empty counts as unset
/// std::env::remove_var(FLAG_ENV);
/// let env = Environment::from_process();
/// assert_eq!(env.shm_dir, Path::new(DEFAULT_SHM_DIR));
/// assert_eq!(env.flag, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Value of [`FLAG_ENV`]; `None` when unset. A value that is not UTF-8 is kept as an
    /// empty string (set, and not an "on" word).
    pub flag: Option<String>,
    /// Directory holding `feature_flags.json`.
    pub config_dir: PathBuf,
    /// Ring directory from [`SHM_DIR_ENV`] or the default.
    pub shm_dir: PathBuf,
}

impl Environment {
    /// Reads the three variables (no file I/O).
    pub fn from_process() -> Environment {
        let flag = std::env::var_os(FLAG_ENV).map(|v| v.into_string().unwrap_or_default());
        let non_empty = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Environment {
            flag,
            config_dir: non_empty(CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR),
            shm_dir: non_empty(SHM_DIR_ENV, DEFAULT_SHM_DIR),
        }
    }

    /// The flag, reading `feature_flags.json` only when neither `explicit` nor the
    /// variable decide it.
    pub fn flag_enabled(&self, explicit: Option<bool>) -> bool {
        if explicit.is_some() || self.flag.is_some() {
            return resolve(explicit, self.flag.as_deref(), None);
        }
        let contents = read_small(&self.config_dir.join("feature_flags.json"));
        resolve(None, None, contents.as_deref())
    }
}

/// Reads a file of at most 1 MiB; anything else (missing, unreadable, huge, not UTF-8)
/// is `None`, which the flag treats as off.
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut contents = String::new();
    file.take(1 << 20).read_to_string(&mut contents).ok()?;
    Some(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_file_is_read_only_when_nothing_else_decides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("feature_flags.json"),
            r#"{"_version": 3, "enablePerformanceMetrics": true}"#,
        )
        .unwrap();
        let env = Environment {
            flag: None,
            config_dir: dir.path().to_path_buf(),
            shm_dir: dir.path().to_path_buf(),
        };
        assert!(env.flag_enabled(None));
        assert!(!env.flag_enabled(Some(false)));
        let env_off = Environment {
            flag: Some("0".into()),
            ..env.clone()
        };
        assert!(!env_off.flag_enabled(None));
        let missing = Environment {
            config_dir: dir.path().join("absent"),
            ..env
        };
        assert!(!missing.flag_enabled(None));
    }
}
