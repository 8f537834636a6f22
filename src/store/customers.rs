//! [`Customers`] for every backend: customers and their events, written
//! and read once for both databases.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, Dialect, any_dialect};
use super::column::{At, Int, Object};
use super::{Customers, Erasure, Error, InboundKept, StoredEvent, WriteOutcome, rows, shared, sql};
use crate::domain::console::{Found, FoundAccount, FoundCustomer};
use crate::domain::customer::{Customer, CustomerId, CustomerRecord, parse_timezone};
use crate::domain::event::EventRecord;
use crate::domain::prefilter::{Literal, Prefilter};
use crate::domain::signal::{CUSTOMER_ERASED, NewSignal};

#[apply(any_dialect!)]
impl<B, DB> Customers for B {
    fn writers(&self) -> usize {
        B::CONCURRENT_WRITES
    }

    async fn fill_search(&self, limit: u32) -> Result<u64, Error> {
        let fill = match B::DIALECT {
            sql::Dialect::Sqlite => return Ok(0),
            sql::Dialect::Postgres => sql::FILL_SEARCH_POSTGRES,
        };
        let taken: i64 = sqlx::query_scalar(fill)
            .bind(i64::from(limit))
            .fetch_one(self.writes())
            .await
            .map_err(self.fail("making imported people searchable"))?;
        Ok(taken as u64)
    }

    async fn search(&self, text: &str, limit: usize) -> Result<Found, Error> {
        let fail = self.fail("searching people and accounts");
        let text = text.trim();
        let mut found = Found::default();
        if text.is_empty() {
            return Ok(found);
        }
        let terms = match B::DIALECT {
            sql::Dialect::Sqlite => sql::SEARCH_TERMS_SQLITE,
            sql::Dialect::Postgres => sql::SEARCH_TERMS_POSTGRES,
        };
        // The ids in the order of their first matching term, the text
        // itself first (an id is found whole); one more than shown tells
        // whether there are more. A person has at most three terms.
        // Terms are kept to their first 200 characters (migration 0020).
        let prefix: String = text.chars().take(200).collect();
        let prefix = &prefix;
        let fail = &fail;
        let ids = |kind: &'static str| async move {
            let mut ids = vec![text.to_owned()];
            let rows = sqlx::query(terms)
                .bind(kind)
                .bind(prefix)
                .bind(((limit + 1) * 3) as i64)
                .fetch_all(self.reads())
                .await
                .map_err(fail)?;
            for row in rows {
                let id: String = row.try_get(0usize).map_err(fail)?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Ok::<_, Error>(ids)
        };
        let (people, accounts) = (ids("customer").await?, ids("account").await?);
        let order = |ids: &[String], id: &str| ids.iter().position(|i| i == id);

        let mut query = QueryBuilder::<B::DB>::new(sql::FOUND_CUSTOMERS);
        DB::push_in(&mut query, "id", people.clone());
        for row in query.build().fetch_all(self.reads()).await.map_err(&fail)? {
            found.customers.push(FoundCustomer {
                id: row.try_get(0usize).map_err(&fail)?,
                name: row.try_get(1usize).map_err(&fail)?,
                email: row.try_get(2usize).map_err(&fail)?,
                account_id: row.try_get(3usize).map_err(&fail)?,
                stage: row.try_get(4usize).map_err(&fail)?,
            });
        }
        found.customers.sort_by_key(|c| order(&people, &c.id));
        let mut query = QueryBuilder::<B::DB>::new(sql::FOUND_ACCOUNTS);
        DB::push_in(&mut query, "id", accounts.clone());
        for row in query.build().fetch_all(self.reads()).await.map_err(&fail)? {
            found.accounts.push(FoundAccount {
                id: row.try_get(0usize).map_err(&fail)?,
                name: row.try_get(1usize).map_err(&fail)?,
                owner: row.try_get(2usize).map_err(&fail)?,
                stage: row.try_get(3usize).map_err(&fail)?,
            });
        }
        found.accounts.sort_by_key(|a| order(&accounts, &a.id));
        found.more = found.customers.len() > limit || found.accounts.len() > limit;
        found.customers.truncate(limit);
        found.accounts.truncate(limit);
        Ok(found)
    }

