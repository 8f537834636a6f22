//! A maintenance through the binary on both stores, at fixed instants:
//! no announcement after its start, however late the first tick after a
//! gap; scheduled → in_progress → completed by its own clock (a completion
//! notice only when configured, to those told); completed early or called
//! off, what had not gone is withdrawn and only those told hear of it; and
//! the same cancel through the API.

mod common;

use common::{Project, json, tick};
use serde_json::Value;

/// Both in the US region; Cy reads mail in UTC, Eve in Los Angeles (her
/// send window opens eight hours later).
const CUSTOMERS: &str = "\
id,email,name,timezone,plan,signup_at,region
cy,cy@example.com,Cy Young,UTC,pro,2026-11-05T10:00:00Z,us
eve,eve@example.com,Eve Stone,America/Los_Angeles,pro,2026-11-05T10:00:00Z,us
ana,ana@example.com,Ana Lima,UTC,pro,2026-11-05T10:00:00Z,eu
";

const AFFECTS: &str = r#"customer.attributes.region == "us""#;

const TOKEN: &str = "an-api-token-of-at-least-32-bytes";

fn project(database: Option<&str>) -> Project {
    let mut p = Project::new(
        "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"outbox\"\n\
         [security]\nsecret = \"0123456789abcdef0123456789abcdef-key\"\n\
         [http]\npublic_url = \"https://tend.acme.example\"\n",
    );
    if let Some(url) = database {
        p = p.env("TEND__DATABASE__URL", url);
    }
    std::fs::create_dir_all(p.path().join("config/playbooks")).unwrap();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    p.file("customers.csv", CUSTOMERS);
    p.tend(&["import", "customers", "customers.csv"])
        .expect_code(0);
    p
}

/// `tend incident maintenance ID` for Saturday 12 December, 02:00–04:00Z,
/// scheduled at `now`.
fn schedule(p: &Project, id: &str, now: &str) -> String {
    p.tend(&[
        "incident",
        "maintenance",
        id,
        "--title",
        "Database upgrade",
        "--affects",
        AFFECTS,
        "--starts",
        "2026-12-12T02:00:00Z",
        "--ends",
        "2026-12-12T04:00:00Z",
        "--now",
        now,
    ])
    .expect_code(0)
    .stdout()
}

fn messages(p: &Project) -> Vec<Value> {
    json(&p.tend(&["messages", "--format", "json"]).expect_code(0))
        .as_array()
        .unwrap()
        .clone()
}

/// (customer, step, status) of an incident's notices, sorted.
fn notices(p: &Project, incident: &str) -> Vec<(String, String, String)> {
    let mut found: Vec<_> = messages(p)
        .iter()
        .filter(|m| m["playbook"] == "incident" && m["occurrence"] == incident)
        .map(|m| {
            let text = |key: &str| m[key].as_str().unwrap().to_owned();
            (text("customer_id"), text("step"), text("status"))
        })
        .collect();
    found.sort();
    found
}

fn notice(customer: &str, step: &str, status: &str) -> (String, String, String) {
    (customer.into(), step.into(), status.into())
}

