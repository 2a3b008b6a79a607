//! Formatting records as `robot_activity_data` rows, fast.
//!
//! Every row of a ring starts with its state name, quoted, from a table of at most 64
//! names; only the two integers change. So each ring's prefixes (`"NAME","`) are made once,
//! by the one CSV writer ([`perf_table::Row`]), and a row is then a copy of its prefix plus
//! two `itoa` numbers. Quoting rules stay in `perf-table`: the prefix is cut out of a row
//! that `Row` formatted, and the tests compare whole rows with `Row`'s.

use perf_table::Row;

/// Between the two numbers, and after the last: what `Row` writes for QUOTE_ALL + CRLF.
const MIDDLE: &[u8] = b"\",\"";
const END: &[u8] = b"\"\r\n";

/// The pre-quoted state prefixes of one ring.
#[derive(Debug, Clone)]
pub struct RowFormat {
    prefixes: Vec<Box<[u8]>>,
}

impl RowFormat {
    /// Prefixes for `states`, indexed like them.
    pub fn new(states: &[String]) -> RowFormat {
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
        RowFormat { prefixes }
    }

    /// Appends the row for one record; `false` (and nothing appended) when `state` is not
    /// an index into the ring's state table.
    #[inline]
    pub fn push(&self, buf: &mut Vec<u8>, state: u32, start_ns: u64, duration_ns: u64) -> bool {
        let Some(prefix) = self.prefixes.get(state as usize) else {
            return false;
        };
        let mut num = itoa::Buffer::new();
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(num.format(start_ns).as_bytes());
        buf.extend_from_slice(MIDDLE);
        buf.extend_from_slice(num.format(duration_ns).as_bytes());
        buf.extend_from_slice(END);
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
        let format = RowFormat::new(&states);
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
        }
        let mut buf = Vec::new();
        assert!(!format.push(&mut buf, 4, 1, 2));
        assert!(!format.push(&mut buf, u32::MAX, 1, 2));
        assert!(buf.is_empty());
    }
}
