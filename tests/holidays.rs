//! Holidays: mail that can wait does not arrive on a customer's holiday
//! (their local date); it goes at the next working opening of their send
//! window, and the forecast and the outbox say why. Through the binary, a
//! real SMTP server and both stores, on an injected clock.

mod common;

use common::smtp::SmtpSink;
use common::{Project, json, tick};
use serde_json::Value;

const PLAYBOOK: &str = r#"
name = "tips"
kind = "tip"
category = "tips"

[[step]]
id = "first"
template = "tip"
anchor = "signup_at"
after = "1d"
expires = "30d"
"#;

/// Christmas Eve and Day every year, and New Year's Day.
const CALENDAR: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Acme//Holidays//EN\r\n\
BEGIN:VEVENT\r\nUID:eve@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Christmas Eve\r\n\
DTSTART;VALUE=DATE:20201224\r\nDTEND;VALUE=DATE:20201226\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:ny@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:New Year's Day\r\n\
DTSTART;VALUE=DATE:20270101\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// A project mailing the sink one tip a day after signup, with `delivery`
/// (the `[delivery]` table's lines) and each of `calendars` (name, iCalendar
/// text) declared under `config/holidays/`.
fn tips(
    sink: &SmtpSink,
    database: Option<&str>,
    delivery: &str,
    calendars: &[(&str, &str)],
) -> Project {
    let declared: String = calendars
        .iter()
        .map(|(name, _)| {
            format!("[[holidays]]\nname = \"{name}\"\nfile = \"config/holidays/{name}.ics\"\n")
        })
        .collect();
    let mut p = Project::new(&format!(
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
         [delivery]\n{delivery}\n{declared}",
        sink.port()
    ));
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    for dir in ["config/playbooks", "config/holidays", "templates"] {
        std::fs::create_dir_all(p.path().join(dir)).unwrap();
    }
    for (name, text) in calendars {
        p.file(&format!("config/holidays/{name}.ics"), text);
    }
    p.file("config/playbooks/tips.toml", PLAYBOOK);
    p.file(
        "templates/tip.md.hbs",
        "+++\nsubject = \"A tip for {{customer.first_name}}\"\n+++\nHi {{customer.first_name}}.\n",
    );
    p
}

fn project(sink: &SmtpSink, database: Option<&str>) -> Project {
    let p = tips(
        sink,
        database,
        "holidays = \"office\"",
        &[("office", CALENDAR)],
    );
    // Due Thursday 24 December 2026 at 10:00 UTC: 11:00 in Berlin and
    // 05:00 in New York, Christmas Eve in both.
    p.file(
        "customers.csv",
        "id,email,name,timezone,plan,signup_at\n\
         berlin,b@example.com,Berta Berlin,Europe/Berlin,pro,2026-12-23T10:00:00Z\n\
         newyork,n@example.com,Nora York,America/New_York,pro,2026-12-23T10:00:00Z\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

fn reason_of(p: &Project, customer: &str) -> String {
    let all = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    let m = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["customer_id"] == customer)
        .unwrap_or_else(|| panic!("no message for {customer}: {all:#}"));
    m["reason"].as_str().unwrap_or_default().to_owned()
}

/// `customer`'s row of the forecast at `now` over `days`, as JSON.
fn forecast_row(p: &Project, now: &str, days: &str, customer: &str) -> Value {
    let forecast = json(
        &p.tend(&["forecast", "--now", now, "--days", days, "--format", "json"])
            .expect_code(0),
    );
    forecast
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["customer_id"] == customer)
        .cloned()
        .unwrap_or_else(|| panic!("no {customer} in {forecast:#}"))
}

