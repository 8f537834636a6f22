//! Characters that act instead of showing: C0 and C1 controls, DEL (ANSI
//! escape sequences start with ESC, U+001B) and the bidi embeddings,
//! overrides and isolates that reorder the text around them. Names may not
//! hold them; tables show them escaped, so what a customer typed can never
//! drive a terminal or disguise itself.

use std::borrow::Cow;

/// Whether `c` is a control character or a bidi control (U+202A–U+202E,
/// U+2066–U+2069). Tab, line feed and carriage return count: callers that
/// allow line breaks deal with them first.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` as one line a terminal shows literally: tabs and line breaks
/// become spaces, every other [`is_control`] character its Rust escape
/// (`\u{1b}`, `\u{202e}`). Text without any comes back borrowed.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' | '\n' | '\r' => shown.push(' '),
            c if is_control(c) => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(
            escape_line("ok\u{1b}[2J\u{7}\0\u{7f}\u{9b}31m"),
            "ok\\u{1b}[2J\\u{7}\\u{0}\\u{7f}\\u{9b}31m"
        );
        assert_eq!(
            escape_line("abc\u{202e}fdp.exe\u{2066}x\u{2069}"),
            "abc\\u{202e}fdp.exe\\u{2066}x\\u{2069}"
        );
        assert_eq!(
            escape_line("two\r\nlines\tand a tab"),
            "two  lines and a tab"
        );
        assert!(matches!(
            escape_line("Zoë 山田 ✓"),
            Cow::Borrowed("Zoë 山田 ✓")
        ));
        // Marks that only set a direction, and joiners, are text.
        assert!(!"\u{200e}\u{200d}\u{2028}".chars().any(is_control));
    }
}
