//! Reading the templates folder: message templates (`NAME.md.hbs`, front
//! matter then body), layouts (`layouts/NAME.hbs`) and partials
//! (`partials/NAME.hbs`). Built-in layouts, partials and the incident and
//! maintenance notices come first; a file of the same name overrides one, so
//! a new project needs only its own message templates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::problem::{Problem, line_at};
use crate::toml_source::{line_of, toml_message};

/// Where a template came from, for messages that point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    BuiltIn(String),
}

impl Origin {
    pub fn path(&self) -> PathBuf {
        match self {
            Self::File(p) => p.clone(),
            Self::BuiltIn(name) => PathBuf::from(format!("(built-in) {name}")),
        }
    }
}

/// One template's text and where it starts.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: Origin,
    pub text: String,
    /// The file line the text starts on (after a message's front matter).
    pub first_line: usize,
}

impl Source {
    fn built_in(name: &str, text: &str) -> Self {
        Self {
            origin: Origin::BuiltIn(name.to_owned()),
            text: text.to_owned(),
            first_line: 1,
        }
    }

    /// The file line of line `n` (1-based) of the text.
    pub fn line(&self, n: usize) -> usize {
        self.first_line + n.saturating_sub(1)
    }
}

/// A message template's front matter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// The subject line (Handlebars).
    pub subject: String,
    /// The preview text beside the subject in most inboxes (Handlebars).
    #[serde(default)]
    pub preheader: String,
    /// The layout under `templates/layouts/`; `default` when unset.
    #[serde(default)]
    pub layout: Option<String>,
    /// The survey question, replacing the standard one (Handlebars).
    #[serde(default)]
    pub question: Option<String>,
    /// The language the template is written in (a BCP 47 tag, `en` when
    /// unset): the HTML part's `lang`, which screen readers and translation
    /// offers go by. The customer's locale says how dates read, not what
    /// language the words are in.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The language of a template whose front matter names none.
pub const DEFAULT_LANG: &str = "en";

impl FrontMatter {
    /// The template's language.
    pub fn lang(&self) -> &str {
        self.lang.as_deref().unwrap_or(DEFAULT_LANG)
    }
}

/// Whether `tag` looks like a BCP 47 language tag (`en`, `pt-BR`,
/// `zh-Hant`): subtags of 1 to 8 letters or digits joined by hyphens, the
/// first of letters only.
fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (2..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphabetic()));
    first_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A message template, parsed.
#[derive(Debug, Clone)]
pub struct Message {
    pub front: FrontMatter,
    /// The line of each front-matter key, for problems about its value.
    pub front_lines: BTreeMap<String, usize>,
    pub body: Source,
}

impl Message {
    /// Every text of the template that Handlebars renders: the body, the
    /// subject, the preheader and the question.
    pub fn texts(&self) -> [&str; 4] {
        [
            self.body.text.as_str(),
            self.front.subject.as_str(),
            self.front.preheader.as_str(),
            self.front.question.as_deref().unwrap_or_default(),
        ]
    }
}

/// Everything under the templates folder, built-ins included.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub messages: BTreeMap<String, Message>,
    /// Each template's translations (`welcome.de.md.hbs` beside
    /// `welcome.md.hbs`), by the language tag in their file name.
    pub translations: BTreeMap<String, BTreeMap<String, Message>>,
    pub layouts: BTreeMap<String, Source>,
    pub partials: BTreeMap<String, Source>,
}

impl Sources {
    /// The name under which the translation of `name` into `lang` is
    /// compiled (`onboarding/welcome.de`).
    pub fn translation_key(name: &str, lang: &str) -> String {
        format!("{name}.{lang}")
    }

