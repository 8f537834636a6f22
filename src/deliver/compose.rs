//! A rendered message into RFC 5322 bytes: the headers every message
//! carries (From, plus-addressed Reply-To, a stable Message-ID,
//! List-Unsubscribe with one-click, Auto-Submitted) around a
//! `multipart/alternative` text + HTML body. Customer data reaches headers
//! only through lettre's encoders, never as raw header text.

use std::time::SystemTime;

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use crate::render::Rendered;

/// What the headers say besides the rendered content.
pub struct Addressing<'a> {
    pub from: &'a Mailbox,
    /// The plus-addressed reply address carrying the message's token.
    pub reply_to: &'a Address,
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

/// The headers tend signs with DKIM: those receivers check, and the
/// List-Unsubscribe pair (RFC 8058 requires it to be signed).
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

/// The DKIM signer for `[mail.dkim]`, or what is wrong with its key.
pub fn dkim(settings: &crate::config::settings::Dkim) -> Result<DkimConfig, String> {
    use crate::config::settings::DkimAlgorithm;
    let key = std::fs::read_to_string(&settings.private_key_file).map_err(|e| {
        format!(
            "cannot read the DKIM key {:?} ({e}); check mail.dkim.private_key_file",
            settings.private_key_file
        )
    })?;
    let algorithm = match settings.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(key.trim(), algorithm).map_err(|e| {
        format!(
            "the DKIM key {:?} is not a {} key ({e}); rsa needs a PKCS#1 PEM (BEGIN RSA PRIVATE KEY), ed25519 the base64 of its 32-byte seed",
            settings.private_key_file,
            algorithm
        )
    })?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        SIGNED
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
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
                .body(rendered.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(rendered.html.clone()),
        );
    let mut builder = Message::builder();
    if let Some(first) = to.in_reply_to {
        builder = builder
            .in_reply_to(format!("<{first}>"))
            .references(format!("<{first}>"));
    }
    builder
        .from(to.from.clone())
        .reply_to(Mailbox::new(to.from.name.clone(), to.reply_to.clone()))
        .to(recipient)
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{}>", to.message_id)))
        .date(to.date)
        .raw_header(raw("List-Unsubscribe", unsubscribe))
        .raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ))
        .raw_header(raw("Auto-Submitted", "auto-generated".into()))
        .raw_header(raw("X-Auto-Response-Suppress", "All".into()))
        .multipart(body)
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
        assert_eq!(email.envelope().to().len(), 1);
        assert!(head.contains("Message-ID: <m1@acme.example>"), "{head}");
    }

    #[test]
    fn dkim_signs_the_list_unsubscribe_pair() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("dkim.key");
        std::fs::write(
            &key,
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        )
        .unwrap();
        let settings = crate::config::settings::Dkim {
            selector: "tend".into(),
            domain: "acme.example".into(),
            private_key_file: key.to_string_lossy().into_owned(),
            algorithm: crate::config::settings::DkimAlgorithm::Ed25519,
        };
        let config = dkim(&settings).unwrap();
        let rendered = Rendered {
            subject: "Hi".into(),
            preheader: String::new(),
            text: "text\n".into(),
            html: "<p>html</p>".into(),
            unsubscribe_url: "https://t.example/u/x".into(),
        };
        let from: Mailbox = "Acme <success@acme.example>".parse().unwrap();
        let reply_to: Address = "success+abc@acme.example".parse().unwrap();
        let to: Address = "eve@example.com".parse().unwrap();
        let mut email = compose(
            &rendered,
            &Addressing {
                from: &from,
                reply_to: &reply_to,
                unsubscribe_to: &reply_to,
                to_name: "Eve",
                to: &to,
                message_id: "m1@acme.example",
                in_reply_to: None,
                date: SystemTime::UNIX_EPOCH,
            },
        )
        .unwrap();
        email.sign(&config);
        let bytes = String::from_utf8(email.formatted()).unwrap();
        let signature: String = bytes
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .split("DKIM-Signature:")
            .nth(1)
            .expect("a DKIM-Signature header")
            .lines()
            .take_while(|l| !l.contains(": ") || l.starts_with([' ', '\t']) || l.contains("h="))
            .collect();
        let signature = signature.replace([' ', '\t'], "").to_ascii_lowercase();
        assert!(signature.contains("d=acme.example"), "{signature}");
        assert!(signature.contains("s=tend"), "{signature}");
        assert!(
            signature.contains("list-unsubscribe:list-unsubscribe-post"),
            "{signature}"
        );

        let broken = crate::config::settings::Dkim {
            private_key_file: dir.path().join("missing").to_string_lossy().into_owned(),
            ..settings
        };
        assert!(
            dkim(&broken)
                .unwrap_err()
                .contains("cannot read the DKIM key")
        );
    }
}
