//! What is due: for one customer, which step occurrences fall due, when each
//! may go out, and which will not. Pure: a function of (customer,
//! playbooks, history, now); the store and the clock stay outside.
//!
//! An occurrence is identified by (playbook, step, occurrence), the outbox's
//! unique key: `signup_at` for a customer field (once per customer),
//! `event:KEY` per event, `stage:MILLIS` per entry into a stage, and the UTC
//! instant of each cron occurrence.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono_tz::Tz;

use chrono::{DateTime, Duration, Utc};

use super::account::AccountFacts;
use super::catchup;
use super::condition::{Condition, Facts, Reads, Scope};
use super::customer::Customer;
use super::playbook::{Anchor, Kind, Playbook, Step, Survey, Trigger};
use super::timestamp::parse_instant;
use super::window::Window;

/// An event as the planner sees it.
#[derive(Debug, Clone)]
pub struct EventFact {
    /// Stable per event: its idempotency id, else the store's sequence.
    pub key: String,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
}

/// An entry into a lifecycle stage.
#[derive(Debug, Clone)]
pub struct StageEntry {
    pub stage: String,
    pub entered_at: DateTime<Utc>,
}

/// The outbox's unique key for one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OccurrenceKey {
    pub playbook: String,
    pub step: String,
    pub occurrence: String,
}

/// What the store knows about a customer that planning needs.
#[derive(Debug, Default)]
pub struct History {
    pub events: Vec<EventFact>,
    pub stage_entries: Vec<StageEntry>,
    /// (playbook, step) pairs this customer was sent, for `sent(step)`.
    pub sent: HashSet<(String, String)>,
    /// Occurrences already in the outbox, whatever their status.
    pub planned: HashSet<OccurrenceKey>,
    /// Of those, the ones still waiting to go (planned or deferred): what a
    /// newer occurrence of their step may supersede.
    pub waiting: HashSet<OccurrenceKey>,
    /// The customer's account with its owner, when a condition reads it.
    pub account: Option<AccountFacts>,
}

impl History {
    /// The customer's events as conditions see them: (name, when).
    pub fn event_facts(&self) -> Vec<(String, DateTime<Utc>)> {
        self.events
            .iter()
            .map(|e| (e.name.clone(), e.occurred_at))
            .collect()
    }

    /// The steps of `playbook` this customer was sent, for `sent(step)`.
    pub fn sent_in(&self, playbook: &str) -> HashSet<String> {
        self.sent
            .iter()
            .filter(|(p, _)| p == playbook)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

/// One message to put into the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub key: OccurrenceKey,
    pub kind: Kind,
    pub category: String,
    pub template: String,
    pub survey: Option<Survey>,
    /// The step's time.
    pub due_at: DateTime<Utc>,
    /// The first moment inside the customer's send window at or after `due_at`.
    pub send_at: DateTime<Utc>,
    /// Not sent after this.
    pub expires_at: DateTime<Utc>,
    /// `Some(reason)` when it will not go out (the window does not open
    /// before it expires, or a later occurrence supersedes it): recorded
    /// as `expired`, not sent.
    pub expired: Option<String>,
    /// When superseded (see `catchup`): the moment that is decided, when
    /// the occurrence or step that supersedes it falls due (or now, if it
    /// already has).
    pub superseded_at: Option<DateTime<Utc>>,
    /// From a cron step: a newer occurrence supersedes the step's messages
    /// still waiting in the outbox.
    pub recurring: bool,
}

/// Where planning looks, and with which default window.
pub struct Horizon<'a> {
    pub now: DateTime<Utc>,
    /// Look for occurrences up to here: `now` for a tick, later for a forecast.
    pub until: DateTime<Utc>,
    pub window: &'a Window,
    /// Shared by every customer of one pass.
    pub cron: &'a CronMemo,
}

