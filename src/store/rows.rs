//! Row decoders written once for both dialects: what a row of either store
//! holds, turned into domain values. Generic over the row type; times come
//! through [`At`], which reads each dialect's own column type.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::Error;
use super::column::{At, Int, Object};
use crate::domain::customer::Customer;
use crate::domain::incident::Incident;
use crate::domain::message::{Attempt, Outgoing};

/// A delivery attempt (`SELECT_ATTEMPTS`). An attempt cut short by a crash
/// has no end; it ends when it started.
pub fn attempt<'r, R>(row: &'r R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Attempt, Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    At: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Int: Decode<'r, R::Database> + Type<R::Database>,
{
    let outcome: String = row.try_get("outcome").map_err(fail)?;
    let code: Option<Int> = row.try_get("smtp_code").map_err(fail)?;
    let At(started) = row.try_get("started_at").map_err(fail)?;
    let finished: Option<At> = row.try_get("finished_at").map_err(fail)?;
    Ok(Attempt {
        started_at: started,
        finished_at: finished.map_or(started, |At(t)| t),
        outcome: super::attempt_outcome(&outcome)?,
        smtp_code: code.and_then(|Int(c)| u16::try_from(c).ok()),
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

/// A customer (`SELECT_CUSTOMER`, `customers_page` and every statement that
/// reads the customer's columns beside others).
pub fn customer<'r, R>(row: &'r R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Customer, Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    At: Decode<'r, R::Database> + Type<R::Database>,
    Int: Decode<'r, R::Database> + Type<R::Database>,
    Object: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let time = |column: &'static str| -> Result<Option<_>, Error> {
        Ok(row
            .try_get::<Option<At>, _>(column)
            .map_err(fail)?
            .map(|At(t)| t))
    };
    let Object(attributes) = row.try_get("attributes").map_err(fail)?;
    let columns = super::CustomerColumns {
        id: row.try_get("id").map_err(fail)?,
        email: row.try_get("email").map_err(fail)?,
        name: row.try_get("name").map_err(fail)?,
        timezone: row.try_get("timezone").map_err(fail)?,
        locale: row.try_get("locale").map_err(fail)?,
        plan: row.try_get("plan").map_err(fail)?,
        signup_at: time("signup_at")?,
        renewal_at: time("renewal_at")?,
        last_seen_at: time("last_seen_at")?,
        health: row
            .try_get::<Option<Int>, _>("health")
            .map_err(fail)?
            .map(|Int(h)| h),
        attributes,
        stage: row.try_get("stage").map_err(fail)?,
        stage_entered_at: time("stage_entered_at")?,
        created_at: row.try_get::<At, _>("created_at").map_err(fail)?.0,
        updated_at: row.try_get::<At, _>("updated_at").map_err(fail)?.0,
    };
    columns.into_customer()
}

/// A message with its customer (`CLAIMED_DETAILS`).
pub fn outgoing<'r, R>(row: &'r R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Outgoing, Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    At: Decode<'r, R::Database> + Type<R::Database>,
    Int: Decode<'r, R::Database> + Type<R::Database>,
    Object: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let time = |column: &'static str| -> Result<Option<_>, Error> {
        Ok(row
            .try_get::<Option<At>, _>(column)
            .map_err(fail)?
            .map(|At(t)| t))
    };
    let customer = customer(row, fail)?;
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
        due_at: row.try_get::<At, _>("due_at").map_err(fail)?.0,
        not_before: row.try_get::<At, _>("not_before").map_err(fail)?.0,
        expires_at: time("expires_at")?,
        attempts: row.try_get::<Int, _>("attempts").map_err(fail)?.0,
        first_attempt_at: time("first_attempt_at")?,
        suppressed: row.try_get("suppressed").map_err(fail)?,
    }
    .into_outgoing(customer)
}
