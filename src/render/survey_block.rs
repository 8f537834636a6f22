//! The survey's answer block, rendered once per kind of survey and question
//! and kept: from one message to the next only each answer's signed link
//! differs, so a kept block is filled in with the message's links instead
//! of running the partial again (eleven answer buttons of tables and
//! inline styles were two fifths of rendering a message).
//!
//! A block is kept only when its partials provably read nothing of the
//! message but the survey and the company: no other variable, no helper
//! that reads the time, no partial of their own. It is rendered once with
//! a placeholder for each link, and kept only if filling those in gives
//! exactly the bytes of the block rendered the ordinary way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::playbook::Survey;

/// How many questions are kept per kind of survey: a question that names
/// the customer differs for everyone, and is then rendered every time.
const MOST_KEPT: usize = 64;

/// Words a kept block's partials may not hold anywhere. Everything else a
/// message sees (the customer, their links, the incident, the account, the
/// sender, the time, and the helpers that read it) differs between
/// messages of the same question, and `this`, `lookup` and a parent's
/// `..` can reach all of it without naming it.
const READS_THE_MESSAGE: &[&str] = &[
    "customer",
    "links",
    "incident",
    "account",
    "sender",
    "now",
    // The template's own tag: blocks are kept by the language of their
    // words (`pt` for `pt-BR` and `pt-PT` alike).
    "lang",
    "date",
    "days_since",
    "days_until",
    "this",
    "lookup",
];

/// Whether a partial's output can depend only on `survey` and `company`.
/// The whole text is read, static text too, so that nothing a mustache
/// hides (a string that holds `}}`, a line break before `>`) slips
/// through: a word of [`READS_THE_MESSAGE`] anywhere, a `..`, an `@root`
/// not followed by `.survey` or `.company`, or the inclusion of another
/// partial, and the block is rendered for every message. A false alarm
/// costs only speed.
pub fn reusable(source: &str) -> bool {
    let names_the_message = source
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| READS_THE_MESSAGE.contains(&word));
    let roots_elsewhere = source.match_indices("@root").any(|(at, _)| {
        let rest = &source[at + "@root".len()..];
        !(rest.starts_with(".survey") || rest.starts_with(".company"))
    });
    let includes = source.match_indices("{{").any(|(at, _)| {
        source[at + 2..]
            .trim_start_matches(|c: char| c.is_whitespace() || "{~#/^".contains(c))
            .starts_with('>')
    });
    !(names_the_message || roots_elsewhere || includes || source.contains(".."))
}

/// What stands in for answer `i`'s link while a block is rendered to be
/// kept: private-use characters, which neither escaping changes.
pub fn placeholder(i: usize) -> String {
    format!("\u{e000}{i}\u{e001}")
}

/// A rendered block cut at its links.
#[derive(Debug)]
struct Pieces {
    /// Text, then the answer whose link follows it (none after the last).
    parts: Vec<(String, Option<usize>)>,
}

impl Pieces {
    fn cut(rendered: &str, answers: usize) -> Option<Self> {
        let mut parts = Vec::new();
        let mut rest = rendered;
        while let Some(start) = rest.find('\u{e000}') {
            let after = &rest[start + '\u{e000}'.len_utf8()..];
            let end = after.find('\u{e001}')?;
            let answer: usize = after[..end].parse().ok()?;
            if answer >= answers {
                return None;
            }
            parts.push((rest[..start].to_owned(), Some(answer)));
            rest = &after[end + '\u{e001}'.len_utf8()..];
        }
        parts.push((rest.to_owned(), None));
        Some(Self { parts })
    }

    fn fill(&self, links: &[String], escape: fn(&str) -> String) -> String {
        let mut out =
            String::with_capacity(self.parts.iter().map(|(text, _)| text.len() + 80).sum());
        for (text, answer) in &self.parts {
            out.push_str(text);
            if let Some(i) = answer {
                out.push_str(&escape(&links[*i]));
            }
        }
        out
    }
}

/// A kept block: its HTML and text forms, each cut at its links.
#[derive(Debug)]
pub struct Kept {
    html: Pieces,
    text: Pieces,
}

