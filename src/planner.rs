//! The planning pass: walks the customers page by page, brings each one's
//! lifecycle stage up to date, asks `domain::plan` what is due, and puts it
//! into the outbox. The same code path, writing nothing, gives the forecast.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::domain::catchup;
use crate::domain::condition::Facts;
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::lifecycle::StageRules;
use crate::domain::message::{NewMessage, Outgoing, Status};
use crate::domain::plan::{CronMemo, Due, History, Horizon, StageEntry, due, next_check};
use crate::domain::playbook::{Kind, Playbook, Trigger};
use crate::domain::policy::{self, Decision, Pending, Recipient};
use crate::domain::window::Windows;
use crate::playbooks::Catalog;
use crate::store::{self, DueCursor, NextCheck, PlanWrite, StageChange, Store};

/// What one planning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanOutcome {
    pub planned: u64,
    pub expired: u64,
    pub stage_changes: u64,
    /// Customers whose next planning time was written.
    pub customers: u64,
}

impl PlanOutcome {
    /// Rows the pass wrote or rewrote.
    pub fn rewritten(&self) -> u64 {
        self.planned + self.expired + self.stage_changes + self.customers
    }
}

impl std::ops::AddAssign for PlanOutcome {
    fn add_assign(&mut self, more: Self) {
        self.planned += more.planned;
        self.expired += more.expired;
        self.stage_changes += more.stage_changes;
        self.customers += more.customers;
    }
}

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

/// Everything planning needs from the configuration, prepared once.
pub struct Planner {
    playbooks: Vec<Playbook>,
    fingerprint: String,
    stages: StageRules,
    windows: Windows,
    /// What delivery decides by, for the forecast to decide the same.
    policy: policy::Rules,
    /// The domain of `mail.from`, for Message-IDs.
    domain: String,
}

impl Planner {
    pub fn new(settings: &Settings, catalog: Catalog) -> Result<Self, String> {
        let stages = StageRules::compile(
            settings
                .lifecycle
                .stages
                .iter()
                .map(|s| (s.name.as_str(), s.when.as_str())),
        )?;
        let windows = Windows::new(
            settings.delivery.window.parse()?,
            catalog
                .playbooks
                .iter()
                .filter_map(|p| p.window.clone().map(|w| (p.name.clone(), w)))
                .collect(),
        );
        let (_, from) = crate::config::parse_mailbox(&settings.mail.from)?;
        let domain = from
            .as_str()
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
            .to_owned();
        Ok(Self {
            playbooks: catalog.playbooks,
            fingerprint: catalog.fingerprint,
            stages,
            windows,
            policy: settings.delivery.policy(),
            domain,
        })
    }

    /// Steps of different playbooks that would reach the same sampled
    /// customers close together (within the cap's period) for the same
    /// purpose, planning `days` ahead of `now`.
    pub fn overlaps(
        &self,
        mut customers: Vec<(Customer, History)>,
        now: DateTime<Utc>,
        days: i64,
    ) -> Vec<crate::domain::overlap::Overlap> {
        // Stages as planning would have them, so `stage:NAME` steps count.
        for (customer, history) in &mut customers {
            self.update_stage(customer, history, now);
        }
        crate::domain::overlap::overlaps(&crate::domain::overlap::Sample {
            customers: &customers,
            playbooks: &self.playbooks,
            window: self.windows.general(),
            within: self.policy.per,
            now,
            until: now + chrono::Duration::days(days),
        })
    }

    /// The names of the playbooks planned from.
    pub fn playbook_names(&self) -> impl Iterator<Item = &str> {
        self.playbooks.iter().map(|p| p.name.as_str())
    }

    /// The send windows in force, for delivery to hold messages to.
    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// The category and survey of the first step that sends `template`, for
    /// previews.
    pub fn step_using(
        &self,
        template: &str,
    ) -> Option<(&str, Option<crate::domain::playbook::Survey>)> {
        self.playbooks
            .iter()
            .flat_map(|p| &p.steps)
            .find(|s| s.template == template)
            .map(|s| (s.category.as_str(), s.survey))
    }

