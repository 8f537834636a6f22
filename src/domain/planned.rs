//! What planning one page of customers decided, as the store writes it:
//! messages, stage changes, superseded messages, and when to look at each
//! customer next.

use chrono::{DateTime, Utc};

use super::account::AccountId;
use super::catchup::Supersede;
use super::customer::CustomerId;
use super::message::NewMessage;

/// What planning one page of customers produced, for the store to write.
#[derive(Debug, Clone, Default)]
pub struct PlanWrite {
    pub changes: Vec<StageChange>,
    pub planned: Vec<NewMessage>,
    pub expired: Vec<NewMessage>,
    /// Messages still waiting that newer occurrences of their step
    /// supersede: recorded as `expired`, their claims dropped.
    pub superseding: Vec<Supersede>,
    /// When the planner must next look at each customer of the page.
    pub next: Vec<NextCheck>,
}

/// When the planner must next look at one customer, and the `plan_at` the
/// page was read with. The new time is written only if `plan_at` is still
/// the one read: an event, an import or a re-plan that marked the customer
/// meanwhile (every mark moves `plan_at` to a new, earlier value) keeps its
/// mark, so the next pass sees what this one could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextCheck {
    pub id: CustomerId,
    pub at: DateTime<Utc>,
    pub seen: DateTime<Utc>,
}

/// Where a planning pass has got to: the last (plan_at, id) it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub plan_at: DateTime<Utc>,
    pub id: String,
}

impl DueCursor {
    /// Before every customer. Marks move `plan_at` a millisecond below
    /// the epoch each time, so it may be earlier than 1970, never than year 1.
    pub fn start() -> Self {
        Self {
            plan_at: chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc()),
            id: String::new(),
        }
    }
}

/// A customer's move from one lifecycle stage to another.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub customer_id: CustomerId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub at: DateTime<Utc>,
}

/// What recording a planned page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Messages newly planned.
    pub planned: u64,
    /// Messages newly expired: planned too late, or superseded.
    pub expired: u64,
}

/// What planning one page of accounts produced (account-scope playbooks).
#[derive(Debug, Clone, Default)]
pub struct AccountPlanWrite {
    /// Account stage changes, kept so `stage:NAME` anchors fire once per
    /// entry.
    pub changes: Vec<AccountStageChange>,
    /// One message per recipient contact, each with its `account_id`.
    pub planned: Vec<NewMessage>,
    pub expired: Vec<NewMessage>,
    /// An account's messages still waiting that newer occurrences of their
    /// step supersede, whichever contacts they went to.
    pub superseding: Vec<AccountSupersede>,
    /// When the planner must next look at each account of the page.
    pub next: Vec<AccountNextCheck>,
}

/// An account's messages of one step still waiting from before `before`:
/// superseded by a newer occurrence (see `catchup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSupersede {
    pub account_id: AccountId,
    pub playbook: String,
    pub step: String,
    pub before: DateTime<Utc>,
}

/// An account's move from one lifecycle stage to another.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStageChange {
    pub account_id: AccountId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub at: DateTime<Utc>,
}

/// When to look at an account next (guarded by the `plan_at` it was read
/// with, as [`NextCheck`]), and its stage when it moved.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountNextCheck {
    pub id: AccountId,
    pub at: DateTime<Utc>,
    pub seen: DateTime<Utc>,
    /// The stage it moved to (`None`: no stage) and when.
    pub moved: Option<(Option<String>, DateTime<Utc>)>,
}
