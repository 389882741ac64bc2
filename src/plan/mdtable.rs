//! Markdown tables for the report: padded columns for tables people read in a text editor,
//! streamed without padding once a table is too long for that (a 100,000-point plan). A table
//! writes into the report's writer as it grows, so memory stays bounded by the padded rows kept
//! (at most [`PADDED_ROWS_MAX`]), not by the length of the table.

use std::io::{self, Write};

/// Rows kept for padding; a longer table is written unpadded as it grows.
pub const PADDED_ROWS_MAX: usize = 2_000;

/// A Markdown table being written to `out`. Call [`MdTable::finish`] to write the rest; the
/// table ends without a newline.
pub struct MdTable<'w> {
    out: &'w mut dyn Write,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// True once the table outgrew `PADDED_ROWS_MAX` and its header and rows went to `out`.
    streaming: bool,
}

fn line(cells: &[String], widths: Option<&[usize]>) -> String {
    let mut out = String::from("|");
    for (i, cell) in cells.iter().enumerate() {
        let width = widths.and_then(|w| w.get(i).copied()).unwrap_or(0);
        let pad = width.saturating_sub(cell.chars().count());
        out.push(' ');
        out.push_str(cell);
        out.push_str(&" ".repeat(pad));
        out.push_str(" |");
    }
    out
}

fn separator(widths: &[usize]) -> String {
    let mut out = String::from("|");
    for w in widths {
        out.push_str(&"-".repeat(w + 2));
        out.push('|');
    }
    out
}

impl<'w> MdTable<'w> {
    /// A table with these column headers, written to `out`.
    pub fn new(out: &'w mut dyn Write, header: Vec<String>) -> MdTable<'w> {
        MdTable {
            out,
            header,
            rows: Vec::new(),
            streaming: false,
        }
    }

    /// Appends a row (as many cells as headers).
    pub fn add_row(&mut self, row: Vec<String>) -> io::Result<()> {
        if self.streaming {
            self.out.write_all(b"\n")?;
            return self.out.write_all(line(&row, None).as_bytes());
        }
        self.rows.push(row);
        if self.rows.len() > PADDED_ROWS_MAX {
            self.streaming = true;
            let widths = vec![1; self.header.len()];
            write!(
                self.out,
                "{}\n{}",
                line(&self.header, None),
                separator(&widths)
            )?;
            for r in std::mem::take(&mut self.rows) {
                self.out.write_all(b"\n")?;
                self.out.write_all(line(&r, None).as_bytes())?;
            }
        }
        Ok(())
    }

    /// Writes what is still held (the whole padded table, unless it is streaming).
    pub fn finish(self) -> io::Result<()> {
        if self.streaming {
            return Ok(());
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        writeln!(self.out, "{}", line(&self.header, Some(&widths)))?;
        write!(self.out, "{}", separator(&widths))?;
        for row in &self.rows {
            write!(self.out, "\n{}", line(row, Some(&widths)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_like_markdown() {
        let mut out = Vec::new();
        let mut t = MdTable::new(&mut out, vec!["#".into(), "name".into()]);
        t.add_row(vec!["10".into(), "a".into()]).expect("row");
        t.finish().expect("finish");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "| #  | name |\n|----|------|\n| 10 | a    |"
        );
    }

    #[test]
    fn long_tables_stream_unpadded() {
        let mut out = Vec::new();
        let mut t = MdTable::new(&mut out, vec!["#".into()]);
        for i in 0..=PADDED_ROWS_MAX + 5 {
            t.add_row(vec![i.to_string()]).expect("row");
        }
        t.finish().expect("finish");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("| # |\n|---|\n| 0 |\n| 1 |"));
        assert_eq!(text.lines().count(), PADDED_ROWS_MAX + 8);
    }

    #[test]
    fn streaming_table_holds_no_rows() {
        // Past the padding limit every row reaches the writer at once: the table keeps nothing,
        // so a 100,000-row table costs no more memory than a 2,000-row one.
        let mut out = Vec::new();
        let mut t = MdTable::new(&mut out, vec!["#".into()]);
        for i in 0..PADDED_ROWS_MAX {
            t.add_row(vec![i.to_string()]).expect("row");
        }
        assert!(
            t.rows.len() == PADDED_ROWS_MAX && !t.streaming,
            "still padding"
        );
        for i in PADDED_ROWS_MAX..PADDED_ROWS_MAX * 3 {
            t.add_row(vec![i.to_string()]).expect("row");
            assert!(t.rows.is_empty(), "row {i} kept in memory");
        }
        t.finish().expect("finish");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with(&format!("\n| {} |", PADDED_ROWS_MAX * 3 - 1)));
    }
}
