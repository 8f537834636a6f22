//! `POST /api/v1/segment`: a Segment or RudderStack webhook destination
//! feeds tend without code. The calls (`identify`, `group`, `track`; one,
//! an array, or `{"batch": […]}`) become import rows (`import::segment`),
//! laid over the stored records they name, and are written with the
//! import's validation: 200 when every call was taken, 422 listing each
//! call refused (by its number in the batch) while the others are kept, as
//! the ingestion API does. Calls tend does not use (`page`, anonymous
//! calls) are listed as skipped and refuse nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::api::{authorized_body, error};
use crate::domain::account::AccountId;
use crate::domain::customer::CustomerId;
use crate::import::segment;
use crate::import::{self, Defaults, Kind, NumberedRow, RowNote};
use crate::store::{self, Accounts, Customers};

pub async fn ingest(
    State(shared): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match authorized_body(&shared, &headers, body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let calls = match segment::calls(&body) {
        Ok(calls) => calls,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (people, accounts) = segment::named(&calls);
    let stored = match stored(&shared.store, &people, &accounts).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "reading what a Segment batch names failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; send the batch again"),
            );
        }
    };
    let now = shared.clock.now();
    let mut rows = segment::rows(calls, &stored.0, &stored.1);
    // A call without a time happened when it arrived.
    for (_, event) in &mut rows.events {
        event
            .entry("occurred_at")
            .or_insert_with(|| Value::String(now.to_rfc3339()));
    }
    let engine = shared.engine();
    let defaults = match Defaults::from_settings(&engine.loaded.settings) {
        Ok(defaults) => defaults,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut notes: Vec<RowNote> = Vec::new();
    let mut taken = 0;
    for (kind, batch) in [
        (Kind::Accounts, rows.accounts),
        (Kind::Customers, rows.customers),
        (Kind::Events, rows.events),
    ] {
        match write(&shared, kind, batch, &defaults, now, &mut notes).await {
            Ok(n) => taken += n,
            Err(e) => {
                tracing::error!(error = %e, "writing a Segment batch failed");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{e}; send the batch again (people and accounts written before the failure are written again with the same values, and events with a messageId are kept once)"
                    ),
                );
            }
        }
    }
    if taken > 0 {
        shared.wake_plan.notify_one();
    }
    let refused: Vec<Value> = notes
        .iter()
        .filter(|n| !n.kept)
        .map(|n| json!({ "call": n.line, "reason": n.reason }))
        .collect();
    let warnings: Vec<Value> = notes
        .iter()
        .filter(|n| n.kept)
        .map(|n| json!({ "call": n.line, "reason": n.reason }))
        .collect();
    let skipped: Vec<Value> = rows
        .skipped
        .iter()
        .map(|(n, reason)| json!({ "call": n, "reason": reason }))
        .collect();
    let status = if refused.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = json!({
        "written": taken,
        "refused": refused,
        "skipped": skipped,
        "warnings": warnings,
    });
    (status, Json(body)).into_response()
}

/// The stored people and accounts a batch names, as import rows.
type Stored = (
    HashMap<String, Map<String, Value>>,
    HashMap<String, Map<String, Value>>,
);

async fn stored(
    store: &(impl Customers + Accounts),
    people: &[String],
    accounts: &[String],
) -> Result<Stored, store::Error> {
    let mut found = (HashMap::new(), HashMap::new());
    for id in people {
        let Ok(parsed) = CustomerId::parse(id) else {
            continue;
        };
        if let Some(c) = store.customer(&parsed).await? {
            found.0.insert(id.clone(), c.record.as_row());
        }
    }
    let ids: Vec<AccountId> = accounts
        .iter()
        .filter_map(|a| AccountId::parse(a).ok())
        .collect();
    for (id, account) in store.accounts_of(&ids).await? {
        found.1.insert(id.to_string(), account.record.as_row());
    }
    Ok(found)
}

/// Writes one kind's rows, noting each refused; how many were written.
async fn write(
    shared: &AppState,
    kind: Kind,
    rows: Vec<NumberedRow>,
    defaults: &Defaults,
    now: chrono::DateTime<chrono::Utc>,
    notes: &mut Vec<RowNote>,
) -> Result<u64, import::ImportError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let outcome =
        import::import_rows(&shared.store, kind, rows, defaults, now, |n| notes.push(n)).await?;
    let label = match kind {
        Kind::Customers => "customers",
        Kind::Accounts => "accounts",
        Kind::Events => "events",
    };
    crate::telemetry::ingested(label, outcome.imported + outcome.updated, outcome.rejected);
    Ok(outcome.imported + outcome.updated)
}
