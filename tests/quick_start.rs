//! The README's quick start, followed as written on a fresh copy of the
//! shipped files: `tend run` loads the demo customers into the empty store
//! and says where to look; one `tend tick` later there is mail in
//! `data/outbox` whose survey and unsubscribe links work against the running
//! daemon. The README cannot drift from the code without this failing.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::daemon::Daemon;
use common::{Project, free_port, json, tick};
use tend::config::Settings;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The first `.eml` in `dir` addressed to `to`, waiting (bounded) for the
/// daemon to finish writing one it may have had in hand.
/// The first mail in `dir` to `to` that says `about` (a customer may have
/// been sent more than one, in any order on disk).
fn mail_to(dir: &std::path::Path, to: &str, about: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if entry.path().extension().is_some_and(|e| e == "eml")
                && text.lines().any(|l| l.starts_with("To:") && l.contains(to))
                && text.contains(about)
            {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {to} saying {about:?} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first link to `base/route/…` in a message's HTML part, as a path.
fn link(eml: &str, base: &str, route: &str) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(eml.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let start = html
        .find(&format!("{base}/{route}/"))
        .unwrap_or_else(|| panic!("no /{route}/ link in:\n{html}"));
    let rest = &html[start + base.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let readme = readme();
    for command in [
        "cargo run --release -- run",
        "cargo test --locked",
        "data/outbox",
        "tend messages",
        "tend tick --now",
        "tend preview onboarding/welcome_checkin --customer demo-ana --format html",
        "tend forecast",
    ] {
        assert!(
            readme.contains(command),
            "the README's quick start no longer says {command:?}"
        );
    }

    // 1. The daemon on the shipped config: the demo is loaded and announced.
    // Its own port rather than 8080, for the daemon and every command.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let p = Project::shipped().env("TEND__HTTP__PUBLIC_URL", &base);
    let started: DateTime<Utc> = Utc::now();
    let mut d = Daemon::start(&p, port, &[]);
    let banner = d.log();
    let outbox = p.path().join("data/outbox");
    assert!(outbox.is_dir(), "data/outbox exists from the start");
    // The demo incident's notices are urgent: they are there at any hour.
    mail_to(&outbox, "<cy@example.com>", "Dashboards load slowly");
    for said in [
        "tend is running the demo",
        "loaded 13 demo customers of 2 companies",
        &outbox.display().to_string(),
        &base,
        "demo-ana's onboarding/welcome-checkin",
    ] {
        assert!(
            banner.contains(said),
            "the banner lacks {said:?}:\n{banner}"
        );
    }
    // The links it prints work against the daemon: Ana's check-in in a
    // browser, its survey's answer page, and her preferences.
    let printed = |label: &str| {
        let line = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} line:\n{banner}"));
        line.trim().strip_prefix(&base).unwrap().to_owned()
    };
    let shown = d.request("GET", &printed("view "), &[], b"");
    assert_eq!(shown.status, 200, "{}", shown.body);
    // Ana reads Portuguese (pt-PT): the shipped Brazilian translation.
    assert!(
        shown
            .body
            .contains("Como foi seu primeiro dia com Acme Cloud, Ana?"),
        "{}",
        shown.body
    );
    assert_eq!(d.request("GET", &printed("answer "), &[], b"").status, 200);
    assert_eq!(d.request("GET", &printed("leave "), &[], b"").status, 200);

    // 2. One cycle at the next moment Ana (Lisbon) is in her working hours:
    //    her day-one check-in goes to data/outbox.
    let window = Settings::default().delivery.window.parse().unwrap();
    // (A minute on, so a start in the window's last minute looks to the
    // next opening instead of past its close.)
    let at = window.next_opening(
        started + chrono::Duration::minutes(1),
        chrono_tz::Europe::Lisbon,
    );
    // (The daemon planned the demo's mail when it started, and may have
    // sent Ana's already if she is at work now: either way it is there.)
    tick(&p, &at.to_rfc3339());
    let eml = mail_to(
        &outbox,
        "<ana@example.com>",
        "Subject: Como foi seu primeiro dia com Acme Cloud, Ana?",
    );

    // 3. Its links work against the running daemon: the survey answer page,
    //    the answer itself, and the preferences page.
    let answer = link(&eml, &base, "r");
    let page = d.request("GET", &answer, &[], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Acme Cloud"), "{}", page.body);
    let recorded = d.request(
        "POST",
        &answer,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"comment=Setting+up+was+easy",
    );
    assert_eq!(recorded.status, 200, "{}", recorded.body);
    let responses = json(&p.tend(&["responses", "--format", "json"]).expect_code(0));
    let survey = responses
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "survey")
        .unwrap_or_else(|| panic!("no survey answer recorded: {responses}"));
    assert_eq!(survey["customer_id"], "demo-ana");
    assert_eq!(survey["comment"], "Setting up was easy");

    // "View in your browser": the same HTML as the email's part, and
    // nothing recorded; a forged link is refused.
    let html = mail_parser::MessageParser::default()
        .parse(eml.as_bytes())
        .unwrap()
        .body_html(0)
        .unwrap()
        .replace("\r\n", "\n");
    let view = link(&eml, &base, "v");
    let viewed = d.request("GET", &view, &[], b"");
    assert_eq!(viewed.status, 200, "{}", viewed.body);
    assert_eq!(viewed.body, html);
    let last = if view.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &view[..view.len() - 1]);
    assert_eq!(d.request("GET", &forged, &[], b"").status, 400);

    let preferences = d.request("GET", &link(&eml, &base, "u"), &[], b"");
    assert_eq!(preferences.status, 200, "{}", preferences.body);
    assert!(
        preferences.body.contains("Getting started"),
        "{}",
        preferences.body
    );

    // 4. The store holds the demo and the message, as `tend messages` shows.
    let messages = json(
        &p.tend(&["messages", "--customer", "demo-ana", "--format", "json"])
            .expect_code(0),
    );
    assert!(
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["step"] == "welcome-checkin" && m["status"] == "sent"),
        "{messages}"
    );
    assert!(d.stop(Duration::from_secs(20)).success());

    // 5. A second start finds the demo already there and loads nothing.
    let mut again = Daemon::start(&p, free_port(), &[]);
    assert!(
        again
            .log()
            .contains("the store was not empty, so no demo customers were loaded"),
        "{}",
        again.log()
    );
    assert!(again.stop(Duration::from_secs(20)).success());
}

