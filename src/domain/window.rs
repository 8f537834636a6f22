//! Send windows: the weekdays and local hours in which non-urgent mail may
//! reach a customer, e.g. `{ days = "mon-fri", start = "09:00", end = "17:00" }`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::holiday::{Calendar, Calendars};

/// A window as written in config; `parse` validates it. A key left out of
/// `delivery.window` keeps its default (`mon-fri`, `09:00`, `17:00`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSpec {
    pub days: String,
    pub start: String,
    pub end: String,
}

impl Default for WindowSpec {
    fn default() -> Self {
        Self {
            days: "mon-fri".into(),
            start: "09:00".into(),
            end: "17:00".into(),
        }
    }
}

/// A validated window: local weekdays and a local time range `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub days: BTreeSet<u32>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// The send windows in force: `delivery.window`, those playbooks set for
/// themselves, and the holidays on which none opens. Planning, delivery
/// and the forecast all ask here which one a message goes in.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    general: Window,
    own: HashMap<String, Window>,
    calendars: Arc<Calendars>,
}

impl Windows {
    /// `own` holds the playbooks' windows, by playbook name.
    pub fn new(general: Window, own: HashMap<String, Window>) -> Self {
        Self {
            general,
            own,
            calendars: Arc::default(),
        }
    }

    /// The same windows, closed on each customer's holidays.
    pub fn closed_on(mut self, calendars: Calendars) -> Self {
        self.calendars = Arc::new(calendars);
        self
    }

    /// The holidays the windows stay closed on for someone who keeps the
    /// calendar `named` (theirs or their account's, see
    /// `Customer::availability`), else `delivery.holidays`.
    pub fn holidays(&self, named: Option<&str>) -> Option<&Calendar> {
        self.calendars.of(named)
    }

    /// The window `playbook`'s messages go in.
    pub fn of(&self, playbook: &str) -> &Window {
        self.own.get(playbook).unwrap_or(&self.general)
    }

    /// `delivery.window`: for what no one playbook decides (the frequency
    /// cap's next slot).
    pub fn general(&self) -> &Window {
        &self.general
    }
}

/// A playbook's own window: the keys it sets replace those of
/// `delivery.window`, and the others come from there, so
/// `window = { days = "sat" }` sends on Saturdays in the usual hours.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowOverride {
    pub days: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

impl WindowOverride {
    /// The window in force: these keys over `general`'s.
    pub fn over(&self, general: &WindowSpec) -> WindowSpec {
        let pick =
            |own: &Option<String>, general: &String| own.clone().unwrap_or_else(|| general.clone());
        WindowSpec {
            days: pick(&self.days, &general.days),
            start: pick(&self.start, &general.start),
            end: pick(&self.end, &general.end),
        }
    }

    /// The keys taken from `general`, as they would be written here; empty
    /// when this window sets them all.
    pub fn inherited(&self, general: &WindowSpec) -> Vec<String> {
        [
            ("days", &self.days, &general.days),
            ("start", &self.start, &general.start),
            ("end", &self.end, &general.end),
        ]
        .into_iter()
        .filter(|(_, own, _)| own.is_none())
        .map(|(key, _, general)| format!("{key} = {general:?}"))
        .collect()
    }
}

impl WindowSpec {
    pub fn parse(&self) -> Result<Window, String> {
        let days = parse_days(&self.days)?;
        let start = parse_clock(&self.start, "start")?;
        let end = parse_clock(&self.end, "end")?;
        if end <= start {
            return Err(format!(
                "the window ends at {} before it starts at {}; end must be later than start on the same day",
                self.end, self.start
            ));
        }
        Ok(Window { days, start, end })
    }
}

impl Window {
    /// Whether a local weekday and time fall inside the window.
    pub fn contains(&self, day: Weekday, time: NaiveTime) -> bool {
        self.days.contains(&day.num_days_from_monday()) && time >= self.start && time < self.end
    }
}

impl Window {
    /// The earliest instant at or after `at` inside the window, in `zone`'s
    /// local time. A window start that a DST change skips opens at the first
    /// local time that exists.
    pub fn next_opening(&self, at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&zone);
        if self.contains(local.weekday(), local.time()) {
            return at;
        }
        let today = local.date_naive();
        // Eight days reach every weekday, even across a DST change.
        for offset in 0..8 {
            let date = today + Duration::days(offset);
            if !self.days.contains(&date.weekday().num_days_from_monday()) {
                continue;
            }
            let opening = first_instant(date.and_time(self.start), zone);
            let closing = first_instant(date.and_time(self.end), zone);
            if opening >= at {
                return opening;
            }
            if at < closing {
                return at; // inside today's window (only reachable across a DST edge)
            }
        }
        at // no day in the window: unreachable for a parsed window
    }
}

/// The instant of a local time; in a DST gap, the first instant after it.
pub(super) fn first_instant(local: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => (1..=180)
            .find_map(|m| {
                zone.from_local_datetime(&(local + Duration::minutes(m)))
                    .earliest()
            })
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc)),
    }
}

