//! The PostgreSQL store: the same behaviour as SQLite, for larger data and
//! for several `tend run` instances sharing one database.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::{ConnectOptions as _, Connection, PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::backend::{Backend, Dialect, HistoryRows};
use super::outbox::lease_on;
use super::signals::Listening;
use super::{
    ConnectOptions, Error, PlanWrite, StageChange, WriteOutcome, shared, sql, unique_runs,
};
use crate::domain::catchup::{self, Supersede};
use crate::domain::customer::{CustomerId, CustomerRecord};
use crate::domain::message::{MessageId, NewMessage, Settle};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    shown: String,
    /// Which signals are recorded.
    listening: Arc<Listening>,
}

impl PgStore {
    pub async fn connect(url: &str, shown: &str, options: &ConnectOptions) -> Result<Self, Error> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| {
                Error::Unreachable(format!("database.url {shown:?} is not usable: {e}; write postgres://USER@HOST:5432/DATABASE"))
            })?
            // Every statement tend runs is short. A lookup over a page of
            // customers is costed (as an upper bound) above `jit_above_cost`,
            // and compiling it took longer than running it: 30–60 ms a page.
            .options([("jit", "off")]);
        // The pool retries a refused connection until its timeout and then
        // reports only "timed out": knock first, so that "refused" is said
        // at once. Every other failure the pool reports itself, at once.
        tokio::time::timeout(options.connect_timeout, knock(&connect))
            .await
            .map_err(|_| classify(sqlx::Error::PoolTimedOut, shown, "connecting"))?
            .map_err(|e| classify(sqlx::Error::Io(e), shown, "connecting"))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| classify(e, shown, "connecting"))?;
        Ok(Self {
            pool,
            shown: shown.to_owned(),
            listening: Arc::default(),
        })
    }
}

/// Opens and closes a bare connection to where the server should listen
/// (its TCP port or Unix socket, as the driver finds it): whether anything
/// listens, without starting a server process as a login would.
async fn knock(connect: &PgConnectOptions) -> std::io::Result<()> {
    let host = connect.get_host();
    let socket_dir = match connect.get_socket() {
        Some(dir) => Some(dir.display().to_string()),
        None => host.starts_with('/').then(|| host.to_owned()),
    };
    match socket_dir {
        #[cfg(unix)]
        Some(dir) => {
            let path = format!("{dir}/.s.PGSQL.{}", connect.get_port());
            tokio::net::UnixStream::connect(path).await.map(drop)
        }
        #[cfg(not(unix))]
        Some(_) => Ok(()),
        None => tokio::net::TcpStream::connect((host, connect.get_port()))
            .await
            .map(drop),
    }
}

/// Turns a driver error into one a person can act on.
fn classify(e: sqlx::Error, shown: &str, doing: &'static str) -> Error {
    match &e {
        sqlx::Error::ColumnDecode { index, source } => {
            Error::Corrupt(format!("column {index}: {source}"))
        }
        sqlx::Error::Io(io) => Error::Unreachable(format!(
            "cannot connect to PostgreSQL at {shown} ({io}); start PostgreSQL or fix database.url"
        )),
        sqlx::Error::PoolTimedOut => Error::Unreachable(format!(
            "timed out connecting to PostgreSQL at {shown}; check that it is running and reachable, or raise database.connect_timeout"
        )),
        sqlx::Error::Tls(tls) => Error::Unreachable(format!(
            "cannot set up TLS to PostgreSQL at {shown} ({tls}); check sslmode in database.url"
        )),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => Error::Unreachable(format!(
                "PostgreSQL at {shown} has no such database ({}); create it (createdb NAME) or fix database.url",
                db.message()
            )),
            Some("28000" | "28P01") => Error::Unreachable(format!(
                "PostgreSQL at {shown} refused the login ({}); check the user and password in database.url",
                db.message()
            )),
            _ => Error::Query { doing, source: e },
        },
        _ => Error::Query { doing, source: e },
    }
}

