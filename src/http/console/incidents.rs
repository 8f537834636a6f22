//! `/console/incidents`: every incident and maintenance with how many were
//! told, one incident's history and who got its notices; a manager opens
//! an incident after seeing how many it reaches and a sample of them,
//! posts updates, and resolves or cancels. The same rules as `tend
//! incident` and the incident API (`crate::incident`); each change is in
//! the console's audit, and delivery is woken at once.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{Member, layout};
use crate::domain::console::{AuditAction, AuditEntry};
use crate::domain::incident::{IncidentKind, IncidentStatus};
use crate::http::AppState;
use crate::http::page::escape;
use crate::incident::{self, Context, IncidentError, Opening, Outcome};
use crate::store::{Incidents, Team};

/// How many of those an incident would reach are shown before it opens.
const SAMPLE: usize = 10;

/// How many of those an incident told its page lists.
const TOLD_SHOWN: u32 = 100;

/// `GET /console/incidents`.
pub async fn list(State(shared): State<Arc<AppState>>, member: Member) -> Response {
    let all = match shared.store.incidents().await {
        Ok(all) => all,
        Err(e) => return member.unavailable("Incidents", &e),
    };
    let rows: String = all
        .iter()
        .rev()
        .map(|i| {
            format!(
                "<tr><td><a href=\"/console/incidents/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td data-figure=\"told-{}\">{}</td></tr>",
                super::segment(&i.id),
                escape(&i.id),
                escape(&i.title),
                kind(i.kind),
                i.status.as_str(),
                i.opened_at.format("%Y-%m-%d %H:%M"),
                escape(&i.id),
                i.notified,
            )
        })
        .collect();
    let table = if all.is_empty() {
        "<p>No incidents yet.</p>".to_owned()
    } else {
        format!(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Title</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Opened (UTC)</th><th scope=\"col\">Told</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    let open = if member.member.role.may_change() {
        let zone = shared.engine().planner.default_zone();
        open_form(&member, zone, &OpenForm::default(), "")
    } else {
        String::new()
    };
    member.page(StatusCode::OK, "Incidents", &format!("{table}{open}"))
}

fn kind(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::Incident => "incident",
        IncidentKind::Maintenance => "maintenance",
    }
}

/// What the open form carries, from the first step to the confirmation.
#[derive(Debug, Default, Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    affects: String,
    #[serde(default)]
    message: String,
    /// When a maintenance starts and ends, as a `datetime-local` field
    /// gives it (the team's time zone); empty for an incident.
    #[serde(default)]
    starts: String,
    #[serde(default)]
    ends: String,
}

/// What the form opens: an incident now, or a maintenance between two
/// times given in `zone`.
struct Kind {
    kind: IncidentKind,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
}

impl OpenForm {
    fn kind(&self, zone: Tz, now: DateTime<Utc>) -> Result<Kind, String> {
        let (starts, ends) = (self.starts.trim(), self.ends.trim());
        if starts.is_empty() && ends.is_empty() {
            return Ok(Kind {
                kind: IncidentKind::Incident,
                starts_at: None,
                ends_at: None,
            });
        }
        let (Some(starts_at), Some(ends_at)) = (local(starts, zone)?, local(ends, zone)?) else {
            return Err(
                "A maintenance needs both when it starts and when it ends; for an incident, leave both empty."
                    .into(),
            );
        };
        if ends_at <= starts_at {
            return Err("The maintenance must end after it starts.".into());
        }
        if starts_at <= now {
            return Err(format!(
                "The start ({starts}) has passed; schedule a maintenance before it starts, or leave both times empty to open an incident."
            ));
        }
        Ok(Kind {
            kind: IncidentKind::Maintenance,
            starts_at: Some(starts_at),
            ends_at: Some(ends_at),
        })
    }
}

/// A `datetime-local` value (`2026-12-24T09:00`, seconds optional) in
/// `zone`; empty is none.
fn local(text: &str, zone: Tz) -> Result<Option<DateTime<Utc>>, String> {
    use chrono::TimeZone;
    if text.is_empty() {
        return Ok(None);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("{text:?} is not a date and time; give it as 2026-12-24T09:00."))?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| Some(t.with_timezone(&Utc)))
        .ok_or_else(|| {
            format!(
                "{text} does not exist in {zone}: the clocks skip it. Choose a time an hour later."
            )
        })
}

