//! The ingestion API: `POST /api/v1/customers` and `POST /api/v1/events`
//! take a batch (a JSON array of objects, or one JSON object per line) with
//! the same validation and per-row errors as `tend import`. A bearer token
//! guards them, compared in constant time.
//!
//! A body that is not JSON is refused whole (400) and writes nothing, so the
//! sender can fix and resend it; rows that are JSON but invalid are listed
//! (422) while the valid rows of the batch are kept, as an import keeps them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::import::{self, Defaults, Kind, NumberedRow, RowNote};
use crate::store::Source;

/// `POST /api/v1/customers[?strict=true]`: with `strict`, a contact naming
/// an account not stored is rejected instead of creating it.
pub async fn customers(
    State(shared): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ingest(&shared, &headers, body, Kind::Customers, query.as_deref()).await
}

/// The `strict` of a query string (`strict`, `strict=true|false|1|0`, in
/// any case), or why the query cannot be used.
fn strict(query: &str) -> Result<bool, String> {
    let mut strict = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if key != "strict" {
            return Err(format!(
                "unknown query parameter {key:?}; the only one is strict=true (reject contacts of unknown accounts)"
            ));
        }
        strict = match value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(format!(
                    "strict={other:?} is not true or false; write strict=true to reject contacts of unknown accounts"
                ));
            }
        };
    }
    Ok(strict)
}

pub async fn accounts(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ingest(&shared, &headers, body, Kind::Accounts, None).await
}

pub async fn events(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    ingest(&shared, &headers, body, Kind::Events, None).await
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Checks the bearer token against `http.api_token`; the error says why
/// the request is refused.
fn authorize(shared: &AppState, headers: &HeaderMap) -> Result<(), &'static str> {
    let engine = shared.engine();
    let Some(expected) = engine.loaded.secrets.api_token.as_ref() else {
        return Err("the API is off: set http.api_token_file (or http.api_token) and reload tend");
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(given) = given else {
        return Err("send the API token as an Authorization: Bearer header");
    };
    if bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err("the API token is wrong")
    }
}

/// Refuses a request without the right bearer token before a byte of its
/// body is read (401; the connection then closes with the body unread).
pub async fn require_token(
    State(shared): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match authorize(&shared, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => unauthorized(why),
    }
}

/// The body of an authorized request (the token is checked again, so a
/// route added without [`require_token`] is still closed), or the answer
/// that refuses it.
/// The response refusing a request without the API's bearer token, if it
/// has none.
pub(super) fn refused_unless_authorized(
    shared: &AppState,
    headers: &HeaderMap,
) -> Option<Response> {
    authorize(shared, headers).err().map(unauthorized)
}

pub(super) fn authorized_body(
    shared: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    authorize(shared, headers).map_err(|why| Box::new(unauthorized(why)))?;
    body.map_err(|rejection| Box::new(error(rejection.status(), rejection.body_text())))
}

/// `POST /api/v1/inbound`: one raw RFC 5322 message (a reply, a bounce, a
/// complaint) from an inbound-mail webhook. Whatever it is, it is kept:
/// 200 with what it was and what it answered; 400 only for an empty body.
pub async fn inbound(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match authorized_body(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return error(
            StatusCode::BAD_REQUEST,
            "the body is empty; send the raw message (RFC 5322) as the body",
        );
    }
    let engine = shared.engine();
    let rules = crate::inbound::Rules::new(&engine.loaded.settings, &engine.signer);
    match crate::inbound::take(
        &shared.store,
        &rules,
        &body,
        Source::Webhook,
        shared.clock.now(),
    )
    .await
    {
        Ok(taken) => {
            let (message, customer, suppressed, duplicate) = match &taken.recorded {
                crate::store::InboundRecorded::Duplicate => (None, None, false, true),
                crate::store::InboundRecorded::Kept {
                    message,
                    customer,
                    suppressed,
                } => (
                    message.map(|m| m.to_string()),
                    customer.as_ref().map(|c| c.as_str().to_owned()),
                    *suppressed,
                    false,
                ),
            };
            Json(json!({
                "classification": taken.verdict.name(),
                "message_id": message,
                "customer_id": customer,
                "suppressed": suppressed,
                "duplicate": duplicate,
                "summary": taken.describe(),
            }))
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "taking inbound mail failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; send the message again"),
            )
        }
    }
}

