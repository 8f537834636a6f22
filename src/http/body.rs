//! Request bodies, read whole before any handler sees them: at most the
//! route's limit (a `Content-Length` over it is refused before a byte is
//! read, a longer chunked body as soon as it passes the limit), and never
//! stalled longer than `http.idle_timeout` between two chunks. The links in
//! mail answer with a page, the API with JSON.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytesize::ByteSize;
use futures_util::StreamExt;

use super::AppState;
use super::api::error;
use super::page::page;

/// The largest body the links in mail take: the survey form, whose comment
/// is at most 5,000 characters, is under 50 KB even when every character
/// is four UTF-8 bytes written as `%XX`; the preference form is smaller.
pub const LINK_BODY: u64 = 64 * 1024;

/// Why a body was not read.
#[derive(Debug, PartialEq)]
enum Unread {
    /// Over the limit, by its `Content-Length` or by what arrived.
    TooLarge,
    /// No byte for the idle timeout.
    Stalled,
    /// The client went away or sent a broken body.
    Broken(String),
}

/// Reads `body` whole, up to `limit` bytes, waiting at most `idle` for
/// each chunk.
async fn read(
    body: Body,
    declared: Option<u64>,
    limit: u64,
    idle: Duration,
) -> Result<Bytes, Unread> {
    if declared.is_some_and(|length| length > limit) {
        return Err(Unread::TooLarge);
    }
    let mut stream = body.into_data_stream();
    // What the client declared, never more than the limit, saves regrowing.
    let mut whole =
        Vec::with_capacity(usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0));
    loop {
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => return Err(Unread::Stalled),
            Ok(None) => return Ok(Bytes::from(whole)),
            Ok(Some(Err(e))) => return Err(Unread::Broken(e.to_string())),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if (whole.len() + chunk.len()) as u64 > limit {
            return Err(Unread::TooLarge);
        }
        whole.extend_from_slice(&chunk);
    }
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the body and hands the request on with it, or the reason it was
/// not read.
async fn buffered(request: Request, limit: u64, idle: Duration) -> Result<Request, Unread> {
    let declared = declared_length(&request);
    let (parts, body) = request.into_parts();
    let bytes = read(body, declared, limit, idle).await?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The links in mail: at most [`LINK_BODY`], refused with a page.
pub async fn links(State(shared): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let idle = shared.engine().loaded.settings.http.idle_timeout.as_std();
    let unread = match buffered(request, LINK_BODY, idle).await {
        Ok(request) => return next.run(request).await,
        Err(unread) => unread,
    };
    let engine = shared.engine();
    let company = &engine.loaded.settings.company;
    match unread {
        Unread::TooLarge => page(
            company,
            StatusCode::PAYLOAD_TOO_LARGE,
            "That was too long",
            &format!(
                "<p>We take at most {} here, and what you sent is longer. Please shorten your comment and send it again.</p>",
                ByteSize(LINK_BODY)
            ),
        ),
        Unread::Stalled => page(
            company,
            StatusCode::REQUEST_TIMEOUT,
            "That took too long",
            "<p>Your answer stopped arriving part-way. Please send it again.</p>",
        ),
        Unread::Broken(_) => page(
            company,
            StatusCode::BAD_REQUEST,
            "That did not arrive whole",
            "<p>Your answer arrived broken. Please send it again.</p>",
        ),
    }
}

/// The API: at most `http.max_body`, refused with JSON naming the setting.
pub async fn api(State(shared): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (limit, idle) = {
        let engine = shared.engine();
        let http = &engine.loaded.settings.http;
        (http.max_body, http.idle_timeout.clone())
    };
    match buffered(request, limit.as_u64(), idle.as_std()).await {
        Ok(request) => next.run(request).await,
        Err(Unread::TooLarge) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {limit} (http.max_body); send the rows in smaller batches, or a message without its attachments, or raise http.max_body"
            ),
        ),
        Err(Unread::Stalled) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body stalled for {idle} (http.idle_timeout); send it again"),
        ),
        Err(Unread::Broken(why)) => error(
            StatusCode::BAD_REQUEST,
            format!("the body did not arrive whole ({why}); send it again"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let got = read(Body::from("answer=9"), Some(8), 8, IDLE).await;
        assert_eq!(got, Ok(Bytes::from_static(b"answer=9")));
        let chunked = read(Body::from("answer=9"), None, 8, IDLE).await;
        assert_eq!(chunked, Ok(Bytes::from_static(b"answer=9")));
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_by_its_length_or_its_bytes() {
        // The declared length alone refuses it: the body is never polled.
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert_eq!(read(never, Some(9), 8, IDLE).await, Err(Unread::TooLarge));
        assert_eq!(
            read(Body::from("answer=10"), None, 8, IDLE).await,
            Err(Unread::TooLarge)
        );
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let idle = Duration::from_millis(50);
        assert_eq!(read(stalled, None, 8, idle).await, Err(Unread::Stalled));
    }
}
