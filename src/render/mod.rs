//! Rendering a message: front matter and Handlebars, then Markdown, into a
//! plain-text part and an HTML part inside the branded layout, with every
//! link signed. Three registries, one per escaping rule: subjects are plain
//! text, bodies are Markdown (values are Markdown-escaped, so a customer's
//! name cannot become a link or a heading), layouts are HTML (values are
//! HTML-escaped). All three are strict: a variable that does not exist is an
//! error, never a blank. A survey is the one block Markdown cannot write:
//! `{{> survey}}` leaves a marker in the body, which the HTML part fills with
//! the `survey` partial (answer buttons of tables and inline styles) and the
//! text part with `survey.txt` (one answer a line).

pub mod context;
mod helpers;
pub mod markdown;
pub mod name;
pub mod source;
mod survey_block;
mod translation;

use crate::domain::account::{Account, AccountFacts, TeamMember};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::customer::Customer;
use crate::domain::message::MessageId;
use crate::domain::playbook::Survey;
use crate::language::Words;
use crate::problem::Problem;
use crate::suggest;
use crate::token::{Purpose, Signer};

pub use source::Origin;

/// The layout a template gets when its front matter names none.
pub const DEFAULT_LAYOUT: &str = "default";
/// The plain-text footer under every text part (the HTML one is the
/// `footer` partial in the layout).
const TEXT_FOOTER: &str = "-- \n{{company.name}}, {{company.postal_address}}\n{{t \"mail.text_choose\"}} {{links.preferences}}\n{{t \"mail.text_unsubscribe\"}} {{links.unsubscribe}}\n";
/// The partial that places a survey in a body, and its plain-text twin.
/// Both are built in and may be overridden like any partial: `survey` is
/// HTML (answer buttons made of tables and inline styles, which Markdown
/// cannot write), `survey.txt` is the text part's form.
const SURVEY: &str = "survey";
const SURVEY_TEXT: &str = "survey.txt";
/// What `{{> survey}}` leaves in a Markdown body: a line of its own that
/// each part fills with its own form of the survey. Blank lines around it
/// keep it a block even when the partial is used inside a paragraph.
const SURVEY_MARKER: &str = "<!--tend:survey-->";
const SURVEY_IN_BODY: &str = "{{#if survey}}\n\n<!--tend:survey-->\n\n{{/if}}";

/// One message to render.
pub struct Letter<'a> {
    /// tend's id of the message: every signed link names it.
    pub message: MessageId,
    pub customer: &'a Customer,
    /// The unsubscribe category.
    pub category: &'a str,
    pub survey: Option<Survey>,
    /// In incident and maintenance notices.
    pub incident: Option<&'a Value>,
    /// The customer's account and its owner; `None`: their own.
    pub account: Option<&'a AccountFacts>,
    /// Who the mail goes out as, when not the configured sender: the
    /// account's owner (`from = "owner"`).
    pub sender: Option<&'a TeamMember>,
    pub now: DateTime<Utc>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub preheader: String,
    pub text: String,
    pub html: String,
    /// The one-click unsubscribe URL (for `List-Unsubscribe`).
    pub unsubscribe_url: String,
}

/// A template that could not be rendered: where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problem)]
pub struct RenderError {
    pub template: String,
    pub problem: Problem,
}

