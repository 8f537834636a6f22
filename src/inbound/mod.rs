//! Mail coming back: replies, automatic replies, bounces, complaints and
//! requests to unsubscribe. Three doors (`tend inbound FILE`,
//! `POST /api/v1/inbound`, IMAP polling) lead into [`take`]: classify
//! ([`classify`]), match to the message it answers (the plus-address token
//! first, then `In-Reply-To` / `References` against our Message-IDs),
//! record. Whatever arrives is kept, matched or not; nothing in it can make
//! taking it fail but the store.
//!
//! Every message carries two plus-addresses: Reply-To (`success+TOKEN@…`)
//! for replies, and the `mailto:` of `List-Unsubscribe`
//! (`success+u-TOKEN@…`), whose token is signed for unsubscribing alone.
//! Mail to the second leaves the message's category as the one-click POST
//! does, whatever its subject and body; mail to the first is never an
//! unsubscribe.

pub mod auto_reply;
pub mod classify;
pub mod imap;
pub mod quote;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::config::settings::Category;
use crate::domain::message::MessageId;
use crate::store::{
    self, Effect, InboundMail, InboundRecorded, InboundResponse, Outbox, Preferences, ResponseKind,
    Responses, Source,
};
use crate::token::Signer;
use classify::Verdict;

/// Soft bounces count towards `inbound.soft_bounce_limit` over this long.
pub const SOFT_BOUNCE_WINDOW: Duration = Duration::days(30);

/// The most of one message kept; beyond it the tail is cut (a reply with a
/// large attachment keeps its text).
pub const MAX_RAW: usize = 10 * 1024 * 1024;

/// What taking one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub verdict: Verdict,
    pub recorded: InboundRecorded,
    /// For mail to an unsubscribe address: what came of it.
    pub unsubscribing: Option<Unsubscribing>,
}

/// What mail to an unsubscribe address came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsubscribing {
    /// The address's token is not one tend made (altered or forged):
    /// nothing is recorded for anyone.
    Forged,
    /// The message the address names no longer exists.
    Gone,
    /// The customer left this category (now, or before).
    Left(String),
    /// This category cannot be left (operational notices); nothing changed.
    Kept(String),
}

impl Taken {
    /// One line for a person: what it was, what it answered, what changed.
    pub fn describe(&self) -> String {
        let what = match &self.verdict {
            Verdict::Bounce {
                hard: true, status, ..
            } => format!("a hard bounce ({status})"),
            Verdict::Bounce { status, .. } => format!("a soft bounce ({status})"),
            Verdict::Notice { action } => format!("a delivery notice ({action})"),
            Verdict::Complaint { feedback_type } => format!("a complaint ({feedback_type})"),
            Verdict::Unsubscribe => "an unsubscribe request".into(),
            Verdict::AutoReply => "an automatic reply".into(),
            Verdict::Reply { .. } => "a reply".into(),
            Verdict::Unreadable => "not readable as mail".into(),
        };
        let unsubscribed = match &self.unsubscribing {
            Some(Unsubscribing::Forged) => {
                return format!(
                    "{what} to an address tend did not make (altered or forged); nothing changed"
                );
            }
            Some(Unsubscribing::Left(category)) => format!("; unsubscribed from {category}"),
            Some(Unsubscribing::Kept(category)) => {
                format!("; {category} cannot be unsubscribed from, nothing changed")
            }
            Some(Unsubscribing::Gone) | None => String::new(),
        };
        match &self.recorded {
            InboundRecorded::Duplicate => format!("{what}: taken before, nothing changed"),
            InboundRecorded::Kept {
                message: Some(message),
                customer,
                suppressed,
            } => {
                let customer = customer.as_ref().map_or("?", |c| c.as_str());
                let mut line =
                    format!("{what} to message {message} (customer {customer}){unsubscribed}");
                if *suppressed {
                    line.push_str("; all mail to them is now suppressed");
                }
                line
            }
            InboundRecorded::Kept { message: None, .. } => {
                format!("{what}; it matches no message of ours and is kept as unmatched")
            }
        }
    }
}

/// How the inbound doors are set up: the key of plus-address tokens, the
/// soft-bounce rule, and the categories a customer may leave.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub signer: &'a Signer,
    pub soft_bounce_limit: u32,
    pub categories: &'a [Category],
}

impl<'a> Rules<'a> {
    pub fn new(settings: &'a crate::config::settings::Settings, signer: &'a Signer) -> Self {
        Self {
            signer,
            soft_bounce_limit: settings.inbound.soft_bounce_limit,
            categories: &settings.categories,
        }
    }
}

/// Polls the reply mailbox when `[inbound.imap]` is configured; `None`
/// when it is not.
pub async fn poll_mailbox(
    loaded: &crate::config::Loaded,
    signer: &Signer,
    store: &(impl Responses + Outbox),
    now: DateTime<Utc>,
) -> Result<Option<imap::Polled>, imap::PollError> {
    let Some(settings) = &loaded.settings.inbound.imap else {
        return Ok(None);
    };
    let rules = Rules::new(&loaded.settings, signer);
    let password = loaded.secrets.imap_password.as_ref();
    imap::poll(settings, password, store, &rules, now)
        .await
        .map(Some)
}

