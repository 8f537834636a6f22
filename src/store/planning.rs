//! [`Planning`] for every backend: who is due, their histories, the
//! planner's fingerprint, and what a planned page writes, in which order.
//! The bulk statements of that write and how a customer's history rows are
//! looked up are each backend's own
//! ([`super::backend::Dialect::update_planned_customers`] and its
//! neighbours, [`Backend::history_rows`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, any_dialect};
use super::column::At;
use super::rows::any_row;
use super::{
    AccountPlanWrite, DueCursor, Error, PlanWrite, Planning, PlanningLead, Recorded, rows, shared,
    sql,
};
use crate::domain::account::{Account, AccountId};
use crate::domain::customer::{Customer, CustomerId};
use crate::domain::plan::{EventFact, History, OccurrenceKey, StageEntry};
use crate::domain::signal::NewSignal;

#[apply(any_dialect!)]
impl<B, DB> Planning for B {
    async fn customers_due(
        &self,
        now: DateTime<Utc>,
        after: &DueCursor,
        limit: u32,
    ) -> Result<(Vec<(Customer, DateTime<Utc>)>, DueCursor), Error> {
        let fail = self.fail("reading customers due for planning");
        let rows = sqlx::query(sql::CUSTOMERS_DUE)
            .bind(At(now))
            .bind(At(after.plan_at))
            .bind(after.id.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let cursor = match rows.last() {
            Some(row) => DueCursor {
                plan_at: row.try_get::<At, _>("plan_at").map_err(&fail)?.0,
                id: row.try_get("id").map_err(&fail)?,
            },
            None => after.clone(),
        };
        let customers = rows
            .iter()
            .map(|row| {
                let seen = row.try_get::<At, _>("plan_at").map_err(&fail)?.0;
                Ok((rows::customer(row, &fail)?, seen))
            })
            .collect::<Result<_, _>>()?;
        Ok((customers, cursor))
    }

    async fn planner_fingerprint(&self) -> Result<Option<String>, Error> {
        sqlx::query_scalar(sql::SELECT_PLANNER_STATE)
            .bind(super::FINGERPRINT)
            .fetch_optional(self.reads())
            .await
            .map_err(self.fail("reading the planner state"))
    }

    async fn replan_all(&self, fingerprint: &str) -> Result<(), Error> {
        let fail = self.fail("scheduling a full re-plan");
        let mut tx = self.begin().await.map_err(&fail)?;
        for statement in [B::REPLAN_ALL, B::REPLAN_ACCOUNTS] {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        sqlx::query(sql::UPSERT_PLANNER_STATE)
            .bind(super::FINGERPRINT)
            .bind(fingerprint)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    async fn planning_history(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, History>, Error> {
        let fail = self.fail("reading planning history");
        let found = self.history_rows(ids).await?;
        let rows = history_rows(&found.events, &found.stages, &found.messages, &fail)?;
        let keys: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        fold_history(&keys, rows)?
            .into_iter()
            .map(|(id, history)| Ok((CustomerId::parse(&id).map_err(Error::Corrupt)?, history)))
            .collect()
    }

    async fn accounts_due(
        &self,
        now: DateTime<Utc>,
        after: &DueCursor,
        limit: u32,
    ) -> Result<(Vec<(Account, DateTime<Utc>)>, DueCursor), Error> {
        let fail = self.fail("reading accounts due for planning");
        let rows = sqlx::query(sql::ACCOUNTS_DUE)
            .bind(At(now))
            .bind(At(after.plan_at))
            .bind(after.id.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let seen = row.try_get::<At, _>("plan_at").map_err(&fail)?.0;
            due.push((rows::account(row, &fail)?, seen));
        }
        let cursor = match due.last() {
            Some((account, seen)) => DueCursor {
                plan_at: *seen,
                id: account.record.id.to_string(),
            },
            None => after.clone(),
        };
        Ok((due, cursor))
    }

    async fn account_planning(
        &self,
        ids: &[AccountId],
    ) -> Result<HashMap<AccountId, (Vec<Customer>, History)>, Error> {
        let fail = self.fail("reading accounts' planning history");
        let list: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let read = |statement, column, tail| {
            shared::rows_among(self.reads(), statement, column, &list, tail, &fail)
        };
        let contacts = read(sql::CONTACTS_OF_ACCOUNTS, "account_id", " ORDER BY id").await?;
        let events = read(sql::ACCOUNT_EVENTS, "c.account_id", "").await?;
        let stages = read(sql::ACCOUNT_STAGES, "account_id", "").await?;
        let messages = read(sql::ACCOUNT_MESSAGES, "account_id", "").await?;
        let rows = history_rows(&events, &stages, &messages, &fail)?;
        let histories = fold_history(&list, rows)?;
        let mut planning: HashMap<AccountId, (Vec<Customer>, History)> = HashMap::new();
        for (id, history) in histories {
            let id = AccountId::parse(&id).map_err(Error::Corrupt)?;
            planning.insert(id, (Vec::new(), history));
        }
        for row in &contacts {
            let contact = rows::customer(row, &fail)?;
            if let Some(entry) = contact
                .record
                .account_id
                .as_ref()
                .and_then(|a| planning.get_mut(a))
            {
                entry.0.push(contact);
            }
        }
        Ok(planning)
    }

    async fn record_account_plan(
        &self,
        plan: &AccountPlanWrite,
        now: DateTime<Utc>,
    ) -> Result<Recorded, Error> {
        let fail = self.fail("recording a planning page of accounts");
        let mut tx = self.begin().await.map_err(&fail)?;
        for run in plan.changes.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(sql::INSERT_ACCOUNT_STAGE_CHANGES);
            insert.push_values(run, |mut row, c| {
                row.push_bind(c.account_id.as_str().to_owned())
                    .push_bind(c.from.clone())
                    .push_bind(c.to.clone())
                    .push_bind(At(c.at));
            });
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        let told = plan.changes.iter().map(NewSignal::account_stage);
        shared::tell_stage_changes::<DB>(&mut tx, self.listening(), told, &fail).await?;
        for next in &plan.next {
            let (moved, stage, entered) = match &next.moved {
                Some((stage, at)) => (true, stage.clone(), Some(At(*at))),
                None => (false, None, None),
            };
            sqlx::query(sql::PLANNED_ACCOUNT)
                .bind(At(next.at))
                .bind(moved)
                .bind(stage)
                .bind(entered)
                .bind(next.id.as_str())
                .bind(At(next.seen))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        let mut superseded = 0;
        for stale in &plan.superseding {
            let ids: Vec<String> = sqlx::query_scalar(sql::SUPERSEDE_ACCOUNT_WAITING)
                .bind(stale.account_id.as_str())
                .bind(stale.playbook.as_str())
                .bind(stale.step.as_str())
                .bind(At(stale.before))
                .bind(crate::domain::catchup::SUPERSEDED)
                .bind(At(now))
                .fetch_all(&mut *tx)
                .await
                .map_err(&fail)?;
            if ids.is_empty() {
                continue;
            }
            superseded += ids.len() as u64;
            let mut unclaim = QueryBuilder::<DB>::new(sql::UNCLAIM);
            DB::push_in(&mut unclaim, "message_id", ids);
            unclaim.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        let planned = DB::insert_messages(&mut tx, &plan.planned, now, &fail).await?;
        let expired = DB::insert_messages(&mut tx, &plan.expired, now, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Recorded {
            planned,
            expired: expired + superseded,
        })
    }

    async fn record_plan(&self, plan: &PlanWrite, now: DateTime<Utc>) -> Result<Recorded, Error> {
        super::again_after_deadlock(|| async move {
            let fail = self.fail("recording a planning page");
            let mut tx = self.begin().await.map_err(&fail)?;
            if let Some(statement) = DB::PLAN_WRITE_OPENS {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(&fail)?;
            }
            DB::update_planned_customers(&mut tx, plan, &fail).await?;
            DB::insert_stage_changes(&mut tx, &plan.changes, &fail).await?;
            let told = plan.changes.iter().map(NewSignal::stage);
            shared::tell_stage_changes::<DB>(&mut tx, self.listening(), told, &fail).await?;
            let superseded = DB::supersede_waiting(&mut tx, &plan.superseding, now, &fail).await?;
            let planned = DB::insert_messages(&mut tx, &plan.planned, now, &fail).await?;
            let expired = DB::insert_messages(&mut tx, &plan.expired, now, &fail).await?;
            tx.commit().await.map_err(&fail)?;
            Ok(Recorded {
                planned,
                expired: expired + superseded,
            })
        })
        .await
    }

    fn concurrent_writes(&self) -> usize {
        B::CONCURRENT_WRITES
    }

    fn planning_page(&self) -> u32 {
        B::PLANNING_PAGE
    }

    async fn lead_planning(&self) -> Result<Option<PlanningLead>, Error> {
        Backend::lead_planning(self).await
    }
}

/// The rows of history queries (events, stage entries, outbox
/// occurrences, each led by its customer's or account's id), read.
#[apply(any_row!)]
fn history_rows<R: Row>(
    events: &[R],
    stages: &[R],
    messages: &[R],
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Vec<HistoryRow>, Error> {
    let mut history = Vec::with_capacity(events.len() + stages.len() + messages.len());
    for row in events {
        history.push(HistoryRow::Event {
            customer: row.try_get(0).map_err(fail)?,
            fact: EventFact {
                key: row.try_get(1).map_err(fail)?,
                name: row.try_get(2).map_err(fail)?,
                occurred_at: row.try_get::<At, _>(3).map_err(fail)?.0,
            },
        });
    }
    for row in stages {
        history.push(HistoryRow::Stage {
            customer: row.try_get(0).map_err(fail)?,
            entry: StageEntry {
                stage: row.try_get(1).map_err(fail)?,
                entered_at: row.try_get::<At, _>(2).map_err(fail)?.0,
            },
        });
    }
    for row in messages {
        history.push(HistoryRow::Message {
            customer: row.try_get(0).map_err(fail)?,
            key: OccurrenceKey {
                playbook: row.try_get(1).map_err(fail)?,
                step: row.try_get(2).map_err(fail)?,
                occurrence: row.try_get(3).map_err(fail)?,
            },
            sent: row.try_get(4).map_err(fail)?,
            waiting: row.try_get(5).map_err(fail)?,
        });
    }
    Ok(history)
}

/// Folds the rows of a history query into per-customer histories.
enum HistoryRow {
    Event {
        customer: String,
        fact: EventFact,
    },
    Stage {
        customer: String,
        entry: StageEntry,
    },
    Message {
        customer: String,
        key: OccurrenceKey,
        sent: bool,
        /// Still waiting to go (planned or deferred).
        waiting: bool,
    },
}

fn fold_history(ids: &[String], rows: Vec<HistoryRow>) -> Result<HashMap<String, History>, Error> {
    let mut all: HashMap<String, History> = ids
        .iter()
        .map(|id| (id.clone(), History::default()))
        .collect();
    for row in rows {
        let customer = match &row {
            HistoryRow::Event { customer, .. }
            | HistoryRow::Stage { customer, .. }
            | HistoryRow::Message { customer, .. } => customer,
        };
        let Some(history) = all.get_mut(customer) else {
            continue;
        };
        match row {
            HistoryRow::Event { fact, .. } => history.events.push(fact),
            HistoryRow::Stage { entry, .. } => history.stage_entries.push(entry),
            HistoryRow::Message {
                key, sent, waiting, ..
            } => {
                if sent {
                    history
                        .sent
                        .insert((key.playbook.clone(), key.step.clone()));
                }
                if waiting {
                    history.waiting.insert(key.clone());
                }
                history.planned.insert(key);
            }
        }
    }
    Ok(all)
}
