//! `GET /healthz` (the process answers), `GET /readyz` (the store answers
//! and takes writes, the configuration is loaded, the scheduler is alive)
//! and `GET /metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde_json::json;

use super::AppState;
use crate::store::Upkeep;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(shared): State<Arc<AppState>>) -> Response {
    let store = match tokio::time::timeout(Duration::from_secs(2), shared.store.ping()).await {
        Ok(Ok(())) => writes(&shared.store).await,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the store did not answer within 2 s".to_owned(),
    };
    let scheduler = if shared.scheduler_alive() {
        "ok"
    } else {
        "the scheduler has not woken delivery for three intervals"
    };
    let ready = store == "ok" && scheduler == "ok";
    let body = json!({
        "ready": ready,
        "store": store,
        "config": "ok",
        "scheduler": scheduler,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// "ok" unless writes fail. A full disk answers every read and refuses
/// every write, so a store that answers is not yet ready: while writes have
/// been failing, one small probe write says whether they succeed again
/// (only then: a probe on every request would put each readiness check
/// in the queue for the one SQLite writer).
async fn writes(store: &impl Upkeep) -> String {
    let Some(failure) = store.write_failure() else {
        return "ok".to_owned();
    };
    match tokio::time::timeout(Duration::from_secs(2), store.probe_write()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!(
            "writes have failed since {}: {e}",
            failure.since.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        Err(_) => format!(
            "writes have failed since {}: {}",
            failure.since.to_rfc3339_opts(SecondsFormat::Secs, true),
            failure.reason
        ),
    }
}

pub async fn metrics(State(shared): State<Arc<AppState>>) -> Response {
    match &shared.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off\n").into_response(),
    }
}
