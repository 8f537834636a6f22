//! The signed token in every link customers follow from a message: checked
//! the same way by each route, refused with the same pages.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::page::{escape, page, refused};
use crate::config::settings::Company;
use crate::engine::Engine;
use crate::token::{Claims, Purpose};

/// Why a link cannot be used.
pub enum Refusal {
    /// Forged, altered, cut short, or for another route.
    Invalid(String),
    /// Genuine, but older than `http.link_lifetime`.
    Expired(Claims),
}

impl Refusal {
    /// The page the customer sees: 400 for a broken link, 410 for an old one.
    pub fn page(&self, company: &Company) -> Response {
        match self {
            Self::Invalid(why) => refused(company, why),
            Self::Expired(claims) if claims.purpose == Purpose::Click => {
                match web_page(&claims.value) {
                    Some(url) => page(
                        company,
                        StatusCode::GONE,
                        "This link has expired",
                        &format!(
                            "<p>The link in that email is too old to be counted any more. The page it led to is <a href=\"{0}\">{0}</a>.</p>",
                            escape(url.as_str())
                        ),
                    ),
                    None => refused(company, "the link does not lead to a web page"),
                }
            }
            Self::Expired(_) => page(
                company,
                StatusCode::GONE,
                "This link has expired",
                "<p>The email this link came in is too old to be answered any more, so nothing was recorded. Thank you for wanting to tell us: you can always reply to any of our emails.</p>",
            ),
        }
    }
}

/// The claims of `token` for `purpose`, if the link may still be used.
/// Unsubscribe links never expire: a customer must always be able to stop
/// mail, however old the message.
pub fn claims(
    engine: &Engine,
    token: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Claims, Refusal> {
    let claims = engine
        .signer
        .verify(token, purpose)
        .map_err(|e| Refusal::Invalid(e.to_string()))?;
    let lifetime = engine.loaded.settings.http.link_lifetime.as_chrono();
    if purpose != Purpose::Unsubscribe && claims.outlived(lifetime, now) {
        return Err(Refusal::Expired(claims));
    }
    Ok(claims)
}

/// The URL a tracked link leads to, if it is a web page. Parsed and
/// serialized again: the result is plain ASCII (punycode host,
/// percent-encoded path), so it always fits a Location header.
pub fn web_page(raw: &str) -> Option<url::Url> {
    url::Url::parse(raw)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}