/// Classifies, matches and records one raw message that came in through
/// `source` at `now`.
pub async fn take(
    store: &(impl Responses + Outbox),
    rules: &Rules<'_>,
    raw: &[u8],
    source: Source,
    now: DateTime<Utc>,
) -> Result<Taken, store::Error> {
    let (mut mail, verdict) = prepare(rules, raw, source, now);
    let unsubscribing = match (&verdict, mail.by_token) {
        (Verdict::Unsubscribe, None) => Some(Unsubscribing::Forged),
        (Verdict::Unsubscribe, Some(message)) => {
            // The address names the message; what it leaves is that
            // message's category, decided as for the one-click POST.
            match store.outgoing(message).await? {
                None => Some(Unsubscribing::Gone),
                Some(sent) => {
                    let choice =
                        Preferences::leave(rules.categories, &sent.category, Source::Mailto);
                    let outcome = if choice.unsubscribe.is_empty() {
                        Unsubscribing::Kept(sent.category)
                    } else {
                        Unsubscribing::Left(sent.category)
                    };
                    mail.effect = Effect::Unsubscribe(choice);
                    Some(outcome)
                }
            }
        }
        _ => None,
    };
    let recorded = store.record_inbound(&mail).await?;
    if let InboundRecorded::Kept { .. } = &recorded {
        if let Some(response) = &mail.response {
            crate::telemetry::response_recorded(response.kind.as_str());
        }
        if let Effect::Unsubscribe(choice) = &mail.effect {
            for _ in &choice.unsubscribe {
                crate::telemetry::response_recorded("unsubscribe");
            }
        }
    }
    Ok(Taken {
        verdict,
        recorded,
        unsubscribing,
    })
}

/// The store's record of one message: pure, so every rule here is tested
/// without a store.
pub fn prepare(
    rules: &Rules<'_>,
    raw: &[u8],
    source: Source,
    now: DateTime<Utc>,
) -> (InboundMail, Verdict) {
    let reading = classify::read(raw);
    let (by_token, by_reference) = if reading.verdict == Verdict::Unsubscribe {
        // Only the unsubscribe address's own token may name the message:
        // an altered one matches nothing, so nothing is recorded for anyone.
        let by_token = reading
            .unsubscribe_tokens
            .iter()
            .find_map(|t| rules.signer.verify_unsubscribe_token(t));
        (by_token, Vec::new())
    } else {
        let by_token = reading
            .tokens
            .iter()
            .find_map(|t| rules.signer.verify_reply_token(t));
        let by_reference = reading
            .references
            .iter()
            .filter_map(|id| ours(id).map(|uuid| (uuid, id.clone())))
            .collect();
        (by_token, by_reference)
    };
    let dedupe = reading
        .message_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| {
            let digest = Sha256::digest(raw);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        });
    let (response, effect) = consequences(&reading.verdict, rules, now);
    let mail = InboundMail {
        id: uuid::Uuid::now_v7(),
        source,
        received_at: now,
        dedupe,
        classification: reading.verdict.classification(),
        raw: raw[..raw.len().min(MAX_RAW)].to_vec(),
        by_token,
        by_reference,
        response,
        effect,
    };
    (mail, reading.verdict)
}

/// The id of one of our messages, from a Message-ID of the form tend
/// makes (`{uuid}@{domain}`); the store checks the whole Message-ID.
fn ours(message_id: &str) -> Option<MessageId> {
    let (local, _) = message_id.split_once('@')?;
    (local.len() == 32)
        .then(|| MessageId::parse(local))
        .flatten()
}

/// The response a verdict records, and what it does to suppression.
fn consequences(
    verdict: &Verdict,
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> (Option<InboundResponse>, Effect) {
    let response = |kind, value: Option<&str>, comment: Option<&str>| {
        Some(InboundResponse {
            kind,
            value: value.map(str::to_owned),
            comment: comment.map(str::to_owned),
        })
    };
    match verdict {
        Verdict::Bounce {
            hard: true,
            status,
            diagnostic,
        } => (
            response(ResponseKind::Bounce, Some(status), diagnostic.as_deref()),
            Effect::Suppress {
                reason: format!(
                    "hard bounce: {status}{}",
                    diagnostic
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                source: Source::Bounce,
            },
        ),
        Verdict::Bounce {
            status, diagnostic, ..
        } => (
            response(ResponseKind::Bounce, Some(status), diagnostic.as_deref()),
            Effect::SoftBounce {
                limit: rules.soft_bounce_limit.max(1),
                since: now - SOFT_BOUNCE_WINDOW,
            },
        ),
        Verdict::Complaint { feedback_type } => (
            response(ResponseKind::Complaint, Some(feedback_type), None),
            Effect::Suppress {
                reason: format!("the customer reported a message as spam ({feedback_type} report)"),
                source: Source::Complaint,
            },
        ),
        Verdict::AutoReply => (
            response(ResponseKind::AutoReply, None, None),
            Effect::Nothing,
        ),
        Verdict::Reply { text } => (
            response(ResponseKind::Reply, None, Some(text)),
            Effect::Nothing,
        ),
        // What an unsubscribe does needs the message's category: `take`
        // reads it and sets the effect; its response is the unsubscribe.
        Verdict::Notice { .. } | Verdict::Unsubscribe | Verdict::Unreadable => {
            (None, Effect::Nothing)
        }
    }
}
