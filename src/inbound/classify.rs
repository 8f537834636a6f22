//! What an inbound message is, read from its bytes alone: a delivery status
//! notification (RFC 3464), a complaint (ARF, RFC 5965), a request to
//! unsubscribe (mail to an unsubscribe address), an automatic reply
//! ([`super::auto_reply`]), or a person's reply. Pure: no store, no clock.
//!
//! The order matters: a DSN carries `Auto-Submitted` too, and is a bounce
//! first; an ARF report quotes the original, and is a complaint first; mail
//! to an unsubscribe address unsubscribes whatever its subject and body
//! say, and whatever program sent it.

use std::sync::LazyLock;

use mail_parser::{Address, Message, MessageParser, MimeHeaders};
use regex::Regex;

use super::auto_reply::is_auto_reply;
use super::quote::strip_quoted;
use crate::domain::inbound::Classification;

/// What kind of message it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The message could not be delivered. `hard` for a permanent failure
    /// (5.x.x but 5.2.2, a full mailbox), else soft.
    Bounce {
        hard: bool,
        /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
        status: String,
        /// The server's words, when the report gives them.
        diagnostic: Option<String>,
    },
    /// A DSN that only says delivery is delayed (or relayed, delivered):
    /// kept, nothing changes.
    Notice { action: String },
    /// A mailbox provider's abuse report: the customer marked it as spam.
    Complaint { feedback_type: String },
    /// Mail to an unsubscribe address (`success+u-TOKEN@…`, the `mailto:`
    /// of `List-Unsubscribe`), whatever its subject and body.
    Unsubscribe,
    /// An out-of-office or other automatic answer: not a customer's reply.
    AutoReply,
    /// A person's reply, with quoted history and signature stripped.
    Reply { text: String },
    /// Not a mail at all (no headers could be read).
    Unreadable,
}

impl Verdict {
    /// The name kept beside the raw message in the store.
    pub fn name(&self) -> &'static str {
        self.classification().as_str()
    }

    /// The verdict without its details, as the store records it.
    pub fn classification(&self) -> Classification {
        match self {
            Self::Bounce { hard: true, .. } => Classification::HardBounce,
            Self::Bounce { hard: false, .. } => Classification::SoftBounce,
            Self::Notice { .. } => Classification::Notice,
            Self::Complaint { .. } => Classification::Complaint,
            Self::Unsubscribe => Classification::Unsubscribe,
            Self::AutoReply => Classification::AutoReply,
            Self::Reply { .. } => Classification::Reply,
            Self::Unreadable => Classification::Unreadable,
        }
    }
}

/// Everything the classifier learned from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub verdict: Verdict,
    /// The message's own Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The plus-address tokens of every address it was sent to (and of
    /// the quoted original's Reply-To, for reports): `success+TOKEN@…`.
    pub tokens: Vec<String>,
    /// The tokens of the unsubscribe addresses it was sent to
    /// (`success+u-TOKEN@…`), without their `u-`.
    pub unsubscribe_tokens: Vec<String>,
    /// The Message-IDs it refers to, most telling first: a report's quoted
    /// original, then `In-Reply-To`, then `References` newest first.
    pub references: Vec<String>,
}

/// Reads one raw message. Never fails: what cannot be parsed is
/// [`Verdict::Unreadable`], kept as it came.
pub fn read(raw: &[u8]) -> Reading {
    // Mail has at least one of the headers every mail system writes; bytes
    // that parse into none of them are not mail.
    let Some(mail) = MessageParser::default().parse(raw).filter(|m| {
        m.from().is_some()
            || m.message_id().is_some()
            || m.subject().is_some()
            || m.date().is_some()
    }) else {
        return Reading {
            verdict: Verdict::Unreadable,
            message_id: None,
            tokens: Vec::new(),
            unsubscribe_tokens: Vec::new(),
            references: Vec::new(),
        };
    };
    let original = quoted_original(&mail);
    let (unsubscribe_tokens, mut tokens): (Vec<String>, Vec<String>) = recipient_tokens(&mail)
        .into_iter()
        .partition(|t| unsubscribe_token(t).is_some());
    let unsubscribe_tokens: Vec<String> = unsubscribe_tokens
        .iter()
        .filter_map(|t| unsubscribe_token(t))
        .map(str::to_owned)
        .collect();
    let mut references = Vec::new();
    if let Some(original) = &original {
        references.extend(original.message_id.iter().cloned());
        tokens.extend(original.tokens.iter().cloned());
    }
    references.extend(ids(mail.in_reply_to()));
    let mut chain = ids(mail.references());
    chain.reverse();
    references.extend(chain);
    references.dedup();
    Reading {
        verdict: verdict(&mail, original.as_ref(), !unsubscribe_tokens.is_empty()),
        message_id: mail.message_id().map(str::to_owned),
        tokens,
        unsubscribe_tokens,
        references,
    }
}

