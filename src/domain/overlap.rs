//! Steps of different playbooks that would reach the same customer close
//! together for the same purpose: a new renewal playbook beside the
//! shipped `renewal-30d` sends two renewal mails at once. Found by planning
//! a sample of customers ahead (the planner's own `plan::due`), so it sees
//! what the playbooks would really do, windows included. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::customer::Customer;
use super::plan::{self, CronMemo, History, Horizon};
use super::playbook::{Playbook, Step, Trigger};
use super::window::Window;

/// Two steps that would reach the same customers within `per` of each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// `playbook/step`, the first in name order.
    pub first: String,
    pub second: String,
    /// Why they are the same purpose, in words.
    pub why: String,
    /// How many of the sampled customers both would reach.
    pub customers: usize,
    /// One of them, with when each step would go.
    pub example: (String, DateTime<Utc>, DateTime<Utc>),
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (who, a, b) = &self.example;
        write!(
            f,
            "{} and {} ({}) would both reach {} customer{} within the frequency cap's period (e.g. {who}: {} and {}); give one an audience or `when` that leaves the other's customers out, or remove one",
            self.first,
            self.second,
            self.why,
            self.customers,
            if self.customers == 1 { "" } else { "s" },
            a.format("%Y-%m-%d %H:%M UTC"),
            b.format("%Y-%m-%d %H:%M UTC"),
        )
    }
}

/// What the search looks at.
pub struct Sample<'a> {
    pub customers: &'a [(Customer, History)],
    pub playbooks: &'a [Playbook],
    pub window: &'a Window,
    /// Two messages closer than this count as together: the cap's period.
    pub within: Duration,
    pub now: DateTime<Utc>,
    /// How far ahead to plan.
    pub until: DateTime<Utc>,
}

/// Every pair of steps of different playbooks, with the same category or
/// the same timing, that would reach one of the sampled customers within
/// `within` of each other.
pub fn overlaps(sample: &Sample<'_>) -> Vec<Overlap> {
    let cron = CronMemo::default();
    let horizon = Horizon {
        now: sample.now,
        until: sample.until,
        window: sample.window,
        cron: &cron,
    };
    let step = |playbook: &str, id: &str| -> Option<&Step> {
        sample
            .playbooks
            .iter()
            .find(|p| p.name == playbook)
            .and_then(|p| p.steps.iter().find(|s| s.id == id))
    };
    let mut found: BTreeMap<(String, String), Overlap> = BTreeMap::new();
    for (customer, history) in sample.customers {
        // Each pair once per customer, however often a recurring step meets it.
        let mut theirs: BTreeMap<(String, String), Overlap> = BTreeMap::new();
        let due = plan::due(customer, sample.playbooks, history, &horizon);
        for (i, a) in due.iter().enumerate() {
            for b in &due[i + 1..] {
                if a.key.playbook == b.key.playbook
                    || (a.send_at - b.send_at).abs() >= sample.within
                {
                    continue;
                }
                let why = if a.category == b.category {
                    format!("both category {}", a.category)
                } else if let (Some(sa), Some(sb)) = (
                    step(&a.key.playbook, &a.key.step),
                    step(&b.key.playbook, &b.key.step),
                ) && same_timing(&sa.trigger, &sb.trigger)
                {
                    "the same timing".to_owned()
                } else {
                    continue;
                };
                let name = |d: &plan::Due| format!("{}/{}", d.key.playbook, d.key.step);
                let (first, second) = if name(a) <= name(b) { (a, b) } else { (b, a) };
                theirs
                    .entry((name(first), name(second)))
                    .or_insert_with(|| Overlap {
                        first: name(first),
                        second: name(second),
                        why,
                        customers: 1,
                        example: (
                            customer.record.id.as_str().to_owned(),
                            first.send_at,
                            second.send_at,
                        ),
                    });
            }
        }
        for (pair, overlap) in theirs {
            found
                .entry(pair)
                .and_modify(|o| o.customers += 1)
                .or_insert(overlap);
        }
    }
    found.into_values().collect()
}

fn same_timing(a: &Trigger, b: &Trigger) -> bool {
    match (a, b) {
        (
            Trigger::Anchor {
                anchor: x,
                offset: ox,
            },
            Trigger::Anchor {
                anchor: y,
                offset: oy,
            },
        ) => x == y && ox == oy,
        (Trigger::Cron { pattern: x, .. }, Trigger::Cron { pattern: y, .. }) => x == y,
        _ => false,
    }
}
