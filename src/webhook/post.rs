//! One POST to an endpoint: the body as routed, signed per the Standard
//! Webhooks specification (or bare JSON for a Slack incoming webhook),
//! and what its answer means for the next try.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::signature::WebhookSecret;

/// Why a POST did not land.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct PostError {
    /// Never worth trying again (the endpoint answered 410 Gone).
    pub permanent: bool,
    pub detail: String,
    /// How long the endpoint asked to be left alone (`Retry-After`).
    pub retry_after: Option<Duration>,
}

/// What one POST carries.
pub struct Post<'a> {
    pub url: &'a str,
    /// `webhook-id`: the same on every retry, for deduplication.
    pub id: &'a str,
    pub body: &'a str,
    /// Signs it; none for Slack.
    pub secret: Option<&'a WebhookSecret>,
    pub timeout: Duration,
}

/// Posts webhooks over pooled connections.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
}

impl Poster {
    pub fn new() -> Result<Self, String> {
        reqwest::Client::builder()
            .user_agent(concat!("tend/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // An endpoint answers or fails; it does not send us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map(|client| Self { client })
            .map_err(|e| format!("cannot start the webhook client: {e}"))
    }

    /// Posts `post` at `now` (its `webhook-timestamp`).
    pub async fn post(&self, post: &Post<'_>, now: DateTime<Utc>) -> Result<(), PostError> {
        let mut request = self
            .client
            .post(post.url)
            .timeout(post.timeout)
            .header("content-type", "application/json")
            .body(post.body.to_owned());
        if let Some(secret) = post.secret {
            let timestamp = now.timestamp();
            request = request
                .header("webhook-id", post.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    secret.sign(post.id, timestamp, post.body.as_bytes()),
                );
        }
        let response = request.send().await.map_err(|e| PostError {
            permanent: false,
            detail: format!("could not reach {}: {}", shown(post.url), describe(&e)),
            retry_after: None,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let said: String = text.trim().chars().take(200).collect();
        Err(PostError {
            permanent: status == reqwest::StatusCode::GONE,
            detail: format!(
                "{} answered {status}{}",
                shown(post.url),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            ),
            retry_after,
        })
    }
}

/// The URL without its login and path: Slack's secret token is the path.
pub fn shown(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| {
            format!(
                "{}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "the endpoint".to_owned())
}

/// A client error in words, with its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
