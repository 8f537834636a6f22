//! The send policy for one customer: which of their waiting messages goes
//! now, which waits (until when, and why) and which expires. One pure
//! function, [`decide`], that delivery (`deliver::triage`) and `tend
//! forecast` both call, so the forecast shows what delivery will do.
//!
//! The rules, in the order they apply:
//! - nothing goes after its expiry (a maintenance announcement expires when
//!   the maintenance starts);
//! - urgent mail (incident notices, a maintenance announcement shortly
//!   before the start) goes at once: no send window, no cap, no quiet;
//! - operational mail (incident and maintenance notices) waits for its send
//!   window, unless the window opens only after it expires: then it goes at
//!   once. It takes a slot under the frequency cap but never waits for one;
//! - engagement mail (tips, check-ins, reminders) waits for its window and
//!   for a slot under the cap, the most important category first; while an
//!   open incident affects the customer their tips and check-ins wait for
//!   it to be resolved;
//! - a window never opens on one of the customer's holidays (their local
//!   date): what is not urgent waits for the next working day's opening;
//! - while the customer (or their account) asked for quiet (`quiet_until`:
//!   their own launch, a migration), engagement mail waits for its end;
//!   urgent and operational mail still goes.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::customer::Customer;
use super::holiday::{Calendar, next_working_opening, waited_out};
use super::message::Outgoing;
use super::playbook::Kind;
use super::window::{Window, Windows};

/// How soon a message held for an open incident is looked at again. An
/// incident has no known end, so it goes within this long of the
/// resolution.
pub const QUIET_RECHECK: Duration = Duration::minutes(15);

/// How long after the mail that crowds a message out is to go that message
/// is looked at again ([`Decision::Crowded`]): long enough for that mail
/// to have gone and be counted, which a look at the same instant might not
/// (another instance may still be sending it).
pub const CROWDED_RECHECK: Duration = Duration::minutes(15);

/// How soon mail held for a customer's quiet period is looked at again:
/// the period may end early (their record imported again without it).
pub const QUIET_PERIOD_RECHECK: Duration = Duration::hours(1);

/// The rules every customer's mail goes by (`[delivery]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// At most this many messages that count …
    pub max: u32,
    /// … in any rolling period this long.
    pub per: Duration,
    /// Categories, most important first, for engagement mail competing for
    /// a slot; others come after, in due order.
    pub priority: Vec<String>,
    /// Tips and check-ins wait while an open incident affects the customer.
    pub quiet_during_incidents: bool,
}

/// A message waiting to go to one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending<'a> {
    pub kind: Kind,
    pub category: &'a str,
    /// Goes at once: no window, no cap, no quiet.
    pub urgent: bool,
    /// An incident or maintenance notice ([`is_operational`]): counts
    /// toward the cap, is never held by it, is never quiet.
    pub operational: bool,
    /// The earliest it may go: its time, a retry's, or where it was put
    /// back to wait.
    pub not_before: DateTime<Utc>,
    /// It never goes after this.
    pub expires_at: DateTime<Utc>,
    /// The send window it goes in (its playbook's, or `delivery.window`).
    pub window: &'a Window,
}

/// Whether a message is operational: an incident or maintenance notice
/// (`notice`), or mail of a playbook of kind `incident`.
pub fn is_operational(kind: Kind, notice: bool) -> bool {
    notice || kind == Kind::Incident
}

impl<'a> Pending<'a> {
    /// A message waiting in the outbox, in the send window of its playbook.
    pub fn waiting(m: &'a Outgoing, windows: &'a Windows) -> Self {
        Self {
            kind: m.kind,
            category: &m.category,
            urgent: m.urgent,
            operational: is_operational(m.kind, m.notice.is_some()),
            not_before: m.not_before,
            expires_at: m.expires_at,
            window: windows.of(&m.key.playbook),
        }
    }
}

impl Pending<'_> {
    /// Whether it competes for a slot under the cap.
    fn engagement(&self) -> bool {
        !self.urgent && !self.operational
    }

    /// Whether an open incident holds it.
    fn quiet(&self) -> bool {
        self.engagement() && matches!(self.kind, Kind::Tip | Kind::Checkin)
    }
}

/// Who the messages go to, as far as the policy cares.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub zone: Tz,
    /// When mail that counts toward the cap went to them recently.
    pub sent: &'a [DateTime<Utc>],
    /// The id of an open incident that affects them.
    pub incident: Option<&'a str>,
    /// Their holidays, on which nothing but urgent mail reaches them.
    pub holidays: Option<&'a Calendar>,
    /// Until then only urgent and operational mail reaches them.
    pub quiet_until: Option<DateTime<Utc>>,
}