async fn ingest(
    shared: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
    query: Option<&str>,
) -> Response {
    let body = match authorized_body(shared, headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let strict = match query.map(strict) {
        None => false,
        Some(Ok(strict)) => strict,
        Some(Err(message)) => return error(StatusCode::BAD_REQUEST, message),
    };
    let rows = match parse_rows(&body) {
        Ok(rows) => rows,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let engine = shared.engine();
    // The configuration was validated before it was loaded: the zone exists.
    let defaults = match Defaults::from_settings(&engine.loaded.settings) {
        Ok(defaults) => Defaults { strict, ..defaults },
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut notes: Vec<RowNote> = Vec::new();
    let written = import::import_rows(
        &shared.store,
        kind,
        rows,
        &defaults,
        shared.clock.now(),
        |note| notes.push(note),
    )
    .await;
    let outcome = match written {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "ingestion failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; send the batch again"),
            );
        }
    };
    let label = match kind {
        Kind::Customers => "customers",
        Kind::Accounts => "accounts",
        Kind::Events => "events",
    };
    crate::telemetry::ingested(label, outcome.imported + outcome.updated, outcome.rejected);
    if outcome.imported + outcome.updated > 0 {
        // New customers and events may make steps due now.
        shared.wake_plan.notify_one();
    }
    let listed = |kept: bool| -> Vec<Value> {
        notes
            .iter()
            .filter(|n| n.kept == kept)
            .map(|n| json!({ "line": n.line, "reason": n.reason }))
            .collect()
    };
    let (errors, warnings) = (listed(false), listed(true));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = json!({
        "imported": outcome.imported,
        "updated": outcome.updated,
        "rejected": outcome.rejected,
        "errors": errors,
        "warnings": warnings,
    });
    (status, Json(body)).into_response()
}

/// A JSON array of objects, or one object per line. Each row comes with the
/// number that names it: its place in the array, or its line.
fn parse_rows(body: &[u8]) -> Result<Vec<NumberedRow>, String> {
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("the body is not UTF-8 ({e}); send JSON in UTF-8"))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(
            "the body is empty; send a JSON array of objects, or one JSON object per line".into(),
        );
    }
    let as_row = |n: usize, value: Value| match value {
        Value::Object(map) => Ok((n, map)),
        other => Err(format!(
            "row {n} is {}, not a JSON object; send one object per row",
            kind_of(&other)
        )),
    };
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(text).map_err(|e| {
            format!(
                "the body is not valid JSON: {e}; send a JSON array of objects, or one JSON object per line"
            )
        })?;
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| as_row(i + 1, v))
            .collect();
    }
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}: not valid JSON ({e}); send one JSON object per line, or a JSON array",
                i + 1
            )
        })?;
        rows.push(as_row(i + 1, value)?);
    }
    Ok(rows)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_lines_are_both_batches() {
        let rows = parse_rows(br#"[{"id":"a"},{"id":"b"}]"#).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, 2);
        let rows = parse_rows(b"{\"id\":\"a\"}\n\n{\"id\":\"b\"}\n").unwrap();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn what_is_not_json_is_named() {
        let e = parse_rows(b"{\"id\":\"a\"}\n{oops}\n").unwrap_err();
        assert!(e.starts_with("line 2: not valid JSON"), "{e}");
        let e = parse_rows(b"[{\"id\":").unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse_rows(b"[1]").unwrap_err();
        assert!(e.contains("row 1 is a number"), "{e}");
        assert!(parse_rows(b"  ").unwrap_err().contains("empty"));
        assert!(parse_rows(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }
}
