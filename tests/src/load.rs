//! The record ids `perf-load` writes, and the check that a CSV holds each committed one
//! exactly once.
//!
//! A record's duration *is* its id, a u64 laid out as:
//!
//! ```text
//!  63   62 ........ 38  37 ...... 28  27 ......... 0
//! [ 0 ][ tag: 25 bits ][ thread: 10 ][ seq: 28 bits ]
//! ```
//!
//! - `tag` tells processes apart: `perf-load --run-id`, by default its pid (Linux pids are
//!   below 2^22), so several loads running at once never share an id;
//! - `thread` is the writing thread's index (up to 1024 threads);
//! - `seq` counts that thread's records from 0 (up to 2^28 per thread).
//!
//! The top bit stays 0 so the value is also a valid non-negative i64. Records that were
//! dropped (ring full) never reach the ring, so exactly once means: every row's id is
//! well-formed and unique, and each tag has as many rows as its load reported committed.
//!
//! ```
//! use perf_tests::load::{decode, encode, Id};
//! let id = Id { tag: 4242, thread: 3, seq: 99 };
//! assert_eq!(decode(encode(id).unwrap()), Some(id));
//! ```

use std::collections::{HashMap, HashSet};

/// Bits of the per-thread sequence number.
pub const SEQ_BITS: u32 = 28;
/// Bits of the thread index.
pub const THREAD_BITS: u32 = 10;
/// Bits of the run tag.
pub const TAG_BITS: u32 = 25;

const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
const THREAD_MASK: u64 = (1 << THREAD_BITS) - 1;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// One record's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id {
    /// Which run (process) wrote it.
    pub tag: u32,
    /// Which of its threads.
    pub thread: u32,
    /// Which of that thread's records.
    pub seq: u32,
}

/// A field too large for its bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// `tag` needs more than [`TAG_BITS`] bits.
    #[error("run tag {0} does not fit in {TAG_BITS} bits")]
    Tag(u32),
    /// `thread` needs more than [`THREAD_BITS`] bits.
    #[error("thread index {0} does not fit in {THREAD_BITS} bits")]
    Thread(u32),
    /// `seq` needs more than [`SEQ_BITS`] bits.
    #[error("sequence number {0} does not fit in {SEQ_BITS} bits")]
    Seq(u32),
}

/// The duration that carries `id`.
pub fn encode(id: Id) -> Result<u64, IdError> {
    if u64::from(id.tag) > TAG_MASK {
        return Err(IdError::Tag(id.tag));
    }
    if u64::from(id.thread) > THREAD_MASK {
        return Err(IdError::Thread(id.thread));
    }
    if u64::from(id.seq) > SEQ_MASK {
        return Err(IdError::Seq(id.seq));
    }
    Ok((u64::from(id.tag) << (SEQ_BITS + THREAD_BITS))
        | (u64::from(id.thread) << SEQ_BITS)
        | u64::from(id.seq))
}

/// The id a duration carries; `None` if its top bit is set (not written by `perf-load`).
pub fn decode(duration: u64) -> Option<Id> {
    if duration >> (SEQ_BITS + THREAD_BITS + TAG_BITS) != 0 {
        return None;
    }
    Some(Id {
        tag: ((duration >> (SEQ_BITS + THREAD_BITS)) & TAG_MASK) as u32,
        thread: ((duration >> SEQ_BITS) & THREAD_MASK) as u32,
        seq: (duration & SEQ_MASK) as u32,
    })
}

/// What is wrong with a set of rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A row is not `"STATE","start","duration"` with decimal numbers.
    #[error("row {row}: not a robot activity row: {line:?}")]
    BadRow { row: usize, line: String },
    /// A duration that no `perf-load` wrote.
    #[error("row {row}: duration {duration} is not a perf-load id")]
    NotAnId { row: usize, duration: u64 },
    /// An id from a run nobody said it expected.
    #[error("row {row}: id {id:?} is from an unexpected run")]
    UnexpectedRun { row: usize, id: Id },
    /// An id seen twice.
    #[error("row {row}: id {id:?} appears again")]
    Duplicate { row: usize, id: Id },
    /// A run's rows do not number what it committed.
    #[error("run {tag}: {found} rows, {committed} committed")]
    Count {
        tag: u32,
        committed: u64,
        found: u64,
    },
}

/// The duration column of one `robot_activity_data` line (`"STATE","start","duration"`,
/// with or without the trailing `\r\n`).
pub fn duration_of_row(line: &str) -> Option<u64> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut fields = line.split(',').map(|f| {
        f.strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(f)
    });
    let (_state, start, duration) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || start.parse::<u64>().is_err() {
        return None;
    }
    duration.parse().ok()
}

