//! `/console/customers`: finding people and accounts by name, address or
//! id, and one person's timeline: their
//! record, every message with its status and why it waits or did not go,
//! each answer and reply in full, the stages they entered, their events
//! and what they are unsubscribed from. The same reading as `tend customer
//! show` (`timeline::read`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{Member, layout};
use crate::domain::console::Found;
use crate::domain::customer::CustomerId;
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::Customers;
use crate::timeline::{self, Timeline};

#[derive(Debug, Default, Deserialize)]
pub struct Find {
    /// What to search for: the start of a name or address, or an id.
    #[serde(default)]
    q: String,
    /// An id to go to at once (the old form's field).
    #[serde(default)]
    id: String,
}

/// How many people, and how many accounts, a search lists.
const FOUND_SHOWN: usize = 50;

/// `GET /console/customers?q=…`: the search form and what it found; an id
/// (`?id=…`, or a search whose only find is that id) goes straight to it.
pub async fn find(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<Find>,
) -> Response {
    let title = "People and accounts";
    let id = q.id.trim();
    if !id.is_empty() {
        let path = super::segment(id);
        return Redirect::to(&format!("/console/customers/{path}")).into_response();
    }
    let text = q.q.trim();
    if text.is_empty() {
        return member.page(StatusCode::OK, title, &form(""));
    }
    let found = match shared.store.search(text, FOUND_SHOWN).await {
        Ok(found) => found,
        Err(e) => return member.unavailable(title, &e),
    };
    match (found.customers.as_slice(), found.accounts.as_slice()) {
        ([only], []) if only.id == text => {
            let path = super::segment(&only.id);
            return Redirect::to(&format!("/console/customers/{path}")).into_response();
        }
        ([], [only]) if only.id == text => {
            let path = super::segment(&only.id);
            return Redirect::to(&format!("/console/accounts/{path}")).into_response();
        }
        _ => {}
    }
    member.page(
        StatusCode::OK,
        title,
        &format!("{}{}", form(text), results(text, &found)),
    )
}

fn form(text: &str) -> String {
    format!(
        "<form method=\"get\" action=\"/console/customers\" class=\"filters\" role=\"search\">\
         <label for=\"q\">Name, email or id</label><input type=\"search\" id=\"q\" name=\"q\" value=\"{}\" required aria-describedby=\"q-hint\">\
         <p id=\"q-hint\" class=\"hint\">The start of a name, of its last word, or of an address; or a whole id.</p>\
         <p><button type=\"submit\">Search</button></p></form>",
        escape(text)
    )
}

/// The people and accounts found, as two tables.
fn results(text: &str, found: &Found) -> String {
    if found.customers.is_empty() && found.accounts.is_empty() {
        return format!(
            "<p role=\"status\">Nothing found for “{}”. Search by how a name, its last word or an address begins (“ana”, “silva”, “ana.silva@”), or by a whole id.</p>",
            escape(text)
        );
    }
    let mut out = String::new();
    if found.more {
        out.push_str(&format!(
            "<p role=\"status\">More than {FOUND_SHOWN} match; the first are shown. Type more of the name or address to narrow it.</p>"
        ));
    }
    if !found.customers.is_empty() {
        let rows: String = found
            .customers
            .iter()
            .map(|c| {
                let account = c.account_id.as_deref().map_or_else(String::new, |a| {
                    format!(
                        "<a href=\"/console/accounts/{}\">{}</a>",
                        super::segment(a),
                        escape(a)
                    )
                });
                let name = if c.name.is_empty() { &c.id } else { &c.name };
                format!(
                    "<tr><td><a href=\"/console/customers/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    super::segment(&c.id),
                    escape(name),
                    escape(&c.email),
                    account,
                    escape(c.stage.as_deref().unwrap_or("—")),
                )
            })
            .collect();
        out.push_str(&format!(
            "<div class=\"scroll\"><table><caption>People</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Email</th><th scope=\"col\">Account</th><th scope=\"col\">Stage</th></tr></thead><tbody>{rows}</tbody></table></div>"
        ));
    }
    if !found.accounts.is_empty() {
        let rows: String = found
            .accounts
            .iter()
            .map(|a| {
                let name = if a.name.is_empty() { &a.id } else { &a.name };
                format!(
                    "<tr><td><a href=\"/console/accounts/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    super::segment(&a.id),
                    escape(name),
                    escape(&a.id),
                    escape(a.owner.as_deref().unwrap_or("—")),
                    escape(a.stage.as_deref().unwrap_or("—")),
                )
            })
            .collect();
        out.push_str(&format!(
            "<div class=\"scroll\"><table><caption>Accounts</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Id</th><th scope=\"col\">Owner</th><th scope=\"col\">Stage</th></tr></thead><tbody>{rows}</tbody></table></div>"
        ));
    }
    out
}

