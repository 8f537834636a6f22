//! What each part of tend may ask of the store, as one trait per
//! consumer: the planner takes [`Planning`], delivery [`Outbox`], the
//! survey and inbound handlers [`Responses`], and so on, so a signature
//! says what a component may touch. [`Store`] is all of them.
//!
//! Each trait is written once, in the [`roles!`] invocation below, which
//! also forwards it for [`Db`]; both backends get every method from the
//! generic implementations in the role files (`customers.rs`, …).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::*;
use crate::domain::account::{Account, AccountId, AccountRecord};
use crate::domain::console::{AuditAction, AuditEntry, Found, NewSession, Password, Session};
use crate::domain::customer::{Customer, CustomerId, CustomerRecord};
use crate::domain::event::EventRecord;
use crate::domain::feed::{Page, Position};
use crate::domain::incident::{Incident, IncidentStatus, IncidentView, Recipient};
use crate::domain::message::{
    Attempt, MessageFilter, MessageId, MessageView, NewMessage, Outgoing, ResponseView, Settle,
    Suppression,
};
use crate::domain::notification::{NewNotification, Notification, Outcome, TargetStatus};
use crate::domain::plan::History;
use crate::domain::planned::AccountPlanWrite;
use crate::domain::playbook::Survey;
use crate::domain::prefilter::Prefilter;
use crate::domain::report::{Counts, Grouping, SurveyAnswer};
use crate::domain::signal::{Interest, Signal};
use crate::domain::suppression::{Lift, Lifted, SuppressionFilter, SuppressionId, SuppressionView};

