//! The store: the only place with SQL.
//!
//! What tend asks of it is said by role (`roles.rs`: `Customers`,
//! `Planning`, `Outbox`, `Responses`, `Incidents`, `Upkeep`). Each role is
//! written once, generic over a `backend::Backend`, in a file of its own;
//! the backends, SQLite ([`sqlite::SqliteStore`]) and PostgreSQL
//! ([`postgres::PgStore`]), hold only what differs between the two
//! databases. [`Db`] picks one from `database.url`. One contract test suite
//! runs against both, and prepares every statement of [`sql`] on both.

mod accounts;
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
mod signals;
// Public so that the contract test can prepare every statement.
#[doc(hidden)]
pub mod sql;
pub mod sqlite;
mod sqlite_watch;
mod team;
mod upkeep;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::domain::customer::CustomerId;
use crate::domain::event::EventRecord;
use crate::domain::message::{NewMessage, Suppression};

pub use self::health::{WriteFailure, WriteHealth};
pub use self::roles::{
    Accounts, Customers, Incidents, Outbox, Planning, Responses, Signals, Store, Team, Upkeep,
};
pub use crate::config::database_url::DatabaseUrl;
pub use crate::domain::inbound::{Effect, InboundMail, InboundRecorded, InboundResponse};
pub use crate::domain::planned::{
    AccountNextCheck, AccountPlanWrite, AccountStageChange, DueCursor, NextCheck, PlanWrite,
    Recorded, StageChange,
};
pub use crate::domain::preference::Preferences;
pub use crate::domain::response::{NewResponse, ResponseKind, Source};

/// The planner's key for its fingerprint in `planner_state`.
pub(crate) const FINGERPRINT: &str = "fingerprint";

/// The key in `planner_state` that `Upkeep::probe_write` rewrites (with the
/// time of the probe, so every probe changes the row).
pub(crate) const WRITE_PROBE: &str = "write_probe";

/// Rows written in one statement: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters at up to 22 columns a row.
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

/// What an erasure did (`Customers::erase_customer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    Done,
    /// No such person.
    Unknown,
    /// A message to them is being sent: nothing was changed; once it has
    /// settled (seconds), the erasure can go.
    Sending,
}

/// Inbound mail as it was kept (`Customers::inbound_of`).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundKept {
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub classification: String,
    pub raw: Vec<u8>,
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

/// Whether the server undid a transaction to break a deadlock with another
/// (PostgreSQL's 40P01): nothing of it was kept, and the same transaction
/// again goes through once the other has ended.
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01"))
}

/// `write`, one transaction, run again (up to twice) when the server undid
/// it to break a deadlock. Two writers that lock the same customers in
/// different orders (a planned page, a batch of events, an erasure, a
/// settle: each in the order its statements' plans visit the rows)
/// deadlock now and then on PostgreSQL; the one undone would otherwise
/// fail a planning pass, an import or an erasure for nothing, or leave
/// what was sent `sending`.
async fn again_after_deadlock<T, F>(mut write: impl FnMut() -> F) -> Result<T, Error>
where
    F: std::future::Future<Output = Result<T, Error>>,
{
    let mut again = 2;
    loop {
        match write().await {
            Err(Error::Query { source, .. }) if again > 0 && is_deadlock(&source) => again -= 1,
            done => return done,
        }
    }
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

/// What a large write left for the store to tidy ([`Upkeep::tidy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tidy {
    /// Rows rewritten or deleted: dead versions to clear, and statistics.
    Rewritten,
    /// Rows only added (a first import): statistics alone; clearing finds
    /// nothing, and reads every page.
    Added,
}

/// Tidies the store ([`Upkeep::tidy`]) when a pass rewrote at least
/// [`BULK_ROWS`] rows. A failure (a role that does not own the tables, say)
/// is logged and does not fail the pass: what was planned or sent stands.
pub async fn tidy_after(store: &impl Upkeep, rewritten: u64) {
    if rewritten >= BULK_ROWS {
        tidy(store, Tidy::Rewritten, rewritten).await;
    }
}

/// Tidies the store after an import that wrote at least [`BULK_ROWS`]
/// rows: statistics for the rows it added, and clearing as well when it
/// replaced many.
pub async fn tidy_after_import(store: &impl Upkeep, added: u64, replaced: u64) {
    if replaced >= BULK_ROWS {
        tidy(store, Tidy::Rewritten, added + replaced).await;
    } else if added + replaced >= BULK_ROWS {
        tidy(store, Tidy::Added, added + replaced).await;
    }
}

async fn tidy(store: &impl Upkeep, what: Tidy, rows: u64) {
    let started = std::time::Instant::now();
    match store.tidy(what).await {
        Ok(false) => {}
        Ok(true) => tracing::info!(
            rows,
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

/// A notice as stored beside its message.
pub(crate) fn notice_json(message: &NewMessage) -> Option<String> {
    message
        .notice
        .as_ref()
        .map(|n| serde_json::to_string(n).unwrap_or_default())
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
    fn runs_split_at_repeats_and_size() {
        let ids = ["a", "b", "a", "c", "b"];
        let runs = unique_runs(&ids, |s| s);
        assert_eq!(runs, vec![&["a", "b"][..], &["a", "c", "b"][..]]);
        let many: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
        let sizes: Vec<usize> = unique_runs(&many, |s| s).iter().map(|r| r.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }
}
