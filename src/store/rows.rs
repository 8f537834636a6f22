//! Row decoders written once for both dialects: what a row of either store
//! holds, turned into domain values. Generic over the row type; times come
//! through [`At`], which reads each dialect's own column type.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::Error;
use super::at::At;
use crate::domain::incident::Incident;
use crate::domain::message::Attempt;

/// A delivery attempt (`SELECT_ATTEMPTS`). An attempt cut short by a crash
/// has no end; it ends when it started.
pub fn attempt<'r, R>(row: &'r R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Attempt, Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    At: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
{
    let outcome: String = row.try_get("outcome").map_err(fail)?;
    let code: Option<i32> = row.try_get("smtp_code").map_err(fail)?;
    let At(started) = row.try_get("started_at").map_err(fail)?;
    let finished: Option<At> = row.try_get("finished_at").map_err(fail)?;
    Ok(Attempt {
        started_at: started,
        finished_at: finished.map_or(started, |At(t)| t),
        outcome: super::attempt_outcome(&outcome)?,
        smtp_code: code.and_then(|c| u16::try_from(c).ok()),
        detail: row.try_get("detail").map_err(fail)?,
    })
}

/// An incident or maintenance (`SELECT_INCIDENT` and the statements that
/// share its columns).
pub fn incident<'r, R>(row: &'r R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Incident, Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    At: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let time = |column: &'static str| -> Result<Option<_>, Error> {
        Ok(row
            .try_get::<Option<At>, _>(column)
            .map_err(fail)?
            .map(|At(t)| t))
    };
    let columns = super::IncidentColumns {
        id: row.try_get("id").map_err(fail)?,
        kind: row.try_get("kind").map_err(fail)?,
        title: row.try_get("title").map_err(fail)?,
        status: row.try_get("status").map_err(fail)?,
        affects: row.try_get("affects").map_err(fail)?,
        template: row.try_get("template").map_err(fail)?,
        message: row.try_get("message").map_err(fail)?,
        starts_at: time("starts_at")?,
        ends_at: time("ends_at")?,
        opened_at: row.try_get::<At, _>("opened_at").map_err(fail)?.0,
        resolved_at: time("resolved_at")?,
    };
    columns.into_incident()
}
