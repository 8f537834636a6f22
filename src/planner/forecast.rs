//! The forecast: what planning and delivery would do between now and a
//! horizon, from the planner's own code path and delivery's own policy,
//! writing nothing. Catch-up shows as planning applies it.

use crate::domain::account::{AccountFacts, AccountId};
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Planner;
use crate::domain::catchup;
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::holiday;
use crate::domain::message::{Outgoing, Status};
use crate::domain::plan::{CronMemo, Due, Horizon};
use crate::domain::playbook::{Kind, Trigger};
use crate::domain::policy::{self, Decision, Pending, Recipient};
use crate::domain::window::Windows;
use crate::store::{self, Accounts, Customers, Outbox, Planning};

/// One forecast line (the JSON shape is a contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastRow {
    pub customer_id: String,
    pub playbook: String,
    pub step: String,
    pub at: DateTime<Utc>,
    pub template: String,
    /// The subject as this customer would see it; none when the template
    /// cannot be rendered for them (`tend preview` says why).
    pub subject: Option<String>,
    /// What becomes of it at `at`: `sent`, or `expired` (superseded by a
    /// later occurrence after a gap, so it never goes).
    pub status: Status,
    /// Why, when it does not go.
    pub reason: Option<String>,
    /// The holiday it waits out, when it goes after one (`Christmas Eve
    /// (2026-12-24)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_out: Option<String>,
    /// The end of the customer's quiet period (`quiet_until`), when it
    /// waits for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_until: Option<DateTime<Utc>>,
    /// The occurrence's own time (`at` is when it goes or is expired).
    pub due_at: DateTime<Utc>,
    /// The customer's time zone, for showing `at` as they will see it.
    #[serde(skip)]
    pub zone: chrono_tz::Tz,
}

/// A message the forecast cannot place in time because delivery holds it
/// with no end known (an open incident affects the customer).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRow {
    pub customer_id: String,
    pub playbook: String,
    pub step: String,
    /// Delivery's words for it, as `tend messages` shows them.
    pub reason: String,
}

/// What the forecast found: what goes and when, and what is held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forecast {
    pub rows: Vec<ForecastRow>,
    pub held: Vec<HeldRow>,
}

/// What a forecast row's subject is rendered from.
pub struct Forecasting<'a> {
    pub customer: &'a Customer,
    pub template: &'a str,
    pub category: &'a str,
    pub survey: Option<crate::domain::playbook::Survey>,
    /// The incident an incident or maintenance notice tells of.
    pub incident: Option<&'a serde_json::Value>,
    /// When it would go.
    pub at: DateTime<Utc>,
    /// The customer's account and its owner, as delivery would give it.
    pub account: Option<&'a crate::domain::account::AccountFacts>,
}

/// A message the forecast places in time: one waiting in the outbox, or an
/// occurrence not yet planned.
struct Coming<'a> {
    playbook: &'a str,
    step: &'a str,
    kind: Kind,
    category: &'a str,
    template: &'a str,
    survey: Option<crate::domain::playbook::Survey>,
    incident: Option<&'a serde_json::Value>,
    urgent: bool,
    operational: bool,
    /// The occurrence's own time.
    due_at: DateTime<Utc>,
    send_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// From a cron step (catch-up applies).
    recurring: bool,
}

/// A coming message as the send policy sees it.
fn pending<'b>(windows: &'b Windows, c: &Coming<'b>) -> Pending<'b> {
    Pending {
        kind: c.kind,
        category: c.category,
        urgent: c.urgent,
        operational: c.operational,
        not_before: c.send_at,
        expires_at: c.expires_at,
        window: windows.of(c.playbook),
    }
}

/// What the forecast expects of one message.
enum Fate {
    /// It goes at this instant.
    Sent(DateTime<Utc>),
    /// It is recorded as `expired` at this instant, for this reason.
    Superseded(DateTime<Utc>, String),
    /// Delivery holds it with no end known (an open incident), for this
    /// reason.
    Held(String),
}

impl<'a> Coming<'a> {
    fn queued(m: &'a Outgoing, recurring: bool) -> Self {
        Self {
            playbook: &m.key.playbook,
            step: &m.key.step,
            kind: m.kind,
            category: &m.category,
            template: &m.template,
            survey: m.survey,
            incident: m.notice.as_ref().map(|n| &n.incident),
            urgent: m.urgent,
            operational: policy::is_operational(m.kind, m.notice.is_some()),
            due_at: m.due_at,
            send_at: m.not_before,
            expires_at: m.expires_at,
            recurring,
        }
    }

