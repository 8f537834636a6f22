//! Delivery policy for one customer: cap with priorities, quiet during
//! incidents, urgent notices, expiry while waiting.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use tend::domain::playbook::Kind;
use tend::domain::policy::{Decision, Pending, Rules, schedule};
use tend::domain::window::{Window, WindowSpec};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window() -> Window {
    WindowSpec::default().parse().unwrap()
}

fn priority() -> Vec<String> {
    ["incidents", "maintenance", "checkins", "onboarding", "tips"]
        .map(String::from)
        .to_vec()
}

fn pending(kind: Kind, category: &str, at: &str, expires: i64) -> Pending {
    Pending {
        kind,
        category: category.into(),
        urgent: false,
        send_at: t(at),
        expires_at: t(at) + Duration::days(expires),
    }
}

fn rules<'a>(
    w: &'a Window,
    priority: &'a [String],
    sent: &'a [DateTime<Utc>],
    quiet: Option<DateTime<Utc>>,
) -> Rules<'a> {
    Rules {
        max: 2,
        per: Duration::days(7),
        priority,
        window: w,
        zone: Tz::UTC,
        quiet_until: quiet,
        sent,
    }
}

const MONDAY: &str = "2026-03-02T09:00:00Z";

#[test]
fn the_cap_lets_the_most_important_through_and_the_rest_wait_or_expire() {
    let (w, p) = (window(), priority());
    let items = [
        pending(Kind::Tip, "tips", MONDAY, 3),
        pending(Kind::Checkin, "checkins", MONDAY, 14),
        pending(Kind::Reminder, "maintenance", MONDAY, 14),
    ];
    let decisions = schedule(&items, &rules(&w, &p, &[], None), t("2026-04-01T00:00:00Z"));
    assert_eq!(decisions[2], Decision::Send(t(MONDAY)), "maintenance first");
    assert_eq!(decisions[1], Decision::Send(t(MONDAY)), "then the check-in");
    match &decisions[0] {
        Decision::Expire(reason) => {
            assert!(reason.contains("frequency cap (2 per 7 days)"), "{reason}")
        }
        other => panic!("the tip should expire waiting for the cap, not {other:?}"),
    }
}

#[test]
fn a_waiting_message_goes_when_a_slot_frees_inside_the_window() {
    let (w, p) = (window(), priority());
    // Two sent last Tuesday and Wednesday at 10:00; the cap frees next Tuesday 10:00.
    let sent = [t("2026-02-24T10:00:00Z"), t("2026-02-25T10:00:00Z")];
    let items = [pending(Kind::Tip, "tips", MONDAY, 7)];
    let decisions = schedule(
        &items,
        &rules(&w, &p, &sent, None),
        t("2026-04-01T00:00:00Z"),
    );
    assert_eq!(decisions, [Decision::Send(t("2026-03-03T10:00:00Z"))]);
}

#[test]
fn urgent_notices_ignore_cap_window_and_quiet() {
    let (w, p) = (window(), priority());
    let sent = [t("2026-03-01T10:00:00Z"), t("2026-03-01T11:00:00Z")];
    let mut notice = pending(Kind::Incident, "incidents", "2026-03-07T03:00:00Z", 1);
    notice.urgent = true;
    let decisions = schedule(
        &[notice],
        &rules(&w, &p, &sent, Some(t("2026-03-10T00:00:00Z"))),
        t("2026-04-01T00:00:00Z"),
    );
    assert_eq!(decisions, [Decision::Send(t("2026-03-07T03:00:00Z"))]);
}

#[test]
fn tips_and_checkins_wait_out_an_incident_reminders_do_not() {
    let (w, p) = (window(), priority());
    let resolved = t("2026-03-04T12:30:00Z");
    let items = [
        pending(Kind::Tip, "tips", MONDAY, 7),
        pending(Kind::Reminder, "maintenance", MONDAY, 7),
        pending(Kind::Checkin, "checkins", MONDAY, 1),
    ];
    let decisions = schedule(
        &items,
        &rules(&w, &p, &[], Some(resolved)),
        t("2026-04-01T00:00:00Z"),
    );
    assert_eq!(decisions[1], Decision::Send(t(MONDAY)));
    assert_eq!(
        decisions[0],
        Decision::Send(resolved),
        "released when the incident ends"
    );
    assert_eq!(
        decisions[2],
        Decision::Expire("expired while held during an incident".into())
    );
}

#[test]
fn beyond_the_horizon_a_message_is_held_with_a_reason() {
    let (w, p) = (window(), priority());
    let items = [pending(Kind::Tip, "tips", MONDAY, 30)];
    let decisions = schedule(
        &items,
        &rules(&w, &p, &[], Some(t("2026-06-01T00:00:00Z"))),
        t("2026-03-05T00:00:00Z"),
    );
    assert_eq!(
        decisions,
        [Decision::Hold(
            "held while an open incident affects the customer".into()
        )]
    );
}

proptest! {
    /// Never more than the cap in any rolling period, never outside the
    /// window, never before it is due or after it expires.
    #[test]
    fn the_cap_and_the_window_always_hold(
        offsets in prop::collection::vec((0i64..(20 * 24), 0usize..4, 1i64..10), 1..12),
        max in 1u32..4,
    ) {
        let (w, p) = (window(), priority());
        let categories = ["maintenance", "checkins", "onboarding", "tips"];
        let kinds = [Kind::Reminder, Kind::Checkin, Kind::Checkin, Kind::Tip];
        let base = t(MONDAY);
        let items: Vec<Pending> = offsets
            .iter()
            .map(|(hours, c, expires)| {
                let at = w.next_opening(base + Duration::hours(*hours), Tz::UTC);
                Pending { kind: kinds[*c], category: categories[*c].into(), urgent: false, send_at: at, expires_at: at + Duration::days(*expires) }
            })
            .collect();
        let mut r = rules(&w, &p, &[], None);
        r.max = max;
        let decisions = schedule(&items, &r, base + Duration::days(60));
        let mut sends: Vec<DateTime<Utc>> = Vec::new();
        for (d, item) in decisions.iter().zip(&items) {
            if let Decision::Send(at) = d {
                prop_assert!(*at >= item.send_at && *at <= item.expires_at);
                prop_assert!(w.contains(at.weekday(), at.time()), "outside the window: {at}");
                sends.push(*at);
            }
        }
        for s in &sends {
            let in_period = sends.iter().filter(|o| **o > *s - Duration::days(7) && **o <= *s).count();
            prop_assert!(in_period <= max as usize, "{in_period} sends in the 7 days to {s}");
        }
    }
}
