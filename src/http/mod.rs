//! The HTTP server (axum): health, readiness and metrics for operators, and
//! the bearer-token ingestion API for integrations, and the links customers
//! follow from messages (tracked links, survey answers, unsubscribe, the
//! message as a web page).

mod api;
mod click;
mod health;
mod incidents;
mod limit;
mod link;
mod page;
mod preferences;
mod survey;
mod view;

pub use limit::Limiter;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::daemon::Shared;

/// The largest request body accepted: a batch of rows well beyond what an
/// integration sends at once, far below what would strain memory.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Every route, with the shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    // The links in mail are public: each client address is rate-limited.
    let links = Router::new()
        .route("/c/{token}", get(click::follow))
        .route("/r/{token}/{value}", get(survey::show).post(survey::answer))
        .route("/v/{token}", get(view::show))
        .route(
            "/u/{token}",
            get(preferences::show).post(preferences::choose),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            limit::per_address,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/customers", post(api::customers))
        .route("/api/v1/events", post(api::events))
        .route("/api/v1/inbound", post(api::inbound))
        .route("/api/v1/incidents", post(incidents::open))
        .route("/api/v1/incidents/{id}/updates", post(incidents::update))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .merge(links)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Serves until the daemon stops; requests in progress finish first.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let stop = shared.stop.clone();
    let app = router(shared).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the HTTP server stopped");
    }
}
