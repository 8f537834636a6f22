//! The console: the pages success managers read tend through, signed in
//! as a `[[team]]` member. This file owns who is asking: the session
//! cookie, the CSRF token every form carries, and the client's address;
//! the pages are in the files beside it.

mod account;
mod chart;
mod coming;
mod customer;
mod incidents;
mod layout;
mod link;
mod overview;
mod sign_in;
mod suppressions;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;

use super::AppState;
use crate::credentials;
use crate::domain::account::TeamMember;
use crate::domain::console::Session;
use crate::store::Team;

pub use overview::Overview;

/// How long a session lasts from sign-in: a working day and some.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// How long a sign-in form may be left open before it is sent.
const SIGN_IN_FORM_LIFETIME: Duration = Duration::hours(1);

/// The console's routes; forms are read whole by the same layer as the
/// links' (small forms, refused past the limit).
pub fn routes(shared: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-in/link", post(link::ask))
        .route(
            "/console/sign-in/link/{token}",
            get(link::confirm).post(link::enter),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/accounts/{id}", get(account::show))
        .route("/console/customers", get(customer::find))
        .route("/console/customers/{id}", get(customer::show))
        .route("/console/next", get(coming::next))
        .route("/console/preview", get(coming::preview))
        .route("/console/preview/html", get(coming::preview_html))
        .route("/console/incidents", get(incidents::list))
        .route("/console/incidents/preview", post(incidents::preview))
        .route("/console/incidents/open", post(incidents::open))
        .route("/console/incidents/{id}", get(incidents::show))
        .route("/console/incidents/{id}/{change}", post(incidents::change))
        .route("/console/suppressions", get(suppressions::list))
        .route(
            "/console/suppressions/lift",
            get(suppressions::confirm).post(suppressions::lift),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            super::body::links,
        ))
        // Each client address is limited as on the links in mail, which
        // also bounds how fast one network can try passwords.
        .route_layer(middleware::from_fn_with_state(
            shared,
            super::limit::per_address,
        ))
        .layer(middleware::map_response(private))
}

/// Console pages hold customers' figures and the session's form token:
/// no cache, shared or private, keeps them.
async fn private(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Whether the console is reached over HTTPS (its public URL says so):
/// then cookies are `Secure` and take the `__Host-` prefix, which binds
/// them to this host and path `/`.
fn https(shared: &AppState) -> bool {
    shared
        .engine()
        .loaded
        .settings
        .http
        .public_url
        .starts_with("https://")
}

/// The session cookie's name.
fn session_cookie(https: bool) -> &'static str {
    if https {
        "__Host-tend_session"
    } else {
        "tend_session"
    }
}

/// The sign-in form's own cookie (the token its form repeats).
fn form_cookie(https: bool) -> &'static str {
    if https {
        "__Host-tend_sign_in"
    } else {
        "tend_sign_in"
    }
}

/// A `Set-Cookie` value: HttpOnly (no script reads it), SameSite=Strict
/// (no other site's link or form sends it), and Secure over HTTPS.
fn set_cookie(https: bool, name: &str, value: &str, max_age: Duration) -> String {
    let path = if https { "/" } else { "/console" };
    let secure = if https { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.num_seconds().max(0)
    )
}

/// Whether a sign-in form (sign-in, asking for a link, using one) came
/// without the token its own cookie repeats: then another site sent it.
fn sign_in_form_forged(shared: &AppState, headers: &HeaderMap, sent: &str) -> bool {
    let https = https(shared);
    !csrf_matches(
        sent,
        cookie(headers, form_cookie(https)).unwrap_or_default(),
    )
}

/// The value of cookie `name` in the request, if sent once. Sent twice,
/// one may have been planted by a neighbouring host (over plain HTTP a
/// sibling domain can set it), so neither is taken.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// A signed-in team member, from the session cookie; without a valid one
/// a page sends the visitor to sign in, and a form is refused.
pub struct Member {
    pub member: TeamMember,
    pub session: Session,
    /// The SHA-256 of the cookie's token: the session's key in the store.
    pub token_hash: String,
    pub address: String,
}

