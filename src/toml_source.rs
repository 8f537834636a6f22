//! TOML files people edit (`tend.toml`, playbooks): every structural mistake
//! with its line, and the line of any dotted key, so a problem found after
//! parsing can still name where it is.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::problem::{Problem, line_at};

/// The line of the deepest part of `path` that the text spells out, or `None`
/// when not even the first part is there (the value is a built-in default or
/// came from the environment).
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut current: Option<&DeValue<'_>> = None; // None: the root table
    let mut found = None;
    for part in path.split('.') {
        let next = match current {
            None => lookup(root.get_ref(), part),
            Some(DeValue::Table(table)) => lookup(table, part),
            Some(DeValue::Array(items)) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|item| (item.span().start, item.get_ref())),
            Some(_) => None,
        };
        let Some((offset, value)) = next else { break };
        found = Some(line_at(text, offset));
        current = Some(value);
    }
    found
}

fn lookup<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<(usize, &'a DeValue<'i>)> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, v)| (k.span().start, v.get_ref()))
}

/// Every unknown key and mistyped value in the file. Deserialization stops
/// at the first, so each one found is commented out and the file parsed
/// again; a syntax error ends the search (it has no key to set aside).
pub fn structural_problems<T: DeserializeOwned>(file: &Path, text: &str) -> Vec<Problem> {
    const MOST: usize = 50;
    let mut problems = Vec::new();
    let mut text = text.to_owned();
    while problems.len() < MOST {
        let syntax_ok = text.parse::<toml::Table>().is_ok();
        let Err(e) = toml::from_str::<T>(&text) else {
            break;
        };
        // A syntax error that commenting out introduced is not the file's.
        if !syntax_ok && !problems.is_empty() {
            break;
        }
        let Some(span) = e.span() else {
            problems.push(Problem::new(file, None, toml_message(&e)));
            break;
        };
        let line = line_at(&text, span.start);
        let message = match text.lines().nth(line - 1).and_then(quote_hint) {
            Some(hint) => format!("{}; {hint}", toml_message(&e)),
            None => toml_message(&e),
        };
        problems.push(Problem::new(file, Some(line), message));
        if !syntax_ok || !comment_out(&mut text, line) {
            break;
        }
    }
    problems.sort_by_key(|p| p.line);
    problems
}

/// Turns 1-based `line` into a comment; false if it already was one.
fn comment_out(text: &mut String, line: usize) -> bool {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    match lines.get_mut(line - 1) {
        Some(l) if !l.trim_start().starts_with('#') => {
            l.insert(0, '#');
            *text = lines.join("\n");
            true
        }
        _ => false,
    }
}

/// toml's messages are precise but terse; add what to do, and for a
/// misspelt key the key that was meant.
pub fn toml_message(e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let typed = rest.split('`').next().unwrap_or_default();
        let expected = expected_keys(&message);
        match crate::suggest::closest(typed, expected.iter().map(String::as_str)) {
            Some(key) => format!("unknown field `{typed}`; did you mean `{key}`?"),
            None => format!("{message}; remove the key or fix its spelling"),
        }
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        let typed = rest.split('`').next().unwrap_or_default();
        let expected = expected_keys(&message);
        match crate::suggest::closest(typed, expected.iter().map(String::as_str)) {
            Some(value) => {
                format!("{typed:?} is not a value this key takes; did you mean {value:?}?")
            }
            None => format!("{message}; use one of the listed values"),
        }
    } else {
        message
    }
}

/// The names serde lists after "expected" (`expected one of `a`, `b``).
fn expected_keys(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A line whose value opens with a single quote and holds more of them:
/// a condition with text in single quotes inside a single-quoted TOML
/// string, which TOML ends at the second quote.
fn quote_hint(line: &str) -> Option<String> {
    let (key, value) = line.split_once('=')?;
    let value = value.trim_start();
    let inner = value.strip_prefix('\'')?;
    (!inner.starts_with("''") && inner.matches('\'').count() > 1).then(|| {
        format!(
            "a value in single quotes ends at its next single quote, so text inside it must use double quotes: {} = 'customer.plan == \"pro\"'",
            key.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[company]\nname = \"Acme\"\n\n[delivery]\nwindow = { days = \"mon-fri\", start = \"9\" }\n\n[[category]]\nname = \"a\"\n\n[[category]]\nname = \"b\"\n";

    #[test]
    fn finds_keys_tables_and_array_items() {
        assert_eq!(line_of(TEXT, "company.name"), Some(2));
        assert_eq!(line_of(TEXT, "delivery.window.start"), Some(5));
        assert_eq!(line_of(TEXT, "category.1.name"), Some(11));
        assert_eq!(line_of(TEXT, "category.0.name"), Some(8));
        // The deepest part that exists: the section.
        assert_eq!(line_of(TEXT, "company.postal_address"), Some(1));
        assert_eq!(line_of(TEXT, "database.url"), None);
    }
}
