//! `GET /u/{token}` and `POST /u/{token}`: unsubscribing from the category
//! of the message a signed link came in.
//!
//! A GET only shows a page with one button: mail scanners open every link
//! and must not unsubscribe anyone. A POST unsubscribes: the RFC 8058
//! one-click request mail clients send (`List-Unsubscribe=One-Click`), or
//! the page's button. No login, no cookies, no redirect. A forged or
//! altered token gets a clear page and records nothing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::page::{escape, page, refused};
use crate::daemon::Shared;
use crate::store::{NewResponse, Store};
use crate::token::Purpose;

/// The page for a valid link: what it would do, and the button.
pub async fn show(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let engine = shared.engine();
    let claims = match engine.signer.verify(&token, Purpose::Unsubscribe) {
        Ok(claims) => claims,
        Err(e) => return refused(&e.to_string()),
    };
    let what = describe(&engine.loaded.settings, &claims.value);
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {what}?</p>\
             <form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// Unsubscribes from the link's category.
pub async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    body: String,
) -> Response {
    let engine = shared.engine();
    let claims = match engine.signer.verify(&token, Purpose::Unsubscribe) {
        Ok(claims) => claims,
        Err(e) => return refused(&e.to_string()),
    };
    let source = if body.contains("List-Unsubscribe=One-Click") {
        "one-click"
    } else {
        "unsubscribe page"
    };
    let unsubscribe = NewResponse {
        kind: "unsubscribe",
        value: Some(claims.value.clone()),
        comment: None,
        source,
        replace: false,
        suppress: true,
    };
    match shared
        .store
        .record_response(claims.message, &unsubscribe, Utc::now())
        .await
    {
        Ok(Some(_)) => {
            crate::telemetry::response_recorded("unsubscribe");
            let what = describe(&engine.loaded.settings, &claims.value);
            page(
                StatusCode::OK,
                "Unsubscribed",
                &format!("<p>You will no longer receive {what}.</p>"),
            )
        }
        Ok(None) => refused("the link is for a message that no longer exists"),
        Err(e) => {
            tracing::error!(error = %e, "recording an unsubscribe failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>We could not record that just now. Please try the link again in a minute.</p>",
            )
        }
    }
}

/// "emails about Getting started with Acme Cloud", escaped for HTML.
fn describe(settings: &crate::config::settings::Settings, category: &str) -> String {
    let description = settings
        .categories
        .iter()
        .find(|c| c.name == category)
        .map(|c| c.description.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or(category);
    format!(
        "emails about {} from {}",
        escape(description),
        escape(&settings.company.name)
    )
}
