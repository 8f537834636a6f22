//! Playbooks: a file of steps that share a purpose and an unsubscribe
//! category, parsed into typed steps with every mistake named by line.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::condition::{Condition, compile_checked};
use super::event::parse_event_name;
use super::span::{Span, span};
use super::window::{Window, WindowOverride, WindowSpec};
use crate::problem::Problem;
use crate::toml_source::{line_of, structural_problems};

/// What kind of mail a playbook sends (the `kind` of its messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Checkin,
    Tip,
    Reminder,
    Incident,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checkin => "checkin",
            Self::Tip => "tip",
            Self::Reminder => "reminder",
            Self::Incident => "incident",
        }
    }
}

pub use super::survey::Survey;

/// Whom a step's anchors and conditions are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One person: their own anchors and conditions.
    #[default]
    Person,
    /// A company: anchors and conditions on the account, once per account
    /// occurrence, to the contacts in the step's roles.
    Account,
}

/// Who a message goes out as.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Sender {
    /// `mail.from`.
    #[default]
    Configured,
    /// The account's owner (`from = "owner"`); the configured sender for
    /// an account without one.
    Owner,
    /// One team member (`from = "ID"`).
    Member(String),
}

/// The customer timestamp fields a step can be anchored on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    SignupAt,
    RenewalAt,
    LastSeenAt,
    /// `attributes.NAME`: an attribute holding an RFC 3339 time.
    Attribute(String),
    /// `event:NAME`: once per such event.
    Event(String),
    /// `stage:NAME`: once per entry into the stage.
    Stage(String),
}

/// When a step fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// At the anchor plus `offset` (negative for `before`).
    Anchor {
        anchor: Anchor,
        offset: chrono::Duration,
    },
    /// At each occurrence of a 5-field cron pattern in the customer's zone.
    Cron {
        pattern: String,
        // Boxed: a parsed pattern is several times larger than an anchor.
        cron: Box<croner::Cron>,
    },
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub template: String,
    pub trigger: Trigger,
    pub when: Option<Condition>,
    /// Not sent if it cannot go out within this long of its time.
    pub expires: Span,
    pub survey: Option<Survey>,
    pub kind: Kind,
    pub category: String,
    pub scope: Scope,
    /// At account scope, the roles whose contacts receive it (empty: every
    /// contact).
    pub to: Vec<String>,
    pub from: Sender,
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub kind: Kind,
    pub category: String,
    pub audience: Option<Condition>,
    /// Overrides `delivery.window` for this playbook's messages.
    pub window: Option<Window>,
    pub steps: Vec<Step>,
}

/// What a playbook may refer to, from the rest of the configuration.
pub struct Known<'a> {
    pub categories: &'a HashSet<String>,
    pub stages: &'a HashSet<String>,
    /// `[[lifecycle.account_stage]]` names: what `stage:NAME` may name at
    /// account scope.
    pub account_stages: &'a HashSet<String>,
    /// Whether `templates/NAME.md.hbs` (or a built-in of that name) exists.
    pub template_exists: &'a dyn Fn(&str) -> bool,
    /// Every message template's name, for suggesting the one meant.
    pub templates: &'a [String],
    /// `delivery.window`: a playbook's window takes the keys it leaves out
    /// from there.
    pub window: &'a WindowSpec,
    /// `[accounts] roles`: what `to` may name.
    pub roles: &'a [String],
    /// The `[[team]]` ids: what `from` may name besides `owner`.
    pub team: &'a [String],
}

/// The expiry of a step that does not set `expires`.
pub fn default_expiry() -> Span {
    span("7d")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: String,
    kind: Option<Kind>,
    category: String,
    audience: Option<String>,
    window: Option<WindowOverride>,
    scope: Option<Scope>,
    to: Option<Vec<String>>,
    from: Option<String>,
    #[serde(default, rename = "step")]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    template: String,
    anchor: Option<String>,
    after: Option<Span>,
    before: Option<Span>,
    cron: Option<String>,
    when: Option<String>,
    expires: Option<Span>,
    survey: Option<Survey>,
    kind: Option<Kind>,
    category: Option<String>,
    scope: Option<Scope>,
    to: Option<Vec<String>>,
    from: Option<String>,
}

