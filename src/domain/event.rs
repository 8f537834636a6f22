//! Events: something a customer did or that happened to them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::customer::CustomerId;

/// A validated event as import and the API write it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Optional idempotency key: an event with a known id is not stored twice.
    pub id: Option<String>,
    pub customer_id: CustomerId,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

/// Parses an event name: lower-case words joined by `_`, `.` or `-`, so it can
/// stand in a playbook anchor (`event:NAME`) and a condition.
pub fn parse_event_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "event name {raw:?} must be 1-100 letters, digits, '_', '.' or '-' (e.g. feature_used)"
        ))
    }
}

/// Parses an event idempotency key.
pub fn parse_event_id(raw: &str) -> Result<Option<String>, String> {
    let id = raw.trim();
    if id.is_empty() {
        Ok(None)
    } else if id.len() > 200 || id.chars().any(char::is_control) {
        Err("event id must be at most 200 characters without control characters".into())
    } else {
        Ok(Some(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_event_name(" feature_used ").unwrap(), "feature_used");
        assert!(parse_event_name("feature used").is_err());
        assert!(parse_event_name("").is_err());
        assert_eq!(parse_event_id("  ").unwrap(), None);
    }
}
