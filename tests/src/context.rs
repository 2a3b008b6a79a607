//! The check that `robot_activity_context_data` agrees with `robot_activity_data`: the same
//! rows in the same order, each with a service, a pid and a tid, and the context consistent
//! with the `perf-load` ids the durations carry (one pid per run, one tid per writing
//! thread, no tid shared by two threads of a process).
//!
//! ```
//! use perf_tests::context::verify_context;
//! let compat = b"\"A\",\"1\",\"2\"\r\n";
//! let context = b"\"A\",\"1\",\"2\",\"svc\",\"10\",\"11\"\r\n";
//! assert_eq!(verify_context(compat, context).unwrap().rows, 1);
//! assert!(verify_context(compat, b"").is_err());
//! ```

use std::collections::HashMap;

use crate::load::{decode, duration_of_row, Id};

/// What agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextBooks {
    /// Rows in both tables.
    pub rows: usize,
    /// Distinct (pid, tid) pairs: the tracks a timeline shows.
    pub threads: usize,
}

/// The first disagreement found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// A table ends in a partial row.
    #[error("{table} ends in the middle of a row")]
    PartialTail { table: &'static str },
    /// The tables have different numbers of rows.
    #[error("robot_activity_data has {compat} rows, the context table {context}")]
    Count { compat: usize, context: usize },
    /// Row `row` of the context table is not that of the compatible table plus context.
    #[error("row {row}: context row {context:?} does not extend {compat:?}")]
    Differs {
        row: usize,
        compat: String,
        context: String,
    },
    /// The context fields are not a service name and two numbers.
    #[error("row {row}: bad context {context:?}")]
    BadContext { row: usize, context: String },
    /// One `perf-load` run's rows name two pids, or one of its threads two tids.
    #[error("row {row}: {id:?} is attributed to pid {pid} tid {tid}, earlier rows of it to pid {was_pid} tid {was_tid}")]
    Inconsistent {
        row: usize,
        id: Id,
        pid: u32,
        tid: u32,
        was_pid: u32,
        was_tid: u32,
    },
    /// Two threads of one process got the same tid.
    #[error("row {row}: tid {tid} of pid {pid} belongs to two threads")]
    SharedTid { row: usize, pid: u32, tid: u32 },
}

/// Checks `context` (the context table's bytes) against `compat` (robot_activity_data's).
pub fn verify_context(compat: &[u8], context: &[u8]) -> Result<ContextBooks, ContextError> {
    for (table, bytes) in [
        ("robot_activity_data", compat),
        ("robot_activity_context_data", context),
    ] {
        if !bytes.is_empty() && !bytes.ends_with(b"\r\n") {
            return Err(ContextError::PartialTail { table });
        }
    }
    let compat = String::from_utf8_lossy(compat);
    let context = String::from_utf8_lossy(context);
    let a: Vec<&str> = compat.split_terminator("\r\n").collect();
    let b: Vec<&str> = context.split_terminator("\r\n").collect();
    if a.len() != b.len() {
        return Err(ContextError::Count {
            compat: a.len(),
            context: b.len(),
        });
    }
    // (tag, thread) -> (pid, tid), and (pid, tid) -> (tag, thread).
    let mut owner: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
    let mut thread_of: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
    for (row, (plain, full)) in a.iter().zip(&b).enumerate() {
        let row = row + 1;
        let differs = || ContextError::Differs {
            row,
            compat: plain.to_string(),
            context: full.to_string(),
        };
        let extra = full
            .strip_prefix(plain)
            .and_then(|rest| rest.strip_prefix(','))
            .ok_or_else(differs)?;
        let bad = || ContextError::BadContext {
            row,
            context: extra.to_string(),
        };
        let fields: Vec<&str> = extra.split(',').collect();
        let [service, pid, tid] = fields[..] else {
            return Err(bad());
        };
        let unquote = |f: &'_ str| {
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
        };
        let number = |f| unquote(f).and_then(|f| f.parse::<u32>().ok());
        let (Some(_), Some(pid), Some(tid)) = (unquote(service), number(pid), number(tid)) else {
            return Err(bad());
        };
        let Some(id) = duration_of_row(plain).and_then(decode) else {
            // Not a perf-load record: nothing more to cross-check.
            continue;
        };
        let was = *owner.entry((id.tag, id.thread)).or_insert((pid, tid));
        if was != (pid, tid) {
            return Err(ContextError::Inconsistent {
                row,
                id,
                pid,
                tid,
                was_pid: was.0,
                was_tid: was.1,
            });
        }
        if *thread_of.entry((pid, tid)).or_insert((id.tag, id.thread)) != (id.tag, id.thread) {
            return Err(ContextError::SharedTid { row, pid, tid });
        }
    }
    Ok(ContextBooks {
        rows: a.len(),
        threads: thread_of.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::encode;

    fn row(id: Id, pid: u32, tid: u32) -> (String, String) {
        let d = encode(id).unwrap();
        let plain = format!("\"A\",\"5\",\"{d}\"\r\n");
        let full = format!("\"A\",\"5\",\"{d}\",\"svc\",\"{pid}\",\"{tid}\"\r\n");
        (plain, full)
    }

    fn check(rows: &[(String, String)]) -> Result<ContextBooks, ContextError> {
        let compat: String = rows.iter().map(|r| r.0.as_str()).collect();
        let context: String = rows.iter().map(|r| r.1.as_str()).collect();
        verify_context(compat.as_bytes(), context.as_bytes())
    }

    #[test]
    fn agreement_and_each_kind_of_disagreement() {
        let id = |tag, thread, seq| Id { tag, thread, seq };
        let good = [
            row(id(1, 0, 0), 100, 100),
            row(id(1, 1, 0), 100, 101),
            row(id(1, 0, 1), 100, 100),
            row(id(2, 0, 0), 200, 200),
        ];
        assert_eq!(
            check(&good),
            Ok(ContextBooks {
                rows: 4,
                threads: 3
            })
        );
        let mut moved = good.clone();
        moved[2] = row(id(1, 0, 1), 100, 102);
        assert!(matches!(
            check(&moved),
            Err(ContextError::Inconsistent { row: 3, .. })
        ));
        let mut shared = good.clone();
        shared[1] = row(id(1, 1, 0), 100, 100);
        assert!(matches!(
            check(&shared),
            Err(ContextError::SharedTid { row: 2, .. })
        ));
        let mut swapped = good.clone();
        swapped.swap(0, 1);
        let (compat, _) = (good.clone(), ());
        let a: String = compat.iter().map(|r| r.0.as_str()).collect();
        let b: String = swapped.iter().map(|r| r.1.as_str()).collect();
        assert!(matches!(
            verify_context(a.as_bytes(), b.as_bytes()),
            Err(ContextError::Differs { row: 1, .. })
        ));
        assert!(matches!(
            verify_context(a.as_bytes(), &b.as_bytes()[..b.len() - 1]),
            Err(ContextError::PartialTail { .. })
        ));
        let missing: String = good[..3].iter().map(|r| r.1.as_str()).collect();
        assert_eq!(
            verify_context(a.as_bytes(), missing.as_bytes()),
            Err(ContextError::Count {
                compat: 4,
                context: 3
            })
        );
        let bad = verify_context(
            b"\"A\",\"1\",\"2\"\r\n",
            b"\"A\",\"1\",\"2\",\"svc\",\"x\",\"1\"\r\n",
        );
        assert!(matches!(bad, Err(ContextError::BadContext { row: 1, .. })));
    }
}