/// Checks that `rows` (CSV lines of `robot_activity_data`) hold every committed record of
/// the runs in `committed` (tag, committed count) exactly once, and nothing else.
///
/// ```
/// use perf_tests::load::{encode, verify_rows, Id};
/// let d = encode(Id { tag: 1, thread: 0, seq: 0 }).unwrap();
/// let row = format!("\"CALIBRATING\",\"5\",\"{d}\"\r\n");
/// assert!(verify_rows([row.as_str()], &[(1, 1)]).is_ok());
/// assert!(verify_rows([row.as_str(), row.as_str()], &[(1, 2)]).is_err());
/// ```
pub fn verify_rows<'a>(
    rows: impl IntoIterator<Item = &'a str>,
    committed: &[(u32, u64)],
) -> Result<(), VerifyError> {
    let expected: HashMap<u32, u64> = committed.iter().copied().collect();
    let mut found: HashMap<u32, u64> = expected.keys().map(|t| (*t, 0)).collect();
    let mut seen = HashSet::new();
    for (row, line) in rows.into_iter().enumerate() {
        let duration = duration_of_row(line).ok_or_else(|| VerifyError::BadRow {
            row,
            line: line.to_owned(),
        })?;
        let id = decode(duration).ok_or(VerifyError::NotAnId { row, duration })?;
        let Some(count) = found.get_mut(&id.tag) else {
            return Err(VerifyError::UnexpectedRun { row, id });
        };
        if !seen.insert(id) {
            return Err(VerifyError::Duplicate { row, id });
        }
        *count += 1;
    }
    for (tag, committed) in expected {
        let found = found.get(&tag).copied().unwrap_or(0);
        if found != committed {
            return Err(VerifyError::Count {
                tag,
                committed,
                found,
            });
        }
    }
    Ok(())
}

/// [`verify_rows`] over the text of a whole `robot_activity_data` file (`\r\n` rows).
pub fn verify_csv(text: &str, committed: &[(u32, u64)]) -> Result<(), VerifyError> {
    verify_rows(text.split_terminator("\r\n"), committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_the_edges_and_overflow_refused() {
        let max = Id {
            tag: TAG_MASK as u32,
            thread: THREAD_MASK as u32,
            seq: SEQ_MASK as u32,
        };
        let d = encode(max).unwrap();
        assert_eq!(d >> 63, 0);
        assert_eq!(decode(d), Some(max));
        let zero = Id {
            tag: 0,
            thread: 0,
            seq: 0,
        };
        assert_eq!(decode(encode(zero).unwrap()), Some(zero));
        assert_eq!(
            encode(Id {
                tag: 1 << TAG_BITS,
                ..zero
            }),
            Err(IdError::Tag(1 << TAG_BITS))
        );
        assert_eq!(
            encode(Id {
                thread: 1 << THREAD_BITS,
                ..zero
            }),
            Err(IdError::Thread(1 << THREAD_BITS))
        );
        assert_eq!(
            encode(Id {
                seq: 1 << SEQ_BITS,
                ..zero
            }),
            Err(IdError::Seq(1 << SEQ_BITS))
        );
        assert_eq!(decode(u64::MAX), None);
        // Different fields never collide.
        let a = encode(Id {
            tag: 1,
            thread: 0,
            seq: 0,
        })
        .unwrap();
        let b = encode(Id {
            tag: 0,
            thread: 1,
            seq: 0,
        })
        .unwrap();
        let c = encode(Id {
            tag: 0,
            thread: 0,
            seq: 1,
        })
        .unwrap();
        assert!(a != b && b != c && a != c);
    }

    fn row(tag: u32, thread: u32, seq: u32) -> String {
        let d = encode(Id { tag, thread, seq }).unwrap();
        format!("\"CALIBRATING\",\"1722450000123456789\",\"{d}\"\r\n")
    }

    #[test]
    fn verifier_catches_loss_duplicates_strangers_and_garbage() {
        let text: String = [row(7, 0, 0), row(7, 1, 0), row(9, 0, 5)].concat();
        assert_eq!(verify_csv(&text, &[(7, 2), (9, 1)]), Ok(()));
        assert!(matches!(
            verify_csv(&text, &[(7, 3), (9, 1)]),
            Err(VerifyError::Count {
                tag: 7,
                committed: 3,
                found: 2
            })
        ));
        assert!(matches!(
            verify_csv(&text, &[(7, 2)]),
            Err(VerifyError::UnexpectedRun { row: 2, .. })
        ));
        let dup = [row(7, 0, 0), row(7, 0, 0)].concat();
        assert!(matches!(
            verify_csv(&dup, &[(7, 2)]),
            Err(VerifyError::Duplicate { row: 1, .. })
        ));
        assert!(matches!(
            verify_csv("\"X\",\"1\",\"18446744073709551615\"\r\n", &[]),
            Err(VerifyError::NotAnId { .. })
        ));
        assert!(matches!(
            verify_csv("garbage\r\n", &[]),
            Err(VerifyError::BadRow { .. })
        ));
        // A run that committed nothing and has no rows is fine.
        assert_eq!(verify_csv("", &[(3, 0)]), Ok(()));
    }
}
