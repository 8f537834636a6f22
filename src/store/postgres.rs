//! The PostgreSQL store: the same behaviour as SQLite, for larger data and
//! for several `tend run` instances sharing one database.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{ConnectOptions as _, Connection, PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::{
    ConnectOptions, CustomerColumns, Error, HistoryRow, StageChange, Store, StoredEvent,
    WriteOutcome, fold_history, sql, unique_runs,
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    shown: String,
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
        })
    }

    fn fail(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> Error + '_ {
        move |e| classify(e, &self.shown, doing)
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

/// A customer from a row of `sql::SELECT_CUSTOMER` or `sql::customers_page`.
fn customer_from(row: &PgRow, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Customer, Error> {
    let health: Option<i16> = row.try_get("health").map_err(fail)?;
    let columns = CustomerColumns {
        id: row.try_get("id").map_err(fail)?,
        email: row.try_get("email").map_err(fail)?,
        name: row.try_get("name").map_err(fail)?,
        timezone: row.try_get("timezone").map_err(fail)?,
        locale: row.try_get("locale").map_err(fail)?,
        plan: row.try_get("plan").map_err(fail)?,
        signup_at: row.try_get("signup_at").map_err(fail)?,
        renewal_at: row.try_get("renewal_at").map_err(fail)?,
        last_seen_at: row.try_get("last_seen_at").map_err(fail)?,
        health: health.map(i64::from),
        attributes: row.try_get("attributes").map_err(fail)?,
        stage: row.try_get("stage").map_err(fail)?,
        stage_entered_at: row.try_get("stage_entered_at").map_err(fail)?,
        created_at: row.try_get("created_at").map_err(fail)?,
        updated_at: row.try_get("updated_at").map_err(fail)?,
    };
    columns.into_customer()
}

/// A claimed message from a row of `sql::CLAIMED_DETAILS`.
fn outgoing_from(row: &PgRow, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Outgoing, Error> {
    let customer = customer_from(row, fail)?;
    let attempts: i32 = row.try_get("attempts").map_err(fail)?;
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
        urgent: row.try_get("urgent").map_err(fail)?,
        status: row.try_get("status").map_err(fail)?,
        to: row.try_get("to_address").map_err(fail)?,
        message_id: row.try_get("message_id").map_err(fail)?,
        due_at: row.try_get("due_at").map_err(fail)?,
        not_before: row.try_get("not_before").map_err(fail)?,
        expires_at: row.try_get("expires_at").map_err(fail)?,
        attempts: i64::from(attempts),
        first_attempt_at: row.try_get("first_attempt_at").map_err(fail)?,
        suppressed: row.try_get("suppressed").map_err(fail)?,
    }
    .into_outgoing(customer)
}

/// Records lifecycle stage changes (kept so `stage:NAME` anchors fire once
/// per entry); the customers' own rows move in `update_planned_customers_in`.
async fn insert_stage_changes_in(
    conn: &mut sqlx::PgConnection,
    changes: &[StageChange],
    fail: &impl Fn(sqlx::Error) -> Error,
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

/// Writes a planned page's customers: next planning time and new stage,
/// one update each (`sql::UPDATE_PLANNED_CUSTOMERS_POSTGRES`).
async fn update_planned_customers_in(
    conn: &mut sqlx::PgConnection,
    plan: &PlanWrite,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    let updates = plan.customer_updates();
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

/// Expires the waiting messages newer occurrences supersede and drops
/// their claims (`sql::SUPERSEDE_WAITING_POSTGRES`). Returns how many.
async fn supersede_waiting_in(
    conn: &mut sqlx::PgConnection,
    superseding: &[Supersede],
    now: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
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
async fn insert_messages_in(
    conn: &mut sqlx::PgConnection,
    messages: &[NewMessage],
    now: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
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
        .execute(&mut *conn)
        .await
        .map_err(fail)?
        .rows_affected();
    Ok(inserted)
}

/// One response to `message`, from `customer`.
async fn insert_response<'e>(
    conn: impl sqlx::PgExecutor<'e>,
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
        .bind(now)
        .bind(response.source)
        .execute(conn)
        .await
        .map_err(fail)?;
    Ok(())
}

/// The customer a message went to, if the message exists.
async fn customer_of<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    message: uuid::Uuid,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar(sql::CUSTOMER_OF_MESSAGE)
        .bind(message.to_string())
        .fetch_optional(conn)
        .await
        .map_err(fail)
}

impl Store for PgStore {
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
        let fail = self.fail("writing customers");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        for run in unique_runs(batch, |c| c.id.as_str()) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_CUSTOMERS);
            insert.push_values(run, |mut row, c| {
                row.push_bind(c.id.as_str())
                    .push_bind(c.email.as_str())
                    .push_bind(c.name.as_str())
                    .push_bind(c.timezone.name())
                    .push_bind(c.locale.as_str())
                    .push_bind(c.plan.as_str())
                    .push_bind(c.signup_at)
                    .push_bind(c.renewal_at)
                    .push_bind(c.last_seen_at)
                    .push_bind(c.health.map(i16::from))
                    .push_bind(Json(&c.attributes))
                    .push_bind(now)
                    .push_bind(now)
                    // Planned again at the next tick.
                    .push_bind(DateTime::<Utc>::UNIX_EPOCH);
            });
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

    async fn insert_events(
        &self,
        batch: &[EventRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        let fail = self.fail("writing events");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        for run in batch.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_EVENTS);
            insert.push_values(run, |mut row, e| {
                row.push_bind(e.id.as_deref())
                    .push_bind(e.customer_id.as_str())
                    .push_bind(e.name.as_str())
                    .push_bind(e.occurred_at)
                    .push_bind(Json(&e.properties))
                    .push_bind(now);
            });
            insert.push(sql::SKIP_KNOWN_EVENT);
            let inserted = insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(&fail)?
                .rows_affected();
            // A new event may make a step due: plan its customer at the next tick.
            let ids: Vec<&str> = run.iter().map(|e| e.customer_id.as_str()).collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE customers SET plan_at = {} WHERE id = ANY($1)",
                sql::MARK_POSTGRES
            )))
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
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
        let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
        let rows = sqlx::query("SELECT id, timezone FROM customers WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        let mut zones = HashMap::with_capacity(rows.len());
        for row in rows {
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

    async fn count_due(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql::COUNT_DUE)
            .bind(now)
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
                let properties: serde_json::Value = row.try_get("properties").map_err(&fail)?;
                let serde_json::Value::Object(properties) = properties else {
                    return Err(Error::Corrupt(format!("event properties {properties}")));
                };
                Ok(StoredEvent {
                    record: EventRecord {
                        id: row.try_get("id").map_err(&fail)?,
                        customer_id: id.clone(),
                        name: row.try_get("name").map_err(&fail)?,
                        occurred_at: row.try_get("occurred_at").map_err(&fail)?,
                        properties,
                    },
                    received_at: row.try_get("received_at").map_err(&fail)?,
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
            .bind(now)
            .bind(after.plan_at)
            .bind(after.id.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        let cursor = match rows.last() {
            Some(row) => DueCursor {
                plan_at: row.try_get("plan_at").map_err(&fail)?,
                id: row.try_get("id").map_err(&fail)?,
            },
            None => after.clone(),
        };
        let customers = rows
            .iter()
            .map(|row| {
                let seen: DateTime<Utc> = row.try_get("plan_at").map_err(&fail)?;
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        sqlx::query(sql::REPLAN_ALL_POSTGRES)
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
        let (statement, values) = sql::customers_page(filter, sql::Dialect::Postgres);
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
        let mut rows = Vec::with_capacity(events.len() + stages.len() + messages.len());
        for row in events {
            rows.push(HistoryRow::Event {
                customer: row.try_get(0).map_err(&fail)?,
                fact: EventFact {
                    key: row.try_get(1).map_err(&fail)?,
                    name: row.try_get(2).map_err(&fail)?,
                    occurred_at: row.try_get(3).map_err(&fail)?,
                },
            });
        }
        for row in stages {
            rows.push(HistoryRow::Stage {
                customer: row.try_get(0).map_err(&fail)?,
                entry: StageEntry {
                    stage: row.try_get(1).map_err(&fail)?,
                    entered_at: row.try_get(2).map_err(&fail)?,
                },
            });
        }
        for row in messages {
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
                let attempts: i32 = row.try_get("attempts").map_err(&fail)?;
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
                    due_at: row.try_get("due_at").map_err(&fail)?,
                    sent_at: row.try_get("sent_at").map_err(&fail)?,
                    attempts: i64::from(attempts),
                    message_id: row.try_get("message_id").map_err(&fail)?,
                })
            })
            .collect()
    }

    fn concurrent_writes(&self) -> usize {
        // Two: pages of different customers take no locks on each other, and
        // two let the server use both cores of a small machine.
        2
    }

    fn planning_page(&self) -> u32 {
        // Each statement of a page (the due customers, three history reads,
        // the customers' update, the stage changes, the messages) and its
        // commit cost the server a fixed part on top of its rows: a full
        // pass at 1,000,000 customers took about 12% less time with 2,000 a
        // page than with 500, and no less with 5,000, which only holds the
        // page's row locks longer.
        2000
    }

    async fn record_plan(&self, plan: &PlanWrite, now: DateTime<Utc>) -> Result<(u64, u64), Error> {
        let fail = self.fail("recording a planning page");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        // A plan need not wait for the disk: should the server stop before
        // this commit reaches it, the page's customers keep their old
        // `plan_at` and are planned again, and no message of it can have
        // gone, since a claim commits durably, after it in the log.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
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
        let mut ids: Vec<String> = Vec::new();
        let mut walk = super::PriorityWalk::start();
        while ids.len() < limit as usize {
            let priority: Option<i32> = sqlx::query_scalar(sql::NEXT_PRIORITY)
                .bind(walk.from())
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(&fail)?;
            let Some(priority) = priority else { break };
            let taken: Vec<String> = sqlx::query_scalar(sql::CLAIM_POSTGRES)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .bind((limit as usize - ids.len()) as i64)
                .bind(priority)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?;
            let more = walk.claimed(priority.into(), taken.len());
            ids.extend(taken);
            if !more {
                break;
            }
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Postgres>::new(sql::CLAIMED_DETAILS);
        query.push("m.id = ANY(");
        query.push_bind(ids);
        query.push("::text[]) ORDER BY m.priority, m.not_before, m.id");
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
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let marked: Vec<String> = sqlx::query_scalar(sql::BEGIN_SENDING_POSTGRES)
            .bind(owner)
            .bind(now)
            .bind(&ids)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await
            .map_err(&fail)?;
        Ok(marked
            .iter()
            .filter_map(|id| uuid::Uuid::try_parse(id).ok())
            .collect())
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
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
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
            let attempts: Vec<_> = run
                .iter()
                .filter_map(|o| o.attempt.as_ref().map(|a| (o.id, a)))
                .collect();
            if !attempts.is_empty() {
                let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_ATTEMPTS);
                insert.push_values(&attempts, |mut row, (id, a)| {
                    row.push_bind(id.to_string())
                        .push_bind(a.started_at)
                        .push_bind(a.finished_at)
                        .push_bind(a.outcome.as_str())
                        .push_bind(a.smtp_code.map(i32::from))
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
                .bind(now)
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
            let mut query = QueryBuilder::<Postgres>::new(sql::CLAIMED_DETAILS);
            query.push("m.id = ");
            query.push_bind(id.to_string());
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
            let list: Vec<&str> = chunk.iter().map(CustomerId::as_str).collect();
            let mut query = QueryBuilder::<Postgres>::new(sql::CLAIMED_DETAILS);
            query.push(sql::QUEUED);
            query.push("m.customer_id = ANY(");
            query.push_bind(list);
            query.push("::text[])");
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

    async fn recover_sending(&self, now: DateTime<Utc>, resend: bool) -> Result<u64, Error> {
        let fail = self.fail("recovering interrupted sends");
        // Look first, in expiry order: a plain index scan, which marks the
        // dead entries it passes (every message sent leaves one, until a
        // vacuum) so that later looks skip them. A bitmap scan, which the
        // planner may choose for the statements below, marks nothing and so
        // would read every entry left since the last vacuum, on every pass.
        let any: Option<i32> = sqlx::query_scalar(sql::ANY_CLAIM_EXPIRED_POSTGRES)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(&fail)?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let done = sqlx::query(sql::RECOVER_SENDING)
            .bind(now)
            .bind(if resend { "deferred" } else { "unknown" })
            .bind(super::recovered_reason(resend))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        sqlx::query(sql::DROP_EXPIRED_CLAIMS)
            .bind(now)
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let interrupted = sqlx::query(sql::RELEASE_SENDING)
            .bind(now)
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
        let done = sqlx::query(sql::RENEW_CLAIMS)
            .bind(owner)
            .bind(lease_until)
            .execute(&self.pool)
            .await
            .map_err(self.fail("renewing this instance's claims"))?;
        Ok(done.rows_affected())
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let customer = customer_of(&mut *tx, message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        super::shared::apply_preferences::<Postgres>(
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
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
            .bind(mail.received_at)
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
                .bind(mail.received_at)
                .bind(mail.source)
                .bind(mail.id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        if let (Some((id, c)), super::Effect::Unsubscribe(choice)) = (&matched, &mail.effect) {
            super::shared::apply_preferences::<Postgres>(
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
                    .bind(*since)
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
                .bind(mail.received_at)
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
            .bind(since)
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
                    received_at: row.try_get("received_at").map_err(&fail)?,
                    source: row.try_get("source").map_err(&fail)?,
                })
            })
            .collect()
    }

    async fn report_counts(&self, since: DateTime<Utc>) -> Result<Counts, Error> {
        let fail = self.fail("counting for the report");
        Ok(Counts {
            statuses: sqlx::query_as(sql::REPORT_STATUSES)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            steps: sqlx::query_as(sql::REPORT_STEPS)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            answers: sqlx::query_as(sql::REPORT_ANSWERS)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
            kinds: sqlx::query_as(sql::REPORT_KINDS)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(&fail)?,
        })
    }

    async fn create_incident(&self, incident: &Incident) -> Result<bool, Error> {
        let fail = self.fail("recording an incident");
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let done = sqlx::query(sql::INSERT_INCIDENT)
            .bind(&incident.id)
            .bind(incident.kind.as_str())
            .bind(&incident.title)
            .bind(incident.status.as_str())
            .bind(&incident.affects)
            .bind(&incident.template)
            .bind(&incident.message)
            .bind(incident.starts_at)
            .bind(incident.ends_at)
            .bind(incident.opened_at)
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
                    opened_at: row.try_get("opened_at").map_err(&fail)?,
                    resolved_at: row.try_get("resolved_at").map_err(&fail)?,
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        for run in affected.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::INSERT_AFFECTED);
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let changed = sqlx::query(sql::UPDATE_INCIDENT)
            .bind(id)
            .bind(status.map(IncidentStatus::as_str))
            .bind(message)
            .bind(now)
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
            .bind(now)
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let closed = sqlx::query(sql::CLOSE_INCIDENT)
            .bind(id)
            .bind(status.as_str())
            .bind(message)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if closed.rows_affected() == 0 {
            return Ok(None);
        }
        super::shared::record_update::<Postgres>(&mut *tx, id, status, message, true, now, &fail)
            .await?;
        let withdrawn =
            super::shared::withdraw_announcements::<Postgres>(&mut *tx, id, withdrawn, now, &fail)
                .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(withdrawn))
    }

    async fn maintenances_due(&self, now: DateTime<Utc>) -> Result<Vec<Incident>, Error> {
        let fail = self.fail("reading the maintenances whose start or end has come");
        let rows = sqlx::query(sql::MAINTENANCES_DUE)
            .bind(now)
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
        let mut tx = self.pool.begin().await.map_err(&fail)?;
        let started = sqlx::query(sql::START_MAINTENANCE)
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if started.rows_affected() == 0 {
            return Ok(None);
        }
        let status = IncidentStatus::InProgress;
        super::shared::record_update::<Postgres>(&mut *tx, id, status, message, false, at, &fail)
            .await?;
        let expired =
            super::shared::withdraw_announcements::<Postgres>(&mut *tx, id, expired, at, &fail)
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
            let mut query = QueryBuilder::<Postgres>::new(sql::QUIET);
            let list: Vec<&str> = chunk.iter().map(CustomerId::as_str).collect();
            query.push("ic.customer_id = ANY(");
            query.push_bind(list);
            query.push("::text[])");
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

    async fn tidy(&self) -> Result<bool, Error> {
        let fail = self.fail("vacuuming after a large pass");
        // A connection of its own: no pooled connection waits the seconds a
        // vacuum takes, and that expected length is not logged as a slow
        // statement. VACUUM runs outside any transaction: the simple
        // protocol, as is.
        let options = (*self.pool.connect_options())
            .clone()
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&options).await.map_err(&fail)?;
        sqlx::raw_sql(sql::TIDY_POSTGRES)
            .execute(&mut conn)
            .await
            .map_err(&fail)?;
        conn.close().await.map_err(&fail)?;
        Ok(true)
    }

    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let done = sqlx::query(sql::PRUNE_ATTEMPTS)
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(self.fail("deleting old delivery attempts"))?;
        Ok(done.rows_affected())
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

    async fn close(&self) {
        self.pool.close().await;
    }
}
