//! Incidents and scheduled maintenance, and the notices they send: pure
//! types and decisions (states, who gets which notice, when maintenance is
//! announced). The store keeps them; `crate::incident` runs them.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::customer::CustomerId;
use super::message::{NewMessage, Notice, Status};
use super::plan::OccurrenceKey;
use super::playbook::Kind;

/// The outbox's playbook name for every notice (the step says which one,
/// the occurrence names the incident).
pub const PLAYBOOK: &str = "incident";

/// Whether `id` may name an incident or a broadcast (the occurrence or the
/// step of their messages): letters, digits, `.`, `_`, `-`, at most 64.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The category notices are sent (and unsubscribed) under.
pub const CATEGORY: &str = "incidents";
/// The category of maintenance announcements.
pub const MAINTENANCE_CATEGORY: &str = "maintenance";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentKind {
    Incident,
    Maintenance,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Maintenance => "maintenance",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "incident" => Some(Self::Incident),
            "maintenance" => Some(Self::Maintenance),
            _ => None,
        }
    }
}

/// Where an incident stands. Incidents go investigating → identified →
/// monitoring → resolved; maintenance goes scheduled → in_progress →
/// completed (by itself at its start and end), or is cancelled before it
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Scheduled,
    InProgress,
    Completed,
    Cancelled,
}

impl IncidentStatus {
    pub const ALL: [Self; 8] = [
        Self::Investigating,
        Self::Identified,
        Self::Monitoring,
        Self::Resolved,
        Self::Scheduled,
        Self::InProgress,
        Self::Completed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
            Self::Scheduled => "scheduled",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "{raw:?} is not an incident status; use one of {}",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }

    /// Resolved, completed or cancelled: no more notices, no more quiet.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Resolved | Self::Completed | Self::Cancelled)
    }

    /// Whether an update may set this status on an incident of `kind`
    /// (closing has its own command).
    pub fn fits(self, kind: IncidentKind) -> bool {
        let incident = matches!(
            self,
            Self::Investigating | Self::Identified | Self::Monitoring
        );
        let maintenance = matches!(self, Self::Scheduled | Self::InProgress);
        match kind {
            IncidentKind::Incident => incident,
            IncidentKind::Maintenance => maintenance,
        }
    }
}

/// One incident or maintenance, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    pub kind: IncidentKind,
    pub title: String,
    pub status: IncidentStatus,
    /// The CEL selector over customers, evaluated when it opened.
    pub affects: String,
    /// The opening notice's template (or announcement's, for maintenance).
    pub template: String,
    pub message: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Incident {
    /// What a notice's template sees as `incident`, with the words of the
    /// update it announces.
    pub fn context(&self, message: &str) -> Value {
        let at = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        json!({
            "id": self.id,
            "title": self.title,
            "kind": self.kind.as_str(),
            "status": self.status.as_str(),
            "message": message,
            "starts_at": at(self.starts_at),
            "ends_at": at(self.ends_at),
        })
    }
}

/// An incident as `tend incident list` shows it (the JSON shape is a
/// contract).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentView {
    pub id: String,
    #[serde(skip)]
    pub kind: IncidentKind,
    pub title: String,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Customers who got (or are getting) the opening notice.
    pub notified: i64,
}

/// Someone a follow-up notice goes to: they got the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub customer_id: CustomerId,
    pub to: String,
    /// Their first notice's Message-ID, which follow-ups reply to.
    pub first_message_id: String,
}

/// What one notice to one customer is.
pub struct NoticeSpec<'a> {
    pub incident: &'a Incident,
    /// `open`, `update-3`, `resolved`, `announce-7d`, `completed`,
    /// `cancelled`.
    pub step: String,
    pub template: &'a str,
    /// The words this notice announces.
    pub message: &'a str,
    pub due_at: DateTime<Utc>,
    /// Incident notices and late maintenance announcements go at once.
    pub urgent: bool,
    pub expires_at: DateTime<Utc>,
    pub priority: i32,
    /// The domain of Message-IDs (`mail.from`'s).
    pub domain: &'a str,
}