/// The form that opens an incident or schedules a maintenance, filled
/// with `sent` and `error` above.
fn open_form(member: &Member, zone: Tz, sent: &OpenForm, error: &str) -> String {
    let (error, invalid) = problem(error);
    format!(
        "<section aria-labelledby=\"open\"><h2 id=\"open\">Open an incident or schedule a maintenance</h2>{error}\
         <form method=\"post\" action=\"/console/incidents/preview\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"id\">Id (letters, digits, - and _)</label><input type=\"text\" id=\"id\" name=\"id\" value=\"{}\" required{invalid}>\
         <label for=\"title\">Title customers read</label><input type=\"text\" id=\"title\" name=\"title\" value=\"{}\" required{invalid}>\
         <label for=\"affects\">Who it affects (a condition, as in playbooks: <code>customer.attributes.region == \"eu\"</code>, or <code>true</code> for everyone)</label>\
         <input type=\"text\" id=\"affects\" name=\"affects\" value=\"{}\" required{invalid}>\
         <label for=\"message\">What to tell them</label><textarea id=\"message\" name=\"message\" rows=\"4\"{invalid}>{}</textarea>\
         <fieldset><legend>A maintenance: when it starts and ends ({zone}); leave both empty for an incident</legend>\
         <label for=\"starts\">Starts</label><input type=\"datetime-local\" id=\"starts\" name=\"starts\" value=\"{}\"{invalid}>\
         <label for=\"ends\">Ends</label><input type=\"datetime-local\" id=\"ends\" name=\"ends\" value=\"{}\"{invalid}>\
         </fieldset>\
         <p><button type=\"submit\">See who it reaches</button></p></form></section>",
        escape(&member.session.csrf),
        escape(&sent.id),
        escape(&sent.title),
        escape(&sent.affects),
        escape(&sent.message),
        escape(&sent.starts),
        escape(&sent.ends),
    )
}

/// The open form again, filled as sent, with what is wrong above it.
fn unopened(member: &Member, zone: Tz, sent: &OpenForm, error: &str) -> Response {
    member.page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Open an incident",
        &open_form(member, zone, sent, error),
    )
}

/// An error paragraph and the attribute that ties fields to it (not
/// marking them wrong: the page has several forms).
fn problem(error: &str) -> (String, &'static str) {
    let tied = if error.is_empty() {
        ""
    } else {
        " aria-describedby=\"problem\""
    };
    (layout::problem(error), tied)
}

/// `POST /console/incidents/preview`: how many the incident would reach
/// and a sample of them, with the button that opens it.
pub async fn preview(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Form(sent): Form<OpenForm>,
) -> Response {
    if let Some(refused) = member.refusal(&sent.csrf) {
        return refused;
    }
    let title = "Open an incident";
    let engine = shared.engine();
    let zone = engine.planner.default_zone();
    let now = shared.clock.now();
    let when = match sent.kind(zone, now) {
        Ok(when) => when,
        Err(e) => return unopened(&member, zone, &sent, &e),
    };
    let cx = Context::new(&engine.loaded.settings);
    let (count, sample) =
        match incident::preview(&shared.store, &cx, &sent.affects, now, SAMPLE).await {
            Ok(found) => found,
            Err(IncidentError::Store(e)) => return member.unavailable(title, &e),
            Err(e) => return unopened(&member, zone, &sent, &e.to_string()),
        };
    let people: String = sample
        .iter()
        .map(|c| {
            format!(
                "<li>{} ({}, {})</li>",
                escape(&c.record.name),
                escape(c.record.id.as_str()),
                escape(c.record.email.as_str())
            )
        })
        .collect();
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let (schedule, button) = match (when.starts_at, when.ends_at) {
        (Some(starts), Some(ends)) => (
            format!(
                "<p>A maintenance from <strong>{}</strong> to <strong>{}</strong> ({zone}); they are told ahead as <code>[maintenance]</code> says.</p>",
                starts.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
                ends.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            ),
            "Schedule it and tell them",
        ),
        _ => (String::new(), "Open it and tell them"),
    };
    let body = format!(
        "<p><strong>{}</strong> “{}” will reach <strong data-figure=\"would-reach\">{count}</strong> {} now.</p>\
         {schedule}{}\
         <form method=\"post\" action=\"/console/incidents/open\">{}{}{}{}{}{}{}\
         <p><button type=\"submit\">{button}</button> <a href=\"/console/incidents\">Cancel</a></p></form>",
        escape(&sent.id),
        escape(&sent.title),
        if count == 1 { "person" } else { "people" },
        if sample.is_empty() {
            "<p>Nobody matches: check the condition before opening.</p>".to_owned()
        } else {
            format!(
                "<p>The first {} of them:</p><ul class=\"sample\">{people}</ul>",
                sample.len()
            )
        },
        hidden("csrf", &member.session.csrf),
        hidden("id", &sent.id),
        hidden("title", &sent.title),
        hidden("affects", &sent.affects),
        hidden("message", &sent.message),
        hidden("starts", &sent.starts),
        hidden("ends", &sent.ends),
    );
    member.page(StatusCode::OK, title, &body)
}

