//! Steps that several role implementations take, written once for both
//! databases: inside their own transactions, and reads of the rows that
//! concern many customers or accounts at once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::query::Query;
use sqlx::query_builder::Separated;
use sqlx::{Executor, Pool, QueryBuilder};

use super::Error;
use super::backend::{Dialect, any_dialect};
use super::column::{At, Object};
use super::signals::Listening;
use super::sql;
use crate::domain::customer::CustomerRecord;
use crate::domain::incident::IncidentStatus;
use crate::domain::message::{MessageId, ResponseView};
use crate::domain::planned::{NextCheck, PlanWrite, StageChange};
use crate::domain::response::{ResponseKind, unsubscribed_reason};
use crate::domain::signal::{self, NewSignal};

/// `page`, a feed page's statement, with what its database asks first
/// ([`Dialect::WRITING_ELSEWHERE`]) bound as its last parameter. Asked
/// here, by a statement of its own, so that it is read before the page's
/// snapshot is taken: a neighbour's transaction that ended before the
/// read is never taken for one of this database's. The answer is text
/// (cast to an array in the page's statement) because the same code binds
/// it for both databases, and only PostgreSQL has arrays.
#[apply(any_dialect!)]
pub async fn bind_writing_elsewhere<'p, DB: Dialect>(
    pool: &Pool<DB>,
    page: Query<'p, DB, DB::Arguments>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Query<'p, DB, DB::Arguments>, Error> {
    let Some(statement) = DB::WRITING_ELSEWHERE else {
        return Ok(page);
    };
    let (xids,): (String,) = sqlx::query_as(statement)
        .fetch_one(pool)
        .await
        .map_err(fail)?;
    Ok(page.bind(xids))
}

/// The rows `statement` finds among `ids`, asked a chunk of
/// [`super::ROWS_PER_STATEMENT`] ids at a time: the condition that
/// `column` holds one of the chunk ends `statement`, and `tail` (an order,
/// say) follows it. The rows come chunk after chunk, each in its own order,
/// so the ids should be distinct: one listed in two chunks brings its rows
/// twice.
#[apply(any_dialect!)]
pub async fn rows_among<DB: Dialect>(
    pool: &Pool<DB>,
    statement: &str,
    column: &str,
    ids: &[impl ToString],
    tail: &str,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Vec<DB::Row>, Error> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<DB>::new(statement);
        DB::push_in(
            &mut query,
            column,
            chunk.iter().map(ToString::to_string).collect(),
        );
        query.push(tail);
        rows.extend(query.build().fetch_all(pool).await.map_err(fail)?);
    }
    Ok(rows)
}

/// Creates, known only by their id, the accounts a batch of customers
/// names that are not stored yet, so every contact's account exists, and
/// marks due for planning (with `mark`) each account named and each account
/// the batch's people belong to before it is written: a contact who joins
/// or leaves changes both.
#[apply(any_dialect!)]
pub async fn add_named_accounts<DB: Dialect>(
    conn: &mut DB::Connection,
    batch: &[CustomerRecord],
    now: DateTime<Utc>,
    mark: &str,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    let mut named: Vec<&str> = batch
        .iter()
        .filter_map(|c| c.account_id.as_ref().map(|a| a.as_str()))
        .collect();
    // Without accounts (most imports of people), nothing to create or mark.
    if named.is_empty() && !any_account::<DB>(conn, fail).await? {
        return Ok(());
    }
    for run in batch.chunks(super::ROWS_PER_STATEMENT) {
        let mut left = sqlx::QueryBuilder::<DB>::new(sql::SET_ACCOUNT_PLAN_AT);
        left.push(mark);
        left.push(sql::ACCOUNTS_OF_CUSTOMERS);
        DB::push_in(
            &mut left,
            "id",
            run.iter().map(|c| c.id.to_string()).collect(),
        );
        left.push(")");
        left.build().execute(&mut *conn).await.map_err(fail)?;
    }
    if named.is_empty() {
        return Ok(());
    }
    named.sort_unstable();
    named.dedup();
    for run in named.chunks(super::ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<DB>::new(sql::INSERT_NAMED_ACCOUNTS);
        insert.push_values(run, |mut row, id| {
            row.push_bind(*id).push_bind(At(now)).push_bind(At(now));
        });
        insert.push(sql::KEEP_ACCOUNT);
        insert.build().execute(&mut *conn).await.map_err(fail)?;
        let mut due = sqlx::QueryBuilder::<DB>::new(sql::SET_ACCOUNT_PLAN_AT);
        due.push(mark);
        due.push(" WHERE ");
        DB::push_in(
            &mut due,
            "id",
            run.iter().map(|id| (*id).to_owned()).collect(),
        );
        due.build().execute(&mut *conn).await.map_err(fail)?;
    }
    Ok(())
}

