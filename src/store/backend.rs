//! The seam between what the store decides and how each database is told.
//!
//! What the store does with its data (which message a reply answers, when
//! soft bounces suppress, how an incident's history reads) is written once,
//! in the role files beside this one, generic over a [`Backend`]. A backend
//! (`sqlite.rs`, `postgres.rs`) says only what truly differs: how to connect
//! and begin a write, how its errors read, how a list of ids is bound, and
//! the few operations whose SQL is its own (claims, upserts, bulk writes of
//! a planning page, tidying).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Database, Pool, QueryBuilder, Transaction};

use super::signals::Listening;
use super::sql;
use super::{Error, NameHold, PlanWrite, PlanningLead, StageChange, WriteFailure, WriteOutcome};
use crate::domain::catchup::Supersede;
use crate::domain::customer::{CustomerId, CustomerRecord};
use crate::domain::message::{MessageId, NewMessage, Settle};

/// What the shared store code needs of a database's driver beyond sqlx's
/// `Database`.
#[allow(async_fn_in_trait)] // Used through `Db`, whose futures are `Send`.
pub trait Dialect: Database {
    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Appends the condition that `column` is one of `ids`: an `IN` list on
    /// SQLite, `= ANY($n)` over one array on PostgreSQL (one statement text
    /// whatever the number of ids, so it is prepared once).
    fn push_in(query: &mut QueryBuilder<Self>, column: &str, ids: Vec<String>);

