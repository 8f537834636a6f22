//! The account pass: account-scope steps are planned once per account
//! occurrence. Each account due is read with its contacts and history; its
//! stage is brought up to date by `[[lifecycle.account_stage]]`; what is due
//! is asked of `domain::plan` with the account as the subject; and each
//! occurrence becomes one message per recipient contact (`to`, with the
//! fallback of `domain::account::recipients`), each held to that contact's
//! own send window.
//!
//! An account-scope message's occurrence is stored as `ACCOUNT/OCCURRENCE`:
//! the outbox's key is per contact, and a contact who moves to another
//! account must still get that account's occurrence once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{PlanOutcome, Planner};
use crate::domain::account::{Account, AccountFacts, AccountId, recipients};
use crate::domain::catchup;
use crate::domain::condition::Facts;
use crate::domain::customer::Customer;
use crate::domain::message::Status;
use crate::domain::plan::{
    CronMemo, Due, History, Horizon, OccurrenceKey, StageEntry, due, next_check,
};
use crate::domain::planned::AccountSupersede;
use crate::domain::playbook::Kind;
use crate::store::{
    self, AccountNextCheck, AccountPlanWrite, AccountStageChange, DueCursor, Planning,
};

/// How many accounts a page holds.
const PAGE: u32 = 500;

