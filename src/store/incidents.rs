//! [`Incidents`] for every backend: incidents and maintenances, their
//! history, who they affect and who was told.

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, Dialect, any_dialect};
use super::column::{At, Int};
use super::{Error, Incidents, sql};
use crate::domain::customer::CustomerId;
use crate::domain::incident::{Incident, IncidentKind, IncidentStatus, IncidentView, Recipient};
use crate::domain::message::NewMessage;
use crate::domain::signal::NewSignal;

#[apply(any_dialect!)]
impl<B, DB> Incidents for B {
    async fn create_incident(&self, incident: &Incident) -> Result<bool, Error> {
        let fail = self.fail("recording an incident");
        let mut tx = self.begin().await.map_err(&fail)?;
        let done = sqlx::query(sql::INSERT_INCIDENT)
            .bind(&incident.id)
            .bind(incident.kind.as_str())
            .bind(&incident.title)
            .bind(incident.status.as_str())
            .bind(&incident.affects)
            .bind(&incident.template)
            .bind(&incident.message)
            .bind(incident.starts_at.map(At))
            .bind(incident.ends_at.map(At))
            .bind(At(incident.opened_at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&done) == 1 && self.listening().wants("incident.opened") {
            let object = serde_json::json!({
                "id": incident.id,
                "kind": incident.kind.as_str(),
                "title": incident.title,
                "status": incident.status.as_str(),
                "message": incident.message,
                "starts_at": incident.starts_at,
                "ends_at": incident.ends_at,
                "opened_at": incident.opened_at,
            });
            let signal = NewSignal::incident("incident.opened", object, incident.opened_at);
            super::shared::tell::<DB>(&mut tx, &signal, &fail).await?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, Error> {
        let fail = self.fail("reading an incident");
        let Some(row) = sqlx::query(sql::SELECT_INCIDENT)
            .bind(id)
            .fetch_optional(self.reads())
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
            .fetch_all(self.reads())
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
                    opened_at: row.try_get::<At, _>("opened_at").map_err(&fail)?.0,
                    resolved_at: row
                        .try_get::<Option<At>, _>("resolved_at")
                        .map_err(&fail)?
                        .map(|At(t)| t),
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
        let mut tx = self.begin().await.map_err(&fail)?;
        for run in affected.chunks(super::ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<DB>::new(sql::INSERT_AFFECTED);
            insert.push_values(run, |mut row, id| {
                row.push_bind(incident.to_owned())
                    .push_bind(id.as_str().to_owned());
            });
            insert.push(sql::SKIP_AFFECTED);
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
        }
        let planned = DB::insert_messages(&mut tx, notices, now, &fail).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(planned)
    }

    async fn recipients_sample(&self, incident: &str, limit: u32) -> Result<Vec<Recipient>, Error> {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as(sql::RECIPIENTS_SAMPLE)
                .bind(incident)
                .bind(i64::from(limit))
                .fetch_all(self.reads())
                .await
                .map_err(self.fail("reading who got an incident's notice"))?;
        first_per_customer(rows)
    }

    async fn told(&self, incident: &str) -> Result<u64, Error> {
        let Int(n) = sqlx::query_scalar(sql::TOLD)
            .bind(incident)
            .fetch_one(self.reads())
            .await
            .map_err(self.fail("counting who got an incident's notice"))?;
        Ok(n.max(0) as u64)
    }

    async fn recipients(&self, incident: &str) -> Result<Vec<Recipient>, Error> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(sql::RECIPIENTS)
            .bind(incident)
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading who got an incident's notice"))?;
        first_per_customer(rows)
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
        let mut tx = self.begin().await.map_err(&fail)?;
        let changed = sqlx::query(sql::UPDATE_INCIDENT)
            .bind(id)
            .bind(status.map(IncidentStatus::as_str))
            .bind(message)
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&changed) == 0 {
            return Ok(None);
        }
        let seq: i64 = sqlx::query_scalar(sql::INSERT_INCIDENT_UPDATE)
            .bind(id)
            .bind(status.map_or("", IncidentStatus::as_str))
            .bind(message)
            .bind(notify)
            .bind(At(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(&fail)?;
        let status = status.map(IncidentStatus::as_str);
        tell_change::<DB>(&mut tx, self, "incident.updated", id, status, message, now).await?;
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
        let mut tx = self.begin().await.map_err(&fail)?;
        let closed = sqlx::query(sql::CLOSE_INCIDENT)
            .bind(id)
            .bind(status.as_str())
            .bind(message)
            .bind(At(now))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&closed) == 0 {
            return Ok(None);
        }
        super::shared::record_update::<DB>(&mut *tx, id, status, message, true, now, &fail).await?;
        let withdrawn =
            super::shared::withdraw_announcements::<DB>(&mut *tx, id, withdrawn, now, &fail)
                .await?;
        let kind = "incident.resolved";
        tell_change::<DB>(&mut tx, self, kind, id, Some(status.as_str()), message, now).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(withdrawn))
    }

    async fn maintenances_due(&self, now: DateTime<Utc>) -> Result<Vec<Incident>, Error> {
        let fail = self.fail("reading the maintenances whose start or end has come");
        let rows = sqlx::query(sql::MAINTENANCES_DUE)
            .bind(At(now))
            .fetch_all(self.reads())
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
        let mut tx = self.begin().await.map_err(&fail)?;
        let started = sqlx::query(sql::START_MAINTENANCE)
            .bind(id)
            .bind(At(at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&started) == 0 {
            return Ok(None);
        }
        let status = IncidentStatus::InProgress;
        super::shared::record_update::<DB>(&mut *tx, id, status, message, false, at, &fail).await?;
        let expired =
            super::shared::withdraw_announcements::<DB>(&mut *tx, id, expired, at, &fail).await?;
        let kind = "incident.updated";
        tell_change::<DB>(&mut tx, self, kind, id, Some(status.as_str()), message, at).await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(expired))
    }
}

/// Records an incident's `kind` signal (updated or resolved), when anyone
/// listens, in `conn`'s transaction.
#[apply(any_dialect!)]
async fn tell_change<DB: Dialect>(
    conn: &mut DB::Connection,
    store: &impl Backend<DB = DB>,
    kind: &'static str,
    id: &str,
    status: Option<&str>,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    if !store.listening().wants(kind) {
        return Ok(());
    }
    let object = serde_json::json!({ "id": id, "status": status, "message": message, "at": at });
    let signal = NewSignal::incident(kind, object, at);
    super::shared::tell::<DB>(conn, &signal, &store.fail("recording an incident's signal")).await
}

/// The first notice per customer, from `RECIPIENTS` rows (oldest first).
fn first_per_customer(
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
