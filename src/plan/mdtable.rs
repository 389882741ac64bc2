//! Markdown tables for the report: padded columns for tables people read in a text editor,
//! streamed without padding once a table is too long for that (a 100,000-point plan), so memory
//! stays proportional to the text written.

use std::fmt;

/// Rows kept for padding; a longer table is written unpadded as it grows.
const PADDED_ROWS_MAX: usize = 2_000;

/// A Markdown table under construction.
pub struct MdTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Unpadded text once the table outgrew `PADDED_ROWS_MAX` (header and every row so far).
    streamed: Option<String>,
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

impl MdTable {
    /// A table with these column headers.
    pub fn new(header: Vec<String>) -> MdTable {
        MdTable {
            header,
            rows: Vec::new(),
            streamed: None,
        }
    }

    /// Appends a row (as many cells as headers).
    pub fn add_row(&mut self, row: Vec<String>) {
        if let Some(text) = &mut self.streamed {
            text.push('\n');
            text.push_str(&line(&row, None));
            return;
        }
        self.rows.push(row);
        if self.rows.len() > PADDED_ROWS_MAX {
            let widths = vec![1; self.header.len()];
            let mut text = line(&self.header, None);
            text.push('\n');
            text.push_str(&separator(&widths));
            for r in self.rows.drain(..) {
                text.push('\n');
                text.push_str(&line(&r, None));
            }
            self.streamed = Some(text);
        }
    }
}

impl fmt::Display for MdTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = &self.streamed {
            return f.write_str(text);
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        writeln!(f, "{}", line(&self.header, Some(&widths)))?;
        write!(f, "{}", separator(&widths))?;
        for row in &self.rows {
            write!(f, "\n{}", line(row, Some(&widths)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_like_markdown() {
        let mut t = MdTable::new(vec!["#".into(), "name".into()]);
        t.add_row(vec!["10".into(), "a".into()]);
        assert_eq!(t.to_string(), "| #  | name |\n|----|------|\n| 10 | a    |");
    }

    #[test]
    fn long_tables_stream_unpadded() {
        let mut t = MdTable::new(vec!["#".into()]);
        for i in 0..=PADDED_ROWS_MAX + 5 {
            t.add_row(vec![i.to_string()]);
        }
        let text = t.to_string();
        assert!(text.starts_with("| # |\n|---|\n| 0 |\n| 1 |"));
        assert_eq!(text.lines().count(), PADDED_ROWS_MAX + 8);
    }
}
