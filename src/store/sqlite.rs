//! The SQLite store: one file, WAL, `synchronous = FULL` so a committed
//! ledger row survives a power loss, `BEGIN IMMEDIATE` for every write so a
//! transaction that reads first can never fail to upgrade to a writer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::backend::{Backend, Dialect, HistoryRows};
use super::column::At;
use super::outbox::lease_on;
use super::signals::Listening;
use super::sqlite_watch::WriterWatch;
use super::{
    ConnectOptions, Error, PlanWrite, StageChange, WriteFailure, WriteHealth, WriteOutcome, shared,
    sql, unique_runs,
};
use crate::domain::catchup::{self, Supersede};
use crate::domain::customer::{CustomerId, CustomerRecord};
use crate::domain::message::{MessageId, NewMessage, Settle};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Every write transaction, on one connection. SQLite has one writer at
    /// a time anyway; on a connection of their own, writers queue in the
    /// pool and each starts the moment the last commits, where on several
    /// connections they met at the file lock, and SQLite's busy handler
    /// polls it with sleeps of 1 to 100 ms.
    writer: SqlitePool,
    path: String,
    /// Whether writes succeed: `/readyz` reports it.
    health: Arc<WriteHealth>,
    /// Which signals are recorded.
    listening: Arc<Listening>,
}

impl SqliteStore {
    pub async fn connect(path: &Path, options: &ConnectOptions) -> Result<Self, Error> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Unreachable(format!(
                    "cannot create the folder {} for the SQLite database: {e}; create it or change database.url",
                    parent.display()
                ))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let open = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(options.connect_timeout.max(options.busy_timeout))
        };
        let health = Arc::new(WriteHealth::default());
        // Only the writer opens transactions, so only its connections can
        // be left believing one is open; it is one connection, so one watch.
        let watch = Arc::new(WriterWatch::default());
        let attach = Arc::clone(&watch);
        let released = Arc::clone(&health);
        // The writer first: it creates the file and turns WAL on.
        let writer = open(1)
            .after_connect(move |conn, _| Box::pin(Arc::clone(&attach).attach(conn)))
            .after_release(move |conn, _| {
                let watch = Arc::clone(&watch);
                let health = Arc::clone(&released);
                Box::pin(async move { watch.release(conn, &health).await })
            })
            .connect_with(connect.clone())
            .await
            .map_err(|e| classify(e, &shown, "opening the database"))?;
        let pool = open(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| classify(e, &shown, "opening the database"))?;
        Ok(Self {
            pool,
            writer,
            path: shown,
            health,
            listening: Arc::default(),
        })
    }
}

/// Turns a driver error into one a person can act on.
fn classify(e: sqlx::Error, path: &str, doing: &'static str) -> Error {
    if let sqlx::Error::ColumnDecode { index, source } = &e {
        return Error::Corrupt(format!("column {index}: {source}"));
    }
    if let sqlx::Error::Database(db) = &e {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
        let code = db.code().unwrap_or_default();
        let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(0);
        if primary == 5 || primary == 6 || db.message().contains("database is locked") {
            return Error::Locked(path.to_owned());
        }
        // SQLITE_FULL (13) and SQLITE_IOERR (10): the disk, not the data.
        if primary == 13 {
            return Error::Disk {
                path: path.to_owned(),
                doing,
                problem: "its disk (or SQLite's temporary folder) is full".into(),
            };
        }
        if primary == 10 {
            return Error::Disk {
                path: path.to_owned(),
                doing,
                problem: format!("its disk reported an I/O error ({})", db.message()),
            };
        }
        if primary == 14 {
            return Error::Unreachable(format!(
                "cannot open the SQLite database {path}: {}; check that the folder exists and is writable, or change database.url",
                db.message()
            ));
        }
    }
    if let sqlx::Error::PoolTimedOut = e {
        return Error::Locked(path.to_owned());
    }
    Error::Query { doing, source: e }
}

/// Appends the condition that picks the claims `owner` holds on `ids`.
fn push_claims_of(query: &mut QueryBuilder<Sqlite>, owner: &str, ids: &[MessageId]) {
    Sqlite::push_in(
        query,
        "message_id",
        ids.iter().map(|id| id.to_string()).collect(),
    );
    query.push(" AND owner = ");
    query.push_bind(owner.to_owned());
}

