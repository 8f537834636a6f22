//! Row decoders written once for both dialects: what a row of either store
//! holds, turned into domain values. Generic over the row type; times come
//! through [`At`], which reads each dialect's own column type.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::Error;
use super::at::At;
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
