//! Signing in by a link mailed to a team member's `[[team]]` address. The
//! link works once, within [`LINK_LIFETIME`]; following it shows a button
//! rather than signing in at once, because mail scanners open links in
//! mail and would spend it, and because a session cookie set on a
//! navigation that began in a mail client's page is one the browser then
//! withholds (`SameSite=Strict`). Asking is limited like failed
//! sign-ins, and answers the same whether the entry names anyone.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::sign_in::{self, limited, member_named, shown, start_session, unavailable};
use super::{
    SIGN_IN_FORM_LIFETIME, forged, form_cookie, https, layout, set_cookie, sign_in_form_forged,
};
use crate::credentials;
use crate::domain::account::TeamMember;
use crate::domain::console::{AuditAction, AuditEntry, SignInLimit};
use crate::http::AppState;
use crate::http::page::escape;
use crate::store::Team;

/// How long a mailed link works: long enough for slow mail, short enough
/// that an old mail in a mailbox opens nothing.
pub const LINK_LIFETIME: Duration = Duration::minutes(15);

#[derive(Debug, Deserialize)]
pub struct Ask {
    #[serde(default)]
    form: String,
    #[serde(default)]
    member: String,
}

/// `POST /console/sign-in/link`: mails a link to the member the entry
/// names. The answer is the same for an entry that names nobody, and the
/// link is made and mailed after it, so neither its words nor its time
/// tell who is on the team.
pub async fn ask(
    State(shared): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(sent): Form<Ask>,
) -> Response {
    if sign_in_form_forged(&shared, &headers, &sent.form) {
        return forged();
    }
    let now = shared.clock.now();
    let address = shared.limiter.client(&headers, peer).to_string();
    let entered = sent.member.trim();
    let member = member_named(&shared, entered);
    let key = sign_in::key(member.as_ref(), entered);
    // One ask at a time per key, until its audit line is written: asks
    // sent at once would all read the count before any is recorded, and
    // each mail a link.
    let Some(_checking) = sign_in::Checking::start(&format!("link:{key}")) else {
        return shown(
            &shared,
            StatusCode::TOO_MANY_REQUESTS,
            "A sign-in link for this account is being sent. Wait a moment and look in your mail.",
            entered,
        );
    };
    let limit = SignInLimit::LINKS;
    let asked = AuditAction::SignInLinkAsked;
    match shared
        .store
        .audited_since(asked, &key, &address, now - limit.window)
        .await
    {
        Ok((by_member, by_address)) if limit.allows(by_member, by_address) => {}
        Ok(_) => {
            return limited(
                &shared,
                &format!(
                    "Several sign-in links were asked for this account or from your network just now. Use the latest one that arrived, or wait {} minutes and ask again.",
                    limit.window.num_minutes()
                ),
                limit,
                entered,
            );
        }
        Err(e) => return unavailable(&shared, &e, entered),
    }
    let entry = AuditEntry {
        member: key,
        action: asked,
        detail: if member.is_some() {
            String::new()
        } else {
            "no such team member".into()
        },
        address: address.clone(),
        at: now,
    };
    if let Err(e) = shared.store.record_audit(&entry).await {
        return unavailable(&shared, &e, entered);
    }
    if let Some(member) = member {
        tokio::spawn(mail_link(Arc::clone(&shared), member, address, now));
    }
    let body = format!(
        "<p>If {} is on the team, a sign-in link is on its way to their address. \
         It works once, within {} minutes.</p>\
         <p>Nothing in a few minutes? Look in the spam folder, or <a href=\"/console/sign-in\">ask again</a>.</p>",
        escape(entered),
        LINK_LIFETIME.num_minutes()
    );
    (StatusCode::OK, layout::bare("Check your mail", &body)).into_response()
}