/// The reason recorded on one notice.
fn reason(p: &Project, incident: &str, customer: &str, step: &str) -> String {
    messages(p)
        .iter()
        .find(|m| m["occurrence"] == incident && m["customer_id"] == customer && m["step"] == step)
        .unwrap_or_else(|| panic!("no {step} of {incident} to {customer}"))["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn message_id(p: &Project, incident: &str, customer: &str, step: &str) -> String {
    messages(p)
        .iter()
        .find(|m| m["occurrence"] == incident && m["customer_id"] == customer && m["step"] == step)
        .unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn eml(p: &Project, message_id: &str) -> String {
    String::from_utf8(common::sent_eml(p, message_id)).unwrap()
}

/// (status, resolved_at, notified) of one incident in `incident list`.
fn listed(p: &Project, id: &str) -> (String, Value, i64) {
    let all = json(
        &p.tend(&["incident", "list", "--format", "json"])
            .expect_code(0),
    );
    let one = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()
        .clone();
    (
        one["status"].as_str().unwrap().to_owned(),
        one["resolved_at"].clone(),
        one["notified"].as_i64().unwrap(),
    )
}

fn sent_files(p: &Project) -> usize {
    std::fs::read_dir(p.path().join("outbox")).map_or(0, |d| d.count())
}

/// What was reported: scheduled on 1 December, no tick until Monday 14
/// December. Nothing goes out about a maintenance that is over.
fn no_announcement_after_the_start(p: &Project) {
    let scheduled = schedule(p, "MNT-12", "2026-12-01T10:00:00Z");
    assert!(
        scheduled.contains("2 customers affected, 6 notices; sent 0"),
        "{scheduled}"
    );
    let first = tick(p, "2026-12-14T09:30:00Z");
    assert_eq!(first["sent"], 0, "{first}");
    assert_eq!(first["expired"], 6, "{first}");
    assert_eq!(sent_files(p), 0);
    for customer in ["cy", "eve"] {
        for step in ["announce-7d", "announce-1d", "announce-1h"] {
            let why = reason(p, "MNT-12", customer, step);
            assert_eq!(
                why,
                "expired: the maintenance started at 2026-12-12T02:00:00Z before this announcement went out",
                "{customer} {step}"
            );
        }
    }
    // It completed by itself at its end; telling anyone is off by default.
    assert_eq!(
        listed(p, "MNT-12"),
        ("completed".into(), "2026-12-12T04:00:00Z".into(), 0)
    );
    assert!(notices(p, "MNT-12").iter().all(|n| n.2 == "expired"));
    assert_eq!(tick(p, "2026-12-14T09:45:00Z")["sent"], 0);
}

#[test]
fn no_announcement_after_the_start_on_sqlite() {
    no_announcement_after_the_start(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_announcement_after_the_start_on_postgres() {
    common::on_fresh_postgres(move |url| no_announcement_after_the_start(&project(Some(url))))
        .await;
}

/// Scheduled on Thursday 10 December: a day ahead and an hour ahead.
fn a_maintenance_moves_by_its_own_clock(p: &Project) {
    let scheduled = schedule(p, "MNT-1", "2026-12-10T10:00:00Z");
    assert!(
        scheduled.contains("2 customers affected, 4 notices; sent 0"),
        "{scheduled}"
    );
    // Friday 09:30Z: Cy's window is open; Eve's opens at 17:00Z.
    assert_eq!(tick(p, "2026-12-11T09:30:00Z")["sent"], 1);
    assert_eq!(listed(p, "MNT-1").0, "scheduled");
    // At the start, nothing waiting goes: it expires, with why.
    let start = tick(p, "2026-12-12T02:00:00Z");
    assert_eq!(start["sent"], 0, "{start}");
    assert_eq!(start["expired"], 3, "{start}");
    assert_eq!(listed(p, "MNT-1"), ("in_progress".into(), Value::Null, 1));
    assert!(
        reason(p, "MNT-1", "eve", "announce-1d")
            .contains("the maintenance started at 2026-12-12T02:00:00Z"),
    );
    assert_eq!(tick(p, "2026-12-12T03:00:00Z")["sent"], 0);
    assert_eq!(listed(p, "MNT-1").0, "in_progress");
    // At the end it completes, and (so configured) tells only Cy, who was
    // told of it, in the announcement's thread.
    assert_eq!(tick(p, "2026-12-12T04:00:00Z")["sent"], 1);
    assert_eq!(
        listed(p, "MNT-1"),
        ("completed".into(), "2026-12-12T04:00:00Z".into(), 1)
    );
    assert_eq!(
        notices(p, "MNT-1"),
        [
            notice("cy", "announce-1d", "sent"),
            notice("cy", "announce-1h", "expired"),
            notice("cy", "completed", "sent"),
            notice("eve", "announce-1d", "expired"),
            notice("eve", "announce-1h", "expired"),
        ]
    );
    let completed = eml(p, &message_id(p, "MNT-1", "cy", "completed"));
    assert!(
        completed.contains("Subject: Maintenance complete: Database upgrade"),
        "{completed}"
    );
    assert!(completed.contains(&format!(
        "In-Reply-To: <{}>",
        message_id(p, "MNT-1", "cy", "announce-1d")
    )));
    assert_eq!(tick(p, "2026-12-12T05:00:00Z")["sent"], 0, "once");
}

#[test]
fn a_maintenance_moves_by_its_own_clock_on_sqlite() {
    a_maintenance_moves_by_its_own_clock(
        &project(None).env("TEND__MAINTENANCE__NOTIFY_ON_COMPLETION", "true"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_moves_by_its_own_clock_on_postgres() {
    common::on_fresh_postgres(move |url| {
        a_maintenance_moves_by_its_own_clock(
            &project(Some(url)).env("TEND__MAINTENANCE__NOTIFY_ON_COMPLETION", "true"),
        )
    })
    .await;
}

fn called_off_or_done_early_only_those_told_hear_of_it(p: &Project) {
    schedule(p, "MNT-1", "2026-12-10T10:00:00Z");
    assert_eq!(tick(p, "2026-12-11T09:30:00Z")["sent"], 1, "Cy is told");
    let cancelled = p
        .tend(&[
            "incident",
            "cancel",
            "MNT-1",
            "--message",
            "We found a way to do it without downtime.",
            "--now",
            "2026-12-11T12:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(
        cancelled.contains("MNT-1 cancelled: 1 notices; sent 1"),
        "{cancelled}"
    );
    assert_eq!(
        notices(p, "MNT-1"),
        [
            notice("cy", "announce-1d", "sent"),
            notice("cy", "announce-1h", "expired"),
            notice("cy", "cancelled", "sent"),
            notice("eve", "announce-1d", "expired"),
            notice("eve", "announce-1h", "expired"),
        ]
    );
    assert_eq!(
        reason(p, "MNT-1", "eve", "announce-1d"),
        "withdrawn: the maintenance was cancelled at 2026-12-11T12:00:00Z before this announcement went out"
    );
    let told = eml(p, &message_id(p, "MNT-1", "cy", "cancelled"));
    assert!(
        told.contains("Subject: Maintenance cancelled: Database upgrade"),
        "{told}"
    );
    assert!(told.contains("without downtime"), "{told}");
    assert!(told.contains(&format!(
        "In-Reply-To: <{}>",
        message_id(p, "MNT-1", "cy", "announce-1d")
    )));
    assert_eq!(
        listed(p, "MNT-1"),
        ("cancelled".into(), "2026-12-11T12:00:00Z".into(), 1)
    );
    // Its start and end pass: nothing more, and it stays cancelled.
    assert_eq!(tick(p, "2026-12-12T01:00:00Z")["sent"], 0);
    assert_eq!(tick(p, "2026-12-12T05:00:00Z")["sent"], 0);
    assert_eq!(listed(p, "MNT-1").0, "cancelled");
    let again = p
        .tend(&[
            "incident",
            "cancel",
            "MNT-1",
            "--now",
            "2026-12-11T13:00:00Z",
        ])
        .expect_code(1)
        .stderr();
    assert!(again.contains("was closed at"), "{again}");

    // Completed by hand before it starts: the same withdrawal, and the
    // completion goes to nobody, since nobody was told yet.
    schedule(p, "MNT-2", "2026-12-10T10:00:00Z");
    let done = p
        .tend(&[
            "incident",
            "resolve",
            "MNT-2",
            "--message",
            "Done early.",
            "--now",
            "2026-12-10T11:00:00Z",
        ])
        .expect_code(0)
        .stdout();
    assert!(done.contains("MNT-2 closed: 0 notices; sent 0"), "{done}");
    assert!(
        reason(p, "MNT-2", "cy", "announce-1h")
            .starts_with("withdrawn: the maintenance was completed at 2026-12-10T11:00:00Z")
    );
    assert!(notices(p, "MNT-2").iter().all(|n| n.2 == "expired"));

    // Only a maintenance that has not started can be called off.
    p.tend(&[
        "incident",
        "open",
        "INC-1",
        "--title",
        "Slow API",
        "--affects",
        "false",
        "--now",
        "2026-12-11T12:00:00Z",
    ])
    .expect_code(0);
    let not_one = p
        .tend(&["incident", "cancel", "INC-1"])
        .expect_code(1)
        .stderr();
    assert!(
        not_one.contains("INC-1 is an incident, not a maintenance"),
        "{not_one}"
    );
    schedule(p, "MNT-3", "2026-12-10T10:00:00Z");
    let started = p
        .tend(&[
            "incident",
            "cancel",
            "MNT-3",
            "--now",
            "2026-12-12T02:30:00Z",
        ])
        .expect_code(1)
        .stderr();
    assert!(
        started
            .contains("maintenance MNT-3 started at 2026-12-12T02:00:00+00:00; nothing was sent"),
        "{started}"
    );
    assert_eq!(listed(p, "MNT-3").0, "scheduled");
}

#[test]
fn called_off_or_done_early_only_those_told_hear_of_it_on_sqlite() {
    called_off_or_done_early_only_those_told_hear_of_it(&project(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn called_off_or_done_early_only_those_told_hear_of_it_on_postgres() {
    common::on_fresh_postgres(move |url| {
        called_off_or_done_early_only_those_told_hear_of_it(&project(Some(url)))
    })
    .await;
}

#[test]
fn the_api_cancels_a_maintenance() {
    let p = project(None).env("TEND__HTTP__API_TOKEN", TOKEN);
    let d = common::daemon::Daemon::start(&p, common::free_port(), &[]);
    let bearer = format!("Bearer {TOKEN}");
    let post = |path: &str, body: &str| {
        d.request(
            "POST",
            path,
            &[
                ("Authorization", bearer.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    // Far ahead of the daemon's own clock.
    let body = serde_json::json!({
        "id": "MNT-9", "title": "Database upgrade", "affects": AFFECTS,
        "starts_at": "2036-03-01T02:00:00Z", "ends_at": "2036-03-01T04:00:00Z",
    });
    let opened = post("/api/v1/incidents", &body.to_string());
    assert_eq!(opened.status, 200, "{}", opened.body);
    let reply = post("/api/v1/incidents/MNT-9/cancel", "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({"id": "MNT-9", "affected": 0, "notices": 0}),
        "nobody was told yet"
    );
    let again = post("/api/v1/incidents/MNT-9/cancel", r#"{"message": "x"}"#);
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(post("/api/v1/incidents/MNT-0/cancel", "").status, 404);
    let bad = post("/api/v1/incidents/MNT-9/cancel", r#"{"why": "x"}"#);
    assert_eq!(bad.status, 400, "{}", bad.body);
    drop(d);
    assert_eq!(listed(&p, "MNT-9").0, "cancelled");
    assert!(notices(&p, "MNT-9").iter().all(|n| n.2 == "expired"));
}
