//! The planner as a pure function with fixed instants: each anchor kind,
//! before/after, expiry, conditions, windows in several zones, and the 2026
//! DST changes.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use tend::domain::customer::{Customer, CustomerId, CustomerRecord, Email};
use tend::domain::plan::{
    CronMemo, Due, EventFact, History, Horizon, OccurrenceKey, StageEntry, due,
};
use tend::domain::playbook::{Known, Playbook, parse};
use tend::domain::window::{Window, WindowSpec};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn playbook(text: &str) -> Playbook {
    let categories: HashSet<String> = ["onboarding", "tips", "maintenance"]
        .map(String::from)
        .into();
    let stages: HashSet<String> = ["at_risk"].map(String::from).into();
    let roles: Vec<String> = tend::domain::account::DEFAULT_ROLES
        .iter()
        .map(|r| r.to_string())
        .collect();
    let known = Known {
        categories: &categories,
        stages: &stages,
        account_stages: &["renewal".to_owned(), "active".to_owned()]
            .into_iter()
            .collect(),
        template_exists: &|_| true,
        templates: &[],
        window: &WindowSpec::default(),
        roles: &roles,
        team: &["maria".to_owned()],
    };
    parse(Path::new("test.toml"), text, &known).unwrap_or_else(|p| panic!("{p:?}"))
}

fn steps(category: &str, body: &str) -> Playbook {
    playbook(&format!(
        "name = \"p\"\nkind = \"checkin\"\ncategory = \"{category}\"\n{body}"
    ))
}

fn customer(zone: Tz, signup: &str) -> Customer {
    let signup = t(signup);
    Customer {
        record: CustomerRecord {
            id: CustomerId::parse("c1").unwrap(),
            email: Email::parse("c1@example.com").unwrap(),
            name: "Ana".into(),
            timezone: zone,
            locale: "en".into(),
            plan: "pro".into(),
            signup_at: Some(signup),
            renewal_at: Some(t("2026-06-15T00:00:00Z")),
            last_seen_at: None,
            health: Some(80),
            attributes: serde_json::json!({"features": ["api"], "trial_ends_at": "2026-04-01"})
                .as_object()
                .unwrap()
                .clone(),
            account_id: None,
            roles: Default::default(),
            availability: Default::default(),
        },
        stage: None,
        stage_entered_at: None,
        created_at: signup,
        updated_at: signup,
        account_availability: Default::default(),
    }
}

fn window() -> Window {
    WindowSpec::default().parse().unwrap()
}

fn always() -> Window {
    WindowSpec {
        days: "all".into(),
        start: "00:00".into(),
        end: "23:59".into(),
    }
    .parse()
    .unwrap()
}

fn plan_at(c: &Customer, p: &Playbook, history: &History, now: &str, w: &Window) -> Vec<Due> {
    let now = t(now);
    due(
        c,
        std::slice::from_ref(p),
        history,
        &Horizon {
            now,
            until: now,
            window: w,
            cron: &CronMemo::default(),
        },
    )
}

fn occurrences(found: &[Due]) -> Vec<(String, String)> {
    found
        .iter()
        .map(|d| (d.key.occurrence.clone(), d.send_at.to_rfc3339()))
        .collect()
}

const WELCOME: &str =
    "[[step]]\nid = \"welcome\"\ntemplate = \"w\"\nanchor = \"signup_at\"\nafter = \"1d\"\n";

#[test]
fn a_field_anchor_fires_once_after_its_offset_inside_the_window() {
    let c = customer(Tz::UTC, "2026-03-02T07:00:00Z"); // Monday
    let p = steps("onboarding", WELCOME);
    assert!(
        plan_at(
            &c,
            &p,
            &History::default(),
            "2026-03-03T06:59:00Z",
            &window()
        )
        .is_empty()
    );
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-03T07:00:00Z",
        &window(),
    );
    assert_eq!(
        occurrences(&found),
        [("signup_at".into(), "2026-03-03T09:00:00+00:00".into())]
    );
    assert_eq!(found[0].due_at, t("2026-03-03T07:00:00Z"));
    assert_eq!(found[0].expires_at, t("2026-03-10T07:00:00Z"));

    // Already in the outbox: never again.
    let history = History {
        planned: [found[0].key.clone()].into(),
        ..Default::default()
    };
    assert!(plan_at(&c, &p, &history, "2026-03-04T10:00:00Z", &window()).is_empty());
}

