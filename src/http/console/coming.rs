//! `/console/next`: what comes next for a person or a playbook, as a
//! calendar of days in the team's time zone, each message with when it
//! goes or why it will not (the forecast `tend forecast` prints, from the
//! planner's own code path, writing nothing); and `/console/preview`: a
//! template as one person would get it, the subject and the text part on
//! the page and the HTML part on a page of its own, as delivery renders
//! them (`preview::render`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::Duration;
use serde::Deserialize;

use super::{Member, layout, query_value as query, segment};
use crate::domain::customer::CustomerId;
use crate::domain::message::Status;
use crate::http::AppState;
use crate::http::page::escape;
use crate::planner::ForecastRow;
use crate::preview::PreviewError;

/// The longest look ahead the page offers.
const MOST_DAYS: u32 = 90;

/// The most rows a calendar shows (a playbook over many customers).
const MOST_ROWS: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    playbook: String,
    /// Read as text: a cleared field sends `days=`.
    #[serde(default)]
    days: String,
}

/// `GET /console/next`.
pub async fn next(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<NextQuery>,
) -> Response {
    let title = "What comes next";
    let engine = shared.engine();
    let days = q
        .days
        .trim()
        .parse::<u32>()
        .unwrap_or(14)
        .clamp(1, MOST_DAYS);
    let playbooks: String = engine
        .planner
        .playbook_names()
        .map(|p| {
            let selected = if p == q.playbook.trim() {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{0}\"{selected}>{0}</option>", escape(p))
        })
        .collect();
    let form = format!(
        "<form method=\"get\" action=\"/console/next\" class=\"filters\">\
         <label for=\"customer\">Customer id</label><input type=\"text\" id=\"customer\" name=\"customer\" value=\"{}\">\
         <label for=\"playbook\">Playbook</label><select id=\"playbook\" name=\"playbook\"><option value=\"\">every playbook</option>{playbooks}</select>\
         <label for=\"days\">Days ahead</label><input type=\"number\" id=\"days\" name=\"days\" min=\"1\" max=\"{MOST_DAYS}\" value=\"{days}\">\
         <p><button type=\"submit\">Show</button></p></form>",
        escape(q.customer.trim()),
    );
    let customer = match q.customer.trim() {
        "" => None,
        raw => match CustomerId::parse(raw) {
            Ok(id) => Some(id),
            Err(e) => {
                return member.page(
                    StatusCode::BAD_REQUEST,
                    title,
                    &format!("{}{form}", layout::error(&format!("Customer: {e}"))),
                );
            }
        },
    };
    let playbook = Some(q.playbook.trim()).filter(|p| !p.is_empty());
    if customer.is_none() && playbook.is_none() {
        return member.page(
            StatusCode::OK,
            title,
            &format!("<p>Choose a customer, a playbook, or both.</p>{form}"),
        );
    }
    if let Some(name) = playbook
        && !engine.planner.playbook_names().any(|p| p == name)
    {
        return member.page(
            StatusCode::BAD_REQUEST,
            title,
            &format!(
                "<p class=\"error\" role=\"alert\">No playbook is named {}.</p>{form}",
                escape(name)
            ),
        );
    }
    if let Some(id) = &customer {
        match crate::store::Customers::customer(&shared.store, id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return member.page(
                    StatusCode::NOT_FOUND,
                    title,
                    &format!(
                        "<p class=\"error\" role=\"alert\">No customer has the id {}.</p>{form}",
                        escape(id.as_str())
                    ),
                );
            }
            Err(e) => return member.unavailable(title, &e),
        }
    }
    let now = shared.clock.now();
    let until = now + Duration::days(i64::from(days));
    let forecast = match engine
        .planner
        .forecast(&shared.store, now, until, customer.as_ref(), |_| None)
        .await
    {
        Ok(f) => f,
        Err(e) => return member.unavailable(title, &e),
    };
    let mine = |p: &str| playbook.is_none_or(|name| name == p);
    let rows: Vec<&ForecastRow> = forecast.rows.iter().filter(|r| mine(&r.playbook)).collect();
    let held: Vec<_> = forecast.held.iter().filter(|h| mine(&h.playbook)).collect();
    let zone = engine.planner.default_zone();
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<&ForecastRow>> = BTreeMap::new();
    for row in rows.iter().take(MOST_ROWS) {
        by_day
            .entry(row.at.with_timezone(&zone).date_naive())
            .or_default()
            .push(row);
    }
    let calendar: String = by_day
        .iter()
        .map(|(day, rows)| {
            let items: String = rows.iter().map(|r| line(r, zone)).collect();
            format!(
                "<section class=\"day\" aria-label=\"{0}\"><h2>{0}</h2><ul>{items}</ul></section>",
                day.format("%A %-d %B %Y")
            )
        })
        .collect();
    let more = if rows.len() > MOST_ROWS {
        format!(
            "<p>The first {MOST_ROWS} of {} are shown; choose a customer to see theirs.</p>",
            rows.len()
        )
    } else {
        String::new()
    };
    let held_list = if held.is_empty() {
        String::new()
    } else {
        let items: String = held
            .iter()
            .take(MOST_ROWS)
            .map(|h| {
                format!(
                    "<li><a href=\"/console/customers/{}\">{}</a> {}/{}: {}</li>",
                    segment(&h.customer_id),
                    escape(&h.customer_id),
                    escape(&h.playbook),
                    escape(&h.step),
                    escape(&h.reason)
                )
            })
            .collect();
        format!(
            "<section aria-labelledby=\"held\"><h2 id=\"held\">Held with no end known</h2><ul>{items}</ul></section>"
        )
    };
    let empty = if rows.is_empty() && held.is_empty() {
        format!("<p>Nothing in the next {days} days.</p>")
    } else {
        String::new()
    };
    member.page(
        StatusCode::OK,
        title,
        &format!(
            "{form}<p>Days and times in {} (<code>customers.default_timezone</code>).</p>{empty}{calendar}{more}{held_list}",
            escape(zone.name())
        ),
    )
}

