//! The read API (bearer token): `GET /api/v1/customers/{id}`, one person's
//! timeline, and `GET /api/v1/accounts/{id}`, one company's page (see
//! `crate::timeline`); a person's export and erasure (`crate::privacy`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::{error, refused_unless_authorized};
use crate::domain::account::AccountId;
use crate::domain::customer::CustomerId;

/// The customer id of a request that carries the API token, or the
/// answer refusing it (401, or 400 for an id that cannot be one).
fn authorized_customer(
    shared: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<CustomerId, Box<Response>> {
    if let Some(refused) = refused_unless_authorized(shared, headers) {
        return Err(Box::new(refused));
    }
    CustomerId::parse(id)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("customer id: {e}"))))
}

pub async fn customer(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match authorized_customer(&shared, &headers, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let read = crate::timeline::read(&shared.store, &id).await;
    answer(read, || {
        format!(
            "no customer has id {:?}; POST /api/v1/customers adds customers",
            id.as_str()
        )
    })
}

/// `GET /api/v1/customers/{id}/export`: everything about one person.
pub async fn export(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match authorized_customer(&shared, &headers, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let read = crate::privacy::export(&shared.store, &id, shared.clock.now()).await;
    answer(read, || format!("no customer has id {:?}", id.as_str()))
}

/// `DELETE /api/v1/customers/{id}`: erases one person at their request:
/// 200 with what was done, 404 for no such person, 409 while a message to
/// them is being sent.
pub async fn erase(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match authorized_customer(&shared, &headers, &id) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    use crate::privacy::EraseError;
    match crate::privacy::erase(&shared.store, &id, shared.clock.now()).await {
        Ok(erased) => {
            tracing::info!(stand_in = %erased.stand_in, "a person was erased at their request");
            Json(erased).into_response()
        }
        Err(e @ EraseError::Unknown(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ EraseError::Sending(_)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(EraseError::Store(e)) => answer::<()>(Err(e), String::new),
    }
}

pub async fn account(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refused_unless_authorized(&shared, &headers) {
        return refused;
    }
    let id = match AccountId::parse(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("account id: {e}")),
    };
    let engine = shared.engine();
    let read = crate::timeline::account(&shared.store, &id, &engine.loaded.settings.team).await;
    answer(read, || {
        format!(
            "no account has id {:?}; POST /api/v1/accounts adds accounts",
            id.as_str()
        )
    })
}

/// What was read, as JSON; 404 with `missing` when there was nothing, 503
/// when the store failed.
fn answer<T: serde::Serialize>(
    read: Result<Option<T>, crate::store::Error>,
    missing: impl FnOnce() -> String,
) -> Response {
    match read {
        Ok(Some(found)) => Json(found).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, missing()),
        Err(e) => unavailable(&e),
    }
}

/// 503 for a store that failed, logged.
pub(super) fn unavailable(e: &crate::store::Error) -> Response {
    tracing::error!(error = %e, "a read API request failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{e}; try again in a moment"),
    )
}
