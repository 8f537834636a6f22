//! The send policy delivery and the forecast both run
//! (`domain::policy::decide`): the cap with priorities, operational mail
//! never held by the cap but counted toward it, maintenance announcements
//! and the send window, quiet during incidents, urgent notices, expiry; and
//! that delivery, deciding again at each instant, does what the forecast
//! said it would.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use tend::domain::playbook::Kind;
use tend::domain::policy::{
    CROWDED_RECHECK, Decision, Pending, QUIET_RECHECK, Recipient, Rules, decide,
};
use tend::domain::window::{Window, WindowSpec};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window() -> Window {
    WindowSpec::default().parse().unwrap()
}

fn rules(max: u32) -> Rules {
    Rules {
        max,
        per: Duration::days(7),
        priority: ["incidents", "maintenance", "checkins", "onboarding", "tips"]
            .map(String::from)
            .to_vec(),
        quiet_during_incidents: true,
    }
}

/// Engagement mail (a playbook's tip, check-in or reminder).
fn item<'a>(w: &'a Window, kind: Kind, category: &'a str, at: &str, days: i64) -> Pending<'a> {
    Pending {
        kind,
        category,
        urgent: false,
        operational: false,
        not_before: t(at),
        expires_at: t(at) + Duration::days(days),
        window: w,
    }
}

/// A maintenance announcement due at `at` for a maintenance starting at
/// `starts` (when it expires).
fn announcement<'a>(w: &'a Window, at: &str, starts: &str) -> Pending<'a> {
    Pending {
        kind: Kind::Reminder,
        category: "maintenance",
        urgent: false,
        operational: true,
        not_before: t(at),
        expires_at: t(starts),
        window: w,
    }
}

fn to<'a>(sent: &'a [DateTime<Utc>], incident: Option<&'a str>) -> Recipient<'a> {
    Recipient {
        zone: Tz::UTC,
        sent,
        incident,
        holidays: None,
        quiet_until: None,
    }
}

const MONDAY: &str = "2026-03-02T09:00:00Z";
const HORIZON: &str = "2026-04-01T00:00:00Z";

#[test]
fn the_cap_lets_the_most_important_through_and_the_rest_wait_or_expire() {
    let w = window();
    let items = [
        item(&w, Kind::Tip, "tips", MONDAY, 3),
        item(&w, Kind::Checkin, "checkins", MONDAY, 14),
        item(&w, Kind::Reminder, "maintenance", MONDAY, 14),
    ];
    let d = decide(&items, &to(&[], None), &rules(2), t(MONDAY), t(HORIZON));
    assert_eq!(d[2], Decision::SendNow, "maintenance first");
    assert_eq!(d[1], Decision::SendNow, "then the check-in");
    match &d[0] {
        Decision::Expire(reason) => {
            assert!(reason.contains("frequency cap (2 per 7 days)"), "{reason}")
        }
        other => panic!("the tip should expire waiting for the cap, not {other:?}"),
    }
}