impl<'a> Recipient<'a> {
    /// `customer` as the policy sees them: their zone, their holidays
    /// (from `windows`) and quiet period, what went to them recently, and
    /// the open incident that affects them.
    pub fn of(
        customer: &Customer,
        windows: &'a Windows,
        sent: &'a [DateTime<Utc>],
        incident: Option<&'a str>,
    ) -> Self {
        let availability = customer.availability();
        Self {
            zone: customer.record.timezone,
            sent,
            incident,
            holidays: windows.holidays(availability.holidays.as_deref()),
            quiet_until: availability.quiet_until,
        }
    }
}

/// What becomes of a waiting message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It goes now.
    SendNow,
    /// It goes at `at` unless something changes; `reason` says why not now.
    SendAt { at: DateTime<Utc>, reason: String },
    /// It waits with no time known (an open incident); look again at `until`.
    Hold {
        until: DateTime<Utc>,
        reason: String,
    },
    /// It never goes, for this reason.
    Expire(String),
    /// Other waiting mail is to take every slot under the cap it has
    /// before its expiry, so as things stand it expires unsent; but that
    /// mail has not gone yet (it may be withdrawn, or fail), so nothing is
    /// final: look again at `until`, [`CROWDED_RECHECK`] after the last of
    /// those slots is taken (at its expiry at the latest). The forecast
    /// counts it as expiring.
    Crowded {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// Decides every waiting message of one customer at `now`, looking up to
/// `horizon` for when the waiting ones go. Delivery acts on the decisions
/// at `now`; the forecast reads the times. The decisions are in the order
/// of `pending`.
pub fn decide(
    pending: &[Pending<'_>],
    to: &Recipient<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Vec<Decision> {
    let incident = to.incident.filter(|_| rules.quiet_during_incidents);
    let mut sim = Simulation {
        pending,
        zone: to.zone,
        holidays: to.holidays,
        quiet_until: to.quiet_until,
        rules,
        sent: to.sent.iter().copied().filter(|s| *s <= now).collect(),
        went: vec![None; pending.len()],
        decided: vec![None; pending.len()],
    };
    sim.sent.sort();
    for (i, p) in pending.iter().enumerate() {
        if p.expires_at < now {
            let reason = match incident.filter(|_| p.quiet()) {
                Some(id) => format!(
                    "expired: it could not go out by {} while incident {id} affected the customer",
                    at(p.expires_at)
                ),
                None => format!(
                    "expired: it could not go out by {} (its step's expiry)",
                    at(p.expires_at)
                ),
            };
            sim.decided[i] = Some(Decision::Expire(reason));
        } else if let Some(id) = incident.filter(|_| p.quiet()) {
            sim.decided[i] = Some(Decision::Hold {
                until: now + QUIET_RECHECK,
                reason: format!(
                    "held while incident {id} affects the customer; it goes once the incident is resolved"
                ),
            });
        }
    }
    sim.run(now, horizon);
    let Simulation { went, decided, .. } = sim;
    pending
        .iter()
        .zip(went)
        .zip(decided)
        .map(|((p, went), decided)| match (went, decided) {
            (_, Some(d)) => d,
            (Some(t), None) if t <= now => Decision::SendNow,
            (Some(t), None) => Decision::SendAt {
                at: t,
                reason: why_not_now(p, to, rules, now, t),
            },
            // Never: every waiting message goes or expires.
            (None, None) => Decision::SendAt {
                at: horizon,
                reason: "waiting for the frequency cap or the send window".into(),
            },
        })
        .collect()
}

/// What delivery will make of one message just planned at `now`, alone
/// (what went to the customer before is delivery's to weigh): [`decide`]'s
/// answer, without simulating the customer's mail when only the send window
/// can hold it. That is most messages, and planning asks for every one.
pub fn first_look(
    p: &Pending<'_>,
    to: &Recipient<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Decision {
    let opens = if p.urgent {
        p.not_before
    } else {
        p.window.next_opening(p.not_before, to.zone)
    };
    let on_holiday = to
        .holidays
        .is_some_and(|h| h.at(opens.max(now), to.zone).is_some());
    let due = now.max(p.not_before);
    if p.expires_at >= now && !on_holiday && waits_for_quiet(p, to, due).is_none() {
        return if opens > now {
            Decision::SendAt {
                at: opens,
                reason: waiting_for_window(opens),
            }
        } else {
            Decision::SendNow
        };
    }
    decide(std::slice::from_ref(p), to, rules, now, p.expires_at)
        .pop()
        .unwrap_or(Decision::SendNow)
}

/// The customer's mail going out in time order, from `now`.
struct Simulation<'a, 'p> {
    pending: &'a [Pending<'p>],
    zone: Tz,
    holidays: Option<&'a Calendar>,
    quiet_until: Option<DateTime<Utc>>,
    rules: &'a Rules,
    /// Sends that count toward the cap, oldest first.
    sent: Vec<DateTime<Utc>>,
    /// When each message goes.
    went: Vec<Option<DateTime<Utc>>>,
    /// Messages that do not go, or not as things stand (held, expired,
    /// crowded out).
    decided: Vec<Option<Decision>>,
}

impl Simulation<'_, '_> {
    fn waiting(&self, i: usize) -> bool {
        self.went[i].is_none() && self.decided[i].is_none()
    }

    /// Moves from instant to instant at which something can go, sending
    /// what may at each, up to `horizon`; every instant after the first
    /// sends at least one message, so this ends. A message left no room
    /// before its expiry expires if `now`'s sends left it none, and is
    /// [`Decision::Crowded`] if later ones did.
    fn run(&mut self, now: DateTime<Utc>, horizon: DateTime<Utc>) {
        let mut t = now;
        loop {
            self.send_at(t);
            // What can no longer go before its expiry expires, or is
            // crowded out.
            let mut next: Option<DateTime<Utc>> = None;
            for i in 0..self.pending.len() {
                if !self.waiting(i) {
                    continue;
                }
                match self.earliest(i, t) {
                    Ok(at) => next = Some(next.map_or(at, |n| n.min(at))),
                    // What went before `now`, and what goes at it, is
                    // decided; only the sends simulated after it can still
                    // change, and only they can have taken its room since.
                    Err(reason) if t == now => self.decided[i] = Some(Decision::Expire(reason)),
                    Err(_) => self.decided[i] = Some(self.crowded(i, t)),
                }
            }
            match next {
                // Nothing left waiting, or (never) no progress.
                None => break,
                Some(n) if n <= t => break,
                Some(n) if n <= horizon => t = n,
                Some(_) => {
                    // Past the horizon: when each would go as things stand.
                    for i in 0..self.pending.len() {
                        if self.waiting(i) {
                            self.went[i] = self.earliest(i, t).ok();
                        }
                    }
                    break;
                }
            }
        }
    }

    /// Sends everything that may go at `t`: urgent and operational mail
    /// first (it never waits for a slot, but takes one), then engagement
    /// mail while the cap has room, the most important first.
    fn send_at(&mut self, t: DateTime<Utc>) {
        let pending = self.pending;
        for (i, p) in pending.iter().enumerate() {
            if self.waiting(i) && !p.engagement() && self.earliest(i, t) == Ok(t) {
                self.went[i] = Some(t);
                // Every message takes a slot, as the store counts what went
                // (`sent_since`): operational ones without waiting for it.
                self.sent.push(t);
            }
        }
        loop {
            let best = (0..self.pending.len())
                .filter(|i| self.waiting(*i) && self.pending[*i].engagement())
                .filter(|i| self.earliest(*i, t) == Ok(t))
                // Among equals the one that expires first, so fewer do;
                // not `not_before`, which waiting moves.
                .min_by_key(|i| {
                    let p = &self.pending[*i];
                    (self.rank(p.category), p.expires_at, *i)
                });
            let Some(i) = best else { break };
            self.went[i] = Some(t);
            self.sent.push(t);
        }
    }

    /// Message `i`, which the sends simulated up to `t` leave no room
    /// before its expiry.
    fn crowded(&self, i: usize, t: DateTime<Utc>) -> Decision {
        let expires = self.pending[i].expires_at;
        let until = (t + CROWDED_RECHECK).min(expires);
        Decision::Crowded {
            until,
            reason: format!(
                "likely to expire: other mail waiting for the customer (more important, due sooner, or operational notices, which never wait) is to take the room under the frequency cap ({} per {}) before its expiry ({}); looked at again by {}",
                self.rules.max,
                period(self.rules.per),
                at(expires),
                at(until)
            ),
        }
    }

    fn rank(&self, category: &str) -> usize {
        let priority = &self.rules.priority;
        priority
            .iter()
            .position(|c| c == category)
            .unwrap_or(priority.len())
    }

    /// The earliest instant at or after `t` message `i` can go, with what
    /// has gone so far; or, when that is past its expiry, why it expires.
    fn earliest(&self, i: usize, t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        let p = &self.pending[i];
        let due = t.max(p.not_before);
        if due > p.expires_at {
            return Err(format!(
                "expired: it could not go out by {} (its step's expiry)",
                at(p.expires_at)
            ));
        }
        if p.urgent {
            return Ok(due);
        }
        if p.operational {
            // The window, unless waiting for it would pass the expiry (a
            // maintenance announcement after the start): then at once.
            // A holiday gives way the same way: an announcement that
            // cannot wait for the next working day goes in the window
            // (or, failing that, at once), never in the night.
            let working = next_working_opening(p.window, due, self.zone, self.holidays);
            let opening = p.window.next_opening(due, self.zone);
            return Ok(if working <= p.expires_at {
                working
            } else if opening <= p.expires_at {
                opening
            } else {
                due
            });
        }
        // Engagement mail waits out a quiet period the customer asked for.
        let due = match self.quiet_until.filter(|q| *q > due) {
            Some(quiet) if quiet > p.expires_at => {
                return Err(format!(
                    "expired: the customer asked for quiet until {} (quiet_until), past its expiry ({})",
                    at(quiet),
                    at(p.expires_at)
                ));
            }
            Some(quiet) => quiet,
            None => due,
        };
        let slot = slot_free(&self.sent, self.rules.max, self.rules.per, due)
            .filter(|slot| *slot <= p.expires_at)
            .ok_or_else(|| {
                format!(
                    "expired waiting for the frequency cap ({} per {})",
                    self.rules.max,
                    period(self.rules.per)
                )
            })?;
        let opening = next_working_opening(p.window, slot, self.zone, self.holidays);
        if opening > p.expires_at {
            // Said with both causes when the cap made it miss the window.
            return Err(if slot > due {
                format!(
                    "expired waiting for the frequency cap ({} per {}) and then the send window: the cap had room from {}, and the window opened after that only past its expiry ({})",
                    self.rules.max,
                    period(self.rules.per),
                    at(slot),
                    at(p.expires_at)
                )
            } else {
                "expired waiting for the send window".into()
            });
        }
        // Later than `slot`, the cap has no less room: what went is all
        // before `t`.
        Ok(opening)
    }
}

/// The first instant at or after `at` with room under the cap, given the
/// counted sends (oldest first, none after `at`); `None` with a cap of 0.
fn slot_free(
    sent: &[DateTime<Utc>],
    max: u32,
    per: Duration,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let max = max as usize;
    if max == 0 {
        return None;
    }
    let recent: Vec<DateTime<Utc>> = sent
        .iter()
        .copied()
        .filter(|s| *s > at - per && *s <= at)
        .collect();
    if recent.len() < max {
        return Some(at);
    }
    // Once this one leaves the period (and every older one with it), there
    // are max - 1 in it.
    Some(recent[recent.len() - max] + per)
}

/// The end of the customer's quiet period when `p`, due at `due`, waits
/// for it (only engagement mail does).
pub fn waits_for_quiet(
    p: &Pending<'_>,
    to: &Recipient<'_>,
    due: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    to.quiet_until.filter(|q| p.engagement() && *q > due)
}

/// Why a message that goes at `goes` does not go at `now`.
fn why_not_now(
    p: &Pending<'_>,
    to: &Recipient<'_>,
    rules: &Rules,
    now: DateTime<Utc>,
    goes: DateTime<Utc>,
) -> String {
    let zone = to.zone;
    let due = now.max(p.not_before);
    if let Some(quiet) = waits_for_quiet(p, to, due) {
        return format!(
            "waiting: the customer asked for quiet until {} (quiet_until); only operational notices reach them before then; it goes at {}",
            at(quiet),
            at(goes)
        );
    }
    // When the window's next opening from when it is due falls on a
    // holiday and it goes at the next working opening, the holiday is why
    // (not the cap, nor only its time).
    if let Some((date, holiday)) = waited_out(p.window, due, goes, zone, to.holidays) {
        let calendar = to.holidays.map_or("", |c| c.name.as_str());
        return format!(
            "waiting: {date} is {holiday} in the customer's holiday calendar ({calendar}); it goes on the next working day in their send window ({})",
            at(goes)
        );
    }
    if p.not_before > now {
        return format!("due at {}", at(goes));
    }
    let opening = p.window.next_opening(now, zone);
    if opening > now {
        return waiting_for_window(goes);
    }
    format!(
        "waiting for the frequency cap ({} per {}) or a more important message; next chance {}",
        rules.max,
        period(rules.per),
        at(goes)
    )
}

/// Why a message that waits only for the customer's send window, opening
/// at `opens`, does not go now.
fn waiting_for_window(opens: DateTime<Utc>) -> String {
    format!(
        "waiting for the customer's send window (opens {})",
        at(opens)
    )
}

/// `7 days`, `36 hours`, `90 minutes`.
fn period(per: Duration) -> String {
    let minutes = per.num_minutes();
    if minutes % (24 * 60) == 0 {
        format!("{} days", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{minutes} minutes")
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
