//! Signing in and out of the console. The sign-in form carries a token
//! that its own cookie repeats, so another site cannot post it; a failed
//! sign-in is recorded, and after too many (for one member, or from one
//! address) the form waits. A password is checked against its argon2id
//! hash off the async threads; a wrong id takes as long as a wrong
//! password, so the form does not tell who has an account.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    Member, SESSION_LIFETIME, SIGN_IN_FORM_LIFETIME, csrf_matches, forged, form_cookie, https,
    layout, session_cookie, set_cookie, sign_in_form_forged,
};
use crate::credentials;
use crate::domain::account::TeamMember;
use crate::domain::console::{AuditAction, AuditEntry, NewSession, Session, SignInLimit};
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::Team;

/// `GET /console/sign-in`: the form, with a fresh token in it and in its
/// cookie.
pub async fn form(State(shared): State<Arc<AppState>>) -> Response {
    shown(&shared, StatusCode::OK, "", "")
}

/// The form, with `error` above it and `entered` in the first field.
pub(super) fn shown(shared: &AppState, status: StatusCode, error: &str, entered: &str) -> Response {
    let https = https(shared);
    let token = credentials::new_token();
    let invalid = if error.is_empty() {
        ""
    } else {
        layout::INVALID
    };
    let error = layout::problem(error);
    let body = format!(
        "{error}<form method=\"post\" action=\"/console/sign-in\">\
         <input type=\"hidden\" name=\"form\" value=\"{token}\">\
         <label for=\"member\">Email or team id</label>\
         <input type=\"text\" id=\"member\" name=\"member\" autocomplete=\"username\" required value=\"{entered}\"{invalid}>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{invalid}>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <h2>Or sign in by mail</h2>\
         <form method=\"post\" action=\"/console/sign-in/link\">\
         <input type=\"hidden\" name=\"form\" value=\"{token}\">\
         <label for=\"link-member\">Email or team id</label>\
         <input type=\"text\" id=\"link-member\" name=\"member\" autocomplete=\"username\" required value=\"{entered}\">\
         <p><button type=\"submit\">Mail me a sign-in link</button></p></form>\
         <p>No password yet? Sign in by mail, or ask an operator to run <code>tend team set-password</code> with your team id.</p>",
        entered = escape(entered),
    );
    let mut response = (status, layout::bare("Sign in to tend", &body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie(
        https,
        form_cookie(https),
        &token,
        SIGN_IN_FORM_LIFETIME,
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The `[[team]]` member an entry names, by id or (in any case) address.
pub(super) fn member_named(shared: &AppState, entered: &str) -> Option<TeamMember> {
    shared
        .engine()
        .loaded
        .settings
        .team
        .iter()
        .find(|m| m.id == entered || m.email.eq_ignore_ascii_case(entered))
        .cloned()
}

/// What the audit counts an attempt under: the member's id when the entry
/// names one, else what was typed (bounded, in one case).
pub(super) fn key(member: Option<&TeamMember>, entered: &str) -> String {
    member.map_or_else(
        || entered.to_lowercase().chars().take(100).collect(),
        |m| m.id.clone(),
    )
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    form: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/sign-in`.
pub async fn submit(
    State(shared): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(sent): Form<SignIn>,
) -> Response {
    if sign_in_form_forged(&shared, &headers, &sent.form) {
        return forged();
    }
    let now = shared.clock.now();
    let address = shared.limiter.client(&headers, peer).to_string();
    let entered = sent.member.trim();
    let member = member_named(&shared, entered);
    let key = key(member.as_ref(), entered);
    // One check at a time per key: parallel guesses would all read the
    // count before any of them is recorded.
    let Some(_checking) = Checking::start(&key) else {
        return shown(
            &shared,
            StatusCode::TOO_MANY_REQUESTS,
            "A sign-in for this account is being checked. Try again in a moment.",
            entered,
        );
    };
    // Asked for every entry, known or not, so both take as long.
    let password = match shared.store.password_of(&key).await {
        Ok(password) => password.filter(|_| member.is_some()),
        Err(e) => return unavailable(&shared, &e, entered),
    };
    let limit = SignInLimit::DEFAULT;
    let since = limit.since(now, password.as_ref().map(|p| p.set_at));
    match shared
        .store
        .audited_since(AuditAction::SignInFailed, &key, &address, since)
        .await
    {
        Ok((by_member, by_address)) if limit.allows(by_member, by_address) => {}
        Ok(_) => {
            return limited(
                &shared,
                &format!(
                    "Too many failed sign-ins for this account or from your network. Wait {} minutes and try again, or ask an operator to set a new password.",
                    limit.window.num_minutes()
                ),
                limit,
                entered,
            );
        }
        Err(e) => return unavailable(&shared, &e, entered),
    }
    let hash = password.map(|p| p.hash);
    let typed = sent.password;
    let checked_hash = hash.clone();
    // Each check takes tens of milliseconds and about 19 MiB: a few at a
    // time, whatever arrives.
    let matches = match VERIFYING.acquire().await {
        Ok(_permit) => tokio::task::spawn_blocking(move || {
            credentials::verify_password(&typed, checked_hash.as_deref())
        })
        .await
        .unwrap_or(false),
        Err(_) => false,
    };
    let Some(member) = member.clone().filter(|_| matches) else {
        let why = match (&member, &hash) {
            (None, _) => "no such team member",
            (Some(_), None) => "no password set",
            (Some(_), Some(_)) => "wrong password",
        };
        let failed = AuditEntry {
            member: key,
            action: AuditAction::SignInFailed,
            detail: why.into(),
            address,
            at: now,
        };
        if let Err(e) = shared.store.record_audit(&failed).await {
            return unavailable(&shared, &e, entered);
        }
        return shown(
            &shared,
            StatusCode::UNAUTHORIZED,
            "That email or team id and password do not match. Check both and try again.",
            entered,
        );
    };
    start_session(&shared, &member, address, "", now).await
}

/// Signs `member` in: a new session, audited (`how` says by what, when
/// not by password), its cookie set, and the sign-in form's cleared; on
/// to the overview.
pub(super) async fn start_session(
    shared: &AppState,
    member: &TeamMember,
    address: String,
    how: &str,
    now: DateTime<Utc>,
) -> Response {
    let https = https(shared);
    let token = credentials::new_token();
    let session = NewSession {
        token_hash: credentials::token_hash(&token),
        session: Session {
            member: member.id.clone(),
            csrf: credentials::new_token(),
            created_at: now,
            expires_at: now + SESSION_LIFETIME,
        },
    };
    let signed_in = AuditEntry {
        member: member.id.clone(),
        action: AuditAction::SignIn,
        detail: how.to_owned(),
        address,
        at: now,
    };
    if let Err(e) = shared.store.open_session(&session).await {
        return unavailable(shared, &e, "");
    }
    if let Err(e) = shared.store.record_audit(&signed_in).await {
        return unavailable(shared, &e, "");
    }
    let mut response = Redirect::to("/console").into_response();
    for cookie in [
        set_cookie(https, session_cookie(https), &token, SESSION_LIFETIME),
        set_cookie(https, form_cookie(https), "", chrono::Duration::zero()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/sign-out`: ends the session here and in the store.
pub async fn sign_out(
    State(shared): State<Arc<AppState>>,
    member: Member,
    Form(sent): Form<Csrf>,
) -> Response {
    if !csrf_matches(&sent.csrf, &member.session.csrf) {
        return forged();
    }
    let https = https(&shared);
    let signed_out = AuditEntry {
        member: member.member.id.clone(),
        action: AuditAction::SignOut,
        detail: String::new(),
        address: member.address.clone(),
        at: shared.clock.now(),
    };
    if let Err(e) = shared.store.close_session(&member.token_hash).await {
        return unavailable(&shared, &e, "");
    }
    if let Err(e) = shared.store.record_audit(&signed_out).await {
        tracing::warn!(error = %e, "recording a sign-out failed");
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie(
        https,
        session_cookie(https),
        "",
        chrono::Duration::zero(),
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Password checks running at once, across every request.
static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Keys whose sign-in is being checked now.
static CHECKING: std::sync::LazyLock<Mutex<HashSet<String>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashSet::new()));

/// A key's sign-in being checked; the key is free again when it drops.
pub(super) struct Checking(String);

impl Checking {
    pub(super) fn start(key: &str) -> Option<Self> {
        let mut keys = CHECKING.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(key.to_owned()).then(|| Self(key.to_owned()))
    }
}

impl Drop for Checking {
    fn drop(&mut self) {
        CHECKING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// The form again with 429, saying why, and when to try again (the
/// limit's window).
pub(super) fn limited(shared: &AppState, why: &str, limit: SignInLimit, entered: &str) -> Response {
    let mut response = shown(shared, StatusCode::TOO_MANY_REQUESTS, why, entered);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(limit.window.num_seconds().max(0) as u64),
    );
    response
}

/// The store failed: the form again, saying so (nothing was changed).
pub(super) fn unavailable(shared: &AppState, e: &crate::store::Error, entered: &str) -> Response {
    tracing::warn!(error = %e, "the console's sign-in could not use the store");
    shown(
        shared,
        StatusCode::SERVICE_UNAVAILABLE,
        "The store cannot be reached just now. Try again in a minute.",
        entered,
    )
}
