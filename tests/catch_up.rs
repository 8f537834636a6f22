//! Catch-up through the real binary, on SQLite and PostgreSQL: after a gap
//! a recurring step sends its latest missed occurrence once and records the
//! older ones as `expired` ("superseded by a later occurrence"); a message
//! still waiting when its step's next occurrence falls due is superseded
//! too; a late import sends a sequence's latest due step, not all of them;
//! and the forecast shows each of these before it happens.

mod common;

use common::smtp::SmtpSink;
use common::{Project, json, tick};
use serde_json::Value;

const SUPERSEDED: &str = "superseded by a later occurrence";

const DAILY: &str = r#"name = "daily"
kind = "checkin"
category = "checkins"

[[step]]
id = "pulse"
template = "pulse"
cron = "0 10 * * *"                 # 10:00 every day, the customer's time
"#;

const SEQUENCE: &str = r#"name = "onboarding"
kind = "checkin"
category = "onboarding"

[[step]]
id = "day-1"
template = "pulse"
anchor = "signup_at"
after = "1d"
expires = "14d"

[[step]]
id = "day-3"
template = "pulse"
anchor = "signup_at"
after = "3d"
expires = "14d"

[[step]]
id = "day-7"
template = "pulse"
anchor = "signup_at"
after = "7d"
expires = "14d"
"#;

/// A project sending by SMTP to `sink`, with the frequency cap at `cap`,
/// one customer in UTC who signed up on Friday 2026-02-27 09:00, and
/// `playbook` as its only playbook.
fn project(sink: &SmtpSink, cap: &str, playbook: &str, database: Option<&str>) -> Project {
    let mut p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"5s\"\n\
         [http]\npublic_url = \"https://tend.acme.example\"\n\
         [security]\nsecret = \"catch-up-tests-secret-of-forty-bytes!!!!\"\n\
         [delivery]\ncap = {cap}\n",
        sink.port()
    ));
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file(
        "templates/pulse.md.hbs",
        "+++\nsubject = \"How is it going, {{customer.first_name}}?\"\n+++\nHi {{customer.first_name}}\n",
    );
    p.file("config/playbooks/p.toml", playbook);
    p.file(
        "customers.csv",
        "id,email,name,timezone,plan,signup_at\nana,ana@example.com,Ana Lima,UTC,pro,2026-02-27T09:00:00Z\n",
    );
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

fn forecast(p: &Project, now: &str) -> Vec<Value> {
    json(
        &p.tend(&["forecast", "--now", now, "--days", "7", "--format", "json"])
            .expect_code(0),
    )
    .as_array()
    .unwrap()
    .clone()
}

fn with_status<'a>(rows: &'a [Value], status: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["status"] == status).collect()
}

