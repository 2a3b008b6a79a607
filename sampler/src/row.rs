//! One row of `system_resource_data`, and the formatted fields of a process's last row.
//!
//! A row is `query_time`, the command line and four floats written as Python's `repr`
//! writes them. Finding the shortest repr of a float is the largest part of the user-space
//! work of a sample, and for a process that has not run since its last row the fields after
//! `query_time` come out the same (see [`crate::cpu_clock`]): so each kept process keeps
//! the bytes of its last row's fields ([`FormattedRow`]) with the figures they were made
//! from, and writes them again while the figures are the same, bit for bit.

use perf_table::Row;

use crate::proc::Usage;

/// One row of `system_resource_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// When the process was read, ns since the epoch (CLOCK_REALTIME).
    pub query_time: u64,
    /// The command line as the Python tracker formatted it.
    pub command: &'a str,
    /// CPU and memory.
    pub usage: Usage,
}

/// Appends `record` to `buf` as one CSV row in the Python tracker's column order and format.
pub fn write_row(buf: &mut Vec<u8>, record: &Record<'_>) {
    Row::new(buf)
        .uint(record.query_time)
        .str(record.command)
        .float(record.usage.running_since)
        .float(record.usage.user_cpu_time)
        .float(record.usage.system_cpu_time)
        .float(record.usage.memory_percent)
        .end();
}

/// The figures a row's fields after `query_time` are formatted from, as bits: equal bits
/// format to equal bytes.
fn figures(usage: &Usage) -> [u64; 4] {
    [
        usage.running_since.to_bits(),
        usage.user_cpu_time.to_bits(),
        usage.system_cpu_time.to_bits(),
        usage.memory_percent.to_bits(),
    ]
}

/// The fields after `query_time` of one process's last row, as written.
#[derive(Debug, Default)]
pub(crate) struct FormattedRow {
    /// What `fields` were formatted from; `None`: nothing kept.
    figures: Option<[u64; 4]>,
    /// The command line they hold.
    command: String,
    /// `"command","running_since",…,"memory_percent"`: the row without `query_time` and
    /// its end.
    fields: Vec<u8>,
}

impl FormattedRow {
    /// Appends the row of `record` to `out`: the kept fields if they were formatted from
    /// the same command line and figures, else freshly formatted and then kept.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, record: &Record<'_>) {
        let now = figures(&record.usage);
        if self.figures == Some(now) && self.command == record.command {
            Row::new(out)
                .uint(record.query_time)
                .fields(&self.fields)
                .end();
            return;
        }
        let start = out.len();
        write_row(out, record);
        let row = &out[start..];
        // `"digits",…\r\n`: the first comma ends `query_time`.
        let Some(comma) = row.iter().position(|&b| b == b',') else {
            self.figures = None;
            return;
        };
        self.fields.clear();
        self.fields
            .extend_from_slice(&row[comma + 1..row.len() - b"\r\n".len()]);
        self.command.clear();
        self.command.push_str(record.command);
        self.figures = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(user: f64, memory: f64) -> Usage {
        Usage {
            running_since: 1_722_449_012.57,
            user_cpu_time: user,
            system_cpu_time: 0.1,
            memory_percent: memory,
            resident_bytes: 4096,
        }
    }

    fn fresh(record: &Record<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write_row(&mut out, record);
        out
    }

    #[test]
    fn kept_fields_give_the_bytes_of_a_freshly_formatted_row() {
        let mut kept = FormattedRow::default();
        let mut out = Vec::new();
        let command = "python3 -m \"robot_server\",x";
        let records = [
            Record {
                query_time: 1,
                command,
                usage: usage(0.5, 1.25),
            },
            // Only the time of the query moved: the kept fields are used.
            Record {
                query_time: 1_000_000_000_000_000_000,
                command,
                usage: usage(0.5, 1.25),
            },
            // The figures moved: formatted again.
            Record {
                query_time: 12,
                command,
                usage: usage(0.51, 1.25),
            },
            Record {
                query_time: 13,
                command,
                usage: usage(0.51, 1.2500000000000002),
            },
            Record {
                query_time: 14,
                command,
                usage: usage(0.51, 1.2500000000000002),
            },
        ];
        let mut want = Vec::new();
        for r in &records {
            kept.write(&mut out, r);
            want.extend_from_slice(&fresh(r));
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want)
            );
        }
        // A new command line with the same figures.
        let renamed = Record {
            command: "python3 -m opentrons",
            ..records[4].clone()
        };
        kept.write(&mut out, &renamed);
        want.extend_from_slice(&fresh(&renamed));
        assert_eq!(out, want);
    }
}
