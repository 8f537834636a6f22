//! A condition's mistakes as a success manager can act on them: the
//! expression with a caret under each place, what is wrong in plain words,
//! and a hint for the slips people make (`=` for `==`, `and` for `&&`, a
//! word without quotes, curly quotes pasted from a document, a misspelt
//! function or field).
//!
//! CEL's parser stops making sense after its first error and names tokens,
//! not intentions, so the slips are found here by reading the text; the
//! parser's own errors are kept where nothing here explains that place.

use crate::suggest;

/// One place in a condition where something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    /// Byte offset of the place in the condition.
    pub at: usize,
    /// How many characters the caret underlines (at least one).
    pub width: usize,
    /// What is wrong, and what to write instead.
    pub reason: String,
}

impl Mistake {
    fn new(at: usize, width: usize, reason: impl Into<String>) -> Self {
        Self {
            at,
            width: width.max(1),
            reason: reason.into(),
        }
    }
}

/// A syntax error as CEL's parser reports it: 1-based line, 0-based column
/// on that line (characters before the place), message.
pub struct ParserError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The slips in `source` that can be seen without parsing it.
pub fn slips(source: &str) -> Vec<Mistake> {
    let mut found = Vec::new();
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut curly = false;
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let prev = i.checked_sub(1).map(|p| chars[p].1);
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            '"' | '\'' => match string_end(&chars, i) {
                Some(end) => {
                    i = end + 1;
                    continue;
                }
                None => {
                    found.push(Mistake::new(
                        at,
                        1,
                        format!("this text is never closed; end it with a second {c}"),
                    ));
                    break;
                }
            },
            // Once: a pair of them is one mistake.
            '“' | '”' | '‘' | '’' if !curly => {
                curly = true;
                found.push(Mistake::new(
                    at,
                    1,
                    "a curly quote (pasted from a document?); type straight double quotes: \"pro\"",
                ));
            }
            '=' if !matches!(prev, Some('=' | '!' | '<' | '>')) && next != Some('=') => {
                found.push(Mistake::new(
                    at,
                    1,
                    "a single = does not compare; write == to compare two values",
                ));
            }
            '<' if next == Some('>') => {
                found.push(Mistake::new(
                    at,
                    2,
                    "<> is not an operator; write != for \"is not\"",
                ));
                i += 2;
                continue;
            }
            '&' | '|' if prev != Some(c) && next != Some(c) => {
                let (what, op) = if c == '&' {
                    ("and", "&&")
                } else {
                    ("or", "||")
                };
                found.push(Mistake::new(at, 1, format!("write {op} for \"{what}\"")));
            }
            '(' | '[' | '{' => open.push((at, c)),
            ')' | ']' | '}' => {
                let opener = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match open.pop() {
                    Some((_, o)) if o == opener => {}
                    Some((o_at, o)) => {
                        found.push(Mistake::new(
                            o_at,
                            1,
                            format!(
                                "this {o} is closed by the {c} further on; close it with {}",
                                closer(o)
                            ),
                        ));
                        open.clear();
                    }
                    None => found.push(Mistake::new(
                        at,
                        1,
                        format!("this {c} closes nothing; remove it or add a {opener} before"),
                    )),
                }
            }
            c if is_word_start(c) => {
                let end = chars[i..]
                    .iter()
                    .position(|&(_, c)| !is_word_char(c))
                    .map_or(chars.len(), |n| i + n);
                let word: String = chars[i..end].iter().map(|&(_, c)| c).collect();
                let after_dot = prev == Some('.');
                if !after_dot && let Some(op) = word_operator(&word) {
                    found.push(Mistake::new(
                        at,
                        word.chars().count(),
                        format!("{word} is not an operator in conditions; write {op}"),
                    ));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    for (at, o) in open {
        found.push(Mistake::new(
            at,
            1,
            format!(
                "this {o} is never closed; add {} where it should end",
                closer(o)
            ),
        ));
    }
    found
}

/// Where the string opened at `chars[start]` ends (its closing quote), if
/// it does; a backslash escapes the next character.
fn string_end(chars: &[(usize, char)], start: usize) -> Option<usize> {
    let quote = chars[start].1;
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i].1 {
            '\\' => i += 2,
            c if c == quote => return Some(i),
            '\n' => return None,
            _ => i += 1,
        }
    }
    None
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The CEL operator for a word people write for it.
fn word_operator(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "and" => Some("&& for \"and\""),
        "or" => Some("|| for \"or\""),
        "not" => Some("! before what it negates, or != for \"is not\""),
        "is" => Some("== to compare (!= for \"is not\")"),
        _ => None,
    }
}

