//! The drainer's log read back: each finished ring's books, and lines that must never
//! appear.

use std::collections::HashMap;
use std::path::PathBuf;

/// A finished ring's books, from the drainer's `finished and removed` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    /// Pid that created the ring.
    pub pid: u32,
    /// claimed + dropped.
    pub committed: u64,
    /// Rows written.
    pub written: u64,
    /// Dropped (ring full).
    pub dropped: u64,
    /// Records with a bad state index.
    pub invalid: u64,
    /// Claimed, never published (writer died).
    pub abandoned: u64,
    /// Drained before this drainer saw the ring.
    pub earlier: u64,
}

/// Parses `ring PATH (SERVICE pid P) finished and removed: committed C = written W +
/// dropped D + invalid I + abandoned A[ + earlier B]` lines, keyed by ring path.
///
/// A ring drained across drainer restarts can finish only once (it is removed), so each
/// path appears at most once; a later line for the same path wins.
pub fn books(log: &[String]) -> HashMap<PathBuf, Books> {
    let mut out = HashMap::new();
    for line in log {
        let Some(at) = line.find("ring ") else {
            continue;
        };
        let rest = &line[at + 5..];
        let Some(open) = rest.find(" (") else {
            continue;
        };
        let path = PathBuf::from(&rest[..open]);
        let Some(tail) = rest.split(" finished and removed: ").nth(1) else {
            continue;
        };
        let num = |key: &str| -> Option<u64> {
            let i = tail.find(key)? + key.len();
            let digits: String = tail[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let pid = rest[open..]
            .split(" pid ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (Some(committed), Some(written), Some(dropped), Some(invalid), Some(abandoned)) = (
            num("committed "),
            num("written "),
            num("dropped "),
            num("invalid "),
            num("abandoned "),
        ) else {
            continue;
        };
        out.insert(
            path,
            Books {
                pid,
                committed,
                written,
                dropped,
                invalid,
                abandoned,
                earlier: num("earlier ").unwrap_or(0),
            },
        );
    }
    out
}

/// Log lines that must never appear: panics, and books that do not add up (except for
/// rings whose path contains one of `liars`: hostile files whose counters lie).
pub fn alarming_except(log: &[String], liars: &[&str]) -> Vec<String> {
    log.iter()
        .filter(|l| {
            l.contains("panicked")
                || l.contains("RUST_BACKTRACE")
                || (l.contains("does NOT add up") && !liars.iter().any(|x| l.contains(x)))
        })
        .cloned()
        .collect()
}

/// Log lines that must never appear: panics and books that do not add up.
pub fn alarming(log: &[String]) -> Vec<String> {
    alarming_except(log, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn books_parse_the_drainer_line() {
        let log = vec![
            "INFO perf_drainer::drain: ring /x/a-1-00.ring (a pid 41) finished and removed: committed 10 = written 7 + dropped 2 + invalid 0 + abandoned 1 + earlier 0".to_owned(),
            "unrelated".to_owned(),
        ];
        let b = books(&log);
        assert_eq!(
            b[Path::new("/x/a-1-00.ring")],
            Books {
                pid: 41,
                committed: 10,
                written: 7,
                dropped: 2,
                invalid: 0,
                abandoned: 1,
                earlier: 0
            }
        );
    }
}