/// Parses one playbook file; on failure, every problem found.
/// The playbook names tend's own messages carry: a playbook of the same
/// name would share their outbox keys and send window.
const RESERVED: [&str; 2] = [super::broadcast::PLAYBOOK, super::incident::PLAYBOOK];

pub fn parse(file: &Path, text: &str, known: &Known<'_>) -> Result<Playbook, Vec<Problem>> {
    let structural = structural_problems::<RawPlaybook>(file, text);
    if !structural.is_empty() {
        return Err(structural);
    }
    let raw: RawPlaybook =
        toml::from_str(text).map_err(|e| vec![Problem::new(file, None, e.to_string())])?;
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem::new(file, line_of(text, key).or(Some(1)), message));
    };

    if !is_name(&raw.name) {
        problem(
            "name",
            format!(
                "playbook name {:?} must be lower-case letters, digits, '_' or '-'",
                raw.name
            ),
        );
    } else if RESERVED.contains(&raw.name.as_str()) {
        problem(
            "name",
            format!(
                "playbook name {:?} is tend's own (the messages of {}); pick another name",
                raw.name,
                if raw.name == super::broadcast::PLAYBOOK {
                    "`tend broadcast`"
                } else {
                    "incidents and maintenance"
                }
            ),
        );
    }
    let kind = raw.kind.unwrap_or_else(|| {
        problem(
            "name",
            "kind is missing; add kind = \"checkin\" (or tip, reminder, incident)".into(),
        );
        Kind::Checkin
    });
    check_category(&raw.category, "category", known, &mut problem);
    let audience = raw
        .audience
        .as_deref()
        .and_then(|s| compiled(s, "audience", &mut problem));
    let window = raw.window.as_ref().and_then(|w| {
        w.over(known.window)
            .parse()
            .map_err(|e| {
                let inherited = w.inherited(known.window);
                let message = if inherited.is_empty() {
                    format!("window: {e}")
                } else {
                    // The problem may lie in a key this file does not show.
                    format!(
                        "window: {e} (from delivery.window: {})",
                        inherited.join(", ")
                    )
                };
                problem("window", message)
            })
            .ok()
    });
    if raw.steps.is_empty() {
        problem(
            "name",
            "the playbook has no [[step]]; add at least one".into(),
        );
    }
    let scope = raw.scope.unwrap_or_default();
    let from = raw
        .from
        .as_deref()
        .and_then(|f| sender(f, "from", known, &mut problem))
        .unwrap_or_default();
    if let Some(to) = &raw.to {
        check_roles(to, "to", known, &mut problem);
    }
    // The audience is about the account when any step is: said once.
    let account_step = raw
        .steps
        .iter()
        .any(|s| s.scope.unwrap_or(scope) == Scope::Account);
    if account_step && let Some(audience) = &raw.audience {
        check_account_condition(audience, "audience", &mut problem);
    }

    let mut ids = HashSet::new();
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (i, step) in raw.steps.into_iter().enumerate() {
        let key = |field: &str| format!("step.{i}.{field}");
        if !is_name(&step.id) {
            problem(
                &key("id"),
                format!(
                    "step id {:?} must be lower-case letters, digits, '_' or '-'",
                    step.id
                ),
            );
        } else if !ids.insert(step.id.clone()) {
            problem(
                &key("id"),
                format!(
                    "step id {:?} is used twice in this playbook; ids must be unique",
                    step.id
                ),
            );
        }
        let template = step.template.trim().trim_end_matches(".md.hbs").to_owned();
        if template.is_empty() {
            problem(
                &key("template"),
                "template is empty; name a file under templates/ without .md.hbs".into(),
            );
        } else if !(known.template_exists)(&template) {
            problem(
                &key("template"),
                format!(
                    "template {template:?} does not exist{}: create templates/{template}.md.hbs or fix the name",
                    crate::suggest::did_you_mean(
                        &template,
                        known.templates.iter().map(String::as_str)
                    )
                ),
            );
        }
        let category = step
            .category
            .clone()
            .unwrap_or_else(|| raw.category.clone());
        if step.category.is_some() {
            check_category(&category, &key("category"), known, &mut problem);
        }
        let step_scope = step.scope.unwrap_or(scope);
        let trigger = trigger(&step, step_scope, &key, known, &mut problem);
        let when = step
            .when
            .as_deref()
            .and_then(|s| compiled(s, &key("when"), &mut problem));
        if step_scope == Scope::Account
            && let Some(when) = &step.when
        {
            check_account_condition(when, &key("when"), &mut problem);
        }
        if let Some(to) = &step.to {
            check_roles(to, &key("to"), known, &mut problem);
        }
        let to = step
            .to
            .clone()
            .or_else(|| raw.to.clone())
            .unwrap_or_default();
        if step_scope == Scope::Person && !to.is_empty() {
            let at = if step.to.is_some() {
                key("to")
            } else {
                "to".to_owned()
            };
            problem(
                &at,
                format!(
                    "step {:?}: to names the roles that receive an account-scope step; add scope = \"account\", or choose people with when = '\"{}\" in customer.roles'",
                    step.id, to[0]
                ),
            );
        }
        let from = match step.from.as_deref() {
            Some(f) => sender(f, &key("from"), known, &mut problem).unwrap_or_default(),
            None => from.clone(),
        };
        if let Some(trigger) = trigger {
            steps.push(Step {
                id: step.id,
                template,
                trigger,
                when,
                expires: step.expires.unwrap_or_else(default_expiry),
                survey: step.survey,
                kind: step.kind.unwrap_or(kind),
                category,
                scope: step_scope,
                to,
                from,
            });
        }
    }
    if problems.is_empty() {
        Ok(Playbook {
            name: raw.name,
            kind,
            category: raw.category,
            audience,
            window,
            steps,
        })
    } else {
        Err(problems)
    }
}