    /// Writes what became of leased messages `owner` still holds (status,
    /// reason, attempt count, …) and drops their claims, inside `conn`'s
    /// transaction ([`super::Outbox::settle`] adds attempts and
    /// suppressions).
    async fn settle_statuses(
        conn: &mut Self::Connection,
        owner: &str,
        outcomes: &[Settle],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error>;

    /// A lease's statements: its first try, the look for the next priority
    /// with a free row, and a claim at that priority (`sql::CLAIM_FIRST_*`,
    /// `sql::NEXT_PRIORITY_*`, `sql::CLAIM_*`; [`super::outbox::lease_on`]).
    const CLAIM_FIRST: &'static str;
    /// See [`Self::CLAIM_FIRST`].
    const NEXT_PRIORITY: &'static str;
    /// See [`Self::CLAIM_FIRST`].
    const CLAIM: &'static str;

    /// Run before a feed page, in a statement of its own; its answer is
    /// the page's last parameter: on PostgreSQL, the transactions writing
    /// where no feed row can be (`sql::WRITING_ELSEWHERE_POSTGRES`). SQLite
    /// asks nothing: its one writer commits in order
    /// ([`super::shared::bind_writing_elsewhere`]).
    const WRITING_ELSEWHERE: Option<&'static str>;

    /// Reads the customer of a message a replacing answer is recorded
    /// for (none once they are erased), holding off another such answer
    /// until this one commits (`sql::CUSTOMER_OF_ANSWERED_*`).
    const CUSTOMER_OF_ANSWERED: &'static str;

    /// Holds an erased person's messages against claims until the erasure
    /// commits, if claims can run beside it (`sql::LOCK_MESSAGES_OF_POSTGRES`).
    const LOCK_MESSAGES_OF: Option<&'static str>;

    /// What a planned page's write transaction runs first, if anything.
    const PLAN_WRITE_OPENS: Option<&'static str>;

    /// Writes a planned page's customers inside `conn`'s transaction: next
    /// planning time, when last planned, and a new stage, one update each.
    async fn update_planned_customers(
        conn: &mut Self::Connection,
        plan: &PlanWrite,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error>;

    /// Records lifecycle stage changes inside `conn`'s transaction, kept so
    /// that `stage:NAME` anchors fire once per entry.
    async fn insert_stage_changes(
        conn: &mut Self::Connection,
        changes: &[StageChange],
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<(), Error>;

    /// Expires, inside `conn`'s transaction, the waiting messages newer
    /// occurrences supersede, and drops their claims. Returns how many.
    async fn supersede_waiting(
        conn: &mut Self::Connection,
        superseding: &[Supersede],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error>;

    /// Puts messages into the outbox inside `conn`'s transaction; an
    /// occurrence already there is left alone. Returns how many were new.
    async fn insert_messages(
        conn: &mut Self::Connection,
        messages: &[NewMessage],
        now: DateTime<Utc>,
        fail: &(impl Fn(sqlx::Error) -> Error + Sync),
    ) -> Result<u64, Error>;
}

/// The rows a planning history is read from, as [`Backend::history_rows`]
/// fetched them.
pub struct HistoryRows<R> {
    /// customer, key, name, occurred_at
    pub events: Vec<R>,
    /// customer, stage, entered_at
    pub stages: Vec<R>,
    /// customer, playbook, step, occurrence, sent, waiting
    pub messages: Vec<R>,
}

/// What the shared store code needs of a store: its pools, its errors, and
/// the operations whose SQL is its own. The value types the role traits'
/// generic implementations bind and read are named once, in
/// [`any_dialect`].
#[allow(async_fn_in_trait)] // Used through `Db`, whose futures are `Send`.
pub trait Backend: Sync {
    type DB: Dialect;

    /// Which variant of a statement built at run time this backend reads.
    const DIALECT: sql::Dialect;

    /// The statement that opens a write transaction. SQLite's `BEGIN
    /// IMMEDIATE` takes the write lock at once, so a transaction that reads
    /// first can never fail to upgrade to a writer.
    const BEGIN_WRITE: &'static str;

    /// Where reads go.
    fn reads(&self) -> &Pool<Self::DB>;

    /// Which signals this store records ([`super::Signals::listen`]).
    fn listening(&self) -> &Listening;

    /// Where writes go: on SQLite one connection of its own, since the
    /// database has one writer at a time anyway.
    fn writes(&self) -> &Pool<Self::DB>;

    /// Turns a driver error met while `doing` into one a person can act on.
    fn fail(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> Error + Send + Sync + '_;

    /// Opens a write transaction.
    async fn begin(&self) -> Result<Transaction<'static, Self::DB>, sqlx::Error> {
        self.writes().begin_with(Self::BEGIN_WRITE).await
    }

    /// How many write transactions of different customers are worth
    /// running at once ([`super::Planning::concurrent_writes`]).
    const CONCURRENT_WRITES: usize;

    /// How many customers a planning pass takes at a time
    /// ([`super::Planning::planning_page`]).
    const PLANNING_PAGE: u32;

    /// Marks a customer due for planning at once (see `sql::MARK_SQLITE`).
    const MARK: &'static str;

    /// Has every customer planned again at the next pass.
    const REPLAN_ALL: &'static str;
    /// [`Self::MARK`] for accounts.
    const ACCOUNT_MARK: &'static str;
    /// [`Self::REPLAN_ALL`] for accounts.
    const REPLAN_ACCOUNTS: &'static str;

    /// Applies the embedded migrations this backend has.
    async fn migrate(&self) -> Result<(), Error>;

    /// Inserts or replaces customers ([`super::Customers::upsert_customers`]):
    /// how a backend learns which rows were new differs.
    async fn upsert_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error>;

    /// The rows of each customer's planning history: events, stage
    /// entries and outbox occurrences ([`super::Planning::planning_history`]
    /// decodes them). How they are looked up differs.
    async fn history_rows(
        &self,
        ids: &[CustomerId],
    ) -> Result<HistoryRows<<Self::DB as Database>::Row>, Error>;

    /// Takes the planning lead ([`super::Planning::lead_planning`]).
    async fn lead_planning(&self) -> Result<Option<PlanningLead>, Error>;

    /// Leases up to `limit` due messages to `owner`, most important first,
    /// skipping rows another instance holds: the ids leased.
    async fn lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, Error>;

    /// Marks leased messages `sending` ([`super::Outbox::begin_sending`]),
    /// renewing to `lease_until` the leases that end before `renew_before`.
    async fn begin_sending(
        &self,
        owner: &str,
        ids: &[MessageId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        renew_before: DateTime<Utc>,
    ) -> Result<Vec<MessageId>, Error>;

    /// Recent sends for the cap ([`super::Outbox::sent_since`]).
    async fn sent_since(
        &self,
        ids: &[CustomerId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, Vec<DateTime<Utc>>>, Error>;

    /// Holds an instance name ([`super::Outbox::hold_name`]).
    async fn hold_name(&self, name: &str) -> Result<Option<NameHold>, Error>;

    /// Why writes fail, where the backend watches them
    /// ([`super::Upkeep::write_failure`]).
    fn write_failure(&self) -> Option<WriteFailure> {
        None
    }

    /// Tries one write while writes fail ([`super::Upkeep::probe_write`]).
    async fn probe_write(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Vacuums after a large pass ([`super::Upkeep::tidy`]).
    async fn tidy(&self, what: super::Tidy) -> Result<bool, Error>;

    /// Closes every connection.
    async fn close(&self);
}

/// Gives a store item written once for both databases the bounds its sqlx
/// calls need, stated here once: Rust does not carry a trait's where-clause
/// over to the code that uses the trait, so without this every role
/// implementation and helper would spell out the same twenty lines. Applied
/// as `#[apply(any_dialect!)]` to
///
/// - a role implementation, `impl<B, DB> Role for B { … }`, which becomes
///   generic over every [`Backend`] `B` whose database is `DB`;
/// - a helper, `async fn name<DB: Dialect>(…) -> Ret { … }` (a lifetime may
///   come first; no where-clause of its own), which becomes generic over
///   every [`Dialect`].
///
/// Every value type these bind or read is named here; a new one goes here
/// too. (`shared::customer_values`, which binds borrowed values into the
/// bulk upsert's rows, states its own.)
macro_rules! any_dialect {
    (impl<$B:ident, $DB:ident> $Role:ident for $For:ident { $($body:tt)* }) => {
        $crate::store::backend::any_dialect!(@bounded $DB
            [impl<$B, $DB> $Role for $For]
            [$B: $crate::store::backend::Backend<DB = $DB>,]
            [{ $($body)* }]
        );
    };
    (
        $(#[$meta:meta])*
        $vis:vis async fn $name:ident<$($life:lifetime,)? $DB:ident: $Dialect:ident>($($args:tt)*)
            -> $ret:ty $body:block
    ) => {
        $crate::store::backend::any_dialect!(@bounded $DB
            [$(#[$meta])* $vis async fn $name<$($life,)? $DB: $Dialect>($($args)*) -> $ret]
            []
            [$body]
        );
    };
    (@bounded $DB:ident [$($head:tt)*] [$($first:tt)*] [$($body:tt)*]) => {
        $($head)*
        where
            $($first)*
            $DB: $crate::store::backend::Dialect,
            $DB::Arguments: ::sqlx::IntoArguments<$DB>,
            for<'c> &'c mut $DB::Connection: ::sqlx::Executor<'c, Database = $DB>,
            usize: ::sqlx::ColumnIndex<$DB::Row>,
            for<'n> &'n str:
                ::sqlx::ColumnIndex<$DB::Row> + ::sqlx::Encode<'n, $DB> + ::sqlx::Type<$DB>,
            String: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            i64: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            i32: for<'q> ::sqlx::Encode<'q, $DB> + ::sqlx::Type<$DB>,
            bool: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            Vec<u8>: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            $crate::store::column::At: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            $crate::store::column::Int: ::sqlx::Type<$DB> + for<'r> ::sqlx::Decode<'r, $DB>,
            $crate::store::column::Object: for<'q> ::sqlx::Encode<'q, $DB>
                + ::sqlx::Type<$DB>
                + for<'r> ::sqlx::Decode<'r, $DB>,
            Option<String>: for<'q> ::sqlx::Encode<'q, $DB>,
            for<'s> Option<&'s str>: ::sqlx::Encode<'s, $DB>,
            Option<i64>: for<'q> ::sqlx::Encode<'q, $DB>,
            Option<i32>: for<'q> ::sqlx::Encode<'q, $DB>,
            Option<$crate::store::column::At>: for<'q> ::sqlx::Encode<'q, $DB>,
        $($body)*
    };
}
pub(crate) use any_dialect;
