//! The incident API, so monitoring can tell customers first:
//! `POST /api/v1/incidents` opens one (or schedules a maintenance),
//! `POST /api/v1/incidents/{id}/updates` records news (sent with
//! `"notify": true`), `POST /api/v1/incidents/{id}/resolve` closes it,
//! `POST /api/v1/incidents/{id}/cancel` calls a maintenance off. The same
//! rules as `tend incident`; delivery is woken at once.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::{authorized_body, error};
use crate::domain::incident::{IncidentKind, IncidentStatus};
use crate::incident::{self, Context, IncidentError, Opening, Outcome};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    id: String,
    title: String,
    affects: String,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    message: String,
    /// For a scheduled maintenance: when it starts and ends.
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    notify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    message: String,
}

/// The JSON body, or a 400 naming what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON this route takes: {e}"),
        ))
    })
}

/// The JSON body of an authorized request, or the refusal to send.
fn authorized_json<T: serde::de::DeserializeOwned>(
    shared: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Box<Response>> {
    parse(&authorized_body(shared, headers, body)?)
}

/// An incident command's answer: 200 with what went into the outbox, or
/// the error with the status that fits it.
fn answer(shared: &AppState, id: &str, result: Result<Outcome, IncidentError>) -> Response {
    match result {
        Ok(outcome) => {
            shared.wake_deliver.notify_one();
            Json(json!({"id": id, "affected": outcome.affected, "notices": outcome.notices}))
                .into_response()
        }
        Err(e) => {
            let status = match &e {
                IncidentError::Unknown(_) => StatusCode::NOT_FOUND,
                IncidentError::Exists(_) | IncidentError::Closed(..) => StatusCode::CONFLICT,
                IncidentError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::error!(error = %e, "an incident command failed");
            }
            error(status, e.to_string())
        }
    }
}

pub async fn open(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: OpenBody = match authorized_json(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let engine = shared.engine();
    let opening = Opening {
        kind: if body.starts_at.is_some() {
            IncidentKind::Maintenance
        } else {
            IncidentKind::Incident
        },
        id: body.id,
        title: body.title,
        affects: body.affects,
        template: body.template,
        message: body.message,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let cx = Context::new(&engine.loaded.settings);
    let result = incident::open(&shared.store, &cx, &opening, shared.clock.now()).await;
    answer(&shared, &opening.id, result)
}

pub async fn update(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: UpdateBody = match authorized_json(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let status = match body
        .status
        .as_deref()
        .map(IncidentStatus::parse)
        .transpose()
    {
        Ok(status) => status,
        Err(why) => return error(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    let engine = shared.engine();
    let cx = Context::new(&engine.loaded.settings);
    let result = incident::update(
        &shared.store,
        &cx,
        &id,
        &body.message,
        status,
        body.notify,
        shared.clock.now(),
    )
    .await;
    answer(&shared, &id, result)
}

pub async fn resolve(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: ResolveBody = match authorized_json(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let engine = shared.engine();
    let cx = Context::new(&engine.loaded.settings);
    let result =
        incident::resolve(&shared.store, &cx, &id, &body.message, shared.clock.now()).await;
    answer(&shared, &id, result)
}

/// Calls off a maintenance; the body (`{"message": "…"}`) may be left out.
pub async fn cancel(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match authorized_body(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        match parse(&body) {
            Ok(body) => body,
            Err(refused) => return *refused,
        }
    };
    let engine = shared.engine();
    let cx = Context::new(&engine.loaded.settings);
    let result = incident::cancel(&shared.store, &cx, &id, &body.message, shared.clock.now()).await;
    answer(&shared, &id, result)
}
