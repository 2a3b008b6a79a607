//! Counting a CSV's rows against what producers committed: lost, duplicated, garbage.

use std::collections::{HashMap, HashSet};

use crate::load::{decode, duration_of_row, Id};

/// What the CSV holds, counted against what was expected.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Complete rows.
    pub rows: u64,
    /// Whether the file ends in the middle of a row.
    pub partial_tail: bool,
    /// Rows that are not `"STATE","start","duration"` or whose duration is not an id.
    pub garbage: Vec<String>,
    /// Ids seen more than once (each extra copy counts).
    pub duplicated: u64,
    /// Rows whose id's tag is not expected.
    pub strangers: u64,
    /// Rows per tag (unique ids).
    pub per_tag: HashMap<u32, u64>,
    /// Every unique id seen.
    pub ids: HashSet<Id>,
    /// Committed records missing, summed over tags (`committed - found`, where positive).
    pub lost: u64,
    /// Rows beyond what was committed, summed over tags.
    pub extra: u64,
}

impl Tally {
    /// Counts the rows of `csv` against `expected` (tag → committed records; a tag mapped to
    /// `None` is accepted with any count).
    pub fn of(csv: &[u8], expected: &HashMap<u32, Option<u64>>) -> Tally {
        let mut t = Tally {
            partial_tail: !csv.is_empty() && !csv.ends_with(b"\r\n"),
            ..Tally::default()
        };
        let text = String::from_utf8_lossy(csv);
        let mut lines: Vec<&str> = text.split("\r\n").collect();
        // The piece after the last terminator is empty or a partial row.
        lines.pop();
        for line in lines {
            t.rows += 1;
            let Some(id) = duration_of_row(line)
                .filter(|_| well_formed_row(line))
                .and_then(decode)
            else {
                t.garbage.push(line.to_owned());
                continue;
            };
            if !expected.contains_key(&id.tag) {
                t.strangers += 1;
                continue;
            }
            if !t.ids.insert(id) {
                t.duplicated += 1;
                continue;
            }
            *t.per_tag.entry(id.tag).or_default() += 1;
        }
        for (tag, want) in expected {
            let Some(want) = want else { continue };
            let found = t.per_tag.get(tag).copied().unwrap_or(0);
            t.lost += want.saturating_sub(found);
            t.extra += found.saturating_sub(*want);
        }
        t
    }

    /// Whether nothing is wrong.
    pub fn clean(&self) -> bool {
        !self.partial_tail
            && self.garbage.is_empty()
            && self.duplicated == 0
            && self.strangers == 0
            && self.lost == 0
            && self.extra == 0
    }

    /// A one-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "rows {}, partial tail {}, garbage {} (first {:?}), duplicated {}, strangers {}, lost {}, extra {}",
            self.rows,
            self.partial_tail,
            self.garbage.len(),
            self.garbage.first(),
            self.duplicated,
            self.strangers,
            self.lost,
            self.extra
        )
    }

    /// Sequence numbers seen for (tag, thread), sorted.
    pub fn seqs(&self, tag: u32) -> HashMap<u32, Vec<u32>> {
        let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
        for id in self.ids.iter().filter(|id| id.tag == tag) {
            out.entry(id.thread).or_default().push(id.seq);
        }
        for v in out.values_mut() {
            v.sort_unstable();
        }
        out
    }
}

/// Whether `line` is exactly `"STATE","digits","digits"` with a valid state name.
pub fn well_formed_row(line: &str) -> bool {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != 3 {
        return false;
    }
    let unquoted: Vec<&str> = fields
        .iter()
        .filter_map(|f| f.strip_prefix('"').and_then(|f| f.strip_suffix('"')))
        .collect();
    unquoted.len() == 3
        && perf_ring::format::valid_state_name(unquoted[0].as_bytes())
        && [unquoted[1], unquoted[2]].iter().all(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u64>().is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::encode;

    fn row(tag: u32, thread: u32, seq: u32) -> String {
        let d = encode(Id { tag, thread, seq }).unwrap();
        format!("\"CALIBRATING\",\"17\",\"{d}\"\r\n")
    }

    #[test]
    fn tally_counts_loss_duplicates_garbage_and_partial_rows() {
        let csv = [row(1, 0, 0), row(1, 0, 1), row(1, 0, 1), row(2, 1, 0)].concat();
        let expected: HashMap<u32, Option<u64>> = [(1, Some(3)), (2, Some(1))].into();
        let t = Tally::of(csv.as_bytes(), &expected);
        assert_eq!((t.rows, t.duplicated, t.lost, t.extra), (4, 1, 1, 0));
        assert!(!t.clean());
        let t = Tally::of(
            format!("{}\"CALIB", row(2, 0, 0)).as_bytes(),
            &[(2, Some(1))].into(),
        );
        assert!(t.partial_tail && !t.clean());
        let t = Tally::of(b"\"bad state\",\"1\",\"2\"\r\n", &[(0, None)].into());
        assert_eq!(t.garbage.len(), 1);
        let t = Tally::of(row(9, 0, 0).as_bytes(), &[(1, None)].into());
        assert_eq!(t.strangers, 1);
        let t = Tally::of(row(1, 0, 0).as_bytes(), &[(1, None)].into());
        assert!(t.clean());
    }
}