#[test]
fn steps_due_longer_ago_than_they_expire_are_skipped() {
    // Imported on 2026-03-20, signed up three weeks before.
    let c = customer(Tz::UTC, "2026-02-27T10:00:00Z");
    let p = steps(
        "onboarding",
        &format!(
            "{WELCOME}\n[[step]]\nid = \"day-20\"\ntemplate = \"t\"\nanchor = \"signup_at\"\nafter = \"20d\"\n"
        ),
    );
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-20T10:00:00Z",
        &window(),
    );
    assert_eq!(found.len(), 1, "only the step due within 7d: {found:?}");
    assert_eq!(found[0].key.step, "day-20");
}

#[test]
fn before_an_anchor_and_attribute_anchors() {
    let c = customer(Tz::UTC, "2026-03-02T07:00:00Z");
    let p = steps(
        "maintenance",
        "[[step]]\nid = \"renewal\"\ntemplate = \"r\"\nanchor = \"renewal_at\"\nbefore = \"30d\"\n\
         [[step]]\nid = \"trial\"\ntemplate = \"t\"\nanchor = \"attributes.trial_ends_at\"\nbefore = \"2d\"\n",
    );
    // 30 days before 2026-06-15 is Saturday 2026-05-16: it waits for Monday.
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-05-18T12:00:00Z",
        &window(),
    );
    assert_eq!(
        occurrences(&found),
        [("renewal_at".into(), "2026-05-18T09:00:00+00:00".into())]
    );
    assert_eq!(found[0].due_at, t("2026-05-16T00:00:00Z"));
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-30T12:00:00Z",
        &window(),
    );
    assert_eq!(
        occurrences(&found),
        [(
            "attributes.trial_ends_at".into(),
            "2026-03-30T09:00:00+00:00".into()
        )]
    );
}

#[test]
fn event_and_stage_anchors_fire_once_per_occurrence() {
    let c = customer(Tz::UTC, "2026-03-02T07:00:00Z");
    let p = steps(
        "tips",
        "[[step]]\nid = \"after-ticket\"\ntemplate = \"t\"\nanchor = \"event:ticket_closed\"\nafter = \"2h\"\n\
         [[step]]\nid = \"at-risk\"\ntemplate = \"t\"\nanchor = \"stage:at_risk\"\n",
    );
    let event = |key: &str, at: &str| EventFact {
        key: key.into(),
        name: "ticket_closed".into(),
        occurred_at: t(at),
    };
    let history = History {
        events: vec![
            event("e1", "2026-03-03T08:00:00Z"),
            event("e2", "2026-03-03T09:00:00Z"),
            EventFact {
                key: "e3".into(),
                name: "login".into(),
                occurred_at: t("2026-03-03T09:00:00Z"),
            },
        ],
        stage_entries: vec![StageEntry {
            stage: "at_risk".into(),
            entered_at: t("2026-03-03T10:00:00Z"),
        }],
        ..Default::default()
    };
    let found = plan_at(&c, &p, &history, "2026-03-03T12:00:00Z", &window());
    // In send order: e1 at 10:00, the stage entry at 10:00, e2 at 11:00.
    let keys: Vec<&str> = found.iter().map(|d| d.key.occurrence.as_str()).collect();
    assert_eq!(keys, ["event:e1", "stage:1772532000000", "event:e2"]);
}

