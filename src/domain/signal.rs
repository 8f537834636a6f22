//! Signals: what happened that people and other systems hear about (a
//! message sent, a response, a stage entered, an incident changed), as the
//! store records them beside the change itself, and which of them anyone
//! listens for.

use super::feed::Position;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::message::{MessageView, ResponseView};
use super::planned::{AccountStageChange, StageChange};
use super::response::ResponseKind;

/// Every signal type, as webhook subscribers name them.
pub const TYPES: [&str; 15] = [
    "message.sent",
    "message.failed",
    "message.bounced",
    "response.survey",
    "response.click",
    "response.reply",
    "response.auto_reply",
    "response.unsubscribe",
    "response.bounce",
    "response.complaint",
    "stage.changed",
    "incident.opened",
    "incident.updated",
    "incident.resolved",
    CUSTOMER_ERASED,
];

/// The type of an erasure's signal: systems that copied the person's data
/// (through webhooks or the read API) are told to erase it too.
pub const CUSTOMER_ERASED: &str = "customer.erased";

/// The type of a stage change's signal.
pub const STAGE_CHANGED: &str = "stage.changed";

/// The type of a response's signal.
pub fn response_type(kind: ResponseKind) -> &'static str {
    match kind {
        ResponseKind::Survey => "response.survey",
        ResponseKind::Click => "response.click",
        ResponseKind::Reply => "response.reply",
        ResponseKind::AutoReply => "response.auto_reply",
        ResponseKind::Unsubscribe => "response.unsubscribe",
        ResponseKind::Bounce => "response.bounce",
        ResponseKind::Complaint => "response.complaint",
    }
}

/// A signal about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    /// `evt_` and a time-ordered UUID: the `webhook-id` of every delivery.
    pub id: String,
    pub kind: &'static str,
    pub customer_id: Option<String>,
    /// The object it is about, as the read API and the JSON output show it.
    pub payload: Map<String, Value>,
    pub occurred_at: DateTime<Utc>,
}

impl NewSignal {
    fn new(
        kind: &'static str,
        customer: Option<&str>,
        object: impl Serialize,
        at: DateTime<Utc>,
    ) -> Self {
        let payload = match serde_json::to_value(object) {
            Ok(Value::Object(map)) => map,
            // Every object passed here serializes to a JSON object.
            other => Map::from_iter([("value".to_owned(), other.unwrap_or(Value::Null))]),
        };
        Self {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            kind,
            customer_id: customer.map(str::to_owned),
            payload,
            occurred_at: at,
        }
    }

    /// A response was recorded.
    pub fn response(kind: ResponseKind, response: &ResponseView) -> Self {
        Self::new(
            response_type(kind),
            response.customer_id.as_deref(),
            response,
            response.received_at,
        )
    }

    /// A message was sent, failed, or bounced (`kind`).
    pub fn message(kind: &'static str, message: &MessageView, at: DateTime<Utc>) -> Self {
        Self::new(kind, Some(&message.customer_id), message, at)
    }

    /// A customer entered a lifecycle stage.
    pub fn stage(change: &StageChange) -> Self {
        Self::new(
            STAGE_CHANGED,
            Some(change.customer_id.as_str()),
            serde_json::json!({
                "customer_id": change.customer_id.as_str(),
                "from": change.from,
                "to": change.to,
                "changed_at": change.at,
            }),
            change.at,
        )
    }

    /// An account entered an account stage.
    pub fn account_stage(change: &AccountStageChange) -> Self {
        Self::new(
            STAGE_CHANGED,
            None,
            serde_json::json!({
                "account_id": change.account_id.as_str(),
                "from": change.from,
                "to": change.to,
                "changed_at": change.at,
            }),
            change.at,
        )
    }

    /// A person was erased at their request: their id (the only thing of
    /// them it holds, for the receiver to find its copy) and their
    /// stand-in. It belongs to no customer, so no later erasure removes it;
    /// it is pruned with the other signals.
    pub fn erased(customer_id: &str, stand_in: &str, at: DateTime<Utc>) -> Self {
        Self::new(
            CUSTOMER_ERASED,
            None,
            serde_json::json!({
                "customer_id": customer_id,
                "stand_in": stand_in,
                "erased_at": at,
            }),
            at,
        )
    }

    /// An incident opened, changed status, or closed (`kind`).
    pub fn incident(kind: &'static str, object: Value, at: DateTime<Utc>) -> Self {
        Self::new(kind, None, object, at)
    }
}

/// A recorded signal, in the order the store committed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: String,
    pub kind: String,
    pub customer_id: Option<String>,
    pub payload: Map<String, Value>,
    pub occurred_at: DateTime<Utc>,
    pub after: Position,
}

impl Signal {
    /// The body every webhook receives: the Standard Webhooks envelope.
    pub fn envelope(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "timestamp": self.occurred_at,
            "data": self.payload,
        })
    }

    /// A string field of the object.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }
}

/// Which signal types anyone listens for: only those are recorded, so a
/// store nobody listens to pays nothing per message sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interest {
    patterns: Vec<String>,
}

impl Interest {
    /// From patterns such as `message.sent`, `response.*` or `*`.
    pub fn of<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        patterns.sort();
        patterns.dedup();
        Self { patterns }
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.patterns.iter().any(|p| matches(p, kind))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Whether a subscription pattern takes a signal type: exact, `prefix.*`,
/// or `*`.
pub fn matches(pattern: &str, kind: &str) -> bool {
    pattern == "*"
        || pattern == kind
        || pattern
            .strip_suffix(".*")
            .is_some_and(|prefix| kind.split_once('.').is_some_and(|(p, _)| p == prefix))
}

/// Whether a subscription pattern names any signal type at all.
pub fn is_pattern(pattern: &str) -> bool {
    TYPES.iter().any(|t| matches(pattern, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_take_exact_types_families_and_everything() {
        assert!(matches("response.*", "response.survey"));
        assert!(!matches("response.*", "message.sent"));
        assert!(matches("*", "stage.changed"));
        assert!(matches("message.sent", "message.sent"));
        assert!(!matches("message.sent", "message.failed"));
        assert!(!matches("respon.*", "response.survey"));
        assert!(is_pattern("incident.*") && is_pattern("incident.resolved"));
        assert!(!is_pattern("response.surveys") && !is_pattern("account.*"));
        assert!(is_pattern("customer.*") && is_pattern("customer.erased"));
    }

    #[test]
    fn interest_wants_only_what_a_pattern_takes() {
        let interest = Interest::of(["response.*", "stage.changed"]);
        assert!(interest.wants("response.reply"));
        assert!(interest.wants("stage.changed"));
        assert!(!interest.wants("message.sent"));
        assert!(Interest::default().is_empty());
    }
}
