//! Formatting records as `robot_activity_data` rows (and `robot_activity_context_data`
//! rows), fast.
//!
//! Every row of a ring starts with its state name, quoted, from a table of at most 64
//! names; only the two integers change. So each ring's prefixes (`"NAME","`) are made once,
//! by the one CSV writer ([`perf_table::Row`]), and a row is then a copy of its prefix plus
//! two `itoa` numbers. A context row carries on with the ring's service and pid, which are
//! the same for every row of a ring (so also made once), and the record's thread id.
//! Quoting rules stay in `perf-table`: prefixes and middles are cut out of rows that `Row`
//! formatted, and the tests compare whole rows with `Row`'s.

use perf_ring::Record;
use perf_table::Row;

/// Between the two numbers, and after the last: what `Row` writes for QUOTE_ALL + CRLF.
const MIDDLE: &[u8] = b"\",\"";
const END: &[u8] = b"\"\r\n";

/// The rows of one round: the compatible table's, and the context table's when it is kept.
#[derive(Debug, Default)]
pub struct RoundRows {
    /// `robot_activity_data` rows.
    pub compat: Vec<u8>,
    /// `robot_activity_context_data` rows, the same records in the same order; `None` when
    /// the context table is turned off.
    pub context: Option<Vec<u8>>,
}

/// Where a [`RoundRows`] ended, to cut it back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    compat: usize,
    context: usize,
}

impl RoundRows {
    /// Empty buffers with room for `records` rows, the context one only if `context`.
    pub fn with_capacity(records: usize, context: bool) -> RoundRows {
        RoundRows {
            compat: Vec::with_capacity(records * 64),
            context: context.then(|| Vec::with_capacity(records * 96)),
        }
    }

    /// Empties both buffers, keeping their memory.
    pub fn clear(&mut self) {
        self.compat.clear();
        if let Some(c) = &mut self.context {
            c.clear();
        }
    }

    /// Where both buffers end now.
    pub fn mark(&self) -> Mark {
        Mark {
            compat: self.compat.len(),
            context: self.context.as_ref().map_or(0, Vec::len),
        }
    }

    /// Cuts both buffers back to `mark`.
    pub fn truncate(&mut self, mark: Mark) {
        self.compat.truncate(mark.compat);
        if let Some(c) = &mut self.context {
            c.truncate(mark.context);
        }
    }
}

/// Appends `parts` to `buf` with one capacity check: a row is a handful of short pieces,
/// and checking and growing `buf` for each was a good part of formatting it.
#[inline(always)]
fn extend<const N: usize>(buf: &mut Vec<u8>, parts: [&[u8]; N]) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    buf.reserve(total);
    let spare = &mut buf.spare_capacity_mut()[..total];
    let mut at = 0;
    for p in parts {
        let dst = &mut spare[at..at + p.len()];
        // SAFETY: `dst` is `p.len()` bytes of `buf`'s spare capacity, and `p` cannot
        // overlap it: `buf` is borrowed mutably here, so the parts are other memory.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), dst.as_mut_ptr().cast(), p.len()) };
        at += p.len();
    }
    let len = buf.len() + total;
    // SAFETY: the `total` bytes after the old length were all written just above.
    unsafe { buf.set_len(len) };
}

/// The pre-quoted state prefixes of one ring, and the middle of its context rows.
#[derive(Debug, Clone)]
pub struct RowFormat {
    prefixes: Vec<Box<[u8]>>,
    /// `","SERVICE","PID","`: what a context row has between the duration and the tid.
    context: Box<[u8]>,
}

impl RowFormat {
    /// Prefixes for `states`, indexed like them, and the context of rings created by
    /// `service` in process `pid`.
    pub fn new(states: &[String], service: &str, pid: u32) -> RowFormat {
        let prefixes = states
            .iter()
            .map(|name| {
                let mut row = Vec::new();
                Row::new(&mut row).str(name).uint(0).uint(0).end();
                // `<prefix>0","0"\r\n`: drop what the two numbers added.
                let tail = 1 + MIDDLE.len() + 1 + END.len();
                row.truncate(row.len() - tail);
                row.into_boxed_slice()
            })
            .collect();
        let mut row = Vec::new();
        Row::new(&mut row)
            .uint(0)
            .str(service)
            .uint(u64::from(pid))
            .uint(0)
            .end();
        // `"0<middle>0"\r\n`: drop the first number with its opening quote, and the last
        // number with what follows it.
        let context = row[2..row.len() - 1 - END.len()].into();
        RowFormat { prefixes, context }
    }

