//! Reading a CSV table row by row in bounded memory, surviving bad lines.
//!
//! A year of tracker data is tens of millions of rows, so files are never read whole: lines
//! come through a buffered reader and each row is parsed as soon as it is complete. A row
//! normally is one line; a quoted field may hold a line break (a command line from /proc
//! can), so a line that leaves a quote open (an odd number of `"` so far, as RFC 4180
//! counts them) takes the next lines with it, up to [`MAX_SPAN_LINES`] lines or
//! [`MAX_ROW_BYTES`] bytes. Fields are split by `csv-core` (the `csv` crate's own parser,
//! without its per-reader buffers), so quoting rules are exactly the `csv` crate's.
//!
//! A row that fails is reported with the line it starts on and skipped. If it spread over
//! several lines, reading starts again on the line after its first, so one stray quote
//! cannot hide the rest of the file. Every row the writers write ends in a line break, so
//! text after the last one is a row cut short (a power cut mid-write): it is reported, not
//! guessed at. A first line that is the column names is skipped silently (some scripts add
//! one). Blank lines are skipped.

use std::collections::VecDeque;
use std::io::{self, BufRead};

/// Most lines one row may span (quoted line breaks); past that the row is reported.
pub const MAX_SPAN_LINES: usize = 64;
/// Most bytes one row may have; a longer line is reported and skipped, never held whole.
pub const MAX_ROW_BYTES: usize = 1 << 20;

/// Takes a row's fields; an `Err` reason reports the row as malformed.
pub type RowFn<'a> = dyn FnMut(&[&[u8]]) -> Result<(), String> + 'a;

/// A line that could not be read: where and why (the caller adds the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number where the bad row starts.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// One physical line, as read.
#[derive(Debug, Default)]
struct Line {
    number: u64,
    /// The line's bytes up to [`MAX_ROW_BYTES`], with its `\n` when it has one.
    bytes: Vec<u8>,
    /// Longer than [`MAX_ROW_BYTES`]: the rest was discarded.
    too_long: bool,
}

impl Line {
    fn complete(&self) -> bool {
        self.bytes.last() == Some(&b'\n')
    }

    fn odd_quotes(&self) -> bool {
        self.bytes.iter().filter(|&&b| b == b'"').count() % 2 == 1
    }

    fn blank(&self) -> bool {
        self.bytes.iter().all(|&b| b == b'\r' || b == b'\n')
    }
}

/// Reads `input` (a table with `columns`), calling `row` with the fields of each good row
/// (exactly `columns.len()` of them) and `bad` for each line that is not one. `row` may
/// reject the fields with a reason, which is reported like a malformed line. I/O errors end
/// the read.
pub fn for_each_row(
    input: impl BufRead,
    columns: &[&str],
    row: &mut RowFn<'_>,
    bad: &mut dyn FnMut(BadLine),
) -> io::Result<()> {
    let mut lines = Lines {
        input,
        next_number: 1,
        pending: VecDeque::new(),
        spare: Vec::new(),
    };
    let mut splitter = Splitter::default();
    loop {
        if !lines.fill(1)? {
            return Ok(());
        }
        let first = &lines.pending[0];
        if first.blank() && first.complete() {
            lines.pop(1);
            continue;
        }
        let number = first.number;
        // How many lines this row takes: until the quotes balance.
        let mut span = 1;
        let mut open = first.odd_quotes();
        let mut size = first.bytes.len();
        let mut too_long = first.too_long;
        while open && span < MAX_SPAN_LINES && size < MAX_ROW_BYTES && lines.fill(span + 1)? {
            let next = &lines.pending[span];
            open ^= next.odd_quotes();
            size += next.bytes.len();
            too_long |= next.too_long;
            span += 1;
        }
        let complete = lines.pending[span - 1].complete();
        let reason = if too_long || size > MAX_ROW_BYTES {
            Some(format!("row longer than {MAX_ROW_BYTES} bytes; skipped"))
        } else if !complete {
            // Only the file's last line can lack its line break.
            (!lines.pending.iter().take(span).all(|l| l.blank())).then(|| {
                "the file ends in the middle of this row (no line break after it); skipped"
                    .to_owned()
            })
        } else if open {
            Some(format!(
                "a quote opened here is not closed within {span} lines"
            ))
        } else {
            lines.join(span, &mut splitter.text);
            match splitter.split() {
                Err(reason) => Some(reason),
                // Some scripts add the column names as a first line.
                Ok(fields)
                    if number == 1
                        && fields
                            .iter()
                            .copied()
                            .eq(columns.iter().map(|c| c.as_bytes())) =>
                {
                    None
                }
                Ok(fields) if fields.len() != columns.len() => Some(format!(
                    "expected {} fields ({}), found {}",
                    columns.len(),
                    columns.join(","),
                    fields.len()
                )),
                Ok(fields) => row(&fields).err(),
            }
        };
        match reason {
            None => lines.pop(span),
            Some(reason) => {
                bad(BadLine {
                    line: number,
                    reason,
                });
                // Start again on the next line: the lines this row took may be rows.
                lines.pop(1);
            }
        }
    }
}

/// Physical lines ahead of the parser, with their buffers reused.
struct Lines<R> {
    input: R,
    next_number: u64,
    pending: VecDeque<Line>,
    spare: Vec<Line>,
}

