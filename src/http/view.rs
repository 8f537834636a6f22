//! `GET /v/{token}`: a message as a web page ("View in your browser"), for
//! mail clients that show it badly. The message is rendered again from its
//! template, for its customer, as of the instant bound in the token (when
//! it was rendered for sending), so the page and every link in it are the
//! ones the email had. Viewing records nothing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::AppState;
use super::link::{self, Refusal};
use super::page::{page, try_again};
use crate::deliver::Draft;
use crate::store::Outbox;
use crate::token::Purpose;

pub async fn show(State(shared): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let claims = match link::claims(&engine, &token, Purpose::View, shared.clock.now()) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.page(company),
    };
    let Some(rendered_at) = claims
        .value
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
    else {
        return Refusal::Invalid("the link names no time".into()).page(company);
    };
    let mut message = match shared.store.outgoing(claims.message).await {
        Ok(Some(message)) => message,
        Ok(None) => return gone(company),
        Err(e) => {
            tracing::error!(error = %e, "reading a message to view failed");
            return try_again(company);
        }
    };
    // As delivery composed it: with the account and the sender.
    if let Err(e) = engine
        .deliverer
        .address(&shared.store, std::slice::from_mut(&mut message))
        .await
    {
        tracing::error!(error = %e, "reading a message's account to view it failed");
        return try_again(company);
    }
    let draft = Draft::of(&message);
    match engine.deliverer.render(&draft, rendered_at) {
        Ok(rendered) => Html(rendered.html).into_response(),
        Err(e) => {
            // The template changed since, and no longer renders for this
            // customer: say so rather than show something else.
            tracing::warn!(error = %e, message = %message.id, "a message could not be shown in a browser");
            gone(company)
        }
    }
}

fn gone(company: &crate::config::settings::Company) -> Response {
    page(
        company,
        StatusCode::NOT_FOUND,
        "This email cannot be shown",
        "<p>We cannot show this email in a browser any more. The copy in your inbox is still complete.</p>",
    )
}