/// Why a request has no [`Member`].
pub enum Refusal {
    /// No session, or one that ended or was never issued here.
    SignIn,
    /// The store could not be read.
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/console/sign-in").into_response(),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The store cannot be read just now; try again in a minute.",
            )
                .into_response(),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Member {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let https = https(shared);
        let token = cookie(&parts.headers, session_cookie(https)).ok_or(Refusal::SignIn)?;
        let token_hash = credentials::token_hash(token);
        let session = shared
            .store
            .session(&token_hash, shared.clock.now())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "reading a console session failed");
                Refusal::Unavailable
            })?
            .ok_or(Refusal::SignIn)?;
        // A member removed from `[[team]]` is signed out with the next
        // request, whatever their session says.
        let member = shared
            .engine()
            .loaded
            .settings
            .team
            .iter()
            .find(|m| m.id == session.member)
            .cloned()
            .ok_or(Refusal::SignIn)?;
        Ok(Self {
            member,
            session,
            token_hash,
            address: address(shared, parts),
        })
    }
}

impl Member {
    /// A page of the console for this member, with `status`.
    pub fn page(&self, status: StatusCode, title: &str, body: &str) -> Response {
        (
            status,
            axum::response::Html(layout::page(
                title,
                &self.member.name,
                &self.session.csrf,
                body,
            )),
        )
            .into_response()
    }

    /// The store failed while making page `title`: nothing was changed.
    pub fn unavailable(&self, title: &str, e: &crate::store::Error) -> Response {
        tracing::warn!(error = %e, page = title, "a console page could not read the store");
        self.page(
            StatusCode::SERVICE_UNAVAILABLE,
            title,
            "<p class=\"error\" role=\"alert\">The store cannot be reached just now; nothing was changed. Reload the page in a minute.</p>",
        )
    }
}

impl Member {
    /// What refuses the change a form asks for, if anything: its token
    /// must be the session's (else it came from elsewhere) and this
    /// member's role a manager's.
    pub fn refusal(&self, csrf: &str) -> Option<Response> {
        if !csrf_matches(csrf, &self.session.csrf) {
            return Some(forged());
        }
        if !self.member.role.may_change() {
            return Some(read_only(self));
        }
        None
    }
}

/// A viewer asked to change something: refused, saying who can.
fn read_only(member: &Member) -> Response {
    member.page(
        StatusCode::FORBIDDEN,
        "Managers only",
        &format!(
            "<p>You are signed in as a {}, who can read every page but change nothing. Ask a team member whose role is <code>manager</code>, or an operator to change your <code>role</code> under <code>[[team]]</code>.</p>",
            member.member.role.as_str()
        ),
    )
}

/// The client's address, as the per-address limits see it.
fn address(shared: &AppState, parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| shared.limiter.client(&parts.headers, *peer).to_string())
        .unwrap_or_default()
}

/// A value as one segment of a path (`/console/customers/{id}`): every
/// byte but the unreserved ones (RFC 3986) percent-encoded, so a space
/// is `%20`, which the router decodes (a form's `+` it would not).
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A value inside a link's query string (`?customer=…`).
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Whether a posted form's CSRF token is the session's.
fn csrf_matches(sent: &str, expected: &str) -> bool {
    !sent.is_empty() && credentials::same_token(sent, expected)
}

/// A form whose token is missing or wrong: refused, with what to do.
fn forged() -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            "This form has expired",
            "<p>The form was not sent from this console, or was open too long. Go back, reload the page and send it again.</p>",
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_keeps_only_unreserved_bytes() {
        assert_eq!(segment("cust-001_a.b~"), "cust-001_a.b~");
        assert_eq!(segment("Ada Lovelace/2"), "Ada%20Lovelace%2F2");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn a_cookie_sent_twice_is_taken_as_none() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; tend_session=x".parse().unwrap());
        assert_eq!(cookie(&headers, "tend_session"), Some("x"));
        headers.append(header::COOKIE, "tend_session=y".parse().unwrap());
        assert_eq!(cookie(&headers, "tend_session"), None);
    }
}
