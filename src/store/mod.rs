//! The store: the only place with SQL.
//!
//! What tend asks of it is said by role ([`roles`]: `Customers`,
//! `Planning`, `Outbox`, `Responses`, `Incidents`, `Upkeep`). Each role is
//! written once, generic over a [`backend::Backend`], in a file of its own;
//! the backends, SQLite ([`sqlite::SqliteStore`]) and PostgreSQL
//! ([`postgres::PgStore`]), hold only what differs between the two
//! databases. [`Db`] picks one from `database.url`. One contract test suite
//! runs against both, and every named statement is prepared on both.

mod backend;
pub mod column;
mod customers;
mod health;
mod incidents;
mod outbox;
mod planning;
pub mod postgres;
mod responses;
mod roles;
mod rows;
mod shared;
mod sql;
pub mod sqlite;
mod sqlite_watch;
mod upkeep;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::catchup::Supersede;
use crate::domain::customer::{Customer, CustomerId, CustomerRecord};
use crate::domain::event::EventRecord;
use crate::domain::incident::{Incident, IncidentKind, IncidentStatus, Recipient};
use crate::domain::message::{AttemptOutcome, NewMessage, Outgoing, Suppression};
use crate::domain::plan::{EventFact, History, OccurrenceKey, StageEntry};

pub use self::health::{WriteFailure, WriteHealth};
pub use self::roles::{Customers, Incidents, Outbox, Planning, Responses, Store, Upkeep};
pub use self::sql::{Named, Runs, named as named_statements};
pub use crate::config::database_url::DatabaseUrl;
pub use crate::domain::inbound::{Effect, InboundMail, InboundRecorded, InboundResponse};
pub use crate::domain::preference::Preferences;
pub use crate::domain::response::{NewResponse, ResponseKind, Source};

/// The planner's key for its fingerprint in `planner_state`.
pub(crate) const FINGERPRINT: &str = "fingerprint";

/// The key in `planner_state` that `Upkeep::probe_write` rewrites (with the
/// time of the probe, so every probe changes the row).
pub(crate) const WRITE_PROBE: &str = "write_probe";

/// Rows written in one statement: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters at up to 19 columns a row.
pub(crate) const ROWS_PER_STATEMENT: usize = 1000;

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows that were new.
    pub inserted: u64,
    /// Rows that replaced a stored one (customers) or were already stored
    /// under the same idempotency key and left alone (events).
    pub existing: u64,
}

impl std::ops::AddAssign for WriteOutcome {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.existing += other.existing;
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub record: EventRecord,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unreachable(String),
    #[error(
        "the SQLite database {0} is locked by another process (is another tend running on it?); stop that process, or use PostgreSQL to run several instances"
    )]
    Locked(String),
    /// The disk under the store failed a statement: full, or an I/O error.
    /// Nothing of the failed transaction was kept; what was committed
    /// before stands.
    #[error(
        "the SQLite database {path} could not be written while {doing}: {problem}; free space on that disk (or repair it); nothing committed before is lost, and a running tend carries on by itself"
    )]
    Disk {
        path: String,
        doing: &'static str,
        problem: String,
    },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(String),
    #[error(
        "the store holds a value tend cannot read ({0}); was the database written by another program?"
    )]
    Corrupt(String),
    #[error("database error while {doing}: {source}")]
    Query {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// What releasing a dead instance's claims did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Found `sending`: fate unknown (or, with `resend`, going again).
    pub interrupted: u64,
    /// Claimed but never started: waiting again, sent normally.
    pub waiting: u64,
}

/// An instance name held for this process (see [`Outbox::hold_name`]).
/// Dropping it closes its connection, which releases the name.
pub struct NameHold {
    _connection: Option<sqlx::PgConnection>,
}

impl NameHold {
    /// Held by the advisory lock on `connection`.
    pub(crate) fn on(connection: sqlx::PgConnection) -> Self {
        Self {
            _connection: Some(connection),
        }
    }