/// Declares role traits and their forwarding for [`Db`], which picks its
/// backend per call.
macro_rules! roles {
    ($(#[$meta:meta])* pub trait $role:ident { $($body:tt)* } $($rest:tt)*) => {
        $(#[$meta])*
        #[allow(async_fn_in_trait)] // Callers use concrete types (`Db`), whose futures are `Send`.
        pub trait $role {
            roles!(@declare $($body)*);
        }

        impl $role for Db {
            roles!(@forward $role $($body)*);
        }

        roles!($($rest)*);
    };
    () => {};

    (@declare) => {};
    (@declare $(#[$m:meta])* async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?; $($rest:tt)*) => {
        $(#[$m])*
        async fn $name(&self $(, $arg: $ty)*) $(-> $ret)?;
        roles!(@declare $($rest)*);
    };
    (@declare $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?; $($rest:tt)*) => {
        $(#[$m])*
        fn $name(&self $(, $arg: $ty)*) $(-> $ret)?;
        roles!(@declare $($rest)*);
    };

    (@forward $role:ident) => {};
    (@forward $role:ident $(#[$m:meta])* async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?; $($rest:tt)*) => {
        async fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            match self {
                Db::Sqlite(s) => $role::$name(s $(, $arg)*).await,
                Db::Postgres(s) => $role::$name(s $(, $arg)*).await,
            }
        }
        roles!(@forward $role $($rest)*);
    };
    (@forward $role:ident $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) $(-> $ret:ty)?; $($rest:tt)*) => {
        fn $name(&self $(, $arg: $ty)*) $(-> $ret)? {
            match self {
                Db::Sqlite(s) => $role::$name(s $(, $arg)*),
                Db::Postgres(s) => $role::$name(s $(, $arg)*),
            }
        }
        roles!(@forward $role $($rest)*);
    };
}

roles! {
/// The people tend writes to and what they did: what import, the API and
/// the planner's reads of one customer need.
pub trait Customers {
    /// The people and accounts whose id is `text`, or whose name, its
    /// last word, or (a person's) address begins with it (in any case),
    /// up to `limit` of each.
    async fn search(&self, text: &str, limit: usize) -> Result<Found, Error>;

    /// Writes the search terms of up to `limit` people an import added and
    /// says how many it took: PostgreSQL queues them (migration 0022) so
    /// an import does not wait on them, and a search reads the queue until
    /// then. 0 when none wait, and always on SQLite, whose triggers write
    /// them at once.
    async fn fill_search(&self, limit: u32) -> Result<u64, Error>;

    /// How many batches of people may be written at once, each in a
    /// transaction of its own: PostgreSQL's writers do not wait on each
    /// other; SQLite has one.
    fn writers(&self) -> usize;

    /// Inserts or replaces customer records by id. The stage and history
    /// tend derived are kept.
    async fn upsert_customers(
        &self,
        batch: &[CustomerRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error>;

    /// Stores events; an event whose `id` is already stored is left alone.
    /// Every event's customer must exist.
    async fn insert_events(
        &self,
        batch: &[EventRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error>;

    /// The time zones of those of `ids` that exist.
    async fn customer_zones(&self, ids: &[CustomerId]) -> Result<HashMap<CustomerId, Tz>, Error>;

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, Error>;

    async fn count_customers(&self) -> Result<u64, Error>;

    /// A customer's events, oldest first.
    async fn events_of(&self, id: &CustomerId) -> Result<Vec<StoredEvent>, Error>;

    /// Up to `limit` customers in id order, after `after`; with a
    /// `filter`, only those passing it (what an incident's selector is
    /// judged on: customers it rules out are never read).
    async fn customers_page(
        &self,
        after: Option<&CustomerId>,
        limit: u32,
        filter: Option<&Prefilter>,
    ) -> Result<Vec<Customer>, Error>;

    /// Erases a person at their request, in one transaction: what was sent
    /// to them and what they answered moves to `stand_in` without their
    /// address, subjects, words or the raw mail they sent; their events,
    /// stage changes, signals and notifications go; `address_hash` is kept
    /// so the address is never imported again.
    async fn erase_customer(
        &self,
        id: &CustomerId,
        stand_in: &CustomerId,
        address_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Erasure, Error>;

    /// Which of `hashes` are addresses of erased people.
    async fn erased_among(&self, hashes: &[String]) -> Result<HashSet<String>, Error>;

    /// The raw mail that came from or about a person, oldest first.
    async fn inbound_of(&self, id: &CustomerId) -> Result<Vec<InboundKept>, Error>;
}

/// The companies tend's customers belong to: what import, the API and the
/// account commands write and read.
pub trait Accounts {
    /// Inserts or replaces account records by id, keeping each one's stage
    /// and history; every contact of a changed account is planned again.
    async fn upsert_accounts(
        &self,
        batch: &[AccountRecord],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, Error>;

    /// Every role some contact holds.
    async fn roles_held(&self) -> Result<HashSet<String>, Error>;

    /// Every holiday calendar a customer or an account names.
    async fn calendars_named(&self) -> Result<HashSet<String>, Error>;

    /// Those of `ids` that are stored.
    async fn known_accounts(&self, ids: &[AccountId]) -> Result<HashSet<AccountId>, Error>;

    /// Those of `ids` that are stored, each with its number of contacts.
    async fn accounts_of(&self, ids: &[AccountId]) -> Result<HashMap<AccountId, Account>, Error>;

    /// One account with its number of contacts.
    async fn account(&self, id: &AccountId) -> Result<Option<Account>, Error>;

    /// Up to `limit` accounts in id order, after `after`.
    async fn accounts_page(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, Error>;

    /// An account's contacts, in id order.
    async fn contacts_of(&self, id: &AccountId) -> Result<Vec<Customer>, Error>;

    /// The contacts of each of `ids`, each in id order.
    async fn contacts_of_accounts(
        &self,
        ids: &[AccountId],
    ) -> Result<HashMap<AccountId, Vec<Customer>>, Error>;
}

/// What a planning pass reads and writes: who is due, their history, and
/// the one write a planned page makes.
pub trait Planning {
    /// Up to `limit` customers whose planning time has come by `now`, after
    /// `after` (start with `DueCursor::start()`), each with the `plan_at` it
    /// was read with, and the cursor of the last.
    async fn customers_due(
        &self,
        now: DateTime<Utc>,
        after: &DueCursor,
        limit: u32,
    ) -> Result<(Vec<(Customer, DateTime<Utc>)>, DueCursor), Error>;

    /// Up to `limit` accounts whose planning time has come by `now`, after
    /// `after`, each with the `plan_at` it was read with, and the cursor of
    /// the last.
    async fn accounts_due(
        &self,
        now: DateTime<Utc>,
        after: &DueCursor,
        limit: u32,
    ) -> Result<(Vec<(Account, DateTime<Utc>)>, DueCursor), Error>;

    /// What planning needs of each of `ids`: its contacts, and its history
    /// (stage entries, its contacts' events, the account-scope occurrences
    /// already in the outbox for it).
    async fn account_planning(
        &self,
        ids: &[AccountId],
    ) -> Result<HashMap<AccountId, (Vec<Customer>, History)>, Error>;

    /// Writes one planned page of accounts in one transaction; an
    /// occurrence already there for a contact is left alone.
    async fn record_account_plan(
        &self,
        plan: &AccountPlanWrite,
        now: DateTime<Utc>,
    ) -> Result<Recorded, Error>;

    /// The fingerprint of the playbooks and rules the planner last used.
    async fn planner_fingerprint(&self) -> Result<Option<String>, Error>;

    /// Records a new fingerprint and has every customer looked at again.
    async fn replan_all(&self, fingerprint: &str) -> Result<(), Error>;

    /// What the planner needs to know about each of `ids`: events, stage
    /// entries, steps sent, and every occurrence already in the outbox.
    async fn planning_history(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, History>, Error>;

    /// Writes what planning one page produced, in one transaction: stage
    /// changes (each recorded, so `stage:NAME` fires once per entry), waiting
    /// messages that newer occurrences supersede (expired, with the reason,
    /// their claims dropped so no instance sends or holds them again), new
    /// messages (an occurrence already in the outbox is left alone), and each
    /// customer's next planning time. Returns how many messages were newly
    /// planned, and how many newly expired (new or superseded). The only way
    /// planning writes.
    async fn record_plan(&self, plan: &PlanWrite, now: DateTime<Utc>) -> Result<Recorded, Error>;

    /// How many write transactions of different customers are worth running
    /// at once: one on SQLite (one writer at a time), more on PostgreSQL,
    /// where a planning page's write waits on the server more than on locks.
    fn concurrent_writes(&self) -> usize;

    /// How many customers a planning pass reads, plans and writes at a
    /// time: what makes a write transaction worth its fixed costs on this
    /// store.
    fn planning_page(&self) -> u32;

    /// Becomes the one instance that plans, if no other is planning now.
    /// `None` means another instance leads; planning is then skipped (it
    /// would be safe, only wasted). SQLite has one instance per file, which
    /// always leads.
    async fn lead_planning(&self) -> Result<Option<PlanningLead>, Error>;
}

/// The outbox as delivery sees it: leasing due messages, marking them
/// `sending`, settling what became of them, recovering after a crash, and
/// the reads the send policy (cap, quiet customers) is decided on.
pub trait Outbox {
    /// How many writing transactions the store runs side by side: what
    /// more at once would only queue for.
    fn writes_at_once(&self) -> usize;

    /// Messages for `tend messages`, oldest due first.
    async fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageView>, Error>;

    /// Every message of some customers (an account's contacts), oldest
    /// due first.
    async fn messages_of(&self, customers: &[CustomerId]) -> Result<Vec<MessageView>, Error>;

    /// The read API's page of messages: up to `limit` after `after`, in
    /// the order they were committed, so a reader that follows
    /// `next_cursor` neither skips nor repeats one while new ones arrive.
    async fn messages_page(
        &self,
        filter: &MessageFilter,
        after: Position,
        limit: u32,
    ) -> Result<Page<MessageView>, Error>;

    /// Leases up to `limit` messages that may be sent at `now` to `owner`
    /// until `lease_until`, most important first. Rows another instance
    /// holds are skipped, never waited for.
    async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Outgoing>, Error>;

    /// Commits `sending` for leased messages whose SMTP transactions are
    /// about to start, renewing to `lease_until` those of their leases
    /// that end before `renew_before` (a lease taken moments ago need not
    /// be written again: the deliverer renews all its claims every third
    /// of a lease). Only messages
    /// `owner` still holds are marked (a lease that ran out may have gone to
    /// another instance): the ids marked are returned, and only those may
    /// be sent.
    async fn begin_sending(
        &self,
        owner: &str,
        ids: &[MessageId],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        renew_before: DateTime<Utc>,
    ) -> Result<Vec<MessageId>, Error>;

    /// Records what became of leased messages, with their attempts and any
    /// suppression they caused, in one transaction.
    /// Only messages `owner` still holds change: one whose lease ran out and
    /// went to another instance is that instance's to record.
    async fn settle(
        &self,
        owner: &str,
        outcomes: &[Settle],
        now: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// One message with its customer, whatever its status: what it was (or
    /// will be) rendered from, for viewing it in a browser.
    async fn outgoing(&self, id: MessageId) -> Result<Option<Outgoing>, Error>;

    /// The messages waiting in the outbox (`planned` or `deferred`) for
    /// `ids`, with any suppression that stops them, in each customer's due
    /// order: what a forecast must show besides new occurrences.
    async fn queued(&self, ids: &[CustomerId]) -> Result<Vec<Outgoing>, Error>;

    /// When mail that counts toward the cap (urgent mail too) went to each
    /// of `ids` after `since`, each send once however often its customer
    /// is in `ids`.
    async fn sent_since(
        &self,
        ids: &[CustomerId],
        since: DateTime<Utc>,
    ) -> Result<HashMap<CustomerId, Vec<DateTime<Utc>>>, Error>;

    /// Settles messages left `sending` by an instance whose lease ran out:
    /// `unknown`, or `deferred` to go again when `resend` is set. Returns
    /// how many.
    async fn recover_sending(&self, now: DateTime<Utc>, resend: bool) -> Result<u64, Error>;

    /// Releases at once, without waiting for their leases, the claims a
    /// dead predecessor of a starting instance left: those held by `owner`,
    /// or every claim when `owner` is `None` (for a caller that knows no
    /// other process runs; a daemon releases only its own name's). Messages
    /// among them that
    /// were `sending` become `unknown`, or `deferred` to go again when
    /// `resend` is set; the others were never handed to a server and wait,
    /// due as they were, for the next claim.
    async fn release_claims(
        &self,
        owner: Option<&str>,
        now: DateTime<Utc>,
        resend: bool,
    ) -> Result<Released, Error>;

    /// Renews every claim `owner` holds to `lease_until` (none is
    /// shortened): what a live instance does while it holds a batch.
    /// Returns how many were renewed.
    async fn renew_claims(&self, owner: &str, lease_until: DateTime<Utc>) -> Result<u64, Error>;

    /// Holds the instance name `name` for as long as the returned hold
    /// lives; `None` when a live instance holds it already. On PostgreSQL
    /// it is an advisory lock on a connection of its own, released however
    /// the process ends; SQLite has one instance per file (its instance
    /// lock), which always holds its name.
    async fn hold_name(&self, name: &str) -> Result<Option<NameHold>, Error>;

    /// Every attempt at one message, oldest first.
    async fn attempts(&self, id: &MessageId) -> Result<Vec<Attempt>, Error>;

    /// Of `ids`, those an open incident affects, with that incident's id.
    async fn quiet_customers(
        &self,
        ids: &[CustomerId],
    ) -> Result<HashMap<CustomerId, String>, Error>;

    /// Messages due by `now` that are still waiting to go.
    async fn count_due(&self, now: DateTime<Utc>) -> Result<u64, Error>;
}

/// What customers answered: clicks, surveys, preference choices and
/// inbound mail, and the reads `tend responses` and `tend report` make.
pub trait Responses {
    /// Records a response to message `message` (a click, a survey answer)
    /// in one transaction: with `replace`, earlier responses of the same
    /// kind to that message go (the last survey answer wins). `None` when no
    /// such message exists.
    async fn record_response(
        &self,
        message: MessageId,
        response: &NewResponse,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error>;

    /// What the customer a message went to is unsubscribed from (a
    /// category, or `*` for all mail), by category; `None` when no such
    /// message exists.
    async fn subscriptions(&self, message: MessageId) -> Result<Option<Vec<Suppression>>, Error>;

    /// Which of `ids` may not be mailed in `category`: they left it or all
    /// mail.
    async fn suppressed_among(
        &self,
        ids: &[CustomerId],
        category: &str,
    ) -> Result<HashSet<CustomerId>, Error>;

    /// What a customer is unsubscribed from, by category.
    async fn suppressions_of(&self, customer: &CustomerId) -> Result<Vec<Suppression>, Error>;

    /// Applies a customer's choices, made from a link in `message`, in one
    /// transaction: each category in `unsubscribe` is suppressed and gets an
    /// `unsubscribe` response (once: repeating it changes nothing); each in
    /// `resubscribe` is lifted if the customer had chosen it (a bounce or a
    /// complaint stays). `None` when no such message exists.
    async fn set_preferences(
        &self,
        message: MessageId,
        choice: &Preferences,
        now: DateTime<Utc>,
    ) -> Result<Option<CustomerId>, Error>;

    /// Records one inbound message in one transaction: the raw mail (kept
    /// matched or not), the message it answers (by its reply token, else by
    /// the first Message-ID of ours it refers to), its response, and what it
    /// does to suppression. A second copy records nothing.
    async fn record_inbound(&self, mail: &InboundMail) -> Result<InboundRecorded, Error>;

    /// Every response received at or after `since`, oldest first.
    async fn responses(&self, since: DateTime<Utc>) -> Result<Vec<ResponseView>, Error>;

    /// The read API's page of responses received at or after `since`: up
    /// to `limit` after `after`, in the order they were committed.
    async fn responses_page(
        &self,
        since: DateTime<Utc>,
        after: Position,
        limit: u32,
    ) -> Result<Page<ResponseView>, Error>;

    /// A page of suppressions (erased people's never), by customer and
    /// category, after `after`.
    async fn suppressions_page(
        &self,
        filter: &SuppressionFilter,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Page<SuppressionView>, Error>;

    /// Lifts one suppression in one transaction, keeping what it was with
    /// who lifted it and why. `None` when there is no such suppression.
    async fn lift_suppression(
        &self,
        id: &SuppressionId,
        lift: &Lift,
        now: DateTime<Utc>,
    ) -> Result<Option<Lifted>, Error>;

    /// The suppressions lifted from a customer, oldest first.
    async fn lifts_of(&self, customer: &CustomerId) -> Result<Vec<Lifted>, Error>;

    /// Some customers' responses (an account's contacts' in a few
    /// statements, not one each), oldest first.
    async fn responses_from(&self, customers: &[CustomerId]) -> Result<Vec<ResponseView>, Error>;

    /// Some customers' survey answers, oldest first: (who, survey,
    /// answer, when).
    async fn survey_answers_from(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<(CustomerId, Survey, String, DateTime<Utc>)>, Error>;

    /// The counts `tend report` is made of: messages due and responses
    /// received at or after `since`.
    async fn report_counts(&self, since: DateTime<Utc>) -> Result<Counts, Error>;

    /// Messages due at or after `since`, by status: the report's first
    /// figures alone.
    async fn message_counts(&self, since: DateTime<Utc>) -> Result<Vec<(String, i64)>, Error>;

    /// Per playbook step, messages due at or after `since` that were sent
    /// and that got a response: the report's step figures alone.
    async fn step_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64, i64)>, Error>;

    /// Every survey answer received at or after `since`, oldest first.
    async fn survey_answers_since(&self, since: DateTime<Utc>) -> Result<Vec<SurveyAnswer>, Error>;

    /// The newest `limit` replies, newest first.
    async fn latest_replies(&self, limit: u32) -> Result<Vec<ResponseView>, Error>;

    /// The newest `limit` NPS answers from 0 to 6, newest first.
    async fn latest_detractors(&self, limit: u32) -> Result<Vec<ResponseView>, Error>;

    /// The report's counts per group (`tend report --by`), in group order.
    async fn report_by(
        &self,
        grouping: Grouping,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, Counts)>, Error>;

    /// A message's responses, oldest first: (kind, value, comment).
    async fn responses_of(&self, message: MessageId) -> Result<Vec<ResponseRow>, Error>;
}

/// Incidents and maintenances: their history, who they affect and who
/// was told.
pub trait Incidents {
    /// Records a new incident; `false` when its id is taken.
    async fn create_incident(&self, incident: &Incident) -> Result<bool, Error>;

    async fn incident(&self, id: &str) -> Result<Option<Incident>, Error>;

    /// Every incident, oldest first, with how many got its first notice.
    async fn incidents(&self) -> Result<Vec<IncidentView>, Error>;

    /// Records, in one transaction, customers an incident affects and the
    /// notices that go to them (a re-run creates no second notice).
    async fn record_notices(
        &self,
        incident: &str,
        affected: &[CustomerId],
        notices: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<u64, Error>;

    /// Who got (or is getting) an incident's first notice.
    async fn recipients(&self, incident: &str) -> Result<Vec<Recipient>, Error>;

    /// The first `limit` rows of [`Self::recipients`], by customer id.
    async fn recipients_sample(&self, incident: &str, limit: u32) -> Result<Vec<Recipient>, Error>;

    /// How many customers got an incident's first notice (as
    /// [`Self::incidents`] counts them, for one).
    async fn told(&self, incident: &str) -> Result<u64, Error>;

    /// Records an update (its words, and its status when set); returns its
    /// sequence number, or `None` when the incident is closed or unknown.
    async fn update_incident(
        &self,
        id: &str,
        status: Option<IncidentStatus>,
        message: &str,
        notify: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, Error>;

    /// Resolves, completes or cancels an incident at `now`, in one
    /// transaction with its history and its announcements still waiting to
    /// go, which are settled `expired` with `withdrawn` as the reason (a
    /// closed maintenance is not announced). Returns how many were
    /// withdrawn, or `None` when it was closed before.
    async fn close_incident(
        &self,
        id: &str,
        status: IncidentStatus,
        message: &str,
        withdrawn: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, Error>;

    /// Open maintenances whose start (still `scheduled`) or end has come by
    /// `now`, soonest first: what their own clock moves.
    async fn maintenances_due(&self, now: DateTime<Utc>) -> Result<Vec<Incident>, Error>;

    /// Starts a scheduled maintenance at `at` (its start), in one
    /// transaction with its history and its announcements still waiting,
    /// which expire with `expired` as the reason (an announcement never goes
    /// out after the start). Returns how many expired, or `None` when it
    /// was not scheduled (started or closed already).
    async fn start_maintenance(
        &self,
        id: &str,
        message: &str,
        expired: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, Error>;
}

/// The console's sign-in: team members' passwords, their sessions, and
/// the audit of what they did.
pub trait Team {
    /// Sets a member's password (an argon2id hash in PHC form) and ends
    /// every session and unused sign-in link they had, in one transaction.
    async fn set_password(&self, member: &str, hash: &str, at: DateTime<Utc>) -> Result<(), Error>;

    /// A member's password hash and when it was set, if one was.
    async fn password_of(&self, member: &str) -> Result<Option<Password>, Error>;

    /// Stores a new session (and removes those that ended).
    async fn open_session(&self, new: &NewSession) -> Result<(), Error>;

    /// The session whose token hashes to `token_hash`, if still open at
    /// `now`.
    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>, Error>;

    /// Ends a session (signing out).
    async fn close_session(&self, token_hash: &str) -> Result<(), Error>;

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), Error>;

    /// How often `action` was audited since `since`: for `member`, and
    /// from `address` (the limits on failed sign-ins and on links asked
    /// for count these).
    async fn audited_since(
        &self,
        action: AuditAction,
        member: &str,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), Error>;

    /// Stores a sign-in link (the SHA-256 of its token) for `member`,
    /// open from `at` until `expires_at`, and removes those that ended.
    async fn open_link(
        &self,
        token_hash: &str,
        member: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// Whose link this is, if it is unused and open at `now` (it stays so).
    async fn link_of(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<String>, Error>;

    /// Uses a link: whose it was, if it was unused and open at `now`.
    /// Only one use of a link ever gets its member.
    async fn use_link(&self, token_hash: &str, now: DateTime<Utc>)
    -> Result<Option<String>, Error>;

    /// The newest `limit` lines of the audit, newest first.
    async fn latest_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, Error>;
}

/// Keeping the store itself in shape: migrations, health, tidying.
pub trait Upkeep {
    /// Applies pending migrations (idempotent; safe with several instances).
    async fn migrate(&self) -> Result<(), Error>;

    /// Succeeds when the store answers a trivial query.
    async fn ping(&self) -> Result<(), Error>;

    /// Why writes have been failing, and since when, until one commits
    /// again: a store that answers reads may still refuse every write (a
    /// full disk). SQLite watches its writes; PostgreSQL reports nothing
    /// here (its server has its own monitoring).
    fn write_failure(&self) -> Option<WriteFailure>;

    /// Writes one small row to learn whether writes succeed again while
    /// `write_failure` says they fail: an idle daemon would otherwise stay
    /// not ready after the disk got room. Where writes are not watched,
    /// does nothing.
    async fn probe_write(&self) -> Result<(), Error>;

    /// Deletes the detail of attempts that started before `before`; returns
    /// how many went.
    async fn prune_attempts(&self, before: DateTime<Utc>) -> Result<u64, Error>;

    /// Tidies up after a pass that rewrote many rows (see [`tidy_after`]):
    /// on PostgreSQL, vacuums and analyzes the tables planning and delivery
    /// rewrite. Every rewritten row leaves a dead version and dead index
    /// entries behind, and the next passes read past them (the due
    /// customers and the claimable messages are read from the start of
    /// their indexes, where the dead entries gather) until a vacuum removes
    /// them; autovacuum gets there in its own time, or never where it is
    /// off. A first pass also leaves tables without statistics; rows only
    /// added ([`Tidy::Added`]) need statistics alone. SQLite removes what
    /// it deletes at once, and has nothing to do here. Says whether there
    /// was anything to do.
    async fn tidy(&self, what: Tidy) -> Result<bool, Error>;

    /// Waits for in-flight work and closes every connection.
    async fn close(&self);
}

/// What other systems and people hear of: signals recorded beside each
/// change, routed once to notifications, each target's queue sent in order.
pub trait Signals {
    /// Records, from now on, the signal types `interest` takes (and no
    /// others: a store nobody listens to pays nothing for them).
    fn listen(&self, interest: Interest);

    /// Up to `limit` signals not yet routed, in commit order, with where
    /// routing stood when they were read.
    async fn unrouted(&self, limit: u32) -> Result<(Position, Vec<Signal>), Error>;

    /// Stores routed notifications and moves routing from `from` to `to`
    /// in one transaction; false (and nothing written) when another
    /// instance routed from `from` first.
    async fn route(
        &self,
        from: Position,
        to: Position,
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;

    /// Leases due notifications to `owner` until `lease_until`: of each
    /// target whose first waiting row is due, up to `per_target` rows in
    /// order (one for mail), skipping targets another instance holds.
    async fn claim_notifications(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        per_target: u32,
    ) -> Result<Vec<Notification>, Error>;

    /// Records what became of a claimed notification.
    async fn settle_notification(
        &self,
        owner: &str,
        id: &str,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// Records claimed notifications `ids` sent at `now`, together.
    async fn settle_sent(&self, owner: &str, ids: &[String], now: DateTime<Utc>)
        -> Result<(), Error>;

    /// Gives back claimed notifications that were not tried.
    async fn release_notifications(&self, owner: &str, ids: &[String]) -> Result<(), Error>;

    /// Settles what `owner` held when its last run stopped, as a start
    /// does: mail `unknown`, webhooks waiting again.
    async fn release_owned_notifications(&self, owner: &str, now: DateTime<Utc>)
        -> Result<u64, Error>;

    /// Settles the claims of instances that died: mail `unknown` (never
    /// sent twice), webhooks waiting again (their id deduplicates).
    async fn recover_notifications(&self, now: DateTime<Utc>) -> Result<u64, Error>;

    /// How many notifications wait, per target that has any.
    async fn backlogs(&self) -> Result<HashMap<String, u64>, Error>;

    /// Every target's queue: backlog, counts, oldest waiting, last error.
    async fn notification_targets(&self) -> Result<Vec<TargetStatus>, Error>;

    /// Deletes settled notifications and routed signals from before
    /// `before`.
    async fn prune_signals(&self, before: DateTime<Utc>) -> Result<u64, Error>;
}

}

/// Everything the store offers: what a command that does several jobs at
/// once (the daemon, `tend tick`) holds.
pub trait Store:
    Customers + Accounts + Planning + Outbox + Responses + Incidents + Signals + Team + Upkeep
{
}

impl<T> Store for T where
    T: Customers + Accounts + Planning + Outbox + Responses + Incidents + Signals + Team + Upkeep
{
}