#[test]
fn conditions_are_evaluated_when_due() {
    let c = customer(Tz::UTC, "2026-03-02T07:00:00Z");
    let when = |cond: &str| {
        steps(
            "tips",
            &format!(
                "[[step]]\nid = \"s\"\ntemplate = \"t\"\nanchor = \"signup_at\"\nafter = \"1d\"\nwhen = '{cond}'\n"
            ),
        )
    };
    let now = "2026-03-03T10:00:00Z";
    assert_eq!(
        plan_at(
            &c,
            &when("\"api\" in customer.attributes.features"),
            &History::default(),
            now,
            &window()
        )
        .len(),
        1
    );
    assert!(
        plan_at(
            &c,
            &when("!(\"api\" in customer.attributes.features)"),
            &History::default(),
            now,
            &window()
        )
        .is_empty()
    );
    // A condition that cannot be evaluated for this customer does not hold.
    assert!(
        plan_at(
            &c,
            &when("days_since(customer.last_seen_at) > 3"),
            &History::default(),
            now,
            &window()
        )
        .is_empty()
    );
    // sent() sees this playbook's history.
    let history = History {
        sent: [("p".to_owned(), "welcome".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(
        plan_at(&c, &when("sent(\"welcome\")"), &history, now, &window()).len(),
        1
    );
    assert!(
        plan_at(
            &c,
            &when("sent(\"welcome\")"),
            &History::default(),
            now,
            &window()
        )
        .is_empty()
    );

    let audience = playbook(&format!(
        "name = \"p\"\nkind = \"tip\"\ncategory = \"tips\"\naudience = 'customer.plan == \"free\"'\n{WELCOME}"
    ));
    assert!(plan_at(&c, &audience, &History::default(), now, &window()).is_empty());
}

/// A weekly step meant to go once (`!sent(…)`): over a month's horizon it
/// is due once, and a step without that condition every week.
#[test]
fn a_step_that_goes_once_is_due_once_however_far_ahead_one_looks() {
    let c = customer(chrono_tz::UTC, "2026-01-01T00:00:00Z");
    let p = steps(
        "tips",
        "[[step]]\nid = \"once\"\ntemplate = \"t\"\ncron = \"0 10 * * 2\"\nwhen = '!sent(\"once\")'\n\
         [[step]]\nid = \"weekly\"\ntemplate = \"t\"\ncron = \"0 10 * * 2\"\n\
         [[step]]\nid = \"other\"\ntemplate = \"t\"\ncron = \"0 11 * * 2\"\nwhen = '!sent(\"once\")'\n",
    );
    let now = t("2026-03-02T00:00:00Z");
    let found = due(
        &c,
        std::slice::from_ref(&p),
        &History::default(),
        &Horizon {
            now,
            until: now + Duration::days(30),
            window: &window(),
            cron: &CronMemo::default(),
        },
    );
    let count = |step: &str| found.iter().filter(|d| d.key.step == step).count();
    assert_eq!(count("once"), 1, "{:?}", occurrences(&found));
    // Five Tuesdays ahead, and last week's, still within its 7-day expiry.
    assert_eq!(count("weekly"), 6);
    // Only a step's own repeats count it as sent: another step reading
    // `sent("once")` is judged on what was really sent, as of now.
    assert_eq!(count("other"), 6);

    // Once it has been sent, it is not due again at all.
    let mut history = History::default();
    history.sent.insert(("p".into(), "once".into()));
    let found = due(
        &c,
        std::slice::from_ref(&p),
        &history,
        &Horizon {
            now,
            until: now + Duration::days(30),
            window: &window(),
            cron: &CronMemo::default(),
        },
    );
    assert_eq!(found.iter().filter(|d| d.key.step == "once").count(), 0);
}

#[test]
fn windows_in_four_zones_from_a_saturday() {
    // Due Saturday 2026-03-07 03:00Z; each customer's Monday 09:00 local.
    for (zone, expected) in [
        (Tz::UTC, "2026-03-09T09:00:00+00:00"),
        (chrono_tz::America::New_York, "2026-03-09T13:00:00+00:00"),
        (chrono_tz::Asia::Tokyo, "2026-03-09T00:00:00+00:00"),
        (chrono_tz::Asia::Kathmandu, "2026-03-09T03:15:00+00:00"),
    ] {
        let c = customer(zone, "2026-03-06T03:00:00Z");
        let found = plan_at(
            &c,
            &steps("onboarding", WELCOME),
            &History::default(),
            "2026-03-07T03:00:00Z",
            &window(),
        );
        assert_eq!(found[0].send_at.to_rfc3339(), expected, "{zone}");
    }
}

#[test]
fn incident_notices_are_not_held_for_the_window() {
    // Due Saturday 2026-03-07 03:00Z: a notice goes at once, a check-in
    // waits for Monday 09:00.
    let c = customer(Tz::UTC, "2026-03-06T03:00:00Z");
    let notice = playbook(&format!(
        "name = \"n\"\nkind = \"incident\"\ncategory = \"maintenance\"\n{WELCOME}"
    ));
    let at = "2026-03-07T03:00:00Z";
    let found = plan_at(&c, &notice, &History::default(), at, &window());
    assert_eq!(found[0].send_at, t(at));
    let found = plan_at(
        &c,
        &steps("onboarding", WELCOME),
        &History::default(),
        at,
        &window(),
    );
    assert_eq!(found[0].send_at, t("2026-03-09T09:00:00Z"));
}

#[test]
fn a_message_the_window_cannot_reach_before_it_expires_is_expired_with_a_reason() {
    let c = customer(Tz::UTC, "2026-03-06T18:00:00Z"); // Friday evening
    let p = steps(
        "onboarding",
        "[[step]]\nid = \"s\"\ntemplate = \"t\"\nanchor = \"signup_at\"\nafter = \"1h\"\nexpires = \"12h\"\n",
    );
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-06T19:00:00Z",
        &window(),
    );
    assert!(
        found[0]
            .expired
            .as_ref()
            .unwrap()
            .contains("does not open within 12h"),
        "{found:?}"
    );
}

/// A 10:00 local cron fires at 10:00 local on both sides of each 2026 DST change.
#[test]
fn cron_keeps_local_time_across_dst_changes() {
    let p = steps(
        "maintenance",
        "[[step]]\nid = \"daily\"\ntemplate = \"t\"\ncron = \"0 10 * * *\"\nexpires = \"3d\"\n",
    );
    for (zone, now, expected) in [
        // Europe: clocks forward on 2026-03-29, back on 2026-10-25.
        (
            chrono_tz::Europe::Berlin,
            "2026-03-30T12:00:00Z",
            [
                "2026-03-28T09:00:00Z",
                "2026-03-29T08:00:00Z",
                "2026-03-30T08:00:00Z",
            ],
        ),
        (
            chrono_tz::Europe::Berlin,
            "2026-10-26T12:00:00Z",
            [
                "2026-10-24T08:00:00Z",
                "2026-10-25T09:00:00Z",
                "2026-10-26T09:00:00Z",
            ],
        ),
        // US: forward on 2026-03-08, back on 2026-11-01.
        (
            chrono_tz::America::New_York,
            "2026-03-09T16:00:00Z",
            [
                "2026-03-07T15:00:00Z",
                "2026-03-08T14:00:00Z",
                "2026-03-09T14:00:00Z",
            ],
        ),
        (
            chrono_tz::America::New_York,
            "2026-11-02T16:00:00Z",
            [
                "2026-10-31T14:00:00Z",
                "2026-11-01T15:00:00Z",
                "2026-11-02T15:00:00Z",
            ],
        ),
    ] {
        let c = customer(zone, "2026-01-01T00:00:00Z");
        let found = plan_at(&c, &p, &History::default(), now, &always());
        let keys: Vec<&str> = found.iter().map(|d| d.key.occurrence.as_str()).collect();
        assert_eq!(keys, expected, "{zone}");
        for d in &found {
            assert_eq!(
                d.due_at.with_timezone(&zone).hour(),
                10,
                "{zone} {}",
                d.due_at
            );
        }
    }
}

fn zones() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Europe::Berlin,
        chrono_tz::Asia::Tokyo,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Australia::Lord_Howe,
    ])
}

