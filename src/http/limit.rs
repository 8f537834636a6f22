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

use super::AppState;
use super::page::page;
use crate::config::settings::Http;

/// The limiter of one daemon: `http.rate_per_minute` requests a minute per
/// client address, in bursts of as many. Fixed at start (a reload does not
/// change it).
pub struct Limiter {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// The header naming the client behind a reverse proxy, lower-case.
    client_ip_header: Option<String>,
    /// How many proxies append to that header (`http.trusted_proxies`).
    trusted_proxies: usize,
}

impl Limiter {
    pub fn new(http: &Http) -> Self {
        let header = http.client_ip_header.trim().to_ascii_lowercase();
        Self {
            per_address: NonZeroU32::new(http.rate_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            client_ip_header: (!header.is_empty()).then_some(header),
            trusted_proxies: usize::try_from(http.trusted_proxies).unwrap_or(usize::MAX),
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

    /// The client's address: from the configured proxy header, else the
    /// peer.
    pub(super) fn client(&self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        let Some(name) = self.client_ip_header.as_deref() else {
            return peer.ip();
        };
        // Several lines of the header are one list, in order (RFC 9110).
        let hops: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        forwarded_client(&hops, self.trusted_proxies).unwrap_or(peer.ip())
    }
}

/// The client in a proxy header's list of hops (`client, proxy1, proxy2`):
/// each proxy appends the address it was reached from, so the entry
/// `trusted` places from the right was written by the outermost proxy we
/// trust, while everything left of it came from the client and proves
/// nothing. `None` (use the peer) when the list is shorter than the proxies
/// that should have written it, the entry is not an address, or no proxy
/// is trusted: a client cannot then pick its own address.
pub fn forwarded_client(hops: &[&str], trusted: usize) -> Option<IpAddr> {
    let at = hops.len().checked_sub(trusted).filter(|_| trusted > 0)?;
    parse_hop(hops[at].trim())
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or with a
/// port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The middleware: 429 with a page and `Retry-After` when over the limit.
pub async fn per_address(
    State(shared): State<Arc<AppState>>,
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

    fn settings(rate: u32, header: &str, trusted: u32) -> Http {
        Http {
            rate_per_minute: rate,
            client_ip_header: header.into(),
            trusted_proxies: trusted,
            ..Http::default()
        }
    }

    #[test]
    fn each_address_has_its_own_allowance() {
        let limiter = Limiter::new(&settings(3, "", 1));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.admit(a)));
        assert!(!limiter.admit(a), "the fourth in a minute waits");
        assert!(limiter.admit(b), "another address is not held back");
        let unlimited = Limiter::new(&settings(0, "", 1));
        assert!((0..10_000).all(|_| unlimited.admit(a)));
    }

    #[test]
    fn the_client_is_counted_from_the_right() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // One proxy: it appended the address it saw, the right-most.
        assert_eq!(
            forwarded_client(&["203.0.113.9"], 1),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            forwarded_client(&["198.51.100.7", " 203.0.113.9"], 1),
            Some(ip("203.0.113.9")),
            "the left-most is the client's own claim"
        );
        // Two proxies: the outer one wrote the client, the inner one the
        // outer proxy.
        assert_eq!(
            forwarded_client(&["1.1.1.1", "203.0.113.9", "10.0.0.2"], 2),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(forwarded_client(&["10.0.0.2"], 2), None, "too short");
        assert_eq!(forwarded_client(&["203.0.113.9"], 0), None);
        assert_eq!(forwarded_client(&[], 1), None);
        assert_eq!(forwarded_client(&["1.1.1.1", "unknown"], 1), None);
        assert_eq!(
            forwarded_client(&["[2001:db8::1]:4711"], 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            forwarded_client(&["203.0.113.9:4711"], 1),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn the_proxy_header_names_the_client_only_when_configured() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        let direct = Limiter::new(&settings(1, "", 1));
        assert_eq!(direct.client(&headers, peer), peer.ip());
        let proxied = Limiter::new(&settings(1, "X-Forwarded-For", 1));
        assert_eq!(
            proxied.client(&headers, peer),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        // A second line of the header continues the list.
        headers.append("x-forwarded-for", "192.0.2.44".parse().unwrap());
        assert_eq!(
            proxied.client(&headers, peer),
            "192.0.2.44".parse::<IpAddr>().unwrap()
        );
        let two = Limiter::new(&settings(1, "X-Forwarded-For", 2));
        assert_eq!(
            two.client(&headers, peer),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(proxied.client(&headers, peer), peer.ip());
    }
}