/// `GET /console/customers/{id}`.
pub async fn show(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let title = "Customer";
    let parsed = match CustomerId::parse(&id) {
        Ok(parsed) => parsed,
        Err(e) => {
            return member.page(
                StatusCode::BAD_REQUEST,
                title,
                &format!("{}{}", layout::error(&e), form(&id)),
            );
        }
    };
    match timeline::read(&shared.store, &parsed).await {
        Ok(Some(t)) => {
            let name = shown(&t.customer["name"]);
            let title = if name == "—" || name.is_empty() {
                format!("Customer {}", parsed.as_str())
            } else {
                format!("{name} ({})", parsed.as_str())
            };
            member.page(StatusCode::OK, &title, &body(&t))
        }
        Ok(None) => member.page(
            StatusCode::NOT_FOUND,
            title,
            &format!(
                "<p class=\"error\" role=\"alert\">No customer has the id {}. Ids are the company's own, as imported; check the spelling.</p>{}",
                escape(parsed.as_str()),
                form(parsed.as_str())
            ),
        ),
        Err(e) => member.unavailable(title, &e),
    }
}

/// A JSON value as a person reads it.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn body(t: &Timeline) -> String {
    let mut out = String::new();
    let field = |name: &str| shown(&t.customer[name]);
    out.push_str(&format!(
        "<p class=\"summary\">{} · {} · stage <strong>{}</strong> · plan {} · {}</p>",
        escape(&field("email")),
        escape(&field("locale")),
        escape(&field("stage")),
        escape(&field("plan")),
        escape(&field("timezone")),
    ));
    if let Some(account) = &t.account {
        let id = shown(&account["id"]);
        let path = super::segment(&id);
        out.push_str(&format!(
            "<p>Account: <a href=\"/console/accounts/{path}\"><strong>{}</strong></a> ({}), owner {}</p>",
            escape(&shown(&account["name"])),
            escape(&id),
            escape(&shown(&account["owner"])),
        ));
    }
    // Messages, newest first, each with why.
    let mut messages: Vec<_> = t.messages.iter().collect();
    messages.sort_by_key(|m| std::cmp::Reverse(m.due_at));
    let rows: String = messages
        .iter()
        .map(|m| {
            format!(
                "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td data-status=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                m.due_at.format("%Y-%m-%d %H:%M"),
                escape(&m.playbook),
                escape(&m.step),
                escape(m.subject.as_deref().unwrap_or("—")),
                escape(&m.status),
                escape(&m.status),
                escape(m.reason.as_deref().unwrap_or("")),
                m.sent_at.map_or("—".to_owned(), |s| s.format("%Y-%m-%d %H:%M").to_string()),
            )
        })
        .collect();
    out.push_str(&section(
        "messages",
        "Messages",
        t.messages.is_empty(),
        "No messages yet.",
        &format!(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Due (UTC)</th><th scope=\"col\">Playbook/step</th>\
             <th scope=\"col\">Subject</th><th scope=\"col\">Status</th><th scope=\"col\">Why</th><th scope=\"col\">Sent (UTC)</th>\
             </tr></thead><tbody>{rows}</tbody></table></div>"
        ),
    ));
    // Answers and replies in full.
    let answers: String = t
        .responses
        .iter()
        .map(|r| {
            let comment = r
                .comment
                .as_deref()
                .map(|c| {
                    format!(
                        "<blockquote>{}</blockquote>",
                        escape(c).replace('\n', "<br>")
                    )
                })
                .unwrap_or_default();
            format!(
                "<li><strong>{}</strong>{} <span>({}, {} UTC)</span>{comment}</li>",
                escape(&r.kind),
                r.value
                    .as_deref()
                    .map(|v| format!(": {}", escape(v)))
                    .unwrap_or_default(),
                escape(&r.source),
                r.received_at.format("%Y-%m-%d %H:%M"),
            )
        })
        .collect();
    out.push_str(&section(
        "responses",
        "Answers and replies",
        t.responses.is_empty(),
        "No answers or replies yet.",
        &format!("<ul>{answers}</ul>"),
    ));
    out.push_str(&section(
        "stages",
        "Stages entered",
        t.stages.is_empty(),
        "No stage entered yet.",
        &layout::dated(t.stages.iter().map(|s| (s.stage.as_str(), s.entered_at))),
    ));
    out.push_str(&section(
        "events",
        "Events",
        t.events.is_empty(),
        "No events.",
        &layout::dated(t.events.iter().map(|e| (e.name.as_str(), e.occurred_at))),
    ));
    let unsubscribed: String = t
        .suppressions
        .iter()
        .map(|s| {
            format!(
                "<li>{}: {} ({})</li>",
                escape(if s.category == "*" {
                    "all mail"
                } else {
                    &s.category
                }),
                escape(&s.reason),
                escape(&s.source)
            )
        })
        .collect();
    out.push_str(&section(
        "suppressions",
        "Not mailed",
        t.suppressions.is_empty(),
        "Gets every category of mail.",
        &format!("<ul>{unsubscribed}</ul>"),
    ));
    // Every field of the record, as imported and derived.
    let fields: String = t
        .customer
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    format!(
                        "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                        escape(k),
                        escape(&shown(v))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "<section aria-labelledby=\"record\"><h2 id=\"record\">Every field</h2><div class=\"scroll\"><table class=\"fields\">{fields}</table></div></section>"
    ));
    out
}

/// A section with its heading, or a sentence saying it is empty.
fn section(id: &str, heading: &str, empty: bool, when_empty: &str, content: &str) -> String {
    format!(
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{heading}</h2>{}</section>",
        if empty {
            format!("<p>{when_empty}</p>")
        } else {
            content.to_owned()
        }
    )
}
