//! Both of the drainer's tables as their whole history: the files rotated out of them
//! (by the drainer, oldest first, or by the test itself, acting as logrotate), then the
//! live file. The exactly-once checks count a record wherever it went.

use std::path::{Path, PathBuf};

use perf_table::{archive, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};

/// The bytes of both tables across every file that holds their rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// `robot_activity_data`'s rows.
    pub compat: Vec<u8>,
    /// `robot_activity_context_data`'s rows.
    pub context: Vec<u8>,
}

/// Both tables of the storage directory `dir`: each one's rotated files, oldest first,
/// then its live file, preceded by `external` (files rotated away by someone else, oldest
/// first, as `(compat, context)` lists; a missing file is empty).
pub fn history(dir: &Path, external: (&[PathBuf], &[PathBuf])) -> History {
    let read = |files: &[PathBuf]| -> Vec<u8> {
        files
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap_or_default())
            .collect()
    };
    let mut compat = read(external.0);
    compat.extend(archive::history(dir, &ROBOT_ACTIVITY).expect("robot_activity_data history"));
    let mut context = read(external.1);
    context.extend(archive::history(dir, &ROBOT_ACTIVITY_CONTEXT).expect("context table history"));
    History { compat, context }
}

/// Complete `\r\n`-terminated rows of `robot_activity_data` in `dir`, rotated files
/// included (a partial last line is not counted).
pub fn complete_rows(dir: &Path) -> usize {
    archive::history(dir, &ROBOT_ACTIVITY)
        .unwrap_or_default()
        .windows(2)
        .filter(|w| w == b"\r\n")
        .count()
}
