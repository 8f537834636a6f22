//! Holiday calendars: the days on which a customer gets no mail that can
//! wait. A calendar is a set of dates with their names, read from an
//! iCalendar file at the edge (`config::holidays`); which days are
//! holidays is local to the customer, so a date is asked in their zone.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::window::{Window, first_instant};

/// One named calendar of holidays (`[[holidays]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub name: String,
    days: BTreeMap<NaiveDate, String>,
}

/// The most holidays in a row the next working moment is looked for
/// across: a calendar that closes a whole year is a mistake, not a reason
/// to search forever.
const LONGEST_CLOSURE: i64 = 366;

impl Calendar {
    /// A calendar of `days`, each with its holiday's name.
    pub fn new(name: &str, days: BTreeMap<NaiveDate, String>) -> Self {
        Self {
            name: name.to_owned(),
            days,
        }
    }

    /// The holiday on `date`, if it is one.
    pub fn on(&self, date: NaiveDate) -> Option<&str> {
        self.days.get(&date).map(String::as_str)
    }

    /// How many days it holds.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Whether it holds no day.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The holiday at instant `at` in `zone`, if it falls on one.
    pub fn at(&self, at: DateTime<Utc>, zone: Tz) -> Option<&str> {
        self.on(at.with_timezone(&zone).date_naive())
    }
}

/// Every declared calendar (`[[holidays]]`), and the one that applies to
/// whoever names none (`delivery.holidays`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendars {
    by_name: HashMap<String, Calendar>,
    default: Option<String>,
}

impl Calendars {
    /// `calendars`, with `default` (one of them) for whoever names none.
    pub fn new(calendars: Vec<Calendar>, default: Option<String>) -> Self {
        Self {
            by_name: calendars.into_iter().map(|c| (c.name.clone(), c)).collect(),
            default,
        }
    }

    /// The calendar of someone who keeps `named`: that one, else the
    /// default. A name no longer declared (the config dropped it after
    /// the import) falls back to the default too, so they are not mailed
    /// on every holiday for a typo in the config.
    pub fn of(&self, named: Option<&str>) -> Option<&Calendar> {
        named
            .and_then(|n| self.by_name.get(n))
            .or_else(|| self.default.as_deref().and_then(|d| self.by_name.get(d)))
    }
}

/// The earliest instant at or after `at` inside `window` (in `zone`) that
/// is not on a holiday of `holidays`: a window's opening on a holiday moves
/// to the next working day's.
pub fn next_working_opening(
    window: &Window,
    at: DateTime<Utc>,
    zone: Tz,
    holidays: Option<&Calendar>,
) -> DateTime<Utc> {
    let mut opening = window.next_opening(at, zone);
    let Some(holidays) = holidays else {
        return opening;
    };
    for _ in 0..LONGEST_CLOSURE {
        let local = opening.with_timezone(&zone).date_naive();
        if holidays.on(local).is_none() {
            return opening;
        }
        let next_day = (local + Duration::days(1)).and_time(NaiveTime::MIN);
        // Where midnight is skipped (a DST change at 00:00), the day
        // begins at its first instant.
        opening = window.next_opening(first_instant(next_day, zone), zone);
    }
    opening
}

/// The holiday a message due at `due` waits out, when that is why it goes
/// at `goes`: the window's next opening from `due` falls on a holiday and
/// `goes` is the next working opening. Its local date and its name.
pub fn waited_out<'h>(
    window: &Window,
    due: DateTime<Utc>,
    goes: DateTime<Utc>,
    zone: Tz,
    holidays: Option<&'h Calendar>,
) -> Option<(NaiveDate, &'h str)> {
    let calendar = holidays?;
    let opening = window.next_opening(due, zone);
    let holiday = calendar.at(opening, zone)?;
    (goes == next_working_opening(window, due, zone, holidays))
        .then(|| (opening.with_timezone(&zone).date_naive(), holiday))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::window::WindowSpec;

    fn calendar(days: &[(&str, &str)]) -> Calendar {
        Calendar::new(
            "team",
            days.iter()
                .map(|(d, n)| (d.parse().unwrap(), (*n).to_owned()))
                .collect(),
        )
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_opening_on_a_holiday_moves_to_the_next_working_day() {
        let window = WindowSpec::default().parse().unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        let holidays = calendar(&[("2026-12-24", "Heiligabend"), ("2026-12-25", "Weihnachten")]);
        // Thursday 24 December 10:00 in Berlin: Christmas Eve and Day are
        // holidays, then the weekend: Monday 28 December 09:00.
        let at = utc("2026-12-24T09:00:00Z");
        assert_eq!(
            next_working_opening(&window, at, berlin, Some(&holidays)),
            utc("2026-12-28T08:00:00Z")
        );
        assert_eq!(next_working_opening(&window, at, berlin, None), at);
        // 23 December 23:30 UTC is already the 24th in Berlin.
        assert_eq!(
            holidays.at(utc("2026-12-23T23:30:00Z"), berlin),
            Some("Heiligabend")
        );
        assert_eq!(holidays.at(utc("2026-12-23T22:30:00Z"), berlin), None);
    }

    #[test]
    fn a_calendar_that_closes_everything_ends_the_search() {
        let window = WindowSpec::default().parse().unwrap();
        let start: NaiveDate = "2027-01-01".parse().unwrap();
        let every_day: BTreeMap<NaiveDate, String> = (0..800)
            .map(|i| (start + Duration::days(i), "closed".to_owned()))
            .collect();
        let closed = Calendar::new("closed", every_day);
        let at = utc("2027-01-04T10:00:00Z");
        let found = next_working_opening(&window, at, chrono_tz::UTC, Some(&closed));
        assert!(found > at + Duration::days(360), "{found}");
    }
}
