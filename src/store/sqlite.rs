//! The SQLite store: one file, WAL, `synchronous = FULL` so a committed
//! ledger row survives a power loss, `BEGIN IMMEDIATE` for every write so a
//! transaction that reads first can never fail to upgrade to a writer.

use super::at::At;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::sqlite_watch::WriterWatch;
use super::{
    ConnectOptions, CustomerColumns, Error, HistoryRow, StageChange, Store, StoredEvent,
    WriteFailure, WriteHealth, WriteOutcome, fold_history, sql, unique_runs,
};
use super::{DueCursor, PlanWrite};
use crate::domain::catchup::{self, Supersede};
use crate::domain::customer::{Customer, CustomerId, CustomerRecord, parse_timezone};
use crate::domain::event::EventRecord;
use crate::domain::incident::{Incident, IncidentKind, IncidentStatus, IncidentView, Recipient};
use crate::domain::message::{
    Attempt, MessageFilter, MessageView, NewMessage, Outgoing, ResponseView, Settle, Suppression,
};
use crate::domain::plan::{EventFact, History, OccurrenceKey, StageEntry};
use crate::domain::prefilter::{Literal, Prefilter};
use crate::domain::report::Counts;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

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
}

/// A JSON object as stored text.
fn json_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
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
        })
    }

    /// Classifies a driver error met while `doing`; a disk failure also
    /// marks writes as failing until one commits.
    fn fail(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> Error + '_ {
        move |e| {
            let e = classify(e, &self.path, doing);
            if matches!(e, Error::Disk { .. }) {
                self.health.failed(&e);
            }
            e
        }
    }
}

/// Turns a driver error into one a person can act on.
fn classify(e: sqlx::Error, path: &str, doing: &'static str) -> Error {
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

/// A customer from a row of `sql::SELECT_CUSTOMER` or `sql::customers_page`.
fn customer_from(row: &SqliteRow, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Customer, Error> {
    let attributes: String = row.try_get("attributes").map_err(fail)?;
    let columns = CustomerColumns {
        id: row.try_get("id").map_err(fail)?,
        email: row.try_get("email").map_err(fail)?,
        name: row.try_get("name").map_err(fail)?,
        timezone: row.try_get("timezone").map_err(fail)?,
        locale: row.try_get("locale").map_err(fail)?,
        plan: row.try_get("plan").map_err(fail)?,
        signup_at: row
            .try_get::<Option<At>, _>("signup_at")
            .map_err(fail)?
            .map(|At(t)| t),
        renewal_at: row
            .try_get::<Option<At>, _>("renewal_at")
            .map_err(fail)?
            .map(|At(t)| t),
        last_seen_at: row
            .try_get::<Option<At>, _>("last_seen_at")
            .map_err(fail)?
            .map(|At(t)| t),
        health: row.try_get("health").map_err(fail)?,
        attributes: serde_json::from_str(&attributes).map_err(|e| Error::Corrupt(e.to_string()))?,
        stage: row.try_get("stage").map_err(fail)?,
        stage_entered_at: row
            .try_get::<Option<At>, _>("stage_entered_at")
            .map_err(fail)?
            .map(|At(t)| t),
        created_at: row.try_get::<At, _>("created_at").map_err(fail)?.0,
        updated_at: row.try_get::<At, _>("updated_at").map_err(fail)?.0,
    };
    columns.into_customer()
}

/// Appends `(…)` with the ids bound, for `IN` lists.
fn push_ids(query: &mut QueryBuilder<Sqlite>, ids: &[CustomerId]) {
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id.as_str().to_owned());
    }
    list.push_unseparated(")");
}

/// Appends `(…)` with the message ids bound, for `IN` lists.
fn push_message_ids(query: &mut QueryBuilder<Sqlite>, ids: &[uuid::Uuid]) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id.to_string());
    }
    list.push_unseparated(")");
}

/// Appends the condition that picks the claims `owner` holds on `ids`.
fn push_claims_of(query: &mut QueryBuilder<Sqlite>, owner: &str, ids: &[uuid::Uuid]) {
    query.push("message_id IN ");
    push_message_ids(query, ids);
    query.push(" AND owner = ");
    query.push_bind(owner.to_owned());
}

/// Drops the claims `owner` holds on `ids`, whose messages were settled.
async fn drop_claims(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    owner: &str,
    ids: &[uuid::Uuid],
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    let mut query = QueryBuilder::<Sqlite>::new(sql::DROP_CLAIMS_SQLITE);
    push_claims_of(&mut query, owner, ids);
    query.build().execute(&mut **tx).await.map_err(fail)?;
    Ok(())
}

