//! Which leased messages go now, and what becomes of the rest: suppression
//! here, everything else (expiry, urgency, send window, frequency cap,
//! priority, quiet during incidents) by `domain::policy::decide`, the same
//! function the forecast calls. Pure: a function of the batch, what each
//! customer was recently sent, which open incident affects them, the rules
//! and `now`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::customer::CustomerId;
use crate::domain::message::{Outgoing, Settle, Status};
use crate::domain::policy::{self, Decision, Pending, QUIET_PERIOD_RECHECK, Recipient};
use crate::domain::window::Windows;

/// How far ahead to look for when a waiting message can go.
const LOOKAHEAD: Duration = Duration::days(60);

pub struct Rules {
    pub windows: Windows,
    pub policy: policy::Rules,
}

/// Splits a batch into messages to send now (in the order they were
/// leased) and settlements for the others. `incidents` names, for each
/// customer an open incident affects, that incident.
pub fn triage(
    batch: Vec<Outgoing>,
    sent: &HashMap<CustomerId, Vec<DateTime<Utc>>>,
    incidents: &HashMap<CustomerId, String>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> (Vec<Outgoing>, Vec<Settle>) {
    let mut ready = Vec::new();
    let mut settled = Vec::new();
    let mut by_customer: HashMap<CustomerId, Vec<(usize, Outgoing)>> = HashMap::new();
    for (order, m) in batch.into_iter().enumerate() {
        if let Some(reason) = &m.suppressed {
            let reason = format!("suppressed: {reason}");
            settled.push(Settle::end(&m, Status::Suppressed, reason));
        } else {
            by_customer
                .entry(m.customer.record.id.clone())
                .or_default()
                .push((order, m));
        }
    }
    for (customer, messages) in by_customer {
        let to = Recipient::of(
            &messages[0].1.customer,
            &rules.windows,
            sent.get(&customer).map(Vec::as_slice).unwrap_or(&[]),
            incidents.get(&customer).map(String::as_str),
        );
        let pending: Vec<Pending<'_>> = messages
            .iter()
            .map(|(_, m)| Pending::waiting(m, &rules.windows))
            .collect();
        let decisions = policy::decide(&pending, &to, &rules.policy, now, now + LOOKAHEAD);
        for ((order, m), decision) in messages.into_iter().zip(decisions) {
            match decision {
                Decision::SendNow => ready.push((order, m)),
                Decision::SendAt { at, reason }
                | Decision::Hold { until: at, reason }
                | Decision::Crowded { until: at, reason } => {
                    settled.push(Settle::hold(&m, look_again(at, &to, now), reason));
                }
                Decision::Expire(reason) => {
                    settled.push(Settle::end(&m, Status::Expired, reason));
                }
            }
        }
    }
    // In the order the store leased them: oldest first.
    ready.sort_by_key(|(order, _)| *order);
    (ready.into_iter().map(|(_, m)| m).collect(), settled)
}

/// When to look again at a message held until `at`: then, but within
/// [`QUIET_PERIOD_RECHECK`] while the customer is quiet, so a quiet period
/// ended early (the record imported again without it) releases what it
/// held within the hour, not at its old end.
fn look_again(at: DateTime<Utc>, to: &Recipient<'_>, now: DateTime<Utc>) -> DateTime<Utc> {
    match to.quiet_until {
        Some(quiet) if quiet > now => at.min(now + QUIET_PERIOD_RECHECK),
        _ => at,
    }
}
