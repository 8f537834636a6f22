//! The HTTP server (axum on hyper): health, readiness and metrics for operators, and
//! the bearer-token ingestion API for integrations, and the links customers
//! follow from messages (tracked links, survey answers, unsubscribe, the
//! message as a web page).

mod api;
mod body;
mod click;
mod console;
mod headers;
mod health;
mod incidents;
mod limit;
mod link;
mod lists;
mod page;
mod preferences;
mod read;
mod segment;
mod server;
mod state;
mod survey;
mod view;

pub use headers::CONTENT_SECURITY_POLICY_VALUE;
pub use limit::{Limiter, forwarded_client};
pub use server::Limits;
pub use state::AppState;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};

/// Every route, with the shared state.
pub fn router(shared: Arc<AppState>) -> Router {
    // The links in mail are public: each client address is rate-limited,
    // and a body is a small form.
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
            body::links,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            limit::per_address,
        ));
    // The token is checked (the outer layer) before a byte of the body is
    // read: a client without it cannot make tend hold its body.
    let api = Router::new()
        .route("/api/v1/customers", post(api::customers))
        .route(
            "/api/v1/customers/{id}",
            get(read::customer).delete(read::erase),
        )
        .route("/api/v1/customers/{id}/export", get(read::export))
        .route("/api/v1/accounts/{id}", get(read::account))
        .route("/api/v1/messages", get(lists::messages))
        .route("/api/v1/responses", get(lists::responses))
        .route("/api/v1/suppressions", get(lists::suppressions))
        .route("/api/v1/suppressions/{id}", delete(lists::lift))
        .route("/api/v1/accounts", post(api::accounts))
        .route("/api/v1/events", post(api::events))
        .route("/api/v1/segment", post(segment::ingest))
        .route("/api/v1/inbound", post(api::inbound))
        .route("/api/v1/incidents", post(incidents::open))
        .route("/api/v1/incidents/{id}/updates", post(incidents::update))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/cancel", post(incidents::cancel))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            body::api,
        ))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            api::require_token,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(api)
        .merge(links)
        .merge(console::routes(Arc::clone(&shared)))
        // The layers above have read every body a handler takes, within
        // its route's limit.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::map_response(headers::secure))
        .with_state(shared)
}

/// Serves until the daemon stops; requests in progress finish first.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<AppState>) {
    let mut limits = Limits::from_settings(&shared.engine().loaded.settings.http);
    limits.max_connections = server::connections_that_fit(limits.max_connections);
    let stop = shared.stop.clone();
    server::serve(listener, router(shared), limits, stop).await;
}
