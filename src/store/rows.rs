//! Row decoders written once for both dialects: what a row of either store
//! holds, turned into domain values. Generic over the row type; times come
//! through [`At`], which reads each dialect's own column type, whole
//! numbers through [`Int`] and JSON objects through [`Object`].

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::Error;
use super::column::{At, Int, Object};
use crate::domain::account::{Account, AccountId, AccountRecord, Roles};
use crate::domain::availability::Availability;
use crate::domain::customer::{Customer, CustomerId, CustomerRecord, Email, parse_timezone};
use crate::domain::feed::Position;
use crate::domain::incident::{Incident, IncidentKind, IncidentStatus};
use crate::domain::message::{
    Attempt, AttemptOutcome, MessageView, Outgoing, ResponseView, Status,
};
use crate::domain::plan::OccurrenceKey;
use crate::domain::playbook::{Kind, Survey};

/// Gives a row decoder written once for both databases the bounds its reads
/// need, stated here once (as `any_dialect!` in `backend.rs` does for
/// statements). Applied as `#[apply(any_row!)]` to
/// `fn name<R: Row>(…) -> … { … }`; every value type a row yields is named
/// here.
macro_rules! any_row {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<R: $Row:ident>($($args:tt)*) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name<R: $Row>($($args)*) -> $ret
        where
            usize: ::sqlx::ColumnIndex<R>,
            &'static str: ::sqlx::ColumnIndex<R>,
            String: for<'r> ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            bool: for<'r> ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            $crate::store::column::At:
                for<'r> ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            $crate::store::column::Int:
                for<'r> ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
            $crate::store::column::Object:
                for<'r> ::sqlx::Decode<'r, R::Database> + ::sqlx::Type<R::Database>,
        $body
    };
}
pub(super) use any_row;

/// Reads one column of a row, with the driver's error made the store's.
struct Reader<'r, 'f, R: Row, F> {
    row: &'r R,
    fail: &'f F,
}

impl<'r, R, F> Reader<'r, '_, R, F>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    F: Fn(sqlx::Error) -> Error,
{
    fn get<T: Decode<'r, R::Database> + Type<R::Database>>(
        &self,
        column: &'static str,
    ) -> Result<T, Error> {
        self.row.try_get(column).map_err(self.fail)
    }

    fn time(&self, column: &'static str) -> Result<DateTime<Utc>, Error>
    where
        At: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(self.get::<At>(column)?.0)
    }

    fn maybe_time(&self, column: &'static str) -> Result<Option<DateTime<Utc>>, Error>
    where
        At: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(self.get::<Option<At>>(column)?.map(|At(t)| t))
    }

    /// A health score (0–100), `corrupt` naming a value out of range.
    fn health(&self, corrupt: impl Fn(String) -> Error) -> Result<Option<u8>, Error>
    where
        Int: Decode<'r, R::Database> + Type<R::Database>,
    {
        self.get::<Option<Int>>("health")?
            .map(|Int(h)| u8::try_from(h).map_err(|_| corrupt(format!("health {h}"))))
            .transpose()
    }

    /// A calendar name and a quiet period, from the columns `holidays` and
    /// `quiet_until` (the record's own) or `account_holidays` and
    /// `account_quiet_until` (its account's, read beside a customer).
    fn availability(
        &self,
        [holidays, quiet_until]: [&'static str; 2],
    ) -> Result<Availability, Error>
    where
        At: Decode<'r, R::Database> + Type<R::Database>,
        String: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(Availability {
            holidays: self.get(holidays)?,
            quiet_until: self.maybe_time(quiet_until)?,
        })
    }
}

/// A delivery attempt (`SELECT_ATTEMPTS`). An attempt cut short by a crash
/// has no end; it ends when it started.
#[apply(any_row!)]
pub fn attempt<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Attempt, Error> {
    let read = Reader { row, fail };
    let started = read.time("started_at")?;
    let outcome: String = read.get("outcome")?;
    Ok(Attempt {
        started_at: started,
        finished_at: read.maybe_time("finished_at")?.unwrap_or(started),
        outcome: match outcome.as_str() {
            "sent" => AttemptOutcome::Sent,
            "transient" => AttemptOutcome::Transient,
            "permanent" => AttemptOutcome::Permanent,
            "unknown" => AttemptOutcome::Unknown,
            other => return Err(Error::Corrupt(format!("attempt outcome {other:?}"))),
        },
        smtp_code: read
            .get::<Option<Int>>("smtp_code")?
            .and_then(|Int(c)| u16::try_from(c).ok()),
        detail: read.get("detail")?,
    })
}