/// Drops the claims `owner` holds on `ids`, whose messages were settled.
async fn drop_claims(
    conn: &mut SqliteConnection,
    owner: &str,
    ids: &[MessageId],
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    let mut query = QueryBuilder::<Sqlite>::new(sql::DROP_CLAIMS_SQLITE);
    push_claims_of(&mut query, owner, ids);
    query.build().execute(&mut *conn).await.map_err(fail)?;
    Ok(())
}

impl Dialect for Sqlite {
    const WRITING_ELSEWHERE: Option<&'static str> = None;
    const CUSTOMER_OF_ANSWERED: &'static str = sql::CUSTOMER_OF_ANSWERED_SQLITE;
    const LOCK_MESSAGES_OF: Option<&'static str> = None;
    // Every commit waits for the disk (`synchronous = FULL`): SQLite sets
    // that per connection, not per transaction.
    const PLAN_WRITE_OPENS: Option<&'static str> = None;
    const CLAIM_FIRST: &'static str = sql::CLAIM_FIRST_SQLITE;
    const NEXT_PRIORITY: &'static str = sql::NEXT_PRIORITY_SQLITE;
    const CLAIM: &'static str = sql::CLAIM_SQLITE;

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn push_in(query: &mut QueryBuilder<Sqlite>, column: &str, ids: Vec<String>) {
        query.push(column);
        query.push(" IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        list.push_unseparated(")");
    }

    async fn insert_stage_changes(
        conn: &mut sqlx::SqliteConnection,
        changes: &[StageChange],
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        for run in changes.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_STAGE_CHANGES);
            insert.push_values(run, |mut row, c| {
                row.push_bind(c.customer_id.as_str().to_owned())
                    .push_bind(c.from.clone())
                    .push_bind(c.to.clone())
                    .push_bind(At(c.at));
            });
            insert.build().execute(&mut *conn).await.map_err(fail)?;
        }
        Ok(())
    }

    /// `sql::UPDATE_PLANNED_CUSTOMERS_SQLITE`, from a `VALUES` list.
    async fn update_planned_customers(
        conn: &mut sqlx::SqliteConnection,
        plan: &PlanWrite,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        let updates = shared::customer_updates(plan);
        // Six values a row, under SQLite's limit of bound values a statement.
        for run in unique_runs(&updates, |u| u.id)
            .into_iter()
            .flat_map(|run| run.chunks(super::ROWS_PER_STATEMENT / 6))
        {
            let mut update = QueryBuilder::<Sqlite>::new(sql::PLANNED_CUSTOMERS_SQLITE);
            update.push_values(run, |mut row, u| {
                row.push_bind(u.id.to_owned())
                    .push_bind(u.at.map(At))
                    .push_bind(u.seen.map(At))
                    .push_bind(u.moved)
                    .push_bind(u.stage.map(str::to_owned))
                    .push_bind(u.entered.map(At));
            });
            update.push(") ");
            update.push(sql::UPDATE_PLANNED_CUSTOMERS_SQLITE);
            update.build().execute(&mut *conn).await.map_err(fail)?;
        }
        Ok(())
    }

    /// `sql::SUPERSEDE_WAITING_SQLITE`, from a `VALUES` list.
    async fn supersede_waiting(
        conn: &mut sqlx::SqliteConnection,
        superseding: &[Supersede],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error> {
        let mut expired = 0;
        // Four values a row, under SQLite's limit of bound values a statement.
        for run in superseding.chunks(super::ROWS_PER_STATEMENT / 4) {
            let mut update = QueryBuilder::<Sqlite>::new(sql::EXPIRE_SUPERSEDED_SQLITE);
            update.push_bind(catchup::SUPERSEDED);
            update.push(", updated_at = ");
            update.push_bind(At(now));
            update.push(" FROM (");
            update.push_values(run, |mut row, s| {
                row.push_bind(s.customer_id.as_str().to_owned())
                    .push_bind(s.playbook.clone())
                    .push_bind(s.step.clone())
                    .push_bind(At(s.before));
            });
            update.push(sql::SUPERSEDE_WAITING_SQLITE);
            let ids: Vec<String> = update
                .build_query_scalar()
                .fetch_all(&mut *conn)
                .await
                .map_err(fail)?;
            if ids.is_empty() {
                continue;
            }
            expired += ids.len() as u64;
            let mut unclaim = QueryBuilder::<Sqlite>::new(sql::DROP_CLAIMS_SQLITE);
            Sqlite::push_in(&mut unclaim, "message_id", ids);
            unclaim.build().execute(&mut *conn).await.map_err(fail)?;
        }
        Ok(expired)
    }

    async fn insert_messages(
        conn: &mut sqlx::SqliteConnection,
        messages: &[NewMessage],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error> {
        let mut inserted = 0;
        for run in messages.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_MESSAGES);
            insert.push_values(run, |mut row, m| {
                row.push_bind(m.id.to_string())
                    .push_bind(m.customer_id.as_str().to_owned())
                    .push_bind(m.key.playbook.clone())
                    .push_bind(m.key.step.clone())
                    .push_bind(m.key.occurrence.clone())
                    .push_bind(m.kind.as_str())
                    .push_bind(m.category.clone())
                    .push_bind(m.template.clone())
                    .push_bind(m.survey.map(|s| s.as_str()))
                    .push_bind(m.priority)
                    .push_bind(m.status.as_str())
                    .push_bind(m.reason.clone())
                    .push_bind(m.to.clone())
                    .push_bind(m.message_id.clone())
                    .push_bind(At(m.due_at))
                    .push_bind(At(m.not_before))
                    .push_bind(At(m.expires_at))
                    .push_bind(At(now))
                    .push_bind(At(now))
                    .push_bind(m.notice.as_ref().map(|n| n.incident_id.clone()))
                    .push_bind(m.urgent)
                    .push_bind(super::notice_json(m))
                    .push_bind(m.account_id.as_ref().map(|a| a.as_str().to_owned()));
            });
            insert.push(sql::SKIP_PLANNED);
            inserted += insert
                .build()
                .execute(&mut *conn)
                .await
                .map_err(&fail)?
                .rows_affected();
        }
        Ok(inserted)
    }

    async fn settle_statuses(
        conn: &mut SqliteConnection,
        owner: &str,
        outcomes: &[Settle],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error> {
        for run in outcomes.chunks(super::ROWS_PER_STATEMENT / 2) {
            // One statement a run: each message's new state joined by id.
            let mut update = QueryBuilder::<Sqlite>::new(sql::SETTLE_SQLITE);
            update.push_bind(At(now));
            update.push(" FROM (");
            update.push_values(run, |mut row, o| {
                row.push_bind(o.id.to_string())
                    .push_bind(o.status.as_str())
                    .push_bind(o.reason.clone())
                    .push_bind(o.not_before.map(At))
                    .push_bind(o.subject.clone())
                    .push_bind(o.sent_at.map(At))
                    .push_bind(i64::from(o.attempt.is_some()))
                    .push_bind(o.attempt.as_ref().map(|a| At(a.started_at)));
            });
            update.push(") AS v WHERE messages.id = v.column1");
            update.push(sql::SETTLE_GUARD_SQLITE);
            update.push_bind(owner.to_owned());
            update.push("))");
            update.build().execute(&mut *conn).await.map_err(fail)?;
            let ids: Vec<MessageId> = run.iter().map(|o| o.id).collect();
            drop_claims(conn, owner, &ids, fail).await?;
        }
        Ok(())
    }
}

