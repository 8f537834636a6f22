//! [`Accounts`] for every backend: the companies customers belong to,
//! written and read once for both databases.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::any_dialect;
use super::column::{At, Object};
use super::{Accounts, Error, WriteOutcome, rows, shared, sql, unique_runs};
use crate::domain::account::{Account, AccountId, AccountRecord, Roles};
use crate::domain::customer::Customer;

#[apply(any_dialect!)]
impl<B, DB> Accounts for B {
    async fn upsert_accounts(
        &self,
        batch: &[AccountRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error> {
        let fail = self.fail("writing accounts");
        let mut outcome = WriteOutcome::default();
        let mut tx = self.begin().await.map_err(&fail)?;
        for run in unique_runs(batch, |a| a.id.as_str()) {
            let ids: Vec<String> = run.iter().map(|a| a.id.to_string()).collect();
            // Counted inside the write: only a concurrent import of the
            // same account could make the split between new and replaced
            // off, and then only in what is reported.
            let mut known = QueryBuilder::<DB>::new(sql::KNOWN_ACCOUNTS);
            DB::push_in(&mut known, "id", ids.clone());
            let existing = known
                .build()
                .fetch_all(&mut *tx)
                .await
                .map_err(&fail)?
                .len() as u64;
            let mut insert = QueryBuilder::<DB>::new(sql::INSERT_ACCOUNTS);
            insert.push_values(run, |mut row, a| {
                row.push_bind(a.id.as_str().to_owned())
                    .push_bind(a.name.clone())
                    .push_bind(a.plan.clone())
                    .push_bind(a.renewal_at.map(At))
                    .push_bind(a.health.map(i64::from))
                    .push_bind(a.owner.clone())
                    .push_bind(Object(a.attributes.clone()))
                    .push_bind(a.availability.holidays.clone())
                    .push_bind(a.availability.quiet_until.map(At))
                    .push_bind(At(now))
                    .push_bind(At(now))
                    // Planned at the next tick.
                    .push_bind(At(DateTime::<Utc>::UNIX_EPOCH));
            });
            insert.push(sql::REPLACE_ACCOUNT);
            insert.push(B::ACCOUNT_MARK);
            insert.build().execute(&mut *tx).await.map_err(&fail)?;
            // Conditions and templates read the account: its contacts are
            // planned again at the next tick.
            let mut mark = QueryBuilder::<DB>::new(sql::SET_PLAN_AT);
            mark.push(B::MARK);
            mark.push(" WHERE ");
            DB::push_in(&mut mark, "account_id", ids);
            mark.build().execute(&mut *tx).await.map_err(&fail)?;
            outcome += WriteOutcome {
                inserted: run.len() as u64 - existing,
                existing,
            };
        }
        tx.commit().await.map_err(&fail)?;
        Ok(outcome)
    }

    async fn calendars_named(&self) -> Result<HashSet<String>, Error> {
        let named: Vec<String> = sqlx::query_scalar(sql::CALENDARS_NAMED)
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading the holiday calendars customers name"))?;
        Ok(named.into_iter().collect())
    }

    async fn roles_held(&self) -> Result<HashSet<String>, Error> {
        let joined: Vec<String> = sqlx::query_scalar(sql::ROLES_HELD)
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading the roles contacts hold"))?;
        Ok(joined
            .iter()
            .flat_map(|j| Roles::stored(j).names().to_vec())
            .collect())
    }

    async fn known_accounts(&self, ids: &[AccountId]) -> Result<HashSet<AccountId>, Error> {
        let fail = self.fail("reading accounts");
        let rows = shared::rows_among(self.reads(), sql::KNOWN_ACCOUNTS, "id", ids, "", &fail);
        let mut known = HashSet::new();
        for row in rows.await? {
            let id: String = row.try_get(0).map_err(&fail)?;
            known.insert(AccountId::parse(&id).map_err(Error::Corrupt)?);
        }
        Ok(known)
    }

    async fn accounts_of(&self, ids: &[AccountId]) -> Result<HashMap<AccountId, Account>, Error> {
        let fail = self.fail("reading accounts");
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut found = HashMap::with_capacity(ids.len());
        let rows = shared::rows_among(self.reads(), sql::ACCOUNTS_OF, "a.id", &ids, "", &fail);
        for row in rows.await? {
            let account = rows::account(&row, &fail)?;
            found.insert(account.record.id.clone(), account);
        }
        Ok(found)
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Account>, Error> {
        let fail = self.fail("reading an account");
        let row = sqlx::query(sql::ONE_ACCOUNT)
            .bind(id.as_str())
            .fetch_optional(self.reads())
            .await
            .map_err(&fail)?;
        row.map(|row| rows::account(&row, &fail)).transpose()
    }

    async fn accounts_page(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, Error> {
        let fail = self.fail("reading accounts");
        let rows = sqlx::query(sql::ACCOUNTS_PAGE)
            .bind(after.map_or("", AccountId::as_str))
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter().map(|row| rows::account(row, &fail)).collect()
    }

    async fn contacts_of_accounts(
        &self,
        ids: &[AccountId],
    ) -> Result<HashMap<AccountId, Vec<Customer>>, Error> {
        let fail = self.fail("reading accounts' contacts");
        let rows = shared::rows_among(
            self.reads(),
            sql::CONTACTS_OF_ACCOUNTS,
            "account_id",
            ids,
            " ORDER BY id",
            &fail,
        );
        let mut found: HashMap<AccountId, Vec<Customer>> = HashMap::new();
        for row in rows.await? {
            let contact = rows::customer(&row, &fail)?;
            if let Some(account) = contact.record.account_id.clone() {
                found.entry(account).or_default().push(contact);
            }
        }
        Ok(found)
    }

    async fn contacts_of(&self, id: &AccountId) -> Result<Vec<Customer>, Error> {
        let fail = self.fail("reading an account's contacts");
        let rows = sqlx::query(sql::CONTACTS_OF)
            .bind(id.as_str())
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter().map(|row| rows::customer(row, &fail)).collect()
    }
}
