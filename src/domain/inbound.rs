//! One inbound message as tend records it: what the classifier made of
//! it, which message it answers, and what it does to the customer's mail.

use chrono::{DateTime, Utc};

use super::customer::CustomerId;
use super::message::MessageId;
use super::preference::Preferences;
use super::response::{ResponseKind, Source};

/// What the classifier made of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    HardBounce,
    SoftBounce,
    /// A delivery notice that is not a failure (delayed, relayed).
    Notice,
    Complaint,
    Unsubscribe,
    AutoReply,
    Reply,
    Unreadable,
}

impl Classification {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounce => "soft_bounce",
            Self::Notice => "notice",
            Self::Complaint => "complaint",
            Self::Unsubscribe => "unsubscribe",
            Self::AutoReply => "auto_reply",
            Self::Reply => "reply",
            Self::Unreadable => "unreadable",
        }
    }
}

/// One inbound message, classified, for the store to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    pub id: uuid::Uuid,
    /// The door it came through: imap, webhook or file.
    pub source: Source,
    pub received_at: DateTime<Utc>,
    /// Its Message-ID, or a digest of its bytes: a second copy is skipped.
    pub dedupe: String,
    /// What the classifier made of it.
    pub classification: Classification,
    pub raw: Vec<u8>,
    /// The message its plus-address reply token names.
    pub by_token: Option<MessageId>,
    /// Messages of ours it refers to, most telling first: (id, Message-ID).
    pub by_reference: Vec<(MessageId, String)>,
    pub response: Option<InboundResponse>,
    pub effect: Effect,
}

/// The response an inbound message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundResponse {
    /// Reply, auto-reply, bounce or complaint.
    pub kind: ResponseKind,
    pub value: Option<String>,
    pub comment: Option<String>,
}

/// What an inbound message does to the customer it is matched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Nothing,
    /// Mail to the unsubscribe address: the customer's choice, applied as
    /// `Responses::set_preferences` applies one made from a link, the
    /// response linked to this mail.
    Unsubscribe(Preferences),
    /// No more mail at all: a hard bounce or a complaint.
    Suppress {
        reason: String,
        source: Source,
    },
    /// A soft bounce: all mail stops once `limit` have come since `since`.
    SoftBounce {
        limit: u32,
        since: DateTime<Utc>,
    },
}

/// What recording an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRecorded {
    /// The same message was taken before; nothing changed.
    Duplicate,
    Kept {
        /// The message it answers, if one was found.
        message: Option<MessageId>,
        customer: Option<CustomerId>,
        /// All mail to the customer is now suppressed because of it.
        suppressed: bool,
    },
}

/// The reason all mail stops after too many soft bounces.
pub fn soft_bounced_reason(count: i64, since: DateTime<Utc>) -> String {
    format!(
        "{count} soft bounces since {} (mailbox full or unavailable); see inbound.soft_bounce_limit",
        since.format("%Y-%m-%d")
    )
}
