//! The small pages customers see after following a link from a message:
//! the same brand, colours and footer as the messages' layout (the product
//! name on top, the company and its postal address below), readable on a
//! phone and in dark mode, values escaped as in every message.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use crate::config::settings::Company;
use crate::deliver::Draft;
use crate::domain::message::MessageId;
use crate::store::Outbox;

/// The language of the message a link came from, as its customer got it
/// (English when the message is gone or cannot be read: the page still
/// works).
pub async fn language_of(shared: &AppState, message: MessageId) -> String {
    match shared.store.outgoing(message).await {
        Ok(Some(message)) => shared.engine().deliverer.language(&Draft::of(&message)),
        Ok(None) => crate::language::DEFAULT.to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a message for its language failed");
            crate::language::DEFAULT.to_owned()
        }
    }
}

/// A link that cannot be used: why, and what to do instead.
pub fn refused(company: &Company, why: &str) -> Response {
    page(
        company,
        StatusCode::BAD_REQUEST,
        "This link does not work",
        &format!(
            "<p>{}.</p><p>Use the unsubscribe link in the newest email from us, or reply to it and we will take you off the list.</p>",
            escape(why)
        ),
    )
}

/// The store could not record what the customer did: nothing is lost on
/// their side if they try again.
pub fn try_again(company: &Company) -> Response {
    page(
        company,
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record that just now. Please try again in a minute.</p>",
    )
}

const STYLE: &str = "body{margin:0;background:#f4f5f7;color:#1f2933;font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.55}\
main{max-width:32rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 1.75rem}\
.brand{font-weight:700;font-size:18px;color:#2251cc;margin:0 0 1rem}\
h1{font-size:1.4rem;line-height:1.25;margin:0 0 1rem}\
a{color:#2251cc}\
button{font-size:1rem;min-height:44px;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#2251cc;color:#fff;cursor:pointer}\
button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f0b429;outline-offset:2px}\
fieldset{border:1px solid #cbd2d9;border-radius:6px;margin:0 0 1rem;min-width:0}\
textarea{font:inherit;box-sizing:border-box}\
.answers{border:0;padding:0}\
.answers legend{padding:0;margin:0 0 .75rem;font-weight:700;font-size:1.1rem;line-height:1.4}\
.choices{display:flex;flex-wrap:wrap;gap:6px}\
.choice{position:relative;display:block}\
.choice input{position:absolute;top:0;left:0;width:1px;height:1px;margin:0;opacity:0}\
.choice span{display:flex;align-items:center;justify-content:center;box-sizing:border-box;min-width:44px;min-height:44px;padding:0 .75rem;border:2px solid #2251cc;border-radius:6px;color:#2251cc;font-weight:700;font-size:1.1rem;cursor:pointer}\
.choice input:checked+span{background:#2251cc;color:#fff}\
.choice input:focus-visible+span{outline:3px solid #f0b429;outline-offset:2px}\
.scale{display:flex;justify-content:space-between;gap:1rem;margin:.5rem 0 0;color:#616e7c;font-size:13px;line-height:1.4}\
.scale span:last-child{text-align:right}\
@media (max-width:30rem){main{margin:0 0 1rem;border-radius:0;padding:1.25rem 1rem}footer{padding:0 1rem}}\
footer{max-width:32rem;margin:0 auto 2rem;padding:0 1.75rem;color:#616e7c;font-size:13px}\
footer a{color:#616e7c}\
@media (prefers-color-scheme:dark){body{background:#111418;color:#e4e7eb}main{background:#1c2127}a,.brand{color:#8fb0ff}button{background:#8fb0ff;color:#111418}.choice span{border-color:#8fb0ff;color:#8fb0ff}.choice input:checked+span{background:#8fb0ff;color:#111418}}";

pub fn page(company: &Company, status: StatusCode, title: &str, body: &str) -> Response {
    page_in(company, crate::language::DEFAULT, status, title, body)
}

/// [`page`] in the language `lang` (its `lang` attribute; the words are
/// the caller's).
pub fn page_in(
    company: &Company,
    lang: &str,
    status: StatusCode,
    title: &str,
    body: &str,
) -> Response {
    let product = escape(&company.product);
    let website = if company.website.is_empty() {
        String::new()
    } else {
        format!(" · <a href=\"{0}\">{0}</a>", escape(&company.website))
    };
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · {product}</title><style>{STYLE}</style></head>\
         <body><main><p class=\"brand\">{product}</p><h1>{title}</h1>{body}</main>\
         <footer><p>{} · {}{website}</p></footer></body></html>",
        escape(&company.name),
        escape(&company.postal_address),
        lang = escape(lang),
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

/// The same escaping as the HTML part of every message.
pub fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}
