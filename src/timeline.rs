//! One person's history, as `tend customer show` and
//! `GET /api/v1/customers/{id}` give it (the JSON shape is a contract): the
//! record, their account, every message with its status and reason, every
//! response, the stages they entered, their events and what they are
//! unsubscribed from.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::account::Account;
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::message::{MessageFilter, MessageView, ResponseView};
use crate::store::{self, Accounts, Customers, Outbox, Planning, Responses};

#[derive(Debug, Serialize)]
pub struct Timeline {
    pub customer: Value,
    /// Their account (null for a person who is their own).
    pub account: Option<Value>,
    pub messages: Vec<MessageView>,
    pub responses: Vec<ResponseView>,
    pub stages: Vec<Entered>,
    pub events: Vec<Event>,
    pub suppressions: Vec<Unsubscribed>,
}

#[derive(Debug, Serialize)]
pub struct Entered {
    pub stage: String,
    pub entered_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub id: Option<String>,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Unsubscribed {
    /// A category, or `*` for all mail.
    pub category: String,
    pub reason: String,
    pub source: String,
}

/// The customer's fields as the timeline shows them.
fn customer_json(c: &Customer) -> Value {
    let r = &c.record;
    json!({
        "id": r.id.to_string(),
        "email": r.email.to_string(),
        "name": r.name,
        "timezone": r.timezone.name(),
        "locale": r.locale,
        "plan": r.plan,
        "signup_at": r.signup_at,
        "renewal_at": r.renewal_at,
        "last_seen_at": r.last_seen_at,
        "health": r.health,
        "attributes": r.attributes,
        "account_id": r.account_id.as_ref().map(|a| a.to_string()),
        "roles": r.roles.names(),
        "stage": c.stage,
        "stage_entered_at": c.stage_entered_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn account_json(a: &Account) -> Value {
    let r = &a.record;
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "plan": r.plan,
        "renewal_at": r.renewal_at,
        "health": r.health,
        "owner": r.owner,
        "stage": a.stage,
        "contacts": a.contacts,
    })
}

/// The timeline of `id`, or `None` when no customer has it.
pub async fn read(
    store: &(impl Customers + Accounts + Planning + Outbox + Responses),
    id: &CustomerId,
) -> Result<Option<Timeline>, store::Error> {
    let Some(customer) = store.customer(id).await? else {
        return Ok(None);
    };
    let account = match &customer.record.account_id {
        Some(account) => store.account(account).await?.as_ref().map(account_json),
        None => None,
    };
    let messages = store
        .messages(&MessageFilter {
            status: None,
            customer: Some(id.clone()),
        })
        .await?;
    let responses = store.responses_from(id).await?;
    let mut history = store
        .planning_history(std::slice::from_ref(id))
        .await?
        .remove(id)
        .unwrap_or_default();
    history.stage_entries.sort_by_key(|e| e.entered_at);
    let events = store
        .events_of(id)
        .await?
        .into_iter()
        .map(|e| Event {
            id: e.record.id,
            name: e.record.name,
            occurred_at: e.record.occurred_at,
            properties: e.record.properties,
        })
        .collect();
    let suppressions = store
        .suppressions_of(id)
        .await?
        .into_iter()
        .map(|s| Unsubscribed {
            category: s.category,
            reason: s.reason,
            source: s.source,
        })
        .collect();
    Ok(Some(Timeline {
        customer: customer_json(&customer),
        account,
        messages,
        responses,
        stages: history
            .stage_entries
            .into_iter()
            .map(|e| Entered {
                stage: e.stage,
                entered_at: e.entered_at,
            })
            .collect(),
        events,
        suppressions,
    }))
}