impl NoticeSpec<'_> {
    /// The outbox message for one customer.
    pub fn message(
        &self,
        customer: &CustomerId,
        to: &str,
        in_reply_to: Option<&str>,
    ) -> NewMessage {
        let id = super::message::MessageId::new();
        let (kind, category) = match self.incident.kind {
            IncidentKind::Incident => (Kind::Incident, CATEGORY),
            IncidentKind::Maintenance => (Kind::Reminder, MAINTENANCE_CATEGORY),
        };
        NewMessage {
            id,
            customer_id: customer.clone(),
            key: OccurrenceKey {
                playbook: PLAYBOOK.into(),
                step: self.step.clone(),
                occurrence: self.incident.id.clone(),
            },
            kind,
            category: category.into(),
            template: self.template.into(),
            survey: None,
            priority: self.priority,
            status: Status::Planned,
            reason: None,
            to: to.into(),
            message_id: format!("{}@{}", id.0.simple(), self.domain),
            due_at: self.due_at,
            not_before: self.due_at,
            expires_at: self.expires_at,
            urgent: self.urgent,
            notice: Some(Notice {
                incident_id: self.incident.id.clone(),
                incident: self.incident.context(self.message),
                in_reply_to: in_reply_to.map(str::to_owned),
            }),
            account_id: None,
        }
    }
}

/// When a maintenance starting at `starts` is announced, given the lead
/// times (`7d`, `1d`, `1h`): one announcement per lead whose time has not
/// passed at `now` (a customer told today is not told "in a week"), and
/// whether it is urgent (within `urgent_within` of the start: no window).
pub fn announcements(
    starts: DateTime<Utc>,
    leads: &[Duration],
    urgent_within: Duration,
    now: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>, bool)> {
    let mut out: Vec<(String, DateTime<Utc>, bool)> = leads
        .iter()
        .filter(|lead| starts - **lead >= now)
        .map(|lead| {
            (
                format!("announce-{}", lead_name(*lead)),
                starts - *lead,
                *lead <= urgent_within,
            )
        })
        .collect();
    // Told nothing ahead (it starts sooner than the shortest lead): one
    // urgent announcement now.
    if out.is_empty() && starts > now {
        out.push(("announce-now".into(), now, true));
    }
    out.sort_by_key(|(_, at, _)| *at);
    out
}

/// What a maintenance's own clock does to it: it starts at `starts_at` and
/// completes by itself at `ends_at`, each at that instant (however late the
/// pass that notices it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// scheduled → in_progress; its announcements still waiting expire.
    Start(DateTime<Utc>),
    /// → completed; anything still waiting is withdrawn.
    Complete(DateTime<Utc>),
}

/// The transitions due for `incident` at `now`, in order: none for an
/// incident, or a maintenance closed by hand; both when a gap in the passes
/// spans the whole maintenance (so its announcements expire with the start
/// as their reason, and it still completes).
pub fn transitions(incident: &Incident, now: DateTime<Utc>) -> Vec<Transition> {
    if incident.kind != IncidentKind::Maintenance || incident.resolved_at.is_some() {
        return Vec::new();
    }
    let mut due = Vec::new();
    if incident.status == IncidentStatus::Scheduled
        && let Some(starts) = incident.starts_at.filter(|s| *s <= now)
    {
        due.push(Transition::Start(starts));
    }
    if let Some(ends) = incident.ends_at.filter(|e| *e <= now) {
        due.push(Transition::Complete(ends));
    }
    due
}