/// The templates, compiled once, and what every message's links need.
pub struct Renderer {
    plain: Handlebars<'static>,
    markdown: Handlebars<'static>,
    html: Handlebars<'static>,
    sources: source::Sources,
    company: Value,
    product: String,
    public_url: String,
    signer: Signer,
    /// `sender` when mail goes out as the configured sender.
    sender: Value,
    /// Whether a template, partial or layout reads `account` or `sender`:
    /// only then does each message's context carry them.
    reads_account: bool,
    /// Survey blocks rendered once and kept, when the survey partials
    /// allow it.
    survey_blocks: Option<survey_block::Blocks>,
    /// Whether anything but the survey partials mentions `answers`.
    answers_beyond_the_block: bool,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field(
                "templates",
                &self.sources.messages.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    r.register_escape_fn(escape);
    helpers::register(&mut r, escape);
    r
}

fn plain_escape(value: &str) -> String {
    // Subjects are header text: a line break in a value must not end up in one.
    value.replace(['\r', '\n'], " ")
}

impl Renderer {
    /// Loads and compiles every template under `paths.templates`, or lists
    /// every problem as file:line.
    pub fn load(settings: &Settings, signer: Signer) -> Result<Self, Vec<Problem>> {
        let dir = Path::new(&settings.paths.templates);
        let required = settings.paths.templates != Settings::default().paths.templates;
        let (sources, mut problems) = source::read(dir, required);
        let mut renderer = Self {
            plain: registry(plain_escape),
            markdown: registry(markdown::escape),
            html: registry(handlebars::html_escape),
            sources: source::Sources::default(),
            company: context::company(&settings.company),
            product: settings.company.product.clone(),
            public_url: settings.http.public_url.trim_end_matches('/').to_owned(),
            signer,
            sender: context::configured_sender(&settings.mail.from),
            reads_account: sources.mention(&["account.", "sender."]),
            survey_blocks: [SURVEY, SURVEY_TEXT]
                .iter()
                .all(|name| {
                    sources
                        .partials
                        .get(*name)
                        .is_some_and(|p| survey_block::reusable(&p.text))
                })
                .then(survey_block::Blocks::default),
            answers_beyond_the_block: sources.mention_beyond(&["answers"], &[SURVEY, SURVEY_TEXT]),
        };
        let mut compile = |registry: &mut Handlebars<'static>, name: &str, src: &source::Source| {
            if let Err(e) = registry.register_template_string(name, &src.text) {
                let line = e.pos().map(|(line, _)| src.line(line));
                problems.push(Problem::new(
                    &src.origin.path(),
                    line,
                    format!("template syntax: {}", e.reason()),
                ));
            }
        };
        for (name, partial) in &sources.partials {
            if name.ends_with(".txt") {
                compile(&mut renderer.plain, name, partial);
            } else {
                compile(&mut renderer.markdown, name, partial);
                compile(&mut renderer.html, name, partial);
            }
        }
        compile(
            &mut renderer.markdown,
            SURVEY,
            &source::Source {
                origin: Origin::BuiltIn("survey placement".into()),
                text: SURVEY_IN_BODY.into(),
                first_line: 1,
            },
        );
        for (name, layout) in &sources.layouts {
            compile(&mut renderer.html, &layout_key(name), layout);
        }
        compile(
            &mut renderer.plain,
            "footer.txt",
            &source::Source {
                origin: Origin::BuiltIn("text footer".into()),
                text: TEXT_FOOTER.into(),
                first_line: 1,
            },
        );
        for (name, message) in sources.every_message() {
            let name = &name;
            compile(&mut renderer.markdown, name, &message.body);
            let front = |key: &str, text: &str| source::Source {
                origin: message.body.origin.clone(),
                text: text.to_owned(),
                first_line: message.front_lines.get(key).copied().unwrap_or(1),
            };
            compile(
                &mut renderer.plain,
                &format!("{name}#subject"),
                &front("subject", &message.front.subject),
            );
            compile(
                &mut renderer.plain,
                &format!("{name}#preheader"),
                &front("preheader", &message.front.preheader),
            );
            if let Some(question) = &message.front.question {
                compile(
                    &mut renderer.plain,
                    &format!("{name}#question"),
                    &front("question", question),
                );
            }
        }
        renderer.sources = sources;
        if problems.is_empty() {
            Ok(renderer)
        } else {
            Err(problems)
        }
    }

    /// Whether a template, partial or layout reads `account` or `sender`.
    pub fn reads_account(&self) -> bool {
        self.reads_account
    }