impl Planner {
    /// Plans every account due at `now`, a page at a time.
    pub(super) async fn plan_accounts(
        self: &Arc<Self>,
        store: &impl Planning,
        now: DateTime<Utc>,
        cron: &Arc<CronMemo>,
    ) -> Result<PlanOutcome, store::Error> {
        let mut outcome = PlanOutcome::default();
        let mut cursor = DueCursor::start();
        loop {
            let (page, next) = store.accounts_due(now, &cursor, PAGE).await?;
            if page.is_empty() {
                return Ok(outcome);
            }
            cursor = next;
            let ids: Vec<AccountId> = page.iter().map(|(a, _)| a.record.id.clone()).collect();
            let planning = store.account_planning(&ids).await?;
            let planner = Arc::clone(self);
            let cron = Arc::clone(cron);
            let plan = tokio::task::spawn_blocking(move || {
                planner.plan_account_page(page, planning, now, &cron)
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let recorded = store.record_account_plan(&plan, now).await?;
            outcome += PlanOutcome {
                planned: recorded.planned,
                expired: recorded.expired,
                stage_changes: plan.changes.len() as u64,
                customers: 0,
            };
        }
    }

    /// Plans one page of accounts: pure work, run off the async runtime.
    fn plan_account_page(
        &self,
        page: Vec<(Account, DateTime<Utc>)>,
        mut planning: HashMap<AccountId, (Vec<Customer>, History)>,
        now: DateTime<Utc>,
        cron: &CronMemo,
    ) -> AccountPlanWrite {
        let mut plan = AccountPlanWrite::default();
        for (account, seen) in page {
            let Some((contacts, mut history)) = planning.remove(&account.record.id) else {
                continue;
            };
            if contacts.is_empty() {
                tracing::debug!(
                    account = account.record.id.as_str(),
                    "an account without contacts: its steps have no one to go to"
                );
            }
            let id = account.record.id.clone();
            let horizon = Horizon {
                now,
                until: now,
                window: self.windows.general(),
                cron,
            };
            let (subject, moved, dues) = self.account_dues(account, &mut history, &horizon);
            // Catch-up: what still waits of a recurring step a newer
            // occurrence overtakes, whichever contacts it went to.
            plan.superseding.extend(
                catchup::waiting_superseded(&subject.record.id, &dues, &history.waiting, now)
                    .into_iter()
                    .map(|stale| AccountSupersede {
                        account_id: id.clone(),
                        playbook: stale.playbook,
                        step: stale.step,
                        before: stale.before,
                    }),
            );
            for item in dues {
                let to = self.recipients_of(&item.key);
                for contact in recipients(&contacts, to) {
                    let mut message =
                        self.message(contact, self.for_contact(contact, &id, &item), now);
                    message.account_id = Some(id.clone());
                    if message.status == Status::Planned {
                        plan.planned.push(message);
                    } else {
                        plan.expired.push(message);
                    }
                }
            }
            if let Some(change) = &moved {
                plan.changes.push(change.clone());
            }
            plan.next.push(AccountNextCheck {
                at: next_check(&subject, &self.accounts, &history, now, cron),
                seen,
                moved: moved.map(|c| (c.to, c.at)),
                id,
            });
        }
        plan
    }

    /// What is due for an account up to `horizon.until`, with its stage
    /// brought up to date first: the account as the subject planned for,
    /// its stage change if it moved, and the occurrences (as `domain::plan`
    /// names them; [`Self::for_contact`] makes each a contact's).
    pub(super) fn account_dues(
        &self,
        account: Account,
        history: &mut History,
        horizon: &Horizon<'_>,
    ) -> (Customer, Option<AccountStageChange>, Vec<Due>) {
        let prefix = occurrence_prefix(&account.record.id);
        history.planned = unprefixed(&history.planned, &prefix);
        history.waiting = unprefixed(&history.waiting, &prefix);
        let mut subject = account.subject(self.account_zone);
        history.account = Some(AccountFacts::with_team(account, &self.team));
        let moved = self.update_account_stage(&mut subject, history, horizon.now);
        let dues = due(&subject, &self.accounts, history, horizon);
        (subject, moved, dues)
    }

    /// The roles an account-scope step goes to.
    pub(super) fn recipients_of(&self, key: &OccurrenceKey) -> &[String] {
        self.accounts
            .iter()
            .filter(|p| p.name == key.playbook)
            .flat_map(|p| &p.steps)
            .find(|s| s.id == key.step)
            .map_or(&[], |s| s.to.as_slice())
    }

    /// Brings the account's stage up to date in `subject` and `history`
    /// (so a `stage:NAME` step can fire in the same pass); returns the
    /// change.
    fn update_account_stage(
        &self,
        subject: &mut Customer,
        history: &mut History,
        now: DateTime<Utc>,
    ) -> Option<AccountStageChange> {
        let events = history.event_facts();
        let no_steps = HashSet::new();
        let facts = Facts {
            customer: subject,
            account: history.account.as_ref(),
            now,
            events: &events,
            sent: &no_steps,
        };
        let stage = self.account_stages.stage_of(&facts).map(str::to_owned);
        if stage == subject.stage {
            return None;
        }
        let account = history.account.as_mut()?;
        let change = AccountStageChange {
            account_id: account.account.record.id.clone(),
            from: subject.stage.take(),
            to: stage.clone(),
            at: now,
        };
        if let Some(name) = &stage {
            history.stage_entries.push(StageEntry {
                stage: name.clone(),
                entered_at: now,
            });
        }
        subject.stage.clone_from(&stage);
        subject.stage_entered_at = Some(now);
        account.account.stage = stage;
        account.account.stage_entered_at = Some(now);
        Some(change)
    }

    /// One contact's occurrence of an account's, held to the contact's own
    /// send window, under the account's name for it.
    pub(super) fn for_contact(&self, contact: &Customer, account: &AccountId, item: &Due) -> Due {
        let mut item = item.clone();
        if item.superseded_at.is_none() && item.kind != Kind::Incident {
            let window = self.windows.of(&item.key.playbook);
            item.send_at = window.next_opening(item.due_at, contact.record.timezone);
            item.expired = (item.send_at > item.expires_at).then(|| {
                format!(
                    "the contact's send window does not open before it expires ({})",
                    item.expires_at.to_rfc3339()
                )
            });
        }
        item.key.occurrence = format!("{}{}", occurrence_prefix(account), item.key.occurrence);
        item
    }
}

/// What an account's occurrences are stored under.
fn occurrence_prefix(account: &AccountId) -> String {
    format!("{account}/")
}

/// The keys of `stored` that belong to the account, as `domain::plan` names
/// them.
fn unprefixed(stored: &HashSet<OccurrenceKey>, prefix: &str) -> HashSet<OccurrenceKey> {
    stored
        .iter()
        .filter_map(|k| {
            k.occurrence.strip_prefix(prefix).map(|o| OccurrenceKey {
                occurrence: o.to_owned(),
                ..k.clone()
            })
        })
        .collect()
}