/// Why an announcement still waiting at the start never goes.
pub fn started_reason(starts: DateTime<Utc>) -> String {
    format!(
        "expired: the maintenance started at {} before this announcement went out",
        starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Why an announcement still waiting when a maintenance closes (completed
/// early by hand, or cancelled) never goes.
pub fn withdrawn_reason(status: IncidentStatus, at: DateTime<Utc>) -> String {
    format!(
        "withdrawn: the maintenance was {} at {} before this announcement went out",
        status.as_str(),
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// `7d`, `36h`, `90m`: the largest whole unit.
fn lead_name(lead: Duration) -> String {
    let minutes = lead.num_minutes();
    if minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn maintenance_is_announced_at_each_lead_still_ahead() {
        let starts = t("2026-03-14T02:00:00Z");
        let leads = [Duration::days(7), Duration::days(1), Duration::hours(1)];
        let all = announcements(
            starts,
            &leads,
            Duration::hours(1),
            t("2026-03-01T00:00:00Z"),
        );
        let names: Vec<_> = all
            .iter()
            .map(|(n, at, urgent)| (n.as_str(), *at, *urgent))
            .collect();
        assert_eq!(
            names,
            [
                ("announce-7d", t("2026-03-07T02:00:00Z"), false),
                ("announce-1d", t("2026-03-13T02:00:00Z"), false),
                ("announce-1h", t("2026-03-14T01:00:00Z"), true),
            ]
        );
        // Scheduled two days ahead: the week's notice is not sent late.
        let late = announcements(
            starts,
            &leads,
            Duration::hours(1),
            t("2026-03-12T02:00:00Z"),
        );
        assert_eq!(
            late.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
            ["announce-1d", "announce-1h"]
        );
        // Half an hour ahead: one urgent notice now.
        let now = t("2026-03-14T01:30:00Z");
        assert_eq!(
            announcements(starts, &leads, Duration::hours(1), now),
            [("announce-now".into(), now, true)]
        );
        assert!(
            announcements(
                starts,
                &leads,
                Duration::hours(1),
                t("2026-03-15T00:00:00Z")
            )
            .is_empty()
        );
    }

    fn maintenance(status: IncidentStatus) -> Incident {
        Incident {
            id: "MNT-1".into(),
            kind: IncidentKind::Maintenance,
            title: "DB upgrade".into(),
            status,
            affects: "true".into(),
            template: "incidents/maintenance".into(),
            message: String::new(),
            starts_at: Some(t("2026-12-12T02:00:00Z")),
            ends_at: Some(t("2026-12-12T04:00:00Z")),
            opened_at: t("2026-12-01T10:00:00Z"),
            resolved_at: None,
        }
    }

    #[test]
    fn a_maintenance_starts_and_completes_by_its_own_clock() {
        let scheduled = maintenance(IncidentStatus::Scheduled);
        let starts = t("2026-12-12T02:00:00Z");
        let ends = t("2026-12-12T04:00:00Z");
        assert!(transitions(&scheduled, t("2026-12-12T01:59:59Z")).is_empty());
        assert_eq!(transitions(&scheduled, starts), [Transition::Start(starts)]);
        // The first pass after a gap that spans it: both, start first.
        assert_eq!(
            transitions(&scheduled, t("2026-12-14T09:00:00Z")),
            [Transition::Start(starts), Transition::Complete(ends)]
        );
        let running = maintenance(IncidentStatus::InProgress);
        assert!(transitions(&running, t("2026-12-12T03:00:00Z")).is_empty());
        assert_eq!(transitions(&running, ends), [Transition::Complete(ends)]);
        // Closed by hand: the clock no longer moves it.
        let done = Incident {
            resolved_at: Some(t("2026-12-10T00:00:00Z")),
            ..maintenance(IncidentStatus::Cancelled)
        };
        assert!(transitions(&done, t("2026-12-14T00:00:00Z")).is_empty());
        let incident = Incident {
            kind: IncidentKind::Incident,
            ..maintenance(IncidentStatus::Investigating)
        };
        assert!(transitions(&incident, t("2026-12-14T00:00:00Z")).is_empty());
        assert_eq!(
            started_reason(starts),
            "expired: the maintenance started at 2026-12-12T02:00:00Z before this announcement went out"
        );
    }

    #[test]
    fn statuses_fit_their_kind() {
        assert!(IncidentStatus::Identified.fits(IncidentKind::Incident));
        assert!(!IncidentStatus::InProgress.fits(IncidentKind::Incident));
        assert!(IncidentStatus::InProgress.fits(IncidentKind::Maintenance));
        assert!(
            !IncidentStatus::Cancelled.fits(IncidentKind::Maintenance),
            "cancelling has its own command"
        );
        assert!(IncidentStatus::Cancelled.is_closed());
        assert!(
            !IncidentStatus::Resolved.fits(IncidentKind::Incident),
            "resolving has its own command"
        );
        assert!(
            IncidentStatus::parse("nope")
                .unwrap_err()
                .contains("investigating, identified")
        );
    }
}