    /// Held because no other instance can use the store (SQLite).
    pub(crate) fn sole() -> Self {
        Self { _connection: None }
    }
}

/// The first half of the advisory lock key on an instance's name: a class
/// of locks of tend's own (`tend` in ASCII); the name's hash is the second.
pub(crate) const INSTANCE_NAMES: i32 = 0x7465_6e64;

/// The planning lead, held while a pass plans. On PostgreSQL it is an
/// advisory lock on a connection of its own; dropping the lead closes that
/// connection, which releases the lock however the pass ended (even
/// abandoned at shutdown).
pub struct PlanningLead(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Drop for PlanningLead {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Detached, the connection closes instead of going back to the
            // pool with the lock still held.
            drop(conn.detach());
        }
    }
}

impl PlanningLead {
    /// Gives the lead up at the end of a pass; the connection goes back to
    /// the pool. If this fails, the connection is closed instead.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.0.take() {
            let unlocked: Result<bool, _> = sqlx::query_scalar(sql::END_LEAD_PLANNING)
                .bind(PLANNING_LOCK)
                .fetch_one(&mut *conn)
                .await;
            if !matches!(unlocked, Ok(true)) {
                drop(conn.detach());
            }
        }
    }

    pub(crate) fn sole() -> Self {
        Self(None)
    }

    pub(crate) fn on(conn: sqlx::pool::PoolConnection<sqlx::Postgres>) -> Self {
        Self(Some(conn))
    }
}

/// The advisory lock key of the planning lead: "tendplan" in ASCII.
pub(crate) const PLANNING_LOCK: i64 = 0x7465_6e64_706c_616e;

/// A recorded response as `responses_of` reads it: kind, value, comment.
pub type ResponseRow = (String, Option<String>, Option<String>);

/// A suppression as `SUPPRESSIONS_OF` reads it.
pub(crate) fn suppression(
    (customer, category, reason, source): (String, String, String, String),
) -> Result<Suppression, Error> {
    Ok(Suppression {
        customer_id: CustomerId::parse(&customer).map_err(Error::Corrupt)?,
        category,
        reason,
        source,
    })
}

/// The reason a message gets when a crash left its fate unknown.
pub(crate) fn recovered_reason(resend: bool) -> &'static str {
    if resend {
        "interrupted mid-send by a stopped instance; sending again (delivery.resend_unknown)"
    } else {
        "interrupted mid-send by a stopped instance; the server may or may not have accepted it, so it is not sent again"
    }
}

/// What planning one page of customers produced, for the store to write.
#[derive(Debug, Clone, Default)]
pub struct PlanWrite {
    pub changes: Vec<StageChange>,
    pub planned: Vec<NewMessage>,
    pub expired: Vec<NewMessage>,
    /// Messages still waiting that newer occurrences of their step
    /// supersede: recorded as `expired`, their claims dropped.
    pub superseding: Vec<Supersede>,
    /// When the planner must next look at each customer of the page.
    pub next: Vec<NextCheck>,
}

/// When the planner must next look at one customer, and the `plan_at` the
/// page was read with. The new time is written only if `plan_at` is still
/// the one read: an event, an import or a re-plan that marked the customer
/// meanwhile (every mark moves `plan_at` to a new, earlier value) keeps its
/// mark, so the next pass sees what this one could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextCheck {
    pub id: CustomerId,
    pub at: DateTime<Utc>,
    pub seen: DateTime<Utc>,
}

/// One customer's row as a planned page leaves it: when the planner looks
/// next (guarded by the `plan_at` the page was read with), and the stage it
/// moved to, if it moved. One update a customer: the stage and the next
/// check are written together, so a first pass leaves one new row version
/// per customer, not two.
///
/// The row, as both backends bind it: `v(id, at, seen, moved, stage,
/// entered)` of `sql::update_planned_customers!`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomerUpdate<'a> {
    pub id: &'a str,
    /// The next planning time, and the `plan_at` it replaces; none when
    /// only the stage moves.
    pub at: Option<DateTime<Utc>>,
    pub seen: Option<DateTime<Utc>>,
    pub moved: bool,
    pub stage: Option<&'a str>,
    pub entered: Option<DateTime<Utc>>,
}

