//! Closing the loop: the signals the store records become alerts to people
//! and webhook deliveries to other systems. A pass routes what was recorded
//! since the last (once, whichever instance does it: `Signals::route`),
//! then sends what is due, each target's queue in order: a POST that
//! fails holds its endpoint's later deliveries back until it lands or is
//! given up, and never holds back mail or another endpoint.
//!
//! `rules` decides who hears of what, `alert` words it, and
//! `crate::webhook` signs and posts.

pub mod alert;
pub mod rules;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use serde::Serialize;

use crate::config::settings::WebhookFormat;
use crate::deliver::Deliverer;
use crate::deliver::transport::SendError;
use crate::domain::customer::CustomerId;
use crate::domain::message::{MessageFilter, MessageId};
use crate::domain::notification::{Channel, Notification, Outcome, retry_after};
use crate::domain::signal::Signal;
use crate::store::{self, Accounts, Customers, Outbox, Signals};
use crate::webhook::post::{Post, Poster};

use self::rules::{Facts, Routes};

/// Signals routed in one transaction.
const ROUTE_PAGE: u32 = 1000;

/// Rows of one endpoint's queue claimed at a time: posted one after the
/// other, in order (a thousand take well under a second on loopback, far
/// inside a claim's lease).
const PER_TARGET: u32 = 1000;

/// Successes recorded together.
const SETTLE_EVERY: usize = 100;

/// How one run of a queue may go on.
#[derive(Clone, Copy)]
struct Run<'a> {
    clock: Clock,
    /// Past it, the run gives back what it has not sent.
    deadline: DateTime<Utc>,
    stop: &'a CancellationToken,
}