    fn new(d: &'a Due) -> Self {
        Self {
            playbook: &d.key.playbook,
            step: &d.key.step,
            kind: d.kind,
            category: &d.category,
            template: &d.template,
            survey: d.survey,
            incident: None,
            urgent: d.kind == Kind::Incident,
            operational: policy::is_operational(d.kind, false),
            due_at: d.due_at,
            send_at: d.send_at,
            expires_at: d.expires_at,
            recurring: d.recurring,
        }
    }
}

impl Planner {
    /// What would be sent between `now` and `until`, and when: the
    /// messages already waiting in the outbox and the step occurrences not
    /// yet planned, decided by delivery's own policy (`policy::decide`:
    /// send windows, the frequency cap counting what was sent recently,
    /// priorities, quiet while an open incident affects the customer);
    /// writes nothing. Conditions are evaluated as of `now`. Catch-up shows
    /// as planning applies it: an occurrence superseded by a later one is a
    /// row with status `expired` and the reason, at the moment it is
    /// recorded. One held for an open incident is listed apart, with
    /// delivery's reason; any other message that is suppressed, or would
    /// expire first, is not shown.
    pub async fn forecast(
        &self,
        store: &(impl Planning + Customers + Accounts + Outbox),
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        only: Option<&CustomerId>,
        subject: impl Fn(&Forecasting<'_>) -> Option<String>,
    ) -> Result<Forecast, store::Error> {
        let mut rows = Vec::new();
        let mut held = Vec::new();
        let cron = CronMemo::default();
        let mut after: Option<CustomerId> = None;
        loop {
            let page = match only {
                Some(id) if after.is_none() => store.customer(id).await?.into_iter().collect(),
                Some(_) => Vec::new(),
                None => {
                    store
                        .customers_page(after.as_ref(), store.planning_page(), None)
                        .await?
                }
            };
            let Some(last) = page.last() else { break };
            after = Some(last.record.id.clone());
            let ids: Vec<CustomerId> = page.iter().map(|c| c.record.id.clone()).collect();
            let mut histories = store.planning_history(&ids).await?;
            // Subjects are rendered with the account, as delivery does.
            self.attach_accounts_always(store, page.iter(), &mut histories)
                .await?;
            let mut queued: HashMap<CustomerId, Vec<Outgoing>> = HashMap::new();
            for m in store.queued(&ids).await? {
                queued
                    .entry(m.customer.record.id.clone())
                    .or_default()
                    .push(m);
            }
            let sent = store.sent_since(&ids, now - self.policy.per).await?;
            let incidents = if self.policy.quiet_during_incidents {
                store.quiet_customers(&ids).await?
            } else {
                HashMap::new()
            };
            let coming = self.account_coming(store, &page, now, until, &cron).await?;
            for mut customer in page {
                let Some(history) = histories.get_mut(&customer.record.id) else {
                    continue;
                };
                let horizon = Horizon {
                    now,
                    until,
                    window: self.windows.general(),
                    cron: &cron,
                };
                let waiting = queued.remove(&customer.record.id).unwrap_or_default();
                // The forecast assumes what waits will go: `sent(step)` holds
                // for a step already in the outbox, so a step meant to go
                // once does not show again next week.
                for m in waiting.iter().filter(|m| m.suppressed.is_none()) {
                    history
                        .sent
                        .insert((m.key.playbook.clone(), m.key.step.clone()));
                }
                let (_, mut items) = self.plan_customer(&mut customer, history, &horizon);
                // And what their company's account-scope steps send them.
                let account = customer.record.account_id.clone();
                let company = account.as_ref().and_then(|a| coming.get(a));
                if let Some((account, (dues, contacts, _))) =
                    account.as_ref().and_then(|a| company.map(|c| (a, c)))
                {
                    for item in dues {
                        let to = self.recipients_of(&item.key);
                        let reached = crate::domain::account::recipients(contacts, to)
                            .iter()
                            .any(|c| c.record.id == customer.record.id);
                        if reached {
                            items.push(self.for_contact(&customer, account, item));
                        }
                    }
                    items.sort_by(|a, b| (a.send_at, &a.key).cmp(&(b.send_at, &b.key)));
                }
                let already = sent
                    .get(&customer.record.id)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let to = Recipient::of(
                    &customer,
                    &self.windows,
                    already,
                    incidents.get(&customer.record.id).map(String::as_str),
                );
                let fates = self.fates(&waiting, &items, &to, now, until);
                for (c, fate) in fates {
                    let (at, status, reason) = match fate {
                        Fate::Sent(at) => (at, Status::Sent, None),
                        Fate::Superseded(at, reason) => (at, Status::Expired, Some(reason)),
                        Fate::Held(reason) => {
                            held.push(HeldRow {
                                customer_id: customer.record.id.to_string(),
                                playbook: c.playbook.to_owned(),
                                step: c.step.to_owned(),
                                reason,
                            });
                            continue;
                        }
                    };
                    if at > until {
                        continue;
                    }
                    let subject = subject(&Forecasting {
                        customer: &customer,
                        template: c.template,
                        category: c.category,
                        survey: c.survey,
                        incident: c.incident,
                        at,
                        // The account as it will be then (its stage brought
                        // up to date), else as stored.
                        account: company
                            .map(|(_, _, facts)| facts)
                            .or(history.account.as_ref()),
                    });
                    let goes = status == Status::Sent;
                    let due = now.max(c.send_at);
                    let waits_out = goes
                        .then(|| {
                            let window = self.windows.of(c.playbook);
                            let zone = customer.record.timezone;
                            holiday::waited_out(window, due, at, zone, to.holidays)
                        })
                        .flatten()
                        .map(|(date, name)| format!("{name} ({date})"));
                    let quiet_until = goes
                        .then(|| policy::waits_for_quiet(&pending(&self.windows, &c), &to, due))
                        .flatten();
                    rows.push(ForecastRow {
                        customer_id: customer.record.id.to_string(),
                        playbook: c.playbook.to_owned(),
                        step: c.step.to_owned(),
                        at,
                        template: c.template.to_owned(),
                        subject,
                        status,
                        reason,
                        waits_out,
                        quiet_until,
                        due_at: c.due_at,
                        zone: customer.record.timezone,
                    });
                }
            }
        }
        rows.sort_by(|a, b| {
            (a.at, &a.customer_id, &a.playbook, &a.step, a.due_at).cmp(&(
                b.at,
                &b.customer_id,
                &b.playbook,
                &b.step,
                b.due_at,
            ))
        });
        held.sort_by(|a, b| {
            (&a.customer_id, &a.playbook, &a.step).cmp(&(&b.customer_id, &b.playbook, &b.step))
        });
        Ok(Forecast { rows, held })
    }

    /// What becomes of one customer's coming mail within the horizon: the
    /// messages `waiting` in the outbox and the new occurrences `items`, with
    /// send windows, the frequency cap (counting what was sent to them)
    /// and priorities applied, as delivery would apply them, and catch-up
    /// as planning applies it: an occurrence of a recurring step still
    /// waiting when the step's next falls due is superseded by it. Those
    /// that are suppressed or would expire otherwise are left out.
    fn fates<'a>(
        &self,
        waiting: &'a [Outgoing],
        items: &'a [Due],
        to: &Recipient<'_>,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(Coming<'a>, Fate)> {
        let coming = waiting
            .iter()
            .filter(|m| m.suppressed.is_none())
            .map(|m| Coming::queued(m, self.recurring(&m.key.playbook, &m.key.step)))
            .chain(
                items
                    .iter()
                    .filter(|d| d.expired.is_none())
                    .map(Coming::new),
            )
            .collect::<Vec<_>>();
        // Every occurrence of a recurring step the planner will record,
        // whatever becomes of it, supersedes the step's older messages that
        // still wait when it falls due.
        let siblings: Vec<(&str, &str, DateTime<Utc>)> = coming
            .iter()
            .filter(|c| c.recurring)
            .map(|c| (c.playbook, c.step, c.due_at))
            .chain(
                items
                    .iter()
                    .filter(|d| d.recurring && d.expired.is_some())
                    .map(|d| (d.key.playbook.as_str(), d.key.step.as_str(), d.due_at)),
            )
            .collect();
        let next_of = |c: &Coming<'_>| {
            siblings
                .iter()
                .filter(|(p, s, at)| *p == c.playbook && *s == c.step && *at > c.due_at)
                .map(|(_, _, at)| *at)
                .min()
        };
        // When each would go, as delivery decides it.
        // A message the cap holds past its step's next occurrence is
        // superseded when that one falls due; without it, others may go
        // sooner, but never before the earliest moment a superseded one
        // was to go (the cap counts backwards from each send). So each
        // round takes those superseded no later than that moment, which
        // includes the first to be, and decides again without them, until
        // none is left: at most one round a message.
        let mut superseded: Vec<Option<DateTime<Utc>>> = vec![None; coming.len()];
        let decided = loop {
            let live: Vec<usize> = (0..coming.len())
                .filter(|&i| superseded[i].is_none())
                .collect();
            let pending: Vec<Pending<'_>> = live
                .iter()
                .map(|&i| pending(&self.windows, &coming[i]))
                .collect();
            let decisions = policy::decide(&pending, to, &self.policy, now, until);
            // (message, when it is superseded, when it was to go: none
            // beyond the horizon)
            let overtaken: Vec<(usize, DateTime<Utc>, Option<DateTime<Utc>>)> = live
                .iter()
                .zip(&decisions)
                .filter(|(i, _)| coming[**i].recurring)
                .filter_map(|(&i, decision)| {
                    let goes = match decision {
                        Decision::SendNow => Some(now),
                        // Crowded out, it waits until its next look: a
                        // next occurrence due before then supersedes it.
                        Decision::SendAt { at, .. } | Decision::Crowded { until: at, .. }
                            if *at <= until =>
                        {
                            Some(*at)
                        }
                        // Beyond the horizon, or held with no end known:
                        // after any next occurrence in it.
                        Decision::SendAt { .. } | Decision::Hold { .. } => None,
                        Decision::Crowded { .. } | Decision::Expire(_) => return None,
                    };
                    let next = next_of(&coming[i])?;
                    goes.is_none_or(|g| catchup::overtaken(g, next))
                        .then(|| (i, next.max(now), goes))
                })
                .collect();
            if overtaken.is_empty() {
                break live.into_iter().zip(decisions).collect::<HashMap<_, _>>();
            }
            let settled = overtaken.iter().filter_map(|(_, _, goes)| *goes).min();
            for (i, at, _) in overtaken {
                if settled.is_none_or(|s| at <= s) {
                    superseded[i] = Some(at);
                }
            }
        };
        let mut fates = Vec::new();
        for (i, c) in coming.into_iter().enumerate() {
            if let Some(at) = superseded[i] {
                fates.push((c, Fate::Superseded(at, catchup::SUPERSEDED.to_owned())));
            } else {
                match decided.get(&i) {
                    Some(Decision::SendNow) => fates.push((c, Fate::Sent(now))),
                    Some(Decision::SendAt { at, .. }) => fates.push((c, Fate::Sent(*at))),
                    Some(Decision::Hold { reason, .. }) => {
                        fates.push((c, Fate::Held(reason.clone())));
                    }
                    Some(Decision::Expire(_) | Decision::Crowded { .. }) | None => {}
                }
            }
        }
        // New occurrences planning records as superseded at once.
        for d in items {
            if let (Some(at), Some(reason)) = (d.superseded_at, &d.expired) {
                fates.push((Coming::new(d), Fate::Superseded(at, reason.clone())));
            }
        }
        fates
    }

    /// What the account-scope steps would send the accounts of `page`'s
    /// contacts, by account: the occurrences and the contacts to choose
    /// recipients from.
    async fn account_coming(
        &self,
        store: &(impl Planning + Accounts),
        page: &[Customer],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        cron: &CronMemo,
    ) -> Result<HashMap<AccountId, (Vec<Due>, Vec<Customer>, AccountFacts)>, store::Error> {
        let mut ids: Vec<AccountId> = page
            .iter()
            .filter_map(|c| c.record.account_id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || self.accounts.is_empty() {
            return Ok(HashMap::new());
        }
        let mut accounts = store.accounts_of(&ids).await?;
        let mut planning = store.account_planning(&ids).await?;
        let horizon = Horizon {
            now,
            until,
            window: self.windows.general(),
            cron,
        };
        let mut coming = HashMap::new();
        for id in ids {
            let (Some(account), Some((contacts, mut history))) =
                (accounts.remove(&id), planning.remove(&id))
            else {
                continue;
            };
            let (_, _, dues) = self.account_dues(account, &mut history, &horizon);
            if let Some(facts) = history.account {
                coming.insert(id, (dues, contacts, facts));
            }
        }
        Ok(coming)
    }

    /// Whether `step` of `playbook` recurs (a cron step): catch-up applies
    /// to its waiting messages.
    fn recurring(&self, playbook: &str, step: &str) -> bool {
        self.playbooks
            .iter()
            .filter(|p| p.name == playbook)
            .flat_map(|p| &p.steps)
            .any(|s| s.id == step && matches!(s.trigger, Trigger::Cron { .. }))
    }
}
