//! `/console/suppressions`: who is not mailed, for what and why, filtered
//! by customer or category; a manager lifts one with a reason, which is
//! kept with it and in the console's audit.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Member, layout, query_value, read_only};
use crate::domain::console::{AuditAction, AuditEntry};
use crate::domain::customer::CustomerId;
use crate::domain::suppression::{Lift, SuppressionFilter, SuppressionId, SuppressionView};
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::{Responses, Team};

/// Rows a page shows.
const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    after: String,
    /// The suppression just lifted, to say so.
    #[serde(default)]
    lifted: String,
}

/// `GET /console/suppressions`.
pub async fn list(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<ListQuery>,
) -> Response {
    let mut problems = Vec::new();
    let customer = match q.customer.trim() {
        "" => None,
        raw => CustomerId::parse(raw)
            .map_err(|e| problems.push(format!("Customer: {e}")))
            .ok(),
    };
    let after = match q.after.trim() {
        "" => None,
        raw => SuppressionId::parse(raw)
            .map_err(|e| problems.push(format!("Page: {e}")))
            .ok(),
    };
    let category = Some(q.category.trim().to_owned()).filter(|c| !c.is_empty());
    let filter_form = format!(
        "<form method=\"get\" action=\"/console/suppressions\" class=\"filters\">\
         <label for=\"customer\">Customer id</label><input type=\"text\" id=\"customer\" name=\"customer\" value=\"{}\">\
         <label for=\"category\">Category</label><input type=\"text\" id=\"category\" name=\"category\" value=\"{}\">\
         <p><button type=\"submit\">Filter</button> <a href=\"/console/suppressions\">Show all</a></p></form>",
        escape(q.customer.trim()),
        escape(q.category.trim()),
    );
    if !problems.is_empty() {
        let errors: String = problems.iter().map(|p| layout::error(p)).collect();
        return member.page(
            StatusCode::BAD_REQUEST,
            "Suppressions",
            &format!("{errors}{filter_form}"),
        );
    }
    let filter = SuppressionFilter { customer, category };
    let page = match shared.store.suppressions_page(&filter, after, PAGE).await {
        Ok(page) => page,
        Err(e) => return member.unavailable("Suppressions", &e),
    };
    let lifted = if q.lifted.is_empty() {
        String::new()
    } else {
        format!(
            "<p role=\"status\" class=\"notice\">Lifted {}: they get that mail again.</p>",
            escape(&q.lifted)
        )
    };
    let may_lift = member.member.role.may_change();
    let rows: String = page.data.iter().map(|s| row(s, may_lift)).collect();
    let table = if page.data.is_empty() {
        "<p>No suppressions match.</p>".to_owned()
    } else {
        format!(
            "<div class=\"scroll\"><table><caption>Who is not mailed, newest customer first</caption><thead><tr>\
             <th scope=\"col\">Customer</th><th scope=\"col\">Email</th><th scope=\"col\">Category</th>\
             <th scope=\"col\">Reason</th><th scope=\"col\">Source</th><th scope=\"col\">Since (UTC)</th>{}\
             </tr></thead><tbody>{rows}</tbody></table></div>",
            if may_lift {
                "<th scope=\"col\"><span class=\"visually-hidden\">Action</span></th>"
            } else {
                ""
            }
        )
    };
    let next = if page.has_more {
        format!(
            "<p><a href=\"/console/suppressions?customer={}&amp;category={}&amp;after={}\">Next page</a></p>",
            query_value(q.customer.trim()),
            query_value(q.category.trim()),
            query_value(&page.next_cursor),
        )
    } else {
        String::new()
    };
    member.page(
        StatusCode::OK,
        "Suppressions",
        &format!("{lifted}{filter_form}{table}{next}"),
    )
}

fn row(s: &SuppressionView, may_lift: bool) -> String {
    let action = if may_lift {
        format!(
            "<td><a href=\"/console/suppressions/lift?id={}\">Lift…<span class=\"visually-hidden\"> {} for {}</span></a></td>",
            query_value(&s.id),
            escape(&s.category),
            escape(&s.customer_id),
        )
    } else {
        String::new()
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{action}</tr>",
        escape(&s.customer_id),
        escape(&s.email),
        escape(&s.category),
        escape(&s.reason),
        escape(&s.source),
        s.created_at.format("%Y-%m-%d %H:%M"),
    )
}

#[derive(Debug, Deserialize)]
pub struct IdQuery {
    #[serde(default)]
    id: String,
}