/// Whether any account is stored.
#[apply(any_dialect!)]
pub async fn any_account<DB: Dialect>(
    conn: &mut DB::Connection,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<bool, Error> {
    let (n,): (i64,) = sqlx::query_as(sql::ANY_ACCOUNT)
        .fetch_one(&mut *conn)
        .await
        .map_err(fail)?;
    Ok(n > 0)
}

/// Adds a status change to an incident's history.
#[apply(any_dialect!)]
pub async fn record_update<DB: Dialect>(
    conn: &mut DB::Connection,
    id: &str,
    status: IncidentStatus,
    message: &str,
    notify: bool,
    at: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    sqlx::query(sql::INSERT_INCIDENT_UPDATE)
        .bind(id)
        .bind(status.as_str())
        .bind(message)
        .bind(notify)
        .bind(At(at))
        .fetch_one(conn)
        .await
        .map_err(fail)?;
    Ok(())
}

/// Withdraws a maintenance's announcements still waiting: their claims go,
/// and they are settled `expired` with `reason`, never sent. How many.
#[apply(any_dialect!)]
pub async fn withdraw_announcements<DB: Dialect>(
    conn: &mut DB::Connection,
    id: &str,
    reason: &str,
    at: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<u64, Error> {
    sqlx::query(sql::RELEASE_ANNOUNCEMENTS)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    let done = sqlx::query(sql::WITHDRAW_ANNOUNCEMENTS)
        .bind(id)
        .bind(reason)
        .bind(At(at))
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    Ok(DB::rows_affected(&done))
}

/// Applies a customer's choice to the customer of `message`: each category
/// left is suppressed and gets one `unsubscribe` response (none when it
/// was left before), linked to the `inbound` mail that asked; each taken
/// back is lifted if the customer had chosen to leave it.
#[allow(clippy::too_many_arguments)] // One transaction's steps, named.
#[apply(any_dialect!)]
pub async fn apply_preferences<DB: Dialect>(
    tx: &mut DB::Connection,
    listening: &Listening,
    message: MessageId,
    customer: &str,
    choice: &super::Preferences,
    now: DateTime<Utc>,
    inbound: Option<uuid::Uuid>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    for category in &choice.unsubscribe {
        let added = sqlx::query(sql::INSERT_SUPPRESSION)
            .bind(customer)
            .bind(category)
            .bind(unsubscribed_reason(category, choice.source))
            .bind(choice.source.as_str())
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        if DB::rows_affected(&added) == 0 {
            continue;
        }
        let response = ResponseView {
            id: uuid::Uuid::now_v7().to_string(),
            message_id: Some(message.to_string()),
            customer_id: Some(customer.to_owned()),
            kind: ResponseKind::Unsubscribe.as_str().to_owned(),
            value: Some(category.clone()),
            comment: None,
            received_at: now,
            source: choice.source.as_str().to_owned(),
        };
        let inbound = inbound.map(|id| id.to_string());
        insert_response::<DB>(
            tx,
            listening,
            ResponseKind::Unsubscribe,
            &response,
            inbound,
            fail,
        )
        .await?;
    }
    for category in &choice.resubscribe {
        sqlx::query(sql::LIFT_CHOSEN)
            .bind(customer)
            .bind(category)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    Ok(())
}

/// The customer a message went to, if the message exists.
#[apply(any_dialect!)]
pub async fn customer_of<'e, DB: Dialect>(
    conn: impl Executor<'e, Database = DB>,
    message: MessageId,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar(sql::CUSTOMER_OF_MESSAGE)
        .bind(message.to_string())
        .fetch_optional(conn)
        .await
        .map_err(fail)
}

/// Records one response (linked to the `inbound` mail it came in, if
/// any) and, when anyone listens for its type, its signal.
#[apply(any_dialect!)]
pub async fn insert_response<DB: Dialect>(
    conn: &mut DB::Connection,
    listening: &Listening,
    kind: ResponseKind,
    response: &ResponseView,
    inbound: Option<String>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    sqlx::query(sql::INSERT_RESPONSE)
        .bind(response.id.clone())
        .bind(response.message_id.clone())
        .bind(response.customer_id.clone())
        .bind(kind.as_str())
        .bind(response.value.clone())
        .bind(response.comment.clone())
        .bind(At(response.received_at))
        .bind(response.source.clone())
        .bind(inbound)
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    if listening.wants(signal::response_type(kind)) {
        tell::<DB>(conn, &NewSignal::response(kind, response), fail).await?;
    }
    Ok(())
}

/// Records a signal in `conn`'s transaction: it commits, or rolls back,
/// with what it tells of.
#[apply(any_dialect!)]
pub async fn tell<DB: Dialect>(
    conn: &mut DB::Connection,
    signal: &NewSignal,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    tell_all::<DB>(conn, std::slice::from_ref(signal), fail).await
}

/// One customer's row of `sql::INSERT_CUSTOMERS`.
pub fn customer_values<DB: Dialect>(
    mut row: Separated<'_, DB, &'static str>,
    c: &CustomerRecord,
    now: DateTime<Utc>,
) where
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<At>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i16>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'m> Object<&'m serde_json::Map<String, serde_json::Value>>:
        sqlx::Encode<'m, DB> + sqlx::Type<DB>,
    At: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    row.push_bind(c.id.as_str())
        .push_bind(c.email.as_str())
        .push_bind(c.name.as_str())
        .push_bind(c.timezone.name())
        .push_bind(c.locale.as_str())
        .push_bind(c.plan.as_str())
        .push_bind(c.signup_at.map(At))
        .push_bind(c.renewal_at.map(At))
        .push_bind(c.last_seen_at.map(At))
        .push_bind(c.health.map(i16::from))
        .push_bind(Object(&c.attributes))
        .push_bind(c.account_id.as_ref().map(|a| a.as_str().to_owned()))
        .push_bind(c.roles.joined())
        .push_bind(c.availability.holidays.clone())
        .push_bind(c.availability.quiet_until.map(At))
        .push_bind(At(now))
        .push_bind(At(now))
        // Planned again at the next tick.
        .push_bind(At(DateTime::<Utc>::UNIX_EPOCH));
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

/// The page's customer updates: every next check, joined by id with its
/// stage change (a change without a next check stands alone).
pub(crate) fn customer_updates(plan: &PlanWrite) -> Vec<CustomerUpdate<'_>> {
    // Of two changes to one customer, the later holds.
    let last: HashMap<&str, &StageChange> = plan
        .changes
        .iter()
        .map(|c| (c.customer_id.as_str(), c))
        .collect();
    let checked: HashSet<&str> = plan.next.iter().map(|n| n.id.as_str()).collect();
    let mut updates: Vec<CustomerUpdate<'_>> = plan
        .next
        .iter()
        .map(|n| CustomerUpdate::new(n.id.as_str(), Some(n), last.get(n.id.as_str()).copied()))
        .collect();
    // Changes without a next check, in order (`unique_runs` keeps two
    // to one customer in separate statements).
    updates.extend(
        plan.changes
            .iter()
            .filter(|c| !checked.contains(c.customer_id.as_str()))
            .map(|c| CustomerUpdate::new(c.customer_id.as_str(), None, Some(c))),
    );
    updates
}

/// Records a `kind` signal (`message.sent`, …) for each of the messages
/// `ids`, as they stand in `conn`'s transaction, when anyone listens.
#[apply(any_dialect!)]
pub async fn tell_messages<DB: Dialect>(
    conn: &mut DB::Connection,
    listening: &Listening,
    kind: &'static str,
    ids: Vec<String>,
    at: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    if ids.is_empty() || !listening.wants(kind) {
        return Ok(());
    }
    let mut query = sqlx::QueryBuilder::<DB>::new(sql::MESSAGE_VIEWS);
    DB::push_in(&mut query, "id", ids);
    // Only those the settle moved: one recovered elsewhere meanwhile keeps
    // the status it was given there.
    if let Some(status) = kind.strip_prefix("message.").filter(|s| *s != "bounced") {
        query.push(" AND status = ");
        query.push_bind(status.to_owned());
    }
    query.push(" ORDER BY id");
    let rows = query.build().fetch_all(&mut *conn).await.map_err(fail)?;
    let signals = rows
        .iter()
        .map(|row| super::rows::message_view(row, fail).map(|m| NewSignal::message(kind, &m, at)))
        .collect::<Result<Vec<_>, _>>()?;
    tell_all::<DB>(conn, &signals, fail).await
}

/// Records many signals in `conn`'s transaction, a statement per thousand.
#[apply(any_dialect!)]
pub async fn tell_all<DB: Dialect>(
    conn: &mut DB::Connection,
    signals: &[NewSignal],
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    for run in signals.chunks(super::ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<DB>::new(sql::INSERT_SIGNALS);
        insert.push_values(run, |mut row, s| {
            row.push_bind(s.id.clone())
                .push_bind(s.kind)
                .push_bind(s.customer_id.clone())
                .push_bind(Object(s.payload.clone()))
                .push_bind(At(s.occurred_at));
        });
        insert.build().execute(&mut *conn).await.map_err(fail)?;
    }
    Ok(())
}

/// Records a `stage.changed` signal for each change, when anyone listens.
#[apply(any_dialect!)]
pub async fn tell_stage_changes<DB: Dialect>(
    conn: &mut DB::Connection,
    listening: &Listening,
    changes: impl IntoIterator<Item = NewSignal>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error> {
    if !listening.wants(signal::STAGE_CHANGED) {
        return Ok(());
    }
    let signals: Vec<NewSignal> = changes.into_iter().collect();
    tell_all::<DB>(conn, &signals, fail).await
}
