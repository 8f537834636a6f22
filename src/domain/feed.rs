//! Reading a growing table page by page in the order its rows were
//! committed: routing signals, and the read API's lists of messages and
//! responses. A reader keeps the [`Position`] after the last row it took
//! and asks for what follows; rows committed meanwhile come after it, so
//! nothing is skipped or read twice.

use serde::Serialize;

/// A place in commit order: past every row committed before it. `tx` is
/// the writing transaction on PostgreSQL (0 on SQLite, whose single
/// writer commits in `seq` order); `seq` is drawn when the row is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub tx: i64,
    pub seq: i64,
}

impl Position {
    /// As it is stored and handed to API clients (`next_cursor`).
    pub fn encode(self) -> String {
        format!("{}:{}", self.tx, self.seq)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (tx, seq) = text.split_once(':')?;
        let position = Self {
            tx: tx.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        (position.tx >= 0 && position.seq >= 0).then_some(position)
    }

    /// A client's `cursor`: absent is the start.
    pub fn from_cursor(cursor: Option<&str>) -> Result<Self, CursorError> {
        match cursor {
            None | Some("") => Ok(Self::default()),
            Some(text) => Self::decode(text).ok_or_else(|| CursorError(text.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "cursor {0:?} is not one this API gave: pass the `next_cursor` of the last page, or leave it out to start from the first row"
)]
pub struct CursorError(String);

/// The most rows a page holds, and how many when a client does not say.
pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 100;

/// A client's `limit`, checked.
pub fn page_size(limit: Option<u32>) -> Result<u32, String> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "limit {n} is out of range: ask for 1 to {MAX_PAGE} rows a page"
        )),
    }
}

/// One page of a list: its rows, where the next page starts, and whether
/// more rows were already there. `next_cursor` is given even on the last
/// page: a client keeps it and asks again later for what arrived since.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: String,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The page of `rows` read after `from`, asked for `limit` and read
    /// with one more, so that the extra one tells there are more.
    pub fn of(from: Position, mut rows: Vec<(Position, T)>, limit: u32) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = rows.last().map_or(from, |(at, _)| *at);
        Self {
            data: rows.into_iter().map(|(_, row)| row).collect(),
            next_cursor: next.encode(),
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_its_stored_form() {
        let c = Position { tx: 791, seq: 12 };
        assert_eq!(Position::decode(&c.encode()), Some(c));
        assert_eq!(Position::decode("x"), None);
        assert_eq!(Position::decode("-1:4"), None);
        assert!(Position { tx: 2, seq: 1 } > Position { tx: 1, seq: 9 });
    }

    #[test]
    fn a_cursor_is_the_start_or_one_given() {
        assert_eq!(Position::from_cursor(None), Ok(Position::default()));
        assert_eq!(
            Position::from_cursor(Some("0:7")),
            Ok(Position { tx: 0, seq: 7 })
        );
        let e = Position::from_cursor(Some("abc")).unwrap_err();
        assert!(e.to_string().contains("next_cursor"), "{e}");
    }

    #[test]
    fn a_page_says_where_the_next_begins() {
        let at = |seq| Position { tx: 0, seq };
        let page = Page::of(at(3), vec![(at(4), 'a'), (at(5), 'b'), (at(6), 'c')], 2);
        assert_eq!(page.data, vec!['a', 'b']);
        assert_eq!(page.next_cursor, "0:5");
        assert!(page.has_more);
        let last = Page::of(at(3), Vec::<(Position, char)>::new(), 2);
        assert_eq!(last.next_cursor, "0:3", "an empty page keeps the place");
        assert!(!last.has_more);
        assert_eq!(page_size(None), Ok(DEFAULT_PAGE));
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