fn parse_clock(raw: &str, which: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| {
        format!("window {which} {raw:?} is not a time of day; write HH:MM such as 09:00")
    })
}

/// `mon-fri`, `sat,sun`, `mon-wed,fri`, `all` (days as Monday = 0).
fn parse_days(raw: &str) -> Result<BTreeSet<u32>, String> {
    let text = raw.trim().to_ascii_lowercase();
    if text == "all" || text == "*" {
        return Ok((0..7).collect());
    }
    let mut days = BTreeSet::new();
    for part in text.split(',').map(str::trim) {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let (from, to) = (weekday(from.trim(), raw)?, weekday(to.trim(), raw)?);
        // A range may wrap the week end: `fri-mon`.
        let mut day = from;
        loop {
            days.insert(day);
            if day == to {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(days)
}

fn weekday(name: &str, whole: &str) -> Result<u32, String> {
    name.parse::<Weekday>()
        .map(|d| d.num_days_from_monday())
        .map_err(|_| {
            format!("window days {whole:?} names no weekday {name:?}; write e.g. mon-fri, sat,sun or all")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(days: &str, start: &str, end: &str) -> WindowSpec {
        WindowSpec {
            days: days.into(),
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn a_playbook_window_takes_the_keys_it_leaves_out_from_the_general_one() {
        let general = spec("mon-fri", "08:00", "18:00");
        let only_days = WindowOverride {
            days: Some("sat".into()),
            start: None,
            end: None,
        };
        assert_eq!(only_days.over(&general), spec("sat", "08:00", "18:00"));
        assert_eq!(
            only_days.inherited(&general),
            [r#"start = "08:00""#, r#"end = "18:00""#]
        );
        let all = WindowOverride {
            days: Some("all".into()),
            start: Some("07:00".into()),
            end: Some("09:00".into()),
        };
        assert_eq!(all.over(&general), spec("all", "07:00", "09:00"));
        assert!(all.inherited(&general).is_empty());
    }

    #[test]
    fn parses_days_and_hours() {
        let w = WindowSpec::default().parse().unwrap();
        assert_eq!(w.days, (0..5).collect());
        let t = |s| NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert!(w.contains(Weekday::Mon, t("09:00")));
        assert!(!w.contains(Weekday::Mon, t("17:00")));
        assert!(!w.contains(Weekday::Sat, t("10:00")));
        assert_eq!(
            spec("fri-mon", "08:00", "09:00").parse().unwrap().days,
            [0, 4, 5, 6].into()
        );
        assert_eq!(spec("all", "08:00", "09:00").parse().unwrap().days.len(), 7);
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_opening_in_several_zones() {
        let w = WindowSpec::default().parse().unwrap();
        // Inside: unchanged.
        assert_eq!(
            w.next_opening(utc("2026-03-02T10:00:00Z"), Tz::UTC),
            utc("2026-03-02T10:00:00Z")
        );
        // Saturday 03:00Z → Monday 09:00 local.
        let sat = utc("2026-03-07T03:00:00Z");
        assert_eq!(w.next_opening(sat, Tz::UTC), utc("2026-03-09T09:00:00Z"));
        assert_eq!(
            w.next_opening(sat, chrono_tz::America::New_York),
            utc("2026-03-09T13:00:00Z")
        );
        assert_eq!(
            w.next_opening(sat, chrono_tz::Asia::Tokyo),
            utc("2026-03-09T00:00:00Z")
        );
        assert_eq!(
            w.next_opening(sat, chrono_tz::Asia::Kathmandu),
            utc("2026-03-09T03:15:00Z")
        );
        // Friday after 17:00 in New York → Monday 09:00.
        assert_eq!(
            w.next_opening(utc("2026-03-06T23:00:00Z"), chrono_tz::America::New_York),
            utc("2026-03-09T13:00:00Z")
        );
        // Before opening on a weekday → same day.
        assert_eq!(
            w.next_opening(utc("2026-03-03T05:00:00Z"), Tz::UTC),
            utc("2026-03-03T09:00:00Z")
        );
    }

    #[test]
    fn a_window_opening_in_a_dst_gap_opens_at_the_first_real_time() {
        // US clocks jump from 02:00 to 03:00 on Sunday 2026-03-08.
        let w = spec("sun", "02:30", "04:00").parse().unwrap();
        let opening = w.next_opening(utc("2026-03-08T05:00:00Z"), chrono_tz::America::New_York);
        assert_eq!(opening, utc("2026-03-08T07:00:00Z")); // 03:00 EDT
    }

    #[test]
    fn rejects_nonsense() {
        assert!(spec("mon-fry", "09:00", "17:00").parse().is_err());
        assert!(spec("mon-fri", "9am", "17:00").parse().is_err());
        assert!(spec("mon-fri", "17:00", "09:00").parse().is_err());
    }
}
