//! Delivery policy for one customer: the frequency cap across all playbooks,
//! the priority order when the cap bites, quiet during incidents, and expiry
//! while waiting. Pure: the delivery worker asks it what may go now, and the
//! forecast asks it when each message would go.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::playbook::Kind;
use super::window::Window;

/// A message waiting to go to one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub kind: Kind,
    pub category: String,
    /// Incident notices: no window, no cap, no quiet.
    pub urgent: bool,
    /// The earliest it may go (its window opening).
    pub send_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What happens to a pending message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It goes at this instant.
    Send(DateTime<Utc>),
    /// It never goes, for this reason.
    Expire(String),
    /// It waits beyond the horizon, for this reason.
    Hold(String),
}

/// The customer's situation and the rules.
pub struct Rules<'a> {
    pub max: u32,
    pub per: Duration,
    /// Categories, most important first; others come after, in due order.
    pub priority: &'a [String],
    pub window: &'a Window,
    pub zone: Tz,
    /// Until when an open incident affecting the customer holds tips and
    /// check-ins (`None`: no incident, or quiet is switched off). An open
    /// incident with no end yet holds them to the horizon.
    pub quiet_until: Option<DateTime<Utc>>,
    /// Non-urgent messages already sent, for the rolling cap.
    pub sent: &'a [DateTime<Utc>],
}

/// Decides each message's fate up to `horizon`, in the order given. Urgent
/// messages go at once; the others go in window, at most `max` per rolling
/// `per`, the most important first when several wait; one whose expiry
/// passes while it waits is expired with the reason.
pub fn schedule(pending: &[Pending], rules: &Rules<'_>, horizon: DateTime<Utc>) -> Vec<Decision> {
    let mut decisions: Vec<Option<Decision>> = vec![None; pending.len()];
    let mut sent: Vec<DateTime<Utc>> = rules.sent.to_vec();
    let rank = |p: &Pending| {
        rules
            .priority
            .iter()
            .position(|c| *c == p.category)
            .unwrap_or(rules.priority.len())
    };
    for (i, p) in pending.iter().enumerate() {
        if p.urgent {
            decisions[i] = Some(Decision::Send(p.send_at));
        }
    }
    let quiet =
        |p: &Pending| matches!(p.kind, Kind::Tip | Kind::Checkin) && rules.quiet_until.is_some();
    let mut now = pending
        .iter()
        .filter(|p| !p.urgent)
        .map(|p| p.send_at)
        .min();
    // Each round sends a message or moves time forward; bounded all the same.
    let mut rounds = 0;
    while let Some(t) = now {
        rounds += 1;
        if t > horizon || rounds > 100_000 {
            break;
        }
        // Everything past its expiry by now is expired.
        for (i, p) in pending.iter().enumerate() {
            if decisions[i].is_none() && p.expires_at < t {
                decisions[i] = Some(Decision::Expire(expiry_reason(p, rules, &sent)));
            }
        }
        let ready = pending
            .iter()
            .enumerate()
            .filter(|(i, p)| decisions[*i].is_none() && p.send_at <= t)
            .filter(|(_, p)| !quiet(p) || rules.quiet_until.is_some_and(|q| q <= t))
            .min_by_key(|(_, p)| (rank(p), p.send_at));
        let in_cap = sent
            .iter()
            .filter(|s| **s > t - rules.per && **s <= t)
            .count()
            < rules.max as usize;
        match ready {
            Some((i, _)) if in_cap => {
                decisions[i] = Some(Decision::Send(t));
                sent.push(t);
            }
            _ => {}
        }
        // The next moment anything can change: a message becomes ready, a
        // cap slot frees, quiet ends; then the window must be open.
        let waiting = |i: usize| decisions[i].is_none();
        let next_ready = pending
            .iter()
            .enumerate()
            .filter(|(i, p)| waiting(*i) && p.send_at > t)
            .map(|(_, p)| p.send_at)
            .min();
        let any_ready_now = pending
            .iter()
            .enumerate()
            .any(|(i, p)| waiting(i) && p.send_at <= t);
        let slot = sent.iter().map(|s| *s + rules.per).filter(|f| *f > t).min();
        let quiet_end = rules.quiet_until.filter(|q| *q > t);
        let candidates = [
            next_ready,
            any_ready_now.then_some(slot).flatten(),
            any_ready_now.then_some(quiet_end).flatten(),
        ];
        now = candidates.into_iter().flatten().min().map(|next| {
            rules
                .window
                .next_opening(next.max(t + Duration::seconds(1)), rules.zone)
        });
        if ready.is_some() && in_cap {
            // Another may be ready at this same instant.
            now = Some(t);
        }
    }
    decisions
        .into_iter()
        .zip(pending)
        .map(|(d, p)| {
            d.unwrap_or_else(|| {
                if quiet(p) {
                    Decision::Hold("held while an open incident affects the customer".into())
                } else {
                    Decision::Hold("waiting for the frequency cap or the send window".into())
                }
            })
        })
        .collect()
}

/// What kept `p` from going before it expired.
fn expiry_reason(p: &Pending, rules: &Rules<'_>, sent: &[DateTime<Utc>]) -> String {
    let at = p.expires_at;
    let held = matches!(p.kind, Kind::Tip | Kind::Checkin)
        && rules.quiet_until.is_some_and(|q| q > p.expires_at);
    if held {
        "expired while held during an incident".into()
    } else if sent
        .iter()
        .filter(|s| **s > at - rules.per && **s <= at)
        .count()
        >= rules.max as usize
    {
        format!(
            "expired waiting for the frequency cap ({} per {} days)",
            rules.max,
            rules.per.num_days()
        )
    } else {
        "expired waiting for the send window".into()
    }
}
