//! [`Outbox`] for every backend: what delivery reads and writes. How due
//! rows are leased, marked `sending` and settled in bulk is each backend's
//! own ([`Backend::lease`], [`Backend::begin_sending`],
//! [`Dialect::settle_statuses`]); what is read and written around them is
//! written once here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, Dialect, any_dialect};
use super::column::{At, Int};
use super::{Error, NameHold, Outbox, rows, shared, sql};
use crate::domain::customer::CustomerId;
use crate::domain::feed::{Page, Position};
use crate::domain::message::{
    Attempt, MessageFilter, MessageId, MessageView, Outgoing, Settle, Status,
};

#[apply(any_dialect!)]
impl<B, DB> Outbox for B {
    fn writes_at_once(&self) -> usize {
        B::CONCURRENT_WRITES
    }

    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageView>, Error> {
        let fail = self.fail("reading messages");
        let statement = if filter.customer.is_some() {
            sql::SELECT_MESSAGES_OF
        } else {
            sql::SELECT_MESSAGES
        };
        let rows = sqlx::query(statement)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.customer.as_ref().map(CustomerId::as_str))
            .bind(At(filter.since.unwrap_or(DateTime::UNIX_EPOCH)))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| rows::message_view(row, &fail))
            .collect()
    }

    async fn messages_of(&self, customers: &[CustomerId]) -> Result<Vec<MessageView>, Error> {
        let fail = self.fail("reading customers' messages");
        let rows = shared::rows_among(
            self.reads(),
            sql::MESSAGES_OF_CUSTOMERS,
            "customer_id",
            customers,
            sql::MESSAGES_ORDER,
            &fail,
        );
        let mut messages = rows
            .await?
            .iter()
            .map(|row| rows::message_view(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        // Each chunk is in order; together, by when they are due.
        messages.sort_by_key(|m| m.due_at);
        Ok(messages)
    }

    async fn messages_page(
        &self,
        filter: &MessageFilter,
        after: Position,
        limit: u32,
    ) -> Result<Page<MessageView>, Error> {
        let fail = self.fail("reading a page of messages");
        let query = match B::DIALECT {
            sql::Dialect::Sqlite => sqlx::query(sql::MESSAGES_PAGE_SQLITE),
            sql::Dialect::Postgres => sqlx::query(sql::MESSAGES_PAGE_POSTGRES).bind(after.tx),
        };
        let query = query
            .bind(after.seq)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.customer.as_ref().map(CustomerId::as_str))
            .bind(At(filter.since.unwrap_or(DateTime::UNIX_EPOCH)))
            .bind(i64::from(limit) + 1);
        let rows = shared::bind_writing_elsewhere(self.reads(), query, &fail)
            .await?
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let rows = rows
            .iter()
            .map(|row| Ok((rows::position(row, &fail)?, rows::message_view(row, &fail)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Page::of(after, rows, limit))
    }

    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Outgoing>, Error> {
        let ids = self.lease(owner, now, lease_until, limit).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let fail = self.fail("claiming messages to send");
        let mut query = QueryBuilder::<DB>::new(sql::claimed_details(B::DIALECT));
        DB::push_in(&mut query, "m.id", ids);
        query.push(" ORDER BY m.priority, m.not_before, m.id");
        let rows = query.build().fetch_all(self.reads()).await.map_err(&fail)?;
        let claimed = rows
            .iter()
            .map(|row| rows::outgoing(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(fold_claimed(claimed))
    }

    async fn begin_sending(
        &self,
        owner: &str,
        ids: &[MessageId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        renew_before: DateTime<Utc>,
    ) -> Result<Vec<MessageId>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Backend::begin_sending(self, owner, ids, now, lease_until, renew_before).await
    }

    async fn settle(
        &self,
        owner: &str,
        outcomes: &[Settle],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if outcomes.is_empty() {
            return Ok(());
        }
        // What was sent must not be left `sending` (to be taken for
        // unknown, and with `resend_unknown` sent again) because the server
        // undid this record to break a deadlock with catch-up.
        super::again_after_deadlock(|| async move {
            let fail = self.fail("recording delivery outcomes");
            let mut tx = self.begin().await.map_err(&fail)?;
            DB::settle_statuses(&mut tx, owner, outcomes, now, &fail).await?;
            let attempts: Vec<_> = outcomes
                .iter()
                .filter_map(|o| o.attempt.as_ref().map(|a| (o.id, a)))
                .collect();
            for run in attempts.chunks(super::ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::<DB>::new(sql::INSERT_ATTEMPTS);
                insert.push_values(run, |mut row, (id, a)| {
                    row.push_bind(id.to_string())
                        .push_bind(At(a.started_at))
                        .push_bind(At(a.finished_at))
                        .push_bind(a.outcome.as_str())
                        .push_bind(a.smtp_code.map(i32::from))
                        .push_bind(a.detail.clone());
                });
                insert.build().execute(&mut *tx).await.map_err(&fail)?;
            }
            // In key order: two recordings at once that suppress the same
            // people wait for each other in one order, never in a circle.
            let mut suppressions: Vec<_> = outcomes
                .iter()
                .filter_map(|o| o.suppress.as_ref())
                .collect();
            suppressions
                .sort_by(|a, b| (&a.customer_id, &a.category).cmp(&(&b.customer_id, &b.category)));
            for s in suppressions {
                sqlx::query(sql::INSERT_SUPPRESSION)
                    .bind(s.customer_id.as_str())
                    .bind(&s.category)
                    .bind(&s.reason)
                    .bind(&s.source)
                    .bind(At(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(&fail)?;
            }
            for (status, kind) in [
                (Status::Sent, "message.sent"),
                (Status::Failed, "message.failed"),
            ] {
                let ids = outcomes
                    .iter()
                    .filter(|o| o.status == status)
                    .map(|o| o.id.to_string())
                    .collect();
                shared::tell_messages::<DB>(&mut tx, self.listening(), kind, ids, now, &fail)
                    .await?;
            }
            tx.commit().await.map_err(&fail)
        })
        .await
    }

    async fn sent_since(
        &self,
        ids: &[CustomerId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, Vec<DateTime<Utc>>>, Error> {
        Backend::sent_since(self, ids, since).await
    }

    async fn hold_name(&self, name: &str) -> Result<Option<NameHold>, Error> {
        Backend::hold_name(self, name).await
    }

    async fn outgoing(&self, id: MessageId) -> Result<Option<Outgoing>, Error> {
        let fail = self.fail("reading a message");
        let rows = {
            let mut query = QueryBuilder::<DB>::new(sql::claimed_details(B::DIALECT));
            DB::push_in(&mut query, "m.id", vec![id.to_string()]);
            query.push(" ORDER BY m.id");
            query.build().fetch_all(self.reads()).await.map_err(&fail)?
        };
        let found = rows
            .iter()
            .map(|row| rows::outgoing(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(fold_claimed(found).into_iter().next())
    }

    async fn queued(&self, ids: &[CustomerId]) -> Result<Vec<Outgoing>, Error> {
        let fail = self.fail("reading the outbox");
        let statement = [sql::claimed_details(B::DIALECT), sql::QUEUED].concat();
        let rows = shared::rows_among(
            self.reads(),
            &statement,
            "m.customer_id",
            ids,
            sql::QUEUED_ORDER,
            &fail,
        );
        let queued = rows
            .await?
            .iter()
            .map(|row| rows::outgoing(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(fold_claimed(queued))
    }

    async fn recover_sending(&self, now: DateTime<Utc>, resend: bool) -> Result<u64, Error> {
        let fail = self.fail("recovering interrupted sends");
        // Nothing to do on nearly every tick: a read, not a write transaction.
        let any: Option<Int> = sqlx::query_scalar(sql::ANY_CLAIM_EXPIRED)
            .bind(At(now))
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.begin().await.map_err(&fail)?;
        let done = sqlx::query(sql::RECOVER_SENDING)
            .bind(At(now))
            .bind(if resend { "deferred" } else { "unknown" })
            .bind(super::recovered_reason(resend))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        sqlx::query(sql::DROP_EXPIRED_CLAIMS)
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(DB::rows_affected(&done))
    }

    async fn release_claims(
        &self,
        owner: Option<&str>,
        now: DateTime<Utc>,
        resend: bool,
    ) -> Result<super::Released, Error> {
        let fail = self.fail("releasing the claims of a stopped instance");
        let mut tx = self.begin().await.map_err(&fail)?;
        let interrupted = sqlx::query(sql::RELEASE_SENDING)
            .bind(At(now))
            .bind(if resend { "deferred" } else { "unknown" })
            .bind(super::recovered_reason(resend))
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        let dropped = sqlx::query(sql::RELEASE_CLAIMS)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        let interrupted = DB::rows_affected(&interrupted);
        Ok(super::Released {
            interrupted,
            waiting: DB::rows_affected(&dropped).saturating_sub(interrupted),
        })
    }

    async fn renew_claims(&self, owner: &str, lease_until: DateTime<Utc>) -> Result<u64, Error> {
        let done = sqlx::query(sql::RENEW_CLAIMS)
            .bind(owner)
            .bind(At(lease_until))
            .execute(self.writes())
            .await
            .map_err(self.fail("renewing this instance's claims"))?;
        Ok(DB::rows_affected(&done))
    }

    async fn attempts(&self, id: &MessageId) -> Result<Vec<Attempt>, Error> {
        let fail = self.fail("reading delivery attempts");
        let rows = sqlx::query(sql::SELECT_ATTEMPTS)
            .bind(id.to_string())
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| super::rows::attempt(row, &fail))
            .collect()
    }

    async fn quiet_customers(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, String>, Error> {
        let fail = self.fail("reading which customers an open incident affects");
        let rows = shared::rows_among(self.reads(), sql::QUIET, "ic.customer_id", ids, "", &fail);
        let mut quiet = HashMap::new();
        for row in rows.await? {
            let customer: String = row.try_get(0).map_err(&fail)?;
            let customer = CustomerId::parse(&customer).map_err(Error::Corrupt)?;
            quiet.insert(customer, row.try_get(1).map_err(&fail)?);
        }
        Ok(quiet)
    }

    async fn count_due(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_DUE)
            .bind(At(now))
            .fetch_one(self.reads())
            .await
            .map_err(self.fail("counting due messages"))?;
        Ok(n as u64)
    }
}

/// Folds the claimed rows (one per matching suppression) into messages.
/// Every query feeding it orders by a key that ends in the message id, so
/// the rows of one message are adjacent.
pub(super) fn fold_claimed(rows: Vec<Outgoing>) -> Vec<Outgoing> {
    let mut out: Vec<Outgoing> = Vec::with_capacity(rows.len());
    for row in rows {
        match out.last_mut().filter(|o| o.id == row.id) {
            // An all-mail suppression says more than a category one.
            Some(first) => {
                if first.suppressed.is_none() {
                    first.suppressed = row.suppressed;
                }
            }
            None => out.push(row),
        }
    }
    out
}

/// Leases up to `limit` due messages to `owner` until `lease_until` on
/// `conn`, most important first, skipping rows another instance holds: the
/// ids leased. The first try claims at the most important priority
/// anything waits in (`sql::CLAIM_FIRST_SQLITE` says why); only when that
/// does not fill the lease does a [`PriorityWalk`] look for priorities with
/// a free row. The backend chooses `conn`: SQLite's write transaction, a
/// PostgreSQL connection whose every claim commits as it is made.
#[apply(any_dialect!)]
pub(super) async fn lease_on<DB: Dialect>(
    conn: &mut DB::Connection,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Vec<String>, Error> {
    let mut ids: Vec<String> = sqlx::query_scalar(DB::CLAIM_FIRST)
        .bind(owner)
        .bind(At(lease_until))
        .bind(At(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
    let mut walk = PriorityWalk::start();
    while ids.len() < limit as usize {
        let priority: Option<Int> = sqlx::query_scalar(DB::NEXT_PRIORITY)
            .bind(walk.from())
            .bind(At(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(fail)?;
        let Some(Int(priority)) = priority else { break };
        let bound = i32::try_from(priority)
            .map_err(|_| Error::Corrupt(format!("message priority {priority}")))?;
        let taken: Vec<String> = sqlx::query_scalar(DB::CLAIM)
            .bind(owner)
            .bind(At(lease_until))
            .bind(At(now))
            .bind((limit as usize - ids.len()) as i64)
            .bind(bound)
            .fetch_all(&mut *conn)
            .await
            .map_err(fail)?;
        let more = walk.claimed(priority, taken.len());
        ids.extend(taken);
        if !more {
            break;
        }
    }
    Ok(ids)
}

/// How a claim walks the priorities, most important first: after each
/// claim, whether to look at the same priority again or at the next.
///
/// A claim that took something stays: the next look finds what is left
/// there, if anything. A claim that came back empty after a look that
/// found something free lost a race: another instance committed its
/// claims on those rows after this claim's snapshot (they looked free; the
/// claim key refused them), or still holds them locked. A fresh look finds
/// what is left; after a few empty claims, the next priority. (On SQLite
/// the look and the claim run under one write lock and always agree.)
struct PriorityWalk {
    from: i64,
    empty: u32,
}

impl PriorityWalk {
    /// Empty claims in a row at one priority before the next.
    const ATTEMPTS: u32 = 3;

    pub(crate) fn start() -> Self {
        Self {
            from: i64::MIN,
            empty: 0,
        }
    }

    /// The lowest priority the next look may return (`sql::NEXT_PRIORITY_*`'s
    /// `$1`).
    pub(crate) fn from(&self) -> i64 {
        self.from
    }

    /// Records a claim at `priority` that took `taken` rows; false when
    /// there is no priority left to look at.
    pub(crate) fn claimed(&mut self, priority: i64, taken: usize) -> bool {
        if taken > 0 {
            (self.from, self.empty) = (priority, 0);
            return true;
        }
        self.empty += 1;
        if self.empty < Self::ATTEMPTS {
            return true;
        }
        match priority.checked_add(1) {
            Some(next) => {
                (self.from, self.empty) = (next, 0);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_walk_stays_while_it_takes_and_moves_on_after_empty_claims() {
        let mut walk = PriorityWalk::start();
        assert_eq!(walk.from(), i64::MIN);
        assert!(walk.claimed(2, 5));
        assert_eq!(walk.from(), 2, "more may be left at 2");
        for _ in 1..PriorityWalk::ATTEMPTS {
            assert!(walk.claimed(2, 0));
            assert_eq!(walk.from(), 2, "an empty claim may have lost a race");
        }
        assert!(walk.claimed(2, 0));
        assert_eq!(walk.from(), 3, "then the next priority");
        let mut last = PriorityWalk::start();
        for _ in 0..PriorityWalk::ATTEMPTS - 1 {
            assert!(last.claimed(i64::MAX, 0));
        }
        assert!(!last.claimed(i64::MAX, 0), "nothing after the last");
    }
}
