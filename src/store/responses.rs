//! [`Responses`] for every backend: what customers answered and what it
//! does, decided once for both databases: which message a reply answers,
//! when soft bounces stop all mail, what an unsubscribe suppresses.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use sqlx::{QueryBuilder, Row};

use super::backend::{Backend, Dialect, any_dialect};
use super::column::At;
use super::{Error, Responses, rows, shared, sql};
use crate::domain::customer::CustomerId;
use crate::domain::feed::{Page, Position};
use crate::domain::inbound::soft_bounced_reason;
use crate::domain::message::{MessageId, ResponseView, Suppression};
use crate::domain::playbook::Survey;
use crate::domain::report::{Counts, Grouping, SurveyAnswer};
use crate::domain::response::{ResponseKind, Source};
use crate::domain::suppression::{Lift, Lifted, SuppressionFilter, SuppressionId, SuppressionView};

#[apply(any_dialect!)]
impl<B, DB> Responses for B {
    async fn record_response(
        &self,
        message: MessageId,
        response: &super::NewResponse,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error> {
        let fail = self.fail("recording a response");
        let mut tx = self.begin().await.map_err(&fail)?;
        let customer = if response.replace {
            sqlx::query_scalar(DB::CUSTOMER_OF_ANSWERED)
                .bind(message.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?
        } else {
            shared::customer_of(&mut *tx, message, &fail).await?
        };
        let Some(customer) = customer else {
            return Ok(None);
        };
        if response.replace {
            sqlx::query(sql::DELETE_RESPONSES_OF)
                .bind(message.to_string())
                .bind(response.kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        let view = ResponseView {
            id: uuid::Uuid::now_v7().to_string(),
            message_id: Some(message.to_string()),
            customer_id: Some(customer.clone()),
            kind: response.kind.as_str().to_owned(),
            value: response.value.clone(),
            comment: response.comment.clone(),
            received_at: now,
            source: response.source.as_str().to_owned(),
        };
        shared::insert_response::<DB>(&mut tx, self.listening(), response.kind, &view, None, &fail)
            .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(CustomerId::parse(&customer).map_err(Error::Corrupt)?))
    }

    async fn subscriptions(&self, message: MessageId) -> Result<Option<Vec<Suppression>>, Error> {
        let fail = self.fail("reading a customer's subscriptions");
        let customer = shared::customer_of(self.reads(), message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(sql::SUPPRESSIONS_OF)
            .bind(&customer)
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.into_iter()
            .map(super::suppression)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    async fn suppressions_of(&self, customer: &CustomerId) -> Result<Vec<Suppression>, Error> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(sql::SUPPRESSIONS_OF)
            .bind(customer.as_str())
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading a customer's suppressions"))?;
        rows.into_iter().map(super::suppression).collect()
    }

    async fn suppressed_among(
        &self,
        ids: &[CustomerId],
        category: &str,
    ) -> Result<HashSet<CustomerId>, Error> {
        let fail = self.fail("reading who left a category");
        let mut found = HashSet::new();
        for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
            let mut query = QueryBuilder::<DB>::new(sql::SUPPRESSED_AMONG);
            query.push_bind(category.to_owned());
            query.push(") AND ");
            DB::push_in(
                &mut query,
                "customer_id",
                chunk.iter().map(|id| id.as_str().to_owned()).collect(),
            );
            let rows: Vec<(String,)> = query
                .build_query_as()
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?;
            for (id,) in rows {
                found.insert(CustomerId::parse(&id).map_err(Error::Corrupt)?);
            }
        }
        Ok(found)
    }

    async fn set_preferences(
        &self,
        message: MessageId,
        choice: &super::Preferences,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error> {
        let fail = self.fail("recording a customer's preferences");
        let mut tx = self.begin().await.map_err(&fail)?;
        let customer = shared::customer_of(&mut *tx, message, &fail).await?;
        let Some(customer) = customer else {
            return Ok(None);
        };
        shared::apply_preferences::<DB>(
            &mut tx,
            self.listening(),
            message,
            &customer,
            choice,
            now,
            None,
            &fail,
        )
        .await?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(CustomerId::parse(&customer).map_err(Error::Corrupt)?))
    }

    async fn record_inbound(
        &self,
        mail: &super::InboundMail,
    ) -> Result<super::InboundRecorded, Error> {
        let fail = self.fail("recording inbound mail");
        let mut tx = self.begin().await.map_err(&fail)?;
        // The message it answers: the reply token names it outright; a
        // Message-ID of ours must match the stored one whole.
        let mut matched: Option<(MessageId, String)> = None;
        if let Some(id) = mail.by_token {
            let customer = shared::customer_of(&mut *tx, id, &fail).await?;
            matched = customer.map(|c| (id, c));
        }
        for (id, header_id) in &mail.by_reference {
            if matched.is_some() {
                break;
            }
            let customer: Option<String> = sqlx::query_scalar(sql::MESSAGE_BY_HEADER_ID)
                .bind(id.to_string())
                .bind(header_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?;
            matched = customer.map(|c| (*id, c));
        }
        // Mail to an erased person's message: kept (once) without its
        // bytes, and it records nothing of theirs again.
        let erased = match &matched {
            Some((_, c)) => sqlx::query_scalar::<_, String>(sql::IS_STAND_IN)
                .bind(c)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&fail)?
                .is_some(),
            None => false,
        };
        if erased {
            matched = None;
        }
        let message = matched.as_ref().map(|(id, _)| id.to_string());
        let empty = Vec::new();
        let kept = sqlx::query(sql::INSERT_INBOUND)
            .bind(mail.id.to_string())
            .bind(mail.source.as_str())
            .bind(At(mail.received_at))
            .bind(&mail.dedupe)
            .bind(mail.classification.as_str())
            .bind(&message)
            .bind(if erased { &empty } else { &mail.raw })
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        if DB::rows_affected(&kept) == 0 {
            return Ok(super::InboundRecorded::Duplicate);
        }
        let customer = matched.as_ref().map(|(_, c)| c.clone());
        if let Some(response) = mail.response.as_ref().filter(|_| !erased) {
            let view = ResponseView {
                id: uuid::Uuid::now_v7().to_string(),
                message_id: message.clone(),
                customer_id: customer.clone(),
                kind: response.kind.as_str().to_owned(),
                value: response.value.clone(),
                comment: response.comment.clone(),
                received_at: mail.received_at,
                source: mail.source.as_str().to_owned(),
            };
            shared::insert_response::<DB>(
                &mut tx,
                self.listening(),
                response.kind,
                &view,
                Some(mail.id.to_string()),
                &fail,
            )
            .await?;
            if let (ResponseKind::Bounce, Some(id)) = (response.kind, &message) {
                shared::tell_messages::<DB>(
                    &mut tx,
                    self.listening(),
                    "message.bounced",
                    vec![id.clone()],
                    mail.received_at,
                    &fail,
                )
                .await?;
            }
        }
        if let (Some((id, c)), super::Effect::Unsubscribe(choice)) = (&matched, &mail.effect) {
            shared::apply_preferences::<DB>(
                &mut tx,
                self.listening(),
                *id,
                c,
                choice,
                mail.received_at,
                Some(mail.id),
                &fail,
            )
            .await?;
        }
        let suppression = match (&customer, &mail.effect) {
            (Some(_), super::Effect::Suppress { reason, source }) => {
                Some((reason.clone(), *source))
            }
            (Some(c), super::Effect::SoftBounce { limit, since }) => {
                let count: i64 = sqlx::query_scalar(sql::COUNT_SOFT_BOUNCES)
                    .bind(c)
                    .bind(At(*since))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&fail)?;
                (count >= i64::from(*limit))
                    .then(|| (soft_bounced_reason(count, *since), Source::Bounce))
            }
            _ => None,
        };
        if let (Some(c), Some((reason, source))) = (&customer, &suppression) {
            sqlx::query(sql::INSERT_SUPPRESSION)
                .bind(c)
                .bind("*")
                .bind(reason)
                .bind(source.as_str())
                .bind(At(mail.received_at))
                .execute(&mut *tx)
                .await
                .map_err(&fail)?;
        }
        tx.commit().await.map_err(&fail)?;
        Ok(super::InboundRecorded::Kept {
            message: matched.map(|(id, _)| id),
            customer: customer
                .map(|c| CustomerId::parse(&c).map_err(Error::Corrupt))
                .transpose()?,
            suppressed: suppression.is_some(),
        })
    }

    async fn responses(&self, since: DateTime<Utc>) -> Result<Vec<ResponseView>, Error> {
        let fail = self.fail("reading responses");
        let rows = sqlx::query(sql::RESPONSES_SINCE)
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| rows::response_view(row, &fail))
            .collect()
    }

    async fn responses_page(
        &self,
        since: DateTime<Utc>,
        after: Position,
        limit: u32,
    ) -> Result<Page<ResponseView>, Error> {
        let fail = self.fail("reading a page of responses");
        let query = match B::DIALECT {
            sql::Dialect::Sqlite => sqlx::query(sql::RESPONSES_PAGE_SQLITE),
            sql::Dialect::Postgres => sqlx::query(sql::RESPONSES_PAGE_POSTGRES).bind(after.tx),
        };
        let query = query
            .bind(after.seq)
            .bind(At(since))
            .bind(i64::from(limit) + 1);
        let rows = shared::bind_writing_elsewhere(self.reads(), query, &fail)
            .await?
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok((
                    rows::position(row, &fail)?,
                    rows::response_view(row, &fail)?,
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Page::of(after, rows, limit))
    }

    async fn suppressions_page(
        &self,
        filter: &SuppressionFilter,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Page<SuppressionView>, Error> {
        let fail = self.fail("reading a page of suppressions");
        let (customer, category) = after
            .as_ref()
            .map_or(("", ""), |id| (id.customer.as_str(), id.category.as_str()));
        let query = match &filter.customer {
            // One customer's rows are a range of the key: from its start,
            // or after the cursor's category when the cursor is theirs.
            Some(of) if customer <= of.as_str() => sqlx::query_as(sql::SUPPRESSIONS_PAGE_OF)
                .bind(of.as_str())
                .bind(if customer == of.as_str() {
                    category
                } else {
                    ""
                })
                .bind(filter.category.as_deref()),
            _ => sqlx::query_as(sql::SUPPRESSIONS_PAGE)
                .bind(customer)
                .bind(category)
                .bind(filter.customer.as_ref().map(CustomerId::as_str))
                .bind(filter.category.as_deref()),
        };
        let rows: Vec<(String, String, String, String, String, At)> = query
            .bind(i64::from(limit) + 1)
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        let has_more = rows.len() > limit as usize;
        let data: Vec<SuppressionView> = rows
            .into_iter()
            .take(limit as usize)
            .map(
                |(customer_id, email, category, reason, source, At(created_at))| SuppressionView {
                    id: format!("{category}:{customer_id}"),
                    customer_id,
                    email,
                    category,
                    reason,
                    source,
                    created_at,
                },
            )
            .collect();
        let next_cursor = data
            .last()
            .map(|s| s.id.clone())
            .or_else(|| after.map(|id| id.to_string()))
            .unwrap_or_default();
        Ok(Page {
            data,
            next_cursor,
            has_more,
        })
    }

    async fn lift_suppression(
        &self,
        id: &SuppressionId,
        lift: &Lift,
        now: DateTime<Utc>,
    ) -> Result<Option<Lifted>, Error> {
        let fail = self.fail("lifting a suppression");
        let mut tx = self.begin().await.map_err(&fail)?;
        let found: Option<(String, String, At)> = sqlx::query_as(sql::LIFT_SUPPRESSION)
            .bind(id.customer.as_str())
            .bind(id.category.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(&fail)?;
        let Some((reason, source, At(suppressed_at))) = found else {
            return Ok(None);
        };
        sqlx::query(sql::INSERT_LIFT)
            .bind(id.customer.as_str())
            .bind(id.category.as_str())
            .bind(reason.as_str())
            .bind(source.as_str())
            .bind(At(suppressed_at))
            .bind(At(now))
            .bind(lift.by.as_str())
            .bind(lift.why.as_str())
            .execute(&mut *tx)
            .await
            .map_err(&fail)?;
        tx.commit().await.map_err(&fail)?;
        Ok(Some(Lifted {
            customer_id: id.customer.as_str().to_owned(),
            category: id.category.clone(),
            reason,
            source,
            suppressed_at,
            lifted_at: now,
            lifted_by: lift.by.clone(),
            why: lift.why.clone(),
        }))
    }

    async fn lifts_of(&self, customer: &CustomerId) -> Result<Vec<Lifted>, Error> {
        let rows: Vec<(String, String, String, At, At, String, String)> =
            sqlx::query_as(sql::LIFTS_OF)
                .bind(customer.as_str())
                .fetch_all(self.reads())
                .await
                .map_err(self.fail("reading a customer's lifted suppressions"))?;
        Ok(rows
            .into_iter()
            .map(
                |(category, reason, source, At(suppressed_at), At(lifted_at), lifted_by, why)| {
                    Lifted {
                        customer_id: customer.as_str().to_owned(),
                        category,
                        reason,
                        source,
                        suppressed_at,
                        lifted_at,
                        lifted_by,
                        why,
                    }
                },
            )
            .collect())
    }

    async fn survey_answers_from(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, Survey, String, DateTime<Utc>)>, Error> {
        let fail = self.fail("reading customers' survey answers");
        let rows = shared::rows_among(
            self.reads(),
            sql::SURVEY_ANSWERS_FROM,
            "customer_id",
            customers,
            sql::SURVEY_ANSWERS_ORDER,
            &fail,
        );
        let mut answers = Vec::new();
        for row in rows.await? {
            let customer: String = row.try_get(0usize).map_err(&fail)?;
            let survey: String = row.try_get(1usize).map_err(&fail)?;
            let value: String = row.try_get(2usize).map_err(&fail)?;
            let At(at) = row.try_get(3usize).map_err(&fail)?;
            let survey = Survey::parse(&survey)
                .ok_or_else(|| Error::Corrupt(format!("survey {survey:?}")))?;
            let customer = CustomerId::parse(&customer).map_err(Error::Corrupt)?;
            answers.push((customer, survey, value, at));
        }
        // Chunks are each in order; together, by time (a stable sort keeps
        // the order of answers at one instant).
        answers.sort_by_key(|a| a.3);
        Ok(answers)
    }

    async fn responses_from(&self, customers: &[CustomerId]) -> Result<Vec<ResponseView>, Error> {
        let fail = self.fail("reading customers' responses");
        let rows = shared::rows_among(
            self.reads(),
            sql::RESPONSES_FROM,
            "customer_id",
            customers,
            sql::RESPONSES_ORDER,
            &fail,
        );
        let mut responses = rows
            .await?
            .iter()
            .map(|row| rows::response_view(row, &fail))
            .collect::<Result<Vec<_>, _>>()?;
        // Each chunk is in order; together, by when they came.
        responses.sort_by_key(|r| r.received_at);
        Ok(responses)
    }

    async fn message_counts(&self, since: DateTime<Utc>) -> Result<Vec<(String, i64)>, Error> {
        sqlx::query_as(sql::REPORT_STATUSES)
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("counting messages"))
    }

    async fn step_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64, i64)>, Error> {
        sqlx::query_as(sql::REPORT_STEPS)
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("counting messages per step"))
    }

    async fn survey_answers_since(&self, since: DateTime<Utc>) -> Result<Vec<SurveyAnswer>, Error> {
        let fail = self.fail("reading survey answers");
        let rows = sqlx::query(sql::SURVEY_ANSWERS_SINCE)
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                Ok(SurveyAnswer {
                    received_at: row.try_get::<At, _>(0usize).map_err(&fail)?.0,
                    survey: row.try_get(1usize).map_err(&fail)?,
                    value: row.try_get(2usize).map_err(&fail)?,
                })
            })
            .collect()
    }

    async fn latest_replies(&self, limit: u32) -> Result<Vec<ResponseView>, Error> {
        latest(
            self,
            sql::LATEST_REPLIES,
            limit,
            "reading the latest replies",
        )
        .await
    }

    async fn latest_detractors(&self, limit: u32) -> Result<Vec<ResponseView>, Error> {
        latest(
            self,
            sql::LATEST_DETRACTORS,
            limit,
            "reading the latest detractors",
        )
        .await
    }

    async fn report_counts(&self, since: DateTime<Utc>) -> Result<Counts, Error> {
        let fail = self.fail("counting for the report");
        Ok(Counts {
            statuses: sqlx::query_as(sql::REPORT_STATUSES)
                .bind(At(since))
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?,
            steps: sqlx::query_as(sql::REPORT_STEPS)
                .bind(At(since))
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?,
            answers: sqlx::query_as(sql::REPORT_ANSWERS)
                .bind(At(since))
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?,
            kinds: sqlx::query_as(sql::REPORT_KINDS)
                .bind(At(since))
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?,
        })
    }

    async fn report_by(
        &self,
        grouping: Grouping,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, Counts)>, Error> {
        let fail = self.fail("counting for the report");
        let [steps, answers, kinds] = sql::report_by(grouping);
        let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
        let steps: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(steps))
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        for (group, sent, answered) in steps {
            groups.entry(group).or_default().steps.push((
                String::new(),
                String::new(),
                sent,
                answered,
            ));
        }
        let answers: Vec<(String, String, String, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(answers))
                .bind(At(since))
                .fetch_all(self.reads())
                .await
                .map_err(&fail)?;
        for (group, survey, value, n) in answers {
            groups
                .entry(group)
                .or_default()
                .answers
                .push((survey, value, n));
        }
        let kinds: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(kinds))
            .bind(At(since))
            .fetch_all(self.reads())
            .await
            .map_err(&fail)?;
        for (group, kind, n) in kinds {
            groups.entry(group).or_default().kinds.push((kind, n));
        }
        Ok(groups.into_iter().collect())
    }

    async fn responses_of(&self, message: MessageId) -> Result<Vec<super::ResponseRow>, Error> {
        sqlx::query_as(sql::RESPONSES_OF)
            .bind(message.to_string())
            .fetch_all(self.reads())
            .await
            .map_err(self.fail("reading responses"))
    }
}

/// The newest `limit` responses `statement` picks, newest first.
#[apply(any_dialect!)]
async fn latest<DB: Dialect>(
    store: &impl Backend<DB = DB>,
    statement: &'static str,
    limit: u32,
    doing: &'static str,
) -> Result<Vec<ResponseView>, Error> {
    let fail = store.fail(doing);
    let rows = sqlx::query(statement)
        .bind(i64::from(limit))
        .fetch_all(store.reads())
        .await
        .map_err(&fail)?;
    rows.iter()
        .map(|row| rows::response_view(row, &fail))
        .collect()
}
