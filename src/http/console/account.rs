//! `/console/accounts/{id}`: one company: its plan, renewal, health and
//! owner, the stages it entered, the latest answer of each survey from any
//! of its contacts, and each contact with their roles and what they were
//! sent and answered. The same reading as `tend account show`
//! (`timeline::account`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Member;
use crate::domain::account::AccountId;
use crate::http::AppState;
use crate::http::page::escape;
use crate::timeline::{self, AccountShown};

/// `GET /console/accounts/{id}`.
pub async fn show(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let title = "Account";
    let parsed = match AccountId::parse(&id) {
        Ok(parsed) => parsed,
        Err(e) => {
            return member.page(StatusCode::BAD_REQUEST, title, &super::layout::error(&e));
        }
    };
    let engine = shared.engine();
    match timeline::account(&shared.store, &parsed, &engine.loaded.settings.team).await {
        Ok(Some(shown)) => member.page(
            StatusCode::OK,
            &format!("{} ({})", shown.account.name, shown.account.id),
            &body(&shown),
        ),
        Ok(None) => member.page(
            StatusCode::NOT_FOUND,
            title,
            &format!(
                "<p class=\"error\" role=\"alert\">No account has the id {}. Ids are the company's own, as imported.</p>",
                escape(&id)
            ),
        ),
        Err(e) => member.unavailable(title, &e),
    }
}

fn link(id: &str) -> String {
    let path = super::segment(id);
    format!("<a href=\"/console/customers/{path}\">{}</a>", escape(id))
}

fn body(s: &AccountShown) -> String {
    let a = &s.account;
    let owner = s.owner.as_ref().map_or_else(
        || a.owner.clone().unwrap_or_else(|| "nobody".into()),
        |o| format!("{} ({})", o.name, o.email),
    );
    let mut out = format!(
        "<p class=\"summary\">plan {} · stage <strong>{}</strong> · health {} · renews {} · owner {} · {} contacts</p>",
        escape(&a.plan),
        escape(a.stage.as_deref().unwrap_or("—")),
        a.health.map_or("—".to_owned(), |h| h.to_string()),
        a.renewal_at
            .map_or("—".to_owned(), |t| t.format("%Y-%m-%d").to_string()),
        escape(&owner),
        a.contacts,
    );
    let latest: String = s
        .latest
        .iter()
        .map(|(survey, answer)| {
            format!(
                "<tr><th scope=\"row\">{}</th><td data-figure=\"latest-{survey}\">{}</td><td>{}</td><td>{} UTC</td></tr>",
                survey.to_uppercase(),
                escape(&answer.value),
                link(&answer.contact),
                answer.at.format("%Y-%m-%d %H:%M"),
            )
        })
        .collect();
    out.push_str(&if s.latest.is_empty() {
        "<section aria-labelledby=\"scores\"><h2 id=\"scores\">Latest answers</h2><p>No contact has answered a survey yet.</p></section>".to_owned()
    } else {
        format!(
            "<section aria-labelledby=\"scores\"><h2 id=\"scores\">Latest answers</h2><div class=\"scroll\"><table><thead><tr>\
             <th scope=\"col\">Survey</th><th scope=\"col\">Answer</th><th scope=\"col\">From</th><th scope=\"col\">When</th>\
             </tr></thead><tbody>{latest}</tbody></table></div></section>"
        )
    });
    let stages = super::layout::dated(s.stages.iter().map(|st| (st.stage.as_str(), st.entered_at)));
    out.push_str(&format!(
        "<section aria-labelledby=\"stages\"><h2 id=\"stages\">Stages entered</h2>{}</section>",
        if s.stages.is_empty() {
            "<p>No stage entered yet.</p>".to_owned()
        } else {
            stages
        }
    ));
    let contacts: String = s
        .contacts
        .iter()
        .map(|c| {
            let answered = c.responses.len();
            let last = c
                .messages
                .iter()
                .max_by_key(|m| m.due_at)
                .map(|m| {
                    format!(
                        "{}/{} ({})",
                        escape(&m.playbook),
                        escape(&m.step),
                        escape(&m.status)
                    )
                })
                .unwrap_or_else(|| "—".to_owned());
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{last}</td><td>{answered}</td></tr>",
                link(&c.id),
                escape(&c.name),
                escape(&c.email),
                escape(&c.roles.join(", ")),
                escape(c.stage.as_deref().unwrap_or("—")),
            )
        })
        .collect();
    out.push_str(&format!(
        "<section aria-labelledby=\"contacts\"><h2 id=\"contacts\">Contacts</h2><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Id</th><th scope=\"col\">Name</th><th scope=\"col\">Email</th><th scope=\"col\">Roles</th>\
         <th scope=\"col\">Stage</th><th scope=\"col\">Latest message</th><th scope=\"col\">Responses</th>\
         </tr></thead><tbody>{contacts}</tbody></table></div></section>"
    ));
    out
}
