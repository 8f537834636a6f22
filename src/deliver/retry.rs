//! When to try a failed message again, and what a server's refusal means.
//! Pure: the worker asks, the store records.

use chrono::{DateTime, Duration, Utc};

/// The wait before try number `attempts + 1`: 5 minutes, doubling, at most
/// 6 hours, so a server that is down for a day gets about a dozen tries.
pub fn backoff(attempts: u32) -> Duration {
    let doubling = attempts.saturating_sub(1).min(10);
    (Duration::minutes(5) * 2i32.pow(doubling)).min(Duration::hours(6))
}

/// What to do after a transient failure at `now`: the next try, or `None`
/// when the message has been failing for longer than `max_age`.
pub fn next_try(
    first_attempt: DateTime<Utc>,
    attempts: u32,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Option<DateTime<Utc>> {
    let next = now + backoff(attempts);
    (next - first_attempt <= max_age).then_some(next)
}

/// The RFC 3463 enhanced status code at the start of a reply's text
/// (`5.1.1 User unknown` → `(5, 1, 1)`).
pub fn enhanced_status(text: &str) -> Option<(u8, u16, u16)> {
    // Replies may repeat the basic code first: "550 5.1.1 …" or "550-5.1.1 …".
    let words = text.split(|c: char| c.is_whitespace() || c == '-');
    for word in words.take(6) {
        let mut parts = word.split('.');
        if let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
            && let (Ok(class), Ok(subject), Ok(detail)) = (
                class.parse::<u8>(),
                subject.parse::<u16>(),
                detail.parse::<u16>(),
            )
            && matches!(class, 2 | 4 | 5)
        {
            return Some((class, subject, detail));
        }
    }
    None
}

/// Whether a permanent refusal says the address itself is bad (5.1.x), so
/// no further mail should go to it.
pub fn is_bad_address(text: &str) -> bool {
    matches!(enhanced_status(text), Some((5, 1, _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let minutes: Vec<i64> = (1..=9).map(|n| backoff(n).num_minutes()).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 320, 360, 360]);
        assert_eq!(backoff(0).num_minutes(), 5);
        assert_eq!(backoff(u32::MAX).num_minutes(), 360);
    }

    #[test]
    fn retries_stop_at_the_maximum_age() {
        let first: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let max = Duration::days(3);
        assert!(next_try(first, 1, first, max).is_some());
        let late = first + Duration::days(3) - Duration::hours(1);
        assert_eq!(next_try(first, 20, late, max), None);
    }

    #[test]
    fn enhanced_codes_are_read_from_replies() {
        assert_eq!(
            enhanced_status("5.1.1 <a@b>: Recipient address rejected"),
            Some((5, 1, 1))
        );
        assert_eq!(
            enhanced_status("550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
            Some((5, 1, 10))
        );
        assert_eq!(
            enhanced_status("550-5.1.1 The email account does not exist"),
            Some((5, 1, 1))
        );
        assert_eq!(enhanced_status("Mailbox unavailable"), None);
        assert!(is_bad_address("permanent error (550): 5.1.1 user unknown"));
        assert!(!is_bad_address("5.7.1 message rejected as spam"));
        assert!(!is_bad_address("4.1.1 try later"));
    }
}