fn verdict(mail: &Message<'_>, original: Option<&Original>, to_unsubscribe: bool) -> Verdict {
    if let Some(report) = report_part(mail, &["delivery-status", "global-delivery-status"]) {
        return delivery_status(report);
    }
    if let Some(report) = report_part(mail, &["feedback-report"]) {
        let fields = fields(report);
        let feedback_type = field(&fields, "feedback-type").unwrap_or("abuse");
        return Verdict::Complaint {
            feedback_type: feedback_type.to_ascii_lowercase(),
        };
    }
    if looks_like_bounce(mail) {
        return legacy_bounce(mail, original);
    }
    // Before automatic replies: a mail client may send the request by
    // itself, marked as automatic, and it must still unsubscribe.
    if to_unsubscribe {
        return Verdict::Unsubscribe;
    }
    if is_auto_reply(mail) {
        return Verdict::AutoReply;
    }
    let text = mail.body_text(0).unwrap_or_default();
    Verdict::Reply {
        text: strip_quoted(&text),
    }
}

/// The text of a `message/<subtype>` part among `subtypes`, in a
/// `multipart/report` or anywhere in the message.
fn report_part<'a>(mail: &'a Message<'a>, subtypes: &[&str]) -> Option<&'a str> {
    mail.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let wanted = ct.ctype().eq_ignore_ascii_case("message")
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)));
        wanted.then(|| part.text_contents()).flatten()
    })
}

/// `Name: value` fields of a report, folded lines joined, names lower-case.
/// Blocks (per message, per recipient) are separated by `None`.
fn fields(text: &str) -> Vec<Option<(String, String)>> {
    let mut out: Vec<Option<(String, String)>> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            out.push(None);
        } else if line.starts_with([' ', '\t']) {
            if let Some(Some((_, value))) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push(Some((
                name.trim().to_ascii_lowercase(),
                value.trim().to_owned(),
            )));
        }
    }
    out
}

fn field<'a>(fields: &'a [Option<(String, String)>], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .flatten()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b").unwrap_or_else(|_| unreachable!())
});

/// The first enhanced status code in `text`.
fn status_in(text: &str) -> Option<String> {
    STATUS.find(text).map(|m| m.as_str().to_owned())
}

/// A permanent failure, but for 5.2.2 (mailbox full), which passes.
fn is_hard(status: &str) -> bool {
    status.starts_with('5') && status != "5.2.2"
}

