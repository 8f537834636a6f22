//! Messages: one planned or sent email for one customer from one step
//! occurrence, and the states it moves through in the outbox.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::customer::CustomerId;
use super::plan::OccurrenceKey;
use super::playbook::{Kind, Survey};

/// A message's id, and the local part of its Message-ID: a UUIDv7, so ids
/// sort by when their messages were planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub uuid::Uuid);

impl MessageId {
    /// A new id, after every id made before it.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// The id a stored or linked text names.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::try_parse(text).ok().map(Self)
    }
}

impl std::str::FromStr for MessageId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(text).map(Self)
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a message is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Planned,
    Sending,
    Sent,
    Deferred,
    Failed,
    Suppressed,
    Expired,
    Unknown,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Self::Planned,
        Self::Sending,
        Self::Sent,
        Self::Deferred,
        Self::Failed,
        Self::Suppressed,
        Self::Expired,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw.trim())
            .ok_or_else(|| {
                format!(
                    "{raw:?} is not a message status; use one of {}",
                    Self::ALL.map(Status::as_str).join(", ")
                )
            })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Survey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nps => "nps",
            Self::Csat => "csat",
            Self::Ces => "ces",
            Self::Yesno => "yesno",
        }
    }
}

/// What an incident or maintenance notice carries besides its template:
/// the incident as the notice shows it, and the first notice it follows up.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Notice {
    pub incident_id: String,
    /// The `incident` its template sees: id, title, kind, status, message,
    /// starts_at, ends_at.
    pub incident: serde_json::Value,
    /// The Message-ID (without brackets) of the opening notice to this
    /// customer, for `In-Reply-To` and `References`.
    pub in_reply_to: Option<String>,
}

/// A message as the planner puts it into the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub customer_id: CustomerId,
    pub key: OccurrenceKey,
    pub kind: Kind,
    pub category: String,
    pub template: String,
    pub survey: Option<Survey>,
    /// Lower goes first when the frequency cap lets only some through.
    pub priority: i32,
    pub status: Status,
    pub reason: Option<String>,
    pub to: String,
    /// The RFC 5322 Message-ID, without angle brackets.
    pub message_id: String,
    pub due_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Goes at once: no send window, no cap, no quiet (incident notices,
    /// a maintenance announcement shortly before it starts).
    pub urgent: bool,
    /// For incident and maintenance notices.
    pub notice: Option<Notice>,
    /// The account an account-scope message is for.
    pub account_id: Option<super::account::AccountId>,
}

/// A message as `tend messages` shows it (the JSON shape is a contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageView {
    pub id: String,
    pub customer_id: String,
    pub to: Option<String>,
    pub playbook: String,
    pub step: String,
    pub occurrence: String,
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub subject: Option<String>,
    pub due_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub message_id: Option<String>,
}

/// A response as `tend responses` shows it (the JSON shape is a contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseView {
    pub id: String,
    /// tend's id of the message it answers; null when unmatched.
    pub message_id: Option<String>,
    pub customer_id: Option<String>,
    pub kind: String,
    pub value: Option<String>,
    pub comment: Option<String>,
    pub received_at: DateTime<Utc>,
    pub source: String,
}

/// Which messages to list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<Status>,
    pub customer: Option<CustomerId>,
    /// Only messages planned or changed at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// A message leased to the delivery worker, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: MessageId,
    pub customer: super::customer::Customer,
    pub key: OccurrenceKey,
    pub kind: Kind,
    pub category: String,
    pub template: String,
    pub survey: Option<Survey>,
    pub notice: Option<Notice>,
    /// Incident notices: no window, no cap, no quiet.
    pub urgent: bool,
    pub status: Status,
    pub to: String,
    /// The RFC 5322 Message-ID, without angle brackets.
    pub message_id: String,
    pub due_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Why mail of this category may not go to this customer, if it may not.
    pub suppressed: Option<String>,
    /// The customer's account with its owner, when a template reads it:
    /// set by delivery for a batch before composing.
    pub account: Option<std::sync::Arc<super::account::AccountFacts>>,
    /// Who it goes out as, when not `mail.from`: set by delivery from the
    /// step's `from`.
    pub sender: Option<super::account::TeamMember>,
    /// The account an account-scope message was planned for: its account
    /// even if the contact has moved since.
    pub planned_for: Option<super::account::AccountId>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Sent,
    Transient,
    Permanent,
    Unknown,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Unknown => "unknown",
        }
    }
}

/// One delivery attempt and the server's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub smtp_code: Option<u16>,
    pub detail: String,
}

/// An address or a category that must not be written to any more.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub customer_id: CustomerId,
    /// A category, or `*` for all mail.
    pub category: String,
    pub reason: String,
    pub source: String,
}

/// What became of a leased message, for the store to record (the lease ends).
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub id: MessageId,
    /// The message's playbook, for the metrics of what became of messages.
    pub playbook: String,
    pub status: Status,
    pub reason: Option<String>,
    /// When it may next go (held or deferred).
    pub not_before: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub attempt: Option<Attempt>,
    pub suppress: Option<Suppression>,
}

impl Settle {
    /// A message that goes back to wait, unchanged but for when and why.
    pub fn hold(m: &Outgoing, until: DateTime<Utc>, reason: String) -> Self {
        Self {
            id: m.id,
            playbook: m.key.playbook.clone(),
            status: m.status,
            reason: Some(reason),
            not_before: Some(until),
            subject: None,
            sent_at: None,
            attempt: None,
            suppress: None,
        }
    }

    /// A message that will never go, for `reason`.
    pub fn end(m: &Outgoing, status: Status, reason: String) -> Self {
        Self {
            id: m.id,
            playbook: m.key.playbook.clone(),
            status,
            reason: Some(reason),
            not_before: None,
            subject: None,
            sent_at: None,
            attempt: None,
            suppress: None,
        }
    }
}

impl Kind {
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Checkin, Self::Tip, Self::Reminder, Self::Incident]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

impl Survey {
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Nps, Self::Csat, Self::Ces, Self::Yesno]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}