    /// The names of every message template.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.sources.messages.keys().map(String::as_str)
    }

    /// Where a translation reads, asks or sets other than its template:
    /// worth fixing, never a reason to stop sending.
    pub fn translation_warnings(&self) -> Vec<Problem> {
        translation::problems(&self.sources)
    }

    /// How many translations the templates have, all languages counted.
    pub fn translations(&self) -> usize {
        self.sources.translations.values().map(|t| t.len()).sum()
    }

    /// How many message templates are the built-in ones (no file overrides
    /// them).
    pub fn built_in_templates(&self) -> usize {
        self.sources
            .messages
            .values()
            .filter(|m| matches!(m.body.origin, source::Origin::BuiltIn(_)))
            .count()
    }

    fn link(&self, purpose: Purpose, letter: &Letter<'_>, value: &str) -> String {
        let token = self.signer.sign(purpose, letter.message, value, letter.now);
        format!("{}/{}/{token}", self.public_url, purpose.route())
    }

    /// The form of `template` for `customer` (see
    /// [`source::Sources::variant`]): the key it is compiled under and its
    /// text.
    fn message(
        &self,
        template: &str,
        customer: &Customer,
    ) -> Result<(String, &source::Message), RenderError> {
        self.sources
            .variant(template, &customer.record.locale)
            .ok_or_else(|| RenderError {
                template: template.to_owned(),
                problem: Problem::new(
                    Path::new(&format!("templates/{template}.md.hbs")),
                    None,
                    format!(
                        "template {template} does not exist; create templates/{template}.md.hbs"
                    ),
                ),
            })
    }

    /// Renders `template` for `letter`.
    pub fn render(&self, template: &str, letter: &Letter<'_>) -> Result<Rendered, RenderError> {
        let (key, message) = self.message(template, letter.customer)?;
        self.render_with(&key, message, letter, context::customer(letter.customer))
    }

    /// The question `template` asks `letter`'s customer in a `survey`: its
    /// front matter's `question` rendered for them, or the standard one.
    /// What the answer page shows above the answers.
    pub fn question(
        &self,
        template: &str,
        survey: Survey,
        letter: &Letter<'_>,
    ) -> Result<String, RenderError> {
        let (key, message) = self.message(template, letter.customer)?;
        let (ctx, _) = self.context(letter, context::customer(letter.customer), message);
        self.question_with(&key, message, survey, &ctx)
            .map(|q| one_line(&q))
    }

    /// The language `template` speaks to `customer` in: that of the
    /// translation they get (what the pages they reach from it are shown
    /// in).
    pub fn language(&self, template: &str, customer: &Customer) -> String {
        self.message(template, customer).map_or_else(
            |_| crate::language::DEFAULT.to_owned(),
            |(_, m)| m.front.lang().to_owned(),
        )
    }

    /// A render error in template `name` (or a partial it uses), placed at
    /// its file and line.
    fn failure(
        &self,
        name: &str,
        e: &handlebars::RenderError,
        src: &source::Source,
        data: &Value,
    ) -> RenderError {
        let line = e.line_no.map(|n| src.line(n)).or(Some(src.first_line));
        let origin = match e.template_name.as_deref() {
            Some(partial) if self.sources.partials.contains_key(partial) => {
                self.sources.partials[partial].origin.path()
            }
            _ => src.origin.path(),
        };
        RenderError {
            template: name.to_owned(),
            problem: Problem::new(&origin, line, self.explain(e, data)),
        }
    }

    /// Everything a template sees except the survey, and the unsubscribe
    /// link.
    fn context(
        &self,
        letter: &Letter<'_>,
        customer: Value,
        message: &source::Message,
    ) -> (Value, String) {
        let unsubscribe = self.link(Purpose::Unsubscribe, letter, letter.category);
        let ctx = context::build(context::Parts {
            customer,
            company: self.company.clone(),
            unsubscribe: unsubscribe.clone(),
            preferences: format!("{unsubscribe}#preferences"),
            view: self.link(Purpose::View, letter, &letter.now.timestamp().to_string()),
            survey: None,
            incident: letter.incident.cloned(),
            account: self.reads_account.then(|| match letter.account {
                Some(facts) => context::account(facts),
                None => context::account(&AccountFacts {
                    account: Account::of_contact(letter.customer),
                    owner: None,
                }),
            }),
            sender: self.reads_account.then(|| match letter.sender {
                Some(member) => context::team_member(member),
                None => self.sender.clone(),
            }),
            now: letter.now,
            lang: message.front.lang().to_owned(),
        });
        (ctx, unsubscribe)
    }

    fn question_with(
        &self,
        name: &str,
        message: &source::Message,
        survey: Survey,
        ctx: &Value,
    ) -> Result<String, RenderError> {
        match &message.front.question {
            Some(_) => self
                .plain
                .render(&format!("{name}#question"), ctx)
                .map_err(|e| {
                    let at = source::Source {
                        origin: message.body.origin.clone(),
                        text: String::new(),
                        first_line: message.front_lines.get("question").copied().unwrap_or(1),
                    };
                    self.failure(name, &e, &at, ctx)
                }),
            None => Ok(survey.question_in(&self.product, Words::for_tag(message.front.lang()))),
        }
    }

    fn render_with(
        &self,
        name: &str,
        message: &source::Message,
        letter: &Letter<'_>,
        customer: Value,
    ) -> Result<Rendered, RenderError> {
        let fail =
            |e: handlebars::RenderError, src: &source::Source, context: &handlebars::Context| {
                self.failure(name, &e, src, context.data())
            };
        let front_source = |key: &str| source::Source {
            origin: message.body.origin.clone(),
            text: String::new(),
            first_line: message.front_lines.get(key).copied().unwrap_or(1),
        };
        let (mut ctx, unsubscribe) = self.context(letter, customer, message);
        let words = Words::for_tag(message.front.lang());
        let mut asked = None;
        if let Some(survey) = letter.survey {
            let question = self.question_with(name, message, survey, &ctx)?;
            let base = self.link(Purpose::Survey, letter, survey.as_str());
            let links: Vec<String> = survey
                .choices()
                .iter()
                .map(|(value, _)| format!("{base}/{value}"))
                .collect();
            ctx["survey"] = if self.answers_read_beyond_the_block() {
                context::survey(survey, question.clone(), |i| links[i].clone(), words)
            } else {
                // Added only when the block's partials render for this
                // message (below): every handlebars partial clones the
                // whole context.
                context::survey_without_answers(survey, question.clone(), words)
            };
            asked = Some(Asked {
                survey,
                question,
                links,
                words,
            });
        }
        // One context for every part: handlebars' `render` would serialize
        // the data again for each.
        let mut context = handlebars::Context::from(ctx);
        let subject = self
            .plain
            .render_with_context(&format!("{name}#subject"), &context)
            .map_err(|e| fail(e, &front_source("subject"), &context))?;
        let preheader = self
            .plain
            .render_with_context(&format!("{name}#preheader"), &context)
            .map_err(|e| fail(e, &front_source("preheader"), &context))?;
        let body = self
            .markdown
            .render_with_context(name, &context)
            .map_err(|e| fail(e, &message.body, &context))?;
        let track = |url: &str| -> String {
            let tracked = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.starts_with(&self.public_url);
            if tracked {
                self.link(Purpose::Click, letter, url)
            } else {
                url.to_owned()
            }
        };
        let survey = match &asked {
            Some(asked) if body.contains(SURVEY_MARKER) => match self.kept_survey(asked) {
                Some(block) => Some(block),
                None => {
                    let data = context.data_mut();
                    if data["survey"].get("answers").is_none() {
                        data["survey"]["answers"] =
                            context::answers(asked.survey, |i| asked.links[i].clone(), asked.words);
                    }
                    // Both partials are always there: built in, or a file's override.
                    let html = self
                        .html
                        .render_with_context(SURVEY, &context)
                        .map_err(|e| fail(e, &self.sources.partials[SURVEY], &context))?;
                    let text = self
                        .plain
                        .render_with_context(SURVEY_TEXT, &context)
                        .map_err(|e| fail(e, &self.sources.partials[SURVEY_TEXT], &context))?;
                    self.learn_survey(asked, &html, &text);
                    Some((html, text))
                }
            },
            _ => None,
        };
        let blocks: Vec<markdown::Block<'_>> = survey
            .iter()
            .map(|(html, text)| markdown::Block {
                marker: SURVEY_MARKER,
                html,
                text,
            })
            .collect();
        let (html_body, mut text) = markdown::to_both(&body, &track, &blocks);
        // The sender's signature closes the letter, above the footer.
        let signature = letter
            .sender
            .map(|m| m.signature.trim())
            .filter(|s| !s.is_empty());
        if let Some(signature) = signature {
            text.push('\n');
            text.push_str(markdown::to_text(signature, &track, &[]).trim_end());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(
            &self
                .plain
                .render_with_context("footer.txt", &context)
                .map_err(|e| fail(e, &message.body, &context))?,
        );
        let layout = message.front.layout.as_deref().unwrap_or(DEFAULT_LAYOUT);
        let layout_source = &self.sources.layouts[layout];
        let page = context.data_mut();
        page["subject"] = Value::String(subject.trim().to_owned());
        page["preheader"] = Value::String(preheader.trim().to_owned());
        page["body"] = Value::String(html_body);
        page["signature"] = Value::String(
            signature.map_or_else(String::new, |s| markdown::to_html(s, &track, &[])),
        );
        let html = self
            .html
            .render_with_context(&layout_key(layout), &context)
            .map_err(|e| fail(e, layout_source, &context))?;
        Ok(Rendered {
            subject: one_line(&subject),
            preheader: one_line(&preheader),
            text,
            html,
            unsubscribe_url: unsubscribe,
        })
    }

    /// Renders every template against a sample customer (with each attribute
    /// a template uses, a survey, and an incident for notices under
    /// `incidents/`), as `tend check` and start-up do.
    pub fn check(&self, now: DateTime<Utc>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let sample = Customer::sample(now);
        let account = AccountFacts::sample(now);
        for (name, message) in self.sources.every_message() {
            let name = &name;
            let mut customer = context::customer(&sample);
            let mut used = message.body.text.clone();
            used.push_str(&message.front.subject);
            used.push_str(&message.front.preheader);
            for partial in self.sources.partials.values() {
                used.push_str(&partial.text);
            }
            if let Some(Value::Object(attributes)) = customer.get_mut("attributes") {
                context::add_sample_attributes(attributes, &context::attribute_paths(&used));
            }
            let incident = context::sample_incident();
            let letter = Letter {
                message: MessageId(Uuid::nil()),
                customer: &sample,
                category: "sample",
                survey: Some(Survey::Nps),
                incident: name.starts_with("incidents/").then_some(&incident),
                account: Some(&account),
                sender: account.owner.as_ref(),
                now,
            };
            if let Err(e) = self.render_with(name, message, &letter, customer) {
                problems.push(e.problem);
            }
        }
        problems
    }
}

