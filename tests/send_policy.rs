//! The send policy through the real binary on both stores: over sixteen
//! simulated days of tips that fill the frequency cap, every maintenance
//! announcement still goes (operational mail takes a slot but never waits
//! for one); and `tend forecast` holds a tip during an open incident
//! exactly as delivery does, in the words `tend messages` shows.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{Project, json, tick};
use serde_json::Value;

const CONFIG: &str = "\
[mail]
transport = \"file\"
[mail.file]
dir = \"outbox\"
[http]
public_url = \"https://tend.acme.example\"
[security]
secret = \"0123456789abcdef0123456789abcdef-key\"
";

/// More tips than the cap (2 per 7 days) lets through.
const TIPS: &str = r#"
name = "tips"
kind = "tip"
category = "tips"

[[step]]
id = "day-1"
template = "tip"
anchor = "signup_at"
after = "1d"

[[step]]
id = "day-2"
template = "tip"
anchor = "signup_at"
after = "2d"

[[step]]
id = "day-3"
template = "tip"
anchor = "signup_at"
after = "3d"

[[step]]
id = "day-4"
template = "tip"
anchor = "signup_at"
after = "4d"

[[step]]
id = "day-8"
template = "tip"
anchor = "signup_at"
after = "8d"

[[step]]
id = "day-9"
template = "tip"
anchor = "signup_at"
after = "9d"
"#;

/// Signed up on Monday 2 March 2026, 08:00 UTC.
const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at,region
ana,ana@example.com,Ana Lima,UTC,pro,2026-03-02T08:00:00Z,eu
bo,bo@example.com,Bo Berg,UTC,pro,2026-03-02T08:00:00Z,us
";

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(CONFIG);
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/tip.md.hbs",
        "+++\nsubject = \"A tip\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p.file("config/playbooks/tips.toml", TIPS);
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