/// Cron occurrences depend only on (pattern, zone, from, until), and
/// customers share a few zones: one pass computes each set once.
#[derive(Default)]
pub struct CronMemo {
    found: Mutex<HashMap<CronKey, Arc<Occurrences>>>,
    /// The first occurrence after an instant, keyed by (pattern, zone, instant).
    next: Mutex<HashMap<NextKey, Option<DateTime<Utc>>>>,
}

type NextKey = (String, Tz, DateTime<Utc>);

type CronKey = (String, Tz, DateTime<Utc>, DateTime<Utc>);

/// (occurrence key, due instant) pairs.
type Occurrences = Vec<(String, DateTime<Utc>)>;

impl CronMemo {
    fn occurrences(
        &self,
        pattern: &str,
        cron: &croner::Cron,
        zone: Tz,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Arc<Occurrences> {
        let key = (pattern.to_owned(), zone, from, until);
        if let Some(found) = self.found.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return found;
        }
        let found = Arc::new(cron_occurrences(cron, zone, from, until));
        if let Ok(mut memo) = self.found.lock() {
            memo.insert(key, Arc::clone(&found));
        }
        found
    }

    /// The first occurrence of `cron` in `zone` after `after`.
    fn next_after(
        &self,
        pattern: &str,
        cron: &croner::Cron,
        zone: Tz,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let key = (pattern.to_owned(), zone, after);
        if let Some(next) = self.next.lock().ok().and_then(|m| m.get(&key).copied()) {
            return next;
        }
        let next = cron
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if let Ok(mut memo) = self.next.lock() {
            memo.insert(key, next);
        }
        next
    }
}

/// The occurrences of `cron` in `zone` whose time is in `(from, until]`.
/// Local times in the customer's zone; croner steps through them
/// DST-correctly. Bounded, as a guard against a pattern that fires every
/// minute over a long horizon.
fn cron_occurrences(
    cron: &croner::Cron,
    zone: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>)> {
    let mut found = Vec::new();
    let mut cursor = from.with_timezone(&zone);
    while found.len() < 10_000 {
        let Ok(next) = cron.find_next_occurrence(&cursor, false) else {
            break;
        };
        let at = next.with_timezone(&Utc);
        if at > until {
            break;
        }
        found.push((at.format("%Y-%m-%dT%H:%M:%SZ").to_string(), at));
        cursor = next;
    }
    found
}