impl<'a> CustomerUpdate<'a> {
    fn new(id: &'a str, next: Option<&NextCheck>, moved: Option<&'a StageChange>) -> Self {
        Self {
            id,
            at: next.map(|n| n.at),
            seen: next.map(|n| n.seen),
            moved: moved.is_some(),
            stage: moved.and_then(|c| c.to.as_deref()),
            entered: moved.map(|c| c.at),
        }
    }
}

impl PlanWrite {
    /// The page's customer updates: every next check, joined by id with its
    /// stage change (a change without a next check stands alone).
    pub(crate) fn customer_updates(&self) -> Vec<CustomerUpdate<'_>> {
        // Of two changes to one customer, the later holds.
        let last: HashMap<&str, &StageChange> = self
            .changes
            .iter()
            .map(|c| (c.customer_id.as_str(), c))
            .collect();
        let checked: HashSet<&str> = self.next.iter().map(|n| n.id.as_str()).collect();
        let mut updates: Vec<CustomerUpdate<'_>> = self
            .next
            .iter()
            .map(|n| CustomerUpdate::new(n.id.as_str(), Some(n), last.get(n.id.as_str()).copied()))
            .collect();
        // Changes without a next check, in order (`unique_runs` keeps two
        // to one customer in separate statements).
        updates.extend(
            self.changes
                .iter()
                .filter(|c| !checked.contains(c.customer_id.as_str()))
                .map(|c| CustomerUpdate::new(c.customer_id.as_str(), None, Some(c))),
        );
        updates
    }
}

/// Where a planning pass has got to: the last (plan_at, id) it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub plan_at: DateTime<Utc>,
    pub id: String,
}

impl DueCursor {
    /// Before every customer. Marks move `plan_at` a millisecond below
    /// the epoch each time, so it may be earlier than 1970, never than year 1.
    pub fn start() -> Self {
        Self {
            plan_at: chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc()),
            id: String::new(),
        }
    }
}

/// A customer's move from one lifecycle stage to another.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub customer_id: CustomerId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub at: DateTime<Utc>,
}

/// The store named by `database.url`.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Rows a pass must have rewritten before tend tidies the store after it: a
/// first pass over an import, a backlog delivered. A vacuum reads every page
/// of the tables, so smaller passes are left to autovacuum.
pub const BULK_ROWS: u64 = 10_000;