impl Dialect for Postgres {
    const WRITING_ELSEWHERE: Option<&'static str> = Some(sql::WRITING_ELSEWHERE_POSTGRES);
    const CUSTOMER_OF_ANSWERED: &'static str = sql::CUSTOMER_OF_ANSWERED_POSTGRES;
    const LOCK_MESSAGES_OF: Option<&'static str> = Some(sql::LOCK_MESSAGES_OF_POSTGRES);
    // A plan need not wait for the disk: should the server stop before its
    // commit reaches it, the page's customers keep their old `plan_at` and
    // are planned again, and no message of it can have gone, since a claim
    // commits durably, after it in the log.
    const PLAN_WRITE_OPENS: Option<&'static str> = Some(sql::NO_WAIT_FOR_DISK_POSTGRES);
    const CLAIM_FIRST: &'static str = sql::CLAIM_FIRST_POSTGRES;
    const NEXT_PRIORITY: &'static str = sql::NEXT_PRIORITY_POSTGRES;
    const CLAIM: &'static str = sql::CLAIM_POSTGRES;

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn push_in(query: &mut QueryBuilder<Postgres>, column: &str, ids: Vec<String>) {
        query.push(column);
        query.push(" = ANY(");
        query.push_bind(ids);
        query.push("::text[])");
    }

    async fn insert_stage_changes(
        conn: &mut sqlx::PgConnection,
        changes: &[StageChange],
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        if changes.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = changes.iter().map(|c| c.customer_id.as_str()).collect();
        let from: Vec<Option<&str>> = changes.iter().map(|c| c.from.as_deref()).collect();
        let to: Vec<Option<&str>> = changes.iter().map(|c| c.to.as_deref()).collect();
        let at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.at).collect();
        sqlx::query(sql::INSERT_STAGE_CHANGES_POSTGRES)
            .bind(&ids)
            .bind(&from)
            .bind(&to)
            .bind(&at)
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// `sql::UPDATE_PLANNED_CUSTOMERS_POSTGRES`, from one array a column.
    async fn update_planned_customers(
        conn: &mut sqlx::PgConnection,
        plan: &PlanWrite,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        let updates = shared::customer_updates(plan);
        for run in unique_runs(&updates, |u| u.id) {
            sqlx::query(sql::UPDATE_PLANNED_CUSTOMERS_POSTGRES)
                .bind(run.iter().map(|u| u.id).collect::<Vec<_>>())
                .bind(run.iter().map(|u| u.at).collect::<Vec<_>>())
                .bind(run.iter().map(|u| u.seen).collect::<Vec<_>>())
                .bind(run.iter().map(|u| u.moved).collect::<Vec<_>>())
                .bind(run.iter().map(|u| u.stage).collect::<Vec<_>>())
                .bind(run.iter().map(|u| u.entered).collect::<Vec<_>>())
                .execute(&mut *conn)
                .await
                .map_err(fail)?;
        }
        Ok(())
    }

