//! What a template can see: `customer`, `company`, `links`, `survey`,
//! `incident` (in incident notices), `now` and `lang` (the language the
//! template is in), as one JSON value. Anything else is an unknown
//! variable.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::config::settings::Company;
use crate::domain::account::{AccountFacts, TeamMember};
use crate::domain::customer::Customer;
use crate::domain::playbook::Survey;
use crate::language::Words;

fn instant(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// `customer` as templates see it.
pub fn customer(c: &Customer) -> Value {
    let r = &c.record;
    json!({
        "id": r.id.to_string(),
        "email": r.email.to_string(),
        "name": r.name,
        "first_name": r.first_name(),
        "timezone": r.timezone.name(),
        "locale": r.locale,
        "plan": r.plan,
        "signup_at": instant(r.signup_at),
        "renewal_at": instant(r.renewal_at),
        "last_seen_at": instant(r.last_seen_at),
        "health": r.health,
        "attributes": Value::Object(r.attributes.clone()),
        "stage": c.stage,
    })
}

/// `company` as templates see it.
pub fn company(c: &Company) -> Value {
    json!({
        "name": c.name,
        "product": c.product,
        "postal_address": c.postal_address,
        "website": c.website,
    })
}

/// The ends of the scale in one line, e.g. `0 = not at all likely, 10 =
/// extremely likely` (empty for yes/no).
fn scale(survey: Survey, words: &'static Words) -> String {
    survey
        .scale_ends_in(words)
        .map_or_else(String::new, |ends| {
            ends.map(|(value, meaning)| format!("{value} = {}", meaning.to_lowercase()))
                .join(", ")
        })
}

/// `survey` as the survey partials see it; `url` makes the link of the
/// answer at an index. Every answer carries its `meaning` (empty except
/// at the ends of a scale), and `low`/`high` are the ends (null for
/// yes/no), so a partial can label the row.
pub fn survey(
    survey: Survey,
    question: String,
    url: impl Fn(usize) -> String,
    words: &'static Words,
) -> Value {
    let mut value = survey_without_answers(survey, question, words);
    value["answers"] = answers(survey, url, words);
    value
}

/// [`survey`] but for its `answers`.
pub fn survey_without_answers(survey: Survey, question: String, words: &'static Words) -> Value {
    let ends = survey.scale_ends_in(words);
    let end = |i: usize| {
        ends.map_or(
            Value::Null,
            |ends| json!({ "value": ends[i].0, "meaning": ends[i].1 }),
        )
    };
    json!({
        "kind": survey.as_str(),
        "question": question,
        "scale": scale(survey, words),
        "low": end(0),
        "high": end(1),
    })
}

/// The `answers` of [`survey`].
pub fn answers(survey: Survey, url: impl Fn(usize) -> String, words: &'static Words) -> Value {
    let ends = survey.scale_ends_in(words);
    let meaning = |value: &str| {
        ends.iter()
            .flatten()
            .find(|(v, _)| *v == value)
            .map_or("", |(_, m)| m)
    };
    let answers: Vec<Value> = survey
        .choices()
        .iter()
        .enumerate()
        .map(|(i, (value, _))| {
            json!({
                "value": value,
                "label": Survey::label_in(value, words),
                "meaning": meaning(value),
                "url": url(i),
            })
        })
        .collect();
    Value::Array(answers)
}

/// `account` as templates see it: every field of `ACCOUNT_SEEN`, the
/// owner as the team has them (null when none).
pub fn account(facts: &AccountFacts) -> Value {
    let a = &facts.account;
    let r = &a.record;
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "plan": r.plan,
        "renewal_at": instant(r.renewal_at),
        "health": r.health,
        "owner": facts.owner.as_ref().map_or(Value::Null, team_member),
        "stage": a.stage,
        "stage_entered_at": instant(a.stage_entered_at),
        "contacts": a.contacts,
        "attributes": Value::Object(r.attributes.clone()),
    })
}