/// Tidies the store ([`Upkeep::tidy`]) when a pass rewrote at least
/// [`BULK_ROWS`] rows. A failure (a role that does not own the tables, say)
/// is logged and does not fail the pass: what was planned or sent stands.
pub async fn tidy_after(store: &impl Upkeep, rewritten: u64) {
    if rewritten < BULK_ROWS {
        return;
    }
    let started = std::time::Instant::now();
    match store.tidy().await {
        Ok(false) => {}
        Ok(true) => tracing::info!(
            rows = rewritten,
            seconds = started.elapsed().as_secs_f64(),
            "tidied the store after a large pass"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "could not vacuum after a large pass; until autovacuum does, the next passes read past what it left"
        ),
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub connect_timeout: std::time::Duration,
    pub busy_timeout: std::time::Duration,
}

impl Db {
    /// Connects (creating a SQLite file and its folder when missing). Does not
    /// migrate: callers decide when.
    pub async fn connect(url: &DatabaseUrl, options: &ConnectOptions) -> Result<Self, Error> {
        match url {
            DatabaseUrl::Sqlite { path, .. } => Ok(Self::Sqlite(
                sqlite::SqliteStore::connect(path, options).await?,
            )),
            DatabaseUrl::Postgres { url, shown } => Ok(Self::Postgres(
                postgres::PgStore::connect(url, shown, options).await?,
            )),
        }
    }

    /// Has the database check `statement` (its tables, columns and types)
    /// without running it.
    pub async fn prepare(&self, statement: &str) -> Result<(), Error> {
        use self::backend::Backend as _;
        use sqlx::{AssertSqlSafe, Executor as _, SqlSafeStr as _};
        let statement = AssertSqlSafe(statement.to_owned()).into_sql_str();
        match self {
            Self::Sqlite(s) => s.reads().prepare(statement).await.map(drop),
            Self::Postgres(s) => s.reads().prepare(statement).await.map(drop),
        }
        .map_err(|source| Error::Query {
            doing: "preparing a statement",
            source,
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Whether the store's migrations table (version, checksum, success) holds
/// exactly what `migrator` would leave: every embedded migration applied,
/// unchanged, and nothing else. Then a start needs that one read instead of
/// the migrator's seven statements (lock, table check, dirty check, list,
/// unlock…); anything else (a new store, a pending, failed, changed or
/// unknown migration) goes to the migrator, which applies or reports it.
pub(crate) async fn migrations_in_place<'c, E, DB>(
    executor: E,
    migrator: &sqlx::migrate::Migrator,
) -> bool
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    (i64, Vec<u8>, bool): for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    // A table that is not there yet is a new store: the migrator's.
    let applied: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(sql::APPLIED_MIGRATIONS)
        .fetch_all(executor)
        .await
        .unwrap_or_default();
    migrations_current(migrator, &applied)
}

/// The decision of [`migrations_in_place`] on the rows it read.
fn migrations_current(
    migrator: &sqlx::migrate::Migrator,
    applied: &[(i64, Vec<u8>, bool)],
) -> bool {
    let embedded: Vec<(i64, &[u8])> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    embedded.len() == applied.len()
        && embedded
            .iter()
            .zip(applied)
            .all(|((version, checksum), (v, c, success))| {
                *success && version == v && *checksum == c.as_slice()
            })
}

/// A migration failure, with a statement's driver error classified by the
/// backend (a locked file or a lost connection says so).
pub(crate) fn migrate_error(
    e: sqlx::migrate::MigrateError,
    classify: impl FnOnce(sqlx::Error) -> Error,
) -> Error {
    match e {
        sqlx::migrate::MigrateError::Execute(inner) => match classify(inner) {
            Error::Query { source, .. } => Error::Migrate(source.to_string()),
            other => other,
        },
        other => Error::Migrate(other.to_string()),
    }
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
pub(crate) struct PriorityWalk {
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

    /// The lowest priority the next look may return (`sql::NEXT_PRIORITY`'s
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

/// Each id once, in order: a customer named twice (one per waiting
/// message, say) must not have their rows read, and counted, twice.
pub(crate) fn distinct(ids: &[CustomerId]) -> Vec<CustomerId> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Splits a batch into runs without a repeated id, in order, each at most
/// [`ROWS_PER_STATEMENT`] long. An upsert statement may touch a row only
/// once, and a later record of the same id must win.
pub(crate) fn unique_runs<T>(batch: &[T], id: impl Fn(&T) -> &str) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = HashSet::new();
    for (i, item) in batch.iter().enumerate() {
        if i - start == ROWS_PER_STATEMENT || !seen.insert(id(item)) {
            runs.push(&batch[start..i]);
            start = i;
            seen.clear();
            seen.insert(id(item));
        }
    }
    if start < batch.len() {
        runs.push(&batch[start..]);
    }
    runs
}

/// Folds the rows of a history query into per-customer histories.
pub(crate) enum HistoryRow {
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

pub(crate) fn fold_history(
    ids: &[CustomerId],
    rows: Vec<HistoryRow>,
) -> Result<HashMap<CustomerId, History>, Error> {
    let mut all: HashMap<CustomerId, History> = ids
        .iter()
        .map(|id| (id.clone(), History::default()))
        .collect();
    for row in rows {
        let customer = match &row {
            HistoryRow::Event { customer, .. }
            | HistoryRow::Stage { customer, .. }
            | HistoryRow::Message { customer, .. } => {
                CustomerId::parse(customer).map_err(Error::Corrupt)?
            }
        };
        let Some(history) = all.get_mut(&customer) else {
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

/// An attempt's stored outcome.
pub(crate) fn attempt_outcome(raw: &str) -> Result<AttemptOutcome, Error> {
    match raw {
        "sent" => Ok(AttemptOutcome::Sent),
        "transient" => Ok(AttemptOutcome::Transient),
        "permanent" => Ok(AttemptOutcome::Permanent),
        "unknown" => Ok(AttemptOutcome::Unknown),
        other => Err(Error::Corrupt(format!("attempt outcome {other:?}"))),
    }
}

/// Rebuilds a claimed message from stored columns (shared by both backends).
/// A notice as stored beside its message.
pub(crate) fn notice_json(message: &NewMessage) -> Option<String> {
    message
        .notice
        .as_ref()
        .map(|n| serde_json::to_string(n).unwrap_or_default())
}

pub(crate) struct OutgoingColumns {
    pub id: String,
    pub playbook: String,
    pub step: String,
    pub occurrence: String,
    pub kind: String,
    pub category: String,
    pub template: String,
    pub survey: Option<String>,
    /// The notice as JSON (`domain::message::Notice`).
    pub notice: Option<String>,
    pub urgent: bool,
    pub status: String,
    pub to: Option<String>,
    pub message_id: Option<String>,
    pub due_at: DateTime<Utc>,
    pub not_before: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub suppressed: Option<String>,
}

impl OutgoingColumns {
    pub fn into_outgoing(self, customer: Customer) -> Result<Outgoing, Error> {
        use crate::domain::message::Status;
        use crate::domain::playbook::{Kind, Survey};
        let corrupt = |what: String| Error::Corrupt(format!("message {:?}: {what}", self.id));
        let kind =
            Kind::parse(&self.kind).ok_or_else(|| corrupt(format!("kind {:?}", self.kind)))?;
        Ok(Outgoing {
            id: uuid::Uuid::try_parse(&self.id).map_err(|e| corrupt(e.to_string()))?,
            to: self.to.unwrap_or_else(|| customer.record.email.to_string()),
            customer,
            key: OccurrenceKey {
                playbook: self.playbook,
                step: self.step,
                occurrence: self.occurrence,
            },
            urgent: self.urgent || kind == Kind::Incident,
            kind,
            category: self.category,
            template: self.template,
            survey: match self.survey.as_deref() {
                Some(s) => Some(Survey::parse(s).ok_or_else(|| corrupt(format!("survey {s:?}")))?),
                None => None,
            },
            notice: match self.notice.as_deref() {
                Some(json) => {
                    Some(serde_json::from_str(json).map_err(|e| corrupt(format!("notice: {e}")))?)
                }
                None => None,
            },
            status: Status::parse(&self.status).map_err(corrupt)?,
            message_id: self
                .message_id
                .unwrap_or_else(|| format!("{}@tend.invalid", self.id)),
            due_at: self.due_at,
            not_before: self.not_before,
            expires_at: self.expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            first_attempt_at: self.first_attempt_at,
            suppressed: self.suppressed,
        })
    }
}

/// Folds the claimed rows (one per matching suppression) into messages.
/// Every query feeding it orders by a key that ends in the message id, so
/// the rows of one message are adjacent.
pub(crate) fn fold_claimed(rows: Vec<Outgoing>) -> Vec<Outgoing> {
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

/// Rebuilds a customer from stored columns (shared by both backends).
pub(crate) struct CustomerColumns {
    pub id: String,
    pub email: String,
    pub name: String,
    pub timezone: String,
    pub locale: String,
    pub plan: String,
    pub signup_at: Option<DateTime<Utc>>,
    pub renewal_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub health: Option<i64>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub stage: Option<String>,
    pub stage_entered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CustomerColumns {
    pub fn into_customer(self) -> Result<Customer, Error> {
        use crate::domain::customer::{Email, parse_timezone};
        let id = self.id;
        let corrupt = |what: String| Error::Corrupt(format!("customer {id:?}: {what}"));
        Ok(Customer {
            record: CustomerRecord {
                id: CustomerId::parse(&id).map_err(corrupt)?,
                // Checked when it was written; reading a page of customers
                // must not pay for parsing every address again.
                email: Email::stored(self.email),
                name: self.name,
                timezone: parse_timezone(&self.timezone).map_err(corrupt)?,
                locale: self.locale,
                plan: self.plan,
                signup_at: self.signup_at,
                renewal_at: self.renewal_at,
                last_seen_at: self.last_seen_at,
                health: self
                    .health
                    .map(|h| u8::try_from(h).map_err(|_| corrupt(format!("health {h}"))))
                    .transpose()?,
                attributes: self.attributes,
            },
            stage: self.stage,
            stage_entered_at: self.stage_entered_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The first notice per customer, from `RECIPIENTS` rows (oldest first).
pub(crate) fn first_per_customer(
    rows: Vec<(String, Option<String>, Option<String>)>,
) -> Result<Vec<Recipient>, Error> {
    let mut out: Vec<Recipient> = Vec::new();
    for (customer, to, message_id) in rows {
        if out
            .last()
            .is_some_and(|r| r.customer_id.as_str() == customer)
        {
            continue;
        }
        out.push(Recipient {
            customer_id: CustomerId::parse(&customer).map_err(Error::Corrupt)?,
            to: to.unwrap_or_default(),
            first_message_id: message_id.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// An incident row's text columns into the domain type.
pub(crate) struct IncidentColumns {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub affects: String,
    pub template: Option<String>,
    pub message: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl IncidentColumns {
    pub fn into_incident(self) -> Result<Incident, Error> {
        let corrupt = |what: String| Error::Corrupt(format!("incident {:?}: {what}", self.id));
        Ok(Incident {
            kind: IncidentKind::parse(&self.kind)
                .ok_or_else(|| corrupt(format!("kind {:?}", self.kind)))?,
            status: IncidentStatus::parse(&self.status).map_err(corrupt)?,
            template: self.template.unwrap_or_default(),
            id: self.id,
            title: self.title,
            affects: self.affects,
            message: self.message,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exactly_the_embedded_migrations_skip_the_migrator() {
        let migrator = sqlx::migrate!("migrations/sqlite");
        let all: Vec<(i64, Vec<u8>, bool)> = migrator
            .iter()
            .map(|m| (m.version, m.checksum.to_vec(), true))
            .collect();
        assert!(migrations_current(&migrator, &all));
        assert!(!migrations_current(&migrator, &[]), "a new store");
        assert!(
            !migrations_current(&migrator, &all[..all.len() - 1]),
            "one to apply"
        );
        let mut failed = all.clone();
        failed[0].2 = false;
        assert!(!migrations_current(&migrator, &failed), "a failed one");
        let mut changed = all.clone();
        changed[1].1[0] ^= 1;
        assert!(!migrations_current(&migrator, &changed), "a changed one");
        let mut unknown = all.clone();
        unknown.push((99_999_999, vec![0], true));
        assert!(
            !migrations_current(&migrator, &unknown),
            "one from a newer build"
        );
    }

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

    #[test]
    fn runs_split_at_repeats_and_size() {
        let ids = ["a", "b", "a", "c", "b"];
        let runs = unique_runs(&ids, |s| s);
        assert_eq!(runs, vec![&["a", "b"][..], &["a", "c", "b"][..]]);
        let many: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = unique_runs(&many, |s| s).iter().map(|r| r.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }
}
