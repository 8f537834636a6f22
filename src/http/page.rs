//! The small pages customers see after following a link from a message:
//! one layout, readable on a phone, values escaped as in every message.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// A link that cannot be used: why, and what to do instead.
pub fn refused(why: &str) -> Response {
    page(
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
pub fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record that just now. Please try again in a minute.</p>",
    )
}

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    (status, Html(html)).into_response()
}

/// The same escaping as the HTML part of every message.
pub fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}