/// `GET /console/suppressions/lift?id=…`: what would be lifted, and the
/// form that asks why.
pub async fn confirm(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Query(q): Query<IdQuery>,
) -> Response {
    if !member.member.role.may_change() {
        return read_only(&member);
    }
    shown(&shared, &member, &q.id, "", "", StatusCode::OK).await
}

/// The confirmation form for suppression `id`, with `error` and the
/// reason typed so far.
async fn shown(
    shared: &AppState,
    member: &Member,
    id: &str,
    error: &str,
    reason: &str,
    status: StatusCode,
) -> Response {
    let title = "Lift a suppression";
    let suppression = match SuppressionId::parse(id) {
        Ok(parsed) => match find(shared, &parsed).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return member.page(
                    StatusCode::NOT_FOUND,
                    title,
                    "<p>That suppression is not in force any more (it may have been lifted already). <a href=\"/console/suppressions\">Back to the list</a></p>",
                );
            }
            Err(e) => return member.unavailable(title, &e),
        },
        Err(e) => {
            return member.page(
                StatusCode::BAD_REQUEST,
                title,
                &format!(
                    "{}<p><a href=\"/console/suppressions\">Back to the list</a></p>",
                    layout::error(&e)
                ),
            );
        }
    };
    let invalid = if error.is_empty() {
        ""
    } else {
        layout::INVALID
    };
    let error = layout::problem(error);
    let body = format!(
        "<p>{} ({}) gets no <strong>{}</strong> mail since {} UTC: {} ({}).</p>\
         <p>Lifting it means they get that mail again. Do it only when they asked for it or the reason no longer holds (a fixed mailbox).</p>\
         {error}<form method=\"post\" action=\"/console/suppressions/lift\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
         <label for=\"reason\">Why (kept with it)</label>\
         <textarea id=\"reason\" name=\"reason\" rows=\"3\" required{invalid}>{reason}</textarea>\
         <p><button type=\"submit\">Lift the suppression</button> <a href=\"/console/suppressions\">Cancel</a></p></form>",
        escape(&suppression.customer_id),
        escape(&suppression.email),
        escape(&suppression.category),
        suppression.created_at.format("%Y-%m-%d %H:%M"),
        escape(&suppression.reason),
        escape(&suppression.source),
        csrf = escape(&member.session.csrf),
        id = escape(&suppression.id),
        reason = escape(reason),
    );
    member.page(status, title, &body)
}

/// Suppression `id`, if in force.
async fn find(
    shared: &AppState,
    id: &SuppressionId,
) -> Result<Option<SuppressionView>, crate::store::Error> {
    let filter = SuppressionFilter {
        customer: Some(id.customer.clone()),
        category: Some(id.category.clone()),
    };
    let page = shared.store.suppressions_page(&filter, None, 10).await?;
    let wanted = id.to_string();
    Ok(page.data.into_iter().find(|s| s.id == wanted))
}

#[derive(Debug, Deserialize)]
pub struct LiftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/suppressions/lift`.
pub async fn lift(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Form(sent): Form<LiftForm>,
) -> Response {
    if let Some(refused) = member.refusal(&sent.csrf) {
        return refused;
    }
    let id = match SuppressionId::parse(&sent.id) {
        Ok(id) => id,
        Err(e) => {
            return shown(
                &shared,
                &member,
                &sent.id,
                &e,
                &sent.reason,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let by = format!("{} (console)", member.member.id);
    let lift = match Lift::new(&by, &sent.reason) {
        Ok(lift) => lift,
        Err(e) => {
            return shown(
                &shared,
                &member,
                &sent.id,
                &format!("{e}."),
                &sent.reason,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let now = shared.clock.now();
    match shared.store.lift_suppression(&id, &lift, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return shown(
                &shared,
                &member,
                &sent.id,
                "",
                &sent.reason,
                StatusCode::NOT_FOUND,
            )
            .await;
        }
        Err(e) => return member.unavailable("Lift a suppression", &e),
    }
    let entry = AuditEntry {
        member: member.member.id.clone(),
        action: AuditAction::SuppressionLifted,
        detail: format!("{id}: {}", lift.why),
        address: member.address.clone(),
        at: now,
    };
    if let Err(e) = shared.store.record_audit(&entry).await {
        tracing::warn!(error = %e, suppression = %id, "recording a lift in the console's audit failed");
    }
    tracing::info!(suppression = %id, by = %lift.by, "a suppression was lifted");
    Redirect::to(&format!(
        "/console/suppressions?lifted={}",
        query_value(&id.to_string())
    ))
    .into_response()
}