/// An incident or maintenance (`SELECT_INCIDENT` and the statements that
/// share its columns).
#[apply(any_row!)]
pub fn incident<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Incident, Error> {
    let read = Reader { row, fail };
    let id: String = read.get("id")?;
    let corrupt = |what: String| Error::Corrupt(format!("incident {id:?}: {what}"));
    let kind: String = read.get("kind")?;
    let status: String = read.get("status")?;
    Ok(Incident {
        kind: IncidentKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        status: IncidentStatus::parse(&status).map_err(corrupt)?,
        template: read.get::<Option<String>>("template")?.unwrap_or_default(),
        title: read.get("title")?,
        affects: read.get("affects")?,
        message: read.get("message")?,
        starts_at: read.maybe_time("starts_at")?,
        ends_at: read.maybe_time("ends_at")?,
        opened_at: read.time("opened_at")?,
        resolved_at: read.maybe_time("resolved_at")?,
        id,
    })
}

/// A customer (`SELECT_CUSTOMER`, `customers_page` and every statement that
/// reads the customer's columns beside others).
#[apply(any_row!)]
pub fn customer<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Customer, Error> {
    let read = Reader { row, fail };
    let id: String = read.get("id")?;
    let corrupt = |what: String| Error::Corrupt(format!("customer {id:?}: {what}"));
    let timezone: String = read.get("timezone")?;
    Ok(Customer {
        record: CustomerRecord {
            id: CustomerId::parse(&id).map_err(corrupt)?,
            // Checked when it was written; reading a page of customers
            // must not pay for parsing every address again.
            email: Email::stored(read.get("email")?),
            name: read.get("name")?,
            timezone: parse_timezone(&timezone).map_err(corrupt)?,
            locale: read.get("locale")?,
            plan: read.get("plan")?,
            signup_at: read.maybe_time("signup_at")?,
            renewal_at: read.maybe_time("renewal_at")?,
            last_seen_at: read.maybe_time("last_seen_at")?,
            health: read.health(corrupt)?,
            attributes: read.get::<Object>("attributes")?.0,
            account_id: read
                .get::<Option<String>>("account_id")?
                .map(|a| AccountId::parse(&a).map_err(corrupt))
                .transpose()?,
            roles: Roles::stored(&read.get::<String>("roles")?),
            availability: read.availability(["holidays", "quiet_until"])?,
        },
        stage: read.get("stage")?,
        stage_entered_at: read.maybe_time("stage_entered_at")?,
        created_at: read.time("created_at")?,
        updated_at: read.time("updated_at")?,
        account_availability: read.availability(["account_holidays", "account_quiet_until"])?,
    })
}