    /// `sql::SUPERSEDE_WAITING_POSTGRES`, from one array a column.
    async fn supersede_waiting(
        conn: &mut sqlx::PgConnection,
        superseding: &[Supersede],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error> {
        if superseding.is_empty() {
            return Ok(0);
        }
        let expired: i64 = sqlx::query_scalar(sql::SUPERSEDE_WAITING_POSTGRES)
            .bind(
                superseding
                    .iter()
                    .map(|s| s.customer_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                superseding
                    .iter()
                    .map(|s| s.playbook.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                superseding
                    .iter()
                    .map(|s| s.step.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(superseding.iter().map(|s| s.before).collect::<Vec<_>>())
            .bind(catchup::SUPERSEDED)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(fail)?;
        Ok(u64::try_from(expired).unwrap_or(0))
    }

    /// Puts messages into the outbox; an occurrence already there is left
    /// alone. Returns how many were new.
    ///
    /// The rows go as one array per column (`sql::INSERT_MESSAGES_POSTGRES`):
    /// one statement text, prepared once, whatever the number of rows, where
    /// a `VALUES` list of 22 parameters a row is parsed and planned afresh.
    async fn insert_messages(
        conn: &mut sqlx::PgConnection,
        messages: &[NewMessage],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error> {
        if messages.is_empty() {
            return Ok(0);
        }
        fn column<'m, T>(messages: &'m [NewMessage], f: impl Fn(&'m NewMessage) -> T) -> Vec<T> {
            messages.iter().map(f).collect()
        }
        let inserted = sqlx::query(sql::INSERT_MESSAGES_POSTGRES)
            .bind(column(messages, |m| m.id.to_string()))
            .bind(column(messages, |m| m.customer_id.as_str()))
            .bind(column(messages, |m| m.key.playbook.as_str()))
            .bind(column(messages, |m| m.key.step.as_str()))
            .bind(column(messages, |m| m.key.occurrence.as_str()))
            .bind(column(messages, |m| m.kind.as_str()))
            .bind(column(messages, |m| m.category.as_str()))
            .bind(column(messages, |m| m.template.as_str()))
            .bind(column(messages, |m| m.survey.map(|s| s.as_str())))
            .bind(column(messages, |m| m.priority))
            .bind(column(messages, |m| m.status.as_str()))
            .bind(column(messages, |m| m.reason.as_deref()))
            .bind(column(messages, |m| m.to.as_str()))
            .bind(column(messages, |m| m.message_id.as_str()))
            .bind(column(messages, |m| m.due_at))
            .bind(column(messages, |m| m.not_before))
            .bind(column(messages, |m| m.expires_at))
            .bind(column(messages, |m| {
                m.notice.as_ref().map(|n| n.incident_id.as_str())
            }))
            .bind(column(messages, |m| m.urgent))
            .bind(column(messages, super::notice_json))
            .bind(now)
            .bind(column(messages, |m| {
                m.account_id.as_ref().map(|a| a.as_str())
            }))
            .execute(&mut *conn)
            .await
            .map_err(fail)?
            .rows_affected();
        Ok(inserted)
    }

    async fn settle_statuses(
        conn: &mut PgConnection,
        owner: &str,
        outcomes: &[Settle],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        for run in outcomes.chunks(super::ROWS_PER_STATEMENT) {
            let ids: Vec<String> = run.iter().map(|o| o.id.to_string()).collect();
            let status: Vec<&str> = run.iter().map(|o| o.status.as_str()).collect();
            let reason: Vec<Option<&str>> = run.iter().map(|o| o.reason.as_deref()).collect();
            let not_before: Vec<Option<DateTime<Utc>>> = run.iter().map(|o| o.not_before).collect();
            let subject: Vec<Option<&str>> = run.iter().map(|o| o.subject.as_deref()).collect();
            let sent_at: Vec<Option<DateTime<Utc>>> = run.iter().map(|o| o.sent_at).collect();
            let tried: Vec<i32> = run.iter().map(|o| i32::from(o.attempt.is_some())).collect();
            let started: Vec<Option<DateTime<Utc>>> = run
                .iter()
                .map(|o| o.attempt.as_ref().map(|a| a.started_at))
                .collect();
            sqlx::query(sql::SETTLE_POSTGRES)
                .bind(&ids)
                .bind(&status)
                .bind(&reason)
                .bind(&not_before)
                .bind(&subject)
                .bind(&sent_at)
                .bind(&tried)
                .bind(&started)
                .bind(now)
                .bind(owner)
                .execute(&mut *conn)
                .await
                .map_err(fail)?;
        }
        Ok(())
    }
}

/// How a batch of customers writes the rows not yet stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewRows {
    /// Inserted apart, the others upserted.
    Insert,
    /// Upserted as every other row.
    Upsert,
}

/// Customers not yet stored, in one statement of a column an array.
async fn insert_new_customers(
    conn: &mut PgConnection,
    new: &[&CustomerRecord],
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let text = |f: fn(&CustomerRecord) -> &str| -> Vec<&str> { new.iter().map(|c| f(c)).collect() };
    let at = |f: fn(&CustomerRecord) -> Option<DateTime<Utc>>| -> Vec<Option<DateTime<Utc>>> {
        new.iter().map(|c| f(c)).collect()
    };
    let attributes: Vec<String> = new
        .iter()
        .map(|c| serde_json::to_string(&c.attributes).unwrap_or_else(|_| "{}".into()))
        .collect();
    let done = sqlx::query(sql::INSERT_NEW_CUSTOMERS_POSTGRES)
        .bind(text(|c| c.id.as_str()))
        .bind(text(|c| c.email.as_str()))
        .bind(text(|c| &c.name))
        .bind(text(|c| c.timezone.name()))
        .bind(text(|c| &c.locale))
        .bind(text(|c| &c.plan))
        .bind(at(|c| c.signup_at))
        .bind(at(|c| c.renewal_at))
        .bind(at(|c| c.last_seen_at))
        .bind(
            new.iter()
                .map(|c| c.health.map(i16::from))
                .collect::<Vec<_>>(),
        )
        .bind(attributes)
        .bind(
            new.iter()
                .map(|c| c.account_id.as_ref().map(|a| a.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(new.iter().map(|c| c.roles.joined()).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|c| c.availability.holidays.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(at(|c| c.availability.quiet_until))
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

impl PgStore {
    /// One batch in one transaction. Rows new to the store go in with a
    /// plain insert of arrays (no placeholder per value, no speculative
    /// insertion as `ON CONFLICT` does for every row); only the ones
    /// already stored are upserted. (`COPY` would be the same plain insert,
    /// but the driver writes its end apart from its data on a socket with
    /// Nagle's algorithm on: a quarter of the copies waited 40 ms for the
    /// server's delayed acknowledgement.)
    async fn write_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
        new_rows: NewRows,
    ) -> Result<WriteOutcome, Error> {
        let fail = self.fail("writing customers");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        shared::add_named_accounts::<Postgres>(&mut tx, batch, now, Self::ACCOUNT_MARK, &fail)
            .await?;
        for run in unique_runs(batch, |c| c.id.as_str()) {
            let mut upserted: Vec<&CustomerRecord> = run.iter().collect();
            if new_rows == NewRows::Insert {
                let ids: Vec<&str> = run.iter().map(|c| c.id.as_str()).collect();
                let stored: std::collections::HashSet<String> =
                    sqlx::query_scalar(sql::STORED_CUSTOMERS_POSTGRES)
                        .persistent(false)
                        .bind(&ids)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(&fail)?
                        .into_iter()
                        .collect();
                let (known, new): (Vec<&CustomerRecord>, Vec<&CustomerRecord>) =
                    run.iter().partition(|c| stored.contains(c.id.as_str()));
                if !new.is_empty() {
                    outcome.inserted += insert_new_customers(&mut tx, &new, now)
                        .await
                        .map_err(&fail)?;
                }
                upserted = known;
            }
            if upserted.is_empty() {
                continue;
            }
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_CUSTOMERS);
            insert.push_values(upserted, |row, c| shared::customer_values(row, c, now));
            insert.push(sql::REPLACE_CUSTOMER);
            insert.push(sql::MARK_POSTGRES);
            // xmax = 0 only on a freshly inserted row version.
            insert.push(" RETURNING (xmax = 0) AS inserted");
            let inserted: Vec<bool> = insert
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(&fail)?;
            let fresh = inserted.iter().filter(|&&i| i).count() as u64;
            outcome += WriteOutcome {
                inserted: fresh,
                existing: inserted.len() as u64 - fresh,
            };
        }
        tx.commit().await.map_err(&fail)?;
        Ok(outcome)
    }
}

impl Backend for PgStore {
    type DB = Postgres;
    const DIALECT: sql::Dialect = sql::Dialect::Postgres;
    const BEGIN_WRITE: &'static str = "BEGIN";
    // Two: pages of different customers take no locks on each other, and
    // two let the server use both cores of a small machine.
    const CONCURRENT_WRITES: usize = 2;
    // Each statement of a page (the due customers, three history reads,
    // the customers' update, the stage changes, the messages) and its
    // commit cost the server a fixed part on top of its rows: a full pass
    // at 1,000,000 customers took about 12% less time with 2,000 a page
    // than with 500, and no less with 5,000, which only holds the page's
    // row locks longer.
    const PLANNING_PAGE: u32 = 2000;
    const MARK: &'static str = sql::MARK_POSTGRES;
    const REPLAN_ALL: &'static str = sql::REPLAN_ALL_POSTGRES;
    const ACCOUNT_MARK: &'static str = sql::ACCOUNT_MARK_POSTGRES;
    const REPLAN_ACCOUNTS: &'static str = sql::REPLAN_ACCOUNTS_POSTGRES;

    fn reads(&self) -> &PgPool {
        &self.pool
    }

    fn listening(&self) -> &Listening {
        &self.listening
    }

    fn writes(&self) -> &PgPool {
        &self.pool
    }

    fn fail(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> Error + Send + Sync + '_ {
        move |e| classify(e, &self.shown, doing)
    }

    async fn migrate(&self) -> Result<(), Error> {
        if super::migrations_in_place(&self.pool, &MIGRATOR).await {
            return Ok(());
        }
        // sqlx takes an advisory lock, so several instances may start at once.
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| super::migrate_error(e, |inner| classify(inner, &self.shown, "migrating")))
    }

    async fn upsert_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        match self.write_customers(batch, now, NewRows::Insert).await {
            // Another writer stored one of the new ids between the look
            // and the insert, or (an import writes two batches at once)
            // marked the same accounts in another order and the server
            // chose this one to undo: the batch again, every row an upsert.
            Err(Error::Query { source, .. })
                if is_unique_violation(&source) || super::is_deadlock(&source) =>
            {
                self.write_customers(batch, now, NewRows::Upsert).await
            }
            other => other,
        }
    }

    async fn history_rows(&self, ids: &[CustomerId]) -> Result<HistoryRows<PgRow>, Error> {
        let fail = self.fail("reading planning history");
        let list: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        // Each lookup goes customer by customer (a lateral subquery, kept
        // apart from the outer query by `OFFSET 0`), so it is an index probe
        // per customer whatever the table's statistics say. As
        // `customer_id = ANY($1)`, a table never analyzed (the first pass
        // after an import fills it) is estimated to match entirely for a page of
        // ids and is read whole, page after page: a full pass then grows
        // with the square of the customers. The three go on three
        // connections at once: a page waits for the slowest, not their sum.
        let events = sqlx::query(sql::HISTORY_EVENTS_POSTGRES)
            .persistent(false)
            .bind(&list)
            .fetch_all(&self.pool);
        let stages = sqlx::query(sql::HISTORY_STAGES_POSTGRES)
            .persistent(false)
            .bind(&list)
            .fetch_all(&self.pool);
        let messages = sqlx::query(sql::HISTORY_MESSAGES_POSTGRES)
            .persistent(false)
            .bind(&list)
            .fetch_all(&self.pool);
        let (events, stages, messages) =
            tokio::try_join!(events, stages, messages).map_err(&fail)?;
        Ok(HistoryRows {
            events,
            stages,
            messages,
        })
    }

    async fn lead_planning(&self) -> Result<Option<super::PlanningLead>, Error> {
        let fail = self.fail("taking the planning lead");
        let mut conn = self.pool.acquire().await.map_err(&fail)?;
        let led: bool = sqlx::query_scalar(sql::TRY_LEAD_PLANNING)
            .bind(super::PLANNING_LOCK)
            .fetch_one(&mut *conn)
            .await
            .map_err(&fail)?;
        Ok(led.then(|| super::PlanningLead::on(conn)))
    }

    async fn lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let fail = self.fail("claiming messages to send");
        // Outside a transaction: each claim commits as it is made, so other
        // instances skip those rows at once instead of waiting on the
        // claim key for this lease to end.
        let mut conn = self.pool.acquire().await.map_err(&fail)?;
        lease_on::<Postgres>(&mut conn, owner, now, lease_until, limit, &fail).await
    }

    async fn begin_sending(
        &self,
        owner: &str,
        ids: &[MessageId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        renew_before: DateTime<Utc>,
    ) -> Result<Vec<MessageId>, Error> {
        let fail = self.fail("marking messages as sending");
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let marked: Vec<String> = sqlx::query_scalar(sql::BEGIN_SENDING_POSTGRES)
            .bind(owner)
            .bind(now)
            .bind(&ids)
            .bind(lease_until)
            .bind(renew_before)
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        Ok(marked
            .iter()
            .filter_map(|id| MessageId::parse(id))
            .collect())
    }

    async fn sent_since(
        &self,
        ids: &[CustomerId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, Vec<DateTime<Utc>>>, Error> {
        let fail = self.fail("reading what was sent recently");
        let mut sent: HashMap<CustomerId, Vec<DateTime<Utc>>> = HashMap::new();
        // `UNNEST` keeps repeats: a customer listed twice would have every
        // send counted twice toward the cap.
        for chunk in super::distinct(ids).chunks(super::ROWS_PER_STATEMENT) {
            let list: Vec<&str> = chunk.iter().map(CustomerId::as_str).collect();
            // One probe a customer: `= ANY` and `IN (SELECT UNNEST(…))`
            // were each planned as a scan of the whole outbox, the first when
            // the table has no statistics.
            let rows = sqlx::query(sql::SENT_TO_POSTGRES)
                .persistent(false)
                .bind(list)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
            for row in rows {
                let id: String = row.try_get(0).map_err(&fail)?;
                let id = CustomerId::parse(&id).map_err(Error::Corrupt)?;
                sent.entry(id)
                    .or_default()
                    .push(row.try_get(1).map_err(&fail)?);
            }
        }
        Ok(sent)
    }

    async fn hold_name(&self, name: &str) -> Result<Option<super::NameHold>, Error> {
        let fail = self.fail("taking this instance's name");
        // A connection of its own, outside the pool: the lock lasts as long
        // as the connection, which the hold owns.
        let options = (*self.pool.connect_options()).clone();
        let mut conn = PgConnection::connect_with(&options).await.map_err(&fail)?;
        sqlx::raw_sql(sql::KEEP_NAME_ALIVE_POSTGRES)
            .execute(&mut conn)
            .await
            .map_err(&fail)?;
        let held: bool = sqlx::query_scalar(sql::TRY_HOLD_NAME_POSTGRES)
            .bind(super::INSTANCE_NAMES)
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(&fail)?;
        if !held {
            conn.close().await.map_err(&fail)?;
            return Ok(None);
        }
        Ok(Some(super::NameHold::on(conn)))
    }

    async fn tidy(&self, what: super::Tidy) -> Result<bool, Error> {
        let fail = self.fail("vacuuming after a large pass");
        // A connection of its own: no pooled connection waits the seconds a
        // vacuum takes, and that expected length is not logged as a slow
        // statement. VACUUM runs outside any transaction: the simple
        // protocol, as is.
        let options = (*self.pool.connect_options())
            .clone()
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options).await.map_err(&fail)?;
        let tidy = match what {
            super::Tidy::Rewritten => sql::TIDY_POSTGRES,
            super::Tidy::Added => sql::ANALYZE_POSTGRES,
        };
        sqlx::raw_sql(tidy)
            .execute(&mut conn)
            .await
            .map_err(&fail)?;
        conn.close().await.map_err(&fail)?;
        Ok(true)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