/// `POST /console/incidents/open`.
pub async fn open(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Form(sent): Form<OpenForm>,
) -> Response {
    if let Some(refused) = member.refusal(&sent.csrf) {
        return refused;
    }
    let engine = shared.engine();
    let zone = engine.planner.default_zone();
    let now = shared.clock.now();
    let title = "Open an incident";
    let when = match sent.kind(zone, now) {
        Ok(when) => when,
        Err(e) => return unopened(&member, zone, &sent, &e),
    };
    let cx = Context::new(&engine.loaded.settings);
    let opening = Opening {
        id: sent.id.trim().to_owned(),
        kind: when.kind,
        title: sent.title.trim().to_owned(),
        affects: sent.affects.clone(),
        template: None,
        message: sent.message.clone(),
        starts_at: when.starts_at,
        ends_at: when.ends_at,
    };
    let action = match when.kind {
        IncidentKind::Incident => AuditAction::IncidentOpened,
        IncidentKind::Maintenance => AuditAction::MaintenanceScheduled,
    };
    match incident::open(&shared.store, &cx, &opening, now).await {
        Ok(outcome) => done(&shared, &member, action, &opening.id, &outcome).await,
        Err(IncidentError::Store(e)) => member.unavailable(title, &e),
        Err(e) => member.page(
            status_of(&e),
            title,
            &open_form(&member, zone, &sent, &e.to_string()),
        ),
    }
}

/// After a change: delivery woken, the audit written, back to the
/// incident's page.
async fn done(
    shared: &AppState,
    member: &Member,
    action: AuditAction,
    id: &str,
    outcome: &Outcome,
) -> Response {
    shared.wake_deliver.notify_one();
    let entry = AuditEntry {
        member: member.member.id.clone(),
        action,
        detail: format!(
            "{id}: {} affected, {} notices",
            outcome.affected, outcome.notices
        ),
        address: member.address.clone(),
        at: shared.clock.now(),
    };
    if let Err(e) = shared.store.record_audit(&entry).await {
        tracing::warn!(error = %e, incident = id, "recording an incident change in the audit failed");
    }
    let path = super::segment(id);
    Redirect::to(&format!("/console/incidents/{path}")).into_response()
}

