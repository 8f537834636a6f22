//! The signature of one webhook delivery, per the Standard Webhooks
//! specification (v1): HMAC-SHA256 over `{id}.{timestamp}.{body}` with the
//! endpoint's secret, sent as `webhook-signature: v1,<base64>` beside
//! `webhook-id` (the same on every retry, for deduplication) and
//! `webhook-timestamp` (Unix seconds of this attempt, so a receiver can
//! refuse replays).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The prefix of a secret in the form the specification gives.
const PREFIX: &str = "whsec_";

/// An endpoint's signing secret: 24 to 64 bytes, written `whsec_` and
/// their base64.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl WebhookSecret {
    /// Reads `whsec_BASE64` (or the base64 alone, as some senders show it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = STANDARD.decode(encoded).map_err(|_| {
            "the webhook secret is not whsec_ followed by base64; generate one with: echo whsec_$(head -c 32 /dev/urandom | base64)".to_owned()
        })?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "the webhook secret holds {} bytes; the Standard Webhooks specification asks for 24 to 64 (generate one with: echo whsec_$(head -c 32 /dev/urandom | base64))",
                key.len()
            ));
        }
        Ok(Self(key))
    }

    /// `v1,<base64 of the HMAC>` for one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The three headers of one delivery attempt.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.sign(id, timestamp, body)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors the specification's reference libraries test against.
    #[test]
    fn signs_the_published_test_vectors() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn a_secret_is_whsec_and_24_to_64_bytes_of_base64() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        let short = WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err();
        assert!(short.contains("holds 5 bytes"), "{short}");
        let bad = WebhookSecret::parse("whsec_not base64!").unwrap_err();
        assert!(bad.contains("not whsec_ followed by base64"), "{bad}");
        assert_eq!(
            format!(
                "{:?}",
                WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
            ),
            "WebhookSecret([redacted])"
        );
    }
}