/// Everything due for `customer` up to `horizon.until`, skipping what is
/// already planned, what expired before it could be planned, and steps whose
/// conditions do not hold now. An occurrence a later one supersedes (see
/// `catchup`: a gap's backlog of a cron step or of a sequence) is among
/// them, `expired` with the reason, so it is recorded once and never sent.
/// Sorted by `send_at`.
pub fn due(
    customer: &Customer,
    playbooks: &[Playbook],
    history: &History,
    horizon: &Horizon<'_>,
) -> Vec<Due> {
    let events = history.event_facts();
    let mut found = Vec::new();
    for playbook in playbooks {
        let sent = history.sent_in(&playbook.name);
        let facts = Facts {
            customer,
            account: history.account.as_ref(),
            now: horizon.now,
            events: &events,
            sent: &sent,
        };
        // Built on first use: most steps of most customers are not due. It
        // holds only what the playbook's conditions read.
        let scope = std::cell::OnceCell::new();
        let reads = Reads::of_all(
            playbook
                .audience
                .iter()
                .chain(playbook.steps.iter().filter_map(|s| s.when.as_ref())),
        );
        // A condition that cannot be evaluated for this customer (a missing
        // date or attribute) does not hold.
        let holds = |c: &Option<Condition>| {
            c.as_ref().is_none_or(|c| {
                scope
                    .get_or_init(|| Scope::reading(&facts, reads).ok())
                    .as_ref()
                    .is_some_and(|scope| c.holds_for(scope, customer.record.id.as_str()))
            })
        };
        if !holds(&playbook.audience) {
            continue;
        }
        let window = playbook.window.as_ref().unwrap_or(horizon.window);
        let zone = customer.record.timezone;
        // Where this playbook's occurrences start in `found`.
        let first = found.len();
        for step in &playbook.steps {
            let expires = step.expires.as_chrono();
            let from = horizon.now - expires;
            let recurring = matches!(step.trigger, Trigger::Cron { .. });
            let all = occurrences(customer, step, history, from, horizon.until, horizon.cron);
            let mut checked = None;
            let mut again = None;
            // Whether an occurrence of this step goes in this pass.
            let mut going = false;
            for (i, (occurrence, due_at)) in all.iter().enumerate() {
                let due_at = *due_at;
                let key = OccurrenceKey {
                    playbook: playbook.name.clone(),
                    step: step.id.clone(),
                    occurrence: occurrence.clone(),
                };
                if history.planned.contains(&key) {
                    continue;
                }
                if !*checked.get_or_insert_with(|| holds(&step.when)) {
                    break;
                }
                // Incident notices are urgent: no send window (nor cap).
                let urgent = step.kind == Kind::Incident;
                let send_at = if urgent {
                    due_at
                } else {
                    window.next_opening(due_at, zone)
                };
                let expires_at = due_at + expires;
                let occurrence_due =
                    |expired: Option<String>, superseded_at: Option<DateTime<Utc>>| Due {
                        key: key.clone(),
                        kind: step.kind,
                        category: step.category.clone(),
                        template: step.template.clone(),
                        survey: step.survey,
                        due_at,
                        send_at,
                        expires_at,
                        expired,
                        superseded_at,
                        recurring,
                    };
                // Catch-up: an occurrence the next one overtakes is recorded
                // as superseded, and does not count as going.
                let next = if recurring {
                    all.get(i + 1)
                        .map(|(_, at)| *at)
                        .or_else(|| next_occurrence(step, zone, due_at, horizon.cron))
                } else {
                    None
                };
                if let Some(next) = next {
                    let goes = catchup::goes_at(send_at, horizon.now, urgent, window, zone);
                    if catchup::superseded(due_at, send_at, goes, next, window, zone) {
                        found.push(occurrence_due(
                            Some(catchup::SUPERSEDED.to_owned()),
                            Some(next.max(horizon.now)),
                        ));
                        continue;
                    }
                }
                // A later occurrence in the same pass (a forecast's weeks, or
                // two due at once) follows the earlier one, so `sent(step)`
                // holds for it: a step meant to go once goes once.
                if going && !*again.get_or_insert_with(|| holds_after(&facts, &step.id, &step.when))
                {
                    break;
                }
                going = true;
                let expired = (send_at > expires_at).then(|| {
                    format!(
                        "the send window does not open within {} of its time ({})",
                        step.expires,
                        due_at.to_rfc3339()
                    )
                });
                found.push(occurrence_due(expired, None));
            }
        }
        supersede_sequences(&mut found[first..], horizon.now);
    }
    found.sort_by(|a, b| (a.send_at, &a.key).cmp(&(b.send_at, &b.key)));
    found
}

/// Catch-up for sequences: of the anchored steps of one playbook on one
/// anchor occurrence (a customer's `signup_at`, one event, one entry into a
/// stage) that fell due together by `now` (a late import, downtime), only
/// the latest goes; the earlier ones are superseded by it. Steps due at the
/// same instant go together, as written; steps due later come due in later
/// passes, each in its turn.
fn supersede_sequences(found: &mut [Due], now: DateTime<Utc>) {
    let missed = |d: &Due| !d.recurring && d.expired.is_none() && d.due_at <= now;
    let mut latest: HashMap<String, (DateTime<Utc>, String)> = HashMap::new();
    for d in found.iter().filter(|d| missed(d)) {
        let entry = latest
            .entry(d.key.occurrence.clone())
            .or_insert_with(|| (d.due_at, d.key.step.clone()));
        if d.due_at > entry.0 {
            *entry = (d.due_at, d.key.step.clone());
        }
    }
    for d in found.iter_mut() {
        if !missed(d) {
            continue;
        }
        if let Some((at, step)) = latest.get(&d.key.occurrence)
            && d.due_at < *at
        {
            d.expired = Some(catchup::superseded_by_step(step));
            d.superseded_at = Some(now);
        }
    }
}