    /// Which form of template `name` a customer whose locale is `locale`
    /// gets: the key it is compiled under and its text. The translation
    /// whose tag matches the locale, else one in the locale's language,
    /// else the template itself (see [`crate::language::best_match`]).
    pub fn variant<'a>(&'a self, name: &str, locale: &str) -> Option<(String, &'a Message)> {
        let message = self.messages.get(name)?;
        let Some(translations) = self.translations.get(name) else {
            return Some((name.to_owned(), message));
        };
        let offered =
            std::iter::once(message.front.lang()).chain(translations.keys().map(String::as_str));
        match crate::language::best_match(locale, offered) {
            Some(lang) if lang != message.front.lang() => translations
                .get(lang)
                .map(|t| (Self::translation_key(name, lang), t)),
            _ => Some((name.to_owned(), message)),
        }
    }

    /// Every template and every translation, with the key each is
    /// compiled under.
    pub fn every_message(&self) -> impl Iterator<Item = (String, &Message)> {
        let translations = self.translations.iter().flat_map(|(name, all)| {
            all.iter()
                .map(move |(lang, m)| (Self::translation_key(name, lang), m))
        });
        self.messages
            .iter()
            .map(|(name, m)| (name.clone(), m))
            .chain(translations)
    }

    /// Whether any template, partial or layout mentions one of `words`.
    pub fn mention(&self, words: &[&str]) -> bool {
        self.mention_beyond(words, &[])
    }

    /// [`Self::mention`], leaving out the partials named `beside`.
    pub fn mention_beyond(&self, words: &[&str], beside: &[&str]) -> bool {
        let texts = self
            .every_message()
            .flat_map(|(_, m)| m.texts())
            .chain(self.layouts.values().map(|l| l.text.as_str()))
            .chain(
                self.partials
                    .iter()
                    .filter(|(name, _)| !beside.contains(&name.as_str()))
                    .map(|(_, p)| p.text.as_str()),
            );
        texts
            .into_iter()
            .any(|text| words.iter().any(|w| text.contains(w)))
    }
}

const BUILT_IN_LAYOUTS: &[(&str, &str)] =
    &[("default", include_str!("builtin/layouts/default.hbs"))];
const BUILT_IN_PARTIALS: &[(&str, &str)] = &[
    ("footer", include_str!("builtin/partials/footer.hbs")),
    ("survey", include_str!("builtin/partials/survey.hbs")),
    (
        "survey.txt",
        include_str!("builtin/partials/survey.txt.hbs"),
    ),
];

/// The message templates compiled into the binary: the notices incidents
/// and maintenances send. `src/render/builtin/messages/` holds their text,
/// which a team copies to `templates/` to make its own.
const BUILT_IN_MESSAGES: &[(&str, &str)] = &[
    (
        "incidents/notice",
        include_str!("builtin/messages/incidents/notice.md.hbs"),
    ),
    (
        "incidents/update",
        include_str!("builtin/messages/incidents/update.md.hbs"),
    ),
    (
        "incidents/resolved",
        include_str!("builtin/messages/incidents/resolved.md.hbs"),
    ),
    (
        "incidents/maintenance",
        include_str!("builtin/messages/incidents/maintenance.md.hbs"),
    ),
    (
        "incidents/completed",
        include_str!("builtin/messages/incidents/completed.md.hbs"),
    ),
    (
        "incidents/cancelled",
        include_str!("builtin/messages/incidents/cancelled.md.hbs"),
    ),
];

/// Whether message template `name` exists under `dir`
/// (`templates/NAME.md.hbs`, inside it) or is built in: playbooks check
/// their templates with this, incidents with [`super::name::find`], which
/// says why not.
pub fn message_exists(dir: &Path, name: &str) -> bool {
    super::name::find(dir, name).is_ok()
}

/// Every message template's name, built-in ones and those under `dir`,
/// sorted: for messages that list them or suggest one.
pub fn message_names(dir: &Path) -> Vec<String> {
    let mut known: Vec<String> = built_in_message_names()
        .map(str::to_owned)
        .chain(message_files(dir))
        .collect();
    known.sort();
    known.dedup();
    known
}

/// The names of the built-in message templates.
pub(super) fn built_in_message_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN_MESSAGES.iter().map(|(name, _)| *name)
}

/// The names of the message templates under `dir` (none when it cannot be
/// read), for a message that lists them.
pub(super) fn message_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let _ = walk(dir, &mut files);
    let names: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let relative = file
                .strip_prefix(dir)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            let name = relative.strip_suffix(MESSAGE_SUFFIX)?;
            let shared = name.starts_with("layouts/") || name.starts_with("partials/");
            (!shared).then(|| name.to_owned())
        })
        .collect();
    // A translation is a form of its template, not a template of its own.
    let exists =
        |name: &str| names.iter().any(|n| n == name) || built_in_message_names().any(|b| b == name);
    names
        .iter()
        .filter(|name| !translation_of(name).is_some_and(|(base, _)| exists(base)))
        .cloned()
        .collect()
}

/// How a message template's file name ends.
pub(super) const MESSAGE_SUFFIX: &str = ".md.hbs";

