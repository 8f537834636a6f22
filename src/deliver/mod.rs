//! The delivery worker: claim → decide → render → send → record.
//!
//! One pass ([`Deliverer::deliver_once`]) recovers sends a stopped instance
//! left unfinished, then repeatedly leases a batch of due messages (renewing
//! the leases while it holds them, so they can be short), asks
//! the delivery policy what may go now (send window, frequency cap,
//! priority, expiry, suppression), renders what may, commits `sending`, hands
//! the messages to the transport with bounded concurrency, and records each
//! outcome with its attempt. Tests call it with an injected `now`; the
//! daemon calls it in a loop.

mod composer;
pub mod dkim;
pub mod mime;
pub mod retry;
pub mod smtp;
mod transfer;
pub mod transport;
mod triage;
mod unmarked;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt};
use lettre::Address;
use lettre::message::Mailbox;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Loaded, settings};
use crate::domain::account::{Account, AccountFacts, AccountId, TeamMember};
use crate::domain::message::{Attempt, AttemptOutcome, Outgoing, Settle, Status, Suppression};
use crate::domain::playbook::{Sender, Survey};
use crate::domain::window::Windows;
use crate::render::{Rendered, Renderer};
use crate::store::{self, Accounts, Outbox};
use crate::token::Signer;

pub use self::composer::Draft;
use self::composer::{Composed, Composer};
use self::transport::{SendError, Transport};

/// The most messages composed and sent at once: see
/// [`crate::config::settings::MOST_AT_ONCE`].
const CHUNK_MAX: usize = crate::config::settings::MOST_AT_ONCE;
/// Messages leased per round trip to the store.
const BATCH: u32 = 1000;
/// The most chunks whose outcomes are recorded at once, each in a
/// transaction of its own (fewer where the store writes one at a time).
const RECORDS_AT_ONCE: usize = 2;
/// Why a message claimed by a stopping instance waits.
const RELEASED: &str = "waiting: tend stopped before sending it; the next delivery pass sends it";

/// The leases a pass takes. They run on the pass's clock plus the time the
/// pass has taken: `now` stays the pass's instant (what is due, what is
/// recorded), but a lease taken or renewed late in a long pass must still
/// last its length.
struct Lease {
    now: DateTime<Utc>,
    started: std::time::Instant,
    length: Duration,
}

impl Lease {
    fn until(&self) -> DateTime<Utc> {
        self.now + Duration::from_std(self.started.elapsed()).unwrap_or_default() + self.length
    }
}

/// What every stage of one delivery pass shares.
#[derive(Clone, Copy)]
struct Pass<'a> {
    lease: &'a Lease,
    stop: &'a CancellationToken,
    busy: &'a Busy,
    unmarked: &'a unmarked::Unmarked,
}

/// How long each stage of a pass was busy, summed over its chunks. The
/// stages run side by side, so these add up to more than the pass: the
/// largest is what holds the pass back.
#[derive(Debug, Default)]
struct Busy {
    /// Claiming, reading recent sends and open incidents, deciding.
    claim: AtomicU64,
    /// Rendering and composing (on blocking threads).
    compose: AtomicU64,
    /// Committing `sending` before each chunk goes.
    mark: AtomicU64,
    /// SMTP transactions (or files), chunk by chunk.
    send: AtomicU64,
    /// Recording outcomes.
    record: AtomicU64,
}

impl Busy {
    fn add(stage: &AtomicU64, since: std::time::Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stage.fetch_add(nanos, Ordering::Relaxed);
    }