/// A message as listed (`SELECT_MESSAGES`, `MESSAGE_VIEWS`).
#[apply(any_row!)]
pub fn message_view<R: Row>(
    row: &R,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<MessageView, Error> {
    let read = Reader { row, fail };
    Ok(MessageView {
        id: read.get("id")?,
        customer_id: read.get("customer_id")?,
        to: read.get("to_address")?,
        playbook: read.get("playbook")?,
        step: read.get("step")?,
        occurrence: read.get("occurrence")?,
        kind: read.get("kind")?,
        status: read.get("status")?,
        reason: read.get("reason")?,
        subject: read.get("subject")?,
        due_at: read.time("due_at")?,
        sent_at: read.get::<Option<At>>("sent_at")?.map(|At(t)| t),
        attempts: read.get::<Int>("attempts")?.0,
        message_id: read.get("message_id")?,
    })
}

/// Where a row of a page stands in commit order (its `tx` and `seq`).
#[apply(any_row!)]
pub fn position<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Position, Error> {
    let read = Reader { row, fail };
    Ok(Position {
        tx: read.get::<Int>("tx")?.0,
        seq: read.get::<Int>("seq")?.0,
    })
}

/// A response as listed (`RESPONSES_SINCE`, `RESPONSES_FROM`).
#[apply(any_row!)]
pub fn response_view<R: Row>(
    row: &R,
    fail: &impl Fn(sqlx::Error) -> Error,
) -> Result<ResponseView, Error> {
    let read = Reader { row, fail };
    Ok(ResponseView {
        id: read.get("id")?,
        message_id: read.get("message_id")?,
        customer_id: read.get("customer_id")?,
        kind: read.get("kind")?,
        value: read.get("value")?,
        comment: read.get("comment")?,
        received_at: read.time("received_at")?,
        source: read.get("source")?,
    })
}

/// An account with its number of contacts (`ONE_ACCOUNT`, `ACCOUNTS_PAGE`).
#[apply(any_row!)]
pub fn account<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Account, Error> {
    let read = Reader { row, fail };
    let id: String = read.get("id")?;
    let corrupt = |what: String| Error::Corrupt(format!("account {id:?}: {what}"));
    Ok(Account {
        record: AccountRecord {
            id: AccountId::parse(&id).map_err(corrupt)?,
            name: read.get("name")?,
            plan: read.get("plan")?,
            renewal_at: read.maybe_time("renewal_at")?,
            health: read.health(corrupt)?,
            owner: read.get("owner")?,
            attributes: read.get::<Object>("attributes")?.0,
            availability: read.availability(["holidays", "quiet_until"])?,
        },
        stage: read.get("stage")?,
        stage_entered_at: read.maybe_time("stage_entered_at")?,
        contacts: u64::try_from(read.get::<Int>("contacts")?.0).unwrap_or(0),
        created_at: read.time("created_at")?,
        updated_at: read.time("updated_at")?,
    })
}

/// A message with its customer (`CLAIMED_DETAILS_*`).
#[apply(any_row!)]
pub fn outgoing<R: Row>(row: &R, fail: &impl Fn(sqlx::Error) -> Error) -> Result<Outgoing, Error> {
    let read = Reader { row, fail };
    let customer = customer(row, fail)?;
    let id: String = read.get("message_uuid")?;
    let corrupt = |what: String| Error::Corrupt(format!("message {id:?}: {what}"));
    let kind: String = read.get("kind")?;
    let kind = Kind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?;
    let status: String = read.get("status")?;
    Ok(Outgoing {
        to: read
            .get::<Option<String>>("to_address")?
            .unwrap_or_else(|| customer.record.email.to_string()),
        customer,
        key: OccurrenceKey {
            playbook: read.get("playbook")?,
            step: read.get("step")?,
            occurrence: read.get("occurrence")?,
        },
        urgent: read.get::<bool>("urgent")? || kind == Kind::Incident,
        kind,
        category: read.get("category")?,
        template: read.get("template")?,
        survey: match read.get::<Option<String>>("survey")? {
            Some(s) => Some(Survey::parse(&s).ok_or_else(|| corrupt(format!("survey {s:?}")))?),
            None => None,
        },
        notice: match read.get::<Option<String>>("notice")? {
            Some(json) => {
                Some(serde_json::from_str(&json).map_err(|e| corrupt(format!("notice: {e}")))?)
            }
            None => None,
        },
        status: Status::parse(&status).map_err(corrupt)?,
        message_id: read
            .get::<Option<String>>("message_id")?
            .unwrap_or_else(|| format!("{id}@tend.invalid")),
        due_at: read.time("due_at")?,
        not_before: read.time("not_before")?,
        expires_at: read
            .maybe_time("expires_at")?
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        attempts: u32::try_from(read.get::<Int>("attempts")?.0).unwrap_or(0),
        first_attempt_at: read.maybe_time("first_attempt_at")?,
        suppressed: read.get("suppressed")?,
        account: None,
        sender: None,
        planned_for: read
            .get::<Option<String>>("planned_for")?
            .map(|a| AccountId::parse(&a).map_err(corrupt))
            .transpose()?,
        id: id
            .parse()
            .map_err(|e: uuid::Error| corrupt(e.to_string()))?,
    })
}
