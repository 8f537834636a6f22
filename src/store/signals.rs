//! [`Signals`] for every backend: the signals recorded beside each change
//! (see `shared::tell`), routing them to notifications once, and each
//! target's queue of notifications, claimed in order.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, Dialect, any_dialect};
use super::column::{At, Int, Object};
use super::rows::any_row;
use super::{Error, Signals, shared, sql};
use crate::domain::feed::Position;
use crate::domain::notification::{Channel, NewNotification, Notification, Outcome, TargetStatus};
use crate::domain::signal::{Interest, Signal};

/// The routing cursor's key in `planner_state`.
const ROUTED: &str = "signals_routed";

/// Which signal types a store records, changed on a reload.
#[derive(Debug, Default)]
pub struct Listening(RwLock<Interest>);

impl Listening {
    pub fn wants(&self, kind: &str) -> bool {
        self.0.read().is_ok_and(|i| i.wants(kind))
    }

    fn set(&self, interest: Interest) {
        if let Ok(mut held) = self.0.write() {
            *held = interest;
        }
    }
}

#[apply(any_dialect!)]
impl<B, DB> Signals for B {
    fn listen(&self, interest: Interest) {
        self.listening().set(interest);
    }

    async fn unrouted(&self, limit: u32) -> Result<(Position, Vec<Signal>), Error> {
        let fail = self.fail("reading signals to route");
        let from = routed(self).await?;
        let statement = match B::DIALECT {
            sql::Dialect::Sqlite => sql::SIGNALS_AFTER_SQLITE,
            sql::Dialect::Postgres => sql::SIGNALS_AFTER_POSTGRES,
        };
        let query = sqlx::query(statement)
            .bind(from.tx)
            .bind(from.seq)
            .bind(i64::from(limit));
        let rows = shared::bind_writing_elsewhere(self.reads(), query, &fail)
            .await?
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let signals = rows
            .iter()
            .map(|row| {
                Ok(Signal {
                    after: Position {
                        seq: row.try_get::<Int, _>(0).map_err(&fail)?.0,
                        tx: row.try_get::<Int, _>(1).map_err(&fail)?.0,
                    },
                    id: row.try_get(2).map_err(&fail)?,
                    kind: row.try_get(3).map_err(&fail)?,
                    customer_id: row.try_get(4).map_err(&fail)?,
                    payload: row.try_get::<Object, _>(5).map_err(&fail)?.0,
                    occurred_at: row.try_get::<At, _>(6).map_err(&fail)?.0,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((from, signals))
    }

    async fn route(
        &self,
        from: Position,
        to: Position,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let fail = self.fail("routing signals");
        let mut tx = self.begin().await.map_err(&fail)?;
        sqlx::query(sql::START_ROUTED)
            .bind(ROUTED)
            .bind(Position::default().encode())
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        let moved = sqlx::query(sql::MOVE_ROUTED)
            .bind(ROUTED)
            .bind(to.encode())
            .bind(from.encode())
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&moved) == 0 {
            // Another instance routed these first.
            return Ok(false);
        }
        for run in notifications.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(sql::INSERT_NOTIFICATIONS);
            insert.push_values(run, |mut row, n| {
                let (status, settled) = match &n.dropped {
                    Some(_) => ("dropped", Some(At(now))),
                    None => ("pending", None),
                };
                row.push_bind(uuid::Uuid::now_v7().to_string())
                    .push_bind(n.signal_id.clone())
                    .push_bind(n.target.clone())
                    .push_bind(n.channel.as_str())
                    .push_bind(n.recipient.clone())
                    .push_bind(n.subject.clone())
                    .push_bind(n.reply_to.clone())
                    .push_bind(n.body.clone())
                    .push_bind(n.customer_id.clone())
                    .push_bind(status)
                    .push_bind(n.dropped.clone())
                    .push_bind(At(now))
                    .push_bind(At(now))
                    .push_bind(settled);
            });
            insert.push(sql::SKIP_ROUTED);
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(true)
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        per_target: u32,
    ) -> Result<Vec<Notification>, Error> {
        let fail = self.fail("claiming notifications to send");
        let due = sqlx::query(sql::DUE_HEADS)
            .bind(At(now))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let lock = match B::DIALECT {
            sql::Dialect::Sqlite => sql::LOCK_HEAD_SQLITE,
            sql::Dialect::Postgres => sql::LOCK_HEAD_POSTGRES,
        };
        let mut claimed = Vec::new();
        for head in &due {
            let seq: i64 = head.try_get::<Int, _>(0).map_err(&fail)?.0;
            let target: String = head.try_get(1).map_err(&fail)?;
            let channel: String = head.try_get(2).map_err(&fail)?;
            // One mail at a time: a claimed alert that an instance dies
            // holding is `unknown`, and only the one in flight should be.
            let limit = if channel == Channel::Email.as_str() {
                1
            } else {
                per_target
            };
            let mut tx = self.begin().await.map_err(&fail)?;
            let taken = async {
                let held: Option<Int> = sqlx::query_scalar(lock)
                    .bind(seq)
                    .bind(At(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                if held.is_none() {
                    // Claimed, settled or put off by another instance since.
                    return Ok(Vec::new());
                }
                let rows = sqlx::query(sql::CLAIM_NOTIFICATIONS)
                    .bind(&target)
                    .bind(owner)
                    .bind(At(lease_until))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(rows)
            }
            .await;
            let rows = match taken {
                Ok(rows) => rows,
                Err(e) => {
                    // What this pass already holds goes back before the
                    // error does, so no alert waits out a lease.
                    let held: Vec<String> = claimed
                        .iter()
                        .map(|n: &Notification| n.id.clone())
                        .collect();
                    let _ = self.release_notifications(owner, &held).await;
                    return Err(fail(e));
                }
            };
            let mut rows = rows
                .iter()
                .map(|row| claimed_row(row, &fail))
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING promises no order.
            rows.sort_by_key(|(seq, _)| *seq);
            claimed.extend(rows.into_iter().map(|(_, n)| n));
        }
        Ok(claimed)
    }

    async fn settle_notification(
        &self,
        owner: &str,
        id: &str,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (status, reason, at) = match outcome {
            Outcome::Sent => ("sent", None, now),
            Outcome::Retry { at, error } => ("pending", Some(error.clone()), *at),
            Outcome::Failed { error } => ("failed", Some(error.clone()), now),
        };
        sqlx::query(sql::SETTLE_NOTIFICATION)
            .bind(id)
            .bind(owner)
            .bind(status)
            .bind(reason)
            .bind(At(at))
            .execute(self.writes())
            .await
            .map_err(self.fail("recording what became of a notification"))?;
        Ok(())
    }

    async fn settle_sent(
        &self,
        owner: &str,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut settle = QueryBuilder::<DB>::new(sql::SETTLE_SENT);
        settle.push_bind(At(now));
        settle.push(sql::SETTLE_SENT_OF);
        settle.push_bind(owner.to_owned());
        settle.push(" AND ");
        DB::push_in(&mut settle, "id", ids.to_vec());
        settle
            .build()
            .execute(self.writes())
            .await
            .map_err(self.fail("recording notifications sent"))?;
        Ok(())
    }

    async fn release_notifications(&self, owner: &str, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut release = QueryBuilder::<DB>::new(sql::RELEASE_NOTIFICATIONS);
        release.push_bind(owner.to_owned());
        release.push(" AND ");
        DB::push_in(&mut release, "id", ids.to_vec());
        release
            .build()
            .execute(self.writes())
            .await
            .map_err(self.fail("giving back claimed notifications"))?;
        Ok(())
    }

    async fn release_owned_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let done = sqlx::query(sql::RELEASE_OWNED_NOTIFICATIONS)
            .bind(owner)
            .bind(At(now))
            .execute(self.writes())
            .await
            .map_err(self.fail("releasing the notifications a stopped run held"))?;
        Ok(DB::rows_affected(&done))
    }

    async fn recover_notifications(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        let done = sqlx::query(sql::RECOVER_NOTIFICATIONS)
            .bind(At(now))
            .execute(self.writes())
            .await
            .map_err(self.fail("recovering notifications of a stopped instance"))?;
        Ok(DB::rows_affected(&done))
    }

    async fn backlogs(&self) -> Result<HashMap<String, u64>, Error> {
        let rows: Vec<(String, Int)> = sqlx::query_as(sql::BACKLOGS)
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading the notification backlogs"))?;
        Ok(rows
            .into_iter()
            .map(|(target, Int(n))| (target, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn notification_targets(&self) -> Result<Vec<TargetStatus>, Error> {
        let fail = self.fail("reading the notification queues");
        let counts: Vec<(String, String, Int)> = sqlx::query_as(sql::NOTIFICATION_COUNTS)
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let times: Vec<(String, Option<At>, Option<At>)> = sqlx::query_as(sql::NOTIFICATION_TIMES)
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let mut targets: HashMap<String, TargetStatus> = HashMap::new();
        for (target, status, Int(n)) in counts {
            let entry = targets
                .entry(target.clone())
                .or_insert_with(|| TargetStatus {
                    target,
                    ..TargetStatus::default()
                });
            let n = u64::try_from(n).unwrap_or(0);
            match status.as_str() {
                "pending" | "sending" => entry.backlog += n,
                "sent" => entry.sent += n,
                "failed" => entry.failed += n,
                "dropped" => entry.dropped += n,
                _ => entry.unknown += n,
            }
        }
        for (target, oldest, last) in times {
            if let Some(entry) = targets.get_mut(&target) {
                entry.oldest_waiting = oldest.map(|At(t)| t);
                entry.last_sent_at = last.map(|At(t)| t);
            }
        }
        let mut targets: Vec<TargetStatus> = targets.into_values().collect();
        targets.sort_by(|a, b| a.target.cmp(&b.target));
        for entry in &mut targets {
            entry.last_error = sqlx::query_scalar(sql::LAST_NOTIFICATION_ERROR)
                .bind(&entry.target)
                .fetch_optional(self.reads())
                .await
                .map_err(&fail)?;
        }
        Ok(targets)
    }

    async fn prune_signals(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let fail = self.fail("deleting old signals and notifications");
        let cursor = routed(self).await?;
        let notifications = sqlx::query(sql::PRUNE_NOTIFICATIONS)
            .bind(At(before))
            .execute(self.writes())
            .await
            .map_err(&fail)?;
        let signals = sqlx::query(sql::PRUNE_SIGNALS)
            .bind(At(before))
            .bind(cursor.tx)
            .bind(cursor.seq)
            .execute(self.writes())
            .await
            .map_err(&fail)?;
        Ok(DB::rows_affected(&notifications) + DB::rows_affected(&signals))
    }
}

/// Where routing stands.
#[apply(any_dialect!)]
async fn routed<DB: Dialect>(store: &impl Backend<DB = DB>) -> Result<Position, Error> {
    let fail = store.fail("reading where signal routing stands");
    let value: Option<String> = sqlx::query_scalar(sql::SELECT_PLANNER_STATE)
        .bind(ROUTED)
        .fetch_optional(store.reads())
        .await
        .map_err(&fail)?;
    match value {
        None => Ok(Position::default()),
        Some(text) => Position::decode(&text)
            .ok_or_else(|| Error::Corrupt(format!("signal routing cursor {text:?}"))),
    }
}

/// A claimed row as `CLAIM_NOTIFICATIONS` returns it.
#[apply(any_row!)]
fn claimed_row<R: Row>(
    row: &R,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(i64, Notification), Error> {
    let channel: String = row.try_get(4).map_err(fail)?;
    Ok((
        row.try_get::<Int, _>(0).map_err(fail)?.0,
        Notification {
            id: row.try_get(1).map_err(fail)?,
            signal_id: row.try_get(2).map_err(fail)?,
            target: row.try_get(3).map_err(fail)?,
            channel: Channel::parse(&channel)
                .ok_or_else(|| Error::Corrupt(format!("notification channel {channel:?}")))?,
            recipient: row.try_get(5).map_err(fail)?,
            subject: row.try_get(6).map_err(fail)?,
            reply_to: row.try_get(7).map_err(fail)?,
            body: row.try_get(8).map_err(fail)?,
            attempts: u32::try_from(row.try_get::<Int, _>(9).map_err(fail)?.0).unwrap_or(0),
        },
    ))
}
