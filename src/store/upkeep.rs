//! [`Upkeep`] for every backend: migrations, health and tidying, each
//! backend's own where the databases differ.

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::{Backend, Dialect};
use super::column::{At, Int, Object};
use super::{Error, Tidy, Upkeep, WriteFailure, sql};

impl<B, DB> Upkeep for B
where
    B: Backend<DB = DB>,
    DB: Dialect,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    for<'n> &'n str: ColumnIndex<DB::Row> + Encode<'n, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    bool: for<'q> Encode<'q, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    At: for<'q> Encode<'q, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    Int: Type<DB> + for<'r> Decode<'r, DB>,
    Object: for<'q> Encode<'q, DB> + Type<DB> + for<'r> Decode<'r, DB>,
    Vec<u8>: for<'q> Encode<'q, DB> + Type<DB>,
    Option<String>: for<'q> Encode<'q, DB>,
    for<'s> Option<&'s str>: Encode<'s, DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
    Option<At>: for<'q> Encode<'q, DB>,
{
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