/// On a Saturday evening no demo customer is at work, and still the quick
/// start shows mail: the demo incident's notices wait for nobody.
#[test]
fn the_demo_shows_mail_on_a_saturday_evening() {
    let p = Project::shipped();
    let saturday = "2026-12-12T21:00:00Z";
    p.tend(&["demo", "--now", saturday]).expect_code(0);
    let ticked = tick(&p, saturday);
    assert!(ticked["sent"].as_u64().unwrap() >= 2, "{ticked}");
    let outbox = p.path().join("data/outbox");
    let emls: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap_or_else(|e| panic!("no {}: {e}", outbox.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(emls.len() >= 2, "{emls:?}");
    // A second load opens nothing new.
    p.tend(&["demo", "--now", saturday]).expect_code(0);
    assert_eq!(tick(&p, saturday)["sent"], 0);
}

#[test]
fn a_config_without_demo_load_never_gets_demo_customers() {
    // What an operator's own config (and the systemd unit) does.
    let p = Project::shipped().env("TEND__DEMO__LOAD", "false");
    let mut d = Daemon::start(&p, free_port(), &[]);
    assert!(!d.log().contains("demo"), "{}", d.log());
    assert!(d.stop(Duration::from_secs(20)).success());
    let messages = json(&p.tend(&["messages", "--format", "json"]).expect_code(0));
    assert_eq!(messages, serde_json::json!([]));
    let run = p
        .tend(&["forecast", "--customer", "demo-ana"])
        .expect_code(1);
    assert!(
        run.stderr().contains("no customer has id"),
        "{}",
        run.stderr()
    );
}