#[test]
fn a_waiting_message_goes_when_a_slot_frees_inside_the_window() {
    let w = window();
    // Two sent last Tuesday and Wednesday at 10:00; the cap frees next Tuesday 10:00.
    let sent = [t("2026-02-24T10:00:00Z"), t("2026-02-25T10:00:00Z")];
    let items = [item(&w, Kind::Tip, "tips", MONDAY, 7)];
    let d = decide(&items, &to(&sent, None), &rules(2), t(MONDAY), t(HORIZON));
    match &d[0] {
        Decision::SendAt { at, reason } => {
            assert_eq!(*at, t("2026-03-03T10:00:00Z"));
            assert!(reason.contains("frequency cap (2 per 7 days)"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_message_the_cap_pushes_out_of_its_window_names_both_causes() {
    let w = window();
    // Sent last Saturday 03:00 and this Monday 08:00: the cap has room
    // from next Saturday 03:00, outside the Monday-to-Friday window, and
    // the tip expires on the Sunday.
    let sent = [t("2026-02-28T03:00:00Z"), t("2026-03-02T08:00:00Z")];
    let items = [item(&w, Kind::Tip, "tips", MONDAY, 6)];
    let d = decide(&items, &to(&sent, None), &rules(2), t(MONDAY), t(HORIZON));
    assert_eq!(
        d[0],
        Decision::Expire(
            "expired waiting for the frequency cap (2 per 7 days) and then the send window: the cap had room from 2026-03-07T03:00:00Z, and the window opened after that only past its expiry (2026-03-08T09:00:00Z)".into()
        )
    );
}

#[test]
fn urgent_notices_ignore_cap_window_and_quiet_but_not_their_expiry() {
    let w = window();
    let sent = [t("2026-03-06T10:00:00Z"), t("2026-03-06T11:00:00Z")];
    let saturday = "2026-03-07T03:00:00Z";
    let mut notice = item(&w, Kind::Incident, "incidents", saturday, 1);
    notice.urgent = true;
    notice.operational = true;
    let d = decide(
        &[notice.clone()],
        &to(&sent, Some("INC-1")),
        &rules(2),
        t(saturday),
        t(HORIZON),
    );
    assert_eq!(d, [Decision::SendNow]);
    let late = t(saturday) + Duration::days(2);
    let d = decide(&[notice], &to(&sent, None), &rules(2), late, t(HORIZON));
    assert!(
        matches!(&d[0], Decision::Expire(r) if r.contains("could not go out by 2026-03-08T03:00:00Z")),
        "{d:?}"
    );
}

#[test]
fn operational_mail_is_never_held_by_the_cap_but_takes_a_slot() {
    let w = window();
    // Tips used both slots on Monday and Tuesday.
    let sent = [t("2026-03-02T10:00:00Z"), t("2026-03-03T10:00:00Z")];
    let friday = "2026-03-06T12:00:00Z";
    let tip = item(&w, Kind::Tip, "tips", friday, 14);
    let alone = decide(
        std::slice::from_ref(&tip),
        &to(&sent, None),
        &rules(2),
        t(friday),
        t(HORIZON),
    );
    assert!(
        matches!(&alone[0], Decision::SendAt { at, .. } if *at == t("2026-03-09T10:00:00Z")),
        "{alone:?}"
    );
    let items = [tip, announcement(&w, friday, "2026-03-13T12:00:00Z")];
    let d = decide(&items, &to(&sent, None), &rules(2), t(friday), t(HORIZON));
    assert_eq!(
        d[1],
        Decision::SendNow,
        "the announcement goes over the cap"
    );
    assert!(
        matches!(&d[0], Decision::SendAt { at, .. } if *at == t("2026-03-10T10:00:00Z")),
        "the tip waits a day longer, for the slot the announcement took: {d:?}"
    );
}

#[test]
fn an_announcement_waits_for_the_window_unless_that_would_pass_the_start() {
    let w = window();
    let full = [t("2026-03-12T10:00:00Z"), t("2026-03-13T10:00:00Z")];
    // Due on a Saturday a week ahead: Monday's window.
    let early = [announcement(
        &w,
        "2026-03-07T02:00:00Z",
        "2026-03-14T02:00:00Z",
    )];
    let d = decide(
        &early,
        &to(&[], None),
        &rules(2),
        t("2026-03-07T02:00:00Z"),
        t(HORIZON),
    );
    assert!(
        matches!(&d[0], Decision::SendAt { at, reason }
            if *at == t("2026-03-09T09:00:00Z") && reason.contains("send window")),
        "{d:?}"
    );
    // Due Friday evening for a Saturday start: the window opens on Monday,
    // after the start, so it goes at once, whatever the cap.
    let late = [announcement(
        &w,
        "2026-03-13T20:00:00Z",
        "2026-03-14T02:00:00Z",
    )];
    let d = decide(
        &late,
        &to(&full, None),
        &rules(2),
        t("2026-03-13T20:00:00Z"),
        t(HORIZON),
    );
    assert_eq!(d, [Decision::SendNow]);
    // Never after the start.
    let d = decide(
        &late,
        &to(&[], None),
        &rules(2),
        t("2026-03-14T02:00:01Z"),
        t(HORIZON),
    );
    assert!(matches!(&d[0], Decision::Expire(_)), "{d:?}");
}

#[test]
fn tips_and_checkins_wait_out_an_incident_the_rest_do_not() {
    let w = window();
    let items = [
        item(&w, Kind::Tip, "tips", MONDAY, 7),
        item(&w, Kind::Reminder, "maintenance", MONDAY, 7),
        item(&w, Kind::Checkin, "checkins", MONDAY, 7),
        announcement(&w, MONDAY, "2026-03-09T02:00:00Z"),
    ];
    let held = Decision::Hold {
        until: t(MONDAY) + QUIET_RECHECK,
        reason:
            "held while incident INC-1 affects the customer; it goes once the incident is resolved"
                .into(),
    };
    let d = decide(
        &items,
        &to(&[], Some("INC-1")),
        &rules(4),
        t(MONDAY),
        t(HORIZON),
    );
    assert_eq!(
        d,
        [held.clone(), Decision::SendNow, held, Decision::SendNow]
    );
    // Switched off, the incident holds nothing.
    let mut off = rules(4);
    off.quiet_during_incidents = false;
    let d = decide(&items, &to(&[], Some("INC-1")), &off, t(MONDAY), t(HORIZON));
    assert!(d.iter().all(|d| *d == Decision::SendNow), "{d:?}");
    // Held past its expiry: expired, saying why.
    let d = decide(
        &items[..1],
        &to(&[], Some("INC-1")),
        &rules(4),
        t(MONDAY) + Duration::days(8),
        t(HORIZON),
    );
    assert!(
        matches!(&d[0], Decision::Expire(r) if r.contains("while incident INC-1 affected the customer")),
        "{d:?}"
    );
}

/// A message that the mail simulated after `now` leaves no room waits for
/// that mail to go rather than expiring on its account: delivery sees only
/// what is due, and an operational notice due later takes a slot it cannot
/// foresee, so the more important message may be the one that cannot go.
#[test]
fn a_message_crowded_out_by_mail_yet_to_go_waits_and_goes_if_that_mail_cannot() {
    let w = window();
    let friday = "2026-03-06T07:00:00Z";
    let mut reminder = item(&w, Kind::Reminder, "maintenance", friday, 0);
    reminder.expires_at = t("2026-03-10T15:00:00Z");
    let mut checkin = item(&w, Kind::Checkin, "checkins", friday, 0);
    checkin.expires_at = t("2026-03-13T09:00:00Z");
    let items = [reminder, checkin];
    let monday = [t(MONDAY)];
    let d = decide(&items, &to(&monday, None), &rules(1), t(friday), t(HORIZON));
    assert_eq!(
        d[0],
        Decision::SendAt {
            at: t("2026-03-09T09:00:00Z"),
            reason: "waiting for the customer's send window (opens 2026-03-09T09:00:00Z)".into()
        }
    );
    match &d[1] {
        // Looked at again a while after the reminder is to go, when it
        // has gone and counts.
        Decision::Crowded { until, reason } => {
            assert_eq!(*until, t("2026-03-09T09:00:00Z") + CROWDED_RECHECK);
            assert!(reason.starts_with("likely to expire:"), "{reason}");
            assert!(reason.contains("(1 per 7 days)"), "{reason}");
            assert!(
                reason.contains("before its expiry (2026-03-13T09:00:00Z)"),
                "{reason}"
            );
            assert!(
                reason.contains("looked at again by 2026-03-09T09:15:00Z"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A maintenance announcement went on Friday at 09:00, so on Monday the
    // reminder cannot go before it expires, and the check-in gets the slot.
    let sent = [t(MONDAY), t("2026-03-06T09:00:00Z")];
    let monday = t("2026-03-09T09:00:00Z");
    let d = decide(&items, &to(&sent, None), &rules(1), monday, t(HORIZON));
    assert!(
        matches!(&d[0], Decision::Expire(r) if r.contains("frequency cap")),
        "{d:?}"
    );
    assert!(
        matches!(&d[1], Decision::SendAt { at, .. } if *at == t("2026-03-13T09:00:00Z")),
        "{d:?}"
    );
    // Crowded out by what goes now, a message expires now: that is decided.
    let both_now = [
        item(&w, Kind::Reminder, "maintenance", MONDAY, 1),
        item(&w, Kind::Tip, "tips", MONDAY, 1),
    ];
    let d = decide(&both_now, &to(&[], None), &rules(1), t(MONDAY), t(HORIZON));
    assert_eq!(d[0], Decision::SendNow);
    assert!(
        matches!(&d[1], Decision::Expire(r) if r.contains("frequency cap")),
        "{d:?}"
    );
}

/// What a generated message is: (hours after the start, kind index,
/// expiry in hours).
type Spec = (i64, usize, i64);

const CATEGORIES: [&str; 6] = [
    "maintenance",
    "checkins",
    "onboarding",
    "tips",
    "maintenance",
    "incidents",
];
const KINDS: [Kind; 6] = [
    Kind::Reminder,
    Kind::Checkin,
    Kind::Checkin,
    Kind::Tip,
    Kind::Reminder,
    Kind::Incident,
];

/// Kinds 0-3 are engagement mail, 4 a maintenance announcement
/// (operational), 5 an urgent incident notice.
fn generated<'a>(w: &'a Window, specs: &[Spec], base: DateTime<Utc>) -> Vec<Pending<'a>> {
    specs
        .iter()
        .map(|(hours, k, expires)| {
            let at = base + Duration::hours(*hours);
            Pending {
                kind: KINDS[*k],
                category: CATEGORIES[*k],
                urgent: *k == 5,
                operational: *k >= 4,
                not_before: at,
                expires_at: at + Duration::hours(*expires),
                window: w,
            }
        })
        .collect()
}

/// When each message went, if it did.
fn sends(decisions: &[Decision], now: DateTime<Utc>) -> Vec<Option<DateTime<Utc>>> {
    decisions
        .iter()
        .map(|d| match d {
            Decision::SendNow => Some(now),
            Decision::SendAt { at, .. } => Some(*at),
            _ => None,
        })
        .collect()
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec((0i64..(14 * 24), 0usize..6, 1i64..(10 * 24)), 1..10)
}

proptest! {
    /// Engagement mail keeps to the cap (counting operational mail), its
    /// window and its time, and waits out an incident; operational mail
    /// goes exactly when its window (or, past the start, at once) lets it,
    /// whatever the cap; nothing goes after its expiry.
    #[test]
    fn the_rules_always_hold(
        items in specs(),
        history in prop::collection::vec(0i64..(7 * 24), 0..4),
        max in 1u32..4,
        incident in any::<bool>(),
    ) {
        let w = window();
        let now = t(MONDAY);
        let horizon = now + Duration::days(40);
        let pending = generated(&w, &items, now);
        let sent: Vec<DateTime<Utc>> = history.iter().map(|h| now - Duration::hours(*h)).collect();
        let incident = incident.then_some("INC-1");
        let decisions = decide(&pending, &to(&sent, incident), &rules(max), now, horizon);
        let went = sends(&decisions, now);
        let mut counted: Vec<DateTime<Utc>> = sent.clone();
        counted.extend(went.iter().flatten());
        for ((p, at), d) in pending.iter().zip(&went).zip(&decisions) {
            let due = now.max(p.not_before);
            if p.operational {
                let expected = if due > p.expires_at {
                    None
                } else if p.urgent {
                    Some(due)
                } else {
                    let opening = w.next_opening(due, Tz::UTC);
                    Some(if opening > p.expires_at { due } else { opening })
                };
                prop_assert_eq!(*at, expected, "{:?}: {:?}", p, d);
                continue;
            }
            if incident.is_some() && matches!(p.kind, Kind::Tip | Kind::Checkin) {
                prop_assert!(matches!(d, Decision::Hold { .. } | Decision::Expire(_)), "{:?}", d);
                continue;
            }
            let Some(at) = *at else { continue };
            if at > horizon {
                continue;
            }
            prop_assert!(at >= due && at <= p.expires_at, "{:?} at {}", p, at);
            prop_assert!(w.contains(at.weekday(), at.time()), "outside the window: {}", at);
            let in_period = counted.iter().filter(|o| **o > at - Duration::days(7) && **o <= at).count();
            prop_assert!(in_period <= max as usize, "{} counted in the 7 days to {}", in_period, at);
        }
    }

    /// Delivery sees only what is due, decides at each instant and puts
    /// the rest back to wait; it sends each message exactly when the
    /// forecast, deciding once for everything, said it would.
    #[test]
    fn delivery_does_what_the_forecast_said(
        items in specs(),
        max in 1u32..4,
        incident in any::<bool>(),
    ) {
        let w = window();
        let now = t(MONDAY);
        let horizon = now + Duration::days(30);
        let pending = generated(&w, &items, now);
        let incident = incident.then_some("INC-1");
        let r = rules(max);
        let forecast = sends(&decide(&pending, &to(&[], incident), &r, now, horizon), now);

        // Delivery: each message leased once it is due.
        let mut not_before: Vec<DateTime<Utc>> = pending.iter().map(|p| p.not_before).collect();
        let mut done: Vec<bool> = vec![false; pending.len()];
        let mut delivered: Vec<Option<DateTime<Utc>>> = vec![None; pending.len()];
        let mut sent: Vec<DateTime<Utc>> = Vec::new();
        let mut at = now;
        for _ in 0..20_000 {
            let due: Vec<usize> = (0..pending.len()).filter(|i| !done[*i] && not_before[*i] <= at).collect();
            let batch: Vec<Pending<'_>> = due
                .iter()
                .map(|i| Pending { not_before: not_before[*i], ..pending[*i].clone() })
                .collect();
            let decided = decide(&batch, &to(&sent, incident), &r, at, at + Duration::days(60));
            for (i, d) in due.iter().zip(decided) {
                match d {
                    Decision::SendNow => {
                        done[*i] = true;
                        delivered[*i] = Some(at);
                        sent.push(at);
                    }
                    Decision::SendAt { at: later, .. } => not_before[*i] = later,
                    Decision::Hold { until, .. } | Decision::Crowded { until, .. } => {
                        not_before[*i] = until
                    }
                    Decision::Expire(_) => done[*i] = true,
                }
            }
            match (0..pending.len()).filter(|i| !done[*i]).map(|i| not_before[i]).min() {
                Some(next) if next <= horizon => {
                    prop_assert!(next > at, "delivery made no progress at {}", at);
                    at = next;
                }
                _ => break,
            }
        }
        for (i, (f, d)) in forecast.iter().zip(&delivered).enumerate() {
            let f = f.filter(|f| *f <= horizon);
            prop_assert_eq!(f, *d, "message {} ({:?})", i, pending[i]);
        }
    }
}

#[test]
fn on_a_holiday_only_urgent_mail_goes_and_the_rest_says_why_it_waits() {
    use tend::domain::holiday::Calendar;
    let w = window();
    let holidays = Calendar::new(
        "office",
        [("2026-03-02".parse().unwrap(), "Founders' Day".to_owned())].into(),
    );
    let mut urgent = item(&w, Kind::Incident, "incidents", MONDAY, 1);
    urgent.urgent = true;
    let items = [
        item(&w, Kind::Tip, "tips", MONDAY, 7),
        urgent,
        // A maintenance announcement that would miss its start by waiting
        // goes on the holiday all the same.
        announcement(&w, MONDAY, "2026-03-02T20:00:00Z"),
        announcement(&w, MONDAY, "2026-03-09T20:00:00Z"),
    ];
    let mut recipient = to(&[], None);
    recipient.holidays = Some(&holidays);
    let d = decide(&items, &recipient, &rules(5), t(MONDAY), t(HORIZON));
    match &d[0] {
        Decision::SendAt { at, reason } => {
            assert_eq!(*at, t("2026-03-03T09:00:00Z"));
            assert!(
                reason.contains(
                    "2026-03-02 is Founders' Day in the customer's holiday calendar (office)"
                ),
                "{reason}"
            );
        }
        other => panic!("the tip waits for Tuesday, not {other:?}"),
    }
    assert_eq!(d[1], Decision::SendNow, "urgent mail knows no holiday");
    assert_eq!(d[2], Decision::SendNow, "waiting would pass the start");
    assert!(
        matches!(&d[3], Decision::SendAt { at, .. } if *at == t("2026-03-03T09:00:00Z")),
        "{:?}",
        d[3]
    );
    // Without the calendar, the tip goes at once.
    let d = decide(
        &items[..1],
        &to(&[], None),
        &rules(5),
        t(MONDAY),
        t(HORIZON),
    );
    assert_eq!(d[0], Decision::SendNow);
}

#[test]
fn during_a_quiet_period_only_operational_and_urgent_mail_goes() {
    let w = window();
    let mut urgent = item(&w, Kind::Incident, "incidents", MONDAY, 1);
    urgent.urgent = true;
    let items = [
        item(&w, Kind::Tip, "tips", MONDAY, 14),
        item(&w, Kind::Checkin, "checkins", MONDAY, 3),
        urgent,
        announcement(&w, MONDAY, "2026-03-09T20:00:00Z"),
    ];
    let mut recipient = to(&[], None);
    // Quiet until Friday noon: the tip goes then, the check-in (which
    // expires Thursday) never does.
    recipient.quiet_until = Some(t("2026-03-06T12:00:00Z"));
    let d = decide(&items, &recipient, &rules(5), t(MONDAY), t(HORIZON));
    match &d[0] {
        Decision::SendAt { at, reason } => {
            assert_eq!(*at, t("2026-03-06T12:00:00Z"));
            assert!(
                reason.contains(
                    "the customer asked for quiet until 2026-03-06T12:00:00Z (quiet_until)"
                ),
                "{reason}"
            );
        }
        other => panic!("the tip waits for the quiet period's end, not {other:?}"),
    }
    match &d[1] {
        Decision::Expire(reason) => assert!(
            reason.contains("quiet until 2026-03-06T12:00:00Z")
                && reason.contains("past its expiry"),
            "{reason}"
        ),
        other => panic!("the check-in expires before the quiet ends, not {other:?}"),
    }
    assert_eq!(d[2], Decision::SendNow, "urgent mail goes");
    assert_eq!(d[3], Decision::SendNow, "operational mail goes");
    // A quiet period already over changes nothing.
    recipient.quiet_until = Some(t("2026-03-01T00:00:00Z"));
    let d = decide(&items[..1], &recipient, &rules(5), t(MONDAY), t(HORIZON));
    assert_eq!(d[0], Decision::SendNow);
}