proptest! {
    /// Whatever the zone and instants, nothing is planned to go out outside
    /// the customer's window (unless it is recorded as expired), and no key
    /// appears twice.
    #[test]
    fn nothing_outside_the_window_and_never_two_per_key(
        zone in zones(),
        signup_minutes in 0i64..(365 * 24 * 60),
        ticks in prop::collection::vec(0i64..(40 * 24 * 60), 1..6),
    ) {
        let signup = t("2026-01-01T00:00:00Z") + Duration::minutes(signup_minutes);
        let c = customer(zone, &signup.to_rfc3339());
        let p = steps("onboarding", &format!("{WELCOME}[[step]]\nid = \"weekly\"\ntemplate = \"t\"\ncron = \"30 8 * * mon\"\n"));
        let w = window();
        let mut history = History::default();
        let mut seen: HashSet<OccurrenceKey> = HashSet::new();
        let mut offsets = ticks.clone();
        offsets.sort_unstable();
        for minutes in offsets {
            let now = signup + Duration::minutes(minutes);
            for d in due(&c, std::slice::from_ref(&p), &history, &Horizon { now, until: now, window: &w, cron: &CronMemo::default() }) {
                prop_assert!(seen.insert(d.key.clone()), "planned twice: {:?}", d.key);
                if d.expired.is_none() {
                    let local = d.send_at.with_timezone(&zone);
                    prop_assert!(w.contains(local.weekday(), local.time()), "outside the window: {local}");
                    prop_assert!(d.send_at >= d.due_at && d.send_at <= d.expires_at);
                }
                history.planned.insert(d.key);
            }
        }
    }
}