fn trigger(
    step: &RawStep,
    scope: Scope,
    key: &dyn Fn(&str) -> String,
    known: &Known<'_>,
    problem: &mut impl FnMut(&str, String),
) -> Option<Trigger> {
    match (&step.anchor, &step.cron) {
        (Some(_), Some(_)) => {
            problem(
                &key("cron"),
                "a step has either an anchor or a cron, not both; remove one".into(),
            );
            None
        }
        (None, None) => {
            problem(
                &key("id"),
                format!(
                    "step {:?} has no time: add anchor = \"signup_at\" with after = \"1d\", or cron = \"0 10 * * mon\"",
                    step.id
                ),
            );
            None
        }
        (None, Some(pattern)) => {
            if step.after.is_some() || step.before.is_some() {
                problem(
                    &key("cron"),
                    "after and before go with an anchor, not with cron; remove them".into(),
                );
            }
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .year(croner::parser::Year::Disallowed)
                .build();
            match parser.parse(pattern) {
                Ok(cron) => Some(Trigger::Cron {
                    pattern: pattern.clone(),
                    cron: Box::new(cron),
                }),
                Err(e) => {
                    problem(
                        &key("cron"),
                        format!(
                            "cron {pattern:?} is not a 5-field pattern ({e}); write minute hour day month weekday, e.g. \"0 10 1 * *\""
                        ),
                    );
                    None
                }
            }
        }
        (Some(anchor), None) => {
            let anchor = parse_anchor(anchor, scope, known)
                .map_err(|e| problem(&key("anchor"), e))
                .ok();
            let offset = match (&step.after, &step.before) {
                (Some(after), None) => Some(after.as_chrono()),
                (None, Some(before)) => Some(-before.as_chrono()),
                (None, None) => Some(chrono::Duration::zero()),
                (Some(_), Some(_)) => {
                    problem(
                        &key("before"),
                        "a step has after or before, not both; remove one".into(),
                    );
                    None
                }
            };
            Some(Trigger::Anchor {
                anchor: anchor?,
                offset: offset?,
            })
        }
    }
}