/// Makes a link for `member` and mails it; a failure is logged and
/// audited, since the person who asked has already been answered.
async fn mail_link(shared: Arc<AppState>, member: TeamMember, address: String, now: DateTime<Utc>) {
    let token = credentials::new_token();
    let engine = shared.engine();
    let base = engine.loaded.settings.http.public_url.trim_end_matches('/');
    let url = format!("{base}/console/sign-in/link/{token}");
    let text = format!(
        "Hello {name},\n\n\
         someone, most likely you, asked to sign in to tend's console as {id} from {address}. \
         To sign in, open this link within {minutes} minutes:\n\n{url}\n\n\
         It works once. If you did not ask for it, there is nothing to do: \
         nobody can sign in with it but whoever reads this mail.\n",
        name = member.name,
        id = member.id,
        minutes = LINK_LIFETIME.num_minutes(),
    );
    let sent = match shared
        .store
        .open_link(
            &credentials::token_hash(&token),
            &member.id,
            now,
            now + LINK_LIFETIME,
        )
        .await
    {
        Ok(()) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            engine
                .deliverer
                .send_note(&id, &member.email, None, "Sign in to tend", &text, now)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(why) = sent {
        tracing::warn!(member = %member.id, error = %why, "a sign-in link could not be mailed");
        let failed = AuditEntry {
            member: member.id,
            action: AuditAction::SignInLinkFailed,
            detail: why,
            address,
            at: now,
        };
        if let Err(e) = shared.store.record_audit(&failed).await {
            tracing::warn!(error = %e, "recording an unsent sign-in link failed");
        }
    }
}

/// `GET /console/sign-in/link/{token}`: whose link it is, and a button
/// that signs them in.
pub async fn confirm(State(shared): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let now = shared.clock.now();
    let member = match shared
        .store
        .link_of(&credentials::token_hash(&token), now)
        .await
    {
        Ok(id) => id.and_then(|id| member_named(&shared, &id)),
        Err(e) => return unavailable(&shared, &e, ""),
    };
    let Some(member) = member else {
        return spent();
    };
    let https = https(&shared);
    let form = credentials::new_token();
    let body = format!(
        "<p>This link signs in {name} ({email}).</p>\
         <form method=\"post\" action=\"/console/sign-in/link/{token}\">\
         <input type=\"hidden\" name=\"form\" value=\"{form}\">\
         <p><button type=\"submit\">Sign in as {name}</button></p></form>\
         <p>Not you? Close this page; the link works for nobody once it ends.</p>",
        name = escape(&member.name),
        email = escape(&member.email),
        token = escape(&token),
    );
    let mut response = (StatusCode::OK, layout::bare("Sign in to tend", &body)).into_response();
    let headers = response.headers_mut();
    // The page's address holds the link: no other site is told it.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie(
        https,
        form_cookie(https),
        &form,
        SIGN_IN_FORM_LIFETIME,
    )) {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct Enter {
    #[serde(default)]
    form: String,
}

/// `POST /console/sign-in/link/{token}`: spends the link and signs its
/// member in.
pub async fn enter(
    State(shared): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(sent): Form<Enter>,
) -> Response {
    if sign_in_form_forged(&shared, &headers, &sent.form) {
        return forged();
    }
    let now = shared.clock.now();
    let member = match shared
        .store
        .use_link(&credentials::token_hash(&token), now)
        .await
    {
        // A member taken off the team since the link was mailed is no
        // longer let in by it.
        Ok(id) => id.and_then(|id| member_named(&shared, &id)),
        Err(e) => return unavailable(&shared, &e, ""),
    };
    let Some(member) = member else {
        return spent();
    };
    let address = shared.limiter.client(&headers, peer).to_string();
    start_session(&shared, &member, address, "by mailed link", now).await
}

/// A link that was used, ended, or never was.
fn spent() -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\">This sign-in link was used already or has ended: \
         each works once, within {} minutes of being asked for.</p>\
         <p><a href=\"/console/sign-in\">Ask for a new one</a> or sign in with your password.</p>",
        LINK_LIFETIME.num_minutes()
    );
    let mut response = (
        StatusCode::GONE,
        layout::bare("Sign-in link used or ended", &body),
    )
        .into_response();
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