    /// Every step that sends `template`, with its playbook.
    pub fn steps_using<'a>(
        &'a self,
        template: &'a str,
    ) -> impl Iterator<
        Item = (
            &'a crate::domain::playbook::Playbook,
            &'a crate::domain::playbook::Step,
        ),
    > + 'a {
        self.playbooks
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
            .filter(move |(_, s)| s.template == template)
    }

    /// One planning pass at `now`: every customer whose planning time has
    /// come (all of them after the playbooks changed), and no one else.
    ///
    /// A pass reads the due customers from the start once more when it has
    /// been through them: a customer marked due behind the pass's cursor
    /// meanwhile (an event, an import) is planned now rather than next tick.
    /// On PostgreSQL that read also visits, once, the index entries the
    /// pass left dead (each customer's `plan_at` before the pass), so the
    /// next tick does not pay for them.
    pub async fn plan_once(
        self: &Arc<Self>,
        store: &impl Store,
        now: DateTime<Utc>,
    ) -> Result<PlanOutcome, store::Error> {
        if store.planner_fingerprint().await?.as_deref() != Some(self.fingerprint.as_str()) {
            store.replan_all(&self.fingerprint).await?;
        }
        let cron = Arc::new(CronMemo::default());
        let mut outcome = self.plan_due(store, now, &cron).await?;
        // Once more from the start after a pass that wrote anything: it
        // plans customers marked behind the cursor during the pass, and on
        // PostgreSQL marks the index entries the pass left dead.
        if outcome != PlanOutcome::default() {
            outcome += self.plan_due(store, now, &cron).await?;
        }
        Ok(outcome)
    }

    /// Plans every customer due at `now`, from the first.
    ///
    /// Reading, planning and writing overlap as a pipeline: while one page
    /// is written, the next is planned on a blocking thread and the one
    /// after is read, so the store and the planning share the cores and
    /// a pass costs its slowest stage, not the sum. Reading ahead is safe
    /// because of the keyset cursor: a written customer's next planning
    /// time is after `now`, out of the pass's range, so no page is read twice.
    async fn plan_due(
        self: &Arc<Self>,
        store: &impl Store,
        now: DateTime<Utc>,
        cron: &Arc<CronMemo>,
    ) -> Result<PlanOutcome, store::Error> {
        // Pages read and planned but not yet written: bounds memory.
        let (planned, to_write) =
            tokio::sync::mpsc::channel::<tokio::task::JoinHandle<PlanWrite>>(2);
        let read = async move {
            let mut cursor = DueCursor::start();
            loop {
                let (page, next) = store
                    .customers_due(now, &cursor, store.planning_page())
                    .await?;
                if page.is_empty() {
                    // Closing the channel ends the writing once it is done.
                    return Ok::<_, store::Error>(());
                }
                cursor = next;
                let ids: Vec<CustomerId> = page.iter().map(|(c, _)| c.record.id.clone()).collect();
                let histories = store.planning_history(&ids).await?;
                let planner = Arc::clone(self);
                let cron = Arc::clone(cron);
                let plan = tokio::task::spawn_blocking(move || {
                    planner.plan_page(page, histories, now, &cron)
                });
                if planned.send(plan).await.is_err() {
                    // The writing stopped on an error, which it reports.
                    return Ok(());
                }
            }
        };
        let pages = futures_util::stream::unfold(to_write, |mut pages| async move {
            pages.recv().await.map(|page| (page, pages))
        });
        let write = pages
            .map(|plan| async move {
                let plan = match plan.await {
                    Ok(plan) => plan,
                    // A panic while planning is a bug: surface it as one.
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                };
                self.write_page(store, plan, now).await
            })
            .buffer_unordered(store.concurrent_writes())
            .try_fold(PlanOutcome::default(), |mut outcome, page| async move {
                outcome += page;
                Ok(outcome)
            });
        let ((), outcome) = tokio::try_join!(read, write)?;
        Ok(outcome)
    }

    /// Plans one page of customers: pure work, run off the async runtime.
    fn plan_page(
        &self,
        page: Vec<(Customer, DateTime<Utc>)>,
        mut histories: HashMap<CustomerId, History>,
        now: DateTime<Utc>,
        cron: &CronMemo,
    ) -> PlanWrite {
        let mut plan = PlanWrite::default();
        for (mut customer, seen) in page {
            let Some(history) = histories.get_mut(&customer.record.id) else {
                continue;
            };
            let horizon = Horizon {
                now,
                until: now,
                window: self.windows.general(),
                cron,
            };
            let (change, items) = self.plan_customer(&mut customer, history, &horizon);
            plan.changes.extend(change);
            plan.superseding.extend(catchup::waiting_superseded(
                &customer.record.id,
                &items,
                &history.waiting,
                now,
            ));
            for item in items {
                let message = self.message(&customer, item);
                if message.status == Status::Planned {
                    plan.planned.push(message);
                } else {
                    plan.expired.push(message);
                }
            }
            plan.next.push(NextCheck {
                id: customer.record.id.clone(),
                at: next_check(&customer, &self.playbooks, history, now, cron),
                seen,
            });
        }
        plan
    }

    /// Writes one planned page, in one transaction: a crash leaves either
    /// all of it or none (and then the same customers are simply planned
    /// again, which the outbox's unique key makes harmless).
    async fn write_page(
        &self,
        store: &impl Store,
        plan: PlanWrite,
        now: DateTime<Utc>,
    ) -> Result<PlanOutcome, store::Error> {
        let (planned, expired) = store.record_plan(&plan, now).await?;
        Ok(PlanOutcome {
            planned,
            expired,
            stage_changes: plan.changes.len() as u64,
            customers: plan.next.len() as u64,
        })
    }

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
        store: &impl Store,
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
                let (_, items) = self.plan_customer(&mut customer, history, &horizon);
                let already = sent
                    .get(&customer.record.id)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let to = Recipient {
                    zone: customer.record.timezone,
                    sent: already,
                    incident: incidents.get(&customer.record.id).map(String::as_str),
                };
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
                    });
                    rows.push(ForecastRow {
                        customer_id: customer.record.id.to_string(),
                        playbook: c.playbook.to_owned(),
                        step: c.step.to_owned(),
                        at,
                        template: c.template.to_owned(),
                        subject,
                        status,
                        reason,
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
                        Decision::SendAt { at, .. } if *at <= until => Some(*at),
                        // Beyond the horizon, or held with no end known:
                        // after any next occurrence in it.
                        Decision::SendAt { .. } | Decision::Hold { .. } => None,
                        Decision::Expire(_) => return None,
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
                    Some(Decision::Expire(_)) | None => {}
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

    /// Whether `step` of `playbook` recurs (a cron step): catch-up applies
    /// to its waiting messages.
    fn recurring(&self, playbook: &str, step: &str) -> bool {
        self.playbooks
            .iter()
            .filter(|p| p.name == playbook)
            .flat_map(|p| &p.steps)
            .any(|s| s.id == step && matches!(s.trigger, Trigger::Cron { .. }))
    }

    /// What is due for one customer, with their stage brought up to date
    /// first (so a `stage:NAME` step can fire in the same pass): the tick and
    /// the forecast share this, so they cannot disagree.
    fn plan_customer(
        &self,
        customer: &mut Customer,
        history: &mut History,
        horizon: &Horizon<'_>,
    ) -> (Option<StageChange>, Vec<Due>) {
        let change = self.update_stage(customer, history, horizon.now);
        (change, due(customer, &self.playbooks, history, horizon))
    }

    /// Brings the customer's stage up to date in memory (and in `history`,
    /// so a `stage:NAME` step can fire in the same pass); returns the change.
    fn update_stage(
        &self,
        customer: &mut Customer,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Option<StageChange> {
        let events: Vec<(String, DateTime<Utc>)> = history
            .events
            .iter()
            .map(|e| (e.name.clone(), e.occurred_at))
            .collect();
        let no_steps = HashSet::new();
        let facts = Facts {
            customer,
            now,
            events: &events,
            sent: &no_steps,
        };
        let stage = self.stages.stage_of(&facts).map(str::to_owned);
        if stage == customer.stage {
            return None;
        }
        let change = StageChange {
            customer_id: customer.record.id.clone(),
            from: customer.stage.take(),
            to: stage.clone(),
            at: now,
        };
        if let Some(name) = &stage {
            history.stage_entries.push(StageEntry {
                stage: name.clone(),
                entered_at: now,
            });
        }
        customer.stage = stage;
        customer.stage_entered_at = Some(now);
        Some(change)
    }

    fn message(&self, customer: &Customer, item: Due) -> NewMessage {
        let id = uuid::Uuid::now_v7();
        let priority = self
            .policy
            .priority
            .iter()
            .position(|c| *c == item.category)
            .unwrap_or(self.policy.priority.len());
        NewMessage {
            id,
            customer_id: customer.record.id.clone(),
            status: if item.expired.is_some() {
                Status::Expired
            } else {
                Status::Planned
            },
            reason: item.expired.or_else(|| {
                (item.send_at > item.due_at).then(|| {
                    format!(
                        "waiting for the customer's send window (opens {})",
                        item.send_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                })
            }),
            kind: item.kind,
            category: item.category,
            template: item.template,
            survey: item.survey,
            priority: i32::try_from(priority).unwrap_or(i32::MAX),
            to: customer.record.email.to_string(),
            message_id: format!("{}@{}", id.simple(), self.domain),
            due_at: item.due_at,
            not_before: item.send_at,
            expires_at: item.expires_at,
            urgent: item.kind == Kind::Incident,
            notice: None,
            key: item.key,
        }
    }
}
