//! Who may use the console and what they did there: a team member's role,
//! a signed-in session, the audit of sign-ins and changes, and the limit
//! on failed sign-ins. Pure rules; the store keeps the rows, `http::console`
//! serves the pages.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a team member may do in the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page; changes nothing.
    #[default]
    Viewer,
    /// Also opens and resolves incidents, sends broadcasts, lifts
    /// suppressions.
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Manager => "manager",
        }
    }

    /// Whether this role may change what tend does (not only read it).
    pub fn may_change(self) -> bool {
        self == Self::Manager
    }
}

/// A signed-in session, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The team member's `[[team]]` id.
    pub member: String,
    /// The token every form of this session carries (the synchronizer
    /// token pattern): a form posted from another site cannot know it.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A member's password as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Password {
    /// The argon2id hash, in PHC form.
    pub hash: String,
    /// When it was set: failed sign-ins before it no longer count, so a
    /// new password lifts a lockout.
    pub set_at: DateTime<Utc>,
}

/// A session about to be stored: the SHA-256 of its cookie's token (hex),
/// never the token itself, so a copy of the store signs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: String,
    pub session: Session,
}

/// What the audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    SignIn,
    SignInFailed,
    /// A sign-in link was asked for (the entry as typed when it names
    /// nobody, so asking about strangers is limited too).
    SignInLinkAsked,
    /// A sign-in link could not be mailed.
    SignInLinkFailed,
    SignOut,
    PasswordSet,
    SuppressionLifted,
    IncidentOpened,
    MaintenanceScheduled,
    IncidentUpdated,
    IncidentResolved,
    IncidentCancelled,
}

impl AuditAction {
    pub const ALL: [Self; 12] = [
        Self::SignIn,
        Self::SignInFailed,
        Self::SignInLinkAsked,
        Self::SignInLinkFailed,
        Self::SignOut,
        Self::PasswordSet,
        Self::SuppressionLifted,
        Self::IncidentOpened,
        Self::MaintenanceScheduled,
        Self::IncidentUpdated,
        Self::IncidentResolved,
        Self::IncidentCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::SignInFailed => "sign-in failed",
            Self::SignInLinkAsked => "sign-in link asked",
            Self::SignInLinkFailed => "sign-in link not sent",
            Self::SignOut => "sign-out",
            Self::PasswordSet => "password set",
            Self::SuppressionLifted => "suppression lifted",
            Self::IncidentOpened => "incident opened",
            Self::MaintenanceScheduled => "maintenance scheduled",
            Self::IncidentUpdated => "incident updated",
            Self::IncidentResolved => "incident resolved",
            Self::IncidentCancelled => "maintenance cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit: who did what, when, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The team member (for a failed sign-in, the id that was tried).
    pub member: String,
    pub action: AuditAction,
    /// What was changed, or why a sign-in failed.
    pub detail: String,
    /// The client's address as the listener saw it (or as a trusted
    /// proxy forwarded it); empty from the command line.
    pub address: String,
    pub at: DateTime<Utc>,
}

/// How many failed sign-ins are allowed before more wait: per team member
/// (someone guessing one person's password from many addresses) and per
/// client address (someone trying many people's), within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimit {
    pub per_member: u64,
    pub per_address: u64,
    pub window: Duration,
}

impl SignInLimit {
    /// Five tries for one person and twenty from one address in fifteen
    /// minutes: a person who mistypes gets through, a guesser gets a few
    /// hundred tries a day.
    pub const DEFAULT: Self = Self {
        per_member: 5,
        per_address: 20,
        window: Duration::minutes(15),
    };

    /// Three sign-in links for one person and twenty from one address in
    /// fifteen minutes: enough for a mail that was slow to arrive, too few
    /// to fill anyone's mailbox.
    pub const LINKS: Self = Self {
        per_member: 3,
        per_address: 20,
        window: Duration::minutes(15),
    };

    /// Where the count of recent failures starts: the window, or the
    /// member's latest password if set within it (an operator's answer to
    /// a lockout is a new password).
    pub fn since(&self, now: DateTime<Utc>, password_set: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let window = now - self.window;
        password_set.map_or(window, |set| set.max(window))
    }

    /// Whether another try may be checked, given the failures since
    /// [`Self::since`] for this member and from this address.
    pub fn allows(&self, member_failures: u64, address_failures: u64) -> bool {
        member_failures < self.per_member && address_failures < self.per_address
    }
}

/// A person a console search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCustomer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub account_id: Option<String>,
    pub stage: Option<String>,
}

/// An account a console search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundAccount {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub stage: Option<String>,
}

/// What a console search found: the people and accounts whose id is the
/// text, or whose name, its last word, or (a person's) address begins
/// with it, in that order, up to a limit of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub customers: Vec<FoundCustomer>,
    pub accounts: Vec<FoundAccount>,
    /// More matched than the limit: the text could say more.
    pub more: bool,
}

