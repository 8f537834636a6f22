//! Finds the line of a dotted key (`delivery.window.start`, `category.1.name`)
//! in a TOML text, so a problem found after parsing can still name its line.

use toml::de::{DeTable, DeValue};

use crate::problem::line_at;

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