/// A daily step whose first tick comes a week late (a new playbook), with
/// the cap raised out of the way: one mail, six `expired` once, however
/// often the tick runs again.
fn a_week_late_daily_step_sends_one_mail(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(&sink, "{ max = 20, per = \"7d\" }", DAILY, database);
    // Monday 2026-03-09 10:30: the occurrences of 3 to 9 March (10:00)
    // are all within the step's 7-day expiry.
    let now = "2026-03-09T10:30:00Z";

    // The forecast says so first: of the missed ones, the latest goes now
    // and the six before it are recorded as superseded, now; after that,
    // one a day, and none on the weekend (each would wait for Monday).
    let week = forecast(&p, now);
    let mut days: Vec<&str> = with_status(&week, "sent")
        .iter()
        .map(|r| &r["at"].as_str().unwrap()[..10])
        .collect();
    days.dedup();
    assert_eq!(
        days,
        [
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
            "2026-03-12",
            "2026-03-13",
            "2026-03-16"
        ],
        "{week:#?}"
    );
    let rows: Vec<Value> = week
        .iter()
        .filter(|r| r["due_at"].as_str().unwrap() <= now)
        .cloned()
        .collect();
    let sent = with_status(&rows, "sent");
    assert_eq!(sent.len(), 1, "{rows:#?}");
    assert_eq!(sent[0]["at"], now);
    assert_eq!(sent[0]["due_at"], "2026-03-09T10:00:00Z");
    let expired = with_status(&rows, "expired");
    assert_eq!(expired.len(), 6, "{rows:#?}");
    assert!(
        expired
            .iter()
            .all(|r| r["reason"] == SUPERSEDED && r["at"] == now),
        "{rows:#?}"
    );
    let table = p
        .tend(&["forecast", "--now", now, "--days", "1", "--customer", "ana"])
        .expect_code(0)
        .stdout();
    assert_eq!(table.matches(SUPERSEDED).count(), 6, "{table}");

    let first = tick(&p, now);
    assert_eq!(
        first,
        serde_json::json!({"planned": 1, "sent": 1, "deferred": 0, "failed": 0, "suppressed": 0, "expired": 6})
    );
    assert_eq!(sink.received().len(), 1, "exactly one mail");
    let all = messages(&p);
    assert_eq!(all.len(), 7, "{all:#?}");
    let sent: Vec<&Value> = all.iter().filter(|m| m["status"] == "sent").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["occurrence"], "2026-03-09T10:00:00Z");
    let expired: Vec<&Value> = all.iter().filter(|m| m["status"] == "expired").collect();
    assert_eq!(expired.len(), 6);
    assert!(
        expired.iter().all(|m| m["reason"] == SUPERSEDED),
        "{all:#?}"
    );

    // Again at once, a minute later, and after a restart: nothing twice.
    for again in [now, now, "2026-03-09T10:31:00Z"] {
        assert_eq!(
            tick(&p, again),
            serde_json::json!({"planned": 0, "sent": 0, "deferred": 0, "failed": 0, "suppressed": 0, "expired": 0})
        );
    }
    assert_eq!(messages(&p), all, "nothing recorded twice");
    assert_eq!(sink.received().len(), 1);

    // The next day goes as usual, with nothing left to catch up.
    let tuesday = tick(&p, "2026-03-10T10:30:00Z");
    assert_eq!(
        (
            tuesday["planned"].as_u64(),
            tuesday["sent"].as_u64(),
            tuesday["expired"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(sink.received().len(), 2);
}

#[test]
fn a_week_late_daily_step_sends_one_mail_on_sqlite() {
    a_week_late_daily_step_sends_one_mail(None);
}

#[tokio::test]
async fn a_week_late_daily_step_sends_one_mail_on_postgres() {
    common::on_fresh_postgres(|url| a_week_late_daily_step_sends_one_mail(Some(url))).await;
}

/// With one mail a week allowed, a daily step's message waits for the cap
/// past its step's next occurrence: planning that one supersedes it, so
/// only one ever waits, and the week's mail is the latest one.
fn a_message_waiting_past_the_next_occurrence_is_superseded(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(&sink, "{ max = 1, per = \"7d\" }", DAILY, database);
    assert_eq!(tick(&p, "2026-03-09T10:30:00Z")["sent"], 1);
    // Tuesday's waits for the cap.
    let tuesday = tick(&p, "2026-03-10T10:30:00Z");
    assert_eq!(
        (tuesday["planned"].as_u64(), tuesday["sent"].as_u64()),
        (Some(1), Some(0))
    );
    // Wednesday's supersedes it.
    let wednesday = tick(&p, "2026-03-11T10:30:00Z");
    assert_eq!(
        (
            wednesday["planned"].as_u64(),
            wednesday["sent"].as_u64(),
            wednesday["expired"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    let all = messages(&p);
    let of = |occurrence: &str| {
        all.iter()
            .find(|m| m["occurrence"] == occurrence)
            .unwrap_or_else(|| panic!("no {occurrence} in {all:#?}"))
    };
    assert_eq!(of("2026-03-10T10:00:00Z")["status"], "expired");
    assert_eq!(of("2026-03-10T10:00:00Z")["reason"], SUPERSEDED);
    assert_eq!(of("2026-03-11T10:00:00Z")["status"], "planned");
    assert_eq!(
        all.iter()
            .filter(|m| m["status"] == "planned" || m["status"] == "deferred")
            .count(),
        1,
        "one waits at a time: {all:#?}"
    );

    // The forecast for the week: what waits now and every day until the
    // cap lets one through is superseded in turn; one goes, on Monday.
    let rows = forecast(&p, "2026-03-11T10:30:00Z");
    let sent = with_status(&rows, "sent");
    assert_eq!(sent.len(), 1, "{rows:#?}");
    assert!(
        sent[0]["at"].as_str().unwrap().starts_with("2026-03-16"),
        "{rows:#?}"
    );
    assert_eq!(sent[0]["due_at"], "2026-03-16T10:00:00Z");
    let expired = with_status(&rows, "expired");
    assert!(
        expired.iter().all(|r| r["reason"] == SUPERSEDED),
        "{rows:#?}"
    );
    // Wednesday's (waiting) to Sunday's, and next Tuesday's.
    let due: Vec<&str> = expired
        .iter()
        .map(|r| r["due_at"].as_str().unwrap())
        .collect();
    for day in ["11", "12", "13", "14", "15", "17"] {
        assert!(
            due.contains(&format!("2026-03-{day}T10:00:00Z").as_str()),
            "{day}: {rows:#?}"
        );
    }
}

#[test]
fn a_message_waiting_past_the_next_occurrence_is_superseded_on_sqlite() {
    a_message_waiting_past_the_next_occurrence_is_superseded(None);
}

#[tokio::test]
async fn a_message_waiting_past_the_next_occurrence_is_superseded_on_postgres() {
    common::on_fresh_postgres(|url| {
        a_message_waiting_past_the_next_occurrence_is_superseded(Some(url))
    })
    .await;
}

/// With the default window (Monday to Friday) a daily step's weekend
/// occurrences would all go on Monday morning, beside Monday's own: each is
/// superseded when it falls due, and Monday has one mail.
#[test]
fn a_weekend_does_not_pile_up_for_monday() {
    let sink = SmtpSink::start();
    let p = project(&sink, "{ max = 20, per = \"7d\" }", DAILY, None);
    assert_eq!(tick(&p, "2026-03-06T10:30:00Z")["sent"], 1);
    for weekend in ["2026-03-07T10:30:00Z", "2026-03-08T10:30:00Z"] {
        let t = tick(&p, weekend);
        assert_eq!(
            (t["planned"].as_u64(), t["expired"].as_u64()),
            (Some(0), Some(1)),
            "{weekend}: {t}"
        );
    }
    assert_eq!(
        tick(&p, "2026-03-09T09:00:00Z")["sent"],
        0,
        "Sunday's does not go at 09:00"
    );
    assert_eq!(
        tick(&p, "2026-03-09T10:00:00Z")["sent"],
        1,
        "Monday's goes at 10:00"
    );
    assert_eq!(sink.received().len(), 2);
    let all = messages(&p);
    for day in ["07", "08"] {
        let m = all
            .iter()
            .find(|m| m["occurrence"] == format!("2026-03-{day}T10:00:00Z"))
            .unwrap();
        assert_eq!(
            (m["status"].as_str(), m["reason"].as_str()),
            (Some("expired"), Some(SUPERSEDED))
        );
    }
}

/// A customer imported ten days after signing up: of an onboarding
/// sequence at days 1, 3 and 7 (each kept 14 days), only day 7 goes; the
/// forecast shows the other two as superseded by it first.
fn a_late_import_sends_the_latest_step_of_a_sequence(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(&sink, "{ max = 2, per = \"7d\" }", SEQUENCE, database);
    let now = "2026-03-09T10:30:00Z";
    let rows = forecast(&p, now);
    let sent = with_status(&rows, "sent");
    assert_eq!(sent.len(), 1, "{rows:#?}");
    assert_eq!(sent[0]["step"], "day-7");
    let expired = with_status(&rows, "expired");
    let steps: Vec<&str> = expired
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["day-1", "day-3"], "{rows:#?}");
    for r in &expired {
        assert_eq!(
            r["reason"],
            "superseded by a later step of its sequence (day-7)"
        );
        assert_eq!(r["at"], now);
    }

    let first = tick(&p, now);
    assert_eq!(
        (
            first["planned"].as_u64(),
            first["sent"].as_u64(),
            first["expired"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(sink.received().len(), 1);
    let all = messages(&p);
    assert_eq!(tick(&p, now)["planned"], 0);
    assert_eq!(tick(&p, "2026-03-10T10:30:00Z")["expired"], 0);
    assert_eq!(messages(&p), all, "nothing recorded twice");
    let day7 = all.iter().find(|m| m["step"] == "day-7").unwrap();
    assert_eq!(day7["status"], "sent");
}

#[test]
fn a_late_import_sends_the_latest_step_of_a_sequence_on_sqlite() {
    a_late_import_sends_the_latest_step_of_a_sequence(None);
}

#[tokio::test]
async fn a_late_import_sends_the_latest_step_of_a_sequence_on_postgres() {
    common::on_fresh_postgres(|url| a_late_import_sends_the_latest_step_of_a_sequence(Some(url)))
        .await;
}
