//! Whether a playbook step can reach a customer at all, and if not, what
//! keeps them out: the audience or `when` condition that is false (with the
//! values it read), or the date the step is anchored on that the customer
//! does not have. For `preview`, so a success manager reads "this customer
//! would not get this step, because …" instead of a template error about an
//! empty date. Pure: the step, the customer and their history in, a reason
//! out; when the step is due is the planner's business, not this.

use std::fmt;

use chrono::{DateTime, Utc};

use super::condition::{Condition, Facts};
use super::customer::Customer;
use super::plan::History;
use super::playbook::{Anchor, Playbook, Step, Trigger};
use super::timestamp::parse_instant;

/// Why a step would never reach a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// What keeps the customer out, in words (`the audience of playbook
    /// renewals`).
    pub what: String,
    /// The condition's text, for a condition.
    pub condition: Option<String>,
    /// What it came to for this customer (`is false`, or why it could not
    /// be evaluated).
    pub outcome: String,
    /// The customer's values the condition read, as `customer.plan = "free"`.
    pub seen: Vec<(String, String)>,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.condition {
            Some(source) => write!(f, "{} `{source}` {}", self.what, self.outcome)?,
            None => write!(f, "{} {}", self.what, self.outcome)?,
        }
        if !self.seen.is_empty() {
            let seen: Vec<String> = self
                .seen
                .iter()
                .map(|(name, value)| format!("{name} = {value}"))
                .collect();
            write!(f, " (this customer has {})", seen.join(", "))?;
        }
        Ok(())
    }
}

/// What keeps `customer` from ever getting `step` of `playbook` at `now`,
/// or nothing when the step can reach them.
pub fn exclusion(
    playbook: &Playbook,
    step: &Step,
    customer: &Customer,
    history: &History,
    now: DateTime<Utc>,
) -> Option<Exclusion> {
    let events = history.event_facts();
    let sent = history.sent_in(&playbook.name);
    let facts = Facts {
        customer,
        account: history.account.as_ref(),
        now,
        events: &events,
        sent: &sent,
    };
    let audience = playbook
        .audience
        .as_ref()
        .map(|c| (format!("the audience of playbook {}", playbook.name), c));
    let when = step.when.as_ref().map(|c| {
        (
            format!(
                "the `when` of step {} in playbook {}",
                step.id, playbook.name
            ),
            c,
        )
    });
    audience
        .into_iter()
        .chain(when)
        .find_map(|(what, condition)| excluded_by(what, condition, &facts))
        .or_else(|| unanchored(step, customer, history))
}

fn excluded_by(what: String, condition: &Condition, facts: &Facts<'_>) -> Option<Exclusion> {
    let outcome = match condition.holds(facts) {
        Ok(true) => return None,
        Ok(false) => "is false".to_owned(),
        Err(e) if e.missing_key => {
            "reads an attribute this customer does not have, so it does not hold".to_owned()
        }
        Err(e) => format!(
            "cannot be evaluated for this customer, so it does not hold: {}",
            e.message
        ),
    };
    Some(Exclusion {
        what,
        condition: Some(condition.source().to_owned()),
        outcome,
        seen: condition.seen(facts.customer),
    })
}

/// A step anchored on a date or an entry the customer does not have.
fn unanchored(step: &Step, customer: &Customer, history: &History) -> Option<Exclusion> {
    let Trigger::Anchor { anchor, .. } = &step.trigger else {
        return None;
    };
    let record = &customer.record;
    let missing = |field: &str| {
        Some(Exclusion {
            what: format!("step {}", step.id),
            condition: None,
            outcome: format!(
                "is timed from customer.{field}, which this customer does not have; set it (import or API) for the step to be planned"
            ),
            seen: Vec::new(),
        })
    };
    match anchor {
        Anchor::SignupAt if record.signup_at.is_none() => missing("signup_at"),
        Anchor::RenewalAt if record.renewal_at.is_none() => missing("renewal_at"),
        Anchor::LastSeenAt if record.last_seen_at.is_none() => missing("last_seen_at"),
        Anchor::Attribute(name) => {
            let at = record
                .attributes
                .get(name)
                .and_then(|v| v.as_str())
                .and_then(|s| parse_instant(s, record.timezone).ok());
            if at.is_none() {
                missing(&format!("attributes.{name} (as a date)"))
            } else {
                None
            }
        }
        Anchor::Event(name) if !history.events.iter().any(|e| &e.name == name) => Some(Exclusion {
            what: format!("step {}", step.id),
            condition: None,
            outcome: format!("follows the event {name:?}, which this customer has not had"),
            seen: Vec::new(),
        }),
        Anchor::Stage(stage) if !history.stage_entries.iter().any(|e| &e.stage == stage) => {
            Some(Exclusion {
                what: format!("step {}", step.id),
                condition: None,
                outcome: format!(
                    "follows entry into the stage {stage:?}, which this customer has not entered"
                ),
                seen: Vec::new(),
            })
        }
        _ => None,
    }
}
