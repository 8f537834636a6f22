//! Languages: which of several offered a customer's `locale` is best
//! served by, and the words tend itself writes around a team's templates
//! (the mail's footer and survey, the pages a customer reaches from a mail)
//! in each language it ships. Pure: no file is read at run time, the word
//! tables are compiled in from `src/render/builtin/strings/`.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The language of a template or a page when nothing says otherwise.
pub const DEFAULT: &str = "en";

/// The languages tend's own words ship in, with their tables.
const SHIPPED: &[(&str, &str)] = &[
    ("en", include_str!("render/builtin/strings/en.toml")),
    ("de", include_str!("render/builtin/strings/de.toml")),
    ("fr", include_str!("render/builtin/strings/fr.toml")),
    ("es", include_str!("render/builtin/strings/es.toml")),
    ("pt", include_str!("render/builtin/strings/pt.toml")),
    ("ja", include_str!("render/builtin/strings/ja.toml")),
];

/// Whether two language tags name the same tag (`pt-BR`, `pt_br`).
pub fn same_tag(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            x.eq_ignore_ascii_case(&y) || (x == b'_' && y == b'-') || (x == b'-' && y == b'_')
        })
}

/// The language of a tag: `pt` of `pt-BR`, lower-cased.
pub fn primary(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether two tags are in one language (`en-GB` and `en`).
pub fn same_language(a: &str, b: &str) -> bool {
    primary(a) == primary(b)
}

/// The best of `offered` for someone whose locale is `wanted`: the same
/// tag, else one in the same language (the bare language first: `pt` before
/// `pt-PT` for `pt-BR`), else none (the caller's default). An empty
/// `wanted` matches nothing.
pub fn best_match<'a>(wanted: &str, offered: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.trim();
    if wanted.is_empty() {
        return None;
    }
    let offered: Vec<&str> = offered.into_iter().collect();
    if let Some(exact) = offered.iter().find(|o| same_tag(o, wanted)) {
        return Some(exact);
    }
    let language = primary(wanted);
    offered
        .iter()
        .find(|o| o.eq_ignore_ascii_case(&language))
        .or_else(|| offered.iter().find(|o| primary(o) == language))
        .copied()
}

/// tend's own words in one language.
#[derive(Debug)]
pub struct Words {
    lang: &'static str,
    table: HashMap<String, String>,
}

impl Words {
    /// The words for `tag`: its language's if tend ships it, else
    /// English.
    pub fn for_tag(tag: &str) -> &'static Words {
        let all = tables();
        // Every message asks this a few times: a shipped tag as it is
        // written is found without building anything.
        if let Some(words) = all.iter().find(|w| w.lang == tag) {
            return words;
        }
        let lang = best_match(tag, SHIPPED.iter().map(|(l, _)| *l)).unwrap_or(DEFAULT);
        all.iter().find(|w| w.lang == lang).unwrap_or(&all[0])
    }

    /// The language these words are in.
    pub fn lang(&self) -> &'static str {
        self.lang
    }

    /// The text of `key` (`mail.footer_choose`), English where this
    /// language lacks it; `None` for a key English lacks too.
    pub fn find(&self, key: &str) -> Option<&str> {
        self.table
            .get(key)
            .or_else(|| tables()[0].table.get(key))
            .map(String::as_str)
    }

    /// [`Self::find`] for a key tend itself asks for (a test keeps every
    /// table complete, so it is always there).
    pub fn get(&self, key: &str) -> &str {
        self.find(key).unwrap_or_default()
    }

    /// [`Self::get`] with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in values {
            let hole = format!("{{{name}}}");
            if text.contains(&hole) {
                text = text.replace(&hole, value);
            }
        }
        text
    }
}

/// Every shipped table, English first.
fn tables() -> &'static [Words] {
    static TABLES: OnceLock<Vec<Words>> = OnceLock::new();
    TABLES.get_or_init(|| {
        SHIPPED
            .iter()
            .map(|(lang, text)| Words {
                lang,
                table: flatten(lang, text),
            })
            .collect()
    })
}

/// `[section] key = "…"` as `section.key`.
fn flatten(lang: &str, text: &str) -> HashMap<String, String> {
    let parsed: toml::Table = toml::from_str(text)
        .unwrap_or_else(|e| panic!("the built-in words for {lang} do not parse: {e}"));
    let mut table = HashMap::new();
    for (section, keys) in parsed {
        if let toml::Value::Table(keys) = keys {
            for (key, value) in keys {
                if let toml::Value::String(text) = value {
                    table.insert(format!("{section}.{key}"), text);
                }
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_match_is_the_tag_then_the_language_then_none() {
        let offered = ["en", "de", "pt-BR", "pt-PT", "fr-CA", "fr"];
        assert_eq!(best_match("pt-BR", offered), Some("pt-BR"));
        assert_eq!(best_match("pt_br", offered), Some("pt-BR"));
        assert_eq!(
            best_match("pt", offered),
            Some("pt-BR"),
            "the first in the language"
        );
        assert_eq!(best_match("de-AT", offered), Some("de"));
        assert_eq!(
            best_match("fr-BE", offered),
            Some("fr"),
            "the bare language first"
        );
        assert_eq!(best_match("ja", offered), None);
        assert_eq!(best_match("", offered), None);
        assert_eq!(best_match("EN-gb", offered), Some("en"));
    }

    #[test]
    fn every_shipped_language_has_every_english_word_with_its_placeholders() {
        let english = &tables()[0];
        assert_eq!(english.lang, "en");
        let holes = |text: &str| {
            let mut names: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
                .collect();
            names.sort();
            names
        };
        for words in tables() {
            for (key, text) in &english.table {
                let translated = words
                    .table
                    .get(key)
                    .unwrap_or_else(|| panic!("{}.toml lacks {key}", words.lang));
                assert_eq!(holes(translated), holes(text), "{}: {key}", words.lang);
            }
            for key in words.table.keys() {
                assert!(
                    english.table.contains_key(key),
                    "{}: {key} is not in en.toml",
                    words.lang
                );
            }
        }
        assert_eq!(tables().len(), 6);
    }

    #[test]
    fn words_fall_back_to_english() {
        assert_eq!(Words::for_tag("de-CH").lang(), "de");
        assert_eq!(Words::for_tag("pt-BR").get("survey.yes"), "Sim");
        assert_eq!(Words::for_tag("zh").lang(), "en");
        assert_eq!(
            Words::for_tag("fr").fill("page.no_mail_now", &[("company", "Acme")]),
            "Vous ne recevez actuellement aucun e-mail de Acme."
        );
    }
}
