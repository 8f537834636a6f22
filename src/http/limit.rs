//! Per-address rate limiting of the links in mail (`/r/`, `/c/`, `/u/`):
//! a person follows a few links a minute; a client making hundreds is a
//! script guessing tokens or a scanner stuck in a loop, and gets 429 before
//! any token is checked or any row is read.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::page::page;
use crate::daemon::Shared;

/// The limiter of one daemon: `http.rate_per_minute` requests a minute per
/// client address, in bursts of as many. Fixed at start (a reload does not
/// change it).
pub struct Limiter {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// The header naming the client behind a reverse proxy, lower-case.
    client_ip_header: Option<String>,
}

impl Limiter {
    pub fn new(rate_per_minute: u32, client_ip_header: &str) -> Self {
        let header = client_ip_header.trim().to_ascii_lowercase();
        Self {
            per_address: NonZeroU32::new(rate_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            client_ip_header: (!header.is_empty()).then_some(header),
        }
    }

    /// Whether one more request from `client` may go ahead.
    fn admit(&self, client: IpAddr) -> bool {
        self.per_address
            .as_ref()
            .is_none_or(|limiter| limiter.check_key(&client).is_ok())
    }

    /// Forgets addresses whose allowance has refilled, so the table holds
    /// only recent clients. Housekeeping calls it.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address: from the configured proxy header (its first,
    /// left-most entry), else the peer.
    fn client(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        self.client_ip_header
            .as_deref()
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .and_then(|first| first.trim().parse().ok())
            .unwrap_or(peer.ip())
    }
}

/// The middleware: 429 with a page and `Retry-After` when over the limit.
pub async fn per_address(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = shared.limiter.client(request.headers(), peer);
    if shared.limiter.admit(client) {
        return next.run(request).await;
    }
    crate::telemetry::request_limited();
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    let mut refused = page(
        company,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "<p>We received a great many requests from your network in the last minute. Please wait a minute and try the link again.</p>",
    );
    refused
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_allowance() {
        let limiter = Limiter::new(3, "");
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.admit(a)));
        assert!(!limiter.admit(a), "the fourth in a minute waits");
        assert!(limiter.admit(b), "another address is not held back");
        let unlimited = Limiter::new(0, "");
        assert!((0..10_000).all(|_| unlimited.admit(a)));
    }

    #[test]
    fn the_proxy_header_names_the_client_only_when_configured() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        let direct = Limiter::new(1, "");
        assert_eq!(direct.client(&headers, peer), peer.ip());
        let proxied = Limiter::new(1, "X-Forwarded-For");
        assert_eq!(
            proxied.client(&headers, peer),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(proxied.client(&headers, peer), peer.ip());
    }
}
