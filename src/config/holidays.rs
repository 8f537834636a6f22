//! Holiday calendars from iCalendar files (`[[holidays]]`): each all-day
//! event (`DTSTART;VALUE=DATE`) is a holiday, over every day it spans, and
//! a yearly or other rule (`RRULE`) repeats it. Public calendars (the
//! national holidays most calendar services publish) and a company's own
//! closures are both written this way.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone};
use icalendar::{Component, DatePerhapsTime};

use super::settings::Settings;
use crate::domain::holiday::{Calendar, Calendars};

/// The years a repeating holiday is spelt out for: far enough back for a
/// forecast of past mail, far enough ahead for any send time.
const FIRST_YEAR: i32 = 2000;
const LAST_YEAR: i32 = 2100;
/// The most occurrences one rule yields (a daily rule would otherwise
/// fill the century).
const MOST_OCCURRENCES: u16 = 500;
/// The longest one holiday event may span.
const LONGEST_EVENT: i64 = 366;

/// Every `[[holidays]]` calendar, read from its file, with the one
/// `delivery.holidays` names as the default.
pub fn calendars(settings: &Settings) -> Result<Calendars, String> {
    if let Some(name) = &settings.delivery.holidays
        && !settings.holidays.iter().any(|h| &h.name == name)
    {
        return Err(unknown(name, settings));
    }
    let calendars = settings
        .holidays
        .iter()
        .map(|source| read(&source.name, Path::new(&source.file)))
        .collect::<Result<_, _>>()?;
    Ok(Calendars::new(
        calendars,
        settings.delivery.holidays.clone(),
    ))
}

/// Says that `name` is not a declared calendar.
pub fn unknown(name: &str, settings: &Settings) -> String {
    let declared: Vec<&str> = settings.holidays.iter().map(|h| h.name.as_str()).collect();
    if declared.is_empty() {
        format!(
            "delivery.holidays names the calendar {name:?}, but no [[holidays]] calendar is declared; add one:\n[[holidays]]\nname = {name:?}\nfile = \"config/holidays/{name}.ics\""
        )
    } else {
        format!(
            "delivery.holidays names the calendar {name:?}{}, which is not declared; declared: {}",
            crate::suggest::did_you_mean(name, declared.iter().copied()),
            declared.join(", ")
        )
    }
}

/// Reads the calendar `name` from the iCalendar file `file`.
pub fn read(name: &str, file: &Path) -> Result<Calendar, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        // Absolute: under systemd tend runs in its WorkingDirectory, which
        // is not where the person reading this stands.
        let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        format!(
            "holiday calendar {name:?}: cannot read {} ({e}); check the path (relative to where tend runs) or export the calendar as an .ics file there",
            absolute.display()
        )
    })?;
    parse(name, &text).map_err(|e| format!("holiday calendar {name:?}: {}: {e}", file.display()))
}

/// The holidays of an iCalendar text.
pub fn parse(name: &str, text: &str) -> Result<Calendar, String> {
    let mut calendar: icalendar::Calendar = text.parse().map_err(|e: String| {
        format!(
            "not an iCalendar file ({}); export it as .ics (BEGIN:VCALENDAR … END:VCALENDAR)",
            e.lines().next().unwrap_or_default().trim()
        )
    })?;
    // A repeating all-day event is anchored at midnight in the calendar's
    // zone, or else the machine's, where a zone changing its clocks at
    // midnight would drop that day: UTC has no such day, and the dates
    // come out the same whatever the machine.
    if calendar.get_timezone().is_none() {
        calendar.timezone("UTC");
    }
    let starts = event_lines(text);
    let mut days = BTreeMap::new();
    for (i, event) in calendar.calendar_events().enumerate() {
        let begin = starts.get(i).copied().unwrap_or(1);
        let line = |property: &str| property_line(text, begin, property);
        let summary = event.get_summary().unwrap_or("holiday").trim().to_owned();
        let start = match event.get_start() {
            Some(DatePerhapsTime::Date(date)) => date,
            Some(DatePerhapsTime::DateTime(_)) => {
                return Err(format!(
                    "line {}: {summary:?} starts at a time of day; a holiday is a whole day: write DTSTART;VALUE=DATE:YYYYMMDD",
                    line("DTSTART")
                ));
            }
            None => {
                return Err(format!(
                    "line {}: {summary:?} has no start date this reader understands; write DTSTART;VALUE=DATE:YYYYMMDD",
                    line("DTSTART")
                ));
            }
        };
        let length = match event.get_end() {
            Some(DatePerhapsTime::Date(end)) if end > start => (end - start).num_days(),
            Some(DatePerhapsTime::Date(_)) => {
                return Err(format!(
                    "line {}: {summary:?} ends before it starts; DTEND is the day after the last holiday",
                    line("DTEND")
                ));
            }
            _ => 1,
        };
        if length > LONGEST_EVENT {
            return Err(format!(
                "line {}: {summary:?} spans {length} days; split it, or it would close mail for over a year",
                line("DTEND")
            ));
        }
        let firsts = if event.property_value("RRULE").is_some() {
            occurrences(&event, start)
                .map_err(|e| format!("line {}: {summary:?}: {e}", line("RRULE")))?
        } else {
            vec![start]
        };
        for first in firsts {
            for offset in 0..length {
                days.entry(first + Duration::days(offset))
                    .or_insert_with(|| summary.clone());
            }
        }
    }
    Ok(Calendar::new(name, days))
}