/// Reads `dir` (a missing folder means built-ins only when `required` is
/// false): every template that parsed, and every problem found.
pub fn read(dir: &Path, required: bool) -> (Sources, Vec<Problem>) {
    let mut sources = Sources::default();
    for (name, text) in BUILT_IN_LAYOUTS {
        sources.layouts.insert(
            (*name).into(),
            Source::built_in(&format!("layouts/{name}.hbs"), text),
        );
    }
    for (name, text) in BUILT_IN_PARTIALS {
        sources.partials.insert(
            (*name).into(),
            Source::built_in(&format!("partials/{name}.hbs"), text),
        );
    }
    let mut problems = Vec::new();
    for (name, text) in BUILT_IN_MESSAGES {
        let origin = PathBuf::from(format!("(built-in) {name}{MESSAGE_SUFFIX}"));
        match split_front_matter(&origin, text) {
            Ok((front, front_lines, body, first_line)) => {
                let body = Source {
                    origin: Origin::BuiltIn(format!("{name}{MESSAGE_SUFFIX}")),
                    text: body,
                    first_line,
                };
                sources.messages.insert(
                    (*name).into(),
                    Message {
                        front,
                        front_lines,
                        body,
                    },
                );
            }
            // A test renders every built-in; this is for completeness.
            Err(problem) => problems.push(problem),
        }
    }
    let mut files = Vec::new();
    if let Err(e) = walk(dir, &mut files)
        && (required || e.kind() != std::io::ErrorKind::NotFound)
    {
        let problem = Problem::new(
            dir,
            None,
            format!("cannot read the templates folder ({e}); create it or fix paths.templates"),
        );
        problems.push(problem);
        return (sources, problems);
    }
    files.sort();
    for file in files {
        let Ok(relative) = file.strip_prefix(dir) else {
            continue;
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                problems.push(Problem::new(
                    &file,
                    None,
                    format!("cannot read the file ({e})"),
                ));
                continue;
            }
        };
        let source = |text: String, first_line| Source {
            origin: Origin::File(file.clone()),
            text,
            first_line,
        };
        if let Some(name) = relative
            .strip_prefix("layouts/")
            .and_then(|r| r.strip_suffix(".hbs"))
        {
            sources.layouts.insert(name.to_owned(), source(text, 1));
        } else if let Some(name) = relative
            .strip_prefix("partials/")
            .and_then(|r| r.strip_suffix(".hbs"))
        {
            sources.partials.insert(name.to_owned(), source(text, 1));
        } else if let Some(name) = relative.strip_suffix(MESSAGE_SUFFIX) {
            match split_front_matter(&file, &text) {
                Ok((front, front_lines, body, first_line)) => {
                    sources.messages.insert(
                        name.to_owned(),
                        Message {
                            front,
                            front_lines,
                            body: source(body, first_line),
                        },
                    );
                }
                Err(problem) => problems.push(problem),
            }
        }
    }
    separate_translations(&mut sources, &mut problems);
    for (name, message) in sources.every_message() {
        if let Some(layout) = &message.front.layout
            && !sources.layouts.contains_key(layout)
        {
            problems.push(Problem::new(
                &message.body.origin.path(),
                message.front_lines.get("layout").copied(),
                format!(
                    "template {name}: layout {layout:?} does not exist{}; create templates/layouts/{layout}.hbs or use one of: {}",
                    crate::suggest::did_you_mean(layout, sources.layouts.keys().map(String::as_str)),
                    sources.layouts.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    (sources, problems)
}

/// The language tag a translation's file name ends in, and the template it
/// translates: `onboarding/welcome.pt-BR` is `onboarding/welcome` in
/// `pt-BR`. Only a tag whose language is two or three letters counts, and
/// only when that template exists: `release.notes` alone is a template.
pub(super) fn translation_of(name: &str) -> Option<(&str, &str)> {
    let (base, tag) = name.rsplit_once('.')?;
    let language = tag.split('-').next().unwrap_or_default();
    let file_part = !tag.contains('/');
    (file_part && (2..=3).contains(&language.len()) && is_language_tag(tag)).then_some((base, tag))
}

/// Moves every translation read as a template of its own under the
/// template it translates, and says where its `lang` disagrees with its
/// file name.
fn separate_translations(sources: &mut Sources, problems: &mut Vec<Problem>) {
    let names: Vec<String> = sources.messages.keys().cloned().collect();
    for name in names {
        let Some((base, tag)) = translation_of(&name) else {
            continue;
        };
        if !sources.messages.contains_key(base) || translation_of(base).is_some() {
            continue;
        }
        let (base, tag) = (base.to_owned(), tag.to_owned());
        let Some(mut message) = sources.messages.remove(&name) else {
            continue;
        };
        match &message.front.lang {
            Some(lang) if !crate::language::same_tag(lang, &tag) => {
                problems.push(Problem::new(
                    &message.body.origin.path(),
                    message.front_lines.get("lang").copied(),
                    format!(
                        "lang = {lang:?}, but the file name says this is the {tag} translation of {base}; make them agree (or leave lang out: the file name says it)"
                    ),
                ));
                continue;
            }
            _ => message.front.lang = Some(tag.clone()),
        }
        sources
            .translations
            .entry(base)
            .or_default()
            .insert(tag, message);
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "hbs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Splits `+++` front matter from the body and parses it.
pub(super) fn split_front_matter(
    file: &Path,
    text: &str,
) -> Result<(FrontMatter, BTreeMap<String, usize>, String, usize), Problem> {
    let missing = || {
        Problem::new(
            file,
            Some(1),
            "a message template starts with front matter between +++ lines, e.g.\n+++\nsubject = \"Welcome to {{company.product}}\"\n+++",
        )
    };
    let rest = text
        .strip_prefix("+++\r\n")
        .or_else(|| text.strip_prefix("+++\n"))
        .ok_or_else(missing)?;
    let offset = text.len() - rest.len();
    let mut end = None;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            end = Some((at, at + line.len()));
            break;
        }
        at += line.len();
    }
    let Some((front_end, body_start)) = end else {
        return Err(Problem::new(
            file,
            Some(1),
            "the front matter is not closed; add a line with +++ after it",
        ));
    };
    let front_text = &rest[..front_end];
    let front: FrontMatter = toml::from_str(front_text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, offset + s.start));
        Problem::new(
            file,
            line.or(Some(2)),
            format!("front matter: {}", toml_message(&e)),
        )
    })?;
    let mut lines = BTreeMap::new();
    for key in ["subject", "preheader", "layout", "question", "lang"] {
        if let Some(line) = line_of(front_text, key) {
            lines.insert(key.to_owned(), line + 1);
        }
    }
    if front.subject.trim().is_empty() {
        return Err(Problem::new(
            file,
            lines.get("subject").copied().or(Some(2)),
            "the subject is empty; every message needs one: subject = \"…\"",
        ));
    }
    if let Some(lang) = &front.lang
        && !is_language_tag(lang)
    {
        return Err(Problem::new(
            file,
            lines.get("lang").copied().or(Some(2)),
            format!(
                "lang {lang:?} is not a language tag; write the language the template is in, e.g. lang = \"en\" or lang = \"pt-BR\""
            ),
        ));
    }
    let body = rest[body_start..].to_owned();
    let first_line = line_at(text, offset + body_start);
    Ok((front, lines, body, first_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_body_lines() {
        let text = "+++\nsubject = \"Hi\"\nlayout = \"x\"\n+++\nline one\n{{oops\n";
        let (front, lines, body, first) = split_front_matter(Path::new("t.md.hbs"), text).unwrap();
        assert_eq!(front.subject, "Hi");
        assert_eq!(lines["layout"], 3);
        assert_eq!(body, "line one\n{{oops\n");
        assert_eq!(first, 5);
    }

    #[test]
    fn front_matter_mistakes_have_lines() {
        let p = Path::new("t.md.hbs");
        let e = split_front_matter(p, "no front matter").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = split_front_matter(p, "+++\nsubject = \"a\"\nsubjet = \"b\"\n+++\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("subjet"), "{e}");
        let e = split_front_matter(p, "+++\nsubject = \"a\"\n").unwrap_err();
        assert!(e.message.contains("not closed"));
        let e = split_front_matter(p, "+++\npreheader = \"a\"\n+++\n").unwrap_err();
        assert!(e.message.contains("subject"), "{e}");
        let e = split_front_matter(p, "+++\nsubject = \"a\"\nlang = \"Portuguese\"\n+++\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("pt-BR"), "{e}");
    }

    #[test]
    fn a_template_is_in_english_unless_it_says_otherwise() {
        let p = Path::new("t.md.hbs");
        let (front, ..) = split_front_matter(p, "+++\nsubject = \"a\"\n+++\n").unwrap();
        assert_eq!(front.lang(), "en");
        let (front, ..) =
            split_front_matter(p, "+++\nsubject = \"a\"\nlang = \"pt-BR\"\n+++\n").unwrap();
        assert_eq!(front.lang(), "pt-BR");
        for good in ["de", "zh-Hant", "es-419", "sr-Latn-RS"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "en_US",
            "en-",
            "pt BR",
            "\"en\"",
            "english-language-xx-yyyyyyyyy",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
