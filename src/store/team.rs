//! [`Team`] for every backend: the console's passwords, sessions and
//! audit, the same SQL on both.

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::Row;

use super::backend::any_dialect;
use super::column::{At, Int};
use super::{Error, Team, sql};
use crate::domain::console::{AuditAction, AuditEntry, NewSession, Password, Session};

#[apply(any_dialect!)]
impl<B, DB> Team for B {
    async fn set_password(&self, member: &str, hash: &str, at: DateTime<Utc>) -> Result<(), Error> {
        let fail = self.fail("setting a team member's password");
        let mut tx = self.begin().await.map_err(&fail)?;
        sqlx::query(sql::SET_PASSWORD)
            .bind(member)
            .bind(hash)
            .bind(At(at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        // Whoever knew the old password may hold a session, or a link
        // from a mailbox they read: both end here.
        for close in [sql::CLOSE_SESSIONS_OF, sql::CLOSE_LINKS_OF] {
            sqlx::query(close)
                .bind(member)
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)
    }

    async fn password_of(&self, member: &str) -> Result<Option<Password>, Error> {
        let fail = self.fail("reading a team member's password");
        let row = sqlx::query(sql::PASSWORD_OF)
            .bind(member)
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        row.map(|row| {
            Ok(Password {
                hash: row.try_get(0usize).map_err(&fail)?,
                set_at: row.try_get::<At, _>(1usize).map_err(&fail)?.0,
            })
        })
        .transpose()
    }

    async fn open_session(&self, new: &NewSession) -> Result<(), Error> {
        let fail = self.fail("opening a console session");
        let mut tx = self.begin().await.map_err(&fail)?;
        sqlx::query(sql::PRUNE_SESSIONS)
            .bind(At(new.session.created_at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        sqlx::query(sql::OPEN_SESSION)
            .bind(new.token_hash.as_str())
            .bind(new.session.member.as_str())
            .bind(new.session.csrf.as_str())
            .bind(At(new.session.created_at))
            .bind(At(new.session.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, Error> {
        let fail = self.fail("reading a console session");
        let row = sqlx::query(sql::SESSION_BY_TOKEN)
            .bind(token_hash)
            .bind(At(now))
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        row.map(|row| {
            Ok(Session {
                member: row.try_get(0usize).map_err(&fail)?,
                csrf: row.try_get(1usize).map_err(&fail)?,
                created_at: row.try_get::<At, _>(2usize).map_err(&fail)?.0,
                expires_at: row.try_get::<At, _>(3usize).map_err(&fail)?.0,
            })
        })
        .transpose()
    }

    async fn close_session(&self, token_hash: &str) -> Result<(), Error> {
        sqlx::query(sql::CLOSE_SESSION)
            .bind(token_hash)
            .execute(self.writes())
            .await
            .map_err(self.fail("closing a console session"))?;
        Ok(())
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), Error> {
        sqlx::query(sql::INSERT_AUDIT)
            .bind(entry.member.as_str())
            .bind(entry.action.as_str())
            .bind(entry.detail.as_str())
            .bind(entry.address.as_str())
            .bind(At(entry.at))
            .execute(self.writes())
            .await
            .map_err(self.fail("recording what was done in the console"))?;
        Ok(())
    }

    async fn audited_since(
        &self,
        action: AuditAction,
        member: &str,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), Error> {
        let fail = self.fail("counting what the console's audit holds");
        let row = sqlx::query(sql::AUDITED_SINCE)
            .bind(At(since))
            .bind(member)
            .bind(address)
            .bind(action.as_str())
            .fetch_one(self.reads())
            .await
            .map_err(&fail)?;
        let count = |i: usize| -> Result<u64, Error> {
            let Int(n) = row.try_get(i).map_err(&fail)?;
            Ok(n.max(0) as u64)
        };
        Ok((count(0)?, count(1)?))
    }

    async fn open_link(
        &self,
        token_hash: &str,
        member: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let fail = self.fail("storing a sign-in link");
        let mut tx = self.begin().await.map_err(&fail)?;
        sqlx::query(sql::PRUNE_LINKS)
            .bind(At(at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        sqlx::query(sql::OPEN_LINK)
            .bind(token_hash)
            .bind(member)
            .bind(At(at))
            .bind(At(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    async fn link_of(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, Error> {
        let fail = self.fail("reading a sign-in link");
        let row = sqlx::query(sql::LINK_OF)
            .bind(token_hash)
            .bind(At(now))
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        row.map(|row| row.try_get(0usize).map_err(&fail))
            .transpose()
    }

    async fn use_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, Error> {
        let fail = self.fail("using a sign-in link");
        let row = sqlx::query(sql::USE_LINK)
            .bind(token_hash)
            .bind(At(now))
            .fetch_optional(self.writes())
            .await
            .map_err(&fail)?;
        row.map(|row| row.try_get(0usize).map_err(&fail))
            .transpose()
    }

    async fn latest_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, Error> {
        let fail = self.fail("reading the console's audit");
        let rows = sqlx::query(sql::LATEST_AUDIT)
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get(1usize).map_err(&fail)?;
                Ok(AuditEntry {
                    member: row.try_get(0usize).map_err(&fail)?,
                    action: AuditAction::parse(&action).ok_or_else(|| {
                        Error::Corrupt(format!("unknown console audit action {action:?}"))
                    })?,
                    detail: row.try_get(2usize).map_err(&fail)?,
                    address: row.try_get(3usize).map_err(&fail)?,
                    at: row.try_get::<At, _>(4usize).map_err(&fail)?.0,
                })
            })
            .collect()
    }
}