/// A daily step first planned a week late: of the seven occurrences within
/// its expiry, only the latest goes; the others are superseded.
#[test]
fn a_week_late_daily_step_plans_only_its_latest_occurrence() {
    let c = customer(Tz::UTC, "2026-01-01T00:00:00Z");
    let p = steps(
        "tips",
        "[[step]]\nid = \"daily\"\ntemplate = \"t\"\ncron = \"0 10 * * *\"\n",
    );
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-09T10:30:00Z",
        &window(),
    );
    assert_eq!(found.len(), 7, "{:?}", occurrences(&found));
    let going: Vec<&Due> = found.iter().filter(|d| d.expired.is_none()).collect();
    assert_eq!(going.len(), 1);
    assert_eq!(going[0].key.occurrence, "2026-03-09T10:00:00Z");
    for d in found.iter().filter(|d| d.expired.is_some()) {
        assert_eq!(
            d.expired.as_deref(),
            Some("superseded by a later occurrence")
        );
        assert_eq!(d.superseded_at, Some(t("2026-03-09T10:30:00Z")));
    }
}

/// Imported ten days after signing up: of a sequence at days 1, 3 and 7,
/// only day 7 goes; steps due at the same moment would all go.
#[test]
fn a_late_import_plans_the_latest_step_of_a_sequence() {
    let c = customer(Tz::UTC, "2026-02-27T09:00:00Z");
    let step = |id: &str, after: &str| {
        format!(
            "[[step]]\nid = \"{id}\"\ntemplate = \"t\"\nanchor = \"signup_at\"\nafter = \"{after}\"\nexpires = \"14d\"\n"
        )
    };
    let p = steps(
        "onboarding",
        &[
            step("day-1", "1d"),
            step("day-3", "3d"),
            step("day-7", "7d"),
            step("day-7b", "7d"),
        ]
        .concat(),
    );
    let found = plan_at(
        &c,
        &p,
        &History::default(),
        "2026-03-09T10:30:00Z",
        &window(),
    );
    let mut going: Vec<&str> = found
        .iter()
        .filter(|d| d.expired.is_none())
        .map(|d| d.key.step.as_str())
        .collect();
    going.sort_unstable();
    assert_eq!(going, ["day-7", "day-7b"]);
    let dropped: Vec<(&str, &str)> = found
        .iter()
        .filter_map(|d| Some((d.key.step.as_str(), d.expired.as_deref()?)))
        .collect();
    assert_eq!(dropped.len(), 2);
    for (_, reason) in dropped {
        assert!(reason.starts_with("superseded by a later step"), "{reason}");
    }
    // In its own time, each step goes: with day 1 planned on day 1, day 3
    // is due alone on day 3.
    let history = History {
        planned: [OccurrenceKey {
            playbook: "p".into(),
            step: "day-1".into(),
            occurrence: "signup_at".into(),
        }]
        .into(),
        ..Default::default()
    };
    let found = plan_at(&c, &p, &history, "2026-03-02T10:30:00Z", &window());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].expired.is_none(), "{found:?}");
}
