//! What the read API and the show commands give of one person or one
//! company (the JSON shapes are a contract). A person's timeline
//! (`tend customer show`, `GET /api/v1/customers/{id}`): the record, their
//! account, every message with its status and reason, every response, the
//! stages they entered, their events and what they are unsubscribed from.
//! An account's page (`tend account show`, `GET /api/v1/accounts/{id}`):
//! its fields, owner, stage history, latest answers, and each contact with
//! their messages and responses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use std::collections::{BTreeMap, HashMap};

use serde_json::Map;

use crate::domain::account::{Account, AccountId, TeamMember};
use crate::domain::availability::Availability;
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
    /// Their own record's calendar and quiet period (in `customer` too).
    #[serde(skip)]
    pub availability: Availability,
    /// Their account's (in `account` too).
    #[serde(skip)]
    pub account_availability: Availability,
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

/// The customer's fields as the timeline shows them: their record as an
/// import row holds it, with what tend derived.
fn customer_json(c: &Customer) -> Value {
    let mut fields = c.record.as_row();
    fields.insert("stage".into(), json!(c.stage));
    fields.insert("stage_entered_at".into(), json!(c.stage_entered_at));
    fields.insert("created_at".into(), json!(c.created_at));
    fields.insert("updated_at".into(), json!(c.updated_at));
    Value::Object(fields)
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
        "holidays": r.availability.holidays,
        "quiet_until": r.availability.quiet_until,
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
            since: None,
            status: None,
            customer: Some(id.clone()),
        })
        .await?;
    let responses = store.responses_from(std::slice::from_ref(id)).await?;
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
        availability: customer.record.availability.clone(),
        account_availability: customer.account_availability.clone(),
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

/// An account as the commands show it (the JSON shape of `tend accounts`).
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub renewal_at: Option<chrono::DateTime<chrono::Utc>>,
    pub health: Option<u8>,
    pub owner: Option<String>,
    /// The holiday calendar its contacts keep unless they name their own.
    pub holidays: Option<String>,
    /// Until then only operational notices reach its contacts.
    pub quiet_until: Option<chrono::DateTime<chrono::Utc>>,
    pub stage: Option<String>,
    pub contacts: u64,
    pub attributes: Map<String, Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        let r = &a.record;
        Self {
            id: r.id.to_string(),
            name: r.name.clone(),
            plan: r.plan.clone(),
            renewal_at: r.renewal_at,
            health: r.health,
            owner: r.owner.clone(),
            holidays: r.availability.holidays.clone(),
            quiet_until: r.availability.quiet_until,
            stage: a.stage.clone(),
            contacts: a.contacts,
            attributes: r.attributes.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A contact with what they were sent and answered.
#[derive(Debug, Serialize)]
pub struct ContactView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub stage: Option<String>,
    pub messages: Vec<MessageView>,
    pub responses: Vec<ResponseView>,
}

/// The JSON shape of `tend account show`.
#[derive(Debug, Serialize)]
pub struct AccountShown {
    pub account: AccountView,
    /// The owner as the `[[team]]` has them; null when unset or unknown.
    pub owner: Option<TeamMember>,
    /// Each stage the account entered, oldest first.
    pub stages: Vec<StageEntered>,
    /// The latest answer of each survey kind from any of its contacts.
    pub latest: BTreeMap<&'static str, Answer>,
    pub contacts: Vec<ContactView>,
}

#[derive(Debug, Serialize)]
pub struct StageEntered {
    pub stage: String,
    pub entered_at: DateTime<Utc>,
}

/// One survey answer, and whose.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub value: String,
    pub at: DateTime<Utc>,
    pub contact: String,
}

/// The page of account `id` (the JSON shape of `tend account show` and
/// `GET /api/v1/accounts/{id}`), its owner found in `team`; `None` when no
/// account has that id.
pub async fn account(
    store: &(impl Accounts + Planning + Outbox + Responses),
    id: &AccountId,
    team: &[TeamMember],
) -> Result<Option<AccountShown>, store::Error> {
    let Some(account) = store.account(id).await? else {
        return Ok(None);
    };
    let mut planning = store.account_planning(std::slice::from_ref(id)).await?;
    let (people, history) = planning.remove(id).unwrap_or_default();
    let mut stages: Vec<StageEntered> = history
        .stage_entries
        .into_iter()
        .map(|e| StageEntered {
            stage: e.stage,
            entered_at: e.entered_at,
        })
        .collect();
    stages.sort_by_key(|s| s.entered_at);
    // Every contact's messages, responses and answers in a few
    // statements, however many contacts the account has.
    let ids: Vec<CustomerId> = people.iter().map(|c| c.record.id.clone()).collect();
    let mut latest: BTreeMap<&'static str, Answer> = BTreeMap::new();
    for (contact, survey, value, at) in store.survey_answers_from(&ids).await? {
        // Oldest first: a later answer replaces an earlier one.
        latest.insert(
            survey.as_str(),
            Answer {
                value,
                at,
                contact: contact.to_string(),
            },
        );
    }
    let mut messages: HashMap<String, Vec<MessageView>> = HashMap::new();
    for m in store.messages_of(&ids).await? {
        messages.entry(m.customer_id.clone()).or_default().push(m);
    }
    let mut responses: HashMap<String, Vec<ResponseView>> = HashMap::new();
    for r in store.responses_from(&ids).await? {
        if let Some(id) = r.customer_id.clone() {
            responses.entry(id).or_default().push(r);
        }
    }
    let contacts = people
        .into_iter()
        .map(|contact| {
            let id = contact.record.id.to_string();
            contact_view(
                contact,
                messages.remove(&id).unwrap_or_default(),
                responses.remove(&id).unwrap_or_default(),
            )
        })
        .collect();
    let owner = account.owner_in(team).cloned();
    Ok(Some(AccountShown {
        account: AccountView::from(&account),
        owner,
        stages,
        latest,
        contacts,
    }))
}

fn contact_view(
    contact: Customer,
    messages: Vec<MessageView>,
    responses: Vec<ResponseView>,
) -> ContactView {
    let r = contact.record;
    ContactView {
        id: r.id.to_string(),
        email: r.email.to_string(),
        name: r.name,
        roles: r.roles.names().to_vec(),
        stage: contact.stage,
        messages,
        responses,
    }
}