/// A message's survey: its kind, its question, each answer's link, and
/// the language of its labels.
struct Asked {
    survey: Survey,
    question: String,
    links: Vec<String>,
    words: &'static Words,
}

impl Renderer {
    /// Whether a message's context must carry the survey's answers: a
    /// template or partial other than the survey's own reads them, or the
    /// survey's block is never kept.
    fn answers_read_beyond_the_block(&self) -> bool {
        self.answers_beyond_the_block || self.survey_blocks.is_none()
    }

    /// The survey block's HTML and text from a kept block filled in with
    /// the message's links, if one is kept for its question.
    fn kept_survey(&self, asked: &Asked) -> Option<(String, String)> {
        let blocks = self.survey_blocks.as_ref()?;
        match blocks.get(asked.survey, asked.words.lang(), &asked.question)? {
            survey_block::Known::Kept(kept) => {
                Some(kept.fill(&asked.links, handlebars::html_escape, plain_escape))
            }
            survey_block::Known::Rendered => None,
        }
    }

    /// Keeps the block rendered for a question seen for the first time, if
    /// it renders the same from the survey alone.
    fn learn_survey(&self, asked: &Asked, html: &str, text: &str) {
        use survey_block::Known;
        let Some(blocks) = &self.survey_blocks else {
            return;
        };
        let (survey, lang) = (asked.survey, asked.words.lang());
        if blocks.get(survey, lang, &asked.question).is_some() || !blocks.learning(survey, lang) {
            return;
        }
        let kept = self.placeheld_survey(asked).filter(|kept| {
            let (h, t) = kept.fill(&asked.links, handlebars::html_escape, plain_escape);
            h == html && t == text
        });
        let known = kept.map_or(Known::Rendered, |kept| Known::Kept(Arc::new(kept)));
        blocks.remember(survey, lang, &asked.question, known);
    }