impl Run<'_> {
    fn over(&self) -> bool {
        self.stop.is_cancelled() || self.clock.now() > self.deadline
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pass {
    /// Notifications routed from new signals.
    pub routed: u64,
    pub sent: u64,
    /// Failed this time; waiting for their next try.
    pub retrying: u64,
    /// Given up.
    pub failed: u64,
}

/// Routes and sends notifications.
pub struct Notifier {
    routes: Arc<Routes>,
    poster: Poster,
    /// This instance's name on its claims.
    owner: String,
    /// How long a claim holds; a POST or a mail takes far less.
    lease: Duration,
}

impl Notifier {
    pub fn new(routes: Arc<Routes>, owner: &str) -> Result<Self, String> {
        Ok(Self {
            routes,
            poster: Poster::new()?,
            owner: owner.to_owned(),
            lease: Duration::minutes(5),
        })
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Routes new signals, then sends what is due, reading the time from
    /// `clock` as it goes; on `stop`, it claims nothing more, settles what
    /// went and gives back what it did not try.
    pub async fn pass<S>(
        &self,
        store: &S,
        mailer: &Deliverer,
        clock: Clock,
        stop: &CancellationToken,
    ) -> Result<Pass, store::Error>
    where
        S: Signals + Customers + Accounts + Outbox + Sync,
    {
        let mut pass = Pass {
            routed: self.route(store, clock.now()).await?,
            ..Pass::default()
        };
        store.recover_notifications(clock.now()).await?;
        // Until nothing is due: a queue whose head failed waits for its
        // next try, so every round takes only what can go now.
        while !stop.is_cancelled() {
            let now = clock.now();
            let claimed = store
                .claim_notifications(&self.owner, now, now + self.lease, PER_TARGET)
                .await?;
            if claimed.is_empty() {
                break;
            }
            let mut queues: Vec<Vec<Notification>> = Vec::new();
            let mut at: HashMap<String, usize> = HashMap::new();
            for n in claimed {
                let i = *at.entry(n.target.clone()).or_insert_with(|| {
                    queues.push(Vec::new());
                    queues.len() - 1
                });
                queues[i].push(n);
            }
            // Past half the lease, a run stops and gives back the rest, so
            // no claim runs out while its rows are being sent.
            let deadline = now + self.lease / 2;
            let done = futures_util::future::join_all(queues.into_iter().map(|queue| {
                let run = Run {
                    clock,
                    deadline,
                    stop,
                };
                self.send_queue(store, mailer, queue, run)
            }))
            .await;
            for outcome in done {
                let outcome = outcome?;
                pass.sent += outcome.sent;
                pass.retrying += outcome.retrying;
                pass.failed += outcome.failed;
            }
        }
        if pass != Pass::default() {
            tracing::debug!(
                routed = pass.routed,
                sent = pass.sent,
                retrying = pass.retrying,
                failed = pass.failed,
                "notification pass"
            );
        }
        Ok(pass)
    }

    /// Routes every signal recorded since the last routing.
    async fn route<S>(&self, store: &S, now: DateTime<Utc>) -> Result<u64, store::Error>
    where
        S: Signals + Customers + Accounts + Outbox + Sync,
    {
        let mut routed = 0;
        loop {
            let (from, signals) = store.unrouted(ROUTE_PAGE).await?;
            let Some(last) = signals.last() else {
                return Ok(routed);
            };
            let to = last.after;
            let mut backlog = if self.routes.endpoints.is_empty() {
                HashMap::new()
            } else {
                store.backlogs().await?
            };
            let mut notes = Vec::new();
            for signal in &signals {
                let facts = if self.needs_facts(signal) {
                    self.facts(store, signal).await?
                } else {
                    Facts::default()
                };
                notes.extend(self.routes.route(signal, &facts, &mut backlog));
            }
            if !store.route(from, to, &notes, now).await? {
                // Another instance routed this page first.
                return Ok(routed);
            }
            routed += notes.len() as u64;
        }
    }

    /// Whether routing `signal` reads the people it is about: an alert
    /// might take it, or a Slack endpoint words it.
    fn needs_facts(&self, signal: &Signal) -> bool {
        signal.customer_id.is_some()
            && (self.routes.alerts_on(signal)
                || self.routes.endpoints.iter().any(|e| {
                    e.format == WebhookFormat::Slack
                        && e.events
                            .iter()
                            .any(|p| crate::domain::signal::matches(p, &signal.kind))
                }))
    }

    /// The customer a signal is about, their account and owner, and the
    /// message it answers.
    async fn facts<S>(&self, store: &S, signal: &Signal) -> Result<Facts, store::Error>
    where
        S: Customers + Accounts + Outbox + Sync,
    {
        let mut facts = Facts::default();
        let Some(id) = signal
            .customer_id
            .as_deref()
            .and_then(|c| CustomerId::parse(c).ok())
        else {
            return Ok(facts);
        };
        facts.customer = store.customer(&id).await?;
        let account = facts
            .customer
            .as_ref()
            .and_then(|c| c.record.account_id.clone());
        if let Some(account) = account {
            facts.account = store.account(&account).await?;
        }
        facts.owner = facts
            .account
            .as_ref()
            .and_then(|a| a.owner_in(&self.routes.team))
            .cloned();
        if let Some(message) = signal.field("message_id").and_then(MessageId::parse) {
            facts.survey = store.outgoing(message).await?.and_then(|m| m.survey);
            let filter = MessageFilter {
                customer: Some(id),
                ..MessageFilter::default()
            };
            let wanted = message.to_string();
            facts.message = store
                .messages(&filter)
                .await?
                .into_iter()
                .find(|m| m.id == wanted);
        }
        Ok(facts)
    }

    /// Sends one target's claimed rows in order; the first that fails is
    /// settled for a later try and the rest given back, still in order, as
    /// they are when the run must end.
    async fn send_queue<S: Signals + Sync>(
        &self,
        store: &S,
        mailer: &Deliverer,
        queue: Vec<Notification>,
        run: Run<'_>,
    ) -> Result<Pass, store::Error> {
        let mut pass = Pass::default();
        // What went is recorded a hundred at a time: a crash before that
        // posts those again (their ids deduplicate), and mail is claimed
        // one at a time.
        let mut sent = Vec::new();
        let mut rest = queue.into_iter().peekable();
        while rest.peek().is_some() && !run.over() {
            let Some(n) = rest.next() else { break };
            let now = run.clock.now();
            let outcome = self.send_one(&n, mailer, now).await;
            crate::telemetry::notification_attempt(&n.target, &outcome);
            if outcome == Outcome::Sent {
                pass.sent += 1;
                sent.push(n.id);
                if sent.len() >= SETTLE_EVERY {
                    store.settle_sent(&self.owner, &sent, now).await?;
                    sent.clear();
                }
                continue;
            }
            store.settle_sent(&self.owner, &sent, now).await?;
            sent.clear();
            store
                .settle_notification(&self.owner, &n.id, &outcome, now)
                .await?;
            if matches!(outcome, Outcome::Retry { .. }) {
                pass.retrying += 1;
            } else {
                pass.failed += 1;
            }
            break;
        }
        store
            .settle_sent(&self.owner, &sent, run.clock.now())
            .await?;
        let untried: Vec<String> = rest.map(|n| n.id).collect();
        store.release_notifications(&self.owner, &untried).await?;
        Ok(pass)
    }

    /// One attempt, and what it means for the next.
    async fn send_one(&self, n: &Notification, mailer: &Deliverer, now: DateTime<Utc>) -> Outcome {
        let attempts = n.attempts + 1;
        let (error, permanent, wait) = match n.channel {
            Channel::Email => {
                let subject = n.subject.as_deref().unwrap_or("tend alert");
                match mailer
                    .send_note(
                        &n.id,
                        &n.recipient,
                        n.reply_to.as_deref(),
                        subject,
                        &n.body,
                        now,
                    )
                    .await
                {
                    Ok(_) => return Outcome::Sent,
                    Err(SendError::Permanent { detail, .. }) => (detail, true, None),
                    Err(SendError::Transient { detail, .. }) => (detail, false, None),
                }
            }
            Channel::Webhook | Channel::Slack => {
                let Some(endpoint) = self.routes.endpoint(&n.recipient) else {
                    return Outcome::Failed {
                        error: format!(
                            "webhook {:?} is no longer configured; nothing was posted",
                            n.recipient
                        ),
                    };
                };
                let post = Post {
                    url: &endpoint.url,
                    id: &n.signal_id,
                    body: &n.body,
                    secret: match n.channel {
                        Channel::Webhook => endpoint.secret.as_ref(),
                        _ => None,
                    },
                    timeout: endpoint.timeout,
                };
                match self.poster.post(&post, now).await {
                    Ok(()) => return Outcome::Sent,
                    Err(e) => (e.detail, e.permanent, e.retry_after),
                }
            }
        };
        if permanent {
            return Outcome::Failed { error };
        }
        match retry_after(attempts) {
            Some(after) => {
                // An endpoint may ask for longer, but not to be left for
                // more than a day at a time.
                let asked = wait
                    .and_then(|w| Duration::from_std(w).ok())
                    .unwrap_or_default()
                    .min(Duration::hours(24));
                Outcome::Retry {
                    at: now + after.max(asked),
                    error,
                }
            }
            None => Outcome::Failed {
                error: format!("{error}; given up after {attempts} attempts over three days"),
            },
        }
    }
}
