//! The read API's lists (bearer token): `GET /api/v1/messages`,
//! `GET /api/v1/responses` and `GET /api/v1/suppressions`, a page at a
//! time with a cursor (see `crate::domain::feed`), and
//! `DELETE /api/v1/suppressions/{id}`, which lifts one with who and why.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::AppState;
use super::api::{authorized_body, error, refused_unless_authorized};
use super::read::unavailable;
use crate::domain::customer::CustomerId;
use crate::domain::feed::{Position, page_size};
use crate::domain::message::{MessageFilter, Status};
use crate::domain::suppression::{Lift, SuppressionFilter, SuppressionId};
use crate::store::Outbox;
use crate::store::Responses;

/// `?status=&customer=&since=&cursor=&limit=`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    status: Option<String>,
    customer: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `?since=&cursor=&limit=`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsesQuery {
    since: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `?customer=&category=&cursor=&limit=`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionsQuery {
    customer: Option<String>,
    category: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// The body of `DELETE /api/v1/suppressions/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiftBody {
    by: String,
    reason: String,
}

/// A 400 that says which parameter is wrong.
fn bad(message: impl Into<String>) -> Box<Response> {
    Box::new(error(StatusCode::BAD_REQUEST, message))
}

/// The query of a request that carries the API token, or the answer
/// refusing it.
fn authorized_query<T>(
    shared: &AppState,
    headers: &HeaderMap,
    query: Result<Query<T>, QueryRejection>,
) -> Result<T, Box<Response>> {
    if let Some(refused) = refused_unless_authorized(shared, headers) {
        return Err(Box::new(refused));
    }
    query
        .map(|Query(q)| q)
        .map_err(|rejection| bad(rejection.body_text()))
}

/// A parameter's value; an empty one (`?status=`, as a form or a URL
/// template leaves it) is no value.
fn given(raw: Option<&str>) -> Option<&str> {
    raw.filter(|v| !v.is_empty())
}

fn since(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, Box<Response>> {
    given(raw)
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    bad(format!(
                        "since {text:?} is not an RFC 3339 time ({e}), e.g. 2026-05-01T00:00:00Z (in a URL, write a + of an offset as %2B)"
                    ))
                })
        })
        .transpose()
}

fn position(cursor: Option<&str>) -> Result<Position, Box<Response>> {
    Position::from_cursor(cursor).map_err(|e| bad(e.to_string()))
}

fn limit(limit: Option<u32>) -> Result<u32, Box<Response>> {
    page_size(limit).map_err(bad)
}

fn customer(raw: Option<&str>) -> Result<Option<CustomerId>, Box<Response>> {
    given(raw)
        .map(|id| CustomerId::parse(id).map_err(|e| bad(format!("customer: {e}"))))
        .transpose()
}

/// `GET /api/v1/messages`: messages in the order they were planned.
pub async fn messages(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Response {
    let asked = match read_messages_query(&shared, &headers, query) {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    let (filter, after, limit) = asked;
    match shared.store.messages_page(&filter, after, limit).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => unavailable(&e),
    }
}

fn read_messages_query(
    shared: &AppState,
    headers: &HeaderMap,
    query: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<(MessageFilter, Position, u32), Box<Response>> {
    let q = authorized_query(shared, headers, query)?;
    let status = given(q.status.as_deref())
        .map(|s| Status::parse(s).map_err(|e| bad(format!("status: {e}"))))
        .transpose()?;
    let filter = MessageFilter {
        status,
        customer: customer(q.customer.as_deref())?,
        since: since(q.since.as_deref())?,
    };
    Ok((filter, position(q.cursor.as_deref())?, limit(q.limit)?))
}

/// `GET /api/v1/responses`: responses in the order they were recorded.
pub async fn responses(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ResponsesQuery>, QueryRejection>,
) -> Response {
    let asked = authorized_query(&shared, &headers, query).and_then(|q| {
        Ok((
            since(q.since.as_deref())?.unwrap_or(DateTime::UNIX_EPOCH),
            position(q.cursor.as_deref())?,
            limit(q.limit)?,
        ))
    });
    let (since, after, limit) = match asked {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    match shared.store.responses_page(since, after, limit).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/v1/suppressions`: who is not mailed, for what, and why.
pub async fn suppressions(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<SuppressionsQuery>, QueryRejection>,
) -> Response {
    let asked = authorized_query(&shared, &headers, query).and_then(|q| {
        let after = match q.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(SuppressionId::parse(cursor).map_err(|e| {
                bad(format!(
                    "cursor: {e}; pass the `next_cursor` of the last page, or leave it out"
                ))
            })?),
        };
        let filter = SuppressionFilter {
            customer: customer(q.customer.as_deref())?,
            category: given(q.category.as_deref()).map(str::to_owned),
        };
        Ok((filter, after, limit(q.limit)?))
    });
    let (filter, after, limit) = match asked {
        Ok(asked) => asked,
        Err(refused) => return *refused,
    };
    match shared.store.suppressions_page(&filter, after, limit).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => unavailable(&e),
    }
}

/// `DELETE /api/v1/suppressions/{id}` with `{"by": …, "reason": …}`: 200
/// with what was lifted, 404 when there is no such suppression.
pub async fn lift(
    State(shared): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match authorized_body(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let id = match SuppressionId::parse(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let lift = serde_json::from_slice::<LiftBody>(&body)
        .map_err(|e| {
            format!("the body must be JSON {{\"by\": \"who lifts it\", \"reason\": \"why\"}}: {e}")
        })
        .and_then(|b| Lift::new(&b.by, &b.reason));
    let lift = match lift {
        Ok(lift) => lift,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    match shared
        .store
        .lift_suppression(&id, &lift, shared.clock.now())
        .await
    {
        Ok(Some(lifted)) => {
            tracing::info!(suppression = %id, by = %lift.by, "a suppression was lifted");
            Json(lifted).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no suppression has id {id}; GET /api/v1/suppressions lists them"),
        ),
        Err(e) => unavailable(&e),
    }
}
