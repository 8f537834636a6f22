//! A rendered message into RFC 5322 bytes: the headers every message
//! carries (From, plus-addressed Reply-To, a stable Message-ID,
//! List-Unsubscribe, one-click where it is https, Auto-Submitted) around a
//! `multipart/alternative` text + HTML body. Customer data reaches headers
//! only through lettre's encoders, never as raw header text.

use std::time::SystemTime;

use lettre::address::Envelope;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::transfer;
use crate::render::Rendered;

/// What the headers say besides the rendered content.
pub struct Addressing<'a> {
    pub from: &'a Mailbox,
    /// The plus-addressed reply address carrying the message's token.
    pub reply_to: &'a Address,
    /// A person replies also reach (the account's owner, for mail sent in
    /// their name), before the reply address.
    pub reply_person: Option<&'a Mailbox>,
    /// The plus-address mail unsubscribes at (`List-Unsubscribe` mailto).
    pub unsubscribe_to: &'a Address,
    pub to_name: &'a str,
    pub to: &'a Address,
    /// The Message-ID without angle brackets.
    pub message_id: &'a str,
    /// The Message-ID (without brackets) this message follows up in its
    /// thread: a notice's update or resolution follows its opening.
    pub in_reply_to: Option<&'a str>,
    pub date: SystemTime,
}

/// Why a message could not be built (a bug or a bad stored address).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the email: {0}")]
pub struct ComposeError(String);

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Whether the message may offer one-click unsubscribe: RFC 8058 requires
/// its List-Unsubscribe to carry an https URI, so a plain-http link (a
/// loopback address, for trying tend out) goes without it.
pub fn one_click(unsubscribe_url: &str) -> bool {
    unsubscribe_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The message, ready for a transport.
pub fn compose(rendered: &Rendered, to: &Addressing<'_>) -> Result<Message, ComposeError> {
    // A display name is a phrase; line breaks in it have no meaning.
    let name = to.to_name.replace(['\r', '\n'], " ");
    let recipient = Mailbox::new(
        (!name.trim().is_empty()).then(|| name.trim().to_owned()),
        to.to.clone(),
    );
    let unsubscribe = format!(
        "<{}>, <mailto:{}?subject=unsubscribe>",
        rendered.unsubscribe_url, to.unsubscribe_to
    );
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(transfer::body(&rendered.text)),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(transfer::body(&rendered.html)),
        );
    let mut builder = Message::builder();
    if let Some(first) = to.in_reply_to {
        builder = builder
            .in_reply_to(format!("<{first}>"))
            .references(format!("<{first}>"));
    }
    builder = builder.from(to.from.clone());
    if let Some(person) = to.reply_person {
        builder = builder.reply_to(person.clone());
    }
    builder = builder
        .reply_to(Mailbox::new(to.from.name.clone(), to.reply_to.clone()))
        .to(recipient)
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{}>", to.message_id)))
        .date(to.date)
        .raw_header(raw("List-Unsubscribe", unsubscribe));
    if one_click(&rendered.unsubscribe_url) {
        builder = builder.raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ));
    }
    // Given, not derived: lettre would otherwise parse the To header and
    // From a second time (its check of the originator reads From once
    // anyway) back into addresses for every message. The transports send
    // with their own envelope; this one only has to be what the headers
    // say.
    let envelope = Envelope::new(Some(to.from.email.clone()), vec![to.to.clone()])
        .map_err(|e| ComposeError(e.to_string()))?;
    builder
        .raw_header(raw("Auto-Submitted", "auto-generated".into()))
        .raw_header(raw("X-Auto-Response-Suppress", "All".into()))
        .envelope(envelope)
        .multipart(body)
        .map_err(|e| ComposeError(e.to_string()))
}