/// CEL's syntax errors, in words, at their places, when no slip explains
/// the condition: after a slip the parser's errors are its echoes (a `)`
/// missing at the end of a condition whose `(` is never closed). At most
/// three: after those the parser is usually lost in the rest of the text.
pub fn parser_mistakes(source: &str, errors: &[ParserError], slips: &[Mistake]) -> Vec<Mistake> {
    if !slips.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Mistake> = Vec::new();
    for e in errors {
        let at = offset_of(source, e.line, e.column);
        if out.iter().any(|m| m.at == at) {
            continue;
        }
        out.push(Mistake::new(at, 1, plain(&e.message)));
        if out.len() == 3 {
            break;
        }
    }
    if out.is_empty() {
        out.push(Mistake::new(0, 1, "CEL cannot read this condition"));
    }
    out
}

/// The byte offset of 1-based `line` and 0-based character `column`.
fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let start: usize = source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &source[start.min(source.len())..];
    rest.char_indices()
        .nth(column)
        .map_or(source.len(), |(i, _)| start + i)
}

/// One of ANTLR's messages, as a person would put it.
fn plain(message: &str) -> String {
    let m = message.trim().trim_start_matches("Syntax error: ");
    let quoted = |after: &str| -> Option<String> {
        let rest = m.strip_prefix(after)?.trim_start();
        let rest = rest.strip_prefix('\'')?;
        // The token ends at the quote before " expecting", if there is one:
        // the list of what was expected holds quotes too.
        let end = rest
            .find("' expecting")
            .or_else(|| rest.rfind('\''))
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    };
    if let Some(token) = quoted("token recognition error at:") {
        return format!("{token} cannot be part of a condition");
    }
    if let Some(token) = quoted("mismatched input").or_else(|| quoted("extraneous input")) {
        return if token == "<EOF>" {
            "the condition ends too early; something is missing at the end".into()
        } else {
            format!("{token} is not expected here")
        };
    }
    if let Some(rest) = m.strip_prefix("missing ") {
        let what = rest.split(" at ").next().unwrap_or(rest).trim_matches('\'');
        return format!("a {what} is missing here");
    }
    if m.starts_with("no viable alternative") {
        return "the condition cannot be read from here on".into();
    }
    m.to_owned()
}

/// A name the condition uses that does not exist: a function, a field of
/// `customer`, or a bare word (usually text that needs quotes).
pub fn unknown_name(source: &str, name: &str, kind: Unknown<'_>) -> Option<Mistake> {
    let (at, width) = find_word(source, name)?;
    let reason = match kind {
        Unknown::Function { known } => {
            let near = suggest::closest(name, known.iter().copied());
            match near {
                Some(f) => format!("{name} is not a function; did you mean {f}?"),
                None => format!(
                    "{name} is not a function; tend's are days_since, days_until, event_count and sent (with CEL's own: size, has, contains, startsWith, endsWith, matches, timestamp, duration, int, string)"
                ),
            }
        }
        Unknown::Word { known } => match suggest::closest(name, known.iter().copied()) {
            Some(v) => format!("{name} is not known here; did you mean {v}?"),
            None => format!(
                "{name} is not known here; to compare with the text {name}, put it in double quotes: \"{name}\""
            ),
        },
    };
    Some(Mistake::new(at, width, reason))
}

/// What kind of name `unknown_name` reports.
pub enum Unknown<'a> {
    Function { known: &'a [&'a str] },
    Word { known: &'a [&'a str] },
}

/// The first place `word` stands as a whole word outside quoted text.
pub fn find_word(source: &str, word: &str) -> Option<(usize, usize)> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c == '"' || c == '\'' {
            i = string_end(&chars, i).map_or(chars.len(), |e| e + 1);
            continue;
        }
        if is_word_start(c) {
            let end = chars[i..]
                .iter()
                .position(|&(_, c)| !is_word_char(c))
                .map_or(chars.len(), |n| i + n);
            let found: String = chars[i..end].iter().map(|&(_, c)| c).collect();
            if found == word {
                return Some((chars[i].0, end - i));
            }
            i = end;
            continue;
        }
        i += 1;
    }
    None
}

