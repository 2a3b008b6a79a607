//! Aligned text tables for people: `perf-drainer status` and `perf-metrics report` print
//! through this one renderer.
//!
//! The layout is plain on purpose (it is read on a robot's terminal and pasted into
//! issues): no borders, columns separated by two spaces, each column aligned as its
//! definition says, trailing spaces trimmed. Widths count `char`s, so a `µs` lines up.
//!
//! ```
//! use perf_daemon::text_table::{Align, Table};
//! let mut t = Table::new([("STATE", Align::Left), ("COUNT", Align::Right)]);
//! t.row(["CALIBRATING", "5"]);
//! t.row(["RUNNING_PROTOCOL", "12"]);
//! assert_eq!(
//!     t.render(),
//!     "STATE             COUNT\nCALIBRATING           5\nRUNNING_PROTOCOL     12\n"
//! );
//! ```

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// A table being filled: a header row, then rows of cells.
#[derive(Debug, Clone)]
pub struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose columns are named and aligned by `columns` (the header row).
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = (S, Align)>) -> Table {
        let (header, align): (Vec<String>, Vec<Align>) =
            columns.into_iter().map(|(h, a)| (h.into(), a)).unzip();
        Table {
            align,
            rows: vec![header],
        }
    }

    /// Appends a row. Missing cells are blank; cells past the last column are dropped (a
    /// caller's mistake must not panic a report).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        let mut row: Vec<String> = cells
            .into_iter()
            .take(self.align.len())
            .map(Into::into)
            .collect();
        row.resize(self.align.len(), String::new());
        self.rows.push(row);
        self
    }

    /// The header row, then the data rows (for renderers other than text, e.g. HTML).
    pub fn cells(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// Each column's alignment.
    pub fn aligns(&self) -> &[Align] {
        &self.align
    }

    /// Data rows so far (the header not counted).
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    /// Whether no data row was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table as lines, each ending in `\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    /// Appends the table to `out`.
    pub fn render_into(&self, out: &mut String) {
        let mut widths = vec![0usize; self.align.len()];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, ((cell, w), align)) in row.iter().zip(&widths).zip(&self.align).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(w - cell.chars().count());
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_their_definition_and_lines_are_trimmed() {
        let mut t = Table::new([
            ("A", Align::Left),
            ("N", Align::Right),
            ("TEXT", Align::Left),
        ]);
        t.row(["µs", "1", ""]);
        t.row(["long name", "12345", "x"]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.render(),
            "A              N  TEXT\nµs             1\nlong name  12345  x\n"
        );
    }

    #[test]
    fn rows_of_the_wrong_length_do_not_panic() {
        let mut t = Table::new([("A", Align::Left), ("B", Align::Right)]);
        t.row(["only"]);
        t.row(["a", "b", "c"]);
        assert_eq!(t.render(), "A     B\nonly\na     b\n");
        assert!(Table::new([("X", Align::Left)]).is_empty());
    }
}
