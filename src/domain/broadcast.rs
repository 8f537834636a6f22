//! One-off announcements (`tend broadcast`): a release, a price change.
//! A broadcast puts one message per reached customer into the outbox,
//! where delivery sends it by the same send windows, frequency cap,
//! priorities and suppressions as playbook mail. Before it starts, its
//! [`Reach`] says how many it reaches and when they get it.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::customer::CustomerId;
use super::message::{MessageId, NewMessage, Status};
use super::plan::OccurrenceKey;
use super::playbook::Kind;
use super::policy::Decision;

/// The playbook name a broadcast's messages carry (its id is their step).
pub const PLAYBOOK: &str = "broadcast";
/// Each customer gets a broadcast once: its one occurrence.
pub const OCCURRENCE: &str = "once";
/// A broadcast the cap or the windows hold longer than this is stale: it
/// expires unsent, with the reason.
pub const LIFETIME: Duration = Duration::days(7);

/// What is broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// Letters, digits, `.`, `_`, `-`: the step of its messages.
    pub id: String,
    pub template: String,
    pub category: String,
    pub kind: Kind,
    /// The earliest it goes.
    pub at: DateTime<Utc>,
    /// Its place in `delivery.priority`.
    pub priority: i32,
    /// The domain of Message-IDs (`mail.from`'s).
    pub domain: String,
}

impl Broadcast {
    /// The occurrence a customer's message of this broadcast is.
    pub fn key(&self) -> OccurrenceKey {
        OccurrenceKey {
            playbook: PLAYBOOK.into(),
            step: self.id.clone(),
            occurrence: OCCURRENCE.into(),
        }
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.at + LIFETIME
    }

    /// The outbox message for one customer.
    pub fn message(&self, customer: &CustomerId, to: &str) -> NewMessage {
        let id = MessageId::new();
        NewMessage {
            id,
            customer_id: customer.clone(),
            key: self.key(),
            kind: self.kind,
            category: self.category.clone(),
            template: self.template.clone(),
            survey: None,
            priority: self.priority,
            status: Status::Planned,
            reason: None,
            to: to.into(),
            message_id: format!("{}@{}", id.0.simple(), self.domain),
            due_at: self.at,
            not_before: self.at,
            expires_at: self.expires_at(),
            urgent: false,
            notice: None,
            account_id: None,
        }
    }
}

/// How far a broadcast reaches, as delivery's own policy decides it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reach {
    /// Customers the audience matched.
    pub matched: u64,
    /// Of them, those who left the category or all mail: not sent.
    pub suppressed: u64,
    /// Of them, those who have this broadcast already (a run repeated).
    pub already: u64,
    /// Those it goes to.
    pub reaches: u64,
    /// Of those, how many get it when it starts, and how many wait for
    /// their send window or the frequency cap.
    pub at_start: u64,
    pub waiting: u64,
    /// Held while an open incident affects them (it goes after).
    pub held: u64,
    /// Those the cap keeps from it until it is stale: it expires unsent.
    pub expiring: u64,
    /// When the first and the last of them get it.
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    /// Messages put into the outbox (0 without `--yes`).
    pub queued: u64,
}

impl Reach {
    /// Counts one reached customer by what delivery decides of their copy.
    pub fn count(&mut self, decision: &Decision, at: DateTime<Utc>, now: DateTime<Utc>) {
        self.reaches += 1;
        let goes = match decision {
            Decision::SendNow => Some(now.max(at)),
            Decision::SendAt { at: when, .. } => Some(*when),
            Decision::Hold { .. } => {
                self.held += 1;
                None
            }
            Decision::Expire(_) | Decision::Crowded { .. } => {
                self.expiring += 1;
                None
            }
        };
        if let Some(when) = goes {
            if when <= now.max(at) {
                self.at_start += 1;
            } else {
                self.waiting += 1;
            }
            self.first_at = Some(self.first_at.map_or(when, |t| t.min(when)));
            self.last_at = Some(self.last_at.map_or(when, |t| t.max(when)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn broadcast() -> Broadcast {
        Broadcast {
            id: "release-3".into(),
            template: "release".into(),
            category: "announcements".into(),
            kind: Kind::Tip,
            at: Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap(),
            priority: 5,
            domain: "acme.example".into(),
        }
    }

    #[test]
    fn a_customer_gets_one_message_of_it_by_the_rules() {
        let b = broadcast();
        let m = b.message(&CustomerId::parse("c1").unwrap(), "c1@example.com");
        assert_eq!(m.key.playbook, PLAYBOOK);
        assert_eq!(m.key.step, "release-3");
        assert_eq!((m.due_at, m.not_before), (b.at, b.at));
        assert_eq!(m.expires_at, b.at + LIFETIME);
        assert!(!m.urgent, "windows and the cap apply");
        assert!(m.message_id.ends_with("@acme.example"));
        assert!(super::super::incident::valid_id("release-3"));
    }

    #[test]
    fn reach_counts_when_each_gets_it() {
        let b = broadcast();
        let mut reach = Reach::default();
        reach.count(&Decision::SendNow, b.at, b.at);
        let later = b.at + Duration::hours(20);
        reach.count(
            &Decision::SendAt {
                at: later,
                reason: "window".into(),
            },
            b.at,
            b.at,
        );
        reach.count(&Decision::Expire("cap".into()), b.at, b.at);
        assert_eq!(
            (reach.reaches, reach.at_start, reach.waiting, reach.expiring),
            (3, 1, 1, 1)
        );
        assert_eq!((reach.first_at, reach.last_at), (Some(b.at), Some(later)));
    }
}