    fn secs(stage: &AtomicU64) -> f64 {
        stage.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Logged (at debug: the daemon already says what each pass did) once
    /// a pass that did something ends: where its time went.
    fn report(&self, outcome: &DeliverOutcome) {
        if outcome.rewritten() == 0 {
            return;
        }
        tracing::debug!(
            sent = outcome.sent,
            claim_s = Self::secs(&self.claim),
            compose_s = Self::secs(&self.compose),
            mark_s = Self::secs(&self.mark),
            send_s = Self::secs(&self.send),
            record_s = Self::secs(&self.record),
            "delivery stages (busy time of each, side by side)"
        );
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliverOutcome {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub suppressed: u64,
    pub expired: u64,
    /// Put back to wait for the send window or the frequency cap.
    pub held: u64,
    /// Found `sending` after a stop: fate unknown (or resent).
    pub recovered: u64,
}

impl DeliverOutcome {
    /// Outbox rows the pass rewrote: every message it recorded or put back.
    pub fn rewritten(&self) -> u64 {
        self.sent
            + self.deferred
            + self.failed
            + self.suppressed
            + self.expired
            + self.held
            + self.recovered
    }

    /// Counts what became of one message; true when it reached a status
    /// (rather than going back to wait).
    fn count(&mut self, settle: &Settle, held: bool) -> bool {
        match settle.status {
            Status::Sent => self.sent += 1,
            Status::Failed => self.failed += 1,
            Status::Suppressed => self.suppressed += 1,
            Status::Expired => self.expired += 1,
            Status::Deferred if settle.attempt.is_some() => self.deferred += 1,
            _ => {
                if held {
                    self.held += 1;
                }
                return false;
            }
        }
        true
    }
}

/// Everything delivery needs, prepared once.
pub struct Deliverer {
    composer: Arc<Composer>,
    transport: Transport,
    /// This instance's name on its leases.
    owner: String,
    rules: triage::Rules,
    max_retry_age: Duration,
    /// How long a claim holds (`delivery.lease`) unless renewed; a pass
    /// renews its claims every third of it. A message whose lease runs out
    /// while `sending` belonged to an instance that stopped.
    lease: Duration,
    resend_unknown: bool,
    concurrency: usize,
    rate_per_second: u32,
    /// The steps that go out as someone other than `mail.from`.
    senders: HashMap<(String, String), Sender>,
    /// The success team, owners of accounts.
    team: Vec<TeamMember>,
    /// Whether a message needs its account before it is composed: a
    /// template reads `account` or `sender`, or a step sends as a member.
    reads_account: bool,
}

impl Deliverer {
    /// `windows` are the send windows in force (the planner's).
    pub fn new(
        loaded: &Loaded,
        renderer: Arc<Renderer>,
        signer: Signer,
        windows: Windows,
        senders: HashMap<(String, String), Sender>,
    ) -> Result<Self, String> {
        let s = &loaded.settings;
        let (name, from) = crate::config::parse_mailbox(&s.mail.from)?;
        let from_address: Address = from
            .as_str()
            .parse()
            .map_err(|e| format!("mail.from: {e}"))?;
        let (_, reply_to) = crate::config::parse_mailbox(&s.mail.reply_to)?;
        let reply_to: Address = reply_to
            .as_str()
            .parse()
            .map_err(|e| format!("mail.reply_to: {e}"))?;
        let transport = match s.mail.transport {
            settings::Transport::File => Transport::File {
                dir: s.mail.file.dir.clone().into(),
            },
            settings::Transport::Smtp => {
                let smtp = &s.mail.smtp;
                let credentials = (!smtp.username.is_empty()).then(|| {
                    let password = loaded
                        .secrets
                        .smtp_password
                        .as_ref()
                        .map(|p| p.expose().to_owned())
                        .unwrap_or_default();
                    (smtp.username.clone(), password)
                });
                Transport::Smtp(smtp::SmtpPool::new(smtp::SmtpSettings {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    tls: smtp.tls,
                    credentials,
                    pool_size: smtp.pool_size,
                    timeout: smtp.timeout.as_std(),
                    hello: from_address.domain().to_owned(),
                }))
            }
        };
        let reads_account = renderer.reads_account() || !senders.is_empty();
        Ok(Self {
            senders,
            team: s.team.clone(),
            reads_account,
            composer: Arc::new(Composer {
                renderer,
                signer,
                from: Mailbox::new((!name.is_empty()).then_some(name), from_address),
                reply_to,
                company: s.company.name.clone(),
                dkim: s
                    .mail
                    .dkim
                    .as_ref()
                    .map(dkim::signer)
                    .transpose()
                    .map_err(|e| e.to_string())?,
            }),
            transport,
            // A one-shot command's own: nothing releases it at a start, and
            // it never shares a name with a running daemon. The daemon
            // claims under its stable instance name (`claiming_as`).
            owner: format!(
                "{}-{}",
                crate::config::hostname(),
                uuid::Uuid::now_v7().simple()
            ),
            rules: triage::Rules {
                windows,
                policy: s.delivery.policy(),
            },
            max_retry_age: s.delivery.max_retry_age.as_chrono(),
            lease: s.delivery.lease.as_chrono(),
            resend_unknown: s.delivery.resend_unknown,
            concurrency: s.delivery.concurrency.max(1) as usize,
            rate_per_second: s.delivery.rate_per_second,
        })
    }

    /// Gives each message what its template and sender need: the
    /// contact's account with its owner (their own when they have none),
    /// and who it goes out as, by its step's `from`. Reads the accounts
    /// only when a template or a step needs them.
    pub async fn address(
        &self,
        store: &impl Accounts,
        messages: &mut [Outgoing],
    ) -> Result<(), store::Error> {
        if !self.reads_account {
            return Ok(());
        }
        // An account-scope message speaks of the account it was planned
        // for; any other, of the contact's account now.
        let account_of = |m: &Outgoing| {
            m.planned_for
                .clone()
                .or_else(|| m.customer.record.account_id.clone())
        };
        let ids: Vec<AccountId> = messages.iter().filter_map(account_of).collect();
        let accounts = if ids.is_empty() {
            HashMap::new()
        } else {
            store.accounts_of(&ids).await?
        };
        let mut facts: HashMap<AccountId, Arc<AccountFacts>> = HashMap::new();
        for m in messages {
            let from = self
                .senders
                .get(&(m.key.playbook.clone(), m.key.step.clone()));
            let Some(id) = account_of(m) else {
                // A person of their own: the renderer reads them as their
                // account, and they have no owner.
                m.sender = self.sender(from, None);
                continue;
            };
            let account = facts.entry(id).or_insert_with_key(|id| {
                let account = accounts
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| Account::of_contact(&m.customer));
                Arc::new(AccountFacts::with_team(account, &self.team))
            });
            m.sender = self.sender(from, account.owner.as_ref());
            m.account = Some(Arc::clone(account));
        }
        Ok(())
    }

    /// Who a step with `from` goes out as, for an account with `owner`:
    /// `None` is `mail.from` (also for `owner` when the account has none).
    fn sender(&self, from: Option<&Sender>, owner: Option<&TeamMember>) -> Option<TeamMember> {
        match from? {
            Sender::Configured => None,
            Sender::Owner => owner.cloned(),
            Sender::Member(id) => self.team.iter().find(|m| &m.id == id).cloned(),
        }
    }

    /// Claims under `owner`, the daemon's stable instance name, so that
    /// the instance can release its claims when it starts again after a
    /// crash. Only one live process may use a name (see
    /// [`crate::daemon::instance::resume`]).
    /// The name its claims are held under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn claiming_as(mut self, owner: &str) -> Self {
        owner.clone_into(&mut self.owner);
        self
    }

    /// One delivery pass at `now`: everything due goes, waits, or ends with
    /// a reason.
    ///
    /// Five stages run side by side so the SMTP connections never wait for
    /// the store or the templates: one claims and decides a batch at a
    /// time; one composes (on blocking threads) a chunk at a time; one
    /// commits each chunk `sending`; one sends it; one records outcomes
    /// (two chunks at once where the store writes side by side). The
    /// channel to the sender holds one chunk, so at most three chunks are
    /// in the mail client's hands or about to be (one being sent, one
    /// waiting, one being committed). With the sent chunks whose outcomes
    /// wait to be recorded (two queued, two being recorded), at most seven
    /// chunks are `sending` at once: the set a crash could leave `unknown`.
    pub async fn deliver_once(
        &self,
        store: &(impl Outbox + Accounts),
        now: DateTime<Utc>,
    ) -> Result<DeliverOutcome, store::Error> {
        self.deliver_until(store, now, &CancellationToken::new())
            .await
    }

    /// [`Self::deliver_once`], stopping early when `stop` is cancelled: no
    /// new claims, messages claimed but not yet committed `sending` are
    /// released to wait for the next pass, and the chunks already handed to
    /// the transport finish and are recorded.
    pub async fn deliver_until(
        &self,
        store: &(impl Outbox + Accounts),
        now: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<DeliverOutcome, store::Error> {
        let recovered = store.recover_sending(now, self.resend_unknown).await?;
        if recovered > 0 {
            tracing::warn!(
                count = recovered,
                resend = self.resend_unknown,
                "found messages left mid-send by a stopped instance"
            );
        }
        let lease = &Lease {
            now,
            started: std::time::Instant::now(),
            length: self.lease,
        };
        // Ends the renewals once every claim of the pass is settled.
        let settled = CancellationToken::new();
        let busy = &Busy::default();
        let unmarked = &unmarked::Unmarked::default();
        let pass = Pass {
            lease,
            stop,
            busy,
            unmarked,
        };
        let (to_compose, mut composing) = mpsc::channel::<Vec<Outgoing>>(1);
        let (to_mark, mut marking) = mpsc::channel::<Vec<Composed>>(1);
        let (to_send, mut sending) = mpsc::channel::<Vec<Composed>>(1);
        let (to_record, mut recording) = mpsc::channel::<(Vec<Settle>, bool)>(2);
        let record_waiting = to_record.clone();
        let record_early = to_record.clone();
        let record_released = to_record.clone();
        // Its own stage, so the next batch is claimed while this one is
        // composed.
        let claim = async move {
            let result = self
                .claim_batches(store, pass, &to_compose, &record_waiting)
                .await;
            drop(to_compose);
            drop(record_waiting);
            result
        };
        let compose = async move {
            self.compose_batches(pass, &mut composing, &to_mark, &record_early)
                .await;
            drop(to_mark);
            drop(record_early);
            Ok::<(), store::Error>(())
        };
        // Its own stage, so the next chunk is claimed and composed while
        // this one's `sending` commits.
        let mark = async move {
            while let Some(chunk) = marking.recv().await {
                let Some(marked) = self.mark(store, pass, chunk, &record_released).await? else {
                    break;
                };
                if !marked.is_empty() && to_send.send(marked).await.is_err() {
                    break;
                }
            }
            drop(to_send);
            drop(record_released);
            Ok::<(), store::Error>(())
        };
        let send = async move {
            while let Some(chunk) = sending.recv().await {
                let started = std::time::Instant::now();
                let settles = self.send_chunk(chunk, now).await;
                Busy::add(&busy.send, started);
                if to_record.send((settles, false)).await.is_err() {
                    break;
                }
            }
            drop(to_record);
            Ok::<(), store::Error>(())
        };
        // Two chunks' outcomes are recorded at once where the store writes
        // side by side: recording is the heaviest write of a message, and
        // on PostgreSQL one transaction keeps one of the server's cores
        // busy.
        let records_at_once = RECORDS_AT_ONCE.min(store.writes_at_once()).max(1);
        let record = async {
            let mut outcome = DeliverOutcome {
                recovered,
                ..DeliverOutcome::default()
            };
            let counted = &mut outcome;
            futures_util::stream::poll_fn(|cx| recording.poll_recv(cx))
                .map(|(settles, held)| {
                    for s in &settles {
                        if counted.count(s, held) {
                            crate::telemetry::message_settled(&s.playbook, s.status);
                        }
                    }
                    async move {
                        let started = std::time::Instant::now();
                        store.settle(&self.owner, &settles, now).await?;
                        Busy::add(&busy.record, started);
                        Ok::<(), store::Error>(())
                    }
                })
                .buffer_unordered(records_at_once)
                .try_collect::<()>()
                .await?;
            settled.cancel();
            Ok::<DeliverOutcome, store::Error>(outcome)
        };
        let renew = self.renew(store, lease, &settled);
        let ((), (), (), (), mut outcome, ()) =
            tokio::try_join!(claim, compose, mark, send, record, renew)?;
        // A pass that sent ends as it began, looking for sends another
        // instance left unfinished while this one was busy.
        if outcome.sent + outcome.deferred + outcome.failed > 0 {
            outcome.recovered += store.recover_sending(now, self.resend_unknown).await?;
        }
        busy.report(&outcome);
        Ok(outcome)
    }

    /// Renews every claim of this worker, every third of the lease, until
    /// `settled`: a batch that takes longer to send than a lease is never
    /// taken from a live instance. A renewal that fails is logged and tried
    /// again at the next turn (the claims hold a lease's length meanwhile).
    async fn renew(
        &self,
        store: &(impl Outbox + Accounts),
        lease: &Lease,
        settled: &CancellationToken,
    ) -> Result<(), store::Error> {
        let every = (lease.length / 3)
            .to_std()
            .unwrap_or_default()
            .max(StdDuration::from_secs(1));
        let mut turns = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = settled.cancelled() => return Ok(()),
                _ = turns.tick() => {}
            }
            if let Err(e) = store.renew_claims(&self.owner, lease.until()).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not renew this instance's claims on messages; trying again in a moment"
                );
            }
        }
    }

    /// Claims and decides until nothing is due, handing what may go on to
    /// be composed, and what must wait to be recorded.
    async fn claim_batches(
        &self,
        store: &(impl Outbox + Accounts),
        pass: Pass<'_>,
        to_compose: &mpsc::Sender<Vec<Outgoing>>,
        to_record: &mpsc::Sender<(Vec<Settle>, bool)>,
    ) -> Result<(), store::Error> {
        let now = pass.lease.now;
        // Closed channels mean a later stage failed: stop, its error wins.
        while !pass.stop.is_cancelled() {
            let started = std::time::Instant::now();
            let batch = store
                .claim(&self.owner, now, pass.lease.until(), BATCH)
                .await?;
            if batch.is_empty() {
                break;
            }
            let ids: Vec<_> = batch
                .iter()
                .filter(|m| !m.urgent)
                .map(|m| m.customer.record.id.clone())
                .collect();
            // Earlier batches' sends not yet committed count too.
            let sent = {
                let _turn = pass.unmarked.turn().await;
                let mut sent = store.sent_since(&ids, now - self.rules.policy.per).await?;
                pass.unmarked.count_into(&mut sent, &ids, now);
                sent
            };
            // Only read when it can matter; the policy decides what it holds.
            let incidents = if self.rules.policy.quiet_during_incidents {
                store.quiet_customers(&ids).await?
            } else {
                std::collections::HashMap::new()
            };
            let (mut ready, waiting) = triage::triage(batch, &sent, &incidents, &self.rules, now);
            self.address(store, &mut ready).await?;
            pass.unmarked.add(&ready);
            Busy::add(&pass.busy.claim, started);
            if !waiting.is_empty() && to_record.send((waiting, true)).await.is_err() {
                break;
            }
            if !ready.is_empty() && to_compose.send(ready).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Composes each claimed batch a chunk at a time (on blocking
    /// threads), handing chunks on to be marked `sending`. After a stop,
    /// what is left of a batch, and every batch still to come, is released
    /// to wait: leased, never started.
    async fn compose_batches(
        &self,
        pass: Pass<'_>,
        composing: &mut mpsc::Receiver<Vec<Outgoing>>,
        to_mark: &mpsc::Sender<Vec<Composed>>,
        to_record: &mpsc::Sender<(Vec<Settle>, bool)>,
    ) {
        let now = pass.lease.now;
        // Closed channels mean a later stage failed: stop, its error wins.
        while let Some(ready) = composing.recv().await {
            let mut ready = ready.into_iter().peekable();
            while ready.peek().is_some() {
                if pass.stop.is_cancelled() {
                    let released: Vec<Settle> = ready
                        .by_ref()
                        .map(|m| Settle::hold(&m, m.not_before.min(now), RELEASED.into()))
                        .collect();
                    if to_record.send((released, true)).await.is_err() {
                        return;
                    }
                    break;
                }
                let chunk: Vec<Outgoing> = ready
                    .by_ref()
                    .take(self.concurrency.min(CHUNK_MAX))
                    .collect();
                let composer = Arc::clone(&self.composer);
                let started = std::time::Instant::now();
                let results = tokio::task::spawn_blocking(move || composer.compose_all(chunk, now))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                Busy::add(&pass.busy.compose, started);
                let mut composed = Vec::with_capacity(results.len());
                let mut failed = Vec::new();
                for result in results {
                    match result {
                        Ok(c) => composed.push(c),
                        Err(failure) => {
                            let (m, reason) = *failure;
                            pass.unmarked.remove([&m]);
                            failed.push(Settle::end(&m, Status::Failed, reason));
                        }
                    }
                }
                if !failed.is_empty() && to_record.send((failed, false)).await.is_err() {
                    return;
                }
                if !composed.is_empty() && to_mark.send(composed).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Commits `sending` for a composed chunk before any of its SMTP
    /// transactions starts, and gives back what may go: `None` when a
    /// later stage is gone. A chunk that meets a stop is released to wait,
    /// as claimed messages not yet composed are.
    async fn mark(
        &self,
        store: &(impl Outbox + Accounts),
        pass: Pass<'_>,
        mut composed: Vec<Composed>,
        to_record: &mpsc::Sender<(Vec<Settle>, bool)>,
    ) -> Result<Option<Vec<Composed>>, store::Error> {
        let now = pass.lease.now;
        if pass.stop.is_cancelled() {
            let released: Vec<Settle> = composed
                .iter()
                .map(|c| Settle::hold(&c.message, c.message.not_before.min(now), RELEASED.into()))
                .collect();
            return Ok(to_record
                .send((released, true))
                .await
                .ok()
                .map(|()| Vec::new()));
        }
        let ids: Vec<_> = composed.iter().map(|c| c.message.id).collect();
        let started = std::time::Instant::now();
        // Each renewal is a row written per message: only the leases with
        // less than half a lease left from this moment are renewed; the
        // others outlast the chunk's sending, and the pass's own renewals
        // keep them alive after that.
        let until = pass.lease.until();
        let renew_before = until - pass.lease.length / 2;
        let marked = {
            let _turn = pass.unmarked.turn().await;
            let marked = store
                .begin_sending(&self.owner, &ids, now, until, renew_before)
                .await?;
            // Committed: the store counts them now (and those not marked
            // do not go).
            pass.unmarked.remove(composed.iter().map(|c| &c.message));
            marked
        };
        Busy::add(&pass.busy.mark, started);
        if marked.len() < composed.len() {
            // Their lease ran out and another instance has them now.
            let marked: std::collections::HashSet<_> = marked.into_iter().collect();
            let before = composed.len();
            composed.retain(|c| marked.contains(&c.message.id));
            tracing::warn!(
                count = before - composed.len(),
                "messages whose lease ran out before their turn (renewals failed, or the process stalled) were left to the instance that took them"
            );
        }
        Ok(Some(composed))
    }

    /// Sends a chunk (over the SMTP pool's connections, or
    /// `delivery.concurrency` files at a time) and says what became of
    /// each message.
    async fn send_chunk(&self, chunk: Vec<Composed>, now: DateTime<Utc>) -> Vec<Settle> {
        let started = std::time::Instant::now();
        let envelopes: Vec<_> = chunk
            .iter()
            .map(|c| transport::Envelope {
                name: c.message.id.0.simple().to_string(),
                to: &c.to,
                bytes: &c.bytes,
            })
            .collect();
        let results = self
            .transport
            .send_all(&self.composer.from.email, &envelopes, self.concurrency)
            .await;
        let settles = chunk
            .iter()
            .zip(results)
            .map(|(c, (result, took))| {
                crate::telemetry::message_sent_in(took);
                self.settle_sent(&c.message, c.subject.clone(), result, now)
            })
            .collect();
        self.pace(chunk.len(), started).await;
        settles
    }

    /// Sends a note to someone on the team (an alert) through the same
    /// transport, signed as every other mail: `id` names it (its file, its
    /// Message-ID). A transient error is worth another try.
    pub async fn send_note(
        &self,
        id: &str,
        to: &str,
        reply_to: Option<&str>,
        subject: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<transport::Accepted, SendError> {
        let permanent = |detail: String| SendError::Permanent { code: 0, detail };
        let to: Address = to
            .parse()
            .map_err(|e| permanent(format!("the address {to:?} cannot be used: {e}")))?;
        let reply_to: Option<Mailbox> = reply_to.and_then(|r| r.parse().ok());
        let domain = self.composer.from.email.domain();
        let mut email = mime::compose_note(
            &self.composer.from,
            &to,
            reply_to.as_ref(),
            subject,
            text,
            &format!("{id}@{domain}"),
            now.into(),
        )
        .map_err(|e| permanent(e.to_string()))?;
        if let Some(dkim) = &self.composer.dkim {
            email.sign(dkim);
        }
        let name = format!("note-{id}");
        self.transport
            .send(&name, &self.composer.from.email, &to, &email.formatted())
            .await
    }

    /// Waits so that at most `rate_per_second` messages go each second.
    async fn pace(&self, sent: usize, started: std::time::Instant) {
        if self.rate_per_second == 0 || sent == 0 {
            return;
        }
        let budget = StdDuration::from_secs_f64(sent as f64 / f64::from(self.rate_per_second));
        if let Some(rest) = budget.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }

    /// Renders one message's parts as delivery would, composing (and
    /// signing) nothing: what a browser shows of a message.
    pub fn render(&self, draft: &Draft<'_>, now: DateTime<Utc>) -> Result<Rendered, String> {
        self.composer.render(draft, now)
    }

    /// The language one message speaks to its customer in: what the pages
    /// they reach from it are shown in.
    pub fn language(&self, draft: &Draft<'_>) -> String {
        self.composer.language(draft)
    }

    /// The question one message's `survey` asks, as its mail put it: what
    /// the answer page shows.
    pub fn question(
        &self,
        draft: &Draft<'_>,
        survey: Survey,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        self.composer.question(draft, survey, now)
    }

    /// Renders and composes one message, as delivery would: what `preview`
    /// shows.
    pub fn email(
        &self,
        draft: &Draft<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Rendered, Address, Vec<u8>), String> {
        self.composer.email(draft, now)
    }

    /// What a transport's answer makes of the message.
    fn settle_sent(
        &self,
        m: &Outgoing,
        subject: String,
        result: Result<transport::Accepted, SendError>,
        now: DateTime<Utc>,
    ) -> Settle {
        let finished = now;
        let attempt = |outcome, code, detail: &str| Attempt {
            started_at: now,
            finished_at: finished,
            outcome,
            smtp_code: code,
            detail: detail.to_owned(),
        };
        let mut settle = Settle::end(m, Status::Sent, String::new());
        settle.subject = Some(subject);
        match result {
            Ok(accepted) => {
                settle.reason = None;
                settle.sent_at = Some(now);
                settle.attempt = Some(attempt(
                    AttemptOutcome::Sent,
                    accepted.code,
                    &accepted.reply,
                ));
            }
            Err(SendError::Permanent { code, detail }) => {
                settle.status = Status::Failed;
                settle.reason = Some(format!("refused by the mail server: {detail}"));
                settle.attempt = Some(attempt(AttemptOutcome::Permanent, Some(code), &detail));
                if retry::is_bad_address(&detail) {
                    settle.suppress = Some(Suppression {
                        customer_id: m.customer.record.id.clone(),
                        category: "*".into(),
                        reason: format!("hard bounce: {detail}"),
                        source: "smtp".into(),
                    });
                }
            }
            Err(SendError::Transient { code, detail }) => {
                let first = m.first_attempt_at.unwrap_or(now);
                settle.attempt = Some(attempt(AttemptOutcome::Transient, code, &detail));
                match retry::next_try(first, m.attempts + 1, now, self.max_retry_age) {
                    Some(next) => {
                        settle.status = Status::Deferred;
                        settle.not_before = Some(next);
                        settle.reason = Some(format!(
                            "{detail}; trying again at {}",
                            next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ));
                    }
                    None => {
                        settle.status = Status::Failed;
                        settle.reason = Some(format!(
                            "gave up after {} attempts over {}: {detail}",
                            m.attempts + 1,
                            humantime::format_duration(
                                self.max_retry_age.to_std().unwrap_or_default()
                            )
                        ));
                    }
                }
            }
        }
        settle
    }

    /// Closes the transport's connections.
    pub async fn close(&self) {
        self.transport.close().await;
    }
}