impl Backend for SqliteStore {
    type DB = Sqlite;
    const DIALECT: sql::Dialect = sql::Dialect::Sqlite;
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // One writer at a time: a second would wait for the lock.
    const CONCURRENT_WRITES: usize = 1;
    // A full pass at 1,000,000 customers took as long with 2,000 a page: a
    // transaction here costs little beyond its rows.
    const PLANNING_PAGE: u32 = 500;
    const MARK: &'static str = sql::MARK_SQLITE;
    const REPLAN_ALL: &'static str = sql::REPLAN_ALL_SQLITE;
    const ACCOUNT_MARK: &'static str = sql::ACCOUNT_MARK_SQLITE;
    const REPLAN_ACCOUNTS: &'static str = sql::REPLAN_ACCOUNTS_SQLITE;

    fn reads(&self) -> &SqlitePool {
        &self.pool
    }

    fn listening(&self) -> &Listening {
        &self.listening
    }

    fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    fn fail(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> Error + Send + Sync + '_ {
        move |e| {
            let e = classify(e, &self.path, doing);
            if matches!(e, Error::Disk { .. }) {
                self.health.failed(&e);
            }
            e
        }
    }

    async fn migrate(&self) -> Result<(), Error> {
        if super::migrations_in_place(&self.pool, &MIGRATOR).await {
            return Ok(());
        }
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| super::migrate_error(e, |inner| classify(inner, &self.path, "migrating")))
    }

    async fn upsert_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        let fail = self.fail("writing customers");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.begin().await.map_err(&fail)?;
        shared::add_named_accounts::<Sqlite>(&mut tx, batch, now, Self::ACCOUNT_MARK, &fail)
            .await?;
        for run in unique_runs(batch, |c| c.id.as_str()) {
            // BEGIN IMMEDIATE holds the write lock, so this count stays true
            // until the upsert below.
            let mut count = QueryBuilder::<Sqlite>::new(sql::COUNT_CUSTOMERS_OF_SQLITE);
            Sqlite::push_in(
                &mut count,
                "id",
                run.iter().map(|c| c.id.to_string()).collect(),
            );
            let existing: i64 = count
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await
                .map_err(&fail)?;

            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_CUSTOMERS);
            insert.push_values(run, |row, c| shared::customer_values(row, c, now));
            insert.push(sql::REPLACE_CUSTOMER);
            insert.push(sql::MARK_SQLITE);
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
            let existing = existing as u64;
            outcome += WriteOutcome {
                inserted: run.len() as u64 - existing,
                existing,
            };
        }
        tx.commit().await.map_err(&fail)?;
        Ok(outcome)
    }

    async fn history_rows(&self, ids: &[CustomerId]) -> Result<HistoryRows<SqliteRow>, Error> {
        let fail = self.fail("reading planning history");
        let read =
            |statement| shared::rows_among(&self.pool, statement, "customer_id", ids, "", &fail);
        Ok(HistoryRows {
            events: read(sql::HISTORY_EVENTS_SQLITE).await?,
            stages: read(sql::HISTORY_STAGES_SQLITE).await?,
            messages: read(sql::HISTORY_MESSAGES_SQLITE).await?,
        })
    }

    async fn lead_planning(&self) -> Result<Option<super::PlanningLead>, Error> {
        Ok(Some(super::PlanningLead::sole()))
    }

    async fn lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, Error> {
        let fail = self.fail("claiming messages to send");
        // One writer at a time on SQLite: the lease is taken under the
        // write lock, so no two claims can overlap.
        let mut tx = self.begin().await.map_err(&fail)?;
        let ids = lease_on::<Sqlite>(&mut tx, owner, now, lease_until, limit, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(ids)
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
        let mut query = QueryBuilder::<Sqlite>::new(sql::BEGIN_SENDING_SQLITE);
        query.push_bind(At(now));
        query.push(sql::CLAIMED_WAITING_SQLITE);
        push_claims_of(&mut query, owner, ids);
        query.push(") RETURNING id");
        let mut tx = self.begin().await.map_err(&fail)?;
        let marked: Vec<String> = query
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(&fail)?;
        let marked: Vec<MessageId> = marked
            .iter()
            .filter_map(|id| MessageId::parse(id))
            .collect();
        if !marked.is_empty() {
            let mut renew = QueryBuilder::<Sqlite>::new(sql::RENEW_CLAIMS_SQLITE);
            renew.push_bind(At(lease_until));
            renew.push(" WHERE ");
            push_claims_of(&mut renew, owner, &marked);
            renew.push(sql::RENEW_CLAIMS_ENDING_SQLITE);
            renew.push_bind(At(renew_before));
            renew.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(marked)
    }

    async fn sent_since(
        &self,
        ids: &[CustomerId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, Vec<DateTime<Utc>>>, Error> {
        let fail = self.fail("reading what was sent recently");
        let mut sent: HashMap<CustomerId, Vec<DateTime<Utc>>> = HashMap::new();
        // A customer in two chunks would have every send counted twice.
        for chunk in super::distinct(ids).chunks(super::ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(sql::SENT_TO);
            Sqlite::push_in(
                &mut query,
                "customer_id",
                chunk.iter().map(|id| id.to_string()).collect(),
            );
            query.push(" AND COALESCE(sent_at, updated_at) > ");
            query.push_bind(At(since));
            for row in query.build().fetch_all(self.reads()).await.map_err(&fail)? {
                let id: String = row.try_get(0).map_err(&fail)?;
                let id = CustomerId::parse(&id).map_err(Error::Corrupt)?;
                sent.entry(id)
                    .or_default()
                    .push(row.try_get::<At, _>(1).map_err(&fail)?.0);
            }
        }
        Ok(sent)
    }

    async fn hold_name(&self, _name: &str) -> Result<Option<super::NameHold>, Error> {
        // One `tend run` per file (the instance lock): its name is its own.
        Ok(Some(super::NameHold::sole()))
    }

    fn write_failure(&self) -> Option<WriteFailure> {
        self.health.failure()
    }

    async fn probe_write(&self) -> Result<(), Error> {
        // One statement, committed on its own; the writer's release records
        // the commit, as it does for every write.
        sqlx::query(sql::UPSERT_PLANNER_STATE)
            .bind(super::WRITE_PROBE)
            .bind(chrono::Utc::now().timestamp_millis().to_string())
            .execute(&self.writer)
            .await
            .map_err(self.fail("trying a write after writes failed"))?;
        Ok(())
    }

    async fn tidy(&self, _: super::Tidy) -> Result<bool, Error> {
        Ok(false)
    }

    async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Planning, Upkeep};

    /// The ledger's durability rests on these; a driver upgrade that changed
    /// a default must not weaken them silently.
    #[tokio::test]
    async fn every_connection_is_durable_and_waits_for_locks() {
        let dir = tempfile::tempdir().unwrap();
        let options = ConnectOptions {
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            busy_timeout: std::time::Duration::from_millis(1234),
        };
        let store = SqliteStore::connect(&dir.path().join("nested/dir/tend.db"), &options)
            .await
            .unwrap();
        for pool in [&store.pool, &store.writer] {
            let mut conn = pool.acquire().await.unwrap();
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(journal, "wal");
            for (pragma, expected) in [
                ("PRAGMA synchronous", 2), // FULL
                ("PRAGMA busy_timeout", 1234),
                ("PRAGMA foreign_keys", 1),
            ] {
                let value: i64 = sqlx::query_scalar(pragma)
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(value, expected, "{pragma}");
            }
        }
    }

    async fn migrated() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let options = ConnectOptions {
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let store = SqliteStore::connect(&dir.path().join("tend.db"), &options)
            .await
            .unwrap();
        Upkeep::migrate(&store).await.unwrap();
        (dir, store)
    }

    /// A value another program wrote that tend cannot read is reported as
    /// corrupt data, not as a failing query.
    #[tokio::test]
    async fn an_unreadable_stored_value_is_reported_as_corrupt() {
        use crate::domain::customer::CustomerId;
        use crate::store::Customers;
        let (_dir, store) = migrated().await;
        sqlx::raw_sql(
            "INSERT INTO customers (id, email, timezone, locale, attributes, created_at, \
             updated_at, plan_at) VALUES ('c1', 'a@b.example', 'UTC', 'en', '[1, 2]', 0, 0, 0)",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        let read = store.customer(&CustomerId::parse("c1").unwrap()).await;
        assert!(
            matches!(read, Err(Error::Corrupt(ref what)) if what.contains("not a JSON object")),
            "{read:?}"
        );
    }

    /// Waits until the writer is back in the pool, its release (and what
    /// that records) done.
    async fn released(store: &SqliteStore) {
        drop(store.writer.acquire().await.unwrap());
    }

    /// What a full disk does: SQLite ends the transaction by itself, under
    /// sqlx's feet. The next write must still begin.
    #[tokio::test]
    async fn a_transaction_sqlite_ended_itself_leaves_the_writer_usable() {
        let (_dir, store) = migrated().await;
        {
            let mut tx = store.begin().await.unwrap();
            sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await.unwrap();
        }
        for _ in 0..2 {
            let tx = store
                .writer
                .begin_with(SqliteStore::BEGIN_WRITE)
                .await
                .expect("a write begins on a connection that knows no transaction is open");
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test]
    async fn only_a_write_that_commits_ends_a_run_of_failures() {
        let (_dir, store) = migrated().await;
        store.health.failed(&"the disk is full");
        // Nothing changed: no proof.
        store.prune_attempts(Utc::now()).await.unwrap();
        released(&store).await;
        assert!(Upkeep::write_failure(&store).is_some());
        // Changed, then rolled back: no proof.
        {
            let mut tx = store.begin().await.unwrap();
            sqlx::query(sql::UPSERT_PLANNER_STATE)
                .bind("k")
                .bind("v")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        released(&store).await;
        assert!(Upkeep::write_failure(&store).is_some());
        store.replan_all("fingerprint").await.unwrap();
        released(&store).await;
        assert_eq!(Upkeep::write_failure(&store), None);
        // The probe is a write like any other.
        store.health.failed(&"the disk is full");
        Upkeep::probe_write(&store).await.unwrap();
        released(&store).await;
        assert_eq!(Upkeep::write_failure(&store), None);
    }
}