    /// The survey block rendered with nothing of a message but the survey,
    /// a placeholder for each answer's link, the company and the language.
    fn placeheld_survey(&self, asked: &Asked) -> Option<survey_block::Kept> {
        let (survey, question) = (asked.survey, asked.question.clone());
        let data = serde_json::json!({
            "survey": context::survey(survey, question, survey_block::placeholder, asked.words),
            "company": self.company,
            "lang": asked.words.lang(),
        });
        let context = handlebars::Context::from(data);
        let html = self.html.render_with_context(SURVEY, &context).ok()?;
        let text = self.plain.render_with_context(SURVEY_TEXT, &context).ok()?;
        survey_block::Kept::new(&html, &text, survey.choices().len())
    }
}

fn layout_key(name: &str) -> String {
    format!("layouts/{name}")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Renderer {
    /// A person's sentence for a Handlebars render error, with the name
    /// that was probably meant when one is close (`customer.renewl_at`).
    fn explain(&self, e: &handlebars::RenderError, data: &Value) -> String {
        match e.reason() {
            RenderErrorReason::MissingVariable(Some(path)) => {
                if path.starts_with("customer.attributes.") {
                    format!(
                        "{{{{{path}}}}} is missing for this customer; guard it with {{{{#if {path}}}}} or give a fallback: {{{{default {path} \"…\"}}}}"
                    )
                } else {
                    let mut paths = context::paths(data);
                    // Left out of a message's context when only the kept
                    // survey block reads them, but a name templates can use.
                    if data["survey"].is_object() && !paths.iter().any(|p| p == "survey.answers") {
                        paths.push("survey.answers".into());
                    }
                    match suggest::closest(path, paths.iter().map(String::as_str)) {
                        Some(near) => format!(
                            "{{{{{path}}}}} is not a variable templates can use; did you mean {{{{{near}}}}}?"
                        ),
                        None => format!(
                            "{{{{{path}}}}} is not a variable templates can use; check the spelling (available: customer.*, company.*, links.unsubscribe, links.preferences, links.view, survey, incident in notices, now)"
                        ),
                    }
                }
            }
            RenderErrorReason::MissingVariable(None) => {
                "a variable used here does not exist; check the spelling".into()
            }
            RenderErrorReason::PartialNotFound(name) => {
                let partials: Vec<&str> =
                    self.sources.partials.keys().map(String::as_str).collect();
                format!(
                    "partial {name:?} does not exist{}; create templates/partials/{name}.hbs or use one of: {}",
                    suggest::did_you_mean(name, partials.iter().copied()),
                    partials.join(", ")
                )
            }
            RenderErrorReason::HelperNotFound(name) => format!(
                "{name:?} is not a helper{}; use date, days_since, days_until, pluralize or default (and #if, #unless, #each, #with for blocks)",
                suggest::did_you_mean(name, HELPERS.iter().copied())
            ),
            RenderErrorReason::Other(message) => message.clone(),
            other => other.to_string(),
        }
    }
}

/// Every helper a template may call, tend's and Handlebars' own.
const HELPERS: &[&str] = &[
    "date",
    "days_since",
    "days_until",
    "pluralize",
    "default",
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
];
