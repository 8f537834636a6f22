//! Output formats: JSON (a stable contract: one array or object on stdout)
//! or an aligned table for people. On a terminal the table fits its width
//! (the last column gives way), the header is bold and columns may have a
//! colour; piped, it is plain text with nothing cut. Either way a control
//! character in a cell is shown escaped (`\u{1b}`), never sent as itself.

use std::borrow::Cow;

use std::io::Write;

use console::{Style, Term, colors_enabled, style};
use serde::Serialize;

use crate::domain::control::escape_line;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Prints `value` as one JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes `lines` to stdout, returning the error (a closed pipe among them)
/// rather than panicking as `println!` does.
pub fn print_lines<I: IntoIterator<Item = impl std::fmt::Display>>(lines: I) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The narrowest the last column is squeezed to on a narrow terminal.
const MIN_LAST: usize = 12;

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    print_table_in(header, rows, &[])
}

/// The same, with a colour for some columns (by position; `None` leaves one
/// plain) when stdout is a terminal that shows colour.
pub fn print_table_in(
    header: &[&str],
    rows: &[Vec<String>],
    colours: &[Option<Style>],
) -> anyhow::Result<()> {
    let width = Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols));
    let shown = colors_enabled();
    let colours = if shown { colours } else { &[] };
    print_lines(layout(header, rows, width, colours, shown))
}

/// The table's lines; with a terminal `width`, the last column is cut (with
/// an ellipsis) so no line wraps; `bold` makes the header stand out.
fn layout(
    header: &[&str],
    rows: &[Vec<String>],
    width: Option<usize>,
    colours: &[Option<Style>],
    bold: bool,
) -> Vec<String> {
    // What a customer typed (a comment, a reply, a name) reaches the
    // terminal as text, never as a control sequence; escaped before the
    // widths are measured, so the columns stay aligned.
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape_line(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    if let (Some(width), Some((last, rest))) = (width, widths.split_last_mut()) {
        let others: usize = rest.iter().map(|w| w + 2).sum();
        *last = (*last).min(width.saturating_sub(others).max(MIN_LAST));
    }
    let line = |cells: Vec<&str>, colours: &[Option<Style>]| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                // The last cell is not padded: a line ends where its text does.
                let cell = if i == last {
                    fit(c, *w)
                } else {
                    format!("{:<w$}", fit(c, *w))
                };
                match colours.get(i).and_then(Option::as_ref) {
                    Some(colour) => colour.apply_to(cell).to_string(),
                    None => cell,
                }
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut lines = Vec::with_capacity(rows.len() + 1);
    let head = line(header.to_vec(), &[]);
    lines.push(if bold {
        style(head).bold().force_styling(true).to_string()
    } else {
        head
    });
    for row in &rows {
        lines.push(line(row.iter().map(AsRef::as_ref).collect(), colours));
    }
    lines
}

/// `cell` cut to `width` characters, with an ellipsis where it was cut.
fn fit(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_owned();
    }
    let mut cut: String = cell.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![vec![
            "2026-12-08 09:00".into(),
            "How did your first day with Acme Cloud go, Ana?".into(),
        ]]
    }

    #[test]
    fn piped_output_keeps_every_character() {
        let lines = layout(&["at", "subject"], &rows(), None, &[], false);
        assert_eq!(
            lines[1],
            "2026-12-08 09:00  How did your first day with Acme Cloud go, Ana?"
        );
        assert_eq!(lines[0], "at                subject");
    }

    #[test]
    fn on_a_narrow_terminal_the_last_column_gives_way() {
        let lines = layout(&["at", "subject"], &rows(), Some(40), &[], false);
        assert_eq!(lines[1], "2026-12-08 09:00  How did your first da…");
        assert!(lines.iter().all(|l| l.chars().count() <= 40));
        // Never squeezed to nothing.
        let lines = layout(&["at", "subject"], &rows(), Some(10), &[], false);
        assert_eq!(lines[1].chars().count(), 16 + 2 + MIN_LAST);
    }

    #[test]
    fn a_coloured_column_keeps_its_alignment() {
        let green = [Some(Style::new().green().force_styling(true))];
        let lines = layout(&["at", "subject"], &rows(), None, &green, true);
        let plain = console::strip_ansi_codes(&lines[1]).into_owned();
        assert_ne!(lines[1], plain, "the first column is coloured");
        assert_ne!(lines[0], "at                subject", "the header is bold");
        assert_eq!(
            plain,
            "2026-12-08 09:00  How did your first day with Acme Cloud go, Ana?"
        );
    }

    #[test]
    fn control_characters_are_shown_escaped_and_aligned() {
        let rows = vec![
            vec!["\u{1b}[31mred\u{1b}[0m".to_owned(), "x".to_owned()],
            vec!["a\u{202e}b".to_owned(), "two\nlines".to_owned()],
        ];
        let lines = layout(&["who", "said"], &rows, None, &[], false);
        assert_eq!(
            lines,
            [
                "who                     said",
                "\\u{1b}[31mred\\u{1b}[0m  x",
                "a\\u{202e}b              two lines",
            ]
        );
    }
}