    /// Appends the row for one record; `false` (and nothing appended) when `state` is not
    /// an index into the ring's state table.
    #[inline]
    pub fn push(&self, buf: &mut Vec<u8>, state: u32, start_ns: u64, duration_ns: u64) -> bool {
        let Some(prefix) = self.prefixes.get(state as usize) else {
            return false;
        };
        let mut start = itoa::Buffer::new();
        let mut duration = itoa::Buffer::new();
        extend(
            buf,
            [
                prefix,
                start.format(start_ns).as_bytes(),
                MIDDLE,
                duration.format(duration_ns).as_bytes(),
                END,
            ],
        );
        true
    }

    /// Appends the record's row to `rows.compat` and, when the context table is kept, its
    /// context row to `rows.context`; `false` (and nothing appended) when its state is not
    /// an index into the ring's state table. The numbers are formatted once for both, and
    /// the context row starts with a copy of the compatible row (all of it but its end).
    #[inline]
    pub fn push_record(&self, rows: &mut RoundRows, r: &Record) -> bool {
        let Some(prefix) = self.prefixes.get(r.state as usize) else {
            return false;
        };
        let mut start = itoa::Buffer::new();
        let mut duration = itoa::Buffer::new();
        let buf = &mut rows.compat;
        let row_start = buf.len();
        extend(
            buf,
            [
                prefix,
                start.format(r.start_ns).as_bytes(),
                MIDDLE,
                duration.format(r.duration_ns).as_bytes(),
                END,
            ],
        );
        if let Some(context) = &mut rows.context {
            let mut tid = itoa::Buffer::new();
            extend(
                context,
                [
                    &buf[row_start..buf.len() - END.len()],
                    &self.context,
                    tid.format(r.tid).as_bytes(),
                    END,
                ],
            );
        }
        true
    }

    /// Number of states.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether the ring has no states at all.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_table_writers_rows() {
        let states: Vec<String> = ["A", "ANALYZING_PROTOCOL", "X_1", &"Z".repeat(32)]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let format = RowFormat::new(&states, "robot-server", 4242);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut values = vec![0, 1, 9, 10, u64::MAX, u64::MAX - 1, 1 << 63];
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for (i, pair) in values.windows(2).enumerate() {
            let state = (i % states.len()) as u32;
            let mut ours = Vec::new();
            assert!(format.push(&mut ours, state, pair[0], pair[1]));
            let mut theirs = Vec::new();
            Row::new(&mut theirs)
                .str(&states[state as usize])
                .uint(pair[0])
                .uint(pair[1])
                .end();
            assert_eq!(ours, theirs);

            let tid = (pair[0] >> 32) as u32;
            let r = Record {
                start_ns: pair[0],
                duration_ns: pair[1],
                state,
                tid,
            };
            let mut both = RoundRows::with_capacity(1, true);
            assert!(format.push_record(&mut both, &r));
            assert_eq!(both.compat, theirs);
            let mut context = Vec::new();
            Row::new(&mut context)
                .str(&states[state as usize])
                .uint(pair[0])
                .uint(pair[1])
                .str("robot-server")
                .uint(4242)
                .uint(u64::from(tid))
                .end();
            assert_eq!(both.context.unwrap(), context);
            let mut compat_only = RoundRows::with_capacity(1, false);
            assert!(format.push_record(&mut compat_only, &r));
            assert_eq!(compat_only.compat, theirs);
            assert!(compat_only.context.is_none());
        }
        let mut buf = Vec::new();
        assert!(!format.push(&mut buf, 4, 1, 2));
        assert!(!format.push(&mut buf, u32::MAX, 1, 2));
        assert!(buf.is_empty());
        let mut rows = RoundRows::with_capacity(1, true);
        let bad = Record {
            start_ns: 1,
            duration_ns: 2,
            state: 4,
            tid: 3,
        };
        assert!(!format.push_record(&mut rows, &bad));
        assert_eq!(rows.mark(), RoundRows::with_capacity(0, true).mark());
    }

    #[test]
    fn marks_cut_both_buffers_back() {
        let format = RowFormat::new(&["A".to_string()], "svc", 1);
        let mut rows = RoundRows::with_capacity(4, true);
        let r = Record {
            start_ns: 1,
            duration_ns: 2,
            state: 0,
            tid: 3,
        };
        assert!(format.push_record(&mut rows, &r));
        let mark = rows.mark();
        let (compat, context) = (rows.compat.clone(), rows.context.clone());
        assert!(format.push_record(&mut rows, &r));
        rows.truncate(mark);
        assert_eq!(
            (rows.compat.clone(), rows.context.clone()),
            (compat, context)
        );
        rows.clear();
        assert!(rows.compat.is_empty() && rows.context.as_ref().is_some_and(Vec::is_empty));
    }
}
