//! [`Upkeep`] for every backend: migrations, health and tidying, each
//! backend's own where the databases differ.

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;

use super::backend::{Backend, any_dialect};
use super::column::At;
use super::{Error, Tidy, Upkeep, WriteFailure, sql};

#[apply(any_dialect!)]
impl<B, DB> Upkeep for B {
    async fn migrate(&self) -> Result<(), Error> {
        Backend::migrate(self).await
    }

    async fn ping(&self) -> Result<(), Error> {
        sqlx::query(sql::PING)
            .execute(self.reads())
            .await
            .map_err(self.fail("checking the database answers"))?;
        Ok(())
    }

    fn write_failure(&self) -> Option<WriteFailure> {
        Backend::write_failure(self)
    }

    async fn probe_write(&self) -> Result<(), Error> {
        Backend::probe_write(self).await
    }

    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let done = sqlx::query(sql::PRUNE_ATTEMPTS)
            .bind(At(before))
            .execute(self.writes())
            .await
            .map_err(self.fail("deleting old delivery attempts"))?;
        Ok(DB::rows_affected(&done))
    }

    async fn tidy(&self, what: Tidy) -> Result<bool, Error> {
        Backend::tidy(self, what).await
    }

    async fn close(&self) {
        Backend::close(self).await;
    }
}