fn status_of(e: &IncidentError) -> StatusCode {
    match e {
        IncidentError::Unknown(_) => StatusCode::NOT_FOUND,
        IncidentError::Exists(_) | IncidentError::Closed(..) => StatusCode::CONFLICT,
        IncidentError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// `GET /console/incidents/{id}`.
pub async fn show(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    shown(&shared, &member, &id, StatusCode::OK, "").await
}

/// One incident's page, with `error` over its forms.
async fn shown(
    shared: &AppState,
    member: &Member,
    id: &str,
    status: StatusCode,
    error: &str,
) -> Response {
    let title = "Incident";
    let read = async {
        Ok::<_, crate::store::Error>((
            shared.store.incident(id).await?,
            shared.store.recipients_sample(id, TOLD_SHOWN).await?,
            shared.store.told(id).await?,
        ))
    };
    let (incident, told, total) = match read.await {
        Ok((Some(incident), told, total)) => (incident, told, total as i64),
        Ok((None, _, _)) => {
            return member.page(
                StatusCode::NOT_FOUND,
                title,
                &format!(
                    "<p class=\"error\" role=\"alert\">No incident has the id {}. <a href=\"/console/incidents\">Every incident</a></p>",
                    escape(id)
                ),
            );
        }
        Err(e) => return member.unavailable(title, &e),
    };
    let people: String = told
        .iter()
        .map(|r| {
            let path = super::segment(r.customer_id.as_str());
            format!(
                "<li><a href=\"/console/customers/{path}\">{}</a> ({})</li>",
                escape(r.customer_id.as_str()),
                escape(&r.to)
            )
        })
        .collect();
    let mut body = format!(
        "<p>{} · <strong data-figure=\"status\">{}</strong> · opened {} UTC{}</p>{}\
         <p>Affects: <code>{}</code></p><p>{}</p>\
         <section aria-labelledby=\"told\"><h2 id=\"told\">Told ({})</h2>{}{}</section>",
        kind(incident.kind),
        incident.status.as_str(),
        incident.opened_at.format("%Y-%m-%d %H:%M"),
        incident
            .resolved_at
            .map(|t| format!(", closed {} UTC", t.format("%Y-%m-%d %H:%M")))
            .unwrap_or_default(),
        match (incident.starts_at, incident.ends_at) {
            (Some(starts), Some(ends)) => format!(
                "<p>From <time data-figure=\"starts\" datetime=\"{}\">{} UTC</time> to <time datetime=\"{}\">{} UTC</time></p>",
                starts.to_rfc3339(),
                starts.format("%Y-%m-%d %H:%M"),
                ends.to_rfc3339(),
                ends.format("%Y-%m-%d %H:%M"),
            ),
            _ => String::new(),
        },
        escape(&incident.affects),
        escape(&incident.message),
        total,
        if told.is_empty() {
            "<p>Nobody has been told.</p>".to_owned()
        } else {
            format!("<ul>{people}</ul>")
        },
        if total > told.len() as i64 {
            format!("<p>The first {} by customer id are listed.</p>", told.len())
        } else {
            String::new()
        },
    );
    if member.member.role.may_change() && !incident.status.is_closed() {
        let (error, invalid) = problem(error);
        let csrf = escape(&member.session.csrf);
        let path = super::segment(id);
        let statuses: String = IncidentStatus::ALL
            .into_iter()
            .filter(|s| s.fits(incident.kind))
            .map(|s| {
                let selected = if s == incident.status {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{0}\"{selected}>{0}</option>", s.as_str())
            })
            .collect();
        let close = match incident.kind {
            IncidentKind::Incident => format!(
                "<section aria-labelledby=\"resolve\"><h2 id=\"resolve\">Resolve</h2>\
                 <form method=\"post\" action=\"/console/incidents/{path}/resolve\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <label for=\"resolve-message\">What was fixed (everyone told gets it)</label>\
                 <textarea id=\"resolve-message\" name=\"message\" rows=\"3\" required{invalid}></textarea>\
                 <p><button type=\"submit\">Resolve and tell them</button></p></form></section>"
            ),
            IncidentKind::Maintenance => format!(
                "<section aria-labelledby=\"cancel\"><h2 id=\"cancel\">Call it off</h2>\
                 <form method=\"post\" action=\"/console/incidents/{path}/cancel\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <label for=\"cancel-message\">Why (optional)</label>\
                 <textarea id=\"cancel-message\" name=\"message\" rows=\"3\"{invalid}></textarea>\
                 <p><button type=\"submit\">Cancel the maintenance</button></p></form></section>"
            ),
        };
        body.push_str(&format!(
            "{error}<section aria-labelledby=\"update\"><h2 id=\"update\">Post an update</h2>\
             <form method=\"post\" action=\"/console/incidents/{path}/update\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"update-message\">News</label><textarea id=\"update-message\" name=\"message\" rows=\"3\" required{invalid}></textarea>\
             <label for=\"update-status\">Status</label><select id=\"update-status\" name=\"status\">{statuses}</select>\
             <p><label class=\"inline\"><input type=\"checkbox\" name=\"notify\" value=\"true\"> Mail it to everyone told</label></p>\
             <p><button type=\"submit\">Post the update</button></p></form></section>{close}"
        ));
    }
    member.page(
        status,
        &format!("{} ({})", incident.title, incident.id),
        &body,
    )
}

#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    notify: String,
}

/// `POST /console/incidents/{id}/update`, `…/resolve` and `…/cancel`.
pub async fn change(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Path((id, what)): Path<(String, String)>,
    Form(sent): Form<ChangeForm>,
) -> Response {
    if let Some(refused) = member.refusal(&sent.csrf) {
        return refused;
    }
    let engine = shared.engine();
    let cx = Context::new(&engine.loaded.settings);
    let now = shared.clock.now();
    let (action, result) = match what.as_str() {
        "update" => {
            let status = match sent.status.trim() {
                "" => None,
                raw => match IncidentStatus::parse(raw) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        return shown(&shared, &member, &id, StatusCode::UNPROCESSABLE_ENTITY, &e)
                            .await;
                    }
                },
            };
            let notify = sent.notify == "true";
            (
                AuditAction::IncidentUpdated,
                incident::update(&shared.store, &cx, &id, &sent.message, status, notify, now).await,
            )
        }
        "resolve" => (
            AuditAction::IncidentResolved,
            incident::resolve(&shared.store, &cx, &id, &sent.message, now).await,
        ),
        "cancel" => (
            AuditAction::IncidentCancelled,
            incident::cancel(&shared.store, &cx, &id, &sent.message, now).await,
        ),
        _ => return member.page(StatusCode::NOT_FOUND, "Incident", "<p>No such change.</p>"),
    };
    match result {
        Ok(outcome) => done(&shared, &member, action, &id, &outcome).await,
        Err(IncidentError::Store(e)) => member.unavailable("Incident", &e),
        Err(e) => shown(&shared, &member, &id, status_of(&e), &e.to_string()).await,
    }
}