/// A team member as templates see them (`sender`, `account.owner`).
pub fn team_member(m: &TeamMember) -> Value {
    json!({
        "id": m.id,
        "name": m.name,
        "email": m.email,
        "signature": m.signature,
    })
}

/// `sender` when mail goes out as the configured `mail.from`: its display
/// name (else the address) and address, and no signature.
pub fn configured_sender(from: &str) -> Value {
    let (name, email) = crate::config::parse_mailbox(from)
        .map(|(name, email)| (name, email.to_string()))
        .unwrap_or_default();
    json!({
        "id": "",
        "name": if name.is_empty() { email.clone() } else { name },
        "email": email,
        "signature": "",
    })
}

/// The whole context of one message.
pub struct Parts {
    pub customer: Value,
    pub company: Value,
    pub unsubscribe: String,
    pub preferences: String,
    /// The message as a web page (`/v/`).
    pub view: String,
    pub survey: Option<Value>,
    pub incident: Option<Value>,
    /// `account` and `sender`: present when a template reads them.
    pub account: Option<Value>,
    pub sender: Option<Value>,
    pub now: DateTime<Utc>,
    /// The language of the template rendered.
    pub lang: String,
}

pub fn build(parts: Parts) -> Value {
    let mut root = Map::new();
    root.insert("customer".into(), parts.customer);
    root.insert("company".into(), parts.company);
    root.insert(
        "links".into(),
        json!({
            "unsubscribe": parts.unsubscribe,
            "preferences": parts.preferences,
            "view": parts.view,
        }),
    );
    root.insert("survey".into(), parts.survey.unwrap_or(Value::Null));
    if let Some(incident) = parts.incident {
        root.insert("incident".into(), incident);
    }
    if let Some(account) = parts.account {
        root.insert("account".into(), account);
    }
    if let Some(sender) = parts.sender {
        root.insert("sender".into(), sender);
    }
    root.insert("now".into(), instant(Some(parts.now)));
    root.insert("lang".into(), Value::String(parts.lang));
    Value::Object(root)
}

/// Every dotted path a template can read in `data` (`customer.renewal_at`,
/// `links.unsubscribe`), for suggesting the one a misspelt path meant.
/// Customer attributes are the customer's own, so they are left out.
pub fn paths(data: &Value) -> Vec<String> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        let Value::Object(map) = value else { return };
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if path == "customer.attributes"
                || path == "account.attributes"
                || path.matches('.').count() > 3
            {
                out.push(path);
                continue;
            }
            walk(&path, child, out);
            out.push(path);
        }
    }
    let mut out = Vec::new();
    walk("", data, &mut out);
    out
}

/// The `incident` a notice shows, for samples (`tend check`, previews).
pub fn sample_incident() -> Value {
    json!({
        "id": "INC-1",
        "title": "Slow API responses in the EU region",
        "status": "investigating",
        "message": "We are looking into slow responses and will write again when we know more.",
        "kind": "incident",
        "starts_at": "2026-03-14T02:00:00Z",
        "ends_at": "2026-03-14T04:00:00Z",
    })
}

/// Every `customer.attributes.NAME…` path used in `source`, so a sample
/// customer can carry each one: attributes differ from customer to customer,
/// and a check must not fail for one the sample lacks.
pub fn attribute_paths(source: &str) -> Vec<Vec<String>> {
    const PREFIX: &str = "customer.attributes.";
    let mut paths = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(PREFIX) {
        rest = &rest[at + PREFIX.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(rest.len());
        let path: Vec<String> = rest[..end]
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !path.is_empty() {
            paths.push(path);
        }
    }
    paths
}

/// Adds each path to `attributes` with a sample string at its end.
pub fn add_sample_attributes(attributes: &mut Map<String, Value>, paths: &[Vec<String>]) {
    for path in paths {
        let mut map = &mut *attributes;
        for (i, key) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let entry = map.entry(key.clone()).or_insert_with(|| {
                if last {
                    Value::String("sample".into())
                } else {
                    Value::Object(Map::new())
                }
            });
            match entry {
                Value::Object(inner) if !last => map = inner,
                _ => break,
            }
        }
    }
}
