//! Which leased messages may go now, and what becomes of the rest. Pure: a
//! function of the batch, what each customer was recently sent, the rules
//! and `now`, built on the same `domain::policy` the forecast uses.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::domain::customer::CustomerId;
use crate::domain::message::{Outgoing, Settle, Status};
use crate::domain::playbook::Kind;
use crate::domain::policy::{self, Decision, Pending};
use crate::domain::window::Windows;

/// How far ahead to look for when a waiting message can go.
const LOOKAHEAD: Duration = Duration::days(60);

pub struct Rules {
    pub windows: Windows,
    pub max: u32,
    pub per: Duration,
    pub priority: Vec<String>,
    /// Tips and check-ins wait while an open incident affects the customer.
    pub quiet_during_incidents: bool,
}

/// How often a message held for an incident looks again: it goes soon
/// after the incident is resolved.
pub const QUIET_RECHECK: Duration = Duration::minutes(15);

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Splits a batch into messages to send now and settlements for the others.
pub fn triage(
    batch: Vec<Outgoing>,
    sent: &HashMap<CustomerId, Vec<DateTime<Utc>>>,
    quiet: &HashMap<CustomerId, String>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> (Vec<Outgoing>, Vec<Settle>) {
    let mut ready = Vec::new();
    let mut settled = Vec::new();
    let mut by_customer: HashMap<CustomerId, Vec<Outgoing>> = HashMap::new();
    for m in batch {
        if let Some(reason) = &m.suppressed {
            let reason = format!("suppressed: {reason}");
            settled.push(Settle::end(&m, Status::Suppressed, reason));
        } else if m.urgent && m.expires_at >= now {
            // Urgent mail skips the window and the cap, never its expiry:
            // a late maintenance announcement expires at the start.
            ready.push(m);
        } else if m.expires_at < now {
            let reason = format!(
                "expired: it could not go out by {} (its step's expiry)",
                at(m.expires_at)
            );
            settled.push(Settle::end(&m, Status::Expired, reason));
        } else if let Some(incident) = quiet
            .get(&m.customer.record.id)
            .filter(|_| matches!(m.kind, Kind::Tip | Kind::Checkin))
        {
            let reason = format!(
                "held while incident {incident} affects the customer; it goes once the incident is resolved"
            );
            settled.push(Settle::hold(&m, now + QUIET_RECHECK, reason));
        } else {
            by_customer
                .entry(m.customer.record.id.clone())
                .or_default()
                .push(m);
        }
    }
    for (customer, messages) in by_customer {
        let zone = messages[0].customer.record.timezone;
        let pending: Vec<Pending> = messages
            .iter()
            .map(|m| Pending {
                kind: m.kind,
                category: m.category.clone(),
                urgent: false,
                send_at: rules
                    .windows
                    .of(&m.key.playbook)
                    .next_opening(m.not_before.max(now), zone),
                expires_at: m.expires_at,
            })
            .collect();
        let already = sent.get(&customer).map(Vec::as_slice).unwrap_or(&[]);
        let policy_rules = policy::Rules {
            max: rules.max,
            per: rules.per,
            priority: &rules.priority,
            window: rules.windows.general(),
            zone,
            quiet_until: None,
            sent: already,
        };
        let decisions = policy::schedule(&pending, &policy_rules, now + LOOKAHEAD);
        for ((m, p), decision) in messages.into_iter().zip(&pending).zip(decisions) {
            match decision {
                Decision::Send(t) if t <= now => ready.push(m),
                Decision::Send(t) => {
                    let reason = if p.send_at > now {
                        format!("waiting for the customer's send window (opens {})", at(t))
                    } else {
                        format!(
                            "waiting for the frequency cap ({} per {} days) or a more important message; next chance {}",
                            rules.max,
                            rules.per.num_days(),
                            at(t)
                        )
                    };
                    settled.push(Settle::hold(&m, t, reason));
                }
                Decision::Expire(reason) => settled.push(Settle::end(&m, Status::Expired, reason)),
                Decision::Hold(reason) => {
                    settled.push(Settle::hold(&m, now + Duration::days(1), reason));
                }
            }
        }
    }
    (ready, settled)
}