/// A claimed message from a row of `sql::CLAIMED_DETAILS`.
fn outgoing_from(row: &SqliteRow, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Outgoing, Error> {
    let customer = customer_from(row, fail)?;
    let urgent: i64 = row.try_get("urgent").map_err(fail)?;
    super::OutgoingColumns {
        id: row.try_get("message_uuid").map_err(fail)?,
        playbook: row.try_get("playbook").map_err(fail)?,
        step: row.try_get("step").map_err(fail)?,
        occurrence: row.try_get("occurrence").map_err(fail)?,
        kind: row.try_get("kind").map_err(fail)?,
        category: row.try_get("category").map_err(fail)?,
        template: row.try_get("template").map_err(fail)?,
        survey: row.try_get("survey").map_err(fail)?,
        notice: row.try_get("notice").map_err(fail)?,
        urgent: urgent != 0,
        status: row.try_get("status").map_err(fail)?,
        to: row.try_get("to_address").map_err(fail)?,
        message_id: row.try_get("message_id").map_err(fail)?,
        due_at: row.try_get::<At, _>("due_at").map_err(fail)?.0,
        not_before: row.try_get::<At, _>("not_before").map_err(fail)?.0,
        expires_at: row
            .try_get::<Option<At>, _>("expires_at")
            .map_err(fail)?
            .map(|At(t)| t),
        attempts: row.try_get("attempts").map_err(fail)?,
        first_attempt_at: row
            .try_get::<Option<At>, _>("first_attempt_at")
            .map_err(fail)?
            .map(|At(t)| t),
        suppressed: row.try_get("suppressed").map_err(fail)?,
    }
    .into_outgoing(customer)
}

/// Records lifecycle stage changes (kept so `stage:NAME` anchors fire once
/// per entry); the customers' own rows move in `update_planned_customers_in`.
async fn insert_stage_changes_in(
    conn: &mut sqlx::SqliteConnection,
    changes: &[StageChange],
    fail: &impl Fn(sqlx::Error) -> Error,
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

/// Writes a planned page's customers: next planning time and new stage,
/// one update each (`sql::UPDATE_PLANNED_CUSTOMERS_SQLITE`).
async fn update_planned_customers_in(
    conn: &mut sqlx::SqliteConnection,
    plan: &PlanWrite,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    let updates = plan.customer_updates();
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

/// Expires the waiting messages newer occurrences supersede and drops
/// their claims (`sql::SUPERSEDE_WAITING_SQLITE`). Returns how many.
async fn supersede_waiting_in(
    conn: &mut sqlx::SqliteConnection,
    superseding: &[Supersede],
    now: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<u64, Error> {
    let mut expired = 0;
    // Four values a row, under SQLite's limit of bound values a statement.
    for run in superseding.chunks(super::ROWS_PER_STATEMENT / 4) {
        let mut update =
            QueryBuilder::<Sqlite>::new("UPDATE messages SET status = 'expired', reason = ");
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
        unclaim.push("message_id IN (");
        let mut list = unclaim.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        list.push_unseparated(")");
        unclaim.build().execute(&mut *conn).await.map_err(fail)?;
    }
    Ok(expired)
}

/// Puts messages into the outbox; an occurrence already there is left
/// alone. Returns how many were new.
async fn insert_messages_in(
    conn: &mut sqlx::SqliteConnection,
    messages: &[NewMessage],
    now: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
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
                .push_bind(super::notice_json(m));
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

/// One response to `message`, from `customer`.
async fn insert_response<'e>(
    conn: impl sqlx::SqliteExecutor<'e>,
    message: uuid::Uuid,
    customer: &str,
    response: &super::NewResponse,
    now: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    sqlx::query(sql::INSERT_RESPONSE)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(message.to_string())
        .bind(customer)
        .bind(response.kind)
        .bind(&response.value)
        .bind(&response.comment)
        .bind(At(now))
        .bind(response.source)
        .execute(conn)
        .await
        .map_err(fail)?;
    Ok(())
}

/// The customer a message went to, if the message exists.
async fn customer_of<'e>(
    conn: impl sqlx::SqliteExecutor<'e>,
    message: uuid::Uuid,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar(sql::CUSTOMER_OF_MESSAGE)
        .bind(message.to_string())
        .fetch_optional(conn)
        .await
        .map_err(fail)
}

impl Store for SqliteStore {
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
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        for run in unique_runs(batch, |c| c.id.as_str()) {
            // BEGIN IMMEDIATE holds the write lock, so this count stays true
            // until the upsert below.
            let mut count =
                QueryBuilder::<Sqlite>::new("SELECT count(*) FROM customers WHERE id IN (");
            let mut ids = count.separated(", ");
            for c in run {
                ids.push_bind(c.id.as_str());
            }
            ids.push_unseparated(")");
            let existing: i64 = count
                .build_query_scalar()
                .fetch_one(&mut *tx)
                .await
                .map_err(&fail)?;

            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_CUSTOMERS);
            insert.push_values(run, |mut row, c| {
                row.push_bind(c.id.as_str())
                    .push_bind(c.email.as_str())
                    .push_bind(c.name.as_str())
                    .push_bind(c.timezone.name())
                    .push_bind(c.locale.as_str())
                    .push_bind(c.plan.as_str())
                    .push_bind(c.signup_at.map(At))
                    .push_bind(c.renewal_at.map(At))
                    .push_bind(c.last_seen_at.map(At))
                    .push_bind(c.health.map(i64::from))
                    .push_bind(json_text(&c.attributes))
                    .push_bind(At(now))
                    .push_bind(At(now))
                    // Planned again at the next tick.
                    .push_bind(0_i64);
            });
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

    async fn insert_events(
        &self,
        batch: &[EventRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        let fail = self.fail("writing events");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        for run in batch.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_EVENTS);
            insert.push_values(run, |mut row, e| {
                row.push_bind(e.id.as_deref())
                    .push_bind(e.customer_id.as_str())
                    .push_bind(e.name.as_str())
                    .push_bind(At(e.occurred_at))
                    .push_bind(json_text(&e.properties))
                    .push_bind(At(now));
            });
            insert.push(sql::SKIP_KNOWN_EVENT);
            let inserted = insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(&fail)?
                .rows_affected();
            // A new event may make a step due: plan its customer at the next tick.
            let mut ids: Vec<CustomerId> = run.iter().map(|e| e.customer_id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut mark = QueryBuilder::<Sqlite>::new(format!(
                "UPDATE customers SET plan_at = {} WHERE id IN (",
                sql::MARK_SQLITE
            ));
            push_ids(&mut mark, &ids);
            mark.build().execute(&mut *tx).await.map_err(&fail)?;
            outcome += WriteOutcome {
                inserted,
                existing: run.len() as u64 - inserted,
            };
        }
        tx.commit().await.map_err(&fail)?;
        Ok(outcome)
    }

    async fn customer_zones(&self, ids: &[CustomerId]) -> Result<HashMap<CustomerId, Tz>, Error> {
        let fail = self.fail("reading customers");
        let mut zones = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            let mut query =
                QueryBuilder::<Sqlite>::new("SELECT id, timezone FROM customers WHERE id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            list.push_unseparated(")");
            for row in query.build().fetch_all(&self.pool).await.map_err(&fail)? {
                let id: String = row.try_get(0).map_err(&fail)?;
                let zone: String = row.try_get(1).map_err(&fail)?;
                let id = CustomerId::parse(&id).map_err(Error::Corrupt)?;
                zones.insert(id, parse_timezone(&zone).map_err(Error::Corrupt)?);
            }
        }
        Ok(zones)
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, Error> {
        let fail = self.fail("reading a customer");
        let row = sqlx::query(sql::SELECT_CUSTOMER)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?;
        row.map(|row| customer_from(&row, &fail)).transpose()
    }

    async fn count_customers(&self) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_CUSTOMERS)
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail("counting customers"))?;
        Ok(n as u64)
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map_err(self.fail("checking the database answers"))?;
        Ok(())
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

    async fn count_due(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_DUE)
            .bind(At(now))
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail("counting due messages"))?;
        Ok(n as u64)
    }

    async fn events_of(&self, id: &CustomerId) -> Result<Vec<StoredEvent>, Error> {
        let fail = self.fail("reading events");
        let rows = sqlx::query(sql::SELECT_EVENTS_OF)
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.into_iter()
            .map(|row| {
                let properties: String = row.try_get("properties").map_err(&fail)?;
                let properties = match serde_json::from_str(&properties) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => return Err(Error::Corrupt(format!("event properties {properties:?}"))),
                };
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
            .fetch_all(&self.pool)
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
                Ok((customer_from(row, &fail)?, seen))
            })
            .collect::<Result<_, _>>()?;
        Ok((customers, cursor))
    }

    async fn planner_fingerprint(&self) -> Result<Option<String>, Error> {
        sqlx::query_scalar(sql::SELECT_PLANNER_STATE)
            .bind(super::FINGERPRINT)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.fail("reading the planner state"))
    }

    async fn replan_all(&self, fingerprint: &str) -> Result<(), Error> {
        let fail = self.fail("scheduling a full re-plan");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        sqlx::query(sql::REPLAN_ALL_SQLITE)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        sqlx::query(sql::UPSERT_PLANNER_STATE)
            .bind(super::FINGERPRINT)
            .bind(fingerprint)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    async fn customers_page(
        &self,
        after: Option<&CustomerId>,
        limit: u32,
        filter: Option<&Prefilter>,
    ) -> Result<Vec<Customer>, Error> {
        let fail = self.fail("reading customers");
        let (statement, values) = sql::customers_page(filter, sql::Dialect::Sqlite);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(after.map_or("", CustomerId::as_str))
            .bind(i64::from(limit));
        for value in values {
            query = match value {
                Literal::Text(text) => query.bind(text),
                Literal::Int(n) => query.bind(n),
            };
        }
        let rows = query.fetch_all(&self.pool).await.map_err(&fail)?;
        rows.iter().map(|row| customer_from(row, &fail)).collect()
    }

    async fn planning_history(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, History>, Error> {
        let fail = self.fail("reading planning history");
        let mut rows = Vec::new();
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            let mut events = QueryBuilder::<Sqlite>::new(
                "SELECT customer_id, coalesce(id, 'seq:' || seq), name, occurred_at FROM events WHERE customer_id IN (",
            );
            push_ids(&mut events, chunk);
            for row in events.build().fetch_all(&self.pool).await.map_err(&fail)? {
                rows.push(HistoryRow::Event {
                    customer: row.try_get(0).map_err(&fail)?,
                    fact: EventFact {
                        key: row.try_get(1).map_err(&fail)?,
                        name: row.try_get(2).map_err(&fail)?,
                        occurred_at: row.try_get::<At, _>(3).map_err(&fail)?.0,
                    },
                });
            }
            let mut stages = QueryBuilder::<Sqlite>::new(
                "SELECT customer_id, to_stage, changed_at FROM stage_changes WHERE to_stage IS NOT NULL AND customer_id IN (",
            );
            push_ids(&mut stages, chunk);
            for row in stages.build().fetch_all(&self.pool).await.map_err(&fail)? {
                rows.push(HistoryRow::Stage {
                    customer: row.try_get(0).map_err(&fail)?,
                    entry: StageEntry {
                        stage: row.try_get(1).map_err(&fail)?,
                        entered_at: row.try_get::<At, _>(2).map_err(&fail)?.0,
                    },
                });
            }
            let mut messages = QueryBuilder::<Sqlite>::new(
                "SELECT customer_id, playbook, step, occurrence, status = 'sent', status IN ('planned', 'deferred') FROM messages WHERE customer_id IN (",
            );
            push_ids(&mut messages, chunk);
            for row in messages
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?
            {
                rows.push(HistoryRow::Message {
                    customer: row.try_get(0).map_err(&fail)?,
                    key: OccurrenceKey {
                        playbook: row.try_get(1).map_err(&fail)?,
                        step: row.try_get(2).map_err(&fail)?,
                        occurrence: row.try_get(3).map_err(&fail)?,
                    },
                    sent: row.try_get(4).map_err(&fail)?,
                    waiting: row.try_get(5).map_err(&fail)?,
                });
            }
        }
        fold_history(ids, rows)
    }

    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageView>, Error> {
        let fail = self.fail("reading messages");
        let rows = sqlx::query(sql::SELECT_MESSAGES)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.customer.as_ref().map(CustomerId::as_str))
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                Ok(MessageView {
                    id: row.try_get("id").map_err(&fail)?,
                    customer_id: row.try_get("customer_id").map_err(&fail)?,
                    to: row.try_get("to_address").map_err(&fail)?,
                    playbook: row.try_get("playbook").map_err(&fail)?,
                    step: row.try_get("step").map_err(&fail)?,
                    occurrence: row.try_get("occurrence").map_err(&fail)?,
                    kind: row.try_get("kind").map_err(&fail)?,
                    status: row.try_get("status").map_err(&fail)?,
                    reason: row.try_get("reason").map_err(&fail)?,
                    subject: row.try_get("subject").map_err(&fail)?,
                    due_at: row.try_get::<At, _>("due_at").map_err(&fail)?.0,
                    sent_at: row
                        .try_get::<Option<At>, _>("sent_at")
                        .map_err(&fail)?
                        .map(|At(t)| t),
                    attempts: row.try_get("attempts").map_err(&fail)?,
                    message_id: row.try_get("message_id").map_err(&fail)?,
                })
            })
            .collect()
    }

    fn concurrent_writes(&self) -> usize {
        // One writer at a time: a second would wait for the lock.
        1
    }

    fn planning_page(&self) -> u32 {
        // A full pass at 1,000,000 customers took as long with 2,000 a
        // page: a transaction here costs little beyond its rows.
        500
    }

    async fn record_plan(&self, plan: &PlanWrite, now: DateTime<Utc>) -> Result<(u64, u64), Error> {
        let fail = self.fail("recording a planning page");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        update_planned_customers_in(&mut tx, plan, &fail).await?;
        insert_stage_changes_in(&mut tx, &plan.changes, &fail).await?;
        let superseded = supersede_waiting_in(&mut tx, &plan.superseding, now, &fail).await?;
        let planned = insert_messages_in(&mut tx, &plan.planned, now, &fail).await?;
        let expired = insert_messages_in(&mut tx, &plan.expired, now, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok((planned, expired + superseded))
    }

    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Outgoing>, Error> {
        let fail = self.fail("claiming messages to send");
        // One writer at a time on SQLite: the lease is taken under the
        // write lock, so no two claims can overlap.
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let mut ids: Vec<String> = Vec::new();
        let mut walk = super::PriorityWalk::start();
        while ids.len() < limit as usize {
            let priority: Option<i64> = sqlx::query_scalar(sql::NEXT_PRIORITY)
                .bind(walk.from())
                .bind(At(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(&fail)?;
            let Some(priority) = priority else { break };
            let taken: Vec<String> = sqlx::query_scalar(sql::CLAIM_SQLITE)
                .bind(owner)
                .bind(At(lease_until))
                .bind(At(now))
                .bind((limit as usize - ids.len()) as i64)
                .bind(priority)
                .fetch_all(&mut *tx)
                .await
                .map_err(&fail)?;
            let more = walk.claimed(priority, taken.len());
            ids.extend(taken);
            if !more {
                break;
            }
        }
        tx.commit().await.map_err(&fail)?;
        let ids: Vec<uuid::Uuid> = ids
            .iter()
            .filter_map(|id| uuid::Uuid::try_parse(id).ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(sql::CLAIMED_DETAILS);
        query.push("m.id IN ");
        push_message_ids(&mut query, &ids);
        query.push(" ORDER BY m.priority, m.not_before, m.id");
        let rows = query.build().fetch_all(&self.pool).await.map_err(&fail)?;
        let claimed = rows
            .iter()
            .map(|row| outgoing_from(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::fold_claimed(claimed))
    }

    async fn begin_sending(
        &self,
        owner: &str,
        ids: &[uuid::Uuid],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<uuid::Uuid>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let fail = self.fail("marking messages as sending");
        let mut query = QueryBuilder::<Sqlite>::new(sql::BEGIN_SENDING_SQLITE);
        query.push_bind(At(now));
        query.push(" WHERE status IN ('planned', 'deferred') AND id IN (SELECT message_id FROM claims WHERE ");
        push_claims_of(&mut query, owner, ids);
        query.push(") RETURNING id");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let marked: Vec<String> = query
            .build_query_scalar()
            .fetch_all(&mut *tx)
            .await
            .map_err(&fail)?;
        let marked: Vec<uuid::Uuid> = marked
            .iter()
            .filter_map(|id| uuid::Uuid::try_parse(id).ok())
            .collect();
        if !marked.is_empty() {
            let mut renew = QueryBuilder::<Sqlite>::new(sql::RENEW_CLAIMS_SQLITE);
            renew.push_bind(At(lease_until));
            renew.push(" WHERE ");
            push_claims_of(&mut renew, owner, &marked);
            renew.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(marked)
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
        let fail = self.fail("recording delivery outcomes");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        for run in outcomes.chunks(super::ROWS_PER_STATEMENT / 2) {
            // One statement a run: each message's new state joined by id.
            let mut update = QueryBuilder::<Sqlite>::new(
                "UPDATE messages SET status = v.column2, reason = v.column3, \
                 not_before = COALESCE(v.column4, not_before), subject = COALESCE(v.column5, subject), \
                 sent_at = COALESCE(v.column6, sent_at), attempts = attempts + v.column7, \
                 first_attempt_at = COALESCE(first_attempt_at, v.column8), updated_at = ",
            );
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
            update.build().execute(&mut *tx).await.map_err(&fail)?;
            let ids: Vec<uuid::Uuid> = run.iter().map(|o| o.id).collect();
            drop_claims(&mut tx, owner, &ids, &fail).await?;
            let attempts: Vec<_> = run
                .iter()
                .filter_map(|o| o.attempt.as_ref().map(|a| (o.id, a)))
                .collect();
            if !attempts.is_empty() {
                let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_ATTEMPTS);
                insert.push_values(&attempts, |mut row, (id, a)| {
                    row.push_bind(id.to_string())
                        .push_bind(At(a.started_at))
                        .push_bind(At(a.finished_at))
                        .push_bind(a.outcome.as_str())
                        .push_bind(a.smtp_code.map(i64::from))
                        .push_bind(a.detail.clone());
                });
                insert.build().execute(&mut *tx).await.map_err(&fail)?;
            }
        }
        for s in outcomes.iter().filter_map(|o| o.suppress.as_ref()) {
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
        tx.commit().await.map_err(&fail)?;
        Ok(())
    }

    async fn outgoing(&self, id: uuid::Uuid) -> Result<Option<Outgoing>, Error> {
        let fail = self.fail("reading a message");
        let rows = {
            let mut query = QueryBuilder::<Sqlite>::new(sql::CLAIMED_DETAILS);
            query.push("m.id IN ");
            push_message_ids(&mut query, &[id]);
            query.push(" ORDER BY m.id");
            query.build().fetch_all(&self.pool).await.map_err(&fail)?
        };
        let found = rows
            .iter()
            .map(|row| outgoing_from(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::fold_claimed(found).into_iter().next())
    }

    async fn queued(&self, ids: &[CustomerId]) -> Result<Vec<Outgoing>, Error> {
        let fail = self.fail("reading the outbox");
        let mut queued = Vec::new();
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(sql::CLAIMED_DETAILS);
            query.push(sql::QUEUED);
            query.push("m.customer_id IN (");
            push_ids(&mut query, chunk);
            query.push(sql::QUEUED_ORDER);
            let rows = query.build().fetch_all(&self.pool).await.map_err(&fail)?;
            for row in &rows {
                queued.push(outgoing_from(row, &fail)?);
            }
        }
        Ok(super::fold_claimed(queued))
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
            query.push("customer_id IN (");
            push_ids(&mut query, chunk);
            query.push(" AND COALESCE(sent_at, updated_at) > ");
            query.push_bind(At(since));
            for row in query.build().fetch_all(&self.pool).await.map_err(&fail)? {
                let id: String = row.try_get(0).map_err(&fail)?;
                let id = CustomerId::parse(&id).map_err(Error::Corrupt)?;
                sent.entry(id)
                    .or_default()
                    .push(row.try_get::<At, _>(1).map_err(&fail)?.0);
            }
        }
        Ok(sent)
    }

    async fn recover_sending(&self, now: DateTime<Utc>, resend: bool) -> Result<u64, Error> {
        let fail = self.fail("recovering interrupted sends");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
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
        Ok(done.rows_affected())
    }

    async fn release_claims(
        &self,
        owner: Option<&str>,
        now: DateTime<Utc>,
        resend: bool,
    ) -> Result<super::Released, Error> {
        let fail = self.fail("releasing the claims of a stopped instance");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let interrupted = sqlx::query(sql::RELEASE_SENDING)
            .bind(At(now))
            .bind(if resend { "deferred" } else { "unknown" })
            .bind(super::recovered_reason(resend))
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?
            .rows_affected();
        let dropped = sqlx::query(sql::RELEASE_CLAIMS)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?
            .rows_affected();
        tx.commit().await.map_err(&fail)?;
        Ok(super::Released {
            interrupted,
            waiting: dropped.saturating_sub(interrupted),
        })
    }

    async fn renew_claims(&self, owner: &str, lease_until: DateTime<Utc>) -> Result<u64, Error> {
        let fail = self.fail("renewing this instance's claims");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let done = sqlx::query(sql::RENEW_CLAIMS)
            .bind(owner)
            .bind(At(lease_until))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(done.rows_affected())
    }

    async fn hold_name(&self, _name: &str) -> Result<Option<super::NameHold>, Error> {
        // One `tend run` per file (the instance lock): its name is its own.
        Ok(Some(super::NameHold::sole()))
    }

    async fn attempts(&self, id: &uuid::Uuid) -> Result<Vec<Attempt>, Error> {
        let fail = self.fail("reading delivery attempts");
        let rows = sqlx::query(sql::SELECT_ATTEMPTS)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| super::rows::attempt(row, &fail))
            .collect()
    }

    async fn record_response(
        &self,
        message: uuid::Uuid,
        response: &super::NewResponse,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error> {
        let fail = self.fail("recording a response");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let customer = customer_of(&mut *tx, message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        if response.replace {
            sqlx::query(sql::DELETE_RESPONSES_OF)
                .bind(message.to_string())
                .bind(response.kind)
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        insert_response(&mut *tx, message, &customer, response, now, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(CustomerId::parse(&customer).map_err(Error::Corrupt)?))
    }

    async fn subscriptions(&self, message: uuid::Uuid) -> Result<Option<Vec<Suppression>>, Error> {
        let fail = self.fail("reading a customer's subscriptions");
        let customer = customer_of(&self.pool, message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(sql::SUPPRESSIONS_OF)
            .bind(&customer)
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.into_iter()
            .map(super::suppression)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    async fn set_preferences(
        &self,
        message: uuid::Uuid,
        choice: &super::Preferences,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error> {
        let fail = self.fail("recording a customer's preferences");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let customer = customer_of(&mut *tx, message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        super::shared::apply_preferences::<Sqlite>(
            &mut tx, message, &customer, choice, now, None, &fail,
        )
        .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(CustomerId::parse(&customer).map_err(Error::Corrupt)?))
    }

    async fn record_inbound(
        &self,
        mail: &super::InboundMail,
    ) -> Result<super::InboundRecorded, Error> {
        let fail = self.fail("recording inbound mail");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        // The message it answers: the reply token names it outright; a
        // Message-ID of ours must match the stored one whole.
        let mut matched: Option<(uuid::Uuid, String)> = None;
        if let Some(id) = mail.by_token {
            let customer = customer_of(&mut *tx, id, &fail).await?;
            matched = customer.map(|c| (id, c));
        }
        for (id, header_id) in &mail.by_reference {
            if matched.is_some() {
                break;
            }
            let customer: Option<String> = sqlx::query_scalar(sql::MESSAGE_BY_HEADER_ID)
                .bind(id.to_string())
                .bind(header_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?;
            matched = customer.map(|c| (*id, c));
        }
        let message = matched.as_ref().map(|(id, _)| id.to_string());
        let kept = sqlx::query(sql::INSERT_INBOUND)
            .bind(mail.id.to_string())
            .bind(mail.source)
            .bind(At(mail.received_at))
            .bind(&mail.dedupe)
            .bind(mail.classification)
            .bind(&message)
            .bind(&mail.raw)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if kept.rows_affected() == 0 {
            return Ok(super::InboundRecorded::Duplicate);
        }
        let customer = matched.as_ref().map(|(_, c)| c.clone());
        if let Some(response) = &mail.response {
            sqlx::query(sql::INSERT_INBOUND_RESPONSE)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&message)
                .bind(&customer)
                .bind(response.kind)
                .bind(&response.value)
                .bind(&response.comment)
                .bind(At(mail.received_at))
                .bind(mail.source)
                .bind(mail.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        if let (Some((id, c)), super::Effect::Unsubscribe(choice)) = (&matched, &mail.effect) {
            super::shared::apply_preferences::<Sqlite>(
                &mut tx,
                *id,
                c,
                choice,
                mail.received_at,
                Some(mail.id),
                &fail,
            )
            .await?;
        }
        let suppression = match (&customer, &mail.effect) {
            (Some(_), super::Effect::Suppress { reason, source }) => {
                Some((reason.clone(), *source))
            }
            (Some(c), super::Effect::SoftBounce { limit, since }) => {
                let count: i64 = sqlx::query_scalar(sql::COUNT_SOFT_BOUNCES)
                    .bind(c)
                    .bind(At(*since))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&fail)?;
                (count >= i64::from(*limit))
                    .then(|| (super::soft_bounced_reason(count, *since), "bounce"))
            }
            _ => None,
        };
        if let (Some(c), Some((reason, source))) = (&customer, &suppression) {
            sqlx::query(sql::INSERT_SUPPRESSION)
                .bind(c)
                .bind("*")
                .bind(reason)
                .bind(*source)
                .bind(At(mail.received_at))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(super::InboundRecorded::Kept {
            message: matched.map(|(id, _)| id),
            customer: customer
                .map(|c| CustomerId::parse(&c).map_err(Error::Corrupt))
                .transpose()?,
            suppressed: suppression.is_some(),
        })
    }

    async fn responses(&self, since: DateTime<Utc>) -> Result<Vec<ResponseView>, Error> {
        let fail = self.fail("reading responses");
        let rows = sqlx::query(sql::RESPONSES_SINCE)
            .bind(At(since))
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                Ok(ResponseView {
                    id: row.try_get("id").map_err(&fail)?,
                    message_id: row.try_get("message_id").map_err(&fail)?,
                    customer_id: row.try_get("customer_id").map_err(&fail)?,
                    kind: row.try_get("kind").map_err(&fail)?,
                    value: row.try_get("value").map_err(&fail)?,
                    comment: row.try_get("comment").map_err(&fail)?,
                    received_at: row.try_get::<At, _>("received_at").map_err(&fail)?.0,
                    source: row.try_get("source").map_err(&fail)?,
                })
            })
            .collect()
    }

    async fn report_counts(&self, since: DateTime<Utc>) -> Result<Counts, Error> {
        let fail = self.fail("counting for the report");
        Ok(Counts {
            statuses: sqlx::query_as(sql::REPORT_STATUSES)
                .bind(At(since))
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            steps: sqlx::query_as(sql::REPORT_STEPS)
                .bind(At(since))
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            answers: sqlx::query_as(sql::REPORT_ANSWERS)
                .bind(At(since))
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            kinds: sqlx::query_as(sql::REPORT_KINDS)
                .bind(At(since))
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
        })
    }

    async fn create_incident(&self, incident: &Incident) -> Result<bool, Error> {
        let fail = self.fail("recording an incident");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let done = sqlx::query(sql::INSERT_INCIDENT)
            .bind(&incident.id)
            .bind(incident.kind.as_str())
            .bind(&incident.title)
            .bind(incident.status.as_str())
            .bind(&incident.affects)
            .bind(&incident.template)
            .bind(&incident.message)
            .bind(incident.starts_at.map(At))
            .bind(incident.ends_at.map(At))
            .bind(At(incident.opened_at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(done.rows_affected() == 1)
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, Error> {
        let fail = self.fail("reading an incident");
        let Some(row) = sqlx::query(sql::SELECT_INCIDENT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?
        else {
            return Ok(None);
        };
        super::rows::incident(&row, &fail).map(Some)
    }

    async fn incidents(&self) -> Result<Vec<IncidentView>, Error> {
        let fail = self.fail("listing incidents");
        let rows = sqlx::query(sql::LIST_INCIDENTS)
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind").map_err(&fail)?;
                let status: String = row.try_get("status").map_err(&fail)?;
                Ok(IncidentView {
                    id: row.try_get("id").map_err(&fail)?,
                    kind: IncidentKind::parse(&kind)
                        .ok_or_else(|| Error::Corrupt(format!("incident kind {kind:?}")))?,
                    title: row.try_get("title").map_err(&fail)?,
                    status: IncidentStatus::parse(&status).map_err(Error::Corrupt)?,
                    opened_at: row.try_get::<At, _>("opened_at").map_err(&fail)?.0,
                    resolved_at: row
                        .try_get::<Option<At>, _>("resolved_at")
                        .map_err(&fail)?
                        .map(|At(t)| t),
                    notified: row.try_get("notified").map_err(&fail)?,
                })
            })
            .collect()
    }

    async fn record_notices(
        &self,
        incident: &str,
        affected: &[CustomerId],
        notices: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let fail = self.fail("recording incident notices");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        for run in affected.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(sql::INSERT_AFFECTED);
            insert.push_values(run, |mut row, id| {
                row.push_bind(incident.to_owned())
                    .push_bind(id.as_str().to_owned());
            });
            insert.push(sql::SKIP_AFFECTED);
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        let planned = insert_messages_in(&mut tx, notices, now, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(planned)
    }

    async fn recipients(&self, incident: &str) -> Result<Vec<Recipient>, Error> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(sql::RECIPIENTS)
            .bind(incident)
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("reading who got an incident's notice"))?;
        super::first_per_customer(rows)
    }

    async fn update_incident(
        &self,
        id: &str,
        status: Option<IncidentStatus>,
        message: &str,
        notify: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, Error> {
        let fail = self.fail("recording an incident update");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let changed = sqlx::query(sql::UPDATE_INCIDENT)
            .bind(id)
            .bind(status.map(IncidentStatus::as_str))
            .bind(message)
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let seq: i64 = sqlx::query_scalar(sql::INSERT_INCIDENT_UPDATE)
            .bind(id)
            .bind(status.map_or("", IncidentStatus::as_str))
            .bind(message)
            .bind(notify)
            .bind(At(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(seq))
    }

    async fn close_incident(
        &self,
        id: &str,
        status: IncidentStatus,
        message: &str,
        withdrawn: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, Error> {
        let fail = self.fail("closing an incident");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let closed = sqlx::query(sql::CLOSE_INCIDENT)
            .bind(id)
            .bind(status.as_str())
            .bind(message)
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if closed.rows_affected() == 0 {
            return Ok(None);
        }
        super::shared::record_update::<Sqlite>(&mut *tx, id, status, message, true, now, &fail)
            .await?;
        let withdrawn =
            super::shared::withdraw_announcements::<Sqlite>(&mut *tx, id, withdrawn, now, &fail)
                .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(withdrawn))
    }

    async fn maintenances_due(&self, now: DateTime<Utc>) -> Result<Vec<Incident>, Error> {
        let fail = self.fail("reading the maintenances whose start or end has come");
        let rows = sqlx::query(sql::MAINTENANCES_DUE)
            .bind(At(now))
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| super::rows::incident(row, &fail))
            .collect()
    }

    async fn start_maintenance(
        &self,
        id: &str,
        message: &str,
        expired: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, Error> {
        let fail = self.fail("starting a maintenance");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let started = sqlx::query(sql::START_MAINTENANCE)
            .bind(id)
            .bind(At(at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if started.rows_affected() == 0 {
            return Ok(None);
        }
        let status = IncidentStatus::InProgress;
        super::shared::record_update::<Sqlite>(&mut *tx, id, status, message, false, at, &fail)
            .await?;
        let expired =
            super::shared::withdraw_announcements::<Sqlite>(&mut *tx, id, expired, at, &fail)
                .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(expired))
    }

    async fn quiet_customers(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, String>, Error> {
        let fail = self.fail("reading which customers an open incident affects");
        let mut quiet = HashMap::new();
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(sql::QUIET);
            query.push("ic.customer_id IN (");
            push_ids(&mut query, chunk);
            for row in query.build().fetch_all(&self.pool).await.map_err(&fail)? {
                let customer: String = row.try_get(0).map_err(&fail)?;
                let customer = CustomerId::parse(&customer).map_err(Error::Corrupt)?;
                quiet.insert(customer, row.try_get(1).map_err(&fail)?);
            }
        }
        Ok(quiet)
    }

    async fn responses_of(&self, message: uuid::Uuid) -> Result<Vec<super::ResponseRow>, Error> {
        sqlx::query_as(sql::RESPONSES_OF)
            .bind(message.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("reading responses"))
    }

    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let fail = self.fail("deleting old delivery attempts");
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(&fail)?;
        let done = sqlx::query(sql::PRUNE_ATTEMPTS)
            .bind(At(before))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(done.rows_affected())
    }

    async fn lead_planning(&self) -> Result<Option<super::PlanningLead>, Error> {
        Ok(Some(super::PlanningLead::sole()))
    }

    async fn tidy(&self) -> Result<bool, Error> {
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
        store.migrate().await.unwrap();
        (dir, store)
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
            let mut tx = store.writer.begin_with(BEGIN_WRITE).await.unwrap();
            sqlx::raw_sql("ROLLBACK").execute(&mut *tx).await.unwrap();
        }
        for _ in 0..2 {
            let tx = store
                .writer
                .begin_with(BEGIN_WRITE)
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
        assert!(store.write_failure().is_some());
        // Changed, then rolled back: no proof.
        {
            let mut tx = store.writer.begin_with(BEGIN_WRITE).await.unwrap();
            sqlx::query(sql::UPSERT_PLANNER_STATE)
                .bind("k")
                .bind("v")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        released(&store).await;
        assert!(store.write_failure().is_some());
        store.replan_all("fingerprint").await.unwrap();
        released(&store).await;
        assert_eq!(store.write_failure(), None);
        // The probe is a write like any other.
        store.health.failed(&"the disk is full");
        store.probe_write().await.unwrap();
        released(&store).await;
        assert_eq!(store.write_failure(), None);
    }
}