/// A note to someone on the team (an alert): plain text, from the
/// configured sender, replies going to `reply_to` (the customer it is
/// about), marked automatic so no autoresponder answers it.
pub fn compose_note(
    from: &Mailbox,
    to: &Address,
    reply_to: Option<&Mailbox>,
    subject: &str,
    text: &str,
    message_id: &str,
    date: SystemTime,
) -> Result<Message, ComposeError> {
    let mut builder = Message::builder().from(from.clone());
    if let Some(person) = reply_to {
        builder = builder.reply_to(person.clone());
    }
    builder
        .to(Mailbox::new(None, to.clone()))
        .subject(subject.replace(['\r', '\n'], " "))
        .message_id(Some(format!("<{message_id}>")))
        .date(date)
        .raw_header(raw("Auto-Submitted", "auto-generated".into()))
        .raw_header(raw("X-Auto-Response-Suppress", "All".into()))
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text.to_owned()),
        )
        .map_err(|e| ComposeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_in_names_and_subjects_never_start_a_header() {
        let rendered = Rendered {
            subject: "Hi\r\nBcc: victim@evil.example".into(),
            preheader: String::new(),
            text: "text\n".into(),
            html: "<p>html</p>".into(),
            unsubscribe_url: "https://t.example/u/x".into(),
        };
        let from: Mailbox = "Acme <success@acme.example>".parse().unwrap();
        let reply_to: Address = "success+abc@acme.example".parse().unwrap();
        let to: Address = "eve@example.com".parse().unwrap();
        let email = compose(
            &rendered,
            &Addressing {
                from: &from,
                reply_to: &reply_to,
                reply_person: None,
                unsubscribe_to: &reply_to,
                to_name: "Eve\r\nBcc: victim@evil.example",
                to: &to,
                message_id: "m1@acme.example",
                in_reply_to: None,
                date: SystemTime::UNIX_EPOCH,
            },
        )
        .unwrap();
        let bytes = String::from_utf8(email.formatted()).unwrap();
        let head = bytes.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        // The To header, read back, names the one recipient and nothing
        // the name tried to add.
        let to_header = email
            .headers()
            .get::<lettre::message::header::To>()
            .expect("a To header");
        let recipients: Vec<Address> = lettre::message::Mailboxes::from(to_header)
            .into_iter()
            .map(|m| m.email)
            .collect();
        assert_eq!(recipients, std::slice::from_ref(&to), "only the recipient");
        assert_eq!(email.envelope().to(), recipients, "the envelope agrees");
        assert!(head.contains("Message-ID: <m1@acme.example>"), "{head}");
    }

    fn composed(unsubscribe_url: &str) -> Message {
        let rendered = Rendered {
            subject: "Hi".into(),
            preheader: String::new(),
            text: "text\n".into(),
            html: "<p>html</p>".into(),
            unsubscribe_url: unsubscribe_url.into(),
        };
        let from: Mailbox = "Acme <success@acme.example>".parse().unwrap();
        let reply_to: Address = "success+abc@acme.example".parse().unwrap();
        let to: Address = "eve@example.com".parse().unwrap();
        compose(
            &rendered,
            &Addressing {
                from: &from,
                reply_to: &reply_to,
                reply_person: None,
                unsubscribe_to: &reply_to,
                to_name: "Eve",
                to: &to,
                message_id: "m1@acme.example",
                in_reply_to: None,
                date: SystemTime::UNIX_EPOCH,
            },
        )
        .unwrap()
    }

    fn head(email: &Message) -> String {
        let bytes = String::from_utf8(email.formatted()).unwrap();
        // Unfolded, as a reader of the header sees it.
        bytes
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .replace("\r\n ", " ")
    }

    #[test]
    fn one_click_only_beside_an_https_link() {
        let https = head(&composed("https://t.example/u/x"));
        assert!(
            https.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{https}"
        );
        assert!(https.contains("List-Unsubscribe: <https://t.example/u/x>, <mailto:success+abc@acme.example?subject=unsubscribe>"), "{https}");
        let http = head(&composed("http://127.0.0.1:8080/u/x"));
        assert!(!http.contains("List-Unsubscribe-Post"), "{http}");
        assert!(
            http.contains("List-Unsubscribe: <http://127.0.0.1:8080/u/x>, <mailto:success+abc@acme.example?subject=unsubscribe>"),
            "{http}"
        );
        assert!(one_click("HTTPS://T.EXAMPLE/u/x"));
        assert!(!one_click("http"));
    }

    #[test]
    fn every_signed_header_is_one_the_signer_sees() {
        // lettre hashes the message's own headers; any header written
        // elsewhere (the multipart's Content-Type) would break every
        // signature. (The dkimpy tests prove the signatures verify.)
        let email = composed("https://t.example/u/x");
        let optional = ["In-Reply-To", "References"];
        for name in super::super::dkim::SIGNED {
            assert!(
                optional.contains(name) || email.headers().get_raw(name).is_some(),
                "{name} is signed but not among the message's headers"
            );
        }
        assert!(head(&email).contains("Content-Type: multipart/alternative"));
        assert!(email.headers().get_raw("Content-Type").is_none());
    }
}