impl<R: BufRead> Lines<R> {
    /// Makes sure `n` lines are pending; false if the input ended first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.pending.len() < n {
            let mut line = self.spare.pop().unwrap_or_default();
            line.bytes.clear();
            line.too_long = false;
            if !read_line(&mut self.input, &mut line)? {
                self.spare.push(line);
                return Ok(false);
            }
            line.number = self.next_number;
            self.next_number += 1;
            self.pending.push_back(line);
        }
        Ok(true)
    }

    fn pop(&mut self, n: usize) {
        for _ in 0..n {
            if let Some(line) = self.pending.pop_front() {
                self.spare.push(line);
            }
        }
    }

    /// The first `span` pending lines as one byte string in `text`, without the final line
    /// break.
    fn join(&self, span: usize, text: &mut Vec<u8>) {
        text.clear();
        for line in self.pending.iter().take(span) {
            text.extend_from_slice(&line.bytes);
        }
        while matches!(text.last(), Some(b'\n' | b'\r')) {
            text.pop();
        }
    }
}

/// Reads one line into `line.bytes` (keeping at most [`MAX_ROW_BYTES`]); false at the end.
fn read_line(input: &mut impl BufRead, line: &mut Line) -> io::Result<bool> {
    let mut any = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = MAX_ROW_BYTES.saturating_sub(line.bytes.len());
        if take > room {
            line.too_long = true;
        }
        line.bytes.extend_from_slice(&buf[..take.min(room)]);
        if done && take > room {
            // Keep the line break so the line still counts as complete.
            line.bytes.push(b'\n');
        }
        input.consume(take);
        if done {
            return Ok(true);
        }
    }
}

/// Splits one row's text into fields with `csv-core`.
struct Splitter {
    reader: csv_core::Reader,
    text: Vec<u8>,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            // `Reader::new()`, not `Default`: only the builder sets the delimiter and quote.
            reader: csv_core::Reader::new(),
            text: Vec::new(),
            out: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl Splitter {
    /// The fields of `self.text` (one row, without its line break).
    fn split(&mut self) -> Result<Vec<&[u8]>, String> {
        self.reader.reset();
        // A field is never longer than the row; there are at most len + 1 of them.
        self.out.resize(self.text.len() + 1, 0);
        self.ends.resize(self.text.len() + 2, 0);
        // Field ends are offsets into `out`, relative to the start of the record.
        let (result, nin, nout, nend) =
            self.reader
                .read_record(&self.text, &mut self.out, &mut self.ends);
        let nend = match result {
            // The whole row went in; the end of input closes its last field.
            csv_core::ReadRecordResult::InputEmpty if nin == self.text.len() => {
                let (r, _, _, end2) =
                    self.reader
                        .read_record(&[], &mut self.out[nout..], &mut self.ends[nend..]);
                if r != csv_core::ReadRecordResult::Record {
                    return Err("unreadable row".into());
                }
                nend + end2
            }
            // The csv parser ended the row early: a line break it did not take as quoted.
            csv_core::ReadRecordResult::Record => {
                return Err("a quoted field is not closed before the line break".into())
            }
            _ => return Err("unreadable row".into()),
        };
        let mut fields = Vec::with_capacity(nend);
        let mut start = 0;
        for &end in &self.ends[..nend] {
            fields.push(&self.out[start..end]);
            start = end;
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> (Vec<Vec<String>>, Vec<(u64, String)>) {
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        for_each_row(
            bytes,
            &["a", "b", "c"],
            &mut |f| {
                rows.push(
                    f.iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect(),
                );
                Ok(())
            },
            &mut |b| bad.push((b.line, b.reason)),
        )
        .unwrap();
        (rows, bad)
    }

    #[test]
    fn quoted_line_breaks_and_quotes_stay_in_their_field() {
        let (rows, bad) = read(b"\"x\",\"line\r\nbreak\",\"say \"\"hi\"\"\"\r\n1,2,3\n");
        assert_eq!(bad, vec![]);
        assert_eq!(rows[0], ["x", "line\r\nbreak", "say \"hi\""]);
        assert_eq!(rows[1], ["1", "2", "3"]);
    }

    #[test]
    fn a_stray_quote_is_reported_and_the_next_lines_still_read() {
        let (rows, bad) = read(b"\"A\",\"1\",\"2\"\r\n\"B\",\"1,\"2\r\n\"C\",\"3\",\"4\"\r\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][0], "C");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 2);
    }

    #[test]
    fn header_blank_and_cut_short_lines() {
        let (rows, bad) = read(b"a,b,c\r\n\r\n1,2,3\r\n4,5");
        assert_eq!(rows, vec![vec!["1", "2", "3"]]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 4);
        assert!(bad[0].1.contains("ends in the middle"), "{bad:?}");
        // Trailing whitespace without a line break is not a row.
        assert_eq!(read(b"1,2,3\n\r").1, vec![]);
    }

    #[test]
    fn an_endless_line_is_skipped_without_being_held() {
        let mut bytes = vec![b'x'; MAX_ROW_BYTES + 10];
        bytes.extend_from_slice(b"\n1,2,3\n");
        let (rows, bad) = read(&bytes);
        assert_eq!(rows.len(), 1);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].1.contains("longer than"), "{bad:?}");
    }
}
