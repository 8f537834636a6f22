//! Sending one announcement to an audience (`tend broadcast`): finds the
//! customers a CEL selector matches (as an incident's `--affects` does,
//! with each customer's account), works out with delivery's own policy
//! when each would get it, and, when asked, puts their messages into the
//! outbox, where delivery sends them like any other: in the send window,
//! within the frequency cap, by priority, never to who left the category.
//! The decisions are in `domain::broadcast` and `domain::policy`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::settings::Settings;
use crate::domain::broadcast::{Broadcast, Reach};
use crate::domain::condition::compile_checked;
use crate::domain::customer::CustomerId;
use crate::domain::incident::valid_id;
use crate::domain::message::{MessageId, NewMessage, Outgoing};
use crate::domain::planned::PlanWrite;
use crate::domain::playbook::Kind;
use crate::domain::policy::{self, Pending, Recipient};
use crate::domain::window::Windows;
use crate::render::name::TemplateNameError;
use crate::store::{self, Accounts, Customers, Outbox, Planning, Responses};

/// Customers read and evaluated per round.
const PAGE: u32 = 2000;

/// Why a broadcast was not made. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error(
        "{0:?} cannot name a broadcast; use letters, digits, '.', '_' and '-' (such as release-3.2)"
    )]
    BadId(String),
    #[error("--audience: {0}; nothing was sent")]
    BadAudience(String),
    #[error("{0}; nothing was sent")]
    Template(TemplateNameError),
    #[error(
        "category {0:?} is not configured; add a [[category]] named {0:?} to the config (customers can leave it), or pass --category with one of: {1}"
    )]
    Category(String, String),
    #[error("--at {0} has passed; leave it out to start now, or give a time to come (RFC 3339)")]
    Past(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What a broadcast is asked to be, before it is checked.
#[derive(Debug, Clone)]
pub struct Asked {
    pub template: String,
    pub audience: String,
    pub category: String,
    pub kind: Kind,
    pub id: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

/// Checks what is asked against the configuration: the template exists,
/// the category is configured, the time has not passed, the id can be
/// one. The id defaults to the template's name.
pub fn prepare(
    settings: &Settings,
    asked: &Asked,
    now: DateTime<Utc>,
) -> Result<Broadcast, BroadcastError> {
    // As in playbooks, a name given with its file ending means the same.
    let template = asked.template.trim().trim_end_matches(".md.hbs").to_owned();
    crate::render::name::find(Path::new(&settings.paths.templates), &template)
        .map_err(BroadcastError::Template)?;
    if !settings.categories.iter().any(|c| c.name == asked.category) {
        let known: Vec<&str> = settings
            .categories
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(BroadcastError::Category(
            asked.category.clone(),
            known.join(", "),
        ));
    }
    // A minute's grace: `--at` written for "now" by a script is not late.
    let at = match asked.at {
        Some(at) if at < now - chrono::Duration::minutes(1) => {
            return Err(BroadcastError::Past(at.to_rfc3339()));
        }
        Some(at) => at.max(now),
        None => now,
    };
    // By default a broadcast is its template: run again (to reach
    // customers imported since), it sends no one a second copy.
    let id = asked
        .id
        .clone()
        .unwrap_or_else(|| template.replace('/', "-"));
    if !valid_id(&id) {
        return Err(BroadcastError::BadId(id));
    }
    compile_checked(&asked.audience).map_err(BroadcastError::BadAudience)?;
    // Its place in `delivery.priority` and its Message-ID domain, as an
    // incident notice's.
    let cx = crate::incident::Context::new(settings);
    Ok(Broadcast {
        id,
        template,
        category: asked.category.clone(),
        kind: asked.kind,
        at,
        priority: cx.priority(&asked.category),
        domain: cx.domain,
    })
}

/// Finds the broadcast's audience and how far it reaches; with `send`,
/// puts a message for each reached customer into the outbox (a customer
/// who has it already gets no second one).
pub async fn reach(
    store: &(impl Customers + Accounts + Outbox + Responses + Planning),
    settings: &Settings,
    windows: &Windows,
    broadcast: &Broadcast,
    audience: &str,
    now: DateTime<Utc>,
    send: bool,
) -> Result<Reach, BroadcastError> {
    let selector = compile_checked(audience).map_err(BroadcastError::BadAudience)?;
    let prefilter = selector.prefilter();
    let rules = settings.delivery.policy();
    let key = broadcast.key();
    let mut reach = Reach::default();
    let mut after: Option<CustomerId> = None;
    loop {
        let page = store
            .customers_page(after.as_ref(), PAGE, prefilter.as_ref())
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.record.id.clone());
        let page = crate::incident::with_accounts(store, page, &settings.team)
            .await
            .map_err(|e| match e {
                crate::incident::IncidentError::Store(e) => BroadcastError::Store(e),
                other => BroadcastError::BadAudience(other.to_string()),
            })?;
        let matched = crate::incident::matching(&selector, page, now).await;
        if matched.is_empty() {
            continue;
        }
        reach.matched += matched.len() as u64;
        let ids: Vec<CustomerId> = matched.iter().map(|c| c.record.id.clone()).collect();
        let mut queued: HashMap<CustomerId, Vec<Outgoing>> = HashMap::new();
        for m in store.queued(&ids).await? {
            queued
                .entry(m.customer.record.id.clone())
                .or_default()
                .push(m);
        }
        // Whoever has it in the outbox already, waiting or gone.
        let histories = store.planning_history(&ids).await?;
        let sent = store.sent_since(&ids, now - rules.per).await?;
        let incidents = if rules.quiet_during_incidents {
            store.quiet_customers(&ids).await?
        } else {
            HashMap::new()
        };
        let left = store.suppressed_among(&ids, &broadcast.category).await?;
        // Each reached customer's message and what delivery will make of it.
        let mut messages = Vec::new();
        let mut decisions = Vec::new();
        for customer in &matched {
            let id = &customer.record.id;
            let waiting = queued.remove(id).unwrap_or_default();
            if histories.get(id).is_some_and(|h| h.planned.contains(&key)) {
                reach.already += 1;
                continue;
            }
            if left.contains(id) {
                reach.suppressed += 1;
                continue;
            }
            // What waits for them competes with it for the cap, as it will.
            let mut pending: Vec<Pending<'_>> = waiting
                .iter()
                .filter(|m| m.suppressed.is_none())
                .map(|m| Pending::waiting(m, windows))
                .collect();
            pending.push(Pending {
                kind: broadcast.kind,
                category: &broadcast.category,
                urgent: false,
                operational: false,
                not_before: broadcast.at,
                expires_at: broadcast.expires_at(),
                window: windows.of(crate::domain::broadcast::PLAYBOOK),
            });
            let to = Recipient::of(
                customer,
                windows,
                sent.get(id).map(Vec::as_slice).unwrap_or(&[]),
                incidents.get(id).map(String::as_str),
            );
            let decided = policy::decide(&pending, &to, &rules, now, broadcast.expires_at());
            let message = broadcast.message(id, &customer.record.email.to_string());
            if let Some(decision) = decided.into_iter().last() {
                decisions.push((message.id, decision));
                messages.push(message);
            }
        }
        let mine = if send && !messages.is_empty() {
            written(store, messages, now).await?
        } else {
            None
        };
        for (id, decision) in &decisions {
            match &mine {
                // Another run of the same broadcast wrote theirs first.
                Some(mine) if !mine.contains(id) => reach.already += 1,
                _ => {
                    reach.count(decision, broadcast.at, now);
                    reach.queued += u64::from(send);
                }
            }
        }
    }
    Ok(reach)
}

/// Puts a page's messages into the outbox; `None` when every one was
/// written, else those that were (another run wrote the others first).
async fn written(
    store: &(impl Outbox + Planning),
    messages: Vec<NewMessage>,
    now: DateTime<Utc>,
) -> Result<Option<HashSet<MessageId>>, BroadcastError> {
    let offered = messages.len() as u64;
    let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
    let plan = PlanWrite {
        planned: messages,
        ..PlanWrite::default()
    };
    if store.record_plan(&plan, now).await?.planned == offered {
        return Ok(None);
    }
    let mut mine = HashSet::new();
    for id in ids {
        if store.outgoing(id).await?.is_some() {
            mine.insert(id);
        }
    }
    Ok(Some(mine))
}