fn waits_out_the_holidays(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = project(&sink, database);

    let berlin = forecast_row(&p, "2026-12-24T10:00:00Z", "7", "berlin");
    assert_eq!(berlin["at"], "2026-12-28T08:00:00Z", "{berlin}");
    assert_eq!(
        berlin["waits_out"], "Christmas Eve (2026-12-24)",
        "{berlin}"
    );
    let text = p
        .tend(&["forecast", "--now", "2026-12-24T10:00:00Z", "--days", "7"])
        .expect_code(0)
        .stdout();
    assert!(
        text.contains("A tip for Berta (after a holiday: Christmas Eve (2026-12-24))"),
        "{text}"
    );
    // Seen from the week before, the reason is the same.
    let newyork = forecast_row(&p, "2026-12-21T10:00:00Z", "14", "newyork");
    assert_eq!(newyork["at"], "2026-12-28T14:00:00Z", "{newyork}");
    assert_eq!(
        newyork["waits_out"], "Christmas Eve (2026-12-24)",
        "{newyork}"
    );

    let first = tick(&p, "2026-12-24T10:00:00Z");
    assert_eq!(first["planned"], 2, "{first}");
    assert_eq!(first["sent"], 0, "{first}");
    assert!(sink.received().is_empty());
    let why = reason_of(&p, "berlin");
    assert!(
        why.contains("2026-12-24 is Christmas Eve in the customer's holiday calendar (office)")
            && why.contains("2026-12-28T08:00:00Z"),
        "{why}"
    );
    // Christmas Day, and the weekend after it: still nothing.
    assert_eq!(tick(&p, "2026-12-25T12:00:00Z")["sent"], 0);
    assert_eq!(tick(&p, "2026-12-26T12:00:00Z")["sent"], 0);
    // Monday 28 December, 09:00 in Berlin: Berta's goes; Nora's window
    // opens at 09:00 in New York (14:00 UTC).
    assert_eq!(tick(&p, "2026-12-28T08:00:00Z")["sent"], 1);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(sink.received()[0].to, ["b@example.com"]);
    assert_eq!(tick(&p, "2026-12-28T14:00:00Z")["sent"], 1);
    assert_eq!(sink.received()[1].to, ["n@example.com"]);
}

