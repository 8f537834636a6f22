//! The planning pass: walks the customers page by page, brings each one's
//! lifecycle stage up to date, asks `domain::plan` what is due, and puts it
//! into the outbox. The same code path, writing nothing, gives the forecast
//! (`forecast`).

mod accounts;
mod forecast;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::domain::account::{Account, AccountFacts, AccountId, TeamMember};
use crate::domain::catchup;
use crate::domain::condition::{Facts, Reads};
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::lifecycle::StageRules;
use crate::domain::message::MessageId;
use crate::domain::message::{NewMessage, Status};
use crate::domain::plan::{CronMemo, Due, History, Horizon, StageEntry, due, next_check};
use crate::domain::playbook::{Kind, Playbook, Scope, Sender};
use crate::domain::policy;
use crate::domain::window::Windows;
use crate::playbooks::Catalog;
use crate::store::{self, Accounts, DueCursor, NextCheck, PlanWrite, Planning, StageChange};

pub use self::forecast::{Forecast, ForecastRow, Forecasting, HeldRow};

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

/// Everything planning needs from the configuration, prepared once.
pub struct Planner {
    /// Every playbook, as written.
    playbooks: Vec<Playbook>,
    /// The playbooks with only their person-scope steps: what each
    /// customer is planned by.
    person: Vec<Playbook>,
    /// The playbooks with only their account-scope steps: what each
    /// account is planned by.
    accounts: Vec<Playbook>,
    /// `[[lifecycle.account_stage]]`.
    account_stages: StageRules,
    /// Where an account's anchors and cron steps fall: accounts have no
    /// zone of their own (`customers.default_timezone`).
    account_zone: chrono_tz::Tz,
    fingerprint: String,
    stages: StageRules,
    windows: Windows,
    /// What delivery decides by, for the forecast to decide the same.
    policy: policy::Rules,
    /// The domain of `mail.from`, for Message-IDs.
    domain: String,
    /// Whether a condition reads `account`: the pass then reads the
    /// accounts of each page.
    reads_account: bool,
    /// The success team, owners of accounts.
    team: Vec<TeamMember>,
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
        )
        .closed_on(crate::config::holidays::calendars(settings)?);
        let (_, from) = crate::config::parse_mailbox(&settings.mail.from)?;
        let domain = from
            .as_str()
            .rsplit_once('@')
            .map_or("localhost", |(_, d)| d)
            .to_owned();
        let reads_account = stages.reads_account()
            || catalog.playbooks.iter().any(|p| {
                Reads::of_all(
                    p.audience
                        .iter()
                        .chain(p.steps.iter().filter_map(|s| s.when.as_ref())),
                )
                .account()
            });
        let account_stages = StageRules::compile(
            settings
                .lifecycle
                .account_stages
                .iter()
                .map(|s| (s.name.as_str(), s.when.as_str())),
        )?;
        let of_scope = |scope: Scope| -> Vec<Playbook> {
            catalog
                .playbooks
                .iter()
                .filter_map(|p| {
                    let steps: Vec<_> = p
                        .steps
                        .iter()
                        .filter(|s| s.scope == scope)
                        .cloned()
                        .collect();
                    (!steps.is_empty()).then(|| Playbook { steps, ..p.clone() })
                })
                .collect()
        };
        Ok(Self {
            reads_account,
            team: settings.team.clone(),
            person: of_scope(Scope::Person),
            accounts: of_scope(Scope::Account),
            account_stages,
            account_zone: crate::domain::customer::parse_timezone(
                &settings.customers.default_timezone,
            )?,
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
            playbooks: &self.person,
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

    /// The zone of `customers.default_timezone` (checked when the
    /// configuration loaded): accounts' days, and the team's.
    pub fn default_zone(&self) -> chrono_tz::Tz {
        self.account_zone
    }

    /// Every template a step sends, once each, in playbook order.
    pub fn templates(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.playbooks
            .iter()
            .flat_map(|p| &p.steps)
            .map(|s| s.template.as_str())
            .filter(|t| seen.insert(*t))
            .collect()
    }

    /// Every `to` role of an account-scope step, with the steps naming it
    /// (`playbook/step`).
    pub fn roles_named(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut named: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for playbook in &self.accounts {
            for step in &playbook.steps {
                for role in &step.to {
                    named
                        .entry(role.clone())
                        .or_default()
                        .push(format!("{}/{}", playbook.name, step.id));
                }
            }
        }
        named
    }

    /// The steps that do not go out as `mail.from`, by (playbook, step).
    pub fn senders(&self) -> HashMap<(String, String), Sender> {
        self.playbooks
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
            .filter(|(_, s)| s.from != Sender::Configured)
            .map(|(p, s)| ((p.name.clone(), s.id.clone()), s.from.clone()))
            .collect()
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
        store: &(impl Planning + Accounts),
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
        // Accounts keep their stage even when no step is about them.
        if !self.accounts.is_empty() || !self.account_stages.is_empty() {
            outcome += self.plan_accounts(store, now, &cron).await?;
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
        store: &(impl Planning + Accounts),
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
                let mut histories = store.planning_history(&ids).await?;
                self.attach_accounts(store, page.iter().map(|(c, _)| c), &mut histories)
                    .await?;
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

    /// Gives each customer's history their account with its owner, when a
    /// condition reads `account`; a customer without one is their own.
    pub(crate) async fn attach_accounts<'a>(
        &self,
        store: &impl Accounts,
        customers: impl IntoIterator<Item = &'a Customer> + Clone,
        histories: &mut HashMap<CustomerId, History>,
    ) -> Result<(), store::Error> {
        if !self.reads_account {
            return Ok(());
        }
        self.attach_accounts_always(store, customers, histories)
            .await
    }

    /// [`Self::attach_accounts`] whether or not a condition reads them.
    pub(crate) async fn attach_accounts_always<'a>(
        &self,
        store: &impl Accounts,
        customers: impl IntoIterator<Item = &'a Customer> + Clone,
        histories: &mut HashMap<CustomerId, History>,
    ) -> Result<(), store::Error> {
        let ids: Vec<AccountId> = customers
            .clone()
            .into_iter()
            .filter_map(|c| c.record.account_id.clone())
            .collect();
        let mut accounts = if ids.is_empty() {
            HashMap::new()
        } else {
            store.accounts_of(&ids).await?
        };
        for customer in customers {
            let Some(history) = histories.get_mut(&customer.record.id) else {
                continue;
            };
            let account = customer
                .record
                .account_id
                .as_ref()
                .and_then(|id| accounts.get(id).cloned())
                .unwrap_or_else(|| Account::of_contact(customer));
            history.account = Some(AccountFacts::with_team(account, &self.team));
        }
        accounts.clear();
        Ok(())
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
                let message = self.message(&customer, item, now);
                if message.status == Status::Planned {
                    plan.planned.push(message);
                } else {
                    plan.expired.push(message);
                }
            }
            plan.next.push(NextCheck {
                id: customer.record.id.clone(),
                at: next_check(&customer, &self.person, history, now, cron),
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
        store: &impl Planning,
        plan: PlanWrite,
        now: DateTime<Utc>,
    ) -> Result<PlanOutcome, store::Error> {
        let super::store::Recorded { planned, expired } = store.record_plan(&plan, now).await?;
        Ok(PlanOutcome {
            planned,
            expired,
            stage_changes: plan.changes.len() as u64,
            customers: plan.next.len() as u64,
        })
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
        (change, due(customer, &self.person, history, horizon))
    }

    /// Brings the customer's stage up to date in memory (and in `history`,
    /// so a `stage:NAME` step can fire in the same pass); returns the change.
    fn update_stage(
        &self,
        customer: &mut Customer,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Option<StageChange> {
        let events = history.event_facts();
        let no_steps = HashSet::new();
        let facts = Facts {
            customer,
            account: history.account.as_ref(),
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

    /// The status and reason a new message starts with: expired when it
    /// cannot go before its expiry, else planned, with why it does not go
    /// at once as delivery will judge it when it looks (the customer's send
    /// window, holiday or quiet period; what went before is delivery's to
    /// weigh), so `tend messages` says so from the start.
    fn first_status(
        &self,
        customer: &Customer,
        item: &Due,
        now: DateTime<Utc>,
    ) -> (Status, Option<String>) {
        if let Some(expired) = &item.expired {
            return (Status::Expired, Some(expired.clone()));
        }
        let pending = policy::Pending {
            kind: item.kind,
            category: &item.category,
            urgent: item.kind == Kind::Incident,
            operational: policy::is_operational(item.kind, false),
            not_before: item.due_at,
            expires_at: item.expires_at,
            window: self.windows.of(&item.key.playbook),
        };
        let to = policy::Recipient::of(customer, &self.windows, &[], None);
        match policy::first_look(&pending, &to, &self.policy, now) {
            policy::Decision::SendAt { reason, .. } | policy::Decision::Crowded { reason, .. } => {
                (Status::Planned, Some(reason))
            }
            policy::Decision::Expire(reason) => (Status::Expired, Some(reason)),
            policy::Decision::SendNow | policy::Decision::Hold { .. } => (Status::Planned, None),
        }
    }

    fn message(&self, customer: &Customer, item: Due, now: DateTime<Utc>) -> NewMessage {
        let id = MessageId::new();
        let priority = self
            .policy
            .priority
            .iter()
            .position(|c| *c == item.category)
            .unwrap_or(self.policy.priority.len());
        let (status, reason) = self.first_status(customer, &item, now);
        NewMessage {
            id,
            customer_id: customer.record.id.clone(),
            status,
            reason,
            kind: item.kind,
            category: item.category,
            template: item.template,
            survey: item.survey,
            priority: i32::try_from(priority).unwrap_or(i32::MAX),
            to: customer.record.email.to_string(),
            message_id: format!("{}@{}", id.0.simple(), self.domain),
            due_at: item.due_at,
            not_before: item.send_at,
            expires_at: item.expires_at,
            urgent: item.kind == Kind::Incident,
            notice: None,
            account_id: None,
            key: item.key,
        }
    }
}
