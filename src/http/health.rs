//! `GET /healthz` (the process answers), `GET /readyz` (the store answers,
//! the configuration is loaded, the scheduler is alive) and `GET /metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::daemon::Shared;
use crate::store::Store;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let store =
        match tokio::time::timeout(std::time::Duration::from_secs(2), shared.store.ping()).await {
            Ok(Ok(())) => "ok".to_owned(),
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

pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are off\n").into_response(),
    }
}
