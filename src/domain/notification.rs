//! Notifications: each delivery of a signal to one target (an alert by
//! email to a person, a POST to a webhook endpoint), with its retries.
//! Rows of one target go out in the order they were routed.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// How a notification travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Mail to a person, through the mail transport.
    Email,
    /// A signed Standard Webhooks POST.
    Webhook,
    /// A Slack incoming webhook: `{"text": …}`, unsigned.
    Slack,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Slack => "slack",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Email, Self::Webhook, Self::Slack]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// A notification about to be stored by routing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub signal_id: String,
    /// Whose queue it joins: `webhook:NAME`, or `alert:RULE:ADDRESS`.
    pub target: String,
    pub channel: Channel,
    /// The address (email) or the endpoint's name (webhook, Slack).
    pub recipient: String,
    pub subject: Option<String>,
    /// Where a reply to an alert goes: the customer it is about.
    pub reply_to: Option<String>,
    /// The exact body: JSON for webhooks and Slack, text for mail.
    pub body: String,
    pub customer_id: Option<String>,
    /// Set when the target's backlog is full: stored as `dropped`, with
    /// this reason, never sent.
    pub dropped: Option<String>,
}

/// A notification claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub signal_id: String,
    pub target: String,
    pub channel: Channel,
    pub recipient: String,
    pub subject: Option<String>,
    pub reply_to: Option<String>,
    pub body: String,
    /// Attempts before this one.
    pub attempts: u32,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// Tried again at `at`; the target's later rows wait behind it.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up: too old, or refused for good.
    Failed {
        error: String,
    },
}

/// When a notification that failed `attempts` times goes again: the
/// Standard Webhooks schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 14 h, 20 h, 24 h), about three days in all; `None` once spent.
pub fn retry_after(attempts: u32) -> Option<Duration> {
    const SCHEDULE: [i64; 9] = [
        5,
        5 * 60,
        30 * 60,
        2 * 3600,
        5 * 3600,
        10 * 3600,
        14 * 3600,
        20 * 3600,
        24 * 3600,
    ];
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    SCHEDULE.get(index).map(|s| Duration::seconds(*s))
}

/// One target's queue, as `tend webhooks` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetStatus {
    pub target: String,
    /// Waiting to go (including one being retried).
    pub backlog: u64,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Sent, or not, when an instance died mid-send (mail is not sent twice).
    pub unknown: u64,
    pub oldest_waiting: Option<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_for_about_three_days() {
        assert_eq!(retry_after(0), None);
        assert_eq!(retry_after(1), Some(Duration::seconds(5)));
        assert_eq!(retry_after(9), Some(Duration::hours(24)));
        assert_eq!(retry_after(10), None);
        let total: i64 = (1..=9)
            .filter_map(retry_after)
            .map(|d| d.num_seconds())
            .sum();
        assert!((3 * 86_400..4 * 86_400).contains(&total), "{total}");
    }

    #[test]
    fn channels_read_back_what_they_store() {
        for c in [Channel::Email, Channel::Webhook, Channel::Slack] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }
}
