//! Catch-up: what becomes of occurrences that fall due while their
//! predecessors wait. After a gap (downtime, a new playbook, a late import)
//! a recurring step sends at most its latest missed occurrence, and a
//! sequence (the anchored steps of one playbook on one anchor occurrence)
//! its latest missed step; the others are recorded once as `expired`, with
//! the reason, never sent in a burst. Pure: the planner and the forecast
//! both decide with these functions.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::customer::CustomerId;
use super::plan::{Due, OccurrenceKey};
use super::window::Window;

/// Why an occurrence of a recurring step did not go (the reason a
/// `tend messages` line shows).
pub const SUPERSEDED: &str = "superseded by a later occurrence";

/// Why an earlier step of a sequence did not go: `step` came due with it.
pub fn superseded_by_step(step: &str) -> String {
    format!("superseded by a later step of its sequence ({step})")
}

/// When a message would first go: at the first opening of `window` from
/// `send_at` (its own opening) or from `now`, whichever is later. Urgent
/// mail ignores the window.
pub fn goes_at(
    send_at: DateTime<Utc>,
    now: DateTime<Utc>,
    urgent: bool,
    window: &Window,
    zone: Tz,
) -> DateTime<Utc> {
    let earliest = send_at.max(now);
    if urgent {
        earliest
    } else {
        window.next_opening(earliest, zone)
    }
}

/// Whether the occurrence of a recurring step due at `due_at` is superseded
/// by the step's next occurrence, due at `next`, when it would otherwise go
/// at `goes` (see [`goes_at`]; its own window opening is `send_at`):
///
/// - the next falls due before it has gone (it waited past it, for the
///   window, the cap, or because nobody planned it in time), or
/// - it waits for the window and the next falls due inside the very opening
///   it would go in: a daily 10:00 step does not send Sunday's at 09:00
///   on Monday and Monday's at 10:00.
///
/// An occurrence that goes when it falls due is never superseded by the
/// next: an hourly step sends every hour of its window.
pub fn superseded(
    due_at: DateTime<Utc>,
    send_at: DateTime<Utc>,
    goes: DateTime<Utc>,
    next: DateTime<Utc>,
    window: &Window,
    zone: Tz,
) -> bool {
    if next <= goes {
        return true;
    }
    send_at > due_at && next < closing(window, goes, zone)
}

/// Whether a message the schedule sends at `goes` is overtaken by a later
/// occurrence of its step due at `next`: the planner supersedes it when it
/// plans that one, if it is still waiting.
pub fn overtaken(goes: DateTime<Utc>, next: DateTime<Utc>) -> bool {
    next <= goes
}

/// The end of the window opening that `inside` falls in: that local
/// day's window end in `zone` (an opening never spans a local midnight).
fn closing(window: &Window, inside: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let end = inside
        .with_timezone(&zone)
        .date_naive()
        .and_time(window.end);
    // An end that a DST change skips comes at the first local time after it.
    (0..=180)
        .find_map(|m| {
            (end + Duration::minutes(m))
                .and_local_timezone(zone)
                .earliest()
        })
        .map_or(inside, |t| t.with_timezone(&Utc))
}

/// A waiting message that a newly planned occurrence supersedes: every
/// message of (`customer`, `playbook`, `step`) still waiting in the outbox
/// whose time is before `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supersede {
    pub customer_id: CustomerId,
    pub playbook: String,
    pub step: String,
    pub before: DateTime<Utc>,
}

/// What a pass's new occurrences supersede in the outbox: for each
/// recurring step with an occurrence due by `now` among `due` (whatever
/// becomes of that occurrence) and a message `waiting` in the outbox, the
/// step's messages still waiting from before the latest. Any of them would
/// go after it has fallen due.
pub fn waiting_superseded(
    customer: &CustomerId,
    due: &[Due],
    waiting: &HashSet<OccurrenceKey>,
    now: DateTime<Utc>,
) -> Vec<Supersede> {
    let waits = |d: &Due| {
        waiting
            .iter()
            .any(|w| w.playbook == d.key.playbook && w.step == d.key.step)
    };
    let mut latest: Vec<Supersede> = Vec::new();
    for d in due
        .iter()
        .filter(|d| d.recurring && d.due_at <= now && waits(d))
    {
        match latest
            .iter_mut()
            .find(|s| s.playbook == d.key.playbook && s.step == d.key.step)
        {
            Some(s) => s.before = s.before.max(d.due_at),
            None => latest.push(Supersede {
                customer_id: customer.clone(),
                playbook: d.key.playbook.clone(),
                step: d.key.step.clone(),
                before: d.due_at,
            }),
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::window::WindowSpec;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_late_occurrence_gives_way_to_the_next_in_its_opening() {
        let w = WindowSpec::default().parse().unwrap();
        let zone = chrono_tz::UTC;
        // Sunday 10:00 waits for Monday 09:00; Monday's 10:00 is in that opening.
        let sunday = t("2026-03-08T10:00:00Z");
        let monday = t("2026-03-09T09:00:00Z");
        assert!(superseded(
            sunday,
            monday,
            monday,
            t("2026-03-09T10:00:00Z"),
            &w,
            zone
        ));
        // An hourly step inside the window goes every hour.
        let ten = t("2026-03-09T10:00:00Z");
        assert!(!superseded(
            ten,
            ten,
            t("2026-03-09T10:00:30Z"),
            t("2026-03-09T11:00:00Z"),
            &w,
            zone
        ));
        // 08:00 waits for 09:00; tomorrow's 08:00 is another opening.
        let eight = t("2026-03-09T08:00:00Z");
        assert!(!superseded(
            eight,
            monday,
            monday,
            t("2026-03-10T08:00:00Z"),
            &w,
            zone
        ));
    }
}
