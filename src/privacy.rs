//! Privacy requests: everything tend holds about one person, as one JSON
//! document (`export`), and their erasure (`erase`): what was sent to them
//! and what they answered stays under a stand-in with no name, address or
//! words of theirs, so every report stays true; the rest goes; their
//! address is kept only as a hash, so an import that brings it back is
//! refused and they are never mailed again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::customer::CustomerId;
use crate::store::{self, Accounts, Customers, Erasure, Outbox, Planning, Responses};

/// How an erased address is kept: the SHA-256 of the address in lower
/// case, enough to know it again, not to read it.
pub fn address_hash(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything about `id`: their record, account, every message with its
/// attempts, every response, stage, event and suppression (and those
/// lifted), and the raw mail they sent. `None` when no such person.
pub async fn export(
    store: &(impl Customers + Accounts + Planning + Outbox + Responses),
    id: &CustomerId,
    now: DateTime<Utc>,
) -> Result<Option<Value>, store::Error> {
    let Some(timeline) = crate::timeline::read(store, id).await? else {
        return Ok(None);
    };
    let mut attempts = serde_json::Map::new();
    for message in &timeline.messages {
        if let Ok(mid) = message.id.parse() {
            let tried = store.attempts(&mid).await?;
            attempts.insert(
                message.id.clone(),
                serde_json::to_value(tried).unwrap_or_default(),
            );
        }
    }
    let inbound: Vec<Value> = store
        .inbound_of(id)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "received_at": m.received_at,
                "classification": m.classification,
                "raw": String::from_utf8_lossy(&m.raw),
            })
        })
        .collect();
    let lifted = store.lifts_of(id).await?;
    let mut document = serde_json::to_value(&timeline).unwrap_or_default();
    if let Value::Object(map) = &mut document {
        map.insert(
            "lifted_suppressions".into(),
            serde_json::to_value(lifted).unwrap_or_default(),
        );
        map.insert("attempts".into(), Value::Object(attempts));
        map.insert("inbound".into(), Value::Array(inbound));
        map.insert("exported_at".into(), json!(now));
    }
    Ok(Some(document))
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Erased {
    pub id: String,
    /// Whom their messages and responses now belong to.
    pub stand_in: String,
    pub erased_at: DateTime<Utc>,
}

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("no customer has id {0:?}; check the id")]
    Unknown(String),
    #[error(
        "a message to {0:?} is being sent right now; nothing was erased: try again in a minute, once it has settled"
    )]
    Sending(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Erases `id`.
pub async fn erase(
    store: &impl Customers,
    id: &CustomerId,
    now: DateTime<Utc>,
) -> Result<Erased, EraseError> {
    let Some(customer) = store.customer(id).await? else {
        return Err(EraseError::Unknown(id.to_string()));
    };
    let stand_in = CustomerId::parse(&format!("erased-{}", uuid::Uuid::now_v7().simple()))
        .unwrap_or_else(|e| unreachable!("a stand-in id is a customer id: {e}"));
    let hash = address_hash(customer.record.email.as_str());
    match store.erase_customer(id, &stand_in, &hash, now).await? {
        Erasure::Done => Ok(Erased {
            id: id.to_string(),
            stand_in: stand_in.to_string(),
            erased_at: now,
        }),
        Erasure::Unknown => Err(EraseError::Unknown(id.to_string())),
        Erasure::Sending => Err(EraseError::Sending(id.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_known_again_whatever_its_case() {
        assert_eq!(
            address_hash("Ana@Example.com "),
            address_hash("ana@example.com")
        );
        assert_eq!(address_hash("ana@example.com").len(), 64);
        assert!(!address_hash("ana@example.com").contains("ana"));
    }
}