/// RFC 3464: the first failed recipient decides; without one, the report
/// is only a notice (delayed, relayed, delivered).
fn delivery_status(report: &str) -> Verdict {
    let fields = fields(report);
    let recipients: Vec<&[Option<(String, String)>]> = fields.split(Option::is_none).collect();
    let failed = recipients
        .iter()
        .find(|block| field(block, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed")));
    match failed {
        Some(block) => {
            let status = field(block, "status")
                .and_then(status_in)
                .or_else(|| field(block, "diagnostic-code").and_then(status_in))
                .unwrap_or_else(|| "5.0.0".into());
            Verdict::Bounce {
                hard: is_hard(&status),
                diagnostic: field(block, "diagnostic-code").map(diagnostic),
                status,
            }
        }
        None => Verdict::Notice {
            action: field(&fields, "action")
                .unwrap_or("unknown")
                .to_ascii_lowercase(),
        },
    }
}

/// `smtp; 550 5.1.1 <x@y>: Recipient address rejected` → the words after
/// the type.
fn diagnostic(raw: &str) -> String {
    let text = raw.split_once(';').map_or(raw, |(_, rest)| rest).trim();
    text.chars().take(500).collect()
}

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)undeliver|delivery (status notification \(failure\)|fail|has failed|problem)|mail delivery failed|returned mail|failure notice|could not be delivered|nondeliverable",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// A bounce without a DSN part (older Exim, qmail, some gateways): from
/// the mailer daemon, or with `X-Failed-Recipients`, and a failure subject.
fn looks_like_bounce(mail: &Message<'_>) -> bool {
    if mail.header("X-Failed-Recipients").is_some() {
        return true;
    }
    let daemon = first_address(mail.from()).is_some_and(|a| {
        let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
        local == "mailer-daemon" || local == "postmaster"
    });
    daemon && mail.subject().is_some_and(|s| BOUNCE_SUBJECT.is_match(s))
}

static SMTP_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([45])\d\d[ -]").unwrap_or_else(|_| unreachable!()));

fn legacy_bounce(mail: &Message<'_>, original: Option<&Original>) -> Verdict {
    let mut text = mail.body_text(0).unwrap_or_default().into_owned();
    // The quoted original may contain codes of its own: read only the
    // daemon's explanation before it.
    if let Some(at) = original
        .and_then(|o| o.starts_at_text.as_deref())
        .and_then(|cut| text.find(cut))
    {
        text.truncate(at);
    }
    let status = status_in(&text).unwrap_or_else(|| match SMTP_CODE.captures(&text) {
        Some(c) if &c[1] == "4" => "4.0.0".into(),
        _ => "5.0.0".into(),
    });
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find(|l| STATUS.is_match(l) || SMTP_CODE.is_match(l))
        .map(|l| l.chars().take(500).collect());
    Verdict::Bounce {
        hard: is_hard(&status),
        status,
        diagnostic,
    }
}

/// What a report (or a bounce) quotes of the message it is about.
struct Original {
    message_id: Option<String>,
    tokens: Vec<String>,
    /// For a bounce quoting the original inline: the line it starts at.
    starts_at_text: Option<String>,
}

/// The original inside a report or bounce: a `message/rfc822` part, a
/// `text/rfc822-headers` part, or headers quoted inline in a bounce's text.
fn quoted_original(mail: &Message<'_>) -> Option<Original> {
    for part in mail.parts.iter().skip(1) {
        if let Some(inner) = part.message() {
            return Some(Original {
                message_id: inner.message_id().map(str::to_owned),
                tokens: reply_to_tokens(inner),
                starts_at_text: None,
            });
        }
        let headers = part.content_type().is_some_and(|ct| {
            ct.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        if headers {
            let text = part.text_contents().unwrap_or_default();
            let inner = MessageParser::default().parse_headers(text.as_bytes())?;
            return Some(Original {
                message_id: inner.message_id().map(str::to_owned),
                tokens: reply_to_tokens(&inner),
                starts_at_text: None,
            });
        }
    }
    // Inline: "Message-ID: <…>" somewhere in the text of a bounce.
    let text = mail.body_text(0)?;
    let at = text
        .find("\nMessage-ID:")
        .or_else(|| text.find("\nMessage-Id:"))?;
    let id = text[at + 12..].lines().next()?.trim();
    let id = id.trim_start_matches('<').trim_end_matches('>').to_owned();
    let quoted_from = text[..at]
        .rfind("\n\n")
        .map(|b| text[b..at].trim().lines().next().unwrap_or("").to_owned());
    Some(Original {
        message_id: (!id.is_empty()).then_some(id),
        tokens: Vec::new(),
        starts_at_text: quoted_from.filter(|l| !l.is_empty()),
    })
}

/// Plus tokens of every address the message was delivered to.
fn recipient_tokens(mail: &Message<'_>) -> Vec<String> {
    let mut found = Vec::new();
    for header in ["To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"] {
        for value in mail.header_values(header) {
            match value.as_address() {
                Some(address) => found.extend(addresses(address).filter_map(plus_token)),
                None => found.extend(value.as_text().and_then(plus_token)),
            }
        }
    }
    found.dedup();
    found
}

fn reply_to_tokens(mail: &Message<'_>) -> Vec<String> {
    mail.reply_to()
        .map(|a| addresses(a).filter_map(plus_token).collect())
        .unwrap_or_default()
}

fn addresses<'a>(address: &'a Address<'a>) -> impl Iterator<Item = &'a str> {
    address.iter().filter_map(|a| a.address.as_deref())
}

fn first_address<'a>(address: Option<&'a Address<'a>>) -> Option<&'a str> {
    address.and_then(|a| addresses(a).next())
}

/// The token of an unsubscribe address's plus part (`u-TOKEN` → `TOKEN`).
fn unsubscribe_token(plus: &str) -> Option<&str> {
    let prefix = crate::token::UNSUBSCRIBE_PLUS;
    plus.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &plus[prefix.len()..])
}

/// `success+TOKEN@acme.example` → `TOKEN`.
fn plus_token(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    let (_, token) = local.split_once('+')?;
    (!token.is_empty()).then(|| token.to_owned())
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(id) => vec![id.to_string()],
        mail_parser::HeaderValue::TextList(list) => list.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_and_their_weight() {
        assert_eq!(
            status_in("smtp; 550 5.1.1 <a@b>: no such user"),
            Some("5.1.1".into())
        );
        assert!(is_hard("5.1.1"));
        assert!(!is_hard("5.2.2"), "a full mailbox passes");
        assert!(!is_hard("4.4.1"));
    }

    #[test]
    fn plus_tokens() {
        assert_eq!(
            plus_token("success+abc123@acme.example"),
            Some("abc123".into())
        );
        assert_eq!(plus_token("<success+x@acme.example>"), Some("x".into()));
        assert_eq!(plus_token("success@acme.example"), None);
    }

    #[test]
    fn garbage_is_unreadable_and_kept() {
        let reading = read(b"\x00\xff\xfe not a mail at all");
        assert_eq!(reading.verdict, Verdict::Unreadable);
        assert_eq!(read(b"").verdict, Verdict::Unreadable);
    }
}
