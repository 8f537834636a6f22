//! A customer's choice of what mail to get, and what leaving one category
//! means: the same decision whether it came from the one-click POST, the
//! preferences page's button or mail to the unsubscribe address.

use serde::{Deserialize, Serialize};

use super::response::Source;

/// A category of mail, the unit a customer unsubscribes from (`[[category]]`
/// in the configuration).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Whether customers may leave it; operational notices may not be.
    #[serde(default = "yes")]
    pub unsubscribable: bool,
}

fn yes() -> bool {
    true
}

/// A customer's choice of what mail to get, from a message they received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Categories (or `*` for all mail) to get no more of.
    pub unsubscribe: Vec<String>,
    /// Categories (or `*`) to get again, if the customer had left them.
    pub resubscribe: Vec<String>,
    /// Where the choice was made: one the customer may undo
    /// ([`Source::chosen_by_customer`]).
    pub source: Source,
}

impl Preferences {
    /// Leaving the category of the message the request came from, made at
    /// `source`. A category that cannot be left (operational notices)
    /// leaves nothing.
    pub fn leave(categories: &[Category], category: &str, source: Source) -> Self {
        Self {
            unsubscribe: if can_leave(categories, category) {
                vec![category.to_owned()]
            } else {
                Vec::new()
            },
            resubscribe: Vec::new(),
            source,
        }
    }
}

/// Whether a customer may leave `category`. One no longer configured may
/// always be left.
pub fn can_leave(categories: &[Category], category: &str) -> bool {
    categories
        .iter()
        .find(|c| c.name == category)
        .is_none_or(|c| c.unsubscribable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(name: &str, unsubscribable: bool) -> Category {
        Category {
            name: name.into(),
            description: String::new(),
            unsubscribable,
        }
    }

    #[test]
    fn only_a_category_that_may_be_left_is_left() {
        let categories = [category("tips", true), category("incidents", false)];
        assert_eq!(
            Preferences::leave(&categories, "tips", Source::Mailto).unsubscribe,
            ["tips"]
        );
        assert!(
            Preferences::leave(&categories, "incidents", Source::Mailto)
                .unsubscribe
                .is_empty()
        );
        assert_eq!(
            Preferences::leave(&categories, "retired", Source::OneClick).unsubscribe,
            ["retired"],
            "a category no longer configured may be left"
        );
    }
}