fn messages(p: &Project) -> Vec<Value> {
    json(&p.tend(&["messages", "--format", "json"]).expect_code(0))
        .as_array()
        .unwrap()
        .clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn operational_mail_is_not_crowded_out_by_tips(p: &Project) {
    // Announced 7 days, 1 day and 1 hour ahead (the shipped leads).
    let scheduled = p
        .tend(&[
            "incident",
            "maintenance",
            "MNT-1",
            "--title",
            "Database upgrade",
            "--affects",
            r#"customer.plan == "pro""#,
            "--starts",
            "2026-03-13T13:00:00Z",
            "--ends",
            "2026-03-13T15:00:00Z",
            "--now",
            "2026-03-02T00:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(
        scheduled.contains("2 customers affected, 6 notices; sent 0"),
        "{scheduled}"
    );
    // Sixteen days, ticking at night and three times in the working day.
    let start = t("2026-03-02T00:30:00Z");
    for day in 0..16 {
        for hours in [0, 9, 12, 15] {
            let now = start + Duration::days(day) + Duration::hours(hours);
            tick(p, &now.to_rfc3339());
        }
    }
    let all = messages(p);
    for customer in ["ana", "bo"] {
        let mine: Vec<&Value> = all
            .iter()
            .filter(|m| m["customer_id"] == customer)
            .collect();
        let announced = |step: &str| {
            let m = mine
                .iter()
                .find(|m| m["playbook"] == "incident" && m["step"] == step)
                .unwrap_or_else(|| panic!("no {step} for {customer}: {mine:?}"));
            assert_eq!(m["status"], "sent", "{customer} {step}: {m}");
            time(&m["sent_at"])
        };
        // In the window, though tips had used both slots of the week.
        assert_eq!(announced("announce-7d"), t("2026-03-06T15:30:00Z"));
        assert_eq!(announced("announce-1d"), t("2026-03-12T15:30:00Z"));
        assert_eq!(announced("announce-1h"), t("2026-03-13T12:30:00Z"));

        // The tips filled the cap, and the announcements took slots in it:
        // no tip went while two others had gone in the seven days before.
        let sent: Vec<DateTime<Utc>> = mine
            .iter()
            .filter(|m| m["status"] == "sent")
            .map(|m| {
                m["sent_at"]
                    .as_str()
                    .unwrap_or_else(|| panic!("sent, but when? {m}"))
                    .parse()
                    .unwrap()
            })
            .collect();
        let tips: Vec<&&Value> = mine.iter().filter(|m| m["playbook"] == "tips").collect();
        for tip in tips.iter().filter(|m| m["status"] == "sent") {
            let at = time(&tip["sent_at"]);
            let before = sent
                .iter()
                .filter(|s| **s > at - Duration::days(7) && **s <= at)
                .count();
            assert!(before <= 2, "{customer}: {before} in the week to {tip}");
        }
        let crowded = tips
            .iter()
            .find(|m| m["step"] == "day-4")
            .expect("the fourth tip");
        assert_eq!(crowded["status"], "expired", "{crowded}");
        assert!(
            crowded["reason"]
                .as_str()
                .unwrap()
                .contains("expired waiting for the frequency cap (2 per 7 days)"),
            "{crowded}"
        );
        // The third tip went once the first tip's slot freed, after the
        // seven-day announcement had taken the other.
        let third = tips.iter().find(|m| m["step"] == "day-3").unwrap();
        assert_eq!(third["status"], "sent", "{third}");
        assert_eq!(
            time(&third["sent_at"]),
            t("2026-03-11T09:30:00Z"),
            "{third}"
        );
    }
}

#[test]
fn operational_mail_is_not_crowded_out_by_tips_on_sqlite() {
    operational_mail_is_not_crowded_out_by_tips(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_mail_is_not_crowded_out_by_tips_on_postgres() {
    common::on_fresh_postgres(move |url| {
        operational_mail_is_not_crowded_out_by_tips(&project(Some(url)))
    })
    .await;
}

/// (customer, step) of each forecast row, with its time.
fn forecast(p: &Project, now: &str) -> Vec<(String, String, String)> {
    json(
        &p.tend(&["forecast", "--now", now, "--days", "7", "--format", "json"])
            .expect_code(0),
    )
    .as_array()
    .unwrap()
    .iter()
    .filter(|r| r["playbook"] == "tips")
    .map(|r| {
        (
            r["customer_id"].as_str().unwrap().into(),
            r["step"].as_str().unwrap().into(),
            r["at"].as_str().unwrap().into(),
        )
    })
    .collect()
}

fn row(customer: &str, step: &str, at: &str) -> (String, String, String) {
    (customer.into(), step.into(), at.into())
}

const HELD: &str =
    "held while incident INC-1 affects the customer; it goes once the incident is resolved";

fn the_forecast_holds_a_tip_during_an_incident_as_delivery_does(p: &Project) {
    p.file(
        "config/playbooks/tips.toml",
        "name = \"tips\"\nkind = \"tip\"\ncategory = \"tips\"\n\n[[step]]\nid = \"day-1\"\ntemplate = \"tip\"\nanchor = \"signup_at\"\nafter = \"1d\"\n",
    );
    let opened = p
        .tend(&[
            "incident",
            "open",
            "INC-1",
            "--title",
            "EU API latency",
            "--affects",
            r#"customer.attributes.region == "eu""#,
            "--now",
            "2026-03-02T12:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(opened.contains("1 customers affected"), "{opened}");

    // Before either tip is planned: Bo's shows for Tuesday, Ana's is held.
    assert_eq!(
        forecast(p, "2026-03-02T12:00:00Z"),
        [row("bo", "day-1", "2026-03-03T09:00:00Z")]
    );
    let table = p
        .tend(&["forecast", "--now", "2026-03-02T12:00:00Z"])
        .expect_code(0)
        .stdout();
    assert!(
        table.contains(&format!("ana tips/day-1: {HELD}")),
        "{table}"
    );

    // Delivery does the same, in the same words.
    assert_eq!(tick(p, "2026-03-03T09:30:00Z")["sent"], 1);
    let all = messages(p);
    let tip = |customer: &str| {
        all.iter()
            .find(|m| m["customer_id"] == customer && m["playbook"] == "tips")
            .unwrap()
            .clone()
    };
    assert_eq!(tip("bo")["status"], "sent");
    let held = tip("ana");
    assert_eq!(held["status"], "planned", "{held}");
    assert_eq!(held["reason"], HELD);

    // Waiting in the outbox, it is still held in the forecast.
    let rows = forecast(p, "2026-03-03T10:00:00Z");
    assert!(rows.is_empty(), "{rows:?}");
    let table = p
        .tend(&["forecast", "--now", "2026-03-03T10:00:00Z"])
        .expect_code(0)
        .stdout();
    assert!(
        table.contains(&format!("ana tips/day-1: {HELD}")),
        "{table}"
    );

    // Resolved: the tip is no longer held for the incident, but the two
    // notices fill Ana's cap (2 a week), so it waits for a slot.
    let resolved = p
        .tend(&[
            "incident",
            "resolve",
            "INC-1",
            "--message",
            "Fixed.",
            "--now",
            "2026-03-03T11:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(resolved.contains("sent 1"), "{resolved}");
    let ana = messages(p)
        .into_iter()
        .find(|m| m["customer_id"] == "ana" && m["playbook"] == "tips")
        .unwrap();
    assert_ne!(ana["status"], "sent", "{ana}");
    assert!(
        ana["reason"]
            .as_str()
            .unwrap()
            .contains("frequency cap (2 per 7 days)"),
        "{ana}"
    );
}

#[test]
fn the_forecast_holds_a_tip_during_an_incident_on_sqlite() {
    the_forecast_holds_a_tip_during_an_incident_as_delivery_does(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_holds_a_tip_during_an_incident_on_postgres() {
    common::on_fresh_postgres(move |url| {
        the_forecast_holds_a_tip_during_an_incident_as_delivery_does(&project(Some(url)))
    })
    .await;
}