/// One message of the calendar: when, who, which step, what becomes of
/// it and why, and the link to preview it for them.
fn line(r: &ForecastRow, zone: chrono_tz::Tz) -> String {
    let fate = match (r.status, &r.reason) {
        (Status::Sent, _) => {
            let mut why = Vec::new();
            if let Some(holiday) = &r.waits_out {
                why.push(format!("after {}", escape(holiday)));
            }
            if let Some(until) = r.quiet_until {
                why.push(format!(
                    "after their quiet period, until {}",
                    until.with_timezone(&zone).format("%-d %b %H:%M")
                ));
            }
            if r.at > r.due_at && why.is_empty() {
                why.push("held for the send window, the cap or priorities".to_owned());
            }
            if why.is_empty() {
                "goes".to_owned()
            } else {
                format!("goes ({})", why.join("; "))
            }
        }
        (_, Some(reason)) => format!("will not go: {}", escape(reason)),
        (status, None) => status.as_str().to_owned(),
    };
    format!(
        "<li><time datetime=\"{}\">{}</time> <a href=\"/console/customers/{}\">{}</a> {}/{}: {fate} \
         <a href=\"/console/preview?template={}&amp;customer={}\">Preview<span class=\"visually-hidden\"> {} for {}</span></a></li>",
        r.at.to_rfc3339(),
        r.at.with_timezone(&zone).format("%H:%M"),
        segment(&r.customer_id),
        escape(&r.customer_id),
        escape(&r.playbook),
        escape(&r.step),
        query(&r.template),
        query(&r.customer_id),
        escape(&r.template),
        escape(&r.customer_id),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    template: String,
    #[serde(default)]
    customer: String,
}

/// `GET /console/preview`.
pub async fn preview(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<PreviewQuery>,
) -> Response {
    let title = "Preview";
    let engine = shared.engine();
    let templates: String = engine
        .planner
        .templates()
        .into_iter()
        .map(|t| {
            let selected = if t == q.template.trim() {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{0}\"{selected}>{0}</option>", escape(t))
        })
        .collect();
    let form = format!(
        "<form method=\"get\" action=\"/console/preview\" class=\"filters\">\
         <label for=\"template\">Template</label><select id=\"template\" name=\"template\">{templates}</select>\
         <label for=\"customer\">Customer id</label><input type=\"text\" id=\"customer\" name=\"customer\" value=\"{}\" required>\
         <p><button type=\"submit\">Preview</button></p></form>",
        escape(q.customer.trim()),
    );
    if q.template.trim().is_empty() || q.customer.trim().is_empty() {
        return member.page(StatusCode::OK, title, &form);
    }
    let preview = match rendered(&shared, &q).await {
        Ok(preview) => preview,
        Err((status, why)) => {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %why, "a console preview could not read the store");
            }
            return member.page(status, title, &format!("{}{form}", layout::error(&why)));
        }
    };
    let r = &preview.rendered;
    let never = preview
        .would_not_get
        .as_deref()
        .map(|why| {
            format!(
                "<p class=\"notice\" role=\"status\">Shown anyway: {}.</p>",
                escape(why)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "{form}{never}<dl class=\"message\"><dt>To</dt><dd>{}</dd><dt>Subject</dt><dd data-figure=\"subject\">{}</dd><dt>Preheader</dt><dd>{}</dd></dl>\
         <p><a href=\"/console/preview/html?template={}&amp;customer={}\">The HTML part, as the mail shows it</a> (opens a page of its own)</p>\
         <h2>The text part</h2><pre class=\"text-part\">{}</pre>",
        escape(&preview.to),
        escape(&r.subject),
        escape(&r.preheader),
        query(q.template.trim()),
        query(q.customer.trim()),
        escape(&r.text),
    );
    member.page(
        StatusCode::OK,
        &format!("Preview of {}", q.template.trim()),
        &body,
    )
}

/// `GET /console/preview/html`: the HTML part alone, as the mail's own
/// document (the console's security headers still apply: no script).
pub async fn preview_html(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<PreviewQuery>,
) -> Response {
    match rendered(&shared, &q).await {
        Ok(preview) => Html(preview.rendered.html).into_response(),
        Err((status, why)) => member.page(status, "Preview", &layout::error(&why)),
    }
}

/// The preview asked for, or the status and words of why not.
async fn rendered(
    shared: &AppState,
    q: &PreviewQuery,
) -> Result<crate::preview::Preview, (StatusCode, String)> {
    let id = CustomerId::parse(&q.customer)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("Customer: {e}")))?;
    let engine = shared.engine();
    crate::preview::render(
        &shared.store,
        &engine.planner,
        &engine.deliverer,
        &id,
        &q.template,
        shared.clock.now(),
        true,
    )
    .await
    .map_err(|e| match e {
        PreviewError::UnknownCustomer(_) => (StatusCode::NOT_FOUND, e.to_string()),
        PreviewError::WouldNotGet(_) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        PreviewError::Render(_) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        PreviewError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The store cannot be reached just now; reload the page in a minute.".to_owned(),
        ),
    })
}