impl Kept {
    /// A block rendered with [`placeholder`] links, or `None` when a
    /// placeholder came out changed.
    pub fn new(html: &str, text: &str, answers: usize) -> Option<Self> {
        Some(Self {
            html: Pieces::cut(html, answers)?,
            text: Pieces::cut(text, answers)?,
        })
    }

    /// The block with each answer's link: HTML-escaped in the HTML form,
    /// as the partial's `{{url}}` escapes it, and as the text form's.
    pub fn fill(
        &self,
        links: &[String],
        html_escape: fn(&str) -> String,
        text_escape: fn(&str) -> String,
    ) -> (String, String) {
        (
            self.html.fill(links, html_escape),
            self.text.fill(links, text_escape),
        )
    }
}

/// What is known of one question's block.
#[derive(Debug, Clone)]
pub enum Known {
    Kept(Arc<Kept>),
    /// Rendered each time: the block did not survive the check.
    Rendered,
}

/// A kind of survey with its labels in one language.
type Asking = (Survey, &'static str);

/// The blocks kept so far, by kind of survey, language of its labels, and
/// question.
#[derive(Debug, Default)]
pub struct Blocks {
    known: Mutex<HashMap<Asking, HashMap<String, Known>>>,
}

impl Blocks {
    pub fn get(&self, survey: Survey, lang: &'static str, question: &str) -> Option<Known> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&(survey, lang))?.get(question).cloned()
    }

    pub fn remember(&self, survey: Survey, lang: &'static str, question: &str, what: Known) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let questions = known.entry((survey, lang)).or_default();
        if questions.len() < MOST_KEPT {
            questions.insert(question.to_owned(), what);
        }
    }

    /// Whether a question new to `survey` in `lang` is still worth
    /// learning: a block is learnt by rendering it twice more, which a
    /// full list would never pay back.
    pub fn learning(&self, survey: Survey, lang: &'static str) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&(survey, lang))
            .is_none_or(|q| q.len() < MOST_KEPT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partials_that_read_the_survey_and_the_company_are_kept() {
        let shipped = [
            include_str!("builtin/partials/survey.hbs"),
            include_str!("builtin/partials/survey.txt.hbs"),
        ];
        for source in shipped {
            assert!(reusable(source));
        }
        assert!(reusable(
            "<p>Dear reader</p>{{survey.question}} {{company.name}}"
        ));
        for reads in [
            "{{customer.first_name}}",
            "{{#if customer.attributes.vip}}VIP{{/if}}",
            "{{#each survey.answers}}{{../links.view}}{{/each}}",
            "{{@root.customer.name}}",
            "{{date now}}",
            "{{days_since \"2020-01-01\"}}",
            "{{> buttons}}",
            "{{\n> buttons}}",
            "{{~\t> buttons}}",
            "{{{ links.unsubscribe }}}",
            "{{~incident.title~}}",
            "{{#each @root}}{{#if attributes.vip}}*{{/if}}{{/each}}",
            "{{#with ..}}{{name}}{{/with}}",
            "{{default \"}}\" customer.name}}",
            "{{lookup @root.survey \"kind\"}}",
        ] {
            assert!(!reusable(reads), "{reads}");
        }
    }

    #[test]
    fn a_block_is_filled_with_each_messages_links() {
        let html = format!(
            "<a href=\"{}\">0</a><a href=\"{}\">1</a>",
            placeholder(0),
            placeholder(1)
        );
        let text = format!("0 <{}>\n1 <{}>\n", placeholder(0), placeholder(1));
        let kept = Kept::new(&html, &text, 2).unwrap();
        let links = [
            "https://t.example/s/a=b/0".to_owned(),
            "https://t.example/s/x/1".to_owned(),
        ];
        let (html, text) = kept.fill(&links, handlebars::html_escape, str::to_owned);
        assert_eq!(
            html,
            "<a href=\"https://t.example/s/a&#x3D;b/0\">0</a><a href=\"https://t.example/s/x/1\">1</a>"
        );
        assert_eq!(
            text,
            "0 <https://t.example/s/a=b/0>\n1 <https://t.example/s/x/1>\n"
        );
        // A placeholder that came out changed (or names no answer) keeps nothing.
        assert!(Kept::new("\u{e000}x\u{e001}", "", 2).is_none());
        assert!(Kept::new(&placeholder(2), "", 2).is_none());
    }
}
