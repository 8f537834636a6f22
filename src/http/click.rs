//! `GET /c/{token}`: a tracked link. Records the click, then redirects to
//! the URL bound inside the signed token, and nowhere else: the target is
//! never read from the request, so the route cannot be used as an open
//! redirect.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::link;
use super::page::refused;
use crate::store::Responses;
use crate::store::{NewResponse, ResponseKind, Source};
use crate::token::Purpose;

pub async fn follow(State(shared): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let claims = match link::claims(&engine, &token, Purpose::Click, shared.clock.now()) {
        Ok(claims) => claims,
        Err(refusal) => return refusal.page(company),
    };
    let Some(target) = link::web_page(&claims.value) else {
        return refused(company, "the link does not lead to a web page");
    };
    let url = target.as_str().to_owned();
    let click = NewResponse {
        kind: ResponseKind::Click,
        value: Some(url.clone()),
        comment: None,
        source: Source::Link,
        replace: false,
    };
    // The customer gets where they were going even if recording fails.
    match shared
        .store
        .record_response(claims.message, &click, shared.clock.now())
        .await
    {
        Ok(Some(_)) => crate::telemetry::response_recorded("click"),
        Ok(None) => tracing::debug!("a click on a link of a message that no longer exists"),
        Err(e) => tracing::error!(error = %e, "recording a click failed"),
    }
    Redirect::to(&url).into_response()
}
