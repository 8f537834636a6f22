//! Instants as people write them in files: RFC 3339, or a date alone, which
//! means midnight in the customer's own time zone.

use chrono::{DateTime, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses `2026-03-01T09:30:00Z`, `2026-03-01T09:30:00+01:00` or `2026-03-01`
/// (midnight in `zone`).
pub fn parse_instant(raw: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = raw.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return midnight(date, zone).ok_or_else(|| {
            format!("{text:?} has no midnight in {zone} (a time-zone change skips it); give a full RFC 3339 time")
        });
    }
    Err(format!(
        "{text:?} is not a time; write RFC 3339 such as 2026-03-01T09:30:00Z, or a date such as 2026-03-01"
    ))
}

/// The first instant of `date` in `zone`. Where a DST change skips midnight
/// (e.g. America/Santiago), the day starts at the first instant that exists.
fn midnight(date: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    let start = date.and_hms_opt(0, 0, 0)?;
    match zone.from_local_datetime(&start) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => (1..=3).find_map(|h| {
            zone.from_local_datetime(&date.and_hms_opt(h, 0, 0)?)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_dates() {
        let utc = parse_instant("2026-03-01T09:30:00+01:00", Tz::UTC).unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-03-01T08:30:00+00:00");
        let tokyo = parse_instant("2026-03-01", chrono_tz::Asia::Tokyo).unwrap();
        assert_eq!(tokyo.to_rfc3339(), "2026-02-28T15:00:00+00:00");
        let kathmandu = parse_instant("2026-03-01", chrono_tz::Asia::Kathmandu).unwrap();
        assert_eq!(kathmandu.to_rfc3339(), "2026-02-28T18:15:00+00:00");
        assert!(parse_instant("yesterday", Tz::UTC).is_err());
        assert!(parse_instant("2026-02-30", Tz::UTC).is_err());
    }

    #[test]
    fn skipped_midnight_starts_the_day_at_the_first_real_instant() {
        // Chile moved clocks from 00:00 to 01:00 on 2026-09-06.
        let t = parse_instant("2026-09-06", chrono_tz::America::Santiago).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }
}
