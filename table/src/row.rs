//! Formatting one row the way Python's `csv.writer(quoting=QUOTE_ALL)` does.

/// Builds one CSV row into a byte buffer: every field quoted, `"` doubled, `\r\n` at the end.
///
/// ```
/// let mut buf = Vec::new();
/// perf_table::Row::new(&mut buf).uint(7).str("say \"hi\"").float(0.5).end();
/// assert_eq!(buf, b"\"7\",\"say \"\"hi\"\"\",\"0.5\"\r\n");
/// ```
#[derive(Debug)]
#[must_use = "a row is only complete after .end()"]
pub struct Row<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    /// Starts a row at the end of `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Row { buf, first: true }
    }

    fn open(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
    }

    /// A text field; embedded quotes are doubled, anything else is written as is.
    pub fn str(mut self, value: &str) -> Self {
        self.open();
        let bytes = value.as_bytes();
        if memchr_quote(bytes) {
            for &b in bytes {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
        } else {
            self.buf.extend_from_slice(bytes);
        }
        self.buf.push(b'"');
        self
    }

    /// An unsigned integer in decimal.
    pub fn uint(mut self, value: u64) -> Self {
        self.open();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(b'"');
        self
    }

    /// A float as Python's `repr` writes it.
    pub fn float(mut self, value: f64) -> Self {
        self.open();
        crate::write_python_float(self.buf, value);
        self.buf.push(b'"');
        self
    }

    /// Fields formatted by an earlier `Row` (`"a","b"`: quoted, separated by commas, without
    /// the row's end), appended as they are. A caller whose figures have not changed since
    /// it last formatted them writes their bytes again instead of formatting them again
    /// (the tracker's rows of processes that have not run).
    ///
    /// ```
    /// let (mut fresh, mut again) = (Vec::new(), Vec::new());
    /// perf_table::Row::new(&mut fresh).uint(7).str("a").float(0.5).end();
    /// perf_table::Row::new(&mut again).uint(7).fields(b"\"a\",\"0.5\"").end();
    /// assert_eq!(fresh, again);
    /// ```
    pub fn fields(mut self, formatted: &[u8]) -> Self {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.extend_from_slice(formatted);
        self
    }

    /// Ends the row with `\r\n`.
    pub fn end(self) {
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// Where the first row in `rows` ends (one past its `\n`), or `None` if no row is complete.
///
/// A line break inside a quoted field (a command-line argument holding CR LF) is part of
/// the field, not the end of the row: every `"` toggles "inside a field" (a doubled `""`
/// toggles twice), and only a `\n` outside one ends the row. So rows built by [`Row`] are
/// never split.
pub fn next_row_end(rows: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in rows.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn memchr_quote(bytes: &[u8]) -> bool {
    bytes.contains(&b'"')
}

#[cfg(test)]
mod tests {
    use super::{next_row_end, Row};

    #[test]
    fn a_line_break_inside_a_field_does_not_end_the_row() {
        let mut buf = Vec::new();
        Row::new(&mut buf).uint(1).str("a\r\nb \"q\"\r\n").end();
        let first = buf.len();
        Row::new(&mut buf).uint(2).str("c").end();
        assert_eq!(next_row_end(&buf), Some(first));
        assert_eq!(next_row_end(&buf[first..]), Some(buf.len() - first));
        assert_eq!(next_row_end(&buf[..first - 1]), None);
    }

    proptest::proptest! {
        /// The csv crate configured as Python's QUOTE_ALL writer is the oracle.
        #[test]
        fn same_bytes_as_csv_crate(fields in proptest::collection::vec(".*", 1..5)) {
            let mut ours = Vec::new();
            let mut row = Row::new(&mut ours);
            for f in &fields {
                row = row.str(f);
            }
            row.end();

            let mut oracle = csv::WriterBuilder::new()
                .quote_style(csv::QuoteStyle::Always)
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            oracle.write_record(&fields).unwrap();
            proptest::prop_assert_eq!(ours, oracle.into_inner().unwrap());
        }
    }
}
