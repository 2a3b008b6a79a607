//! Each setting's value, read and validated as the Python tracker read it: what counts as
//! `true`, how filters are split and stripped, which numbers Python's `float()` accepts.
//! Every failure is a [`ConfigError`] naming the variable (or flag) and the value.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use crate::fnmatch::Pattern;

/// A size as [`perf_table::archive::parse_size`] reads it; 0 is unbounded.
pub fn parse_max_file_size(name: &str, value: &str) -> Result<u64, ConfigError> {
    perf_table::archive::parse_size(value).ok_or_else(|| ConfigError::MaxFileSize {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// A whole number of files (0 keeps none: rotation then discards old rows).
pub fn parse_rotated_files(name: &str, value: &str) -> Result<usize, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::RotatedFiles {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// `true` or `false`, any case (`value.lower() in ("true", "false")`).
pub fn parse_enabled(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::Enabled {
            name: name.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Splits on `,`, strips each glob, drops blanks; at least one must remain.
pub fn parse_process_filters(name: &str, value: &str) -> Result<Vec<Pattern>, ConfigError> {
    let filters: Vec<Pattern> = value
        .split(',')
        .map(|f| f.trim_matches(is_python_space))
        .filter(|f| !f.is_empty())
        .map(Pattern::new)
        .collect();
    if filters.is_empty() {
        return Err(ConfigError::ProcessFilters {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(filters)
}

fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A number of seconds as Python's `float()` reads it, at least 1.0.
///
/// Unlike Python this also refuses NaN (which passed Python's `< 1.0` check and then
/// crashed the tracker's sleep) and infinity or values too large for a `Duration`.
pub fn parse_refresh_interval(name: &str, value: &str) -> Result<Duration, ConfigError> {
    let err_nan = || ConfigError::RefreshIntervalNotANumber {
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let secs = parse_python_float(value).ok_or_else(err_nan)?;
    if secs.is_nan() || secs < 1.0 {
        return Err(ConfigError::RefreshIntervalTooShort {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
    Duration::try_from_secs_f64(secs).map_err(|_| ConfigError::RefreshIntervalTooLong {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

/// Python's `float(str)`: surrounding whitespace allowed, `_` only between digits,
/// `inf`/`infinity`/`nan` in any case.
fn parse_python_float(value: &str) -> Option<f64> {
    let s = value.trim_matches(is_python_space);
    if s.contains('_') {
        let b = s.as_bytes();
        let ok = b.iter().enumerate().all(|(i, &c)| {
            c != b'_'
                || (i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        });
        if !ok {
            return None;
        }
        return s.replace('_', "").parse().ok();
    }
    s.parse().ok()
}

/// An absolute path (`PurePosixPath(value).is_absolute()`: it starts with `/`).
pub fn parse_storage_dir(name: &str, value: &OsStr) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(ConfigError::StorageDir {
            name: name.to_owned(),
            value: value.to_string_lossy().into_owned(),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        for (s, want) in [
            ("10", 10.0),
            (" 2.5\n", 2.5),
            ("1e1", 10.0),
            ("1_000", 1000.0),
            ("+1.", 1.0),
            (".5", 0.5),
            ("Infinity", f64::INFINITY),
        ] {
            assert_eq!(parse_python_float(s), Some(want), "{s:?}");
        }
        for s in ["", "ten", "1__0", "_1", "1_", "1,5", "0x10"] {
            assert_eq!(parse_python_float(s), None, "{s:?}");
        }
        assert!(parse_python_float("nan").is_some_and(f64::is_nan));
    }

    #[test]
    fn interval_bounds() {
        assert_eq!(
            parse_refresh_interval("V", "1.0"),
            Ok(Duration::from_secs(1))
        );
        assert!(matches!(
            parse_refresh_interval("V", "0.999"),
            Err(ConfigError::RefreshIntervalTooShort { .. })
        ));
        assert!(matches!(
            parse_refresh_interval("V", "nan"),
            Err(ConfigError::RefreshIntervalTooShort { .. })
        ));
        assert!(matches!(
            parse_refresh_interval("V", "inf"),
            Err(ConfigError::RefreshIntervalTooLong { .. })
        ));
        assert!(matches!(
            parse_refresh_interval("V", "1e300"),
            Err(ConfigError::RefreshIntervalTooLong { .. })
        ));
    }

    #[test]
    fn filters_drop_blanks_and_strip() {
        let f = parse_process_filters("V", " a* , ,b?,").unwrap();
        let f: Vec<&str> = f.iter().map(Pattern::as_str).collect();
        assert_eq!(f, ["a*", "b?"]);
        assert!(parse_process_filters("V", " , ").is_err());
    }
}