fn parse_anchor(raw: &str, scope: Scope, known: &Known<'_>) -> Result<Anchor, String> {
    let text = raw.trim();
    if scope == Scope::Account {
        if matches!(text, "signup_at" | "last_seen_at") {
            return Err(format!(
                "anchor {text:?} is a person's; an account-scope step is anchored on renewal_at, attributes.NAME (of the account), event:NAME (of any contact) or stage:NAME (of the account)"
            ));
        }
        if let Some(stage) = text.strip_prefix("stage:") {
            return if known.account_stages.contains(stage) {
                Ok(Anchor::Stage(stage.to_owned()))
            } else {
                Err(format!(
                    "anchor {text:?} names a stage no [[lifecycle.account_stage]] declares (an account-scope step follows the account's stage); declared: {}",
                    sorted(known.account_stages)
                ))
            };
        }
    }
    match text {
        "signup_at" => return Ok(Anchor::SignupAt),
        "renewal_at" => return Ok(Anchor::RenewalAt),
        "last_seen_at" => return Ok(Anchor::LastSeenAt),
        _ => {}
    }
    if let Some(event) = text.strip_prefix("event:") {
        return parse_event_name(event).map(Anchor::Event);
    }
    if let Some(stage) = text.strip_prefix("stage:") {
        return if known.stages.contains(stage) {
            Ok(Anchor::Stage(stage.to_owned()))
        } else {
            Err(format!(
                "anchor {text:?} names a stage no [[lifecycle.stage]] declares; declared: {}",
                sorted(known.stages)
            ))
        };
    }
    if let Some(attribute) = text.strip_prefix("attributes.").filter(|a| !a.is_empty()) {
        return Ok(Anchor::Attribute(attribute.to_owned()));
    }
    Err(format!(
        "anchor {text:?} is unknown; use signup_at, renewal_at, last_seen_at, attributes.NAME, event:NAME or stage:NAME"
    ))
}

/// `from = "owner"` or a team member's id.
fn sender(
    raw: &str,
    key: &str,
    known: &Known<'_>,
    problem: &mut impl FnMut(&str, String),
) -> Option<Sender> {
    let name = raw.trim();
    if name == "owner" {
        return Some(Sender::Owner);
    }
    if known.team.iter().any(|t| t == name) {
        return Some(Sender::Member(name.to_owned()));
    }
    let team = if known.team.is_empty() {
        "the config has no [[team]]".to_owned()
    } else {
        format!("the team is {}", known.team.join(", "))
    };
    problem(
        key,
        format!(
            "from = {name:?} names no [[team]] member{}; write from = \"owner\" (the account's owner) or a member's id ({team})",
            crate::suggest::did_you_mean(name, known.team.iter().map(String::as_str))
        ),
    );
    None
}

/// Every role of `to` must be declared in `[accounts] roles`.
fn check_roles(
    to: &[String],
    key: &str,
    known: &Known<'_>,
    problem: &mut impl FnMut(&str, String),
) {
    for role in to {
        if !known.roles.iter().any(|r| r == role) {
            problem(
                key,
                format!(
                    "to names the role {role:?}, which [accounts] roles does not declare{}; declared: {}",
                    crate::suggest::did_you_mean(role, known.roles.iter().map(String::as_str)),
                    known.roles.join(", ")
                ),
            );
        }
    }
}

/// An account-scope condition is about the account: `customer` there
/// would be no one in particular.
fn check_account_condition(source: &str, key: &str, problem: &mut impl FnMut(&str, String)) {
    if super::condition::mentions_customer(source) {
        problem(
            key,
            format!(
                "{key}: an account-scope step is about the account, not one person: use account.* instead of customer.* (for example account.plan, account.renewal_at)"
            ),
        );
    }
}

fn check_category(
    name: &str,
    key: &str,
    known: &Known<'_>,
    problem: &mut impl FnMut(&str, String),
) {
    if !known.categories.contains(name) {
        problem(
            key,
            format!(
                "category {name:?} is not declared in tend.toml{}; declared: {} (add a [[category]] or fix the name)",
                crate::suggest::did_you_mean(name, known.categories.iter().map(String::as_str)),
                sorted(known.categories)
            ),
        );
    }
}

fn compiled(source: &str, key: &str, problem: &mut impl FnMut(&str, String)) -> Option<Condition> {
    compile_checked(source)
        .map_err(|e| problem(key, format!("{key}: {e}")))
        .ok()
}

fn sorted(names: &HashSet<String>) -> String {
    let mut v: Vec<&str> = names.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.join(", ")
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}