/// The days a repeating event starts on, its own start included.
fn occurrences(
    event: &icalendar::CalendarEvent<'_>,
    start: NaiveDate,
) -> Result<Vec<NaiveDate>, String> {
    let set = event
        .get_recurrence()
        .map_err(|e| format!("its RRULE cannot be read ({e}); e.g. RRULE:FREQ=YEARLY"))?;
    let from = icalendar::Tz::UTC
        .with_ymd_and_hms(FIRST_YEAR, 1, 1, 0, 0, 0)
        .single()
        .ok_or("no start year")?;
    let to = icalendar::Tz::UTC
        .with_ymd_and_hms(LAST_YEAR, 12, 31, 23, 59, 59)
        .single()
        .ok_or("no end year")?;
    let expanded = set.after(from).before(to).all(MOST_OCCURRENCES);
    if expanded.limited {
        return Err(format!(
            "its RRULE repeats more than {MOST_OCCURRENCES} times between {FIRST_YEAR} and {LAST_YEAR}; a holiday calendar holds days off, not a daily or weekly rule (give it an UNTIL or COUNT, or list the days)"
        ));
    }
    let mut days: Vec<NaiveDate> = expanded.dates.iter().map(|d| d.date_naive()).collect();
    days.push(start);
    Ok(days)
}

/// The line of `property` in the event that begins on line `begin` (the
/// event's first line when it has none).
fn property_line(text: &str, begin: usize, property: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(begin)
        .take_while(|(_, l)| !l.trim().eq_ignore_ascii_case("END:VEVENT"))
        .find(|(_, l)| {
            let name = l.split([':', ';']).next().unwrap_or_default();
            name.eq_ignore_ascii_case(property)
        })
        .map_or(begin, |(i, _)| i + 1)
}

/// The line of each `BEGIN:VEVENT`, in order: where a problem with an
/// event is.
fn event_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim().eq_ignore_ascii_case("BEGIN:VEVENT"))
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Acme//Holidays//EN\r\n\
BEGIN:VEVENT\r\nUID:xmas@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Christmas Day\r\n\
DTSTART;VALUE=DATE:20201225\r\nDTEND;VALUE=DATE:20201226\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:offsite@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Company offsite\r\n\
DTSTART;VALUE=DATE:20270503\r\nDTEND;VALUE=DATE:20270506\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn all_day_events_repeat_and_span_their_days() {
        let calendar = parse("team", TEAM).unwrap();
        assert_eq!(calendar.on(date("2020-12-25")), Some("Christmas Day"));
        assert_eq!(calendar.on(date("2026-12-25")), Some("Christmas Day"));
        assert_eq!(calendar.on(date("2099-12-25")), Some("Christmas Day"));
        assert_eq!(calendar.on(date("2026-12-26")), None);
        for day in ["2027-05-03", "2027-05-04", "2027-05-05"] {
            assert_eq!(calendar.on(date(day)), Some("Company offsite"), "{day}");
        }
        assert_eq!(calendar.on(date("2027-05-06")), None, "DTEND is exclusive");
    }

    #[test]
    fn what_is_not_a_holiday_calendar_says_where_and_what_to_write() {
        let e = parse("team", "hello").unwrap_err();
        assert!(e.contains("not an iCalendar file"), "{e}");
        let timed = TEAM.replace("DTSTART;VALUE=DATE:20270503", "DTSTART:20270503T090000Z");
        let e = parse("team", &timed).unwrap_err();
        assert!(
            e.starts_with("line 16: \"Company offsite\" starts at a time of day"),
            "{e}"
        );
        let bad_rule = TEAM.replace("FREQ=YEARLY", "FREQ=YEARLI");
        let e = parse("team", &bad_rule).unwrap_err();
        assert!(
            e.starts_with("line 10: \"Christmas Day\": its RRULE cannot be read"),
            "{e}"
        );
        let backwards = TEAM.replace("DTEND;VALUE=DATE:20270506", "DTEND;VALUE=DATE:20270501");
        let e = parse("team", &backwards).unwrap_err();
        assert!(
            e.starts_with("line 17: \"Company offsite\" ends before it starts"),
            "{e}"
        );
        let weekly = TEAM.replace("FREQ=YEARLY", "FREQ=WEEKLY");
        let e = parse("team", &weekly).unwrap_err();
        assert!(e.contains("repeats more than 500 times"), "{e}");
        let e = read("team", Path::new("/nonexistent/team.ics")).unwrap_err();
        assert!(e.contains("cannot read /nonexistent/team.ics"), "{e}");
        let e = read("team", Path::new("missing/team.ics")).unwrap_err();
        let here = std::env::current_dir().unwrap().join("missing/team.ics");
        assert!(e.contains(&here.display().to_string()), "{e}");
    }
}