#[test]
fn waits_out_the_holidays_on_sqlite() {
    waits_out_the_holidays(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_out_the_holidays_on_postgres() {
    common::on_fresh_postgres(|url| waits_out_the_holidays(Some(url))).await;
}

#[test]
fn a_calendar_that_cannot_be_read_is_named_with_its_line() {
    let sink = SmtpSink::start();
    let p = project(&sink, None);
    p.file(
        "config/holidays/office.ics",
        CALENDAR.replace("DTSTART;VALUE=DATE:20270101", "DTSTART:20270101T090000Z"),
    );
    let out = p.tend(&["check"]).expect_code(1).stderr();
    assert!(
        out.contains("holiday calendar \"office\": config/holidays/office.ics: line 16: \"New Year's Day\" starts at a time of day"),
        "{out}"
    );
    std::fs::remove_file(p.path().join("config/holidays/office.ics")).unwrap();
    let out = p.tend(&["check"]).expect_code(1).stderr();
    assert!(
        out.contains("config/holidays/office.ics (No such file"),
        "{out}"
    );
    assert!(
        out.contains("tend.toml:"),
        "the line of [[holidays]] file: {out}"
    );
}

#[test]
fn delivery_holidays_must_name_a_declared_calendar() {
    let p = Project::new(
        "[delivery]\nholidays = \"ofice\"\n[[holidays]]\nname = \"office\"\nfile = \"x.ics\"\n",
    );
    p.file("x.ics", CALENDAR);
    let out = p.tend(&["check"]).expect_code(1).stderr();
    assert!(
        out.contains("delivery.holidays names the calendar \"ofice\"") && out.contains("office"),
        "{out}"
    );
}

/// Germany's Christmas (24–26 December) and the United States' (the 25th),
/// every year.
const GERMANY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Acme//DE//EN\r\n\
BEGIN:VEVENT\r\nUID:weihnachten@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Weihnachten\r\n\
DTSTART;VALUE=DATE:20201224\r\nDTEND;VALUE=DATE:20201227\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
const UNITED_STATES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Acme//US//EN\r\n\
BEGIN:VEVENT\r\nUID:christmas@acme\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Christmas Day\r\n\
DTSTART;VALUE=DATE:20201225\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// Five people due a tip on Thursday 24 December 2026 at 10:00 UTC, each
/// kept by a different rule: their own calendar (Berta), the default one
/// (Nora), their account's (Karl, in New York at a German company), their
/// account's quiet period (Quinn) and their own quiet period after their
/// account's holidays (Olga); Zeno's quiet period outlasts the tip.
fn several_calendars(sink: &SmtpSink, database: Option<&str>) -> Project {
    let p = tips(
        sink,
        database,
        "holidays = \"us\"\n[delivery.cap]\nmax = 10",
        &[("de", GERMANY), ("us", UNITED_STATES)],
    );
    p.file(
        "accounts.csv",
        "id,name,holidays,quiet_until\n\
         acme-de,Acme GmbH,de,\n\
         migrating,Migrating Inc,,2027-01-05\n",
    );
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    p.file(
        "customers.csv",
        "id,email,name,timezone,plan,signup_at,account_id,holidays,quiet_until\n\
         berta,b@example.com,Berta Berlin,Europe/Berlin,pro,2026-12-23T10:00:00Z,,de,\n\
         nora,n@example.com,Nora York,America/New_York,pro,2026-12-23T10:00:00Z,,,\n\
         karl,k@example.com,Karl Klein,America/New_York,pro,2026-12-23T10:00:00Z,acme-de,,\n\
         quinn,q@example.com,Quinn Quiet,Europe/Berlin,pro,2026-12-23T10:00:00Z,migrating,de,\n\
         olga,o@example.com,Olga Ost,Europe/Berlin,pro,2026-12-23T10:00:00Z,acme-de,,2026-12-29T12:00:00Z\n\
         zeno,z@example.com,Zeno Zen,Europe/Berlin,pro,2026-12-23T10:00:00Z,,,2027-03-01\n",
    );
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

fn each_keeps_their_own_calendar_and_quiet(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = several_calendars(&sink, database);

    let now = "2026-12-24T10:00:00Z";
    let expect = [
        ("nora", "2026-12-24T14:00:00Z", None, None),
        (
            "berta",
            "2026-12-28T08:00:00Z",
            Some("Weihnachten (2026-12-24)"),
            None,
        ),
        (
            "karl",
            "2026-12-28T14:00:00Z",
            Some("Weihnachten (2026-12-24)"),
            None,
        ),
        (
            "olga",
            "2026-12-29T12:00:00Z",
            None,
            Some("2026-12-29T12:00:00Z"),
        ),
        (
            "quinn",
            "2027-01-05T08:00:00Z",
            None,
            Some("2027-01-05T00:00:00Z"),
        ),
    ];
    for (who, at, holiday, quiet) in expect {
        let row = forecast_row(&p, now, "14", who);
        assert_eq!(row["at"], at, "{who}: {row}");
        assert_eq!(row["waits_out"].as_str(), holiday, "{who}: {row}");
        assert_eq!(row["quiet_until"].as_str(), quiet, "{who}: {row}");
    }
    let text = p
        .tend(&["forecast", "--now", now, "--days", "14"])
        .expect_code(0)
        .stdout();
    assert!(
        text.contains(
            "A tip for Quinn (after the customer's quiet period, until 2027-01-05 01:00 CET)"
        ),
        "{text}"
    );

    let first = tick(&p, now);
    assert_eq!(first["planned"], 5, "{first}");
    assert_eq!(first["expired"], 1, "{first}");
    let why = reason_of(&p, "zeno");
    assert!(
        why.contains("expired: the customer asked for quiet until 2027-02-28T23:00:00Z (quiet_until), past its expiry (2027-01-23T10:00:00Z)"),
        "{why}"
    );
    assert_eq!(first["sent"], 0, "{first}");
    // Planned before Karl's window opens, his message says from the
    // start that it waits out his account's holiday.
    let why = reason_of(&p, "karl");
    assert!(
        why.contains("2026-12-24 is Weihnachten in the customer's holiday calendar (de)")
            && why.contains("2026-12-28T14:00:00Z"),
        "{why}"
    );
    let why = reason_of(&p, "quinn");
    assert!(
        why.contains("the customer asked for quiet until 2027-01-05T00:00:00Z (quiet_until)")
            && why.contains("2027-01-05T08:00:00Z"),
        "{why}"
    );

    // Each goes at the moment the forecast said, and not before.
    let mut delivered = 0;
    for (who, at, _, _) in expect {
        let before =
            chrono::DateTime::parse_from_rfc3339(at).unwrap() - chrono::Duration::minutes(1);
        let early = tick(&p, &before.to_rfc3339());
        assert_eq!(early["sent"], 0, "{who} before {at}: {early}");
        assert_eq!(tick(&p, at)["sent"], 1, "{who} at {at}");

        delivered += 1;
        let received = sink.received();
        assert_eq!(received.len(), delivered);
        assert_eq!(
            received[delivered - 1].to,
            [format!("{}@example.com", &who[..1])]
        );
        if who == "olga" {
            // During Quinn's quiet period an incident notice reaches them
            // at once; the tip still waits.
            p.tend(&[
                "incident",
                "open",
                "INC-7",
                "--title",
                "Login outage",
                "--affects",
                r#"customer.id == "quinn""#,
                "--message",
                "Sign-in fails for some users.",
                "--now",
                "2026-12-30T10:00:00Z",
            ])
            .expect_code(0);
            p.tend(&[
                "incident",
                "resolve",
                "INC-7",
                "--message",
                "Fixed.",
                "--now",
                "2026-12-30T11:00:00Z",
            ])
            .expect_code(0);
            let notices = sink.received();
            assert_eq!(
                notices.len(),
                delivered + 2,
                "the opening and the resolution"
            );
            assert!(
                notices[delivered..]
                    .iter()
                    .all(|m| m.to == ["q@example.com"])
            );
            delivered += 2;
        }
    }
}

#[test]
fn each_keeps_their_own_calendar_and_quiet_on_sqlite() {
    each_keeps_their_own_calendar_and_quiet(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_keeps_their_own_calendar_and_quiet_on_postgres() {
    common::on_fresh_postgres(|url| each_keeps_their_own_calendar_and_quiet(Some(url))).await;
}

/// A quiet period ended early (the account imported again without it)
/// releases what it held within the hour, not at its old end.
fn ending_a_quiet_period_early_releases_what_it_held(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = several_calendars(&sink, database);
    assert_eq!(tick(&p, "2026-12-24T10:00:00Z")["sent"], 0);
    p.file(
        "accounts.csv",
        "id,name,holidays,quiet_until\nacme-de,Acme GmbH,de,\nmigrating,Migrating Inc,,\n",
    );
    p.tend(&["import", "accounts", "accounts.csv"])
        .expect_code(0);
    // Monday 09:00 in Berlin: Berta's tip, and Quinn's with it.
    let monday = tick(&p, "2026-12-28T08:00:00Z");
    assert_eq!(monday["sent"], 2, "{monday}");
    let mut to: Vec<String> = sink.received().iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    assert_eq!(to, ["b@example.com", "q@example.com"]);
}

#[test]
fn ending_a_quiet_period_early_releases_what_it_held_on_sqlite() {
    ending_a_quiet_period_early_releases_what_it_held(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_quiet_period_early_releases_what_it_held_on_postgres() {
    common::on_fresh_postgres(|url| ending_a_quiet_period_early_releases_what_it_held(Some(url)))
        .await;
}

/// A calendar dropped from the config while the store still names it:
/// `tend check` says who is affected and what applies to them instead.
fn check_names_a_stored_calendar_no_longer_declared(database: Option<&str>) {
    let sink = SmtpSink::start();
    let p = several_calendars(&sink, database);
    let out = p.tend(&["check"]).expect_code(0).stderr();
    assert!(!out.contains("holiday calendar"), "{out}");
    let config = std::fs::read_to_string(p.path().join("config/tend.toml")).unwrap();
    p.file(
        "config/tend.toml",
        config.replace(
            "[[holidays]]\nname = \"de\"\nfile = \"config/holidays/de.ics\"\n",
            "",
        ),
    );
    let out = p.tend(&["check"]).expect_code(0).stderr();
    assert!(
        out.contains("warning: customers or accounts in the store keep the holiday calendar \"de\", which no [[holidays]] declares, so delivery.holidays (\"us\") applies to them instead"),
        "{out}"
    );
}

#[test]
fn check_names_a_stored_calendar_no_longer_declared_on_sqlite() {
    check_names_a_stored_calendar_no_longer_declared(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_stored_calendar_no_longer_declared_on_postgres() {
    common::on_fresh_postgres(|url| check_names_a_stored_calendar_no_longer_declared(Some(url)))
        .await;
}

#[test]
fn a_row_naming_an_undeclared_calendar_is_rejected_with_its_line() {
    let sink = SmtpSink::start();
    let p = project(&sink, None);
    p.file(
        "more.csv",
        "id,email,name,timezone,holidays,quiet_until\n\
         ok,ok@example.com,Ok,UTC,office,\n\
         typo,t@example.com,Typo,UTC,ofice,\n\
         late,l@example.com,Late,UTC,,next week\n",
    );
    let out = p
        .tend(&["import", "customers", "more.csv"])
        .expect_code(1)
        .stderr();
    assert!(
        out.contains("more.csv:3")
            && out.contains("holidays names the calendar \"ofice\", which the config does not declare; use one of office"),
        "{out}"
    );
    assert!(
        out.contains("more.csv:4") && out.contains("quiet_until:"),
        "{out}"
    );
    // The good row is kept, the others are not.
    p.tend(&["customer", "show", "ok"]).expect_code(0);
    for rejected in ["typo", "late"] {
        p.tend(&["customer", "show", rejected]).expect_code(1);
    }
}