/// The mistakes under the headline: for each, the line of the condition
/// it is on, a caret under its place, and what is wrong.
pub fn render(source: &str, headline: &str, mut mistakes: Vec<Mistake>) -> String {
    mistakes.sort_by_key(|m| m.at);
    mistakes.dedup_by_key(|m| m.at);
    let mut out = headline.to_owned();
    for m in &mistakes {
        let line_start = source[..m.at.min(source.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let line = source[line_start..line_end].replace('\t', " ");
        let column = source[line_start..m.at.min(source.len())].chars().count();
        out.push_str(&format!(
            "\n    {line}\n    {}{}\n    {}",
            " ".repeat(column),
            "^".repeat(m.width),
            m.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(source: &str) -> Vec<(usize, String)> {
        slips(source)
            .into_iter()
            .map(|m| (m.at, m.reason))
            .collect()
    }

    #[test]
    fn a_single_equals_is_a_slip_and_comparisons_are_not() {
        let found = reasons(r#"customer.plan = "pro""#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 14);
        assert!(found[0].1.contains("write =="), "{found:?}");
        assert!(reasons(r#"customer.plan == "pro" && days_since(customer.signup_at) <= 3 && customer.stage != "x" && 1 >= 0"#).is_empty());
        // Inside text, = is text.
        assert!(reasons(r#"customer.name == "a = b""#).is_empty());
    }

    #[test]
    fn words_for_operators_are_slips_everywhere_in_the_condition() {
        let found = reasons(r#"customer.plan == "pro" and not customer.stage == "trial" or x"#);
        let words: Vec<&str> = found
            .iter()
            .map(|(_, r)| r.split(' ').next().unwrap())
            .collect();
        assert_eq!(words, ["and", "not", "or"], "{found:?}");
        // A field called `or` after a dot is a field, and text is text.
        assert!(reasons(r#"customer.attributes.or == "and""#).is_empty());
    }

    #[test]
    fn brackets_and_quotes_left_open_are_pointed_at() {
        let found = reasons(r#"days_since(customer.signup_at < 3"#);
        assert_eq!(
            found,
            [(
                10,
                "this ( is never closed; add ) where it should end".into()
            )]
        );
        let found = reasons(r#"customer.plan == "pro"#);
        assert_eq!(found[0].0, 17);
        assert!(found[0].1.contains("never closed"), "{found:?}");
        let found = reasons("customer.plan == “pro”");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("curly quote"), "{found:?}");
        let found = reasons("size(customer.attributes.tags]) > 0");
        assert!(found[0].1.contains("closed by the ]"), "{found:?}");
    }

    #[test]
    fn the_picture_puts_the_caret_under_the_place() {
        let source = r#"customer.plan = "pro""#;
        let text = render(source, "the condition does not parse:", slips(source));
        assert_eq!(
            text,
            "the condition does not parse:\n    customer.plan = \"pro\"\n                  ^\n    a single = does not compare; write == to compare two values"
        );
    }

    #[test]
    fn parser_messages_are_put_in_words() {
        assert_eq!(
            plain("Syntax error: token recognition error at: '#'"),
            "# cannot be part of a condition"
        );
        assert_eq!(
            plain("Syntax error: mismatched input '<EOF>' expecting {'(', IDENTIFIER}"),
            "the condition ends too early; something is missing at the end"
        );
        assert_eq!(
            plain("Syntax error: extraneous input ')' expecting <EOF>"),
            ") is not expected here"
        );
        assert_eq!(
            plain("Syntax error: missing ')' at '<EOF>'"),
            "a ) is missing here"
        );
    }

    #[test]
    fn unknown_names_get_the_nearest_known_one() {
        let known = ["days_since", "days_until", "event_count", "sent", "size"];
        let m = unknown_name(
            "days_untill(customer.renewal_at) < 30",
            "days_untill",
            Unknown::Function { known: &known },
        )
        .unwrap();
        assert_eq!((m.at, m.width), (0, 11));
        assert_eq!(
            m.reason,
            "days_untill is not a function; did you mean days_until?"
        );
        let m = unknown_name(
            r#"customer.plan == pro"#,
            "pro",
            Unknown::Word {
                known: &["customer", "now"],
            },
        )
        .unwrap();
        assert_eq!(m.at, 17);
        assert!(
            m.reason.contains("in double quotes: \"pro\""),
            "{}",
            m.reason
        );
    }
}
