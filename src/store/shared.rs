//! Statements both dialects run the same way, written once: generic over
//! the backend through [`Dialect`], with times bound as [`At`]. What truly
//! differs (claims, upserts, transactions' start) stays in each dialect's
//! file.

use chrono::{DateTime, Utc};
use sqlx::{Database, Executor};

use super::Error;
use super::at::At;
use super::sql;
use crate::domain::incident::IncidentStatus;

/// What the shared statements need of a backend beyond sqlx's `Database`.
pub trait Dialect: Database {
    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

impl Dialect for sqlx::Sqlite {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

impl Dialect for sqlx::Postgres {
    fn rows_affected(done: &Self::QueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Adds a status change to an incident's history.
pub async fn record_update<DB: Dialect>(
    conn: &mut DB::Connection,
    id: &str,
    status: IncidentStatus,
    message: &str,
    notify: bool,
    at: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<(), Error>
where
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    At: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
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
pub async fn withdraw_announcements<DB: Dialect>(
    conn: &mut DB::Connection,
    id: &str,
    reason: &str,
    at: DateTime<Utc>,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<u64, Error>
where
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    At: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
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
