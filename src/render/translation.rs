//! Whether each translation says what its template says: the values it
//! reads, the survey it places and the front-matter keys it sets, compared
//! with its template's, for `tend check` to warn about.

use std::collections::BTreeSet;

use super::source::{Message, Sources};
use crate::problem::Problem;

/// Where each translation says something other than its template: a
/// value it reads that the template does not (or the other way round), a
/// survey only one of them places, a front-matter key only one of them
/// sets. A translation should say the same in another language; `tend
/// check` lists these so that a change to a template reaches its
/// translations.
pub fn problems(sources: &Sources) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, translations) in &sources.translations {
        let Some(original) = sources.messages.get(name) else {
            continue;
        };
        let read = reads(original);
        let keys = front_keys(original);
        for (lang, translation) in translations {
            let file = translation.body.origin.path();
            let at = |key: &str| translation.front_lines.get(key).copied();
            let theirs = reads(translation);
            for extra in theirs.difference(&read) {
                problems.push(Problem::new(
                    &file,
                    first_line_reading(translation, extra),
                    format!(
                        "the {lang} translation of {name} reads {extra}, which {name} does not; translate the template's text and values, or add {extra} to {name} too"
                    ),
                ));
            }
            for missing in read.difference(&theirs) {
                problems.push(Problem::new(
                    &file,
                    Some(translation.body.first_line),
                    format!(
                        "the {lang} translation of {name} leaves out {missing}, which {name} reads; a customer in {lang} should learn what the others do"
                    ),
                ));
            }
            if places_survey(translation) != places_survey(original) {
                let (has, lacks) = if places_survey(original) {
                    (name.as_str(), "the translation")
                } else {
                    ("the translation", name.as_str())
                };
                problems.push(Problem::new(
                    &file,
                    Some(translation.body.first_line),
                    format!(
                        "{has} places the survey ({{{{> survey}}}}) and {lacks} does not; every language should ask it"
                    ),
                ));
            }
            let their_keys = front_keys(translation);
            for key in their_keys.symmetric_difference(&keys) {
                let (has, lacks) = if keys.contains(key) {
                    (name.as_str(), "the translation")
                } else {
                    ("the translation", name.as_str())
                };
                problems.push(Problem::new(
                    &file,
                    at(key).or(Some(1)),
                    format!(
                        "{has} sets {key} in its front matter and {lacks} does not ({lang} translation of {name}); set it in both"
                    ),
                ));
            }
        }
    }
    problems
}

/// The front-matter keys a template sets, but its language.
fn front_keys(message: &Message) -> BTreeSet<&str> {
    message
        .front_lines
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "lang")
        .collect()
}

/// Whether a template places the survey (`{{> survey}}`, `{{~> survey ~}}`).
fn places_survey(message: &Message) -> bool {
    expressions(&message.body.text).any(|e| {
        e.strip_prefix('>')
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|partial| partial.trim_end_matches('~') == "survey")
    })
}

/// The roots of what a template may read, as its values' paths begin.
const READ_ROOTS: &[&str] = &[
    "customer.",
    "company.",
    "links.",
    "survey.",
    "incident.",
    "account.",
    "sender.",
];

/// Every value a template reads (`customer.renewal_at`), from its body,
/// subject, preheader and question.
fn reads(message: &Message) -> BTreeSet<String> {
    message
        .texts()
        .into_iter()
        .flat_map(|text| expressions(text).flat_map(paths_in).collect::<Vec<_>>())
        .collect()
}

/// The insides of each `{{…}}` of `text`, comments (`{{! … }}`,
/// `{{!-- … --}}`, which may hold braces) left out.
fn expressions(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("{{")?;
        let after = &rest[start + 2..];
        let inside = after.trim_start_matches('~');
        if let Some(comment) = inside.strip_prefix("!--") {
            let end = comment.find("--").map_or(comment.len(), |e| e + 2);
            let skipped = after.len() - comment.len() + end;
            rest = &after[skipped.min(after.len())..];
            return Some("");
        }
        let (body, tail) = after.split_once("}}")?;
        rest = tail;
        let body = body
            .trim_start_matches(['{', '~', '#', '^', '/', '&'])
            .trim();
        Some(if body.starts_with('!') { "" } else { body })
    })
    .filter(|e| !e.is_empty())
}

/// The value paths in one expression (`date customer.renewal_at
/// format="%B"` reads `customer.renewal_at`).
fn paths_in(expression: &str) -> Vec<String> {
    let mut paths = Vec::new();
    // String literals ("…", which may hold spaces) are left out whole.
    let mut unquoted = String::new();
    let mut in_string = false;
    for c in expression.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            _ => unquoted.push(c),
        }
    }
    for token in unquoted.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
        let token = token.rsplit('=').next().unwrap_or_default();
        let token = token.trim_start_matches("@root.").trim_start_matches("../");
        if READ_ROOTS.iter().any(|root| token.starts_with(root)) {
            paths.push(token.trim_end_matches(['}', '~']).to_owned());
        }
    }
    paths
}

/// The file line where a translation first reads `path`.
fn first_line_reading(message: &Message, path: &str) -> Option<usize> {
    let body = &message.body;
    match body.text.lines().position(|line| line.contains(path)) {
        Some(i) => Some(body.line(i + 1)),
        None => ["subject", "preheader", "question"]
            .into_iter()
            .find(|key| match *key {
                "subject" => message.front.subject.contains(path),
                "preheader" => message.front.preheader.contains(path),
                _ => message
                    .front
                    .question
                    .as_deref()
                    .is_some_and(|q| q.contains(path)),
            })
            .and_then(|key| message.front_lines.get(key).copied()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::render::source::{Origin, Source, split_front_matter};

    fn message(text: &str) -> Message {
        let (front, front_lines, body, first_line) =
            split_front_matter(Path::new("t.md.hbs"), text).unwrap();
        Message {
            front,
            front_lines,
            body: Source {
                origin: Origin::File("t.md.hbs".into()),
                text: body,
                first_line,
            },
        }
    }

    #[test]
    fn what_a_template_reads_and_whether_it_asks_the_survey() {
        let m = message(
            "+++\nsubject = \"Hi {{customer.first_name}}\"\n+++\n{{!-- {{customer.plan}} --}}{{! {{customer.health}} }}\n{{date customer.renewal_at format=\"%B {{x}} %d\"}} {{default customer.attributes.x \"a \\\" b\"}}\n{{#each survey.answers}}{{label}}{{/each}}{{else}}\n{{~> survey ~}}\n",
        );
        let read: Vec<String> = reads(&m).into_iter().collect();
        assert_eq!(
            read,
            [
                "customer.attributes.x",
                "customer.first_name",
                "customer.renewal_at",
                "survey.answers"
            ]
        );
        assert!(places_survey(&m));
        assert!(!places_survey(&message(
            "+++\nsubject = \"s\"\n+++\n{{> survey_extra}}\n"
        )));
        assert!(places_survey(&message(
            "+++\nsubject = \"s\"\n+++\n{{> survey k=1}}\n"
        )));
    }
}