/// The first occurrence of a cron step after `after`, in `zone`.
fn next_occurrence(
    step: &Step,
    zone: Tz,
    after: DateTime<Utc>,
    memo: &CronMemo,
) -> Option<DateTime<Utc>> {
    let Trigger::Cron { pattern, cron } = &step.trigger else {
        return None;
    };
    memo.next_after(pattern, cron, zone, after)
}

/// Whether `condition` holds once `step` has been sent too.
fn holds_after(facts: &Facts<'_>, step: &str, condition: &Option<Condition>) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let mut sent = facts.sent.clone();
    sent.insert(step.to_owned());
    let after = Facts {
        sent: &sent,
        ..*facts
    };
    Scope::reading(&after, condition.reads())
        .ok()
        .is_some_and(|scope| condition.holds_for(&scope, facts.customer.record.id.as_str()))
}

/// The occurrences of `step` for `customer` whose time is in `(from, until]`.
pub fn occurrences(
    customer: &Customer,
    step: &Step,
    history: &History,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    memo: &CronMemo,
) -> Vec<(String, DateTime<Utc>)> {
    let within = |t: &DateTime<Utc>| *t > from && *t <= until;
    let record = &customer.record;
    match &step.trigger {
        Trigger::Anchor { anchor, offset } => {
            let shifted = |t: DateTime<Utc>| t.checked_add_signed(*offset);
            let field = |name: &str, t: Option<DateTime<Utc>>| {
                t.and_then(shifted)
                    .filter(within)
                    .map(|due| (name.to_owned(), due))
                    .into_iter()
                    .collect()
            };
            match anchor {
                Anchor::SignupAt => field("signup_at", record.signup_at),
                Anchor::RenewalAt => field("renewal_at", record.renewal_at),
                Anchor::LastSeenAt => field("last_seen_at", record.last_seen_at),
                Anchor::Attribute(name) => {
                    let at = record
                        .attributes
                        .get(name)
                        .and_then(|v| v.as_str())
                        .and_then(|s| parse_instant(s, record.timezone).ok());
                    field(&format!("attributes.{name}"), at)
                }
                Anchor::Event(name) => history
                    .events
                    .iter()
                    .filter(|e| &e.name == name)
                    .filter_map(|e| {
                        shifted(e.occurred_at).map(|due| (format!("event:{}", e.key), due))
                    })
                    .filter(|(_, due)| within(due))
                    .collect(),
                Anchor::Stage(stage) => history
                    .stage_entries
                    .iter()
                    .filter(|e| &e.stage == stage)
                    .filter_map(|e| {
                        shifted(e.entered_at)
                            .map(|due| (format!("stage:{}", e.entered_at.timestamp_millis()), due))
                    })
                    .filter(|(_, due)| within(due))
                    .collect(),
            }
        }
        Trigger::Cron { pattern, cron } => memo
            .occurrences(pattern, cron, record.timezone, from, until)
            .as_ref()
            .clone(),
    }
}

/// When the planner must next look at `customer`: the soonest any step
/// could come due after `now`, and at least daily, because lifecycle rules
/// and conditions read the clock (`days_since`).
pub fn next_check(
    customer: &Customer,
    playbooks: &[Playbook],
    history: &History,
    now: DateTime<Utc>,
    memo: &CronMemo,
) -> DateTime<Utc> {
    let daily = now + Duration::days(1);
    playbooks
        .iter()
        .flat_map(|p| &p.steps)
        .flat_map(|step| occurrences(customer, step, history, now, daily, memo))
        .map(|(_, at)| at)
        .min()
        .unwrap_or(daily)
}