    async fn erase_customer(
        &self,
        id: &CustomerId,
        stand_in: &CustomerId,
        address_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Erasure, Error> {
        super::again_after_deadlock(|| async move {
            let fail = self.fail("erasing a person");
            let mut tx = self.begin().await.map_err(&fail)?;
            let found: Option<String> = sqlx::query_scalar(sql::CUSTOMER_EXISTS)
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?;
            if found.is_none() {
                return Ok(Erasure::Unknown);
            }
            if let Some(lock) = DB::LOCK_MESSAGES_OF {
                sqlx::query(lock)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&fail)?;
            }
            if sending_to::<DB>(&mut tx, id, &fail).await? {
                return Ok(Erasure::Sending);
            }
            sqlx::query(sql::INSERT_STAND_IN)
                .bind(stand_in.as_str())
                .bind(At(now))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            sqlx::query(sql::ERASE_INBOUND)
                .bind(id.as_str())
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            for statement in [
                sql::ERASE_ATTEMPTS,
                sql::ERASE_SIGNALS,
                sql::ERASE_NOTIFICATIONS,
            ] {
                sqlx::query(statement)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&fail)?;
            }
            sqlx::query(sql::ERASE_MESSAGES)
                .bind(id.as_str())
                .bind(stand_in.as_str())
                .bind(At(now))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            // A message planned since the lock above was not held by it; the
            // move has locked every row it moved, so a claim taken on one
            // since is seen now, and the erasure waits for that send too.
            if sending_to::<DB>(&mut tx, stand_in, &fail).await? {
                return Ok(Erasure::Sending);
            }
            for statement in [
                sql::ERASE_RESPONSES,
                sql::ERASE_SUPPRESSIONS,
                sql::ERASE_LIFTS,
                sql::ERASE_INCIDENT_CUSTOMERS,
            ] {
                sqlx::query(statement)
                    .bind(id.as_str())
                    .bind(stand_in.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&fail)?;
            }
            if self.listening().wants(CUSTOMER_ERASED) {
                let told = NewSignal::erased(id.as_str(), stand_in.as_str(), now);
                shared::tell::<DB>(&mut tx, &told, &fail).await?;
            }
            // Nothing is ever sent to the stand-in, whatever plans it.
            sqlx::query(sql::INSERT_SUPPRESSION)
                .bind(stand_in.as_str())
                .bind("*")
                .bind("erased at the person's request")
                .bind(crate::domain::response::Source::Erasure.as_str())
                .bind(At(now))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            sqlx::query(sql::DELETE_CUSTOMER)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            sqlx::query(sql::INSERT_ERASED)
                .bind(address_hash)
                .bind(At(now))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            tx.commit().await.map_err(&fail)?;
            Ok(Erasure::Done)
        })
        .await
    }

    async fn erased_among(&self, hashes: &[String]) -> Result<HashSet<String>, Error> {
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let mut query = QueryBuilder::<DB>::new(sql::ERASED_AMONG);
        DB::push_in(&mut query, "hash", hashes.to_vec());
        let rows = query
            .build()
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading erased addresses"))?;
        rows.iter()
            .map(|row| {
                row.try_get::<String, _>(0)
                    .map_err(self.fail("reading erased addresses"))
            })
            .collect()
    }

    async fn inbound_of(&self, id: &CustomerId) -> Result<Vec<InboundKept>, Error> {
        let fail = self.fail("reading a person's inbound mail");
        let rows: Vec<(String, At, String, Vec<u8>)> = sqlx::query_as(sql::INBOUND_OF)
            .bind(id.as_str())
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        Ok(rows
            .into_iter()
            .map(|(id, At(received_at), classification, raw)| InboundKept {
                id,
                received_at,
                classification,
                raw,
            })
            .collect())
    }

    async fn upsert_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        Backend::upsert_customers(self, batch, now).await
    }

    async fn insert_events(
        &self,
        batch: &[EventRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        super::again_after_deadlock(|| async move {
            let fail = self.fail("writing events");
            let mut outcome = WriteOutcome::default();
            let mut tx = self.begin().await.map_err(&fail)?;
            let accounts_stored = shared::any_account::<DB>(&mut tx, &fail).await?;
            for run in batch.chunks(super::ROWS_PER_STATEMENT) {
                let mut insert = QueryBuilder::<B::DB>::new(sql::INSERT_EVENTS);
                insert.push_values(run, |mut row, e| {
                    row.push_bind(e.id.clone())
                        .push_bind(e.customer_id.as_str().to_owned())
                        .push_bind(e.name.clone())
                        .push_bind(At(e.occurred_at))
                        .push_bind(Object(e.properties.clone()))
                        .push_bind(At(now));
                });
                insert.push(sql::SKIP_KNOWN_EVENT);
                let done = insert.build().execute(&mut *tx).await.map_err(&fail)?;
                let inserted = DB::rows_affected(&done);
                // A new event may make a step due: plan its customer at the next tick.
                let mut ids: Vec<String> = run.iter().map(|e| e.customer_id.to_string()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut mark = QueryBuilder::<B::DB>::new(sql::SET_PLAN_AT);
                mark.push(B::MARK);
                mark.push(" WHERE ");
                DB::push_in(&mut mark, "id", ids.clone());
                mark.build().execute(&mut *tx).await.map_err(&fail)?;
                // And the accounts of contacts: an event may anchor an
                // account-scope step.
                if accounts_stored {
                    let mut accounts = QueryBuilder::<B::DB>::new(sql::SET_ACCOUNT_PLAN_AT);
                    accounts.push(B::ACCOUNT_MARK);
                    accounts.push(sql::ACCOUNTS_OF_CUSTOMERS);
                    DB::push_in(&mut accounts, "id", ids);
                    accounts.push(")");
                    accounts.build().execute(&mut *tx).await.map_err(&fail)?;
                }
                outcome += WriteOutcome {
                    inserted,
                    existing: run.len() as u64 - inserted,
                };
            }
            tx.commit().await.map_err(&fail)?;
            Ok(outcome)
        })
        .await
    }

    async fn customer_zones(&self, ids: &[CustomerId]) -> Result<HashMap<CustomerId, Tz>, Error> {
        let fail = self.fail("reading customers");
        let rows = shared::rows_among(self.reads(), sql::CUSTOMER_ZONES, "id", ids, "", &fail);
        let mut zones = HashMap::with_capacity(ids.len());
        for row in rows.await? {
            let id: String = row.try_get(0).map_err(&fail)?;
            let zone: String = row.try_get(1).map_err(&fail)?;
            let id = CustomerId::parse(&id).map_err(Error::Corrupt)?;
            zones.insert(id, parse_timezone(&zone).map_err(Error::Corrupt)?);
        }
        Ok(zones)
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, Error> {
        let fail = self.fail("reading a customer");
        let row = sqlx::query(sql::SELECT_CUSTOMER)
            .bind(id.as_str())
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        row.map(|row| rows::customer(&row, &fail)).transpose()
    }

    async fn count_customers(&self) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_CUSTOMERS)
            .fetch_one(self.reads())
            .await
            .map_err(self.fail("counting customers"))?;
        Ok(n as u64)
    }

    async fn events_of(&self, id: &CustomerId) -> Result<Vec<StoredEvent>, Error> {
        let fail = self.fail("reading events");
        let rows = sqlx::query(sql::SELECT_EVENTS_OF)
            .bind(id.as_str())
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                let Object(properties) = row.try_get("properties").map_err(&fail)?;
                Ok(StoredEvent {
                    record: EventRecord {
                        id: row.try_get("id").map_err(&fail)?,
                        customer_id: id.clone(),
                        name: row.try_get("name").map_err(&fail)?,
                        occurred_at: row.try_get::<At, _>("occurred_at").map_err(&fail)?.0,
                        properties,
                    },
                    received_at: row.try_get::<At, _>("received_at").map_err(&fail)?.0,
                })
            })
            .collect()
    }

    async fn customers_page(
        &self,
        after: Option<&CustomerId>,
        limit: u32,
        filter: Option<&Prefilter>,
    ) -> Result<Vec<Customer>, Error> {
        let fail = self.fail("reading customers");
        let (statement, values) = sql::customers_page(filter, B::DIALECT);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(after.map_or("", CustomerId::as_str))
            .bind(i64::from(limit));
        for value in values {
            query = match value {
                Literal::Text(text) => query.bind(text),
                Literal::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(self.reads()).await.map_err(&fail)?;
        rows.iter().map(|row| rows::customer(row, &fail)).collect()
    }
}

/// Whether a message to `customer` is claimed: a send to them may be under
/// way (`sql::SENDING_TO`).
#[apply(any_dialect!)]
async fn sending_to<DB: Dialect>(
    conn: &mut DB::Connection,
    customer: &CustomerId,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<bool, Error> {
    let claimed: Int = sqlx::query_scalar(sql::SENDING_TO)
        .bind(customer.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(fail)?;
    Ok(claimed.0 > 0)
}