/// How long the overview's figures are served before they are read
/// again: at a million customers reading them takes seconds (every
/// message due this week is counted), so a page shows the last reading
/// and a newer one is made behind it.
pub const OVERVIEW_FRESH: Duration = Duration::minutes(1);

/// Whether figures read at `read_at` are due to be read again at `now`
/// (a clock set back counts as stale too: the figures may be from the
/// future).
pub fn overview_is_stale(read_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - read_at >= OVERVIEW_FRESH || now < read_at
}

/// Where the overview's "today" and "this week" start: midnight, and
/// Monday's midnight, in the team's time zone (`customers.default_timezone`).
/// A midnight that a clock change skips starts at the first instant after.
pub fn today_and_week(now: DateTime<Utc>, zone: chrono_tz::Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::{Datelike, TimeZone};
    let local = now.with_timezone(&zone).date_naive();
    let start = |day: chrono::NaiveDate| {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        zone.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                zone.from_local_datetime(&(midnight + Duration::hours(1)))
                    .earliest()
            })
            .map_or(now, |t| t.with_timezone(&Utc))
    };
    let monday = local - Duration::days(i64::from(local.weekday().num_days_from_monday()));
    (start(local), start(monday))
}

/// The first instants of the `n` weeks up to this one (Monday's midnight
/// in `zone`), oldest first.
pub fn week_starts(now: DateTime<Utc>, zone: chrono_tz::Tz, n: u32) -> Vec<DateTime<Utc>> {
    let (_, this_week) = today_and_week(now, zone);
    (0..n)
        .rev()
        .map(|back| {
            // A week back from a Monday's noon is the Monday before, in
            // any zone and across clock changes.
            let noon = this_week + Duration::hours(12) - Duration::weeks(i64::from(back));
            today_and_week(noon, zone).1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overview_is_read_again_after_a_minute() {
        let read = DateTime::parse_from_rfc3339("2026-12-09T03:30:00Z")
            .unwrap()
            .to_utc();
        assert!(!overview_is_stale(read, read));
        assert!(!overview_is_stale(read, read + Duration::seconds(59)));
        assert!(overview_is_stale(read, read + Duration::seconds(60)));
        assert!(overview_is_stale(read, read + Duration::days(1)));
        assert!(overview_is_stale(read, read - Duration::seconds(1)));
    }

    #[test]
    fn today_and_this_week_begin_at_the_teams_midnight() {
        let now = DateTime::parse_from_rfc3339("2026-12-09T03:30:00Z")
            .unwrap()
            .to_utc();
        // Wednesday 9 December, 03:30 UTC: still Tuesday the 8th in New York.
        let (today, week) = today_and_week(now, chrono_tz::America::New_York);
        assert_eq!(today.to_rfc3339(), "2026-12-08T05:00:00+00:00");
        assert_eq!(week.to_rfc3339(), "2026-12-07T05:00:00+00:00");
        let (today, week) = today_and_week(now, chrono_tz::UTC);
        assert_eq!(today.to_rfc3339(), "2026-12-09T00:00:00+00:00");
        assert_eq!(week.to_rfc3339(), "2026-12-07T00:00:00+00:00");
    }

    #[test]
    fn the_sixth_failure_for_one_person_or_the_twenty_first_from_one_address_waits() {
        let limit = SignInLimit::DEFAULT;
        assert!(limit.allows(4, 19));
        assert!(!limit.allows(5, 0));
        assert!(!limit.allows(0, 20));
    }

    #[test]
    fn twelve_weeks_back_from_this_one_each_start_on_monday() {
        let now = DateTime::parse_from_rfc3339("2026-12-09T03:30:00Z")
            .unwrap()
            .to_utc();
        let starts = week_starts(now, chrono_tz::Europe::Berlin, 12);
        assert_eq!(starts.len(), 12);
        assert_eq!(starts[11].to_rfc3339(), "2026-12-06T23:00:00+00:00");
        // Berlin's summer time ended on 25 October: that week starts at
        // 22:00 UTC the day before, the next at 23:00.
        assert_eq!(starts[4].to_rfc3339(), "2026-10-18T22:00:00+00:00");
        assert_eq!(starts[5].to_rfc3339(), "2026-10-25T23:00:00+00:00");
    }

    #[test]
    fn a_new_password_starts_the_count_again() {
        let limit = SignInLimit::DEFAULT;
        let now = DateTime::parse_from_rfc3339("2026-12-09T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(limit.since(now, None), now - Duration::minutes(15));
        let set = now - Duration::minutes(5);
        assert_eq!(limit.since(now, Some(set)), set);
        assert_eq!(
            limit.since(now, Some(now - Duration::days(3))),
            now - Duration::minutes(15)
        );
    }

    #[test]
    fn audit_actions_read_back() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("reboot"), None);
    }

    #[test]
    fn only_managers_change_things() {
        assert!(!Role::Viewer.may_change());
        assert!(Role::Manager.may_change());
        assert_eq!(Role::default(), Role::Viewer);
    }
}
